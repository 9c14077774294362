//! Rows that releases before the domain records wrote: a report stored as
//! the protobuf encoding of `embedeval.v1.EvaluationReport` (row format 0).
//! The one place below the edge that reads the wire format, and only to
//! read such a row and to migrate it ([`super::ReportStore::open`]
//! rewrites every one as a domain record once).
//!
//! Stored jobs and registrations of earlier releases are read here too.
//! The conversions here are the only ones from the wire's report into the
//! domain's: the edge uses them too, for a request's `MetricSpec`, and the
//! CLI for the reports a server answers with.

use prost::Message;

use crate::domain;
use crate::error::{Error, Result};
use crate::proto;

/// The report of a row of format 0.
pub(super) fn decode(bytes: &[u8]) -> Result<domain::Report> {
    let r = proto::EvaluationReport::decode(bytes).map_err(|e| {
        Error::store(format!(
            "a report of an earlier release does not decode: {e}"
        ))
    })?;
    Ok(r.into())
}

impl From<proto::EvaluationReport> for domain::Report {
    fn from(r: proto::EvaluationReport) -> domain::Report {
        domain::Report {
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
            retrieval: r.retrieval.map(|x| domain::RetrievalResult {
                precision_at_1: x.precision_at_1,
                r_precision: x.r_precision,
                map_at_r: x.map_at_r,
                recall_at_k: x.recall_at_k.into_iter().map(|r| (r.k, r.recall)).collect(),
                gallery: x.gallery,
                queries: x.queries,
                lone_queries: x.lone_queries,
            }),
            clustering: r.clustering.map(|c| domain::ClusteringResult {
                nmi: c.nmi,
                ami: c.ami,
                clusters: c.clusters,
                iterations: c.iterations,
                restarts: c.restarts,
                seed: c.seed,
                objective: c.objective,
            }),
            knn: r.knn.map(|k| domain::KnnResult {
                top1: k.top1,
                top5: k.top5,
                k: k.k,
                temperature: k.temperature,
                metric: k.metric,
            }),
            linear: r.linear.map(|l| domain::LinearResult {
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
            spec: r.spec.map(Into::into),
            timings: r.timings.into_iter().collect(),
            created_at: r.created_at.map(|t| domain::Timestamp {
                seconds: t.seconds,
                nanos: t.nanos,
            }),
            status: domain::Status::from_code(r.status),
            error: r.error,
            uniformity_estimator: r.uniformity_estimator,
            uniformity_stderr: r.uniformity_stderr,
            histograms: r
                .histograms
                .into_iter()
                .map(|h| domain::Histogram {
                    name: h.name,
                    lo: h.lo,
                    hi: h.hi,
                    counts: h.counts,
                })
                .collect(),
            preprocessing: r.preprocessing.map(input),
            execution_provider: r.execution_provider,
            test_split: r.test_split,
            train_split: r.train_split,
            warnings: r.warnings,
            per_class: r.per_class.map(|p| domain::PerClass {
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

/// The settings of a job an earlier release stored (an encoded protobuf
/// `MetricSpec`).
pub fn legacy_spec(bytes: &[u8]) -> Result<domain::MetricSpec> {
    proto::MetricSpec::decode(bytes)
        .map(Into::into)
        .map_err(|e| Error::store(format!("a stored job's settings do not decode: {e}")))
}

/// The description of a registration of `kind` an earlier release
/// wrote (a protobuf ModelInfo or DatasetInfo), as this release keeps it.
pub(super) fn registration_info(kind: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let unreadable = |e: prost::DecodeError| {
        Error::store(format!(
            "a {kind} registration of an earlier release does not decode: {e}"
        ))
    };
    match kind {
        "model" => super::encode_record(&model_info(
            proto::ModelInfo::decode(bytes).map_err(unreadable)?,
        )),
        "dataset" => super::encode_record(&dataset_info(
            proto::DatasetInfo::decode(bytes).map_err(unreadable)?,
        )),
        other => Err(Error::store(format!(
            "a registration of unknown kind {other:?}"
        ))),
    }
}

fn model_info(m: proto::ModelInfo) -> domain::ModelInfo {
    domain::ModelInfo {
        name: m.name,
        sha256: m.sha256,
        training: m.training.map(|t| domain::TrainingInfo {
            loss: t.loss,
            temperature: t.temperature,
            dataset: t.dataset,
            epochs: t.epochs,
            seed: t.seed,
            run: t.run,
            step: t.step,
            loss_name: t.loss_name,
        }),
        input: m.input.map(input),
        outputs: m
            .outputs
            .into_iter()
            .map(|o| domain::OutputInfo {
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

fn dataset_info(d: proto::DatasetInfo) -> domain::DatasetInfo {
    domain::DatasetInfo {
        name: d.name,
        id: d.id,
        format: d.format,
        splits: d
            .splits
            .into_iter()
            .map(|s| domain::SplitInfo {
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

fn input(i: proto::InputInfo) -> domain::InputInfo {
    let dtype = match proto::DataType::try_from(i.dtype) {
        Ok(proto::DataType::Float32) => "float32",
        Ok(proto::DataType::Uint8) => "uint8",
        Ok(proto::DataType::Int64) => "int64",
        _ => "",
    };
    domain::InputInfo {
        name: i.name,
        dtype: dtype.to_string(),
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

/// Also how the edge reads a request's settings: the one conversion of the
/// wire's `MetricSpec` into the domain's.
impl From<proto::MetricSpec> for domain::MetricSpec {
    fn from(s: proto::MetricSpec) -> domain::MetricSpec {
        domain::MetricSpec {
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
            augmentation: s.augmentation.map(|a| domain::Augmentation {
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

#[cfg(test)]
mod tests {
    use prost::Message;
    use sqlx::Row;

    use super::super::ReportStore;
    use crate::domain;
    use crate::proto;

    /// A report with every kind of field set, as an earlier release made it.
    fn earlier_report(id: &str) -> proto::EvaluationReport {
        proto::EvaluationReport {
            id: id.into(),
            model: "infonce-t0.2".into(),
            model_sha256: "ab".repeat(32),
            dataset: "digits".into(),
            dataset_id: "cd".repeat(32),
            temperature: 0.2,
            loss: "infonce".into(),
            num_test: 360,
            num_train: 1437,
            embedding_dim: 32,
            uniformity: Some(3.25),
            uniformity_loss: Some(-3.25),
            alignment: Some(0.5),
            tolerance: Some(0.4),
            positive_similarity: Some(0.75),
            nearest_negative_similarity: vec![0.9, 0.8],
            relative_penalty: vec![0.6, 0.4],
            penalty_entropy: Some(0.67),
            effective_negatives: Some(1.95),
            effective_rank: Some(12.5),
            knn: Some(proto::KnnResult {
                top1: 0.95,
                top5: 0.99,
                k: 200,
                temperature: 0.07,
                metric: "cosine".into(),
            }),
            linear: Some(proto::LinearResult {
                top1: 0.96,
                converged: true,
                train_rows: 1437,
                ..Default::default()
            }),
            spec: Some(proto::MetricSpec {
                knn_k: Some(200),
                augmentation: Some(proto::Augmentation {
                    recipe: "simclr".into(),
                    flip: Some(0.5),
                    ..Default::default()
                }),
                skip_linear: false,
                ..Default::default()
            }),
            timings: [("total".to_string(), 1.5)].into_iter().collect(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_764_000_000,
                nanos: 250_000_000,
            }),
            status: proto::EvaluationStatus::Completed as i32,
            uniformity_estimator: "exact".into(),
            histograms: vec![proto::Histogram {
                name: "positive".into(),
                lo: -1.0,
                hi: 1.0,
                counts: vec![0, 3, 357],
            }],
            preprocessing: Some(proto::InputInfo {
                name: "input".into(),
                dtype: proto::DataType::Float32 as i32,
                shape: vec![-1, 1, 8, 8],
                layout: "NCHW".into(),
                scale: 1.0 / 16.0,
                mean: vec![0.5],
                std: vec![0.25],
                resize: "none".into(),
                ..Default::default()
            }),
            execution_provider: "cpu".into(),
            test_split: "test".into(),
            train_split: "train".into(),
            warnings: vec!["normalisation not given".into()],
            per_class: Some(proto::PerClass {
                labels: vec![0, 1],
                counts: vec![1, 359],
                // A class of one row has no tolerance.
                tolerance: vec![f64::NAN, 0.5],
                similarity: vec![1.0, 0.1, 0.1, 1.0],
                names: vec!["zero".into(), "one".into()],
                ..Default::default()
            }),
            tags: [("seed".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn rows_an_earlier_release_wrote_read_the_same_and_are_rewritten_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = ReportStore::default_url(dir.path());
        // The database as the earlier release left it: its migrations, and
        // its row (the protobuf encoding in `report`, no `format` column).
        {
            let pool = sqlx::sqlite::SqlitePool::connect(&url).await.unwrap();
            // Only the migrations the earlier release had.
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
            let mut earlier = sqlx::migrate::Migrator::new(dir).await.unwrap();
            earlier.migrations = earlier
                .migrations
                .iter()
                .filter(|m| m.version < 20261207000000)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            earlier.run(&pool).await.unwrap();
            for (i, id) in ["a1", "a2"].into_iter().enumerate() {
                let report = earlier_report(id);
                sqlx::query(
                    "INSERT INTO evaluations (id, model, dataset, status, created_at, report) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(&report.model)
                .bind(&report.dataset)
                .bind(i64::from(report.status))
                .bind(1_764_000_000_250_000 + i as i64)
                .bind(report.encode_to_vec())
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        // Opening applies this release's migration, then rewrites the rows.
        let store = ReportStore::open(&url).await.unwrap();
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM evaluations WHERE format = 0")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(left, 0, "every earlier row is rewritten on opening");

        let read = store.get("a1").await.unwrap();
        let want: domain::Report = earlier_report("a1").into();
        // NaN is not equal to itself: compare it apart.
        let per_class = read.per_class.clone().unwrap();
        assert!(per_class.tolerance[0].is_nan());
        assert_eq!(per_class.tolerance[1], 0.5);
        let strip = |mut r: domain::Report| {
            r.per_class.as_mut().unwrap().tolerance.clear();
            r
        };
        assert_eq!(strip(read.clone()), strip(want));
        assert_eq!(read.status, domain::Status::Completed);
        assert_eq!(read.knn.as_ref().unwrap().top1, 0.95);
        assert_eq!(read.spec.as_ref().unwrap().knn_k, Some(200));
        assert_eq!(read.preprocessing.as_ref().unwrap().dtype, "float32");
        assert_eq!(read.created_at.unwrap().nanos, 250_000_000);
        assert_eq!(read.tags["seed"], "1");
        let (page, _) = store.list("", "digits", 10, "").await.unwrap();
        assert_eq!(page.len(), 2);

        // Once: a second opening finds nothing to rewrite, and the rows read
        // the same.
        assert_eq!(super::super::records::migrate(&store).await.unwrap(), 0);
        drop(store);
        let store = ReportStore::open(&url).await.unwrap();
        assert_eq!(strip(store.get("a1").await.unwrap()), strip(read));
    }

    #[tokio::test]
    async fn a_row_of_an_earlier_release_written_after_the_migration_still_reads() {
        // A replica of the earlier release writing during a roll: its row
        // has no format set (0) and its protobuf bytes.
        let dir = tempfile::tempdir().unwrap();
        let url = ReportStore::default_url(dir.path());
        let store = ReportStore::open(&url).await.unwrap();
        let report = earlier_report("late");
        sqlx::query(
            "INSERT INTO evaluations (id, model, dataset, status, created_at, report) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind("late")
        .bind(&report.model)
        .bind(&report.dataset)
        .bind(i64::from(report.status))
        .bind(1_i64)
        .bind(report.encode_to_vec())
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(store.get("late").await.unwrap().model, "infonce-t0.2");
        // A row no release wrote names the format it is in.
        sqlx::query("UPDATE evaluations SET format = 9 WHERE id = 'late'")
            .execute(store.pool())
            .await
            .unwrap();
        let err = store.get("late").await.unwrap_err().to_string();
        assert!(err.contains("row format 9"), "{err}");
    }

    #[tokio::test]
    async fn a_registration_an_earlier_release_recorded_reads_as_this_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        let earlier = proto::ModelInfo {
            name: "m".into(),
            sha256: "ab".repeat(32),
            training: Some(proto::TrainingInfo {
                run: "r".into(),
                step: 40,
                ..Default::default()
            }),
            tags: [("seed".to_string(), "2".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        sqlx::query(
            "INSERT INTO registrations (kind, name, content_id, folder, info, updated_at, removed) \
             VALUES ('model', 'm', 'c', 'f', $1, 1, 0)",
        )
        .bind(earlier.encode_to_vec())
        .execute(store.pool())
        .await
        .unwrap();
        // Read while still of format 0 (as a row an old replica wrote
        // after the migration), then rewritten once when the database opens.
        async fn read_back(store: &ReportStore) -> i64 {
            let read = store.registration("model", "m").await.unwrap().unwrap();
            let info: domain::ModelInfo = super::super::decode_record(&read.info).unwrap();
            assert_eq!(info.name, "m");
            assert_eq!(info.training.unwrap().step, 40);
            assert_eq!(info.tags["seed"], "2");
            sqlx::query_scalar("SELECT format FROM registrations WHERE name = 'm'")
                .fetch_one(store.pool())
                .await
                .unwrap()
        }
        assert_eq!(read_back(&store).await, 0);
        drop(store);
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        assert_eq!(read_back(&store).await, super::super::records::FORMAT);
        // Recorded by this release: its own record.
        let now = super::super::encode_record(&domain::DatasetInfo {
            name: "d".into(),
            num_classes: 10,
            ..Default::default()
        })
        .unwrap();
        store
            .record_registration("dataset", "d", "c", "f", &now, false)
            .await
            .unwrap();
        let read = store.registrations("dataset").await.unwrap();
        let info: domain::DatasetInfo = super::super::decode_record(&read[0].info).unwrap();
        assert_eq!((info.name.as_str(), info.num_classes), ("d", 10));
    }
}
