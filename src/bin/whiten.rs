//! `whiten` — the command-line face of Interneuron Whitening (docs/DESIGN.md §12).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use interneuron_whitening::engine::{params, shaping, EngineParams, Framing, Shaping};
use interneuron_whitening::reproduce::contexts::ContextsConfig;
use interneuron_whitening::reproduce::{self, Mode, ReproduceConfig};
use interneuron_whitening::whitener::WhitenerKind;
use reproduce_cli::{
    print_contexts_table, print_table, reproduce_cmd, run_contexts, run_reproduction, ReproduceArgs,
};
use std::path::PathBuf;

// A directory of its own: a file beside this one would be taken for another binary.
#[path = "whiten/reproduce_cli.rs"]
mod reproduce_cli;

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
    /// Reproduce the paper: iterations to whiten vs the initial scale s, per circuit (the gain
    /// circuit too, with --circuits); `reproduce contexts`: returning contexts (NeurIPS 2023).
    Reproduce(ReproduceArgs),
    /// Whiten an audio file offline into a WAV file (reads WAV, AIFF, FLAC, Ogg Vorbis, MP3;
    /// 1–16 channels).
    Process(ProcessArgs),
    /// Whiten a live input (cpal: ALSA or JACK) and report the readaptation race as text, one
    /// line per second per circuit. The GUI is the standalone binary `interneuron_whitening`.
    #[command(
        long_about = "Whiten a live input through cpal (ALSA, or JACK with --host jack) \
                            and print, once per second of audio and per circuit, the input \
                            level, the whitening error and readaptation times after detected \
                            changes (the circuit heard is marked *). Text only: the GUI is the \
                            plugin's standalone binary `interneuron_whitening` (e.g. \
                            `interneuron_whitening --backend jack`). Under JACK the ports are \
                            cpal_client_<pid>_in:in_0.. and cpal_client_<pid>_out:out_0.., \
                            connected to the system capture and playback ports."
    )]
    Live(LiveArgs),
    /// Measure the engine's cost (single thread, all whiteners racing, stats on): real-time
    /// factor, worst block and 99.9th percentile, for steady, quiet and changing input at host
    /// blocks of 512 and 64 samples.
    Bench {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Seconds of audio per case.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Only the cases of this framing (channels | spectral) and, after a colon, channel
        /// count, e.g. `channels:16`.
        #[arg(long)]
        only: Option<String>,
        /// Only this kind of input (steady | quiet | changing).
        #[arg(long)]
        input: Option<String>,
        /// Only this host block size (512 | 64).
        #[arg(long)]
        block: Option<usize>,
        /// Runs of every case, interleaved (all cases once, then again): the median real-time
        /// factor and 99.9th percentile are reported with the range of the runs, and the worst
        /// block of any run — for machines whose speed drifts from minute to minute.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Run the built-in demonstration and write everything under --out (default `out/`).
    Demo {
        /// Output directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
}

/// The engine's parameters, shared by `process` and `live`. Ranges and defaults come from
/// the engine's range table (`engine::params`), so messages name the option and its range.
#[derive(clap::Args)]
struct EngineArgs {
    /// The circuit heard at the output (all of them learn).
    #[arg(long, value_enum, default_value_t = WhitenerKind::Interneuron)]
    circuit: WhitenerKind,
    /// Framing of the audio into vectors.
    #[arg(long, value_enum, default_value_t = Framing::Channels)]
    mode: Framing,
    /// Learning rate per input vector: per sample (channels framing), per STFT frame
    /// (spectral). With --raw exactly η of docs/DESIGN.md §2; otherwise it sets the adaptation
    /// time 1/(η·rate).
    #[arg(long, conflicts_with = "tau_ms", allow_hyphen_values = true)]
    eta: Option<f64>,
    /// Adaptation time constant in ms, 5..60000 (the lower end depends on framing and sample
    /// rate) [default: 300].
    #[arg(long, allow_hyphen_values = true)]
    tau_ms: Option<f64>,
    /// Interneurons per circuit, 1..64 (k >= channels; for `process` a smaller k is an
    /// error, for `live` it is raised to the channel count) [default: channels].
    #[arg(long)]
    interneurons: Option<usize>,
    /// Initial scale s of every circuit (M₀ = s·I), 0.01..10000.
    #[arg(long, default_value_t = params::INIT_SCALE.default, allow_hyphen_values = true)]
    init_scale: f64,
    /// Reference level in dBFS (input RMS that maps to unit variance), -80..0.
    #[arg(long, default_value_t = params::REFERENCE_DB.default, allow_hyphen_values = true)]
    reference_db: f64,
    /// Output level in dBFS (RMS of each whitened channel), -60..0.
    #[arg(long, default_value_t = params::OUTPUT_DB.default, allow_hyphen_values = true)]
    output_db: f64,
    /// Dry/wet mix, 0 (dry) to 1 (whitened only).
    #[arg(long, default_value_t = params::DRY_WET.default, allow_hyphen_values = true)]
    dry_wet: f64,
    /// Noise floor in dBFS (silence never makes the circuits singular), -140..-40.
    #[arg(long, default_value_t = params::NOISE_FLOOR_DB.default, allow_hyphen_values = true)]
    noise_floor_db: f64,
    /// FFT size N for --mode spectral (power of two, 256..8192).
    #[arg(long, default_value_t = params::FFT_SIZE.default as usize)]
    fft_size: usize,
    /// Number of log-spaced bands for --mode spectral, 1..513 (more than the N/2+1 bins means
    /// one per bin).
    #[arg(long, default_value_t = params::BANDS.default as usize)]
    bands: usize,
    /// Depth of the whitening heard, 0 (dry) to 1 (full): the output covariance is
    /// C^(1-depth). The circuits learn the same whatever it is.
    #[arg(long, default_value_t = shaping::DEPTH.default, allow_hyphen_values = true)]
    depth: f64,
    /// Delta listening: write only what the whitener changes (output minus the
    /// latency-aligned input).
    #[arg(long)]
    delta: bool,
    /// Slope of the target spectrum for --mode spectral in dB/octave, -6..6: 0 white, -3 pink.
    #[arg(long, default_value_t = shaping::TILT.default, allow_hyphen_values = true)]
    tilt: f64,
    /// Lowest frequency processed by --mode spectral in Hz (bins below pass through dry),
    /// 20..20000; 20 means no limit.
    #[arg(long, default_value_t = shaping::LOW_LIMIT.default, allow_hyphen_values = true)]
    low_limit: f64,
    /// Highest frequency processed by --mode spectral in Hz (bins above pass through dry),
    /// 20..20000; 20000 means no limit.
    #[arg(long, default_value_t = shaping::HIGH_LIMIT.default, allow_hyphen_values = true)]
    high_limit: f64,
}

impl EngineArgs {
    /// Check every option that does not depend on the input (its sample rate and channel
    /// count), with messages naming the option the user typed, and build the engine
    /// parameters. `--eta` and the adaptation time's lower end are checked once the sample
    /// rate is known (`EngineParams::set_eta`, `EngineParams::validate`).
    fn params(&self) -> Result<EngineParams> {
        let check = |r: &'static params::ParamRange, v: f64| -> Result<f64> {
            r.check(v).map_err(|e| anyhow::anyhow!(e.for_flag()))
        };
        if let Some(t) = self.tau_ms {
            check(&params::TAU_MS, t)?;
        }
        check(&params::INIT_SCALE, self.init_scale)?;
        check(&params::DRY_WET, self.dry_wet)?;
        check(&params::REFERENCE_DB, self.reference_db)?;
        check(&params::OUTPUT_DB, self.output_db)?;
        check(&params::NOISE_FLOOR_DB, self.noise_floor_db)?;
        check(&shaping::DEPTH, self.depth)?;
        check(&shaping::TILT, self.tilt)?;
        check(&shaping::LOW_LIMIT, self.low_limit)?;
        check(&shaping::HIGH_LIMIT, self.high_limit)?;
        let shaped_bands = self.tilt != shaping::TILT.default
            || self.low_limit != shaping::LOW_LIMIT.default
            || self.high_limit != shaping::HIGH_LIMIT.default;
        if shaped_bands && self.mode != Framing::Spectral {
            anyhow::bail!(
                "--tilt, --low-limit and --high-limit shape the spectrum: they need --mode spectral"
            );
        }
        if let Some(k) = self.interneurons {
            check(&params::INTERNEURONS, k as f64)?;
        }
        if self.mode == Framing::Spectral {
            if !(self.fft_size.is_power_of_two() && params::FFT_SIZE.contains(self.fft_size as f64))
            {
                anyhow::bail!(
                    "--fft-size {} must be a power of two from {} to {} (FFT size)",
                    self.fft_size,
                    params::FFT_SIZE.min,
                    params::FFT_SIZE.max
                );
            }
            check(&params::BANDS, self.bands as f64)?;
        }
        if let Some(eta) = self.eta {
            if !(eta.is_finite() && eta > 0.0 && eta < 1.0) {
                anyhow::bail!("--eta must be in (0, 1), got {eta}");
            }
        }
        Ok(EngineParams {
            framing: self.mode,
            selected: self.circuit,
            tau_ms: self.tau_ms.unwrap_or(params::TAU_MS.default),
            // The engine uses max(k, channels): the range table's default 1 is "as many as
            // channels".
            interneurons: self
                .interneurons
                .unwrap_or(params::INTERNEURONS.default as usize),
            init_scale: self.init_scale,
            reference_db: self.reference_db,
            output_db: self.output_db,
            dry_wet: self.dry_wet,
            noise_floor_db: self.noise_floor_db,
            fft_size: self.fft_size,
            bands: self.bands,
            learning: true,
            shaping: Shaping {
                depth: self.depth,
                delta: self.delta,
                tilt_db_per_octave: self.tilt,
                low_limit_hz: self.low_limit,
                high_limit_hz: self.high_limit,
            },
        })
    }
}

