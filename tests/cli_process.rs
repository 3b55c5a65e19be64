//! `whiten process IN.wav OUT.wav` through the real binary on real files (docs/DESIGN.md §12.2):
//! every supported format, channel count and rate round-trips with the same shape; stats are
//! JSON lines with the documented keys; bad input and bad arguments fail cleanly (clear
//! message naming the file, no panic, nothing on stdout, an existing OUT untouched and no
//! temporary files left behind); non-finite samples are counted and reported.

use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
mod support;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::files::{snapshot, whiten_from_stdin, whiten_process as process};

const FORMATS: [SampleFormat; 4] = [
    SampleFormat::Int16,
    SampleFormat::Int24,
    SampleFormat::Int32,
    SampleFormat::Float32,
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Correlated noise, interleaved: channel c = 0.1·(g_c + 0.6·g_0), clipped to ±0.99, so the
/// whiteners have a non-trivial covariance to undo.
fn noise(channels: usize, frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(channels * frames);
    for _ in 0..frames {
        let g0: f32 = rng.sample(StandardNormal);
        for c in 0..channels {
            let g: f32 = if c == 0 {
                g0
            } else {
                rng.sample(StandardNormal)
            };
            let v = 0.1 * (g + if c == 0 { 0.0 } else { 0.6 * g0 });
            out.push(v.clamp(-0.99, 0.99));
        }
    }
    out
}

fn spec(format: SampleFormat, channels: u16, sample_rate: u32) -> WavSpec {
    WavSpec {
        sample_rate,
        channels,
        format,
    }
}

/// Writes a noise file and returns its samples as the reader decodes them (quantised).
fn write_noise(path: &Path, s: WavSpec, frames: usize, seed: u64) -> Vec<f32> {
    write_wav(path, s, &noise(s.channels as usize, frames, seed)).unwrap();
    read_wav(path).unwrap().1
}

/// A canonical 44-byte-header WAV file built by hand, for encodings `write_wav` refuses.
fn handmade_wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let align = channels * (bits / 8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * align as u32).to_le_bytes());
    v.extend_from_slice(&align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// A directory for OUT holding one existing, valid WAV file `old.wav` that must survive.
fn out_dir_with_old_file(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("out");
    std::fs::create_dir(&dir).unwrap();
    let old = dir.join("old.wav");
    write_wav(
        &old,
        spec(SampleFormat::Int16, 1, 8000),
        &[0.25, -0.5, 0.125],
    )
    .unwrap();
    (dir, old)
}

/// Asserts a clean failure: exit code not 0 and not 101 (Rust's panic code), nothing on
/// stdout, and stderr containing every string of `all` and at least one string of each
/// group in `any`. Returns stderr.
fn assert_clean_failure(what: &str, out: &Output, all: &[&str], any: &[&[&str]]) -> String {
    let stderr = stderr_of(out);
    assert!(
        !out.status.success(),
        "{what}: should fail; stderr: {stderr}"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "{what}: panicked instead of reporting an error: {stderr}"
    );
    assert!(
        out.status.code().is_some(),
        "{what}: killed by a signal: {:?}; stderr: {stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "{what}: panic message on stderr: {stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: printed to stdout on failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in all {
        assert!(
            stderr.contains(needle),
            "{what}: expected '{needle}' in stderr: {stderr}"
        );
    }
    for group in any {
        assert!(
            group.iter().any(|n| stderr.contains(n)),
            "{what}: expected one of {group:?} in stderr: {stderr}"
        );
    }
    stderr
}

/// Asserts OUT exists with `in_spec`'s rate and channel count, the given format and exactly
/// `frames` frames; samples finite, within ±1 (`bounded`) and not silent.
fn check_output(what: &str, out: &Path, expect: WavSpec, frames: usize, bounded: bool) -> Vec<f32> {
    let (ospec, data) =
        read_wav(out).unwrap_or_else(|e| panic!("{what}: cannot read the output back: {e}"));
    assert_eq!(ospec, expect, "{what}: output format/rate/channels");
    assert_eq!(
        data.len(),
        frames * expect.channels as usize,
        "{what}: output frame count"
    );
    assert!(
        data.iter().all(|v| v.is_finite()),
        "{what}: non-finite output sample"
    );
    if bounded {
        let peak = data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak <= 1.0, "{what}: output peak {peak} exceeds 1");
    }
    let half = &data[data.len() / 2..];
    let rms = (half.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / half.len() as f64).sqrt();
    assert!(rms > 1e-3, "{what}: output is (nearly) silent, RMS {rms}");
    data
}

// ---------------------------------------------------------------------------------------------
// Success paths
// ---------------------------------------------------------------------------------------------

#[test]
fn every_format_channel_count_and_rate_round_trips_with_the_same_shape() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0;
    for format in FORMATS {
        for channels in [1u16, 2, 5, 16] {
            for rate in [22_050u32, 44_100, 96_000] {
                seed += 1;
                let what = format!("{format}, {channels} ch, {rate} Hz");
                // Not a multiple of any internal chunk, block or stats interval.
                let frames = rate as usize / 5 + 37;
                let s = spec(format, channels, rate);
                let inp = dir.path().join(format!("in-{seed}.wav"));
                let out = dir.path().join(format!("out-{seed}.wav"));
                write_noise(&inp, s, frames, seed);
                let o = process(&[&inp, &out]);
                let stderr = stderr_of(&o);
                assert!(o.status.success(), "{what}: {stderr}");
                assert!(
                    stderr.contains(&format!("{frames} frames")),
                    "{what}: summary should give the frame count: {stderr}"
                );
                check_output(&what, &out, s, frames, true);
            }
        }
    }
    // Nothing but the inputs and outputs in the directory.
    let names: Vec<String> = snapshot(dir.path()).into_keys().collect();
    assert_eq!(names.len(), 2 * seed as usize, "stray files: {names:?}");
}

#[test]
fn spectral_mode_keeps_format_and_exact_length() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (SampleFormat::Int16, 1u16, 22_050u32, 1024usize),
        (SampleFormat::Int24, 2, 44_100, 1024),
        (SampleFormat::Int32, 5, 96_000, 256),
        (SampleFormat::Float32, 16, 44_100, 2048),
        (SampleFormat::Float32, 2, 48_000, 8192),
    ];
    for (i, &(format, channels, rate, fft)) in cases.iter().enumerate() {
        let what = format!("spectral N={fft}, {format}, {channels} ch, {rate} Hz");
        let frames = rate as usize / 4 + 1001;
        let s = spec(format, channels, rate);
        let inp = dir.path().join(format!("in-{i}.wav"));
        let out = dir.path().join(format!("out-{i}.wav"));
        write_noise(&inp, s, frames, 100 + i as u64);
        let o = process(&[
            inp.as_os_str(),
            out.as_os_str(),
            "--mode".as_ref(),
            "spectral".as_ref(),
            "--fft-size".as_ref(),
            fft.to_string().as_ref(),
        ]);
        let stderr = stderr_of(&o);
        assert!(o.status.success(), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("latency of {fft} samples compensated")),
            "{what}: the latency should be reported: {stderr}"
        );
        check_output(&what, &out, s, frames, true);
    }
}

