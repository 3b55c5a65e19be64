//! Allocation-free eigendecomposition of Hermitian matrices (real symmetric or complex
//! Hermitian) by the cyclic Jacobi method, for the audio thread.
//!
//! nalgebra's `SymmetricEigen::new` allocates its result, so it cannot run inside an audio
//! callback. [`HermitianEigen`] allocates every buffer once in [`HermitianEigen::new`] and then
//! decomposes any number of n×n matrices in place.
//!
//! # The method
//!
//! Cyclic Jacobi applies plane rotations `A ← Uᴴ A U`, one for each pivot pair `(p, q)`,
//! `p < q`, in row order (one pass over all pairs is a *sweep*), each chosen to annihilate
//! `a_pq`. The off-diagonal Frobenius norm `off(A)` shrinks by `|a_pq|²` with every rotation and
//! converges quadratically once it is small compared with the gaps between eigenvalues (also
//! with repeated eigenvalues). The product of the rotations is the eigenvector matrix `V`, with
//! `A = V Λ Vᴴ`.
//!
//! **Complex pivots.** For a Hermitian 2×2 pivot `[[a, g·e], [g·ē, b]]` with `a, b` real,
//! `g = |a_pq| > 0` and the unit phase `e = a_pq / |a_pq|`, the diagonal phase matrix
//! `D = diag(1, ē)` makes it real: `Dᴴ [[a, g e], [g ē, b]] D = [[a, g], [g, b]]`. The real
//! symmetric pivot is then diagonalised by the classical Jacobi rotation
//! `J = [[c, s], [−s, c]]` with
//!
//! ```text
//! θ = (b − a) / (2g),   t = sign(θ) / (|θ| + √(θ² + 1))   (the smaller root of t² + 2θt − 1 = 0),
//! c = 1 / √(1 + t²),    s = t·c,
//! a' = a − t·g,   b' = b + t·g,   a'_pq = 0.
//! ```
//!
//! Instead of `D J` we use the unitary `U = D J Dᴴ = [[c, s·e], [−s·ē, c]]`, which annihilates
//! the same element (`Uᴴ A U = D (Jᵀ (Dᴴ A D) J) Dᴴ`, and conjugating by the diagonal `D` keeps a
//! zero a zero) but leaves the phases of the other entries alone. For real matrices `e = ±1`
//! and `U` is exactly the textbook real rotation, so one code path serves both fields. On the
//! columns `k ∉ {p, q}`:
//!
//! ```text
//! a'_kp = c·a_kp − s·ē·a_kq,   a'_kq = s·e·a_kp + c·a_kq,   a'_pk = conj(a'_kp), a'_qk = conj(a'_kq),
//! v'_kp = c·v_kp − s·ē·v_kq,   v'_kq = s·e·v_kp + c·v_kq      (V ← V U, for every row k).
//! ```
//!
//! **Stopping.** Before each sweep `off(A)` is compared with `tol·‖A‖_F` (the Frobenius norm is
//! invariant under the rotations). A pivot that is negligible next to both of its diagonal
//! entries (`|d| + 100·|a_pq| == |d|` in floating point) is set to zero instead of rotated: this
//! moves the eigenvalues by less than `|a_pq| ≤ 0.01·ε_mach·|d|` and saves the late sweeps that
//! would only shuffle rounding noise. Within a sweep, a pivot below `tol·‖A‖_F / n` is skipped
//! (threshold Jacobi): if every pivot were that small, `off(A)` would already be below
//! `tol·‖A‖_F`, so a sweep that is needed always rotates at least one pivot, and a warm start's
//! last sweep touches only the few pivots that still matter.
//!
//! **Scaling.** The matrix is multiplied by a power of two (exact) that brings its largest entry
//! near 1 before the sweeps, so neither huge entries (whose squares would overflow the norms)
//! nor tiny ones (denormals, which are slow) occur inside the iteration.
//!
//! **Warm start.** When the matrix changed little since the last decomposition (an exponentially
//! smoothed covariance changes by a fraction α per update), the previous eigenvectors `V₀`
//! nearly diagonalise it: `B = V₀ᴴ A V₀` has off-diagonal entries of the order of the change, and
//! quadratic convergence then needs one to three sweeps instead of six to ten. The rotations
//! found for `B` are accumulated directly onto `V₀`, so the result is `A = (V₀W) Λ (V₀W)ᴴ`.
//! `V₀` is re-orthonormalised (modified Gram–Schmidt) before use so that rounding errors cannot
//! accumulate over millions of warm starts.

