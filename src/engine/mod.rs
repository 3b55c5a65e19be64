//! The audio engine (docs/DESIGN.md §3–§9): the framings, the race, audio safety and stats,
//! with no plugin types. Everything is allocated in [`Engine::new`]; [`Engine::process`] only
//! touches preallocated buffers.
//!
//! The rooms: [`params`] (what a user sets, and the one range table), [`kernels`] (the
//! per-sample arithmetic), the two framing cores (`channels`, `spectral`), [`race`] (the
//! whiteners of one input space, reached through [`AnyRace`] whatever their field), `emit`
//! (the stats records), [`change`] (the change detector), [`safety`], [`state`] (the
//! learned state), [`raw`] (the per-sample `--raw` path) and `key` (where the learning
//! statistics come from: the main input, or a sidechain key — [`Engine::process_keyed`]).

mod any_race;
pub mod change;
mod channels;
mod emit;
mod estimate;
pub mod integrate;
pub mod kernels;
mod key;
mod mix;
pub mod params;
pub mod race;
pub mod raw;
pub mod safety;
pub mod shaping;
mod spectral;
pub mod state;
pub mod stats;
pub mod view;

pub use any_race::AnyRace;
pub use change::ChangeDetector;
pub use emit::{EIG_BANDS_PER_RECORD, STATS_INTERVAL_MS};
pub use estimate::ERROR_WINDOW_MS;
pub use mix::CROSSFADE_MS;
pub use params::{
    learn_interval, EngineParams, Framing, OutOfRange, ParamRange, MAX_BLOCK_ETA, MAX_CHANNELS,
};
pub use race::{Race, RaceSettings, WhitenerSnapshot};
pub use raw::RawWhitener;
pub use safety::{
    db_to_amp, flush_subnormals, flush_subnormals_peak, power_to_db, DenormalGuard, SafetyLimiter,
};
pub use shaping::Shaping;
pub use state::{LearnedState, RaceState};
pub use stats::{Eigenvalues, StatsRecord, StatsSender};
pub use view::{HeardView, ViewKind, ViewSender};

use crate::circuits::CircuitError;
use crate::framing::StftError;
use crate::whitener::WhitenerKind;
use channels::ChannelsCore;
use emit::StatsEmitter;
use kernels::energy;
use key::{finite_energy, Key};
use mix::{BlockContext, Changes, Crossfade};
use nalgebra::Complex;
use serde::Serialize;
use shaping::DeltaFade;
use spectral::SpectralCore;

/// Errors building or reconfiguring an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A parameter is outside its range (docs/DESIGN.md §11).
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    /// Parameters that are invalid for another reason (channel count, sample rate, shape).
    #[error("{0}")]
    InvalidParameter(String),
    /// A circuit rejected its parameters.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The STFT rejected its parameters.
    #[error(transparent)]
    Stft(#[from] StftError),
}

/// The framing's state: the only place that knows which framing runs. Everything else
/// reaches the races through [`Core::race`] / [`Core::race_mut`].
enum Core {
    Channels(Box<ChannelsCore>),
    Spectral(Box<SpectralCore>),
}

impl Core {
    /// Races: one in the channels framing, one per band in the spectral framing.
    fn race_count(&self) -> usize {
        match self {
            Core::Channels(_) => 1,
            Core::Spectral(s) => s.races.len(),
        }
    }

    /// Race `i` (`i < race_count()`).
    fn race(&self, i: usize) -> &dyn AnyRace {
        match self {
            Core::Channels(c) => &c.race,
            Core::Spectral(s) => &s.races[i],
        }
    }

    /// Race `i`, mutable.
    fn race_mut(&mut self, i: usize) -> &mut dyn AnyRace {
        match self {
            Core::Channels(c) => &mut c.race,
            Core::Spectral(s) => &mut s.races[i],
        }
    }

    /// The weight of race `i` in aggregates over races: its share of the spectrum's bins in
    /// the spectral framing (1 in the channels framing). A band of few bins estimates its
    /// output covariance from few samples, so its error estimate is mostly sampling noise;
    /// weighting by bins makes the aggregate the error averaged over frequency.
    fn race_weight(&self, i: usize) -> f64 {
        match self {
            Core::Channels(_) => 1.0,
            Core::Spectral(s) => s.band_weight(i),
        }
    }

