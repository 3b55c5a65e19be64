//! Bad arguments give clear errors, never panics — in the library and at the command line.

use interneuron_whitening::circuits::{
    validate_covariance, whitening_error, Circuit, CircuitError, DirectCircuit, InterneuronBasis,
    InterneuronCircuit, Solver,
};
use interneuron_whitening::reproduce::{run, Mode, ReproduceConfig};
use interneuron_whitening::whitener::WhitenerKind;
use nalgebra::DMatrix;
use std::process::Command;

#[test]
fn circuit_constructors_reject_bad_parameters() {
    let sm = Solver::default();
    let dct = InterneuronBasis::Dct;
    assert_eq!(
        InterneuronCircuit::<f64>::new(3, 2, 0.1, 1.0, dct, sm).unwrap_err(),
        CircuitError::TooFewInterneurons { n: 3, k: 2 }
    );
    assert_eq!(
        DirectCircuit::<f64>::new(0, 0.1, 1.0).unwrap_err(),
        CircuitError::ZeroDimension
    );
    for eta in [0.0, -0.1, 1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            DirectCircuit::<f64>::new(2, eta, 1.0),
            Err(CircuitError::InvalidLearningRate(_))
        ));
        assert!(matches!(
            InterneuronCircuit::<f64>::new(2, 2, eta, 1.0, dct, sm),
            Err(CircuitError::InvalidLearningRate(_))
        ));
    }
    for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            DirectCircuit::<f64>::new(2, 0.1, s),
            Err(CircuitError::InvalidScale(_))
        ));
    }
    let mut c = DirectCircuit::<f64>::new(2, 0.1, 1.0).unwrap();
    assert!(c.set_learning_rate(2.0).is_err());
    assert_eq!(
        c.learning_rate(),
        0.1,
        "a rejected η leaves the old one in place"
    );
    assert!(matches!(
        c.mean_field_step(&DMatrix::identity(3, 3)),
        Err(CircuitError::DimensionMismatch { .. })
    ));
}

#[test]
fn covariances_must_be_finite_symmetric_positive_definite() {
    let ok = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
    assert!(validate_covariance(&ok).is_ok());
    let cases = [
        DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, f64::NAN]),
        DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]), // indefinite
        DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.0, 1.0]), // not symmetric
        DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, 0.0]),
    ];
    for c in &cases {
        assert!(
            matches!(
                validate_covariance(c),
                Err(CircuitError::InvalidCovariance(_))
            ),
            "{c}"
        );
    }
    // A non-PD recurrent matrix has no whitening error.
    assert_eq!(
        whitening_error(&cases[1], &ok).unwrap_err(),
        CircuitError::NotPositiveDefinite
    );
}

#[test]
fn experiment_rejects_bad_configurations() {
    let base = ReproduceConfig::new(Mode::MeanField, 2);
    let mut cases: Vec<(ReproduceConfig, &str)> = Vec::new();
    let mut c = base.clone();
    c.interneurons = 1;
    cases.push((c, "k >= n"));
    for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
        let mut c = base.clone();
        c.spectrum = vec![1.0, bad];
        cases.push((c, "spectrum"));
    }
    for bad in [0.0, -0.5, 1.5] {
        let mut c = base.clone();
        c.eta = bad;
        cases.push((c, "--eta"));
    }
    let mut c = base.clone();
    c.scales.clear();
    cases.push((c, "--scales is empty"));
    let mut c = base.clone();
    c.tol = 0.0;
    cases.push((c, "--tol"));
    // The sweep's circuits: recurrent ones, each once, at least one.
    let mut c = base.clone();
    c.circuits = vec![WhitenerKind::Direct, WhitenerKind::Baseline];
    cases.push((c, "baseline is not a circuit"));
    let mut c = base.clone();
    c.circuits = vec![WhitenerKind::Gain, WhitenerKind::Direct, WhitenerKind::Gain];
    cases.push((c, "--circuits names gain twice"));
    let mut c = base.clone();
    c.circuits.clear();
    cases.push((c, "--circuits is empty"));
    for (cfg, needle) in cases {
        let err = run(&cfg, |_, _| {}).unwrap_err().to_string();
        assert!(err.contains(needle), "expected '{needle}' in: {err}");
    }
}

fn whiten(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_whiten"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_reports_bad_arguments_without_panicking() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["reproduce", "--dim", "3", "--interneurons", "2"],
            "k >= n",
        ),
        (&["reproduce", "--spectrum", "1,nan"], "finite"),
        (&["reproduce", "--spectrum", "1,-2"], "positive definite"),
        (&["reproduce", "--eta", "0"], "--eta"),
        (&["reproduce", "--eta", "-0.5"], "--eta"),
        (&["reproduce", "--scales="], "--scales"),
        (&["reproduce", "--scales", "1,0"], "--scales"),
        (&["reproduce", "--dim", "2", "--spectrum", "1,2,3"], "--dim"),
        (&["reproduce", "--dim", "0"], "--dim"),
        (
            &["reproduce", "--circuits", "direct,foo"],
            "unknown circuit \"foo\"; choose from direct, interneuron, gain",
        ),
        (
            &["reproduce", "--circuits", "interneuron,baseline"],
            "baseline is not a circuit",
        ),
        (&["reproduce", "--circuits="], "unknown circuit"),
        (
            &["reproduce", "--circuits", "gain,direct,gain"],
            "--circuits names gain twice",
        ),
        (&["reproduce", "--mean-field", "contexts"], "cannot be used"),
        (&["reproduce", "contexts", "--visits", "0"], "--visits"),
        (
            &["reproduce", "contexts", "--visit-steps", "0"],
            "--visit-steps",
        ),
        (&["reproduce", "contexts", "--eta-g", "1"], "--eta-g"),
        (&["reproduce", "contexts", "--eta-w", "0"], "--eta-w"),
        (&["reproduce", "contexts", "--tol", "-1"], "--tol"),
        (&["reproduce", "contexts", "--seeds"], "--seeds is empty"),
    ];
    for (args, needle) in cases {
        let out = whiten(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        // 101 is Rust's panic exit code.
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected '{needle}' in: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed to stdout on failure"
        );
    }
}
