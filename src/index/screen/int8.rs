//! The 8-bit integer screen's kernel, for processors without AVX-512 BF16:
//! products of 8-bit integers summed exactly in 32-bit lanes (AVX2
//! `vpmaddubsw` then `vpmaddwd`: 32 multiply-adds per instruction pair,
//! about three times float32's on the same registers), for the exact
//! search of [`super`].
//!
//! The format. A query row q is stored as q̂ = σ_q·i, its scale σ_q its
//! largest magnitude over 127 and i integers in [−127, 127] (q/σ_q rounded
//! to nearest); a bank row b (times its row scale) as b̂ = σ_b·j with
//! j in [−63, 63], kept unsigned as j + 64, so that `vpmaddubsw`'s sum of
//! two products (at most 2 × 127 × 127 = 32,258) never saturates its 16
//! bits. The kernel sums I = Σ i·(j + 64) exactly in 32-bit integers (rows
//! of up to [`MAX_DIM`] dimensions) and subtracts the query's offset
//! 64·Σ i, so I − 64·Σi = Σ i·j exactly, and the screened product is
//! s̃ = fl(fl(fl(I − 64·Σi)·σ_q)·σ_b).
//!
//! The bound. Any scale gives a valid bound, because it is built from the
//! rounding errors themselves, computed in float64 while packing:
//! q·b − q̂·b̂ = q̂·(b − b̂) + (q − q̂)·b, so by Cauchy–Schwarz
//! |q·b − q̂·b̂| ≤ ‖q̂‖‖b − b̂‖ + ‖q − q̂‖‖b‖. To it come the three float32
//! roundings of s̃ (each relative 2⁻²⁴ of at most ‖q̂‖‖b̂‖) and the float32
//! re-rank's own error, at most (d + 2)·2⁻²⁴·‖q‖‖b‖ (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, 2002, Eq. 3.5, with
//! Σ|qₖbₖ| ≤ ‖q‖‖b‖), plus a term for values below 2⁻¹²⁶. The first part
//! differs from row to row, so the kernel adds it to each row's s̃ with the
//! row's own norms (two fused multiply-adds, whose roundings join the
//! block's part, [`Kernel::slack`]). Typical rows (128 to 2,048
//! dimensions) lose 1–2% of their norm to the rounding, so the screen's
//! margin is one or two hundredths of ‖q‖‖b‖: coarser than bfloat16's,
//! and still a small part of a bank in no particular order.

use std::arch::x86_64::*;

use super::{Bound, Compare, Kernel, Packed, MAX_MR};

/// Queries per micro-tile: 10 accumulators, two bank panels, the broadcast
/// query, a product and the ones of `vpmaddwd` fill AVX2's 16 registers.
const MR: usize = 5;
/// Bank rows per panel (the 32-bit lanes of one 256-bit register).
const PANEL: usize = 8;
/// Bank rows per micro-tile: two panels.
const NR: usize = 2 * PANEL;
/// Words (4 dimensions each) per step of the register block: one step's
/// slice of a panel pair takes 4 KiB.
const KC: usize = 128;
/// The largest magnitude of a query's integers.
const QUERY_LEVELS: f64 = 127.0;
/// The largest magnitude of a bank row's integers.
const BANK_LEVELS: f64 = 63.0;
/// Added to a bank row's integers to make them unsigned.
const BIAS: i32 = 64;
/// The widest rows the 32-bit sums hold exactly (d × 127 × 127 < 2³¹).
pub const MAX_DIM: usize = 65_536;

