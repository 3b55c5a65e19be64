//! `whiten demo`: a synthesised stereo scene whose mixing and level change every few seconds
//! by up to ±30 dB, rendered through the race. Writes the input, each whitener's output, the
//! stats, a figure of whitening error over time with the changes marked, and the measured
//! readaptation times. Then the paper's effect in audio ([`paper`]): re-initialisations at
//! `s = 100` and `s = 0.01` and level steps, measured beside the theory.

pub mod paper;

use crate::engine::{Engine, EngineParams, StatsRecord, StatsSender};
use crate::io::{write_atomically, write_wav, SampleFormat, WavSpec};
use crate::monitor::{self, monitor_table, ChangeReport, DEFAULT_THRESHOLD};
use crate::whitener::WhitenerKind;
use nalgebra::DMatrix;
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Sample rate of the scene.
pub const SAMPLE_RATE: u32 = 48_000;
/// Seconds per context.
pub const CONTEXT_S: f64 = 6.0;
/// Overall level of each context (dBFS RMS per channel). Consecutive contexts differ by up
/// to 30 dB, up and down.
pub const LEVELS_DB: [f64; 8] = [-20.0, -44.0, -16.0, -46.0, -26.0, -18.0, -38.0, -20.0];

/// The scene: interleaved stereo samples and the times of its changes.
pub struct Scene {
    /// Interleaved stereo, `SAMPLE_RATE` Hz.
    pub samples: Vec<f32>,
    /// Times (s) at which mixing and level change.
    pub changes: Vec<f64>,
    /// The mixing matrix of each context.
    pub mixings: Vec<DMatrix<f64>>,
}

/// Two independent sources — a dark (low-passed) and a bright (high-passed) noise, each of
/// unit variance — mixed by a seeded random matrix per context: a rotation, unequal source
/// gains (up to 12 dB apart) and the context's level.
pub fn scene(seed: u64) -> Scene {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let per = (CONTEXT_S * SAMPLE_RATE as f64) as usize;
    let mut samples = Vec::with_capacity(2 * per * LEVELS_DB.len());
    let mut mixings = Vec::new();
    let (mut lp, mut hp_prev, mut hp) = (0.0f64, 0.0f64, 0.0f64);
    // One-pole filters, scaled to unit output variance for unit white input: the low-pass
    // y = a·y + (1−a)·w has variance (1−a)/(1+a); the high-pass y = a·y + w − w₋₁ has 2/(1+a).
    let a_lp: f64 = 0.95;
    let g_lp = ((1.0 + a_lp) / (1.0 - a_lp)).sqrt();
    let a_hp: f64 = 0.6;
    let g_hp = ((1.0 + a_hp) / 2.0).sqrt();
    for &level_db in LEVELS_DB.iter() {
        let theta: f64 = rng.random_range(0.0..std::f64::consts::PI);
        let phi: f64 = rng.random_range(0.0..std::f64::consts::PI);
        let spread_db: f64 = rng.random_range(-12.0..12.0);
        let rot = |a: f64| DMatrix::from_row_slice(2, 2, &[a.cos(), -a.sin(), a.sin(), a.cos()]);
        let d = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![
            10f64.powf(spread_db / 40.0),
            10f64.powf(-spread_db / 40.0),
        ]));
        // Normalise so each channel's mean power is the context's level.
        let mut a = rot(theta) * d * rot(phi);
        let power = (&a * a.transpose()).trace() / 2.0;
        a *= 10f64.powf(level_db / 20.0) / power.sqrt();
        for _ in 0..per {
            let w1: f64 = rng.sample(StandardNormal);
            let w2: f64 = rng.sample(StandardNormal);
            lp = a_lp * lp + (1.0 - a_lp) * w1;
            let s1 = lp * g_lp;
            hp = a_hp * hp + w2 - hp_prev;
            hp_prev = w2;
            let s2 = hp * g_hp;
            samples.push((a[(0, 0)] * s1 + a[(0, 1)] * s2) as f32);
            samples.push((a[(1, 0)] * s1 + a[(1, 1)] * s2) as f32);
        }
        mixings.push(a);
    }
    let changes = (1..LEVELS_DB.len()).map(|i| i as f64 * CONTEXT_S).collect();
    Scene {
        samples,
        changes,
        mixings,
    }
}

/// What the demo wrote and measured.
pub struct DemoReport {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Readaptation times per change.
    pub table: Vec<ChangeReport>,
    /// Changes the engine's detector reported (s).
    pub detected: Vec<f64>,
}

