//! Block learning that integrates the circuits' dynamics (docs/DESIGN.md §4).
//!
//! Per-sample learning takes one small step per input vector. The engine learns once per
//! block of `L` vectors instead, from the block's mean outer product `X̂ = mean x xᴴ` (plus the
//! floor, `X = X̂ + ε²I`). With per-vector learning rate η, the block spans `T = L·η` of the
//! circuits' time `τ = η t`, and over it the expected per-sample dynamics are the ODEs
//!
//! ```text
//!     direct:       dM/dτ = P X P − I                  (P = M⁻¹)
//!     interneuron:  dW/dτ = (P X P − I) W              (M = W Wᴴ)
//! ```
//!
//! which this module integrates over `T` in sub-steps chosen by each circuit's own state:
//!
//! * **Accuracy.** A sub-step may change `M` by at most [`MAX_RELATIVE_CHANGE`] relative to
//!   itself. Far from the optimum the rates are large, so sub-steps are short; the number of
//!   sub-steps needed after a change of `s`-fold or `g`-fold grows only with `log s` or
//!   `log g` (each sub-step multiplies the distance by a bounded factor), and near the optimum
//!   one sub-step spans the whole block. No cap on the count is needed in any regime the
//!   engine meets; [`MAX_SUBSTEPS`] is a guard whose use is counted.
//! * **Stiffness.** Near its optimum the direct circuit relaxes at rates `1/μ_i + 1/μ_j` (the
//!   eigenvalues of its linearisation, `μ` those of `M`): for quiet input, where `M` is small,
//!   these are large, and an explicit Euler step of length `h` is unstable once `h/μ ≳ 1`.
//!   Instead of many short steps, the direct circuit's sub-step is *exponential*: in the
//!   eigenbasis `U` of `M`, with `F = Uᴴ (P X P − I) U` and `ρ = diag(Uᴴ (P X P) U)`,
//!
//!   ```text
//!       ΔM = U G Uᴴ,    G_ij = h φ₁(−h a_ij) F_ij,    a_ij = ρ_j/μ_i + ρ_i/μ_j,
//!       φ₁(z) = (e^z − 1)/z,
//!   ```
//!
//!   exact for the linearised dynamics at the optimum (and per eigenvalue whenever `M` and
//!   `X` commute), stable for any `h`, and linear in `X̂`, so a block whose statistics are noisy
//!   moves `M` by an unbiased amount — as per-sample learning does — instead of solving to the
//!   block's own noisy optimum. When `h·a` is small it is the Euler step, and the engine takes
//!   the cheaper Euler form (no eigendecomposition).
//!   The interneuron circuit's linear rates do not depend on the level (≈ 4 at the optimum),
//!   so explicit steps of its own update `W ← (I + h(PXP − I)) W`, kept within
//!   [`MAX_LINEAR_STEP`] of its linear rate, are accurate and stable.
//! * **Positive definiteness.** The interneuron step multiplies `W` by `I + hD` whose
//!   eigenvalues are at least `1 − h > 0` (`D ⪰ −I`, `h < 1`): it cannot lose rank. The direct
//!   circuit's exponential step keeps each eigen-direction above `0` in its linearisation; should
//!   a step still leave the cone, `M`'s eigenvalues are floored at the noise floor `ε` (the
//!   optimum's smallest possible eigenvalue) instead of resetting, and the event counted.
//! * **The gain-modulating circuit** (docs/DESIGN.md §2.9) integrates its own gain and synapse
//!   dynamics, `dg_l/dτ = w_lᴴ R w_l − ‖w_l‖²`, `dW/dτ = ρ(R − I)W diag(g)`, with an exponential
//!   step per interneuron at a Gershgorin rate of its stiff Jacobian
//!   ([`GainModulatingCircuit::block_substep`]): stable for any sub-step, kept within the same
//!   [`MAX_RELATIVE_CHANGE`] of `M`, which also keeps `M` positive definite.

use crate::circuits::{
    hermitian_sandwich_into, matmul_into, real_fma_available, real_product, transpose_into,
    Circuit, CircuitError, Dim, DirectCircuit, GainModulatingCircuit, InterneuronCircuit, Scalar,
};
use crate::eigen::{eigen_2x2, HermitianEigen, SymmetricEigen};
use crate::with_dim;
use nalgebra::DMatrix;

/// Largest relative change of `M` per sub-step (`‖M^{-1/2} ΔM M^{-1/2}‖_F`, estimated).
pub const MAX_RELATIVE_CHANGE: f64 = 0.5;
/// Largest `h · (linear rate)` of an explicit sub-step (0.5: monotone and within ~10 % of the
/// exponential decay it approximates).
pub const MAX_LINEAR_STEP: f64 = 0.5;
/// Below this `h · (linear rate)` the direct circuit's exponential step equals the Euler step
/// to within ~5 %, and the Euler form is used.
pub const EULER_BELOW: f64 = 0.1;
/// Guard on the number of sub-steps of one circuit in one block; reaching it is counted. Never
/// reached in the tested regimes; it bounds the cost where a block's statistics are rank-deficient
/// and jump by many orders of magnitude from block to block (docs/DESIGN.md §4).
pub const MAX_SUBSTEPS: usize = 64;

/// Convergence tolerance of the direct circuit's eigendecomposition (`off(M) ≤ tol·‖M‖_F`).
/// The exponential step is then exact for a matrix within `tol·‖M‖_F` of `M`; it moves `M` by
/// at most [`MAX_RELATIVE_CHANGE`] of itself, so the step's error is below `tol·cond(M)`
/// relative in its stiffest direction. With `M ≈ C^{1/2}`, `cond(M)` is the square root of the
/// input's spread — 10³ for 60 dB — which leaves 10⁻⁴, far under what the integration rule
/// itself approximates. The next update's warm start begins from a residual this small or
/// from `M`'s own change, whichever is larger, so nothing accumulates. A tighter tolerance
/// costs a sweep per update (measured at 16 channels: three sweeps at 1e-10, two at 1e-7).
pub const EIGEN_TOLERANCE: f64 = 1e-7;

