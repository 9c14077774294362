//! Exact top-k inner-product search through BLAS: Gram blocks of queries ×
//! bank rows come from sgemm, and each query's k best are kept in parallel
//! by a thresholded buffer behind a vectorised test (most runs of 16 values
//! hold nothing above the threshold and are skipped at once). Memory is
//! O(query block × bank block).

use rayon::prelude::*;

use super::Neighbors;
use crate::blas;
use crate::cancel::Stop;
use crate::error::Result;

/// Queries per block (the rows of one sgemm).
pub const QUERY_BLOCK: usize = 512;
/// Bank rows per block (the columns of one sgemm). Measured here on 10,000
/// queries × 50,000 rows, d = 128: blocks of 512 × 25,000 (51 MB) were
/// fastest among 256–4,096 × 4,096–50,000.
const BANK_BLOCK: usize = 25_000;
/// Values per max-filter step.
const LANES: usize = 16;

/// The sort key of a (similarity, id) pair: ascending keys are best first
/// (larger similarity, then smaller id, similarities ordered as
/// `f32::total_cmp` orders them). An integer key sorts and selects several
/// times faster than the pair with a comparison closure, which matters
/// when a query keeps tens of thousands of rows (the R of MAP@R).
fn key(v: f32, id: u32) -> u64 {
    let bits = v.to_bits();
    // Ascending order of the floats as unsigned integers.
    let ordered = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    };
    (u64::from(!ordered) << 32) | u64::from(id)
}

/// The (similarity, id) of a [`key`].
fn unkey(key: u64) -> (f32, u32) {
    let ordered = !((key >> 32) as u32);
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    (f32::from_bits(bits), key as u32)
}

/// The running k best (similarity, id) of one query. Candidates above the
/// threshold (the k-th best so far) go to a buffer of 2k; when it fills, a
/// selection keeps the k best and raises the threshold. Ids arrive in
/// increasing order, so a later value equal to the threshold can be dropped
/// without breaking the tie rule (ties go to the smaller id).
///
/// A query that keeps many rows (the R of MAP@R, tens of thousands) may
/// start from a floor estimated from a sample of the bank
/// ([`TopK::with_floor`]): only rows above it are kept, so the buffer
/// rarely fills and stays in id order, and the final order is a stable
/// radix sort on the similarity alone. A floor that turns out too high (fewer
/// than k rows above it) is reported by [`TopK::short`] and the query is
/// searched again without one: the answer never depends on the estimate.
#[derive(Debug, Clone)]
pub(super) struct TopK {
    k: usize,
    /// [`key`]s of the candidates kept.
    buf: Vec<u64>,
    threshold: f32,
    /// The threshold is an estimate, not yet the k-th of kept values.
    hinted: bool,
    /// The buffer is in increasing id order (no selection has moved it).
    in_order: bool,
    /// Candidates held before a selection keeps the k best.
    limit: usize,
}

