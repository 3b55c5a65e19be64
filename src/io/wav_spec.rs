//! What a WAV stream is: its sample rate, channel count and sample encoding, shared by the
//! reader and the writer.

use super::WavError;
use std::fmt;
use std::path::Path;

/// The most channels accepted. A whitening circuit's cost grows with the square (or cube) of
/// the channel count; 16 covers every realistic multichannel recording.
pub const MAX_CHANNELS: u16 = 16;

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
}

/// Refuses a channel count outside 1 to [`MAX_CHANNELS`], for input and output alike.
pub(super) fn check_channels(path: &Path, channels: u16) -> Result<(), WavError> {
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(WavError::unsupported(
            path,
            format!("{channels} channel{}", if channels == 1 { "" } else { "s" }),
        ));
    }
    Ok(())
}
