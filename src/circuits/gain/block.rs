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
//! the eigenvalues `μ` of `M` — as for the direct circuit, times the pairs frame's
//! `λ_max(Φ(I)) = n`. The sub-step is therefore linearly implicit (Rosenbrock–Euler), with `J`
//! replaced by the bound `c J₀ ⪰ J` — `J₀` is `J` at the optimum `R = I`, `c = max(1, λ_max(R))`
//! (by warm power iteration), and the Schur product is monotone in `R`:
//!
//! ```text
//!     (I/h + c J₀) δg = d.
//! ```
//!
//! For the linearised dynamics this multiplies the distance to the fixed point by
//! `I − (I/h + cJ₀)⁻¹ J`, eigenvalues in `(0, 1]`: stable and monotone for every `h`, the Euler
//! step `h d` where `h c J₀ ≪ 1`. Near the optimum (`c = 1`) it is exactly linear in `X`, so a
//! noisy block moves the gains by its mean dynamics instead of taking a Newton step to the block's
//! own noisy optimum. `J₀` is k×k, formed over the columns' supports; `I/h + c J₀` is
//! factorised in O(k³/6). At rest `P` repeats from block to block, and the factor is reused
//! while `P` and `c` stay within [`REUSE_CHANGE`] of those it was formed with; `J₀` itself is
//! kept until `P` has moved by [`REUSE_CHANGE`], so a new `h` or `c` costs only the factor (for
//! the `k` ≤ 4 of stereo and of stereo spectral bands, at a size fixed at compile time). The
//! length `h` is the largest up to `left` whose relative change of `M`, `‖P^{1/2} ΔM
//! P^{1/2}‖_F` (exact), stays within the caller's limit — which also keeps
//! `M + ΔM ⪰ (1 − limit) M` positive definite.
//! The synapses (if plastic) take an explicit step of the same `h` with the gains before the
//! step. Forms tried and dropped: docs/DESIGN.md §4.3.

use super::{dense, GainModulatingCircuit};
use crate::circuits::linalg::{mirror_lower, CholeskyWorkspace};
use crate::circuits::{matmul_into, CircuitError, Fixed, Scalar};
use nalgebra::DMatrix;

/// Largest `h ρ |g_l| (1 + ‖R‖)` of the synapses' explicit step.
const MAX_SYNAPTIC_STEP: f64 = 0.5;

/// Step-length reductions tried before the gain step is scaled down to the limit directly.
const MAX_REDUCTIONS: usize = 8;

/// Relative change of `P` (Frobenius) and of `c` up to which the last factor of `I/h + c J₀`
/// is reused: the step then uses a preconditioner within about 10 % of the current one, whose
/// error propagator keeps its eigenvalues near `[0, 1)` — still stable and nearly monotone.
const REUSE_CHANGE: f64 = 0.1;

/// Power iterations per sub-step for `λ_max(R)`.
const POWER_ITERATIONS: usize = 4;

/// Scratch of the block rule, allocated with the circuit.
#[derive(Clone, Debug)]
pub(super) struct BlockScratch<T: Scalar> {
    /// `ΔM`.
    f: DMatrix<T>,
    /// n×n scratch: `P ΔM`.
    a: DMatrix<T>,
    /// `P W` (n×k).
    pw: DMatrix<T>,
    /// The Jacobian at the optimum `J₀` for `p_formed` (k×k, real symmetric), valid while
    /// `jac_formed`.
    jac: DMatrix<f64>,
    /// Whether `jac` holds `J₀` for the current synapses.
    jac_formed: bool,
    /// `I/h + c J₀`, whose factor solves the implicit step.
    system: DMatrix<f64>,
    /// Cholesky factor of `system`.
    chol: CholeskyWorkspace<f64>,
    /// The Gram entries `w_jᴴ w_l` (`j ≤ l`, k×k column-major) of `J₀` for n ≤ 2, valid while
    /// `synapses_formed`.
    gram: Vec<T>,
    /// The columns' coefficients in the real coordinates of 2×2 Hermitian matrices (n ≤ 2,
    /// [`dense::column_coefficients`]), valid while `synapses_formed`.
    coef: Vec<[f64; 4]>,
    /// Whether `gram` and `coef`, which change only with the synapses, hold the current ones'.
    synapses_formed: bool,
    /// The gains' drift `d_l` (length k).
    drift: Vec<f64>,
    /// `P` when `jac` was formed: at rest `P` repeats from block to block, and so may the factor.
    p_formed: DMatrix<T>,
    /// `(h, c)` of the factor in `chol`; `h = 0` when there is none to reuse.
    formed: (f64, f64),
    /// The power iteration's vector for `λ_max(R)`, warm from block to block (length n).
    v: Vec<T>,
    /// Power iteration scratch (length n).
    u: Vec<T>,
    /// Factorisations of `I/h + c J₀` in the last sub-step (its cost, O(k³/6) each).
    pub(super) factorisations: usize,
}

