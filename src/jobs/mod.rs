//! The evaluation engine, transport-neutral: jobs (one model, uploaded
//! embeddings, or a comparison) are made only by [`plan`] from a request and
//! the registries, admitted by the [`scheduler`], run by the
//! [`engine`] with one cancellation token each, their embeddings gathered by
//! [`encode`] (through the [`cache`]) and their numbers computed by
//! [`compute`] on the [`pool`]'s threads, with the [`settings`] of the
//! request resolved and echoed; each job's state and how it ends are
//! [`job::JobState`]'s, its reports are written by the recorder (`record`)
//! and the jobs shared between replicas by the replica protocol
//! (`replica`). The gRPC services only translate.

pub mod cache;
pub mod compute;
pub mod encode;
pub mod engine;
pub mod job;
pub mod plan;
pub mod pool;
mod record;
mod replica;
mod run;
pub mod scheduler;
pub mod settings;
pub mod stored_request;
mod takeover;

pub use compute::{compute, EvalData, ProbeData};
pub use engine::{default_replica, Engine, EngineOptions, JobHandle, SubmitOptions};
pub use job::{
    CompareJob, Deadline, EmbeddingsJob, Event, JobSpec, ModelJob, Outcome, Progress, StopReason,
};
pub use record::Recorder;
pub use replica::Replica;
pub use settings::{Settings, Splits};
pub use stored_request::Resolve;
