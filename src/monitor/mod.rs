//! Consumer side of the stats channel (docs/DESIGN.md §6): the readaptation race as numbers. The
//! audio thread only publishes [`StatsRecord`]s; everything here runs elsewhere — in the
//! editor's frame loop, in `whiten live`'s printing thread, after `whiten process`.
//!
//! **Change detection.** The engine marks a record with `change` when its detector
//! ([`crate::engine::ChangeDetector`]) sees the input statistics move: the symmetrised
//! Kullback–Leibler divergence between a fast (30 ms) and a slow (2 s) exponentially weighted
//! input covariance, per dimension, crosses 0.5 (a 2.6× power step, or an equivalent change of
//! colour or mixing); a 0.3 s hold-off keeps one change from being reported twice. It runs on
//! the audio thread because it needs every input vector, which the stats channel does not
//! carry; the monitor takes its events from the records.
//!
//! **Readaptation time.** After a change at `t₀`, a whitener has readapted at the first time
//! `t` at which its whitening error is under `threshold` and stays there for `hold_s`; the
//! readaptation time is `t − t₀`. The window of a change closes at the next change; a
//! whitener still (or again) under the threshold when it closes counts as readapted even if
//! the hold was cut short, one that is over it has not readapted (`None`).
//!
//! [`Monitor`] computes this online over fixed-size ring buffers; [`readaptation_table`]
//! computes it over a whole recording with the same state machine, so a live monitor and an
//! offline report give the same numbers for the same records.

use crate::engine::StatsRecord;
use crate::whitener::WhitenerKind;
use crossbeam_channel::Receiver;
use serde::Serialize;
use std::collections::VecDeque;

/// Default error threshold under which a whitener counts as adapted. The error estimate is
/// taken over a ~50 ms window, whose sampling noise alone is a few percent; 0.2 sits well above
/// that floor and well below the error right after any audible change.
pub const DEFAULT_THRESHOLD: f64 = 0.2;
/// How long the error must stay under the threshold for the readaptation to count.
pub const DEFAULT_HOLD_S: f64 = 0.25;

/// The readaptation state machine of one whitener after one change.
#[derive(Clone, Copy, Debug, Default)]
struct Tracker {
    /// Start of the current run of records under the threshold.
    candidate: Option<f64>,
    /// Set once the run has lasted `hold_s`: the readaptation time.
    settled: Option<f64>,
}

impl Tracker {
    /// Feed one record of this whitener (time after the change). Returns the readaptation
    /// time when it settles with this record.
    fn feed(
        &mut self,
        change_s: f64,
        time_s: f64,
        error: f64,
        settings: &Thresholds,
    ) -> Option<f64> {
        if self.settled.is_some() {
            return None;
        }
        if error < settings.threshold && error.is_finite() {
            let start = *self.candidate.get_or_insert(time_s);
            if time_s - start >= settings.hold_s {
                self.settled = Some(start - change_s);
                return self.settled;
            }
        } else {
            self.candidate = None;
        }
        None
    }

    /// The result when the window closes.
    fn close(&self, change_s: f64) -> Option<f64> {
        self.settled
            .or(self.candidate.map(|start| start - change_s))
    }
}

/// Threshold and hold of the readaptation criterion.
#[derive(Clone, Copy, Debug)]
struct Thresholds {
    threshold: f64,
    hold_s: f64,
}

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
    let th = Thresholds { threshold, hold_s };
    let mut tracker = Tracker::default();
    for r in records
        .iter()
        .filter(|r| r.circuit == kind && r.time_s > change_s && r.time_s <= until_s)
    {
        if let Some(t) = tracker.feed(change_s, r.time_s, r.error, &th) {
            return Some(t);
        }
    }
    tracker.close(change_s)
}

/// What started a readaptation window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChangeCause {
    /// The engine's detector saw the input statistics change.
    #[default]
    Input,
    /// Every whitener was re-initialised at `M₀ = s·I` — the paper's experiment, live.
    Reinit,
}

impl ChangeCause {
    /// The word used in tables and text output.
    pub fn name(self) -> &'static str {
        match self {
            ChangeCause::Input => "input",
            ChangeCause::Reinit => "re-init",
        }
    }
}

