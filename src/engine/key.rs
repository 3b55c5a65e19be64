//! Sidechain learning (docs/DESIGN.md §3.8): where the whiteners' statistics come from — the
//! main input itself, or a key whose statistics whiten the main input.

/// The source of a chunk's learning statistics (outer products, the change detector's input,
/// the stats' input level). The responses `r = P x` are always of the main input.
#[derive(Clone, Copy)]
pub(super) enum Key<'a> {
    /// The main input: ordinary whitening.
    Own,
    /// A key, one slice per channel of the main input, indexed like the main buffers (each
    /// at least as long as the chunk's end).
    Signal(&'a [&'a [f32]]),
    /// A missing key, or the part of one shorter than the main block: silence, from which the
    /// whiteners learn nothing (the silence gate of docs/DESIGN.md §3.6), so they keep whitening
    /// with what they learned.
    Silence,
}

impl Key<'_> {
    /// Whether the statistics come from somewhere other than the main input.
    pub(super) fn is_keyed(&self) -> bool {
        !matches!(self, Key::Own)
    }
}

/// `x[t] = f64(v[t]) · scale`, non-finite samples as 0: a key is read, never sanitised in
/// place (it is the host's buffer), so the sanitising happens on the way in.
pub(super) fn scale_key_in(x: &mut [f64], v: &[f32], scale: f64) {
    for (x, v) in x.iter_mut().zip(v) {
        *x = if v.is_finite() {
            *v as f64 * scale
        } else {
            0.0
        };
    }
}

/// `Σ x²` over the finite samples of `seg`, and how many were not finite.
pub(super) fn finite_energy(seg: &[f32]) -> (f64, u64) {
    let mut e = 0.0f64;
    let mut bad = 0u64;
    for v in seg {
        if v.is_finite() {
            e += (*v as f64) * (*v as f64);
        } else {
            bad += 1;
        }
    }
    (e, bad)
}
