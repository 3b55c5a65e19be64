//! The CLAP/VST3 plugin and the standalone (docs/DESIGN.md §1, §8.1): thin glue between
//! nice-plug and the [`Engine`], which does all the signal processing.
//!
//! Rooms:
//!
//! * this file — the `Plugin`, `ClapPlugin` and `Vst3Plugin` impls: activation, reset and a
//!   `process` that runs a short sequence of steps over the types below;
//! * [`params`] — what a host automates and saves (docs/DESIGN.md §11);
//! * [`swap`] — the engine swap after a structural change, host-free: build requests by
//!   generation, the handoff and garbage channels, the crossfade between engines;
//! * [`bypass`] — the latency-compensating dry delay and the bypass crossfade;
//! * [`learned`] — the learned state saved with a project;
//! * [`editor`] (over [`editor_size`]) — the egui editor.
//!
//! **Threads** (docs/DESIGN.md §8.1). The host's audio thread runs `process`, which owns the
//! engine, the engine fading out, the dry delay and both fades, and never allocates, locks or
//! blocks (checked by nice-plug's `assert_process_allocs` in the test bundle); a panic inside
//! it is caught, so it never unwinds into a host, and the plugin then outputs silence until it
//! is re-activated. Engines are built and dropped on nice-plug's background thread ([`Task`]),
//! reached only through bounded lock-free channels. The reference level and the noise floor
//! are *not* structural: they are applied live with [`Engine::set_levels`], so turning them
//! keeps what the circuits have learned (a rebuild would restart them and hide the very scale
//! dependence the reference level shows). Stats go from every engine into one bounded channel
//! that the editor drains on the GUI thread; the engine computes them only while an editor
//! window is open (a flag the editor sets and clears, checked once per block). Activation and
//! the learned state's save and load run on the main thread.

pub mod bypass;
pub mod editor;
pub mod editor_size;
pub mod learned;
pub mod params;
pub mod swap;

pub use params::WhiteningParams;

use crate::engine::{
    DenormalGuard, Engine, EngineError, EngineParams, HeardView, LearnedState, StatsRecord,
    StatsSender, ViewSender, MAX_CHANNELS,
};
use bypass::Bypass;
use crossbeam_channel::{bounded, Receiver};
use editor::{EditorShared, WhiteningEditor};
use learned::LearnedStateField;
use nice_plug::prelude::*;
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use swap::{Background, BuildRequest, EngineSwap, Handoff, LatencyChanges, Requested, Structure};

/// Length of the bypass crossfade and of the crossfade between engines after a rebuild.
pub const FADE_MS: f32 = 20.0;
/// Samples per sub-block: the smoothed output level and dry/wet are advanced and handed to the
/// engine once per sub-block (0.7 ms at 48 kHz), fine enough that their ramps do not zipper.
const SUB_BLOCK: usize = 32;
/// Capacity of the stats channel: 3 records per 10 ms, so ~13 s of records if the editor
/// stalls; beyond that records are dropped (counted by the engine), never blocking.
const STATS_CAPACITY: usize = 4096;
/// Capacity of the view channel: the editor keeps only the latest view, and a view is a few
/// kB, so a short queue (0.4 s at one view per 50 ms) is enough.
const VIEW_CAPACITY: usize = 8;

/// The layout of `$n` channels in and out, with a sidechain input of as many channels: the key
/// of sidechain learning (docs/DESIGN.md §3.8), declared as an auxiliary (non-main) input so
/// that a host which does not connect it still runs the plugin — it then hands the plugin
/// silence there. A macro so that the port list is a `'static` constant.
macro_rules! layout {
    ($n:expr) => {
        AudioIOLayout {
            main_input_channels: NonZeroU32::new($n),
            main_output_channels: NonZeroU32::new($n),
            aux_input_ports: &[new_nonzero_u32($n)],
            names: PortNames {
                aux_inputs: &[SIDECHAIN_PORT],
                ..PortNames::const_default()
            },
            ..AudioIOLayout::const_default()
        }
    };
}

/// The sidechain input's name as hosts show it.
pub const SIDECHAIN_PORT: &str = "Sidechain";

/// Work done on nice-plug's background thread. Plain data: creating and sending a task never
/// allocates.
pub enum Task {
    /// Build an engine and send it to the audio thread.
    Build(BuildRequest),
    /// Drop the engines the audio thread has retired.
    Collect,
}