#[test]
fn dry_signal_comes_out_aligned_in_both_modes() {
    // With --dry-wet 0 the output is the input; in spectral mode it has been through the STFT
    // and the latency compensation, so this checks OUT lines up with IN sample for sample.
    // Over three of the writer thread's 16384-frame chunks, ending in a partial one.
    let dir = tempfile::tempdir().unwrap();
    let frames = 53_251;
    for (i, mode) in ["channels", "spectral"].iter().enumerate() {
        for format in [SampleFormat::Int16, SampleFormat::Float32] {
            let what = format!("--dry-wet 0 --mode {mode}, {format}");
            let s = spec(format, 2, 44_100);
            let inp = dir.path().join(format!("in-{i}-{format}.wav"));
            let out = dir.path().join(format!("out-{i}-{format}.wav"));
            let input = write_noise(&inp, s, frames, 7);
            let o = process(&[
                inp.as_os_str(),
                out.as_os_str(),
                "--mode".as_ref(),
                mode.as_ref(),
                "--dry-wet".as_ref(),
                "0".as_ref(),
            ]);
            assert!(o.status.success(), "{what}: {}", stderr_of(&o));
            let output = check_output(&what, &out, s, frames, true);
            let (mut err, mut sig) = (0.0f64, 0.0f64);
            let mut worst = 0.0f32;
            for (a, b) in input.iter().zip(&output) {
                err += ((a - b) as f64).powi(2);
                sig += (*a as f64).powi(2);
                worst = worst.max((a - b).abs());
            }
            let db = 10.0 * (err.max(1e-300) / sig).log10();
            if format == SampleFormat::Int16 {
                // At most one quantisation step off (the STFT round trip is not bit exact).
                assert!(worst <= 1.0 / 32_768.0, "{what}: worst difference {worst}");
            } else {
                assert!(
                    db < -100.0,
                    "{what}: output differs from input by {db:.1} dB"
                );
            }
        }
    }
}

