//! The editor, for real: the standalone binary opens its egui editor on a virtual X display
//! (Xvfb, Mesa's software GL) while a JACK test client plays a correlated stereo mixture into
//! it. The test takes screenshots and checks from the pixels that the error plot and the
//! spectrum show the whiteners' curves and markers, clicks the "Direct" circuit button
//! (parameter change from the GUI → audio thread → stats → plot) and checks that the heard
//! (thick, on top) curve became the direct circuit's.
//!
//! The last screenshot is kept at `target/editor-screenshot.png` for a person to look at (and
//! the one before the click at `target/editor-screenshot-interneuron.png`).
//!
//! Needs `Xvfb`, `xwd`, ImageMagick's `convert`, `xdotool` and `jackd` (`cargo xtask setup`
//! installs them). Every process started here is stopped with SIGTERM, then SIGKILL, also
//! when the test fails.

mod support;
use support::jack::{ChildGuard, JackServer, Loopback};
use support::signals::rms;

use interneuron_whitening::plugin::editor::DEFAULT_SIZE;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;
const PERIOD: u32 = 256;
/// Length of the played signal; the screenshots are taken before it ends (silence after it
/// would be one more change).
const SIGNAL_S: f64 = 14.0;
/// When the mixing changes in the played signal.
const CHANGE_S: f64 = 3.0;
/// Seconds of signal before the first screenshot and before the last one.
const FIRST_SHOT_S: f64 = 6.0;
const LAST_SHOT_S: f64 = 9.0;

/// The error plot inside the window at the default size (x, y, width, height), inside the
/// plot frame: right of the controls panel (350 px) and the y axis, below the header and the
/// status line, above the x axis.
const ERROR_PLOT: (u32, u32, u32, u32) = (430, 100, 710, 300);
/// The spectrum plot inside the window at the default size, inside its frame.
const SPECTRUM_PLOT: (u32, u32, u32, u32) = (415, 470, 265, 240);
/// The "Direct" button of the circuit switch in the header (window coordinates).
const DIRECT_BUTTON: (u32, u32) = (363, 21);
/// The "Sidechain learning" switch in the panel's Adaptation group (window coordinates), and
/// its fill while on (`controls::panel`): the sidechain test checks the click found it.
const SIDECHAIN_BUTTON: (u32, u32) = (75, 245);
const SIDECHAIN_ON: [u8; 3] = [70, 110, 170];

/// Two seeded Gaussian sources mixed by a non-orthogonal matrix (channel correlation ≈ 0.8) at
/// about −20 dBFS; at [`CHANGE_S`] the mixing changes and gets 6 dB louder, so the monitor
/// detects a change. Planar (`[channel][frame]`).
fn mixture() -> Vec<Vec<f32>> {
    const A: [[f64; 2]; 2] = [[1.0, 0.7], [0.2, 0.6]];
    const B: [[f64; 2]; 2] = [[1.2, 0.4], [1.4, 2.0]];
    let frames = (SIGNAL_S * RATE as f64) as usize;
    let change = (CHANGE_S * RATE as f64) as usize;
    let gain = 0.1 / (A.iter().flatten().map(|v| v * v).sum::<f64>() / 2.0).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut x = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
    for t in 0..frames {
        let s: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
        let m = if t < change { &A } else { &B };
        for (c, ch) in x.iter_mut().enumerate() {
            ch.push((gain * (m[c][0] * s[0] + m[c][1] * s[1])) as f32);
        }
    }
    x
}

