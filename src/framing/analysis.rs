//! The analysis half of the streaming STFT, for a signal that is only listened to: the key of
//! sidechain learning (docs/DESIGN.md §3.8). Its frames are those of an [`Stft`](super::Stft)
//! of the same size fed the same number of samples — same window, same scaling (white noise of
//! variance σ² gives `E|X[k]|² = σ²`), same hop boundaries — so a band's key statistics and the
//! main input's spectra it whitens describe the same instants.
//!
//! Kept apart from [`Stft`](super::Stft) because it has no synthesis and a different driver:
//! the main STFT calls back at its hop boundaries, and inside that callback the analysis is
//! fed up to the same boundary ([`StftAnalysis::feed_to_frame`]).

use super::single::{analyse_ring, SingleFft};
use super::stft::{periodic_hann, validate_fft_size, StftError, HOP_DIVISOR, MAX_CHANNELS};
use crate::engine::safety::prefaulted;
use num_complex::Complex;
use rustfft::Fft;
use std::sync::Arc;

/// Streaming STFT analysis (no resynthesis) of up to [`MAX_CHANNELS`] channels in lockstep.
/// All memory is allocated in [`StftAnalysis::new`]; feeding never allocates, locks or panics.
pub struct StftAnalysis {
    /// `N`, the window and FFT length.
    fft_size: usize,
    /// `N/4`, samples between frames (as the main STFT's).
    hop: usize,
    /// `N/2 + 1`, complex bins per channel.
    bins: usize,
    /// Channels framed.
    channels: usize,
    /// `a[j] = g·h[j]`: the main STFT's analysis window, so both spectra have one scale.
    window: Vec<f64>,
    /// Last `N` samples per channel (channel-major), a ring indexed by time modulo `N`;
    /// non-finite samples are stored as 0.
    ring: Vec<f32>,
    /// The latest frame's spectra of every channel (channel-major, `bins` each).
    spectra: Vec<Complex<f64>>,
    /// Complex FFTs that analyse channels two at a time.
    pair: PairFft,
    /// The transforms of an odd last channel (its real frame as a complex one of half the length).
    single: SingleFft,
    /// Ring index of the next sample.
    pos: usize,
    /// Samples received since the last frame boundary, `0..hop`.
    fill: usize,
}

/// Where a feed's samples come from.
#[derive(Clone, Copy)]
pub enum AnalysisInput<'a> {
    /// These slices, one per channel (each long enough for the range fed).
    Signal(&'a [&'a [f32]]),
    /// Zeros: a missing key is silence.
    Silence,
}

impl StftAnalysis {
    /// An analysis of size `fft_size` (as [`Stft::new`](super::Stft::new) accepts) for
    /// `channels` channels. Allocates everything.
    pub fn new(fft_size: usize, channels: usize) -> Result<Self, StftError> {
        validate_fft_size(fft_size)?;
        if channels == 0 {
            return Err(StftError::ZeroChannels);
        }
        if channels > MAX_CHANNELS {
            return Err(StftError::TooManyChannels {
                requested: channels,
                max: MAX_CHANNELS,
            });
        }
        let bins = fft_size / 2 + 1;
        // The same arithmetic as the main STFT's analysis window (`stft::windows`), so that
        // identical input gives identical spectra.
        let hann = periodic_hann(fft_size);
        let energy: f64 = hann.iter().map(|h| h * h).sum();
        let gain = 1.0 / energy.sqrt();
        Ok(Self {
            fft_size,
            hop: fft_size / HOP_DIVISOR,
            bins,
            channels,
            window: hann.iter().map(|h| gain * h).collect(),
            ring: prefaulted(channels * fft_size, 0.0),
            spectra: prefaulted(channels * bins, Complex::new(0.0, 0.0)),
            pair: PairFft::new(fft_size),
            single: SingleFft::new(fft_size),
            pos: 0,
            fill: 0,
        })
    }

    /// Back to silence at the start of a hop, as [`Stft::reset`](super::Stft::reset).
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.spectra.fill(Complex::new(0.0, 0.0));
        self.pos = 0;
        self.fill = 0;
    }

    /// `N/2 + 1`.
    pub fn num_bins(&self) -> usize {
        self.bins
    }

    /// The spectra of the last completed frame, channel-major (`bins` per channel).
    pub fn spectra(&self) -> &[Complex<f64>] {
        &self.spectra
    }

    /// Store samples `*at..end` of `input` until a frame boundary is reached — then analyse
    /// that frame and return `true`, with `*at` just past the boundary — or `end` is (`false`).
    pub fn feed_to_frame(&mut self, input: AnalysisInput<'_>, at: &mut usize, end: usize) -> bool {
        while *at < end {
            let n = (self.hop - self.fill).min(end - *at);
            let span = self.pos..self.pos + n;
            for (c, ring) in self
                .ring
                .chunks_exact_mut(self.fft_size)
                .take(self.channels)
                .enumerate()
            {
                let ring = &mut ring[span.clone()];
                match input {
                    AnalysisInput::Signal(sig) => {
                        let Some(src) = sig.get(c).and_then(|s| s.get(*at..*at + n)) else {
                            ring.fill(0.0);
                            continue;
                        };
                        for (r, &x) in ring.iter_mut().zip(src) {
                            *r = if x.is_finite() { x } else { 0.0 };
                        }
                    }
                    AnalysisInput::Silence => ring.fill(0.0),
                }
            }
            *at += n;
            self.fill += n;
            self.pos += n;
            if self.pos == self.fft_size {
                self.pos = 0;
            }
            if self.fill == self.hop {
                self.fill = 0;
                self.analyse();
                return true;
            }
        }
        false
    }

    /// Advance by `len` samples of silence without analysing the frames that complete: keeps
    /// the hop phase in step with the main STFT while no key is listened to.
    pub fn skip(&mut self, len: usize) {
        let mut left = len;
        while left > 0 {
            let n = (self.hop - self.fill).min(left);
            for ring in self.ring.chunks_exact_mut(self.fft_size) {
                ring[self.pos..self.pos + n].fill(0.0);
            }
            left -= n;
            self.fill = (self.fill + n) % self.hop;
            self.pos = (self.pos + n) % self.fft_size;
        }
    }

    /// Window and transform the frame ending at the current hop boundary: channels two at a
    /// time, as the main STFT does, so that both give the same spectra bit for bit.
    fn analyse(&mut self) {
        analyse_channels(
            &self.ring[..self.channels * self.fft_size],
            self.pos,
            &self.window,
            &mut self.pair,
            &mut self.single,
            &mut self.spectra[..self.channels * self.bins],
        );
    }
}

