//! The returning-contexts figure (docs/DESIGN.md §2.9): per visit, (a) the readaptation time
//! and (b) the error at the end of the visit, with slow plasticity on (the gain circuit's
//! vermillion) and off (grey), one marker shape per frame seed.
//!
//! A visit that does not readapt within its `visit_steps` updates is censored: its time is
//! only known to exceed the cap, so it is drawn hollow in a band above the cap line (plasticity
//! on lower in the band, off higher), never at a made-up value.

use super::contexts::ContextsReport;
use super::figure::colour;
use crate::whitener::WhitenerKind;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type DrawResult = Result<(), Box<dyn std::error::Error>>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// Plasticity off: a neutral grey beside the gain circuit's colour.
const OFF: RGBColor = RGBColor(110, 110, 110);

/// Where censored visits are drawn, as multiples of the cap (plasticity on, off).
const CENSORED_AT: [f64; 2] = [1.4, 2.0];

/// Marker outline offsets (pixels) of shape `i` (by seed): circle, square, diamond, triangle.
fn outline(shape: usize) -> Vec<(i32, i32)> {
    match shape % 4 {
        0 => (0..16)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 16.0;
                (
                    (5.5 * a.cos()).round() as i32,
                    (5.5 * a.sin()).round() as i32,
                )
            })
            .collect(),
        1 => vec![(-5, -5), (5, -5), (5, 5), (-5, 5)],
        2 => vec![(0, -7), (7, 0), (0, 7), (-7, 0)],
        _ => vec![(0, -7), (6, 5), (-6, 5)],
    }
}

/// Draw markers of one shape, filled or hollow, at `points`.
fn markers(
    chart: &mut Chart,
    points: &[(f64, f64)],
    shape: usize,
    col: RGBColor,
    filled: bool,
) -> DrawResult {
    let pts = outline(shape);
    if filled {
        chart.draw_series(
            points
                .iter()
                .map(|&p| EmptyElement::at(p) + Polygon::new(pts.clone(), col.filled())),
        )?;
    } else {
        let mut closed = pts.clone();
        closed.push(pts[0]);
        chart.draw_series(points.iter().map(|&p| {
            EmptyElement::at(p) + PathElement::new(closed.clone(), col.stroke_width(2))
        }))?;
    }
    Ok(())
}

/// The horizontal offset of run `i` of `runs`, so that seeds sit side by side at a visit.
fn offset(i: usize, runs: usize) -> f64 {
    if runs <= 1 {
        0.0
    } else {
        0.5 * (i as f64 / (runs - 1) as f64 - 0.5)
    }
}

