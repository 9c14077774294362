//! Exact top-k inner-product search at bfloat16 speed: a screen in
//! bfloat16 products (AVX-512 BF16 `vdpbf16ps`, two products per 32-bit
//! lane, twice the multiply-adds per instruction of float32) keeps more
//! candidates than asked for, float32 products re-rank them, and an error
//! bound proves that no row left out by the screen could have entered the
//! top k. Queries whose proof fails (their candidates are too close to
//! call) are searched again by the float32 engine ([`super::exact`]), so
//! the answer is always the float32 one: the same neighbours, the same
//! similarities (to the last bits of the summation order).
//!
//! The bound. Rounding to bfloat16 (8 significant bits, round to nearest)
//! changes each value by a factor (1 + δ), |δ| ≤ u = 2⁻⁸, so each product
//! of two rounded values is off by at most (2u + u²) of its magnitude; the
//! float32 sums of d products (the screen's and the re-rank's) add at most
//! d·2⁻²⁴ each (Higham, *Accuracy and Stability of Numerical Algorithms*,
//! 2002, Eq. 3.5), and the row scale one more rounding. By Cauchy–Schwarz
//! Σ|qᵢbᵢ| ≤ ‖q‖‖b‖, so a screened score s̃ and the re-ranked one ŝ differ
//! by at most ε‖q‖M + η, with ε = 2⁻⁷ + 2⁻¹⁵ + (2d + 16)·2⁻²⁴, M the
//! largest (scaled) bank-row norm and η a term for the values the
//! instruction flushes to zero (below 2⁻¹²⁶). A row the screen dropped has
//! s̃ no larger than the last kept candidate's s̃_K; if
//! s̃_K + ε‖q‖M + η < t, the k-th re-ranked similarity, no dropped row can
//! reach t, and the re-ranked top k is the exact one.
//!
//! Memory: the queries of one call in bfloat16 (half their size) and one
//! packed block of the bank (at most [`BLOCK_BYTES`]); the bank itself is
//! read in place.

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
const TASK_QUERIES: usize = 4 * MR;
/// Bytes of one packed block of bank rows, sized to stay in the shared
/// cache while every task of the call streams it.
pub const BLOCK_BYTES: usize = 4 << 20;

/// Whether this processor has the instructions (AVX-512 F and BF16).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

/// Candidates the screen keeps per query for a top `k`: enough margin that
/// the proof rarely fails on real embeddings (measured by bench/scale.py).
pub fn screen_size(k: usize) -> usize {
    2 * k + 32
}

/// The relative error bound ε of the module's proof for dimension `d`.
pub fn relative_bound(d: usize) -> f32 {
    2f32.powi(-7) + 2f32.powi(-15) + (2 * d + 16) as f32 * 2f32.powi(-24)
}

/// `x` rounded to bfloat16 (nearest, ties to even), as its 16 bits.
/// Values are finite here (embeddings are checked on arrival).
fn to_bf16(x: f32) -> u32 {
    let bits = x.to_bits();
    (bits + 0x7fff + ((bits >> 16) & 1)) >> 16
}

/// Row `row` (dimension `d`) times `scale` as `d.div_ceil(2)` pairs of
/// bfloat16 (even index in the low half), written with stride `stride`.
fn pack_row(row: &[f32], scale: f32, out: &mut [u32], stride: usize) {
    for (t, pair) in row.chunks(2).enumerate() {
        let lo = to_bf16(pair[0] * scale);
        let hi = pair.get(1).map_or(0, |&v| to_bf16(v * scale));
        out[t * stride] = lo | (hi << 16);
    }
}

/// Bank rows `rows` (row-major, dimension `d`) packed as panels of 16:
/// `[panel][pair][lane]`, rows past the end zero. Returns the largest
/// norm of a scaled row.
fn pack_block(rows: &[f32], scales: Option<&[f32]>, d: usize, out: &mut [u32]) -> f32 {
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
                pack_row(row, scale, &mut panel[lane..], PANEL);
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt() * scale.abs();
                largest = largest.max(norm);
            }
            largest
        })
        .reduce(|| 0.0, f32::max)
}

/// One register block: the bfloat16 products of `MR` packed queries (rows
/// of `pairs` values from `a`) with the `NR` bank rows of the panel pair at
/// `b`, into `out` ([MR][NR]).
///
/// # Safety
/// The processor has AVX-512 F and BF16 ([`available`]); `a` holds `MR`
/// rows of `pairs` values and `b` two panels of `pairs × 16` values.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro_tile(a: &[u32], b: &[u32], pairs: usize, out: &mut [f32; MR * NR]) {
    debug_assert!(a.len() >= MR * pairs && b.len() >= 2 * PANEL * pairs);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (a, b0, b1) = (a.as_ptr(), b.as_ptr(), b[PANEL * pairs..].as_ptr());
    for t in 0..pairs {
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
            // SAFETY: r < MR rows of `pairs` values.
            let q = unsafe { *a.add(r * pairs + t) } as i32;
            let q = std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(q));
            acc[0] = _mm512_dpbf16_ps(acc[0], q, x0);
            acc[1] = _mm512_dpbf16_ps(acc[1], q, x1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: out holds MR rows of NR values.
        unsafe {
            _mm512_storeu_ps(out.as_mut_ptr().add(r * NR), acc[0]);
            _mm512_storeu_ps(out.as_mut_ptr().add(r * NR + PANEL), acc[1]);
        }
    }
}

