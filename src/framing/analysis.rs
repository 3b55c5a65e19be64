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

    /// Window and transform the frame ending at the current hop boundary.
    fn analyse(&mut self) {
        let n_fft = self.fft_size;
        let pos = self.pos;
        for (ring, spectrum) in self
            .ring
            .chunks_exact(n_fft)
            .zip(self.spectra.chunks_exact_mut(self.bins))
        {
            analyse_ring(
                ring,
                pos,
                &self.window,
                &mut self.frame,
                &*self.forward,
                spectrum,
                &mut self.scratch,
            );
        }
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
}
