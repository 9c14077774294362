//! The service's own record of what it holds and computed: the models and
//! datasets registered, evaluation reports, their status, comparisons and
//! training runs, as the registries, the engine, the report builders, the
//! runs view and the database hold them.
//!
//! These types are not the wire format. The protobuf messages of
//! `proto/embedeval/v1` are made from them at the edge (`server/convert.rs`,
//! and the CLI), so that a change to the public contract is a change to one
//! conversion, not to the database rows and every layer. The database
//! stores them with serde ([`crate::database`]: CBOR, versioned), so every
//! type here derives `Serialize`/`Deserialize` with `#[serde(default)]`: a
//! field added later reads as its default from a row written before it.
//!
//! The field names follow the contract's (README and `proto/`), where each
//! metric is defined with its paper and equation.

mod comparison;
mod entries;
mod neighbours;
mod projection;
mod report;
mod run;
mod spec;

pub use comparison::{
    AccuracyInterval, ClassTolerance, Comparison, ComparisonSummary, ExcludedModel, MetricSummary,
    Recommendation, TagGroup,
};
pub use entries::{class_name, DatasetInfo, ModelInfo, OutputInfo, SplitInfo, TrainingInfo};
pub use neighbours::{ClassConfusion, ConfusedPair, ModelNeighbours, NearestImages, Neighbour};
pub use projection::{Projection, Projections};
pub use report::{
    ClusteringResult, Histogram, InputInfo, KnnResult, LinearResult, PerClass, Report,
    RetrievalResult, Status, Timestamp,
};
pub use run::{Checkpoint, Run, RunMember, RunSummary, RunWarning};
pub use spec::{Augmentation, MetricSpec};
