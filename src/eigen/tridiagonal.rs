//! Real symmetric eigenproblems without allocation: Householder reduction to tridiagonal
//! form, then the implicit QL iteration with Wilkinson-type shifts (Golub & Van Loan,
//! *Matrix Computations*, §8.3; EISPACK's `tql1`, and `tred2`/`tql2` with eigenvectors).
//!
//! [`SymmetricEigenvalues`]: the stats show `M`'s spectrum every few tens of milliseconds and
//! need its eigenvalues, not its eigenvectors; the reduction is `4n³/3` flops and the QL
//! iteration `O(n²)`, with no state between calls. [`SymmetricEigen`] also accumulates the
//! reflectors and rotations: the direct circuit's exponential step needs `M`'s eigenbasis
//! (docs/DESIGN.md §4.3). Both are compiled per size with AVX2/FMA where the CPU has them.

use super::{power_of_two_scale, EigenError};
use crate::circuits::{dot_lanes, Dim, Dynamic};

/// `$solver.reduce` at size `$n`: with AVX2 and FMA through the solver's `reduce_avx2`
/// (compiled for them, per size), otherwise at run-time size. A macro rather than a generic
/// function over both solvers: that one compiled to 1.3 % more instructions at 16 channels
/// (BENCHMARKS.md, 2026-12-02 morning).
macro_rules! reduce_per_size {
    ($solver:expr, $n:expr) => {{
        #[cfg(target_arch = "x86_64")]
        let result = if crate::circuits::real_fma_available() {
            // SAFETY: the CPU supports the features `reduce_avx2` is compiled for.
            unsafe { $solver.reduce_avx2() }
        } else {
            $solver.reduce(Dynamic($n))
        };
        #[cfg(not(target_arch = "x86_64"))]
        let result = $solver.reduce(Dynamic($n));
        result
    }};
}

/// Preallocated work space for [`SymmetricEigenvalues::compute`] at one size `n`.
#[derive(Clone, Debug)]
pub struct SymmetricEigenvalues {
    /// The matrix being reduced (column-major `n × n`), overwritten.
    a: Vec<f64>,
    /// Diagonal of the tridiagonal matrix, then the eigenvalues (ascending).
    d: Vec<f64>,
    /// Its sub-diagonal (`e[i]` couples `i` and `i + 1`; `e[n − 1] = 0`).
    e: Vec<f64>,
    /// The Householder vector and `β A v` of one reduction step.
    v: Vec<f64>,
    q: Vec<f64>,
}

/// QL iterations allowed per eigenvalue before giving up (it converges in two or three).
const MAX_ITERATIONS: usize = 60;

impl SymmetricEigenvalues {
    /// Work space for `n × n` matrices.
    pub fn new(n: usize) -> Self {
        Self {
            a: vec![0.0; n * n],
            d: vec![0.0; n],
            e: vec![0.0; n],
            v: vec![0.0; n],
            q: vec![0.0; n],
        }
    }

    /// The size this work space was made for.
    pub fn dim(&self) -> usize {
        self.d.len()
    }

    /// The eigenvalues, ascending, of the symmetric `n × n` column-major matrix `m` (only its
    /// lower triangle is read). No allocation.
    pub fn compute(&mut self, m: &[f64]) -> Result<&[f64], EigenError> {
        let n = self.dim();
        let up = self.load(m)?;
        if n == 0 {
            return Ok(&self.d);
        }
        reduce_per_size!(self, n)?;
        for x in self.d.iter_mut() {
            *x *= up;
        }
        // In place, no allocation (the slice's unstable sort).
        self.d.sort_unstable_by(f64::total_cmp);
        if self.d.iter().any(|x| !x.is_finite()) {
            return Err(EigenError::NonFinite);
        }
        Ok(&self.d)
    }

    /// Reduction and QL on the loaded matrix, for dimension `dim`.
    #[inline(always)]
    fn reduce<D: Dim>(&mut self, dim: D) -> Result<(), EigenError> {
        let (a, d, e) = (&mut self.a, &mut self.d, &mut self.e);
        tridiagonalise(dim, a, d, e, &mut self.v, &mut self.q, None);
        ql_implicit(dim, d, e, None)
    }

