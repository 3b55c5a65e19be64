//! Small dense Hermitian linear algebra on preallocated buffers.
//!
//! Everything that runs per sample works in place, in plain slice loops: the matrices are small
//! (n ≤ 16, k ≤ 64), where nalgebra's generic factorisation and solves cost more in
//! bookkeeping than in arithmetic.

use super::{check_square, CircuitError, Dim, Dynamic, Fixed, Scalar};
use nalgebra::{DMatrix, SymmetricEigen};

/// A reusable Cholesky factorisation `M = L Lᴴ` for one size `n`.
#[derive(Clone, Debug)]
pub(crate) struct CholeskyWorkspace<T: Scalar> {
    /// Holds `L` (lower triangle) after a successful [`Self::factor`].
    factor: DMatrix<T>,
    /// Whether `factor` currently holds a valid `L`.
    valid: bool,
    /// `L⁻¹` scratch for [`Self::inverse_into`].
    linv: DMatrix<T>,
}

impl<T: Scalar> CholeskyWorkspace<T> {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            factor: DMatrix::zeros(n, n),
            valid: false,
            linv: DMatrix::zeros(n, n),
        }
    }

    /// Factor the Hermitian `m` (only its lower triangle is read). Fails — without allocating —
    /// if `m` is not finite and positive definite.
    pub(crate) fn factor(&mut self, m: &DMatrix<T>) -> Result<(), CircuitError> {
        // The pivots are real (the diagonal of a Hermitian matrix), so their roots are real
        // roots: `T::sqrt` of a complex number goes through polar form (hypot, atan2, sin, cos),
        // which cost more than the rest of a 2×2 factorisation.
        // For n ≤ 2 the diagonal of L is real by construction, so the checks below reduce to
        // positive finite pivots and a finite l₁₀.
        let pivot_ok = |l: f64| l.is_finite() && l > 0.0;
        if m.nrows() == 1 {
            // Mono spectral bands: l₀₀ = √m₀₀.
            let l00 = m.as_slice()[0].real().sqrt();
            self.factor.as_mut_slice()[0] = T::from_real(l00);
            self.valid = pivot_ok(l00);
        } else if m.nrows() == 2 {
            // Stereo and stereo bands, in closed form: l₀₀ = √m₀₀, l₁₀ = m₁₀/l₀₀,
            // l₁₁ = √(m₁₁ − |l₁₀|²) (what the general algorithm computes, without its loops).
            let ms = m.as_slice();
            let l00 = ms[0].real().sqrt();
            let l10 = ms[1].scale(1.0 / l00);
            let l11 = (ms[3].real() - l10.modulus_squared()).sqrt();
            self.valid = pivot_ok(l00) && pivot_ok(l11) && l10.is_finite();
            let f = self.factor.as_mut_slice();
            f[0] = T::from_real(l00);
            f[1] = l10;
            f[2] = T::zero();
            f[3] = T::from_real(l11);
        } else {
            let (f, ms, n) = (self.factor.as_mut_slice(), m.as_slice(), m.nrows());
            // At a size known to the compiler, the same operations in the same order
            // (docs/DESIGN.md §9): with AVX2 every size up to 16 (`factor_avx2`); otherwise
            // 3×3 and 4×4 — the gain circuit's k×k systems of stereo (k = 3) and of stereo
            // spectral bands (k = 4), and `M` of three or four channels — unrolled.
            self.valid = match n {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU supports the feature `factor_avx2` is compiled for.
                n if std::arch::is_x86_feature_detected!("avx2") => unsafe {
                    factor_avx2(f, ms, n)
                },
                3 => factor_checked(Fixed::<3>, f, ms),
                4 => factor_checked(Fixed::<4>, f, ms),
                n => factor_checked(Dynamic(n), f, ms),
            };
        }
        if self.valid {
            Ok(())
        } else {
            Err(CircuitError::NotPositiveDefinite)
        }
    }

    /// The factor `L` of the last successful [`Self::factor`] (lower triangle, column-major;
    /// the strict upper triangle is not meant to be read).
    pub(crate) fn lower(&self) -> &[T] {
        debug_assert!(self.valid);
        self.factor.as_slice()
    }

    /// Solve `M y = b` in place with the last successful factorisation.
    pub(crate) fn solve_in_place(&self, b: &mut [T]) {
        debug_assert!(self.valid);
        let l = self.factor.as_slice();
        // The gain circuit's systems of stereo and stereo spectral bands at a fixed size, as
        // in [`Self::factor`].
        match self.factor.nrows() {
            3 => solve_factored(Fixed::<3>, l, b),
            4 => solve_factored(Fixed::<4>, l, b),
            n => solve_factored(Dynamic(n), l, b),
        }
    }

    /// Write `M⁻¹ = L⁻ᴴ L⁻¹` into `out` (Hermitian, both triangles) with the last
    /// factorisation: invert the triangular factor in place (n³/6 multiply-adds), then form
    /// the product's lower triangle (n³/6) — plain slice loops, no allocation.
    pub(crate) fn inverse_into(&mut self, out: &mut DMatrix<T>) {
        debug_assert!(self.valid);
        let n = self.factor.nrows();
        let l = self.factor.as_slice();
        if let [l00] = l {
            // n = 1: M⁻¹ = 1/|l₀₀|².
            out.as_mut_slice()[0] = T::from_real(1.0 / l00.modulus_squared());
            return;
        }
        if let [l00, l10, _, l11] = l {
            // n = 2 in closed form: the adjugate over the determinant, `M⁻¹ = [[m₁₁, −m̄₁₀],
            // [−m₁₀, m₀₀]] / (l₀₀ l₁₁)²` with `m₀₀ = l₀₀²`, `m₁₀ = l₁₀ l₀₀`, `m₁₁ = |l₁₀|² + l₁₁²`
            // (the diagonal of L is real): one real division, where inverting L's pivots as
            // complex numbers took four.
            let (d0, d1) = (l00.real(), l11.real());
            // (1/det)², not 1/det²: the square of a large determinant could overflow.
            let r = 1.0 / (d0 * d1);
            let inv = r * r;
            let o10 = l10.scale(-d0 * inv);
            let o = out.as_mut_slice();
            o[0] = T::from_real((l10.modulus_squared() + d1 * d1) * inv);
            o[1] = o10;
            o[2] = o10.conjugate();
            o[3] = T::from_real(d0 * d0 * inv);
            return;
        }
        let (li, o) = (self.linv.as_mut_slice(), out.as_mut_slice());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `inverse_avx2` is compiled for.
            unsafe { inverse_avx2(o, li, l, n) };
        } else {
            inverse_general(Dynamic(n), o, li, l);
        }
        #[cfg(not(target_arch = "x86_64"))]
        inverse_general(Dynamic(n), o, li, l);
        mirror_lower(out);
    }
}

