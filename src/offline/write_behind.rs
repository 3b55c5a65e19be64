//! The output file encoded and written on a thread of its own (docs/DESIGN.md §8.4), so that
//! `whiten process` whitens the next chunk while the previous one is converted to the
//! output's sample format and handed to the operating system. On the two-core machines this
//! project is measured on, that work was about as long as the stereo engine's.
//!
//! Nothing about the file's safety changes: the [`WavOutput`] moves to the writer thread and
//! comes back to be committed only when every chunk has been written; if either side fails,
//! or the processing returns early, the output is dropped unfinished, which deletes its
//! temporary file and leaves the target untouched.

use crate::io::{WavError, WavOutput};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Chunks in flight between the two threads: enough to ride out a slow `write` without
/// holding much memory (`whiten process` hands over four processed chunks of
/// [`super::CHUNK_FRAMES`] frames at a time).
const DEPTH: usize = 4;

/// A [`WavOutput`] fed through a bounded queue of interleaved chunks.
///
/// Chunks are recycled: [`buffer`](Self::buffer) hands out one of `DEPTH + 1` vectors
/// allocated up front, [`send`](Self::send) queues it, the writer returns it emptied.
pub(super) struct WriteBehind {
    /// Filled chunks to the writer; `None` once [`finish`](Self::finish) has closed it.
    full: Option<Sender<Vec<f32>>>,
    /// Written chunks back from the writer, to be filled again.
    empty: Receiver<Vec<f32>>,
    /// The writer: the output after its last chunk, or the first error.
    thread: Option<JoinHandle<Result<WavOutput, WavError>>>,
    /// The output's final path, for the message if the writer thread cannot be joined.
    path: PathBuf,
}

impl WriteBehind {
    /// Moves `output` to a new writer thread; chunks hold up to `chunk_samples` samples.
    pub(super) fn new(mut output: WavOutput, chunk_samples: usize) -> Result<Self, WavError> {
        let path = output.path().to_path_buf();
        let (full_tx, full_rx) = bounded::<Vec<f32>>(DEPTH);
        let (empty_tx, empty_rx) = bounded::<Vec<f32>>(DEPTH + 1);
        for _ in 0..=DEPTH {
            // Cannot fail: the channel has room for every buffer and its receiver is alive.
            let _ = empty_tx.send(Vec::with_capacity(chunk_samples));
        }
        let thread = std::thread::Builder::new()
            .name("whiten-writer".into())
            .spawn(move || {
                for chunk in full_rx {
                    output.write_frames(&chunk)?;
                    // The main thread may have stopped listening (it failed); nothing to do.
                    let _ = empty_tx.send(chunk);
                }
                Ok(output)
            })
            .map_err(|e| WavError::Io {
                path: path.clone(),
                action: "start the writer for",
                source: e,
            })?;
        Ok(Self {
            full: Some(full_tx),
            empty: empty_rx,
            thread: Some(thread),
            path,
        })
    }

    /// An empty chunk to fill (its capacity is the `chunk_samples` given to `new`), or the
    /// writer's error if it has stopped.
    pub(super) fn buffer(&mut self) -> Result<Vec<f32>, WavError> {
        match self.empty.recv() {
            Ok(mut chunk) => {
                chunk.clear();
                Ok(chunk)
            }
            Err(_) => Err(self.stopped()),
        }
    }

    /// Queues `chunk` (whole interleaved frames) to be written after the ones before it; the
    /// writer's error if it has stopped.
    pub(super) fn send(&mut self, chunk: Vec<f32>) -> Result<(), WavError> {
        let sent = match &self.full {
            Some(full) => full.send(chunk).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    /// Waits for every queued chunk to be written, then completes and commits the file
    /// ([`WavOutput::finish`]).
    pub(super) fn finish(mut self) -> Result<(), WavError> {
        self.full = None;
        self.join()?.finish()
    }

    /// The writer has stopped early: its error.
    fn stopped(&mut self) -> WavError {
        self.full = None;
        match self.join() {
            Err(e) => e,
            // The writer only ends early with an error; an `Ok` here would mean the queue
            // closed under it, which only `finish` and `drop` do.
            Ok(_) => self.lost("the writer stopped"),
        }
    }

    /// Joins the writer thread (the queue must be closed), once.
    fn join(&mut self) -> Result<WavOutput, WavError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(self.lost("the writer thread panicked")),
            None => Err(self.lost("the writer had already stopped")),
        }
    }

    fn lost(&self, why: &str) -> WavError {
        WavError::Io {
            path: self.path.clone(),
            action: "write",
            source: std::io::Error::other(why.to_string()),
        }
    }
}

impl Drop for WriteBehind {
    /// Not finished (an error, an early return): the writer drains the queue, then the
    /// unfinished output drops on its thread, deleting its temporary file before this returns.
    fn drop(&mut self) {
        self.full = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
