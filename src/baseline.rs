//! The classical baseline whitener of docs/DESIGN.md §2.8: an exponentially weighted covariance
//! estimate and ZCA whitening by eigendecomposition, run beside the two circuits with the same
//! time constant so that their readaptation times can be compared with a non-neural reference.
//!
//! # Math
//!
//! Per update with the mean outer product `X̂ = mean(x xᴴ)` of a block of input vectors:
//!
//! ```text
//! Ĉ ← (1 − α) Ĉ + α X̂                     (exponential smoothing, time constant 1/α updates)
//! Ĉ = V diag(λ) Vᴴ                         (Jacobi, warm-started from the previous V)
//! P = (Ĉ + ε²I)^{-1/2} = V diag((λ + ε²)^{-1/2}) Vᴴ,     r = P x
//! ```
//!
//! `P` is the symmetric (ZCA) whitening matrix the circuits converge to: their optimum is
//! `M* = C^{1/2}` with `r = M⁻¹x`, so the baseline's equivalent recurrent matrix is
//! `M = (Ĉ + ε²I)^{1/2}` and `P = M⁻¹`. After a step change of the input covariance from `C₁` to
//! `C₂` the estimate follows `Ĉ_t − C₂ = (1 − α)^t (C₁ − C₂) ≈ e^{−αt} (C₁ − C₂)`: the
//! baseline's error decays with the time constant `1/α` updates, with no dependence on the
//! signal scale — it is the "ideal" adaptation the circuits are compared against. Passing the
//! circuits' `η` as `α` gives the same time constant as the linearised circuit dynamics.
//!
//! # Noise floor
//!
//! `ε ≥ 0` is added as `ε²I` to the estimate *when forming P*, not to `Ĉ` itself, so the floor
//! can be changed at any time without disturbing the estimate (`P` is recomputed from the
//! stored eigendecomposition, as the eigenvectors of `Ĉ + ε²I` are those of `Ĉ`). During
//! silence `Ĉ` decays towards 0 and `P` towards `ε⁻¹I`; `‖P‖₂ ≤ 1/ε` always, because `Ĉ` is
//! positive semidefinite (tiny negative eigenvalues from rounding are clamped to 0).
//!
//! # Real time
//!
//! Every buffer is allocated in [`ZcaBaseline::new`]; `update`, `respond`, `set_floor`,
//! `set_alpha`, `reinitialise` and `whitening_error` do not allocate (except the message of an
//! `InvalidCovariance` error, which sanitised audio input never produces: it needs non-finite
//! or non-Hermitian input). Updates are transactional: the candidate estimate is decomposed
//! into a second solver and committed only if it is valid, so an error leaves the state exactly
//! as it was.

use crate::circuits::{
    check_eta, check_scale, check_square, matmul_into, mirror_lower, CircuitError, Scalar,
};
use crate::eigen::{EigenError, HermitianEigen, SymmetricEigen};
use nalgebra::DMatrix;

/// Entries of the smoothed covariance below this magnitude are set to zero. Audio input
/// (f32 samples, divided by a reference level) has power far above 1e-80, so anything smaller
/// is the exponential decay residue of silence; flushing it keeps the estimate out of the
/// denormal range, where arithmetic is slow (docs/DESIGN.md §7, denormals).
const FLUSH_BELOW: f64 = 1e-200;

/// Relative tolerance for the Hermitian check of the input (same as the circuits' covariance
/// validation): `|x_ij − conj(x_ji)| ≤ 1e-9·max|x|`.
const HERMITIAN_TOLERANCE: f64 = 1e-9;

/// How negative (relative to the largest eigenvalue magnitude) an eigenvalue of the candidate
/// estimate may be before the input is rejected as not an outer-product mean. Rounding makes
/// eigenvalues of a singular PSD matrix of order `ε_mach·λ_max` negative; anything beyond
/// 1e-9 is a genuinely indefinite input.
const NEGATIVE_TOLERANCE: f64 = 1e-9;