    /// Apply `f` to every race.
    fn each_race(&mut self, mut f: impl FnMut(&mut dyn AnyRace)) {
        (0..self.race_count()).for_each(|i| f(self.race_mut(i)))
    }

    /// Apply `f` to every race, stopping at the first error.
    fn try_each_race<E>(
        &mut self,
        mut f: impl FnMut(&mut dyn AnyRace) -> Result<(), E>,
    ) -> Result<(), E> {
        (0..self.race_count()).try_for_each(|i| f(self.race_mut(i)))
    }

    /// Framing updates (learning blocks or frames) one learning update of race `i` spans: a
    /// narrow spectral band learns once per several frames (docs/DESIGN.md §3.2).
    fn updates_span(&self, i: usize) -> usize {
        match self {
            Core::Channels(_) => 1,
            Core::Spectral(s) => s.updates_span(i),
        }
    }

    /// Input vectors per learning update (η per update = η per vector × this).
    fn vectors_per_update(&self) -> usize {
        match self {
            Core::Channels(c) => c.learn_interval,
            Core::Spectral(s) => s.learn_frames(),
        }
    }

    /// Latency in samples: 0 for channels, N for spectral.
    fn latency_samples(&self) -> usize {
        match self {
            Core::Channels(_) => 0,
            Core::Spectral(s) => s.stft.latency_samples(),
        }
    }

    /// Forget the signal history (STFT buffers, a partial learning block).
    fn reset_audio(&mut self) {
        match self {
            Core::Channels(c) => c.reset_audio(),
            Core::Spectral(s) => s.reset_audio(),
        }
    }

    /// A host call of `frames` frames begins: it pays for this much of any learning update
    /// that is spread over host blocks (docs/DESIGN.md §4.6).
    fn begin_call(&mut self, frames: usize) {
        if let Core::Channels(c) = self {
            c.begin_call(frames);
        }
    }

    /// Apply new shaping (docs/DESIGN.md §3.7): the spectral framing's band gains and limits.
    fn set_shaping(&mut self, shaping: &Shaping, sample_rate: f64) {
        if let Core::Spectral(s) = self {
            s.set_shaping(shaping, sample_rate);
        }
    }

    /// What the heard whitener does (`scale`: input to wet output amplitude, `g/a_ref`).
    fn fill_view(&self, selected: WhitenerKind, depth: f64, scale: f64, view: &mut HeardView) {
        match self {
            Core::Channels(c) => c.fill_view(selected, depth, scale, view),
            Core::Spectral(s) => s.fill_view(selected, depth, scale, view),
        }
    }

    /// Whiten `buffers[c][start..end]`, learning from it or from `key`. Returns the output's
    /// peak `max |y|` (NaN ignored) for the limiter, with every subnormal output sample
    /// replaced by 0: under FTZ/DAZ arithmetic makes none, but dry and untouched paths copy
    /// input samples, which may be subnormal, and none may reach the output
    /// (docs/DESIGN.md §7). The channels framing does this in the pass that mixes its output.
    fn process(
        &mut self,
        ctx: &mut BlockContext<'_>,
        buffers: &mut [&mut [f32]],
        key: Key<'_>,
        start: usize,
        end: usize,
    ) -> f32 {
        match self {
            Core::Channels(c) => c.process(ctx, buffers, key, start, end),
            Core::Spectral(s) => {
                s.process(ctx, buffers, key, start, end);
                buffers
                    .iter_mut()
                    .map(|b| flush_subnormals_peak(&mut b[start..end]))
                    .fold(0.0f32, f32::max)
            }
        }
    }
}

/// Running counters a host or the CLI can read after processing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineCounters {
    /// Input samples (of the main input or a sidechain key) that were NaN or ±∞ and were
    /// treated as 0.
    pub non_finite_inputs: u64,
    /// Whitener states reset after becoming non-finite or non-positive-definite.
    pub state_resets: u64,
    /// Stats records dropped because the channel was full.
    pub stats_dropped: u64,
    /// Stats records sent.
    pub stats_sent: u64,
    /// Changes of input statistics detected.
    pub changes_detected: u64,
    /// Learning updates (blocks or frames, per race) so far.
    pub updates: u64,
    /// Sub-steps the block integrator took (docs/DESIGN.md §4); per update and circuit this is
    /// 1 at rest and grows with the log of a change's size.
    pub substeps: u64,
    /// Direct-circuit steps floored at the noise floor instead of leaving the positive-definite
    /// cone (a safeguard that keeps learning; docs/DESIGN.md §4).
    pub floored_steps: u64,
    /// Blocks whose integration hit the sub-step guard (time lost; expected to stay 0).
    pub capped_blocks: u64,
    /// Circuit updates merged into an unfinished one: learning spread over host blocks fell
    /// behind by a block and caught up (docs/DESIGN.md §4.6).
    pub merged_updates: u64,
}

