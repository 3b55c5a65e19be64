//! Live audio through a real JACK server (the dummy backend: no sound card needed): the
//! standalone binary and `whiten live`, each fed a correlated stereo mixture from a WAV file
//! by a test client and recorded by it.
//!
//! The tests of this file run one after the other (the harness serialises JACK servers within
//! a process); each starts its own `jackd`, so other test binaries do not interfere.

mod support;
use support::counting_alloc::{count_allocations, CountingAllocator};
use support::jack::{ChildGuard, JackServer, Loopback};
use support::signals::rms;

use interneuron_whitening::engine::{Engine, EngineParams, StatsSender};
use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
use interneuron_whitening::live::pipeline;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const RATE: u32 = 48_000;
const PERIOD: u32 = 256;
/// When the mixing changes in the signal played to `whiten live`.
const CHANGE_S: f64 = 0.6;

/// Two independent seeded Gaussian sources mixed by a fixed non-orthogonal matrix, scaled to
/// −20 dBFS RMS over both channels: channel correlation ≈ 0.80, channel RMS ratio ≈ 1.9.
/// With `change_at` (seconds), the mixing changes there to the mirrored matrix (ratio ≈ 0.5)
/// 6 dB louder. Returned planar (`[channel][frame]`).
fn mixture(seconds: f64, seed: u64, change_at: Option<f64>) -> Vec<Vec<f32>> {
    const A: [[f64; 2]; 2] = [[1.0, 0.7], [0.2, 0.6]];
    const B: [[f64; 2]; 2] = [[1.2, 0.4], [1.4, 2.0]];
    let frames = (seconds * RATE as f64) as usize;
    let change = change_at.map_or(frames, |t| (t * RATE as f64) as usize);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = [Vec::with_capacity(frames), Vec::with_capacity(frames)];
    for t in 0..frames {
        let s: [f64; 2] = [rng.sample(StandardNormal), rng.sample(StandardNormal)];
        let m = if t < change { &A } else { &B };
        for c in 0..2 {
            x[c].push(m[c][0] * s[0] + m[c][1] * s[1]);
        }
    }
    // Power of A's mixture of unit sources: the sum of its squared entries over 2 channels.
    let power = A.iter().flatten().map(|v| v * v).sum::<f64>() / 2.0;
    let gain = 0.1 / power.sqrt();
    x.iter()
        .map(|ch| ch.iter().map(|v| (v * gain) as f32).collect())
        .collect()
}

