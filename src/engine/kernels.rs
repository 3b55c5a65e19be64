//! The per-sample arithmetic of the engine (docs/DESIGN.md §9): the input outer product and
//! the responses `r = P x`, over channel-major slices so that every inner loop runs over
//! contiguous memory and vectorises.
//!
//! One dispatch rule for all of them (`simd_kernel!`): each kernel's body is compiled twice,
//! once for the baseline x86-64 (SSE2, 2 f64 lanes) and once with AVX2/FMA (4 lanes), and the
//! AVX2 copy runs when the CPU has it — so the binary runs on any x86-64 and is fast on modern
//! ones. Other architectures get the portable body.

// Per-sample loops index channels and frames together, as the formulas do.
#![allow(clippy::needless_range_loop)]

use crate::circuits::dot;
use nalgebra::{Complex, DMatrix};

/// Whether the CPU has AVX2 and FMA (the standard library caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Define a kernel whose body is also compiled for AVX2/FMA and chosen at run time.
macro_rules! simd_kernel {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if avx2_fma() {
                    // SAFETY: the CPU supports the features `avx2` is compiled for.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            body($($arg),*)
        }
    };
}

/// `outer[i, j] += Σ_t x_i[t] x_j[t]` (lower triangle) for `len` vectors stored channel-major
/// in `xs` with stride `stride`. With AVX2/FMA, in tiles of 4×2 channel pairs: each tile reads
/// its six channels once per four samples for eight fused multiply-adds, where pair by pair
/// every multiply-add needs two loads (docs/DESIGN.md §9).
pub fn accumulate_outer(outer: &mut DMatrix<f64>, xs: &[f64], n: usize, len: usize, stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if planar_fits(outer, xs.len(), n, len, stride) && avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA; the sizes were checked.
        unsafe { accumulate_outer_avx2(outer.as_mut_slice(), xs, n, len, stride) };
        return;
    }
    accumulate_outer_portable(outer, xs, n, len, stride);
}

/// [`accumulate_outer`] pair by pair, for CPUs without AVX2/FMA.
fn accumulate_outer_portable(
    outer: &mut DMatrix<f64>,
    xs: &[f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    for j in 0..n {
        let xj = &xs[j * stride..j * stride + len];
        for i in j..n {
            let xi = &xs[i * stride..i * stride + len];
            outer[(i, j)] += dot(xi, xj);
        }
    }
}

/// `r_i[t] = Σ_j P_ij x_j[t]` for `len` vectors stored channel-major with stride `stride`.
/// With AVX2/FMA, four outputs by eight samples at a time are held in registers while the
/// inputs stream past: two loads and four broadcasts feed eight fused multiply-adds, where an
/// axpy over a slice of `r` loads and stores `r` for every one (docs/DESIGN.md §9).
pub fn respond_planar(
    p: &DMatrix<f64>,
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if planar_fits(p, xs.len(), n, len, stride)
        && planar_fits(p, rs.len(), n, len, stride)
        && avx2_fma()
    {
        // SAFETY: the CPU has AVX2 and FMA; the sizes were checked.
        unsafe { respond_planar_avx2(p.as_slice(), xs, rs, n, len, stride) };
        return;
    }
    respond_planar_portable(p, xs, rs, n, len, stride);
}

/// Whether an n×n matrix and a channel-major buffer of `buf_len` values hold `n` channels of
/// `len` samples at stride `stride` — what the vector kernels' unchecked loads rely on.
#[inline]
fn planar_fits(m: &DMatrix<f64>, buf_len: usize, n: usize, len: usize, stride: usize) -> bool {
    m.nrows() == n
        && m.ncols() == n
        && len <= stride
        && (n == 0 || buf_len >= (n - 1) * stride + len)
}

/// [`respond_planar`] by axpys over contiguous slices, in tiles of 64 vectors that keep a
/// tile's inputs and outputs in L1 for n = 16, for CPUs without AVX2/FMA.
fn respond_planar_portable(
    p: &DMatrix<f64>,
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    const TILE: usize = 64;
    let mut t0 = 0;
    while t0 < len {
        let t1 = (t0 + TILE).min(len);
        for i in 0..n {
            let (head, _) = rs.split_at_mut(i * stride + t1);
            let r = &mut head[i * stride + t0..];
            r.fill(0.0);
            for j in 0..n {
                let pij = p[(i, j)];
                let x = &xs[j * stride + t0..j * stride + t1];
                for (r, x) in r.iter_mut().zip(x) {
                    *r += pij * x;
                }
            }
        }
        t0 = t1;
    }
}

/// [`respond_planar`] with AVX2/FMA: blocks of 4 (then 2, 1) output channels by 8 samples.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `p` holds n×n values, `xs` and `rs` at least
/// `(n − 1)·stride + len`, and `len ≤ stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn respond_planar_avx2(
    p: &[f64],
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    let full = len - len % 8;
    let (p, x, r) = (p.as_ptr(), xs.as_ptr(), rs.as_mut_ptr());
    for t in (0..full).step_by(8) {
        let mut i = 0;
        // SAFETY (all three): rows i..i + R < n, samples t..t + 8 ≤ len (the caller's sizes).
        while i + 4 <= n {
            unsafe { respond_rows::<4>(p, x, r, n, stride, i, t) };
            i += 4;
        }
        if i + 2 <= n {
            unsafe { respond_rows::<2>(p, x, r, n, stride, i, t) };
            i += 2;
        }
        if i < n {
            unsafe { respond_rows::<1>(p, x, r, n, stride, i, t) };
        }
    }
    for t in full..len {
        for i in 0..n {
            let mut acc = 0.0;
            for j in 0..n {
                acc += p_at(p, i + j * n) * xs[j * stride + t];
            }
            rs[i * stride + t] = acc;
        }
    }
}

