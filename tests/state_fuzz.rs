//! Random, truncated and mutated state blobs into the plugin's state interfaces (issue 11,
//! item 8; docs/DESIGN.md §7): CLAP `state.load`, and VST3 `IComponent::setState`,
//! `IEditController::setComponentState` and `IEditController::setState`, through the test hosts
//! (`tests/support/clap.rs`, `tests/support/vst3/`) on the bundle built with
//! `assert_process_allocs`.
//!
//! The seeds are real saved states: the defaults, a stereo state with learned circuits in the
//! channels framing, and one in the spectral framing. Each case mutates one seed — bits
//! flipped, cut short, replaced by random bytes, or edited as JSON: a value somewhere replaced
//! by a huge or tiny number, a number of the wrong type, a string, an array, an object or null;
//! a key removed or renamed; and inside the learned state (itself JSON in a string) shapes that
//! do not fit (channel, band or interneuron counts, matrices too short or too long, entries
//! huge or not positive definite) — and loads it into a running instance. Whatever the bytes:
//!
//! * no panic or abort crosses the plugin boundary (each host runs in a child process, so an
//!   abort fails the test with its signal instead of killing the harness);
//! * a refused state changes no parameter ("nothing lost");
//! * after any load every parameter the host reads is finite and within its declared range;
//! * the plugin keeps working: a block processed right after the load is finite and within ±1
//!   (and does not allocate, or the bundle aborts);
//! * at the end the original saved state loads, restores every parameter, and the instance
//!   whitens again.
//!
//! Seeded and bounded: a failure names the case and its mutation.

mod support;
use clack_extensions::state::PluginState;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::plugin_child;
use support::signals::{check_bounded, correlation, Looper};
use vst3::Steinberg::Vst::{IComponentTrait, IEditControllerTrait};
use vst3::Steinberg::{kResultOk, IBStream};
use vst3::{ComPtr, ComWrapper};

const SCENARIO_ENV: &str = "INTERNEURON_STATE_FUZZ_SCENARIO";
/// Mutated blobs per host (VST3: each into all three entry points).
const CASES: usize = 400;
/// The seed of the whole run.
const SEED: u64 = 0x5747_e011;
const RATE: f64 = 48_000.0;

#[test]
fn clap_state_load_survives_mutated_states() {
    run_child("clap");
}

