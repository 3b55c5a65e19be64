//! The plugin's parameters: what a host automates and saves (docs/DESIGN.md §11).
//!
//! Every parameter maps onto one field of [`EngineParams`]; the doc comment on each field says
//! why it has the range, mapping and smoothing it has. Parameter ids are part of saved projects
//! and automation lanes: never rename them.
//!
//! Parameters fall in three groups, by what changing them costs on the audio thread:
//! * **live** (circuit, adaptation time, output level, dry/wet, learning, sidechain learning,
//!   bypass, the re-initialise trigger, and the reference level and noise floor): applied inside
//!   `process` with the engine's real-time setters, keeping what the circuits have learned;
//! * **structural** (framing, FFT size, bands, interneurons): they need a new engine, which
//!   is built off the audio thread and swapped in with a short crossfade (see `super::swap`);
//! * **init scale**: read when re-initialising and when an engine is built.
//!
//! Besides the parameters, the editor's size is persisted with the state
//! (`#[persist = "editor-state"]`).

use super::editor_size::{EditorSize, PersistedEditorSize};
use super::learned::LearnedStateField;
use crate::engine::params::{
    Mapping, ParamRange, BANDS, DRY_WET, FFT_SIZE, INIT_SCALE, INTERNEURONS, NOISE_FLOOR_DB,
    OUTPUT_DB, REFERENCE_DB, TAU_MS,
};
use crate::engine::shaping::{DEPTH, HIGH_LIMIT, LOW_LIMIT, TILT};
use crate::engine::{EngineParams, Framing, Shaping};
use crate::whitener::WhitenerKind;
use nice_plug::prelude::*;
use std::sync::{Arc, RwLock};

/// Smallest and largest FFT size, as powers of two (the range table's [`FFT_SIZE`]).
pub const FFT_ORDER_RANGE: (i32, i32) = (
    (FFT_SIZE_MIN as usize).trailing_zeros() as i32,
    (FFT_SIZE_MAX as usize).trailing_zeros() as i32,
);
const FFT_SIZE_MIN: f64 = crate::framing::MIN_FFT_SIZE as f64;
const FFT_SIZE_MAX: f64 = crate::framing::MAX_FFT_SIZE as f64;

/// A float parameter's knob range from the range table.
fn float_range(r: &ParamRange) -> FloatRange {
    let (min, max) = (r.min as f32, r.max as f32);
    match r.mapping {
        Mapping::Skewed(exponent) => FloatRange::Skewed {
            min,
            max,
            factor: FloatRange::skew_factor(exponent as f32),
        },
        // Decades are handled by storing the exponent (see `init_scale_log10`); powers of two
        // are integer parameters.
        Mapping::Linear | Mapping::Decades | Mapping::PowerOfTwo => FloatRange::Linear { min, max },
    }
}

/// A level parameter in dBFS from the range table. Shown as "−20.0 dB": hosts that read
/// numbers from displays (pedalboard) know "dB" but not "dBFS".
fn level_param(r: &ParamRange) -> FloatParam {
    FloatParam::new(r.label, r.default as f32, float_range(r))
        .with_unit(" dB")
        .with_value_to_string(formatters::v2s_f32_rounded(1))
        .with_string_to_value(Arc::new(|s| number_before(s, &["dbfs", "db"])))
}

/// A frequency limit in Hz from the range table. The end of its range means no limit; it is
/// shown as its number all the same (a word among numbers would make hosts such as pedalboard
/// treat the parameter as a list of strings), and "off" typed there sets it.
fn limit_param(r: &'static ParamRange) -> FloatParam {
    let off = if r.default <= r.min { r.min } else { r.max } as f32;
    FloatParam::new(r.label, r.default as f32, float_range(r))
        .with_unit(" Hz")
        .with_value_to_string(formatters::v2s_f32_rounded(0))
        .with_string_to_value(Arc::new(move |s| {
            let lower = s.trim().to_ascii_lowercase();
            if lower == "off" {
                Some(off)
            } else if lower.ends_with("khz") {
                number_before(s, &["khz"]).map(|v| v * 1000.0)
            } else {
                number_before(s, &["hz"])
            }
        }))
}

