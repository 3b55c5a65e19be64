//! The CLAP/VST3 plugin and the standalone (DESIGN.md §1): thin glue between nice-plug and the
//! [`Engine`], which does all the signal processing.
//!
//! What the glue adds to the engine:
//!
//! * **Parameters** ([`params`]) mapped onto the engine's real-time setters.
//! * **Structural changes without allocating on the audio thread.** Framing, FFT size, bands
//!   and interneurons are fixed when an [`Engine`] is built. When one of them changes,
//!   `process` asks nice-plug's background thread to build a new engine ([`Task::Build`]);
//!   the finished engine comes back over a bounded lock-free channel that `process` polls
//!   with `try_recv`. The new engine replaces the old one with a 20 ms
//!   crossfade (both run during the fade, on preallocated scratch buffers), the old one is sent
//!   back over a second bounded channel and dropped on the background thread
//!   ([`Task::Collect`]), and the new latency is reported to the host. A request superseded by
//!   a newer one is skipped by the builder, so dragging a knob does not queue builds.
//!   The reference level and the noise floor are *not* structural: they are applied live with
//!   [`Engine::set_levels`], so turning them keeps what the circuits have learned (a rebuild
//!   would restart them and hide the very scale dependence the reference level shows).
//! * **Stats for the editor.** One bounded stats channel is created with the plugin; every
//!   engine (including rebuilt ones) sends its [`StatsRecord`]s into it with `try_send`, and
//!   the editor drains it on the GUI thread. The engine's stats work is switched on only while
//!   an editor window is open (a flag the editor sets and clears), checked once per block.
//! * **Bypass** that is latency-compensated and click-free: a 20 ms crossfade to the dry input
//!   delayed by the current latency, from a preallocated delay line.
//! * **Containment**: `process` never allocates (checked by nice-plug's
//!   `assert_process_allocs` in the test bundle), and a panic inside it is caught, so it can
//!   never unwind into a host; the plugin then outputs silence until it is re-activated.

pub mod editor;
pub mod editor_size;
pub mod learned;
pub mod params;

pub use params::WhiteningParams;

use crate::engine::{Engine, EngineParams, Framing, StatsRecord, StatsSender, MAX_CHANNELS};
use crossbeam_channel::{bounded, Receiver, Sender};
use editor::{EditorShared, WhiteningEditor};
use nice_plug::prelude::*;
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Length of the bypass crossfade and of the crossfade between engines after a rebuild.
pub const FADE_MS: f32 = 20.0;
/// Samples per sub-block: the smoothed output level and dry/wet are advanced and handed to the
/// engine once per sub-block (0.7 ms at 48 kHz), fine enough that their ramps do not zipper.
const SUB_BLOCK: usize = 32;
/// Capacity of the dry delay line per channel: a power of two above the largest latency
/// (the largest FFT size, 8192).
const DELAY_CAPACITY: usize = 16_384;
/// A requested engine that has not arrived after this long is requested again (nice-plug's
/// background queue drops tasks when it is full).
const REQUEST_TIMEOUT_S: f64 = 2.0;
/// Capacity of the channel carrying built engines to the audio thread.
const FRESH_CAPACITY: usize = 4;
/// Capacity of the channel carrying retired engines away from the audio thread. `process`
/// only takes a new engine when two slots are free (for a stale engine and a retired one), so
/// an engine is never dropped on the audio thread.
const GARBAGE_CAPACITY: usize = 8;
/// Capacity of the stats channel: 3 records per 10 ms, so ~13 s of records if the editor
/// stalls; beyond that records are dropped (counted by the engine), never blocking.
const STATS_CAPACITY: usize = 4096;

const fn layout(channels: u32) -> AudioIOLayout {
    AudioIOLayout {
        main_input_channels: NonZeroU32::new(channels),
        main_output_channels: NonZeroU32::new(channels),
        ..AudioIOLayout::const_default()
    }
}

/// The parameters that are fixed when an engine is built. (The reference level and the noise
/// floor are not: see [`Engine::set_levels`].)
#[derive(Clone, Copy, Debug, PartialEq)]
struct Structure {
    framing: Framing,
    fft_size: usize,
    bands: usize,
    interneurons: usize,
}

