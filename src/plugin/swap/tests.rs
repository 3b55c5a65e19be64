//! The engine swap without a host: real (small, one-channel) engines and a fake background
//! that records every request and builds it only when a test says so (or at once).

use super::*;

const RATE: f64 = 48_000.0;
/// Host block length of the simulated `process` calls.
const BLOCK: usize = 256;
/// Sub-block length, as in the plugin.
const SUB_BLOCK: usize = 32;
/// A 20 ms crossfade at 48 kHz.
const FADE_SAMPLES: usize = 960;
const FADE_STEP: f32 = 1.0 / FADE_SAMPLES as f32;

/// A background that records what the swap asks of it.
struct FakeBackground {
    /// The swap's channels, to deliver built engines into.
    handoff: Arc<Handoff>,
    /// Every build request, in order (re-sent ones included).
    requests: Vec<BuildRequest>,
    /// Collections asked for. Not run: the tests read the garbage channel's count and collect
    /// themselves.
    collects: usize,
    /// Build each request as it arrives (a background that is never late), instead of
    /// waiting for [`FakeBackground::finish`].
    immediate: bool,
}

impl FakeBackground {
    fn new(handoff: &Arc<Handoff>, immediate: bool) -> Self {
        Self {
            handoff: handoff.clone(),
            requests: Vec::new(),
            collects: 0,
            immediate,
        }
    }

    /// Build request `i` as the plugin's builder does (skipped if it has been superseded).
    fn finish(&self, i: usize) {
        self.handoff.fulfil(&self.requests[i], build);
    }

    /// Answer request `i` with a failed build.
    fn fail(&self, i: usize) {
        self.handoff.fulfil(&self.requests[i], |_| None);
    }

    /// The generations of the requests so far.
    fn generations(&self) -> Vec<u64> {
        self.requests.iter().map(|r| r.generation).collect()
    }
}

impl Background for FakeBackground {
    fn build(&mut self, req: BuildRequest) {
        if self.immediate {
            self.handoff.fulfil(&req, build);
        }
        self.requests.push(req);
    }

    fn collect(&mut self) {
        self.collects += 1;
    }
}

/// The engine a request asks for, fitted as the plugin's builder fits it.
fn build(req: &BuildRequest) -> Option<Box<Engine>> {
    let fitted = req.params.fitted_to(req.channels, req.sample_rate);
    Engine::new(req.channels, req.sample_rate, fitted)
        .ok()
        .map(Box::new)
}

/// One-channel engine for `params`.
fn engine(params: &EngineParams) -> Engine {
    Engine::new(1, RATE, params.fitted_to(1, RATE)).expect("valid parameters")
}

/// The default structure: channels framing, no latency.
fn channels() -> EngineParams {
    EngineParams::default()
}

/// Spectral framing at the smallest FFT size: a different structure with a latency.
fn spectral() -> EngineParams {
    EngineParams {
        framing: Framing::Spectral,
        fft_size: 256,
        bands: 16,
        ..EngineParams::default()
    }
}

/// Channels framing with more interneurons: a different structure with the same latency.
fn more_interneurons() -> EngineParams {
    EngineParams {
        interneurons: 4,
        ..EngineParams::default()
    }
}

/// A swap running a one-channel engine for `params`, and its handoff.
fn swap_for(params: &EngineParams) -> (Arc<Handoff>, EngineSwap) {
    let handoff = Arc::new(Handoff::default());
    let swap = EngineSwap::new(handoff.clone(), engine(params), SUB_BLOCK, FADE_STEP);
    (handoff, swap)
}

/// One host block as the plugin's `process` runs it: receive a finished engine, request one,
/// then the audio in sub-blocks. Returns the latency change reported.
fn block(
    swap: &mut EngineSwap,
    bg: &mut FakeBackground,
    wanted: &EngineParams,
    audio: &mut [f32],
) -> Option<usize> {
    let latency = swap.receive(bg);
    swap.request(wanted, false, audio.len(), bg);
    let len = audio.len();
    let mut chans: [&mut [f32]; 1] = [audio];
    let mut start = 0;
    while start < len {
        let end = (start + SUB_BLOCK).min(len);
        swap.process(&mut chans, start, end, wanted.output_db, wanted.dry_wet, bg);
        start = end;
    }
    latency
}

