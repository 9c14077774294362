//! Cooperative cancellation and progress for long computations. Every long
//! loop of the metrics, the protocols and the engine checks a [`Stop`] once
//! per block, chunk or iteration, so a cancelled job frees its CPU within a
//! block's time, and tells it how far it is in its own units
//! ([`Stop::advance`]: rows, pairs, iterations). A `Stop` wraps the job's
//! [`CancellationToken`]; [`Stop::never`] is for callers with nothing to
//! cancel (tests, benchmarks, the CLI).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Where a computation's progress goes: (done, total).
pub type ProgressSink = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The stop signal a computation checks, and where its progress goes.
#[derive(Clone, Default)]
pub struct Stop {
    token: Option<CancellationToken>,
    progress: Option<ProgressSink>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("token", &self.token)
            .field("reports_progress", &self.progress.is_some())
            .finish()
    }
}

impl Stop {
    /// A signal that never fires.
    pub fn never() -> Self {
        Self::default()
    }

    /// The signal of `token`.
    pub fn new(token: CancellationToken) -> Self {
        Self {
            token: Some(token),
            progress: None,
        }
    }

    /// The same signal, its progress going to `sink`.
    pub fn reporting(&self, sink: ProgressSink) -> Self {
        Self {
            token: self.token.clone(),
            progress: Some(sink),
        }
    }

    /// Tells the progress sink (if any) that `done` of `total` units are done.
    pub fn advance(&self, done: u64, total: u64) {
        if let Some(sink) = &self.progress {
            sink(done, total);
        }
    }

    /// Whether the work should stop now.
    pub fn is_stopped(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.is_cancelled())
    }

    /// `Err(Error::Cancelled)` once the work should stop. The job that owns
    /// the token records why.
    pub fn check(&self) -> Result<()> {
        if self.is_stopped() {
            Err(Error::Cancelled("the job was stopped".into()))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_fires_when_its_token_is_cancelled() {
        assert!(Stop::never().check().is_ok());
        let token = CancellationToken::new();
        let stop = Stop::new(token.clone());
        assert!(stop.check().is_ok());
        token.cancel();
        assert!(stop.is_stopped());
        assert!(matches!(stop.check(), Err(Error::Cancelled(_))));
    }

    #[test]
    fn progress_goes_to_the_sink_of_the_copy_that_reports() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let stop = Stop::never();
        stop.advance(1, 2);
        let reporting = stop.reporting(Arc::new(move |d, t| sink.lock().unwrap().push((d, t))));
        reporting.advance(3, 4);
        assert_eq!(*seen.lock().unwrap(), vec![(3, 4)]);
    }
}