/// One row of the readaptation table: a change and each whitener's readaptation time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangeReport {
    /// When the change happened (s).
    pub time_s: f64,
    /// What it was: a change of the input, or a re-initialisation.
    pub cause: ChangeCause,
    /// Readaptation time per whitener, in [`WhitenerKind::ALL`] order; `None` = not (yet)
    /// readapted.
    pub readaptation_s: [Option<f64>; WhitenerKind::ALL.len()],
    /// State resets of each whitener within the window (a reset restarts a whitener from its
    /// initial state mid-race, so its readaptation time is not the learning rule's alone).
    pub resets: [u64; WhitenerKind::ALL.len()],
    /// Whether the window is still open (a live monitor's latest change): a `None` may still
    /// become a time.
    pub open: bool,
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
                cause: ChangeCause::Input,
                readaptation_s: WhitenerKind::ALL
                    .map(|k| readaptation_time(records, k, t, until, threshold, hold_s)),
                resets: [0; WhitenerKind::ALL.len()],
                open: false,
            }
        })
        .collect()
}

/// What the monitor noticed, in order, for text output (`whiten live`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// The engine detected a change of the input statistics, or the whiteners were
    /// re-initialised: a readaptation window opens.
    Change {
        /// When (s).
        time_s: f64,
        /// Input change or re-initialisation.
        cause: ChangeCause,
    },
    /// A whitener's state was reset to its initial scale (it became non-finite).
    Reset {
        /// Which whitener.
        circuit: WhitenerKind,
        /// When (s).
        time_s: f64,
    },
    /// A whitener readapted after the change at `change_s`.
    Readapted {
        /// Which whitener.
        circuit: WhitenerKind,
        /// The change (s).
        change_s: f64,
        /// Its readaptation time (s).
        after_s: f64,
    },
    /// The next change came before this whitener readapted.
    NotReadapted {
        /// Which whitener.
        circuit: WhitenerKind,
        /// The change (s).
        change_s: f64,
    },
}

/// Sizes and criterion of a [`Monitor`].
#[derive(Clone, Copy, Debug)]
pub struct MonitorSettings {
    /// Error threshold of the readaptation criterion.
    pub threshold: f64,
    /// Hold of the readaptation criterion, s.
    pub hold_s: f64,
    /// Records kept per whitener (at one record per 10 ms, 3000 = the last 30 s).
    pub history_len: usize,
    /// Changes kept in the table.
    pub max_changes: usize,
    /// Events kept until taken.
    pub max_events: usize,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            hold_s: DEFAULT_HOLD_S,
            history_len: 3000,
            max_changes: 16,
            max_events: 256,
        }
    }
}

impl MonitorSettings {
    /// For a report over a whole recording: every change kept, no history.
    pub fn whole_recording() -> Self {
        Self {
            max_changes: usize::MAX,
            history_len: 1,
            ..Self::default()
        }
    }
}

/// Every change in `records` with each whitener's readaptation time, as a [`Monitor`] fed
/// with them reports once the recording has ended.
pub fn monitor_table(records: &[StatsRecord]) -> Vec<ChangeReport> {
    let mut monitor = Monitor::new(MonitorSettings::whole_recording());
    for r in records {
        monitor.push(r);
    }
    monitor.finish();
    monitor.changes().cloned().collect()
}

/// An extra column of the readaptation table: its heading and how to fill a row's cell.
pub type ExtraColumn<'a> = (&'a str, &'a dyn Fn(&ChangeReport) -> String);

/// The readaptation table as text, one row per change: its time, an optional extra column
/// and each whitener's readaptation time.
pub fn format_table(rows: &[ChangeReport], extra: Option<ExtraColumn<'_>>) -> String {
    let cell = |row: &ChangeReport, k: usize| {
        let t =
            row.readaptation_s[k].map_or_else(|| "not within".to_string(), |t| format!("{t:.2}"));
        match row.resets[k] {
            0 => t,
            r => format!("{t} ({r} reset{})", if r == 1 { "" } else { "s" }),
        }
    };
    let mut s = format!(
        "readaptation time (s) after each detected change and re-initialisation: error back \
         under {DEFAULT_THRESHOLD} for {DEFAULT_HOLD_S} s\n{:>9} {:>7} {}{:>12} {:>11} {:>11} {:>11}\n",
        "time",
        "cause",
        extra.map_or(String::new(), |(h, _)| format!("{h:>11} ")),
        "direct",
        "interneuron",
        "baseline",
        "gain"
    );
    for row in rows {
        s.push_str(&format!(
            "{:>8.2}s {:>7} {}{:>12} {:>11} {:>11} {:>11}\n",
            row.time_s,
            row.cause.name(),
            extra.map_or(String::new(), |(_, f)| format!("{:>11} ", f(row))),
            cell(row, 0),
            cell(row, 1),
            cell(row, 2),
            cell(row, 3),
        ));
    }
    s
}

