//! Parameter controls: the header with the circuit switch, and the side panel with every other
//! parameter. Every change goes through nice-plug's [`ParamSetter`] (begin / set / end), so
//! the host records automation and undo exactly as for its own controls.

use super::{heard, whitener_color};
use crate::engine::Framing;
use crate::engine::HeardView;
use crate::plugin::params::WhiteningParams;
use crate::whitener::WhitenerKind;
use egui::{Button, Color32, RichText, Ui, Vec2};
use nice_plug::prelude::{BoolParam, Enum, EnumParam, Param, ParamSetter};
use nice_plug_egui::widgets::ParamSlider;

/// Width of the parameter sliders in the side panel.
const SLIDER_WIDTH: f32 = 120.0;
/// Width of the side panel holding the controls.
pub const PANEL_WIDTH: f32 = 350.0;

/// How long the "Re-initialise" button waits for the audio thread to act on the trigger
/// before releasing it anyway (e.g. no audio is running).
const REINIT_GIVE_UP_S: f64 = 2.0;
/// How long the trigger stays off before it is raised again when it was found on: longer
/// than any host block, so the plugin sees the off state and then the rising edge.
const REINIT_SETTLE_S: f64 = 0.25;

/// Drives the re-initialise trigger parameter from a button. The plugin re-initialises on a
/// rising edge of the parameter (a plugin API has no "action", only parameters), so the
/// button raises it, waits until the audio thread has counted a re-initialisation, and
/// lowers it again to arm the next press. Pure state, so its timing is unit-tested.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReinitPulse {
    /// Nothing in progress.
    #[default]
    Idle,
    /// The trigger was raised at `since` (s); waiting for the count to pass `done_before`.
    Raised {
        /// Re-initialisations counted when the trigger was raised.
        done_before: u64,
        /// When it was raised.
        since: f64,
    },
    /// The trigger was already on when pressed (e.g. automation): it was lowered at `since`
    /// and is raised again once the plugin has had time to see it off.
    Lowering {
        /// When it was lowered.
        since: f64,
    },
}

impl ReinitPulse {
    /// The button was pressed at `now` with the trigger at `value` and `done`
    /// re-initialisations so far. Returns the value to write, if any.
    pub fn press(&mut self, now: f64, value: bool, done: u64) -> Option<bool> {
        if *self != ReinitPulse::Idle {
            return None;
        }
        if value {
            *self = ReinitPulse::Lowering { since: now };
            Some(false)
        } else {
            *self = ReinitPulse::Raised {
                done_before: done,
                since: now,
            };
            Some(true)
        }
    }

    /// Advance once per frame. Returns the value to write, if any.
    pub fn poll(&mut self, now: f64, value: bool, done: u64) -> Option<bool> {
        match *self {
            ReinitPulse::Idle => None,
            ReinitPulse::Raised { done_before, since } => {
                if done > done_before || now - since > REINIT_GIVE_UP_S {
                    *self = ReinitPulse::Idle;
                    Some(false)
                } else {
                    None
                }
            }
            ReinitPulse::Lowering { since } => {
                if !value && now - since >= REINIT_SETTLE_S {
                    *self = ReinitPulse::Raised {
                        done_before: done,
                        since: now,
                    };
                    Some(true)
                } else if now - since > REINIT_GIVE_UP_S {
                    *self = ReinitPulse::Idle;
                    None
                } else {
                    None
                }
            }
        }
    }

    /// Whether a re-initialisation is in progress (the button shows it).
    pub fn busy(&self) -> bool {
        *self != ReinitPulse::Idle
    }
}

/// Set a parameter as one gesture, the way a host expects a click (not a drag) to arrive.
fn set_param<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// The top bar: the product name, the circuit switch (which whitener is heard — the main
/// thing a user does while listening, so it is big and coloured like its curve), bypass and
/// learning.
pub fn header(ui: &mut Ui, params: &WhiteningParams, setter: &ParamSetter) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Interneuron Whitening").size(20.0).strong());
        ui.add_space(24.0);
        ui.label(RichText::new("Heard:").size(16.0));
        let current = params.circuit.value();
        for kind in WhitenerKind::ALL {
            let selected = current == kind;
            let name = kind.label();
            let text = RichText::new(name).size(16.0).strong();
            let text = if selected {
                text.color(Color32::BLACK)
            } else {
                text.color(whitener_color(kind))
            };
            let mut button = Button::selectable(selected, text).min_size(Vec2::new(130.0, 30.0));
            if selected {
                button = button.fill(whitener_color(kind));
            }
            if ui
                .add(button)
                .on_hover_text(
                    "Which whitener feeds the output; all four always run. The gain-modulating \
                     circuit whitens up to 8 channels (above, one interneuron per channel only \
                     equalises levels)",
                )
                .clicked()
                && !selected
            {
                set_param(setter, &params.circuit, kind);
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            bool_button(
                ui,
                setter,
                &params.bypass,
                "Bypass",
                Color32::from_rgb(200, 60, 60),
            );
            bool_button(
                ui,
                setter,
                &params.learning,
                "Learning",
                Color32::from_rgb(60, 150, 80),
            )
            .on_hover_text("Off freezes every whitener's state");
        });
    });
}

