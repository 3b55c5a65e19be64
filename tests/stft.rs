//! Integration tests of the streaming STFT and the band layout (`framing`, docs/DESIGN.md §3.2).
//!
//! Tolerances are stated requirements, not fitted numbers: −100 dB for identity resynthesis (the
//! design's requirement), −60 dB for removing a sine whose band is zeroed (the brief's), zero
//! allocations.

use std::f64::consts::PI;

use interneuron_whitening::framing::{
    BandLayout, SpectralFrame, Stft, StftError, DEFAULT_BANDS, DEFAULT_FFT_SIZE, MAX_CHANNELS,
};
use num_complex::Complex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod support;
use support::counting_alloc::{count_allocations, CountingAllocator};
use support::signals::rms;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Seeded white noise, uniform in ±0.5 (well inside full scale), one signal per channel.
fn noise(channels: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..channels)
        .map(|_| (0..len).map(|_| rng.random_range(-0.5f32..0.5)).collect())
        .collect()
}

/// A sine of `cycles_per_sample` frequency, amplitude `amp` and phase `phase`.
fn sine(len: usize, cycles_per_sample: f64, amp: f64, phase: f64) -> Vec<f64> {
    (0..len)
        .map(|t| amp * (2.0 * PI * cycles_per_sample * t as f64 + phase).sin())
        .collect()
}

/// A different pair of sines per channel, at frequencies that are not bin centres.
fn sines(channels: usize, len: usize, fft_size: usize) -> Vec<Vec<f32>> {
    (0..channels)
        .map(|c| {
            let f1 = (3.3 + 7.1 * c as f64) / fft_size as f64;
            let f2 = (fft_size as f64 / 5.0 + 11.7 * c as f64) / fft_size as f64;
            let a = sine(len, f1, 0.4, 0.3 * c as f64);
            let b = sine(len, f2, 0.2, 1.0);
            a.iter().zip(&b).map(|(x, y)| (x + y) as f32).collect()
        })
        .collect()
}

/// Block sizes from 1 to 8192, log-uniform so that tiny and huge blocks both occur often.
fn random_block(rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.random_range(0.0..(8192f64).ln());
    (u.exp().round() as usize).clamp(1, 8192)
}

/// Streams `input` through `stft` in random block sizes, alternating randomly between the
/// separate-buffer and the in-place API, calling `on_frame` for every frame.
fn stream(
    stft: &mut Stft,
    input: &[Vec<f32>],
    seed: u64,
    mut on_frame: impl FnMut(&mut SpectralFrame<'_>),
) -> Vec<Vec<f32>> {
    let channels = input.len();
    let len = input[0].len();
    let mut output = vec![vec![0.0f32; len]; channels];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut start = 0;
    while start < len {
        let end = (start + random_block(&mut rng)).min(len);
        if rng.random_bool(0.5) {
            let ins: Vec<&[f32]> = input.iter().map(|c| &c[start..end]).collect();
            let mut outs: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..end]).collect();
            stft.process(&ins, &mut outs, &mut on_frame).unwrap();
        } else {
            for (o, i) in output.iter_mut().zip(input) {
                o[start..end].copy_from_slice(&i[start..end]);
            }
            let mut bufs: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[start..end]).collect();
            stft.process_in_place(&mut bufs, &mut on_frame).unwrap();
        }
        start = end;
    }
    output
}

/// Energy of `output − input delayed by latency` (over the whole output; before the latency the
/// delayed input is 0) relative to the energy of the compared input, in dB.
fn delayed_error_db(input: &[f32], output: &[f32], latency: usize) -> f64 {
    let mut err = 0.0f64;
    let mut reference = 0.0f64;
    for (t, &y) in output.iter().enumerate() {
        let x = if t >= latency {
            f64::from(input[t - latency])
        } else {
            0.0
        };
        err += (f64::from(y) - x).powi(2);
        reference += x * x;
    }
    10.0 * (err / reference).log10()
}

// ---------------------------------------------------------------------------------------------
// Resynthesis.