#[test]
fn vst3_set_state_survives_mutated_states() {
    run_child("vst3");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn state_fuzz_child() {
    let Ok(name) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match name.as_str() {
        "clap" => clap_scenario(),
        "vst3" => vst3_scenario(),
        other => panic!("unknown scenario {other}"),
    }
}

fn run_child(scenario: &str) {
    let bundle = if scenario == "clap" {
        support::clap::bundle_path()
    } else {
        support::vst3::bundle_path()
    };
    plugin_child::check_bundle(
        &bundle,
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    plugin_child::run_scenario_child("state_fuzz_child", SCENARIO_ENV, scenario);
}

// ---------------------------------------------------------------------------------------------
// CLAP.
// ---------------------------------------------------------------------------------------------

fn clap_scenario() {
    use support::clap::{load_entry, Instance};
    let entry = load_entry();
    let source = Looper::new(mixture(4.0, 3));
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut plugin = Instance::new(&entry, 2, RATE);
    let params = plugin.params.clone();

    // Seeds: the defaults; learned circuits in the channels framing; the spectral framing.
    let defaults = plugin.save_state();
    let out = plugin.process(&source.next(secs(3.0)), &[], &mut rng);
    check_bounded(&out, "learning");
    let channels = wait_for_learned_state(|| plugin.save_state());
    let spectral_events: Vec<(usize, _, f64)> =
        [("Framing", "Spectral"), ("FFT size", "256"), ("Bands", "4")]
            .iter()
            .map(|(name, text)| {
                let (id, v) = plugin.text_value(name, text);
                (0, id, v)
            })
            .collect();
    let out = plugin.process(&source.next(secs(0.1)), &spectral_events, &mut rng);
    check_bounded(&out, "to spectral");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 256);
    let out = plugin.process(&source.next(secs(2.0)), &[], &mut rng);
    check_bounded(&out, "spectral learning");
    let spectral = wait_for_learned_state(|| plugin.save_state());
    let seeds = [defaults, channels.clone(), spectral];
    for s in &seeds {
        println!("seed state: {} bytes", s.len());
    }

    let started = Instant::now();
    let mut accepted = 0;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for case in 0..CASES {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let (kind, blob) = mutate_framed(seed, &mut rng);
        let what = format!(
            "CLAP case {case} (seed {SEED:#x}): {kind}, {} bytes",
            blob.len()
        );
        let before = plugin.values();
        let ok = {
            let handle = plugin.instance.plugin_handle();
            let ext: PluginState = handle.get_extension().expect("state extension");
            ext.load(&handle, &mut &blob[..]).is_ok()
        };
        let after = plugin.values();
        *kinds.entry(kind).or_default() += usize::from(ok);
        if ok {
            accepted += 1;
        } else {
            assert_eq!(before, after, "{what}: a refused state changed parameters");
        }
        for (p, (name, v)) in params.iter().zip(&after) {
            assert!(
                v.is_finite() && *v >= p.min && *v <= p.max,
                "{what}: after the load {name} reads {v}, outside {}..{}",
                p.min,
                p.max
            );
        }
        let out = plugin.process(&source.next(rng.random_range(1..2048)), &[], &mut rng);
        check_bounded(&out, &what);
    }
    println!(
        "CLAP: {CASES} mutated states in {:.1} s, {accepted} accepted; accepted by kind: \
         {kinds:?}",
        started.elapsed().as_secs_f64()
    );

    // The real state restores everything, and the instance whitens again.
    plugin.load_state(&channels);
    let want = {
        let mut fresh = Instance::new(&entry, 2, RATE);
        fresh.load_state(&channels);
        fresh.values()
    };
    assert_eq!(plugin.values(), want, "the saved state did not restore");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let out = plugin.process(&source.next(secs(3.0)), &[], &mut rng);
    check_bounded(&out, "after the fuzz");
    assert_white(&out, secs(2.0)..secs(3.0), "CLAP after the fuzz");
}

/// Save until the state carries the learned circuits (published about once a second).
fn wait_for_learned_state(mut save: impl FnMut() -> Vec<u8>) -> Vec<u8> {
    let started = Instant::now();
    loop {
        let state = save();
        if String::from_utf8_lossy(&state).contains("direct_m") {
            return state;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no learned state in the saved state"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// VST3.
// ---------------------------------------------------------------------------------------------

fn vst3_scenario() {
    use support::vst3::{Instance, MemoryStream, Module};
    let module = Module::load();
    let source = Looper::new(mixture(4.0, 5));
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 3);
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let defaults = plugin.save_state();
    let out = plugin.process(&source.next(secs(3.0)), &[], &mut rng, false);
    check_bounded(&out, "learning");
    let channels = wait_for_learned_state(|| plugin.save_state());
    let events: Vec<support::vst3::Event> =
        [("Framing", "Spectral"), ("FFT size", "256"), ("Bands", "4")]
            .iter()
            .map(|(title, text)| {
                let (id, v) = plugin.text_value(title, text);
                (0, id, v)
            })
            .collect();
    let out = plugin.process(&source.next(secs(0.1)), &events, &mut rng, false);
    check_bounded(&out, "to spectral");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 256);
    let out = plugin.process(&source.next(secs(2.0)), &[], &mut rng, false);
    check_bounded(&out, "spectral learning");
    let spectral = wait_for_learned_state(|| plugin.save_state());
    let seeds = [defaults, channels.clone(), spectral];

    let stream_of = |bytes: &[u8]| -> (ComWrapper<MemoryStream>, ComPtr<IBStream>) {
        let stream = ComWrapper::new(MemoryStream::with_bytes(bytes));
        let ptr = stream.to_com_ptr::<IBStream>().unwrap();
        (stream, ptr)
    };
    let started = Instant::now();
    let mut accepted = 0;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for case in 0..CASES {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let (kind, blob) = mutate(seed, &mut rng);
        let what = format!(
            "VST3 case {case} (seed {SEED:#x}): {kind}, {} bytes",
            blob.len()
        );
        let before = plugin.values();
        // The component first, then the controller's two entry points, as hosts do for a
        // project (setComponentState) and a controller preset (setState).
        let (_s, ptr) = stream_of(&blob);
        // SAFETY: the stream lives across the call.
        let r = unsafe { plugin.component.setState(ptr.as_ptr()) };
        let after = plugin.values();
        *kinds.entry(kind).or_default() += usize::from(r == kResultOk);
        if r == kResultOk {
            accepted += 1;
        } else {
            assert_eq!(
                before, after,
                "{what}: a refused setState changed parameters"
            );
        }
        for entry in ["setComponentState", "setState"] {
            let (_s, ptr) = stream_of(&blob);
            // SAFETY: the stream lives across the call; the result may be anything but must
            // come back without unwinding or aborting.
            let _ = unsafe {
                if entry == "setState" {
                    plugin.controller.setState(ptr.as_ptr())
                } else {
                    plugin.controller.setComponentState(ptr.as_ptr())
                }
            };
        }
        // The controller's view: every normalised value finite within 0..1.
        for (title, v) in plugin.values() {
            assert!(
                v.is_finite() && (0.0..=1.0).contains(&v),
                "{what}: after the load the controller reads {title} = {v}"
            );
        }
        let out = plugin.process(
            &source.next(rng.random_range(1..2048)),
            &[],
            &mut rng,
            false,
        );
        check_bounded(&out, &what);
    }
    println!(
        "VST3: {CASES} mutated states in {:.1} s, {accepted} accepted by setState; accepted \
         by kind: {kinds:?}",
        started.elapsed().as_secs_f64()
    );

    assert_eq!(plugin.load_state(&channels, 0), kResultOk, "real state");
    let want = {
        let fresh = Instance::new(&module);
        assert_eq!(fresh.load_state(&channels, 0), kResultOk);
        let v = fresh.values();
        fresh.shutdown();
        v
    };
    assert_eq!(plugin.values(), want, "the saved state did not restore");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    let out = plugin.process(&source.next(secs(3.0)), &[], &mut rng, false);
    check_bounded(&out, "after the fuzz");
    assert_white(&out, secs(2.0)..secs(3.0), "VST3 after the fuzz");
    plugin.shutdown();
    module.unload();
}

// ---------------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------------

/// A CLAP state as nice-plug writes it: the JSON's length (8 bytes, little-endian), then the
/// JSON. Mostly the JSON is mutated and framed again with its new length; sometimes the frame
/// itself: a length that lies, or a mutation of the whole blob.
fn mutate_framed(seed: &[u8], rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
    let payload = &seed[8..];
    assert_eq!(
        u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize,
        payload.len(),
        "a CLAP state is its length and its JSON"
    );
    match rng.random_range(0..10) {
        0 => {
            let lie =
                [0u64, 1, 7, payload.len() as u64 + 1, 1 << 28, u64::MAX][rng.random_range(0..6)];
            let mut b = lie.to_le_bytes().to_vec();
            b.extend_from_slice(payload);
            ("length field lies", b)
        }
        1 => mutate(seed, rng),
        _ => {
            let (kind, json) = mutate(payload, rng);
            let mut b = (json.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(&json);
            (kind, b)
        }
    }
}

/// One random mutation of a saved state: (its kind, the bytes).
fn mutate(seed: &[u8], rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
    let mut b = seed.to_vec();
    match rng.random_range(0..10) {
        0 => {
            for _ in 0..rng.random_range(1..=8) {
                let at = rng.random_range(0..b.len());
                b[at] ^= 1 << rng.random_range(0..8);
            }
            ("bit flips", b)
        }
        1 => {
            b.truncate(rng.random_range(0..b.len()));
            ("truncated", b)
        }
        2 => {
            let len = rng.random_range(0..1024);
            ("random bytes", (0..len).map(|_| rng.random()).collect())
        }
        3 => {
            // Two states back to back, or one with garbage after it.
            if rng.random_bool(0.5) {
                b.extend_from_slice(seed);
                ("state twice", b)
            } else {
                b.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
                ("garbage appended", b)
            }
        }
        4 => {
            // Numbers beyond what any parameter or float holds, as text.
            let Ok(text) = String::from_utf8(seed.to_vec()) else {
                return ("bit flips", b);
            };
            let numbers: Vec<(usize, usize)> = number_spans(&text);
            if numbers.is_empty() {
                return ("bit flips", b);
            }
            let (s, e) = numbers[rng.random_range(0..numbers.len())];
            let evil = [
                "1e99999",
                "-1e400",
                "1e39",
                "340282350000000000000000000000000000000",
                "18446744073709551616",
                "-9223372036854775809",
                "1e-400",
                "0.0000000000000000000000000000000000000000000001",
            ];
            let mut t = text.clone();
            t.replace_range(s..e, evil[rng.random_range(0..evil.len())]);
            ("number out of range (text)", t.into_bytes())
        }
        _ => {
            let Ok(mut v) = serde_json::from_slice::<Value>(seed) else {
                return ("bit flips", b);
            };
            let kind = edit_json(&mut v, rng);
            (kind, serde_json::to_vec(&v).unwrap())
        }
    }
}

/// Byte spans of the numbers in a JSON text (digits with sign, point and exponent).
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            || (bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        // Only numbers that are JSON values (after ':' or ',' or '['), not digits in strings.
        let prev = text[..i].trim_end().bytes().last();
        if starts && matches!(prev, Some(b':') | Some(b',') | Some(b'[')) {
            let s = i;
            i += 1;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                i += 1;
            }
            spans.push((s, i));
        } else {
            i += 1;
        }
    }
    spans
}

/// Edit a parsed state: somewhere in the parameters, the fields, or inside the learned state.
fn edit_json(v: &mut Value, rng: &mut ChaCha8Rng) -> &'static str {
    // The learned state is JSON inside a string field: edit it as JSON half the time.
    if rng.random_bool(0.5) {
        if let Some(Value::String(inner)) = v.pointer_mut("/fields/learned-state") {
            if let Ok(mut learned) = serde_json::from_str::<Value>(inner) {
                let kind = if rng.random_bool(0.5) {
                    edit_learned_shape(&mut learned, rng)
                } else {
                    edit_anywhere(&mut learned, rng);
                    "learned state: value replaced"
                };
                *inner = serde_json::to_string(&learned).unwrap();
                return kind;
            }
        }
    }
    edit_anywhere(v, rng)
}

