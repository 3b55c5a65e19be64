//! One per-sample update of each circuit at n ∈ {2, 8, 16}: the direct circuit (Cholesky per
//! step), and the interneuron circuit with the naive re-factorisation vs the Sherman–Morrison
//! fast path. `cargo bench --bench circuits`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use interneuron_whitening::circuits::{
    Circuit, DirectCircuit, InterneuronBasis, InterneuronCircuit, Solver,
};
use interneuron_whitening::source::GaussianSource;
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

criterion_group!(benches, bench_updates);
criterion_main!(benches);