/// `block` on a block of silence.
fn quiet_block(swap: &mut EngineSwap, bg: &mut FakeBackground, wanted: &EngineParams) {
    block(swap, bg, wanted, &mut [0.0; BLOCK]);
}

/// A twin of an engine inside the swap: the same parameters, run on the same input in the
/// same sub-blocks, gives the same output (the engine is deterministic).
fn run_twin(twin: &mut Engine, params: &EngineParams, input: &[f32]) -> Vec<f32> {
    let mut out = input.to_vec();
    for chunk in out.chunks_mut(SUB_BLOCK) {
        twin.set_output(params.output_db, params.dry_wet);
        twin.process(&mut [chunk]);
    }
    out
}

#[test]
fn a_structural_change_requests_exactly_one_build() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    for _ in 0..10 {
        quiet_block(&mut swap, &mut bg, &channels());
    }
    assert!(
        bg.requests.is_empty(),
        "the running structure needs no build"
    );
    for _ in 0..50 {
        quiet_block(&mut swap, &mut bg, &spectral());
    }
    assert_eq!(
        bg.requests.len(),
        1,
        "one request per change, not per block"
    );
    let req = &bg.requests[0];
    assert_eq!(Structure::of(&req.params, 1), Structure::of(&spectral(), 1));
    assert_eq!(
        (req.channels, req.sample_rate, req.restore),
        (1, RATE, false)
    );
    assert!(swap.is_pending());
    // A live parameter changing on top asks for nothing more.
    let louder = EngineParams {
        output_db: -6.0,
        ..spectral()
    };
    quiet_block(&mut swap, &mut bg, &louder);
    assert_eq!(bg.requests.len(), 1);
}

#[test]
fn a_superseded_request_is_not_built_and_its_engine_is_discarded() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    quiet_block(&mut swap, &mut bg, &spectral());
    quiet_block(&mut swap, &mut bg, &more_interneurons());
    assert_eq!(bg.requests.len(), 2);
    assert!(bg.requests[1].generation > bg.requests[0].generation);

    // The builder skips the superseded request…
    bg.finish(0);
    assert_eq!(
        handoff.fresh_rx.len(),
        0,
        "a superseded request is not built"
    );
    // …but one it had already started arrives anyway: it is stale.
    handoff.deliver(bg.requests[0].generation, build(&bg.requests[0]));
    quiet_block(&mut swap, &mut bg, &more_interneurons());
    assert_eq!(
        swap.structure(),
        Structure::of(&channels(), 1),
        "not swapped in"
    );
    assert_eq!(swap.engine().latency_samples(), 0);
    assert!(swap.old.is_none(), "no crossfade towards a stale engine");
    assert_eq!(handoff.fresh_rx.len(), 0);
    assert_eq!(
        handoff.garbage_tx.len(),
        1,
        "the stale engine goes to the garbage"
    );
    assert_eq!(bg.collects, 1, "and is collected off the audio thread");

    // The newest request's engine is the one swapped in.
    bg.finish(1);
    quiet_block(&mut swap, &mut bg, &more_interneurons());
    assert_eq!(swap.structure(), Structure::of(&more_interneurons(), 1));
    assert!(!swap.is_pending());
}

#[test]
fn a_return_to_the_running_structure_cancels_the_request() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    quiet_block(&mut swap, &mut bg, &spectral());
    quiet_block(&mut swap, &mut bg, &channels());
    assert!(!swap.is_pending());
    bg.finish(0);
    assert_eq!(
        handoff.fresh_rx.len(),
        0,
        "the cancelled request is superseded"
    );
    for _ in 0..5 {
        quiet_block(&mut swap, &mut bg, &channels());
    }
    assert_eq!(bg.requests.len(), 1);
    assert_eq!(swap.structure(), Structure::of(&channels(), 1));
}