/// Every channel's analysis at a hop boundary: pairs of channels through [`analyse_ring_pair`],
/// an odd last one through [`analyse_ring`]. `rings` and `spectra` hold the active channels
/// (channel-major, `N` samples and `N/2 + 1` bins each). Shared by [`Stft`](super::Stft) and
/// [`StftAnalysis`]. No allocation.
pub(super) fn analyse_channels(
    rings: &[f32],
    pos: usize,
    window: &[f64],
    pair: &mut PairFft,
    single: &mut SingleFft,
    spectra: &mut [Complex<f64>],
) {
    let n_fft = window.len();
    let bins = n_fft / 2 + 1;
    let mut ring_pairs = rings.chunks_exact(2 * n_fft);
    let mut spec_pairs = spectra.chunks_exact_mut(2 * bins);
    for (rp, sp) in (&mut ring_pairs).zip(&mut spec_pairs) {
        let (ra, rb) = rp.split_at(n_fft);
        let (sa, sb) = sp.split_at_mut(bins);
        analyse_ring_pair([ra, rb], pos, window, pair, [sa, sb]);
    }
    let (ring, spectrum) = (ring_pairs.remainder(), spec_pairs.into_remainder());
    if ring.len() == n_fft && spectrum.len() == bins {
        analyse_ring(ring, pos, window, single, spectrum);
    }
}

/// The precision of the pair transforms' arithmetic: `f32`, the format audio comes in and goes
/// out in. Everything around them — windows, spectra, learning, overlap-add — is `f64`. A
/// complex FFT of length `N` in `f32` is accurate to about `ε₃₂·√(log₂ N)` of its input's
/// energy (rms; Higham's worst case is `≈ 7·ε₃₂·log₂ N`), about −130 dB at `N = 1024`, far
/// below the −100 dB the design asks of the whole STFT; and it costs half an `f64` one (twice
/// the lanes per vector), the largest single cost of the spectral framing. Windowed samples
/// are formed in `f64` and rounded once; spectra are widened exactly.
///
/// The one thing `f32` would spoil is *channel independence*: the rounding of `z = a + i·b`
/// is relative to both channels together, so a quiet channel beside a loud one would carry the
/// loud one's rounding (−146 dB of the loud one's level; a channel 80 dB quieter would be
/// reproduced to only −66 dB of its own). So each channel of a pair is first scaled by a power
/// of two to about unit energy ([`pair_scale`]) and scaled back after the transform, both
/// exactly, and a silent channel is taken as exactly silent rather than as its partner's
/// rounding. An odd last channel goes through [`SingleFft`]: its real frame as a complex one of
/// half the length, in `f32` as well, at its own scale.
pub(super) type FftFloat = f32;

/// The complex FFTs of length `N` that transform two channels at once
/// ([`analyse_ring_pair`], [`synthesise_pair`]), with their buffers. Allocated in `new`.
pub(super) struct PairFft {
    /// Forward complex FFT of length `N`.
    pub(super) forward: Arc<dyn Fft<FftFloat>>,
    /// Inverse complex FFT of length `N` (unnormalised).
    pub(super) inverse: Arc<dyn Fft<FftFloat>>,
    /// One frame of the pair, `g_a·a + i·g_b·b` (each channel scaled by [`pair_scale`]).
    pub(super) frame: Vec<Complex<FftFloat>>,
    /// In-place scratch for both directions.
    pub(super) scratch: Vec<Complex<FftFloat>>,
}

impl PairFft {
    /// Plan both directions for length `fft_size` and allocate their buffers.
    pub(super) fn new(fft_size: usize) -> Self {
        let mut planner = rustfft::FftPlanner::<FftFloat>::new();
        let forward = planner.plan_fft_forward(fft_size);
        let inverse = planner.plan_fft_inverse(fft_size);
        let len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        Self {
            forward,
            inverse,
            frame: prefaulted(fft_size, Complex::new(0.0, 0.0)),
            scratch: prefaulted(len, Complex::new(0.0, 0.0)),
        }
    }
}

