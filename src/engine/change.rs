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
    /// Scratch: the block's covariance, then a floored estimate.
    scratch: DMatrix<f64>,
    /// The other floored estimate's inverse.
    scratch2: DMatrix<f64>,
    /// Factorisations for the inverses of the floored estimates.
    chol: CholeskyWorkspace<f64>,
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
            chol: CholeskyWorkspace::new(n),
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
        let n = self.fast.nrows();
        for j in 0..n {
            for i in 0..n {
                self.scratch[(i, j)] = x_outer_mean[(i, j)].real();
            }
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
        let finite = if full {
            self.scratch.iter().all(|v| v.is_finite())
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
            for (f, x) in self.fast.iter_mut().zip(self.scratch.iter()) {
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
            for (s, x) in self.slow.iter_mut().zip(self.scratch.iter()) {
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
        // With A = slow + ε²I and B = fast + ε²I (both symmetric), tr(A⁻¹B) is the sum of the
        // elementwise product of A⁻¹ and B: invert each (Cholesky, n³/2) instead of solving
        // with n right-hand sides (n³).
        let mut total = 0.0;
        for a_is_slow in [true, false] {
            let (a, b) = if a_is_slow {
                (&self.slow, &self.fast)
            } else {
                (&self.fast, &self.slow)
            };
            self.scratch.copy_from(a);
            for i in 0..n {
                self.scratch[(i, i)] += self.floor2;
            }
            if self.chol.factor(&self.scratch).is_err() {
                return 0.0;
            }
            self.chol.inverse_into(&mut self.scratch2);
            let mut tr: f64 = self
                .scratch2
                .iter()
                .zip(b.iter())
                .map(|(ai, b)| ai * b)
                .sum();
            tr += self.floor2 * (0..n).map(|i| self.scratch2[(i, i)]).sum::<f64>();
            total += 0.5 * tr;
        }
        let d = (total - n as f64) / n as f64;
        if d.is_finite() {
            d.max(0.0)
        } else {
            0.0
        }
    }
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