#[test]
fn a_finished_build_crossfades_continuously_then_the_old_engine_is_collected() {
    // Whitened (mix 1): both engines' own output. Dry (mix 0): the input, and the input
    // through the STFT, `latency` samples late — signals that differ far more than either
    // moves from one sample to the next, so a switch without a fade would jump.
    for dry_wet in [1.0, 0.0] {
        let old_params = EngineParams {
            dry_wet,
            ..channels()
        };
        let new_params = EngineParams {
            dry_wet,
            ..spectral()
        };
        crossfade_is_continuous(&old_params, &new_params, dry_wet == 0.0);
    }
}

/// Swap from an engine for `old_params` to one for `new_params` on a 200 Hz tone and check
/// the output around the swap against twins of both engines; with `jumps`, also check that
/// a switch without a fade would have stepped far more than the crossfade does.
fn crossfade_is_continuous(old_params: &EngineParams, new_params: &EngineParams, jumps: bool) {
    let (handoff, mut swap) = swap_for(old_params);
    let mut bg = FakeBackground::new(&handoff, true);
    let blocks = 120;
    let input: Vec<f32> = (0..blocks * BLOCK)
        .map(|i| 0.3 * (std::f32::consts::TAU * 200.0 * i as f32 / RATE as f32).sin())
        .collect();
    // The structure changes at block 80; the build is done at once, so the new engine is
    // swapped in at the start of block 81.
    let change = 80;
    let swapped = (change + 1) * BLOCK;
    let mut out = input.clone();
    let mut latencies = Vec::new();
    for (b, audio) in out.chunks_mut(BLOCK).enumerate() {
        let wanted = if b < change { old_params } else { new_params };
        if let Some(latency) = block(&mut swap, &mut bg, wanted, audio) {
            latencies.push((b, latency));
        }
    }
    assert_eq!(bg.requests.len(), 1);

    // The signals being crossfaded, from twins of both engines.
    let old = run_twin(&mut engine(old_params), old_params, &input);
    let mut new_twin = engine(new_params);
    let latency = new_twin.latency_samples();
    let mut new = vec![0.0; swapped];
    new.extend(run_twin(&mut new_twin, new_params, &input[swapped..]));

    assert!(latency > 0);
    assert_eq!(
        latencies,
        vec![(change + 1, latency)],
        "the latency change is reported once, when the engine is swapped in"
    );
    assert_eq!(
        &out[..swapped],
        &old[..swapped],
        "the old engine until the swap"
    );
    let faded = swapped + FADE_SAMPLES;
    assert_eq!(
        &out[faded..],
        &new[faded..],
        "the new engine after the fade"
    );

    // During the fade `out = w·new + (1 − w)·old` with `w` rising by FADE_STEP per sample,
    // so `Δout = w·Δnew + (1 − w)·Δold + FADE_STEP·(new − old)`: no step larger than the
    // signals' own, plus the ramp's share of their difference.
    let step = |x: &[f32], t: usize| (x[t] - x[t - 1]).abs();
    // The largest own step at the start of the fade, where a switch would have jumped.
    let start = swapped..swapped + 64;
    let mut own_max = 0.0f32;
    for t in swapped..=faded {
        let own = if t == swapped {
            step(&old, t)
        } else {
            step(&old, t).max(step(&new, t))
        };
        let ramp = FADE_STEP * (new[t] - old[t]).abs().max((new[t - 1] - old[t - 1]).abs());
        assert!(
            step(&out, t) <= own + ramp + 1e-5,
            "sample {t}: step {} > own {own} + ramp {ramp}",
            step(&out, t)
        );
        if start.contains(&t) {
            own_max = own_max.max(own);
        }
    }
    if jumps {
        let jump = start
            .map(|t| (new[t] - old[t]).abs())
            .fold(0.0f32, f32::max);
        assert!(jump > 10.0 * own_max, "jump {jump} vs own steps {own_max}");
    }

    // After the fade the old engine left for the garbage channel and was collected.
    assert!(swap.old.is_none());
    assert_eq!(handoff.garbage_tx.len(), 1);
    assert_eq!(bg.collects, 1);
    handoff.collect();
    assert_eq!(handoff.garbage_tx.len(), 0);
}

