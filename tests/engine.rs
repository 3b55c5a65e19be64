//! The audio engine through real WAV files and directly: spectral identity, whitening of
//! known mixtures in both framings with both circuits, safety under hostile input.

use interneuron_whitening::circuits::is_positive_definite;
use interneuron_whitening::engine::{Engine, EngineParams, Framing};
use interneuron_whitening::framing::BandLayout;
use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
use interneuron_whitening::offline::{process_file, ProcessOptions};
use interneuron_whitening::whitener::WhitenerKind;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
mod support;
use support::signals;

fn planar(interleaved: &[f32], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|c| interleaved.iter().skip(c).step_by(n).cloned().collect())
        .collect()
}

/// Run an engine over planar audio in random block sizes 1..=max_block.
fn run_engine(engine: &mut Engine, audio: &mut [Vec<f32>], max_block: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = audio[0].len();
    let mut t = 0;
    while t < len {
        let b = rng.random_range(1..=max_block).min(len - t);
        let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[t..t + b]).collect();
        engine.process(&mut bufs);
        t += b;
    }
}

fn identity_params(framing: Framing, fft_size: usize) -> EngineParams {
    EngineParams {
        framing,
        learning: false,
        init_scale: 1.0,
        reference_db: 0.0,
        output_db: 0.0,
        // The lowest floor the engine takes: learning is frozen, so it only enters the error
        // estimate, never the heard path.
        noise_floor_db: interneuron_whitening::engine::params::NOISE_FLOOR_DB.min,
        fft_size,
        ..EngineParams::default()
    }
}

#[test]
fn spectral_path_with_frozen_identity_is_a_pure_delay() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for &(n, fft) in &[(1usize, 256usize), (2, 1024), (3, 8192)] {
        for kind in [WhitenerKind::Direct, WhitenerKind::Interneuron] {
            let len = 3 * fft + 20_000;
            let input: Vec<Vec<f32>> = (0..n)
                .map(|_| {
                    (0..len)
                        .map(|_| 0.2 * rng.sample::<f32, _>(StandardNormal))
                        .collect()
                })
                .collect();
            let mut params = identity_params(Framing::Spectral, fft);
            params.selected = kind;
            let mut engine = Engine::new(n, 48_000.0, params).unwrap();
            assert_eq!(engine.latency_samples(), fft);
            let mut audio = input.clone();
            run_engine(&mut engine, &mut audio, 8192, 2);
            let lat = engine.latency_samples();
            let (mut err, mut sig) = (0.0f64, 0.0f64);
            for c in 0..n {
                for t in lat..len {
                    let d = audio[c][t] as f64 - input[c][t - lat] as f64;
                    err += d * d;
                    sig += (input[c][t - lat] as f64).powi(2);
                }
            }
            let db = 10.0 * (err / sig).log10();
            assert!(db < -100.0, "{kind} n={n} N={fft}: error {db:.1} dB");
        }
    }
}

/// At 0 % wet the spectral framing nulls against its input exactly — bit for bit, while the
/// whiteners learn and the input's statistics change — which is what a user checks a plugin
/// with. After a stretch at 30 % wet, exactness returns once the frames covering a sample are
/// all dry again: `N` samples (the four frames) after the last wet one. (The output level is
/// low, so that the wet stretch never engages the safety limiter, whose release would outlast
/// it.)
#[test]
fn spectral_framing_at_zero_wet_is_its_input_delayed_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for &(n, fft) in &[(1usize, 256usize), (2, 1024), (3, 1024)] {
        let len = 48_000;
        let input: Vec<Vec<f32>> = (0..n)
            .map(|c| {
                (0..len)
                    .map(|t| {
                        // Louder in the second half, and differently per channel; peaks stay
                        // well below full scale, where the safety limiter would act.
                        let g = if t < len / 2 {
                            0.01
                        } else {
                            0.12 / (c + 1) as f32
                        };
                        g * rng.sample::<f32, _>(StandardNormal)
                    })
                    .collect()
            })
            .collect();
        let params = EngineParams {
            framing: Framing::Spectral,
            fft_size: fft,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(n, 48_000.0, params).unwrap();
        engine.set_output(-40.0, 0.0);
        let (wet_from, wet_to) = (20_000, 24_000);
        let mut audio = input.clone();
        let mut t = 0;
        while t < len {
            let b = rng.random_range(1..=2000).min(len - t);
            // Blocks that start inside the wet stretch are processed at 30 % wet.
            let wet = if (wet_from..wet_to).contains(&t) {
                0.3
            } else {
                0.0
            };
            engine.set_output(-40.0, wet);
            let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[t..t + b]).collect();
            engine.process(&mut bufs);
            t += b;
        }
        // Wet frames end in the blocks that start in the stretch (up to 2000 samples past it);
        // the frame ending at input sample e is heard in outputs e + 1 ..= e + N.
        let wet_outputs = wet_from..=wet_to + 2000 + fft;
        let (mut compared, mut wet_heard) = (0, false);
        for c in 0..n {
            for t in 0..len {
                if wet_outputs.contains(&t) {
                    wet_heard |= audio[c][t] != input[c][t - fft];
                    continue;
                }
                let expected = if t >= fft { input[c][t - fft] } else { 0.0 };
                assert_eq!(
                    audio[c][t].to_bits(),
                    expected.to_bits(),
                    "n={n} N={fft} channel {c} t={t}: {} against {expected}",
                    audio[c][t]
                );
                compared += 1;
            }
        }
        assert!(compared > n * len / 2);
        assert!(
            wet_heard,
            "n={n} N={fft}: the wet stretch left the output dry"
        );
        assert!(engine.counters().updates > 0, "n={n} N={fft}: no learning");
    }
}