/// The swap's [`Background`] in a host: nice-plug's background thread, reached through the
/// process context (whose queue hands a task over without allocating). Every task is counted
/// in flight until it has run (see [`InterneuronWhitening::deactivate`]).
struct HostBackground<'a, C>(&'a C, &'a AtomicUsize);

impl<C: ProcessContext<InterneuronWhitening>> HostBackground<'_, C> {
    fn schedule(&self, task: Task) {
        self.1.fetch_add(1, Ordering::AcqRel);
        self.0.execute_background(task);
    }
}

impl<C: ProcessContext<InterneuronWhitening>> Background for HostBackground<'_, C> {
    fn build(&mut self, req: BuildRequest) {
        self.schedule(Task::Build(req));
    }

    fn collect(&mut self) {
        self.schedule(Task::Collect);
    }
}

/// Longest wait in `deactivate` for the background tasks in flight.
const TASKS_DRAIN_S: f64 = 5.0;

/// Counts a background task as finished when dropped (also if the task unwinds).
struct TaskDone<'a>(&'a AtomicUsize);

impl Drop for TaskDone<'_> {
    fn drop(&mut self) {
        // Saturating: `deactivate` zeroes the count after giving up on a lost task.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// Everything that exists between `activate` and the next `activate`.
struct Active {
    /// The engine heard, the one fading out after a rebuild, and the build in flight.
    swap: EngineSwap,
    /// The dry delay and the bypass crossfade.
    bypass: Bypass,
    /// The sample rate activated with, to tell whether a re-activation may keep the engine.
    sample_rate: f32,
    /// Previous value of the re-initialise trigger, for edge detection.
    reinit_prev: bool,
    /// Set when a panic was caught in `process`: output silence until re-activated.
    poisoned: bool,
    /// Samples until the learned state is published for saving next.
    publish_in: u64,
    /// Host state loads handled (compared with [`LearnedStateField::loads`]).
    loads_seen: u64,
}

impl Active {
    fn new(
        sample_rate: f32,
        engine: Engine,
        handoff: &Arc<Handoff>,
        params: &WhiteningParams,
        latency_changes: LatencyChanges,
    ) -> Self {
        let channels = engine.channels();
        let fade_step = 1.0 / (FADE_MS * 1e-3 * sample_rate).max(1.0);
        Self {
            swap: EngineSwap::new(handoff.clone(), engine, SUB_BLOCK, fade_step)
                .with_latency_changes(latency_changes),
            bypass: Bypass::new(channels, SUB_BLOCK, fade_step, params.bypass.value()),
            sample_rate,
            reinit_prev: params.reinitialise.value(),
            poisoned: false,
            publish_in: 0,
            loads_seen: params.learned.loads(),
        }
    }

    /// Whether the host loaded a learned state since the last call.
    fn take_load(&mut self, learned: &LearnedStateField) -> bool {
        let loads = learned.loads();
        let new = loads != self.loads_seen;
        self.loads_seen = loads;
        new
    }

    /// Re-initialise every whitener at `init_scale` on a rising edge of the trigger, and count
    /// it so the editor's button can release the trigger.
    fn reinitialise_on_edge(&mut self, trigger: bool, init_scale: f64, count: &AtomicU64) {
        if trigger && !self.reinit_prev {
            // In range by construction; on error the whiteners keep their state.
            let _ = self.swap.engine_mut().reinitialise(init_scale);
            count.fetch_add(1, Ordering::Release);
        }
        self.reinit_prev = trigger;
    }

    /// The audio of one host block, in sub-blocks so the smoothed gains reach the engine
    /// often: delay the dry input, run the engine(s) in place — learning from `key` if given
    /// (sidechain learning) — apply the bypass.
    fn render(
        &mut self,
        buffers: &mut [&mut [f32]],
        key: Option<&[&[f32]]>,
        samples: usize,
        params: &WhiteningParams,
        bg: &mut impl Background,
    ) {
        let bypassed = params.bypass.value();
        let latency = self.swap.engine().latency_samples();
        let mut start = 0;
        while start < samples {
            let end = (start + SUB_BLOCK).min(samples);
            let len = (end - start) as u32;
            let output_db = params.output_db.smoothed.next_step(len) as f64;
            let wet = params.dry_wet.smoothed.next_step(len) as f64;
            self.bypass.delay_dry(buffers, start, end, latency);
            self.swap
                .process_keyed(buffers, key, start, end, output_db, wet, bg);
            self.bypass.apply(buffers, start, end, bypassed);
            start = end;
        }
    }

    /// About once a second, publish the learned state for the next project save (not while a
    /// requested engine is on its way: it may be the one to save).
    fn publish_learned_state(&mut self, samples: usize, learned: &LearnedStateField) {
        self.publish_in = self.publish_in.saturating_sub(samples as u64);
        if self.publish_in == 0 && !self.swap.is_pending() {
            self.publish_in = self.sample_rate as u64;
            learned.publish(self.swap.engine());
        }
    }
}

/// The plugin.
pub struct InterneuronWhitening {
    /// The parameters, shared with the host wrapper, the editor and the background thread.
    params: Arc<WhiteningParams>,
    /// The engine channels, shared by the audio thread's swap and the background thread.
    handoff: Arc<Handoff>,
    /// The running state; `None` before the first successful activation.
    active: Option<Active>,
    /// Given to every engine; sends into the channel the editor drains.
    stats_tx: StatsSender,
    /// Cloned into the editor.
    stats_rx: Receiver<StatsRecord>,
    /// Given to every engine: what the heard whitener does, for the editor's view.
    view_tx: ViewSender,
    /// Cloned into the editor.
    view_rx: Receiver<HeardView>,
    /// Whether an editor window is open (set by the editor): stats are computed only then.
    editor_open: Arc<AtomicBool>,
    /// Re-initialisations performed, so the editor's button can release the trigger.
    reinitialisations: Arc<AtomicU64>,
    /// Background tasks queued by the audio thread and not yet run. nice-plug 0.4.2 as
    /// published ends its background thread (shared by every instance in the process) when it
    /// meets a task whose plugin is gone, and the next instance to shut it down then aborts
    /// the host (fixed in `vendor/nice-plug`); and a build for a destroyed plugin is wasted
    /// work anyway. So no task is left queued when the host destroys the plugin: `deactivate`
    /// waits for them.
    tasks_in_flight: Arc<AtomicUsize>,
}

impl Default for InterneuronWhitening {
    fn default() -> Self {
        let (tx, stats_rx) = bounded(STATS_CAPACITY);
        let (view_tx, view_rx) = bounded(VIEW_CAPACITY);
        Self {
            view_tx: ViewSender::new(view_tx),
            view_rx,
            params: Arc::new(WhiteningParams::default()),
            handoff: Arc::new(Handoff::default()),
            active: None,
            stats_tx: StatsSender::new(tx),
            stats_rx,
            editor_open: Arc::new(AtomicBool::new(false)),
            reinitialisations: Arc::new(AtomicU64::new(0)),
            tasks_in_flight: Arc::new(AtomicUsize::new(0)),
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
        layout!(2),
        layout!(1),
        layout!(4),
        layout!(6),
        layout!(8),
        layout!(MAX_CHANNELS as u32),
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
            views: self.view_rx.clone(),
            open: self.editor_open.clone(),
            reinitialisations: self.reinitialisations.clone(),
        }))
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let handoff = self.handoff.clone();
        let senders = (self.stats_tx.clone(), self.view_tx.clone());
        let params = self.params.clone();
        let in_flight = self.tasks_in_flight.clone();
        Box::new(move |task| {
            let _done = TaskDone(&in_flight);
            match task {
                Task::Build(req) => {
                    handoff.fulfil(&req, |req| build_engine(req, &senders, &params.learned));
                }
                Task::Collect => handoff.collect(),
            }
        })
    }

    /// The host stops processing (and may destroy the plugin next): let every background
    /// task the audio thread queued run first, while the plugin still exists. With nice-plug as
    /// published, a task left queued at destruction ended its shared background thread, and
    /// shutting that thread down later panicked across the host's call (`clap-validator fuzz`
    /// found it; the vendored copy fixes the thread too).
    /// Bounded: a task the full queue refused is never run, so after `TASKS_DRAIN_S` the
    /// count is given up on (zeroed) rather than delaying every later deactivation.
    fn deactivate(&mut self) {
        let started = std::time::Instant::now();
        while self.tasks_in_flight.load(Ordering::Acquire) > 0 {
            if started.elapsed().as_secs_f64() > TASKS_DRAIN_S {
                nice_warn!("background tasks did not finish before deactivation");
                self.tasks_in_flight.store(0, Ordering::Release);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
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
        let wanted = self.params.engine_params();
        let params = wanted.fitted_to(channels, sample_rate as f64);
        // Re-activation with the same configuration (after a latency change, or a host that
        // activates twice) keeps the engine and what it has learned.
        if let Some(a) = &mut self.active {
            if a.swap.channels() == channels
                && a.sample_rate == sample_rate
                && a.swap.structure() == Structure::of(&params, channels)
                && !a.poisoned
            {
                // A state the host loaded meanwhile is restored now, not by a rebuild.
                if a.take_load(&self.params.learned) {
                    restore_into(a.swap.engine_mut(), self.params.learned.loaded());
                }
                context.set_latency_samples(a.swap.engine().latency_samples() as u32);
                return true;
            }
        }
        // Anything in flight belongs to the previous configuration.
        self.active = None;
        self.handoff.invalidate();
        // Any positive finite rate runs; at extreme rates some quantities are capped: say so.
        if let Some(note) = wanted.rate_adjustments(channels, sample_rate as f64) {
            nice_warn!("{note}");
        }
        // CLAP lets the latency change only while the host activates the plugin; VST3 (and
        // the standalone) take a change at any time (docs/DESIGN.md §8.1).
        let latency_changes = match context.plugin_api() {
            PluginApi::Clap => LatencyChanges::AtActivation,
            PluginApi::Vst3 | PluginApi::Standalone => LatencyChanges::Live,
        };
        match new_engine(channels, sample_rate as f64, params) {
            Ok(mut engine) => {
                engine.set_stats_sender(Some(self.stats_tx.clone()));
                engine.set_view_sender(Some(self.view_tx.clone()));
                // A state the host loaded, or what the previous engine learned.
                restore_into(&mut engine, self.params.learned.latest());
                self.params.learned.prepare(&engine);
                context.set_latency_samples(engine.latency_samples() as u32);
                self.active = Some(Active::new(
                    sample_rate,
                    engine,
                    &self.handoff,
                    &self.params,
                    latency_changes,
                ));
                true
            }
            Err(Some(e)) => {
                nice_error!("cannot activate: {e}");
                false
            }
            Err(None) => {
                nice_error!("cannot activate: building the engine panicked");
                false
            }
        }
    }

    fn reset(&mut self) {
        let Some(a) = &mut self.active else {
            return;
        };
        a.swap.engine_mut().reset_audio();
        a.bypass.reset(self.params.bypass.value());
        a.swap.finish_crossfade();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        // Flush-to-zero for everything the plugin computes around the engine (fades, mixes).
        let _denormals = DenormalGuard::new();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            self.process_inner(buffer, aux, context)
        }));
        if caught.is_err() {
            if let Some(a) = &mut self.active {
                a.poisoned = true;
            }
            silence(buffer.as_slice());
        }
        // Whatever path a sample took (dry delay, bypass, engine crossfade), the host gets no
        // subnormal and no NaN or infinity (docs/DESIGN.md §7).
        for channel in buffer.as_slice().iter_mut() {
            guard_output(channel);
        }
        // The STFT and the latency-compensating delay hold `latency` samples of signal after
        // the input stops: ask the host not to cut them off.
        match &self.active {
            Some(a) if a.swap.engine().latency_samples() > 0 => {
                ProcessStatus::Tail(a.swap.engine().latency_samples() as u32)
            }
            _ => ProcessStatus::Normal,
        }
    }
}

