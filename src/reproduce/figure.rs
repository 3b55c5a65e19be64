//! The convergence-time figure: iterations to whiten vs initial scale `s`, every circuit run,
//! measured points, the continuous-time theory (dashed) and the fitted laws.
//!
//! One panel for all circuits, log–log, then one per circuit on the axes where its law is a
//! straight line: the direct circuit on linear axes (linear law), the interneuron circuit with
//! a log scale axis (logarithmic law), and — when it was run — the gain-modulating circuit on
//! linear axes (linear; no closed-form theory, but a lower bound, dotted, and the large-`s`
//! asymptote `κ s/η`, long dashes, docs/DESIGN.md §2.9).

use super::{law_of, Fit, Law, Report};
use crate::theory;
use crate::whitener::WhitenerKind;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
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

/// Points of a line in data coordinates.
type Curve = Vec<(f64, f64)>;

/// The gain circuit's lower bound and asymptote across the swept scales, on a dense log grid.
fn gain_curves(report: &Report, lo: f64, hi: f64) -> (Curve, Curve) {
    let Some(setup) = &report.gain else {
        return (Vec::new(), Vec::new());
    };
    let (mut bound, mut estimate) = (Vec::new(), Vec::new());
    let steps = 200;
    for i in 0..=steps {
        let s = lo * (hi / lo).powf(i as f64 / steps as f64);
        let e = setup.estimates(&report.config.spectrum, s, report.config.tol);
        if let Some(b) = e.lower_bound_iterations.filter(|b| *b > 0.0) {
            bound.push((s, b));
        }
        estimate.push((s, e.asymptotic_iterations));
    }
    (bound, estimate)
}

/// Width of one panel: the figure grows with the circuits run, but is never narrower than
/// three panels (its title needs the room).
const PANEL_WIDTH: u32 = 520;

/// Render the figure to an SVG string.
pub(super) fn draw(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    let circuits = &report.config.circuits;
    let panels = 1 + circuits.len();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL_WIDTH * panels.max(3) as u32, 560))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (title, body) = root.split_vertically(56);
        let c = &report.config;
        let gain_k = report
            .gain
            .as_ref()
            .map(|g| {
                format!(
                    ", gain: k = {} (pairs frame), α = {}, η_g = η",
                    g.interneurons, g.alpha
                )
            })
            .unwrap_or_default();
        let headline = format!(
            "Convergence time vs initial scale ({}; n = {}, k = {}{gain_k}, η = {}, tol = {}, spectrum of C = {:?})",
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
        let gain_note = if report.gain.is_some() {
            " Gain: no theory; dotted: a lower bound, long dashes: the large-s asymptote."
        } else {
            ""
        };
        let note = if report.not_converged > 0 {
            format!(
                "{} run(s) did not converge within {} iterations and are not plotted. Dashed: continuous-time theory; solid: fitted law (s ≥ {:.3}).{gain_note}",
                report.not_converged, c.max_iterations, report.fit_min_scale
            )
        } else {
            format!(
                "Markers: measured. Dashed: continuous-time theory (τ/η). Solid: least-squares law fitted over s ≥ {:.3}.{gain_note}",
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
        let areas = body.split_evenly((1, panels));
        draw_both(report, &areas[0]).map_err(|e| e.to_string())?;
        for (i, (&kind, area)) in circuits.iter().zip(&areas[1..]).enumerate() {
            // Panels (b), (c), … in the order the circuits were given.
            let letter = (b'b' + i as u8) as char;
            draw_single(report, area, kind, letter).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Tick labels without spurious decimals: `1000`, `0.5`, `1e5`, `1.5e5` (a mantissa is
/// rounded to two decimals, never to a neighbouring tick's label).
fn tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-2) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
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
    let circuits = &report.config.circuits;
    let mut all = Vec::new();
    for &kind in circuits {
        all.extend(measured(report, kind));
        all.extend(theory_curve(report, kind, lo, hi));
    }
    let (ylo, yhi) = y_bounds(&all, true);
    let caption = match circuits.len() {
        1 => format!("(a) {} (log–log)", circuits[0].name()),
        2 => "(a) both circuits (log–log)".to_string(),
        _ => "(a) all circuits (log–log)".to_string(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
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
    for &kind in circuits {
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
    letter: char,
) -> DrawResult {
    let (lo, hi) = scale_range(report);
    let col = colour(kind);
    let points = measured(report, kind);
    let theory = theory_curve(report, kind, lo, hi);
    let (bound, estimate) = if kind == WhitenerKind::Gain {
        gain_curves(report, lo, hi)
    } else {
        (Vec::new(), Vec::new())
    };
    let fit: Option<&Fit> = report.fits.of(kind);
    let mut all = points.clone();
    all.extend(theory.iter().cloned());
    all.extend(bound.iter().cloned());
    all.extend(estimate.iter().cloned());
    let (ylo, mut yhi) = y_bounds(&all, false);
    if kind == WhitenerKind::Gain {
        // Room for its four-line legend above the largest count.
        yhi *= 1.25;
    }
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
    let gain_labels = report.gain.as_ref().map(|g| {
        (
            format!(
                "lower bound (n·s − Tr C^½/√(1−tol·√n))/({:.0}η)",
                g.trace_rate
            ),
            format!(
                "asymptote {}·s/η (s → ∞; no intercept)",
                tick(g.asymptotic_slope * g.eta_g)
            ),
        )
    });
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
            if kind != WhitenerKind::Gain {
                $chart
                    .draw_series(DashedLineSeries::new(theory, 6, 4, col.stroke_width(2)))?
                    .label("theory (continuous time)")
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
            } else if let Some((bound_label, estimate_label)) = gain_labels {
                $chart
                    .draw_series(DashedLineSeries::new(bound, 2, 4, col.stroke_width(2)))?
                    .label(bound_label)
                    .legend(move |(x, y)| {
                        DashedPathElement::new(vec![(x, y), (x + 20, y)], 2, 4, col.stroke_width(2))
                    });
                $chart
                    .draw_series(DashedLineSeries::new(estimate, 12, 5, col.stroke_width(2)))?
                    .label(estimate_label)
                    .legend(move |(x, y)| {
                        DashedPathElement::new(
                            vec![(x, y), (x + 20, y)],
                            12,
                            5,
                            col.stroke_width(2),
                        )
                    });
            }
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
    let caption = format!(
        "({letter}) {}",
        match kind {
            WhitenerKind::Direct => "direct: linear in s",
            WhitenerKind::Interneuron => "interneuron: linear in log s",
            WhitenerKind::Gain => "gain: linear in s (no theory)",
            WhitenerKind::Baseline => "baseline",
        }
    );
    match law_of(kind) {
        Law::Linear => {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..hi * 1.05, ylo..yhi)?;
            body!(chart);
        }
        Law::Logarithmic => {
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(70)
                .build_cartesian_2d((lo / 1.3..hi * 1.3).log_scale(), ylo..yhi)?;
            body!(chart);
        }
    }
    Ok(())
}
