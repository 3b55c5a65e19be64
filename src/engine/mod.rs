//! The audio engine (DESIGN.md §3, §4): framings, the race, audio safety and stats, with no
//! plugin types. Everything is allocated in [`Engine::new`]; [`Engine::process`] only touches
//! preallocated buffers.

// Per-sample loops index channels and frames together, as the formulas do.
#![allow(clippy::needless_range_loop)]

mod change;
mod race;
mod raw;
mod safety;
mod state;
mod stats;

pub use change::ChangeDetector;
pub use race::{Race, RaceSettings, WhitenerKind, WhitenerSnapshot};
pub use raw::RawWhitener;
pub use safety::{db_to_amp, power_to_db, DenormalGuard, SafetyLimiter};
pub use state::{LearnedState, RaceState};
pub use stats::{Eigenvalues, StatsRecord, StatsSender};

use crate::circuits::CircuitError;
use crate::framing::stft::{BandLayout, Stft, StftError};
use nalgebra::{Complex, DMatrix};
use serde::{Deserialize, Serialize};

/// Most channels the engine handles (DESIGN.md: 1–16).
pub const MAX_CHANNELS: usize = 16;

/// How audio becomes vectors (DESIGN.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Time domain: `x_t` = the n channel samples at sample t; zero latency.
    #[default]
    Channels,
    /// STFT: per log-spaced band, a complex circuit over the channels; latency N.
    Spectral,
}

/// The user-facing parameters, in the units users think in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineParams {
    /// Channels or spectral framing.
    pub framing: Framing,
    /// The whitener heard at the output.
    pub selected: WhitenerKind,
    /// Adaptation time constant in ms: η per input vector is `1/(τ·rate)` where the rate is
    /// samples/s (channels) or frames/s (spectral). It is the time unit of the learning
    /// dynamics (`τ = η t` in DESIGN.md §2), not the time to converge, which depends on the
    /// circuit and on how far the statistics moved.
    pub tau_ms: f64,
    /// Interneurons per circuit; 0 means as many as channels (`k = n`).
    pub interneurons: usize,
    /// Initial scale `s` of every whitener (`M₀ = s·I`).
    pub init_scale: f64,
    /// Reference level in dBFS: the input is divided by this RMS so typical material has unit
    /// variance inside the circuits. Also the knob that shows the direct circuit's
    /// dependence on absolute scale.
    pub reference_db: f64,
    /// Output level in dBFS: the RMS of each whitened output channel.
    pub output_db: f64,
    /// 0 = dry input only, 1 = whitened only.
    pub dry_wet: f64,
    /// Noise floor in dBFS: the circuits whiten `C + ε²I`, so silence never makes `M` singular.
    pub noise_floor_db: f64,
    /// STFT size N (spectral framing).
    pub fft_size: usize,
    /// Number of log-spaced bands (spectral framing).
    pub bands: usize,
    /// Whether the whiteners learn (false freezes their state).
    pub learning: bool,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            framing: Framing::Channels,
            selected: WhitenerKind::Interneuron,
            tau_ms: 300.0,
            interneurons: 0,
            init_scale: 1.0,
            reference_db: -20.0,
            output_db: -20.0,
            dry_wet: 1.0,
            noise_floor_db: -90.0,
            fft_size: 1024,
            bands: 32,
            learning: true,
        }
    }
}

/// Errors building an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A parameter is out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// A circuit rejected its parameters.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The STFT rejected its parameters.
    #[error(transparent)]
    Stft(#[from] StftError),
}

