//! The paper's effect in audio (docs/DESIGN.md §1, §2.6): a stationary stereo mixture through
//! the race, with the whiteners re-initialised at `s = 100` and at `s = 0.01`, then a level rise
//! well above the reference, a return to it and a drop below it. The table puts each
//! whitener's measured readaptation time (the monitor's, from its own output) beside the
//! continuous-time theory (docs/DESIGN.md §2.5, with the noise floor), and the figure marks the
//! events.
//!
//! What it shows: from `s ≫ 1` the direct circuit needs a time that grows with the distance
//! `s − σ` (its eigenvalues shrink at a constant rate), the interneuron circuit one that grows
//! with `log s` (it moves by ratios); after a level rise the interneuron circuit wins again
//! (ratios), after a drop from the reference the direct circuit can win (its eigenvalues fall
//! by less than one in absolute terms, and it relaxes fast at low levels).

use super::SAMPLE_RATE;
use crate::engine::{db_to_amp, Engine, EngineParams, StatsRecord, StatsSender};
use crate::io::{write_atomically, write_wav, SampleFormat, WavSpec};
use crate::monitor::{monitor_table, ChangeCause, DEFAULT_THRESHOLD};
use crate::theory;
use crate::whitener::WhitenerKind;
use nalgebra::DMatrix;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Adaptation time of the paper scene: short enough that the direct circuit's ~100 τ from
/// `s = 100` fits in a demo.
pub const TAU_MS: f64 = 100.0;
/// The reference level: the input sits at it, except for the level steps.
pub const REFERENCE_DB: f64 = -40.0;
/// Eigenvalues of the input covariance at the reference level, in the circuits' units.
pub const SPECTRUM: [f64; 2] = [0.5, 2.0];
/// Seconds of input before the first event, to adapt.
const SETTLE_S: f64 = 2.0;
/// Seconds after the end of the last event window.
const END_S: f64 = 27.0;

/// An event of the paper scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PaperEvent {
    /// Every whitener re-initialised at `M₀ = s·I`.
    Reinit(f64),
    /// The input level steps by this many dB.
    Level(f64),
}

/// The events and when they happen (s): re-initialisations from far too large and far too
/// small, a rise 24 dB above the reference, the return to it, a drop 24 dB below it.
pub const EVENTS: [(f64, PaperEvent); 5] = [
    (SETTLE_S, PaperEvent::Reinit(100.0)),
    (15.0, PaperEvent::Reinit(0.01)),
    (18.0, PaperEvent::Level(24.0)),
    (21.0, PaperEvent::Level(-24.0)),
    (24.0, PaperEvent::Level(-24.0)),
];

/// One row of the paper table.
#[derive(Clone, Debug)]
pub struct PaperRow {
    /// When the event happened (s).
    pub time_s: f64,
    /// What it was.
    pub event: PaperEvent,
    /// The level before and after (dB relative to the reference).
    pub level_db: (f64, f64),
    /// Measured readaptation time per whitener (`None`: not detected or not readapted).
    pub measured: [Option<f64>; WhitenerKind::ALL.len()],
    /// Continuous-time theory per whitener (s).
    pub theory: [Option<f64>; WhitenerKind::ALL.len()],
}

/// What the paper scene wrote and measured.
pub struct PaperReport {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// One row per event.
    pub rows: Vec<PaperRow>,
}

/// Level (dB re the reference) at time `t`.
fn level_at(t: f64) -> f64 {
    EVENTS
        .iter()
        .filter(|(at, _)| *at <= t)
        .fold(0.0, |l, (_, e)| match e {
            PaperEvent::Level(db) => l + db,
            PaperEvent::Reinit(_) => l,
        })
}

/// The engine parameters of the paper scene.
pub fn params() -> EngineParams {
    EngineParams {
        tau_ms: TAU_MS,
        reference_db: REFERENCE_DB,
        ..EngineParams::default()
    }
}