impl InterneuronWhitening {
    /// One host block (docs/DESIGN.md §9, "Plugin wrapping").
    fn process_inner(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) {
        let samples = buffer.samples();
        let buffers = buffer.as_slice();
        let params = &*self.params;
        let active = self.active.as_mut();
        let Some(a) = active.filter(|a| !a.poisoned && buffers.len() == a.swap.channels()) else {
            silence(buffers);
            return;
        };
        let mut wanted = params.engine_params();
        // Depth moves the heard response: smoothed, applied once per host block.
        wanted.shaping.depth = params.depth.smoothed.next_step(samples as u32) as f64;
        let mut bg = HostBackground(&*context, &self.tasks_in_flight);

        // 1. A finished engine: swap it in, or discard it if it is stale. A new latency comes
        //    only from `LatencyChanges::Live` swaps (VST3: restartComponent(kLatencyChanged)).
        if let Some(latency) = a.swap.receive(&mut bg) {
            context.set_latency_samples(latency as u32);
        }
        // 2. Structural parameters changed, or the host loaded a learned state: request an
        //    engine (once per change) — or, for another latency under CLAP, a restart from
        //    the host, at which `activate` builds it and reports the latency.
        let restore = a.take_load(&params.learned);
        if a.swap.request(&wanted, restore, samples, &mut bg) == Requested::Restart {
            context.request_restart();
        }
        // 3. Live parameters.
        apply_live_params(
            a.swap.engine_mut(),
            &wanted,
            self.editor_open.load(Ordering::Relaxed),
        );
        let trigger = params.reinitialise.value();
        a.reinitialise_on_edge(trigger, wanted.init_scale, &self.reinitialisations);
        // 4. Audio, learning from the sidechain input when sidechain learning is on (a host
        //    that does not connect it hands over silence: nothing is learned).
        let mut key: [&[f32]; MAX_CHANNELS] = Default::default();
        let keyed = match aux.inputs.first() {
            Some(port) if params.sidechain.value() => {
                let port = port.as_slice_immutable();
                for (k, c) in key.iter_mut().zip(port) {
                    *k = &c[..];
                }
                Some(&key[..port.len().min(MAX_CHANNELS)])
            }
            // No port at all (a layout without one): a missing key, i.e. silence.
            None if params.sidechain.value() => Some(&key[..0]),
            _ => None,
        };
        a.render(buffers, keyed, samples, params, &mut bg);
        // 5. About once a second, the learned state for the next save.
        a.publish_learned_state(samples, &params.learned);
    }
}

