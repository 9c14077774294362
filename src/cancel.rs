//! Cooperative cancellation for long computations. Every long loop of the
//! metrics, the protocols and the engine checks a [`Stop`] once per block,
//! chunk or iteration, so a cancelled job frees its CPU within a block's
//! time. A `Stop` wraps the job's [`CancellationToken`]; [`Stop::never`]
//! is for callers with nothing to cancel (tests, benchmarks, the CLI).

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The stop signal a computation checks.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: Option<CancellationToken>,
}

impl Stop {
    /// A signal that never fires.
    pub fn never() -> Self {
        Self { token: None }
    }

    /// The signal of `token`.
    pub fn new(token: CancellationToken) -> Self {
        Self { token: Some(token) }
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
}
