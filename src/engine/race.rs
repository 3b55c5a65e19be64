//! The race (docs/DESIGN.md §5): the direct circuit, the interneuron circuit, the classical
//! baseline and the gain-modulating circuit learn from the same input statistics; any of them
//! can feed the output.
//!
//! Learning is done once per block of `L` input vectors with the averaged outer product
//! (docs/DESIGN.md §4). Within a block every whitener's response matrix `P = M⁻¹` is
//! fixed, so the averaged outer product of its responses is exactly `R̂ = P X̂ P` where
//! `X̂ = mean x xᴴ` is the input's. The input outer product is therefore accumulated once and
//! shared, and per-vector work is only the response of the whitener that is being heard.
//!
//! **Noise floor.** The circuits learn from `P (X̂ + ε² I) P` instead of `P X̂ P`: the
//! response to the input plus an independent white noise of power `ε²`, in expectation. Their
//! fixed point is then `M* = (C + ε² I)^{1/2}`, whose eigenvalues are at least `ε`, so silence
//! can never drive `M` singular, and the gain `M⁻¹` is bounded by `1/ε`.
//!
//! **Silence.** A block whose input power is under `10 ε²` (with the default floor, −80 dBFS
//! relative to the reference level) carries no statistics worth learning: the whiteners keep
//! their state, so a pause in playback does not make them forget, and the direct circuit is
//! not driven down to `M ≈ ε`, where its Euler steps would be unstable (see `MAX_STIFF_STEP`).

use super::estimate::OutputEstimate;
use super::integrate::{BlockIntegrator, IntegratorCounters, Span};
use super::params::MAX_CHANNELS;
use super::stats::Eigenvalues;
use crate::baseline::ZcaBaseline;
use crate::circuits::{
    hermitian_sandwich_into, Circuit, CircuitError, DirectCircuit, GainModulatingCircuit,
    InterneuronBasis, InterneuronCircuit, Scalar, Solver,
};
use crate::eigen::{HermitianEigen, SymmetricEigenvalues};
use crate::whitener::WhitenerKind;
use nalgebra::DMatrix;

/// Blocks whose input power is below this multiple of the floor power `ε²` are silence: they
/// carry no statistics, so the whiteners keep their state instead of learning "the floor"
/// (which would drag `M` down to `ε` and, for the direct circuit, below its stable step size).
pub const SILENCE_FLOOR_FACTOR: f64 = 10.0;

/// Learning blocks per baseline update.
pub const BASELINE_STRIDE: usize = 4;

/// The baseline's smoothing factor per update of `BASELINE_STRIDE` blocks of `t` each (in
/// units of τ): `1 − e^{−stride·t}`, the exact decay of `dĈ/dτ = C − Ĉ` over that time — the
/// continuous-time law the circuits' theory is stated in (docs/DESIGN.md §2.8). Capped at
/// [`MAX_BASELINE_ALPHA`]: a narrow spectral band's update can span several τ (docs/DESIGN.md
/// §3.2), where the exact factor rounds to 1, which the baseline refuses (it would keep nothing
/// of its estimate).
fn baseline_alpha(t: f64) -> f64 {
    (-(-(BASELINE_STRIDE as f64) * t).exp_m1()).min(MAX_BASELINE_ALPHA)
}

/// The largest smoothing factor handed to the baseline: `1 − e^{−7}`, within 0.1 % of a
/// complete replacement.
pub const MAX_BASELINE_ALPHA: f64 = 0.999;

/// The learning rate handed to the circuits themselves (their own steps need `η < 1`); the
/// block's time span is integrated in sub-steps regardless ([`BlockIntegrator`]).
fn circuit_eta(t: f64) -> f64 {
    t.min(0.5)
}

/// Whiteners in a race: the length of every per-whitener array.
const KINDS: usize = WhitenerKind::ALL.len();