/// The float32 inner product, in the order the re-rank uses.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Outcome of the search of one call: the neighbours and how many queries
/// the proof sent back to the float32 engine.
#[derive(Debug)]
pub struct Screened {
    /// The exact neighbours.
    pub neighbors: Neighbors,
    /// Queries re-searched in float32 because the screen could not prove
    /// their top k.
    pub rechecked: usize,
}

/// The k best bank rows by inner product for every query row (each bank
/// row's products times its entry of `scales` when given), exactly as
/// [`exact::search`] finds them. Call only where [`available`] holds;
/// `stop` is checked between panels of each packed block (a stopped
/// search returns its error).
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
            rechecked: 0,
        });
    }
    let pairs = d.div_ceil(2);
    let keep = screen_size(k).min(n);
    // Queries in bfloat16, padded to whole micro-tiles with zero rows.
    let mut packed_queries = vec![0u32; nq.next_multiple_of(MR) * pairs];
    packed_queries
        .par_chunks_mut(pairs)
        .zip(queries.par_chunks(d))
        .for_each(|(out, row)| pack_row(row, 1.0, out, 1));
    let block_rows = (BLOCK_BYTES / (4 * pairs)).clamp(NR, 16_384) / NR * NR;
    let mut block = vec![0u32; block_rows * pairs];
    let mut states: Vec<TopK> = (0..nq).map(|_| TopK::new(keep)).collect();
    let mut largest_norm = 0f32;
    for b0 in (0..n).step_by(block_rows) {
        stop.check()?;
        let rows = block_rows.min(n - b0);
        let padded = rows.next_multiple_of(NR);
        let block = &mut block[..padded * pairs];
        let norm = pack_block(
            &bank[b0 * d..(b0 + rows) * d],
            scales.map(|s| &s[b0..b0 + rows]),
            d,
            block,
        );
        largest_norm = largest_norm.max(norm);
        let block = &*block;
        states
            .par_chunks_mut(TASK_QUERIES)
            .enumerate()
            .for_each(|(task, states)| {
                let q0 = task * TASK_QUERIES;
                let mut out = [0f32; MR * NR];
                for p in (0..padded).step_by(NR) {
                    // A stopped job leaves at the next panel pair (checked
                    // again after the block).
                    if p.is_multiple_of(8 * NR) && stop.is_stopped() {
                        return;
                    }
                    let panels = &block[p * pairs..(p + NR) * pairs];
                    let valid = NR.min(rows - p);
                    for (m, states) in states.chunks_mut(MR).enumerate() {
                        let a = &packed_queries[(q0 + m * MR) * pairs..][..MR * pairs];
                        // SAFETY: `available` was asserted; `a` holds MR
                        // packed rows and `panels` two panels.
                        unsafe { micro_tile(a, panels, pairs, &mut out) };
                        for (r, state) in states.iter_mut().enumerate() {
                            state.push(&out[r * NR..r * NR + valid], b0 + p);
                        }
                    }
                }
            });
        stop.check()?;
    }
    // Re-rank each query's candidates in float32 and prove the result.
    let eps = relative_bound(d);
    let mut ids = vec![-1i64; nq * k];
    let mut similarities = vec![f32::NEG_INFINITY; nq * k];
    let proved: Vec<bool> = states
        .into_par_iter()
        .zip(queries.par_chunks(d))
        .zip(ids.par_chunks_mut(k).zip(similarities.par_chunks_mut(k)))
        .map(|((state, query), (ids, sims))| {
            let candidates = state.into_candidates();
            let dropped = if candidates.len() == keep && keep < n {
                candidates.iter().map(|c| c.0).fold(f32::INFINITY, f32::min)
            } else {
                f32::NEG_INFINITY
            };
            let mut exact: Vec<(f32, u32)> = candidates
                .iter()
                .map(|&(_, j)| {
                    let j = j as usize;
                    let s = dot(query, &bank[j * d..(j + 1) * d]);
                    (s * scales.map_or(1.0, |sc| sc[j]), j as u32)
                })
                .collect();
            exact.sort_by(exact::better);
            let q_norm = dot(query, query).sqrt();
            let slack = eps * q_norm * largest_norm
                + 2f32.powi(-120) * (d as f32 + 2.0) * (1.0 + q_norm + largest_norm);
            let kth = exact.get(k - 1).map_or(f32::NEG_INFINITY, |c| c.0);
            let proved = dropped == f32::NEG_INFINITY || dropped + slack < kth;
            if proved {
                for (r, (slot, sim)) in ids.iter_mut().zip(sims.iter_mut()).enumerate() {
                    if let Some(&(s, j)) = exact.get(r) {
                        *slot = j as i64;
                        *sim = s;
                    }
                }
            }
            proved
        })
        .collect();
    let failed: Vec<usize> = (0..nq).filter(|&q| !proved[q]).collect();
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
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ is half way between 1 and 1 + 2⁻⁷: ties to even (1).
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        // 1 + 3·2⁻⁸ is half way between 1 + 2⁻⁷ and 1 + 2⁻⁶: to even.
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert_eq!(to_bf16(-2.0), 0xc000);
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
    fn near_ties_are_sent_back_to_float32_and_still_exact() {
        if !available() {
            return;
        }
        // Bank rows that differ below bfloat16's resolution: the screen
        // cannot order them, the proof fails, float32 decides.
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