#[test]
fn delta_and_depth_options_shape_what_is_written() {
    // --delta writes the output minus the aligned input; --depth 0 writes the input itself
    // (the default reference and output levels are equal).
    let dir = tempfile::tempdir().unwrap();
    let frames = 40_000;
    let s = spec(SampleFormat::Float32, 2, 48_000);
    let inp = dir.path().join("in.wav");
    let input = write_noise(&inp, s, frames, 12);
    for mode in ["channels", "spectral"] {
        let run = |name: &str, extra: &[&str]| -> Vec<f32> {
            let out = dir.path().join(format!("{mode}-{name}.wav"));
            let mut args: Vec<&OsStr> = vec![
                inp.as_os_str(),
                out.as_os_str(),
                "--mode".as_ref(),
                mode.as_ref(),
            ];
            args.extend(extra.iter().map(OsStr::new));
            let o = process(&args);
            assert!(o.status.success(), "{mode} {name}: {}", stderr_of(&o));
            check_output(&format!("{mode} {name}"), &out, s, frames, true)
        };
        let wet = run("wet", &[]);
        let delta = run("delta", &["--delta"]);
        let dry = run("depth0", &["--depth", "0"]);
        let mut worst = (0.0f32, 0.0f32);
        for i in 0..input.len() {
            worst.0 = worst.0.max((delta[i] + input[i] - wet[i]).abs());
            worst.1 = worst.1.max((dry[i] - input[i]).abs());
        }
        assert!(worst.0 < 1e-6, "{mode}: delta + in − wet up to {}", worst.0);
        assert!(
            worst.1 < 1e-5,
            "{mode}: depth 0 differs from in by {}",
            worst.1
        );
        assert!(
            wet.iter().zip(&input).any(|(a, b)| (a - b).abs() > 1e-2),
            "{mode}: the default output must differ from the input"
        );
    }
}

#[test]
fn every_circuit_is_accepted_and_is_the_one_heard() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(SampleFormat::Float32, 2, 44_100);
    let frames = 44_100;
    let inp = dir.path().join("in.wav");
    write_noise(&inp, s, frames, 11);
    let mut outputs = Vec::new();
    for circuit in ["direct", "interneuron", "baseline", "gain"] {
        for mode in ["channels", "spectral"] {
            let what = format!("--circuit {circuit} --mode {mode}");
            let out = dir.path().join(format!("out-{circuit}-{mode}.wav"));
            let stats = dir.path().join(format!("stats-{circuit}-{mode}.jsonl"));
            // A large initial scale so the whiteners sound different for a while.
            let o = process(&[
                inp.as_os_str(),
                out.as_os_str(),
                "--circuit".as_ref(),
                circuit.as_ref(),
                "--mode".as_ref(),
                mode.as_ref(),
                "--init-scale".as_ref(),
                "30".as_ref(),
                "--stats".as_ref(),
                stats.as_os_str(),
            ]);
            assert!(o.status.success(), "{what}: {}", stderr_of(&o));
            outputs.push((what.clone(), check_output(&what, &out, s, frames, true)));
            // The stats say which whitener is heard.
            for line in std::fs::read_to_string(&stats).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if let Some(sel) = v.get("selected") {
                    assert_eq!(
                        sel.as_bool(),
                        Some(v["circuit"] == circuit),
                        "{what}: 'selected' is wrong in {line}"
                    );
                }
            }
        }
    }
    for i in 0..outputs.len() {
        for j in i + 1..outputs.len() {
            assert_ne!(
                outputs[i].1, outputs[j].1,
                "{} and {} give identical output",
                outputs[i].0, outputs[j].0
            );
        }
    }
}

/// Reads a `--stats` file, checks every line's keys and types, and returns the records per
/// circuit.
fn read_stats(what: &str, path: &Path) -> BTreeMap<String, Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{what}: stats file {}: {e}", path.display()));
    let mut per: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: line {} is not JSON ({e}): {line}", i + 1));
        let num = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("{what}: '{k}' missing or not a number in {line}"))
        };
        let (t, err, lo, hi, db) = (
            num("time_s"),
            num("error"),
            num("eig_min"),
            num("eig_max"),
            num("input_rms_db"),
        );
        assert!(t > 0.0, "{what}: time_s {t} in {line}");
        assert!(err.is_finite() && err >= 0.0, "{what}: error in {line}");
        assert!(
            lo > 0.0 && hi >= lo && hi.is_finite(),
            "{what}: eigenvalues in {line}"
        );
        assert!(db.is_finite(), "{what}: input_rms_db in {line}");
        assert!(
            v.get("change").map(Value::is_boolean) == Some(true),
            "{what}: 'change' missing or not a bool in {line}"
        );
        let c = v
            .get("circuit")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{what}: 'circuit' missing or not a string in {line}"));
        assert!(
            ["direct", "interneuron", "baseline", "gain"].contains(&c),
            "{what}: unknown circuit in {line}"
        );
        per.entry(c.to_string()).or_default().push(v);
    }
    per
}