/// The race's circuits, whose dynamics the block integrator carries out (docs/DESIGN.md §4.3).
const CIRCUITS: [WhitenerKind; 3] = [
    WhitenerKind::Direct,
    WhitenerKind::Interneuron,
    WhitenerKind::Gain,
];

/// Per-whitener numbers the stats record reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WhitenerSnapshot {
    /// Whitening error of the whitener's own output over a short window,
    /// `‖R̄ − I‖_F / √n` with `R̄` the smoothed output covariance.
    pub error: f64,
    /// Smallest eigenvalue of the (equivalent) recurrent matrix `M`.
    pub eig_min: f64,
    /// Largest eigenvalue of `M`.
    pub eig_max: f64,
    /// Every eigenvalue of `M`, ascending.
    pub eigenvalues: Eigenvalues,
    /// State resets (non-finite or non-positive-definite state) so far.
    pub resets: u64,
}

/// A [`WhitenerSnapshot`] without the eigenvalue spectrum.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WhitenerSummary {
    /// Whitening error of the whitener's own output (as [`WhitenerSnapshot::error`]).
    pub error: f64,
    /// Smallest eigenvalue of the (equivalent) recurrent matrix `M`.
    pub eig_min: f64,
    /// Largest eigenvalue of `M`.
    pub eig_max: f64,
    /// State resets so far.
    pub resets: u64,
}

/// The whiteners of one input space of dimension `n`, with every buffer they need.
#[derive(Debug)]
pub struct Race<T: Scalar> {
    /// Direct circuit.
    direct: DirectCircuit<T>,
    /// Interneuron circuit.
    interneuron: InterneuronCircuit<T>,
    /// Classical baseline.
    baseline: ZcaBaseline<T>,
    /// Gain-modulating circuit (docs/DESIGN.md §2.9), synapses fixed: the pairs frame up to
    /// `RACE_SPANNING_MAX_CHANNELS`, one interneuron per channel above.
    gain: GainModulatingCircuit<T>,
    /// Response matrices `P = M⁻¹` of the whiteners, refreshed after each block.
    p: [DMatrix<T>; KINDS],
    /// Smoothed output covariances `R̄` of the whiteners (for the error estimate).
    out_cov: [OutputEstimate<T>; KINDS],
    /// Smoothing factor per block of the error estimate at rest.
    error_alpha: f64,
    /// Noise floor power `ε²` (in the circuit's normalised units).
    floor2: f64,
    /// State resets per whitener.
    resets: [u64; KINDS],
    /// Scale of the last (re-)initialisation, restored on a reset.
    init_scale: f64,
    /// `X̂ + ε²I`.
    x_floor: DMatrix<T>,
    /// n×n scratch.
    scratch_a: DMatrix<T>,
    /// n×n scratch.
    scratch_b: DMatrix<T>,
    /// Eigen-solvers for the eigenvalues of a complex `M` (and of n ≤ 2, in closed form) in
    /// snapshots, one per circuit so each warm-starts from its own previous decomposition
    /// (indexed by whitener; the baseline's slot is unused, it has its own). A real `M` of
    /// three or more channels goes through `real_eigenvalues` instead.
    eig: [HermitianEigen<T>; KINDS],
    /// The stats' eigenvalues of a real `M` (channels framing): eigenvalues only, by
    /// tridiagonal reduction, where [`Race::eig`]'s warm Jacobi also keeps the eigenvectors it
    /// needs for its next warm start (docs/DESIGN.md §5.5).
    real_eigenvalues: SymmetricEigenvalues,
    /// Sum of the input outer products since the baseline's last update.
    baseline_acc: DMatrix<T>,
    /// Blocks accumulated in `baseline_acc`.
    baseline_count: usize,
    /// Last computed eigenvalues of `M` per whitener, for snapshots that skip the
    /// eigendecomposition.
    eig_cache: [Eigenvalues; KINDS],
    /// Time span of one block in units of τ (`L·η` per block), integrated by `integrator`.
    block_time: f64,
    /// Integrates the circuits' dynamics over a block (docs/DESIGN.md §4).
    integrator: BlockIntegrator<T>,
    /// What is left of the learning updates begun by [`Race::begin_learning`]
    /// (docs/DESIGN.md §4.6).
    pending: Pending,
    /// The statistics `X̂ + ε²I` each circuit integrates with while its update is pending
    /// (indexed by whitener; the baseline's slot is unused): an update that is merged into an
    /// unfinished one averages them.
    x_task: [DMatrix<T>; KINDS],
    /// `R̂ = P X P` of each circuit for the `P` of the update's start: the integrator's first
    /// sub-step (formed for the error estimate anyway; the baseline's slot is unused).
    r0: [DMatrix<T>; KINDS],
    /// Counts the changes of the response matrices that listeners of the settled state care
    /// about: a completed learning update, a reset, a re-initialisation or restore. Shaped
    /// copies of `P` (docs/DESIGN.md §3.7) are remade when it moves.
    response_generation: u64,
}

