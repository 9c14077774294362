//! Nearest training images: a test row's k nearest rows of the training
//! split by cosine similarity (exact, [`crate::index::exact`]), and for
//! each class the other class its test rows' nearest training row most
//! often belongs to, with the most similar such pairs — the nearest
//! negatives of Wang & Liu (2021, Sec. 4) as images a person can look at.

use crate::cancel::Stop;
use crate::domain::{ClassConfusion, ConfusedPair, Neighbour};
use crate::error::Result;

/// Rows of `x` [n, d] scaled to unit length (a zero row stays zero).
pub fn unit_rows(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d.max(1))
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            row.iter().map(move |v| v * scale)
        })
        .collect()
}

/// The `k` rows of `bank` [n, d] (unit rows) nearest to `query` [d] (a
/// unit row), nearest first, with the labels of the bank.
pub fn nearest(
    bank: &[f32],
    labels: &[i64],
    query: &[f32],
    d: usize,
    k: usize,
) -> Result<Vec<Neighbour>> {
    let found = crate::index::exact::search(bank, None, query, d, k, &Stop::never())?;
    Ok(found
        .ids
        .iter()
        .zip(&found.similarities)
        .filter(|(&id, _)| id >= 0)
        .map(|(&id, &similarity)| Neighbour {
            row: id as u64,
            label: labels[id as usize],
            similarity,
        })
        .collect())
}

/// For each class of the test rows (`test` [m, d], unit rows, with
/// `test_labels`), the other class its rows' nearest training rows most
/// often come from (ties: the smaller label), the share of its rows that
/// happens to, and its `pairs` most similar such pairs. Classes whose
/// rows' nearest training rows are all their own are left out.
pub fn confusions(
    test: &[f32],
    test_labels: &[i64],
    bank: &[f32],
    bank_labels: &[i64],
    d: usize,
    pairs: usize,
) -> Result<Vec<ClassConfusion>> {
    let found = crate::index::exact::search(bank, None, test, d, 1, &Stop::never())?;
    let mut by_class: std::collections::BTreeMap<i64, (u64, Vec<(i64, ConfusedPair)>)> =
        Default::default();
    for (row, (&label, (&id, &similarity))) in test_labels
        .iter()
        .zip(found.ids.iter().zip(&found.similarities))
        .enumerate()
    {
        let entry = by_class.entry(label).or_default();
        entry.0 += 1;
        if id < 0 || bank_labels[id as usize] == label {
            continue;
        }
        entry.1.push((
            bank_labels[id as usize],
            ConfusedPair {
                test_row: row as u64,
                train_row: id as u64,
                similarity,
            },
        ));
    }
    let mut out = Vec::new();
    for (label, (rows, wrong)) in by_class {
        let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
        for (other, _) in &wrong {
            *counts.entry(*other).or_default() += 1;
        }
        // Most rows; the smaller label on a tie (the map is ascending).
        let Some((&other, &count)) = counts.iter().rev().max_by_key(|(_, &c)| c) else {
            continue;
        };
        let mut chosen: Vec<ConfusedPair> = wrong
            .into_iter()
            .filter(|(o, _)| *o == other)
            .map(|(_, p)| p)
            .collect();
        chosen.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.test_row.cmp(&b.test_row))
        });
        chosen.truncate(pairs);
        out.push(ClassConfusion {
            label,
            rows,
            confused_with: other,
            share: count as f64 / rows as f64,
            pairs: chosen,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors at these angles (radians) in the plane, as rows.
    fn at(angles: &[f32]) -> Vec<f32> {
        angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect()
    }

    #[test]
    fn the_nearest_rows_come_nearest_first_against_brute_force() {
        let bank = at(&[0.0, 0.5, 1.0, 1.5, 2.0, 3.0]);
        let labels = [0, 0, 1, 1, 2, 2];
        let query = at(&[0.9]);
        let got = nearest(&bank, &labels, &query, 2, 3).unwrap();
        let rows: Vec<u64> = got.iter().map(|n| n.row).collect();
        assert_eq!(rows, [2, 1, 3]);
        assert!((got[0].similarity - (0.1f32).cos()).abs() < 1e-6);
        assert_eq!(got[1].label, 0);
    }

    #[test]
    fn each_class_names_the_class_its_rows_fall_into() {
        // Train: class 0 near angle 0, class 1 near 1.5, class 2 near 3.
        let bank = at(&[0.0, 0.1, 1.5, 1.6, 3.0, 3.1]);
        let bank_labels = [0, 0, 1, 1, 2, 2];
        // Test: class 0 rows at 0.05 (own) and 1.45, 1.55 (into class 1);
        // class 1 all own; class 2 one row into class 1, one into 0.
        let test = at(&[0.05, 1.45, 1.55, 1.5, 1.62, 1.58, 0.02]);
        let test_labels = [0, 0, 0, 1, 1, 2, 2];
        let c = confusions(&test, &test_labels, &bank, &bank_labels, 2, 5).unwrap();
        assert_eq!(c.len(), 2, "class 1 is never confused: {c:?}");
        assert_eq!((c[0].label, c[0].confused_with, c[0].rows), (0, 1, 3));
        assert!((c[0].share - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c[0].pairs.len(), 2);
        assert!(c[0].pairs[0].similarity >= c[0].pairs[1].similarity);
        // A tie between classes 0 and 1 goes to the smaller label.
        assert_eq!((c[1].label, c[1].confused_with, c[1].share), (2, 0, 0.5));
    }
}