/// `P`'s entry at column-major offset `k` (within the n×n the caller checked).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn p_at(p: *const f64, k: usize) -> f64 {
    // SAFETY: only called with k < n² on a pointer to n² values.
    unsafe { *p.add(k) }
}

/// Outputs `i0..i0 + R` at samples `t..t + 8`: `2R` accumulators in registers over all inputs.
///
/// # Safety
/// As [`respond_planar_avx2`], with `i0 + R ≤ n` and `t + 8 ≤ len`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn respond_rows<const R: usize>(
    p: *const f64,
    xs: *const f64,
    rs: *mut f64,
    n: usize,
    stride: usize,
    i0: usize,
    t: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_pd(); 2]; R];
    // Channel j's contribution to the tile's accumulators.
    let add_input = |acc: &mut [[__m256d; 2]; R], j: usize| {
        // SAFETY: channel j's samples t..t + 8 and P's entries (i0..i0 + R, j) are in bounds.
        unsafe {
            let x = xs.add(j * stride + t);
            let (x0, x1) = (_mm256_loadu_pd(x), _mm256_loadu_pd(x.add(4)));
            let pc = p.add(i0 + j * n);
            for (k, a) in acc.iter_mut().enumerate() {
                let pv = _mm256_broadcast_sd(&*pc.add(k));
                a[0] = _mm256_fmadd_pd(pv, x0, a[0]);
                a[1] = _mm256_fmadd_pd(pv, x1, a[1]);
            }
        }
    };
    // Two inputs per iteration: the loop's own bookkeeping was a fifth of the tile's
    // instructions. The sums keep the order j = 0, 1, …, n − 1.
    let mut j = 0;
    while j + 2 <= n {
        add_input(&mut acc, j);
        add_input(&mut acc, j + 1);
        j += 2;
    }
    if j < n {
        add_input(&mut acc, j);
    }
    for (k, a) in acc.iter().enumerate() {
        // SAFETY: output channel i0 + k's samples t..t + 8 are in bounds.
        unsafe {
            let o = rs.add((i0 + k) * stride + t);
            _mm256_storeu_pd(o, a[0]);
            _mm256_storeu_pd(o.add(4), a[1]);
        }
    }
}