impl Structure {
    fn of(p: &EngineParams) -> Self {
        Self {
            framing: p.framing,
            fft_size: p.fft_size,
            bands: p.bands,
            interneurons: p.interneurons,
        }
    }
}

/// Work done off the audio thread. Plain data: creating and sending a task never allocates.
pub enum Task {
    /// Build an engine and send it to the audio thread.
    Build(BuildRequest),
    /// Drop the engines the audio thread has retired.
    Collect,
}

/// What to build, tagged with the generation that identifies the newest request.
pub struct BuildRequest {
    generation: u64,
    channels: usize,
    sample_rate: f64,
    params: EngineParams,
    /// Start from the learned state the host loaded (instead of the initial scale).
    restore: bool,
}

/// An engine built for request `generation`, or `None` if building failed (logged).
struct Built {
    generation: u64,
    engine: Option<Box<Engine>>,
}

/// The lock-free channels between the audio thread and the background thread.
struct Handoff {
    /// Generation of the newest build request; older requests are skipped by the builder.
    latest: AtomicU64,
    fresh_tx: Sender<Built>,
    fresh_rx: Receiver<Built>,
    garbage_tx: Sender<Box<Engine>>,
    garbage_rx: Receiver<Box<Engine>>,
}

impl Handoff {
    fn new() -> Self {
        let (fresh_tx, fresh_rx) = bounded(FRESH_CAPACITY);
        let (garbage_tx, garbage_rx) = bounded(GARBAGE_CAPACITY);
        Self {
            latest: AtomicU64::new(0),
            fresh_tx,
            fresh_rx,
            garbage_tx,
            garbage_rx,
        }
    }

    /// Drop everything in flight (main or background thread only).
    fn drain(&self) {
        while self.fresh_rx.try_recv().is_ok() {}
        while self.garbage_rx.try_recv().is_ok() {}
    }

    /// Whether the garbage channel can take `n` more engines.
    fn garbage_room(&self, n: usize) -> bool {
        self.garbage_tx.len() + n <= GARBAGE_CAPACITY
    }
}

/// A build request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    generation: u64,
    structure: Structure,
    /// Samples processed since the request was sent.
    age: u64,
    /// Whether the engine is to start from the loaded learned state.
    restore: bool,
}

/// Per-channel ring buffers delaying the dry input by the current latency.
struct DryDelay {
    ring: Vec<f32>,
    write: usize,
}

impl DryDelay {
    fn new(channels: usize) -> Self {
        Self {
            ring: vec![0.0; channels * DELAY_CAPACITY],
            write: 0,
        }
    }

    /// Push `input[c][start..end]` and read the signal `delay` samples earlier into `out[c]`.
    fn process(
        &mut self,
        input: &[&mut [f32]],
        start: usize,
        end: usize,
        delay: usize,
        out: &mut [Vec<f32>],
    ) {
        const MASK: usize = DELAY_CAPACITY - 1;
        let delay = delay.min(DELAY_CAPACITY - 1);
        for ((ch, ring), o) in input
            .iter()
            .zip(self.ring.chunks_exact_mut(DELAY_CAPACITY))
            .zip(out.iter_mut())
        {
            let mut w = self.write;
            for (x, y) in ch[start..end].iter().zip(o.iter_mut()) {
                ring[w & MASK] = *x;
                *y = ring[w.wrapping_sub(delay) & MASK];
                w = w.wrapping_add(1);
            }
        }
        self.write = (self.write + (end - start)) & MASK;
    }

    fn clear(&mut self) {
        self.ring.fill(0.0);
    }
}

/// Everything that exists between `activate` and the next `activate`.
struct Active {
    channels: usize,
    sample_rate: f32,
    engine: Box<Engine>,
    /// The structure `engine` was built with.
    structure: Structure,
    /// The previous engine, fading out after a rebuild.
    old: Option<Box<Engine>>,
    /// Progress 0..1 of the crossfade from `old` to `engine`.
    swap_pos: f32,
    /// Crossfade progress per sample (bypass and swap).
    fade_step: f32,
    /// The old engine's copy of the input, one sub-block per channel.
    old_buf: Vec<Vec<f32>>,
    /// The delayed dry input of the current sub-block.
    dry_buf: Vec<Vec<f32>>,
    dry: DryDelay,
    /// 0 = processed signal, 1 = bypassed (delayed dry).
    bypass_mix: f32,
    pending: Option<Pending>,
    /// A structure whose build failed: not requested again until the parameters change.
    failed: Option<Structure>,
    /// Previous value of the re-initialise trigger, for edge detection.
    reinit_prev: bool,
    /// Set when a panic was caught in `process`: output silence until re-activated.
    poisoned: bool,
    /// Samples until the learned state is published for saving next.
    publish_in: u64,
    /// Host state loads handled (compared with [`learned::LearnedStateField::loads`]).
    loads_seen: u64,
    /// A load not yet turned into a build request.
    restore_wanted: bool,
}

