//! What is heard of the whitening (docs/DESIGN.md §3.7): depth, delta, tilt and frequency
//! limits. None of them changes what the circuits learn — they shape only the output:
//!
//! * **Depth** `α ∈ [0, 1]`: the heard response is `P^α = M^{−α}` instead of `P = M⁻¹`. At
//!   convergence `M = C^{1/2}`, so the output covariance is `M^{−α} C M^{−α} = C^{1−α}`: the
//!   eigenvalue spread of the input is kept to the power `1 − α` (depth ½ halves the log
//!   condition number). `P^α` comes from an eigendecomposition of `P`, refreshed when the race
//!   completes a learning update or the depth changes — never per sample. At `α = 1` the heard
//!   matrix is `P` itself, so full depth is bit for bit the plain whitener.
//! * **Delta**: the output is what the whitener changes, `wet − dry` (latency-aligned), faded
//!   in and out over [`DELTA_FADE_MS`].
//! * **Tilt** (spectral framing) `β` dB/octave: band `b` at frequency `f_b` is whitened toward
//!   the level `β·log₂(f_b / 1 kHz)` dB instead of 0 dB, scaled so that the bin-weighted mean
//!   power `Σ_b w_b t_b²` stays 1 (a tilted white output is as loud as a flat one). With depth
//!   the band gain is `t_b^α`: the heard response `(t_b² M⁻²)^{α/2}` whitens toward the
//!   target covariance `t_b² I` by the same fraction.
//! * **Low / high limit** (spectral framing): bins outside `[low, high]` pass through dry (or,
//!   in delta, silent); the learning still sees the whole band.

use super::params::{Mapping, ParamRange};
use super::race::Race;
use crate::circuits::Scalar;
use crate::eigen::HermitianEigen;
use crate::framing::BandLayout;
use crate::whitener::WhitenerKind;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// Duration of the fade when delta listening is switched on or off.
pub const DELTA_FADE_MS: f64 = 20.0;

/// Frequency the tilt pivots on before normalisation, Hz.
pub const TILT_PIVOT_HZ: f64 = 1000.0;

/// Depth `α`: the fraction of the whitening heard (output covariance `C^(1−α)`).
pub static DEPTH: ParamRange = ParamRange {
    label: "Depth",
    flag: "--depth",
    min: 0.0,
    max: 1.0,
    default: 1.0,
    unit: "",
    mapping: Mapping::Linear,
    meaning: "partial whitening: output covariance `C^(1−depth)`; 1 = full",
};

/// Tilt of the target spectrum (spectral framing), dB per octave: 0 white, −3 pink.
pub static TILT: ParamRange = ParamRange {
    label: "Tilt",
    flag: "--tilt",
    min: -6.0,
    max: 6.0,
    default: 0.0,
    unit: "dB/oct",
    mapping: Mapping::Linear,
    meaning: "slope of the target spectrum (spectral): 0 = white, −3 = pink",
};

/// Lowest frequency processed (spectral framing); its minimum means no lower limit.
pub static LOW_LIMIT: ParamRange = ParamRange {
    label: "Low limit",
    flag: "--low-limit",
    min: 20.0,
    max: 20_000.0,
    default: 20.0,
    unit: "Hz",
    mapping: Mapping::Skewed(-2.0),
    meaning: "bins below pass through dry (spectral); 20 = no limit",
};

/// Highest frequency processed (spectral framing); its maximum means no upper limit.
pub static HIGH_LIMIT: ParamRange = ParamRange {
    label: "High limit",
    flag: "--high-limit",
    min: 20.0,
    max: 20_000.0,
    default: 20_000.0,
    unit: "Hz",
    mapping: Mapping::Skewed(-2.0),
    meaning: "bins above pass through dry (spectral); 20000 = no limit",
};

/// How the whitening is heard (docs/DESIGN.md §3.7). Every field can change while audio
/// runs, without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shaping {
    /// Depth `α` ([`DEPTH`]).
    pub depth: f64,
    /// Hear only what the whitener changes: `wet − dry`.
    pub delta: bool,
    /// Target slope in dB/octave ([`TILT`]; spectral framing).
    pub tilt_db_per_octave: f64,
    /// Lowest processed frequency in Hz ([`LOW_LIMIT`]; its minimum: no limit).
    pub low_limit_hz: f64,
    /// Highest processed frequency in Hz ([`HIGH_LIMIT`]; its maximum: no limit).
    pub high_limit_hz: f64,
}

