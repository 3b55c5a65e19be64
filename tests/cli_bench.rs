//! `whiten bench` through the built binary: repeated runs combine to the median real-time
//! factor of the runs it reports, and absurd options get a clear error. (What the bench
//! measures is recorded in BENCHMARKS.md; speed is never asserted here.)

use std::process::Command;

fn whiten(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_whiten"))
        .args(args)
        .output()
        .expect("the whiten binary runs")
}

#[test]
fn repeated_runs_report_their_median_and_every_run() {
    let out = whiten(&[
        "bench",
        "--seconds",
        "0.2",
        "--only",
        "channels:2",
        "--input",
        "steady",
        "--block",
        "512",
        "--repeat",
        "3",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rows = v["results"].as_array().expect("results");
    assert_eq!(rows.len(), 1, "one case selected");
    let row = &rows[0];
    assert_eq!(row["runs"], 3);
    let mut runs: Vec<f64> = row["realtime_factor_runs"]
        .as_array()
        .expect("the runs' factors")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.is_finite() && *r > 0.0), "{runs:?}");
    runs.sort_by(f64::total_cmp);
    assert_eq!(row["realtime_factor"].as_f64(), Some(runs[1]), "the median");
    // 0.2 s of 512-sample blocks at 48 kHz, rounded up to whole blocks, in each of 3 runs.
    let one = (0.2f64 * 48_000.0 / 512.0).ceil() * 512.0 / 48_000.0;
    let audio = row["audio_s"].as_f64().expect("audio_s");
    assert!((audio - 3.0 * one).abs() < 1e-9, "{audio} s of audio");
    let worst = row["worst_block_fraction"].as_f64().expect("worst block");
    let p999 = row["p999_block_fraction"].as_f64().expect("p99.9");
    assert!(
        worst > 0.0 && p999 > 0.0 && p999 <= worst,
        "{p999} ≤ {worst}"
    );
}

#[test]
fn absurd_options_are_refused_with_a_reason() {
    for (args, reason) in [
        (vec!["bench", "--repeat", "0"], "--repeat"),
        (vec!["bench", "--seconds", "0"], "--seconds"),
        (vec!["bench", "--only", "channels:3"], "no such case"),
        (vec!["bench", "--input", "loud"], "--input"),
    ] {
        let out = whiten(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}
