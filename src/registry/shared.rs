//! Uploads shared by the replicas (`--data-url URL`): a model or dataset
//! registered through any replica is copied to `<URL>/models/<name>/<upload>/`
//! or `<URL>/datasets/<name>/<upload>/` (one folder per upload) and recorded in the database with its content
//! id; a replica asked for a name it does not hold (or holds with other
//! content) fetches it from the store into its own uploads root and loads
//! it there, and one whose name was removed elsewhere drops it. Bundled
//! entries are each replica's own and never shared.

use std::sync::Arc;

use super::upload::Staging;
use super::{Catalog, Entry};
use crate::database::{Recorded, Registration, ReportStore};
use crate::error::{Error, Result};
use crate::object_stores::Remote;

/// The object store and database the replicas share uploads through.
#[derive(Debug, Clone)]
pub struct Shared {
    root: Remote,
    store: Arc<ReportStore>,
}

/// The store folder of entries of `kind` ("model" → "models").
fn folder(kind: &str) -> String {
    format!("{kind}s")
}

impl Shared {
    /// Uploads under `root`, their registrations in `store`.
    pub fn new(root: Remote, store: Arc<ReportStore>) -> Self {
        Self { root, store }
    }

    /// The store's URL.
    pub fn url(&self) -> &str {
        self.root.url()
    }

    /// Where the embedding cache is shared.
    pub fn cache(&self) -> Remote {
        self.root.child("cache")
    }

    /// Where the uploads of `kind` `name` are: one folder per upload
    /// (`<share id>-<nonce>`), so that a replace, a concurrent upload or a
    /// removal never touches the files of another upload.
    fn files_of(&self, kind: &str, name: &str) -> Remote {
        self.root.child(&folder(kind)).child(name)
    }

    /// Copies `entry` from its local folder to the store, then records its
    /// name, content and description (in this order: a recorded
    /// registration is always in the store). Without `replace`,
    /// ALREADY_EXISTS when another replica registered the name meanwhile;
    /// with it, the files of the upload replaced are deleted.
    pub async fn publish<T: Entry>(&self, entry: &T, replace: bool) -> Result<()> {
        let (kind, name, id) = (T::KIND, entry.name(), entry.share_id());
        let upload = format!("{id}-{}", &crate::database::new_id()[..12]);
        let files = self.files_of(kind, name);
        let bytes = files.put_dir(&upload, entry.dir()).await?;
        let info = crate::database::encode_record(&entry.describe())?;
        let recorded = self
            .store
            .record_registration(kind, name, &id, &upload, &info, replace)
            .await;
        match recorded {
            Ok(Recorded::Done { previous }) => {
                tracing::info!(kind, name, bytes, store = %self.root.url(), "shared with the other replicas");
                if let Some(previous) = previous {
                    self.delete_upload(kind, name, &previous).await;
                }
                Ok(())
            }
            Ok(Recorded::Taken(_)) => {
                self.delete_upload(kind, name, &upload).await;
                Err(Error::AlreadyExists {
                    kind,
                    name: name.to_string(),
                    detail: String::new(),
                })
            }
            Err(err) => {
                // The write may have been committed before the error came
                // back: the files go only if the registration is not theirs.
                let recorded = self.store.registration(kind, name).await;
                if recorded.is_ok_and(|r| r.is_none_or(|r| r.removed || r.folder != upload)) {
                    self.delete_upload(kind, name, &upload).await;
                }
                Err(err)
            }
        }
    }

    /// Deletes the files of one upload of `kind` `name` (logged when it
    /// cannot: they are only garbage then).
    async fn delete_upload(&self, kind: &str, name: &str, upload: &str) {
        if let Err(err) = self.files_of(kind, name).delete_dir(upload).await {
            tracing::warn!(kind, name, upload, %err, "cannot delete an upload's files from the store");
        }
    }

    /// Forgets entry `name` of `kind`: the registration first (no replica
    /// fetches it after), then its files in the store; whether it was
    /// registered.
    pub async fn withdraw(&self, kind: &str, name: &str) -> Result<bool> {
        match self.store.remove_registration(kind, name).await? {
            Some(upload) => {
                self.files_of(kind, name).delete_dir(&upload).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `kind` `name` as registered or removed (None: never registered
    /// through any replica).
    pub async fn registration(&self, kind: &str, name: &str) -> Result<Option<Registration>> {
        self.store.registration(kind, name).await
    }

    /// Every registration of `kind`, removed ones included, by name.
    pub async fn registrations(&self, kind: &str) -> Result<Vec<Registration>> {
        self.store.registrations(kind).await
    }

    /// Copies the upload `registration` of entry kind `T` from the store
    /// into a staging folder of `catalog`'s uploads root, ready to be
    /// checked and installed.
    pub async fn fetch<T: Entry>(
        &self,
        catalog: &Catalog<T>,
        registration: &Registration,
    ) -> Result<Staging> {
        let (kind, name) = (T::KIND, registration.name.as_str());
        let staging = Staging::begin(catalog.uploads(), name, u64::MAX, kind).await?;
        let files = self.files_of(kind, name);
        let bytes = files
            .fetch_dir(&registration.folder, staging.dir())
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::unavailable(
                    crate::error::Unavailable::Changing,
                    format!(
                        "{kind} {name} is registered but its files are not in {}/{} (replaced or \
                     removed while being fetched?); retry",
                        files.url(),
                        registration.folder,
                    ),
                ),
                other => other,
            })?;
        tracing::info!(kind, name, bytes, store = %self.root.url(), "fetched: registered through another replica");
        Ok(staging)
    }
}
