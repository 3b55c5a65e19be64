//! The circuit whose recurrence runs through interneurons (docs/DESIGN.md §2.1).

use super::linalg::{
    matmul_into, mirror_lower, mirror_lower_in, whitening_error_with_inverse, CholeskyWorkspace,
};
use super::{
    check_eta, check_scale, check_square, Circuit, CircuitError, Dim, Fixed, InterneuronBasis,
    Scalar, WhitenerKind,
};
use crate::with_dim;
use nalgebra::{DMatrix, DVector, DVectorView, DVectorViewMut};

/// How `M⁻¹ = (W Wᴴ)⁻¹` is kept up to date after a per-sample update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Re-form `M = W Wᴴ` and factorise it after every update: O(n²k + n³) per step. The
    /// reference the fast path is checked against.
    Naive,
    /// The per-sample update is `W' = A W` with `A = (1−η) I + η r rᴴ` (because
    /// `r zᴴ = r rᴴ W`), so `M'⁻¹ = A⁻¹ M⁻¹ A⁻¹` and `A⁻¹` is a Sherman–Morrison rank-one
    /// correction of a scaled identity: O(n² + nk) per step. `M⁻¹` is re-formed from `W` every
    /// `refactor_period` steps so that rounding cannot accumulate.
    ShermanMorrison {
        /// Steps between exact re-factorisations.
        refactor_period: u32,
    },
}

impl Default for Solver {
    fn default() -> Self {
        Solver::ShermanMorrison {
            refactor_period: 1024,
        }
    }
}

/// Primary neurons whose recurrence is mediated by `k ≥ n` interneurons with synapses `W`
/// (n×k): `r = (W Wᴴ)⁻¹ x`, interneuron activity `z = Wᴴ r`, learning
/// `W ← W + η (r zᴴ − W)`.
///
/// This over-parameterises the direct circuit (`M = W Wᴴ`); the induced dynamics on `M` are
/// `M ← M + η (M (M⁻¹CM⁻¹ − I) + (M⁻¹CM⁻¹ − I) M) + O(η²)`, i.e. multiplicative in `M`: from
/// `M₀ = s·I` the eigenvalues decay geometrically, so the convergence time grows only like
/// `log s`.
#[derive(Clone, Debug)]
pub struct InterneuronCircuit<T: Scalar> {
    /// Learning rate η per update.
    eta: f64,
    /// Scale of the last (re-)initialisation.
    scale: f64,
    /// Orthonormal rows `Q` of the initialisation `W₀ = √s Q`, kept for resets.
    q: DMatrix<T>,
    /// How `Q` was chosen (reported, and needed to rebuild the circuit with a new `k`).
    basis: InterneuronBasis,
    /// Synapses between primary neurons and interneurons, n×k.
    w: DMatrix<T>,
    /// Cached `M⁻¹ = (W Wᴴ)⁻¹`.
    m_inv: DMatrix<T>,
    /// Strategy for refreshing `m_inv` after per-sample steps.
    solver: Solver,
    /// Per-sample steps since `m_inv` was last re-formed exactly.
    steps_since_refactor: u32,
    /// Factorisation of `M` from the last exact refresh (the naive path solves with it).
    chol: CholeskyWorkspace<T>,
    /// `M = W Wᴴ` scratch, n×n.
    m_scratch: DMatrix<T>,
    /// n×n scratch buffers for mean-field and error computations.
    scratch_a: DMatrix<T>,
    /// A second n×n scratch buffer.
    scratch_b: DMatrix<T>,
    /// n×k scratch for `D W`.
    dw: DMatrix<T>,
    /// Interneuron activity `z = Wᴴ r`, length k.
    z: DVector<T>,
    /// `u = M⁻¹ r` for the Sherman–Morrison update, length n.
    u: DVector<T>,
}

