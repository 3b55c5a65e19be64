//! What is heard of the whitening (docs/DESIGN.md §3.7), each effect measured on generated
//! audio against ground truth computed here: depth (the output covariance `C^(1−depth)`),
//! delta (`wet − dry`), tilt (a sloped target spectrum) and the frequency limits (bins outside
//! pass dry).

// Per-sample loops index channels and frames together, as the formulas do.
#![allow(clippy::needless_range_loop)]

mod support;
use interneuron_whitening::engine::{Engine, EngineParams, Framing, Shaping};
use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use realfft::RealFftPlanner;
use support::signals::mixed_noise;

const RATE: f64 = 48_000.0;

/// Run `engine` over `audio` in place, in host blocks of `block` frames.
fn run(engine: &mut Engine, audio: &mut [Vec<f32>], block: usize) {
    let len = audio[0].len();
    let mut t = 0;
    while t < len {
        let b = block.min(len - t);
        let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[t..t + b]).collect();
        engine.process(&mut bufs);
        t += b;
    }
}

/// Sample covariance of `audio[..][from..]`.
fn covariance(audio: &[Vec<f32>], from: usize) -> DMatrix<f64> {
    let n = audio.len();
    let len = audio[0].len() - from;
    DMatrix::from_fn(n, n, |i, j| {
        (from..audio[0].len())
            .map(|t| audio[i][t] as f64 * audio[j][t] as f64)
            .sum::<f64>()
            / len as f64
    })
}

fn log_condition(c: &DMatrix<f64>) -> f64 {
    let e = SymmetricEigen::new(c.clone()).eigenvalues;
    (e.max() / e.min()).ln()
}

/// A 4-channel mixture with eigenvalues 1, 0.3, 0.05, 0.01 (condition number 100) at about
/// −20 dBFS, in a random orthonormal basis.
fn spread_mixture(seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = DMatrix::from_fn(4, 4, |_, _| rng.sample::<f64, _>(StandardNormal));
    let q = g.qr().q();
    let sd = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(
        [1.0f64, 0.3, 0.05, 0.01]
            .iter()
            .map(|l| 0.15 * l.sqrt())
            .collect(),
    ));
    q * sd
}

#[test]
fn half_depth_halves_the_log_condition_number_and_full_depth_is_the_plain_whitener() {
    let mix = spread_mixture(3);
    let len = (20.0 * RATE) as usize;
    let input = mixed_noise(&mix, len, 4);
    let c_in = &mix * mix.transpose();
    let measure_from = len / 2;
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let mut outputs = Vec::new();
        for depth in [1.0, 0.5] {
            let mut engine = Engine::new(4, RATE, params.clone()).unwrap();
            engine.set_shaping(Shaping {
                depth,
                ..Shaping::default()
            });
            let mut audio = input.clone();
            run(&mut engine, &mut audio, 512);
            outputs.push(audio);
        }
        let full = log_condition(&covariance(&outputs[0], measure_from));
        let half = log_condition(&covariance(&outputs[1], measure_from));
        let ln_c = log_condition(&c_in);
        // Full depth whitens (log cond near 0); half depth keeps half of ln cond(C) ± 15 %.
        assert!(
            full < 0.1 * ln_c,
            "{framing}: full depth log cond {full:.3}"
        );
        let ratio = half / ln_c;
        eprintln!("{framing}: ln cond(C) {ln_c:.3}, full depth {full:.3}, half depth {ratio:.3}");
        assert!(
            (ratio - 0.5).abs() < 0.5 * 0.15,
            "{framing}: half depth keeps {ratio:.3} of ln cond(C) = {ln_c:.3}"
        );
    }
}

#[test]
fn depth_shapes_only_what_is_heard_full_depth_is_bit_identical() {
    // Two engines on the same input: one always at full depth, one at 30 % for the first
    // half. Learning does not depend on depth, so once the second returns to full depth the
    // outputs must be the same bits.
    let mix = spread_mixture(5);
    let len = (4.0 * RATE) as usize;
    let input = mixed_noise(&mix, len, 6);
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let mut plain = Engine::new(4, RATE, params.clone()).unwrap();
        let mut shaped = Engine::new(4, RATE, params).unwrap();
        let mut a = input.clone();
        run(&mut plain, &mut a, 300);
        let half = len / 2;
        let mut b: Vec<Vec<f32>> = input.iter().map(|c| c[..half].to_vec()).collect();
        shaped.set_shaping(Shaping {
            depth: 0.3,
            ..Shaping::default()
        });
        run(&mut shaped, &mut b, 300);
        let differs = (0..4).any(|c| a[c][..half] != b[c][..]);
        assert!(differs, "{framing}: depth 0.3 must change the output");
        shaped.set_shaping(Shaping::default());
        let mut rest: Vec<Vec<f32>> = input.iter().map(|c| c[half..].to_vec()).collect();
        run(&mut shaped, &mut rest, 300);
        // The spectral framing's output still carries, for its latency and one frame, the
        // overlap-added frames heard at 30 %.
        let settle = 2 * plain.latency_samples();
        for c in 0..4 {
            assert!(
                a[c][half + settle..] == rest[c][settle..],
                "{framing}: channel {c} differs at full depth"
            );
        }
    }
}

