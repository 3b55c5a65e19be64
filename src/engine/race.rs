//! The race (docs/DESIGN.md §5): the direct circuit, the interneuron circuit and the classical
//! baseline learn from the same input statistics; any of them can feed the output.
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
use super::integrate::{BlockIntegrator, IntegratorCounters};
use super::params::MAX_CHANNELS;
use super::stats::Eigenvalues;
use crate::baseline::ZcaBaseline;
use crate::circuits::{
    matmul_into, Circuit, CircuitError, DirectCircuit, InterneuronBasis, InterneuronCircuit,
    Scalar, Solver,
};
use crate::eigen::HermitianEigen;
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

/// The three whiteners of one input space of dimension `n`, with every buffer they need.
#[derive(Debug)]
pub struct Race<T: Scalar> {
    /// Direct circuit.
    direct: DirectCircuit<T>,
    /// Interneuron circuit.
    interneuron: InterneuronCircuit<T>,
    /// Classical baseline.
    baseline: ZcaBaseline<T>,
    /// Response matrices `P = M⁻¹` of the three whiteners, refreshed after each block.
    p: [DMatrix<T>; 3],
    /// Smoothed output covariances `R̄` of the three whiteners (for the error estimate).
    out_cov: [OutputEstimate<T>; 3],
    /// Smoothing factor per block of the error estimate at rest.
    error_alpha: f64,
    /// Noise floor power `ε²` (in the circuit's normalised units).
    floor2: f64,
    /// State resets per whitener.
    resets: [u64; 3],
    /// Scale of the last (re-)initialisation, restored on a reset.
    init_scale: f64,
    /// `X̂ + ε²I`.
    x_floor: DMatrix<T>,
    /// n×n scratch.
    scratch_a: DMatrix<T>,
    /// n×n scratch.
    scratch_b: DMatrix<T>,
    /// Eigen-solvers for the extreme eigenvalues of `M` in snapshots, one per circuit so each
    /// warm-starts from its own previous decomposition.
    eig: [HermitianEigen<T>; 2],
    /// Sum of the input outer products since the baseline's last update.
    baseline_acc: DMatrix<T>,
    /// Blocks accumulated in `baseline_acc`.
    baseline_count: usize,
    /// Last computed eigenvalues of `M` per whitener, for snapshots that skip the
    /// eigendecomposition.
    eig_cache: [Eigenvalues; 3],
    /// Time span of one block in units of τ (`L·η` per block), integrated by `integrator`.
    block_time: f64,
    /// Integrates the circuits' dynamics over a block (docs/DESIGN.md §4).
    integrator: BlockIntegrator<T>,
}

/// Settings shared by every whitener of a race.
#[derive(Clone, Copy, Debug)]
pub struct RaceSettings {
    /// Time span of one block update in units of τ: the per-vector learning rate times the
    /// vectors per update (`L·η`).
    pub eta: f64,
    /// Interneurons `k ≥ n`.
    pub interneurons: usize,
    /// Initial scale `s`.
    pub init_scale: f64,
    /// Noise floor amplitude `ε` in normalised units.
    pub floor: f64,
    /// Smoothing factor per block of the output-covariance mean ([`OutputEstimate`]).
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
            p: std::array::from_fn(|_| DMatrix::zeros(n, n)),
            out_cov: std::array::from_fn(|_| OutputEstimate::new(&DMatrix::identity(n, n))),
            error_alpha: s.error_alpha,
            floor2: s.floor * s.floor,
            resets: [0; 3],
            init_scale: s.init_scale,
            x_floor: DMatrix::zeros(n, n),
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
            eig: std::array::from_fn(|_| {
                let mut e = HermitianEigen::new(n);
                // Stats need a few significant digits, not machine precision.
                e.set_tolerance(1e-9);
                e
            }),
            baseline_acc: DMatrix::zeros(n, n),
            baseline_count: 0,
            eig_cache: [Eigenvalues::from_slice(&vec![s.init_scale; n]); 3],
            block_time: s.eta,
            integrator: BlockIntegrator::new(n),
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
        self.direct.reinitialise(scale)?;
        self.interneuron.reinitialise(scale)?;
        self.baseline.reinitialise(scale)?;
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

