//! The recurrent whitening circuits of docs/DESIGN.md §2.
//!
//! All minimise `f(M) = Tr(M⁻¹C + M)` whose minimiser is `M* = C^{1/2}`, so that the
//! primary-neuron response `r = M⁻¹x` is symmetrically (ZCA) whitened: `E[r rᴴ] = I`.
//!
//! * [`DirectCircuit`] learns `M` directly: `M ← M + η (r rᴴ − I)`.
//! * [`InterneuronCircuit`] learns the synapses `W` (n×k) of `k` interneurons, `M = W Wᴴ`:
//!   `W ← W + η (r zᴴ − W)` with `z = Wᴴ r`.
//! * [`GainModulatingCircuit`] (§2.9) fixes a frame `W` and learns the gains `g` of its
//!   interneurons, `M = αI + W diag(g) Wᴴ`: `g ← g + η_g (|z|² − diag(WᴴW))`; optionally the
//!   synapses learn slowly, `W ← W + η_w (r nᴴ − W diag(g))` with `n = g ∘ z`. It is a
//!   [`Circuit`] too, and races as [`WhitenerKind::Gain`].
//!
//! The response is always computed with the state *before* the update that uses it, and
//! costs O(n²): the direct circuit solves with a Cholesky factor of `M` refreshed after each
//! update (O(n³/6)); the interneuron circuit multiplies by a cached `M⁻¹`, refreshed either by
//! re-factorising `W Wᴴ` (naive) or by a Sherman–Morrison update (fast path, O(n² + nk)).

// Triangle-by-triangle index loops mirror the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

mod dim;
mod direct;
mod frame;
mod gain;
mod init;
mod interneuron;
mod linalg;

pub use dim::{Dim, Dynamic, Fixed};
pub use direct::DirectCircuit;
pub use frame::{
    frame_gains, frame_spans, outer_product_gram, outer_product_rank, pairs_frame,
    random_unit_frame, spanning_frame_size, GainFrame,
};
pub use gain::{
    GainConfig, GainModulatingCircuit, GainSolver, RACE_SPANNING_MAX_CHANNELS, RACE_SYNAPTIC_RATIO,
};
pub use init::{dct_rows, random_orthonormal_rows, random_unitary, InterneuronBasis};
pub use interneuron::{InterneuronCircuit, Solver};
pub use linalg::distance_from_identity;
pub use linalg::{dot, dot_lanes};
pub use linalg::{
    hermitian_sandwich_into, hermitian_sqrt, is_positive_definite, matmul_into, sandwich_into,
    validate_covariance, whitening_error,
};
pub(crate) use linalg::{
    mirror_lower, real_fma_available, real_product, transpose_into, CholeskyWorkspace,
};

use crate::whitener::WhitenerKind;
use nalgebra::{ComplexField, DMatrix};
use rand::Rng;
use rand_distr::StandardNormal;

/// A field element the circuits can run on: `f64` for time-domain frames, `Complex<f64>` for
/// spectral frames. State is always kept in double precision (docs/DESIGN.md §2.7).
pub trait Scalar: ComplexField<RealField = f64> + Copy + Send + Sync + 'static {
    /// Whether the field is ℂ (used for naming and for circularly symmetric noise).
    const IS_COMPLEX: bool;

    /// A standard normal draw: `N(0, 1)` for ℝ; circularly symmetric with `E|x|² = 1` for ℂ.
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self;

    /// `re + i·im` (ℝ ignores `im`).
    fn from_parts(re: f64, im: f64) -> Self;

    /// The values as plain `f64`s if the field is ℝ (ℂ: `None`), so that a kernel written for
    /// real vector arithmetic can take over from the generic code.
    fn as_reals(s: &[Self]) -> Option<&[f64]>;

    /// [`Scalar::as_reals`], mutable.
    fn as_reals_mut(s: &mut [Self]) -> Option<&mut [f64]>;
}