#[test]
fn unmodified_spectra_reproduce_input_delayed_by_latency() {
    for fft_size in [256, 1024, 8192] {
        for channels in [1, 2, 5] {
            for (kind, seed) in [("noise", 1u64), ("sines", 2u64)] {
                let len = 2 * 8192 + 16 * fft_size + 777;
                let input = match kind {
                    "noise" => noise(channels, len, seed + fft_size as u64),
                    _ => sines(channels, len, fft_size),
                };
                // Build with the maximum channel count and narrow it, to exercise that path too.
                let mut stft = Stft::new(fft_size, MAX_CHANNELS).unwrap();
                stft.set_active_channels(channels).unwrap();
                assert_eq!(stft.latency_samples(), fft_size);
                let mut frames = 0u64;
                let output = stream(&mut stft, &input, seed * 31 + channels as u64, |f| {
                    assert_eq!(f.channels(), channels);
                    assert_eq!(f.bins(), fft_size / 2 + 1);
                    assert_eq!(f.index(), frames);
                    frames += 1;
                });
                assert_eq!(frames, (len / (fft_size / 4)) as u64);
                assert_eq!(stft.frames_processed(), frames);
                for c in 0..channels {
                    let db = delayed_error_db(&input[c], &output[c], stft.latency_samples());
                    assert!(
                        db < -100.0,
                        "N={fft_size} channels={channels} {kind} channel {c}: error {db:.1} dB"
                    );
                }
            }
        }
    }
}

/// Each channel is reproduced to −100 dB of its *own* level, whatever its neighbour's. Channels
/// are transformed two at a time, so a quiet channel beside a loud one (here 40, 80 and 120 dB
/// quieter, in either place of a pair) must not inherit the loud one's rounding; a silent
/// channel beside a loud one carries less than the `f32` output's own rounding of the loud one
/// (`2⁻²⁴` relative, −144 dB).
#[test]
fn a_quiet_channel_beside_a_loud_one_keeps_its_own_accuracy() {
    let fft_size = 1024;
    let len = 30 * fft_size + 123;
    for quiet_db in [40.0, 80.0, 120.0, f64::INFINITY] {
        // Pairs (loud, quiet) and (quiet, loud).
        let mut input = noise(4, len, 71);
        let gain = 10f64.powf(-quiet_db / 20.0) as f32;
        for c in [1, 2] {
            input[c].iter_mut().for_each(|x| *x *= gain);
        }
        let mut stft = Stft::new(fft_size, 4).unwrap();
        let output = stream(&mut stft, &input, 72, |_| {});
        for c in 0..4 {
            if gain == 0.0 && (c == 1 || c == 2) {
                let partner = if c == 1 { 0 } else { 3 };
                // Same lengths, so the ratio of RMS values is that of energies.
                let db = 20.0 * (rms(&output[c]) / rms(&input[partner])).log10();
                assert!(db < -144.0, "silent channel {c}: {db:.1} dB of its partner");
            } else {
                let db = delayed_error_db(&input[c], &output[c], fft_size);
                assert!(
                    db < -100.0,
                    "{quiet_db} dB quieter: channel {c} error {db:.1} dB"
                );
            }
        }
    }
}

