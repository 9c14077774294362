//! Storage beyond this machine's folders: an object store (S3 and
//! S3-compatible servers, Google Cloud Storage, Azure Blob Storage, or a
//! path as `file:///…`) through the `object_store` crate, addressed by URL
//! (`s3://bucket/prefix`, `gs://…`, `az://…`). Replicas keep what they use
//! in local folders ([`mirror`] for bundles read from a store, the uploads
//! root and the embedding cache under `--data-dir` for the rest); the store
//! is where they find what another replica wrote.
//!
//! Credentials and endpoints come from the environment the way each
//! service's tools read them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT` with `AWS_ALLOW_HTTP=true` for a plain-HTTP
//! S3-compatible server; `GOOGLE_SERVICE_ACCOUNT`; `AZURE_STORAGE_ACCOUNT_NAME`
//! and `AZURE_STORAGE_ACCOUNT_KEY`). A store that cannot be reached answers
//! UNAVAILABLE naming it, after a few quick retries rather than minutes.

mod bundles;

pub use bundles::Bundles;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result};

/// Whether `text` names a store by URL rather than a local folder.
pub fn is_url(text: &str) -> bool {
    text.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A prefix in an object store.
#[derive(Clone)]
pub struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// Retries of a request that failed for a reason that may pass: a few, for
/// a few seconds, so that a store that is down answers UNAVAILABLE soon.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(10),
    }
}

fn client() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(120))
}

