//! Sweeps read along a tag: the reports of a comparison whose models share
//! every tag but one (e.g. every seed of one loss and τ) summarised as the
//! mean, the sample standard deviation and the 95% interval of the mean
//! (Student's t), the seed-averaged tables papers print.

use std::collections::BTreeMap;

use super::listing::Listing;
use super::METRIC_COLUMNS;
use crate::domain::{MetricSummary, Report, Status, TagGroup};

/// t(0.975, ν) for ν = 1 … 30 (Student's t quantiles, e.g. Abramowitz &
/// Stegun Table 26.10).
const T_975: [f64; 30] = [
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom: the
/// table up to 30, beyond it the Cornish–Fisher expansion around the
/// normal quantile to the ν⁻⁴ term (Abramowitz & Stegun Eq. 26.7.5; error
/// below 3e-8 there).
pub fn t_975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= T_975.len() {
        return T_975[df - 1];
    }
    let z = 1.959_963_984_540_054_f64;
    let v = df as f64;
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v.powi(2))
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / (92160.0 * v.powi(4))
}

/// A report's headline metrics, in [`METRIC_COLUMNS`] order.
pub fn metric_values(r: &Report) -> [Option<f64>; METRIC_COLUMNS.len()] {
    [
        r.uniformity,
        r.tolerance,
        r.alignment,
        r.positive_similarity,
        r.nearest_negative_similarity.first().copied(),
        r.penalty_entropy,
        r.effective_rank,
        r.knn.as_ref().map(|k| k.top1),
        r.linear.as_ref().map(|l| l.top1),
        r.retrieval.as_ref().map(|x| x.map_at_r),
        r.retrieval.as_ref().map(|x| x.r_precision),
    ]
}

/// Mean, sample standard deviation and 95% half-interval of `values`.
pub fn summary(metric: &str, values: &[f64]) -> MetricSummary {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let interval = if n > 1 {
        t_975(n - 1) * std / (n as f64).sqrt()
    } else {
        0.0
    };
    MetricSummary {
        metric: metric.to_string(),
        n: n as u32,
        mean,
        std,
        interval,
    }
}

/// The tags that place a report in a group: its tags but `by`, with its
/// loss and τ where the tags do not say them (uploaded embeddings).
fn group_key(r: &Report, by: &str) -> BTreeMap<String, String> {
    let mut key = r.tags.clone();
    key.remove(by);
    key.entry("loss".into()).or_insert_with(|| r.loss.clone());
    if by != "temperature" {
        key.entry("temperature".into())
            .or_insert_with(|| format!("{}", r.temperature));
    }
    key
}

/// The groups of `rows` along the tag `by`: the rows sharing every other
/// tag, in the order of each group's first row. Only completed reports
/// count towards a metric; each metric's `n` says how many had it.
pub fn groups(rows: &[Report], by: &str) -> Vec<TagGroup> {
    let mut order: Vec<BTreeMap<String, String>> = Vec::new();
    let mut members: Vec<Vec<&Report>> = Vec::new();
    for r in rows {
        let key = group_key(r, by);
        match order.iter().position(|k| *k == key) {
            Some(i) => members[i].push(r),
            None => {
                order.push(key);
                members.push(vec![r]);
            }
        }
    }
    order
        .into_iter()
        .zip(members)
        .map(|(tags, rows)| {
            let done: Vec<[Option<f64>; METRIC_COLUMNS.len()]> = rows
                .iter()
                .filter(|r| r.status == Status::Completed)
                .map(|r| metric_values(r))
                .collect();
            let metrics = METRIC_COLUMNS
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let values: Vec<f64> = done.iter().filter_map(|v| v[i]).collect();
                    (!values.is_empty()).then(|| summary(name, &values))
                })
                .collect();
            TagGroup {
                tags,
                models: rows.iter().map(|r| r.model.clone()).collect(),
                values: rows
                    .iter()
                    .map(|r| r.tags.get(by).cloned().unwrap_or_default())
                    .collect(),
                metrics,
            }
        })
        .collect()
}

