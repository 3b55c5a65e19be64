//! Reading AIFF, FLAC, Ogg Vorbis and MP3 files through `symphonia`, with the contract of the
//! WAV reader: frames are decoded packet by packet on demand (memory does not grow with the
//! file), samples come out normalised to `f32` exactly as the WAV reader gives them, and every
//! way a file can be wrong is an error that names it.
//!
//! What a decoder would pass over quietly is an error here. `symphonia` resynchronises past
//! damaged FLAC frames and MPEG junk and ends a stream at the first short read; played back,
//! that is the right choice, but a whitened file that silently lost a stretch of audio is not.
//! So decoding stops at the first packet the decoder refuses, a stream that ends where its
//! container promised more is [`WavError::Truncated`] (or [`WavError::Damaged`] when no length
//! was promised), a FLAC file's audio must match the MD5 signature in its header, and the sample
//! rate and channel count may not change mid-stream. The decoders run inside
//! [`contain`](super::contain::contain): a panic on hostile bytes is an error too.

use super::contain::contain;
use super::sniff::{id3v2_len, Container, ID3_HEADER_LEN};
use super::wav_read::ONE_BELOW;
use super::wav_spec::check_channels;
use super::{SampleFormat, WavError, WavSpec};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{
    AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions, CODEC_ID_NULL_AUDIO,
};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadBytes, SeekBuffered};
use symphonia::default::formats::{AiffReader, FlacReader, MpaReader, OggReader};

/// ID3v2 tags skipped before MPEG audio, at most: files may carry more than one, but a longer
/// chain is damage, not tags.
const MAX_ID3_TAGS: usize = 8;

/// A streaming reader of one audio track of an AIFF, FLAC, Ogg or MPEG file.
///
/// Samples are normalised like the WAV reader's: integers divided by `2^(bits−1)` (so a FLAC or
/// AIFF file gives exactly the samples of its WAV twin), floats passed through unchanged, NaN
/// and infinities included; lossy codecs give the decoder's `f32` output.
pub(super) struct DecodedInput {
    /// The path as given, for error messages.
    path: PathBuf,
    /// Container and codec in words ("FLAC", "Ogg Vorbis", "MP3", "AIFF"), for messages.
    format: &'static str,
    /// The demultiplexer, positioned at the next packet.
    reader: Box<dyn FormatReader>,
    /// The decoder of the chosen track; its output buffer holds one packet.
    decoder: Box<dyn AudioDecoder>,
    /// The track decoded; packets of other tracks (an Ogg file may hold several) are skipped.
    track_id: u32,
    /// Rate and channels of the stream, and the WAV encoding that holds its samples exactly.
    spec: WavSpec,
    /// Whether samples are integers, which are kept below 1.0 like the WAV reader keeps them.
    integer: bool,
    /// The frame count the container states and this reader enforces when the stream ends:
    /// FLAC's STREAMINFO, AIFF's sound data length, Ogg's last granule position, and the
    /// Xing/LAME tag of an MP3 file. `None` when the file does not say.
    declared_frames: Option<u64>,
    /// The frame count for progress reports: the declared one, or an estimate (an MP3 file
    /// without a tag, from its bit rate).
    frames_hint: Option<u64>,
    /// Frames produced by the decoder so far (returned or pending).
    frames_decoded: u64,
    /// Whether each packet must start where the previous one ended. FLAC frames carry their
    /// position, and `symphonia` resynchronises past an unreadable frame; a gap is that loss.
    contiguous: bool,
    /// Frames returned by [`read_frames`](Self::read_frames) so far.
    frames_read: u64,
    /// The last decoded packet, interleaved and normalised, not yet all returned. At most one
    /// packet: a few thousand frames, bounded by the codec.
    pending: Vec<f32>,
    /// Samples of `pending` already returned.
    pending_pos: usize,
    /// Whether the stream ended (cleanly) or failed; a failure is repeated on every later call,
    /// since the reader's state after an error is unknown.
    state: State,
}

/// Where a [`DecodedInput`] stands.
enum State {
    /// More packets may follow.
    Reading,
    /// The stream ended and passed the end-of-stream checks: every later read returns 0.
    Ended,
    /// Reading failed with this error, which every later read returns again.
    Failed(WavError),
}

impl fmt::Debug for DecodedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodedInput")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("spec", &self.spec)
            .field("declared_frames", &self.declared_frames)
            .field("frames_read", &self.frames_read)
            .finish_non_exhaustive()
    }
}