impl TopK {
    pub(super) fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::with_capacity(2 * k + LANES),
            threshold: f32::NEG_INFINITY,
            hinted: false,
            in_order: true,
            limit: 2 * k,
        }
    }

    /// A running top k whose threshold follows the k-th best more closely:
    /// a selection each k/4 (at least 16) new candidates rather than each
    /// k. For a screen, whose every candidate above the threshold costs a
    /// float32 product, a fresher threshold passes fewer.
    pub(super) fn eager(k: usize) -> Self {
        Self {
            limit: k + (k / 4).max(16),
            ..Self::new(k)
        }
    }

    /// A running top k that keeps only values above `floor`, an estimate of
    /// a value below the final k-th (see [`TopK::short`]).
    pub(super) fn with_floor(k: usize, floor: f32) -> Self {
        Self {
            threshold: floor,
            hinted: true,
            ..Self::new(k)
        }
    }

    /// Whether the floor it started from was above the k-th best of what
    /// was offered (so fewer than k values were kept, and the query must be
    /// searched again without a floor).
    pub(super) fn short(&self) -> bool {
        self.hinted && self.buf.len() < self.k
    }

    fn compact(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable(self.k - 1);
            self.buf.truncate(self.k);
            self.in_order = false;
        }
    }

    /// The kept keys, best first, at most k.
    fn sorted_keys(mut self) -> Vec<u64> {
        if self.in_order {
            // Stable on the similarity: ties stay in id order.
            sort_keys(&mut self.buf, 32);
            self.buf.truncate(self.k);
        } else {
            self.compact();
            sort_keys(&mut self.buf, 0);
        }
        self.buf
    }

    /// Offers `row`, whose first value has id `offset`.
    pub(super) fn push(&mut self, row: &[f32], offset: usize) {
        if self.k == 0 {
            return;
        }
        for (c, chunk) in row.chunks(LANES).enumerate() {
            // No short-circuit, so that the compiler vectorises the test.
            if !chunk
                .iter()
                .fold(false, |any, &v| any | (v > self.threshold))
            {
                continue;
            }
            let base = offset + c * LANES;
            for (o, &v) in chunk.iter().enumerate() {
                self.offer(v, base + o);
            }
        }
    }

    /// What a value must exceed to be kept: a lower bound on the k-th best
    /// so far (the k-th at the last compaction; minus infinity until 2k
    /// values have been kept), or the floor it started from.
    pub(super) fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Offers one value with id `id` (ids in increasing order, as for
    /// [`TopK::push`]).
    pub(super) fn offer(&mut self, v: f32, id: usize) {
        // A NaN is dropped, as `push` drops it.
        if self.k == 0 || v.is_nan() || v <= self.threshold {
            return;
        }
        self.buf.push(key(v, id as u32));
        if self.buf.len() >= self.limit {
            self.compact();
            // The k-th best, where the selection put it.
            self.threshold = unkey(self.buf[self.k - 1]).0;
            self.hinted = false;
        }
    }

    /// The k best (fewer where fewer were offered), best first.
    pub(super) fn into_sorted(self) -> Vec<(f32, u32)> {
        self.sorted_keys().into_iter().map(unkey).collect()
    }

    /// Writes the k best, best first, padding with id -1.
    pub(super) fn finish(self, ids: &mut [i64], sims: &mut [f32]) {
        let keys = self.sorted_keys();
        for (r, (id, sim)) in ids.iter_mut().zip(sims.iter_mut()).enumerate() {
            (*sim, *id) = match keys.get(r) {
                Some(&k) => {
                    let (s, j) = unkey(k);
                    (s, j as i64)
                }
                None => (f32::NEG_INFINITY, -1),
            };
        }
    }
}

/// Sorts [`key`]s ascending (best first) on their bits from `from` up (0:
/// the whole key; 32: the similarity alone, stably, so that keys in id
/// order keep it among ties). Short lists by comparison; long ones (the
/// tens of thousands of rows of MAP@R's R) by a least-significant-digit
/// radix sort of 11-bit digits, skipping digits every key shares, several
/// times faster than a comparison sort of as many keys.
fn sort_keys(keys: &mut Vec<u64>, from: u32) {
    const DIGIT: u32 = 11;
    if keys.len() < 1024 {
        if from == 0 {
            keys.sort_unstable();
        } else {
            keys.sort_by_key(|&k| k >> from);
        }
        return;
    }
    let mut other = vec![0u64; keys.len()];
    let mut shift = from;
    while shift < 64 {
        let mask = (1u64 << DIGIT.min(64 - shift)) - 1;
        let digit = |k: u64| ((k >> shift) & mask) as usize;
        let mut counts = vec![0usize; 1 << DIGIT];
        for &k in keys.iter() {
            counts[digit(k)] += 1;
        }
        if !counts.contains(&keys.len()) {
            let mut start = 0;
            for c in counts.iter_mut() {
                (*c, start) = (start, start + *c);
            }
            for &k in keys.iter() {
                let d = digit(k);
                other[counts[d]] = k;
                counts[d] += 1;
            }
            std::mem::swap(keys, &mut other);
        }
        shift += DIGIT;
    }
}

/// The k best bank rows by inner product for every query row, each bank
/// row's products times its entry of `scales` when given (cosine similarity
/// against rows of any norm, without a normalised copy of the bank); `stop`
/// is checked before each product block (the error of a stopped job).
pub fn search(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    k: usize,
    stop: &Stop,
) -> Result<Neighbors> {
    let nq = queries.len() / d;
    let mut ids = vec![-1i64; nq * k];
    let mut similarities = vec![f32::NEG_INFINITY; nq * k];
    if k > 0 {
        let (ids_out, sims_out) = (&mut ids, &mut similarities);
        ranked(
            bank,
            scales,
            queries,
            d,
            &|_| k,
            QUERY_BLOCK,
            stop,
            |q0, states| {
                let rows = states.len();
                states
                    .into_par_iter()
                    .zip(ids_out[q0 * k..(q0 + rows) * k].par_chunks_mut(k))
                    .zip(sims_out[q0 * k..(q0 + rows) * k].par_chunks_mut(k))
                    .for_each(|((state, ids), sims)| state.finish(ids, sims));
                Ok(())
            },
        )?;
    }
    Ok(Neighbors {
        k,
        ids,
        similarities,
    })
}