/// The groups as a table: the tags that tell the groups apart (loss and τ
/// always), the number of models and the `by` values, then each metric as
/// "mean ± interval" (or, with `split`, as `<metric>_mean` and
/// `<metric>_interval` columns, for CSV).
pub fn group_listing(groups: &[TagGroup], by: &str, split: bool) -> Listing {
    let mut keys: Vec<String> = vec!["loss".into()];
    if by != "temperature" {
        keys.push("temperature".into());
    }
    let all: std::collections::BTreeSet<&String> =
        groups.iter().flat_map(|g| g.tags.keys()).collect();
    for k in all {
        let first = groups[0].tags.get(k);
        if !keys.contains(k) && groups.iter().any(|g| g.tags.get(k) != first) {
            keys.push(k.clone());
        }
    }
    let mut header: Vec<String> = keys.clone();
    header.push("models".into());
    header.push(by.to_string());
    for m in METRIC_COLUMNS {
        if split {
            header.push(format!("{m}_mean"));
            header.push(format!("{m}_interval"));
        } else {
            header.push(m.to_string());
        }
    }
    let rows = groups
        .iter()
        .map(|g| {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| g.tags.get(k).cloned().unwrap_or_default())
                .collect();
            cells.push(g.models.len().to_string());
            cells.push(g.values.join(","));
            for m in METRIC_COLUMNS {
                let s = g.metrics.iter().find(|s| s.metric == m);
                match (s, split) {
                    (Some(s), true) => {
                        cells.push(format!("{:.6}", s.mean));
                        cells.push(format!("{:.6}", s.interval));
                    }
                    (None, true) => cells.extend(["".into(), "".into()]),
                    (Some(s), false) if s.n > 1 => {
                        cells.push(format!("{:.4} ± {:.4}", s.mean, s.interval))
                    }
                    (Some(s), false) => cells.push(format!("{:.4}", s.mean)),
                    (None, false) => cells.push("-".into()),
                }
            }
            cells
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Listing::new(&header, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KnnResult;

    fn report(model: &str, tau: &str, seed: &str, knn: f64, u: f64) -> Report {
        Report {
            model: model.into(),
            loss: "infonce".into(),
            temperature: tau.parse().unwrap(),
            status: Status::Completed,
            uniformity: Some(u),
            knn: Some(KnnResult {
                top1: knn,
                ..Default::default()
            }),
            tags: [("loss", "infonce"), ("temperature", tau), ("seed", seed)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn t_quantiles_match_published_values() {
        // scipy.stats.t.ppf(0.975, df) for df = 1, 2, 10, 31, 60, 120, 1000.
        let want = [
            (1, 12.706204736174698),
            (2, 4.302652729749464),
            (10, 2.2281388519862744),
            (31, 2.0395134463964077),
            (60, 2.0002978220142604),
            (120, 1.9799304050824413),
            (1000, 1.9623390808264074),
        ];
        for (df, t) in want {
            assert!(
                (t_975(df) - t).abs() < 1e-6,
                "df {df}: {} vs {t}",
                t_975(df)
            );
        }
    }

    #[test]
    fn seeds_aggregate_to_mean_std_and_t_interval() {
        let rows = vec![
            report("a-s0", "0.2", "0", 0.90, 3.0),
            report("b-s0", "0.5", "0", 0.80, 2.0),
            report("a-s1", "0.2", "1", 0.92, 3.2),
            report("a-s2", "0.2", "2", 0.97, 3.1),
            report("b-s1", "0.5", "1", 0.84, 2.4),
        ];
        let g = groups(&rows, "seed");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].models, ["a-s0", "a-s1", "a-s2"]);
        assert_eq!(g[0].values, ["0", "1", "2"]);
        let knn = g[0]
            .metrics
            .iter()
            .find(|m| m.metric == "knn_top1")
            .unwrap();
        // numpy: mean 0.93, std(ddof=1) 0.036055512754639925;
        // interval = 4.302652729749464 * std / sqrt(3).
        assert_eq!(knn.n, 3);
        assert!((knn.mean - 0.93).abs() < 1e-12);
        assert!((knn.std - 0.036055512754639925).abs() < 1e-12);
        assert!(
            (knn.interval - 4.302652729749464 * 0.036055512754639925 / 3f64.sqrt()).abs() < 1e-8
        );
        let b = g[1]
            .metrics
            .iter()
            .find(|m| m.metric == "uniformity")
            .unwrap();
        assert_eq!((b.n, b.mean), (2, 2.2));
        let listing = group_listing(&g, "seed", false);
        assert_eq!(
            listing.header[..4],
            ["loss", "temperature", "models", "seed"]
        );
        assert_eq!(listing.rows[1][3], "0,1");
        assert!(listing.rows[0][4].starts_with("3.1000 ± "));
        let csv = group_listing(&g, "seed", true);
        assert!(csv.header.contains(&"knn_top1_interval".to_string()));
    }

    #[test]
    fn a_failed_report_counts_nowhere_and_a_lone_model_has_no_interval() {
        let mut failed = report("a-s1", "0.2", "1", 0.1, 0.1);
        failed.status = Status::Failed;
        let g = groups(&[report("a-s0", "0.2", "0", 0.9, 3.0), failed], "seed");
        assert_eq!(g[0].models.len(), 2);
        let knn = g[0]
            .metrics
            .iter()
            .find(|m| m.metric == "knn_top1")
            .unwrap();
        assert_eq!((knn.n, knn.mean, knn.std, knn.interval), (1, 0.9, 0.0, 0.0));
    }
}
