//! The transforms of an odd last channel of the STFT — a mono signal's only one, and a
//! sidechain key's (docs/DESIGN.md §3.2): its real frame as a complex frame of half the
//! length through one `f32` FFT, joined to the real spectrum by a radix-2 step. Kept apart
//! from the pairs' transforms in [`super::analysis`], whose scaling, energies and precision
//! it shares.

use super::analysis::{energy_c64, energy_f32, pair_scale, widen, FftFloat};
use crate::engine::safety::prefaulted;
use num_complex::Complex;
use rustfft::Fft;
use std::sync::Arc;

/// The transforms of an odd last channel (a mono signal's only one): a real frame of length
/// `N` as a complex one of length `M = N/2`, `z[j] = x[2j] + i·x[2j+1]` — the frame's memory
/// read as `M` complex values — through one complex [`FftFloat`] FFT of length `M`, with its
/// buffers. Allocated in `new`.
///
/// `Z = FFT_M(z)` holds the transforms of the even and odd samples, `E[k] = (Z[k] + conj
/// Z[M−k])/2` and `O[k] = (Z[k] − conj Z[M−k])/(2i)`, and the real frame's spectrum is
/// `X[k] = E[k] + e^{−2πik/N}·O[k]` (the radix-2 step). With `V_k = −i·e^{−2πik/N}`:
///
/// ```text
///     X[k] = ½·(s_k + V_k·d_k),       s_k = Z[k] + conj Z[M−k],  d_k = Z[k] − conj Z[M−k],
///     X[0] = Re Z[0] + Im Z[0],       X[M] = Re Z[0] − Im Z[0],
/// ```
///
/// and back, since `conj X[M−k] = E[k] − e^{−2πik/N}·O[k]` for a real frame,
/// `Z[k] = 2(E[k] + i·O[k]) = s'_k + conj(V_k)·d'_k` with `s'_k = X[k] + conj X[M−k]`,
/// `d'_k = X[k] − conj X[M−k]`, and `Z[0] = (X[0] + X[M]) + i·(X[0] − X[M])`; the inverse
/// FFT of length `M` then gives `M·(x[2j] + i·x[2j+1])·2 = N·x` in time order, the same
/// unnormalised scale as the pair's. `realfft` does these steps one bin at a time in `f64`;
/// here they take two bins per AVX vector, and the FFT has the `f32` lanes of the pairs'
/// (with windowing and overlap-add, 35 % fewer instructions than `realfft`'s `f64` transforms).
/// The frame is scaled by its [`pair_scale`] for the transform and back after it, so that
/// spectra of any level stay inside `f32`'s range and silence stays exactly silent.
pub(super) struct SingleFft {
    /// Forward complex FFT of length `N/2`.
    forward: Arc<dyn Fft<FftFloat>>,
    /// Inverse complex FFT of length `N/2` (unnormalised).
    inverse: Arc<dyn Fft<FftFloat>>,
    /// `V_k = −i·e^{−2πik/N}`, `k = 0..N/2`, from the exact residue (`f64`).
    twiddles: Vec<Complex<f64>>,
    /// One time-domain frame of `N` samples in time order, scaled by its [`pair_scale`],
    /// held as `N/2` complex values: the windowed input before the forward FFT, `N·g·x` after
    /// the inverse one.
    frame: Vec<Complex<FftFloat>>,
    /// In-place scratch for both directions.
    scratch: Vec<Complex<FftFloat>>,
}

impl SingleFft {
    /// Plan both directions for length `fft_size` (even) and allocate their buffers.
    pub(super) fn new(fft_size: usize) -> Self {
        let half = fft_size / 2;
        let mut planner = rustfft::FftPlanner::<FftFloat>::new();
        let forward = planner.plan_fft_forward(half);
        let inverse = planner.plan_fft_inverse(half);
        let len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        let twiddles = (0..half)
            .map(|k| {
                let theta = 2.0 * std::f64::consts::PI * k as f64 / fft_size as f64;
                // −i·(cos θ − i·sin θ) = −sin θ − i·cos θ.
                Complex::new(-theta.sin(), -theta.cos())
            })
            .collect();
        Self {
            forward,
            inverse,
            twiddles,
            frame: prefaulted(half, Complex::new(0.0, 0.0)),
            scratch: prefaulted(len, Complex::new(0.0, 0.0)),
        }
    }