/// The exact power-of-two scale `(g, 1/g)` that brings a channel whose `values` values have
/// energy `Σ|x|² = energy` to between ½ and 2 per value (per `2^⌊log₂ values⌋` values, for a
/// count that is not a power of two), so that both channels of a pair are
/// rounded relative to their own level ([`FftFloat`]). A silent channel gets `(1, 0)`: scaling
/// back by 0 makes its transform exactly zero instead of its partner's rounding. A non-finite
/// energy (a non-finite spectrum, which the engine's guards deal with) gets `(1, 1)`, the
/// transform as it is. Read off the exponent bits: the energy's binade `2^k` gives
/// `g = 2^s`, `s = ⌊(log₂ values − k)/2⌋`, and `|s| ≤ 531` is well inside `f64`'s range.
pub(super) fn pair_scale(energy: f64, values: usize) -> (f64, f64) {
    if energy == 0.0 {
        return (1.0, 0.0);
    }
    if !energy.is_finite() || energy < 0.0 {
        return (1.0, 1.0);
    }
    // energy ∈ [2^k, 2^(k+1)) for a normal number of biased exponent b = k + 1023; a
    // subnormal one (b = 0) is below 2^−1022, and k = −1023 is near enough.
    let k = ((energy.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let s = (values.max(1).ilog2() as i32 - k).div_euclid(2);
    let pow2 = |e: i32| f64::from_bits(((1023 + e) as u64) << 52);
    (pow2(s), pow2(-s))
}

/// `Σ x²` in `f64`: value `i` of every eight into running sum `i mod 8`, sums `i` and `i + 4`
/// added, then those four pairwise — the order two AVX accumulators give, so both paths give
/// the same bits (two accumulators, because one would wait on its own previous addition).
pub(super) fn energy_f32(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut head = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        (acc, head) = unsafe { energy_f32_avx(x) };
    }
    let mut chunks = x[head..].chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let v = f64::from(v);
            *a += v * v;
        }
    }
    let rest: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum();
    reduce8(acc) + rest
}

/// `Σ |z|²`: real and imaginary parts as interleaved `f64` values, summed as [`energy_f32`]
/// sums.
pub(super) fn energy_c64(z: &[Complex<f64>]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut head = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX.
        (acc, head) = unsafe { energy_c64_avx(z) };
    }
    let mut chunks = z[head..].chunks_exact(4);
    for c in &mut chunks {
        for (pair, v) in acc.chunks_exact_mut(2).zip(c) {
            pair[0] += v.re * v.re;
            pair[1] += v.im * v.im;
        }
    }
    let rest: f64 = chunks.remainder().iter().map(|z| z.norm_sqr()).sum();
    reduce8(acc) + rest
}

/// The eight running sums of [`energy_f32`] and [`energy_c64`] in their fixed order.
fn reduce8(acc: [f64; 8]) -> f64 {
    let s = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (s[0] + s[1]) + (s[2] + s[3])
}

/// [`energy_f32`]'s eight running sums over the longest multiple of eight, and where it ends.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn energy_f32_avx(x: &[f32]) -> ([f64; 8], usize) {
    use std::arch::x86_64::*;
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut t = 0;
    while t + 8 <= x.len() {
        // SAFETY: t + 8 ≤ len.
        unsafe {
            let u = _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(t)));
            let v = _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(t + 4)));
            lo = _mm256_add_pd(lo, _mm256_mul_pd(u, u));
            hi = _mm256_add_pd(hi, _mm256_mul_pd(v, v));
        }
        t += 8;
    }
    let mut out = [0.0; 8];
    // SAFETY: `out` holds eight f64s.
    unsafe {
        _mm256_storeu_pd(out.as_mut_ptr(), lo);
        _mm256_storeu_pd(out.as_mut_ptr().add(4), hi);
    }
    (out, t)
}

/// [`energy_c64`]'s eight running sums over the longest multiple of four values, and where
/// it ends.
///
/// # Safety
/// The CPU must have AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn energy_c64_avx(z: &[Complex<f64>]) -> ([f64; 8], usize) {
    use std::arch::x86_64::*;
    let p = z.as_ptr() as *const f64;
    let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut k = 0;
    while k + 4 <= z.len() {
        // SAFETY: k + 4 ≤ len, and `z` holds 2·len f64s.
        unsafe {
            let u = _mm256_loadu_pd(p.add(2 * k));
            let v = _mm256_loadu_pd(p.add(2 * k + 4));
            lo = _mm256_add_pd(lo, _mm256_mul_pd(u, u));
            hi = _mm256_add_pd(hi, _mm256_mul_pd(v, v));
        }
        k += 4;
    }
    let mut out = [0.0; 8];
    // SAFETY: `out` holds eight f64s.
    unsafe {
        _mm256_storeu_pd(out.as_mut_ptr(), lo);
        _mm256_storeu_pd(out.as_mut_ptr().add(4), hi);
    }
    (out, k)
}