/// Bounds of the adaptation time constant, ms. Below the lower bound a learning step would
/// exceed the stable η; above the upper bound nothing audible adapts.
pub const TAU_MS_RANGE: (f64, f64) = (5.0, 60_000.0);
/// Largest per-update learning rate the engine uses (the direct circuit overshoots and can
/// lose positive definiteness for large steps).
pub const MAX_BLOCK_ETA: f64 = 0.25;
/// Input vectors per learning step in the channels framing: 256 (5.3 ms at 48 kHz) up to 8
/// channels, 512 above, where the O(n³) updates cost more. Per-sample work is then only the
/// response and the outer-product accumulation, and the updates are amortised over the block
/// (DESIGN.md §3 allows block learning with the averaged outer product; η per block is the
/// per-sample η times the block length, so the time constant does not depend on it).
pub fn learn_interval(channels: usize) -> usize {
    if channels > 8 {
        512
    } else {
        256
    }
}
/// Bands whose eigenvalues are refreshed per stats record in the spectral framing (round
/// robin); the error estimate of every band is always current.
pub const EIG_BANDS_PER_RECORD: usize = 4;
/// Duration of the crossfade when the selected whitener changes.
pub const CROSSFADE_MS: f64 = 20.0;
/// Interval of stats records.
pub const STATS_INTERVAL_MS: f64 = 10.0;
/// Window of the output-covariance error estimate.
pub const ERROR_WINDOW_MS: f64 = 50.0;

impl EngineParams {
    /// Reject parameters no engine can run with, with a message naming the parameter.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |m: String| Err(EngineError::InvalidParameter(m));
        if !(self.tau_ms >= TAU_MS_RANGE.0 && self.tau_ms <= TAU_MS_RANGE.1) {
            return bad(format!(
                "adaptation time {} ms is outside {}..{} ms",
                self.tau_ms, TAU_MS_RANGE.0, TAU_MS_RANGE.1
            ));
        }
        if !(self.init_scale.is_finite() && self.init_scale > 0.0 && self.init_scale <= 1e6) {
            return bad(format!(
                "init scale {} must be in (0, 1e6]",
                self.init_scale
            ));
        }
        for (name, v) in [
            ("reference level", self.reference_db),
            ("output level", self.output_db),
            ("noise floor", self.noise_floor_db),
        ] {
            if !(v.is_finite() && (-200.0..=24.0).contains(&v)) {
                return bad(format!("{name} {v} dBFS is outside -200..24 dBFS"));
            }
        }
        if !(0.0..=1.0).contains(&self.dry_wet) {
            return bad(format!("dry/wet {} must be in 0..1", self.dry_wet));
        }
        if self.interneurons > 4 * MAX_CHANNELS {
            return bad(format!(
                "{} interneurons is more than the supported {}",
                self.interneurons,
                4 * MAX_CHANNELS
            ));
        }
        Ok(())
    }
}

/// Per-framing state.
enum Core {
    Channels(Box<ChannelsCore>),
    Spectral(Box<SpectralCore>),
}

/// Time-domain framing: one race over the n channels.
struct ChannelsCore {
    race: Race<f64>,
    /// Vectors per learning step.
    learn_interval: usize,
    /// Running sum of `x xᵀ` over the current learning block (lower triangle).
    outer: DMatrix<f64>,
    /// Vectors accumulated in `outer`.
    count: usize,
    /// Scaled input of the current segment, channel-major with stride `stride`.
    xs: Vec<f64>,
    /// Responses of the heard whitener, same layout.
    rs: Vec<f64>,
    /// Responses of the whitener fading out, same layout.
    rs_from: Vec<f64>,
}

/// Spectral framing: an STFT and one complex race per band.
struct SpectralCore {
    stft: Stft,
    layout: BandLayout,
    races: Vec<Race<Complex<f64>>>,
    outer: DMatrix<Complex<f64>>,
    band_power: Vec<f64>,
    /// Responses of the heard whitener for one band, channel-major (n × widest band).
    r: Vec<Complex<f64>>,
    /// Responses of the whitener fading out, same layout.
    r_from: Vec<Complex<f64>>,
}

/// The crossfade between the previously and the newly selected whitener.
#[derive(Clone, Copy, Debug)]
struct Crossfade {
    from: WhitenerKind,
    /// Progress 0..=1 of the fade towards the selected whitener.
    pos: f64,
    /// Progress per vector (sample or frame).
    step: f64,
}

/// Running counters a host or the CLI can read after processing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineCounters {
    /// Input samples that were NaN or ±∞ and were treated as 0.
    pub non_finite_inputs: u64,
    /// Whitener states reset after becoming non-finite or non-positive-definite.
    pub state_resets: u64,
    /// Stats records dropped because the channel was full.
    pub stats_dropped: u64,
    /// Stats records sent.
    pub stats_sent: u64,
    /// Changes of input statistics detected.
    pub changes_detected: u64,
}

