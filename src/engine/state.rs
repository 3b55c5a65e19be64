//! The learned state of an engine — what the whiteners have adapted to — so that a session
//! reopened in a DAW starts whitened instead of re-learning from `M₀ = s·I`.
//!
//! Only the learned matrices are kept (`M` of the direct circuit, `W` of the interneuron
//! circuit, `Ĉ` of the baseline, the gains `g` of the gain-modulating circuit, per band in the
//! spectral framing), in the circuits' units
//! (input divided by the reference level). Parameters are saved separately by the host; a state
//! only restores into an engine of the same shape.

use super::{Core, Engine, EngineError, Framing};
use crate::circuits::Scalar;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// One race's learned matrices, column-major; complex entries as `re, im` pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaceState {
    /// The direct circuit's `M` (n×n).
    pub direct_m: Vec<f64>,
    /// The interneuron circuit's `W` (n×k).
    pub interneuron_w: Vec<f64>,
    /// The baseline's covariance estimate `Ĉ` (n×n).
    pub baseline_c: Vec<f64>,
    /// The gain-modulating circuit's gains `g` (one per interneuron of its frame; its synapses
    /// are the fixed frame). Empty in states saved before it raced: it then restarts from
    /// `M₀ = s·I`.
    #[serde(default)]
    pub gain_g: Vec<f64>,
}

/// Everything an engine has learned, with the shape it was learned in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnedState {
    /// Channels `n`.
    pub channels: usize,
    /// Framing.
    pub framing: Framing,
    /// FFT size (spectral framing; 0 for channels).
    pub fft_size: usize,
    /// Bands (spectral framing; 1 for channels).
    pub bands: usize,
    /// Interneurons `k`.
    pub interneurons: usize,
    /// One entry per band (one for the channels framing).
    pub races: Vec<RaceState>,
}

impl LearnedState {
    /// Whether this state fits `engine` (same channels, framing, FFT size, bands, `k`).
    pub fn fits(&self, engine: &Engine) -> bool {
        let (fft_size, bands) = shape_of(engine);
        self.channels == engine.channels()
            && self.framing == engine.params().framing
            && self.fft_size == fft_size
            && self.bands == bands
            && self.interneurons == engine.interneurons()
            && self.races.len() == bands
    }
}

impl LearnedState {
    /// Reserve room for the matrices of the shape in `channels`, `framing`, `bands` and
    /// `interneurons` (as set by [`Engine::publish_learned_state`]), so that the next publish
    /// into it does not allocate. Allocates; call it off the audio thread.
    pub fn reserve_for_shape(&mut self) {
        let per = match self.framing {
            Framing::Channels => 1,
            Framing::Spectral => 2,
        };
        let (n, k) = (self.channels, self.interneurons);
        self.races.resize_with(self.bands, RaceState::default);
        for r in &mut self.races {
            r.direct_m.reserve(n * n * per);
            r.interneuron_w.reserve(n * k * per);
            r.baseline_c.reserve(n * n * per);
            // The gain circuit's k is at most n² (ℂ pairs frame).
            r.gain_g.reserve(n * n);
        }
    }

    /// Whether the buffers can take an engine's state of this shape without allocating.
    fn has_room(&self, engine: &Engine) -> bool {
        let (_, bands) = shape_of(engine);
        let per = match engine.params.framing {
            Framing::Channels => 1,
            Framing::Spectral => 2,
        };
        let (n, k) = (engine.channels, engine.interneurons());
        self.races.len() == bands
            && self.races.iter().all(|r| {
                r.direct_m.capacity() >= n * n * per
                    && r.interneuron_w.capacity() >= n * k * per
                    && r.baseline_c.capacity() >= n * n * per
                    && r.gain_g.capacity() >= n * n
            })
    }
}

/// FFT size (0 for the channels framing) and number of races of an engine.
fn shape_of(engine: &Engine) -> (usize, usize) {
    let fft_size = match &engine.core {
        Core::Channels(_) => 0,
        Core::Spectral(_) => engine.params.fft_size,
    };
    (fft_size, engine.core.race_count())
}

