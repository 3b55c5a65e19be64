//! The egui app: owns the monitor, drains the stats channel once per frame and lays out the
//! header, the controls and the three views.

use super::controls::{self, ReinitPulse, PANEL_WIDTH};
use super::labels::{format_duration, format_sig};
use super::{plots, table, whitener_color, EditorShared, EditorSize, FRAME_INTERVAL};
use crate::engine::HeardView;
use crate::monitor::{Monitor, MonitorSettings};
use crate::whitener::WhitenerKind;
use egui::{CentralPanel, Panel, RichText, TextStyle, Ui, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::baseview::{HandlerError, WindowSize};
use nice_plug_egui::{Frame, NiceEguiApp};
use std::sync::atomic::Ordering;

/// Share of the central area's height given to the error plot; the spectrum and the table
/// share the rest.
const ERROR_PLOT_SHARE: f32 = 0.56;

/// The editor's state on the GUI thread.
pub struct EditorApp {
    shared: EditorShared,
    monitor: Monitor,
    /// nice-plug's context of the open window, for the parameter setter.
    gui: Option<GuiContext>,
    /// The "Re-initialise" button's trigger, released once the audio thread has acted on it.
    reinit: ReinitPulse,
    /// The latest view of what the heard whitener does.
    view: Option<Box<HeardView>>,
}

impl EditorApp {
    /// Allocates the monitor's ring buffers (once, not per window).
    pub fn new(shared: EditorShared) -> Self {
        Self {
            shared,
            monitor: Monitor::new(MonitorSettings::default()),
            gui: None,
            reinit: ReinitPulse::Idle,
            view: None,
        }
    }
}

/// Slightly larger text than egui's defaults: the editor is read at arm's length while
/// listening, and the plot labels use the body size. egui's proportional font (Ubuntu Light)
/// lacks the superscript minus, arrows and ⊤ the axis labels and formulas use; its monospace
/// font (Hack) has them, so it is added as a fallback.
fn set_style(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        family.push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
    ctx.all_styles_mut(|style| {
        for (text_style, font) in style.text_styles.iter_mut() {
            font.size = match text_style {
                TextStyle::Small => 11.5,
                TextStyle::Body | TextStyle::Button => 14.0,
                TextStyle::Monospace => 13.5,
                TextStyle::Heading => 19.0,
                _ => font.size,
            };
        }
        style.spacing.item_spacing = Vec2::new(8.0, 5.0);
    });
}

impl NiceEguiApp for EditorApp {
    /// A window opened: start from a clean monitor. Records still queued were sent before
    /// the previous window closed (stats are off while no editor is open) and would leave a
    /// gap in the timeline, so they are dropped.
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), HandlerError> {
        set_style(&egui_ctx);
        self.gui = Some(nice_gui_ctx);
        while self.shared.stats.try_recv().is_ok() {}
        while self.shared.views.try_recv().is_ok() {}
        self.view = None;
        self.monitor.clear();
        self.reinit = ReinitPulse::Idle;
        self.shared.open.store(true, Ordering::Release);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut Frame) {
        self.monitor.drain(&self.shared.stats);
        while let Ok(v) = self.shared.views.try_recv() {
            match &mut self.view {
                Some(slot) => **slot = v,
                None => self.view = Some(Box::new(v)),
            }
        }
        // Events are for text consumers (`whiten live`); the editor reads the table instead.
        self.monitor.take_events().for_each(drop);
        let Some(gui) = &self.gui else {
            return;
        };
        let setter = gui.param_setter();
        let params = &*self.shared.params;
        let monitor = &self.monitor;
        let done = self.shared.reinitialisations.load(Ordering::Acquire);

        Panel::top("header").show(ui, |ui| {
            ui.add_space(4.0);
            controls::header(ui, params, &setter);
            ui.add_space(4.0);
        });
        Panel::left("controls")
            .exact_size(PANEL_WIDTH)
            .resizable(false)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    let view = self.view.as_deref();
                    controls::panel(ui, params, &setter, &mut self.reinit, done, view);
                });
            });
        CentralPanel::default().show(ui, |ui| views(ui, monitor));

        ui.ctx().request_repaint_after(FRAME_INTERVAL);
    }

    /// Keep the persisted size in step with the window, so the project saves it.
    fn resized(&mut self, new_size: WindowSize) {
        let size = EditorSize {
            width: new_size.logical.width.round() as u32,
            height: new_size.logical.height.round() as u32,
        };
        if let Ok(mut s) = self.shared.params.editor_size.write() {
            *s = size;
        }
    }
}

/// The central area: a status line per whitener, the error plot, and below it the spectrum
/// and the readaptation table side by side.
fn views(ui: &mut Ui, monitor: &Monitor) {
    status_line(ui, monitor);
    let avail = ui.available_size();
    let spacing = ui.spacing().item_spacing;
    let top = ((avail.y - spacing.y) * ERROR_PLOT_SHARE).max(160.0);
    plots::error_plot(ui, monitor, Vec2::new(avail.x, top));
    let bottom = (ui.available_height()).max(120.0);
    ui.horizontal(|ui| {
        let spectrum_w = ((avail.x - spacing.x) * 0.42).max(240.0);
        plots::spectrum_plot(ui, monitor, Vec2::new(spectrum_w, bottom));
        let rest = (ui.available_width()).max(200.0);
        table::change_table(ui, monitor, Vec2::new(rest, bottom));
    });
}

/// One line per whitener with its latest error, condition number κ(M) and state resets (the
/// numbers behind the curves, and the resets that a plot alone would hide), then the input
/// level and the engine's clock. Wrapped, so a
/// narrow window never pushes the plots out of view.
fn status_line(ui: &mut Ui, monitor: &Monitor) {
    ui.horizontal_wrapped(|ui| {
        for kind in WhitenerKind::ALL {
            swatch(ui, whitener_color(kind));
            let text = match monitor.latest(kind) {
                Some(r) => format!(
                    "{kind}   err {}   κ {}   resets {}",
                    format_sig(r.error, 3),
                    format_sig(r.condition, 3),
                    r.resets
                ),
                None => format!("{kind}   —"),
            };
            ui.add(egui::Label::new(RichText::new(text).size(13.0)).extend());
            ui.add_space(10.0);
        }
        let clock = match monitor.latest(WhitenerKind::Baseline) {
            None => "waiting for audio…".to_string(),
            Some(r) => format!(
                "input {:.1} dBFS   t = {}",
                r.input_rms_db,
                format_duration(monitor.now_s())
            ),
        };
        // `extend`: each item moves to the next line as a whole instead of breaking inside.
        ui.add(egui::Label::new(RichText::new(clock).size(13.0).weak()).extend());
    });
}

/// A small filled square in a whitener's colour (the default fonts have no "■").
fn swatch(ui: &mut Ui, color: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), egui::Sense::hover());
    ui.painter().rect_filled(rect, 2.0, color);
}
