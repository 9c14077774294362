//! Which τ, and why: a recommendation over the reports of a comparison.
//!
//! Wang & Liu (2021) show a uniformity–tolerance dilemma: a small τ gives a
//! uniform space that breaks semantic structure, a large τ a tolerant one
//! that is less uniform. Among the models that share a loss (and the
//! comparison's dataset) this finds the Pareto front of (uniformity,
//! tolerance), both higher-is-better, its knee (both axes scaled to [0, 1]
//! over the front, the point farthest from the chord between its ends
//! towards the ideal corner), and the best kNN and linear top-1 with their 95% Wilson intervals
//! (Wilson 1927) over the test rows. The recommendation is the most accurate
//! model by the linear probe (the kNN where the probe was skipped, the
//! retrieval metrics' Precision@1 where both were) when no
//! other model's interval reaches its; where intervals overlap the
//! accuracies cannot tell the models apart, and a tie-break, named as one,
//! decides: the one of them nearest the knee, or, where the front has fewer
//! than three models and so no knee, the higher point estimate.

use super::figures::style::wilson95;
use crate::domain::{Report, Status};

/// An accuracy with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The index of the model in the group's rows.
    pub model: usize,
    /// The top-1 accuracy.
    pub value: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

/// The recommendation for the models of one loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The loss the models share.
    pub loss: String,
    /// The completed reports considered, by increasing τ.
    pub rows: Vec<Report>,
    /// Indices into `rows` of the Pareto front of (uniformity, tolerance),
    /// by increasing uniformity.
    pub front: Vec<usize>,
    /// The knee of the front (an index into `rows`), if the front is not empty.
    pub knee: Option<usize>,
    /// The best kNN top-1, with its interval.
    pub best_knn: Option<Interval>,
    /// The best linear top-1, with its interval.
    pub best_linear: Option<Interval>,
    /// Models whose accuracy interval overlaps the best one's (the best
    /// included), by the protocol the recommendation uses.
    pub tied: Vec<usize>,
    /// The recommended model (an index into `rows`).
    pub recommended: Option<usize>,
    /// Why, in one sentence.
    pub reason: String,
    /// The classes whose tolerance falls most from the largest τ to the
    /// smallest, largest fall first.
    pub tolerance_falls: Vec<crate::domain::ClassTolerance>,
}

/// How many classes [`tolerance_falls`] keeps.
pub const TOLERANCE_FALLS: usize = 10;

/// The classes whose tolerance falls most from `large` (the sweep's largest
/// τ) to `small` (its smallest), largest fall first, at most
/// [`TOLERANCE_FALLS`]; empty when either lacks per-class diagnostics.
/// Classes whose tolerance does not fall, and classes of one row (NaN
/// tolerance), are left out; ties by label.
pub fn tolerance_falls(large: &Report, small: &Report) -> Vec<crate::domain::ClassTolerance> {
    let (Some(l), Some(s)) = (&large.per_class, &small.per_class) else {
        return Vec::new();
    };
    let mut out: Vec<crate::domain::ClassTolerance> = l
        .labels
        .iter()
        .zip(&l.tolerance)
        .enumerate()
        .filter_map(|(at, (label, &at_large))| {
            let i = s.labels.binary_search(label).ok()?;
            let at_small = *s.tolerance.get(i)?;
            // Only classes whose tolerance does fall.
            (at_large.is_finite() && at_small.is_finite() && at_large > at_small).then_some(
                crate::domain::ClassTolerance {
                    label: *label,
                    at_largest_tau: at_large,
                    at_smallest_tau: at_small,
                    fall: at_large - at_small,
                    name: l.names.get(at).cloned().unwrap_or_default(),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| b.fall.total_cmp(&a.fall).then(a.label.cmp(&b.label)));
    out.truncate(TOLERANCE_FALLS);
    out
}

/// Indices of the Pareto front of `points` (both coordinates higher is
/// better): the points no other point matches or beats in both and beats in
/// one. By increasing first coordinate.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let dominated = |i: usize| {
        points.iter().enumerate().any(|(j, q)| {
            let p = points[i];
            j != i && q.0 >= p.0 && q.1 >= p.1 && (q.0 > p.0 || q.1 > p.1)
        })
    };
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| !dominated(i)).collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(a.cmp(&b)));
    front
}

