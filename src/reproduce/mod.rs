//! The paper's experiment (docs/DESIGN.md §2.3, §12.1): how many updates each circuit needs to whiten
//! from an initial state `M₀ = s·I` that is `s` times too large, for a sweep of scales `s`.
//!
//! Every circuit sees the same covariance `C = U diag(spectrum) Uᴴ` (and, online, the very same
//! input samples). The convergence time is the smallest `t ≥ 0` with `E(M_t; C) < tol`, where
//! `t` counts the updates applied. Runs that do not converge within the iteration cap are
//! reported as `null`, never dropped. The paper's two circuits run by default; the
//! gain-modulating circuit (§2.9) joins when asked for, from the same `M₀ = s·I` ([`gain`]).
//!
//! [`contexts`] is the second experiment: the returning contexts of Duong et al. (NeurIPS 2023).

pub mod contexts;
mod contexts_figure;
mod figure;
mod fit;
pub mod gain;

pub(crate) use figure::colour;
pub use fit::{fit_law, Fit, Law};
pub use gain::{GainEstimates, GainSetup};

use crate::circuits::{build_circuit, Circuit, CircuitError, InterneuronBasis, Solver};
use crate::io::{write_atomically, AtomicFileError};
use crate::source::{validate_spectrum, GaussianSource};
use crate::theory;
use crate::whitener::WhitenerKind;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which dynamics are iterated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Deterministic expected updates with `r rᴴ` replaced by `M⁻¹CM⁻¹`.
    MeanField,
    /// Per-sample updates on seeded Gaussian input with covariance `C`.
    Online,
}

impl Mode {
    /// Default learning rate: small enough online that the stochastic error floor sits well
    /// below the default tolerance.
    pub fn default_eta(self) -> f64 {
        match self {
            Mode::MeanField => 0.01,
            Mode::Online => 0.001,
        }
    }

    /// Default tolerance: online the error fluctuates around a floor of order `√η`, so the
    /// online tolerance must sit above it.
    pub fn default_tol(self) -> f64 {
        match self {
            Mode::MeanField => 0.01,
            Mode::Online => 0.1,
        }
    }

    /// Name used in file names and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::MeanField => "mean-field",
            Mode::Online => "online",
        }
    }
}

/// The scales swept when none are given: three decades, log-spaced.
pub const DEFAULT_SCALES: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Everything that defines one experiment.
#[derive(Clone, Debug, Serialize)]
pub struct ReproduceConfig {
    /// Mean-field or online dynamics.
    pub mode: Mode,
    /// The circuits raced, in this order at every scale: the paper's two by default
    /// ([`WhitenerKind::CIRCUITS`]), the gain-modulating circuit on request. Never the baseline,
    /// which is not a circuit.
    pub circuits: Vec<WhitenerKind>,
    /// Eigenvalues of the input covariance `C`; its length is the dimension `n`.
    pub spectrum: Vec<f64>,
    /// Number of interneurons `k ≥ n` of the interneuron circuit (the gain circuit's `k` is its
    /// frame's, [`GainSetup::interneurons`]).
    pub interneurons: usize,
    /// Learning rate `η`.
    pub eta: f64,
    /// Whitening-error tolerance that defines convergence.
    pub tol: f64,
    /// Initial scales `s` to sweep.
    pub scales: Vec<f64>,
    /// Seed of the covariance rotation `U` and of the online samples.
    pub seed: u64,
    /// Iteration cap; a run that has not converged by then is reported as `null`.
    pub max_iterations: u64,
    /// Orthonormal rows used for `W₀ = √s Q`.
    pub basis: InterneuronBasis,
}

impl ReproduceConfig {
    /// The defaults of `whiten reproduce` for a mode and dimension: `C = I`, `k = n`.
    pub fn new(mode: Mode, dim: usize) -> Self {
        Self {
            mode,
            circuits: WhitenerKind::CIRCUITS.to_vec(),
            spectrum: vec![1.0; dim],
            interneurons: dim,
            eta: mode.default_eta(),
            tol: mode.default_tol(),
            scales: DEFAULT_SCALES.to_vec(),
            seed: 0,
            max_iterations: 10_000_000,
            basis: InterneuronBasis::Dct,
        }
    }

