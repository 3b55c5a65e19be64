//! The VST3 bundle in a third-party host, Spotify's pedalboard (issue 11, item 5): runs
//! `tests/python/test_pedalboard.py` with the project's Python environment (`target/pyenv`,
//! created by `cargo xtask setup` with the pinned packages of `tests/python/requirements.txt`)
//! against the test bundle `cargo xtask test` builds (debug, `assert_process_allocs`). What the
//! Python test checks is in its docstring; this wrapper makes it part of `cargo test` and turns
//! a crash of the interpreter (an abort inside the plugin) into a clear failure.

mod support;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[test]
fn pedalboard_loads_sets_every_parameter_and_whitens() {
    let bundle = target_dir()
        .join("bundled")
        .join("Interneuron Whitening.vst3");
    support::plugin_child::check_bundle(
        &support::vst3::bundle_path(),
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    let python = target_dir().join("pyenv").join("bin").join("python");
    assert!(
        python.is_file(),
        "{} does not exist: run `cargo xtask setup` (it creates the Python environment with \
         pedalboard and numpy), or `cargo xtask test`, which runs it first",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join("test_pedalboard.py");
    let started = Instant::now();
    let output = Command::new(&python)
        .arg(&script)
        .arg("-v")
        .env("INTERNEURON_VST3", &bundle)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run the Python test");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    println!("pedalboard test: {:.1} s", started.elapsed().as_secs_f64());
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = output.status.signal() {
        panic!(
            "the Python host was killed by signal {signal}{}; see its output above",
            if signal == libc::SIGABRT {
                " (SIGABRT: with assert_process_allocs the plugin allocated inside process())"
            } else {
                ""
            }
        );
    }
    assert!(
        output.status.success(),
        "the pedalboard test failed ({}); see unittest's report above",
        output.status
    );
}
