//! Shared by the real-host tests (`clap_host.rs`, `vst3_host.rs`): each scenario runs in a
//! child process — the test binary re-run on one ignored test — so that an abort inside the
//! plugin (`assert_process_allocs` aborts with SIGABRT on an allocation in `process`) fails the
//! test with a clear message instead of killing the test harness.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Check that the bundle exists (with `how_to_build` in the message if not) and warn if it is
/// older than the sources.
pub fn check_bundle(bundle: &Path, how_to_build: &str) {
    assert!(
        bundle.is_file(),
        "the plugin {} does not exist: build it first with {how_to_build}, or run `cargo xtask \
         test`, which builds it with `assert_process_allocs` before running the tests",
        bundle.display()
    );
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let path = e.path();
                if path.is_dir() {
                    newest(&path)
                } else {
                    e.metadata().ok()?.modified().ok()
                }
            })
            .max()
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let built = std::fs::metadata(bundle).and_then(|m| m.modified()).ok();
    if let (Some(built), Some(changed)) = (built, newest(&src)) {
        if changed > built {
            eprintln!(
                "warning: {} is older than the sources; rebuild it with {how_to_build} to test \
                 the current code",
                bundle.display()
            );
        }
    }
}

/// Run `child_test` (an `#[ignore]`d test of this binary) with `env_var=scenario`, print its
/// output, and fail with a clear message if it failed or was killed by a signal.
pub fn run_scenario_child(child_test: &str, env_var: &str, scenario: &str) {
    let exe = std::env::current_exe().expect("test executable path");
    let started = Instant::now();
    let output = Command::new(exe)
        .args([
            child_test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env_var, scenario)
        .output()
        .expect("cannot start the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "--- scenario {scenario} ({:.1} s) ---",
        started.elapsed().as_secs_f64()
    );
    println!("{stdout}");
    eprintln!("{stderr}");
    if output.status.success() {
        assert!(
            stdout.contains("1 passed"),
            "the child process ran no scenario"
        );
        return;
    }
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = output.status.signal() {
            panic!(
                "scenario {scenario}: the host process was killed by signal {signal}{}; see its \
                 stderr above",
                if signal == libc::SIGABRT {
                    " (SIGABRT: with assert_process_allocs this means the plugin allocated inside \
                     process(), e.g. \"memory allocation of N bytes failed\")"
                } else {
                    ""
                }
            );
        }
    }
    panic!(
        "scenario {scenario} failed ({}); see the child's output above",
        output.status
    );
}

/// The plugin's numeric parameters and the one unit each displays over its whole range (what
/// scripting hosts such as pedalboard need to treat them as numbers), shared by the CLAP and
/// VST3 text tests.
pub const NUMERIC_UNITS: &[(&str, &str)] = &[
    ("Adaptation time", " ms"),
    ("Interneurons", ""),
    ("Init scale", ""),
    ("Reference level", " dB"),
    ("Output level", " dB"),
    ("Dry/wet", "%"),
    ("Noise floor", " dB"),
    ("FFT size", ""),
    ("Bands", ""),
];
