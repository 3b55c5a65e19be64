//! `whiten reproduce` (docs/DESIGN.md §12.1): the convergence-time sweep of the paper, and
//! `whiten reproduce contexts`, the returning-contexts experiment of Duong et al. (NeurIPS 2023).

use super::progress_bar;
use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use interneuron_whitening::circuits::InterneuronBasis;
use interneuron_whitening::reproduce::contexts::{self, ContextsConfig, ContextsReport};
use interneuron_whitening::reproduce::{self, Mode, Report, ReproduceConfig};
use interneuron_whitening::whitener::WhitenerKind;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum Basis {
    /// First n rows of the orthonormal DCT-II matrix (deterministic).
    Dct,
    /// First n rows of a seeded Haar-random orthogonal matrix.
    Random,
}

/// A circuit named on the command line: one of the recurrent circuits, never the baseline.
fn parse_circuit(name: &str) -> Result<WhitenerKind, String> {
    match name.parse::<WhitenerKind>() {
        Ok(kind) if kind.is_circuit() => Ok(kind),
        Ok(kind) => Err(format!(
            "{kind} is not a circuit (the ZCA baseline has no M₀ = s·I to start from); \
             choose from direct, interneuron, gain"
        )),
        Err(_) => Err(format!(
            "unknown circuit {:?}; choose from direct, interneuron, gain",
            name.trim()
        )),
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ReproduceArgs {
    /// The second experiment instead of the sweep.
    #[command(subcommand)]
    experiment: Option<Experiment>,
    /// Iterate the deterministic mean-field dynamics instead of online updates on samples.
    #[arg(long)]
    mean_field: bool,
    /// The circuits swept, comma-separated, from direct, interneuron, gain (the gain-modulating
    /// circuit of Duong et al.: pairs frame, k = n(n+1)/2, leak α = 1, η_g = η, no plasticity).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_circuit,
        default_value = "direct,interneuron"
    )]
    circuits: Vec<WhitenerKind>,
    /// Dimension n (number of primary neurons). Default: the length of --spectrum, else 1.
    #[arg(long)]
    dim: Option<usize>,
    /// Eigenvalues of the input covariance C, comma-separated (default: all ones). A seeded
    /// random rotation is applied.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    spectrum: Option<Vec<f64>>,
    /// Number of interneurons k of the interneuron circuit (k >= n). Default: n. The gain
    /// circuit's k is its frame's: n(n+1)/2.
    #[arg(long)]
    interneurons: Option<usize>,
    /// Learning rate η in (0, 1); the gain circuit's gains learn at η_g = η (as in the race).
    /// Default: 0.01 mean-field, 0.001 online.
    #[arg(long, allow_hyphen_values = true)]
    eta: Option<f64>,
    /// Whitening-error tolerance defining convergence. Default: 0.01 mean-field, 0.1 online
    /// (online the error fluctuates around a floor of order √η).
    #[arg(long, allow_hyphen_values = true)]
    tol: Option<f64>,
    /// Initial scales s (every circuit starts at M₀ = s·I), comma-separated. Default:
    /// 1,2,5,10,20,50,100,200,500,1000.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, num_args = 0..=1)]
    scales: Option<Vec<f64>>,
    /// Seed of the covariance rotation, the samples and a random basis.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iteration cap per run; runs that reach it are reported as null.
    #[arg(long, default_value_t = 10_000_000)]
    max_iters: u64,
    /// Orthonormal rows Q of the interneuron initialisation W₀ = √s Q.
    #[arg(long, value_enum, default_value_t = Basis::Dct)]
    basis: Basis,
    /// Write runs.csv, report.json and convergence.svg into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object to stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Experiment {
    /// Returning contexts (Duong et al., NeurIPS 2023): contexts A, B, A, B, … visited in turn by
    /// a gain-modulating circuit with n = k = 2, slow synaptic plasticity on vs off; readaptation
    /// time and end-of-visit error per visit.
    #[command(
        long_about = "Returning contexts (Duong, Simoncelli, Chklovskii & Lipshutz, NeurIPS \
                      2023; docs/DESIGN.md §2.9): two covariances with C^½ = I + V diag(λ) Vᵀ \
                      share the structure V (unit columns 60° apart; λ_A = (4, ½), λ_B = (½, 4)), \
                      visited A, B, A, B, … by a gain-modulating circuit with only k = n = 2 \
                      interneurons on a random frame W₀ (leak α = 1): too few for gains alone. \
                      With slow synaptic plasticity W learns V and a returning context readapts \
                      with gains alone, fast; without it no visit whitens. Per visit: the \
                      updates until E < tol (null if not within the visit) and the error at its \
                      end, plasticity on and off, one pair of runs per seed of W₀."
    )]
    Contexts(ContextsArgs),
}