impl Remote {
    /// The store and prefix `url` names (`s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`, `file:///path`),
    /// configured from the environment.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &[])
    }

    /// Like [`Remote::open`], with `options` (the store's configuration
    /// keys, e.g. `aws_endpoint`) over the environment's.
    pub fn open_with(url: &str, options: &[(&str, &str)]) -> Result<Self> {
        crate::use_ring_for_tls();
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::Config(format!("{url:?} is not a store URL: {e}")))?;
        let config = |e: object_store::Error| Error::Config(format!("object store {url}: {e}"));
        // Timeouts first: options read after them (from the environment,
        // then `options`) add to them rather than replace them.
        let settings = |prefix: &str| {
            std::env::vars()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .chain(options.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect::<Vec<_>>()
        };
        // The prefix as the keys' own characters (`my%20models`: "my models").
        let prefix = percent_encoding::percent_decode_str(parsed.path())
            .decode_utf8()
            .map_err(|e| Error::Config(format!("{url:?}: the path is not UTF-8: {e}")))?
            .into_owned();
        let prefix = prefix.as_str();
        let (store, prefix): (Arc<dyn ObjectStore>, &str) = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_client_options(client())
                    .with_retry(retry());
                for (k, v) in settings("AWS_") {
                    if let Ok(key) = k.parse::<object_store::aws::AmazonS3ConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                (Arc::new(b.with_url(url).build().map_err(config)?), prefix)
            }
            "gs" => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                    .with_client_options(client())
                    .with_retry(retry());
                for (k, v) in settings("GOOGLE_") {
                    if let Ok(key) = k.parse::<object_store::gcp::GoogleConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                (Arc::new(b.with_url(url).build().map_err(config)?), prefix)
            }
            "az" | "abfs" | "abfss" => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_client_options(client())
                    .with_retry(retry());
                for (k, v) in settings("AZURE_") {
                    if let Ok(key) = k.parse::<object_store::azure::AzureConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                (Arc::new(b.with_url(url).build().map_err(config)?), prefix)
            }
            "file" => {
                // file:///abs/path (or file://localhost/…): a host or a
                // relative path would name another folder than meant.
                let root = parsed.to_file_path().map_err(|()| {
                    Error::Config(format!(
                        "{url:?} is not a file URL of an absolute path (file:///srv/store)"
                    ))
                })?;
                std::fs::create_dir_all(&root)
                    .map_err(|e| Error::io(format!("create {}", root.display()), e))?;
                (
                    Arc::new(
                        object_store::local::LocalFileSystem::new_with_prefix(&root)
                            .map_err(config)?,
                    ),
                    "",
                )
            }
            other => {
                return Err(Error::Config(format!(
                    "object store scheme {other}:// is not supported (s3, gs, az, file)"
                )))
            }
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix: Key::from(prefix.trim_matches('/')),
        })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix `part` under this one.
    pub fn child(&self, part: &str) -> Self {
        Self {
            url: format!("{}/{part}", self.url),
            store: self.store.clone(),
            prefix: self.key(part),
        }
    }

    fn key(&self, relative: &str) -> Key {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |k, part| k.clone().join(part))
    }

    fn error(&self, what: &str, err: object_store::Error) -> Error {
        match err {
            object_store::Error::NotFound { .. } => Error::NotFound {
                kind: "object",
                name: format!("{}/{what}", self.url),
                hint: String::new(),
            },
            // Not retried, and the store's reply (which may quote the
            // request it refused) stays in the server's debug log.
            err @ (object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }) => {
                tracing::debug!(store = %self.url, what, %err, "the object store refused the credentials");
                Error::FailedPrecondition(format!(
                    "the object store {} refused this server's credentials ({what}): check the \
                     store's keys and permissions in the server's environment",
                    self.url
                ))
            }
            other => {
                // The causes (connection refused, a TLS failure, …) say most.
                let mut message = other.to_string();
                let mut cause = std::error::Error::source(&other);
                while let Some(c) = cause {
                    let text = c.to_string();
                    if !message.contains(&text) {
                        message = format!("{message}: {text}");
                    }
                    cause = c.source();
                }
                Error::unavailable(crate::error::Unavailable::Unreachable, format!(
                    "the object store {} cannot be reached or refused the request ({what}): {message}",
                    self.url
                ))
            }
        }
    }

    /// The names of the folders right under the prefix, sorted.
    pub async fn names(&self) -> Result<Vec<String>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error("list", e))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every object under folder `name`: its path below the folder and size.
    pub async fn files(&self, name: &str) -> Result<Vec<(String, u64)>> {
        let listed = self.listing(name).await?;
        Ok(listed
            .into_iter()
            .map(|(rel, size, _)| (rel, size))
            .collect())
    }

    /// Every object under folder `name`: its path below the folder (its
    /// own characters, not the store's encoding of them), size and version
    /// (ETag, or last modification), sorted.
    pub async fn listing(&self, name: &str) -> Result<Vec<(String, u64, String)>> {
        let root = self.key(name);
        let objects: Vec<_> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| self.error(name, e))?;
        let mut files = Vec::with_capacity(objects.len());
        for m in objects {
            let Some(parts) = m.location.prefix_match(&root) else {
                continue;
            };
            let mut rel = Vec::new();
            for part in parts {
                let decoded = percent_encoding::percent_decode_str(part.as_ref())
                    .decode_utf8()
                    .map_err(|e| {
                        Error::unavailable(
                            crate::error::Unavailable::Unreachable,
                            format!("{}: a key is not UTF-8: {e}", self.url),
                        )
                    })?;
                rel.push(decoded.into_owned());
            }
            let version = m
                .e_tag
                .clone()
                .unwrap_or_else(|| m.last_modified.to_rfc3339());
            files.push((rel.join("/"), m.size, version));
        }
        files.sort();
        Ok(files)
    }

    /// Copies folder `name` of the store into the local folder `into`
    /// (created); the bytes copied. Each object must arrive whole (its
    /// listed size), or UNAVAILABLE; callers fetch into a hidden folder and
    /// rename it into place, so nothing partial is ever read.
    pub async fn fetch_dir(&self, name: &str, into: &Path) -> Result<u64> {
        let files = self.files(name).await?;
        if files.is_empty() {
            return Err(Error::NotFound {
                kind: "object folder",
                name: format!("{}/{name}", self.url),
                hint: String::new(),
            });
        }
        let mut total = 0;
        for (rel, size) in files {
            let bytes = self.get(&format!("{name}/{rel}")).await?;
            // An answer cut short without the transport noticing (no
            // length announced) is never written as the object.
            if bytes.len() as u64 != size {
                return Err(Error::unavailable(
                    crate::error::Unavailable::Unreachable,
                    format!(
                        "the object store {} sent {} bytes of {name}/{rel}, listed as {size} \
                         (cut short, or replaced meanwhile); retry shortly",
                        self.url,
                        bytes.len()
                    ),
                ));
            }
            let path = into.join(&rel);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
            }
            tokio::fs::write(&path, &bytes)
                .await
                .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
            total += bytes.len() as u64;
        }
        Ok(total)
    }

    /// Copies the local folder `from` (its files, recursively) to folder
    /// `name` of the store, replacing what it held; the bytes copied.
    pub async fn put_dir(&self, name: &str, from: &Path) -> Result<u64> {
        let mut total = 0;
        let mut wanted = Vec::new();
        let mut stack = vec![from.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut entries = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| Error::io(format!("read {}", dir.display()), e))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| Error::io(format!("read {}", dir.display()), e))?
            {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(from)
                    .map_err(|_| Error::Internal {
                        task: "store upload".into(),
                        message: format!("{} is outside {}", path.display(), from.display()),
                    })?
                    .to_string_lossy()
                    .replace('\\', "/");
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
                total += bytes.len() as u64;
                self.put(&format!("{name}/{rel}"), bytes).await?;
                wanted.push(rel);
            }
        }
        // Files an earlier version had and this one has not.
        for (rel, _) in self.files(name).await? {
            if !wanted.contains(&rel) {
                self.delete(&format!("{name}/{rel}")).await?;
            }
        }
        Ok(total)
    }

    /// Removes folder `name` from the store.
    pub async fn delete_dir(&self, name: &str) -> Result<()> {
        for (rel, _) in self.files(name).await? {
            self.delete(&format!("{name}/{rel}")).await?;
        }
        Ok(())
    }

    /// The bytes of object `relative`.
    pub async fn get(&self, relative: &str) -> Result<bytes::Bytes> {
        let key = self.key(relative);
        let got = self
            .store
            .get(&key)
            .await
            .map_err(|e| self.error(relative, e))?;
        got.bytes().await.map_err(|e| self.error(relative, e))
    }

    /// Stores `bytes` as object `relative`.
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.key(relative), PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(relative, e))?;
        Ok(())
    }

    /// Removes object `relative` (one that is not there is no error).
    pub async fn delete(&self, relative: &str) -> Result<()> {
        match self.store.delete(&self.key(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(relative, e)),
        }
    }
}