/// The whole effect for a fixed channel count, sample rate and maximum block size.
pub struct Engine {
    params: EngineParams,
    channels: usize,
    sample_rate: f64,
    core: Core,
    limiter: SafetyLimiter,
    /// Input amplitude scaling `1/reference`.
    in_scale: f64,
    /// Output amplitude `10^(output_db/20)`.
    out_gain: f64,
    fade: Option<Crossfade>,
    /// Progress of a crossfade per vector.
    fade_step: f64,
    detector: ChangeDetector,
    stats: Option<StatsSender>,
    /// Whether stats records are computed at all (off while nobody watches: the eigenvalue
    /// refreshes are the costliest part of the stats).
    stats_enabled: bool,
    stats_interval: usize,
    stats_countdown: usize,
    /// Sum of squared input samples since the last stats record.
    input_energy: f64,
    input_count: u64,
    pending_change: bool,
    /// Next band whose eigenvalues a spectral stats record refreshes.
    eig_band_cursor: usize,
    /// Stats intervals completed (drives the round-robin eigenvalue refresh).
    records_emitted: u64,
    samples_processed: u64,
    counters: EngineCounters,
    /// Interleaved-frame scratch for the limiter.
    frame: [f32; MAX_CHANNELS],
}

impl Engine {
    /// Build an engine for `channels` (1–16) at `sample_rate`. Allocates everything.
    pub fn new(
        channels: usize,
        sample_rate: f64,
        params: EngineParams,
    ) -> Result<Self, EngineError> {
        params.validate()?;
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(EngineError::InvalidParameter(format!(
                "{channels} channels: the engine supports 1 to {MAX_CHANNELS}"
            )));
        }
        if !(sample_rate.is_finite() && (1000.0..=768_000.0).contains(&sample_rate)) {
            return Err(EngineError::InvalidParameter(format!(
                "sample rate {sample_rate} Hz is outside 1 kHz..768 kHz"
            )));
        }
        let in_scale = 1.0 / db_to_amp(params.reference_db);
        let floor = db_to_amp(params.noise_floor_db) * in_scale;
        let k = if params.interneurons == 0 {
            channels
        } else {
            params.interneurons.max(channels)
        };
        let (core, vector_rate) = match params.framing {
            Framing::Channels => {
                let learn_interval = learn_interval(channels);
                let settings = RaceSettings {
                    eta: block_eta(learn_interval as f64, params.tau_ms, sample_rate),
                    interneurons: k,
                    init_scale: params.init_scale,
                    floor,
                    error_alpha: smoothing(learn_interval as f64 / sample_rate, ERROR_WINDOW_MS),
                };
                let core = ChannelsCore {
                    race: Race::new(channels, &settings)?,
                    learn_interval,
                    outer: DMatrix::zeros(channels, channels),
                    count: 0,
                    xs: vec![0.0; channels * learn_interval],
                    rs: vec![0.0; channels * learn_interval],
                    rs_from: vec![0.0; channels * learn_interval],
                };
                (Core::Channels(Box::new(core)), sample_rate)
            }
            Framing::Spectral => {
                let mut stft = Stft::new(params.fft_size, channels)?;
                stft.set_active_channels(channels)?;
                let layout = BandLayout::for_fft_size(params.fft_size, params.bands)?;
                let widest = layout.bands().iter().map(|b| b.len()).max().unwrap_or(1);
                let hop = stft.hop_size() as f64;
                let settings = RaceSettings {
                    eta: block_eta(hop, params.tau_ms, sample_rate),
                    interneurons: k,
                    init_scale: params.init_scale,
                    floor,
                    error_alpha: smoothing(hop / sample_rate, ERROR_WINDOW_MS),
                };
                let races = (0..layout.num_bands())
                    .map(|_| Race::new(channels, &settings))
                    .collect::<Result<Vec<_>, _>>()?;
                let core = SpectralCore {
                    band_power: vec![0.0; layout.num_bands()],
                    stft,
                    layout,
                    races,
                    outer: DMatrix::zeros(channels, channels),
                    r: vec![Complex::new(0.0, 0.0); channels * widest],
                    r_from: vec![Complex::new(0.0, 0.0); channels * widest],
                };
                (Core::Spectral(Box::new(core)), sample_rate / hop)
            }
        };
        let detector_dim = match &core {
            Core::Channels(_) => channels,
            Core::Spectral(s) => s.layout.num_bands(),
        };
        let stats_interval = ((STATS_INTERVAL_MS * 1e-3 * sample_rate).round() as usize).max(1);
        Ok(Self {
            in_scale,
            out_gain: db_to_amp(params.output_db),
            fade: None,
            fade_step: 1.0 / (CROSSFADE_MS * 1e-3 * vector_rate).max(1.0),
            detector: ChangeDetector::new(detector_dim, floor * floor),
            stats: None,
            stats_enabled: true,
            stats_interval,
            stats_countdown: stats_interval,
            input_energy: 0.0,
            input_count: 0,
            pending_change: false,
            eig_band_cursor: 0,
            records_emitted: 0,
            samples_processed: 0,
            counters: EngineCounters::default(),
            frame: [0.0; MAX_CHANNELS],
            limiter: SafetyLimiter::new(sample_rate as f32, 50.0),
            channels,
            sample_rate,
            core,
            params,
        })
    }

    /// Send one stats record per whitener every ~10 ms on this channel (never blocking).
    pub fn set_stats_sender(&mut self, sender: Option<StatsSender>) {
        self.stats = sender;
    }

    /// Compute and send stats records (default) or skip all stats work, e.g. while no
    /// monitor is open. No allocation; the audio output does not depend on it.
    pub fn set_stats_enabled(&mut self, enabled: bool) {
        self.stats_enabled = enabled;
    }

    /// Change the reference level and the noise floor (dBFS) without rebuilding: the learned
    /// state is kept, so the circuits readapt from where they are to the newly scaled input —
    /// the scale dependence of DESIGN.md §2, live. No allocation.
    pub fn set_levels(
        &mut self,
        reference_db: f64,
        noise_floor_db: f64,
    ) -> Result<(), EngineError> {
        let mut p = self.params.clone();
        p.reference_db = reference_db;
        p.noise_floor_db = noise_floor_db;
        p.validate()?;
        self.params.reference_db = reference_db;
        self.params.noise_floor_db = noise_floor_db;
        self.in_scale = 1.0 / db_to_amp(reference_db);
        let floor = db_to_amp(noise_floor_db) * self.in_scale;
        match &mut self.core {
            Core::Channels(c) => c.race.set_floor(floor),
            Core::Spectral(s) => {
                for r in s.races.iter_mut() {
                    r.set_floor(floor);
                }
            }
        }
        self.detector.set_floor(floor * floor);
        Ok(())
    }

    /// The parameters in force.
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Sample rate.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Latency in samples: 0 for channels, N for spectral.
    pub fn latency_samples(&self) -> usize {
        match &self.core {
            Core::Channels(_) => 0,
            Core::Spectral(s) => s.stft.latency_samples(),
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> EngineCounters {
        let mut c = self.counters;
        c.state_resets = self.state_resets();
        c
    }

    fn state_resets(&self) -> u64 {
        let sum = |races: &mut dyn Iterator<Item = u64>| races.sum::<u64>();
        match &self.core {
            Core::Channels(c) => sum(&mut WhitenerKind::ALL.iter().map(|k| c.race.resets(*k))),
            Core::Spectral(s) => sum(&mut s
                .races
                .iter()
                .flat_map(|r| WhitenerKind::ALL.iter().map(move |k| r.resets(*k)))),
        }
    }

    /// The race of the channels framing (for inspection and tests).
    pub fn channel_race(&self) -> Option<&Race<f64>> {
        match &self.core {
            Core::Channels(c) => Some(&c.race),
            Core::Spectral(_) => None,
        }
    }

    /// The per-band races of the spectral framing.
    pub fn spectral_races(&self) -> Option<&[Race<Complex<f64>>]> {
        match &self.core {
            Core::Channels(_) => None,
            Core::Spectral(s) => Some(&s.races),
        }
    }

    /// Select the whitener heard at the output; crossfades over ~20 ms.
    pub fn select(&mut self, kind: WhitenerKind) {
        if kind == self.params.selected {
            return;
        }
        let from = self.params.selected;
        self.params.selected = kind;
        self.fade = Some(Crossfade {
            from,
            pos: 0.0,
            step: self.fade_step,
        });
    }

    /// Change the adaptation time constant (no allocation).
    pub fn set_tau_ms(&mut self, tau_ms: f64) -> Result<(), EngineError> {
        let mut p = self.params.clone();
        p.tau_ms = tau_ms;
        p.validate()?;
        self.params.tau_ms = tau_ms;
        match &mut self.core {
            Core::Channels(c) => {
                let eta = block_eta(c.learn_interval as f64, tau_ms, self.sample_rate);
                c.race.set_eta(eta)?;
            }
            Core::Spectral(s) => {
                let eta = block_eta(s.stft.hop_size() as f64, tau_ms, self.sample_rate);
                for r in s.races.iter_mut() {
                    r.set_eta(eta)?;
                }
            }
        }
        Ok(())
    }

    /// Change output level (dBFS) and dry/wet (0..1); values are clamped to their ranges.
    pub fn set_output(&mut self, output_db: f64, dry_wet: f64) {
        if output_db.is_finite() {
            self.params.output_db = output_db.clamp(-200.0, 24.0);
            self.out_gain = db_to_amp(self.params.output_db);
        }
        if dry_wet.is_finite() {
            self.params.dry_wet = dry_wet.clamp(0.0, 1.0);
        }
    }

    /// Freeze or resume learning.
    pub fn set_learning(&mut self, learning: bool) {
        self.params.learning = learning;
    }

    /// Re-initialise every whitener at scale `s` — the paper's experiment, live.
    pub fn reinitialise(&mut self, scale: f64) -> Result<(), EngineError> {
        match &mut self.core {
            Core::Channels(c) => c.race.reinitialise(scale)?,
            Core::Spectral(s) => {
                for r in s.races.iter_mut() {
                    r.reinitialise(scale)?;
                }
            }
        }
        self.params.init_scale = scale;
        Ok(())
    }

    /// Clear the signal history (STFT buffers, limiter); the learned state is kept.
    pub fn reset_audio(&mut self) {
        self.limiter.reset();
        if let Core::Spectral(s) = &mut self.core {
            s.stft.reset();
        }
        if let Core::Channels(c) = &mut self.core {
            c.outer.fill(0.0);
            c.count = 0;
        }
    }

    /// Process one block in place: `buffers` holds one slice per channel, all the same length
    /// (any length). Never allocates, locks, blocks or panics on any input values.
    pub fn process(&mut self, buffers: &mut [&mut [f32]]) {
        let _denormals = DenormalGuard::new();
        if buffers.len() != self.channels {
            // A host handing the wrong layout gets silence rather than a panic.
            for b in buffers.iter_mut() {
                b.fill(0.0);
            }
            return;
        }
        let len = buffers.iter().map(|b| b.len()).min().unwrap_or(0);
        let mut start = 0;
        while start < len {
            let chunk = (len - start).min(self.stats_countdown);
            self.process_chunk(buffers, start, start + chunk);
            start += chunk;
            self.samples_processed += chunk as u64;
            self.stats_countdown -= chunk;
            if self.stats_countdown == 0 {
                self.stats_countdown = self.stats_interval;
                self.emit_stats();
            }
        }
    }

    fn process_chunk(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize) {
        // Sanitise: non-finite samples become 0 and are counted; measure the input level.
        for b in buffers.iter_mut() {
            let seg = &mut b[start..end];
            if seg.iter().any(|v| !v.is_finite()) {
                for v in seg.iter_mut().filter(|v| !v.is_finite()) {
                    *v = 0.0;
                    self.counters.non_finite_inputs += 1;
                }
            }
            // f32 partial sums per chunk (≤ 480 samples), in eight lanes, accumulated in f64.
            let mut acc = [0.0f32; 8];
            let chunks = seg.chunks_exact(8);
            let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
            for c in chunks {
                for k in 0..8 {
                    acc[k] += c[k] * c[k];
                }
            }
            self.input_energy += (acc.iter().sum::<f32>() + tail) as f64;
        }
        self.input_count += ((end - start) * self.channels) as u64;
        match &mut self.core {
            Core::Channels(_) => self.process_channels(buffers, start, end),
            Core::Spectral(_) => self.process_spectral(buffers, start, end),
        }
        // Output safety: the limiter guarantees |y| ≤ 1. When it is idle and nothing in the
        // chunk would clip, it would change nothing: skip the per-frame pass.
        let peak = buffers
            .iter()
            .map(|b| b[start..end].iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .fold(0.0f32, f32::max);
        if self.limiter.gain() >= 1.0 && peak <= 1.0 {
            return;
        }
        let n = self.channels;
        for t in start..end {
            for (c, b) in buffers.iter().enumerate() {
                self.frame[c] = b[t];
            }
            self.limiter.process_frame(&mut self.frame[..n]);
            for (c, b) in buffers.iter_mut().enumerate() {
                b[t] = self.frame[c];
            }
        }
    }

    fn process_channels(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize) {
        let Core::Channels(core) = &mut self.core else {
            return;
        };
        let n = self.channels;
        let wet = self.params.dry_wet;
        let g = self.out_gain;
        let selected = self.params.selected;
        let block_dt = core.learn_interval as f64 / self.sample_rate;
        let stride = core.learn_interval;
        let mut t0 = start;
        while t0 < end {
            // A segment never crosses a learning step, so every whitener's P is constant in it
            // and all per-sample work is contiguous loops over channel slices.
            let len = (end - t0).min(core.learn_interval - core.count);
            let t1 = t0 + len;
            for c in 0..n {
                let xs = &mut core.xs[c * stride..c * stride + len];
                for (x, v) in xs.iter_mut().zip(&buffers[c][t0..t1]) {
                    *x = *v as f64 * self.in_scale;
                }
            }
            // Input outer product (lower triangle): dot products of channel slices.
            accumulate_outer(&mut core.outer, &core.xs, n, len, stride);
            core.count += len;
            // Responses r = P x of the heard whitener (and of the one fading out).
            respond_planar(
                core.race.response_matrix(selected),
                &core.xs,
                &mut core.rs,
                n,
                len,
                stride,
            );
            if let Some(f) = &mut self.fade {
                respond_planar(
                    core.race.response_matrix(f.from),
                    &core.xs,
                    &mut core.rs_from,
                    n,
                    len,
                    stride,
                );
                for c in 0..n {
                    let o = c * stride;
                    let mut w = f.pos;
                    for (r, rf) in core.rs[o..o + len]
                        .iter_mut()
                        .zip(&core.rs_from[o..o + len])
                    {
                        let wc = w.min(1.0);
                        *r = wc * *r + (1.0 - wc) * rf;
                        w += f.step;
                    }
                }
                f.pos += f.step * len as f64;
                if f.pos >= 1.0 {
                    self.fade = None;
                }
            }
            let (a, b) = (wet * g, 1.0 - wet);
            for c in 0..n {
                let o = c * stride;
                for (y, r) in buffers[c][t0..t1].iter_mut().zip(&core.rs[o..o + len]) {
                    *y = (a * r + b * *y as f64) as f32;
                }
            }
            if core.count == core.learn_interval {
                let inv = 1.0 / core.count as f64;
                for j in 0..n {
                    for i in j..n {
                        let v = core.outer[(i, j)] * inv;
                        core.outer[(i, j)] = v;
                        core.outer[(j, i)] = v;
                    }
                }
                core.race.learn(&core.outer, self.params.learning);
                if self.detector.update_full(&core.outer, block_dt) {
                    self.pending_change = true;
                    self.counters.changes_detected += 1;
                }
                core.outer.fill(0.0);
                core.count = 0;
            }
            t0 = t1;
        }
    }

    fn process_spectral(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize) {
        let Core::Spectral(core) = &mut self.core else {
            return;
        };
        let n = self.channels;
        let wet = self.params.dry_wet;
        let g = self.out_gain;
        let in_scale = self.in_scale;
        let selected = self.params.selected;
        let learning = self.params.learning;
        let frame_dt = core.stft.hop_size() as f64 / self.sample_rate;
        let SpectralCore {
            stft,
            layout,
            races,
            outer,
            band_power,
            r,
            r_from,
        } = &mut **core;
        let fade = &mut self.fade;
        let detector = &mut self.detector;
        let pending_change = &mut self.pending_change;
        let changes = &mut self.counters.changes_detected;
        let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
        for (slot, b) in chunk.iter_mut().zip(buffers.iter_mut()) {
            *slot = &mut b[start..end];
        }
        let result = stft.process_in_place(&mut chunk[..n], |frame| {
            let fade_w = fade.map(|f| f.pos);
            let bins = frame.bins();
            let data = frame.as_mut_slice();
            for (b, range) in layout.bands().iter().enumerate() {
                let race = &mut races[b];
                let (lo, len) = (range.start, range.len());
                // Band-mean outer product of the scaled input: complex dot products of the
                // channels' contiguous bin slices.
                let s2 = in_scale * in_scale;
                let mut power = 0.0;
                for j in 0..n {
                    let xj = &data[j * bins + lo..j * bins + lo + len];
                    for i in j..n {
                        let xi = &data[i * bins + lo..i * bins + lo + len];
                        let v = cdot(xi, xj) * (s2 / len as f64);
                        outer[(i, j)] = v;
                        outer[(j, i)] = v.conj();
                    }
                    power += outer[(j, j)].re;
                }
                band_power[b] = power / n as f64;
                // Responses with the state before this frame's update, r = P x, computed from
                // the unscaled spectra S (x = S·in_scale), mixed with the dry spectrum:
                // y = wet·g·in_scale·(P S) + (1 − wet)·S.
                let wet_gain = Complex::new(wet * g * in_scale, 0.0);
                let dry = Complex::new(1.0 - wet, 0.0);
                respond_band(race.response_matrix(selected), data, r, n, bins, lo, len);
                if let (Some(w), Some(f)) = (fade_w, fade.as_ref()) {
                    respond_band(race.response_matrix(f.from), data, r_from, n, bins, lo, len);
                    for (rv, fv) in r[..n * len].iter_mut().zip(&r_from[..n * len]) {
                        *rv = *rv * w + *fv * (1.0 - w);
                    }
                }
                for c in 0..n {
                    let ys = &mut data[c * bins + lo..c * bins + lo + len];
                    for (y, rv) in ys.iter_mut().zip(&r[c * len..(c + 1) * len]) {
                        *y = *rv * wet_gain + *y * dry;
                    }
                }
                race.learn(outer, learning);
            }
            if detector.update_diag(band_power, frame_dt) {
                *pending_change = true;
                *changes += 1;
            }
            if let Some(f) = fade.as_mut() {
                f.pos += f.step;
                if f.pos >= 1.0 {
                    *fade = None;
                }
            }
        });
        // Channel counts were validated at construction; a mismatch cannot happen here.
        debug_assert!(result.is_ok());
    }

    /// Send one record per whitener (error, eigenvalues, level, change flag). Never blocks.
    fn emit_stats(&mut self) {
        let input_rms_db = power_to_db(self.input_energy / self.input_count.max(1) as f64);
        self.input_energy = 0.0;
        self.input_count = 0;
        let change = std::mem::take(&mut self.pending_change);
        let Some(tx) = self.stats.as_ref().filter(|_| self.stats_enabled) else {
            return;
        };
        let time_s = self.samples_processed as f64 / self.sample_rate;
        for kind in WhitenerKind::ALL {
            let snap = match &mut self.core {
                // One whitener's eigenvalues are refreshed per record, in turn (each every
                // 30 ms); errors are always current.
                Core::Channels(c) => c
                    .race
                    .snapshot_with(kind, self.records_emitted % 3 == kind.index() as u64),
                Core::Spectral(s) => {
                    // Aggregate over bands: mean error, extreme eigenvalues; the full
                    // spectrum of the loudest band (largest tr Ĉ = Σ λ(Ĉ^{1/2})²).
                    let loudest = s
                        .races
                        .iter()
                        .map(|r| {
                            r.baseline()
                                .recurrent_eigenvalues()
                                .iter()
                                .map(|l| l * l)
                                .sum::<f64>()
                        })
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |best, (b, p)| {
                            if p > best.1 {
                                (b, p)
                            } else {
                                best
                            }
                        })
                        .0;
                    let mut agg = WhitenerSnapshot {
                        error: 0.0,
                        eig_min: f64::INFINITY,
                        eig_max: 0.0,
                        eigenvalues: Eigenvalues::EMPTY,
                        resets: 0,
                    };
                    let bands = s.races.len();
                    let cursor = self.eig_band_cursor;
                    for (b, race) in s.races.iter_mut().enumerate() {
                        let refresh = (b + bands - cursor) % bands < EIG_BANDS_PER_RECORD;
                        let sn = race.snapshot_with(kind, refresh);
                        agg.error += sn.error;
                        agg.eig_min = agg.eig_min.min(sn.eig_min);
                        agg.eig_max = agg.eig_max.max(sn.eig_max);
                        agg.resets += sn.resets;
                        if b == loudest {
                            agg.eigenvalues = sn.eigenvalues;
                        }
                    }
                    agg.error /= s.races.len() as f64;
                    agg
                }
            };
            let record = StatsRecord {
                time_s,
                circuit: kind,
                selected: kind == self.params.selected,
                error: snap.error,
                eig_min: snap.eig_min,
                eig_max: snap.eig_max,
                condition: snap.eig_max / snap.eig_min,
                eigenvalues: snap.eigenvalues,
                input_rms_db,
                change,
                resets: snap.resets,
            };
            if tx.try_send(record) {
                self.counters.stats_sent += 1;
            } else {
                self.counters.stats_dropped += 1;
            }
        }
        if let Core::Spectral(s) = &self.core {
            self.eig_band_cursor = (self.eig_band_cursor + EIG_BANDS_PER_RECORD) % s.races.len();
        }
        self.records_emitted += 1;
    }
}

/// `outer[i, j] += Σ_t x_i[t] x_j[t]` (lower triangle) for channel-major `xs`.
fn accumulate_outer(outer: &mut DMatrix<f64>, xs: &[f64], n: usize, len: usize, stride: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { accumulate_outer_avx2(outer, xs, n, len, stride) };
        return;
    }
    accumulate_outer_body(outer, xs, n, len, stride)
}