impl Default for Shaping {
    fn default() -> Self {
        Self {
            depth: DEPTH.default,
            delta: false,
            tilt_db_per_octave: TILT.default,
            low_limit_hz: LOW_LIMIT.default,
            high_limit_hz: HIGH_LIMIT.default,
        }
    }
}

impl Shaping {
    /// Every value clamped into its range (NaN becomes the default): hosts may send anything.
    pub fn clamped(self) -> Self {
        Self {
            depth: DEPTH.clamp(self.depth),
            delta: self.delta,
            tilt_db_per_octave: TILT.clamp(self.tilt_db_per_octave),
            low_limit_hz: LOW_LIMIT.clamp(self.low_limit_hz),
            high_limit_hz: HIGH_LIMIT.clamp(self.high_limit_hz),
        }
    }

    /// The processed bins `lo..hi` of an STFT of `fft_size` at `sample_rate` (bin `k` is at
    /// `k·rate/N`). A limit at the end of its range is no limit at all, so the defaults
    /// process every bin, DC and Nyquist included. Empty when low > high.
    pub fn processed_bins(&self, fft_size: usize, sample_rate: f64) -> (usize, usize) {
        let bins = fft_size / 2 + 1;
        let df = sample_rate / fft_size as f64;
        let lo = if self.low_limit_hz <= LOW_LIMIT.min {
            0
        } else {
            ((self.low_limit_hz / df).ceil() as usize).min(bins)
        };
        let hi = if self.high_limit_hz >= HIGH_LIMIT.max {
            bins
        } else {
            ((self.high_limit_hz / df).floor() as usize + 1).min(bins)
        };
        (lo, hi.max(lo))
    }
}

/// The target gain `t_b` of every band for a tilt of `db_per_octave` (before depth): band `b`
/// sits at the geometric mean frequency of its bins (the DC bin counted at half a bin), the
/// gains follow `β·log₂(f_b / TILT_PIVOT_HZ)` dB, normalised so that `Σ_b w_b t_b² = 1` with
/// `w_b` the band's share of the bins. No allocation.
pub fn tilt_gains(
    layout: &BandLayout,
    fft_size: usize,
    sample_rate: f64,
    db_per_octave: f64,
    out: &mut [f64],
) {
    if db_per_octave == 0.0 {
        // Exactly 1, so that no tilt is bit for bit no gain.
        out.fill(1.0);
        return;
    }
    let df = sample_rate / fft_size as f64;
    let total = layout.num_bins() as f64;
    let mut mean_power = 0.0;
    for (g, band) in out.iter_mut().zip(layout.bands()) {
        let log2_f = band
            .clone()
            .map(|k| ((k as f64).max(0.5) * df / TILT_PIVOT_HZ).log2())
            .sum::<f64>()
            / band.len().max(1) as f64;
        *g = 10f64.powf(db_per_octave * log2_f / 20.0);
        mean_power += band.len() as f64 / total * *g * *g;
    }
    let norm = 1.0 / mean_power.sqrt();
    out.iter_mut().for_each(|g| *g *= norm);
}

/// The heard response matrices `P^α` of one race, made when needed and kept until the race's
/// responses or the depth change.
#[derive(Debug)]
pub struct HeardResponses<T: Scalar> {
    /// `P^α` per whitener (n × n each).
    powered: [DMatrix<T>; WhitenerKind::ALL.len()],
    /// The race's response generation and the depth each of `powered` was made for.
    made_for: [Option<(u64, f64)>; WhitenerKind::ALL.len()],
}

impl<T: Scalar> HeardResponses<T> {
    /// Storage for a race of dimension `n`.
    pub fn new(n: usize) -> Self {
        Self {
            powered: std::array::from_fn(|_| DMatrix::zeros(n, n)),
            made_for: [None; WhitenerKind::ALL.len()],
        }
    }

    /// Make `P^depth` of whitener `kind` current, with `eig` (any solver of the race's
    /// dimension, shared by a core's races). Nothing to do at full depth. No allocation.
    pub fn refresh(
        &mut self,
        race: &Race<T>,
        kind: WhitenerKind,
        depth: f64,
        eig: &mut HermitianEigen<T>,
    ) {
        let i = kind.index();
        let key = (race.response_generation(), depth);
        if depth >= 1.0 || self.made_for[i] == Some(key) {
            return;
        }
        let p = race.response_matrix(kind);
        // P is Hermitian positive definite; its lower triangle is what the solver reads.
        if eig.decompose(p).is_ok() {
            eig.apply_function_into(
                |l| l.max(f64::MIN_POSITIVE).powf(depth),
                &mut self.powered[i],
            );
        } else {
            // Cannot happen for a valid state (the race resets an unusable one); hear P.
            self.powered[i].copy_from(p);
        }
        self.made_for[i] = Some(key);
    }

