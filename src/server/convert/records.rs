//! The domain's records (`crate::domain`) as the contract's messages: every
//! model and dataset description, report, comparison and run the service
//! answers with is converted here,
//! field by field, so that the wire format can change apart from what the
//! engine and the database hold. (A request's `MetricSpec` goes the other
//! way through the one conversion that also reads earlier releases' rows,
//! in `database/legacy.rs`.)

use crate::domain;
use crate::proto;

impl From<domain::Status> for proto::EvaluationStatus {
    fn from(s: domain::Status) -> Self {
        match s {
            domain::Status::Unspecified => proto::EvaluationStatus::Unspecified,
            domain::Status::Queued => proto::EvaluationStatus::Queued,
            domain::Status::Running => proto::EvaluationStatus::Running,
            domain::Status::Completed => proto::EvaluationStatus::Completed,
            domain::Status::Failed => proto::EvaluationStatus::Failed,
            domain::Status::Cancelled => proto::EvaluationStatus::Cancelled,
            domain::Status::Skipped => proto::EvaluationStatus::Skipped,
        }
    }
}

impl From<domain::Timestamp> for prost_types::Timestamp {
    fn from(t: domain::Timestamp) -> Self {
        prost_types::Timestamp {
            seconds: t.seconds,
            nanos: t.nanos,
        }
    }
}

impl From<domain::MetricSpec> for proto::MetricSpec {
    fn from(s: domain::MetricSpec) -> Self {
        proto::MetricSpec {
            uniformity_t: s.uniformity_t,
            neighbors_k: s.neighbors_k,
            augmentation_seed: s.augmentation_seed,
            penalty_temperature: s.penalty_temperature,
            knn_k: s.knn_k,
            knn_temperature: s.knn_temperature,
            linear_c: s.linear_c,
            linear_max_iter: s.linear_max_iter,
            linear_tol: s.linear_tol,
            alignment_alpha: s.alignment_alpha,
            uniformity_exact_max_rows: s.uniformity_exact_max_rows,
            uniformity_samples: s.uniformity_samples,
            augmentation: s.augmentation.map(|a| proto::Augmentation {
                recipe: a.recipe,
                crop_scale_min: a.crop_scale_min,
                crop_scale_max: a.crop_scale_max,
                jitter: a.jitter,
                grayscale: a.grayscale,
                flip: a.flip,
                blur: a.blur,
            }),
            positives_split: s.positives_split,
            linear_train_fraction: s.linear_train_fraction,
            linear_train_seed: s.linear_train_seed,
            skip_uniformity: s.skip_uniformity,
            skip_alignment: s.skip_alignment,
            skip_tolerance: s.skip_tolerance,
            skip_nearest_negatives: s.skip_nearest_negatives,
            skip_penalty: s.skip_penalty,
            skip_effective_rank: s.skip_effective_rank,
            skip_knn: s.skip_knn,
            skip_linear: s.skip_linear,
            skip_per_class: s.skip_per_class,
            recall_ks: s.recall_ks,
            retrieval_gallery: s.retrieval_gallery,
            kmeans_iterations: s.kmeans_iterations,
            kmeans_restarts: s.kmeans_restarts,
            kmeans_seed: s.kmeans_seed,
            skip_retrieval: s.skip_retrieval,
            skip_clustering: s.skip_clustering,
        }
    }
}

impl From<domain::InputInfo> for proto::InputInfo {
    fn from(i: domain::InputInfo) -> Self {
        let dtype = match i.dtype.as_str() {
            "float32" => proto::DataType::Float32,
            "uint8" => proto::DataType::Uint8,
            "int64" => proto::DataType::Int64,
            _ => proto::DataType::Unspecified,
        };
        proto::InputInfo {
            name: i.name,
            dtype: dtype as i32,
            shape: i.shape,
            layout: i.layout,
            scale: i.scale,
            mean: i.mean,
            std: i.std,
            resize: i.resize,
            preset: i.preset,
            image_height: i.image_height,
            image_width: i.image_width,
            resize_factor_height: i.resize_factor_height,
            resize_factor_width: i.resize_factor_width,
        }
    }
}