/// Write `planar` to a real 32-bit float WAV file in `dir` and read it back, so that what is
/// played went through the product's WAV code.
fn through_wav(planar: &[Vec<f32>], dir: &Path) -> Vec<Vec<f32>> {
    let path = dir.join("mixture.wav");
    let frames = planar[0].len();
    let interleaved: Vec<f32> = (0..frames)
        .flat_map(|t| planar.iter().map(move |ch| ch[t]))
        .collect();
    let spec = WavSpec {
        sample_rate: RATE,
        channels: planar.len() as u16,
        format: SampleFormat::Float32,
    };
    write_wav(&path, spec, &interleaved).expect("writing the mixture WAV");
    let (read_spec, data) = read_wav(&path).expect("reading the mixture WAV back");
    assert_eq!(read_spec, spec);
    assert_eq!(data, interleaved, "a float WAV round-trips exactly");
    let n = planar.len();
    (0..n)
        .map(|c| data.iter().skip(c).step_by(n).copied().collect())
        .collect()
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

/// The whitening checks on one window: the input's channels are correlated and unequal, the
/// output's are decorrelated (|ρ| < 0.1) with equal RMS (ratio 0.8..1.25) and not silent.
fn assert_whitened(what: &str, input: &[Vec<f32>], output: &[Vec<f32>]) {
    let rho_in = correlation(&input[0], &input[1]);
    let ratio_in = rms(&input[0]) / rms(&input[1]);
    let rho_out = correlation(&output[0], &output[1]);
    let ratio_out = rms(&output[0]) / rms(&output[1]);
    let level_out = 20.0 * rms(&output[0]).max(1e-12).log10();
    eprintln!(
        "{what}: {} frames; input ρ = {rho_in:.3}, RMS ratio {ratio_in:.3}; output ρ = \
         {rho_out:.4}, RMS ratio {ratio_out:.3}, level {level_out:.1} dBFS",
        output[0].len()
    );
    assert!(rho_in > 0.5, "{what}: input correlation {rho_in}");
    assert!(
        !(0.8..=1.25).contains(&ratio_in),
        "{what}: the input's RMS ratio {ratio_in} should be far from 1"
    );
    assert!(
        level_out > -60.0,
        "{what}: output is silent ({level_out} dBFS)"
    );
    assert!(
        rho_out.abs() < 0.1,
        "{what}: output correlation {rho_out} (input {rho_in})"
    );
    assert!(
        (0.8..=1.25).contains(&ratio_out),
        "{what}: output RMS ratio {ratio_out} (input {ratio_in})"
    );
}

fn assert_safe(what: &str, recorded: &[Vec<f32>]) {
    for (c, ch) in recorded.iter().enumerate() {
        for (i, v) in ch.iter().enumerate() {
            assert!(
                v.is_finite() && v.abs() <= 1.0,
                "{what}: channel {c} frame {i} is {v}"
            );
        }
    }
}

fn window(x: &[Vec<f32>], from: usize, to: usize) -> Vec<Vec<f32>> {
    x.iter().map(|ch| ch[from..to].to_vec()).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The harness itself: a loopback client wired to itself returns what it played.
#[test]
fn harness_loopback_returns_the_signal() {
    let server = JackServer::start(RATE, PERIOD);
    let n = 4800;
    let signal: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..n)
                .map(|i| ((i * (c + 1)) as f32 * 0.01).sin() * 0.5)
                .collect()
        })
        .collect();
    let lb = Loopback::new(&server, &signal, 2, n + 2048);
    lb.connect(&lb.play_port(1), &lb.rec_port(1));
    lb.connect(&lb.play_port(2), &lb.rec_port(2));
    assert_eq!(server.connections(&lb.rec_port(1)), vec![lb.play_port(1)]);
    lb.start();
    assert!(lb.wait(Duration::from_secs(10)), "recording did not finish");
    let rec = lb.recorded();
    // A client's own output reaches its input in the same or the next period.
    let delay = (0..2048)
        .find(|&d| rec[1][d..d + 16] == signal[1][..16])
        .expect("the signal comes back");
    for c in 0..2 {
        assert_eq!(rec[c][delay..delay + n], signal[c][..], "channel {c}");
    }
    eprintln!("loopback delay {delay} frames, {} cycles", lb.cycles());
}

/// The standalone (`interneuron_whitening --backend jack`, headless) whitens a correlated
/// stereo mixture played into its JACK ports.
#[test]
fn standalone_whitens_a_correlated_mixture_over_jack() {
    let t0 = Instant::now();
    let server = JackServer::start(RATE, PERIOD);
    let dir = tempfile::tempdir().unwrap();
    let signal = through_wav(&mixture(6.0, 7, None), dir.path());
    let log = dir.path().join("standalone.log");
    let log_file = File::create(&log).unwrap();
    let mut app = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_interneuron_whitening"))
            .args(["--backend", "jack"])
            .env("JACK_DEFAULT_SERVER", server.name())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file)),
        "the standalone",
    );
    let ins = server.wait_for_ports("interneuron_whitening:input_", 2, Duration::from_secs(20));
    let outs = server.wait_for_ports("interneuron_whitening:output_", 2, Duration::from_secs(5));
    assert_eq!(
        (ins.clone(), outs.clone()),
        (
            vec![
                "interneuron_whitening:input_1".to_string(),
                "interneuron_whitening:input_2".to_string()
            ],
            vec![
                "interneuron_whitening:output_1".to_string(),
                "interneuron_whitening:output_2".to_string()
            ]
        )
    );
    // The sidechain input (docs/DESIGN.md §3.8) exists under JACK as ports of its own, not
    // connected: with "Sidechain learning" off (the default) it changes nothing.
    let sidechain = server.wait_for_ports(
        "interneuron_whitening:sidechain_",
        2,
        Duration::from_secs(5),
    );
    assert_eq!(
        sidechain,
        vec![
            "interneuron_whitening:sidechain_1".to_string(),
            "interneuron_whitening:sidechain_2".to_string()
        ]
    );
    assert!(server.connections(&sidechain[0]).is_empty());
    let frames = signal[0].len();
    let lb = Loopback::new(&server, &signal, 2, frames + (RATE / 4) as usize);
    for c in 0..2 {
        lb.connect(&lb.play_port(c + 1), &ins[c]);
        lb.connect(&outs[c], &lb.rec_port(c + 1));
    }
    lb.start();
    assert!(
        lb.wait(Duration::from_secs(15)),
        "recorded only {} frames; standalone log:\n{}",
        lb.recorded_frames(),
        read(&log)
    );
    assert!(
        app.try_wait().is_none(),
        "the standalone died:\n{}",
        read(&log)
    );
    let recorded = lb.recorded();
    drop(lb);
    let status = app.terminate(Duration::from_secs(5));
    eprintln!("standalone stopped: {status}");
    assert_safe("standalone", &recorded);
    // The last 2 s of the mixture (the output lags the input by a period or two).
    let (from, to) = (
        frames - 21 * RATE as usize / 10,
        frames - RATE as usize / 10,
    );
    assert_whitened(
        "standalone",
        &window(&signal, from, to),
        &window(&recorded, from, to),
    );
    eprintln!("standalone test: {:.1} s", t0.elapsed().as_secs_f64());
}