#[derive(clap::Args)]
struct ProcessArgs {
    /// Input audio file: WAV (16/24/32-bit integer or 32-bit float), AIFF, FLAC, Ogg Vorbis or
    /// MP3, recognised by its contents.
    input: PathBuf,
    /// Output WAV file (same rate and length; the input's encoding for WAV, AIFF and FLAC,
    /// 32-bit float for Ogg Vorbis and MP3; written only on success).
    output: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Write one JSON line per circuit every 10 ms of audio to this file.
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Sidechain learning: learn the whitening from this key file (any format INPUT may be,
    /// same channels and sample rate) and apply it to INPUT. Past the key's end nothing is
    /// learned.
    #[arg(long, value_name = "KEY")]
    learn_from: Option<PathBuf>,
    /// Exactly the §2 algorithm per sample: no reference level, floor, limiter or gain; float
    /// output. Needs --eta (default 0.001) and --mode channels.
    #[arg(long)]
    raw: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum HostArg {
    /// cpal's default host (ALSA on Linux).
    Default,
    /// ALSA (needs a sound card).
    Alsa,
    /// A running JACK server (JACK_DEFAULT_SERVER selects a named one).
    Jack,
}

#[derive(clap::Args)]
struct LiveArgs {
    /// Audio host.
    #[arg(long, value_enum, default_value_t = HostArg::Default)]
    host: HostArg,
    /// Input device, by name (see --list-devices) [default: the host's default input].
    #[arg(long)]
    input: Option<String>,
    /// Output device, by name [default: the host's default output].
    #[arg(long)]
    output: Option<String>,
    /// Print every host's input and output devices and exit.
    #[arg(long)]
    list_devices: bool,
    /// Channels to whiten, 1 to 16 [default: the input device's, at most 16].
    #[arg(long)]
    channels: Option<usize>,
    #[command(flatten)]
    engine: EngineArgs,
    /// No GUI. `whiten live` always reports as text; the GUI is the standalone binary
    /// `interneuron_whitening` (e.g. `interneuron_whitening --backend jack`).
    #[arg(long)]
    headless: bool,
    /// Stop after this many seconds [default: run until Ctrl-C].
    #[arg(long, allow_hyphen_values = true)]
    seconds: Option<f64>,
}

fn progress_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{elapsed}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn process_cmd(a: &ProcessArgs) -> Result<()> {
    use interneuron_whitening::offline::{process_file_keyed, ProcessOptions};
    if a.raw && a.engine.mode == Framing::Spectral {
        anyhow::bail!(
            "--raw runs the per-sample algorithm of docs/DESIGN.md §2.1: use --mode channels"
        );
    }
    if a.raw && a.engine.params()?.shaping != Shaping::default() {
        anyhow::bail!(
            "--raw runs the per-sample algorithm of docs/DESIGN.md §2.1 as it is: --depth and \
             --delta shape the engine's output only"
        );
    }
    if a.raw && a.engine.tau_ms.is_some() {
        anyhow::bail!("--raw takes a learning rate per sample: use --eta instead of --tau-ms");
    }
    let params = a.engine.params()?;
    if let Some(k) = a.engine.interneurons {
        // The engine raises k to the channel count; typed on the command line, a smaller k is
        // a mistake worth saying. (An unreadable input is reported by processing.)
        if let Ok(input) = interneuron_whitening::io::AudioInput::open(&a.input) {
            let n = input.spec().channels as usize;
            if k < n {
                anyhow::bail!(
                    "--interneurons {k} is fewer than the {n} channels of {}: the interneuron \
                     circuit needs k >= n",
                    a.input.display()
                );
            }
        }
    }
    let opts = ProcessOptions {
        params,
        raw: a.raw,
        raw_eta: a.engine.eta.unwrap_or(0.001),
        eta_per_vector: if a.raw { None } else { a.engine.eta },
        stats: a.stats.clone(),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {percent}% ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("whitening {}", a.input.display()));
    let key = a.learn_from.as_deref();
    let summary = process_file_keyed(&a.input, key, &a.output, &opts, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    bar.finish_and_clear();
    let c = summary.counters;
    eprintln!(
        "wrote {} ({} frames, {} ch, {} Hz{}){}{}{}",
        a.output.display(),
        summary.frames,
        summary.channels,
        summary.sample_rate,
        if summary.latency > 0 {
            format!(", latency of {} samples compensated", summary.latency)
        } else {
            String::new()
        },
        if c.non_finite_inputs > 0 {
            format!(
                "; {} non-finite input samples treated as 0",
                c.non_finite_inputs
            )
        } else {
            String::new()
        },
        if c.state_resets > 0 {
            format!("; {} state resets", c.state_resets)
        } else {
            String::new()
        },
        if a.stats.is_some() {
            format!("; {} changes detected", c.changes_detected)
        } else {
            String::new()
        },
    );
    if !summary.readaptation.is_empty() {
        eprint!(
            "{}",
            interneuron_whitening::monitor::format_table(&summary.readaptation, None)
        );
    }
    Ok(())
}

fn live_cmd(a: &LiveArgs) -> Result<()> {
    use interneuron_whitening::live::{self, HostChoice, LiveOptions};
    let stdout = std::io::stdout();
    if a.list_devices {
        return live::list_devices(&mut stdout.lock());
    }
    let params = a.engine.params()?;
    if !a.headless && std::env::var_os("DISPLAY").is_some() {
        eprintln!(
            "whiten live: text report only; for the GUI run the standalone \
             `interneuron_whitening` (--headless silences this note)"
        );
    }
    let opts = LiveOptions {
        host: match a.host {
            HostArg::Default => HostChoice::Default,
            HostArg::Alsa => HostChoice::Alsa,
            HostArg::Jack => HostChoice::Jack,
        },
        input: a.input.clone(),
        output: a.output.clone(),
        channels: a.channels,
        params,
        eta_per_vector: a.engine.eta,
        seconds: a.seconds,
    };
    let s = live::run(&opts, &mut stdout.lock())?;
    eprintln!(
        "whiten live: {:.1} s of audio; {} underruns, {} input frames dropped, {} host xruns, \
         {} changes detected, {} state resets, {} non-finite input samples, {} stats records \
         dropped, {} other stream errors",
        s.audio_s,
        s.underruns,
        s.overrun_frames,
        s.xruns,
        s.changes,
        s.state_resets,
        s.non_finite_inputs,
        s.stats_dropped,
        s.stream_errors
    );
    Ok(())
}

fn bench_cmd(
    json: bool,
    seconds: f64,
    only: Option<&str>,
    input: Option<&str>,
    block: Option<usize>,
    repeat: usize,
) -> Result<()> {
    use interneuron_whitening::bench::{
        combine, cost_ratio, measure, standard_cases, InputKind, MAX_COST_RATIO, WORST_BLOCK_BUDGET,
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        anyhow::bail!("--seconds must be in (0, 3600], got {seconds}");
    }
    if !(1..=100).contains(&repeat) {
        anyhow::bail!("--repeat must be in 1..=100, got {repeat}");
    }
    if let Some(i) = input {
        if !InputKind::ALL.iter().any(|k| k.name() == i) {
            anyhow::bail!("--input {i}: expected steady, quiet or changing");
        }
    }
    let cases: Vec<_> = standard_cases()
        .into_iter()
        .filter(|c| {
            let name = format!("{}:{}", c.framing, c.channels);
            only.is_none_or(|o| name == o || name.starts_with(&format!("{o}:")))
                && input.is_none_or(|i| c.input.name() == i)
                && block.is_none_or(|b| c.block_size == b)
        })
        .collect();
    if cases.is_empty() {
        anyhow::bail!(
            "no such case (try --only channels:2, channels:16, spectral:2; --input steady; \
             --block 512)"
        );
    }
    let bar = progress_bar((cases.len() * repeat) as u64, "bench", "runs");
    // Rounds over all cases, so that a slow phase of the machine falls on every case alike.
    let mut runs: Vec<Vec<_>> = vec![Vec::with_capacity(repeat); cases.len()];
    for _ in 0..repeat {
        for (case, runs) in cases.iter().zip(runs.iter_mut()) {
            runs.push(measure(case, seconds));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let results: Vec<_> = runs
        .iter()
        .map(|r| combine(r).expect("at least one run"))
        .collect();
    if json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("serialisable");
                v["cost_vs_steady"] = serde_json::json!(cost_ratio(&results, r));
                v
            })
            .collect();
        println!("{}", serde_json::json!({ "results": rows }));
        return Ok(());
    }
    if repeat > 1 {
        println!("{repeat} runs per case: median real-time factor [range], worst block of any run");
    }
    println!(
        "{:<9} {:>3} {:>5} {:<9} {:>5} {:>11} {:>8} {:>9} {:>8} {:>6} {:>8}  met{}",
        "framing",
        "ch",
        "fft",
        "input",
        "block",
        "realtime ×",
        "target",
        "cost ×",
        "worst",
        "at s",
        "p99.9",
        if repeat > 1 { "  range ×" } else { "" }
    );
    for r in &results {
        let cost = cost_ratio(&results, r);
        let met = match (r.meets_target, cost) {
            _ if r.worst_block_fraction > WORST_BLOCK_BUDGET => "NO",
            (_, Some(c)) if c > MAX_COST_RATIO => "NO",
            (Some(false), None) => "NO",
            (Some(true), None) | (_, Some(_)) => "yes",
            (None, None) => "",
        };
        // The last column: met, and with several runs their range.
        let last = if repeat > 1 {
            let (lo, hi) = r
                .realtime_factor_runs
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            format!("{met:<3}  [{lo:.0}, {hi:.0}]")
        } else {
            met.to_string()
        };
        println!(
            "{:<9} {:>3} {:>5} {:<9} {:>5} {:>11.0} {:>8} {:>9} {:>7.1}% {:>6.2} {:>7.1}%  {last}",
            r.case.framing.name(),
            r.case.channels,
            r.case
                .fft_size
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            r.case.input.name(),
            r.case.block_size,
            r.realtime_factor,
            match (r.case.input, r.case.target) {
                (InputKind::Steady, Some(t)) => format!("{t:.0}"),
                _ => "-".into(),
            },
            cost.map(|c| format!("{c:.2}"))
                .unwrap_or_else(|| "-".into()),
            100.0 * r.worst_block_fraction,
            r.worst_block_s,
            100.0 * r.p999_block_fraction,
        );
    }
    println!(
        "targets: steady real-time factor as listed; quiet and changing at most {MAX_COST_RATIO}× \
         the cost of steady; no block above {:.0}% of its budget",
        100.0 * WORST_BLOCK_BUDGET
    );
    Ok(())
}

fn demo(out: &std::path::Path) -> Result<()> {
    // The paper's experiment on a non-trivial covariance, both as mean-field dynamics and
    // online on samples, with the default tolerances and learning rates of each mode; the
    // gain-modulating circuit races too (docs/DESIGN.md §2.9).
    let spectrum = vec![0.5, 1.0, 2.0, 4.0];
    let scales: Vec<f64> = (0..=12).map(|i| 10f64.powf(i as f64 / 4.0)).collect();
    for mode in [Mode::MeanField, Mode::Online] {
        let mut cfg = ReproduceConfig::new(mode, spectrum.len());
        cfg.circuits.push(WhitenerKind::Gain);
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
    // Returning contexts with slow plasticity on and off (NeurIPS 2023), at its defaults.
    let report = run_contexts(&ContextsConfig::new(Mode::MeanField))?;
    print_contexts_table(&report);
    let dir = out.join("reproduce").join("contexts");
    let files = reproduce::contexts::write_outputs(&report, &dir)
        .with_context(|| format!("writing the demo into {}", dir.display()))?;
    println!("figure: {}\n", files.svg.display());
    let dir = out.join("demo");
    eprintln!(
        "rendering the changing stereo scene through the race into {} ...",
        dir.display()
    );
    let params = interneuron_whitening::engine::EngineParams::default();
    let report = interneuron_whitening::demo::render(&dir, &params)
        .map_err(|e| anyhow::anyhow!("demo scene: {e}"))?;
    print!("{}", interneuron_whitening::demo::format_table(&report));
    println!(
        "changes detected by the engine at: {}",
        report
            .detected
            .iter()
            .map(|t| format!("{t:.2}s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    eprintln!(
        "rendering the paper's experiment in audio (re-initialisations, level steps) into {} ...",
        dir.display()
    );
    let paper = interneuron_whitening::demo::paper::render(&dir)
        .map_err(|e| anyhow::anyhow!("paper scene: {e}"))?;
    print!(
        "{}",
        interneuron_whitening::demo::paper::format_table(&paper)
    );
    for f in &paper.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Live(_)) {
        // Like every Unix filter, end quietly when the reader of our output goes away
        // (`whiten reproduce | head`): Rust ignores SIGPIPE, so the next `println!` would
        // panic on the broken pipe instead. Not for `live`, whose audio backend (JACK) talks
        // to its server over sockets and must see a failed write as an error, not be killed.
        // SAFETY: restoring a signal's default disposition at start-up, before any thread
        // exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match &cli.command {
        Command::Reproduce(args) => reproduce_cmd(args),
        Command::Process(args) => process_cmd(args),
        Command::Live(args) => live_cmd(args),
        Command::Demo { out } => demo(out),
        Command::Bench {
            json,
            seconds,
            only,
            input,
            block,
            repeat,
        } => bench_cmd(
            *json,
            *seconds,
            only.as_deref(),
            input.as_deref(),
            *block,
            *repeat,
        ),
    };
    if let Err(e) = result {
        eprintln!("whiten: error: {e:#}");
        std::process::exit(1);
    }
}