impl<T: Scalar> InterneuronCircuit<T> {
    /// A circuit of `n` primary neurons and `k ≥ n` interneurons at `W₀ = √s Q`.
    pub fn new(
        n: usize,
        k: usize,
        eta: f64,
        scale: f64,
        basis: InterneuronBasis,
        solver: Solver,
    ) -> Result<Self, CircuitError> {
        let q = basis.rows::<T>(n, k)?;
        let solver = match solver {
            Solver::ShermanMorrison { refactor_period: 0 } => {
                Solver::ShermanMorrison { refactor_period: 1 }
            }
            s => s,
        };
        let mut c = Self {
            eta: check_eta(eta)?,
            scale: check_scale(scale)?,
            q,
            basis,
            w: DMatrix::zeros(n, k),
            m_inv: DMatrix::zeros(n, n),
            solver,
            steps_since_refactor: 0,
            chol: CholeskyWorkspace::new(n),
            m_scratch: DMatrix::zeros(n, n),
            scratch_a: DMatrix::zeros(n, n),
            scratch_b: DMatrix::zeros(n, n),
            dw: DMatrix::zeros(n, k),
            z: DVector::zeros(k),
            u: DVector::zeros(n),
        };
        c.reinitialise(scale)?;
        Ok(c)
    }

    /// Number of interneurons `k`.
    pub fn interneurons(&self) -> usize {
        self.w.ncols()
    }

    /// The synapses `W` (n×k).
    pub fn w(&self) -> &DMatrix<T> {
        &self.w
    }

    /// The basis `Q` was drawn from.
    pub fn basis(&self) -> InterneuronBasis {
        self.basis
    }

    /// The solver in use.
    pub fn solver(&self) -> Solver {
        self.solver
    }

    /// Interneuron activity `z = Wᴴ r` of the last per-sample step.
    pub fn interneuron_activity(&self) -> &[T] {
        self.z.as_slice()
    }

    /// Replace the synapses (e.g. restored state); `W Wᴴ` must be positive definite.
    pub fn set_w(&mut self, w: &DMatrix<T>) -> Result<(), CircuitError> {
        if w.shape() != self.w.shape() {
            return Err(CircuitError::DimensionMismatch {
                expected: self.w.len(),
                got: w.len(),
            });
        }
        let old = std::mem::replace(&mut self.w, w.clone());
        if let Err(e) = self.refactor() {
            self.w = old;
            self.refactor()?;
            return Err(e);
        }
        Ok(())
    }

    /// Re-form `M = W Wᴴ`, factorise it and refresh `M⁻¹` exactly.
    fn refactor(&mut self) -> Result<(), CircuitError> {
        self.steps_since_refactor = 0;
        form_gram(&self.w, &mut self.m_scratch);
        self.chol.factor(&self.m_scratch)?;
        self.chol.inverse_into(&mut self.m_inv);
        Ok(())
    }

    /// [`Circuit::step_outer`] for n ≤ 2: `W ← W + η (R − I) W` column by column (each
    /// column of the product needs only the same column of `W`), with `R − I` made exactly
    /// Hermitian from its lower triangle as [`Self::apply_gradient_from_scratch`] does — the
    /// same operations in the same order, then the exact refresh.
    #[inline(always)]
    fn step_outer_small<D: Dim>(&mut self, d: D, r: &[T]) -> Result<(), CircuitError> {
        let n = d.get();
        let r = &r[..n * n];
        let mut dm = [T::zero(); 4];
        let dm = &mut dm[..n * n];
        dm.copy_from_slice(r);
        for j in 0..n {
            dm[j + j * n] -= T::one();
        }
        mirror_lower_in(d, dm);
        let eta = T::from_real(self.eta);
        for col in self.w.as_mut_slice().chunks_exact_mut(n) {
            let col = &mut col[..n];
            let mut dw = [T::zero(); 2];
            for m in 0..n {
                for i in 0..n {
                    dw[i] += dm[i + m * n] * col[m];
                }
            }
            for i in 0..n {
                col[i] += eta * dw[i];
            }
        }
        self.refactor()
    }