/// Two channels' analysis with one complex FFT of length `N` (the "two real transforms for one
/// complex" identity): the windowed frames `a` and `b`, each scaled by its [`pair_scale`], go in
/// as `z = g_a·a + i·g_b·b`, and since `A` and `B` are the spectra of real signals,
/// `g_a·A[k] = (Z[k] + conj Z[N−k]) / 2` and `g_b·B[k] = (Z[k] − conj Z[N−k]) / (2i)` for the
/// `N/2 + 1` bins kept. One complex FFT costs about what one real FFT and its
/// pre/post-processing do, so a pair costs about half. Lengths are right by construction; if
/// they somehow were not, both spectra are zeroed (as [`analyse_ring`] does). No allocation.
pub(super) fn analyse_ring_pair(
    rings: [&[f32]; 2],
    pos: usize,
    window: &[f64],
    pair: &mut PairFft,
    spectra: [&mut [Complex<f64>]; 2],
) {
    let PairFft {
        forward: fft,
        frame,
        scratch,
        ..
    } = pair;
    let n = frame.len();
    let older = n - pos;
    let [ra, rb] = rings;
    let ((ga, inv_a), (gb, inv_b)) = (
        pair_scale(energy_f32(ra), ra.len()),
        pair_scale(energy_f32(rb), rb.len()),
    );
    let (frame_old, frame_new) = frame.split_at_mut(older);
    let (win_old, win_new) = window.split_at(older);
    window_pair(frame_old, &ra[pos..], &rb[pos..], win_old, [ga, gb]);
    window_pair(frame_new, &ra[..pos], &rb[..pos], win_new, [ga, gb]);
    let [sa, sb] = spectra;
    let half = n / 2;
    if scratch.len() < fft.get_inplace_scratch_len()
        || fft.len() != n
        || sa.len() != half + 1
        || sb.len() != half + 1
    {
        sa.fill(Complex::new(0.0, 0.0));
        sb.fill(Complex::new(0.0, 0.0));
        return;
    }
    fft.process_with_scratch(frame, scratch);
    // Bins 0 and N/2 pair with themselves (Z[N] = Z[0]): their A and B are real.
    for k in [0, half] {
        let z = widen(frame[k]);
        sa[k] = Complex::new(z.re * inv_a, 0.0);
        sb[k] = Complex::new(z.im * inv_b, 0.0);
    }
    // The halving and the scaling back are one exact factor per channel.
    let (ha, hb) = (0.5 * inv_a, 0.5 * inv_b);
    // Bins 1..k_vec two at a time in AVX lanes (the same operations, so the same bits), the
    // rest one by one.
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the lengths were checked above.
        k = unsafe { split_avx(frame, sa, sb, ha, hb) };
    }
    for k in k..half {
        let (z, w) = (widen(frame[k]), widen(frame[n - k]));
        // A = (z + conj w)/2, B = (z − conj w)/(2i) = −i·(z − conj w)/2, each scaled back.
        sa[k] = Complex::new(ha * (z.re + w.re), ha * (z.im - w.im));
        sb[k] = Complex::new(hb * (z.im + w.im), hb * (w.re - z.re));
    }
}

/// An FFT value in `f64`, exactly.
pub(super) fn widen(z: Complex<FftFloat>) -> Complex<f64> {
    Complex::new(f64::from(z.re), f64::from(z.im))
}

/// Two channels windowed and scaled into one complex frame,
/// `frame[t] = a[t]·(w[t]·g_a) + i·b[t]·(w[t]·g_b)` (in `f64`, rounded once), over the
/// shortest of the four lengths; four samples per step in AVX lanes where the CPU has it (the
/// same operations, so the same bits).
fn window_pair(frame: &mut [Complex<FftFloat>], a: &[f32], b: &[f32], w: &[f64], g: [f64; 2]) {
    let len = frame.len().min(a.len()).min(b.len()).min(w.len());
    let (frame, a, b, w) = (&mut frame[..len], &a[..len], &b[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the four slices have the same length.
        t = unsafe { window_pair_avx(frame, a, b, w, g) };
    }
    for t in t..len {
        frame[t] = Complex::new(
            (f64::from(a[t]) * (w[t] * g[0])) as FftFloat,
            (f64::from(b[t]) * (w[t] * g[1])) as FftFloat,
        );
    }
}

/// [`window_pair`] four samples at a time. Returns the first sample left.
///
/// # Safety
/// The CPU must have AVX; the four slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn window_pair_avx(
    frame: &mut [Complex<FftFloat>],
    a: &[f32],
    b: &[f32],
    w: &[f64],
    g: [f64; 2],
) -> usize {
    use std::arch::x86_64::*;
    let len = frame.len();
    let f = frame.as_mut_ptr() as *mut f32;
    let (ga, gb) = (_mm256_set1_pd(g[0]), _mm256_set1_pd(g[1]));
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice; `frame` holds 2·len f32s.
        unsafe {
            let wv = _mm256_loadu_pd(w.as_ptr().add(t));
            let a64 = _mm256_cvtps_pd(_mm_loadu_ps(a.as_ptr().add(t)));
            let b64 = _mm256_cvtps_pd(_mm_loadu_ps(b.as_ptr().add(t)));
            let av = _mm256_mul_pd(a64, _mm256_mul_pd(wv, ga));
            let bv = _mm256_mul_pd(b64, _mm256_mul_pd(wv, gb));
            // Rounded to nearest as `as f32` rounds, then [a0..a3], [b0..b3] →
            // [a0 b0 a1 b1], [a2 b2 a3 b3].
            let (an, bn) = (_mm256_cvtpd_ps(av), _mm256_cvtpd_ps(bv));
            _mm_storeu_ps(f.add(2 * t), _mm_unpacklo_ps(an, bn));
            _mm_storeu_ps(f.add(2 * t + 4), _mm_unpackhi_ps(an, bn));
        }
        t += 4;
    }
    t
}

