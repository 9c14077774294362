//! Per-class diagnostics: where an embedding keeps its semantic structure and
//! where it breaks it. Wang & Liu (2021, Sec. 4) show that a small τ makes a
//! space uniform by pushing semantically similar samples apart: the
//! per-class tolerance (their Eq. 11 within one class), the class-to-class
//! similarity matrix and the classes the nearest negatives come from measure
//! that class by class, beside the per-class kNN and linear accuracy.

use super::profile::NeighborProfile;
use super::Matrix;
use crate::error::{Error, Result};

/// The diagnostics of one evaluation, classes in increasing label order.
#[derive(Debug, Clone, PartialEq)]
pub struct PerClass {
    /// The distinct test labels.
    pub labels: Vec<i64>,
    /// Test rows per class.
    pub counts: Vec<u64>,
    /// Mean similarity of distinct same-class pairs, per class (Wang & Liu
    /// Eq. 11 restricted to the class); NaN for a class of one row.
    pub tolerance: Vec<f64>,
    /// C × C, row-major: the mean cosine similarity between the rows of
    /// class a and those of class b (distinct pairs on the diagonal, which
    /// is `tolerance`).
    pub similarity: Vec<f64>,
    /// C × C, row-major: how many of the 1st…k-th nearest other rows of the
    /// rows of class a are of class b (the diagonal: same-class neighbours).
    pub neighbor_classes: Vec<u64>,
    /// The k of `neighbor_classes` (0 when no profile was computed).
    pub k: usize,
}

impl PerClass {
    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.labels.len()
    }

    /// Per-class accuracy from one flag per test row (`labels` as given to
    /// [`per_class`]): the fraction of each class's rows that are correct.
    pub fn accuracy(&self, labels: &[i64], correct: &[bool]) -> Result<Vec<f64>> {
        if labels.len() != correct.len() {
            return Err(Error::InvalidArgument(format!(
                "{} labels for {} predictions",
                labels.len(),
                correct.len()
            )));
        }
        let mut hits = vec![0u64; self.classes()];
        for (label, ok) in labels.iter().zip(correct) {
            let c = self.class_of(*label)?;
            hits[c] += *ok as u64;
        }
        Ok(hits
            .iter()
            .zip(&self.counts)
            .map(|(&h, &n)| h as f64 / n as f64)
            .collect())
    }

    fn class_of(&self, label: i64) -> Result<usize> {
        self.labels
            .binary_search(&label)
            .map_err(|_| Error::InvalidArgument(format!("label {label} is not a test class")))
    }
}