use crate::circuits::{matmul_into, mirror_lower, Dim, Dynamic, Scalar};
use nalgebra::DMatrix;

/// Default convergence tolerance: stop when `off(A) ≤ tol·‖A‖_F`. A few units of rounding
/// (`n·ε_mach ≈ 3.6e-15` at n = 16) fit below it, so it is reachable but demands a fully
/// converged decomposition.
pub const DEFAULT_TOLERANCE: f64 = 1e-14;

/// Default sweep cap. Cyclic Jacobi needs about 6–10 sweeps from scratch at n ≤ 64; a matrix
/// that has not converged after 50 sweeps is not a finite Hermitian matrix.
pub const DEFAULT_MAX_SWEEPS: usize = 50;

/// Why a decomposition failed. On any error the previous decomposition is kept.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum EigenError {
    /// The matrix is not `n × n` for the size the solver was built for.
    #[error("expected a {expected}x{expected} matrix, got {rows}x{cols}")]
    DimensionMismatch {
        /// The size the solver was built for.
        expected: usize,
        /// Rows of the matrix passed.
        rows: usize,
        /// Columns of the matrix passed.
        cols: usize,
    },
    /// The matrix has a NaN or infinite entry, or its eigenvalues overflow `f64`.
    #[error("the matrix has non-finite entries or eigenvalues")]
    NonFinite,
    /// The sweep cap was reached before `off(A) ≤ tol·‖A‖_F`.
    #[error("Jacobi did not converge in {sweeps} sweeps (relative off-diagonal norm {relative_off_diagonal:e})")]
    NotConverged {
        /// Sweeps performed.
        sweeps: usize,
        /// `off(A) / ‖A‖_F` when the iteration stopped.
        relative_off_diagonal: f64,
    },
}

/// A reusable, allocation-free Hermitian eigensolver for one size `n`.
///
/// Allocates in [`HermitianEigen::new`] only. Holds the last successful decomposition
/// `A = V diag(λ) Vᴴ` with ascending eigenvalues `λ` and orthonormal eigenvector columns `V`.
#[derive(Clone, Debug)]
pub struct HermitianEigen<T: Scalar> {
    /// Matrix size.
    n: usize,
    /// Published eigenvalues of the last successful decomposition, ascending.
    values: Vec<f64>,
    /// Published eigenvectors (columns, orthonormal, in the order of `values`).
    vectors: DMatrix<T>,
    /// The matrix being rotated to diagonal form (scaled by `2^-k`); Hermitian on entry to the
    /// sweeps, after which only its lower triangle and diagonal are maintained.
    work: DMatrix<T>,
    /// The accumulated rotations; swapped with `vectors` on success so that a failure keeps the
    /// previous result (a swap moves no heap memory).
    work_vectors: DMatrix<T>,
    /// Scratch for the warm-start product `A V₀`.
    scratch: DMatrix<T>,
    /// Whether `values`/`vectors` hold a decomposition (a warm start needs one).
    valid: bool,
    /// Sweeps performed by the last call, successful or not.
    sweeps: usize,
    /// Convergence tolerance on `off(A)/‖A‖_F`.
    tolerance: f64,
    /// Sweep cap.
    max_sweeps: usize,
}