    /// Dimension `n`.
    pub fn dim(&self) -> usize {
        self.spectrum.len()
    }

    /// Reject every unusable parameter with a message a user can act on.
    pub fn validate(&self) -> Result<(), ReproduceError> {
        let bad = |m: String| Err(ReproduceError::InvalidArgument(m));
        if self.spectrum.is_empty() {
            return bad("the dimension must be at least 1".into());
        }
        if let Err(CircuitError::InvalidCovariance(m)) = validate_spectrum(&self.spectrum) {
            return bad(format!(
                "--spectrum: {m} (C must be symmetric positive definite)"
            ));
        }
        if self.circuits.is_empty() {
            return bad(
                "--circuits is empty: give at least one of direct, interneuron, gain".into(),
            );
        }
        for (i, kind) in self.circuits.iter().enumerate() {
            if !kind.is_circuit() {
                return bad(format!(
                    "--circuits: {kind} is not a circuit (it has no M₀ = s·I to start from); \
                     choose from direct, interneuron, gain"
                ));
            }
            if self.circuits[..i].contains(kind) {
                return bad(format!("--circuits names {kind} twice"));
            }
        }
        if self.circuits.contains(&WhitenerKind::Interneuron) && self.interneurons < self.dim() {
            return bad(format!(
                "--interneurons {} is fewer than the dimension {}: the interneuron circuit needs k >= n",
                self.interneurons,
                self.dim()
            ));
        }
        if !(self.eta.is_finite() && self.eta > 0.0 && self.eta < 1.0) {
            return bad(format!("--eta must be in (0, 1), got {}", self.eta));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad(format!("--tol must be finite and > 0, got {}", self.tol));
        }
        if self.scales.is_empty() {
            return bad("--scales is empty: give at least one initial scale".into());
        }
        if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return bad(format!(
                "--scales: every scale must be finite and > 0, got {s}"
            ));
        }
        if self.max_iterations == 0 {
            return bad("--max-iters must be at least 1".into());
        }
        Ok(())
    }
}

