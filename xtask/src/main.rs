//! Project tasks: `cargo xtask setup | test | soak | demo`, and nice-plug's bundler for
//! everything else (`cargo xtask bundle interneuron-whitening --release`).

mod python;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Debian packages the build needs: ALSA and JACK headers for live audio, X11/GL headers for
/// the plugin editor, pkg-config to find them.
const BUILD_PACKAGES: &[&str] = &[
    "pkg-config",
    "libasound2-dev",
    "libjack-jackd2-dev",
    "libx11-dev",
    "libx11-xcb-dev",
    "libxcursor-dev",
    "libxcb-icccm4-dev",
    "libxcb-dri2-0-dev",
    "libgl-dev",
];

/// Programs the tests and the demo use: a JACK server (dummy driver) for the live path, a
/// virtual display, Mesa's software OpenGL and screenshot tools for the editor, an SVG renderer
/// to look at figures, and the reference encoders that make the FLAC, Ogg Vorbis, MP3 and AIFF
/// test files of `whiten process` (tests/audio_formats.rs, tests/decoder_fuzz.rs).
const TEST_PACKAGES: &[&str] = &[
    "jackd2",
    "xvfb",
    "libgl1-mesa-dri",
    "x11-apps",
    "imagemagick",
    "xdotool",
    "librsvg2-bin",
    "flac",
    "vorbis-tools",
    "lame",
    "sox",
];

/// Set for the test run of `cargo xtask test`: setup installed the encoders, so a test that
/// needs one fails instead of skipping (tests/support/encoders.rs).
const REQUIRE_ENCODERS_ENV: &str = "INTERNEURON_REQUIRE_ENCODERS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("test") => setup().and_then(|_| test()),
        Some("soak") => {
            soak_minutes(&args[1..]).and_then(|minutes| setup().and_then(|_| soak(minutes * 60.0)))
        }
        Some("demo") => setup().and_then(|_| demo()),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!(
                "cargo xtask setup   install the Debian packages the project needs (as root)\n\
                                     and the Python environment of the pedalboard test\n\
                                     (target/pyenv)\n\
                 cargo xtask test    setup, then format check, clippy, the test bundle\n\
                                     (debug, assert_process_allocs), every test and a\n\
                                     60-second soak of the CLAP bundle\n\
                 cargo xtask soak --minutes N   setup, the test bundle, then N minutes of\n\
                                     random automation, rates and hostile audio (tests/soak.rs)\n\
                 cargo xtask demo    setup, then the built-in demo into out/\n\
                 cargo xtask bundle interneuron-whitening [--release]   plugin bundles"
            );
            Ok(())
        }
        Some(_) => {
            nice_plug_xtask::main_with_args("cargo xtask", args).map_err(|e| format!("{e:#}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// The Debian packages, then the Python environment of the pedalboard test.
fn setup() -> Result<(), String> {
    system_packages()?;
    python::setup(&workspace_root())
}

/// Install the missing Debian packages with apt-get when running as root; otherwise print the
/// exact command and fail.
fn system_packages() -> Result<(), String> {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "xtask: not a Debian-based system; install the equivalents of: {}",
            [BUILD_PACKAGES, TEST_PACKAGES].concat().join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = BUILD_PACKAGES
        .iter()
        .chain(TEST_PACKAGES)
        .copied()
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: system packages present");
        return Ok(());
    }
    let command = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!(
            "missing Debian packages: {}\nrun as root:\n  sudo sh -c '{command}'",
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn test() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    bundle_for_tests()?;
    run(cargo()
        .env(REQUIRE_ENCODERS_ENV, "1")
        .args(["test", "--workspace", "--all-targets"]))?;
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    run_soak(CI_SOAK_SECONDS)
}

/// Seconds of soak in `cargo xtask test` (CI).
const CI_SOAK_SECONDS: f64 = 60.0;

/// `--minutes N` (a positive number; fractions allowed) from the soak's arguments.
fn soak_minutes(args: &[String]) -> Result<f64, String> {
    let usage = "usage: cargo xtask soak --minutes N";
    match args {
        [flag, n] if flag == "--minutes" => match n.parse::<f64>() {
            Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
            _ => Err(format!(
                "--minutes {n}: not a positive number of minutes\n{usage}"
            )),
        },
        _ => Err(usage.into()),
    }
}

/// `cargo xtask soak`: the test bundle, then the soak.
fn soak(seconds: f64) -> Result<(), String> {
    bundle_for_tests()?;
    run_soak(seconds)
}

/// The soak test (`tests/soak.rs`, ignored by plain `cargo test`) for `seconds` of wall time,
/// against the bundle `bundle_for_tests` built.
fn run_soak(seconds: f64) -> Result<(), String> {
    run(cargo()
        .env("INTERNEURON_SOAK_SECONDS", seconds.to_string())
        .args([
            "test",
            "--test",
            "soak",
            "--",
            "--ignored",
            "--exact",
            "soak_clap_bundle",
            "--nocapture",
        ]))
}

/// Build `target/bundled/Interneuron Whitening.clap` (and `.vst3`) for the real-host tests: a
/// debug build with nice-plug's `assert_process_allocs`, so an allocation inside the plugin's
/// `process` aborts the host process and fails the test. Only the library is built (`--lib`):
/// the tests load the plugin, not the standalone. The feature installs nice-plug's checking
/// global allocator, which the allocation-counting tests cannot share, so the tests themselves
/// are built without it.
fn bundle_for_tests() -> Result<(), String> {
    let args = [
        "bundle",
        "interneuron-whitening",
        "--lib",
        "--features",
        "assert_process_allocs",
    ];
    eprintln!("xtask: cargo xtask {}", args.join(" "));
    std::env::set_current_dir(workspace_root()).map_err(|e| e.to_string())?;
    nice_plug_xtask::main_with_args("cargo xtask", args.map(String::from))
        .map_err(|e| format!("bundling the plugin for the tests failed: {e:#}"))
}

fn demo() -> Result<(), String> {
    let out = workspace_root().join("out");
    run(cargo()
        .args(["run", "--bin", "whiten", "--", "demo", "--out"])
        .arg(&out))?;
    render_svgs(&out);
    Ok(())
}

/// Render every SVG under `dir` to a PNG beside it (for viewers without SVG support).
fn render_svgs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            render_svgs(&path);
        } else if path.extension().is_some_and(|e| e == "svg") {
            let png = path.with_extension("png");
            let ok = Command::new("rsvg-convert")
                .arg(&path)
                .arg("-o")
                .arg(&png)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                println!("rendered {}", png.display());
            }
        }
    }
}
