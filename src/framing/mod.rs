//! From audio to vectors (docs/DESIGN.md §3): the streaming STFT of the spectral framing, its
//! analysis-only twin for a sidechain key, and the log-spaced bands its bins are grouped into.
//! (The channels framing needs no transform: its vectors are the channels' samples.)

pub mod analysis;
pub mod bands;
mod single;
pub mod stft;

pub use analysis::{AnalysisInput, StftAnalysis};
pub use bands::BandLayout;
pub use stft::{
    SpectralFrame, Stft, StftError, DEFAULT_BANDS, DEFAULT_FFT_SIZE, HOP_DIVISOR, MAX_CHANNELS,
    MAX_FFT_SIZE, MIN_FFT_SIZE,
};
