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
use support::signals::{check_bounded, check_clean, correlation, Looper};

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

#[test]
fn latency_changes_only_inside_activate_while_parameters_are_fuzzed() {
    run_child("latency");
}

#[test]
fn every_parameter_text_round_trips_with_one_unit() {
    run_child("text");
}

#[test]
fn any_sample_rate_activates_and_processes() {
    run_child("rates");
}

#[test]
fn bypass_persists_through_state_save_and_load() {
    run_child("bypass_state");
}

#[test]
fn destroying_an_instance_with_builds_queued_does_not_abort_the_host() {
    run_child("teardown");
}

#[test]
fn depth_and_delta_through_the_host() {
    run_child("shaping");
}

#[test]
fn no_subnormal_output_through_the_bundle() {
    run_child("subnormal");
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
        "latency" => latency_scenario(),
        "text" => text_scenario(),
        "rates" => rates_scenario(),
        "bypass_state" => bypass_state_scenario(),
        "subnormal" => subnormal_scenario(),
        "shaping" => shaping_scenario(),
        "teardown" => teardown_scenario(),
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

/// Instances destroyed while engine builds they asked for are still queued on nice-plug's
/// background thread, which every instance in the process shares: in nice-plug 0.4.2 as
/// published a task whose plugin is gone ended that thread, and the last instance to shut it
/// down then panicked inside `destroy` and aborted the host (found by `clap-validator fuzz`).
/// The plugin lets its queued tasks run in `deactivate`, and the vendored nice-plug keeps the
/// thread alive. Here each round builds slow engines (16 channels, spectral, N = 8192, a
/// new band count every block) and destroys the instance at once, while another instance
/// keeps the background thread alive; that one must still process and shut down cleanly.
fn teardown_scenario() {
    let entry = load_entry();
    let rate = 48_000.0;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut keeper = Instance::new(&entry, 2, rate);
    for round in 0..3 {
        let mut plugin = Instance::new(&entry, 16, rate);
        let (framing, spectral) = plugin.text_value("Framing", "Spectral");
        let (fft, n8192) = plugin.text_value("FFT size", "8192");
        let bands = plugin.param("Bands").id;
        let block = vec![vec![0.0f32; 64]; 16];
        // A new latency: CLAP restarts the plugin, which builds the spectral engine then.
        plugin.process(&block, &[(0, framing, spectral), (0, fft, n8192)], &mut rng);
        for k in 0..6 {
            plugin.process(&block, &[(0, bands, 513.0 - k as f64)], &mut rng);
        }
        let started = Instant::now();
        drop(plugin);
        println!(
            "round {round}: deactivated and destroyed in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    let source = vec![vec![0.1f32; 4800], vec![-0.1f32; 4800]];
    let out = keeper.process(&source, &[], &mut rng);
    check_bounded(&out, "the instance that stayed");
    drop(keeper);
}

/// Depth and Delta set by the host's parameter events, stereo at 48 kHz: at depth 0 the heard
/// response is `P⁰ = I`, so with the default reference and output levels (equal) the output is
/// the input; Delta then subtracts the dry input, leaving silence; back at full depth with
/// Delta off the output is white again.
fn shaping_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 48_000.0;
    let input = mixture_wav(dir.path(), 2, rate, 9.0, 21);
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, 2, rate);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let sec = |s: f64| (s * rate) as usize;
    let depth_0 = plugin.text_value("Depth", "0%");
    let depth_100 = plugin.text_value("Depth", "100%");
    let delta_on = plugin.text_value("Delta", "On");
    let delta_off = plugin.text_value("Delta", "Off");
    let events = [
        (sec(4.0), depth_0.0, depth_0.1),
        (sec(5.5), delta_on.0, delta_on.1),
        (sec(6.5), delta_off.0, delta_off.1),
        (sec(6.5), depth_100.0, depth_100.1),
    ];
    let out = plugin.process(&input, &events, &mut rng);
    check_bounded(&out, "shaping");
    let (err, _) = whitening_error(&out, sec(3.0)..sec(4.0));
    let worst = |range: std::ops::Range<usize>, target: &dyn Fn(usize, usize) -> f32| {
        (0..2)
            .flat_map(|c| range.clone().map(move |t| (c, t)))
            .map(|(c, t)| (out[c][t] - target(c, t)).abs())
            .fold(0.0f32, f32::max)
    };
    // 4.0 s: depth smoothed over 20 ms, applied per host block, heard from the next update.
    // Events land at the start of the host block that holds them (blocks of up to 1024
    // frames), so each window keeps 0.1 s from the next event.
    let as_input = worst(sec(4.1)..sec(5.4), &|c, t| input[c][t]);
    let silent = worst(sec(5.6)..sec(6.4), &|_, _| 0.0);
    let (err_back, _) = whitening_error(&out, sec(8.0)..sec(9.0));
    println!(
        "whitening error {err:.4} before, {err_back:.4} after; depth 0: |out − in| ≤ {as_input:e}; \
         delta at depth 0: |out| ≤ {silent:e}"
    );
    assert!(err < 0.2, "defaults whiten (error {err:.3})");
    assert!(as_input < 1e-5, "depth 0 is the input: off by {as_input:e}");
    assert!(silent < 1e-5, "delta at depth 0 is silence: {silent:e}");
    assert!(
        err_back < 0.2,
        "full depth whitens again (error {err_back:.3})"
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
        "Depth",
        "Delta",
        "Tilt",
        "Low limit",
        "High limit",
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
// Host conformance (issue 11): latency protocol, parameter texts, sample rates, bypass state,
// subnormal output.
// ---------------------------------------------------------------------------------------------

/// Parameters snapped to their bounds (and to random values) while processing, as strict
/// validators fuzz them, structural ones included: the plugin calls `latency.changed()` only
/// inside `activate`, the latency it reports never changes while it is active, the restarts it
/// asks for are served by deactivating and activating, and afterwards the latency it reports is
/// its engine's — the one the parameters describe, and the delay of its bypassed output.
fn latency_scenario() {
    let rate = 48_000.0;
    let dir = tempfile::tempdir().unwrap();
    let source = Looper::new(mixture_wav(dir.path(), 2, rate, 3.0, 41));
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, 2, rate);
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let params = plugin.params.clone();
    let mut reported = vec![plugin.latency()];
    for round in 0..40 {
        let piece = rng.random_range(64..4096);
        let mut events: Vec<(usize, ClapId, f64)> = Vec::new();
        for p in &params {
            for _ in 0..rng.random_range(1..=2) {
                let v = match rng.random_range(0..5) {
                    0 | 1 => p.min,
                    2 | 3 => p.max,
                    _ if p.stepped => rng.random_range(p.min..=p.max).round(),
                    _ => rng.random_range(p.min..=p.max),
                };
                events.push((rng.random_range(0..piece), p.id, v));
            }
        }
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&source.next(piece), &events, &mut rng);
        check_bounded(&out, &format!("fuzz round {round}"));
        reported.push(plugin.latency());
        let outside = plugin
            .instance
            .access_handler(|m| m.latency_changed_outside_activate.get());
        assert_eq!(
            outside, 0,
            "round {round}: latency.changed() called outside clap_plugin::activate"
        );
        assert_eq!(
            plugin.latency_changes_while_active, 0,
            "round {round}: the reported latency changed while the plugin was active"
        );
    }
    let changes = reported.windows(2).filter(|w| w[0] != w[1]).count();
    let notified = plugin.instance.access_handler(|m| m.latency_changed.get());
    println!(
        "latencies reported {reported:?}: {changes} changes, {notified} latency.changed() \
         calls (all inside activate), {} restarts served",
        plugin.restarts
    );
    assert!(changes > 0, "the fuzz never changed the latency");
    assert!(notified > 0, "latency changes were never notified");

    // Settled on the last fuzzed values, and then on a chosen spectral structure: the latency
    // reported is the engine's.
    settle(&mut plugin, &source, &mut rng);
    check_latency_is_the_engines(&mut plugin, &source, &mut rng);
    let (framing, spectral) = plugin.text_value("Framing", "Spectral");
    let (fft, fft_2048) = plugin.text_value("FFT size", "2048");
    let bypass = plugin.param("Bypass").id;
    plugin.process(
        &source.next(1000),
        &[(0, framing, spectral), (0, fft, fft_2048), (0, bypass, 0.0)],
        &mut rng,
    );
    settle(&mut plugin, &source, &mut rng);
    assert_eq!(plugin.latency(), 2048);
    check_latency_is_the_engines(&mut plugin, &source, &mut rng);
    assert_eq!(
        plugin
            .instance
            .access_handler(|m| m.latency_changed_outside_activate.get()),
        0
    );
    assert_eq!(plugin.latency_changes_while_active, 0);
}

/// Process short pieces without changes until the plugin asks for no more restarts (nice-plug
/// asks for a second one to notify a latency reported in `activate`).
fn settle(plugin: &mut Instance, source: &Looper, rng: &mut ChaCha8Rng) {
    for _ in 0..6 {
        let out = plugin.process(&source.next(2000), &[], rng);
        check_bounded(&out, "settling");
    }
}

/// The latency reported is the one the parameters describe (the FFT size in the spectral
/// framing, 0 in the channels framing) and the delay of the bypassed output: the engine's.
fn check_latency_is_the_engines(plugin: &mut Instance, source: &Looper, rng: &mut ChaCha8Rng) {
    let text = |plugin: &mut Instance, name: &str| {
        let p = plugin.param(name);
        let v = plugin
            .values()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        plugin.value_to_text(p.id, v).unwrap()
    };
    let expected = if text(plugin, "Framing") == "Spectral" {
        text(plugin, "FFT size").parse::<u32>().unwrap()
    } else {
        0
    };
    let latency = plugin.latency();
    println!("settled: latency {latency}, parameters describe {expected}");
    assert_eq!(latency, expected, "reported latency vs the structure's");
    let bypass = plugin.param("Bypass").id;
    let input = source.next(latency as usize + 12_000);
    let out = plugin.process(&input, &[(0, bypass, 1.0)], rng);
    let l = latency as usize;
    for c in 0..2 {
        for t in (l + 2000).max(2000)..input[c].len() {
            assert_eq!(
                out[c][t],
                input[c][t - l],
                "bypassed output channel {c} sample {t} is not the input delayed by {l}"
            );
        }
    }
    plugin.process(&source.next(2000), &[(0, bypass, 0.0)], rng);
}

/// Every parameter at 101 plain values over its range, through the host's parameter interface:
/// the text of a value parses back to a value whose text is the same, and parsing that text
/// again gives the same value — the value given, snapped to its step (stepped parameters) or
/// to the display's resolution (continuous ones; what the strict validators check); numeric
/// parameters show a number with one unit over their whole range, growing with the value (what
/// scripting hosts need to treat them as numbers).
fn text_scenario() {
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, 2, 48_000.0);
    let params = plugin.params.clone();
    let units = plugin_child::NUMERIC_UNITS;
    let mut conversions = 0;
    for p in &params {
        let mut texts = Vec::new();
        for i in 0..=100 {
            let v = p.min + (p.max - p.min) * i as f64 / 100.0;
            let t = plugin
                .value_to_text(p.id, v)
                .unwrap_or_else(|| panic!("{}: no text for {v}", p.name));
            let v1 = plugin.text_to_value(p.id, &t).unwrap_or_else(|| {
                panic!("{}: its own text {t:?} (of {v}) does not parse", p.name)
            });
            let t1 = plugin.value_to_text(p.id, v1).unwrap();
            assert_eq!(t1, t, "{}: {v} → {t:?} → {v1} → {t1:?}", p.name);
            let v2 = plugin.text_to_value(p.id, &t1).unwrap();
            assert_eq!(v2, v1, "{}: {t1:?} parses to {v1}, then {v2}", p.name);
            // Stepped: the step itself. Continuous: a value the display cannot tell from `v`
            // (same text, above) — the display's resolution is the snapping.
            // (A nearest step, either one at a tie; nice-plug computes plain values through
            // f32, so a step may be off by 1e-7.)
            if p.stepped {
                assert!(
                    (v1 - v1.round()).abs() < 1e-5 && (v1 - v).abs() <= 0.5 + 1e-5,
                    "{}: {v} → {t:?} → {v1}, not the nearest step",
                    p.name
                );
            }
            texts.push(t);
            conversions += 1;
        }
        match units.iter().find(|(name, _)| *name == p.name) {
            Some((_, unit)) => {
                let numbers: Vec<f64> = texts
                    .iter()
                    .map(|t| {
                        t.strip_suffix(unit)
                            .and_then(|n| n.parse::<f64>().ok())
                            .unwrap_or_else(|| {
                                panic!("{}: {t:?} is not a number followed by {unit:?}", p.name)
                            })
                    })
                    .collect();
                // The number shown is the value: it grows with it.
                assert!(
                    numbers.windows(2).all(|w| w[0] <= w[1]),
                    "{}: displays do not grow with the value: {texts:?}",
                    p.name
                );
            }
            None if p.max - p.min == 1.0 && p.stepped && p.name != "Framing" => {
                assert!(
                    texts.iter().all(|t| t == "On" || t == "Off"),
                    "{}: a switch shows On/Off: {texts:?}",
                    p.name
                );
            }
            None => {}
        }
        let (first, last) = (&texts[0], &texts[100]);
        println!(
            "{:<16} {first:>12} … {last:<12} ({} texts)",
            p.name,
            texts.len()
        );
    }
    println!("{conversions} conversions");
    assert!(conversions >= 100 * params.len());
}

