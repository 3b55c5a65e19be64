//! Pure formatting and axis helpers of the editor, kept free of egui state so they can be
//! unit-tested.
//!
//! egui_plot has no logarithmic axis, so the plots draw `log10(value)` and these helpers put
//! the grid at decades (with the 2…9 multiples as fainter lines) and label the decades as the
//! values they stand for.

use egui_plot::GridMark;

/// Smallest value drawn on a log axis; keeps `log10` finite for zero or negative inputs.
pub const LOG_FLOOR: f64 = 1e-12;

/// `log10(v)`, with non-positive and non-finite values clamped to [`LOG_FLOOR`] (non-finite
/// errors are treated as the floor too: they never come from a working circuit and would
/// break the plot's bounds).
pub fn log10_clamped(v: f64) -> f64 {
    if v.is_finite() {
        v.max(LOG_FLOOR).log10()
    } else {
        LOG_FLOOR.log10()
    }
}

/// The label of a log-axis grid mark at `exponent` (the plotted `log10` value): the value as
/// a plain number from 0.001 to 1000, otherwise as a power of ten (`10⁻⁶`). Marks that are
/// not whole decades get no label: they are the faint 2…9 lines.
pub fn log_tick_label(exponent: f64) -> String {
    let e = exponent.round();
    if (exponent - e).abs() > 1e-6 {
        return String::new();
    }
    let e = e as i32;
    match e {
        -3..=-1 => format!("{:.*}", (-e) as usize, 10f64.powi(e)),
        0..=3 => format!("{}", 10i32.pow(e as u32)),
        _ => format!("10{}", superscript(e)),
    }
}

/// `n` in Unicode superscript digits (with a superscript minus).
fn superscript(n: i32) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// Grid marks for a log axis showing `log10` values in `[min, max]`: every whole decade
/// (`step_size` 1, drawn strongest and labelled), and the multiples 2…9 of each decade
/// (`step_size` 0.1, faint) unless more than six decades are visible, where they would only
/// add clutter.
pub fn log_grid_marks(min: f64, max: f64) -> Vec<GridMark> {
    let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
    if !(lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let minors = hi - lo <= 6.0;
    let mut marks = Vec::new();
    let first = lo.floor() as i64;
    let last = hi.ceil() as i64;
    for d in first..=last {
        let decade = d as f64;
        if decade >= lo && decade <= hi {
            marks.push(GridMark {
                value: decade,
                step_size: 1.0,
            });
        }
        if minors {
            for k in 2..=9 {
                let v = decade + (k as f64).log10();
                if v >= lo && v <= hi {
                    marks.push(GridMark {
                        value: v,
                        step_size: 0.1,
                    });
                }
            }
        }
    }
    marks
}

/// Headroom (decades) kept between the data and the plot's edge, so a value on a decade
/// (e.g. `M₀ = 1000·I`) is not drawn on the frame.
const BOUNDS_MARGIN: f64 = 0.1;

/// Whole-decade plot bounds `(lo, hi)` covering the `log10` values in `values` and `always`
/// (e.g. the threshold) with a little headroom, at least `min_span` decades wide and clamped
/// to `[floor, ceil]`. Snapping to decades keeps a live plot's axis from jittering frame to
/// frame.
pub fn decade_bounds(
    values: impl IntoIterator<Item = f64>,
    always: &[f64],
    min_span: f64,
    floor: f64,
    ceil: f64,
) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().chain(always.iter().copied()) {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return (floor.max(-1.0), ceil.min(1.0));
    }
    let mut lo = (lo - BOUNDS_MARGIN).floor().max(floor);
    let mut hi = (hi + BOUNDS_MARGIN).ceil().min(ceil);
    // Widen alternately above and below, so the data stays near the middle.
    let mut up = true;
    while hi - lo < min_span && (hi < ceil || lo > floor) {
        if (up && hi < ceil) || lo <= floor {
            hi += 1.0;
        } else {
            lo -= 1.0;
        }
        up = !up;
    }
    (lo, hi)
}

/// `v` with `sig` significant digits, in plain notation from 0.001 to 10⁴ and in scientific
/// notation outside, so values spanning decades (errors, eigenvalues) stay comparable.
pub fn format_sig(v: f64, sig: usize) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs().log10().floor() as i32;
    if (-3..4).contains(&mag) {
        let decimals = (sig as i32 - 1 - mag).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{:.*e}", sig.saturating_sub(1), v)
    }
}

/// A duration for the table and the status line: milliseconds below one second, then
/// seconds with two, then one decimal.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        "—".to_string()
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else if seconds < 10.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// One readaptation cell of the change table: the time if the whitener readapted, "…" while
/// the change's window is open and it has not (yet), "—" if the window closed without it
/// readapting.
pub fn readaptation_cell(readaptation_s: Option<f64>, open: bool) -> String {
    match (readaptation_s, open) {
        (Some(t), _) => format_duration(t),
        (None, true) => "…".to_string(),
        (None, false) => "—".to_string(),
    }
}