impl<T: Scalar> HermitianEigen<T> {
    /// A solver for n×n matrices. The only allocating call; before the first decomposition the
    /// eigenvectors are `I` and the eigenvalues 0.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            values: vec![0.0; n],
            vectors: DMatrix::identity(n, n),
            work: DMatrix::zeros(n, n),
            work_vectors: DMatrix::identity(n, n),
            scratch: DMatrix::zeros(n, n),
            valid: false,
            sweeps: 0,
            tolerance: DEFAULT_TOLERANCE,
            max_sweeps: DEFAULT_MAX_SWEEPS,
        }
    }

    /// Matrix size `n`.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Set the relative tolerance on `off(A)/‖A‖_F` (values below ~1e-15 may be unreachable at
    /// larger n because of rounding; non-finite or negative values are ignored).
    pub fn set_tolerance(&mut self, tolerance: f64) {
        if tolerance.is_finite() && tolerance >= 0.0 {
            self.tolerance = tolerance;
        }
    }

    /// Set the sweep cap (at least 1).
    pub fn set_max_sweeps(&mut self, max_sweeps: usize) {
        self.max_sweeps = max_sweeps.max(1);
    }

    /// Eigenvalues of the last successful decomposition, ascending.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.values
    }

    /// Orthonormal eigenvectors (columns, same order as [`Self::eigenvalues`]).
    pub fn eigenvectors(&self) -> &DMatrix<T> {
        &self.vectors
    }

    /// Jacobi sweeps performed by the last `decompose`/`decompose_warm` call (0 when the input
    /// was already diagonal to tolerance, e.g. a warm start on an unchanged matrix).
    pub fn sweeps(&self) -> usize {
        self.sweeps
    }

    /// Whether a successful decomposition is held.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Copy another solver's state (same `n`) without allocating — for transactional updates
    /// that decompose a candidate and keep the old decomposition if it is rejected.
    ///
    /// # Panics
    /// If the sizes differ.
    pub fn copy_from(&mut self, other: &Self) {
        assert_eq!(self.n, other.n, "HermitianEigen::copy_from: sizes differ");
        self.values.copy_from_slice(&other.values);
        self.vectors.copy_from(&other.vectors);
        self.valid = other.valid;
        self.sweeps = other.sweeps;
        self.tolerance = other.tolerance;
        self.max_sweeps = other.max_sweeps;
    }

    /// Publish a decomposition `A = V diag(λ) Vᵀ` of a real symmetric matrix computed
    /// elsewhere (Householder and QL, [`SymmetricEigen`]): `values` ascending, `vectors`
    /// orthonormal columns, column-major. No allocation.
    ///
    /// # Panics
    /// If the lengths are not `n` and `n²`.
    pub(crate) fn set_real_decomposition(&mut self, values: &[f64], vectors: &[f64]) {
        let n = self.n;
        assert!(values.len() == n && vectors.len() == n * n);
        self.values.copy_from_slice(values);
        for (v, &x) in self.vectors.as_mut_slice().iter_mut().zip(vectors) {
            *v = T::from_real(x);
        }
        self.sweeps = 0;
        self.valid = true;
    }

    /// Decompose the Hermitian `a` from scratch. Only the lower triangle and the real part of
    /// the diagonal are read (like nalgebra's `SymmetricEigen`). No allocation.
    pub fn decompose(&mut self, a: &DMatrix<T>) -> Result<(), EigenError> {
        if self.n <= 2 {
            return self.decompose_small(a);
        }
        let scale = self.load(a)?;
        self.work_vectors.fill_with_identity();
        self.finish(scale)
    }

    /// Decompose `a` starting from the previous eigenvectors `V₀`: rotate into `B = V₀ᴴ A V₀`
    /// (nearly diagonal when `a` changed little), diagonalise `B`, and compose the rotations
    /// onto `V₀`. Same result as [`Self::decompose`] to rounding, usually in one to three sweeps.
    /// Falls back to a cold start when no previous decomposition is held. No allocation.
    pub fn decompose_warm(&mut self, a: &DMatrix<T>) -> Result<(), EigenError> {
        if !self.valid || self.n <= 2 {
            return self.decompose(a);
        }
        let scale = self.load(a)?;
        self.work_vectors.copy_from(&self.vectors);
        if !orthonormalise_columns(&mut self.work_vectors) {
            // V₀ is unusable (cannot happen for a solver's own output); start cold.
            self.work_vectors.fill_with_identity();
        } else {
            let n = self.n;
            // scratch = A V₀ (A Hermitian, full storage).
            matmul_into(&mut self.scratch, &self.work, &self.work_vectors);
            // work = V₀ᴴ scratch, lower triangle only, then mirrored: B is Hermitian exactly.
            // Entry (i, j) is the dot product of columns i of V₀ and j of A V₀ (contiguous).
            let (v0, av) = (self.work_vectors.as_slice(), self.scratch.as_slice());
            let b = self.work.as_mut_slice();
            for j in 0..n {
                let avj = &av[j * n..(j + 1) * n];
                for i in j..n {
                    let mut acc = T::zero();
                    for (&vki, &akj) in v0[i * n..(i + 1) * n].iter().zip(avj) {
                        acc += vki.conjugate() * akj;
                    }
                    b[i + j * n] = acc;
                }
            }
            mirror_lower(&mut self.work);
        }
        self.finish(scale)
    }

    /// `out = V diag(f(λ)) Vᴴ`, Hermitian exactly (lower triangle computed, upper mirrored).
    /// Used for matrix functions such as `C^{-1/2}` and `C^{1/2}`. `f` is called once per
    /// eigenvalue. No allocation.
    ///
    /// # Panics
    /// If `out` is not n×n.
    pub fn apply_function_into(&self, f: impl Fn(f64) -> f64, out: &mut DMatrix<T>) {
        let n = self.n;
        assert!(
            out.nrows() == n && out.ncols() == n,
            "apply_function_into: output must be {n}x{n}"
        );
        let (v, o) = (self.vectors.as_slice(), out.as_mut_slice());
        match (v, o) {
            // n ≤ 2 (the baseline of every mono or stereo spectral band) written out:
            // f₀ v₀ v₀ᴴ + f₁ v₁ v₁ᴴ with the diagonal real.
            (&[v00], [o00]) => {
                *o00 = T::from_real(f(self.values[0]) * v00.modulus_squared());
                return;
            }
            (&[v00, v10, v01, v11], [o00, o10, o01, o11]) => {
                let (f0, f1) = (f(self.values[0]), f(self.values[1]));
                *o00 = T::from_real(f0 * v00.modulus_squared() + f1 * v01.modulus_squared());
                *o11 = T::from_real(f0 * v10.modulus_squared() + f1 * v11.modulus_squared());
                *o10 = v10 * v00.conjugate().scale(f0) + v11 * v01.conjugate().scale(f1);
                *o01 = o10.conjugate();
                return;
            }
            _ => {}
        }
        out.fill(T::zero());
        for k in 0..n {
            let fk = T::from_real(f(self.values[k]));
            for j in 0..n {
                // out[i, j] += V[i, k] f(λ_k) conj(V[j, k]) for i ≥ j (column-major inner loop).
                let w = fk * self.vectors[(j, k)].conjugate();
                for i in j..n {
                    out[(i, j)] += self.vectors[(i, k)] * w;
                }
            }
        }
        mirror_lower(out);
    }

    /// `a` is n×n for this solver's n.
    fn check_shape(&self, a: &DMatrix<T>) -> Result<(), EigenError> {
        if a.nrows() != self.n || a.ncols() != self.n {
            return Err(EigenError::DimensionMismatch {
                expected: self.n,
                rows: a.nrows(),
                cols: a.ncols(),
            });
        }
        Ok(())
    }

    /// Check `a`, copy its Hermitian lower triangle into `work` scaled by a power of two so the
    /// largest entry is in [0.5, 1), and return the scale to multiply eigenvalues back with.
    fn load(&mut self, a: &DMatrix<T>) -> Result<f64, EigenError> {
        let n = self.n;
        self.check_shape(a)?;
        let mut amax: f64 = 0.0;
        for j in 0..n {
            let d = a[(j, j)].real();
            if !d.is_finite() {
                return Err(EigenError::NonFinite);
            }
            amax = amax.max(d.abs());
            for i in j + 1..n {
                let v = a[(i, j)];
                if !v.is_finite() {
                    return Err(EigenError::NonFinite);
                }
                // max(|re|, |im|) cannot overflow, unlike the modulus.
                amax = amax.max(v.real().abs()).max(v.imaginary().abs());
            }
        }
        let (down, up) = power_of_two_scale(amax);
        for j in 0..n {
            self.work[(j, j)] = T::from_real(a[(j, j)].real() * down);
            for i in j + 1..n {
                self.work[(i, j)] = a[(i, j)].scale(down);
            }
        }
        mirror_lower(&mut self.work);
        Ok(up)
    }

    /// n ≤ 2 in closed form ([`eigen_2x2_parts`]), straight from `a`'s lower triangle to the
    /// published result: the same checks and power-of-two scaling as [`Self::load`], without
    /// its loops or a work matrix. Every spectral band of a mono or stereo input decomposes
    /// this way for the stats and the baseline, several times per update, where the loops
    /// cost several times the closed form.
    fn decompose_small(&mut self, a: &DMatrix<T>) -> Result<(), EigenError> {
        let n = self.n;
        self.check_shape(a)?;
        let s = a.as_slice();
        // Lower triangle: a₀₀, a₁₀, a₁₁ (a 1×1 matrix has only a₀₀).
        let (d0, b, d1) = match *s {
            [a00] => (a00.real(), T::zero(), 0.0),
            [a00, a10, _, a11] => (a00.real(), a10, a11.real()),
            // n = 0: nothing to decompose.
            _ => {
                self.sweeps = 0;
                self.valid = true;
                return Ok(());
            }
        };
        if !(d0.is_finite() && d1.is_finite() && b.is_finite()) {
            return Err(EigenError::NonFinite);
        }
        // max(|re|, |im|) cannot overflow, unlike the modulus.
        let amax = d0
            .abs()
            .max(d1.abs())
            .max(b.real().abs())
            .max(b.imaginary().abs());
        let (down, up) = power_of_two_scale(amax);
        let (mu, u) = eigen_2x2_parts(n, d0 * down, d1 * down, b.scale(down));
        let values = [mu[0] * up, mu[1] * up];
        if !values[..n].iter().all(|l| l.is_finite()) {
            return Err(EigenError::NonFinite);
        }
        self.values.copy_from_slice(&values[..n]);
        self.vectors.as_mut_slice().copy_from_slice(&u[..n * n]);
        self.sweeps = 0;
        self.valid = true;
        Ok(())
    }

    /// Run the sweeps on `work`, accumulating into `work_vectors`; on success sort, publish.
    fn finish(&mut self, up: f64) -> Result<(), EigenError> {
        let n = self.n;
        self.sweeps = 0;
        let total = frobenius_sq(&self.work).sqrt();
        loop {
            let off = off_diagonal_sq(&self.work).sqrt();
            if off <= self.tolerance * total {
                break;
            }
            if !off.is_finite() {
                return Err(EigenError::NonFinite);
            }
            if self.sweeps >= self.max_sweeps {
                return Err(EigenError::NotConverged {
                    sweeps: self.sweeps,
                    relative_off_diagonal: off / total,
                });
            }
            // Threshold Jacobi: a pivot below `tol·‖A‖_F / n` is left alone — were every pivot
            // that small, `off(A)` would already be under the tolerance — which saves most of a
            // warm start's last sweep.
            let threshold = self.tolerance * total / n as f64;
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports the feature `sweep_avx2` is compiled for.
                unsafe { sweep_avx2(&mut self.work, &mut self.work_vectors, threshold) };
            } else {
                sweep(
                    Dynamic(n),
                    self.work.as_mut_slice(),
                    self.work_vectors.as_mut_slice(),
                    threshold,
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            sweep(
                Dynamic(n),
                self.work.as_mut_slice(),
                self.work_vectors.as_mut_slice(),
                threshold,
            );
            self.sweeps += 1;
        }
        // Selection sort, ascending, permuting eigenvector columns along (no allocation).
        for i in 0..n {
            let mut best = i;
            for j in i + 1..n {
                if self.work[(j, j)].real() < self.work[(best, best)].real() {
                    best = j;
                }
            }
            if best != i {
                let tmp = self.work[(i, i)];
                self.work[(i, i)] = self.work[(best, best)];
                self.work[(best, best)] = tmp;
                self.work_vectors.swap_columns(i, best);
            }
        }
        for i in 0..n {
            if !(self.work[(i, i)].real() * up).is_finite() {
                return Err(EigenError::NonFinite);
            }
        }
        for i in 0..n {
            self.values[i] = self.work[(i, i)].real() * up;
        }
        std::mem::swap(&mut self.vectors, &mut self.work_vectors);
        self.valid = true;
        Ok(())
    }
}

