//! Tests of the Jacobi eigensolver against nalgebra's and closed forms.
use super::*;
use nalgebra::{Complex, SymmetricEigen};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn random_hermitian<T: Scalar>(n: usize, rng: &mut ChaCha8Rng) -> DMatrix<T> {
    let g = DMatrix::from_fn(n, n, |_, _| T::standard_normal(rng));
    (&g + g.adjoint()).scale(0.5)
}

/// Check a decomposition against nalgebra and the defining identities.
fn check<T: Scalar>(eig: &HermitianEigen<T>, a: &DMatrix<T>, what: &str) {
    let n = a.nrows();
    let reference = SymmetricEigen::new(a.clone());
    let mut expected: Vec<f64> = reference.eigenvalues.iter().copied().collect();
    expected.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let lmax = expected
        .iter()
        .fold(0.0f64, |m, l| m.max(l.abs()))
        .max(1e-300);
    for (got, want) in eig.eigenvalues().iter().zip(&expected) {
        assert!(
            (got - want).abs() <= 1e-10 * lmax,
            "{what}: eigenvalue {got} vs {want}"
        );
    }
    for w in eig.eigenvalues().windows(2) {
        assert!(w[0] <= w[1], "{what}: not ascending");
    }
    let v = eig.eigenvectors();
    let d = DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
        n,
        eig.eigenvalues().iter().map(|&l| T::from_real(l)),
    ));
    let recon = v * d * v.adjoint();
    let err = (&recon - a).norm() / a.norm().max(1e-300);
    assert!(err <= 1e-12, "{what}: reconstruction error {err:e}");
    let orth = (v.adjoint() * v - DMatrix::<T>::identity(n, n)).norm();
    assert!(orth <= 1e-12, "{what}: VᴴV − I = {orth:e}");
}

fn against_nalgebra<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 1..=16 {
        for trial in 0..5 {
            let a = random_hermitian::<T>(n, &mut rng);
            let mut eig = HermitianEigen::new(n);
            eig.decompose(&a).unwrap();
            check(&eig, &a, &format!("n={n} trial={trial}"));
        }
    }
}

#[test]
fn eigen_real_matches_nalgebra() {
    against_nalgebra::<f64>(1);
}

#[test]
fn eigen_complex_matches_nalgebra() {
    against_nalgebra::<Complex<f64>>(2);
}

/// Warm start after a perturbation of relative size `delta`: same result as a cold start,
/// fewer sweeps (at most `max_warm`).
fn warm<T: Scalar>(seed: u64, delta: f64, max_warm: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in [2, 3, 5, 8, 12, 16] {
        let a0 = random_hermitian::<T>(n, &mut rng);
        let da = random_hermitian::<T>(n, &mut rng).scale(delta);
        let a1 = &a0 + da;
        let mut cold = HermitianEigen::new(n);
        cold.decompose(&a1).unwrap();
        let mut w = HermitianEigen::new(n);
        w.decompose(&a0).unwrap();
        w.decompose_warm(&a1).unwrap();
        check(&w, &a1, &format!("warm n={n}"));
        for (x, y) in w.eigenvalues().iter().zip(cold.eigenvalues()) {
            assert!((x - y).abs() <= 1e-12 * cold.eigenvalues()[n - 1].abs().max(1.0));
        }
        println!(
            "delta={delta:e} n={n}: cold {} sweeps, warm {}",
            cold.sweeps(),
            w.sweeps()
        );
        // At n = 2 the closed form needs no sweep at all.
        assert!(
            w.sweeps() < cold.sweeps() || (n == 2 && w.sweeps() == 0),
            "n={n}: warm {} sweeps, cold {}",
            w.sweeps(),
            cold.sweeps()
        );
        assert!(
            w.sweeps() <= max_warm,
            "n={n}: warm took {} sweeps",
            w.sweeps()
        );
        // Unchanged matrix: already diagonal to rounding (at most one clean-up sweep).
        w.decompose_warm(&a1).unwrap();
        assert!(w.sweeps() <= 1, "n={n}: warm start on the same matrix");
        check(&w, &a1, &format!("warm-again n={n}"));
    }
}