/// [`accumulate_outer`] with AVX2/FMA: the lower triangle in tiles of up to 4 rows by 2
/// columns.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `outer` holds n×n values, `xs` at least
/// `(n − 1)·stride + len`, and `len ≤ stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_outer_avx2(
    outer: &mut [f64],
    xs: &[f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    let x = xs.as_ptr();
    let mut j = 0;
    while j < n {
        let cols = (n - j).min(2);
        let mut i = j;
        while i < n {
            let rows = (n - i).min(4);
            // SAFETY: rows i..i + rows and columns j..j + cols are channels < n.
            unsafe {
                match (rows, cols) {
                    (4, 2) => outer_tile::<4, 2>(outer, x, n, len, stride, i, j),
                    (4, _) => outer_tile::<4, 1>(outer, x, n, len, stride, i, j),
                    (3, 2) => outer_tile::<3, 2>(outer, x, n, len, stride, i, j),
                    (3, _) => outer_tile::<3, 1>(outer, x, n, len, stride, i, j),
                    (2, 2) => outer_tile::<2, 2>(outer, x, n, len, stride, i, j),
                    (2, _) => outer_tile::<2, 1>(outer, x, n, len, stride, i, j),
                    (_, 2) => outer_tile::<1, 2>(outer, x, n, len, stride, i, j),
                    _ => outer_tile::<1, 1>(outer, x, n, len, stride, i, j),
                }
            }
            i += rows;
        }
        j += cols;
    }
}

/// Adds `Σ_t x_i[t] x_j[t]` for rows `i0..i0 + R` and columns `j0..j0 + C` of the tile on or
/// below the diagonal (entries above it are computed and dropped).
///
/// # Safety
/// As [`accumulate_outer_avx2`], with `i0 + R ≤ n` and `j0 + C ≤ n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn outer_tile<const R: usize, const C: usize>(
    outer: &mut [f64],
    xs: *const f64,
    n: usize,
    len: usize,
    stride: usize,
    i0: usize,
    j0: usize,
) {
    use std::arch::x86_64::*;
    let full = len - len % 4;
    let mut acc = [[_mm256_setzero_pd(); C]; R];
    for t in (0..full).step_by(4) {
        // SAFETY: samples t..t + 4 ≤ len of channels < n.
        unsafe {
            let mut xj = [_mm256_setzero_pd(); C];
            for (c, v) in xj.iter_mut().enumerate() {
                *v = _mm256_loadu_pd(xs.add((j0 + c) * stride + t));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xi = _mm256_loadu_pd(xs.add((i0 + r) * stride + t));
                for (v, b) in a.iter_mut().zip(&xj) {
                    *v = _mm256_fmadd_pd(xi, *b, *v);
                }
            }
        }
    }
    for (r, a) in acc.iter().enumerate() {
        for (c, v) in a.iter().enumerate() {
            let (i, j) = (i0 + r, j0 + c);
            if i < j {
                continue;
            }
            let mut lanes = [0.0; 4];
            // SAFETY: a 4-lane store into a 4-element array.
            unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), *v) };
            let mut sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
            for t in full..len {
                // SAFETY: samples < len of channels < n.
                sum += unsafe { *xs.add(i * stride + t) * *xs.add(j * stride + t) };
            }
            outer[i + j * n] += sum;
        }
    }
}

/// A complex slice as its interleaved real and imaginary parts, `[re₀, im₀, re₁, im₁, …]`:
/// the layout lets the complex kernels run as real vector arithmetic (a product
/// `(a + ib)(c + id)` is lane-wise products of `[a, b]` with `[c, d]` and with `[d, c]`).
#[inline(always)]
fn interleaved(z: &[Complex<f64>]) -> &[f64] {
    bytemuck::cast_slice(z)
}

/// `Σ a_k · conj(b_k)` over interleaved views, four complex values per step in independent
/// partial sums (see [`dot`]): `Re = Σ (a_re b_re + a_im b_im)` is the real dot product of the
/// views, `Im = Σ (a_im b_re − a_re b_im)` that of `a` with its pairs swapped against `b`,
/// with alternating signs.
#[inline(always)]
pub fn cdot(a: &[Complex<f64>], b: &[Complex<f64>]) -> Complex<f64> {
    let (a, b) = (interleaved(a), interleaved(b));
    let mut re = [0.0f64; 8];
    let mut im = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for m in 0..8 {
            re[m] += x[m] * y[m];
            im[m] += x[m ^ 1] * y[m];
        }
    }
    let (mut tre, mut tim) = (0.0, 0.0);
    for (x, y) in ra.chunks_exact(2).zip(rb.chunks_exact(2)) {
        tre += x[0] * y[0] + x[1] * y[1];
        tim += x[1] * y[0] - x[0] * y[1];
    }
    let re_sum = re.iter().sum::<f64>() + tre;
    let im_sum = (im[0] - im[1]) + (im[2] - im[3]) + (im[4] - im[5]) + (im[6] - im[7]) + tim;
    Complex::new(re_sum, im_sum)
}

