//! The bundled VST3 plugin in a real VST3 host built on the `vst3` crate's bindings: `dlopen`
//! `target/bundled/Interneuron Whitening.vst3/Contents/x86_64-linux/Interneuron Whitening.so`,
//! call `ModuleEntry`, get the factory, find the audio module class, create and initialise a
//! component with a host context, query its `IAudioProcessor` and `IEditController`, negotiate
//! stereo buses, set up 48 kHz / 32-bit processing and process a correlated stereo mixture in
//! varied block sizes on an audio thread, with parameter automation through `IParameterChanges`
//! (dry/wet ramps, circuit switches, bypass, structural changes with latency restarts). Checks
//! that the output whitens, stays finite and within ±1, that state saved with
//! `IComponent::getState` restores into a fresh instance with `setState`, and that every
//! reference the host handed the plugin is released on teardown.
//!
//! Every scenario runs in a child process (this test binary re-run with `--ignored`), so that an
//! abort inside the plugin — `assert_process_allocs` aborts with SIGABRT on an allocation in
//! `process` — fails the test with a clear message instead of killing the test harness.
//!
//! The host itself (module loading, the COM objects a host implements, processing on an audio
//! thread, teardown checks) is `tests/support/vst3/`; this file holds the scenarios.
//!
//! The bundle is built by `cargo xtask test` (debug, with `assert_process_allocs`) or
//! `cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`.

mod support;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::ffi::c_char;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::plugin_child;
use support::signals::{check_bounded, check_clean, correlation, Looper};
use support::vst3::{
    bundle_path, c_chars, find_audio_class, speaker_arrangement, to_utf16, utf16, Event, Instance,
    Module, Param, AUDIO, EVENT, INPUT, OUTPUT, RATE,
};
use vst3::Interface;
use vst3::Steinberg::Vst::{
    BusInfo, BusInfo_::BusFlags_, BusTypes_, IAudioProcessorTrait, IComponent, IComponentTrait,
    IEditControllerTrait, ParamID, ParameterInfo_::ParameterFlags_, SpeakerArr,
    SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    kResultFalse, kResultOk, IPluginFactory2, IPluginFactory2Trait, IPluginFactory3,
    IPluginFactory3Trait, IPluginFactoryTrait, PClassInfo2, PClassInfoW, PFactoryInfo,
};

const SCENARIO_ENV: &str = "INTERNEURON_VST3_HOST_SCENARIO";
/// The plugin's `Vst3Plugin::VST3_CLASS_ID` (used as is on Linux).
const CLASS_ID: &[u8; 16] = b"IntrnrnWhitening";
/// The plugin's default output level, −20 dBFS, as an amplitude.
const OUTPUT_GAIN: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// The tests: each runs one scenario in a child process.
// ---------------------------------------------------------------------------------------------

#[test]
fn factory_classes_buses_and_parameters() {
    run_child("factory");
}

#[test]
fn stereo_48k_whitens_with_automation() {
    run_child("whitening");
}

#[test]
fn every_parameter_automated_at_random() {
    run_child("automation");
}

