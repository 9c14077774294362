//! How well a k-means clustering of the embeddings recovers the classes, as
//! the metric-learning literature reads it (pytorch-metric-learning's
//! AccuracyCalculator): faiss's k-means (Lloyd's iterations from seeded
//! random centroids, faiss's defaults otherwise) with as many clusters as
//! classes, each row assigned to its nearest centroid, then the normalised
//! and the adjusted mutual information of the assignment and the labels,
//! computed as scikit-learn computes them (the arithmetic mean of the two
//! entropies; the expected mutual information of Vinh, Epps and Bailey,
//! "Information Theoretic Measures for Clusterings Comparison", JMLR 2010,
//! Eq. 24a).

use faiss::cluster::{Clustering, ClusteringParameters};
use faiss::{FlatIndex, Index};

use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::metrics::Matrix;

/// Settings of the k-means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmeansOptions {
    /// Lloyd iterations per run.
    pub iterations: u32,
    /// Runs from different starts; the lowest objective is kept.
    pub restarts: u32,
    /// Seed of the starting centroids (at most 2^31 - 1, faiss's int).
    pub seed: u32,
}

/// The clustering and its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusteringResult {
    /// Normalised mutual information of the assignment and the labels.
    pub nmi: f64,
    /// Adjusted mutual information.
    pub ami: f64,
    /// Clusters (the labels' classes).
    pub clusters: usize,
    /// Each row's cluster.
    pub assignment: Vec<usize>,
    /// Sum of the rows' squared distances to their centroids.
    pub objective: f64,
}

/// Rows per cluster below which faiss warns that a clustering is poorly
/// supported (its `min_points_per_centroid`).
pub const FEW_ROWS_PER_CLUSTER: usize = 39;

/// The warning for a clustering of `rows` rows into `clusters` clusters
/// with fewer than [`FEW_ROWS_PER_CLUSTER`] rows per cluster, if it has.
pub fn few_rows_per_cluster(rows: usize, clusters: usize) -> Option<String> {
    (rows < clusters * FEW_ROWS_PER_CLUSTER).then(|| {
        format!(
            "the k-means behind NMI and AMI put {rows} rows into {clusters} clusters, fewer than \
             {FEW_ROWS_PER_CLUSTER} per cluster: the clustering metrics are poorly supported"
        )
    })
}

/// k-means of `x`'s rows (as given: the caller normalises) into as many
/// clusters as `labels` has classes, scored against `labels`.
pub fn cluster(
    x: &Matrix,
    labels: &[i64],
    opts: &KmeansOptions,
    stop: &Stop,
) -> Result<ClusteringResult> {
    super::check_split("test", x, labels)?;
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let k = classes.len();
    if x.rows() < k {
        return Err(Error::InvalidArgument(format!(
            "k-means into {k} clusters needs at least {k} rows, got {}",
            x.rows()
        )));
    }
    if opts.iterations == 0 || opts.restarts == 0 {
        return Err(Error::InvalidArgument(format!(
            "k-means needs at least one iteration and one run, got {} and {} (`kmeans_iterations`, `kmeans_restarts`)",
            opts.iterations, opts.restarts
        )));
    }
    stop.check()?;
    let d = x.dim() as u32;
    let mut params = ClusteringParameters::new();
    params.set_niter(opts.iterations);
    params.set_nredo(opts.restarts);
    params.set_seed(opts.seed);
    // faiss only prints a warning below this many rows per cluster; the
    // report says it instead (`few_rows_per_cluster`).
    params.set_min_points_per_centroid(1);
    let mut clustering = Clustering::new_with_params(d, k as u32, &params)?;
    let mut index = FlatIndex::new_l2(d)?;
    clustering.train(x.as_slice(), &mut index)?;
    stop.check()?;
    // The index holds the kept run's centroids.
    let found = index.search(x.as_slice(), 1)?;
    let assignment: Vec<usize> = found
        .labels
        .iter()
        .map(|l| l.get().map_or(0, |v| v as usize))
        .collect();
    let objective = found.distances.iter().map(|&v| v as f64).sum();
    let truth: Vec<usize> = labels
        .iter()
        .map(|l| classes.binary_search(l).expect("a class of the labels"))
        .collect();
    let table = Contingency::new(&truth, &assignment);
    Ok(ClusteringResult {
        nmi: table.nmi(),
        ami: table.ami(),
        clusters: k,
        assignment,
        objective,
    })
}

