//! `whiten live`: the engine on a live input through `cpal` (DESIGN.md §4, §7), with the
//! readaptation race printed as text.
//!
//! **Audio path.** cpal gives an input and an output stream (on JACK: two clients,
//! `cpal_client_<pid>_in` with ports `in_0..` and `cpal_client_<pid>_out` with ports
//! `out_0..`). The input callback converts its interleaved samples to `f32` and pushes whole
//! frames into a preallocated lock-free single-producer single-consumer ring ([`Ring`]);
//! the output callback pulls frames from it, de-interleaves them into preallocated
//! per-channel buffers, runs [`Engine::process`] and interleaves the result out ([`pipeline`]
//! builds both ends, [`LiveInput`] and [`LiveOutput`]). Neither callback allocates, locks or
//! blocks. The output starts once the ring holds one request's
//! worth of frames; when it later finds too few (an **underrun**, e.g. clock drift between
//! two sound cards) it plays silence, counts it, and waits for twice as much before resuming
//! (up to [`MAX_PREFILL_FRAMES`]), so latency grows only as much as the devices need. A full
//! ring drops input frames (**overruns**, counted).
//!
//! **Monitor.** The engine sends its stats records over a bounded `crossbeam-channel`
//! (`try_send`, never blocking) to the main thread, which feeds a [`Monitor`] and prints one
//! line per second of audio per whitener (the one heard marked `*`): input level, mean
//! whitening error over that second and the whitener's latest readaptation event, plus a
//! `change detected at` line for every change of the input statistics.

use crate::engine::{db_to_amp, power_to_db, MAX_CHANNELS};
use crate::engine::{Engine, EngineParams, Framing, StatsRecord, StatsSender};
use crate::monitor::{Monitor, MonitorEvent, MonitorSettings};
use crate::whitener::WhitenerKind;
use anyhow::{anyhow, bail, Context, Result};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, StreamConfig};
use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames in the ring between the input and the output callback (0.34 s at 48 kHz).
pub const RING_FRAMES: usize = 16_384;
/// Largest output start threshold after underruns (85 ms at 48 kHz).
pub const MAX_PREFILL_FRAMES: usize = 4096;
/// Frames the engine processes per call; longer output requests are split.
const MAX_BLOCK: usize = 4096;
/// Stats records the channel holds (the main thread drains it every 50 ms; the engine sends
/// three records per 10 ms).
const STATS_CAPACITY: usize = 4096;

/// Which cpal host to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostChoice {
    /// cpal's default host (ALSA on Linux).
    Default,
    /// ALSA.
    Alsa,
    /// A running JACK server (the one named by `JACK_DEFAULT_SERVER`, else the default).
    Jack,
}

impl HostChoice {
    fn open(self) -> Result<cpal::Host> {
        match self {
            HostChoice::Default => Ok(cpal::default_host()),
            HostChoice::Alsa => Ok(cpal::host_from_id(cpal::HostId::Alsa)?),
            HostChoice::Jack => Ok(cpal::host_from_id(cpal::HostId::Jack)?),
        }
    }
}

/// Everything `whiten live` needs.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The audio host.
    pub host: HostChoice,
    /// Input device name (default: the host's default input).
    pub input: Option<String>,
    /// Output device name (default: the host's default output).
    pub output: Option<String>,
    /// Channels to whiten (default: the input device's default, at most 16).
    pub channels: Option<usize>,
    /// Engine parameters.
    pub params: EngineParams,
    /// A learning rate per input vector that replaces `params.tau_ms` once the sample rate is
    /// known (`τ = 1/(η·rate)`, as in `whiten process`).
    pub eta_per_vector: Option<f64>,
    /// Stop after this many seconds (wall clock); `None` = until Ctrl-C / SIGTERM.
    pub seconds: Option<f64>,
}

/// What a run did, for the final report.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveSummary {
    /// Seconds of audio the engine processed.
    pub audio_s: f64,
    /// Output callbacks that found too few input frames and played silence.
    pub underruns: u64,
    /// Input frames dropped because the ring was full.
    pub overrun_frames: u64,
    /// Non-finite input samples treated as 0.
    pub non_finite_inputs: u64,
    /// Whitener state resets.
    pub state_resets: u64,
    /// Stats records dropped because the channel was full.
    pub stats_dropped: u64,
    /// Changes of the input statistics detected.
    pub changes: u64,
    /// Xruns (buffer under- or overruns of the host) reported by the host.
    pub xruns: u64,
    /// Other stream errors reported by the host.
    pub stream_errors: u64,
}