/// The rates strict hosts activate at, odd ones included: activation succeeds, and with every
/// parameter automated at random (spectral framing at the largest FFT size included) the output
/// stays finite, within ±1 and free of subnormals; a latency change is served by a restart.
fn rates_scenario() {
    let entry = load_entry();
    for (i, rate) in [1234.5678, 8_000.0, 22_050.0, 384_000.0, 1_234_567.75]
        .into_iter()
        .enumerate()
    {
        let mut plugin = Instance::new(&entry, 2, rate);
        let mut rng = ChaCha8Rng::seed_from_u64(60 + i as u64);
        let frames = ((rate * 0.25) as usize).max(4096);
        let noise = |rng: &mut ChaCha8Rng, frames: usize| -> Vec<Vec<f32>> {
            (0..2)
                .map(|_| {
                    (0..frames)
                        .map(|_| 0.1 * rng.sample::<f32, _>(StandardNormal))
                        .collect()
                })
                .collect()
        };
        let input = noise(&mut rng, frames);
        let out = plugin.process(&input, &[], &mut rng);
        check_clean(&out, &format!("{rate} Hz, defaults"));
        let params = plugin.params.clone();
        for round in 0..3 {
            let input = noise(&mut rng, frames);
            let events: Vec<(usize, ClapId, f64)> = params
                .iter()
                .filter(|p| p.name != "Bypass")
                .map(|p| {
                    let v = rng.random_range(p.min..=p.max);
                    (0, p.id, if p.stepped { v.round() } else { v })
                })
                .collect();
            let out = plugin.process(&input, &events, &mut rng);
            check_clean(&out, &format!("{rate} Hz, round {round}"));
        }
        // The spectral framing at the largest FFT size: the rate may lower it (2 s at most).
        let (framing, spectral) = plugin.text_value("Framing", "Spectral");
        let (fft, fft_8192) = plugin.text_value("FFT size", "8192");
        let input = noise(&mut rng, frames);
        let out = plugin.process(
            &input,
            &[(0, framing, spectral), (0, fft, fft_8192)],
            &mut rng,
        );
        check_clean(&out, &format!("{rate} Hz, to spectral"));
        for _ in 0..3 {
            let out = plugin.process(&noise(&mut rng, frames / 4), &[], &mut rng);
            check_clean(&out, &format!("{rate} Hz, spectral"));
        }
        let expected = if rate < 4096.0 { 2048 } else { 8192 };
        println!(
            "{rate} Hz: activated, processed; spectral latency {} (restarts served {})",
            plugin.latency(),
            plugin.restarts
        );
        assert_eq!(plugin.latency(), expected, "{rate} Hz: spectral latency");
        assert_eq!(
            plugin
                .instance
                .access_handler(|m| m.latency_changed_outside_activate.get()),
            0
        );
    }
}

