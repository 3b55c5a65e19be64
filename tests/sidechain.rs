//! Sidechain learning in the engine (docs/DESIGN.md §3.8): with a key, the main input is
//! whitened by the key's statistics. Ground truth: main noise of covariance `C_main`, key noise
//! of covariance `C_key` (independent sources, independently mixed); the whiteners converge to
//! `M = (C_key + ε²I)^{1/2}`, so the output covariance is `g² · C_key^{-1/2} C_main C_key^{-1/2}`
//! (to the floor), computed here from the true covariances with nalgebra.

use interneuron_whitening::engine::{Engine, EngineParams, Framing};
use interneuron_whitening::whitener::WhitenerKind;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
mod support;
use support::linalg::{rel_err, sqrtm};
use support::signals::mixed_noise;

const FS: f64 = 48_000.0;
/// Largest relative (Frobenius) error of the keyed output covariance against the ground truth.
const TOLERANCE: f64 = 0.03;

/// Run `engine` over `main` in random blocks of 1..=`max_block`, keyed by `key` if given.
fn run(
    engine: &mut Engine,
    main: &mut [Vec<f32>],
    key: Option<&[Vec<f32>]>,
    max_block: usize,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = main[0].len();
    let mut t = 0;
    while t < len {
        let b = rng.random_range(1..=max_block).min(len - t);
        let mut bufs: Vec<&mut [f32]> = main.iter_mut().map(|c| &mut c[t..t + b]).collect();
        match key {
            Some(k) => {
                let ks: Vec<&[f32]> = k.iter().map(|c| &c[t..t + b]).collect();
                engine.process_keyed(&mut bufs, &ks);
            }
            None => engine.process(&mut bufs),
        }
        t += b;
    }
}

/// The covariance of `y[c][from..to]` divided by `g2`.
fn covariance(y: &[Vec<f32>], from: usize, to: usize, g2: f64) -> DMatrix<f64> {
    let n = y.len();
    DMatrix::from_fn(n, n, |i, j| {
        (from..to)
            .map(|t| y[i][t] as f64 * y[j][t] as f64)
            .sum::<f64>()
            / ((to - from) as f64 * g2)
    })
}

/// The mixing matrices of the ground-truth test: a loud, strongly correlated main and a key
/// of other levels and correlation (about −20 and −26 dBFS).
fn mixings() -> (DMatrix<f64>, DMatrix<f64>) {
    let a_main = DMatrix::from_row_slice(2, 2, &[0.12, 0.08, 0.03, -0.1]);
    let a_key = DMatrix::from_row_slice(2, 2, &[0.02, -0.05, 0.06, 0.03]);
    (a_main, a_key)
}

/// Relative error between the keyed output's covariance and the ground truth, with the
/// ground truth's own distance from whiteness.
fn keyed_error(framing: Framing, kind: WhitenerKind) -> (f64, f64) {
    let (a_main, a_key) = mixings();
    let len = 6 * FS as usize;
    let mut main = mixed_noise(&a_main, len, 11);
    let key = mixed_noise(&a_key, len, 12);
    // The keyed output is louder than the output level by the truth's eigenvalues (up to ~9
    // here): at −20 dBFS its peaks would reach the limiter and bias the covariance by ~5 %.
    let out_db = -30.0;
    let params = EngineParams {
        framing,
        selected: kind,
        output_db: out_db,
        ..EngineParams::default()
    };
    let mut engine = Engine::new(2, FS, params).unwrap();
    run(&mut engine, &mut main, Some(&key), 3000, 13);
    let c_main = &a_main * a_main.transpose();
    let c_key = &a_key * a_key.transpose();
    let k_inv_half = sqrtm(&c_key).try_inverse().unwrap();
    let expected = &k_inv_half * c_main * &k_inv_half;
    // The last 2 s, long after adaptation (τ = 300 ms).
    let measured = covariance(&main, len - 2 * FS as usize, len, 10f64.powf(out_db / 10.0));
    let i2 = DMatrix::<f64>::identity(2, 2);
    (rel_err(&measured, &expected), rel_err(&expected, &i2))
}