/// A toggle button for a boolean parameter, filled with `on_color` while on.
fn bool_button(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &BoolParam,
    label: &str,
    on_color: Color32,
) -> egui::Response {
    let on = param.value();
    let text = RichText::new(label).size(15.0);
    let mut button = Button::selectable(on, text).min_size(Vec2::new(90.0, 28.0));
    if on {
        button = button.fill(on_color);
    }
    let response = ui.add(button);
    if response.clicked() {
        set_param(setter, param, !on);
    }
    response
}

/// Buttons choosing one value of an enum parameter (framing).
fn enum_buttons<T: Enum + PartialEq + Copy + 'static>(
    ui: &mut Ui,
    setter: &ParamSetter,
    param: &EnumParam<T>,
) {
    let current = param.value();
    ui.horizontal(|ui| {
        for (i, name) in T::variants().iter().enumerate() {
            let value = T::from_index(i);
            if ui.selectable_label(current == value, *name).clicked() && current != value {
                set_param(setter, param, value);
            }
        }
    });
}

/// One labelled slider row of a [`egui::Grid`]; `hint` explains what the parameter does.
fn slider_row<P: Param>(ui: &mut Ui, setter: &ParamSetter, param: &P, hint: &str) {
    ui.label(param.name()).on_hover_text(hint);
    ui.add(ParamSlider::for_param(param, setter).with_width(SLIDER_WIDTH));
    ui.end_row();
}

/// A titled group of controls.
fn section(ui: &mut Ui, title: &str, note: &str, add: impl FnOnce(&mut Ui)) {
    ui.add_space(6.0);
    ui.label(RichText::new(title).size(15.0).strong());
    if !note.is_empty() {
        ui.label(RichText::new(note).small().weak());
    }
    ui.add_space(2.0);
    add(ui);
}

