//! Weighted kNN (InstDisc, Wu et al. 2018): each test row's k most similar
//! train rows by cosine similarity vote for their labels with weight
//! exp(s / T); top-1 and top-5 accuracy over the classes seen in train or
//! test. k is clamped to the bank size; ties go to the smaller label.
//! Several k share one search (the DINO sweep k ∈ {10, 20, 100, 200}).
//! Neighbours come from [`crate::index`]: exact by default, or a faiss HNSW
//! or IVF index whose recall@k against exact search is reported.

use super::{check_pair, classes, in_top};
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::index::{recall_at_k, IndexKind, VectorIndex};
use crate::metrics::Matrix;

/// Settings of the vote.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnOptions {
    /// The k values to report (each clamped to the bank size).
    pub ks: Vec<usize>,
    /// Temperature T of the weights exp(s/T).
    pub temperature: f64,
    /// The index that finds the neighbours (exact by default).
    pub index: IndexKind,
    /// Queries on which an approximate index's recall@k is measured
    /// against exact search.
    pub recall_queries: usize,
}

impl Default for KnnOptions {
    fn default() -> Self {
        Self {
            ks: vec![200],
            temperature: 0.1,
            index: IndexKind::Exact,
            recall_queries: 1000,
        }
    }
}

/// Accuracy of the vote at one k.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnResult {
    /// Fraction of test rows whose best class is their label.
    pub top1: f64,
    /// Fraction whose label is among the 5 best classes.
    pub top5: f64,
    /// k used (after clamping).
    pub k: usize,
    /// The k asked for.
    pub k_requested: usize,
    /// T used.
    pub temperature: f64,
    /// The index used, e.g. "exact" or "hnsw(m=32,ef_search=128)".
    pub index: String,
    /// For an approximate index: its recall@k against exact search on the
    /// first `recall_queries` test rows.
    pub recall: Option<f64>,
    /// Per test row, whether its best class is its label.
    pub correct: Vec<bool>,
}

/// Weighted kNN of L2-normalised `test` rows against the `train` bank by
/// cosine similarity: the bank's rows may have any norm (each product is
/// scaled by its bank row's inverse norm, so the bank is never copied); one
/// result per entry of `opts.ks`, in that order. `stop` is checked around
/// the index build and before each chunk of queries.
pub fn knn_classify(
    train: &Matrix,
    train_y: &[i64],
    test: &Matrix,
    test_y: &[i64],
    opts: &KnnOptions,
    stop: &Stop,
) -> Result<Vec<KnnResult>> {
    let mut voter = Voter::new(train, train_y, test, test_y, opts)?;
    let kmax = voter.kmax();
    stop.check()?;
    let scales = train.inverse_norms()?;
    let index = VectorIndex::cosine(train.as_slice(), train.dim(), opts.index, scales.clone())?;
    stop.check()?;
    let recall = if opts.index.is_exact() {
        None
    } else {
        let sample = &test.as_slice()[..opts.recall_queries.clamp(1, test.rows()) * test.dim()];
        let exact = VectorIndex::cosine(train.as_slice(), train.dim(), IndexKind::Exact, scales)?
            .search(sample, kmax)?;
        Some(recall_at_k(&index.search(sample, kmax)?, &exact))
    };
    let d = test.dim();
    let chunk = index.query_chunk();
    for start in (0..test.rows()).step_by(chunk) {
        stop.check()?;
        stop.advance(start as u64, test.rows() as u64);
        let end = (start + chunk).min(test.rows());
        let found = index.search_stoppable(&test.as_slice()[start * d..end * d], kmax, stop)?;
        for q in 0..end - start {
            let r = q * kmax..(q + 1) * kmax;
            voter.vote(
                start + q,
                found.ids[r.clone()]
                    .iter()
                    .zip(&found.similarities[r])
                    .filter(|(&id, _)| id >= 0)
                    .map(|(&id, &s)| (s, id as u32)),
            );
        }
    }
    stop.advance(test.rows() as u64, test.rows() as u64);
    Ok(voter.results(recall))
}

