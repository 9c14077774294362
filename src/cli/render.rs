//! What the client prints: tables, JSON, progress bars.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::proto;

use super::args::Connection;

pub(crate) fn model_json(m: &proto::ModelInfo) -> serde_json::Value {
    let t = m.training.clone().unwrap_or_default();
    let i = m.input.clone().unwrap_or_default();
    json!({
        "name": m.name, "sha256": m.sha256, "loss": t.loss, "temperature": t.temperature,
        "dataset": t.dataset, "epochs": t.epochs, "seed": t.seed,
        "input": {"name": i.name, "shape": i.shape, "layout": i.layout, "scale": i.scale, "mean": i.mean, "std": i.std},
        "outputs": m.outputs.iter().map(|o| json!({"name": o.name, "dim": o.dim})).collect::<Vec<_>>(),
        "embedding_output": m.embedding_output, "feature_output": m.feature_output,
        "execution_provider": m.execution_provider, "size_bytes": m.size_bytes, "description": m.description,
    })
}

pub(crate) fn dataset_json(d: &proto::DatasetInfo) -> serde_json::Value {
    json!({
        "name": d.name, "id": d.id, "format": d.format, "num_classes": d.num_classes,
        "image_shape": d.image_shape, "source": d.source, "license": d.license,
        "splits": d.splits.iter().map(|s| json!({"name": s.name, "size": s.size})).collect::<Vec<_>>(),
    })
}

/// Prints rows as left-aligned columns under a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", crate::report::format_table(header, rows));
}

pub(crate) fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A report as JSON, every field.
pub fn report_json(r: &proto::EvaluationReport) -> serde_json::Value {
    let spec = r.spec.unwrap_or_default();
    json!({
        "id": r.id, "model": r.model, "model_sha256": r.model_sha256, "dataset": r.dataset,
        "dataset_id": r.dataset_id, "loss": r.loss, "temperature": r.temperature,
        "status": proto::EvaluationStatus::try_from(r.status).map(|s| s.as_str_name()).unwrap_or("?"),
        "error": r.error, "num_test": r.num_test, "num_train": r.num_train, "embedding_dim": r.embedding_dim,
        "uniformity": r.uniformity, "uniformity_loss": r.uniformity_loss,
        "uniformity_estimator": r.uniformity_estimator, "uniformity_stderr": r.uniformity_stderr,
        "alignment": r.alignment, "tolerance": r.tolerance, "positive_similarity": r.positive_similarity,
        "nearest_negative_similarity": r.nearest_negative_similarity, "relative_penalty": r.relative_penalty,
        "penalty_entropy": r.penalty_entropy, "effective_negatives": r.effective_negatives,
        "effective_rank": r.effective_rank,
        "knn": r.knn.as_ref().map(|k| json!({"top1": k.top1, "top5": k.top5, "k": k.k, "temperature": k.temperature, "metric": k.metric})),
        "linear": r.linear.as_ref().map(|l| json!({"top1": l.top1, "top5": l.top5, "train_top1": l.train_top1, "c": l.c, "iterations": l.iterations, "converged": l.converged, "feature_output": l.feature_output})),
        "spec": {
            "uniformity_t": spec.uniformity_t, "neighbors_k": spec.neighbors_k, "augmentation_seed": spec.augmentation_seed,
            "penalty_temperature": spec.penalty_temperature, "knn_k": spec.knn_k, "knn_temperature": spec.knn_temperature,
            "linear_c": spec.linear_c, "linear_max_iter": spec.linear_max_iter, "linear_tol": spec.linear_tol,
            "alignment_alpha": spec.alignment_alpha, "uniformity_exact_max_rows": spec.uniformity_exact_max_rows,
            "uniformity_samples": spec.uniformity_samples,
        },
        "timings": r.timings,
        "created_at": r.created_at.map(|t| t.seconds),
    })
}

/// A progress bar driven by the server's stage events.
pub(crate) struct StageBar {
    pub(crate) bar: ProgressBar,
    stage: String,
    started: std::time::Instant,
}

impl StageBar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self {
            bar,
            stage: String::new(),
            started: std::time::Instant::now(),
        }
    }

    pub(crate) fn update(&mut self, p: &proto::Progress) {
        let label = if p.model.is_empty() {
            p.stage.clone()
        } else if p.models > 1 {
            // A comparison: which model of how many, and when it should end
            // at the pace of the models done so far.
            let done = p.model_index.saturating_sub(1);
            let eta = if done > 0 {
                let per = self.started.elapsed().as_secs_f64() / done as f64;
                format!(", ~{:.0} s left", per * (p.models - done) as f64)
            } else {
                String::new()
            };
            format!(
                "[{}/{}{eta}] {} {}",
                p.model_index, p.models, p.model, p.stage
            )
        } else {
            format!("{} {}", p.model, p.stage)
        };
        if label != self.stage {
            self.stage = label.clone();
            self.bar.set_message(label);
        }
        self.bar.set_length(p.total.max(1));
        self.bar.set_position(p.done);
    }
}

/// Prints the ids and status of a detached job.
pub(crate) fn print_accepted(conn: &Connection, a: &proto::Accepted) -> anyhow::Result<()> {
    let status = proto::EvaluationStatus::try_from(a.status)
        .map(|s| s.as_str_name())
        .unwrap_or("?");
    if conn.json {
        return print_json(&json!({ "evaluation_ids": a.evaluation_ids, "status": status }));
    }
    for id in &a.evaluation_ids {
        println!("{id} {status}");
    }
    Ok(())
}