/// The side panel: every parameter except the circuit, bypass and learning (in the header),
/// grouped by what changing it does.
pub fn panel(
    ui: &mut Ui,
    params: &WhiteningParams,
    setter: &ParamSetter,
    reinit: &mut ReinitPulse,
    reinitialisations: u64,
    view: Option<&HeardView>,
) {
    let now = ui.input(|i| i.time);
    if let Some(v) = reinit.poll(now, params.reinitialise.value(), reinitialisations) {
        set_param(setter, &params.reinitialise, v);
    }

    section(
        ui,
        "Re-initialise",
        "The paper's experiment: restart every whitener at M₀ = s·I",
        |ui| {
            egui::Grid::new("reinit").num_columns(2).show(ui, |ui| {
                slider_row(
                    ui,
                    setter,
                    &params.init_scale_log10,
                    "Initial scale s of M₀ = s·I",
                );
            });
            let label = format!("Re-initialise at s = {}", params.init_scale_log10);
            let button = Button::new(RichText::new(label).size(15.0).strong())
                .min_size(Vec2::new(PANEL_WIDTH - 24.0, 30.0));
            let response = ui.add_enabled(!reinit.busy(), button);
            if response.clicked() {
                if let Some(v) = reinit.press(now, params.reinitialise.value(), reinitialisations) {
                    set_param(setter, &params.reinitialise, v);
                }
            }
        },
    );

    section(ui, "Adaptation", "", |ui| {
        egui::Grid::new("adaptation").num_columns(2).show(ui, |ui| {
            slider_row(
                ui,
                setter,
                &params.tau_ms,
                "Time unit of the learning dynamics (η = 1/(τ·rate)); not the time to converge",
            );
        });
        // What the whiteners learn from (docs/DESIGN.md §3.8).
        bool_button(
            ui,
            setter,
            &params.sidechain,
            "Sidechain learning",
            Color32::from_rgb(70, 110, 170),
        )
        .on_hover_text(
            "Learn the whitening from the sidechain input and apply it to the main input; \
             with nothing connected there, nothing is learned",
        );
    });

    section(
        ui,
        "Levels",
        "Reference level and floor change live; the circuits readapt",
        |ui| {
            egui::Grid::new("levels").num_columns(2).show(ui, |ui| {
                slider_row(
                    ui,
                    setter,
                    &params.reference_db,
                    "Input is divided by this RMS: the absolute scale the direct circuit depends on",
                );
                slider_row(
                    ui,
                    setter,
                    &params.noise_floor_db,
                    "The circuits whiten C + ε²I, so silence never makes M singular",
                );
                slider_row(ui, setter, &params.output_db, "RMS of each whitened channel");
                slider_row(ui, setter, &params.dry_wet, "0 % = dry input, 100 % = whitened");
            });
        },
    );

    section(
        ui,
        "What is heard",
        "Shapes the output only: the circuits learn the same",
        |ui| {
            egui::Grid::new("heard").num_columns(2).show(ui, |ui| {
                slider_row(
                    ui,
                    setter,
                    &params.depth,
                    "Partial whitening: the output covariance is C^(1−depth)",
                );
                ui.label(params.delta.name())
                    .on_hover_text("Hear only what the whitener changes: output − dry");
                bool_button(
                    ui,
                    setter,
                    &params.delta,
                    if params.delta.value() { "On" } else { "Off" },
                    Color32::from_rgb(170, 120, 200),
                );
                ui.end_row();
            });
            let spectral = params.framing.value() == Framing::Spectral;
            ui.add_enabled_ui(spectral, |ui| {
                egui::Grid::new("heard_spectral")
                    .num_columns(2)
                    .show(ui, |ui| {
                        slider_row(
                            ui,
                            setter,
                            &params.tilt,
                            "Target slope in dB/octave: 0 = white, −3 = pink (spectral framing)",
                        );
                        slider_row(
                            ui,
                            setter,
                            &params.low_limit_hz,
                            "Bins below pass through dry; 20 Hz = no limit (spectral framing)",
                        );
                        slider_row(
                            ui,
                            setter,
                            &params.high_limit_hz,
                            "Bins above pass through dry; 20 kHz = no limit (spectral framing)",
                        );
                    });
            });
            let caption = if spectral {
                "Gain per band, input at the reference level → output"
            } else {
                "Matrix from input to output (rows: outputs)"
            };
            ui.label(RichText::new(caption).small().weak());
            heard::heard_view(ui, view, PANEL_WIDTH - 24.0);
        },
    );

    section(
        ui,
        "Structure",
        "Changing these builds a new engine: learned state restarts",
        |ui| {
            ui.horizontal(|ui| {
                ui.label(params.framing.name()).on_hover_text(
                    "Channels: zero latency. Spectral: per-band, latency = FFT size",
                );
                enum_buttons::<Framing>(ui, setter, &params.framing);
            });
            egui::Grid::new("structure").num_columns(2).show(ui, |ui| {
                slider_row(
                    ui,
                    setter,
                    &params.fft_order,
                    "STFT size (spectral framing)",
                );
                slider_row(
                    ui,
                    setter,
                    &params.bands,
                    "Log-spaced bands (spectral framing)",
                );
                slider_row(
                    ui,
                    setter,
                    &params.interneurons,
                    "Interneurons k; fewer than the channels means k = n",
                );
            });
        },
    );

    section(ui, "The circuits", "", |ui| {
        for line in [
            "direct:  M ← M + η (r r⊤ − I),  r = M⁻¹x",
            "interneuron:  W ← W + η (r z⊤ − W),  z = W⊤r",
            "baseline:  ZCA of the running covariance",
            "gain:  g ← g + η (z∘z − diag(W⊤W)),  z = W⊤r,  r = (I + W diag(g) W⊤)⁻¹x",
            "Theory (Lipshutz et al., ICLR 2023): from a start s times too large, the direct \
             circuit needs time linear in s, the interneuron circuit logarithmic in s.",
        ] {
            ui.label(RichText::new(line).small().weak());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulse_raises_then_lowers_once_the_plugin_acted() {
        let mut p = ReinitPulse::default();
        assert_eq!(p.press(0.0, false, 5), Some(true));
        assert!(p.busy());
        // A second press while busy does nothing.
        assert_eq!(p.press(0.01, true, 5), None);
        // The plugin has not acted yet: keep the trigger up.
        assert_eq!(p.poll(0.1, true, 5), None);
        // It counted a re-initialisation: release.
        assert_eq!(p.poll(0.12, true, 6), Some(false));
        assert_eq!(p, ReinitPulse::Idle);
        assert_eq!(p.poll(0.2, false, 6), None);
    }

    #[test]
    fn pulse_gives_up_without_audio() {
        let mut p = ReinitPulse::default();
        p.press(10.0, false, 0);
        assert_eq!(p.poll(11.0, true, 0), None);
        assert_eq!(p.poll(12.5, true, 0), Some(false));
        assert!(!p.busy());
    }

    #[test]
    fn pulse_found_on_is_lowered_first() {
        let mut p = ReinitPulse::default();
        assert_eq!(p.press(0.0, true, 3), Some(false));
        // Still reads on (the audio thread has not applied it): wait.
        assert_eq!(p.poll(0.1, true, 3), None);
        // Off, but not long enough for the plugin to have seen it.
        assert_eq!(p.poll(0.2, false, 3), None);
        assert_eq!(p.poll(0.3, false, 3), Some(true));
        assert_eq!(p.poll(0.35, true, 4), Some(false));
        assert!(!p.busy());
    }
}