/// Solve `L Lᴴ x = b` in place for the factor `l` (lower triangle, column-major).
#[inline(always)]
fn solve_factored<T: Scalar, D: Dim>(d: D, l: &[T], b: &mut [T]) {
    let n = d.get();
    let (l, b) = (&l[..n * n], &mut b[..n]);
    // L y = b by columns of L (each contiguous): once y_j is known, remove its share
    // from the rest.
    for j in 0..n {
        let col = &l[j * n..(j + 1) * n];
        let yj = b[j] / col[j];
        b[j] = yj;
        for (bi, &lij) in b[j + 1..].iter_mut().zip(&col[j + 1..]) {
            *bi -= lij * yj;
        }
    }
    // Lᴴ x = y backwards: row j of Lᴴ is column j of L, conjugated.
    for j in (0..n).rev() {
        let col = &l[j * n..(j + 1) * n];
        let mut acc = b[j];
        for (&bi, &lij) in b[j + 1..].iter().zip(&col[j + 1..]) {
            acc -= lij.conjugate() * bi;
        }
        b[j] = acc / col[j].conjugate();
    }
}

/// The Cholesky factor `L` (lower triangle, strict upper zeroed) of the n×n column-major `ms`
/// into `f`, right-looking: once column j of `L` is known, its outer product leaves the
/// trailing columns, each an axpy over a contiguous column tail — the same subtractions, in
/// the same order per entry, as the left-looking dot products `l_ij = (m_ij − Σ_{p<j} l_ip
/// l̄_jp) / l_jj`, which read rows of `L` with stride n and do not vectorise. A non-positive
/// pivot leaves a NaN for the caller's check.
#[inline(always)]
fn factor_general<T: Scalar, D: Dim>(d: D, f: &mut [T], ms: &[T]) {
    let n = d.get();
    let (f, ms) = (&mut f[..n * n], &ms[..n * n]);
    for j in 0..n {
        f[j * n..j * n + j].fill(T::zero());
        f[j * n + j..(j + 1) * n].copy_from_slice(&ms[j * n + j..(j + 1) * n]);
    }
    for j in 0..n {
        let ljj = f[j + j * n].real().sqrt();
        f[j + j * n] = T::from_real(ljj);
        let inv = T::from_real(1.0 / ljj);
        for v in &mut f[j * n + j + 1..(j + 1) * n] {
            *v *= inv;
        }
        // Column k > j, rows i ≥ k: a_ik −= l_ij · conj(l_kj).
        let (done, rest) = f.split_at_mut((j + 1) * n);
        let lj = &done[j * n..];
        for k in j + 1..n {
            let lkj = lj[k].conjugate();
            let col = &mut rest[(k - j - 1) * n + k..(k - j) * n];
            for (a, &l) in col.iter_mut().zip(&lj[k..n]) {
                *a -= l * lkj;
            }
        }
    }
}

/// [`factor_checked`] compiled for AVX2 (the axpys in 4 lanes; no FMA, so the same bits), at
/// a size known to the compiler for every channel count (`by_size!`): with the trip
/// counts of the column updates known, their loops lose most of their bookkeeping (at 16
/// channels a factorisation took 12 k instructions for 680 multiply-adds).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn factor_avx2<T: Scalar>(f: &mut [T], ms: &[T], n: usize) -> bool {
    crate::by_size!(n, d => factor_checked(d, f, ms))
}

/// Whether [`factor_general`] produced a factor: the square roots are taken of whatever pivots
/// they meet, so a non-PD input shows up as a non-finite, non-positive or (for ℂ) non-real
/// diagonal of `L`.
#[inline(always)]
fn factor_is_valid<T: Scalar, D: Dim>(d: D, f: &[T]) -> bool {
    let n = d.get();
    let f = &f[..n * n];
    (0..n).all(|i| {
        let d = f[i + i * n];
        let re = d.real();
        re.is_finite() && re > 0.0 && d.imaginary().abs() <= 1e-12 * re
    }) && f.iter().all(|v| v.is_finite())
}

/// [`factor_general`] then [`factor_is_valid`] at a fixed size.
#[inline(always)]
fn factor_checked<T: Scalar, D: Dim>(d: D, f: &mut [T], ms: &[T]) -> bool {
    factor_general(d, f, ms);
    factor_is_valid(d, f)
}