/// `(2^-e, 2^e)` with `amax·2^-e` in `[0.5, 1)` for a finite `amax > 0`, `(1, 1)` for zero
/// (nothing to scale). Read off the exponent bits where both powers are normal numbers — this
/// runs for every small decomposition, where `log2` and two `powi` calls cost more than the
/// closed form itself — else by `log2`/`powi` (subnormal `amax`, or `|e|` near the exponent
/// range's ends, where `up`·λ is checked for finiteness later).
fn power_of_two_scale(amax: f64) -> (f64, f64) {
    if amax <= 0.0 || !amax.is_finite() {
        return (1.0, 1.0);
    }
    // amax ∈ [2^(b−1023), 2^(b−1022)) for a normal number with biased exponent b.
    let biased = ((amax.to_bits() >> 52) & 0x7ff) as i32;
    let e = biased - 1022;
    if biased > 0 && (-1021..=1021).contains(&e) {
        let pow2 = |k: i32| f64::from_bits(((1023 + k) as u64) << 52);
        (pow2(-e), pow2(e))
    } else {
        let e = amax.log2().floor() as i32 + 1;
        (2f64.powi(-e), 2f64.powi(e))
    }
}

/// The eigendecomposition of a Hermitian `m` of size 1 or 2 in closed form: eigenvalues
/// ascending into `mu`, unit eigenvectors as the columns of `u`. For
/// `[[a, b̄], [b, d]]`: `λ = (a + d)/2 ∓ √(((a − d)/2)² + |b|²)`; the eigenvector of the larger
/// one from whichever row avoids cancellation, the other orthogonal to it.
pub(crate) fn eigen_2x2<T: Scalar>(m: &DMatrix<T>, u: &mut DMatrix<T>, mu: &mut [f64; 2]) {
    let n = m.nrows();
    let s = m.as_slice();
    let (a, d, b) = if n == 1 {
        (s[0].real(), 0.0, T::zero())
    } else {
        (s[0].real(), s[3].real(), s[1])
    };
    let (values, vectors) = eigen_2x2_parts(n, a, d, b);
    *mu = values;
    u.as_mut_slice()[..n * n].copy_from_slice(&vectors[..n * n]);
}

