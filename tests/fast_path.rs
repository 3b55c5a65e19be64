//! The O(n²) Sherman–Morrison path of the interneuron circuit agrees with the naive solve to
//! 1e-9 relative over 10⁶ updates.

use interneuron_whitening::circuits::{
    Circuit, InterneuronBasis, InterneuronCircuit, Scalar, Solver,
};
use interneuron_whitening::source::GaussianSource;
use nalgebra::Complex;

fn agree<T: Scalar>(n: usize, k: usize, spectrum: &[f64], seed: u64) {
    let eta = 0.01;
    let basis = InterneuronBasis::Random { seed };
    let mut naive = InterneuronCircuit::<T>::new(n, k, eta, 3.0, basis, Solver::Naive).unwrap();
    let mut fast = InterneuronCircuit::<T>::new(n, k, eta, 3.0, basis, Solver::default()).unwrap();
    let mut source = GaussianSource::<T>::new(spectrum, seed).unwrap();
    let mut x = vec![T::zero(); n];
    let (mut r1, mut r2) = (vec![T::zero(); n], vec![T::zero(); n]);
    let mut worst_r: f64 = 0.0;
    for t in 1..=1_000_000u32 {
        source.sample_into(&mut x);
        naive.step(&x, &mut r1).unwrap();
        fast.step(&x, &mut r2).unwrap();
        let diff: f64 = r1
            .iter()
            .zip(&r2)
            .map(|(a, b)| (*a - *b).modulus_squared())
            .sum();
        let norm: f64 = r1.iter().map(|a| a.modulus_squared()).sum();
        worst_r = worst_r.max((diff / norm).sqrt());
        if t % 100_000 == 0 {
            let w_rel = (naive.w() - fast.w()).norm() / naive.w().norm();
            assert!(w_rel < 1e-9, "n={n} k={k} t={t}: W differs by {w_rel:e}");
        }
    }
    assert!(
        worst_r < 1e-9,
        "n={n} k={k}: responses differ by up to {worst_r:e}"
    );
}

#[test]
fn sherman_morrison_matches_naive_real() {
    agree::<f64>(4, 6, &[0.2, 1.0, 3.0, 8.0], 3);
}

#[test]
fn sherman_morrison_matches_naive_complex() {
    agree::<Complex<f64>>(3, 3, &[0.5, 1.0, 4.0], 4);
}

#[test]
fn refactorisation_happens_even_with_period_zero() {
    // A zero period is clamped to 1, i.e. re-factorise every step, rather than dividing by 0.
    let c = InterneuronCircuit::<f64>::new(
        2,
        2,
        0.1,
        1.0,
        InterneuronBasis::Dct,
        Solver::ShermanMorrison { refactor_period: 0 },
    )
    .unwrap();
    assert_eq!(c.solver(), Solver::ShermanMorrison { refactor_period: 1 });
}
