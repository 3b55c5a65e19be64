//! Frames for the gain-modulating circuit (docs/DESIGN.md §2.9): `k` synapse vectors
//! `w_i ∈ Fⁿ` (the columns of `W`, n×k) whose outer products `w_i w_iᴴ` the gains weight.
//!
//! Gains alone can realise every recurrent matrix `M = αI + Σ_i g_i w_i w_iᴴ` only if the
//! outer products span the real vector space of symmetric (ℝ) or Hermitian (ℂ) matrices:
//! `n(n+1)/2` real dimensions for ℝ, `n²` for ℂ. The gains are real (a neuron's gain), so the
//! span is over ℝ even for complex frames.

use super::{CircuitError, Scalar};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the synapses `W₀` of the gain-modulating circuit are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "frame")]
pub enum GainFrame {
    /// The smallest deterministic frame whose outer products span the symmetric (ℝ) or
    /// Hermitian (ℂ) matrices, [`pairs_frame`]: `k = n(n+1)/2` for ℝ, `k = n²` for ℂ. Each
    /// column has at most two non-zero entries, which the fast path exploits.
    #[default]
    Pairs,
    /// `k` columns drawn uniformly from the unit sphere of `Fⁿ` with a seeded generator,
    /// [`random_unit_frame`]. With `k` below [`spanning_frame_size`] the gains alone cannot
    /// whiten every covariance (the slow-plasticity setting of Duong et al., NeurIPS 2023).
    Random {
        /// Number of interneurons `k`.
        k: usize,
        /// Seed of the generator.
        seed: u64,
    },
}

impl GainFrame {
    /// The n×k frame `W₀` for this choice.
    pub fn columns<T: Scalar>(self, n: usize) -> Result<DMatrix<T>, CircuitError> {
        match self {
            GainFrame::Pairs => pairs_frame(n),
            GainFrame::Random { k, seed } => {
                random_unit_frame(n, k, &mut ChaCha8Rng::seed_from_u64(seed))
            }
        }
    }
}

/// The real dimension of the symmetric (ℝ, `n(n+1)/2`) or Hermitian (ℂ, `n²`) n×n matrices:
/// the fewest interneurons whose gains can realise every `M`.
pub fn spanning_frame_size<T: Scalar>(n: usize) -> usize {
    if T::IS_COMPLEX {
        n * n
    } else {
        n * (n + 1) / 2
    }
}

/// The deterministic spanning frame, columns in this order:
///
/// * `e_a` for `a = 0…n−1`: their outer products are the diagonal units `E_aa`;
/// * for each pair `a < b` (row-major), `(e_a + e_b)/√2`, whose outer product is
///   `½(E_aa + E_bb + E_ab + E_ba)` and so adds the symmetric off-diagonal unit;
/// * for ℂ only, right after it, `(e_a + i·e_b)/√2`, whose outer product
///   `½(E_aa + E_bb − i E_ab + i E_ba)` adds the antisymmetric imaginary unit.
///
/// Every Hermitian matrix is a real combination of `E_aa`, `E_ab + E_ba` and
/// `i(E_ba − E_ab)`, and each of those is a combination of the outer products above, so the
/// span is complete with exactly `n(n+1)/2` (ℝ) or `n²` (ℂ) columns: the outer products are a
/// basis, and the gains realising a given `M` are unique.
pub fn pairs_frame<T: Scalar>(n: usize) -> Result<DMatrix<T>, CircuitError> {
    if n == 0 {
        return Err(CircuitError::ZeroDimension);
    }
    let k = spanning_frame_size::<T>(n);
    let h = T::from_real(std::f64::consts::FRAC_1_SQRT_2);
    let mut w = DMatrix::zeros(n, k);
    for a in 0..n {
        w[(a, a)] = T::one();
    }
    let mut col = n;
    for a in 0..n {
        for b in a + 1..n {
            w[(a, col)] = h;
            w[(b, col)] = h;
            col += 1;
            if T::IS_COMPLEX {
                w[(a, col)] = h;
                w[(b, col)] = T::from_parts(0.0, std::f64::consts::FRAC_1_SQRT_2);
                col += 1;
            }
        }
    }
    debug_assert_eq!(col, k);
    Ok(w)
}

/// `k` columns uniform on the unit sphere of `Fⁿ`: normalised standard-normal vectors (for
/// ℂ circularly symmetric, so uniform on the complex sphere).
pub fn random_unit_frame<T: Scalar, R: rand::Rng + ?Sized>(
    n: usize,
    k: usize,
    rng: &mut R,
) -> Result<DMatrix<T>, CircuitError> {
    if n == 0 {
        return Err(CircuitError::ZeroDimension);
    }
    if k == 0 {
        return Err(CircuitError::InvalidFrame("it has no columns".into()));
    }
    let mut w = DMatrix::zeros(n, k);
    for i in 0..k {
        // A zero draw has probability 0, but a redraw costs nothing and keeps the
        // normalisation total.
        loop {
            let mut col = w.column_mut(i);
            for v in col.iter_mut() {
                *v = T::standard_normal(rng);
            }
            let norm = col.norm();
            if norm > 1e-12 {
                col /= T::from_real(norm);
                break;
            }
        }
    }
    Ok(w)
}

