//! The client subcommands' arguments: how to reach the server and what each
//! of `models`, `datasets`, `embed`, `eval`, `compare` and `evaluations` takes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::Format;
use crate::proto;

/// How to reach the server, and how to print what it answers.
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
    /// How listings and results are printed.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Print JSON (the same as --format json).
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
    /// Training loss: infonce, hard_infonce, simple, hard_simple, ….
    #[arg(long)]
    pub loss: Option<String>,
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
}

/// How a dataset folder without dataset.toml is read.
#[derive(Debug, Clone, Default, Args)]
pub struct DatasetLayoutArgs {
    /// embedeval-npy, cifar10, cifar100 or image-folder, when the files do
    /// not tell (CIFAR batches and split/class/image folders are recognised).
    #[arg(long, default_value = "")]
    pub dataset_format: String,
    /// Channels to decode images to: 1 (greyscale) or 3 [3].
    #[arg(long, default_value_t = 0)]
    pub channels: u32,
    /// Bring images of any size to this square: shorter side resized, centre cropped.
    #[arg(long, default_value_t = 0)]
    pub image_size: u32,
    /// Fraction of the resized shorter side the crop keeps [0.875: resize 256, crop 224].
    #[arg(long, default_value_t = 0.0)]
    pub crop_fraction: f64,
    /// The split evaluated by default [test, else val].
    #[arg(long, default_value = "")]
    pub test_split: String,
    /// The split the kNN bank and the probe are fitted on by default [train].
    #[arg(long, default_value = "")]
    pub train_split: String,
}

/// `embedeval embed …`
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model name, or an ONNX file (registered by content, reused if seen).
    pub model: String,
    /// The card's facts when `model` is a file not yet registered.
    #[command(flatten)]
    pub card: CardArgs,
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
    /// Model name, or an ONNX file (registered by content, reused if seen).
    pub model: String,
    /// The card's facts when `model` is a file not yet registered.
    #[command(flatten)]
    pub card: CardArgs,
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
    /// The splits to use.
    #[command(flatten)]
    pub splits: SplitArgs,
    /// The metric settings.
    #[command(flatten)]
    pub spec: SpecArgs,
}

/// Which splits of the dataset play test and train.
#[derive(Debug, Clone, Args)]
pub struct SplitArgs {
    /// The split to evaluate [test, else val].
    #[arg(long, default_value = "")]
    pub test_split: String,
    /// The split the kNN bank and the probe are fitted on [train].
    #[arg(long, default_value = "")]
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
}

impl SpecArgs {
    pub(crate) fn spec(&self) -> proto::MetricSpec {
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
            skip_uniformity: self.skip_uniformity,
            skip_alignment: self.skip_alignment,
            skip_tolerance: self.skip_tolerance,
            skip_nearest_negatives: self.skip_nearest_negatives,
            skip_penalty: self.skip_penalty,
            skip_effective_rank: self.skip_effective_rank,
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