/// The bypass survives a state round trip: saved on, it loads on into a fresh instance (before
/// activation: bypassed from the first sample) and into a running one (after the crossfade);
/// saved off, it loads off into a bypassed instance.
fn bypass_state_scenario() {
    let rate = 48_000.0;
    let dir = tempfile::tempdir().unwrap();
    let source = Looper::new(mixture_wav(dir.path(), 2, rate, 2.0, 51));
    let entry = load_entry();
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    let mut plugin = Instance::new(&entry, 2, rate);
    let bypass = plugin.param("Bypass").id;
    let bypass_value = |p: &mut Instance| {
        p.values()
            .into_iter()
            .find(|(n, _)| n == "Bypass")
            .unwrap()
            .1
    };
    plugin.process(&source.next(4800), &[(0, bypass, 1.0)], &mut rng);
    assert_eq!(bypass_value(&mut plugin), 1.0);
    let on = plugin.save_state();
    plugin.process(&source.next(4800), &[(0, bypass, 0.0)], &mut rng);
    assert_eq!(bypass_value(&mut plugin), 0.0);
    let off = plugin.save_state();
    assert_ne!(on, off, "the state carries the bypass");

    // Into a fresh instance, loaded while inactive.
    let mut fresh = Instance::new(&entry, 2, rate);
    fresh.deactivate();
    fresh.load_state(&on);
    fresh.activate();
    assert_eq!(
        bypass_value(&mut fresh),
        1.0,
        "fresh instance: bypass restored"
    );
    let input = source.next(9600);
    let out = fresh.process(&input, &[], &mut rng);
    assert_eq!(
        out, input,
        "a restored bypass is bypassed from the first sample"
    );
    // Saved again, it is still on.
    let again = fresh.save_state();
    drop(fresh);
    let mut third = Instance::new(&entry, 2, rate);
    third.deactivate();
    third.load_state(&again);
    third.activate();
    assert_eq!(
        bypass_value(&mut third),
        1.0,
        "bypass survives two round trips"
    );
    drop(third);

    // Into a running instance: after the crossfade, the input.
    plugin.load_state(&on);
    assert_eq!(
        bypass_value(&mut plugin),
        1.0,
        "running instance: bypass restored"
    );
    let input = source.next(9600);
    let out = plugin.process(&input, &[], &mut rng);
    for c in 0..2 {
        assert_eq!(
            &out[c][2000..],
            &input[c][2000..],
            "running instance, channel {c}"
        );
    }
    // And off again from a state saved off.
    plugin.load_state(&off);
    assert_eq!(bypass_value(&mut plugin), 0.0, "bypass off restored");
    let out = plugin.process(&source.next(9600), &[], &mut rng);
    check_bounded(&out, "un-bypassed by a state");
}