/// The fewest models a front needs for a knee: with one or two, every
/// point is an end of the chord.
pub const KNEE_MIN_FRONT: usize = 3;

/// The knee of a front (indices into `points`, by increasing first
/// coordinate): both axes scaled to [0, 1] over the front, whose ends are
/// then (0, 1) and (1, 0), the point farthest from the chord between them on
/// the side of the ideal corner (1, 1), i.e. the largest sum of scaled
/// coordinates (the smaller index, i.e. the smaller τ, on a tie). None
/// below [`KNEE_MIN_FRONT`] models.
pub fn knee(points: &[(f64, f64)], front: &[usize]) -> Option<usize> {
    if front.len() < KNEE_MIN_FRONT {
        return None;
    }
    let on_front: Vec<(f64, f64)> = front.iter().map(|&i| points[i]).collect();
    let scaled = scale_to_unit(&on_front);
    let score = |k: usize| scaled[k].0 + scaled[k].1;
    (0..front.len())
        .max_by(|&a, &b| score(a).total_cmp(&score(b)).then(front[b].cmp(&front[a])))
        .map(|k| front[k])
}

/// How a recommendation names its models: by τ ("τ = 0.2"; several:
/// "τ = 0.2, 0.5") or by step ("step 400"; several: "steps 200, 400").
struct Names {
    one: &'static str,
    many: &'static str,
    values: Vec<String>,
}

impl Names {
    /// Model `i`.
    fn of(&self, i: usize) -> String {
        format!("{}{}", self.one, self.values[i])
    }

    /// Models `ids`, together.
    fn all(&self, ids: &[usize]) -> String {
        let values: Vec<&str> = ids.iter().map(|&i| self.values[i].as_str()).collect();
        let prefix = if ids.len() == 1 { self.one } else { self.many };
        format!("{prefix}{}", values.join(", "))
    }
}

/// Uniformity (−L_uniformity) below which embeddings have collapsed.
pub const COLLAPSED_UNIFORMITY: f64 = 0.05;
/// Mean positive similarity above which embeddings have collapsed.
pub const COLLAPSED_POSITIVE: f64 = 0.99;

/// Whether a report's embeddings have completely collapsed: uniformity
/// below [`COLLAPSED_UNIFORMITY`] and positive similarity above
/// [`COLLAPSED_POSITIVE`] (every image at nearly one point), so that no
/// accuracy of it recommends it.
pub fn collapsed(r: &Report) -> bool {
    matches!(
        (r.uniformity, r.positive_similarity),
        (Some(u), Some(p)) if u < COLLAPSED_UNIFORMITY && p > COLLAPSED_POSITIVE
    )
}

/// The checkpoint to keep of a training run: the recommendation over its
/// evaluated checkpoints (`(step, report)` in step order) as for a loss's
/// models, each named by its step ("step 400: best linear top-1 …"); None
/// when no checkpoint has uniformity and tolerance. A checkpoint whose
/// embeddings completely collapsed ([`collapsed`])
/// is never kept, whatever its accuracy. The tolerance falls are left
/// empty (they compare temperatures, not steps).
pub fn checkpoint_to_keep(path: &[(u64, &Report)]) -> Option<Recommendation> {
    let kept: Vec<(u64, &Report)> = path
        .iter()
        .copied()
        .filter(|(_, r)| {
            r.status == Status::Completed
                && r.uniformity.is_some()
                && r.tolerance.is_some()
                && !collapsed(r)
        })
        .collect();
    let loss = kept.last()?.1.loss.clone();
    let names = Names {
        one: "step ",
        many: "steps ",
        values: kept.iter().map(|(step, _)| step.to_string()).collect(),
    };
    let rows = kept.into_iter().map(|(_, r)| r.clone()).collect();
    let mut rec = recommend_group(loss, rows, names);
    rec.tolerance_falls.clear();
    Some(rec)
}

