//! Both circuits converge to `M = C^{1/2}` for random SPD `C`, real and complex, n = 1…16.

mod support;

use interneuron_whitening::circuits::{
    Circuit, DirectCircuit, InterneuronBasis, InterneuronCircuit, Scalar, Solver,
};
use interneuron_whitening::source::GaussianSource;
use nalgebra::{Complex, DMatrix};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use support::linalg::{random_spd, rel_err, spectral_norm, sqrtm};

fn circuits<T: Scalar>(n: usize, eta: f64) -> Vec<Box<dyn Circuit<T>>> {
    vec![
        Box::new(DirectCircuit::<T>::new(n, eta, 1.0).unwrap()),
        Box::new(
            InterneuronCircuit::<T>::new(
                n,
                n + 2,
                eta,
                1.0,
                InterneuronBasis::Dct,
                Solver::default(),
            )
            .unwrap(),
        ),
    ]
}

fn mean_field_converges<T: Scalar>(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 1..=16 {
        let (c, _) = random_spd::<T, _>(n, 0.1, 10.0, &mut rng);
        let target = sqrtm(&c);
        for mut circuit in circuits::<T>(n, 0.02) {
            let mut err = f64::INFINITY;
            for _ in 0..200_000 {
                circuit.mean_field_step(&c).unwrap();
                err = rel_err(&circuit.recurrent_matrix(), &target);
                if err < 1e-8 {
                    break;
                }
            }
            assert!(
                err < 1e-6,
                "{} circuit, n = {n}, complex = {}: ‖M − C^½‖/‖C^½‖ = {err:e}",
                circuit.kind(),
                T::IS_COMPLEX
            );
            // And the error measure agrees that the output is white.
            assert!(circuit.whitening_error(&c) < 1e-5);
        }
    }
}

#[test]
fn mean_field_converges_to_sqrt_c_real() {
    mean_field_converges::<f64>(1);
}

#[test]
fn mean_field_converges_to_sqrt_c_complex() {
    mean_field_converges::<Complex<f64>>(2);
}

/// Online with a small η: after a burn-in, the covariance of the circuit's own outputs is
/// within 5% of I (spectral norm) and `M` is close to `C^{1/2}`.
fn online_whitens<T: Scalar>(seed: u64, kind_index: usize) {
    let eta = 0.002;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in 1..=16 {
        let (_, eig) = random_spd::<T, _>(n, 0.1, 10.0, &mut rng);
        let mut source = GaussianSource::<T>::new(&eig, seed + n as u64).unwrap();
        let c = source.covariance().clone();
        let target = sqrtm(&c);
        let mut circuit = circuits::<T>(n, eta).remove(kind_index);
        let mut x = vec![T::zero(); n];
        let mut r = vec![T::zero(); n];
        for _ in 0..20_000 {
            source.sample_into(&mut x);
            circuit.step(&x, &mut r).unwrap();
        }
        let samples = 200_000;
        let mut cov = DMatrix::<T>::zeros(n, n);
        for _ in 0..samples {
            source.sample_into(&mut x);
            circuit.step(&x, &mut r).unwrap();
            for j in 0..n {
                for i in 0..n {
                    cov[(i, j)] += r[i] * r[j].conjugate();
                }
            }
        }
        cov /= T::from_real(samples as f64);
        let dev = spectral_norm(&(cov - DMatrix::<T>::identity(n, n)));
        let m_err = rel_err(&circuit.recurrent_matrix(), &target);
        assert!(
            dev < 0.05,
            "{} n = {n} complex = {}: ‖E[r rᴴ] − I‖₂ = {dev}",
            circuit.kind(),
            T::IS_COMPLEX
        );
        assert!(
            m_err < 0.15,
            "{} n = {n} complex = {}: ‖M − C^½‖/‖C^½‖ = {m_err}",
            circuit.kind(),
            T::IS_COMPLEX
        );
    }
}

#[test]
fn online_direct_whitens_real() {
    online_whitens::<f64>(10, 0);
}

#[test]
fn online_interneuron_whitens_real() {
    online_whitens::<f64>(11, 1);
}

#[test]
fn online_direct_whitens_complex() {
    online_whitens::<Complex<f64>>(12, 0);
}

#[test]
fn online_interneuron_whitens_complex() {
    online_whitens::<Complex<f64>>(13, 1);
}
