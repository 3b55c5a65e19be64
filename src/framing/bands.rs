//! The log-spaced grouping of STFT bins into bands, one circuit per band in the spectral
//! framing (docs/DESIGN.md §3).

use super::stft::{validate_fft_size, StftError};
use std::ops::Range;

/// A partition of the `N/2 + 1` STFT bins into contiguous, log-spaced bands, each of which gets
/// one circuit in the spectral framing (docs/DESIGN.md §3).
///
/// Why log-spaced: hearing, and the spectra of most sounds, are roughly scale-invariant in
/// frequency, so equal-ratio bands spend the circuits evenly across octaves instead of spending
/// most of them above a few kHz.
///
/// Construction, for `K` bins and `B` bands:
///
/// * if `B ≥ K`: one band per bin ("per-bin" mode, `K` bands);
/// * otherwise bins `1..K` are split into `B` bands whose edges are as close to geometric as
///   whole, non-empty bands allow, and the DC bin is added to the first band (DC carries no
///   frequency to be log-spaced, and on its own it would give a circuit a band of pure offset).
///   Edges are placed greedily from the bottom: with the current lower edge `lo` and `r` bands
///   left, the ideal next edge is `lo·(K/lo)^{1/r}` (the geometric split of what is left, so
///   wherever bands had to be widened to a whole bin, the rest re-spreads evenly in log
///   frequency); its width is rounded, raised to at least the previous band's width, and capped
///   at `⌊(K − lo)/r⌋` so that every remaining band can still be at least as wide. Widths are
///   therefore non-decreasing (counting the first band without DC): the lowest bands are one bin
///   wide, where a geometric grid would be finer than the bins, and above that they grow in
///   proportion to frequency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandLayout {
    /// The bands, in order; they tile `0..num_bins`.
    bands: Vec<Range<usize>>,
    /// Total number of bins.
    num_bins: usize,
}

impl BandLayout {
    /// Groups `num_bins` bins into `num_bands` log-spaced bands (fewer, one per bin, if
    /// `num_bands >= num_bins`). Errors if either is zero.
    pub fn new(num_bins: usize, num_bands: usize) -> Result<Self, StftError> {
        if num_bins == 0 {
            return Err(StftError::ZeroBins);
        }
        if num_bands == 0 {
            return Err(StftError::ZeroBands);
        }
        if num_bands >= num_bins {
            return Ok(Self {
                bands: (0..num_bins).map(|k| k..k + 1).collect(),
                num_bins,
            });
        }
        // Here 1 <= num_bands <= num_bins - 1, so bins 1..num_bins (num_bins - 1 of them) can
        // hold num_bands non-empty bands.
        let top = num_bins;
        let mut bands = Vec::with_capacity(num_bands);
        let mut lo = 1usize;
        let mut prev_width = 1usize;
        for b in 0..num_bands {
            let remaining = num_bands - b;
            let width = if remaining == 1 {
                top - lo
            } else {
                let lo_f = lo as f64;
                let ideal = lo_f * (top as f64 / lo_f).powf(1.0 / remaining as f64);
                let rounded = (ideal.round() as usize).saturating_sub(lo);
                let cap = (top - lo) / remaining;
                rounded.max(prev_width).min(cap)
            };
            let start = if b == 0 { 0 } else { lo };
            bands.push(start..lo + width);
            lo += width;
            prev_width = width;
        }
        Ok(Self { bands, num_bins })
    }

    /// Convenience: the layout for the `N/2 + 1` bins of an FFT of size `fft_size` (validated
    /// like [`Stft::new`](crate::framing::Stft::new)).
    pub fn for_fft_size(fft_size: usize, num_bands: usize) -> Result<Self, StftError> {
        validate_fft_size(fft_size)?;
        Self::new(fft_size / 2 + 1, num_bands)
    }

    /// The bands as bin ranges, in increasing frequency; contiguous, non-empty, tiling
    /// `0..num_bins()`.
    pub fn bands(&self) -> &[Range<usize>] {
        &self.bands
    }

    /// Number of bands actually made: `min(requested, num_bins())`.
    pub fn num_bands(&self) -> usize {
        self.bands.len()
    }

    /// Total number of bins covered.
    pub fn num_bins(&self) -> usize {
        self.num_bins
    }

    /// Whether every band is a single bin (requested bands ≥ bins).
    pub fn is_per_bin(&self) -> bool {
        self.bands.len() == self.num_bins
    }

    /// The band containing `bin`, or `None` if `bin >= num_bins()`. `O(log B)`, no allocation.
    pub fn band_of_bin(&self, bin: usize) -> Option<usize> {
        if bin >= self.num_bins {
            return None;
        }
        Some(self.bands.partition_point(|r| r.end <= bin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_of_bin_matches_ranges() {
        let layout = BandLayout::new(513, 32).unwrap();
        for (b, r) in layout.bands().iter().enumerate() {
            for k in r.clone() {
                assert_eq!(layout.band_of_bin(k), Some(b));
            }
        }
        assert_eq!(layout.band_of_bin(513), None);
    }

    #[test]
    fn empty_layouts_are_refused() {
        assert_eq!(BandLayout::new(513, 0).unwrap_err(), StftError::ZeroBands);
        assert_eq!(BandLayout::new(0, 3).unwrap_err(), StftError::ZeroBins);
    }
}
