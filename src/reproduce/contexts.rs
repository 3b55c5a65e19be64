//! The returning-contexts experiment (docs/DESIGN.md §2.9, §12.1): the headline of Duong,
//! Simoncelli, Chklovskii & Lipshutz, *Adaptive whitening with fast gain modulation and slow
//! synaptic plasticity* (NeurIPS 2023).
//!
//! Two contexts share their structure: `C_c^{1/2} = I + V diag(λ_c) Vᵀ` with one `V` of unit,
//! non-orthogonal columns (`separation_degrees` apart) and `λ_A = (4, ½)`, `λ_B = (½, 4)`. A
//! gain-modulating circuit with only `k = n = 2` interneurons on a random frame cannot whiten them
//! by its gains (ℝ² needs 3); with the leak `α = 1` it whitens both exactly once `W ∝ V`, with
//! gains `λ_c`. The contexts are visited in turn, A, B, A, B, …, for `visit_steps` updates each,
//! with slow synaptic plasticity on and off, from the same frame `W₀` (one run per seed). The
//! readaptation time of a visit is the smallest `t ≤ visit_steps` with `E(M_t; C_c) < tol`, `t`
//! counting the updates of that visit (`None`: not within the visit — censored, never dropped).
//! With plasticity the synapses learn what the contexts share, and a returning context
//! readapts with gains alone, fast; without, no visit ever whitens.
//!
//! This module is the experiment's one definition: `whiten reproduce contexts` and
//! `tests/gain_circuit.rs` both run it.

