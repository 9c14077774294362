//! The per-class table of one report (`eval --per-class`): each class's
//! tolerance and accuracies, and where its nearest negatives come from, the
//! measurable form of Wang & Liu's (2021, Sec. 4) "semantically similar
//! samples are pushed apart". Also the class names and neighbour shares the
//! class figures draw.

use super::listing::Listing;
use crate::domain::PerClass;

/// The columns of [`per_class_listing`].
pub const PER_CLASS_COLUMNS: [&str; 9] = [
    "class",
    "test_rows",
    "tolerance",
    "knn_top1",
    "linear_top1",
    "map_at_r",
    "r_precision",
    "neighbors_same_class",
    "nearest_other_class",
];

/// A class's name: the dataset's `name` for it, else its `label`.
pub fn name_or_label(name: &str, label: i64) -> String {
    if name.is_empty() {
        label.to_string()
    } else {
        name.to_string()
    }
}

/// The name of class `i` of a report's per-class diagnostics
/// ([`name_or_label`]).
pub fn class_name(per_class: &PerClass, i: usize) -> String {
    name_or_label(
        per_class.names.get(i).map_or("", String::as_str),
        per_class.labels[i],
    )
}

/// The anchor-class × neighbour-class shares of a report, C × C row-major:
/// row a holds the fraction of class a's rows' k nearest other rows that
/// are of each class (a row with no neighbours is all 0). None without the
/// nearest-negative classes.
pub fn neighbour_shares(p: &PerClass) -> Option<Vec<f64>> {
    let c = p.labels.len();
    if p.nearest_negative_classes.len() != c * c {
        return None;
    }
    let mut out = vec![0.0; c * c];
    for a in 0..c {
        let row = &p.nearest_negative_classes[a * c..(a + 1) * c];
        let total: u64 = row.iter().sum();
        if total > 0 {
            for (b, &n) in row.iter().enumerate() {
                out[a * c + b] = n as f64 / total as f64;
            }
        }
    }
    Some(out)
}

/// One row per class: its name (the dataset's, else its label), test rows,
/// tolerance, kNN and linear top-1, MAP@R and R-Precision,
/// the share of its rows' nearest negatives that are of the same class, and
/// the other class they come from most (with its share). "-" where a part
/// was not computed.
pub fn per_class_listing(p: &PerClass) -> Listing {
    let c = p.labels.len();
    let cell = |v: Option<&f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let shares = neighbour_shares(p);
    let rows = (0..c)
        .map(|a| {
            let (same, other) = if let Some(shares) = &shares {
                let row = &p.nearest_negative_classes[a * c..(a + 1) * c];
                let share = &shares[a * c..(a + 1) * c];
                let other = (0..c)
                    .filter(|&b| b != a)
                    .max_by_key(|&b| (row[b], std::cmp::Reverse(b)))
                    .map_or("-".to_string(), |b| {
                        format!("{} ({:.1}%)", class_name(p, b), 100.0 * share[b])
                    });
                (format!("{:.4}", share[a]), other)
            } else {
                ("-".to_string(), "-".to_string())
            };
            vec![
                class_name(p, a),
                p.counts.get(a).map_or("-".into(), |n| n.to_string()),
                cell(p.tolerance.get(a)),
                cell(p.knn_top1.get(a)),
                cell(p.linear_top1.get(a)),
                cell(p.map_at_r.get(a)),
                cell(p.r_precision.get(a)),
                same,
                other,
            ]
        })
        .collect();
    Listing::new(&PER_CLASS_COLUMNS, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_names_where_its_nearest_negatives_come_from() {
        let p = PerClass {
            labels: vec![0, 1, 2],
            counts: vec![2, 2, 1],
            tolerance: vec![0.5, 0.25, f64::NAN],
            knn_top1: vec![1.0, 0.5, 0.0],
            linear_top1: Vec::new(),
            similarity: vec![0.0; 9],
            nearest_negative_classes: vec![2, 1, 1, 0, 1, 3, 2, 0, 0],
            nearest_negative_k: 2,
            names: Vec::new(),
            map_at_r: vec![0.75, 0.5, f64::NAN],
            r_precision: Vec::new(),
        };
        let l = per_class_listing(&p);
        assert_eq!(l.header, PER_CLASS_COLUMNS);
        // Class 0: 2 of 4 neighbours its own, then a tie between 1 and 2
        // (1 each) goes to the smaller label.
        assert_eq!(
            l.rows[0],
            [
                "0",
                "2",
                "0.5000",
                "1.0000",
                "-",
                "0.7500",
                "-",
                "0.5000",
                "1 (25.0%)"
            ]
        );
        assert_eq!(l.rows[1][7..], ["0.2500", "2 (75.0%)"]);
        assert_eq!(l.rows[2][2], "NaN");
        assert_eq!(l.rows[2][7..], ["0.0000", "0 (100.0%)"]);
        // With the dataset's names, the classes are named.
        let named = PerClass {
            names: vec!["cat".into(), "dog".into(), "bird".into()],
            ..p
        };
        let l = per_class_listing(&named);
        assert_eq!(l.rows[0][0], "cat");
        assert_eq!(l.rows[0][8], "dog (25.0%)");
    }
}
