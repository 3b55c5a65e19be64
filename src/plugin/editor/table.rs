//! The readaptation table: the recent changes of the input statistics and re-initialisations,
//! newest first, with each whitener's readaptation time — the race in numbers.

use super::labels::{format_duration, readaptation_cell, speedup_cell};
use super::whitener_color;
use crate::monitor::Monitor;
use crate::whitener::WhitenerKind;
use egui::{RichText, Ui, Vec2};

/// Rows shown (the monitor keeps a few more).
const MAX_ROWS: usize = 12;

/// The table, in a frame of `size`. "…" = the change's window is open and the whitener has
/// not readapted yet; "—" = the next change came first; "(n reset)" = the whitener's state was
/// reset n times in the window (its time is then not the learning rule's alone); the last column is
/// the direct circuit's time over the interneuron circuit's, when both readapted.
pub fn change_table(ui: &mut Ui, monitor: &Monitor, size: Vec2) {
    ui.allocate_ui(size, |ui| {
        ui.set_min_size(size);
        ui.vertical(|ui| {
            ui.label(
                RichText::new("Readaptation after changes and re-initialisations")
                    .size(15.0)
                    .strong(),
            );
            ui.label(
                RichText::new(format!(
                    "time until the error stays under {} for {} (… pending, — not readapted)",
                    monitor.settings().threshold,
                    format_duration(monitor.settings().hold_s)
                ))
                .small()
                .weak(),
            );
            ui.add_space(4.0);
            // Both ways: at the smallest window size the columns may not fit.
            egui::ScrollArea::both()
                .auto_shrink([false, false])
                .show(ui, |ui| rows(ui, monitor));
        });
    });
}

fn rows(ui: &mut Ui, monitor: &Monitor) {
    egui::Grid::new("changes")
        .num_columns(2 + WhitenerKind::ALL.len() + 1)
        .striped(true)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            ui.label(RichText::new("change at").strong());
            ui.label(RichText::new("cause").strong());
            for kind in WhitenerKind::ALL {
                ui.label(
                    RichText::new(kind.name())
                        .strong()
                        .color(whitener_color(kind)),
                );
            }
            ui.label(RichText::new("d ÷ i").strong())
                .on_hover_text("Direct circuit's readaptation time ÷ the interneuron circuit's");
            ui.end_row();
            let mut any = false;
            for change in monitor.changes().rev().take(MAX_ROWS) {
                any = true;
                ui.label(RichText::new(format_duration(change.time_s)).monospace());
                ui.label(RichText::new(change.cause.name()).monospace());
                for kind in WhitenerKind::ALL {
                    let mut cell =
                        readaptation_cell(change.readaptation_s[kind.index()], change.open);
                    if change.resets[kind.index()] > 0 {
                        cell += &format!(" ({} reset)", change.resets[kind.index()]);
                    }
                    ui.label(RichText::new(cell).monospace());
                }
                let direct = change.readaptation_s[WhitenerKind::Direct.index()];
                let interneuron = change.readaptation_s[WhitenerKind::Interneuron.index()];
                ui.label(RichText::new(speedup_cell(direct, interneuron)).monospace());
                ui.end_row();
            }
            if !any {
                ui.label(RichText::new("no change or re-initialisation yet").weak());
                ui.end_row();
            }
        });
}