#[test]
fn delta_plus_the_delayed_dry_is_the_wet_output_and_switching_it_fades() {
    let mix = spread_mixture(7);
    let len = (3.0 * RATE) as usize;
    let input = mixed_noise(&mix, len, 8);
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            dry_wet: 0.8,
            ..EngineParams::default()
        };
        let mut wet_engine = Engine::new(4, RATE, params.clone()).unwrap();
        let lat = wet_engine.latency_samples();
        let mut wet = input.clone();
        run(&mut wet_engine, &mut wet, 256);
        // Delta on from the start.
        let mut delta_engine = Engine::new(
            4,
            RATE,
            EngineParams {
                shaping: Shaping {
                    delta: true,
                    ..Shaping::default()
                },
                ..params.clone()
            },
        )
        .unwrap();
        let mut delta = input.clone();
        run(&mut delta_engine, &mut delta, 256);
        let mut worst = 0.0f64;
        for c in 0..4 {
            for t in lat..len {
                let sum = delta[c][t] as f64 + input[c][t - lat] as f64;
                worst = worst.max((sum - wet[c][t] as f64).abs());
            }
        }
        eprintln!("{framing}: delta + dry − wet ≤ {worst:e}");
        assert!(worst < 1e-6, "{framing}: delta + dry differs by {worst:e}");
        // Switched on mid-stream (channels framing, where the fade is per sample): the dry
        // share subtracted ramps linearly over 20 ms, so the output is wet − ramp·dry.
        if framing == Framing::Channels {
            let switch = len / 2;
            let halves = |engine: &mut Engine, delta_at_switch: bool| {
                let mut out = input.clone();
                let mut bufs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[..switch]).collect();
                engine.process(&mut bufs);
                engine.set_shaping(Shaping {
                    delta: delta_at_switch,
                    ..Shaping::default()
                });
                let mut bufs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[switch..]).collect();
                engine.process(&mut bufs);
                out
            };
            let wet = halves(&mut Engine::new(4, RATE, params.clone()).unwrap(), false);
            let out = halves(&mut Engine::new(4, RATE, params.clone()).unwrap(), true);
            let fade = (0.020 * RATE) as usize;
            let mut worst = 0.0f64;
            for c in 0..4 {
                for t in switch - 10..switch + 2 * fade {
                    let ramp = (t.saturating_sub(switch) as f64 / fade as f64).min(1.0);
                    let want = wet[c][t] as f64 - ramp * input[c][t] as f64;
                    worst = worst.max((out[c][t] as f64 - want).abs());
                }
            }
            assert!(
                worst < 1e-6,
                "delta fade differs from the ramp by {worst:e}"
            );
        }
    }
}

/// Power per octave band `[lo·2^k, 2·lo·2^k)`, dB, by Welch's method (Hann, 4096 points).
fn octave_powers_db(x: &[f32], lo: f64, octaves: usize) -> Vec<f64> {
    let n = 4096;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect();
    let mut psd = vec![0.0; n / 2 + 1];
    let mut frame = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    let mut t = 0;
    while t + n <= x.len() {
        for i in 0..n {
            frame[i] = x[t + i] as f64 * window[i];
        }
        fft.process(&mut frame, &mut spec).unwrap();
        for (p, s) in psd.iter_mut().zip(&spec) {
            *p += s.norm_sqr();
        }
        t += n / 2;
    }
    let df = RATE / n as f64;
    (0..octaves)
        .map(|k| {
            let (f0, f1) = (lo * 2f64.powi(k as i32), lo * 2f64.powi(k as i32 + 1));
            let p: f64 = psd
                .iter()
                .enumerate()
                .filter(|(i, _)| (*i as f64 * df) >= f0 && (*i as f64 * df) < f1)
                .map(|(_, p)| p)
                .sum();
            10.0 * p.log10()
        })
        .collect()
}

