//! Integration tests of the classical ZCA baseline (`baseline`, docs/DESIGN.md §2.8) and of the
//! allocation-free Jacobi eigensolver it runs on (`eigen`).
//!
//! Ground truth (`C^{-1/2}`, `(C + ε²I)^{-1/2}`) comes from nalgebra's `SymmetricEigen`, computed
//! here independently of the code under test. Tolerances are requirements, not fitted numbers:
//! 1e-10 relative for converged whitening matrices, 10 % for the time constant, zero allocations.

mod support;

use interneuron_whitening::baseline::ZcaBaseline;
use interneuron_whitening::circuits::{CircuitError, Scalar};
use interneuron_whitening::eigen::HermitianEigen;
use nalgebra::{Complex, DMatrix, DVector, SymmetricEigen};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::counting_alloc::{count_allocations, CountingAllocator};
use support::linalg::{normal, random_spd};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------------------------
// Ground truth and helpers.

/// `f(C)` for a Hermitian `C` by nalgebra's eigendecomposition.
fn matrix_function<T: Scalar>(c: &DMatrix<T>, f: impl Fn(f64) -> f64) -> DMatrix<T> {
    let e = SymmetricEigen::new(c.clone());
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|l| T::from_real(f(l))));
    let m = &e.eigenvectors * d * e.eigenvectors.adjoint();
    (&m + m.adjoint()).scale(0.5)
}

/// `(C + ε²I)^{-1/2}`.
fn inv_sqrt_floor<T: Scalar>(c: &DMatrix<T>, eps: f64) -> DMatrix<T> {
    matrix_function(c, |l| 1.0 / (l + eps * eps).sqrt())
}

fn rel_err<T: Scalar>(a: &DMatrix<T>, b: &DMatrix<T>) -> f64 {
    (a - b).norm() / b.norm()
}

/// Ascending eigenvalues by nalgebra.
fn eigenvalues<T: Scalar>(c: &DMatrix<T>) -> Vec<f64> {
    let mut v: Vec<f64> = SymmetricEigen::new(c.clone())
        .eigenvalues
        .iter()
        .copied()
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// Mean outer product of `len` samples `x = C^{1/2} z` (z standard normal).
fn block_outer_mean<T: Scalar>(
    sqrt_c: &DMatrix<T>,
    len: usize,
    rng: &mut ChaCha8Rng,
) -> DMatrix<T> {
    let n = sqrt_c.nrows();
    let mut acc = DMatrix::<T>::zeros(n, n);
    for _ in 0..len {
        let z = DVector::from_fn(n, |_, _| normal::<T, _>(rng));
        let x = sqrt_c * z;
        acc += &x * x.adjoint();
    }
    acc.scale(1.0 / len as f64)
}

fn random_hermitian<T: Scalar>(n: usize, rng: &mut ChaCha8Rng) -> DMatrix<T> {
    let g = DMatrix::from_fn(n, n, |_, _| normal::<T, _>(rng));
    (&g + g.adjoint()).scale(0.5)
}

// ---------------------------------------------------------------------------------------------
// The eigensolver does not allocate after `new`.

fn eigen_no_alloc<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 1..=16 {
        let a0 = random_hermitian::<T>(n, &mut rng);
        let a1 = &a0 + random_hermitian::<T>(n, &mut rng).scale(1e-3);
        let mut out = DMatrix::<T>::zeros(n, n);
        let wrong = DMatrix::<T>::zeros(n + 1, n + 1);
        let mut eig = HermitianEigen::<T>::new(n);
        let mut other = HermitianEigen::<T>::new(n);
        let count = count_allocations(|| {
            eig.decompose(&a0).unwrap();
            eig.decompose_warm(&a1).unwrap();
            eig.decompose_warm(&a0).unwrap();
            eig.apply_function_into(|l| l.abs().sqrt(), &mut out);
            other.copy_from(&eig);
            assert!(eig.decompose(&wrong).is_err());
        });
        assert_eq!(count, 0, "n={n}: {count} allocator calls");
        // The work was real: the result reconstructs a0.
        eig.apply_function_into(|l| l, &mut out);
        assert!(rel_err(&out, &a0) < 1e-12, "n={n}");
        // n ≤ 2 is solved in closed form (no sweeps); larger n took Jacobi sweeps.
        assert!(eig.sweeps() >= 1 || n <= 2);
    }
}

