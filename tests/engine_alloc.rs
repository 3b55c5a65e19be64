//! `Engine::process` (and every real-time setter) allocates nothing after construction —
//! counted by a global allocator that counts only on the thread under test.

use interneuron_whitening::engine::{Engine, EngineParams, Framing, StatsSender, WhitenerKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-local may be gone during thread teardown.
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note();
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, s: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, s) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, COUNT.with(|c| c.get()))
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
            let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
            let mut audio: Vec<Vec<f32>> = (0..n).map(|_| vec![0.0f32; 8192]).collect();
            for round in 0..40 {
                for ch in audio.iter_mut() {
                    for v in ch.iter_mut() {
                        *v = rng.random_range(-0.5..0.5);
                    }
                    if round % 7 == 3 {
                        ch[5] = f32::NAN;
                    }
                }
                let len = rng.random_range(1..=8192);
                let mut bufs: Vec<&mut [f32]> = audio.iter_mut().map(|c| &mut c[..len]).collect();
                let ((), allocs) = counted(|| {
                    engine.process(&mut bufs);
                    match round % 5 {
                        0 => engine.select(WhitenerKind::ALL[round % 3]),
                        1 => engine.set_tau_ms(50.0 + round as f64).unwrap(),
                        2 => engine.set_output(-12.0, 0.7),
                        3 => engine.reinitialise(1.0 + round as f64).unwrap(),
                        _ => engine.set_learning(round % 2 == 0),
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