/// What went wrong in an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    /// A parameter is unusable.
    #[error("{0}")]
    InvalidArgument(String),
    /// A circuit rejected its construction.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Drawing the figure failed.
    #[error("cannot draw the figure {path}: {message}")]
    Figure {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// A failed atomic write is reported as "cannot write FILE: cause", like the other output
/// failures.
impl From<AtomicFileError> for ReproduceError {
    fn from(e: AtomicFileError) -> Self {
        ReproduceError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// One circuit started at one scale.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Which circuit.
    pub circuit: WhitenerKind,
    /// Initial scale `s`.
    pub scale: f64,
    /// Updates until `E < tol`, `None` if the cap was reached first (or the state diverged).
    pub iterations: Option<u64>,
    /// `τ/η` predicted by the continuous-time closed form (`None` for the gain circuit, which
    /// has none).
    pub theory_iterations: Option<f64>,
    /// The gain circuit's lower bound and large-`s` asymptote (its rows only; flattened into
    /// them).
    #[serde(flatten)]
    pub gain: Option<GainEstimates>,
    /// Whitening error at the end of the run.
    pub final_error: f64,
    /// Whether the state left the positive-definite cone (only possible for too large η).
    pub diverged: bool,
}

/// The fitted scaling law of each circuit.
#[derive(Clone, Debug, Serialize)]
pub struct Fits {
    /// Direct circuit: iterations = a·s + b.
    pub direct: Option<Fit>,
    /// Interneuron circuit: iterations = a·ln s + b.
    pub interneuron: Option<Fit>,
    /// Gain-modulating circuit: iterations = a·s + b (`None` also when it was not run).
    pub gain: Option<Fit>,
}

impl Fits {
    /// The fit of a circuit (`None` for a whitener the experiment does not run).
    pub fn of(&self, kind: WhitenerKind) -> Option<&Fit> {
        match kind {
            WhitenerKind::Direct => self.direct.as_ref(),
            WhitenerKind::Interneuron => self.interneuron.as_ref(),
            WhitenerKind::Gain => self.gain.as_ref(),
            WhitenerKind::Baseline => None,
        }
    }
}

/// The scaling law the continuous-time theory predicts for a whitener's convergence time
/// from scale `s` (docs/DESIGN.md §2): linear for the direct circuit, whose eigenvalues shrink
/// at a constant rate; logarithmic for the interneuron circuit (and the baseline), whose
/// squared eigenvalues relax exponentially. The gain circuit has no closed form; its law is
/// expected linear, because from above `Tr M` falls at most at a constant rate (§2.9).
pub fn law_of(kind: WhitenerKind) -> Law {
    match kind {
        WhitenerKind::Direct | WhitenerKind::Gain => Law::Linear,
        WhitenerKind::Interneuron | WhitenerKind::Baseline => Law::Logarithmic,
    }
}

/// The result of an experiment: the `--json` object of `whiten reproduce`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Mode, spectrum, k, η, tol, scales, seed and cap used.
    #[serde(flatten)]
    pub config: ReproduceConfig,
    /// Dimension `n`.
    pub dim: usize,
    /// How the gain circuit was run (`None` when it was not).
    pub gain: Option<GainSetup>,
    /// One entry per circuit and scale.
    pub runs: Vec<Run>,
    /// Fitted laws over the scales with `s ≥ fit_min_scale`.
    pub fits: Fits,
    /// Fits use scales at least this large (twice the largest target eigenvalue `σ_max`), where
    /// the initial state is clearly too large and the asymptotic law applies.
    pub fit_min_scale: f64,
    /// Runs that did not converge within the cap.
    pub not_converged: usize,
}

impl Report {
    /// The runs of one circuit, in scale order.
    pub fn runs_of(&self, kind: WhitenerKind) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(move |r| r.circuit == kind)
    }
}