/// Exponentially weighted covariance + ZCA whitening (docs/DESIGN.md §2.8), the classical reference
/// for the circuits, with the same interface shape: an `n`-dimensional state updated once per
/// block, a response `r = P x`, and the extreme eigenvalues of the equivalent recurrent matrix.
#[derive(Clone, Debug)]
pub struct ZcaBaseline<T: Scalar> {
    /// Number of channels `n`.
    n: usize,
    /// Smoothing factor α ∈ (0, 1) per update: the same role as the circuits' η (time constant
    /// `1/α` updates).
    alpha: f64,
    /// Noise floor ε ≥ 0: the whitening target is `(Ĉ + ε²I)^{-1/2}`, bounded by `1/ε`.
    floor: f64,
    /// Scale `s` of the last (re-)initialisation `Ĉ₀ = s²I`, kept for reporting.
    scale: f64,
    /// The smoothed covariance estimate `Ĉ` (Hermitian, both triangles stored).
    c_hat: DMatrix<T>,
    /// The candidate estimate of an update in progress; swapped with `c_hat` on commit.
    candidate: DMatrix<T>,
    /// Eigendecomposition of the committed `Ĉ` (its eigenvectors warm-start the next update).
    eig: HermitianEigen<T>,
    /// Decomposition of the candidate; swapped with `eig` on commit, so a rejected update
    /// leaves `eig` consistent with `c_hat`.
    trial: HermitianEigen<T>,
    /// For a real `Ĉ` of three or more channels, the decomposition by Householder reduction
    /// and QL (`eigen::SymmetricEigen`, to machine precision, no warm start): about half the
    /// instructions of the warm Jacobi at 16 channels, which needs three or four sweeps and
    /// the warm start's products at the baseline's tolerance (docs/DESIGN.md §9). `None`
    /// for complex `Ĉ` and n ≤ 2 (closed form).
    ql: Option<SymmetricEigen>,
    /// The whitening matrix `P = (Ĉ + ε²I)^{-1/2}` (Hermitian).
    p: DMatrix<T>,
    /// Eigenvalues of `M = (Ĉ + ε²I)^{1/2}`, ascending: `√(max(λ, 0) + ε²)`.
    m_eigenvalues: Vec<f64>,
    /// Scratch for [`ZcaBaseline::whitening_error`].
    scratch_a: DMatrix<T>,
    /// A second scratch buffer for [`ZcaBaseline::whitening_error`].
    scratch_b: DMatrix<T>,
}

impl<T: Scalar> ZcaBaseline<T> {
    /// `n` channels, smoothing factor `alpha` ∈ (0, 1) per update (same role as the circuits'
    /// η), noise floor `floor` = ε ≥ 0 (target `(C + ε²I)^{-1/2}`), initial scale `scale` = s > 0
    /// (the state starts at `Ĉ = s²I`, so that its `M = (Ĉ + ε²I)^{1/2}` starts at
    /// `√(s² + ε²)·I ≈ s·I`, like the circuits' `M₀ = s·I`).
    ///
    /// Errors: `ZeroDimension` for n = 0, `InvalidLearningRate` for α ∉ (0, 1),
    /// `InvalidScale` for a non-finite or non-positive `s` — and also for a non-finite or
    /// negative ε (the floor is a signal scale too).
    pub fn new(n: usize, alpha: f64, floor: f64, scale: f64) -> Result<Self, CircuitError> {
        if n == 0 {
            return Err(CircuitError::ZeroDimension);
        }
        let alpha = check_eta(alpha)?;
        if !(floor.is_finite() && floor >= 0.0) {
            return Err(CircuitError::InvalidScale(floor));
        }
        check_scale(scale)?;
        let mut b = Self {
            n,
            alpha,
            floor,
            scale,
            c_hat: DMatrix::zeros(n, n),
            candidate: DMatrix::zeros(n, n),
            eig: HermitianEigen::new(n),
            trial: HermitianEigen::new(n),
            ql: (n >= 3 && T::as_reals(&[T::zero()]).is_some()).then(|| SymmetricEigen::new(n)),
            p: DMatrix::zeros(n, n),
            m_eigenvalues: vec![0.0; n],
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
        };
        b.reinitialise(scale)?;
        Ok(b)
    }