/// Brings the local folder `local` in line with the store's folders
/// (bundled models or datasets read from a store): a folder whose objects
/// differ in name, size or version (ETag, or last modification) from what
/// was fetched last is fetched again (into a hidden folder, then renamed
/// into place), a folder the store no longer has is removed. A store that
/// lists no folder at all while `local` holds some is refused
/// (FAILED_PRECONDITION: a mistyped URL must not empty the mirror).
/// Returns the names fetched.
pub async fn mirror(remote: &Remote, local: &Path) -> Result<Vec<String>> {
    let manifests = local.join(".manifests");
    tokio::fs::create_dir_all(&manifests)
        .await
        .map_err(|e| Error::io(format!("create {}", manifests.display()), e))?;
    let mut names = Vec::new();
    let mut fetched = Vec::new();
    for name in remote.names().await? {
        let listed = remote.listing(&name).await?;
        if listed.is_empty() {
            // An empty folder (a file store keeps them) holds nothing.
            continue;
        }
        names.push(name.clone());
        let name = &name;
        let target = local.join(name);
        let manifest: String = listed
            .iter()
            .map(|(rel, size, version)| format!("{rel}\t{size}\t{version}\n"))
            .collect();
        let manifest_path = manifests.join(name);
        let recorded = tokio::fs::read_to_string(&manifest_path).await.ok();
        if target.is_dir() && recorded.as_deref() == Some(manifest.as_str()) {
            continue;
        }
        let staging = local.join(format!(".fetch-{name}-{}", std::process::id()));
        let _ = tokio::fs::remove_dir_all(&staging).await;
        let copied = remote.fetch_dir(name, &staging).await;
        if let Err(err) = copied {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(err);
        }
        let _ = tokio::fs::remove_dir_all(&target).await;
        tokio::fs::rename(&staging, &target)
            .await
            .map_err(|e| Error::io(format!("move {} into place", target.display()), e))?;
        tokio::fs::write(&manifest_path, manifest)
            .await
            .map_err(|e| Error::io(format!("write {}", manifest_path.display()), e))?;
        fetched.push(name.clone());
    }
    let held: Vec<std::path::PathBuf> = std::fs::read_dir(local)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n != ".manifests"))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() && !held.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "the store {} holds no folders; the local mirror {} keeps what it has (is the URL right?)",
            remote.url(),
            local.display()
        )));
    }
    for path in held {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.is_some_and(|n| names.contains(&n)) {
            let _ = std::fs::remove_dir_all(&path);
            if let Some(n) = path.file_name() {
                let _ = std::fs::remove_file(manifests.join(n));
            }
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_folders() {
        assert!(is_url("s3://bucket/models"));
        assert!(is_url("file:///srv/models"));
        assert!(!is_url("models"));
        assert!(!is_url("/srv/models"));
        assert!(!is_url("./a://b"));
        assert!(Remote::open("ftp://x/y").is_err());
    }

    #[tokio::test]
    async fn folders_go_to_a_store_and_come_back_and_mirror_follows_it() {
        let store_dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", store_dir.path().display());
        let remote = Remote::open(&url).unwrap().child("models");
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/sub")).unwrap();
        std::fs::write(src.path().join("a/model.onnx"), b"onnx").unwrap();
        std::fs::write(src.path().join("a/sub/x.txt"), b"xx").unwrap();
        assert_eq!(
            remote.put_dir("m1", &src.path().join("a")).await.unwrap(),
            6
        );
        assert_eq!(remote.names().await.unwrap(), ["m1"]);
        assert_eq!(
            remote.files("m1").await.unwrap(),
            [("model.onnx".to_string(), 4), ("sub/x.txt".to_string(), 2)]
        );
        let local = tempfile::tempdir().unwrap();
        assert_eq!(mirror(&remote, local.path()).await.unwrap(), ["m1"]);
        assert_eq!(
            std::fs::read(local.path().join("m1/sub/x.txt")).unwrap(),
            b"xx"
        );
        assert!(
            mirror(&remote, local.path()).await.unwrap().is_empty(),
            "unchanged"
        );
        // A new version of the same size is fetched again (the objects'
        // versions differ), and the old files go.
        std::fs::remove_file(src.path().join("a/sub/x.txt")).unwrap();
        std::fs::write(src.path().join("a/model.onnx"), b"ONNX").unwrap();
        remote.put_dir("m1", &src.path().join("a")).await.unwrap();
        assert_eq!(mirror(&remote, local.path()).await.unwrap(), ["m1"]);
        assert_eq!(
            std::fs::read(local.path().join("m1/model.onnx")).unwrap(),
            b"ONNX"
        );
        assert!(!local.path().join("m1/sub/x.txt").exists());
        // Names with spaces and other characters keys encode come back as
        // they were.
        std::fs::create_dir_all(src.path().join("b/golden retriever")).unwrap();
        std::fs::write(src.path().join("b/golden retriever/img 1.png"), b"p").unwrap();
        std::fs::write(src.path().join("b/vocab#1~.txt"), b"v").unwrap();
        remote.put_dir("m 2", &src.path().join("b")).await.unwrap();
        assert_eq!(
            remote.files("m 2").await.unwrap(),
            [
                ("golden retriever/img 1.png".to_string(), 1),
                ("vocab#1~.txt".to_string(), 1)
            ]
        );
        assert_eq!(mirror(&remote, local.path()).await.unwrap(), ["m 2"]);
        assert_eq!(
            std::fs::read(local.path().join("m 2/golden retriever/img 1.png")).unwrap(),
            b"p"
        );
        // A removed folder goes; a store left with none empties nothing.
        remote.delete_dir("m1").await.unwrap();
        assert!(mirror(&remote, local.path()).await.unwrap().is_empty());
        assert!(!local.path().join("m1").exists());
        assert!(matches!(
            remote.get("m1/model.onnx").await,
            Err(Error::NotFound { .. })
        ));
        remote.delete_dir("m 2").await.unwrap();
        assert!(matches!(
            mirror(&remote, local.path()).await,
            Err(Error::FailedPrecondition(_))
        ));
        assert!(local.path().join("m 2/vocab#1~.txt").is_file());
        // A file URL names an absolute path.
        assert!(matches!(
            Remote::open("file://relative/store"),
            Err(Error::Config(_))
        ));
    }

    #[tokio::test]
    async fn a_store_that_is_not_there_is_unavailable_and_named() {
        // Nothing listens on this port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let remote = Remote::open_with(
            "s3://bucket/models",
            &[
                ("aws_endpoint", &endpoint),
                ("aws_allow_http", "true"),
                ("aws_access_key_id", "key"),
                ("aws_secret_access_key", "secret"),
                ("aws_region", "us-east-1"),
            ],
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = remote.names().await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        assert!(
            err.to_string().contains("onnect"),
            "refused, not misconfigured: {err}"
        );
        assert!(err.to_string().contains("s3://bucket/models"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }
}