/// The recommendations of a comparison: one per loss with at least one
/// completed report carrying uniformity and tolerance.
pub fn recommend(rows: &[Report]) -> Vec<Recommendation> {
    let mut losses: Vec<String> = rows.iter().map(|r| r.loss.clone()).collect();
    losses.sort();
    losses.dedup();
    losses
        .into_iter()
        .filter_map(|loss| {
            let mut group: Vec<Report> = rows
                .iter()
                .filter(|r| {
                    r.loss == loss
                        && r.status == Status::Completed
                        && r.uniformity.is_some()
                        && r.tolerance.is_some()
                })
                .cloned()
                .collect();
            if group.is_empty() {
                return None;
            }
            group.sort_by(|a, b| a.temperature.total_cmp(&b.temperature));
            // A loss without a temperature (the simple losses) names its
            // models by name.
            let names = if group.iter().all(|r| r.temperature > 0.0) {
                Names {
                    one: "τ = ",
                    many: "τ = ",
                    values: group.iter().map(|r| r.temperature.to_string()).collect(),
                }
            } else {
                Names {
                    one: "",
                    many: "",
                    values: group.iter().map(|r| r.model.clone()).collect(),
                }
            };
            Some(recommend_group(loss, group, names))
        })
        .collect()
}

fn best(rows: &[Report], top1: impl Fn(&Report) -> Option<f64>) -> Option<Interval> {
    rows.iter()
        .enumerate()
        .filter_map(|(i, r)| top1(r).map(|v| (i, v, r.num_test)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(model, value, n)| {
            let (lo, hi) = wilson95(value, n);
            Interval {
                model,
                value,
                lo,
                hi,
            }
        })
}

/// A protocol's top-1 accuracy of a report, if it was measured.
type Top1 = dyn Fn(&Report) -> Option<f64>;

/// The recommendation over `rows` (in the order ties are broken by), each
/// named in the reason as `names` says ("τ = 0.2", "step 400").
fn recommend_group(loss: String, rows: Vec<Report>, names: Names) -> Recommendation {
    let points: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.uniformity.unwrap_or(f64::NAN),
                r.tolerance.unwrap_or(f64::NAN),
            )
        })
        .collect();
    let front = pareto_front(&points);
    let knee = knee(&points, &front);
    let knn = |r: &Report| r.knn.as_ref().map(|k| k.top1);
    let linear = |r: &Report| r.linear.as_ref().map(|l| l.top1);
    let best_knn = best(&rows, knn);
    let best_linear = best(&rows, linear);
    // Where neither probe ran, the retrieval metrics' Precision@1 (the
    // nearest gallery row's class: a proportion over the test rows, as the
    // probes' top-1 is).
    let precision_at_1 = |r: &Report| r.retrieval.as_ref().map(|x| x.precision_at_1);
    let (measure, chosen, top1): (&str, _, &Top1) = match (best_linear, best_knn) {
        (Some(b), _) => ("linear top-1", Some(b), &linear),
        (None, Some(b)) => ("kNN top-1", Some(b), &knn),
        (None, None) => ("Precision@1", best(&rows, precision_at_1), &precision_at_1),
    };
    let mut rec = Recommendation {
        loss,
        front,
        knee,
        best_knn,
        best_linear,
        tied: Vec::new(),
        recommended: None,
        reason: String::new(),
        tolerance_falls: match (rows.last(), rows.first()) {
            (Some(large), Some(small)) if rows.len() > 1 => tolerance_falls(large, small),
            _ => Vec::new(),
        },
        rows,
    };
    let no_knee = format!(
        "no knee: the uniformity–tolerance front has {} model{}, and a knee needs {KNEE_MIN_FRONT}",
        rec.front.len(),
        if rec.front.len() == 1 { "" } else { "s" }
    );
    let Some(b) = chosen else {
        (rec.recommended, rec.reason) = match (knee, rec.front.as_slice()) {
            (Some(k), _) => (
                Some(k),
                format!(
                    "{}: the knee of the uniformity–tolerance front (no accuracy was measured)",
                    names.of(k)
                ),
            ),
            (None, [only]) => (
                Some(*only),
                format!(
                    "{}: the only model on the uniformity–tolerance front, at least as uniform \
                     and as tolerant as every other (no accuracy was measured)",
                    names.of(*only)
                ),
            ),
            (None, []) => (None, "no model to recommend".into()),
            (None, _) => (
                None,
                format!("no recommendation: no accuracy was measured, and {no_knee}"),
            ),
        };
        return rec;
    };
    // Models whose interval reaches the best one's.
    rec.tied = rec
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let v = top1(r)?;
            let (_, hi) = wilson95(v, r.num_test);
            (i == b.model || hi >= b.lo).then_some(i)
        })
        .collect();
    let best_text = format!("best {measure} {:.3} [{:.3}, {:.3}]", b.value, b.lo, b.hi);
    if rec.tied.len() == 1 {
        rec.recommended = Some(b.model);
        rec.reason = format!(
            "{}: {best_text}, and no other model's 95% interval reaches it",
            names.of(b.model)
        );
        return rec;
    }
    // Accuracy cannot tell the tied models apart: a tie-break decides, and
    // is named as one. With a knee, the tied model nearest it (by the
    // uniformity–tolerance distance, both axes scaled to [0, 1] over the
    // loss's rows) balances the dilemma; without one, the best point
    // estimate stands.
    let others: Vec<usize> = rec.tied.iter().copied().filter(|&i| i != b.model).collect();
    let within = format!(
        "{} {} within its 95% interval, so accuracy cannot tell them apart",
        names.all(&others),
        if others.len() == 1 { "is" } else { "are" }
    );
    let Some(k) = knee else {
        rec.recommended = Some(b.model);
        rec.reason = format!(
            "{}: {best_text}; {within}. Tie-break: the higher {measure} ({no_knee})",
            names.of(b.model)
        );
        return rec;
    };
    let scaled = scale_to_unit(&points);
    let pick = rec
        .tied
        .iter()
        .copied()
        .min_by(|&a, &c| {
            let d = |i: usize| {
                let ((x, y), (kx, ky)) = (scaled[i], scaled[k]);
                (x - kx).powi(2) + (y - ky).powi(2)
            };
            d(a).total_cmp(&d(c)).then(a.cmp(&c))
        })
        .expect("the best model is tied with itself");
    rec.recommended = Some(pick);
    let knee_text = if pick == k {
        "the knee of the uniformity–tolerance front".to_string()
    } else {
        format!(
            "the nearest of them to the uniformity–tolerance knee ({})",
            names.of(k)
        )
    };
    rec.reason = if pick == b.model {
        format!(
            "{}: {best_text}; {within}. Tie-break: {knee_text}",
            names.of(pick)
        )
    } else {
        let r = &rec.rows[pick];
        let (u, t) = (
            r.uniformity.unwrap_or(f64::NAN),
            r.tolerance.unwrap_or(f64::NAN),
        );
        let bu = rec.rows[b.model].uniformity.unwrap_or(f64::NAN);
        let bt = rec.rows[b.model].tolerance.unwrap_or(f64::NAN);
        let trade = match (u > bu, t > bt) {
            (true, true) => ", more uniform and more tolerant than it",
            (true, false) => ", more uniform than it",
            (false, true) => ", more tolerant than it",
            (false, false) => "",
        };
        format!(
            "{}: {} has the {best_text}, but {within}. Tie-break: {knee_text}{trade}",
            names.of(pick),
            names.of(b.model),
        )
    };
    rec
}

