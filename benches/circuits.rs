//! One per-sample update of each circuit at n ∈ {2, 8, 16}: the direct circuit (Cholesky per
//! step), and the interneuron circuit with the naive re-factorisation vs the Sherman–Morrison
//! fast path; one update of the ZCA baseline; and one block sub-step of the gain-modulating
//! circuit as the engine runs it per spectral band (ℂ n = 1, 2) and per channel block (ℝ n = 2,
//! 8), with `R = P X P` formed each time as the integrator does. `cargo bench --bench circuits`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use interneuron_whitening::baseline::ZcaBaseline;
use interneuron_whitening::circuits::{
    matmul_into, Circuit, DirectCircuit, GainModulatingCircuit, InterneuronBasis,
    InterneuronCircuit, Scalar, Solver,
};
use interneuron_whitening::source::GaussianSource;
use nalgebra::{Complex, DMatrix};
use std::hint::black_box;

fn bench_updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuit_update");
    group.throughput(Throughput::Elements(1));
    for n in [2usize, 8, 16] {
        let spectrum: Vec<f64> = (0..n).map(|i| 0.5 + i as f64).collect();
        // A pool of input samples so the bench measures the update, not the generator.
        let mut source = GaussianSource::<f64>::new(&spectrum, 1).unwrap();
        let pool: Vec<Vec<f64>> = (0..4096)
            .map(|_| {
                let mut x = vec![0.0; n];
                source.sample_into(&mut x);
                x
            })
            .collect();
        let eta = 1e-4;
        let mut circuits: Vec<(&str, Box<dyn Circuit<f64>>)> = vec![
            ("direct", Box::new(DirectCircuit::new(n, eta, 1.0).unwrap())),
            (
                "interneuron_naive",
                Box::new(
                    InterneuronCircuit::new(n, n, eta, 1.0, InterneuronBasis::Dct, Solver::Naive)
                        .unwrap(),
                ),
            ),
            (
                "interneuron_fast",
                Box::new(
                    InterneuronCircuit::new(
                        n,
                        n,
                        eta,
                        1.0,
                        InterneuronBasis::Dct,
                        Solver::default(),
                    )
                    .unwrap(),
                ),
            ),
        ];
        for (name, circuit) in circuits.iter_mut() {
            let mut r = vec![0.0; n];
            let mut i = 0;
            group.bench_with_input(BenchmarkId::new(*name, n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) % pool.len();
                    circuit.step(black_box(&pool[i]), &mut r).unwrap();
                    black_box(&r);
                })
            });
        }
    }
    group.finish();
}

/// One update of the ZCA baseline (EW covariance + warm-started Jacobi) at n ∈ {2, 8, 16}, real
/// and complex, on a pool of block outer products of a fixed covariance.
fn bench_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline_update");
    group.throughput(Throughput::Elements(1));
    for n in [2usize, 8, 16] {
        let spectrum: Vec<f64> = (0..n).map(|i| 0.01 + i as f64 / n as f64).collect();
        let mut source = GaussianSource::<f64>::new(&spectrum, 2).unwrap();
        let pool: Vec<DMatrix<f64>> = (0..64)
            .map(|_| {
                let mut m = DMatrix::zeros(n, n);
                let mut x = vec![0.0; n];
                for _ in 0..32 {
                    source.sample_into(&mut x);
                    let v = DMatrix::from_column_slice(n, 1, &x);
                    m += &v * v.transpose() / 32.0;
                }
                m
            })
            .collect();
        let complex: Vec<DMatrix<Complex<f64>>> = pool
            .iter()
            .map(|m| m.map(|v| Complex::new(v, 0.0)))
            .collect();
        let mut real = ZcaBaseline::<f64>::new(n, 0.01, 1e-4, 1.0).unwrap();
        let mut cplx = ZcaBaseline::<Complex<f64>>::new(n, 0.01, 1e-4, 1.0).unwrap();
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("f64", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % pool.len();
                real.update(black_box(&pool[i])).unwrap();
            })
        });
        group.bench_with_input(BenchmarkId::new("complex", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % pool.len();
                cplx.update(black_box(&complex[i])).unwrap();
            })
        });
    }
    group.finish();
}

/// A Hermitian positive definite `X` near the identity with some correlation, for the gain
/// circuit's block bench: `X_ij = ρ^{|i−j|}` (times `i` off the diagonal for ℂ).
fn correlated<T: Scalar>(n: usize, rho: f64, phase: T) -> DMatrix<T> {
    DMatrix::from_fn(n, n, |i, j| {
        let v = T::from_real(rho.powi((i as i32 - j as i32).abs()));
        match i.cmp(&j) {
            std::cmp::Ordering::Less => v * phase,
            std::cmp::Ordering::Greater => v * phase.conjugate(),
            std::cmp::Ordering::Equal => v,
        }
    })
}

/// One block sub-step of the gain-modulating circuit at the race's settings: `P` refreshed,
/// `R = P X P`, then the sub-step over a block of `T = 0.05` units of τ (a spectral frame at
/// τ = 100 ms), the state moving as it does in the engine.
fn bench_gain_block<T: Scalar>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    phase: T,
) {
    let x = correlated(n, 0.5, phase);
    let mut circuit = GainModulatingCircuit::<T>::racing(n, 1e-3, 1.0).unwrap();
    let (mut p, mut px, mut r) = (
        DMatrix::<T>::zeros(n, n),
        DMatrix::<T>::zeros(n, n),
        DMatrix::<T>::zeros(n, n),
    );
    group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            circuit.inverse_recurrent_matrix_into(&mut p);
            matmul_into(&mut px, &p, black_box(&x));
            matmul_into(&mut r, &px, &p);
            black_box(circuit.block_substep(&r, 0.05, 0.5).unwrap());
        })
    });
}

fn bench_gain_blocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("gain_block_substep");
    group.throughput(Throughput::Elements(1));
    let i = Complex::new(0.0, 1.0);
    bench_gain_block(&mut group, "complex", 1, i);
    bench_gain_block(&mut group, "complex", 2, i);
    bench_gain_block(&mut group, "f64", 2, 1.0);
    bench_gain_block(&mut group, "f64", 8, 1.0);
    group.finish();
}

criterion_group!(benches, bench_updates, bench_baseline, bench_gain_blocks);
criterion_main!(benches);
