//! Sidechain learning through the bundled plugin in real hosts (docs/DESIGN.md §3.8): a key on
//! the sidechain input, "Sidechain learning" switched on by automation, and the main output is
//! whitened by the key's statistics — `g² · C_key^{-1/2} C_main C_key^{-1/2}`, computed from the
//! true covariances — in the CLAP host (`clack-host`, channels framing) and the VST3 host
//! (spectral framing). Without the switch, or with the switch and nothing on the sidechain,
//! the plugin behaves as before: it whitens the main input by its own statistics, or keeps
//! what it learned.
//!
//! Each scenario runs in a child process, as in `tests/clap_host.rs`: an allocation inside
//! `process` (the test bundle is built with `assert_process_allocs`) aborts only the child.
//! Build the bundle first: `cargo xtask bundle interneuron-whitening --lib --features
//! assert_process_allocs`.

mod support;
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::linalg::{rel_err, sqrtm};
use support::plugin_child;
use support::signals::{check_bounded, mixed_noise};

const SCENARIO_ENV: &str = "INTERNEURON_SIDECHAIN_HOST_SCENARIO";
const RATE: f64 = 48_000.0;
/// The output level the scenarios set, −30 dBFS, as a power: the keyed output is louder than
/// the output level by the truth's eigenvalues (up to ~9 here), and at the default −20 dBFS its
/// peaks would reach the limiter.
const OUTPUT_POWER: f64 = 0.001;
/// Largest relative error of the output covariance against the ground truth (the engine's
/// own test, `tests/sidechain.rs`, measures 0.2 % channels and 1.2 % spectral).
const TOLERANCE: f64 = 0.03;

#[test]
fn clap_sidechain_whitens_main_by_the_keys_statistics() {
    run_child("clap");
}