/// Replace `out` by a matrix's entries (column-major, complex as pairs); no allocation when
/// `out` has the capacity.
pub(super) fn push_matrix<T: Scalar>(m: &DMatrix<T>, out: &mut Vec<f64>) {
    out.clear();
    for v in m.iter() {
        out.push(v.real());
        if T::IS_COMPLEX {
            out.push(v.imaginary());
        }
    }
}

/// Rebuild a matrix of `rows × cols` from [`push_matrix`]'s layout.
pub(super) fn read_matrix<T: Scalar>(
    data: &[f64],
    rows: usize,
    cols: usize,
) -> Result<DMatrix<T>, EngineError> {
    let per = if T::IS_COMPLEX { 2 } else { 1 };
    if data.len() != rows * cols * per || data.iter().any(|v| !v.is_finite()) {
        return Err(EngineError::InvalidParameter(format!(
            "learned state: expected {} finite numbers for a {rows}×{cols} matrix, got {}",
            rows * cols * per,
            data.len()
        )));
    }
    Ok(DMatrix::from_iterator(
        rows,
        cols,
        data.chunks_exact(per)
            .map(|c| T::from_parts(c[0], c.get(1).copied().unwrap_or(0.0))),
    ))
}

impl Engine {
    /// Interneurons per circuit in force (`k`).
    pub fn interneurons(&self) -> usize {
        self.core.race(0).interneurons()
    }

    /// Copy the learned state into `out`. Allocation-free when `out` already holds a state
    /// of this engine's shape (as after a first call), so it may run on the audio thread to
    /// publish snapshots; otherwise `out` is resized (allocates).
    pub fn write_learned_state(&self, out: &mut LearnedState) {
        let bands = self.write_shape(out);
        if out.races.len() != bands {
            out.races.resize_with(bands, RaceState::default);
        }
        for (i, r) in out.races.iter_mut().enumerate() {
            self.core.race(i).write_state(r);
        }
    }

    /// Publish the learned state into `out` from the audio thread: never allocates. If `out`
    /// has no room for this engine's shape, only the shape fields are set and `false` is
    /// returned; [`LearnedState::reserve_for_shape`] (off the audio thread) then makes room
    /// for the next publish.
    pub fn publish_learned_state(&self, out: &mut LearnedState) -> bool {
        if out.has_room(self) {
            self.write_learned_state(out);
            true
        } else {
            self.write_shape(out);
            false
        }
    }

    /// Set the shape fields of `out` to this engine's; returns the number of bands.
    fn write_shape(&self, out: &mut LearnedState) -> usize {
        let (fft_size, bands) = shape_of(self);
        out.channels = self.channels;
        out.framing = self.params.framing;
        out.fft_size = fft_size;
        out.bands = bands;
        out.interneurons = self.interneurons();
        bands
    }

    /// The learned state (allocates).
    pub fn learned_state(&self) -> LearnedState {
        let mut s = LearnedState::default();
        self.write_learned_state(&mut s);
        s
    }

    /// Restore a learned state saved from an engine of the same shape. Allocates (call it
    /// off the audio thread, before the engine is handed to it). On an error — a state of
    /// another shape, or matrices that are not positive definite — every whitener starts from
    /// its initial scale instead, and the error says why.
    pub fn restore_learned_state(&mut self, state: &LearnedState) -> Result<(), EngineError> {
        if !state.fits(self) {
            let (fft_size, bands) = shape_of(self);
            return Err(EngineError::InvalidParameter(format!(
                "learned state for {} channels, {} framing, FFT {}, {} bands, {} interneurons \
                 does not fit an engine with {} channels, {} framing, FFT {fft_size}, \
                 {bands} bands, {} interneurons",
                state.channels,
                state.framing,
                state.fft_size,
                state.bands,
                state.interneurons,
                self.channels,
                self.params.framing,
                self.interneurons()
            )));
        }
        let scale = self.params.init_scale;
        let mut saved = state.races.iter();
        let result = self.core.try_each_race(|race| match saved.next() {
            Some(r) => race.restore_state(r),
            None => Ok(()),
        });
        if result.is_err() {
            self.reinitialise(scale)?;
        }
        result
    }
}