/// White noise through a one-pole low-pass at about 500 Hz (−6 dB/octave above), −20 dBFS.
fn coloured_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = (-2.0 * std::f64::consts::PI * 500.0 / RATE).exp();
    let mut y = 0.0;
    (0..len)
        .map(|_| {
            y = a * y + (1.0 - a) * rng.sample::<f64, _>(StandardNormal);
            (3.0 * y) as f32
        })
        .collect()
}

#[test]
fn tilt_minus_three_gives_a_pink_output_per_octave() {
    let len = (20.0 * RATE) as usize;
    let input = coloured_noise(len, 9);
    let octaves = 6; // 250 Hz … 16 kHz
    let mut spread = Vec::new();
    for tilt in [0.0, -3.0] {
        let params = EngineParams {
            framing: Framing::Spectral,
            shaping: Shaping {
                tilt_db_per_octave: tilt,
                ..Shaping::default()
            },
            ..EngineParams::default()
        };
        let mut engine = Engine::new(1, RATE, params).unwrap();
        let mut audio = vec![input.clone()];
        run(&mut engine, &mut audio, 512);
        let p = octave_powers_db(&audio[0][len / 2..], 250.0, octaves);
        // Pink has equal power per octave; white gains 3 dB per octave.
        let per_octave = tilt + 3.0;
        let residual: Vec<f64> = p
            .iter()
            .enumerate()
            .map(|(k, v)| v - per_octave * k as f64)
            .collect();
        let mean = residual.iter().sum::<f64>() / octaves as f64;
        let worst = residual
            .iter()
            .map(|r| (r - mean).abs())
            .fold(0.0, f64::max);
        eprintln!("tilt {tilt}: octave powers {p:.2?}, worst deviation {worst:.2} dB");
        assert!(
            worst < 1.5,
            "tilt {tilt}: octave powers {p:.2?} deviate {worst:.2} dB from {per_octave} dB/oct"
        );
        spread.push(p[octaves - 1] - p[0]);
    }
    // The two measurements are told apart: white rises ~15 dB over five octaves, pink not.
    assert!(spread[0] > 12.0 && spread[1].abs() < 3.0, "{spread:?}");
}

/// Amplitude and phase of the `f` Hz component of `x`, by projection.
fn tone(x: &[f32], f: f64, t0: usize) -> nalgebra::Complex<f64> {
    let w = 2.0 * std::f64::consts::PI * f / RATE;
    let s: nalgebra::Complex<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| nalgebra::Complex::from_polar(*v as f64, -w * (t0 + i) as f64))
        .sum();
    s * (2.0 / x.len() as f64)
}

#[test]
fn bins_outside_the_limits_pass_through_dry() {
    let len = (6.0 * RATE) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    // A 200 Hz tone in noise: the tone lies below a 1 kHz low limit.
    let input: Vec<f32> = (0..len)
        .map(|t| {
            let tone = 0.1 * (2.0 * std::f64::consts::PI * 200.0 * t as f64 / RATE).sin();
            (tone + 0.03 * rng.sample::<f64, _>(StandardNormal)) as f32
        })
        .collect();
    let spectral = |shaping: Shaping| EngineParams {
        framing: Framing::Spectral,
        shaping,
        ..EngineParams::default()
    };
    // Crossed limits leave nothing to process: the output is the input, delayed.
    let mut engine = Engine::new(
        1,
        RATE,
        spectral(Shaping {
            low_limit_hz: 15_000.0,
            high_limit_hz: 100.0,
            ..Shaping::default()
        }),
    )
    .unwrap();
    let lat = engine.latency_samples();
    let mut audio = vec![input.clone()];
    run(&mut engine, &mut audio, 333);
    let worst = (lat..len)
        .map(|t| (audio[0][t] - input[t - lat]).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "nothing processed, yet off by {worst:e}");
    // A 1 kHz low limit: the 200 Hz tone comes out as it went in; without it, it does not.
    let from = len / 2;
    let dry = tone(&input[from - lat..len - lat], 200.0, 0);
    for (low, should_pass) in [(1000.0, true), (20.0, false)] {
        let mut engine = Engine::new(
            1,
            RATE,
            spectral(Shaping {
                low_limit_hz: low,
                ..Shaping::default()
            }),
        )
        .unwrap();
        let mut audio = vec![input.clone()];
        run(&mut engine, &mut audio, 333);
        let out = tone(&audio[0][from..], 200.0, 0);
        let rel = (out - dry).norm() / dry.norm();
        eprintln!("low limit {low} Hz: 200 Hz tone changed by {rel:e}");
        if should_pass {
            assert!(rel < 1e-3, "low limit {low}: the tone changed by {rel:e}");
        } else {
            assert!(rel > 0.1, "no limit: the tone should be whitened ({rel:e})");
        }
    }
}