/// Render the figure to an SVG string.
pub(super) fn draw(report: &ContextsReport) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1500, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (header, body) = root.split_vertically(100);
        draw_header(report, &header).map_err(|e| e.to_string())?;
        let panels = body.split_evenly((1, 2));
        draw_times(report, &panels[0]).map_err(|e| e.to_string())?;
        draw_errors(report, &panels[1]).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn draw_header(report: &ContextsReport, area: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let c = &report.config;
    let grey = RGBColor(80, 80, 80);
    area.draw(&Text::new(
        format!(
            "Returning contexts A, B, A, B, … (Duong et al., NeurIPS 2023): gain-modulating circuit, n = k = {}, α = {}, {}",
            report.dim, report.alpha, c.mode.name()
        ),
        (16, 8),
        ("sans-serif", 19).into_font().color(&BLACK),
    ))?;
    let plastic_cos: Vec<f64> = report
        .runs
        .iter()
        .filter(|r| r.plastic)
        .flat_map(|r| r.alignment.iter().map(|a| a.abs_cos))
        .collect();
    let min_cos = plastic_cos.iter().cloned().fold(f64::INFINITY, f64::min);
    area.draw(&Text::new(
        format!(
            "C^½ = I + V diag(λ) Vᵀ, columns of V {}° apart, λ_A = {:?}, λ_B = {:?}; {} updates per visit, η_g = {}, η_w = {}, tol = {}. \
             Learned synapses along V: |cos| ≥ {:.6}.",
            c.separation_degrees, c.lambda_a, c.lambda_b, c.visit_steps, c.eta_g, c.eta_w, c.tol, min_cos
        ),
        (16, 34),
        ("sans-serif", 14).into_font().color(&grey),
    ))?;
    // The legend, drawn once for both panels, where it covers no data.
    let y = 74;
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let mut x = 16;
    let on = colour(WhitenerKind::Gain);
    for (col, filled, label) in [
        (on, true, "plasticity on".to_string()),
        (OFF, true, "plasticity off".to_string()),
        (
            OFF,
            false,
            "hollow: not readapted within the visit (censored)".to_string(),
        ),
    ] {
        let pts = outline(0);
        if filled {
            area.draw(&(EmptyElement::at((x + 6, y)) + Polygon::new(pts, col.filled())))?;
        } else {
            let mut closed = pts.clone();
            closed.push(pts[0]);
            area.draw(
                &(EmptyElement::at((x + 6, y)) + PathElement::new(closed, col.stroke_width(2))),
            )?;
        }
        area.draw(&Text::new(label.clone(), (x + 18, y - 8), font.clone()))?;
        x += 30 + 8 * label.chars().count() as i32;
    }
    for (i, seed) in c.seeds.iter().enumerate() {
        area.draw(&(EmptyElement::at((x + 6, y)) + Polygon::new(outline(i), BLACK.filled())))?;
        let label = format!("W₀ seed {seed}");
        area.draw(&Text::new(label.clone(), (x + 18, y - 8), font.clone()))?;
        x += 30 + 8 * label.chars().count() as i32;
    }
    Ok(())
}

/// Visits on the x axis, with room for the seeds' offsets.
fn visit_range(report: &ContextsReport) -> std::ops::Range<f64> {
    0.4..report.config.visits as f64 + 0.6
}

