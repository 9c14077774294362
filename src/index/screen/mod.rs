//! Exact top-k inner-product search behind a low-precision screen: the
//! products of queries and bank rows are first computed in a cheaper
//! number format (bfloat16 pairs, [`bf16`]; 8-bit integers, [`int8`]), a
//! register block at a time; a bank row goes on to float32 only where its
//! screened product could still reach the query's top k, and it is computed
//! again in float32 at once, while its block of the bank is in cache. The
//! answer is the float32 one by construction: the same neighbours, the same
//! similarities (to the last bits of the summation order).
//!
//! The guarantee is the same for every kernel. Each one proves a bound
//! `slack` (its [`Kernel::slack`], from the query's and the block's norms
//! and rounding errors) with |s̃ − s| ≤ slack for a screened product s̃
//! and the float32 similarity s of the same pair. The screen passes a row
//! on when s̃ ≥ t − slack, t a lower bound on the k-th best float32
//! similarity found so far (the k-th at the running top k's last
//! compaction); a row it drops has s ≤ s̃ + slack < t, below the final
//! k-th, so it could never have been in the top k. A near-tie at the k-th
//! place, within the last bits of the float32 summation order, may fall
//! either way.
//!
//! Cost. Over a bank in no particular order the running k-th rises fast,
//! and a query re-ranks about k·ln(n/k) rows plus those within the slack of
//! its k-th (a few thousand of 500,000 at k = 200); a query that re-ranks
//! more than [`rerank_cap`] rows (a bank sorted against it, or rows packed
//! within the screen's resolution) is handed to the float32 engine
//! ([`super::exact`]) instead.
//!
//! Memory: the queries of one call in the screen's format (a half or a
//! quarter of their size), one packed block of the bank ([`BLOCK_BYTES`],
//! more only for very wide rows) and each query's running top k (up to
//! 2k + 16 candidates of 8 bytes: 13.6 MB for 4,096 queries at k = 200);
//! the bank itself is read in place.

pub mod bf16;
pub mod int8;
pub mod vnni;

use rayon::prelude::*;

use super::exact::{self, TopK};
use super::Neighbors;
use crate::cancel::Stop;
use crate::error::Result;

/// Bytes of one packed block of bank rows, sized to stay in the shared
/// cache while every task of the call streams it.
pub const BLOCK_BYTES: usize = 4 << 20;
/// The most queries of a register block over all kernels.
pub const MAX_MR: usize = 12;

/// What the screen knows of one query row once packed: the factor and
/// offset that turn its kernel sums into screened products, and the norms
/// its bound is built from (in float64, rounded up).
#[derive(Debug, Clone, Copy, Default)]
pub struct Packed {
    /// A kernel sum times `scale` (and the bank row's lane scale) is the
    /// screened product.
    pub scale: f32,
    /// Subtracted from a kernel sum before it is scaled (the integer
    /// kernel's unsigned offset).
    pub offset: i32,
    /// ‖q‖ of the float32 row.
    pub norm: f64,
    /// ‖q̂‖ of the packed row, as the screen sees it.
    pub packed_norm: f64,
    /// ‖q − q̂‖, the rounding error of the packing.
    pub residual: f64,
}

/// The largest norms of a packed block of bank rows (each row times its
/// scale), in float64 rounded up: the bank side of the bound.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound {
    /// The largest ‖b‖.
    pub norm: f64,
    /// The largest ‖b̂‖ of a packed row.
    pub packed_norm: f64,
    /// The largest ‖b − b̂‖.
    pub residual: f64,
}

impl Bound {
    fn max(self, other: Bound) -> Bound {
        Bound {
            norm: self.norm.max(other.norm),
            packed_norm: self.packed_norm.max(other.packed_norm),
            residual: self.residual.max(other.residual),
        }
    }
}

