//! Streaming short-time Fourier transform with exact overlap-add resynthesis
//! (docs/DESIGN.md §3, the spectral framing). The grouping of its bins into bands is
//! [`super::bands`].
//!
//! # Why this shape
//!
//! The spectral framing turns `n` audio channels into, per frequency bin, a complex vector of the
//! `n` channels' STFT coefficients; the circuits whiten those vectors and the result has to be
//! turned back into audio, in real time, inside a plugin. So this module:
//!
//! * accepts blocks of any length (hosts send anything from 1 sample to many thousands), frames
//!   every channel in lockstep, and calls back once per completed hop with mutable access to every
//!   channel's spectrum of that frame;
//! * reconstructs *exactly*: with the spectra left untouched the output is the input delayed by
//!   [`Stft::latency_samples`] `= N` samples, to floating-point rounding (the design requires
//!   better than −100 dB of each channel's own level; the transforms of channel pairs run in
//!   `f32`, each channel at its own scale, see [`super::analysis`], and measure about
//!   −140 dB), and *bit for bit* where the callback says it left every frame covering a sample
//!   untouched ([`SpectralFrame::leave_untouched`]): that sample is then copied from the input
//!   ring instead of resynthesised, so a plugin at 0 % wet nulls exactly against its input;
//! * never allocates, locks or panics while processing: every buffer is allocated in
//!   [`Stft::new`].
//!
//! # Windowing and the COLA condition
//!
//! Let `h[j] = ½(1 − cos(2πj/N))`, `j = 0..N`, be the *periodic* Hann window and `H = N/4` the
//! hop. Frame `m` covers input samples `mH − N + 1 ..= mH` (relative to the frame's hop
//! boundary). Analysis multiplies each frame by `a[j] = g·h[j]`, takes the forward real FFT
//! (unnormalised, `X[k] = Σ_j a[j] x[j] e^{−2πijk/N}`), the user modifies `X`, the unnormalised
//! inverse FFT returns `N·(a·x)` for an unmodified spectrum, and synthesis multiplies by `s[j]`
//! and overlap-adds with hop `H`. For an unmodified spectrum, output sample `t` is therefore
//!
//! ```text
//!     y[t] = x[t − L] · N · Σ_m a[j_m] s[j_m],      j_m = position of that sample in frame m,
//! ```
//!
//! and the four `j_m` are the four offsets congruent to `t` modulo `H`. Perfect reconstruction
//! needs `N · Σ_m a[j_m] s[j_m] = 1` for every `t`. With Hann on both sides (`s ∝ h`) this is the
//! **constant-overlap-add (COLA) condition for the squared window**:
//!
//! ```text
//!     Σ_{m=0}^{3} h²[(j + mH) mod N] = 3/2     for every j,
//! ```
//!
//! which holds for the periodic Hann window at hop `N/4`: `h² = ¼(3/2 − 2cos θ + ½cos 2θ)` and
//! summing over the four shifts `θ → θ + mπ/2` cancels both cosines, leaving `4·¼·3/2 = 3/2`.
//! (Plain Hann, `Σ_m h = 2`, is COLA at this hop too, which is why sqrt-Hann would also work; we
//! prefer Hann on both sides because a full Hann *synthesis* window tapers any discontinuity the
//! spectral modification introduces at the frame edges, and a full Hann *analysis* window has
//! much lower side lobes (−31 dB, 18 dB/octave) than sqrt-Hann, so bands leak less into
//! each other.)
//!
//! The synthesis window is computed as `s[j] = a[j] / (N · D[j])` with
//! `D[j] = Σ_m a²[(j + mH) mod N]` evaluated numerically; by the COLA identity `D` is the
//! constant `3g²/2`, so `s` is just a scaled Hann window, but dividing by the numerically summed
//! `D` makes the reconstruction exact to rounding even for the rounding in `h` itself (this is
//! the "window-sum" normalisation of the weighted overlap-add method).
//!
//! The analysis gain is `g = 1/√(Σ_j h²[j]) = 1/√(3N/8)`. It makes the transform
//! power-preserving for white noise: for input of variance σ², every bin has `E|X[k]|² = σ²`.
//! So the reference level and noise floor of docs/DESIGN.md §3.3 and §3.5, which are stated per sample in dBFS,
//! mean the same thing in the spectral framing as in the channels framing, and a
//! unit-variance white input gives the circuits unit-variance vectors, whatever `N` is.
//!
//! # Latency
//!
//! A frame can only be analysed once its newest sample has arrived, and its oldest sample is
//! `N − 1` samples older than that. We overlap-add the inverse frame into the output samples
//! *after* the one being output now, so each input sample comes out exactly `L = N` samples
//! later. That is the latency reported to the host.