/// Largest relative change of `M` in an update's last (exponential) sub-step for which the
/// stats use the first-order eigenvalues after it, `μ_i + G_ii`, instead of decomposing `M`
/// (the neglected second-order term is then below about 1 % of `M`'s eigenvalues).
pub const STATS_REUSE_CHANGE: f64 = 0.1;

/// Counts of what the integrator did (for the stats and the tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntegratorCounters {
    /// Circuit updates integrated (one per block and circuit).
    pub updates: u64,
    /// Sub-steps taken.
    pub substeps: u64,
    /// Blocks whose integration stopped at [`MAX_SUBSTEPS`] (time was lost).
    pub capped: u64,
    /// Direct-circuit steps whose result was floored at `ε` (a safeguard, not a reset).
    pub floored: u64,
    /// Circuit updates merged into an unfinished one because the host blocks since it began
    /// did not pay for all of its slices (docs/DESIGN.md §4.6).
    pub merged: u64,
}

/// Where one circuit's integration over one learning update stands, so that it can be
/// carried out in slices across host blocks (docs/DESIGN.md §4.6).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Span {
    /// Time still to integrate, in units of τ; `≤ 0` when done (or capped).
    pub left: f64,
    /// Sub-steps taken so far.
    pub steps: usize,
    /// Sub-steps allowed in all ([`MAX_SUBSTEPS`] per update merged into this span).
    pub guard: usize,
    /// Whether no sub-step has been taken since the span began with the current statistics,
    /// so that `P X P` formed for the error estimate is its first `R`.
    pub fresh: bool,
}

impl Span {
    /// An integration over `t` not yet started.
    pub fn new(t: f64) -> Self {
        Self {
            left: t,
            steps: 0,
            guard: MAX_SUBSTEPS,
            fresh: true,
        }
    }

    /// Nothing is left to integrate.
    pub fn done(&self) -> bool {
        self.left <= 0.0 || self.left.is_nan()
    }

    /// Extend an unfinished span by another update's `t` (with new statistics, so the first
    /// `R` must be formed afresh), with another update's sub-step allowance.
    pub fn extend(&mut self, t: f64) {
        self.left += t;
        self.guard += MAX_SUBSTEPS;
        self.fresh = false;
    }
}

/// Work units of one sub-step (a sweep of a Jacobi eigendecomposition is one more): the
/// currency in which slices of a learning update are budgeted (docs/DESIGN.md §4.6).
pub const SUBSTEP_UNITS: usize = 1;

/// Work units counted for one tridiagonal-QL eigendecomposition of a real `M`: about the
/// cost of two Jacobi sweeps, which count one each (BENCHMARKS.md, 2026-12-02 morning).
pub const REAL_DECOMPOSITION_UNITS: usize = 2;

/// Scratch space and counters for integrating one race's circuits, allocated up front.
#[derive(Debug)]
pub struct BlockIntegrator<T: Scalar> {
    /// `R = P X P`.
    r: DMatrix<T>,
    /// n×n scratch.
    a: DMatrix<T>,
    /// n×n scratch: `Uᴴ R U`, then `G`.
    b: DMatrix<T>,
    /// The step `ΔM`.
    delta: DMatrix<T>,
    /// Eigendecomposition of the direct circuit's complex `M` (n > 2), warm-started block to
    /// block; also the floor's decomposition.
    eig: HermitianEigen<T>,
    /// Eigendecomposition of a real `M` (n > 2: the channels framing), by tridiagonal
    /// reduction and QL, cheaper than the warm Jacobi (docs/DESIGN.md §4.3).
    real_eig: SymmetricEigen,
    /// Eigenvectors of `M` for n ≤ 2 (closed form) and for a real `M` (copied from
    /// `real_eig`).
    u_small: DMatrix<T>,
    /// Work units (see [`Self::direct_steps`]) of the last eigendecomposition for n > 2.
    decomposition_units: usize,
    /// Eigenvalues of `M` for n ≤ 2, ascending.
    mu_small: [f64; 2],
    /// Whether the direct circuit's last sub-step was exponential (n > 2) and changed `M` by
    /// at most [`STATS_REUSE_CHANGE`], so that `mu_after` are `M`'s eigenvalues now.
    direct_eig_current: bool,
    /// `M`'s eigenvalues after the last exponential sub-step to first order, ascending.
    mu_after: Vec<f64>,
    /// The exponential step's linear rates `a_ij` (column-major n×n).
    rates: Vec<f64>,
    /// The exponential step's weights `|F_ij|²/(μ_i μ_j)`.
    weights: Vec<f64>,
    /// The exponential step's factors `h·φ₁(−h a_ij)`.
    phis: Vec<f64>,
    /// The estimated relative change of `M` of the last exponential sub-step.
    last_change: f64,
    /// What happened so far.
    pub counters: IntegratorCounters,
}

/// `φ₁(z)·h` for `z = −h a`: `(1 − e^{−h a})/a`, accurate for small `h a`.
fn phi1_h(h: f64, a: f64) -> f64 {
    let z = h * a;
    if z < 1e-6 {
        h * (1.0 - 0.5 * z)
    } else if z > 37.0 {
        // e^{−z} < ε_mach/2: 1 − e^{−z} rounds to 1 (stiff entries of quiet input).
        1.0 / a
    } else {
        one_minus_exp_neg(z) / a
    }
}

/// `1/m!` for `m = 0 … 13` (the Taylor coefficients of [`one_minus_exp_neg`]).
const INVERSE_FACTORIALS: [f64; 14] = {
    let mut c = [1.0; 14];
    let mut m = 1;
    while m < 14 {
        c[m] = c[m - 1] / m as f64;
        m += 1;
    }
    c
};

