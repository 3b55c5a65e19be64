//! The orthonormal rows `Q` (n×k, `Q Qᴴ = I`) that set the interneuron initialisation
//! `W₀ = √s · Q`, so that `W₀ W₀ᴴ = s·I` exactly as for the direct circuit's `M₀ = s·I`.

use super::{CircuitError, Scalar};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the orthonormal rows `Q` of the interneuron initialisation are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "basis")]
pub enum InterneuronBasis {
    /// The first `n` rows of the orthonormal k×k DCT-II matrix: deterministic, so two runs
    /// (and the plugin after a reload) start from the same synapses.
    #[default]
    Dct,
    /// The first `n` rows of a Haar-random k×k orthogonal/unitary matrix from a seed.
    Random {
        /// Seed of the generator.
        seed: u64,
    },
}

impl InterneuronBasis {
    /// The n×k matrix `Q` for this basis.
    pub fn rows<T: Scalar>(self, n: usize, k: usize) -> Result<DMatrix<T>, CircuitError> {
        match self {
            InterneuronBasis::Dct => dct_rows(n, k),
            InterneuronBasis::Random { seed } => {
                random_orthonormal_rows(n, k, &mut ChaCha8Rng::seed_from_u64(seed))
            }
        }
    }
}

fn check_nk(n: usize, k: usize) -> Result<(), CircuitError> {
    if n == 0 {
        Err(CircuitError::ZeroDimension)
    } else if k < n {
        Err(CircuitError::TooFewInterneurons { n, k })
    } else {
        Ok(())
    }
}

/// The first `n` rows of the orthonormal DCT-II matrix of size k:
/// `Q[i][j] = α_i cos(π (j + ½) i / k)`, `α_0 = √(1/k)`, `α_i = √(2/k)`.
pub fn dct_rows<T: Scalar>(n: usize, k: usize) -> Result<DMatrix<T>, CircuitError> {
    check_nk(n, k)?;
    let kf = k as f64;
    Ok(DMatrix::from_fn(n, k, |i, j| {
        let alpha = if i == 0 {
            (1.0 / kf).sqrt()
        } else {
            (2.0 / kf).sqrt()
        };
        T::from_real(alpha * (std::f64::consts::PI * (j as f64 + 0.5) * i as f64 / kf).cos())
    }))
}

/// A Haar-distributed k×k orthogonal (ℝ) or unitary (ℂ) matrix: QR of a Gaussian matrix with
/// the phases of `R`'s diagonal moved into `Q` (Mezzadri 2007).
pub fn random_unitary<T: Scalar, R: rand::Rng + ?Sized>(k: usize, rng: &mut R) -> DMatrix<T> {
    let g = DMatrix::from_fn(k, k, |_, _| T::standard_normal(rng));
    let qr = g.qr();
    let mut q = qr.q();
    let r = qr.r();
    for j in 0..k {
        let d = r[(j, j)];
        let modulus = d.modulus();
        if modulus > 0.0 {
            let phase = d / T::from_real(modulus);
            let mut col = q.column_mut(j);
            col *= phase;
        }
    }
    q
}

/// The first `n` rows of a Haar-random k×k orthogonal/unitary matrix.
pub fn random_orthonormal_rows<T: Scalar, R: rand::Rng + ?Sized>(
    n: usize,
    k: usize,
    rng: &mut R,
) -> Result<DMatrix<T>, CircuitError> {
    check_nk(n, k)?;
    Ok(random_unitary::<T, R>(k, rng).rows(0, n).into_owned())
}
