//! The plugin's parameters: what a host automates and saves (DESIGN.md §3, §4).
//!
//! Every parameter maps onto one field of [`EngineParams`]; the doc comment on each field says
//! why it has the range, mapping and smoothing it has. Parameter ids are part of saved projects
//! and automation lanes: never rename them.
//!
//! Parameters fall in three groups, by what changing them costs on the audio thread:
//! * **live** (circuit, adaptation time, output level, dry/wet, learning, bypass, the
//!   re-initialise trigger, and the reference level and noise floor): applied inside
//!   `process` with the engine's real-time setters, keeping what the circuits have learned;
//! * **structural** (framing, FFT size, bands, interneurons): they need a new engine, which
//!   is built off the audio thread and swapped in with a short crossfade (see `super`);
//! * **init scale**: read when re-initialising and when an engine is built.
//!
//! Besides the parameters, the editor's size is persisted with the state
//! (`#[persist = "editor-state"]`).

use super::learned::LearnedStateField;
use crate::editor::{EditorSize, PersistedEditorSize};
use crate::engine::{EngineParams, Framing, WhitenerKind, TAU_MS_RANGE};
use nice_plug::prelude::*;
use std::sync::{Arc, RwLock};

/// Smallest and largest FFT size, as powers of two (256 and 8192 samples).
pub const FFT_ORDER_RANGE: (i32, i32) = (8, 13);
/// Most interneurons per circuit (four per channel at the 16-channel maximum).
pub const MAX_INTERNEURONS: i32 = 64;
/// Most bands: one per bin of the largest FFT (8192 / 2 + 1).
pub const MAX_BANDS: i32 = 513;
/// Initial-scale range as decades: `10^-2 ..= 10^4`.
pub const INIT_SCALE_DECADES: (f32, f32) = (-2.0, 4.0);

/// The whitener heard at the output. All three always run (the race, DESIGN.md §4); this only
/// chooses which one feeds the output, with a ~20 ms crossfade inside the engine.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Primary neurons with direct recurrent connections `M`.
    #[id = "direct"]
    #[name = "Direct"]
    Direct,
    /// Recurrence mediated by interneurons, `M = W Wᴴ`.
    #[id = "interneuron"]
    #[name = "Interneuron"]
    Interneuron,
    /// Classical baseline: exponentially weighted covariance and ZCA.
    #[id = "baseline"]
    #[name = "Baseline (ZCA)"]
    Baseline,
}

impl From<Circuit> for WhitenerKind {
    fn from(c: Circuit) -> Self {
        match c {
            Circuit::Direct => WhitenerKind::Direct,
            Circuit::Interneuron => WhitenerKind::Interneuron,
            Circuit::Baseline => WhitenerKind::Baseline,
        }
    }
}

/// How audio becomes vectors (DESIGN.md §3).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingChoice {
    /// Time domain, one circuit over the channels, zero latency.
    #[id = "channels"]
    #[name = "Channels"]
    Channels,
    /// STFT, one complex circuit per band; latency = FFT size.
    #[id = "spectral"]
    #[name = "Spectral"]
    Spectral,
}

impl From<FramingChoice> for Framing {
    fn from(f: FramingChoice) -> Self {
        match f {
            FramingChoice::Channels => Framing::Channels,
            FramingChoice::Spectral => Framing::Spectral,
        }
    }
}

/// All parameters of the plugin.
#[derive(Params)]
pub struct WhiteningParams {
    /// Which whitener is heard. An enum rather than a float so hosts show names and automation
    /// steps between them; the engine crossfades, so automating it never clicks.
    #[id = "circuit"]
    pub circuit: EnumParam<Circuit>,

    /// Channels or spectral framing. Structural: a new engine is built off the audio thread and
    /// the latency reported to the host changes (0 ↔ FFT size).
    #[id = "framing"]
    pub framing: EnumParam<FramingChoice>,

