//! WAV input and output for offline processing (`whiten process IN.wav OUT.wav`).
//!
//! The rules this module enforces come from the CLI contract (`DESIGN.md` §7): bad input gets a
//! clear error that names the file and the problem and loses nothing; an output file only ever
//! appears complete (it is written under a temporary name in the same directory and renamed over
//! the target on success); truncated data is an error, never a silently shorter result.
//!
//! * [`WavInput`] streams frames from a file so that long recordings need not fit in memory;
//!   [`read_wav`] is the whole-file convenience.
//! * [`WavOutput`] writes atomically; [`write_wav`] is the whole-buffer convenience.
//!
//! Supported: 16-, 24- and 32-bit integer PCM and 32-bit IEEE float, 1 to 16 channels, any
//! non-zero sample rate, in plain, `WAVEFORMATEX` or `WAVEFORMATEXTENSIBLE` headers.
//! Everything else is refused with [`WavError::Unsupported`], saying what was found.
//!
//! # Why the reader does not use `hound`
//!
//! Input is parsed and decoded here rather than with `hound::WavReader` (which `hound` 3.5.1
//! provides), because its failure modes cannot be turned into the errors this tool promises:
//! a zero-length file, a header cut short, a missing data chunk and truncated sample data all
//! surface as the same `IoError(Other, "Failed to read enough bytes.")`; 64-bit float is
//! reported as an ill-formed file rather than an unsupported one; A-law and other encodings give
//! a bare `Unsupported` without saying what was found; a valid file with an odd-length chunk
//! before the data (RIFF pads such chunks to an even length) fails to open because the pad byte
//! is not skipped; extensible headers with fewer valid bits than the container open fine but
//! fail on every sample. Decoding four sample formats is a few lines, so owning it is cheaper
//! than working around those. Output does use `hound::WavWriter`, guarded against its panics
//! (sample rate 0 divides by zero) and its 32-bit length counters (see [`WavOutput`]).

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the tool supports, appended to every [`WavError::Unsupported`] message so the user
/// knows what to convert to.
const SUPPORTED: &str =
    "supported: 16-, 24- or 32-bit integer PCM or 32-bit float, with 1 to 16 channels";

/// The most channels accepted. A whitening circuit's cost grows with the square (or cube) of
/// the channel count; 16 covers every realistic multichannel recording.
pub const MAX_CHANNELS: u16 = 16;

/// Longest `fmt ` chunk accepted. Real ones are 16, 18 or 40 bytes; a huge length means a
/// corrupt header, and refusing it avoids allocating whatever a garbage length field says.
const MAX_FMT_LEN: u32 = 1024;

/// Raw bytes decoded per internal step of [`WavInput::read_frames`], bounding its scratch
/// memory however large the caller's buffer is.
const READ_CHUNK_BYTES: usize = 1 << 16;

