//! Processing as a host drives it: blocks of varied size on an audio thread, with parameter
//! automation and a process context, and zero-sample parameter flushes. Every bus the plugin
//! declares gets its buffers, as a DAW hands them: the sidechain bus silence unless a test
//! feeds it a key ([`Instance::process_keyed`]).

use super::param_changes::ParamChanges;
use super::{Event, Instance, MAX_FRAMES};
use crate::support::signals::{check_bounded, Looper};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use vst3::Steinberg::kResultOk;
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, IAudioProcessor, IAudioProcessorTrait,
    IParameterChanges, ParamID, ProcessContext, ProcessContext_::StatesAndFlags_, ProcessData,
    ProcessModes_, SymbolicSampleSizes_,
};
use vst3::{ComPtr, ComWrapper};

impl Instance {
    /// Process `input` (planar, any length) in varied block sizes on an audio thread, with
    /// automation `events` (sorted by frame). With `in_place` the host hands the plugin the
    /// same buffers for input and output. Returns the output.
    pub fn process(
        &mut self,
        input: &[Vec<f32>],
        events: &[Event],
        rng: &mut ChaCha8Rng,
        in_place: bool,
    ) -> Vec<Vec<f32>> {
        self.process_keyed(input, None, events, rng, in_place)
    }

    /// [`Instance::process`] with `key` (planar, as long as `input`) on the sidechain bus.
    pub fn process_keyed(
        &mut self,
        input: &[Vec<f32>],
        key: Option<&[Vec<f32>]>,
        events: &[Event],
        rng: &mut ChaCha8Rng,
        in_place: bool,
    ) -> Vec<Vec<f32>> {
        assert!(self.processing, "process without setProcessing(true)");
        let n = self.channels;
        assert_eq!(input.len(), n);
        let frames = input[0].len();
        if let Some(k) = key {
            assert_eq!(k.len(), n);
            assert!(k.iter().all(|c| c.len() == frames));
        }
        // Varied block sizes: mostly large, sometimes tiny, sometimes the maximum.
        let mut blocks = Vec::new();
        let mut pos = 0;
        while pos < frames {
            let len = match rng.random_range(0..20) {
                0..=2 => rng.random_range(1..=32),
                3 => MAX_FRAMES,
                _ => rng.random_range(33..=MAX_FRAMES),
            }
            .min(frames - pos);
            blocks.push((pos, len));
            pos += len;
        }
        let processor = &self.processor;
        let start_time = self.time;
        let rate = self.rate;
        let output = std::thread::scope(|s| {
            s.spawn(move || {
                audio_thread(
                    processor, n, rate, input, key, events, &blocks, start_time, in_place,
                )
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        self.time += frames as i64;
        self.serve_restarts();
        output
    }

    /// A zero-sample process call carrying only parameter changes (a host's parameter flush).
    pub fn flush_params(&mut self, changes: &[(ParamID, f64)]) {
        let processor = &self.processor;
        let n = self.channels;
        std::thread::scope(|s| {
            s.spawn(move || {
                let params = ComWrapper::new(ParamChanges::new(16));
                for &(id, v) in changes {
                    params.add(id, 0, v);
                }
                let mut in_ptrs = vec![std::ptr::null_mut::<f32>(); n];
                let mut key_ptrs = vec![std::ptr::null_mut::<f32>(); n];
                let mut out_ptrs = vec![std::ptr::null_mut::<f32>(); n];
                let mut in_buses = [bus(&mut in_ptrs), bus(&mut key_ptrs)];
                let mut out_bus = bus(&mut out_ptrs);
                let mut data = ProcessData {
                    processMode: ProcessModes_::kRealtime as i32,
                    symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
                    numSamples: 0,
                    numInputs: 2,
                    numOutputs: 1,
                    inputs: in_buses.as_mut_ptr(),
                    outputs: &mut out_bus,
                    inputParameterChanges: params
                        .as_com_ref::<IParameterChanges>()
                        .unwrap()
                        .as_ptr(),
                    outputParameterChanges: std::ptr::null_mut(),
                    inputEvents: std::ptr::null_mut(),
                    outputEvents: std::ptr::null_mut(),
                    processContext: std::ptr::null_mut(),
                };
                // SAFETY: everything `data` points to lives across the call.
                let r = unsafe { processor.process(&mut data) };
                assert_eq!(r, kResultOk, "parameter flush (0-sample process)");
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
    }

    /// Process successive pieces of `source` until `done` holds (at most `limit_s` of wall time).
    pub fn process_until(
        &mut self,
        source: &Looper,
        rng: &mut ChaCha8Rng,
        limit_s: f64,
        mut done: impl FnMut(&Self) -> bool,
    ) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed().as_secs_f64() < limit_s,
                "condition not reached within {limit_s} s"
            );
            let out = self.process(&source.next((self.rate * 0.05) as usize), &[], rng, false);
            check_bounded(&out, "while waiting");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// An audio bus over the channel buffers `ptrs` (32-bit).
fn bus(ptrs: &mut [*mut f32]) -> AudioBusBuffers {
    AudioBusBuffers {
        numChannels: ptrs.len() as i32,
        silenceFlags: 0,
        __field0: AudioBusBuffers__type0 {
            channelBuffers32: ptrs.as_mut_ptr(),
        },
    }
}

/// The audio thread of [`Instance::process`].
#[allow(clippy::too_many_arguments)]
fn audio_thread(
    processor: &ComPtr<IAudioProcessor>,
    n: usize,
    rate: f64,
    input: &[Vec<f32>],
    key: Option<&[Vec<f32>]>,
    events: &[Event],
    blocks: &[(usize, usize)],
    start_time: i64,
    in_place: bool,
) -> Vec<Vec<f32>> {
    let frames = input[0].len();
    let mut output = vec![vec![0.0f32; frames]; n];
    let mut ins = vec![vec![0.0f32; MAX_FRAMES]; n];
    let mut keys = vec![vec![0.0f32; MAX_FRAMES]; n];
    let mut outs = vec![vec![0.0f32; MAX_FRAMES]; n];
    let mut in_ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); n];
    let mut key_ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); n];
    let mut out_ptrs: Vec<*mut f32> = vec![std::ptr::null_mut(); n];
    let params_in = ComWrapper::new(ParamChanges::new(32));
    let params_out = ComWrapper::new(ParamChanges::new(32));
    let mut next_event = 0;
    for &(start, len) in blocks {
        for (b, x) in ins.iter_mut().zip(input) {
            b[..len].copy_from_slice(&x[start..start + len]);
        }
        if let Some(k) = key {
            for (b, x) in keys.iter_mut().zip(k) {
                b[..len].copy_from_slice(&x[start..start + len]);
            }
        }
        if !in_place {
            // Garbage in the output buffers: the plugin must overwrite every sample.
            for b in outs.iter_mut() {
                b[..len].fill(f32::NAN);
            }
        }
        params_in.clear();
        params_out.clear();
        while next_event < events.len() && events[next_event].0 < start + len {
            let (frame, id, value) = events[next_event];
            assert!(frame >= start, "events must be sorted by frame");
            params_in.add(id, frame - start, value);
            next_event += 1;
        }
        for (p, b) in in_ptrs.iter_mut().zip(ins.iter_mut()) {
            *p = b.as_mut_ptr();
        }
        for (p, b) in key_ptrs.iter_mut().zip(keys.iter_mut()) {
            *p = b.as_mut_ptr();
        }
        for (p, b) in out_ptrs.iter_mut().zip(outs.iter_mut()) {
            *p = b.as_mut_ptr();
        }
        if in_place {
            out_ptrs.copy_from_slice(&in_ptrs);
        }
        let mut in_buses = [bus(&mut in_ptrs), bus(&mut key_ptrs)];
        let mut out_bus = bus(&mut out_ptrs);
        // SAFETY: ProcessContext is plain data; all-zero is a valid (empty) value.
        let mut context: ProcessContext = unsafe { std::mem::zeroed() };
        context.state = StatesAndFlags_::kPlaying
            | StatesAndFlags_::kTempoValid
            | StatesAndFlags_::kTimeSigValid
            | StatesAndFlags_::kContTimeValid;
        context.sampleRate = rate;
        context.projectTimeSamples = start_time + start as i64;
        context.continousTimeSamples = start_time + start as i64;
        context.tempo = 120.0;
        context.timeSigNumerator = 4;
        context.timeSigDenominator = 4;
        let mut data = ProcessData {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            numSamples: len as i32,
            numInputs: 2,
            numOutputs: 1,
            inputs: in_buses.as_mut_ptr(),
            outputs: &mut out_bus,
            inputParameterChanges: params_in
                .as_com_ref::<IParameterChanges>()
                .unwrap()
                .as_ptr(),
            outputParameterChanges: params_out
                .as_com_ref::<IParameterChanges>()
                .unwrap()
                .as_ptr(),
            inputEvents: std::ptr::null_mut(),
            outputEvents: std::ptr::null_mut(),
            processContext: &mut context,
        };
        // SAFETY: every buffer and object `data` points to lives across the call.
        let r = unsafe { processor.process(&mut data) };
        assert_eq!(r, kResultOk, "process() of a {len}-sample block at {start}");
        let written = if in_place { &ins } else { &outs };
        for (o, b) in output.iter_mut().zip(written) {
            o[start..start + len].copy_from_slice(&b[..len]);
        }
        assert_eq!(
            params_out.points(),
            0,
            "the plugin sent output parameter changes"
        );
    }
    assert_eq!(next_event, events.len(), "events beyond the input");
    output
}