#[test]
fn spectral_identity_through_wav_files_is_aligned_and_same_length() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let frames = 30_001;
    let data: Vec<f32> = (0..2 * frames)
        .map(|_| 0.1 * rng.sample::<f32, _>(StandardNormal))
        .collect();
    let spec = WavSpec {
        sample_rate: 44_100,
        channels: 2,
        format: SampleFormat::Float32,
    };
    write_wav(&inp, spec, &data).unwrap();
    let opts = ProcessOptions {
        params: identity_params(Framing::Spectral, 1024),
        raw: false,
        raw_eta: 0.001,
        eta_per_vector: None,
        stats: None,
    };
    let summary = process_file(&inp, &out, &opts, |_, _| {}).unwrap();
    assert_eq!(summary.latency, 1024);
    let (ospec, odata) = read_wav(&out).unwrap();
    assert_eq!(ospec, spec);
    assert_eq!(odata.len(), data.len(), "same length");
    let err: f64 = data
        .iter()
        .zip(&odata)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let sig: f64 = data.iter().map(|a| (*a as f64).powi(2)).sum();
    assert!(10.0 * (err / sig).log10() < -100.0);
}

/// Interleaved stereo (or n-channel) noise mixed by a different matrix in each context.
fn mixture(mixings: &[DMatrix<f64>], context_len: usize, seed: u64) -> Vec<f32> {
    let n = mixings[0].nrows();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(mixings.len() * context_len * n);
    for a in mixings {
        for _ in 0..context_len {
            let s: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            for i in 0..n {
                let v: f64 = (0..n).map(|j| a[(i, j)] * s[j]).sum();
                out.push(v as f32);
            }
        }
    }
    out
}

#[test]
fn known_mixtures_are_whitened_in_every_context_both_framings_both_circuits() {
    let fs = 48_000u32;
    let context = 4 * fs as usize;
    // Mixing matrices with levels from about −30 to −12 dBFS and strong correlations.
    let mixings = vec![
        DMatrix::from_row_slice(2, 2, &[0.12, 0.08, 0.03, -0.1]),
        DMatrix::from_row_slice(2, 2, &[0.02, 0.01, 0.015, 0.03]),
        DMatrix::from_row_slice(2, 2, &[0.2, -0.15, 0.2, 0.1]),
    ];
    let data = mixture(&mixings, context, 5);
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("mix.wav");
    let spec = WavSpec {
        sample_rate: fs,
        channels: 2,
        format: SampleFormat::Float32,
    };
    write_wav(&inp, spec, &data).unwrap();
    let out_db = -20.0;
    let g2 = 10f64.powf(out_db / 10.0);
    for framing in [Framing::Channels, Framing::Spectral] {
        for kind in [
            WhitenerKind::Direct,
            WhitenerKind::Interneuron,
            WhitenerKind::Gain,
        ] {
            let out = dir.path().join(format!("out-{framing:?}-{kind}.wav"));
            let params = EngineParams {
                framing,
                selected: kind,
                output_db: out_db,
                ..EngineParams::default()
            };
            let opts = ProcessOptions {
                params,
                raw: false,
                raw_eta: 0.001,
                eta_per_vector: None,
                stats: None,
            };
            process_file(&inp, &out, &opts, |_, _| {}).unwrap();
            let (_, y) = read_wav(&out).unwrap();
            for ctx in 0..mixings.len() {
                // The last 1.5 s of each context, after adaptation.
                let from = ctx * context + context - (1.5 * fs as f64) as usize;
                let to = (ctx + 1) * context;
                let mut cov = DMatrix::<f64>::zeros(2, 2);
                for t in from..to {
                    for i in 0..2 {
                        for j in 0..2 {
                            cov[(i, j)] += y[2 * t + i] as f64 * y[2 * t + j] as f64;
                        }
                    }
                }
                cov /= (to - from) as f64 * g2;
                let dev = (cov.clone() - DMatrix::identity(2, 2)).abs().max();
                eprintln!("{framing:?} {kind} context {ctx}: max |cov/g² − I| = {dev:.4}");
                assert!(
                    dev < 0.1,
                    "{framing:?} {kind} context {ctx}: output covariance / g² = {cov}"
                );
            }
        }
    }
}