use super::contexts_figure;
use super::{Mode, ReproduceError};
use crate::circuits::{CircuitError, GainConfig, GainFrame, GainModulatingCircuit};
use crate::io::write_atomically;
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Dimension `n` and interneurons `k` of the experiment (NeurIPS's `k = n`).
pub const DIM: usize = 2;

/// The direction of `V`'s first column (radians from the first axis): any angle would do; this
/// one keeps `V` off the axes, so no frame is aligned with it by construction.
pub const V_FIRST_ANGLE: f64 = 0.3;

/// Everything that defines the experiment.
#[derive(Clone, Debug, Serialize)]
pub struct ContextsConfig {
    /// Mean-field (default) or online on seeded samples.
    pub mode: Mode,
    /// Visits in all, alternating A, B, A, …
    pub visits: usize,
    /// Updates per visit (mean-field steps, or samples online).
    pub visit_steps: u64,
    /// Gain learning rate `η_g` (fast).
    pub eta_g: f64,
    /// Synaptic learning rate `η_w` (slow): `η_w · visit_steps` must be small, or `W` re-fits
    /// each context instead of learning what they share (§2.9).
    pub eta_w: f64,
    /// Whitening-error tolerance that ends readaptation.
    pub tol: f64,
    /// Seeds of the random frames `W₀`, one pair of runs (plasticity on, off) each; online they
    /// also seed the samples (on a separate stream of the generator).
    pub seeds: Vec<u64>,
    /// Angle between the columns of `V`, degrees (60: non-orthogonal, so no rotation of the
    /// axes holds both contexts' structure).
    pub separation_degrees: f64,
    /// `λ_A`, the weights of `V`'s columns in context A.
    pub lambda_a: [f64; 2],
    /// `λ_B`.
    pub lambda_b: [f64; 2],
}

impl ContextsConfig {
    /// The defaults: mean-field, the setting of `tests/gain_circuit.rs` (40 visits of 2000
    /// steps, `η_g = 0.05`, `η_w = 10⁻⁴`, tol 0.05, seeds 1, 2, 3); online, ten times smaller
    /// rates and ten times longer visits (the same `η_w · visit_steps = 0.2` and the same
    /// adaptation time per visit), a tolerance above the online error floor.
    pub fn new(mode: Mode) -> Self {
        let (visit_steps, eta_g, eta_w, tol) = match mode {
            Mode::MeanField => (2000, 0.05, 1e-4, 0.05),
            Mode::Online => (20_000, 0.005, 1e-5, 0.2),
        };
        Self {
            mode,
            visits: 40,
            visit_steps,
            eta_g,
            eta_w,
            tol,
            seeds: vec![1, 2, 3],
            separation_degrees: 60.0,
            lambda_a: [4.0, 0.5],
            lambda_b: [0.5, 4.0],
        }
    }

    /// Reject every unusable parameter with a message naming the option.
    pub fn validate(&self) -> Result<(), ReproduceError> {
        let bad = |m: String| Err(ReproduceError::InvalidArgument(m));
        if self.visits == 0 {
            return bad("--visits must be at least 1".into());
        }
        if self.visit_steps == 0 {
            return bad("--visit-steps must be at least 1".into());
        }
        for (flag, eta) in [("--eta-g", self.eta_g), ("--eta-w", self.eta_w)] {
            if !(eta.is_finite() && eta > 0.0 && eta < 1.0) {
                return bad(format!("{flag} must be in (0, 1), got {eta}"));
            }
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return bad(format!("--tol must be finite and > 0, got {}", self.tol));
        }
        if self.seeds.is_empty() {
            return bad("--seeds is empty: give at least one seed of W₀".into());
        }
        if !(self.separation_degrees > 0.0 && self.separation_degrees < 180.0) {
            return bad(format!(
                "the columns of V must be between 0° and 180° apart, got {}",
                self.separation_degrees
            ));
        }
        if let Some(l) = self
            .lambda_a
            .iter()
            .chain(&self.lambda_b)
            .find(|l| !(l.is_finite() && **l >= 0.0))
        {
            return bad(format!("every λ must be finite and ≥ 0, got {l}"));
        }
        Ok(())
    }

    /// The shared structure `V` (2×2, unit columns).
    pub fn v(&self) -> DMatrix<f64> {
        let (a0, a1) = (
            V_FIRST_ANGLE,
            V_FIRST_ANGLE + self.separation_degrees.to_radians(),
        );
        DMatrix::from_column_slice(DIM, DIM, &[a0.cos(), a0.sin(), a1.cos(), a1.sin()])
    }

    /// `C_c^{1/2} = I + V diag(λ_c) Vᵀ` of context `c` (0 = A, 1 = B): the symmetric square
    /// root of the context's covariance, and online its colouring transform.
    pub fn sqrt_covariance(&self, context: usize) -> DMatrix<f64> {
        let v = self.v();
        let lambda = if context == 0 {
            self.lambda_a
        } else {
            self.lambda_b
        };
        DMatrix::identity(DIM, DIM)
            + &v * DMatrix::from_diagonal(&DVector::from_row_slice(&lambda)) * v.transpose()
    }

    /// The covariances `[C_A, C_B]`.
    pub fn covariances(&self) -> [DMatrix<f64>; 2] {
        [0, 1].map(|c| {
            let s = self.sqrt_covariance(c);
            &s * &s
        })
    }

    /// The circuit of one run: `k = 2` interneurons on the random frame of `seed`, the papers'
    /// leak `α = 1`, plasticity on or off, `M₀ = αI` (zero gains: nothing learned yet).
    pub fn circuit(
        &self,
        seed: u64,
        plastic: bool,
    ) -> Result<GainModulatingCircuit<f64>, CircuitError> {
        let config = GainConfig {
            eta_g: self.eta_g,
            eta_w: self.eta_w,
            plastic,
            ..GainConfig::default()
        };
        GainModulatingCircuit::new(DIM, GainFrame::Random { k: DIM, seed }, config)
    }
}

/// One visit of a context.
#[derive(Clone, Debug, Serialize)]
pub struct Visit {
    /// `"A"` or `"B"`.
    pub context: &'static str,
    /// Updates into the visit until `E < tol`; `None` if not within the visit.
    pub readaptation_steps: Option<u64>,
    /// `E(M; C_c)` after the visit's last update.
    pub end_error: f64,
}

/// How one learned synapse lies against the shared structure.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Alignment {
    /// The column of `W`.
    pub column: usize,
    /// The column of `V` it is closest to.
    pub v_column: usize,
    /// `|cos|` of the angle between them (1: along it).
    pub abs_cos: f64,
}

