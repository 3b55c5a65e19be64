//! The range table's and the adaptation time's rules.
use super::*;

#[test]
fn defaults_are_in_range_and_valid() {
    for p in RANGES {
        assert!(p.contains(p.default), "{}", p.label);
    }
    EngineParams::default().validate(2, 48_000.0).unwrap();
}

#[test]
fn tau_range_is_what_one_update_allows() {
    // Channels at 48 kHz: 256 samples per update, at most one τ per update → τ ≥ 5.4 ms
    // (256 / 48 000 s = 5.33 ms, rounded up to 0.1 ms) — TAU_MS's own 5 ms is below it.
    let (lo, _) = tau_ms_range(Framing::Channels, 2, 1024, 48_000.0);
    assert!((lo - 5.4).abs() < 0.05, "{lo}");
    // Above 8 channels the blocks are 512 samples: 10.7 ms.
    let (lo, _) = tau_ms_range(Framing::Channels, 16, 1024, 48_000.0);
    assert!((lo - 10.7).abs() < 0.05, "{lo}");
    // Spectral N = 1024 at 48 kHz: one update per two 256-sample hops → τ ≥ 10.7 ms; N = 2048:
    // per 512-sample hop, the same.
    for n in [1024, 2048] {
        let (lo, _) = tau_ms_range(Framing::Spectral, 2, n, 48_000.0);
        assert!((lo - 10.7).abs() < 0.05, "N = {n}: {lo}");
    }
    // N = 256: two 64-sample hops (2.7 ms), below TAU_MS's own 5 ms.
    let (lo, _) = tau_ms_range(Framing::Spectral, 2, 256, 48_000.0);
    assert_eq!(lo, TAU_MS.min);
    // Spectral N = 8192 at 48 kHz: one update per 2048-sample hop → τ ≥ 42.7 ms.
    let (lo, _) = tau_ms_range(Framing::Spectral, 2, 8192, 48_000.0);
    assert!((lo - 42.7).abs() < 0.05, "{lo}");
    // The bound itself is accepted, just below it is not.
    let mut p = EngineParams {
        tau_ms: lo,
        framing: Framing::Spectral,
        fft_size: 8192,
        ..Default::default()
    };
    p.validate(2, 48_000.0).unwrap();
    p.tau_ms = lo - 0.1;
    let e = p.validate(2, 48_000.0).unwrap_err().to_string();
    assert_eq!(
        e,
        "adaptation time 42.6 ms is outside 42.7..60000 ms for the spectral framing at 48000 Hz"
    );
}

#[test]
fn eta_and_tau_convert_both_ways() {
    let rate = vector_rate(Framing::Spectral, 1024, 48_000.0);
    assert_eq!(rate, 187.5);
    let eta = eta_for_tau_ms(300.0, rate);
    assert!((tau_ms_for_eta(eta, rate) - 300.0).abs() < 1e-9);
}

#[test]
fn messages_name_the_flag_and_range() {
    let e = TAU_MS.check_within(2.0, 5.4, 60_000.0).unwrap_err();
    assert_eq!(
        e.for_flag(),
        "--tau-ms 2 is outside 5.4..60000 ms (adaptation time)"
    );
    assert_eq!(show_range(3.472e-7, 0.004167, ""), "3.472e-7..0.004167");
}

#[test]
fn extreme_rates_are_noted_and_usual_ones_are_not() {
    let short_tau = EngineParams {
        tau_ms: 5.0,
        ..Default::default()
    };
    // The adaptation time's usual lower end (one block) is no note.
    assert_eq!(short_tau.rate_adjustments(2, 48_000.0), None);
    assert_eq!(EngineParams::default().rate_adjustments(16, 8_000.0), None);
    let note = short_tau.rate_adjustments(2, 1234.5678).unwrap();
    assert_eq!(
        note,
        "at 1234.57 Hz and 2 channels: learning blocks of 79 samples instead of 256 (at \
         most 64 ms); adaptation time 64 ms instead of 5 ms (valid here: 64..60000 ms)"
    );
    let spectral = EngineParams {
        framing: Framing::Spectral,
        fft_size: 8192,
        tau_ms: 60_000.0,
        ..Default::default()
    };
    assert_eq!(
        spectral.rate_adjustments(2, 1000.0).unwrap(),
        "at 1000 Hz and 2 channels: FFT size 1024 instead of 8192 (a frame spans at most 2 s)"
    );
    assert_eq!(spectral.rate_adjustments(2, 4096.0), None);
    // One hop of the smallest FFT longer than the longest adaptation time.
    let note = spectral.rate_adjustments(2, 1.0).unwrap();
    assert!(
        note.contains("adaptation time 64000 ms instead of 60000 ms"),
        "{note}"
    );
}

/// `--eta 0.01` at 48 kHz asks for τ = 2.08 ms, shorter than one block: refused naming
/// `--eta` and the η range.
#[test]
fn eta_is_checked_as_eta() {
    let mut p = EngineParams::default();
    let e = p.set_eta(0.01, 2, 48_000.0).unwrap_err();
    assert_eq!(
        e.for_flag(),
        "--eta 0.01 is outside 3.472e-7..0.003858 for the channels framing at 48000 Hz \
         (learning rate)"
    );
    p.set_eta(1e-4, 2, 48_000.0).unwrap();
    assert!((p.tau_ms - 1e3 / (1e-4 * 48_000.0)).abs() < 1e-9);
    p.validate(2, 48_000.0).unwrap();
}
