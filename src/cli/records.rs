//! The messages a server answers with as the domain's records, so that the
//! CLI's tables and figures are the ones the service's own report code
//! draws (`crate::report`). A report converts through the conversion that
//! also reads earlier releases' rows (`database/legacy.rs`); the rest is
//! here.

use crate::domain;
use crate::proto;

/// A comparison as the report code reads it.
pub fn comparison(c: proto::Comparison) -> domain::Comparison {
    domain::Comparison {
        rows: c.rows.into_iter().map(Into::into).collect(),
        plot_svg: c.plot_svg,
        accuracy_plot_svg: c.accuracy_plot_svg,
        id: c.id,
        excluded: c
            .excluded
            .into_iter()
            .map(|e| domain::ExcludedModel {
                model: e.model,
                kind: e.kind,
                reason: e.reason,
                same_as: e.same_as,
            })
            .collect(),
        recommendations: c.recommendations.into_iter().map(recommendation).collect(),
        by: c.by,
        groups: c
            .groups
            .into_iter()
            .map(|g| domain::TagGroup {
                tags: g.tags.into_iter().collect(),
                models: g.models,
                values: g.values,
                metrics: g
                    .metrics
                    .into_iter()
                    .map(|m| domain::MetricSummary {
                        metric: m.metric,
                        n: m.n,
                        mean: m.mean,
                        std: m.std,
                        interval: m.interval,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn interval(a: proto::AccuracyInterval) -> domain::AccuracyInterval {
    domain::AccuracyInterval {
        model: a.model,
        temperature: a.temperature,
        top1: a.top1,
        lo: a.lo,
        hi: a.hi,
    }
}

/// A recommendation as the report code reads it.
pub fn recommendation(r: proto::Recommendation) -> domain::Recommendation {
    domain::Recommendation {
        loss: r.loss,
        front: r.front,
        knee: r.knee,
        best_knn: r.best_knn.map(interval),
        best_linear: r.best_linear.map(interval),
        tied: r.tied,
        recommended: r.recommended,
        recommended_temperature: r.recommended_temperature,
        reason: r.reason,
        tolerance_falls: r
            .tolerance_falls
            .into_iter()
            .map(|c| domain::ClassTolerance {
                label: c.label,
                at_largest_tau: c.at_largest_tau,
                at_smallest_tau: c.at_smallest_tau,
                fall: c.fall,
                name: c.name,
            })
            .collect(),
    }
}

/// A run as the report code reads it.
pub fn run(r: proto::Run) -> domain::Run {
    domain::Run {
        name: r.name,
        dataset: r.dataset,
        checkpoints: r
            .checkpoints
            .into_iter()
            .map(|c| domain::Checkpoint {
                step: c.step,
                model: c.model,
                model_sha256: c.model_sha256,
                report: c.report.map(Into::into),
            })
            .collect(),
        warnings: r
            .warnings
            .into_iter()
            .map(|w| domain::RunWarning {
                kind: w.kind,
                step: w.step,
                message: w.message,
            })
            .collect(),
        checkpoint_to_keep: r.checkpoint_to_keep.map(recommendation),
    }
}
