//! The bundled CLAP plugin in a real CLAP host (`clack-host`): load
//! `target/bundled/Interneuron Whitening.clap`, pick mono / stereo / 8-channel layouts through
//! the audio-ports-config extension, activate at 44.1 / 48 / 96 kHz, process real WAV audio in
//! random block sizes on an audio thread while the main thread serves the plugin's callbacks
//! and restart requests, automate every parameter with parameter events, check that the output
//! whitens and stays within ±1, that bypass is the input delayed by the reported latency, and
//! that a saved state restores into a fresh instance.
//!
//! Every scenario runs in a child process (this test binary re-run with `--ignored`), so that an
//! abort inside the plugin — `assert_process_allocs` aborts with SIGABRT on an allocation in
//! `process` — fails the test with a clear message instead of killing the test harness.
//!
//! The bundle is built by `cargo xtask test` (debug, with `assert_process_allocs`) or
//! `cargo xtask bundle interneuron-whitening [--release]`.

use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use interneuron_whitening::wav::{read_wav, write_wav, SampleFormat, WavSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const PLUGIN_ID: &CStr = c"org.interneuron-whitening.whitening";
const SCENARIO_ENV: &str = "INTERNEURON_CLAP_HOST_SCENARIO";
/// Largest block the host hands the plugin.
const MAX_FRAMES: u32 = 1024;
/// The plugin's default output level, −20 dBFS, as an amplitude.
const OUTPUT_GAIN: f64 = 0.1;

// ---------------------------------------------------------------------------------------------
// The tests: each runs one scenario in a child process.
// ---------------------------------------------------------------------------------------------

#[test]
fn stereo_48k_every_circuit_whitens_a_correlated_mixture() {
    run_child("whitening");
}

#[test]
fn mono_44k1_automation_bypass_and_state() {
    run_child("mono");
}

#[test]
fn stereo_48k_automation_bypass_and_state() {
    run_child("stereo");
}

#[test]
fn eight_channels_96k_automation_bypass_and_state() {
    run_child("octo");
}

/// The child side: does nothing unless started by [`run_child`].
#[test]
#[ignore = "run in a child process by the other tests of this file"]
fn scenario_child() {
    let Ok(name) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    match name.as_str() {
        "whitening" => whitening_scenario(),
        "mono" => automation_scenario(1, 44_100.0, 1),
        "stereo" => automation_scenario(2, 48_000.0, 2),
        "octo" => automation_scenario(8, 96_000.0, 3),
        other => panic!("unknown scenario {other}"),
    }
}

fn bundle_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bundled").join("Interneuron Whitening.clap")
}

mod support;
use support::plugin_child;
use support::signals::{check_bounded, correlation, Looper};

fn run_child(scenario: &str) {
    plugin_child::check_bundle(
        &bundle_path(),
        "`cargo xtask bundle interneuron-whitening` (add --release for an optimised one)",
    );
    plugin_child::run_scenario_child("scenario_child", SCENARIO_ENV, scenario);
}

// ---------------------------------------------------------------------------------------------
// A minimal CLAP host.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Shared {
    restart: AtomicBool,
    callback: AtomicBool,
    /// Main-thread callbacks requested so far.
    callbacks: AtomicU32,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callbacks.fetch_add(1, Ordering::SeqCst);
        self.callback.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for Shared {
    fn log(&self, severity: LogSeverity, message: &str) {
        eprintln!("[plugin {severity}] {message}");
    }
}

#[derive(Default)]
struct MainThread {
    latency_changed: Cell<u32>,
}

impl MainThreadHandler<'_> for MainThread {}

impl HostLatencyImpl for MainThread {
    fn changed(&self) {
        self.latency_changed.set(self.latency_changed.get() + 1);
    }
}

struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostLog>().register::<HostLatency>();
    }
}