    /// The frame's `N` samples in time order.
    pub(super) fn samples(&self) -> &[FftFloat] {
        reals(&self.frame)
    }

    /// Whether every buffer has the lengths of a transform of `fft_size`.
    fn fits(&self, fft_size: usize) -> bool {
        let half = fft_size / 2;
        self.frame.len() == half
            && self.twiddles.len() == half
            && self.forward.len() == half
            && self.inverse.len() == half
            && self.scratch.len() >= self.forward.get_inplace_scratch_len()
            && self.scratch.len() >= self.inverse.get_inplace_scratch_len()
    }
}

/// Complex values as their interleaved real and imaginary parts (num-complex's `Pod`, as the
/// band kernels view spectra).
fn reals(z: &[Complex<FftFloat>]) -> &[FftFloat] {
    bytemuck::cast_slice(z)
}

/// [`reals`], mutably.
fn reals_mut(z: &mut [Complex<FftFloat>]) -> &mut [FftFloat] {
    bytemuck::cast_slice_mut(z)
}

/// One channel's analysis at a hop boundary: the ring read from `pos` onwards (wrapping) is the
/// frame in time order; it is windowed and scaled into `single.frame` and transformed into
/// `spectrum` ([`SingleFft`]). Lengths are right by construction; if they somehow were not, the
/// spectrum is zeroed rather than a stale one reused. Shared by [`Stft`](super::Stft) and its
/// forward half, [`StftAnalysis`](super::StftAnalysis). No allocation.
pub(super) fn analyse_ring(
    ring: &[f32],
    pos: usize,
    window: &[f64],
    single: &mut SingleFft,
    spectrum: &mut [Complex<f64>],
) {
    let n = ring.len();
    let half = n / 2;
    if !single.fits(n) || window.len() != n || spectrum.len() != half + 1 || pos > n {
        spectrum.fill(Complex::new(0.0, 0.0));
        return;
    }
    let (g, inv) = pair_scale(energy_f32(ring), n);
    let SingleFft {
        forward,
        twiddles,
        frame,
        scratch,
        ..
    } = single;
    let older = n - pos;
    let (frame_old, frame_new) = reals_mut(frame).split_at_mut(older);
    let (win_old, win_new) = window.split_at(older);
    window_single(frame_old, &ring[pos..], win_old, g);
    window_single(frame_new, &ring[..pos], win_new, g);
    forward.process_with_scratch(frame, scratch);
    let z0 = widen(frame[0]);
    spectrum[0] = Complex::new((z0.re + z0.im) * inv, 0.0);
    spectrum[half] = Complex::new((z0.re - z0.im) * inv, 0.0);
    // The halving and the scaling back are one exact factor.
    unpack(frame, twiddles, spectrum, 0.5 * inv);
}

/// [`analyse_ring`]'s radix-2 step for bins `1..N/2`, two bins per AVX vector where the CPU
/// has it (the same operations, so the same bits). `frame` and `twiddles` hold `M = N/2`
/// values, `spectrum` `M + 1`.
fn unpack(
    frame: &[Complex<FftFloat>],
    twiddles: &[Complex<f64>],
    spectrum: &mut [Complex<f64>],
    h: f64,
) {
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx")
        && twiddles.len() == frame.len()
        && spectrum.len() == frame.len() + 1
    {
        // SAFETY: the CPU has AVX; the lengths were checked.
        k = unsafe { unpack_avx(frame, twiddles, spectrum, h) };
    }
    unpack_from(k, frame, twiddles, spectrum, h);
}

/// [`analyse_ring`]'s radix-2 step for bins `k0..N/2` one at a time:
/// `X[k] = h·(s_k + V_k·d_k)` ([`SingleFft`]).
fn unpack_from(
    k0: usize,
    frame: &[Complex<FftFloat>],
    twiddles: &[Complex<f64>],
    spectrum: &mut [Complex<f64>],
    h: f64,
) {
    let half = frame.len();
    for k in k0..half {
        let (z, w) = (widen(frame[k]), widen(frame[half - k]));
        let (sr, si) = (z.re + w.re, z.im - w.im);
        let (dr, di) = (z.re - w.re, z.im + w.im);
        let v = twiddles[k];
        let (tr, ti) = (v.re * dr - v.im * di, v.re * di + v.im * dr);
        spectrum[k] = Complex::new(h * (sr + tr), h * (si + ti));
    }
}