/// Render the scene through the race into `dir`.
pub fn render(dir: &Path, params: &EngineParams) -> Result<DemoReport, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let scene = scene(2023);
    let spec = WavSpec {
        sample_rate: SAMPLE_RATE,
        channels: 2,
        format: SampleFormat::Float32,
    };
    let mut files = Vec::new();
    let input = dir.join("input.wav");
    write_wav(&input, spec, &scene.samples).map_err(|e| e.to_string())?;
    files.push(input);
    let frames = scene.samples.len() / 2;
    let mut stats: Vec<StatsRecord> = Vec::new();
    for kind in WhitenerKind::ALL {
        let mut p = params.clone();
        p.selected = kind;
        let mut engine =
            Engine::new(2, SAMPLE_RATE as f64, p).map_err(|e| format!("engine: {e}"))?;
        let (tx, rx) = crossbeam_channel::bounded(1 << 16);
        engine.set_stats_sender(Some(StatsSender::new(tx)));
        let mut left: Vec<f32> = scene.samples.iter().step_by(2).cloned().collect();
        let mut right: Vec<f32> = scene.samples.iter().skip(1).step_by(2).cloned().collect();
        let block = 512;
        let mut records = Vec::new();
        for t in (0..frames).step_by(block) {
            let e = (t + block).min(frames);
            let mut bufs: Vec<&mut [f32]> = vec![&mut left[t..e], &mut right[t..e]];
            engine.process(&mut bufs);
            records.extend(rx.try_iter());
        }
        // The race is identical whichever whitener is heard: keep the first run's stats.
        if stats.is_empty() {
            stats = records;
        }
        let out: Vec<f32> = left
            .iter()
            .zip(&right)
            .flat_map(|(l, r)| [*l, *r])
            .collect();
        let path = dir.join(format!("output-{kind}.wav"));
        write_wav(&path, spec, &out).map_err(|e| e.to_string())?;
        files.push(path);
    }
    let stats_path = dir.join("stats.jsonl");
    let mut text = Vec::new();
    for r in &stats {
        writeln!(text, "{}", serde_json::to_string(r).expect("serialisable")).expect("in memory");
    }
    write_atomically(&stats_path, &text).map_err(|e| e.to_string())?;
    files.push(stats_path);
    let end_s = frames as f64 / SAMPLE_RATE as f64;
    // The same monitor as the editor and `whiten live`: changes as the engine detected them,
    // readaptation times from each whitener's own error estimate.
    let table = monitor_table(&stats);
    let detected: Vec<f64> = table.iter().map(|c| c.time_s).collect();
    let svg = dir.join("readaptation.svg");
    let drawing = draw(&stats, &scene, &detected, end_s, params)?;
    write_atomically(&svg, drawing.as_bytes()).map_err(|e| e.to_string())?;
    files.push(svg);
    Ok(DemoReport {
        files,
        table,
        detected,
    })
}

fn draw(
    stats: &[StatsRecord],
    scene: &Scene,
    detected: &[f64],
    end_s: f64,
    params: &EngineParams,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1400, 1060)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        let (title, rest) = root.split_vertically(34);
        title
            .draw_text(
                &format!(
                    "Whitening error of each whitener's output (τ = {} ms, init scale {}, {} framing); grey: changes of the scene, ▲ detected, dashed: threshold {DEFAULT_THRESHOLD}",
                    params.tau_ms,
                    params.init_scale,
                    match params.framing {
                        crate::engine::Framing::Channels => "channels",
                        crate::engine::Framing::Spectral => "spectral",
                    }
                ),
                &("sans-serif", 17).into_text_style(&title),
                (14, 10),
            )
            .map_err(|x| e(&x))?;
        let (top, bottom) = rest.split_vertically(820);
        // One panel per whitener on shared axes: their noisy traces overlap in one panel, and
        // whichever is drawn last hides the others.
        let panels = top.split_evenly((WhitenerKind::ALL.len(), 1));
        for (kind, area) in WhitenerKind::ALL.into_iter().zip(&panels) {
            let c = crate::reproduce::colour(kind);
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(if kind == WhitenerKind::Gain { 36 } else { 0 })
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..end_s, (0.003f64..30.0).log_scale())
                .map_err(|x| e(&x))?;
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(format!("{}: error", kind.name()))
                .y_labels(4)
                .axis_desc_style(("sans-serif", 14).into_font().color(&c));
            if kind == WhitenerKind::Gain {
                mesh.x_desc("time (s)");
            }
            mesh.draw().map_err(|x| e(&x))?;
            for &t in &scene.changes {
                chart
                    .draw_series(LineSeries::new(
                        vec![(t, 0.003), (t, 30.0)],
                        RGBColor(160, 160, 160).stroke_width(1),
                    ))
                    .map_err(|x| e(&x))?;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, DEFAULT_THRESHOLD), (end_s, DEFAULT_THRESHOLD)],
                    5,
                    5,
                    BLACK.stroke_width(1),
                ))
                .map_err(|x| e(&x))?;
            chart
                .draw_series(
                    detected
                        .iter()
                        .map(|&t| TriangleMarker::new((t, 15.0), 5, BLACK.filled())),
                )
                .map_err(|x| e(&x))?;
            let pts: Vec<(f64, f64)> = stats
                .iter()
                .filter(|r| r.circuit == kind && r.error.is_finite())
                .map(|r| (r.time_s, r.error.clamp(0.003, 30.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|x| e(&x))?;
        }

        let mut lvl = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end_s, -60.0f64..0.0)
            .map_err(|x| e(&x))?;
        lvl.configure_mesh()
            .x_desc("time (s)")
            .y_desc("input level (dBFS)")
            .draw()
            .map_err(|x| e(&x))?;
        let pts: Vec<(f64, f64)> = stats
            .iter()
            .filter(|r| r.circuit == WhitenerKind::Direct)
            .map(|r| (r.time_s, r.input_rms_db.max(-60.0)))
            .collect();
        lvl.draw_series(LineSeries::new(pts, RGBColor(40, 120, 40).stroke_width(2)))
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}

/// The readaptation table as text.
pub fn format_table(report: &DemoReport) -> String {
    // The level step of the scene change each detection belongs to.
    let level_step = |row: &ChangeReport| {
        let context = ((row.time_s / CONTEXT_S).floor() as usize).clamp(1, LEVELS_DB.len() - 1);
        format!("{:+.0}", LEVELS_DB[context] - LEVELS_DB[context - 1])
    };
    monitor::format_table(&report.table, Some(("level (dB)", &level_step)))
}