/// What the last step of a register block compares its sums with: for
/// query `r`, a sum `x` of bank row `c` passes where
/// `(x − offset[r]) × scale[r] × lanes.scale[c] + packed_norm[r] ×
/// lanes.residual[c] + residual[r] × lanes.norm[c] ≥ floor[r]` (a kernel
/// whose bound is the same for every row of a block leaves the last two
/// terms out).
#[derive(Debug, Clone, Copy)]
pub struct Compare<'a> {
    /// Each query's floor (infinite for padding rows and queries given up).
    pub floor: [f32; MAX_MR],
    /// Each query's [`Packed::scale`].
    pub scale: [f32; MAX_MR],
    /// Each query's [`Packed::offset`].
    pub offset: [i32; MAX_MR],
    /// Each query's [`Packed::packed_norm`], rounded up.
    pub packed_norm: [f32; MAX_MR],
    /// Each query's [`Packed::residual`], rounded up.
    pub residual: [f32; MAX_MR],
    /// The bank rows of the register block.
    pub lanes: Lanes<'a>,
}

/// Per bank row of a packed block: its lane scale, and its norm and
/// rounding error (rounded up to float32) for kernels that bound each row
/// by its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lanes<'a> {
    /// The factor of the row's sums.
    pub scale: &'a [f32],
    /// ‖b‖.
    pub norm: &'a [f32],
    /// ‖b − b̂‖.
    pub residual: &'a [f32],
}

impl<'a> Lanes<'a> {
    fn slice(&self, from: usize, len: usize) -> Lanes<'a> {
        Lanes {
            scale: &self.scale[from..from + len],
            norm: &self.norm[from..from + len],
            residual: &self.residual[from..from + len],
        }
    }
}

/// `v` rounded up to float32 (at least `v`, for a bound).
pub fn up(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) >= v {
        f
    } else {
        f.next_up()
    }
}

/// A screen's number format and register kernel. Rows are packed into
/// 32-bit words of [`Kernel::DIMS`] dimensions each; the bank by panels of
/// [`Kernel::PANEL`] rows (`[panel][word][lane]`), the queries by register
/// blocks of [`Kernel::MR`] (`[tile][word][MR]`).
pub trait Kernel: Sync {
    /// The engine's name in logs and reports.
    const NAME: &'static str;
    /// What the processor needs to run it.
    const NEEDS: &'static str;
    /// Queries per register block.
    const MR: usize;
    /// Bank rows per register block (two panels).
    const NR: usize;
    /// Bank rows per panel.
    const PANEL: usize;
    /// Dimensions per 32-bit word.
    const DIMS: usize;
    /// Words per step of the register block, so that one step's slices of
    /// a panel pair and of a task's queries stay near the first-level cache.
    const KC: usize;

    /// Whether this processor has the kernel's instructions.
    fn available() -> bool;

    /// Packs one query row into `row.len().div_ceil(DIMS)` words at stride
    /// `stride`.
    ///
    /// # Safety
    /// [`Kernel::available`] holds; `out` holds `(words − 1) × stride + 1`
    /// values.
    unsafe fn pack_query(row: &[f32], out: &mut [u32], stride: usize) -> Packed;

    /// Packs bank row `row` times `scale` like [`Kernel::pack_query`];
    /// returns the row's lane scale and its norms.
    ///
    /// # Safety
    /// As for [`Kernel::pack_query`].
    unsafe fn pack_row(row: &[f32], scale: f32, out: &mut [u32], stride: usize) -> (f32, Bound);

    /// The bound |s̃ − s| for a query and a block, less the part the
    /// kernel adds to each row's screened product itself (see
    /// [`Compare`]).
    fn slack(query: &Packed, block: &Bound, d: usize) -> f32;

    /// One register block over words `t0..t0 + len` of `words`: the sums of
    /// `MR` packed queries (`a`) with the `NR` bank rows of the panel pair
    /// at `b`, added to `partial` (`[MR][NR]` 32-bit sums; zero when `t0` is
    /// 0). At the last words, the sums are compared with `compare`
    /// instead: bit `c` of the `r`-th mask is set where row `c` passes for
    /// query `r`.
    ///
    /// # Safety
    /// [`Kernel::available`] holds; `a` holds `words × MR` values, `b` two
    /// panels of `words × PANEL`, `partial` `MR × NR`; `t0 + len ≤ words`.
    unsafe fn micro_tile(
        a: &[u32],
        b: &[u32],
        words: usize,
        steps: (usize, usize),
        partial: &mut [u32],
        compare: &Compare,
    ) -> [u32; MAX_MR];