use std::fmt;
use std::slice::ChunksExactMut;

use crate::engine::safety::prefaulted;

use super::analysis::{analyse_channels, overlap_add_pair, synthesise_pair, PairFft};
use super::single::{overlap_add_single, synthesise_single, SingleFft};
use num_complex::Complex;

/// Smallest supported FFT (window) size. Below 256 samples the frequency resolution is too
/// coarse for the log-spaced bands to mean much.
pub const MIN_FFT_SIZE: usize = 256;
/// Largest supported FFT (window) size: 8192 samples is ~170 ms at 48 kHz, already a long
/// latency for a plugin.
pub const MAX_FFT_SIZE: usize = 8192;
/// Default FFT (window) size (docs/DESIGN.md §3): ~21 ms at 48 kHz, 47 Hz bins.
pub const DEFAULT_FFT_SIZE: usize = 1024;
/// Most channels an [`Stft`] can frame. Sixteen covers third-order ambisonics and common
/// multichannel layouts, and bounds the memory allocated up front.
pub const MAX_CHANNELS: usize = 16;
/// Default number of log-spaced bands (docs/DESIGN.md §3).
pub const DEFAULT_BANDS: usize = 32;
/// The hop is `fft_size / HOP_DIVISOR`: 75 % overlap, the smallest overlap at which the
/// squared Hann window is COLA (see the module documentation).
pub const HOP_DIVISOR: usize = 4;

/// Why an [`Stft`] or a [`BandLayout`](super::BandLayout) could not be built or driven.
///
/// Every variant carries the offending values so that a message can be shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StftError {
    /// The FFT size must be a power of two (the hop `N/4` must divide `N`, and power-of-two
    /// FFTs are the fast ones).
    #[error("FFT size {0} is not a power of two")]
    NotPowerOfTwo(usize),
    /// The FFT size is outside [`MIN_FFT_SIZE`]`..=`[`MAX_FFT_SIZE`].
    #[error("FFT size {size} is outside the supported range {min}..={max}")]
    SizeOutOfRange {
        /// The requested size.
        size: usize,
        /// [`MIN_FFT_SIZE`].
        min: usize,
        /// [`MAX_FFT_SIZE`].
        max: usize,
    },
    /// At least one channel is needed.
    #[error("the number of channels must be at least 1")]
    ZeroChannels,
    /// More channels were requested than allowed: [`MAX_CHANNELS`] at construction, or the
    /// `max_channels` the [`Stft`] was built with when changing the active channel count.
    #[error("{requested} channels requested but at most {max} are supported")]
    TooManyChannels {
        /// The requested number of channels.
        requested: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// A band layout needs at least one band.
    #[error("the number of bands must be at least 1")]
    ZeroBands,
    /// A band layout needs at least one bin.
    #[error("the number of bins must be at least 1")]
    ZeroBins,
    /// [`Stft::process`] was given a number of input or output channels different from
    /// [`Stft::active_channels`].
    #[error("expected {expected} channels, got {inputs} input and {outputs} output channels")]
    ChannelCountMismatch {
        /// [`Stft::active_channels`].
        expected: usize,
        /// Number of input channel slices given.
        inputs: usize,
        /// Number of output channel slices given.
        outputs: usize,
    },
    /// The channel slices given to [`Stft::process`] do not all have the same length.
    #[error("channel {channel} has {len} samples but channel 0 has {expected}")]
    BlockLengthMismatch {
        /// Index of the first offending channel (inputs first, then outputs, by channel).
        channel: usize,
        /// Its length.
        len: usize,
        /// The length of input channel 0.
        expected: usize,
    },
}

