//! WAV input/output against real files in a temporary directory: round trips for every
//! supported format, streaming reads, every error path and the atomic-write guarantees.
//! `hound` is used as an independent reader/writer to cross-check this crate's own code.

use interneuron_whitening::io::{
    read_wav, write_wav, SampleFormat, WavError, WavInput, WavOutput, WavSpec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const FORMATS: [SampleFormat; 4] = [
    SampleFormat::Int16,
    SampleFormat::Int24,
    SampleFormat::Int32,
    SampleFormat::Float32,
];

fn spec(sample_rate: u32, channels: u16, format: SampleFormat) -> WavSpec {
    WavSpec {
        sample_rate,
        channels,
        format,
    }
}

/// The file names in `dir`, sorted, to check that no temporary file is left behind.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every error must name the file, both in its message and in `path()`.
fn assert_names_file(err: &WavError, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "the message does not name {}: {msg}",
        path.display()
    );
    assert_eq!(err.path(), path);
}

fn open_err(path: &Path) -> WavError {
    let err = WavInput::open(path).expect_err("opening should fail");
    assert_names_file(&err, path);
    // The whole-file reader must report the same problem.
    let err2 = read_wav(path).expect_err("read_wav should fail");
    assert_eq!(err.to_string(), err2.to_string());
    err
}

fn hound_spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: 44_100,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

/// A 16-bit file written by hound with the given integer samples.
fn hound_i16_file(path: &Path, channels: u16, samples: &[i16]) {
    let mut w = hound::WavWriter::create(path, hound_spec(channels, 16, false)).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

// --- hand-made headers ------------------------------------------------------------------------

/// A `fmt ` chunk body.
fn fmt_body(
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
    extra: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    f.extend_from_slice(&block_align.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f.extend_from_slice(extra);
    f
}

/// The `WAVE_FORMAT_EXTENSIBLE` tail: cbSize, valid bits, channel mask, sub-format GUID.
fn extensible_extra(valid_bits: u16, guid: [u8; 16]) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&22u16.to_le_bytes());
    e.extend_from_slice(&valid_bits.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&guid);
    e
}

/// `KSDATAFORMAT_SUBTYPE_*` for a classic format tag.
fn subformat_guid(tag: u16) -> [u8; 16] {
    let mut g = [
        0, 0, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
    ];
    g[..2].copy_from_slice(&tag.to_le_bytes());
    g
}

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = id.to_vec();
    c.extend_from_slice(&(body.len() as u32).to_le_bytes());
    c.extend_from_slice(body);
    if !body.len().is_multiple_of(2) {
        c.push(0);
    }
    c
}

/// A RIFF WAVE file from chunks given in order.
fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for c in chunks {
        body.extend_from_slice(c);
    }
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(&body);
    f
}

/// A file with one fmt chunk and one data chunk.
fn simple_wav(fmt: &[u8], data: &[u8]) -> Vec<u8> {
    riff(&[chunk(b"fmt ", fmt), chunk(b"data", data)])
}

// --- round trips ------------------------------------------------------------------------------

/// Test signal: edge values first, then uniform noise in [−1, 1); for float also values a
/// float file must carry exactly (outside [−1, 1], signed zero, subnormal).
fn signal(rng: &mut ChaCha8Rng, format: SampleFormat, n: usize) -> Vec<f32> {
    let lsb = 1.0 / (1u64 << (format.bits() - 1)) as f32;
    let mut v = vec![
        -1.0,
        0.0,
        lsb,
        -lsb,
        0.5,
        1.0 - f32::EPSILON / 2.0,
        1.0 - lsb,
    ];
    if format.is_float() {
        v.extend_from_slice(&[1.5, -3.25, -0.0, 1e-40, 123_456.78]);
    } else {
        // For 32-bit, `1 − lsb` is exactly 1.0 in f32: keep integer inputs in [−1, 1).
        v.retain(|&s| s < 1.0);
    }
    while v.len() < n {
        v.push(rng.random_range(-1.0f32..1.0));
    }
    v.truncate(n);
    v
}

