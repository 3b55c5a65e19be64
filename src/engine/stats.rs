//! The statistics record the audio thread publishes (docs/DESIGN.md §5.3).

use super::MAX_CHANNELS;
use crate::whitener::WhitenerKind;
use crossbeam_channel::{Sender, TrySendError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The eigenvalues of one whitener's `M` in ascending order, stored inline (at most one per
/// channel) so that a record stays `Copy` and sending it never allocates. Serialised as a plain
/// list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eigenvalues {
    /// How many of `values` are used.
    len: u8,
    /// The eigenvalues, ascending; unused entries are 0.
    values: [f64; MAX_CHANNELS],
}

impl Eigenvalues {
    /// No eigenvalues (not computed).
    pub const EMPTY: Self = Self {
        len: 0,
        values: [0.0; MAX_CHANNELS],
    };

    /// Copy up to [`MAX_CHANNELS`] values, sorted ascending. No allocation.
    pub fn from_slice(values: &[f64]) -> Self {
        let mut e = Self::EMPTY;
        let len = values.len().min(MAX_CHANNELS);
        e.values[..len].copy_from_slice(&values[..len]);
        e.values[..len].sort_unstable_by(f64::total_cmp);
        e.len = len as u8;
        e
    }

    /// The eigenvalues, ascending.
    pub fn as_slice(&self) -> &[f64] {
        &self.values[..self.len as usize]
    }
}

impl Default for Eigenvalues {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Serialize for Eigenvalues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Eigenvalues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        if v.len() > MAX_CHANNELS {
            return Err(serde::de::Error::custom(format!(
                "{} eigenvalues, at most {MAX_CHANNELS}",
                v.len()
            )));
        }
        Ok(Self::from_slice(&v))
    }
}

/// One whitener's state over the last ~10 ms block. Fixed size and `Copy`, so sending it
/// never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    /// Seconds of audio processed when the record was made.
    pub time_s: f64,
    /// Which whitener.
    pub circuit: WhitenerKind,
    /// Whether this whitener is the one heard.
    pub selected: bool,
    /// Whitening error of this whitener's own output over a short window (~50 ms).
    pub error: f64,
    /// Smallest eigenvalue of `M` (over all bands in spectral framing).
    pub eig_min: f64,
    /// Largest eigenvalue of `M`.
    pub eig_max: f64,
    /// `eig_max / eig_min`.
    pub condition: f64,
    /// Every eigenvalue of `M`, ascending. For the baseline, whose `M` is `Ĉ^{1/2}`, these
    /// are the target spectrum every circuit converges to (the square roots of the input
    /// covariance's eigenvalues). In the spectral framing: those of the loudest band.
    #[serde(default)]
    pub eigenvalues: Eigenvalues,
    /// Input RMS level over the block, dBFS.
    pub input_rms_db: f64,
    /// Whether a change of the input statistics was detected in this block.
    pub change: bool,
    /// Whether the whiteners were re-initialised (at the init scale) in this block: the
    /// paper's experiment, timed by the monitor like a change.
    #[serde(default)]
    pub reinit: bool,
    /// State resets of this whitener so far.
    pub resets: u64,
}

/// The audio thread's end of a bounded stats channel: `try_send` only, never blocking.
#[derive(Clone, Debug)]
pub struct StatsSender {
    tx: Sender<StatsRecord>,
}

impl StatsSender {
    /// Wrap a sender (create it with `crossbeam_channel::bounded`).
    pub fn new(tx: Sender<StatsRecord>) -> Self {
        Self { tx }
    }

    /// Send without blocking; `false` if the record was dropped (channel full or closed).
    #[inline]
    pub fn try_send(&self, record: StatsRecord) -> bool {
        match self.tx.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
