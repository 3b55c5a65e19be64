//! The bundled CLAP plugin in a real CLAP host (`clack-host`): load
//! `target/bundled/Interneuron Whitening.clap`, pick mono / stereo / 8-channel layouts through
//! the audio-ports-config extension, activate at 44.1 / 48 / 96 kHz, process real WAV audio in
//! random block sizes on an audio thread while the main thread serves the plugin's callbacks
//! and restart requests, automate every parameter with parameter events, check that the output
//! whitens and stays within ±1, that bypass is the input delayed by the reported latency, and
//! that a saved state restores into a fresh instance.
//!
//! Every scenario runs in a child process (this test binary re-run with `--ignored`), so that an
//! abort inside the plugin — `assert_process_allocs` aborts with SIGABRT on an allocation in
//! `process` — fails the test with a clear message instead of killing the test harness.
//!
//! The host itself is `tests/support/clap.rs`; this file holds the scenarios.
//!
//! The bundle is built by `cargo xtask test` (debug, with `assert_process_allocs`) or
//! `cargo xtask bundle interneuron-whitening [--release]`.

mod support;
use clack_host::prelude::*;
use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::clap::{bundle_path, load_entry, Instance, Param, PLUGIN_ID};
use support::plugin_child;
use support::signals::{check_bounded, correlation, Looper};

const SCENARIO_ENV: &str = "INTERNEURON_CLAP_HOST_SCENARIO";
/// The plugin's default output level, −20 dBFS, as an amplitude.
const OUTPUT_GAIN: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// The tests: each runs one scenario in a child process.
// ---------------------------------------------------------------------------------------------

#[test]
fn stereo_48k_every_circuit_whitens_a_correlated_mixture() {
    run_child("whitening");
}

#[test]
fn mono_44k1_automation_bypass_and_state() {
    run_child("mono");
}

#[test]
fn stereo_48k_automation_bypass_and_state() {
    run_child("stereo");
}