/// Whiten a band's bins in place and mix them with the dry spectrum:
/// `S_i[k] ← wet·Σ_j Q_ij S_j[k] + dry·S_i[k]` for the bins `lo..lo + len` of every channel of
/// the channel-major spectra `data` (stride `bins`); `gains` is `[wet, dry]`. One pass, no
/// intermediate buffer: each bin's channels are read before any is written. With AVX2/FMA and
/// one or two channels — mono and stereo, the common cases — two bins go through the vector
/// lanes at a time, with `Q`'s entries held in registers.
pub fn respond_mix_band(
    q: &DMatrix<Complex<f64>>,
    data: &mut [Complex<f64>],
    n: usize,
    bins: usize,
    lo: usize,
    len: usize,
    gains: [f64; 2],
) {
    // What the vector kernels' unchecked loads rely on (the engine sizes these at
    // construction; a mismatch is a bug, not a state to process).
    if !(q.nrows() == n && q.ncols() == n && lo + len <= bins && data.len() >= n * bins) {
        debug_assert!(false, "respond_mix_band: inconsistent sizes");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() && n <= 2 {
        // SAFETY: the CPU has AVX2 and FMA; the sizes were checked above.
        unsafe {
            if n == 1 {
                respond_mix_fixed::<1>(q, data, bins, lo, len, gains);
            } else {
                respond_mix_fixed::<2>(q, data, bins, lo, len, gains);
            }
        }
        return;
    }
    respond_mix_portable(q, data, n, bins, lo, len, gains);
}

/// [`respond_mix_band`] bin by bin, for any `n` (up to `MAX_CHANNELS`).
fn respond_mix_portable(
    q: &DMatrix<Complex<f64>>,
    data: &mut [Complex<f64>],
    n: usize,
    bins: usize,
    lo: usize,
    len: usize,
    gains: [f64; 2],
) {
    let [wet, dry] = gains;
    let mut x = [Complex::new(0.0, 0.0); crate::framing::MAX_CHANNELS];
    let x = &mut x[..n];
    for k in lo..lo + len {
        for (j, xj) in x.iter_mut().enumerate() {
            *xj = data[j * bins + k];
        }
        for (i, xi) in x.iter().enumerate() {
            let r: Complex<f64> = (0..n).map(|j| q[(i, j)] * x[j]).sum();
            data[i * bins + k] = r * wet + *xi * dry;
        }
    }
}

/// [`respond_mix_band`] for `N` channels with AVX2/FMA: two bins per 256-bit vector. A product
/// `z·x` with `z = α + iβ`, `x = c + id` is `[c, d]·α + [d, c]·[−β, β]`, two fused
/// multiply-adds; `wet` is folded into `Q`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `q` is `N × N`, `lo + len ≤ bins` and
/// `data.len() ≥ N·bins`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn respond_mix_fixed<const N: usize>(
    q: &DMatrix<Complex<f64>>,
    data: &mut [Complex<f64>],
    bins: usize,
    lo: usize,
    len: usize,
    gains: [f64; 2],
) {
    use std::arch::x86_64::*;
    let [wet, dry] = gains;
    // Lanes [−0, +0, −0, +0]: xor flips the sign of the real lanes.
    let sign = _mm256_set_pd(0.0, -0.0, 0.0, -0.0);
    let mut alpha = [[_mm256_setzero_pd(); N]; N];
    let mut beta = [[_mm256_setzero_pd(); N]; N];
    for i in 0..N {
        for j in 0..N {
            let z = q[(i, j)] * wet;
            alpha[i][j] = _mm256_set1_pd(z.re);
            beta[i][j] = _mm256_xor_pd(_mm256_set1_pd(z.im), sign);
        }
    }
    let vdry = _mm256_set1_pd(dry);
    let base = data.as_mut_ptr() as *mut f64;
    // Offset (in f64) of bin `k` of channel `c`.
    let at = |c: usize, k: usize| 2 * (c * bins + lo + k);
    for pair in 0..len / 2 {
        let k = 2 * pair;
        let mut x = [_mm256_setzero_pd(); N];
        let mut xs = [_mm256_setzero_pd(); N];
        for j in 0..N {
            // SAFETY: bins k, k + 1 < len of channel j lie inside `data` (checked sizes).
            x[j] = unsafe { _mm256_loadu_pd(base.add(at(j, k))) };
            xs[j] = _mm256_permute_pd(x[j], 0b0101);
        }
        for i in 0..N {
            let mut acc = _mm256_mul_pd(vdry, x[i]);
            for j in 0..N {
                acc = _mm256_fmadd_pd(alpha[i][j], x[j], acc);
                acc = _mm256_fmadd_pd(beta[i][j], xs[j], acc);
            }
            // SAFETY: as for the loads.
            unsafe { _mm256_storeu_pd(base.add(at(i, k)), acc) };
        }
    }
    if len % 2 == 1 {
        let k = len - 1;
        let mut x = [Complex::new(0.0, 0.0); N];
        for (j, xj) in x.iter_mut().enumerate() {
            *xj = data[j * bins + lo + k];
        }
        for i in 0..N {
            let mut r = x[i] * dry;
            for j in 0..N {
                r += q[(i, j)] * wet * x[j];
            }
            data[i * bins + lo + k] = r;
        }
    }
}