/// One parameter as the plugin describes it.
#[derive(Clone, Debug)]
struct Param {
    id: ClapId,
    name: String,
    min: f64,
    max: f64,
    default: f64,
    stepped: bool,
    bypass: bool,
}

/// A plugin instance with its audio processor and the host's view of it.
struct Instance {
    instance: PluginInstance<TestHost>,
    processor: Option<StartedPluginAudioProcessor<TestHost>>,
    config: PluginAudioConfiguration,
    channels: usize,
    params: Vec<Param>,
    steady_time: u64,
    restarts: u32,
}

fn load_entry() -> PluginEntry {
    let path = bundle_path();
    // SAFETY: loading a dynamic library runs its initialisers; this is the plugin under test.
    unsafe { PluginEntry::load(&path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e:?}", path.display()))
}

impl Instance {
    /// Instantiate, select the layout with `channels` in and out, list the parameters.
    fn new(entry: &PluginEntry, channels: usize, sample_rate: f64) -> Self {
        let host = HostInfo::new("clap_host test", "interneuron-whitening", "", "0.1.0")
            .expect("host info");
        let mut instance = PluginInstance::<TestHost>::new(
            |_| Shared::default(),
            |_| MainThread::default(),
            entry,
            PLUGIN_ID,
            &host,
        )
        .expect("instantiate the plugin");
        let mut handle = instance.plugin_handle();
        let ports: PluginAudioPortsConfig = handle
            .get_extension()
            .expect("the plugin offers audio-ports-config");
        let mut chosen = None;
        let mut buf = AudioPortsConfigBuffer::new();
        for i in 0..ports.count(&handle) {
            let config = ports.get(&handle, i, &mut buf).expect("port config");
            let ins = config.main_input.map(|p| p.channel_count);
            let outs = config.main_output.map(|p| p.channel_count);
            if ins == Some(channels as u32) && outs == Some(channels as u32) {
                chosen = Some(config.id);
            }
        }
        let id = chosen.unwrap_or_else(|| panic!("no {channels}-channel layout offered"));
        ports.select(&handle, id).expect("select the layout");
        let params = list_params(&mut handle);
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: MAX_FRAMES,
        };
        let mut me = Self {
            instance,
            processor: None,
            config,
            channels,
            params,
            steady_time: 0,
            restarts: 0,
        };
        me.activate();
        me
    }

    fn activate(&mut self) {
        let stopped = self
            .instance
            .activate(|_, _| (), self.config)
            .expect("activate");
        self.processor = Some(stopped.start_processing().expect("start processing"));
    }

    fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            let stopped = p.stop_processing();
            self.instance.deactivate(stopped);
        }
    }

    fn param(&self, name: &str) -> Param {
        self.params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .clone()
    }

    /// The value the plugin's text parser gives `text` for the parameter `name`.
    fn text_value(&mut self, name: &str, text: &str) -> (ClapId, f64) {
        let id = self.param(name).id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params extension");
        let c = CString::new(text).unwrap();
        let v = ext
            .text_to_value(&handle, id, &c)
            .unwrap_or_else(|| panic!("{name}: the plugin does not parse {text:?}"));
        (id, v)
    }

    fn values(&mut self) -> Vec<(String, f64)> {
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params extension");
        self.params
            .iter()
            .map(|p| {
                let v = ext.get_value(&handle, p.id).expect("parameter value");
                (p.name.clone(), v)
            })
            .collect()
    }

    fn latency(&mut self) -> u32 {
        let handle = self.instance.plugin_handle();
        let ext: PluginLatency = handle.get_extension().expect("latency extension");
        ext.get(&handle)
    }

    fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("state extension");
        let mut bytes = Vec::new();
        ext.save(&handle, &mut bytes).expect("save state");
        bytes
    }

    fn load_state(&mut self, bytes: &[u8]) {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("state extension");
        ext.load(&handle, &mut &bytes[..]).expect("load state");
    }

    /// Serve what the plugin asked of the main thread: callbacks, and restarts (deactivate and
    /// activate again, as a DAW does after a latency change).
    fn serve_main_thread(&mut self) {
        if self
            .instance
            .access_shared_handler(|s| s.callback.swap(false, Ordering::SeqCst))
        {
            self.instance.call_on_main_thread_callback();
        }
        if self.processor.is_some()
            && self
                .instance
                .access_shared_handler(|s| s.restart.swap(false, Ordering::SeqCst))
        {
            self.deactivate();
            self.activate();
            self.restarts += 1;
        }
    }

    /// Process `input` (planar) on an audio thread in random block sizes, with parameter
    /// `events` (frame, id, value), while this thread serves the plugin's main-thread requests.
    fn process(
        &mut self,
        input: &[Vec<f32>],
        events: &[(usize, ClapId, f64)],
        rng: &mut ChaCha8Rng,
    ) -> Vec<Vec<f32>> {
        let n = self.channels;
        assert_eq!(input.len(), n);
        let frames = input[0].len();
        // Random block sizes: mostly large, sometimes tiny, always ≤ MAX_FRAMES.
        let mut blocks = Vec::new();
        let mut pos = 0;
        while pos < frames {
            let len = if rng.random_bool(0.15) {
                rng.random_range(1..=32)
            } else {
                rng.random_range(33..=MAX_FRAMES as usize)
            }
            .min(frames - pos);
            blocks.push((pos, len));
            pos += len;
        }
        let mut processor = self.processor.take().expect("active processor");
        let mut steady = self.steady_time;
        let (processor, output) = std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut output = vec![vec![0.0f32; frames]; n];
                let mut ins = vec![vec![0.0f32; MAX_FRAMES as usize]; n];
                let mut outs = vec![vec![0.0f32; MAX_FRAMES as usize]; n];
                let mut in_ports = AudioPorts::with_capacity(n, 1);
                let mut out_ports = AudioPorts::with_capacity(n, 1);
                let mut event_buf = EventBuffer::with_capacity(64);
                let mut out_event_buf = EventBuffer::with_capacity(64);
                for &(start, len) in &blocks {
                    for (b, x) in ins.iter_mut().zip(input) {
                        b[..len].copy_from_slice(&x[start..start + len]);
                    }
                    event_buf.clear();
                    out_event_buf.clear();
                    for &(frame, id, value) in events {
                        if (start..start + len).contains(&frame) {
                            let e = ParamValueEvent::new(
                                (frame - start) as u32,
                                id,
                                Pckn::match_all(),
                                value,
                            );
                            event_buf.push(&e);
                        }
                    }
                    let in_audio = in_ports.with_input_buffers([AudioPortBuffer {
                        latency: 0,
                        channels: AudioPortBufferType::f32_input_only(
                            ins.iter_mut()
                                .map(|b| InputChannel::variable(&mut b[..len])),
                        ),
                    }]);
                    let mut out_audio = out_ports.with_output_buffers([AudioPortBuffer {
                        latency: 0,
                        channels: AudioPortBufferType::f32_output_only(
                            outs.iter_mut().map(|b| &mut b[..len]),
                        ),
                    }]);
                    let input_events = InputEvents::from_buffer(&event_buf);
                    let mut output_events = OutputEvents::from_buffer(&mut out_event_buf);
                    processor
                        .process(
                            &in_audio,
                            &mut out_audio,
                            &input_events,
                            &mut output_events,
                            Some(steady),
                            None,
                        )
                        .expect("process");
                    steady += len as u64;
                    for (o, b) in output.iter_mut().zip(&outs) {
                        o[start..start + len].copy_from_slice(&b[..len]);
                    }
                }
                (processor, output)
            });
            while !worker.is_finished() {
                if self
                    .instance
                    .access_shared_handler(|s| s.callback.swap(false, Ordering::SeqCst))
                {
                    self.instance.call_on_main_thread_callback();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            worker.join().expect("audio thread panicked")
        });
        self.processor = Some(processor);
        self.steady_time = steady;
        self.serve_main_thread();
        output
    }

    /// Process successive pieces of `source` (looped) until `done` holds, at most `limit_s`
    /// seconds of wall time; returns the audio processed and the output.
    fn process_until(
        &mut self,
        source: &Looper,
        rng: &mut ChaCha8Rng,
        limit_s: f64,
        mut done: impl FnMut(&mut Self) -> bool,
    ) {
        let started = Instant::now();
        let piece = (self.config.sample_rate * 0.05) as usize;
        while !done(self) {
            assert!(
                started.elapsed().as_secs_f64() < limit_s,
                "condition not reached within {limit_s} s"
            );
            let input = source.next(piece);
            let out = self.process(&input, &[], rng);
            check_bounded(&out, "while waiting");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.deactivate();
    }
}

