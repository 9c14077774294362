//! Retrieval metrics of the test rows as queries against a gallery ranked by
//! cosine similarity, as the metric-learning literature reads an embedding
//! (Musgrave, Belongie and Lim, "A Metric Learning Reality Check", ECCV
//! 2020, Sec. 3.2; Song et al. 2016 for Recall@K), with the definitions of
//! pytorch-metric-learning's `AccuracyCalculator`:
//!
//! - R is the number of gallery rows of the query's class (less the query
//!   itself when the gallery is the test split, each query left out of its
//!   own ranking: AccuracyCalculator's `ref_includes_query`). A query with
//!   R = 0 is left out of every mean (AccuracyCalculator's lone queries).
//! - Precision@1: whether the first ranked row is of the query's class.
//! - R-Precision: the fraction of the first R ranked rows of its class.
//! - MAP@R = (1/R) Σ_{i ≤ R} P(i)·rel(i), P(i) the precision of the first i
//!   ranked rows and rel(i) whether row i is of the query's class.
//! - Recall@K: whether one of the first K ranked rows is of its class.
//!
//! The ranking is exact: each query's top max(R, K) rows are selected from
//! its similarity rows a block of queries at a time, never stored for all
//! queries at once ([`crate::index::search_ranked`]: the bfloat16 screen
//! with its float32 re-rank where the processor has it and R is small
//! against the gallery; elsewhere sgemm blocks and a running selection per
//! query, which for an R of thousands starts from a floor estimated from a
//! sample of the gallery and ends in a radix sort). Ties in similarity go
//! to the smaller gallery row. With the train split as gallery, the
//! weighted kNN takes its neighbours from the same pass
//! ([`knn_and_retrieval`]).

use rayon::prelude::*;

use super::knn::{KnnOptions, KnnResult, Voter};
use super::{check_pair, check_split};
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::index;
use crate::metrics::Matrix;

/// The gallery the queries rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gallery {
    /// The train split: the test rows query it.
    Train,
    /// The test split itself, each query left out of its own ranking.
    Test,
}

impl Gallery {
    /// "train" or "test", as the spec and the report name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Gallery::Train => "train",
            Gallery::Test => "test",
        }
    }
}

/// Memory the ranked lists of one block of queries may hold: each query's
/// selection keeps up to 2·max(R, K) + 16 (similarity, row) pairs, so a
/// block holds about this much whatever R is (64 queries of R = 50,000; 512,
/// the kNN's block, for R up to about 8,000).
const LISTS_BUDGET: usize = 64 << 20;

/// Settings of the retrieval metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalOptions {
    /// The K of Recall@K, each at least 1.
    pub recall_ks: Vec<usize>,
    /// The gallery the queries rank.
    pub gallery: Gallery,
}

/// One query's MAP@R and R-Precision (the per-class means' terms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryScore {
    /// Its average precision at R.
    pub map_at_r: f64,
    /// Its R-Precision.
    pub r_precision: f64,
}

/// The retrieval metrics of a split's queries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalResult {
    /// Mean Precision@1 over the scored queries.
    pub precision_at_1: f64,
    /// Mean R-Precision.
    pub r_precision: f64,
    /// Mean MAP@R.
    pub map_at_r: f64,
    /// (K, Recall@K) in the order of the options' K.
    pub recall_at_k: Vec<(usize, f64)>,
    /// The gallery ranked.
    pub gallery: Gallery,
    /// Queries scored.
    pub queries: usize,
    /// Queries left out (R = 0).
    pub lone_queries: usize,
    /// Each query's scores (None for a lone query), for the per-class means.
    pub per_query: Vec<Option<QueryScore>>,
}

/// One query's scores from its ranked list.
#[derive(Debug, Clone)]
struct Scored {
    score: QueryScore,
    /// Whether its first ranked row is of its class.
    first: bool,
    /// Per K of Recall@K: whether one of its first K rows is of its class.
    hits: Vec<bool>,
}

