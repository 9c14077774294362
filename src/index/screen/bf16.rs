//! The bfloat16 screen's kernel: products in bfloat16 pairs (AVX-512 BF16
//! `vdpbf16ps`, two products per 32-bit lane, twice the multiply-adds per
//! instruction of float32), for the exact search of [`super`].
//!
//! The bound. Rounding to bfloat16 (8 significant bits, round to nearest)
//! changes each value by a factor (1 + δ), |δ| ≤ u = 2⁻⁸, so each product
//! of two rounded values is off by at most (2u + u²) of its magnitude; the
//! float32 sums of d products (the screen's and the re-rank's) add at most
//! d·2⁻²⁴ each (Higham, *Accuracy and Stability of Numerical Algorithms*,
//! 2002, Eq. 3.5), and the row scale one more rounding. By Cauchy–Schwarz
//! Σ|qᵢbᵢ| ≤ ‖q‖‖b‖, so a screened product s̃ and the float32 one s differ
//! by at most slack = ε‖q‖M + η, with ε = 2⁻⁷ + 2⁻¹⁵ + (2d + 16)·2⁻²⁴, M
//! the largest (scaled) row norm of the block and η a term for the values
//! the instruction flushes to zero (below 2⁻¹²⁶); the norms are taken in
//! float64 where float32 squares could under- or overflow. The screen
//! passes a row on when s̃ ≥ t − slack, t a lower bound on the k-th best
//! float32 similarity found so far (the k-th at the running top k's last
//! compaction); a row it drops has s ≤ s̃ + slack < t, below the final
//! k-th, so it could never have been in the top k. The similarities are
//! the float32 ones up to the last bits of the summation order (this
//! module's dot products against BLAS's), so a near-tie at the k-th place
//! may fall either way.
//!
//! The driver, its cost and memory are the screen's ([`super`]).

use std::arch::x86_64::*;

use super::{Bound, Compare, Kernel, Packed, MAX_MR};

/// Queries per micro-tile (rows of the register block).
const MR: usize = 12;
/// Bank rows per micro-tile: two panels of 16 lanes.
const NR: usize = 32;
/// Bank rows per panel (the lanes of one 512-bit register).
const PANEL: usize = 16;

/// Whether this processor has the instructions (AVX-512 F and BF16).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

/// The relative error bound ε of the module's proof for dimension `d`.
pub fn relative_bound(d: usize) -> f32 {
    2f32.powi(-7) + 2f32.powi(-15) + (2 * d + 16) as f32 * 2f32.powi(-24)
}

/// The mask of the first `left` of 16 lanes (all 16 when `left` ≥ 16).
fn lanes(left: usize) -> __mmask16 {
    if left >= 16 {
        0xffff
    } else {
        (1u16 << left) - 1
    }
}

/// Row `row` times `scale` as `row.len().div_ceil(2)` pairs of bfloat16
/// (even index in the low half, rounded to nearest even by the
/// instruction, values below 2⁻¹²⁶ flushed to zero), written with stride
/// `stride`. Returns the squared norm of `row` (unscaled).
///
/// # Safety
/// The processor has AVX-512 F and BF16 ([`available`]); `out` holds
/// `(pairs - 1) × stride + 1` values.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pack_row(row: &[f32], scale: f32, out: &mut [u32], stride: usize) -> f32 {
    let (d, s) = (row.len(), _mm512_set1_ps(scale));
    let mut squares = _mm512_setzero_ps();
    for i in (0..d).step_by(16) {
        // SAFETY: the mask keeps the load within the row.
        let v = unsafe { _mm512_maskz_loadu_ps(lanes(d - i), row.as_ptr().add(i)) };
        squares = _mm512_fmadd_ps(v, v, squares);
        let words: [u32; 8] =
            std::mem::transmute::<__m256bh, [u32; 8]>(_mm512_cvtneps_pbh(_mm512_mul_ps(v, s)));
        for (w, &word) in words.iter().enumerate().take((d - i).div_ceil(2)) {
            out[(i / 2 + w) * stride] = word;
        }
    }
    _mm512_reduce_add_ps(squares)
}

