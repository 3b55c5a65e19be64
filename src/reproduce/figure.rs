//! The convergence-time figure: iterations to whiten vs initial scale `s`, both circuits,
//! measured points, the continuous-time theory (dashed) and the fitted laws.
//!
//! Three panels, each on the axes where a law is a straight line:
//! (a) both circuits, log–log; (b) the direct circuit on linear axes (linear law);
//! (c) the interneuron circuit with a log scale axis (logarithmic law).

use super::{law_of, Fit, Law, Report};
use crate::theory;
use crate::whitener::WhitenerKind;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A whitener's colour of the product's one palette ([`WhitenerKind::colour`]), for plotters.
/// The demo's figure uses it too.
pub(crate) fn colour(kind: WhitenerKind) -> RGBColor {
    let c = kind.colour();
    RGBColor(c.0, c.1, c.2)
}

/// Measured (scale, iterations) points of one circuit.
fn measured(report: &Report, kind: WhitenerKind) -> Vec<(f64, f64)> {
    report
        .runs_of(kind)
        .filter_map(|r| r.iterations.map(|t| (r.scale, t as f64)))
        .collect()
}

/// The theory curve on a dense log grid across the swept scales.
fn theory_curve(report: &Report, kind: WhitenerKind, lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let steps = 200;
    (0..=steps)
        .filter_map(|i| {
            let s = lo * (hi / lo).powf(i as f64 / steps as f64);
            theory::convergence_iterations(
                kind,
                &report.config.spectrum,
                s,
                report.config.tol,
                report.config.eta,
            )
            .filter(|t| *t > 0.0)
            .map(|t| (s, t))
        })
        .collect()
}

fn scale_range(report: &Report) -> (f64, f64) {
    let lo = report
        .config
        .scales
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    let hi = report.config.scales.iter().cloned().fold(0.0, f64::max);
    if hi > lo {
        (lo, hi)
    } else {
        (lo / 2.0, hi * 2.0)
    }
}

/// Render the figure to an SVG string.
pub(super) fn draw(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1560, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (title, body) = root.split_vertically(56);
        let c = &report.config;
        let headline = format!(
            "Convergence time vs initial scale ({}; n = {}, k = {}, η = {}, tol = {}, spectrum of C = {:?})",
            c.mode.name(),
            report.dim,
            c.interneurons,
            c.eta,
            c.tol,
            c.spectrum
        );
        title
            .draw(&Text::new(
                headline,
                (16, 10),
                ("sans-serif", 19).into_font().color(&BLACK),
            ))
            .map_err(|e| e.to_string())?;
        let note = if report.not_converged > 0 {
            format!(
                "{} run(s) did not converge within {} iterations and are not plotted. Dashed: continuous-time theory; solid: fitted law (s ≥ {:.3}).",
                report.not_converged, c.max_iterations, report.fit_min_scale
            )
        } else {
            format!(
                "Markers: measured. Dashed: continuous-time theory (τ/η). Solid: least-squares law fitted over s ≥ {:.3}.",
                report.fit_min_scale
            )
        };
        title
            .draw(&Text::new(
                note,
                (16, 34),
                ("sans-serif", 14).into_font().color(&RGBColor(80, 80, 80)),
            ))
            .map_err(|e| e.to_string())?;
        let panels = body.split_evenly((1, 3));
        draw_both(report, &panels[0]).map_err(|e| e.to_string())?;
        draw_single(report, &panels[1], WhitenerKind::Direct).map_err(|e| e.to_string())?;
        draw_single(report, &panels[2], WhitenerKind::Interneuron).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Tick labels without spurious decimals: `1000`, `0.5`, `1e5`.
fn tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-2) {
        format!("{v:.0e}")
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn y_bounds(points: &[(f64, f64)], log: bool) -> (f64, f64) {
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    if !lo.is_finite() || hi <= 0.0 {
        return (1.0, 10.0);
    }
    if log {
        ((lo.max(0.5)) / 1.6, hi * 1.6)
    } else {
        (0.0, hi * 1.1)
    }
}

fn draw_both(report: &Report, area: &DrawingArea<SVGBackend, Shift>) -> DrawResult {
    let (lo, hi) = scale_range(report);
    let mut all = Vec::new();
    for kind in WhitenerKind::CIRCUITS {
        all.extend(measured(report, kind));
        all.extend(theory_curve(report, kind, lo, hi));
    }
    let (ylo, yhi) = y_bounds(&all, true);
    let mut chart = ChartBuilder::on(area)
        .caption("(a) both circuits (log–log)", ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((lo / 1.3..hi * 1.3).log_scale(), (ylo..yhi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("initial scale s")
        .y_desc("iterations to converge")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    for kind in WhitenerKind::CIRCUITS {
        let col = colour(kind);
        chart.draw_series(DashedLineSeries::new(
            theory_curve(report, kind, lo, hi),
            6,
            4,
            col.stroke_width(2),
        ))?;
        chart
            .draw_series(
                measured(report, kind)
                    .into_iter()
                    .map(|p| Circle::new(p, 5, col.filled())),
            )?
            .label(kind.name())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

fn draw_single(
    report: &Report,
    area: &DrawingArea<SVGBackend, Shift>,
    kind: WhitenerKind,
) -> DrawResult {
    let (lo, hi) = scale_range(report);
    let col = colour(kind);
    let points = measured(report, kind);
    let theory = theory_curve(report, kind, lo, hi);
    let fit: Option<&Fit> = report.fits.of(kind);
    let mut all = points.clone();
    all.extend(theory.iter().cloned());
    let (ylo, yhi) = y_bounds(&all, false);
    let fit_label = fit
        .map(|f| f.describe())
        .unwrap_or_else(|| "no fit (fewer than 2 converged scales)".into());
    let fit_line: Vec<(f64, f64)> = fit
        .map(|f| {
            let start = report.fit_min_scale.max(lo);
            (0..=100)
                .map(|i| {
                    let s = start * (hi / start).powf(i as f64 / 100.0);
                    (s, f.eval(s))
                })
                .collect()
        })
        .unwrap_or_default();
    macro_rules! body {
        ($chart:ident) => {{
            $chart
                .configure_mesh()
                .x_desc(match law_of(kind) {
                    Law::Linear => "initial scale s (linear axis)",
                    Law::Logarithmic => "initial scale s (log axis)",
                })
                .y_desc("iterations to converge")
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()?;
            $chart
                .draw_series(DashedLineSeries::new(theory, 6, 4, col.stroke_width(2)))?
                .label("theory (continuous time)")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
            $chart
                .draw_series(LineSeries::new(fit_line, BLACK.stroke_width(1)))?
                .label(fit_label)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
            $chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 5, col.filled())))?
                .label(format!("{} (measured)", kind.name()))
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
            $chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }};
    }
    match law_of(kind) {
        Law::Linear => {
            let mut chart = ChartBuilder::on(area)
                .caption("(b) direct: linear in s", ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..hi * 1.05, ylo..yhi)?;
            body!(chart);
        }
        Law::Logarithmic => {
            let mut chart = ChartBuilder::on(area)
                .caption("(c) interneuron: linear in log s", ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d((lo / 1.3..hi * 1.3).log_scale(), ylo..yhi)?;
            body!(chart);
        }
    }
    Ok(())
}
