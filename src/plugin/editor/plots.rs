//! The two live plots: whitening error against time, and the eigenvalue spectra of `M`.
//! Both draw `log10` of their values (egui_plot has no log axis) with decade grids and labels
//! from [`super::labels`]. Both are fixed views, re-computed every frame from the monitor: a
//! live monitor the user cannot accidentally pan away from.

use super::labels::{decade_bounds, log10_clamped, log_grid_marks, log_tick_label};
use super::whitener_color;
use crate::monitor::{ChangeCause, Monitor};
use crate::whitener::WhitenerKind;
use egui::{Color32, Stroke, Ui, Vec2};
use egui_plot::{
    Corner, HLine, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotBounds,
    PlotPoints, Points, VLine,
};

/// Seconds of history in the error plot.
pub const ERROR_WINDOW_S: f64 = 20.0;
/// Limits of the error plot's y axis, decades: errors outside are clipped rather than
/// squashing everything else.
const ERROR_DECADES: (f64, f64) = (-3.0, 5.0);
/// Limits of the spectrum plot's y axis, decades.
const SPECTRUM_DECADES: (f64, f64) = (-8.0, 6.0);
/// Colour of the change markers (Okabe–Ito reddish purple).
const CHANGE_COLOR: Color32 = Color32::from_rgb(204, 121, 167);
/// Colour of the re-initialisation markers (Okabe–Ito yellow).
const REINIT_COLOR: Color32 = Color32::from_rgb(240, 228, 66);
/// Colour of the threshold line and the target spectrum.
const REFERENCE_COLOR: Color32 = Color32::from_rgb(200, 200, 200);

/// A plot of `size` with a fixed view and no pan/zoom: a live view the user cannot
/// accidentally pan away from (the view follows the data).
pub(super) fn fixed_plot(id: &str, size: Vec2) -> Plot<'_> {
    Plot::new(id)
        .width(size.x)
        .height(size.y)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .auto_bounds(false)
}

/// A [`fixed_plot`] with a log y axis.
fn log_plot<'a>(id: &'a str, size: Vec2, x_label: &str, y_label: &str) -> Plot<'a> {
    fixed_plot(id, size)
        .y_grid_spacer(|input| log_grid_marks(input.bounds.0, input.bounds.1))
        .y_axis_formatter(|mark, _| log_tick_label(mark.value))
        .y_axis_min_width(36.0)
        .x_axis_label(x_label.to_string())
        .y_axis_label(y_label.to_string())
}

/// A compact legend in the top-left corner (the newest data is at the right of the error
/// plot), sorted by name so entries do not move when the heard circuit changes.
fn legend() -> Legend {
    Legend::default()
        .position(Corner::LeftTop)
        .text_style(egui::TextStyle::Small)
        .background_alpha(0.85)
}

/// The hover label of a log plot: `x` as is, `y` converted back from its logarithm.
fn hover_label(
    x_name: &'static str,
    y_name: &'static str,
) -> impl Fn(&HoverPosition) -> Option<String> {
    move |pos| {
        let (name, p) = match pos {
            HoverPosition::NearDataPoint {
                plot_name,
                position,
                ..
            } => (*plot_name, position),
            HoverPosition::Elsewhere { position } => ("", position),
        };
        let y = 10f64.powf(p.y);
        Some(
            format!("{name}\n{x_name} {:.2}\n{y_name} {y:.3e}", p.x)
                .trim_start()
                .to_string(),
        )
    }
}

/// Whitening error of every whitener over the last [`ERROR_WINDOW_S`] seconds: the heard one
/// thick, the others thin; the detected changes and the re-initialisations (both readaptation
/// windows of the monitor) as vertical lines; the readaptation threshold as a horizontal line,
/// with a marker where each whitener got back under it after each change.
pub fn error_plot(ui: &mut Ui, monitor: &Monitor, size: Vec2) {
    let now = monitor.now_s();
    let x_max = now.max(ERROR_WINDOW_S);
    let x_min = x_max - ERROR_WINDOW_S;
    let threshold = monitor.settings().threshold;
    let log_threshold = threshold.log10();
    let heard = monitor.selected();

    let series: Vec<(WhitenerKind, Vec<[f64; 2]>)> = WhitenerKind::ALL
        .into_iter()
        .map(|k| {
            let points = monitor
                .since(k, x_min)
                .map(|r| [r.time_s, log10_clamped(r.error)])
                .collect();
            (k, points)
        })
        .collect();
    let (lo, hi) = decade_bounds(
        series.iter().flat_map(|(_, p)| p.iter().map(|p| p[1])),
        &[log_threshold],
        2.0,
        ERROR_DECADES.0,
        ERROR_DECADES.1,
    );

    log_plot("error_plot", size, "time (s)", "whitening error")
        .legend(legend())
        .x_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 5.0, 10.0]))
        .label_formatter(hover_label("t =", "error ="))
        .show(ui, |plot| {
            plot.set_plot_bounds(PlotBounds::from_min_max([x_min, lo], [x_max, hi]));
            plot.hline(
                HLine::new(format!("threshold {threshold}"), log_threshold)
                    .color(REFERENCE_COLOR)
                    .style(LineStyle::dashed_loose())
                    .width(1.0),
            );
            // Thin lines first so the heard one is drawn on top.
            let mut ordered: Vec<_> = series.into_iter().collect();
            ordered.sort_by_key(|(k, _)| Some(*k) == heard);
            for (kind, points) in ordered {
                let is_heard = Some(kind) == heard;
                let name = if is_heard {
                    format!("{kind} (heard)")
                } else {
                    kind.to_string()
                };
                let color = whitener_color(kind);
                let (width, color) = if is_heard {
                    (3.0, color)
                } else {
                    (1.5, color.gamma_multiply(0.85))
                };
                plot.line(
                    Line::new(name, PlotPoints::new(points))
                        .stroke(Stroke::new(width, color))
                        .allow_hover(true),
                );
            }
            // Over the curves: every curve spikes at a change and would hide the marker.
            for change in monitor.changes().filter(|c| c.time_s >= x_min) {
                let (name, color) = match change.cause {
                    ChangeCause::Input => ("change", CHANGE_COLOR),
                    ChangeCause::Reinit => ("re-initialised", REINIT_COLOR),
                };
                plot.vline(
                    VLine::new(name, change.time_s)
                        .color(color)
                        .style(LineStyle::dashed_dense())
                        .width(1.5),
                );
            }
            readaptation_markers(plot, monitor, x_min, log_threshold);
        });
}