/// Every query's `k_of(query)` best bank rows, (similarity, row) best first
/// (ties: the smaller row), handed to `on_block` a block of at most
/// `block` queries at a time, in order, with the index of the block's first
/// query: each query may ask for a different number of rows (the R of
/// MAP@R, up to the whole bank), and no more than one block's lists are
/// ever held. The products are those of [`search`] (scaled by `scales` when
/// given); `stop` is checked before each product block.
#[allow(clippy::too_many_arguments)]
pub fn search_ranked(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    k_of: &(dyn Fn(usize) -> usize + Sync),
    block: usize,
    stop: &Stop,
    mut on_block: impl FnMut(usize, Vec<Vec<(f32, u32)>>) -> Result<()>,
) -> Result<()> {
    ranked(bank, scales, queries, d, k_of, block, stop, |q0, states| {
        let lists = states.into_par_iter().map(TopK::into_sorted).collect();
        on_block(q0, lists)
    })
}

/// Rows a query keeps from which it starts from a sampled floor
/// ([`TopK::with_floor`]); fewer keep the running threshold alone.
const FLOOR_FROM: usize = 2_048;
/// Bank rows in the sample the floors are estimated from.
const SAMPLE_ROWS: usize = 8_192;

/// A sample of the bank for [`Sample::floor`]: every (n / m)-th row, scaled, with
/// the number of bank rows it stands for.
struct Sample {
    rows: Vec<f32>,
    m: usize,
    n: usize,
}

impl Sample {
    fn of(bank: &[f32], scales: Option<&[f32]>, d: usize) -> Self {
        let n = bank.len() / d;
        let m = SAMPLE_ROWS.min(n);
        let mut rows = Vec::with_capacity(m * d);
        for j in 0..m {
            let i = j * n / m;
            let s = scales.map_or(1.0, |s| s[i]);
            rows.extend(bank[i * d..(i + 1) * d].iter().map(|v| v * s));
        }
        Self { rows, m, n }
    }

    /// A floor for a top `k` from the query's products with the sample:
    /// the sample's value with a few more rows above it than k's share of
    /// the sample (a fifth more, four standard deviations of the count and
    /// eight rows), so that the bank rarely has fewer than k rows above it;
    /// None where that is most of the sample.
    fn floor(&self, products: &mut [f32], k: usize) -> Option<f32> {
        let expected = k as f64 * self.m as f64 / self.n as f64;
        let above = (1.2 * expected + 4.0 * expected.sqrt() + 8.0).ceil() as usize;
        if above >= self.m / 2 {
            return None;
        }
        let (_, v, _) = products.select_nth_unstable_by(above, |a, b| b.total_cmp(a));
        v.is_finite().then_some(*v)
    }
}

/// Streams the bank past `states` (one per row of `queries`): sgemm
/// blocks of queries × bank rows, each product row offered to its query's
/// running top k. `gram` holds at least rows × [`BANK_BLOCK`] values.
fn stream(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    states: &mut [TopK],
    gram: &mut [f32],
    stop: &Stop,
) -> Result<()> {
    let n = bank.len() / d;
    let rows = states.len();
    let db = BANK_BLOCK.min(n.max(1));
    for d0 in (0..n).step_by(db) {
        let cols = db.min(n - d0);
        stop.check()?;
        blas::gemm_abt(queries, &bank[d0 * d..(d0 + cols) * d], rows, cols, d, gram);
        let block_scales = scales.map(|s| &s[d0..d0 + cols]);
        states
            .par_iter_mut()
            .zip(gram[..rows * cols].par_chunks_mut(cols))
            .for_each(|(state, row)| {
                if let Some(s) = block_scales {
                    row.iter_mut().zip(s).for_each(|(v, s)| *v *= s);
                }
                state.push(row, d0)
            });
    }
    Ok(())
}

