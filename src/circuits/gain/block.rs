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
//! own noisy optimum. `J₀` is k×k, formed over the columns' supports and factorised in O(k³/6);
//! at rest `P` repeats from block to block, and the factor is reused while `P` and `c` stay within
//! [`REUSE_CHANGE`] of those it was formed with. For `k ≤` [`EIGEN_SYSTEM_MAX`], once `P` has
//! held still while `h` or `c` moved, `J₀` is eigendecomposed instead, which serves every `h`
//! and `c` and so lasts while `P` alone stays within [`REUSE_CHANGE`]. The length `h` is the
//! largest up to `left` whose relative change of `M`, `‖P^{1/2} ΔM P^{1/2}‖_F` (exact), stays
//! within the caller's limit — which also keeps `M + ΔM ⪰ (1 − limit) M` positive definite.
//! The synapses (if plastic) take an explicit step of the same `h` with the gains before the
//! step. Forms tried and dropped: docs/DESIGN.md §4.3.

use super::{dense, GainModulatingCircuit};
use crate::circuits::linalg::{mirror_lower, CholeskyWorkspace};
use crate::circuits::{matmul_into, CircuitError, Fixed, Scalar};
use crate::eigen::HermitianEigen;
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

/// Largest `k` whose system `I/h + c J₀` is solved through an eigendecomposition of `J₀`
/// instead of a Cholesky factor: `δg = Q diag(1/(1/h + c λ)) Qᵀ d` holds for every `h` and `c`,
/// so a decomposition lasts while `P` stays within [`REUSE_CHANGE`]. The factor must be redone
/// whenever `c = λ_max(R)` moves by 10 %, which in narrow spectral bands (a few bins, `R`
/// nearly rank one) is most blocks: 71 % of the sub-steps of a stereo spectral engine at rest
/// refactorised; now 7 % decompose and 8 % factor (after `P` moved). Covers every spectral band
/// of a mono or stereo input (`k` = 1, 4) and stereo channels (`k` = 3); for larger `k` a Jacobi
/// decomposition costs many factorisations, which after a change (when `P` moves every
/// sub-step) would be paid every sub-step.
const EIGEN_SYSTEM_MAX: usize = 4;

/// Relative off-diagonal (`off(QᵀJ₀Q) ≤ tol·‖J₀‖_F`) to which `J₀` is diagonalised. The
/// decomposition is a preconditioner, reused while `P` moves by up to [`REUSE_CHANGE`] (which
/// moves `J₀` by about twice that): an error of 10⁻⁷ of `‖J₀‖_F` is far inside what the step
/// already tolerates, and a warm start then needs about two sweeps instead of three.
const EIGEN_TOLERANCE: f64 = 1e-7;

/// How a sub-step solves `(I/h + c J₀) δg = d`; `reuse` says whether the held decomposition or
/// factor still serves (else it is formed, once per sub-step).
#[derive(Clone, Copy)]
enum SystemSolve {
    /// Through the eigendecomposition of `J₀` (small `k`).
    Eigen { reuse: bool },
    /// Through a Cholesky factor of `I/h + c J₀` (re-formed at every step-length reduction).
    Factor { reuse: bool },
}

/// Scratch of the block rule, allocated with the circuit.
#[derive(Clone, Debug)]
pub(super) struct BlockScratch<T: Scalar> {
    /// `ΔM`.
    f: DMatrix<T>,
    /// n×n scratch: `P ΔM`.
    a: DMatrix<T>,
    /// `P W` (n×k).
    pw: DMatrix<T>,
    /// The Jacobian bound `c J₀` (k×k, real symmetric).
    jac: DMatrix<f64>,
    /// `I/h + c J₀`, whose factor solves the implicit step.
    system: DMatrix<f64>,
    /// Cholesky factor of `system` (`k` > [`EIGEN_SYSTEM_MAX`]).
    chol: CholeskyWorkspace<f64>,
    /// Eigendecomposition of `J₀` (`k` ≤ [`EIGEN_SYSTEM_MAX`]), valid while `eig_formed`.
    eig: HermitianEigen<f64>,
    /// Whether `eig` holds `J₀` for `p_formed`.
    eig_formed: bool,
    /// The Gram entries `w_jᴴ w_l` (`j ≤ l`, k×k column-major) of `J₀` for n ≤ 2, valid while
    /// `gram_formed`: they change only with the synapses.
    gram: Vec<T>,
    /// Whether `gram` holds the current synapses' entries.
    gram_formed: bool,
    /// `Qᵀ d` scratch of the eigen solve (length k).
    y: Vec<f64>,
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
            system: DMatrix::zeros(k, k),
            chol: CholeskyWorkspace::new(k),
            eig: {
                let mut e = HermitianEigen::new(k);
                e.set_tolerance(EIGEN_TOLERANCE);
                e
            },
            eig_formed: false,
            gram: vec![T::zero(); k * k],
            gram_formed: false,
            y: vec![0.0; k],
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

