//! The cpal streams around the live pipeline: one input and one output stream whose
//! callbacks own [`LiveInput`] and [`LiveOutput`], and the host's stream errors, which
//! cpal reports on its own threads and the main thread collects.

use super::devices::{device_name, Devices};
use super::pipeline::{LiveCounters, LiveInput, LiveOutput};
use anyhow::{bail, Context, Result};
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{SampleFormat, StreamConfig};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Stream errors the channel holds between two looks of the main thread (every 50 ms).
const ERROR_CAPACITY: usize = 64;

/// The running input and output streams. Dropping them stops the audio threads, the input
/// first (fields drop in declaration order; [`stop`](Self::stop) says it explicitly).
pub(super) struct Streams {
    /// The input stream; its callback owns the [`LiveInput`].
    input: cpal::Stream,
    /// The output stream; its callback owns the [`LiveOutput`] and with it the engine.
    output: cpal::Stream,
    /// The host's errors from both streams, sent with `try_send` from cpal's threads.
    errors: Receiver<cpal::Error>,
    /// When both streams had started: `--seconds` and the silent-input warning count from here.
    pub(super) started: Instant,
}

impl Streams {
    /// Open both devices at the input's rate with the chosen channel counts and sample
    /// formats, then start the output and then the input (the output plays silence until the
    /// ring holds enough frames).
    pub(super) fn start(devices: &Devices, input: LiveInput, output: LiveOutput) -> Result<Self> {
        let (err_tx, err_rx) = crossbeam_channel::bounded::<cpal::Error>(ERROR_CAPACITY);
        let config = |ch: usize| StreamConfig {
            channels: ch as u16,
            sample_rate: devices.rate,
            buffer_size: cpal::BufferSize::Default,
        };
        let out_stream = build_output(
            &devices.output,
            config(devices.out_channels),
            devices.out_format,
            output,
            err_tx.clone(),
        )
        .with_context(|| format!("opening output device {:?}", device_name(&devices.output)))?;
        let in_stream = build_input(
            &devices.input,
            config(devices.channels),
            devices.in_format,
            input,
            err_tx,
        )
        .with_context(|| format!("opening input device {:?}", device_name(&devices.input)))?;
        out_stream.play().context("starting the output")?;
        in_stream.play().context("starting the input")?;
        Ok(Self {
            input: in_stream,
            output: out_stream,
            errors: err_rx,
            started: Instant::now(),
        })
    }

    /// Take the host's stream errors reported so far: xruns and other non-fatal errors are
    /// counted (the latter also printed), a denied realtime priority is ignored, and a lost
    /// device or host or an invalidated stream ends the run with an error.
    pub(super) fn check_errors(&self, counters: &LiveCounters) -> Result<()> {
        let mut fatal = None;
        while let Ok(e) = self.errors.try_recv() {
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
        if let Some(e) = fatal {
            bail!("the audio stream stopped: {e}");
        }
        Ok(())
    }

    /// Stop the input, then the output.
    pub(super) fn stop(self) {
        let Self { input, output, .. } = self;
        drop(input);
        drop(output);
    }
}

fn build_input(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    mut input: LiveInput,
    errors: Sender<cpal::Error>,
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
    errors: Sender<cpal::Error>,
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