#[derive(clap::Args)]
struct ContextsArgs {
    /// Learn online on seeded Gaussian samples instead of iterating the mean-field dynamics.
    #[arg(long)]
    online: bool,
    /// Visits in all, alternating A, B, A, …
    #[arg(long, default_value_t = 40)]
    visits: usize,
    /// Updates per visit. Default: 2000 mean-field, 20000 online.
    #[arg(long)]
    visit_steps: Option<u64>,
    /// Gain learning rate η_g (fast) in (0, 1). Default: 0.05 mean-field, 0.005 online.
    #[arg(long, allow_hyphen_values = true)]
    eta_g: Option<f64>,
    /// Synaptic learning rate η_w (slow) in (0, 1); η_w × visit steps should be small (0.2 by
    /// default), or W re-fits each context. Default: 1e-4 mean-field, 1e-5 online.
    #[arg(long, allow_hyphen_values = true)]
    eta_w: Option<f64>,
    /// Whitening-error tolerance that ends readaptation. Default: 0.05 mean-field, 0.2 online.
    #[arg(long, allow_hyphen_values = true)]
    tol: Option<f64>,
    /// Seeds of the random frames W₀ (online also of the samples), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3", num_args = 0..=1)]
    seeds: Vec<u64>,
    /// Write contexts.csv, contexts.json and contexts.svg into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object to stdout instead of a table.
    #[arg(long)]
    json: bool,
}