impl Recommendation {
    /// As a comparison carries it (models by name).
    pub fn to_recommendation(&self) -> crate::domain::Recommendation {
        let name = |i: usize| self.rows[i].model.clone();
        let interval = |b: &Option<Interval>| {
            b.map(|b| crate::domain::AccuracyInterval {
                model: name(b.model),
                temperature: self.rows[b.model].temperature,
                top1: b.value,
                lo: b.lo,
                hi: b.hi,
            })
        };
        crate::domain::Recommendation {
            loss: self.loss.clone(),
            front: self.front.iter().map(|&i| name(i)).collect(),
            knee: self.knee.map(name).unwrap_or_default(),
            best_knn: interval(&self.best_knn),
            best_linear: interval(&self.best_linear),
            tied: self.tied.iter().map(|&i| name(i)).collect(),
            recommended: self.recommended.map(name).unwrap_or_default(),
            recommended_temperature: self.recommended.map_or(0.0, |i| self.rows[i].temperature),
            reason: self.reason.clone(),
            tolerance_falls: self.tolerance_falls.clone(),
        }
    }
}

/// One row per model of the recommendation's loss in `rows`: its τ,
/// uniformity, tolerance, accuracies with their 95% intervals, and whether
/// it is on the front, the knee, tied with the best, the recommendation.
pub fn recommendation_listing(
    rec: &crate::domain::Recommendation,
    rows: &[Report],
) -> super::Listing {
    let with_interval = |v: Option<f64>, n: u64| {
        v.map_or("-".to_string(), |v| {
            let (lo, hi) = wilson95(v, n);
            format!("{v:.4} [{lo:.4}, {hi:.4}]")
        })
    };
    let rows = rows
        .iter()
        .filter(|r| r.loss == rec.loss && r.status == Status::Completed)
        .map(|r| {
            let mut marks = Vec::new();
            if rec.front.contains(&r.model) {
                marks.push("front");
            }
            if rec.knee == r.model {
                marks.push("knee");
            }
            if rec.tied.len() > 1 && rec.tied.contains(&r.model) {
                marks.push("tied");
            }
            if rec.recommended == r.model {
                marks.push("recommended");
            }
            vec![
                r.model.clone(),
                r.temperature.to_string(),
                super::opt(r.uniformity),
                super::opt(r.tolerance),
                with_interval(r.knn.as_ref().map(|k| k.top1), r.num_test),
                with_interval(r.linear.as_ref().map(|l| l.top1), r.num_test),
                marks.join(" "),
            ]
        })
        .collect();
    super::Listing::new(
        &[
            "model",
            "temperature",
            "uniformity",
            "tolerance",
            "knn_top1 [95%]",
            "linear_top1 [95%]",
            "marks",
        ],
        rows,
    )
}