    /// Adaptation time constant τ in ms (η = 1/(τ·rate)). Skewed because the useful range spans
    /// four decades (5 ms … 60 s) and the musically interesting part is below a few seconds.
    /// Not smoothed: η only scales learning steps, a jump in it cannot click.
    #[id = "tau"]
    pub tau_ms: FloatParam,

    /// Interneurons per circuit; 0 means as many as channels (`k = n`). Values below the
    /// channel count are raised to it (the circuit needs `k ≥ n`). Structural.
    #[id = "interneurons"]
    pub interneurons: IntParam,

    /// Initial scale `s` of the whiteners (`M₀ = s·I`), used by "Re-initialise" and whenever an
    /// engine is built. Stored as its base-10 exponent because nice-plug ranges have no
    /// logarithmic mapping and a power-law skew over six decades would crush the low end: the
    /// paper's experiment sweeps `s` in decades, so equal knob travel per decade is what a user
    /// wants. Displayed (and typed) as the scale itself.
    #[id = "init_scale"]
    pub init_scale_log10: FloatParam,

    /// Rising edge (off → on) re-initialises every whitener at the init scale: the paper's
    /// experiment, live. A trigger rather than an action because plugin APIs only have
    /// parameters; turn it off again to arm the next trigger.
    #[id = "reinit"]
    pub reinitialise: BoolParam,

    /// Reference level in dBFS: input is divided by this RMS so typical material has unit
    /// variance in the circuits. The knob that shows the direct circuit's dependence on absolute
    /// scale. Applied live (`Engine::set_levels`): the circuits keep their state and readapt
    /// to the rescaled input, which is exactly the scale dependence the knob is there to show.
    #[id = "reference"]
    pub reference_db: FloatParam,

    /// Output level in dBFS: RMS of each whitened channel. Smoothed (20 ms) because it is a
    /// gain on the audio.
    #[id = "output"]
    pub output_db: FloatParam,

    /// 0 = dry, 1 = whitened. Smoothed (20 ms) because it is a gain on the audio.
    #[id = "mix"]
    pub dry_wet: FloatParam,

    /// Noise floor ε in dBFS: the circuits whiten `C + ε²I`, so silence never drives `M`
    /// singular. Applied live, like the reference level.
    #[id = "floor"]
    pub noise_floor_db: FloatParam,

    /// STFT size as a power of two (2^8 = 256 … 2^13 = 8192); the latency in spectral framing.
    /// An exponent so that every value of the range is a valid size. Structural.
    #[id = "fft_order"]
    pub fft_order: IntParam,

    /// Number of log-spaced bands (1 … 513; clamped to the bin count `N/2 + 1`). Structural.
    #[id = "bands"]
    pub bands: IntParam,

    /// Whether the whiteners learn; off freezes their state (e.g. to compare circuits on the
    /// same frozen whitener, or to check the transparent path).
    #[id = "learning"]
    pub learning: BoolParam,

    /// Host bypass. Latency-compensated and click-free: the plugin crossfades (20 ms) to the
    /// dry input delayed by its current latency. The engine keeps running while bypassed so the
    /// circuits stay adapted and un-bypassing is click-free too.
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// The editor's window size, saved with the project (not a parameter).
    #[persist = "editor-state"]
    pub editor_size: PersistedEditorSize,

    /// What the circuits have learned, saved with the project so that a reopened session
    /// starts whitened (see [`super::learned`]).
    #[persist = "learned-state"]
    pub learned: LearnedStateField,
}

