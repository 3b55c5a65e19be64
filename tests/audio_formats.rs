//! The formats `whiten process` reads besides WAV — AIFF, FLAC, Ogg Vorbis, MP3 — from files
//! made by the real encoders (`flac`, `sox`, `oggenc`, `lame`; see `support::encoders`) out of
//! WAV twins written by this crate:
//!
//! * lossless files decode to exactly the samples of their twin, and `whiten process` turns
//!   them into byte-identical output;
//! * lossy files decode to their twin within the codec's tolerance (derived at
//!   [`LOSSY_MIN_SNR_DB`]), with the encoder's delay and padding removed: same length, no lag;
//!   they are processed into 32-bit float WAV;
//! * truncated, damaged, empty and unsupported files of each format are refused by
//!   `whiten process` with a message naming the file, nothing on stdout, and OUT's directory
//!   untouched (an existing OUT kept, no new file, no temporary left).

mod support;

use interneuron_whitening::io::{
    read_audio, read_wav, write_wav, AudioInput, SampleFormat, WavError, WavSpec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::encoders;
use support::files::{snapshot, whiten_from_stdin, whiten_process as process};

// ---------------------------------------------------------------------------------------------
// Signals and files
// ---------------------------------------------------------------------------------------------

fn spec(format: SampleFormat, channels: u16, sample_rate: u32) -> WavSpec {
    WavSpec {
        sample_rate,
        channels,
        format,
    }
}

/// Noise that uses every bit (uniform in ±0.9, with both full-scale ends in the first frames),
/// interleaved: the hardest case for a lossless codec to get exactly right.
fn noise(channels: usize, frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..channels * frames)
        .map(|_| rng.random_range(-0.9f32..0.9))
        .collect();
    x[0] = -1.0;
    x[1] = 1.0;
    x
}

/// A few partials per channel (different per channel, all below 5 kHz, total peak < 0.6) with
/// 20 ms fades at both ends: music-like material a perceptual codec is built for, without the
/// clicks of an abrupt start that every codec smears.
fn tones(channels: usize, frames: usize, rate: u32) -> Vec<f32> {
    let partials = [(220.0, 0.2), (523.25, 0.15), (1318.5, 0.1), (3520.0, 0.05)];
    let fade = (0.02 * rate as f64) as usize;
    let mut x = Vec::with_capacity(channels * frames);
    for t in 0..frames {
        let ramp = (t.min(frames - 1 - t) as f64 / fade as f64).min(1.0);
        for c in 0..channels {
            let time = t as f64 / f64::from(rate);
            let v: f64 = partials
                .iter()
                .enumerate()
                .map(|(k, &(f, a))| {
                    let f = f * (1.0 + 0.01 * c as f64);
                    let phase = 0.7 * (k + 3 * c) as f64;
                    a * (std::f64::consts::TAU * f * time + phase).sin()
                })
                .sum();
            x.push((ramp * v) as f32);
        }
    }
    x
}

/// Writes a WAV twin and returns its samples as the WAV reader gives them (quantised).
fn twin(path: &Path, s: WavSpec, x: &[f32]) -> Vec<f32> {
    write_wav(path, s, x).unwrap();
    read_wav(path).unwrap().1
}

// ---------------------------------------------------------------------------------------------
// Running `whiten process` and checking clean failures
// ---------------------------------------------------------------------------------------------

