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

simd_kernel! {
    /// `outer[i, j] += Σ_t x_i[t] x_j[t]` (lower triangle) for `len` vectors stored
    /// channel-major in `xs` with stride `stride`.
    pub fn accumulate_outer(
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
}

simd_kernel! {
    /// `r_i[t] = Σ_j P_ij x_j[t]` for `len` vectors stored channel-major with stride `stride`:
    /// axpys over contiguous slices, in tiles of 64 vectors that keep a tile's inputs and
    /// outputs in L1 for n = 16.
    pub fn respond_planar(
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
}

/// `Σ a_t b_t` with eight independent partial sums: a single running sum is a chain of
/// dependent additions the compiler may not reorder, eight let it use vector lanes.
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// `Σ a_k · conj(b_k)` with four independent partial sums (see [`dot`]).
#[inline]
pub fn cdot(a: &[Complex<f64>], b: &[Complex<f64>]) -> Complex<f64> {
    let mut acc = [Complex::new(0.0, 0.0); 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k].conj();
        }
    }
    let tail: Complex<f64> = ra.iter().zip(rb).map(|(x, y)| x * y.conj()).sum();
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

simd_kernel! {
    /// `r_i[k] = Σ_j P_ij S_j[lo + k]` for the `len` bins of a band, from the channel-major
    /// spectra `data` (stride `bins`) into `r` (stride `len`).
    pub fn respond_band(
        p: &DMatrix<Complex<f64>>,
        data: &[Complex<f64>],
        r: &mut [Complex<f64>],
        n: usize,
        bins: usize,
        lo: usize,
        len: usize,
    ) {
        for i in 0..n {
            let ri = &mut r[i * len..(i + 1) * len];
            ri.fill(Complex::new(0.0, 0.0));
            for j in 0..n {
                let pij = p[(i, j)];
                for (rv, sv) in ri.iter_mut().zip(&data[j * bins + lo..j * bins + lo + len]) {
                    *rv += pij * sv;
                }
            }
        }
    }
}

simd_kernel! {
    /// The band-mean outer product of the bins `lo..lo + len` of channel-major spectra `data`
    /// (stride `bins`), times `scale`: `outer[i, j] = scale/len · Σ_k S_i[k] conj(S_j[k])`
    /// (both triangles).
    pub fn band_outer(
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
            for i in j..n {
                let xi = &data[i * bins + lo..i * bins + lo + len];
                let v = cdot(xi, xj) * s;
                outer[(i, j)] = v;
                outer[(j, i)] = v.conj();
            }
        }
    }
}

simd_kernel! {
    /// Write the band's output into the spectra in place: `y = wet·r + dry·y` for the bins
    /// `lo..lo + len` of every channel, `r` with stride `len`; `gains` is `[wet, dry]`.
    pub fn mix_band(
        data: &mut [Complex<f64>],
        r: &[Complex<f64>],
        n: usize,
        bins: usize,
        lo: usize,
        len: usize,
        gains: [f64; 2],
    ) {
        let [wet, dry] = gains;
        for c in 0..n {
            let ys = &mut data[c * bins + lo..c * bins + lo + len];
            for (y, rv) in ys.iter_mut().zip(&r[c * len..(c + 1) * len]) {
                *y = *rv * wet + *y * dry;
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

simd_kernel! {
    /// `y[t] = f32(wet · r[t] + dry · y[t])`: one channel's output mixed in place.
    pub fn mix_out(y: &mut [f32], r: &[f64], gains: [f64; 2]) {
        let [wet, dry] = gains;
        for (y, r) in y.iter_mut().zip(r) {
            *y = (wet * r + dry * *y as f64) as f32;
        }
    }
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

    /// The kernels against their formulas written out naively.
    #[test]
    fn kernels_match_their_formulas() {
        let (n, len, stride) = (3, 37, 40);
        let xs: Vec<f64> = (0..n * stride)
            .map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let p = DMatrix::from_fn(n, n, |i, j| (i as f64 + 1.0) * 0.3 - j as f64 * 0.2);
        let mut outer = DMatrix::zeros(n, n);
        accumulate_outer(&mut outer, &xs, n, len, stride);
        let mut rs = vec![0.0; n * stride];
        respond_planar(&p, &xs, &mut rs, n, len, stride);
        for i in 0..n {
            for j in 0..=i {
                let naive: f64 = (0..len)
                    .map(|t| xs[i * stride + t] * xs[j * stride + t])
                    .sum();
                assert!((outer[(i, j)] - naive).abs() < 1e-12);
            }
            for t in 0..len {
                let naive: f64 = (0..n).map(|j| p[(i, j)] * xs[j * stride + t]).sum();
                assert!((rs[i * stride + t] - naive).abs() < 1e-12);
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
}
