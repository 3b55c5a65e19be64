//! The analysis half of the streaming STFT, for a signal that is only listened to: the key of
//! sidechain learning (docs/DESIGN.md §3.8). Its frames are those of an [`Stft`](super::Stft)
//! of the same size fed the same number of samples — same window, same scaling (white noise of
//! variance σ² gives `E|X[k]|² = σ²`), same hop boundaries — so a band's key statistics and the
//! main input's spectra it whitens describe the same instants.
//!
//! Kept apart from [`Stft`](super::Stft) because it has no synthesis and a different driver:
//! the main STFT calls back at its hop boundaries, and inside that callback the analysis is
//! fed up to the same boundary ([`StftAnalysis::feed_to_frame`]).

use super::stft::{periodic_hann, validate_fft_size, StftError, HOP_DIVISOR, MAX_CHANNELS};
use crate::engine::safety::prefaulted;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
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
    /// Forward real FFT of length `N`.
    forward: Arc<dyn RealToComplex<f64>>,
    /// `a[j] = g·h[j]`: the main STFT's analysis window, so both spectra have one scale.
    window: Vec<f64>,
    /// Last `N` samples per channel (channel-major), a ring indexed by time modulo `N`;
    /// non-finite samples are stored as 0.
    ring: Vec<f32>,
    /// One windowed time-domain frame.
    frame: Vec<f64>,
    /// The latest frame's spectra of every channel (channel-major, `bins` each).
    spectra: Vec<Complex<f64>>,
    /// FFT scratch space.
    scratch: Vec<Complex<f64>>,
    /// Complex FFTs that analyse channels two at a time.
    pair: PairFft,
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
        let forward = RealFftPlanner::<f64>::new().plan_fft_forward(fft_size);
        let scratch = forward.make_scratch_vec();
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
            forward,
            window: hann.iter().map(|h| gain * h).collect(),
            ring: prefaulted(channels * fft_size, 0.0),
            frame: prefaulted(fft_size, 0.0),
            spectra: prefaulted(channels * bins, Complex::new(0.0, 0.0)),
            scratch,
            pair: PairFft::new(fft_size),
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
            &mut self.frame,
            &*self.forward,
            &mut self.scratch,
            &mut self.pair,
            &mut self.spectra[..self.channels * self.bins],
        );
    }
}

/// Every channel's analysis at a hop boundary: pairs of channels through [`analyse_ring_pair`],
/// an odd last one through [`analyse_ring`]. `rings` and `spectra` hold the active channels
/// (channel-major, `N` samples and `N/2 + 1` bins each). Shared by [`Stft`](super::Stft) and
/// [`StftAnalysis`]. No allocation.
#[allow(clippy::too_many_arguments)]
pub(super) fn analyse_channels(
    rings: &[f32],
    pos: usize,
    window: &[f64],
    frame: &mut [f64],
    forward: &dyn RealToComplex<f64>,
    scratch: &mut [Complex<f64>],
    pair: &mut PairFft,
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
        analyse_ring(ring, pos, window, frame, forward, spectrum, scratch);
    }
}

/// One channel's analysis at a hop boundary: the ring read from `pos` onwards (wrapping) is the
/// frame in time order; it is windowed into `frame` and transformed into `spectrum`. Lengths
/// are right by construction, so the FFT cannot fail; if it somehow did, the spectrum is zeroed
/// rather than a stale one reused. Shared by [`Stft`](super::Stft) and its forward half,
/// [`StftAnalysis`]. No allocation.
pub(super) fn analyse_ring(
    ring: &[f32],
    pos: usize,
    window: &[f64],
    frame: &mut [f64],
    forward: &dyn RealToComplex<f64>,
    spectrum: &mut [Complex<f64>],
    scratch: &mut [Complex<f64>],
) {
    let older = ring.len() - pos;
    let (newer_part, older_part) = ring.split_at(pos);
    let (frame_old, frame_new) = frame.split_at_mut(older);
    let (win_old, win_new) = window.split_at(older);
    for ((f, &x), &w) in frame_old.iter_mut().zip(older_part).zip(win_old) {
        *f = f64::from(x) * w;
    }
    for ((f, &x), &w) in frame_new.iter_mut().zip(newer_part).zip(win_new) {
        *f = f64::from(x) * w;
    }
    if forward
        .process_with_scratch(frame, spectrum, scratch)
        .is_err()
    {
        spectrum.fill(Complex::new(0.0, 0.0));
    }
}