/// The per-class diagnostics of L2-normalised rows `z` with `labels`; the
/// neighbour classes from `profile` (the nearest other rows of each row, as
/// [`super::nearest_negatives`] finds them) when given. O(N·d + C²·d).
pub fn per_class(
    z: &Matrix,
    labels: &[i64],
    profile: Option<&NeighborProfile>,
) -> Result<PerClass> {
    if labels.len() != z.rows() {
        return Err(Error::InvalidArgument(format!(
            "{} labels for {} embeddings",
            labels.len(),
            z.rows()
        )));
    }
    let mut distinct: Vec<i64> = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let c = distinct.len();
    let d = z.dim();
    let class: Vec<usize> = labels
        .iter()
        .map(|l| distinct.binary_search(l).expect("a label of the set"))
        .collect();
    // Per class: the sum of its rows and of their squared norms.
    let mut sums = vec![0f64; c * d];
    let mut squares = vec![0f64; c];
    let mut counts = vec![0u64; c];
    for (i, &k) in class.iter().enumerate() {
        let row = z.row(i);
        for (s, &v) in sums[k * d..(k + 1) * d].iter_mut().zip(row) {
            *s += v as f64;
        }
        squares[k] += row.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        counts[k] += 1;
    }
    let mut similarity = vec![0f64; c * c];
    for a in 0..c {
        let sa = &sums[a * d..(a + 1) * d];
        for b in a..c {
            let dot: f64 = sa
                .iter()
                .zip(&sums[b * d..(b + 1) * d])
                .map(|(x, y)| x * y)
                .sum();
            let (na, nb) = (counts[a] as f64, counts[b] as f64);
            let v = if a == b {
                if counts[a] < 2 {
                    f64::NAN
                } else {
                    (dot - squares[a]) / (na * (na - 1.0))
                }
            } else {
                dot / (na * nb)
            };
            similarity[a * c + b] = v;
            similarity[b * c + a] = v;
        }
    }
    let tolerance = (0..c).map(|a| similarity[a * c + a]).collect();
    let (neighbor_classes, k) = match profile {
        None => (Vec::new(), 0),
        Some(p) => {
            if p.ids.len() != z.rows() * p.k {
                return Err(Error::InvalidArgument(format!(
                    "a neighbour profile of {} ids for {} rows at k = {}",
                    p.ids.len(),
                    z.rows(),
                    p.k
                )));
            }
            let mut counts = vec![0u64; c * c];
            for (i, ids) in p.ids.chunks_exact(p.k.max(1)).enumerate() {
                for &j in ids.iter().filter(|&&j| j >= 0) {
                    counts[class[i] * c + class[j as usize]] += 1;
                }
            }
            (counts, p.k)
        }
    };
    Ok(PerClass {
        labels: distinct,
        counts,
        tolerance,
        similarity,
        neighbor_classes,
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Stop;

    /// Pairs summed one by one: the definitions, nothing shared with the
    /// code above.
    fn brute(z: &Matrix, labels: &[i64], a: i64, b: i64) -> f64 {
        let (mut sum, mut n) = (0.0, 0u64);
        for i in 0..z.rows() {
            for j in 0..z.rows() {
                if i != j && labels[i] == a && labels[j] == b {
                    sum += z
                        .row(i)
                        .iter()
                        .zip(z.row(j))
                        .map(|(x, y)| *x as f64 * *y as f64)
                        .sum::<f64>();
                    n += 1;
                }
            }
        }
        sum / n as f64
    }

    #[test]
    fn per_class_values_equal_the_pairwise_definitions() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let rows = 60;
        let data: Vec<f32> = (0..rows * 5).map(|_| rng.unit() as f32 - 0.5).collect();
        let z = Matrix::new(data, 5).unwrap().normalized().unwrap();
        let labels: Vec<i64> = (0..rows)
            .map(|i| [3, 7, 11][i % 3] + (i == 5) as i64)
            .collect();
        let profile = crate::metrics::nearest_negatives(&z, 4, &Stop::never()).unwrap();
        let p = per_class(&z, &labels, Some(&profile)).unwrap();
        assert_eq!(p.labels, vec![3, 7, 11, 12]);
        assert_eq!(p.counts, vec![20, 20, 19, 1]);
        for (a, &la) in p.labels.iter().enumerate() {
            for (b, &lb) in p.labels.iter().enumerate() {
                let got = p.similarity[a * 4 + b];
                if a == b && p.counts[a] == 1 {
                    assert!(got.is_nan());
                    continue;
                }
                assert!((got - brute(&z, &labels, la, lb)).abs() < 1e-9, "{la} {lb}");
            }
        }
        // Every row's k neighbours counted once, by the classes they are.
        let mut expected = vec![0u64; 16];
        for i in 0..rows {
            for r in 0..4 {
                let j = profile.ids[i * 4 + r] as usize;
                let (a, b) = (
                    p.labels.binary_search(&labels[i]).unwrap(),
                    p.labels.binary_search(&labels[j]).unwrap(),
                );
                expected[a * 4 + b] += 1;
            }
        }
        assert_eq!(p.neighbor_classes, expected);
        assert_eq!(p.neighbor_classes.iter().sum::<u64>(), rows as u64 * 4);
        let correct: Vec<bool> = (0..rows).map(|i| i % 2 == 0).collect();
        let acc = p.accuracy(&labels, &correct).unwrap();
        assert_eq!(acc[3], 0.0); // row 5 alone, odd
        assert!((acc[0] - 10.0 / 20.0).abs() < 1e-12);
    }
}