/// [`eigen_2x2`] on the entries: `n` = 1 or 2, the diagonal `a`, `d` and the lower entry `b`
/// (`d` and `b` unused for n = 1). Returns the eigenvalues ascending and the eigenvectors
/// column-major (the first `n²` entries).
#[inline]
fn eigen_2x2_parts<T: Scalar>(n: usize, a: f64, d: f64, b: T) -> ([f64; 2], [T; 4]) {
    if n == 1 {
        return ([a, 0.0], [T::one(), T::zero(), T::zero(), T::zero()]);
    }
    let (mean, diff) = (0.5 * (a + d), 0.5 * (a - d));
    let b2 = b.modulus_squared();
    let r = (diff * diff + b2).sqrt();
    let mu = [mean - r, mean + r];
    // Eigenvector of mu[1]: [λ − d, b] (second row) or [b̄, λ − a] (first row).
    let (v1, v2) = if b2 == 0.0 {
        if a > d {
            (T::one(), T::zero())
        } else {
            (T::zero(), T::one())
        }
    } else if diff >= 0.0 {
        (T::from_real(diff + r), b)
    } else {
        (b.conjugate(), T::from_real(r - diff))
    };
    let norm = (v1.modulus_squared() + v2.modulus_squared()).sqrt();
    let (v1, v2) = (v1.unscale(norm), v2.unscale(norm));
    // Columns: the smaller eigenvalue's vector [−v̄₂, v̄₁], then the larger's.
    (mu, [-v2.conjugate(), v1.conjugate(), v1, v2])
}

