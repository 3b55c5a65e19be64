//! `whiten` — the command-line face of Interneuron Whitening (DESIGN.md §7).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use interneuron_whitening::circuits::{CircuitKind, InterneuronBasis};
use interneuron_whitening::reproduce::{self, Mode, Report, ReproduceConfig};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "whiten",
    version,
    about = "Statistical whitening with recurrent circuits, with and without interneurons",
    long_about = "Statistical whitening with the direct and the interneuron circuit of Lipshutz, \
                  Pehlevan & Chklovskii (ICLR 2023): reproduce the paper's convergence-time \
                  scaling and render demos."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce the paper: iterations to whiten vs the initial scale s, both circuits.
    Reproduce(ReproduceArgs),
    /// Run the built-in demonstration and write everything under --out (default `out/`).
    Demo {
        /// Output directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Basis {
    /// First n rows of the orthonormal DCT-II matrix (deterministic).
    Dct,
    /// First n rows of a seeded Haar-random orthogonal matrix.
    Random,
}

#[derive(clap::Args)]
struct ReproduceArgs {
    /// Iterate the deterministic mean-field dynamics instead of online updates on samples.
    #[arg(long)]
    mean_field: bool,
    /// Dimension n (number of primary neurons). Default: the length of --spectrum, else 1.
    #[arg(long)]
    dim: Option<usize>,
    /// Eigenvalues of the input covariance C, comma-separated (default: all ones). A seeded
    /// random rotation is applied.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    spectrum: Option<Vec<f64>>,
    /// Number of interneurons k (k >= n). Default: n.
    #[arg(long)]
    interneurons: Option<usize>,
    /// Learning rate η in (0, 1). Default: 0.01 mean-field, 0.001 online.
    #[arg(long, allow_hyphen_values = true)]
    eta: Option<f64>,
    /// Whitening-error tolerance defining convergence. Default: 0.01 mean-field, 0.1 online
    /// (online the error fluctuates around a floor of order √η).
    #[arg(long, allow_hyphen_values = true)]
    tol: Option<f64>,
    /// Initial scales s, comma-separated. Default: 1,2,5,10,20,50,100,200,500,1000.
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

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn run_reproduction(cfg: &ReproduceConfig) -> Result<Report> {
    let bar = progress_bar(2 * cfg.scales.len() as u64, cfg.mode.name());
    let report = reproduce::run(cfg, |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_table(report: &Report) {
    let c = &report.config;
    println!(
        "{} reproduction: n = {}, k = {}, η = {}, tol = {}, spectrum = {:?}, seed = {}",
        c.mode.name(),
        report.dim,
        c.interneurons,
        c.eta,
        c.tol,
        c.spectrum,
        c.seed
    );
    println!(
        "{:>10}  {:>14}  {:>14}  {:>14}  {:>14}",
        "scale s", "direct", "(theory)", "interneuron", "(theory)"
    );
    let fmt = |t: Option<u64>| {
        t.map(|t| t.to_string())
            .unwrap_or_else(|| "no conv.".into())
    };
    let fmt_th = |t: Option<f64>| t.map(|t| format!("{t:.0}")).unwrap_or_else(|| "-".into());
    for (d, i) in report
        .runs_of(CircuitKind::Direct)
        .zip(report.runs_of(CircuitKind::Interneuron))
    {
        println!(
            "{:>10}  {:>14}  {:>14}  {:>14}  {:>14}",
            format!("{:.4}", d.scale)
                .trim_end_matches('0')
                .trim_end_matches('.'),
            fmt(d.iterations),
            fmt_th(d.theory_iterations),
            fmt(i.iterations),
            fmt_th(i.theory_iterations)
        );
    }
    if report.not_converged > 0 {
        println!(
            "{} run(s) did not converge within {} iterations",
            report.not_converged, c.max_iterations
        );
    }
    let fit = |f: &Option<reproduce::Fit>| {
        f.as_ref()
            .map(|f| f.describe())
            .unwrap_or_else(|| "not enough converged scales".into())
    };
    println!("fits over s >= {:.3}:", report.fit_min_scale);
    println!("  direct:      {}", fit(&report.fits.direct));
    println!("  interneuron: {}", fit(&report.fits.interneuron));
}

fn reproduce_cmd(args: &ReproduceArgs) -> Result<()> {
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

fn demo(out: &std::path::Path) -> Result<()> {
    // The paper's experiment on a non-trivial covariance, both as mean-field dynamics and
    // online on samples, with the default tolerances and learning rates of each mode.
    let spectrum = vec![0.5, 1.0, 2.0, 4.0];
    let scales: Vec<f64> = (0..=12).map(|i| 10f64.powf(i as f64 / 4.0)).collect();
    for mode in [Mode::MeanField, Mode::Online] {
        let mut cfg = ReproduceConfig::new(mode, spectrum.len());
        cfg.spectrum = spectrum.clone();
        cfg.scales = scales.clone();
        cfg.seed = 1;
        let report = run_reproduction(&cfg)?;
        print_table(&report);
        let dir = out.join("reproduce").join(mode.name());
        let files = reproduce::write_outputs(&report, &dir)
            .with_context(|| format!("writing the demo into {}", dir.display()))?;
        println!("figure: {}\n", files.svg.display());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Reproduce(args) => reproduce_cmd(args),
        Command::Demo { out } => demo(out),
    };
    if let Err(e) = result {
        eprintln!("whiten: error: {e:#}");
        std::process::exit(1);
    }
}