impl From<domain::Report> for proto::EvaluationReport {
    fn from(r: domain::Report) -> Self {
        proto::EvaluationReport {
            id: r.id,
            model: r.model,
            model_sha256: r.model_sha256,
            dataset: r.dataset,
            dataset_id: r.dataset_id,
            temperature: r.temperature,
            loss: r.loss,
            loss_name: r.loss_name,
            num_test: r.num_test,
            num_train: r.num_train,
            embedding_dim: r.embedding_dim,
            uniformity: r.uniformity,
            uniformity_loss: r.uniformity_loss,
            alignment: r.alignment,
            tolerance: r.tolerance,
            positive_similarity: r.positive_similarity,
            nearest_negative_similarity: r.nearest_negative_similarity,
            relative_penalty: r.relative_penalty,
            penalty_entropy: r.penalty_entropy,
            effective_negatives: r.effective_negatives,
            effective_rank: r.effective_rank,
            knn: r.knn.map(|k| proto::KnnResult {
                top1: k.top1,
                top5: k.top5,
                k: k.k,
                temperature: k.temperature,
                metric: k.metric,
            }),
            linear: r.linear.map(|l| proto::LinearResult {
                top1: l.top1,
                top5: l.top5,
                train_top1: l.train_top1,
                c: l.c,
                iterations: l.iterations,
                feature_output: l.feature_output,
                converged: l.converged,
                train_rows: l.train_rows,
                seconds_per_iteration: l.seconds_per_iteration,
            }),
            retrieval: r.retrieval.map(|x| proto::RetrievalResult {
                precision_at_1: x.precision_at_1,
                r_precision: x.r_precision,
                map_at_r: x.map_at_r,
                recall_at_k: x
                    .recall_at_k
                    .into_iter()
                    .map(|(k, recall)| proto::RecallAtK { k, recall })
                    .collect(),
                gallery: x.gallery,
                queries: x.queries,
                lone_queries: x.lone_queries,
            }),
            clustering: r.clustering.map(|c| proto::ClusteringResult {
                nmi: c.nmi,
                ami: c.ami,
                clusters: c.clusters,
                iterations: c.iterations,
                restarts: c.restarts,
                seed: c.seed,
                objective: c.objective,
            }),
            spec: r.spec.map(Into::into),
            timings: r.timings.into_iter().collect(),
            created_at: r.created_at.map(Into::into),
            status: proto::EvaluationStatus::from(r.status) as i32,
            error: r.error,
            uniformity_estimator: r.uniformity_estimator,
            uniformity_stderr: r.uniformity_stderr,
            histograms: r
                .histograms
                .into_iter()
                .map(|h| proto::Histogram {
                    name: h.name,
                    lo: h.lo,
                    hi: h.hi,
                    counts: h.counts,
                })
                .collect(),
            preprocessing: r.preprocessing.map(Into::into),
            execution_provider: r.execution_provider,
            test_split: r.test_split,
            train_split: r.train_split,
            warnings: r.warnings,
            per_class: r.per_class.map(|p| proto::PerClass {
                labels: p.labels,
                counts: p.counts,
                tolerance: p.tolerance,
                knn_top1: p.knn_top1,
                linear_top1: p.linear_top1,
                similarity: p.similarity,
                nearest_negative_classes: p.nearest_negative_classes,
                nearest_negative_k: p.nearest_negative_k,
                names: p.names,
                map_at_r: p.map_at_r,
                r_precision: p.r_precision,
            }),
            tags: r.tags.into_iter().collect(),
        }
    }
}

impl From<domain::ExcludedModel> for proto::ExcludedModel {
    fn from(e: domain::ExcludedModel) -> Self {
        proto::ExcludedModel {
            model: e.model,
            kind: e.kind,
            reason: e.reason,
            same_as: e.same_as,
        }
    }
}

impl From<domain::AccuracyInterval> for proto::AccuracyInterval {
    fn from(a: domain::AccuracyInterval) -> Self {
        proto::AccuracyInterval {
            model: a.model,
            temperature: a.temperature,
            top1: a.top1,
            lo: a.lo,
            hi: a.hi,
        }
    }
}

impl From<domain::Recommendation> for proto::Recommendation {
    fn from(r: domain::Recommendation) -> Self {
        proto::Recommendation {
            loss: r.loss,
            front: r.front,
            knee: r.knee,
            best_knn: r.best_knn.map(Into::into),
            best_linear: r.best_linear.map(Into::into),
            tied: r.tied,
            recommended: r.recommended,
            recommended_temperature: r.recommended_temperature,
            reason: r.reason,
            tolerance_falls: r
                .tolerance_falls
                .into_iter()
                .map(|c| proto::ClassTolerance {
                    label: c.label,
                    at_largest_tau: c.at_largest_tau,
                    at_smallest_tau: c.at_smallest_tau,
                    fall: c.fall,
                    name: c.name,
                })
                .collect(),
        }
    }
}

impl From<domain::TagGroup> for proto::TagGroup {
    fn from(g: domain::TagGroup) -> Self {
        proto::TagGroup {
            tags: g.tags.into_iter().collect(),
            models: g.models,
            values: g.values,
            metrics: g
                .metrics
                .into_iter()
                .map(|m| proto::MetricSummary {
                    metric: m.metric,
                    n: m.n,
                    mean: m.mean,
                    std: m.std,
                    interval: m.interval,
                })
                .collect(),
        }
    }
}

