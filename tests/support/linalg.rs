//! Ground truth computed independently of the code under test: random SPD covariances and
//! their square roots by eigendecomposition.

use interneuron_whitening::circuits::Scalar;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::Rng;
use rand_distr::StandardNormal;

/// A standard normal scalar (circular for ℂ), drawn here rather than by the crate.
pub fn normal<T: Scalar, R: Rng>(rng: &mut R) -> T {
    let re: f64 = rng.sample(StandardNormal);
    if T::IS_COMPLEX {
        let im: f64 = rng.sample(StandardNormal);
        // Build re + i·im through the ComplexField interface.
        let i = T::from_real(-1.0).sqrt();
        (T::from_real(re) + i * T::from_real(im)) * T::from_real(std::f64::consts::FRAC_1_SQRT_2)
    } else {
        T::from_real(re)
    }
}

/// A random Hermitian positive-definite matrix with eigenvalues log-uniform in [lo, hi],
/// returned with its eigenvalues.
pub fn random_spd<T: Scalar, R: Rng>(
    n: usize,
    lo: f64,
    hi: f64,
    rng: &mut R,
) -> (DMatrix<T>, Vec<f64>) {
    let g = DMatrix::from_fn(n, n, |_, _| normal::<T, R>(rng));
    let q = g.qr().q();
    let eig: Vec<f64> = (0..n)
        .map(|_| (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp())
        .collect();
    let d = DMatrix::from_diagonal(&DVector::from_iterator(
        n,
        eig.iter().map(|&l| T::from_real(l)),
    ));
    let c = &q * d * q.adjoint();
    (hermitian_part(&c), eig)
}

pub fn hermitian_part<T: Scalar>(c: &DMatrix<T>) -> DMatrix<T> {
    (c + c.adjoint()) * T::from_real(0.5)
}

/// `C^{1/2}` by eigendecomposition.
pub fn sqrtm<T: Scalar>(c: &DMatrix<T>) -> DMatrix<T> {
    let e = SymmetricEigen::new(c.clone());
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|l| T::from_real(l.sqrt())));
    hermitian_part(&(&e.eigenvectors * d * e.eigenvectors.adjoint()))
}

/// Relative Frobenius distance.
pub fn rel_err<T: Scalar>(a: &DMatrix<T>, b: &DMatrix<T>) -> f64 {
    (a - b).norm() / b.norm()
}

/// Largest |eigenvalue| of a Hermitian matrix (spectral norm).
pub fn spectral_norm<T: Scalar>(a: &DMatrix<T>) -> f64 {
    SymmetricEigen::new(hermitian_part(a))
        .eigenvalues
        .iter()
        .fold(0.0, |m, l| m.max(l.abs()))
}