#[test]
fn the_latency_is_reported_only_when_it_changes() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, true);
    let mut reports = Vec::new();
    for wanted in [more_interneurons(), spectral(), spectral(), channels()] {
        for _ in 0..8 {
            if let Some(latency) = block(&mut swap, &mut bg, &wanted, &mut [0.0; BLOCK]) {
                reports.push(latency);
            }
        }
        assert_eq!(swap.structure(), Structure::of(&wanted, 1));
    }
    // channels → more interneurons: same latency, nothing; → spectral: its FFT size;
    // → channels: back to 0.
    assert_eq!(bg.requests.len(), 3);
    assert_eq!(reports, vec![spectral().fft_size, 0]);
}

#[test]
fn a_failed_build_is_not_requested_again_until_the_structure_changes() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    let timeout = (REQUEST_TIMEOUT_S * RATE) as usize;
    swap.request(&spectral(), false, BLOCK, &mut bg);
    bg.fail(0);
    assert_eq!(swap.receive(&mut bg), None);
    assert!(!swap.is_pending());
    // Not even after the timeout of a lost request.
    for _ in 0..5 {
        swap.receive(&mut bg);
        swap.request(&spectral(), false, timeout, &mut bg);
    }
    assert_eq!(bg.requests.len(), 1);
    assert_eq!(swap.structure(), Structure::of(&channels(), 1));
    // Another structure is requested, and then the failed one may be tried again.
    swap.request(&more_interneurons(), false, BLOCK, &mut bg);
    assert_eq!(bg.requests.len(), 2);
    swap.request(&spectral(), false, BLOCK, &mut bg);
    assert_eq!(bg.requests.len(), 3);
    assert_eq!(
        Structure::of(&bg.requests[2].params, 1),
        Structure::of(&spectral(), 1)
    );
}

#[test]
fn a_lost_request_is_sent_again_after_the_timeout_under_the_same_generation() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    let timeout = (REQUEST_TIMEOUT_S * RATE) as usize;
    let chunk = 1000;
    let mut processed = 0;
    while bg.requests.len() < 2 {
        swap.receive(&mut bg);
        swap.request(&spectral(), false, chunk, &mut bg);
        processed += chunk;
        assert!(processed < 2 * timeout, "never re-sent");
    }
    // Sent at 0, re-sent in the first block that starts at or after the timeout.
    assert_eq!(processed - chunk, timeout.div_ceil(chunk) * chunk);
    let generations = bg.generations();
    assert_eq!(
        generations[0], generations[1],
        "a slow build is not superseded"
    );

    // Both copies are built: the first to arrive is swapped in, the other is stale.
    bg.finish(0);
    bg.finish(1);
    quiet_block(&mut swap, &mut bg, &spectral());
    assert_eq!(swap.structure(), Structure::of(&spectral(), 1));
    quiet_block(&mut swap, &mut bg, &spectral());
    assert_eq!(handoff.fresh_rx.len(), 0);
    assert_eq!(handoff.garbage_tx.len(), 1, "the second copy is discarded");
    assert_eq!(bg.requests.len(), 2);
}

#[test]
fn a_loaded_state_requests_a_build_of_the_running_structure_once() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    swap.request(&channels(), true, BLOCK, &mut bg);
    for _ in 0..5 {
        swap.request(&channels(), false, BLOCK, &mut bg);
    }
    assert_eq!(bg.requests.len(), 1);
    assert!(bg.requests[0].restore);
    assert!(
        swap.is_pending(),
        "not cancelled by the unchanged structure"
    );
    // A structural change meanwhile still restores.
    swap.request(&spectral(), false, BLOCK, &mut bg);
    assert_eq!(bg.requests.len(), 2);
    assert!(bg.requests[1].restore);
}