/// The Gram matrix of the outer products under the Frobenius inner product,
/// `Γ_ij = ⟨w_i w_iᴴ, w_j w_jᴴ⟩ = |w_iᴴ w_j|²` (k×k, real, positive semidefinite). Its rank
/// is the dimension of the span of the outer products.
pub fn outer_product_gram<T: Scalar>(w: &DMatrix<T>) -> DMatrix<f64> {
    let k = w.ncols();
    let mut gram = DMatrix::zeros(k, k);
    for j in 0..k {
        for i in j..k {
            let v = w.column(i).dotc(&w.column(j)).modulus_squared();
            gram[(i, j)] = v;
            gram[(j, i)] = v;
        }
    }
    gram
}

/// Relative threshold below which an eigenvalue of the outer-product Gram matrix counts as
/// zero (the Gram matrix squares the outer products' singular values, so this is ≈ 1e-6
/// relative on those).
const GRAM_RANK_TOL: f64 = 1e-12;

/// The dimension of the real span of the outer products `w_i w_iᴴ`.
pub fn outer_product_rank<T: Scalar>(w: &DMatrix<T>) -> usize {
    let eig = SymmetricEigen::new(outer_product_gram(w)).eigenvalues;
    let top = eig.iter().fold(0.0_f64, |m, &l| m.max(l));
    eig.iter().filter(|&&l| l > GRAM_RANK_TOL * top).count()
}

/// Whether the gains of frame `w` can realise every Hermitian `M`, i.e. whether its outer
/// products span the symmetric (ℝ) or Hermitian (ℂ) matrices.
pub fn frame_spans<T: Scalar>(w: &DMatrix<T>) -> bool {
    outer_product_rank(w) == spanning_frame_size::<T>(w.nrows())
}

/// The real gains `g` of least Frobenius error `‖Σ_i g_i w_i w_iᴴ − target‖_F` (of least norm
/// when the outer products are dependent): the normal equations `Γ g = b` with
/// `b_i = w_iᴴ target w_i`, solved by the pseudo-inverse of `Γ`. Exact when the frame spans.
/// Allocates; used at construction and for analysis, never per sample.
pub fn frame_gains<T: Scalar>(
    w: &DMatrix<T>,
    target: &DMatrix<T>,
) -> Result<DVector<f64>, CircuitError> {
    let n = w.nrows();
    super::check_square(target, n)?;
    let k = w.ncols();
    let b = DVector::from_fn(k, |i, _| {
        let wi = w.column(i);
        wi.dotc(&(target * wi)).real()
    });
    let eig = SymmetricEigen::new(outer_product_gram(w));
    let top = eig.eigenvalues.iter().fold(0.0_f64, |m, &l| m.max(l));
    if !(top.is_finite() && top > 0.0) {
        return Err(CircuitError::InvalidFrame(
            "its columns are zero or not finite".into(),
        ));
    }
    // g = V diag(1/λ) Vᵀ b over the eigenvalues that are not numerically zero.
    let mut coeff = eig.eigenvectors.transpose() * b;
    for (c, &l) in coeff.iter_mut().zip(eig.eigenvalues.iter()) {
        *c = if l > GRAM_RANK_TOL * top { *c / l } else { 0.0 };
    }
    Ok(&eig.eigenvectors * coeff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Complex;

    /// The pairs frame has unit columns, the spanning size, and gains that rebuild a given
    /// Hermitian matrix exactly (which needs the span).
    fn pairs_frame_is_a_basis<T: Scalar>() {
        for n in 1..=6 {
            let w = pairs_frame::<T>(n).unwrap();
            assert_eq!(w.ncols(), spanning_frame_size::<T>(n));
            for col in w.column_iter() {
                assert!((col.norm() - 1.0).abs() < 1e-15);
            }
            assert!(frame_spans(&w), "n = {n}");
            let target = DMatrix::from_fn(n, n, |i, j| {
                T::from_parts(1.0 + i as f64 * j as f64, i as f64 - j as f64)
            });
            let target = (&target + target.adjoint()) * T::from_real(0.5);
            let g = frame_gains(&w, &target).unwrap();
            let mut m = DMatrix::<T>::zeros(n, n);
            for (i, gi) in g.iter().enumerate() {
                let wi = w.column(i);
                m += wi * wi.adjoint() * T::from_real(*gi);
            }
            assert!((m - &target).norm() < 1e-12 * target.norm(), "n = {n}");
        }
    }

    #[test]
    fn pairs_frame_is_a_basis_real() {
        pairs_frame_is_a_basis::<f64>();
    }

    #[test]
    fn pairs_frame_is_a_basis_complex() {
        pairs_frame_is_a_basis::<Complex<f64>>();
    }

    /// A real frame cannot span the Hermitian matrices: the complex pairs are needed.
    #[test]
    fn real_pairs_do_not_span_hermitian_matrices() {
        let w = pairs_frame::<f64>(3).unwrap().map(|v| Complex::new(v, 0.0));
        assert_eq!(outer_product_rank(&w), 6);
        assert!(!frame_spans(&w));
    }

    #[test]
    fn random_frames_have_unit_columns_and_refuse_nothing_to_draw() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let w = random_unit_frame::<Complex<f64>, _>(3, 7, &mut rng).unwrap();
        for col in w.column_iter() {
            assert!((col.norm() - 1.0).abs() < 1e-14);
        }
        assert!(random_unit_frame::<f64, _>(3, 0, &mut rng).is_err());
        assert!(random_unit_frame::<f64, _>(0, 3, &mut rng).is_err());
    }
}
