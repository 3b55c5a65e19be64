//! Mutated real WAV files into `whiten process` (issue 11, item 8; docs/DESIGN.md §7, §12.2):
//! seeded, bounded fuzzing of the file boundary of the CLI.
//!
//! The seeds are valid files of every supported encoding — written by the crate's own writer
//! (plain headers) and built by hand (`WAVEFORMATEX` with `cbSize`, `WAVEFORMATEXTENSIBLE`,
//! extra chunks with odd sizes before the data). Each case mutates one seed: bytes flipped in
//! the header or in the data, truncation, chunk sizes extended or zeroed, odd `fmt ` fields
//! (tags, channel counts, rates, bit depths, block alignment, `cbSize`), chunks duplicated,
//! reordered or inserted, garbage appended. Then `whiten process IN OUT` runs on it (half the
//! cases in the spectral framing), once with an existing OUT and once without, and the
//! contract holds whatever the bytes:
//!
//! * never a panic or a signal: the exit status is 0 or 1, never 101, and stderr never says
//!   "panicked";
//! * a failure is `whiten: error: …` naming IN, with nothing on stdout, and leaves OUT's
//!   directory exactly as it was (an existing OUT untouched, no new OUT, no temporary file);
//! * a success writes a complete OUT of the shape the library reads from IN (rate, channels,
//!   encoding, frame count), finite and within ±1, and nothing else; the CLI never accepts a
//!   file the library's reader refuses (the reverse happens when a mutated field is readable
//!   but outside what the engine runs at, e.g. the sample rate: refused as cleanly, and listed).
//!
//! A failing case prints its seed and mutation so it can be replayed.

use interneuron_whitening::io::{read_wav, write_wav, SampleFormat, WavSpec};
mod support;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use support::process_contract::check_process;

/// Mutated files tried (each run twice: OUT existing and OUT absent).
const CASES: usize = 240;
/// The seed of the whole run; a failure names the case, which replays with this seed.
const SEED: u64 = 0x5eed_0011;

/// A valid file to mutate, with what is known about its layout.
struct Seed {
    /// A name for messages.
    name: String,
    /// The file's bytes.
    bytes: Vec<u8>,
    /// Offset of the `fmt ` chunk's body.
    fmt_body: usize,
    /// Offset of the `data` chunk's header (its id).
    data_chunk: usize,
}

#[test]
fn mutated_wav_files_never_panic_and_never_leave_partial_output() {
    let root = tempfile::tempdir().unwrap();
    let seeds = seeds(root.path());
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let started = Instant::now();
    let mut outcomes: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for case in 0..CASES {
        let seed = &seeds[rng.random_range(0..seeds.len())];
        let (kind, bytes) = mutate(seed, &mut rng);
        let spectral = rng.random_bool(0.5);
        let what = format!(
            "case {case} (seed {SEED:#x}): {} with {kind}, {} framing",
            seed.name,
            if spectral { "spectral" } else { "channels" }
        );
        let ok = check_process(
            root.path(),
            case,
            "in.wav",
            &bytes,
            |p| read_wav(p),
            spectral,
            &what,
        )
        .is_none();
        let tally = outcomes.entry(kind).or_default();
        if ok {
            tally.0 += 1;
        } else {
            tally.1 += 1;
        }
    }
    println!(
        "{CASES} mutated files × 2 runs in {:.1} s; accepted / refused by mutation:",
        started.elapsed().as_secs_f64()
    );
    for (kind, (ok, refused)) in &outcomes {
        println!("  {kind:<28} {ok:>4} accepted, {refused:>4} refused");
    }
    let refused: usize = outcomes.values().map(|t| t.1).sum();
    assert!(
        refused > CASES / 3 && refused < CASES,
        "the mutations should produce both valid and invalid files ({refused} of {CASES} refused)"
    );
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid files.
// ---------------------------------------------------------------------------------------------

fn seeds(dir: &Path) -> Vec<Seed> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 1);
    let mut seeds = Vec::new();
    for (i, format) in [
        SampleFormat::Int16,
        SampleFormat::Int24,
        SampleFormat::Int32,
        SampleFormat::Float32,
    ]
    .into_iter()
    .enumerate()
    {
        for (channels, rate) in [(1u16, 8_000u32), (2, 44_100), (3, 48_000)] {
            let spec = WavSpec {
                sample_rate: rate,
                channels,
                format,
            };
            let frames = rng.random_range(600..3000);
            let samples: Vec<f32> = (0..frames * channels as usize)
                .map(|_| rng.random_range(-0.5f32..0.5))
                .collect();
            let path = dir.join(format!("seed-{i}-{channels}.wav"));
            write_wav(&path, spec, &samples).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            seeds.push(located(
                format!("{format}, {channels} ch, {rate} Hz"),
                bytes,
            ));
        }
    }
    // Hand-built headers the writer does not produce.
    let data: Vec<u8> = (0..4000).map(|_| rng.random()).collect();
    // WAVEFORMATEX: 16-bit stereo with cbSize = 0, and a LIST chunk of odd size (with its pad
    // byte) before the data.
    let fmt = fmt_body(1, 2, 22_050, 16, &0u16.to_le_bytes());
    seeds.push(located(
        "WAVEFORMATEX 16-bit stereo, odd LIST chunk".into(),
        riff(&[
            chunk(b"fmt ", &fmt),
            chunk(b"LIST", b"INFOISFT\x05\0\0\0test\0"),
            chunk(b"data", &data),
        ]),
    ));
    // WAVEFORMATEXTENSIBLE: 24-bit in 24, and 32-bit float.
    for (bits, tag) in [(24u16, 1u16), (32, 3)] {
        let mut extra = Vec::new();
        extra.extend_from_slice(&22u16.to_le_bytes());
        extra.extend_from_slice(&bits.to_le_bytes());
        extra.extend_from_slice(&3u32.to_le_bytes());
        extra.extend_from_slice(&tag.to_le_bytes());
        extra.extend_from_slice(&[
            0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
        ]);
        let fmt = fmt_body(0xFFFE, 2, 96_000, bits, &extra);
        let mut body = data.clone();
        if bits == 32 {
            // Float samples within ±1.
            body = (0..1000)
                .flat_map(|_| rng.random_range(-0.9f32..0.9).to_le_bytes())
                .collect();
        } else {
            body.truncate(3 * 2 * 600);
        }
        seeds.push(located(
            format!("WAVEFORMATEXTENSIBLE {bits}-bit tag {tag}"),
            riff(&[chunk(b"fmt ", &fmt), chunk(b"data", &body)]),
        ));
    }
    seeds
}

