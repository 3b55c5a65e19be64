//! The engine swap (docs/DESIGN.md §8.1): replacing the running [`Engine`] by one with a new
//! structure without allocating, locking or dropping an engine on the audio thread.
//!
//! Framing, FFT size, bands and interneurons are fixed when an engine is built. When they
//! change (or the host loads a learned state), [`EngineSwap::request`] asks a [`Background`]
//! to build an engine, tagged with a *generation*: the shared `Handoff::latest` holds the
//! newest one, and the builder skips requests that are no longer the latest, so dragging a
//! knob does not queue builds. The built engine comes back over a bounded *fresh* channel that
//! [`EngineSwap::receive`] polls with `try_recv`. It replaces the running engine, which keeps
//! running on a copy of the input during a 20 ms crossfade and then leaves over a bounded
//! *garbage* channel, to be dropped by the background ([`Background::collect`]).
//!
//! A new structure may change the latency (0 in the channels framing, the FFT size in the
//! spectral framing). How that reaches the host depends on the plugin format
//! ([`LatencyChanges`], docs/DESIGN.md §8.1): swapped in at once and returned to the caller to
//! report (VST3, standalone), or — where the latency may only change while the host activates
//! the plugin (CLAP) — not built at all: the running engine and its latency stay, and
//! [`EngineSwap::request`] tells the caller to ask the host for a restart, at which the new
//! engine is built.
//!
//! Nothing here knows the host: the background is a trait (nice-plug's task executor in the
//! plugin, a recording fake in the tests), and what is to be reported is returned to the
//! caller.

use crate::engine::{Engine, EngineParams, Framing, MAX_CHANNELS};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A requested engine that has not arrived after this long (s of audio) is requested again
/// (nice-plug's background queue drops tasks when it is full).
pub const REQUEST_TIMEOUT_S: f64 = 2.0;
/// Capacity of the channel carrying built engines to the audio thread.
pub const FRESH_CAPACITY: usize = 4;
/// Capacity of the channel carrying retired engines away from the audio thread. A new engine
/// is only taken when two slots are free (for a stale engine and a retired one), so an engine
/// is never dropped on the audio thread.
pub const GARBAGE_CAPACITY: usize = 8;

/// The parameters that are fixed when an engine is built. (The reference level and the noise
/// floor are not: see [`Engine::set_levels`].) Only what makes a different engine counts, so
/// that a change that would build the same engine again (and restart what it learned) does
/// not: the FFT size and bands do not count in the channels framing, and interneurons count
/// as the circuit uses them, `max(k, channels)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Structure {
    /// Channels or spectral framing: a different core altogether.
    pub framing: Framing,
    /// STFT size: the spectral core's buffers and the latency (0 in the channels framing).
    pub fft_size: usize,
    /// Band count: the number of spectral races (0 in the channels framing).
    pub bands: usize,
    /// Interneurons `k` the circuits use: the size of every interneuron circuit's `W`.
    pub interneurons: usize,
}

impl Structure {
    /// The structure parameters `p` describe for `channels` channels.
    pub fn of(p: &EngineParams, channels: usize) -> Self {
        let spectral = p.framing == Framing::Spectral;
        Self {
            framing: p.framing,
            fft_size: if spectral { p.fft_size } else { 0 },
            bands: if spectral { p.bands } else { 0 },
            interneurons: p.interneurons.max(channels),
        }
    }

    /// The latency of an engine of this structure, in samples (as
    /// [`EngineParams::latency_samples`]).
    pub fn latency_samples(&self) -> usize {
        match self.framing {
            Framing::Channels => 0,
            Framing::Spectral => self.fft_size,
        }
    }
}