#[test]
fn eigen_does_not_allocate_real() {
    eigen_no_alloc::<f64>(11);
}

#[test]
fn eigen_does_not_allocate_complex() {
    eigen_no_alloc::<Complex<f64>>(12);
}

// ---------------------------------------------------------------------------------------------
// Convergence to the ZCA whitening matrix.

/// Fed the exact covariance, `Ĉ_t = C + (1−α)^t (s²I − C) → C`, so `P → C^{-1/2}`.
fn converges<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in [1, 2, 3, 5, 8, 16] {
        let (c, _) = random_spd::<T, _>(n, 0.05, 20.0, &mut rng);
        let target = inv_sqrt_floor(&c, 0.0);
        let mut b = ZcaBaseline::<T>::new(n, 0.1, 0.0, 3.0).unwrap();
        // Starts at P = I/s.
        assert!(
            rel_err(
                b.whitening_matrix(),
                &DMatrix::identity(n, n).scale(1.0 / 3.0)
            ) < 1e-15
        );
        let e0 = rel_err(b.whitening_matrix(), &target);
        for _ in 0..500 {
            b.update(&c).unwrap();
        }
        let e = rel_err(b.whitening_matrix(), &target);
        assert!(
            e < 1e-10,
            "n={n}: P differs from C^(-1/2) by {e:e} (start {e0:e})"
        );
        assert!(e0 > 0.1, "n={n}: the test must start far from the target");
        assert!(b.whitening_error(&c) < 1e-10, "n={n}");
        assert!(rel_err(b.covariance(), &c) < 1e-12, "n={n}");
        let m_expected: Vec<f64> = eigenvalues(&c).iter().map(|l| l.sqrt()).collect();
        for (got, want) in b.recurrent_eigenvalues().iter().zip(&m_expected) {
            assert!(
                (got - want).abs() < 1e-10 * want,
                "n={n}: M eigenvalue {got} vs {want}"
            );
        }
        let (lo, hi) = b.recurrent_eigenvalue_range();
        assert!((b.condition_number() - hi / lo).abs() < 1e-12 * hi / lo);
        // The response is P x.
        let x: Vec<T> = (0..n).map(|_| normal::<T, _>(&mut rng)).collect();
        let mut r = vec![T::zero(); n];
        b.respond(&x, &mut r);
        let want = &target * DVector::from_column_slice(&x);
        let diff = (DVector::from_column_slice(&r) - &want).norm() / want.norm();
        assert!(diff < 1e-10, "n={n}: response off by {diff:e}");
        // Steady state: the warm start finds nothing left to rotate.
        assert!(
            b.last_sweeps() <= 1,
            "n={n}: {} sweeps at steady state",
            b.last_sweeps()
        );
    }
}

#[test]
fn converges_to_inverse_sqrt_real() {
    converges::<f64>(21);
}

#[test]
fn converges_to_inverse_sqrt_complex() {
    converges::<Complex<f64>>(22);
}

