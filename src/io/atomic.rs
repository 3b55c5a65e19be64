//! Atomic, durable replacement of a file ([`AtomicFile`], [`write_atomically`]), the one way
//! this crate writes an output that must never be seen partial or clobbered.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writers in one process (the pid alone
/// would not).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many taken temporary names to skip before giving up. Only stale files left by crashed
/// runs that had the same pid can be in the way, so a handful of tries is plenty; the bound
/// keeps a pathological directory from looping forever.
const CREATE_ATTEMPTS: u32 = 100;

/// A failed step of an atomic write, naming the file the user asked for.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", .path.display())]
pub struct AtomicFileError {
    /// The target, not the temporary name: the user never chose the latter, so a message
    /// naming it would only confuse.
    pub path: PathBuf,
    /// The step that failed, phrased to follow "cannot": `"create a temporary file next to"`,
    /// `"write"`, `"sync to disk"` or `"replace"`, so callers can keep it in their own errors.
    pub action: &'static str,
    /// The operating system's error, kept so that callers can inspect its kind.
    #[source]
    pub source: io::Error,
}

/// A file being written under a temporary name, to replace its target on
/// [`commit`](Self::commit): the target holds either its old contents or the complete new
/// ones, never a partial mix — not after an error, a panic, a crash or a power cut.
///
/// The recipe: write under a temporary name in the target's directory (the same filesystem,
/// so the rename cannot turn into a copy), `fsync` the file so that its data is on disk before
/// its new name is, `rename` it over the target (atomic on POSIX: a reader opens the old file
/// or the new one), then `fsync` the directory so that the rename itself survives a crash.
/// Until `commit` succeeds the target is not touched; dropping an uncommitted `AtomicFile` —
/// an error propagated with `?`, a panic, an early return — removes the temporary file.
///
/// Writes go through a buffer (it implements [`Write`]). Temporary names are
/// `.{name}.tmp-{pid}-{n}`: hidden, and distinct between processes (the pid) and between
/// writers in one process (a counter). They are opened with `create_new`, which never reuses
/// an existing file, so a stale temporary left by a crashed run with the same pid is skipped
/// rather than overwritten.
///
/// If the target is a symbolic link, the link itself is replaced. The new file gets default
/// permissions, not those of the file it replaces.
pub struct AtomicFile {
    /// The file the user named: what `commit` replaces and what errors mention.
    target: PathBuf,
    /// Where the bytes go until `commit`; removed on drop unless the rename succeeded.
    temp: PathBuf,
    /// The buffered temporary file. `None` only inside `commit` and `drop`, which take it.
    out: Option<BufWriter<File>>,
    /// Set once the temporary file has been renamed over the target, so that `drop` does not
    /// delete it (or a file that has meanwhile taken its name).
    committed: bool,
}

impl std::fmt::Debug for AtomicFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicFile")
            .field("target", &self.target)
            .field("temp", &self.temp)
            .finish_non_exhaustive()
    }
}

impl AtomicFile {
    /// Creates a new, empty temporary file beside `path`. Nothing happens to `path` itself
    /// until [`commit`](Self::commit).
    ///
    /// Fails if `path` does not name a file, or the temporary file cannot be created, e.g.
    /// because the directory does not exist or is not writable.
    pub fn create(path: impl AsRef<Path>) -> Result<AtomicFile, AtomicFileError> {
        let target = path.as_ref();
        let error = |action, source| AtomicFileError {
            path: target.to_path_buf(),
            action,
            source,
        };
        let file_name = target.file_name().ok_or_else(|| {
            let not_a_file =
                io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file");
            error("create", not_a_file)
        })?;
        let (file, temp) = create_temp(directory_of(target), file_name)
            .map_err(|e| error("create a temporary file next to", e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            out: Some(BufWriter::new(file)),
            committed: false,
        })
    }

    /// The target: the file that [`commit`](Self::commit) replaces.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// The temporary file's path, for diagnostics.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// A second, unbuffered handle to the temporary file, for an encoder that takes ownership
    /// of its writer and never hands it back (`hound`'s `WavWriter`): the encoder writes
    /// through the clone, and this `AtomicFile` still commits or discards the result. Flush
    /// the encoder before committing, and write through only one of the two.
    pub fn try_clone_file(&self) -> Result<File, AtomicFileError> {
        let out = self.out.as_ref().expect("open until commit or drop");
        out.get_ref()
            .try_clone()
            .map_err(|e| self.error("create a temporary file next to", e))
    }