/// Panic with a hint if a required program is missing.
fn require(program: &str, probe: &[&str]) {
    let found = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{program}` is not installed; `cargo xtask setup` installs the test programs"
    );
}

/// A virtual X display on a free display number (Xvfb picks it: `-displayfd`), stopped on
/// drop.
struct Xvfb {
    guard: ChildGuard,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut guard = ChildGuard::spawn(
            Command::new("Xvfb")
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1280x900x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
            "Xvfb",
        );
        // Xvfb writes the display number once it accepts connections.
        let stdout = guard.child_mut().stdout.take().expect("Xvfb stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading Xvfb's display number");
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb did not report a display number: {line:?}"));
        Xvfb {
            guard,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.guard.terminate(Duration::from_secs(3));
    }
}

/// The editor's window: id and geometry `(x, y, width, height)` on the root window.
fn find_window(display: &str, timeout: Duration) -> Option<(String, [u32; 4])> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let out = Command::new("xdotool")
            .args(["search", "--name", "^Interneuron Whitening$"])
            .env("DISPLAY", display)
            .output()
            .expect("running xdotool");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(id) = text.split_whitespace().next() {
            let geo = Command::new("xdotool")
                .args(["getwindowgeometry", "--shell", id])
                .env("DISPLAY", display)
                .output()
                .expect("running xdotool");
            let geo = String::from_utf8_lossy(&geo.stdout).to_string();
            let field = |name: &str| -> Option<u32> {
                geo.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.trim().parse().ok())
            };
            if let (Some(x), Some(y), Some(w), Some(h)) =
                (field("X"), field("Y"), field("WIDTH"), field("HEIGHT"))
            {
                return Some((id.to_string(), [x, y, w, h]));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Screenshot of the whole display as PNG at `path`.
fn screenshot(display: &str, path: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xwd -root -silent -display {display} | convert xwd:- png:'{}'",
            path.display()
        ))
        .status()
        .expect("running xwd | convert");
    assert!(status.success(), "taking a screenshot failed: {status}");
}

/// The RGB pixels of a rectangle of a PNG (via ImageMagick), row by row.
fn crop(png: &Path, (x, y, w, h): (u32, u32, u32, u32)) -> Vec<[u8; 3]> {
    let out = Command::new("convert")
        .arg(png)
        .args([
            "-crop",
            &format!("{w}x{h}+{x}+{y}"),
            "+repage",
            "-depth",
            "8",
        ])
        .arg("rgb:-")
        .output()
        .expect("running convert");
    assert!(out.status.success(), "cropping {} failed", png.display());
    assert_eq!(out.stdout.len(), (w * h * 3) as usize, "crop size");
    out.stdout
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// Which whitener's colour a pixel has (by hue; saturated, not dark): 0 direct (orange),
/// 1 interneuron (sky blue), 2 baseline (bluish green), as in the editor's palette.
fn whitener_of(p: [u8; 3]) -> Option<usize> {
    let [r, g, b] = p.map(|v| v as f64 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    if max < 0.3 || delta / max < 0.45 {
        return None;
    }
    let hue = if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    match hue {
        h if (30.0..50.0).contains(&h) => Some(0),
        h if (190.0..213.0).contains(&h) => Some(1),
        h if (150.0..175.0).contains(&h) => Some(2),
        _ => None,
    }
}

/// What a region of a screenshot contains.
#[derive(Debug)]
struct Region {
    /// Distinct colours.
    distinct: usize,
    /// Share of the most common colour (the background).
    dominant: f64,
    /// Pixels in each whitener's colour.
    whiteners: [usize; 3],
}

fn analyse(pixels: &[[u8; 3]]) -> Region {
    let mut counts = std::collections::HashMap::new();
    let mut whiteners = [0; 3];
    for p in pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
        if let Some(k) = whitener_of(*p) {
            whiteners[k] += 1;
        }
    }
    Region {
        distinct: counts.len(),
        dominant: counts.values().copied().max().unwrap_or(0) as f64 / pixels.len() as f64,
        whiteners,
    }
}

/// Where the screenshots go: `target/` (next to the binaries' profile directory).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_interneuron_whitening"))
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in target/<profile>/")
        .to_path_buf()
}

fn offset(window: [u32; 4], r: (u32, u32, u32, u32)) -> (u32, u32, u32, u32) {
    (window[0] + r.0, window[1] + r.1, r.2, r.3)
}

/// A virtual display, a JACK server and the standalone running on both, logging to a file.
/// Fields drop in declaration order: the standalone, then the server, then the display.
struct Standalone {
    app: ChildGuard,
    server: JackServer,
    xvfb: Xvfb,
    log_path: PathBuf,
    logs: tempfile::TempDir,
}

/// Check the X tools the tests need, then start [`Standalone`].
fn start_standalone() -> Standalone {
    for (program, probe) in [
        ("Xvfb", &["-help"][..]),
        ("xwd", &["-help"][..]),
        ("convert", &["-version"][..]),
        ("xdotool", &["version"][..]),
    ] {
        require(program, probe);
    }
    let xvfb = Xvfb::start();
    let server = JackServer::start(RATE, PERIOD);
    let logs = tempfile::tempdir().expect("temporary directory");
    let log_path = logs.path().join("standalone.log");
    let log = std::fs::File::create(&log_path).expect("standalone log");
    let app = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_interneuron_whitening"))
            .args(["--backend", "jack"])
            .env("DISPLAY", &xvfb.display)
            .env("JACK_DEFAULT_SERVER", server.name())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log),
        "standalone",
    );
    Standalone {
        app,
        server,
        xvfb,
        log_path,
        logs,
    }
}

#[test]
fn editor_shows_the_race_live() {
    let started = Instant::now();
    // Dropped in order: the test client (first, by hand), the standalone, the JACK server,
    // the display.
    let mut s = start_standalone();
    let log_path = s.log_path.clone();
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let inputs =
        s.server
            .wait_for_ports("interneuron_whitening:input_", 2, Duration::from_secs(20));
    let outputs =
        s.server
            .wait_for_ports("interneuron_whitening:output_", 2, Duration::from_secs(5));
    let signal = mixture();
    let frames = signal[0].len();
    let lb = Loopback::new(&s.server, &signal, 2, frames);
    for c in 0..2 {
        lb.connect(&lb.play_port(c + 1), &inputs[c]);
        lb.connect(&outputs[c], &lb.rec_port(c + 1));
    }
    let (window_id, window) = find_window(&s.xvfb.display, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the editor window did not appear; log:\n{}", log_text()));
    assert_eq!(
        (window[2], window[3]),
        DEFAULT_SIZE,
        "the editor opens at its default size"
    );
    lb.start();

    let wait_for = |seconds: f64| {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds + 20.0);
        while (lb.recorded_frames() as f64) < seconds * RATE as f64 {
            assert!(
                Instant::now() < deadline,
                "JACK did not play {seconds} s of signal in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // 1. Interneuron circuit heard (the default).
    wait_for(FIRST_SHOT_S);
    assert!(
        s.app.try_wait().is_none(),
        "standalone exited; log:\n{}",
        log_text()
    );
    let before = target_dir().join("editor-screenshot-interneuron.png");
    screenshot(&s.xvfb.display, &before);

    // 2. Switch to the direct circuit through the GUI, as a user would.
    let click = Command::new("xdotool")
        .args([
            "mousemove",
            "--window",
            &window_id,
            &DIRECT_BUTTON.0.to_string(),
            &DIRECT_BUTTON.1.to_string(),
            "click",
            "1",
        ])
        .env("DISPLAY", &s.xvfb.display)
        .status()
        .expect("running xdotool");
    assert!(click.success(), "clicking the Direct button failed");

    wait_for(LAST_SHOT_S);
    assert!(
        s.app.try_wait().is_none(),
        "standalone exited; log:\n{}",
        log_text()
    );
    let after = target_dir().join("editor-screenshot.png");
    screenshot(&s.xvfb.display, &after);
    let recorded = lb.recorded();

    let status = s.app.terminate(Duration::from_secs(5));
    eprintln!(
        "standalone stopped: {status}; screenshots {} and {}; {:.1} s",
        before.display(),
        after.display(),
        started.elapsed().as_secs_f64()
    );

    // The error plot: curves, not a blank or single-colour area.
    let plot_before = analyse(&crop(&before, offset(window, ERROR_PLOT)));
    let plot_after = analyse(&crop(&after, offset(window, ERROR_PLOT)));
    eprintln!("error plot before the switch: {plot_before:?}");
    eprintln!("error plot after the switch:  {plot_after:?}");
    for (when, r) in [("before", &plot_before), ("after", &plot_after)] {
        assert!(
            r.distinct >= 64,
            "error plot {when} the switch has only {} colours: {}",
            r.distinct,
            after.display()
        );
        assert!(
            r.dominant < 0.97,
            "error plot {when} the switch is nearly one colour ({:.1} %)",
            r.dominant * 100.0
        );
        assert!(
            r.whiteners.iter().filter(|&&n| n >= 40).count() >= 2,
            "error plot {when} the switch shows fewer than two whiteners' curves: {:?}",
            r.whiteners
        );
    }
    // The heard circuit is drawn thick and on top: clicking "Direct" moves it from the
    // interneuron circuit (blue) to the direct circuit (orange).
    let ratio = |r: &Region| (r.whiteners[0] as f64 + 1.0) / (r.whiteners[1] as f64 + 1.0);
    assert!(
        plot_before.whiteners[1] >= 300,
        "the heard interneuron curve is missing before the switch: {:?}",
        plot_before.whiteners
    );
    assert!(
        plot_after.whiteners[0] >= 300,
        "the heard direct curve is missing after the switch: {:?}",
        plot_after.whiteners
    );
    assert!(
        ratio(&plot_after) > 1.5 * ratio(&plot_before),
        "after clicking Direct the direct curve should dominate: orange/blue {:.2} before, \
         {:.2} after",
        ratio(&plot_before),
        ratio(&plot_after)
    );

    // The spectrum: both circuits' eigenvalue markers.
    let spectrum = analyse(&crop(&after, offset(window, SPECTRUM_PLOT)));
    eprintln!("spectrum plot: {spectrum:?}");
    assert!(
        spectrum.whiteners[0] >= 30 && spectrum.whiteners[1] >= 30,
        "the spectrum lacks a circuit's markers: {:?}",
        spectrum.whiteners
    );

    // And the audio went through: the outputs carry signal in the last seconds.
    let tail = (LAST_SHOT_S * RATE as f64) as usize - RATE as usize;
    for (c, ch) in recorded.iter().enumerate() {
        let end = ch.len().min((LAST_SHOT_S * RATE as f64) as usize);
        let seg = &ch[tail.min(end)..end];
        assert!(
            seg.iter().all(|v| v.is_finite()),
            "output {c} is not finite"
        );
        assert!(rms(seg) > 1e-3, "output {c} is silent: rms {}", rms(seg));
    }
    drop(lb);
    drop(s);
}

/// Sidechain learning in the standalone (docs/DESIGN.md §3.8), which has the sidechain input
/// under JACK: a test client plays a main signal into `input_1..2` and an independent key into
/// `sidechain_1..2`, the "Sidechain learning" switch is clicked on in the editor, and the
/// recorded output has the covariance `g²·C_key^{-1/2} C_main C_key^{-1/2}` of the true
/// mixing matrices (not `g²·I`, main's own whitening).
#[test]
fn standalone_learns_from_its_jack_sidechain() {
    // Dropped in order: the test client (first, by hand), the standalone, the JACK server,
    // the display.
    let mut s = start_standalone();
    let log_path = s.log_path.clone();
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let inputs =
        s.server
            .wait_for_ports("interneuron_whitening:input_", 2, Duration::from_secs(20));
    let outputs =
        s.server
            .wait_for_ports("interneuron_whitening:output_", 2, Duration::from_secs(5));
    let sidechain = s.server.wait_for_ports(
        "interneuron_whitening:sidechain_",
        2,
        Duration::from_secs(5),
    );
    // Main and key: independent Gaussian noise, differently mixed; the key louder, so that the
    // keyed output (eigenvalues 0.29 and 1.33 times the output power) stays clear of the
    // limiter at the default output level.
    let a_main = [[0.12, 0.08], [0.03, -0.1]];
    let a_key = [[0.15, -0.05], [0.1, 0.12]];
    let seconds = 10.0;
    let frames = (seconds * RATE as f64) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut signal: Vec<Vec<f32>> = (0..4).map(|_| Vec::with_capacity(frames)).collect();
    for _ in 0..frames {
        for (a, out) in [(a_main, 0), (a_key, 2)] {
            let s: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
            for i in 0..2 {
                signal[out + i].push((a[i][0] * s[0] + a[i][1] * s[1]) as f32);
            }
        }
    }
    let lb = Loopback::new(&s.server, &signal, 2, frames);
    for c in 0..2 {
        lb.connect(&lb.play_port(c + 1), &inputs[c]);
        lb.connect(&lb.play_port(c + 3), &sidechain[c]);
        lb.connect(&outputs[c], &lb.rec_port(c + 1));
    }
    let (window_id, window) = find_window(&s.xvfb.display, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the editor window did not appear; log:\n{}", log_text()));
    // Switch sidechain learning on through the GUI, and check that the click found it. The
    // window may be mapped before egui has laid out its first frame, when a click falls on
    // nothing: wait until the switch's row is drawn (more than one colour), and click again if
    // the switch has not lit within a few seconds of the last click (a lost click; a click
    // that landed lights it within a frame or two, so this does not toggle it back).
    let shot = s.logs.path().join("sidechain.png");
    let (x, y) = SIDECHAIN_BUTTON;
    let row = offset(window, (x - 40, y - 5, 80, 10));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        screenshot(&s.xvfb.display, &shot);
        let pixels = crop(&shot, row);
        if pixels.iter().any(|p| *p != pixels[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the editor never drew the Sidechain learning switch's row at {SIDECHAIN_BUTTON:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let click = || {
        let status = Command::new("xdotool")
            .args([
                "mousemove",
                "--window",
                &window_id,
                &x.to_string(),
                &y.to_string(),
                "click",
                "1",
            ])
            .env("DISPLAY", &s.xvfb.display)
            .status()
            .expect("running xdotool");
        assert!(
            status.success(),
            "clicking the Sidechain learning switch failed"
        );
        Instant::now()
    };
    let mut clicked = click();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        screenshot(&s.xvfb.display, &shot);
        let lit = crop(&shot, row)
            .iter()
            .filter(|p| **p == SIDECHAIN_ON)
            .count();
        if lit > 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Sidechain learning switch is not on after the clicks ({lit} pixels of its \
             colour): has the panel's layout moved it from {SIDECHAIN_BUTTON:?}?"
        );
        if clicked.elapsed() > Duration::from_secs(4) {
            clicked = click();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lb.start();
    assert!(
        lb.wait(Duration::from_secs_f64(seconds + 20.0)),
        "JACK did not play the signal in time"
    );
    assert!(
        s.app.try_wait().is_none(),
        "standalone exited; log:\n{}",
        log_text()
    );
    let recorded = lb.recorded();
    drop(lb);
    s.app.terminate(Duration::from_secs(5));

    // The last 3 s (the output lags by a period or two; the statistics are stationary).
    let (from, to) = (frames - 3 * RATE as usize, frames - RATE as usize / 10);
    let g2 = 0.01; // the default output level, −20 dBFS
    let cov = |i: usize, j: usize| {
        (from..to)
            .map(|t| recorded[i][t] as f64 * recorded[j][t] as f64)
            .sum::<f64>()
            / ((to - from) as f64 * g2)
    };
    let measured = nalgebra::DMatrix::from_fn(2, 2, cov);
    let m = |a: [[f64; 2]; 2]| nalgebra::DMatrix::from_fn(2, 2, |i, j| a[i][j]);
    let c_main = m(a_main) * m(a_main).transpose();
    let c_key = m(a_key) * m(a_key).transpose();
    let k = support::linalg::sqrtm(&c_key).try_inverse().unwrap();
    let truth = &k * c_main * &k;
    let err = support::linalg::rel_err(&measured, &truth);
    let own = support::linalg::rel_err(&truth, &nalgebra::DMatrix::identity(2, 2));
    eprintln!(
        "standalone sidechain: measured {measured:.4}truth {truth:.4}relative error {err:.4}"
    );
    assert!(err < 0.03, "keyed output covariance off by {err:.4}");
    assert!(own > 0.3, "the truth must differ from main's own whitening");
    drop(s);
}