    /// Restore learned state: the direct circuit's `M`, the interneuron circuit's `W` and the
    /// baseline's `Ĉ`. On an error every whitener is re-initialised at the current scale (a
    /// half-restored race would race from different starting points).
    pub fn restore(
        &mut self,
        m: &DMatrix<T>,
        w: &DMatrix<T>,
        c: &DMatrix<T>,
    ) -> Result<(), CircuitError> {
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

    /// The response matrix `P` of a whitener.
    pub fn response_matrix(&self, kind: WhitenerKind) -> &DMatrix<T> {
        &self.p[kind.index()]
    }

    fn refresh_responses(&mut self) {
        self.direct
            .inverse_recurrent_matrix_into(&mut self.p[WhitenerKind::Direct.index()]);
        self.interneuron
            .inverse_recurrent_matrix_into(&mut self.p[WhitenerKind::Interneuron.index()]);
        self.p[WhitenerKind::Baseline.index()].copy_from(self.baseline.whitening_matrix());
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

    /// One learning step of every whitener from the mean input outer product `X̂` of a block.
    /// Learning can be frozen (`learn = false`) while the error estimate keeps running. A
    /// whitener whose state becomes non-finite or leaves the positive-definite cone is
    /// re-initialised and the reset counted. No allocation.
    pub fn learn(&mut self, x_outer_mean: &DMatrix<T>, learn: bool) {
        let n = self.dim();
        let power: f64 = (0..n).map(|i| x_outer_mean[(i, i)].real()).sum::<f64>() / n as f64;
        let silent = power < SILENCE_FLOOR_FACTOR * self.floor2;
        let learn = learn && !silent;
        self.x_floor.copy_from(x_outer_mean);
        for i in 0..n {
            self.x_floor[(i, i)] += T::from_real(self.floor2);
        }
        for kind in WhitenerKind::ALL {
            let idx = kind.index();
            // R̂ = P (X̂ + ε²I) P: the block's output covariance including the virtual floor
            // noise (so during silence the floor itself is whitened and the error stays small
            // instead of reading as "output missing").
            matmul_into(&mut self.scratch_a, &self.x_floor, &self.p[idx]);
            matmul_into(&mut self.scratch_b, &self.p[idx], &self.scratch_a);
            self.out_cov[idx].push(&self.scratch_b, self.error_alpha);
            if !learn {
                continue;
            }
            let result = match kind {
                WhitenerKind::Baseline => {
                    // The eigendecomposition is the costliest part of a block: the baseline
                    // updates every BASELINE_STRIDE blocks on their mean, with the smoothing
                    // factor of the four blocks' span (`baseline_alpha`), so its time constant
                    // stays that of the circuits.
                    self.baseline_acc += x_outer_mean;
                    self.baseline_count += 1;
                    if self.baseline_count < BASELINE_STRIDE {
                        Ok(())
                    } else {
                        self.baseline_acc /= T::from_real(self.baseline_count as f64);
                        self.baseline_count = 0;
                        let r = self.baseline.update(&self.baseline_acc);
                        self.baseline_acc.fill(T::zero());
                        r
                    }
                }
                WhitenerKind::Direct => self.integrator.direct(
                    &mut self.direct,
                    &mut self.p[idx],
                    &self.x_floor,
                    Some(&self.scratch_b),
                    self.block_time,
                    self.floor2.sqrt(),
                ),
                WhitenerKind::Interneuron => self.integrator.interneuron(
                    &mut self.interneuron,
                    &mut self.p[idx],
                    &self.x_floor,
                    Some(&self.scratch_b),
                    self.block_time,
                ),
            };
            if result.is_err() {
                self.resets[idx] += 1;
                let s = self.init_scale;
                // Scales were validated at construction, so these cannot fail.
                let _ = match kind {
                    WhitenerKind::Direct => self.direct.reinitialise(s),
                    WhitenerKind::Interneuron => self.interneuron.reinitialise(s),
                    WhitenerKind::Baseline => self.baseline.reinitialise(s),
                };
            }
        }
        if learn {
            self.refresh_responses();
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
        let n = self.dim();
        let idx = kind.index();
        let error = self.error(kind);
        let eigenvalues = match kind {
            _ if !refresh_eigenvalues => self.eig_cache[idx],
            WhitenerKind::Baseline => {
                Eigenvalues::from_slice(self.baseline.recurrent_eigenvalues())
            }
            _ => {
                if kind == WhitenerKind::Direct {
                    self.direct.recurrent_matrix_into(&mut self.scratch_a);
                } else {
                    self.interneuron.recurrent_matrix_into(&mut self.scratch_a);
                }
                let eig = &mut self.eig[idx];
                if eig.decompose_warm(&self.scratch_a).is_ok() {
                    Eigenvalues::from_slice(eig.eigenvalues())
                } else {
                    Eigenvalues::from_slice(&[f64::NAN; MAX_CHANNELS][..n.min(MAX_CHANNELS)])
                }
            }
        };
        self.eig_cache[idx] = eigenvalues;
        let e = eigenvalues.as_slice();
        let (eig_min, eig_max) = match (e.first(), e.last()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (f64::NAN, f64::NAN),
        };
        WhitenerSnapshot {
            error,
            eig_min,
            eig_max,
            eigenvalues,
            resets: self.resets[idx],
        }
    }
}