#[test]
fn raw_mode_equals_the_design_algorithm_in_f64() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("raw_in.wav");
    let mixings = vec![DMatrix::from_row_slice(
        3,
        3,
        &[0.5, 0.2, 0.0, 0.1, 0.4, -0.2, 0.3, 0.0, 0.6],
    )];
    let data = mixture(&mixings, 40_000, 9);
    let spec = WavSpec {
        sample_rate: 16_000,
        channels: 3,
        format: SampleFormat::Float32,
    };
    write_wav(&inp, spec, &data).unwrap();
    let eta = 0.002;
    let scale = 2.0;
    for kind in [WhitenerKind::Direct, WhitenerKind::Interneuron] {
        let out = dir.path().join(format!("raw-{kind}.wav"));
        let params = EngineParams {
            selected: kind,
            init_scale: scale,
            ..EngineParams::default()
        };
        let opts = ProcessOptions {
            params,
            raw: true,
            raw_eta: eta,
            eta_per_vector: None,
            stats: None,
        };
        process_file(&inp, &out, &opts, |_, _| {}).unwrap();
        let (ospec, y) = read_wav(&out).unwrap();
        assert_eq!(ospec.format, SampleFormat::Float32, "raw output is float");
        // docs/DESIGN.md §2.1 written out with nalgebra's solve, state in f64.
        let n = 3;
        let q = DMatrix::from_fn(n, n, |i, j| {
            let k = n as f64;
            let a = if i == 0 {
                (1.0 / k).sqrt()
            } else {
                (2.0 / k).sqrt()
            };
            a * (std::f64::consts::PI * (j as f64 + 0.5) * i as f64 / k).cos()
        });
        let mut m = DMatrix::<f64>::identity(n, n) * scale;
        let mut w = q * scale.sqrt();
        let mut worst: f64 = 0.0;
        for (t, frame) in data.chunks(n).enumerate() {
            let x = nalgebra::DVector::from_iterator(n, frame.iter().map(|v| *v as f64));
            let mm = if kind == WhitenerKind::Direct {
                m.clone()
            } else {
                &w * w.transpose()
            };
            let r = mm.cholesky().unwrap().solve(&x);
            if kind == WhitenerKind::Direct {
                m += (&r * r.transpose() - DMatrix::identity(n, n)) * eta;
            } else {
                let z = w.transpose() * &r;
                w += (&r * z.transpose() - &w) * eta;
            }
            for i in 0..n {
                let d = (y[t * n + i] as f64 - r[i]).abs() / r.amax().max(1.0);
                worst = worst.max(d);
            }
        }
        assert!(
            worst < 1e-6,
            "{kind}: raw output differs from §2 by {worst:e}"
        );
    }
}

#[test]
fn silence_then_loud_input_keeps_state_finite_positive_definite_and_output_bounded() {
    let fs = 48_000.0;
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(2, fs, params).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let block = 4800;
        let check = |engine: &Engine| {
            let mut ms: Vec<DMatrix<f64>> = Vec::new();
            if let Some(race) = engine.channel_race() {
                ms.push(race.direct().m().clone());
                ms.push(race.interneuron().w() * race.interneuron().w().transpose());
            }
            for m in &ms {
                assert!(
                    m.iter().all(|v| v.is_finite()) && is_positive_definite(m),
                    "{m}"
                );
            }
            if let Some(races) = engine.spectral_races() {
                for race in races {
                    let m = race.direct().m();
                    assert!(m.iter().all(|v| v.is_finite()) && is_positive_definite(m));
                }
            }
        };
        // 60 s of digital silence.
        for _ in 0..(60.0 * fs) as usize / block {
            let mut a = vec![vec![0.0f32; block]; 2];
            let mut bufs: Vec<&mut [f32]> = a.iter_mut().map(|c| &mut c[..]).collect();
            engine.process(&mut bufs);
            assert!(a.iter().flatten().all(|v| *v == 0.0 || v.abs() < 1e-3));
            check(&engine);
        }
        // Then 5 s of clipping full-scale noise: the whitening gain is huge at first.
        let mut peak = 0.0f32;
        for _ in 0..(5.0 * fs) as usize / block {
            let mut a: Vec<Vec<f32>> = (0..2)
                .map(|_| {
                    (0..block)
                        .map(|_| rng.random_range(-1.0f32..=1.0))
                        .collect()
                })
                .collect();
            let mut bufs: Vec<&mut [f32]> = a.iter_mut().map(|c| &mut c[..]).collect();
            engine.process(&mut bufs);
            peak = a.iter().flatten().fold(peak, |p, v| p.max(v.abs()));
            assert!(a.iter().flatten().all(|v| v.is_finite()));
            check(&engine);
        }
        assert!(peak <= 1.0, "{framing:?}: output peak {peak}");
        assert!(
            peak > 0.05,
            "{framing:?}: the loud input must come through ({peak})"
        );
        // The check above sees the state after any safeguard; that none was needed is what
        // shows the learning kept the state valid by itself.
        let c = engine.counters();
        assert_eq!(c.state_resets, 0, "{framing:?}: {c:?}");
        assert_eq!(c.capped_blocks, 0, "{framing:?}: {c:?}");
    }
}

