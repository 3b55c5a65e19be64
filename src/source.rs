//! Seeded Gaussian input with a prescribed covariance `C = U diag(c) Uᴴ`.

use crate::circuits::{random_unitary, CircuitError, Scalar};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Zero-mean Gaussian vectors `x = U diag(√c) g` with `g` standard normal, so that
/// `E[x xᴴ] = C = U diag(c) Uᴴ`. `U` is a Haar-random rotation drawn from the seed, so the
/// covariance is not aligned with the initial state's basis by accident.
#[derive(Clone, Debug)]
pub struct GaussianSource<T: Scalar> {
    /// The covariance `C`.
    covariance: DMatrix<T>,
    /// `U diag(√c)`, the colouring transform.
    colouring: DMatrix<T>,
    /// The generator, seeded for reproducibility.
    rng: ChaCha8Rng,
    /// Scratch white vector.
    g: DVector<T>,
}

impl<T: Scalar> GaussianSource<T> {
    /// A source with the given eigenvalues of `C` (all finite and > 0) and seed.
    pub fn new(spectrum: &[f64], seed: u64) -> Result<Self, CircuitError> {
        validate_spectrum(spectrum)?;
        let n = spectrum.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u = random_unitary::<T, _>(n, &mut rng);
        let sqrt_d = DMatrix::from_diagonal(&DVector::from_iterator(
            n,
            spectrum.iter().map(|&c| T::from_real(c.sqrt())),
        ));
        let colouring = &u * sqrt_d;
        let mut covariance = &colouring * colouring.adjoint();
        // Exactly Hermitian, so validation and factorisation see a clean matrix.
        let cov_t = covariance.adjoint();
        covariance = (&covariance + cov_t) * T::from_real(0.5);
        Ok(Self {
            covariance,
            colouring,
            rng,
            g: DVector::zeros(n),
        })
    }

    /// The covariance `C` of the samples.
    pub fn covariance(&self) -> &DMatrix<T> {
        &self.covariance
    }

    /// Draw one sample into `x` (length n).
    pub fn sample_into(&mut self, x: &mut [T]) {
        for v in self.g.iter_mut() {
            *v = T::standard_normal(&mut self.rng);
        }
        let n = self.g.len();
        let mut xv = nalgebra::DVectorViewMut::from_slice(x, n);
        xv.gemv(T::one(), &self.colouring, &self.g, T::zero());
    }
}

/// Eigenvalues of a covariance must be finite and strictly positive.
pub fn validate_spectrum(spectrum: &[f64]) -> Result<(), CircuitError> {
    if spectrum.is_empty() {
        return Err(CircuitError::InvalidCovariance(
            "the spectrum is empty".into(),
        ));
    }
    if let Some(bad) = spectrum.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        return Err(CircuitError::InvalidCovariance(format!(
            "every eigenvalue must be finite and > 0, got {bad}"
        )));
    }
    Ok(())
}
