//! Which reader a file goes to, from its first bytes: WAV to this crate's own validating reader,
//! AIFF, FLAC, Ogg and MPEG audio to `symphonia`. The file's name plays no part (a FLAC file
//! called `take.wav` is read as FLAC), and a file whose first bytes are no signature of these
//! formats is refused here rather than handed to a decoder that would scan it for something
//! that looks like audio.

use super::wav_fmt::fourcc;

/// Bytes read from the start of a file to recognise it: enough for every signature below
/// (`FORM····AIFF` is the longest).
pub(super) const HEAD_LEN: usize = 12;

/// Length of an ID3v2 tag header, which precedes the tag's body.
pub(super) const ID3_HEADER_LEN: usize = 10;

/// The containers `whiten` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Container {
    /// RIFF WAVE (and the RIFF relatives the WAV reader names when it refuses them: RIFX, RF64).
    Wav,
    /// AIFF or AIFF-C (`FORM` … `AIFF`/`AIFC`).
    Aiff,
    /// Native FLAC (`fLaC`).
    Flac,
    /// Ogg (`OggS`); the codec inside is known only once its first page is read.
    Ogg,
    /// MPEG audio frames (layer III is decoded), possibly after an ID3v2 tag.
    Mpeg,
}

impl Container {
    /// The name used in messages; for Ogg the codec `whiten` decodes in it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Aiff => "AIFF",
            Container::Flac => "FLAC",
            Container::Ogg => "Ogg Vorbis",
            Container::Mpeg => "MP3",
        }
    }
}

/// What the first bytes say: a container, or why the file is none (a phrase for
/// [`WavError::NotAudio`](super::WavError::NotAudio)).
pub(super) fn sniff(head: &[u8]) -> Result<Container, String> {
    let at = |range: std::ops::Range<usize>| head.get(range).unwrap_or(&[]);
    match at(0..4) {
        b"RIFF" | b"RIFX" | b"RF64" | b"BW64" => return Ok(Container::Wav),
        b"fLaC" => return Ok(Container::Flac),
        b"OggS" => return Ok(Container::Ogg),
        b"FORM" => {
            return match at(8..12) {
                b"AIFF" | b"AIFC" => Ok(Container::Aiff),
                other => Err(format!(
                    "it is an IFF file of type '{}', not AIFF",
                    fourcc(other)
                )),
            }
        }
        _ => {}
    }
    if at(0..3) == b"ID3" || is_mpeg_audio_header(at(0..4)) {
        return Ok(Container::Mpeg);
    }
    Err(match (at(0..4), at(4..8)) {
        (_, b"ftyp") => "it is an MP4/M4A file".into(),
        ([0x1A, 0x45, 0xDF, 0xA3], _) => "it is a Matroska/WebM file".into(),
        (b"caff", _) => "it is a Core Audio (CAF) file".into(),
        (b"wvpk", _) => "it is a WavPack file".into(),
        (b"MAC ", _) => "it is a Monkey's Audio file".into(),
        (b".snd", _) => "it is a Sun/NeXT .au file".into(),
        (b"MThd", _) => "it is a MIDI file".into(),
        _ if head.len() < 4 => format!("it is only {} bytes long", head.len()),
        _ => "no RIFF header, nor any other of these formats' signatures".into(),
    })
}

/// Whether `b` (4 bytes) is a plausible MPEG audio frame header: the 11-bit frame sync, then a
/// version, layer, bit rate and sample rate that are not reserved values. Random bytes pass
/// with a probability of about 1 in 5000 (`2⁻¹¹ · ¾ · ¾ · ¹⁵⁄₁₆ · ¾`); such a file is then
/// refused by the MP3 reader, which needs consecutive consistent frames.
fn is_mpeg_audio_header(b: &[u8]) -> bool {
    let [b0, b1, b2, _] = *b else {
        return false;
    };
    b0 == 0xFF
        && b1 & 0xE0 == 0xE0
        && (b1 >> 3) & 0b11 != 0b01
        && (b1 >> 1) & 0b11 != 0b00
        && b2 >> 4 != 0xF
        && (b2 >> 2) & 0b11 != 0b11
}

/// The total length of an ID3v2 tag (header, body and optional footer) from its 10-byte header,
/// or `None` if the header is not one (ID3v2's sizes are "synchsafe": 7 bits per byte).
pub(super) fn id3v2_len(header: &[u8; ID3_HEADER_LEN]) -> Option<u64> {
    if &header[..3] != b"ID3" || header[6..10].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let body = header[6..10]
        .iter()
        .fold(0u64, |len, &b| (len << 7) | u64::from(b));
    let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
    Some(ID3_HEADER_LEN as u64 + body + footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_pick_the_reader() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), Ok(Container::Wav));
        assert_eq!(sniff(b"RIFX"), Ok(Container::Wav));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFC"), Ok(Container::Aiff));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Ok(Container::Flac));
        assert_eq!(sniff(b"OggS\0\x02"), Ok(Container::Ogg));
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\x10"), Ok(Container::Mpeg));
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz.
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Ok(Container::Mpeg));
        // Reserved sample rate: not a frame header.
        assert!(sniff(&[0xFF, 0xFB, 0x9C, 0x64]).is_err());
        assert!(sniff(b"FORM\0\0\0\08SVX").unwrap_err().contains("8SVX"));
        assert!(sniff(b"\0\0\0\x20ftypM4A ").unwrap_err().contains("MP4"));
        assert!(sniff(b"Dear diary, ")
            .unwrap_err()
            .contains("no RIFF header"));
        assert!(sniff(b"ab").unwrap_err().contains("2 bytes"));
    }

    #[test]
    fn id3_length_is_synchsafe() {
        let mut h = *b"ID3\x04\0\0\0\0\x02\x01";
        assert_eq!(id3v2_len(&h), Some(10 + 257));
        h[5] = 0x10;
        assert_eq!(id3v2_len(&h), Some(10 + 257 + 10));
        h[8] = 0x80;
        assert_eq!(id3v2_len(&h), None);
    }
}
