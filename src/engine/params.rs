//! The engine's parameters and the one table of their ranges (docs/DESIGN.md §11).
//!
//! Every user-facing number — on the command line, as a plugin parameter, in the editor, in
//! README — has its range, default, unit and knob mapping written once, in [`RANGES`]. The
//! command line validates against it (naming the option the user typed), the plugin builds its
//! parameters from it, [`EngineParams::validate`] checks it, and a test keeps README's table
//! equal to [`markdown_table`].
//!
//! The adaptation time is the one range that depends on the context: the engine learns once
//! per update of `L` input vectors (a block of samples, or a few STFT frames), and one update may
//! move the state by at most [`MAX_BLOCK_ETA`], so the shortest time constant it can deliver
//! is `L / (MAX_BLOCK_ETA · vector rate)` ([`tau_ms_range`]).

use super::shaping::{Shaping, DEPTH, HIGH_LIMIT, LOW_LIMIT, TILT};
use super::EngineError;
use crate::framing::{DEFAULT_BANDS, DEFAULT_FFT_SIZE, HOP_DIVISOR, MAX_FFT_SIZE, MIN_FFT_SIZE};
use crate::whitener::WhitenerKind;
use serde::{Deserialize, Serialize};

/// Most channels the engine handles (the STFT's limit too).
pub const MAX_CHANNELS: usize = crate::framing::MAX_CHANNELS;

/// Longest span of the circuits' time `τ = η t` one learning update may cover: one time
/// constant. The state's trajectory over a block is integrated in sub-steps whatever its span
/// (docs/DESIGN.md §4), but what is heard within a block uses the state of its start, so a
/// block must not be long against τ. It sets the shortest adaptation time of each framing
/// ([`tau_ms_range`]): one learning block.
pub const MAX_BLOCK_ETA: f64 = 1.0;

/// How audio becomes vectors (docs/DESIGN.md §3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Time domain: one circuit over the channels, zero latency.
    #[default]
    Channels,
    /// STFT: one complex circuit per band over the channels; latency = FFT size.
    Spectral,
}

impl Framing {
    /// The lower-case name used in messages and machine-readable output.
    pub const fn name(self) -> &'static str {
        match self {
            Framing::Channels => "channels",
            Framing::Spectral => "spectral",
        }
    }
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a knob travels across a parameter's range (for the plugin and the editor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mapping {
    /// Equal travel per unit.
    Linear,
    /// Equal travel per decade: the paper sweeps the initial scale in decades.
    Decades,
    /// Powers of two only (an FFT size), equal travel per octave.
    PowerOfTwo,
    /// A power-law skew towards the low end; the exponent is nice-plug's
    /// `FloatRange::skew_factor` argument (negative = more travel for small values).
    Skewed(f64),
}

/// One parameter's range, default, unit and mapping — written once, used everywhere.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamRange {
    /// The name people read: plugin parameter, editor, README, messages.
    pub label: &'static str,
    /// The command-line option that sets it.
    pub flag: &'static str,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// The default everywhere (plugin, CLI, library).
    pub default: f64,
    /// Unit shown after the value ("" for pure numbers).
    pub unit: &'static str,
    /// Knob travel.
    pub mapping: Mapping,
    /// What it does, in one line (README and `--help`).
    pub meaning: &'static str,
}

/// Adaptation time constant τ (ms): the time unit of the learning dynamics, `η = 1/(τ·rate)`.
/// Its lower end depends on framing, FFT size and sample rate: see [`tau_ms_range`].
pub static TAU_MS: ParamRange = ParamRange {
    label: "Adaptation time",
    flag: "--tau-ms",
    min: 5.0,
    max: 60_000.0,
    default: 300.0,
    unit: "ms",
    mapping: Mapping::Skewed(-2.5),
    meaning: "time constant of learning, τ = 1/(η·rate) (lower end: see below)",
};