/// With a floor ε the target is `(C + ε²I)^{-1/2}`; changing ε moves P there at once.
fn floor_target<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in [1, 3, 6] {
        // Small eigenvalues comparable to ε² so the floor matters.
        let (c, _) = random_spd::<T, _>(n, 1e-3, 1e-2, &mut rng);
        let eps = 0.05;
        let mut b = ZcaBaseline::<T>::new(n, 0.2, eps, 1.0).unwrap();
        for _ in 0..300 {
            b.update(&c).unwrap();
        }
        let with_floor = inv_sqrt_floor(&c, eps);
        let without = inv_sqrt_floor(&c, 0.0);
        let e = rel_err(b.whitening_matrix(), &with_floor);
        assert!(e < 1e-10, "n={n}: off (C+ε²I)^(-1/2) by {e:e}");
        assert!(
            rel_err(&with_floor, &without) > 0.1,
            "n={n}: floor too small to test"
        );
        for (got, l) in b.recurrent_eigenvalues().iter().zip(eigenvalues(&c)) {
            let want = (l + eps * eps).sqrt();
            assert!((got - want).abs() < 1e-10 * want);
        }
        b.set_floor(0.2);
        assert_eq!(b.floor(), 0.2);
        let e = rel_err(b.whitening_matrix(), &inv_sqrt_floor(&c, 0.2));
        assert!(e < 1e-10, "n={n}: after set_floor off by {e:e}");
        // Unusable floors are ignored.
        let p = b.whitening_matrix().clone();
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            b.set_floor(bad);
            assert_eq!(b.floor(), 0.2);
            assert_eq!(b.whitening_matrix(), &p);
        }
    }
}

#[test]
fn floor_sets_the_target_real() {
    floor_target::<f64>(31);
}

#[test]
fn floor_sets_the_target_complex() {
    floor_target::<Complex<f64>>(32);
}

/// Silence: `Ĉ → 0`, P stays finite, `‖P‖₂ ≤ 1/ε`, and tends to `I/ε`.
fn silence<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 4;
    let eps = 1e-3;
    let (c, _) = random_spd::<T, _>(n, 0.1, 10.0, &mut rng);
    let mut b = ZcaBaseline::<T>::new(n, 0.5, eps, 1.0).unwrap();
    for _ in 0..50 {
        b.update(&c).unwrap();
    }
    let zero = DMatrix::<T>::zeros(n, n);
    for t in 0..3000 {
        b.update(&zero).unwrap();
        let p = b.whitening_matrix();
        assert!(p.iter().all(|v| v.is_finite()), "t={t}: P not finite");
        let norm = eigenvalues(p).iter().fold(0.0f64, |m, l| m.max(l.abs()));
        assert!(norm <= (1.0 + 1e-12) / eps, "t={t}: ‖P‖ = {norm} > 1/ε");
    }
    // The decay residue is flushed to exact zero (no denormals), so P = I/ε.
    assert!(b.covariance().iter().all(|v| *v == T::zero()));
    let e = rel_err(
        b.whitening_matrix(),
        &DMatrix::identity(n, n).scale(1.0 / eps),
    );
    assert!(e < 1e-12, "P after silence off I/ε by {e:e}");
    assert!(b
        .recurrent_eigenvalues()
        .iter()
        .all(|m| (m - eps).abs() < 1e-15));
    // And it recovers when the signal returns.
    for _ in 0..200 {
        b.update(&c).unwrap();
    }
    assert!(rel_err(b.whitening_matrix(), &inv_sqrt_floor(&c, eps)) < 1e-10);

    // Without a floor silence eventually makes Ĉ singular: that update is refused and the
    // (finite) state kept.
    let mut b = ZcaBaseline::<T>::new(n, 0.5, 0.0, 1.0).unwrap();
    let mut refused = None;
    for t in 0..3000 {
        let before = (b.covariance().clone(), b.whitening_matrix().clone());
        match b.update(&zero) {
            Ok(()) => {}
            Err(err) => {
                assert_eq!(err, CircuitError::NotPositiveDefinite);
                assert_eq!(b.covariance(), &before.0);
                assert_eq!(b.whitening_matrix(), &before.1);
                refused = Some(t);
                break;
            }
        }
        assert!(b.whitening_matrix().iter().all(|v| v.is_finite()));
    }
    assert!(
        refused.is_some(),
        "ε = 0 and silence never reported a singular state"
    );
}

#[test]
fn silence_keeps_p_bounded_real() {
    silence::<f64>(41);
}

#[test]
fn silence_keeps_p_bounded_complex() {
    silence::<Complex<f64>>(42);
}

// ---------------------------------------------------------------------------------------------
// Time constant.