    /// [`Self::reduce`] compiled for AVX2 and FMA, per size (`by_size!`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_avx2(&mut self) -> Result<(), EigenError> {
        let n = self.dim();
        crate::by_size!(n, d => self.reduce(d))
    }

    /// Checks `m` (length, finite lower triangle) and copies it into `a` in full storage,
    /// scaled by a power of two; returns the factor that scales eigenvalues back.
    fn load(&mut self, m: &[f64]) -> Result<f64, EigenError> {
        let n = self.dim();
        if m.len() != n * n {
            return Err(EigenError::DimensionMismatch {
                expected: n,
                rows: m.len() / n.max(1),
                cols: n,
            });
        }
        let a = &mut self.a;
        // The largest entry scaled into [0.5, 1) by a power of two (exact both ways), so that
        // the rotations' `√(f² + g²)` can neither overflow nor underflow where `hypot` — a
        // library call per rotation — would be needed.
        let mut largest = 0.0f64;
        for j in 0..n {
            for &x in &m[j * n + j..(j + 1) * n] {
                if !x.is_finite() {
                    return Err(EigenError::NonFinite);
                }
                largest = largest.max(x.abs());
            }
        }
        let (down, up) = power_of_two_scale(largest);
        // Full storage from the lower triangle.
        for j in 0..n {
            for i in j..n {
                let x = m[i + j * n] * down;
                a[i + j * n] = x;
                a[j + i * n] = x;
            }
        }
        Ok(up)
    }
}

/// Householder reduction `Qᵀ A Q = T` (symmetric tridiagonal) of the full-storage `a`, in
/// place: step k reflects column k below the diagonal onto its first entry, `H = I − β v vᵀ`,
/// and updates the trailing block as `A ← A − v wᵀ − w vᵀ` with `p = β A v`,
/// `w = p − (β vᵀp / 2) v`. Writes `T`'s diagonal to `d` and sub-diagonal to `e`.
///
/// With `betas`, reflector k's `v` is also kept in column k of `a` below the diagonal (which
/// the reduction no longer reads) and its `β` in `betas[k]` (0 for none), for
/// [`accumulate_reflectors`].
#[inline(always)]
fn tridiagonalise<D: Dim>(
    dim: D,
    a: &mut [f64],
    d: &mut [f64],
    e: &mut [f64],
    v: &mut [f64],
    q: &mut [f64],
    mut betas: Option<&mut [f64]>,
) {
    let n = dim.get();
    for k in 0..n.saturating_sub(2) {
        let lo = k + 1;
        if let Some(b) = betas.as_deref_mut() {
            b[k] = 0.0;
        }
        let col = &a[k * n + lo..(k + 1) * n];
        let norm = dot_lanes::<4>(col, col).sqrt();
        d[k] = a[k + k * n];
        if norm == 0.0 {
            e[k] = 0.0;
            continue;
        }
        // α = −sign(x₀)‖x‖ so that v₀ = x₀ − α does not cancel.
        let alpha = if col[0] > 0.0 { -norm } else { norm };
        let v = &mut v[lo..n];
        v.copy_from_slice(col);
        v[0] -= alpha;
        let vv = dot_lanes::<4>(v, v);
        e[k] = alpha;
        if vv == 0.0 {
            continue;
        }
        let beta = 2.0 / vv;
        if let Some(b) = betas.as_deref_mut() {
            b[k] = beta;
            a[k * n + lo..(k + 1) * n].copy_from_slice(v);
        }
        // p = β A₂₂ v (A₂₂ symmetric: column j of it times v_j).
        let q = &mut q[lo..n];
        q.fill(0.0);
        for (j, &vj) in v.iter().enumerate() {
            let cj = &a[(lo + j) * n + lo..(lo + j + 1) * n];
            for (qi, &aij) in q.iter_mut().zip(cj) {
                *qi += aij * vj;
            }
        }
        for qi in q.iter_mut() {
            *qi *= beta;
        }
        let half = 0.5 * beta * dot_lanes::<4>(v, q);
        for (qi, &vi) in q.iter_mut().zip(v.iter()) {
            *qi -= half * vi;
        }
        // A₂₂ ← A₂₂ − v wᵀ − w vᵀ (both triangles, column by column).
        for j in 0..n - lo {
            let (vj, wj) = (v[j], q[j]);
            let cj = &mut a[(lo + j) * n + lo..(lo + j + 1) * n];
            for ((aij, &vi), &wi) in cj.iter_mut().zip(v.iter()).zip(q.iter()) {
                *aij -= vi * wj + wi * vj;
            }
        }
    }
    if n >= 2 {
        d[n - 2] = a[(n - 2) + (n - 2) * n];
        e[n - 2] = a[(n - 1) + (n - 2) * n];
    }
    d[n - 1] = a[(n - 1) + (n - 1) * n];
    e[n - 1] = 0.0;
}