/// The closed-form 2×2 decomposition reconstructs the matrix with orthonormal vectors, for
/// real and complex, diagonal, near-degenerate and badly scaled matrices.
#[test]
fn small_eigendecompositions_reconstruct_their_matrix() {
    let cases = [
        (2.0, 0.5, Complex::new(0.3, -0.7)),
        (0.5, 2.0, Complex::new(-0.3, 0.2)),
        (1.0, 1.0, Complex::new(0.0, 0.0)),
        (1.0, 1.0 + 1e-12, Complex::new(1e-9, 0.0)),
        (1e-6, 1e4, Complex::new(3.0, 4.0)),
        (3.0, 1.0, Complex::new(0.0, 0.0)),
    ];
    for (a, d, b) in cases {
        let m = DMatrix::from_row_slice(
            2,
            2,
            &[Complex::new(a, 0.0), b.conj(), b, Complex::new(d, 0.0)],
        );
        let mut u = DMatrix::identity(2, 2);
        let mut mu = [0.0; 2];
        eigen_2x2(&m, &mut u, &mut mu);
        assert!(mu[0] <= mu[1]);
        let lam = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(vec![
            Complex::new(mu[0], 0.0),
            Complex::new(mu[1], 0.0),
        ]));
        let back = &u * lam * u.adjoint();
        let scale = m.norm();
        assert!((back - &m).norm() <= 1e-12 * scale, "{m}");
        assert!(
            (u.adjoint() * &u - DMatrix::identity(2, 2)).norm() < 1e-12,
            "{u}"
        );
        // Real matrices stay real.
        let mr = m.map(|v| v.re);
        let mut ur = DMatrix::identity(2, 2);
        eigen_2x2(&mr, &mut ur, &mut mu);
        let back = &ur
            * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(mu.to_vec()))
            * ur.transpose();
        assert!((back - &mr).norm() <= 1e-12 * mr.norm().max(1e-300) + 1e-300);
    }
}

#[test]
fn eigen_warm_start_real() {
    warm::<f64>(3, 1e-3, 3);
    warm::<f64>(13, 1e-6, 2);
}

#[test]
fn eigen_warm_start_complex() {
    warm::<Complex<f64>>(4, 1e-3, 3);
    warm::<Complex<f64>>(14, 1e-6, 2);
}

#[test]
fn eigen_degenerate() {
    for n in 1..=8 {
        let id = DMatrix::<f64>::identity(n, n);
        let mut eig = HermitianEigen::new(n);
        eig.decompose(&id).unwrap();
        assert_eq!(eig.sweeps(), 0);
        check(&eig, &id, "identity");
    }
    // Diagonal with duplicates, then rotated by a random unitary (same spectrum).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let spectrum = [2.0, -1.0, 2.0, 0.0, 2.0, -1.0, 5.0, 0.0];
    let d = DMatrix::from_diagonal(&nalgebra::DVector::from_row_slice(&spectrum));
    let mut eig = HermitianEigen::new(8);
    eig.decompose(&d).unwrap();
    check(&eig, &d, "diag with duplicates");
    assert_eq!(
        eig.eigenvalues(),
        &[-1.0, -1.0, 0.0, 0.0, 2.0, 2.0, 2.0, 5.0]
    );
    let g = DMatrix::from_fn(8, 8, |_, _| Complex::<f64>::standard_normal(&mut rng));
    let q = g.qr().q();
    let dc = d.map(|x| Complex::new(x, 0.0));
    let a = &q * dc * q.adjoint();
    let a = (&a + a.adjoint()).scale(0.5);
    let mut eig = HermitianEigen::new(8);
    eig.decompose(&a).unwrap();
    check(&eig, &a, "rotated duplicates");
    // The zero matrix.
    let z = DMatrix::<Complex<f64>>::zeros(4, 4);
    let mut eig = HermitianEigen::new(4);
    eig.decompose(&z).unwrap();
    assert_eq!(eig.eigenvalues(), &[0.0; 4]);
}