/// The scores of a ranked list: `relevant` holds, best first, whether each
/// ranked row is of the query's class (at least min(R, K) of them where the
/// gallery has as many); `r` the query's R (at least 1).
fn score(relevant: &[bool], r: usize, recall_ks: &[usize]) -> Scored {
    let (mut found, mut precision_sum) = (0usize, 0f64);
    for (i, &rel) in relevant.iter().take(r).enumerate() {
        if rel {
            found += 1;
            precision_sum += found as f64 / (i + 1) as f64;
        }
    }
    Scored {
        score: QueryScore {
            map_at_r: precision_sum / r as f64,
            r_precision: found as f64 / r as f64,
        },
        first: relevant.first().copied().unwrap_or(false),
        hits: recall_ks
            .iter()
            .map(|&k| relevant.iter().take(k).any(|&rel| rel))
            .collect(),
    }
}

/// The scores of a block's ranked lists (`lists[i]` is query `q0 + i`'s),
/// in parallel: None for a query with R = 0 (`r_of`).
fn score_block(
    lists: &[Vec<(f32, u32)>],
    q0: usize,
    r_of: &(dyn Fn(usize) -> usize + Sync),
    relevant: &(dyn Fn(usize, u32) -> bool + Sync),
    recall_ks: &[usize],
) -> Vec<Option<Scored>> {
    lists
        .par_iter()
        .enumerate()
        .map(|(i, list)| {
            let q = q0 + i;
            let r = r_of(q);
            (r > 0).then(|| {
                let rel: Vec<bool> = list.iter().map(|&(_, id)| relevant(q, id)).collect();
                score(&rel, r, recall_ks)
            })
        })
        .collect()
}

/// Sums the scores of queries a block at a time.
#[derive(Debug)]
struct Scorer<'a> {
    opts: &'a RetrievalOptions,
    per_query: Vec<Option<QueryScore>>,
    precision_at_1: usize,
    hits: Vec<usize>,
}

impl<'a> Scorer<'a> {
    fn new(opts: &'a RetrievalOptions, queries: usize) -> Result<Self> {
        if opts.recall_ks.is_empty() || opts.recall_ks.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "the K of Recall@K must be at least 1, got {:?} (`recall_ks`)",
                opts.recall_ks
            )));
        }
        Ok(Self {
            opts,
            per_query: vec![None; queries],
            precision_at_1: 0,
            hits: vec![0; opts.recall_ks.len()],
        })
    }

    /// The scores of the queries from `q0` on (None: left out).
    fn add(&mut self, q0: usize, scored: Vec<Option<Scored>>) {
        for (i, s) in scored.into_iter().enumerate() {
            let Some(s) = s else { continue };
            self.precision_at_1 += s.first as usize;
            for (total, hit) in self.hits.iter_mut().zip(&s.hits) {
                *total += *hit as usize;
            }
            self.per_query[q0 + i] = Some(s.score);
        }
    }

    fn result(self) -> RetrievalResult {
        let scored: Vec<QueryScore> = self.per_query.iter().flatten().copied().collect();
        let n = scored.len();
        let mean = |f: fn(&QueryScore) -> f64| {
            if n == 0 {
                f64::NAN
            } else {
                scored.iter().map(f).sum::<f64>() / n as f64
            }
        };
        let rate = |hits: usize| {
            if n == 0 {
                f64::NAN
            } else {
                hits as f64 / n as f64
            }
        };
        RetrievalResult {
            precision_at_1: rate(self.precision_at_1),
            r_precision: mean(|s| s.r_precision),
            map_at_r: mean(|s| s.map_at_r),
            recall_at_k: self
                .opts
                .recall_ks
                .iter()
                .zip(&self.hits)
                .map(|(&k, &h)| (k, rate(h)))
                .collect(),
            gallery: self.opts.gallery,
            queries: n,
            lone_queries: self.per_query.len() - n,
            per_query: self.per_query,
        }
    }
}