/// Whether this processor has the instructions (AVX2 and FMA).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `row` times `scale` rounded to integers of at most `levels` (plus
/// `bias`), four to a 32-bit word (the first dimension in the low byte),
/// written at stride `stride`. Returns the scale σ of the integers and
/// (‖row × scale‖, ‖σ·i‖, ‖row × scale − σ·i‖, Σ i), the norms in float64
/// rounded up.
pub(super) fn quantize(
    row: &[f32],
    scale: f32,
    levels: f64,
    bias: i32,
    out: &mut [u32],
    stride: usize,
) -> (f32, [f64; 3], i32) {
    let scale = f64::from(scale);
    // Products of two float32 values are exact in float64.
    let largest = row
        .iter()
        .fold(0f64, |m, &v| m.max((f64::from(v) * scale).abs()));
    let sigma = (largest / levels) as f32;
    let usable = sigma.is_normal();
    let (sigma64, mut sum) = (f64::from(sigma), 0i32);
    // Any integers give a valid bound (their errors are measured below):
    // x times the inverse of σ, clamped, rounded to nearest even by adding
    // and taking away 1.5 × 2⁵² (no call to a rounding function).
    let inverse = if usable { 1.0 / sigma64 } else { 0.0 };
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let (mut norm, mut packed, mut residual) = (0f64, 0f64, 0f64);
    for (w, dims) in row.chunks(4).enumerate() {
        let mut word = 0u32;
        for (byte, &v) in dims.iter().enumerate() {
            let x = f64::from(v) * scale;
            let i = ((x * inverse).clamp(-levels, levels) + ROUND) - ROUND;
            // σ (24 bits) times an integer of 8 is exact in float64.
            let x_hat = sigma64 * i;
            norm += x * x;
            packed += x_hat * x_hat;
            residual += (x - x_hat) * (x - x_hat);
            sum += i as i32;
            word |= (((i as i32 + bias) as u32) & 0xff) << (8 * byte);
        }
        out[w * stride] = word;
    }
    // Float64 sums of d squares are within d·2⁻⁵³ of their value; rounded
    // up well past that.
    let up = |s: f64| s.sqrt() * (1.0 + 2f64.powi(-30));
    let sigma = if usable { sigma } else { 0.0 };
    (sigma, [up(norm), up(packed), up(residual)], sum)
}

/// One register block (see [`Kernel::micro_tile`]).
///
/// # Safety
/// The processor has AVX2 ([`available`]); `a` holds `words × MR` values,
/// `b` two panels of `words × PANEL`, `partial` `MR × NR`, and
/// `t0 + len ≤ words`.
#[target_feature(enable = "avx2,fma")]
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
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let p = partial.as_mut_ptr();
    if t0 > 0 {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: partial holds MR rows of NR values (asserted).
            unsafe {
                acc[0] = _mm256_loadu_si256(p.add(r * NR).cast());
                acc[1] = _mm256_loadu_si256(p.add(r * NR + PANEL).cast());
            }
        }
    }
    let ones = _mm256_set1_epi16(1);
    let (a, b0, b1) = (a.as_ptr(), b.as_ptr(), b[PANEL * words..].as_ptr());
    for t in t0..t0 + len {
        // SAFETY: t < words, within both panels and the queries (asserted).
        let (x0, x1) = unsafe {
            (
                _mm256_loadu_si256(b0.add(t * PANEL).cast()),
                _mm256_loadu_si256(b1.add(t * PANEL).cast()),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let q = _mm256_set1_epi32(unsafe { *a.add(t * MR + r) } as i32);
            // Unsigned bank bytes times signed query bytes, pairs summed in
            // 16 bits (no saturation: see the module's notes), then pairs
            // of those in 32.
            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_maddubs_epi16(x0, q), ones));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(_mm256_maddubs_epi16(x1, q), ones));
        }
    }
    let mut masks = [0u32; MAX_MR];
    if t0 + len < words {
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: as above.
            unsafe {
                _mm256_storeu_si256(p.add(r * NR).cast(), acc[0]);
                _mm256_storeu_si256(p.add(r * NR + PANEL).cast(), acc[1]);
            }
        }
        return masks;
    }
    let lanes = &compare.lanes;
    assert!(lanes.scale.len() >= NR && lanes.norm.len() >= NR && lanes.residual.len() >= NR);
    // SAFETY: each holds NR values (asserted).
    let load = |v: &[f32]| unsafe {
        [
            _mm256_loadu_ps(v.as_ptr()),
            _mm256_loadu_ps(v.as_ptr().add(PANEL)),
        ]
    };
    let (scales, norms, residuals) = (load(lanes.scale), load(lanes.norm), load(lanes.residual));
    for (r, (mask, acc)) in masks.iter_mut().zip(&acc).enumerate() {
        let offset = _mm256_set1_epi32(compare.offset[r]);
        let scale = _mm256_set1_ps(compare.scale[r]);
        let floor = _mm256_set1_ps(compare.floor[r]);
        let (packed_norm, residual) = (
            _mm256_set1_ps(compare.packed_norm[r]),
            _mm256_set1_ps(compare.residual[r]),
        );
        // s̃ plus the row's own rounding bound ‖q̂‖‖b − b̂‖ + ‖q − q̂‖‖b‖.
        let screened = |half: usize| {
            let exact = _mm256_sub_epi32(acc[half], offset);
            let s = _mm256_mul_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(exact), scale),
                scales[half],
            );
            let s = _mm256_fmadd_ps(packed_norm, residuals[half], s);
            _mm256_fmadd_ps(residual, norms[half], s)
        };
        let lo = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(screened(0), floor));
        let hi = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(screened(1), floor));
        *mask = (lo as u32) | ((hi as u32) << PANEL);
    }
    masks
}

