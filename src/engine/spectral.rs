//! The spectral framing (docs/DESIGN.md §3): a Hann-windowed STFT (hop N/4, exact
//! overlap-add), its bins grouped into log-spaced bands, and one complex race per band over
//! the channels. Each band learns from the mean outer product over its bins, once per learning
//! block of at least `n` input vectors (bins × frames): a band of `len ≥ n` bins every frame, a
//! narrower one every `⌈n / len⌉` frames from the mean over those frames (docs/DESIGN.md §3.2).
//! Latency N.

use super::kernels::{band_outer, mix_band, respond_band};
use super::key::Key;
use super::mix::BlockContext;
use super::race::{Race, RaceSettings};
use super::safety::prefaulted;
use super::{EngineError, MAX_CHANNELS};
use crate::framing::{AnalysisInput, BandLayout, Stft, StftAnalysis};
use nalgebra::{Complex, DMatrix};

/// The race settings of a band that learns every `frames` frames: its block spans `frames`
/// times the time of one frame, and its error estimate's smoothing per update likewise.
pub(super) fn band_settings(settings: &RaceSettings, frames: usize) -> RaceSettings {
    let k = frames as f64;
    RaceSettings {
        eta: settings.eta * k,
        error_alpha: 1.0 - (1.0 - settings.error_alpha).powf(k),
        ..*settings
    }
}

/// Spectral framing: an STFT and one complex race per band.
pub(super) struct SpectralCore {
    /// The streaming STFT of every channel.
    pub(super) stft: Stft,
    /// The sidechain key's analysis, in step with `stft` (fed the same number of samples), so
    /// each key frame describes the main frame it whitens (docs/DESIGN.md §3.7). Allocated
    /// always, so that turning sidechain learning on needs no new engine.
    key_stft: StftAnalysis,
    /// Which bins form each band.
    layout: BandLayout,
    /// One race per band.
    pub(super) races: Vec<Race<Complex<f64>>>,
    /// The current band's mean outer product of the scaled spectra.
    outer: DMatrix<Complex<f64>>,
    /// Frames per learning update of each band: `⌈n / bins⌉`, so that every update sees at
    /// least `n` vectors. A band of fewer bins than channels has a rank-deficient outer product
    /// in any one frame, whose loud direction jumps from frame to frame into the null space of
    /// the last: learning from it frame by frame would make `R = P X̂ P` jump by `λ/ε²` every
    /// frame (docs/DESIGN.md §3.2, BENCHMARKS.md §4).
    frames_per_update: Vec<usize>,
    /// Sum of the outer products of a narrow band's frames since its last update (empty for
    /// bands that learn every frame).
    pending: Vec<DMatrix<Complex<f64>>>,
    /// Frames summed in `pending`.
    pending_frames: Vec<usize>,
    /// Mean power per channel of each band in the current frame (the change detector's input).
    band_power: Vec<f64>,
    /// Responses of the heard whitener for one band, channel-major (n × widest band).
    r: Vec<Complex<f64>>,
    /// Responses of the whitener fading out, same layout.
    r_from: Vec<Complex<f64>>,
}

impl SpectralCore {
    /// Allocate the STFT of size `fft_size` for `channels`, `bands` log-spaced bands and their
    /// races.
    pub(super) fn new(
        channels: usize,
        fft_size: usize,
        bands: usize,
        settings: &RaceSettings,
    ) -> Result<Self, EngineError> {
        let mut stft = Stft::new(fft_size, channels)?;
        stft.set_active_channels(channels)?;
        let key_stft = StftAnalysis::new(fft_size, channels)?;
        let layout = BandLayout::for_fft_size(fft_size, bands)?;
        let widest = layout.bands().iter().map(|b| b.len()).max().unwrap_or(1);
        let frames_per_update: Vec<usize> = layout
            .bands()
            .iter()
            .map(|b| channels.div_ceil(b.len().max(1)))
            .collect();
        let races = frames_per_update
            .iter()
            .map(|&k| Race::new(channels, &band_settings(settings, k)))
            .collect::<Result<Vec<_>, _>>()?;
        let pending = frames_per_update
            .iter()
            .map(|&k| {
                let dim = if k > 1 { channels } else { 0 };
                DMatrix::zeros(dim, dim)
            })
            .collect();
        Ok(Self {
            pending,
            pending_frames: vec![0; frames_per_update.len()],
            frames_per_update,
            band_power: vec![0.0; layout.num_bands()],
            stft,
            key_stft,
            layout,
            races,
            outer: DMatrix::zeros(channels, channels),
            r: prefaulted(channels * widest, Complex::new(0.0, 0.0)),
            r_from: prefaulted(channels * widest, Complex::new(0.0, 0.0)),
        })
    }

    /// Forget the signal history: the STFT's, and the narrow bands' partial learning blocks
    /// (as the channels framing drops its partial block).
    pub(super) fn reset_audio(&mut self) {
        self.stft.reset();
        self.key_stft.reset();
        for (acc, count) in self.pending.iter_mut().zip(&mut self.pending_frames) {
            acc.fill(Complex::new(0.0, 0.0));
            *count = 0;
        }
    }