/// Each point with both coordinates scaled to [0, 1] over `points`.
fn scale_to_unit(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let range = |f: fn(&(f64, f64)) -> f64| {
        let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        (lo, (hi - lo).max(f64::MIN_POSITIVE))
    };
    let ((x0, xs), (y0, ys)) = (range(|p| p.0), range(|p| p.1));
    points
        .iter()
        .map(|p| ((p.0 - x0) / xs, (p.1 - y0) / ys))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KnnResult, LinearResult};

    /// Every point checked against every other: the definition.
    fn brute_front(points: &[(f64, f64)]) -> Vec<usize> {
        let mut out = Vec::new();
        'next: for i in 0..points.len() {
            for j in 0..points.len() {
                let (p, q) = (points[i], points[j]);
                let better_or_equal = q.0 >= p.0 && q.1 >= p.1;
                let strictly = q.0 > p.0 || q.1 > p.1;
                if i != j && better_or_equal && strictly {
                    continue 'next;
                }
            }
            out.push(i);
        }
        out
    }

    #[test]
    fn the_front_equals_the_brute_force_one_on_random_points() {
        let mut rng = crate::rng::SplitMix64::new(3);
        for case in 0..200 {
            let n = 1 + case % 12;
            // Coarse values so that ties and duplicates occur.
            let points: Vec<(f64, f64)> = (0..n)
                .map(|_| (rng.below(6) as f64, rng.below(6) as f64))
                .collect();
            let mut got = pareto_front(&points);
            got.sort();
            assert_eq!(got, brute_front(&points), "{points:?}");
        }
    }

    #[test]
    fn the_knee_is_the_point_farthest_beyond_the_chord() {
        // A front bending at (3, 3): the chord from (0, 4) to (4, 0).
        let points = [(0.0, 4.0), (3.0, 3.0), (4.0, 0.0), (1.0, 1.0), (2.0, 3.5)];
        let front = pareto_front(&points);
        assert_eq!(front, vec![0, 4, 1, 2]);
        assert_eq!(knee(&points, &front), Some(1));
    }

    fn report(tau: f64, u: f64, t: f64, linear: f64, n: u64) -> Report {
        Report {
            loss: "infonce".into(),
            temperature: tau,
            uniformity: Some(u),
            tolerance: Some(t),
            num_test: n,
            status: Status::Completed,
            knn: Some(KnnResult {
                top1: linear - 0.01,
                ..Default::default()
            }),
            linear: Some(LinearResult {
                top1: linear,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_classes_whose_tolerance_falls_most_come_first() {
        let per_class = |tolerance: Vec<f64>| {
            Some(crate::domain::PerClass {
                labels: vec![1, 2, 3, 4, 5],
                tolerance,
                ..Default::default()
            })
        };
        let mut small = report(0.1, 3.8, 0.2, 0.8, 100);
        small.per_class = per_class(vec![0.10, 0.30, 0.20, f64::NAN, 0.5]);
        let mut large = report(1.0, 2.0, 0.7, 0.8, 100);
        large.per_class = per_class(vec![0.60, 0.40, 0.70, 0.9, 0.3]);
        let rec = &recommend(&[large, small])[0];
        let got: Vec<(i64, f64)> = rec
            .tolerance_falls
            .iter()
            .map(|c| (c.label, (c.fall * 1e6).round() / 1e6))
            .collect();
        // 1 and 3 both fall 0.5: by label; 2 falls 0.1; 4 (NaN) and 5 (it
        // rises) are left out.
        assert_eq!(got, vec![(1, 0.5), (3, 0.5), (2, 0.1)]);
        assert_eq!(rec.tolerance_falls[0].at_largest_tau, 0.60);
        assert_eq!(rec.tolerance_falls[0].at_smallest_tau, 0.10);
    }

    #[test]
    fn a_loss_without_a_temperature_names_its_models() {
        let mut simple = report(0.0, 1.2, 0.9, 0.98, 540);
        simple.model = "simple".into();
        let rec = &recommend(&[simple])[0];
        assert!(
            rec.reason.starts_with("simple: best linear top-1"),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn a_run_keeps_the_checkpoint_the_same_rule_picks_named_by_step() {
        // The checkpoints of one τ at three steps: the last is clearly best.
        let rows = [
            report(0.2, 2.0, 0.60, 0.70, 10_000),
            report(0.2, 3.0, 0.45, 0.78, 10_000),
            report(0.2, 3.5, 0.40, 0.85, 10_000),
        ];
        let path: Vec<(u64, &Report)> = [100, 200, 300].into_iter().zip(rows.iter()).collect();
        let keep = checkpoint_to_keep(&path).unwrap();
        assert_eq!(keep.recommended, Some(2));
        assert!(
            keep.reason.starts_with("step 300: best linear top-1 0.850"),
            "{}",
            keep.reason
        );
        assert!(keep.tolerance_falls.is_empty());
        // Every checkpoint is on the front (each trades one axis for the other).
        assert_eq!(keep.front, vec![0, 1, 2]);
        // A later checkpoint that collapsed is never kept, however its
        // probe scored (a collapsed probe can still separate digits).
        let mut collapsed = report(0.2, 0.01, 0.999, 0.95, 10_000);
        collapsed.positive_similarity = Some(0.999);
        let with: Vec<(u64, &Report)> = path.iter().copied().chain([(400, &collapsed)]).collect();
        let keep = checkpoint_to_keep(&with).unwrap();
        assert!(keep.reason.starts_with("step 300:"), "{}", keep.reason);
        assert!(checkpoint_to_keep(&[(400, &collapsed)]).is_none());
        // Nothing evaluated: nothing to keep.
        assert!(checkpoint_to_keep(&[]).is_none());
    }

    #[test]
    fn a_clear_winner_is_recommended_and_overlapping_ones_are_said_to_be() {
        // 10,000 test rows: intervals about ±0.008.
        let rows = [
            report(0.1, 3.8, 0.20, 0.70, 10_000),
            report(0.3, 3.4, 0.40, 0.83, 10_000),
            report(1.0, 2.0, 0.70, 0.75, 10_000),
        ];
        let rec = &recommend(&rows)[0];
        assert_eq!(rec.recommended, Some(1));
        assert_eq!(rec.tied, vec![1]);
        assert!(
            rec.reason.starts_with("τ = 0.3: best linear top-1 0.830"),
            "{}",
            rec.reason
        );

        // 100 test rows: 0.83 and 0.80 overlap; the knee decides.
        let rows = [
            report(0.1, 3.8, 0.20, 0.60, 100),
            report(0.2, 3.6, 0.45, 0.80, 100),
            report(0.5, 3.0, 0.50, 0.83, 100),
            report(1.0, 2.0, 0.70, 0.55, 100),
        ];
        let rec = &recommend(&rows)[0];
        assert_eq!(rec.front, vec![3, 2, 1, 0]);
        assert_eq!(rec.knee, Some(1));
        assert_eq!(rec.tied, vec![1, 2]);
        assert_eq!(rec.recommended, Some(1));
        assert!(
            rec.reason.contains("cannot tell them apart")
                && rec.reason.starts_with("τ = 0.2")
                && rec
                    .reason
                    .contains("Tie-break: the knee of the uniformity–tolerance front"),
            "{}",
            rec.reason
        );
    }

    #[test]
    fn two_models_have_no_knee_and_a_tie_is_broken_by_accuracy_said_as_such() {
        // τ 0.1 is more uniform, τ 0.5 more tolerant and more accurate, but
        // within the other's interval (100 test rows).
        let rows = [
            report(0.1, 3.8, 0.30, 0.78, 100),
            report(0.5, 3.0, 0.50, 0.82, 100),
        ];
        let rec = &recommend(&rows)[0];
        assert_eq!(rec.front.len(), 2);
        assert_eq!(rec.knee, None, "two points have no knee");
        assert_eq!(rec.tied, vec![0, 1]);
        assert_eq!(rec.recommended, Some(1), "the higher accuracy stands");
        assert!(
            rec.reason.starts_with("τ = 0.5: best linear top-1 0.820")
                && rec.reason.contains("Tie-break: the higher linear top-1")
                && rec
                    .reason
                    .contains("the uniformity–tolerance front has 2 models, and a knee needs 3")
                && !rec.reason.contains("nearest"),
            "{}",
            rec.reason
        );
        // Without the probes, the retrieval metrics' Precision@1 decides.
        let retrieval_only = |mut r: Report| {
            r.retrieval = Some(crate::domain::RetrievalResult {
                precision_at_1: r.linear.as_ref().unwrap().top1,
                ..Default::default()
            });
            r.knn = None;
            r.linear = None;
            r
        };
        let rec = &recommend(&rows.clone().map(retrieval_only))[0];
        assert!(rec.recommended.is_some());
        assert!(rec.reason.contains("best Precision@1"), "{}", rec.reason);
        // No accuracy at all: two models give no recommendation, one does.
        let bare = |mut r: Report| {
            r.knn = None;
            r.linear = None;
            r
        };
        let rec = &recommend(&rows.clone().map(bare))[0];
        assert_eq!(rec.recommended, None);
        assert!(rec.reason.contains("no knee"), "{}", rec.reason);
        let rec = &recommend(&[bare(rows[1].clone())])[0];
        assert_eq!(rec.recommended, Some(0));
        assert!(
            rec.reason.contains("the only model on the"),
            "{}",
            rec.reason
        );
    }
}