/// Ratio of two readaptation times as the table's "speed-up" cell (direct ÷ interneuron):
/// only when both readapted; "—" otherwise, so a missing time is never read as a speed-up.
pub fn speedup_cell(direct_s: Option<f64>, interneuron_s: Option<f64>) -> String {
    match (direct_s, interneuron_s) {
        (Some(d), Some(i)) if i > 0.0 && d.is_finite() => format!("{:.1}×", d / i),
        _ => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decade_labels_read_as_values() {
        assert_eq!(log_tick_label(0.0), "1");
        assert_eq!(log_tick_label(1.0), "10");
        assert_eq!(log_tick_label(3.0), "1000");
        assert_eq!(log_tick_label(-1.0), "0.1");
        assert_eq!(log_tick_label(-3.0), "0.001");
        assert_eq!(log_tick_label(4.0), "10⁴");
        assert_eq!(log_tick_label(-12.0), "10⁻¹²");
        // Floating-point noise from the grid still counts as a decade.
        assert_eq!(log_tick_label(-2.0 + 1e-12), "0.01");
        // The 2…9 lines are unlabelled.
        assert_eq!(log_tick_label(2f64.log10()), "");
        assert_eq!(log_tick_label(0.5), "");
    }

    #[test]
    fn grid_has_decades_and_faint_multiples() {
        let marks = log_grid_marks(-1.0, 1.0);
        let decades: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size == 1.0)
            .map(|m| m.value)
            .collect();
        assert_eq!(decades, vec![-1.0, 0.0, 1.0]);
        // 2…9 in each of the two full decades inside the range.
        assert_eq!(marks.iter().filter(|m| m.step_size == 0.1).count(), 16);
        assert!(marks.iter().all(|m| (-1.0..=1.0).contains(&m.value)));
        // Many decades: no minor lines; reversed or broken input is handled.
        assert!(log_grid_marks(-8.0, 4.0).iter().all(|m| m.step_size == 1.0));
        assert_eq!(log_grid_marks(1.0, -1.0).len(), marks.len());
        assert!(log_grid_marks(f64::NAN, 1.0).is_empty());
    }

    #[test]
    fn bounds_snap_to_decades_and_respect_limits() {
        assert_eq!(decade_bounds([-0.5, 0.3], &[], 1.0, -6.0, 6.0), (-1.0, 1.0));
        // The threshold is always included; a minimum span widens alternately, upwards first.
        assert_eq!(
            decade_bounds([0.2], &[0.2f64.log10()], 3.0, -6.0, 6.0),
            (-1.0, 2.0)
        );
        assert_eq!(decade_bounds([0.5], &[], 3.0, -6.0, 6.0), (-1.0, 2.0));
        // A value on a decade gets headroom.
        assert_eq!(decade_bounds([3.0, 1.2], &[], 1.0, -6.0, 6.0), (1.0, 4.0));
        // At a limit it widens the other way.
        assert_eq!(decade_bounds([5.5], &[], 3.0, -6.0, 6.0), (3.0, 6.0));
        // Clamped at the limits even for huge values.
        assert_eq!(
            decade_bounds([40.0, -40.0], &[], 1.0, -6.0, 6.0),
            (-6.0, 6.0)
        );
        // No data: a sane default inside the limits.
        assert_eq!(decade_bounds([], &[], 1.0, -6.0, 6.0), (-1.0, 1.0));
        assert_eq!(decade_bounds([f64::NAN], &[], 1.0, -6.0, 6.0), (-1.0, 1.0));
    }

    #[test]
    fn log_of_degenerate_values_stays_finite() {
        assert_eq!(log10_clamped(100.0), 2.0);
        assert_eq!(log10_clamped(0.0), -12.0);
        assert_eq!(log10_clamped(-1.0), -12.0);
        assert_eq!(log10_clamped(f64::NAN), -12.0);
    }

    #[test]
    fn significant_digits() {
        assert_eq!(format_sig(0.0123456, 3), "0.0123");
        assert_eq!(format_sig(1.0, 3), "1.00");
        assert_eq!(format_sig(123.456, 3), "123");
        assert_eq!(format_sig(2500.0, 3), "2500");
        assert_eq!(format_sig(0.00012345, 3), "1.23e-4");
        assert_eq!(format_sig(123456.0, 3), "1.23e5");
        assert_eq!(format_sig(0.0, 3), "0");
        assert_eq!(format_sig(f64::INFINITY, 3), "inf");
    }

    #[test]
    fn table_cells() {
        assert_eq!(readaptation_cell(Some(0.4213), true), "421 ms");
        assert_eq!(readaptation_cell(Some(2.345), false), "2.35 s");
        assert_eq!(readaptation_cell(Some(12.34), false), "12.3 s");
        assert_eq!(readaptation_cell(None, true), "…");
        assert_eq!(readaptation_cell(None, false), "—");
        assert_eq!(speedup_cell(Some(3.0), Some(0.5)), "6.0×");
        assert_eq!(speedup_cell(None, Some(0.5)), "—");
        assert_eq!(speedup_cell(Some(3.0), None), "—");
        assert_eq!(speedup_cell(Some(3.0), Some(0.0)), "—");
    }
}
