//! The one mapping of the domain [`Error`] onto gRPC status codes
//! ([`code`] is the table), with server paths cut from every message and
//! every long value a user gave shortened. Only the edge speaks gRPC: lower
//! layers return [`Error`].

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
        Status::new(code(err), bounded(&scrubbed))
    }
}

/// Longest value a message echoes, in characters; a longer one is cut to
/// this and told as "… (N characters)".
pub const ECHO_CHARS: usize = 120;

/// Longest message, in bytes: whatever it echoes, a status travels in the
/// `grpc-message` header (percent-encoded, up to 3 bytes a byte), well
/// inside the 16 KiB that clients accept for metadata.
pub const MESSAGE_BYTES: usize = 3000;

/// `text` cut to [`ECHO_CHARS`] characters, told as such when cut.
fn shortened(text: &str) -> String {
    let n = text.chars().count();
    if n <= ECHO_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(ECHO_CHARS).collect();
    format!("{kept}… ({n} characters)")
}

/// `message` with every long value shortened: each quoted string (as
/// `{:?}` writes one) and each run of characters without a space longer
/// than [`ECHO_CHARS`]; what is still over [`MESSAGE_BYTES`] (a long value
/// of many words) keeps its start and its end, and says how much was left
/// out between them.
pub fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(2 * MESSAGE_BYTES));
    let mut rest = message;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            // A quoted value: up to the closing quote not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end.unwrap_or(quoted.len());
            out.push('"');
            out.push_str(&shortened(&quoted[..end]));
            rest = &quoted[end..];
            if let Some(after) = rest.strip_prefix('"') {
                out.push('"');
                rest = after;
            }
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        if end == 0 {
            let c = rest.chars().next().expect("rest is not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            out.push_str(&shortened(&rest[..end]));
            rest = &rest[end..];
        }
    }
    if out.len() <= MESSAGE_BYTES {
        return out;
    }
    let floor = |mut i: usize| {
        while !out.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let head = floor(MESSAGE_BYTES * 2 / 3);
    let tail = floor(out.len() - MESSAGE_BYTES / 4);
    let left_out = out[head..tail].chars().count();
    format!(
        "{}… ({left_out} characters left out) …{}",
        &out[..head],
        &out[tail..]
    )
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
    fn long_values_are_shortened_and_say_how_long_they_were() {
        let long = "x".repeat(100_000);
        let err = Error::InvalidArgument(format!(
            "spec.augmentation.recipe {long:?} is not a known recipe (one of simclr, instdisc, none)"
        ));
        let status = Status::from(err);
        let m = status.message();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            m.starts_with(&format!(
                "spec.augmentation.recipe \"{}… (100000 characters)\"",
                "x".repeat(120)
            )),
            "{m}"
        );
        assert!(
            m.ends_with("is not a known recipe (one of simclr, instdisc, none)"),
            "{m}"
        );
        // Unquoted, and with quotes escaped inside.
        assert_eq!(
            bounded(&format!("model {long} not found")),
            format!("model {}… (100000 characters) not found", "x".repeat(120))
        );
        let escaped = format!("{:?}", format!("a\"{long}"));
        let m = bounded(&format!("name {escaped} bad"));
        assert!(
            m.starts_with("name \"a\\\"xx") && m.ends_with("(100003 characters)\" bad"),
            "{m}"
        );
        // A long value of many words: the start and the end kept.
        let words = "ab ".repeat(50_000);
        let m = bounded(&format!("tag value {words}is too long"));
        assert!(m.len() <= MESSAGE_BYTES + 100, "{}", m.len());
        assert!(
            m.starts_with("tag value ab ab") && m.ends_with("is too long"),
            "{m}"
        );
        assert!(m.contains("characters left out"), "{m}");
        // Multi-byte characters are cut on their boundaries.
        let m = bounded(&"é".repeat(5000));
        assert!(m.ends_with("(5000 characters)"), "{m}");
        // Ordinary messages are left as they are.
        let plain = "model \"x\" not found; did you mean \"y\"?";
        assert_eq!(bounded(plain), plain);
        assert_eq!(bounded(""), "");
    }

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