/// Interneurons per circuit `k`, at least: a circuit of `n` channels uses `max(k, n)`
/// (`M = W Wᴴ` needs `k ≥ n`), so the default 1 means "as many as channels". A plain count
/// rather than a special value such as 0, so that hosts show (and scripts set) a number.
pub static INTERNEURONS: ParamRange = ParamRange {
    label: "Interneurons",
    flag: "--interneurons",
    min: 1.0,
    max: 4.0 * MAX_CHANNELS as f64,
    default: 1.0,
    unit: "",
    mapping: Mapping::Linear,
    meaning: "`k` of the interneuron circuit; fewer than the channels means as many as channels",
};

/// Initial scale `s` of every whitener (`M₀ = s·I`), the paper's experiment variable.
pub static INIT_SCALE: ParamRange = ParamRange {
    label: "Init scale",
    flag: "--init-scale",
    min: 0.01,
    max: 10_000.0,
    default: 1.0,
    unit: "",
    mapping: Mapping::Decades,
    meaning: "`s` of `M₀ = s·I` at start and on *Re-initialise*",
};

/// Reference level (dBFS): the input RMS that maps to unit variance inside the circuits.
pub static REFERENCE_DB: ParamRange = ParamRange {
    label: "Reference level",
    flag: "--reference-db",
    min: -80.0,
    max: 0.0,
    default: -20.0,
    unit: "dBFS",
    mapping: Mapping::Linear,
    meaning: "input RMS mapped to unit variance",
};

/// Output level (dBFS): the RMS of each whitened channel.
pub static OUTPUT_DB: ParamRange = ParamRange {
    label: "Output level",
    flag: "--output-db",
    min: -60.0,
    max: 0.0,
    default: -20.0,
    unit: "dBFS",
    mapping: Mapping::Linear,
    meaning: "RMS of each whitened channel",
};

/// Dry/wet mix: 0 = the (latency-aligned) input, 1 = whitened only.
pub static DRY_WET: ParamRange = ParamRange {
    label: "Dry/wet",
    flag: "--dry-wet",
    min: 0.0,
    max: 1.0,
    default: 1.0,
    unit: "",
    mapping: Mapping::Linear,
    meaning: "0 = dry … 1 = whitened",
};

/// Noise floor ε (dBFS): the circuits whiten `C + ε²I`, so silence never makes `M` singular.
pub static NOISE_FLOOR_DB: ParamRange = ParamRange {
    label: "Noise floor",
    flag: "--noise-floor-db",
    min: -140.0,
    max: -40.0,
    default: -90.0,
    unit: "dBFS",
    mapping: Mapping::Linear,
    meaning: "ε: keeps `M` positive definite in silence",
};

/// STFT size N (spectral framing): a power of two; the latency of the spectral framing.
pub static FFT_SIZE: ParamRange = ParamRange {
    label: "FFT size",
    flag: "--fft-size",
    min: MIN_FFT_SIZE as f64,
    max: MAX_FFT_SIZE as f64,
    default: DEFAULT_FFT_SIZE as f64,
    unit: "",
    mapping: Mapping::PowerOfTwo,
    meaning: "STFT size N of the spectral framing (latency N)",
};

/// Number of log-spaced bands (spectral framing); more than the `N/2 + 1` bins means one per
/// bin. At most 513, one per bin at N = 1024: every band runs three whiteners, so the cost
/// grows with the count.
pub static BANDS: ParamRange = ParamRange {
    label: "Bands",
    flag: "--bands",
    min: 1.0,
    max: 513.0,
    default: DEFAULT_BANDS as f64,
    unit: "",
    mapping: Mapping::Linear,
    meaning: "log-spaced bands of the spectral framing (more than the N/2+1 bins: one per bin)",
};

/// The learning rate per input vector (`--eta`): the other way to give the adaptation time,
/// `τ = 1/(η·rate)` with the rate of input vectors (samples/s, or STFT frames/s). Not a plugin
/// parameter; its valid range is that of [`TAU_MS`] converted ([`EngineParams::set_eta`]).
pub static ETA: ParamRange = ParamRange {
    label: "Learning rate",
    flag: "--eta",
    min: 0.0,
    max: 1.0,
    default: 0.0,
    unit: "",
    mapping: Mapping::Linear,
    meaning: "η per input vector (per sample; per STFT frame in the spectral framing)",
};