/// `M⁻¹ = L⁻ᴴ L⁻¹` into `o` (lower triangle; the caller mirrors it) from the factor `l`, with
/// `li` as scratch for `L⁻¹`. Column j of `L⁻¹` solves `L x = e_j` by forward substitution in
/// column form (each solved `x_k` leaves the rest as an axpy down column k of `L`); entry
/// (i, j) of the product is the dot product of columns i and j of `L⁻¹` from row i on. Every
/// inner loop runs over contiguous memory.
#[inline(always)]
fn inverse_general<T: Scalar, D: Dim>(d: D, o: &mut [T], li: &mut [T], l: &[T]) {
    let n = d.get();
    let (o, li, l) = (&mut o[..n * n], &mut li[..n * n], &l[..n * n]);
    li.fill(T::zero());
    // The reciprocals of L's (real) diagonal, once, in `o` before it holds the result: a
    // division in the substitution's dependency chain costs several multiplications.
    for k in 0..n {
        o[k] = T::from_real(1.0 / l[k + k * n].real());
    }
    for j in 0..n {
        let x = &mut li[j * n..(j + 1) * n];
        x[j] = T::one();
        for k in j..n {
            let xk = x[k] * o[k];
            x[k] = xk;
            for (xi, &lik) in x[k + 1..].iter_mut().zip(&l[k * n + k + 1..(k + 1) * n]) {
                *xi -= lik * xk;
            }
        }
    }
    for j in 0..n {
        let cj = &li[j * n..(j + 1) * n];
        for i in j..n {
            let ci = &li[i * n..(i + 1) * n];
            let mut acc = T::zero();
            for (&a, &b) in ci[i..].iter().zip(&cj[i..]) {
                acc += a.conjugate() * b;
            }
            o[i + j * n] = acc;
        }
    }
}

/// [`inverse_general`] compiled for AVX2 (no FMA, so the same bits), at a size known to the
/// compiler as in [`factor_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn inverse_avx2<T: Scalar>(o: &mut [T], li: &mut [T], l: &[T], n: usize) {
    crate::by_size!(n, d => inverse_general(d, o, li, l))
}

/// `Σ a_t b_t` with eight independent partial sums: a single running sum is a chain of
/// dependent additions the compiler may not reorder, eight let it use vector lanes.
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    dot_lanes::<8>(a, b)
}

/// [`dot`] with `L` partial sums: fewer suit short vectors (the tridiagonal eigensolver's are
/// at most 16 long), whose remainder after the last whole group of `L` is summed in order.
#[inline(always)]
pub fn dot_lanes<const L: usize>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..L {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// Replace a nearly-Hermitian matrix by its Hermitian part, exactly: the upper triangle is
/// set to the conjugate of the mean of both triangles and the diagonal made real.
pub(crate) fn make_hermitian<T: Scalar>(m: &mut DMatrix<T>) {
    let n = m.nrows();
    let half = T::from_real(0.5);
    for j in 0..n {
        let d = m[(j, j)].real();
        m[(j, j)] = T::from_real(d);
        for i in j + 1..n {
            let v = (m[(i, j)] + m[(j, i)].conjugate()) * half;
            m[(i, j)] = v;
            m[(j, i)] = v.conjugate();
        }
    }
}

/// Copy the lower triangle into the upper one (conjugated) and make the diagonal real.
pub(crate) fn mirror_lower<T: Scalar>(m: &mut DMatrix<T>) {
    let n = m.nrows();
    mirror_lower_in(Dynamic(n), m.as_mut_slice());
}

/// [`mirror_lower`] of an n×n column-major slice, for a size fixed at compile time or not.
#[inline(always)]
pub(crate) fn mirror_lower_in<T: Scalar, D: Dim>(d: D, m: &mut [T]) {
    let n = d.get();
    let m = &mut m[..n * n];
    for j in 0..n {
        m[j + j * n] = T::from_real(m[j + j * n].real());
        for i in j + 1..n {
            m[j + i * n] = m[i + j * n].conjugate();
        }
    }
}

/// `out = P X P` (`scratch = X P`), the output covariance of a response matrix `P` for an input
/// covariance `X` (all n×n): the same two products as [`matmul_into`], over fixed-size slices
/// for n ≤ 2 (docs/DESIGN.md §9). The engine's covariances, Hermitian, go through
/// [`hermitian_sandwich_into`], which takes this for every n but 2.
pub fn sandwich_into<T: Scalar>(
    out: &mut DMatrix<T>,
    p: &DMatrix<T>,
    x: &DMatrix<T>,
    scratch: &mut DMatrix<T>,
) {
    match p.nrows() {
        1 => sandwich_small(Fixed::<1>, out, p, x, scratch),
        2 => sandwich_small(Fixed::<2>, out, p, x, scratch),
        _ => {
            matmul_into(scratch, x, p);
            matmul_into(out, p, scratch);
        }
    }
}

/// [`sandwich_into`] for Hermitian `P` and `X`, whose `P X P` is Hermitian: for n = 2 in the
/// real coordinates of the three (docs/DESIGN.md §9) — the output covariance of every whitener
/// at every update of every band. Other sizes take [`sandwich_into`]. For n = 2 the result is
/// exactly Hermitian, and only the lower triangles of `P` and `X` (their diagonals' real parts)
/// are read.
pub fn hermitian_sandwich_into<T: Scalar>(
    out: &mut DMatrix<T>,
    p: &DMatrix<T>,
    x: &DMatrix<T>,
    scratch: &mut DMatrix<T>,
) {
    if p.nrows() != 2 {
        sandwich_into(out, p, x, scratch);
        return;
    }
    // P = [[a, c̄], [c, b]] and X = [[x, z̄], [z, y]] with a, b, x, y real (column-major
    // slices [P₀₀, P₁₀, P₀₁, P₁₁]). Multiplied out,
    //   (P X P)₀₀ = a² x + 2a Re(c̄ z) + |c|² y,
    //   (P X P)₁₁ = |c|² x + 2b Re(c̄ z) + b² y,
    //   (P X P)₁₀ = c (a x + b y) + a b z + c² z̄:
    // about twenty real multiply-adds, where two complex 2×2 products take some sixty.
    let (p, xs) = (&p.as_slice()[..4], &x.as_slice()[..4]);
    let (a, b, c) = (p[0].real(), p[3].real(), p[1]);
    let (x, y, z) = (xs[0].real(), xs[3].real(), xs[1]);
    let re = (c.conjugate() * z).real();
    let cc = c.modulus_squared();
    let d0 = a * a * x + 2.0 * a * re + cc * y;
    let d1 = cc * x + 2.0 * b * re + b * b * y;
    let off = c.scale(a * x + b * y) + z.scale(a * b) + c * c * z.conjugate();
    let out = &mut out.as_mut_slice()[..4];
    out[0] = T::from_real(d0);
    out[1] = off;
    out[2] = off.conjugate();
    out[3] = T::from_real(d1);
}

#[inline(always)]
fn sandwich_small<T: Scalar, D: Dim>(
    d: D,
    out: &mut DMatrix<T>,
    p: &DMatrix<T>,
    x: &DMatrix<T>,
    scratch: &mut DMatrix<T>,
) {
    let n = d.get();
    let (p, x) = (&p.as_slice()[..n * n], &x.as_slice()[..n * n]);
    let (out, xp) = (
        &mut out.as_mut_slice()[..n * n],
        &mut scratch.as_mut_slice()[..n * n],
    );
    square_product(d, xp, x, p);
    square_product(d, out, p, xp);
}

/// `out = a b` for n×n column-major slices, summed as [`matmul_into`] sums (its 2×2 form
/// omits the leading `0 +`, which changes nothing but the sign of a zero).
#[inline(always)]
fn square_product<T: Scalar, D: Dim>(d: D, out: &mut [T], a: &[T], b: &[T]) {
    let n = d.get();
    let (out, a, b) = (&mut out[..n * n], &a[..n * n], &b[..n * n]);
    for j in 0..n {
        for i in 0..n {
            let mut v = a[i] * b[j * n];
            for l in 1..n {
                v += a[i + l * n] * b[l + j * n];
            }
            out[i + j * n] = v;
        }
    }
}

/// `out = a · b` without allocating. nalgebra's `gemm` hands dynamic sizes to
/// `matrixmultiply`, which allocates packing buffers — not allowed on the audio thread; for the
/// n ≤ 16 (k ≤ 64) matrices here a plain column-major triple loop is as fast.
pub fn matmul_into<T: Scalar>(out: &mut DMatrix<T>, a: &DMatrix<T>, b: &DMatrix<T>) {
    let (m, k) = a.shape();
    let n = b.ncols();
    assert!(
        b.nrows() == k && out.shape() == (m, n),
        "matmul_into: shapes do not match"
    );
    let a = a.as_slice();
    let b = b.as_slice();
    let out = out.as_mut_slice();
    // Every spectral band of a mono input: a product of numbers.
    if let ([a0], [b0], [o0]) = (a, b, &mut *out) {
        *o0 = *a0 * *b0;
        return;
    }
    // Stereo, and every spectral band of a stereo input: 2×2 products dominate the learning
    // step there, and the general loop's bookkeeping costs more than the eight products.
    if let ([a00, a10, a01, a11], [b00, b10, b01, b11], [o00, o10, o01, o11]) = (a, b, &mut *out) {
        *o00 = *a00 * *b00 + *a01 * *b10;
        *o10 = *a10 * *b00 + *a11 * *b10;
        *o01 = *a00 * *b01 + *a01 * *b11;
        *o11 = *a10 * *b01 + *a11 * *b11;
        return;
    }
    // ℝ with AVX2/FMA: the register-blocked kernel.
    if real_product(out, a, b, m, k, n) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `matmul_general_avx2` is compiled for.
            unsafe { matmul_general_avx2(out, a, b, m, k, n) };
            return;
        }
    }
    matmul_general(out, a, b, m, k, n);
}