/// The eigenvalues of the symmetric tridiagonal matrix (`d`, `e`) into `d` (unsorted) by the
/// implicit QL iteration: for each `l`, find the first negligible sub-diagonal entry `e[m]`
/// at or after it, and while `m > l` chase a plane-rotation bulge from `m` up to `l` with the
/// shift from the trailing 2×2 block at `l`.
///
/// With `z` (column-major `n × n`), every rotation of rows `i`, `i + 1` is also applied to
/// columns `i`, `i + 1` of `z` from the right, so `z`'s columns become the eigenvectors of
/// `z T zᵀ` (EISPACK's `tql2`).
#[inline(always)]
fn ql_implicit<D: Dim>(
    dim: D,
    d: &mut [f64],
    e: &mut [f64],
    mut z: Option<&mut [f64]>,
) -> Result<(), EigenError> {
    let n = dim.get();
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > MAX_ITERATIONS {
                let off: f64 = e.iter().map(|x| x * x).sum::<f64>();
                let diag: f64 = d.iter().map(|x| x * x).sum::<f64>();
                return Err(EigenError::NotConverged {
                    sweeps: iterations,
                    relative_off_diagonal: (off / (off + diag)).sqrt(),
                });
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            // √(g² + 1), without squaring a g that would overflow.
            let mut r = if g.abs() > 1e150 {
                g.abs()
            } else {
                (g * g + 1.0).sqrt()
            };
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = (f * f + g * g).sqrt();
                e[i + 1] = r;
                if r == 0.0 {
                    // The rotation underflowed: the matrix has split; deflate and restart.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                if let Some(z) = z.as_deref_mut() {
                    // Columns i and i + 1 are contiguous and adjacent.
                    let (zi, zi1) = z[i * n..(i + 2) * n].split_at_mut(n);
                    for (x, y) in zi.iter_mut().zip(zi1.iter_mut()) {
                        let (xi, yi) = (*x, *y);
                        *y = s * xi + c * yi;
                        *x = c * xi - s * yi;
                    }
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(())
}

/// `Q = H₀ H₁ ⋯ H_{n−3}` into `z` from the reflectors [`tridiagonalise`] kept in `a` and
/// `betas`, by backward accumulation: `H_k` touches rows and columns after `k` only, so each
/// is applied to the trailing block of the product of the later ones.
#[inline(always)]
fn accumulate_reflectors<D: Dim>(dim: D, a: &[f64], betas: &[f64], z: &mut [f64]) {
    let n = dim.get();
    z.fill(0.0);
    for i in 0..n {
        z[i + i * n] = 1.0;
    }
    for k in (0..n.saturating_sub(2)).rev() {
        let beta = betas[k];
        if beta == 0.0 {
            continue;
        }
        let lo = k + 1;
        let v = &a[k * n + lo..(k + 1) * n];
        for j in lo..n {
            let col = &mut z[j * n + lo..(j + 1) * n];
            let s = beta * dot_lanes::<4>(v, col);
            for (c, &vi) in col.iter_mut().zip(v) {
                *c -= s * vi;
            }
        }
    }
}

/// Eigenvalues and eigenvectors of a real symmetric matrix, without allocation and without
/// state between calls: the reduction of [`SymmetricEigenvalues`] with its reflectors
/// accumulated, then the QL iteration applied to them as well (EISPACK's `tred2` and `tql2`).
///
/// The direct circuit's exponential step needs `M`'s eigenbasis once per block at three or
/// more channels (docs/DESIGN.md §4.3); a warm-started Jacobi decomposition took about two
/// sweeps and a warm start, about 140 k instructions at 16 channels.
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// The reduction's work space (its `a` keeps the reflectors).
    inner: SymmetricEigenvalues,
    /// The reflectors' `β`.
    betas: Vec<f64>,
    /// The eigenvectors, column-major, column `i` for eigenvalue `i`.
    z: Vec<f64>,
}

impl SymmetricEigen {
    /// Work space for `n × n` matrices.
    pub fn new(n: usize) -> Self {
        Self {
            inner: SymmetricEigenvalues::new(n),
            betas: vec![0.0; n],
            z: vec![0.0; n * n],
        }
    }

    /// The size this work space was made for.
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Decomposes the symmetric `n × n` column-major matrix `m` (only its lower triangle is
    /// read): afterwards [`values`](Self::values) ascending and [`vectors`](Self::vectors)
    /// orthonormal, `m = V diag(λ) Vᵀ`. No allocation.
    pub fn compute(&mut self, m: &[f64]) -> Result<(), EigenError> {
        let n = self.dim();
        let up = self.inner.load(m)?;
        if n == 0 {
            return Ok(());
        }
        reduce_per_size!(self, n)?;
        let w = &mut self.inner;
        for x in w.d.iter_mut() {
            *x *= up;
        }
        if w.d.iter().any(|x| !x.is_finite()) {
            return Err(EigenError::NonFinite);
        }
        // Ascending, eigenvector columns along (selection sort: n swaps at most).
        for i in 0..n {
            let mut best = i;
            for j in i + 1..n {
                if w.d[j] < w.d[best] {
                    best = j;
                }
            }
            if best != i {
                w.d.swap(i, best);
                let (left, right) = self.z.split_at_mut(best * n);
                left[i * n..(i + 1) * n].swap_with_slice(&mut right[..n]);
            }
        }
        Ok(())
    }

    /// Reduction, accumulation and QL on the loaded matrix, for dimension `dim`.
    #[inline(always)]
    fn reduce<D: Dim>(&mut self, dim: D) -> Result<(), EigenError> {
        let w = &mut self.inner;
        tridiagonalise(
            dim,
            &mut w.a,
            &mut w.d,
            &mut w.e,
            &mut w.v,
            &mut w.q,
            Some(&mut self.betas),
        );
        accumulate_reflectors(dim, &w.a, &self.betas, &mut self.z);
        ql_implicit(dim, &mut w.d, &mut w.e, Some(&mut self.z))
    }

    /// [`Self::reduce`] compiled for AVX2 and FMA, per channel count (`by_size!`), so that
    /// the column loops of the reflectors and rotations vectorise.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_avx2(&mut self) -> Result<(), EigenError> {
        let n = self.dim();
        crate::by_size!(n, d => self.reduce(d))
    }

    /// The eigenvalues of the last [`compute`](Self::compute), ascending.
    pub fn values(&self) -> &[f64] {
        &self.inner.d
    }

    /// The eigenvectors of the last [`compute`](Self::compute), column-major, in the order
    /// of [`values`](Self::values).
    pub fn vectors(&self) -> &[f64] {
        &self.z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Against nalgebra's symmetric eigensolver (an independent implementation): random
    /// matrices of every size up to 17, covariance-like ones spanning six decades (also at
    /// 10⁻¹⁵⁰ and 10¹⁵⁰ times unit scale), repeated
    /// eigenvalues (a multiple of the identity, a block of equal ones), a diagonal and a
    /// tridiagonal input, and a zero matrix; each eigenvalue within 1e-12 of the largest.
    #[test]
    fn eigenvalues_match_nalgebra() {
        for m in cases() {
            let n = m.nrows();
            let mut want: Vec<f64> = m
                .clone()
                .symmetric_eigen()
                .eigenvalues
                .iter()
                .copied()
                .collect();
            want.sort_by(f64::total_cmp);
            let mut solver = SymmetricEigenvalues::new(n);
            let got = solver.compute(m.as_slice()).unwrap();
            let scale = want.iter().fold(1e-300f64, |a, x| a.max(x.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-12 * scale,
                    "n {n}: {got:?} against {want:?}"
                );
            }
        }
    }

    /// The decomposition with vectors, on the same matrices: the eigenvalues equal the
    /// eigenvalue-only solver's to rounding, the vectors are orthonormal, and `V Λ Vᵀ`
    /// rebuilds the input (the input itself is the ground truth).
    #[test]
    fn eigenvectors_rebuild_the_matrix() {
        for m in cases() {
            let n = m.nrows();
            let mut full = SymmetricEigen::new(n);
            full.compute(m.as_slice()).unwrap();
            let mut only = SymmetricEigenvalues::new(n);
            let want = only.compute(m.as_slice()).unwrap();
            let scale = want.iter().fold(1e-300f64, |a, x| a.max(x.abs()));
            for (g, w) in full.values().iter().zip(want) {
                assert!((g - w).abs() <= 1e-13 * scale, "n {n}: {g} against {w}");
            }
            assert!(
                full.values().windows(2).all(|w| w[0] <= w[1]),
                "n {n}: not ascending"
            );
            let v = DMatrix::from_column_slice(n, n, full.vectors());
            let gram = v.transpose() * &v;
            let orth = (gram - DMatrix::<f64>::identity(n, n)).amax();
            assert!(orth <= 1e-13 * n as f64, "n {n}: VᵀV − I = {orth:e}");
            let lambda =
                DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(full.values()));
            let rebuilt = &v * lambda * v.transpose();
            let err = (rebuilt - &m).amax();
            assert!(
                err <= 1e-12 * scale,
                "n {n}: ‖VΛVᵀ − M‖_max = {err:e}, scale {scale:e}"
            );
        }
    }

    /// Random symmetric, covariance-like (six decades, and far from unit scale both ways),
    /// multiple-of-identity, diagonal with repeats, tridiagonal and zero matrices of every
    /// size up to 17, and one with a repeated eigenvalue in a random basis.
    fn cases() -> Vec<DMatrix<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut cases: Vec<DMatrix<f64>> = Vec::new();
        for n in 1..=17 {
            let g = DMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
            cases.push(&g + g.transpose());
            // A covariance with eigenvalues over six decades, in a random basis.
            let q = g.clone().qr().q();
            let diag = DMatrix::from_diagonal(&nalgebra::DVector::from_fn(n, |i, _| {
                10f64.powf(-3.0 + 6.0 * i as f64 / n.max(2) as f64 - 0.5)
            }));
            let cov = &q * diag * q.transpose();
            // Far from unit scale both ways (the power-of-two scaling's reason).
            cases.push(&cov * 1e-150);
            cases.push(&cov * 1e150);
            cases.push(cov);
            cases.push(DMatrix::identity(n, n) * 3.5);
            cases.push(DMatrix::from_fn(n, n, |i, j| {
                if i == j {
                    (i % 3) as f64
                } else {
                    0.0
                }
            }));
            cases.push(DMatrix::from_fn(n, n, |i, j| {
                if i == j {
                    2.0
                } else if i.abs_diff(j) == 1 {
                    -1.0
                } else {
                    0.0
                }
            }));
            cases.push(DMatrix::zeros(n, n));
        }
        // Two equal eigenvalues and a distinct one in a random basis.
        let g = DMatrix::from_fn(5, 5, |_, _| rng.random_range(-1.0..1.0));
        let q = g.qr().q();
        let diag =
            DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![1.0, 1.0, 1.0, 4.0, 0.25]));
        cases.push(&q * diag * q.transpose());
        cases
    }

    /// Only the lower triangle is read; non-finite input and a wrong size are refused.
    #[test]
    fn reads_the_lower_triangle_and_refuses_bad_input() {
        let mut m = DMatrix::from_row_slice(3, 3, &[2.0, 9.0, 9.0, 1.0, 3.0, 9.0, 0.0, 1.0, 4.0]);
        let mut solver = SymmetricEigenvalues::new(3);
        let got = solver.compute(m.as_slice()).unwrap().to_vec();
        let sym = DMatrix::from_row_slice(3, 3, &[2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0]);
        let mut want: Vec<f64> = sym.symmetric_eigen().eigenvalues.iter().copied().collect();
        want.sort_by(f64::total_cmp);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-13);
        }
        m[(2, 1)] = f64::NAN;
        assert!(matches!(
            solver.compute(m.as_slice()),
            Err(EigenError::NonFinite)
        ));
        assert!(matches!(
            solver.compute(&[1.0; 4]),
            Err(EigenError::DimensionMismatch { .. })
        ));
    }
}