impl DecodedInput {
    /// Opens the container `container` (recognised by [`sniff`](super::sniff::sniff)) on
    /// `source`, read from its first byte, and prepares the decoder of its audio track.
    pub(super) fn open(
        path: &Path,
        container: Container,
        source: Box<dyn MediaSource>,
    ) -> Result<DecodedInput, WavError> {
        let mut mss = MediaSourceStream::new(source, Default::default());
        let container = if container == Container::Mpeg {
            // After ID3v2 tags comes MPEG audio, or sometimes FLAC.
            skip_id3v2(&mut mss).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => WavError::Damaged {
                    path: path.to_path_buf(),
                    format: container.name(),
                    problem: "it is truncated: the file ends inside its ID3v2 tag".into(),
                },
                _ => WavError::io(path, "read", e),
            })?
        } else {
            container
        };
        let name = container.name();
        let opened = contain(|| -> Result<Box<dyn FormatReader>, DecodeError> {
            let opts = FormatOptions::default();
            Ok(match container {
                Container::Aiff => Box::new(AiffReader::try_new(mss, opts)?),
                Container::Flac => Box::new(FlacReader::try_new(mss, opts)?),
                Container::Ogg => Box::new(OggReader::try_new(mss, opts)?),
                Container::Mpeg => Box::new(MpaReader::try_new(mss, opts)?),
                Container::Wav => return Err(DecodeError::Unsupported("WAV is not read here")),
            })
        });
        let reader = match opened {
            Ok(Ok(reader)) => reader,
            Ok(Err(e)) => return Err(open_error(path, container, e)),
            Err(panic) => return Err(panicked(path, name, &panic)),
        };
        let no_audio = || WavError::Codec {
            path: path.to_path_buf(),
            found: "no audio stream of a codec it knows".into(),
        };
        let track = reader
            .default_track(TrackType::Audio)
            .or_else(|| reader.first_track(TrackType::Audio))
            .cloned()
            .ok_or_else(no_audio)?;
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(no_audio());
        };
        let format = format_name(container, params.codec);
        let registry = symphonia::default::get_codecs();
        if registry.get_audio_decoder(params.codec).is_none() {
            return Err(WavError::Codec {
                path: path.to_path_buf(),
                found: codec_phrase(container, params.codec),
            });
        }
        // Gapless: the encoder's delay and padding (MP3's LAME tag, Vorbis' granule positions)
        // are trimmed, so a lossy file lines up with its source and has its length. Verify:
        // FLAC's MD5 signature of the audio is checked.
        let opts = AudioDecoderOptions::default().gapless(true).verify(true);
        let decoder = match contain(|| registry.make_audio_decoder(params, &opts)) {
            Ok(Ok(decoder)) => decoder,
            Ok(Err(e)) => return Err(stream_error(path, format, e, None, 0)),
            Err(panic) => return Err(panicked(path, format, &panic)),
        };
        let params = decoder.codec_params();
        let damaged = |problem: &str| WavError::Damaged {
            path: path.to_path_buf(),
            format,
            problem: problem.into(),
        };
        let sample_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| damaged("its header gives no sample rate"))?;
        let channels = params
            .channels
            .as_ref()
            .map(|c| u16::try_from(c.count()).unwrap_or(u16::MAX))
            .ok_or_else(|| damaged("its header gives no channel count"))?;
        check_channels(path, channels)?;
        let wav_format = wav_format(params);
        let spec = WavSpec {
            sample_rate,
            channels,
            format: wav_format,
        };
        // The output is WAV, whose header counts bytes per second in 32 bits: a rate beyond
        // that is refused here, about the input, as the WAV reader refuses it.
        if u32::try_from(spec.bytes_per_frame() as u64 * u64::from(sample_rate)).is_err() {
            return Err(WavError::Unsupported {
                path: path.to_path_buf(),
                found: format!(
                    "a sample rate of {sample_rate} Hz, more than a WAV file holds at \
                     {channels} channel(s) of {wav_format}"
                ),
            });
        }
        let declared_frames = match container {
            // Only a Xing/Info tag with LAME's delay and padding counts frames; without one
            // the reader estimates the length from the bit rate.
            Container::Mpeg => track.num_frames.filter(|_| track.delay.is_some()),
            _ => track.num_frames,
        };
        if declared_frames == Some(0) {
            return Err(WavError::NoAudio {
                path: path.to_path_buf(),
                format,
            });
        }
        Ok(DecodedInput {
            path: path.to_path_buf(),
            format,
            reader,
            decoder,
            track_id: track.id,
            spec,
            integer: !wav_format.is_float(),
            declared_frames,
            frames_hint: track.num_frames,
            frames_decoded: 0,
            contiguous: matches!(container, Container::Flac),
            frames_read: 0,
            pending: Vec::new(),
            pending_pos: 0,
            state: State::Reading,
        })
    }

    /// Rate, channels, and the WAV encoding that holds the decoded samples without loss: the
    /// integer depth of FLAC and AIFF (rounded up to 16, 24 or 32 bits), 32-bit float for float
    /// AIFF and for the lossy codecs.
    pub(super) fn spec(&self) -> WavSpec {
        self.spec
    }

    /// The frame count for progress reports: declared, estimated or unknown.
    pub(super) fn frames_hint(&self) -> Option<u64> {
        self.frames_hint
    }

    /// Frames returned so far.
    pub(super) fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The path the input was opened with.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `buf.len() / channels` frames into `buf` (interleaved); 0 means the end,
    /// reached only after the end-of-stream checks passed. The caller guarantees room for one
    /// frame.
    pub(super) fn read_frames(&mut self, buf: &mut [f32]) -> Result<usize, WavError> {
        let channels = usize::from(self.spec.channels);
        let wanted = buf.len() / channels;
        let mut done = 0;
        while done < wanted {
            if self.pending_pos == self.pending.len() {
                match &self.state {
                    State::Reading => {}
                    State::Ended => break,
                    State::Failed(e) => return Err(repeat(e)),
                }
                if let Err(e) = self.decode_next() {
                    self.state = State::Failed(repeat(&e));
                    return Err(e);
                }
                continue;
            }
            let available = (self.pending.len() - self.pending_pos) / channels;
            let n = available.min(wanted - done);
            let from = &self.pending[self.pending_pos..self.pending_pos + n * channels];
            buf[done * channels..(done + n) * channels].copy_from_slice(from);
            self.pending_pos += n * channels;
            done += n;
        }
        self.frames_read += done as u64;
        Ok(done)
    }

    /// Decodes the next packet of the track into `pending` (possibly 0 frames: a codec's first
    /// packet, a trimmed delay), or runs the end-of-stream checks and sets [`State::Ended`].
    fn decode_next(&mut self) -> Result<(), WavError> {
        let at = self.frames_decoded;
        let packet = match contain(|| self.reader.next_packet()) {
            Ok(Ok(Some(packet))) => packet,
            Ok(Ok(None)) => return self.end_of_stream(),
            Ok(Err(e)) => return Err(self.error(e)),
            Err(panic) => return Err(panicked(&self.path, self.format, &panic)),
        };
        if packet.track_id != self.track_id {
            return Ok(());
        }
        let pts = packet.pts.get();
        if self.contiguous && pts != at as i64 {
            return Err(self.damaged(if pts > at as i64 {
                format!(
                    "frames {at} to {} are unreadable (the decoder lost them)",
                    pts - 1
                )
            } else {
                format!("a frame at {pts} overlaps the audio before it, which ends at {at}")
            }));
        }
        let (decoder, pending, spec) = (&mut self.decoder, &mut self.pending, self.spec);
        let decoded = contain(|| -> Result<Result<usize, String>, DecodeError> {
            let buf = decoder.decode(&packet)?;
            let (rate, channels) = (buf.spec().rate(), buf.spec().channels().count());
            if rate != spec.sample_rate || channels != usize::from(spec.channels) {
                return Ok(Err(format!(
                    "the stream changes from {} channel(s) at {} Hz to {channels} at {rate} Hz \
                     after {at} frames",
                    spec.channels, spec.sample_rate
                )));
            }
            buf.copy_to_vec_interleaved::<f32>(pending);
            Ok(Ok(buf.frames()))
        });
        let frames = match decoded {
            Ok(Ok(Ok(frames))) => frames,
            Ok(Ok(Err(problem))) => return Err(self.damaged(problem)),
            Ok(Err(e)) => return Err(self.error(e)),
            Err(panic) => return Err(panicked(&self.path, self.format, &panic)),
        };
        if self.integer {
            // A 32-bit integer near full scale rounds to 1.0 in f32: keep [−1, 1) as WAV does.
            for v in &mut self.pending {
                *v = v.min(ONE_BELOW);
            }
        }
        self.pending_pos = 0;
        self.frames_decoded += frames as u64;
        Ok(())
    }

    /// The stream ended cleanly: it must have held audio — as many frames as declared, where
    /// the header declares a count — and (for FLAC) audio matching its MD5 signature.
    fn end_of_stream(&mut self) -> Result<(), WavError> {
        let got = self.frames_decoded;
        if got == 0 && self.declared_frames.is_none() {
            return Err(WavError::NoAudio {
                path: self.path.clone(),
                format: self.format,
            });
        }
        match self.declared_frames {
            Some(expected) if got < expected => {
                return Err(WavError::Truncated {
                    path: self.path.clone(),
                    expected_frames: expected,
                    got_frames: got,
                })
            }
            Some(expected) if got > expected => {
                return Err(self.damaged(format!(
                    "it decodes to {got} frames, more than the {expected} its header declares"
                )))
            }
            _ => {}
        }
        if contain(|| self.decoder.finalize().verify_ok) == Ok(Some(false)) {
            return Err(self.damaged(
                "its decoded audio does not match the MD5 signature in its header".into(),
            ));
        }
        self.state = State::Ended;
        Ok(())
    }

    fn damaged(&self, problem: String) -> WavError {
        WavError::Damaged {
            path: self.path.clone(),
            format: self.format,
            problem,
        }
    }

    fn error(&self, e: DecodeError) -> WavError {
        stream_error(
            &self.path,
            self.format,
            e,
            self.declared_frames,
            self.frames_decoded,
        )
    }
}

