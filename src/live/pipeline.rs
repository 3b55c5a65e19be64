//! The engine between the two cpal callbacks: [`LiveInput`] pushes the input callback's frames
//! into the [`Ring`], [`LiveOutput`] pulls them, runs [`Engine::process`] and writes the
//! output callback's buffer; [`LiveCounters`] tells the main thread what happened. Everything
//! is allocated in [`pipeline`]; the callbacks never allocate, lock or block.

use super::ring::{Ring, RingConsumer, RingProducer};
use super::LiveSummary;
use crate::engine::{Engine, MAX_CHANNELS};
use cpal::{FromSample, Sample};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Frames in the ring between the input and the output callback (0.34 s at 48 kHz).
pub const RING_FRAMES: usize = 16_384;
/// Largest output start threshold after underruns (85 ms at 48 kHz).
pub const MAX_PREFILL_FRAMES: usize = 4096;
/// Frames the engine processes per call; longer output requests are split.
const MAX_BLOCK: usize = 4096;

/// Counters the callbacks update (relaxed atomics) and the main thread reads.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Output callbacks that found too few input frames and played silence.
    pub(super) underruns: AtomicU64,
    /// Input frames dropped because the ring was full.
    pub(super) overrun_frames: AtomicU64,
    /// Frames the engine processed: the audio time of the run.
    pub(super) frames_processed: AtomicU64,
    /// The engine's count of non-finite input samples (treated as 0).
    pub(super) non_finite_inputs: AtomicU64,
    /// The engine's count of whitener state resets.
    pub(super) state_resets: AtomicU64,
    /// The engine's count of stats records the full channel dropped.
    pub(super) stats_dropped: AtomicU64,
    /// The engine's count of detected changes of the input statistics.
    pub(super) changes: AtomicU64,
    /// Stream errors the host reported that are neither xruns nor fatal.
    pub(super) stream_errors: AtomicU64,
    /// Xruns (buffer under- or overruns of the host) the host reported.
    pub(super) xruns: AtomicU64,
}

impl LiveCounters {
    /// The counts so far (`sample_rate` converts processed frames to seconds).
    pub fn summary(&self, sample_rate: f64) -> LiveSummary {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LiveSummary {
            audio_s: l(&self.frames_processed) as f64 / sample_rate,
            underruns: l(&self.underruns),
            overrun_frames: l(&self.overrun_frames),
            non_finite_inputs: l(&self.non_finite_inputs),
            state_resets: l(&self.state_resets),
            stats_dropped: l(&self.stats_dropped),
            changes: l(&self.changes),
            xruns: l(&self.xruns),
            stream_errors: l(&self.stream_errors),
        }
    }
}

/// The two ends of the live audio path around an engine: [`LiveInput`] for the input
/// callback, [`LiveOutput`] (which owns the engine) for the output callback, and their
/// counters. Everything is allocated here; `push` and `process` never allocate, lock or block.
pub fn pipeline(engine: Engine, out_channels: usize) -> (LiveInput, LiveOutput, Arc<LiveCounters>) {
    let channels = engine.channels();
    let counters = Arc::new(LiveCounters::default());
    let (producer, consumer) = Ring::channel(RING_FRAMES * channels);
    let input = LiveInput {
        producer,
        channels,
        counters: Arc::clone(&counters),
    };
    let output = LiveOutput {
        consumer,
        engine,
        channels,
        out_channels: out_channels.max(1),
        scratch: vec![0.0; MAX_BLOCK * channels],
        planar: vec![vec![0.0; MAX_BLOCK]; channels],
        prefill: 0,
        primed: false,
        counters: Arc::clone(&counters),
    };
    (input, output, counters)
}

/// The input callback's state: interleaved samples → the ring.
pub struct LiveInput {
    /// The ring's writing end.
    producer: RingProducer,
    /// Engine channels: only whole frames enter the ring.
    channels: usize,
    /// Where dropped input frames are counted.
    counters: Arc<LiveCounters>,
}