/// Render the paper scene into `dir`: `paper-input.wav`, `paper-output-<whitener>.wav`,
/// `paper-stats.jsonl`, `paper.svg`.
pub fn render(dir: &Path) -> Result<PaperReport, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let params = params();
    let rate = SAMPLE_RATE as f64;
    let frames = (END_S * rate) as usize;
    // A fixed rotation of two independent white sources with variances SPECTRUM.
    let (c, s) = (0.4f64.cos(), 0.4f64.sin());
    let a = DMatrix::from_row_slice(2, 2, &[c, -s, s, c])
        * DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
            2,
            SPECTRUM.iter().map(|v| v.sqrt()),
        ));
    let mut rng = ChaCha8Rng::seed_from_u64(100);
    let mut input = Vec::with_capacity(2 * frames);
    for t in 0..frames {
        let g = db_to_amp(REFERENCE_DB + level_at(t as f64 / rate));
        let n1: f64 = rng.sample(StandardNormal);
        let n2: f64 = rng.sample(StandardNormal);
        input.push((g * (a[(0, 0)] * n1 + a[(0, 1)] * n2)) as f32);
        input.push((g * (a[(1, 0)] * n1 + a[(1, 1)] * n2)) as f32);
    }
    let spec = WavSpec {
        sample_rate: SAMPLE_RATE,
        channels: 2,
        format: SampleFormat::Float32,
    };
    let mut files = Vec::new();
    let path = dir.join("paper-input.wav");
    write_wav(&path, spec, &input).map_err(|e| e.to_string())?;
    files.push(path);
    let mut stats: Vec<StatsRecord> = Vec::new();
    for kind in WhitenerKind::ALL {
        let mut p = params.clone();
        p.selected = kind;
        let (records, out) = run(p, &input)?;
        if stats.is_empty() {
            stats = records;
        }
        let path = dir.join(format!("paper-output-{kind}.wav"));
        write_wav(&path, spec, &out).map_err(|e| e.to_string())?;
        files.push(path);
    }
    let path = dir.join("paper-stats.jsonl");
    let mut text = Vec::new();
    for r in &stats {
        writeln!(text, "{}", serde_json::to_string(r).expect("serialisable")).expect("in memory");
    }
    write_atomically(&path, &text).map_err(|e| e.to_string())?;
    files.push(path);
    let rows = table(&stats, &params);
    let path = dir.join("paper.svg");
    write_atomically(&path, draw(&stats, &rows)?.as_bytes()).map_err(|e| e.to_string())?;
    files.push(path);
    Ok(PaperReport { files, rows })
}

/// The scene through an engine, re-initialising at the events; its stats and output.
fn run(params: EngineParams, input: &[f32]) -> Result<(Vec<StatsRecord>, Vec<f32>), String> {
    let rate = SAMPLE_RATE as f64;
    let mut engine = Engine::new(2, rate, params).map_err(|e| format!("engine: {e}"))?;
    let (tx, rx) = crossbeam_channel::bounded(1 << 16);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let mut left: Vec<f32> = input.iter().step_by(2).cloned().collect();
    let mut right: Vec<f32> = input.iter().skip(1).step_by(2).cloned().collect();
    let frames = left.len();
    // Blocks end exactly at the events, so a re-initialisation happens at its time.
    let mut cuts: Vec<usize> = EVENTS
        .iter()
        .map(|(t, _)| (t * rate) as usize)
        .chain((0..frames).step_by(512))
        .chain([frames])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut records = Vec::new();
    for w in cuts.windows(2) {
        let (t, e) = (w[0], w[1]);
        for (at, ev) in EVENTS {
            if let (true, PaperEvent::Reinit(s)) = ((at * rate) as usize == t, ev) {
                engine.reinitialise(s).map_err(|e| e.to_string())?;
            }
        }
        let mut bufs: Vec<&mut [f32]> = vec![&mut left[t..e], &mut right[t..e]];
        engine.process(&mut bufs);
        records.extend(rx.try_iter());
    }
    let out = left
        .iter()
        .zip(&right)
        .flat_map(|(l, r)| [*l, *r])
        .collect();
    Ok((records, out))
}

/// Measured (the monitor's table, matched to the events) beside the theory.
fn table(stats: &[StatsRecord], params: &EngineParams) -> Vec<PaperRow> {
    let monitored = monitor_table(stats);
    // The floor in the circuits' units: the target is (C + ε²I)^{1/2}.
    let eps2 = db_to_amp(params.noise_floor_db - params.reference_db).powi(2);
    let tau_s = params.tau_ms * 1e-3;
    EVENTS
        .iter()
        .map(|&(time_s, event)| {
            let before = level_at(time_s - 1e-6);
            let after = level_at(time_s + 1e-6);
            let g2 = |db: f64| 10f64.powf(db / 10.0);
            let sigma2: Vec<f64> = SPECTRUM.iter().map(|s| s * g2(after) + eps2).collect();
            let m0: Vec<f64> = match event {
                PaperEvent::Reinit(s) => vec![s; SPECTRUM.len()],
                PaperEvent::Level(_) => SPECTRUM
                    .iter()
                    .map(|s| (s * g2(before) + eps2).sqrt())
                    .collect(),
            };
            let theory = WhitenerKind::ALL.map(|k| {
                theory::convergence_time_from(k, &sigma2, &m0, DEFAULT_THRESHOLD).map(|t| t * tau_s)
            });
            // The monitor's row: a re-initialisation at its time, a detected change within
            // 0.1 s after the step.
            let row = monitored.iter().find(|r| match event {
                PaperEvent::Reinit(_) => {
                    r.cause == ChangeCause::Reinit && (r.time_s - time_s).abs() < 0.02
                }
                PaperEvent::Level(_) => {
                    r.cause == ChangeCause::Input && r.time_s >= time_s && r.time_s < time_s + 0.1
                }
            });
            PaperRow {
                time_s,
                event,
                level_db: (before, after),
                measured: row.map_or([None; WhitenerKind::ALL.len()], |r| r.readaptation_s),
                theory,
            }
        })
        .collect()
}