    /// Makes the new contents the target's: flushes the buffer, syncs the file to disk,
    /// renames it over the target and syncs the directory. Only after this returns `Ok` does
    /// the target hold the new contents; on error the temporary file is removed and the
    /// target is as it was.
    pub fn commit(mut self) -> Result<(), AtomicFileError> {
        let out = self.out.take().expect("open until commit or drop");
        let file = out
            .into_inner()
            .map_err(|e| self.error("write", e.into_error()))?;
        file.sync_all().map_err(|e| self.error("sync to disk", e))?;
        // Closed before the rename: some platforms cannot rename an open file.
        drop(file);
        fs::rename(&self.temp, &self.target).map_err(|e| self.error("replace", e))?;
        self.committed = true;
        // Make the rename itself durable. Best effort: the new file is already complete and
        // in place, so failing now would report an error for a write that happened; and some
        // platforms and filesystems cannot sync a directory.
        #[cfg(unix)]
        if let Ok(dir) = File::open(directory_of(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn error(&self, action: &'static str, source: io::Error) -> AtomicFileError {
        AtomicFileError {
            path: self.target.clone(),
            action,
            source,
        }
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("open until commit or drop")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(out) = self.out.take() {
            // Close without flushing: the buffered bytes belong to a file about to go, and
            // some platforms cannot delete an open file.
            let (file, _unwritten) = out.into_parts();
            drop(file);
        }
        let _ = fs::remove_file(&self.temp);
    }
}

/// Replaces `path` with `bytes` atomically: [`AtomicFile::create`], one write,
/// [`commit`](AtomicFile::commit).
pub fn write_atomically(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), AtomicFileError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| file.error("write", e))?;
    file.commit()
}

/// The directory a relative or absolute file path lives in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Opens a new temporary file in `dir`, named after the target's `file_name`.
fn create_temp(dir: &Path, file_name: &OsStr) -> io::Result<(File, PathBuf)> {
    let mut attempt = 0;
    loop {
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let candidate = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => return Ok((f, candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < CREATE_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file names in `dir`, sorted, to see what was created or left behind.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A directory holding `out.txt` with known old contents.
    fn with_old_target() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        fs::write(&target, b"old").unwrap();
        (dir, target)
    }

    #[test]
    fn commit_replaces_the_target() {
        let (dir, target) = with_old_target();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"new contents").unwrap();
        file.flush().unwrap();
        // Until the commit the new bytes live beside the target, under a hidden name.
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let pending = names(dir.path());
        assert_eq!(pending.len(), 2, "{pending:?}");
        let temp = format!(".out.txt.tmp-{}-", std::process::id());
        assert!(pending.iter().any(|n| n.starts_with(&temp)), "{pending:?}");

        file.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new contents");
        assert_eq!(names(dir.path()), ["out.txt"]);

        // A fresh target, through the convenience function.
        let fresh = dir.path().join("fresh.txt");
        write_atomically(&fresh, b"hello").unwrap();
        assert_eq!(fs::read(&fresh).unwrap(), b"hello");
        assert_eq!(names(dir.path()), ["fresh.txt", "out.txt"]);
    }

    #[test]
    fn drop_without_commit_leaves_the_target_untouched_and_no_temporary() {
        let (dir, target) = with_old_target();
        {
            let mut file = AtomicFile::create(&target).unwrap();
            // More than the buffer holds, so some of it has reached the temporary file.
            file.write_all(&vec![b'x'; 100_000]).unwrap();
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.txt"]);

        // Without a previous file, nothing appears at all.
        drop(AtomicFile::create(dir.path().join("never.txt")).unwrap());
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn an_existing_target_survives_a_failed_write() {
        let (dir, target) = with_old_target();
        // The usual shape of a writer: a failure half-way, propagated with `?`.
        fn produce(path: &Path, input_complete: bool) -> Result<(), Box<dyn std::error::Error>> {
            let mut file = AtomicFile::create(path)?;
            file.write_all(b"the first half")?;
            if !input_complete {
                return Err("the input ended early".into());
            }
            file.commit()?;
            Ok(())
        }
        assert!(produce(&target, false).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.txt"]);

        // A failing commit (a directory cannot be replaced by a file) also keeps the target
        // and removes the temporary file, and says which file.
        let occupied = dir.path().join("occupied");
        fs::create_dir(&occupied).unwrap();
        fs::write(occupied.join("inside.txt"), b"kept").unwrap();
        let err = write_atomically(&occupied, b"new").unwrap_err();
        assert_eq!(err.path, occupied);
        assert_eq!(err.action, "replace");
        assert!(
            err.to_string().contains(&*occupied.to_string_lossy()),
            "{err}"
        );
        assert_eq!(names(&occupied), ["inside.txt"]);
        assert_eq!(names(dir.path()), ["occupied", "out.txt"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("out.txt");
        let err = AtomicFile::create(&path).unwrap_err();
        assert_eq!(err.path, path);
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
        let message = err.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.starts_with("cannot create a temporary file next to "));

        let err = write_atomically(&path, b"x").unwrap_err();
        assert_eq!(err.path, path);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn concurrent_writers_get_distinct_temporaries() {
        let (dir, target) = with_old_target();
        let mut first = AtomicFile::create(&target).unwrap();
        let mut second = AtomicFile::create(&target).unwrap();
        assert_ne!(first.temp_path(), second.temp_path());
        first.write_all(b"first").unwrap();
        second.write_all(b"second").unwrap();
        first.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"first");
        second.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }
}
