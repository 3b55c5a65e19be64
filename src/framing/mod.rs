//! From audio to vectors (DESIGN.md §3).

pub mod stft;