#[test]
fn hostile_samples_any_block_size_any_channel_count() {
    let fs = 44_100.0;
    for framing in [Framing::Channels, Framing::Spectral] {
        for n in 1..=16usize {
            let params = EngineParams {
                framing,
                fft_size: 512,
                bands: 16,
                ..EngineParams::default()
            };
            let mut engine = Engine::new(n, fs, params).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let len = 30_000;
            let mut nan_inf = 0u64;
            let mut audio: Vec<Vec<f32>> = (0..n)
                .map(|c| {
                    (0..len)
                        .map(|t| {
                            let v = match (t / 3000 + c) % 6 {
                                0 => rng.sample::<f32, _>(StandardNormal) * 0.1,
                                1 => 0.5 + rng.sample::<f32, _>(StandardNormal) * 0.01, // DC offset
                                2 => {
                                    if (t / 50) % 2 == 0 {
                                        1.0
                                    } else {
                                        -1.0
                                    }
                                } // full-scale square
                                3 => 1e-40 * ((t % 7) as f32 - 3.0),                    // denormals
                                4 => 0.0,
                                _ => rng.sample::<f32, _>(StandardNormal) * 0.3,
                            };
                            if t % 997 == (c * 13) % 997 {
                                nan_inf += 1;
                                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][t % 3]
                            } else {
                                v
                            }
                        })
                        .collect()
                })
                .collect();
            run_engine(&mut engine, &mut audio, 8192, 77);
            for ch in &audio {
                assert!(
                    ch.iter().all(|v| v.is_finite() && v.abs() <= 1.0),
                    "{framing:?} n={n}"
                );
            }
            assert_eq!(
                engine.counters().non_finite_inputs,
                nan_inf,
                "{framing:?} n={n}"
            );
        }
    }
}

#[test]
fn switching_circuits_crossfades_without_a_click() {
    // Let the whiteners drift apart (the direct circuit is still far from its target at an
    // initial scale of 30 while the interneuron circuit has converged), freeze learning, feed
    // a constant vector and switch: the output must glide from P_a·x to P_b·x over ~20 ms in
    // small steps instead of jumping in one sample.
    let fs = 48_000.0;
    let mixings = vec![DMatrix::from_row_slice(2, 2, &[0.1, 0.05, 0.0, 0.08])];
    let data = mixture(&mixings, 48_000, 21);
    let mut audio = planar(&data, 2);
    let params = EngineParams {
        selected: WhitenerKind::Direct,
        init_scale: 30.0,
        output_db: -30.0,
        ..EngineParams::default()
    };
    let mut engine = Engine::new(2, fs, params).unwrap();
    let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[..]).collect();
    engine.process(&mut bufs);
    engine.set_learning(false);
    let constant = [0.03f32, -0.02];
    let run = |engine: &mut Engine, len: usize| -> Vec<Vec<f32>> {
        let mut a: Vec<Vec<f32>> = constant.iter().map(|v| vec![*v; len]).collect();
        let mut bufs: Vec<&mut [f32]> = a.iter_mut().map(|c| &mut c[..]).collect();
        engine.process(&mut bufs);
        a
    };
    let before = run(&mut engine, 2000);
    engine.select(WhitenerKind::Interneuron);
    let after = run(&mut engine, 4800);
    for c in 0..2 {
        let start = *before[c].last().unwrap();
        let end = *after[c].last().unwrap();
        let jump = (end - start).abs();
        assert!(
            jump > 1e-3,
            "the whiteners must differ for this test: {start} vs {end}"
        );
        assert!(
            after[c].iter().all(|v| v.abs() < 1.0),
            "limiter must stay out of the way"
        );
        let mut prev = start;
        let mut biggest: f32 = 0.0;
        for v in &after[c] {
            biggest = biggest.max((v - prev).abs());
            prev = *v;
        }
        // A 20 ms linear fade at 48 kHz moves 1/960 of the difference per sample.
        assert!(
            biggest < jump / 200.0,
            "channel {c}: step {biggest} for a change of {jump}"
        );
        // And the fade completes: after 30 ms the output is the new whitener's.
        assert!((after[c][1440] - end).abs() < 1e-6 * end.abs().max(1e-3));
    }
}

