//! Mutated FLAC, Ogg Vorbis, MP3 and AIFF files into `whiten process`: the seeded, bounded
//! fuzzing of `tests/wav_fuzz.rs` carried over to the formats decoded by `symphonia`.
//!
//! The seeds are valid files made by the real encoders (`support::encoders`): FLAC 16-bit
//! stereo and 24-bit mono, Ogg Vorbis stereo and mono, MP3 CBR stereo, VBR mono and one behind
//! an ID3v2 tag, AIFF 16-bit stereo and AIFF-C float mono, a few tenths of a second each. Each
//! case mutates one seed with a byte-level mutation that knows no format — bits flipped or bytes
//! replaced in the headers or in the coded audio, truncation, ranges zeroed, removed, duplicated
//! or swapped, garbage or runs of sync-like `0xFF` bytes inserted or appended, size-like fields
//! overwritten with extreme values — and the decoders meet whatever results. Then `whiten
//! process IN OUT` runs on it (half the cases in the spectral framing), once with an existing
//! OUT and once without, under a time limit, and the contract holds whatever the bytes:
//!
//! * never a panic, a signal or a hang: the exit status is 0 or 1, stderr never says
//!   "panicked" (a decoder panic must have been contained and reported as an error);
//! * a failure is `whiten: error: …` naming IN, with nothing on stdout, and leaves OUT's
//!   directory exactly as it was;
//! * a success writes a complete OUT of the shape the library reads from IN (rate, channels,
//!   encoding, frame count), finite and within ±1, and nothing else.
//!
//! The library reader also runs on every mutated file in this process, so that a contained panic
//! is exercised here too. A failing case prints its seed and mutation so it can be replayed.

mod support;