/// Whether [`real_product`]'s kernel can run on this CPU (AVX2 and FMA): callers that would
/// rearrange an operand for it ask first.
#[inline]
pub(crate) fn real_fma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out = a · b` (column-major slices, `a` m×k, `b` k×n) through the real AVX2/FMA kernel when
/// the field is ℝ and the CPU has it; returns whether it ran (else the caller's own loops run).
/// For the learning's n×n products written over slices (docs/DESIGN.md §9).
#[inline]
pub(crate) fn real_product<T: Scalar>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if a.len() >= m * k && b.len() >= k * n && out.len() >= m * n && real_fma_available() {
        if let (Some(ar), Some(br)) = (T::as_reals(&a[..m * k]), T::as_reals(&b[..k * n])) {
            if let Some(or) = T::as_reals_mut(&mut out[..m * n]) {
                // SAFETY: the CPU has AVX2 and FMA; the lengths were checked.
                unsafe { matmul_real_fma(or, ar, br, m, k, n) };
                return true;
            }
        }
    }
    let _ = (out, a, b, m, k, n);
    false
}

/// `out = aᵀ` of an n×n column-major slice (for real matrices, where it is the adjoint).
#[inline]
pub(crate) fn transpose_into<T: Scalar>(out: &mut [T], a: &[T], n: usize) {
    let (out, a) = (&mut out[..n * n], &a[..n * n]);
    for j in 0..n {
        for i in 0..n {
            out[j + i * n] = a[i + j * n];
        }
    }
}

/// A real product `out = a · b` (column-major, `a` m×k, `b` k×n) with AVX2/FMA: blocks of up
/// to 16 rows by 2 columns of `out` stay in registers while `k` columns of `a` stream past —
/// four loads and two broadcasts feed eight fused multiply-adds, where the axpy loop loads and
/// stores `out` for every one. Rows past the last multiple of 4 are summed one by one. At 16
/// channels these n×n products are a tenth of the engine's time (docs/DESIGN.md §9).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a`, `b` and `out` hold m·k, k·n and m·n values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_real_fma(out: &mut [f64], a: &[f64], b: &[f64], m: usize, k: usize, n: usize) {
    let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let cols = (n - j).min(2);
        let mut i = 0;
        // SAFETY (every block): rows i..i + 4·RV ≤ m, columns j..j + C ≤ n.
        unsafe {
            while i + 16 <= m {
                if cols == 2 {
                    product_block::<4, 2>(op, ap, bp, m, k, i, j);
                } else {
                    product_block::<4, 1>(op, ap, bp, m, k, i, j);
                }
                i += 16;
            }
            if i + 8 <= m {
                if cols == 2 {
                    product_block::<2, 2>(op, ap, bp, m, k, i, j);
                } else {
                    product_block::<2, 1>(op, ap, bp, m, k, i, j);
                }
                i += 8;
            }
            if i + 4 <= m {
                if cols == 2 {
                    product_block::<1, 2>(op, ap, bp, m, k, i, j);
                } else {
                    product_block::<1, 1>(op, ap, bp, m, k, i, j);
                }
                i += 4;
            }
        }
        for c in j..j + cols {
            for r in i..m {
                let mut v = 0.0;
                for l in 0..k {
                    v += a[r + l * m] * b[l + c * k];
                }
                out[r + c * m] = v;
            }
        }
        j += cols;
    }
}