/// One cyclic sweep of Jacobi rotations over every pivot `(p, q)`, `p < q`.
#[inline(always)]
fn sweep<T: Scalar, D: Dim>(d: D, a: &mut [T], v: &mut [T], threshold: f64) {
    let n = d.get();
    for p in 0..n {
        for q in p + 1..n {
            rotate(d, a, v, p, q, threshold);
        }
    }
}

/// [`sweep`] compiled for AVX2 (4 f64 lanes in the rotations' column loops instead of SSE2's
/// 2; no FMA, so the same operations and a bit-identical result): the warm Jacobi of the direct
/// circuit's exponential step and of the stats is the largest single cost at 16 channels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sweep_avx2<T: Scalar>(a: &mut DMatrix<T>, v: &mut DMatrix<T>, threshold: f64) {
    let n = a.nrows();
    let (a, v) = (a.as_mut_slice(), v.as_mut_slice());
    crate::by_size!(n, d => sweep(d, a, v, threshold))
}

/// One Jacobi rotation annihilating `a_pq` (`p < q`) of the Hermitian `a`, accumulated as
/// `v ← v U`, unless `|a_pq|` is below `threshold`; see the module documentation for the
/// formulas.
///
/// During the sweeps only the strict lower triangle and the diagonal of `a` are kept up to
/// date (the upper triangle is stale): an entry `a_kp` with `k < p` is read as `conj(a[(p, k)])`.
/// This halves the memory traffic of a rotation compared with updating both triangles.
#[inline(always)]
fn rotate<T: Scalar, D: Dim>(d: D, a: &mut [T], v: &mut [T], p: usize, q: usize, threshold: f64) {
    let n = d.get();
    debug_assert!(p < q && q < n);
    let (data, v) = (&mut a[..n * n], &mut v[..n * n]);
    // a_pq = conj(a_qp), the stored lower entry.
    let apq = data[q + p * n].conjugate();
    let g = apq.modulus();
    if g == 0.0 || g < threshold {
        return;
    }
    let app = data[p + p * n].real();
    let aqq = data[q + q * n].real();
    // Negligible next to both diagonal entries: zero it instead (moves λ by < 0.01 ε_mach |d|).
    let small = 100.0 * g;
    if app.abs() + small == app.abs() && aqq.abs() + small == aqq.abs() {
        data[q + p * n] = T::zero();
        return;
    }
    let theta = (aqq - app) / (2.0 * g);
    let t = if theta.abs() > 1e150 {
        // θ² would overflow; t ≈ 1/(2θ).
        0.5 / theta
    } else {
        let r = (theta * theta + 1.0).sqrt();
        if theta >= 0.0 {
            1.0 / (theta + r)
        } else {
            -1.0 / (-theta + r)
        }
    };
    let c = 1.0 / (1.0 + t * t).sqrt();
    let s = t * c;
    // e = a_pq/|a_pq| (±1 for ℝ); se = s·e, sec = s·ē.
    let e = apq.unscale(g);
    let se = e.scale(s);
    let sec = e.conjugate().scale(s);
    // (a_kp, a_kq) ← (c·a_kp − s·ē·a_kq, s·e·a_kp + c·a_kq) for k ∉ {p, q}, reading and writing
    // each entry where it is stored (lower triangle).
    let rot = |akp: T, akq: T| (akp.scale(c) - sec * akq, se * akp + akq.scale(c));
    {
        // k < p: a_kp = conj(a[p, k]), a_kq = conj(a[q, k]) — both in column k.
        for k in 0..p {
            let col = k * n;
            let (nkp, nkq) = rot(data[p + col].conjugate(), data[q + col].conjugate());
            data[p + col] = nkp.conjugate();
            data[q + col] = nkq.conjugate();
        }
        // p < k < q: a_kp = a[k, p] (column p), a_kq = conj(a[q, k]) (column k).
        for k in p + 1..q {
            let (nkp, nkq) = rot(data[k + p * n], data[q + k * n].conjugate());
            data[k + p * n] = nkp;
            data[q + k * n] = nkq.conjugate();
        }
        // k > q: both in the contiguous tails of columns p and q.
        let (left, right) = data.split_at_mut(q * n);
        let col_p = &mut left[p * n + q + 1..p * n + n];
        let col_q = &mut right[q + 1..n];
        for (xp, xq) in col_p.iter_mut().zip(col_q.iter_mut()) {
            let (nkp, nkq) = rot(*xp, *xq);
            *xp = nkp;
            *xq = nkq;
        }
    }
    data[p + p * n] = T::from_real(app - t * g);
    data[q + q * n] = T::from_real(aqq + t * g);
    data[q + p * n] = T::zero();
    // V ← V U on the two (contiguous) columns.
    let (left, right) = v.split_at_mut(q * n);
    let col_p = &mut left[p * n..p * n + n];
    let col_q = &mut right[..n];
    for (xp, xq) in col_p.iter_mut().zip(col_q.iter_mut()) {
        let (nkp, nkq) = rot(*xp, *xq);
        *xp = nkp;
        *xq = nkq;
    }
}