#[test]
fn no_engine_is_dropped_on_the_calling_thread_while_the_garbage_channel_is_full() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    // Every engine is somewhere: heard, fading out, in one of the channels, or dropped by the
    // test (never by the swap).
    let count = |swap: &EngineSwap| {
        1 + swap.old.is_some() as usize + handoff.fresh_rx.len() + handoff.garbage_tx.len()
    };
    let fill_garbage = |n: usize| {
        while handoff.garbage_tx.len() < n {
            handoff
                .garbage_tx
                .try_send(Box::new(engine(&channels())))
                .expect("room");
        }
    };

    // Room for one engine only: a finished build waits in the fresh channel.
    fill_garbage(GARBAGE_CAPACITY - 1);
    quiet_block(&mut swap, &mut bg, &spectral());
    bg.finish(0);
    assert_eq!(count(&swap), 1 + 1 + GARBAGE_CAPACITY - 1);
    for _ in 0..10 {
        quiet_block(&mut swap, &mut bg, &spectral());
        assert_eq!(count(&swap), 1 + 1 + GARBAGE_CAPACITY - 1);
        assert_eq!(handoff.fresh_rx.len(), 1, "not taken without room for two");
    }
    assert_eq!(swap.structure(), Structure::of(&channels(), 1));

    // Collected: it is taken, and the old engine fades out.
    handoff.collect();
    quiet_block(&mut swap, &mut bg, &spectral());
    assert_eq!(swap.structure(), Structure::of(&spectral(), 1));
    assert!(swap.old.is_some());
    assert_eq!(count(&swap), 2);

    // The garbage fills up during the fade: the old engine is kept past its end…
    fill_garbage(GARBAGE_CAPACITY);
    for _ in 0..2 * FADE_SAMPLES / BLOCK {
        quiet_block(&mut swap, &mut bg, &spectral());
        assert_eq!(count(&swap), 2 + GARBAGE_CAPACITY);
    }
    assert!(swap.old.is_some(), "kept while the garbage channel is full");
    swap.finish_crossfade();
    assert!(swap.old.is_some(), "also by a reset");
    assert_eq!(count(&swap), 2 + GARBAGE_CAPACITY);

    // …and leaves as soon as there is room.
    handoff.collect();
    quiet_block(&mut swap, &mut bg, &spectral());
    assert!(swap.old.is_none());
    assert_eq!(handoff.garbage_tx.len(), 1);
    assert_eq!(count(&swap), 2);
}

/// A swap whose latency may change only at activation (the plugin under CLAP).
fn clap_swap_for(params: &EngineParams) -> (Arc<Handoff>, EngineSwap) {
    let (handoff, swap) = swap_for(params);
    (
        handoff,
        swap.with_latency_changes(LatencyChanges::AtActivation),
    )
}

#[test]
fn at_activation_another_latency_asks_for_one_restart_and_keeps_the_engine() {
    let (handoff, mut swap) = clap_swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, true);
    let mut asked = Vec::new();
    for _ in 0..20 {
        asked.push(swap.request(&spectral(), false, BLOCK, &mut bg));
        assert_eq!(swap.receive(&mut bg), None, "no latency to report");
        quiet_block(&mut swap, &mut bg, &spectral());
    }
    assert_eq!(asked[0], Requested::Restart);
    assert!(
        asked[1..].iter().all(|r| *r == Requested::Nothing),
        "one restart request per change: {asked:?}"
    );
    assert!(bg.requests.is_empty(), "nothing is built before activation");
    assert!(!swap.is_pending());
    assert_eq!(swap.structure(), Structure::of(&channels(), 1));
    assert_eq!(swap.engine().latency_samples(), 0, "the latency stays");

    // Another latency again (a larger FFT): asked once more; back to the running structure:
    // nothing, and a later change asks again.
    let larger = EngineParams {
        fft_size: 512,
        ..spectral()
    };
    assert_eq!(
        swap.request(&larger, false, BLOCK, &mut bg),
        Requested::Restart
    );
    assert_eq!(
        swap.request(&channels(), false, BLOCK, &mut bg),
        Requested::Nothing
    );
    assert_eq!(
        swap.request(&spectral(), false, BLOCK, &mut bg),
        Requested::Restart
    );
    // A loaded state of another latency is restored at activation too: no build.
    assert_eq!(
        swap.request(&larger, true, BLOCK, &mut bg),
        Requested::Restart
    );
    assert!(bg.requests.is_empty());
}

#[test]
fn at_activation_the_same_latency_still_swaps_live() {
    let (handoff, mut swap) = clap_swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, true);
    for _ in 0..4 {
        assert_eq!(
            swap.request(&more_interneurons(), false, BLOCK, &mut bg),
            Requested::Nothing
        );
        assert_eq!(swap.receive(&mut bg), None);
        quiet_block(&mut swap, &mut bg, &more_interneurons());
    }
    assert_eq!(bg.requests.len(), 1);
    assert_eq!(swap.structure(), Structure::of(&more_interneurons(), 1));
}