/// Rows `i0..i0 + 4·RV` of columns `j0..j0 + C` of `out = a · b`, accumulated in registers.
///
/// # Safety
/// As [`matmul_real_fma`], with `i0 + 4·RV ≤ m` and `j0 + C ≤ n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn product_block<const RV: usize, const C: usize>(
    out: *mut f64,
    a: *const f64,
    b: *const f64,
    m: usize,
    k: usize,
    i0: usize,
    j0: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_pd(); RV]; C];
    for l in 0..k {
        // SAFETY: column l of `a` has rows i0..i0 + 4·RV; `b` has entries (l, j0..j0 + C).
        unsafe {
            let mut av = [_mm256_setzero_pd(); RV];
            for (r, v) in av.iter_mut().enumerate() {
                *v = _mm256_loadu_pd(a.add(i0 + 4 * r + l * m));
            }
            for (c, col) in acc.iter_mut().enumerate() {
                let bv = _mm256_broadcast_sd(&*b.add(l + (j0 + c) * k));
                for (v, x) in col.iter_mut().zip(&av) {
                    *v = _mm256_fmadd_pd(*x, bv, *v);
                }
            }
        }
    }
    for (c, col) in acc.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            // SAFETY: entry (i0 + 4r .. +4, j0 + c) of `out` is in bounds.
            unsafe { _mm256_storeu_pd(out.add(i0 + 4 * r + (j0 + c) * m), *v) };
        }
    }
}

/// [`matmul_general`] compiled for AVX2 (4 f64 lanes instead of SSE2's 2; no FMA, so the
/// products and sums are the same operations and the result is bit-identical): at 8 and 16
/// channels the learning's n×n products are a tenth of the engine's time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_general_avx2<T: Scalar>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
) {
    matmul_general(out, a, b, m, k, n)
}

/// `out = a · b`, column-major slices: `a` m×k, `b` k×n.
#[inline(always)]
fn matmul_general<T: Scalar>(out: &mut [T], a: &[T], b: &[T], m: usize, k: usize, n: usize) {
    // Column j of the product is Σ_l b[l, j] · (column l of a): contiguous axpys. Offsets are
    // computed by multiplication (`chunks_exact` with a run-time size divides, which costs more
    // than a whole 2×2 product).
    for j in 0..n {
        let o = &mut out[j * m..(j + 1) * m];
        for v in o.iter_mut() {
            *v = T::zero();
        }
        for l in 0..k {
            let blj = b[j * k + l];
            let col = &a[l * m..(l + 1) * m];
            for (v, &ail) in o.iter_mut().zip(col) {
                *v += ail * blj;
            }
        }
    }
}

/// `‖P C P − I‖_F / √n` for `P = M⁻¹`, with two n×n scratch buffers.
pub(crate) fn whitening_error_with_inverse<T: Scalar>(
    p: &DMatrix<T>,
    c: &DMatrix<T>,
    scratch_a: &mut DMatrix<T>,
    scratch_b: &mut DMatrix<T>,
) -> f64 {
    let n = p.nrows();
    matmul_into(scratch_a, c, p);
    matmul_into(scratch_b, p, scratch_a);
    distance_from_identity(scratch_b) / (n as f64).sqrt()
}

/// `‖X − I‖_F` of a square matrix: the unnormalised whitening error of an output covariance.
pub fn distance_from_identity<T: Scalar>(x: &DMatrix<T>) -> f64 {
    let n = x.nrows();
    let mut sum = 0.0;
    // Column by column (column-major slices), the diagonal entry less one.
    for (j, col) in x.as_slice().chunks_exact(n.max(1)).enumerate() {
        for (i, &xij) in col.iter().enumerate() {
            let v = if i == j { xij - T::one() } else { xij };
            sum += v.modulus_squared();
        }
    }
    sum.sqrt()
}

/// The whitening error `E(M; C) = ‖M⁻¹ C M⁻¹ − I‖_F / √n` (docs/DESIGN.md §2.3) of a recurrent
/// matrix `M` for an input covariance `C`. Allocates; meant for analysis and tests.
pub fn whitening_error<T: Scalar>(m: &DMatrix<T>, c: &DMatrix<T>) -> Result<f64, CircuitError> {
    let n = m.nrows();
    check_square(m, n)?;
    check_square(c, n)?;
    let mut chol = CholeskyWorkspace::new(n);
    chol.factor(m)?;
    let mut p = DMatrix::zeros(n, n);
    chol.inverse_into(&mut p);
    let mut a = DMatrix::zeros(n, n);
    let mut b = DMatrix::zeros(n, n);
    Ok(whitening_error_with_inverse(&p, c, &mut a, &mut b))
}

/// Whether a Hermitian matrix is finite and positive definite (by attempting a Cholesky).
pub fn is_positive_definite<T: Scalar>(m: &DMatrix<T>) -> bool {
    if m.nrows() != m.ncols() || m.nrows() == 0 {
        return false;
    }
    CholeskyWorkspace::new(m.nrows()).factor(m).is_ok()
}