/// The contingency table of two labelings of the same rows (labels
/// 0..rows and 0..cols), with its margins.
#[derive(Debug, Clone)]
pub struct Contingency {
    /// Row-major counts.
    counts: Vec<u64>,
    /// Rows (classes of the first labeling that occur).
    a: Vec<u64>,
    /// Columns (of the second).
    b: Vec<u64>,
    n: u64,
}

impl Contingency {
    /// The table of `u` against `v` (same length); labels that do not occur
    /// get no row or column.
    pub fn new(u: &[usize], v: &[usize]) -> Self {
        let compact = |x: &[usize]| {
            let mut seen: Vec<usize> = x.to_vec();
            seen.sort_unstable();
            seen.dedup();
            let idx: Vec<usize> = x
                .iter()
                .map(|l| seen.binary_search(l).expect("seen"))
                .collect();
            (seen.len(), idx)
        };
        let (r, u) = compact(u);
        let (c, v) = compact(v);
        let mut counts = vec![0u64; r * c];
        for (&i, &j) in u.iter().zip(&v) {
            counts[i * c + j] += 1;
        }
        let a = (0..r)
            .map(|i| counts[i * c..(i + 1) * c].iter().sum())
            .collect();
        let b = (0..c)
            .map(|j| (0..r).map(|i| counts[i * c + j]).sum())
            .collect();
        Self {
            counts,
            a,
            b,
            n: u.len() as u64,
        }
    }

    /// Entropy of a margin, in nats.
    fn entropy(margin: &[u64]) -> f64 {
        let total = margin.iter().sum::<u64>() as f64;
        if margin.len() <= 1 || total == 0.0 {
            return 0.0;
        }
        -margin
            .iter()
            .filter(|&&p| p > 0)
            .map(|&p| (p as f64 / total) * ((p as f64).ln() - total.ln()))
            .sum::<f64>()
    }

    /// Mutual information, in nats (scikit-learn's mutual_info_score: terms
    /// below machine epsilon are 0, the sum is at least 0).
    pub fn mutual_information(&self) -> f64 {
        if self.a.len() == 1 || self.b.len() == 1 {
            return 0.0;
        }
        let (c, n) = (self.b.len(), self.n as f64);
        let (sum_a, sum_b) = (
            self.a.iter().sum::<u64>() as f64,
            self.b.iter().sum::<u64>() as f64,
        );
        let mut mi = 0.0;
        for (i, row) in self.counts.chunks(c).enumerate() {
            for (j, &nij) in row.iter().enumerate() {
                if nij == 0 {
                    continue;
                }
                let p = nij as f64 / n;
                let outer = (self.a[i] * self.b[j]) as f64;
                let log_outer = -outer.ln() + sum_a.ln() + sum_b.ln();
                let term = p * ((nij as f64).ln() - n.ln()) + p * log_outer;
                if term.abs() >= f64::EPSILON {
                    mi += term;
                }
            }
        }
        mi.max(0.0)
    }

    /// The expected mutual information of two random labelings with these
    /// margins (Vinh, Epps and Bailey 2010, Eq. 24a; scikit-learn's
    /// expected_mutual_information).
    pub fn expected_mutual_information(&self) -> f64 {
        if self.a.len() == 1 || self.b.len() == 1 {
            return 0.0;
        }
        let n = self.n as f64;
        let lg = |x: f64| libm::lgamma(x);
        let mut emi = 0.0;
        for &ai in &self.a {
            for &bj in &self.b {
                let (af, bf) = (ai as f64, bj as f64);
                let start = 1.max((ai + bj).saturating_sub(self.n));
                let end = ai.min(bj);
                let fixed =
                    lg(af + 1.0) + lg(bf + 1.0) + lg(n - af + 1.0) + lg(n - bf + 1.0) - lg(n + 1.0);
                for nij in start..=end {
                    let x = nij as f64;
                    let term2 = (n.ln() + x.ln()) - af.ln() - bf.ln();
                    let gln = fixed
                        - lg(x + 1.0)
                        - lg(af - x + 1.0)
                        - lg(bf - x + 1.0)
                        - lg(n - af - bf + x + 1.0);
                    emi += (x / n) * term2 * gln.exp();
                }
            }
        }
        emi
    }