impl Active {
    fn new(channels: usize, sample_rate: f32, engine: Engine, params: &WhiteningParams) -> Self {
        let structure = Structure::of(engine.params());
        Self {
            channels,
            sample_rate,
            engine: Box::new(engine),
            structure,
            old: None,
            swap_pos: 1.0,
            fade_step: 1.0 / (FADE_MS * 1e-3 * sample_rate).max(1.0),
            old_buf: vec![vec![0.0; SUB_BLOCK]; channels],
            dry_buf: vec![vec![0.0; SUB_BLOCK]; channels],
            dry: DryDelay::new(channels),
            bypass_mix: if params.bypass.value() { 1.0 } else { 0.0 },
            pending: None,
            failed: None,
            reinit_prev: params.reinitialise.value(),
            poisoned: false,
            publish_in: 0,
            loads_seen: params.learned.loads(),
            restore_wanted: false,
        }
    }
}

/// The plugin.
pub struct InterneuronWhitening {
    params: Arc<WhiteningParams>,
    handoff: Arc<Handoff>,
    active: Option<Active>,
    /// Given to every engine; sends into the channel the editor drains.
    stats_tx: StatsSender,
    /// Cloned into the editor.
    stats_rx: Receiver<StatsRecord>,
    /// Whether an editor window is open (set by the editor): stats are computed only then.
    editor_open: Arc<AtomicBool>,
    /// Re-initialisations performed, so the editor's button can release the trigger.
    reinitialisations: Arc<AtomicU64>,
}

