//! `whiten bench`: what the engine costs, as a DAW feels it — the real-time factor (seconds of
//! audio processed per second of CPU time of the processing thread), and the worst block and
//! the 99.9th percentile of blocks (a block's thread CPU time over its audio duration: above 1
//! it would drop out), racing all whiteners, with stats published and drained as a monitor
//! would. Per framing and channel count, for three kinds of input — steady at the reference
//! level, quiet (−60 dBFS), and changing (level and mixing every 2 s, by up to ±30 dB) — and
//! two host block sizes (64 and 512 samples).

use crate::engine::{db_to_amp, Engine, EngineParams, Framing, StatsSender};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// Sample rate of the bench.
const RATE: f64 = 48_000.0;
/// Seconds per context of the changing input.
const CHANGE_EVERY_S: f64 = 2.0;

/// What the engine is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A fixed mixture at the reference level (−20 dBFS per channel).
    Steady,
    /// The same mixture 40 dB under the reference (−60 dBFS).
    Quiet,
    /// Mixing and level changing every 2 s, by up to ±30 dB (between −50 and −10 dBFS).
    Changing,
}

impl InputKind {
    /// Every kind, in report order.
    pub const ALL: [InputKind; 3] = [InputKind::Steady, InputKind::Quiet, InputKind::Changing];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Steady => "steady",
            InputKind::Quiet => "quiet",
            InputKind::Changing => "changing",
        }
    }
}

/// One configuration to measure and its target.
#[derive(Clone, Debug, Serialize)]
pub struct BenchCase {
    /// Framing.
    pub framing: Framing,
    /// Channels.
    pub channels: usize,
    /// FFT size (spectral) or `None`.
    pub fft_size: Option<usize>,
    /// What the engine is fed.
    pub input: InputKind,
    /// Samples per host block.
    pub block_size: usize,
    /// Target real-time factor on the reference 2-core machine, for steady input (quiet and
    /// changing input must cost at most 1.5× steady).
    pub target: Option<f64>,
}

/// The measured result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// What was measured.
    #[serde(flatten)]
    pub case: BenchCase,
    /// Seconds of audio per second of thread CPU time.
    pub realtime_factor: f64,
    /// The most expensive block's thread CPU time over its audio duration.
    pub worst_block_fraction: f64,
    /// When the most expensive block began, seconds of audio from the start (the first
    /// learning updates after activation, a change of the input, or noise from the machine).
    pub worst_block_s: f64,
    /// The 99.9th percentile of the blocks' CPU time over their audio duration.
    pub p999_block_fraction: f64,
    /// Seconds of audio processed.
    pub audio_s: f64,
    /// Thread CPU seconds spent.
    pub cpu_s: f64,
    /// Whether the target is met (`None` without a target).
    pub meets_target: Option<bool>,
    /// Runs of the case combined into this result ([`combine`]).
    pub runs: usize,
    /// Each run's real-time factor, in the order they ran: `realtime_factor` is their median.
    pub realtime_factor_runs: Vec<f64>,
}

/// Largest share of a block's real-time budget any block may take.
pub const WORST_BLOCK_BUDGET: f64 = 0.25;
/// Largest cost of quiet or changing input relative to steady input.
pub const MAX_COST_RATIO: f64 = 1.5;

/// The standard cases of `whiten bench` with the targets of the performance issue: every
/// framing and channel count × input kind × block size.
pub fn standard_cases() -> Vec<BenchCase> {
    let configs: [(Framing, usize, Option<f64>); 5] = [
        (Framing::Channels, 2, Some(3000.0)),
        (Framing::Channels, 8, None),
        (Framing::Channels, 16, Some(150.0)),
        (Framing::Spectral, 1, Some(500.0)),
        (Framing::Spectral, 2, Some(300.0)),
    ];
    let mut cases = Vec::new();
    for (framing, channels, target) in configs {
        for input in InputKind::ALL {
            for block_size in [512, 64] {
                cases.push(BenchCase {
                    framing,
                    channels,
                    fft_size: (framing == Framing::Spectral).then_some(1024),
                    input,
                    block_size,
                    target,
                });
            }
        }
    }
    cases
}

