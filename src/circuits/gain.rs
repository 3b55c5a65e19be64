//! The circuit that whitens by modulating the gains of its interneurons
//! (docs/DESIGN.md §2.9; Duong, Lipshutz, Heeger, Chklovskii & Simoncelli, ICML 2023, and the
//! slow synaptic plasticity of Duong, Simoncelli, Chklovskii & Lipshutz, NeurIPS 2023).

mod block;
mod dense;

use super::frame::{frame_gains, GainFrame};
use super::linalg::{mirror_lower, whitening_error_with_inverse, CholeskyWorkspace};
use super::{check_eta, check_scale, check_square, matmul_into, Circuit, CircuitError, Scalar};
use crate::whitener::WhitenerKind;
use nalgebra::{DMatrix, DVector, DVectorView};

/// How the recurrent matrix `M = αI + W diag(g) Wᴴ` is re-formed after each update. Both
/// then factorise it (Cholesky, O(n³/6)) and respond by two triangular solves (O(n²)).
///
/// A cached `M⁻¹` kept current by Sherman–Morrison/Woodbury corrections (as the interneuron
/// circuit does) does not pay here: a per-sample step changes *every* gain, so
/// `ΔM = W diag(Δg) Wᴴ` has rank n, and k rank-one corrections cost O(k n²) — more than
/// re-forming `M` and factorising it (docs/DESIGN.md §2.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GainSolver {
    /// Dense products over every entry of `W`: `z = Wᴴ r` in O(nk), `M` in O(n²k/2). The
    /// reference the fast path is checked against.
    Naive,
    /// The same sums over the non-zero entries of each column of `W` only (kept as a
    /// column-wise index, rebuilt whenever `W` changes): `z` in O(Σ nnzᵢ), `M` in
    /// O(Σ nnzᵢ²/2). For the pairs frame (≤ 2 entries per column) that is O(k) = O(n²)
    /// instead of O(n²k) = O(n⁴); for a dense frame (random, or any frame after slow
    /// plasticity has run) it costs what [`GainSolver::Naive`] costs.
    #[default]
    Sparse,
}

/// Parameters of a [`GainModulatingCircuit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GainConfig {
    /// The leak `α ≥ 0` of `M = αI + W diag(g) Wᴴ` (1 in both papers). With `α > 0` zero gains
    /// leave `M = αI`, so any `k ≥ 1` is allowed; `α = 0` needs `k ≥ n`.
    pub alpha: f64,
    /// Gain learning rate `η_g ∈ (0, 1)` (fast).
    pub eta_g: f64,
    /// Synaptic learning rate `η_w ∈ (0, 1)` (slow), used only while `plastic` is set.
    pub eta_w: f64,
    /// Whether the synapses `W` learn (NeurIPS 2023) or stay the fixed frame (ICML 2023).
    pub plastic: bool,
    /// The initial scale `s`: the (re-)initialisation gains make `M₀ = s·I` (exactly when the
    /// frame spans, otherwise as closely as the frame allows).
    pub scale: f64,
    /// How `M` is re-formed per update.
    pub solver: GainSolver,
}

impl Default for GainConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            eta_g: 0.01,
            eta_w: 0.001,
            plastic: false,
            scale: 1.0,
            solver: GainSolver::default(),
        }
    }
}

/// The synapses' learning rate relative to the gains' wherever the gain circuit races (engine,
/// `whiten process --raw`) if its plasticity is switched on: `η_w = η_g / 500`, the ratio of
/// the returning-contexts test of docs/DESIGN.md §2.9 (`η_g = 0.05`, `η_w = 10⁻⁴`), under which
/// `W` learns what contexts share instead of re-fitting each one.
pub const RACE_SYNAPTIC_RATIO: f64 = 1.0 / 500.0;

impl GainConfig {
    /// The configuration of the racing circuit: ICML's leak `α = 1`, gains learning at the
    /// race's per-vector rate `η`, the sparse solver, initial scale `s`, and **no** slow
    /// plasticity (its rate set to [`RACE_SYNAPTIC_RATIO`] for when it is switched on). In the
    /// race the synapses' decay term `−W diag(g)` collapses `W` after a re-initialisation at a
    /// large scale, where every gain is about `s − α`: `W` shrinks as `e^{−ρ(s−α)τ}` while the
    /// gains descend, which at `s = 100` left a spectral band non-positive-definite
    /// (docs/DESIGN.md §4.3).
    pub fn racing(eta: f64, scale: f64) -> Self {
        Self {
            alpha: 1.0,
            eta_g: eta,
            eta_w: eta * RACE_SYNAPTIC_RATIO,
            plastic: false,
            scale,
            solver: GainSolver::Sparse,
        }
    }
}