/// Skips the ID3v2 tags at the start of `mss` and says what follows: FLAC if its signature
/// does, MPEG audio otherwise (the MP3 reader then finds the first frame).
fn skip_id3v2(mss: &mut MediaSourceStream<'_>) -> io::Result<Container> {
    for _ in 0..MAX_ID3_TAGS {
        let mut header = [0u8; ID3_HEADER_LEN];
        let got = peek(mss, &mut header)?;
        match id3v2_len(&header).filter(|_| got == ID3_HEADER_LEN) {
            Some(len) => mss.ignore_bytes(len)?,
            None => break,
        }
    }
    let mut magic = [0u8; 4];
    let got = peek(mss, &mut magic)?;
    Ok(if got == 4 && &magic == b"fLaC" {
        Container::Flac
    } else {
        Container::Mpeg
    })
}

/// Reads up to `buf.len()` bytes and steps back over them (the stream's buffer keeps them).
fn peek(mss: &mut MediaSourceStream<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match mss.read_buf(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    mss.seek_buffered_rev(got);
    Ok(got)
}

/// The WAV encoding that holds a codec's decoded samples exactly (see [`DecodedInput::spec`]).
fn wav_format(params: &AudioCodecParameters) -> SampleFormat {
    match params.codec {
        CODEC_ID_VORBIS
        | CODEC_ID_MP1
        | CODEC_ID_MP2
        | CODEC_ID_MP3
        | CODEC_ID_OPUS
        | CODEC_ID_PCM_F32LE
        | CODEC_ID_PCM_F32LE_PLANAR
        | CODEC_ID_PCM_F32BE
        | CODEC_ID_PCM_F32BE_PLANAR
        | CODEC_ID_PCM_F64LE
        | CODEC_ID_PCM_F64LE_PLANAR
        | CODEC_ID_PCM_F64BE
        | CODEC_ID_PCM_F64BE_PLANAR => SampleFormat::Float32,
        // Companded 8-bit codes expand to 14 (A-law: 13) bits.
        CODEC_ID_PCM_ALAW | CODEC_ID_PCM_MULAW => SampleFormat::Int16,
        _ => match params.bits_per_sample {
            Some(1..=16) => SampleFormat::Int16,
            Some(17..=24) => SampleFormat::Int24,
            Some(25..=32) => SampleFormat::Int32,
            _ => SampleFormat::Float32,
        },
    }
}

/// The container and codec in words, for messages.
fn format_name(container: Container, codec: AudioCodecId) -> &'static str {
    match (container, codec) {
        (Container::Ogg, CODEC_ID_FLAC) => "Ogg FLAC",
        (Container::Ogg, CODEC_ID_OPUS) => "Ogg Opus",
        (container, _) => container.name(),
    }
}

