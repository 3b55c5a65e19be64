//! The engine held to the paper's theory (docs/DESIGN.md §4): on a stationary input with a
//! known covariance, each circuit's readaptation time as the monitor measures it — after a
//! re-initialisation at scale `s`, or after a level step — against the continuous-time theory,
//! computed here by integrating the per-eigenvalue ODEs of docs/DESIGN.md §2.5 (not with
//! `src/theory.rs`); for the gain-modulating circuit, which has no per-eigenvalue law, by
//! integrating its mean-field dynamics (docs/DESIGN.md §2.9) in small steps.

mod support;

use interneuron_whitening::circuits::{
    build_circuit, Circuit, GainConfig, GainFrame, GainModulatingCircuit, InterneuronBasis, Scalar,
    Solver,
};
use interneuron_whitening::engine::{
    db_to_amp, Engine, EngineParams, Framing, StatsRecord, StatsSender,
};
use interneuron_whitening::monitor::{
    monitor_table, readaptation_time, ChangeCause, DEFAULT_HOLD_S, DEFAULT_THRESHOLD,
};
use interneuron_whitening::whitener::WhitenerKind;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const RATE: f64 = 48_000.0;
/// Eigenvalues of the input covariance in the circuits' units (input / reference level).
const SPECTRUM: [f64; 2] = [0.5, 2.0];
const TAU_S: f64 = 0.1;

/// What happens at the event.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// Every whitener re-initialised at `M₀ = s·I`.
    Reinit(f64),
    /// The input level steps by this many dB (the reference level is set so that the louder
    /// of the two levels is the reference).
    Step(f64),
}

/// The time (s) until the theoretical whitening error is under the monitor's threshold, for
/// one whitener, from the per-eigenvalue ODE integrated with RK4 in τ = t/τ_s.
fn theory_s(kind: WhitenerKind, sigma2: &[f64], m0: &[f64]) -> f64 {
    let f = |s2: f64, m: f64| -> f64 {
        match kind {
            WhitenerKind::Direct => s2 / (m * m) - 1.0,
            WhitenerKind::Interneuron => 2.0 * (s2 / m - m),
            // Ĉ relaxes to C: d(m²)/dτ = σ² − m².
            WhitenerKind::Baseline => (s2 - m * m) / (2.0 * m),
            WhitenerKind::Gain => unreachable!("no per-eigenvalue law: gain_theory_s"),
        }
    };
    let error = |m: &[f64]| -> f64 {
        let s: f64 = sigma2
            .iter()
            .zip(m)
            .map(|(s2, m)| (s2 / (m * m) - 1.0).powi(2))
            .sum();
        (s / m.len() as f64).sqrt()
    };
    let mut m = m0.to_vec();
    let mut tau = 0.0;
    while error(&m) >= DEFAULT_THRESHOLD {
        // Steps small against every eigenvalue's own rate.
        let h = m
            .iter()
            .zip(sigma2)
            .map(|(m, s2)| 1e-3 * m / (f(*s2, *m).abs() + 1e-12))
            .fold(1e-3, f64::min)
            .max(1e-9);
        for (mi, s2) in m.iter_mut().zip(sigma2) {
            let k1 = f(*s2, *mi);
            let k2 = f(*s2, *mi + 0.5 * h * k1);
            let k3 = f(*s2, *mi + 0.5 * h * k2);
            let k4 = f(*s2, *mi + h * k3);
            *mi += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        }
        tau += h;
        assert!(tau < 1e4, "theory does not converge");
    }
    tau * TAU_S
}

