//! Exact top-k inner-product search at bfloat16 speed: a screen in
//! bfloat16 products (AVX-512 BF16 `vdpbf16ps`, two products per 32-bit
//! lane, twice the multiply-adds per instruction of float32) passes on to
//! float32 only the bank rows that could still enter a query's top k, and
//! those are computed again in float32 at once, while their block of the
//! bank is in cache. The answer is the float32 one by construction: the
//! same neighbours, the same similarities (to the last bits of the
//! summation order).
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
//! Cost. Over a bank in no particular order the running k-th rises fast,
//! and a query re-ranks about k·ln(n/k) rows plus those within the slack
//! of its k-th (a few thousand of 500,000 at k = 200); a query that
//! re-ranks more than [`rerank_cap`] rows (a bank sorted against it, or
//! rows packed within bfloat16's resolution) is handed to the float32
//! engine ([`super::exact`]) instead.
//!
//! Memory: the queries of one call in bfloat16 (half their size), one
//! packed block of the bank ([`BLOCK_BYTES`], more only for rows over
//! 65,536 dimensions) and each query's running top k (up to 2k + 16
//! candidates of 8 bytes: 13.6 MB for 4,096 queries at k = 200); the bank
//! itself is read in place.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::exact::{self, TopK};
use super::Neighbors;
use crate::cancel::Stop;
use crate::error::Result;

/// Queries per micro-tile (rows of the register block).
const MR: usize = 12;
/// Bank rows per micro-tile: two panels of 16 lanes.
const NR: usize = 32;
/// Bank rows per panel (the lanes of one 512-bit register).
const PANEL: usize = 16;
/// Queries per parallel task: the micro-tiles that share one panel pair
/// while it is in the first-level cache.
const TASK_QUERIES: usize = 8 * MR;
/// Bytes of one packed block of bank rows, sized to stay in the shared
/// cache while every task of the call streams it.
pub const BLOCK_BYTES: usize = 4 << 20;

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

/// The norm of `row` times `scale`, summed in float64 (no float32 under- or
/// overflow) and rounded up to float32.
fn norm_up(row: &[f32], scale: f32) -> f32 {
    let squares: f64 = row
        .iter()
        .map(|&v| (f64::from(v) * f64::from(scale)).powi(2))
        .sum();
    (squares.sqrt() * (1.0 + 2f64.powi(-20))) as f32
}

