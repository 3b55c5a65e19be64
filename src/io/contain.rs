//! Containing a decoder's panics. `symphonia` is well kept, but a decoder of compressed formats
//! meeting hostile bytes may still hit an `expect`, an out-of-range index or an overflow check;
//! a file must never take the whole tool down (docs/DESIGN.md §7, §12). The decoders run inside
//! [`contain`], and a panic there becomes a clear error about the file.
//!
//! This needs unwinding panics, which every profile of this crate uses (none sets
//! `panic = "abort"`).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs contained code, so that the panic hook stays quiet: the
    /// caller reports the failure in its own words, and a "thread panicked" line on stderr
    /// would read as a crash of the tool.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook that silences contained panics, once per process.
static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err` with the panic's message. Panics elsewhere, on any
/// thread, are reported by the previous hook as before.
///
/// The caller must treat the state `f` touched as broken after an `Err` (that is why the
/// closure may capture anything, [`AssertUnwindSafe`]): the decoded input stops at the first
/// error and is never resumed.
pub(super) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_later_code_runs_normally() {
        assert_eq!(contain(|| 7), Ok(7));
        let v: Vec<u8> = Vec::new();
        let err = contain(|| v[3]).unwrap_err();
        assert!(err.contains("index out of bounds"), "{err}");
        let err = contain(|| panic!("bad {}", 42)).unwrap_err();
        assert_eq!(err, "bad 42");
        assert!(!CONTAINING.with(Cell::get));
    }
}
