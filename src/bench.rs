//! `whiten bench`: real-time factor of the engine — seconds of audio processed per second of
//! CPU time of the processing thread — racing all whiteners, with stats published and drained
//! as a monitor would.

use crate::engine::{Engine, EngineParams, Framing, StatsSender};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// One configuration to measure and its target.
#[derive(Clone, Debug, Serialize)]
pub struct BenchCase {
    /// Framing.
    pub framing: Framing,
    /// Channels.
    pub channels: usize,
    /// FFT size (spectral) or `None`.
    pub fft_size: Option<usize>,
    /// Target real-time factor on the reference 2-core machine (DESIGN/issue).
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
    /// Seconds of audio processed.
    pub audio_s: f64,
    /// Thread CPU seconds spent.
    pub cpu_s: f64,
    /// Whether the target is met (`None` without a target).
    pub meets_target: Option<bool>,
}

/// The standard cases of `whiten bench` with the targets of the audio-engine issue.
pub fn standard_cases() -> Vec<BenchCase> {
    let ch = |channels, target| BenchCase {
        framing: Framing::Channels,
        channels,
        fft_size: None,
        target,
    };
    let sp = |channels, target| BenchCase {
        framing: Framing::Spectral,
        channels,
        fft_size: Some(1024),
        target,
    };
    vec![
        ch(2, Some(2000.0)),
        ch(8, None),
        ch(16, Some(100.0)),
        sp(1, None),
        sp(2, Some(300.0)),
    ]
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

/// Measure one case on `audio_s` seconds of correlated noise at 48 kHz in 512-sample blocks.
pub fn measure(case: &BenchCase, audio_s: f64) -> BenchResult {
    let fs = 48_000.0;
    let n = case.channels;
    let params = EngineParams {
        framing: case.framing,
        fft_size: case.fft_size.unwrap_or(1024),
        ..EngineParams::default()
    };
    let mut engine = Engine::new(n, fs, params).expect("benchmark parameters are valid");
    let (tx, rx) = crossbeam_channel::bounded(4096);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let block = 512;
    // Ten seconds of mixed noise, looped.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let len = 10 * fs as usize;
    let mix: Vec<f64> = (0..n * n)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    let source: Vec<Vec<f32>> = {
        let white: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..len).map(|_| rng.sample(StandardNormal)).collect())
            .collect();
        (0..n)
            .map(|i| {
                (0..len)
                    .map(|t| {
                        (0.05 * (0..n).map(|j| mix[i * n + j] * white[j][t]).sum::<f64>()) as f32
                    })
                    .collect()
            })
            .collect()
    };
    let mut buf: Vec<Vec<f32>> = vec![vec![0.0; block]; n];
    let total_blocks = (audio_s * fs / block as f64).ceil() as usize;
    let start = thread_cpu_seconds();
    for b in 0..total_blocks {
        let t = (b * block) % (len - block);
        for (dst, src) in buf.iter_mut().zip(&source) {
            dst.copy_from_slice(&src[t..t + block]);
        }
        let mut bufs: Vec<&mut [f32]> = buf.iter_mut().map(|c| &mut c[..]).collect();
        engine.process(&mut bufs);
        while rx.try_recv().is_ok() {}
    }
    let cpu_s = thread_cpu_seconds() - start;
    let audio = total_blocks as f64 * block as f64 / fs;
    let rtf = audio / cpu_s.max(1e-9);
    BenchResult {
        case: case.clone(),
        realtime_factor: rtf,
        audio_s: audio,
        cpu_s,
        meets_target: case.target.map(|t| rtf >= t),
    }
}
