//! The circuit with direct recurrent connections (docs/DESIGN.md §2.1).

use super::linalg::{
    matmul_into, mirror_lower, mirror_lower_in, whitening_error_with_inverse, CholeskyWorkspace,
};
use super::{
    check_eta, check_scale, check_square, Circuit, CircuitError, Dim, Scalar, WhitenerKind,
};
use crate::with_dim;
use nalgebra::DMatrix;

/// Primary neurons with direct recurrent synapses `M` (n×n, Hermitian positive definite).
///
/// Response `r = M⁻¹x`; online learning `M ← M + η (r rᴴ − I)`; mean-field
/// `M ← M + η (M⁻¹CM⁻¹ − I)`. Gradient descent on `Tr(M⁻¹C + M)` in `M` itself, so from
/// `M₀ = s·I` with `s ≫ σ` the eigenvalues shrink at a constant rate ≈ η per step: the
/// convergence time grows linearly in `s`.
#[derive(Clone, Debug)]
pub struct DirectCircuit<T: Scalar> {
    /// Learning rate η per update.
    eta: f64,
    /// Scale of the last (re-)initialisation, kept so a reset returns to it.
    scale: f64,
    /// The recurrent matrix `M`, both triangles stored exactly Hermitian.
    m: DMatrix<T>,
    /// `M⁻¹`, formed from the factor only when asked for (error measurements, mean-field):
    /// a per-sample step needs just the factor, O(n³/6), not the full inverse.
    m_inv: DMatrix<T>,
    /// Whether `m_inv` is stale with respect to `chol`.
    inverse_stale: bool,
    /// Cholesky factor of the current `M`, refreshed after every update; responses are two
    /// triangular solves with it (O(n²), no allocation).
    chol: CholeskyWorkspace<T>,
    /// n×n scratch for mean-field and error computations.
    scratch_a: DMatrix<T>,
    /// A second n×n scratch buffer.
    scratch_b: DMatrix<T>,
}

impl<T: Scalar> DirectCircuit<T> {
    /// A circuit of `n` primary neurons at `M₀ = s·I` with learning rate `η ∈ (0, 1)`.
    pub fn new(n: usize, eta: f64, scale: f64) -> Result<Self, CircuitError> {
        if n == 0 {
            return Err(CircuitError::ZeroDimension);
        }
        let mut c = Self {
            eta: check_eta(eta)?,
            scale: check_scale(scale)?,
            m: DMatrix::zeros(n, n),
            m_inv: DMatrix::zeros(n, n),
            inverse_stale: true,
            chol: CholeskyWorkspace::new(n),
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
        };
        c.reinitialise(scale)?;
        Ok(c)
    }

    /// The recurrent matrix `M`.
    pub fn m(&self) -> &DMatrix<T> {
        &self.m
    }

    /// Replace the state by a given Hermitian positive-definite `M` (e.g. restored state).
    pub fn set_m(&mut self, m: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(m, self.dim())?;
        self.chol.factor(m)?;
        self.m.copy_from(m);
        mirror_lower(&mut self.m);
        self.inverse_stale = true;
        Ok(())
    }

    /// `M ← M + Δ` for a Hermitian `Δ` (lower triangle read), then refresh the factor. If the
    /// result is not positive definite the state is left exactly as it was and the error
    /// returned, so the caller can choose a safeguard (block learning integrates the circuit's
    /// dynamics in steps of its own, docs/DESIGN.md §4).
    pub fn add_to_m(&mut self, delta: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(delta, self.dim())?;
        let n = self.dim();
        let nn = n * n;
        let (m, saved) = (self.m.as_mut_slice(), self.scratch_a.as_mut_slice());
        saved.copy_from_slice(m);
        with_dim!(n, d => add_lower_mirrored(d, &mut m[..nn], &delta.as_slice()[..nn]));
        if let Err(e) = self.refresh_factor() {
            std::mem::swap(&mut self.m, &mut self.scratch_a);
            self.refresh_factor()?;
            return Err(e);
        }
        Ok(())
    }

