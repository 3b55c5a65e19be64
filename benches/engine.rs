//! Cost of one 512-sample block through the whole engine (`Engine::process`: input safety,
//! framing, all three whiteners racing and learning, output mix, limiter, stats records sent on
//! a bounded channel), for the channels framing at 2, 8 and 16 channels and the spectral
//! framing (N = 1024) mono and stereo, at 48 kHz. `cargo bench --bench engine`.
//!
//! Beside it, in the same group, `per_sample_reference`: the §2 updates of both circuits written
//! the straightforward way — nalgebra dynamic matrices, one Cholesky solve per sample and
//! circuit, learning every sample — on the same input, so that the engine's speed-up stands on
//! its own (docs/DESIGN.md §2.1; BENCHMARKS.md §2).
//!
//! The engine is first run on a few seconds of correlated noise so that the whiteners have
//! adapted; the measured blocks continue the same stationary noise. Only the `process` call is
//! timed: copying the next input block in and draining the stats channel (the consumer's work,
//! another thread in a real host) happen outside the timed region. Throughput is reported in
//! samples per channel, so the real-time factor is `throughput / 48000`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_channel::Receiver;
use interneuron_whitening::engine::params::eta_for_tau_ms;
use interneuron_whitening::engine::{Engine, EngineParams, Framing, StatsRecord, StatsSender};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SAMPLE_RATE: f64 = 48_000.0;
const BLOCK: usize = 512;
/// Audio processed before measuring, so the state is adapted.
const WARM_UP_SECONDS: f64 = 4.0;
/// Distinct input blocks cycled through (about 0.7 s of audio).
const POOL_BLOCKS: usize = 64;

/// Planar noise mixed across channels by a fixed random matrix (a non-trivial covariance),
/// scaled to about −20 dBFS.
fn correlated_noise(channels: usize, frames: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mix: Vec<Vec<f32>> = (0..channels)
        .map(|i| {
            (0..channels)
                .map(|j| {
                    let g: f32 = rng.sample(StandardNormal);
                    if i == j {
                        1.0 + 0.3 * g
                    } else {
                        0.4 * g / (channels as f32).sqrt()
                    }
                })
                .collect()
        })
        .collect();
    let mut out = vec![vec![0.0f32; frames]; channels];
    let mut g = vec![0.0f32; channels];
    for t in 0..frames {
        for v in g.iter_mut() {
            *v = rng.sample(StandardNormal);
        }
        for (i, ch) in out.iter_mut().enumerate() {
            let x: f32 = mix[i].iter().zip(&g).map(|(m, g)| m * g).sum();
            ch[t] = (0.1 * x).clamp(-1.0, 1.0);
        }
    }
    out
}

/// An adapted engine with a stats sender attached, its stats receiver and the input pool.
fn adapted_engine(
    framing: Framing,
    channels: usize,
) -> (Engine, Receiver<StatsRecord>, Vec<Vec<f32>>) {
    let params = EngineParams {
        framing,
        fft_size: 1024,
        ..EngineParams::default()
    };
    let mut engine = Engine::new(channels, SAMPLE_RATE, params).expect("valid engine parameters");
    let (tx, rx) = crossbeam_channel::bounded::<StatsRecord>(1024);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let pool = correlated_noise(channels, POOL_BLOCKS * BLOCK, channels as u64);
    let mut work = vec![vec![0.0f32; BLOCK]; channels];
    let warm_up_blocks = (WARM_UP_SECONDS * SAMPLE_RATE / BLOCK as f64).ceil() as usize;
    for k in 0..warm_up_blocks {
        let off = (k % POOL_BLOCKS) * BLOCK;
        for (w, p) in work.iter_mut().zip(&pool) {
            w.copy_from_slice(&p[off..off + BLOCK]);
        }
        let mut bufs: Vec<&mut [f32]> = work.iter_mut().map(|c| c.as_mut_slice()).collect();
        engine.process(&mut bufs);
        while rx.try_recv().is_ok() {}
    }
    (engine, rx, pool)
}

/// Time `iters` calls of `process`, each on the next block of `pool` copied into `bufs`
/// (untimed, as is `after`, the consumer's work between blocks).
fn timed_blocks(
    iters: u64,
    pool: &[Vec<f32>],
    bufs: &mut [&mut [f32]],
    next: &mut usize,
    mut process: impl FnMut(&mut [&mut [f32]]),
    mut after: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let off = *next * BLOCK;
        *next = (*next + 1) % POOL_BLOCKS;
        for (w, p) in bufs.iter_mut().zip(pool) {
            w.copy_from_slice(&p[off..off + BLOCK]);
        }
        let start = Instant::now();
        process(black_box(&mut *bufs));
        total += start.elapsed();
        black_box(&*bufs);
        after();
    }
    total
}