/// Bank rows `rows` (row-major, dimension `d`) packed as panels of 16:
/// `[panel][pair][lane]`, rows past the end zero. Returns the largest
/// norm of a scaled row.
///
/// # Safety
/// The processor has AVX-512 F and BF16 ([`available`]).
unsafe fn pack_block(rows: &[f32], scales: Option<&[f32]>, d: usize, out: &mut [u32]) -> f32 {
    let pairs = d.div_ceil(2);
    out.par_chunks_mut(PANEL * pairs)
        .enumerate()
        .map(|(p, panel)| {
            panel.fill(0);
            let mut largest = 0f32;
            for lane in 0..PANEL {
                let r = p * PANEL + lane;
                let Some(row) = rows.get(r * d..(r + 1) * d) else {
                    break;
                };
                let scale = scales.map_or(1.0, |s| s[r]);
                // SAFETY: callers hold `available`; the panel has room.
                let squares = unsafe { pack_row(row, scale, &mut panel[lane..], PANEL) };
                let norm = squares.sqrt() * scale.abs();
                // Where float32 squares could have lost the norm (under- or
                // overflow), float64.
                let norm = if (2f32.powi(-60)..2f32.powi(60)).contains(&norm) {
                    norm
                } else {
                    norm_up(row, scale)
                };
                largest = largest.max(norm);
            }
            largest
        })
        .reduce(|| 0.0, f32::max)
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
unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// Outcome of the search of one call: the neighbours, how many bank rows
/// the screen passed on to float32, and how many queries went back to the
/// float32 engine.
#[derive(Debug)]
pub struct Screened {
    /// The exact neighbours.
    pub neighbors: Neighbors,
    /// Products computed again in float32 (the screen's candidates), over
    /// every query.
    pub reranked: usize,
    /// Queries re-searched by the float32 engine because more of the bank
    /// than [`rerank_cap`] came within the bound of their k-th best.
    pub rechecked: usize,
}

/// Candidates a query may re-rank before it is handed to the float32
/// engine: an eighth of the bank (beyond that, re-ranking one row at a time
/// costs more than the screen saves) plus room for the first k.
pub fn rerank_cap(n: usize, k: usize) -> usize {
    n / 8 + 4 * k
}

/// One query's search: its exact running top k and its screen's floor.
struct Query {
    top: TopK,
    norm: f32,
    /// The screen's margin for the current block.
    slack: f32,
    reranked: usize,
    gave_up: bool,
}

impl Query {
    /// The least screened product that may still reach the top k: the k-th
    /// best so far less the bound (infinite once handed to float32).
    fn floor(&self) -> f32 {
        if self.gave_up {
            f32::INFINITY
        } else {
            self.top.threshold() - self.slack
        }
    }
}

/// The k best bank rows by inner product for every query row (each bank
/// row's products times its entry of `scales` when given), exactly as
/// [`exact::search`] finds them (up to the last bits of the summation
/// order). Call only where [`available`] holds; `stop` is checked every 256
/// bank rows of each packed block (a stopped search returns its error).
pub fn search(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    k: usize,
    stop: &Stop,
) -> Result<Screened> {
    assert!(available(), "bf16 search needs AVX-512 BF16");
    let n = bank.len() / d;
    let nq = queries.len() / d;
    if k == 0 || nq == 0 || n == 0 {
        let neighbors = exact::search(bank, scales, queries, d, k, stop)?;
        return Ok(Screened {
            neighbors,
            reranked: 0,
            rechecked: 0,
        });
    }
    let pairs = d.div_ceil(2);
    let cap = rerank_cap(n, k);
    let eps = relative_bound(d);
    // Queries in bfloat16 by micro-tile, `[tile][pair][MR]` (the MR values
    // one step of the kernel broadcasts side by side), padded with zero rows.
    let mut packed_queries = vec![0u32; nq.next_multiple_of(MR) * pairs];
    packed_queries
        .par_chunks_mut(MR * pairs)
        .zip(queries.par_chunks(MR * d))
        .for_each(|(tile, rows)| {
            for (r, row) in rows.chunks(d).enumerate() {
                // SAFETY: `available` was asserted; the tile has room.
                unsafe { pack_row(row, 1.0, &mut tile[r..], MR) };
            }
        });
    // The last step of the register block (the one that compares).
    let last = pairs - (pairs - 1) / KC * KC;
    let block_rows = (BLOCK_BYTES / (4 * pairs)).clamp(NR, 16_384) / NR * NR;
    let mut block = vec![0u32; block_rows * pairs];
    let mut states: Vec<Query> = queries
        .chunks_exact(d)
        .map(|q| Query {
            top: TopK::new(k.min(n)),
            norm: norm_up(q, 1.0),
            slack: 0.0,
            reranked: 0,
            gave_up: false,
        })
        .collect();
    for b0 in (0..n).step_by(block_rows) {
        stop.check()?;
        let rows = block_rows.min(n - b0);
        let padded = rows.next_multiple_of(NR);
        let block = &mut block[..padded * pairs];
        // SAFETY: `available` was asserted.
        let largest = unsafe {
            pack_block(
                &bank[b0 * d..(b0 + rows) * d],
                scales.map(|s| &s[b0..b0 + rows]),
                d,
                block,
            )
        };
        let block = &*block;
        states
            .par_chunks_mut(TASK_QUERIES)
            .enumerate()
            .for_each(|(task, states)| {
                for q in states.iter_mut() {
                    q.slack = eps * q.norm * largest
                        + 2f32.powi(-120) * (d as f32 + 2.0) * (1.0 + q.norm + largest);
                }
                let q0 = task * TASK_QUERIES;
                let mut partials = vec![[0f32; MR * NR]; states.len().div_ceil(MR)];
                let floor = [f32::INFINITY; MR];
                for p in (0..padded).step_by(NR) {
                    // A stopped job leaves within 256 rows (checked again
                    // after the block).
                    if p.is_multiple_of(8 * NR) && stop.is_stopped() {
                        return;
                    }
                    let panels = &block[p * pairs..(p + NR) * pairs];
                    let valid = NR.min(rows - p);
                    let valid = if valid == NR {
                        u32::MAX
                    } else {
                        (1 << valid) - 1
                    };
                    // Every step but the last adds to the partial sums.
                    for t0 in (0..pairs - last).step_by(KC) {
                        for (m, partial) in partials.iter_mut().enumerate() {
                            let a = &packed_queries[(q0 + m * MR) * pairs..][..MR * pairs];
                            // SAFETY: `available` was asserted; `a` holds MR
                            // packed rows, `panels` two panels.
                            unsafe { micro_tile(a, panels, pairs, (t0, KC), partial, &floor) };
                        }
                    }
                    for ((m, states), partial) in
                        states.chunks_mut(MR).enumerate().zip(partials.iter_mut())
                    {
                        let a = &packed_queries[(q0 + m * MR) * pairs..][..MR * pairs];
                        let mut floor = [f32::INFINITY; MR];
                        floor
                            .iter_mut()
                            .zip(&*states)
                            .for_each(|(f, q)| *f = q.floor());
                        // SAFETY: as above.
                        let masks = unsafe {
                            micro_tile(a, panels, pairs, (pairs - last, last), partial, &floor)
                        };
                        for (r, q) in states.iter_mut().enumerate() {
                            let query = &queries[(q0 + m * MR + r) * d..][..d];
                            let mut mask = masks[r] & valid;
                            while mask != 0 && !q.gave_up {
                                let j = b0 + p + mask.trailing_zeros() as usize;
                                mask &= mask - 1;
                                q.reranked += 1;
                                if q.reranked > cap {
                                    q.gave_up = true;
                                    break;
                                }
                                // SAFETY: as above; j < n.
                                let s = unsafe { dot(query, &bank[j * d..(j + 1) * d]) };
                                q.top.offer(s * scales.map_or(1.0, |sc| sc[j]), j);
                            }
                        }
                    }
                }
            });
        stop.check()?;
    }
    let mut ids = vec![-1i64; nq * k];
    let mut similarities = vec![f32::NEG_INFINITY; nq * k];
    let reranked = states.iter().map(|q| q.reranked.min(cap)).sum();
    let failed: Vec<usize> = (0..nq).filter(|&q| states[q].gave_up).collect();
    states
        .into_par_iter()
        .zip(ids.par_chunks_mut(k).zip(similarities.par_chunks_mut(k)))
        .filter(|(q, _)| !q.gave_up)
        .for_each(|(q, (ids, sims))| q.top.finish(ids, sims));
    if !failed.is_empty() {
        let subset: Vec<f32> = failed
            .iter()
            .flat_map(|&q| queries[q * d..(q + 1) * d].iter().copied())
            .collect();
        let again = exact::search(bank, scales, &subset, d, k, stop)?;
        for (i, &q) in failed.iter().enumerate() {
            ids[q * k..(q + 1) * k].copy_from_slice(&again.ids[i * k..(i + 1) * k]);
            similarities[q * k..(q + 1) * k]
                .copy_from_slice(&again.similarities[i * k..(i + 1) * k]);
        }
    }
    Ok(Screened {
        neighbors: Neighbors {
            k,
            ids,
            similarities,
        },
        reranked,
        rechecked: failed.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clustered rows (a few centres plus noise), some of norm far from 1.
    fn clustered(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let centres: Vec<f32> = (0..8 * d).map(|_| next()).collect();
        let mut out = Vec::with_capacity(n * d);
        for i in 0..n {
            let c = &centres[(i % 8) * d..(i % 8 + 1) * d];
            let norm = 0.5 + (i % 5) as f32;
            out.extend(c.iter().map(|&v| norm * (v + 0.3 * next())));
        }
        out
    }

    /// The k best by the definition: every product in float64, sorted.
    fn brute_force(
        bank: &[f32],
        scales: Option<&[f32]>,
        q: &[f32],
        d: usize,
        k: usize,
    ) -> Vec<i64> {
        let mut all: Vec<(f64, i64)> = bank
            .chunks(d)
            .enumerate()
            .map(|(j, row)| {
                let s: f64 = row.iter().zip(q).map(|(&a, &b)| a as f64 * b as f64).sum();
                (s * scales.map_or(1.0, |sc| sc[j] as f64), j as i64)
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.iter().take(k).map(|c| c.1).collect()
    }

    #[test]
    fn rounding_to_bfloat16_is_to_nearest_even() {
        if !available() {
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

    #[test]
    fn screened_search_equals_the_float32_engine_and_the_definition() {
        if !available() {
            eprintln!("no AVX-512 BF16 here: the float32 engine answers alone");
            return;
        }
        // Odd dimension (a half pair), a bank that is not whole tiles, a
        // query count that is not whole micro-tiles, k near the bank size.
        for &(n, nq, d, k) in &[(1_000, 50, 33, 10), (3_001, 37, 64, 200), (70, 13, 16, 64)] {
            let bank = clustered(n, d, 1);
            let queries = clustered(nq, d, 2);
            let scales: Vec<f32> = bank
                .chunks(d)
                .map(|r| 1.0 / r.iter().map(|v| v * v).sum::<f32>().sqrt())
                .collect();
            for scales in [None, Some(scales.as_slice())] {
                let got = search(&bank, scales, &queries, d, k, &Stop::never()).unwrap();
                if n >= 100 * k {
                    // The screen passed on only a small part of the bank.
                    assert!(got.reranked * 4 < n * nq, "{} of {}", got.reranked, n * nq);
                }
                let want = exact::search(&bank, scales, &queries, d, k, &Stop::never()).unwrap();
                assert_eq!(got.neighbors.ids, want.ids, "n={n} d={d} k={k}");
                for (a, b) in got.neighbors.similarities.iter().zip(&want.similarities) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                }
                for (q, row) in queries.chunks(d).enumerate() {
                    let truth = brute_force(&bank, scales, row, d, k.min(n));
                    assert_eq!(&got.neighbors.ids[q * k..q * k + truth.len()], &truth[..]);
                }
            }
        }
    }

    #[test]
    fn rows_too_small_for_float32_squares_keep_their_bound() {
        if !available() {
            return;
        }
        // Rows of norm about 1e-25, within a few thousandths of each other
        // (closer than bfloat16 tells apart): their float32 squares
        // underflow to zero, and a bound built on them would drop rows it
        // must keep.
        let (n, nq, d, k) = (2_000, 20, 32, 10);
        let noise = clustered(n, d, 3);
        let bank: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(i, v)| 1e-25 * (1.0 + (i % d) as f32 / d as f32) * (1.0 + 1e-3 * v))
            .collect();
        let queries = clustered(nq, d, 4);
        let got = search(&bank, None, &queries, d, k, &Stop::never()).unwrap();
        // The top k by float64 products, up to rows whose float32
        // products tie (float32 is the answer's precision: two rows within
        // its rounding may come in either order).
        let f64_sim = |row: &[f32], j: i64| -> f64 {
            bank[j as usize * d..(j as usize + 1) * d]
                .iter()
                .zip(row)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum()
        };
        for (q, row) in queries.chunks(d).enumerate() {
            let truth = brute_force(&bank, None, row, d, k);
            let mut want: Vec<f64> = truth.iter().map(|&j| f64_sim(row, j)).collect();
            let mut have: Vec<f64> = got.neighbors.ids[q * k..(q + 1) * k]
                .iter()
                .map(|&j| f64_sim(row, j))
                .collect();
            want.sort_by(|a, b| b.total_cmp(a));
            have.sort_by(|a, b| b.total_cmp(a));
            for (h, w) in have.iter().zip(&want) {
                assert!(
                    (h - w).abs() <= 4.0 * f32::EPSILON as f64 * w.abs(),
                    "query {q}: {have:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn near_ties_are_sent_back_to_float32_and_still_exact() {
        if !available() {
            return;
        }
        // Bank rows that differ below bfloat16's resolution: the screen
        // cannot order them, every row is within the bound of the k-th, and
        // past the cap the query goes to the float32 engine.
        let d = 8;
        let bank: Vec<f32> = (0..400)
            .flat_map(|j| {
                let mut row = vec![1.0f32; d];
                row[0] += j as f32 * 1e-5;
                row
            })
            .collect();
        let queries = vec![1.0f32; d];
        let got = search(&bank, None, &queries, d, 5, &Stop::never()).unwrap();
        assert_eq!(got.rechecked, 1);
        assert_eq!(got.neighbors.ids, brute_force(&bank, None, &queries, d, 5));
    }
}
