//! The spectral framing (docs/DESIGN.md §3): a Hann-windowed STFT (hop N/4, exact
//! overlap-add), its bins grouped into log-spaced bands, and one complex race per band over
//! the channels. Each band learns once per frame from the mean outer product over its bins.
//! Latency N.

use super::kernels::{cdot, respond_band};
use super::mix::BlockContext;
use super::race::{Race, RaceSettings};
use super::{EngineError, MAX_CHANNELS};
use crate::framing::{BandLayout, Stft};
use nalgebra::{Complex, DMatrix};

/// Spectral framing: an STFT and one complex race per band.
pub(super) struct SpectralCore {
    /// The streaming STFT of every channel.
    pub(super) stft: Stft,
    /// Which bins form each band.
    layout: BandLayout,
    /// One race per band.
    pub(super) races: Vec<Race<Complex<f64>>>,
    /// The current band's mean outer product of the scaled spectra.
    outer: DMatrix<Complex<f64>>,
    /// Mean power per channel of each band in the current frame (the change detector's input).
    band_power: Vec<f64>,
    /// Responses of the heard whitener for one band, channel-major (n × widest band).
    r: Vec<Complex<f64>>,
    /// Responses of the whitener fading out, same layout.
    r_from: Vec<Complex<f64>>,
}

impl SpectralCore {
    /// Allocate the STFT of size `fft_size` for `channels`, `bands` log-spaced bands and their
    /// races.
    pub(super) fn new(
        channels: usize,
        fft_size: usize,
        bands: usize,
        settings: &RaceSettings,
    ) -> Result<Self, EngineError> {
        let mut stft = Stft::new(fft_size, channels)?;
        stft.set_active_channels(channels)?;
        let layout = BandLayout::for_fft_size(fft_size, bands)?;
        let widest = layout.bands().iter().map(|b| b.len()).max().unwrap_or(1);
        let races = (0..layout.num_bands())
            .map(|_| Race::new(channels, settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            band_power: vec![0.0; layout.num_bands()],
            stft,
            layout,
            races,
            outer: DMatrix::zeros(channels, channels),
            r: vec![Complex::new(0.0, 0.0); channels * widest],
            r_from: vec![Complex::new(0.0, 0.0); channels * widest],
        })
    }

    /// Band `b`'s share of the bins.
    pub(super) fn band_weight(&self, b: usize) -> f64 {
        self.layout.bands()[b].len() as f64 / self.layout.num_bins() as f64
    }

    /// Number of bands (the change detector's dimension).
    pub(super) fn num_bands(&self) -> usize {
        self.layout.num_bands()
    }

    /// Whiten `buffers[c][start..end]` in place (delayed by the latency) and learn from it.
    pub(super) fn process(
        &mut self,
        ctx: &mut BlockContext<'_>,
        buffers: &mut [&mut [f32]],
        start: usize,
        end: usize,
    ) {
        let n = self.outer.nrows();
        let frame_dt = self.stft.hop_size() as f64 / ctx.sample_rate;
        let Self {
            stft,
            layout,
            races,
            outer,
            band_power,
            r,
            r_from,
        } = self;
        let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
        for (slot, b) in chunk.iter_mut().zip(buffers.iter_mut()) {
            *slot = &mut b[start..end];
        }
        // Responses are computed from the unscaled spectra S (x = S·in_scale) and mixed with
        // the dry spectrum: y = wet·g·in_scale·(P S) + (1 − wet)·S.
        let wet_gain = Complex::new(ctx.wet * ctx.out_gain * ctx.in_scale, 0.0);
        let dry = Complex::new(1.0 - ctx.wet, 0.0);
        let s2 = ctx.in_scale * ctx.in_scale;
        let result = stft.process_in_place(&mut chunk[..n], |frame| {
            let fade_w = ctx.fade.map(|f| f.pos);
            let bins = frame.bins();
            let data = frame.as_mut_slice();
            for (b, range) in layout.bands().iter().enumerate() {
                let race = &mut races[b];
                let (lo, len) = (range.start, range.len());
                // Band-mean outer product of the scaled input: complex dot products of the
                // channels' contiguous bin slices.
                let mut power = 0.0;
                for j in 0..n {
                    let xj = &data[j * bins + lo..j * bins + lo + len];
                    for i in j..n {
                        let xi = &data[i * bins + lo..i * bins + lo + len];
                        let v = cdot(xi, xj) * (s2 / len as f64);
                        outer[(i, j)] = v;
                        outer[(j, i)] = v.conj();
                    }
                    power += outer[(j, j)].re;
                }
                band_power[b] = power / n as f64;
                // Responses with the state before this frame's update, r = P x.
                respond_band(
                    race.response_matrix(ctx.selected),
                    data,
                    r,
                    n,
                    bins,
                    lo,
                    len,
                );
                if let (Some(w), Some(f)) = (fade_w, ctx.fade.as_ref()) {
                    respond_band(race.response_matrix(f.from), data, r_from, n, bins, lo, len);
                    for (rv, fv) in r[..n * len].iter_mut().zip(&r_from[..n * len]) {
                        *rv = *rv * w + *fv * (1.0 - w);
                    }
                }
                for c in 0..n {
                    let ys = &mut data[c * bins + lo..c * bins + lo + len];
                    for (y, rv) in ys.iter_mut().zip(&r[c * len..(c + 1) * len]) {
                        *y = *rv * wet_gain + *y * dry;
                    }
                }
                race.learn(outer, ctx.learning);
            }
            ctx.changes
                .observe(ctx.detector.update_diag(band_power, frame_dt));
            if let Some(f) = ctx.fade.as_mut() {
                f.advance(1);
                if f.done() {
                    *ctx.fade = None;
                }
            }
        });
        // Channel counts were validated at construction; a mismatch cannot happen here.
        debug_assert!(result.is_ok());
    }
}