/// The inverse of [`analyse_ring`]'s transform: `spectrum` (`N/2 + 1` bins; the imaginary
/// parts of DC and Nyquist are not read, the projection onto real signals) into
/// `single.frame`, whose [`SingleFft::samples`] are then `N·g·x` in time order. Returns
/// `1/g`, the factor the overlap-add scales back by (0 for a silent spectrum), or `None` if
/// the lengths are wrong. No allocation.
pub(super) fn synthesise_single(spectrum: &[Complex<f64>], single: &mut SingleFft) -> Option<f64> {
    let half = single.frame.len();
    if !single.fits(2 * half) || spectrum.len() != half + 1 {
        return None;
    }
    let (g, inv) = pair_scale(energy_c64(spectrum), spectrum.len());
    let SingleFft {
        inverse,
        twiddles,
        frame,
        scratch,
        ..
    } = single;
    let (x0, xm) = (spectrum[0].re * g, spectrum[half].re * g);
    frame[0] = Complex::new((x0 + xm) as FftFloat, (x0 - xm) as FftFloat);
    pack(spectrum, twiddles, frame, g);
    inverse.process_with_scratch(frame, scratch);
    Some(inv)
}

/// [`synthesise_single`]'s step for bins `1..N/2`, two bins per AVX vector where the CPU has
/// it (the same operations, so the same bits). Lengths as in [`unpack`].
fn pack(
    spectrum: &[Complex<f64>],
    twiddles: &[Complex<f64>],
    frame: &mut [Complex<FftFloat>],
    g: f64,
) {
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx")
        && twiddles.len() == frame.len()
        && spectrum.len() == frame.len() + 1
    {
        // SAFETY: the CPU has AVX; the lengths were checked.
        k = unsafe { pack_avx(spectrum, twiddles, frame, g) };
    }
    pack_from(k, spectrum, twiddles, frame, g);
}

/// [`synthesise_single`]'s step for bins `k0..N/2` one at a time, each bin scaled by `g`
/// first: `Z[k] = s'_k + conj(V_k)·d'_k` ([`SingleFft`]).
fn pack_from(
    k0: usize,
    spectrum: &[Complex<f64>],
    twiddles: &[Complex<f64>],
    frame: &mut [Complex<FftFloat>],
    g: f64,
) {
    let half = frame.len();
    for k in k0..half {
        let (x, y) = (spectrum[k].scale(g), spectrum[half - k].scale(g));
        let (sr, si) = (x.re + y.re, x.im - y.im);
        let (dr, di) = (x.re - y.re, x.im + y.im);
        let v = twiddles[k];
        let (tr, ti) = (v.re * dr + v.im * di, v.re * di - v.im * dr);
        frame[k] = Complex::new((sr + tr) as FftFloat, (si + ti) as FftFloat);
    }
}