    /// Forget the factor and the Gram entries (the synapses changed, so `J₀` did).
    pub(super) fn invalidate(&mut self) {
        self.formed = (0.0, 0.0);
        self.eig_formed = false;
        self.gram_formed = false;
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
        // How the system is solved (module docs): a factor of `I/h + c J₀` is reused while `h`,
        // `c` and `P` repeat; for small `k` an eigendecomposition of `J₀` serves any `h` and
        // `c`, and is formed when `P` held still since the last formation but `h` or `c` did
        // not. When `P` itself moved — every sub-step while `M` is small and jitters with its
        // input's sampling noise — a factor costs a fraction of a decomposition.
        let solve = {
            let b = &self.blk;
            let (hf, cf) = b.formed;
            let (mut dp, mut pn) = (0.0, 0.0);
            for (x, y) in self.m_inv.as_slice().iter().zip(b.p_formed.as_slice()) {
                dp += (*x - *y).modulus_squared();
                pn += y.modulus_squared();
            }
            let p_near = dp <= REUSE_CHANGE.powi(2) * pn;
            let factor_fits = hf == h && (c / cf - 1.0).abs() <= REUSE_CHANGE;
            match (k <= EIGEN_SYSTEM_MAX, p_near) {
                (true, true) if b.eig_formed => SystemSolve::Eigen { reuse: true },
                (true, true) if hf > 0.0 && !factor_fits => SystemSolve::Eigen { reuse: false },
                _ => SystemSolve::Factor {
                    reuse: p_near && factor_fits,
                },
            }
        };
        // The largest h ≤ left within the change limit (the change grows with h).
        let (mut change, mut formed) = (0.0, false);
        for i in 0..MAX_REDUCTIONS {
            match solve {
                SystemSolve::Eigen { reuse } => {
                    if !reuse && !formed {
                        self.form_jacobian(1.0);
                        self.decompose_system()?;
                        formed = true;
                    }
                    self.solve_step_eigen(h, c);
                }
                SystemSolve::Factor { reuse } => {
                    if i > 0 || !reuse {
                        if !formed {
                            self.form_jacobian(c);
                            formed = true;
                        }
                        self.factor_system(h, c)?;
                    }
                    self.solve_step();
                }
            }
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

    /// `c J₀` into `blk.jac`, `J₀_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ w_l)]`, over the supports.
    fn form_jacobian(&mut self, c: f64) {
        let n = self.w.nrows();
        if n <= 2 {
            let (w, p) = (self.w.as_slice(), self.m_inv.as_slice());
            let b = &mut self.blk;
            if !b.gram_formed {
                match n {
                    1 => dense::gram(Fixed::<1>, w, &mut b.gram),
                    _ => dense::gram(Fixed::<2>, w, &mut b.gram),
                }
                b.gram_formed = true;
            }
            let (pw, jac) = (b.pw.as_mut_slice(), b.jac.as_mut_slice());
            match n {
                1 => dense::jacobian(Fixed::<1>, w, &b.gram, p, c, pw, jac),
                _ => dense::jacobian(Fixed::<2>, w, &b.gram, p, c, pw, jac),
            }
        } else {
            self.form_jacobian_sparse(c);
        }
        (self.blk.p_formed.as_mut_slice()).copy_from_slice(self.m_inv.as_slice());
    }

    /// [`Self::form_jacobian`] over the columns' supports (n > 2), without `p_formed`.
    fn form_jacobian_sparse(&mut self, c: f64) {
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
                let v = 2.0 * c * (a * b).real();
                self.blk.jac[(l, j)] = v;
                self.blk.jac[(j, l)] = v;
            }
        }
    }

    /// Factor `I/h + c J₀` (`blk.jac` formed with `c`).
    fn factor_system(&mut self, h: f64, c: f64) -> Result<(), CircuitError> {
        let b = &mut self.blk;
        b.formed = (0.0, 0.0);
        // `P` moved since any decomposition of J₀.
        b.eig_formed = false;
        b.system.copy_from(&b.jac);
        for l in 0..b.system.nrows() {
            b.system[(l, l)] += 1.0 / h;
        }
        b.factorisations += 1;
        b.chol.factor(&b.system)?;
        b.formed = (h, c);
        Ok(())
    }