/// The most channels for which the racing circuit runs on the spanning pairs frame: its block
/// rule factorises a k×k system, `k = n(n+1)/2` (ℝ) or `n²` (ℂ), in O(k³/6) — at 16 channels
/// (k = 136) that alone cost more than the rest of the race and made 16-channel learning fall
/// behind its budget (docs/DESIGN.md §4.3, §4.6). Above it the racing circuit has one interneuron
/// per channel (the identity frame, `k = n`): it equalises the channels' levels but cannot
/// decorrelate them, and `whiten process` / `whiten live` refuse to let it be heard.
pub const RACE_SPANNING_MAX_CHANNELS: usize = 8;

/// Primary neurons whose recurrence runs through `k` interneurons with synapses `W` (n×k)
/// and adaptive gains `g` (length k, real):
///
/// * response `r = M⁻¹ x`, `M = αI + W diag(g) Wᴴ`;
/// * interneuron input `z = Wᴴ r`, output `n = g ∘ z`;
/// * fast gains `g ← g + η_g (|z|² − diag(WᴴW))` (`|z|²` elementwise);
/// * slow synapses, if plastic, `W ← W + η_w (r nᴴ − W diag(g))`.
///
/// Both updates are gradient steps on the same objective as the other circuits,
/// `f(M) = Tr(M⁻¹C + M)`, through the parameterisation of `M`; the mean-field forms replace
/// `r rᴴ` by `M⁻¹CM⁻¹`. Both use the state before the step (response, `z`, `n`, `diag(WᴴW)`
/// and `diag(g)` are all evaluated before anything changes).
///
/// It races as [`WhitenerKind::Gain`]; [`super::Circuit`] forwards to the inherent methods of
/// the same names. The engine integrates it over a block with [`Self::block_substep`]
/// (docs/DESIGN.md §4.3).
#[derive(Clone, Debug)]
pub struct GainModulatingCircuit<T: Scalar> {
    /// Leak `α` of `M = αI + W G Wᴴ`.
    alpha: f64,
    /// Gain learning rate `η_g`.
    eta_g: f64,
    /// Synaptic learning rate `η_w`.
    eta_w: f64,
    /// Whether `W` learns.
    plastic: bool,
    /// Scale `s` of the last (re-)initialisation.
    scale: f64,
    /// How `M` is re-formed.
    solver: GainSolver,
    /// The frame `W₀` a (re-)initialisation returns to.
    w0: DMatrix<T>,
    /// Least-squares gains with `W₀ diag(g) W₀ᴴ = I`, so that `g₀ = (s − α) g_unit` gives
    /// `M₀ = s·I` without solving anything at reset time (resets may run on the audio thread).
    g_unit: DVector<f64>,
    /// Synapses between primary neurons and interneurons, n×k.
    w: DMatrix<T>,
    /// Interneuron gains.
    g: DVector<f64>,
    /// `‖w_i‖²`, the target variance of interneuron `i` (the gain update's `diag(WᴴW)`);
    /// refreshed whenever `W` changes.
    w_norm2: DVector<f64>,
    /// Row indices of the non-zero entries of column `i` of `W` are
    /// `support_rows[support_start[i]..support_start[i + 1]]`, ascending. Capacity n·k is
    /// reserved, so rebuilding never allocates.
    support_rows: Vec<usize>,
    /// Column offsets into `support_rows` (length k + 1).
    support_start: Vec<usize>,
    /// The recurrent matrix `M`, both triangles, exactly Hermitian.
    m: DMatrix<T>,
    /// Cholesky factor of `M`; responses are triangular solves with it.
    chol: CholeskyWorkspace<T>,
    /// `M⁻¹`, formed from the factor only when a mean-field step or an error needs it.
    m_inv: DMatrix<T>,
    /// Whether `m_inv` is stale with respect to `chol`.
    inverse_stale: bool,
    /// Interneuron input `z = Wᴴ r` of the last per-sample step.
    z: DVector<T>,
    /// Interneuron output `n = g ∘ z` of the last per-sample step (gains before the update).
    n_out: DVector<T>,
    /// Gain increment scratch, length k.
    dg: DVector<f64>,
    /// n×k scratch for `R̂ W`.
    rw: DMatrix<T>,
    /// n×n scratch for mean-field and error computations.
    scratch_a: DMatrix<T>,
    /// A second n×n scratch buffer (holds `R̂` during a block or mean-field step).
    scratch_b: DMatrix<T>,
    /// Scratch of the engine's block rule ([`Self::block_substep`]).
    blk: block::BlockScratch<T>,
}

