//! `--raw`: exactly the §2 algorithm per sample — no reference level, noise floor, limiter or
//! gain — for checking the circuits on real audio and for research use.

use crate::circuits::{build_circuit, Circuit, CircuitError, InterneuronBasis, Solver};
use crate::whitener::WhitenerKind;

/// One circuit stepped on every sample of an n-channel signal; the output is `r` itself.
pub struct RawWhitener {
    circuit: Box<dyn Circuit<f64>>,
    x: Vec<f64>,
    r: Vec<f64>,
    /// Samples that were not finite and were treated as 0.
    non_finite: u64,
    /// Steps that left the state invalid (the circuit was re-initialised).
    resets: u64,
}

impl RawWhitener {
    /// A circuit of `channels` neurons (and `max(interneurons, n)` interneurons, as the
    /// engine's) with learning rate η per sample and initial scale `s`.
    pub fn new(
        kind: WhitenerKind,
        channels: usize,
        interneurons: usize,
        eta: f64,
        scale: f64,
    ) -> Result<Self, CircuitError> {
        let k = interneurons.max(channels);
        let circuit = build_circuit(
            kind,
            channels,
            k,
            eta,
            scale,
            InterneuronBasis::Dct,
            Solver::default(),
        )?;
        Ok(Self {
            circuit,
            x: vec![0.0; channels],
            r: vec![0.0; channels],
            non_finite: 0,
            resets: 0,
        })
    }

    /// The circuit.
    pub fn circuit(&self) -> &dyn Circuit<f64> {
        self.circuit.as_ref()
    }

    /// Non-finite input samples seen (treated as 0).
    pub fn non_finite_inputs(&self) -> u64 {
        self.non_finite
    }

    /// State resets.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Whiten interleaved frames in place: for each frame, `r = M⁻¹x`, then the update.
    pub fn process_interleaved(&mut self, frames: &mut [f32]) {
        let n = self.x.len();
        for frame in frames.chunks_exact_mut(n) {
            for (x, v) in self.x.iter_mut().zip(frame.iter()) {
                *x = if v.is_finite() {
                    *v as f64
                } else {
                    self.non_finite += 1;
                    0.0
                };
            }
            if self.circuit.step(&self.x, &mut self.r).is_err() {
                self.resets += 1;
                let s = self.circuit.init_scale();
                let _ = self.circuit.reinitialise(s);
            }
            for (v, r) in frame.iter_mut().zip(self.r.iter()) {
                *v = *r as f32;
            }
        }
    }
}
