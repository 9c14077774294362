//! Running evaluations: the settings of a request resolved and echoed, the
//! embeddings gathered (encoder or upload), the numbers computed stage by
//! stage with progress and cancellation, the report kept.

pub mod cache;
pub mod compute;
pub mod settings;

pub use compute::{compute, EvalData, ProbeData};
pub use settings::Settings;