/// [`accumulate_outer_body`] compiled for AVX2/FMA, chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_outer_avx2(
    outer: &mut DMatrix<f64>,
    xs: &[f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    accumulate_outer_body(outer, xs, n, len, stride)
}

#[inline(always)]
fn accumulate_outer_body(
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

/// `Σ a_t b_t` with eight independent partial sums: a single running sum is a chain of
/// dependent additions the compiler may not reorder, eight let it use vector lanes.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
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
fn cdot(a: &[Complex<f64>], b: &[Complex<f64>]) -> Complex<f64> {
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

/// `r_i[k] = Σ_j P_ij S_j[lo + k]` for the `len` bins of a band, from the channel-major
/// spectra `data` (stride `bins`) into `r` (stride `len`).
fn respond_band(
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

/// `r_i[t] = Σ_j P_ij x_j[t]` for `len` vectors stored channel-major with stride
/// `stride`: axpys over contiguous slices, which the compiler vectorises.
fn respond_planar(
    p: &DMatrix<f64>,
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { respond_planar_avx2(p, xs, rs, n, len, stride) };
        return;
    }
    respond_planar_body(p, xs, rs, n, len, stride)
}

/// [`respond_planar_body`] compiled for AVX2/FMA (4 f64 lanes instead of SSE2's 2); chosen at
/// run time, so the binary still runs on any x86-64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn respond_planar_avx2(
    p: &DMatrix<f64>,
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    respond_planar_body(p, xs, rs, n, len, stride)
}

#[inline(always)]
fn respond_planar_body(
    p: &DMatrix<f64>,
    xs: &[f64],
    rs: &mut [f64],
    n: usize,
    len: usize,
    stride: usize,
) {
    // Tiles of 64 vectors keep the inputs and outputs of a tile in L1 for n = 16.
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

/// η per update for updates every `vectors` input vectors at the rate implied by `tau_ms`.
fn block_eta(vectors: f64, tau_ms: f64, sample_rate: f64) -> f64 {
    (vectors / (tau_ms * 1e-3 * sample_rate)).min(MAX_BLOCK_ETA)
}

/// Exponential smoothing factor for updates `dt` seconds apart and a window of `window_ms`.
fn smoothing(dt: f64, window_ms: f64) -> f64 {
    1.0 - (-dt / (window_ms * 1e-3)).exp()
}