impl<T: Scalar> GainModulatingCircuit<T> {
    /// A circuit of `n` primary neurons on the frame `frame`.
    pub fn new(n: usize, frame: GainFrame, config: GainConfig) -> Result<Self, CircuitError> {
        Self::with_frame(frame.columns(n)?, config)
    }

    /// The circuit the race runs for `n` channels at per-vector rate `eta` and initial scale
    /// `scale` ([`GainConfig::racing`]): on the pairs frame up to [`RACE_SPANNING_MAX_CHANNELS`],
    /// on the identity frame above.
    pub fn racing(n: usize, eta: f64, scale: f64) -> Result<Self, CircuitError> {
        let config = GainConfig::racing(eta, scale);
        if n <= RACE_SPANNING_MAX_CHANNELS {
            Self::new(n, GainFrame::Pairs, config)
        } else {
            Self::with_frame(DMatrix::identity(n, n), config)
        }
    }

    /// A circuit on a given frame `W₀` (n×k; any non-zero finite columns, not necessarily
    /// unit-norm). Fails if the initial `M₀` is not positive definite.
    pub fn with_frame(w0: DMatrix<T>, config: GainConfig) -> Result<Self, CircuitError> {
        let (n, k) = w0.shape();
        if n == 0 {
            return Err(CircuitError::ZeroDimension);
        }
        if k == 0 {
            return Err(CircuitError::InvalidFrame("it has no columns".into()));
        }
        if !w0.iter().all(|v| v.is_finite()) {
            return Err(CircuitError::InvalidFrame(
                "it has non-finite entries".into(),
            ));
        }
        if w0.column_iter().any(|c| c.norm() == 0.0) {
            return Err(CircuitError::InvalidFrame("it has a zero column".into()));
        }
        if !(config.alpha.is_finite() && config.alpha >= 0.0) {
            return Err(CircuitError::InvalidLeak(config.alpha));
        }
        if config.alpha == 0.0 && k < n {
            return Err(CircuitError::TooFewInterneurons { n, k });
        }
        let g_unit = frame_gains(&w0, &DMatrix::identity(n, n))?;
        let mut c = Self {
            alpha: config.alpha,
            eta_g: check_eta(config.eta_g)?,
            eta_w: check_eta(config.eta_w)?,
            plastic: config.plastic,
            scale: check_scale(config.scale)?,
            solver: config.solver,
            w: w0.clone(),
            w0,
            g_unit,
            g: DVector::zeros(k),
            w_norm2: DVector::zeros(k),
            support_rows: Vec::with_capacity(n * k),
            support_start: Vec::with_capacity(k + 1),
            m: DMatrix::zeros(n, n),
            chol: CholeskyWorkspace::new(n),
            m_inv: DMatrix::zeros(n, n),
            inverse_stale: true,
            z: DVector::zeros(k),
            n_out: DVector::zeros(k),
            dg: DVector::zeros(k),
            rw: DMatrix::zeros(n, k),
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
            blk: block::BlockScratch::new(n, k),
        };
        c.reinitialise(config.scale)?;
        Ok(c)
    }

    /// Number of primary neurons `n`.
    pub fn dim(&self) -> usize {
        self.w.nrows()
    }

    /// Number of interneurons `k`.
    pub fn interneurons(&self) -> usize {
        self.w.ncols()
    }

    /// The leak `α`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The gain learning rate `η_g` (the circuit's learning rate in the `Circuit` sense).
    pub fn learning_rate(&self) -> f64 {
        self.eta_g
    }

    /// Change `η_g` without touching the state.
    pub fn set_learning_rate(&mut self, eta: f64) -> Result<(), CircuitError> {
        self.eta_g = check_eta(eta)?;
        Ok(())
    }

    /// The synaptic learning rate `η_w`.
    pub fn synaptic_learning_rate(&self) -> f64 {
        self.eta_w
    }

    /// Change `η_w` without touching the state.
    pub fn set_synaptic_learning_rate(&mut self, eta: f64) -> Result<(), CircuitError> {
        self.eta_w = check_eta(eta)?;
        Ok(())
    }

    /// Whether the synapses learn.
    pub fn plastic(&self) -> bool {
        self.plastic
    }