/// `Σ_{i≠j} |a_ij|²`.
fn off_diagonal_sq<T: Scalar>(a: &DMatrix<T>) -> f64 {
    let n = a.nrows();
    let mut sum = 0.0;
    // Column slices below the diagonal, in the order of the indexed loops they replace.
    for (j, col) in a.as_slice().chunks_exact(n.max(1)).enumerate() {
        for v in &col[j + 1..] {
            sum += v.modulus_squared();
        }
    }
    2.0 * sum
}

/// `‖a‖_F²`.
fn frobenius_sq<T: Scalar>(a: &DMatrix<T>) -> f64 {
    // A plain slice: nalgebra's matrix iterator steps through strides.
    a.as_slice().iter().map(|v| v.modulus_squared()).sum()
}

/// Modified Gram–Schmidt on the columns, in place. Returns false if a column collapsed (the
/// matrix was far from unitary), in which case the contents are unspecified.
fn orthonormalise_columns<T: Scalar>(v: &mut DMatrix<T>) -> bool {
    let m = v.nrows();
    if m == 0 {
        return true;
    }
    // Column slices (column-major storage): column j against the finished columns before it.
    let vs = v.as_mut_slice();
    for j in 0..vs.len() / m {
        let (done, rest) = vs.split_at_mut(j * m);
        let vj = &mut rest[..m];
        for vi in done.chunks_exact(m) {
            let mut r = T::zero();
            for (&vki, &vkj) in vi.iter().zip(vj.iter()) {
                r += vki.conjugate() * vkj;
            }
            for (vkj, &vki) in vj.iter_mut().zip(vi) {
                *vkj -= r * vki;
            }
        }
        let norm: f64 = vj.iter().map(|x| x.modulus_squared()).sum::<f64>().sqrt();
        // A column of a (nearly) unitary matrix has norm ≈ 1; anything far off means corruption.
        if !(norm > 0.5 && norm < 2.0) {
            return false;
        }
        let inv = 1.0 / norm;
        for x in vj.iter_mut() {
            *x = x.scale(inv);
        }
    }
    true
}

mod tridiagonal;
pub use tridiagonal::{SymmetricEigen, SymmetricEigenvalues};

#[cfg(test)]
mod tests;