/// The time (s) until the gain-modulating circuit's mean-field dynamics — no per-eigenvalue law
/// exists: its preconditioner mixes the eigen-directions (docs/DESIGN.md §2.9) — bring the
/// whitening error under the monitor's threshold, from `M₀ = U diag(m0) Uᵀ` for the input
/// covariance `C = U diag(sigma2) Uᵀ` (`U` the test's rotation), on the pairs frame over `T`
/// (ℝ: the channels framing; ℂ: a spectral band), gains only (the race's synapses learn 500
/// times slower). Euler steps of `10⁻³·min(1, μ_min)` in τ, small against the stiff rates
/// `~2n/μ`.
fn gain_theory_s<T: Scalar>(sigma2: &[f64], m0: &[f64]) -> f64 {
    let u = mixing(0.4)
        * DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
            2,
            SPECTRUM.iter().map(|v| 1.0 / v.sqrt()),
        ));
    let spd = |d: &[f64]| {
        (&u * DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(d)) * u.transpose())
            .map(|v| T::from_real(v))
    };
    let c = spd(sigma2);
    let m0_sq: Vec<f64> = m0.iter().map(|m| m * m).collect();
    let mut circuit = GainModulatingCircuit::<T>::new(
        2,
        GainFrame::Pairs,
        GainConfig {
            eta_g: 1e-3,
            ..GainConfig::default()
        },
    )
    .unwrap();
    let g0 = circuit.optimal_gains(&spd(&m0_sq)).unwrap();
    circuit.set_gains(g0.as_slice()).unwrap();
    let mut tau = 0.0;
    while circuit.whitening_error(&c) >= DEFAULT_THRESHOLD {
        let m = circuit.recurrent_matrix().map(|v| v.real());
        let mu_min = m.symmetric_eigen().eigenvalues.min();
        let h = 1e-3 * mu_min.min(1.0);
        circuit.set_learning_rate(h).unwrap();
        circuit.mean_field_step(&c).unwrap();
        tau += h;
        assert!(tau < 1e4, "the gain circuit's mean field does not converge");
    }
    tau * TAU_S
}

/// The theory for `kind` (s): [`theory_s`], or [`gain_theory_s`] in the framing's field.
fn theory_for(kind: WhitenerKind, framing: Framing, sigma2: &[f64], m0: &[f64]) -> f64 {
    match (kind, framing) {
        (WhitenerKind::Gain, Framing::Channels) => gain_theory_s::<f64>(sigma2, m0),
        (WhitenerKind::Gain, _) => gain_theory_s::<nalgebra::Complex<f64>>(sigma2, m0),
        _ => theory_s(kind, sigma2, m0),
    }
}

/// A rotated mixing `A` with `A Aᵀ = U diag(SPECTRUM) Uᵀ`.
fn mixing(angle: f64) -> DMatrix<f64> {
    let (c, s) = (angle.cos(), angle.sin());
    let u = DMatrix::from_row_slice(2, 2, &[c, -s, s, c]);
    let d = DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(
        2,
        SPECTRUM.iter().map(|v| v.sqrt()),
    ));
    u * d
}

/// Seconds of input before the event (enough to adapt to the input first) and after it.
const SETTLE_S: f64 = 3.0;
const AFTER_S: f64 = 14.0;
const BLOCK: usize = 480;

/// Levels (dBFS) before and after the event, and the reference level: for a rise the louder
/// level is the reference, so the input never exceeds full scale.
fn levels(event: Event) -> (f64, f64, f64) {
    match event {
        Event::Reinit(_) => (-20.0, -20.0, -20.0),
        Event::Step(db) if db > 0.0 => (-20.0, -20.0 - db, -20.0),
        Event::Step(db) => (-20.0, -20.0, -20.0 + db),
    }
}

/// The stereo input, block by block: `A n` at the level of the moment, with seeded noise.
struct Input {
    a: DMatrix<f64>,
    rng: ChaCha8Rng,
}