/// The complex FFTs of length `N` that transform two channels at once
/// ([`analyse_ring_pair`], [`synthesise_pair`]), with their buffers. Allocated in `new`.
pub(super) struct PairFft {
    /// Forward complex FFT of length `N`.
    pub(super) forward: Arc<dyn Fft<f64>>,
    /// Inverse complex FFT of length `N` (unnormalised).
    pub(super) inverse: Arc<dyn Fft<f64>>,
    /// One frame of the pair, `a + i·b`.
    pub(super) frame: Vec<Complex<f64>>,
    /// In-place scratch for both directions.
    pub(super) scratch: Vec<Complex<f64>>,
}

impl PairFft {
    /// Plan both directions for length `fft_size` and allocate their buffers.
    pub(super) fn new(fft_size: usize) -> Self {
        let mut planner = rustfft::FftPlanner::<f64>::new();
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

/// Two channels' analysis with one complex FFT of length `N` (the "two real transforms for one
/// complex" identity): the windowed frames `a` and `b` go in as `z = a + i·b`, and since `A`
/// and `B` are the spectra of real signals, `A[k] = (Z[k] + conj Z[N−k]) / 2` and
/// `B[k] = (Z[k] − conj Z[N−k]) / (2i)` for the `N/2 + 1` bins kept. One complex FFT costs
/// about what one real FFT and its pre/post-processing do, so a pair costs about half. Lengths
/// are right by construction; if they somehow were not, both spectra are zeroed (as
/// [`analyse_ring`] does). No allocation.
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
    let (frame_old, frame_new) = frame.split_at_mut(older);
    let (win_old, win_new) = window.split_at(older);
    window_pair(frame_old, &ra[pos..], &rb[pos..], win_old);
    window_pair(frame_new, &ra[..pos], &rb[..pos], win_new);
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
        let z = frame[k];
        sa[k] = Complex::new(z.re, 0.0);
        sb[k] = Complex::new(z.im, 0.0);
    }
    // Bins 1..k_vec two at a time in AVX lanes (the same operations, so the same bits), the
    // rest one by one.
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the lengths were checked above.
        k = unsafe { split_avx(frame, sa, sb) };
    }
    for k in k..half {
        let (z, w) = (frame[k], frame[n - k]);
        // A = (z + conj w)/2, B = (z − conj w)/(2i) = −i·(z − conj w)/2.
        sa[k] = Complex::new(0.5 * (z.re + w.re), 0.5 * (z.im - w.im));
        sb[k] = Complex::new(0.5 * (z.im + w.im), 0.5 * (w.re - z.re));
    }
}

/// Two channels windowed into one complex frame, `frame[t] = a[t]·w[t] + i·b[t]·w[t]`, over
/// the shortest of the four lengths; four samples per step in AVX lanes where the CPU has it
/// (the same operations, so the same bits).
fn window_pair(frame: &mut [Complex<f64>], a: &[f32], b: &[f32], w: &[f64]) {
    let len = frame.len().min(a.len()).min(b.len()).min(w.len());
    let (frame, a, b, w) = (&mut frame[..len], &a[..len], &b[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the four slices have the same length.
        t = unsafe { window_pair_avx(frame, a, b, w) };
    }
    for t in t..len {
        frame[t] = Complex::new(f64::from(a[t]) * w[t], f64::from(b[t]) * w[t]);
    }
}

/// [`window_pair`] four samples at a time. Returns the first sample left.
///
/// # Safety
/// The CPU must have AVX; the four slices must have the same length.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn window_pair_avx(frame: &mut [Complex<f64>], a: &[f32], b: &[f32], w: &[f64]) -> usize {
    use std::arch::x86_64::*;
    let len = frame.len();
    let f = frame.as_mut_ptr() as *mut f64;
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice; `frame` holds 2·len f64s.
        unsafe {
            let wv = _mm256_loadu_pd(w.as_ptr().add(t));
            let av = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(a.as_ptr().add(t))), wv);
            let bv = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(b.as_ptr().add(t))), wv);
            // [a0 b0 a2 b2], [a1 b1 a3 b3] → [a0 b0 a1 b1], [a2 b2 a3 b3].
            let (lo, hi) = (_mm256_unpacklo_pd(av, bv), _mm256_unpackhi_pd(av, bv));
            _mm256_storeu_pd(f.add(2 * t), _mm256_permute2f128_pd(lo, hi, 0x20));
            _mm256_storeu_pd(f.add(2 * t + 4), _mm256_permute2f128_pd(lo, hi, 0x31));
        }
        t += 4;
    }
    t
}