impl LiveInput {
    /// Push interleaved frames of the engine's channel count; frames that do not fit are
    /// dropped and counted.
    pub fn push<T: Sample>(&mut self, data: &[T])
    where
        f32: FromSample<T>,
    {
        let ch = self.channels;
        let frames = data.len() / ch;
        let take = frames.min(self.producer.free() / ch);
        if take < frames {
            self.counters
                .overrun_frames
                .fetch_add((frames - take) as u64, Ordering::Relaxed);
        }
        self.producer
            .push_with(take * ch, |i| f32::from_sample(data[i]));
    }
}

/// The output callback's state: the ring → the engine → interleaved samples.
pub struct LiveOutput {
    /// The ring's reading end.
    consumer: RingConsumer,
    /// The engine, owned by the output callback's thread: it runs nowhere else.
    engine: Engine,
    /// Engine channels (= input channels).
    channels: usize,
    /// Output stream channels.
    out_channels: usize,
    /// Interleaved frames popped from the ring.
    scratch: Vec<f32>,
    /// One buffer per engine channel, `MAX_BLOCK` frames.
    planar: Vec<Vec<f32>>,
    /// Frames the ring must hold before the output (re)starts.
    prefill: usize,
    /// Whether the ring held `prefill` frames since the start or the last underrun; until
    /// then the output plays silence.
    primed: bool,
    /// Where underruns, processed frames and the engine's counters are published.
    counters: Arc<LiveCounters>,
}

impl LiveOutput {
    /// Fill `data` (interleaved, the output's channel count) with the engine's output for
    /// the next frames from the ring, or with silence while the ring fills (see the module
    /// documentation of [`crate::live`]). Extra output channels carry a mono input on every
    /// channel, otherwise silence.
    pub fn process<T: Sample + FromSample<f32>>(&mut self, data: &mut [T]) {
        let n = self.channels;
        let frames = data.len() / self.out_channels;
        self.prefill = self.prefill.max(frames.min(MAX_PREFILL_FRAMES));
        let available = self.consumer.available() / n;
        if !self.primed {
            if available < self.prefill {
                data.fill(T::EQUILIBRIUM);
                return;
            }
            self.primed = true;
        }
        let mut done = 0;
        while done < frames {
            let chunk = (frames - done).min(MAX_BLOCK);
            if self.consumer.available() / n < chunk {
                // Underrun: silence for the rest, and wait for more before resuming.
                data[done * self.out_channels..].fill(T::EQUILIBRIUM);
                self.counters.underruns.fetch_add(1, Ordering::Relaxed);
                self.primed = false;
                self.prefill = (self.prefill * 2).min(MAX_PREFILL_FRAMES);
                break;
            }
            self.consumer.pop_into(&mut self.scratch[..chunk * n]);
            for (c, buf) in self.planar.iter_mut().enumerate() {
                for (t, v) in buf[..chunk].iter_mut().enumerate() {
                    *v = self.scratch[t * n + c];
                }
            }
            let mut slices: [&mut [f32]; MAX_CHANNELS] = Default::default();
            for (s, buf) in slices.iter_mut().zip(self.planar.iter_mut()) {
                *s = &mut buf[..chunk];
            }
            self.engine.process(&mut slices[..n]);
            let out = &mut data[done * self.out_channels..(done + chunk) * self.out_channels];
            for (t, frame) in out.chunks_exact_mut(self.out_channels).enumerate() {
                for (o, v) in frame.iter_mut().enumerate() {
                    // Extra output channels: a mono input is heard on all of them, otherwise
                    // they stay silent.
                    let c = if o < n {
                        o
                    } else if n == 1 {
                        0
                    } else {
                        usize::MAX
                    };
                    *v = if c == usize::MAX {
                        T::EQUILIBRIUM
                    } else {
                        T::from_sample(self.planar[c][t])
                    };
                }
            }
            done += chunk;
            self.counters
                .frames_processed
                .fetch_add(chunk as u64, Ordering::Relaxed);
        }
        let c = self.engine.counters();
        let s = &self.counters;
        s.non_finite_inputs
            .store(c.non_finite_inputs, Ordering::Relaxed);
        s.state_resets.store(c.state_resets, Ordering::Relaxed);
        s.stats_dropped.store(c.stats_dropped, Ordering::Relaxed);
        s.changes.store(c.changes_detected, Ordering::Relaxed);
    }
}