#[test]
fn eight_channels_96k_automation_bypass_and_state() {
    run_child("octo");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn scenario_child() {
    let Ok(name) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match name.as_str() {
        "whitening" => whitening_scenario(),
        "mono" => automation_scenario(1, 44_100.0, 1),
        "stereo" => automation_scenario(2, 48_000.0, 2),
        "octo" => automation_scenario(8, 96_000.0, 3),
        other => panic!("unknown scenario {other}"),
    }
}

fn run_child(scenario: &str) {
    plugin_child::check_bundle(
        &bundle_path(),
        "`cargo xtask bundle interneuron-whitening` (add --release for an optimised one)",
    );
    plugin_child::run_scenario_child("scenario_child", SCENARIO_ENV, scenario);
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

/// Stereo at 48 kHz with default parameters: after adaptation every circuit's output
/// covariance is output-level²·I.
fn whitening_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 48_000.0;
    let input = mixture_wav(dir.path(), 2, rate, 15.0, 11);
    let rho = input_correlation(&input);
    println!("input correlation {rho:.3}");
    assert!(rho.abs() > 0.5, "the test mixture must be correlated");
    let entry = load_entry();
    let factory = entry
        .get_plugin_factory()
        .expect("the entry has a plugin factory");
    let descriptor = factory
        .plugin_descriptors()
        .find(|d| d.id() == Some(PLUGIN_ID))
        .expect("the factory lists the plugin by its reverse-DNS id");
    let features: Vec<String> = descriptor
        .features()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    println!("CLAP features {features:?}");
    for f in ["audio-effect", "analyzer", "stereo", "surround"] {
        assert!(features.iter().any(|g| g == f), "CLAP feature {f} missing");
    }
    let mut plugin = Instance::new(&entry, 2, rate);
    assert_eq!(plugin.latency(), 0, "channels framing has no latency");
    let bypass: Vec<&Param> = plugin.params.iter().filter(|p| p.bypass).collect();
    assert!(
        bypass.len() == 1 && bypass[0].name == "Bypass",
        "exactly one parameter, Bypass, is the host's bypass: {bypass:?}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let circuit = plugin.param("Circuit");
    let sec = |s: f64| (s * rate) as usize;
    // Interneuron (default) until 10 s, direct from 10 s, baseline from 12.5 s.
    let events = [
        (
            sec(10.0),
            circuit.id,
            plugin.text_value("Circuit", "Direct").1,
        ),
        (
            sec(12.5),
            circuit.id,
            plugin.text_value("Circuit", "Baseline (ZCA)").1,
        ),
    ];
    let started = Instant::now();
    let out = plugin.process(&input, &events, &mut rng);
    println!(
        "processed 15 s of stereo in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    check_bounded(&out, "whitening");
    for (name, range) in [
        ("interneuron", sec(8.0)..sec(10.0)),
        ("direct", sec(10.5)..sec(12.5)),
        ("baseline", sec(13.0)..sec(15.0)),
    ] {
        let (err, diag) = whitening_error(&out, range);
        println!("{name}: whitening error {err:.4}, output levels {diag:.2?} dBFS");
        assert!(
            err < 0.15,
            "{name}: output covariance is not output-level²·I (error {err:.3})"
        );
    }
    let (err_in, _) = whitening_error(&input, 0..sec(2.0));
    assert!(
        err_in > 0.5,
        "the input itself must be far from white (error {err_in:.3})"
    );

    // The learned state is saved with the project (published about once a second and stored
    // by a background task), and a fresh instance loading it starts whitened, while one
    // without it still has to learn.
    std::thread::sleep(Duration::from_millis(300));
    let state = plugin.save_state();
    let text = String::from_utf8_lossy(&state);
    assert!(
        text.contains("learned-state") && text.contains("direct_m"),
        "the saved state carries the learned circuits ({} bytes)",
        state.len()
    );
    drop(plugin);
    let start: Vec<Vec<f32>> = input.iter().map(|c| c[..sec(0.5)].to_vec()).collect();
    let mut restored = Instance::new(&entry, 2, rate);
    restored.deactivate();
    restored.load_state(&state);
    restored.activate();
    let out_restored = restored.process(&start, &[], &mut rng);
    drop(restored);
    let mut fresh = Instance::new(&entry, 2, rate);
    let baseline = fresh.text_value("Circuit", "Baseline (ZCA)");
    let out_fresh = fresh.process(&start, &[(0, baseline.0, baseline.1)], &mut rng);
    let (err_restored, _) = whitening_error(&out_restored, sec(0.05)..sec(0.5));
    let (err_fresh, _) = whitening_error(&out_fresh, sec(0.05)..sec(0.5));
    println!("first 0.5 s: whitening error restored {err_restored:.3}, fresh {err_fresh:.3}");
    assert!(
        err_restored < 0.15 && err_fresh > 2.0 * err_restored,
        "a restored instance starts whitened: error {err_restored:.3} (fresh {err_fresh:.3})"
    );
}

/// One layout at one rate: defaults whiten; random automation of every parameter keeps the
/// output finite and within ±1 (and never makes the plugin allocate in `process`); defaults
/// again whiten again; bypass is the input delayed by the reported latency; the state restores
/// into a fresh instance.
fn automation_scenario(n: usize, rate: f64, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let source = Looper::new(mixture_wav(dir.path(), n, rate, 6.0, 100 + seed));
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, n, rate);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let secs = |s: f64| (s * rate) as usize;

    // 1. Defaults whiten.
    let out = plugin.process(&source.next(secs(4.0)), &[], &mut rng);
    check_bounded(&out, "defaults");
    let (err, diag) = whitening_error(&out, secs(3.0)..secs(4.0));
    println!("{n} ch @ {rate} Hz, defaults: whitening error {err:.4}, levels {diag:.2?} dBFS");
    assert!(err < 0.2, "defaults: output is not white (error {err:.3})");

    // 2. Every parameter, automated mid-stream to random values, several rounds.
    let params = plugin.params.clone();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    for required in [
        "Circuit",
        "Framing",
        "Adaptation time",
        "Interneurons",
        "Init scale",
        "Re-initialise",
        "Reference level",
        "Output level",
        "Dry/wet",
        "Noise floor",
        "FFT size",
        "Bands",
        "Learning",
        "Bypass",
    ] {
        assert!(names.contains(&required), "parameter {required} is missing");
    }
    let started = Instant::now();
    for round in 0..3 {
        let piece = secs(0.3);
        let mut events: Vec<(usize, ClapId, f64)> = params
            .iter()
            .map(|p| {
                let mut v = rng.random_range(p.min..=p.max);
                if p.stepped {
                    v = v.round();
                }
                (rng.random_range(0..piece), p.id, v)
            })
            .collect();
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&source.next(piece), &events, &mut rng);
        check_bounded(&out, &format!("automation round {round}"));
        // Let background rebuilds land and run with the random settings for a while.
        let out = plugin.process(&source.next(secs(0.5)), &[], &mut rng);
        check_bounded(&out, &format!("after automation round {round}"));
    }
    println!(
        "automation rounds took {:.2} s; so far {} main-thread callbacks, {} latency changes \
         notified, {} restarts served",
        started.elapsed().as_secs_f64(),
        plugin
            .instance
            .access_shared_handler(|s| s.callbacks.load(Ordering::SeqCst)),
        plugin.instance.access_handler(|m| m.latency_changed.get()),
        plugin.restarts
    );

    // 3. Back to the defaults (and a fresh re-initialisation): whitens again.
    let reinit = plugin.param("Re-initialise").id;
    let mut events: Vec<(usize, ClapId, f64)> =
        params.iter().map(|p| (0, p.id, p.default)).collect();
    events.push((secs(0.1), reinit, 1.0));
    events.push((secs(0.2), reinit, 0.0));
    let out = plugin.process(&source.next(secs(0.3)), &events, &mut rng);
    check_bounded(&out, "back to defaults");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    // Give the background thread time to deliver the default engine if the structure differed
    // in something other than the framing (building one takes well under a millisecond).
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(secs(4.0)), &[], &mut rng);
    check_bounded(&out, "defaults again");
    let (err, _) = whitening_error(&out, secs(3.0)..secs(4.0));
    println!("defaults after automation: whitening error {err:.4}");
    assert!(
        err < 0.2,
        "defaults again: output is not white (error {err:.3})"
    );

    // 4. Spectral framing: the latency is the FFT size, and bypass is the input delayed by it.
    let (framing, spectral) = plugin.text_value("Framing", "Spectral");
    let (fft, fft_1024) = plugin.text_value("FFT size", "1024");
    let out = plugin.process(
        &source.next(secs(0.1)),
        &[(0, framing, spectral), (0, fft, fft_1024)],
        &mut rng,
    );
    check_bounded(&out, "to spectral");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 1024);
    let latency = plugin.latency() as usize;
    let bypass = plugin.param("Bypass").id;
    let input = source.next(secs(1.0));
    let out = plugin.process(&input, &[(0, bypass, 1.0)], &mut rng);
    // After the 20 ms crossfade the output is exactly the input, `latency` samples later.
    for c in 0..n {
        for t in secs(0.1)..input[c].len() {
            assert_eq!(
                out[c][t],
                input[c][t - latency],
                "bypass: channel {c} sample {t} is not the input delayed by {latency}"
            );
        }
    }
    let out = plugin.process(&source.next(secs(1.0)), &[(0, bypass, 0.0)], &mut rng);
    check_bounded(&out, "un-bypass");

    // 5. State: distinctive values survive save → load into a fresh instance.
    let settings = [
        ("Circuit", "Direct"),
        ("Framing", "Spectral"),
        ("Adaptation time", "1234 ms"),
        ("Interneurons", "12"),
        ("Init scale", "100"),
        ("Reference level", "-30"),
        ("Output level", "-26"),
        ("Dry/wet", "80%"),
        ("Noise floor", "-100"),
        ("FFT size", "2048"),
        ("Bands", "48"),
    ];
    let events: Vec<(usize, ClapId, f64)> = settings
        .iter()
        .map(|(name, text)| {
            let (id, v) = plugin.text_value(name, text);
            (0, id, v)
        })
        .collect();
    let out = plugin.process(&source.next(secs(0.2)), &events, &mut rng);
    check_bounded(&out, "state settings");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 2048);
    println!(
        "main-thread callbacks {}, latency changes notified {}, restarts served {}",
        plugin
            .instance
            .access_shared_handler(|s| s.callbacks.load(Ordering::SeqCst)),
        plugin.instance.access_handler(|m| m.latency_changed.get()),
        plugin.restarts
    );
    let saved_values = plugin.values();
    let state = plugin.save_state();
    println!("state: {} bytes", state.len());
    drop(plugin);

    let mut restored = Instance::new(&entry, n, rate);
    restored.deactivate();
    restored.load_state(&state);
    restored.activate();
    let values = restored.values();
    for ((name, want), (_, got)) in saved_values.iter().zip(&values) {
        assert!(
            (want - got).abs() < 1e-6,
            "{name}: restored {got}, saved {want}"
        );
    }
    assert_eq!(
        restored.latency(),
        2048,
        "the restored instance reports the restored FFT size as latency on activation"
    );
    let out = restored.process(&source.next(secs(1.0)), &[], &mut rng);
    check_bounded(&out, "restored instance");
}