/// Pairs of dimensions per step of the register block: one step's slice of
/// a panel pair (8 KiB) and of the queries of a task (24 KiB) stay near the
/// first-level cache however wide the rows.
const KC: usize = 64;

/// One register block, over pairs `t0..t0 + len` of `pairs`: the bfloat16
/// products of `MR` packed queries (`a`, `[pair][MR]`) with the `NR` bank
/// rows of the panel pair at `b`, added to `partial` ([MR][NR]; zero when
/// `t0` is 0). At the last pairs, the sums are compared in registers with
/// each query's floor instead: bit `c` of the `r`-th mask is set where the
/// product of query `r` and bank row `c` is at least `floor[r]`.
///
/// # Safety
/// The processor has AVX-512 F and BF16 ([`available`]); `a` holds
/// `pairs × MR` values, `b` two panels of `pairs × 16` values, and
/// `t0 + len ≤ pairs`.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro_tile(
    a: &[u32],
    b: &[u32],
    pairs: usize,
    (t0, len): (usize, usize),
    partial: &mut [f32; MR * NR],
    floor: &[f32; MR],
) -> [u32; MR] {
    debug_assert!(a.len() >= MR * pairs && b.len() >= 2 * PANEL * pairs && t0 + len <= pairs);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    if t0 > 0 {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: partial holds MR rows of NR values.
            unsafe {
                acc[0] = _mm512_loadu_ps(partial.as_ptr().add(r * NR));
                acc[1] = _mm512_loadu_ps(partial.as_ptr().add(r * NR + PANEL));
            }
        }
    }
    let (a, b0, b1) = (a.as_ptr(), b.as_ptr(), b[PANEL * pairs..].as_ptr());
    for t in t0..t0 + len {
        // SAFETY: t < pairs, within both panels (checked above).
        let (x0, x1) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    b0.add(t * PANEL).cast(),
                )),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    b1.add(t * PANEL).cast(),
                )),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: t < pairs and r < MR.
            let q = unsafe { *a.add(t * MR + r) } as i32;
            let q = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(q));
            acc[0] = _mm512_dpbf16_ps(acc[0], q, x0);
            acc[1] = _mm512_dpbf16_ps(acc[1], q, x1);
        }
    }
    let mut masks = [0u32; MR];
    if t0 + len < pairs {
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                _mm512_storeu_ps(partial.as_mut_ptr().add(r * NR), acc[0]);
                _mm512_storeu_ps(partial.as_mut_ptr().add(r * NR + PANEL), acc[1]);
            }
        }
        return masks;
    }
    for ((mask, acc), &floor) in masks.iter_mut().zip(&acc).zip(floor) {
        let floor = _mm512_set1_ps(floor);
        let lo = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(acc[0], floor) as u32;
        let hi = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(acc[1], floor) as u32;
        *mask = lo | (hi << 16);
    }
    masks
}

/// The float32 inner product (fused multiply-adds in 32 lanes).
///
/// # Safety
/// The processor has AVX-512 F; `a` and `b` have the same length.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (n, pa, pb) = (a.len(), a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: every load is within the first n values of both.
    unsafe {
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            i += 32;
        }
        while i < n {
            let m = lanes(n - i);
            s0 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                s0,
            );
            i += 16;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
}

/// The bfloat16 screen ([`super`]'s kernel on AVX-512 BF16).
#[derive(Debug, Clone, Copy)]
pub struct Bf16;

impl Kernel for Bf16 {
    const NAME: &'static str = "bf16";
    const NEEDS: &'static str = "AVX-512 F and BF16";
    const MR: usize = MR;
    const NR: usize = NR;
    const PANEL: usize = PANEL;
    const DIMS: usize = 2;
    const KC: usize = KC;