/// Every numeric parameter, in the order README lists them.
pub static RANGES: [&ParamRange; 13] = [
    &TAU_MS,
    &INTERNEURONS,
    &INIT_SCALE,
    &REFERENCE_DB,
    &OUTPUT_DB,
    &DRY_WET,
    &NOISE_FLOOR_DB,
    &FFT_SIZE,
    &BANDS,
    &DEPTH,
    &TILT,
    &LOW_LIMIT,
    &HIGH_LIMIT,
];

/// A value outside its range, with the range valid where it was given.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{} {value}{} is outside {}{}", lower_label(param.label), unit_suffix(param.unit), show_range(*min, *max, param.unit), context_suffix(context))]
pub struct OutOfRange {
    /// Which parameter.
    pub param: &'static ParamRange,
    /// The value given.
    pub value: f64,
    /// Smallest valid value here (for τ: for this framing, FFT size and sample rate).
    pub min: f64,
    /// Largest valid value here.
    pub max: f64,
    /// Where the range applies when it depends on the context (the adaptation time's lower
    /// end depends on framing and sample rate): `(framing, sample rate in Hz)`.
    pub context: Option<(Framing, f64)>,
}

impl OutOfRange {
    /// The message for a user who typed the parameter's command-line option.
    pub fn for_flag(&self) -> String {
        format!(
            "{} {} is outside {}{} ({})",
            self.param.flag,
            self.value,
            show_range(self.min, self.max, self.param.unit),
            context_suffix(&self.context),
            lower_label(self.param.label)
        )
    }

    /// The same error, saying where its range applies.
    pub fn in_context(mut self, framing: Framing, sample_rate: f64) -> Self {
        self.context = Some((framing, sample_rate));
        self
    }
}

/// A label inside a sentence: lower case, except an acronym ("FFT size").
fn lower_label(label: &str) -> String {
    let first = label.split([' ', '/']).next().unwrap_or("");
    if first.len() > 1 && first.chars().all(|c| c.is_ascii_uppercase()) {
        label.to_string()
    } else {
        label.to_lowercase()
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

fn context_suffix(context: &Option<(Framing, f64)>) -> String {
    match context {
        Some((framing, rate)) => format!(" for the {framing} framing at {} Hz", short(*rate)),
        None => String::new(),
    }
}

/// `lo..hi unit`, numbers without trailing noise.
pub fn show_range(lo: f64, hi: f64, unit: &str) -> String {
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    format!("{}..{}{unit}", short(lo), short(hi))
}

/// A number with at most four significant digits, without trailing zeros.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 1e-3 || v.abs() >= 1e6 {
        return format!("{v:.3e}");
    }
    let decimals = 3 - v.abs().log10().floor() as i32;
    let f = 10f64.powi(decimals);
    format!("{}", (v * f).round() / f)
}

impl ParamRange {
    /// Whether `v` is a finite value in the range.
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && v >= self.min && v <= self.max
    }

    /// `v` clamped into the range (NaN becomes the default).
    pub fn clamp(&self, v: f64) -> f64 {
        if v.is_nan() {
            self.default
        } else {
            v.clamp(self.min, self.max)
        }
    }

    /// `Ok(v)` if in range, otherwise the error naming the range.
    pub fn check(&'static self, v: f64) -> Result<f64, OutOfRange> {
        self.check_within(v, self.min, self.max)
    }

    /// `Ok(v)` if `v ∈ [min, max]` (a context-dependent sub-range of this parameter's).
    pub fn check_within(&'static self, v: f64, min: f64, max: f64) -> Result<f64, OutOfRange> {
        if v.is_finite() && v >= min && v <= max {
            Ok(v)
        } else {
            Err(OutOfRange {
                param: self,
                value: v,
                min,
                max,
                context: None,
            })
        }
    }
}

/// README's parameter table: one row per parameter of [`RANGES`] (a test keeps README equal
/// to it).
pub fn markdown_table() -> String {
    let mut s =
        String::from("| parameter | option | range | default | meaning |\n|---|---|---|---|---|\n");
    for p in RANGES {
        let unit = if p.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", p.unit)
        };
        s.push_str(&format!(
            "| {} | `{}` | {} … {}{unit} | {}{unit} | {} |\n",
            p.label,
            p.flag,
            short(p.min),
            short(p.max),
            short(p.default),
            p.meaning
        ));
    }
    s
}