// ---------------------------------------------------------------------------------------------
// Audio material and measurements.
// ---------------------------------------------------------------------------------------------

/// A correlated mixture of `n` independent Gaussian sources, `secs` long, at about −20 dBFS
/// per channel, written to a WAV file and read back (the plugin gets real file audio).
fn mixture_wav(dir: &std::path::Path, n: usize, rate: f64, secs: f64, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frames = (rate * secs) as usize;
    // Mixing matrix: a strong common component plus independent parts, so the channels are
    // correlated (condition number of C around 10–100).
    let mix: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let common = if j == 0 { 1.0 } else { 0.0 };
                    let own = if i == j { 0.4 } else { 0.0 };
                    let noise: f64 = StandardNormal.sample(&mut rng);
                    common + own + 0.15 * noise
                })
                .collect()
        })
        .collect();
    let mut interleaved = vec![0.0f32; frames * n];
    let mut s = vec![0.0f64; n];
    for t in 0..frames {
        for v in s.iter_mut() {
            *v = StandardNormal.sample(&mut rng);
        }
        for i in 0..n {
            let x: f64 = (0..n).map(|j| mix[i][j] * s[j]).sum();
            interleaved[t * n + i] = x as f32;
        }
    }
    let rms = (interleaved.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
        / interleaved.len() as f64)
        .sqrt();
    for v in interleaved.iter_mut() {
        *v = (*v as f64 * 0.1 / rms) as f32;
    }
    let path = dir.join(format!("mixture_{n}ch_{}.wav", rate as u32));
    let spec = WavSpec {
        sample_rate: rate as u32,
        channels: n as u16,
        format: SampleFormat::Float32,
    };
    write_wav(&path, spec, &interleaved).expect("write the test WAV");
    let (read_spec, samples) = read_wav(&path).expect("read the test WAV back");
    assert_eq!(read_spec, spec);
    (0..n)
        .map(|c| samples.iter().skip(c).step_by(n).copied().collect())
        .collect()
}

/// `‖C/g² − I‖_F / √n` for the output covariance `C` over `range`.
fn whitening_error(out: &[Vec<f32>], range: std::ops::Range<usize>) -> (f64, Vec<f64>) {
    let n = out.len();
    let len = range.len() as f64;
    let g2 = OUTPUT_GAIN * OUTPUT_GAIN;
    let mut err = 0.0;
    let mut diag = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let c: f64 = range
                .clone()
                .map(|t| out[i][t] as f64 * out[j][t] as f64)
                .sum::<f64>()
                / len;
            let d = c / g2 - if i == j { 1.0 } else { 0.0 };
            err += d * d;
            if i == j {
                diag.push(10.0 * c.log10());
            }
        }
    }
    ((err / n as f64).sqrt(), diag)
}

fn input_correlation(input: &[Vec<f32>]) -> f64 {
    correlation(&input[0], &input[1])
}