/// The overlap-add of a pair's synthesised frame, each channel scaled back by its
/// `inv = 1/g` from [`synthesise_pair`]: `a[t] += Re z[t]·(w[t]·inv_a)`,
/// `b[t] += Im z[t]·(w[t]·inv_b)`, over the shortest of the four lengths; four samples per
/// step in AVX lanes where the CPU has it (the same operations, so the same bits).
pub(super) fn overlap_add_pair(
    a: &mut [f64],
    b: &mut [f64],
    z: &[Complex<FftFloat>],
    w: &[f64],
    inv: [f64; 2],
) {
    let len = a.len().min(b.len()).min(z.len()).min(w.len());
    let (a, b, z, w) = (&mut a[..len], &mut b[..len], &z[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the four slices have the same length.
        t = unsafe { overlap_add_pair_avx(a, b, z, w, inv) };
    }
    for t in t..len {
        a[t] += f64::from(z[t].re) * (w[t] * inv[0]);
        b[t] += f64::from(z[t].im) * (w[t] * inv[1]);
    }
}

/// [`overlap_add_pair`] four samples at a time. Returns the first sample left.
///
/// # Safety
/// The CPU must have AVX; the four slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn overlap_add_pair_avx(
    a: &mut [f64],
    b: &mut [f64],
    z: &[Complex<FftFloat>],
    w: &[f64],
    inv: [f64; 2],
) -> usize {
    use std::arch::x86_64::*;
    let len = a.len();
    let zp = z.as_ptr() as *const f32;
    let (inv_a, inv_b) = (_mm256_set1_pd(inv[0]), _mm256_set1_pd(inv[1]));
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice; `z` holds 2·len f32s.
        unsafe {
            // Widened exactly: [r0 i0 r1 i1], [r2 i2 r3 i3] in f64.
            let z0 = _mm256_cvtps_pd(_mm_loadu_ps(zp.add(2 * t)));
            let z1 = _mm256_cvtps_pd(_mm_loadu_ps(zp.add(2 * t + 4)));
            // [r0 i0 r1 i1], [r2 i2 r3 i3] → [r0 i0 r2 i2], [r1 i1 r3 i3] → [r0..r3], [i0..i3].
            let (lo, hi) = (
                _mm256_permute2f128_pd(z0, z1, 0x20),
                _mm256_permute2f128_pd(z0, z1, 0x31),
            );
            let (re, im) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
            let wv = _mm256_loadu_pd(w.as_ptr().add(t));
            let (wa, wb) = (_mm256_mul_pd(wv, inv_a), _mm256_mul_pd(wv, inv_b));
            let (pa, pb) = (a.as_mut_ptr().add(t), b.as_mut_ptr().add(t));
            _mm256_storeu_pd(
                pa,
                _mm256_add_pd(_mm256_loadu_pd(pa), _mm256_mul_pd(re, wa)),
            );
            _mm256_storeu_pd(
                pb,
                _mm256_add_pd(_mm256_loadu_pd(pb), _mm256_mul_pd(im, wb)),
            );
        }
        t += 4;
    }
    t
}

/// [`analyse_ring_pair`]'s split for bins `1..` in pairs: `Z[k], Z[k+1]` in one vector, their
/// partners `Z[N−k−1], Z[N−k]` in another, its halves swapped; channel `a`'s half-sum scaled by
/// `ha`, `b`'s by `hb`. Returns the first bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` holds `N` values and `sa`, `sb` hold `N/2 + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn split_avx(
    frame: &[Complex<FftFloat>],
    sa: &mut [Complex<f64>],
    sb: &mut [Complex<f64>],
    ha: f64,
    hb: f64,
) -> usize {
    use std::arch::x86_64::*;
    let n = frame.len();
    let half = n / 2;
    let f = frame.as_ptr() as *const f32;
    let (pa, pb) = (sa.as_mut_ptr() as *mut f64, sb.as_mut_ptr() as *mut f64);
    // Lanes [re, im, re, im]: xor flips the imaginary parts.
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let (ha, hb) = (_mm256_set1_pd(ha), _mm256_set1_pd(hb));
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: k + 1 < N/2 < N − k − 1, all within `frame`, `sa` and `sb`.
        unsafe {
            // Widened exactly, as `widen` does.
            let z = _mm256_cvtps_pd(_mm_loadu_ps(f.add(2 * k)));
            let wr = _mm256_cvtps_pd(_mm_loadu_ps(f.add(2 * (n - k - 1))));
            let cw = _mm256_xor_pd(_mm256_permute2f128_pd(wr, wr, 0x01), conj);
            let a = _mm256_mul_pd(ha, _mm256_add_pd(z, cw));
            let d = _mm256_sub_pd(z, cw);
            let b = _mm256_mul_pd(hb, _mm256_xor_pd(_mm256_permute_pd(d, 0b0101), conj));
            _mm256_storeu_pd(pa.add(2 * k), a);
            _mm256_storeu_pd(pb.add(2 * k), b);
        }
        k += 2;
    }
    k
}

/// [`synthesise_pair`]'s merge for bins `1..` in pairs (see [`split_avx`]), channel `a` scaled
/// by `ga` and `b` by `gb` first. Returns the first bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` holds `N` values and `sa`, `sb` hold `N/2 + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn merge_avx(
    sa: &[Complex<f64>],
    sb: &[Complex<f64>],
    frame: &mut [Complex<FftFloat>],
    ga: f64,
    gb: f64,
) -> usize {
    use std::arch::x86_64::*;
    let n = frame.len();
    let half = n / 2;
    let f = frame.as_mut_ptr() as *mut f32;
    let (pa, pb) = (sa.as_ptr() as *const f64, sb.as_ptr() as *const f64);
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let (ga, gb) = (_mm256_set1_pd(ga), _mm256_set1_pd(gb));
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: as in `split_avx`.
        unsafe {
            let a = _mm256_mul_pd(ga, _mm256_loadu_pd(pa.add(2 * k)));
            let b = _mm256_mul_pd(gb, _mm256_loadu_pd(pb.add(2 * k)));
            let bs = _mm256_permute_pd(b, 0b0101);
            // Z[k] = [a.re − b.im, a.im + b.re]; Z[N−k] = [b.im + a.re, b.re + (−a.im)].
            let z = _mm256_addsub_pd(a, bs);
            let w = _mm256_add_pd(bs, _mm256_xor_pd(a, conj));
            // Rounded to nearest, as `as f32` is.
            _mm_storeu_ps(f.add(2 * k), _mm256_cvtpd_ps(z));
            _mm_storeu_ps(
                f.add(2 * (n - k - 1)),
                _mm256_cvtpd_ps(_mm256_permute2f128_pd(w, w, 0x01)),
            );
        }
        k += 2;
    }
    k
}