#[test]
fn round_trip_every_format_channel_count_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for format in FORMATS {
        for channels in [1u16, 2, 5, 16] {
            for rate in [8_000u32, 44_100, 96_000] {
                let frames = 301 + usize::from(channels);
                let s = spec(rate, channels, format);
                let x = signal(&mut rng, format, frames * usize::from(channels));
                let path = dir.path().join(format!("{format:?}-{channels}-{rate}.wav"));
                write_wav(&path, s, &x).unwrap();

                let input = WavInput::open(&path).unwrap();
                assert_eq!(input.spec(), s);
                assert_eq!(input.frames(), frames as u64);
                let (read_spec, y) = read_wav(&path).unwrap();
                assert_eq!(read_spec, s);
                assert_eq!(y.len(), x.len());

                let lsb = 1.0 / (1u64 << (format.bits() - 1)) as f64;
                for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
                    if format.is_float() {
                        assert_eq!(a.to_bits(), b.to_bits(), "{path:?} sample {i}: {a} vs {b}");
                    } else {
                        let err = (f64::from(a) - f64::from(b)).abs();
                        assert!(err <= lsb, "{path:?} sample {i}: {a} vs {b}");
                    }
                }

                // An independent reader sees the same header and, for integers, exactly the
                // rounded values.
                let mut h = hound::WavReader::open(&path).unwrap();
                let hs = h.spec();
                assert_eq!(hs.channels, channels);
                assert_eq!(hs.sample_rate, rate);
                assert_eq!(hs.bits_per_sample, format.bits());
                assert_eq!(
                    hs.sample_format == hound::SampleFormat::Float,
                    format.is_float()
                );
                if !format.is_float() {
                    let ints: Vec<i32> = h.samples::<i32>().map(Result::unwrap).collect();
                    let scale = (1u64 << (format.bits() - 1)) as f64;
                    for (&a, &k) in x.iter().zip(&ints) {
                        let want = (f64::from(a) * scale).round().min(scale - 1.0);
                        assert_eq!(f64::from(k), want, "{path:?}: {a}");
                    }
                }
            }
        }
    }
}

#[test]
fn integer_output_rounds_to_nearest_clamps_and_writes_nan_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.wav");
    let q = 1.0 / 32_768.0;
    let x = [
        2.4 * q,
        2.6 * q,
        -2.4 * q,
        -2.6 * q,
        1.5,
        -1.5,
        1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    write_wav(&path, spec(8_000, 1, SampleFormat::Int16), &x).unwrap();
    let ints: Vec<i16> = hound::WavReader::open(&path)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        ints,
        [2, 3, -2, -3, 32_767, -32_768, 32_767, 32_767, -32_768, 0]
    );
    let (_, y) = read_wav(&path).unwrap();
    assert_eq!(y[9], 0.0, "NaN written to 16-bit must read back as 0");
}

#[test]
fn reads_integers_written_by_hound_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(u16, &[i32]); 3] = [
        (16, &[-32_768, -1, 0, 1, 32_767, 12_345]),
        (24, &[-8_388_608, -1, 0, 1, 8_388_607, -4_000_001]),
        (32, &[i32::MIN, -1, 0, 1, 1 << 30, -(1 << 20)]),
    ];
    for (bits, values) in cases {
        let path = dir.path().join(format!("h{bits}.wav"));
        let mut w = hound::WavWriter::create(&path, hound_spec(2, bits, false)).unwrap();
        for &v in values {
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let (s, y) = read_wav(&path).unwrap();
        assert_eq!(s.format.bits(), bits);
        let scale = (1u64 << (bits - 1)) as f64;
        let want: Vec<f32> = values
            .iter()
            .map(|&v| (f64::from(v) / scale) as f32)
            .collect();
        assert_eq!(y, want, "{bits}-bit");
    }
    // Full-scale positive 32-bit rounds to 1.0 in f32; the reader keeps it below 1.
    let path = dir.path().join("max32.wav");
    let mut w = hound::WavWriter::create(&path, hound_spec(1, 32, false)).unwrap();
    w.write_sample(i32::MAX).unwrap();
    w.finalize().unwrap();
    let (_, y) = read_wav(&path).unwrap();
    assert!(y[0] < 1.0 && y[0] > 0.999_999);
}