    /// Both labelings are one class, or none: a perfect match.
    fn trivial(&self) -> bool {
        (self.a.len() == 1 && self.b.len() == 1) || (self.a.is_empty() && self.b.is_empty())
    }

    /// Normalised mutual information, the arithmetic mean of the entropies
    /// as the normaliser (scikit-learn's normalized_mutual_info_score).
    pub fn nmi(&self) -> f64 {
        if self.trivial() {
            return 1.0;
        }
        let mi = self.mutual_information();
        if mi == 0.0 {
            return 0.0;
        }
        let mean = (Self::entropy(&self.a) + Self::entropy(&self.b)) / 2.0;
        mi / mean
    }

    /// Adjusted mutual information, arithmetic mean (scikit-learn's
    /// adjusted_mutual_info_score).
    pub fn ami(&self) -> f64 {
        if self.trivial() {
            return 1.0;
        }
        let mi = self.mutual_information();
        let emi = self.expected_mutual_information();
        let mean = (Self::entropy(&self.a) + Self::entropy(&self.b)) / 2.0;
        let mut denominator = mean - emi;
        denominator = if denominator < 0.0 {
            denominator.min(-f64::EPSILON)
        } else {
            denominator.max(f64::EPSILON)
        };
        (mi - emi) / denominator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from scikit-learn 1.9.1 (normalized_mutual_info_score and
    /// adjusted_mutual_info_score with the default arithmetic mean).
    #[test]
    fn nmi_and_ami_equal_scikit_learn() {
        let u = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2];
        let v = [0, 0, 1, 1, 1, 2, 2, 2, 0, 2];
        let t = Contingency::new(&u, &v);
        assert!((t.nmi() - SKLEARN_NMI).abs() < 1e-12, "{}", t.nmi());
        assert!((t.ami() - SKLEARN_AMI).abs() < 1e-12, "{}", t.ami());
        let same = Contingency::new(&u, &u);
        assert!((same.nmi() - 1.0).abs() < 1e-12 && (same.ami() - 1.0).abs() < 1e-12);
        let one = Contingency::new(&[0, 0, 0], &[0, 0, 0]);
        assert_eq!((one.nmi(), one.ami()), (1.0, 1.0));
        let independent = Contingency::new(&[0, 0, 1, 1], &[0, 1, 0, 1]);
        assert_eq!(independent.nmi(), 0.0);
    }

    #[test]
    fn separated_clusters_are_found_and_the_objective_is_their_spread() {
        // Three tight clusters far apart: k-means recovers them exactly.
        let mut rng = crate::rng::SplitMix64::new(9);
        let labels: Vec<i64> = (0..300).map(|i| [4, 9, 2][i % 3]).collect();
        let data: Vec<f32> = labels
            .iter()
            .flat_map(|&l| {
                let centre = [l as f64, -(l as f64), 0.5 * l as f64, 1.0];
                // Centres within 10 of the origin: faiss's distances expand
                // ‖x‖² − 2x·c + ‖c‖² in float32, whose rounding grows with ‖x‖².
                centre.map(|c| (c + 0.01 * rng.normal()) as f32)
            })
            .collect();
        let x = Matrix::new(data, 4).unwrap();
        let opts = KmeansOptions {
            iterations: 20,
            restarts: 2,
            seed: 1234,
        };
        let c = cluster(&x, &labels, &opts, &Stop::never()).unwrap();
        assert_eq!(c.clusters, 3);
        assert!((c.nmi - 1.0).abs() < 1e-12 && (c.ami - 1.0).abs() < 1e-12);
        // 300 rows × 4 axes of variance 1e-4: 0.12.
        assert!((c.objective - 0.12).abs() < 0.03, "{}", c.objective);
        let again = cluster(&x, &labels, &opts, &Stop::never()).unwrap();
        assert_eq!(again.assignment, c.assignment, "seeded");
        let bad = KmeansOptions {
            iterations: 0,
            ..opts
        };
        assert!(cluster(&x, &labels, &bad, &Stop::never()).is_err());
    }

    const SKLEARN_NMI: f64 = 0.44270128334605;
    const SKLEARN_AMI: f64 = 0.23728877770133558;
}
