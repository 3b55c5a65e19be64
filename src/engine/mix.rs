//! What a framing core needs from the engine to process a block (docs/DESIGN.md §9): the
//! input scaling, the output mix, which whitener is heard (and the crossfade from the one
//! heard before), whether to learn, and the change detector.

use super::change::ChangeDetector;
use super::shaping::DeltaFade;
use crate::whitener::WhitenerKind;

/// Duration of the crossfade when the selected whitener changes.
pub const CROSSFADE_MS: f64 = 20.0;

/// The crossfade from the previously to the newly selected whitener.
#[derive(Clone, Copy, Debug)]
pub struct Crossfade {
    /// The whitener fading out.
    pub from: WhitenerKind,
    /// Progress 0..=1 of the fade towards the selected whitener.
    pub pos: f64,
    /// Progress per input vector (sample or frame).
    pub step: f64,
}

impl Crossfade {
    /// Advance by `vectors` input vectors.
    #[inline]
    pub fn advance(&mut self, vectors: usize) {
        self.pos += self.step * vectors as f64;
    }

    /// Whether the selected whitener is heard alone.
    #[inline]
    pub fn done(&self) -> bool {
        self.pos >= 1.0
    }
}

/// Changes of the input statistics found by the detector, and re-initialisations, kept until
/// the next stats record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Changes {
    /// A change was detected since the last stats record.
    pub pending: bool,
    /// The whiteners were re-initialised since the last stats record.
    pub reinit_pending: bool,
    /// Changes detected since the engine was built.
    pub total: u64,
}

impl Changes {
    /// Record the detector's verdict for one update.
    #[inline]
    pub fn observe(&mut self, changed: bool) {
        if changed {
            self.pending = true;
            self.total += 1;
        }
    }
}

/// The engine's state a framing core reads and updates while processing a block.
pub struct BlockContext<'a> {
    /// Sample rate, Hz.
    pub sample_rate: f64,
    /// `1/reference`: input amplitude to the circuits' unit-variance scale.
    pub in_scale: f64,
    /// Output amplitude of a whitened (unit-variance) signal, `10^(output_db/20)`.
    pub out_gain: f64,
    /// 0 = dry only … 1 = whitened only.
    pub wet: f64,
    /// The whitener heard.
    pub selected: WhitenerKind,
    /// Depth `α`: the heard response is `P^α` (docs/DESIGN.md §3.7).
    pub depth: f64,
    /// How much of the dry signal is subtracted from the output (delta listening), fading.
    pub delta: &'a mut DeltaFade,
    /// Whether the whiteners learn.
    pub learning: bool,
    /// The crossfade in progress, if any; cleared by the core when it completes.
    pub fade: &'a mut Option<Crossfade>,
    /// The change detector, fed once per learning update.
    pub detector: &'a mut ChangeDetector,
    /// Where detected changes are counted.
    pub changes: &'a mut Changes,
}