/// The user-facing parameters of an engine, in the units users think in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineParams {
    /// Channels or spectral framing.
    pub framing: Framing,
    /// The whitener heard at the output.
    pub selected: WhitenerKind,
    /// Adaptation time constant in ms: η per input vector is `1/(τ·rate)` where the rate is
    /// samples/s (channels) or frames/s (spectral). It is the time unit of the learning
    /// dynamics (`τ = η t` in docs/DESIGN.md §2), not the time to converge, which depends on
    /// the circuit and on how far the statistics moved. Range: [`TAU_MS`], [`tau_ms_range`].
    pub tau_ms: f64,
    /// Interneurons per circuit; 0 means as many as channels (`k = n`). [`INTERNEURONS`].
    pub interneurons: usize,
    /// Initial scale `s` of every whitener (`M₀ = s·I`). [`INIT_SCALE`].
    pub init_scale: f64,
    /// Reference level in dBFS: the input is divided by this RMS so typical material has unit
    /// variance inside the circuits. Also the knob that shows the direct circuit's
    /// dependence on absolute scale. [`REFERENCE_DB`].
    pub reference_db: f64,
    /// Output level in dBFS: the RMS of each whitened output channel. [`OUTPUT_DB`].
    pub output_db: f64,
    /// 0 = dry input only, 1 = whitened only. [`DRY_WET`].
    pub dry_wet: f64,
    /// Noise floor in dBFS: the circuits whiten `C + ε²I`, so silence never makes `M`
    /// singular. [`NOISE_FLOOR_DB`].
    pub noise_floor_db: f64,
    /// STFT size N (spectral framing). [`FFT_SIZE`].
    pub fft_size: usize,
    /// Number of log-spaced bands (spectral framing). [`BANDS`].
    pub bands: usize,
    /// Whether the whiteners learn (false freezes their state).
    pub learning: bool,
    /// How the whitening is heard: depth, delta, tilt, frequency limits (docs/DESIGN.md §3.7).
    #[serde(default)]
    pub shaping: Shaping,
}

impl Default for EngineParams {
    fn default() -> Self {
        Self {
            framing: Framing::Channels,
            selected: WhitenerKind::Interneuron,
            tau_ms: TAU_MS.default,
            interneurons: INTERNEURONS.default as usize,
            init_scale: INIT_SCALE.default,
            reference_db: REFERENCE_DB.default,
            output_db: OUTPUT_DB.default,
            dry_wet: DRY_WET.default,
            noise_floor_db: NOISE_FLOOR_DB.default,
            fft_size: FFT_SIZE.default as usize,
            bands: BANDS.default as usize,
            learning: true,
            shaping: Shaping::default(),
        }
    }
}

/// Longest span of one learning block in the channels framing, s. The block is a number of
/// samples (below), so at very low sample rates it would span a long time — and the block is
/// the shortest adaptation time the engine delivers (one update per block, [`tau_ms_range`]).
/// 64 ms is a 512-sample block at 8 kHz: the cap never binds at 8 kHz and above.
///
/// These caps, and the adaptation time's range, are what lets an engine run at any positive
/// finite sample rate a host asks for (docs/DESIGN.md §11).
pub const MAX_LEARN_BLOCK_S: f64 = 0.064;

/// Longest span of one STFT frame, s: the spectral framing's latency, and four hops. The FFT
/// size is a number of samples, so at very low sample rates it would span seconds (and its hop
/// would bound the adaptation time from below). 2 s is the largest FFT size (8192) at
/// 4096 Hz: the cap never binds at 4096 Hz and above.
pub const MAX_FRAME_S: f64 = 2.0;

/// Input vectors per learning step in the channels framing: 256 (5.3 ms at 48 kHz) up to 8
/// channels, 512 above, where the O(n³) updates cost more. Per-sample work is then only the
/// response and the outer-product accumulation, and the updates are amortised over the block
/// (docs/DESIGN.md §4). At sample rates where that block would span more than
/// [`MAX_LEARN_BLOCK_S`] it is shortened to that span (at least one sample).
pub fn learn_interval(channels: usize, sample_rate: f64) -> usize {
    let usual = if channels > 8 { 512 } else { 256 };
    usual.min(samples_in(MAX_LEARN_BLOCK_S, sample_rate))
}

