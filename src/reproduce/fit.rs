//! Least-squares fits of the two scaling laws.

use serde::Serialize;

/// The functional form fitted to iterations vs scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// `T(s) = a·s + b` — the direct circuit's prediction.
    Linear,
    /// `T(s) = a·ln s + b` — the interneuron circuit's prediction.
    Logarithmic,
}

/// A fitted law `T = slope · f(s) + intercept`.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    /// The form of `f`.
    pub law: Law,
    /// `a`: iterations per unit of scale (linear) or per e-fold of scale (logarithmic).
    pub slope: f64,
    /// `b`.
    pub intercept: f64,
    /// Coefficient of determination of the fit in its own coordinates.
    pub r_squared: f64,
    /// Number of points fitted.
    pub points: usize,
}

impl Fit {
    /// Human-readable form, e.g. `T ≈ 99.9·s + 190` or `T ≈ 50.1·ln s + 231`.
    pub fn describe(&self) -> String {
        let f = match self.law {
            Law::Linear => "s",
            Law::Logarithmic => "ln s",
        };
        let sign = if self.intercept < 0.0 { '−' } else { '+' };
        format!(
            "T ≈ {:.4}·{} {} {:.1}  (R² = {:.4})",
            self.slope,
            f,
            sign,
            self.intercept.abs(),
            self.r_squared
        )
    }

    /// Evaluate the fitted law at scale `s`.
    pub fn eval(&self, s: f64) -> f64 {
        let x = match self.law {
            Law::Linear => s,
            Law::Logarithmic => s.ln(),
        };
        self.slope * x + self.intercept
    }
}

/// Ordinary least squares of `T` on `s` (linear) or `ln s` (logarithmic). Needs two distinct
/// scales; returns `None` otherwise.
pub fn fit_law(law: Law, points: &[(f64, f64)]) -> Option<Fit> {
    let xs: Vec<(f64, f64)> = points
        .iter()
        .map(|&(s, t)| match law {
            Law::Linear => (s, t),
            Law::Logarithmic => (s.ln(), t),
        })
        .collect();
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return None;
    }
    let mx = xs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xs.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = xs.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r_squared = if syy > 0.0 {
        (sxy * sxy) / (sxx * syy)
    } else {
        1.0
    };
    Some(Fit {
        law,
        slope,
        intercept,
        r_squared,
        points: xs.len(),
    })
}
