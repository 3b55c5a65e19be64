//! The paper's result: iterations to whiten grow linearly in the initial scale s for the direct
//! circuit and logarithmically for the interneuron circuit; mean-field counts follow the
//! per-eigenvalue scalar recursions; the continuous-time closed forms predict the counts.

use interneuron_whitening::reproduce::{run, Mode, Report, ReproduceConfig};
use interneuron_whitening::theory;
use interneuron_whitening::whitener::WhitenerKind;

fn config(mode: Mode, spectrum: &[f64], eta: f64, tol: f64, scales: &[f64]) -> ReproduceConfig {
    let mut c = ReproduceConfig::new(mode, spectrum.len());
    c.spectrum = spectrum.to_vec();
    c.eta = eta;
    c.tol = tol;
    c.scales = scales.to_vec();
    c.seed = 7;
    c
}

fn counts(report: &Report, kind: WhitenerKind) -> Vec<u64> {
    report
        .runs_of(kind)
        .map(|r| r.iterations.expect("every run converges"))
        .collect()
}

/// Iterate the scalar mean-field recursion of each eigen-direction (written here, independent
/// of the circuits) and count updates until `√(mean (σ²/m² − 1)²) < tol`.
fn scalar_recursion(kind: WhitenerKind, spectrum: &[f64], s: f64, eta: f64, tol: f64) -> u64 {
    let mut m: Vec<f64> = vec![s; spectrum.len()];
    let mut t = 0;
    loop {
        let e = (m
            .iter()
            .zip(spectrum)
            .map(|(m, c)| (c / (m * m) - 1.0).powi(2))
            .sum::<f64>()
            / spectrum.len() as f64)
            .sqrt();
        if e < tol {
            return t;
        }
        for (m, c) in m.iter_mut().zip(spectrum) {
            let d = c / (*m * *m) - 1.0;
            *m = match kind {
                // M ← M + η (M⁻¹CM⁻¹ − I)
                WhitenerKind::Direct => *m + eta * d,
                // W ← (I + η D) W, so M = W Wᴴ ← (1 + η d)² M
                WhitenerKind::Interneuron => *m * (1.0 + eta * d).powi(2),
                // Ĉ ← (1 − η) Ĉ + η C with M = Ĉ^{1/2}
                WhitenerKind::Baseline => ((1.0 - eta) * *m * *m + eta * c).sqrt(),
                WhitenerKind::Gain => unreachable!("not one of the circuits reproduce compares"),
            };
        }
        t += 1;
    }
}

#[test]
fn mean_field_counts_follow_the_scalar_recursions_dim1() {
    let scales = [0.1, 0.5, 2.0, 10.0, 100.0, 1000.0];
    let report = run(
        &config(Mode::MeanField, &[1.0], 0.01, 0.01, &scales),
        |_, _| {},
    )
    .unwrap();
    for kind in WhitenerKind::CIRCUITS {
        let measured = counts(&report, kind);
        let expected: Vec<u64> = scales
            .iter()
            .map(|&s| scalar_recursion(kind, &[1.0], s, 0.01, 0.01))
            .collect();
        assert_eq!(measured, expected, "{kind}");
    }
    // Orientation from the issue: s = 100 takes ~10⁴ updates direct, a few hundred interneuron.
    let d100 = counts(&report, WhitenerKind::Direct)[4];
    let i100 = counts(&report, WhitenerKind::Interneuron)[4];
    assert!((5_000..20_000).contains(&d100), "direct s=100: {d100}");
    assert!((100..1_000).contains(&i100), "interneuron s=100: {i100}");
}

#[test]
fn mean_field_counts_follow_the_scalar_recursions_rotated_spectrum() {
    // C = U diag(c) Uᴴ with a random rotation: the state stays commuting with C, so each
    // eigen-direction follows its own scalar recursion.
    let spectrum = [0.3, 1.0, 2.5, 6.0];
    let scales = [0.5, 3.0, 30.0, 300.0];
    let report = run(
        &config(Mode::MeanField, &spectrum, 0.01, 0.01, &scales),
        |_, _| {},
    )
    .unwrap();
    for kind in WhitenerKind::CIRCUITS {
        let expected: Vec<u64> = scales
            .iter()
            .map(|&s| scalar_recursion(kind, &spectrum, s, 0.01, 0.01))
            .collect();
        assert_eq!(counts(&report, kind), expected, "{kind}");
    }
}