/// A channel windowed and scaled into a real frame, `frame[t] = x[t]·(w[t]·g)` (in `f64`,
/// rounded once), over the shortest of the three lengths; four samples per step in AVX lanes
/// where the CPU has it (the same operations, so the same bits).
fn window_single(frame: &mut [FftFloat], x: &[f32], w: &[f64], g: f64) {
    let len = frame.len().min(x.len()).min(w.len());
    let (frame, x, w) = (&mut frame[..len], &x[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the three slices have the same length.
        t = unsafe { window_single_avx(frame, x, w, g) };
    }
    for t in t..len {
        frame[t] = (f64::from(x[t]) * (w[t] * g)) as FftFloat;
    }
}

/// The overlap-add of a single channel's synthesised frame scaled back by `inv = 1/g` from
/// [`synthesise_single`]: `acc[t] += y[t]·(w[t]·inv)`, over the shortest of the three
/// lengths; four samples per step in AVX lanes where the CPU has it (the same operations, so
/// the same bits).
pub(super) fn overlap_add_single(acc: &mut [f64], y: &[FftFloat], w: &[f64], inv: f64) {
    let len = acc.len().min(y.len()).min(w.len());
    let (acc, y, w) = (&mut acc[..len], &y[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the three slices have the same length.
        t = unsafe { overlap_add_single_avx(acc, y, w, inv) };
    }
    for t in t..len {
        acc[t] += f64::from(y[t]) * (w[t] * inv);
    }
}

/// [`window_single`] four samples at a time. Returns the first sample left.
///
/// # Safety
/// The CPU must have AVX; the three slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn window_single_avx(frame: &mut [FftFloat], x: &[f32], w: &[f64], g: f64) -> usize {
    use std::arch::x86_64::*;
    let len = frame.len();
    let gv = _mm256_set1_pd(g);
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice.
        unsafe {
            let wv = _mm256_mul_pd(_mm256_loadu_pd(w.as_ptr().add(t)), gv);
            let xv = _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(t)));
            // Rounded to nearest, as `as f32` rounds.
            _mm_storeu_ps(
                frame.as_mut_ptr().add(t),
                _mm256_cvtpd_ps(_mm256_mul_pd(xv, wv)),
            );
        }
        t += 4;
    }
    t
}

/// [`overlap_add_single`] four samples at a time. Returns the first sample left.
///
/// # Safety
/// The CPU must have AVX; the three slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn overlap_add_single_avx(acc: &mut [f64], y: &[FftFloat], w: &[f64], inv: f64) -> usize {
    use std::arch::x86_64::*;
    let len = acc.len();
    let iv = _mm256_set1_pd(inv);
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice.
        unsafe {
            let wv = _mm256_mul_pd(_mm256_loadu_pd(w.as_ptr().add(t)), iv);
            let yv = _mm256_cvtps_pd(_mm_loadu_ps(y.as_ptr().add(t)));
            let pa = acc.as_mut_ptr().add(t);
            _mm256_storeu_pd(
                pa,
                _mm256_add_pd(_mm256_loadu_pd(pa), _mm256_mul_pd(yv, wv)),
            );
        }
        t += 4;
    }
    t
}

/// [`unpack_from`] for bins `1..` in pairs: `Z[k], Z[k+1]` in one vector, their partners
/// `Z[M−k−1], Z[M−k]` in another with its halves swapped, as the pairs' split loads them; the
/// twiddle product as `addsub(Re V·d, Im V·swap(d))`. Returns the first bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` and `twiddles` hold `M = N/2` values and `spectrum`
/// `M + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn unpack_avx(
    frame: &[Complex<FftFloat>],
    twiddles: &[Complex<f64>],
    spectrum: &mut [Complex<f64>],
    h: f64,
) -> usize {
    use std::arch::x86_64::*;
    let half = frame.len();
    let f = frame.as_ptr() as *const f32;
    let tw = twiddles.as_ptr() as *const f64;
    let out = spectrum.as_mut_ptr() as *mut f64;
    // Lanes [re, im, re, im]: xor flips the imaginary parts.
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let h = _mm256_set1_pd(h);
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: 1 ≤ k and k + 1 < M, so k, k + 1, M − k − 1 and M − k are within `frame`
        // and `twiddles`, and k, k + 1 within `spectrum`.
        unsafe {
            let z = _mm256_cvtps_pd(_mm_loadu_ps(f.add(2 * k)));
            let wr = _mm256_cvtps_pd(_mm_loadu_ps(f.add(2 * (half - k - 1))));
            let cw = _mm256_xor_pd(_mm256_permute2f128_pd(wr, wr, 0x01), conj);
            let s = _mm256_add_pd(z, cw);
            let d = _mm256_sub_pd(z, cw);
            let v = _mm256_loadu_pd(tw.add(2 * k));
            let (vr, vi) = (_mm256_movedup_pd(v), _mm256_permute_pd(v, 0b1111));
            let t = _mm256_addsub_pd(
                _mm256_mul_pd(vr, d),
                _mm256_mul_pd(vi, _mm256_permute_pd(d, 0b0101)),
            );
            _mm256_storeu_pd(out.add(2 * k), _mm256_mul_pd(h, _mm256_add_pd(s, t)));
        }
        k += 2;
    }
    k
}

