//! The gain circuit's per-sub-step products for n ≤ 2 (every spectral band of a mono or stereo
//! input, and stereo channels), over dense columns of a fixed size (docs/DESIGN.md §9).
//!
//! Above two channels the frame's columns are sparse and the circuit walks their supports; at
//! n ≤ 2 the index lists cost more than the products they save. Summing the zero entries as
//! well adds exact zeros in the same order, so `drift`, `relative_change`, `gram` and
//! `jacobian` give the values of the support walks. The coefficient kernels
//! (`column_coefficients` and the two that use them) sum in the four real coordinates of a
//! 2×2 Hermitian matrix instead: equal within rounding, and exactly Hermitian.

use crate::circuits::{Dim, Scalar};

/// `out = A W` column by column, `a` n×n and `w` n×k (column-major): each column of `out`
/// is `Σ_a w_al · (column a of A)`, summed in ascending `a` from zero, as the support walks do.
#[inline(always)]
fn times_columns<T: Scalar, D: Dim>(d: D, a: &[T], w: &[T], out: &mut [T]) {
    let n = d.get();
    let a = &a[..n * n];
    for (wl, col) in w.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let (wl, col) = (&wl[..n], &mut col[..n]);
        for i in 0..n {
            col[i] = T::zero();
        }
        for m in 0..n {
            for i in 0..n {
                col[i] += a[i + m * n] * wl[m];
            }
        }
    }
}

/// `R W` into `rw` and the gains' drift `d_l = w_lᴴ R w_l − ‖w_l‖²` into `drift`
/// (docs/DESIGN.md §2.9), for `w` n×k column-major, `r` n×n Hermitian (both triangles).
#[inline(always)]
pub(super) fn drift<T: Scalar, D: Dim>(
    d: D,
    w: &[T],
    r: &[T],
    w_norm2: &[f64],
    rw: &mut [T],
    drift: &mut [f64],
) {
    let n = d.get();
    times_columns(d, r, w, rw);
    for (((wl, col), out), norm2) in w
        .chunks_exact(n)
        .zip(rw.chunks_exact(n))
        .zip(drift.iter_mut())
        .zip(w_norm2)
    {
        let (wl, col) = (&wl[..n], &col[..n]);
        let mut q = 0.0;
        for a in 0..n {
            q += (wl[a].conjugate() * col[a]).real();
        }
        *out = q - norm2;
    }
}

/// Each column's coefficients in the four real coordinates of a 2×2 Hermitian matrix
/// (`h₀₀`, `h₁₁`, `Re h₁₀`, `Im h₁₀`): `(|w₀ₗ|², |w₁ₗ|², Re zₗ, Im zₗ)` with `zₗ = w₁ₗ w̄₀ₗ`
/// (n = 1: `(|w₀ₗ|², 0, 0, 0)`). They depend on the synapses alone; with them the drift and
/// the weighted outer sums below are a few real multiply-adds per column.
#[inline(always)]
pub(super) fn column_coefficients<T: Scalar>(n: usize, w: &[T], out: &mut [[f64; 4]]) {
    for (wl, o) in w.chunks_exact(n).zip(out.iter_mut()) {
        *o = match wl {
            [w0] => [w0.modulus_squared(), 0.0, 0.0, 0.0],
            [w0, w1] => {
                let z = *w1 * w0.conjugate();
                [
                    w0.modulus_squared(),
                    w1.modulus_squared(),
                    z.real(),
                    z.imaginary(),
                ]
            }
            _ => unreachable!("column coefficients are for n ≤ 2"),
        };
    }
}

/// The gains' drift `d_l = w_lᴴ R w_l − ‖w_l‖²` from the columns' coefficients
/// ([`column_coefficients`]), for Hermitian `r` (n ≤ 2): `w_lᴴ R w_l = r₀₀|w₀ₗ|² + r₁₁|w₁ₗ|² +
/// 2 Re(r₁₀ z̄ₗ)`.
#[inline(always)]
pub(super) fn drift_from_coefficients<T: Scalar>(
    coef: &[[f64; 4]],
    r: &[T],
    w_norm2: &[f64],
    drift: &mut [f64],
) {
    let (r00, r11, a, b) = match r {
        [r00] => (r00.real(), 0.0, 0.0, 0.0),
        [r00, r10, _, r11] => (r00.real(), r11.real(), r10.real(), r10.imaginary()),
        _ => unreachable!("column coefficients are for n ≤ 2"),
    };
    for ((c, d), norm2) in coef.iter().zip(drift.iter_mut()).zip(w_norm2) {
        *d = c[0] * r00 + c[1] * r11 + 2.0 * (c[2] * a + c[3] * b) - norm2;
    }
}