/// What a file holds that has no decoder here, for [`WavError::Codec`].
fn codec_phrase(container: Container, codec: AudioCodecId) -> String {
    let name = match codec {
        CODEC_ID_OPUS => "Opus".to_string(),
        CODEC_ID_SPEEX => "Speex".into(),
        CODEC_ID_MP1 => "MPEG layer I".into(),
        CODEC_ID_MP2 => "MPEG layer II".into(),
        CODEC_ID_AAC => "AAC".into(),
        CODEC_ID_ADPCM_IMA_QT | CODEC_ID_ADPCM_IMA_WAV | CODEC_ID_ADPCM_MS => "ADPCM".into(),
        CODEC_ID_NULL_AUDIO => "an unknown codec's".into(),
        other => format!("codec {other}"),
    };
    let container = match container {
        Container::Aiff => "an AIFF-C",
        Container::Ogg => "an Ogg",
        Container::Mpeg => "an MPEG audio",
        Container::Flac | Container::Wav => "a",
    };
    format!("{name} audio in {container} file")
}

/// A decoder panic, as an error about the file.
fn panicked(path: &Path, format: &'static str, panic: &str) -> WavError {
    WavError::Damaged {
        path: path.to_path_buf(),
        format,
        problem: format!("the decoder failed on its data ({panic})"),
    }
}