#[test]
fn stats_are_json_lines_every_10_ms_for_each_whitener() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, rate, channels, latency) in [
        ("channels", 44_100u32, 2u16, 0usize),
        ("channels", 22_050, 1, 0),
        ("spectral", 44_100, 2, 1024),
        ("spectral", 96_000, 5, 1024),
    ] {
        let what = format!("--stats, --mode {mode}, {channels} ch, {rate} Hz");
        let frames = rate as usize * 3 / 2 + 123;
        let s = spec(SampleFormat::Int16, channels, rate);
        let inp = dir.path().join(format!("in-{mode}-{rate}.wav"));
        let out = dir.path().join(format!("out-{mode}-{rate}.wav"));
        let stats = dir.path().join(format!("stats-{mode}-{rate}.jsonl"));
        write_noise(&inp, s, frames, rate as u64);
        let o = process(&[
            inp.as_os_str(),
            out.as_os_str(),
            "--mode".as_ref(),
            mode.as_ref(),
            "--stats".as_ref(),
            stats.as_os_str(),
        ]);
        assert!(o.status.success(), "{what}: {}", stderr_of(&o));
        check_output(&what, &out, s, frames, true);
        let per = read_stats(&what, &stats);
        assert_eq!(
            per.keys().collect::<Vec<_>>(),
            ["baseline", "direct", "gain", "interneuron"],
            "{what}: records for all four whiteners"
        );
        let interval = (0.01 * rate as f64).round() as usize;
        let (lo, hi) = (frames / interval, (frames + latency) / interval + 1);
        for (c, recs) in &per {
            assert!(
                (lo..=hi).contains(&recs.len()),
                "{what}: {} records for {c}, expected {lo}..={hi} (one per ~10 ms of {:.3} s)",
                recs.len(),
                frames as f64 / rate as f64
            );
            let times: Vec<f64> = recs.iter().map(|r| r["time_s"].as_f64().unwrap()).collect();
            assert!(
                (times[0] - 0.01).abs() < 5e-4,
                "{what}: first record at {} s",
                times[0]
            );
            for w in times.windows(2) {
                assert!(
                    (w[1] - w[0] - 0.01).abs() < 5e-4,
                    "{what}: records of {c} at {} and {} s are not ~10 ms apart",
                    w[0],
                    w[1]
                );
            }
        }
        // The level of noise at ~0.12 RMS is about −18 dBFS.
        let levels: Vec<f64> = per["direct"]
            .iter()
            .take(frames / interval - 1)
            .map(|r| r["input_rms_db"].as_f64().unwrap())
            .collect();
        assert!(
            levels.iter().all(|l| (-25.0..-12.0).contains(l)),
            "{what}: implausible input levels {levels:?}"
        );
        // No stats temporary file left.
        let names: Vec<String> = snapshot(dir.path()).into_keys().collect();
        assert!(
            names.iter().all(|n| !n.contains("tmp")),
            "{what}: stray files {names:?}"
        );
    }
}

