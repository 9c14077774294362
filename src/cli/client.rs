//! The client subcommands: `models`, `datasets` and `embed` talk to a running
//! server (`--server`), print readable tables (or JSON with `--json`) and
//! show a progress bar on long work.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::data::npy::NpyArray;
use crate::proto;
use crate::proto::dataset_service_client::DatasetServiceClient;
use crate::proto::embedding_service_client::EmbeddingServiceClient;
use crate::proto::model_service_client::ModelServiceClient;

/// How to reach the server.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server address.
    #[arg(
        long,
        env = "EMBEDEVAL_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// File with the bearer token, when the server requires one.
    #[arg(long, env = "EMBEDEVAL_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) that signed the server's TLS certificate (https:// servers).
    #[arg(long, env = "EMBEDEVAL_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// `embedeval models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models (and the ones skipped at load, with why).
    Ls,
    /// Show one model.
    Show {
        /// Model name.
        name: String,
    },
    /// Upload a model: its ONNX file and its card.
    Add {
        /// Registry name.
        name: String,
        /// The ONNX file.
        #[arg(long)]
        onnx: PathBuf,
        /// The model card (model.toml).
        #[arg(long)]
        card: PathBuf,
    },
    /// Remove a model.
    Rm {
        /// Model name.
        name: String,
    },
}

/// `embedeval datasets …`
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// List the datasets.
    Ls,
    /// Show one dataset.
    Show {
        /// Dataset name.
        name: String,
    },
    /// Upload a dataset folder (with its dataset.toml, or give --format).
    Add {
        /// Registry name.
        name: String,
        /// The folder to upload.
        dir: PathBuf,
        /// embedeval-npy, cifar10, cifar100 or image-folder (when the folder has no dataset.toml).
        #[arg(long, default_value = "")]
        format: String,
    },
    /// Remove a dataset.
    Rm {
        /// Dataset name.
        name: String,
    },
}

/// `embedeval embed …`
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model name.
    pub model: String,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Output of the model (default: its embedding output).
    #[arg(long, default_value = "")]
    pub output: String,
    /// L2-normalise the rows.
    #[arg(long)]
    pub normalize: bool,
    /// Where to write the float32 [n, d] array (.npy); labels go to <stem>.labels.npy.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

const CHUNK: usize = 1 << 20;

#[derive(Clone)]
struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Token>;

impl Connection {
    async fn channel(&self) -> anyhow::Result<Authed> {
        let channel = super::endpoint(&self.server, self.ca_cert.as_deref())?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.server))?;
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("read {}", path.display()))?;
                Some(format!("Bearer {}", text.trim()).parse()?)
            }
            None => None,
        };
        Ok(InterceptedService::new(channel, Token(token)))
    }
}