/// Replace, remove or rename something at a random place in `v`.
fn edit_anywhere(v: &mut Value, rng: &mut ChaCha8Rng) -> &'static str {
    let target = random_node(v, rng);
    match rng.random_range(0..4) {
        0 => {
            if let Value::Object(map) = target {
                if let Some(key) = map
                    .keys()
                    .nth(rng.random_range(0..map.len().max(1)))
                    .cloned()
                {
                    map.remove(&key);
                    return "key removed";
                }
            }
            *target = evil_value(rng);
            "value replaced"
        }
        1 => {
            if let Value::Object(map) = target {
                if let Some(key) = map
                    .keys()
                    .nth(rng.random_range(0..map.len().max(1)))
                    .cloned()
                {
                    let value = map.remove(&key).unwrap();
                    map.insert(format!("{key}_renamed"), value);
                    return "key renamed";
                }
            }
            *target = evil_value(rng);
            "value replaced"
        }
        _ => {
            *target = evil_value(rng);
            "value replaced"
        }
    }
}

/// A random node of `v` (the root included), reached by random steps.
fn random_node<'a>(v: &'a mut Value, rng: &mut ChaCha8Rng) -> &'a mut Value {
    let depth = rng.random_range(0..6);
    let mut node = v;
    for _ in 0..depth {
        let len = match &*node {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = rng.random_range(0..len);
        node = match node {
            Value::Object(m) => m.values_mut().nth(i).unwrap(),
            Value::Array(a) => &mut a[i],
            _ => unreachable!(),
        };
    }
    node
}