#[test]
fn learned_state_restores_into_a_fresh_engine_and_it_starts_whitened() {
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let mix = DMatrix::from_row_slice(2, 2, &[0.1, 0.06, 0.02, 0.07]);
        let audio = planar(&mixture(&[mix], 6 * 48_000, 9), 2);
        let mut trained = Engine::new(2, 48_000.0, params.clone()).unwrap();
        let mut a = audio.clone();
        run_engine(&mut trained, &mut a, 512, 1);
        let state = trained.learned_state();
        // Through JSON, as a plugin saves it.
        let json = serde_json::to_string(&state).unwrap();
        let state: interneuron_whitening::engine::LearnedState =
            serde_json::from_str(&json).unwrap();
        let mut restored = Engine::new(2, 48_000.0, params.clone()).unwrap();
        restored.restore_learned_state(&state).unwrap();
        // (serde_json's float parsing is not bit-exact in its last digit.)
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
        };
        let (got, want) = (restored.learned_state(), trained.learned_state());
        assert_eq!(got.races.len(), want.races.len());
        for (g, w) in got.races.iter().zip(&want.races) {
            assert!(
                close(&g.direct_m, &w.direct_m)
                    && close(&g.interneuron_w, &w.interneuron_w)
                    && close(&g.baseline_c, &w.baseline_c)
                    && close(&g.gain_g, &w.gain_g)
                    && !w.gain_g.is_empty(),
                "{framing:?}: restored state differs"
            );
        }
        // Writing into an existing state of the same shape reuses its buffers.
        let mut again = state.clone();
        let ptr = again.races[0].direct_m.as_ptr();
        restored.write_learned_state(&mut again);
        assert_eq!(again.races[0].direct_m.as_ptr(), ptr);
        // A fresh engine is not whitened in its first half second; the restored one is.
        let corr = |engine: &mut Engine| {
            let mut b: Vec<Vec<f32>> = audio.iter().map(|c| c[..24_000].to_vec()).collect();
            run_engine(engine, &mut b, 512, 2);
            let skip = engine.latency_samples() + 2400;
            signals::correlation(&b[0][skip..], &b[1][skip..])
        };
        let mut fresh = Engine::new(2, 48_000.0, params.clone()).unwrap();
        let (c_fresh, c_restored) = (corr(&mut fresh), corr(&mut restored));
        assert!(
            c_restored.abs() < 0.1 && c_fresh.abs() > 2.0 * c_restored.abs(),
            "{framing:?}: output correlation restored {c_restored:.3}, fresh {c_fresh:.3}"
        );
        // A state of another shape is refused with a reason, and the engine still works.
        let mut mono = Engine::new(1, 48_000.0, params.clone()).unwrap();
        let err = mono.restore_learned_state(&state).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        // A corrupt state (not positive definite) is refused; the engine starts over.
        let mut bad = state.clone();
        bad.races[0].direct_m.iter_mut().for_each(|v| *v = -*v);
        let mut e = Engine::new(2, 48_000.0, params).unwrap();
        assert!(e.restore_learned_state(&bad).is_err());
        let fresh_state = Engine::new(2, 48_000.0, e.params().clone())
            .unwrap()
            .learned_state();
        assert_eq!(
            e.learned_state(),
            fresh_state,
            "{framing:?}: not reset after a bad state"
        );
    }
}

/// Digital silence is not learned from (no resets, the learned state is kept), and a quiet but
/// real signal far below the reference level is whitened by both circuits without resets: the
/// learning sub-steps follow the direct circuit's stiffness `∝ 1/λ(M)`.
#[test]
fn silence_keeps_the_learned_state_and_quiet_signals_whiten_without_resets() {
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let loud = DMatrix::from_row_slice(2, 2, &[0.1, 0.06, 0.02, 0.07]);
        let mut engine = Engine::new(2, 48_000.0, params.clone()).unwrap();
        let mut a = planar(&mixture(&[loud], 4 * 48_000, 3), 2);
        run_engine(&mut engine, &mut a, 512, 1);
        // The spectral framing's frames overlap the signal for one FFT length after it stops.
        let mut flush = vec![vec![0.0f32; 4800]; 2];
        run_engine(&mut engine, &mut flush, 512, 2);
        let before = engine.learned_state();
        let mut silence = vec![vec![0.0f32; 3 * 48_000]; 2];
        run_engine(&mut engine, &mut silence, 512, 2);
        assert_eq!(
            engine.counters().state_resets,
            0,
            "{framing:?}: resets in silence"
        );
        assert!(
            engine.learned_state() == before,
            "{framing:?}: silence changed the learned state"
        );
        // −70 dBFS: 50 dB under the reference level, circuit eigenvalues ~3·10⁻³, below the
        // block learning rate. (Channels framing only: in the spectral framing the narrowest
        // low bands hold one or two bins, so each frame's outer product is nearly rank one and
        // the direct circuit, following it at a rate ∝ 1/λ(M), still resets at such levels.)
        if framing == Framing::Spectral {
            continue;
        }
        for kind in [WhitenerKind::Direct, WhitenerKind::Interneuron] {
            let quiet = &DMatrix::from_row_slice(2, 2, &[1.0, 0.6, 0.2, 0.7]) * 3e-4;
            let mut e = Engine::new(
                2,
                48_000.0,
                EngineParams {
                    selected: kind,
                    ..params.clone()
                },
            )
            .unwrap();
            let mut q = planar(&mixture(&[quiet], 8 * 48_000, 4), 2);
            run_engine(&mut e, &mut q, 512, 3);
            assert_eq!(e.counters().state_resets, 0, "{framing:?} {kind}: resets");
            let tail = 6 * 48_000..8 * 48_000;
            let rho = signals::correlation(&q[0][tail.clone()], &q[1][tail]);
            assert!(
                rho.abs() < 0.1,
                "{framing:?} {kind}: output correlation {rho:.3}"
            );
        }
    }
}