/// One circuit through every visit.
#[derive(Clone, Debug, Serialize)]
pub struct ContextRun {
    /// Seed of its frame `W₀`.
    pub seed: u64,
    /// Whether its synapses learned.
    pub plastic: bool,
    /// Every visit made, in order (fewer than asked only if it diverged).
    pub visits: Vec<Visit>,
    /// Its synapses at the end against `V`, per column.
    pub alignment: Vec<Alignment>,
    /// `W` at the end, as columns.
    pub final_w: Vec<Vec<f64>>,
    /// The gains at the end.
    pub final_gains: Vec<f64>,
    /// Whether the state left the positive-definite cone (the run stops there).
    pub diverged: bool,
}

/// The result: the `--json` object of `whiten reproduce contexts`.
#[derive(Clone, Debug, Serialize)]
pub struct ContextsReport {
    /// Every parameter used.
    #[serde(flatten)]
    pub config: ContextsConfig,
    /// Dimension `n`.
    pub dim: usize,
    /// Interneurons `k`.
    pub interneurons: usize,
    /// The leak `α`.
    pub alpha: f64,
    /// The shared structure `V`, as columns.
    pub v: Vec<Vec<f64>>,
    /// One run per seed and plasticity (seed order; plasticity on, then off).
    pub runs: Vec<ContextRun>,
}

impl ContextsReport {
    /// The run of `seed` with plasticity on or off.
    pub fn run_of(&self, seed: u64, plastic: bool) -> Option<&ContextRun> {
        self.runs
            .iter()
            .find(|r| r.seed == seed && r.plastic == plastic)
    }
}

fn columns(m: &DMatrix<f64>) -> Vec<Vec<f64>> {
    m.column_iter()
        .map(|c| c.iter().copied().collect())
        .collect()
}

/// Each column of `w` against its closest column of `v` (by `|cos|`).
pub fn alignment(w: &DMatrix<f64>, v: &DMatrix<f64>) -> Vec<Alignment> {
    w.column_iter()
        .enumerate()
        .map(|(column, col)| {
            let unit = col / col.norm();
            let (v_column, abs_cos) = v
                .column_iter()
                .map(|vc| unit.dot(&vc).abs())
                .enumerate()
                .fold((0, -1.0), |best, c| if c.1 > best.1 { c } else { best });
            Alignment {
                column,
                v_column,
                abs_cos,
            }
        })
        .collect()
}