/// `1 − e^{−z}` for `0 ≤ z ≤ 37` to a few units in the last place, inline: the exponential
/// step evaluates it for every entry of `M` each time it tries a length, which made the
/// library's `expm1` (about 70 instructions a call) nearly a third of the step's cost for quiet
/// input. With `z = k ln 2 + r`, `|r| ≤ ln 2 / 2`, and `s = 2^{−k}`:
/// `1 − e^{−z} = (1 − s) − s (e^{−r} − 1)`, exact in its first term, and `e^{−r} − 1` is its
/// Taylor series to degree 13 (truncation below 10⁻¹⁷ relative), so there is no cancellation
/// for small `z` (`k = 0`) and at most a factor 2.4 for the rest. Plain multiplies and adds:
/// the crate's baseline target has neither FMA nor SSE4.1 rounding.
#[inline(always)]
fn one_minus_exp_neg(z: f64) -> f64 {
    // ln 2 split so that k·LN2_HI is exact for the k here (fdlibm's constants).
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Adding 1.5·2⁵² rounds to the nearest integer, which the low bits of the sum then hold
    // (|x| < 2⁵¹); subtracting it again gives that integer as a float.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let t = z * std::f64::consts::LOG2_E + ROUND;
    let k = t - ROUND;
    let x = -((z - k * LN2_HI) - k * LN2_LO);
    // e^x − 1 = Σ_{m=1}^{13} x^m/m!, by Horner's rule.
    let mut q = INVERSE_FACTORIALS[13];
    for &c in INVERSE_FACTORIALS[1..13].iter().rev() {
        q = c + x * q;
    }
    let q = x * q;
    // 2^{−k} from its exponent bits (0 ≤ k ≤ 54 here).
    let s = f64::from_bits((1023 - (t.to_bits() & 0xffff)) << 52);
    (1.0 - s) - s * q
}

/// The relative change `c(h) = ‖G_ij/√(μ_i μ_j)‖_F` of the direct circuit's exponential step
/// of length `h`, with `G_ij = h φ₁(−h a_ij) F_ij` and `weights` `|F_ij|²/(μ_i μ_j)`; the
/// factors `v_ij = h φ₁(−h a_ij)` are left in `phis` (n×n, column-major).
///
/// Each `v = (1 − e^{−h a})/a` is concave and increasing in `h` with `v ≤ h`, so
/// `c(h) ≤ h c₀` with `c₀ = √(Σ weights)` (the Euler step's rate).
#[inline(always)]
fn change_at<D: Dim>(d: D, h: f64, rates: &[f64], weights: &[f64], phis: &mut [f64]) -> f64 {
    let n = d.get();
    let nn = n * n;
    let (rates, weights, phis) = (&rates[..nn], &weights[..nn], &mut phis[..nn]);
    // `a_ij = a_ji` exactly (the same two terms, added in either order), so each factor is
    // computed once for both.
    for j in 0..n {
        for i in 0..=j {
            let phi = phi1_h(h, rates[i + j * n]);
            phis[i + j * n] = phi;
            phis[j + i * n] = phi;
        }
    }
    let mut sum = 0.0;
    for (v, w) in phis.iter().zip(weights) {
        sum += v * v * w;
    }
    sum.sqrt()
}

/// `c'(h)` of [`change_at`] from the factors it left and its `c`: `dv/dh = e^{−h a} = 1 − a v`
/// (no second exponential), so `c c' = Σ w v (1 − a v)`.
#[inline(always)]
fn change_slope<D: Dim>(d: D, c: f64, rates: &[f64], weights: &[f64], phis: &[f64]) -> f64 {
    let nn = d.get() * d.get();
    let mut slope = 0.0;
    for ((v, w), a) in phis[..nn].iter().zip(&weights[..nn]).zip(&rates[..nn]) {
        slope += v * w * (1.0 - a * v).max(0.0);
    }
    if c > 0.0 {
        slope / c
    } else {
        0.0
    }
}

/// Newton iterations of [`longest_within_limit`] after the whole block's length is rejected.
const LENGTH_SEARCH_ITERATIONS: usize = 4;

/// The largest `h ≤ left` with `c(h) ≤` [`MAX_RELATIVE_CHANGE`] ([`change_at`]), to within
/// what a few iterations resolve; returns `(c(h), h)` with the factors of `h` in `phis`.
///
/// `c` grows with `h` and, for stiff entries (`h a ≫ 1`: quiet input), saturates, so a step
/// shortened in proportion to its excess barely lowers it: the length is solved for instead.
/// The root is bracketed by `left` (too long) and `L/c₀` (within the limit, since
/// `c(h) ≤ h c₀`). Newton's method aims a little under the limit; a step that leaves the
/// bracket (where the change has saturated, `c'` is nearly 0) bisects it geometrically
/// instead. The search stops at a length within the limit whose change is at least 90 % of
/// it, or within 25 % of the shortest length known to exceed it, and otherwise, after
/// [`LENGTH_SEARCH_ITERATIONS`], takes the longest length known to be within it: the step
/// never exceeds the limit.
#[inline(always)]
fn longest_within_limit<D: Dim>(
    d: D,
    left: f64,
    rates: &[f64],
    weights: &[f64],
    phis: &mut [f64],
) -> (f64, f64) {
    let limit = MAX_RELATIVE_CHANGE;
    let mut c = change_at(d, left, rates, weights, phis);
    if c <= limit {
        return (c, left);
    }
    let c0 = weights[..d.get() * d.get()].iter().sum::<f64>().sqrt();
    let (mut lo, mut hi, mut h) = (limit / c0, left, left);
    let mut lo_evaluated = false;
    for _ in 0..LENGTH_SEARCH_ITERATIONS {
        // Newton's step towards 95 % of the limit; none where the change has saturated.
        let slope = change_slope(d, c, rates, weights, phis);
        let newton = if slope > 0.0 {
            h - (c - 0.95 * limit) / slope
        } else {
            0.0
        };
        h = if newton > lo && newton < hi {
            newton
        } else {
            (lo * hi).sqrt()
        };
        c = change_at(d, h, rates, weights, phis);
        if c <= limit {
            lo = h;
            lo_evaluated = true;
            if c >= 0.9 * limit || hi <= 1.25 * lo {
                return (c, h);
            }
        } else {
            hi = h;
        }
    }
    if !(lo_evaluated && h == lo) {
        h = lo;
        c = change_at(d, h, rates, weights, phis);
    }
    (c, h)
}

