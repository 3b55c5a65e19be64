//! The lock-free ring between the input and the output callback of `whiten live`: the only
//! way audio crosses from one audio thread to the other, so neither ever waits for the other.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

/// A lock-free single-producer single-consumer ring of `f32` samples. Samples are stored as
/// bits in `AtomicU32`s with relaxed ordering (plain moves on common targets) and published
/// by the `Release` store of the write counter, so no `unsafe` is needed. Counters run
/// freely (wrapping); the capacity is a power of two.
pub struct Ring {
    /// The samples, as `f32` bits; allocated once, before any audio thread runs.
    buf: Box<[AtomicU32]>,
    /// Capacity − 1: a power-of-two capacity turns the wrap into a mask.
    mask: usize,
    /// Samples written so far.
    head: AtomicUsize,
    /// Samples read so far.
    tail: AtomicUsize,
}

impl Ring {
    /// A ring of at least `capacity` samples, split into its two ends.
    pub fn channel(capacity: usize) -> (RingProducer, RingConsumer) {
        let cap = capacity.max(2).next_power_of_two();
        let ring = Arc::new(Ring {
            buf: (0..cap).map(|_| AtomicU32::new(0)).collect(),
            mask: cap - 1,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        });
        (
            RingProducer {
                ring: Arc::clone(&ring),
            },
            RingConsumer { ring },
        )
    }

    fn capacity(&self) -> usize {
        self.mask + 1
    }
}

/// The writing end of a [`Ring`] (one thread).
pub struct RingProducer {
    /// The ring, shared with its [`RingConsumer`].
    ring: Arc<Ring>,
}

impl RingProducer {
    /// Samples that can be written now.
    pub fn free(&self) -> usize {
        let r = &self.ring;
        let used = r
            .head
            .load(Ordering::Relaxed)
            .wrapping_sub(r.tail.load(Ordering::Acquire));
        r.capacity() - used
    }

    /// Write `n` samples produced by `sample(i)`; the caller checked [`free`](Self::free).
    #[inline]
    pub fn push_with(&mut self, n: usize, mut sample: impl FnMut(usize) -> f32) {
        let r = &self.ring;
        debug_assert!(n <= self.free());
        let head = r.head.load(Ordering::Relaxed);
        for i in 0..n {
            r.buf[head.wrapping_add(i) & r.mask].store(sample(i).to_bits(), Ordering::Relaxed);
        }
        r.head.store(head.wrapping_add(n), Ordering::Release);
    }
}

/// The reading end of a [`Ring`] (one thread).
pub struct RingConsumer {
    /// The ring, shared with its [`RingProducer`].
    ring: Arc<Ring>,
}

impl RingConsumer {
    /// Samples that can be read now.
    pub fn available(&self) -> usize {
        let r = &self.ring;
        r.head
            .load(Ordering::Acquire)
            .wrapping_sub(r.tail.load(Ordering::Relaxed))
    }

    /// Read `out.len()` samples; the caller checked [`available`](Self::available).
    #[inline]
    pub fn pop_into(&mut self, out: &mut [f32]) {
        let r = &self.ring;
        debug_assert!(out.len() <= self.available());
        let tail = r.tail.load(Ordering::Relaxed);
        for (i, o) in out.iter_mut().enumerate() {
            *o = f32::from_bits(r.buf[tail.wrapping_add(i) & r.mask].load(Ordering::Relaxed));
        }
        r.tail
            .store(tail.wrapping_add(out.len()), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_passes_samples_in_order_across_the_wrap() {
        let (mut p, mut c) = Ring::channel(8);
        let mut next = 0.0f32;
        let mut expect = 0.0f32;
        let mut out = [0.0f32; 5];
        for _ in 0..100 {
            let n = p.free().min(5);
            p.push_with(n, |i| next + i as f32);
            next += n as f32;
            let m = c.available().min(3);
            c.pop_into(&mut out[..m]);
            for v in &out[..m] {
                assert_eq!(*v, expect);
                expect += 1.0;
            }
        }
        assert!(expect > 200.0);
        assert_eq!(p.free() + c.available(), 8);
    }
}