/// How an engine of a different latency is brought in (docs/DESIGN.md §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyChanges {
    /// Swap it in as soon as it is built; [`EngineSwap::receive`] returns the new latency for
    /// the caller to report (VST3 lets a plugin report a latency change at any time, with
    /// `restartComponent(kLatencyChanged)`).
    Live,
    /// Keep the running engine and its latency until the host re-activates the plugin;
    /// [`EngineSwap::request`] returns [`Requested::Restart`] (once per change) for the caller
    /// to ask the host for a restart, and the new engine is built when it activates (CLAP:
    /// the latency may change only inside `activate`).
    AtActivation,
}

/// What [`EngineSwap::request`] asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested {
    /// Nothing: the running engine fits, or a build is on its way.
    Nothing,
    /// Ask the host to restart (deactivate and activate) the plugin: the wanted structure has
    /// another latency, which may only change at activation ([`LatencyChanges::AtActivation`]).
    Restart,
}

/// What to build, tagged with the generation that identifies the newest request. Plain data:
/// creating and sending it never allocates.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// Identifies the request; the builder skips it when it is no longer the latest.
    pub generation: u64,
    /// Channel count of the running engine (the new one must fit the same host layout).
    pub channels: usize,
    /// Sample rate of the running engine, Hz.
    pub sample_rate: f64,
    /// The parameters wanted now (not yet fitted to the channel count and rate).
    pub params: EngineParams,
    /// Start from the learned state the host loaded (instead of the initial scale).
    pub restore: bool,
}

/// Where engines are built and dropped: off the calling (audio) thread. Implementations must
/// not block or allocate in these calls; they only hand the work on.
pub trait Background {
    /// Build the engine `req` describes and deliver it with [`Handoff::fulfil`].
    fn build(&mut self, req: BuildRequest);
    /// Drop the engines waiting in the garbage channel ([`Handoff::collect`]).
    fn collect(&mut self);
}

/// An engine built for request `generation`, or `None` if building failed.
struct Built {
    /// The request it answers.
    generation: u64,
    /// The engine, boxed so that moving it through channels moves a pointer.
    engine: Option<Box<Engine>>,
}

/// The lock-free channels between the audio thread and the background, shared by both.
pub struct Handoff {
    /// Generation of the newest build request; older requests are skipped by the builder.
    latest: AtomicU64,
    /// Background → audio thread: built engines.
    fresh_tx: Sender<Built>,
    /// Polled by the audio thread with `try_recv`.
    fresh_rx: Receiver<Built>,
    /// Audio thread → background: retired and stale engines, to be dropped there.
    garbage_tx: Sender<Box<Engine>>,
    /// Drained by the background ([`Handoff::collect`]).
    garbage_rx: Receiver<Box<Engine>>,
}

impl Default for Handoff {
    fn default() -> Self {
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
}

impl Handoff {
    /// Background: answer `req` with the engine `build` makes (`None` if it failed), unless
    /// a newer request has superseded it.
    pub fn fulfil(
        &self,
        req: &BuildRequest,
        build: impl FnOnce(&BuildRequest) -> Option<Box<Engine>>,
    ) {
        if self.latest.load(Ordering::SeqCst) != req.generation {
            return; // superseded by a newer request
        }
        self.deliver(req.generation, build(req));
    }

    /// Background: hand a built engine to the audio thread. If the channel is full the engine
    /// is dropped here, off the audio thread.
    fn deliver(&self, generation: u64, engine: Option<Box<Engine>>) {
        let _ = self.fresh_tx.try_send(Built { generation, engine });
    }

    /// Background: drop the engines the audio thread has retired.
    pub fn collect(&self) {
        while self.garbage_rx.try_recv().is_ok() {}
    }

    /// Main thread, with no audio running (activation): supersede every request in flight
    /// and drop whatever was built or retired for the previous configuration.
    pub fn invalidate(&self) {
        self.latest.fetch_add(1, Ordering::SeqCst);
        while self.fresh_rx.try_recv().is_ok() {}
        self.collect();
    }

