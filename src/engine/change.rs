//! A change detector on the input statistics: the divergence between a fast and a slow
//! exponentially weighted estimate of the input covariance.
//!
//! For zero-mean Gaussians with covariances `F` (fast) and `S` (slow) the symmetrised
//! Kullback–Leibler divergence is `½ tr(S⁻¹F + F⁻¹S) − n`. It is 0 when the two agree and
//! grows with any change of level, colour or mixing; divided by `n` it is a per-dimension
//! score (a broadband level step of `r` in power scores `(r + 1/r)/2 − 1`). A change is
//! reported when the score crosses `threshold`; for a hold-off time afterwards the slow
//! estimate follows the fast one, so that the new statistics become the reference and the
//! same change is not reported twice.

use crate::circuits::{CholeskyWorkspace, Scalar};
use nalgebra::DMatrix;

/// How often the divergence is evaluated (the detection resolution).
pub const EVAL_INTERVAL_S: f64 = 0.005;

/// Fast/slow covariance divergence detector for an n×n covariance or a diagonal of powers.
#[derive(Clone, Debug)]
pub struct ChangeDetector {
    /// Fast estimate (full matrix, or diagonal stored on the diagonal).
    fast: DMatrix<f64>,
    /// Slow estimate.
    slow: DMatrix<f64>,
    /// Whether any input has been seen (the first block initialises both estimates).
    primed: bool,
    /// Time constant of the fast estimate, seconds.
    fast_s: f64,
    /// Time constant of the slow estimate, seconds.
    slow_s: f64,
    /// Score above which a change is reported.
    threshold: f64,
    /// Seconds during which the slow estimate follows the fast one after a report.
    holdoff_s: f64,
    /// Hold-off time left.
    holdoff_left: f64,
    /// Floor added to both estimates so silence is not a singular covariance.
    floor2: f64,
    /// Last score.
    score: f64,
    /// Seconds of input since the score was last evaluated; the estimates are updated every
    /// block but the O(n³) divergence only every `EVAL_INTERVAL_S`.
    since_eval: f64,
    /// Scratch: the block's covariance, then the floored slow estimate.
    scratch: DMatrix<f64>,
    /// The floored fast estimate.
    scratch2: DMatrix<f64>,
    /// Cholesky factor of the floored slow estimate.
    chol_slow: CholeskyWorkspace<f64>,
    /// Cholesky factor of the floored fast estimate.
    chol_fast: CholeskyWorkspace<f64>,
    /// One column of a triangular solve.
    column: Vec<f64>,
}

impl ChangeDetector {
    /// A detector for dimension `n` with a power floor `floor2`.
    pub fn new(n: usize, floor2: f64) -> Self {
        Self {
            fast: DMatrix::zeros(n, n),
            slow: DMatrix::zeros(n, n),
            primed: false,
            fast_s: 0.03,
            slow_s: 2.0,
            threshold: 0.5,
            holdoff_s: 0.3,
            holdoff_left: 0.0,
            floor2: floor2.max(1e-30),
            score: 0.0,
            since_eval: 0.0,
            scratch: DMatrix::zeros(n, n),
            scratch2: DMatrix::zeros(n, n),
            chol_slow: CholeskyWorkspace::new(n),
            chol_fast: CholeskyWorkspace::new(n),
            column: vec![0.0; n],
        }
    }

    /// Change the power floor added to both estimates.
    pub fn set_floor(&mut self, floor2: f64) {
        self.floor2 = floor2.max(1e-30);
    }

    /// The divergence score of the last update.
    pub fn score(&self) -> f64 {
        self.score
    }

    /// Update with the mean input outer product of a block of `dt` seconds (only the real part
    /// is used, which for a Hermitian covariance keeps its level and correlation structure).
    /// Returns whether a change is detected at this block. No allocation.
    pub fn update_full<T: Scalar>(&mut self, x_outer_mean: &DMatrix<T>, dt: f64) -> bool {
        for (s, x) in self
            .scratch
            .as_mut_slice()
            .iter_mut()
            .zip(x_outer_mean.as_slice())
        {
            *s = x.real();
        }
        self.advance(dt, true)
    }

    /// Update with a vector of powers (diagonal covariance) of a block of `dt` seconds.
    pub fn update_diag(&mut self, powers: &[f64], dt: f64) -> bool {
        // Only the diagonal of the estimates is used in this mode (off-diagonals stay 0).
        for (i, p) in powers.iter().enumerate() {
            self.scratch[(i, i)] = *p;
        }
        self.advance(dt, false)
    }