/// Runs `whiten process IN OUT --stats …` with OUT existing and absent; checks a clean failure
/// (exit 1, no panic, nothing on stdout, stderr `whiten: error: ` naming IN and containing one
/// of `words`) and that OUT's directory is exactly as before. Returns stderr.
fn check_refused(root: &Path, what: &str, input: &Path, words: &[&str]) -> String {
    let dir = root.join("out");
    std::fs::create_dir(&dir).unwrap();
    let old = dir.join("old.wav");
    std::fs::write(&old, b"an existing OUT that a failed run must keep").unwrap();
    let before = snapshot(&dir);
    let mut stderr = String::new();
    for out in [old, dir.join("new.wav")] {
        let o = process(&[
            input.as_os_str(),
            out.as_os_str(),
            "--stats".as_ref(),
            dir.join("stats.jsonl").as_os_str(),
        ]);
        stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{what}: exit status; stderr: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: panic: {stderr}");
        assert!(o.stdout.is_empty(), "{what}: printed to stdout");
        let named = input.display().to_string();
        assert!(
            stderr.starts_with("whiten: error: ") && stderr.contains(&named),
            "{what}: the error does not name {named}: {stderr}"
        );
        assert!(
            words.iter().any(|w| stderr.contains(w)),
            "{what}: expected one of {words:?} in: {stderr}"
        );
        assert_eq!(snapshot(&dir), before, "{what}: OUT's directory changed");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{what}: {}", stderr.trim());
    stderr
}

/// `bytes` written to `root/name`, returning the path.
fn file_with(root: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = root.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Lossless: exact
// ---------------------------------------------------------------------------------------------

#[test]
fn lossless_files_decode_to_exactly_their_wav_twins() {
    if !encoders::available(
        "lossless_files_decode_to_exactly_their_wav_twins",
        &["flac", "sox"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (twin's spec, encoding, the spec the decoder must report)
    type Case = (WavSpec, &'static str, WavSpec);
    let cases: &[Case] = &[
        (
            spec(SampleFormat::Int16, 2, 44_100),
            "flac",
            spec(SampleFormat::Int16, 2, 44_100),
        ),
        (
            spec(SampleFormat::Int24, 1, 48_000),
            "flac",
            spec(SampleFormat::Int24, 1, 48_000),
        ),
        (
            spec(SampleFormat::Int32, 2, 96_000),
            "flac",
            spec(SampleFormat::Int32, 2, 96_000),
        ),
        (
            spec(SampleFormat::Int16, 5, 22_050),
            "flac",
            spec(SampleFormat::Int16, 5, 22_050),
        ),
        (
            spec(SampleFormat::Int24, 2, 44_100),
            "ogg-flac",
            spec(SampleFormat::Int24, 2, 44_100),
        ),
        (
            spec(SampleFormat::Int16, 2, 44_100),
            "aiff",
            spec(SampleFormat::Int16, 2, 44_100),
        ),
        (
            spec(SampleFormat::Int24, 3, 48_000),
            "aiff",
            spec(SampleFormat::Int24, 3, 48_000),
        ),
        (
            spec(SampleFormat::Int32, 1, 8_000),
            "aiff",
            spec(SampleFormat::Int32, 1, 8_000),
        ),
        (
            spec(SampleFormat::Float32, 2, 44_100),
            "aifc-float",
            spec(SampleFormat::Float32, 2, 44_100),
        ),
        // 8-bit AIFF: samples k/128, held exactly by a 16-bit WAV.
        (
            spec(SampleFormat::Int16, 2, 11_025),
            "aiff-8",
            spec(SampleFormat::Int16, 2, 11_025),
        ),
    ];
    for (i, &(s, kind, want)) in cases.iter().enumerate() {
        let what = format!(
            "{kind} from {} ch {} at {} Hz",
            s.channels, s.format, s.sample_rate
        );
        let frames = 20_000 + 37 * i;
        let mut x = noise(usize::from(s.channels), frames, i as u64);
        // sox carries samples as 32-bit integers: float is exact on a grid of 2⁻²³ within
        // [−1, 1); 8-bit AIFF holds k/128.
        let grid = match kind {
            "aiff-8" => Some(128.0f32),
            "aifc-float" => Some(8_388_608.0),
            _ => None,
        };
        if let Some(scale) = grid {
            for v in &mut x {
                *v = (*v * scale).round().clamp(-scale, scale - 1.0) / scale;
            }
        }
        let wav = d.join(format!("twin-{i}.wav"));
        let reference = twin(&wav, s, &x);
        let encoded = d.join(format!("case-{i}.{kind}"));
        match kind {
            // hound marks 5 channels with a speaker mask flac does not know; none is needed.
            "flac" => encoders::flac(&wav, &encoded, &["--channel-map=none"]),
            "ogg-flac" => encoders::flac(&wav, &encoded, &["--ogg"]),
            "aiff" => encoders::sox(&wav, &["-t", "aiff"], &encoded),
            "aifc-float" => encoders::sox(&wav, &["-t", "aifc", "-e", "floating-point"], &encoded),
            "aiff-8" => encoders::sox(&wav, &["-D", "-b", "8", "-t", "aiff"], &encoded),
            _ => unreachable!(),
        }
        let input = AudioInput::open(&encoded).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(input.spec(), want, "{what}: spec");
        assert_eq!(
            input.frames(),
            Some(frames as u64),
            "{what}: declared frames"
        );
        let (got_spec, y) = read_audio(&encoded).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got_spec, want, "{what}");
        assert_eq!(y.len(), reference.len(), "{what}: length");
        let differ = y
            .iter()
            .zip(&reference)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(differ, None, "{what}: first differing sample");
    }
}

#[test]
fn whiten_process_gives_a_lossless_file_the_output_of_its_wav_twin() {
    if !encoders::available(
        "whiten_process_gives_a_lossless_file_the_output_of_its_wav_twin",
        &["flac", "sox"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, (s, kind, mode)) in [
        (spec(SampleFormat::Int24, 2, 48_000), "flac", "spectral"),
        (spec(SampleFormat::Int16, 3, 44_100), "aiff", "channels"),
    ]
    .into_iter()
    .enumerate()
    {
        let wav = d.join(format!("twin-{i}.wav"));
        twin(
            &wav,
            s,
            &tones(usize::from(s.channels), 30_000, s.sample_rate),
        );
        // Named .wav on purpose: the contents, not the name, choose the reader.
        let encoded = d.join(format!("encoded-{i}.wav"));
        match kind {
            "flac" => encoders::flac(&wav, &encoded, &[]),
            _ => encoders::sox(&wav, &["-t", "aiff"], &encoded),
        }
        let outputs: Vec<Vec<u8>> = [&wav, &encoded]
            .iter()
            .map(|input| {
                let out = d.join("out.wav");
                let o = process(&[
                    input.as_os_str(),
                    out.as_os_str(),
                    "--mode".as_ref(),
                    mode.as_ref(),
                ]);
                assert!(
                    o.status.success(),
                    "{kind}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                std::fs::read(&out).unwrap()
            })
            .collect();
        assert!(
            outputs[0] == outputs[1],
            "{kind}: OUT differs from the twin's OUT"
        );
        let (ospec, _) = read_wav(d.join("out.wav")).unwrap();
        assert_eq!(ospec, s, "{kind}: OUT keeps the encoding");
    }
}

// ---------------------------------------------------------------------------------------------
// Lossy: within the codec's tolerance
// ---------------------------------------------------------------------------------------------

/// The least signal-to-error ratio accepted between a lossy file and its twin, per channel.
///
/// Why this bound: perceptual coders shape their quantisation noise under the masking threshold
/// of the signal; for tonal maskers the psychoacoustic models of LAME and libvorbis put that
/// threshold at least ~15 dB below each partial (the tone-masking-noise offset), and at the
/// bit rates used here (MP3 CBR 320 kbit/s and VBR -V2, Vorbis q6 ≈ 190 kbit/s) the encoders
/// have bits to spare and go further down: the ratios measured with lame 3.100 and libvorbis
/// 1.3.7 are 75 dB (320 kbit/s), 48 dB (-V2) and 35–40 dB (q6), printed by the test. 20 dB
/// leaves a wide margin for other encoder versions and still proves the alignment: the test
/// computes what the twin itself scores against a copy of itself shifted by one sample (about
/// 18 dB for these tones at 44.1 kHz, less at lower rates) and checks that this stays below the
/// bound; a missing or doubled encoder delay (hundreds of samples) scores about 0 dB.
const LOSSY_MIN_SNR_DB: f64 = 20.0;

/// Signal-to-error ratio of `y` against `x` for channel `c` of `channels`, in dB.
fn snr_db(x: &[f32], y: &[f32], channels: usize, c: usize) -> f64 {
    let (mut signal, mut error) = (0.0f64, 0.0f64);
    for (a, b) in x.iter().zip(y).skip(c).step_by(channels) {
        signal += f64::from(*a).powi(2);
        error += (f64::from(*b) - f64::from(*a)).powi(2);
    }
    10.0 * (signal / error).log10()
}

/// The lag (in `-max..=max` frames) at which channel 0 of `y` best matches `x`.
fn best_lag(x: &[f32], y: &[f32], channels: usize, max: i64) -> i64 {
    let frames = (x.len() / channels) as i64;
    (-max..=max)
        .max_by(|&a, &b| {
            let corr = |lag: i64| -> f64 {
                (max..frames - max)
                    .map(|t| {
                        let i = t as usize * channels;
                        let j = (t + lag) as usize * channels;
                        f64::from(x[i]) * f64::from(y[j])
                    })
                    .sum()
            };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap()
}

#[test]
fn lossy_files_match_their_wav_twins_within_the_codec_tolerance() {
    if !encoders::available(
        "lossy_files_match_their_wav_twins_within_the_codec_tolerance",
        &["oggenc", "lame"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, (channels, rate, kind, options)) in [
        (2u16, 44_100u32, "mp3", &["-b", "320"][..]),
        (1, 48_000, "mp3", &["-V", "2"][..]),
        (2, 44_100, "ogg", &["6"][..]),
        (1, 22_050, "ogg", &["6"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("{kind} {options:?}, {channels} ch, {rate} Hz");
        let s = spec(SampleFormat::Int16, channels, rate);
        let frames = rate as usize * 3 / 2 + 123;
        let wav = d.join(format!("twin-{i}.wav"));
        let reference = twin(&wav, s, &tones(usize::from(channels), frames, rate));
        let encoded = d.join(format!("case-{i}.{kind}"));
        if kind == "mp3" {
            encoders::mp3(&wav, &encoded, options);
        } else {
            encoders::vorbis(&wav, &encoded, options[0]);
        }
        let (got, y) = read_audio(&encoded).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, spec(SampleFormat::Float32, channels, rate), "{what}");
        assert_eq!(
            y.len(),
            reference.len(),
            "{what}: the delay and padding must be removed"
        );
        let ch = usize::from(channels);
        assert_eq!(best_lag(&reference, &y, ch, 8), 0, "{what}: misaligned");
        let shifted: Vec<f32> = reference[ch..]
            .iter()
            .chain(&reference[..ch])
            .copied()
            .collect();
        for c in 0..ch {
            let snr = snr_db(&reference, &y, ch, c);
            let one_sample_late = snr_db(&reference, &shifted, ch, c);
            println!(
                "{what}, channel {c}: {snr:.1} dB (the twin one sample late: \
                 {one_sample_late:.1} dB)"
            );
            assert!(
                snr >= LOSSY_MIN_SNR_DB,
                "{what}, channel {c}: SNR {snr:.1} dB"
            );
            assert!(
                one_sample_late < LOSSY_MIN_SNR_DB,
                "{what}: the bound does not detect a lag of one sample"
            );
        }

        // Processed into 32-bit float WAV of the same length.
        let out = d.join(format!("out-{i}.wav"));
        let o = process(&[encoded.as_os_str(), out.as_os_str()]);
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (ospec, z) = read_wav(&out).unwrap();
        assert_eq!(
            ospec,
            spec(SampleFormat::Float32, channels, rate),
            "{what}: OUT"
        );
        assert_eq!(z.len(), reference.len(), "{what}: OUT's length");
    }
}

// ---------------------------------------------------------------------------------------------
// Non-finite samples
// ---------------------------------------------------------------------------------------------

#[test]
fn non_finite_samples_of_float_aiff_are_zeroed_counted_and_reported_like_wav() {
    if !encoders::available(
        "non_finite_samples_of_float_aiff_are_zeroed_counted_and_reported_like_wav",
        &["sox"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = spec(SampleFormat::Float32, 2, 44_100);
    let frames = 20_000;
    let wav = d.join("twin.wav");
    // On sox's exact grid for float (see the lossless test).
    let x: Vec<f32> = tones(2, frames, 44_100)
        .iter()
        .map(|v| (v * 8_388_608.0).round() / 8_388_608.0)
        .collect();
    twin(&wav, s, &x);
    let aifc = d.join("float.aifc");
    encoders::sox(&wav, &["-t", "aifc", "-e", "floating-point"], &aifc);
    // sox carries no NaN: write them into both files directly (big-endian in SSND, whose
    // samples start 16 bytes after its id; little-endian in WAV's data chunk).
    let non_finite = [
        (101, f32::NAN),
        (5_000, f32::INFINITY),
        (5_001, f32::NEG_INFINITY),
        (39_999, f32::NAN),
    ];
    let mut a = std::fs::read(&aifc).unwrap();
    let ssnd = a.windows(4).position(|w| w == b"SSND").unwrap() + 16;
    let mut w = std::fs::read(&wav).unwrap();
    let data = w.windows(4).position(|w| w == b"data").unwrap() + 8;
    for &(i, v) in &non_finite {
        a[ssnd + 4 * i..ssnd + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
        w[data + 4 * i..data + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&aifc, &a).unwrap();
    std::fs::write(&wav, &w).unwrap();
    let (_, y) = read_audio(&aifc).unwrap();
    assert!(y[101].is_nan() && y[5_000] == f32::INFINITY && y[5_001] == f32::NEG_INFINITY);
    let outputs: Vec<Vec<u8>> = [&wav, &aifc]
        .iter()
        .map(|input| {
            let out = d.join("out.wav");
            let o = process(&[input.as_os_str(), out.as_os_str()]);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{}: {stderr}", input.display());
            assert!(
                stderr.contains("4 non-finite input samples treated as 0"),
                "{}: {stderr}",
                input.display()
            );
            std::fs::read(&out).unwrap()
        })
        .collect();
    assert!(
        outputs[0] == outputs[1],
        "OUT differs from the WAV twin's OUT"
    );
}

// ---------------------------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------------------------

#[test]
fn flac_and_ogg_piped_through_dev_stdin_are_processed() {
    if !encoders::available(
        "flac_and_ogg_piped_through_dev_stdin_are_processed",
        &["flac", "oggenc"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = spec(SampleFormat::Int16, 2, 44_100);
    let wav = d.join("twin.wav");
    twin(&wav, s, &tones(2, 40_000, 44_100));
    for kind in ["flac", "ogg"] {
        let encoded = d.join(format!("in.{kind}"));
        if kind == "flac" {
            encoders::flac(&wav, &encoded, &[]);
        } else {
            encoders::vorbis(&wav, &encoded, "4");
        }
        let bytes = std::fs::read(&encoded).unwrap();
        let out = d.join(format!("out-{kind}.wav"));
        let o = whiten_from_stdin(bytes, &out, &[]);
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (ospec, z) = read_wav(&out).unwrap();
        assert_eq!(ospec.channels, 2, "{kind}");
        assert_eq!(z.len(), 2 * 40_000, "{kind}: OUT's length");
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

/// One valid file of each format (2 s of stereo tones at 44.1 kHz), by the real encoders.
fn encoded_files(d: &Path) -> Vec<(&'static str, PathBuf)> {
    let wav = d.join("source.wav");
    twin(
        &wav,
        spec(SampleFormat::Int16, 2, 44_100),
        &tones(2, 88_200, 44_100),
    );
    let flac = d.join("good.flac");
    encoders::flac(&wav, &flac, &[]);
    let aiff = d.join("good.aiff");
    encoders::sox(&wav, &["-t", "aiff"], &aiff);
    let ogg = d.join("good.ogg");
    encoders::vorbis(&wav, &ogg, "4");
    let mp3 = d.join("good.mp3");
    encoders::mp3(&wav, &mp3, &["-b", "128"]);
    vec![
        ("FLAC", flac),
        ("AIFF", aiff),
        ("Ogg Vorbis", ogg),
        ("MP3", mp3),
    ]
}

#[test]
fn truncated_files_of_every_format_are_refused_cleanly() {
    if !encoders::available(
        "truncated_files_of_every_format_are_refused_cleanly",
        &["flac", "sox", "oggenc", "lame"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, path) in encoded_files(d) {
        let bytes = std::fs::read(&path).unwrap();
        // Inside the header, in the middle of the audio, one byte short of the end.
        for cut in [40, bytes.len() / 2, bytes.len() - 1] {
            let input = file_with(
                d,
                &format!("cut-{cut}-{}", path.file_name().unwrap().to_string_lossy()),
                &bytes[..cut],
            );
            let what = format!("{name} cut to {cut} of {} bytes", bytes.len());
            let stderr = check_refused(
                d,
                &what,
                &input,
                &["truncated", "no complete MPEG audio frame"],
            );
            if cut == bytes.len() / 2 && name != "Ogg Vorbis" && name != "AIFF" {
                // Where the header declares a length, the message gives the counts.
                assert!(
                    stderr.contains("the header promises 88200 frames"),
                    "{what}: {stderr}"
                );
            }
        }
    }
}

#[test]
fn damaged_files_of_every_format_are_refused_cleanly() {
    if !encoders::available(
        "damaged_files_of_every_format_are_refused_cleanly",
        &["flac", "sox", "oggenc", "lame"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files: BTreeMap<&str, Vec<u8>> = encoded_files(d)
        .into_iter()
        .map(|(name, path)| (name, std::fs::read(path).unwrap()))
        .collect();
    let mut cases: Vec<(String, Vec<u8>, &[&str])> = Vec::new();

    // FLAC: bytes of a frame in the middle overwritten (its CRC fails, the decoder loses it);
    // STREAMINFO's MD5 signature changed (every frame decodes, the audio does not match).
    let mut flac = files["FLAC"].clone();
    let mid = flac.len() / 2;
    flac[mid..mid + 64].fill(0x55);
    cases.push((
        "FLAC with a damaged frame".into(),
        flac,
        &["damaged FLAC file"],
    ));
    let mut flac = files["FLAC"].clone();
    // fLaC, block header (4), then STREAMINFO: its last 16 bytes are the MD5.
    flac[8 + 18] ^= 0x01;
    cases.push(("FLAC with a wrong MD5".into(), flac, &["MD5 signature"]));

    // Ogg: a byte of a page in the middle changed (the page checksum fails).
    let mut ogg = files["Ogg Vorbis"].clone();
    let mid = ogg.len() / 2;
    ogg[mid] ^= 0x40;
    cases.push((
        "Ogg with a damaged page".into(),
        ogg,
        &["damaged Ogg Vorbis file"],
    ));

    // MP3: a stretch of frames overwritten with noise.
    let mut mp3 = files["MP3"].clone();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mid = mp3.len() / 2;
    rng.fill(&mut mp3[mid..mid + 3000]);
    cases.push((
        "MP3 with noise over frames".into(),
        mp3,
        &["damaged MP3 file", "truncated"],
    ));

    // AIFF: PCM has no checksum (as WAV), so damage shows only in the header: a COMM chunk
    // claiming 0 channels, or a sample size of 0 bits.
    let aiff = &files["AIFF"];
    let comm = aiff.windows(4).position(|w| w == b"COMM").unwrap();
    let mut zero_channels = aiff.clone();
    zero_channels[comm + 8..comm + 10].copy_from_slice(&0u16.to_be_bytes());
    cases.push((
        "AIFF with 0 channels".into(),
        zero_channels,
        &["0 channels", "damaged AIFF"],
    ));
    let mut zero_bits = aiff.clone();
    zero_bits[comm + 14..comm + 16].copy_from_slice(&0u16.to_be_bytes());
    cases.push(("AIFF with 0-bit samples".into(), zero_bits, &["AIFF"]));

    for (i, (what, bytes, words)) in cases.into_iter().enumerate() {
        let input = file_with(d, &format!("damaged-{i}"), &bytes);
        check_refused(d, &what, &input, words);
    }
}

#[test]
fn empty_streams_unknown_formats_and_unsupported_content_are_refused_cleanly() {
    if !encoders::available(
        "empty_streams_unknown_formats_and_unsupported_content_are_refused_cleanly",
        &["sox", "oggenc", "lame", "flac"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Encoders given a WAV of 0 frames write valid files without audio.
    let empty = d.join("empty.wav");
    write_wav(&empty, spec(SampleFormat::Int16, 2, 44_100), &[]).unwrap();
    let aiff = d.join("empty.aiff");
    encoders::sox(&empty, &["-t", "aiff"], &aiff);
    let ogg = d.join("empty.ogg");
    encoders::vorbis(&empty, &ogg, "4");
    let mp3 = d.join("empty.mp3");
    encoders::mp3(&empty, &mp3, &[]);
    for path in [&aiff, &ogg, &mp3] {
        let what = format!("{} without audio", path.display());
        check_refused(d, &what, path, &["contains no audio"]);
    }
    // flac refuses an empty WAV; raw input of 0 bytes makes the empty FLAC file.
    let flac = d.join("empty.flac");
    encoders::run(
        "flac",
        &[
            "-s".as_ref(),
            "-f".as_ref(),
            "--force-raw-format".as_ref(),
            "--endian=little".as_ref(),
            "--sign=signed".as_ref(),
            "--channels=2".as_ref(),
            "--bps=16".as_ref(),
            "--sample-rate=44100".as_ref(),
            "-o".as_ref(),
            flac.as_os_str(),
            "/dev/null".as_ref(),
        ],
    );
    check_refused(d, "FLAC without audio", &flac, &["holds no audio"]);

    // 17 channels of AIFF: refused as for WAV.
    let c17 = d.join("c17.aiff");
    encoders::run(
        "sox",
        &[
            "-n".as_ref(),
            "-r".as_ref(),
            "8000".as_ref(),
            "-b".as_ref(),
            "16".as_ref(),
            "-c".as_ref(),
            "17".as_ref(),
            c17.as_os_str(),
            "synth".as_ref(),
            "0.1".as_ref(),
            "sine".as_ref(),
            "300".as_ref(),
        ],
    );
    check_refused(d, "17-channel AIFF", &c17, &["17 channels"]);

    // Other containers, told apart by their signatures; and an MPEG layer II frame.
    let mut m4a = vec![0, 0, 0, 0x20];
    m4a.extend_from_slice(b"ftypM4A \0\0\0\0M4A mp42isom\0\0\0\0");
    let mkv = [
        0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0, 0, 0,
    ];
    let mut mp2 = Vec::new();
    for _ in 0..40 {
        // MPEG-1 layer II, 192 kbit/s, 48 kHz, stereo: 576-byte frames.
        mp2.extend_from_slice(&[0xFF, 0xFD, 0xA4, 0x00]);
        mp2.extend(std::iter::repeat_n(0u8, 572));
    }
    for (name, bytes, words) in [
        ("song.m4a", &m4a[..], &["not a WAV file", "MP4"][..]),
        ("video.mkv", &mkv[..], &["Matroska"][..]),
        (
            "layer2.mp3",
            &mp2[..],
            &["MPEG layer II", "does not decode"][..],
        ),
        (
            "notes.txt",
            &b"These are my notes, not audio.\n"[..],
            &["not a WAV file"][..],
        ),
    ] {
        let input = file_with(d, name, bytes);
        let stderr = check_refused(d, name, &input, words);
        assert!(words.iter().all(|w| stderr.contains(w)), "{name}: {stderr}");
    }

    // The library says the same, with the variants a caller can match on.
    let err = AudioInput::open(d.join("song.m4a")).unwrap_err();
    assert!(matches!(err, WavError::NotAudio { .. }), "{err:?}");
    let err = AudioInput::open(d.join("layer2.mp3")).unwrap_err();
    assert!(matches!(err, WavError::Codec { .. }), "{err:?}");
    let err = read_audio(&ogg).unwrap_err();
    assert!(matches!(err, WavError::NoAudio { .. }), "{err:?}");
}