#[test]
fn eigen_extreme_scales() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    // The closed form of n ≤ 2 scales as the sweeps do.
    for n in [1, 2, 6] {
        for scale in [1e-300, 1e-150, 1e150, 1e300] {
            let a = random_hermitian::<Complex<f64>>(n, &mut rng);
            let mut eig = HermitianEigen::new(n);
            eig.decompose(&a.scale(scale)).unwrap();
            let mut unit = HermitianEigen::new(n);
            unit.decompose(&a).unwrap();
            let top = unit.eigenvalues()[n - 1].abs().max(1.0);
            for (x, y) in eig.eigenvalues().iter().zip(unit.eigenvalues()) {
                assert!(
                    (x / scale - y).abs() <= 1e-12 * top,
                    "n={n} scale={scale:e}"
                );
            }
            check(&unit, &a, &format!("unit n={n}"));
        }
    }
}

#[test]
fn power_of_two_scale_brings_the_largest_entry_into_half_to_one() {
    // Every binade from the smallest subnormal to the largest finite number, at its ends and
    // inside, against the definition: `down` and `up` are reciprocal powers of two (exact
    // scaling), and `amax·down ∈ [0.5, 1)` wherever `down` is representable.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    use rand::Rng;
    let mut cases = vec![f64::MIN_POSITIVE, 5e-324, f64::MAX, 1.0, 0.5, 0.75];
    for k in -1074..=1023 {
        let p = 2f64.powi(k);
        cases.push(p);
        cases.push(p * rng.random_range(1.0..2.0));
        cases.push(p * (2.0 - f64::EPSILON));
    }
    for amax in cases.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
        let (down, up) = power_of_two_scale(amax);
        if down.is_normal() && up.is_normal() {
            let e = up.log2();
            assert_eq!(e.fract(), 0.0, "up = {up:e} for {amax:e}");
            assert_eq!(down, 2f64.powi(-(e as i32)), "down for {amax:e}");
            let scaled = amax * down;
            assert!((0.5..1.0).contains(&scaled), "{amax:e} scales to {scaled}");
        } else {
            // The ends of the exponent range: as `log2`/`powi` give them.
            let e = amax.log2().floor() as i32 + 1;
            assert_eq!((down, up), (2f64.powi(-e), 2f64.powi(e)), "{amax:e}");
        }
    }
    assert_eq!(power_of_two_scale(0.0), (1.0, 1.0));
}

#[test]
fn eigen_errors_keep_previous_result() {
    let mut eig = HermitianEigen::<f64>::new(3);
    let a = DMatrix::from_row_slice(3, 3, &[2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 1.0]);
    eig.decompose(&a).unwrap();
    let before = eig.eigenvalues().to_vec();
    let mut bad = a.clone();
    bad[(2, 1)] = f64::NAN;
    assert_eq!(eig.decompose_warm(&bad), Err(EigenError::NonFinite));
    assert_eq!(eig.decompose(&bad), Err(EigenError::NonFinite));
    assert_eq!(
        eig.decompose(&DMatrix::zeros(2, 3)),
        Err(EigenError::DimensionMismatch {
            expected: 3,
            rows: 2,
            cols: 3
        })
    );
    assert_eq!(eig.eigenvalues(), &before[..]);
    // The closed form of n ≤ 2 fails the same way and keeps its result too.
    for n in [1, 2] {
        let mut small = HermitianEigen::<Complex<f64>>::new(n);
        let a = DMatrix::from_fn(n, n, |i, j| {
            Complex::new(if i == j { 2.0 } else { 0.5 }, 0.0)
        });
        small.decompose(&a).unwrap();
        let (values, vectors) = (small.eigenvalues().to_vec(), small.eigenvectors().clone());
        let mut bad = a.clone();
        bad[(n - 1, 0)] = Complex::new(f64::INFINITY, 0.0);
        assert_eq!(small.decompose_warm(&bad), Err(EigenError::NonFinite));
        if n == 2 {
            // Finite entries whose larger eigenvalue, 1.8·f64::MAX, overflows.
            let huge = a.map(|_| Complex::new(0.9 * f64::MAX, 0.0));
            assert_eq!(small.decompose(&huge), Err(EigenError::NonFinite));
        }
        assert_eq!(
            small.decompose(&DMatrix::zeros(3, 3)),
            Err(EigenError::DimensionMismatch {
                expected: n,
                rows: 3,
                cols: 3
            })
        );
        assert_eq!(small.eigenvalues(), &values[..]);
        assert_eq!(small.eigenvectors(), &vectors);
    }
    // An empty matrix decomposes to nothing, without a panic.
    let mut empty = HermitianEigen::<f64>::new(0);
    assert_eq!(empty.decompose(&DMatrix::zeros(0, 0)), Ok(()));
    assert!(empty.eigenvalues().is_empty());
    eig.set_max_sweeps(1);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut big = HermitianEigen::<f64>::new(12);
    big.set_max_sweeps(1);
    let r = big.decompose(&random_hermitian(12, &mut rng));
    assert!(matches!(r, Err(EigenError::NotConverged { sweeps: 1, .. })));
    assert!(!big.is_valid());
}

