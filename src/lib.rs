//! Interneuron Whitening: statistical whitening with the two recurrent circuits of
//! Lipshutz, Pehlevan & Chklovskii, "Interneurons accelerate learning dynamics in recurrent
//! neural networks for statistical adaptation" (ICLR 2023).
//!
//! The crate is layered so that the mathematics can be used and tested without any audio
//! code (see docs/DESIGN.md §10):
//!
//! * [`circuits`] — the direct and interneuron circuits (docs/DESIGN.md §2), generic over real
//!   and complex scalars with `f64` state;
//! * [`theory`] — closed-form continuous-time learning curves used as the theory overlay;
//! * [`source`] — seeded Gaussian sources with a prescribed covariance spectrum;
//! * [`reproduce`] — the paper's convergence-time experiment, its fits, CSV and figure;
//! * [`framing`], [`baseline`], [`eigen`] — STFT and bands, the classical ZCA baseline and an
//!   allocation-free Hermitian eigensolver;
//! * [`engine`] — the audio engine: framings, the race, safety and stats;
//! * [`io`], [`offline`] — WAV input/output, atomic file replacement, and offline processing
//!   (`whiten process`);
//! * [`plugin`] — the CLAP/VST3 plugin and standalone, thin glue over the engine, and its
//!   egui editor.

pub mod baseline;
pub mod bench;
pub mod circuits;
pub mod demo;
pub mod eigen;
pub mod engine;
pub mod framing;
pub mod io;
pub mod live;
pub mod monitor;
pub mod offline;
pub mod plugin;
pub mod reproduce;
pub mod source;
pub mod theory;
pub mod whitener;

nice_plug::nice_export_clap!(plugin::InterneuronWhitening);
nice_plug::nice_export_vst3!(plugin::InterneuronWhitening);
