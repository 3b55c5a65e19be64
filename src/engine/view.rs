//! What the heard whitener does, for the editor (docs/DESIGN.md §3.7, §5.4): in the spectral
//! framing the gain of every band, in the channels framing the matrix from input to output.
//! Made on the audio thread every [`VIEW_INTERVAL_MS`] while stats are on, into a fixed-size
//! value sent through a bounded channel (a full channel drops it), so nothing allocates.

use super::shaping::HIGH_LIMIT;
use crate::whitener::WhitenerKind;
use crossbeam_channel::{Sender, TrySendError};

/// Interval of views.
pub const VIEW_INTERVAL_MS: f64 = 50.0;
/// Most bands a view holds (the band count's maximum).
pub const MAX_VIEW_BANDS: usize = 513;
/// Most channels a view's matrix holds.
pub const MAX_VIEW_CHANNELS: usize = super::MAX_CHANNELS;

/// The shape of a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// Spectral framing: one gain per band.
    Bands,
    /// Channels framing: the n×n matrix from input to output.
    Matrix,
}

/// What the heard whitener does, at one moment.
#[derive(Clone, Copy, Debug)]
pub struct HeardView {
    /// Engine clock, s.
    pub time_s: f64,
    /// The whitener heard.
    pub selected: WhitenerKind,
    /// Bands or matrix.
    pub kind: ViewKind,
    /// Bands (spectral) or channels `n` (channels).
    pub len: usize,
    /// Band centre frequencies, Hz (geometric mean of the band's bins).
    pub freq_hz: [f32; MAX_VIEW_BANDS],
    /// The amplitude gain of each band from input to the wet output, dB:
    /// `10 log₁₀(tr(H Hᴴ)/n) + 20 log₁₀(g·t_b^α/a_ref)` with `H = P^α` the heard response —
    /// for input at the reference level, how far the band is raised or lowered.
    pub gain_db: [f32; MAX_VIEW_BANDS],
    /// The processed range `[low, high]` in Hz (bands outside pass dry).
    pub limits_hz: (f32, f32),
    /// Channels: the matrix `g/a_ref · H` from input to wet output, column-major n×n.
    pub matrix: [f32; MAX_VIEW_CHANNELS * MAX_VIEW_CHANNELS],
}

impl Default for HeardView {
    fn default() -> Self {
        Self {
            time_s: 0.0,
            selected: WhitenerKind::default(),
            kind: ViewKind::Matrix,
            len: 0,
            freq_hz: [0.0; MAX_VIEW_BANDS],
            gain_db: [0.0; MAX_VIEW_BANDS],
            limits_hz: (0.0, HIGH_LIMIT.max as f32),
            matrix: [0.0; MAX_VIEW_CHANNELS * MAX_VIEW_CHANNELS],
        }
    }
}

impl HeardView {
    /// Entry `(i, j)` of the channels framing's matrix.
    pub fn matrix_entry(&self, i: usize, j: usize) -> f32 {
        self.matrix[j * self.len + i]
    }
}

/// The audio thread's end of a bounded view channel: `try_send` only, never blocking.
#[derive(Clone, Debug)]
pub struct ViewSender {
    tx: Sender<HeardView>,
}

impl ViewSender {
    /// Wrap a sender (create it with `crossbeam_channel::bounded`).
    pub fn new(tx: Sender<HeardView>) -> Self {
        Self { tx }
    }

    /// Send without blocking; `false` if the view was dropped (channel full or closed).
    #[inline]
    pub fn try_send(&self, view: &HeardView) -> bool {
        match self.tx.try_send(*view) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