    /// The float32 inner product of two rows of the same length.
    ///
    /// # Safety
    /// [`Kernel::available`] holds.
    unsafe fn dot(a: &[f32], b: &[f32]) -> f32;
}

/// The norm of `row` times `scale`, summed in float64 (no float32 under- or
/// overflow) and rounded up.
pub fn norm_up(row: &[f32], scale: f32) -> f64 {
    let squares: f64 = row
        .iter()
        .map(|&v| (f64::from(v) * f64::from(scale)).powi(2))
        .sum();
    squares.sqrt() * (1.0 + 2f64.powi(-40))
}

/// Bank rows `rows` (row-major, dimension `d`) packed as panels of
/// `K::PANEL` (rows past the end zero), each row's lane scale, norm and
/// rounding error in `lanes` (`[scale, norm, residual]`, zero past the
/// end). Returns the block's bound.
///
/// # Safety
/// [`Kernel::available`] holds; `out` holds `lanes[0].len() × words`
/// values.
unsafe fn pack_block<K: Kernel>(
    rows: &[f32],
    scales: Option<&[f32]>,
    d: usize,
    out: &mut [u32],
    lanes: [&mut [f32]; 3],
) -> Bound {
    let words = d.div_ceil(K::DIMS);
    let [scale_lanes, norm_lanes, residual_lanes] = lanes;
    out.par_chunks_mut(K::PANEL * words)
        .zip(scale_lanes.par_chunks_mut(K::PANEL))
        .zip(norm_lanes.par_chunks_mut(K::PANEL))
        .zip(residual_lanes.par_chunks_mut(K::PANEL))
        .enumerate()
        .map(
            |(p, (((panel, scale_lanes), norm_lanes), residual_lanes))| {
                panel.fill(0);
                scale_lanes.fill(0.0);
                norm_lanes.fill(0.0);
                residual_lanes.fill(0.0);
                let mut bound = Bound::default();
                for lane in 0..K::PANEL {
                    let r = p * K::PANEL + lane;
                    let Some(row) = rows.get(r * d..(r + 1) * d) else {
                        break;
                    };
                    let scale = scales.map_or(1.0, |s| s[r]);
                    // SAFETY: callers hold `available`; the panel has room.
                    let (s, b) = unsafe { K::pack_row(row, scale, &mut panel[lane..], K::PANEL) };
                    scale_lanes[lane] = s;
                    norm_lanes[lane] = up(b.norm);
                    residual_lanes[lane] = up(b.residual);
                    bound = bound.max(b);
                }
                bound
            },
        )
        .reduce(Bound::default, Bound::max)
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
    packed: Packed,
    /// [`Packed::packed_norm`] and [`Packed::residual`] rounded up to
    /// float32, as [`Compare`] takes them.
    terms: (f32, f32),
    /// The screen's margin for the current block.
    slack: f32,
    reranked: usize,
    gave_up: bool,
}

impl Query {
    /// The least screened product that may still reach the top k: the k-th
    /// best so far less the bound (infinite once handed to float32; minus
    /// infinity where the bound is not finite).
    fn floor(&self) -> f32 {
        if self.gave_up {
            f32::INFINITY
        } else if self.slack.is_finite() {
            self.top.threshold() - self.slack
        } else {
            f32::NEG_INFINITY
        }
    }
}