#[test]
fn with_a_key_the_main_input_is_whitened_by_the_keys_statistics() {
    let mut errors = Vec::new();
    for framing in [Framing::Channels, Framing::Spectral] {
        for kind in [WhitenerKind::Direct, WhitenerKind::Interneuron] {
            let (err, from_white) = keyed_error(framing, kind);
            eprintln!(
                "{framing:?} {kind}: relative error {err:.4} (truth is {from_white:.2} from I)"
            );
            errors.push((framing, kind, err));
            // The key's whitening of main is plainly not main's own whitening (≈ I).
            assert!(from_white > 1.0);
        }
    }
    for (framing, kind, err) in errors {
        assert!(err < TOLERANCE, "{framing:?} {kind}: relative error {err}");
    }
}

/// The main input as its own key is ordinary whitening, sample for sample, in both framings
/// and in any block sizes: the key path computes the same statistics at the same instants.
#[test]
fn the_main_input_as_its_own_key_is_ordinary_whitening() {
    let (a_main, _) = mixings();
    let len = FS as usize;
    let input = mixed_noise(&a_main, len, 21);
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            fft_size: 512,
            ..EngineParams::default()
        };
        let mut plain = input.clone();
        let mut engine = Engine::new(2, FS, params.clone()).unwrap();
        run(&mut engine, &mut plain, None, 700, 22);
        let mut keyed = input.clone();
        let mut engine_k = Engine::new(2, FS, params).unwrap();
        run(&mut engine_k, &mut keyed, Some(&input), 700, 22);
        assert_eq!(plain, keyed, "{framing:?}");
        assert_eq!(engine.counters(), engine_k.counters(), "{framing:?}");
    }
}

/// A missing key (another channel count, an empty or short key) is silence: the whiteners
/// keep what they learned and keep whitening the main input with it.
#[test]
fn a_missing_or_short_key_is_silence_and_keeps_the_learned_state() {
    let (a_main, a_key) = mixings();
    for framing in [Framing::Channels, Framing::Spectral] {
        let params = EngineParams {
            framing,
            ..EngineParams::default()
        };
        let mut engine = Engine::new(2, FS, params).unwrap();
        let mut main = mixed_noise(&a_main, FS as usize, 31);
        let key = mixed_noise(&a_key, FS as usize, 32);
        run(&mut engine, &mut main, Some(&key), 1024, 33);
        // A stretch of silent key first: the key's last frames (spectral) and the partial
        // learning block (channels) still hold key signal, which is rightly learned from.
        let zeros = vec![vec![0.0f32; FS as usize / 10]; 2];
        let mut tail = mixed_noise(&a_main, FS as usize / 10, 35);
        run(&mut engine, &mut tail, Some(&zeros), 1024, 36);
        let snapshot = |e: &Engine| -> Vec<f64> {
            match framing {
                Framing::Channels => {
                    let r = e.channel_race().unwrap();
                    r.response_matrix(WhitenerKind::Direct)
                        .iter()
                        .chain(r.response_matrix(WhitenerKind::Interneuron).iter())
                        .cloned()
                        .collect()
                }
                Framing::Spectral => e
                    .spectral_races()
                    .unwrap()
                    .iter()
                    .flat_map(|r| {
                        r.response_matrix(WhitenerKind::Direct)
                            .iter()
                            .map(|z| z.re + z.im)
                            .collect::<Vec<_>>()
                    })
                    .collect(),
            }
        };
        let before = snapshot(&engine);
        let mut more = mixed_noise(&a_main, FS as usize / 2, 34);
        let mono = [key[0].clone()];
        let mut t = 0;
        for (i, block) in [512usize, 1024, 333, 4096]
            .iter()
            .cycle()
            .take(20)
            .enumerate()
        {
            let b = (*block).min(more[0].len() - t);
            let mut bufs: Vec<&mut [f32]> = more.iter_mut().map(|c| &mut c[t..t + b]).collect();
            match i % 3 {
                0 => engine.process_keyed(&mut bufs, &[]),
                1 => engine.process_keyed(&mut bufs, &[&mono[0][..b.min(mono[0].len())]]),
                // The right channels, no samples: a key shorter than the block.
                _ => {
                    let ks: Vec<&[f32]> = key.iter().map(|c| &c[..0]).collect();
                    engine.process_keyed(&mut bufs, &ks)
                }
            }
            t += b;
        }
        assert_eq!(before, snapshot(&engine), "{framing:?}: the state moved");
        support::signals::check_clean(&more, "after a missing key");
        // And it kept whitening: the output is not silent.
        assert!(support::signals::rms(&more[0][FS as usize / 4..]) > 1e-3);
    }
}