/// `out = diag · I + Σ_l c_l w_l w_lᴴ` (n ≤ 2, both triangles, real diagonal) from the
/// columns' coefficients ([`column_coefficients`]), summed in the real coordinates:
/// `M = αI + W G Wᴴ` with `diag = α`, `c = g`, and the step `ΔM = W diag(δg) Wᴴ` with
/// `diag = 0`, `c = δg`.
#[inline(always)]
pub(super) fn outer_sum_from_coefficients<T: Scalar>(
    n: usize,
    out: &mut [T],
    diag: f64,
    coef: &[[f64; 4]],
    c: &[f64],
) {
    let (mut h00, mut h11, mut re, mut im) = (diag, diag, 0.0, 0.0);
    for (k, &cl) in coef.iter().zip(c) {
        h00 += cl * k[0];
        h11 += cl * k[1];
        re += cl * k[2];
        im += cl * k[3];
    }
    match &mut out[..n * n] {
        [o] => *o = T::from_real(h00),
        [o00, o10, o01, o11] => {
            let z = T::from_parts(re, im);
            *o00 = T::from_real(h00);
            *o10 = z;
            *o01 = z.conjugate();
            *o11 = T::from_real(h11);
        }
        _ => unreachable!("column coefficients are for n ≤ 2"),
    }
}

/// `√Tr(P F P F)` for Hermitian `p` and `f` (n×n, n ≤ 2): `‖P^{1/2} F P^{1/2}‖_F`, the
/// relative change of `M` by `F`.
#[inline(always)]
pub(super) fn relative_change<T: Scalar, D: Dim>(d: D, p: &[T], f: &[T]) -> f64 {
    let n = d.get();
    let (p, f) = (&p[..n * n], &f[..n * n]);
    // A = P F, then Tr(A A) = Σ_ij a_ij a_ji.
    let mut a = [T::zero(); 4];
    let a = &mut a[..n * n];
    for j in 0..n {
        for i in 0..n {
            let mut v = T::zero();
            for k in 0..n {
                v += p[i + k * n] * f[k + j * n];
            }
            a[i + j * n] = v;
        }
    }
    let mut tr = 0.0;
    for j in 0..n {
        for i in 0..n {
            tr += (a[i + j * n] * a[j + i * n]).real();
        }
    }
    tr.max(0.0).sqrt()
}

/// The Gram entries `b_lj = w_jᴴ w_l` for `j ≤ l` into `gram` (k×k, column-major; the rest
/// is left alone): the factor of `J₀` that depends on the synapses alone, formed once while
/// they hold still (the racing circuit's never move).
#[inline(always)]
pub(super) fn gram<T: Scalar, D: Dim>(d: D, w: &[T], gram: &mut [T]) {
    let n = d.get();
    let k = w.len() / n;
    for l in 0..k {
        let wl = &w[l * n..][..n];
        for j in 0..=l {
            let wj = &w[j * n..][..n];
            let mut b = T::zero();
            for i in 0..n {
                b += wj[i].conjugate() * wl[i];
            }
            gram[l + j * k] = b;
        }
    }
}

