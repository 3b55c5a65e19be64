//! Helpers shared by the integration tests (`tests/*.rs`).
//!
//! **The convention.** Every helper lives in a submodule of this directory, declared below,
//! and every test file that needs one reaches it the same way:
//!
//! ```ignore
//! mod support;
//! use support::signals::{check_bounded, correlation};
//! ```
//!
//! Each `tests/*.rs` is a crate of its own that compiles the whole of `support` and uses a
//! part of it, so dead code is allowed here (a helper unused by one test crate is used by
//! another); everything else stays under the workspace's `clippy -D warnings`.
//!
//! Compiling `support` has no side effects. The one helper with a binary-wide effect, the
//! counting allocator, is therefore only *defined* here; a test crate that counts allocations
//! installs it at its root (and [`counting_alloc::count_allocations`] refuses to run if it
//! was not installed):
//!
//! ```ignore
//! use support::counting_alloc::{count_allocations, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOCATOR: CountingAllocator = CountingAllocator;
//! ```
#![allow(dead_code)]

/// A minimal CLAP host (`clack-host`) that loads the bundled plugin and drives it.
pub mod clap;
/// An allocator that counts this thread's allocations (allocation-free real-time paths).
pub mod counting_alloc;
/// Real encoders (flac, oggenc, lame, sox) for test files of the formats read besides WAV.
pub mod encoders;
/// What a directory holds; `whiten process` fed through a pipe.
pub mod files;
/// A private dummy JACK server, a play/record client and a child-process guard.
pub mod jack;
/// Ground-truth linear algebra, independent of the code under test.
pub mod linalg;
/// Running a plugin-host scenario in a child process; checking the plugin bundle.
pub mod plugin_child;
/// `whiten process`'s contract on any file, checked (the fuzzers).
pub mod process_contract;
/// Signal measurements (correlation, RMS, bounds) and a looping source.
pub mod signals;
/// A VST3 host that loads the bundled plugin and drives it as a DAW does.
pub mod vst3;
