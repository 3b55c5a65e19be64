//! The one error type of audio input (WAV, and AIFF, FLAC, Ogg Vorbis and MP3 through
//! `symphonia`) and WAV output: every variant names the file and says the problem in words meant
//! for the person running `whiten`.

use super::AtomicFileError;
use std::io;
use std::path::{Path, PathBuf};

/// What the tool supports, appended to every [`WavError::Unsupported`] message so the user
/// knows what to convert to.
const SUPPORTED: &str =
    "supported: 16-, 24- or 32-bit integer PCM or 32-bit float, with 1 to 16 channels";

/// What `whiten` reads, appended to [`WavError::Codec`] messages.
const READABLE: &str = "it reads WAV (PCM or float), AIFF, FLAC, Ogg Vorbis and MP3";

/// Everything that can go wrong reading an audio file or writing a WAV file.
///
/// The first variants are the WAV reader's and writer's; [`NotAudio`](Self::NotAudio),
/// [`Codec`](Self::Codec), [`Damaged`](Self::Damaged) and [`NoAudio`](Self::NoAudio) come from
/// the other formats, which also use [`Io`](Self::Io), [`EmptyFile`](Self::EmptyFile),
/// [`Unsupported`](Self::Unsupported) (a channel count) and [`Truncated`](Self::Truncated).
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

    /// [`WavOutput::write_frames`](super::WavOutput::write_frames) was given a buffer that
    /// does not hold whole frames; writing it would misalign every following frame's channels.
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

    /// The file is none of the formats `whiten` reads: its first bytes are not the signature of
    /// WAV, AIFF, FLAC, Ogg or MPEG audio. (A file that starts like WAV but is not one is
    /// [`NotWav`](Self::NotWav), from the WAV reader.)
    #[error("{} is not a WAV file, nor AIFF, FLAC, Ogg Vorbis or MP3 ({reason})", .path.display())]
    NotAudio {
        /// The file that was read.
        path: PathBuf,
        /// What was found instead, e.g. "it is an MP4/M4A file".
        reason: String,
    },

    /// A container `whiten` reads holding audio it does not decode: Opus in Ogg, MPEG layer II,
    /// an AIFF-C compression, a FLAC feature the decoder lacks.
    #[error("{} holds {found}, which whiten does not decode; {READABLE}", .path.display())]
    Codec {
        /// The file that was read.
        path: PathBuf,
        /// What was found, e.g. "Opus audio in an Ogg container".
        found: String,
    },

    /// An AIFF, FLAC, Ogg Vorbis or MP3 file whose structure or coded audio is broken (the
    /// decoder's own word for it is in `problem`), or that ends where its stream has more to
    /// come. Nothing is guessed around damage: a decoder would otherwise skip it silently and
    /// the output would be shorter or glitched without anyone knowing.
    #[error("{} is a damaged {format} file: {problem}", .path.display())]
    Damaged {
        /// The file that was read.
        path: PathBuf,
        /// The container and codec, e.g. "FLAC", "Ogg Vorbis".
        format: &'static str,
        /// What is wrong, as precisely as the decoder says it.
        problem: String,
    },

    /// A well-formed AIFF, FLAC, Ogg Vorbis or MP3 file without a single frame of audio (the
    /// counterpart of [`Empty`](Self::Empty) for WAV, whose message speaks of a data chunk).
    #[error("{} contains no audio: its {format} stream holds 0 frames", .path.display())]
    NoAudio {
        /// The file that was read.
        path: PathBuf,
        /// The container and codec, e.g. "FLAC".
        format: &'static str,
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
            | WavError::TooLong { path, .. }
            | WavError::NotAudio { path, .. }
            | WavError::Codec { path, .. }
            | WavError::Damaged { path, .. }
            | WavError::NoAudio { path, .. } => path,
        }
    }

    pub(super) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        WavError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(super) fn malformed(path: &Path, problem: impl Into<String>) -> Self {
        WavError::Malformed {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(super) fn unsupported(path: &Path, found: impl Into<String>) -> Self {
        WavError::Unsupported {
            path: path.to_path_buf(),
            found: found.into(),
        }
    }

    /// `hound` wraps I/O errors; anything else it reports (which the guards in
    /// [`WavOutput`](super::WavOutput) should make impossible) is still surfaced as an I/O
    /// failure with its message.
    pub(super) fn from_hound(path: &Path, action: &'static str, err: hound::Error) -> Self {
        let source = match err {
            hound::Error::IoError(e) => e,
            other => io::Error::other(other.to_string()),
        };
        WavError::io(path, action, source)
    }
}

/// A failed atomic write of an output file keeps its step ("sync to disk", "replace", …) in
/// the message.
impl From<AtomicFileError> for WavError {
    fn from(e: AtomicFileError) -> Self {
        WavError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    }
}
