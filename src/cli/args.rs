//! The client subcommands' arguments: how to reach the server and what each
//! of `models`, `datasets`, `embed`, `eval`, `compare`, `evaluations`,
//! `comparisons` and `plot` takes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::Format;
use crate::proto;

/// How to reach the server, and how to print what it answers.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server address (optional: http://127.0.0.1:50051 unless
    /// EMBEDEVAL_SERVER says otherwise; host:port is plain http).
    #[arg(
        long,
        env = "EMBEDEVAL_SERVER",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL",
        global = true
    )]
    pub server: String,
    /// File with the bearer token, when the server requires one.
    #[arg(long, env = "EMBEDEVAL_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// How listings and results are printed.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Print JSON (the same as --format json).
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) that signed the server's TLS certificate (https:// servers).
    #[arg(long, env = "EMBEDEVAL_CA_CERT", value_name = "PEM", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// `embedeval models …`
// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models (and the ones skipped at load, with why).
    Ls {
        /// Only models with this tag, key=value (repeatable: all of them).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
    },
    /// Show one model.
    Show {
        /// Model name.
        name: String,
    },
    /// Upload a model: its ONNX file, and its card or the card's flags
    /// (what neither says is read off the ONNX graph).
    Add {
        /// Registry name.
        name: String,
        /// The ONNX file.
        #[arg(long)]
        onnx: PathBuf,
        /// The card's facts.
        #[command(flatten)]
        card: CardArgs,
        /// Swap an uploaded model of this name for the new one in one step
        /// (its earlier reports keep the old sha256).
        #[arg(long)]
        replace: bool,
    },
    /// Remove a model.
    Rm {
        /// Model name.
        name: String,
    },
    /// Give an uploaded model another name (its earlier reports keep the old one).
    Rename {
        /// Model name.
        name: String,
        /// Its new name.
        new_name: String,
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
    /// Upload a dataset folder: with its dataset.toml, or described by the
    /// flags (the format is told from the files when not given).
    Add {
        /// Registry name.
        name: String,
        /// The folder to upload.
        dir: PathBuf,
        /// Replace an uploaded dataset of the same name (reports keep the
        /// content id they were made on).
        #[arg(long)]
        replace: bool,
        /// What a folder without dataset.toml holds.
        #[command(flatten)]
        layout: DatasetLayoutArgs,
    },
    /// Remove a dataset.
    Rm {
        /// Dataset name.
        name: String,
    },
}

/// A model card from a file and flags: the flags set their keys over the
/// file's; with no file, `--loss` (and `--tau` for losses with a
/// temperature) is all a card needs.
#[derive(Debug, Clone, Default, Args)]
pub struct CardArgs {
    /// A model card (model.toml).
    #[arg(long)]
    pub card: Option<PathBuf>,
    /// Training loss: infonce, hard_infonce, nt_xent, simple, hard_simple,
    /// or other (with --loss-name).
    #[arg(long)]
    pub loss: Option<String>,
    /// The name of a loss of your own (with --loss other).
    #[arg(long)]
    pub loss_name: Option<String>,
    /// Training temperature τ.
    #[arg(long)]
    pub tau: Option<f64>,
    /// Preprocessing preset: imagenet, cifar10, cifar100 or none (pixels / 255).
    #[arg(long)]
    pub preset: Option<String>,
    /// Images of another size: bilinear (default) or none (refused).
    #[arg(long)]
    pub resize: Option<String>,
    /// The output holding the embedding, when the graph's names do not tell.
    #[arg(long)]
    pub embedding_output: Option<String>,
    /// The output holding backbone features, when the graph's names do not tell.
    #[arg(long)]
    pub features_output: Option<String>,
    /// The training run the model is a checkpoint of.
    #[arg(long)]
    pub run: Option<String>,
    /// Its step in the run.
    #[arg(long)]
    pub step: Option<u64>,
    /// A tag, key=value (repeatable): sets that `[training]` key where the
    /// card has it, a `[tags]` key otherwise (e.g. --tag seed=1 --tag
    /// arch=resnet18).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
}