    /// The matrix heard from `kind` at `depth`: `P` itself at full depth, otherwise the
    /// `P^depth` made by [`HeardResponses::refresh`].
    pub fn matrix<'a>(
        &'a self,
        race: &'a Race<T>,
        kind: WhitenerKind,
        depth: f64,
    ) -> &'a DMatrix<T> {
        if depth >= 1.0 {
            race.response_matrix(kind)
        } else {
            &self.powered[kind.index()]
        }
    }
}

/// The delta fade: 0 = the mix as set, 1 = the mix minus the dry signal. Moves toward its
/// target by `step` per input vector, so switching delta never clicks.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeltaFade {
    /// Current amount of dry subtracted.
    pub value: f64,
    /// 1 while delta is on, 0 off.
    pub target: f64,
    /// Progress per input vector (sample or STFT frame).
    pub step: f64,
}

impl DeltaFade {
    /// A fade of [`DELTA_FADE_MS`] at `vector_rate` input vectors per second, at rest.
    pub fn new(vector_rate: f64, on: bool) -> Self {
        let v = if on { 1.0 } else { 0.0 };
        Self {
            value: v,
            target: v,
            step: 1.0 / (DELTA_FADE_MS * 1e-3 * vector_rate).max(1.0),
        }
    }

    /// Whether the fade is at its target.
    #[inline]
    pub fn settled(&self) -> bool {
        self.value == self.target
    }

    /// The value after `vectors` more input vectors.
    #[inline]
    pub fn advance(&mut self, vectors: usize) {
        let d = self.step * vectors as f64;
        self.value = if self.target > self.value {
            (self.value + d).min(self.target)
        } else {
            (self.value - d).max(self.target)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_process_every_bin_and_crossed_limits_none() {
        let s = Shaping::default();
        assert_eq!(s.processed_bins(1024, 48_000.0), (0, 513));
        let crossed = Shaping {
            low_limit_hz: 5000.0,
            high_limit_hz: 1000.0,
            ..s
        };
        let (lo, hi) = crossed.processed_bins(1024, 48_000.0);
        assert_eq!(lo, hi);
        // 1 kHz … 2 kHz at 46.875 Hz per bin: bins 22 (1031 Hz) … 42 (1969 Hz).
        let band = Shaping {
            low_limit_hz: 1000.0,
            high_limit_hz: 2000.0,
            ..s
        };
        assert_eq!(band.processed_bins(1024, 48_000.0), (22, 43));
    }

    #[test]
    fn tilt_gains_follow_the_slope_and_keep_the_mean_power() {
        let layout = BandLayout::for_fft_size(1024, 32).unwrap();
        let mut g = vec![0.0; layout.num_bands()];
        tilt_gains(&layout, 1024, 48_000.0, -3.0, &mut g);
        let w = |b: usize| layout.bands()[b].len() as f64 / layout.num_bins() as f64;
        let power: f64 = (0..g.len()).map(|b| w(b) * g[b] * g[b]).sum();
        assert!((power - 1.0).abs() < 1e-12, "{power}");
        // Between two single-bin bands an octave apart (bins 4 and 8) the gain falls 3 dB.
        let b4 = layout.band_of_bin(4).unwrap();
        let b8 = layout.band_of_bin(8).unwrap();
        assert_eq!(layout.bands()[b4].len(), 1);
        assert_eq!(layout.bands()[b8].len(), 1);
        let db = 20.0 * (g[b8] / g[b4]).log10();
        assert!((db + 3.0).abs() < 1e-9, "{db}");
        tilt_gains(&layout, 1024, 48_000.0, 0.0, &mut g);
        assert!(g.iter().all(|v| (v - 1.0).abs() < 1e-12));
    }

    #[test]
    fn delta_fade_reaches_its_target_and_stops() {
        let mut f = DeltaFade::new(1000.0, false);
        f.target = 1.0;
        f.advance(10);
        assert!((f.value - 0.5).abs() < 1e-12);
        f.advance(100);
        assert_eq!(f.value, 1.0);
        assert!(f.settled());
    }
}
