//! The channels framing (docs/DESIGN.md §3): `x_t` is the vector of the n channel samples at
//! sample t; one race over the n channels; zero latency.
//!
//! Learning happens once per block of [`learn_interval`](super::learn_interval) samples, from
//! the block's mean outer product (docs/DESIGN.md §4). Within a block every whitener's `P` is
//! constant, so all per-sample work — scaling, the outer product, the heard responses — runs
//! over contiguous channel slices ([`super::kernels`]).

// Per-sample loops index channels and frames together, as the formulas do.
#![allow(clippy::needless_range_loop)]

use super::kernels::{accumulate_outer, respond_planar};
use super::mix::BlockContext;
use super::race::{Race, RaceSettings};
use crate::circuits::CircuitError;
use nalgebra::DMatrix;

/// Time-domain framing: one race over the n channels.
pub(super) struct ChannelsCore {
    /// The whiteners of the n-dimensional input space.
    pub(super) race: Race<f64>,
    /// Vectors per learning step.
    pub(super) learn_interval: usize,
    /// Running sum of `x xᵀ` over the current learning block (lower triangle).
    outer: DMatrix<f64>,
    /// Vectors accumulated in `outer`.
    count: usize,
    /// Scaled input of the current segment, channel-major with stride `learn_interval`, so
    /// the kernels read contiguous slices.
    xs: Vec<f64>,
    /// Responses of the heard whitener, same layout.
    rs: Vec<f64>,
    /// Responses of the whitener fading out, same layout.
    rs_from: Vec<f64>,
}

impl ChannelsCore {
    /// Allocate everything for `channels` with a learning step every `learn_interval` samples.
    pub(super) fn new(
        channels: usize,
        learn_interval: usize,
        settings: &RaceSettings,
    ) -> Result<Self, CircuitError> {
        Ok(Self {
            race: Race::new(channels, settings)?,
            learn_interval,
            outer: DMatrix::zeros(channels, channels),
            count: 0,
            xs: vec![0.0; channels * learn_interval],
            rs: vec![0.0; channels * learn_interval],
            rs_from: vec![0.0; channels * learn_interval],
        })
    }

    /// Forget the partial learning block (the signal history).
    pub(super) fn reset_audio(&mut self) {
        self.outer.fill(0.0);
        self.count = 0;
    }

    /// Whiten `buffers[c][start..end]` in place and learn from it.
    pub(super) fn process(
        &mut self,
        ctx: &mut BlockContext<'_>,
        buffers: &mut [&mut [f32]],
        start: usize,
        end: usize,
    ) {
        let n = self.race.dim();
        let block_dt = self.learn_interval as f64 / ctx.sample_rate;
        let stride = self.learn_interval;
        let mut t0 = start;
        while t0 < end {
            // A segment never crosses a learning step, so every whitener's P is constant in it.
            let len = (end - t0).min(self.learn_interval - self.count);
            let t1 = t0 + len;
            for c in 0..n {
                let xs = &mut self.xs[c * stride..c * stride + len];
                for (x, v) in xs.iter_mut().zip(&buffers[c][t0..t1]) {
                    *x = *v as f64 * ctx.in_scale;
                }
            }
            accumulate_outer(&mut self.outer, &self.xs, n, len, stride);
            self.count += len;
            // Responses r = P x of the heard whitener (and of the one fading out).
            let heard = self.race.response_matrix(ctx.selected);
            respond_planar(heard, &self.xs, &mut self.rs, n, len, stride);
            if let Some(f) = ctx.fade.as_mut() {
                let from = self.race.response_matrix(f.from);
                respond_planar(from, &self.xs, &mut self.rs_from, n, len, stride);
                for c in 0..n {
                    let o = c * stride;
                    let mut w = f.pos;
                    for (r, rf) in self.rs[o..o + len]
                        .iter_mut()
                        .zip(&self.rs_from[o..o + len])
                    {
                        let wc = w.min(1.0);
                        *r = wc * *r + (1.0 - wc) * rf;
                        w += f.step;
                    }
                }
                f.advance(len);
            }
            if ctx.fade.is_some_and(|f| f.done()) {
                *ctx.fade = None;
            }
            let (a, b) = (ctx.wet * ctx.out_gain, 1.0 - ctx.wet);
            for c in 0..n {
                let o = c * stride;
                for (y, r) in buffers[c][t0..t1].iter_mut().zip(&self.rs[o..o + len]) {
                    *y = (a * r + b * *y as f64) as f32;
                }
            }
            if self.count == self.learn_interval {
                self.learn_block(ctx, block_dt);
            }
            t0 = t1;
        }
    }

    /// The block is complete: its mean outer product drives learning and change detection.
    fn learn_block(&mut self, ctx: &mut BlockContext<'_>, block_dt: f64) {
        let n = self.race.dim();
        let inv = 1.0 / self.count as f64;
        for j in 0..n {
            for i in j..n {
                let v = self.outer[(i, j)] * inv;
                self.outer[(i, j)] = v;
                self.outer[(j, i)] = v;
            }
        }
        self.race.learn(&self.outer, ctx.learning);
        ctx.changes
            .observe(ctx.detector.update_full(&self.outer, block_dt));
        self.outer.fill(0.0);
        self.count = 0;
    }
}