#[test]
fn scaling_law_linear_for_direct_logarithmic_for_interneuron() {
    let report = run(
        &config(Mode::MeanField, &[1.0], 0.01, 0.01, &[10.0, 100.0, 1000.0]),
        |_, _| {},
    )
    .unwrap();
    let d = counts(&report, WhitenerKind::Direct);
    let i = counts(&report, WhitenerKind::Interneuron);
    let (d0, d1, d2) = (d[0] as f64, d[1] as f64, d[2] as f64);
    // Linear in s: ×10 per decade asymptotically, and equal increments per unit of s.
    assert!((8.0..12.0).contains(&(d2 / d1)), "direct ratio {}", d2 / d1);
    let per_unit = ((d2 - d1) / 900.0) / ((d1 - d0) / 90.0);
    assert!(
        (0.9..1.1).contains(&per_unit),
        "direct increments per unit s: {per_unit}"
    );
    // Logarithmic in s: the same increment per decade.
    let (i0, i1, i2) = (i[0] as f64, i[1] as f64, i[2] as f64);
    assert!(i1 > i0 && i2 > i1);
    let per_decade = (i2 - i1) / (i1 - i0);
    assert!(
        (0.9..1.1).contains(&per_decade),
        "interneuron increments per decade: {per_decade}"
    );
    assert!(
        i2 / i1 < 2.0,
        "interneuron must not grow proportionally: {i1} → {i2}"
    );
    // The fitted laws describe the data.
    assert!(report.fits.direct.as_ref().unwrap().r_squared > 0.999);
    assert!(report.fits.interneuron.as_ref().unwrap().r_squared > 0.999);
}

#[test]
fn scaling_law_holds_online() {
    let report = run(
        &config(
            Mode::Online,
            &[1.0, 2.0],
            0.001,
            0.1,
            &[10.0, 100.0, 1000.0],
        ),
        |_, _| {},
    )
    .unwrap();
    let d: Vec<f64> = counts(&report, WhitenerKind::Direct)
        .iter()
        .map(|&t| t as f64)
        .collect();
    let i: Vec<f64> = counts(&report, WhitenerKind::Interneuron)
        .iter()
        .map(|&t| t as f64)
        .collect();
    assert!(
        (8.0..12.0).contains(&(d[2] / d[1])),
        "direct online ratio {:?}",
        d
    );
    let per_decade = (i[2] - i[1]) / (i[1] - i[0]);
    assert!(
        (0.7..1.4).contains(&per_decade),
        "interneuron online per decade {:?}",
        i
    );
}

#[test]
fn continuous_time_theory_matches_mean_field_for_small_eta() {
    let spectrum = [0.5, 1.0, 2.0, 4.0];
    let eta = 0.001;
    let scales = [0.5, 2.0, 10.0, 100.0];
    let report = run(
        &config(Mode::MeanField, &spectrum, eta, 0.01, &scales),
        |_, _| {},
    )
    .unwrap();
    for r in &report.runs {
        let measured = r.iterations.unwrap() as f64;
        // Computed here from the closed forms, not taken from the report.
        let predicted =
            theory::convergence_time(r.circuit, &spectrum, r.scale, 0.01).unwrap() / eta;
        let rel = (measured - predicted).abs() / predicted;
        assert!(
            rel < 0.02,
            "{} s = {}: measured {measured}, theory {predicted:.1} ({:.2}%)",
            r.circuit,
            r.scale,
            100.0 * rel
        );
    }
}

#[test]
fn closed_forms_solve_their_odes() {
    // dm/dτ from a central difference of m(τ) must equal the ODE's right-hand side.
    for &(s2, m0) in &[(1.0, 10.0), (2.0, 0.3), (0.5, 100.0)] {
        for &tau in &[0.01, 0.3, 2.0] {
            let h = 1e-6;
            // The gain-modulating circuit has no per-eigenvalue law (docs/DESIGN.md §2.9).
            assert!(theory::eigenvalue_at(WhitenerKind::Gain, s2, m0, tau).is_nan());
            for kind in WhitenerKind::ALL
                .into_iter()
                .filter(|k| *k != WhitenerKind::Gain)
            {
                let m = theory::eigenvalue_at(kind, s2, m0, tau);
                let dm = (theory::eigenvalue_at(kind, s2, m0, tau + h)
                    - theory::eigenvalue_at(kind, s2, m0, tau - h))
                    / (2.0 * h);
                let rhs = match kind {
                    WhitenerKind::Direct => s2 / (m * m) - 1.0,
                    WhitenerKind::Interneuron => 2.0 * (s2 / m - m),
                    // dĈ/dτ = C − Ĉ with m² = Ĉ: dm/dτ = (σ² − m²)/(2m)
                    WhitenerKind::Baseline => (s2 - m * m) / (2.0 * m),
                    WhitenerKind::Gain => unreachable!(),
                };
                assert!(
                    (dm - rhs).abs() < 1e-4 * rhs.abs().max(1.0),
                    "{kind} σ²={s2} m0={m0} τ={tau}: dm/dτ = {dm}, ODE {rhs}"
                );
            }
        }
    }
}