/// `whiten live --host jack --headless --seconds 3` runs on cpal's JACK host, prints the race
/// once per second per circuit, whitens what is played into its ports and exits 0.
#[test]
fn whiten_live_over_jack_prints_the_race_and_whitens() {
    let t0 = Instant::now();
    let server = JackServer::start(RATE, PERIOD);
    let dir = tempfile::tempdir().unwrap();
    let whiten = env!("CARGO_BIN_EXE_whiten");

    // An unknown device name lists the ones that exist.
    let bad = Command::new(whiten)
        .args([
            "live",
            "--host",
            "jack",
            "--input",
            "nope",
            "--seconds",
            "1",
        ])
        .env("JACK_DEFAULT_SERVER", server.name())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--input \"nope\"") && err.contains("\"JACK Input\" = jack:input"),
        "{err}"
    );
    // --list-devices shows the JACK host's devices.
    let list = Command::new(whiten)
        .args(["live", "--list-devices"])
        .env("JACK_DEFAULT_SERVER", server.name())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{text}");
    assert!(
        text.contains("JACK (--host jack):")
            && text.contains("input  \"JACK Input\" = jack:input [default]")
            && text.contains("output \"JACK Output\" = jack:output [default]"),
        "{text}"
    );

    let signal = through_wav(&mixture(5.0, 11, Some(CHANGE_S)), dir.path());
    let (out_log, err_log) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut live = ChildGuard::spawn(
        Command::new(whiten)
            .args(["live", "--host", "jack", "--headless", "--seconds", "3"])
            .args(["--circuit", "interneuron", "--tau-ms", "150"])
            .env("JACK_DEFAULT_SERVER", server.name())
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::from(File::create(&out_log).unwrap()))
            .stderr(Stdio::from(File::create(&err_log).unwrap())),
        "whiten live",
    );
    // cpal's JACK host names its two clients after the process id.
    let pid = live.id();
    let ins = server.wait_for_ports(
        &format!("cpal_client_{pid}_in:in_"),
        2,
        Duration::from_secs(10),
    );
    let outs = server.wait_for_ports(
        &format!("cpal_client_{pid}_out:out_"),
        2,
        Duration::from_secs(5),
    );
    eprintln!("whiten live ports: {ins:?} {outs:?}");
    let lb = Loopback::new(&server, &signal, 2, 4 * RATE as usize);
    for c in 0..2 {
        lb.connect(&lb.play_port(c + 1), &ins[c]);
        lb.connect(&outs[c], &lb.rec_port(c + 1));
    }
    lb.start();
    let status = live.wait_timeout(Duration::from_secs(15));
    let (stdout, stderr) = (read(&out_log), read(&err_log));
    let status = status.unwrap_or_else(|| panic!("whiten live did not stop:\n{stderr}"));
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let recorded = lb.recorded();
    drop(lb);
    eprintln!("{stdout}{stderr}");

    // One line per second per circuit: "   1.0 s  interneuron*  level -20.3 dBFS  error 0.084".
    for name in ["direct", "interneuron*", "baseline", "gain"] {
        let lines: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.get(2) == Some(&name))
            .collect();
        assert!(lines.len() >= 2, "{name}: {} lines\n{stdout}", lines.len());
        for (i, w) in lines.iter().enumerate() {
            assert_eq!(w[0].parse::<f64>().ok(), Some((i + 1) as f64), "{w:?}");
            assert_eq!((w[1], w[3], w[5], w[6]), ("s", "level", "dBFS", "error"));
            let level: f64 = w[4].parse().unwrap();
            let error: f64 = w[7].parse().unwrap();
            assert!((-200.0..=0.0).contains(&level), "{w:?}");
            assert!(error.is_finite() && error >= 0.0, "{w:?}");
        }
    }
    // The change of mixing is detected and the heard circuit readapts (reported on its
    // per-second line or, if it came after the last whole second, at the stop).
    let changes: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("change detected at ").nth(1))
        .filter_map(|rest| rest.trim_end_matches(" s").parse().ok())
        .collect();
    assert!(!changes.is_empty(), "no change detected:\n{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("interneuron")
            && l.contains("readapted ")
            && l.contains(" s after change at ")),
        "no readaptation of the interneuron circuit reported:\n{stdout}"
    );
    assert!(stderr.contains("underruns"), "{stderr}");

    // The output from 1 s after the change of mixing until whiten live stopped (the output
    // lags the input by a period or two, negligible here).
    assert_safe("whiten live", &recorded);
    let end = recorded[0]
        .iter()
        .rposition(|v| v.abs() > 1e-4)
        .expect("whiten live played something");
    let from = ((CHANGE_S + 1.0) * RATE as f64) as usize;
    let to = end.saturating_sub(RATE as usize / 20);
    assert!(
        to > from + 2 * RATE as usize / 5,
        "whiten live played only {:.2} s of the mixture",
        end as f64 / RATE as f64
    );
    assert_whitened(
        "whiten live",
        &window(&signal, from, to),
        &window(&recorded, from, to),
    );
    eprintln!("whiten live test: {:.1} s", t0.elapsed().as_secs_f64());
}