/// How a dataset folder without dataset.toml is read.
#[derive(Debug, Clone, Default, Args)]
pub struct DatasetLayoutArgs {
    /// embedeval-npy, cifar10, cifar100 or image-folder, when the files do
    /// not tell (CIFAR batches and split/class/image folders are recognised).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub dataset_format: String,
    /// Channels to decode images to: 1 (greyscale) or 3 [3].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub channels: u32,
    /// Bring images of any size to this square: shorter side resized, centre
    /// cropped [images used as they are; they must then share one size].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub image_size: u32,
    /// Fraction of the resized shorter side the crop keeps [0.875: resize 256, crop 224].
    #[arg(long, default_value_t = 0.0, hide_default_value = true)]
    pub crop_fraction: f64,
    /// The split evaluated by default [test, else val].
    #[arg(long, default_value = "", hide_default_value = true)]
    pub test_split: String,
    /// The split the kNN bank and the probe are fitted on by default [train].
    #[arg(long, default_value = "", hide_default_value = true)]
    pub train_split: String,
}

/// `embedeval embed …`
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model name, or an ONNX file (registered by its content and card).
    pub model: String,
    /// The card's facts when `model` is a file.
    #[command(flatten)]
    pub card: CardArgs,
    /// The name to register a file under [onnx-<first 12 hex of its sha256>].
    #[arg(long)]
    pub name: Option<String>,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Split [the dataset's test split: its default, else test, else val].
    #[arg(long, default_value = "")]
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

/// `embedeval eval …`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model name, or an ONNX file (registered by its content and card:
    /// reused when both were seen, registered anew when either differs).
    pub model: String,
    /// The card's facts when `model` is a file.
    #[command(flatten)]
    pub card: CardArgs,
    /// The name to register a file under [onnx-<first 12 hex of its sha256>].
    #[arg(long)]
    pub name: Option<String>,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Print the evaluation id once it is admitted and leave it running;
    /// follow it with `evaluations watch ID`.
    #[arg(long)]
    pub detach: bool,
    /// The splits to use.
    #[command(flatten)]
    pub splits: SplitArgs,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Also print the per-class table (tolerance, kNN and linear top-1,
    /// where each class's nearest negatives come from).
    #[arg(long)]
    pub per_class: bool,
}

/// `embedeval compare …`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Models to compare (none with --all); ONNX files are registered by
    /// content (reused if seen) with the card's flags.
    pub models: Vec<String>,
    /// The card's facts for the models given as files.
    #[command(flatten)]
    pub card: CardArgs,
    /// Compare every model the server has (but the checkpoints of training
    /// runs: `runs show` follows those).
    #[arg(long)]
    pub all: bool,
    /// Dataset name.
    #[arg(long)]
    pub dataset: String,
    /// Write the uniformity–tolerance figure here (Wang & Liu, Figs. 4–7).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Also write figure KIND here, KIND=PATH (repeatable; the kinds of
    /// `embedeval plot --kind`), e.g. --figure accuracy=acc.png
    /// --figure pareto=pareto.svg.
    #[arg(long = "figure", value_name = "KIND=PATH", value_parser = figure_to_file)]
    pub figures: Vec<(FigureKind, PathBuf)>,
    /// How the figures are drawn.
    #[command(flatten)]
    pub figure: FigureArgs,
    /// Print the evaluation ids once admitted and leave them running.
    #[arg(long)]
    pub detach: bool,
    /// The splits to use.
    #[command(flatten)]
    pub splits: SplitArgs,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Also print, per loss, the Pareto front of (uniformity, tolerance),
    /// its knee, the best accuracies with 95% intervals and the τ to keep,
    /// with its reason (`--format json` always carries them, as
    /// `recommendations`).
    #[arg(long)]
    pub recommend: bool,
    /// Only the models with this tag, key=value (repeatable: all of them),
    /// e.g. --where arch=resnet18.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub where_tags: Vec<String>,
    /// Aggregate over this tag: one row per set of models sharing every
    /// other tag, each metric as mean ± the 95% interval of the mean
    /// (Student's t), e.g. --by seed.
    #[arg(long, value_name = "TAG")]
    pub by: Option<String>,
}

/// Which figure `embedeval plot` draws: the service's kinds, which the
/// proto's `FigureKind` lists.
pub use crate::report::figures::Kind as FigureKind;

