//! The one mapping of the domain [`Error`] onto gRPC status codes (the
//! table in API.md), with server paths cut from every message. Only the
//! edge speaks gRPC: lower layers return [`Error`].

use tonic::{Code, Status};

use crate::error::{scrub_paths, Error};

/// The gRPC code `err` maps to.
pub fn code(err: &Error) -> Code {
    match err {
        Error::NotFound { .. } => Code::NotFound,
        Error::InvalidArgument(_) | Error::InvalidCard(_) => Code::InvalidArgument,
        Error::AlreadyExists { .. } => Code::AlreadyExists,
        Error::ResourceExhausted(_) => Code::ResourceExhausted,
        Error::FailedPrecondition(_) => Code::FailedPrecondition,
        Error::Unimplemented(_) => Code::Unimplemented,
        Error::Unavailable { .. } => Code::Unavailable,
        Error::Cancelled(_) => Code::Cancelled,
        Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
        Error::Config(_)
        | Error::Runtime { .. }
        | Error::Store { .. }
        | Error::Internal { .. }
        | Error::Index { .. }
        | Error::Io { .. } => Code::Internal,
    }
}

impl From<&Error> for Status {
    fn from(err: &Error) -> Self {
        let message = err.to_string();
        let scrubbed = scrub_paths(&message);
        if scrubbed != message {
            tracing::debug!(%message, "server paths left out of an error");
        }
        Status::new(code(err), scrubbed)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        Status::from(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_never_reach_the_client() {
        let err = Error::io(
            "read /srv/embedeval/datasets/.upload-x-1/train_images.npy",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        let status = Status::from(err);
        assert!(!status.message().contains("/srv"), "{}", status.message());
        assert!(status.message().contains("train_images.npy"));
    }

    #[test]
    fn codes_follow_the_api_table() {
        assert_eq!(
            Status::from(Error::model_not_found("x")).code(),
            Code::NotFound
        );
        assert_eq!(
            Status::from(Error::InvalidCard("bad".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            Status::from(Error::ResourceExhausted("full".into())).code(),
            Code::ResourceExhausted
        );
        assert_eq!(
            Status::from(Error::AlreadyExists {
                detail: String::new(),
                kind: "model",
                name: "m".into()
            })
            .message(),
            "model already exists: m"
        );
    }
}