    /// Switch slow synaptic plasticity on or off (the state is kept).
    pub fn set_plastic(&mut self, plastic: bool) {
        self.plastic = plastic;
    }

    /// The solver in use.
    pub fn solver(&self) -> GainSolver {
        self.solver
    }

    /// The scale `s` of the last (re-)initialisation.
    pub fn init_scale(&self) -> f64 {
        self.scale
    }

    /// The synapses `W` (n×k).
    pub fn w(&self) -> &DMatrix<T> {
        &self.w
    }

    /// The frame `W₀` a reset returns to.
    pub fn frame(&self) -> &DMatrix<T> {
        &self.w0
    }

    /// The gains `g`.
    pub fn gains(&self) -> &[f64] {
        self.g.as_slice()
    }

    /// Interneuron input `z = Wᴴ r` of the last per-sample step.
    pub fn interneuron_input(&self) -> &[T] {
        self.z.as_slice()
    }

    /// Interneuron output `n = g ∘ z` of the last per-sample step.
    pub fn interneuron_output(&self) -> &[T] {
        self.n_out.as_slice()
    }

    /// Reset to `W = W₀` and the gains `g₀ = (s − α) g_unit` that make `M₀ = s·I` (§2.9).
    /// Allocation-free.
    pub fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        self.scale = check_scale(scale)?;
        self.w.copy_from(&self.w0);
        self.g.copy_from(&self.g_unit);
        self.g *= scale - self.alpha;
        self.synapses_changed();
        self.refresh()
    }

    /// Replace the gains (e.g. `g₀ = s·g*` for a sweep, or restored state). If the resulting
    /// `M` is not positive definite the old gains are kept and the error returned.
    pub fn set_gains(&mut self, g: &[f64]) -> Result<(), CircuitError> {
        if g.len() != self.g.len() {
            return Err(CircuitError::DimensionMismatch {
                expected: self.g.len(),
                got: g.len(),
            });
        }
        self.dg.copy_from(&self.g);
        self.g.copy_from_slice(g);
        if let Err(e) = self.refresh() {
            self.g.copy_from(&self.dg);
            self.refresh()?;
            return Err(e);
        }
        Ok(())
    }

    /// Replace the synapses (restored state). Kept only if `M` stays positive definite.
    pub fn set_w(&mut self, w: &DMatrix<T>) -> Result<(), CircuitError> {
        if w.shape() != self.w.shape() {
            return Err(CircuitError::DimensionMismatch {
                expected: self.w.len(),
                got: w.len(),
            });
        }
        let old = std::mem::replace(&mut self.w, w.clone());
        self.synapses_changed();
        if let Err(e) = self.refresh() {
            self.w = old;
            self.synapses_changed();
            self.refresh()?;
            return Err(e);
        }
        Ok(())
    }

    /// The gains `g*` that make `M = C^{1/2}` on the current synapses (least squares when the
    /// synapses do not span): `W diag(g*) Wᴴ = C^{1/2} − αI`. Allocates; for analysis and for
    /// the `g₀ = s·g*` initialisation.
    pub fn optimal_gains(&self, c: &DMatrix<T>) -> Result<DVector<f64>, CircuitError> {
        let mut target = super::hermitian_sqrt(c)?;
        for i in 0..self.dim() {
            target[(i, i)] -= T::from_real(self.alpha);
        }
        frame_gains(&self.w, &target)
    }

    /// `r = M⁻¹ x` with the current state, no learning. `x` and `r` have length `n`.
    pub fn respond(&self, x: &[T], r: &mut [T]) {
        r.copy_from_slice(x);
        self.chol.solve_in_place(r);
    }

    /// One online step: the response with the current state, then the gain (and, if plastic,
    /// synaptic) update with it. On error the state is left as it was found invalid; call
    /// [`Self::reinitialise`].
    pub fn step(&mut self, x: &[T], r: &mut [T]) -> Result<(), CircuitError> {
        self.respond(x, r);
        let n = self.dim();
        let rv = DVectorView::from_slice(r, n);
        match self.solver {
            GainSolver::Naive => self.z.gemv_ad(T::one(), &self.w, &rv, T::zero()),
            GainSolver::Sparse => {
                for (l, zl) in self.z.iter_mut().enumerate() {
                    let mut acc = T::zero();
                    for &a in &self.support_rows[self.support_start[l]..self.support_start[l + 1]] {
                        acc += self.w[(a, l)].conjugate() * r[a];
                    }
                    *zl = acc;
                }
            }
        }
        for l in 0..self.interneurons() {
            let zl = self.z[l];
            self.n_out[l] = zl * T::from_real(self.g[l]);
            self.dg[l] = zl.modulus_squared() - self.w_norm2[l];
        }
        if self.plastic {
            // W ← W + η_w (r nᴴ − W G), column by column: w_l ← (1 − c) w_l + c z̄_l r with
            // c = η_w g_l, since (r nᴴ)_{·l} = r g_l z̄_l.
            for l in 0..self.interneurons() {
                let c = self.eta_w * self.g[l];
                let keep = T::from_real(1.0 - c);
                let add = self.z[l].conjugate() * T::from_real(c);
                for (w, &ra) in self.w.column_mut(l).iter_mut().zip(r.iter()) {
                    *w = *w * keep + add * ra;
                }
            }
            self.synapses_changed();
        }
        self.g.axpy(self.eta_g, &self.dg, 1.0);
        self.refresh()
    }

    /// One step on an averaged outer product `R̂ = mean(r rᴴ)` of responses computed with the
    /// current state (block learning; lower triangle read): `g ← g + η_g(diag(WᴴR̂W) − diag(WᴴW))`
    /// and, if plastic, `W ← W + η_w (R̂ − I) W diag(g)`. With `R̂ = M⁻¹CM⁻¹` this is exactly
    /// the mean-field step.
    pub fn step_outer(&mut self, r_outer_mean: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(r_outer_mean, self.dim())?;
        self.scratch_b.copy_from(r_outer_mean);
        self.learn_from_outer()
    }

    /// One mean-field step for input covariance `C`: the update with `r rᴴ` replaced by its
    /// expectation `M⁻¹ C M⁻¹`, so `E|z_i|² = w_iᴴ M⁻¹CM⁻¹ w_i`.
    pub fn mean_field_step(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(c, self.dim())?;
        self.ensure_inverse();
        matmul_into(&mut self.scratch_a, c, &self.m_inv);
        matmul_into(&mut self.scratch_b, &self.m_inv, &self.scratch_a);
        self.learn_from_outer()
    }

    /// Write `M = αI + W diag(g) Wᴴ` into `out`.
    pub fn recurrent_matrix_into(&self, out: &mut DMatrix<T>) {
        out.copy_from(&self.m);
    }

    /// The recurrent matrix `M` (allocates; for analysis).
    pub fn recurrent_matrix(&self) -> DMatrix<T> {
        self.m.clone()
    }

    /// Write `M⁻¹` into `out`.
    pub fn inverse_recurrent_matrix_into(&mut self, out: &mut DMatrix<T>) {
        self.ensure_inverse();
        out.as_mut_slice().copy_from_slice(self.m_inv.as_slice());
    }

    /// `E(M; C) = ‖M⁻¹CM⁻¹ − I‖_F / √n`, using preallocated scratch space.
    pub fn whitening_error(&mut self, c: &DMatrix<T>) -> f64 {
        self.ensure_inverse();
        whitening_error_with_inverse(&self.m_inv, c, &mut self.scratch_a, &mut self.scratch_b)
    }

    /// The update from the Hermitian `R̂` held in `scratch_b` (lower triangle read).
    fn learn_from_outer(&mut self) -> Result<(), CircuitError> {
        mirror_lower(&mut self.scratch_b);
        // R̂ W: column l is R̂ w_l, so E|z_l|² = w_lᴴ R̂ w_l and (R̂ W G)_{·l} = g_l R̂ w_l.
        matmul_into(&mut self.rw, &self.scratch_b, &self.w);
        for l in 0..self.interneurons() {
            let var = self.w.column(l).dotc(&self.rw.column(l)).real();
            self.dg[l] = var - self.w_norm2[l];
        }
        if self.plastic {
            for l in 0..self.interneurons() {
                let c = T::from_real(self.eta_w * self.g[l]);
                for (w, &rw) in self
                    .w
                    .column_mut(l)
                    .iter_mut()
                    .zip(self.rw.column(l).iter())
                {
                    *w += c * (rw - *w);
                }
            }
            self.synapses_changed();
        }
        self.g.axpy(self.eta_g, &self.dg, 1.0);
        self.refresh()
    }

    /// Bookkeeping after `W` changed: `‖w_i‖²`, the column supports, the block rule's factor.
    fn synapses_changed(&mut self) {
        self.blk.invalidate();
        let (n, k) = self.w.shape();
        self.support_rows.clear();
        self.support_start.clear();
        for l in 0..k {
            self.support_start.push(self.support_rows.len());
            let mut norm2 = 0.0;
            for a in 0..n {
                let v = self.w[(a, l)];
                if v != T::zero() {
                    self.support_rows.push(a);
                    norm2 += v.modulus_squared();
                }
            }
            self.w_norm2[l] = norm2;
        }
        self.support_start.push(self.support_rows.len());
    }

    /// Re-form `M` from `W` and `g` and factorise it.
    fn refresh(&mut self) -> Result<(), CircuitError> {
        let (n, k) = self.w.shape();
        let alpha = T::from_real(self.alpha);
        match self.solver {
            GainSolver::Naive => {
                for j in 0..n {
                    for i in j..n {
                        let mut acc = if i == j { alpha } else { T::zero() };
                        for l in 0..k {
                            acc += self.w[(i, l)]
                                * self.w[(j, l)].conjugate()
                                * T::from_real(self.g[l]);
                        }
                        self.m[(i, j)] = acc;
                    }
                }
                mirror_lower(&mut self.m);
            }
            GainSolver::Sparse if n <= 2 => {
                // Both triangles, the diagonal real: nothing to mirror.
                let (m, w, g) = (self.m.as_mut_slice(), self.w.as_slice(), self.g.as_slice());
                self.blk.small_outer_sum(n, w, m, self.alpha, g);
            }
            GainSolver::Sparse => {
                for j in 0..n {
                    for i in j..n {
                        self.m[(i, j)] = if i == j { alpha } else { T::zero() };
                    }
                }
                for l in 0..k {
                    let rows = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
                    for (p, &i) in rows.iter().enumerate() {
                        let gw = self.w[(i, l)] * T::from_real(self.g[l]);
                        // Ascending rows: every `j` up to `i` lands in the lower triangle.
                        for &j in &rows[..=p] {
                            self.m[(i, j)] += gw * self.w[(j, l)].conjugate();
                        }
                    }
                }
                mirror_lower(&mut self.m);
            }
        }
        self.inverse_stale = true;
        self.chol.factor(&self.m)
    }

    /// Bring `m_inv` up to date with the factor.
    fn ensure_inverse(&mut self) {
        if self.inverse_stale {
            self.chol.inverse_into(&mut self.m_inv);
            self.inverse_stale = false;
        }
    }
}