/// Checks an FFT size against the supported sizes.
pub(super) fn validate_fft_size(fft_size: usize) -> Result<(), StftError> {
    if !fft_size.is_power_of_two() {
        return Err(StftError::NotPowerOfTwo(fft_size));
    }
    if !(MIN_FFT_SIZE..=MAX_FFT_SIZE).contains(&fft_size) {
        return Err(StftError::SizeOutOfRange {
            size: fft_size,
            min: MIN_FFT_SIZE,
            max: MAX_FFT_SIZE,
        });
    }
    Ok(())
}

/// Checks a channel count against `1..=max`.
fn validate_channels(channels: usize, max: usize) -> Result<(), StftError> {
    if channels == 0 {
        return Err(StftError::ZeroChannels);
    }
    if channels > max {
        return Err(StftError::TooManyChannels {
            requested: channels,
            max,
        });
    }
    Ok(())
}

/// The complex spectra of all active channels for one frame, handed to the per-frame callback
/// of [`Stft::process`] so that it can modify them in place before resynthesis.
///
/// Storage is channel-major: channel `c`'s `N/2 + 1` bins are contiguous. The circuits need the
/// transposed view (for one bin, the vector across channels); [`SpectralFrame::gather_bin`] and
/// [`SpectralFrame::scatter_bin`] provide it without allocating.
///
/// Bin `k` is frequency `k · sample_rate / N`; bin 0 is DC and bin `N/2` is Nyquist. The
/// spectrum is that of the analysis-windowed frame scaled so that white noise of variance σ² has
/// `E|X[k]|² = σ²` in every bin (see the module documentation). The imaginary parts of the DC
/// and Nyquist bins are discarded before resynthesis: a real signal cannot have them, and
/// dropping them is the orthogonal projection back onto real signals.
pub struct SpectralFrame<'a> {
    /// `channels × bins` coefficients, channel-major.
    data: &'a mut [Complex<f64>],
    /// Number of active channels.
    channels: usize,
    /// Number of bins per channel, `N/2 + 1`.
    bins: usize,
    /// Frames completed since construction or [`Stft::reset`] before this one.
    index: u64,
    /// Whether the callback declared the spectra unmodified ([`SpectralFrame::leave_untouched`]).
    untouched: bool,
}

impl<'a> SpectralFrame<'a> {
    /// Number of active channels in this frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Number of bins per channel, `N/2 + 1` (DC to Nyquist inclusive).
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Zero-based index of this frame since construction or the last [`Stft::reset`]; frames are
    /// `N/4` samples apart, so this is the frame clock the learning rules count in.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Channel `ch`'s spectrum.
    ///
    /// # Panics
    /// If `ch >= self.channels()`, like slice indexing.
    pub fn channel(&self, ch: usize) -> &[Complex<f64>] {
        assert!(ch < self.channels, "channel index out of range");
        &self.data[ch * self.bins..(ch + 1) * self.bins]
    }

    /// Channel `ch`'s spectrum, mutable: changes are resynthesised.
    ///
    /// # Panics
    /// If `ch >= self.channels()`, like slice indexing.
    pub fn channel_mut(&mut self, ch: usize) -> &mut [Complex<f64>] {
        assert!(ch < self.channels, "channel index out of range");
        &mut self.data[ch * self.bins..(ch + 1) * self.bins]
    }