/// CPU time of the calling thread, seconds.
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Ten seconds of the case's input, per channel: unit-variance sources through a seeded mixing
/// (changing every [`CHANGE_EVERY_S`] for changing input) at the input kind's level.
fn source(n: usize, input: InputKind, len: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let per = (CHANGE_EVERY_S * RATE) as usize;
    let contexts = len.div_ceil(per);
    let mixings: Vec<(Vec<f64>, f64)> = (0..contexts)
        .map(|c| {
            let mix: Vec<f64> = (0..n * n)
                .map(|_| rng.sample::<f64, _>(StandardNormal))
                .collect();
            // Normalise the mixing to unit power per channel on average.
            let power = mix.iter().map(|v| v * v).sum::<f64>() / n as f64;
            let level_db = match input {
                InputKind::Steady => -20.0,
                InputKind::Quiet => -60.0,
                // Alternating around the reference, steps of up to 30 dB.
                InputKind::Changing => [-20.0, -50.0, -20.0, -10.0, -40.0][c % 5],
            };
            let g = db_to_amp(level_db) / power.sqrt();
            let fixed = input != InputKind::Changing && c > 0;
            (if fixed { Vec::new() } else { mix }, g)
        })
        .collect();
    let mut out = vec![vec![0.0f32; len]; n];
    let mut current = mixings[0].0.clone();
    let mut white = vec![0.0f64; n];
    for t in 0..len {
        let (mix, g) = &mixings[t / per];
        if !mix.is_empty() && t % per == 0 {
            current.clone_from(mix);
        }
        for w in white.iter_mut() {
            *w = rng.sample(StandardNormal);
        }
        for (i, ch) in out.iter_mut().enumerate() {
            let v: f64 = (0..n).map(|j| current[i * n + j] * white[j]).sum();
            ch[t] = (g * v) as f32;
        }
    }
    out
}

/// Measure one case on `audio_s` seconds of its input (ten seconds, looped) at 48 kHz, in two
/// passes on fresh engines over the same audio: the real-time factor from the thread's CPU time
/// over the whole run, then each block's CPU time. Reading the thread's CPU clock is a system
/// call (about 0.3 µs here, against about 1.5 µs for a whole 64-sample stereo block), so
/// timing every block would have charged the clock to the engine's mean.
pub fn measure(case: &BenchCase, audio_s: f64) -> BenchResult {
    let block = case.block_size;
    let source = source(case.channels, case.input, 10 * RATE as usize);
    let total_blocks = (audio_s * RATE / block as f64).ceil() as usize;
    let budget = block as f64 / RATE;
    let cpu_s = run_blocks(case, &source, total_blocks, None);
    let mut per_block = Vec::with_capacity(total_blocks);
    run_blocks(case, &source, total_blocks, Some(&mut per_block));
    let audio = total_blocks as f64 * budget;
    let rtf = audio / cpu_s.max(1e-9);
    let worst_index = (0..per_block.len())
        .max_by(|a, b| per_block[*a].total_cmp(&per_block[*b]))
        .unwrap_or(0);
    per_block.sort_unstable_by(f64::total_cmp);
    let worst = per_block.last().copied().unwrap_or(0.0);
    let p999 = per_block
        .get(((per_block.len() as f64) * 0.999) as usize)
        .copied()
        .unwrap_or(worst);
    BenchResult {
        case: case.clone(),
        realtime_factor: rtf,
        worst_block_fraction: worst,
        worst_block_s: worst_index as f64 * budget,
        p999_block_fraction: p999,
        audio_s: audio,
        cpu_s,
        meets_target: meets_target(case, rtf),
        runs: 1,
        realtime_factor_runs: vec![rtf],
    }
}

/// Whether a steady case with a target meets it at real-time factor `rtf`.
fn meets_target(case: &BenchCase, rtf: f64) -> Option<bool> {
    case.target
        .filter(|_| case.input == InputKind::Steady)
        .map(|t| rtf >= t)
}

/// The median of `v` (the mean of the middle two for an even count); `v` is sorted in place.
fn median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Several runs of one case as one result, robust to a shared machine's slow phases without
/// hiding what a DAW would feel: the median real-time factor and 99.9th percentile, the worst
/// block of any run (with when it happened in that run), and the audio and CPU time of all.
/// `None` for no runs.
pub fn combine(runs: &[BenchResult]) -> Option<BenchResult> {
    let first = runs.first()?;
    let worst = runs
        .iter()
        .max_by(|a, b| a.worst_block_fraction.total_cmp(&b.worst_block_fraction))?;
    let rtfs: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.realtime_factor_runs.iter().copied())
        .collect();
    let rtf = median(&mut rtfs.clone());
    let mut p999: Vec<f64> = runs.iter().map(|r| r.p999_block_fraction).collect();
    Some(BenchResult {
        case: first.case.clone(),
        realtime_factor: rtf,
        worst_block_fraction: worst.worst_block_fraction,
        worst_block_s: worst.worst_block_s,
        p999_block_fraction: median(&mut p999),
        audio_s: runs.iter().map(|r| r.audio_s).sum(),
        cpu_s: runs.iter().map(|r| r.cpu_s).sum(),
        meets_target: meets_target(&first.case, rtf),
        runs: runs.iter().map(|r| r.runs).sum(),
        realtime_factor_runs: rtfs,
    })
}

