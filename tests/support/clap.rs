//! A minimal CLAP host for the tests, on `clack-host`: it loads the bundled plugin, selects a
//! layout through the audio-ports-config extension, activates it, processes planar audio in
//! random block sizes on an audio thread (with parameter events) while the calling thread
//! serves the plugin's main-thread callbacks and restart requests, and saves and loads state.
//! Like a CLAP host must, it hands the plugin a buffer for every port it declares: the
//! sidechain input gets silence unless a test feeds it a key ([`Instance::process_keyed`]).

use crate::support::signals::{check_bounded, Looper};
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{ParamInfoBuffer, ParamInfoFlags, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The plugin's CLAP id.
pub const PLUGIN_ID: &CStr = c"org.interneuron-whitening.whitening";
/// Largest block the host hands the plugin.
pub const MAX_FRAMES: u32 = 1024;

/// The bundle in `target/bundled` (or `$CARGO_TARGET_DIR`).
pub fn bundle_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bundled").join("Interneuron Whitening.clap")
}

/// The host's handler for calls from any thread.
#[derive(Default)]
pub struct Shared {
    /// A restart was requested and not yet served.
    pub restart: AtomicBool,
    /// A main-thread callback was requested and not yet made.
    pub callback: AtomicBool,
    /// Main-thread callbacks requested so far.
    pub callbacks: AtomicU32,
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

/// The host's main-thread handler.
#[derive(Default)]
pub struct MainThread {
    /// Latency changes the plugin notified so far.
    pub latency_changed: Cell<u32>,
    /// Whether the host is inside `clap_plugin::activate`: the only place the plugin may call
    /// `latency.changed()` (CLAP's latency extension).
    activating: Cell<bool>,
    /// `latency.changed()` calls made outside `activate` — a breach of the CLAP specification
    /// that strict validators (clap-validator's `param-fuzz-bounds`) fail.
    pub latency_changed_outside_activate: Cell<u32>,
}

impl MainThreadHandler<'_> for MainThread {}

impl HostLatencyImpl for MainThread {
    fn changed(&self) {
        self.latency_changed.set(self.latency_changed.get() + 1);
        if !self.activating.get() {
            self.latency_changed_outside_activate
                .set(self.latency_changed_outside_activate.get() + 1);
        }
    }
}

/// The host type: its handlers and the extensions it offers (log, latency).
pub struct TestHost;

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
pub struct Param {
    /// The id parameter events and the params extension address it by.
    pub id: ClapId,
    /// Its name, by which the tests find it.
    pub name: String,
    /// Lowest plain value.
    pub min: f64,
    /// Highest plain value.
    pub max: f64,
    /// The default plain value.
    pub default: f64,
    /// Whether only integer values are valid.
    pub stepped: bool,
    /// Whether this is the host's bypass parameter.
    pub bypass: bool,
}

/// A plugin instance with its audio processor and the host's view of it.
pub struct Instance {
    /// The plugin instance, with the host's handlers.
    pub instance: PluginInstance<TestHost>,
    /// The started audio processor while active; handed to the audio thread for each run.
    pub processor: Option<StartedPluginAudioProcessor<TestHost>>,
    /// Sample rate and block sizes, for every activation.
    pub config: PluginAudioConfiguration,
    /// Channels of the selected layout (in and out).
    pub channels: usize,
    /// The parameters as the plugin listed them after instantiation.
    pub params: Vec<Param>,
    /// Steady time in samples, continued across `process` calls.
    pub steady_time: u64,
    /// Restarts (deactivate → activate) served for the plugin.
    pub restarts: u32,
    /// Times the latency the plugin reports changed while it was active (between an
    /// activation and the next deactivation) — CLAP allows a change only at activation.
    pub latency_changes_while_active: u32,
}

/// Load the bundle.
pub fn load_entry() -> PluginEntry {
    let path = bundle_path();
    // SAFETY: loading a dynamic library runs its initialisers; this is the plugin under test.
    unsafe { PluginEntry::load(&path) }
        .unwrap_or_else(|e| panic!("cannot load {}: {e:?}", path.display()))
}

impl Instance {
    /// Instantiate, select the layout with `channels` in and out, list the parameters.
    pub fn new(entry: &PluginEntry, channels: usize, sample_rate: f64) -> Self {
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
            latency_changes_while_active: 0,
        };
        me.activate();
        me
    }

