//! One evaluation's numbers from its embeddings: the metrics of
//! [`crate::metrics`] and the protocols of [`crate::eval`], each stage timed,
//! checked for cancellation between stages and inside every long loop, written into the report.

use std::sync::Arc;
use std::time::Instant;

use super::settings::Settings;
use crate::cancel::Stop;
use crate::error::{Error, Result};
use crate::eval::{
    cluster, knn_and_retrieval, knn_classify, linear_probe, Gallery, KmeansOptions, KnnOptions,
    LinearOptions, RetrievalOptions,
};
use crate::metrics::{self, Matrix, UniformityOptions};

/// Bins of the similarity histograms over [-1, 1].
pub const HISTOGRAM_BINS: usize = 40;

/// Features for the linear probe and the output they came from.
#[derive(Debug, Clone)]
pub struct ProbeData {
    /// Train rows.
    pub train: Arc<Matrix>,
    /// Test rows.
    pub test: Arc<Matrix>,
    /// The model output they are ("features" or the embedding).
    pub output: String,
}

/// The embeddings an evaluation works on (raw: they are normalised here),
/// shared with the cache rather than copied.
#[derive(Debug, Clone)]
pub struct EvalData {
    /// Test embeddings.
    pub test: Arc<Matrix>,
    /// Test labels.
    pub test_labels: Vec<i64>,
    /// The positive view of each test row.
    pub test_positive: Option<Arc<Matrix>>,
    /// Train embeddings and labels (the kNN bank).
    pub train: Option<(Arc<Matrix>, Vec<i64>)>,
    /// Probe features; the embeddings are used when absent.
    pub probe: Option<ProbeData>,
    /// The dataset's class names by label (empty: unnamed), for the
    /// per-class diagnostics.
    pub class_names: Vec<String>,
}

/// Where an evaluation's progress goes: (stage, done, total).
pub type StageProgress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// Runs `f` as stage `name`: checks cancellation, reports the stage (0 of
/// 1 until its loops report their own units through the [`Stop`] handed to
/// `f`), records its seconds in the report's timings.
fn stage<T>(
    name: &'static str,
    report: &mut crate::domain::Report,
    cancel: &Stop,
    progress: &StageProgress,
    f: impl FnOnce(&Stop) -> Result<T>,
) -> Result<T> {
    cancel.check()?;
    progress(name, 0, 1);
    let sink = progress.clone();
    let stop = cancel.reporting(Arc::new(move |done, total| sink(name, done, total)));
    let start = Instant::now();
    let out = f(&stop)?;
    report
        .timings
        .insert(name.to_string(), start.elapsed().as_secs_f64());
    Ok(out)
}

/// The name of each label: `names[label]` where the dataset names it, else
/// the label itself; empty when the dataset names no class.
fn class_names_of(labels: &[i64], names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    labels
        .iter()
        .map(|&l| {
            usize::try_from(l)
                .ok()
                .and_then(|i| names.get(i))
                .cloned()
                .unwrap_or_else(|| l.to_string())
        })
        .collect()
}

