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