/// One change and its readaptation trackers.
#[derive(Clone, Debug)]
struct ChangeWindow {
    report: ChangeReport,
    trackers: [Tracker; WhitenerKind::ALL.len()],
}

/// The online monitor: per-whitener histories in ring buffers, the changes the engine
/// reported, and each whitener's readaptation time after each change. Memory is bounded by
/// [`MonitorSettings`]; feeding it is O(1) per record.
#[derive(Clone, Debug)]
pub struct Monitor {
    settings: MonitorSettings,
    /// Records per whitener, oldest first, at most `history_len`.
    history: [VecDeque<StatsRecord>; WhitenerKind::ALL.len()],
    /// Recent changes, oldest first, at most `max_changes`; only the newest can be open, but
    /// records stamped at its own time still belong to the one before.
    changes: VecDeque<ChangeWindow>,
    /// Events not yet taken, oldest first.
    events: VecDeque<MonitorEvent>,
    /// Records consumed.
    received: u64,
    /// Events dropped because nobody took them.
    events_dropped: u64,
}

impl Monitor {
    /// An empty monitor. Allocates its ring buffers up front.
    pub fn new(settings: MonitorSettings) -> Self {
        let settings = MonitorSettings {
            history_len: settings.history_len.max(1),
            max_changes: settings.max_changes.max(1),
            max_events: settings.max_events.max(1),
            ..settings
        };
        Self {
            history: std::array::from_fn(|_| VecDeque::with_capacity(settings.history_len)),
            // Bounded by the settings, but an offline table may ask for "all" changes.
            changes: VecDeque::with_capacity(settings.max_changes.min(64) + 1),
            events: VecDeque::with_capacity(settings.max_events.min(1024)),
            received: 0,
            events_dropped: 0,
            settings,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Forget everything (e.g. after the engine was rebuilt and its clock restarted).
    pub fn clear(&mut self) {
        for h in &mut self.history {
            h.clear();
        }
        self.changes.clear();
        self.events.clear();
    }

    /// Take every record waiting in the channel; returns how many.
    pub fn drain(&mut self, rx: &Receiver<StatsRecord>) -> usize {
        let mut n = 0;
        while let Ok(r) = rx.try_recv() {
            self.push(&r);
            n += 1;
        }
        n
    }

    /// Consume one record.
    pub fn push(&mut self, r: &StatsRecord) {
        let idx = r.circuit.index();
        // An engine restarted its clock: start over rather than mix two timelines.
        if self.history[idx]
            .back()
            .is_some_and(|last| r.time_s < last.time_s)
        {
            self.clear();
        }
        self.received += 1;
        let th = Thresholds {
            threshold: self.settings.threshold,
            hold_s: self.settings.hold_s,
        };
        // Records after the newest change close the windows before it.
        if let Some(newest) = self.changes.back().map(|c| c.report.time_s) {
            if r.time_s > newest {
                for i in 0..self.changes.len() - 1 {
                    if self.changes[i].report.open {
                        self.close_window(i);
                    }
                }
                self.trim_changes();
            }
        }
        // The window this record belongs to: the newest change strictly before it.
        if let Some(w) = self
            .changes
            .iter_mut()
            .rev()
            .find(|c| c.report.time_s < r.time_s)
        {
            if w.report.open {
                let change_s = w.report.time_s;
                if let Some(after_s) = w.trackers[idx].feed(change_s, r.time_s, r.error, &th) {
                    w.report.readaptation_s[idx] = Some(after_s);
                    let ev = MonitorEvent::Readapted {
                        circuit: r.circuit,
                        change_s,
                        after_s,
                    };
                    self.emit(ev);
                }
            }
        }
        // A reset shows as a rise of the whitener's cumulative count.
        let previous = self.history[idx].back().map_or(0, |p| p.resets);
        if r.resets > previous {
            if let Some(w) = self
                .changes
                .iter_mut()
                .rev()
                .find(|c| c.report.time_s < r.time_s)
            {
                w.report.resets[idx] += r.resets - previous;
            }
            self.emit(MonitorEvent::Reset {
                circuit: r.circuit,
                time_s: r.time_s,
            });
        }
        if (r.change || r.reinit)
            && self
                .changes
                .back()
                .is_none_or(|c| r.time_s > c.report.time_s)
        {
            // A re-initialisation is the cause when both coincide: it is what the user did.
            let cause = if r.reinit {
                ChangeCause::Reinit
            } else {
                ChangeCause::Input
            };
            self.changes.push_back(ChangeWindow {
                report: ChangeReport {
                    time_s: r.time_s,
                    cause,
                    readaptation_s: [None; WhitenerKind::ALL.len()],
                    resets: [0; WhitenerKind::ALL.len()],
                    open: true,
                },
                trackers: [Tracker::default(); WhitenerKind::ALL.len()],
            });
            self.emit(MonitorEvent::Change {
                time_s: r.time_s,
                cause,
            });
            self.trim_changes();
        }
        let h = &mut self.history[idx];
        if h.len() == self.settings.history_len {
            h.pop_front();
        }
        h.push_back(*r);
    }

    /// Close every window (end of a recording): an open window's whitener that is under the
    /// threshold now counts as readapted.
    pub fn finish(&mut self) {
        for i in 0..self.changes.len() {
            if self.changes[i].report.open {
                self.close_window(i);
            }
        }
        self.trim_changes();
    }

    fn close_window(&mut self, i: usize) {
        let w = &mut self.changes[i];
        w.report.open = false;
        let change_s = w.report.time_s;
        let mut events = [None; WhitenerKind::ALL.len()];
        for kind in WhitenerKind::ALL {
            let k = kind.index();
            if w.trackers[k].settled.is_some() {
                continue;
            }
            let result = w.trackers[k].close(change_s);
            w.report.readaptation_s[k] = result;
            events[k] = Some(match result {
                Some(after_s) => MonitorEvent::Readapted {
                    circuit: kind,
                    change_s,
                    after_s,
                },
                None => MonitorEvent::NotReadapted {
                    circuit: kind,
                    change_s,
                },
            });
        }
        for ev in events.into_iter().flatten() {
            self.emit(ev);
        }
    }

    /// Keep the newest `max_changes`, plus an older one while it is open (it may still get
    /// records stamped at the newest change's time).
    fn trim_changes(&mut self) {
        while self.changes.len() > self.settings.max_changes
            && !self.changes.front().is_some_and(|c| c.report.open)
        {
            self.changes.pop_front();
        }
    }

    fn emit(&mut self, ev: MonitorEvent) {
        if self.events.len() == self.settings.max_events {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(ev);
    }

    /// Take the events noticed since the last call, oldest first.
    pub fn take_events(&mut self) -> impl Iterator<Item = MonitorEvent> + '_ {
        self.events.drain(..)
    }

    /// A whitener's recent records, oldest first.
    pub fn history(&self, kind: WhitenerKind) -> impl DoubleEndedIterator<Item = &StatsRecord> {
        self.history[kind.index()].iter()
    }

    /// A whitener's records with `time_s > from_s`, oldest first.
    pub fn since(&self, kind: WhitenerKind, from_s: f64) -> impl Iterator<Item = &StatsRecord> {
        let h = &self.history[kind.index()];
        let start = h.partition_point(|r| r.time_s <= from_s);
        h.range(start..)
    }

    /// A whitener's newest record.
    pub fn latest(&self, kind: WhitenerKind) -> Option<&StatsRecord> {
        self.history[kind.index()].back()
    }

    /// The whitener currently heard, from the newest records.
    pub fn selected(&self) -> Option<WhitenerKind> {
        WhitenerKind::ALL
            .into_iter()
            .find(|k| self.latest(*k).is_some_and(|r| r.selected))
    }

    /// Time of the newest record (s of audio processed), 0 before any.
    pub fn now_s(&self) -> f64 {
        self.history
            .iter()
            .filter_map(|h| h.back())
            .map(|r| r.time_s)
            .fold(0.0, f64::max)
    }

    /// The recent changes with each whitener's readaptation time, oldest first.
    pub fn changes(&self) -> impl DoubleEndedIterator<Item = &ChangeReport> {
        self.changes.iter().map(|c| &c.report)
    }

    /// Records consumed so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Events dropped because [`Monitor::take_events`] was not called often enough.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }
}