/// Check that `c` is a usable covariance: square, finite, Hermitian and positive definite.
pub fn validate_covariance<T: Scalar>(c: &DMatrix<T>) -> Result<(), CircuitError> {
    let bad = |why: &str| Err(CircuitError::InvalidCovariance(why.to_string()));
    if c.nrows() == 0 || c.nrows() != c.ncols() {
        return bad("it must be a non-empty square matrix");
    }
    if !c.iter().all(|v| v.is_finite()) {
        return bad("it has non-finite entries");
    }
    let scale = c.iter().map(|v| v.modulus()).fold(0.0, f64::max);
    let n = c.nrows();
    for j in 0..n {
        for i in j..n {
            if (c[(i, j)] - c[(j, i)].conjugate()).modulus() > 1e-9 * scale.max(f64::MIN_POSITIVE) {
                return bad("it is not symmetric (Hermitian)");
            }
        }
    }
    if !is_positive_definite(c) {
        return bad("it is not positive definite");
    }
    Ok(())
}

/// The Hermitian positive square root `C^{1/2}` by eigendecomposition (the target `M*`).
pub fn hermitian_sqrt<T: Scalar>(c: &DMatrix<T>) -> Result<DMatrix<T>, CircuitError> {
    validate_covariance(c)?;
    let eig = SymmetricEigen::new(c.clone());
    let v = &eig.eigenvectors;
    let d = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| T::from_real(l.max(0.0).sqrt())));
    let mut s = v * d * v.adjoint();
    make_hermitian(&mut s);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Complex;

    /// The AVX2 copy of the general product gives the very bits of the baseline copy (no FMA,
    /// the same operations in the same order per entry), real and complex.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_product_is_bit_identical() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let (m, k, n) = (7, 5, 9);
        let f = |i: usize| ((i as f64) * 0.37).sin() * 1e3_f64.powf(((i % 7) as f64 - 3.0) / 3.0);
        let a: Vec<f64> = (0..m * k).map(f).collect();
        let b: Vec<f64> = (0..k * n).map(|i| f(i + 100)).collect();
        let (mut plain, mut wide) = (vec![0.0; m * n], vec![0.0; m * n]);
        matmul_general(&mut plain, &a, &b, m, k, n);
        // SAFETY: checked above.
        unsafe { matmul_general_avx2(&mut wide, &a, &b, m, k, n) };
        assert!(plain
            .iter()
            .zip(&wide)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        let ac: Vec<Complex<f64>> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| Complex::new(x, y))
            .collect();
        let bc: Vec<Complex<f64>> = b.iter().map(|&y| Complex::new(y, -0.5 * y)).collect();
        let mut plain = vec![Complex::new(0.0, 0.0); m * n];
        let mut wide = plain.clone();
        matmul_general(&mut plain, &ac, &bc[..k * n], m, k, n);
        // SAFETY: checked above.
        unsafe { matmul_general_avx2(&mut wide, &ac, &bc[..k * n], m, k, n) };
        assert_eq!(plain, wide);
    }

    /// The real FMA product against nalgebra's, for shapes that fill its row blocks exactly
    /// and that leave every kind of remainder (rows past a multiple of 4, an odd last column).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn real_fma_product_matches_nalgebra() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        for (m, k, n) in [
            (16, 16, 16),
            (16, 32, 16),
            (32, 16, 5),
            (8, 8, 8),
            (4, 3, 1),
            (13, 7, 9),
            (3, 3, 3),
            (21, 2, 2),
        ] {
            let a = DMatrix::from_fn(m, k, |i, j| ((i * 31 + j * 7) as f64 * 0.37).sin());
            let b = DMatrix::from_fn(k, n, |i, j| ((i * 5 + j * 17) as f64 * 0.23).cos());
            let mut out = DMatrix::from_element(m, n, f64::NAN);
            matmul_into(&mut out, &a, &b);
            let want = &a * &b;
            assert!(
                (&out - &want).norm() <= 1e-13 * want.norm(),
                "{m}×{k} · {k}×{n}"
            );
        }
    }

    /// `P X P` over fixed-size slices equals the two general products (the same sums; only
    /// a zero's sign could differ, which `==` ignores).
    #[test]
    fn sandwich_matches_two_products() {
        for n in 1..=3 {
            let p = DMatrix::<Complex<f64>>::from_fn(n, n, |i, j| {
                Complex::new(0.3 + (i + 2 * j) as f64 * 0.17, i as f64 - 0.4 * j as f64)
            });
            let x = DMatrix::from_fn(n, n, |i, j| Complex::new(1.0 / (1 + i + j) as f64, 0.1));
            let (mut xp, mut want) = (DMatrix::zeros(n, n), DMatrix::zeros(n, n));
            matmul_into(&mut xp, &x, &p);
            matmul_into(&mut want, &p, &xp);
            let (mut got, mut scratch) = (DMatrix::zeros(n, n), DMatrix::zeros(n, n));
            sandwich_into(&mut got, &p, &x, &mut scratch);
            assert_eq!(got, want, "n = {n}");
        }
    }

    /// For Hermitian `P` and `X` the Hermitian sandwich is the two general products, to
    /// rounding relative to their size, and for n ≤ 2 exactly Hermitian (real diagonal,
    /// mirrored triangles) from the lower triangles alone; real and complex, n = 1…3.
    #[test]
    fn hermitian_sandwich_matches_two_products() {
        fn check<T: Scalar>(n: usize, entry: impl Fn(usize, usize) -> T) {
            let a = DMatrix::<T>::from_fn(n, n, &entry);
            // Hermitian P = A + Aᴴ + 3nI and X = Aᴴ A + I.
            let p = &a + a.adjoint() + DMatrix::identity(n, n) * T::from_real(3.0 * n as f64);
            let x = a.adjoint() * &a + DMatrix::identity(n, n);
            let (mut xp, mut want) = (DMatrix::zeros(n, n), DMatrix::zeros(n, n));
            matmul_into(&mut xp, &x, &p);
            matmul_into(&mut want, &p, &xp);
            let (mut got, mut scratch) = (DMatrix::zeros(n, n), DMatrix::zeros(n, n));
            hermitian_sandwich_into(&mut got, &p, &x, &mut scratch);
            let err = (&got - &want).norm();
            assert!(err <= 1e-14 * want.norm(), "n = {n}: {err:e}");
            for i in (0..n).filter(|_| n <= 2) {
                assert_eq!(got[(i, i)].imaginary(), 0.0, "n = {n}");
                for j in 0..n {
                    assert_eq!(got[(i, j)], got[(j, i)].conjugate(), "n = {n}");
                }
            }
            if n == 2 {
                // Only the lower triangles are read: NaN above the diagonal changes nothing.
                let (mut p_lower, mut x_lower) = (p.clone(), x.clone());
                p_lower[(0, 1)] = T::from_real(f64::NAN);
                x_lower[(0, 1)] = T::from_real(f64::NAN);
                let mut again = DMatrix::zeros(n, n);
                hermitian_sandwich_into(&mut again, &p_lower, &x_lower, &mut scratch);
                assert_eq!(again, got);
            }
        }
        for n in 1..=3 {
            check(n, |i, j| {
                Complex::new(0.3 + (i + 2 * j) as f64 * 0.17, i as f64 - 0.4 * j as f64)
            });
            check(n, |i, j| {
                0.3 + (i + 2 * j) as f64 * 0.17 - 0.5 * (i * j) as f64
            });
        }
    }

    /// Hermitian positive definite 2×2 matrices, real and complex, well and badly scaled.
    fn pd_2x2() -> Vec<DMatrix<Complex<f64>>> {
        let c = Complex::new;
        [
            (2.0, 0.5, c(0.3, -0.7)),
            (1.0, 1.0, c(0.0, 0.0)),
            (1e-6, 1e4, c(0.05, 0.04)),
            (3.0, 1.0, c(1.5, 0.0)),
        ]
        .into_iter()
        .map(|(a, d, b)| DMatrix::from_row_slice(2, 2, &[c(a, 0.0), b.conj(), b, c(d, 0.0)]))
        .collect()
    }

    /// `M⁻¹` from the closed-form factor and inverse equals nalgebra's LU inverse.
    fn inverse_matches_lu<T: Scalar>(m: &DMatrix<T>) {
        let mut chol = CholeskyWorkspace::new(m.nrows());
        chol.factor(m).unwrap();
        let mut inv = DMatrix::zeros(m.nrows(), m.nrows());
        chol.inverse_into(&mut inv);
        let want = m.clone().try_inverse().unwrap();
        assert!(
            (&inv - &want).norm() <= 1e-9 * want.norm(),
            "{m:?}: {inv:?} vs {want:?}"
        );
    }

    /// The 2×2 paths of `matmul_into`, the Cholesky factor and the inverse agree with
    /// nalgebra's general algorithms (product, LU inverse), for ℝ and ℂ.
    #[test]
    fn two_by_two_fast_paths_match_the_general_algorithms() {
        for m in pd_2x2() {
            let other = DMatrix::from_fn(2, 2, |i, j| Complex::new(i as f64 - 0.3, j as f64 + 0.7));
            let mut out = DMatrix::zeros(2, 2);
            matmul_into(&mut out, &m, &other);
            assert!((&out - &m * &other).norm() <= 1e-14 * (m.norm() * other.norm()));

            inverse_matches_lu(&m);
            inverse_matches_lu(&m.map(|v| v.re));
        }
    }

    /// The factor and solve compiled for n = 3 and 4 (the gain circuit's systems) give the
    /// bits of the same code at run-time size, for ℝ and ℂ, and refuse what it refuses.
    #[test]
    fn fixed_size_factor_and_solve_give_the_general_bits() {
        fn check<T: Scalar, D: Dim>(d: D, m: &DMatrix<T>) {
            let n = d.get();
            let (mut fixed, mut general) = (vec![T::zero(); n * n], vec![T::zero(); n * n]);
            let ok = factor_checked(d, &mut fixed, m.as_slice());
            factor_general(Dynamic(n), &mut general, m.as_slice());
            assert_eq!(ok, factor_is_valid(Dynamic(n), &general));
            assert_eq!(
                fixed.iter().map(|v| v.is_finite()).collect::<Vec<_>>(),
                general.iter().map(|v| v.is_finite()).collect::<Vec<_>>()
            );
            if !ok {
                return;
            }
            assert_eq!(fixed, general);
            let b: Vec<T> = (0..n).map(|i| T::from_parts(0.7 - i as f64, 0.3)).collect();
            let (mut yf, mut yg) = (b.clone(), b);
            solve_factored(d, &fixed, &mut yf);
            solve_factored(Dynamic(n), &general, &mut yg);
            assert_eq!(yf, yg);
        }
        fn both<D: Dim>(d: D) {
            let n = d.get();
            for shift in [1.0, 1e-3, -0.5] {
                let m = DMatrix::from_fn(n, n, |i, j| {
                    let v = Complex::new(
                        0.2 * ((i * 5 + j * 3) as f64).sin() + 0.2 * ((j * 5 + i * 3) as f64).sin(),
                        if i == j {
                            0.0
                        } else {
                            0.1 * (i as f64 - j as f64)
                        },
                    );
                    v + if i == j {
                        Complex::new(1.0 + shift * i as f64, 0.0)
                    } else {
                        Complex::new(0.0, 0.0)
                    }
                });
                check(d, &m);
                check(d, &m.map(|v| v.re));
            }
        }
        both(Fixed::<3>);
        both(Fixed::<4>);
    }

    /// Every size the dispatch compiles on its own (`by_size!`, with AVX2 where the CPU has
    /// it), called through the workspace as the circuits call it: the factor, its verdict and
    /// the inverse are the bits of the run-time-size code.
    #[test]
    fn dispatched_sizes_give_the_general_bits() {
        fn check<T: Scalar>(m: &DMatrix<T>) {
            let n = m.nrows();
            let mut chol = CholeskyWorkspace::new(n);
            let ok = chol.factor(m).is_ok();
            let mut general = vec![T::zero(); n * n];
            factor_general(Dynamic(n), &mut general, m.as_slice());
            assert_eq!(ok, factor_is_valid(Dynamic(n), &general), "n {n}");
            if !ok {
                return;
            }
            assert_eq!(chol.lower(), &general[..], "n {n}");
            let mut inv = DMatrix::zeros(n, n);
            chol.inverse_into(&mut inv);
            let (mut want, mut scratch) = (DMatrix::zeros(n, n), vec![T::zero(); n * n]);
            inverse_general(Dynamic(n), want.as_mut_slice(), &mut scratch, &general);
            mirror_lower(&mut want);
            assert_eq!(inv, want, "n {n}");
        }
        for n in 3..=17 {
            for shift in [1.0, 1e-3, -0.5] {
                let m = DMatrix::from_fn(n, n, |i, j| {
                    let off = if i == j {
                        0.0
                    } else {
                        0.1 * (i as f64 - j as f64)
                    };
                    let v =
                        0.2 * ((i * 5 + j * 3) as f64).sin() + 0.2 * ((j * 5 + i * 3) as f64).sin();
                    let d = if i == j { 1.0 + shift * i as f64 } else { 0.0 };
                    Complex::new(v + d, off)
                });
                check(&m);
                check(&m.map(|v| v.re));
            }
        }
    }

    /// The general factor, solve and inverse (n ≥ 3), for ℝ and ℂ, well and badly conditioned:
    /// backward stable (`‖M M⁻¹ − I‖` and the solve's residual within rounding times the
    /// condition number, bounded by the Frobenius norms); an indefinite matrix is refused.
    #[test]
    fn general_factor_and_inverse_are_backward_stable() {
        fn check<T: Scalar>(m: &DMatrix<T>, what: &str) {
            let n = m.nrows();
            let mut chol = CholeskyWorkspace::new(n);
            chol.factor(m).unwrap();
            let mut inv = DMatrix::zeros(n, n);
            chol.inverse_into(&mut inv);
            let want = m.clone().try_inverse().unwrap();
            let cond = m.norm() * want.norm();
            let residual = (m * &inv - DMatrix::<T>::identity(n, n)).norm();
            assert!(
                residual <= 1e-14 * cond,
                "{what}: {residual:e}, cond {cond:e}"
            );
            let b: Vec<T> = (0..n).map(|i| T::from_parts(i as f64 - 1.5, 0.5)).collect();
            let mut y = b.clone();
            chol.solve_in_place(&mut y);
            let back = m * DMatrix::from_column_slice(n, 1, &y);
            let bn = DMatrix::from_column_slice(n, 1, &b);
            assert!(
                (back - &bn).norm() <= 1e-14 * cond * bn.norm(),
                "{what}: solve"
            );
        }
        for n in [3, 4, 5, 8, 16] {
            // A well-conditioned basis times a spread of eigenvalues.
            let g = DMatrix::from_fn(n, n, |i, j| {
                let v = Complex::new(
                    ((i * 7 + j * 3) as f64 * 0.41).sin(),
                    ((i + 2 * j) as f64).cos(),
                );
                v * (0.3 / n as f64)
                    + if i == j {
                        Complex::new(1.0, 0.0)
                    } else {
                        Complex::new(0.0, 0.0)
                    }
            });
            for spread in [1.0f64, 1e-5] {
                let d = DMatrix::from_fn(n, n, |i, j| {
                    let v = if i == j {
                        spread.powf(i as f64 / (n - 1) as f64)
                    } else {
                        0.0
                    };
                    Complex::new(v, 0.0)
                });
                let m = &g * &d * g.adjoint();
                check(&m, &format!("ℂ n {n} spread {spread}"));
                check(&m.map(|v| v.re), &format!("ℝ n {n} spread {spread}"));
            }
            let mut bad = DMatrix::<f64>::identity(n, n);
            bad[(n - 1, n - 1)] = -1.0;
            assert!(CholeskyWorkspace::new(n).factor(&bad).is_err(), "n {n}");
        }
    }

    /// Indefinite, singular and non-finite 2×2 matrices are refused by the closed-form factor.
    #[test]
    fn two_by_two_factor_refuses_what_is_not_positive_definite() {
        for (a, d, b) in [
            (1.0, 1.0, 2.0),
            (-1.0, 1.0, 0.0),
            (1.0, -1e-3, 0.0),
            (1.0, 1.0, 1.0),
            (f64::NAN, 1.0, 0.0),
            (1.0, f64::INFINITY, 0.0),
        ] {
            let m = DMatrix::from_row_slice(2, 2, &[a, b, b, d]);
            assert!(CholeskyWorkspace::new(2).factor(&m).is_err(), "{m}");
            let mc = m.map(|v| Complex::new(v, 0.0));
            assert!(CholeskyWorkspace::new(2).factor(&mc).is_err(), "{mc}");
        }
    }

    /// The 1×1 paths (spectral bands of a mono input): product, factor and inverse equal the
    /// arithmetic of numbers; non-positive and non-finite numbers are refused.
    #[test]
    fn one_by_one_fast_paths_are_the_numbers() {
        let c = Complex::new;
        for v in [c(2.0, 0.0), c(1e-6, 0.0), c(3e5, 0.0)] {
            let m = DMatrix::from_element(1, 1, v);
            let other = DMatrix::from_element(1, 1, c(0.3, -0.7));
            let mut out = DMatrix::zeros(1, 1);
            matmul_into(&mut out, &m, &other);
            assert_eq!(out[(0, 0)], v * c(0.3, -0.7));
            inverse_matches_lu(&m);
            inverse_matches_lu(&m.map(|v| v.re));
        }
        for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let m = DMatrix::from_element(1, 1, v);
            assert!(CholeskyWorkspace::new(1).factor(&m).is_err(), "{v}");
            let mc = m.map(|v| Complex::new(v, 0.0));
            assert!(CholeskyWorkspace::new(1).factor(&mc).is_err(), "{v}");
        }
    }
}
