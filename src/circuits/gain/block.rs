//! The gain-modulating circuit's block rule (docs/DESIGN.md §4.3): one sub-step of its expected
//! per-sample dynamics over a block whose response outer product is `R = P X P`.
//!
//! In the circuits' time `τ = η_g t` the per-sample updates of §2.9 have the mean dynamics
//!
//! ```text
//!     dg_l/dτ = d_l = w_lᴴ R w_l − ‖w_l‖²           (E|z_l|² − ‖w_l‖²)
//!     dW/dτ   = ρ (R − I) W diag(g)                 (ρ = η_w/η_g; E[r nᴴ] = R W G)
//! ```
//!
//! The gains are stiff where the input is quiet: linearised, `d` changes with `g` by the
//! Jacobian `−J`, `J_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ R w_l)]`, symmetric positive semidefinite
//! (a Schur product of the Gram matrices of `W` under `P` and `R`), whose scale is `n/μ` for
//! the eigenvalues `μ` of `M` — as for the direct circuit, times the frame's `λ_max(Φ(I)) = n`.
//! The sub-step is therefore linearly implicit (Rosenbrock–Euler):
//!
//! ```text
//!     (I + h J) δg = h d,
//! ```
//!
//! which for the linearised dynamics multiplies the distance to the fixed point by
//! `(I + hJ)⁻¹`, eigenvalues in `(0, 1]`: stable and monotone for every `h`, the Euler step
//! `h d` where `h J ≪ 1`, and linear in `X`, so a noisy block moves the gains by its mean
//! dynamics. (A diagonal, per-interneuron exponential step with a Gershgorin rate was tried
//! first: stable too, but where `M` is small the pairs' columns couple every gain strongly and
//! the mode that shapes `M`'s off-diagonal moved at a fraction `λ/D` of its rate per sub-step —
//! a −40 dB step took 8.6 s to readapt against 0.3 s per sample.) `J` is k×k, formed over the
//! columns' supports in O(k²) on the pairs frame and factorised in O(k³/6): cheap for the
//! channel counts the race allows this circuit (docs/DESIGN.md §4.3). The length `h` is the
//! largest up to `left` whose relative change of `M`, `‖P^{1/2} ΔM P^{1/2}‖_F` (exact), stays
//! within the caller's limit — which also keeps `M + ΔM ⪰ (1 − limit) M` positive definite. The
//! synapses (if plastic) take an explicit step of the same `h` with the gains before the step.

use super::GainModulatingCircuit;
use crate::circuits::linalg::{mirror_lower, CholeskyWorkspace};
use crate::circuits::{matmul_into, CircuitError, Scalar};
use nalgebra::DMatrix;

/// Largest `h ρ |g_l| (1 + ‖R‖)` of the synapses' explicit step.
const MAX_SYNAPTIC_STEP: f64 = 0.5;

/// Step-length reductions tried before the gain step is scaled down to the limit directly.
const MAX_REDUCTIONS: usize = 8;

/// Scratch of the block rule, allocated with the circuit.
#[derive(Clone, Debug)]
pub(super) struct BlockScratch<T: Scalar> {
    /// `ΔM`.
    f: DMatrix<T>,
    /// n×n scratch: `P ΔM`.
    a: DMatrix<T>,
    /// `P W` (n×k).
    pw: DMatrix<T>,
    /// The Jacobian `J` (k×k, real symmetric).
    jac: DMatrix<f64>,
    /// `I/h + J`, whose factor solves the implicit step.
    system: DMatrix<f64>,
    /// Cholesky factor of `system`.
    chol: CholeskyWorkspace<f64>,
    /// The gains' drift `d_l` (length k).
    drift: Vec<f64>,
}

impl<T: Scalar> BlockScratch<T> {
    /// Scratch for `n` primary neurons and `k` interneurons.
    pub(super) fn new(n: usize, k: usize) -> Self {
        Self {
            f: DMatrix::zeros(n, n),
            a: DMatrix::zeros(n, n),
            pw: DMatrix::zeros(n, k),
            jac: DMatrix::zeros(k, k),
            system: DMatrix::zeros(k, k),
            chol: CholeskyWorkspace::new(k),
            drift: vec![0.0; k],
        }
    }
}

/// The Gershgorin bound on a Hermitian matrix's spectral radius (`|re| + |im|` moduli).
fn gershgorin<T: Scalar>(m: &DMatrix<T>) -> f64 {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)].norm1()).sum::<f64>())
        .fold(0.0, f64::max)
}