fn model_json(m: &proto::ModelInfo) -> serde_json::Value {
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

fn dataset_json(d: &proto::DatasetInfo) -> serde_json::Value {
    json!({
        "name": d.name, "id": d.id, "format": d.format, "num_classes": d.num_classes,
        "image_shape": d.image_shape, "source": d.source, "license": d.license,
        "splits": d.splits.iter().map(|s| json!({"name": s.name, "size": s.size})).collect::<Vec<_>>(),
    })
}

/// Prints rows as left-aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", crate::report::format_table(header, rows));
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs `embedeval models …`.
pub async fn models(conn: &Connection, cmd: ModelsCommand) -> anyhow::Result<()> {
    let mut client = ModelServiceClient::new(conn.channel().await?);
    match cmd {
        ModelsCommand::Ls => {
            let list = client
                .list_models(proto::ListModelsRequest {})
                .await?
                .into_inner();
            if conn.json {
                return print_json(&json!({
                    "models": list.models.iter().map(model_json).collect::<Vec<_>>(),
                    "skipped": list.skipped.iter().map(|s| json!({"name": s.name, "reason": s.reason})).collect::<Vec<_>>(),
                }));
            }
            let rows: Vec<Vec<String>> = list
                .models
                .iter()
                .map(|m| {
                    let t = m.training.clone().unwrap_or_default();
                    let dim = m
                        .outputs
                        .iter()
                        .find(|o| o.name == m.embedding_output)
                        .map_or(0, |o| o.dim);
                    vec![
                        m.name.clone(),
                        t.loss,
                        format!("{}", t.temperature),
                        t.dataset,
                        dim.to_string(),
                        m.execution_provider.clone(),
                        m.sha256[..12.min(m.sha256.len())].to_string(),
                    ]
                })
                .collect();
            table(
                &["NAME", "LOSS", "TAU", "DATASET", "DIM", "DEVICE", "SHA256"],
                &rows,
            );
            for s in &list.skipped {
                eprintln!("skipped {}: {}", s.name, s.reason);
            }
        }
        ModelsCommand::Show { name } => {
            let m = client
                .get_model(proto::GetModelRequest { name })
                .await?
                .into_inner();
            print_json(&model_json(&m))?;
        }
        ModelsCommand::Add { name, onnx, card } => {
            let card_toml = std::fs::read_to_string(&card)
                .with_context(|| format!("read {}", card.display()))?;
            let bytes = std::fs::read(&onnx).with_context(|| format!("read {}", onnx.display()))?;
            let progress = bar(bytes.len() as u64, "upload");
            let mut messages = vec![proto::RegisterModelRequest {
                payload: Some(proto::register_model_request::Payload::Card(
                    proto::ModelUpload {
                        name,
                        card_toml,
                        size_bytes: bytes.len() as u64,
                        sha256: crate::registry::sha256_hex(&bytes),
                    },
                )),
            }];
            messages.extend(bytes.chunks(CHUNK).map(|c| proto::RegisterModelRequest {
                payload: Some(proto::register_model_request::Payload::Chunk(c.to_vec())),
            }));
            let p = progress.clone();
            let stream = tokio_stream::StreamExt::map(tokio_stream::iter(messages), move |m| {
                if let Some(proto::register_model_request::Payload::Chunk(c)) = &m.payload {
                    p.inc(c.len() as u64);
                }
                m
            });
            let info = client.register_model(stream).await?.into_inner();
            progress.finish_and_clear();
            print_json(&model_json(&info))?;
        }
        ModelsCommand::Rm { name } => {
            client
                .delete_model(proto::DeleteModelRequest { name: name.clone() })
                .await?;
            println!("removed model {name}");
        }
    }
    Ok(())
}

/// Every file under `dir`, relative paths with '/'.
fn files_under(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&path).with_context(|| format!("read {}", path.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.path().is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.push((rel, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs `embedeval datasets …`.
pub async fn datasets(conn: &Connection, cmd: DatasetsCommand) -> anyhow::Result<()> {
    let mut client = DatasetServiceClient::new(conn.channel().await?);
    match cmd {
        DatasetsCommand::Ls => {
            let list = client
                .list_datasets(proto::ListDatasetsRequest {})
                .await?
                .into_inner();
            if conn.json {
                return print_json(&json!(list
                    .datasets
                    .iter()
                    .map(dataset_json)
                    .collect::<Vec<_>>()));
            }
            let rows: Vec<Vec<String>> = list
                .datasets
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.format.clone(),
                        d.num_classes.to_string(),
                        format!("{:?}", d.image_shape),
                        d.splits
                            .iter()
                            .map(|s| format!("{}={}", s.name, s.size))
                            .collect::<Vec<_>>()
                            .join(" "),
                        d.id[..12.min(d.id.len())].to_string(),
                    ]
                })
                .collect();
            table(
                &["NAME", "FORMAT", "CLASSES", "IMAGE", "SPLITS", "ID"],
                &rows,
            );
        }
        DatasetsCommand::Show { name } => {
            let d = client
                .get_dataset(proto::GetDatasetRequest { name })
                .await?
                .into_inner();
            print_json(&dataset_json(&d))?;
        }
        DatasetsCommand::Add { name, dir, format } => {
            let files = files_under(&dir)?;
            let total: u64 = files
                .iter()
                .map(|(_, p)| p.metadata().map_or(0, |m| m.len()))
                .sum();
            let progress = bar(total, "upload");
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let p = progress.clone();
            let sender = tokio::spawn(async move {
                let header = proto::RegisterDatasetRequest {
                    payload: Some(proto::register_dataset_request::Payload::Header(
                        proto::DatasetUpload { name, format },
                    )),
                };
                if tx.send(header).await.is_err() {
                    return Ok(());
                }
                for (rel, path) in files {
                    let bytes = tokio::fs::read(&path).await?;
                    for chunk in bytes.chunks(CHUNK) {
                        let msg = proto::RegisterDatasetRequest {
                            payload: Some(proto::register_dataset_request::Payload::File(
                                proto::DatasetFileChunk {
                                    path: rel.clone(),
                                    data: chunk.to_vec(),
                                },
                            )),
                        };
                        if tx.send(msg).await.is_err() {
                            return Ok(());
                        }
                        p.inc(chunk.len() as u64);
                    }
                }
                Ok::<_, std::io::Error>(())
            });
            let info = client
                .register_dataset(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?
                .into_inner();
            sender.await??;
            progress.finish_and_clear();
            print_json(&dataset_json(&info))?;
        }
        DatasetsCommand::Rm { name } => {
            client
                .delete_dataset(proto::DeleteDatasetRequest { name: name.clone() })
                .await?;
            println!("removed dataset {name}");
        }
    }
    Ok(())
}

/// Runs `embedeval embed …`: streams the rows into a .npy file.
pub async fn embed(conn: &Connection, args: EmbedArgs) -> anyhow::Result<()> {
    let channel = conn.channel().await?;
    let info = DatasetServiceClient::new(channel.clone())
        .get_dataset(proto::GetDatasetRequest {
            name: args.dataset.clone(),
        })
        .await?
        .into_inner();
    let total = info
        .splits
        .iter()
        .find(|s| s.name == args.split)
        .map_or(0, |s| s.size);
    let progress = bar(total, &format!("embed {} {}", args.model, args.split));
    let mut stream = EmbeddingServiceClient::new(channel)
        .embed(proto::EmbedRequest {
            model: args.model.clone(),
            dataset: args.dataset.clone(),
            split: args.split.clone(),
            output: args.output.clone(),
            normalize: args.normalize,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut values: Vec<u8> = Vec::new();
    let mut labels: Vec<i64> = Vec::new();
    let mut dim = 0usize;
    let mut rows = 0usize;
    while let Some(msg) = stream.message().await? {
        let Some(t) = msg.embeddings else {
            bail!("a response without embeddings")
        };
        if msg.offset as usize != rows {
            bail!(
                "rows arrived out of order: offset {} after {rows} rows",
                msg.offset
            );
        }
        dim = t.shape.get(1).copied().unwrap_or(0) as usize;
        rows += t.shape.first().copied().unwrap_or(0) as usize;
        values.extend_from_slice(&t.data);
        labels.extend(msg.labels);
        progress.set_position(rows as u64);
    }
    progress.finish_and_clear();
    let array = NpyArray {
        dtype: crate::data::npy::NpyType::F32,
        shape: vec![rows, dim],
        data: values,
    };
    array.write(&args.out)?;
    let labels_path = args.out.with_extension("labels.npy");
    NpyArray {
        dtype: crate::data::npy::NpyType::I64,
        shape: vec![labels.len()],
        data: labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
    .write(&labels_path)?;
    if conn.json {
        print_json(
            &json!({"rows": rows, "dim": dim, "embeddings": args.out, "labels": labels_path}),
        )?;
    } else {
        println!(
            "wrote {rows} x {dim} float32 to {} and the labels to {}",
            args.out.display(),
            labels_path.display()
        );
    }
    Ok(())
}

/// `embedeval eval …`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model name.
    pub model: String,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Print the evaluation id once it is admitted and leave it running;
    /// follow it with `evaluations watch ID`.
    #[arg(long)]
    pub detach: bool,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// `embedeval compare …`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Models to compare (none with --all).
    pub models: Vec<String>,
    /// Compare every model the server has.
    #[arg(long)]
    pub all: bool,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Write the uniformity–tolerance plot (SVG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the accuracy-against-τ plot (SVG) here.
    #[arg(long)]
    pub accuracy_plot: Option<PathBuf>,
    /// Print the evaluation ids once admitted and leave them running.
    #[arg(long)]
    pub detach: bool,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// MetricSpec from the command line; absent flags take the server's defaults.
#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// t of the uniformity loss [2].
    #[arg(long)]
    pub uniformity_t: Option<f64>,
    /// k of the neighbour and penalty profiles [10].
    #[arg(long)]
    pub neighbors_k: Option<u32>,
    /// Seed of the positive views [0].
    #[arg(long)]
    pub augmentation_seed: Option<u64>,
    /// τ of the penalty profile [the model's training τ].
    #[arg(long)]
    pub penalty_temperature: Option<f64>,
    /// k of the kNN vote [200].
    #[arg(long)]
    pub knn_k: Option<u32>,
    /// T of the kNN vote [0.1].
    #[arg(long)]
    pub knn_temperature: Option<f64>,
    /// C of the linear probe [1].
    #[arg(long)]
    pub linear_c: Option<f64>,
    /// Skip the linear probe.
    #[arg(long)]
    pub skip_linear: bool,
    /// Skip the kNN vote.
    #[arg(long)]
    pub skip_knn: bool,
}

impl SpecArgs {
    fn spec(&self) -> proto::MetricSpec {
        proto::MetricSpec {
            uniformity_t: self.uniformity_t,
            neighbors_k: self.neighbors_k,
            augmentation_seed: self.augmentation_seed,
            penalty_temperature: self.penalty_temperature,
            knn_k: self.knn_k,
            knn_temperature: self.knn_temperature,
            linear_c: self.linear_c,
            skip_linear: self.skip_linear,
            skip_knn: self.skip_knn,
            ..Default::default()
        }
    }
}

/// `embedeval evaluations …`
#[derive(Debug, Subcommand)]
pub enum EvaluationsCommand {
    /// List the evaluations, newest first.
    Ls {
        /// Only this model.
        #[arg(long, default_value = "")]
        model: String,
        /// Only this dataset.
        #[arg(long, default_value = "")]
        dataset: String,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one evaluation's report.
    Show {
        /// Evaluation id.
        id: String,
    },
    /// Cancel a queued or running evaluation.
    Cancel {
        /// Evaluation id.
        id: String,
    },
    /// Follow an evaluation (a detached one, say) to its end.
    Watch {
        /// Evaluation id.
        id: String,
    },
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
struct StageBar {
    bar: ProgressBar,
    stage: String,
}

impl StageBar {
    fn new() -> Self {
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self {
            bar,
            stage: String::new(),
        }
    }

    fn update(&mut self, p: &proto::Progress) {
        let label = if p.model.is_empty() {
            p.stage.clone()
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

/// Runs `embedeval eval …`.
pub async fn eval(conn: &Connection, args: EvalArgs) -> anyhow::Result<()> {
    let mut stream = crate::proto::evaluation_service_client::EvaluationServiceClient::new(
        conn.channel().await?,
    )
    .evaluate(proto::EvaluateRequest {
        model: args.model,
        dataset: args.dataset,
        detach: args.detach,
        spec: Some(args.spec.spec()),
    })
    .await?
    .into_inner();
    follow_evaluation(conn, &mut stream).await
}

/// Prints the ids and status of a detached job.
fn print_accepted(conn: &Connection, a: &proto::Accepted) -> anyhow::Result<()> {
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

/// Shows an Evaluate or WatchEvaluation stream: progress, then the report.
async fn follow_evaluation(
    conn: &Connection,
    stream: &mut tonic::Streaming<proto::EvaluateEvent>,
) -> anyhow::Result<()> {
    let mut bar = StageBar::new();
    while let Some(event) = stream.message().await? {
        match event.event {
            Some(proto::evaluate_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::evaluate_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                return print_accepted(conn, &a);
            }
            Some(proto::evaluate_event::Event::Report(r)) => {
                bar.bar.finish_and_clear();
                if conn.json {
                    return print_json(&report_json(&r));
                }
                print!("{}", crate::report::table(std::slice::from_ref(&r)));
                let status = proto::EvaluationStatus::try_from(r.status)
                    .unwrap_or(proto::EvaluationStatus::Unspecified);
                if status != proto::EvaluationStatus::Completed {
                    bail!("evaluation {} {}: {}", r.id, status.as_str_name(), r.error);
                }
                println!(
                    "evaluation {} ({:.2} s)",
                    r.id,
                    r.timings.get("total").copied().unwrap_or(0.0)
                );
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a report")
}

/// Runs `embedeval compare …`.
pub async fn compare(conn: &Connection, args: CompareArgs) -> anyhow::Result<()> {
    if args.all != args.models.is_empty() {
        bail!("name the models to compare, or pass --all (not both)");
    }
    let mut stream = crate::proto::evaluation_service_client::EvaluationServiceClient::new(
        conn.channel().await?,
    )
    .compare(proto::CompareRequest {
        models: args.models,
        dataset: args.dataset,
        detach: args.detach,
        spec: Some(args.spec.spec()),
    })
    .await?
    .into_inner();
    let mut bar = StageBar::new();
    while let Some(event) = stream.message().await? {
        match event.event {
            Some(proto::compare_event::Event::Progress(p)) => bar.update(&p),
            Some(proto::compare_event::Event::Accepted(a)) => {
                bar.bar.finish_and_clear();
                return print_accepted(conn, &a);
            }
            Some(proto::compare_event::Event::Comparison(c)) => {
                bar.bar.finish_and_clear();
                for (path, svg) in [
                    (&args.plot, &c.plot_svg),
                    (&args.accuracy_plot, &c.accuracy_plot_svg),
                ] {
                    if let Some(path) = path {
                        std::fs::write(path, svg)
                            .with_context(|| format!("write {}", path.display()))?;
                    }
                }
                if conn.json {
                    return print_json(&json!(c.rows.iter().map(report_json).collect::<Vec<_>>()));
                }
                print!("{}", crate::report::table(&c.rows));
                return Ok(());
            }
            None => {}
        }
    }
    bail!("the server ended the stream without a comparison")
}

/// Runs `embedeval evaluations …`.
pub async fn evaluations(conn: &Connection, cmd: EvaluationsCommand) -> anyhow::Result<()> {
    let mut client = crate::proto::evaluation_service_client::EvaluationServiceClient::new(
        conn.channel().await?,
    );
    match cmd {
        EvaluationsCommand::Ls {
            model,
            dataset,
            limit,
        } => {
            let list = client
                .list_evaluations(proto::ListEvaluationsRequest {
                    model,
                    dataset,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if conn.json {
                return print_json(&json!(list
                    .evaluations
                    .iter()
                    .map(report_json)
                    .collect::<Vec<_>>()));
            }
            let rows: Vec<Vec<String>> = list
                .evaluations
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.model.clone(),
                        r.dataset.clone(),
                        proto::EvaluationStatus::try_from(r.status)
                            .map(|s| s.as_str_name().to_string())
                            .unwrap_or_default(),
                        r.uniformity.map_or("-".into(), |u| format!("{u:.4}")),
                        r.tolerance.map_or("-".into(), |u| format!("{u:.4}")),
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "MODEL",
                    "DATASET",
                    "STATUS",
                    "UNIFORMITY",
                    "TOLERANCE",
                ],
                &rows,
            );
        }
        EvaluationsCommand::Show { id } => {
            let r = client
                .get_evaluation(proto::GetEvaluationRequest { id })
                .await?
                .into_inner();
            print_json(&report_json(&r))?;
        }
        EvaluationsCommand::Watch { id } => {
            let mut stream = client
                .watch_evaluation(proto::WatchEvaluationRequest { id })
                .await?
                .into_inner();
            follow_evaluation(conn, &mut stream).await?;
        }
        EvaluationsCommand::Cancel { id } => {
            let r = client
                .cancel_evaluation(proto::CancelEvaluationRequest { id: id.clone() })
                .await?
                .into_inner();
            println!(
                "{id}: {}",
                proto::EvaluationStatus::try_from(r.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("?")
            );
        }
    }
    Ok(())
}