    /// A generation newer than every request so far (which supersedes them).
    fn next_generation(&self) -> u64 {
        self.latest.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether the garbage channel can take `n` more engines.
    fn garbage_room(&self, n: usize) -> bool {
        self.garbage_tx.len() + n <= GARBAGE_CAPACITY
    }

    /// Audio thread: send an engine to the garbage channel. Callers check
    /// [`Handoff::garbage_room`] first and only the audio thread sends, so this never fails
    /// (which would drop the engine here).
    fn retire(&self, engine: Box<Engine>) {
        let _ = self.garbage_tx.try_send(engine);
    }
}

/// A build request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// The generation it was sent under (and re-sent under, after a timeout).
    generation: u64,
    /// The structure it asks for.
    structure: Structure,
    /// Samples processed since the request was (last) sent.
    age: u64,
    /// Whether the engine is to start from the loaded learned state.
    restore: bool,
}

/// The running engine, the one fading out, and the build in flight. Allocates only in
/// [`EngineSwap::new`]; every other method is real-time safe.
pub struct EngineSwap {
    /// The channels to and from the background.
    handoff: Arc<Handoff>,
    /// Channel count, fixed for the lifetime of the swap (an activation).
    channels: usize,
    /// Sample rate, Hz, fixed likewise; for the request timeout and the build requests.
    sample_rate: f64,
    /// The engine heard.
    engine: Box<Engine>,
    /// The structure `engine` was built with (as requested, so it compares with the wanted
    /// parameters).
    structure: Structure,
    /// The previous engine, fading out after a swap.
    old: Option<Box<Engine>>,
    /// Progress 0..1 of the crossfade from `old` to `engine`.
    fade_pos: f32,
    /// Crossfade progress per sample.
    fade_step: f32,
    /// The old engine's copy of the input, one sub-block per channel.
    old_buf: Vec<Vec<f32>>,
    /// The build request in flight, if any.
    pending: Option<Pending>,
    /// A structure whose build failed: not requested again until the parameters change.
    failed: Option<Structure>,
    /// How an engine of another latency comes in.
    latency_changes: LatencyChanges,
    /// The structure a host restart was requested for ([`LatencyChanges::AtActivation`]): not
    /// requested again while it is still the one wanted.
    restart_for: Option<Structure>,
}

impl EngineSwap {
    /// A swap running `engine`, for sub-blocks of at most `sub_block` samples (at most
    /// [`MAX_CHANNELS`] channels), crossfading by `fade_step` per sample.
    /// Latency changes are [`LatencyChanges::Live`] unless set otherwise
    /// ([`EngineSwap::with_latency_changes`]).
    pub fn new(handoff: Arc<Handoff>, engine: Engine, sub_block: usize, fade_step: f32) -> Self {
        let channels = engine.channels();
        Self {
            handoff,
            channels,
            sample_rate: engine.sample_rate(),
            structure: Structure::of(engine.params(), channels),
            engine: Box::new(engine),
            old: None,
            fade_pos: 1.0,
            fade_step,
            old_buf: vec![vec![0.0; sub_block]; channels],
            pending: None,
            failed: None,
            latency_changes: LatencyChanges::Live,
            restart_for: None,
        }
    }

    /// This swap, bringing in engines of another latency as `latency_changes` says.
    pub fn with_latency_changes(mut self, latency_changes: LatencyChanges) -> Self {
        self.latency_changes = latency_changes;
        self
    }

    /// The engine heard.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine heard, for its real-time setters.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The structure of the engine heard.
    pub fn structure(&self) -> Structure {
        self.structure
    }