/// Subnormal, silent and random input through the real bundle with random parameter changes
/// (bypass, dry/wet at 0, framing included): no output sample is ever subnormal.
fn subnormal_scenario() {
    let rate = 48_000.0;
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, 2, rate);
    let mut rng = ChaCha8Rng::seed_from_u64(71);
    let params = plugin.params.clone();
    let subnormal = |rng: &mut ChaCha8Rng| {
        let bits = rng.random_range(1u32..0x0080_0000) | (rng.random::<u32>() & 0x8000_0000);
        f32::from_bits(bits)
    };
    let mut checked = 0;
    for round in 0..30 {
        let frames = rng.random_range(500..6000);
        let kind = round % 4;
        let input: Vec<Vec<f32>> = (0..2)
            .map(|_| {
                (0..frames)
                    .map(|_| match kind {
                        0 => subnormal(&mut rng),
                        1 => 0.0,
                        2 => 0.1 * rng.sample::<f32, _>(StandardNormal),
                        _ => match rng.random_range(0..3) {
                            0 => subnormal(&mut rng),
                            1 => 1e-7 * rng.sample::<f32, _>(StandardNormal),
                            _ => 0.0,
                        },
                    })
                    .collect()
            })
            .collect();
        let mut events: Vec<(usize, ClapId, f64)> = Vec::new();
        for p in &params {
            if !rng.random_bool(0.4) {
                continue;
            }
            let v = match p.name.as_str() {
                "Dry/wet" => [0.0, 0.5, 1.0][rng.random_range(0..3)],
                _ => rng.random_range(p.min..=p.max),
            };
            let v = if p.stepped { v.round() } else { v };
            events.push((rng.random_range(0..frames), p.id, v));
        }
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&input, &events, &mut rng);
        check_clean(&out, &format!("round {round} (input kind {kind})"));
        checked += 2 * frames;
    }
    println!("{checked} output samples, none subnormal");
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