#[test]
fn the_view_shows_the_heard_matrix_and_the_band_gains() {
    use interneuron_whitening::engine::{HeardView, ViewKind, ViewSender};
    let latest = |rx: &crossbeam_channel::Receiver<HeardView>| rx.try_iter().last().unwrap();
    // Channels: once adapted, the matrix from input to output is g/a_ref · C_n^{−1/2}, with
    // C_n = C / a_ref² the covariance in the circuits' units — computed here from the true
    // covariance.
    let mix = spread_mixture(11);
    let len = (12.0 * RATE) as usize;
    let mut audio = mixed_noise(&mix, len, 12);
    let mut engine = Engine::new(4, RATE, EngineParams::default()).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    engine.set_view_sender(Some(ViewSender::new(tx)));
    run(&mut engine, &mut audio, 512);
    let view = latest(&rx);
    assert_eq!(view.kind, ViewKind::Matrix);
    assert_eq!(view.len, 4);
    let a_ref = 0.1f64; // −20 dBFS
    let c_n = (&mix * mix.transpose()) / (a_ref * a_ref);
    let e = SymmetricEigen::new(c_n);
    let inv_sqrt = &e.eigenvectors
        * DMatrix::from_diagonal(&e.eigenvalues.map(|l| 1.0 / l.sqrt()))
        * e.eigenvectors.transpose();
    let want = inv_sqrt * (0.1 / a_ref);
    let got = DMatrix::from_fn(4, 4, |i, j| view.matrix_entry(i, j) as f64);
    let rel = (&got - &want).norm() / want.norm();
    eprintln!("view matrix vs C^(-1/2): relative error {rel:.3}");
    assert!(rel < 0.1, "view matrix off by {rel:.3}");

    // Spectral, white noise at the reference level: every band's gain is about 0 dB; with
    // depth 0 exactly 0 dB; with tilt −3 dB/oct it falls 3 dB per octave.
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let white: Vec<f32> = (0..2 * len)
        .map(|_| (0.1 * rng.sample::<f64, _>(StandardNormal)) as f32)
        .collect();
    for (shaping, check) in [
        (Shaping::default(), "flat"),
        (
            Shaping {
                depth: 0.0,
                ..Shaping::default()
            },
            "depth 0",
        ),
        (
            Shaping {
                tilt_db_per_octave: -3.0,
                ..Shaping::default()
            },
            "tilt",
        ),
    ] {
        // A long adaptation time, so that the narrow bands' estimates are steady (within about ±0.7 dB).
        let params = EngineParams {
            framing: Framing::Spectral,
            shaping,
            tau_ms: 2000.0,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(1, RATE, params).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1024);
        engine.set_view_sender(Some(ViewSender::new(tx)));
        let mut audio = vec![white.clone()];
        run(&mut engine, &mut audio, 512);
        let view = latest(&rx);
        assert_eq!(view.kind, ViewKind::Bands);
        let bands: Vec<(f64, f64)> = (0..view.len)
            .filter(|&b| view.freq_hz[b] > 200.0)
            .map(|b| (view.freq_hz[b] as f64, view.gain_db[b] as f64))
            .collect();
        let slope = if check == "tilt" { -3.0 } else { 0.0 };
        // Relative to the band at 1 kHz: gain − slope·log₂(f/1 kHz) is the same for all.
        let offsets: Vec<f64> = bands
            .iter()
            .map(|(f, g)| g - slope * (f / 1000.0).log2())
            .collect();
        let mean = offsets.iter().sum::<f64>() / offsets.len() as f64;
        let worst = offsets.iter().map(|o| (o - mean).abs()).fold(0.0, f64::max);
        eprintln!("{check}: band gains {mean:+.2} dB ± {worst:.2}");
        assert!(worst < 1.0, "{check}: band gains spread by {worst:.2} dB");
        match check {
            "flat" => assert!(mean.abs() < 0.5, "white at the reference: {mean:+.2} dB"),
            "depth 0" => assert!(mean.abs() < 1e-4 && worst < 1e-4, "{mean} {worst}"),
            _ => {}
        }
    }
}
