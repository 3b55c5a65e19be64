//! A VST3 host for the tests, built on the `vst3` crate's bindings: it loads the bundled plugin
//! (`dlopen`, `ModuleEntry`, `GetPluginFactory`; [`Module`]), creates and initialises a component
//! with a host context, queries its `IAudioProcessor` and `IEditController`, negotiates buses
//! and sets up 32-bit real-time processing at [`RATE`] ([`Instance`]), processes planar audio in
//! varied block sizes on an audio thread with parameter automation through
//! `IParameterChanges` ([`Instance::process`]), saves and restores state through an in-memory
//! `IBStream`, and on teardown checks that every reference the host handed the plugin is
//! released.
//!
//! The host side of the COM objects is in [`host_objects`] (host application, component
//! handler, memory stream) and [`param_changes`] (the parameter-change queues of one process
//! call).

mod host_objects;
mod instance;
mod module;
mod param_changes;
mod process;

// The host's interface. Test crates that drive no VST3 host leave these re-exports unused,
// which `dead_code` (allowed for `support`) does not cover.
#[allow(unused_imports)]
pub use instance::{speaker_arrangement, Event, Instance, Param};
#[allow(unused_imports)]
pub use module::{find_audio_class, Module};
// The in-memory stream, for tests that hand the plugin bytes of their own (state fuzzing).
#[allow(unused_imports)]
pub use host_objects::MemoryStream;

use std::ffi::c_char;
use std::path::PathBuf;
use vst3::Steinberg::Vst::{BusDirections_, MediaTypes_, TChar};
use vst3::{ComPtr, Interface};

/// The sample rate the host runs the plugin at.
pub const RATE: f64 = 48_000.0;
/// Largest block the host hands the plugin.
pub const MAX_FRAMES: usize = 1024;

/// `MediaTypes_::kAudio` as the bus calls take it.
pub const AUDIO: i32 = MediaTypes_::kAudio as i32;
/// `MediaTypes_::kEvent` as the bus calls take it.
pub const EVENT: i32 = MediaTypes_::kEvent as i32;
/// `BusDirections_::kInput` as the bus calls take it.
pub const INPUT: i32 = BusDirections_::kInput as i32;
/// `BusDirections_::kOutput` as the bus calls take it.
pub const OUTPUT: i32 = BusDirections_::kOutput as i32;

/// The plugin's shared library inside the bundle in `target/bundled` (or `$CARGO_TARGET_DIR`).
pub fn bundle_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target
        .join("bundled")
        .join("Interneuron Whitening.vst3")
        .join("Contents")
        .join("x86_64-linux")
        .join("Interneuron Whitening.so")
}

// ---------------------------------------------------------------------------------------------
// Small helpers for the C strings and UTF-16 strings of the VST3 API.
// ---------------------------------------------------------------------------------------------

/// A NUL-terminated C string of the VST3 API (class infos) as a Rust string.
pub fn c_chars(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A NUL-terminated UTF-16 string of the VST3 API (`String128`, parameter titles).
pub fn utf16(chars: &[TChar]) -> String {
    let len = chars.iter().position(|c| *c == 0).unwrap_or(chars.len());
    String::from_utf16_lossy(&chars[..len])
}

/// `s` as a NUL-terminated UTF-16 string for the VST3 API.
pub fn to_utf16(s: &str) -> Vec<TChar> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The reference count of the object behind `ptr` (including `ptr` itself).
pub fn refcount<I: Interface>(ptr: &ComPtr<I>) -> usize {
    // SAFETY: `ptr` is a live interface pointer; the add_ref is undone at once.
    unsafe {
        I::add_ref(ptr.as_ptr());
        I::release(ptr.as_ptr())
    }
}