    /// Activate with the instance's configuration and start processing.
    pub fn activate(&mut self) {
        self.instance.access_handler(|m| m.activating.set(true));
        let activated = self.instance.activate(|_, _| (), self.config);
        self.instance.access_handler(|m| m.activating.set(false));
        let stopped = activated
            .unwrap_or_else(|e| panic!("activate at {} Hz: {e:?}", self.config.sample_rate));
        self.processor = Some(stopped.start_processing().expect("start processing"));
    }

    /// The sample rate the instance is activated at.
    pub fn sample_rate(&self) -> f64 {
        self.config.sample_rate
    }

    /// The plugin's display of the plain value `value` of parameter `id`, as a host shows it
    /// (`params.value_to_text`; `None` if the plugin has none).
    pub fn value_to_text(&mut self, id: ClapId, value: f64) -> Option<String> {
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params extension");
        let mut buf = [0u8; 256];
        let text = ext.value_to_text(&handle, id, value, &mut buf).ok()?;
        let len = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        Some(String::from_utf8_lossy(&text[..len]).into_owned())
    }

    /// The plain value the plugin's parser gives `text` for parameter `id`
    /// (`params.text_to_value`; `None` if it does not parse it).
    pub fn text_to_value(&mut self, id: ClapId, text: &str) -> Option<f64> {
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params extension");
        let c = CString::new(text).ok()?;
        ext.text_to_value(&handle, id, &c)
    }