/// A seed with the offsets of its `fmt ` body and `data` chunk found by walking the chunks.
fn located(name: String, bytes: Vec<u8>) -> Seed {
    let mut pos = 12;
    let (mut fmt_body, mut data_chunk) = (None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if id == b"fmt " {
            fmt_body = Some(pos + 8);
        }
        if id == b"data" {
            data_chunk = Some(pos);
            break;
        }
        pos += 8 + size + (size & 1);
    }
    Seed {
        name,
        fmt_body: fmt_body.expect("seed has a fmt chunk"),
        data_chunk: data_chunk.expect("seed has a data chunk"),
        bytes,
    }
}

/// A `fmt ` chunk body with the given fields and extra bytes (cbSize and beyond).
fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16, extra: &[u8]) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * align as u32).to_le_bytes());
    v.extend_from_slice(&align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(extra);
    v
}

fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = id.to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    if body.len() % 2 == 1 {
        v.push(0);
    }
    v
}

fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(4 + body.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVE");
    v.extend_from_slice(&body);
    v
}

// ---------------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------------

/// Values that stress a 32-bit size or rate field.
const ODD_U32: [u32; 9] = [
    0,
    1,
    3,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    999_999_999,
    7,
];
/// Values that stress a 16-bit field of the `fmt ` chunk.
const ODD_U16: [u16; 12] = [0, 1, 2, 3, 7, 8, 12, 17, 64, 255, 0x8000, 0xFFFF];

