//! Offline processing of audio files into WAV files (`whiten process`): streaming,
//! latency-compensated, with stats written as JSON lines and nothing written to OUT unless
//! everything succeeded — the whole input read, its end-of-stream checks passed included.
//! With `--learn-from KEY` the whiteners learn from a key file read alongside (sidechain
//! learning, docs/DESIGN.md §3.8).

use crate::engine::{
    Engine, EngineCounters, EngineError, EngineParams, RawWhitener, StatsRecord, StatsSender,
};
use crate::io::{
    AtomicFile, AtomicFileError, AudioInput, SampleFormat, WavError, WavOutput, WavSpec,
};
use crate::monitor::{Monitor, MonitorSettings};
use std::io::Write;
use std::path::{Path, PathBuf};
use write_behind::WriteBehind;

mod write_behind;

/// Frames read and processed per chunk (the stats channel is drained after each: at the
/// lowest sample rates a longer chunk would produce more records than it holds).
const CHUNK_FRAMES: usize = 4096;

/// Processed chunks per chunk handed to the writer thread: every hand-over costs two
/// wake-ups, about 8 % of a stereo run when each chunk went on its own.
const CHUNKS_PER_WRITE: usize = 4;

/// What `whiten process` does.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// Engine parameters (ignored with `raw`, except the circuit, interneurons and scale).
    pub params: EngineParams,
    /// `--raw`: §2 per sample, learning rate `raw_eta`, float output.
    pub raw: bool,
    /// Learning rate per sample for `--raw`.
    pub raw_eta: f64,
    /// Without `raw`: a learning rate per input vector that replaces `params.tau_ms` once the
    /// sample rate is known (`τ = 1/(η·rate)`, rate = samples/s or frames/s).
    pub eta_per_vector: Option<f64>,
    /// Where to write stats as JSON lines.
    pub stats: Option<PathBuf>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Reading the input or writing a WAV file.
    #[error(transparent)]
    Wav(#[from] WavError),
    /// Engine parameters.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// Circuit parameters in raw mode.
    #[error("{0}")]
    Circuit(#[from] crate::circuits::CircuitError),
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A readable input the engine cannot run on (its sample rate, say): the message names
    /// the file, as every error about the input does (docs/DESIGN.md §12).
    #[error("cannot process {}: {cause}", .path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why (not a `source`: the message already says it, once).
        cause: EngineError,
    },
    /// Writing the stats file.
    #[error("cannot write the stats file {path}: {source}")]
    Stats {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Numbers worth telling the user after processing.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ProcessSummary {
    /// Frames processed (= frames of IN and OUT).
    pub frames: u64,
    /// Sample rate.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Engine counters (non-finite inputs, resets, changes, stats).
    pub counters: EngineCounters,
    /// Latency compensated, samples.
    pub latency: usize,
    /// With stats: every change the engine detected and each whitener's readaptation time, as
    /// the monitor (the editor's, `whiten live`'s) reports them.
    pub readaptation: Vec<crate::monitor::ChangeReport>,
}

/// The stats file: one JSON line per record, replacing its target atomically on success and
/// leaving it untouched otherwise (like OUT, see [`AtomicFile`]).
struct StatsFile {
    /// The temporary file and its target.
    file: AtomicFile,
}

impl StatsFile {
    fn create(path: &Path) -> Result<Self, ProcessError> {
        let file = AtomicFile::create(path).map_err(stats_error)?;
        Ok(Self { file })
    }

    fn write(&mut self, r: &StatsRecord) -> Result<(), ProcessError> {
        let line = serde_json::to_string(r).expect("stats records serialise");
        writeln!(self.file, "{line}").map_err(|source| ProcessError::Stats {
            path: self.file.path().to_path_buf(),
            source,
        })
    }

    fn finish(self) -> Result<(), ProcessError> {
        self.file.commit().map_err(stats_error)
    }
}

/// A failed step of writing the stats file, reported as "cannot write the stats file …".
fn stats_error(e: AtomicFileError) -> ProcessError {
    ProcessError::Stats {
        path: e.path,
        source: e.source,
    }
}

/// Process `input` (WAV, AIFF, FLAC, Ogg Vorbis or MP3) into the WAV file `output`, in the
/// encoding [`AudioInput::spec`] gives (32-bit float with `raw`).
/// `progress(frames_done, frames_total)` is called per chunk; the total is the header's count
/// where there is one (see [`AudioInput::frames`]), otherwise the frames read so far.
pub fn process_file(
    input: &Path,
    output: &Path,
    opts: &ProcessOptions,
    progress: impl FnMut(u64, u64),
) -> Result<ProcessSummary, ProcessError> {
    process_file_keyed(input, None, output, opts, progress)
}

/// [`process_file`], learning from the key file `key` if given (`whiten process --learn-from
/// KEY`, docs/DESIGN.md §3.8): any format `input` may be, with its channel count and sample
/// rate. The main input is whitened by the key's statistics; where the key is shorter than
/// the input, the rest is learned from silence (nothing: the whiteners keep their state), and
/// a longer key's excess is not read.
pub fn process_file_keyed(
    input: &Path,
    key: Option<&Path>,
    output: &Path,
    opts: &ProcessOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ProcessSummary, ProcessError> {
    let mut reader = AudioInput::open(input)?;
    let spec = reader.spec();
    let declared = reader.frames();
    let total = |done: u64| declared.unwrap_or(done).max(done);
    let n = spec.channels as usize;
    let mut params = opts.params.clone();
    let rate = spec.sample_rate as f64;
    if let (Some(eta), false) = (opts.eta_per_vector, opts.raw) {
        params
            .set_eta(eta, n, rate)
            .map_err(|e| ProcessError::Usage(e.for_flag()))?;
    }
    if !opts.raw {
        // Errors name the option the user typed (the adaptation time's lower end depends on
        // the sample rate, so it is checked here, not when the options were parsed).
        params.validate(n, rate).map_err(|e| match e {
            EngineError::OutOfRange(r) => ProcessError::Usage(r.for_flag()),
            e => ProcessError::Engine(e),
        })?;
    }
    if opts.raw && key.is_some() {
        return Err(ProcessError::Usage(
            "--learn-from is not available with --raw (raw mode learns from its input, sample \
             by sample)"
                .into(),
        ));
    }
    let mut key_reader = match key {
        Some(k) => Some(KeyReader::open(k, input, spec.channels, spec.sample_rate)?),
        None => None,
    };
    if opts.raw && opts.stats.is_some() {
        return Err(ProcessError::Usage(
            "--stats is not available with --raw (raw mode runs a single circuit)".into(),
        ));
    }
    let out_spec = if opts.raw {
        // Raw responses are unscaled and may exceed ±1: keep them exact.
        WavSpec {
            format: SampleFormat::Float32,
            ..spec
        }
    } else {
        spec
    };
    let mut stats_file = match &opts.stats {
        Some(p) => Some(StatsFile::create(p)?),
        None => None,
    };
    // Encoding and writing OUT overlap the processing of the next chunk (docs/DESIGN.md §8.4).
    let mut writer = WriteBehind::new(
        WavOutput::create(output, out_spec)?,
        CHUNKS_PER_WRITE * CHUNK_FRAMES * n,
    )?;
    let mut summary = ProcessSummary {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        ..Default::default()
    };
    opts.params
        .selected
        .check_heard(n)
        .map_err(ProcessError::Usage)?;
    if opts.raw {
        let kind = opts.params.selected;
        if !kind.is_circuit() {
            return Err(ProcessError::Usage(
                "--raw runs a recurrent circuit: use --circuit direct or interneuron (the \
                 paper's), or gain"
                    .into(),
            ));
        }
        let mut raw = RawWhitener::new(
            kind,
            n,
            opts.params.interneurons,
            opts.raw_eta,
            opts.params.init_scale,
        )?;
        let mut done = 0u64;
        loop {
            let mut chunk = writer.buffer()?;
            chunk.resize(CHUNKS_PER_WRITE * CHUNK_FRAMES * n, 0.0);
            let frames = reader.read_frames(&mut chunk)?;
            if frames == 0 {
                break;
            }
            chunk.truncate(frames * n);
            raw.process_interleaved(&mut chunk);
            writer.send(chunk)?;
            done += frames as u64;
            progress(done, total(done));
        }
        summary.frames = done;
        summary.counters.non_finite_inputs = raw.non_finite_inputs();
        summary.counters.state_resets = raw.resets();
        writer.finish()?;
        return Ok(summary);
    }

    let mut engine =
        Engine::new(n, spec.sample_rate as f64, params).map_err(|cause| ProcessError::Input {
            path: input.to_path_buf(),
            cause,
        })?;
    let (tx, rx) = crossbeam_channel::bounded::<StatsRecord>(4096);
    if stats_file.is_some() {
        engine.set_stats_sender(Some(StatsSender::new(tx)));
    }
    let latency = engine.latency_samples();
    summary.latency = latency;
    let mut monitor = Monitor::new(MonitorSettings::whole_recording());
    let mut interleaved = vec![0.0f32; CHUNK_FRAMES * n];
    let mut planar: Vec<Vec<f32>> = vec![vec![0.0; CHUNK_FRAMES]; n];
    // Output frames still to drop at the start (latency) and input frames of zeros to feed at
    // the end, so that OUT lines up with IN sample for sample and has its length. The input is
    // read until it reports its end (which is when the decoded formats check their length).
    let mut to_skip = latency as u64;
    let mut tail = latency as u64;
    let mut read = 0u64;
    let mut written = 0u64;
    let mut read_done = false;
    // The writer's chunk being filled, sent when the next processed chunk would not fit.
    let mut filling: Option<Vec<f32>> = None;
    loop {
        let frames = if !read_done {
            let f = reader.read_frames(&mut interleaved)?;
            if f == 0 {
                read_done = true;
            }
            read += f as u64;
            f
        } else {
            0
        };
        if read_done && written == read {
            break;
        }
        let frames = if frames == 0 {
            // Flush the latency with silence.
            let f = (tail as usize).min(CHUNK_FRAMES);
            if f == 0 {
                break;
            }
            interleaved[..f * n].fill(0.0);
            tail -= f as u64;
            f
        } else {
            frames
        };
        deinterleave(&interleaved[..frames * n], &mut planar);
        {
            let mut bufs: Vec<&mut [f32]> = planar.iter_mut().map(|c| &mut c[..frames]).collect();
            match key_reader.as_mut() {
                Some(k) => {
                    let key = k.next(frames)?;
                    engine.process_keyed(&mut bufs, &key);
                }
                None => engine.process(&mut bufs),
            }
        }
        if let Some(sf) = stats_file.as_mut() {
            for r in rx.try_iter() {
                sf.write(&r)?;
                monitor.push(&r);
            }
        }
        let skip = to_skip.min(frames as u64) as usize;
        to_skip -= skip as u64;
        let keep = ((frames - skip) as u64).min(read - written) as usize;
        if keep > 0 {
            let chunk = match &mut filling {
                Some(chunk) => chunk,
                None => filling.insert(writer.buffer()?),
            };
            let at = chunk.len();
            chunk.resize(at + keep * n, 0.0);
            interleave(&planar, skip, &mut chunk[at..]);
            if chunk.len() + CHUNK_FRAMES * n > chunk.capacity() {
                writer.send(std::mem::take(chunk))?;
                filling = None;
            }
        }
        written += keep as u64;
        progress(written, total(read));
    }
    if let Some(chunk) = filling {
        writer.send(chunk)?;
    }
    summary.frames = written;
    summary.counters = engine.counters();
    if let Some(sf) = stats_file {
        monitor.finish();
        summary.readaptation = monitor.changes().cloned().collect();
        sf.finish()?;
    }
    writer.finish()?;
    Ok(summary)
}

/// Splits interleaved frames into the first `frames` samples of each channel's vector
/// (`planar.len()` channels, each at least that long).
fn deinterleave(interleaved: &[f32], planar: &mut [Vec<f32>]) {
    let n = planar.len();
    let frames = interleaved.len() / n;
    if let [left, right] = planar {
        // Stereo, the common file, in one pass the compiler can vectorise.
        let pairs = interleaved.chunks_exact(2);
        for ((l, r), pair) in left[..frames]
            .iter_mut()
            .zip(&mut right[..frames])
            .zip(pairs)
        {
            *l = pair[0];
            *r = pair[1];
        }
        return;
    }
    for (c, ch) in planar.iter_mut().enumerate() {
        for (v, &x) in ch[..frames]
            .iter_mut()
            .zip(interleaved[c..].iter().step_by(n))
        {
            *v = x;
        }
    }
}

/// Interleaves each channel's samples from `skip` on into `out`, whose length is a whole
/// number of frames.
fn interleave(planar: &[Vec<f32>], skip: usize, out: &mut [f32]) {
    let n = planar.len();
    let frames = out.len() / n;
    if let [left, right] = planar {
        let (left, right) = (&left[skip..skip + frames], &right[skip..skip + frames]);
        for ((pair, &l), &r) in out.chunks_exact_mut(2).zip(left).zip(right) {
            pair[0] = l;
            pair[1] = r;
        }
        return;
    }
    for (c, ch) in planar.iter().enumerate() {
        for (o, &x) in out[c..].iter_mut().step_by(n).zip(&ch[skip..skip + frames]) {
            *o = x;
        }
    }
}

/// The key of `--learn-from`, read in step with the input and handed to the engine planar.
struct KeyReader {
    /// The key file.
    reader: AudioInput,
    /// Interleaved frames as read.
    interleaved: Vec<f32>,
    /// The current chunk, one vector per channel; zeros past the key's end.
    planar: Vec<Vec<f32>>,
    /// The key has ended: everything after is silence.
    done: bool,
}

impl KeyReader {
    /// Open `key` and check it against the input's channel count and sample rate; errors name
    /// both files.
    fn open(key: &Path, input: &Path, channels: u16, rate: u32) -> Result<Self, ProcessError> {
        let reader = AudioInput::open(key)?;
        let ks = reader.spec();
        let mismatch = |what: String| {
            ProcessError::Usage(format!(
                "--learn-from {}: {what}; the key must match the input {}",
                key.display(),
                input.display()
            ))
        };
        if ks.channels != channels {
            return Err(mismatch(format!(
                "it has {} channel(s) and the input {channels}",
                ks.channels
            )));
        }
        if ks.sample_rate != rate {
            return Err(mismatch(format!(
                "its sample rate is {} Hz and the input's {rate} Hz",
                ks.sample_rate
            )));
        }
        let n = channels as usize;
        Ok(Self {
            reader,
            interleaved: vec![0.0; CHUNK_FRAMES * n],
            planar: vec![vec![0.0; CHUNK_FRAMES]; n],
            done: false,
        })
    }

    /// The key's next `frames` frames (at most [`CHUNK_FRAMES`]), planar; silence after its
    /// end.
    fn next(&mut self, frames: usize) -> Result<Vec<&[f32]>, ProcessError> {
        let n = self.planar.len();
        // Until the chunk is full or the key reports its end (after its end-of-stream checks).
        let mut got = 0;
        while !self.done && got < frames {
            let r = self
                .reader
                .read_frames(&mut self.interleaved[got * n..frames * n])?;
            self.done = r == 0;
            got += r;
        }
        deinterleave(&self.interleaved[..got * n], &mut self.planar);
        for ch in &mut self.planar {
            ch[got..frames].fill(0.0);
        }
        Ok(self.planar.iter().map(|c| &c[..frames]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{deinterleave, interleave};

    /// Both directions against indexing by the definition (sample `t` of channel `c` is
    /// interleaved sample `t·n + c`), for the stereo fast path and the general one.
    #[test]
    fn interleaving_follows_the_frame_layout() {
        for n in 1..=5 {
            let frames = 37;
            let interleaved: Vec<f32> = (0..frames * n).map(|i| i as f32 * 0.5 - 3.0).collect();
            // Longer than needed, as the chunk buffers are.
            let mut planar = vec![vec![f32::NAN; frames + 8]; n];
            deinterleave(&interleaved, &mut planar);
            for (c, ch) in planar.iter().enumerate() {
                for t in 0..frames {
                    assert_eq!(ch[t], interleaved[t * n + c], "n = {n}, c = {c}, t = {t}");
                }
                assert!(
                    ch[frames..].iter().all(|x| x.is_nan()),
                    "n = {n}: wrote past"
                );
            }
            for skip in [0, 5] {
                let keep = frames - skip;
                let mut out = vec![f32::NAN; keep * n];
                interleave(&planar, skip, &mut out);
                for t in 0..keep {
                    for c in 0..n {
                        assert_eq!(out[t * n + c], planar[c][skip + t], "n = {n}, skip {skip}");
                    }
                }
            }
        }
    }
}