impl From<domain::Comparison> for proto::Comparison {
    fn from(c: domain::Comparison) -> Self {
        proto::Comparison {
            rows: c.rows.into_iter().map(Into::into).collect(),
            plot_svg: c.plot_svg,
            accuracy_plot_svg: c.accuracy_plot_svg,
            id: c.id,
            excluded: c.excluded.into_iter().map(Into::into).collect(),
            recommendations: c.recommendations.into_iter().map(Into::into).collect(),
            by: c.by,
            groups: c.groups.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<domain::RunSummary> for proto::RunSummary {
    fn from(r: domain::RunSummary) -> Self {
        proto::RunSummary {
            name: r.name,
            checkpoints: r.checkpoints,
            first_step: r.first_step,
            last_step: r.last_step,
            loss: r.loss,
            temperature: r.temperature,
        }
    }
}

impl From<domain::Run> for proto::Run {
    fn from(r: domain::Run) -> Self {
        proto::Run {
            name: r.name,
            dataset: r.dataset,
            checkpoints: r
                .checkpoints
                .into_iter()
                .map(|c| proto::Checkpoint {
                    step: c.step,
                    model: c.model,
                    model_sha256: c.model_sha256,
                    report: c.report.map(Into::into),
                })
                .collect(),
            warnings: r
                .warnings
                .into_iter()
                .map(|w| proto::RunWarning {
                    kind: w.kind,
                    step: w.step,
                    message: w.message,
                })
                .collect(),
            checkpoint_to_keep: r.checkpoint_to_keep.map(Into::into),
        }
    }
}

impl From<domain::ModelInfo> for proto::ModelInfo {
    fn from(m: domain::ModelInfo) -> Self {
        proto::ModelInfo {
            name: m.name,
            sha256: m.sha256,
            training: m.training.map(|t| proto::TrainingInfo {
                loss: t.loss,
                temperature: t.temperature,
                dataset: t.dataset,
                epochs: t.epochs,
                seed: t.seed,
                run: t.run,
                step: t.step,
                loss_name: t.loss_name,
            }),
            input: m.input.map(Into::into),
            outputs: m
                .outputs
                .into_iter()
                .map(|o| proto::OutputInfo {
                    name: o.name,
                    dim: o.dim,
                })
                .collect(),
            embedding_output: m.embedding_output,
            feature_output: m.feature_output,
            execution_provider: m.execution_provider,
            description: m.description,
            size_bytes: m.size_bytes,
            inferred: m.inferred,
            warnings: m.warnings,
            tags: m.tags.into_iter().collect(),
        }
    }
}

impl From<domain::DatasetInfo> for proto::DatasetInfo {
    fn from(d: domain::DatasetInfo) -> Self {
        proto::DatasetInfo {
            name: d.name,
            id: d.id,
            format: d.format,
            splits: d
                .splits
                .into_iter()
                .map(|s| proto::SplitInfo {
                    name: s.name,
                    size: s.size,
                })
                .collect(),
            num_classes: d.num_classes,
            image_shape: d.image_shape,
            source: d.source,
            license: d.license,
            image_size: d.image_size,
            crop_fraction: d.crop_fraction,
            test_split: d.test_split,
            train_split: d.train_split,
            class_names: d.class_names,
        }
    }
}

impl From<domain::ComparisonSummary> for proto::ComparisonSummary {
    fn from(c: domain::ComparisonSummary) -> Self {
        proto::ComparisonSummary {
            id: c.id,
            dataset: c.dataset,
            created_at: Some(c.created.into()),
            models: c.models,
            num_evaluations: c.num_evaluations,
            num_excluded: c.num_excluded,
            dataset_ids: c.dataset_ids,
        }
    }
}

impl From<domain::Projections> for proto::Projections {
    fn from(p: domain::Projections) -> Self {
        let method = match p.method.as_str() {
            "tsne" => proto::ProjectionMethod::Tsne,
            _ => proto::ProjectionMethod::Pca,
        };
        proto::Projections {
            dataset: p.dataset,
            dataset_id: p.dataset_id,
            split: p.split,
            rows: p.rows,
            labels: p.labels,
            class_names: p.class_names,
            method: method as i32,
            seed: p.seed,
            perplexity: p.perplexity,
            max_rows: p.max_rows,
            projections: p
                .projections
                .into_iter()
                .map(|q| proto::Projection {
                    model: q.model,
                    temperature: q.temperature,
                    coordinates: q.coordinates,
                    explained_variance: q.explained_variance,
                    kl_divergence: q.kl_divergence,
                })
                .collect(),
            svg: p.svg,
        }
    }
}

impl From<domain::NearestImages> for proto::NearestImagesResponse {
    fn from(n: domain::NearestImages) -> Self {
        proto::NearestImagesResponse {
            dataset: n.dataset,
            dataset_id: n.dataset_id,
            test_split: n.test_split,
            train_split: n.train_split,
            row: n.row,
            label: n.label,
            class_names: n.class_names,
            models: n
                .models
                .into_iter()
                .map(|m| proto::ModelNeighbours {
                    model: m.model,
                    temperature: m.temperature,
                    neighbours: m
                        .neighbours
                        .into_iter()
                        .map(|x| proto::Neighbour {
                            row: x.row,
                            label: x.label,
                            similarity: x.similarity,
                        })
                        .collect(),
                    confusions: m
                        .confusions
                        .into_iter()
                        .map(|c| proto::ClassConfusion {
                            label: c.label,
                            rows: c.rows,
                            confused_with: c.confused_with,
                            share: c.share,
                            pairs: c
                                .pairs
                                .into_iter()
                                .map(|p| proto::ConfusedPair {
                                    test_row: p.test_row,
                                    train_row: p.train_row,
                                    similarity: p.similarity,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
