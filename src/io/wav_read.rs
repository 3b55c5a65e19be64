//! Reading WAV files: a validating header parser and a streaming decoder.
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
//! than working around those.

use super::wav_fmt::{fourcc, parse_fmt};
use super::{SampleFormat, WavError, WavSpec};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Longest `fmt ` chunk accepted. Real ones are 16, 18 or 40 bytes; a huge length means a
/// corrupt header, and refusing it avoids allocating whatever a garbage length field says.
const MAX_FMT_LEN: u32 = 1024;

/// Raw bytes decoded per internal step of [`WavInput::read_frames`], bounding its scratch
/// memory however large the caller's buffer is.
const READ_CHUNK_BYTES: usize = 1 << 16;

/// Largest `f32` below 1.0 (`1 − 2⁻²⁴`). 32-bit integers near full scale round to exactly 1.0
/// in `f32`; clamping to this keeps the documented `[−1, 1)` range.
pub(super) const ONE_BELOW: f32 = 1.0 - f32::EPSILON / 2.0;

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
    reader: BufReader<Source>,
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
pub(super) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// What the reader reads: the bytes a caller already took from the start of the file (to
/// recognise its format), then the rest of the file. Reading on rather than seeking back keeps
/// pipes (`/dev/stdin`) working.
pub(super) type Source = io::Chain<io::Cursor<Vec<u8>>, File>;

/// Opens `path` for reading and returns the file with its size if it is a regular file (a pipe
/// has none). A regular file of 0 bytes is [`WavError::EmptyFile`].
pub(super) fn open_file(path: &Path) -> Result<(File, Option<u64>), WavError> {
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
    Ok((file, file_len))
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
        let (file, file_len) = open_file(path)?;
        WavInput::from_source(path, io::Cursor::new(Vec::new()).chain(file), file_len)
    }

    /// [`open`](Self::open) for a file already opened (and possibly sniffed) by
    /// [`AudioInput`](super::AudioInput): `source` yields the file from its first byte — the
    /// bytes already read, then the rest — and `file_len` is its size if it is a regular file.
    pub(super) fn from_source(
        path: &Path,
        source: Source,
        file_len: Option<u64>,
    ) -> Result<WavInput, WavError> {
        let mut reader = BufReader::with_capacity(READ_CHUNK_BYTES, source);
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

#[cfg(test)]
mod tests {
    use super::*;

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