    /// `W ← W + η D W` for a Hermitian `D` in `scratch_b`, then an exact refresh.
    fn apply_gradient_from_scratch(&mut self) -> Result<(), CircuitError> {
        mirror_lower(&mut self.scratch_b);
        matmul_into(&mut self.dw, &self.scratch_b, &self.w);
        let eta = T::from_real(self.eta);
        for (w, dw) in self.w.as_mut_slice().iter_mut().zip(self.dw.as_slice()) {
            *w += eta * *dw;
        }
        self.refactor()
    }

    /// `M⁻¹ ← A⁻¹ M⁻¹ A⁻¹` for `A = aI + η r rᴴ`, `a = 1 − η`. With `u = M⁻¹ r`,
    /// `γ = rᴴ u` and `c = η / (a + η‖r‖²)`:
    /// `M'⁻¹ = (M⁻¹ − c (r uᴴ + u rᴴ) + c² γ r rᴴ) / a²`.
    fn sherman_morrison(&mut self, r: &[T]) {
        let n = self.dim();
        let rv = DVectorView::from_slice(r, n);
        self.u.gemv(T::one(), &self.m_inv, &rv, T::zero());
        let gamma = rv.dotc(&self.u).real();
        let r_norm2: f64 = r.iter().map(|v| v.modulus_squared()).sum();
        let a = 1.0 - self.eta;
        let c = self.eta / (a + self.eta * r_norm2);
        let inv_a2 = T::from_real(1.0 / (a * a));
        let c_t = T::from_real(c);
        let c2g = T::from_real(c * c * gamma);
        for j in 0..n {
            let rj = r[j].conjugate();
            let uj = self.u[j].conjugate();
            for i in j..n {
                let p = self.m_inv[(i, j)] - c_t * (r[i] * uj + self.u[i] * rj) + c2g * r[i] * rj;
                self.m_inv[(i, j)] = p * inv_a2;
            }
        }
        mirror_lower(&mut self.m_inv);
    }
}

/// `out = W Wᴴ`, exactly Hermitian.
fn form_gram<T: Scalar>(w: &DMatrix<T>, out: &mut DMatrix<T>) {
    with_dim!(w.nrows(), d => form_gram_in(d, w.as_slice(), out.as_mut_slice()));
}

/// [`form_gram`] over column-major slices, `w` n×k, `out` n×n.
#[inline(always)]
fn form_gram_in<T: Scalar, D: Dim>(d: D, w: &[T], out: &mut [T]) {
    let n = d.get();
    let out = &mut out[..n * n];
    for j in 0..n {
        for i in j..n {
            let mut acc = T::zero();
            for col in w.chunks_exact(n) {
                acc += col[i] * col[j].conjugate();
            }
            out[i + j * n] = acc;
        }
    }
    mirror_lower_in(d, out);
}

impl<T: Scalar> Circuit<T> for InterneuronCircuit<T> {
    fn kind(&self) -> WhitenerKind {
        WhitenerKind::Interneuron
    }

    fn dim(&self) -> usize {
        self.w.nrows()
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
        self.w.copy_from(&self.q);
        self.w *= T::from_real(scale.sqrt());
        self.refactor()
    }

    fn respond(&self, x: &[T], r: &mut [T]) {
        let n = self.dim();
        let x = DVectorView::from_slice(x, n);
        let mut r = DVectorViewMut::from_slice(r, n);
        r.gemv(T::one(), &self.m_inv, &x, T::zero());
    }