    /// Iterator over all channels' spectra, mutable, in channel order.
    pub fn channels_mut(&mut self) -> ChunksExactMut<'_, Complex<f64>> {
        self.data.chunks_exact_mut(self.bins)
    }

    /// All coefficients, channel-major (`channels × bins`).
    pub fn as_slice(&self) -> &[Complex<f64>] {
        self.data
    }

    /// All coefficients, channel-major (`channels × bins`), mutable.
    pub fn as_mut_slice(&mut self) -> &mut [Complex<f64>] {
        self.data
    }

    /// Declares that the callback leaves this frame's spectra exactly as analysed. Where the
    /// [`HOP_DIVISOR`] frames covering an output sample were all declared so, the sample is the
    /// input sample `N` earlier copied bit for bit, not its resynthesis (which differs from it
    /// by rounding, about −140 dB). Changes made to a frame after this call are still
    /// resynthesised, but are not heard in the samples that every covering frame left
    /// untouched: declare only what is true.
    pub fn leave_untouched(&mut self) {
        self.untouched = true;
    }

    /// Copies bin `bin` of every channel into `out` (`out[c]` = channel `c`): the vector `x` a
    /// spectral circuit sees for that bin.
    ///
    /// # Panics
    /// If `bin >= self.bins()` or `out.len() != self.channels()`.
    pub fn gather_bin(&self, bin: usize, out: &mut [Complex<f64>]) {
        assert!(bin < self.bins, "bin index out of range");
        assert_eq!(out.len(), self.channels, "one value per channel");
        for (o, ch) in out.iter_mut().zip(self.data.chunks_exact(self.bins)) {
            *o = ch[bin];
        }
    }

    /// Writes `values[c]` into bin `bin` of channel `c`: the inverse of
    /// [`SpectralFrame::gather_bin`], for the circuit's response `r`.
    ///
    /// # Panics
    /// If `bin >= self.bins()` or `values.len() != self.channels()`.
    pub fn scatter_bin(&mut self, bin: usize, values: &[Complex<f64>]) {
        assert!(bin < self.bins, "bin index out of range");
        assert_eq!(values.len(), self.channels, "one value per channel");
        for (v, ch) in values.iter().zip(self.data.chunks_exact_mut(self.bins)) {
            ch[bin] = *v;
        }
    }
}

/// Streaming STFT analysis → per-frame callback → inverse STFT with weighted overlap-add, for
/// up to [`MAX_CHANNELS`] channels framed in lockstep.
///
/// Window `N` = [`Stft::fft_size`], hop `N/4`, periodic Hann analysis and synthesis windows
/// normalised for exact reconstruction (the math is in the module documentation). Latency is
/// exactly `N` samples.
///
/// All memory is allocated in [`Stft::new`]; [`Stft::process`], [`Stft::process_in_place`],
/// [`Stft::reset`] and [`Stft::set_active_channels`] never allocate, lock or panic (the
/// per-frame callback is the caller's code and is only as real-time safe as the caller makes
/// it).
pub struct Stft {
    /// `N`, the window and FFT length.
    fft_size: usize,
    /// `N/4`, samples between frames.
    hop: usize,
    /// `N/2 + 1`, complex bins per channel.
    bins: usize,
    /// Channels allocated for.
    max_channels: usize,
    /// Channels currently framed (`1..=max_channels`).
    active_channels: usize,
    /// `a[j] = g·h[j]`, the scaled periodic Hann analysis window.
    analysis_window: Vec<f64>,
    /// `s[j] = a[j] / (N·D[j])`, the synthesis window including the `1/N` of the inverse FFT.
    synthesis_window: Vec<f64>,
    /// Last `N` input samples per channel (`max_channels × N`, channel-major), a ring indexed by
    /// absolute sample time modulo `N`. Kept in `f32`, the input format, which is lossless.
    input_ring: Vec<f32>,
    /// Overlap-add accumulator per channel (`max_channels × N`), a ring indexed by absolute
    /// output time modulo `N`; a slot is read out and cleared when its time comes. `f64` so that
    /// the four overlapping contributions add without rounding to `f32` first.
    output_ring: Vec<f64>,
    /// Spectra of all channels (`max_channels × bins`, channel-major).
    spectra: Vec<Complex<f64>>,
    /// Complex FFTs that transform channels two at a time (planned once; calling them does not
    /// allocate).
    pair: PairFft,
    /// The transforms of an odd last channel (its real frame as a complex one of half the length).
    single: SingleFft,
    /// Ring index of the next sample, `t mod N`. Always `≡ fill (mod hop)`, so a hop's worth of
    /// samples never wraps around the ring.
    pos: usize,
    /// Samples received since the last frame, `0..hop`.
    fill: usize,
    /// Frames completed since construction or reset.
    frames: u64,
    /// How many of the most recent frames the callback left untouched in a row, saturating at
    /// [`HOP_DIVISOR`]: the frames covering the samples output until the next frame. At that
    /// count the output is copied from the input ring. The silent history before the first
    /// frame counts as untouched.
    untouched_run: usize,
    /// Non-finite input samples seen (and replaced by 0) since construction or reset.
    non_finite: u64,
}

