//! The race's learning spread over host calls, merged updates and the stats' eigenvalues.
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const N: usize = 5;

fn settings() -> RaceSettings {
    RaceSettings {
        eta: 0.05,
        interneurons: N,
        init_scale: 1.0,
        floor: 1e-3,
        error_alpha: 0.1,
    }
}

/// Mean outer products of `blocks` blocks of 64 vectors, mixed by a random matrix that
/// changes (and changes level by up to ±30 dB) every 40 blocks.
fn blocks(blocks: usize, seed: u64) -> Vec<DMatrix<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mix = DMatrix::<f64>::identity(N, N);
    (0..blocks)
        .map(|b| {
            if b % 40 == 0 {
                let g = 10f64.powf(rng.random_range(-1.5..1.5));
                mix = DMatrix::from_fn(N, N, |_, _| g * rng.sample::<f64, _>(StandardNormal));
            }
            let mut x = DMatrix::zeros(N, N);
            for _ in 0..64 {
                let w = DMatrix::from_fn(N, 1, |_, _| rng.sample::<f64, _>(StandardNormal));
                let v = &mix * w;
                x += &v * v.transpose() / 64.0;
            }
            x
        })
        .collect()
}

fn state(race: &Race<f64>) -> (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>) {
    (
        race.direct().m().clone(),
        race.interneuron().w().clone(),
        race.baseline().covariance().clone(),
    )
}

fn relative(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm()
}

/// Carried out one unit at a time, each update ends exactly where the update carried out
/// at once does (the same sub-steps in the same order), and no call takes more than one
/// sub-step.
#[test]
fn slices_of_an_update_are_the_update_at_once() {
    let xs = blocks(200, 1);
    let mut at_once = Race::<f64>::new(N, &settings()).unwrap();
    let mut sliced = Race::<f64>::new(N, &settings()).unwrap();
    let mut calls = 0;
    for x in &xs {
        at_once.learn(x, true);
        sliced.begin_learning(x, true);
        while sliced.learning_pending() {
            let before = sliced.integrator_counters().substeps;
            sliced.advance_learning(1);
            assert!(sliced.integrator_counters().substeps - before <= 1);
            calls += 1;
        }
        assert_eq!(state(&sliced), state(&at_once));
        for kind in WhitenerKind::ALL {
            assert_eq!(sliced.response_matrix(kind), at_once.response_matrix(kind));
        }
    }
    let c = sliced.integrator_counters();
    assert_eq!(c, at_once.integrator_counters());
    assert_eq!(c.merged, 0);
    // Changes of up to ±30 dB take many sub-steps: the slicing did slice.
    assert!(
        calls > xs.len() + 100,
        "{calls} calls for {} blocks",
        xs.len()
    );
}

/// Starved of budget, updates merge into the unfinished ones and the state falls behind;
/// given the budget again it catches up with the state learned at once.
#[test]
fn merged_updates_catch_up() {
    let xs = blocks(400, 2);
    let mut at_once = Race::<f64>::new(N, &settings()).unwrap();
    let mut starved = Race::<f64>::new(N, &settings()).unwrap();
    let mut behind = 0.0;
    for (b, x) in xs.iter().enumerate() {
        at_once.learn(x, true);
        starved.begin_learning(x, true);
        // One unit per block for the first half, then enough for everything.
        let budget = if b < 200 { 1 } else { usize::MAX };
        starved.advance_learning(budget);
        if b < 200 {
            behind = f64::max(behind, relative(starved.direct().m(), at_once.direct().m()));
        }
    }
    assert!(
        starved.integrator_counters().merged > 100,
        "nothing was merged"
    );
    // Starved, the direct circuit fell well behind after the changes.
    assert!(behind > 0.1, "{behind}");
    let (m0, w0, c0) = state(&at_once);
    let (m1, w1, c1) = state(&starved);
    // Both track the same statistics: 200 blocks (10 τ) after the starving ended they
    // agree to within a fraction of one block's learning.
    assert!(relative(&m1, &m0) < 0.01, "M: {}", relative(&m1, &m0));
    let (mw0, mw1) = (&w0 * w0.transpose(), &w1 * w1.transpose());
    assert!(relative(&mw1, &mw0) < 0.01, "WWᵀ: {}", relative(&mw1, &mw0));
    assert_eq!(c1, c0, "the baseline is never starved");
}

/// The stats take the direct circuit's eigenvalues from the integrator's last exponential
/// sub-step, to first order, when it moved `M` little: they agree with a fresh
/// decomposition of `M`; after larger steps `M` is decomposed afresh.
#[test]
fn direct_eigenvalues_for_the_stats_at_rest_are_those_of_m() {
    let xs = blocks(120, 4);
    let mut race = Race::<f64>::new(N, &settings()).unwrap();
    let mut reused = 0;
    for x in &xs {
        race.learn(x, true);
        reused += usize::from(race.integrator.direct_eigenvalues().is_some());
        let snap = race.snapshot(WhitenerKind::Direct);
        let want = race.direct().m().clone().symmetric_eigen().eigenvalues;
        let (lo, hi) = (want.min(), want.max());
        assert!(
            (snap.eig_min - lo).abs() <= 0.01 * lo,
            "{} vs {lo}",
            snap.eig_min
        );
        assert!(
            (snap.eig_max - hi).abs() <= 0.01 * hi,
            "{} vs {hi}",
            snap.eig_max
        );
    }
    assert!(reused > 30, "reused {reused} of {}", xs.len());
}
