//! `whiten reproduce` per docs/DESIGN.md §12.1: JSON on stdout, CSV/SVG/JSON files with --out.

use serde_json::Value;
use std::process::Command;

fn whiten(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_whiten"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "whiten {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The scalar recursions of docs/DESIGN.md §2.5 for C = [1], counted here.
fn recursion(direct: bool, s: f64) -> u64 {
    let (eta, tol) = (0.01, 0.01);
    let mut m = s;
    let mut t = 0;
    while (1.0 / (m * m) - 1.0).abs() >= tol {
        let d = 1.0 / (m * m) - 1.0;
        m = if direct {
            m + eta * d
        } else {
            m * (1.0 + eta * d).powi(2)
        };
        t += 1;
    }
    t
}

#[test]
fn json_counts_follow_the_recursions_exactly() {
    let out = whiten(&[
        "reproduce",
        "--mean-field",
        "--json",
        "--dim",
        "1",
        "--eta",
        "0.01",
        "--tol",
        "0.01",
        "--scales",
        "0.1,0.5,2,10,100,1000",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 12);
    for r in runs {
        let circuit = r["circuit"].as_str().unwrap();
        assert!(circuit == "direct" || circuit == "interneuron");
        let s = r["scale"].as_f64().unwrap();
        let t = r["iterations"].as_u64().expect("converged");
        assert_eq!(t, recursion(circuit == "direct", s), "{circuit} s = {s}");
    }
    assert!(
        v["max_iterations"].as_u64().is_some(),
        "the cap is reported"
    );
}

#[test]
fn non_converged_runs_are_null() {
    let out = whiten(&[
        "reproduce",
        "--mean-field",
        "--json",
        "--scales",
        "1000",
        "--max-iters",
        "50",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v["runs"].as_array().unwrap() {
        assert!(r["iterations"].is_null(), "{r}");
    }
    assert_eq!(v["not_converged"].as_u64(), Some(2));
    assert_eq!(v["max_iterations"].as_u64(), Some(50));
}

#[test]
fn out_dir_gets_csv_svg_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("fig");
    whiten(&[
        "reproduce",
        "--mean-field",
        "--dim",
        "2",
        "--spectrum",
        "0.5,2",
        "--scales",
        "1,10,100",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("circuit,scale,iterations"));
    assert_eq!(lines.len(), 1 + 6);
    let svg = std::fs::read_to_string(out_dir.join("convergence.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for needle in ["direct", "interneuron", "theory", "ln s"] {
        assert!(svg.contains(needle), "figure lacks '{needle}'");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 6);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

/// The default sweep is the paper's two circuits; the gain circuit appears only when asked for.
#[test]
fn default_circuits_are_the_papers_two() {
    let out = whiten(&["reproduce", "--mean-field", "--json", "--scales", "1,10"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["circuits"], serde_json::json!(["direct", "interneuron"]));
    assert!(v["gain"].is_null() && v["fits"]["gain"].is_null());
    for r in v["runs"].as_array().unwrap() {
        assert!(r.get("lower_bound_iterations").is_none(), "{r}");
    }
}

/// With one neuron the gain circuit is the direct one (`M = 1 + g`, `g ← g + η(r² − 1)`): its
/// counts are the direct recursion's, counted here. The lower bound of docs/DESIGN.md §2.9,
/// recomputed here, is never above a count.
#[test]
fn gain_circuit_in_one_dimension_follows_the_direct_recursion() {
    let out = whiten(&[
        "reproduce",
        "--mean-field",
        "--json",
        "--circuits",
        "gain,direct",
        "--dim",
        "1",
        "--eta",
        "0.01",
        "--tol",
        "0.01",
        "--scales",
        "0.1,0.5,2,10,100,1000",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["circuits"], serde_json::json!(["gain", "direct"]));
    assert_eq!(v["gain"]["interneurons"].as_u64(), Some(1));
    let gain: Vec<&Value> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["circuit"] == "gain")
        .collect();
    assert_eq!(gain.len(), 6);
    for r in gain {
        let s = r["scale"].as_f64().unwrap();
        let t = r["iterations"].as_u64().expect("converged");
        assert_eq!(t, recursion(true, s), "gain s = {s}");
        assert!(r["theory_iterations"].is_null(), "no closed-form theory");
        // Tr M falls by at most η per step; E < tol needs M ≤ 1/√(1 − tol).
        let bound = ((s - 1.0 / (1.0f64 - 0.01).sqrt()) / 0.01).max(0.0);
        let reported = r["lower_bound_iterations"].as_f64().unwrap();
        assert!(
            (reported - bound).abs() < 1e-9 * bound.max(1.0),
            "{reported} vs {bound}"
        );
        assert!(
            bound <= t as f64,
            "s = {s}: bound {bound} above the count {t}"
        );
    }
}

/// `--circuits direct,interneuron,gain` at n = 2: gain rows in JSON and CSV (with the bound and
/// asymptote columns), every gain count at or above its lower bound (recomputed here:
/// `(n s − Tr C^{1/2}/√(1 − tol√n)) / (k η)`, k = 3), a linear fit whose slope is the
/// asymptote's `2/η` (docs/DESIGN.md §2.9) within 1 %, and a figure with a gain panel in its
/// colour.
#[test]
fn gain_circuit_joins_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("fig");
    let (eta, tol, spectrum) = (0.01, 0.01, [0.5, 2.0]);
    let out = whiten(&[
        "reproduce",
        "--mean-field",
        "--json",
        "--circuits",
        "direct,interneuron,gain",
        "--spectrum",
        "0.5,2",
        "--scales",
        "1,10,100,300,1000",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 15);
    assert_eq!(v["gain"]["interneurons"].as_u64(), Some(3));
    assert_eq!(v["gain"]["frame"], "pairs");
    assert_eq!(v["gain"]["eta_g"].as_f64(), Some(eta));
    let trace_target: f64 = spectrum.iter().map(|c: &f64| c.sqrt()).sum();
    let mut gain_rows = 0;
    for r in runs.iter().filter(|r| r["circuit"] == "gain") {
        gain_rows += 1;
        let s = r["scale"].as_f64().unwrap();
        let t = r["iterations"].as_u64().expect("converged") as f64;
        let bound =
            ((2.0 * s - trace_target / (1.0 - tol * 2f64.sqrt()).sqrt()) / (3.0 * eta)).max(0.0);
        let reported = r["lower_bound_iterations"].as_f64().unwrap();
        assert!(
            (reported - bound).abs() < 1e-9 * bound.max(1.0),
            "{reported} vs {bound}"
        );
        assert!(bound <= t, "s = {s}: bound {bound} above the count {t}");
        assert_eq!(r["asymptotic_iterations"].as_f64(), Some(2.0 * s / eta));
    }
    assert_eq!(gain_rows, 5);
    let fit = &v["fits"]["gain"];
    assert_eq!(fit["law"], "linear");
    let slope = fit["slope"].as_f64().unwrap();
    assert!(
        (slope * eta / 2.0 - 1.0).abs() < 0.01,
        "slope {slope} per unit s, asymptote {}",
        2.0 / eta
    );
    assert!(fit["r_squared"].as_f64().unwrap() > 0.9999);

    let csv = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "circuit,scale,iterations,theory_iterations,final_error,diverged,\
         lower_bound_iterations,asymptotic_iterations"
    );
    assert_eq!(lines.len(), 1 + 15);
    assert_eq!(lines.iter().filter(|l| l.starts_with("gain,")).count(), 5);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report, v, "report.json is the --json object");
    let svg = std::fs::read_to_string(out_dir.join("convergence.svg")).unwrap();
    for needle in [
        "(d) gain",
        "gain (measured)",
        "lower bound",
        "asymptote",
        "#D55E00",
    ] {
        assert!(svg.contains(needle), "figure lacks '{needle}'");
    }
}

/// `whiten reproduce contexts` is the library's experiment (`reproduce::contexts`, the same
/// numbers), writes JSON, CSV and SVG, and shows the effect against what is known without it:
/// gains alone (k = 2 < 3) never whiten both contexts, so no visit without plasticity
/// readapts; with it the first visit cannot either (the frame is random), and the last ten
/// readapt in under a tenth of a visit (tests/gain_circuit.rs measured ≥ 13.6× faster), with
/// every learned synapse along a column of V.
#[test]
fn contexts_experiment_writes_what_the_library_measures() {
    use interneuron_whitening::reproduce::contexts::{self, ContextsConfig};
    use interneuron_whitening::reproduce::Mode;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("ctx");
    let out = whiten(&[
        "reproduce",
        "contexts",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = ContextsConfig::new(Mode::MeanField);
    let library = contexts::run(&config, |_, _| {}).unwrap();
    // The same text: every number as the library computed it.
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.trim_end(), serde_json::to_string(&library).unwrap());
    assert_eq!(v["mode"], "mean-field");
    let steps = v["visit_steps"].as_u64().unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * config.seeds.len());
    for run in runs {
        let visits = run["visits"].as_array().unwrap();
        assert_eq!(visits.len(), 40);
        let times: Vec<Option<u64>> = visits
            .iter()
            .map(|v| v["readaptation_steps"].as_u64())
            .collect();
        for (i, visit) in visits.iter().enumerate() {
            assert_eq!(visit["context"], ["A", "B"][i % 2]);
            assert!(visit["end_error"].as_f64().unwrap() > 0.0);
        }
        if run["plastic"] == true {
            assert!(times[0].is_none(), "{times:?}");
            assert!(
                times[30..]
                    .iter()
                    .all(|t| t.is_some_and(|t| 10 * t < steps)),
                "{times:?}"
            );
            for a in run["alignment"].as_array().unwrap() {
                assert!(a["abs_cos"].as_f64().unwrap() > 0.9999, "{a}");
            }
        } else {
            assert!(times.iter().all(Option::is_none), "{times:?}");
        }
    }

    let csv = std::fs::read_to_string(out_dir.join("contexts.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seed,plastic,visit,context,readaptation_steps,end_error"
    );
    assert_eq!(lines.len(), 1 + 6 * 40);
    // Row by row the library's visits (compared as numbers: the CSV is Rust's shortest text).
    let rows = library
        .runs
        .iter()
        .flat_map(|run| run.visits.iter().map(move |v| (run, v)));
    for (line, (run, visit)) in lines[1..].iter().zip(rows) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[0], run.seed.to_string());
        assert_eq!(f[1], run.plastic.to_string());
        assert_eq!(f[3], visit.context);
        assert_eq!(
            f[4],
            visit
                .readaptation_steps
                .map(|t| t.to_string())
                .unwrap_or_default()
        );
        assert_eq!(f[5].parse::<f64>().unwrap(), visit.end_error);
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("contexts.json")).unwrap())
            .unwrap();
    assert_eq!(json, v);
    let svg = std::fs::read_to_string(out_dir.join("contexts.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for needle in [
        "plasticity on",
        "plasticity off",
        "censored",
        "#D55E00",
        "seed 3",
    ] {
        assert!(svg.contains(needle), "figure lacks '{needle}'");
    }
}

/// Online, on seeded samples: again the library's numbers, and without plasticity no visit
/// readapts.
#[test]
fn contexts_experiment_runs_online() {
    use interneuron_whitening::reproduce::contexts::{self, ContextsConfig};
    use interneuron_whitening::reproduce::Mode;
    let out = whiten(&[
        "reproduce",
        "contexts",
        "--online",
        "--json",
        "--visits",
        "6",
        "--seeds",
        "4,5",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut config = ContextsConfig::new(Mode::Online);
    config.visits = 6;
    config.seeds = vec![4, 5];
    let library = contexts::run(&config, |_, _| {}).unwrap();
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.trim_end(), serde_json::to_string(&library).unwrap());
    assert_eq!(v["mode"], "online");
    for run in v["runs"].as_array().unwrap() {
        if run["plastic"] == false {
            for visit in run["visits"].as_array().unwrap() {
                assert!(visit["readaptation_steps"].is_null(), "{visit}");
            }
        }
    }
}

/// A reader that goes away (`whiten reproduce | head`) ends the process quietly, by SIGPIPE as
/// other Unix tools end, instead of a panic on the broken pipe. The pipe's read end is closed
/// before the child has finished computing, so its first write meets a broken pipe.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_whiten"))
        .args([
            "reproduce",
            "--mean-field",
            "--dim",
            "3",
            "--scales",
            "1,10,100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "status {:?}, stderr: {stderr}",
        out.status
    );
}