/// The blocked product pass both [`search`] and [`search_ranked`] make:
/// each block of `block` queries streams the bank once, a [`TopK`] of
/// `k_of(query)` per query, handed to `done` when the block is through.
/// A query that keeps [`FLOOR_FROM`] rows or more starts from a floor
/// estimated from its products with a sample of the bank; where the floor
/// proves too high, it streams the bank again without one.
#[allow(clippy::too_many_arguments)]
fn ranked(
    bank: &[f32],
    scales: Option<&[f32]>,
    queries: &[f32],
    d: usize,
    k_of: &(dyn Fn(usize) -> usize + Sync),
    block: usize,
    stop: &Stop,
    mut done: impl FnMut(usize, Vec<TopK>) -> Result<()>,
) -> Result<()> {
    let n = bank.len() / d;
    let nq = queries.len() / d;
    if nq == 0 {
        return Ok(());
    }
    let qb = block.clamp(1, QUERY_BLOCK).min(nq);
    let mut gram = vec![0f32; qb * BANK_BLOCK.min(n.max(1))];
    let sample = (0..nq)
        .any(|q| k_of(q).min(n) >= FLOOR_FROM)
        .then(|| Sample::of(bank, scales, d));
    for q0 in (0..nq).step_by(qb) {
        let rows = qb.min(nq - q0);
        let block_queries = &queries[q0 * d..(q0 + rows) * d];
        let ks: Vec<usize> = (q0..q0 + rows).map(|q| k_of(q).min(n)).collect();
        let mut floors = vec![None; rows];
        if let Some(sample) = sample
            .as_ref()
            .filter(|_| ks.iter().any(|&k| k >= FLOOR_FROM))
        {
            let m = sample.m;
            blas::gemm_abt(block_queries, &sample.rows, rows, m, d, &mut gram);
            floors
                .par_iter_mut()
                .zip(&ks)
                .zip(gram[..rows * m].par_chunks_mut(m))
                .filter(|((_, &k), _)| k >= FLOOR_FROM)
                .for_each(|((floor, &k), products)| *floor = sample.floor(products, k));
        }
        let mut states: Vec<TopK> = ks
            .iter()
            .zip(&floors)
            .map(|(&k, floor)| floor.map_or_else(|| TopK::new(k), |f| TopK::with_floor(k, f)))
            .collect();
        stream(bank, scales, block_queries, d, &mut states, &mut gram, stop)?;
        // Queries whose floor was too high: again, without one.
        let short: Vec<usize> = (0..rows).filter(|&q| states[q].short()).collect();
        if !short.is_empty() {
            let again: Vec<f32> = short
                .iter()
                .flat_map(|&q| &block_queries[q * d..(q + 1) * d])
                .copied()
                .collect();
            let mut fresh: Vec<TopK> = short.iter().map(|&q| TopK::new(states[q].k)).collect();
            stream(bank, scales, &again, d, &mut fresh, &mut gram, stop)?;
            for (&q, state) in short.iter().zip(fresh) {
                states[q] = state;
            }
        }
        done(q0, states)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top_k(row: &[f32], k: usize, ids: &mut [i64], sims: &mut [f32]) {
        let mut state = TopK::new(k.min(row.len()));
        // Offer the row in two pieces, as the blocked search does.
        let half = row.len() / 2;
        state.push(&row[..half], 0);
        state.push(&row[half..], half);
        state.finish(ids, sims);
    }

    #[test]
    fn keys_order_pairs_best_first_and_decode() {
        let pairs = [
            (1.0f32, 3u32),
            (0.5, 0),
            (0.5, 7),
            (0.0, 1),
            (-0.0, 0),
            (-0.25, 2),
            (-1.0, 9),
            (f32::NEG_INFINITY, 4),
        ];
        let keys: Vec<u64> = pairs.iter().map(|&(v, i)| key(v, i)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for (&(v, i), &k) in pairs.iter().zip(&keys) {
            assert_eq!(unkey(k), (v, i));
            assert_eq!(unkey(k).0.to_bits(), v.to_bits());
        }
    }

    #[test]
    fn top_k_by_the_definition() {
        let row = [
            0.1, 0.9, -0.3, 0.9, 0.5, 0.2, 0.7, 0.0, 0.95, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1,
            0.1, 0.8,
        ];
        let mut ids = [0i64; 4];
        let mut sims = [0f32; 4];
        top_k(&row, 4, &mut ids, &mut sims);
        assert_eq!(ids, [8, 1, 3, 18], "ties go to the smaller id");
        assert_eq!(sims, [0.95, 0.9, 0.9, 0.8]);
        let mut ids = [0i64; 3];
        let mut sims = [0f32; 3];
        top_k(&row[..2], 3, &mut ids, &mut sims);
        assert_eq!(ids, [1, 0, -1]);
    }

    /// Every query's ranked list by a full sort (ties: the smaller id), the
    /// products in float64 (exact for the small integers used here).
    fn brute(
        bank: &[f32],
        queries: &[f32],
        d: usize,
        k_of: &dyn Fn(usize) -> usize,
    ) -> Vec<Vec<(f32, u32)>> {
        queries
            .chunks(d)
            .enumerate()
            .map(|(q, query)| {
                let mut all: Vec<(f64, u32)> = bank
                    .chunks(d)
                    .enumerate()
                    .map(|(i, row)| {
                        let p: f64 = row
                            .iter()
                            .zip(query)
                            .map(|(&a, &b)| f64::from(a) * f64::from(b))
                            .sum();
                        (p, i as u32)
                    })
                    .collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                all.truncate(k_of(q));
                all.into_iter().map(|(p, i)| (p as f32, i)).collect()
            })
            .collect()
    }

    fn ranked_lists(
        bank: &[f32],
        queries: &[f32],
        d: usize,
        k_of: &(dyn Fn(usize) -> usize + Sync),
        block: usize,
    ) -> Vec<Vec<(f32, u32)>> {
        let mut out = Vec::new();
        search_ranked(
            bank,
            None,
            queries,
            d,
            k_of,
            block,
            &Stop::never(),
            |q0, lists| {
                assert_eq!(q0, out.len());
                out.extend(lists);
                Ok(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn long_lists_from_sampled_floors_equal_a_full_sort_with_ties() {
        // Small integers: exact products and a great many ties.
        let (n, d, nq) = (20_000, 8, 6);
        let mut rng = crate::rng::SplitMix64::new(3);
        let mut value = || rng.below(5) as f32 - 2.0;
        let bank: Vec<f32> = (0..n * d).map(|_| value()).collect();
        let queries: Vec<f32> = (0..nq * d).map(|_| value()).collect();
        // Long lists (floored), a short one, the whole bank.
        let k_of = |q: usize| [3_000, 2_048, 50, 12_000, n, 4_999][q];
        let want = brute(&bank, &queries, d, &k_of);
        for block in [1, 4, 512] {
            assert_eq!(
                ranked_lists(&bank, &queries, d, &k_of, block),
                want,
                "block {block}"
            );
        }
    }

    #[test]
    fn a_floor_set_too_high_by_the_sample_is_searched_again() {
        // The sampled rows (every n/m-th) are the best rows for the first
        // 2,000 of them and the worst for the rest, so the sample's floor
        // for a top 3,000 lies above all but 2,000 rows of the bank, and
        // for a top 4,000 far below the bank's 4,000th (a full buffer).
        let (n, d) = (20_000, 2);
        let m = SAMPLE_ROWS;
        let mut bank = vec![0f32; n * d];
        let mut rng = crate::rng::SplitMix64::new(5);
        for row in bank.chunks_mut(d) {
            row[0] = 1.0 + rng.below(3) as f32;
        }
        for j in 0..m {
            let i = j * n / m;
            bank[i * d] = if j < 2_000 { 10.0 } else { -1.0 };
        }
        let queries = vec![1.0, 0.0];
        for k in [3_000, 4_000] {
            let k_of = move |_: usize| k;
            let got = ranked_lists(&bank, &queries, d, &k_of, 1);
            assert_eq!(got, brute(&bank, &queries, d, &k_of), "k = {k}");
        }
        let k_of = |_: usize| 3_000;
        let sample = Sample::of(&bank, None, d);
        let mut products: Vec<f32> = sample.rows.chunks(d).map(|r| r[0]).collect();
        let floor = sample.floor(&mut products, k_of(0)).unwrap();
        assert_eq!(floor, 10.0, "the floor this test means to make too high");
    }

    #[test]
    fn radix_sorts_equal_comparison_sorts() {
        let mut rng = crate::rng::SplitMix64::new(9);
        for len in [10, 1_500, 40_000] {
            let keys: Vec<u64> = (0..len)
                .map(|i| key((rng.below(700) as f32 - 350.0) / 64.0, i as u32 * 3))
                .collect();
            let mut want = keys.clone();
            want.sort_unstable();
            let mut got = keys.clone();
            got.reverse();
            sort_keys(&mut got, 0);
            assert_eq!(got, want, "whole keys, {len}");
            // Keys in id order, sorted on the similarity alone: stable.
            let mut got = keys.clone();
            sort_keys(&mut got, 32);
            assert_eq!(got, want, "similarity alone, {len}");
        }
    }
}