/// Run the experiment. `progress(done, total)` is called after each run.
pub fn run(
    config: &ReproduceConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<Report, ReproduceError> {
    config.validate()?;
    let n = config.dim();
    // The covariance (and online, the input stream) is the same for every run.
    let source = GaussianSource::<f64>::new(&config.spectrum, config.seed)?;
    let c = source.covariance().clone();
    let gain = if config.circuits.contains(&WhitenerKind::Gain) {
        Some(GainSetup::new(n, config.eta)?)
    } else {
        None
    };
    let total = config.circuits.len() * config.scales.len();
    let mut runs = Vec::with_capacity(total);
    for &scale in &config.scales {
        for &kind in &config.circuits {
            let mut circuit: Box<dyn Circuit<f64>> = match &gain {
                Some(g) if kind == WhitenerKind::Gain => Box::new(g.circuit(n, scale)?),
                _ => build_circuit::<f64>(
                    kind,
                    n,
                    config.interneurons,
                    config.eta,
                    scale,
                    config.basis,
                    Solver::default(),
                )?,
            };
            let mut src = source.clone();
            let (iterations, final_error, diverged) =
                converge(circuit.as_mut(), &c, config, &mut src);
            runs.push(Run {
                circuit: kind,
                scale,
                iterations,
                theory_iterations: theory::convergence_iterations(
                    kind,
                    &config.spectrum,
                    scale,
                    config.tol,
                    config.eta,
                ),
                gain: gain
                    .as_ref()
                    .filter(|_| kind == WhitenerKind::Gain)
                    .map(|g| g.estimates(&config.spectrum, scale, config.tol)),
                final_error,
                diverged,
            });
            progress(runs.len(), total);
        }
    }
    let sigma_max = config.spectrum.iter().cloned().fold(0.0, f64::max).sqrt();
    let fit_min_scale = 2.0 * sigma_max;
    let points = |kind: WhitenerKind| -> Vec<(f64, f64)> {
        runs.iter()
            .filter(|r| r.circuit == kind && r.scale >= fit_min_scale)
            .filter_map(|r| r.iterations.map(|t| (r.scale, t as f64)))
            .collect()
    };
    let fit = |kind: WhitenerKind| fit_law(law_of(kind), &points(kind));
    let fits = Fits {
        direct: fit(WhitenerKind::Direct),
        interneuron: fit(WhitenerKind::Interneuron),
        gain: fit(WhitenerKind::Gain),
    };
    let not_converged = runs.iter().filter(|r| r.iterations.is_none()).count();
    Ok(Report {
        config: config.clone(),
        dim: n,
        gain,
        runs,
        fits,
        fit_min_scale,
        not_converged,
    })
}

/// Iterate until `E(M_t; C) < tol`; returns (iterations, final error, diverged).
fn converge(
    circuit: &mut dyn Circuit<f64>,
    c: &nalgebra::DMatrix<f64>,
    config: &ReproduceConfig,
    source: &mut GaussianSource<f64>,
) -> (Option<u64>, f64, bool) {
    let n = circuit.dim();
    let mut x = vec![0.0; n];
    let mut r = vec![0.0; n];
    let mut t = 0u64;
    loop {
        let e = circuit.whitening_error(c);
        if e < config.tol {
            return (Some(t), e, false);
        }
        if t >= config.max_iterations || !e.is_finite() {
            return (None, e, !e.is_finite());
        }
        let stepped = match config.mode {
            Mode::MeanField => circuit.mean_field_step(c),
            Mode::Online => {
                source.sample_into(&mut x);
                circuit.step(&x, &mut r)
            }
        };
        if stepped.is_err() {
            return (None, f64::INFINITY, true);
        }
        t += 1;
    }
}

/// Files written by [`write_outputs`].
#[derive(Clone, Debug)]
pub struct Outputs {
    /// One row per run.
    pub csv: PathBuf,
    /// The figure.
    pub svg: PathBuf,
    /// The full report as JSON.
    pub json: PathBuf,
}

/// Write `runs.csv`, `report.json` and `convergence.svg` into `dir` (created if needed). Each
/// file is written atomically ([`write_atomically`]): it appears only when complete.
pub fn write_outputs(report: &Report, dir: &Path) -> Result<Outputs, ReproduceError> {
    std::fs::create_dir_all(dir).map_err(|source| ReproduceError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let csv = dir.join("runs.csv");
    // The gain circuit's bound and asymptote are two more columns, only when it ran (the
    // paper's two-circuit table stays as it was).
    let with_gain = report.gain.is_some();
    let mut text = String::from("circuit,scale,iterations,theory_iterations,final_error,diverged");
    if with_gain {
        text.push_str(",lower_bound_iterations,asymptotic_iterations");
    }
    text.push('\n');
    let opt = |t: Option<f64>| t.map(|t| format!("{t:.3}")).unwrap_or_default();
    for r in &report.runs {
        text.push_str(&format!(
            "{},{},{},{},{},{}",
            r.circuit,
            r.scale,
            r.iterations.map(|t| t.to_string()).unwrap_or_default(),
            opt(r.theory_iterations),
            r.final_error,
            r.diverged
        ));
        if with_gain {
            text.push_str(&format!(
                ",{},{}",
                opt(r.gain.and_then(|g| g.lower_bound_iterations)),
                opt(r.gain.map(|g| g.asymptotic_iterations))
            ));
        }
        text.push('\n');
    }
    write_atomically(&csv, text.as_bytes())?;
    let json = dir.join("report.json");
    let body = serde_json::to_string_pretty(report).expect("a report always serialises");
    write_atomically(&json, body.as_bytes())?;
    let svg = dir.join("convergence.svg");
    let drawing = figure::draw(report).map_err(|message| ReproduceError::Figure {
        path: svg.clone(),
        message,
    })?;
    write_atomically(&svg, drawing.as_bytes())?;
    Ok(Outputs { csv, svg, json })
}