fn draw_times(report: &ContextsReport, area: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let cap = report.config.visit_steps as f64;
    let measured = report
        .runs
        .iter()
        .flat_map(|r| r.visits.iter().filter_map(|v| v.readaptation_steps))
        .map(|t| t.max(1) as f64);
    let ylo = measured.fold(cap, f64::min).min(cap / 10.0) / 2.0;
    let yhi = cap * CENSORED_AT[1] * 1.4;
    let last_label = std::cell::Cell::new(f64::NAN);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "(a) readaptation: updates into a visit until E < tol",
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(visit_range(report), (ylo.max(0.5)..yhi).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_y_mesh()
        .y_labels(40)
        .x_desc("visit (odd: context A, even: B)")
        .y_desc("updates to readapt (log)")
        .y_label_formatter(&|v| {
            // The 1-2-5 values up to the cap, each once (the log axis may offer a key point
            // twice, 999.99… and 1000).
            let mantissa = v / 10f64.powf(v.log10().floor());
            let round = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .any(|m| (mantissa - m).abs() < 1e-6);
            if *v > cap * 1.01 || !round || last_label.replace(v.round()) == v.round() {
                String::new()
            } else {
                format!("{v:.0}")
            }
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let range = visit_range(report);
    // Grid lines at 1, 2, 5 × 10^k up to the cap only: above it the band holds censored visits,
    // whose height means nothing but "more".
    let mut grid = Vec::new();
    let mut decade = 10f64.powf(ylo.max(0.5).log10().floor());
    while decade < cap {
        for m in [1.0, 2.0, 5.0] {
            let y = m * decade;
            if y >= ylo && y < cap {
                grid.push(y);
            }
        }
        decade *= 10.0;
    }
    for y in grid {
        chart.draw_series(LineSeries::new(
            vec![(range.start, y), (range.end, y)],
            BLACK.mix(0.15).stroke_width(1),
        ))?;
    }
    chart.draw_series(DashedLineSeries::new(
        vec![(range.start, cap), (range.end, cap)],
        6,
        4,
        BLACK.stroke_width(1),
    ))?;
    chart.draw_series(std::iter::once(Text::new(
        format!(
            "cap: the visit's {} updates; censored above",
            report.config.visit_steps
        ),
        // Right-aligned below the line: late visits readapt far below it.
        (range.end - 0.3, cap * 0.9),
        ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Top)),
    )))?;
    let runs = report.config.seeds.len();
    for (i, _) in report.config.seeds.iter().enumerate() {
        for (p, plastic) in [true, false].into_iter().enumerate() {
            let Some(run) = report.run_of(report.config.seeds[i], plastic) else {
                continue;
            };
            let col = if plastic {
                colour(WhitenerKind::Gain)
            } else {
                OFF
            };
            let dx = offset(i, runs);
            let at = |k: usize| k as f64 + 1.0 + dx;
            let (mut hit, mut censored, mut path) = (Vec::new(), Vec::new(), Vec::new());
            for (k, v) in run.visits.iter().enumerate() {
                let point = match v.readaptation_steps {
                    Some(t) => {
                        hit.push((at(k), (t.max(1) as f64)));
                        (at(k), t.max(1) as f64)
                    }
                    None => {
                        censored.push((at(k), cap * CENSORED_AT[p]));
                        (at(k), cap * CENSORED_AT[p])
                    }
                };
                path.push(point);
            }
            if plastic {
                chart.draw_series(LineSeries::new(path, col.mix(0.35).stroke_width(1)))?;
            }
            markers(&mut chart, &hit, i, col, true)?;
            markers(&mut chart, &censored, i, col, false)?;
        }
    }
    Ok(())
}

fn draw_errors(report: &ContextsReport, area: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let tol = report.config.tol;
    let errors: Vec<f64> = report
        .runs
        .iter()
        .flat_map(|r| r.visits.iter().map(|v| v.end_error))
        .filter(|e| e.is_finite() && *e > 0.0)
        .collect();
    let lo = errors.iter().cloned().fold(tol, f64::min) / 3.0;
    let hi = errors.iter().cloned().fold(tol, f64::max) * 3.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "(b) whitening error E at the end of each visit",
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(visit_range(report), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("visit (odd: context A, even: B)")
        .y_desc("E(M; C) after the visit (log)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 0.01 {
                format!("{v}")
            } else {
                format!("{v:.0e}")
            }
        })
        .draw()?;
    let range = visit_range(report);
    chart.draw_series(DashedLineSeries::new(
        vec![(range.start, tol), (range.end, tol)],
        6,
        4,
        BLACK.stroke_width(1),
    ))?;
    chart.draw_series(std::iter::once(Text::new(
        format!("tol = {tol}"),
        (range.end - 0.3, tol * 1.15),
        ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Bottom)),
    )))?;
    let runs = report.config.seeds.len();
    for (i, &seed) in report.config.seeds.iter().enumerate() {
        for plastic in [true, false] {
            let Some(run) = report.run_of(seed, plastic) else {
                continue;
            };
            let col = if plastic {
                colour(WhitenerKind::Gain)
            } else {
                OFF
            };
            let dx = offset(i, runs);
            let points: Vec<(f64, f64)> = run
                .visits
                .iter()
                .enumerate()
                .filter(|(_, v)| v.end_error.is_finite() && v.end_error > 0.0)
                .map(|(k, v)| (k as f64 + 1.0 + dx, v.end_error))
                .collect();
            // Without plasticity the error alternates between the contexts' two levels: a
            // line would only zigzag across the panel.
            if plastic {
                chart.draw_series(LineSeries::new(
                    points.clone(),
                    col.mix(0.35).stroke_width(1),
                ))?;
            }
            markers(&mut chart, &points, i, col, true)?;
        }
    }
    Ok(())
}