impl<T: Scalar> BlockScratch<T> {
    /// Scratch for `n` primary neurons and `k` interneurons.
    pub(super) fn new(n: usize, k: usize) -> Self {
        Self {
            f: DMatrix::zeros(n, n),
            a: DMatrix::zeros(n, n),
            pw: DMatrix::zeros(n, k),
            jac: DMatrix::zeros(k, k),
            jac_formed: false,
            system: DMatrix::zeros(k, k),
            chol: CholeskyWorkspace::new(k),
            gram: vec![T::zero(); k * k],
            coef: vec![[0.0; 4]; k],
            synapses_formed: false,
            drift: vec![0.0; k],
            p_formed: DMatrix::zeros(n, n),
            formed: (0.0, 0.0),
            v: vec![T::from_real(1.0 / (n as f64).sqrt()); n],
            u: vec![T::zero(); n],
            factorisations: 0,
        }
    }

    /// `λ_max` of the Hermitian positive semidefinite `r`: in closed form for n ≤ 2 (every
    /// spectral band of a mono or stereo input), otherwise by a few power iterations
    /// warm-started from the last vector (the largest Rayleigh quotient seen; within a few per
    /// cent at rest, and an underestimate by a factor below 2 still leaves the step stable).
    fn largest_eigenvalue(&mut self, r: &DMatrix<T>) -> f64 {
        match r.as_slice() {
            [r00] => return r00.real(),
            [r00, r10, _, r11] => {
                // (a + d)/2 + √(((a − d)/2)² + |b|²): one square root against four square
                // roots and divisions in sequence for the iteration.
                let (a, d) = (r00.real(), r11.real());
                let half = 0.5 * (a - d);
                return 0.5 * (a + d) + (half * half + r10.modulus_squared()).sqrt();
            }
            _ => {}
        }
        let n = r.nrows();
        let rs = r.as_slice();
        let mut best: f64 = 0.0;
        for _ in 0..POWER_ITERATIONS {
            let mut norm2 = 0.0;
            let mut quotient = 0.0;
            self.u.fill(T::zero());
            // u = R v by columns of R (column-major, contiguous).
            for (col, &vj) in rs.chunks_exact(n).zip(&self.v) {
                for (u, &rij) in self.u.iter_mut().zip(col) {
                    *u += rij * vj;
                }
            }
            for (u, v) in self.u.iter().zip(&self.v) {
                norm2 += u.modulus_squared();
                quotient += (v.conjugate() * *u).real();
            }
            best = best.max(quotient);
            let norm = norm2.sqrt();
            if !(norm.is_finite() && norm > 0.0) {
                // A zero or non-finite R: restart from the uniform vector next time.
                self.v.fill(T::from_real(1.0 / (n as f64).sqrt()));
                return if norm.is_finite() {
                    best
                } else {
                    f64::INFINITY
                };
            }
            for (v, u) in self.v.iter_mut().zip(&self.u) {
                *v = *u * T::from_real(1.0 / norm);
            }
        }
        best
    }

    /// Forget `J₀`, its factor, the Gram entries and the columns' coefficients (the synapses
    /// changed, so all of them did).
    pub(super) fn invalidate(&mut self) {
        self.formed = (0.0, 0.0);
        self.jac_formed = false;
        self.synapses_formed = false;
    }