impl<T: Scalar> GainModulatingCircuit<T> {
    /// One sub-step of the block rule (module docs) of at most `left` units of `τ`, for the
    /// responses' mean outer product `r` (`R = P X P` with the current `P = M⁻¹`, Hermitian,
    /// both triangles), with the relative change of `M` held to `max_change`. Returns the
    /// length taken. No allocation. On error the circuit's state is unusable: reinitialise.
    pub fn block_substep(
        &mut self,
        r: &DMatrix<T>,
        left: f64,
        max_change: f64,
    ) -> Result<f64, CircuitError> {
        let (n, k) = self.w.shape();
        self.ensure_inverse();
        // R W over each column's support; d_l = w_lᴴ R w_l − ‖w_l‖².
        for l in 0..k {
            let rows = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
            let mut col = self.rw.column_mut(l);
            col.fill(T::zero());
            for &a in rows {
                let wal = self.w[(a, l)];
                for i in 0..n {
                    col[i] += r[(i, a)] * wal;
                }
            }
            let mut q = 0.0;
            for &a in rows {
                q += (self.w[(a, l)].conjugate() * self.rw[(a, l)]).real();
            }
            self.blk.drift[l] = q - self.w_norm2[l];
        }
        // P W over each column's support.
        for l in 0..k {
            let rows = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
            let mut col = self.blk.pw.column_mut(l);
            col.fill(T::zero());
            for &a in rows {
                let wal = self.w[(a, l)];
                for i in 0..n {
                    col[i] += self.m_inv[(i, a)] * wal;
                }
            }
        }
        // J ⪯ c J₀ with c = max(1, λ_max(R)) (Gershgorin bound) and J₀ = J at R = I.
        let c = gershgorin(r).max(1.0);
        for l in 0..k {
            let rows_l = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
            for j in 0..=l {
                let rows_j = &self.support_rows[self.support_start[j]..self.support_start[j + 1]];
                let mut a = T::zero();
                for &i in rows_l {
                    a += self.w[(i, l)].conjugate() * self.blk.pw[(i, j)];
                }
                let mut b = T::zero();
                for &i in rows_j {
                    b += self.w[(i, j)].conjugate() * self.w[(i, l)];
                }
                let v = 2.0 * c * (a * b).real();
                self.blk.jac[(l, j)] = v;
                self.blk.jac[(j, l)] = v;
            }
        }
        let mut h = left;
        if self.plastic {
            let gmax = self.g.iter().fold(0.0f64, |a, g| a.max(g.abs()));
            let rho = self.eta_w / self.eta_g;
            let rate = rho * gmax * (1.0 + gershgorin(r));
            if rate > 0.0 {
                h = h.min(MAX_SYNAPTIC_STEP / rate);
            }
        }
        // The largest h ≤ left within the change limit (the change grows with h).
        let mut change = 0.0;
        for _ in 0..MAX_REDUCTIONS {
            self.implicit_step(h)?;
            change = self.relative_change_of_dg();
            if change <= max_change {
                break;
            }
            h *= 0.9 * max_change / change;
        }
        if change > max_change {
            self.dg *= max_change / change;
        }
        if self.plastic {
            // W ← W + h ρ (R − I) W G with the gains before the step.
            let rho = self.eta_w / self.eta_g;
            for l in 0..k {
                let c = T::from_real(h * rho * self.g[l]);
                for (w, &rw) in self
                    .w
                    .column_mut(l)
                    .iter_mut()
                    .zip(self.rw.column(l).iter())
                {
                    *w += c * (rw - *w);
                }
            }
            self.synapses_changed();
        }
        self.g += &self.dg;
        self.refresh()?;
        Ok(h)
    }

    /// `δg` of the linearly implicit step of length `h` into `dg`: `(I/h + J) δg = d`.
    fn implicit_step(&mut self, h: f64) -> Result<(), CircuitError> {
        let b = &mut self.blk;
        b.system.copy_from(&b.jac);
        for l in 0..b.system.nrows() {
            b.system[(l, l)] += 1.0 / h;
        }
        b.chol.factor(&b.system)?;
        self.dg.as_mut_slice().copy_from_slice(&b.drift);
        b.chol.solve_in_place(self.dg.as_mut_slice());
        Ok(())
    }

    /// `ΔM = Σ_l δg_l w_l w_lᴴ` into `blk.f` (both triangles), over each column's support.
    fn outer_sum_into(&mut self) {
        let f = &mut self.blk.f;
        f.fill(T::zero());
        for l in 0..self.w.ncols() {
            let c = T::from_real(self.dg[l]);
            let rows = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
            for (p, &i) in rows.iter().enumerate() {
                let cw = self.w[(i, l)] * c;
                for &j in &rows[..=p] {
                    f[(i, j)] += cw * self.w[(j, l)].conjugate();
                }
            }
        }
        mirror_lower(f);
    }

    /// `‖P^{1/2} ΔM P^{1/2}‖_F = √Tr(P ΔM P ΔM)` for `ΔM = W diag(dg) Wᴴ`.
    fn relative_change_of_dg(&mut self) -> f64 {
        self.outer_sum_into();
        let b = &mut self.blk;
        matmul_into(&mut b.a, &self.m_inv, &b.f);
        let n = b.a.nrows();
        let mut tr = 0.0;
        for i in 0..n {
            for j in 0..n {
                tr += (b.a[(i, j)] * b.a[(j, i)]).real();
            }
        }
        tr.max(0.0).sqrt()
    }
}