/// The live parameters (docs/DESIGN.md §11), each applied with the engine's real-time setter
/// when it changed; `stats_on` says whether an editor is open to show stats.
fn apply_live_params(engine: &mut Engine, wanted: &EngineParams, stats_on: bool) {
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
    if engine.params().shaping != wanted.shaping {
        engine.set_shaping(wanted.shaping);
    }
    let (lo, hi) = engine.tau_ms_range();
    let tau_ms = wanted.tau_ms.clamp(lo, hi);
    if engine.params().tau_ms != tau_ms {
        // In range by construction; on error the engine keeps its previous τ.
        let _ = engine.set_tau_ms(tau_ms);
    }
}

/// Background thread: the engine `req` asks for, with the stats and view senders attached, the loaded
/// learned state restored if asked, and the learned-state pool given room for its shape;
/// `None` (logged) if it cannot be built.
fn build_engine(
    req: &BuildRequest,
    (stats, views): &(StatsSender, ViewSender),
    learned: &LearnedStateField,
) -> Option<Box<Engine>> {
    let fitted = req.params.fitted_to(req.channels, req.sample_rate);
    match new_engine(req.channels, req.sample_rate, fitted) {
        Ok(mut engine) => {
            engine.set_stats_sender(Some(stats.clone()));
            engine.set_view_sender(Some(views.clone()));
            if req.restore {
                restore_into(&mut engine, learned.loaded());
            }
            learned.prepare(&engine);
            Some(Box::new(engine))
        }
        Err(Some(e)) => {
            nice_error!("cannot build the whitening engine: {e}");
            None
        }
        Err(None) => {
            nice_error!("building the whitening engine panicked");
            None
        }
    }
}

/// [`Engine::new`] off the audio thread, with a panic contained (`Err(None)`): a bug in a
/// build must not unwind into the host.
fn new_engine(
    channels: usize,
    sample_rate: f64,
    params: EngineParams,
) -> Result<Engine, Option<EngineError>> {
    match catch_unwind(|| Engine::new(channels, sample_rate, params)) {
        Ok(built) => built.map_err(Some),
        Err(_) => Err(None),
    }
}

/// Start `engine` from a saved learned state when one fits it (same channels, framing, FFT
/// size, bands, interneurons); otherwise it starts from the initial scale.
fn restore_into(engine: &mut Engine, state: Option<LearnedState>) {
    if let Some(state) = state.filter(|s| s.fits(engine)) {
        if let Err(e) = engine.restore_learned_state(&state) {
            nice_warn!("the saved learned state was not restored: {e}");
        }
    }
}

/// The last step before the host: non-finite and subnormal samples become 0. (The engine's own
/// output is already clean; the dry paths around it copy what the host sent.)
fn guard_output(samples: &mut [f32]) {
    for v in samples.iter_mut() {
        // `contains` is false for NaN too.
        if !(f32::MIN_POSITIVE..=f32::MAX).contains(&v.abs()) {
            *v = 0.0;
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