/// `WAVE_FORMAT_PCM`: integer samples.
const TAG_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_IEEE_FLOAT`: float samples.
const TAG_IEEE_FLOAT: u16 = 0x0003;
/// `WAVE_FORMAT_EXTENSIBLE`: the real encoding is in a sub-format GUID.
const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// The tail shared by every `KSDATAFORMAT_SUBTYPE_*` GUID derived from a classic format tag
/// (`xxxx0000-0000-0010-8000-00aa00389b71`, stored little-endian); the first two bytes are the
/// tag itself.
const SUBFORMAT_GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// Largest `f32` below 1.0 (`1 − 2⁻²⁴`). 32-bit integers near full scale round to exactly 1.0
/// in `f32`; clamping to this keeps the documented `[−1, 1)` range.
const ONE_BELOW: f32 = 1.0 - f32::EPSILON / 2.0;

/// Everything that can go wrong reading or writing a WAV file.
///
/// Every variant carries the path the user gave, and its message says the problem in plain
/// words, because these errors are shown directly to the person running `whiten`.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The operating system refused an operation (missing file, permissions, full disk, …).
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// The file the user named (for output, the final name, not the temporary one).
        path: PathBuf,
        /// What was being attempted, phrased to follow "cannot", e.g. `"open"`, `"read"`.
        action: &'static str,
        /// The underlying error, kept so callers can inspect its kind (e.g. `NotFound`).
        #[source]
        source: io::Error,
    },

    /// The file has zero bytes — a distinct, common mistake (an interrupted copy, a failed
    /// export), so it gets its own message rather than "not a WAV file".
    #[error("{} is empty (0 bytes), not a WAV file", .path.display())]
    EmptyFile {
        /// The file that was empty.
        path: PathBuf,
    },

    /// The file is not a RIFF WAVE file at all (text, another audio container, garbage).
    #[error("{} is not a WAV file ({reason})", .path.display())]
    NotWav {
        /// The file that was read.
        path: PathBuf,
        /// What was found instead, e.g. "no RIFF header".
        reason: String,
    },

    /// The file starts like a WAV file but its header is inconsistent or incomplete.
    #[error("{} has a corrupt or incomplete WAV header: {problem}", .path.display())]
    Malformed {
        /// The file that was read.
        path: PathBuf,
        /// The specific inconsistency, so that the user can judge whether the file is damaged.
        problem: String,
    },

    /// A well-formed WAV file (or a requested output format) that this tool does not handle.
    #[error("{} uses {found}; {SUPPORTED}", .path.display())]
    Unsupported {
        /// The file that was read or was to be written.
        path: PathBuf,
        /// What was found, e.g. "8-bit PCM", "64-bit float", "17 channels".
        found: String,
    },

    /// A valid header whose data chunk holds no frames. Whitening nothing makes no sense, and
    /// an empty output would hide that the input was wrong, so it is an error.
    #[error(
        "{} contains no audio: its data chunk holds 0 frames",
        .path.display()
    )]
    Empty {
        /// The file that was read.
        path: PathBuf,
    },

    /// The data ends before the length the header declares: the file was cut short (an
    /// interrupted download or recording). Processing it would silently produce a shorter
    /// output, so it is refused.
    #[error(
        "{} is truncated: the header promises {expected_frames} frames but the data holds only {got_frames}",
        .path.display()
    )]
    Truncated {
        /// The file that was read.
        path: PathBuf,
        /// Frames declared by the data chunk header.
        expected_frames: u64,
        /// Complete frames actually present.
        got_frames: u64,
    },

    /// [`WavOutput::write_frames`] was given a buffer that does not hold whole frames; writing
    /// it would misalign every following frame's channels.
    #[error(
        "cannot write {}: {samples} samples is not a whole number of {channels}-channel frames",
        .path.display()
    )]
    PartialFrame {
        /// The output file.
        path: PathBuf,
        /// Length of the interleaved buffer given.
        samples: usize,
        /// Channels per frame of the output.
        channels: u16,
    },

    /// The output would exceed what a RIFF WAV header can describe (32-bit byte counts, about
    /// 4 GiB). Refused before anything is written rather than producing a corrupt header.
    #[error(
        "cannot write {}: a WAV file in this format holds at most {max_frames} frames (the 4 GiB limit of RIFF)",
        .path.display()
    )]
    TooLong {
        /// The output file.
        path: PathBuf,
        /// The most frames that fit for this spec.
        max_frames: u64,
    },
}

impl WavError {
    /// The file the error is about, for callers that want to report it separately.
    pub fn path(&self) -> &Path {
        match self {
            WavError::Io { path, .. }
            | WavError::EmptyFile { path }
            | WavError::NotWav { path, .. }
            | WavError::Malformed { path, .. }
            | WavError::Unsupported { path, .. }
            | WavError::Empty { path }
            | WavError::Truncated { path, .. }
            | WavError::PartialFrame { path, .. }
            | WavError::TooLong { path, .. } => path,
        }
    }

    fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        WavError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    fn malformed(path: &Path, problem: impl Into<String>) -> Self {
        WavError::Malformed {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    fn unsupported(path: &Path, found: impl Into<String>) -> Self {
        WavError::Unsupported {
            path: path.to_path_buf(),
            found: found.into(),
        }
    }

    /// `hound` wraps I/O errors; anything else it reports (which the guards in [`WavOutput`]
    /// should make impossible) is still surfaced as an I/O failure with its message.
    fn from_hound(path: &Path, action: &'static str, err: hound::Error) -> Self {
        let source = match err {
            hound::Error::IoError(e) => e,
            other => io::Error::other(other.to_string()),
        };
        WavError::io(path, action, source)
    }
}

/// Sample encodings this tool reads and writes.
///
/// An enum rather than a bit count so that an unsupported combination (8-bit, 64-bit float,
/// 24-bit float) cannot even be requested for output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// 16-bit signed integer PCM (CD quality; the most common format).
    Int16,
    /// 24-bit signed integer PCM, packed in 3 bytes (studio recordings).
    Int24,
    /// 32-bit signed integer PCM.
    Int32,
    /// 32-bit IEEE float, nominally in [−1, 1] but unbounded (lossless for processing output).
    Float32,
}

impl SampleFormat {
    /// Significant bits per sample, which sets the integer quantisation step `2^−(bits−1)`.
    pub fn bits(self) -> u16 {
        match self {
            SampleFormat::Int16 => 16,
            SampleFormat::Int24 => 24,
            SampleFormat::Int32 | SampleFormat::Float32 => 32,
        }
    }

    /// Bytes per sample in the file (no padding is supported, so `bits / 8`).
    pub fn bytes(self) -> usize {
        usize::from(self.bits() / 8)
    }

    /// Whether samples are floats (stored as-is) rather than integers (scaled and clamped).
    pub fn is_float(self) -> bool {
        self == SampleFormat::Float32
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleFormat::Float32 => f.write_str("32-bit float"),
            other => write!(f, "{}-bit integer PCM", other.bits()),
        }
    }
}

/// The shape of a WAV stream: what the output must reproduce from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WavSpec {
    /// Frames per second. Carried through unchanged: whitening does not resample.
    pub sample_rate: u32,
    /// Interleaved channels per frame (1 to [`MAX_CHANNELS`]).
    pub channels: u16,
    /// Sample encoding in the file.
    pub format: SampleFormat,
}

impl WavSpec {
    /// Bytes per frame (`channels × bytes per sample`), the WAV "block align".
    pub fn bytes_per_frame(&self) -> usize {
        usize::from(self.channels) * self.format.bytes()
    }

    /// Checks the parts of a spec the enum cannot rule out, so that an impossible output is
    /// refused before a file is created (and before `hound` can panic on a zero rate).
    fn check_writable(&self, path: &Path) -> Result<(), WavError> {
        check_channels(path, self.channels)?;
        if self.sample_rate == 0 {
            return Err(WavError::unsupported(path, "a sample rate of 0 Hz"));
        }
        // `hound` computes bytes per second in a u32; a rate that overflows it is not a real
        // audio rate, and a WAV header cannot describe it.
        if u32::try_from(self.bytes_per_frame() as u64 * u64::from(self.sample_rate)).is_err() {
            return Err(WavError::unsupported(
                path,
                format!(
                    "a sample rate of {} Hz, too high for a WAV header at {} channels of {}",
                    self.sample_rate, self.channels, self.format
                ),
            ));
        }
        Ok(())
    }
}

fn check_channels(path: &Path, channels: u16) -> Result<(), WavError> {
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(WavError::unsupported(
            path,
            format!("{channels} channel{}", if channels == 1 { "" } else { "s" }),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A streaming WAV reader: the header is parsed and validated on [`open`](Self::open), frames
/// are decoded on demand, so memory use does not depend on the file's length.
///
/// Integer samples are normalised to [−1, 1) by dividing by `2^(bits−1)`; float samples are
/// passed through unchanged, NaN and infinities included (the caller decides what to do with
/// them, and silently altering them would hide a problem in the input).
pub struct WavInput {
    /// The path as given, for error messages.
    path: PathBuf,
    /// Buffered file positioned in the data chunk.
    reader: BufReader<File>,
    /// Format of the data.
    spec: WavSpec,
    /// Frames the data chunk header declares.
    frames: u64,
    /// Frames decoded so far.
    frames_read: u64,
    /// Set once the data has been found to end early, so later calls repeat the error instead
    /// of reading from an unknown position.
    truncated_at: Option<u64>,
    /// Scratch for raw bytes, at most [`READ_CHUNK_BYTES`] (rounded to whole frames).
    raw: Vec<u8>,
}

impl fmt::Debug for WavInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavInput")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("frames", &self.frames)
            .field("frames_read", &self.frames_read)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read. Unlike
/// `read_exact` this reports how much arrived, which the truncation message needs.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A four-character code for messages: printable ASCII as-is, anything else escaped, so that
/// garbage bytes cannot garble the terminal.
fn fourcc(id: &[u8]) -> String {
    id.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Human name of a WAV format tag, for "unsupported" messages.
fn tag_name(tag: u16) -> String {
    let name = match tag {
        0x0002 => "Microsoft ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x0161..=0x0163 => "Windows Media Audio",
        0x1610 => "AAC",
        _ => return format!("an unknown encoding (format tag 0x{tag:04X})"),
    };
    format!("{name} encoded audio (format tag 0x{tag:04X})")
}

/// Interprets a `fmt ` chunk. Checks run from the most to the least fundamental property, so
/// that the message names the real obstacle (an A-law file is reported as A-law, not as
/// having the wrong bit depth).
fn parse_fmt(path: &Path, fmt: &[u8]) -> Result<WavSpec, WavError> {
    if fmt.len() < 16 {
        return Err(WavError::malformed(
            path,
            format!(
                "the fmt chunk is {} bytes long; at least 16 are needed",
                fmt.len()
            ),
        ));
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([fmt[i], fmt[i + 1], fmt[i + 2], fmt[i + 3]]);
    let tag = u16_at(0);
    let channels = u16_at(2);
    let sample_rate = u32_at(4);
    // Bytes 8..12 (bytes per second) are redundant and often wrong in the wild; ignored.
    let block_align = u16_at(12);
    let container_bits = u16_at(14);

    // The effective encoding and the number of meaningful bits in each container.
    let (code, valid_bits, via) = if tag == TAG_EXTENSIBLE {
        if fmt.len() < 40 || u16_at(16) < 22 {
            return Err(WavError::malformed(
                path,
                format!(
                    "the WAVE_FORMAT_EXTENSIBLE fmt chunk is too short ({} bytes, 40 needed)",
                    fmt.len()
                ),
            ));
        }
        let valid = match u16_at(18) {
            // Zero means "not specified" in some writers: the container is fully used.
            0 => container_bits,
            v => v,
        };
        let guid = &fmt[24..40];
        if guid[2..] != SUBFORMAT_GUID_TAIL {
            let hex: String = guid.iter().map(|b| format!("{b:02x}")).collect();
            return Err(WavError::unsupported(
                path,
                format!("WAVE_FORMAT_EXTENSIBLE with an unknown sub-format (GUID bytes {hex})"),
            ));
        }
        (
            u16::from_le_bytes([guid[0], guid[1]]),
            valid,
            " (in WAVE_FORMAT_EXTENSIBLE)",
        )
    } else {
        (tag, container_bits, "")
    };

    let is_float = match code {
        TAG_PCM => false,
        TAG_IEEE_FLOAT => true,
        other => {
            return Err(WavError::unsupported(
                path,
                format!("{}{via}", tag_name(other)),
            ))
        }
    };

    check_channels(path, channels)?;

    let kind = if is_float { "float" } else { "PCM" };
    if valid_bits != container_bits {
        return Err(WavError::unsupported(
            path,
            format!("{valid_bits}-bit {kind} samples in {container_bits}-bit containers"),
        ));
    }
    let format = match (is_float, container_bits) {
        (false, 16) => SampleFormat::Int16,
        (false, 24) => SampleFormat::Int24,
        (false, 32) => SampleFormat::Int32,
        (true, 32) => SampleFormat::Float32,
        (_, bits) => {
            return Err(WavError::unsupported(path, format!("{bits}-bit {kind}")));
        }
    };

    let spec = WavSpec {
        sample_rate,
        channels,
        format,
    };
    let expected_align = spec.bytes_per_frame();
    if usize::from(block_align) != expected_align {
        let per_channel = usize::from(block_align) / usize::from(channels);
        // e.g. `arecord -f S24_LE`: 24-bit samples padded to 4 bytes. Whether the padding is
        // above or below the sample differs between writers, so guessing could silently
        // scale the audio by 256; refuse instead.
        if usize::from(block_align).is_multiple_of(usize::from(channels))
            && per_channel > format.bytes()
            && per_channel <= 8
        {
            return Err(WavError::unsupported(
                path,
                format!(
                    "{}-bit {kind} samples in {}-bit containers",
                    format.bits(),
                    per_channel * 8
                ),
            ));
        }
        return Err(WavError::malformed(
            path,
            format!(
                "the block alignment is {block_align} bytes, but {channels} channel(s) of \
                 {format} need {expected_align}"
            ),
        ));
    }
    if sample_rate == 0 {
        return Err(WavError::malformed(path, "the sample rate is 0 Hz"));
    }
    Ok(spec)
}

impl WavInput {
    /// Opens `path`, parses and validates its header and positions at the first frame.
    ///
    /// Everything that can be known before reading the samples is checked here, so that
    /// `whiten process` fails before doing any work: not a WAV file, corrupt header,
    /// unsupported format, no frames ([`WavError::Empty`]), and — for regular files, whose
    /// size is known — data shorter than the header declares ([`WavError::Truncated`]).
    /// Chunks other than `fmt ` and `data` (LIST, fact, cue, …) are skipped, honouring RIFF's
    /// padding of odd-length chunks; the RIFF size field is ignored, as many writers get it
    /// wrong.
    pub fn open(path: impl AsRef<Path>) -> Result<WavInput, WavError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| WavError::io(path, "open", e))?;
        let meta = file
            .metadata()
            .map_err(|e| WavError::io(path, "inspect", e))?;
        let file_len = meta.is_file().then_some(meta.len());
        if file_len == Some(0) {
            return Err(WavError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let mut reader = BufReader::with_capacity(READ_CHUNK_BYTES, file);
        let read_err = |e| WavError::io(path, "read", e);

        let mut riff = [0u8; 12];
        let n = read_full(&mut reader, &mut riff).map_err(read_err)?;
        if n == 0 {
            return Err(WavError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let magic = &riff[..n.min(4)];
        if magic != b"RIFF" {
            return Err(match magic {
                b"RIFX" => WavError::unsupported(path, "big-endian WAV (RIFX)"),
                b"RF64" | b"BW64" => {
                    WavError::unsupported(path, "the RF64 container for WAV files over 4 GiB")
                }
                _ => WavError::NotWav {
                    path: path.to_path_buf(),
                    reason: match magic {
                        b"FORM" => "it starts with FORM, like an AIFF file".into(),
                        b"OggS" => "it is an Ogg file".into(),
                        b"fLaC" => "it is a FLAC file".into(),
                        _ => "no RIFF header".into(),
                    },
                },
            });
        }
        if n < 12 {
            return Err(WavError::malformed(
                path,
                format!("the file ends after {n} bytes, inside the RIFF header"),
            ));
        }
        if &riff[8..12] != b"WAVE" {
            return Err(WavError::NotWav {
                path: path.to_path_buf(),
                reason: format!(
                    "it is a RIFF file of type '{}', not WAVE",
                    fourcc(&riff[8..12])
                ),
            });
        }

        let mut pos: u64 = 12;
        let mut spec: Option<WavSpec> = None;
        let (spec, data_offset, data_len) = loop {
            let mut header = [0u8; 8];
            let n = read_full(&mut reader, &mut header).map_err(read_err)?;
            if n == 0 {
                return Err(WavError::malformed(
                    path,
                    if spec.is_none() {
                        "there is no fmt chunk and no data chunk"
                    } else {
                        "there is no data chunk"
                    },
                ));
            }
            if n < 8 {
                return Err(WavError::malformed(
                    path,
                    format!("the file ends inside a chunk header at byte {pos}"),
                ));
            }
            pos += 8;
            let id = &header[..4];
            let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            match id {
                b"fmt " => {
                    if spec.is_some() {
                        return Err(WavError::malformed(path, "there are two fmt chunks"));
                    }
                    if len > MAX_FMT_LEN {
                        return Err(WavError::malformed(
                            path,
                            format!("the fmt chunk claims an implausible {len} bytes"),
                        ));
                    }
                    let mut body = vec![0u8; len as usize + (len & 1) as usize];
                    let got = read_full(&mut reader, &mut body).map_err(read_err)?;
                    if got < len as usize {
                        return Err(WavError::malformed(
                            path,
                            "the file ends inside the fmt chunk",
                        ));
                    }
                    pos += got as u64;
                    spec = Some(parse_fmt(path, &body[..len as usize])?);
                }
                b"data" => match spec {
                    Some(spec) => break (spec, pos, u64::from(len)),
                    None => {
                        return Err(WavError::malformed(
                            path,
                            "the data chunk comes before the fmt chunk",
                        ))
                    }
                },
                _ => {
                    // Skip by reading (not seeking) so that pipes work too.
                    let skip = u64::from(len) + u64::from(len & 1);
                    let skipped = io::copy(&mut (&mut reader).take(skip), &mut io::sink())
                        .map_err(read_err)?;
                    // A missing pad byte at the very end is harmless; anything shorter is not.
                    if skipped < u64::from(len) {
                        return Err(WavError::malformed(
                            path,
                            format!("the file ends inside the '{}' chunk", fourcc(id)),
                        ));
                    }
                    pos += skipped;
                }
            }
        };

        let block = spec.bytes_per_frame() as u64;
        if !data_len.is_multiple_of(block) {
            return Err(WavError::malformed(
                path,
                format!(
                    "the data chunk is {data_len} bytes, not a whole number of {block}-byte frames"
                ),
            ));
        }
        let frames = data_len / block;
        if frames == 0 {
            return Err(WavError::Empty {
                path: path.to_path_buf(),
            });
        }
        if let Some(len) = file_len {
            let available = len.saturating_sub(data_offset);
            if available < data_len {
                return Err(WavError::Truncated {
                    path: path.to_path_buf(),
                    expected_frames: frames,
                    got_frames: available / block,
                });
            }
        }

        Ok(WavInput {
            path: path.to_path_buf(),
            reader,
            spec,
            frames,
            frames_read: 0,
            truncated_at: None,
            raw: Vec::new(),
        })
    }

    /// The format of the data, which the output normally reproduces.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Frames declared by the header (validated against the file size on open), for progress
    /// reporting and preallocation.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames returned so far by [`read_frames`](Self::read_frames).
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The path the input was opened with, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `buf.len() / channels` frames into `buf` (interleaved) and returns how many
    /// were read. Fewer are returned only at the end of the data, and 0 means the end.
    /// Elements of `buf` beyond the frames read are left untouched.
    ///
    /// If the data ends before the length the header declares (possible even after a
    /// successful open, e.g. for a pipe or a file shrinking meanwhile), returns
    /// [`WavError::Truncated`], and keeps returning it.
    ///
    /// # Panics
    ///
    /// If `buf` cannot hold one frame: returning 0 would be indistinguishable from the end.
    pub fn read_frames(&mut self, buf: &mut [f32]) -> Result<usize, WavError> {
        let channels = usize::from(self.spec.channels);
        assert!(
            buf.len() >= channels,
            "read_frames needs room for at least one {channels}-channel frame, got {}",
            buf.len()
        );
        if let Some(got_frames) = self.truncated_at {
            return Err(self.truncated(got_frames));
        }
        let remaining = self.frames - self.frames_read;
        let wanted = (buf.len() / channels).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let block = self.spec.bytes_per_frame();
        let chunk_frames = (READ_CHUNK_BYTES / block).max(1);
        let mut done = 0;
        while done < wanted {
            let n = chunk_frames.min(wanted - done);
            let bytes = n * block;
            if self.raw.len() < bytes {
                self.raw.resize(bytes, 0);
            }
            let got = read_full(&mut self.reader, &mut self.raw[..bytes])
                .map_err(|e| WavError::io(&self.path, "read", e))?;
            if got < bytes {
                let got_frames = self.frames_read + (got / block) as u64;
                self.truncated_at = Some(got_frames);
                return Err(self.truncated(got_frames));
            }
            let out = &mut buf[done * channels..(done + n) * channels];
            decode(self.spec.format, &self.raw[..bytes], out);
            done += n;
            self.frames_read += n as u64;
        }
        Ok(done)
    }

    fn truncated(&self, got_frames: u64) -> WavError {
        WavError::Truncated {
            path: self.path.clone(),
            expected_frames: self.frames,
            got_frames,
        }
    }
}

/// Little-endian bytes to normalised samples. Integers are divided by `2^(bits−1)` (a power
/// of two, so the only rounding is the `f32` conversion of 32-bit values).
fn decode(format: SampleFormat, raw: &[u8], out: &mut [f32]) {
    match format {
        SampleFormat::Int16 => {
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(2)) {
                *o = f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32_768.0);
            }
        }
        SampleFormat::Int24 => {
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(3)) {
                // Place the 3 bytes at the top of an i32; the arithmetic shift sign-extends.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                *o = v as f32 * (1.0 / 8_388_608.0);
            }
        }
        SampleFormat::Int32 => {
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(4)) {
                let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                *o = (v as f32 * (1.0 / 2_147_483_648.0)).min(ONE_BELOW);
            }
        }
        SampleFormat::Float32 => {
            for (o, b) in out.iter_mut().zip(raw.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
}

/// Reads a whole file into memory: its spec and all samples, interleaved. For short files and
/// tests; [`WavInput`] streams instead. Same errors as [`WavInput`].
pub fn read_wav(path: impl AsRef<Path>) -> Result<(WavSpec, Vec<f32>), WavError> {
    let mut input = WavInput::open(path)?;
    let spec = input.spec();
    // The frame count was checked against the file size on open, so this allocation is
    // bounded by the real data (at most twice its byte size), not by a garbage header.
    let total = usize::try_from(input.frames())
        .ok()
        .and_then(|f| f.checked_mul(usize::from(spec.channels)))
        .expect("the frame count of a WAV file (< 4 GiB) fits in memory addressing");
    let mut samples = vec![0.0f32; total];
    let n = input.read_frames(&mut samples)?;
    debug_assert_eq!(n as u64, input.frames());
    Ok((spec, samples))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Distinguishes temporary files created by one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An atomic WAV writer.
///
/// Frames go to a temporary file in the target's directory (`.{name}.tmp-{pid}-{n}`, hidden,
/// unique, and on the same filesystem so the final rename is atomic).
/// [`finish`](Self::finish) completes the header, syncs the data to disk and renames the file
/// over the target. Dropping a `WavOutput` without finishing — an error propagated with `?`,
/// a panic, an early return — deletes the temporary file and leaves any existing file at the
/// target untouched: the target is either the old file or the complete new one, never a
/// partial mix. (If the target is a symbolic link, the link itself is replaced. The new file
/// gets default permissions, not those of the file it replaces.)
///
/// Integer output: samples are clamped to [−1, 1], scaled by `2^(bits−1)`, rounded to nearest
/// (ties away from zero) and saturated, so +1.0 becomes the largest integer. NaN has no
/// meaningful clamped value and is written as 0 (silence), the least harmful choice for a
/// listener; ±∞ clamp to ±full scale. Float output is written exactly as given, NaN and ∞
/// included: it is the lossless format, and changing values there would hide a bug upstream.
pub struct WavOutput {
    /// The target the user named; errors refer to it.
    path: PathBuf,
    /// Where the data is written until [`finish`](Self::finish).
    temp_path: PathBuf,
    /// Format of the output.
    spec: WavSpec,
    /// The encoder; `None` only transiently inside `finish`/`drop`.
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    /// A second handle to the temporary file, used to `fsync` it after `hound` has flushed
    /// (hound's writer never hands its file back).
    file: Option<File>,
    /// Frames accepted so far.
    frames_written: u64,
    /// The most frames whose byte count still fits hound's 32-bit RIFF size fields.
    max_frames: u64,
    /// Set once the rename succeeded, so `drop` leaves the file alone.
    committed: bool,
}

impl fmt::Debug for WavOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavOutput")
            .field("path", &self.path)
            .field("temp_path", &self.temp_path)
            .field("spec", &self.spec)
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

impl WavOutput {
    /// Starts writing `path` in format `spec`, via a new temporary file beside it.
    ///
    /// Fails (creating nothing) if the spec cannot be written (0 or more than
    /// [`MAX_CHANNELS`] channels, a 0 Hz rate) or the temporary file cannot be created, e.g.
    /// because the directory does not exist or is not writable. An existing file at `path` is
    /// not touched until [`finish`](Self::finish).
    pub fn create(path: impl AsRef<Path>, spec: WavSpec) -> Result<WavOutput, WavError> {
        let path = path.as_ref();
        spec.check_writable(path)?;
        let file_name = path.file_name().ok_or_else(|| {
            WavError::io(
                path,
                "create",
                io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };

        let (file, temp_path) = {
            let mut attempt = 0;
            loop {
                let mut name = OsString::from(".");
                name.push(file_name);
                name.push(format!(
                    ".tmp-{}-{}",
                    std::process::id(),
                    TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                let candidate = dir.join(name);
                // `create_new` never opens an existing file, so a stale temporary file left by
                // a crashed run with the same pid is not overwritten; try the next number.
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&candidate)
                {
                    Ok(f) => break (f, candidate),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                        attempt += 1;
                    }
                    Err(e) => return Err(WavError::io(path, "create a temporary file next to", e)),
                }
            }
        };

        // From here on the temporary file exists: build the value first so that its `Drop`
        // removes the file if anything below fails.
        let block = spec.bytes_per_frame() as u64;
        // hound stores data bytes and "data + header − 8" in u32; its header is at most
        // 68 bytes (WAVEFORMATEXTENSIBLE), so 60 is subtracted.
        let max_frames = (u64::from(u32::MAX) - 60) / block;
        let mut out = WavOutput {
            path: path.to_path_buf(),
            temp_path,
            spec,
            writer: None,
            file: None,
            frames_written: 0,
            max_frames,
            committed: false,
        };
        let sync_handle = file
            .try_clone()
            .map_err(|e| WavError::io(path, "create a temporary file next to", e))?;
        out.file = Some(sync_handle);
        let hound_spec = hound::WavSpec {
            channels: spec.channels,
            sample_rate: spec.sample_rate,
            bits_per_sample: spec.format.bits(),
            sample_format: if spec.format.is_float() {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let writer = hound::WavWriter::new(BufWriter::with_capacity(1 << 16, file), hound_spec)
            .map_err(|e| WavError::from_hound(path, "write", e))?;
        out.writer = Some(writer);
        Ok(out)
    }

    /// The format being written.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// The final path (not the temporary one), for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames accepted so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Appends frames (interleaved, `channels` samples each), converting as described on
    /// [`WavOutput`].
    ///
    /// A buffer that is not a whole number of frames ([`WavError::PartialFrame`]) or would
    /// take the file past the 4 GiB RIFF limit ([`WavError::TooLong`]) is refused before
    /// anything of it is written. After an I/O error the output should be dropped.
    pub fn write_frames(&mut self, interleaved: &[f32]) -> Result<(), WavError> {
        let channels = self.spec.channels;
        if !interleaved.len().is_multiple_of(usize::from(channels)) {
            return Err(WavError::PartialFrame {
                path: self.path.clone(),
                samples: interleaved.len(),
                channels,
            });
        }
        let frames = (interleaved.len() / usize::from(channels)) as u64;
        if self.frames_written + frames > self.max_frames {
            return Err(WavError::TooLong {
                path: self.path.clone(),
                max_frames: self.max_frames,
            });
        }
        let writer = self
            .writer
            .as_mut()
            .expect("the writer exists until finish or drop");
        let path = &self.path;
        let err = |e| WavError::from_hound(path, "write", e);
        match self.spec.format {
            SampleFormat::Int16 => {
                for &x in interleaved {
                    writer
                        .write_sample(float_to_int(x, 16) as i16)
                        .map_err(err)?;
                }
            }
            SampleFormat::Int24 => {
                for &x in interleaved {
                    writer.write_sample(float_to_int(x, 24)).map_err(err)?;
                }
            }
            SampleFormat::Int32 => {
                for &x in interleaved {
                    writer.write_sample(float_to_int(x, 32)).map_err(err)?;
                }
            }
            SampleFormat::Float32 => {
                for &x in interleaved {
                    writer.write_sample(x).map_err(err)?;
                }
            }
        }
        self.frames_written += frames;
        Ok(())
    }

    /// Completes the file: finalises the header, flushes and syncs the data to disk, then
    /// atomically renames the temporary file over the target. Only after this returns `Ok`
    /// does the target hold the new audio; on error the temporary file is removed and the
    /// target is as it was.
    pub fn finish(mut self) -> Result<(), WavError> {
        let writer = self
            .writer
            .take()
            .expect("the writer exists until finish or drop");
        writer
            .finalize()
            .map_err(|e| WavError::from_hound(&self.path, "write", e))?;
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|e| WavError::io(&self.path, "sync to disk", e))?;
        }
        fs::rename(&self.temp_path, &self.path)
            .map_err(|e| WavError::io(&self.path, "replace", e))?;
        self.committed = true;
        // Make the rename itself durable. Best effort: the new file is already complete and in
        // place, and some platforms and filesystems cannot sync a directory.
        #[cfg(unix)]
        if let Some(dir) = self.temp_path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for WavOutput {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Close both handles first (hound's own drop rewrites its header, harmlessly, into
        // the file about to go); some platforms cannot delete an open file.
        drop(self.writer.take());
        drop(self.file.take());
        let _ = fs::remove_file(&self.temp_path);
    }
}

/// Converts a sample to a `bits`-bit integer: clamp to [−1, 1], scale by `2^(bits−1)`, round
/// to nearest (ties away from zero), saturate at the top; NaN becomes 0. Computed in `f64`,
/// which holds every 32-bit integer exactly.
fn float_to_int(x: f32, bits: u32) -> i32 {
    if x.is_nan() {
        return 0;
    }
    let scale = (1u64 << (bits - 1)) as f64;
    let v = (f64::from(x.clamp(-1.0, 1.0)) * scale).round();
    v.min(scale - 1.0) as i32
}

/// Writes a whole buffer (interleaved) atomically: [`WavOutput::create`], one
/// [`write_frames`](WavOutput::write_frames), [`finish`](WavOutput::finish).
pub fn write_wav(
    path: impl AsRef<Path>,
    spec: WavSpec,
    interleaved: &[f32],
) -> Result<(), WavError> {
    let mut out = WavOutput::create(path, spec)?;
    out.write_frames(interleaved)?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_to_int_rounds_clamps_and_zeroes_nan() {
        assert_eq!(float_to_int(0.0, 16), 0);
        assert_eq!(float_to_int(1.0, 16), 32_767);
        assert_eq!(float_to_int(-1.0, 16), -32_768);
        assert_eq!(float_to_int(2.0, 16), 32_767);
        assert_eq!(float_to_int(f32::NEG_INFINITY, 24), -8_388_608);
        assert_eq!(float_to_int(f32::INFINITY, 32), i32::MAX);
        assert_eq!(float_to_int(-1.0, 32), i32::MIN);
        assert_eq!(float_to_int(f32::NAN, 32), 0);
        assert_eq!(float_to_int(2.4 / 32_768.0, 16), 2);
        assert_eq!(float_to_int(2.6 / 32_768.0, 16), 3);
        assert_eq!(float_to_int(-2.6 / 32_768.0, 16), -3);
    }

    #[test]
    fn decode_int24_sign_extends() {
        let mut out = [0.0f32; 3];
        decode(
            SampleFormat::Int24,
            &[0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff],
            &mut out,
        );
        assert_eq!(out, [8_388_607.0 / 8_388_608.0, -1.0, -1.0 / 8_388_608.0]);
    }

    #[test]
    fn decode_int32_stays_below_one() {
        let mut out = [0.0f32; 1];
        decode(SampleFormat::Int32, &i32::MAX.to_le_bytes(), &mut out);
        assert!(out[0] < 1.0);
    }
}