/// Input that ends in subnormals, silence, noise, or a mix of them; random parameter changes
/// between blocks (dry/wet and output level included, so the dry path copies input samples):
/// no output sample is ever subnormal (docs/DESIGN.md §7), and all stay finite and within ±1.
#[test]
fn no_output_sample_is_ever_subnormal() {
    let fs = 48_000.0;
    let subnormal = |rng: &mut ChaCha8Rng| {
        // Any subnormal, either sign: a random mantissa with a zero exponent.
        let bits = rng.random_range(1u32..0x0080_0000) | (rng.random::<u32>() & 0x8000_0000);
        f32::from_bits(bits)
    };
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            fft_size: 256,
            bands: 8,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(2, fs, params).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut checked = 0usize;
        for block in 0..600 {
            let len = rng.random_range(1..=1024);
            let kind = block % 4;
            let mut audio: Vec<Vec<f32>> = (0..2)
                .map(|_| {
                    (0..len)
                        .map(|_| match kind {
                            0 => subnormal(&mut rng),
                            1 => 0.0,
                            2 => rng.sample::<f32, _>(StandardNormal) * 0.1,
                            _ => match rng.random_range(0..3) {
                                0 => subnormal(&mut rng),
                                1 => rng.sample::<f32, _>(StandardNormal) * 1e-6,
                                _ => 0.0,
                            },
                        })
                        .collect()
                })
                .collect();
            if rng.random_bool(0.2) {
                let wet = [0.0, 0.3, 1.0][rng.random_range(0..3)];
                engine.set_output(rng.random_range(-60.0..=0.0), wet);
            }
            if rng.random_bool(0.05) {
                engine.select(WhitenerKind::ALL[rng.random_range(0..WhitenerKind::ALL.len())]);
            }
            if rng.random_bool(0.05) {
                let _ = engine.set_levels(
                    rng.random_range(-80.0..=0.0),
                    rng.random_range(-140.0..=-40.0),
                );
            }
            if rng.random_bool(0.02) {
                engine
                    .reinitialise(10f64.powf(rng.random_range(-2.0..=4.0)))
                    .unwrap();
            }
            if rng.random_bool(0.05) {
                engine.set_learning(rng.random_bool(0.7));
            }
            let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[..]).collect();
            engine.process(&mut bufs);
            for (c, ch) in audio.iter().enumerate() {
                for (t, v) in ch.iter().enumerate() {
                    assert!(
                        v.is_finite() && v.abs() <= 1.0 && (*v == 0.0 || v.is_normal()),
                        "{framing:?} block {block} (input kind {kind}) channel {c} sample {t}: {v:e}"
                    );
                }
                checked += ch.len();
            }
        }
        assert!(checked > 100_000);
    }
}