/// What is left of a learning update: each circuit's integration and the baseline's update.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    /// The direct circuit's integration.
    direct: Span,
    /// The interneuron circuit's integration.
    interneuron: Span,
    /// The gain-modulating circuit's integration.
    gain: Span,
    /// The baseline updates on the mean of its accumulated blocks.
    baseline: bool,
}

impl Pending {
    fn idle(&self) -> bool {
        self.direct.done() && self.interneuron.done() && self.gain.done() && !self.baseline
    }

    /// The integration of one of [`CIRCUITS`].
    fn span(&mut self, kind: WhitenerKind) -> &mut Span {
        match kind {
            WhitenerKind::Direct => &mut self.direct,
            WhitenerKind::Interneuron => &mut self.interneuron,
            _ => &mut self.gain,
        }
    }
}

/// Work units of a baseline update (a warm eigendecomposition of a smoothed covariance that
/// changed little: two or three sweeps) against which [`Race::advance_learning`]'s budget is
/// counted.
pub const BASELINE_UNITS: usize = 3;

/// Settings shared by every whitener of a race.
#[derive(Clone, Copy, Debug)]
pub struct RaceSettings {
    /// Time span of one block update in units of τ: the per-vector learning rate times the
    /// vectors per update (`L·η`).
    pub eta: f64,
    /// Interneurons `k ≥ n` of the interneuron circuit (the gain circuit's `k` is its frame's).
    pub interneurons: usize,
    /// Initial scale `s`.
    pub init_scale: f64,
    /// Noise floor amplitude `ε` in normalised units.
    pub floor: f64,
    /// Smoothing factor per block of the output-covariance mean (`OutputEstimate`).
    pub error_alpha: f64,
}

impl<T: Scalar> Race<T> {
    /// Allocate everything for dimension `n`.
    pub fn new(n: usize, s: &RaceSettings) -> Result<Self, CircuitError> {
        let k = s.interneurons.max(n);
        let mut race = Self {
            direct: DirectCircuit::new(n, circuit_eta(s.eta), s.init_scale)?,
            interneuron: InterneuronCircuit::new(
                n,
                k,
                circuit_eta(s.eta),
                s.init_scale,
                InterneuronBasis::Dct,
                // Block learning re-forms M⁻¹ exactly each update; the rank-one fast path is
                // for per-sample (raw) learning.
                Solver::Naive,
            )?,
            baseline: ZcaBaseline::new(n, baseline_alpha(s.eta), s.floor, s.init_scale)?,
            gain: GainModulatingCircuit::racing(n, circuit_eta(s.eta), s.init_scale)?,
            p: std::array::from_fn(|_| DMatrix::zeros(n, n)),
            out_cov: std::array::from_fn(|_| OutputEstimate::new(&DMatrix::identity(n, n))),
            error_alpha: s.error_alpha,
            floor2: s.floor * s.floor,
            resets: [0; KINDS],
            init_scale: s.init_scale,
            x_floor: DMatrix::zeros(n, n),
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
            eig: std::array::from_fn(|_| {
                let mut e = HermitianEigen::new(n);
                // Stats need a few significant digits, not machine precision: each eigenvalue
                // within 10⁻⁶ ‖M‖_F (Weyl), usually a sweep fewer than 10⁻⁹ (docs/DESIGN.md §5.5).
                e.set_tolerance(1e-6);
                e
            }),
            real_eigenvalues: SymmetricEigenvalues::new(n),
            baseline_acc: DMatrix::zeros(n, n),
            baseline_count: 0,
            eig_cache: [Eigenvalues::from_slice(&vec![s.init_scale; n]); KINDS],
            block_time: s.eta,
            integrator: BlockIntegrator::new(n),
            pending: Pending::default(),
            x_task: std::array::from_fn(|_| DMatrix::zeros(n, n)),
            r0: std::array::from_fn(|_| DMatrix::zeros(n, n)),
            response_generation: 0,
        };
        race.refresh_responses();
        Ok(race)
    }

