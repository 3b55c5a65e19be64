//! The spectral framing (docs/DESIGN.md §3): a Hann-windowed STFT (hop N/4, exact
//! overlap-add), its bins grouped into log-spaced bands, and one complex race per band over
//! the channels. Each band learns from the mean outer product over its bins and the frames of
//! its learning block: [`spectral_learn_frames`] frames (2 at N = 1024), or a multiple of them
//! for a band narrower than `n / frames` bins, so that every block holds at least `n` input
//! vectors (bins × frames). The bands' blocks are staggered, so that about the same number of
//! bands learn in every frame (docs/DESIGN.md §3.2). Latency N.
//!
//! [`spectral_learn_frames`]: super::params::spectral_learn_frames

use super::kernels::{band_outer, respond_mix_band};
use super::key::Key;
use super::mix::BlockContext;
use super::race::{Race, RaceSettings};
use super::shaping::{tilt_gains, HeardResponses, Shaping};
use super::view::{HeardView, ViewKind};
use super::{EngineError, MAX_CHANNELS};
use crate::eigen::HermitianEigen;
use crate::framing::{AnalysisInput, BandLayout, Stft, StftAnalysis};
use crate::whitener::WhitenerKind;
use nalgebra::{Complex, DMatrix};

/// The race settings of a band whose learning block is `blocks` of the framing's learning
/// blocks (`settings` are those of one): its update spans `blocks` times their time, and its
/// error estimate's smoothing per update likewise.
pub(super) fn band_settings(settings: &RaceSettings, blocks: usize) -> RaceSettings {
    let k = blocks as f64;
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
    /// each key frame describes the main frame it whitens (docs/DESIGN.md §3.8). Allocated
    /// always, so that turning sidechain learning on needs no new engine.
    key_stft: StftAnalysis,
    /// Which bins form each band.
    layout: BandLayout,
    /// One race per band.
    pub(super) races: Vec<Race<Complex<f64>>>,
    /// The current band's mean outer product of the scaled spectra.
    outer: DMatrix<Complex<f64>>,
    /// Frames per learning block of the framing (`spectral_learn_frames`): η per update and the
    /// error smoothing given to `new` are for blocks of this many frames.
    learn_frames: usize,
    /// Frames per learning update of each band: the smallest multiple of `learn_frames` that
    /// is at least `⌈n / bins⌉`, so that every update sees at least `n` vectors. A band of
    /// fewer bins than channels has a rank-deficient outer product in any one frame, whose
    /// loud direction jumps from frame to frame into the null space of the last: learning from
    /// it frame by frame would make `R = P X̂ P` jump by `λ/ε²` every frame (docs/DESIGN.md
    /// §3.2, BENCHMARKS.md §4).
    frames_per_update: Vec<usize>,
    /// Sum of the outer products of a band's frames since its last update (empty for bands
    /// that learn every frame).
    pending: Vec<DMatrix<Complex<f64>>>,
    /// Frames summed in `pending`.
    pending_frames: Vec<usize>,
    /// Frames until each band's next update. The first block of band `b` is `b mod k_b`
    /// frames longer than the others, which staggers the bands' updates over the frames of a
    /// block: the learning work of a frame stays about the same from frame to frame instead
    /// of coming all at once every `k_b` frames (the worst host block, docs/DESIGN.md §4.6).
    due: Vec<usize>,
    /// Mean power per channel of each band in the current frame (the change detector's input).
    band_power: Vec<f64>,
    /// During a crossfade, the heard response matrix `w·P + (1 − w)·P_from`: the responses
    /// are linear in the matrix, so blending it once per band and frame equals blending the
    /// two whiteners' responses bin by bin.
    blend: DMatrix<Complex<f64>>,
    /// The heard responses `P^α` of each band below full depth (docs/DESIGN.md §3.7).
    heard: Vec<HeardResponses<Complex<f64>>>,
    /// The eigensolver that makes them.
    heard_eig: HermitianEigen<Complex<f64>>,
    /// Each band's tilt gain `t_b` (docs/DESIGN.md §3.7).
    tilt: Vec<f64>,
    /// Each band's heard gain `t_b^α`, for the depth in `gains_depth`.
    band_gain: Vec<f64>,
    /// The depth `band_gain` was computed for (NaN: stale).
    gains_depth: f64,
    /// The bins processed, `lo..hi`; the others pass through dry.
    processed: (usize, usize),
    /// Each band's centre frequency in Hz (the geometric mean of its bins), for the view.
    centre_hz: Vec<f32>,
    /// The processed range in Hz, for the view.
    limits_hz: (f32, f32),
}