/// Values of every JSON type, including numbers no parameter or float can hold.
fn evil_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..16) {
        0 => Value::from(1e308),
        1 => Value::from(-1e308),
        2 => Value::from(3.5e38),
        3 => Value::from(1e-320),
        4 => Value::from(i64::MAX),
        5 => Value::from(u64::MAX),
        6 => Value::from(-1),
        7 => Value::from(0),
        8 => Value::from(-0.0),
        9 => Value::from("NaN"),
        10 => Value::from("x".repeat(rng.random_range(0..300))),
        11 => Value::Array(vec![]),
        12 => serde_json::json!({}),
        13 => Value::Null,
        14 => Value::Bool(rng.random()),
        _ => serde_json::json!([1e300, -1e300, 0, "spectral", null]),
    }
}

/// Shapes that do not fit: counts changed, matrices cut or grown, entries huge or making the
/// matrices indefinite, races removed or duplicated.
fn edit_learned_shape(learned: &mut Value, rng: &mut ChaCha8Rng) -> &'static str {
    let counts = ["channels", "fft_size", "bands", "interneurons"];
    match rng.random_range(0..6) {
        0 => {
            let key = counts[rng.random_range(0..counts.len())];
            let value = [
                0u64,
                1,
                2,
                3,
                17,
                64,
                65,
                513,
                1 << 20,
                u32::MAX as u64,
                u64::MAX,
            ][rng.random_range(0..11)];
            learned[key] = Value::from(value);
            "learned state: count changed"
        }
        1 => {
            learned["framing"] = Value::from(
                ["Channels", "Spectral", "channels", "Nothing"][rng.random_range(0..4)],
            );
            "learned state: framing changed"
        }
        kind => {
            let Some(Value::Array(races)) = learned.get_mut("races") else {
                return "learned state: no races";
            };
            if races.is_empty() {
                return "learned state: no races";
            }
            if kind == 2 {
                if rng.random_bool(0.5) {
                    races.pop();
                } else {
                    let r = races[0].clone();
                    races.push(r);
                }
                return "learned state: race count changed";
            }
            let i = rng.random_range(0..races.len());
            let field = ["direct_m", "interneuron_w", "baseline_c"][rng.random_range(0..3)];
            let Some(Value::Array(m)) = races[i].get_mut(field) else {
                return "learned state: no matrix";
            };
            match kind {
                3 => {
                    if rng.random_bool(0.5) {
                        m.pop();
                    } else {
                        m.push(Value::from(1.0));
                    }
                    "learned state: matrix length changed"
                }
                4 => {
                    for x in m.iter_mut() {
                        *x = Value::from(-x.as_f64().unwrap_or(1.0) - 1.0);
                    }
                    "learned state: matrix made indefinite"
                }
                _ => {
                    if !m.is_empty() {
                        let j = rng.random_range(0..m.len());
                        m[j] = Value::from([1e300, -1e300, 1e-300, 0.0][rng.random_range(0..4)]);
                    }
                    "learned state: extreme entry"
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Audio.
// ---------------------------------------------------------------------------------------------

fn secs(s: f64) -> usize {
    (s * RATE) as usize
}

/// Two Gaussian sources through a fixed non-orthogonal mix, −20 dBFS RMS.
fn mixture(seconds: f64, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frames = secs(seconds);
    let mut out = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
    for _ in 0..frames {
        let a: f64 = StandardNormal.sample(&mut rng);
        let b: f64 = StandardNormal.sample(&mut rng);
        out[0].push((0.1 * (0.8 * a + 0.6 * b) / 1.0) as f32);
        out[1].push((0.1 * (0.3 * a + 0.95 * b)) as f32);
    }
    out
}

/// The two output channels over `range` are uncorrelated and at the default −20 dBFS.
fn assert_white(out: &[Vec<f32>], range: std::ops::Range<usize>, what: &str) {
    let rho = correlation(&out[0][range.clone()], &out[1][range.clone()]);
    let levels: Vec<f64> = out
        .iter()
        .map(|c| 20.0 * support::signals::rms(&c[range.clone()]).log10())
        .collect();
    println!("{what}: output correlation {rho:+.3}, levels {levels:.2?} dBFS");
    assert!(
        rho.abs() < 0.1,
        "{what}: output still correlated ({rho:.3})"
    );
    for l in levels {
        assert!((l + 20.0).abs() < 2.0, "{what}: output level {l:.1} dBFS");
    }
}