/// After a step `C₁ → C₂`, the estimate error decays as `(1−α)^t ≈ e^{−αt}` and so does the
/// whitening error `‖P C₂ P − I‖` once it is small (it is linear in the estimate error there).
fn time_constant<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 4;
    let alpha = 0.02;
    let (c1, _) = random_spd::<T, _>(n, 0.5, 2.0, &mut rng);
    let (c2, _) = random_spd::<T, _>(n, 0.5, 2.0, &mut rng);
    let mut b = ZcaBaseline::<T>::new(n, alpha, 0.0, 1.0).unwrap();
    for _ in 0..3000 {
        b.update(&c1).unwrap();
    }
    let d0 = (&c1 - &c2).norm();
    let horizon = (6.0 / alpha) as usize;
    let mut errors = vec![b.whitening_error(&c2)];
    for t in 1..=horizon {
        b.update(&c2).unwrap();
        errors.push(b.whitening_error(&c2));
        if t as f64 <= 3.0 / alpha {
            let rho = (b.covariance() - &c2).norm() / d0;
            let law = (-alpha * t as f64).exp();
            assert!(
                (rho / law - 1.0).abs() <= 0.1,
                "t={t}: estimate error ratio {rho:e} vs e^(-αt) = {law:e}"
            );
        }
    }
    assert!(errors[0] > 0.1, "the step must be large");
    // Least-squares slope of ln E over t ∈ [3/α, 6/α].
    let (t0, t1) = ((3.0 / alpha) as usize, horizon);
    let pts: Vec<(f64, f64)> = (t0..=t1).map(|t| (t as f64, errors[t].ln())).collect();
    let m = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / m, sy / m);
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let tau = -sxx / sxy;
    assert!(
        (tau * alpha - 1.0).abs() <= 0.1,
        "whitening error time constant {tau:.1} updates, expected 1/α = {:.1}",
        1.0 / alpha
    );
    // The e-folding time read directly off the curve.
    let target = errors[t0] / std::f64::consts::E;
    let fold = (t0..=t1).find(|&t| errors[t] <= target).unwrap() - t0;
    assert!(
        (fold as f64 * alpha - 1.0).abs() <= 0.1,
        "e-folding took {fold} updates, expected {:.0}",
        1.0 / alpha
    );
    // And the baseline's adaptation is scale free: scaling both C by 100 changes nothing.
    let mut scaled = ZcaBaseline::<T>::new(n, alpha, 0.0, 10.0).unwrap();
    for _ in 0..3000 {
        scaled.update(&c1.scale(100.0)).unwrap();
    }
    for (t, &unscaled) in errors.iter().enumerate().skip(1) {
        scaled.update(&c2.scale(100.0)).unwrap();
        let e = scaled.whitening_error(&c2.scale(100.0));
        assert!((e - unscaled).abs() <= 1e-9 * unscaled.max(1e-6), "t={t}");
    }
}

#[test]
fn step_change_decays_with_time_constant_real() {
    time_constant::<f64>(51);
}

#[test]
fn step_change_decays_with_time_constant_complex() {
    time_constant::<Complex<f64>>(52);
}

/// Stochastic input (block-averaged outer products of Gaussian vectors): P whitens C to the
/// accuracy of an estimate from ≈ 2/α blocks.
fn stochastic<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = 4;
    let (c, _) = random_spd::<T, _>(n, 0.01, 1.0, &mut rng);
    let sqrt_c = matrix_function(&c, f64::sqrt);
    let mut b = ZcaBaseline::<T>::new(n, 0.01, 1e-4, 3.0).unwrap();
    let e0 = b.whitening_error(&c);
    let mut sweeps = 0;
    for _ in 0..1500 {
        let x = block_outer_mean(&sqrt_c, 64, &mut rng);
        b.update(&x).unwrap();
        sweeps = sweeps.max(b.last_sweeps());
    }
    let e = b.whitening_error(&c);
    assert!(
        e < 0.1,
        "whitening error {e} after 1500 blocks (start {e0})"
    );
    assert!(e0 > 0.5, "start {e0} too close to white");
    assert!(
        sweeps <= 4,
        "warm-started updates needed up to {sweeps} sweeps"
    );
}