// ---------------------------------------------------------------------------------------------
// The ring between the callbacks.

/// A lock-free single-producer single-consumer ring of `f32` samples. Samples are stored as
/// bits in `AtomicU32`s with relaxed ordering (plain moves on common targets) and published
/// by the `Release` store of the write counter, so no `unsafe` is needed. Counters run
/// freely (wrapping); the capacity is a power of two.
pub struct Ring {
    buf: Box<[AtomicU32]>,
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

// ---------------------------------------------------------------------------------------------
// Counters shared by the callbacks and the main thread.

/// Counters the callbacks update (relaxed atomics) and the main thread reads.
#[derive(Debug, Default)]
pub struct LiveCounters {
    underruns: AtomicU64,
    overrun_frames: AtomicU64,
    frames_processed: AtomicU64,
    non_finite_inputs: AtomicU64,
    state_resets: AtomicU64,
    stats_dropped: AtomicU64,
    changes: AtomicU64,
    stream_errors: AtomicU64,
    xruns: AtomicU64,
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

// ---------------------------------------------------------------------------------------------
// The callbacks' state.

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
    producer: RingProducer,
    channels: usize,
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
    consumer: RingConsumer,
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
    primed: bool,
    counters: Arc<LiveCounters>,
}

impl LiveOutput {
    /// Fill `data` (interleaved, the output's channel count) with the engine's output for
    /// the next frames from the ring, or with silence while the ring fills (see the module
    /// documentation). Extra output channels carry a mono input on every channel, otherwise
    /// silence.
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

// ---------------------------------------------------------------------------------------------
// Devices.

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .unwrap_or_else(|_| d.to_string())
}

/// The device's id as text (`alsa:hw:0,0`, `jack:input`), empty if unknown.
fn device_id(d: &cpal::Device) -> String {
    d.id().map(|id| id.to_string()).unwrap_or_default()
}

/// Whether `arg` names `d`: its name, its id, or its id without the host prefix.
fn device_matches(d: &cpal::Device, arg: &str) -> bool {
    let id = device_id(d);
    device_name(d) == arg
        || (!id.is_empty()
            && (id == arg || id.split_once(':').is_some_and(|(_, rest)| rest == arg)))
}

/// `"name" = id` for messages.
fn device_label(d: &cpal::Device) -> String {
    let (name, id) = (device_name(d), device_id(d));
    if id.is_empty() || id == name {
        format!("{name:?}")
    } else {
        format!("{name:?} = {id}")
    }
}

/// The host's devices of one direction. A device is listed for a direction only if its
/// description says it has it (cpal's JACK host offers input configurations on its output
/// device too).
fn devices_of(host: &cpal::Host, input: bool) -> Result<Vec<cpal::Device>, cpal::Error> {
    let all: Vec<cpal::Device> = if input {
        host.input_devices()?.collect()
    } else {
        host.output_devices()?.collect()
    };
    Ok(all
        .into_iter()
        .filter(|d| {
            d.description().map_or(true, |desc| {
                if input {
                    desc.supports_input()
                } else {
                    desc.supports_output()
                }
            })
        })
        .collect())
}

/// Why there is no usable device, and what to do instead.
fn no_device_hint(host_choice: HostChoice, host_name: &str, what: &str) -> String {
    match host_choice {
        HostChoice::Jack => format!(
            "no JACK {what} device: is a JACK server running{}? Start one (e.g. `jackd -d dummy` \
             or qjackctl), or use the standalone `interneuron_whitening --backend jack`",
            std::env::var("JACK_DEFAULT_SERVER")
                .map(|s| format!(" (JACK_DEFAULT_SERVER={s})"))
                .unwrap_or_default()
        ),
        _ => format!(
            "no usable {what} device on the {host_name} host (no sound card?): try `--host jack` \
             with a running JACK server, or the standalone `interneuron_whitening --backend \
             jack`; `--list-devices` shows what exists"
        ),
    }
}

/// The device `name` names (see [`device_matches`]), or the host's default one.
fn pick_device(
    host: &cpal::Host,
    name: Option<&str>,
    input: bool,
    host_choice: HostChoice,
) -> Result<cpal::Device> {
    let what = if input { "input" } else { "output" };
    let host_name = host.id().name();
    let Some(name) = name else {
        let d = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return d.ok_or_else(|| anyhow!(no_device_hint(host_choice, host_name, what)));
    };
    let devices = devices_of(host, input)?;
    if let Some(d) = devices.iter().find(|d| device_matches(d, name)) {
        return Ok(d.clone());
    }
    if devices.is_empty() {
        bail!(
            "--{what} {name:?}: {}",
            no_device_hint(host_choice, host_name, what)
        );
    }
    bail!(
        "--{what} {name:?}: no such {what} device on the {host_name} host; available: {}",
        devices
            .iter()
            .map(device_label)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Print every available host's input and output devices with their default configuration.
pub fn list_devices(out: &mut impl Write) -> Result<()> {
    for id in cpal::available_hosts() {
        writeln!(out, "{} (--host {}):", id.name(), id.name().to_lowercase())?;
        let host = match cpal::host_from_id(id) {
            Ok(h) => h,
            Err(e) => {
                writeln!(out, "  unavailable: {e}")?;
                continue;
            }
        };
        let default_in = host.default_input_device().map(|d| device_name(&d));
        let default_out = host.default_output_device().map(|d| device_name(&d));
        let mut any = false;
        for (input, devices) in [
            (true, devices_of(&host, true)),
            (false, devices_of(&host, false)),
        ] {
            let devices = match devices {
                Ok(d) => d,
                Err(e) => {
                    writeln!(out, "  cannot list devices: {e}")?;
                    continue;
                }
            };
            for d in devices {
                any = true;
                let name = device_name(&d);
                let config = if input {
                    d.default_input_config()
                } else {
                    d.default_output_config()
                };
                let config = config
                    .map(|c| {
                        format!(
                            "{} ch, {} Hz, {}",
                            c.channels(),
                            c.sample_rate(),
                            c.sample_format()
                        )
                    })
                    .unwrap_or_else(|e| format!("no default configuration: {e}"));
                let default = if input {
                    default_in.as_deref() == Some(name.as_str())
                } else {
                    default_out.as_deref() == Some(name.as_str())
                };
                writeln!(
                    out,
                    "  {:<6} {}{}  ({config})",
                    if input { "input" } else { "output" },
                    device_label(&d),
                    if default { " [default]" } else { "" },
                )?;
            }
        }
        if !any {
            writeln!(
                out,
                "  no devices{}",
                if id == cpal::HostId::Jack {
                    " (is a JACK server running?)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Stopping on Ctrl-C / SIGTERM.

/// SIGINT and SIGTERM, blocked in this thread and in every thread started while it lives (the
/// audio threads inherit the mask), and taken synchronously by [`StopSignals::wait`]. With a
/// handler instead, a signal could land in a JACK client thread and interrupt its wait for
/// the server, which then stalls the shutdown for the client timeout.
#[cfg(target_os = "linux")]
struct StopSignals {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

#[cfg(target_os = "linux")]
impl StopSignals {
    fn block() -> Self {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only
        // changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            Self { set, old }
        }
    }

    /// Wait up to `timeout` for SIGINT or SIGTERM; `true` if one came.
    fn wait(&self, timeout: Duration) -> bool {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: valid pointers to a signal set and a timespec; no siginfo requested.
        unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) > 0 }
    }
}

#[cfg(target_os = "linux")]
impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// Elsewhere: a handler that sets a flag.
#[cfg(not(target_os = "linux"))]
struct StopSignals;

#[cfg(not(target_os = "linux"))]
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(not(target_os = "linux"))]
extern "C" fn on_stop_signal(_: libc::c_int) {
    // Async-signal-safe: a single atomic store.
    STOP.store(true, Ordering::SeqCst);
}

#[cfg(not(target_os = "linux"))]
impl StopSignals {
    fn block() -> Self {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        StopSignals
    }

    fn wait(&self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        STOP.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Building the streams.

fn build_input(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    mut input: LiveInput,
    errors: crossbeam_channel::Sender<cpal::Error>,
) -> Result<cpal::Stream> {
    let err = move |e| {
        let _ = errors.try_send(e);
    };
    let timeout = Some(Duration::from_secs(10));
    Ok(match format {
        SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
            config,
            move |data: &[f32], _| input.push(data),
            err,
            timeout,
        )?,
        SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], _| input.push(data),
            err,
            timeout,
        )?,
        SampleFormat::I32 => device.build_input_stream::<i32, _, _>(
            config,
            move |data: &[i32], _| input.push(data),
            err,
            timeout,
        )?,
        other => bail!("input sample format {other} is not supported (f32, i16 or i32)"),
    })
}

fn build_output(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    mut state: LiveOutput,
    errors: crossbeam_channel::Sender<cpal::Error>,
) -> Result<cpal::Stream> {
    let err = move |e| {
        let _ = errors.try_send(e);
    };
    let timeout = Some(Duration::from_secs(10));
    Ok(match format {
        SampleFormat::F32 => device.build_output_stream::<f32, _, _>(
            config,
            move |data: &mut [f32], _| state.process(data),
            err,
            timeout,
        )?,
        SampleFormat::I16 => device.build_output_stream::<i16, _, _>(
            config,
            move |data: &mut [i16], _| state.process(data),
            err,
            timeout,
        )?,
        SampleFormat::I32 => device.build_output_stream::<i32, _, _>(
            config,
            move |data: &mut [i32], _| state.process(data),
            err,
            timeout,
        )?,
        other => bail!("output sample format {other} is not supported (f32, i16 or i32)"),
    })
}

/// Preferred sample formats, best first.
const FORMATS: [SampleFormat; 3] = [SampleFormat::F32, SampleFormat::I32, SampleFormat::I16];

/// A supported output format for `channels` at `rate`: the best one, or `None`.
fn output_format(device: &cpal::Device, channels: u16, rate: u32) -> Option<SampleFormat> {
    let ranges: Vec<_> = device.supported_output_configs().ok()?.collect();
    FORMATS.into_iter().find(|f| {
        ranges.iter().any(|r| {
            r.channels() == channels
                && r.sample_format() == *f
                && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
        })
    })
}

/// A supported input format for `channels` at `rate`, preferring the default one.
fn input_format(
    device: &cpal::Device,
    channels: u16,
    rate: u32,
    default: SampleFormat,
) -> Option<SampleFormat> {
    let ranges: Vec<_> = device.supported_input_configs().ok()?.collect();
    std::iter::once(default).chain(FORMATS).find(|f| {
        FORMATS.contains(f)
            && ranges.iter().any(|r| {
                r.channels() == channels
                    && r.sample_format() == *f
                    && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
            })
    })
}

// ---------------------------------------------------------------------------------------------
// The per-second report.

/// A readaptation event as text.
fn describe(ev: &MonitorEvent) -> String {
    match ev {
        MonitorEvent::Readapted {
            change_s, after_s, ..
        } => format!("readapted {after_s:.2} s after change at {change_s:.1} s"),
        MonitorEvent::NotReadapted { change_s, .. } => {
            format!("not readapted after change at {change_s:.1} s before the next one")
        }
        MonitorEvent::Change { time_s } => format!("change detected at {time_s:.2} s"),
    }
}

/// Per-whitener text state between printed seconds.
struct Printer {
    /// The next second of audio to report.
    next_s: f64,
    /// Readaptation events not printed yet, per whitener.
    pending: [Option<MonitorEvent>; 3],
    /// Change times not printed yet.
    changes: Vec<f64>,
}

impl Printer {
    fn new() -> Self {
        Self {
            next_s: 1.0,
            pending: [None; 3],
            changes: Vec::new(),
        }
    }

    fn take_events(&mut self, monitor: &mut Monitor) {
        for ev in monitor.take_events() {
            match ev {
                MonitorEvent::Change { time_s } => self.changes.push(time_s),
                MonitorEvent::Readapted { circuit, .. }
                | MonitorEvent::NotReadapted { circuit, .. } => {
                    self.pending[circuit.index()] = Some(ev)
                }
            }
        }
    }

    /// Print every whole second of audio the monitor has complete records for.
    fn print_ready(&mut self, monitor: &mut Monitor, out: &mut impl Write) -> Result<()> {
        self.take_events(monitor);
        while monitor.now_s() >= self.next_s - 1e-9 {
            let t = self.next_s;
            self.print_second(monitor, t, out)?;
            self.next_s += 1.0;
        }
        out.flush()?;
        Ok(())
    }

    /// At the end: the changes and readaptation events no per-second line has shown.
    fn print_rest(&mut self, monitor: &mut Monitor, out: &mut impl Write) -> Result<()> {
        self.take_events(monitor);
        self.print_changes_until(f64::INFINITY, out)?;
        for kind in WhitenerKind::ALL {
            if let Some(ev) = self.pending[kind.index()].take() {
                writeln!(out, "  at stop  {:<12}  {}", kind.name(), describe(&ev))?;
            }
        }
        out.flush()?;
        Ok(())
    }

    fn print_changes_until(&mut self, t: f64, out: &mut impl Write) -> Result<()> {
        let mut rest = Vec::new();
        for &c in &self.changes {
            if c <= t + 1e-9 {
                writeln!(out, "{c:6.1} s  change detected at {c:.2} s")?;
            } else {
                rest.push(c);
            }
        }
        self.changes = rest;
        Ok(())
    }

    fn print_second(&mut self, monitor: &Monitor, t: f64, out: &mut impl Write) -> Result<()> {
        self.print_changes_until(t, out)?;
        let selected = monitor.selected();
        for kind in WhitenerKind::ALL {
            let (mut power, mut error, mut n) = (0.0, 0.0, 0usize);
            for r in monitor
                .since(kind, t - 1.0 - 1e-9)
                .take_while(|r| r.time_s <= t + 1e-9)
            {
                power += db_to_amp(r.input_rms_db).powi(2);
                error += r.error;
                n += 1;
            }
            if n == 0 {
                continue;
            }
            let name = format!(
                "{}{}",
                kind.name(),
                if selected == Some(kind) { "*" } else { "" }
            );
            let event = self.pending[kind.index()]
                .take()
                .map(|ev| format!("  {}", describe(&ev)))
                .unwrap_or_default();
            writeln!(
                out,
                "{t:6.1} s  {name:<12}  level {:6.1} dBFS  error {:.3}{event}",
                power_to_db(power / n as f64),
                error / n as f64,
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Run live until `opts.seconds` pass or SIGINT/SIGTERM; the report goes to `out`, notes to
/// stderr.
pub fn run(opts: &LiveOptions, out: &mut impl Write) -> Result<LiveSummary> {
    if let Some(s) = opts.seconds {
        if !(s.is_finite() && s > 0.0) {
            bail!("--seconds must be a positive number, got {s}");
        }
    }
    if let Some(c) = opts.channels {
        if !(1..=MAX_CHANNELS).contains(&c) {
            bail!("--channels {c}: the engine whitens 1 to {MAX_CHANNELS} channels");
        }
    }
    // Before any audio thread exists, so that they all inherit the mask.
    let stop = StopSignals::block();
    let host = opts.host.open()?;
    let input = pick_device(&host, opts.input.as_deref(), true, opts.host)?;
    let output = pick_device(&host, opts.output.as_deref(), false, opts.host)?;
    let in_default = input.default_input_config().map_err(|e| {
        anyhow!(
            "input device {} has no default configuration ({e}); {}",
            device_label(&input),
            no_device_hint(opts.host, host.id().name(), "input")
        )
    })?;
    let rate = in_default.sample_rate();
    let channels = opts
        .channels
        .unwrap_or((in_default.channels() as usize).min(MAX_CHANNELS));
    let in_format = input_format(&input, channels as u16, rate, in_default.sample_format())
        .ok_or_else(|| {
            anyhow!(
                "input device {:?} cannot record {channels} channels at {rate} Hz as f32, \
                     i32 or i16 (see --list-devices; --channels chooses the count)",
                device_name(&input)
            )
        })?;
    // The output: the same channel count if possible, else the device's default count.
    let (out_channels, out_format) = match output_format(&output, channels as u16, rate) {
        Some(f) => (channels, f),
        None => {
            let def = output
                .default_output_config()
                .map(|c| c.channels())
                .unwrap_or(2);
            let f = output_format(&output, def, rate).ok_or_else(|| {
                anyhow!(
                    "output device {:?} cannot play {channels} (or {def}) channels at {rate} Hz \
                     (the input's rate); pick another --output",
                    device_name(&output)
                )
            })?;
            eprintln!(
                "whiten live: the output plays {def} channels ({channels} whitened{})",
                if channels == 1 {
                    ", mono on every channel"
                } else if (def as usize) < channels {
                    ", the last ones are not heard"
                } else {
                    ", the extra ones are silent"
                }
            );
            (def as usize, f)
        }
    };

    let mut params = opts.params.clone();
    if let Some(eta) = opts.eta_per_vector {
        if !(eta.is_finite() && eta > 0.0 && eta < 1.0) {
            bail!("--eta must be in (0, 1), got {eta}");
        }
        let vector_rate = match params.framing {
            Framing::Channels => rate as f64,
            Framing::Spectral => rate as f64 / (params.fft_size / 4).max(1) as f64,
        };
        params.tau_ms = 1000.0 / (eta * vector_rate);
    }
    let mut engine =
        Engine::new(channels, rate as f64, params.clone()).map_err(|e| anyhow!("{e}"))?;
    let (stats_tx, stats_rx) = crossbeam_channel::bounded::<StatsRecord>(STATS_CAPACITY);
    engine.set_stats_sender(Some(StatsSender::new(stats_tx)));
    let latency = engine.latency_samples();

    let (input_end, output_end, counters) = pipeline(engine, out_channels);
    let (err_tx, err_rx) = crossbeam_channel::bounded::<cpal::Error>(64);
    let config = |ch: usize| StreamConfig {
        channels: ch as u16,
        sample_rate: rate,
        buffer_size: cpal::BufferSize::Default,
    };
    let out_stream = build_output(
        &output,
        config(out_channels),
        out_format,
        output_end,
        err_tx.clone(),
    )
    .with_context(|| format!("opening output device {:?}", device_name(&output)))?;
    let in_stream = build_input(&input, config(channels), in_format, input_end, err_tx)
        .with_context(|| format!("opening input device {:?}", device_name(&input)))?;
    out_stream.play().context("starting the output")?;
    in_stream.play().context("starting the input")?;
    let started = Instant::now();

    eprintln!(
        "whiten live: {} {:?} -> {:?}, {channels} ch at {rate} Hz ({in_format} in, {out_format} \
         out), {} framing{}, hearing {} (all whiteners learn); {}",
        host.id().name(),
        device_name(&input),
        device_name(&output),
        match params.framing {
            Framing::Channels => "channels",
            Framing::Spectral => "spectral",
        },
        if latency > 0 {
            format!(" (latency {latency} samples)")
        } else {
            String::new()
        },
        params.selected,
        match opts.seconds {
            Some(s) => format!("stopping after {s} s"),
            None => "Ctrl-C stops".to_string(),
        }
    );
    if host.id() == cpal::HostId::Jack {
        eprintln!(
            "whiten live: JACK ports cpal_client_{pid}_in:in_0.. and \
             cpal_client_{pid}_out:out_0.. (connected to system capture/playback)",
            pid = std::process::id()
        );
    }

    let mut monitor = Monitor::new(MonitorSettings::default());
    let mut printer = Printer::new();
    let mut warned_silent = false;
    let mut fatal = None;
    loop {
        let stop_signal = stop.wait(Duration::from_millis(50));
        monitor.drain(&stats_rx);
        printer.print_ready(&mut monitor, out)?;
        while let Ok(e) = err_rx.try_recv() {
            match e.kind() {
                cpal::ErrorKind::Xrun => {
                    counters.xruns.fetch_add(1, Ordering::Relaxed);
                }
                cpal::ErrorKind::RealtimeDenied => {}
                cpal::ErrorKind::DeviceNotAvailable
                | cpal::ErrorKind::StreamInvalidated
                | cpal::ErrorKind::HostUnavailable => fatal = Some(e),
                _ => {
                    counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("whiten live: stream error: {e}");
                }
            }
        }
        if let Some(e) = fatal.take() {
            bail!("the audio stream stopped: {e}");
        }
        let elapsed = started.elapsed().as_secs_f64();
        if !warned_silent && elapsed > 2.0 && monitor.received() == 0 {
            warned_silent = true;
            eprintln!(
                "whiten live: no audio processed after 2 s ({} underruns): is the input \
                 delivering samples?",
                counters.underruns.load(Ordering::Relaxed)
            );
        }
        if stop_signal || opts.seconds.is_some_and(|s| elapsed >= s) {
            break;
        }
    }
    drop(in_stream);
    drop(out_stream);
    monitor.drain(&stats_rx);
    printer.print_ready(&mut monitor, out)?;
    monitor.finish();
    printer.print_rest(&mut monitor, out)?;
    Ok(counters.summary(rate as f64))
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