/// The engine runs at any positive finite sample rate with the parameters fitted to it (as the
/// plugin fits them), its output finite and within ±1; at extreme rates the learning block, the
/// FFT size and the adaptation time are capped (docs/DESIGN.md §11); a rate that is not
/// positive and finite is refused.
#[test]
fn any_positive_finite_sample_rate_runs() {
    use interneuron_whitening::engine::params::{fft_size_range, learn_interval, tau_ms_range};
    let rates = [
        1.0,
        7.3,
        100.0,
        1234.5678,
        8_000.0,
        22_050.0,
        44_100.0,
        384_000.0,
        1_234_567.75,
        5e6,
    ];
    for &fs in &rates {
        for (framing, fft_size) in [
            (Framing::Channels, 1024),
            (Framing::Spectral, 1024),
            (Framing::Spectral, 8192),
        ] {
            for n in [2usize, 16] {
                if n == 16 && framing == Framing::Spectral {
                    continue; // the channel count matters for the learning block only
                }
                let asked = EngineParams {
                    framing,
                    fft_size,
                    ..EngineParams::default()
                };
                let fitted = asked.fitted_to(n, fs);
                fitted.validate(n, fs).unwrap_or_else(|e| {
                    panic!("{fs} Hz {framing:?} N={fft_size} n={n}: fitted params invalid: {e}")
                });
                let mut engine = Engine::new(n, fs, fitted)
                    .unwrap_or_else(|e| panic!("{fs} Hz {framing:?} n={n}: {e}"));
                let mut rng = ChaCha8Rng::seed_from_u64(fs as u64);
                let mut audio: Vec<Vec<f32>> = (0..n)
                    .map(|_| {
                        // Below 1 kHz every sample may be a learning update and a stats
                        // record: fewer samples keep the test short.
                        (0..if fs < 1000.0 { 600 } else { 6_000 })
                            .map(|_| rng.sample::<f32, _>(StandardNormal) * 0.1)
                            .collect()
                    })
                    .collect();
                run_engine(&mut engine, &mut audio, 4096, 5);
                for ch in &audio {
                    assert!(
                        ch.iter()
                            .all(|v| v.is_finite() && v.abs() <= 1.0 && (*v == 0.0 || v.is_normal())),
                        "{fs} Hz {framing:?} N={fft_size} n={n}: output not finite, bounded, normal"
                    );
                }
            }
        }
    }
    // The caps: none at 8 kHz and above, all at 1234.5678 Hz.
    for fs in [8_000.0, 48_000.0, 1_234_567.75] {
        assert_eq!(learn_interval(2, fs), 256);
        assert_eq!(learn_interval(16, fs), 512);
        assert_eq!(fft_size_range(fs), (256, 8192));
    }
    assert_eq!(learn_interval(2, 1234.5678), 79, "64 ms at 1234.5678 Hz");
    assert_eq!(
        fft_size_range(1234.5678),
        (256, 2048),
        "2 s at 1234.5678 Hz"
    );
    let (lo, hi) = tau_ms_range(Framing::Channels, 2, 1024, 1234.5678);
    assert!((lo - 64.0).abs() < 0.1 && hi == 60_000.0, "{lo}..{hi}");
    // At 1 Hz one spectral hop (64 samples) is 64 s, longer than the longest adaptation time:
    // the range is that one time constant.
    let (lo, hi) = tau_ms_range(Framing::Spectral, 2, 256, 1.0);
    assert_eq!((lo, hi), (64_000.0, 64_000.0));
    // The library refuses what the plugin fits, naming the range valid at the rate.
    let asked = EngineParams {
        framing: Framing::Spectral,
        fft_size: 8192,
        tau_ms: 5000.0,
        ..EngineParams::default()
    };
    let e = asked.validate(2, 1000.0).unwrap_err().to_string();
    assert_eq!(
        e,
        "FFT size 8192 is outside 256..1024 for the spectral framing at 1000 Hz"
    );
    for bad in [0.0, -48_000.0, f64::NAN, f64::INFINITY] {
        let e = Engine::new(2, bad, EngineParams::default()).err();
        assert!(
            e.is_some_and(|e| e.to_string().contains("positive and finite")),
            "{bad} Hz"
        );
    }
}