/// The Jacobian at the optimum, `J₀_lj = 2 Re[(w_lᴴ P w_j)(w_jᴴ w_l)]` (docs/DESIGN.md §4.3),
/// into `jac` (k×k, column-major, both triangles), with `P W` into `pw` (n×k) and the Gram
/// entries `w_jᴴ w_l` from `gram` ([`gram`]'s triangle).
#[inline(always)]
pub(super) fn jacobian<T: Scalar, D: Dim>(
    d: D,
    w: &[T],
    gram: &[T],
    p: &[T],
    pw: &mut [T],
    jac: &mut [f64],
) {
    let n = d.get();
    let k = w.len() / n;
    times_columns(d, p, w, pw);
    for l in 0..k {
        let wl = &w[l * n..][..n];
        for j in 0..=l {
            let b = gram[l + j * k];
            let v = if b == T::zero() {
                // Orthogonal columns (most pairs of the pairs frame's).
                0.0
            } else {
                let pwj = &pw[j * n..][..n];
                let mut a = T::zero();
                for i in 0..n {
                    a += wl[i].conjugate() * pwj[i];
                }
                2.0 * (a * b).real()
            };
            jac[l + j * k] = v;
            jac[j + l * k] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuits::{Fixed, GainModulatingCircuit};
    use nalgebra::{Complex, DMatrix, DVector};

    /// The dense kernels against their definitions in nalgebra's own products, for the race's
    /// frames at n = 1 and 2 over ℝ and ℂ.
    fn matches_definitions<T: Scalar, D: Dim>(d: D) {
        let n = d.get();
        let circuit = GainModulatingCircuit::<T>::racing(n, 1e-3, 1.0).unwrap();
        let w = circuit.w().clone();
        let k = w.ncols();
        let p = DMatrix::<T>::from_fn(n, n, |i, j| {
            if i == j {
                T::from_real(1.3 + i as f64)
            } else if i > j {
                T::from_parts(0.2, 0.1)
            } else {
                T::from_parts(0.2, -0.1)
            }
        });
        let r = &p * &p;
        let gains: Vec<f64> = (0..k).map(|l| 0.4 + 0.3 * l as f64).collect();
        let norms: Vec<f64> = (0..k).map(|l| w.column(l).norm_squared()).collect();
        let mut rw = vec![T::zero(); n * k];
        let mut got = vec![0.0; k];
        drift(d, w.as_slice(), r.as_slice(), &norms, &mut rw, &mut got);
        let want_rw = &r * &w;
        for l in 0..k {
            let want = w.column(l).dotc(&want_rw.column(l)).real() - norms[l];
            assert!(
                (got[l] - want).abs() <= 1e-13 * (1.0 + want.abs()),
                "drift {l}"
            );
        }
        let rw = DMatrix::from_column_slice(n, k, &rw);
        assert!((&rw - &want_rw).norm() <= 1e-13 * want_rw.norm());
        let g = DMatrix::from_diagonal(&DVector::from_vec(gains.clone()).map(T::from_real));
        let want_m = DMatrix::<T>::identity(n, n) * T::from_real(0.7) + &w * g * w.adjoint();
        let mut coef = vec![[0.0; 4]; k];
        column_coefficients(n, w.as_slice(), &mut coef);
        let mut m = vec![T::zero(); n * n];
        outer_sum_from_coefficients(n, &mut m, 0.7, &coef, &gains);
        let m = DMatrix::from_column_slice(n, n, &m);
        assert!((&m - &want_m).norm() <= 1e-13 * want_m.norm());
        assert_eq!(m, m.adjoint(), "exactly Hermitian");
        let mut got_c = vec![0.0; k];
        drift_from_coefficients(&coef, r.as_slice(), &norms, &mut got_c);
        for l in 0..k {
            let want = w.column(l).dotc(&want_rw.column(l)).real() - norms[l];
            assert!(
                (got_c[l] - want).abs() <= 1e-13 * (1.0 + want.abs()),
                "drift from coefficients {l}"
            );
        }
        let (mut pw, mut jac, mut gram_lower) = (
            vec![T::zero(); n * k],
            vec![0.0; k * k],
            vec![T::zero(); k * k],
        );
        gram(d, w.as_slice(), &mut gram_lower);
        jacobian(
            d,
            w.as_slice(),
            &gram_lower,
            p.as_slice(),
            &mut pw,
            &mut jac,
        );
        for l in 0..k {
            for j in 0..k {
                let a = w.column(l).dotc(&(&p * w.column(j)));
                let b = w.column(j).dotc(&w.column(l));
                let want = 2.0 * (a * b).real();
                let got = jac[l + j * k];
                assert!(
                    (got - want).abs() <= 1e-13 * (1.0 + want.abs()),
                    "J[{l},{j}]"
                );
            }
        }
        let pf = &p * &want_m;
        let want = (&pf * &pf).trace().real().sqrt();
        let got = relative_change(d, p.as_slice(), m.as_slice());
        assert!((got - want).abs() <= 1e-13 * want, "{got} vs {want}");
    }

    #[test]
    fn dense_kernels_match_their_definitions() {
        matches_definitions::<f64, _>(Fixed::<1>);
        matches_definitions::<f64, _>(Fixed::<2>);
        matches_definitions::<Complex<f64>, _>(Fixed::<1>);
        matches_definitions::<Complex<f64>, _>(Fixed::<2>);
    }
}
