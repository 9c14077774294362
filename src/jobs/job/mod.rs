//! A job: what it is ([`spec`]), what it tells the world ([`event`]),
//! where it is in its life ([`state`]) and its live handle while it runs
//! ([`live`]).

mod event;
mod live;
mod spec;
mod state;
#[cfg(test)]
mod tests;

pub use event::{Event, EventStream, Outcome, Progress};
pub use live::{Live, Reporter, StopOnDrop};
pub use spec::{CompareJob, EmbeddingsJob, JobSpec, ModelJob};
pub use state::{Deadline, Ending, JobState, Phase, StopReason};