    /// Form the Gram entries and the columns' coefficients of the synapses `w` (n ≤ 2) unless
    /// they are current.
    fn ensure_synapse_terms(&mut self, n: usize, w: &[T]) {
        if !self.synapses_formed {
            match n {
                1 => dense::gram(Fixed::<1>, w, &mut self.gram),
                _ => dense::gram(Fixed::<2>, w, &mut self.gram),
            }
            dense::column_coefficients(n, w, &mut self.coef);
            self.synapses_formed = true;
        }
    }

    /// `out = diag · I + Σ_l c_l w_l w_lᴴ` for n ≤ 2 through the columns' coefficients of `w`
    /// (the current synapses), formed here if they are not current.
    pub(super) fn small_outer_sum(
        &mut self,
        n: usize,
        w: &[T],
        out: &mut [T],
        diag: f64,
        c: &[f64],
    ) {
        self.ensure_synapse_terms(n, w);
        dense::outer_sum_from_coefficients(n, out, diag, &self.coef, c);
    }
}

impl<T: Scalar> GainModulatingCircuit<T> {
    /// One sub-step of the block rule (module docs) of at most `left` units of `τ`, for the
    /// responses' mean outer product `r` (`R = P X P` with the current `P = M⁻¹`, Hermitian,
    /// both triangles), with the relative change of `M` held to `max_change`. Returns the
    /// length taken. No allocation. On error the circuit's state is unusable: reinitialise.
    /// [`Self::block_factorisations`] tells what it cost.
    pub fn block_substep(
        &mut self,
        r: &DMatrix<T>,
        left: f64,
        max_change: f64,
    ) -> Result<f64, CircuitError> {
        let (n, k) = self.w.shape();
        self.ensure_inverse();
        // R W and d_l = w_lᴴ R w_l − ‖w_l‖²: over dense columns for n ≤ 2, else over each
        // column's support (column-major slices: column a of R and column l of W and R W are
        // contiguous).
        let rs = r.as_slice();
        let (ws, rw, drift) = (
            self.w.as_slice(),
            self.rw.as_mut_slice(),
            &mut self.blk.drift[..],
        );
        match n {
            // Fixed synapses (the race's): only the drift is needed, through the columns'
            // coefficients.
            1 | 2 if !self.plastic => {
                self.blk.ensure_synapse_terms(n, ws);
                let b = &mut self.blk;
                dense::drift_from_coefficients(&b.coef, rs, self.w_norm2.as_slice(), &mut b.drift);
            }
            1 => dense::drift(Fixed::<1>, ws, rs, self.w_norm2.as_slice(), rw, drift),
            2 => dense::drift(Fixed::<2>, ws, rs, self.w_norm2.as_slice(), rw, drift),
            _ => {
                for (l, ((wl, col), drift)) in ws
                    .chunks_exact(n)
                    .zip(rw.chunks_exact_mut(n))
                    .zip(drift.iter_mut())
                    .enumerate()
                {
                    let rows = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
                    col.fill(T::zero());
                    for &a in rows {
                        let wal = wl[a];
                        for (c, &ria) in col.iter_mut().zip(&rs[a * n..(a + 1) * n]) {
                            *c += ria * wal;
                        }
                    }
                    let q: f64 = rows
                        .iter()
                        .map(|&a| (wl[a].conjugate() * col[a]).real())
                        .sum();
                    *drift = q - self.w_norm2[l];
                }
            }
        }
        // J ⪯ c J₀ with c = max(1, λ_max(R)) (J₀ is J at R = I, and the Schur product is
        // monotone in R).
        let c = self.blk.largest_eigenvalue(r).max(1.0);
        self.blk.factorisations = 0;
        let mut h = left;
        if self.plastic {
            let gmax = self.g.iter().fold(0.0f64, |a, g| a.max(g.abs()));
            let rho = self.eta_w / self.eta_g;
            let rate = rho * gmax * (1.0 + c);
            if rate > 0.0 {
                h = h.min(MAX_SYNAPTIC_STEP / rate);
            }
        }
        // J₀ is re-formed once `P` has moved by [`REUSE_CHANGE`] since it was formed; the factor
        // of `I/h + c J₀` is reused while `J₀`, `h` and `c` repeat (module docs).
        let (p_near, reuse) = {
            let b = &self.blk;
            let (hf, cf) = b.formed;
            let (mut dp, mut pn) = (0.0, 0.0);
            for (x, y) in self.m_inv.as_slice().iter().zip(b.p_formed.as_slice()) {
                dp += (*x - *y).modulus_squared();
                pn += y.modulus_squared();
            }
            let p_near = b.jac_formed && dp <= REUSE_CHANGE.powi(2) * pn;
            let factor_fits = hf == h && (c / cf - 1.0).abs() <= REUSE_CHANGE;
            (p_near, p_near && factor_fits)
        };
        if !p_near {
            self.form_jacobian();
        }
        // The largest h ≤ left within the change limit (the change grows with h).
        let mut change = 0.0;
        for i in 0..MAX_REDUCTIONS {
            if i > 0 || !reuse {
                self.factor_system(h, c)?;
            }
            self.solve_step();
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
        for (g, dg) in self.g.as_mut_slice().iter_mut().zip(self.dg.as_slice()) {
            *g += dg;
        }
        self.refresh()?;
        Ok(h)
    }

    /// `J₀` into `blk.jac`, `J₀_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ w_l)]` for the current `P`
    /// (remembered in `p_formed`), over the supports; the factor formed with the last `J₀` is
    /// forgotten.
    fn form_jacobian(&mut self) {
        let n = self.w.nrows();
        if n <= 2 {
            let (w, p) = (self.w.as_slice(), self.m_inv.as_slice());
            let b = &mut self.blk;
            b.ensure_synapse_terms(n, w);
            let (pw, jac) = (b.pw.as_mut_slice(), b.jac.as_mut_slice());
            match n {
                1 => dense::jacobian(Fixed::<1>, w, &b.gram, p, pw, jac),
                _ => dense::jacobian(Fixed::<2>, w, &b.gram, p, pw, jac),
            }
        } else {
            self.form_jacobian_sparse();
        }
        let b = &mut self.blk;
        b.p_formed
            .as_mut_slice()
            .copy_from_slice(self.m_inv.as_slice());
        b.jac_formed = true;
        b.formed = (0.0, 0.0);
    }

    /// [`Self::form_jacobian`] over the columns' supports (n > 2), without `p_formed`.
    fn form_jacobian_sparse(&mut self) {
        let (n, k) = self.w.shape();
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
        for l in 0..k {
            let rows_l = &self.support_rows[self.support_start[l]..self.support_start[l + 1]];
            for j in 0..=l {
                let rows_j = &self.support_rows[self.support_start[j]..self.support_start[j + 1]];
                let mut b = T::zero();
                for &i in rows_j {
                    b += self.w[(i, j)].conjugate() * self.w[(i, l)];
                }
                if b == T::zero() {
                    // Disjoint supports (most pairs of the pairs frame's columns).
                    self.blk.jac[(l, j)] = 0.0;
                    self.blk.jac[(j, l)] = 0.0;
                    continue;
                }
                let mut a = T::zero();
                for &i in rows_l {
                    a += self.w[(i, l)].conjugate() * self.blk.pw[(i, j)];
                }
                let v = 2.0 * (a * b).real();
                self.blk.jac[(l, j)] = v;
                self.blk.jac[(j, l)] = v;
            }
        }
    }

    /// Factor `I/h + c J₀` (`blk.jac` holds `J₀`).
    fn factor_system(&mut self, h: f64, c: f64) -> Result<(), CircuitError> {
        let b = &mut self.blk;
        b.formed = (0.0, 0.0);
        let k = b.system.nrows();
        let (system, jac) = (b.system.as_mut_slice(), b.jac.as_slice());
        for (s, &j) in system.iter_mut().zip(jac) {
            *s = c * j;
        }
        for l in 0..k {
            system[l + l * k] += 1.0 / h;
        }
        b.factorisations += 1;
        b.chol.factor(&b.system)?;
        b.formed = (h, c);
        Ok(())
    }

    /// `δg` of the linearly implicit step into `dg`: `(I/h + c J₀) δg = d`, last factor.
    fn solve_step(&mut self) {
        self.dg.as_mut_slice().copy_from_slice(&self.blk.drift);
        self.blk.chol.solve_in_place(self.dg.as_mut_slice());
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
        let (w, dg, p) = (self.w.as_slice(), self.dg.as_slice(), self.m_inv.as_slice());
        let n = self.w.nrows();
        if n <= 2 {
            let b = &mut self.blk;
            b.ensure_synapse_terms(n, w);
            let f = b.f.as_mut_slice();
            dense::outer_sum_from_coefficients(n, f, 0.0, &b.coef, dg);
            return match n {
                1 => dense::relative_change(Fixed::<1>, p, f),
                _ => dense::relative_change(Fixed::<2>, p, f),
            };
        }
        self.outer_sum_into();
        let b = &mut self.blk;
        matmul_into(&mut b.a, &self.m_inv, &b.f);
        let n = b.a.nrows();
        let a = b.a.as_slice();
        let mut tr = 0.0;
        for (j, col) in a.chunks_exact(n).enumerate() {
            for (i, &aij) in col.iter().enumerate() {
                tr += (aij * a[j + i * n]).real();
            }
        }
        tr.max(0.0).sqrt()
    }
}

impl<T: Scalar> GainModulatingCircuit<T> {
    /// Factorisations of the k×k system in the last [`Self::block_substep`] (0 when the last
    /// factor was reused): each costs O(k³/6), against the sub-step's O(n³ + k²) otherwise.
    pub fn block_factorisations(&self) -> usize {
        self.blk.factorisations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Complex, DVector};