/// The band-mean outer product of the bins `lo..lo + len` of channel-major spectra `data`
/// (stride `bins`), times `scale`: `outer[i, j] = scale/len · Σ_k S_i[k] conj(S_j[k])` (both
/// triangles). Stereo — every band of every frame of a stereo spectral engine — takes one pass
/// over both channels with AVX2/FMA; other channel counts a dot product per entry.
pub fn band_outer(
    outer: &mut DMatrix<Complex<f64>>,
    data: &[Complex<f64>],
    n: usize,
    bins: usize,
    lo: usize,
    len: usize,
    scale: f64,
) {
    #[cfg(target_arch = "x86_64")]
    if n == 2 && avx2_fma() {
        let (x0, x1) = (&data[lo..lo + len], &data[bins + lo..bins + lo + len]);
        // SAFETY: the CPU has AVX2 and FMA.
        let (p00, p11, c10) = unsafe { pair_outer_sums(x0, x1) };
        let s = scale / len as f64;
        let v = c10 * s;
        let o = outer.as_mut_slice();
        o[0] = Complex::new(p00 * s, 0.0);
        o[1] = v;
        o[2] = v.conj();
        o[3] = Complex::new(p11 * s, 0.0);
        return;
    }
    band_outer_dots(outer, data, n, bins, lo, len, scale);
}