/// Where every frame covering an output sample was declared untouched, the sample is its
/// input `N` earlier bit for bit — an exact null, which a user checks at 0 % wet — whatever the
/// precision of the transforms. Frames `a..b` are halved instead (and not declared): the
/// samples they cover, and only those, follow the modification: to −100 dB as a run that
/// declares nothing resynthesises them, and halved where all four covering frames were.
#[test]
fn samples_of_untouched_frames_are_copied_exactly() {
    for fft_size in [256, 1024] {
        let hop = fft_size / 4;
        for channels in [1, 3] {
            let len = 40 * hop + 17;
            let input = noise(channels, len, 81 + channels as u64);
            let (a, b) = (12u64, 20u64);
            let mut stft = Stft::new(fft_size, channels).unwrap();
            let output = stream(&mut stft, &input, 82, |f| {
                if (a..b).contains(&f.index()) {
                    f.as_mut_slice().iter_mut().for_each(|z| *z *= 0.5);
                } else {
                    f.leave_untouched();
                }
            });
            let mut plain = Stft::new(fft_size, channels).unwrap();
            let reference = stream(&mut plain, &input, 83, |f| {
                if (a..b).contains(&f.index()) {
                    f.as_mut_slice().iter_mut().for_each(|z| *z *= 0.5);
                }
            });
            // Frame m ends at input sample (m + 1)·hop − 1; output t is input t − N, which the
            // frames ending in t − N ..= t − 1 cover.
            let (a, b) = (a as usize, b as usize);
            let influenced = (a + 1) * hop..=b * hop - 1 + fft_size;
            let halved = (a + 1) * hop - 1 + fft_size..=b * hop;
            for c in 0..channels {
                let (x, y) = (&input[c], &output[c]);
                for t in 0..len {
                    let expected = if t >= fft_size { x[t - fft_size] } else { 0.0 };
                    if !influenced.contains(&t) {
                        assert_eq!(
                            y[t].to_bits(),
                            expected.to_bits(),
                            "N={fft_size} channels={channels} channel {c} t={t}"
                        );
                    }
                }
                let span = influenced.clone();
                let db = delayed_error_db(&reference[c][span.clone()], &y[span], 0);
                assert!(
                    db < -100.0,
                    "N={fft_size} channel {c}: {db:.1} dB off resynthesis"
                );
                let span = halved.clone();
                let twice: Vec<f32> = y[span.clone()].iter().map(|v| 2.0 * v).collect();
                let db = delayed_error_db(
                    &x[span.start() - fft_size..=span.end() - fft_size],
                    &twice,
                    0,
                );
                assert!(
                    db < -100.0,
                    "N={fft_size} channel {c}: halved to {db:.1} dB"
                );
            }
        }
    }
}

/// The latency is exact, not merely "somewhere near N": an impulse comes out at t0 + N and only
/// there.
#[test]
fn impulse_comes_out_exactly_latency_samples_later() {
    let fft_size = 1024;
    let len = 4 * fft_size;
    let t0 = 123;
    let mut input = vec![vec![0.0f32; len]];
    input[0][t0] = 1.0;
    let mut stft = Stft::new(fft_size, 1).unwrap();
    let output = stream(&mut stft, &input, 5, |_| {});
    for (t, &y) in output[0].iter().enumerate() {
        let expected = if t == t0 + fft_size { 1.0 } else { 0.0 };
        assert!((y - expected).abs() < 1e-6, "t={t} y={y}");
    }
}

/// After `reset`, the STFT behaves as if freshly built (identical output for identical input).
#[test]
fn reset_restores_initial_state() {
    let input = noise(2, 10_000, 9);
    let mut stft = Stft::new(512, 2).unwrap();
    let first = stream(&mut stft, &input, 3, |_| {});
    stft.reset();
    assert_eq!(stft.frames_processed(), 0);
    let second = stream(&mut stft, &input, 4, |_| {});
    assert_eq!(first, second);
}