    fn available() -> bool {
        available()
    }

    unsafe fn pack_query(row: &[f32], out: &mut [u32], stride: usize) -> Packed {
        // SAFETY: the caller holds `available` and the room.
        unsafe { pack_row(row, 1.0, out, stride) };
        let norm = super::norm_up(row, 1.0);
        Packed {
            scale: 1.0,
            offset: 0,
            norm,
            packed_norm: norm,
            residual: 0.0,
        }
    }

    unsafe fn pack_row(row: &[f32], scale: f32, out: &mut [u32], stride: usize) -> (f32, Bound) {
        // SAFETY: as above.
        let squares = unsafe { pack_row(row, scale, out, stride) };
        let norm = squares.sqrt() * scale.abs();
        // Where float32 squares could have lost the norm (under- or
        // overflow), float64.
        let norm = if (2f32.powi(-60)..2f32.powi(60)).contains(&norm) {
            f64::from(norm) * (1.0 + 2f64.powi(-20))
        } else {
            super::norm_up(row, scale)
        };
        let bound = Bound {
            norm,
            packed_norm: norm,
            residual: 0.0,
        };
        (1.0, bound)
    }

    fn slack(query: &Packed, block: &Bound, d: usize) -> f32 {
        let (q, b) = (query.norm, block.norm);
        (f64::from(relative_bound(d)) * q * b + 2f64.powi(-120) * (d as f64 + 2.0) * (1.0 + q + b))
            as f32
    }

    unsafe fn micro_tile(
        a: &[u32],
        b: &[u32],
        words: usize,
        steps: (usize, usize),
        partial: &mut [u32],
        compare: &Compare,
    ) -> [u32; MAX_MR] {
        let partial: &mut [f32; MR * NR] = bytemuck_f32(partial);
        let mut floor = [f32::INFINITY; MR];
        floor.copy_from_slice(&compare.floor[..MR]);
        // SAFETY: the caller holds `available` and the sizes.
        unsafe { micro_tile(a, b, words, steps, partial, &floor) }
    }

    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: the caller holds `available` (AVX-512 F).
        unsafe { dot(a, b) }
    }
}

/// The `[MR][NR]` partial sums of a register block, stored as 32-bit words.
fn bytemuck_f32(words: &mut [u32]) -> &mut [f32; MR * NR] {
    assert_eq!(words.len(), MR * NR);
    // SAFETY: u32 and f32 have the same size and alignment, every bit
    // pattern is a valid f32, and the length was checked.
    unsafe { &mut *words.as_mut_ptr().cast::<[f32; MR * NR]>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_bfloat16_is_to_nearest_even() {
        if !available() {
            eprintln!("SKIPPED: this processor has no AVX-512 BF16");
            return;
        }
        // 1 + 2⁻⁸ is half way between 1 and 1 + 2⁻⁷: ties to even (1);
        // 1 + 3·2⁻⁸ is half way between 1 + 2⁻⁷ and 1 + 2⁻⁶: to even; 2⁻¹³⁰
        // is flushed to zero; an odd length leaves a zero high half.
        let row = [
            1.0,
            1.0 + 2f32.powi(-8),
            1.0 + 3.0 * 2f32.powi(-8),
            -2.0,
            2f32.powi(-130),
        ];
        let mut out = [7u32; 6];
        // SAFETY: `available` holds; 3 pairs at stride 2 fit in 6.
        let squares = unsafe { pack_row(&row, 1.0, &mut out, 2) };
        assert_eq!(out, [0x3f80_3f80, 7, 0xc000_3f82, 7, 0x0000_0000, 7]);
        let want: f32 = row.iter().map(|v| v * v).sum();
        assert!((squares - want).abs() <= 1e-6 * want);
        // The scale is applied before rounding.
        unsafe { pack_row(&row[..2], -0.5, &mut out, 1) };
        assert_eq!(out[0], 0xbf00_bf00);
    }
}