    /// `M ← M + η D` for a Hermitian `D` given in `scratch_b` (lower triangle read), then
    /// refresh `M⁻¹`.
    fn apply_gradient_from_scratch(&mut self) -> Result<(), CircuitError> {
        let n = self.dim();
        let eta = T::from_real(self.eta);
        for j in 0..n {
            for i in j..n {
                self.m[(i, j)] += eta * self.scratch_b[(i, j)];
            }
        }
        mirror_lower(&mut self.m);
        self.refresh_factor()
    }

    /// Re-factorise `M` after an update.
    fn refresh_factor(&mut self) -> Result<(), CircuitError> {
        self.inverse_stale = true;
        self.chol.factor(&self.m)
    }

    /// Bring `m_inv` up to date with the factor.
    fn ensure_inverse(&mut self) {
        if self.inverse_stale {
            self.chol.inverse_into(&mut self.m_inv);
            self.inverse_stale = false;
        }
    }
}

impl<T: Scalar> Circuit<T> for DirectCircuit<T> {
    fn kind(&self) -> WhitenerKind {
        WhitenerKind::Direct
    }

    fn dim(&self) -> usize {
        self.m.nrows()
    }

    fn learning_rate(&self) -> f64 {
        self.eta
    }

    fn set_learning_rate(&mut self, eta: f64) -> Result<(), CircuitError> {
        self.eta = check_eta(eta)?;
        Ok(())
    }

    fn init_scale(&self) -> f64 {
        self.scale
    }

    fn reinitialise(&mut self, scale: f64) -> Result<(), CircuitError> {
        self.scale = check_scale(scale)?;
        self.m.fill_with_identity();
        self.m *= T::from_real(scale);
        self.refresh_factor()
    }

    fn respond(&self, x: &[T], r: &mut [T]) {
        r.copy_from_slice(x);
        self.chol.solve_in_place(r);
    }

    fn step(&mut self, x: &[T], r: &mut [T]) -> Result<(), CircuitError> {
        self.respond(x, r);
        // M ← M + η (r rᴴ − I), written triangle by triangle so M stays exactly Hermitian.
        let n = self.dim();
        let eta = T::from_real(self.eta);
        for j in 0..n {
            let rj = r[j].conjugate() * eta;
            for i in j..n {
                self.m[(i, j)] += r[i] * rj;
            }
            self.m[(j, j)] -= eta;
        }
        mirror_lower(&mut self.m);
        self.refresh_factor()
    }

    fn step_outer(&mut self, r_outer_mean: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(r_outer_mean, self.dim())?;
        self.scratch_b.copy_from(r_outer_mean);
        for i in 0..self.dim() {
            self.scratch_b[(i, i)] -= T::one();
        }
        self.apply_gradient_from_scratch()
    }

    fn mean_field_step(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(c, self.dim())?;
        self.ensure_inverse();
        // D = M⁻¹ C M⁻¹ − I
        matmul_into(&mut self.scratch_a, c, &self.m_inv);
        matmul_into(&mut self.scratch_b, &self.m_inv, &self.scratch_a);
        for i in 0..self.dim() {
            self.scratch_b[(i, i)] -= T::one();
        }
        self.apply_gradient_from_scratch()
    }

    fn recurrent_matrix_into(&self, out: &mut DMatrix<T>) {
        out.copy_from(&self.m);
    }

    fn inverse_recurrent_matrix_into(&mut self, out: &mut DMatrix<T>) {
        self.ensure_inverse();
        out.as_mut_slice().copy_from_slice(self.m_inv.as_slice());
    }

    fn whitening_error(&mut self, c: &DMatrix<T>) -> f64 {
        self.ensure_inverse();
        whitening_error_with_inverse(&self.m_inv, c, &mut self.scratch_a, &mut self.scratch_b)
    }
}

/// `m ← m + Δ` over the lower triangle of the Hermitian `Δ`, then [`mirror_lower_in`].
#[inline(always)]
fn add_lower_mirrored<T: Scalar, D: Dim>(d: D, m: &mut [T], delta: &[T]) {
    let n = d.get();
    let (m, delta) = (&mut m[..n * n], &delta[..n * n]);
    for j in 0..n {
        for i in j..n {
            m[i + j * n] += delta[i + j * n];
        }
    }
    mirror_lower_in(d, m);
}
