//! One way to reach every race, whatever its field: the channels framing has one real race,
//! the spectral framing one complex race per band. The engine's setters, the stats emitter and
//! the learned state go through [`AnyRace`] instead of matching on the framing.

use super::integrate::IntegratorCounters;
use super::race::{Race, WhitenerSnapshot, WhitenerSummary};
use super::state::{push_matrix, read_matrix, RaceState};
use super::stats::Eigenvalues;
use super::EngineError;
use crate::circuits::{CircuitError, Scalar};
use crate::whitener::WhitenerKind;

/// What the engine does to a race without knowing its scalar field. No method allocates
/// except [`AnyRace::restore_state`] (and [`AnyRace::write_state`] into a buffer too small).
pub trait AnyRace {
    /// Input dimension `n`.
    fn dim(&self) -> usize;
    /// Interneurons `k` of the interneuron circuit.
    fn interneurons(&self) -> usize;
    /// Change η per update (and the baseline's α) without touching the state.
    fn set_eta(&mut self, eta: f64) -> Result<(), CircuitError>;
    /// Change the noise floor amplitude `ε` (normalised units).
    fn set_floor(&mut self, floor: f64);
    /// Re-initialise every whitener at scale `s`.
    fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError>;
    /// State resets of one whitener so far.
    fn resets(&self, kind: WhitenerKind) -> u64;
    /// Error estimate, eigenvalues and resets of one whitener; the eigenvalues are recomputed
    /// only when `refresh_eigenvalues` (an O(n³) eigendecomposition).
    fn snapshot_with(&mut self, kind: WhitenerKind, refresh_eigenvalues: bool) -> WhitenerSnapshot;
    /// The snapshot's numbers without its eigenvalue spectrum (no 16-value copies; the
    /// spectral stats aggregate every band's).
    fn summary_with(&mut self, kind: WhitenerKind, refresh_eigenvalues: bool) -> WhitenerSummary;
    /// [`AnyRace::summary_with`] of every whitener, in [`WhitenerKind::ALL`]'s order (one
    /// dynamic call per band instead of four).
    fn summaries_with(
        &mut self,
        refresh_eigenvalues: bool,
    ) -> [WhitenerSummary; WhitenerKind::ALL.len()];
    /// The eigenvalues the last snapshot or summary of `kind` reported.
    fn stats_eigenvalues(&self, kind: WhitenerKind) -> Eigenvalues;
    /// What the block integrator did so far (sub-steps, floors, capped blocks).
    fn integrator_counters(&self) -> IntegratorCounters;
    /// The input power the baseline has estimated, `tr Ĉ = Σ λ(Ĉ^{1/2})²` (picks the loudest
    /// band for the stats' eigenvalue spectrum).
    fn estimated_power(&self) -> f64;
    /// Copy the learned matrices into `out` (allocation-free when it has room).
    fn write_state(&self, out: &mut RaceState);
    /// Restore learned matrices saved by [`AnyRace::write_state`] from a race of the same
    /// shape. Allocates.
    fn restore_state(&mut self, state: &RaceState) -> Result<(), EngineError>;
}

impl<T: Scalar> AnyRace for Race<T> {
    fn dim(&self) -> usize {
        Race::dim(self)
    }

    fn interneurons(&self) -> usize {
        self.interneuron().interneurons()
    }

    fn set_eta(&mut self, eta: f64) -> Result<(), CircuitError> {
        Race::set_eta(self, eta)
    }

    fn set_floor(&mut self, floor: f64) {
        Race::set_floor(self, floor)
    }

    fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        Race::reinitialise(self, scale)
    }

    fn resets(&self, kind: WhitenerKind) -> u64 {
        Race::resets(self, kind)
    }

    fn snapshot_with(&mut self, kind: WhitenerKind, refresh_eigenvalues: bool) -> WhitenerSnapshot {
        Race::snapshot_with(self, kind, refresh_eigenvalues)
    }

    fn summary_with(&mut self, kind: WhitenerKind, refresh_eigenvalues: bool) -> WhitenerSummary {
        Race::summary_with(self, kind, refresh_eigenvalues)
    }

    fn summaries_with(
        &mut self,
        refresh_eigenvalues: bool,
    ) -> [WhitenerSummary; WhitenerKind::ALL.len()] {
        Race::summaries_with(self, refresh_eigenvalues)
    }

    fn stats_eigenvalues(&self, kind: WhitenerKind) -> Eigenvalues {
        *Race::stats_eigenvalues(self, kind)
    }

    fn integrator_counters(&self) -> IntegratorCounters {
        Race::integrator_counters(self)
    }

    fn estimated_power(&self) -> f64 {
        self.baseline()
            .recurrent_eigenvalues()
            .iter()
            .map(|l| l * l)
            .sum()
    }

    fn write_state(&self, out: &mut RaceState) {
        push_matrix(self.direct().m(), &mut out.direct_m);
        push_matrix(self.interneuron().w(), &mut out.interneuron_w);
        push_matrix(self.baseline().covariance(), &mut out.baseline_c);
        out.gain_g.clear();
        out.gain_g.extend_from_slice(self.gain().gains());
    }

    fn restore_state(&mut self, state: &RaceState) -> Result<(), EngineError> {
        let (n, k) = (Race::dim(self), AnyRace::interneurons(self));
        let m = read_matrix::<T>(&state.direct_m, n, n)?;
        let w = read_matrix::<T>(&state.interneuron_w, n, k)?;
        let c = read_matrix::<T>(&state.baseline_c, n, n)?;
        self.restore(&m, &w, &c)?;
        if !state.gain_g.is_empty() {
            self.restore_gains(&state.gain_g)?;
        }
        Ok(())
    }
}