fn list_params(handle: &mut PluginMainThreadHandle) -> Vec<Param> {
    let ext: PluginParams = handle.get_extension().expect("the plugin offers params");
    let mut buf = ParamInfoBuffer::new();
    (0..ext.count(handle))
        .map(|i| {
            let info = ext.get_info(handle, i, &mut buf).expect("param info");
            Param {
                id: info.id,
                name: String::from_utf8_lossy(info.name).into_owned(),
                min: info.min_value,
                max: info.max_value,
                default: info.default_value,
                stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
                bypass: info.flags.contains(ParamInfoFlags::IS_BYPASS),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Audio material and measurements.
// ---------------------------------------------------------------------------------------------

/// A correlated mixture of `n` independent Gaussian sources, `secs` long, at about −20 dBFS
/// per channel, written to a WAV file and read back (the plugin gets real file audio).
fn mixture_wav(dir: &std::path::Path, n: usize, rate: f64, secs: f64, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let frames = (rate * secs) as usize;
    // Mixing matrix: a strong common component plus independent parts, so the channels are
    // correlated (condition number of C around 10–100).
    let mix: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let common = if j == 0 { 1.0 } else { 0.0 };
                    let own = if i == j { 0.4 } else { 0.0 };
                    let noise: f64 = StandardNormal.sample(&mut rng);
                    common + own + 0.15 * noise
                })
                .collect()
        })
        .collect();
    let mut interleaved = vec![0.0f32; frames * n];
    let mut s = vec![0.0f64; n];
    for t in 0..frames {
        for v in s.iter_mut() {
            *v = StandardNormal.sample(&mut rng);
        }
        for i in 0..n {
            let x: f64 = (0..n).map(|j| mix[i][j] * s[j]).sum();
            interleaved[t * n + i] = x as f32;
        }
    }
    let rms = (interleaved.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
        / interleaved.len() as f64)
        .sqrt();
    for v in interleaved.iter_mut() {
        *v = (*v as f64 * 0.1 / rms) as f32;
    }
    let path = dir.join(format!("mixture_{n}ch_{}.wav", rate as u32));
    let spec = WavSpec {
        sample_rate: rate as u32,
        channels: n as u16,
        format: SampleFormat::Float32,
    };
    write_wav(&path, spec, &interleaved).expect("write the test WAV");
    let (read_spec, samples) = read_wav(&path).expect("read the test WAV back");
    assert_eq!(read_spec, spec);
    (0..n)
        .map(|c| samples.iter().skip(c).step_by(n).copied().collect())
        .collect()
}