/// Each label's number of rows in `labels`, looked up by binary search.
struct Counts(Vec<(i64, usize)>);

impl Counts {
    fn of(labels: &[i64]) -> Self {
        let mut sorted = labels.to_vec();
        sorted.sort_unstable();
        let mut counts: Vec<(i64, usize)> = Vec::new();
        for l in sorted {
            match counts.last_mut() {
                Some((last, n)) if *last == l => *n += 1,
                _ => counts.push((l, 1)),
            }
        }
        Self(counts)
    }

    fn get(&self, label: i64) -> usize {
        self.0
            .binary_search_by_key(&label, |&(l, _)| l)
            .map_or(0, |i| self.0[i].1)
    }
}

/// The retrieval metrics of the L2-normalised `test` rows (labels `test_y`)
/// against the gallery of `opts`: the `train` split (rows of any norm,
/// compared by cosine similarity) or the test split itself. With the train
/// split as gallery and `knn` given, the weighted kNN's votes are taken
/// from the same pass over the bank (the exact engine's neighbours; an
/// approximate index is searched apart by [`super::knn_classify`]). `stop`
/// is checked before each product block; progress is reported per block
/// of queries.
pub fn knn_and_retrieval(
    train: Option<(&Matrix, &[i64])>,
    test: &Matrix,
    test_y: &[i64],
    knn: Option<&KnnOptions>,
    opts: &RetrievalOptions,
    stop: &Stop,
) -> Result<(Option<Vec<KnnResult>>, RetrievalResult)> {
    check_split("test", test, test_y)?;
    let mut scorer = Scorer::new(opts, test.rows())?;
    let shared = opts.gallery == Gallery::Train && knn.is_some_and(|k| k.index.is_exact());
    let knn_apart = match (knn, train) {
        (Some(k), Some((train, train_y))) if !shared => {
            Some(super::knn_classify(train, train_y, test, test_y, k, stop)?)
        }
        _ => None,
    };
    let d = test.dim();
    let nq = test.rows();
    let maxk = *opts.recall_ks.iter().max().expect("checked non-empty");
    match opts.gallery {
        Gallery::Train => {
            let Some((train, train_y)) = train else {
                return Err(Error::InvalidArgument(
                    "the retrieval gallery \"train\" needs a train split (`retrieval_gallery`)"
                        .into(),
                ));
            };
            check_pair(train, train_y, test, test_y)?;
            let counts = Counts::of(train_y);
            let mut voter = match knn {
                Some(k) if shared => Some(Voter::new(train, train_y, test, test_y, k)?),
                _ => None,
            };
            let kmax = voter.as_ref().map_or(0, Voter::kmax);
            let r_of = |q: usize| counts.get(test_y[q]);
            let k_of = |q: usize| r_of(q).max(maxk).max(kmax);
            let scales = train.inverse_norms()?;
            index::search_ranked(
                train.as_slice(),
                Some(&scales),
                test.as_slice(),
                d,
                &k_of,
                LISTS_BUDGET,
                stop,
                |q0, lists| {
                    if let Some(v) = voter.as_mut() {
                        for (i, list) in lists.iter().enumerate() {
                            v.vote(q0 + i, list.iter().copied());
                        }
                    }
                    let relevant = |q: usize, id: u32| train_y[id as usize] == test_y[q];
                    scorer.add(
                        q0,
                        score_block(&lists, q0, &r_of, &relevant, &opts.recall_ks),
                    );
                    stop.advance((q0 + lists.len()) as u64, nq as u64);
                    Ok(())
                },
            )?;
            let knn = voter.map(|v| v.results(None)).or(knn_apart);
            Ok((knn, scorer.result()))
        }
        Gallery::Test => {
            let counts = Counts::of(test_y);
            let r_of = |q: usize| counts.get(test_y[q]) - 1;
            // One more row than needed: the query itself, dropped below.
            let k_of = |q: usize| (r_of(q).max(maxk) + 1).min(nq);
            index::search_ranked(
                test.as_slice(),
                None,
                test.as_slice(),
                d,
                &k_of,
                LISTS_BUDGET,
                stop,
                |q0, mut lists| {
                    for (i, list) in lists.iter_mut().enumerate() {
                        // The query itself leaves its ranking; where a tie
                        // kept it out of its own list, the last row leaves
                        // in its place (as AccuracyCalculator does).
                        match list.iter().position(|&(_, id)| id as usize == q0 + i) {
                            Some(p) => {
                                list.remove(p);
                            }
                            None => {
                                list.pop();
                            }
                        }
                    }
                    let relevant = |q: usize, id: u32| test_y[id as usize] == test_y[q];
                    scorer.add(
                        q0,
                        score_block(&lists, q0, &r_of, &relevant, &opts.recall_ks),
                    );
                    stop.advance((q0 + lists.len()) as u64, nq as u64);
                    Ok(())
                },
            )?;
            Ok((knn_apart, scorer.result()))
        }
    }
}

