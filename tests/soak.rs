//! The soak (issue 11, item 6; docs/DESIGN.md §7): the real CLAP bundle — the debug build
//! with `assert_process_allocs`, which aborts on any allocation inside `process` — driven in
//! the `clack-host` test host (`tests/support/clap.rs`) for a given wall time with everything a
//! session can throw at it:
//!
//! * block sizes from 1 to 4096 samples, on an audio thread;
//! * restarts at random sample rates, odd ones included (1234.5678 Hz, 8 kHz, 22.05 kHz,
//!   384 kHz, 1234567.75 Hz, random fractional rates), and random channel layouts (1–16);
//! * random automation of every parameter, structural ones (framing, FFT size, bands,
//!   interneurons) included, often snapped to their bounds, at random frames within blocks;
//! * input bursts of correlated noise at random levels, exact silence, full-scale clipping,
//!   NaN, ±Inf, subnormals and a mix of them;
//! * the restarts the plugin requests (latency changes), served as a DAW does;
//! * the state saved through the CLAP state extension every few seconds and loaded back.
//!
//! It asserts, throughout: no NaN or Inf out and every sample within ±1 (at once, naming the
//! block and the parameters set), activation succeeds at every rate, no allocation in
//! `process` (the bundle aborts, and the parent reports the signal), the resident set size of
//! the process stays under a bound after the warm-up, and every saved learned state is finite
//! and loads. The warm-up tours the largest structure (spectral, FFT 8192, 513 bands, 64
//! interneurons) in every layout, then runs the random phase for a quarter of the rest (15 s …
//! 2 min); its peak resident set plus max(64 MiB, 25 %) plus two engines of the largest
//! structure (measured in the tour: up to three can be alive at once, the heard one, the one
//! fading out and one being built) is the bound from then on. At the end:
//! no subnormal sample came out (counted throughout, so one run reports them all). Progress
//! lines report what was exercised, and the slowest `process` call and activation.
//!
//! Ignored by plain `cargo test` (it is long): `cargo xtask test` runs 60 s of it and
//! `cargo xtask soak --minutes N` any length; both set `INTERNEURON_SOAK_SECONDS` and run
//! `cargo test --test soak -- --ignored --exact soak_clap_bundle`. `INTERNEURON_SOAK_SEED`
//! changes the seed (printed at the start; thread timing makes runs differ anyway).

mod support;
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::clap::{bundle_path, load_entry, BlockPorts, Instance, Param};

const SECONDS_ENV: &str = "INTERNEURON_SOAK_SECONDS";
const SEED_ENV: &str = "INTERNEURON_SOAK_SEED";
const CHILD_ENV: &str = "INTERNEURON_SOAK_CHILD";
/// Largest block handed to the plugin (also the activation's maximum).
const MAX_BLOCK: usize = 4096;
/// Rates a restart picks from (besides random fractional ones): the usual, and the odd ones
/// strict validators use.
const RATES: [f64; 13] = [
    1234.5678,
    8_000.0,
    11_025.0,
    22_050.0,
    32_000.0,
    44_100.0,
    48_000.0,
    88_200.0,
    96_000.0,
    192_000.0,
    384_000.0,
    768_000.0,
    1_234_567.75,
];
/// Channel layouts the plugin offers.
const LAYOUTS: [usize; 6] = [1, 2, 4, 6, 8, 16];
/// Resident memory allowed above the peak of the warm-up, at least (or a quarter of that peak):
/// allocator slack. A leak of a few tens of kilobytes per second crosses it within a long soak.
const RSS_MARGIN: u64 = 64 << 20;

