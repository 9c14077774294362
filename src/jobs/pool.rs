//! The compute pool: named, sized threads for the CPU-heavy parts of jobs
//! (augmentation, metrics, probes), apart from the async runtime and its
//! blocking pool. A panic in a task becomes [`Error::Internal`] naming the
//! task, logged once; the thread survives it.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A pool of compute threads.
#[derive(Debug)]
pub struct ComputePool {
    pool: rayon::ThreadPool,
    active: Arc<AtomicUsize>,
}

impl ComputePool {
    /// `threads` threads (0: one per core) named `embedeval-compute-N`.
    pub fn new(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embedeval-compute-{i}"))
            .build()
            .map_err(|e| Error::Config(format!("cannot start the compute threads: {e}")))?;
        Ok(Self {
            pool,
            active: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Tasks running on the pool now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Runs `f` on the pool (its parallel loops use the pool too) and waits
    /// for its result without blocking the async runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl Into<String>,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let task = task.into();
        let (tx, rx) = oneshot::channel();
        let name = task.clone();
        let active = self.active.clone();
        active.fetch_add(1, Ordering::SeqCst);
        self.pool.spawn(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
                let err = Error::panicked(name, payload.as_ref());
                tracing::error!(%err, "compute task panicked");
                Err(err)
            });
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(out);
        });
        rx.await.map_err(|_| Error::Internal {
            task,
            message: "the compute thread ended without an answer".into(),
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_named_threads_and_a_panic_is_an_internal_error() {
        let pool = ComputePool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        let name = pool
            .run("name", || {
                Ok(std::thread::current().name().unwrap_or("").to_string())
            })
            .await
            .unwrap();
        assert!(name.starts_with("embedeval-compute-"), "{name}");
        let err = pool
            .run("metrics of e1", || -> Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Internal { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "internal error in metrics of e1: panicked: boom"
        );
        // The pool survives the panic.
        assert_eq!(pool.run("again", || Ok(3)).await.unwrap(), 3);
        assert_eq!(pool.active(), 0);
    }
}