    /// The step's solve against a dense solve of `(I/h + c J₀) δg = d` (nalgebra's LU,
    /// independent of the factor), with `J₀` formed from its definition
    /// `J₀_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ w_l)]` over dense columns here: the dense kernels
    /// (n ≤ 2) and the support walks (n = 3), over ℝ and ℂ, for steps from Euler-like to stiff.
    fn factor_solve_matches_dense<T: Scalar>(n: usize) {
        let mut circuit = GainModulatingCircuit::<T>::racing(n, 1e-3, 1.0).unwrap();
        let k = circuit.w.ncols();
        let gains: Vec<f64> = (0..k)
            .map(|l| 0.2 + 0.6 * (l as f64 * 1.3).sin().abs())
            .collect();
        circuit.set_gains(&gains).unwrap();
        circuit.ensure_inverse();
        let p = circuit.m_inv.clone();
        let w = circuit.w.clone();
        let j0 = DMatrix::from_fn(k, k, |l, j| {
            let a = w.column(l).dotc(&(&p * w.column(j)));
            let b = w.column(j).dotc(&w.column(l));
            2.0 * (a * b).real()
        });
        let drift: Vec<f64> = (0..k).map(|l| (l as f64 * 0.7).sin() - 0.3).collect();
        circuit.form_jacobian();
        let got_j0 = &circuit.blk.jac;
        assert!(
            (got_j0 - &j0).norm() <= 1e-13 * j0.norm(),
            "n = {n}: J₀ {got_j0} against {j0}"
        );
        for (h, c) in [(0.05, 1.0), (1.0, 3.5), (1e-4, 1.2), (20.0, 1e3)] {
            circuit.blk.drift.copy_from_slice(&drift);
            circuit.factor_system(h, c).unwrap();
            circuit.solve_step();
            let system = DMatrix::identity(k, k) / h + &j0 * c;
            let want = system
                .clone()
                .lu()
                .solve(&DVector::from_vec(drift.clone()))
                .unwrap();
            let err = (&circuit.dg - &want).norm() / want.norm();
            // Backward stable: within rounding times the system's condition number.
            let eig = system.symmetric_eigen().eigenvalues;
            let cond = eig.max() / eig.min();
            assert!(
                err < 1e-14 * cond.max(1.0) * k as f64,
                "n = {n}, h = {h}, c = {c}: relative error {err:e} (condition {cond:e})"
            );
        }
    }

    #[test]
    fn the_implicit_steps_solve_matches_a_dense_solve() {
        for n in 1..=3 {
            factor_solve_matches_dense::<f64>(n);
            factor_solve_matches_dense::<Complex<f64>>(n);
        }
    }
}