/// `(Σ|x₀|², Σ|x₁|², Σ x₁ conj(x₀))` over two equally long complex slices in one pass: two bins
/// of each per 256-bit vector, four bins per step in two independent sets of partial sums.
/// With `a = [a_re, a_im, …]` and `b` likewise, `Re(b ā) = Σ lanes of b·a` and
/// `Im(b ā) = b_im a_re − b_re a_im`, the lanes of `[b_im, b_re, …]·a` with alternating signs.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pair_outer_sums(x0: &[Complex<f64>], x1: &[Complex<f64>]) -> (f64, f64, Complex<f64>) {
    use std::arch::x86_64::*;
    let len = x0.len().min(x1.len());
    let (a, b) = (x0.as_ptr() as *const f64, x1.as_ptr() as *const f64);
    let z = _mm256_setzero_pd();
    let (mut aa, mut bb, mut re, mut im) = ([z; 2], [z; 2], [z; 2], [z; 2]);
    let mut k = 0;
    while k + 4 <= len {
        for u in 0..2 {
            // SAFETY: bins k + 2u, k + 2u + 1 < len of both slices.
            let (va, vb) = unsafe {
                (
                    _mm256_loadu_pd(a.add(2 * (k + 2 * u))),
                    _mm256_loadu_pd(b.add(2 * (k + 2 * u))),
                )
            };
            aa[u] = _mm256_fmadd_pd(va, va, aa[u]);
            bb[u] = _mm256_fmadd_pd(vb, vb, bb[u]);
            re[u] = _mm256_fmadd_pd(vb, va, re[u]);
            im[u] = _mm256_fmadd_pd(_mm256_permute_pd(vb, 0b0101), va, im[u]);
        }
        k += 4;
    }
    if k + 2 <= len {
        // SAFETY: bins k, k + 1 < len of both slices.
        let (va, vb) = unsafe { (_mm256_loadu_pd(a.add(2 * k)), _mm256_loadu_pd(b.add(2 * k))) };
        aa[0] = _mm256_fmadd_pd(va, va, aa[0]);
        bb[0] = _mm256_fmadd_pd(vb, vb, bb[0]);
        re[0] = _mm256_fmadd_pd(vb, va, re[0]);
        im[0] = _mm256_fmadd_pd(_mm256_permute_pd(vb, 0b0101), va, im[0]);
        k += 2;
    }
    let lanes = |v: [__m256d; 2]| {
        let mut out = [0.0f64; 4];
        // SAFETY: `out` holds four f64.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), _mm256_add_pd(v[0], v[1])) };
        out
    };
    let (aa, bb, re, im) = (lanes(aa), lanes(bb), lanes(re), lanes(im));
    let mut sums = [
        (aa[0] + aa[1]) + (aa[2] + aa[3]),
        (bb[0] + bb[1]) + (bb[2] + bb[3]),
        (re[0] + re[1]) + (re[2] + re[3]),
        (im[0] - im[1]) + (im[2] - im[3]),
    ];
    if k < len {
        let (p, q) = (x0[k], x1[k]);
        sums[0] += p.norm_sqr();
        sums[1] += q.norm_sqr();
        sums[2] += q.re * p.re + q.im * p.im;
        sums[3] += q.im * p.re - q.re * p.im;
    }
    (sums[0], sums[1], Complex::new(sums[2], sums[3]))
}

simd_kernel! {
    /// [`band_outer`] for any channel count: a real dot product for each diagonal entry and a
    /// complex one for each entry below it.
    pub fn band_outer_dots(
        outer: &mut DMatrix<Complex<f64>>,
        data: &[Complex<f64>],
        n: usize,
        bins: usize,
        lo: usize,
        len: usize,
        scale: f64,
    ) {
        let s = scale / len as f64;
        for j in 0..n {
            let xj = &data[j * bins + lo..j * bins + lo + len];
            // The diagonal is real: the view's dot product with itself.
            let xv = interleaved(xj);
            outer[(j, j)] = Complex::new(dot(xv, xv) * s, 0.0);
            for i in j + 1..n {
                let xi = &data[i * bins + lo..i * bins + lo + len];
                let v = cdot(xi, xj) * s;
                outer[(i, j)] = v;
                outer[(j, i)] = v.conj();
            }
        }
    }
}

simd_kernel! {
    /// `x[t] = f64(v[t]) · scale`: one channel's input into the engine's f64 units.
    pub fn scale_in(x: &mut [f64], v: &[f32], scale: f64) {
        for (x, v) in x.iter_mut().zip(v) {
            *x = *v as f64 * scale;
        }
    }
}

/// `y[t] = f32(wet · r[t] + dry · y[t])`: one channel's output mixed in place, over the shorter
/// of the two lengths. Returns the peak `max |y|` of the mixed samples (NaN ignored, 0 for
/// none), with every subnormal result replaced by 0: the pass [`flush_subnormals_peak`] would
/// make over the output, fused into the one that writes it (docs/DESIGN.md §7). Eight
/// independent lanes for the maximum, as there.
///
/// [`flush_subnormals_peak`]: super::safety::flush_subnormals_peak
pub fn mix_out(y: &mut [f32], r: &[f64], gains: [f64; 2]) -> f32 {
    #[inline(always)]
    fn body(y: &mut [f32], r: &[f64], gains: [f64; 2]) -> f32 {
        let [wet, dry] = gains;
        let mix = |y: f32, r: f64| (wet * r + dry * y as f64) as f32;
        let mut acc = [0.0f32; 8];
        let mut ys = y.chunks_exact_mut(8);
        let mut rs = r.chunks_exact(8);
        for (yc, rc) in (&mut ys).zip(&mut rs) {
            for k in 0..8 {
                // Selects and unconditional stores: compare-and-mask in vector registers.
                let v = mix(yc[k], rc[k]);
                let a = v.abs();
                yc[k] = if a < f32::MIN_POSITIVE { 0.0 } else { v };
                acc[k] = if a > acc[k] { a } else { acc[k] };
            }
        }
        let mut peak = acc.iter().fold(0.0f32, |m, v| if *v > m { *v } else { m });
        for (y, &r) in ys.into_remainder().iter_mut().zip(rs.remainder()) {
            let v = mix(*y, r);
            let a = v.abs();
            *y = if a < f32::MIN_POSITIVE { 0.0 } else { v };
            if a > peak {
                peak = a;
            }
        }
        peak
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(y: &mut [f32], r: &[f64], gains: [f64; 2]) -> f32 {
            body(y, r, gains)
        }
        if avx2_fma() {
            // SAFETY: the CPU supports the features `avx2` is compiled for.
            return unsafe { avx2(y, r, gains) };
        }
    }
    body(y, r, gains)
}