/// A `symphonia` error while reading the headers, as an error about the file.
fn open_error(path: &Path, container: Container, e: DecodeError) -> WavError {
    let format = container.name();
    match e {
        DecodeError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => WavError::Damaged {
            path: path.to_path_buf(),
            format,
            problem: match container {
                Container::Mpeg => "it holds no complete MPEG audio frame".into(),
                // The reader looks for the first frame before it returns: an empty stream
                // ends there too.
                Container::Flac => {
                    "it ends before its first audio frame: it holds no audio, or it is \
                     truncated"
                        .into()
                }
                _ => "it is truncated: the file ends before its stream does".into(),
            },
        },
        e => stream_error(path, format, e, None, 0),
    }
}

/// A `symphonia` error as an error about the file. An unexpected end of the data is truncation:
/// with the frame counts when the container declared one, `frames` having been decoded.
fn stream_error(
    path: &Path,
    format: &'static str,
    e: DecodeError,
    declared: Option<u64>,
    frames: u64,
) -> WavError {
    let damaged = |problem: String| WavError::Damaged {
        path: path.to_path_buf(),
        format,
        problem,
    };
    match e {
        DecodeError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => match declared {
            Some(expected) => WavError::Truncated {
                path: path.to_path_buf(),
                expected_frames: expected,
                got_frames: frames,
            },
            None => damaged(format!(
                "it is truncated: the file ends inside its stream, after {frames} frames"
            )),
        },
        DecodeError::IoError(e) => WavError::io(path, "read", e),
        DecodeError::Unsupported(what) => WavError::Codec {
            path: path.to_path_buf(),
            found: format!("{format} using a feature the decoder lacks ({what})"),
        },
        DecodeError::ResetRequired => WavError::Codec {
            path: path.to_path_buf(),
            found: format!("a {format} stream whose format changes mid-file (chained streams)"),
        },
        DecodeError::DecodeError(what) => damaged(what.into()),
        other => damaged(other.to_string()),
    }
}

/// A copy of an error this reader returned, to return again (see [`State::Failed`]).
fn repeat(e: &WavError) -> WavError {
    match e {
        WavError::Io {
            path,
            action,
            source,
        } => WavError::Io {
            path: path.clone(),
            action,
            source: io::Error::new(source.kind(), source.to_string()),
        },
        WavError::Truncated {
            path,
            expected_frames,
            got_frames,
        } => WavError::Truncated {
            path: path.clone(),
            expected_frames: *expected_frames,
            got_frames: *got_frames,
        },
        WavError::NoAudio { path, format } => WavError::NoAudio {
            path: path.clone(),
            format,
        },
        WavError::Codec { path, found } => WavError::Codec {
            path: path.clone(),
            found: found.clone(),
        },
        WavError::Damaged {
            path,
            format,
            problem,
        } => WavError::Damaged {
            path: path.clone(),
            format,
            problem: problem.clone(),
        },
        other => WavError::Damaged {
            path: other.path().to_path_buf(),
            format: "audio",
            problem: other.to_string(),
        },
    }
}