/// Whole samples in `seconds` at `sample_rate` (at least 1; saturating for huge products).
fn samples_in(seconds: f64, sample_rate: f64) -> usize {
    // The nudge keeps exact products (0.064 s at 8000 Hz = 512) from rounding down.
    let n = (seconds * sample_rate * (1.0 + 1e-12)).floor();
    if n >= usize::MAX as f64 {
        usize::MAX
    } else {
        (n as usize).max(1)
    }
}

/// The FFT sizes an engine at `sample_rate` runs: [`FFT_SIZE`]'s range, its top lowered to
/// the largest power of two that spans at most [`MAX_FRAME_S`] (never below [`FFT_SIZE`]'s
/// minimum).
pub fn fft_size_range(sample_rate: f64) -> (usize, usize) {
    let (lo, hi) = (FFT_SIZE.min as usize, FFT_SIZE.max as usize);
    let span = samples_in(MAX_FRAME_S, sample_rate);
    let top = if span >= hi {
        hi
    } else {
        // The largest power of two ≤ span, not below the minimum.
        (1usize << (usize::BITS - 1 - span.leading_zeros())).max(lo)
    };
    (lo, top)
}

/// Input vectors per second: samples/s (channels) or STFT frames/s (spectral, hop N/4).
pub fn vector_rate(framing: Framing, fft_size: usize, sample_rate: f64) -> f64 {
    match framing {
        Framing::Channels => sample_rate,
        Framing::Spectral => sample_rate / (fft_size / HOP_DIVISOR).max(1) as f64,
    }
}

/// Frames per learning update in the spectral framing: 2 where two hops fit in
/// [`SPECTRAL_LEARN_SAMPLES`] (capped at [`MAX_LEARN_BLOCK_S`] like the channels framing's
/// block) — N ≤ 1024 at 48 kHz — else 1. Frames at hop N/4 share three quarters of their
/// samples, so the band statistics of neighbouring frames are nearly the same (the power of a
/// bin correlates ≈ 0.4 between them for white noise), while frames half a window apart are
/// nearly independent (≈ 0.03): learning once per two hops from their mean keeps nearly all
/// the information and halves the learning work, which the `B` races of a frame (one per
/// band) make many times the channels framing's (docs/DESIGN.md §3.2, §4.1).
pub fn spectral_learn_frames(fft_size: usize, sample_rate: f64) -> usize {
    let hop = (fft_size / HOP_DIVISOR).max(1);
    let span = SPECTRAL_LEARN_SAMPLES.min(samples_in(MAX_LEARN_BLOCK_S, sample_rate));
    if 2 * hop <= span {
        2
    } else {
        1
    }
}

/// Longest span of two hops for which the spectral framing learns once per two frames
/// ([`spectral_learn_frames`]): above it frames are far enough apart, and few enough per
/// second, to learn from each.
pub const SPECTRAL_LEARN_SAMPLES: usize = 512;

/// Input vectors per learning update: a block of [`learn_interval`] samples, or
/// [`spectral_learn_frames`] frames.
pub fn vectors_per_update(
    framing: Framing,
    channels: usize,
    fft_size: usize,
    sample_rate: f64,
) -> usize {
    match framing {
        Framing::Channels => learn_interval(channels, sample_rate),
        Framing::Spectral => spectral_learn_frames(fft_size, sample_rate),
    }
}

/// η per input vector for a time constant: `η = 1/(τ·rate)` (docs/DESIGN.md §2: `τ = η t`).
pub fn eta_for_tau_ms(tau_ms: f64, vector_rate: f64) -> f64 {
    1.0 / (tau_ms * 1e-3 * vector_rate)
}

/// The time constant (ms) of a learning rate η per input vector.
pub fn tau_ms_for_eta(eta: f64, vector_rate: f64) -> f64 {
    1e3 / (eta * vector_rate)
}

