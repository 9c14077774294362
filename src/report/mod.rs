//! Reports for people: figures of stored reports (`figures`: SVG and PNG,
//! drawn with plotters), text tables of a comparison (`listing`) and of one
//! report's classes (`classes`), and which τ to keep (`recommend`).

pub mod classes;
pub mod figures;
pub mod groups;
pub mod listing;
pub mod neighbours;
pub mod projection;
pub mod recommend;

pub use classes::per_class_listing;
pub use listing::Listing;
pub use recommend::{
    checkpoint_to_keep, collapsed, recommend, recommendation_listing, Recommendation,
    COLLAPSED_POSITIVE, COLLAPSED_UNIFORMITY,
};

use crate::domain::Report;

/// A metric to four decimals, "-" when absent.
pub fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// A text table of a comparison: one row per report.
pub fn table(rows: &[Report]) -> String {
    let listing = listing(rows);
    let header: Vec<&str> = listing.header.iter().map(String::as_str).collect();
    format_table(&header, &listing.rows)
}

/// The headline metrics' columns, in the order [`metric_cells`] fills them.
pub const METRIC_COLUMNS: [&str; 11] = [
    "uniformity",
    "tolerance",
    "alignment",
    "positive_similarity",
    "nn1_similarity",
    "penalty_entropy",
    "effective_rank",
    "knn_top1",
    "linear_top1",
    "map_at_r",
    "r_precision",
];

/// A report's headline metrics, one cell per [`METRIC_COLUMNS`] ("-" for
/// one not computed).
pub fn metric_cells(r: &Report) -> Vec<String> {
    groups::metric_values(r).into_iter().map(opt).collect()
}

/// The short content id of a dataset version (its first 12 hex digits), as
/// every table shows it: two versions of one dataset name are never
/// mistaken for one. "-" for a report that has none (precomputed
/// embeddings).
pub fn short_dataset_id(id: &str) -> String {
    match id {
        "" => "-".into(),
        id => id[..12.min(id.len())].to_string(),
    }
}

/// The comparison's columns and one row per report (a model that was not
/// evaluated shows its status and reason in place of numbers).
pub fn listing(rows: &[Report]) -> Listing {
    let header: Vec<&str> = ["model", "loss", "temperature"]
        .into_iter()
        .chain(METRIC_COLUMNS)
        .chain(["dataset_id", "status", "error"])
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.model.clone(),
                r.loss.clone(),
                format!("{}", r.temperature),
            ];
            cells.extend(metric_cells(r));
            cells.push(short_dataset_id(&r.dataset_id));
            cells.push(r.status.name().to_string());
            cells.push(r.error.clone());
            cells
        })
        .collect();
    Listing::new(&header, cells)
}

/// Left-aligned columns under a header, two spaces apart, one line per row.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string();
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KnnResult, LinearResult};

    fn row(loss: &str, tau: f64, u: f64, t: f64) -> Report {
        Report {
            model: format!("{loss}-{tau}"),
            loss: loss.into(),
            temperature: tau,
            uniformity: Some(u),
            tolerance: Some(t),
            knn: Some(KnnResult {
                top1: 0.9,
                ..Default::default()
            }),
            linear: Some(LinearResult {
                top1: 0.95,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_table_has_a_line_per_model() {
        let rows = vec![
            row("infonce", 0.1, 3.7, 0.1),
            row("infonce", 1.0, 3.0, 0.5),
            row("simple", 0.0, 1.2, 0.9),
        ];
        let text = table(&rows);
        assert_eq!(text.lines().count(), 4);
        assert!(text.contains("3.7000"));
    }
}
