//! File input and output: audio files in and WAV files out for offline processing
//! (`whiten process IN OUT.wav`), and the atomic replacement every command uses for the files it
//! writes.
//!
//! The rules enforced here come from the CLI contract (docs/DESIGN.md §12): bad input gets a
//! clear error that names the file and the problem and loses nothing; an output file only ever
//! appears complete (it is written under a temporary name in the same directory, synced, and
//! renamed over the target on success); truncated data is an error, never a silently shorter
//! result.
//!
//! * [`AudioInput`] streams frames from a WAV, AIFF, FLAC, Ogg Vorbis or MP3 file, so that long
//!   recordings need not fit in memory; [`read_audio`] is the whole-file convenience. The first
//!   bytes choose the reader: WAV is parsed by this crate ([`WavInput`], [`read_wav`]; not by
//!   `hound`, the reader's module documentation says why), the other formats are decoded by
//!   `symphonia` (`decoded.rs`), with its panics contained (`contain.rs`).
//! * [`WavOutput`] writes atomically; [`write_wav`] is the whole-buffer convenience.
//! * [`WavSpec`] and [`SampleFormat`] describe a stream; [`WavError`] is every failure of audio
//!   input and WAV output.
//! * [`AtomicFile`] and [`write_atomically`] replace any file atomically and durably: the WAV
//!   writer, the stats file of `whiten process`, and the outputs of `whiten reproduce` and
//!   `whiten demo` all go through it.
//!
//! Supported WAV: 16-, 24- and 32-bit integer PCM and 32-bit IEEE float, 1 to 16 channels,
//! any non-zero sample rate, in plain, `WAVEFORMATEX` or `WAVEFORMATEXTENSIBLE` headers.
//! Everything else is refused with [`WavError::Unsupported`], saying what was found. The other
//! formats: AIFF and AIFF-C (integer or float), FLAC (native, or in Ogg), Ogg
//! Vorbis, MP3 (MPEG layer III), each with 1 to 16 channels.
//!
//! Everything public is re-exported here, so `io::Name` is the one path to each item.

mod atomic;
mod audio_read;
mod contain;
mod decoded;
mod sniff;
mod wav_error;
mod wav_fmt;
mod wav_read;
mod wav_spec;
mod wav_write;

pub use atomic::{write_atomically, AtomicFile, AtomicFileError};
pub use audio_read::{read_audio, AudioInput};
pub use wav_error::WavError;
pub use wav_read::{read_wav, WavInput};
pub use wav_spec::{SampleFormat, WavSpec, MAX_CHANNELS};
pub use wav_write::{write_wav, WavOutput};