/// Feed `total_blocks` host blocks of `source` (looped) through a fresh engine for the case,
/// with stats published and drained as a monitor would, and return the thread CPU seconds of
/// the whole run (construction excluded). With `per_block`, each engine call is also timed
/// alone and its share of its block's budget pushed there.
fn run_blocks(
    case: &BenchCase,
    source: &[Vec<f32>],
    total_blocks: usize,
    mut per_block: Option<&mut Vec<f64>>,
) -> f64 {
    let n = case.channels;
    let params = EngineParams {
        framing: case.framing,
        fft_size: case.fft_size.unwrap_or(1024),
        ..EngineParams::default()
    };
    let mut engine = Engine::new(n, RATE, params).expect("benchmark parameters are valid");
    let (tx, rx) = crossbeam_channel::bounded(4096);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let block = case.block_size;
    let budget = block as f64 / RATE;
    let len = source[0].len();
    let mut buf: Vec<Vec<f32>> = vec![vec![0.0; block]; n];
    let mut bufs: Vec<&mut [f32]> = buf.iter_mut().map(|c| &mut c[..]).collect();
    let start = thread_cpu_seconds();
    let mut t = 0;
    for _ in 0..total_blocks {
        if t + block > len {
            t = 0;
        }
        for (dst, src) in bufs.iter_mut().zip(source) {
            dst.copy_from_slice(&src[t..t + block]);
        }
        t += block;
        match per_block.as_deref_mut() {
            Some(times) => {
                let b0 = thread_cpu_seconds();
                engine.process(&mut bufs);
                times.push((thread_cpu_seconds() - b0) / budget);
            }
            None => engine.process(&mut bufs),
        }
        while rx.try_recv().is_ok() {}
    }
    thread_cpu_seconds() - start
}

/// For each quiet or changing result, its cost relative to the steady result of the same
/// framing, channels and block size (steady real-time factor ÷ its own).
pub fn cost_ratio(results: &[BenchResult], r: &BenchResult) -> Option<f64> {
    if r.case.input == InputKind::Steady {
        return None;
    }
    results
        .iter()
        .find(|s| {
            s.case.input == InputKind::Steady
                && s.case.framing == r.case.framing
                && s.case.channels == r.case.channels
                && s.case.block_size == r.case.block_size
        })
        .map(|s| s.realtime_factor / r.realtime_factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result of the steady stereo case with the given figures.
    fn run(rtf: f64, worst: f64, at: f64, p999: f64) -> BenchResult {
        let case = standard_cases()
            .into_iter()
            .find(|c| c.channels == 2 && c.input == InputKind::Steady)
            .expect("the stereo steady case");
        BenchResult {
            meets_target: meets_target(&case, rtf),
            case,
            realtime_factor: rtf,
            worst_block_fraction: worst,
            worst_block_s: at,
            p999_block_fraction: p999,
            audio_s: 2.0,
            cpu_s: 2.0 / rtf,
            runs: 1,
            realtime_factor_runs: vec![rtf],
        }
    }

    #[test]
    fn runs_combine_to_the_median_rate_and_the_worst_block_of_any() {
        let runs = [
            run(3500.0, 0.02, 1.0, 0.010),
            run(1200.0, 0.30, 7.5, 0.050),
            run(3100.0, 0.04, 0.2, 0.020),
        ];
        let c = combine(&runs).expect("three runs");
        assert_eq!(c.runs, 3);
        assert_eq!(c.realtime_factor_runs, vec![3500.0, 1200.0, 3100.0]);
        assert_eq!(c.realtime_factor, 3100.0);
        assert_eq!(c.meets_target, Some(true), "the median meets 3000×");
        assert_eq!((c.worst_block_fraction, c.worst_block_s), (0.30, 7.5));
        assert_eq!(c.p999_block_fraction, 0.020);
        assert_eq!(c.audio_s, 6.0);
        let cpu: f64 = runs.iter().map(|r| 2.0 / r.realtime_factor).sum();
        assert!((c.cpu_s - cpu).abs() < 1e-15);

        let even = combine(&runs[..2]).expect("two runs");
        assert_eq!(even.realtime_factor, 0.5 * (3500.0 + 1200.0));
        assert_eq!(even.meets_target, Some(false));
        assert!(combine(&[]).is_none());
    }
}
