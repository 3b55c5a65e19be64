//! Closed-form continuous-time learning curves (docs/DESIGN.md §2.5).
//!
//! For an input covariance `C` that commutes with the initial state `M₀ = s·I`, every
//! eigen-direction evolves on its own in the rescaled time `τ = η t`. With `σ²` an eigenvalue
//! of `C` and `m` the matching eigenvalue of `M`:
//!
//! * direct: `dm/dτ = σ²/m² − 1`. Separating variables,
//!   `τ(m₀ → m) = G(m) − G(m₀)` with `G(m) = −m + (σ/2) ln |(σ + m)/(σ − m)|`.
//! * interneuron: `dm/dτ = 2(σ²/m − m)`, i.e. `d(m²)/dτ = 4(σ² − m²)`, so
//!   `m(τ)² = σ² + (m₀² − σ²) e^{−4τ}`.
//! * baseline (not a circuit, the classical reference): its covariance estimate is smoothed
//!   with factor `α = η` per update, `dĈ/dτ = C − Ĉ`, and its `M = Ĉ^{1/2}` starts at `s·I`,
//!   so `m(τ)² = σ² + (m₀² − σ²) e^{−τ}` — the interneuron circuit's law, four times slower.
//!
//! The whitening error of the commuting state is `E = √(mean_i (σ_i²/m_i² − 1)²)`, monotone in
//! τ, so the convergence time is found by bisection on these closed forms — no simulation.

use crate::whitener::WhitenerKind;

/// `G(m) = −m + (σ/2) ln|(σ+m)/(σ−m)|`, the antiderivative of `m²/(σ² − m²)`.
fn direct_g(sigma: f64, m: f64) -> f64 {
    -m + 0.5 * sigma * ((sigma + m) / (sigma - m)).abs().ln()
}

/// Time `τ` the direct circuit's eigenvalue needs to move from `m0` to `m` (both on the same
/// side of `σ`, `m` between `m0` and `σ`) for input variance `sigma2`.
pub fn direct_time(sigma2: f64, m0: f64, m: f64) -> f64 {
    let sigma = sigma2.sqrt();
    direct_g(sigma, m) - direct_g(sigma, m0)
}

/// Time `τ` the interneuron circuit's eigenvalue needs to move from `m0` to `m`.
pub fn interneuron_time(sigma2: f64, m0: f64, m: f64) -> f64 {
    0.25 * ((m0 * m0 - sigma2) / (m * m - sigma2)).ln()
}

/// The eigenvalue `m(τ)` of `M` along a direction with input variance `sigma2`, started at `m0`
/// (NaN for the gain circuit, which has no per-eigenvalue law).
pub fn eigenvalue_at(kind: WhitenerKind, sigma2: f64, m0: f64, tau: f64) -> f64 {
    let sigma = sigma2.sqrt();
    match kind {
        WhitenerKind::Interneuron => (sigma2 + (m0 * m0 - sigma2) * (-4.0 * tau).exp()).sqrt(),
        WhitenerKind::Baseline => (sigma2 + (m0 * m0 - sigma2) * (-tau).exp()).sqrt(),
        // No per-eigenvalue law: its preconditioner Φ mixes the eigen-directions of `C`
        // (docs/DESIGN.md §2.9).
        WhitenerKind::Gain => f64::NAN,
        WhitenerKind::Direct => {
            if tau <= 0.0 || m0 == sigma {
                return m0;
            }
            // τ(m) is monotone between m0 and σ: invert it by bisection.
            let (mut lo, mut hi) = (m0.min(sigma), m0.max(sigma));
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                let t = direct_time(sigma2, m0, mid);
                // Moving from m0 towards σ, τ grows; decide which half holds τ.
                let towards_sigma_is_hi = m0 < sigma;
                if (t < tau) == towards_sigma_is_hi {
                    lo = mid;
                } else {
                    hi = mid;
                }
                if hi - lo <= 1e-15 * hi {
                    break;
                }
            }
            0.5 * (lo + hi)
        }
    }
}

/// Whitening error at time `τ` from `M₀ = s·I` for an input spectrum (eigenvalues of `C`).
pub fn error_at(kind: WhitenerKind, spectrum: &[f64], scale: f64, tau: f64) -> f64 {
    error_from(kind, spectrum, |_| scale, tau)
}

/// Whitening error at time `τ` from a state commuting with `C` whose eigenvalue along the
/// direction of `spectrum[i]` is `m0(i)`.
fn error_from(kind: WhitenerKind, spectrum: &[f64], m0: impl Fn(usize) -> f64, tau: f64) -> f64 {
    let sum: f64 = spectrum
        .iter()
        .enumerate()
        .map(|(i, &s2)| {
            let m = eigenvalue_at(kind, s2, m0(i), tau);
            (s2 / (m * m) - 1.0).powi(2)
        })
        .sum();
    (sum / spectrum.len() as f64).sqrt()
}

/// Continuous time `τ` until the whitening error first drops below `tol`, from `M₀ = s·I`.
/// `None` if it never does (only when `tol ≤ 0`), and for the gain circuit (no theory yet).
pub fn convergence_time(kind: WhitenerKind, spectrum: &[f64], scale: f64, tol: f64) -> Option<f64> {
    convergence_time_from(kind, spectrum, &vec![scale; spectrum.len()], tol)
}

/// Like [`convergence_time`], from a state that commutes with `C` with eigenvalues `m0`
/// (paired with `spectrum`): e.g. the optimum for a previous input level, after a level step
/// — `m0[i] = √(spectrum[i]/g²)` for a step of `g²` in power.
pub fn convergence_time_from(
    kind: WhitenerKind,
    spectrum: &[f64],
    m0: &[f64],
    tol: f64,
) -> Option<f64> {
    if tol.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || kind == WhitenerKind::Gain
        || spectrum.is_empty()
        || m0.len() != spectrum.len()
    {
        return None;
    }
    let err = |tau: f64| error_from(kind, spectrum, |i| m0[i], tau);
    if err(0.0) < tol {
        return Some(0.0);
    }
    let mut hi = 1.0;
    while err(hi) >= tol {
        hi *= 2.0;
        if hi > 1e15 {
            return None;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if err(mid) < tol {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    Some(hi)
}

/// Predicted number of discrete updates `τ/η`.
pub fn convergence_iterations(
    kind: WhitenerKind,
    spectrum: &[f64],
    scale: f64,
    tol: f64,
    eta: f64,
) -> Option<f64> {
    convergence_time(kind, spectrum, scale, tol).map(|tau| tau / eta)
}
