//! The faiss wrapper: exact inner-product search (IndexFlatIP) over
//! L2-normalised vectors, i.e. cosine similarity. Calls block; run them off
//! the async workers.

use faiss::{ConcurrentIndex, FlatIndex, Index};

use crate::error::{Error, Result};

/// The k nearest bank rows of each query, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    /// Neighbours per query.
    pub k: usize,
    /// Row-major [queries, k] bank row ids (-1 where the bank has fewer rows).
    pub ids: Vec<i64>,
    /// Row-major [queries, k] inner products.
    pub similarities: Vec<f32>,
}

/// Exact inner-product index over a bank of vectors.
pub struct ExactIndex {
    index: FlatIndex,
    dim: usize,
    len: usize,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("dim", &self.dim)
            .field("len", &self.len)
            .finish()
    }
}

impl ExactIndex {
    /// Indexes `bank`, row-major [n, dim].
    pub fn new(bank: &[f32], dim: usize) -> Result<Self> {
        if dim == 0 || bank.len() % dim != 0 {
            return Err(Error::InvalidArgument(format!(
                "bank of {} values is not a whole number of rows of dimension {dim}",
                bank.len()
            )));
        }
        let mut index = FlatIndex::new_ip(dim as u32)?;
        index.add(bank)?;
        Ok(Self {
            index,
            dim,
            len: bank.len() / dim,
        })
    }

    /// Rows in the bank.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the bank is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `k` largest inner products of each query row, best first.
    pub fn search(&self, queries: &[f32], k: usize) -> Result<Neighbors> {
        if queries.len() % self.dim != 0 {
            return Err(Error::InvalidArgument(format!(
                "queries of {} values are not rows of dimension {}",
                queries.len(),
                self.dim
            )));
        }
        let result = self.index.search(queries, k)?;
        Ok(Neighbors {
            k,
            ids: result
                .labels
                .iter()
                .map(|l| l.get().map_or(-1, |v| v as i64))
                .collect(),
            similarities: result.distances,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn exact_search_equals_brute_force() {
        let (n, q, d, k) = (200, 17, 8, 5);
        let bank = values(n * d, 1);
        let queries = values(q * d, 2);
        let index = ExactIndex::new(&bank, d).unwrap();
        assert_eq!(index.len(), n);
        let found = index.search(&queries, k).unwrap();
        for i in 0..q {
            let qi = &queries[i * d..(i + 1) * d];
            let mut dots: Vec<(f32, i64)> = (0..n)
                .map(|j| {
                    let row = &bank[j * d..(j + 1) * d];
                    (
                        qi.iter().zip(row).map(|(a, b)| a * b).sum::<f32>(),
                        j as i64,
                    )
                })
                .collect();
            dots.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (r, (dot, id)) in dots.iter().take(k).enumerate() {
                assert_eq!(found.ids[i * k + r], *id, "query {i} rank {r}");
                assert!((found.similarities[i * k + r] - dot).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn k_beyond_the_bank_pads_with_minus_one() {
        let index = ExactIndex::new(&values(3 * 4, 3), 4).unwrap();
        let found = index.search(&values(4, 4), 5).unwrap();
        assert_eq!(&found.ids[3..], &[-1, -1]);
    }

    #[test]
    fn ragged_input_is_rejected() {
        assert!(ExactIndex::new(&[1.0; 7], 4).is_err());
    }
}