/// A marker on the threshold line where each whitener readapted after each visible change.
fn readaptation_markers(plot: &mut egui_plot::PlotUi, monitor: &Monitor, x_min: f64, y: f64) {
    for kind in WhitenerKind::ALL {
        let points: Vec<[f64; 2]> = monitor
            .changes()
            .filter_map(|c| c.readaptation_s[kind.index()].map(|r| c.time_s + r))
            .filter(|t| *t >= x_min)
            .map(|t| [t, y])
            .collect();
        if points.is_empty() {
            continue;
        }
        plot.points(
            // Unnamed: the legend explains the curves, the table the markers.
            Points::new("", PlotPoints::new(points))
                .shape(MarkerShape::Diamond)
                .radius(5.0)
                .filled(true)
                .color(whitener_color(kind)),
        );
    }
}

/// The eigenvalues of `M` for the three circuits, per index (ascending), next to the target
/// spectrum `Ĉ^{1/2}` — the baseline's eigenvalues — drawn as a short grey bar at each
/// index. A circuit has adapted when its markers sit on the bars; after a re-initialisation
/// at scale `s` they start at `s` and the circuits' approach can be watched directly.
pub fn spectrum_plot(ui: &mut Ui, monitor: &Monitor, size: Vec2) {
    let eig = |k: WhitenerKind| -> Vec<f64> {
        monitor
            .latest(k)
            .map(|r| r.eigenvalues.as_slice().to_vec())
            .unwrap_or_default()
    };
    let direct = eig(WhitenerKind::Direct);
    let interneuron = eig(WhitenerKind::Interneuron);
    let gain = eig(WhitenerKind::Gain);
    let target = eig(WhitenerKind::Baseline);
    let n = direct
        .len()
        .max(interneuron.len())
        .max(gain.len())
        .max(target.len())
        .max(1);
    let (lo, hi) = decade_bounds(
        direct
            .iter()
            .chain(&interneuron)
            .chain(&gain)
            .chain(&target)
            .map(|v| log10_clamped(*v)),
        &[],
        3.0,
        SPECTRUM_DECADES.0,
        SPECTRUM_DECADES.1,
    );

    log_plot(
        "spectrum_plot",
        size,
        "eigenvalue index (ascending)",
        "eigenvalue of M",
    )
    .legend(legend())
    .label_formatter(hover_label("index", "λ ="))
    .x_grid_spacer(move |_| {
        (1..=n)
            .map(|i| egui_plot::GridMark {
                value: i as f64,
                step_size: 1.0,
            })
            .collect()
    })
    .x_axis_formatter(|mark, _| format!("{}", mark.value.round() as i64))
    .show(ui, |plot| {
        plot.set_plot_bounds(PlotBounds::from_min_max([0.4, lo], [n as f64 + 0.6, hi]));
        for (i, v) in target.iter().enumerate() {
            let x = (i + 1) as f64;
            let y = log10_clamped(*v);
            plot.line(
                Line::new(
                    "target Ĉ½ (baseline)",
                    PlotPoints::new(vec![[x - 0.35, y], [x + 0.35, y]]),
                )
                .stroke(Stroke::new(4.0, REFERENCE_COLOR)),
            );
        }
        for (kind, values, offset, shape) in [
            (WhitenerKind::Direct, &direct, -0.12, MarkerShape::Circle),
            (
                WhitenerKind::Interneuron,
                &interneuron,
                0.12,
                MarkerShape::Diamond,
            ),
            (WhitenerKind::Gain, &gain, 0.0, MarkerShape::Square),
        ] {
            let points: Vec<[f64; 2]> = values
                .iter()
                .enumerate()
                .map(|(i, v)| [(i + 1) as f64 + offset, log10_clamped(*v)])
                .collect();
            plot.points(
                Points::new(kind.to_string(), PlotPoints::new(points))
                    .shape(shape)
                    .radius(7.0)
                    .filled(true)
                    .color(whitener_color(kind)),
            );
        }
    });
}