    fn advance(&mut self, dt: f64, full: bool) -> bool {
        let n = self.fast.nrows();
        // Plain slices: nalgebra's matrix iterators step through strides and do not vectorise.
        let finite = if full {
            self.scratch.as_slice().iter().all(|v| v.is_finite())
        } else {
            (0..n).all(|i| self.scratch[(i, i)].is_finite())
        };
        if !finite {
            return false;
        }
        if !self.primed {
            self.fast.copy_from(&self.scratch);
            self.slow.copy_from(&self.scratch);
            self.primed = true;
            // The first blocks are a poor reference: let the slow estimate follow the fast
            // one for a hold-off before judging changes.
            self.holdoff_left = self.holdoff_s;
            return false;
        }
        let af = 1.0 - (-dt / self.fast_s).exp();
        let as_ = 1.0 - (-dt / self.slow_s).exp();
        if full {
            for (f, x) in self
                .fast
                .as_mut_slice()
                .iter_mut()
                .zip(self.scratch.as_slice())
            {
                *f += af * (x - *f);
            }
        } else {
            for i in 0..n {
                self.fast[(i, i)] += af * (self.scratch[(i, i)] - self.fast[(i, i)]);
            }
        }
        if self.holdoff_left > 0.0 {
            self.holdoff_left -= dt;
            self.slow.copy_from(&self.fast);
            self.score = 0.0;
            return false;
        }
        if full {
            for (s, x) in self
                .slow
                .as_mut_slice()
                .iter_mut()
                .zip(self.scratch.as_slice())
            {
                *s += as_ * (x - *s);
            }
        } else {
            for i in 0..n {
                self.slow[(i, i)] += as_ * (self.scratch[(i, i)] - self.slow[(i, i)]);
            }
        }
        self.since_eval += dt;
        if self.since_eval < EVAL_INTERVAL_S {
            return false;
        }
        self.since_eval = 0.0;
        self.score = if full {
            self.full_divergence()
        } else {
            (0..n)
                .map(|i| {
                    let f = self.fast[(i, i)] + self.floor2;
                    let s = self.slow[(i, i)] + self.floor2;
                    0.5 * (f / s + s / f) - 1.0
                })
                .sum::<f64>()
                / n as f64
        };
        if self.score > self.threshold {
            self.holdoff_left = self.holdoff_s;
            true
        } else {
            false
        }
    }

    /// `(½ tr(S⁻¹F + F⁻¹S) − n) / n` with the floor added to both.
    fn full_divergence(&mut self) -> f64 {
        let n = self.fast.nrows();
        // With A = slow + ε²I = L_A L_Aᵀ and B = fast + ε²I = L_B L_Bᵀ (Cholesky),
        // tr(A⁻¹B) = tr(L_A⁻ᵀ L_A⁻¹ L_B L_Bᵀ) = ‖L_A⁻¹ L_B‖²_F and likewise
        // tr(B⁻¹A) = ‖L_B⁻¹ L_A‖²_F: two factors and two triangular solves with triangular
        // right-hand sides, n³/6 multiply-adds each, where two inverses cost n³/3 each.
        for (dst, src, chol) in [
            (&mut self.scratch, &self.slow, &mut self.chol_slow),
            (&mut self.scratch2, &self.fast, &mut self.chol_fast),
        ] {
            dst.copy_from(src);
            for i in 0..n {
                dst[(i, i)] += self.floor2;
            }
            if chol.factor(dst).is_err() {
                return 0.0;
            }
        }
        let (la, lb) = (self.chol_slow.lower(), self.chol_fast.lower());
        let total = 0.5
            * (triangular_solve_norm2(la, lb, n, &mut self.column)
                + triangular_solve_norm2(lb, la, n, &mut self.column));
        let d = (total - n as f64) / n as f64;
        if d.is_finite() {
            d.max(0.0)
        } else {
            0.0
        }
    }
}

/// `‖L⁻¹ K‖²_F` for lower-triangular n×n column-major `L` and `K` (strict upper triangles not
/// read). Column j of `L⁻¹ K` is the forward substitution of column j of `K`, which is zero
/// above row j, and so is the result: only rows ≥ j take part. Each solved entry leaves the
/// rest of its column by an axpy over a contiguous column tail of `L`.
fn triangular_solve_norm2(l: &[f64], k: &[f64], n: usize, column: &mut [f64]) -> f64 {
    let mut sum = 0.0;
    for j in 0..n {
        let y = &mut column[j..n];
        y.copy_from_slice(&k[j * n + j..(j + 1) * n]);
        for p in 0..y.len() {
            // Column c = j + p of L from its diagonal down.
            let c = j + p;
            let col = &l[c * n + c..(c + 1) * n];
            let v = y[p] / col[0];
            sum += v * v;
            for (yi, &lic) in y[p + 1..].iter_mut().zip(&col[1..]) {
                *yi -= lic * v;
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn random_spd(n: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
        let a = DMatrix::from_fn(n, n, |_, _| rng.sample::<f64, _>(StandardNormal));
        &a * a.transpose() / n as f64
    }

    /// The symmetrised divergence against its definition, `(½ tr(A⁻¹B + B⁻¹A) − n)/n` with
    /// nalgebra's general inverse.
    #[test]
    fn full_divergence_is_the_symmetrised_kl_trace() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1, 2, 3, 8, 16] {
            let floor2 = 1e-3;
            let mut d = ChangeDetector::new(n, floor2);
            d.slow = random_spd(n, &mut rng);
            d.fast = random_spd(n, &mut rng);
            let eye = DMatrix::<f64>::identity(n, n);
            let a = &d.slow + &eye * floor2;
            let b = &d.fast + &eye * floor2;
            let ai = a.clone().try_inverse().unwrap();
            let bi = b.clone().try_inverse().unwrap();
            let want = ((0.5 * ((&ai * &b).trace() + (&bi * &a).trace())) - n as f64) / n as f64;
            let got = d.full_divergence();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "n = {n}: {got} vs {want}"
            );
        }
    }
}