    /// The channel count.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Whether a requested engine is on its way.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Take a finished engine, if one has arrived and the garbage channel has room for the
    /// engines this may retire: swap it in with a crossfade when it answers the request in
    /// flight, discard it when it is stale. Returns the new latency when it differs from the
    /// old one (to be reported to the host).
    pub fn receive(&mut self, bg: &mut impl Background) -> Option<usize> {
        let handoff = &*self.handoff;
        if !handoff.garbage_room(2) {
            return None;
        }
        let built = handoff.fresh_rx.try_recv().ok()?;
        let current = self.pending.filter(|p| p.generation == built.generation);
        match (current, built.engine) {
            // Not requested under `AtActivation` (its latency differs): never swapped in.
            (Some(_), Some(other))
                if self.latency_changes == LatencyChanges::AtActivation
                    && other.latency_samples() != self.engine.latency_samples() =>
            {
                self.pending = None;
                handoff.retire(other);
                bg.collect();
                None
            }
            (Some(p), Some(engine)) => {
                self.pending = None;
                // Copies of this request re-sent after a timeout are no longer wanted: the
                // builder skips them instead of building engines only to discard them.
                handoff.next_generation();
                if let Some(old) = self.old.take() {
                    handoff.retire(old);
                    bg.collect();
                }
                let mut old = std::mem::replace(&mut self.engine, engine);
                // Only the engine heard from now on reports stats: two clocks in one channel
                // would make the monitor start over every record.
                old.set_stats_enabled(false);
                let latency = self.engine.latency_samples();
                let changed = old.latency_samples() != latency;
                self.old = Some(old);
                self.fade_pos = 0.0;
                self.structure = p.structure;
                changed.then_some(latency)
            }
            (Some(p), None) => {
                self.pending = None;
                self.failed = Some(p.structure);
                None
            }
            (None, Some(stale)) => {
                handoff.retire(stale);
                bg.collect();
                None
            }
            (None, None) => None,
        }
    }

    /// Request an engine for `wanted` if its structure differs from the running one's, or
    /// with the loaded learned state if `restore`: once per change, re-sent after
    /// [`REQUEST_TIMEOUT_S`], not again after a failure until the structure changes. A return
    /// to the running structure cancels the request. `samples` is the length of the block
    /// being processed (the request's clock).
    ///
    /// Under [`LatencyChanges::AtActivation`] a structure of another latency is not built:
    /// any build in flight is cancelled and, once per wanted structure, the caller is asked to
    /// have the host restart the plugin ([`Requested::Restart`]).
    pub fn request(
        &mut self,
        wanted: &EngineParams,
        restore: bool,
        samples: usize,
        bg: &mut impl Background,
    ) -> Requested {
        let handoff = &*self.handoff;
        // As it will be built: fitted to the channels and the rate (which may lower the FFT
        // size, docs/DESIGN.md §11). No allocation: `EngineParams` is plain data.
        let fitted = wanted.fitted_to(self.channels, self.sample_rate);
        let want = Structure::of(&fitted, self.channels);
        if self.latency_changes == LatencyChanges::AtActivation
            && want.latency_samples() != self.engine.latency_samples()
        {
            if self.pending.take().is_some() {
                handoff.next_generation();
            }
            self.failed = None;
            if self.restart_for == Some(want) {
                return Requested::Nothing;
            }
            self.restart_for = Some(want);
            return Requested::Restart;
        }
        self.restart_for = None;
        let restoring = restore || self.pending.is_some_and(|p| p.restore);
        if want == self.structure && !restoring {
            if self.pending.take().is_some() {
                // Supersede the request: the builder skips it, a finished engine is stale.
                handoff.next_generation();
            }
            self.failed = None;
        } else if self.failed != Some(want) || restore {
            self.failed = None;
            let timeout = (REQUEST_TIMEOUT_S * self.sample_rate) as u64;
            let (send, generation) = match self.pending {
                _ if restore => (true, handoff.next_generation()),
                Some(p) if p.structure == want && p.age < timeout => (false, p.generation),
                // The request may have been dropped: send it again under the same generation,
                // so a slow build still in progress is not superseded (faster-than-real-time
                // rendering would otherwise starve it); whichever copy arrives first is used.
                Some(p) if p.structure == want => (true, p.generation),
                _ => (true, handoff.next_generation()),
            };
            if send {
                bg.build(BuildRequest {
                    generation,
                    channels: self.channels,
                    sample_rate: self.sample_rate,
                    params: wanted.clone(),
                    restore: restoring,
                });
                self.pending = Some(Pending {
                    generation,
                    structure: want,
                    age: 0,
                    restore: restoring,
                });
            }
        }
        if let Some(p) = &mut self.pending {
            p.age += samples as u64;
        }
        Requested::Nothing
    }

