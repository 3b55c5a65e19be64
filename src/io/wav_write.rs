//! Writing WAV files: `hound`'s encoder on top of an [`AtomicFile`], guarded against its
//! panics (a sample rate of 0 divides by zero) and its 32-bit length counters.

use super::{AtomicFile, SampleFormat, WavError, WavSpec};
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// An atomic WAV writer.
///
/// Frames go to an [`AtomicFile`] beside the target (`.{name}.tmp-{pid}-{n}`);
/// [`finish`](Self::finish) completes the header and commits it: synced to disk and renamed
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
    /// Format of the output.
    spec: WavSpec,
    /// The encoder, writing through a second handle to the temporary file because `hound`
    /// never hands its writer back. Declared before `file` on purpose: fields drop in order, so
    /// an unfinished output closes this handle (hound's own drop rewrites its header, harmlessly,
    /// into the file about to go) before `file` deletes the temporary file — some platforms
    /// cannot delete an open file.
    writer: hound::WavWriter<BufWriter<File>>,
    /// The temporary file and its target: committed by `finish`, discarded on drop.
    file: AtomicFile,
    /// Frames accepted so far.
    frames_written: u64,
    /// The most frames whose byte count still fits hound's 32-bit RIFF size fields.
    max_frames: u64,
}

impl fmt::Debug for WavOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WavOutput")
            .field("path", &self.file.path())
            .field("temp_path", &self.file.temp_path())
            .field("spec", &self.spec)
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

impl WavOutput {
    /// Starts writing `path` in format `spec`, via a new temporary file beside it.
    ///
    /// Fails (creating nothing) if the spec cannot be written (0 or more than
    /// [`MAX_CHANNELS`](super::MAX_CHANNELS) channels, a 0 Hz rate) or the temporary file
    /// cannot be created, e.g. because the directory does not exist or is not writable. An
    /// existing file at `path` is not touched until [`finish`](Self::finish).
    pub fn create(path: impl AsRef<Path>, spec: WavSpec) -> Result<WavOutput, WavError> {
        let path = path.as_ref();
        check_writable(&spec, path)?;
        // From here on the temporary file exists; if anything below fails, dropping `file`
        // removes it.
        let file = AtomicFile::create(path)?;
        let handle = file.try_clone_file()?;
        let block = spec.bytes_per_frame() as u64;
        // hound stores data bytes and "data + header − 8" in u32; its header is at most
        // 68 bytes (WAVEFORMATEXTENSIBLE), so 60 is subtracted.
        let max_frames = (u64::from(u32::MAX) - 60) / block;
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
        let writer = hound::WavWriter::new(BufWriter::with_capacity(1 << 16, handle), hound_spec)
            .map_err(|e| WavError::from_hound(path, "write", e))?;
        Ok(WavOutput {
            spec,
            writer,
            file,
            frames_written: 0,
            max_frames,
        })
    }

    /// The format being written.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// The final path (not the temporary one), for messages.
    pub fn path(&self) -> &Path {
        self.file.path()
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
                path: self.path().to_path_buf(),
                samples: interleaved.len(),
                channels,
            });
        }
        let frames = (interleaved.len() / usize::from(channels)) as u64;
        if self.frames_written + frames > self.max_frames {
            return Err(WavError::TooLong {
                path: self.path().to_path_buf(),
                max_frames: self.max_frames,
            });
        }
        let writer = &mut self.writer;
        let path = self.file.path();
        let err = |e| WavError::from_hound(path, "write", e);
        match self.spec.format {
            SampleFormat::Int16 => {
                // hound's 16-bit writer fills its buffer without a call per byte: the common
                // output format is 4× faster to encode this way.
                let len = u32::try_from(interleaved.len()).map_err(|_| WavError::TooLong {
                    path: path.to_path_buf(),
                    max_frames: self.max_frames,
                })?;
                let mut w = writer.get_i16_writer(len);
                // Converted a chunk at a time in a loop of its own, which the compiler can
                // vectorise, then handed to hound sample by sample.
                let mut chunk = [0i16; 256];
                for xs in interleaved.chunks(chunk.len()) {
                    let out = &mut chunk[..xs.len()];
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = float_to_i16(x);
                    }
                    for &s in out.iter() {
                        w.write_sample(s);
                    }
                }
                w.flush().map_err(err)?;
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

    /// Completes the file: finalises the header, flushes it, then commits the
    /// [`AtomicFile`] (synced to disk, renamed over the target). Only after this returns `Ok`
    /// does the target hold the new audio; on error the temporary file is removed and the
    /// target is as it was.
    pub fn finish(self) -> Result<(), WavError> {
        let WavOutput { writer, file, .. } = self;
        // `finalize` flushes hound's buffer and closes its handle, so everything is in the
        // temporary file before the commit syncs it.
        writer
            .finalize()
            .map_err(|e| WavError::from_hound(file.path(), "write", e))?;
        file.commit()?;
        Ok(())
    }
}