/// Gershgorin bound on the spectral radius of a Hermitian matrix (cheap, and close to it for
/// the near-diagonal matrices of a converging circuit), with `|re| + |im| ≥ |z|` for the
/// entries' moduli (no square roots; at most √2 looser for complex entries). `m` column-major
/// (its rows and columns have the same sums of moduli).
#[inline(always)]
fn gershgorin<T: Scalar, D: Dim>(d: D, m: &[T]) -> f64 {
    let n = d.get();
    let m = &m[..n * n];
    let mut worst: f64 = 0.0;
    for i in 0..n {
        let mut row = 0.0;
        for j in 0..n {
            row += m[i + j * n].norm1();
        }
        worst = worst.max(row);
    }
    worst
}

impl<T: Scalar> BlockIntegrator<T> {
    /// Scratch for dimension `n`.
    pub fn new(n: usize) -> Self {
        Self {
            r: DMatrix::zeros(n, n),
            a: DMatrix::zeros(n, n),
            b: DMatrix::zeros(n, n),
            delta: DMatrix::zeros(n, n),
            eig: {
                let mut e = HermitianEigen::new(n);
                e.set_tolerance(EIGEN_TOLERANCE);
                e
            },
            real_eig: SymmetricEigen::new(n),
            u_small: DMatrix::identity(n, n),
            decomposition_units: 0,
            mu_small: [0.0; 2],
            direct_eig_current: false,
            mu_after: vec![0.0; n],
            rates: vec![0.0; n * n],
            weights: vec![0.0; n * n],
            phis: vec![0.0; n * n],
            last_change: 0.0,
            counters: IntegratorCounters::default(),
        }
    }

    /// The eigenvalues (ascending) of the direct circuit's `M` as it is now, to first order,
    /// if its last sub-step was exponential and changed `M` by at most [`STATS_REUSE_CHANGE`]
    /// (n > 2; docs/DESIGN.md §5.5).
    pub fn direct_eigenvalues(&self) -> Option<&[f64]> {
        self.direct_eig_current.then_some(&self.mu_after[..])
    }

    /// `R = P X P` into `self.r` (`P`, `X` and so `R` Hermitian).
    fn form_r(&mut self, p: &DMatrix<T>, x: &DMatrix<T>) {
        hermitian_sandwich_into(&mut self.r, p, x, &mut self.a);
    }

    /// Begin a sub-step of `span`: count it against the guard (at the guard the span ends,
    /// counted as capped, and `false` is returned) and form `R = P X P` (from `r0` on a fresh
    /// span).
    fn start_substep(
        &mut self,
        p: &DMatrix<T>,
        x: &DMatrix<T>,
        r0: Option<&DMatrix<T>>,
        span: &mut Span,
    ) -> bool {
        if span.steps >= span.guard {
            self.counters.capped += 1;
            span.left = 0.0;
            return false;
        }
        if span.steps == 0 {
            self.counters.updates += 1;
        }
        if span.fresh {
            self.first_r(p, x, r0);
        } else {
            self.form_r(p, x);
        }
        span.fresh = false;
        span.steps += 1;
        true
    }

    /// `R` for the first sub-step: `r0` if given (`P X P` for the `p` of entry, which the race
    /// has already formed for its error estimate), else formed here.
    fn first_r(&mut self, p: &DMatrix<T>, x: &DMatrix<T>, r0: Option<&DMatrix<T>>) {
        match r0 {
            Some(r0) => self.r.as_mut_slice().copy_from_slice(r0.as_slice()),
            None => self.form_r(p, x),
        }
    }

    /// Integrate the direct circuit over what `span` describes (in units of τ) with input
    /// statistics `x` (`X̂ + ε²I`); `floor` is `ε`; `r0`, if given, is `P X P` for the `p` of
    /// the span's start. Resumable: it stops when the span is done or `max_units` work units
    /// ([`SUBSTEP_UNITS`] per sub-step and one per eigendecomposition sweep) are spent, and
    /// returns the units spent. `p` is `M⁻¹` after
    /// every sub-step, so a caller may respond with it between calls (the circuit's state part
    /// way through the block: docs/DESIGN.md §4.6). `r0` is used only for the first sub-step
    /// of a fresh span.
    #[allow(clippy::too_many_arguments)]
    pub fn direct_steps(
        &mut self,
        circuit: &mut DirectCircuit<T>,
        p: &mut DMatrix<T>,
        x: &DMatrix<T>,
        r0: Option<&DMatrix<T>>,
        span: &mut Span,
        floor: f64,
        max_units: usize,
    ) -> Result<usize, CircuitError> {
        with_dim!(p.nrows(), d => self.direct_steps_in(d, circuit, p, x, r0, span, floor, max_units))
    }