impl Input {
    fn new(seed: u64) -> Self {
        Self {
            a: mixing(0.4),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One block of frames `[l, r]` with amplitude `gain`.
    fn block(&mut self, gain: f64, out: &mut Vec<[f64; 2]>) {
        out.clear();
        for _ in 0..BLOCK {
            let n1: f64 = self.rng.sample(StandardNormal);
            let n2: f64 = self.rng.sample(StandardNormal);
            let a = &self.a;
            out.push([
                gain * (a[(0, 0)] * n1 + a[(0, 1)] * n2),
                gain * (a[(1, 0)] * n1 + a[(1, 1)] * n2),
            ]);
        }
    }
}

/// Runs the engine through the event; returns its stats records.
fn engine_records(framing: Framing, event: Event, bands: usize) -> Vec<StatsRecord> {
    let (reference_db, before_db, after_db) = levels(event);
    let params = EngineParams {
        framing,
        tau_ms: TAU_S * 1e3,
        reference_db,
        fft_size: 1024,
        bands,
        ..EngineParams::default()
    };
    let mut engine = Engine::new(2, RATE, params).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1 << 20);
    engine.set_stats_sender(Some(StatsSender::new(tx)));
    let mut input = Input::new(1);
    let (mut frames, mut l, mut r) = (Vec::new(), vec![0f32; BLOCK], vec![0f32; BLOCK]);
    let event_at = (SETTLE_S * RATE) as usize;
    let mut records = Vec::new();
    let mut t = 0;
    while t < ((SETTLE_S + AFTER_S) * RATE) as usize {
        if let (true, Event::Reinit(s)) = (t == event_at, event) {
            engine.reinitialise(s).unwrap();
        }
        input.block(
            db_to_amp(if t < event_at { before_db } else { after_db }),
            &mut frames,
        );
        for (i, f) in frames.iter().enumerate() {
            l[i] = f[0] as f32;
            r[i] = f[1] as f32;
        }
        engine.process(&mut [&mut l[..], &mut r[..]]);
        records.extend(rx.try_iter());
        t += BLOCK;
    }
    let c = engine.counters();
    assert_eq!(c.state_resets, 0, "{framing} {event:?}: {c:?}");
    assert_eq!(c.capped_blocks, 0, "{framing} {event:?}: {c:?}");
    records
}

/// The per-sample algorithm (docs/DESIGN.md §2.1, `whiten process --raw`) on the same input in
/// the circuits' units (input / reference level), η = 1/(τ·rate) per sample, measured with the
/// engine's instrument, written out here: every 10 ms, the error of a running mean of its
/// output covariance, exponential with a 50 ms time constant, whose past is forgotten by the
/// relative change of its response matrix over the 10 ms (docs/DESIGN.md §5.3). Returns
/// records the monitor's functions read.
fn per_sample_records(kind: WhitenerKind, event: Event) -> Vec<StatsRecord> {
    let (reference_db, before_db, after_db) = levels(event);
    let eta = 1.0 / (TAU_S * RATE);
    let mut circuit: Box<dyn Circuit<f64>> = build_circuit(
        kind,
        2,
        2,
        eta,
        1.0,
        InterneuronBasis::Dct,
        Solver::default(),
    )
    .unwrap();
    let mut input = Input::new(1);
    let mut frames = Vec::new();
    let event_at = (SETTLE_S * RATE) as usize;
    let alpha = 1.0 - (-(BLOCK as f64 / RATE) / 0.05).exp();
    let mut mean = DMatrix::<f64>::identity(2, 2);
    let mut p_prev = DMatrix::<f64>::identity(2, 2);
    let mut staleness: f64 = 0.0;
    let mut records = Vec::new();
    let mut r = [0.0; 2];
    let mut t = 0;
    while t < ((SETTLE_S + AFTER_S) * RATE) as usize {
        if let (true, Event::Reinit(s)) = (t == event_at, event) {
            circuit.reinitialise(s).unwrap();
        }
        let gain =
            db_to_amp(if t < event_at { before_db } else { after_db }) / db_to_amp(reference_db);
        input.block(gain, &mut frames);
        let mut cov = DMatrix::zeros(2, 2);
        for f in &frames {
            circuit.step(f, &mut r).unwrap();
            let v = DMatrix::from_column_slice(2, 1, &r);
            cov += &v * v.transpose();
        }
        let a = alpha.max(staleness.min(1.0));
        mean = mean * (1.0 - a) + cov / BLOCK as f64 * a;
        // How far the response matrix moved over the block, relative to the smaller of old
        // and new.
        let p = circuit.recurrent_matrix().try_inverse().unwrap();
        staleness = (&p - &p_prev).norm() / p.norm().min(p_prev.norm());
        p_prev = p;
        t += BLOCK;
        records.push(StatsRecord {
            time_s: t as f64 / RATE,
            circuit: kind,
            selected: false,
            error: (&mean - DMatrix::identity(2, 2)).norm() / 2f64.sqrt(),
            eig_min: 0.0,
            eig_max: 0.0,
            condition: 0.0,
            eigenvalues: Default::default(),
            input_rms_db: 0.0,
            change: false,
            reinit: false,
            resets: 0,
        });
    }
    records
}

/// The eigenvalues of `C` after the event and of `M` just before it (adapted, or `s`), in the
/// circuits' units, for the theory.
fn theory_case(event: Event) -> (Vec<f64>, Vec<f64>) {
    match event {
        Event::Reinit(s) => (SPECTRUM.to_vec(), vec![s; 2]),
        Event::Step(_) => {
            let (reference_db, before_db, after_db) = levels(event);
            let g2 = |l: f64| 10f64.powf((l - reference_db) / 10.0);
            (
                SPECTRUM.iter().map(|s| s * g2(after_db)).collect(),
                SPECTRUM
                    .iter()
                    .map(|s| (s * g2(before_db)).sqrt())
                    .collect(),
            )
        }
    }
}

/// The events of the test: re-initialisation at s ∈ {0.01, 0.1, 10, 100} and level steps of
/// ±20 and ±40 dB.
const EVENTS: [Event; 8] = [
    Event::Reinit(0.01),
    Event::Reinit(0.1),
    Event::Reinit(10.0),
    Event::Reinit(100.0),
    Event::Step(20.0),
    Event::Step(40.0),
    Event::Step(-20.0),
    Event::Step(-40.0),
];

/// `measured` within max(0.2 s, 20 %) of `expected`.
fn close(measured: Option<f64>, expected: f64) -> bool {
    measured.is_some_and(|m| (m - expected).abs() <= (0.2 * expected).max(0.2))
}

fn readaptation(records: &[StatsRecord], kind: WhitenerKind) -> Option<f64> {
    readaptation_time(
        records,
        kind,
        SETTLE_S,
        SETTLE_S + AFTER_S,
        DEFAULT_THRESHOLD,
        DEFAULT_HOLD_S,
    )
}

/// Both framings (spectral: N = 1024 in 4 bands, each of at least 4 bins), every event, every
/// whitener: the monitor's readaptation time within max(0.2 s, 20 %) of the continuous-time
/// theory (for the gain circuit after `s = 100` the theory, 20 s, is beyond the 14 s window:
/// it must not have readapted within it).
#[test]
fn readaptation_follows_the_continuous_time_theory() {
    let layout = interneuron_whitening::framing::BandLayout::for_fft_size(1024, 4).unwrap();
    assert!(layout.bands().iter().all(|b| b.len() >= 4), "{layout:?}");
    let mut failures = Vec::new();
    for framing in [Framing::Channels, Framing::Spectral] {
        for event in EVENTS {
            let records = engine_records(framing, event, 4);
            // A re-initialisation is a readaptation window of its own in the monitor.
            if let Event::Reinit(_) = event {
                let table = monitor_table(&records);
                assert!(
                    table
                        .iter()
                        .any(|r| r.cause == ChangeCause::Reinit
                            && (r.time_s - SETTLE_S).abs() < 0.011),
                    "{framing} {event:?}: {table:?}"
                );
            }
            let (sigma2, m0) = theory_case(event);
            for kind in WhitenerKind::ALL {
                let theory = theory_for(kind, framing, &sigma2, &m0);
                let got = readaptation(&records, kind);
                let line =
                    format!("{framing} {event:?} {kind}: measured {got:?} s, theory {theory:.3} s");
                eprintln!("{line}");
                let beyond = theory > AFTER_S && got.is_none();
                if !(close(got, theory) || beyond) {
                    failures.push(line);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// How large the per-sample algorithm's first steps are against its state, right after the
/// event: the relative change of `M` per sample, `η σ²_max / m³_min` for the direct circuit
/// (`ΔM = η(r rᴴ − I)` with `|r|² ≈ σ²/m²`), `η σ²_max / m²_min` for the interneuron circuit
/// (`ΔW/W ≈ η |r|²`).
fn per_sample_step(kind: WhitenerKind, event: Event) -> f64 {
    let (sigma2, m0) = theory_case(event);
    let eta = 1.0 / (TAU_S * RATE);
    let s2 = sigma2.iter().cloned().fold(0.0, f64::max);
    let m = m0.iter().cloned().fold(f64::INFINITY, f64::min);
    match kind {
        WhitenerKind::Direct => eta * s2 / (m * m * m),
        // ΔM = η Φ(r rᴴ − I), ‖Φ(r rᴴ)‖ ≤ λ_max(Φ(I))|r|² = n|r|² on the real pairs frame.
        WhitenerKind::Gain => 2.0 * eta * s2 / (m * m * m),
        _ => eta * s2 / (m * m),
    }
}

/// The engine's block learning against the per-sample algorithm it integrates, on the same
/// samples. Where the per-sample algorithm's steps are small against its state (≤ 10 %), it is
/// an accurate discretisation of the dynamics, and the readaptation times must agree within
/// max(0.2 s, 20 %). Where they are not — the direct circuit right after `s = 0.01` or a
/// +40 dB step, whose first per-sample steps are hundreds of times its state and throw `M` far past
/// its target by an amount that depends on the first few samples — the per-sample algorithm is
/// no longer the dynamics of the theory, and the engine, which integrates those dynamics, must
/// be at least as close to the theory as it is.
///
/// The gain-modulating circuit's per-sample steps are bounded from below (`Δg ≥ −η‖w‖²`) and it
/// does not throw `M` past its target the way the direct circuit does: where its first steps
/// are large (after `s ≤ 0.1` or a rise in level) the per-sample algorithm follows the mean-field
/// dynamics closely, and "at least as close as per sample" would compare the two instruments'
/// lags (the engine's error estimate trails by 0.03–0.12 s, docs/DESIGN.md §4.4) instead of the
/// dynamics; there the engine must be within max(0.2 s, 20 %) of the mean-field theory, the
/// criterion of the theory test. (The window is too short for its `s = 100`, 20 s.)
#[test]
fn block_learning_readapts_like_the_per_sample_algorithm() {
    let mut failures = Vec::new();
    for event in EVENTS {
        let records = engine_records(Framing::Channels, event, 4);
        let (sigma2, m0) = theory_case(event);
        for kind in WhitenerKind::CIRCUITS
            .into_iter()
            .chain([WhitenerKind::Gain])
        {
            if let (WhitenerKind::Gain, Event::Reinit(s)) = (kind, event) {
                if s > 10.0 {
                    continue;
                }
            }
            let engine = readaptation(&records, kind);
            let per_sample = readaptation(&per_sample_records(kind, event), kind);
            let theory = theory_for(kind, Framing::Channels, &sigma2, &m0);
            let step = per_sample_step(kind, event);
            let line = format!(
                "{event:?} {kind}: engine {engine:?} s, per sample {per_sample:?} s (first steps \
                 {step:.2} of the state), theory {theory:.3} s"
            );
            eprintln!("{line}");
            let ok = match (engine, per_sample) {
                (Some(_), Some(p)) if step <= 0.1 => close(engine, p),
                (Some(_), Some(_)) if kind == WhitenerKind::Gain => close(engine, theory),
                (Some(e), Some(p)) => (e - theory).abs() <= (p - theory).abs() + 0.05,
                _ => false,
            };
            if !ok {
                failures.push(line);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
#[test]
#[ignore = "a report: cargo test --release --test fidelity -- --ignored --nocapture"]
fn report() {
    for framing in [Framing::Channels, Framing::Spectral] {
        for event in [
            Event::Reinit(100.0),
            Event::Reinit(10.0),
            Event::Reinit(0.1),
            Event::Reinit(0.01),
            Event::Step(20.0),
            Event::Step(40.0),
            Event::Step(-20.0),
            Event::Step(-40.0),
            Event::Step(60.0),
            Event::Step(-60.0),
            // Not `Reinit(1e4)`: the direct circuit's theory takes longer than its integrator's
            // 10⁴ τ limit (linear in s), and nothing readapts within the window anyway.
        ] {
            let settle = SETTLE_S;
            let records = engine_records(framing, event, 4);
            let mut line = format!("{framing:8} {event:14?}");
            for kind in WhitenerKind::ALL {
                let (sigma2, m0) = theory_case(event);
                let theory = theory_for(kind, framing, &sigma2, &m0);
                let measured = readaptation_time(
                    &records,
                    kind,
                    settle,
                    settle + AFTER_S,
                    DEFAULT_THRESHOLD,
                    DEFAULT_HOLD_S,
                );
                let resets = records
                    .iter()
                    .filter(|r| r.circuit == kind)
                    .map(|r| r.resets)
                    .max()
                    .unwrap_or(0);
                line += &format!(
                    " | {:11} {:>6} / {:6.2} r{resets}",
                    kind.name(),
                    measured.map(|m| format!("{m:.2}")).unwrap_or("—".into()),
                    theory
                );
            }
            eprintln!("{line}");
        }
    }
}

/// Quiet input — 0 to 60 dB under the reference, in both framings, with the default 32 bands
/// (whose lowest bands are single bins) — gives no state reset, no floored step and no capped
/// block, and costs one sub-step per circuit and update once adapted in the channels framing.
/// In the spectral framing a single-bin band's frame is one complex sample: its statistics
/// swing far every frame, and at low levels the direct circuit (whose relaxation is then
/// faster than the frame rate) follows them in a few sub-steps; the mean stays small.
#[test]
fn quiet_input_needs_no_safeguard() {
    for framing in [Framing::Channels, Framing::Spectral] {
        for under_db in [0.0, 20.0, 40.0, 60.0] {
            let params = EngineParams {
                framing,
                tau_ms: TAU_S * 1e3,
                ..EngineParams::default()
            };
            let gain = db_to_amp(params.reference_db - under_db);
            let mut engine = Engine::new(2, RATE, params).unwrap();
            let mut input = Input::new(7);
            let (mut frames, mut l, mut r) = (Vec::new(), vec![0f32; BLOCK], vec![0f32; BLOCK]);
            let mut at_2s = None;
            for step in 0..(6.0 * RATE) as usize / BLOCK {
                input.block(gain, &mut frames);
                for (i, f) in frames.iter().enumerate() {
                    l[i] = f[0] as f32;
                    r[i] = f[1] as f32;
                }
                engine.process(&mut [&mut l[..], &mut r[..]]);
                if step == (2.0 * RATE) as usize / BLOCK {
                    at_2s = Some(engine.counters());
                }
            }
            let (c, c2) = (engine.counters(), at_2s.unwrap());
            assert_eq!(
                (c.state_resets, c.floored_steps, c.capped_blocks),
                (0, 0, 0),
                "{framing} {under_db} dB under the reference: {c:?}"
            );
            // Adapted (the last 4 s): sub-steps per circuit update.
            let per_update = (c.substeps - c2.substeps) as f64 / (c.updates - c2.updates) as f64;
            eprintln!("{framing} −{under_db} dB: {per_update:.2} sub-steps per update");
            let bound = match framing {
                Framing::Channels => 1.05,
                Framing::Spectral => 2.5,
            };
            assert!(
                per_update < bound,
                "{framing} {under_db} dB under the reference: {per_update} sub-steps per update"
            );
        }
    }
}

/// The spectral framing's normalisation (docs/DESIGN.md §3.2): for a white input at the
/// reference level, every band's circuits see the input at the same scale as the channels
/// framing does — each band's estimated covariance (the baseline's `Ĉ`) is the input's
/// covariance in the circuits' units, whatever the band's width, single bins included. So
/// `init scale`, τ and the theory mean the same in every band and in both framings.
#[test]
fn every_band_sees_the_input_at_the_reference_scale() {
    let params = EngineParams {
        framing: Framing::Spectral,
        tau_ms: 2000.0,
        ..EngineParams::default()
    };
    let gain = db_to_amp(params.reference_db);
    let mut engine = Engine::new(2, RATE, params).unwrap();
    let mut input = Input::new(5);
    let (mut frames, mut l, mut r) = (Vec::new(), vec![0f32; BLOCK], vec![0f32; BLOCK]);
    for _ in 0..(12.0 * RATE) as usize / BLOCK {
        input.block(gain, &mut frames);
        for (i, f) in frames.iter().enumerate() {
            l[i] = f[0] as f32;
            r[i] = f[1] as f32;
        }
        engine.process(&mut [&mut l[..], &mut r[..]]);
    }
    let a = mixing(0.4);
    let c = &a * a.transpose();
    let races = engine.spectral_races().unwrap();
    assert_eq!(races.len(), 32);
    for (b, race) in races.iter().enumerate() {
        let est = race.baseline().covariance().map(|v| v.re);
        let rel = (&est - &c).norm() / c.norm();
        assert!(rel < 0.2, "band {b}: Ĉ = {est}, C = {c} ({rel:.3} apart)");
    }
}