    /// Frames per learning update of band `b` (η per update is this times η per frame).
    pub(super) fn frames_per_update(&self, b: usize) -> usize {
        self.frames_per_update[b]
    }

    /// Band `b`'s share of the bins.
    pub(super) fn band_weight(&self, b: usize) -> f64 {
        self.layout.bands()[b].len() as f64 / self.layout.num_bins() as f64
    }

    /// Number of bands (the change detector's dimension).
    pub(super) fn num_bands(&self) -> usize {
        self.layout.num_bands()
    }

    /// Whiten `buffers[c][start..end]` in place (delayed by the latency) and learn from it —
    /// or from `key`'s frames.
    pub(super) fn process(
        &mut self,
        ctx: &mut BlockContext<'_>,
        buffers: &mut [&mut [f32]],
        key: Key<'_>,
        start: usize,
        end: usize,
    ) {
        let n = self.outer.nrows();
        let frame_dt = self.stft.hop_size() as f64 / ctx.sample_rate;
        let Self {
            stft,
            key_stft,
            layout,
            races,
            outer,
            band_power,
            r,
            r_from,
            frames_per_update,
            pending,
            pending_frames,
        } = self;
        let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
        for (slot, b) in chunk.iter_mut().zip(buffers.iter_mut()) {
            *slot = &mut b[start..end];
        }
        // Responses are computed from the unscaled spectra S (x = S·in_scale) and mixed with
        // the dry spectrum: y = wet·g·in_scale·(P S) + (1 − wet)·S.
        let wet_gain = ctx.wet * ctx.out_gain * ctx.in_scale;
        let dry = 1.0 - ctx.wet;
        let s2 = ctx.in_scale * ctx.in_scale;
        let key_input = match key {
            Key::Signal(k) => AnalysisInput::Signal(k),
            _ => AnalysisInput::Silence,
        };
        // How far the key has been fed: up to each main frame's boundary inside its callback.
        let mut key_at = start;
        let result = stft.process_in_place(&mut chunk[..n], |frame| {
            let fade_w = ctx.fade.map(|f| f.pos);
            let bins = frame.bins();
            let data = frame.as_mut_slice();
            // With a key, the statistics are the key frame's ending at the same sample.
            let key_data = key.is_keyed().then(|| {
                let aligned = key_stft.feed_to_frame(key_input, &mut key_at, end);
                // Fed as many samples as the main STFT, it completes its frame here too.
                debug_assert!(aligned);
                key_stft.spectra()
            });
            for (b, range) in layout.bands().iter().enumerate() {
                let race = &mut races[b];
                let (lo, len) = (range.start, range.len());
                // Band-mean outer product of the scaled input: complex dot products of the
                // channels' contiguous bin slices.
                band_outer(outer, key_data.unwrap_or(&*data), n, bins, lo, len, s2);
                band_power[b] = (0..n).map(|j| outer[(j, j)].re).sum::<f64>() / n as f64;
                // Responses with the state before this frame's update, r = P x.
                respond_band(
                    race.response_matrix(ctx.selected),
                    data,
                    r,
                    n,
                    bins,
                    lo,
                    len,
                );
                if let (Some(w), Some(f)) = (fade_w, ctx.fade.as_ref()) {
                    respond_band(race.response_matrix(f.from), data, r_from, n, bins, lo, len);
                    for (rv, fv) in r[..n * len].iter_mut().zip(&r_from[..n * len]) {
                        *rv = *rv * w + *fv * (1.0 - w);
                    }
                }
                mix_band(data, r, n, bins, lo, len, [wet_gain, dry]);
                if frames_per_update[b] == 1 {
                    race.learn(outer, ctx.learning);
                } else {
                    // A narrow band: learn from the mean over its block of frames.
                    pending[b] += &*outer;
                    pending_frames[b] += 1;
                    if pending_frames[b] == frames_per_update[b] {
                        pending[b] /= Complex::new(pending_frames[b] as f64, 0.0);
                        race.learn(&pending[b], ctx.learning);
                        pending[b].fill(Complex::new(0.0, 0.0));
                        pending_frames[b] = 0;
                    }
                }
            }
            ctx.changes
                .observe(ctx.detector.update_diag(band_power, frame_dt));
            if let Some(f) = ctx.fade.as_mut() {
                f.advance(1);
                if f.done() {
                    *ctx.fade = None;
                }
            }
        });
        // Channel counts were validated at construction; a mismatch cannot happen here.
        debug_assert!(result.is_ok());
        // The key's samples after the last boundary (or, without a key, the hop phase).
        if key.is_keyed() {
            let extra_frame = key_stft.feed_to_frame(key_input, &mut key_at, end);
            debug_assert!(!extra_frame);
        } else {
            key_stft.skip(end - start);
        }
    }
}