/// The adaptation times (ms) an engine of this framing, channel count, FFT size and sample
/// rate delivers: from the larger of [`TAU_MS`]'s minimum and the time constant at which one
/// update would exceed [`MAX_BLOCK_ETA`], to [`TAU_MS`]'s maximum. At sample rates so low that
/// one update spans more than that maximum, the range is that one shortest time constant.
pub fn tau_ms_range(
    framing: Framing,
    channels: usize,
    fft_size: usize,
    sample_rate: f64,
) -> (f64, f64) {
    let rate = vector_rate(framing, fft_size, sample_rate);
    let per_update = vectors_per_update(framing, channels, fft_size, sample_rate) as f64;
    let shortest = tau_ms_for_eta(MAX_BLOCK_ETA / per_update, rate);
    // Round up to 0.1 ms so that the printed bound is itself valid.
    let shortest = (shortest * 10.0).ceil() / 10.0;
    let lo = TAU_MS.min.max(shortest);
    (lo, TAU_MS.max.max(lo))
}

impl EngineParams {
    /// The adaptation-time range of these parameters for `channels` at `sample_rate`.
    pub fn tau_ms_range(&self, channels: usize, sample_rate: f64) -> (f64, f64) {
        tau_ms_range(self.framing, channels, self.fft_size, sample_rate)
    }

    /// Input vectors per second at `sample_rate` in this framing.
    pub fn vector_rate(&self, sample_rate: f64) -> f64 {
        vector_rate(self.framing, self.fft_size, sample_rate)
    }

    /// Reject parameters no engine for `channels` at `sample_rate` can run with; an
    /// out-of-range value is an [`EngineError::OutOfRange`] naming the parameter and the
    /// range valid here.
    pub fn validate(&self, channels: usize, sample_rate: f64) -> Result<(), EngineError> {
        self.validate_levels()?;
        INIT_SCALE.check(self.init_scale)?;
        DRY_WET.check(self.dry_wet)?;
        DEPTH.check(self.shaping.depth)?;
        TILT.check(self.shaping.tilt_db_per_octave)?;
        LOW_LIMIT.check(self.shaping.low_limit_hz)?;
        HIGH_LIMIT.check(self.shaping.high_limit_hz)?;
        INTERNEURONS.check(self.interneurons as f64)?;
        if self.framing == Framing::Spectral {
            let (lo, hi) = fft_size_range(sample_rate);
            FFT_SIZE
                .check_within(self.fft_size as f64, lo as f64, hi as f64)
                .map_err(|e| {
                    // Name the rate when it is what lowered the top of the range.
                    if hi < FFT_SIZE.max as usize {
                        e.in_context(self.framing, sample_rate)
                    } else {
                        e
                    }
                })?;
            if !self.fft_size.is_power_of_two() {
                return Err(EngineError::InvalidParameter(format!(
                    "FFT size {} must be a power of two",
                    self.fft_size
                )));
            }
            BANDS.check(self.bands as f64)?;
        }
        // Last: its range depends on the FFT size (and the rate), checked above.
        let (lo, hi) = self.tau_ms_range(channels, sample_rate);
        TAU_MS
            .check_within(self.tau_ms, lo, hi)
            .map_err(|e| e.in_context(self.framing, sample_rate))?;
        Ok(())
    }

    /// Set τ from a learning rate η per input vector (`--eta`), `τ = 1/(η·rate)`, checked
    /// against the η that give the adaptation times valid for `channels` at `sample_rate`.
    pub fn set_eta(
        &mut self,
        eta: f64,
        channels: usize,
        sample_rate: f64,
    ) -> Result<(), OutOfRange> {
        let rate = self.vector_rate(sample_rate);
        let (lo, hi) = self.tau_ms_range(channels, sample_rate);
        ETA.check_within(eta, eta_for_tau_ms(hi, rate), eta_for_tau_ms(lo, rate))
            .map_err(|e| e.in_context(self.framing, sample_rate))?;
        // Clamped: at the ends of the range the round trip may be off by an ulp.
        self.tau_ms = tau_ms_for_eta(eta, rate).clamp(lo, hi);
        Ok(())
    }