/// The overlap-add of a pair's synthesised frame: `a[t] += Re z[t]·w[t]`,
/// `b[t] += Im z[t]·w[t]`, over the shortest of the four lengths; four samples per step in AVX
/// lanes where the CPU has it (the same operations, so the same bits).
pub(super) fn overlap_add_pair(a: &mut [f64], b: &mut [f64], z: &[Complex<f64>], w: &[f64]) {
    let len = a.len().min(b.len()).min(z.len()).min(w.len());
    let (a, b, z, w) = (&mut a[..len], &mut b[..len], &z[..len], &w[..len]);
    let mut t = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the four slices have the same length.
        t = unsafe { overlap_add_pair_avx(a, b, z, w) };
    }
    for t in t..len {
        a[t] += z[t].re * w[t];
        b[t] += z[t].im * w[t];
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
    z: &[Complex<f64>],
    w: &[f64],
) -> usize {
    use std::arch::x86_64::*;
    let len = a.len();
    let zp = z.as_ptr() as *const f64;
    let mut t = 0;
    while t + 4 <= len {
        // SAFETY: t + 4 ≤ len for every slice; `z` holds 2·len f64s.
        unsafe {
            let z0 = _mm256_loadu_pd(zp.add(2 * t));
            let z1 = _mm256_loadu_pd(zp.add(2 * t + 4));
            // [r0 i0 r1 i1], [r2 i2 r3 i3] → [r0 i0 r2 i2], [r1 i1 r3 i3] → [r0..r3], [i0..i3].
            let (lo, hi) = (
                _mm256_permute2f128_pd(z0, z1, 0x20),
                _mm256_permute2f128_pd(z0, z1, 0x31),
            );
            let (re, im) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
            let wv = _mm256_loadu_pd(w.as_ptr().add(t));
            let (pa, pb) = (a.as_mut_ptr().add(t), b.as_mut_ptr().add(t));
            _mm256_storeu_pd(
                pa,
                _mm256_add_pd(_mm256_loadu_pd(pa), _mm256_mul_pd(re, wv)),
            );
            _mm256_storeu_pd(
                pb,
                _mm256_add_pd(_mm256_loadu_pd(pb), _mm256_mul_pd(im, wv)),
            );
        }
        t += 4;
    }
    t
}

/// [`analyse_ring_pair`]'s split for bins `1..` in pairs: `Z[k], Z[k+1]` in one vector, their
/// partners `Z[N−k−1], Z[N−k]` in another, its halves swapped. Returns the first bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` holds `N` values and `sa`, `sb` hold `N/2 + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn split_avx(
    frame: &[Complex<f64>],
    sa: &mut [Complex<f64>],
    sb: &mut [Complex<f64>],
) -> usize {
    use std::arch::x86_64::*;
    let n = frame.len();
    let half = n / 2;
    let f = frame.as_ptr() as *const f64;
    let (pa, pb) = (sa.as_mut_ptr() as *mut f64, sb.as_mut_ptr() as *mut f64);
    // Lanes [re, im, re, im]: xor flips the imaginary parts.
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let h = _mm256_set1_pd(0.5);
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: k + 1 < N/2 < N − k − 1, all within `frame`, `sa` and `sb`.
        unsafe {
            let z = _mm256_loadu_pd(f.add(2 * k));
            let wr = _mm256_loadu_pd(f.add(2 * (n - k - 1)));
            let cw = _mm256_xor_pd(_mm256_permute2f128_pd(wr, wr, 0x01), conj);
            let a = _mm256_mul_pd(h, _mm256_add_pd(z, cw));
            let d = _mm256_sub_pd(z, cw);
            let b = _mm256_mul_pd(h, _mm256_xor_pd(_mm256_permute_pd(d, 0b0101), conj));
            _mm256_storeu_pd(pa.add(2 * k), a);
            _mm256_storeu_pd(pb.add(2 * k), b);
        }
        k += 2;
    }
    k
}