/// Channels that become active start from silence: their output is their input delayed, while
/// the channel that stayed active is undisturbed.
#[test]
fn activating_channels_mid_stream_keeps_lockstep() {
    let fft_size = 256;
    let len = 20 * fft_size;
    let input = noise(3, len, 11);
    let split = 1000; // not a hop boundary
    let mut stft = Stft::new(fft_size, 3).unwrap();
    // Fill channels 1 and 2 with garbage history, then narrow to one channel.
    stream(&mut stft, &noise(3, 3000, 12), 1, |_| {});
    stft.reset();
    stft.set_active_channels(1).unwrap();
    let head = stream(&mut stft, &[input[0][..split].to_vec()], 2, |_| {});
    stft.set_active_channels(3).unwrap();
    let tail_in: Vec<Vec<f32>> = input.iter().map(|c| c[split..].to_vec()).collect();
    let tail = stream(&mut stft, &tail_in, 3, |f| assert_eq!(f.channels(), 3));
    let ch0: Vec<f32> = head[0].iter().chain(&tail[0]).copied().collect();
    assert!(delayed_error_db(&input[0], &ch0, fft_size) < -100.0);
    for c in 1..3 {
        assert!(delayed_error_db(&tail_in[c], &tail[c], fft_size) < -100.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Spectral modification.

/// Zeroing bins 80..=120 of channel 0 removes a sine at bin 100.37 (off-centre, so it leaks
/// across bins) by more than 60 dB, leaves a sine at bin 300.5 of the same channel intact, and
/// leaves channel 1 (not modified) bit-for-bit identity to −100 dB.
#[test]
fn zeroing_a_band_removes_a_sine_in_it() {
    let fft_size = 1024;
    let latency = fft_size;
    let len = 40 * fft_size;
    let in_band = sine(len, 100.37 / fft_size as f64, 0.5, 0.2);
    let out_band = sine(len, 300.5 / fft_size as f64, 0.25, 1.1);
    let mixed: Vec<f32> = in_band
        .iter()
        .zip(&out_band)
        .map(|(a, b)| (a + b) as f32)
        .collect();
    let input = vec![mixed.clone(), mixed];
    let mut stft = Stft::new(fft_size, 2).unwrap();
    let output = stream(&mut stft, &input, 21, |f| {
        for z in &mut f.channel_mut(0)[80..=120] {
            *z = Complex::new(0.0, 0.0);
        }
    });
    // Skip the latency plus one window: frames that straddle the sines' onset at t = 0 see a
    // step, which is broadband and not confined to the zeroed band.
    let start = latency + fft_size;
    let mut residual = 0.0;
    let mut removed = 0.0;
    for t in start..len {
        residual += (f64::from(output[0][t]) - out_band[t - latency]).powi(2);
        removed += in_band[t - latency].powi(2);
    }
    let db = 10.0 * (residual / removed).log10();
    assert!(
        db < -60.0,
        "residual {db:.1} dB relative to the removed sine"
    );
    let db1 = delayed_error_db(&input[1], &output[1], latency);
    assert!(db1 < -100.0, "untouched channel error {db1:.1} dB");
}

/// `gather_bin`/`scatter_bin` see bins as vectors across channels: swapping the two entries of
/// every bin swaps the output channels.
#[test]
fn gather_and_scatter_bins_across_channels() {
    let fft_size = 512;
    let input = noise(2, 30 * fft_size, 31);
    let mut stft = Stft::new(fft_size, 2).unwrap();
    let mut v = [Complex::new(0.0, 0.0); 2];
    let output = stream(&mut stft, &input, 7, |f| {
        for k in 0..f.bins() {
            f.gather_bin(k, &mut v);
            v.swap(0, 1);
            f.scatter_bin(k, &v);
        }
    });
    assert!(delayed_error_db(&input[1], &output[0], fft_size) < -100.0);
    assert!(delayed_error_db(&input[0], &output[1], fft_size) < -100.0);
}

/// The spectra are scaled so that white noise of variance σ² has E|X[k]|² = σ² in every bin
/// (what makes the reference level mean the same in both framings). Averaged over ~500 frames ×
/// ≥ 127 bins the estimate's relative standard deviation is under 1 %, so a 5 % band only
/// fails if the scaling is wrong (a wrong window sum or a missing 1/N is a factor of 2 or more).
#[test]
fn white_noise_has_unit_power_per_bin_at_unit_variance() {
    for fft_size in [256, 2048] {
        let len = 512 * fft_size / 4 + fft_size;
        // Uniform in ±0.5 has variance 1/12.
        let variance = 1.0 / 12.0;
        let input = noise(1, len, 41);
        let mut stft = Stft::new(fft_size, 1).unwrap();
        let (mut sum, mut count) = (0.0, 0usize);
        stream(&mut stft, &input, 8, |f| {
            // Skip the frames that still contain the initial silence.
            if f.index() >= 4 {
                // Interior bins (DC and Nyquist are real-valued, so their |X|² has the same
                // mean but a larger spread).
                for z in &f.channel(0)[1..f.bins() - 1] {
                    sum += z.norm_sqr();
                    count += 1;
                }
            }
        });
        let ratio = sum / count as f64 / variance;
        assert!(
            (ratio - 1.0).abs() < 0.05,
            "N={fft_size}: power ratio {ratio}"
        );
    }
}

/// An imaginary part put on DC or Nyquist by the callback (which a real signal cannot have) is
/// discarded, not an error, and the rest of the frame is resynthesised normally.
#[test]
fn imaginary_dc_and_nyquist_are_discarded() {
    let fft_size = 256;
    let input = noise(1, 20 * fft_size, 51);
    let mut stft = Stft::new(fft_size, 1).unwrap();
    let output = stream(&mut stft, &input, 9, |f| {
        let ch = f.channel_mut(0);
        ch[0].im += 1.0;
        let last = ch.len() - 1;
        ch[last].im -= 1.0;
    });
    assert!(delayed_error_db(&input[0], &output[0], fft_size) < -100.0);
}

/// Non-finite input samples are replaced by 0 and counted; they do not reach the output.
#[test]
fn non_finite_input_is_zeroed_and_counted() {
    let fft_size = 256;
    let mut input = noise(1, 10 * fft_size, 61);
    let mut expected = input.clone();
    for (i, bad) in [
        (100, f32::NAN),
        (700, f32::INFINITY),
        (1500, f32::NEG_INFINITY),
    ] {
        input[0][i] = bad;
        expected[0][i] = 0.0;
    }
    let mut stft = Stft::new(fft_size, 1).unwrap();
    let output = stream(&mut stft, &input, 10, |_| {});
    assert_eq!(stft.non_finite_inputs(), 3);
    assert!(output[0].iter().all(|y| y.is_finite()));
    assert!(delayed_error_db(&expected[0], &output[0], fft_size) < -100.0);
}

// ---------------------------------------------------------------------------------------------
// Real-time safety.

/// After construction, `process`, `process_in_place`, `set_active_channels` and `reset` make no
/// allocator calls at all, for block sizes from 1 to well over N, with a callback that reads and
/// writes the spectra.
#[test]
fn processing_does_not_allocate() {
    for fft_size in [256, 8192] {
        let channels = 4;
        let len = 3 * 8192 + 5;
        let input = noise(channels, len, 71);
        let mut output = vec![vec![0.0f32; len]; channels];
        let mut stft = Stft::new(fft_size, channels).unwrap();
        // Block sizes vary; the per-block slice vectors are built outside the counted region.
        let blocks = [1usize, 2, 63, 64, 65, 1000, 8192, 12345, 3];
        let mut v = [Complex::new(0.0, 0.0); 4];
        let mut frames = 0u64;
        let mut on_frame = |f: &mut SpectralFrame<'_>| {
            frames += 1;
            // Runs of untouched frames, so that the exact copy is counted too.
            if (frames / 7).is_multiple_of(2) {
                f.leave_untouched();
                return;
            }
            for k in 0..f.bins() {
                let n = f.channels();
                f.gather_bin(k, &mut v[..n]);
                for z in &mut v[..n] {
                    *z *= 0.5;
                }
                f.scatter_bin(k, &v[..n]);
            }
        };
        let mut start = 0;
        let mut allocations = 0;
        for (i, &b) in blocks.iter().cycle().enumerate() {
            if start >= len {
                break;
            }
            let end = (start + b).min(len);
            let in_slices: Vec<&[f32]> = input.iter().map(|c| &c[start..end]).collect();
            let mut out_slices: Vec<&mut [f32]> =
                output.iter_mut().map(|c| &mut c[start..end]).collect();
            allocations += count_allocations(|| {
                if i % 3 == 2 {
                    stft.process_in_place(&mut out_slices, &mut on_frame)
                        .unwrap();
                } else {
                    stft.process(&in_slices, &mut out_slices, &mut on_frame)
                        .unwrap();
                }
            });
            start = end;
        }
        allocations += count_allocations(|| {
            stft.set_active_channels(1).unwrap();
            stft.set_active_channels(channels).unwrap();
            stft.reset();
        });
        assert!(frames > 0);
        assert_eq!(
            allocations, 0,
            "N={fft_size}: allocator calls in processing"
        );
    }
}

/// Sanity check of the counter itself, so that the zero above means something.
#[test]
fn allocation_counter_counts() {
    let n = count_allocations(|| {
        let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
        std::hint::black_box(&v);
    });
    assert!(n >= 1);
}

// ---------------------------------------------------------------------------------------------
// Errors instead of panics.

#[test]
fn bad_constructor_arguments_are_errors() {
    for size in [0, 3, 1000, 1023, 1025, 6000] {
        assert_eq!(
            Stft::new(size, 1).unwrap_err(),
            StftError::NotPowerOfTwo(size)
        );
    }
    for size in [1, 2, 64, 128, 16384, 1 << 20] {
        assert!(matches!(
            Stft::new(size, 1),
            Err(StftError::SizeOutOfRange { size: s, .. }) if s == size
        ));
    }
    assert_eq!(Stft::new(1024, 0).unwrap_err(), StftError::ZeroChannels);
    assert!(matches!(
        Stft::new(1024, 17),
        Err(StftError::TooManyChannels {
            requested: 17,
            max: 16
        })
    ));
    assert!(Stft::new(256, 1).is_ok() && Stft::new(8192, 16).is_ok());
    assert!(Stft::new(DEFAULT_FFT_SIZE, 2).is_ok());

    let mut stft = Stft::new(1024, 4).unwrap();
    assert_eq!(stft.set_active_channels(0), Err(StftError::ZeroChannels));
    assert_eq!(
        stft.set_active_channels(5),
        Err(StftError::TooManyChannels {
            requested: 5,
            max: 4
        })
    );
    assert_eq!(stft.active_channels(), 4);

    assert_eq!(BandLayout::new(513, 0), Err(StftError::ZeroBands));
    assert_eq!(BandLayout::new(0, 32), Err(StftError::ZeroBins));
    assert_eq!(
        BandLayout::for_fft_size(1000, 32),
        Err(StftError::NotPowerOfTwo(1000))
    );
}

#[test]
fn mismatched_buffers_are_errors_and_change_nothing() {
    let mut stft = Stft::new(256, 2).unwrap();
    let a = [0.5f32; 100];
    let b = [0.25f32; 99];
    let mut o1 = [7.0f32; 100];
    let mut o2 = [7.0f32; 100];
    let mut calls = 0;
    // Wrong channel count.
    assert!(matches!(
        stft.process(&[&a[..]], &mut [&mut o1[..]], |_| calls += 1),
        Err(StftError::ChannelCountMismatch {
            expected: 2,
            inputs: 1,
            outputs: 1
        })
    ));
    // Wrong lengths.
    assert!(matches!(
        stft.process(&[&a[..], &b[..]], &mut [&mut o1[..], &mut o2[..]], |_| {
            calls += 1
        }),
        Err(StftError::BlockLengthMismatch {
            channel: 1,
            len: 99,
            expected: 100
        })
    ));
    assert!(matches!(
        stft.process(&[&a[..], &a[..]], &mut [&mut o1[..], &mut o2[..99]], |_| {
            calls += 1
        }),
        Err(StftError::BlockLengthMismatch {
            channel: 1,
            len: 99,
            expected: 100
        })
    ));
    assert!(matches!(
        stft.process_in_place(&mut [&mut o1[..]], |_| calls += 1),
        Err(StftError::ChannelCountMismatch { expected: 2, .. })
    ));
    assert_eq!(calls, 0);
    assert_eq!(o1, [7.0; 100]);
    // Nothing was consumed: the stream still starts at t = 0, so an impulse now comes out at N.
    let mut x = vec![vec![0.0f32; 1024]; 2];
    x[0][0] = 1.0;
    let y = stream(&mut stft, &x, 1, |_| {});
    assert!((y[0][256] - 1.0).abs() < 1e-6);
    // Empty blocks are fine.
    let (empty, mut e1, mut e2): (&[f32], [f32; 0], [f32; 0]) = (&[], [], []);
    stft.process(&[empty, empty], &mut [&mut e1[..], &mut e2[..]], |_| {
        calls += 1
    })
    .unwrap();
    assert_eq!(calls, 0);
}

// ---------------------------------------------------------------------------------------------
// Band layout.

/// Checks the invariants every layout must satisfy and returns the widths.
fn check_layout(layout: &BandLayout, num_bins: usize, requested: usize) -> Vec<usize> {
    let bands = layout.bands();
    assert_eq!(layout.num_bins(), num_bins);
    assert_eq!(bands.len(), requested.min(num_bins), "band count");
    assert_eq!(layout.num_bands(), bands.len());
    assert_eq!(bands[0].start, 0, "first band starts at DC");
    assert_eq!(
        bands.last().unwrap().end,
        num_bins,
        "last band ends at Nyquist"
    );
    for w in bands.windows(2) {
        assert_eq!(w[0].end, w[1].start, "contiguous and in order");
    }
    for r in bands {
        assert!(r.start < r.end, "non-empty band {r:?}");
    }
    // Every bin in exactly one band (implied by the above, checked directly anyway).
    let mut owner = vec![0usize; num_bins];
    for r in bands {
        for k in r.clone() {
            owner[k] += 1;
        }
    }
    assert!(owner.iter().all(|&n| n == 1));
    for (b, r) in bands.iter().enumerate() {
        assert_eq!(layout.band_of_bin(r.start), Some(b));
        assert_eq!(layout.band_of_bin(r.end - 1), Some(b));
    }
    assert_eq!(layout.band_of_bin(num_bins), None);
    bands.iter().map(|r| r.len()).collect()
}

#[test]
fn band_layout_invariants() {
    for fft_size in [256, 1024, 8192] {
        let k = fft_size / 2 + 1;
        for requested in [1, 2, 3, 7, DEFAULT_BANDS, 100, k - 1, k, k + 1, 10 * k] {
            let layout = BandLayout::for_fft_size(fft_size, requested).unwrap();
            let widths = check_layout(&layout, k, requested);
            let per_bin = requested >= k;
            assert_eq!(layout.is_per_bin(), per_bin);
            if per_bin {
                assert!(widths.iter().all(|&w| w == 1), "per-bin");
                continue;
            }
            // DC shares the first band with the lowest bin(s).
            assert!(layout.bands()[0].len() >= 2, "DC not alone");
            // Log spacing, part 1: counting bins above DC, widths never decrease.
            let mut above_dc = widths.clone();
            above_dc[0] -= 1;
            for w in above_dc.windows(2) {
                assert!(
                    w[0] <= w[1],
                    "N={fft_size} B={requested}: widths {above_dc:?}"
                );
            }
        }
    }
}

/// Log spacing, part 2: where bands are wider than a bin, equal ratios mean equal numbers of
/// bands per octave; the top two octaves must hold the same number of band edges up to the
/// rounding of edges to bins (±1).
#[test]
fn band_layout_is_log_spaced() {
    for (fft_size, requested) in [(1024, 32), (8192, 32), (8192, 64), (1024, 16)] {
        let k = fft_size / 2 + 1;
        let layout = BandLayout::for_fft_size(fft_size, requested).unwrap();
        let starts: Vec<usize> = layout.bands().iter().map(|r| r.start).collect();
        let count = |lo: usize, hi: usize| starts.iter().filter(|&&s| s >= lo && s < hi).count();
        let top = count(k / 2, k);
        let next = count(k / 4, k / 2);
        assert!(top >= 1);
        assert!(
            top.abs_diff(next) <= 1,
            "N={fft_size} B={requested}: {top} bands in the top octave, {next} in the next; {:?}",
            layout.bands()
        );
    }
    // And the default layout is far from linear: the top band is much wider than the lowest.
    let layout = BandLayout::for_fft_size(DEFAULT_FFT_SIZE, DEFAULT_BANDS).unwrap();
    let widths: Vec<usize> = layout.bands().iter().map(|r| r.len()).collect();
    assert!(widths[widths.len() - 1] > 10 * widths[1]);
}

/// B = 1 is a single band of all bins; B = 2 splits near the geometric middle.
#[test]
fn band_layout_small_cases() {
    let one = BandLayout::new(513, 1).unwrap();
    assert_eq!(one.bands(), std::slice::from_ref(&(0..513)));
    let two = BandLayout::new(513, 2).unwrap();
    // Geometric middle of bins 1..513 is sqrt(513) ≈ 22.6.
    assert_eq!(two.bands(), &[0..23, 23..513]);
    let tiny = BandLayout::new(1, 5).unwrap();
    assert_eq!(tiny.bands(), std::slice::from_ref(&(0..1)));
    let two_bins = BandLayout::new(2, 1).unwrap();
    assert_eq!(two_bins.bands(), std::slice::from_ref(&(0..2)));
}