#[test]
fn stochastic_input_is_whitened_real() {
    stochastic::<f64>(61);
}

#[test]
fn stochastic_input_is_whitened_complex() {
    stochastic::<Complex<f64>>(62);
}

// ---------------------------------------------------------------------------------------------
// Real time: no allocation after construction.

fn baseline_no_alloc<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in [1, 2, 5, 8, 16] {
        let (c, _) = random_spd::<T, _>(n, 0.01, 1.0, &mut rng);
        let sqrt_c = matrix_function(&c, f64::sqrt);
        let inputs: Vec<DMatrix<T>> = (0..50)
            .map(|_| block_outer_mean(&sqrt_c, 8, &mut rng))
            .collect();
        let wrong = DMatrix::<T>::zeros(n + 1, n);
        let x: Vec<T> = (0..n).map(|_| normal::<T, _>(&mut rng)).collect();
        let mut r = vec![T::zero(); n];
        let mut m = DMatrix::<T>::zeros(n, n);
        let mut b = ZcaBaseline::<T>::new(n, 0.05, 1e-3, 2.0).unwrap();
        let mut sink = 0.0;
        let count = count_allocations(|| {
            for x_hat in &inputs {
                b.update(x_hat).unwrap();
                b.respond(&x, &mut r);
            }
            sink += b.whitening_error(&c);
            b.set_floor(1e-2);
            b.set_alpha(0.1).unwrap();
            b.recurrent_matrix_into(&mut m);
            sink += b.recurrent_eigenvalues()[0] + b.condition_number();
            assert!(b.update(&wrong).is_err());
            b.reinitialise(1.0).unwrap();
            b.update(&inputs[0]).unwrap();
        });
        assert_eq!(count, 0, "n={n}: {count} allocator calls");
        assert!(sink.is_finite());
        b.recurrent_matrix_into(&mut m);
        // M = P⁻¹.
        let pm = b.whitening_matrix() * &m;
        assert!((pm - DMatrix::<T>::identity(n, n)).norm() < 1e-10);
    }
}

#[test]
fn update_does_not_allocate_real() {
    baseline_no_alloc::<f64>(71);
}

#[test]
fn update_does_not_allocate_complex() {
    baseline_no_alloc::<Complex<f64>>(72);
}

// ---------------------------------------------------------------------------------------------
// Bad arguments.