    /// Eigendecompose `J₀` (`blk.jac` formed with `c = 1`).
    fn decompose_system(&mut self) -> Result<(), CircuitError> {
        let b = &mut self.blk;
        b.eig_formed = false;
        // `jac` now holds J₀ rather than the factor's c J₀.
        b.formed = (0.0, 0.0);
        b.factorisations += 1;
        // J₀ is finite whenever P is; a failure means the state is unusable.
        b.eig
            .decompose_warm(&b.jac)
            .map_err(|_| CircuitError::NotPositiveDefinite)?;
        b.eig_formed = true;
        Ok(())
    }

    /// `δg = Q diag(1/(1/h + c λ)) Qᵀ d` into `dg`, from the decomposition `J₀ = Q diag(λ) Qᵀ`
    /// (`λ ≥ 0`: `J₀` is positive semidefinite; rounding below 0 is clamped).
    fn solve_step_eigen(&mut self, h: f64, c: f64) {
        let b = &mut self.blk;
        let q = b.eig.eigenvectors().as_slice();
        let k = b.y.len();
        for ((y, col), &lambda) in
            b.y.iter_mut()
                .zip(q.chunks_exact(k))
                .zip(b.eig.eigenvalues())
        {
            let qd: f64 = col.iter().zip(&b.drift).map(|(q, d)| q * d).sum();
            *y = qd / (1.0 / h + c * lambda.max(0.0));
        }
        let dg = self.dg.as_mut_slice();
        dg.fill(0.0);
        for (col, &y) in q.chunks_exact(k).zip(&b.y) {
            for (d, &qi) in dg.iter_mut().zip(col) {
                *d += qi * y;
            }
        }
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
        let f = self.blk.f.as_mut_slice();
        match self.w.nrows() {
            1 => {
                dense::weighted_outer_sum(Fixed::<1>, f, 0.0, w, dg);
                return dense::relative_change(Fixed::<1>, p, f);
            }
            2 => {
                dense::weighted_outer_sum(Fixed::<2>, f, 0.0, w, dg);
                return dense::relative_change(Fixed::<2>, p, f);
            }
            _ => {}
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

    /// The eigen solve of the small systems against a dense solve of `(I/h + c J₀) δg = d`
    /// (nalgebra's LU, independent of both paths), with `J₀` formed from its definition
    /// `J₀_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ w_l)]` over dense columns here.
    fn eigen_solve_matches_dense<T: Scalar>(n: usize, gains: &[f64]) {
        let mut circuit = GainModulatingCircuit::<T>::racing(n, 1e-3, 1.0).unwrap();
        circuit.set_gains(gains).unwrap();
        circuit.ensure_inverse();
        let k = circuit.w.ncols();
        assert!(k <= EIGEN_SYSTEM_MAX);
        let p = circuit.m_inv.clone();
        let w = circuit.w.clone();
        let j0 = DMatrix::from_fn(k, k, |l, j| {
            let a = w.column(l).dotc(&(&p * w.column(j)));
            let b = w.column(j).dotc(&w.column(l));
            2.0 * (a * b).real()
        });
        let drift: Vec<f64> = (0..k).map(|l| (l as f64 * 0.7).sin() - 0.3).collect();
        circuit.form_jacobian(1.0);
        circuit.decompose_system().unwrap();
        for (h, c) in [(0.05, 1.0), (1.0, 3.5), (1e-4, 1.2), (20.0, 1e3)] {
            circuit.blk.drift.copy_from_slice(&drift);
            circuit.solve_step_eigen(h, c);
            let system = DMatrix::identity(k, k) / h + &j0 * c;
            let want = system
                .lu()
                .solve(&DVector::from_vec(drift.clone()))
                .unwrap();
            let err = (&circuit.dg - &want).norm() / want.norm();
            // The eigen solve is exact for `J₀` less the off-diagonal part the decomposition
            // leaves, `‖E‖ ≤ tol ‖J₀‖_F`; so its relative error is at most
            // `c ‖E‖ ‖(I/h + c J₀)⁻¹‖`, plus rounding.
            let lambda_min = j0.clone().symmetric_eigen().eigenvalues.min().max(0.0);
            let bound = c * EIGEN_TOLERANCE * j0.norm() / (1.0 / h + c * lambda_min) + 1e-12;
            assert!(
                err < bound,
                "n = {n}, h = {h}, c = {c}: relative error {err:e} (bound {bound:e})"
            );
        }
    }

    #[test]
    fn eigen_solve_of_small_systems_matches_a_dense_solve() {
        eigen_solve_matches_dense::<f64>(1, &[2.0]);
        eigen_solve_matches_dense::<f64>(2, &[3.0, 0.5, -0.4]);
        eigen_solve_matches_dense::<Complex<f64>>(1, &[0.7]);
        eigen_solve_matches_dense::<Complex<f64>>(2, &[3.0, 0.5, -0.4, 0.3]);
    }
}
