//! Which whitener: the one identity every part of the product uses (docs/DESIGN.md §5).
//!
//! The race runs the paper's two circuits, a classical baseline and the gain-modulating circuit
//! of Duong et al. (docs/DESIGN.md §2.9) on the same input. Engine,
//! plugin parameter, command line, stats JSON, monitor, editor, figures and the paper
//! reproduction all name them through [`WhitenerKind`], so a whitener has one name, one label
//! and one colour everywhere.

use serde::{Deserialize, Serialize};

/// A colour of the product's palette, as 8-bit sRGB. Kept free of any drawing library so that
/// the editor (egui) and the figures (plotters) convert the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Which whitener — of the race, of the paper's experiment, of a stats record.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum WhitenerKind {
    /// Primary neurons with direct recurrent connections `M` (Lipshutz et al., left circuit).
    Direct,
    /// Recurrence mediated by interneurons with synapses `W`, `M = W Wᴴ` (right circuit).
    #[default]
    Interneuron,
    /// Classical reference, not a neural circuit: an exponentially weighted covariance and ZCA
    /// whitening by eigendecomposition.
    Baseline,
    // Last in `ALL`: saved plugin states store the whitener as an index.
    /// Interneurons with fixed synapses `W` and adaptive gains `g`, `M = αI + W diag(g) Wᴴ`
    /// (Duong et al., ICML 2023; docs/DESIGN.md §2.9).
    Gain,
}

impl WhitenerKind {
    /// Every whitener of the race, in report order (also the order of per-whitener arrays).
    /// New whiteners are appended: saved plugin states store the choice as an index into it.
    pub const ALL: [WhitenerKind; 4] = [
        WhitenerKind::Direct,
        WhitenerKind::Interneuron,
        WhitenerKind::Baseline,
        WhitenerKind::Gain,
    ];

    /// The paper's recurrent circuits: what `whiten reproduce` compares by default. The
    /// gain-modulating circuit joins the sweep when asked for (`--circuits
    /// direct,interneuron,gain`, docs/DESIGN.md §2.9, §12.1); every [`Self::is_circuit`] can.
    pub const CIRCUITS: [WhitenerKind; 2] = [WhitenerKind::Direct, WhitenerKind::Interneuron];

    /// Index into per-whitener arrays ([`WhitenerKind::ALL`] order).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The whitener at `index` in [`WhitenerKind::ALL`] order; the first for an index out of
    /// range (hosts may hand any integer).
    pub fn from_index(index: usize) -> Self {
        Self::ALL.get(index).copied().unwrap_or(Self::ALL[0])
    }

    /// The lower-case name used in every machine-readable output and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            WhitenerKind::Direct => "direct",
            WhitenerKind::Interneuron => "interneuron",
            WhitenerKind::Baseline => "baseline",
            WhitenerKind::Gain => "gain",
        }
    }

    /// The label people read: editor, plugin parameter, figure legends.
    pub const fn label(self) -> &'static str {
        match self {
            WhitenerKind::Direct => "Direct",
            WhitenerKind::Interneuron => "Interneuron",
            WhitenerKind::Baseline => "Baseline (ZCA)",
            WhitenerKind::Gain => "Gain-modulating",
        }
    }

    /// Whether this is a recurrent circuit (as opposed to the baseline).
    pub fn is_circuit(self) -> bool {
        !matches!(self, WhitenerKind::Baseline)
    }

    /// Whether this whitener whitens `channels` channels when heard; if not, the message says
    /// why, for the command line (the gain-modulating circuit races on a spanning frame only up
    /// to [`crate::circuits::RACE_SPANNING_MAX_CHANNELS`] channels, docs/DESIGN.md §2.9).
    pub fn check_heard(self, channels: usize) -> Result<(), String> {
        let max = crate::circuits::RACE_SPANNING_MAX_CHANNELS;
        if self == WhitenerKind::Gain && channels > max {
            return Err(format!(
                "--circuit gain whitens up to {max} channels, and this input has {channels}: \
                 above {max} the gain-modulating circuit races with one interneuron per channel \
                 (a spanning frame's n(n+1)/2 interneurons would cost O(n⁶) per update), which \
                 equalises the channels' levels but cannot decorrelate them; choose direct, \
                 interneuron or baseline"
            ));
        }
        Ok(())
    }

    /// The whitener's colour in the editor and in every figure. Colour-blind-safe hues of the
    /// Okabe–Ito palette, chosen to read on the editor's dark background and on white figures.
    pub fn colour(self) -> Rgb {
        match self {
            WhitenerKind::Direct => Rgb(230, 159, 0),
            WhitenerKind::Interneuron => Rgb(0, 140, 215),
            WhitenerKind::Baseline => Rgb(0, 158, 115),
            // Okabe–Ito vermillion (its reddish purple marks the editor's detected changes).
            WhitenerKind::Gain => Rgb(213, 94, 0),
        }
    }
}

impl std::fmt::Display for WhitenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WhitenerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown whitener {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_all() {
        for (i, k) in WhitenerKind::ALL.into_iter().enumerate() {
            assert_eq!(k.index(), i);
            assert_eq!(WhitenerKind::from_index(i), k);
            assert_eq!(k.name().parse::<WhitenerKind>(), Ok(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert!("nope".parse::<WhitenerKind>().is_err());
    }

    #[test]
    fn colours_are_distinct() {
        let c: Vec<_> = WhitenerKind::ALL.iter().map(|k| k.colour()).collect();
        for i in 0..c.len() {
            for j in 0..i {
                assert_ne!(c[i], c[j]);
            }
        }
    }
}
