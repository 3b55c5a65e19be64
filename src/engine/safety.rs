//! Audio safety (docs/DESIGN.md §7): a peak limiter that guarantees `|y| ≤ 1`, and flushing of
//! denormals to zero while processing.

/// A peak limiter with instant attack and exponential release, shared across channels so
/// the spatial image does not move. With instant attack the gain applied to a frame is at most
/// `1/peak`, so the output can never exceed ±1; a final clamp only catches rounding.
#[derive(Clone, Debug)]
pub struct SafetyLimiter {
    /// Current gain (≤ 1).
    gain: f32,
    /// Per-sample release coefficient towards unity gain.
    release: f32,
}

impl SafetyLimiter {
    /// A limiter releasing with time constant `release_ms` at `sample_rate`.
    pub fn new(sample_rate: f32, release_ms: f32) -> Self {
        let samples = (release_ms * 1e-3 * sample_rate).max(1.0);
        Self {
            gain: 1.0,
            release: (-1.0 / samples).exp(),
        }
    }

    /// Current gain reduction factor (1 = none).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limit one frame (one sample of each channel) in place.
    #[inline]
    pub fn process_frame(&mut self, frame: &mut [f32]) {
        let peak = frame.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // Release towards 1, then attack instantly if this frame would clip.
        self.gain = 1.0 - (1.0 - self.gain) * self.release;
        // Snap to exactly 1 once the reduction is inaudible, so the idle fast path resumes.
        if self.gain > 0.9999 {
            self.gain = 1.0;
        }
        if peak * self.gain > 1.0 {
            self.gain = 1.0 / peak;
        }
        for v in frame.iter_mut() {
            *v = (*v * self.gain).clamp(-1.0, 1.0);
        }
    }

    /// Forget any gain reduction.
    pub fn reset(&mut self) {
        self.gain = 1.0;
    }
}

/// Replace subnormal samples by 0. Downstream processing slows down on subnormal input, and
/// hosts' strict validators reject it, so no output sample may be one (docs/DESIGN.md §7).
/// One compare and select per sample; no branches in the loop.
#[inline]
pub fn flush_subnormals(samples: &mut [f32]) {
    flush_subnormals_peak(samples);
}

/// [`flush_subnormals`], returning the peak `max |x|` of the samples (NaN ignored, 0 for an
/// empty slice) from the same pass: eight independent lanes, so that the maximum is not one
/// long dependency chain and the loop vectorises.
pub fn flush_subnormals_peak(samples: &mut [f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = samples.chunks_exact_mut(8);
    for c in &mut chunks {
        for k in 0..8 {
            // Selects and unconditional stores: compare-and-mask in vector registers.
            let a = c[k].abs();
            c[k] = if a < f32::MIN_POSITIVE { 0.0 } else { c[k] };
            acc[k] = if a > acc[k] { a } else { acc[k] };
        }
    }
    let mut peak = acc.iter().fold(0.0f32, |m, v| if *v > m { *v } else { m });
    for v in chunks.into_remainder() {
        let a = v.abs();
        if a < f32::MIN_POSITIVE {
            *v = 0.0;
        }
        if a > peak {
            peak = a;
        }
    }
    peak
}

/// `vec![value; len]` whose memory is already mapped: one volatile write per 4 KiB page, so
/// that the first host call does not pay the page faults of a lazily zeroed allocation (tens
/// of microseconds per buffer, measured as the worst block of a 64-sample host call).
pub fn prefaulted<T: Copy>(len: usize, value: T) -> Vec<T> {
    let mut v = vec![value; len];
    let step = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..len).step_by(step) {
        // SAFETY: `i < len`, so the pointer is in bounds and valid for a write of `T`.
        unsafe { std::ptr::write_volatile(v.as_mut_ptr().add(i), value) };
    }
    v
}

/// Sets the CPU's flush-to-zero and denormals-are-zero modes for its lifetime, restoring the
/// previous mode on drop. Near-silence must not make processing slower (docs/DESIGN.md §7).
pub struct DenormalGuard {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl DenormalGuard {
    /// Enable FTZ/DAZ on this thread until the guard is dropped.
    #[allow(deprecated)]
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            // SAFETY: reading and writing MXCSR only changes floating-point modes of this thread.
            unsafe {
                let saved = _mm_getcsr();
                _mm_setcsr(saved | 0x8040);
                Self { saved }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Default for DenormalGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DenormalGuard {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the mode read in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved)
        }
    }
}

/// Convert decibels to an amplitude factor.
#[inline]
pub fn db_to_amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Convert a power to decibels (−∞ for 0 clamped to −200 dB).
#[inline]
pub fn power_to_db(p: f64) -> f64 {
    if p > 1e-20 {
        10.0 * p.log10()
    } else {
        -200.0
    }
}

#[cfg(test)]
mod flush_tests {
    use super::*;

    /// The fused pass flushes exactly the subnormals and returns the peak a plain loop finds,
    /// for every length around the eight lanes, with NaN, ±∞ and subnormals mixed in.
    #[test]
    fn flush_subnormals_peak_equals_the_plain_loops() {
        let specials = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            f32::MIN_POSITIVE / 2.0,
            -1e-40,
            0.5,
            -2.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
        ];
        for len in 0..40 {
            let data: Vec<f32> = (0..len)
                .map(|i| {
                    specials[(i * 7 + len) % specials.len()] * if i % 3 == 0 { -1.0 } else { 1.0 }
                })
                .collect();
            let mut fused = data.clone();
            let peak = flush_subnormals_peak(&mut fused);
            let mut plain = data.clone();
            for v in plain.iter_mut() {
                if v.abs() < f32::MIN_POSITIVE {
                    *v = 0.0;
                }
            }
            let want = data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(peak.to_bits(), want.to_bits(), "len {len}: {data:?}");
            for (a, b) in fused.iter().zip(&plain) {
                assert_eq!(a.to_bits(), b.to_bits(), "len {len}");
            }
        }
    }
}