#[test]
fn nan_and_infinity_in_float_input_are_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    // Written by hound, so that this crate's writer is not the only witness.
    let path = dir.path().join("nan.wav");
    let mut w = hound::WavWriter::create(&path, hound_spec(1, 32, true)).unwrap();
    for v in [0.25f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -2.0] {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    let (_, y) = read_wav(&path).expect("NaN in float input is not an error");
    assert_eq!(y[0], 0.25);
    assert!(y[1].is_nan());
    assert_eq!(y[2], f32::INFINITY);
    assert_eq!(y[3], f32::NEG_INFINITY);
    assert_eq!(y[4], -2.0);

    // And this crate's float writer stores them as given.
    let out = dir.path().join("nan-out.wav");
    write_wav(&out, spec(48_000, 1, SampleFormat::Float32), &y).unwrap();
    let (_, z) = read_wav(&out).unwrap();
    assert!(z[1].is_nan());
    assert_eq!(z[2], f32::INFINITY);
}

// --- streaming --------------------------------------------------------------------------------

#[test]
fn streaming_reads_in_odd_chunk_sizes_equal_whole_file_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (channels, format, frames) in [
        (5u16, SampleFormat::Int24, 40_009usize),
        (2, SampleFormat::Float32, 10_007),
        (1, SampleFormat::Int16, 70_001),
        (16, SampleFormat::Int32, 3_001),
    ] {
        let path = dir.path().join(format!("stream-{channels}.wav"));
        let x = signal(&mut rng, format, frames * usize::from(channels));
        write_wav(&path, spec(44_100, channels, format), &x).unwrap();
        let (_, whole) = read_wav(&path).unwrap();

        let ch = usize::from(channels);
        let mut input = WavInput::open(&path).unwrap();
        let mut streamed = Vec::new();
        let sizes = [1usize, 7, 333, 4_097, 2, 20_000];
        let mut i = 0;
        loop {
            // Buffers that are not a whole number of frames: the tail must stay unused.
            let len = sizes[i % sizes.len()] * ch + (ch - 1);
            let mut buf = vec![f32::NAN; len];
            let n = input.read_frames(&mut buf).unwrap();
            assert!(
                buf[n * ch..].iter().all(|v| v.is_nan()),
                "wrote past the frames read"
            );
            if n == 0 {
                break;
            }
            streamed.extend_from_slice(&buf[..n * ch]);
            i += 1;
        }
        assert_eq!(input.frames_read(), frames as u64);
        assert_eq!(input.read_frames(&mut [0.0; 16]).unwrap(), 0);
        assert_eq!(streamed.len(), whole.len());
        assert!(
            streamed
                .iter()
                .zip(&whole)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "streamed samples differ from the whole-file read"
        );
    }
}

// --- bad input --------------------------------------------------------------------------------