    /// [`Self::direct_steps`] for dimension `d` (fixed for n ≤ 2: docs/DESIGN.md §9).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn direct_steps_in<D: Dim>(
        &mut self,
        d: D,
        circuit: &mut DirectCircuit<T>,
        p: &mut DMatrix<T>,
        x: &DMatrix<T>,
        r0: Option<&DMatrix<T>>,
        span: &mut Span,
        floor: f64,
        max_units: usize,
    ) -> Result<usize, CircuitError> {
        let n = d.get();
        let mut taken = 0;
        while span.left > 0.0 && taken < max_units {
            self.direct_eig_current = false;
            if !self.start_substep(p, x, r0, span) {
                break;
            }
            taken += SUBSTEP_UNITS;
            let left = span.left;
            let r = &self.r.as_slice()[..n * n];
            // Linear rate bound 2‖P‖·max(1, ‖R‖) and the Euler relative change ‖P (R − I)‖.
            let rate = 2.0 * gershgorin(d, &p.as_slice()[..n * n]) * gershgorin(d, r).max(1.0);
            // The Euler step's length under the accuracy limit; if the linear modes are slow
            // enough for it, take it, otherwise the exponential step.
            let rel = euler_relative_change(
                d,
                &p.as_slice()[..n * n],
                r,
                self.a.as_mut_slice(),
                self.delta.as_mut_slice(),
            );
            let euler_h = left.min(MAX_RELATIVE_CHANGE / rel.max(1e-300));
            let h = if euler_h * rate <= EULER_BELOW {
                let delta = &mut self.delta.as_mut_slice()[..n * n];
                for j in 0..n {
                    for i in 0..n {
                        let v = r[i + j * n];
                        delta[i + j * n] = if i == j { v - T::one() } else { v }.scale(euler_h);
                    }
                }
                euler_h
            } else {
                let h = self.exponential_step(d, circuit.m(), left)?;
                if n > 2 {
                    taken += self.decomposition_units;
                    self.direct_eig_current = self.last_change <= STATS_REUSE_CHANGE;
                }
                h
            };
            if circuit.add_to_m(&self.delta).is_err() {
                self.direct_eig_current = false;
                self.floor_into(circuit, floor)?;
            }
            circuit.inverse_recurrent_matrix_into(p);
            span.left -= h;
            self.counters.substeps += 1;
        }
        Ok(taken)
    }

    /// The direct circuit's exponential step of at most `left`, into `self.delta`; returns
    /// its length. Needs `self.r` = `P X P`.
    #[inline(always)]
    fn exponential_step<D: Dim>(
        &mut self,
        d: D,
        m: &DMatrix<T>,
        left: f64,
    ) -> Result<f64, CircuitError> {
        let n = d.get();
        let nn = n * n;
        // n ≤ 2 (stereo, and every spectral band of a stereo input) in closed form; larger n
        // by the warm-started Jacobi solver.
        let (u, mu): (&DMatrix<T>, &[f64]) = if n <= 2 {
            eigen_2x2(m, &mut self.u_small, &mut self.mu_small);
            (&self.u_small, &self.mu_small[..n])
        } else if let Some(mr) = T::as_reals(m.as_slice()) {
            // Real n ≥ 3: Householder and QL, about 2 sweeps' worth of work.
            self.real_eig
                .compute(mr)
                .map_err(|_| CircuitError::NotPositiveDefinite)?;
            if let Some(u) = T::as_reals_mut(self.u_small.as_mut_slice()) {
                u.copy_from_slice(self.real_eig.vectors());
            }
            self.decomposition_units = REAL_DECOMPOSITION_UNITS;
            (&self.u_small, self.real_eig.values())
        } else {
            self.eig
                .decompose_warm(m)
                .map_err(|_| CircuitError::NotPositiveDefinite)?;
            self.decomposition_units = self.eig.sweeps();
            (self.eig.eigenvectors(), self.eig.eigenvalues())
        };
        let mu = &mu[..n];
        if !(mu[0] > 0.0 && mu[n - 1].is_finite()) {
            return Err(CircuitError::NotPositiveDefinite);
        }
        // B = Uᴴ R U.
        let us = &u.as_slice()[..nn];
        let b = &mut self.b.as_mut_slice()[..nn];
        if n == 2 {
            // Stereo and stereo bands: from the columns of U, exactly Hermitian.
            congruence_2x2(b, &self.r.as_slice()[..4], [us[0], us[1]], [us[2], us[3]]);
        } else {
            matmul_into(&mut self.a, &self.r, u);
            // Real n ≥ 3 on a CPU with FMA: Uᵀ (into `delta`, free until G) times R U through
            // the FMA kernel.
            let ut = &mut self.delta.as_mut_slice()[..nn];
            let fast = n >= 3 && real_fma_available() && T::as_reals(us).is_some() && {
                transpose_into(ut, us, n);
                real_product(b, ut, &self.a.as_slice()[..nn], n, n, n)
            };
            if !fast {
                adjoint_times(d, b, us, &self.a.as_slice()[..nn]);
            }
        }
        // The entries' linear rates a_ij and weights |F_ij|²/(μ_i μ_j), once.
        let (rates, weights, phis) = (
            &mut self.rates[..nn],
            &mut self.weights[..nn],
            &mut self.phis[..nn],
        );
        for j in 0..n {
            for i in 0..n {
                let bij = b[i + j * n];
                let f = if i == j { bij - T::one() } else { bij };
                rates[i + j * n] = b[j + j * n].real() / mu[i] + b[i + i * n].real() / mu[j];
                weights[i + j * n] = f.modulus_squared() / (mu[i] * mu[j]);
            }
        }
        // The largest h ≤ left whose relative change ‖G_ij/√(μ_i μ_j)‖_F stays within the
        // limit; the factors h·φ₁(−h a) of the accepted h are left in `phis` for G.
        let (c, h) = longest_within_limit(d, left, rates, weights, phis);
        self.last_change = c;
        // G in place of B, then ΔM = U G Uᴴ.
        let delta = &mut self.delta.as_mut_slice()[..nn];
        for j in 0..n {
            for i in 0..n {
                let bij = b[i + j * n];
                let f = if i == j { bij - T::one() } else { bij };
                delta[i + j * n] = f.scale(phis[i + j * n]);
            }
        }
        // The eigenvalues after the step to first order, μ_i + G_ii (the error is second order
        // in G's off-diagonal part), for the stats (docs/DESIGN.md §5.5).
        let after = &mut self.mu_after[..n];
        for (i, (after, m)) in after.iter_mut().zip(mu).enumerate() {
            *after = m + delta[i + i * n].real();
        }
        insertion_sort(after);
        if n == 2 {
            // U G Uᴴ from the conjugated rows of U.
            let g = [delta[0], delta[1], delta[2], delta[3]];
            let (r0, r1) = (
                [us[0].conjugate(), us[2].conjugate()],
                [us[1].conjugate(), us[3].conjugate()],
            );
            congruence_2x2(&mut delta[..4], &g, r0, r1);
            return Ok(h);
        }
        matmul_into(&mut self.a, u, &self.delta);
        // Real n ≥ 3 on a CPU with FMA: (U G) Uᵀ with Uᵀ in `b` (done with) through the FMA
        // kernel.
        let ut = &mut self.b.as_mut_slice()[..nn];
        let fast = n >= 3 && real_fma_available() && T::as_reals(us).is_some() && {
            transpose_into(ut, us, n);
            real_product(
                &mut self.delta.as_mut_slice()[..nn],
                &self.a.as_slice()[..nn],
                ut,
                n,
                n,
                n,
            )
        };
        if !fast {
            times_adjoint(
                d,
                &mut self.delta.as_mut_slice()[..nn],
                &self.a.as_slice()[..nn],
                us,
            );
        }
        Ok(h)
    }

    /// Floor `M + ΔM`'s eigenvalues at `ε` (the safeguard instead of a reset).
    fn floor_into(
        &mut self,
        circuit: &mut DirectCircuit<T>,
        floor: f64,
    ) -> Result<(), CircuitError> {
        self.counters.floored += 1;
        let n = self.delta.nrows();
        self.a.copy_from(circuit.m());
        for j in 0..n {
            for i in 0..n {
                self.a[(i, j)] += self.delta[(i, j)];
            }
        }
        self.eig
            .decompose(&self.a)
            .map_err(|_| CircuitError::NotPositiveDefinite)?;
        let eps = floor.max(1e-12);
        self.eig.apply_function_into(|l| l.max(eps), &mut self.b);
        circuit.set_m(&self.b)
    }

    /// Integrate the interneuron circuit over what `span` describes with input statistics `x`,
    /// resumable as [`Self::direct_steps`] is. Inlined into the race's learning step: as a
    /// call, once per band and block, its spills cost spectral stereo 0.5 % of its instructions.
    #[inline]
    pub fn interneuron_steps(
        &mut self,
        circuit: &mut InterneuronCircuit<T>,
        p: &mut DMatrix<T>,
        x: &DMatrix<T>,
        r0: Option<&DMatrix<T>>,
        span: &mut Span,
        max_units: usize,
    ) -> Result<usize, CircuitError> {
        let eta = circuit.learning_rate();
        let mut taken = 0;
        let mut result = Ok(());
        while span.left > 0.0 && taken < max_units {
            if !self.start_substep(p, x, r0, span) {
                break;
            }
            taken += SUBSTEP_UNITS;
            let n = p.nrows();
            let mut dev = 0.0;
            for j in 0..n {
                for i in 0..n {
                    let d = if i == j {
                        self.r[(i, j)] - T::one()
                    } else {
                        self.r[(i, j)]
                    };
                    dev += d.modulus_squared();
                }
            }
            // M = W Wᴴ changes by ≈ h (D M + M D): relative change 2h‖D‖; linear rate
            // ≤ 2(1 + ‖R‖).
            let rel = 2.0 * dev.sqrt();
            let rate = 2.0 * (1.0 + with_dim!(n, d => gershgorin(d, self.r.as_slice())));
            let h = span
                .left
                .min(MAX_RELATIVE_CHANGE / rel.max(1e-300))
                .min(MAX_LINEAR_STEP / rate)
                .min(0.5);
            circuit.set_learning_rate(h)?;
            result = circuit.step_outer(&self.r);
            if result.is_err() {
                break;
            }
            circuit.inverse_recurrent_matrix_into(p);
            span.left -= h;
            self.counters.substeps += 1;
        }
        circuit.set_learning_rate(eta)?;
        result.map(|_| taken)
    }
}

