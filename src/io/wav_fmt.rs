//! The `fmt ` chunk of a WAV file: which encoding, channel count and rate a header declares,
//! and whether this tool handles it. Plain, `WAVEFORMATEX` and `WAVEFORMATEXTENSIBLE` headers
//! are understood; the checks name the real obstacle so that the user knows what to convert.

use super::wav_spec::check_channels;
use super::{SampleFormat, WavError, WavSpec};
use std::path::Path;

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

/// A four-character code for messages: printable ASCII as-is, anything else escaped, so that
/// garbage bytes cannot garble the terminal.
pub(super) fn fourcc(id: &[u8]) -> String {
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
pub(super) fn parse_fmt(path: &Path, fmt: &[u8]) -> Result<WavSpec, WavError> {
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
    // The header's bytes-per-second field is 32 bits: a rate that overflows it cannot be what
    // the file was written with (and no output could carry it; the writer refuses it too).
    let bytes_per_second = expected_align as u64 * u64::from(sample_rate);
    if u32::try_from(bytes_per_second).is_err() {
        return Err(WavError::malformed(
            path,
            format!(
                "a sample rate of {sample_rate} Hz at {channels} channel(s) of {format} is                  {bytes_per_second} bytes per second, more than a WAV header can hold"
            ),
        ));
    }
    Ok(spec)
}