/// [`pack_from`] for bins `1..` in pairs, loaded as in [`unpack_avx`]; the conjugate twiddle's
/// product as `addsub(Re V·d', −Im V·swap(d'))`. Returns the first bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` and `twiddles` hold `M = N/2` values and `spectrum`
/// `M + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn pack_avx(
    spectrum: &[Complex<f64>],
    twiddles: &[Complex<f64>],
    frame: &mut [Complex<FftFloat>],
    g: f64,
) -> usize {
    use std::arch::x86_64::*;
    let half = frame.len();
    let f = frame.as_mut_ptr() as *mut f32;
    let tw = twiddles.as_ptr() as *const f64;
    let sp = spectrum.as_ptr() as *const f64;
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let negate = _mm256_set1_pd(-0.0);
    let g = _mm256_set1_pd(g);
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: as in `unpack_avx`.
        unsafe {
            let x = _mm256_mul_pd(g, _mm256_loadu_pd(sp.add(2 * k)));
            let yr = _mm256_mul_pd(g, _mm256_loadu_pd(sp.add(2 * (half - k - 1))));
            let cy = _mm256_xor_pd(_mm256_permute2f128_pd(yr, yr, 0x01), conj);
            let s = _mm256_add_pd(x, cy);
            let d = _mm256_sub_pd(x, cy);
            let v = _mm256_loadu_pd(tw.add(2 * k));
            let (vr, vi) = (
                _mm256_movedup_pd(v),
                _mm256_xor_pd(_mm256_permute_pd(v, 0b1111), negate),
            );
            let t = _mm256_addsub_pd(
                _mm256_mul_pd(vr, d),
                _mm256_mul_pd(vi, _mm256_permute_pd(d, 0b0101)),
            );
            // Rounded to nearest, as `as f32` is.
            _mm_storeu_ps(f.add(2 * k), _mm256_cvtpd_ps(_mm256_add_pd(s, t)));
        }
        k += 2;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::analysis::tests::{dft, idft, relative_error};
    use crate::framing::stft::periodic_hann;

    /// The single channel's vectorised steps give the scalar formulas' bits exactly: the
    /// radix-2 step both ways for half-lengths around the vector width, the windowing and the
    /// overlap-add for lengths around it, scales of either size (and the silent channel's 0).
    #[test]
    fn single_steps_are_the_scalar_formulas() {
        for half in [2usize, 4, 8, 16, 128] {
            let single = SingleFft::new(2 * half);
            let frame: Vec<Complex<f32>> = (0..half)
                .map(|k| Complex::new((k as f32 * 0.7).cos(), (k as f32 * 1.3).sin() - 0.2))
                .collect();
            let spectrum: Vec<Complex<f64>> = (0..=half)
                .map(|k| Complex::new((k as f64 * 0.37).sin(), (k as f64 * 0.11).cos()))
                .collect();
            for scale in [1.0, 0.125, 64.0] {
                let nan = Complex::new(f64::NAN, f64::NAN);
                let (mut got, mut want) = (vec![nan; half + 1], vec![nan; half + 1]);
                unpack(&frame, &single.twiddles, &mut got, scale);
                unpack_from(1, &frame, &single.twiddles, &mut want, scale);
                assert_eq!(got[1..half], want[1..half], "unpack, M = {half}");
                let nan = Complex::new(f32::NAN, f32::NAN);
                let (mut got, mut want) = (vec![nan; half], vec![nan; half]);
                pack(&spectrum, &single.twiddles, &mut got, scale);
                pack_from(1, &spectrum, &single.twiddles, &mut want, scale);
                assert_eq!(got[1..], want[1..], "pack, M = {half}");
            }
        }
        for (g, inv) in [(1.0, 1.0), (0.25, 4.0), (8.0, 0.0)] {
            for len in [0, 1, 3, 4, 5, 8, 13, 64, 257] {
                let x: Vec<f32> = (0..len)
                    .map(|t| ((t * 37 % 23) as f32 - 11.0) * 0.07)
                    .collect();
                let w: Vec<f64> = (0..len).map(|t| (t as f64 * 0.3).sin() + 0.1).collect();
                let mut frame = vec![f32::NAN; len];
                window_single(&mut frame, &x, &w, g);
                for t in 0..len {
                    let want = (f64::from(x[t]) * (w[t] * g)) as f32;
                    assert_eq!(
                        frame[t].to_bits(),
                        want.to_bits(),
                        "window, len {len}, t {t}"
                    );
                }
                let y: Vec<f32> = (0..len).map(|t| (t as f32 * 0.7).cos()).collect();
                let mut acc: Vec<f64> = (0..len).map(|t| t as f64 * 0.01).collect();
                let want: Vec<f64> = (0..len)
                    .map(|t| acc[t] + f64::from(y[t]) * (w[t] * inv))
                    .collect();
                overlap_add_single(&mut acc, &y, &w, inv);
                assert_eq!(acc, want, "overlap-add, len {len}");
            }
        }
    }

    /// A single channel through the half-length complex `f32` FFT gives its own spectrum — the
    /// naive `f64` DFT of its windowed frame — and back its naive inverse DFT, to `f32`
    /// rounding relative to its own level whatever that level (the bound of the pairs' test,
    /// `pair_transforms_are_each_channels_dft_to_f32_rounding`, plus `2ε` for the radix-2
    /// step's rounding into `f32` on the way back); silence is exactly zero both ways.
    #[test]
    fn single_transforms_are_the_dft_to_f32_rounding() {
        let eps = f64::from(f32::EPSILON) / 2.0;
        for n in [64usize, 256, 1024] {
            let bins = n / 2 + 1;
            let bound = (7.0 * (n as f64).log2() + 4.0) * eps;
            let window = periodic_hann(n);
            let mut single = SingleFft::new(n);
            for level in [1.0, 1e-6, 1e-30, 3e4, 0.0] {
                let ring: Vec<f32> = (0..n)
                    .map(|t| {
                        let v = ((t * 7 % 61) as f64 / 30.0 - 1.0) * 0.7 + (t as f64 * 0.01).sin();
                        (level * v) as f32
                    })
                    .collect();
                for pos in [0, 77 % n, n - 1] {
                    let mut spec = vec![Complex::new(f64::NAN, f64::NAN); bins];
                    analyse_ring(&ring, pos, &window, &mut single, &mut spec);
                    if level == 0.0 {
                        assert!(spec.iter().all(|z| *z == Complex::new(0.0, 0.0)));
                    } else {
                        let frame: Vec<f64> = (0..n)
                            .map(|j| f64::from(ring[(pos + j) % n]) * window[j])
                            .collect();
                        let want = dft(&frame);
                        let e =
                            relative_error(&spec, &want, |g, w| ((g - w).norm_sqr(), w.norm_sqr()));
                        assert!(e < bound, "N={n} level {level:e} pos {pos}: {e:e}");
                    }
                    // Back, perturbed as a whitener would, DC/Nyquist imaginary parts included.
                    for (k, z) in spec.iter_mut().enumerate() {
                        *z *= Complex::new(1.0 + (k % 5) as f64 * 0.1, 0.05 * (k % 3) as f64);
                    }
                    let inv = synthesise_single(&spec, &mut single).unwrap();
                    if level == 0.0 {
                        assert_eq!(inv, 0.0, "a silent spectrum is scaled back by 0");
                        continue;
                    }
                    let got: Vec<f64> = single
                        .samples()
                        .iter()
                        .map(|&y| f64::from(y) * inv)
                        .collect();
                    let want = idft(&spec, n);
                    let e = relative_error(&got, &want, |g, w| ((g - w).powi(2), w * w));
                    assert!(e < bound, "inverse N={n} level {level:e} pos {pos}: {e:e}");
                }
            }
        }
        // Wrong lengths are refused, not read past.
        let mut single = SingleFft::new(256);
        assert!(synthesise_single(&[Complex::new(1.0, 0.0); 100], &mut single).is_none());
        let mut spec = vec![Complex::new(1.0, 1.0); 129];
        analyse_ring(&[0.5; 100], 0, &[1.0; 100], &mut single, &mut spec);
        assert!(spec.iter().all(|z| *z == Complex::new(0.0, 0.0)));
    }
}