/// The whole effect for a fixed channel count and sample rate.
pub struct Engine {
    /// The parameters in force.
    params: EngineParams,
    /// Channels `n`, fixed at construction.
    channels: usize,
    /// Sample rate, Hz, fixed at construction.
    sample_rate: f64,
    /// The framing and its races.
    core: Core,
    /// Output safety: keeps every sample within ±1.
    limiter: SafetyLimiter,
    /// Input amplitude scaling `1/reference`.
    in_scale: f64,
    /// Output amplitude `10^(output_db/20)`.
    out_gain: f64,
    /// The crossfade after a change of the heard whitener.
    fade: Option<Crossfade>,
    /// Progress of a crossfade per input vector.
    fade_step: f64,
    /// The fade in and out of delta listening.
    delta: DeltaFade,
    /// The change detector on the input statistics, and what it found.
    detector: ChangeDetector,
    /// Changes found, pending for the next stats record.
    changes: Changes,
    /// Stats records.
    emitter: StatsEmitter,
    /// Samples processed since construction (the stats clock).
    samples_processed: u64,
    /// Non-finite input samples replaced by 0.
    non_finite_inputs: u64,
    /// Interleaved-frame scratch for the limiter.
    frame: [f32; MAX_CHANNELS],
    /// Where views of the heard whitener go (`None`: nobody looks).
    view_sender: Option<ViewSender>,
    /// The view being made (boxed: a few kB, built in place).
    view: Box<HeardView>,
    /// Stats records until the next view.
    view_countdown: u32,
}

/// η per update for updates every `vectors` input vectors at `vector_rate` and time constant
/// `tau_ms` (docs/DESIGN.md §4), capped at [`MAX_BLOCK_ETA`] (validation keeps τ where the
/// cap does not bind).
fn block_eta(vectors: usize, tau_ms: f64, vector_rate: f64) -> f64 {
    (vectors as f64 * params::eta_for_tau_ms(tau_ms, vector_rate)).min(MAX_BLOCK_ETA)
}

/// Exponential smoothing factor for updates `dt` seconds apart and a time constant of
/// `window_ms`.
fn smoothing(dt: f64, window_ms: f64) -> f64 {
    -(-dt / (window_ms * 1e-3)).exp_m1()
}

