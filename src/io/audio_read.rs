//! Reading any audio file `whiten` accepts: the first bytes choose the reader (see
//! [`sniff`](super::sniff)) — WAV goes to this crate's validating reader, unchanged; AIFF, FLAC,
//! Ogg Vorbis and MP3 to [`DecodedInput`] on `symphonia`. Both stream, normalise samples the same
//! way, and report every problem as a [`WavError`] naming the file.

use super::decoded::DecodedInput;
use super::sniff::{sniff, Container, HEAD_LEN};
use super::wav_read::{open_file, read_full};
use super::{WavError, WavInput, WavSpec};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::io::{MediaSource, ReadOnlySource};

/// Frames per step of [`read_audio`].
const READ_AUDIO_FRAMES: usize = 16_384;

/// A streaming reader of a WAV, AIFF, FLAC, Ogg Vorbis or MP3 file.
///
/// Samples come interleaved as `f32`: integers divided by `2^(bits−1)` (so a FLAC or AIFF file
/// and its WAV twin read identically), floats unchanged (NaN and infinities included: the caller
/// decides what to do with them), lossy codecs as decoded, with the encoder's delay and padding
/// removed where the file records them (MP3's LAME tag, Ogg's granule positions).
#[derive(Debug)]
pub struct AudioInput {
    /// The reader the file's format chose.
    reader: Reader,
}

/// The two readers behind [`AudioInput`].
#[derive(Debug)]
enum Reader {
    /// WAV, by this crate's own parser.
    Wav(WavInput),
    /// Everything else, by `symphonia` (boxed: its state is large and lives on the heap anyway).
    Decoded(Box<DecodedInput>),
}

impl AudioInput {
    /// Opens `path` and prepares to read its audio, choosing the reader from the first bytes.
    ///
    /// A WAV file is checked completely here, as [`WavInput::open`] does. The other formats are
    /// checked as far as their headers go; damage in the coded audio, truncation and a frame
    /// count that differs from the header's surface from [`read_frames`](Self::read_frames),
    /// at the latest when it reaches the end.
    pub fn open(path: impl AsRef<Path>) -> Result<AudioInput, WavError> {
        let path = path.as_ref();
        let (mut file, file_len) = open_file(path)?;
        let mut head = [0u8; HEAD_LEN];
        let n = read_full(&mut file, &mut head).map_err(|e| WavError::io(path, "read", e))?;
        if n == 0 {
            return Err(WavError::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let head = &head[..n];
        let container = sniff(head).map_err(|reason| WavError::NotAudio {
            path: path.to_path_buf(),
            reason,
        })?;
        let reader = match container {
            Container::Wav => {
                Reader::Wav(WavInput::from_source(path, replay(head, file), file_len)?)
            }
            _ => {
                let source: Box<dyn MediaSource> = if file_len.is_some() {
                    // A regular file is given to the decoder whole, seekable: the Ogg reader
                    // then finds the stream's length at its end.
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| WavError::io(path, "read", e))?;
                    Box::new(file)
                } else {
                    Box::new(ReadOnlySource::new(replay(head, file)))
                };
                Reader::Decoded(Box::new(DecodedInput::open(path, container, source)?))
            }
        };
        Ok(AudioInput { reader })
    }

    /// Rate, channels, and the WAV encoding that holds the samples without loss, which the
    /// output of `whiten process` reproduces: a WAV file's own; the integer depth of FLAC and
    /// AIFF (rounded up to 16, 24 or 32 bits); 32-bit float for float AIFF, Ogg Vorbis and MP3.
    pub fn spec(&self) -> WavSpec {
        match &self.reader {
            Reader::Wav(r) => r.spec(),
            Reader::Decoded(r) => r.spec(),
        }
    }

    /// How many frames the file holds as far as its header says, for progress reports: exact
    /// for WAV (checked on open), AIFF, FLAC, Ogg read from a regular file and MP3 with a LAME
    /// tag (checked when reading ends); estimated from the bit rate for other MP3 files; `None`
    /// when the file does not say (an Ogg stream through a pipe).
    pub fn frames(&self) -> Option<u64> {
        match &self.reader {
            Reader::Wav(r) => Some(r.frames()),
            Reader::Decoded(r) => r.frames_hint(),
        }
    }

    /// Frames returned so far by [`read_frames`](Self::read_frames).
    pub fn frames_read(&self) -> u64 {
        match &self.reader {
            Reader::Wav(r) => r.frames_read(),
            Reader::Decoded(r) => r.frames_read(),
        }
    }

    /// The path the input was opened with, for messages.
    pub fn path(&self) -> &Path {
        match &self.reader {
            Reader::Wav(r) => r.path(),
            Reader::Decoded(r) => r.path(),
        }
    }

    /// Reads up to `buf.len() / channels` frames into `buf` (interleaved) and returns how many
    /// were read. Fewer are returned only at the end, and 0 means the end — which for the
    /// decoded formats comes only after the end-of-stream checks (frame count, FLAC's MD5
    /// signature) passed. Elements of `buf` beyond the frames read are left untouched. After an
    /// error, every later call returns it again.
    ///
    /// # Panics
    ///
    /// If `buf` cannot hold one frame: returning 0 would be indistinguishable from the end.
    pub fn read_frames(&mut self, buf: &mut [f32]) -> Result<usize, WavError> {
        let channels = usize::from(self.spec().channels);
        assert!(
            buf.len() >= channels,
            "read_frames needs room for at least one {channels}-channel frame, got {}",
            buf.len()
        );
        match &mut self.reader {
            Reader::Wav(r) => r.read_frames(buf),
            Reader::Decoded(r) => r.read_frames(buf),
        }
    }
}

/// The file from its first byte: the bytes read to recognise it, then the rest (a pipe cannot
/// seek back).
fn replay(head: &[u8], file: File) -> io::Chain<io::Cursor<Vec<u8>>, File> {
    io::Cursor::new(head.to_vec()).chain(file)
}

/// Reads a whole file into memory: its spec and all samples, interleaved. For short files and
/// tests; [`AudioInput`] streams instead. Same errors as [`AudioInput`].
pub fn read_audio(path: impl AsRef<Path>) -> Result<(WavSpec, Vec<f32>), WavError> {
    let mut input = AudioInput::open(path)?;
    let spec = input.spec();
    let channels = usize::from(spec.channels);
    let mut samples = Vec::new();
    let mut block = vec![0.0f32; READ_AUDIO_FRAMES * channels];
    loop {
        let n = input.read_frames(&mut block)?;
        if n == 0 {
            return Ok((spec, samples));
        }
        samples.extend_from_slice(&block[..n * channels]);
    }
}