/// Argument errors of `whiten live` name the option and need no audio device.
#[test]
fn whiten_live_argument_errors() {
    let whiten = env!("CARGO_BIN_EXE_whiten");
    let cases: [(&[&str], &str); 5] = [
        (&["--channels", "0"], "--channels 0"),
        (&["--channels", "17"], "--channels 17"),
        (&["--seconds", "-1"], "--seconds must be a positive number"),
        (&["--tau-ms", "1"], "--tau-ms 1 is outside"),
        (&["--eta", "2"], "--eta must be in (0, 1)"),
    ];
    for (args, expect) in cases {
        let out = Command::new(whiten)
            .arg("live")
            .args(args)
            .env("JACK_DEFAULT_SERVER", "iw-test-no-such-server")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // No JACK server: the error says to start one or use the standalone.
    let out = Command::new(whiten)
        .args(["live", "--host", "jack", "--seconds", "1"])
        .env("JACK_DEFAULT_SERVER", "iw-test-no-such-server")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is a JACK server running") && err.contains("interneuron_whitening"),
        "{err}"
    );
}

/// `whiten live`'s callbacks: no allocation in either, silence while the ring fills, an
/// underrun counted (and silence) when the input falls behind, the engine's output otherwise.
#[test]
fn whiten_live_callbacks_do_not_allocate_and_count_underruns() {
    let mut engine = Engine::new(2, RATE as f64, EngineParams::default()).unwrap();
    let (tx, _rx) = crossbeam_channel::bounded(4096);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let (mut input, mut output, counters) = pipeline(engine, 2);
    let signal = mixture(1.0, 3, None);
    let interleaved: Vec<f32> = (0..signal[0].len())
        .flat_map(|t| [signal[0][t], signal[1][t]])
        .collect();
    let block = 2 * PERIOD as usize;
    let mut out = vec![1.0f32; block];
    let mut pos = 0;
    let mut heard = 0.0f64;
    let allocations = count_allocations(|| {
        // Nothing to play yet: silence, no underrun.
        output.process(&mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        // Input then output, as JACK runs them when the output is not connected upstream.
        for _ in 0..100 {
            input.push(&interleaved[pos..pos + block]);
            pos += block;
            output.process(&mut out);
            heard += out.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        }
        // The input falls behind by one period: one underrun, silence.
        output.process(&mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        // It waits for two periods now before playing again.
        input.push(&interleaved[pos..pos + block]);
        pos += block;
        output.process(&mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        input.push(&interleaved[pos..pos + block]);
        output.process(&mut out);
        assert!(out.iter().any(|&v| v != 0.0));
        // i16 works the same way.
        let mut out16 = [0i16; 512];
        input.push(&[0i16; 512]);
        output.process(&mut out16);
    });
    let s = counters.summary(RATE as f64);
    assert_eq!(allocations, 0, "the callbacks allocated");
    assert_eq!(s.underruns, 1, "{s:?}");
    assert_eq!(s.overrun_frames, 0, "{s:?}");
    assert_eq!(s.audio_s, 102.0 * PERIOD as f64 / RATE as f64);
    assert!(heard > 0.0);
}
