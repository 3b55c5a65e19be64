//! The whitening error a stats record reports (docs/DESIGN.md §5.3): the error of each
//! whitener's own recent output, `‖R̄ − I‖_F / √n` with `R̄` a running mean of the blocks'
//! output covariances `R̂ = P (X̂ + ε²I) P`.
//!
//! The output is what is heard, and its mean whiteness is what the circuits' (mean-field)
//! theory predicts: a whitener whose state jitters with the input's sampling noise — the
//! direct circuit far below the reference level relaxes within a few samples — still gives
//! white output on average, as per-sample learning does.
//!
//! **Forgetting outputs of a past state.** The running mean is exponentially weighted with
//! time constant [`ERROR_WINDOW_MS`], except that each block's weight of the past is reduced
//! by how much the whitener's response matrix has changed since: with `ρ = ‖P_new −
//! P_old‖_F / ‖P_old‖_F` the relative change over the last block, the smoothing factor is
//! `max(α, min(1, ρ))`. At rest `ρ` is sampling noise, below `α`, and the estimate is the
//! plain exponential mean; right after a re-initialisation at `s = 0.01` or a +40 dB step the
//! outputs are ~10⁴·I and the state moves by large factors per block, so the estimate follows
//! the current output instead of remembering outputs of a whitener that no longer exists
//! (a plain exponential mean would take `ln(10⁴/0.2) ≈ 11` time constants to forget them,
//! timing the estimator rather than the whitener).

use crate::circuits::{distance_from_identity, Scalar};
use nalgebra::DMatrix;

/// Time constant of the output-covariance mean.
pub const ERROR_WINDOW_MS: f64 = 50.0;

/// The running mean of one whitener's output covariance.
#[derive(Clone, Debug)]
pub struct OutputEstimate<T: Scalar> {
    /// `R̄`.
    mean: DMatrix<T>,
    /// The response matrix of the previous block, to measure how far the state moved.
    p_prev: DMatrix<T>,
    /// `‖p_prev‖²_F`, kept from when it was the new matrix (a third of the comparison's work).
    p_prev_sq: f64,
    /// Relative change of `P` to apply as forgetting at the next block.
    staleness: f64,
    /// `‖R̄ − I‖_F / √n` for n ≤ 2, formed with `R̄` in [`Self::push`]: stats records read it
    /// for every band and whitener (128 per record at 32 stereo bands), more often than a band
    /// learns.
    error: f64,
}

impl<T: Scalar> OutputEstimate<T> {
    /// An estimate at `R̄ = I` for a whitener starting at `p`.
    pub fn new(p: &DMatrix<T>) -> Self {
        let n = p.nrows();
        Self {
            mean: DMatrix::identity(n, n),
            p_prev: p.clone(),
            p_prev_sq: p.iter().map(|v| v.modulus_squared()).sum(),
            staleness: 0.0,
            error: 0.0,
        }
    }

    /// Add a block's output covariance `r_hat` (Hermitian, as `P X P` is) with smoothing factor
    /// `alpha` (raised by the state's change since the last block). No allocation.
    pub fn push(&mut self, r_hat: &DMatrix<T>, alpha: f64) {
        let a = alpha.max(self.staleness.min(1.0));
        let (keep, take) = (1.0 - a, a);
        // Plain slices: matrix iterators cost more than the arithmetic for n ≤ 2; real scaling,
        // where a product with `T::from_real` would be a full complex multiply.
        let mean = self.mean.as_mut_slice();
        if let ([m00, m10, m01, m11], [r00, r10, _, r11]) = (&mut *mean, r_hat.as_slice()) {
            // n = 2, every band of a stereo spectral engine: R̄ stays Hermitian, so its lower
            // triangle and real diagonal are all there is to average, and
            // ‖R̄ − I‖²_F = (R̄₀₀ − 1)² + (R̄₁₁ − 1)² + 2|R̄₁₀|².
            let d0 = m00.real() * keep + r00.real() * take;
            let d1 = m11.real() * keep + r11.real() * take;
            let off = m10.scale(keep) + r10.scale(take);
            (*m00, *m10, *m01, *m11) = (T::from_real(d0), off, off.conjugate(), T::from_real(d1));
            let dist2 = (d0 - 1.0).powi(2) + (d1 - 1.0).powi(2) + 2.0 * off.modulus_squared();
            self.error = (dist2 / 2.0).sqrt();
        } else if let ([m], [r]) = (&mut *mean, r_hat.as_slice()) {
            // n = 1, every band of a mono spectral engine: a real mean.
            let d = m.real() * keep + r.real() * take;
            *m = T::from_real(d);
            self.error = (d - 1.0).abs();
        } else {
            // Larger n: one vectorised loop; the distance when a record asks (`error`), as
            // channels engines learn in blocks shorter than a record's interval.
            for (m, r) in mean.iter_mut().zip(r_hat.as_slice()) {
                *m = m.scale(keep) + r.scale(take);
            }
        }
        self.staleness = 0.0;
    }

