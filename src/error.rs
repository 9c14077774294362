//! The domain error of embedeval: what went wrong, by kind. Its mapping onto
//! gRPC status codes belongs to the edge: `server::status::code` is the
//! table.

/// Everything that can go wrong in embedeval, by kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model, dataset or evaluation that does not exist.
    #[error("{kind} not found: {}{hint}", shorten(.name))]
    NotFound {
        /// "model", "dataset", "evaluation".
        kind: &'static str,
        /// The name or id asked for.
        name: String,
        /// The nearest names there are ("; did you mean …?"), or "".
        hint: String,
    },
    /// A request argument that cannot be honoured; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// A model card that is malformed or disagrees with its ONNX graph.
    #[error("invalid model card: {0}")]
    InvalidCard(String),
    /// A name that is already taken.
    #[error("{kind} already exists: {}{detail}", shorten(.name))]
    AlreadyExists {
        /// "model", "dataset".
        kind: &'static str,
        /// The name taken.
        name: String,
        /// What differs and what to do ("" when nothing more is known).
        detail: String,
    },
    /// Over a configured limit (size, queue, concurrency).
    #[error("{0}")]
    ResourceExhausted(String),
    /// An operation the entry's state forbids (e.g. removing a bundled,
    /// read-only model); the message says why.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A capability that this build or this configuration does not offer.
    #[error("{0}")]
    Unimplemented(String),
    /// The service cannot do it now; `kind` says why (a retry may succeed
    /// for some kinds: [`Error::is_transient`]).
    #[error("{message}")]
    Unavailable {
        /// What happened.
        kind: Unavailable,
        /// Said for people.
        message: String,
    },
    /// The work was cancelled (by the client, CancelEvaluation or shutdown).
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The client's deadline passed before the work finished.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Configuration that cannot be used (bad flag, missing library).
    #[error("configuration: {0}")]
    Config(String),
    /// ONNX Runtime failed.
    #[error("onnx runtime: {message}")]
    Runtime {
        /// What failed.
        message: String,
        /// ONNX Runtime's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The results database failed.
    #[error("results database: {message}")]
    Store {
        /// What failed.
        message: String,
        /// The database driver's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A fault of the server itself: a task that panicked or vanished.
    #[error("internal error in {task}: {message}")]
    Internal {
        /// The task that failed, e.g. "metrics of evaluation 3f2a…".
        task: String,
        /// What happened.
        message: String,
    },
    /// faiss failed.
    #[error("faiss: {message}")]
    Index {
        /// What failed.
        message: String,
        /// faiss's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// File system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// An underlying error kept as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a service is unavailable ([`Error::Unavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Starting: models still loading, or a replica not yet able to rebuild jobs.
    NotReady,
    /// The server (or one of its workers) is shutting down.
    ShuttingDown,
    /// The job moved to another replica, which finishes it.
    HandedOver,
    /// The results database or an object store cannot be reached.
    Unreachable,
    /// A shared entry is being replaced or uploaded while it is read.
    Changing,
}

/// A name as errors show it: at most 64 characters, the rest cut.
fn shorten(name: &str) -> String {
    let shown: String = name.chars().take(64).collect();
    if shown.len() < name.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Unavailable`] of `kind`.
    pub fn unavailable(kind: Unavailable, message: impl Into<String>) -> Self {
        Error::Unavailable {
            kind,
            message: message.into(),
        }
    }

    /// An [`Error::Runtime`] without an underlying error.
    pub fn runtime(message: impl Into<String>) -> Self {
        Error::Runtime {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Store`] without an underlying error.
    pub fn store(message: impl Into<String>) -> Self {
        Error::Store {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Index`] without an underlying error.
    pub fn index(message: impl Into<String>) -> Self {
        Error::Index {
            message: message.into(),
            source: None,
        }
    }

    /// Whether the same call may succeed if made again shortly: a database
    /// or store that cannot be reached, a server still starting, an entry
    /// being replaced. The one place retries are decided from.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable {
                kind: Unavailable::Unreachable | Unavailable::NotReady | Unavailable::Changing,
                ..
            }
        )
    }

    /// Whether a write of the results database may succeed if made again
    /// later with nothing changed: [`Error::is_transient`], or a full
    /// volume (the only RESOURCE_EXHAUSTED such a write gives), which may
    /// be freed meanwhile.
    pub fn may_be_stored_later(&self) -> bool {
        self.is_transient() || matches!(self, Error::ResourceExhausted(_))
    }

    /// An [`Error::Io`] with what was being done; a full volume is
    /// RESOURCE_EXHAUSTED ([`Error::io_at`] names which).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::io_on(context.into(), None, None, source)
    }

    /// [`Error::io`] for a write to `path`: a full volume is
    /// RESOURCE_EXHAUSTED naming the volume (its mount point), what is free
    /// and `needed` (the bytes still to write, when known).
    pub fn io_at(
        context: impl Into<String>,
        path: &std::path::Path,
        needed: Option<u64>,
        source: std::io::Error,
    ) -> Self {
        Self::io_on(context.into(), Some(path), needed, source)
    }

    fn io_on(
        context: String,
        path: Option<&std::path::Path>,
        needed: Option<u64>,
        source: std::io::Error,
    ) -> Self {
        if crate::volume::is_full(&source) {
            return Error::ResourceExhausted(crate::volume::full_message(&context, path, needed));
        }
        Error::Io { context, source }
    }

    /// A model that does not exist.
    pub fn model_not_found(name: impl Into<String>) -> Self {
        Error::NotFound {
            kind: "model",
            name: name.into(),
            hint: String::new(),
        }
    }

    /// An [`Error::Internal`] for `task` from a panic's payload.
    pub fn panicked(task: impl Into<String>, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Error::Internal {
            task: task.into(),
            message: format!("panicked: {message}"),
        }
    }

    /// An [`Error::Internal`] for a blocking task that did not finish.
    pub fn join(task: impl Into<String>, err: tokio::task::JoinError) -> Self {
        let task = task.into();
        match err.try_into_panic() {
            Ok(payload) => Self::panicked(task, payload.as_ref()),
            Err(err) => Error::Internal {
                task,
                message: err.to_string(),
            },
        }
    }
}

/// A message with every absolute path cut to its last part: clients are
/// told which file, never where the server keeps it.
pub fn scrub_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('/') {
        // A URL (scheme://host/path: an object store, an endpoint) names
        // what the operator configured, not where the server keeps files.
        let url = rest[..start]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
            .next()
            .is_some_and(|w| w.len() > 1 && w.ends_with(':'))
            && rest[start..].starts_with("//");
        let at_token_start = !url
            && (start == 0
                || rest[..start].ends_with(|c: char| c.is_whitespace() || "\"'(:=".contains(c)));
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"',)".contains(c))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        // A path of two or more parts, e.g. /srv/data/.upload-x/dataset.toml.
        if at_token_start && token.matches('/').count() >= 2 {
            out.push_str(token.rsplit('/').find(|p| !p.is_empty()).unwrap_or(""));
        } else {
            out.push_str(token);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl From<ort::Error> for Error {
    fn from(err: ort::Error) -> Self {
        Error::Runtime {
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

impl From<faiss::error::Error> for Error {
    fn from(err: faiss::error::Error) -> Self {
        Error::Index {
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_cut_to_their_last_part() {
        assert_eq!(scrub_paths("a/b and 1/2 stay"), "a/b and 1/2 stay");
        assert_eq!(
            scrub_paths("store s3://bucket/a/b down (PUT http://127.0.0.1:9000/bucket/a/b)"),
            "store s3://bucket/a/b down (PUT http://127.0.0.1:9000/bucket/a/b)"
        );
        assert_eq!(scrub_paths("at: /srv/data/x.toml"), "at: x.toml");
        assert_eq!(scrub_paths("(\"/x/y/z.npy\")"), "(\"z.npy\")");
    }
}
