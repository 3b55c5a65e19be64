//! The learned circuit state saved with a project, so a reopened session starts whitened.
//!
//! The audio thread owns the engine, and a host may save the project at any moment, so the
//! state travels in steps, none of which blocks or allocates on the audio thread:
//!
//! 1. whenever an engine is built (off the audio thread) the pool's buffers are given room for
//!    its shape ([`LearnedStateField::prepare`]);
//! 2. about once a second `process` takes a buffer from the pool (`try_recv`), has the engine
//!    publish into it ([`Engine::publish_learned_state`], allocation-free) and hands it over
//!    (`try_send`; the channels hold the whole pool, so this never fails and a buffer is never
//!    dropped on the audio thread);
//! 3. the host's save ([`PersistentField::map`], main thread) first takes the handed-over
//!    buffers, keeps the newest state and returns the buffers, then serialises it; a load
//!    ([`PersistentField::set`]) marks the loaded state for restoring, and the plugin builds
//!    an engine with it off the audio thread.
//!
//! No background task is scheduled for this: nice-plug 0.4.2's shared worker thread exits when
//! it receives a task for an instance that was destroyed in the meantime, and the next plugin
//! teardown then panics inside a destructor (an abort in the host). A task every second would
//! make that race likely; here only structural rebuilds schedule tasks.

use crate::engine::{Engine, LearnedState};
use crossbeam_channel::{bounded, Receiver, Sender};
use nice_plug::params::persist::PersistentField;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Buffers in the pool: one being filled or stored while the other waits.
const POOL: usize = 2;
/// States with more numbers than this are not saved (16 channels × 513 spectral bands would be
/// ~10⁶ numbers, megabytes of JSON in every project save); the session then starts learning
/// from the initial scale, as without saved state.
pub const MAX_SAVED_NUMBERS: usize = 200_000;

/// The persisted field (`#[persist = "learned-state"]`).
#[derive(Default)]
pub struct LearnedStateField {
    /// What a save writes: the newest published state.
    saved: Mutex<Option<LearnedState>>,
    /// A state loaded by the host, waiting to be restored into an engine.
    loaded: Mutex<Option<LearnedState>>,
    /// Incremented by every load; the audio thread compares it with the last one it handled.
    loads: AtomicU64,
    /// Buffers between the audio thread and the savers.
    pool: StatePool,
}

impl LearnedStateField {
    /// Loads so far (read on the audio thread: one atomic load).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Acquire)
    }

    /// The loaded state, if any, for an engine being built (off the audio thread).
    pub fn loaded(&self) -> Option<LearnedState> {
        self.loaded.lock().ok().and_then(|g| g.clone())
    }

    /// The newest state: published by the running engine, or loaded by the host (off the
    /// audio thread).
    pub fn latest(&self) -> Option<LearnedState> {
        self.pool.collect(self);
        self.saved.lock().ok().and_then(|g| g.clone())
    }

    /// Audio thread: publish the engine's state for the next save. Never blocks or allocates.
    pub fn publish(&self, engine: &Engine) {
        self.pool.publish(engine);
    }

    /// Off the audio thread, when an engine has been built: keep what was published so far
    /// and give every buffer room for the new engine's shape, so its publishes succeed.
    pub fn prepare(&self, engine: &Engine) {
        self.pool.collect(self);
        self.pool.prepare(engine);
    }

    /// Store a published state as the one to save (background thread).
    fn store(&self, state: &LearnedState) {
        if let Ok(mut saved) = self.saved.lock() {
            let small = state
                .races
                .iter()
                .map(|r| {
                    r.direct_m.len() + r.interneuron_w.len() + r.baseline_c.len() + r.gain_g.len()
                })
                .sum::<usize>()
                <= MAX_SAVED_NUMBERS;
            match (&mut *saved, small) {
                (Some(s), true) => s.clone_from(state),
                (s, true) => *s = Some(state.clone()),
                (s, false) => *s = None,
            }
        }
    }
}

impl<'a> PersistentField<'a, Option<LearnedState>> for LearnedStateField {
    fn set(&self, new_value: Option<LearnedState>) {
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.clone_from(&new_value);
        }
        if let Ok(mut saved) = self.saved.lock() {
            *saved = new_value;
        }
        self.loads.fetch_add(1, Ordering::AcqRel);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Option<LearnedState>) -> R,
    {
        self.pool.collect(self);
        match self.saved.lock() {
            Ok(saved) => f(&saved),
            Err(_) => f(&None),
        }
    }
}

/// A buffer of the pool.
#[derive(Default)]
struct Slot {
    state: LearnedState,
    /// Whether `state` holds a published state (else only the shape to make room for).
    written: bool,
}

/// The pool of state buffers shared by the audio thread and the background thread.
pub struct StatePool {
    free_tx: Sender<Box<Slot>>,
    free_rx: Receiver<Box<Slot>>,
    full_tx: Sender<Box<Slot>>,
    full_rx: Receiver<Box<Slot>>,
}

impl StatePool {
    /// A pool of empty buffers (the first publish records the shape, the background thread
    /// then makes room).
    pub fn new() -> Self {
        let (free_tx, free_rx) = bounded(POOL);
        let (full_tx, full_rx) = bounded(POOL);
        for _ in 0..POOL {
            let _ = free_tx.try_send(Box::default());
        }
        Self {
            free_tx,
            free_rx,
            full_tx,
            full_rx,
        }
    }

    /// Audio thread: publish the engine's state into a free buffer and hand it over. Returns
    /// whether a buffer was handed over. Never blocks or allocates.
    fn publish(&self, engine: &Engine) -> bool {
        let Ok(mut buf) = self.free_rx.try_recv() else {
            return false;
        };
        buf.written = engine.publish_learned_state(&mut buf.state);
        // Both channels together hold exactly the pool, so there is always room.
        match self.full_tx.try_send(buf) {
            Ok(()) => true,
            Err(e) => {
                // Unreachable by construction; never drop a buffer here.
                std::mem::forget(e.into_inner());
                false
            }
        }
    }

    /// Off the audio thread: store every published state in `field`, make room in buffers
    /// that had none, and return them to the pool.
    fn collect(&self, field: &LearnedStateField) {
        while let Ok(mut buf) = self.full_rx.try_recv() {
            if buf.written {
                field.store(&buf.state);
            } else {
                buf.state.reserve_for_shape();
            }
            let _ = self.free_tx.try_send(buf);
        }
    }
}

impl StatePool {
    /// Off the audio thread: give every free buffer room for `engine`'s shape.
    fn prepare(&self, engine: &Engine) {
        let mut taken: [Option<Box<Slot>>; POOL] = Default::default();
        for t in taken.iter_mut() {
            *t = self.free_rx.try_recv().ok();
        }
        for mut buf in taken.into_iter().flatten() {
            // Records the shape (and, if the buffer already fits, the state).
            engine.publish_learned_state(&mut buf.state);
            buf.state.reserve_for_shape();
            buf.written = false;
            let _ = self.free_tx.try_send(buf);
        }
    }
}

impl Default for StatePool {
    fn default() -> Self {
        Self::new()
    }
}