#[test]
fn vst3_sidechain_whitens_main_by_the_keys_statistics() {
    run_child("vst3");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn sidechain_scenario_child() {
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
    let bundle = match scenario {
        "clap" => support::clap::bundle_path(),
        _ => support::vst3::bundle_path(),
    };
    plugin_child::check_bundle(
        &bundle,
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    plugin_child::run_scenario_child("sidechain_scenario_child", SCENARIO_ENV, scenario);
}

fn sec(s: f64) -> usize {
    (s * RATE) as usize
}

/// The main and key mixing matrices (about −20 and −26 dBFS, differently correlated).
fn mixings() -> (DMatrix<f64>, DMatrix<f64>) {
    (
        DMatrix::from_row_slice(2, 2, &[0.12, 0.08, 0.03, -0.1]),
        DMatrix::from_row_slice(2, 2, &[0.02, -0.05, 0.06, 0.03]),
    )
}

/// The output covariance over `range` divided by the output power.
fn covariance(y: &[Vec<f32>], range: std::ops::Range<usize>) -> DMatrix<f64> {
    let n = y.len();
    let len = range.len() as f64;
    DMatrix::from_fn(n, n, |i, j| {
        range
            .clone()
            .map(|t| y[i][t] as f64 * y[j][t] as f64)
            .sum::<f64>()
            / (len * OUTPUT_POWER)
    })
}

/// The ground truth `C_key^{-1/2} C_main C_key^{-1/2}`.
fn keyed_truth() -> DMatrix<f64> {
    let (a_main, a_key) = mixings();
    let c_main = &a_main * a_main.transpose();
    let c_key = &a_key * a_key.transpose();
    let k = sqrtm(&c_key).try_inverse().unwrap();
    &k * c_main * &k
}

/// Check the keyed output of the last 2 s of `out` against the ground truth, and that the
/// truth is far from main's own whitening (≈ I).
fn check_keyed(out: &[Vec<f32>], what: &str) {
    let len = out[0].len();
    let measured = covariance(out, len - sec(2.0)..len);
    let truth = keyed_truth();
    let err = rel_err(&measured, &truth);
    let from_white = rel_err(&truth, &DMatrix::identity(2, 2));
    println!("{what}: keyed output covariance {measured:.4}truth {truth:.4}");
    println!("{what}: relative error {err:.4} (the truth is {from_white:.2} from I)");
    assert!(err < TOLERANCE, "{what}: relative error {err:.4}");
    assert!(from_white > 1.0);
}

/// Check that the output over `range` is main whitened by its own statistics (≈ g²·I).
fn check_self_whitened(out: &[Vec<f32>], range: std::ops::Range<usize>, what: &str) {
    let measured = covariance(out, range);
    let err = rel_err(&measured, &DMatrix::identity(2, 2));
    println!("{what}: own-statistics output covariance {measured:.4}error {err:.4}");
    assert!(err < 0.1, "{what}: not white (error {err:.4})");
}

/// CLAP, stereo 48 kHz, channels framing: 4 s without the switch (main whitens itself), then
/// "Sidechain learning" on with a key for 8 s; the parameter is saved with the state.
fn clap_scenario() {
    use support::clap::{load_entry, Instance};
    let (a_main, a_key) = mixings();
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, 2, RATE);
    let param = plugin.param("Sidechain learning");
    println!("{param:?}");
    assert_eq!(param.default, 0.0, "sidechain learning is off by default");
    assert!(param.stepped, "a switch");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let key = mixed_noise(&a_key, sec(12.0), 2);
    let main = mixed_noise(&a_main, sec(12.0), 3);
    // Off: the key on the sidechain is ignored.
    let head = |x: &[Vec<f32>], r: std::ops::Range<usize>| -> Vec<Vec<f32>> {
        x.iter().map(|c| c[r.clone()].to_vec()).collect()
    };
    let output = plugin.text_value("Output level", "-30");
    let out = plugin.process_keyed(
        &head(&main, 0..sec(4.0)),
        Some(&head(&key, 0..sec(4.0))),
        &[(0, output.0, output.1)],
        &mut rng,
    );
    check_bounded(&out, "off");
    check_self_whitened(&out, sec(2.0)..sec(4.0), "CLAP, switch off");
    // On: learned from the key.
    let out = plugin.process_keyed(
        &head(&main, sec(4.0)..sec(12.0)),
        Some(&head(&key, sec(4.0)..sec(12.0))),
        &[(0, param.id, 1.0)],
        &mut rng,
    );
    check_bounded(&out, "on");
    check_keyed(&out, "CLAP, channels framing");
    // On with nothing on the sidechain (the host's silence): nothing is learned, the keyed
    // whitening holds.
    let more = mixed_noise(&a_main, sec(3.0), 4);
    let out = plugin.process(&more, &[], &mut rng);
    check_keyed(&out, "CLAP, sidechain silent afterwards");
    // Saved with the state.
    let state = plugin.save_state();
    drop(plugin);
    let mut restored = Instance::new(&entry, 2, RATE);
    restored.deactivate();
    restored.load_state(&state);
    restored.activate();
    let values = restored.values();
    let v = values
        .iter()
        .find(|(n, _)| n == "Sidechain learning")
        .expect("listed");
    assert_eq!(v.1, 1.0, "the switch is restored on");
}

/// VST3, stereo 48 kHz, spectral framing (a structural change: a new engine is swapped in),
/// the switch and the framing automated at the first sample, key on the sidechain bus.
fn vst3_scenario() {
    use support::vst3::{Instance, Module};
    let (a_main, a_key) = mixings();
    let module = Module::load();
    let mut plugin = Instance::new(&module);
    plugin.configure(2);
    plugin.start();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sidechain = plugin.param("Sidechain learning");
    println!("{sidechain:?}");
    assert_eq!(
        sidechain.default, 0.0,
        "sidechain learning is off by default"
    );
    use vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_;
    assert_ne!(
        sidechain.flags & ParameterFlags_::kCanAutomate,
        0,
        "automatable"
    );
    let (framing, spectral) = plugin.text_value("Framing", "Spectral");
    let main = mixed_noise(&a_main, sec(10.0), 6);
    let key = mixed_noise(&a_key, sec(10.0), 7);
    let output = plugin.text_value("Output level", "-30");
    let events = [
        (0, framing, spectral),
        (0, sidechain.id, 1.0),
        (0, output.0, output.1),
    ];
    let out = plugin.process_keyed(&main, Some(&key), &events, &mut rng, false);
    check_bounded(&out, "vst3");
    println!("latency {} samples", plugin.latency());
    check_keyed(&out, "VST3, spectral framing");
    let values = plugin.values();
    let v = values
        .iter()
        .find(|(n, _)| n == "Sidechain learning")
        .expect("listed");
    assert_eq!(v.1, 1.0);
    plugin.shutdown();
}
