//! The statistics record the audio thread publishes (DESIGN.md §4).

use super::race::WhitenerKind;
use crossbeam_channel::{Sender, TrySendError};
use serde::{Deserialize, Serialize};

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
    /// Input RMS level over the block, dBFS.
    pub input_rms_db: f64,
    /// Whether a change of the input statistics was detected in this block.
    pub change: bool,
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