/// The table as text: for each event, each whitener's measured / theory readaptation time.
pub fn format_table(report: &PaperReport) -> String {
    let mut s = format!(
        "the paper's effect in audio (τ = {TAU_MS} ms, reference {REFERENCE_DB} dBFS): \
         readaptation time (s), measured / continuous-time theory\n{:>7}  {:<34} {:>15} {:>15} {:>15} {:>15}\n",
        "time", "event", "direct", "interneuron", "baseline", "gain"
    );
    let cell = |m: Option<f64>, t: Option<f64>| {
        let m = m.map_or("—".to_string(), |v| format!("{v:.2}"));
        let t = t.map_or("—".to_string(), |v| format!("{v:.2}"));
        format!("{m} / {t}")
    };
    for row in &report.rows {
        let what = match row.event {
            PaperEvent::Reinit(s) => format!("re-initialise at s = {s}"),
            PaperEvent::Level(db) => format!(
                "level {db:+.0} dB ({:+.0} → {:+.0} dB re ref.)",
                row.level_db.0, row.level_db.1
            ),
        };
        s.push_str(&format!(
            "{:>6.1}s  {what:<34} {:>15} {:>15} {:>15} {:>15}\n",
            row.time_s,
            cell(row.measured[0], row.theory[0]),
            cell(row.measured[1], row.theory[1]),
            cell(row.measured[2], row.theory[2]),
            cell(row.measured[3], row.theory[3]),
        ));
    }
    if let Some(r) = report
        .rows
        .iter()
        .find(|r| r.event == PaperEvent::Reinit(100.0))
    {
        if let (Some(d), Some(i)) = (r.measured[0], r.measured[1]) {
            s.push_str(&format!(
                "from s = 100 the direct circuit needs {:.0}× the interneuron circuit's time\n",
                d / i
            ));
        }
    }
    s
}

/// Whitening error over time, events marked and labelled, theory readaptation marked.
fn draw(stats: &[StatsRecord], rows: &[PaperRow]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let root = SVGBackend::with_string(&mut svg, (1400, 620)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "The paper in audio: whitening error of each whitener's output (τ = {TAU_MS} ms); \
                     ▲ events, | theory's readaptation time"
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..END_S, (0.003f64..3e4).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("whitening error ‖R̄ − I‖/√n")
            .draw()
            .map_err(|x| e(&x))?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, DEFAULT_THRESHOLD), (END_S, DEFAULT_THRESHOLD)],
                5,
                5,
                BLACK.stroke_width(1),
            ))
            .map_err(|x| e(&x))?
            .label(format!("threshold {DEFAULT_THRESHOLD}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        for kind in WhitenerKind::ALL {
            let c = crate::reproduce::colour(kind);
            let pts: Vec<(f64, f64)> = stats
                .iter()
                .filter(|r| r.circuit == kind && r.error.is_finite())
                .map(|r| (r.time_s, r.error.clamp(0.003, 3e4)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(kind.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            // The theory's readaptation time of this whitener after each event.
            for row in rows {
                if let Some(t) = row.theory[kind.index()] {
                    let x = row.time_s + t;
                    chart
                        .draw_series(LineSeries::new(
                            vec![(x, 0.05), (x, 0.8)],
                            c.stroke_width(2),
                        ))
                        .map_err(|x| e(&x))?;
                }
            }
        }
        for row in rows {
            let label = match row.event {
                PaperEvent::Reinit(s) => format!("re-init s = {s}"),
                PaperEvent::Level(db) => format!("level {db:+.0} dB"),
            };
            chart
                .draw_series([TriangleMarker::new((row.time_s, 1.2e4), 7, BLACK.filled())])
                .map_err(|x| e(&x))?;
            chart
                .draw_series([Text::new(
                    label,
                    (row.time_s + 0.15, 5e3),
                    ("sans-serif", 14).into_font(),
                )])
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            // In the quiet stretch while the direct circuit is still on its way from s = 100.
            .position(SeriesLabelPosition::Coordinate(420, 110))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}
