//! Real encoders for the test files of the formats `whiten process` reads besides WAV: `flac`
//! (package flac), `oggenc` (vorbis-tools), `lame` (lame) and `sox` (sox; AIFF, AIFF-C). They
//! are Debian packages that `cargo xtask setup` installs, so the files are what users have, not
//! what this crate's own code believes the formats to be.
//!
//! Under `cargo xtask test` (which sets [`REQUIRED_ENV`]) a missing encoder fails the test.
//! Run by hand without them, a test that needs one is skipped with a notice written straight to
//! the terminal (the test harness captures `eprintln!` of passing tests, so that would be
//! silent).

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Set by `cargo xtask test`: the encoders must be present.
pub const REQUIRED_ENV: &str = "INTERNEURON_REQUIRE_ENCODERS";

/// Whether every program in `tools` can be run. If one cannot: panics when [`REQUIRED_ENV`] is
/// set, otherwise prints a loud notice naming `test` and the Debian packages, and returns
/// `false` (the caller returns, skipping the test).
pub fn available(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .map_or(true, |ok| !ok)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let packages: Vec<&str> = missing.iter().map(|t| package_of(t)).collect();
    let problem = format!(
        "encoder(s) {} not found: install the Debian package(s) {} (`cargo xtask setup` does)",
        missing.join(", "),
        packages.join(" ")
    );
    if std::env::var_os(REQUIRED_ENV).is_some() {
        panic!("{test}: {problem}; {REQUIRED_ENV} is set, so the encoders are required");
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "\n*** {test}: SKIPPED, {problem} ***\n");
    false
}

/// The Debian package that provides `tool`.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "flac" => "flac",
        "oggenc" => "vorbis-tools",
        "lame" => "lame",
        "sox" => "sox",
        _ => "?",
    }
}

/// Runs `program args…`, panicking with its output if it fails.
pub fn run(program: &str, args: &[&OsStr]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `flac` (reference encoder, level 5 by default) of a WAV file, plus `extra` options (e.g.
/// `--ogg`).
pub fn flac(wav: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<&OsStr> = vec!["-s".as_ref(), "-f".as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([wav.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    run("flac", &args);
}

/// `oggenc -q quality` (Vorbis, libvorbis' reference encoder) of a WAV file.
pub fn vorbis(wav: &Path, out: &Path, quality: &str) {
    run(
        "oggenc",
        &[
            "-Q".as_ref(),
            "-q".as_ref(),
            quality.as_ref(),
            wav.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
}

/// `lame` of a WAV file with `options` (e.g. `-b 320`, `-V 2`); lame writes its Xing/LAME tag
/// (length, encoder delay and padding) by default.
pub fn mp3(wav: &Path, out: &Path, options: &[&str]) {
    let mut args: Vec<&OsStr> = vec!["--quiet".as_ref()];
    args.extend(options.iter().map(OsStr::new));
    args.extend([wav.as_os_str(), out.as_os_str()]);
    run("lame", &args);
}

/// `sox input [options] output`: AIFF or AIFF-C by the output's extension.
pub fn sox(input: &Path, options: &[&str], out: &Path) {
    let mut args: Vec<&OsStr> = vec![input.as_os_str()];
    args.extend(options.iter().map(OsStr::new));
    args.push(out.as_os_str());
    run("sox", &args);
}
