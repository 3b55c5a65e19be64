//! Small signal helpers shared by the integration tests that check audio output.

use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::cell::Cell;

/// `⟨a, b⟩ / (‖a‖ ‖b‖)`: the correlation coefficient of two zero-mean signals (not centred
/// first; the test signals are zero-mean noise).
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| *p as f64 * *q as f64)
            .sum::<f64>()
    };
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

/// Root mean square of a signal (0 for an empty one).
pub fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Every sample finite and within ±1, or a panic naming channel and sample.
pub fn check_bounded(out: &[Vec<f32>], what: &str) {
    for (c, ch) in out.iter().enumerate() {
        for (t, v) in ch.iter().enumerate() {
            assert!(
                v.is_finite() && v.abs() <= 1.0,
                "{what}: output channel {c} sample {t} is {v}, not finite within ±1"
            );
        }
    }
}

/// Every sample finite, within ±1 and not subnormal (downstream plugins slow down on
/// subnormal input), or a panic naming channel and sample.
pub fn check_clean(out: &[Vec<f32>], what: &str) {
    check_bounded(out, what);
    for (c, ch) in out.iter().enumerate() {
        for (t, v) in ch.iter().enumerate() {
            assert!(
                *v == 0.0 || v.is_normal(),
                "{what}: output channel {c} sample {t} is subnormal ({v:e})"
            );
        }
    }
}

/// Loops a planar signal.
pub struct Looper {
    data: Vec<Vec<f32>>,
    pos: Cell<usize>,
}

impl Looper {
    pub fn new(data: Vec<Vec<f32>>) -> Self {
        Self {
            data,
            pos: Cell::new(0),
        }
    }

    /// The next `frames` frames, wrapping around.
    pub fn next(&self, frames: usize) -> Vec<Vec<f32>> {
        let len = self.data[0].len();
        let start = self.pos.get();
        self.pos.set((start + frames) % len);
        self.data
            .iter()
            .map(|ch| (0..frames).map(|i| ch[(start + i) % len]).collect())
            .collect()
    }
}

/// `len` frames of white Gaussian noise mixed by `a` (`x = A z`, seeded), planar.
pub fn mixed_noise(a: &DMatrix<f64>, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let n = a.nrows();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out: Vec<Vec<f32>> = (0..n).map(|_| Vec::with_capacity(len)).collect();
    for _ in 0..len {
        let s: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
        for (i, ch) in out.iter_mut().enumerate() {
            ch.push((0..n).map(|j| a[(i, j)] * s[j]).sum::<f64>() as f32);
        }
    }
    out
}
