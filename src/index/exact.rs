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
#[derive(Debug, Clone)]
pub(super) struct TopK {
    k: usize,
    /// [`key`]s of the candidates kept.
    buf: Vec<u64>,
    threshold: f32,
}

impl TopK {
    pub(super) fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::with_capacity(2 * k + LANES),
            threshold: f32::NEG_INFINITY,
        }
    }

    fn compact(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable(self.k - 1);
            self.buf.truncate(self.k);
        }
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
    /// values have been kept).
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
        if self.buf.len() >= 2 * self.k {
            self.compact();
            // The k-th best, where the selection put it.
            self.threshold = unkey(self.buf[self.k - 1]).0;
        }
    }

    /// The k best (fewer where fewer were offered), best first.
    pub(super) fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.compact();
        self.buf.sort_unstable();
        self.buf.into_iter().map(unkey).collect()
    }

    /// Writes the k best, best first, padding with id -1.
    pub(super) fn finish(mut self, ids: &mut [i64], sims: &mut [f32]) {
        self.compact();
        self.buf.sort_unstable();
        for (r, (id, sim)) in ids.iter_mut().zip(sims.iter_mut()).enumerate() {
            (*sim, *id) = match self.buf.get(r) {
                Some(&k) => {
                    let (s, j) = unkey(k);
                    (s, j as i64)
                }
                None => (f32::NEG_INFINITY, -1),
            };
        }
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

/// The blocked product pass both [`search`] and [`search_ranked`] make:
/// each block of `block` queries streams the bank once, a [`TopK`] of
/// `k_of(query)` per query, handed to `done` when the block is through.
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
    let (qb, db) = (
        block.clamp(1, QUERY_BLOCK).min(nq),
        BANK_BLOCK.min(n.max(1)),
    );
    let mut gram = vec![0f32; qb * db];
    for q0 in (0..nq).step_by(qb) {
        let rows = qb.min(nq - q0);
        let mut states: Vec<TopK> = (0..rows).map(|q| TopK::new(k_of(q0 + q).min(n))).collect();
        for d0 in (0..n).step_by(db) {
            let cols = db.min(n - d0);
            stop.check()?;
            blas::gemm_abt(
                &queries[q0 * d..(q0 + rows) * d],
                &bank[d0 * d..(d0 + cols) * d],
                rows,
                cols,
                d,
                &mut gram,
            );
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
}