/// The test `cargo xtask soak` and `cargo xtask test` run: the soak in a child process, whose
/// output streams through, so an abort (an allocation in `process`) fails with its signal.
#[test]
#[ignore = "long: run by `cargo xtask test` (60 s) and `cargo xtask soak --minutes N`"]
fn soak_clap_bundle() {
    let seconds: f64 = std::env::var(SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    support::plugin_child::check_bundle(
        &bundle_path(),
        "`cargo xtask bundle interneuron-whitening --lib --features assert_process_allocs`",
    );
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "soak_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, seconds.to_string())
        .status()
        .expect("start the soak's child process");
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        panic!(
            "the soak's host process was killed by signal {signal}{}",
            if signal == libc::SIGABRT {
                " (SIGABRT: with assert_process_allocs this means the plugin allocated inside \
                 process(), \"memory allocation of N bytes failed\" above; or a panic crossed \
                 the plugin boundary)"
            } else {
                ""
            }
        );
    }
    assert!(status.success(), "the soak failed ({status}); see above");
}

/// The child side: does nothing unless started by [`soak_clap_bundle`].
#[test]
#[ignore = "run in a child process by soak_clap_bundle"]
fn soak_child() {
    let Ok(seconds) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seconds: f64 = seconds.parse().expect("soak seconds");
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    Soak::new(seconds, seed).run();
}

// ---------------------------------------------------------------------------------------------
// Hostile input.
// ---------------------------------------------------------------------------------------------

/// What the input carries for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Burst {
    /// Correlated noise at a random level (−60 … 0 dBFS), clipped to ±1.
    Noise,
    /// Exact zeros.
    Silence,
    /// Loud noise clipped to ±1 (full-scale square-ish).
    Clipping,
    /// Noise with NaN samples sprinkled in (sometimes every sample).
    NaN,
    /// Noise with ±Inf samples sprinkled in.
    Inf,
    /// Subnormal samples only (±1e-45 … 1e-38).
    Subnormal,
    /// Every kind of sample at random.
    Mixed,
}

const BURSTS: [(Burst, f64); 7] = [
    (Burst::Noise, 0.55),
    (Burst::Silence, 0.12),
    (Burst::Clipping, 0.09),
    (Burst::NaN, 0.06),
    (Burst::Inf, 0.06),
    (Burst::Subnormal, 0.08),
    (Burst::Mixed, 0.04),
];

/// The input generator: bursts of random kind and length, any channel count.
struct Hostile {
    /// Seeded: the input is one reproducible sequence whatever the block sizes.
    rng: ChaCha8Rng,
    /// What the input carries now.
    burst: Burst,
    /// Samples left in the current burst.
    left: usize,
    /// Amplitude of the noise in the current burst.
    level: f32,
    /// Fraction of non-finite samples in a NaN/Inf burst.
    density: f64,
}