    /// These parameters with every value clamped into the range valid for `channels` at
    /// `sample_rate` — for hosts, whose parameters cannot know the sample rate (the
    /// adaptation time's lower end depends on it): they run with the nearest valid value
    /// instead of failing.
    pub fn fitted_to(&self, channels: usize, sample_rate: f64) -> EngineParams {
        let mut p = self.clone();
        p.init_scale = INIT_SCALE.clamp(p.init_scale);
        p.reference_db = REFERENCE_DB.clamp(p.reference_db);
        p.output_db = OUTPUT_DB.clamp(p.output_db);
        p.dry_wet = DRY_WET.clamp(p.dry_wet);
        p.shaping = p.shaping.clamped();
        p.noise_floor_db = NOISE_FLOOR_DB.clamp(p.noise_floor_db);
        p.interneurons = INTERNEURONS.clamp(p.interneurons as f64) as usize;
        let (fft_lo, fft_hi) = fft_size_range(sample_rate);
        p.fft_size = FFT_SIZE.clamp(p.fft_size as f64) as usize;
        if !p.fft_size.is_power_of_two() {
            p.fft_size = p.fft_size.next_power_of_two();
        }
        p.fft_size = p.fft_size.clamp(fft_lo, fft_hi);
        p.bands = BANDS.clamp(p.bands as f64) as usize;
        let (lo, hi) = p.tau_ms_range(channels, sample_rate);
        p.tau_ms = if p.tau_ms.is_nan() {
            TAU_MS.default.clamp(lo, hi)
        } else {
            p.tau_ms.clamp(lo, hi)
        };
        p
    }

    /// The latency in samples of an engine with these parameters: 0 in the channels framing,
    /// the FFT size N in the spectral framing (docs/DESIGN.md §3.2).
    pub fn latency_samples(&self) -> usize {
        match self.framing {
            Framing::Channels => 0,
            Framing::Spectral => self.fft_size,
        }
    }

    /// What running these parameters for `channels` at `sample_rate` changes because of the
    /// rate — a learning block, FFT size or adaptation time shortened or lengthened from what
    /// was asked (for a host's log; `None` when nothing is). `self` is what was asked; the
    /// engine runs [`EngineParams::fitted_to`].
    pub fn rate_adjustments(&self, channels: usize, sample_rate: f64) -> Option<String> {
        let fitted = self.fitted_to(channels, sample_rate);
        let mut notes = Vec::new();
        if self.framing == Framing::Channels {
            let usual = learn_interval(channels, f64::INFINITY);
            let block = learn_interval(channels, sample_rate);
            if block < usual {
                notes.push(format!(
                    "learning blocks of {block} samples instead of {usual} (at most {} ms)",
                    short(MAX_LEARN_BLOCK_S * 1e3)
                ));
            }
        }
        if self.framing == Framing::Spectral && fitted.fft_size != self.fft_size {
            notes.push(format!(
                "FFT size {} instead of {} (a frame spans at most {} s)",
                fitted.fft_size,
                self.fft_size,
                short(MAX_FRAME_S)
            ));
        }
        // The adaptation time's lower end depends on the rate at every rate (one learning
        // block); it is worth a note only where the rate is extreme.
        let (lo, hi) = fitted.tau_ms_range(channels, sample_rate);
        if (!notes.is_empty() || lo == hi) && (fitted.tau_ms - self.tau_ms).abs() > 0.05 {
            notes.push(format!(
                "adaptation time {} ms instead of {} ms (valid here: {})",
                short(fitted.tau_ms),
                short(self.tau_ms),
                show_range(lo, hi, TAU_MS.unit)
            ));
        }
        (!notes.is_empty()).then(|| {
            format!(
                "at {} Hz and {channels} channels: {}",
                (sample_rate * 100.0).round() / 100.0,
                notes.join("; ")
            )
        })
    }

    /// Check the levels alone (what [`super::Engine::set_levels`] changes).
    pub fn validate_levels(&self) -> Result<(), OutOfRange> {
        REFERENCE_DB.check(self.reference_db)?;
        OUTPUT_DB.check(self.output_db)?;
        NOISE_FLOOR_DB.check(self.noise_floor_db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