#[test]
fn raw_mode_writes_float_and_runs_the_paper_update_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        SampleFormat::Int16,
        SampleFormat::Int24,
        SampleFormat::Float32,
    ] {
        for channels in [1u16, 2, 16] {
            let what = format!("--raw --eta 0.001, {format}, {channels} ch");
            let frames = 20_003;
            let s = spec(format, channels, 44_100);
            let inp = dir.path().join(format!("in-{format}-{channels}.wav"));
            let out = dir.path().join(format!("out-{format}-{channels}.wav"));
            write_noise(&inp, s, frames, channels as u64);
            let o = process(&[
                inp.as_os_str(),
                out.as_os_str(),
                "--raw".as_ref(),
                "--eta".as_ref(),
                "0.001".as_ref(),
            ]);
            assert!(o.status.success(), "{what}: {}", stderr_of(&o));
            let float = WavSpec {
                format: SampleFormat::Float32,
                ..s
            };
            // Raw responses are unscaled: no ±1 bound.
            check_output(&what, &out, float, frames, false);
        }
    }

    // Mono, so the §2 algorithm is scalar and can be recomputed here independently:
    // direct m ← m + η(r² − 1), r = x/m; interneuron (k = 1, Q = [1]) w ← w + η(r·z − w),
    // r = x/w², z = w·r; m₀ = s, w₀ = √s.
    let s = spec(SampleFormat::Int16, 1, 44_100);
    let inp = dir.path().join("mono.wav");
    let x = write_noise(&inp, s, 30_000, 99);
    let (eta, scale) = (0.002f64, 4.0f64);
    // The gain circuit at n = 1: its pairs frame is w = 1, M = α + g, so the gain update
    // Δg = η(z² − 1) with z = r is the direct circuit's ΔM = η(r² − 1).
    for circuit in ["direct", "interneuron", "gain"] {
        let out = dir.path().join(format!("mono-{circuit}.wav"));
        let o = process(&[
            inp.as_os_str(),
            out.as_os_str(),
            "--raw".as_ref(),
            "--eta".as_ref(),
            eta.to_string().as_ref(),
            "--init-scale".as_ref(),
            scale.to_string().as_ref(),
            "--circuit".as_ref(),
            circuit.as_ref(),
        ]);
        assert!(o.status.success(), "--raw {circuit}: {}", stderr_of(&o));
        let (_, y) = read_wav(&out).unwrap();
        let mut state = if circuit != "interneuron" {
            scale
        } else {
            scale.sqrt()
        };
        for (t, (&xt, &yt)) in x.iter().zip(&y).enumerate() {
            let xt = xt as f64;
            let r = if circuit != "interneuron" {
                let r = xt / state;
                state += eta * (r * r - 1.0);
                r
            } else {
                let r = xt / (state * state);
                let z = state * r;
                state += eta * (r * z - state);
                r
            };
            assert!(
                (yt as f64 - r).abs() <= 1e-6 * r.abs().max(1e-3),
                "--raw {circuit}: sample {t}: got {yt}, the §2 algorithm gives {r}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Non-finite samples
// ---------------------------------------------------------------------------------------------

#[test]
fn non_finite_samples_are_zeroed_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let channels = 3usize;
    let frames = 40_000;
    let mut data = noise(channels, frames, 5);
    // 7 NaN, 4 +∞, 2 −∞ in isolated places, across channels...
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut positions = std::collections::BTreeSet::new();
    let dropout = 20_000 * channels..22_000 * channels;
    while positions.len() < 13 {
        let p = rng.random_range(0..data.len());
        if !dropout.contains(&p) {
            positions.insert(p);
        }
    }
    for (i, &p) in positions.iter().enumerate() {
        data[p] = match i {
            0..=6 => f32::NAN,
            7..=10 => f32::INFINITY,
            _ => f32::NEG_INFINITY,
        };
    }
    // ...and a run of 2000 frames of NaN in every channel (a dropout).
    for v in &mut data[dropout] {
        *v = f32::NAN;
    }
    let expected = 13 + 2000 * channels;
    let s = spec(SampleFormat::Float32, channels as u16, 48_000);
    let inp = dir.path().join("nan.wav");
    write_wav(&inp, s, &data).unwrap();
    let cases: [(&str, &[&str], bool); 4] = [
        ("channels", &[], true),
        ("spectral", &["--mode", "spectral"], true),
        ("direct", &["--circuit", "direct"], true),
        ("raw", &["--raw", "--eta", "0.001"], false),
    ];
    for (name, extra, bounded) in cases {
        let what = format!("non-finite input, {name}");
        let out = dir.path().join(format!("out-{name}.wav"));
        let mut args: Vec<&OsStr> = vec![inp.as_os_str(), out.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        let o = process(&args);
        let stderr = stderr_of(&o);
        assert!(o.status.success(), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("{expected} non-finite input samples treated as 0")),
            "{what}: expected the count {expected} in stderr: {stderr}"
        );
        check_output(&what, &out, s, frames, bounded);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input files
// ---------------------------------------------------------------------------------------------

/// Runs `whiten process IN OUT` (with `--stats` into OUT's directory) on a bad input and
/// checks the failure is clean and that OUT's directory is exactly as before.
fn check_bad_input(root: &Path, what: &str, input: &Path, any: &[&[&str]]) -> String {
    let (dir, old) = out_dir_with_old_file(root);
    let before = snapshot(&dir);
    let stats = dir.join("stats.jsonl");
    let mut stderrs = String::new();
    // OUT exists (must be preserved), and OUT does not exist (must not be created).
    for out in [old.clone(), dir.join("new.wav")] {
        let o = process(&[
            input.as_os_str(),
            out.as_os_str(),
            "--stats".as_ref(),
            stats.as_os_str(),
        ]);
        let input_s = input.display().to_string();
        let stderr = assert_clean_failure(what, &o, &[&input_s], any);
        assert_eq!(
            snapshot(&dir),
            before,
            "{what}: OUT's directory changed (clobbered OUT, created file or temporary left)"
        );
        stderrs = stderr;
    }
    std::fs::remove_dir_all(&dir).unwrap();
    stderrs
}

#[test]
fn corrupt_headers_are_refused_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let random: Vec<u8> = (0..5000).map(|_| rng.random()).collect();
    let garbage = root.path().join("garbage.wav");
    std::fs::write(&garbage, &random).unwrap();
    check_bad_input(
        root.path(),
        "random bytes",
        &garbage,
        &[&["not a WAV file"]],
    );

    let txt = root.path().join("notes.txt");
    std::fs::write(&txt, "These are my notes, not audio.\n".repeat(20)).unwrap();
    let renamed = root.path().join("notes.wav");
    std::fs::rename(&txt, &renamed).unwrap();
    check_bad_input(root.path(), "text file", &renamed, &[&["not a WAV file"]]);

    // A real WAV file cut inside its header.
    let good = root.path().join("good.wav");
    write_wav(
        &good,
        spec(SampleFormat::Int16, 2, 44_100),
        &noise(2, 1000, 1),
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = root.path().join("cut-header.wav");
    std::fs::write(&cut, &bytes[..30]).unwrap();
    check_bad_input(
        root.path(),
        "header cut short",
        &cut,
        &[&["corrupt or incomplete"]],
    );
}

#[test]
fn truncated_data_is_refused_cleanly() {
    let root = tempfile::tempdir().unwrap();
    for format in FORMATS {
        let s = spec(format, 2, 44_100);
        let good = root.path().join("good.wav");
        write_wav(&good, s, &noise(2, 10_000, 2)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        // Cut off a bit more than a frame, then one partial frame only.
        for cut in [s.bytes_per_frame() + 1, 1] {
            let trunc = root.path().join(format!("trunc-{format}-{cut}.wav"));
            std::fs::write(&trunc, &bytes[..bytes.len() - cut]).unwrap();
            check_bad_input(
                root.path(),
                &format!("{format} minus {cut} bytes"),
                &trunc,
                &[&["truncated"]],
            );
        }
    }
}

#[test]
fn write_failure_mid_processing_leaves_no_partial_output() {
    // The child may write at most 256 KiB per file (RLIMIT_FSIZE, with SIGXFSZ ignored so the
    // write fails with EFBIG instead of killing it): OUT's temporary file fails after it has
    // received audio. OUT must be left as it was and the temporary file removed.
    use std::os::unix::process::CommandExt;
    const LIMIT: libc::rlim_t = 256 * 1024;
    let root = tempfile::tempdir().unwrap();
    let s = spec(SampleFormat::Int16, 2, 44_100);
    let inp = root.path().join("long.wav");
    write_wav(&inp, s, &noise(2, 200_000, 4)).unwrap();
    assert!(std::fs::metadata(&inp).unwrap().len() > 3 * LIMIT);
    // Raw mode too: every path writes OUT through the same writer thread.
    let cases: [(&[&str], bool); 4] = [
        (&["--mode", "channels"], false),
        (&["--mode", "spectral"], false),
        (&["--mode", "channels"], true),
        (&["--raw", "--circuit", "interneuron"], false),
    ];
    for (mode, with_stats) in cases {
        let what = format!("write failure, {}, stats: {with_stats}", mode.join(" "));
        let (dir, old) = out_dir_with_old_file(root.path());
        let before = snapshot(&dir);
        for out in [old.clone(), dir.join("new.wav")] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_whiten"));
            cmd.arg("process").arg(&inp).arg(&out).args(mode);
            if with_stats {
                cmd.arg("--stats").arg(dir.join("stats.jsonl"));
            }
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit {
                        rlim_cur: LIMIT,
                        rlim_max: LIMIT,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let o = cmd.stdin(Stdio::null()).output().unwrap();
            let out_s = out.display().to_string();
            let stats_s = dir.join("stats.jsonl").display().to_string();
            let named: &[&str] = if with_stats {
                &[&out_s, &stats_s]
            } else {
                &[&out_s]
            };
            assert_clean_failure(&what, &o, &[], &[named, &["too large", "File too large"]]);
            assert_eq!(
                snapshot(&dir),
                before,
                "{what}: OUT's directory changed (clobbered OUT, or a partial/temporary file left)"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn wav_piped_through_dev_stdin_is_processed() {
    let root = tempfile::tempdir().unwrap();
    let s = spec(SampleFormat::Int16, 2, 44_100);
    let good = root.path().join("good.wav");
    write_wav(&good, s, &noise(2, 50_000, 8)).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let out = root.path().join("out.wav");
    let o = whiten_from_stdin(bytes, &out, &[]);
    assert!(o.status.success(), "piped input: {}", stderr_of(&o));
    check_output("piped input", &out, s, 50_000, true);
}

#[test]
fn truncated_stream_found_mid_processing_leaves_no_partial_output() {
    // Through a pipe the file size is unknown, so the truncation is only found after OUT's
    // temporary file has received audio: it must be removed, and OUT left as it was.
    let root = tempfile::tempdir().unwrap();
    let s = spec(SampleFormat::Int16, 2, 44_100);
    let good = root.path().join("good.wav");
    write_wav(&good, s, &noise(2, 100_000, 3)).unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    bytes.truncate(bytes.len() - 50_000);
    for mode in ["channels", "spectral"] {
        let what = format!("truncated stream on stdin, --mode {mode}");
        let (dir, old) = out_dir_with_old_file(root.path());
        let before = snapshot(&dir);
        let stats = dir.join("stats.jsonl");
        let args = [
            "--mode".as_ref(),
            mode.as_ref(),
            "--stats".as_ref(),
            stats.as_os_str(),
        ];
        let o = whiten_from_stdin(bytes.clone(), &old, &args);
        assert_clean_failure(&what, &o, &["/dev/stdin", "truncated"], &[]);
        assert_eq!(
            snapshot(&dir),
            before,
            "{what}: OUT's directory changed (clobbered OUT, or a temporary file left)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn unsupported_encodings_are_refused_cleanly() {
    let root = tempfile::tempdir().unwrap();
    // 8-bit PCM, written by hound.
    let pcm8 = root.path().join("pcm8.wav");
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&pcm8, spec).unwrap();
        for i in 0..4000i32 {
            w.write_sample(((i * 37) % 200 - 100) as i8).unwrap();
        }
        w.finalize().unwrap();
    }
    check_bad_input(
        root.path(),
        "8-bit PCM",
        &pcm8,
        &[&["8-bit"], &["supported"]],
    );

    // 64-bit float, header written by hand.
    let data: Vec<u8> = (0..2000)
        .flat_map(|i| (0.1 * (i as f64 * 0.01).sin()).to_le_bytes())
        .collect();
    let f64wav = root.path().join("float64.wav");
    std::fs::write(&f64wav, handmade_wav(3, 1, 44_100, 64, &data)).unwrap();
    check_bad_input(
        root.path(),
        "64-bit float",
        &f64wav,
        &[&["64-bit float"], &["supported"]],
    );

    // 17 channels of otherwise fine 16-bit PCM.
    let data: Vec<u8> = (0..17 * 1000)
        .flat_map(|i| ((i % 300) as i16 * 10).to_le_bytes())
        .collect();
    let c17 = root.path().join("seventeen.wav");
    std::fs::write(&c17, handmade_wav(1, 17, 44_100, 16, &data)).unwrap();
    check_bad_input(
        root.path(),
        "17 channels",
        &c17,
        &[&["17 channels"], &["16 channels"]],
    );
}

#[test]
fn empty_and_missing_inputs_are_refused_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    check_bad_input(root.path(), "zero-length file", &empty, &[&["empty"]]);

    // A valid header with a data chunk of 0 frames.
    let no_frames = root.path().join("no-frames.wav");
    std::fs::write(&no_frames, handmade_wav(1, 2, 44_100, 16, &[])).unwrap();
    check_bad_input(root.path(), "0 frames", &no_frames, &[&["no audio"]]);

    let missing = root.path().join("does-not-exist.wav");
    check_bad_input(
        root.path(),
        "nonexistent input",
        &missing,
        &[&["No such file", "not found", "does not exist"]],
    );
}

#[test]
fn error_messages_do_not_repeat_their_cause() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("does-not-exist.wav");
    let out = root.path().join("out.wav");
    let o = process(&[&missing, &out]);
    let stderr = stderr_of(&o);
    assert!(!o.status.success());
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the cause should be said once: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad arguments
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_arguments_are_refused_without_touching_out() {
    let root = tempfile::tempdir().unwrap();
    let stereo = root.path().join("stereo.wav");
    write_wav(
        &stereo,
        spec(SampleFormat::Int16, 2, 44_100),
        &noise(2, 20_000, 9),
    )
    .unwrap();
    // (arguments, every one of these in stderr, one of each group in stderr)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a [&'a str]]);
    let cases: &[Case] = &[
        (&["--tau-ms", "0"], &[], &[&["--tau-ms", "adaptation time"]]),
        (
            &["--tau-ms", "-5"],
            &[],
            &[&["--tau-ms", "adaptation time"]],
        ),
        (
            &["--init-scale", "0"],
            &[],
            &[&["--init-scale", "init scale"]],
        ),
        (&["--dry-wet", "2"], &[], &[&["--dry-wet", "dry/wet"]]),
        (
            &["--mode", "spectral", "--fft-size", "1000"],
            &["1000"],
            &[&["--fft-size", "FFT size"], &["power of two"]],
        ),
        (
            &["--interneurons", "1"],
            &["--interneurons"],
            &[&["k >= n", "channels"]],
        ),
        (
            &["--raw", "--mode", "spectral"],
            &["--raw"],
            &[&["--mode channels"]],
        ),
        (
            &["--raw", "--circuit", "baseline"],
            &["--raw"],
            &[&["--circuit direct", "direct or interneuron"]],
        ),
        (&["--eta", "2"], &[], &[&["--eta", "eta"], &["(0, 1)"]]),
        (
            &["--raw", "--eta", "2"],
            &[],
            &[&["--eta", "eta"], &["(0, 1)"]],
        ),
        (&["--eta", "0"], &[], &[&["--eta", "eta"]]),
        (
            &["--tau-ms", "nan"],
            &[],
            &[&["--tau-ms", "adaptation time"]],
        ),
        (
            &["--init-scale", "-1"],
            &[],
            &[&["--init-scale", "init scale"]],
        ),
        (&["--depth", "1.5"], &["--depth"], &[&["depth"]]),
        (
            &["--mode", "spectral", "--tilt", "9"],
            &["--tilt"],
            &[&["tilt"]],
        ),
        (&["--tilt", "-3"], &["--tilt"], &[&["--mode spectral"]]),
        (
            &["--low-limit", "500"],
            &["--low-limit"],
            &[&["--mode spectral"]],
        ),
        (
            &["--mode", "spectral", "--high-limit", "30000"],
            &["--high-limit"],
            &[&["high limit"]],
        ),
        (&["--raw", "--depth", "0.5"], &["--raw"], &[&["--depth"]]),
    ];
    for (args, all, any) in cases {
        let what = format!("process stereo.wav OUT {}", args.join(" "));
        let (dir, old) = out_dir_with_old_file(root.path());
        let before = snapshot(&dir);
        let stats = dir.join("stats.jsonl");
        for out in [old.clone(), dir.join("new.wav")] {
            let mut full: Vec<&OsStr> = vec![stereo.as_os_str(), out.as_os_str()];
            full.extend(args.iter().map(OsStr::new));
            let o = process(&full);
            assert_clean_failure(&what, &o, all, any);
            assert_eq!(
                snapshot(&dir),
                before,
                "{what}: OUT's directory changed (clobbered or created OUT, or a temporary left)"
            );
            // Also with --stats (when the mode allows it): no stats file either.
            if !args.contains(&"--raw") {
                full.extend([OsStr::new("--stats"), stats.as_os_str()]);
                let o = process(&full);
                assert_clean_failure(&format!("{what} --stats"), &o, all, any);
                assert_eq!(
                    snapshot(&dir),
                    before,
                    "{what} --stats: OUT's directory changed"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// `whiten process --stats` prints the monitor's readaptation table, and it is the table the
/// monitor makes of the stats file it wrote — the numbers the editor and `whiten live` show for
/// the same records.
#[test]
fn process_with_stats_prints_the_monitors_readaptation_table() {
    use interneuron_whitening::engine::StatsRecord;
    use interneuron_whitening::monitor::{format_table, monitor_table};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scene.wav");
    // The first 20 s of the demo scene: three changes of mixing and level.
    let scene = interneuron_whitening::demo::scene(4);
    let spec = WavSpec {
        sample_rate: 48_000,
        channels: 2,
        format: SampleFormat::Float32,
    };
    write_wav(&input, spec, &scene.samples[..2 * 20 * 48_000]).unwrap();
    let output = dir.path().join("out.wav");
    let stats = dir.path().join("stats.jsonl");
    let out = process(&[
        input.as_os_str(),
        output.as_os_str(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let records: Vec<StatsRecord> = std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let table = monitor_table(&records);
    assert_eq!(table.len(), 3, "{table:?}");
    assert!(table
        .iter()
        .all(|r| r.readaptation_s.iter().any(Option::is_some)));
    let text = format_table(&table, None);
    assert!(
        stderr_of(&out).contains(&text),
        "stderr:\n{}\nexpected:\n{text}",
        stderr_of(&out)
    );
}