/// `Σ x²` of `f32` samples: f32 partial sums in eight lanes (a chunk is at most a stats
/// interval, ≤ 480 samples at 48 kHz, so f32 sums lose nothing that matters for a level in
/// dB), returned in f64 for accumulation across chunks.
#[inline]
pub fn energy(seg: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let chunks = seg.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] * c[k];
        }
    }
    (acc.iter().sum::<f32>() + tail) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output mix against its formula, flushed and with its peak, on both paths: lengths
    /// around the eight lanes, subnormal results (from a dry path and from a product),
    /// NaN, and gains that leave the dry signal as it is.
    #[test]
    fn mix_out_is_the_formula_flushed_with_its_peak() {
        let tiny = f32::MIN_POSITIVE / 4.0;
        for len in [0usize, 1, 7, 8, 9, 16, 37, 64] {
            for gains in [[0.7, 0.3], [0.0, 1.0], [1e-40, 0.0], [-2.0, 0.5]] {
                let y0: Vec<f32> = (0..len)
                    .map(|t| match t % 9 {
                        0 => tiny,
                        1 => -tiny,
                        4 if t == 13 => f32::NAN,
                        _ => ((t * 37 % 23) as f32 - 11.0) * 0.07,
                    })
                    .collect();
                let r: Vec<f64> = (0..len).map(|t| (t as f64 * 0.3).sin() * 3.0).collect();
                let mixed: Vec<f32> = y0
                    .iter()
                    .zip(&r)
                    .map(|(&y, &r)| (gains[0] * r + gains[1] * f64::from(y)) as f32)
                    .collect();
                let want: Vec<f32> = mixed
                    .iter()
                    .map(|&v| if v.abs() < f32::MIN_POSITIVE { 0.0 } else { v })
                    .collect();
                // The peak of the mixed samples, as `flush_subnormals_peak` reads them.
                let want_peak = mixed
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(0.0f32, |m, v| m.max(v.abs()));
                let mut y = y0.clone();
                let peak = mix_out(&mut y, &r, gains);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&want), "len {len} gains {gains:?}");
                assert_eq!(peak, want_peak, "len {len} gains {gains:?}");
                assert!(y.iter().all(|v| !v.is_subnormal()));
            }
        }
    }

    /// The kernels against their formulas written out naively: channel counts that fill the
    /// vector kernels' tiles exactly and those that leave every kind of remainder, lengths
    /// with and without a tail, an output buffer that starts dirty.
    #[test]
    fn kernels_match_their_formulas() {
        for n in [1, 2, 3, 4, 5, 6, 7, 8, 11, 16] {
            for (len, stride) in [(37, 40), (64, 64), (8, 9), (3, 5), (0, 4)] {
                let xs: Vec<f64> = (0..n * stride)
                    .map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0)
                    .collect();
                let p = DMatrix::from_fn(n, n, |i, j| (i as f64 + 1.0) * 0.3 - j as f64 * 0.2);
                let start = DMatrix::from_fn(n, n, |i, j| (i * n + j) as f64 * 0.01);
                let mut outer = start.clone();
                accumulate_outer(&mut outer, &xs, n, len, stride);
                let mut rs = vec![7.0; n * stride];
                respond_planar(&p, &xs, &mut rs, n, len, stride);
                // The portable bodies (what CPUs without AVX2/FMA run) against the same truth.
                let mut outer_p = start.clone();
                accumulate_outer_portable(&mut outer_p, &xs, n, len, stride);
                let mut rs_p = vec![7.0; n * stride];
                respond_planar_portable(&p, &xs, &mut rs_p, n, len, stride);
                for (a, b) in outer.iter().zip(outer_p.iter()).chain(rs.iter().zip(&rs_p)) {
                    assert!((a - b).abs() < 1e-12, "portable n {n} len {len}");
                }
                for i in 0..n {
                    for j in 0..n {
                        let want = if i >= j {
                            start[(i, j)]
                                + (0..len)
                                    .map(|t| xs[i * stride + t] * xs[j * stride + t])
                                    .sum::<f64>()
                        } else {
                            // The upper triangle is left alone.
                            start[(i, j)]
                        };
                        assert!(
                            (outer[(i, j)] - want).abs() < 1e-12,
                            "outer n {n} len {len} ({i}, {j})"
                        );
                    }
                    for t in 0..stride {
                        let want = if t < len {
                            (0..n).map(|j| p[(i, j)] * xs[j * stride + t]).sum()
                        } else {
                            // Past `len` nothing is written.
                            7.0
                        };
                        assert!(
                            (rs[i * stride + t] - want).abs() < 1e-12,
                            "respond n {n} len {len} ({i}, {t})"
                        );
                    }
                }
            }
        }
        let a: Vec<Complex<f64>> = (0..11)
            .map(|k| Complex::new(k as f64, 1.0 - k as f64))
            .collect();
        let b: Vec<Complex<f64>> = (0..11).map(|k| Complex::new(0.5 * k as f64, 2.0)).collect();
        let naive: Complex<f64> = a.iter().zip(&b).map(|(x, y)| x * y.conj()).sum();
        assert!((cdot(&a, &b) - naive).norm() < 1e-12);
        let seg: Vec<f32> = (0..19).map(|k| k as f32 * 0.1).collect();
        let naive: f64 = seg.iter().map(|v| (*v as f64) * (*v as f64)).sum();
        assert!((energy(&seg) - naive).abs() < 1e-4);
    }

    /// The band kernels against their formulas written out with complex arithmetic, for mono,
    /// stereo (the vector paths) and three channels (the portable one), bands of odd and even
    /// length at an offset.
    #[test]
    fn band_kernels_match_their_formulas() {
        let bins = 23;
        for n in 1..=3 {
            for (lo, len) in [(0, 1), (1, 3), (0, 4), (2, 7), (5, 10), (3, 20)] {
                let data: Vec<Complex<f64>> = (0..n * bins)
                    .map(|i| {
                        Complex::new(
                            ((i * 37) % 19) as f64 / 9.0 - 1.0,
                            ((i * 11) % 7) as f64 / 3.0 - 1.0,
                        )
                    })
                    .collect();
                let q = DMatrix::from_fn(n, n, |i, j| {
                    Complex::new(
                        0.4 + i as f64 * 0.3 - j as f64 * 0.1,
                        0.2 * (i as f64 - j as f64) + 0.05,
                    )
                });
                let gains = [0.7, 0.25];
                let mut out = data.clone();
                respond_mix_band(&q, &mut out, n, bins, lo, len, gains);
                let mut outer = DMatrix::zeros(n, n);
                band_outer(&mut outer, &data, n, bins, lo, len, 2.0);
                for i in 0..n {
                    for k in 0..bins {
                        let naive = if (lo..lo + len).contains(&k) {
                            let r: Complex<f64> =
                                (0..n).map(|j| q[(i, j)] * data[j * bins + k]).sum();
                            r * gains[0] + data[i * bins + k] * gains[1]
                        } else {
                            data[i * bins + k]
                        };
                        assert!((out[i * bins + k] - naive).norm() < 1e-12, "n {n} bin {k}");
                    }
                    for j in 0..n {
                        let naive: Complex<f64> = (lo..lo + len)
                            .map(|k| data[i * bins + k] * data[j * bins + k].conj())
                            .sum::<Complex<f64>>()
                            * (2.0 / len as f64);
                        assert!((outer[(i, j)] - naive).norm() < 1e-12, "n {n} ({i}, {j})");
                    }
                }
            }
        }
    }
}