    /// Dimension `n`.
    pub fn dim(&self) -> usize {
        self.x_floor.nrows()
    }

    /// Change η (and the baseline's α) without touching the state.
    pub fn set_eta(&mut self, eta: f64) -> Result<(), CircuitError> {
        if !(eta.is_finite() && eta > 0.0) {
            return Err(CircuitError::InvalidLearningRate(eta));
        }
        self.direct.set_learning_rate(circuit_eta(eta))?;
        self.interneuron.set_learning_rate(circuit_eta(eta))?;
        // Keeps η_w/η_g (the racing circuit's synapses stay as much slower as configured).
        Circuit::set_learning_rate(&mut self.gain, circuit_eta(eta))?;
        self.block_time = eta;
        self.baseline.set_alpha(baseline_alpha(eta))
    }

    /// Change the noise floor amplitude `ε`.
    pub fn set_floor(&mut self, floor: f64) {
        self.floor2 = floor * floor;
        self.baseline.set_floor(floor);
    }

    /// Re-initialise every whitener at scale `s` (the paper's experiment, live).
    pub fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        self.pending = Pending::default();
        self.direct.reinitialise(scale)?;
        self.interneuron.reinitialise(scale)?;
        self.baseline.reinitialise(scale)?;
        self.gain.reinitialise(scale)?;
        self.init_scale = scale;
        self.refresh_responses();
        Ok(())
    }

    /// State resets of one whitener so far.
    pub fn resets(&self, kind: WhitenerKind) -> u64 {
        self.resets[kind.index()]
    }

    /// The direct circuit.
    pub fn direct(&self) -> &DirectCircuit<T> {
        &self.direct
    }

    /// The interneuron circuit.
    pub fn interneuron(&self) -> &InterneuronCircuit<T> {
        &self.interneuron
    }

    /// The baseline.
    pub fn baseline(&self) -> &ZcaBaseline<T> {
        &self.baseline
    }

    /// The gain-modulating circuit.
    pub fn gain(&self) -> &GainModulatingCircuit<T> {
        &self.gain
    }

    /// Restore learned state: the direct circuit's `M`, the interneuron circuit's `W` and the
    /// baseline's `Ĉ`. On an error every whitener is re-initialised at the current scale (a
    /// half-restored race would race from different starting points).
    pub fn restore(
        &mut self,
        m: &DMatrix<T>,
        w: &DMatrix<T>,
        c: &DMatrix<T>,
    ) -> Result<(), CircuitError> {
        self.pending = Pending::default();
        let result = self
            .direct
            .set_m(m)
            .and_then(|_| self.interneuron.set_w(w))
            .and_then(|_| self.baseline.set_covariance(c));
        if result.is_err() {
            self.reinitialise(self.init_scale)?;
        }
        self.refresh_responses();
        result
    }

    /// Restore the gain circuit's gains (on its fixed frame). If they are not finite, of the
    /// wrong count or make `M` indefinite, it is re-initialised at the current scale instead.
    pub fn restore_gains(&mut self, g: &[f64]) -> Result<(), CircuitError> {
        self.pending.gain = Span::default();
        let finite = g.iter().all(|v| v.is_finite());
        let result = match finite {
            true => self.gain.set_gains(g),
            false => Err(CircuitError::NotPositiveDefinite),
        };
        if result.is_err() {
            self.gain.reinitialise(self.init_scale)?;
        }
        self.refresh_responses();
        result
    }

    /// The response matrix `P` of a whitener.
    pub fn response_matrix(&self, kind: WhitenerKind) -> &DMatrix<T> {
        &self.p[kind.index()]
    }

    /// Changes with every settled change of the response matrices: a completed learning
    /// update, a reset, a re-initialisation or a restore (not the intermediate states of an
    /// update spread over host calls).
    pub fn response_generation(&self) -> u64 {
        self.response_generation
    }

    fn refresh_responses(&mut self) {
        self.response_generation += 1;
        self.direct
            .inverse_recurrent_matrix_into(&mut self.p[WhitenerKind::Direct.index()]);
        self.interneuron
            .inverse_recurrent_matrix_into(&mut self.p[WhitenerKind::Interneuron.index()]);
        self.p[WhitenerKind::Baseline.index()].copy_from(self.baseline.whitening_matrix());
        self.gain
            .inverse_recurrent_matrix_into(&mut self.p[WhitenerKind::Gain.index()]);
        for (est, p) in self.out_cov.iter_mut().zip(&self.p) {
            est.state_moved_to(p);
        }
    }

    /// `r = P x` for one whitener. No allocation.
    #[inline]
    pub fn respond(&self, kind: WhitenerKind, x: &[T], r: &mut [T]) {
        // A plain column-major loop: this runs once per sample, where building nalgebra views
        // costs more than the n² multiply-adds themselves for small n.
        let n = self.dim();
        let p = self.p[kind.index()].as_slice();
        let r = &mut r[..n];
        r.fill(T::zero());
        for (j, xj) in x[..n].iter().enumerate() {
            let col = &p[j * n..(j + 1) * n];
            for (ri, pij) in r.iter_mut().zip(col) {
                *ri += *pij * *xj;
            }
        }
    }

    /// One learning step of every whitener from the mean input outer product `X̂` of a block,
    /// carried out at once ([`Race::begin_learning`] then [`Race::finish_learning`]).
    /// Learning can be frozen (`learn = false`) while the error estimate keeps running. A
    /// whitener whose state becomes non-finite or leaves the positive-definite cone is
    /// re-initialised and the reset counted. No allocation.
    pub fn learn(&mut self, x_outer_mean: &DMatrix<T>, learn: bool) {
        self.begin_learning(x_outer_mean, learn);
        self.finish_learning();
    }

    /// Begin the learning update from a block's mean input outer product `X̂`: the error
    /// estimate takes the block's output covariance now; the circuits' integration and the
    /// baseline's update are left for [`Race::advance_learning`] to carry out in slices
    /// (docs/DESIGN.md §4.6). A circuit whose previous update is unfinished continues it over
    /// both spans with their time-weighted mean statistics (counted in
    /// [`IntegratorCounters::merged`]). No allocation.
    pub fn begin_learning(&mut self, x_outer_mean: &DMatrix<T>, learn: bool) {
        if self.pending.baseline {
            // Cheap and due: never let it pile up behind the circuits.
            self.update_baseline();
        }
        let n = self.dim();
        let power: f64 = (0..n).map(|i| x_outer_mean[(i, i)].real()).sum::<f64>() / n as f64;
        let silent = power < SILENCE_FLOOR_FACTOR * self.floor2;
        let learn = learn && !silent;
        let xf = self.x_floor.as_mut_slice();
        xf.copy_from_slice(x_outer_mean.as_slice());
        for i in 0..n {
            xf[i + i * n] += T::from_real(self.floor2);
        }
        for kind in WhitenerKind::ALL {
            let idx = kind.index();
            // R̂ = P (X̂ + ε²I) P: the block's output covariance including the virtual floor
            // noise (so during silence the floor itself is whitened and the error stays small
            // instead of reading as "output missing").
            let r = match kind {
                WhitenerKind::Baseline => &mut self.scratch_b,
                _ => &mut self.r0[idx],
            };
            hermitian_sandwich_into(r, &self.p[idx], &self.x_floor, &mut self.scratch_a);
            self.out_cov[idx].push(r, self.error_alpha);
        }
        if !learn {
            return;
        }
        let t = self.block_time;
        for kind in CIRCUITS {
            let idx = kind.index();
            let span = self.pending.span(kind);
            if span.done() {
                *span = Span::new(t);
                self.x_task[idx]
                    .as_mut_slice()
                    .copy_from_slice(self.x_floor.as_slice());
            } else {
                // X ← (ℓ X + T X̂) / (ℓ + T): the dynamics are linear in X, so integrating the
                // remaining ℓ and the new T together with the mean is the block rule over a
                // longer block (docs/DESIGN.md §4.6).
                self.integrator.counters.merged += 1;
                let (a, b) = (span.left / (span.left + t), t / (span.left + t));
                span.extend(t);
                for (xt, xn) in self.x_task[idx].iter_mut().zip(self.x_floor.iter()) {
                    *xt = xt.scale(a) + xn.scale(b);
                }
            }
        }
        // The eigendecomposition is the costliest part of the baseline: it updates every
        // BASELINE_STRIDE blocks on their mean, with the smoothing factor of the blocks' span
        // (`baseline_alpha`), so its time constant stays that of the circuits.
        for (acc, x) in self
            .baseline_acc
            .as_mut_slice()
            .iter_mut()
            .zip(x_outer_mean.as_slice())
        {
            *acc += *x;
        }
        self.baseline_count += 1;
        self.pending.baseline = self.baseline_count >= BASELINE_STRIDE;
    }

    /// Whether a learning update is begun and not yet carried out.
    pub fn learning_pending(&self) -> bool {
        !self.pending.idle()
    }

    /// Carry out the pending learning update completely.
    pub fn finish_learning(&mut self) {
        if !self.pending.idle() {
            self.advance_learning(usize::MAX);
        }
    }

    /// Carry out at most about `budget` work units of the pending learning update (the
    /// baseline's update is [`BASELINE_UNITS`], a circuit's sub-step
    /// [`SUBSTEP_UNITS`](super::integrate::SUBSTEP_UNITS) plus its eigendecomposition's
    /// sweeps; the last sub-step may overrun the budget) and return the units used. Once the
    /// update is complete every whitener's response matrix is refreshed; between calls the
    /// circuits' response matrices are their state part way through it. No allocation.
    pub fn advance_learning(&mut self, budget: usize) -> usize {
        if self.pending.idle() || budget == 0 {
            return 0;
        }
        let mut used = 0;
        if self.pending.baseline {
            used += BASELINE_UNITS;
            self.update_baseline();
        }
        let floor = self.floor2.sqrt();
        for kind in CIRCUITS {
            if used >= budget {
                return used;
            }
            let idx = kind.index();
            let result = match kind {
                WhitenerKind::Direct if !self.pending.direct.done() => {
                    self.integrator.direct_steps(
                        &mut self.direct,
                        &mut self.p[idx],
                        &self.x_task[idx],
                        Some(&self.r0[idx]),
                        &mut self.pending.direct,
                        floor,
                        budget - used,
                    )
                }
                WhitenerKind::Interneuron if !self.pending.interneuron.done() => {
                    self.integrator.interneuron_steps(
                        &mut self.interneuron,
                        &mut self.p[idx],
                        &self.x_task[idx],
                        Some(&self.r0[idx]),
                        &mut self.pending.interneuron,
                        budget - used,
                    )
                }
                WhitenerKind::Gain if !self.pending.gain.done() => self.integrator.gain_steps(
                    &mut self.gain,
                    &mut self.p[idx],
                    &self.x_task[idx],
                    Some(&self.r0[idx]),
                    &mut self.pending.gain,
                    budget - used,
                ),
                _ => Ok(0),
            };
            match result {
                Ok(units) => used += units,
                Err(_) => {
                    // A failed sub-step counts as one unit; the circuit starts afresh.
                    used += 1;
                    self.reset(kind);
                }
            }
        }
        if self.pending.idle() {
            // Every `P` is current already: the integrator refreshes a circuit's after each
            // sub-step, `update_baseline` and `reset` theirs. Only the error estimates need to
            // hear how far each moved.
            for (est, p) in self.out_cov.iter_mut().zip(&self.p) {
                est.state_moved_to(p);
            }
            self.response_generation += 1;
        }
        used
    }

    /// The baseline's update on the mean of its accumulated blocks.
    fn update_baseline(&mut self) {
        self.pending.baseline = false;
        self.baseline_acc /= T::from_real(self.baseline_count as f64);
        self.baseline_count = 0;
        let r = self.baseline.update(&self.baseline_acc);
        self.baseline_acc.fill(T::zero());
        if r.is_err() {
            self.reset(WhitenerKind::Baseline);
        } else {
            let idx = WhitenerKind::Baseline.index();
            self.p[idx].copy_from(self.baseline.whitening_matrix());
        }
    }

    /// Re-initialise one whitener whose state became unusable, end its pending integration
    /// and count the reset.
    fn reset(&mut self, kind: WhitenerKind) {
        self.resets[kind.index()] += 1;
        self.response_generation += 1;
        let s = self.init_scale;
        // Scales were validated at construction, so these cannot fail.
        let _ = match kind {
            WhitenerKind::Direct => {
                self.pending.direct = Span::default();
                self.direct.reinitialise(s)
            }
            WhitenerKind::Interneuron => {
                self.pending.interneuron = Span::default();
                self.interneuron.reinitialise(s)
            }
            WhitenerKind::Baseline => self.baseline.reinitialise(s),
            WhitenerKind::Gain => {
                self.pending.gain = Span::default();
                self.gain.reinitialise(s)
            }
        };
        let idx = kind.index();
        match kind {
            WhitenerKind::Direct => self.direct.inverse_recurrent_matrix_into(&mut self.p[idx]),
            WhitenerKind::Interneuron => self
                .interneuron
                .inverse_recurrent_matrix_into(&mut self.p[idx]),
            WhitenerKind::Baseline => self.p[idx].copy_from(self.baseline.whitening_matrix()),
            WhitenerKind::Gain => self.gain.inverse_recurrent_matrix_into(&mut self.p[idx]),
        }
    }

    /// A whitener's whitening error over its recent output, `‖R̄ − I‖_F / √n` (docs/DESIGN.md
    /// §5.3).
    pub fn error(&self, kind: WhitenerKind) -> f64 {
        self.out_cov[kind.index()].error()
    }

    /// What the block integrator has done so far (sub-steps, floors, capped blocks).
    pub fn integrator_counters(&self) -> IntegratorCounters {
        self.integrator.counters
    }

    /// Error estimate, extreme eigenvalues of `M` and resets of one whitener. Costs one
    /// eigendecomposition (O(n³)); called once per stats interval, not per sample.
    pub fn snapshot(&mut self, kind: WhitenerKind) -> WhitenerSnapshot {
        self.snapshot_with(kind, true)
    }

    /// Like [`Race::snapshot`], but with `refresh_eigenvalues = false` the extreme eigenvalues
    /// are the ones computed at the last refresh (the spectral framing refreshes its many bands
    /// round-robin to keep the stats cheap).
    pub fn snapshot_with(
        &mut self,
        kind: WhitenerKind,
        refresh_eigenvalues: bool,
    ) -> WhitenerSnapshot {
        let summary = self.summary_with(kind, refresh_eigenvalues);
        WhitenerSnapshot {
            error: summary.error,
            eig_min: summary.eig_min,
            eig_max: summary.eig_max,
            eigenvalues: self.eig_cache[kind.index()],
            resets: summary.resets,
        }
    }

    /// [`Race::snapshot_with`] without the eigenvalue spectrum (the spectral framing's stats
    /// aggregate every band's extremes but show one band's spectrum); the spectrum stays in
    /// [`Race::stats_eigenvalues`].
    #[inline]
    pub fn summary_with(
        &mut self,
        kind: WhitenerKind,
        refresh_eigenvalues: bool,
    ) -> WhitenerSummary {
        let idx = kind.index();
        let error = self.error(kind);
        if refresh_eigenvalues {
            self.refresh_stats_eigenvalues(kind);
        }
        let e = self.eig_cache[idx].as_slice();
        let (eig_min, eig_max) = match (e.first(), e.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (f64::NAN, f64::NAN),
        };
        WhitenerSummary {
            error,
            eig_min,
            eig_max,
            resets: self.resets[idx],
        }
    }

    /// [`Race::summary_with`] of every whitener, in [`WhitenerKind::ALL`]'s order: the
    /// spectral stats read every band's four in one call.
    pub fn summaries_with(
        &mut self,
        refresh_eigenvalues: bool,
    ) -> [WhitenerSummary; WhitenerKind::ALL.len()] {
        let mut out = [WhitenerSummary::default(); WhitenerKind::ALL.len()];
        for (o, kind) in out.iter_mut().zip(WhitenerKind::ALL) {
            *o = self.summary_with(kind, refresh_eigenvalues);
        }
        out
    }

    /// The eigenvalues of `M` the last snapshot or summary of `kind` reported.
    pub fn stats_eigenvalues(&self, kind: WhitenerKind) -> &Eigenvalues {
        &self.eig_cache[kind.index()]
    }

    /// Recompute the eigenvalues of `kind`'s `M` for the stats into `eig_cache`.
    fn refresh_stats_eigenvalues(&mut self, kind: WhitenerKind) {
        let n = self.dim();
        let idx = kind.index();
        // The direct circuit's, at rest, from its integrator's last step (docs/DESIGN.md §5.5).
        let integrated = match kind {
            WhitenerKind::Direct => self.integrator.direct_eigenvalues(),
            _ => None,
        };
        self.eig_cache[idx] = match (kind, integrated) {
            (_, Some(mu)) => Eigenvalues::from_slice(mu),
            (WhitenerKind::Baseline, _) => {
                Eigenvalues::from_slice(self.baseline.recurrent_eigenvalues())
            }
            _ => {
                match kind {
                    WhitenerKind::Direct => self.direct.recurrent_matrix_into(&mut self.scratch_a),
                    WhitenerKind::Gain => self.gain.recurrent_matrix_into(&mut self.scratch_a),
                    _ => self.interneuron.recurrent_matrix_into(&mut self.scratch_a),
                }
                let failed =
                    || Eigenvalues::from_slice(&[f64::NAN; MAX_CHANNELS][..n.min(MAX_CHANNELS)]);
                if let (Some(m), true) = (T::as_reals(self.scratch_a.as_slice()), n > 2) {
                    match self.real_eigenvalues.compute(m) {
                        Ok(mu) => Eigenvalues::from_slice(mu),
                        Err(_) => failed(),
                    }
                } else {
                    let eig = &mut self.eig[idx];
                    if eig.decompose_warm(&self.scratch_a).is_ok() {
                        Eigenvalues::from_slice(eig.eigenvalues())
                    } else {
                        failed()
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests;