/// The k best bank rows by inner product for every query row (each bank
/// row's products times its entry of `scales` when given) through kernel
/// `K`, exactly as [`exact::search`] finds them (up to the last bits of the
/// summation order). Call only where `K::available()` holds; `stop` is
/// checked every 256 bank rows of each packed block (a stopped search
/// returns its error).
pub fn search<K: Kernel>(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    k: usize,
    stop: &Stop,
) -> Result<Screened> {
    assert!(
        K::available(),
        "the {} screen needs its instructions",
        K::NAME
    );
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
    let (mr, nr) = (K::MR, K::NR);
    let words = d.div_ceil(K::DIMS);
    let cap = rerank_cap(n, k);
    // Queries by register block, `[tile][word][MR]` (the MR values one step
    // of the kernel broadcasts side by side), padded with zero rows.
    let mut packed_queries = vec![0u32; nq.next_multiple_of(mr) * words];
    let packed: Vec<Packed> = packed_queries
        .par_chunks_mut(mr * words)
        .zip(queries.par_chunks(mr * d))
        .flat_map_iter(|(tile, rows)| {
            rows.chunks(d)
                .enumerate()
                // SAFETY: `available` was asserted; the tile has room.
                .map(|(r, row)| unsafe { K::pack_query(row, &mut tile[r..], mr) })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut states: Vec<Query> = packed
        .into_iter()
        .map(|packed| Query {
            top: TopK::eager(k.min(n)),
            terms: (up(packed.packed_norm), up(packed.residual)),
            packed,
            slack: 0.0,
            reranked: 0,
            gave_up: false,
        })
        .collect();
    // The last step of the register block (the one that compares).
    let last = words - (words - 1) / K::KC * K::KC;
    let block_rows = (BLOCK_BYTES / (4 * words)).clamp(nr, 16_384) / nr * nr;
    let mut block = vec![0u32; block_rows * words];
    let mut lanes = vec![0f32; 3 * block_rows];
    let task_queries = 8 * mr;
    for b0 in (0..n).step_by(block_rows) {
        stop.check()?;
        let rows = block_rows.min(n - b0);
        let padded = rows.next_multiple_of(nr);
        let block = &mut block[..padded * words];
        let (scale_lanes, rest) = lanes.split_at_mut(block_rows);
        let (norm_lanes, residual_lanes) = rest.split_at_mut(block_rows);
        // SAFETY: `available` was asserted; the block has room.
        let bound = unsafe {
            pack_block::<K>(
                &bank[b0 * d..(b0 + rows) * d],
                scales.map(|s| &s[b0..b0 + rows]),
                d,
                block,
                [
                    &mut scale_lanes[..padded],
                    &mut norm_lanes[..padded],
                    &mut residual_lanes[..padded],
                ],
            )
        };
        let block = &*block;
        let lanes = Lanes {
            scale: &scale_lanes[..padded],
            norm: &norm_lanes[..padded],
            residual: &residual_lanes[..padded],
        };
        states
            .par_chunks_mut(task_queries)
            .enumerate()
            .for_each(|(task, states)| {
                for q in states.iter_mut() {
                    q.slack = K::slack(&q.packed, &bound, d);
                }
                let q0 = task * task_queries;
                let mut partials = vec![0u32; states.len().div_ceil(mr) * mr * nr];
                let mut compare = Compare {
                    floor: [f32::INFINITY; MAX_MR],
                    scale: [1.0; MAX_MR],
                    offset: [0; MAX_MR],
                    packed_norm: [0.0; MAX_MR],
                    residual: [0.0; MAX_MR],
                    lanes: Lanes::default(),
                };
                for p in (0..padded).step_by(nr) {
                    // A stopped job leaves within 256 rows (checked again
                    // after the block).
                    if p.is_multiple_of(8 * nr) && stop.is_stopped() {
                        return;
                    }
                    let panels = &block[p * words..(p + nr) * words];
                    let valid = nr.min(rows - p);
                    let valid = if valid >= 32 {
                        u32::MAX
                    } else {
                        (1u32 << valid) - 1
                    };
                    // Every step but the last adds to the partial sums.
                    for t0 in (0..words - last).step_by(K::KC) {
                        for (m, partial) in partials.chunks_mut(mr * nr).enumerate() {
                            let a = &packed_queries[(q0 + m * mr) * words..][..mr * words];
                            // SAFETY: `available` was asserted; `a` holds MR
                            // packed rows, `panels` two panels.
                            unsafe {
                                K::micro_tile(a, panels, words, (t0, K::KC), partial, &compare)
                            };
                        }
                    }
                    compare.lanes = lanes.slice(p, nr);
                    for ((m, states), partial) in states
                        .chunks_mut(mr)
                        .enumerate()
                        .zip(partials.chunks_mut(mr * nr))
                    {
                        let a = &packed_queries[(q0 + m * mr) * words..][..mr * words];
                        compare.floor = [f32::INFINITY; MAX_MR];
                        for (r, q) in states.iter().enumerate() {
                            compare.floor[r] = q.floor();
                            compare.scale[r] = q.packed.scale;
                            compare.offset[r] = q.packed.offset;
                            (compare.packed_norm[r], compare.residual[r]) = q.terms;
                        }
                        // SAFETY: as above.
                        let masks = unsafe {
                            K::micro_tile(a, panels, words, (words - last, last), partial, &compare)
                        };
                        for (r, q) in states.iter_mut().enumerate() {
                            let query = &queries[(q0 + m * mr + r) * d..][..d];
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
                                let s = unsafe { K::dot(query, &bank[j * d..(j + 1) * d]) };
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

    /// Runs `case` where this processor has kernel `K`'s instructions,
    /// else says that it skipped it and why.
    fn run_if<K: Kernel>(case: fn()) {
        if K::available() {
            case();
        } else {
            eprintln!(
                "SKIPPED {} screen: this processor has no {}",
                K::NAME,
                K::NEEDS
            );
        }
    }

    /// Runs a generic case for every kernel this processor has.
    macro_rules! for_each_kernel {
        ($case:ident) => {{
            run_if::<bf16::Bf16>($case::<bf16::Bf16>);
            run_if::<vnni::Vnni>($case::<vnni::Vnni>);
            run_if::<int8::Int8>($case::<int8::Int8>);
        }};
    }

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
    fn screened_search_equals_the_float32_engine_and_the_definition() {
        for_each_kernel!(screened_search_equals);
    }

    fn screened_search_equals<K: Kernel>() {
        // Odd dimension (a half pair), a bank that is not whole tiles, a
        // query count that is not whole micro-tiles, k near the bank size.
        // Rows wide enough for several steps of the register block.
        for &(n, nq, d, k) in &[
            (1_000, 50, 33, 10),
            (3_001, 37, 64, 200),
            (70, 13, 16, 64),
            (1_500, 11, 1_037, 25),
        ] {
            let bank = clustered(n, d, 1);
            let queries = clustered(nq, d, 2);
            let scales: Vec<f32> = bank
                .chunks(d)
                .map(|r| 1.0 / r.iter().map(|v| v * v).sum::<f32>().sqrt())
                .collect();
            for scales in [None, Some(scales.as_slice())] {
                let got = search::<K>(&bank, scales, &queries, d, k, &Stop::never()).unwrap();
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
        for_each_kernel!(tiny_rows);
    }

    fn tiny_rows<K: Kernel>() {
        // Rows of norm about 1e-25, within a few thousandths of each other
        // (closer than the screen tells apart): their float32 squares
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
        let got = search::<K>(&bank, None, &queries, d, k, &Stop::never()).unwrap();
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
        for_each_kernel!(near_ties);
    }

    fn near_ties<K: Kernel>() {
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
        let got = search::<K>(&bank, None, &queries, d, 5, &Stop::never()).unwrap();
        assert_eq!(got.rechecked, 1);
        assert_eq!(got.neighbors.ids, brute_force(&bank, None, &queries, d, 5));
    }

    #[test]
    fn huge_and_tiny_norms_whose_products_are_ordinary_stay_exact() {
        for_each_kernel!(huge_norms);
    }

    fn huge_norms<K: Kernel>() {
        // Bank rows of norm about 1e25 (their float32 squares overflow),
        // queries of norm about 1e-24: the products are about 10.
        let (n, nq, d, k) = (5_000, 23, 48, 30);
        let bank: Vec<f32> = clustered(n, d, 5).iter().map(|v| v * 1e25).collect();
        let queries: Vec<f32> = clustered(nq, d, 6).iter().map(|v| v * 1e-24).collect();
        let got = search::<K>(&bank, None, &queries, d, k, &Stop::never()).unwrap();
        let want = exact::search(&bank, None, &queries, d, k, &Stop::never()).unwrap();
        assert_eq!(got.neighbors.ids, want.ids, "{}", K::NAME);
        assert!(
            got.reranked * 4 < n * nq,
            "{}: {} of {}",
            K::NAME,
            got.reranked,
            n * nq
        );
        for (q, row) in queries.chunks(d).enumerate() {
            let truth = brute_force(&bank, None, row, d, k);
            assert_eq!(
                &got.neighbors.ids[q * k..(q + 1) * k],
                &truth[..],
                "{}",
                K::NAME
            );
        }
    }

    #[test]
    fn the_integer_kernels_sums_equal_integer_products() {
        run_if::<int8::Int8>(|| integer_sums::<int8::Int8>(63, 64));
        run_if::<vnni::Vnni>(|| integer_sums::<vnni::Vnni>(127, 128));
    }

    /// A kernel whose bank integers reach `levels` (kept unsigned as
    /// value plus `bias`) sums them with queries of ±127 exactly.
    fn integer_sums<K: Kernel>(levels: i32, bias: i32) {
        let (mr, nr, panel, kc) = (K::MR, K::NR, K::PANEL, K::KC);
        // Two steps of KC words plus a ragged last step, integers at the
        // extremes of their ranges (the saturation limit of vpmaddubsw, the
        // largest bytes of vpdpbusd).
        let words = 2 * kc + 3;
        let d = 4 * words;
        let mut state = 1u64;
        let mut next = |levels: i32| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let v = ((state >> 33) % (2 * levels as u64 + 1)) as i32 - levels;
            if state >> 62 == 0 {
                levels * v.signum()
            } else {
                v
            }
        };
        let q: Vec<Vec<i32>> = (0..mr)
            .map(|_| (0..d).map(|_| next(127)).collect())
            .collect();
        let b: Vec<Vec<i32>> = (0..nr)
            .map(|_| (0..d).map(|_| next(levels)).collect())
            .collect();
        let word = |v: &[i32], bias: i32| {
            v.iter().enumerate().fold(0u32, |w, (i, &x)| {
                w | (((x + bias) as u32) & 0xff) << (8 * i)
            })
        };
        let mut a = vec![0u32; words * mr];
        let mut panels = vec![0u32; words * nr];
        for t in 0..words {
            for (r, q) in q.iter().enumerate() {
                a[t * mr + r] = word(&q[4 * t..4 * t + 4], 0);
            }
            for (c, b) in b.iter().enumerate() {
                let (p, lane) = (c / panel, c % panel);
                panels[p * words * panel + t * panel + lane] = word(&b[4 * t..4 * t + 4], bias);
            }
        }
        let exact: Vec<Vec<i64>> = q
            .iter()
            .map(|q| {
                b.iter()
                    .map(|b| q.iter().zip(b).map(|(&x, &y)| i64::from(x * y)).sum())
                    .collect()
            })
            .collect();
        let (ones, zeros) = (vec![1.0f32; nr], vec![0.0f32; nr]);
        let mut compare = Compare {
            floor: [0.0; MAX_MR],
            scale: [1.0; MAX_MR],
            offset: [0; MAX_MR],
            packed_norm: [0.0; MAX_MR],
            residual: [0.0; MAX_MR],
            lanes: Lanes {
                scale: &ones,
                norm: &ones,
                residual: &zeros,
            },
        };
        for (r, q) in q.iter().enumerate() {
            compare.offset[r] = bias * q.iter().sum::<i32>();
        }
        let mut partial = vec![0u32; mr * nr];
        // SAFETY: the kernel is available; the sizes are as it needs.
        let masks = unsafe {
            for t0 in (0..words - 3).step_by(kc) {
                K::micro_tile(&a, &panels, words, (t0, kc), &mut partial, &compare);
            }
            K::micro_tile(&a, &panels, words, (words - 3, 3), &mut partial, &compare)
        };
        // The floor 0 passes exactly the rows of non-negative products.
        for (r, row) in exact.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                assert_eq!(
                    masks[r] >> c & 1 == 1,
                    v >= 0,
                    "{} query {r} row {c}: {v}",
                    K::NAME
                );
            }
        }
        // And a floor one above a product drops it, one below keeps it.
        let v = exact[2][5] as f32;
        compare.floor[2] = v + 1.0;
        let masks =
            unsafe { K::micro_tile(&a, &panels, words, (0, words), &mut partial, &compare) };
        assert_eq!(masks[2] >> 5 & 1, 0);
        compare.floor[2] = v - 1.0;
        let masks =
            unsafe { K::micro_tile(&a, &panels, words, (0, words), &mut partial, &compare) };
        assert_eq!(masks[2] >> 5 & 1, 1);
    }
}