    /// Stop processing and deactivate (if active).
    pub fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            let stopped = p.stop_processing();
            self.instance.deactivate(stopped);
        }
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Param {
        self.params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .clone()
    }

    /// The value the plugin's text parser gives `text` for the parameter `name`.
    pub fn text_value(&mut self, name: &str, text: &str) -> (ClapId, f64) {
        let id = self.param(name).id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().expect("params extension");
        let c = CString::new(text).unwrap();
        let v = ext
            .text_to_value(&handle, id, &c)
            .unwrap_or_else(|| panic!("{name}: the plugin does not parse {text:?}"));
        (id, v)
    }

    /// (name, value) of every parameter, as the plugin reports them.
    pub fn values(&mut self) -> Vec<(String, f64)> {
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

    /// The latency the plugin reports, in samples.
    pub fn latency(&mut self) -> u32 {
        let handle = self.instance.plugin_handle();
        let ext: PluginLatency = handle.get_extension().expect("latency extension");
        ext.get(&handle)
    }

    /// The plugin's saved state.
    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("state extension");
        let mut bytes = Vec::new();
        ext.save(&handle, &mut bytes).expect("save state");
        bytes
    }

    /// Load a saved state.
    pub fn load_state(&mut self, bytes: &[u8]) {
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
    /// The sidechain input gets silence.
    pub fn process(
        &mut self,
        input: &[Vec<f32>],
        events: &[(usize, ClapId, f64)],
        rng: &mut ChaCha8Rng,
    ) -> Vec<Vec<f32>> {
        self.process_keyed(input, None, events, rng)
    }

    /// [`Instance::process`] with `key` (planar, as long as `input`) on the sidechain input.
    pub fn process_keyed(
        &mut self,
        input: &[Vec<f32>],
        key: Option<&[Vec<f32>]>,
        events: &[(usize, ClapId, f64)],
        rng: &mut ChaCha8Rng,
    ) -> Vec<Vec<f32>> {
        let n = self.channels;
        assert_eq!(input.len(), n);
        if let Some(k) = key {
            assert_eq!(k.len(), n);
            assert!(k.iter().all(|c| c.len() == input[0].len()));
        }
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
        let latency_at_start = self.latency();
        let (processor, output) = std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let mut output = vec![vec![0.0f32; frames]; n];
                let mut ins = vec![vec![0.0f32; MAX_FRAMES as usize]; n];
                let mut outs = vec![vec![0.0f32; MAX_FRAMES as usize]; n];
                let mut ports = BlockPorts::new(n);
                for &(start, len) in &blocks {
                    for (b, x) in ins.iter_mut().zip(input) {
                        b[..len].copy_from_slice(&x[start..start + len]);
                    }
                    if let Some(k) = key {
                        for (b, x) in ports.key.iter_mut().zip(k) {
                            b[..len].copy_from_slice(&x[start..start + len]);
                        }
                    }
                    for &(frame, id, value) in events {
                        if (start..start + len).contains(&frame) {
                            let e = ParamValueEvent::new(
                                (frame - start) as u32,
                                id,
                                Pckn::match_all(),
                                value,
                            );
                            ports.events.push(&e);
                        }
                    }
                    ports.process(&mut processor, &mut ins, &mut outs, len, steady);
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
                if self.latency() != latency_at_start {
                    self.latency_changes_while_active += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            worker.join().expect("audio thread panicked")
        });
        if self.latency() != latency_at_start {
            self.latency_changes_while_active += 1;
        }
        self.processor = Some(processor);
        self.steady_time = steady;
        self.serve_main_thread();
        output
    }

    /// Process successive pieces of `source` (looped) until `done` holds, at most `limit_s`
    /// seconds of wall time.
    pub fn process_until(
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

/// Every parameter the plugin lists.
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

/// The port and event buffers of one audio thread, allocated before its first block, and the
/// plumbing of one `process` call over them.
pub struct BlockPorts {
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    /// The sidechain input's samples of the next block (silence unless a test writes a key).
    pub key: Vec<Vec<f32>>,
    /// Parameter events of the next block (frame within the block, id, value).
    pub events: EventBuffer,
    out_events: EventBuffer,
}

impl BlockPorts {
    /// Buffers for `channels` in and out.
    pub fn new(channels: usize) -> Self {
        Self {
            in_ports: AudioPorts::with_capacity(2 * channels, 2),
            out_ports: AudioPorts::with_capacity(channels, 1),
            key: vec![vec![0.0; MAX_FRAMES as usize]; channels],
            events: EventBuffer::with_capacity(64),
            out_events: EventBuffer::with_capacity(64),
        }
    }

    /// One `process` call on the first `len` frames of `ins` and `outs` at steady time
    /// `steady`, with the events queued in `self.events`; clears the event buffers afterwards.
    pub fn process(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TestHost>,
        ins: &mut [Vec<f32>],
        outs: &mut [Vec<f32>],
        len: usize,
        steady: u64,
    ) {
        for k in self.key.iter_mut().filter(|k| k.len() < len) {
            k.resize(len, 0.0);
        }
        let in_audio = self.in_ports.with_input_buffers([
            AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(input_channels(ins, len)),
            },
            AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(input_channels(&mut self.key, len)),
            },
        ]);
        let mut out_audio = self.out_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(outs.iter_mut().map(|b| &mut b[..len])),
        }]);
        processor
            .process(
                &in_audio,
                &mut out_audio,
                &InputEvents::from_buffer(&self.events),
                &mut OutputEvents::from_buffer(&mut self.out_events),
                Some(steady),
                None,
            )
            .expect("process");
        self.events.clear();
        self.out_events.clear();
    }
}

/// The first `len` samples of each buffer as one input port's channels (one function, so that
/// every port's iterator has the same type).
fn input_channels(
    bufs: &mut [Vec<f32>],
    len: usize,
) -> impl Iterator<Item = InputChannel<'_, f32>> + '_ {
    bufs.iter_mut()
        .map(move |b| InputChannel::variable(&mut b[..len]))
}