/// The number in `text` followed by one of `units` (lower case, matched without regard to
/// case) or by nothing: how every numeric parameter parses what a host or a user typed,
/// including the display it printed itself (`"−20.0 dB"`, `"300.0 ms"`, `"80%"`).
fn number_before(text: &str, units: &[&str]) -> Option<f32> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let number = units
        .iter()
        .find(|u| lower.ends_with(*u))
        .map_or(text, |u| &text[..text.len() - u.len()]);
    // A typographic minus is a minus.
    let v: f32 = number.trim().replace('−', "-").parse().ok()?;
    v.is_finite().then_some(v)
}

/// An adaptation time typed or displayed: a number of milliseconds (`"300.0 ms"`, `"300"`),
/// or of seconds with `s`, `sec` or `seconds` (`"2.5 s"`).
fn parse_time_ms(text: &str) -> Option<f32> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.ends_with("ms") {
        return number_before(text, &["ms"]);
    }
    if let Some(s) = number_before(text, &["seconds", "sec", "s"]).filter(|_| lower.ends_with('s'))
    {
        return Some(s * 1000.0);
    }
    number_before(text, &[])
}

/// An integer typed or displayed, also as a whole float (`"12"`, `"12.0"`): hosts that parse
/// displays as floats hand them back that way.
fn parse_count(text: &str) -> Option<i32> {
    let v = number_before(text, &[])?;
    (v.fract() == 0.0 && v.abs() < i32::MAX as f32).then_some(v as i32)
}

/// The adaptation time's display: always milliseconds, one decimal, so that hosts reading
/// numbers from displays see one unit over the whole range (5.0 … 60000.0 ms).
fn format_time_ms(v: f32) -> String {
    format!("{v:.1}")
}

/// The heard whitener as a host parameter: the library's one [`WhitenerKind`], its names as
/// ids (stable in saved projects and automation lanes) and its labels as display names. All
/// whiteners always run (the race); this only chooses which one feeds the output, with a
/// ~20 ms crossfade inside the engine.
impl Enum for WhitenerKind {
    fn variants() -> &'static [&'static str] {
        const LABELS: [&str; WhitenerKind::ALL.len()] = {
            let mut l = [""; WhitenerKind::ALL.len()];
            let mut i = 0;
            while i < l.len() {
                l[i] = WhitenerKind::ALL[i].label();
                i += 1;
            }
            l
        };
        &LABELS
    }

    fn ids() -> Option<&'static [&'static str]> {
        const NAMES: [&str; WhitenerKind::ALL.len()] = {
            let mut l = [""; WhitenerKind::ALL.len()];
            let mut i = 0;
            while i < l.len() {
                l[i] = WhitenerKind::ALL[i].name();
                i += 1;
            }
            l
        };
        Some(&NAMES)
    }

    fn to_index(self) -> usize {
        self.index()
    }

    fn from_index(index: usize) -> Self {
        WhitenerKind::from_index(index)
    }
}

/// The framing as a host parameter (ids `channels`, `spectral`).
impl Enum for Framing {
    fn variants() -> &'static [&'static str] {
        &["Channels", "Spectral"]
    }

    fn ids() -> Option<&'static [&'static str]> {
        Some(&["channels", "spectral"])
    }

    fn to_index(self) -> usize {
        match self {
            Framing::Channels => 0,
            Framing::Spectral => 1,
        }
    }

    fn from_index(index: usize) -> Self {
        match index {
            1 => Framing::Spectral,
            _ => Framing::Channels,
        }
    }
}

/// All parameters of the plugin.
#[derive(Params)]
pub struct WhiteningParams {
    /// Which whitener is heard. An enum rather than a float so hosts show names and automation
    /// steps between them; the engine crossfades, so automating it never clicks.
    #[id = "circuit"]
    pub circuit: EnumParam<WhitenerKind>,

    /// Channels or spectral framing. Structural: a new engine is built off the audio thread and
    /// the latency reported to the host changes (0 ↔ FFT size).
    #[id = "framing"]
    pub framing: EnumParam<Framing>,

