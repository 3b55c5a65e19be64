//! Latency-compensated, click-free bypass (docs/DESIGN.md §9, step 5; §11, "Bypass").
//!
//! In the spectral framing the processed signal is `latency` samples late (the STFT's
//! buffering), so switching to the undelayed input would jump in time. The bypass therefore
//! crossfades (20 ms) towards the dry input delayed by the current latency, read from a
//! preallocated ring buffer. The engine keeps running while bypassed, so it stays adapted and
//! un-bypassing is click-free too.

/// Capacity of the dry delay line per channel: a power of two above the largest latency
/// (the largest FFT size, 8192).
pub const DELAY_CAPACITY: usize = 16_384;

/// Per-channel ring buffers delaying the dry input by the current latency.
struct DryDelay {
    /// `channels` rings of [`DELAY_CAPACITY`] samples, one after the other.
    ring: Vec<f32>,
    /// Write position, shared by every channel's ring (all advance together).
    write: usize,
}

impl DryDelay {
    fn new(channels: usize) -> Self {
        Self {
            ring: vec![0.0; channels * DELAY_CAPACITY],
            write: 0,
        }
    }

    /// Push `input[c][start..end]` and read the signal `delay` samples earlier into `out[c]`.
    fn process(
        &mut self,
        input: &[&mut [f32]],
        start: usize,
        end: usize,
        delay: usize,
        out: &mut [Vec<f32>],
    ) {
        const MASK: usize = DELAY_CAPACITY - 1;
        let delay = delay.min(DELAY_CAPACITY - 1);
        for ((ch, ring), o) in input
            .iter()
            .zip(self.ring.chunks_exact_mut(DELAY_CAPACITY))
            .zip(out.iter_mut())
        {
            let mut w = self.write;
            for (x, y) in ch[start..end].iter().zip(o.iter_mut()) {
                // As the engine treats its input: NaN, infinities and subnormals are 0.
                ring[w & MASK] = if x.is_finite() && x.abs() >= f32::MIN_POSITIVE {
                    *x
                } else {
                    0.0
                };
                *y = ring[w.wrapping_sub(delay) & MASK];
                w = w.wrapping_add(1);
            }
        }
        self.write = (self.write + (end - start)) & MASK;
    }

    fn clear(&mut self) {
        self.ring.fill(0.0);
    }
}

/// The bypass: the dry delay line and the crossfade between processed and delayed dry signal.
/// Allocates only in [`Bypass::new`].
pub struct Bypass {
    /// The input, delayed by the latency so it lines up with the processed signal.
    dry: DryDelay,
    /// The delayed dry input of the current sub-block, one buffer per channel.
    dry_buf: Vec<Vec<f32>>,
    /// 0 = processed signal, 1 = bypassed (delayed dry); in between during a crossfade.
    mix: f32,
    /// Crossfade progress per sample.
    fade_step: f32,
}

impl Bypass {
    /// A bypass for `channels` and sub-blocks of at most `sub_block` samples, fading by
    /// `fade_step` per sample, starting fully `bypassed` or not.
    pub fn new(channels: usize, sub_block: usize, fade_step: f32, bypassed: bool) -> Self {
        Self {
            dry: DryDelay::new(channels),
            dry_buf: vec![vec![0.0; sub_block]; channels],
            mix: target(bypassed),
            fade_step,
        }
    }

    /// Before the engine overwrites `buffers[c][start..end]` in place: delay the dry input by
    /// `latency` samples for [`Bypass::apply`].
    pub fn delay_dry(&mut self, buffers: &[&mut [f32]], start: usize, end: usize, latency: usize) {
        self.dry
            .process(buffers, start, end, latency, &mut self.dry_buf);
    }

    /// After the engine: move towards `bypassed` and mix the delayed dry signal into
    /// `buffers[c][start..end]` (or replace it, when fully bypassed).
    pub fn apply(&mut self, buffers: &mut [&mut [f32]], start: usize, end: usize, bypassed: bool) {
        let len = end - start;
        let goal = target(bypassed);
        if self.mix != goal {
            let step = if goal > self.mix {
                self.fade_step
            } else {
                -self.fade_step
            };
            for (b, d) in buffers.iter_mut().zip(&self.dry_buf) {
                let mut m = self.mix;
                for (y, x) in b[start..end].iter_mut().zip(&d[..len]) {
                    m = (m + step).clamp(0.0, 1.0);
                    *y = (1.0 - m) * *y + m * x;
                }
            }
            self.mix = (self.mix + step * len as f32).clamp(0.0, 1.0);
        } else if self.mix >= 1.0 {
            for (b, d) in buffers.iter_mut().zip(&self.dry_buf) {
                b[start..end].copy_from_slice(&d[..len]);
            }
        }
    }

    /// Forget the signal history and stand at `bypassed` without a fade (the host's reset).
    pub fn reset(&mut self, bypassed: bool) {
        self.dry.clear();
        self.mix = target(bypassed);
    }
}

/// The mix a bypass state leads to.
fn target(bypassed: bool) -> f32 {
    if bypassed {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `bypass` over `input` in sub-blocks of 32, with the "engine" replaced by silence,
    /// so the output is exactly the bypass's contribution.
    fn run(bypass: &mut Bypass, input: &[f32], latency: usize, bypassed: bool) -> Vec<f32> {
        let mut out = Vec::new();
        for block in input.chunks(32) {
            let mut buf = block.to_vec();
            let mut chans: [&mut [f32]; 1] = [&mut buf];
            bypass.delay_dry(&chans, 0, block.len(), latency);
            chans[0].fill(0.0);
            bypass.apply(&mut chans, 0, block.len(), bypassed);
            out.extend_from_slice(&buf);
        }
        out
    }

    #[test]
    fn bypassed_output_is_the_input_delayed_by_the_latency() {
        let input: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut bypass = Bypass::new(1, 32, 0.01, true);
        let out = run(&mut bypass, &input, 256, true);
        assert!(out[..256].iter().all(|y| *y == 0.0));
        assert_eq!(&out[256..], &input[..1000 - 256]);
    }

    #[test]
    fn bypassing_fades_in_the_dry_signal_without_a_step() {
        let input = vec![1.0f32; 300];
        let mut bypass = Bypass::new(1, 32, 0.01, false);
        let out = run(&mut bypass, &input, 0, true);
        // A linear ramp of 0.01 per sample from the (silent) processed signal to the dry one.
        for (i, y) in out.iter().enumerate() {
            let expected = ((i + 1) as f32 * 0.01).min(1.0);
            assert!((y - expected).abs() < 1e-4, "sample {i}: {y} vs {expected}");
        }
    }
}