impl Scalar for f64 {
    const IS_COMPLEX: bool = false;
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        rng.sample(StandardNormal)
    }
    fn from_parts(re: f64, _im: f64) -> Self {
        re
    }
    fn as_reals(s: &[Self]) -> Option<&[f64]> {
        Some(s)
    }
    fn as_reals_mut(s: &mut [Self]) -> Option<&mut [f64]> {
        Some(s)
    }
}

impl Scalar for nalgebra::Complex<f64> {
    const IS_COMPLEX: bool = true;
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let re: f64 = rng.sample(StandardNormal);
        let im: f64 = rng.sample(StandardNormal);
        nalgebra::Complex::new(re, im) * std::f64::consts::FRAC_1_SQRT_2
    }
    fn from_parts(re: f64, im: f64) -> Self {
        nalgebra::Complex::new(re, im)
    }
    fn as_reals(_s: &[Self]) -> Option<&[f64]> {
        None
    }
    fn as_reals_mut(_s: &mut [Self]) -> Option<&mut [f64]> {
        None
    }
}

/// Everything that can go wrong when building or driving a circuit. Errors are values, never
/// panics: a circuit may run inside an audio host.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CircuitError {
    /// A circuit needs at least one primary neuron.
    #[error("the number of primary neurons n must be at least 1")]
    ZeroDimension,
    /// `M = W Wᴴ` is only positive definite when `W` has full row rank, which needs `k ≥ n`.
    #[error("the interneuron circuit needs k >= n interneurons (got n = {n}, k = {k})")]
    TooFewInterneurons {
        /// Primary neurons.
        n: usize,
        /// Interneurons.
        k: usize,
    },
    /// The learning rate must be a finite number in (0, 1); at `η ≥ 1` the interneuron update
    /// `W ← (1−η) W + …` loses rank, and the direct update overshoots without bound.
    #[error("the learning rate eta must be finite and in (0, 1), got {0}")]
    InvalidLearningRate(f64),
    /// The initialisation scale `s` sets `M₀ = s·I`, so it must be finite and positive.
    #[error("the initial scale s must be finite and > 0, got {0}")]
    InvalidScale(f64),
    /// A vector or matrix of the wrong size was passed.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimensionMismatch {
        /// What the circuit has.
        expected: usize,
        /// What was passed.
        got: usize,
    },
    /// The state left the cone of positive-definite matrices (or became non-finite). The
    /// caller decides whether to re-initialise; the circuit never does it silently.
    #[error("the recurrent matrix M is no longer finite and positive definite")]
    NotPositiveDefinite,
    /// A covariance passed for a mean-field step or an error measurement is unusable.
    #[error("invalid covariance: {0}")]
    InvalidCovariance(String),
    /// The leak `α` of the gain-modulating circuit (`M = αI + W diag(g) Wᴴ`) must be finite
    /// and ≥ 0.
    #[error("the leak alpha must be finite and >= 0, got {0}")]
    InvalidLeak(f64),
    /// A frame (the synapses of the gain-modulating circuit) is unusable.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// A circuit was asked for by the name of a whitener that is not one of the paper's
    /// recurrent circuits (the baseline).
    #[error("{0} is not one of the paper's circuits: use direct, interneuron or gain")]
    NotACircuit(WhitenerKind),
}

/// Build the recurrent circuit `kind` with `n` primary neurons (and `k ≥ n` interneurons for
/// the interneuron circuit; the gain circuit's `k` is its pairs frame's), learning rate η and
/// initial scale `s` (docs/DESIGN.md §2). The baseline is not a circuit:
/// [`CircuitError::NotACircuit`].
pub fn build_circuit<T: Scalar>(
    kind: WhitenerKind,
    n: usize,
    k: usize,
    eta: f64,
    scale: f64,
    basis: InterneuronBasis,
    solver: Solver,
) -> Result<Box<dyn Circuit<T>>, CircuitError> {
    Ok(match kind {
        WhitenerKind::Direct => Box::new(DirectCircuit::new(n, eta, scale)?),
        WhitenerKind::Interneuron => {
            Box::new(InterneuronCircuit::new(n, k, eta, scale, basis, solver)?)
        }
        WhitenerKind::Gain => Box::new(GainModulatingCircuit::racing(n, eta, scale)?),
        WhitenerKind::Baseline => return Err(CircuitError::NotACircuit(kind)),
    })
}

