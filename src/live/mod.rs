//! `whiten live`: the engine on a live input through `cpal` (docs/DESIGN.md §8.3, §12.3), with the
//! readaptation race printed as text.
//!
//! **Threads.** Three threads take part, and only the main thread may allocate, lock, block
//! or print:
//!
//! ```text
//! input callback ──frames──▶ SPSC ring ──▶ output callback: Engine::process ──▶ output device
//!                                                    │ stats records (try_send)
//!                                                    ▼
//!                             main thread: Monitor → Printer (text), stop signals, stream errors
//! ```
//!
//! **Audio path.** cpal gives an input and an output stream (on JACK: two clients,
//! `cpal_client_<pid>_in` with ports `in_0..` and `cpal_client_<pid>_out` with ports
//! `out_0..`; `devices.rs` chooses them). The input callback converts its interleaved samples
//! to `f32` and pushes whole frames into a preallocated lock-free single-producer
//! single-consumer ring ([`Ring`]); the output callback pulls frames from it, de-interleaves
//! them into preallocated per-channel buffers, runs [`Engine::process`] and interleaves the
//! result out ([`pipeline()`] builds both ends, [`LiveInput`] and [`LiveOutput`]; `streams.rs`
//! hands them to cpal). Neither callback allocates, locks or blocks. The output starts once
//! the ring holds one request's worth of frames; when it later finds too few (an
//! **underrun**, e.g. clock drift between two sound cards) it plays silence, counts it, and
//! waits for twice as much before resuming (up to [`MAX_PREFILL_FRAMES`]), so latency grows
//! only as much as the devices need. A full ring drops input frames (**overruns**, counted).
//!
//! **Monitor.** The engine sends its stats records over a bounded `crossbeam-channel`
//! (`try_send`, never blocking) to the main thread, which feeds a [`Monitor`] and prints one
//! line per second of audio per whitener (`printer.rs`). The main thread also waits for
//! SIGINT/SIGTERM (`signals.rs`) and collects the host's stream errors between two reports.
//!
//! [`Monitor`]: crate::monitor::Monitor

mod devices;
mod pipeline;
mod printer;
mod ring;
mod signals;
mod streams;

pub use devices::{list_devices, HostChoice};
pub use pipeline::{
    pipeline, LiveCounters, LiveInput, LiveOutput, MAX_PREFILL_FRAMES, RING_FRAMES,
};
pub use ring::{Ring, RingConsumer, RingProducer};

use crate::engine::{
    Engine, EngineError, EngineParams, Framing, StatsRecord, StatsSender, MAX_CHANNELS,
};
use anyhow::{anyhow, bail, Result};
use crossbeam_channel::Receiver;
use devices::{device_name, Devices};
use printer::Report;
use signals::StopSignals;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;
use streams::Streams;

/// Stats records the channel holds (the main thread drains it every 50 ms; the engine sends
/// three records per 10 ms).
const STATS_CAPACITY: usize = 4096;
/// How long the main thread waits for a stop signal between two reports.
const POLL: Duration = Duration::from_millis(50);

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

/// Run live until `opts.seconds` pass or SIGINT/SIGTERM; the report goes to `out`, notes to
/// stderr.
pub fn run(opts: &LiveOptions, out: &mut impl Write) -> Result<LiveSummary> {
    check_options(opts)?;
    // Before any audio thread exists, so that they all inherit the mask.
    let stop = StopSignals::block();
    let devices = Devices::open(opts)?;
    let params = engine_params(opts, devices.channels, devices.rate)?;
    let (engine, stats) = engine_with_stats(&devices, &params)?;
    let latency = engine.latency_samples();
    let mut report = Report::new(stats);
    let (input_end, output_end, counters) = pipeline(engine, devices.out_channels);
    let streams = Streams::start(&devices, input_end, output_end)?;
    announce(opts, &devices, &params, latency);
    watch(&stop, &streams, &counters, &mut report, opts.seconds, out)?;
    streams.stop();
    report.finish(out)?;
    Ok(counters.summary(devices.rate as f64))
}

/// Reject a `--seconds` or `--channels` the run cannot honour, before any device is opened.
fn check_options(opts: &LiveOptions) -> Result<()> {
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
    Ok(())
}

/// The engine parameters for `channels` at the device's `rate`: `opts.params`, with `--eta`
/// turned into the adaptation time constant once the rate is known, and checked against the
/// ranges valid at that rate (the messages name the option the user typed).
fn engine_params(opts: &LiveOptions, channels: usize, rate: u32) -> Result<EngineParams> {
    let mut params = opts.params.clone();
    let rate = rate as f64;
    if let Some(eta) = opts.eta_per_vector {
        params
            .set_eta(eta, channels, rate)
            .map_err(|e| anyhow!(e.for_flag()))?;
    }
    params.validate(channels, rate).map_err(|e| match e {
        EngineError::OutOfRange(r) => anyhow!(r.for_flag()),
        e => anyhow!("{e}"),
    })?;
    Ok(params)
}

/// The engine for the chosen devices, sending its stats records to the returned receiver.
fn engine_with_stats(
    devices: &Devices,
    params: &EngineParams,
) -> Result<(Engine, Receiver<StatsRecord>)> {
    params
        .selected
        .check_heard(devices.channels)
        .map_err(|e| anyhow!("{e}"))?;
    let mut engine = Engine::new(devices.channels, devices.rate as f64, params.clone())
        .map_err(|e| anyhow!("{e}"))?;
    let (stats_tx, stats_rx) = crossbeam_channel::bounded::<StatsRecord>(STATS_CAPACITY);
    engine.set_stats_sender(Some(StatsSender::new(stats_tx)));
    Ok((engine, stats_rx))
}

/// Say on stderr what runs: devices, channels, rate, formats, framing, latency, the whitener
/// heard, how the run stops, and on JACK the ports to connect.
fn announce(opts: &LiveOptions, devices: &Devices, params: &EngineParams, latency: usize) {
    let Devices {
        host,
        input,
        output,
        rate,
        channels,
        in_format,
        out_format,
        ..
    } = devices;
    eprintln!(
        "whiten live: {} {:?} -> {:?}, {channels} ch at {rate} Hz ({in_format} in, {out_format} \
         out), {} framing{}, hearing {} (all whiteners learn); {}",
        host.id().name(),
        device_name(input),
        device_name(output),
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
}

/// The main thread while the streams run: every [`POLL`], report the seconds of audio the
/// stats complete and collect the streams' errors, until a stop signal or `seconds` of wall
/// clock. Warns once if no audio has been processed after 2 s.
fn watch(
    stop: &StopSignals,
    streams: &Streams,
    counters: &LiveCounters,
    report: &mut Report,
    seconds: Option<f64>,
    out: &mut impl Write,
) -> Result<()> {
    let mut warned_silent = false;
    loop {
        let stop_signal = stop.wait(POLL);
        report.update(out)?;
        streams.check_errors(counters)?;
        let elapsed = streams.started.elapsed().as_secs_f64();
        if !warned_silent && elapsed > 2.0 && report.received() == 0 {
            warned_silent = true;
            eprintln!(
                "whiten live: no audio processed after 2 s ({} underruns): is the input \
                 delivering samples?",
                counters.underruns.load(Ordering::Relaxed)
            );
        }
        if stop_signal || seconds.is_some_and(|s| elapsed >= s) {
            return Ok(());
        }
    }
}
