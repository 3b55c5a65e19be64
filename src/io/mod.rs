//! File input and output: WAV files for offline processing (`whiten process IN.wav OUT.wav`),
//! and the atomic replacement every command uses for the files it writes.
//!
//! The rules enforced here come from the CLI contract (docs/DESIGN.md §12): bad input gets a
//! clear error that names the file and the problem and loses nothing; an output file only ever
//! appears complete (it is written under a temporary name in the same directory, synced, and
//! renamed over the target on success); truncated data is an error, never a silently shorter
//! result.
//!
//! * [`WavInput`] streams frames from a file so that long recordings need not fit in memory;
//!   [`read_wav`] is the whole-file convenience. Input is parsed by this crate, not by
//!   `hound` (the reader's module documentation says why).
//! * [`WavOutput`] writes atomically; [`write_wav`] is the whole-buffer convenience.
//! * [`WavSpec`] and [`SampleFormat`] describe a stream; [`WavError`] is every WAV failure.
//! * [`AtomicFile`] and [`write_atomically`] replace any file atomically and durably: the WAV
//!   writer, the stats file of `whiten process`, and the outputs of `whiten reproduce` and
//!   `whiten demo` all go through it.
//!
//! Supported WAV: 16-, 24- and 32-bit integer PCM and 32-bit IEEE float, 1 to 16 channels,
//! any non-zero sample rate, in plain, `WAVEFORMATEX` or `WAVEFORMATEXTENSIBLE` headers.
//! Everything else is refused with [`WavError::Unsupported`], saying what was found.
//!
//! Everything public is re-exported here, so `io::Name` is the one path to each item.

mod atomic;
mod wav_error;
mod wav_fmt;
mod wav_read;
mod wav_spec;
mod wav_write;

pub use atomic::{write_atomically, AtomicFile, AtomicFileError};
pub use wav_error::WavError;
pub use wav_read::{read_wav, WavInput};
pub use wav_spec::{SampleFormat, WavSpec, MAX_CHANNELS};
pub use wav_write::{write_wav, WavOutput};