fn bench_engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_block_512");
    group
        .throughput(Throughput::Elements(BLOCK as u64))
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let cases = [
        (Framing::Channels, 2usize),
        (Framing::Channels, 8),
        (Framing::Channels, 16),
        (Framing::Spectral, 1),
        (Framing::Spectral, 2),
    ];
    for (framing, channels) in cases {
        let (mut engine, rx, pool) = adapted_engine(framing, channels);
        let name = match framing {
            Framing::Channels => "channels",
            Framing::Spectral => "spectral_n1024",
        };
        let mut work = vec![vec![0.0f32; BLOCK]; channels];
        let mut bufs: Vec<&mut [f32]> = work.iter_mut().map(|c| c.as_mut_slice()).collect();
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new(name, format!("{channels}ch")), |b| {
            b.iter_custom(|iters| {
                timed_blocks(
                    iters,
                    &pool,
                    &mut bufs,
                    &mut next,
                    |bufs| engine.process(bufs),
                    || while rx.try_recv().is_ok() {},
                )
            })
        });
        let counters = engine.counters();
        assert!(
            counters.stats_sent > 0,
            "{name} {channels}ch: no stats records were sent"
        );
        assert_eq!(
            counters.stats_dropped, 0,
            "{name} {channels}ch: the drained stats channel dropped records"
        );
        assert!(
            bufs.iter().all(|b| b.iter().all(|v| v.is_finite())),
            "{name} {channels}ch: non-finite output"
        );
    }
    group.finish();
}

/// Both circuits of docs/DESIGN.md §2.1 per sample, as a first implementation would write them:
/// `r = M⁻¹x` by a fresh Cholesky factorisation and solve, `M ← M + η(r rᵀ − I)`; and
/// `r = (W Wᵀ)⁻¹x`, `z = Wᵀ r`, `W ← W + η(r zᵀ − W)`. The interneuron circuit's response is
/// written out (the engine's default heard whitener).
struct PerSampleReference {
    /// The direct circuit's recurrent matrix.
    m: DMatrix<f64>,
    /// The interneuron circuit's synapses (n×n).
    w: DMatrix<f64>,
    /// Learning rate per sample: `1/(τ·f_s)` at the engine's default τ.
    eta: f64,
    /// Input scaling `1/a_ref` at the default reference level.
    in_scale: f64,
}

impl PerSampleReference {
    fn new(n: usize) -> Self {
        let p = EngineParams::default();
        Self {
            m: DMatrix::identity(n, n),
            w: DMatrix::identity(n, n),
            eta: eta_for_tau_ms(p.tau_ms, SAMPLE_RATE),
            in_scale: 10f64.powf(-p.reference_db / 20.0),
        }
    }

    fn process(&mut self, bufs: &mut [&mut [f32]]) {
        let n = bufs.len();
        let eye = DMatrix::<f64>::identity(n, n);
        for t in 0..bufs[0].len() {
            let x = DVector::from_fn(n, |i, _| bufs[i][t] as f64 * self.in_scale);
            let r = self
                .m
                .clone()
                .cholesky()
                .expect("M stays positive definite")
                .solve(&x);
            self.m += (&r * r.transpose() - &eye) * self.eta;
            let mm = &self.w * self.w.transpose();
            let r = mm
                .cholesky()
                .expect("W W^T stays positive definite")
                .solve(&x);
            let z = self.w.transpose() * &r;
            self.w += (&r * z.transpose() - &self.w) * self.eta;
            for (i, b) in bufs.iter_mut().enumerate() {
                b[t] = (r[i] / self.in_scale) as f32;
            }
        }
    }
}

fn bench_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_block_512");
    group
        .throughput(Throughput::Elements(BLOCK as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for channels in [2usize, 8, 16] {
        let pool = correlated_noise(channels, POOL_BLOCKS * BLOCK, channels as u64);
        let mut reference = PerSampleReference::new(channels);
        let mut work = vec![vec![0.0f32; BLOCK]; channels];
        let mut bufs: Vec<&mut [f32]> = work.iter_mut().map(|c| c.as_mut_slice()).collect();
        let mut next = 0usize;
        group.bench_function(
            BenchmarkId::new("per_sample_reference", format!("{channels}ch")),
            |b| {
                b.iter_custom(|iters| {
                    timed_blocks(
                        iters,
                        &pool,
                        &mut bufs,
                        &mut next,
                        |bufs| reference.process(bufs),
                        || {},
                    )
                })
            },
        );
        assert!(
            bufs.iter().all(|b| b.iter().all(|v| v.is_finite())),
            "per-sample reference {channels}ch: non-finite output"
        );
    }
    group.finish();
}

criterion_group!(benches, bench_engine, bench_reference);
criterion_main!(benches);