/// Parses a figure kind by its name or short name, listing the kinds in
/// `--help`.
fn figure_kind() -> impl clap::builder::TypedValueParser<Value = FigureKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(FigureKind::ALL.map(|k| {
        let value = PossibleValue::new(k.name());
        if k.short_name() == k.name() {
            value
        } else {
            value.alias(k.short_name())
        }
    }))
    .map(|name| name.parse::<FigureKind>().expect("a listed kind"))
}

/// Parses `KIND=PATH` of `compare --figure`.
fn figure_to_file(value: &str) -> Result<(FigureKind, PathBuf), String> {
    let (kind, path) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not KIND=PATH, e.g. accuracy=acc.png"))?;
    let kind = kind.parse::<FigureKind>().map_err(|e| e.to_string())?;
    if path.is_empty() {
        return Err(format!("{value:?} names no file"));
    }
    Ok((kind, PathBuf::from(path)))
}

/// A figure's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FigureFormat {
    /// Scalable vector graphics.
    Svg,
    /// A bitmap.
    Png,
}

/// A figure's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FigureSize {
    /// 1280 × 860 px.
    #[default]
    Screen,
    /// A paper column: 3.5 in at 300 dpi.
    Column,
}

/// How figures are drawn.
#[derive(Debug, Clone, Args)]
pub struct FigureArgs {
    /// svg or png [default: the output file's extension, else svg].
    #[arg(long, value_enum)]
    pub plot_format: Option<FigureFormat>,
    /// Drawn for a screen or for a paper column.
    #[arg(long, value_enum, default_value_t = FigureSize::Screen)]
    pub plot_size: FigureSize,
    /// The accuracy figure's x axis: temperature (log scale) or a tag with
    /// numeric values, e.g. seed, epochs, step [temperature].
    #[arg(
        long,
        value_name = "TAG",
        default_value = "",
        hide_default_value = true
    )]
    pub x: String,
    /// The accuracy figure's colours: loss or a tag [loss].
    #[arg(
        long,
        value_name = "TAG",
        default_value = "",
        hide_default_value = true
    )]
    pub group_by: String,
    /// The accuracy figure's metric: top1 (the kNN's and the probe's),
    /// map_at_r, r_precision or precision_at_1 [top1].
    #[arg(
        long,
        value_name = "METRIC",
        default_value = "",
        hide_default_value = true
    )]
    pub metric: String,
    /// The uniformity–tolerance figure's point labels: temperature, name
    /// (the model) or a tag [temperature].
    #[arg(
        long,
        value_name = "TAG",
        default_value = "",
        hide_default_value = true
    )]
    pub label: String,
}

impl FigureArgs {
    /// The API's format for a figure written to `path`.
    pub fn format_for(&self, path: &std::path::Path) -> proto::FigureFormat {
        let by_name = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match (self.plot_format, by_name.as_deref()) {
            (Some(FigureFormat::Png), _) | (None, Some("png")) => proto::FigureFormat::Png,
            _ => proto::FigureFormat::Svg,
        }
    }

    /// The API's size.
    pub fn size(&self) -> proto::FigureSize {
        match self.plot_size {
            FigureSize::Screen => proto::FigureSize::Screen,
            FigureSize::Column => proto::FigureSize::Column,
        }
    }
}

/// `embedeval plot …`
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A comparison id (all its models) or an evaluation id (one model).
    pub id: String,
    /// Which figure (uniformity_tolerance is also `ut`).
    #[arg(long, value_parser = figure_kind())]
    pub kind: FigureKind,
    /// Where to write it.
    #[arg(short, long)]
    pub output: PathBuf,
    /// How it is drawn.
    #[command(flatten)]
    pub figure: FigureArgs,
}

/// `embedeval runs …`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List the training runs (models whose cards name a run).
    Ls,
    /// A run's checkpoints in step order with their reports on a dataset,
    /// and the warnings its path raises.
    Show {
        /// Run name.
        name: String,
        /// The dataset whose reports to show.
        #[arg(long)]
        dataset: String,
        /// Draw the path in the uniformity–tolerance plane here.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Draw the metrics against step here.
        #[arg(long)]
        metrics_plot: Option<PathBuf>,
        /// How the figure is drawn.
        #[command(flatten)]
        figure: FigureArgs,
    },
}

