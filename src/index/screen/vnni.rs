//! The 8-bit integer screen's kernel on AVX-512 VNNI: `vpdpbusd` sums four
//! products of an unsigned and a signed byte into each of sixteen 32-bit
//! lanes in one instruction (64 multiply-adds, against 32 for AVX2's
//! `vpmaddubsw` and `vpmaddwd` pair of [`super::int8`]), for the exact
//! search of [`super`].
//!
//! The format is [`super::int8`]'s with one more bit for the bank: nothing
//! is summed in 16 bits, so a bank row b (times its row scale) is stored as
//! b̂ = σ_b·j with j in [−127, 127], kept unsigned as j + 128; a query row
//! as q̂ = σ_q·i with i in [−127, 127]. The kernel sums
//! I = Σ i·(j + 128) exactly in 32-bit integers (|I| ≤ d·127·255 < 2³¹ for
//! rows of up to [`MAX_DIM`] dimensions) and subtracts the query's offset
//! 128·Σ i. The bank's rounding error ‖b − b̂‖ is half of the AVX2
//! format's, and so is the larger part of the screen's margin.
//!
//! The bound is [`super::int8`]'s, term for term (its proof does not
//! depend on the number of levels): ‖q̂‖‖b − b̂‖ + ‖q − q̂‖‖b‖ added to each
//! row's screened product with the row's own norms, and the float32
//! roundings and the re-rank's error in [`Kernel::slack`].

use std::arch::x86_64::*;

use super::{int8, Bound, Compare, Kernel, Packed, MAX_MR};

/// Queries per micro-tile: 24 accumulators, two bank panels and the
/// broadcast query in AVX-512's 32 registers.
const MR: usize = 12;
/// Bank rows per panel (the 32-bit lanes of one 512-bit register).
const PANEL: usize = 16;
/// Bank rows per micro-tile: two panels.
const NR: usize = 2 * PANEL;
/// Words (4 dimensions each) per step of the register block: one step's
/// slice of a panel pair takes 8 KiB.
const KC: usize = 64;
/// The largest magnitude of a query's or a bank row's integers.
const LEVELS: f64 = 127.0;
/// Added to a bank row's integers to make them unsigned.
const BIAS: i32 = 128;
/// The widest rows the 32-bit sums hold exactly (d × 127 × 255 < 2³¹).
pub const MAX_DIM: usize = 65_536;