/// One random mutation of `seed`: (its kind, the mutated bytes).
fn mutate(seed: &Seed, rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
    let mut b = seed.bytes.clone();
    let header_end = seed.data_chunk + 8;
    let put_u32 = |b: &mut Vec<u8>, at: usize, v: u32| {
        if at + 4 <= b.len() {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    };
    let put_u16 = |b: &mut Vec<u8>, at: usize, v: u16| {
        if at + 2 <= b.len() {
            b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
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
            "header byte replaced"
        }
        2 => {
            for _ in 0..rng.random_range(1..=64) {
                let at = rng.random_range(header_end..b.len());
                b[at] = rng.random();
            }
            "data bytes replaced"
        }
        3 => {
            let at = rng.random_range(0..b.len());
            b.truncate(at);
            "truncated"
        }
        4 => {
            let v = ODD_U32[rng.random_range(0..ODD_U32.len())];
            let v = if rng.random_bool(0.3) {
                (b.len() as u32).wrapping_add(rng.random_range(1..100_000))
            } else {
                v
            };
            let field = [4, seed.data_chunk + 4, seed.fmt_body - 4][rng.random_range(0..3)];
            put_u32(&mut b, field, v);
            "chunk size changed"
        }
        5 => {
            // tag, channels, rate, byte rate, block align, bits.
            let (offset, wide) = [
                (0, false),
                (2, false),
                (4, true),
                (8, true),
                (12, false),
                (14, false),
            ][rng.random_range(0..6)];
            let at = seed.fmt_body + offset;
            if wide {
                put_u32(&mut b, at, ODD_U32[rng.random_range(0..ODD_U32.len())]);
            } else {
                put_u16(&mut b, at, ODD_U16[rng.random_range(0..ODD_U16.len())]);
            }
            "odd fmt field"
        }
        6 => {
            // Bit depths and tags that exist but are not supported, with a consistent
            // block alignment.
            let bits = [8u16, 12, 20, 40, 64][rng.random_range(0..5)];
            let tag = [1u16, 2, 3, 6, 7, 0x55, 0xFFFE][rng.random_range(0..7)];
            put_u16(&mut b, seed.fmt_body, tag);
            put_u16(&mut b, seed.fmt_body + 14, bits);
            "unsupported encoding"
        }
        7 => {
            // A fmt chunk of another length: cut to 14, or grown with a cbSize that does not
            // match.
            let fmt_len =
                u32::from_le_bytes(b[seed.fmt_body - 4..seed.fmt_body].try_into().unwrap())
                    as usize;
            let new_len = [14usize, 15, 17, 18, 20, 40, 41][rng.random_range(0..7)];
            let mut body = b[seed.fmt_body..seed.fmt_body + fmt_len].to_vec();
            body.resize(new_len, 0);
            if new_len >= 18 {
                body[16..18]
                    .copy_from_slice(&ODD_U16[rng.random_range(0..ODD_U16.len())].to_le_bytes());
            }
            let mut out = b[..seed.fmt_body - 4].to_vec();
            out.extend_from_slice(&(new_len as u32).to_le_bytes());
            out.extend_from_slice(&body);
            if new_len % 2 == 1 {
                out.push(0);
            }
            let rest = seed.fmt_body + fmt_len + (fmt_len & 1);
            out.extend_from_slice(&b[rest..]);
            b = out;
            "fmt chunk resized"
        }
        8 => {
            // A second fmt chunk, or the data chunk before fmt.
            let fmt_start = seed.fmt_body - 8;
            let fmt_len =
                u32::from_le_bytes(b[seed.fmt_body - 4..seed.fmt_body].try_into().unwrap())
                    as usize;
            let fmt_chunk = b[fmt_start..fmt_start + 8 + fmt_len + (fmt_len & 1)].to_vec();
            if rng.random_bool(0.5) {
                let mut out = b[..seed.data_chunk].to_vec();
                out.extend_from_slice(&fmt_chunk);
                out.extend_from_slice(&b[seed.data_chunk..]);
                b = out;
                "fmt chunk duplicated"
            } else {
                let mut out = b[..12].to_vec();
                out.extend_from_slice(&b[seed.data_chunk..]);
                out.extend_from_slice(&fmt_chunk);
                b = out;
                "data before fmt"
            }
        }
        9 => {
            // An unknown chunk (odd size, sometimes lying about it) before the data.
            let len = rng.random_range(0..40);
            let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let mut junk = chunk(b"junk", &body);
            if rng.random_bool(0.3) {
                let lie = ODD_U32[rng.random_range(0..ODD_U32.len())];
                junk[4..8].copy_from_slice(&lie.to_le_bytes());
            }
            let mut out = b[..seed.data_chunk].to_vec();
            out.extend_from_slice(&junk);
            out.extend_from_slice(&b[seed.data_chunk..]);
            b = out;
            "chunk inserted"
        }
        10 => {
            let len = rng.random_range(1..500);
            b.extend((0..len).map(|_| rng.random::<u8>()));
            "garbage appended"
        }
        _ => {
            // RIFF/WAVE magic damaged.
            let at =
                [0usize, 1, 3, 8, 11, seed.fmt_body - 8, seed.data_chunk][rng.random_range(0..7)];
            b[at] = b[at].wrapping_add(rng.random_range(1..=255));
            "magic damaged"
        }
    };
    (kind, b)
}