/// Computes every metric the settings ask for into `report`.
pub fn compute(
    data: &EvalData,
    s: &Settings,
    report: &mut crate::domain::Report,
    cancel: &Stop,
    progress: &StageProgress,
) -> Result<()> {
    if data.test.rows() != data.test_labels.len() {
        return Err(Error::InvalidArgument(format!(
            "{} test embeddings but {} labels",
            data.test.rows(),
            data.test_labels.len()
        )));
    }
    let z = stage("normalize", report, cancel, progress, |_| {
        data.test.normalized()
    })?;
    report.num_test = z.rows() as u64;
    report.embedding_dim = z.dim() as u32;
    report.spec = Some(s.to_spec());

    if !s.skip.uniformity {
        let opts = UniformityOptions {
            t: s.uniformity_t,
            exact_max_rows: s.uniformity_exact_max_rows as usize,
            samples: s.uniformity_samples,
            seed: s.augmentation_seed,
        };
        let u = stage("uniformity", report, cancel, progress, |stop| {
            metrics::uniformity(&z, &opts, stop)
        })?;
        report.uniformity_loss = Some(u.loss);
        report.uniformity = Some(-u.loss);
        report.uniformity_estimator = u.estimator.as_str().to_string();
        report.uniformity_stderr = u.stderr;
    }
    if let Some(pos) = &data.test_positive {
        if !s.skip.alignment {
            let zp = pos.normalized()?;
            let (a, p, sims) = stage("alignment", report, cancel, progress, |_| {
                Ok((
                    metrics::alignment(&z, &zp, s.alignment_alpha)?,
                    metrics::positive_similarity(&z, &zp)?,
                    metrics::positive_similarities(&z, &zp)?,
                ))
            })?;
            report.alignment = Some(a);
            report.positive_similarity = Some(p);
            report.histograms.push(crate::domain::Histogram {
                name: "positive".into(),
                lo: -1.0,
                hi: 1.0,
                counts: metrics::histogram(sims, HISTOGRAM_BINS, -1.0, 1.0),
            });
        }
    }
    if !s.skip.tolerance {
        let t = stage("tolerance", report, cancel, progress, |_| {
            metrics::tolerance(&z, &data.test_labels)
        })?;
        report.tolerance = Some(t);
    }
    let mut neighbors = None;
    if !(s.skip.nearest_negatives && s.skip.penalty) {
        let profile = stage("nearest_negatives", report, cancel, progress, |stop| {
            metrics::nearest_negatives(&z, s.neighbors_k, stop)
        })?;
        if !s.skip.nearest_negatives {
            report.nearest_negative_similarity = profile.mean_similarity.clone();
            for r in 0..profile.k {
                report.histograms.push(crate::domain::Histogram {
                    name: format!("negative_rank_{}", r + 1),
                    lo: -1.0,
                    hi: 1.0,
                    counts: metrics::histogram(profile.rank(r), HISTOGRAM_BINS, -1.0, 1.0),
                });
            }
        }
        if !s.skip.penalty {
            let p = stage("penalty", report, cancel, progress, |stop| {
                metrics::penalty_profile(&z, s.penalty_temperature, &profile, stop)
            })?;
            report.relative_penalty = p.relative_penalty;
            report.penalty_entropy = Some(p.entropy);
            report.effective_negatives = Some(p.effective_negatives);
        }
        if !s.skip.nearest_negatives {
            neighbors = Some(profile);
        }
    }
    if !s.skip.effective_rank {
        let r = stage("effective_rank", report, cancel, progress, |_| {
            metrics::effective_rank(&z, 1e-7)
        })?;
        report.effective_rank = Some(r);
    }
    let (mut knn_correct, mut linear_correct) = (None, None);
    let mut retrieval = None;
    let train = data.train.as_ref().map(|(m, y)| (m.as_ref(), y.as_slice()));
    if let Some((train, _)) = train {
        report.num_train = train.rows() as u64;
    }
    let knn_opts = KnnOptions {
        ks: vec![s.knn_k],
        temperature: s.knn_temperature,
        ..Default::default()
    };
    let knn_opts = (!s.skip.knn && train.is_some()).then_some(&knn_opts);
    let gallery = s.retrieval_gallery.unwrap_or(if train.is_some() {
        Gallery::Train
    } else {
        Gallery::Test
    });
    if let Some(spec) = report.spec.as_mut() {
        spec.retrieval_gallery = gallery.as_str().to_string();
    }
    let ropts = RetrievalOptions {
        recall_ks: s.recall_ks.clone(),
        gallery,
    };
    let (knn, found) = match (knn_opts, s.skip.retrieval) {
        (None, true) => (None, None),
        (Some(k), true) => {
            let (train, train_y) = train.expect("the kNN runs with a train split");
            let knn = stage("knn", report, cancel, progress, |stop| {
                knn_classify(train, train_y, &z, &data.test_labels, k, stop)
            })?;
            (Some(knn), None)
        }
        // One pass over the train split for both.
        (Some(k), false) if gallery == Gallery::Train => {
            let (knn, r) = stage("knn", report, cancel, progress, |stop| {
                knn_and_retrieval(train, &z, &data.test_labels, Some(k), &ropts, stop)
            })?;
            (knn, Some(r))
        }
        (k, false) => {
            let knn = match k {
                Some(k) => {
                    let (train, train_y) = train.expect("the kNN runs with a train split");
                    Some(stage("knn", report, cancel, progress, |stop| {
                        knn_classify(train, train_y, &z, &data.test_labels, k, stop)
                    })?)
                }
                None => None,
            };
            let (_, r) = stage("retrieval", report, cancel, progress, |stop| {
                knn_and_retrieval(train, &z, &data.test_labels, None, &ropts, stop)
            })?;
            (knn, Some(r))
        }
    };
    if let Some(mut knn) = knn {
        let knn = knn.remove(0);
        report.knn = Some(crate::domain::KnnResult {
            top1: knn.top1,
            top5: knn.top5,
            k: knn.k as u32,
            temperature: knn.temperature,
            metric: "cosine".into(),
        });
        knn_correct = Some(knn.correct);
    }
    if let Some(r) = found {
        report.retrieval = Some(crate::domain::RetrievalResult {
            precision_at_1: r.precision_at_1,
            r_precision: r.r_precision,
            map_at_r: r.map_at_r,
            recall_at_k: r.recall_at_k.iter().map(|&(k, v)| (k as u32, v)).collect(),
            gallery: r.gallery.as_str().to_string(),
            queries: r.queries as u64,
            lone_queries: r.lone_queries as u64,
        });
        retrieval = Some(r);
    }
    if !s.skip.clustering {
        let opts = KmeansOptions {
            iterations: s.kmeans_iterations,
            restarts: s.kmeans_restarts,
            seed: s.kmeans_seed as u32,
        };
        let c = stage("clustering", report, cancel, progress, |stop| {
            cluster(&z, &data.test_labels, &opts, stop)
        })?;
        if let Some(w) = crate::eval::clustering::few_rows_per_cluster(z.rows(), c.clusters) {
            report.warnings.push(w);
        }
        report.clustering = Some(crate::domain::ClusteringResult {
            nmi: c.nmi,
            ami: c.ami,
            clusters: c.clusters as u32,
            iterations: opts.iterations,
            restarts: opts.restarts,
            seed: s.kmeans_seed,
            objective: c.objective,
        });
    }
    if let Some((train, train_labels)) = &data.train {
        if !s.skip.linear {
            let (ptrain, ptest, output) = match &data.probe {
                Some(p) => (&p.train, &p.test, p.output.clone()),
                None => (train, &data.test, "embedding".to_string()),
            };
            let opts = LinearOptions {
                c: s.linear_c,
                max_iter: s.linear_max_iter,
                tol: s.linear_tol,
                train_fraction: s.linear_train_fraction,
                train_seed: s.linear_train_seed,
            };
            let lin = stage("linear", report, cancel, progress, |stop| {
                linear_probe(ptrain, train_labels, ptest, &data.test_labels, &opts, stop)
            })?;
            linear_correct = Some(lin.correct);
            report.linear = Some(crate::domain::LinearResult {
                top1: lin.top1,
                top5: lin.top5,
                train_top1: lin.train_top1,
                c: lin.c,
                iterations: lin.iterations as u32,
                feature_output: output,
                converged: lin.converged,
                train_rows: lin.train_rows as u64,
                seconds_per_iteration: lin.seconds_per_iteration,
            });
        }
    }
    if !s.skip.per_class {
        let labels = &data.test_labels;
        report.per_class = Some(stage("per_class", report, cancel, progress, |_| {
            let p = metrics::per_class(&z, labels, neighbors.as_ref())?;
            let accuracy = |correct: Option<Vec<bool>>| {
                correct.map_or(Ok(Vec::new()), |c| p.accuracy(labels, &c))
            };
            let (map_at_r, r_precision) = retrieval
                .as_ref()
                .map(|r| crate::eval::retrieval::per_class(r, labels, &p.labels))
                .unwrap_or_default();
            Ok(crate::domain::PerClass {
                map_at_r,
                r_precision,
                knn_top1: accuracy(knn_correct)?,
                linear_top1: accuracy(linear_correct)?,
                similarity: p.similarity.iter().map(|&v| v as f32).collect(),
                nearest_negative_k: p.k as u32,
                counts: p.counts,
                tolerance: p.tolerance,
                nearest_negative_classes: p.neighbor_classes,
                names: class_names_of(&p.labels, &data.class_names),
                labels: p.labels,
            })
        })?);
    }
    Ok(())
}