    fn step(&mut self, x: &[T], r: &mut [T]) -> Result<(), CircuitError> {
        let n = self.dim();
        match self.solver {
            Solver::Naive => {
                // r = M⁻¹x by triangular solves with the factor of the current M.
                r.copy_from_slice(x);
                self.chol.solve_in_place(r);
            }
            Solver::ShermanMorrison { .. } => self.respond(x, r),
        }
        // z = Wᴴ r, then W ← (1 − η) W + η r zᴴ.
        let rv = DVectorView::from_slice(r, n);
        self.z.gemv_ad(T::one(), &self.w, &rv, T::zero());
        let eta = T::from_real(self.eta);
        self.w.gerc(eta, &rv, &self.z, T::from_real(1.0 - self.eta));
        match self.solver {
            Solver::Naive => self.refactor(),
            Solver::ShermanMorrison { refactor_period } => {
                self.steps_since_refactor += 1;
                if self.steps_since_refactor >= refactor_period {
                    self.refactor()
                } else {
                    self.sherman_morrison(r);
                    let d = self.m_inv[(0, 0)].real();
                    if d.is_finite() && d > 0.0 {
                        Ok(())
                    } else {
                        self.refactor()
                    }
                }
            }
        }
    }

    fn step_outer(&mut self, r_outer_mean: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(r_outer_mean, self.dim())?;
        // n ≤ 2 (stereo, and every spectral band of a stereo input): the same step over slices
        // of a fixed size (docs/DESIGN.md §9).
        match self.dim() {
            1 => return self.step_outer_small(Fixed::<1>, r_outer_mean.as_slice()),
            2 => return self.step_outer_small(Fixed::<2>, r_outer_mean.as_slice()),
            _ => {}
        }
        self.scratch_b.copy_from(r_outer_mean);
        for i in 0..self.dim() {
            self.scratch_b[(i, i)] -= T::one();
        }
        self.apply_gradient_from_scratch()
    }

    fn mean_field_step(&mut self, c: &DMatrix<T>) -> Result<(), CircuitError> {
        check_square(c, self.dim())?;
        matmul_into(&mut self.scratch_a, c, &self.m_inv);
        matmul_into(&mut self.scratch_b, &self.m_inv, &self.scratch_a);
        for i in 0..self.dim() {
            self.scratch_b[(i, i)] -= T::one();
        }
        self.apply_gradient_from_scratch()
    }

    fn recurrent_matrix_into(&self, out: &mut DMatrix<T>) {
        form_gram(&self.w, out);
    }

    fn inverse_recurrent_matrix_into(&mut self, out: &mut DMatrix<T>) {
        out.as_mut_slice().copy_from_slice(self.m_inv.as_slice());
    }

    fn whitening_error(&mut self, c: &DMatrix<T>) -> f64 {
        whitening_error_with_inverse(&self.m_inv, c, &mut self.scratch_a, &mut self.scratch_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Complex;

    /// The fixed-size block step gives the bits of the general one (`R − I` through the
    /// scratch matrix and the general product), for square and wide `W`.
    fn small_step_matches_general<T: Scalar>(n: usize, k: usize) {
        let basis = InterneuronBasis::Random { seed: 7 };
        let c = InterneuronCircuit::<T>::new(n, k, 0.2, 1.5, basis, Solver::Naive).unwrap();
        let r = DMatrix::<T>::from_fn(n, n, |i, j| {
            // Not exactly Hermitian, as a product P X P in floating point is not.
            T::from_parts(
                0.3 + (i * 3 + j) as f64 * 0.11,
                (i as f64 - j as f64) * 0.07 + 1e-9,
            )
        });
        let (mut small, mut general) = (c.clone(), c);
        match n {
            1 => small.step_outer_small(Fixed::<1>, r.as_slice()).unwrap(),
            _ => small.step_outer_small(Fixed::<2>, r.as_slice()).unwrap(),
        }
        general.scratch_b.copy_from(&r);
        for i in 0..n {
            general.scratch_b[(i, i)] -= T::one();
        }
        general.apply_gradient_from_scratch().unwrap();
        assert_eq!(small.w, general.w, "n = {n}, k = {k}");
        assert_eq!(small.m_inv, general.m_inv, "n = {n}, k = {k}");
    }

    #[test]
    fn fixed_size_step_outer_matches_the_general_step() {
        for (n, k) in [(1, 1), (1, 3), (2, 2), (2, 5)] {
            small_step_matches_general::<f64>(n, k);
            small_step_matches_general::<Complex<f64>>(n, k);
        }
    }
}