/// A spectral band of fewer bins than channels learns once per `⌈n / bins⌉` frames, from the
/// mean over those frames, with η per update scaled alike (docs/DESIGN.md §3.2). At N = 2048
/// the hop (512 samples) is a whole learning block, so each band of `b` bins learns once per
/// `⌈n / b⌉` frames: counted against that model from the band layout. At N = 256 a learning
/// block is 2 hops: one-bin bands learn once per 2 frames with one channel and once per 4
/// with four, and the circuits still whiten a known four-channel mixture.
#[test]
fn narrow_bands_learn_once_per_n_vectors_and_still_whiten() {
    let fs = 48_000.0;
    let len = 4 * fs as usize;
    let mixing = DMatrix::from_row_slice(
        4,
        4,
        &[
            0.12, 0.05, 0.0, 0.02, //
            0.03, 0.1, -0.04, 0.0, //
            0.0, 0.06, 0.09, 0.03, //
            0.05, 0.0, 0.02, 0.08,
        ],
    );
    let mixed = planar(&mixture(std::slice::from_ref(&mixing), len, 21), 4);
    let out_db = -20.0;
    let g2 = 10f64.powf(out_db / 10.0);
    // As many bands as allowed: the lowest are one bin wide.
    let updates = |fft_size: usize, channels: usize, kind: WhitenerKind| {
        let params = EngineParams {
            framing: Framing::Spectral,
            selected: kind,
            fft_size,
            bands: (fft_size / 2 + 1).min(513),
            tau_ms: 100.0,
            output_db: out_db,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(channels, fs, params).unwrap();
        let mut audio = mixed[..channels].to_vec();
        run_engine(&mut engine, &mut audio, 512, 3);
        (engine.counters().updates, audio)
    };
    // Three circuits (direct, interneuron, gain) per band and update; a count may fall short of the model by an incomplete
    // block per band and the frames of the STFT's start an engine finds silent (a silent block
    // does not learn).
    let check = |what: &str, count: u64, expected: u64, bands: u64| {
        assert!(
            count <= expected && count + 3 * bands * 2 >= expected,
            "{what}: {count} updates, {expected} expected"
        );
    };
    let layout = BandLayout::for_fft_size(2048, 513).unwrap();
    let frames = (len / 512) as u64;
    let model = |n: usize| -> u64 {
        layout
            .bands()
            .iter()
            .map(|b| 3 * (frames / n.div_ceil(b.len()) as u64))
            .sum()
    };
    assert!(model(4) * 2 < model(1), "the layout has narrow bands");
    let (one, _) = updates(2048, 1, WhitenerKind::Interneuron);
    check("1 channel, N = 2048", one, model(1), 513);
    let (four, _) = updates(2048, 4, WhitenerKind::Interneuron);
    check("4 channels, N = 2048", four, model(4), 513);
    // N = 256: 129 one-bin bands, 750 frames per second.
    let frames = len as u64 / 64;
    let (one, _) = updates(256, 1, WhitenerKind::Interneuron);
    check("1 channel, N = 256", one, 3 * 129 * (frames / 2), 129);
    for kind in [WhitenerKind::Direct, WhitenerKind::Interneuron] {
        let (four, y) = updates(256, 4, kind);
        check(
            &format!("4 channels, N = 256, {kind}"),
            four,
            3 * 129 * (frames / 4),
            129,
        );
        // The output covariance over the last second (after the latency of one frame).
        let (from, to) = (len - fs as usize, len);
        let mut cov = DMatrix::<f64>::zeros(4, 4);
        for i in 0..4 {
            for j in 0..4 {
                cov[(i, j)] = y[i][from..to]
                    .iter()
                    .zip(&y[j][from..to])
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
            }
        }
        cov /= (to - from) as f64 * g2;
        let dev = (cov.clone() - DMatrix::identity(4, 4)).abs().max();
        assert!(dev < 0.15, "{kind}: output covariance / g² = {cov}");
    }
}

/// Engines build at any rate with the adaptation time at the lowest end its range allows,
/// whatever the channel count and band layout: a narrow band's update then spans many τ
/// (docs/DESIGN.md §3.2), and every whitener must accept its learning rates (the soak found a
/// 16-channel engine at 11025 Hz refused).
#[test]
fn shortest_adaptation_time_builds_with_narrow_bands_at_any_rate() {
    for rate in [1234.5678, 11_025.0, 48_000.0, 384_000.0] {
        for channels in [1, 2, 16] {
            for bands in [1, 32, 513] {
                let mut params = EngineParams {
                    framing: Framing::Spectral,
                    bands,
                    ..EngineParams::default()
                };
                let (lo, _) = params.tau_ms_range(channels, rate);
                params.tau_ms = lo;
                let mut engine = Engine::new(channels, rate, params).unwrap_or_else(|e| {
                    panic!("{channels} channels, {bands} bands at {rate} Hz, τ = {lo} ms: {e}")
                });
                engine.set_tau_ms(lo).unwrap();
            }
        }
    }
}

/// Learning spread over small host blocks (docs/DESIGN.md §4.6) learns what learning at
/// once learns: 16 channels through three contexts 30 dB apart, once in 4096-sample host
/// blocks and once in 64-sample ones (and in calls of 1 and 7 frames). Big host blocks pay for every update before the next
/// segment is heard (nothing merged); small ones fall behind after the changes (updates
/// merged) and catch up: at the end both engines' circuits agree, and so does their output.
#[test]
fn learning_spread_over_small_host_blocks_learns_what_big_blocks_learn() {
    let n = 16;
    let rate = 48_000.0;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mixings: Vec<DMatrix<f64>> = [0.05, 1.5, 0.05]
        .iter()
        .map(|g| DMatrix::from_fn(n, n, |_, _| g * rng.sample::<f64, _>(StandardNormal) / 4.0))
        .collect();
    let context = 72_000;
    let audio = planar(&mixture(&mixings, context, 22), n);
    let run = |block: usize| {
        let mut engine = Engine::new(n, rate, EngineParams::default()).unwrap();
        let mut out = audio.clone();
        let mut t = 0;
        while t < out[0].len() {
            let b = block.min(out[0].len() - t);
            let mut bufs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[t..t + b]).collect();
            engine.process(&mut bufs);
            t += b;
        }
        (engine, out)
    };
    let (big, out_big) = run(4096);
    let (small, out_small) = run(64);
    // Calls of a few frames each pay for less than one unit of learning: they add up.
    for tiny in [1, 7] {
        let (e, _) = run(tiny);
        let r = e.channel_race().unwrap();
        let rb = big.channel_race().unwrap();
        let m = (r.direct().m() - rb.direct().m()).norm() / rb.direct().m().norm();
        assert!(m < 1e-3, "{tiny}-frame calls: M differs by {m}");
    }
    assert_eq!(big.counters().merged_updates, 0, "{:?}", big.counters());
    assert!(
        small.counters().merged_updates > 0,
        "{:?}",
        small.counters()
    );
    let rel = |a: &DMatrix<f64>, b: &DMatrix<f64>| (a - b).norm() / b.norm();
    let (rb, rs) = (big.channel_race().unwrap(), small.channel_race().unwrap());
    let m = rel(rs.direct().m(), rb.direct().m());
    let (wb, ws) = (rb.interneuron().w(), rs.interneuron().w());
    let mw = rel(&(ws * ws.transpose()), &(wb * wb.transpose()));
    assert!(m < 1e-3 && mw < 1e-3, "M differs by {m}, W Wᵀ by {mw}");
    // The last half second of output: the same whitened signal.
    let tail = out_big[0].len() - 24_000;
    for c in 0..n {
        let (a, b) = (&out_big[c][tail..], &out_small[c][tail..]);
        let corr = signals::correlation(a, b);
        assert!(corr > 0.9999, "channel {c}: correlation {corr}");
    }
}