#[test]
fn bad_arguments_give_errors() {
    type B = ZcaBaseline<f64>;
    assert_eq!(
        B::new(0, 0.1, 0.0, 1.0).unwrap_err(),
        CircuitError::ZeroDimension
    );
    for a in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            B::new(2, a, 0.0, 1.0),
            Err(CircuitError::InvalidLearningRate(_))
        ));
    }
    for s in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e200, 1e-200] {
        assert!(
            matches!(B::new(2, 0.1, 0.0, s), Err(CircuitError::InvalidScale(_))),
            "s={s}"
        );
    }
    for eps in [-1e-3, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            B::new(2, 0.1, eps, 1.0),
            Err(CircuitError::InvalidScale(_))
        ));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(81);
    let (c, _) = random_spd::<Complex<f64>, _>(3, 0.1, 1.0, &mut rng);
    let mut b = ZcaBaseline::<Complex<f64>>::new(3, 0.1, 1e-3, 1.0).unwrap();
    for _ in 0..5 {
        b.update(&c).unwrap();
    }
    let snapshot = |b: &ZcaBaseline<Complex<f64>>| {
        (
            b.covariance().clone(),
            b.whitening_matrix().clone(),
            b.recurrent_eigenvalues().to_vec(),
        )
    };
    let before = snapshot(&b);
    assert!(matches!(
        b.set_alpha(1.0),
        Err(CircuitError::InvalidLearningRate(_))
    ));
    assert!(matches!(
        b.set_alpha(f64::NAN),
        Err(CircuitError::InvalidLearningRate(_))
    ));
    assert_eq!(b.alpha(), 0.1);
    assert!(matches!(
        b.reinitialise(0.0),
        Err(CircuitError::InvalidScale(_))
    ));
    assert!(matches!(
        b.reinitialise(f64::NAN),
        Err(CircuitError::InvalidScale(_))
    ));
    assert_eq!(
        b.update(&DMatrix::zeros(2, 2)),
        Err(CircuitError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    );
    assert!(matches!(
        b.update(&DMatrix::zeros(3, 4)),
        Err(CircuitError::DimensionMismatch { .. })
    ));
    let mut nan = c.clone();
    nan[(1, 0)] = Complex::new(f64::NAN, 0.0);
    assert!(matches!(
        b.update(&nan),
        Err(CircuitError::InvalidCovariance(_))
    ));
    let mut inf = c.clone();
    inf[(2, 2)] = Complex::new(f64::INFINITY, 0.0);
    assert!(matches!(
        b.update(&inf),
        Err(CircuitError::InvalidCovariance(_))
    ));
    let mut asym = c.clone();
    asym[(2, 0)] += Complex::new(0.0, 0.1);
    assert!(matches!(
        b.update(&asym),
        Err(CircuitError::InvalidCovariance(_))
    ));
    let mut complex_diag = c.clone();
    complex_diag[(1, 1)] += Complex::new(0.0, 0.1);
    assert!(matches!(
        b.update(&complex_diag),
        Err(CircuitError::InvalidCovariance(_))
    ));
    // Strongly indefinite: Ĉ would get a clearly negative eigenvalue.
    let indefinite = DMatrix::from_diagonal(&DVector::from_vec(vec![
        Complex::new(-100.0, 0.0),
        Complex::new(1.0, 0.0),
        Complex::new(1.0, 0.0),
    ]));
    assert!(matches!(
        b.update(&indefinite),
        Err(CircuitError::InvalidCovariance(_))
    ));
    assert_eq!(snapshot(&b), before, "a failed call changed the state");
    // The state still works afterwards.
    b.update(&c).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Warm starts: what keeps an update cheap (its timing is in benches/circuits.rs).

/// Consecutive updates with slowly moving statistics start the Jacobi solver from the previous
/// eigenvectors, so they need few sweeps — the property that makes the baseline affordable on
/// the audio thread. A cold start needs several times more. A real `Ĉ` of three or more
/// channels is decomposed by Householder and QL instead (no sweeps, no warm start: cheaper
/// than the warm Jacobi there).
fn warm_sweeps<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in [2, 8, 16] {
        let (c, _) = random_spd::<T, _>(n, 0.01, 1.0, &mut rng);
        let sqrt_c = matrix_function(&c, f64::sqrt);
        let inputs: Vec<DMatrix<T>> = (0..64)
            .map(|_| block_outer_mean(&sqrt_c, 32, &mut rng))
            .collect();
        let mut b = ZcaBaseline::<T>::new(n, 0.01, 1e-4, 1.0).unwrap();
        for i in 0..500 {
            b.update(&inputs[i % 64]).unwrap();
        }
        let reps = 400;
        let mut sweeps = 0;
        for i in 0..reps {
            b.update(&inputs[i % 64]).unwrap();
            sweeps += b.last_sweeps();
        }
        let mean = sweeps as f64 / reps as f64;
        let mut cold = HermitianEigen::<T>::new(n);
        cold.decompose(b.covariance()).unwrap();
        let real = T::as_reals(&[T::zero()]).is_some();
        // A 2×2 problem is solved in one sweep either way.
        assert!(
            if real && n > 2 {
                mean == 0.0
            } else if n == 2 {
                mean <= 1.0
            } else {
                mean < cold.sweeps() as f64
            },
            "n = {n}: {mean} sweeps per warm update (a cold start takes {})",
            cold.sweeps()
        );
    }
}

#[test]
fn warm_started_updates_need_few_sweeps() {
    warm_sweeps::<f64>(91);
    warm_sweeps::<Complex<f64>>(92);
}
