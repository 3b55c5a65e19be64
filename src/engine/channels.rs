//! The channels framing (docs/DESIGN.md §3): `x_t` is the vector of the n channel samples at
//! sample t; one race over the n channels; zero latency.
//!
//! Learning happens once per block of [`learn_interval`](super::learn_interval) samples, from
//! the block's mean outer product (docs/DESIGN.md §4). Within a block every whitener's `P` is
//! constant, so all per-sample work — scaling, the outer product, the heard responses — runs
//! over contiguous channel slices ([`super::kernels`]).

// Per-sample loops index channels and frames together, as the formulas do.
#![allow(clippy::needless_range_loop)]

use super::kernels::{accumulate_outer, mix_out, respond_planar, scale_in};
use super::key::{scale_key_in, Key};
use super::mix::BlockContext;
use super::race::{Race, RaceSettings};
use super::safety::{flush_subnormals_peak, prefaulted};
use super::shaping::HeardResponses;
use super::view::{HeardView, ViewKind};
use crate::circuits::CircuitError;
use crate::eigen::HermitianEigen;
use crate::whitener::WhitenerKind;
use nalgebra::DMatrix;

/// Work units ([`Race::advance_learning`]) a learning block of 16 channels pays for: about
/// 8 % of the block's duration on the reference machine (a unit at n = 16 costs ~10 µs, the
/// block lasts 10.7 ms at 48 kHz), so a host block of any size spends at most ~8 % of its own
/// duration on learning, plus one sub-step's overrun. A steady update needs 5–8 units; one
/// after a 30 dB change ~70, which then merges into the next (docs/DESIGN.md §4.6). A unit's
/// cost grows as n³, so fewer channels get proportionally more units per block.
const UNITS_PER_BLOCK_AT_16: f64 = 64.0;

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
    /// Scaled sidechain key of the current segment, same layout: with a key, the outer
    /// product is accumulated from it instead of `xs` (docs/DESIGN.md §3.8).
    ks: Vec<f64>,
    /// Responses of the heard whitener, same layout.
    rs: Vec<f64>,
    /// Responses of the whitener fading out, same layout.
    rs_from: Vec<f64>,
    /// Work units of learning the current host call pays for and has not yet spent
    /// (docs/DESIGN.md §4.6).
    credit: f64,
    /// Work units each sample pays for.
    units_per_sample: f64,
    /// The heard responses `P^α` below full depth (docs/DESIGN.md §3.7).
    heard: HeardResponses<f64>,
    /// The eigensolver that makes them.
    heard_eig: HermitianEigen<f64>,
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
            xs: prefaulted(channels * learn_interval, 0.0),
            ks: prefaulted(channels * learn_interval, 0.0),
            rs: prefaulted(channels * learn_interval, 0.0),
            rs_from: prefaulted(channels * learn_interval, 0.0),
            credit: 0.0,
            units_per_sample: UNITS_PER_BLOCK_AT_16 * (16.0 / channels as f64).powi(3)
                / learn_interval as f64,
            heard: HeardResponses::new(channels),
            heard_eig: HermitianEigen::new(channels),
        })
    }

    /// Forget the partial learning block (the signal history).
    pub(super) fn reset_audio(&mut self) {
        self.outer.fill(0.0);
        self.count = 0;
    }

    /// Whiten `buffers[c][start..end]` in place and learn from it — or from `key`. Returns
    /// the output's peak `max |y|`, with no subnormal sample left in it (docs/DESIGN.md §7):
    /// the pass that mixes the output makes both.
    pub(super) fn process(
        &mut self,
        ctx: &mut BlockContext<'_>,
        buffers: &mut [&mut [f32]],
        key: Key<'_>,
        start: usize,
        end: usize,
    ) -> f32 {
        let n = self.race.dim();
        let block_dt = self.learn_interval as f64 / ctx.sample_rate;
        let stride = self.learn_interval;
        let mut peak = 0.0f32;
        let mut t0 = start;
        while t0 < end {
            // A segment never crosses a learning step, so every whitener's P is constant in it.
            let len = (end - t0).min(self.learn_interval - self.count);
            let t1 = t0 + len;
            self.advance_learning();
            for c in 0..n {
                let xs = &mut self.xs[c * stride..c * stride + len];
                scale_in(xs, &buffers[c][t0..t1], ctx.in_scale);
            }
            self.accumulate_learning(key, n, t0, t1, ctx.in_scale);
            self.count += len;
            // Responses r = P^α x of the heard whitener (and of the one fading out).
            let depth = ctx.depth;
            let kinds = [Some(ctx.selected), ctx.fade.map(|f| f.from)];
            for kind in kinds.into_iter().flatten() {
                self.heard
                    .refresh(&self.race, kind, depth, &mut self.heard_eig);
            }
            let heard = self.heard.matrix(&self.race, ctx.selected, depth);
            respond_planar(heard, &self.xs, &mut self.rs, n, len, stride);
            if let Some(f) = ctx.fade.as_mut() {
                let from = self.heard.matrix(&self.race, f.from, depth);
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
            // y = wet·g·r + (1 − wet)·x − d·x: delta listening subtracts the dry signal.
            let (a, b) = (ctx.wet * ctx.out_gain, 1.0 - ctx.wet);
            if ctx.delta.settled() {
                let d = ctx.delta.value;
                for c in 0..n {
                    let o = c * stride;
                    let p = mix_out(&mut buffers[c][t0..t1], &self.rs[o..o + len], [a, b - d]);
                    peak = peak.max(p);
                }
            } else {
                // Fading delta in or out: the dry share moves per sample.
                let start = *ctx.delta;
                for c in 0..n {
                    let o = c * stride;
                    let mut fade = start;
                    for (y, r) in buffers[c][t0..t1].iter_mut().zip(&self.rs[o..o + len]) {
                        *y = (a * r + (b - fade.value) * *y as f64) as f32;
                        fade.advance(1);
                    }
                    peak = peak.max(flush_subnormals_peak(&mut buffers[c][t0..t1]));
                }
                ctx.delta.advance(len);
            }
            if self.count == self.learn_interval {
                self.learn_block(ctx, block_dt);
            }
            t0 = t1;
        }
        peak
    }

    /// What the heard whitener does: the matrix `scale · P^α` from input to wet output.
    pub(super) fn fill_view(
        &self,
        selected: WhitenerKind,
        depth: f64,
        scale: f64,
        view: &mut HeardView,
    ) {
        let h = self.heard.matrix(&self.race, selected, depth);
        let n = h.nrows();
        view.kind = ViewKind::Matrix;
        view.len = n;
        for (v, x) in view.matrix.iter_mut().zip(h.iter()) {
            *v = (scale * x) as f32;
        }
    }

    /// Add the segment `t0..t1`'s outer products to the learning block: of the scaled main
    /// input already in `xs`, or of the key (a silent key adds nothing).
    fn accumulate_learning(&mut self, key: Key<'_>, n: usize, t0: usize, t1: usize, scale: f64) {
        let (stride, len) = (self.learn_interval, t1 - t0);
        match key {
            Key::Own => accumulate_outer(&mut self.outer, &self.xs, n, len, stride),
            Key::Signal(k) => {
                for c in 0..n {
                    let ks = &mut self.ks[c * stride..c * stride + len];
                    // The engine hands a key as long as the chunk; anything else is silence.
                    match k.get(c).and_then(|kc| kc.get(t0..t1)) {
                        Some(src) => scale_key_in(ks, src, scale),
                        None => ks.fill(0.0),
                    }
                }
                accumulate_outer(&mut self.outer, &self.ks, n, len, stride);
            }
            Key::Silence => {}
        }
    }

    /// A host call of `frames` frames begins: it pays for `frames · units_per_sample` work
    /// units of learning, to be spent on whatever update is pending during the call. Of the
    /// previous calls' credit at most one unit is carried over (so that calls of a few frames,
    /// each paying for less than a unit, still add up to sub-steps), and a debt — a sub-step
    /// that cost more than was left — is carried whole; so no call does more than its share
    /// of learning plus one sub-step, and the average is exactly the share. An update too
    /// large for the calls that follow it merges into the next (docs/DESIGN.md §4.6).
    pub(super) fn begin_call(&mut self, frames: usize) {
        self.credit = self.credit.min(1.0) + frames as f64 * self.units_per_sample;
    }

    /// Carry out as much of the pending learning update as the call's credit pays for. It runs
    /// before a segment's responses, so a call that can pay for the whole update hears it at
    /// once, as if it had been done at the block boundary.
    fn advance_learning(&mut self) {
        if self.credit >= 1.0 && self.race.learning_pending() {
            let budget = self.credit.min(usize::MAX as f64 / 2.0) as usize;
            self.credit -= self.race.advance_learning(budget) as f64;
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
        self.race.begin_learning(&self.outer, ctx.learning);
        ctx.changes
            .observe(ctx.detector.update_full(&self.outer, block_dt));
        self.outer.fill(0.0);
        self.count = 0;
    }
}