/// Run the experiment. `progress(done, total)` is called after each visit.
pub fn run(
    config: &ContextsConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<ContextsReport, ReproduceError> {
    config.validate()?;
    let covariances = config.covariances();
    let colouring = [0, 1].map(|c| config.sqrt_covariance(c));
    let v = config.v();
    let total = 2 * config.seeds.len() * config.visits;
    let mut done = 0;
    let mut runs = Vec::with_capacity(2 * config.seeds.len());
    let mut alpha = 1.0;
    for &seed in &config.seeds {
        for plastic in [true, false] {
            let mut circuit = config.circuit(seed, plastic)?;
            alpha = circuit.alpha();
            // Online, plastic and non-plastic runs of a seed see the same samples; stream 1
            // keeps them independent of the frame, drawn from stream 0 of the same seed.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(1);
            let mut visits = Vec::with_capacity(config.visits);
            let mut diverged = false;
            for visit in 0..config.visits {
                let c = visit % 2;
                match visit_context(
                    &mut circuit,
                    config,
                    &covariances[c],
                    &colouring[c],
                    &mut rng,
                ) {
                    Some((readaptation_steps, end_error)) => visits.push(Visit {
                        context: ["A", "B"][c],
                        readaptation_steps,
                        end_error,
                    }),
                    None => {
                        diverged = true;
                        break;
                    }
                }
                done += 1;
                progress(done, total);
            }
            if diverged {
                // The visits it did not make count as done.
                done = (runs.len() + 1) * config.visits;
                progress(done, total);
            }
            runs.push(ContextRun {
                seed,
                plastic,
                visits,
                alignment: alignment(circuit.w(), &v),
                final_w: columns(circuit.w()),
                final_gains: circuit.gains().to_vec(),
                diverged,
            });
        }
    }
    Ok(ContextsReport {
        config: config.clone(),
        dim: DIM,
        interneurons: DIM,
        alpha,
        v: columns(&v),
        runs,
    })
}

/// One visit: `visit_steps` updates on context `c` (covariance `cov`, colouring `sqrt_cov`).
/// Returns (readaptation steps, end error), or `None` if the state left the positive-definite
/// cone.
fn visit_context(
    circuit: &mut GainModulatingCircuit<f64>,
    config: &ContextsConfig,
    cov: &DMatrix<f64>,
    sqrt_cov: &DMatrix<f64>,
    rng: &mut ChaCha8Rng,
) -> Option<(Option<u64>, f64)> {
    let mut hit = None;
    let (mut x, mut r) = ([0.0; DIM], [0.0; DIM]);
    for t in 0..=config.visit_steps {
        if hit.is_none() && circuit.whitening_error(cov) < config.tol {
            hit = Some(t);
        }
        if t == config.visit_steps {
            break;
        }
        let stepped = match config.mode {
            Mode::MeanField => circuit.mean_field_step(cov),
            Mode::Online => {
                let g: [f64; DIM] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
                for (i, xi) in x.iter_mut().enumerate() {
                    *xi = (0..DIM).map(|j| sqrt_cov[(i, j)] * g[j]).sum();
                }
                circuit.step(&x, &mut r)
            }
        };
        stepped.ok()?;
    }
    let end = circuit.whitening_error(cov);
    end.is_finite().then_some((hit, end))
}

/// Files written by [`write_outputs`].
#[derive(Clone, Debug)]
pub struct ContextsOutputs {
    /// One row per run and visit.
    pub csv: PathBuf,
    /// The figure.
    pub svg: PathBuf,
    /// The full report as JSON.
    pub json: PathBuf,
}

/// Write `contexts.csv`, `contexts.json` and `contexts.svg` into `dir` (created if needed),
/// each atomically.
pub fn write_outputs(
    report: &ContextsReport,
    dir: &Path,
) -> Result<ContextsOutputs, ReproduceError> {
    std::fs::create_dir_all(dir).map_err(|source| ReproduceError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let csv = dir.join("contexts.csv");
    let mut text = String::from("seed,plastic,visit,context,readaptation_steps,end_error\n");
    for run in &report.runs {
        for (i, v) in run.visits.iter().enumerate() {
            text.push_str(&format!(
                "{},{},{},{},{},{}\n",
                run.seed,
                run.plastic,
                i + 1,
                v.context,
                v.readaptation_steps
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                v.end_error
            ));
        }
    }
    write_atomically(&csv, text.as_bytes())?;
    let json = dir.join("contexts.json");
    let body = serde_json::to_string_pretty(report).expect("a report always serialises");
    write_atomically(&json, body.as_bytes())?;
    let svg = dir.join("contexts.svg");
    let drawing = contexts_figure::draw(report).map_err(|message| ReproduceError::Figure {
        path: svg.clone(),
        message,
    })?;
    write_atomically(&svg, drawing.as_bytes())?;
    Ok(ContextsOutputs { csv, svg, json })
}