    /// Record the response matrix after the block's learning (or a re-initialisation, a
    /// restore): its relative change raises the next block's forgetting.
    pub fn state_moved_to(&mut self, p: &DMatrix<T>) {
        let (mut diff, mut new_sq) = (0.0, 0.0);
        for (new, old) in p.as_slice().iter().zip(self.p_prev.as_slice()) {
            diff += (*new - *old).modulus_squared();
            new_sq += new.modulus_squared();
        }
        let old_sq = std::mem::replace(&mut self.p_prev_sq, new_sq);
        // Relative to the smaller of the two, so that a move by a large factor counts as
        // large in either direction.
        let base = old_sq.min(new_sq);
        let rho = if base > 0.0 {
            (diff / base).sqrt()
        } else {
            1.0
        };
        self.staleness = self.staleness.max(rho);
        self.p_prev.as_mut_slice().copy_from_slice(p.as_slice());
    }

    /// `‖R̄ − I‖_F / √n`.
    pub fn error(&self) -> f64 {
        let n = self.mean.nrows();
        if n <= 2 {
            self.error
        } else {
            distance_from_identity(&self.mean) / (n as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_state_forgets_its_past_outputs_a_resting_one_averages() {
        let i2 = DMatrix::<f64>::identity(2, 2);
        let mut e = OutputEstimate::new(&i2);
        // At rest (P unchanged) the mean is exponential with factor α.
        e.push(&(&i2 * 2.0), 0.1);
        assert!((e.error() - 0.1).abs() < 1e-12);
        // A whitener 100× too quiet gives outputs 10⁴·I; then its state moves to the target
        // in two blocks (P changes by factors of 100 and 83): the estimate follows the outputs.
        e.state_moved_to(&(&i2 * 100.0));
        e.push(&(&i2 * 1e4), 0.1);
        assert!(e.error() > 1e3);
        e.state_moved_to(&(&i2 * 1.2));
        e.push(&(&i2 * 1.44), 0.1);
        assert!((e.error() - 0.44).abs() < 1e-9, "{}", e.error());
        e.state_moved_to(&i2);
        e.push(&i2, 0.1);
        // The change from 1.2 to 1 (20 % of the smaller) forgets 20 % of the past.
        assert!((e.error() - 0.44 * 0.8).abs() < 1e-9, "{}", e.error());
    }

    /// The error formed while pushing is `‖R̄ − I‖_F / √n` of the mean, recomputed here from
    /// the pushed matrices alone (entry by entry, every entry) for ℝ and ℂ and several sizes.
    /// The pushed matrices are Hermitian, as output covariances are.
    #[test]
    fn the_error_is_the_distance_of_the_mean_from_identity() {
        use nalgebra::Complex;
        fn check<T: Scalar>(n: usize, entry: impl Fn(usize, usize, usize) -> T) {
            let mut e = OutputEstimate::<T>::new(&DMatrix::identity(n, n));
            let mut mean = DMatrix::<T>::identity(n, n);
            for (step, alpha) in [0.1, 0.5, 0.02, 1.0, 0.3].into_iter().enumerate() {
                let a = DMatrix::from_fn(n, n, |i, j| entry(step, i, j));
                let r = (&a + a.adjoint()).scale(0.5);
                e.push(&r, alpha);
                mean = mean.scale(1.0 - alpha) + r.scale(alpha);
                let mut sq = 0.0;
                for j in 0..n {
                    for i in 0..n {
                        let d = if i == j {
                            mean[(i, j)] - T::one()
                        } else {
                            mean[(i, j)]
                        };
                        sq += d.modulus_squared();
                    }
                }
                let want = (sq / n as f64).sqrt();
                assert!(
                    (e.error() - want).abs() <= 1e-12 * want.max(1.0),
                    "n = {n}, step {step}: {} against {want}",
                    e.error()
                );
            }
        }
        for n in 1..=5 {
            check::<f64>(n, |s, i, j| ((s * 7 + i * 3 + j) as f64 * 0.37).sin());
            check::<Complex<f64>>(n, |s, i, j| {
                Complex::new(
                    ((s + i * 5 + j) as f64).cos(),
                    (s * i) as f64 * 0.1 - j as f64 * 0.2,
                )
            });
        }
    }
}