#[test]
fn state_restores_into_a_fresh_instance() {
    run_child("state");
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
fn bypass_persists_in_component_and_controller() {
    run_child("bypass_state");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn vst3_scenario_child() {
    let Ok(name) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match name.as_str() {
        "factory" => factory_scenario(),
        "whitening" => whitening_scenario(),
        "automation" => automation_scenario(),
        "state" => state_scenario(),
        "text" => text_scenario(),
        "rates" => rates_scenario(),
        "bypass_state" => bypass_state_scenario(),
        other => panic!("unknown scenario {other}"),
    }
}

fn run_child(scenario: &str) {
    plugin_child::check_bundle(
        &bundle_path(),
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    plugin_child::run_scenario_child("vst3_scenario_child", SCENARIO_ENV, scenario);
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

/// The factory, its class infos, the component's buses and arrangements, the parameters as the
/// edit controller describes them, and a clean teardown.
fn factory_scenario() {
    let module = Module::load();
    let factory = module.factory();
    // SAFETY: plain getters into zeroed plain-data structs and VST3 calls on live objects.
    unsafe {
        let mut finfo: PFactoryInfo = std::mem::zeroed();
        assert_eq!(factory.getFactoryInfo(&mut finfo), kResultOk);
        println!(
            "factory: vendor {:?}, flags {:#x}",
            c_chars(&finfo.vendor),
            finfo.flags
        );
        let count = factory.countClasses();
        println!("{count} class(es)");
        assert!(count >= 1);
        let info = find_audio_class(factory);
        let name = c_chars(&info.name);
        assert_eq!(name, "Interneuron Whitening");
        let cid: Vec<u8> = info.cid.iter().map(|b| *b as u8).collect();
        assert_eq!(&cid[..], CLASS_ID, "class id");

        let f2 = factory.cast::<IPluginFactory2>().expect("IPluginFactory2");
        let mut info2: PClassInfo2 = std::mem::zeroed();
        assert_eq!(f2.getClassInfo2(0, &mut info2), kResultOk);
        let subcategories = c_chars(&info2.subCategories);
        println!(
            "class 0: {:?} {:?}, subcategories {subcategories:?}, version {:?}, SDK {:?}",
            c_chars(&info2.category),
            c_chars(&info2.name),
            c_chars(&info2.version),
            c_chars(&info2.sdkVersion)
        );
        let subs: Vec<&str> = subcategories.split('|').collect();
        for s in ["Fx", "Analyzer", "Spatial"] {
            assert!(subs.contains(&s), "subcategory {s} missing");
        }
        let f3 = factory.cast::<IPluginFactory3>().expect("IPluginFactory3");
        let mut infow: PClassInfoW = std::mem::zeroed();
        assert_eq!(f3.getClassInfoUnicode(0, &mut infow), kResultOk);
        assert_eq!(utf16(&infow.name), "Interneuron Whitening");
        drop((f2, f3));

        // An unknown class id is refused without an object.
        let mut obj = std::ptr::null_mut();
        let bogus = [7 as c_char; 16];
        let r = factory.createInstance(
            bogus.as_ptr(),
            IComponent::IID.as_ptr() as *const c_char,
            &mut obj,
        );
        assert_ne!(r, kResultOk, "createInstance of an unknown class");
        assert!(obj.is_null());
    }

    let mut plugin = Instance::new(&module);
    println!(
        "edit controller: {}",
        if plugin.separate_controller {
            "separate class"
        } else {
            "on the component (single-component effect)"
        }
    );
    // SAFETY: VST3 calls on live objects with pointers to locals.
    unsafe {
        let c = &plugin.component;
        assert_eq!(
            c.getBusCount(AUDIO, INPUT),
            2,
            "two audio input buses: main and sidechain"
        );
        assert_eq!(c.getBusCount(AUDIO, OUTPUT), 1, "one audio output bus");
        assert_eq!(c.getBusCount(EVENT, INPUT), 0, "no event input bus");
        assert_eq!(c.getBusCount(EVENT, OUTPUT), 0, "no event output bus");
        for dir in [INPUT, OUTPUT] {
            let mut info: BusInfo = std::mem::zeroed();
            assert_eq!(c.getBusInfo(AUDIO, dir, 0, &mut info), kResultOk);
            println!(
                "bus {dir}: {:?}, {} channels, type {}, flags {:#x}",
                utf16(&info.name),
                info.channelCount,
                info.busType,
                info.flags
            );
            assert_eq!(info.channelCount, 2, "stereo by default");
            assert_eq!(info.busType, BusTypes_::kMain as i32);
            assert_ne!(info.flags & BusFlags_::kDefaultActive, 0);
        }
        // Input bus 1: the sidechain, auxiliary, as many channels as the main input.
        let mut info: BusInfo = std::mem::zeroed();
        assert_eq!(c.getBusInfo(AUDIO, INPUT, 1, &mut info), kResultOk);
        println!(
            "input bus 1: {:?}, {} channels, type {}",
            utf16(&info.name),
            info.channelCount,
            info.busType
        );
        assert_eq!(
            info.busType,
            BusTypes_::kAux as i32,
            "sidechain is auxiliary"
        );
        assert_eq!(info.channelCount, 2);
        assert_eq!(utf16(&info.name), "Sidechain");
        assert_ne!(
            c.getBusInfo(AUDIO, INPUT, 2, &mut info),
            kResultOk,
            "no input bus 2"
        );
        assert_ne!(
            c.getBusInfo(AUDIO, OUTPUT, 1, &mut info),
            kResultOk,
            "no output bus 1"
        );

        // The layouts the plugin declares are accepted; others are refused.
        let p = &plugin.processor;
        for channels in [1usize, 2, 4, 6, 8, 16] {
            let a = speaker_arrangement(channels);
            let (mut i, mut o) = ([a, a], [a]);
            assert_eq!(
                p.setBusArrangements(i.as_mut_ptr(), 2, o.as_mut_ptr(), 1),
                kResultOk,
                "{channels} channels in (and sidechain) and out"
            );
            let mut got = 0;
            assert_eq!(p.getBusArrangement(OUTPUT, 0, &mut got), kResultOk);
            println!("{channels} channels: set {a:#x}, plugin reports {got:#x}");
            assert_eq!(got.count_ones() as usize, channels);
        }
        for (ins, outs) in [
            (SpeakerArr::k30Cine, SpeakerArr::k30Cine),
            (SpeakerArr::kStereo, SpeakerArr::kMono),
        ] {
            let (mut i, mut o) = ([ins, ins], [outs]);
            assert_ne!(
                p.setBusArrangements(i.as_mut_ptr(), 2, o.as_mut_ptr(), 1),
                kResultOk,
                "{ins:#x} in, {outs:#x} out must be refused"
            );
        }
        assert_eq!(
            p.canProcessSampleSize(SymbolicSampleSizes_::kSample64 as i32),
            kResultFalse,
            "no 64-bit processing (the plugin does not claim it)"
        );
    }
    plugin.configure(2);

    // Parameters.
    let count = plugin.params.len();
    println!("{count} parameters:");
    for p in &plugin.params {
        println!(
            "  {:>10} {:<16} steps {:>3} default {:.4} ({}) flags {:#x}",
            p.id,
            p.title,
            p.steps,
            p.default,
            plugin.value_text(p.id, p.default),
            p.flags
        );
    }
    assert!(count > 10, "only {count} parameters");
    let mut ids: Vec<ParamID> = plugin.params.iter().map(|p| p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "parameter ids are unique");
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
        let p = plugin.param(required);
        assert_ne!(
            p.flags & ParameterFlags_::kCanAutomate,
            0,
            "{required} is automatable"
        );
    }
    let bypass: Vec<&Param> = plugin
        .params
        .iter()
        .filter(|p| p.flags & ParameterFlags_::kIsBypass != 0)
        .collect();
    assert!(
        bypass.len() == 1 && bypass[0].title == "Bypass",
        "exactly one parameter, Bypass, is the host's bypass: {bypass:?}"
    );
    let circuit = plugin.param("Circuit");
    assert_eq!(circuit.steps, 3, "four whiteners");
    assert_eq!(
        plugin.value_text(circuit.id, circuit.default),
        "Interneuron"
    );
    let (_, direct) = plugin.text_value("Circuit", "Direct");
    let (_, baseline) = plugin.text_value("Circuit", "Baseline (ZCA)");
    assert_eq!(plugin.value_text(circuit.id, direct), "Direct");
    assert_eq!(plugin.value_text(circuit.id, baseline), "Baseline (ZCA)");
    let (_, gain) = plugin.text_value("Circuit", "Gain-modulating");
    assert_eq!(plugin.value_text(circuit.id, gain), "Gain-modulating");
    let mix = plugin.param("Dry/wet");
    assert!((mix.default - 1.0).abs() < 1e-9, "fully wet by default");
    // SAFETY: plain VST3 calls.
    unsafe {
        // Plain ↔ normalised for a linear parameter.
        let plain = plugin.controller.normalizedParamToPlain(mix.id, 0.25);
        assert!((plain - 0.25).abs() < 1e-6, "Dry/wet 0.25 → plain {plain}");
        // Edits from the host while not processing go to the plugin.
        assert_eq!(plugin.controller.setParamNormalized(mix.id, 0.5), kResultOk);
        let v = plugin.controller.getParamNormalized(mix.id);
        assert!((v - 0.5).abs() < 1e-6, "setParamNormalized → {v}");
        assert_eq!(plugin.controller.setParamNormalized(mix.id, 1.0), kResultOk);
    }

    plugin.start();
    assert_eq!(plugin.latency(), 0, "channels framing has no latency");
    // SAFETY: plain getter.
    let tail = unsafe { plugin.processor.getTailSamples() };
    println!("latency {}, tail {tail}", plugin.latency());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let out = plugin.process(&mixture(0.5, 3), &[], &mut rng, false);
    check_bounded(&out, "first half second");
    plugin.shutdown();
    module.unload();
}

/// Stereo at 48 kHz: the default (interneuron) circuit whitens a correlated mixture; a dry/wet
/// ramp to dry passes the input through and back to wet whitens again; switching to the direct
/// circuit and to the baseline keeps the output white; bypass is the input; a parameter flush
/// (zero-sample process) takes effect.
fn whitening_scenario() {
    let input = mixture(18.0, 11);
    let rho_in = channel_correlation(&input, 0..input[0].len());
    println!(
        "input: correlation {rho_in:+.4}, levels {:.2?} dBFS",
        levels_db(&input, 0..input[0].len())
    );
    assert!(rho_in > 0.5, "the test mixture must be correlated");

    let module = Module::load();
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let mut rng = ChaCha8Rng::seed_from_u64(1);

    let mix = plugin.param("Dry/wet").id;
    let bypass = plugin.param("Bypass").id;
    let (circuit, direct) = plugin.text_value("Circuit", "Direct");
    let (_, baseline) = plugin.text_value("Circuit", "Baseline (ZCA)");
    let mut events: Vec<Event> = Vec::new();
    // Dry/wet: ramp 1 → 0 over 6.0–6.5 s (a point every 256 samples, several per block), dry
    // until 7.5 s, ramp back 7.5–8.0 s.
    let ramp = |from: f64, to: f64, t0: f64, t1: f64, events: &mut Vec<Event>| {
        let (a, b) = (sec(t0), sec(t1));
        for f in (a..=b).step_by(256) {
            let x = (f - a) as f64 / (b - a) as f64;
            events.push((f, mix, from + (to - from) * x));
        }
        events.push((b, mix, to));
    };
    ramp(1.0, 0.0, 6.0, 6.5, &mut events);
    ramp(0.0, 1.0, 7.5, 8.0, &mut events);
    // Direct circuit from 10 s, baseline from 12.5 s, bypass 15–16.5 s.
    events.push((sec(10.0), circuit, direct));
    events.push((sec(12.5), circuit, baseline));
    events.push((sec(15.0), bypass, 1.0));
    events.push((sec(16.5), bypass, 0.0));
    events.sort_by_key(|e| e.0);

    let started = Instant::now();
    let out = plugin.process(&input, &events, &mut rng, false);
    println!(
        "processed {:.0} s of stereo in {:.2} s ({} automation points)",
        input[0].len() as f64 / RATE,
        started.elapsed().as_secs_f64(),
        events.len()
    );
    check_bounded(&out, "whitening");

    assert_white(&out, sec(5.0)..sec(5.9), "interneuron (default), 5–5.9 s");
    // Dry: the output is the input.
    let rho_dry = channel_correlation(&out, sec(6.6)..sec(7.4));
    let max_diff = (0..2)
        .flat_map(|c| (sec(6.6)..sec(7.4)).map(move |t| (c, t)))
        .map(|(c, t)| (out[c][t] - input[c][t]).abs())
        .fold(0.0f32, f32::max);
    println!("dry (mix 0), 6.6–7.4 s: correlation {rho_dry:+.4}, max |out − in| {max_diff:.2e}");
    assert!(
        max_diff < 1e-5,
        "with Dry/wet at 0 the output is not the input (max difference {max_diff})"
    );
    assert_white(
        &out,
        sec(9.0)..sec(9.9),
        "interneuron after the dry/wet ramp, 9–9.9 s",
    );
    assert_white(&out, sec(11.4)..sec(12.4), "direct, 11.4–12.4 s");
    assert_white(&out, sec(13.9)..sec(14.9), "baseline (ZCA), 13.9–14.9 s");
    // Bypass: after the 20 ms crossfade the output is the input (zero latency).
    for c in 0..2 {
        for t in sec(15.05)..sec(16.4) {
            assert_eq!(
                out[c][t], input[c][t],
                "bypass: channel {c} sample {t} is not the input"
            );
        }
    }
    assert_white(&out, sec(17.0)..sec(18.0), "baseline after bypass, 17–18 s");
    let rho_in_last = channel_correlation(&input, sec(17.0)..sec(18.0));
    println!("input correlation over the last second {rho_in_last:+.4}");
    assert!(rho_in_last > 0.5);

    // A parameter flush (zero samples, only changes) reaches the plugin: back to interneuron.
    let (_, interneuron) = plugin.text_value("Circuit", "Interneuron");
    plugin.flush_params(&[(circuit, interneuron)]);
    // SAFETY: plain getter.
    let v = unsafe { plugin.controller.getParamNormalized(circuit) };
    assert!(
        (v - interneuron).abs() < 1e-6,
        "after the flush Circuit is {v}, not {interneuron}"
    );
    let more = mixture(2.0, 12);
    let out = plugin.process(&more, &[], &mut rng, false);
    check_bounded(&out, "after the flush");
    assert_white(&out, sec(1.0)..sec(2.0), "interneuron after the flush");
    println!(
        "component handler: {} restart requests, {} edits",
        plugin.handler.restarts.load(Ordering::SeqCst),
        plugin.handler.edits.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}

/// Every parameter automated to random normalised values mid-block, several rounds (structural
/// changes, latency restarts, bypass, re-initialisation included): the output stays finite and
/// within ±1 and the plugin never allocates in `process`; back at the defaults (and a fresh
/// re-initialisation) it whitens again.
fn automation_scenario() {
    let module = Module::load();
    let source = Looper::new(mixture(6.0, 31));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let out = plugin.process(&source.next(sec(2.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults");

    let params = plugin.params.clone();
    let started = Instant::now();
    for round in 0..4 {
        let piece = sec(0.3);
        let mut events: Vec<Event> = params
            .iter()
            .flat_map(|p| {
                // One to three points per parameter, anywhere in the piece.
                let points = rng.random_range(1..=3);
                (0..points)
                    .map(|_| (rng.random_range(0..piece), p.id, rng.random::<f64>()))
                    .collect::<Vec<_>>()
            })
            .collect();
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&source.next(piece), &events, &mut rng, round % 2 == 1);
        check_bounded(&out, &format!("automation round {round}"));
        let values: Vec<String> = plugin
            .params
            .iter()
            // SAFETY: plain getter.
            .map(|p| {
                let v = unsafe { plugin.controller.getParamNormalized(p.id) };
                format!("{}={}", p.title, plugin.value_text(p.id, v))
            })
            .collect();
        println!("round {round}: {}", values.join(", "));
        // Run with the random settings until the engine rebuilt off the audio thread has landed
        // (its latency reported and the restart served), then a while longer.
        let text = |title: &str| {
            let id = plugin.param(title).id;
            // SAFETY: plain getter.
            plugin.value_text(id, unsafe { plugin.controller.getParamNormalized(id) })
        };
        let expected: u32 = if text("Framing") == "Spectral" {
            text("FFT size").parse().expect("FFT size as a number")
        } else {
            0
        };
        plugin.process_until(&source, &mut rng, 30.0, |p| {
            p.latency() == expected && p.handler.pending_flags.load(Ordering::SeqCst) == 0
        });
        let out = plugin.process(&source.next(sec(0.5)), &[], &mut rng, false);
        check_bounded(&out, &format!("after automation round {round}"));
        println!(
            "  latency {}, restarts served so far {}",
            plugin.latency(),
            plugin.restarts_served
        );
    }
    println!(
        "automation rounds took {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // Back to the defaults with a re-initialisation: whitens again.
    let reinit = plugin.param("Re-initialise").id;
    let mut events: Vec<Event> = params.iter().map(|p| (0, p.id, p.default)).collect();
    events.push((sec(0.1), reinit, 1.0));
    events.push((sec(0.2), reinit, 0.0));
    let out = plugin.process(&source.next(sec(0.3)), &events, &mut rng, false);
    check_bounded(&out, "back to defaults");
    for (p, (_, v)) in params.iter().zip(plugin.values()) {
        assert!(
            (v - p.default).abs() < 1e-6,
            "{} is {v}, not its default {}",
            p.title,
            p.default
        );
    }
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(sec(4.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults again");
    assert_white(
        &out,
        sec(3.0)..sec(4.0),
        "defaults after random automation, last second",
    );
    println!(
        "restarts served {}; restartComponent calls {}",
        plugin.restarts_served,
        plugin.handler.restarts.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}

/// Distinctive settings (including a structural change with a latency restart) survive
/// `getState` → `setState` into a fresh instance; a corrupt state is refused; loading the
/// default state into a running instance brings it back to whitening with no latency.
fn state_scenario() {
    let module = Module::load();
    let source = Looper::new(mixture(6.0, 21));
    let mut rng = ChaCha8Rng::seed_from_u64(2);

    // A fresh instance's state: the defaults.
    let defaults = {
        let plugin = Instance::new(&module);
        let state = plugin.save_state();
        plugin.shutdown();
        state
    };
    println!("default state: {} bytes", defaults.len());

    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let settings = [
        ("Circuit", "Direct"),
        ("Framing", "Spectral"),
        ("FFT size", "2048"),
        ("Adaptation time", "1234 ms"),
        ("Interneurons", "12"),
        ("Init scale", "100"),
        ("Reference level", "-30"),
        ("Output level", "-26"),
        ("Dry/wet", "80%"),
        ("Noise floor", "-100"),
        ("Bands", "48"),
    ];
    let events: Vec<Event> = settings
        .iter()
        .enumerate()
        .map(|(i, (title, text))| {
            let (id, v) = plugin.text_value(title, text);
            (i * 100, id, v)
        })
        .collect();
    let out = plugin.process(&source.next(sec(0.2)), &events, &mut rng, false);
    check_bounded(&out, "state settings");
    // The spectral engine is built off the audio thread; its latency comes with a restart
    // request, which the host serves by deactivating and activating.
    plugin.process_until(&source, &mut rng, 30.0, |p| {
        p.latency() == 2048 && p.restarts_served > 0
    });
    println!(
        "latency {} after {} restart request(s); restartComponent called off the creating \
         thread: {}",
        plugin.latency(),
        plugin.handler.restarts.load(Ordering::SeqCst),
        plugin.handler.off_main_thread.load(Ordering::SeqCst)
    );
    let out = plugin.process(&source.next(sec(1.0)), &[], &mut rng, false);
    check_bounded(&out, "spectral after the restart");
    let saved_values = plugin.values();
    let state = plugin.save_state();
    let text = String::from_utf8_lossy(&state);
    println!("state: {} bytes: {text}", state.len());
    assert!(!state.is_empty(), "empty state");
    assert_ne!(state, defaults, "the state does not reflect the settings");

    // A fresh instance refuses a corrupt state and keeps its defaults …
    let mut restored = Instance::new(&module);
    let fresh_values = restored.values();
    assert_ne!(
        restored.load_state(b"this is not a plugin state", 0),
        kResultOk,
        "a corrupt state must be refused"
    );
    assert_ne!(
        restored.load_state(&state[..state.len() / 2], 0),
        kResultOk,
        "a truncated state must be refused"
    );
    for ((name, before), (_, after)) in fresh_values.iter().zip(restored.values()) {
        assert!(
            (before - after).abs() < 1e-9,
            "{name} changed by a refused state"
        );
    }
    // … and restores the saved one, read from behind a host's own header.
    let mut with_header = b"HOSTHDR\0".to_vec();
    with_header.extend_from_slice(&state);
    assert_eq!(restored.load_state(&with_header, 8), kResultOk, "setState");
    for ((name, want), (_, got)) in saved_values.iter().zip(restored.values()) {
        assert!(
            (want - got).abs() < 1e-6,
            "{name}: restored {got}, saved {want}"
        );
    }
    restored.configure(2);
    restored.start();
    assert_eq!(
        restored.latency(),
        2048,
        "the restored instance reports the restored FFT size as latency"
    );
    // In-place buffers this time.
    let out = restored.process(&source.next(sec(2.0)), &[], &mut rng, true);
    check_bounded(&out, "restored instance");
    restored.shutdown();

    // The default state loaded into the running instance: back to channels framing, whitening.
    assert_eq!(
        plugin.load_state(&defaults, 0),
        kResultOk,
        "setState while active"
    );
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(sec(5.0)), &[], &mut rng, false);
    check_bounded(&out, "defaults loaded while active");
    assert_white(
        &out,
        sec(4.0)..sec(5.0),
        "defaults loaded while active, last second",
    );
    println!(
        "restarts served {}; restartComponent calls {}",
        plugin.restarts_served,
        plugin.handler.restarts.load(Ordering::SeqCst)
    );
    plugin.shutdown();
    module.unload();
}

// ---------------------------------------------------------------------------------------------
// Host conformance (issue 11): parameter texts, sample rates, bypass state.
// ---------------------------------------------------------------------------------------------

/// Every parameter at 101 normalised values through the controller's text interface
/// (`getParamStringByValue` / `getParamValueByString`): the text of a value parses back to a
/// value whose text is the same, and parsing that again gives the same value — the value
/// given, snapped to its step (stepped parameters) or to the display's resolution (continuous
/// ones); numeric parameters show plain numbers growing with the value, their unit in
/// `ParameterInfo::units` — one unit over the whole range, which is what pedalboard needs to
/// treat them as numbers.
fn text_scenario() {
    let module = Module::load();
    let plugin = Instance::new(&module);
    let units = plugin_child::NUMERIC_UNITS;
    let mut conversions = 0;
    for p in &plugin.params {
        let mut texts = Vec::new();
        for i in 0..=100 {
            let v = i as f64 / 100.0;
            let t = plugin.value_text(p.id, v);
            let mut s = to_utf16(&t);
            let mut v1 = -1.0;
            // SAFETY: `s` is NUL-terminated UTF-16.
            let r = unsafe {
                plugin
                    .controller
                    .getParamValueByString(p.id, s.as_mut_ptr(), &mut v1)
            };
            assert_eq!(
                r, kResultOk,
                "{}: its own text {t:?} (of {v}) does not parse",
                p.title
            );
            let t1 = plugin.value_text(p.id, v1);
            assert_eq!(t1, t, "{}: {v} → {t:?} → {v1} → {t1:?}", p.title);
            let mut s1 = to_utf16(&t1);
            let mut v2 = -1.0;
            // SAFETY: `s1` is NUL-terminated UTF-16.
            let r = unsafe {
                plugin
                    .controller
                    .getParamValueByString(p.id, s1.as_mut_ptr(), &mut v2)
            };
            assert!(
                r == kResultOk && v2 == v1,
                "{}: {t1:?} → {v1}, then {v2}",
                p.title
            );
            // Stepped: the step itself. Continuous: a value the display cannot tell from `v`
            // (same text, above) — the display's resolution is the snapping.
            if p.steps > 0 {
                // A nearest step, either one at a tie.
                let (steps, steps1) = (v * p.steps as f64, v1 * p.steps as f64);
                assert!(
                    (steps1 - steps1.round()).abs() < 1e-5 && (steps1 - steps).abs() <= 0.5 + 1e-5,
                    "{}: {v} → {t:?} → {v1}, not the nearest step",
                    p.title
                );
            }
            texts.push(t);
            conversions += 1;
        }
        if let Some((_, unit)) = units.iter().find(|(name, _)| *name == p.title) {
            assert_eq!(p.units, *unit, "{}: unit", p.title);
            let numbers: Vec<f64> = texts
                .iter()
                .map(|t| {
                    t.parse::<f64>().unwrap_or_else(|_| {
                        panic!(
                            "{}: {t:?} is not a plain number (unit {:?})",
                            p.title, p.units
                        )
                    })
                })
                .collect();
            assert!(
                numbers.windows(2).all(|w| w[0] <= w[1]),
                "{}: displays do not grow with the value: {texts:?}",
                p.title
            );
        }
        println!(
            "{:<16} {:>10} … {:<10} unit {:?}",
            p.title, texts[0], texts[100], p.units
        );
    }
    println!("{conversions} conversions");
    assert!(conversions >= 100 * plugin.params.len());
    plugin.shutdown();
    module.unload();
}

/// `setupProcessing` and `setActive(true)` at the odd rates Steinberg's validator uses and at
/// common ones: activation succeeds, and with every parameter automated at random (spectral
/// framing at the largest FFT size included) the output stays finite, within ±1 and free of
/// subnormals; the latency settles at the FFT size the rate allows.
fn rates_scenario() {
    let module = Module::load();
    for (i, rate) in [1234.5678, 8_000.0, 22_050.0, 384_000.0, 1_234_567.75]
        .into_iter()
        .enumerate()
    {
        let mut plugin = Instance::new(&module);
        plugin.configure_at(2, rate);
        assert!(plugin.try_start(), "setActive(true) failed at {rate} Hz");
        let mut rng = ChaCha8Rng::seed_from_u64(80 + i as u64);
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
        let out = plugin.process(&noise(&mut rng, frames), &[], &mut rng, false);
        check_clean(&out, &format!("{rate} Hz, defaults"));
        let params = plugin.params.clone();
        for round in 0..3 {
            let events: Vec<Event> = params
                .iter()
                .filter(|p| p.title != "Bypass")
                .map(|p| (0, p.id, rng.random::<f64>()))
                .collect();
            let out = plugin.process(&noise(&mut rng, frames), &events, &mut rng, false);
            check_clean(&out, &format!("{rate} Hz, round {round}"));
        }
        let (framing, spectral) = plugin.text_value("Framing", "Spectral");
        let (fft, fft_8192) = plugin.text_value("FFT size", "8192");
        let out = plugin.process(
            &noise(&mut rng, frames),
            &[(0, framing, spectral), (0, fft, fft_8192)],
            &mut rng,
            false,
        );
        check_clean(&out, &format!("{rate} Hz, to spectral"));
        let expected = if rate < 4096.0 { 2048 } else { 8192 };
        let started = Instant::now();
        while plugin.latency() != expected
            || plugin.handler.pending_flags.load(Ordering::SeqCst) != 0
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{rate} Hz: latency {} never became {expected}",
                plugin.latency()
            );
            let out = plugin.process(&noise(&mut rng, 4096), &[], &mut rng, false);
            check_clean(&out, &format!("{rate} Hz, spectral"));
            std::thread::sleep(Duration::from_millis(2));
        }
        println!(
            "{rate} Hz: activated, processed; spectral latency {} (restarts served {})",
            plugin.latency(),
            plugin.restarts_served
        );
        // Let the background thread finish collecting retired engines before the instance
        // goes (nice-plug 0.4.2's worker must not hold the last reference; docs/DESIGN.md §8.1).
        std::thread::sleep(Duration::from_millis(300));
        plugin.shutdown();
    }
    module.unload();
}

/// The bypass survives a state round trip in the component and in the controller: set by
/// automation while processing (as the validator's "Parameter Bypass persistence" test does,
/// with a parameter flush), saved with `getState`, then cleared, it comes back from
/// `setState` + `setComponentState` into the same instance and into a fresh one (whose output
/// is then the input from the first sample); a state saved with bypass off loads off.
fn bypass_state_scenario() {
    let module = Module::load();
    let source = Looper::new(mixture(2.0, 41));
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let bypass = plugin.param("Bypass").id;
    let controller_bypass = |p: &Instance| {
        // SAFETY: plain getter.
        unsafe { p.controller.getParamNormalized(bypass) }
    };

    // The validator's sequence: the controller is told, the processor gets the change in a
    // parameter flush.
    // SAFETY: plain VST3 call.
    unsafe {
        assert_eq!(plugin.controller.setParamNormalized(bypass, 1.0), kResultOk);
    }
    println!(
        "controller value right after setParamNormalized(bypass, 1) while processing: {} \
         (nice-plug 0.4.2 leaves it to the process call)",
        controller_bypass(&plugin)
    );
    plugin.flush_params(&[(bypass, 1.0)]);
    assert_eq!(controller_bypass(&plugin), 1.0, "bypass after the flush");
    let on = plugin.save_state();
    plugin.flush_params(&[(bypass, 0.0)]);
    assert_eq!(controller_bypass(&plugin), 0.0);
    let off = plugin.save_state();
    assert_ne!(on, off, "the state carries the bypass");

    // Back into the same instance (stopped, as the validator does): component and controller.
    plugin.stop();
    assert_eq!(plugin.load_state(&on, 0), kResultOk);
    assert_eq!(
        controller_bypass(&plugin),
        1.0,
        "the bypass is not restored in the controller"
    );
    plugin.start();
    let input = source.next(sec(0.2));
    let out = plugin.process(&input, &[], &mut rng, false);
    for c in 0..2 {
        // (After at most the 20 ms crossfade from where the instance was.)
        assert_eq!(
            &out[c][sec(0.03)..],
            &input[c][sec(0.03)..],
            "restored bypass: the output is the input"
        );
    }

    // Into a fresh instance.
    let mut fresh = Instance::new(&module);
    assert_eq!(fresh.load_state(&on, 0), kResultOk);
    assert_eq!(
        controller_bypass(&fresh),
        1.0,
        "fresh instance's controller"
    );
    fresh.configure(2);
    fresh.start();
    let input = source.next(sec(0.2));
    let out = fresh.process(&input, &[], &mut rng, false);
    assert_eq!(out, input, "fresh instance: bypassed from the first sample");
    // Off again from a state saved off.
    fresh.stop();
    assert_eq!(fresh.load_state(&off, 0), kResultOk);
    assert_eq!(controller_bypass(&fresh), 0.0, "bypass off restored");
    fresh.shutdown();
    plugin.shutdown();
    module.unload();
}

// ---------------------------------------------------------------------------------------------
// Audio material and measurements.
// ---------------------------------------------------------------------------------------------

/// Two independent Gaussian sources mixed by a fixed non-orthogonal matrix, scaled to −20 dBFS
/// RMS over both channels, `secs` long.
fn mixture(secs: f64, seed: u64) -> Vec<Vec<f32>> {
    const MIX: [[f64; 2]; 2] = [[1.0, 0.6], [0.3, 0.9]];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frames = (RATE * secs) as usize;
    let mut out: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(frames)).collect();
    for _ in 0..frames {
        let s: [f64; 2] = [
            StandardNormal.sample(&mut rng),
            StandardNormal.sample(&mut rng),
        ];
        for (o, row) in out.iter_mut().zip(MIX) {
            o.push((row[0] * s[0] + row[1] * s[1]) as f32);
        }
    }
    let ms = out
        .iter()
        .flatten()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / (2 * frames) as f64;
    let gain = 0.1 / ms.sqrt();
    for v in out.iter_mut().flatten() {
        *v = (*v as f64 * gain) as f32;
    }
    out
}

/// Correlation coefficient of the two channels over `range`.
fn channel_correlation(x: &[Vec<f32>], range: std::ops::Range<usize>) -> f64 {
    correlation(&x[0][range.clone()], &x[1][range])
}

/// RMS level of each channel over `range`, in dBFS.
fn levels_db(x: &[Vec<f32>], range: std::ops::Range<usize>) -> Vec<f64> {
    x.iter()
        .map(|ch| {
            let ms = ch[range.clone()]
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                / range.len() as f64;
            10.0 * ms.log10()
        })
        .collect()
}

/// Assert that `out` over `range` is white: uncorrelated channels at the output level.
fn assert_white(out: &[Vec<f32>], range: std::ops::Range<usize>, what: &str) {
    let rho = channel_correlation(out, range.clone());
    let levels = levels_db(out, range);
    println!("{what}: output correlation {rho:+.4}, levels {levels:.2?} dBFS");
    assert!(
        rho.abs() < 0.1,
        "{what}: the output channels are still correlated (ρ = {rho:.3})"
    );
    let target = 20.0 * OUTPUT_GAIN.log10();
    for l in levels {
        assert!(
            (l - target).abs() < 2.0,
            "{what}: output level {l:.2} dBFS, not the {target} dBFS output level"
        );
    }
}

fn sec(s: f64) -> usize {
    (s * RATE) as usize
}
