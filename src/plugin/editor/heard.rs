//! What the heard whitener does (docs/DESIGN.md §3.7): in the spectral framing its gain per
//! band against frequency — the learned EQ curve, with depth, tilt and limits applied — and in
//! the channels framing the matrix from input to output as a grid of signed cells.

use super::{plots, whitener_color};
use crate::engine::{HeardView, ViewKind};
use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, Ui, Vec2};
use egui_plot::{GridMark, HoverPosition, Line, LineStyle, PlotBounds, PlotPoints, VLine};

/// Colour of the limit lines.
const LIMIT_COLOR: Color32 = Color32::from_rgb(200, 200, 200);
/// Frequencies with grid lines and labels.
const FREQ_MARKS: [(f64, &str); 7] = [
    (20.0, "20"),
    (100.0, "100"),
    (200.0, "200"),
    (1000.0, "1k"),
    (2000.0, "2k"),
    (10_000.0, "10k"),
    (20_000.0, "20k"),
];

/// The view of the latest [`HeardView`], `width` wide (nothing yet: a note).
pub fn heard_view(ui: &mut Ui, view: Option<&HeardView>, width: f32) {
    let Some(view) = view.filter(|v| v.len > 0) else {
        ui.label(RichText::new("waiting for audio…").small().weak());
        return;
    };
    match view.kind {
        ViewKind::Bands => gain_curve(ui, view, Vec2::new(width, 130.0)),
        ViewKind::Matrix => matrix_grid(ui, view, width),
    }
}

/// Gain per band (dB) against log frequency, in the heard whitener's colour; the limits as
/// dashed lines (bands outside them pass dry).
fn gain_curve(ui: &mut Ui, view: &HeardView, size: Vec2) {
    let points: Vec<[f64; 2]> = (0..view.len)
        .filter(|&b| view.freq_hz[b] > 0.0 && view.gain_db[b].is_finite())
        .map(|b| [(view.freq_hz[b] as f64).log10(), view.gain_db[b] as f64])
        .collect();
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p[1]), hi.max(p[1]))
        });
    if !lo.is_finite() {
        (lo, hi) = (-6.0, 6.0);
    }
    // At least ±6 dB around the curve, in 6 dB steps, so the view does not jitter.
    let lo = ((lo - 1.0) / 6.0).floor().min(-1.0) * 6.0;
    let hi = ((hi + 1.0) / 6.0).ceil().max(1.0) * 6.0;
    let (x0, x1) = (20f64.log10(), 20_000f64.log10());
    let colour = whitener_color(view.selected);
    plots::fixed_plot("heard_gain", size)
        .x_grid_spacer(|_| {
            FREQ_MARKS
                .iter()
                .map(|(f, _)| GridMark {
                    value: f.log10(),
                    step_size: 1.0,
                })
                .collect()
        })
        .x_axis_formatter(|mark, _| {
            FREQ_MARKS
                .iter()
                .find(|(f, _)| (f.log10() - mark.value).abs() < 1e-6)
                .map(|(_, s)| s.to_string())
                .unwrap_or_default()
        })
        .y_axis_formatter(|mark, _| format!("{:+.0}", mark.value))
        .y_axis_min_width(30.0)
        .x_axis_label("Hz")
        .y_axis_label("gain, dB")
        .label_formatter(|pos| {
            let p = match pos {
                HoverPosition::NearDataPoint { position, .. } => position,
                HoverPosition::Elsewhere { position } => position,
            };
            Some(format!("{:.0} Hz\n{:+.1} dB", 10f64.powf(p.x), p.y))
        })
        .show(ui, |plot| {
            plot.set_plot_bounds(PlotBounds::from_min_max([x0, lo], [x1, hi]));
            let (low, high) = view.limits_hz;
            for f in [low, high] {
                let x = (f.max(1.0) as f64).log10();
                if x > x0 && x < x1 {
                    plot.vline(
                        VLine::new("limit", x)
                            .stroke(Stroke::new(1.0, LIMIT_COLOR))
                            .style(LineStyle::dashed_dense()),
                    );
                }
            }
            plot.line(
                Line::new(view.selected.to_string(), PlotPoints::new(points))
                    .stroke(Stroke::new(2.5, colour)),
            );
        });
}

/// The n×n matrix from input to output, one cell per entry: blue positive, red negative,
/// brightness the magnitude relative to the largest entry; values printed up to 4 channels.
fn matrix_grid(ui: &mut Ui, view: &HeardView, width: f32) {
    let n = view.len;
    let side = (width - 20.0).min(120.0);
    let cell = side / n as f32;
    let (rect, _) = ui.allocate_exact_size(Vec2::new(width, side + 4.0), Sense::hover());
    let painter = ui.painter_at(rect);
    let max = (0..n * n)
        .map(|k| view.matrix[k].abs())
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    let origin = rect.min + Vec2::new((width - side) / 2.0, 2.0);
    for j in 0..n {
        for i in 0..n {
            let v = view.matrix_entry(i, j);
            let t = (v.abs() / max).clamp(0.0, 1.0);
            let base = if v >= 0.0 {
                Color32::from_rgb(60, 140, 230)
            } else {
                Color32::from_rgb(230, 90, 70)
            };
            let fill = Color32::from_rgb(
                (30.0 + (base.r() as f32 - 30.0) * t) as u8,
                (30.0 + (base.g() as f32 - 30.0) * t) as u8,
                (30.0 + (base.b() as f32 - 30.0) * t) as u8,
            );
            let min = origin + Vec2::new(j as f32 * cell, i as f32 * cell);
            let r = Rect::from_min_size(min, Vec2::splat(cell - 1.0));
            painter.rect_filled(r, 2.0, fill);
            if n <= 4 {
                painter.text(
                    r.center(),
                    Align2::CENTER_CENTER,
                    format!("{v:+.2}"),
                    FontId::proportional(12.0),
                    Color32::WHITE,
                );
            }
        }
    }
}