    /// Process `buffers[c][start..end]` (at most one sub-block) in place with the engine
    /// heard at output level `output_db` and dry/wet `wet`; during a crossfade the old engine
    /// runs on a copy of the input and the output fades linearly from its response to the new
    /// one's. At the end of the fade the old engine is retired (as soon as the garbage channel
    /// has room).
    pub fn process(
        &mut self,
        buffers: &mut [&mut [f32]],
        start: usize,
        end: usize,
        output_db: f64,
        wet: f64,
        bg: &mut impl Background,
    ) {
        self.process_keyed(buffers, None, start, end, output_db, wet, bg);
    }

    /// [`EngineSwap::process`], with sidechain learning from `key` (one slice per channel,
    /// indexed like `buffers`) if given: both engines of a crossfade learn from it.
    #[allow(clippy::too_many_arguments)]
    pub fn process_keyed(
        &mut self,
        buffers: &mut [&mut [f32]],
        key: Option<&[&[f32]]>,
        start: usize,
        end: usize,
        output_db: f64,
        wet: f64,
        bg: &mut impl Background,
    ) {
        let len = end - start;
        let n = self.channels;
        // The key's part of this sub-block; a channel too short for it is a missing key,
        // which the engine takes for silence.
        let mut key_chunk: [&[f32]; MAX_CHANNELS] = Default::default();
        let key = key.map(|k| {
            for (slot, c) in key_chunk.iter_mut().zip(k) {
                *slot = c.get(start..end).unwrap_or(&[]);
            }
            &key_chunk[..k.len().min(MAX_CHANNELS)]
        });
        if let Some(old) = &mut self.old {
            let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
            for ((slot, buf), src) in chunk.iter_mut().zip(&mut self.old_buf).zip(&*buffers) {
                buf[..len].copy_from_slice(&src[start..end]);
                *slot = &mut buf[..len];
            }
            old.set_output(output_db, wet);
            match key {
                Some(k) => old.process_keyed(&mut chunk[..n], k),
                None => old.process(&mut chunk[..n]),
            }
        }
        let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
        for (slot, b) in chunk.iter_mut().zip(buffers.iter_mut()) {
            *slot = &mut b[start..end];
        }
        self.engine.set_output(output_db, wet);
        match key {
            Some(k) => self.engine.process_keyed(&mut chunk[..n], k),
            None => self.engine.process(&mut chunk[..n]),
        }
        if self.old.is_some() {
            self.crossfade(buffers, start, end);
            if self.fade_pos >= 1.0 && self.handoff.garbage_room(1) {
                if let Some(old) = self.old.take() {
                    self.handoff.retire(old);
                    bg.collect();
                }
            }
        }
    }

    /// Mix the old engine's response (in `old_buf`) into the new one's (in `buffers`) with a
    /// linear ramp, and advance the fade.
    fn crossfade(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize) {
        let len = end - start;
        let step = self.fade_step;
        for (b, o) in buffers.iter_mut().zip(&self.old_buf) {
            let mut w = self.fade_pos;
            for (y, x) in b[start..end].iter_mut().zip(&o[..len]) {
                w = (w + step).min(1.0);
                *y = w * *y + (1.0 - w) * x;
            }
        }
        self.fade_pos = (self.fade_pos + step * len as f32).min(1.0);
    }

    /// End a running crossfade at once (the host's reset): the old engine leaves if the
    /// garbage channel has room, and is collected with the next collection.
    pub fn finish_crossfade(&mut self) {
        if self.old.is_some() && self.handoff.garbage_room(1) {
            if let Some(old) = self.old.take() {
                self.handoff.retire(old);
            }
            self.fade_pos = 1.0;
        }
    }
}

#[cfg(test)]
mod tests;