/// Checks the parts of a spec the enum cannot rule out, so that an impossible output is
/// refused before a file is created (and before `hound` can panic on a zero rate).
fn check_writable(spec: &WavSpec, path: &Path) -> Result<(), WavError> {
    super::wav_spec::check_channels(path, spec.channels)?;
    if spec.sample_rate == 0 {
        return Err(WavError::unsupported(path, "a sample rate of 0 Hz"));
    }
    // `hound` computes bytes per second in a u32; a rate that overflows it is not a real
    // audio rate, and a WAV header cannot describe it.
    if u32::try_from(spec.bytes_per_frame() as u64 * u64::from(spec.sample_rate)).is_err() {
        return Err(WavError::unsupported(
            path,
            format!(
                "a sample rate of {} Hz, too high for a WAV header at {} channels of {}",
                spec.sample_rate, spec.channels, spec.format
            ),
        ));
    }
    Ok(())
}

/// Converts a sample to a `bits`-bit integer: clamp to [−1, 1], scale by `2^(bits−1)`, round
/// to nearest (ties away from zero), saturate at the top; NaN becomes 0. Computed in `f64`,
/// which holds every 32-bit integer exactly.
fn float_to_int(x: f32, bits: u32) -> i32 {
    if x.is_nan() {
        return 0;
    }
    let scale = (1u64 << (bits - 1)) as f64;
    let v = f64::from(x.clamp(-1.0, 1.0)) * scale;
    // Round half away from zero without a libm call: |v| has at most 24 significant bits
    // (an f32 times a power of two) and is below 2³¹, so |v| + 0.5 is exact and truncating it
    // is rounding |v|.
    let r = (v.abs() + 0.5) as i64;
    let r = if v < 0.0 { -r } else { r };
    r.min((1i64 << (bits - 1)) - 1) as i32
}

/// [`float_to_int`] at 16 bits in `f32` and `i32` lanes the compiler can vectorise: NaN is
/// taken to 0 first, `v` is exact (a power-of-two scale, `|v| ≤ 2¹⁵`), the conversion truncates
/// toward zero, and `v − trunc(v)` is exact (Sterbenz), so comparing it with ±½ rounds half
/// away from zero.
#[inline(always)]
fn float_to_i16(x: f32) -> i16 {
    let x = if x.is_nan() { 0.0 } else { x };
    let v = x.clamp(-1.0, 1.0) * 32_768.0;
    // SAFETY: `v` is finite and within ±2¹⁵, which `i32` holds: the conversion is defined
    // (and, unlike `as`, needs no saturation code, so the loop stays in vector lanes).
    let t = unsafe { v.to_int_unchecked::<i32>() };
    let frac = v - t as f32;
    let r = t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5);
    r.min(i32::from(i16::MAX)) as i16
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

    /// The fast rounding equals `f64::round` (half away from zero) on every f32 input the
    /// writer can meet: random values in and beyond [−1, 1], the halfway points of each depth,
    /// and the extremes.
    #[test]
    fn float_to_int_equals_rounding_by_libm() {
        // (And the 16-bit writer's vectorisable conversion.)
        use rand::{Rng, SeedableRng};
        let reference = |x: f32, bits: u32| -> i32 {
            if x.is_nan() {
                return 0;
            }
            let scale = (1u64 << (bits - 1)) as f64;
            let v = (f64::from(x.clamp(-1.0, 1.0)) * scale).round();
            v.min(scale - 1.0) as i32
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for bits in [16, 24, 32] {
            let scale = (1u64 << (bits - 1)) as f32;
            let mut xs: Vec<f32> = (0..200_000).map(|_| rng.random_range(-1.2..1.2)).collect();
            xs.extend((-1000..1000).map(|k| (k as f32 + 0.5) / scale));
            xs.extend([
                0.0,
                -0.0,
                1.0,
                -1.0,
                f32::MIN_POSITIVE,
                f32::INFINITY,
                f32::NAN,
            ]);
            for x in xs {
                assert_eq!(
                    float_to_int(x, bits),
                    reference(x, bits),
                    "{x} at {bits} bits"
                );
                if bits == 16 {
                    assert_eq!(i32::from(float_to_i16(x)), reference(x, 16), "{x}");
                }
            }
        }
    }
}
