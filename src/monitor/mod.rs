//! Consumer side of the stats channel: readaptation times after changes of the input
//! statistics (DESIGN.md §4). The audio thread only publishes [`StatsRecord`]s; everything
//! here runs elsewhere.

use crate::engine::{StatsRecord, WhitenerKind};
use serde::Serialize;

/// Default error threshold under which a whitener counts as adapted. The error estimate is
/// taken over a ~50 ms window, whose sampling noise alone is a few percent; 0.2 sits well above
/// that floor and well below the error right after any audible change.
pub const DEFAULT_THRESHOLD: f64 = 0.2;
/// How long the error must stay under the threshold for the readaptation to count.
pub const DEFAULT_HOLD_S: f64 = 0.25;

/// The readaptation time of one whitener after a change at `change_s`: the time from the
/// change until its error is back under `threshold` and stays there for `hold_s` (or until
/// `until_s`, the next change, if that comes first). `None` if that never happens before
/// `until_s`.
pub fn readaptation_time(
    records: &[StatsRecord],
    kind: WhitenerKind,
    change_s: f64,
    until_s: f64,
    threshold: f64,
    hold_s: f64,
) -> Option<f64> {
    let mut candidate: Option<f64> = None;
    for r in records
        .iter()
        .filter(|r| r.circuit == kind && r.time_s > change_s && r.time_s <= until_s)
    {
        if r.error < threshold && r.error.is_finite() {
            let start = *candidate.get_or_insert(r.time_s);
            if r.time_s - start >= hold_s {
                return Some(start - change_s);
            }
        } else {
            candidate = None;
        }
    }
    // Adapted and still adapted when the window closed, even if shorter than the hold.
    candidate.map(|start| start - change_s)
}

/// One row of the readaptation table: a change and each whitener's readaptation time.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeReport {
    /// When the change happened (s).
    pub time_s: f64,
    /// Readaptation time per whitener, in [`WhitenerKind::ALL`] order; `None` = not within
    /// the window.
    pub readaptation_s: [Option<f64>; 3],
}

/// Readaptation times for a list of change times (each window ends at the next change or at
/// `end_s`).
pub fn readaptation_table(
    records: &[StatsRecord],
    changes: &[f64],
    end_s: f64,
    threshold: f64,
    hold_s: f64,
) -> Vec<ChangeReport> {
    changes
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let until = changes.get(i + 1).copied().unwrap_or(end_s);
            ChangeReport {
                time_s: t,
                readaptation_s: WhitenerKind::ALL
                    .map(|k| readaptation_time(records, k, t, until, threshold, hold_s)),
            }
        })
        .collect()
}