/// Work units of one factorisation of the gain circuit's k×k system (O(k³/6)) against a unit
/// (about a sub-step of the direct circuit, a few n³): `k³/(6 n³)`, at least 1 — 1 for stereo,
/// about 15 at 8 channels and 100 at 16 (k = n(n+1)/2).
fn gain_factor_units<T: Scalar>(circuit: &GainModulatingCircuit<T>) -> usize {
    let (n, k) = (circuit.dim() as f64, circuit.interneurons() as f64);
    ((k * k * k) / (6.0 * n * n * n)).round().max(1.0) as usize
}

impl<T: Scalar> BlockIntegrator<T> {
    /// Integrate the gain-modulating circuit over what `span` describes with input statistics
    /// `x`, resumable as [`Self::direct_steps`] is; each sub-step is the circuit's own block
    /// rule ([`GainModulatingCircuit::block_substep`]) within [`MAX_RELATIVE_CHANGE`], one unit
    /// plus `gain_factor_units` per factorisation of its k×k system.
    pub fn gain_steps(
        &mut self,
        circuit: &mut GainModulatingCircuit<T>,
        p: &mut DMatrix<T>,
        x: &DMatrix<T>,
        r0: Option<&DMatrix<T>>,
        span: &mut Span,
        max_units: usize,
    ) -> Result<usize, CircuitError> {
        let mut taken = 0;
        while span.left > 0.0 && taken < max_units {
            if !self.start_substep(p, x, r0, span) {
                break;
            }
            taken += SUBSTEP_UNITS;
            let h = circuit.block_substep(&self.r, span.left, MAX_RELATIVE_CHANGE)?;
            taken += circuit.block_factorisations() * gain_factor_units(circuit);
            circuit.inverse_recurrent_matrix_into(p);
            span.left -= h;
            self.counters.substeps += 1;
        }
        Ok(taken)
    }
}

