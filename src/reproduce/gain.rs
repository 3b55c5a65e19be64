//! The gain-modulating circuit in the convergence-time sweep (docs/DESIGN.md §2.9, §12.1).
//!
//! It has no closed-form theory, so the sweep reports, beside its measured counts, what the
//! update's form guarantees and what its large-`s` limit gives from `M₀ = s·I`:
//!
//! * a **lower bound**: `|z_i|² ≥ 0` caps every gain's fall at `η_g ‖w_i‖²` per update, so
//!   `Tr M` falls by at most `η_g Σ_i ‖w_i‖⁴` (`k η_g` for unit columns), online or mean-field.
//!   And `E(M; C) < tol` implies `‖M⁻¹CM⁻¹ − I‖₂ < ε = tol·√n`, so `C ⪰ (1 − ε) M²`, and as the
//!   square root is operator monotone `M ⪯ C^{1/2}/√(1 − ε)`: `Tr M ≤ Tr C^{1/2}/√(1 − ε)`.
//!   Reaching it from `Tr M₀ = n s` takes at least `(n s − Tr C^{1/2}/√(1 − ε)) / (η_g Σ‖w_i‖⁴)`
//!   updates (none when `ε ≥ 1`);
//! * the **asymptote**: for `s ≫ σ_max` the count grows as `κ s / η_g` — on the pairs frame
//!   `κ = 2` for `n ≥ 2` (`κ = 1` for `n = 1`, where the circuit is the direct one). Scaled by
//!   `s`, the dynamics tend to a flow that does not depend on `C` (the responses vanish until an
//!   eigenvalue of `M` reaches `O(σ)`, which is `0` on the scale of `s`), so `κ` may be computed
//!   for `C = I`, where by symmetry `M = λ₊ P₁ + λ₋ (I − P₁)` (`P₁` the projector on `1`) with
//!   the diagonal gains all `g` and the pair gains all `h`:
//!   `λ₊ = 1 + g + (n−1) h`, `λ₋ = 1 + g + (n−2) h/2`. While both are far above 1, `ġ = ḣ = −η_g`,
//!   so `λ₊` falls at `n η_g` and `λ₋` at `(n/2) η_g`: after `s/(n η_g)` updates `λ₊` arrives with
//!   `λ₋` still `s/2` above. Then `λ₊` is held where `ġ + (n−1) ḣ = 0`, i.e. its response
//!   `r₊ = n²/(2n−1)`, and `λ₋` falls at only `η_g n / (2(2n−1))`: another `s(2n−1)/(n η_g)`
//!   updates, `2s/η_g` in all. The pair gains first go negative (the off-diagonal entries of `M`
//!   overshoot) and then come back — why the circuit is slower than its first, steepest descent
//!   (`λ_min(Φ(I)) = n/2`, which would predict `2s/(n η_g)`) suggests. Measured (mean-field,
//!   η = 0.01, n = 2…6, `C = I` and spread spectra): fitted slopes 200.0–200.2 per unit `s`, and
//!   online (η = 0.001, n = 4) 2001. The intercept depends on `C` and is not predicted, so as a
//!   count `κ s / η_g` is an estimate; as a slope it is the law.

use crate::circuits::{pairs_frame, CircuitError, GainConfig, GainFrame, GainModulatingCircuit};
use serde::Serialize;

/// How the sweep runs the gain-modulating circuit, and the frame's numbers its bound and
/// asymptote use.
#[derive(Clone, Debug, Serialize)]
pub struct GainSetup {
    /// The frame: always the pairs frame, `k = n(n+1)/2` — unlike the race, which falls back to
    /// one interneuron per channel above 8 channels; the sweep is offline and must whiten.
    #[serde(flatten)]
    pub frame: GainFrame,
    /// Its number of interneurons `k` (not `--interneurons`, which is the interneuron
    /// circuit's).
    pub interneurons: usize,
    /// The leak `α` (1, as in the race and in both papers).
    pub alpha: f64,
    /// `η_g`: the sweep's `η`, the correspondence the race uses (`GainConfig::racing`).
    pub eta_g: f64,
    /// `Σ_i ‖w_i‖⁴`: `Tr M` falls by at most `η_g` times this per update.
    pub trace_rate: f64,
    /// `κ / η_g`: the large-`s` law's slope, updates per unit of `s` (`κ = 2` on the pairs
    /// frame for `n ≥ 2`, 1 for `n = 1`).
    pub asymptotic_slope: f64,
}

/// The bound and asymptote of one gain run (flattened into its JSON row).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct GainEstimates {
    /// No run from this `s` can converge in fewer updates; `None` when `tol·√n ≥ 1` (then the
    /// tolerance does not bound `Tr M`). Never above the measured count.
    pub lower_bound_iterations: Option<f64>,
    /// `κ s / η_g`: the large-`s` law without its (`C`-dependent, unpredicted) intercept — an
    /// estimate of the count whose slope is exact as `s → ∞`.
    pub asymptotic_iterations: f64,
}

impl GainSetup {
    /// The setup for dimension `n` and learning rate `eta`.
    pub fn new(n: usize, eta: f64) -> Result<Self, CircuitError> {
        let w = pairs_frame::<f64>(n)?;
        let norms2: Vec<f64> = w.column_iter().map(|c| c.norm_squared()).collect();
        let trace_rate = norms2.iter().map(|v| v * v).sum();
        // κ of the module's derivation: with one neuron the circuit is the direct one.
        let kappa = if n == 1 { 1.0 } else { 2.0 };
        Ok(Self {
            frame: GainFrame::Pairs,
            interneurons: w.ncols(),
            alpha: GainConfig::racing(eta, 1.0).alpha,
            eta_g: eta,
            trace_rate,
            asymptotic_slope: kappa / eta,
        })
    }

    /// The circuit from `M₀ = s·I`: pairs frame, the racing configuration (no plasticity).
    pub fn circuit(
        &self,
        n: usize,
        scale: f64,
    ) -> Result<GainModulatingCircuit<f64>, CircuitError> {
        GainModulatingCircuit::new(n, self.frame, GainConfig::racing(self.eta_g, scale))
    }

    /// Bound and asymptote from scale `s` for the eigenvalues `spectrum` of `C` and tolerance
    /// `tol`.
    pub fn estimates(&self, spectrum: &[f64], scale: f64, tol: f64) -> GainEstimates {
        let n = spectrum.len() as f64;
        let eps = tol * n.sqrt();
        let trace_target: f64 = spectrum.iter().map(|c| c.sqrt()).sum();
        let lower_bound_iterations = (eps < 1.0).then(|| {
            ((n * scale - trace_target / (1.0 - eps).sqrt()) / (self.eta_g * self.trace_rate))
                .max(0.0)
        });
        GainEstimates {
            lower_bound_iterations,
            asymptotic_iterations: self.asymptotic_slope * scale,
        }
    }
}