/// Frames until each band's first update: its block length, plus `b mod k_b` to stagger the
/// bands (see `SpectralCore::due`).
fn first_due(frames_per_update: &[usize]) -> impl Iterator<Item = usize> + '_ {
    frames_per_update
        .iter()
        .enumerate()
        .map(|(b, &k)| k + b % k)
}

impl SpectralCore {
    /// Allocate the STFT of size `fft_size` for `channels`, `bands` log-spaced bands and their
    /// races.
    pub(super) fn new(
        channels: usize,
        fft_size: usize,
        bands: usize,
        learn_frames: usize,
        settings: &RaceSettings,
    ) -> Result<Self, EngineError> {
        let learn_frames = learn_frames.max(1);
        let mut stft = Stft::new(fft_size, channels)?;
        stft.set_active_channels(channels)?;
        let key_stft = StftAnalysis::new(fft_size, channels)?;
        let layout = BandLayout::for_fft_size(fft_size, bands)?;
        let (num_bands, num_bins) = (layout.num_bands(), layout.num_bins());
        let frames_per_update: Vec<usize> = layout
            .bands()
            .iter()
            .map(|b| {
                let vectors = channels.div_ceil(b.len().max(1));
                vectors.div_ceil(learn_frames) * learn_frames
            })
            .collect();
        let races = frames_per_update
            .iter()
            .map(|&k| Race::new(channels, &band_settings(settings, k / learn_frames)))
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
            due: first_due(&frames_per_update).collect(),
            learn_frames,
            frames_per_update,
            band_power: vec![0.0; layout.num_bands()],
            stft,
            key_stft,
            layout,
            races,
            outer: DMatrix::zeros(channels, channels),
            blend: DMatrix::zeros(channels, channels),
            heard: (0..num_bands)
                .map(|_| HeardResponses::new(channels))
                .collect(),
            heard_eig: HermitianEigen::new(channels),
            tilt: vec![1.0; num_bands],
            band_gain: vec![1.0; num_bands],
            gains_depth: f64::NAN,
            processed: (0, num_bins),
            centre_hz: vec![0.0; num_bands],
            limits_hz: (0.0, 0.0),
        })
    }

    /// New shaping: the bands' tilt gains and the processed bins (docs/DESIGN.md §3.7). No
    /// allocation.
    pub(super) fn set_shaping(&mut self, shaping: &Shaping, sample_rate: f64) {
        let n = self.stft.fft_size();
        tilt_gains(
            &self.layout,
            n,
            sample_rate,
            shaping.tilt_db_per_octave,
            &mut self.tilt,
        );
        self.gains_depth = f64::NAN;
        self.processed = shaping.processed_bins(n, sample_rate);
        let df = sample_rate / n as f64;
        for (c, band) in self.centre_hz.iter_mut().zip(self.layout.bands()) {
            let mean_log = band.clone().map(|k| (k as f64).max(0.5).ln()).sum::<f64>()
                / band.len().max(1) as f64;
            *c = (mean_log.exp() * df) as f32;
        }
        let (lo, hi) = self.processed;
        self.limits_hz = (
            (lo as f64 * df) as f32,
            (hi.saturating_sub(1) as f64 * df) as f32,
        );
    }

    /// What the heard whitener does: each band's gain from input to wet output, dB.
    pub(super) fn fill_view(
        &self,
        selected: WhitenerKind,
        depth: f64,
        scale: f64,
        view: &mut HeardView,
    ) {
        view.kind = ViewKind::Bands;
        view.len = self.races.len().min(view.gain_db.len());
        view.limits_hz = self.limits_hz;
        for b in 0..view.len {
            let h = self.heard[b].matrix(&self.races[b], selected, depth);
            let n = h.nrows() as f64;
            let power = h.iter().map(|x| x.norm_sqr()).sum::<f64>() / n;
            // band_gain is t_b^α for the depth of the last frame; the view follows within one.
            let amp = scale * self.band_gain[b];
            view.gain_db[b] = (10.0 * power.log10() + 20.0 * amp.log10()) as f32;
            view.freq_hz[b] = self.centre_hz[b];
        }
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
        for (due, first) in self.due.iter_mut().zip(first_due(&self.frames_per_update)) {
            *due = first;
        }
    }

    /// Frames per learning block of the framing (η per update is this times η per frame).
    pub(super) fn learn_frames(&self) -> usize {
        self.learn_frames
    }

    /// Learning blocks of the framing that one update of band `b` spans (η per update is this
    /// times the framing's).
    pub(super) fn updates_span(&self, b: usize) -> usize {
        self.frames_per_update[b] / self.learn_frames
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
            blend,
            frames_per_update,
            pending,
            pending_frames,
            due,
            heard,
            heard_eig,
            tilt,
            band_gain,
            gains_depth,
            processed,
            ..
        } = self;
        let depth = ctx.depth;
        if *gains_depth != depth {
            for (g, t) in band_gain.iter_mut().zip(tilt.iter()) {
                *g = t.powf(depth);
            }
            *gains_depth = depth;
        }
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
            // Delta listening subtracts the dry spectrum (per frame; the overlap-add of
            // the windowed frames makes the fade smooth within a frame).
            let d = ctx.delta.value;
            // Whether any bin is changed: then the STFT resynthesises; otherwise it may copy
            // the input exactly (a null at 0 % wet, bit for bit).
            let mut touched = d != 0.0;
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
                // channels' contiguous bin slices. Learning sees the whole band, whatever
                // the limits.
                band_outer(outer, key_data.unwrap_or(&*data), n, bins, lo, len, s2);
                band_power[b] = (0..n).map(|j| outer[(j, j)].re).sum::<f64>() / n as f64;
                // The processed part of the band; the rest stays dry (or, in delta, silent).
                let plo = processed.0.clamp(lo, lo + len);
                let phi = processed.1.clamp(plo, lo + len);
                let plen = phi - plo;
                if plen > 0 {
                    // Responses with the state before this frame's update, r = t_b^α P^α x.
                    let kinds = [Some(ctx.selected), ctx.fade.map(|f| f.from)];
                    for kind in kinds.into_iter().flatten() {
                        heard[b].refresh(race, kind, depth, heard_eig);
                    }
                    let mut q = heard[b].matrix(race, ctx.selected, depth);
                    if let (Some(w), Some(f)) = (fade_w, ctx.fade.as_ref()) {
                        let p_from = heard[b].matrix(race, f.from, depth);
                        let bl = blend.as_mut_slice();
                        for ((v, p), pf) in bl.iter_mut().zip(q.as_slice()).zip(p_from.as_slice()) {
                            *v = *p * w + *pf * (1.0 - w);
                        }
                        q = &*blend;
                    }
                    let gains = [wet_gain * band_gain[b], dry - d];
                    // `0·r + 1·x` is `x`: skipped, so that a non-finite response cannot leak
                    // into a dry output either.
                    if gains != [0.0, 1.0] {
                        respond_mix_band(q, data, n, bins, plo, plen, gains);
                        touched = true;
                    }
                }
                if d > 0.0 && plen < len {
                    for c in 0..n {
                        let ch = &mut data[c * bins..(c + 1) * bins];
                        let keep = 1.0 - d;
                        ch[lo..plo].iter_mut().for_each(|v| *v *= keep);
                        ch[phi..lo + len].iter_mut().for_each(|v| *v *= keep);
                    }
                }
                if frames_per_update[b] == 1 {
                    race.learn(outer, ctx.learning);
                } else {
                    // Learn from the mean over the band's block of frames.
                    pending[b] += &*outer;
                    pending_frames[b] += 1;
                    due[b] -= 1;
                    if due[b] == 0 {
                        pending[b] /= Complex::new(pending_frames[b] as f64, 0.0);
                        race.learn(&pending[b], ctx.learning);
                        pending[b].fill(Complex::new(0.0, 0.0));
                        pending_frames[b] = 0;
                        due[b] = frames_per_update[b];
                    }
                }
            }
            if !touched {
                frame.leave_untouched();
            }
            ctx.changes
                .observe(ctx.detector.update_diag(band_power, frame_dt));
            if let Some(f) = ctx.fade.as_mut() {
                f.advance(1);
                if f.done() {
                    *ctx.fade = None;
                }
            }
            ctx.delta.advance(1);
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