/// [`synthesise_pair`]'s merge for bins `1..` in pairs (see [`split_avx`]). Returns the first
/// bin left.
///
/// # Safety
/// The CPU must have AVX; `frame` holds `N` values and `sa`, `sb` hold `N/2 + 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn merge_avx(sa: &[Complex<f64>], sb: &[Complex<f64>], frame: &mut [Complex<f64>]) -> usize {
    use std::arch::x86_64::*;
    let n = frame.len();
    let half = n / 2;
    let f = frame.as_mut_ptr() as *mut f64;
    let (pa, pb) = (sa.as_ptr() as *const f64, sb.as_ptr() as *const f64);
    let conj = _mm256_set_pd(-0.0, 0.0, -0.0, 0.0);
    let mut k = 1;
    while k + 1 < half {
        // SAFETY: as in `split_avx`.
        unsafe {
            let a = _mm256_loadu_pd(pa.add(2 * k));
            let bs = _mm256_permute_pd(_mm256_loadu_pd(pb.add(2 * k)), 0b0101);
            // Z[k] = [a.re − b.im, a.im + b.re]; Z[N−k] = [b.im + a.re, b.re + (−a.im)].
            let z = _mm256_addsub_pd(a, bs);
            let w = _mm256_add_pd(bs, _mm256_xor_pd(a, conj));
            _mm256_storeu_pd(f.add(2 * k), z);
            _mm256_storeu_pd(f.add(2 * (n - k - 1)), _mm256_permute2f128_pd(w, w, 0x01));
        }
        k += 2;
    }
    k
}