#[test]
fn eigen_apply_function() {
    fn case<T: Scalar>(n: usize, rng: &mut ChaCha8Rng) {
        let g = DMatrix::from_fn(n, n, |_, _| T::standard_normal(rng));
        let c = &g * g.adjoint() + DMatrix::identity(n, n);
        let mut eig = HermitianEigen::new(n);
        eig.decompose(&c).unwrap();
        let mut inv_sqrt = DMatrix::zeros(n, n);
        let mut sqrt = DMatrix::zeros(n, n);
        eig.apply_function_into(|l| 1.0 / l.sqrt(), &mut inv_sqrt);
        eig.apply_function_into(f64::sqrt, &mut sqrt);
        let i = DMatrix::<T>::identity(n, n);
        assert!((&inv_sqrt * &c * &inv_sqrt - &i).norm() < 1e-12, "n={n}");
        assert!((&sqrt * &sqrt - &c).norm() < 1e-12 * c.norm(), "n={n}");
        assert_eq!(inv_sqrt, inv_sqrt.adjoint(), "n={n}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // n ≤ 2 are written out; 5 goes through the general loops.
    for n in [1, 2, 5] {
        case::<Complex<f64>>(n, &mut rng);
        case::<f64>(n, &mut rng);
    }
}

/// The AVX2 copy of a Jacobi sweep — compiled for each size up to 16 — gives the very bits of
/// the baseline copy at run-time size (no FMA), real and complex.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_sweep_is_bit_identical() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return;
    }
    for n in [3, 4, 8, 11, 16, 17] {
        let a = DMatrix::<Complex<f64>>::from_fn(n, n, |i, j| {
            let (lo, hi) = (i.min(j) as f64, i.max(j) as f64);
            let im = if i == j {
                0.0
            } else {
                (lo - hi) * 0.1 * if i > j { 1.0 } else { -1.0 }
            };
            Complex::new(1.0 / (1.0 + lo + hi) + if i == j { 2.0 } else { 0.0 }, im)
        });
        let (mut a1, mut v1) = (a.clone(), DMatrix::identity(n, n));
        let (mut a2, mut v2) = (a.clone(), DMatrix::identity(n, n));
        for _ in 0..3 {
            sweep(Dynamic(n), a1.as_mut_slice(), v1.as_mut_slice(), 0.0);
            // SAFETY: checked above.
            unsafe { sweep_avx2(&mut a2, &mut v2, 0.0) };
        }
        assert_eq!(a1, a2, "n {n}");
        assert_eq!(v1, v2, "n {n}");
        let re = a.map(|z| z.re);
        let (mut a1, mut v1) = (re.clone(), DMatrix::identity(n, n));
        let (mut a2, mut v2) = (re, DMatrix::identity(n, n));
        sweep(Dynamic(n), a1.as_mut_slice(), v1.as_mut_slice(), 0.0);
        // SAFETY: checked above.
        unsafe { sweep_avx2(&mut a2, &mut v2, 0.0) };
        assert_eq!(a1, a2, "n {n}");
        assert_eq!(v1, v2, "n {n}");
    }
}