/// `‖C/g² − I‖_F / √n` for the output covariance `C` over `range`.
fn whitening_error(out: &[Vec<f32>], range: std::ops::Range<usize>) -> (f64, Vec<f64>) {
    let n = out.len();
    let len = range.len() as f64;
    let g2 = OUTPUT_GAIN * OUTPUT_GAIN;
    let mut err = 0.0;
    let mut diag = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let c: f64 = range
                .clone()
                .map(|t| out[i][t] as f64 * out[j][t] as f64)
                .sum::<f64>()
                / len;
            let d = c / g2 - if i == j { 1.0 } else { 0.0 };
            err += d * d;
            if i == j {
                diag.push(10.0 * c.log10());
            }
        }
    }
    ((err / n as f64).sqrt(), diag)
}

fn input_correlation(input: &[Vec<f32>]) -> f64 {
    correlation(&input[0], &input[1])
}

// ---------------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------------

/// Stereo at 48 kHz with default parameters: after adaptation every circuit's output
/// covariance is output-level²·I.
fn whitening_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let rate = 48_000.0;
    let input = mixture_wav(dir.path(), 2, rate, 15.0, 11);
    let rho = input_correlation(&input);
    println!("input correlation {rho:.3}");
    assert!(rho.abs() > 0.5, "the test mixture must be correlated");
    let entry = load_entry();
    let factory = entry
        .get_plugin_factory()
        .expect("the entry has a plugin factory");
    let descriptor = factory
        .plugin_descriptors()
        .find(|d| d.id() == Some(PLUGIN_ID))
        .expect("the factory lists the plugin by its reverse-DNS id");
    let features: Vec<String> = descriptor
        .features()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    println!("CLAP features {features:?}");
    for f in ["audio-effect", "analyzer", "stereo", "surround"] {
        assert!(features.iter().any(|g| g == f), "CLAP feature {f} missing");
    }
    let mut plugin = Instance::new(&entry, 2, rate);
    assert_eq!(plugin.latency(), 0, "channels framing has no latency");
    let bypass: Vec<&Param> = plugin.params.iter().filter(|p| p.bypass).collect();
    assert!(
        bypass.len() == 1 && bypass[0].name == "Bypass",
        "exactly one parameter, Bypass, is the host's bypass: {bypass:?}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let circuit = plugin.param("Circuit");
    let sec = |s: f64| (s * rate) as usize;
    // Interneuron (default) until 10 s, direct from 10 s, baseline from 12.5 s.
    let events = [
        (
            sec(10.0),
            circuit.id,
            plugin.text_value("Circuit", "Direct").1,
        ),
        (
            sec(12.5),
            circuit.id,
            plugin.text_value("Circuit", "Baseline (ZCA)").1,
        ),
    ];
    let started = Instant::now();
    let out = plugin.process(&input, &events, &mut rng);
    println!(
        "processed 15 s of stereo in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    check_bounded(&out, "whitening");
    for (name, range) in [
        ("interneuron", sec(8.0)..sec(10.0)),
        ("direct", sec(10.5)..sec(12.5)),
        ("baseline", sec(13.0)..sec(15.0)),
    ] {
        let (err, diag) = whitening_error(&out, range);
        println!("{name}: whitening error {err:.4}, output levels {diag:.2?} dBFS");
        assert!(
            err < 0.15,
            "{name}: output covariance is not output-level²·I (error {err:.3})"
        );
    }
    let (err_in, _) = whitening_error(&input, 0..sec(2.0));
    assert!(
        err_in > 0.5,
        "the input itself must be far from white (error {err_in:.3})"
    );

    // The learned state is saved with the project (published about once a second and stored
    // by a background task), and a fresh instance loading it starts whitened, while one
    // without it still has to learn.
    std::thread::sleep(Duration::from_millis(300));
    let state = plugin.save_state();
    let text = String::from_utf8_lossy(&state);
    assert!(
        text.contains("learned-state") && text.contains("direct_m"),
        "the saved state carries the learned circuits ({} bytes)",
        state.len()
    );
    drop(plugin);
    let start: Vec<Vec<f32>> = input.iter().map(|c| c[..sec(0.5)].to_vec()).collect();
    let mut restored = Instance::new(&entry, 2, rate);
    restored.deactivate();
    restored.load_state(&state);
    restored.activate();
    let out_restored = restored.process(&start, &[], &mut rng);
    drop(restored);
    let mut fresh = Instance::new(&entry, 2, rate);
    let baseline = fresh.text_value("Circuit", "Baseline (ZCA)");
    let out_fresh = fresh.process(&start, &[(0, baseline.0, baseline.1)], &mut rng);
    let (err_restored, _) = whitening_error(&out_restored, sec(0.05)..sec(0.5));
    let (err_fresh, _) = whitening_error(&out_fresh, sec(0.05)..sec(0.5));
    println!("first 0.5 s: whitening error restored {err_restored:.3}, fresh {err_fresh:.3}");
    assert!(
        err_restored < 0.15 && err_fresh > 2.0 * err_restored,
        "a restored instance starts whitened: error {err_restored:.3} (fresh {err_fresh:.3})"
    );
}

/// One layout at one rate: defaults whiten; random automation of every parameter keeps the
/// output finite and within ±1 (and never makes the plugin allocate in `process`); defaults
/// again whiten again; bypass is the input delayed by the reported latency; the state restores
/// into a fresh instance.
fn automation_scenario(n: usize, rate: f64, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let source = Looper::new(mixture_wav(dir.path(), n, rate, 6.0, 100 + seed));
    let entry = load_entry();
    let mut plugin = Instance::new(&entry, n, rate);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let secs = |s: f64| (s * rate) as usize;

    // 1. Defaults whiten.
    let out = plugin.process(&source.next(secs(4.0)), &[], &mut rng);
    check_bounded(&out, "defaults");
    let (err, diag) = whitening_error(&out, secs(3.0)..secs(4.0));
    println!("{n} ch @ {rate} Hz, defaults: whitening error {err:.4}, levels {diag:.2?} dBFS");
    assert!(err < 0.2, "defaults: output is not white (error {err:.3})");

    // 2. Every parameter, automated mid-stream to random values, several rounds.
    let params = plugin.params.clone();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    for required in [
        "Circuit",
        "Framing",
        "Adaptation time",
        "Interneurons",
        "Init scale",
        "Re-initialise",
        "Reference level",
        "Output level",
        "Dry/wet",
        "Noise floor",
        "FFT size",
        "Bands",
        "Learning",
        "Bypass",
    ] {
        assert!(names.contains(&required), "parameter {required} is missing");
    }
    let started = Instant::now();
    for round in 0..3 {
        let piece = secs(0.3);
        let mut events: Vec<(usize, ClapId, f64)> = params
            .iter()
            .map(|p| {
                let mut v = rng.random_range(p.min..=p.max);
                if p.stepped {
                    v = v.round();
                }
                (rng.random_range(0..piece), p.id, v)
            })
            .collect();
        events.sort_by_key(|e| e.0);
        let out = plugin.process(&source.next(piece), &events, &mut rng);
        check_bounded(&out, &format!("automation round {round}"));
        // Let background rebuilds land and run with the random settings for a while.
        let out = plugin.process(&source.next(secs(0.5)), &[], &mut rng);
        check_bounded(&out, &format!("after automation round {round}"));
    }
    println!(
        "automation rounds took {:.2} s; so far {} main-thread callbacks, {} latency changes \
         notified, {} restarts served",
        started.elapsed().as_secs_f64(),
        plugin
            .instance
            .access_shared_handler(|s| s.callbacks.load(Ordering::SeqCst)),
        plugin.instance.access_handler(|m| m.latency_changed.get()),
        plugin.restarts
    );

    // 3. Back to the defaults (and a fresh re-initialisation): whitens again.
    let reinit = plugin.param("Re-initialise").id;
    let mut events: Vec<(usize, ClapId, f64)> =
        params.iter().map(|p| (0, p.id, p.default)).collect();
    events.push((secs(0.1), reinit, 1.0));
    events.push((secs(0.2), reinit, 0.0));
    let out = plugin.process(&source.next(secs(0.3)), &events, &mut rng);
    check_bounded(&out, "back to defaults");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 0);
    // Give the background thread time to deliver the default engine if the structure differed
    // in something other than the framing (building one takes well under a millisecond).
    let settle = Instant::now();
    plugin.process_until(&source, &mut rng, 30.0, |_| {
        settle.elapsed() > Duration::from_millis(200)
    });
    let out = plugin.process(&source.next(secs(4.0)), &[], &mut rng);
    check_bounded(&out, "defaults again");
    let (err, _) = whitening_error(&out, secs(3.0)..secs(4.0));
    println!("defaults after automation: whitening error {err:.4}");
    assert!(
        err < 0.2,
        "defaults again: output is not white (error {err:.3})"
    );

    // 4. Spectral framing: the latency is the FFT size, and bypass is the input delayed by it.
    let (framing, spectral) = plugin.text_value("Framing", "Spectral");
    let (fft, fft_1024) = plugin.text_value("FFT size", "1024");
    let out = plugin.process(
        &source.next(secs(0.1)),
        &[(0, framing, spectral), (0, fft, fft_1024)],
        &mut rng,
    );
    check_bounded(&out, "to spectral");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 1024);
    let latency = plugin.latency() as usize;
    let bypass = plugin.param("Bypass").id;
    let input = source.next(secs(1.0));
    let out = plugin.process(&input, &[(0, bypass, 1.0)], &mut rng);
    // After the 20 ms crossfade the output is exactly the input, `latency` samples later.
    for c in 0..n {
        for t in secs(0.1)..input[c].len() {
            assert_eq!(
                out[c][t],
                input[c][t - latency],
                "bypass: channel {c} sample {t} is not the input delayed by {latency}"
            );
        }
    }
    let out = plugin.process(&source.next(secs(1.0)), &[(0, bypass, 0.0)], &mut rng);
    check_bounded(&out, "un-bypass");

    // 5. State: distinctive values survive save → load into a fresh instance.
    let settings = [
        ("Circuit", "Direct"),
        ("Framing", "Spectral"),
        ("Adaptation time", "1234 ms"),
        ("Interneurons", "12"),
        ("Init scale", "100"),
        ("Reference level", "-30"),
        ("Output level", "-26"),
        ("Dry/wet", "80%"),
        ("Noise floor", "-100"),
        ("FFT size", "2048"),
        ("Bands", "48"),
    ];
    let events: Vec<(usize, ClapId, f64)> = settings
        .iter()
        .map(|(name, text)| {
            let (id, v) = plugin.text_value(name, text);
            (0, id, v)
        })
        .collect();
    let out = plugin.process(&source.next(secs(0.2)), &events, &mut rng);
    check_bounded(&out, "state settings");
    plugin.process_until(&source, &mut rng, 30.0, |p| p.latency() == 2048);
    println!(
        "main-thread callbacks {}, latency changes notified {}, restarts served {}",
        plugin
            .instance
            .access_shared_handler(|s| s.callbacks.load(Ordering::SeqCst)),
        plugin.instance.access_handler(|m| m.latency_changed.get()),
        plugin.restarts
    );
    let saved_values = plugin.values();
    let state = plugin.save_state();
    println!("state: {} bytes", state.len());
    drop(plugin);

    let mut restored = Instance::new(&entry, n, rate);
    restored.deactivate();
    restored.load_state(&state);
    restored.activate();
    let values = restored.values();
    for ((name, want), (_, got)) in saved_values.iter().zip(&values) {
        assert!(
            (want - got).abs() < 1e-6,
            "{name}: restored {got}, saved {want}"
        );
    }
    assert_eq!(
        restored.latency(),
        2048,
        "the restored instance reports the restored FFT size as latency on activation"
    );
    let out = restored.process(&source.next(secs(1.0)), &[], &mut rng);
    check_bounded(&out, "restored instance");
}