    /// Number of channels `n`.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// The smoothing factor α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Change α without touching the estimate (a DAW automates the time constant).
    pub fn set_alpha(&mut self, alpha: f64) -> Result<(), CircuitError> {
        self.alpha = check_eta(alpha)?;
        Ok(())
    }

    /// The noise floor ε.
    pub fn floor(&self) -> f64 {
        self.floor
    }

    /// Change the noise floor ε and recompute `P` from the stored decomposition (no new
    /// eigendecomposition, no allocation). The signature cannot fail, so unusable values are
    /// ignored and the previous floor kept: a non-finite or negative ε, and ε = 0 while `Ĉ` is
    /// singular (e.g. after long silence), which would make `P` infinite. Read back with
    /// [`Self::floor`].
    pub fn set_floor(&mut self, floor: f64) {
        if !(floor.is_finite() && floor >= 0.0) {
            return;
        }
        if shifted_min(self.eig.eigenvalues(), floor).is_none() {
            return;
        }
        self.floor = floor;
        self.refresh_outputs();
    }

    /// The scale `s` of the last (re-)initialisation.
    pub fn init_scale(&self) -> f64 {
        self.scale
    }

    /// Reset the estimate to `Ĉ = s²I` (so `M = √(s² + ε²)·I`, `P = M⁻¹`), keeping α and ε.
    /// Fails with `InvalidScale` (state unchanged) if `s` is not finite and positive or `s²`
    /// over- or underflows.
    pub fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        check_scale(scale)?;
        let s2 = scale * scale;
        if !(s2.is_finite() && s2 > 0.0) {
            return Err(CircuitError::InvalidScale(scale));
        }
        self.candidate.fill(T::zero());
        self.candidate.fill_diagonal(T::from_real(s2));
        // A diagonal matrix: zero sweeps, eigenvectors I, cannot fail for finite s².
        self.trial
            .decompose(&self.candidate)
            .map_err(|_| CircuitError::InvalidScale(scale))?;
        std::mem::swap(&mut self.c_hat, &mut self.candidate);
        std::mem::swap(&mut self.eig, &mut self.trial);
        self.scale = scale;
        self.refresh_outputs();
        Ok(())
    }

    /// Replace the covariance estimate by a given Hermitian positive-semidefinite `Ĉ` (e.g.
    /// restored state). Errors leave the state unchanged.
    pub fn set_covariance(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(c, self.n)?;
        if c.iter().any(|v| !v.is_finite()) {
            return Err(CircuitError::InvalidCovariance(
                "the covariance has non-finite entries".to_string(),
            ));
        }
        self.candidate.copy_from(c);
        mirror_lower(&mut self.candidate);
        self.decompose_candidate(false)
            .map_err(|_| CircuitError::NotPositiveDefinite)?;
        let lambda = self.trial.eigenvalues();
        let labs = lambda[0].abs().max(lambda[self.n - 1].abs());
        if lambda[0] < -NEGATIVE_TOLERANCE * labs || shifted_min(lambda, self.floor).is_none() {
            return Err(CircuitError::NotPositiveDefinite);
        }
        std::mem::swap(&mut self.c_hat, &mut self.candidate);
        std::mem::swap(&mut self.eig, &mut self.trial);
        self.refresh_outputs();
        Ok(())
    }

    /// One update with the mean input outer product `X̂ = mean(x xᴴ)` of a block:
    /// `Ĉ ← (1−α)Ĉ + α X̂`, then a warm-started eigendecomposition and
    /// `P = (Ĉ + ε²I)^{-1/2}`. No allocation on success.
    ///
    /// Errors (the state is then exactly unchanged):
    /// * `DimensionMismatch` — `X̂` is not n×n;
    /// * `InvalidCovariance` — `X̂` has non-finite entries, is not Hermitian (to 1e-9 relative),
    ///   or is so indefinite that `Ĉ` would have an eigenvalue below `−1e-9·max|λ|` (not an
    ///   outer-product mean);
    /// * `NotPositiveDefinite` — with ε = 0 the new `Ĉ` is singular (silence), so `P` would be
    ///   infinite; or the eigensolver failed (overflow, no convergence).
    pub fn update(&mut self, input_outer_mean: &DMatrix<T>) -> Result<(), CircuitError> {
        let x = input_outer_mean;
        let n = self.n;
        check_square(x, n)?;
        let mut amax: f64 = 0.0;
        for v in x.iter() {
            if !v.is_finite() {
                return Err(CircuitError::InvalidCovariance(
                    "the input outer product has non-finite entries".to_string(),
                ));
            }
            amax = amax.max(v.real().abs()).max(v.imaginary().abs());
        }
        let tol = HERMITIAN_TOLERANCE * amax;
        for j in 0..n {
            for i in j..n {
                // |d|₁ ≥ |d|: the modulus (a hypot) only where the cheap bound cannot decide.
                let d = x[(i, j)] - x[(j, i)].conjugate();
                if d.norm1() > tol && d.modulus() > tol {
                    return Err(CircuitError::InvalidCovariance(
                        "the input outer product is not Hermitian".to_string(),
                    ));
                }
            }
        }
        // Candidate Ĉ' = (1−α)Ĉ + α·herm(X̂), lower triangle, then mirrored (exactly Hermitian).
        let keep = T::from_real(1.0 - self.alpha);
        let half_alpha = T::from_real(0.5 * self.alpha);
        for j in 0..n {
            for i in j..n {
                let xin = (x[(i, j)] + x[(j, i)].conjugate()) * half_alpha;
                let mut v = keep * self.c_hat[(i, j)] + xin;
                // |v| ≥ |v|₁/√2: only a sum of moduli below 2·FLUSH_BELOW can be under it.
                if v.norm1() < 2.0 * FLUSH_BELOW && v.modulus() < FLUSH_BELOW {
                    v = T::zero();
                }
                self.candidate[(i, j)] = v;
            }
        }
        mirror_lower(&mut self.candidate);

        self.decompose_candidate(true)
            .map_err(|_| CircuitError::NotPositiveDefinite)?;
        let lambda = self.trial.eigenvalues();
        let lmin = lambda[0];
        let labs = lmin.abs().max(lambda[n - 1].abs());
        if lmin < -NEGATIVE_TOLERANCE * labs {
            return Err(CircuitError::InvalidCovariance(
                "the smoothed covariance would not be positive semidefinite".to_string(),
            ));
        }
        if shifted_min(lambda, self.floor).is_none() {
            return Err(CircuitError::NotPositiveDefinite);
        }
        std::mem::swap(&mut self.c_hat, &mut self.candidate);
        std::mem::swap(&mut self.eig, &mut self.trial);
        self.refresh_outputs();
        Ok(())
    }

    /// The whitening matrix `P = (Ĉ + ε²I)^{-1/2}` (Hermitian); the response is `r = P x`.
    pub fn whitening_matrix(&self) -> &DMatrix<T> {
        &self.p
    }

    /// `r = P x` into a slice, no allocation.
    ///
    /// # Panics
    /// If `x` or `r` does not have length `n` (like the circuits' `respond`).
    pub fn respond(&self, x: &[T], r: &mut [T]) {
        let n = self.n;
        assert!(
            x.len() == n && r.len() == n,
            "ZcaBaseline::respond: x and r must have length {n}"
        );
        r.fill(T::zero());
        for (j, &xj) in x.iter().enumerate() {
            for (i, ri) in r.iter_mut().enumerate() {
                *ri += self.p[(i, j)] * xj;
            }
        }
    }

    /// Eigenvalues of the equivalent recurrent matrix `M = (Ĉ + ε²I)^{1/2}`, ascending
    /// (`√(max(λ, 0) + ε²)` for the eigenvalues λ of `Ĉ`).
    pub fn recurrent_eigenvalues(&self) -> &[f64] {
        &self.m_eigenvalues
    }

    /// `(min, max)` eigenvalue of `M`, as published in the statistics record.
    pub fn recurrent_eigenvalue_range(&self) -> (f64, f64) {
        (self.m_eigenvalues[0], self.m_eigenvalues[self.n - 1])
    }

    /// Condition number `λ_max(M)/λ_min(M)` of the equivalent recurrent matrix.
    pub fn condition_number(&self) -> f64 {
        let (lo, hi) = self.recurrent_eigenvalue_range();
        hi / lo
    }

    /// The smoothed covariance estimate `Ĉ`.
    pub fn covariance(&self) -> &DMatrix<T> {
        &self.c_hat
    }

    /// Write the equivalent recurrent matrix `M = (Ĉ + ε²I)^{1/2}` into `out` (n×n), no
    /// allocation.
    pub fn recurrent_matrix_into(&self, out: &mut DMatrix<T>) {
        let eps2 = self.floor * self.floor;
        self.eig
            .apply_function_into(|l| (l.max(0.0) + eps2).sqrt(), out);
    }

    /// The whitening error `E = ‖P C P − I‖_F / √n` (docs/DESIGN.md §2.3 with `M⁻¹ = P`) for a
    /// covariance `C`, using internal scratch (no allocation).
    ///
    /// # Panics
    /// If `c` is not n×n.
    pub fn whitening_error(&mut self, c: &DMatrix<T>) -> f64 {
        let n = self.n;
        assert!(
            c.nrows() == n && c.ncols() == n,
            "ZcaBaseline::whitening_error: C must be {n}x{n}"
        );
        matmul_into(&mut self.scratch_a, c, &self.p);
        matmul_into(&mut self.scratch_b, &self.p, &self.scratch_a);
        let mut sum = 0.0;
        for j in 0..n {
            for i in 0..n {
                let mut v = self.scratch_b[(i, j)];
                if i == j {
                    v -= T::one();
                }
                sum += v.modulus_squared();
            }
        }
        (sum / n as f64).sqrt()
    }

    /// Sweeps the last successful eigendecomposition needed (diagnostics: 1–3 in steady state;
    /// 0 for a real `Ĉ` of three or more channels, decomposed by QL, and for n ≤ 2).
    pub fn last_sweeps(&self) -> usize {
        self.eig.sweeps()
    }

    /// Decompose `candidate` into `trial`: by QL for a real `Ĉ` of three or more channels,
    /// otherwise by Jacobi, warm-started from the committed decomposition if `warm`.
    fn decompose_candidate(&mut self, warm: bool) -> Result<(), EigenError> {
        match (self.ql.as_mut(), T::as_reals(self.candidate.as_slice())) {
            (Some(ql), Some(c)) => {
                ql.compute(c)?;
                self.trial.set_real_decomposition(ql.values(), ql.vectors());
                Ok(())
            }
            _ if warm => {
                self.trial.copy_from(&self.eig);
                self.trial.decompose_warm(&self.candidate)
            }
            _ => self.trial.decompose(&self.candidate),
        }
    }

    /// Recompute `P` and the eigenvalues of `M` from the committed decomposition and floor.
    fn refresh_outputs(&mut self) {
        let eps2 = self.floor * self.floor;
        for (m, &l) in self.m_eigenvalues.iter_mut().zip(self.eig.eigenvalues()) {
            *m = (l.max(0.0) + eps2).sqrt();
        }
        self.eig
            .apply_function_into(|l| 1.0 / (l.max(0.0) + eps2).sqrt(), &mut self.p);
    }
}

/// The smallest eigenvalue of `Ĉ + ε²I` (negative rounding clamped) if `P` would be finite.
fn shifted_min(lambda: &[f64], floor: f64) -> Option<f64> {
    let d = lambda[0].max(0.0) + floor * floor;
    if d > 0.0 && (1.0 / d.sqrt()).is_finite() {
        Some(d)
    } else {
        None
    }
}