/// The interface shared by both circuits, so that experiments, the engine and the tests can
/// treat them alike.
pub trait Circuit<T: Scalar>: Send {
    /// Which circuit this is.
    fn kind(&self) -> WhitenerKind;
    /// Number of primary neurons `n` (= input dimension).
    fn dim(&self) -> usize;
    /// Current learning rate `η`.
    fn learning_rate(&self) -> f64;
    /// Change `η` without touching the state (a DAW automates this).
    fn set_learning_rate(&mut self, eta: f64) -> Result<(), CircuitError>;
    /// The scale `s` of the last (re-)initialisation.
    fn init_scale(&self) -> f64;
    /// Reset to the §2 initialisation at scale `s` (`M₀ = s·I`).
    fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError>;
    /// `r = M⁻¹ x` with the current state, no learning. `x` and `r` have length `n`.
    fn respond(&self, x: &[T], r: &mut [T]);
    /// One online step: `r = M⁻¹ x` with the current state, then the circuit's update with that
    /// `r`. On error the state is left as it was found invalid; call [`Circuit::reinitialise`].
    fn step(&mut self, x: &[T], r: &mut [T]) -> Result<(), CircuitError>;
    /// One step on an averaged outer product `R̂ = mean(r rᴴ)` of responses computed with the
    /// current state (block learning): direct `M ← M + η(R̂ − I)`, interneuron
    /// `W ← W + η(R̂ − I)W`. With `R̂ = M⁻¹CM⁻¹` this is exactly the mean-field step.
    fn step_outer(&mut self, r_outer_mean: &DMatrix<T>) -> Result<(), CircuitError>;
    /// One mean-field step for input covariance `C`: the update with `r rᴴ` replaced by its
    /// expectation `M⁻¹ C M⁻¹`.
    fn mean_field_step(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError>;
    /// Write the effective recurrent matrix `M` (for the interneuron circuit `W Wᴴ`) into `out`.
    fn recurrent_matrix_into(&self, out: &mut DMatrix<T>);
    /// Write `M⁻¹` into `out`.
    fn inverse_recurrent_matrix_into(&mut self, out: &mut DMatrix<T>);
    /// `E(M; C) = ‖M⁻¹CM⁻¹ − I‖_F / √n`, using preallocated scratch space.
    fn whitening_error(&mut self, c: &DMatrix<T>) -> f64;

    /// The effective recurrent matrix `M` (allocates; for analysis, not for the audio path).
    fn recurrent_matrix(&self) -> DMatrix<T> {
        let n = self.dim();
        let mut m = DMatrix::zeros(n, n);
        self.recurrent_matrix_into(&mut m);
        m
    }
}

pub(crate) fn check_eta(eta: f64) -> Result<f64, CircuitError> {
    if eta.is_finite() && eta > 0.0 && eta < 1.0 {
        Ok(eta)
    } else {
        Err(CircuitError::InvalidLearningRate(eta))
    }
}

pub(crate) fn check_scale(scale: f64) -> Result<f64, CircuitError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(scale)
    } else {
        Err(CircuitError::InvalidScale(scale))
    }
}

pub(crate) fn check_square(c: &DMatrix<impl Scalar>, n: usize) -> Result<(), CircuitError> {
    if c.nrows() != n || c.ncols() != n {
        return Err(CircuitError::DimensionMismatch {
            expected: n,
            got: if c.nrows() != n { c.nrows() } else { c.ncols() },
        });
    }
    Ok(())
}