impl fmt::Debug for Stft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stft")
            .field("fft_size", &self.fft_size)
            .field("hop", &self.hop)
            .field("bins", &self.bins)
            .field("max_channels", &self.max_channels)
            .field("active_channels", &self.active_channels)
            .field("frames", &self.frames)
            .field("non_finite", &self.non_finite)
            .finish_non_exhaustive()
    }
}

impl Stft {
    /// Builds an STFT with window/FFT size `fft_size` (a power of two in
    /// [`MIN_FFT_SIZE`]`..=`[`MAX_FFT_SIZE`]) able to frame up to `max_channels`
    /// (`1..=`[`MAX_CHANNELS`]) channels; all `max_channels` are active initially.
    ///
    /// This is where everything is allocated (FFT plans, windows, rings, spectra, scratch), so
    /// call it off the audio thread.
    pub fn new(fft_size: usize, max_channels: usize) -> Result<Self, StftError> {
        validate_fft_size(fft_size)?;
        validate_channels(max_channels, MAX_CHANNELS)?;
        let hop = fft_size / HOP_DIVISOR;
        let bins = fft_size / 2 + 1;

        let (analysis_window, synthesis_window) = windows(fft_size, hop);

        Ok(Self {
            fft_size,
            hop,
            bins,
            max_channels,
            active_channels: max_channels,
            analysis_window,
            synthesis_window,
            input_ring: prefaulted(max_channels * fft_size, 0.0),
            output_ring: prefaulted(max_channels * fft_size, 0.0),
            spectra: prefaulted(max_channels * bins, Complex::new(0.0, 0.0)),
            pair: PairFft::new(fft_size),
            single: SingleFft::new(fft_size),
            pos: 0,
            fill: 0,
            frames: 0,
            untouched_run: HOP_DIVISOR,
            non_finite: 0,
        })
    }

    /// `N`, the window and FFT length.
    pub fn fft_size(&self) -> usize {
        self.fft_size
    }

    /// `N/4`: samples between successive frames, i.e. between callbacks.
    pub fn hop_size(&self) -> usize {
        self.hop
    }

    /// `N/2 + 1`: complex bins per channel in each frame.
    pub fn num_bins(&self) -> usize {
        self.bins
    }

    /// Channels allocated for at construction.
    pub fn max_channels(&self) -> usize {
        self.max_channels
    }

    /// Channels currently framed; [`Stft::process`] expects exactly this many.
    pub fn active_channels(&self) -> usize {
        self.active_channels
    }

    /// Latency in samples, `N`: with unmodified spectra the output is the input delayed by
    /// exactly this many samples. Report it to the host for delay compensation.
    pub fn latency_samples(&self) -> usize {
        self.fft_size
    }

    /// Frames completed (callbacks made) since construction or the last [`Stft::reset`].
    pub fn frames_processed(&self) -> u64 {
        self.frames
    }

    /// Non-finite (NaN or infinite) input samples seen since construction or the last
    /// [`Stft::reset`]. They are replaced by 0 on input (docs/DESIGN.md §7): one NaN would
    /// otherwise poison a whole frame of every bin of its channel, and through the circuits the
    /// state.
    pub fn non_finite_inputs(&self) -> u64 {
        self.non_finite
    }

    /// Changes the number of framed channels to `channels` (`1..=max_channels`) without
    /// allocating, keeping the stream position so that all channels stay in lockstep.
    ///
    /// Channels that become active start from silence (their history is cleared), so their
    /// output is still exactly their input delayed by [`Stft::latency_samples`]; channels that
    /// stay active are not disturbed.
    pub fn set_active_channels(&mut self, channels: usize) -> Result<(), StftError> {
        validate_channels(channels, self.max_channels)?;
        if channels > self.active_channels {
            let span = self.active_channels * self.fft_size..channels * self.fft_size;
            self.input_ring[span.clone()].fill(0.0);
            self.output_ring[span].fill(0.0);
        }
        self.active_channels = channels;
        Ok(())
    }

    /// Returns to the state just after construction (silent history, frame count 0), keeping the
    /// active channel count. Does not allocate.
    pub fn reset(&mut self) {
        self.input_ring.fill(0.0);
        self.output_ring.fill(0.0);
        self.spectra.fill(Complex::new(0.0, 0.0));
        self.pos = 0;
        self.fill = 0;
        self.frames = 0;
        self.untouched_run = HOP_DIVISOR;
        self.non_finite = 0;
    }