/// The weighted vote of [`knn_classify`], query by query, from each query's
/// neighbours best first: what the kNN and the retrieval metrics' shared
/// pass over the bank ([`super::retrieval`]) both feed.
#[derive(Debug)]
pub(crate) struct Voter<'a> {
    opts: &'a KnnOptions,
    test_y: &'a [i64],
    classes: Vec<i64>,
    bank_class: Vec<usize>,
    /// Each k of `opts.ks`, clamped to the bank.
    clamped: Vec<usize>,
    /// Result slots in increasing k.
    order: Vec<usize>,
    correct: Vec<Vec<bool>>,
    hits5: Vec<usize>,
    scores: Vec<f64>,
}

impl<'a> Voter<'a> {
    /// Checks the splits and the settings.
    pub(crate) fn new(
        train: &Matrix,
        train_y: &[i64],
        test: &'a Matrix,
        test_y: &'a [i64],
        opts: &'a KnnOptions,
    ) -> Result<Self> {
        check_pair(train, train_y, test, test_y)?;
        if opts.ks.is_empty() || opts.ks.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "knn k values must be at least 1, got {:?}",
                opts.ks
            )));
        }
        let t = opts.temperature;
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "knn_temperature must be > 0, got {t}"
            )));
        }
        let classes = classes(train_y, test_y);
        if classes.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "knn needs at least two classes, found only {:?}",
                classes
            )));
        }
        let bank_class: Vec<usize> = train_y
            .iter()
            .map(|l| classes.binary_search(l).expect("label in the union"))
            .collect();
        let clamped: Vec<usize> = opts.ks.iter().map(|&k| k.min(train.rows())).collect();
        let mut order: Vec<usize> = (0..clamped.len()).collect();
        order.sort_by_key(|&i| clamped[i]);
        Ok(Self {
            opts,
            test_y,
            scores: vec![0.0; classes.len()],
            correct: vec![vec![false; test.rows()]; clamped.len()],
            hits5: vec![0; clamped.len()],
            classes,
            bank_class,
            clamped,
            order,
        })
    }

    /// The most neighbours a query needs.
    pub(crate) fn kmax(&self) -> usize {
        *self.clamped.iter().max().expect("non-empty")
    }

    /// Test row `q`'s vote from its neighbours, (similarity, bank row) best
    /// first (at least [`Voter::kmax`] of them where the bank has as many).
    pub(crate) fn vote(&mut self, q: usize, neighbours: impl Iterator<Item = (f32, u32)>) {
        let truth = self
            .classes
            .binary_search(&self.test_y[q])
            .expect("label in the union");
        let t = self.opts.temperature;
        self.scores.iter_mut().for_each(|s| *s = 0.0);
        let mut neighbours = neighbours;
        let mut taken = 0;
        for &slot in &self.order {
            while taken < self.clamped[slot] {
                let Some((s, id)) = neighbours.next() else {
                    break;
                };
                self.scores[self.bank_class[id as usize]] += (s as f64 / t).exp();
                taken += 1;
            }
            self.correct[slot][q] = in_top(&self.scores, truth, 1);
            self.hits5[slot] += in_top(&self.scores, truth, 5) as usize;
        }
    }

    /// One result per k asked for, in the order asked; `recall` that of an
    /// approximate index.
    pub(crate) fn results(self, recall: Option<f64>) -> Vec<KnnResult> {
        let n = self.test_y.len() as f64;
        let (opts, clamped, hits5) = (self.opts, self.clamped, self.hits5);
        self.correct
            .into_iter()
            .enumerate()
            .map(|(i, correct)| KnnResult {
                top1: correct.iter().filter(|&&c| c).count() as f64 / n,
                top5: hits5[i] as f64 / n,
                k: clamped[i],
                k_requested: opts.ks[i],
                temperature: opts.temperature,
                index: opts.index.describe(),
                recall,
                correct,
            })
            .collect()
    }
}