#[test]
fn random_bytes_and_text_are_not_wav() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut bytes = vec![0u8; 4_096];
    rng.fill(&mut bytes[..]);
    bytes[0] = b'X';
    let random = dir.path().join("random.wav");
    fs::write(&random, &bytes).unwrap();
    let err = open_err(&random);
    assert!(matches!(err, WavError::NotWav { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not a WAV file (no RIFF header)"),
        "{err}"
    );

    let text = dir.path().join("notes.txt");
    fs::write(&text, "These are my notes, not audio.\n").unwrap();
    assert!(matches!(open_err(&text), WavError::NotWav { .. }));

    let avi = dir.path().join("movie.wav");
    fs::write(&avi, b"RIFF\x04\x00\x00\x00AVI ").unwrap();
    let err = open_err(&avi);
    assert!(matches!(err, WavError::NotWav { .. }));
    assert!(err.to_string().contains("'AVI '"), "{err}");
}

#[test]
fn garbage_after_a_riff_header_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut bytes = b"RIFF\xff\xff\x00\x00WAVE".to_vec();
    let mut junk = vec![0u8; 2_000];
    rng.fill(&mut junk[..]);
    bytes.extend_from_slice(&junk);
    let path = dir.path().join("garbage.wav");
    fs::write(&path, &bytes).unwrap();
    let err = open_err(&path);
    assert!(matches!(err, WavError::Malformed { .. }), "{err:?}");

    // A valid file cut inside its header.
    let cut = dir.path().join("cut-header.wav");
    hound_i16_file(&cut, 1, &[1, 2, 3]);
    let full = fs::read(&cut).unwrap();
    for len in [6, 20, 40] {
        fs::write(&cut, &full[..len]).unwrap();
        let err = open_err(&cut);
        assert!(matches!(err, WavError::Malformed { .. }), "{len}: {err:?}");
    }

    // Structural problems hound would report vaguely or not at all.
    let fmt16 = fmt_body(1, 1, 8_000, 2, 16, &[]);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "data-first.wav",
            riff(&[chunk(b"data", &[0; 4]), chunk(b"fmt ", &fmt16)]),
            "before the fmt chunk",
        ),
        (
            "no-data.wav",
            riff(&[chunk(b"fmt ", &fmt16)]),
            "no data chunk",
        ),
        (
            "half-frame.wav",
            simple_wav(&fmt_body(1, 2, 8_000, 4, 16, &[]), &[0; 6]),
            "not a whole number",
        ),
        (
            "rate0.wav",
            simple_wav(&fmt_body(1, 1, 0, 2, 16, &[]), &[0; 4]),
            "0 Hz",
        ),
    ];
    for (name, bytes, words) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let err = open_err(&path);
        assert!(matches!(err, WavError::Malformed { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains(words), "{name}: {err}");
    }
}

#[test]
fn truncated_data_is_an_error_with_the_frame_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    let samples: Vec<i16> = (0..2_000).map(|i| i as i16).collect();
    hound_i16_file(&path, 2, &samples); // 1000 stereo frames of 4 bytes
    let len = fs::metadata(&path).unwrap().len();
    // Cut one whole frame and one byte of the next.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let err = open_err(&path);
    match &err {
        WavError::Truncated {
            expected_frames,
            got_frames,
            ..
        } => assert_eq!((*expected_frames, *got_frames), (1_000, 998)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("is truncated: the header promises 1000 frames but the data holds only 998"),
        "{err}"
    );
}