    /// Streams one block: reads `input`, writes the same number of samples to `output`, and calls
    /// `on_frame` once for every hop completed during the block (zero or more times), with all
    /// active channels' spectra of that frame to modify in place.
    ///
    /// `input` and `output` must each have [`Stft::active_channels`] slices, all of the same
    /// length (any length, including 0). On a mismatch an error is returned and no state
    /// changes. Never allocates, locks or panics.
    pub fn process<F>(
        &mut self,
        input: &[&[f32]],
        output: &mut [&mut [f32]],
        on_frame: F,
    ) -> Result<(), StftError>
    where
        F: FnMut(&mut SpectralFrame<'_>),
    {
        let expected = self.active_channels;
        if input.len() != expected || output.len() != expected {
            return Err(StftError::ChannelCountMismatch {
                expected,
                inputs: input.len(),
                outputs: output.len(),
            });
        }
        let len = input.first().map_or(0, |c| c.len());
        for (channel, c) in input.iter().enumerate() {
            if c.len() != len {
                return Err(StftError::BlockLengthMismatch {
                    channel,
                    len: c.len(),
                    expected: len,
                });
            }
        }
        for (channel, c) in output.iter().enumerate() {
            if c.len() != len {
                return Err(StftError::BlockLengthMismatch {
                    channel,
                    len: c.len(),
                    expected: len,
                });
            }
        }
        // The in-place core reads each chunk of a channel before writing it, so copying the
        // input into the output first and processing that in place is the same computation.
        for (o, i) in output.iter_mut().zip(input) {
            o.copy_from_slice(i);
        }
        self.run(output, len, on_frame);
        Ok(())
    }

    /// Like [`Stft::process`], but the output overwrites the input in `buffers` (the layout
    /// plugin hosts usually provide). Same requirements and guarantees.
    pub fn process_in_place<F>(
        &mut self,
        buffers: &mut [&mut [f32]],
        on_frame: F,
    ) -> Result<(), StftError>
    where
        F: FnMut(&mut SpectralFrame<'_>),
    {
        let expected = self.active_channels;
        if buffers.len() != expected {
            return Err(StftError::ChannelCountMismatch {
                expected,
                inputs: buffers.len(),
                outputs: buffers.len(),
            });
        }
        let len = buffers.first().map_or(0, |c| c.len());
        for (channel, c) in buffers.iter().enumerate() {
            if c.len() != len {
                return Err(StftError::BlockLengthMismatch {
                    channel,
                    len: c.len(),
                    expected: len,
                });
            }
        }
        self.run(buffers, len, on_frame);
        Ok(())
    }

    /// The streaming core, on validated buffers (`active_channels` slices of `len` samples).
    ///
    /// Works in chunks that end at hop boundaries. Because `N` is a multiple of the hop and `pos`
    /// advances in step with `fill`, a chunk occupies a contiguous span `pos..pos + n` of both
    /// rings. Per sample `t` (ring slot `t mod N`): the output is the accumulated slot (complete:
    /// every frame containing input `t − N` finished at or before time `t − 1`) — or, if those
    /// frames, the last [`HOP_DIVISOR`] completed, were all left untouched, the input `t − N`
    /// still stored in the slot — the slot is cleared for reuse at time `t + N`, and the input
    /// is stored in the same slot.
    fn run<F>(&mut self, buffers: &mut [&mut [f32]], len: usize, mut on_frame: F)
    where
        F: FnMut(&mut SpectralFrame<'_>),
    {
        let n_fft = self.fft_size;
        let mut done = 0;
        while done < len {
            let n = (self.hop - self.fill).min(len - done);
            let span = self.pos..self.pos + n;
            let mut non_finite = 0u32;
            // Every frame covering this chunk's output samples was left untouched: each is its
            // input sample `N` earlier, still in the slot it is about to leave.
            let exact = self.untouched_run >= HOP_DIVISOR;
            // Branch-free, so that the loops below vectorise.
            let mut sanitise = |x: f32| {
                let finite = x.is_finite();
                non_finite += u32::from(!finite);
                if finite {
                    x
                } else {
                    0.0
                }
            };
            for ((buf, in_ring), out_ring) in buffers
                .iter_mut()
                .zip(self.input_ring.chunks_exact_mut(n_fft))
                .zip(self.output_ring.chunks_exact_mut(n_fft))
            {
                let Some(buf) = buf.get_mut(done..done + n) else {
                    return;
                };
                let (Some(in_ring), Some(out_ring)) = (
                    in_ring.get_mut(span.clone()),
                    out_ring.get_mut(span.clone()),
                ) else {
                    return;
                };
                if exact {
                    for ((sample, stored), acc) in buf.iter_mut().zip(in_ring).zip(out_ring) {
                        let x = *sample;
                        *sample = *stored;
                        *stored = sanitise(x);
                        *acc = 0.0;
                    }
                } else {
                    for ((sample, stored), acc) in buf.iter_mut().zip(in_ring).zip(out_ring) {
                        let x = *sample;
                        *stored = sanitise(x);
                        *sample = *acc as f32;
                        *acc = 0.0;
                    }
                }
            }
            self.non_finite += u64::from(non_finite);
            done += n;
            self.fill += n;
            self.pos += n;
            if self.pos == n_fft {
                self.pos = 0;
            }
            if self.fill == self.hop {
                self.fill = 0;
                self.frame_complete(&mut on_frame);
            }
        }
    }

    /// Analyses the frame ending at the current hop boundary, lets `on_frame` modify it,
    /// resynthesises and overlap-adds it.
    ///
    /// At a hop boundary `pos = (t + 1) mod N` where `t` is the newest sample, so the ring read
    /// from `pos` onwards (wrapping) is the frame in time order, and the inverse frame's sample
    /// `j`, which belongs to output time `t + 1 + j`, goes to output slot `(pos + j) mod N`.
    fn frame_complete<F>(&mut self, on_frame: &mut F)
    where
        F: FnMut(&mut SpectralFrame<'_>),
    {
        let n_fft = self.fft_size;
        let bins = self.bins;
        let channels = self.active_channels;
        let pos = self.pos;
        let older = n_fft - pos;

        // Analysis.
        analyse_channels(
            &self.input_ring[..channels * n_fft],
            pos,
            &self.analysis_window,
            &mut self.pair,
            &mut self.single,
            &mut self.spectra[..channels * bins],
        );

        let mut frame = SpectralFrame {
            data: &mut self.spectra[..channels * bins],
            channels,
            bins,
            index: self.frames,
            untouched: false,
        };
        on_frame(&mut frame);
        self.untouched_run = if frame.untouched {
            (self.untouched_run + 1).min(HOP_DIVISOR)
        } else {
            0
        };

        // Synthesis and overlap-add: pairs of channels through one complex inverse FFT, an odd
        // last channel through the real one.
        let (win_first, win_wrapped) = self.synthesis_window.split_at(older);
        let mut spec_pairs = self.spectra[..channels * bins].chunks_exact_mut(2 * bins);
        let mut acc_pairs = self.output_ring[..channels * n_fft].chunks_exact_mut(2 * n_fft);
        for (sp, ap) in (&mut spec_pairs).zip(&mut acc_pairs) {
            let (sa, sb) = sp.split_at(bins);
            let pair = &mut self.pair;
            let Some(inv) = synthesise_pair([sa, sb], pair) else {
                continue;
            };
            let (acc_a, acc_b) = ap.split_at_mut(n_fft);
            let (a_wrapped, a_first) = acc_a.split_at_mut(pos);
            let (b_wrapped, b_first) = acc_b.split_at_mut(pos);
            let (frame_first, frame_wrapped) = pair.frame.split_at(older);
            overlap_add_pair(a_first, b_first, frame_first, win_first, inv);
            overlap_add_pair(a_wrapped, b_wrapped, frame_wrapped, win_wrapped, inv);
        }
        let (spectrum, acc) = (spec_pairs.into_remainder(), acc_pairs.into_remainder());
        // `synthesise_single` ignores any imaginary part the callback put on DC or Nyquist.
        if acc.len() == n_fft {
            if let Some(inv) = synthesise_single(spectrum, &mut self.single) {
                let (acc_wrapped, acc_first) = acc.split_at_mut(pos);
                let (frame_first, frame_wrapped) = self.single.samples().split_at(older);
                overlap_add_single(acc_first, frame_first, win_first, inv);
                overlap_add_single(acc_wrapped, frame_wrapped, win_wrapped, inv);
            }
        }
        self.frames += 1;
    }
}

/// The periodic Hann window `h[j] = ½(1 − cos(2πj/N))`, `j = 0..N`.
///
/// Periodic (denominator `N`, not `N − 1`) because that is the one whose shifted squares sum to
/// a constant at hop `N/4` (COLA); the symmetric one only approximately does.
pub fn periodic_hann(fft_size: usize) -> Vec<f64> {
    (0..fft_size)
        .map(|j| 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j as f64 / fft_size as f64).cos()))
        .collect()
}

/// The analysis and synthesis windows `(a, s)` for size `N` and hop `H`; see the module
/// documentation for the derivation.
fn windows(fft_size: usize, hop: usize) -> (Vec<f64>, Vec<f64>) {
    let hann = periodic_hann(fft_size);
    // g = 1/sqrt(Σ h²): unit bin power for unit-variance white noise.
    let energy: f64 = hann.iter().map(|h| h * h).sum();
    let gain = 1.0 / energy.sqrt();
    let analysis: Vec<f64> = hann.iter().map(|h| gain * h).collect();
    // s[j] = a[j] / (N · Σ_m a²[(j + mH) mod N]); the sum depends only on j mod H.
    let overlaps = fft_size / hop;
    let synthesis = (0..fft_size)
        .map(|j| {
            let d: f64 = (0..overlaps)
                .map(|m| {
                    let a = analysis[(j + m * hop) % fft_size];
                    a * a
                })
                .sum();
            analysis[j] / (fft_size as f64 * d)
        })
        .collect();
    (analysis, synthesis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The COLA identity the synthesis window relies on: the squared periodic Hann window,
    /// shifted by multiples of N/4, sums to 3/2 everywhere. If it did not, the synthesis window
    /// (a / (N·D)) would not be a scaled Hann window.
    #[test]
    fn squared_hann_is_cola_at_quarter_hop() {
        for n in [256, 1024, 8192] {
            let h = periodic_hann(n);
            let hop = n / HOP_DIVISOR;
            for j in 0..n {
                let d: f64 = (0..HOP_DIVISOR).map(|m| h[(j + m * hop) % n].powi(2)).sum();
                assert!((d - 1.5).abs() < 1e-12, "n={n} j={j} d={d}");
            }
        }
    }

    /// Synthesis window = analysis window × constant, and the constant undoes N, g² and 3/2.
    #[test]
    fn synthesis_window_is_scaled_hann() {
        for n in [256, 1024, 8192] {
            let (a, s) = windows(n, n / HOP_DIVISOR);
            let g2: f64 = 1.0 / periodic_hann(n).iter().map(|h| h * h).sum::<f64>();
            let expected = 1.0 / (n as f64 * 1.5 * g2);
            for j in 1..n {
                let ratio = s[j] / a[j];
                assert!((ratio - expected).abs() <= 1e-12 * expected, "n={n} j={j}");
            }
        }
    }

    /// Power preservation: the analysis window has unit energy, so white noise of variance σ²
    /// has E|X[k]|² = σ² Σ a² = σ².
    #[test]
    fn analysis_window_has_unit_energy() {
        for n in [256, 1024, 8192] {
            let (a, _) = windows(n, n / HOP_DIVISOR);
            let e: f64 = a.iter().map(|x| x * x).sum();
            assert!((e - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn sizes_are_validated() {
        assert_eq!(
            Stft::new(1000, 1).unwrap_err(),
            StftError::NotPowerOfTwo(1000)
        );
        assert!(matches!(
            Stft::new(128, 1),
            Err(StftError::SizeOutOfRange { size: 128, .. })
        ));
        assert_eq!(Stft::new(1024, 0).unwrap_err(), StftError::ZeroChannels);
        assert!(matches!(
            Stft::new(1024, 17),
            Err(StftError::TooManyChannels {
                requested: 17,
                max: 16
            })
        ));
    }

    #[test]
    fn stft_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Stft>();
    }
}