impl Default for InterneuronWhitening {
    fn default() -> Self {
        let (tx, stats_rx) = bounded(STATS_CAPACITY);
        Self {
            params: Arc::new(WhiteningParams::default()),
            handoff: Arc::new(Handoff::new()),
            active: None,
            stats_tx: StatsSender::new(tx),
            stats_rx,
            editor_open: Arc::new(AtomicBool::new(false)),
            reinitialisations: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Plugin for InterneuronWhitening {
    const NAME: &'static str = "Interneuron Whitening";
    const VENDOR: &'static str = "Interneuron Whitening";
    const URL: &'static str = "";
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Stereo first (the default a host picks), then mono, quad, 5.1, 7.1 and 16 channels.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        layout(2),
        layout(1),
        layout(4),
        layout(6),
        layout(8),
        layout(MAX_CHANNELS as u32),
    ];

    type Editor = WhiteningEditor;
    type SysExMessage = ();
    type BackgroundTask = Task;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        Some(WhiteningEditor::new(EditorShared {
            params: self.params.clone(),
            stats: self.stats_rx.clone(),
            open: self.editor_open.clone(),
            reinitialisations: self.reinitialisations.clone(),
        }))
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let handoff = self.handoff.clone();
        let stats = self.stats_tx.clone();
        let params = self.params.clone();
        Box::new(move |task| match task {
            Task::Build(req) => {
                if handoff.latest.load(Ordering::SeqCst) != req.generation {
                    return; // superseded by a newer request
                }
                let fitted = req.params.fitted_to(req.channels, req.sample_rate);
                let built = catch_unwind(|| Engine::new(req.channels, req.sample_rate, fitted));
                let engine = match built {
                    Ok(Ok(mut engine)) => {
                        engine.set_stats_sender(Some(stats.clone()));
                        if req.restore {
                            restore_into(&mut engine, params.learned.loaded());
                        }
                        params.learned.prepare(&engine);
                        Some(Box::new(engine))
                    }
                    Ok(Err(e)) => {
                        nice_error!("cannot build the whitening engine: {e}");
                        None
                    }
                    Err(_) => {
                        nice_error!("building the whitening engine panicked");
                        None
                    }
                };
                // If the channel is full the engine is dropped here, off the audio thread.
                let _ = handoff.fresh_tx.try_send(Built {
                    generation: req.generation,
                    engine,
                });
            }
            Task::Collect => while handoff.garbage_rx.try_recv().is_ok() {},
        })
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let channels = audio_io_layout
            .main_output_channels
            .map(|c| c.get() as usize)
            .unwrap_or(0);
        let sample_rate = buffer_config.sample_rate;
        let params = self
            .params
            .engine_params()
            .fitted_to(channels, sample_rate as f64);
        // Re-activation with the same configuration (after a latency change, or a host that
        // activates twice) keeps the engine and what it has learned.
        if let Some(a) = &mut self.active {
            if a.channels == channels
                && a.sample_rate == sample_rate
                && a.structure == Structure::of(&params)
                && !a.poisoned
            {
                // A state the host loaded meanwhile is restored now, not by a rebuild.
                let loads = self.params.learned.loads();
                if loads != a.loads_seen {
                    a.loads_seen = loads;
                    restore_into(&mut a.engine, self.params.learned.loaded());
                }
                context.set_latency_samples(a.engine.latency_samples() as u32);
                return true;
            }
        }
        // Anything in flight belongs to the previous configuration.
        self.handoff.latest.fetch_add(1, Ordering::SeqCst);
        self.active = None;
        self.handoff.drain();
        let built = catch_unwind(|| Engine::new(channels, sample_rate as f64, params));
        match built {
            Ok(Ok(mut engine)) => {
                engine.set_stats_sender(Some(self.stats_tx.clone()));
                // A state the host loaded, or what the previous engine learned.
                restore_into(&mut engine, self.params.learned.latest());
                self.params.learned.prepare(&engine);
                context.set_latency_samples(engine.latency_samples() as u32);
                self.active = Some(Active::new(channels, sample_rate, engine, &self.params));
                true
            }
            Ok(Err(e)) => {
                nice_error!("cannot activate: {e}");
                false
            }
            Err(_) => {
                nice_error!("cannot activate: building the engine panicked");
                false
            }
        }
    }

    fn reset(&mut self) {
        let Some(a) = &mut self.active else {
            return;
        };
        a.engine.reset_audio();
        a.dry.clear();
        a.bypass_mix = if self.params.bypass.value() { 1.0 } else { 0.0 };
        // Finish a running crossfade at once; the old engine leaves if there is room.
        if a.old.is_some() && self.handoff.garbage_room(1) {
            if let Some(old) = a.old.take() {
                let _ = self.handoff.garbage_tx.try_send(old);
            }
            a.swap_pos = 1.0;
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let caught = catch_unwind(AssertUnwindSafe(|| self.process_inner(buffer, context)));
        if caught.is_err() {
            if let Some(a) = &mut self.active {
                a.poisoned = true;
            }
            silence(buffer.as_slice());
        }
        // The STFT and the latency-compensating delay hold `latency` samples of signal after
        // the input stops: ask the host not to cut them off.
        match &self.active {
            Some(a) if a.engine.latency_samples() > 0 => {
                ProcessStatus::Tail(a.engine.latency_samples() as u32)
            }
            _ => ProcessStatus::Normal,
        }
    }
}

impl InterneuronWhitening {
    fn process_inner(&mut self, buffer: &mut Buffer, context: &mut impl ProcessContext<Self>) {
        let samples = buffer.samples();
        let buffers = buffer.as_slice();
        let params = &*self.params;
        let handoff = &*self.handoff;
        let stats_on = self.editor_open.load(Ordering::Relaxed);
        let reinitialisations = &*self.reinitialisations;
        let Some(a) = &mut self.active else {
            silence(buffers);
            return;
        };
        if a.poisoned || buffers.len() != a.channels {
            silence(buffers);
            return;
        }
        let wanted = params.engine_params();

        // 1. A finished engine: swap it in, or discard it if it is stale.
        if handoff.garbage_room(2) {
            if let Ok(built) = handoff.fresh_rx.try_recv() {
                let current = a.pending.filter(|p| p.generation == built.generation);
                match (current, built.engine) {
                    (Some(p), Some(engine)) => {
                        a.pending = None;
                        if let Some(old) = a.old.take() {
                            let _ = handoff.garbage_tx.try_send(old);
                            context.execute_background(Task::Collect);
                        }
                        let old = std::mem::replace(&mut a.engine, engine);
                        if old.latency_samples() != a.engine.latency_samples() {
                            context.set_latency_samples(a.engine.latency_samples() as u32);
                        }
                        // Only the engine heard from now on reports stats: two clocks in one
                        // channel would make the monitor start over every record.
                        let mut old = old;
                        old.set_stats_enabled(false);
                        a.old = Some(old);
                        a.swap_pos = 0.0;
                        a.structure = p.structure;
                    }
                    (Some(p), None) => {
                        a.pending = None;
                        a.failed = Some(p.structure);
                    }
                    (None, Some(stale)) => {
                        let _ = handoff.garbage_tx.try_send(stale);
                        context.execute_background(Task::Collect);
                    }
                    (None, None) => {}
                }
            }
        }

        // 2. Structural parameters changed, or the host loaded a learned state: request an
        //    engine (once per change).
        let loads = params.learned.loads();
        if loads != a.loads_seen {
            a.loads_seen = loads;
            a.restore_wanted = true;
        }
        let want = Structure::of(&wanted);
        if want == a.structure && !a.restore_wanted && !a.pending.is_some_and(|p| p.restore) {
            if a.pending.take().is_some() {
                handoff.latest.fetch_add(1, Ordering::SeqCst);
            }
            a.failed = None;
        } else if a.failed != Some(want) || a.restore_wanted {
            a.failed = None;
            let timeout = (REQUEST_TIMEOUT_S * a.sample_rate as f64) as u64;
            let (send, generation) = match a.pending {
                _ if a.restore_wanted => (true, handoff.latest.fetch_add(1, Ordering::SeqCst) + 1),
                Some(p) if p.structure == want && p.age < timeout => (false, p.generation),
                // The request may have been dropped: send it again under the same generation,
                // so a slow build still in progress is not superseded (faster-than-real-time
                // rendering would otherwise starve it); whichever copy arrives first is used.
                Some(p) if p.structure == want => (true, p.generation),
                _ => (true, handoff.latest.fetch_add(1, Ordering::SeqCst) + 1),
            };
            if send {
                let mut build = wanted.clone();
                build.init_scale = params.init_scale();
                let restore = a.restore_wanted || a.pending.is_some_and(|p| p.restore);
                context.execute_background(Task::Build(BuildRequest {
                    generation,
                    channels: a.channels,
                    sample_rate: a.sample_rate as f64,
                    params: build,
                    restore,
                }));
                a.pending = Some(Pending {
                    generation,
                    structure: want,
                    age: 0,
                    restore,
                });
                a.restore_wanted = false;
            }
        }
        if let Some(p) = &mut a.pending {
            p.age += samples as u64;
        }

        // 3. Live parameters.
        let engine = &mut *a.engine;
        engine.set_stats_enabled(stats_on);
        if engine.params().reference_db != wanted.reference_db
            || engine.params().noise_floor_db != wanted.noise_floor_db
        {
            // In range by construction; on error the engine keeps its previous levels.
            let _ = engine.set_levels(wanted.reference_db, wanted.noise_floor_db);
        }
        if engine.params().selected != wanted.selected {
            engine.select(wanted.selected);
        }
        if engine.params().learning != wanted.learning {
            engine.set_learning(wanted.learning);
        }
        let (lo, hi) = engine.tau_ms_range();
        let tau_ms = wanted.tau_ms.clamp(lo, hi);
        if engine.params().tau_ms != tau_ms {
            // In range by construction; on error the engine keeps its previous τ.
            let _ = engine.set_tau_ms(tau_ms);
        }
        let reinit = params.reinitialise.value();
        if reinit && !a.reinit_prev {
            let _ = engine.reinitialise(wanted.init_scale);
            reinitialisations.fetch_add(1, Ordering::Release);
        }
        a.reinit_prev = reinit;

        // 4. Audio, in sub-blocks so smoothed gains reach the engine often.
        let bypass_target = if params.bypass.value() { 1.0 } else { 0.0 };
        let latency = a.engine.latency_samples();
        let n = a.channels;
        let mut start = 0;
        while start < samples {
            let end = (start + SUB_BLOCK).min(samples);
            let len = end - start;
            let out_db = params.output_db.smoothed.next_step(len as u32) as f64;
            let wet = params.dry_wet.smoothed.next_step(len as u32) as f64;
            a.dry.process(buffers, start, end, latency, &mut a.dry_buf);
            if let Some(old) = &mut a.old {
                let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
                for ((slot, buf), src) in chunk.iter_mut().zip(a.old_buf.iter_mut()).zip(&*buffers)
                {
                    buf[..len].copy_from_slice(&src[start..end]);
                    *slot = &mut buf[..len];
                }
                old.set_output(out_db, wet);
                old.process(&mut chunk[..n]);
            }
            {
                let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
                for (slot, b) in chunk.iter_mut().zip(buffers.iter_mut()) {
                    *slot = &mut b[start..end];
                }
                a.engine.set_output(out_db, wet);
                a.engine.process(&mut chunk[..n]);
            }
            if a.old.is_some() {
                let step = a.fade_step;
                for (b, o) in buffers.iter_mut().zip(&a.old_buf) {
                    let mut w = a.swap_pos;
                    for (y, x) in b[start..end].iter_mut().zip(&o[..len]) {
                        w = (w + step).min(1.0);
                        *y = w * *y + (1.0 - w) * x;
                    }
                }
                a.swap_pos = (a.swap_pos + step * len as f32).min(1.0);
                if a.swap_pos >= 1.0 && handoff.garbage_room(1) {
                    if let Some(old) = a.old.take() {
                        let _ = handoff.garbage_tx.try_send(old);
                        context.execute_background(Task::Collect);
                    }
                }
            }
            if a.bypass_mix != bypass_target {
                let step = if bypass_target > a.bypass_mix {
                    a.fade_step
                } else {
                    -a.fade_step
                };
                for (b, d) in buffers.iter_mut().zip(&a.dry_buf) {
                    let mut m = a.bypass_mix;
                    for (y, x) in b[start..end].iter_mut().zip(&d[..len]) {
                        m = (m + step).clamp(0.0, 1.0);
                        *y = (1.0 - m) * *y + m * x;
                    }
                }
                a.bypass_mix = (a.bypass_mix + step * len as f32).clamp(0.0, 1.0);
            } else if a.bypass_mix >= 1.0 {
                for (b, d) in buffers.iter_mut().zip(&a.dry_buf) {
                    b[start..end].copy_from_slice(&d[..len]);
                }
            }
            start = end;
        }

        // 5. About once a second, publish the learned state for the next project save (not
        //    while a requested engine is on its way: it may be the one to save).
        a.publish_in = a.publish_in.saturating_sub(samples as u64);
        if a.publish_in == 0 && a.pending.is_none() {
            a.publish_in = a.sample_rate as u64;
            params.learned.publish(&a.engine);
        }
    }
}

/// Start `engine` from a saved learned state when one fits it (same channels, framing, FFT
/// size, bands, interneurons); otherwise it starts from the initial scale.
fn restore_into(engine: &mut Engine, state: Option<crate::engine::LearnedState>) {
    if let Some(state) = state.filter(|s| s.fits(engine)) {
        if let Err(e) = engine.restore_learned_state(&state) {
            nice_warn!("the saved learned state was not restored: {e}");
        }
    }
}

fn silence(buffers: &mut [&mut [f32]]) {
    for b in buffers.iter_mut() {
        b.fill(0.0);
    }
}

impl ClapPlugin for InterneuronWhitening {
    const CLAP_ID: &'static str = "org.interneuron-whitening.whitening";
    const CLAP_DESCRIPTION: Option<&'static str> = Some(
        "Adaptive statistical whitening with recurrent circuits, with and without interneurons",
    );
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Analyzer,
        ClapFeature::Stereo,
        ClapFeature::Surround,
    ];
}

impl Vst3Plugin for InterneuronWhitening {
    const VST3_CLASS_ID: [u8; 16] = *b"IntrnrnWhitening";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[
        Vst3SubCategory::Fx,
        Vst3SubCategory::Analyzer,
        Vst3SubCategory::Spatial,
    ];
}