use interneuron_whitening::io::{read_audio, write_wav, SampleFormat, WavSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use support::encoders;
use support::process_contract::check_process;

/// Mutated files tried (each run twice: OUT existing and OUT absent).
const CASES: usize = 300;
/// The seed of the whole run; a failure names the case, which replays with this seed.
const SEED: u64 = 0x5eed_0013;

/// A valid file to mutate.
struct Seed {
    /// A name for messages.
    name: String,
    /// The file's bytes.
    bytes: Vec<u8>,
}

#[test]
fn mutated_decoded_format_files_never_panic_hang_or_leave_partial_output() {
    if !encoders::available(
        "mutated_decoded_format_files_never_panic_hang_or_leave_partial_output",
        &["flac", "oggenc", "lame", "sox"],
    ) {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let seeds = seeds(root.path());
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let started = Instant::now();
    let mut outcomes: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    for case in 0..CASES {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let (kind, bytes) = mutate(&seed.bytes, &mut rng);
        let spectral = rng.random_bool(0.5);
        let what = format!(
            "case {case} (seed {SEED:#x}): {} with {kind}, {} framing",
            seed.name,
            if spectral { "spectral" } else { "channels" }
        );
        let refusal = check_process(
            root.path(),
            case,
            "in.audio",
            &bytes,
            |p| read_audio(p),
            spectral,
            &what,
        )
        .map(|r| gist(&r.stderr, &r.input));
        let tally = outcomes.entry(kind).or_default();
        match refusal {
            None => tally.0 += 1,
            Some(message) => {
                tally.1 += 1;
                *messages.entry(message).or_default() += 1;
            }
        }
    }
    println!(
        "{CASES} mutated files × 2 runs in {:.1} s; accepted / refused by mutation:",
        started.elapsed().as_secs_f64()
    );
    for (kind, (ok, refused)) in &outcomes {
        println!("  {kind:<28} {ok:>4} accepted, {refused:>4} refused");
    }
    println!("refusals by kind of message:");
    for (message, count) in &messages {
        println!("  {count:>4}  {message}");
    }
    let refused: usize = outcomes.values().map(|t| t.1).sum();
    assert!(
        refused > CASES / 4 && refused < CASES,
        "the mutations should produce both valid and invalid files ({refused} of {CASES} refused)"
    );
}

/// A refusal's message without the path and with numbers replaced by `N`, to tally by kind.
fn gist(stderr: &str, input: &Path) -> String {
    let line = stderr
        .trim()
        .trim_start_matches("whiten: error: ")
        .replace(&input.display().to_string(), "IN");
    let mut out = String::new();
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid files from the real encoders.
// ---------------------------------------------------------------------------------------------

fn seeds(dir: &Path) -> Vec<Seed> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 1);
    let mut source = |channels: u16, rate: u32, format: SampleFormat, name: &str| {
        let frames = rate as usize * 3 / 10;
        let samples: Vec<f32> = (0..frames * usize::from(channels))
            .map(|i| {
                let t = (i / usize::from(channels)) as f32 / rate as f32;
                0.3 * (std::f32::consts::TAU * 440.0 * t).sin() + rng.random_range(-0.2f32..0.2)
            })
            .collect();
        let path = dir.join(format!("{name}.wav"));
        let spec = WavSpec {
            sample_rate: rate,
            channels,
            format,
        };
        write_wav(&path, spec, &samples).unwrap();
        path
    };
    let stereo = source(2, 44_100, SampleFormat::Int16, "stereo");
    let mono24 = source(1, 48_000, SampleFormat::Int24, "mono24");
    let mono_float = source(1, 22_050, SampleFormat::Float32, "mono-float");
    let mono16 = source(1, 32_000, SampleFormat::Int16, "mono16");
    let mut seeds = Vec::new();
    let mut add = |name: &str, make: &dyn Fn(&Path)| {
        let path = dir.join(format!("seed-{}", seeds.len()));
        make(&path);
        seeds.push(Seed {
            name: name.into(),
            bytes: std::fs::read(&path).unwrap(),
        });
    };
    add("FLAC 16-bit stereo", &|p| encoders::flac(&stereo, p, &[]));
    add("FLAC 24-bit mono", &|p| encoders::flac(&mono24, p, &[]));
    add("Ogg Vorbis stereo", &|p| encoders::vorbis(&stereo, p, "3"));
    add("Ogg Vorbis mono", &|p| encoders::vorbis(&mono16, p, "0"));
    add("MP3 CBR stereo", &|p| {
        encoders::mp3(&stereo, p, &["-b", "128"])
    });
    add("MP3 VBR mono", &|p| encoders::mp3(&mono16, p, &["-V", "5"]));
    add("MP3 behind an ID3v2 tag", &|p| {
        encoders::mp3(&stereo, p, &["-b", "96", "--tt", "A seed", "--add-id3v2"])
    });
    add("AIFF 16-bit stereo", &|p| {
        encoders::sox(&stereo, &["-t", "aiff"], p)
    });
    add("AIFF-C float mono", &|p| {
        encoders::sox(&mono_float, &["-t", "aifc", "-e", "floating-point"], p)
    });
    seeds
}

// ---------------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------------

/// Values that stress a 32-bit size, count or rate field.
const ODD_U32: [u32; 8] = [
    0,
    1,
    7,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    999_999_999,
];

/// Bytes where the containers keep their headers (stream info, first pages, the first frame
/// and its tag, the COMM chunk).
const HEADER_BYTES: usize = 256;

/// One random, format-blind mutation of `seed`: (its kind, the mutated bytes).
fn mutate(seed: &[u8], rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
    let mut b = seed.to_vec();
    let len = b.len();
    let header_end = HEADER_BYTES.min(len);
    let range = |rng: &mut ChaCha8Rng, max: usize| {
        let n = rng.random_range(1..=max.min(len - 1));
        let at = rng.random_range(0..len - n);
        at..at + n
    };
    let kind = match rng.random_range(0..12) {
        0 => {
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..header_end);
                b[at] ^= 1 << rng.random_range(0..8);
            }
            "header bit flips"
        }
        1 => {
            for _ in 0..rng.random_range(1..=3) {
                let at = rng.random_range(0..header_end);
                b[at] = rng.random();
            }
            "header bytes replaced"
        }
        2 => {
            for _ in 0..rng.random_range(1..=64) {
                let at = rng.random_range(header_end..len);
                b[at] = rng.random();
            }
            "audio bytes replaced"
        }
        3 => {
            b.truncate(rng.random_range(0..len));
            "truncated"
        }
        4 => {
            let r = range(rng, 2000);
            b[r].fill(0);
            "range zeroed"
        }
        5 => {
            let at = rng.random_range(0..=len);
            let junk: Vec<u8> = (0..rng.random_range(1..500))
                .map(|_| rng.random())
                .collect();
            b.splice(at..at, junk);
            "garbage inserted"
        }
        6 => {
            let r = range(rng, 2000);
            let copy = b[r].to_vec();
            let at = rng.random_range(0..=len);
            b.splice(at..at, copy);
            "range duplicated"
        }
        7 => {
            let r = range(rng, 2000);
            b.drain(r);
            "range removed"
        }
        8 => {
            let (first, second) = (range(rng, 800), range(rng, 800));
            if first.end <= second.start || second.end <= first.start {
                let (x, y) = (b[first.clone()].to_vec(), b[second.clone()].to_vec());
                // Replace the later range first so the earlier one's offsets stay valid.
                let (early, late, early_bytes, late_bytes) = if first.start < second.start {
                    (first, second, y, x)
                } else {
                    (second, first, x, y)
                };
                b.splice(late, late_bytes);
                b.splice(early, early_bytes);
            }
            "ranges swapped"
        }
        9 => {
            let v = ODD_U32[rng.random_range(0..ODD_U32.len())];
            let at = rng.random_range(0..header_end.saturating_sub(4).max(1));
            let bytes = if rng.random_bool(0.5) {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            let end = (at + 4).min(len);
            b[at..end].copy_from_slice(&bytes[..end - at]);
            "size-like field changed"
        }
        10 => {
            let at = rng.random_range(0..=len);
            let run = vec![0xFF; rng.random_range(2..64)];
            b.splice(at..at, run);
            "0xFF run inserted"
        }
        _ => {
            b.extend((0..rng.random_range(1..800)).map(|_| rng.random::<u8>()));
            "garbage appended"
        }
    };
    (kind, b)
}