/// Whether this processor has the instructions (AVX-512 F and VNNI).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// One register block (see [`Kernel::micro_tile`]).
///
/// # Safety
/// The processor has AVX-512 F and VNNI ([`available`]); `a` holds
/// `words × MR` values, `b` two panels of `words × PANEL`, `partial`
/// `MR × NR`, and `t0 + len ≤ words`.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn micro_tile(
    a: &[u32],
    b: &[u32],
    words: usize,
    (t0, len): (usize, usize),
    partial: &mut [u32],
    compare: &Compare,
) -> [u32; MAX_MR] {
    assert!(
        a.len() >= MR * words
            && b.len() >= 2 * PANEL * words
            && partial.len() >= MR * NR
            && t0 + len <= words
    );
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let p = partial.as_mut_ptr();
    if t0 > 0 {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: partial holds MR rows of NR values (asserted).
            unsafe {
                acc[0] = _mm512_loadu_si512(p.add(r * NR).cast());
                acc[1] = _mm512_loadu_si512(p.add(r * NR + PANEL).cast());
            }
        }
    }
    let (a, b0, b1) = (a.as_ptr(), b.as_ptr(), b[PANEL * words..].as_ptr());
    for t in t0..t0 + len {
        // SAFETY: t < words, within both panels and the queries (asserted).
        let (x0, x1) = unsafe {
            (
                _mm512_loadu_si512(b0.add(t * PANEL).cast()),
                _mm512_loadu_si512(b1.add(t * PANEL).cast()),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let q = _mm512_set1_epi32(unsafe { *a.add(t * MR + r) } as i32);
            // Unsigned bank bytes times signed query bytes, four summed
            // into each 32-bit lane, exactly (see the module's notes).
            acc[0] = _mm512_dpbusd_epi32(acc[0], x0, q);
            acc[1] = _mm512_dpbusd_epi32(acc[1], x1, q);
        }
    }
    let mut masks = [0u32; MAX_MR];
    if t0 + len < words {
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                _mm512_storeu_si512(p.add(r * NR).cast(), acc[0]);
                _mm512_storeu_si512(p.add(r * NR + PANEL).cast(), acc[1]);
            }
        }
        return masks;
    }
    let lanes = &compare.lanes;
    assert!(lanes.scale.len() >= NR && lanes.norm.len() >= NR && lanes.residual.len() >= NR);
    // SAFETY: each holds NR values (asserted).
    let load = |v: &[f32]| unsafe {
        [
            _mm512_loadu_ps(v.as_ptr()),
            _mm512_loadu_ps(v.as_ptr().add(PANEL)),
        ]
    };
    let (scales, norms, residuals) = (load(lanes.scale), load(lanes.norm), load(lanes.residual));
    for (r, (mask, acc)) in masks.iter_mut().zip(&acc).enumerate() {
        let offset = _mm512_set1_epi32(compare.offset[r]);
        let scale = _mm512_set1_ps(compare.scale[r]);
        let floor = _mm512_set1_ps(compare.floor[r]);
        let (packed_norm, residual) = (
            _mm512_set1_ps(compare.packed_norm[r]),
            _mm512_set1_ps(compare.residual[r]),
        );
        // s̃ plus the row's own rounding bound ‖q̂‖‖b − b̂‖ + ‖q − q̂‖‖b‖.
        let screened = |half: usize| {
            let exact = _mm512_sub_epi32(acc[half], offset);
            let s = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale),
                scales[half],
            );
            let s = _mm512_fmadd_ps(packed_norm, residuals[half], s);
            _mm512_fmadd_ps(residual, norms[half], s)
        };
        let lo = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(screened(0), floor);
        let hi = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(screened(1), floor);
        *mask = u32::from(lo) | (u32::from(hi) << PANEL);
    }
    masks
}

/// The 8-bit integer screen on AVX-512 VNNI ([`super`]'s kernel).
#[derive(Debug, Clone, Copy)]
pub struct Vnni;

impl Kernel for Vnni {
    const NAME: &'static str = "vnni";
    const NEEDS: &'static str = "AVX-512 F and VNNI";
    const MR: usize = MR;
    const NR: usize = NR;
    const PANEL: usize = PANEL;
    const DIMS: usize = 4;
    const KC: usize = KC;

    fn available() -> bool {
        available()
    }

    unsafe fn pack_query(row: &[f32], out: &mut [u32], stride: usize) -> Packed {
        let (scale, [norm, packed_norm, residual], sum) =
            int8::quantize(row, 1.0, LEVELS, 0, out, stride);
        Packed {
            scale,
            offset: BIAS * sum,
            norm,
            packed_norm,
            residual,
        }
    }

    unsafe fn pack_row(row: &[f32], scale: f32, out: &mut [u32], stride: usize) -> (f32, Bound) {
        let (sigma, [norm, packed_norm, residual], _) =
            int8::quantize(row, scale, LEVELS, BIAS, out, stride);
        let bound = Bound {
            norm,
            packed_norm,
            residual,
        };
        (sigma, bound)
    }

    fn slack(query: &Packed, block: &Bound, d: usize) -> f32 {
        int8::slack(query, block, d)
    }

    unsafe fn micro_tile(
        a: &[u32],
        b: &[u32],
        words: usize,
        steps: (usize, usize),
        partial: &mut [u32],
        compare: &Compare,
    ) -> [u32; MAX_MR] {
        // SAFETY: the caller holds `available` and the sizes.
        unsafe { micro_tile(a, b, words, steps, partial, compare) }
    }

    unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: the caller holds `available` (AVX-512 F).
        unsafe { super::bf16::dot(a, b) }
    }
}