impl<T: Scalar> Circuit<T> for GainModulatingCircuit<T> {
    fn kind(&self) -> WhitenerKind {
        WhitenerKind::Gain
    }

    fn dim(&self) -> usize {
        GainModulatingCircuit::dim(self)
    }

    fn learning_rate(&self) -> f64 {
        GainModulatingCircuit::learning_rate(self)
    }

    /// Changes `η_g` and `η_w` together, keeping their ratio (the synapses stay as much slower
    /// than the gains as they were configured).
    fn set_learning_rate(&mut self, eta: f64) -> Result<(), CircuitError> {
        let ratio = self.eta_w / self.eta_g;
        let eta_w = check_eta(eta * ratio)?;
        GainModulatingCircuit::set_learning_rate(self, eta)?;
        self.eta_w = eta_w;
        Ok(())
    }

    fn init_scale(&self) -> f64 {
        GainModulatingCircuit::init_scale(self)
    }

    fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        GainModulatingCircuit::reinitialise(self, scale)
    }

    fn respond(&self, x: &[T], r: &mut [T]) {
        GainModulatingCircuit::respond(self, x, r)
    }

    fn step(&mut self, x: &[T], r: &mut [T]) -> Result<(), CircuitError> {
        GainModulatingCircuit::step(self, x, r)
    }

    fn step_outer(&mut self, r_outer_mean: &DMatrix<T>) -> Result<(), CircuitError> {
        GainModulatingCircuit::step_outer(self, r_outer_mean)
    }

    fn mean_field_step(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError> {
        GainModulatingCircuit::mean_field_step(self, c)
    }

    fn recurrent_matrix_into(&self, out: &mut DMatrix<T>) {
        GainModulatingCircuit::recurrent_matrix_into(self, out)
    }

    fn inverse_recurrent_matrix_into(&mut self, out: &mut DMatrix<T>) {
        GainModulatingCircuit::inverse_recurrent_matrix_into(self, out)
    }

    fn whitening_error(&mut self, c: &DMatrix<T>) -> f64 {
        GainModulatingCircuit::whitening_error(self, c)
    }
}