    /// Adaptation time constant τ in ms (η = 1/(τ·rate)). Skewed because the useful range spans
    /// four decades (5 ms … 60 s) and the musically interesting part is below a few seconds.
    /// Not smoothed: η only scales learning steps, a jump in it cannot click. Always shown in
    /// ms (a display that switched to seconds would not read as one number to scripting hosts).
    #[id = "tau"]
    pub tau_ms: FloatParam,

    /// Interneurons per circuit, 1 … 64: the circuit uses `max(k, channels)` (it needs
    /// `k ≥ n`), so the default 1 means as many as channels. A plain count so that hosts show,
    /// and scripts set, a number. (Projects saved with the old 0 = "as many as channels" load
    /// as 1: the same circuit.) Structural.
    #[id = "interneurons"]
    pub interneurons: IntParam,

    /// Initial scale `s` of the whiteners (`M₀ = s·I`), used by "Re-initialise" and whenever an
    /// engine is built. Stored as its base-10 exponent because nice-plug ranges have no
    /// logarithmic mapping and a power-law skew over six decades would crush the low end: the
    /// paper's experiment sweeps `s` in decades, so equal knob travel per decade is what a user
    /// wants. Displayed (and typed) as the scale itself, a plain number (`"x"` is accepted).
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

    /// Depth of the whitening heard, 0–100 %: the output covariance is `C^(1−depth)`
    /// (docs/DESIGN.md §3.7). Smoothed (20 ms, applied per host block) because it moves the
    /// heard response; the circuits learn the same whatever it is.
    #[id = "depth"]
    pub depth: FloatParam,

    /// Delta listening: hear only what the whitener changes (output − dry, latency-aligned).
    /// The engine fades it in and out, so toggling never clicks.
    #[id = "delta"]
    pub delta: BoolParam,

    /// Slope of the target spectrum in dB/octave (spectral framing): 0 white, −3 pink.
    #[id = "tilt"]
    pub tilt: FloatParam,

    /// Lowest processed frequency (spectral framing); bins below pass through dry. Its
    /// minimum (20 Hz) is no limit, DC included. Skewed: equal travel is closer to equal
    /// octaves than a linear knob.
    #[id = "low_limit"]
    pub low_limit_hz: FloatParam,

    /// Highest processed frequency (spectral framing); bins above pass through dry. Its
    /// maximum (20 kHz) is no limit: up to Nyquist at any sample rate.
    #[id = "high_limit"]
    pub high_limit_hz: FloatParam,