/// The inverse of [`analyse_ring_pair`]'s transform: the spectra `A` and `B` of two real
/// signals (`N/2 + 1` bins each; the imaginary parts of their DC and Nyquist bins dropped, the
/// projection onto real signals), each scaled by its [`pair_scale`], into
/// `pair.frame = N·(g_a·a + i·g_b·b)` with one inverse complex FFT of length `N`
/// (unnormalised, as realfft's inverse). Returns `[1/g_a, 1/g_b]`, the factors that
/// [`overlap_add_pair`] scales back by (0 for a silent spectrum), or `None` if the lengths are
/// wrong. No allocation.
pub(super) fn synthesise_pair(
    spectra: [&[Complex<f64>]; 2],
    pair: &mut PairFft,
) -> Option<[f64; 2]> {
    let PairFft {
        inverse: ifft,
        frame,
        scratch,
        ..
    } = pair;
    let n = frame.len();
    let [sa, sb] = spectra;
    let half = n / 2;
    if scratch.len() < ifft.get_inplace_scratch_len()
        || ifft.len() != n
        || sa.len() != half + 1
        || sb.len() != half + 1
    {
        return None;
    }
    let ((ga, inv_a), (gb, inv_b)) = (
        pair_scale(energy_c64(sa), sa.len()),
        pair_scale(energy_c64(sb), sb.len()),
    );
    frame[0] = Complex::new((sa[0].re * ga) as FftFloat, (sb[0].re * gb) as FftFloat);
    frame[half] = Complex::new(
        (sa[half].re * ga) as FftFloat,
        (sb[half].re * gb) as FftFloat,
    );
    // Z[k] = A[k] + i·B[k], Z[N − k] = conj A[k] + i·conj B[k]; two bins at a time in AVX
    // lanes where the CPU has it (the same operations, so the same bits).
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the lengths were checked above.
        k = unsafe { merge_avx(sa, sb, frame, ga, gb) };
    }
    for k in k..half {
        let (a, b) = (sa[k].scale(ga), sb[k].scale(gb));
        frame[k] = Complex::new((a.re - b.im) as FftFloat, (a.im + b.re) as FftFloat);
        frame[n - k] = Complex::new((a.re + b.im) as FftFloat, (b.re - a.im) as FftFloat);
    }
    ifft.process_with_scratch(frame, scratch);
    Some([inv_a, inv_b])
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::framing::Stft;

    /// Fed the same signal in the same (odd) block sizes, the analysis's frames are the main
    /// STFT's, bit for bit, at the same boundaries.
    #[test]
    fn frames_match_the_main_stft() {
        // Three channels: a pair and an odd one.
        let (n_fft, ch) = (256, 3);
        let mut stft = Stft::new(n_fft, ch).unwrap();
        let mut ana = StftAnalysis::new(n_fft, ch).unwrap();
        let signal: Vec<Vec<f32>> = (0..ch)
            .map(|c| {
                (0..3000)
                    .map(|t| ((t * (7 + c) % 97) as f32 / 48.0 - 1.0) * 0.3)
                    .collect()
            })
            .collect();
        let mut t0 = 0;
        let mut frames = 0;
        for len in [1usize, 63, 64, 200, 17, 1000, 1655].iter().cycle() {
            let t1 = (t0 + len).min(3000);
            let key: Vec<&[f32]> = signal.iter().map(|s| &s[..]).collect();
            let mut main: Vec<Vec<f32>> = signal.iter().map(|s| s[t0..t1].to_vec()).collect();
            let mut bufs: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[..]).collect();
            let mut at = t0;
            stft.process_in_place(&mut bufs, |frame| {
                assert!(ana.feed_to_frame(AnalysisInput::Signal(&key), &mut at, t1));
                assert_eq!(frame.as_slice(), ana.spectra());
                frames += 1;
            })
            .unwrap();
            assert!(!ana.feed_to_frame(AnalysisInput::Signal(&key), &mut at, t1));
            assert_eq!(at, t1);
            t0 = t1;
            if t0 == 3000 {
                break;
            }
        }
        assert_eq!(frames, 3000 / (n_fft / HOP_DIVISOR));
    }

    /// Skipping keeps the hop phase: after a skip the next boundary is where the main
    /// STFT's is.
    #[test]
    fn skip_keeps_the_hop_phase() {
        let mut ana = StftAnalysis::new(256, 1).unwrap();
        ana.skip(100);
        let zeros = [0.0f32; 64];
        let sig: [&[f32]; 1] = [&zeros];
        let mut at = 0;
        assert!(!ana.feed_to_frame(AnalysisInput::Signal(&sig), &mut at, 27));
        assert!(ana.feed_to_frame(AnalysisInput::Signal(&sig), &mut at, 64));
        assert_eq!(at, 28);
    }

    /// The vectorised windowing and overlap-add give the scalar formulas' bits exactly, for
    /// lengths around the vector width (remainders included) and scales of either size (and
    /// the silent channel's 0).
    #[test]
    fn pair_windowing_and_overlap_add_are_the_scalar_formulas() {
        for (g, inv) in [([1.0, 1.0], [1.0, 1.0]), ([0.25, 8.0], [4.0, 0.0])] {
            for len in [0, 1, 3, 4, 5, 8, 13, 64, 257] {
                let a: Vec<f32> = (0..len)
                    .map(|t| ((t * 37 % 23) as f32 - 11.0) * 0.07)
                    .collect();
                let b: Vec<f32> = (0..len)
                    .map(|t| ((t * 11 % 19) as f32 - 9.0) * 0.11)
                    .collect();
                let w: Vec<f64> = (0..len).map(|t| (t as f64 * 0.3).sin() + 0.1).collect();
                let mut frame = vec![Complex::new(f32::NAN, f32::NAN); len];
                window_pair(&mut frame, &a, &b, &w, g);
                for t in 0..len {
                    let want = Complex::new(
                        (f64::from(a[t]) * (w[t] * g[0])) as f32,
                        (f64::from(b[t]) * (w[t] * g[1])) as f32,
                    );
                    assert_eq!(frame[t], want, "window, len {len}, t {t}");
                }
                let z: Vec<Complex<f32>> = (0..len)
                    .map(|t| Complex::new((t as f32 * 0.7).cos(), (t as f32 * 1.3).sin()))
                    .collect();
                let (mut acc_a, mut acc_b): (Vec<f64>, Vec<f64>) = (0..len)
                    .map(|t| (t as f64 * 0.01, -(t as f64) * 0.02))
                    .unzip();
                let (want_a, want_b): (Vec<f64>, Vec<f64>) = (0..len)
                    .map(|t| {
                        (
                            acc_a[t] + f64::from(z[t].re) * (w[t] * inv[0]),
                            acc_b[t] + f64::from(z[t].im) * (w[t] * inv[1]),
                        )
                    })
                    .unzip();
                overlap_add_pair(&mut acc_a, &mut acc_b, &z, &w, inv);
                assert_eq!(acc_a, want_a, "overlap-add re, len {len}");
                assert_eq!(acc_b, want_b, "overlap-add im, len {len}");
            }
        }
    }

    /// `pair_scale` is exact (powers of two, `g · 1/g = 1`) and brings every finite positive
    /// energy, subnormal to `f64::MAX`, to between ½ and 2 per value; 0 and non-finite
    /// energies get their fixed answers.
    #[test]
    fn pair_scales_are_exact_powers_of_two_that_normalise() {
        let is_pow2 = |x: f64| x > 0.0 && x.is_finite() && x.to_bits() & ((1 << 52) - 1) == 0;
        for values in [1usize, 4, 513, 1024, 8192] {
            let mut energy = f64::from_bits(1); // the smallest subnormal
            while energy.is_finite() {
                for e in [energy, energy * 1.5, energy * 1.999_999] {
                    let (g, inv) = pair_scale(e, values);
                    assert!(
                        is_pow2(g) && is_pow2(inv) && g * inv == 1.0,
                        "{e:e}: {g} {inv}"
                    );
                    if e >= f64::MIN_POSITIVE {
                        // Per value, in logs (g²·e may not be representable at the extremes).
                        let l = 2.0 * g.log2() + e.log2() - f64::from(values.ilog2());
                        assert!((-1.0..1.0).contains(&l), "{e:e} × {values}: 2^{l}");
                    }
                }
                energy *= 2.0;
            }
            assert_eq!(pair_scale(0.0, values), (1.0, 0.0));
            for bad in [f64::INFINITY, f64::NAN, -1.0] {
                assert_eq!(pair_scale(bad, values), (1.0, 1.0));
            }
        }
    }

    /// The energies are `Σ x²` and `Σ |z|²` to rounding, and the vector and scalar paths agree
    /// bit for bit (the first `head` values by AVX, the rest as on a CPU without it).
    #[test]
    fn energies_are_sums_of_squares_in_the_same_order_on_both_paths() {
        for len in [0usize, 1, 3, 4, 7, 8, 9, 16, 257, 1024] {
            let x: Vec<f32> = (0..len)
                .map(|t| ((t * 29 % 31) as f32 - 15.0) * 0.3)
                .collect();
            let z: Vec<Complex<f64>> = (0..len)
                .map(|t| Complex::new((t as f64 * 0.37).sin(), (t as f64 * 0.11).cos()))
                .collect();
            let naive_x: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            let naive_z: f64 = z.iter().map(|v| v.re * v.re + v.im * v.im).sum();
            let (ex, ez) = (energy_f32(&x), energy_c64(&z));
            assert!((ex - naive_x).abs() <= 1e-14 * naive_x, "f32 len {len}");
            assert!((ez - naive_z).abs() <= 1e-14 * naive_z, "c64 len {len}");
            // The scalar path alone, as the fallback computes it, over the same values.
            let mut acc = [0.0f64; 8];
            for (t, &v) in x.iter().enumerate().take(len / 8 * 8) {
                acc[t % 8] += f64::from(v) * f64::from(v);
            }
            let rest: f64 = x[len / 8 * 8..].iter().map(|&v| f64::from(v).powi(2)).sum();
            assert_eq!(ex, reduce8(acc) + rest, "f32 order, len {len}");
            let mut acc = [0.0f64; 8];
            for (k, v) in z.iter().enumerate().take(len / 4 * 4) {
                acc[2 * (k % 4)] += v.re * v.re;
                acc[2 * (k % 4) + 1] += v.im * v.im;
            }
            let rest: f64 = z[len / 4 * 4..].iter().map(|v| v.norm_sqr()).sum();
            assert_eq!(ez, reduce8(acc) + rest, "c64 order, len {len}");
        }
    }

    /// The naive DFT of `x` in `f64` (twiddles from the exact residue `jk mod n`).
    pub(in crate::framing) fn dft(x: &[f64]) -> Vec<Complex<f64>> {
        let n = x.len();
        (0..n / 2 + 1)
            .map(|k| {
                x.iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let phase = -2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                        Complex::new(v * phase.cos(), v * phase.sin())
                    })
                    .sum()
            })
            .collect()
    }

    /// `n·x`, the unnormalised naive inverse of the `N/2 + 1` bins of a real signal (DC and
    /// Nyquist taken as real, the Hermitian extension for the rest), in `f64`.
    pub(in crate::framing) fn idft(spec: &[Complex<f64>], n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| {
                let mut y = spec[0].re + spec[n / 2].re * if t % 2 == 0 { 1.0 } else { -1.0 };
                for (k, z) in spec.iter().enumerate().take(n / 2).skip(1) {
                    let phase = 2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                    y += 2.0 * (z.re * phase.cos() - z.im * phase.sin());
                }
                y
            })
            .collect()
    }

    /// `‖x̂ − x‖ / ‖x‖`.
    pub(in crate::framing) fn relative_error<T: Copy>(
        got: &[T],
        want: &[T],
        sub_norm: impl Fn(T, T) -> (f64, f64),
    ) -> f64 {
        let (mut err, mut norm) = (0.0, 0.0);
        for (&g, &w) in got.iter().zip(want) {
            let (e, r) = sub_norm(g, w);
            err += e;
            norm += r;
        }
        (err / norm).sqrt()
    }

    /// Two channels through one complex `f32` FFT give each channel's own spectrum — the naive
    /// `f64` DFT of its windowed frame — to `f32` rounding *relative to that channel's level*,
    /// whatever its partner's level (equal, 80 dB and 120 dB apart either way, or silent); and
    /// back through the inverse, each channel's naive inverse DFT likewise. A silent channel is
    /// exactly zero both ways. The bound is of the form Higham proves for a radix-2 FFT
    /// (*Accuracy and Stability of Numerical Algorithms*, Thm. 24.2: `log₂N·η`, `η ≈ 7ε` with
    /// exact-ish twiddles), plus `2ε` for rounding the frame in and the result out: about
    /// −104 dB at `N = 1024`. What is measured is some 25 dB below it; without the per-channel
    /// scaling, the quiet channels fail it by tens of dB.
    #[test]
    fn pair_transforms_are_each_channels_dft_to_f32_rounding() {
        let eps = f64::from(f32::EPSILON) / 2.0;
        for n in [256usize, 1024] {
            let bins = n / 2 + 1;
            let bound = (7.0 * (n as f64).log2() + 2.0) * eps;
            let window = periodic_hann(n);
            let shape = |c: usize, t: usize| {
                ((t * (5 + 2 * c) % 61) as f64 / 30.0 - 1.0) * 0.7 + (t as f64 * 0.01).sin()
            };
            let mut pair = PairFft::new(n);
            for levels in [
                [1.0, 1.0],
                [1.0, 1e-4],
                [1e-6, 1.0],
                [1.0, 1e-6],
                [1.0, 0.0],
                [0.0, 1e-3],
            ] {
                let rings: Vec<Vec<f32>> = (0..2)
                    .map(|c| (0..n).map(|t| (levels[c] * shape(c, t)) as f32).collect())
                    .collect();
                for pos in [0, 77] {
                    let mut paired = vec![Complex::new(f64::NAN, f64::NAN); 2 * bins];
                    let (sa, sb) = paired.split_at_mut(bins);
                    analyse_ring_pair([&rings[0], &rings[1]], pos, &window, &mut pair, [sa, sb]);
                    for c in 0..2 {
                        let got = &paired[c * bins..(c + 1) * bins];
                        if levels[c] == 0.0 {
                            assert!(got.iter().all(|z| *z == Complex::new(0.0, 0.0)));
                            continue;
                        }
                        let frame: Vec<f64> = (0..n)
                            .map(|j| f64::from(rings[c][(pos + j) % n]) * window[j])
                            .collect();
                        let want = dft(&frame);
                        let e =
                            relative_error(got, &want, |g, w| ((g - w).norm_sqr(), w.norm_sqr()));
                        assert!(e < bound, "N={n} {levels:?} pos {pos} channel {c}: {e:e}");
                    }
                    // Back: perturb the spectra (as a whitener would), including DC/Nyquist
                    // imaginary parts, which the inverse drops.
                    for (k, z) in paired.iter_mut().enumerate() {
                        *z *= Complex::new(1.0 + (k % 5) as f64 * 0.1, 0.05 * (k % 3) as f64);
                    }
                    let (sa, sb) = paired.split_at(bins);
                    let inv = synthesise_pair([sa, sb], &mut pair).unwrap();
                    for (c, spec) in [sa, sb].into_iter().enumerate() {
                        let got: Vec<f64> = pair
                            .frame
                            .iter()
                            .map(|z| f64::from(if c == 0 { z.re } else { z.im }) * inv[c])
                            .collect();
                        if levels[c] == 0.0 {
                            assert_eq!(inv[c], 0.0, "a silent spectrum is scaled back by 0");
                            continue;
                        }
                        let want = idft(spec, n);
                        let e = relative_error(&got, &want, |g, w| ((g - w).powi(2), w * w));
                        assert!(
                            e < bound,
                            "inverse N={n} {levels:?} pos {pos} channel {c}: {e:e}"
                        );
                    }
                }
            }
        }
    }
}
