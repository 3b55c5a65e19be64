//! Matrix sizes known at compile time for the small cases (docs/DESIGN.md §9).
//!
//! Spectral bands of a mono or stereo input are 1×1 and 2×2 problems, learnt thousands of times
//! per second. Written once over a [`Dim`], a kernel's loops run over `0..d.get()`: with
//! [`Fixed`] the bound is a constant, so they unroll and the indices into slices cut to
//! `n²` are checked at compile time; with [`Dynamic`] the same code serves any `n`. The
//! arithmetic is the same operations in the same order either way, so both give the same bits.

/// A matrix dimension, fixed at compile time or not.
pub trait Dim: Copy {
    /// The dimension.
    fn get(self) -> usize;
}

/// A dimension known at compile time.
#[derive(Clone, Copy, Debug)]
pub struct Fixed<const N: usize>;

impl<const N: usize> Dim for Fixed<N> {
    #[inline(always)]
    fn get(self) -> usize {
        N
    }
}

/// A dimension known at run time.
#[derive(Clone, Copy, Debug)]
pub struct Dynamic(pub usize);

impl Dim for Dynamic {
    #[inline(always)]
    fn get(self) -> usize {
        self.0
    }
}

/// Run `$body` with `$d` bound to the [`Dim`] of `$n`: [`Fixed`] for 1 and 2, [`Dynamic`]
/// above (the body is compiled three times).
#[macro_export]
#[doc(hidden)]
macro_rules! with_dim {
    ($n:expr, $d:ident => $body:expr) => {
        match $n {
            1 => {
                let $d = $crate::circuits::Fixed::<1>;
                $body
            }
            2 => {
                let $d = $crate::circuits::Fixed::<2>;
                $body
            }
            n => {
                let $d = $crate::circuits::Dynamic(n);
                $body
            }
        }
    };
}

/// Run `$body` with `$d` bound to the [`Dim`] of `$n`: [`Fixed`] for 3 ≤ n ≤ 16 — every channel
/// count the engine accepts (`framing::MAX_CHANNELS`), each arm its own instance of the generic
/// kernel, for the dense n×n kernels whose loop bookkeeping outweighs their arithmetic at
/// these sizes — else [`Dynamic`] (n ≤ 2 have closed forms of their own).
#[macro_export]
#[doc(hidden)]
macro_rules! by_size {
    ($n:expr, $d:ident => $body:expr) => {
        $crate::by_size!(@arms $n, $d => $body; 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
    };
    (@arms $n:expr, $d:ident => $body:expr; $($size:literal)*) => {
        match $n {
            $($size => {
                let $d = $crate::circuits::Fixed::<$size>;
                $body
            })*
            n => {
                let $d = $crate::circuits::Dynamic(n);
                $body
            }
        }
    };
}
