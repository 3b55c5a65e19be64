//! `Engine::process` and `Engine::process_keyed` (and every real-time setter) allocate nothing
//! after construction — counted by a global allocator that counts only on the thread under
//! test.

use interneuron_whitening::engine::{
    Engine, EngineParams, Framing, LearnedState, Shaping, StatsSender, ViewSender,
};
use interneuron_whitening::whitener::WhitenerKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
mod support;
use support::counting_alloc::{count_allocations, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let mut out = None;
    let n = count_allocations(|| out = Some(f()));
    (out.expect("ran"), n as u64)
}

#[test]
fn the_counter_counts() {
    let (_, n) = counted(|| vec![1u8; 100]);
    assert!(n >= 1);
}

#[test]
fn process_and_realtime_setters_do_not_allocate() {
    for framing in [Framing::Channels, Framing::Spectral] {
        for &n in &[1usize, 2, 6, 16] {
            let params = EngineParams {
                framing,
                fft_size: 1024,
                ..EngineParams::default()
            };
            let mut engine = Engine::new(n, 48_000.0, params).unwrap();
            let (tx, rx) = crossbeam_channel::bounded(64);
            engine.set_stats_sender(Some(StatsSender::new(tx)));
            // The view of what is heard, made and sent every 50 ms (a small channel that
            // fills: dropping must not allocate either).
            let (view_tx, _view_rx) = crossbeam_channel::bounded(4);
            engine.set_view_sender(Some(ViewSender::new(view_tx)));
            // A learned-state buffer: the first publish only records the shape, the buffer is
            // then made room for (as a background thread would) and later publishes fill it.
            let mut learned = LearnedState::default();
            let (written, allocs) = counted(|| engine.publish_learned_state(&mut learned));
            assert!(
                !written && allocs == 0,
                "{framing:?} n={n}: {allocs} allocations"
            );
            learned.reserve_for_shape();
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let mut audio: Vec<Vec<f32>> = (0..n).map(|_| vec![0.0f32; 8192]).collect();
            // A sidechain key (docs/DESIGN.md §3.8), some of whose rounds are short or of
            // another channel count, and some hostile.
            let mut key: Vec<Vec<f32>> = (0..n).map(|_| vec![0.0f32; 8192]).collect();
            for round in 0..40 {
                for ch in audio.iter_mut() {
                    for v in ch.iter_mut() {
                        *v = rng.random_range(-0.5..0.5);
                    }
                    if round % 7 == 3 {
                        ch[5] = f32::NAN;
                    }
                }
                for ch in key.iter_mut() {
                    for v in ch.iter_mut() {
                        *v = rng.random_range(-0.3..0.3);
                    }
                    if round % 6 == 2 {
                        ch[9] = f32::INFINITY;
                    }
                }
                let len = rng.random_range(1..=8192);
                let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[..len]).collect();
                let key_len = if round % 4 == 1 { len / 2 } else { len };
                let key_channels = if round % 8 == 5 { n - 1 } else { n };
                let keys: Vec<&[f32]> = key[..key_channels].iter().map(|c| &c[..key_len]).collect();
                let ((), allocs) = counted(|| {
                    if round % 2 == 0 {
                        engine.process(&mut bufs);
                    } else {
                        engine.process_keyed(&mut bufs, &keys);
                    }
                    match round % 5 {
                        0 => engine.select(WhitenerKind::ALL[round % WhitenerKind::ALL.len()]),
                        1 => engine.set_tau_ms(50.0 + round as f64).unwrap(),
                        2 => engine.set_output(-12.0, 0.7),
                        3 => engine.reinitialise(1.0 + round as f64).unwrap(),
                        _ => engine.set_learning(round % 2 == 0),
                    }
                    // Shaping: depth below 1 makes the heard P^α by eigendecomposition.
                    engine.set_shaping(Shaping {
                        depth: [1.0, 0.5, 0.0, 0.8][round % 4],
                        delta: round % 6 < 3,
                        tilt_db_per_octave: (round % 5) as f64 - 2.0,
                        low_limit_hz: 20.0 + 100.0 * (round % 3) as f64,
                        high_limit_hz: 20_000.0 - 3000.0 * (round % 2) as f64,
                    });
                    match round % 4 {
                        0 => engine.set_levels(-20.0 - round as f64, -100.0).unwrap(),
                        1 => engine.set_stats_enabled(round % 8 != 1),
                        _ => assert!(engine.publish_learned_state(&mut learned)),
                    }
                });
                assert_eq!(
                    allocs, 0,
                    "{framing:?} n={n} round {round}: {allocs} allocations"
                );
                // The full channel drops records (counted) instead of blocking or allocating.
                if round % 3 == 0 {
                    while rx.try_recv().is_ok() {}
                }
            }
            let c = engine.counters();
            assert!(c.stats_sent > 0);
            assert!(
                c.stats_dropped > 0,
                "the bounded channel must have overflowed"
            );
        }
    }
}