/// `embedeval watch …`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The folder the trainer exports ONNX checkpoints to.
    pub dir: PathBuf,
    /// The dataset each checkpoint is evaluated on.
    #[arg(long)]
    pub dataset: String,
    /// The checkpoints' card facts: `--run` (required), loss, τ,
    /// preprocessing; a side-car `<file stem>.toml` next to a checkpoint
    /// is the card under them.
    #[command(flatten)]
    pub card: CardArgs,
    /// Seconds between looks at the folder; a file counts as complete once
    /// its size and time are the same at two looks.
    #[arg(long, default_value_t = 2.0)]
    pub poll: f64,
    /// Evaluate what is complete now, then stop.
    #[arg(long)]
    pub once: bool,
    /// A regular expression whose first group (or group `step`) is the step
    /// in a checkpoint's file name [step, epoch, iter, ckpt or checkpoint
    /// followed by a number: `epoch_12.onnx`, `ckpt-0500.onnx`].
    #[arg(long, value_name = "REGEX")]
    pub step_pattern: Option<String>,
    /// The splits to use.
    #[command(flatten)]
    pub splits: SplitArgs,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// `embedeval comparisons …`
#[derive(Debug, Subcommand)]
pub enum ComparisonsCommand {
    /// List the stored comparisons, newest first.
    Ls {
        /// Only comparisons on this dataset.
        #[arg(long, default_value = "")]
        dataset: String,
        /// Most rows.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a stored comparison: its rows as they are now.
    Show {
        /// Comparison id.
        id: String,
        /// Aggregate over this tag, as `compare --by`.
        #[arg(long, value_name = "TAG")]
        by: Option<String>,
        /// Which τ to keep, and why, as `compare --recommend`.
        #[arg(long)]
        recommend: bool,
    },
    /// Remove stored comparisons (their evaluations stay).
    Rm {
        /// Comparison ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Which splits of the dataset play test and train.
#[derive(Debug, Clone, Args)]
pub struct SplitArgs {
    /// The split to evaluate [test, else val].
    #[arg(long, default_value = "", hide_default_value = true)]
    pub test_split: String,
    /// The split the kNN bank and the probe are fitted on [train].
    #[arg(long, default_value = "", hide_default_value = true)]
    pub train_split: String,
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
    /// How positive views are made: simclr, instdisc or none [simclr]; see
    /// the book (docs/book/metrics.md) for each recipe's defaults.
    #[arg(long)]
    pub augmentation: Option<String>,
    /// Smallest area of the random resized crop [0.2].
    #[arg(long)]
    pub crop_scale_min: Option<f64>,
    /// Largest area of the random resized crop [1.0].
    #[arg(long)]
    pub crop_scale_max: Option<f64>,
    /// Strength of the colour jitter [0.4].
    #[arg(long)]
    pub jitter: Option<f64>,
    /// Probability of a greyscale view [0.2].
    #[arg(long)]
    pub grayscale: Option<f64>,
    /// Probability of a horizontal flip [0.5].
    #[arg(long)]
    pub flip: Option<f64>,
    /// Probability of a Gaussian blur [0].
    #[arg(long)]
    pub blur: Option<f64>,
    /// A split of the dataset holding your own positive views of the test
    /// split's images, row for row (instead of augmenting).
    #[arg(long)]
    pub positives_split: Option<String>,
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
    /// Fit the linear probe on this stratified fraction of the train rows,
    /// e.g. 0.01 or 0.1 for the 1% and 10% protocols [1].
    #[arg(long)]
    pub linear_train_fraction: Option<f64>,
    /// Seed of the probe's train subset [0].
    #[arg(long)]
    pub linear_train_seed: Option<u64>,
    /// Above this many test rows uniformity is estimated from sampled pairs [50000].
    #[arg(long)]
    pub uniformity_exact_max_rows: Option<u64>,
    /// Pairs drawn by the sampled uniformity estimator [1000000].
    #[arg(long)]
    pub uniformity_samples: Option<u64>,
    /// Skip the linear probe.
    #[arg(long)]
    pub skip_linear: bool,
    /// Skip the kNN vote.
    #[arg(long)]
    pub skip_knn: bool,
    /// Skip the uniformity.
    #[arg(long)]
    pub skip_uniformity: bool,
    /// Skip the alignment and positive similarity (no positive views are encoded).
    #[arg(long)]
    pub skip_alignment: bool,
    /// Skip the tolerance.
    #[arg(long)]
    pub skip_tolerance: bool,
    /// Skip the nearest-negative profile.
    #[arg(long)]
    pub skip_nearest_negatives: bool,
    /// Skip the relative-penalty profile.
    #[arg(long)]
    pub skip_penalty: bool,
    /// Skip the effective rank.
    #[arg(long)]
    pub skip_effective_rank: bool,
    /// Skip the per-class diagnostics.
    #[arg(long)]
    pub skip_per_class: bool,
    /// The K of Recall@K, comma-separated [1,2,4,8].
    #[arg(long, value_delimiter = ',')]
    pub recall_ks: Vec<u32>,
    /// The gallery the retrieval metrics rank: train, or test (each query
    /// left out of its own ranking) [train].
    #[arg(long)]
    pub retrieval_gallery: Option<String>,
    /// Lloyd iterations of the k-means behind NMI and AMI [20].
    #[arg(long)]
    pub kmeans_iterations: Option<u32>,
    /// Runs of the k-means, the lowest objective kept [1].
    #[arg(long)]
    pub kmeans_restarts: Option<u32>,
    /// Seed of the k-means [1234].
    #[arg(long)]
    pub kmeans_seed: Option<u64>,
    /// Skip the retrieval metrics (Precision@1, R-Precision, MAP@R, Recall@K).
    #[arg(long)]
    pub skip_retrieval: bool,
    /// Skip the clustering metrics (NMI, AMI).
    #[arg(long)]
    pub skip_clustering: bool,
}

impl SpecArgs {
    /// The augmentation the flags ask for (None: the server's default).
    fn augmentation_spec(&self) -> Option<proto::Augmentation> {
        let given = self.augmentation.is_some()
            || [
                self.crop_scale_min,
                self.crop_scale_max,
                self.jitter,
                self.grayscale,
                self.flip,
                self.blur,
            ]
            .iter()
            .any(Option::is_some);
        given.then(|| proto::Augmentation {
            recipe: self.augmentation.clone().unwrap_or_default(),
            crop_scale_min: self.crop_scale_min,
            crop_scale_max: self.crop_scale_max,
            jitter: self.jitter,
            grayscale: self.grayscale,
            flip: self.flip,
            blur: self.blur,
        })
    }

    pub(crate) fn spec(&self) -> proto::MetricSpec {
        proto::MetricSpec {
            uniformity_t: self.uniformity_t,
            neighbors_k: self.neighbors_k,
            augmentation_seed: self.augmentation_seed,
            augmentation: self.augmentation_spec(),
            positives_split: self.positives_split.clone().unwrap_or_default(),
            penalty_temperature: self.penalty_temperature,
            knn_k: self.knn_k,
            knn_temperature: self.knn_temperature,
            linear_c: self.linear_c,
            linear_train_fraction: self.linear_train_fraction,
            linear_train_seed: self.linear_train_seed,
            uniformity_exact_max_rows: self.uniformity_exact_max_rows,
            uniformity_samples: self.uniformity_samples,
            skip_linear: self.skip_linear,
            skip_knn: self.skip_knn,
            skip_uniformity: self.skip_uniformity,
            skip_alignment: self.skip_alignment,
            skip_tolerance: self.skip_tolerance,
            skip_nearest_negatives: self.skip_nearest_negatives,
            skip_penalty: self.skip_penalty,
            skip_effective_rank: self.skip_effective_rank,
            skip_per_class: self.skip_per_class,
            recall_ks: self.recall_ks.clone(),
            retrieval_gallery: self.retrieval_gallery.clone().unwrap_or_default(),
            kmeans_iterations: self.kmeans_iterations,
            kmeans_restarts: self.kmeans_restarts,
            kmeans_seed: self.kmeans_seed,
            skip_retrieval: self.skip_retrieval,
            skip_clustering: self.skip_clustering,
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
    /// Remove evaluations that have ended (cancel a running one first).
    Rm {
        /// Evaluation ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// `key=value` arguments (`--tag`, `--where`) as a map, each checked.
pub fn tag_map(tags: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    tags.iter()
        .map(|t| crate::registry::card::parse_tag(t).map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}