#[test]
fn at_activation_a_build_in_flight_is_cancelled_by_another_latency() {
    let (handoff, mut swap) = clap_swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    swap.request(&more_interneurons(), false, BLOCK, &mut bg);
    assert!(swap.is_pending());
    assert_eq!(
        swap.request(&spectral(), false, BLOCK, &mut bg),
        Requested::Restart
    );
    assert!(!swap.is_pending());
    // The builder skips the superseded request; one already built arrives stale.
    bg.finish(0);
    assert_eq!(handoff.fresh_rx.len(), 0);
    handoff.deliver(bg.requests[0].generation, build(&bg.requests[0]));
    quiet_block(&mut swap, &mut bg, &spectral());
    assert_eq!(swap.structure(), Structure::of(&channels(), 1));
    assert_eq!(handoff.garbage_tx.len(), 1, "the stale engine is discarded");
}

#[test]
fn at_activation_an_engine_of_another_latency_is_never_swapped_in() {
    // Requested as a same-latency build, delivered with another latency (a builder that
    // fitted the parameters differently): discarded, not heard.
    let (handoff, mut swap) = clap_swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, false);
    swap.request(&more_interneurons(), false, BLOCK, &mut bg);
    let generation = bg.requests[0].generation;
    handoff.deliver(generation, Some(Box::new(engine(&spectral()))));
    assert_eq!(swap.receive(&mut bg), None);
    assert_eq!(swap.engine().latency_samples(), 0);
    assert!(swap.old.is_none());
    assert_eq!(handoff.garbage_tx.len(), 1);
}

#[test]
fn parameters_that_make_the_same_engine_need_no_build() {
    let (handoff, mut swap) = swap_for(&channels());
    let mut bg = FakeBackground::new(&handoff, true);
    // The FFT size and bands do nothing in the channels framing; one interneuron on one
    // channel is the same circuit as the default.
    let same = EngineParams {
        fft_size: 8192,
        bands: 3,
        interneurons: 1,
        ..channels()
    };
    for _ in 0..4 {
        quiet_block(&mut swap, &mut bg, &same);
    }
    assert!(bg.requests.is_empty());
    assert_eq!(Structure::of(&same, 1), Structure::of(&channels(), 1));
    // On two channels, 1 and 2 interneurons are the same circuit, 3 is not.
    let k = |k| EngineParams {
        interneurons: k,
        ..channels()
    };
    assert_eq!(Structure::of(&k(1), 2), Structure::of(&k(2), 2));
    assert_ne!(Structure::of(&k(3), 2), Structure::of(&k(2), 2));
    // Structures report the latency their engines have.
    for p in [channels(), spectral(), more_interneurons()] {
        assert_eq!(
            Structure::of(&p, 1).latency_samples(),
            engine(&p).latency_samples()
        );
        assert_eq!(p.latency_samples(), engine(&p).latency_samples());
    }
}

#[test]
fn a_structure_the_rate_caps_is_the_running_one() {
    // At 1000 Hz an FFT size of 8192 runs as 1024 (docs/DESIGN.md §11): asking for 8192 again
    // is no change — no build, and under CLAP no restart (which would loop, since every
    // activation would cap it again).
    let rate = 1000.0;
    let asked = EngineParams {
        fft_size: 8192,
        tau_ms: 10_000.0,
        ..spectral()
    };
    let running = Engine::new(1, rate, asked.fitted_to(1, rate)).unwrap();
    assert_eq!(running.latency_samples(), 1024);
    let handoff = Arc::new(Handoff::default());
    let mut swap = EngineSwap::new(handoff.clone(), running, SUB_BLOCK, FADE_STEP)
        .with_latency_changes(LatencyChanges::AtActivation);
    let mut bg = FakeBackground::new(&handoff, true);
    for _ in 0..4 {
        assert_eq!(
            swap.request(&asked, false, BLOCK, &mut bg),
            Requested::Nothing
        );
        assert_eq!(swap.receive(&mut bg), None);
    }
    assert!(bg.requests.is_empty());
}