#[test]
fn truncation_discovered_while_streaming_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinks.wav");
    // Much larger than the reader's buffer, so the cut is not hidden by buffered data.
    let samples: Vec<i16> = (0..100_000).map(|i| (i % 30_000) as i16).collect();
    hound_i16_file(&path, 1, &samples);
    let mut input = WavInput::open(&path).unwrap();
    let mut buf = vec![0.0f32; 1_000];
    assert_eq!(input.read_frames(&mut buf).unwrap(), 1_000);
    // After opening, the file loses everything after frame 60 000 (plus one stray byte).
    let keep = 44 + 2 * 60_000 + 1;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(keep)
        .unwrap();
    let mut returned = 1_000u64;
    let err = loop {
        match input.read_frames(&mut buf) {
            Ok(0) => panic!("the end of data was reported instead of truncation"),
            Ok(n) => returned += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(returned, 60_000);
    for e in [err, input.read_frames(&mut buf).unwrap_err()] {
        match e {
            WavError::Truncated {
                expected_frames,
                got_frames,
                path: p,
            } => {
                assert_eq!((expected_frames, got_frames), (100_000, 60_000));
                assert_eq!(p, path);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn unsupported_encodings_say_what_was_found() {
    let dir = tempfile::tempdir().unwrap();

    // 8-bit PCM, which hound itself reads and writes happily.
    let pcm8 = dir.path().join("pcm8.wav");
    let mut w = hound::WavWriter::create(&pcm8, hound_spec(1, 8, false)).unwrap();
    for v in [-5i8, 0, 5, 100] {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();

    // 17 channels, also written by hound.
    let ch17 = dir.path().join("ch17.wav");
    hound_i16_file(&ch17, 17, &[0; 34]);

    let alaw_guid = subformat_guid(6);
    let mut unknown_guid = subformat_guid(1);
    unknown_guid[15] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("pcm8.wav", fs::read(&pcm8).unwrap(), "uses 8-bit PCM"),
        ("ch17.wav", fs::read(&ch17).unwrap(), "17 channels"),
        (
            "f64.wav",
            simple_wav(&fmt_body(3, 1, 8_000, 8, 64, &[]), &[0; 16]),
            "64-bit float",
        ),
        (
            "alaw.wav",
            simple_wav(&fmt_body(6, 1, 8_000, 1, 8, &[0, 0]), &[0; 16]),
            "A-law",
        ),
        (
            "ext-alaw.wav",
            simple_wav(
                &fmt_body(0xfffe, 1, 8_000, 1, 8, &extensible_extra(8, alaw_guid)),
                &[0; 16],
            ),
            "A-law",
        ),
        (
            "ext-unknown.wav",
            simple_wav(
                &fmt_body(0xfffe, 2, 8_000, 4, 16, &extensible_extra(16, unknown_guid)),
                &[0; 16],
            ),
            "unknown sub-format",
        ),
        (
            "ext-20in24.wav",
            simple_wav(
                &fmt_body(
                    0xfffe,
                    1,
                    8_000,
                    3,
                    24,
                    &extensible_extra(20, subformat_guid(1)),
                ),
                &[0; 6],
            ),
            "20-bit PCM samples in 24-bit containers",
        ),
        (
            "s24-in-4-bytes.wav",
            simple_wav(&fmt_body(1, 2, 48_000, 8, 24, &[]), &[0; 16]),
            "24-bit PCM samples in 32-bit containers",
        ),
        (
            "ch0.wav",
            simple_wav(&fmt_body(1, 0, 8_000, 0, 16, &[]), &[0; 16]),
            "0 channels",
        ),
        (
            "rifx.wav",
            b"RIFX\x00\x00\x00\x24WAVE".to_vec(),
            "big-endian",
        ),
    ];
    for (name, bytes, words) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let err = open_err(&path);
        assert!(
            matches!(err, WavError::Unsupported { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(words), "{name}: {msg}");
        assert!(
            msg.contains("supported: 16-, 24- or 32-bit integer PCM or 32-bit float"),
            "{name}: {msg}"
        );
    }
}

#[test]
fn empty_file_and_empty_data_are_distinct_errors() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.wav");
    fs::write(&zero, b"").unwrap();
    let err = open_err(&zero);
    assert!(matches!(err, WavError::EmptyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("0 bytes"), "{err}");

    let no_frames = dir.path().join("no-frames.wav");
    hound_i16_file(&no_frames, 2, &[]);
    let err = open_err(&no_frames);
    assert!(matches!(err, WavError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("0 frames"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("does-not-exist.wav");
    let err = open_err(&path);
    match &err {
        WavError::Io { source, .. } => assert_eq!(source.kind(), io::ErrorKind::NotFound),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn odd_length_chunks_before_the_data_are_skipped_with_their_pad_byte() {
    // Valid RIFF: a 3-byte LIST chunk is followed by a pad byte. hound 3.5.1 fails to open
    // this file; this reader must not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list.wav");
    let data: Vec<u8> = [100i16, -200, 300]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = riff(&[
        chunk(b"fmt ", &fmt_body(1, 1, 22_050, 2, 16, &[])),
        chunk(b"LIST", b"abc"),
        chunk(b"fact", &3u32.to_le_bytes()),
        chunk(b"data", &data),
    ]);
    fs::write(&path, bytes).unwrap();
    let (s, y) = read_wav(&path).unwrap();
    assert_eq!(s, spec(22_050, 1, SampleFormat::Int16));
    assert_eq!(y, [100.0 / 32_768.0, -200.0 / 32_768.0, 300.0 / 32_768.0]);
}

// --- atomic output ----------------------------------------------------------------------------

fn existing_output(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("out.wav");
    let original = b"the previous result, which must survive".to_vec();
    fs::write(&path, &original).unwrap();
    (path, original)
}

#[test]
fn dropping_an_unfinished_output_keeps_the_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, original) = existing_output(dir.path());
    {
        let mut out = WavOutput::create(&path, spec(44_100, 2, SampleFormat::Int16)).unwrap();
        out.write_frames(&[0.5; 20_000]).unwrap();
        // While writing, the data goes to a temporary file beside the target.
        let names = dir_names(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with(".out.wav.tmp-")),
            "{names:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), original);
    }
    assert_eq!(fs::read(&path).unwrap(), original);
    assert_eq!(dir_names(dir.path()), ["out.wav"]);
}

#[test]
fn a_panic_or_an_early_error_return_keeps_the_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, original) = existing_output(dir.path());

    let result = std::panic::catch_unwind(|| {
        let mut out = WavOutput::create(&path, spec(8_000, 1, SampleFormat::Float32)).unwrap();
        out.write_frames(&[0.1; 100]).unwrap();
        panic!("processing failed half-way");
    });
    assert!(result.is_err());
    assert_eq!(fs::read(&path).unwrap(), original);
    assert_eq!(dir_names(dir.path()), ["out.wav"]);

    // The usual shape of `whiten process`: an input error propagated with `?` mid-way.
    fn process(input: &Path, output: &Path) -> Result<(), WavError> {
        let mut out = WavOutput::create(output, spec(8_000, 1, SampleFormat::Int24))?;
        out.write_frames(&[0.2; 64])?;
        let (_, more) = read_wav(input)?;
        out.write_frames(&more)?;
        out.finish()
    }
    let err = process(&dir.path().join("missing.wav"), &path).unwrap_err();
    assert!(matches!(err, WavError::Io { .. }));
    assert_eq!(fs::read(&path).unwrap(), original);
    assert_eq!(dir_names(dir.path()), ["out.wav"]);
}

#[test]
fn finish_replaces_the_file_completely_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = existing_output(dir.path());
    let s = spec(96_000, 5, SampleFormat::Int24);
    let x: Vec<f32> = (0..5 * 4_001)
        .map(|i| ((i % 200) as f32 - 100.0) / 128.0)
        .collect();
    let mut out = WavOutput::create(&path, s).unwrap();
    for block in x.chunks(5 * 333) {
        out.write_frames(block).unwrap();
    }
    assert_eq!(out.frames_written(), 4_001);
    out.finish().unwrap();
    assert_eq!(dir_names(dir.path()), ["out.wav"]);
    let (rs, y) = read_wav(&path).unwrap();
    assert_eq!(rs, s);
    assert_eq!(y.len(), x.len());
    assert!(x
        .iter()
        .zip(&y)
        .all(|(a, b)| (a - b).abs() <= 1.0 / 8_388_608.0));

    // A fresh target (no previous file) works the same way.
    let fresh = dir.path().join("fresh.wav");
    write_wav(&fresh, spec(8_000, 1, SampleFormat::Int16), &[0.25; 10]).unwrap();
    assert_eq!(dir_names(dir.path()), ["fresh.wav", "out.wav"]);
    assert_eq!(fs::metadata(&fresh).unwrap().len(), 44 + 20);
}

#[test]
fn bad_output_requests_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.wav");
    for (s, words) in [
        (spec(44_100, 17, SampleFormat::Int16), "17 channels"),
        (spec(44_100, 0, SampleFormat::Int16), "0 channels"),
        (spec(0, 2, SampleFormat::Float32), "0 Hz"),
    ] {
        let err = WavOutput::create(&path, s).unwrap_err();
        assert!(matches!(err, WavError::Unsupported { .. }), "{err:?}");
        assert_names_file(&err, &path);
        assert!(err.to_string().contains(words), "{err}");
    }
    assert!(dir_names(dir.path()).is_empty());

    let nowhere = dir.path().join("no-such-dir").join("out.wav");
    let err = WavOutput::create(&nowhere, spec(44_100, 1, SampleFormat::Int16)).unwrap_err();
    assert!(matches!(err, WavError::Io { .. }), "{err:?}");
    assert_names_file(&err, &nowhere);

    let mut out = WavOutput::create(&path, spec(44_100, 2, SampleFormat::Int16)).unwrap();
    let err = out.write_frames(&[0.0; 3]).unwrap_err();
    assert!(matches!(
        err,
        WavError::PartialFrame {
            samples: 3,
            channels: 2,
            ..
        }
    ));
    assert_names_file(&err, &path);
    drop(out);
    assert!(dir_names(dir.path()).is_empty());
}