impl Engine {
    /// Build an engine for `channels` (1–16) at `sample_rate`. Allocates everything.
    pub fn new(
        channels: usize,
        sample_rate: f64,
        params: EngineParams,
    ) -> Result<Self, EngineError> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(EngineError::InvalidParameter(format!(
                "{channels} channels: the engine supports 1 to {MAX_CHANNELS}"
            )));
        }
        // Any positive finite rate: what depends on it is capped in the range table's
        // functions (learning block, FFT size, adaptation time; docs/DESIGN.md §11).
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(EngineError::InvalidParameter(format!(
                "sample rate {sample_rate} Hz: it must be positive and finite"
            )));
        }
        params.validate(channels, sample_rate)?;
        let in_scale = 1.0 / db_to_amp(params.reference_db);
        let floor = db_to_amp(params.noise_floor_db) * in_scale;
        // At least as many interneurons as channels (`M = W Wᴴ` needs `k ≥ n`).
        let k = params.interneurons.max(channels);
        let vector_rate = params.vector_rate(sample_rate);
        let per_update =
            params::vectors_per_update(params.framing, channels, params.fft_size, sample_rate);
        let settings = RaceSettings {
            eta: block_eta(per_update, params.tau_ms, vector_rate),
            interneurons: k,
            init_scale: params.init_scale,
            floor,
            error_alpha: smoothing(per_update as f64 / vector_rate, ERROR_WINDOW_MS),
        };
        let mut core = match params.framing {
            Framing::Channels => Core::Channels(Box::new(ChannelsCore::new(
                channels, per_update, &settings,
            )?)),
            Framing::Spectral => Core::Spectral(Box::new(SpectralCore::new(
                channels,
                params.fft_size,
                params.bands,
                per_update,
                &settings,
            )?)),
        };
        core.set_shaping(&params.shaping, sample_rate);
        let detector_dim = match &core {
            Core::Channels(_) => channels,
            Core::Spectral(s) => s.num_bands(),
        };
        Ok(Self {
            in_scale,
            out_gain: db_to_amp(params.output_db),
            fade: None,
            fade_step: 1.0 / (CROSSFADE_MS * 1e-3 * vector_rate).max(1.0),
            delta: DeltaFade::new(vector_rate, params.shaping.delta),
            detector: ChangeDetector::new(detector_dim, floor * floor),
            changes: Changes::default(),
            emitter: StatsEmitter::new(sample_rate),
            samples_processed: 0,
            non_finite_inputs: 0,
            frame: [0.0; MAX_CHANNELS],
            view_sender: None,
            view: Box::default(),
            view_countdown: 0,
            limiter: SafetyLimiter::new(sample_rate as f32, 50.0),
            channels,
            sample_rate,
            core,
            params,
        })
    }

    /// Send one stats record per whitener every ~10 ms on this channel (never blocking).
    pub fn set_stats_sender(&mut self, sender: Option<StatsSender>) {
        self.emitter.set_sender(sender);
    }

    /// Send a [`HeardView`] every [`view::VIEW_INTERVAL_MS`] on this channel while stats are
    /// enabled (never blocking).
    pub fn set_view_sender(&mut self, sender: Option<ViewSender>) {
        self.view_sender = sender;
    }

    /// Compute and send stats records (default) or skip all stats work, e.g. while no
    /// monitor is open. No allocation; the audio output does not depend on it.
    pub fn set_stats_enabled(&mut self, enabled: bool) {
        self.emitter.enabled = enabled;
    }

    /// Change the reference level and the noise floor (dBFS) without rebuilding: the learned
    /// state is kept, so the circuits readapt from where they are to the newly scaled input —
    /// the scale dependence of docs/DESIGN.md §2, live. No allocation.
    pub fn set_levels(
        &mut self,
        reference_db: f64,
        noise_floor_db: f64,
    ) -> Result<(), EngineError> {
        let mut p = self.params.clone();
        p.reference_db = reference_db;
        p.noise_floor_db = noise_floor_db;
        p.validate_levels()?;
        self.params.reference_db = reference_db;
        self.params.noise_floor_db = noise_floor_db;
        self.in_scale = 1.0 / db_to_amp(reference_db);
        let floor = db_to_amp(noise_floor_db) * self.in_scale;
        self.core.each_race(|r| r.set_floor(floor));
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
        self.core.latency_samples()
    }

    /// Counters so far.
    pub fn counters(&self) -> EngineCounters {
        let state_resets = (0..self.core.race_count())
            .map(|i| {
                let race = self.core.race(i);
                WhitenerKind::ALL
                    .iter()
                    .map(|k| race.resets(*k))
                    .sum::<u64>()
            })
            .sum();
        let mut integ = integrate::IntegratorCounters::default();
        for i in 0..self.core.race_count() {
            let c = self.core.race(i).integrator_counters();
            integ.substeps += c.substeps;
            integ.floored += c.floored;
            integ.capped += c.capped;
            integ.updates += c.updates;
            integ.merged += c.merged;
        }
        EngineCounters {
            updates: integ.updates,
            substeps: integ.substeps,
            floored_steps: integ.floored,
            capped_blocks: integ.capped,
            merged_updates: integ.merged,
            non_finite_inputs: self.non_finite_inputs,
            state_resets,
            stats_dropped: self.emitter.dropped,
            stats_sent: self.emitter.sent,
            changes_detected: self.changes.total,
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

    /// The adaptation times (ms) this engine delivers (docs/DESIGN.md §11).
    pub fn tau_ms_range(&self) -> (f64, f64) {
        self.params.tau_ms_range(self.channels, self.sample_rate)
    }

    /// Change the adaptation time constant (no allocation).
    pub fn set_tau_ms(&mut self, tau_ms: f64) -> Result<(), EngineError> {
        let (lo, hi) = self.tau_ms_range();
        params::TAU_MS.check_within(tau_ms, lo, hi)?;
        self.params.tau_ms = tau_ms;
        let eta = block_eta(
            self.core.vectors_per_update(),
            tau_ms,
            self.params.vector_rate(self.sample_rate),
        );
        for i in 0..self.core.race_count() {
            let k = self.core.updates_span(i) as f64;
            self.core.race_mut(i).set_eta(eta * k)?;
        }
        Ok(())
    }

    /// Change output level (dBFS) and dry/wet (0..1); values are clamped to their ranges.
    pub fn set_output(&mut self, output_db: f64, dry_wet: f64) {
        if output_db.is_finite() {
            self.params.output_db = params::OUTPUT_DB.clamp(output_db);
            self.out_gain = db_to_amp(self.params.output_db);
        }
        if dry_wet.is_finite() {
            self.params.dry_wet = params::DRY_WET.clamp(dry_wet);
        }
    }

    /// Change how the whitening is heard — depth, delta, tilt, limits (docs/DESIGN.md §3.7);
    /// values are clamped to their ranges. What the circuits learn is unaffected. Delta fades
    /// over [`shaping::DELTA_FADE_MS`]; the rest applies from the next learning update or STFT
    /// frame. No allocation.
    pub fn set_shaping(&mut self, shaping: Shaping) {
        let shaping = shaping.clamped();
        if shaping == self.params.shaping {
            return;
        }
        self.delta.target = if shaping.delta { 1.0 } else { 0.0 };
        // Depth and delta are read per block; only tilt and limits reshape the bands (and the
        // plugin moves depth every host block while its smoother ramps).
        let old = &self.params.shaping;
        if (
            shaping.tilt_db_per_octave,
            shaping.low_limit_hz,
            shaping.high_limit_hz,
        ) != (old.tilt_db_per_octave, old.low_limit_hz, old.high_limit_hz)
        {
            self.core.set_shaping(&shaping, self.sample_rate);
        }
        self.params.shaping = shaping;
    }

    /// Freeze or resume learning.
    pub fn set_learning(&mut self, learning: bool) {
        self.params.learning = learning;
    }

    /// Re-initialise every whitener at scale `s` — the paper's experiment, live.
    pub fn reinitialise(&mut self, scale: f64) -> Result<(), EngineError> {
        self.core.try_each_race(|r| r.reinitialise(scale))?;
        self.params.init_scale = scale;
        self.changes.reinit_pending = true;
        Ok(())
    }

    /// Clear the signal history (STFT buffers, limiter); the learned state is kept.
    pub fn reset_audio(&mut self) {
        self.limiter.reset();
        self.core.reset_audio();
    }

    /// Process one block in place: `buffers` holds one slice per channel, all the same length
    /// (any length). Never allocates, locks, blocks or panics on any input values.
    pub fn process(&mut self, buffers: &mut [&mut [f32]]) {
        self.run(buffers, None);
    }

    /// Sidechain learning (docs/DESIGN.md §3.8): process one block in place like
    /// [`Engine::process`], but learn from `key` — the outer products, the change detector
    /// and the stats' input level are the key's; the responses `r = P x` are applied to the
    /// main input. `key` has one slice per channel of the main input. A key of another channel
    /// count is silence, and so is the part of a key shorter than the main block: the
    /// whiteners learn nothing from silence and keep whitening with what they learned. No
    /// allocation, locks or panics.
    pub fn process_keyed(&mut self, buffers: &mut [&mut [f32]], key: &[&[f32]]) {
        self.run(buffers, Some(key));
    }

    /// [`Engine::process`] (`key` = `None`) or [`Engine::process_keyed`].
    fn run(&mut self, buffers: &mut [&mut [f32]], key: Option<&[&[f32]]>) {
        let _denormals = DenormalGuard::new();
        if buffers.len() != self.channels {
            // A host handing the wrong layout gets silence rather than a panic.
            for b in buffers.iter_mut() {
                b.fill(0.0);
            }
            return;
        }
        let len = buffers.iter().map(|b| b.len()).min().unwrap_or(0);
        // Samples of the block the key covers; beyond them the key is silence.
        let key_len = match key {
            Some(k) if k.len() == self.channels => k.iter().map(|c| c.len()).min().unwrap_or(0),
            _ => 0,
        };
        self.core.begin_call(len);
        let mut start = 0;
        while start < len {
            let mut chunk = (len - start).min(self.emitter.countdown);
            let source = match key {
                None => Key::Own,
                Some(k) if start < key_len => {
                    chunk = chunk.min(key_len - start);
                    Key::Signal(k)
                }
                Some(_) => Key::Silence,
            };
            self.process_chunk(buffers, source, start, start + chunk);
            start += chunk;
            self.samples_processed += chunk as u64;
            self.emitter.countdown -= chunk;
            if self.emitter.countdown == 0 {
                self.emitter.countdown = self.emitter.interval;
                let change = std::mem::take(&mut self.changes.pending);
                let reinit = std::mem::take(&mut self.changes.reinit_pending);
                let time_s = self.samples_processed as f64 / self.sample_rate;
                self.emitter
                    .emit(&mut self.core, self.params.selected, time_s, change, reinit);
                self.send_view(time_s);
            }
        }
    }

    /// Every few stats records, the view of the heard whitener (only while stats are on and
    /// someone listens).
    fn send_view(&mut self, time_s: f64) {
        let Some(tx) = self.view_sender.as_ref().filter(|_| self.emitter.enabled) else {
            return;
        };
        if self.view_countdown > 0 {
            self.view_countdown -= 1;
            return;
        }
        self.view_countdown = (view::VIEW_INTERVAL_MS / STATS_INTERVAL_MS).round() as u32 - 1;
        let view = &mut *self.view;
        view.time_s = time_s;
        view.selected = self.params.selected;
        let scale = self.out_gain * self.in_scale;
        self.core
            .fill_view(self.params.selected, self.params.shaping.depth, scale, view);
        tx.try_send(view);
    }

    /// One chunk within a stats interval: sanitise, measure, whiten and learn, limit.
    fn process_chunk(
        &mut self,
        buffers: &mut [&mut [f32]],
        key: Key<'_>,
        start: usize,
        end: usize,
    ) {
        // Sanitise: non-finite samples become 0 and are counted; measure the input level.
        // One pass when all is well: a non-finite sample makes the energy non-finite (so does
        // a square overflowing f32, which the second look finds harmless).
        let keyed = key.is_keyed();
        for b in buffers.iter_mut() {
            let seg = &mut b[start..end];
            let e = energy(seg);
            if !e.is_finite() {
                for v in seg.iter_mut().filter(|v| !v.is_finite()) {
                    *v = 0.0;
                    self.non_finite_inputs += 1;
                }
                if !keyed {
                    self.emitter.measure(seg);
                }
            } else if !keyed {
                self.emitter.add_energy(e, seg.len());
            }
        }
        self.measure_key(key, start, end);
        let mut ctx = BlockContext {
            sample_rate: self.sample_rate,
            in_scale: self.in_scale,
            out_gain: self.out_gain,
            wet: self.params.dry_wet,
            selected: self.params.selected,
            depth: self.params.shaping.depth,
            delta: &mut self.delta,
            learning: self.params.learning,
            fade: &mut self.fade,
            detector: &mut self.detector,
            changes: &mut self.changes,
        };
        // The output comes back with no subnormal sample and its peak, which the limiter
        // needs; the limiter's own products are flushed by FTZ.
        let peak = self.core.process(&mut ctx, buffers, key, start, end);
        self.limit(buffers, start, end, peak);
    }

    /// With a key, the stats' input level is the key's — the level of what the whiteners
    /// learn from, which is what the reference level and the noise floor are set against.
    /// Non-finite key samples count as non-finite inputs (the cores read them as 0).
    fn measure_key(&mut self, key: Key<'_>, start: usize, end: usize) {
        match key {
            Key::Own => {}
            Key::Signal(k) => {
                for c in k {
                    let seg = &c[start..end];
                    let e = energy(seg);
                    if e.is_finite() {
                        self.emitter.add_energy(e, seg.len());
                    } else {
                        let (e, bad) = finite_energy(seg);
                        self.non_finite_inputs += bad;
                        self.emitter.add_energy(e, seg.len());
                    }
                }
            }
            Key::Silence => {
                for _ in 0..self.channels {
                    self.emitter.add_energy(0.0, end - start);
                }
            }
        }
    }

    /// Output safety: the limiter guarantees |y| ≤ 1. When it is idle and nothing in the
    /// chunk (of the given peak) would clip, it would change nothing: skip the per-frame pass.
    fn limit(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize, peak: f32) {
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
        // Where FTZ is not available the limiter's gain could make a subnormal.
        for b in buffers.iter_mut() {
            flush_subnormals(&mut b[start..end]);
        }
    }
}