/// The inverse of [`analyse_ring_pair`]'s transform: the spectra `A` and `B` of two real
/// signals (`N/2 + 1` bins each; the imaginary parts of their DC and Nyquist bins dropped, the
/// projection onto real signals) into `pair.frame = N·(a + i·b)`, with one inverse complex FFT
/// of length `N` (unnormalised, as realfft's inverse). `false` if the lengths are wrong. No
/// allocation.
pub(super) fn synthesise_pair(spectra: [&[Complex<f64>]; 2], pair: &mut PairFft) -> bool {
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
        return false;
    }
    frame[0] = Complex::new(sa[0].re, sb[0].re);
    frame[half] = Complex::new(sa[half].re, sb[half].re);
    // Z[k] = A[k] + i·B[k], Z[N − k] = conj A[k] + i·conj B[k]; two bins at a time in AVX
    // lanes where the CPU has it (the same operations, so the same bits).
    let mut k = 1;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX; the lengths were checked above.
        k = unsafe { merge_avx(sa, sb, frame) };
    }
    for k in k..half {
        let (a, b) = (sa[k], sb[k]);
        frame[k] = Complex::new(a.re - b.im, a.im + b.re);
        frame[n - k] = Complex::new(a.re + b.im, b.re - a.im);
    }
    ifft.process_with_scratch(frame, scratch);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::Stft;

    /// Fed the same signal in the same (odd) block sizes, the analysis's frames are the main
    /// STFT's, bit for bit, at the same boundaries.
    #[test]
    fn frames_match_the_main_stft() {
        let (n_fft, ch) = (256, 2);
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
    /// lengths around the vector width (remainders included).
    #[test]
    fn pair_windowing_and_overlap_add_are_the_scalar_formulas() {
        for len in [0, 1, 3, 4, 5, 8, 13, 64, 257] {
            let a: Vec<f32> = (0..len)
                .map(|t| ((t * 37 % 23) as f32 - 11.0) * 0.07)
                .collect();
            let b: Vec<f32> = (0..len)
                .map(|t| ((t * 11 % 19) as f32 - 9.0) * 0.11)
                .collect();
            let w: Vec<f64> = (0..len).map(|t| (t as f64 * 0.3).sin() + 0.1).collect();
            let mut frame = vec![Complex::new(f64::NAN, f64::NAN); len];
            window_pair(&mut frame, &a, &b, &w);
            for t in 0..len {
                let want = Complex::new(f64::from(a[t]) * w[t], f64::from(b[t]) * w[t]);
                assert_eq!(frame[t], want, "window, len {len}, t {t}");
            }
            let z: Vec<Complex<f64>> = (0..len)
                .map(|t| Complex::new((t as f64 * 0.7).cos(), (t as f64 * 1.3).sin()))
                .collect();
            let (mut acc_a, mut acc_b): (Vec<f64>, Vec<f64>) = (0..len)
                .map(|t| (t as f64 * 0.01, -(t as f64) * 0.02))
                .unzip();
            let (want_a, want_b): (Vec<f64>, Vec<f64>) = (0..len)
                .map(|t| (acc_a[t] + z[t].re * w[t], acc_b[t] + z[t].im * w[t]))
                .unzip();
            overlap_add_pair(&mut acc_a, &mut acc_b, &z, &w);
            assert_eq!(acc_a, want_a, "overlap-add re, len {len}");
            assert_eq!(acc_b, want_b, "overlap-add im, len {len}");
        }
    }

    /// Two channels through one complex FFT give each channel's real-FFT spectrum, and back
    /// through one inverse complex FFT each channel's real inverse (the imaginary parts of DC
    /// and Nyquist dropped as the real inverse does), to rounding.
    #[test]
    fn pair_transforms_match_the_real_ones() {
        let n = 256;
        let bins = n / 2 + 1;
        let rings: Vec<Vec<f32>> = (0..2)
            .map(|c| {
                (0..n)
                    .map(|t| ((t * (5 + 2 * c) % 61) as f32 / 30.0 - 1.0) * 0.7)
                    .collect()
            })
            .collect();
        let window: Vec<f64> = periodic_hann(n);
        let forward = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        let inverse = RealFftPlanner::<f64>::new().plan_fft_inverse(n);
        let mut scratch = forward.make_scratch_vec();
        scratch.resize(
            forward.get_scratch_len().max(inverse.get_scratch_len()),
            Complex::new(0.0, 0.0),
        );
        let mut pair = PairFft::new(n);
        for pos in [0, 64, 200] {
            let mut real = vec![vec![Complex::new(0.0, 0.0); bins]; 2];
            let mut frame = vec![0.0; n];
            for (ring, spec) in rings.iter().zip(real.iter_mut()) {
                analyse_ring(
                    ring,
                    pos,
                    &window,
                    &mut frame,
                    &*forward,
                    spec,
                    &mut scratch,
                );
            }
            let mut paired = vec![Complex::new(0.0, 0.0); 2 * bins];
            let (sa, sb) = paired.split_at_mut(bins);
            analyse_ring_pair([&rings[0], &rings[1]], pos, &window, &mut pair, [sa, sb]);
            for c in 0..2 {
                for k in 0..bins {
                    let d = (paired[c * bins + k] - real[c][k]).norm();
                    assert!(d < 1e-12, "channel {c} bin {k}: {d}");
                }
            }
            // Back: perturb the spectra (as a whitener would), including DC/Nyquist imaginary
            // parts, and compare with the real inverse of each.
            for (k, z) in paired.iter_mut().enumerate() {
                *z *= Complex::new(1.0 + (k % 5) as f64 * 0.1, 0.05 * (k % 3) as f64);
            }
            let (sa, sb) = paired.split_at(bins);
            assert!(synthesise_pair([sa, sb], &mut pair));
            for (c, s) in [sa, sb].into_iter().enumerate() {
                let mut spec = s.to_vec();
                spec[0].im = 0.0;
                spec[bins - 1].im = 0.0;
                inverse
                    .process_with_scratch(&mut spec, &mut frame, &mut scratch)
                    .unwrap();
                for (t, (z, x)) in pair.frame.iter().zip(&frame).enumerate() {
                    let y = if c == 0 { z.re } else { z.im };
                    assert!((y - x).abs() < 1e-9, "channel {c} sample {t}");
                }
            }
        }
    }
}