impl ReproduceArgs {
    fn config(&self) -> Result<ReproduceConfig> {
        let mode = if self.mean_field {
            Mode::MeanField
        } else {
            Mode::Online
        };
        let dim = match (&self.spectrum, self.dim) {
            (Some(s), Some(d)) if s.len() != d => anyhow::bail!(
                "--spectrum has {} eigenvalues but --dim is {}; give one eigenvalue per dimension",
                s.len(),
                d
            ),
            (Some(s), _) => s.len(),
            (None, Some(d)) => d,
            (None, None) => 1,
        };
        if dim == 0 {
            anyhow::bail!("--dim must be at least 1");
        }
        let mut cfg = ReproduceConfig::new(mode, dim);
        cfg.circuits = self.circuits.clone();
        if let Some(s) = &self.spectrum {
            cfg.spectrum = s.clone();
        }
        cfg.interneurons = self.interneurons.unwrap_or(dim);
        cfg.eta = self.eta.unwrap_or(cfg.eta);
        cfg.tol = self.tol.unwrap_or(cfg.tol);
        if let Some(s) = &self.scales {
            cfg.scales = s.clone();
        }
        cfg.seed = self.seed;
        cfg.max_iterations = self.max_iters;
        cfg.basis = match self.basis {
            Basis::Dct => InterneuronBasis::Dct,
            Basis::Random => InterneuronBasis::Random {
                seed: self.seed.wrapping_add(1),
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl ContextsArgs {
    fn config(&self) -> Result<ContextsConfig> {
        let mut cfg = ContextsConfig::new(if self.online {
            Mode::Online
        } else {
            Mode::MeanField
        });
        cfg.visits = self.visits;
        cfg.visit_steps = self.visit_steps.unwrap_or(cfg.visit_steps);
        cfg.eta_g = self.eta_g.unwrap_or(cfg.eta_g);
        cfg.eta_w = self.eta_w.unwrap_or(cfg.eta_w);
        cfg.tol = self.tol.unwrap_or(cfg.tol);
        cfg.seeds = self.seeds.clone();
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The sweep with a progress bar.
pub(crate) fn run_reproduction(cfg: &ReproduceConfig) -> Result<Report> {
    let total = cfg.circuits.len() * cfg.scales.len();
    let bar = progress_bar(total as u64, cfg.mode.name(), "runs");
    let report = reproduce::run(cfg, |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(report)
}

/// The returning-contexts experiment with a progress bar.
pub(crate) fn run_contexts(cfg: &ContextsConfig) -> Result<ContextsReport> {
    let total = 2 * cfg.seeds.len() * cfg.visits;
    let bar = progress_bar(total as u64, "contexts", "visits");
    let report = contexts::run(cfg, |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(report)
}

pub(crate) fn print_table(report: &Report) {
    let c = &report.config;
    let gain_k = report
        .gain
        .as_ref()
        .map(|g| format!(", gain k = {}", g.interneurons))
        .unwrap_or_default();
    println!(
        "{} reproduction: n = {}, k = {}{gain_k}, η = {}, tol = {}, spectrum = {:?}, seed = {}",
        c.mode.name(),
        report.dim,
        c.interneurons,
        c.eta,
        c.tol,
        c.spectrum,
        c.seed
    );
    // Per circuit: its count, then the theory — or for the gain circuit, which has none, its
    // lower bound and large-s asymptote (docs/DESIGN.md §2.9).
    let mut header = format!("{:>10}", "scale s");
    for &kind in &c.circuits {
        header.push_str(&format!("  {:>14}", kind.name()));
        if kind == WhitenerKind::Gain {
            header.push_str(&format!("  {:>14}  {:>14}", "(bound)", "(asymptote)"));
        } else {
            header.push_str(&format!("  {:>14}", "(theory)"));
        }
    }
    println!("{header}");
    let fmt = |t: Option<u64>| {
        t.map(|t| t.to_string())
            .unwrap_or_else(|| "no conv.".into())
    };
    let fmt_th = |t: Option<f64>| t.map(|t| format!("{t:.0}")).unwrap_or_else(|| "-".into());
    for row in report.runs.chunks(c.circuits.len()) {
        let mut line = format!(
            "{:>10}",
            format!("{:.4}", row[0].scale)
                .trim_end_matches('0')
                .trim_end_matches('.')
        );
        for r in row {
            line.push_str(&format!("  {:>14}", fmt(r.iterations)));
            match r.gain {
                Some(g) => line.push_str(&format!(
                    "  {:>14}  {:>14}",
                    fmt_th(g.lower_bound_iterations),
                    fmt_th(Some(g.asymptotic_iterations))
                )),
                None => line.push_str(&format!("  {:>14}", fmt_th(r.theory_iterations))),
            }
        }
        println!("{line}");
    }
    if report.not_converged > 0 {
        println!(
            "{} run(s) did not converge within {} iterations",
            report.not_converged, c.max_iterations
        );
    }
    println!("fits over s >= {:.3}:", report.fit_min_scale);
    for &kind in &c.circuits {
        let fit = report
            .fits
            .of(kind)
            .map(|f| f.describe())
            .unwrap_or_else(|| "not enough converged scales".into());
        println!("  {:<13}{fit}", format!("{}:", kind.name()));
    }
}

/// Per seed and plasticity: visits readapted, the first two visits, the last ten, their end
/// errors and the learned synapses' alignment with V.
pub(crate) fn print_contexts_table(report: &ContextsReport) {
    let c = &report.config;
    println!(
        "returning contexts ({}): n = k = {}, α = {}, {} visits of {} updates, η_g = {}, η_w = {}, tol = {}",
        c.mode.name(),
        report.dim,
        report.alpha,
        c.visits,
        c.visit_steps,
        c.eta_g,
        c.eta_w,
        c.tol
    );
    println!(
        "{:>6}  {:<10}  {:>9}  {:>14}  {:>15}  {:>19}  {:>17}",
        "seed",
        "plasticity",
        "readapted",
        "first visits",
        "last 10 visits",
        "end E (last 10)",
        "|cos| W to V"
    );
    let time = |t: Option<u64>| t.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
    let range = |v: &[f64], digits: usize| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        if v.is_empty() {
            "-".to_string()
        } else {
            format!("{lo:.digits$}–{hi:.digits$}")
        }
    };
    for run in &report.runs {
        let visits = &run.visits;
        let late = &visits[visits.len().saturating_sub(10)..];
        let late_times: Vec<f64> = late
            .iter()
            .filter_map(|v| v.readaptation_steps.map(|t| t as f64))
            .collect();
        let late_text = if late_times.len() == late.len() {
            range(&late_times, 0)
        } else {
            format!(
                "{} of {} censored",
                late.len() - late_times.len(),
                late.len()
            )
        };
        let first: Vec<String> = visits
            .iter()
            .take(2)
            .map(|v| time(v.readaptation_steps))
            .collect();
        let ends: Vec<f64> = late.iter().map(|v| v.end_error).collect();
        let cos: Vec<String> = run
            .alignment
            .iter()
            .map(|a| format!("{:.6}", a.abs_cos))
            .collect();
        println!(
            "{:>6}  {:<10}  {:>9}  {:>14}  {:>15}  {:>19}  {:>17}{}",
            run.seed,
            if run.plastic { "on" } else { "off" },
            format!(
                "{}/{}",
                visits
                    .iter()
                    .filter(|v| v.readaptation_steps.is_some())
                    .count(),
                visits.len()
            ),
            first.join(", "),
            late_text,
            range(&ends, 3),
            cos.join(", "),
            if run.diverged { "  (diverged)" } else { "" }
        );
    }
    println!("readaptation: updates into a visit until E < tol; '-' = not within the visit");
}

pub(crate) fn reproduce_cmd(args: &ReproduceArgs) -> Result<()> {
    if let Some(Experiment::Contexts(a)) = &args.experiment {
        return contexts_cmd(a);
    }
    let cfg = args.config()?;
    let report = run_reproduction(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    if let Some(dir) = &args.out {
        let out = reproduce::write_outputs(&report, dir)?;
        eprintln!(
            "wrote {}, {} and the figure {}",
            out.csv.display(),
            out.json.display(),
            out.svg.display()
        );
    }
    Ok(())
}

fn contexts_cmd(args: &ContextsArgs) -> Result<()> {
    let cfg = args.config()?;
    let report = run_contexts(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_contexts_table(&report);
    }
    if let Some(dir) = &args.out {
        let out = contexts::write_outputs(&report, dir)?;
        eprintln!(
            "wrote {}, {} and the figure {}",
            out.csv.display(),
            out.json.display(),
            out.svg.display()
        );
    }
    Ok(())
}