    /// Sidechain learning (docs/DESIGN.md §3.8): the whiteners learn from the sidechain input
    /// (the key) and whiten the main input with what they learn. Off by default: a plugin
    /// on a track whitens that track. A switch of the statistics' source, not a gain on the
    /// audio, so not smoothed: the whiteners move to the key's statistics over the adaptation
    /// time, without a jump. Not part of the engine's parameters: the plugin chooses which
    /// input the engine learns from in each block.
    #[id = "sidechain"]
    pub sidechain: BoolParam,

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
            circuit: EnumParam::new("Circuit", d.selected),
            framing: EnumParam::new("Framing", d.framing),
            tau_ms: FloatParam::new(TAU_MS.label, d.tau_ms as f32, float_range(&TAU_MS))
                .with_unit(" ms")
                .with_value_to_string(Arc::new(format_time_ms))
                .with_string_to_value(Arc::new(parse_time_ms)),
            interneurons: IntParam::new(
                INTERNEURONS.label,
                d.interneurons as i32,
                IntRange::Linear {
                    min: INTERNEURONS.min as i32,
                    max: INTERNEURONS.max as i32,
                },
            )
            .with_string_to_value(Arc::new(parse_count)),
            init_scale_log10: FloatParam::new(
                INIT_SCALE.label,
                d.init_scale.log10() as f32,
                FloatRange::Linear {
                    min: INIT_SCALE.min.log10() as f32,
                    max: INIT_SCALE.max.log10() as f32,
                },
            )
            .with_value_to_string(Arc::new(|v| format_scale(10f32.powf(v))))
            .with_string_to_value(Arc::new(|s| {
                number_before(s.trim().trim_start_matches(['×', 'x']), &["x", "×"])
                    .filter(|v| *v > 0.0)
                    .map(|v| v.log10())
            })),
            reinitialise: BoolParam::new("Re-initialise", false),
            reference_db: level_param(&REFERENCE_DB),
            output_db: level_param(&OUTPUT_DB).with_smoother(SmoothingStyle::Linear(20.0)),
            dry_wet: FloatParam::new(DRY_WET.label, d.dry_wet as f32, float_range(&DRY_WET))
                .with_smoother(SmoothingStyle::Linear(20.0))
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(Arc::new(|s| number_before(s, &["%"]).map(|v| v / 100.0))),
            noise_floor_db: level_param(&NOISE_FLOOR_DB),
            fft_order: IntParam::new(
                FFT_SIZE.label,
                d.fft_size.trailing_zeros() as i32,
                IntRange::Linear {
                    min: FFT_ORDER_RANGE.0,
                    max: FFT_ORDER_RANGE.1,
                },
            )
            // Shown as the size itself; a typed size is rounded to the nearest power of two
            // (in octaves).
            .with_value_to_string(formatters::v2s_i32_power_of_two())
            .with_string_to_value(Arc::new(|s| {
                number_before(s, &[])
                    .filter(|v| *v >= 1.0)
                    .map(|v| v.log2().round() as i32)
            })),
            bands: IntParam::new(
                BANDS.label,
                d.bands as i32,
                IntRange::Linear {
                    min: BANDS.min as i32,
                    max: BANDS.max as i32,
                },
            )
            .with_string_to_value(Arc::new(parse_count)),
            // Booleans are shown as nice-plug shows them, "On" / "Off" (which hosts that read
            // displays take for a switch).
            learning: BoolParam::new("Learning", d.learning),
            depth: FloatParam::new(DEPTH.label, DEPTH.default as f32, float_range(&DEPTH))
                .with_smoother(SmoothingStyle::Linear(20.0))
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(Arc::new(|s| number_before(s, &["%"]).map(|v| v / 100.0))),
            delta: BoolParam::new("Delta", false),
            tilt: FloatParam::new(TILT.label, TILT.default as f32, float_range(&TILT))
                .with_unit(" dB/oct")
                .with_step_size(0.1)
                .with_value_to_string(formatters::v2s_f32_rounded(1))
                .with_string_to_value(Arc::new(|s| number_before(s, &["db/oct", "db"]))),
            low_limit_hz: limit_param(&LOW_LIMIT),
            high_limit_hz: limit_param(&HIGH_LIMIT),
            sidechain: BoolParam::new("Sidechain learning", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            editor_size: Arc::new(RwLock::new(EditorSize::default())),
            learned: LearnedStateField::default(),
        }
    }
}

impl WhiteningParams {
    /// The engine parameters the current (unsmoothed) values describe.
    pub fn engine_params(&self) -> EngineParams {
        EngineParams {
            framing: self.framing.value(),
            selected: self.circuit.value(),
            tau_ms: TAU_MS.clamp(self.tau_ms.value() as f64),
            interneurons: INTERNEURONS.clamp(self.interneurons.value() as f64) as usize,
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
            bands: BANDS.clamp(self.bands.value() as f64) as usize,
            learning: self.learning.value(),
            shaping: Shaping {
                depth: self.depth.value() as f64,
                delta: self.delta.value(),
                tilt_db_per_octave: self.tilt.value() as f64,
                low_limit_hz: self.low_limit_hz.value() as f64,
                high_limit_hz: self.high_limit_hz.value() as f64,
            }
            .clamped(),
        }
    }

    /// The initial scale `s` (not its exponent).
    pub fn init_scale(&self) -> f64 {
        10f64.powf(
            (self.init_scale_log10.value() as f64)
                .clamp(INIT_SCALE.min.log10(), INIT_SCALE.max.log10()),
        )
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
        p.validate(2, 48_000.0)
            .expect("default parameters are valid");
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
            p.interneurons = INTERNEURONS.max as usize;
            p.fitted_to(2, 48_000.0)
                .validate(2, 48_000.0)
                .expect("extreme parameters fitted to the engine are valid");
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