impl Default for WhiteningParams {
    fn default() -> Self {
        let d = EngineParams::default();
        Self {
            circuit: EnumParam::new("Circuit", circuit_of(d.selected)),
            framing: EnumParam::new(
                "Framing",
                match d.framing {
                    Framing::Channels => FramingChoice::Channels,
                    Framing::Spectral => FramingChoice::Spectral,
                },
            ),
            tau_ms: FloatParam::new(
                "Adaptation time",
                d.tau_ms as f32,
                FloatRange::Skewed {
                    min: TAU_MS_RANGE.0 as f32,
                    max: TAU_MS_RANGE.1 as f32,
                    factor: FloatRange::skew_factor(-2.5),
                },
            )
            // No `with_unit`: the text already carries "ms" or "s" (nice-plug appends the unit
            // to `value_to_string`'s output, which showed "300.0 ms ms").
            .with_value_to_string(Arc::new(|v| {
                if v >= 1000.0 {
                    format!("{:.2} s", v / 1000.0)
                } else {
                    format!("{v:.1} ms")
                }
            }))
            .with_string_to_value(Arc::new(|s| {
                let s = s.trim();
                if let Some(sec) = s.strip_suffix('s').filter(|r| !r.ends_with('m')) {
                    sec.trim().parse::<f32>().ok().map(|v| v * 1000.0)
                } else {
                    s.trim_end_matches("ms").trim().parse().ok()
                }
            })),
            interneurons: IntParam::new(
                "Interneurons",
                d.interneurons as i32,
                IntRange::Linear {
                    min: 0,
                    max: MAX_INTERNEURONS,
                },
            )
            .with_value_to_string(Arc::new(|v| {
                if v == 0 {
                    "= channels".to_string()
                } else {
                    v.to_string()
                }
            })),
            init_scale_log10: FloatParam::new(
                "Init scale",
                d.init_scale.log10() as f32,
                FloatRange::Linear {
                    min: INIT_SCALE_DECADES.0,
                    max: INIT_SCALE_DECADES.1,
                },
            )
            .with_value_to_string(Arc::new(|v| format_scale(10f32.powf(v))))
            .with_string_to_value(Arc::new(|s| {
                s.trim()
                    .trim_start_matches(['×', 'x'])
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|v| *v > 0.0)
                    .map(|v| v.log10())
            })),
            reinitialise: BoolParam::new("Re-initialise", false),
            reference_db: FloatParam::new(
                "Reference level",
                d.reference_db as f32,
                FloatRange::Linear {
                    min: -80.0,
                    max: 0.0,
                },
            )
            .with_unit(" dBFS")
            .with_value_to_string(formatters::v2s_f32_rounded(1)),
            output_db: FloatParam::new(
                "Output level",
                d.output_db as f32,
                FloatRange::Linear {
                    min: -60.0,
                    max: 0.0,
                },
            )
            .with_smoother(SmoothingStyle::Linear(20.0))
            .with_unit(" dBFS")
            .with_value_to_string(formatters::v2s_f32_rounded(1)),
            dry_wet: FloatParam::new(
                "Dry/wet",
                d.dry_wet as f32,
                FloatRange::Linear { min: 0.0, max: 1.0 },
            )
            .with_smoother(SmoothingStyle::Linear(20.0))
            .with_unit("%")
            .with_value_to_string(formatters::v2s_f32_percentage(0))
            .with_string_to_value(formatters::s2v_f32_percentage()),
            noise_floor_db: FloatParam::new(
                "Noise floor",
                d.noise_floor_db as f32,
                FloatRange::Linear {
                    min: -140.0,
                    max: -40.0,
                },
            )
            .with_unit(" dBFS")
            .with_value_to_string(formatters::v2s_f32_rounded(1)),
            fft_order: IntParam::new(
                "FFT size",
                d.fft_size.trailing_zeros() as i32,
                IntRange::Linear {
                    min: FFT_ORDER_RANGE.0,
                    max: FFT_ORDER_RANGE.1,
                },
            )
            .with_value_to_string(formatters::v2s_i32_power_of_two())
            .with_string_to_value(formatters::s2v_i32_power_of_two()),
            bands: IntParam::new(
                "Bands",
                d.bands as i32,
                IntRange::Linear {
                    min: 1,
                    max: MAX_BANDS,
                },
            ),
            learning: BoolParam::new("Learning", d.learning),
            bypass: BoolParam::new("Bypass", false)
                .make_bypass()
                .with_value_to_string(formatters::v2s_bool_bypass())
                .with_string_to_value(formatters::s2v_bool_bypass()),
            editor_size: Arc::new(RwLock::new(EditorSize::default())),
            learned: LearnedStateField::default(),
        }
    }
}