/// Sort ascending in place (n ≤ 64 values, no allocation).
fn insertion_sort(v: &mut [f64]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// `‖P (R − I)‖_F`: the relative change of `M` per unit time of an Euler step. Column `j` of
/// the product is `Σ_k (R − I)_kj · (column k of P)`: contiguous axpys into `column` (n
/// values; for real n ≥ 3, where it holds n×n, the whole product through the FMA kernel),
/// each entry summed over `k` in ascending order.
#[inline(always)]
fn euler_relative_change<T: Scalar, D: Dim>(
    d: D,
    p: &[T],
    r: &[T],
    scratch: &mut [T],
    column: &mut [T],
) -> f64 {
    let n = d.get();
    let (p, r, dm) = (&p[..n * n], &r[..n * n], &mut scratch[..n * n]);
    // R − I first, so the inner loop is a plain product.
    dm.copy_from_slice(r);
    for i in 0..n {
        dm[i + i * n] -= T::one();
    }
    // Real n ≥ 3: the product through the FMA kernel into `column`'s n×n, then its norm.
    if n >= 3 && column.len() >= n * n && real_product(column, p, dm, n, n, n) {
        return column[..n * n]
            .iter()
            .map(|c| c.modulus_squared())
            .sum::<f64>()
            .sqrt();
    }
    let column = &mut column[..n];
    let mut s = 0.0;
    for dj in dm.chunks_exact(n) {
        column.fill(T::zero());
        for (pk, &dkj) in p.chunks_exact(n).zip(dj) {
            for (c, &pik) in column.iter_mut().zip(pk) {
                *c += pik * dkj;
            }
        }
        for c in column.iter() {
            s += c.modulus_squared();
        }
    }
    s.sqrt()
}

/// `out = aᴴ b` (square, column-major slices): entry `(i, j)` is the dot product of columns
/// `i` of `a` and `j` of `b`, summed in ascending order.
#[inline(always)]
fn adjoint_times<T: Scalar, D: Dim>(d: D, out: &mut [T], a: &[T], b: &[T]) {
    let n = d.get();
    let (out, a, b) = (&mut out[..n * n], &a[..n * n], &b[..n * n]);
    for (oj, bj) in out.chunks_exact_mut(n).zip(b.chunks_exact(n)) {
        for (o, ai) in oj.iter_mut().zip(a.chunks_exact(n)) {
            let mut v = T::zero();
            for (&aki, &bkj) in ai.iter().zip(bj) {
                v += aki.conjugate() * bkj;
            }
            *o = v;
        }
    }
}

/// `out_ij = v_iᴴ H v_j` for a 2×2 Hermitian `H` (lower triangle read) and two 2-vectors — `Uᴴ H
/// U` with `v_i` the columns of `U`, `U H Uᴴ` with `v_i` its conjugated rows — the direct
/// circuit's exponential step at n = 2. The diagonal `vᴴ H v = h₀₀|v₀|² + h₁₁|v₁|² + 2 Re(v̄₁ h₁₀
/// v₀)` is real and the upper entry the conjugate of the lower, exactly: about half the
/// arithmetic of two general products (docs/DESIGN.md §9).
#[inline(always)]
fn congruence_2x2<T: Scalar>(out: &mut [T], h: &[T], v0: [T; 2], v1: [T; 2]) {
    let (h00, h11, h10) = (h[0].real(), h[3].real(), h[1]);
    let quadratic = |v: [T; 2]| {
        h00 * v[0].modulus_squared()
            + h11 * v[1].modulus_squared()
            + 2.0 * (v[1].conjugate() * h10 * v[0]).real()
    };
    // H v₀, then v₁ᴴ (H v₀).
    let t0 = v0[0].scale(h00) + h10.conjugate() * v0[1];
    let t1 = h10 * v0[0] + v0[1].scale(h11);
    let off = v1[0].conjugate() * t0 + v1[1].conjugate() * t1;
    let out = &mut out[..4];
    out[0] = T::from_real(quadratic(v0));
    out[1] = off;
    out[2] = off.conjugate();
    out[3] = T::from_real(quadratic(v1));
}

/// `out = a bᴴ` (square, column-major slices): column `j` is `Σ_k conj(b_jk) · (column k of
/// a)`, contiguous axpys, each entry summed over `k` in ascending order.
#[inline(always)]
fn times_adjoint<T: Scalar, D: Dim>(d: D, out: &mut [T], a: &[T], b: &[T]) {
    let n = d.get();
    let (out, a, b) = (&mut out[..n * n], &a[..n * n], &b[..n * n]);
    for (j, oj) in out.chunks_exact_mut(n).enumerate() {
        oj.fill(T::zero());
        for (ak, bk) in a.chunks_exact(n).zip(b.chunks_exact(n)) {
            let c = bk[j].conjugate();
            for (o, &aik) in oj.iter_mut().zip(ak) {
                *o += aik * c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuits::{Circuit, Dynamic, Fixed};
    use nalgebra::Complex;

    /// Five blocks of the direct circuit's integration at dimension `d` (2), quiet and loud,
    /// with correlated channels: `M` after each, and the integrator's counts.
    fn direct_blocks<T: Scalar, D: Dim>(d: D) -> (Vec<DMatrix<T>>, IntegratorCounters) {
        let mut integ = BlockIntegrator::<T>::new(2);
        let mut circuit = DirectCircuit::<T>::new(2, 0.1, 1.0).unwrap();
        let mut p = DMatrix::<T>::identity(2, 2);
        let mut ms = Vec::new();
        for (block, level) in [1.0, 1e-4, 30.0, 1.0, 0.5].into_iter().enumerate() {
            let off = T::from_parts(0.3 * level, 0.1 * level * block as f64);
            let x = DMatrix::from_row_slice(
                2,
                2,
                &[
                    T::from_real(1.2 * level),
                    off.conjugate(),
                    off,
                    T::from_real(level),
                ],
            );
            let mut span = Span::new(0.3);
            integ
                .direct_steps_in(d, &mut circuit, &mut p, &x, None, &mut span, 1e-3, 64)
                .unwrap();
            let mut m = DMatrix::zeros(2, 2);
            circuit.recurrent_matrix_into(&mut m);
            ms.push(m);
        }
        (ms, integ.counters)
    }

    /// The direct circuit's sub-steps compiled for a fixed size give the bits of the same code
    /// at run-time size, over Euler and exponential steps (quiet and loud statistics).
    fn fixed_size_matches_run_time_size<T: Scalar>() {
        let (fixed, counters) = direct_blocks::<T, _>(Fixed::<2>);
        assert!(counters.substeps > 5, "{counters:?}");
        assert_eq!(fixed, direct_blocks::<T, _>(Dynamic(2)).0);
    }

    /// The 2×2 congruences `Uᴴ H U` and `U H Uᴴ` against two general products, within
    /// rounding of their size, exactly Hermitian; real and complex, unitary `U` from a 2×2
    /// eigendecomposition and a general `U`.
    #[test]
    fn congruence_2x2_is_the_two_products() {
        fn check<T: Scalar>(h: &[T; 4], u: &[T; 4]) {
            let hm = DMatrix::from_column_slice(2, 2, h);
            let um = DMatrix::from_column_slice(2, 2, u);
            for (want, v0, v1) in [
                (um.adjoint() * &hm * &um, [u[0], u[1]], [u[2], u[3]]),
                (
                    &um * &hm * um.adjoint(),
                    [u[0].conjugate(), u[2].conjugate()],
                    [u[1].conjugate(), u[3].conjugate()],
                ),
            ] {
                let mut got = [T::zero(); 4];
                congruence_2x2(&mut got, h, v0, v1);
                let got = DMatrix::from_column_slice(2, 2, &got);
                let scale = hm.norm() * um.norm() * um.norm();
                assert!((&got - &want).norm() <= 1e-15 * scale, "{got} vs {want}");
                assert_eq!(got[(0, 0)].imaginary(), 0.0);
                assert_eq!(got[(1, 1)].imaginary(), 0.0);
                assert_eq!(got[(0, 1)], got[(1, 0)].conjugate());
            }
        }
        let c = Complex::new;
        let h = [c(1.5, 0.0), c(0.3, -0.8), c(0.3, 0.8), c(-0.4, 0.0)];
        let mut u = DMatrix::zeros(2, 2);
        let mut mu = [0.0; 2];
        eigen_2x2(&DMatrix::from_column_slice(2, 2, &h), &mut u, &mut mu);
        let unitary = [u[(0, 0)], u[(1, 0)], u[(0, 1)], u[(1, 1)]];
        check(&h, &unitary);
        check(&h, &[c(0.2, 1.0), c(-3.0, 0.5), c(0.7, -0.1), c(1.1, 2.0)]);
        check(&[2.0, -0.7, -0.7, 0.5], &[0.6, -0.8, 0.8, 0.6]);
        check(&[2.0, -0.7, -0.7, 0.5], &[1.3, 0.2, -4.0, 0.9]);
    }

    #[test]
    fn fixed_size_direct_steps_match_run_time_size() {
        fixed_size_matches_run_time_size::<f64>();
        fixed_size_matches_run_time_size::<Complex<f64>>();
    }

    /// `1 − e^{−z}` against the C library's `expm1`, over the range the exponential step uses
    /// (log-spaced and around the range reduction's switch points `k ln 2 ± ln 2 / 2`).
    #[test]
    fn one_minus_exp_neg_matches_expm1() {
        let mut zs: Vec<f64> = (0..=4000)
            .map(|i| 1e-7 * (37.0f64 / 1e-7).powf(i as f64 / 4000.0))
            .collect();
        for k in 0..54 {
            let edge = (k as f64 + 0.5) * std::f64::consts::LN_2;
            zs.extend([edge * (1.0 - 1e-12), edge, edge * (1.0 + 1e-12)]);
        }
        zs.extend([0.0, 1e-300, 37.0]);
        for z in zs {
            let truth = -(-z).exp_m1();
            let got = one_minus_exp_neg(z);
            let rel = if truth == 0.0 {
                got.abs()
            } else {
                ((got - truth) / truth).abs()
            };
            assert!(
                rel <= 1e-15,
                "z = {z:e}: {got:e} against {truth:e} ({rel:e})"
            );
        }
    }

    /// The change of the exponential step as its definition writes it, with the library's
    /// `expm1` (independent of [`change_at`]).
    fn naive_change(h: f64, rates: &[f64], weights: &[f64]) -> f64 {
        rates
            .iter()
            .zip(weights)
            .map(|(&a, &w)| {
                let v = if a == 0.0 { h } else { -(-h * a).exp_m1() / a };
                w * v * v
            })
            .sum::<f64>()
            .sqrt()
    }

    /// The length search never exceeds the limit, keeps the whole span when it fits, reports
    /// the change and factors of the length it takes, and nearly always lands within a factor
    /// 2 of the largest length within the limit (found here by bisection on the naive change)
    /// or within 10 % of the limit: over rates from mild to very stiff, as quiet input gives,
    /// with weights from noisy blocks, at n = 2 and 3.
    #[test]
    fn the_step_length_is_the_longest_within_the_limit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut searched, mut near) = (0, 0);
        for trial in 0..4000 {
            let n = 2 + trial % 2;
            let nn = n * n;
            // Eigenvalues of M spread over decades; ρ near 1 (a converging circuit).
            let mu: Vec<f64> = (0..n)
                .map(|_| 10f64.powf(rng.random_range(-6.0..0.0)))
                .collect();
            let rho: Vec<f64> = (0..n).map(|_| rng.random_range(0.3..3.0)).collect();
            let mut rates = vec![0.0; nn];
            let mut weights = vec![0.0; nn];
            for j in 0..n {
                for i in 0..=j {
                    let f: f64 = rng.random_range(-2.0..2.0);
                    let a = rho[j] / mu[i] + rho[i] / mu[j];
                    let w = f * f / (mu[i] * mu[j]);
                    rates[i + j * n] = a;
                    rates[j + i * n] = a;
                    weights[i + j * n] = w;
                    weights[j + i * n] = w;
                }
            }
            let left = 10f64.powf(rng.random_range(-3.0..0.0));
            let mut phis = vec![0.0; nn];
            let (c, h) = longest_within_limit(Dynamic(n), left, &rates, &weights, &mut phis);
            let truth_c = naive_change(h, &rates, &weights);
            assert!(
                (c - truth_c).abs() <= 1e-12 * truth_c,
                "reported change {c} against {truth_c}"
            );
            assert!(c <= MAX_RELATIVE_CHANGE, "change {c} above the limit");
            assert!(h > 0.0 && h <= left);
            for (p, &a) in phis.iter().zip(&rates) {
                let v = -(-h * a).exp_m1() / a;
                assert!((p - v).abs() <= 1e-13 * v, "factor {p} against {v}");
            }
            if naive_change(left, &rates, &weights) <= MAX_RELATIVE_CHANGE {
                assert_eq!(h, left, "the whole span fits");
                continue;
            }
            searched += 1;
            let (mut lo, mut hi) = (0.0, left);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if naive_change(mid, &rates, &weights) <= MAX_RELATIVE_CHANGE {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            assert!(h <= hi * (1.0 + 1e-9), "h {h} beyond the root {hi}");
            // Where the change hovers near the limit over decades of h (a saturated stiff
            // part plus a slow linear part) the root is ill-conditioned, and a length whose
            // change is within 10 % of the limit serves as well as the root.
            if h >= 0.5 * lo || c >= 0.9 * MAX_RELATIVE_CHANGE {
                near += 1;
            }
        }
        // Otherwise the search ran out of iterations and took the longest length it knew to
        // be within the limit: rare.
        assert!(searched > 1000, "{searched} searches");
        assert!(
            near as f64 >= 0.97 * searched as f64,
            "{near} of {searched} near the root or the limit"
        );
    }
}
