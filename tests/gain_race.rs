//! The gain-modulating circuit in the race (docs/DESIGN.md §2.9, §4.3): heard, it whitens a
//! known covariance in both framings at more than two channels without a reset; above its
//! channel cap it is refused as the heard whitener, with the reason.

use interneuron_whitening::engine::{Engine, EngineParams, Framing};
use interneuron_whitening::whitener::WhitenerKind;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const RATE: f64 = 48_000.0;
const N: usize = 4;

/// A fixed mixing with strong correlations and levels over about 20 dB: `C = A Aᵀ`.
fn mixing() -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut a = DMatrix::from_fn(N, N, |_, _| rng.sample::<f64, _>(StandardNormal));
    for (j, g) in [0.2, 0.1, 0.05, 0.02].into_iter().enumerate() {
        a.column_mut(j).scale_mut(g);
    }
    a
}

/// Runs `seconds` of `A s` (white Gaussian `s`) through an engine hearing the gain circuit and
/// returns the covariance of the output over the last two seconds divided by the output power
/// `g²` (the identity when whitened), and the engine's counters' resets.
fn heard_output_covariance(framing: Framing, seconds: f64) -> (DMatrix<f64>, u64) {
    let out_db = -20.0;
    let params = EngineParams {
        framing,
        selected: WhitenerKind::Gain,
        output_db: out_db,
        ..EngineParams::default()
    };
    let mut engine = Engine::new(N, RATE, params).unwrap();
    let a = mixing();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let block = 512;
    let total = (seconds * RATE) as usize;
    let from = total - (2.0 * RATE) as usize;
    let mut bufs = vec![vec![0f32; block]; N];
    let mut cov = DMatrix::<f64>::zeros(N, N);
    let mut count = 0usize;
    let mut t = 0;
    while t < total {
        for i in 0..block {
            let s = DMatrix::from_fn(N, 1, |_, _| rng.sample::<f64, _>(StandardNormal));
            let x = &a * s;
            for (c, buf) in bufs.iter_mut().enumerate() {
                buf[i] = x[c] as f32;
            }
        }
        let mut views: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        engine.process(&mut views);
        if t >= from {
            for (r, br) in bufs.iter().enumerate() {
                for (c, bc) in bufs.iter().enumerate() {
                    let dot: f64 = br.iter().zip(bc).map(|(a, b)| *a as f64 * *b as f64).sum();
                    cov[(r, c)] += dot;
                }
            }
            count += block;
        }
        t += block;
    }
    let g2 = 10f64.powf(out_db / 10.0);
    (cov / (count as f64 * g2), engine.counters().state_resets)
}

/// Heard, the gain circuit's output covariance over the last 2 s of 6 s is the identity within
/// 0.05 in every entry (measured: 0.018 channels, 0.022 spectral; the estimate's own sampling
/// error over 2 s is about 0.01), in both framings, and nothing was reset.
#[test]
fn heard_gain_circuit_whitens_a_known_covariance_in_both_framings() {
    for framing in [Framing::Channels, Framing::Spectral] {
        let (cov, resets) = heard_output_covariance(framing, 6.0);
        let dev = (&cov - DMatrix::identity(N, N)).abs().max();
        eprintln!("{framing:?}: max |cov/g² − I| = {dev:.4}");
        assert!(dev < 0.05, "{framing:?}: output covariance / g² = {cov}");
        assert_eq!(resets, 0, "{framing:?}");
    }
}

/// Above `RACE_SPANNING_MAX_CHANNELS` the racing gain circuit has one interneuron per channel
/// and cannot decorrelate: `whiten process` refuses to let it be heard, and says why; the race
/// still runs it (cheaply) for the other whiteners' sake.
#[test]
fn heard_gain_circuit_is_refused_above_its_channel_cap_with_a_reason() {
    use interneuron_whitening::circuits::RACE_SPANNING_MAX_CHANNELS;
    use interneuron_whitening::io::{write_wav, SampleFormat, WavSpec};
    use interneuron_whitening::offline::{process_file, ProcessError, ProcessOptions};
    let n = RACE_SPANNING_MAX_CHANNELS + 1;
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("wide.wav");
    let spec = WavSpec {
        sample_rate: 48_000,
        channels: n as u16,
        format: SampleFormat::Float32,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let data: Vec<f32> = (0..4800 * n).map(|_| rng.random_range(-0.1..0.1)).collect();
    write_wav(&inp, spec, &data).unwrap();
    let run = |selected: WhitenerKind| {
        let opts = ProcessOptions {
            params: EngineParams {
                selected,
                ..EngineParams::default()
            },
            raw: false,
            raw_eta: 0.001,
            eta_per_vector: None,
            stats: None,
        };
        process_file(&inp, &dir.path().join("out.wav"), &opts, |_, _| {})
    };
    match run(WhitenerKind::Gain) {
        Err(ProcessError::Usage(m)) => {
            assert!(
                m.contains("up to 8 channels") && m.contains("decorrelate"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    let engine = Engine::new(n, RATE, EngineParams::default()).unwrap();
    assert_eq!(engine.channel_race().unwrap().gain().interneurons(), n);
    assert!(run(WhitenerKind::Interneuron).is_ok());
}