impl WhiteningParams {
    /// The engine parameters the current (unsmoothed) values describe.
    pub fn engine_params(&self) -> EngineParams {
        EngineParams {
            framing: self.framing.value().into(),
            selected: self.circuit.value().into(),
            tau_ms: (self.tau_ms.value() as f64).clamp(TAU_MS_RANGE.0, TAU_MS_RANGE.1),
            interneurons: self.interneurons.value().clamp(0, MAX_INTERNEURONS) as usize,
            init_scale: self.init_scale(),
            reference_db: self.reference_db.value() as f64,
            output_db: self.output_db.value() as f64,
            dry_wet: (self.dry_wet.value() as f64).clamp(0.0, 1.0),
            noise_floor_db: self.noise_floor_db.value() as f64,
            fft_size: 1usize
                << self
                    .fft_order
                    .value()
                    .clamp(FFT_ORDER_RANGE.0, FFT_ORDER_RANGE.1),
            bands: self.bands.value().clamp(1, MAX_BANDS) as usize,
            learning: self.learning.value(),
        }
    }

    /// The initial scale `s` (not its exponent).
    pub fn init_scale(&self) -> f64 {
        10f64.powf(
            (self.init_scale_log10.value() as f64)
                .clamp(INIT_SCALE_DECADES.0 as f64, INIT_SCALE_DECADES.1 as f64),
        )
    }
}

fn circuit_of(kind: WhitenerKind) -> Circuit {
    match kind {
        WhitenerKind::Direct => Circuit::Direct,
        WhitenerKind::Interneuron => Circuit::Interneuron,
        WhitenerKind::Baseline => Circuit::Baseline,
    }
}

/// A scale with about three significant digits, switching to scientific notation outside
/// 0.01 … 10⁴.
fn format_scale(s: f32) -> String {
    if s >= 100.0 {
        format!("{s:.0}")
    } else if s >= 1.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_engine_defaults() {
        let p = WhiteningParams::default().engine_params();
        let d = EngineParams::default();
        assert_eq!(p.framing, d.framing);
        assert_eq!(p.selected, d.selected);
        assert!((p.tau_ms - d.tau_ms).abs() < 1e-3);
        assert_eq!(p.interneurons, d.interneurons);
        assert!((p.init_scale - d.init_scale).abs() < 1e-9);
        assert_eq!(p.fft_size, d.fft_size);
        assert_eq!(p.bands, d.bands);
        assert_eq!(p.learning, d.learning);
        p.validate().expect("default parameters are valid");
    }

    #[test]
    fn every_extreme_is_a_valid_engine_configuration() {
        let params = WhiteningParams::default();
        // The plain ranges must all be accepted by EngineParams::validate.
        for (tau, scale, db) in [(5.0f32, -2.0f32, -80.0f32), (60_000.0, 4.0, 0.0)] {
            let mut p = params.engine_params();
            p.tau_ms = tau as f64;
            p.init_scale = 10f64.powf(scale as f64);
            p.reference_db = db as f64;
            p.output_db = db.max(-60.0) as f64;
            p.noise_floor_db = -140.0;
            p.interneurons = MAX_INTERNEURONS as usize;
            p.validate().expect("extreme parameters are valid");
        }
    }

    #[test]
    fn text_round_trips() {
        let p = WhiteningParams::default();
        let s = p
            .init_scale_log10
            .normalized_value_to_string(p.init_scale_log10.preview_normalized(3.0), false);
        assert_eq!(s, "1000");
        let v = p
            .init_scale_log10
            .string_to_normalized_value("1000")
            .unwrap();
        assert!((p.init_scale_log10.preview_plain(v) - 3.0).abs() < 1e-4);
        let t = p.tau_ms.string_to_normalized_value("2.5 s").unwrap();
        assert!((p.tau_ms.preview_plain(t) - 2500.0).abs() < 1.0);
        let t = p.tau_ms.string_to_normalized_value("40 ms").unwrap();
        assert!((p.tau_ms.preview_plain(t) - 40.0).abs() < 0.1);
    }
}