/// The float32 inner product (fused multiply-adds in 16 lanes).
///
/// # Safety
/// The processor has AVX2 and FMA; `a` and `b` have the same length.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let (n, pa, pb) = (a.len(), a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load is within the first n values of both.
    unsafe {
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes holds 8 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(s0, s1)) };
    let mut sum: f32 = lanes.iter().sum();
    while i < n {
        sum = a[i].mul_add(b[i], sum);
        i += 1;
    }
    sum
}

/// The bound's part that is the same for every row of a block (see
/// [`Kernel::slack`]), for both integer kernels.
pub(super) fn slack(query: &Packed, block: &Bound, d: usize) -> f32 {
    // The packing's part, ‖q̂‖‖b − b̂‖ + ‖q − q̂‖‖b‖, is added to each
    // row's screened product by the kernel, with the row's own norms;
    // here the float32 roundings of that sum (two fused multiply-adds
    // of terms at most the block's largest) and the others.
    let u = 2f64.powi(-24);
    let largest =
        (query.packed_norm + query.residual) * (block.packed_norm + block.residual + block.norm);
    let screened = 8.0 * u * largest;
    let rerank = (d as f64 + 4.0) * u * query.norm * block.norm;
    let tiny = 2f64.powi(-120) * (d as f64 + 2.0) * (1.0 + query.norm + block.norm);
    super::up((screened + rerank + tiny) * (1.0 + 2f64.powi(-20)))
}

/// The 8-bit integer screen ([`super`]'s kernel on AVX2).
#[derive(Debug, Clone, Copy)]
pub struct Int8;

impl Kernel for Int8 {
    const NAME: &'static str = "int8";
    const NEEDS: &'static str = "AVX2 and FMA";
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
            quantize(row, 1.0, QUERY_LEVELS, 0, out, stride);
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
            quantize(row, scale, BANK_LEVELS, BIAS, out, stride);
        let bound = Bound {
            norm,
            packed_norm,
            residual,
        };
        (sigma, bound)
    }

    fn slack(query: &Packed, block: &Bound, d: usize) -> f32 {
        slack(query, block, d)
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
        // SAFETY: the caller holds `available`.
        unsafe { dot(a, b) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_rounded_to_their_levels_and_their_errors_measured() {
        // Largest magnitude 2 → σ = 2/63; 1.1/σ = 34.65 rounds to 35,
        // 0.5/σ = 15.75 to 16; −2 → −63; 0 → 0; a fifth value opens a
        // second word.
        let row = [1.1f32, -2.0, 0.0, 2.0, 0.5];
        let mut out = [0u32; 4];
        let (sigma, [norm, packed, residual], sum) =
            quantize(&row, 1.0, BANK_LEVELS, BIAS, &mut out, 2);
        assert_eq!(sigma, (2.0f64 / 63.0) as f32);
        let ints = [35, -63, 0, 63, 16];
        assert_eq!(sum, ints.iter().sum::<i32>());
        let byte = |i: i32| (i + BIAS) as u32;
        assert_eq!(
            out[0],
            byte(35) | byte(-63) << 8 | byte(0) << 16 | byte(63) << 24
        );
        assert_eq!(out[2], byte(16));
        let s = f64::from(sigma);
        let want_norm = row
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        let want_packed = ints
            .iter()
            .map(|&i| (s * i as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let want_residual = row
            .iter()
            .zip(ints)
            .map(|(&v, i)| (f64::from(v) - s * i as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        for (got, want) in [
            (norm, want_norm),
            (packed, want_packed),
            (residual, want_residual),
        ] {
            assert!(got >= want && got <= want * (1.0 + 1e-8), "{got} vs {want}");
        }
        // The row scale is applied before rounding; a zero row packs to
        // the bias and has no error.
        let (sigma, [_, _, residual], _) = quantize(&[0.0; 3], 5.0, BANK_LEVELS, BIAS, &mut out, 1);
        assert_eq!((sigma, residual, out[0]), (0.0, 0.0, 0x0040_4040));
    }
}