/// Each class's mean MAP@R and R-Precision over its scored queries, for the
/// classes `labels` (sorted) of `test_y`; NaN for a class with none.
pub fn per_class(result: &RetrievalResult, test_y: &[i64], labels: &[i64]) -> (Vec<f64>, Vec<f64>) {
    let c = labels.len();
    let (mut map, mut rp, mut n) = (vec![0.0; c], vec![0.0; c], vec![0usize; c]);
    for (s, y) in result.per_query.iter().zip(test_y) {
        if let (Some(s), Ok(i)) = (s, labels.binary_search(y)) {
            map[i] += s.map_at_r;
            rp[i] += s.r_precision;
            n[i] += 1;
        }
    }
    let mean = |v: Vec<f64>| {
        v.into_iter()
            .zip(&n)
            .map(|(s, &n)| if n == 0 { f64::NAN } else { s / n as f64 })
            .collect()
    };
    (mean(map), mean(rp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn matrix(n: usize, d: usize, classes: i64, seed: u64) -> (Matrix, Vec<i64>) {
        let mut rng = SplitMix64::new(seed);
        let labels: Vec<i64> = (0..n).map(|i| (i as i64 * 7 + 3) % classes).collect();
        // Class means along the first axes, plus noise: overlapping classes.
        let data: Vec<f32> = (0..n * d)
            .map(|i| {
                let (row, col) = (i / d, i % d);
                let mean = if col as i64 == labels[row] % d as i64 {
                    1.5
                } else {
                    0.0
                };
                (mean + rng.normal()) as f32
            })
            .collect();
        (Matrix::new(data, d).unwrap(), labels)
    }

    /// The definitions, by a full sort in float64 (ties: the smaller row).
    fn brute(
        gallery: &Matrix,
        gallery_y: &[i64],
        test: &Matrix,
        test_y: &[i64],
        leave_out: bool,
        ks: &[usize],
    ) -> (f64, f64, f64, Vec<f64>, usize) {
        let unit = |m: &Matrix, i: usize| {
            let row = &m.as_slice()[i * m.dim()..(i + 1) * m.dim()];
            let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            row.iter().map(|&v| v as f64 / norm).collect::<Vec<f64>>()
        };
        let (mut p1, mut rp, mut map, mut recall, mut n) = (0.0, 0.0, 0.0, vec![0.0; ks.len()], 0);
        for (q, &label) in test_y.iter().enumerate() {
            let zq = unit(test, q);
            let mut ranked: Vec<(f64, usize)> = (0..gallery.rows())
                .filter(|&j| !(leave_out && j == q))
                .map(|j| {
                    (
                        unit(gallery, j).iter().zip(&zq).map(|(a, b)| a * b).sum(),
                        j,
                    )
                })
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let rel: Vec<bool> = ranked.iter().map(|&(_, j)| gallery_y[j] == label).collect();
            let r = rel.iter().filter(|&&x| x).count();
            if r == 0 {
                continue;
            }
            n += 1;
            p1 += rel[0] as u8 as f64;
            let mut found = 0.0;
            let mut ap = 0.0;
            for (i, &x) in rel.iter().take(r).enumerate() {
                if x {
                    found += 1.0;
                    ap += found / (i + 1) as f64;
                }
            }
            rp += found / r as f64;
            map += ap / r as f64;
            for (slot, &k) in recall.iter_mut().zip(ks) {
                *slot += rel.iter().take(k).any(|&x| x) as u8 as f64;
            }
        }
        let n_f = n as f64;
        (
            p1 / n_f,
            rp / n_f,
            map / n_f,
            recall.iter().map(|v| v / n_f).collect(),
            n,
        )
    }

    #[test]
    fn both_galleries_equal_the_definitions() {
        let ks = vec![1, 3, 10];
        // Odd dimension, ragged blocks, classes of uneven size.
        let (train, train_y) = matrix(1_037, 13, 7, 1);
        let (test, test_y) = matrix(301, 13, 7, 2);
        let z = test.normalized().unwrap();
        for gallery in [Gallery::Train, Gallery::Test] {
            let opts = RetrievalOptions {
                recall_ks: ks.clone(),
                gallery,
            };
            let (_, got) = knn_and_retrieval(
                Some((&train, &train_y)),
                &z,
                &test_y,
                None,
                &opts,
                &Stop::never(),
            )
            .unwrap();
            let (g, gy, leave) = match gallery {
                Gallery::Train => (&train, &train_y[..], false),
                Gallery::Test => (&test, &test_y[..], true),
            };
            let (p1, rp, map, recall, n) = brute(g, gy, &test, &test_y, leave, &ks);
            assert_eq!(got.queries, n, "{gallery:?}");
            assert!((got.precision_at_1 - p1).abs() < 1e-9, "{gallery:?}");
            assert!((got.r_precision - rp).abs() < 1e-9, "{gallery:?}");
            assert!(
                (got.map_at_r - map).abs() < 1e-9,
                "{gallery:?} {} {map}",
                got.map_at_r
            );
            for ((k, v), want) in got.recall_at_k.iter().zip(&recall) {
                assert!((v - want).abs() < 1e-9, "{gallery:?} recall@{k}");
            }
        }
    }

    #[test]
    fn the_shared_pass_votes_as_the_knn_does_and_lone_queries_are_left_out() {
        let (train, train_y) = matrix(800, 8, 5, 3);
        let (test, mut test_y) = matrix(120, 8, 5, 4);
        // A class absent from the train split: lone in its gallery.
        test_y[0] = 99;
        test_y[1] = 99;
        let z = test.normalized().unwrap();
        let knn = KnnOptions {
            ks: vec![20],
            ..Default::default()
        };
        let opts = RetrievalOptions {
            recall_ks: vec![1],
            gallery: Gallery::Train,
        };
        let (shared, r) = knn_and_retrieval(
            Some((&train, &train_y)),
            &z,
            &test_y,
            Some(&knn),
            &opts,
            &Stop::never(),
        )
        .unwrap();
        let apart = super::super::knn_classify(&train, &train_y, &z, &test_y, &knn, &Stop::never())
            .unwrap();
        assert_eq!(shared.unwrap()[0].correct, apart[0].correct);
        assert_eq!((r.queries, r.lone_queries), (118, 2));
        assert!(r.per_query[0].is_none() && r.per_query[2].is_some());
        assert_eq!(
            r.precision_at_1, r.recall_at_k[0].1,
            "Recall@1 is Precision@1"
        );
        let mut labels = test_y.clone();
        labels.sort_unstable();
        labels.dedup();
        let (map, _) = per_class(&r, &test_y, &labels);
        assert!(map.last().unwrap().is_nan(), "the lone class has no score");
        let err = knn_and_retrieval(None, &z, &test_y, None, &opts, &Stop::never()).unwrap_err();
        assert!(err.to_string().contains("`retrieval_gallery`"), "{err}");
    }
}