impl Hostile {
    fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            burst: Burst::Noise,
            left: 0,
            level: 0.1,
            density: 0.0,
        }
    }

    /// Fill `bufs[c][..len]`; returns the frames of each burst kind used, in order.
    fn fill(&mut self, bufs: &mut [Vec<f32>], len: usize, rate: f64, tally: &mut [u64; 7]) {
        let mut t = 0;
        while t < len {
            if self.left == 0 {
                self.next_burst(rate);
            }
            let n = self.left.min(len - t);
            for i in t..t + n {
                let common: f32 = StandardNormal.sample(&mut self.rng);
                for (c, b) in bufs.iter_mut().enumerate() {
                    let own: f32 = StandardNormal.sample(&mut self.rng);
                    // Within ±1, as a host's audio is: only NaN and Inf leave the range.
                    let noise = (self.level * (common + (0.3 + 0.1 * c as f32) * own) * 0.7)
                        .clamp(-1.0, 1.0);
                    b[i] = self.sample(noise);
                }
            }
            tally[self.burst as usize] += n as u64;
            self.left -= n;
            t += n;
        }
    }

    fn next_burst(&mut self, rate: f64) {
        let mut u: f64 = self.rng.random();
        self.burst = BURSTS
            .iter()
            .find(|(_, p)| {
                u -= p;
                u < 0.0
            })
            .map_or(Burst::Noise, |(b, _)| *b);
        // 5 ms … 1.5 s.
        let seconds = 0.005 * 300f64.powf(self.rng.random::<f64>());
        self.left = ((seconds * rate) as usize).max(1);
        self.level = 10f32.powf(-self.rng.random_range(0.0f32..3.0));
        self.density = if self.rng.random_bool(0.2) {
            1.0
        } else {
            10f64.powf(-self.rng.random_range(0.0..4.0))
        };
    }

    fn sample(&mut self, noise: f32) -> f32 {
        let special = |rng: &mut ChaCha8Rng, kind: u32| -> f32 {
            let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            match kind {
                0 => f32::NAN,
                1 => sign * f32::INFINITY,
                2 => sign * f32::from_bits(rng.random_range(1..0x0080_0000)),
                3 => sign,
                _ => 0.0,
            }
        };
        match self.burst {
            Burst::Noise => noise,
            Burst::Silence => 0.0,
            Burst::Clipping => (noise * 1000.0).clamp(-1.0, 1.0),
            Burst::NaN if self.rng.random_bool(self.density) => f32::NAN,
            Burst::Inf if self.rng.random_bool(self.density) => special(&mut self.rng, 1),
            Burst::NaN | Burst::Inf => noise,
            Burst::Subnormal => special(&mut self.rng, 2),
            Burst::Mixed => {
                let kind = self.rng.random_range(0..6);
                if kind == 5 {
                    noise
                } else {
                    special(&mut self.rng, kind)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The soak.
// ---------------------------------------------------------------------------------------------

/// What the soak did, for the report.
#[derive(Default)]
struct Tally {
    /// `process` calls made.
    blocks: u64,
    /// Frames processed.
    frames: u64,
    /// The largest block handed to the plugin (shows the 4096 end was reached).
    largest_block: usize,
    /// The smallest block (shows the 1-frame end was reached).
    smallest_block: usize,
    /// Parameter events sent.
    events: u64,
    /// Of which to framing, FFT size, bands or interneurons (engine rebuilds).
    structural_events: u64,
    /// Input frames of each [`Burst`] kind, in [`BURSTS`] order.
    burst_frames: [u64; 7],
    /// Restarts the plugin asked for (latency changes) and the host served.
    restarts_requested: u32,
    /// Re-activations at another sample rate.
    rate_changes: u32,
    /// Re-activations with another channel layout.
    layout_changes: u32,
    /// The distinct rates activated at.
    rates: Vec<f64>,
    /// States saved (and loaded back).
    states_saved: u32,
    /// Saved states that carried a learned state, checked finite.
    learned_states_checked: u32,
    /// Subnormal output samples (none allowed; counted so one run reports them all).
    subnormal_out: u64,
    /// Where the first one came out.
    first_subnormal: Option<String>,
    /// Peak resident set size during the warm-up: the base of the memory bound.
    rss_warm: u64,
    /// Largest growth of the resident set while the largest engine of a layout ran, over the
    /// same layout in the channels framing: what one engine of the largest structure holds.
    rss_engine: u64,
    /// Peak resident set size over the whole soak.
    rss_peak: u64,
    /// The last value sent for each parameter (name, plain value), for failure messages.
    settings: Vec<(String, f64)>,
    /// The kind of input the failing block ended in, for failure messages.
    burst: Option<Burst>,
    /// The longest `process` call (wall seconds) and what it was.
    slowest_block: (f64, String),
    /// The longest activation (wall seconds) and what it was.
    slowest_activation: (f64, String),
}

impl Tally {
    fn record(&mut self, params: &[Param], id: ClapId, value: f64) {
        let name = &params.iter().find(|p| p.id == id).expect("known id").name;
        match self.settings.iter_mut().find(|(n, _)| n == name) {
            Some(s) => s.1 = value,
            None => self.settings.push((name.clone(), value)),
        }
    }
}

struct Soak {
    /// The instance under test (declared first: dropped before the entry it came from).
    plugin: Instance,
    /// The loaded bundle.
    _entry: PluginEntry,
    /// Seeded choices of the host: segment lengths, rates, layouts, events.
    rng: ChaCha8Rng,
    /// The input generator, continued across segments and activations.
    input: Hostile,
    /// When the soak started (its duration is wall time).
    started: Instant,
    /// How long to run, in wall-clock seconds.
    seconds: f64,
    /// What has been done so far.
    tally: Tally,
}

impl Soak {
    fn new(seconds: f64, seed: u64) -> Self {
        println!(
            "soak: {seconds} s, seed {seed}, bundle {}",
            bundle_path().display()
        );
        let entry = load_entry();
        let mut plugin = Instance::new(&entry, 2, 48_000.0);
        plugin.deactivate();
        plugin.config.max_frames_count = MAX_BLOCK as u32;
        activate(&mut plugin);
        Self {
            plugin,
            _entry: entry,
            rng: ChaCha8Rng::seed_from_u64(seed),
            input: Hostile::new(seed ^ 0x1234),
            started: Instant::now(),
            seconds,
            tally: Tally {
                smallest_block: usize::MAX,
                ..Default::default()
            },
        }
    }

    fn run(mut self) {
        self.warm_up();
        let toured = self.elapsed();
        // Then random automation for a quarter of the rest (15 s … 2 min): rapid structural
        // changes keep several engines alive at once (the one heard, the one fading out,
        // fresh ones in flight, retired ones waiting to be dropped off the audio thread), and
        // the allocator keeps what it once held.
        let random_warm_up = ((self.seconds - toured) / 4.0).clamp(15.0, 120.0);
        let mut next_report = 10.0;
        let mut next_state = 0.0;
        let mut bound = None;
        while self.elapsed() < self.seconds {
            if bound.is_none() && self.elapsed() >= toured + random_warm_up {
                // Up to three engines of the largest structure can be alive at once (the
                // running one, the one fading out, one being built), while the warm-up may have
                // seen one or two.
                let b = self.tally.rss_warm
                    + RSS_MARGIN.max(self.tally.rss_warm / 4)
                    + 2 * self.tally.rss_engine;
                println!(
                    "soak: warm-up done after {:.1} s (tour {toured:.1} s), resident peak {} \
                     MiB, largest engine {} MiB; bound from now on {} MiB",
                    self.elapsed(),
                    self.tally.rss_warm >> 20,
                    self.tally.rss_engine >> 20,
                    b >> 20
                );
                bound = Some(b);
            }
            let wall = self.rng.random_range(0.05..1.0);
            self.segment(wall, &[], true);
            self.between_segments();
            if self.elapsed() >= next_state {
                self.save_and_load_state();
                next_state = self.elapsed() + 5.0;
            }
            let rss = rss_bytes();
            self.tally.rss_peak = self.tally.rss_peak.max(rss);
            match bound {
                None => self.tally.rss_warm = self.tally.rss_warm.max(rss),
                Some(bound) => assert!(
                    rss <= bound,
                    "resident set {} MiB after {:.0} s exceeds the bound {} MiB (warm-up peak \
                     {} MiB)",
                    rss >> 20,
                    self.elapsed(),
                    bound >> 20,
                    self.tally.rss_warm >> 20
                ),
            }
            if self.elapsed() >= next_report {
                self.report("progress");
                next_report += if self.seconds > 120.0 { 60.0 } else { 10.0 };
            }
        }
        self.report("done");
        let t = &self.tally;
        assert_eq!(
            t.subnormal_out,
            0,
            "{} subnormal output samples (the first: {})",
            t.subnormal_out,
            t.first_subnormal.as_deref().unwrap_or("")
        );
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Tour the largest configurations of every layout (spectral, the largest FFT, every band,
    /// the most interneurons; then the channels framing with the most interneurons), so the
    /// resident set seen afterwards has a fair peak to compare with.
    fn warm_up(&mut self) {
        let params = self.plugin.params.clone();
        let max_of = |name: &str| {
            let p = find(&params, name);
            (p.id, p.max)
        };
        let (framing, spectral) = max_of("Framing");
        let largest = [
            (framing, spectral),
            max_of("FFT size"),
            max_of("Bands"),
            max_of("Interneurons"),
        ];
        for channels in LAYOUTS {
            let started = Instant::now();
            let frames = self.tally.frames;
            self.reconfigure(channels, 48_000.0);
            let events: Vec<(usize, ClapId, f64)> =
                largest.iter().map(|&(id, v)| (0, id, v)).collect();
            self.segment(0.3, &events, false);
            // Until the spectral engine is in (its latency reported) and ran a while.
            let until = Instant::now() + Duration::from_secs(30);
            while self.latency() != 8192 {
                assert!(
                    Instant::now() < until,
                    "warm-up: the largest spectral engine for {channels} channels never arrived"
                );
                self.segment(0.1, &[], false);
                self.serve_restart();
            }
            self.segment(0.5, &[], false);
            let with_largest = rss_bytes();
            let channels_framing = find(&params, "Framing");
            self.segment(0.3, &[(0, framing, channels_framing.min)], false);
            self.serve_restart();
            self.segment(0.3, &[], false);
            let without = rss_bytes();
            self.tally.rss_engine = self
                .tally
                .rss_engine
                .max(with_largest.saturating_sub(without));
            self.tally.rss_warm = self.tally.rss_warm.max(with_largest).max(without);
            println!(
                "soak: warm-up, {channels} channels at the largest structure: {:.1} s, {:.2} s \
                 of audio, resident {} MiB",
                started.elapsed().as_secs_f64(),
                (self.tally.frames - frames) as f64 / 48_000.0,
                rss_bytes() >> 20
            );
        }
        self.save_and_load_state();
        self.tally.rss_warm = self.tally.rss_warm.max(rss_bytes());
    }

    fn latency(&mut self) -> u32 {
        self.plugin.latency()
    }

    /// Deactivate, select `channels`, activate at `rate` (which must succeed). This serves a
    /// pending restart request too.
    fn reconfigure(&mut self, channels: usize, rate: f64) {
        let requested = self
            .plugin
            .instance
            .access_shared_handler(|s| s.restart.swap(false, Ordering::SeqCst));
        self.tally.restarts_requested += u32::from(requested);
        self.plugin.deactivate();
        if channels != self.plugin.channels {
            select_layout(&mut self.plugin, channels);
            self.tally.layout_changes += 1;
        }
        if rate != self.plugin.config.sample_rate {
            self.tally.rate_changes += 1;
            if !self.tally.rates.contains(&rate) {
                self.tally.rates.push(rate);
            }
        }
        self.plugin.config.sample_rate = rate;
        self.timed_activation();
    }

    fn timed_activation(&mut self) {
        let took = activate(&mut self.plugin);
        if took > self.tally.slowest_activation.0 {
            self.tally.slowest_activation = (
                took,
                format!(
                    "{} channels at {} Hz",
                    self.plugin.channels, self.plugin.config.sample_rate
                ),
            );
        }
    }

    /// A restart the plugin requested (latency change): deactivate and activate as a DAW does.
    fn serve_restart(&mut self) {
        let requested = self
            .plugin
            .instance
            .access_shared_handler(|s| s.restart.swap(false, Ordering::SeqCst));
        if requested {
            self.tally.restarts_requested += 1;
            self.plugin.deactivate();
            self.timed_activation();
        }
    }

    /// Between segments: the plugin's restart, and at random a new rate or layout.
    fn between_segments(&mut self) {
        self.serve_restart();
        let r: f64 = self.rng.random();
        if r < 0.15 {
            let rate = if self.rng.random_bool(0.7) {
                RATES[self.rng.random_range(0..RATES.len())]
            } else {
                // A random fractional rate, 1 kHz … 400 kHz, log-uniform.
                1000.0 * 400f64.powf(self.rng.random::<f64>())
            };
            let channels = self.plugin.channels;
            self.reconfigure(channels, rate);
        } else if r < 0.20 {
            let channels = LAYOUTS[self.rng.random_range(0..LAYOUTS.len())];
            let rate = self.plugin.config.sample_rate;
            self.reconfigure(channels, rate);
        }
    }

    /// Save the state through the CLAP state extension, check the learned state in it is
    /// finite, and load it back.
    fn save_and_load_state(&mut self) {
        let state = self.plugin.save_state();
        self.tally.states_saved += 1;
        // nice-plug's CLAP state: the JSON's length (8 bytes, little-endian), then the JSON.
        let json = &state[8..];
        assert_eq!(
            u64::from_le_bytes(state[..8].try_into().unwrap()) as usize,
            json.len(),
            "the saved state is framed by its length"
        );
        let v: Value = serde_json::from_slice(json).expect("the saved state is JSON");
        if let Some(Value::String(learned)) = v.pointer("/fields/learned-state") {
            let learned: Value = serde_json::from_str(learned).expect("the learned state is JSON");
            if !learned.is_null() {
                check_finite(&learned, "learned-state");
                self.tally.learned_states_checked += 1;
            }
        }
        let handle = self.plugin.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().expect("state extension");
        ext.load(&handle, &mut &state[..])
            .expect("the state just saved loads");
    }

    /// Process for about `wall` seconds of wall time, serving the restarts the plugin asks for
    /// on the way (stop, deactivate, activate, go on) as a DAW does. `first_events` go into the
    /// first block; afterwards events are random if `automate`.
    fn segment(&mut self, wall: f64, first_events: &[(usize, ClapId, f64)], automate: bool) {
        let end = Instant::now() + Duration::from_secs_f64(wall);
        self.run_audio(wall, first_events, automate);
        loop {
            self.serve_restart();
            let left = end.saturating_duration_since(Instant::now()).as_secs_f64();
            if left <= 0.0 {
                break;
            }
            self.run_audio(left, &[], automate);
        }
    }

    /// Run the audio thread for about `wall` seconds of wall time, or until the plugin asks
    /// for a restart, while this thread serves the plugin's main-thread callbacks.
    fn run_audio(&mut self, wall: f64, first_events: &[(usize, ClapId, f64)], automate: bool) {
        let mut processor = self.plugin.processor.take().expect("active");
        let channels = self.plugin.channels;
        let rate = self.plugin.config.sample_rate;
        let params = self.plugin.params.clone();
        let mut steady = self.plugin.steady_time;
        let stop = AtomicBool::new(false);
        let seed: u64 = self.rng.random();
        let input = &mut self.input;
        let tally = &mut self.tally;
        let (processor, steady) = std::thread::scope(|s| {
            let stop = &stop;
            let worker = s.spawn(move || {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut ins = vec![vec![0.0f32; MAX_BLOCK]; channels];
                let mut outs = vec![vec![0.0f32; MAX_BLOCK]; channels];
                let mut ports = BlockPorts::new(channels);
                let mut first = true;
                let started = Instant::now();
                // At least one block, so that `first_events` always reach the plugin.
                while first
                    || !stop.load(Ordering::Relaxed) && started.elapsed().as_secs_f64() < wall
                {
                    let len = block_size(&mut rng);
                    input.fill(&mut ins, len, rate, &mut tally.burst_frames);
                    let mut events: Vec<(u32, ClapId, f64)> = if first {
                        first_events
                            .iter()
                            .map(|&(f, id, v)| ((f.min(len - 1)) as u32, id, v))
                            .collect()
                    } else if automate {
                        random_events(&params, len, &mut rng, tally)
                    } else {
                        Vec::new()
                    };
                    first = false;
                    events.sort_by_key(|e| e.0);
                    tally.burst = Some(input.burst);
                    for &(frame, id, value) in &events {
                        tally.record(&params, id, value);
                        ports.events.push(&ParamValueEvent::new(
                            frame,
                            id,
                            Pckn::match_all(),
                            value,
                        ));
                    }
                    let called = Instant::now();
                    ports.process(&mut processor, &mut ins, &mut outs, len, steady);
                    let took = called.elapsed().as_secs_f64();
                    if took > tally.slowest_block.0 {
                        tally.slowest_block = (
                            took,
                            format!(
                                "{len} frames, {channels} channels at {rate} Hz, input ending \
                                 in {:?}, parameters set so far {:?}",
                                input.burst, tally.settings
                            ),
                        );
                    }
                    check_block(&outs, len, steady, rate, tally);
                    steady += len as u64;
                    tally.blocks += 1;
                    tally.frames += len as u64;
                    tally.largest_block = tally.largest_block.max(len);
                    tally.smallest_block = tally.smallest_block.min(len);
                }
                (processor, steady)
            });
            while !worker.is_finished() {
                let (callback, restart) = self.plugin.instance.access_shared_handler(|s| {
                    (
                        s.callback.swap(false, Ordering::SeqCst),
                        s.restart.load(Ordering::SeqCst),
                    )
                });
                if callback {
                    self.plugin.instance.call_on_main_thread_callback();
                }
                if restart {
                    stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            worker.join().expect("the audio thread panicked")
        });
        self.plugin.processor = Some(processor);
        self.plugin.steady_time = steady;
    }

    fn report(&self, what: &str) {
        let t = &self.tally;
        let total: u64 = t.burst_frames.iter().sum::<u64>().max(1);
        let bursts: Vec<String> = BURSTS
            .iter()
            .map(|(b, _)| {
                format!(
                    "{b:?} {:.1}%",
                    100.0 * t.burst_frames[*b as usize] as f64 / total as f64
                )
            })
            .collect();
        println!(
            "soak {what} at {:.0} s: {} blocks ({} … {} frames), {:.1} M frames, {} events ({} \
             structural), {} restarts requested and served, {} rate changes over {} rates, {} \
             layout changes, {} states saved and loaded ({} learned states checked), resident \
             {} MiB (warm-up {} MiB, peak {} MiB), subnormal outputs {}; slowest process call \
             {:.3} s ({}), slowest activation {:.3} s ({}); input: {}",
            self.elapsed(),
            t.blocks,
            t.smallest_block,
            t.largest_block,
            t.frames as f64 / 1e6,
            t.events,
            t.structural_events,
            t.restarts_requested,
            t.rate_changes,
            t.rates.len(),
            t.layout_changes,
            t.states_saved,
            t.learned_states_checked,
            rss_bytes() >> 20,
            t.rss_warm >> 20,
            t.rss_peak >> 20,
            t.subnormal_out,
            t.slowest_block.0,
            t.slowest_block.1,
            t.slowest_activation.0,
            t.slowest_activation.1,
            bursts.join(", ")
        );
    }
}

/// Activate with the instance's configuration; a refusal fails the soak naming the rate.
/// Returns the wall time it took.
fn activate(plugin: &mut Instance) -> f64 {
    let started = Instant::now();
    let rate = plugin.config.sample_rate;
    let stopped = plugin
        .instance
        .activate(|_, _| (), plugin.config)
        .unwrap_or_else(|e| {
            panic!(
                "activation at {rate} Hz with {} channels refused ({e:?}); any positive finite \
                 rate must activate",
                plugin.channels
            )
        });
    plugin.processor = Some(stopped.start_processing().expect("start processing"));
    started.elapsed().as_secs_f64()
}

/// Select the layout with `channels` in and out (deactivated).
fn select_layout(plugin: &mut Instance, channels: usize) {
    let handle = plugin.instance.plugin_handle();
    let ports: PluginAudioPortsConfig = handle.get_extension().expect("audio-ports-config");
    let mut buf = AudioPortsConfigBuffer::new();
    let mut chosen = None;
    for i in 0..ports.count(&handle) {
        let Some(c) = ports.get(&handle, i, &mut buf) else {
            continue;
        };
        if c.main_input.map(|p| p.channel_count) == Some(channels as u32)
            && c.main_output.map(|p| p.channel_count) == Some(channels as u32)
        {
            chosen = Some(c.id);
        }
    }
    let id = chosen.unwrap_or_else(|| panic!("no {channels}-channel layout"));
    ports.select(&handle, id).expect("select the layout");
    plugin.channels = channels;
}

fn find<'a>(params: &'a [Param], name: &str) -> &'a Param {
    params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
}

/// 1 … 4096 frames: the extremes often, small and large blocks alike.
fn block_size(rng: &mut ChaCha8Rng) -> usize {
    match rng.random_range(0..20) {
        0 => 1,
        1 => MAX_BLOCK,
        2..=5 => rng.random_range(1..=64),
        6..=13 => rng.random_range(65..=1024),
        _ => rng.random_range(1025..=MAX_BLOCK),
    }
}

/// Now and then 1–3 parameter changes at random frames: a random parameter, at its lowest or
/// highest value (as validators snap them) or anywhere in between.
fn random_events(
    params: &[Param],
    len: usize,
    rng: &mut ChaCha8Rng,
    tally: &mut Tally,
) -> Vec<(u32, ClapId, f64)> {
    if !rng.random_bool(0.06) {
        return Vec::new();
    }
    (0..rng.random_range(1..=3))
        .map(|_| {
            let p = &params[rng.random_range(0..params.len())];
            let v = match rng.random_range(0..10) {
                0..=2 => p.min,
                3..=5 => p.max,
                _ => {
                    let v = rng.random_range(p.min..=p.max);
                    if p.stepped {
                        v.round()
                    } else {
                        v
                    }
                }
            };
            tally.events += 1;
            if ["Framing", "FFT size", "Bands", "Interneurons"].contains(&p.name.as_str()) {
                tally.structural_events += 1;
            }
            (rng.random_range(0..len) as u32, p.id, v)
        })
        .collect()
}

/// NaN, Inf or beyond ±1 fail at once; subnormals are counted.
fn check_block(outs: &[Vec<f32>], len: usize, steady: u64, rate: f64, tally: &mut Tally) {
    for (c, ch) in outs.iter().enumerate() {
        for (i, &y) in ch[..len].iter().enumerate() {
            assert!(
                y.is_finite() && y.abs() <= 1.0,
                "output channel {c} sample {} (block of {len} at {rate} Hz, input ending in \
                 {:?}) is {y}; parameters set so far: {:?}",
                steady + i as u64,
                tally.burst,
                tally.settings
            );
            if y.is_subnormal() {
                tally.subnormal_out += 1;
                if tally.first_subnormal.is_none() {
                    tally.first_subnormal = Some(format!(
                        "{y:e} on channel {c} at sample {} ({rate} Hz)",
                        steady + i as u64
                    ));
                }
            }
        }
    }
}

/// Every number in `v` finite and no `null` (serde writes a NaN as `null`).
fn check_finite(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("{path}: null (a NaN or Inf in the learned state)"),
        Value::Number(n) => assert!(
            n.as_f64().is_some_and(f64::is_finite),
            "{path}: {n} is not finite"
        ),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| check_finite(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| check_finite(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

/// The resident set size of this process (`/proc/self/statm`, second field, in pages), after
/// asking glibc's allocator to return the free memory it holds (`malloc_trim`): the plugin's
/// engines are large and short-lived, and without the trim the resident set measures the
/// allocator's high-water mark and fragmentation rather than what is alive — a leak grows
/// past any bound either way.
fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe { libc::malloc_trim(0) };
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("resident pages in /proc/self/statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as u64
}