/// Interleave planar audio.
fn interleave(planar: &[Vec<f32>]) -> Vec<f32> {
    let n = planar.len();
    (0..planar[0].len() * n)
        .map(|i| planar[i % n][i / n])
        .collect()
}

/// `whiten process IN OUT --learn-from KEY`: the ground truth through files (the spectral
/// framing, whose latency the CLI compensates), and a key that does not match IN refused with
/// a message naming it, OUT not written.
#[test]
fn whiten_process_learns_from_a_key_file() {
    use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
    let (a_main, a_key) = mixings();
    let len = 6 * FS as usize;
    let dir = tempfile::tempdir().unwrap();
    let spec = WavSpec {
        sample_rate: FS as u32,
        channels: 2,
        format: SampleFormat::Float32,
    };
    let (inp, key, out) = (
        dir.path().join("in.wav"),
        dir.path().join("key.wav"),
        dir.path().join("out.wav"),
    );
    write_wav(&inp, spec, &interleave(&mixed_noise(&a_main, len, 41))).unwrap();
    write_wav(&key, spec, &interleave(&mixed_noise(&a_key, len, 42))).unwrap();
    let o = support::files::whiten_process(&[
        inp.as_os_str(),
        out.as_os_str(),
        "--learn-from".as_ref(),
        key.as_os_str(),
        "--mode".as_ref(),
        "spectral".as_ref(),
        "--output-db".as_ref(),
        "-30".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, y) = read_wav(&out).unwrap();
    assert_eq!(y.len(), 2 * len, "OUT has IN's length");
    let y: Vec<Vec<f32>> = (0..2)
        .map(|c| y.iter().skip(c).step_by(2).cloned().collect())
        .collect();
    let measured = covariance(&y, len - 2 * FS as usize, len, 0.001);
    let c_main = &a_main * a_main.transpose();
    let c_key = &a_key * a_key.transpose();
    let k_inv_half = sqrtm(&c_key).try_inverse().unwrap();
    let expected = &k_inv_half * c_main * &k_inv_half;
    let err = rel_err(&measured, &expected);
    eprintln!("whiten process --learn-from: relative error {err:.4}");
    assert!(
        err < TOLERANCE,
        "relative error {err}: {measured} vs {expected}"
    );

    // A key of another channel count or rate: a clear error naming the key, no OUT.
    let out2 = dir.path().join("out2.wav");
    for (name, key_spec) in [
        (
            "mono.wav",
            WavSpec {
                channels: 1,
                ..spec
            },
        ),
        (
            "rate.wav",
            WavSpec {
                sample_rate: 44_100,
                ..spec
            },
        ),
    ] {
        let bad = dir.path().join(name);
        let frames = 4800 * key_spec.channels as usize;
        write_wav(&bad, key_spec, &vec![0.1f32; frames]).unwrap();
        let o = support::files::whiten_process(&[
            inp.as_os_str(),
            out2.as_os_str(),
            "--learn-from".as_ref(),
            bad.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name} accepted");
        assert!(err.contains(name), "{name}: {err}");
        assert!(!out2.exists(), "{name}: OUT was written");
    }
    // A missing key file: the reader's own error, naming it.
    let o = support::files::whiten_process(&[
        inp.as_os_str(),
        out2.as_os_str(),
        "--learn-from".as_ref(),
        dir.path().join("absent.wav").as_os_str(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("absent.wav"));
    assert!(!out2.exists());
}
