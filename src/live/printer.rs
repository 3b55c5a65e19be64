//! The text face of the [`Monitor`]: one line per second of audio per whitener (the one
//! heard marked `*`) with the input level, the mean whitening error over that second and the
//! whitener's latest readaptation event, plus a `change detected at` line for every change of
//! the input statistics.

use crate::engine::{db_to_amp, power_to_db, StatsRecord};
use crate::monitor::{ChangeCause, Monitor, MonitorEvent, MonitorSettings};
use crate::whitener::WhitenerKind;
use anyhow::Result;
use crossbeam_channel::Receiver;
use std::io::Write;

/// The main thread's side of the stats channel: the engine's records, the monitor that reads
/// them and the printer that reports them.
pub(super) struct Report {
    /// Stats records from the engine (sent with `try_send` by the output callback).
    stats: Receiver<StatsRecord>,
    /// The readaptation race over the records received so far.
    monitor: Monitor,
    /// What of the race has been printed.
    printer: Printer,
}

impl Report {
    /// A report on the records `stats` will receive.
    pub(super) fn new(stats: Receiver<StatsRecord>) -> Self {
        Self {
            stats,
            monitor: Monitor::new(MonitorSettings::default()),
            printer: Printer::new(),
        }
    }

    /// Take the records sent so far and print every second of audio they complete.
    pub(super) fn update(&mut self, out: &mut impl Write) -> Result<()> {
        self.monitor.drain(&self.stats);
        self.printer.print_ready(&mut self.monitor, out)
    }

    /// Stats records received so far.
    pub(super) fn received(&self) -> u64 {
        self.monitor.received()
    }

    /// After the streams stopped: the last records, the last seconds, and the events no line
    /// has shown yet.
    pub(super) fn finish(mut self, out: &mut impl Write) -> Result<()> {
        self.update(out)?;
        self.monitor.finish();
        self.printer.print_rest(&mut self.monitor, out)
    }
}

/// A readaptation event as text.
fn describe(ev: &MonitorEvent) -> String {
    match ev {
        MonitorEvent::Readapted {
            change_s, after_s, ..
        } => format!("readapted {after_s:.2} s after change at {change_s:.1} s"),
        MonitorEvent::NotReadapted { change_s, .. } => {
            format!("not readapted after change at {change_s:.1} s before the next one")
        }
        MonitorEvent::Change {
            time_s,
            cause: ChangeCause::Input,
        } => format!("change detected at {time_s:.2} s"),
        MonitorEvent::Change {
            time_s,
            cause: ChangeCause::Reinit,
        } => format!("re-initialised at {time_s:.2} s"),
        MonitorEvent::Reset { circuit, time_s } => {
            format!("{circuit} reset to its initial state at {time_s:.2} s")
        }
    }
}

/// Per-whitener text state between printed seconds.
struct Printer {
    /// The next second of audio to report.
    next_s: f64,
    /// Readaptation events not printed yet, per whitener.
    pending: [Option<MonitorEvent>; WhitenerKind::ALL.len()],
    /// Changes, re-initialisations and resets not printed yet, with their times.
    changes: Vec<(f64, MonitorEvent)>,
}

impl Printer {
    fn new() -> Self {
        Self {
            next_s: 1.0,
            pending: [None; WhitenerKind::ALL.len()],
            changes: Vec::new(),
        }
    }

    fn take_events(&mut self, monitor: &mut Monitor) {
        for ev in monitor.take_events() {
            match ev {
                MonitorEvent::Change { time_s, .. } | MonitorEvent::Reset { time_s, .. } => {
                    self.changes.push((time_s, ev))
                }
                MonitorEvent::Readapted { circuit, .. }
                | MonitorEvent::NotReadapted { circuit, .. } => {
                    self.pending[circuit.index()] = Some(ev)
                }
            }
        }
    }

    /// Print every whole second of audio the monitor has complete records for.
    fn print_ready(&mut self, monitor: &mut Monitor, out: &mut impl Write) -> Result<()> {
        self.take_events(monitor);
        while monitor.now_s() >= self.next_s - 1e-9 {
            let t = self.next_s;
            self.print_second(monitor, t, out)?;
            self.next_s += 1.0;
        }
        out.flush()?;
        Ok(())
    }

    /// At the end: the changes and readaptation events no per-second line has shown.
    fn print_rest(&mut self, monitor: &mut Monitor, out: &mut impl Write) -> Result<()> {
        self.take_events(monitor);
        self.print_changes_until(f64::INFINITY, out)?;
        for kind in WhitenerKind::ALL {
            if let Some(ev) = self.pending[kind.index()].take() {
                writeln!(out, "  at stop  {:<12}  {}", kind.name(), describe(&ev))?;
            }
        }
        out.flush()?;
        Ok(())
    }

    fn print_changes_until(&mut self, t: f64, out: &mut impl Write) -> Result<()> {
        let mut rest = Vec::new();
        for &(c, ev) in &self.changes {
            if c <= t + 1e-9 {
                writeln!(out, "{c:6.1} s  {}", describe(&ev))?;
            } else {
                rest.push((c, ev));
            }
        }
        self.changes = rest;
        Ok(())
    }

    fn print_second(&mut self, monitor: &Monitor, t: f64, out: &mut impl Write) -> Result<()> {
        self.print_changes_until(t, out)?;
        let selected = monitor.selected();
        for kind in WhitenerKind::ALL {
            let (mut power, mut error, mut n) = (0.0, 0.0, 0usize);
            for r in monitor
                .since(kind, t - 1.0 - 1e-9)
                .take_while(|r| r.time_s <= t + 1e-9)
            {
                power += db_to_amp(r.input_rms_db).powi(2);
                error += r.error;
                n += 1;
            }
            if n == 0 {
                continue;
            }
            let name = format!(
                "{}{}",
                kind.name(),
                if selected == Some(kind) { "*" } else { "" }
            );
            let event = self.pending[kind.index()]
                .take()
                .map(|ev| format!("  {}", describe(&ev)))
                .unwrap_or_default();
            writeln!(
                out,
                "{t:6.1} s  {name:<12}  level {:6.1} dBFS  error {:.3}{event}",
                power_to_db(power / n as f64),
                error / n as f64,
            )?;
        }
        Ok(())
    }
}
