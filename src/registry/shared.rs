//! Uploads shared by the replicas (`--data-url URL`): a model or dataset
//! registered through any replica is copied to `<URL>/models/<name>/` or
//! `<URL>/datasets/<name>/` and recorded in the database with its content
//! id; a replica asked for a name it does not hold (or holds with other
//! content) fetches it from the store into its own uploads root and loads
//! it there, and one whose name was removed elsewhere drops it. Bundled
//! entries are each replica's own and never shared.

use std::sync::Arc;

use super::upload::Staging;
use super::{Catalog, Entry};
use crate::error::{Error, Result};
use crate::storage::Remote;
use crate::store::{Registration, ReportStore};

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

    /// Copies `entry` from its local folder to the store, then records
    /// its name, content and description (in this order: a recorded
    /// registration is always in the store).
    pub async fn publish<T: Entry>(&self, entry: &T) -> Result<()> {
        let (kind, name) = (T::KIND, entry.name());
        let bytes = self
            .root
            .child(&folder(kind))
            .put_dir(name, entry.dir())
            .await?;
        let info = prost::Message::encode_to_vec(&entry.describe());
        self.store
            .record_registration(kind, name, entry.content_id(), &info)
            .await?;
        tracing::info!(kind, name, bytes, store = %self.root.url(), "shared with the other replicas");
        Ok(())
    }

    /// Forgets entry `name` of `kind`: the registration first (no replica
    /// fetches it after), then its files in the store.
    pub async fn withdraw(&self, kind: &str, name: &str) -> Result<()> {
        self.store.remove_registration(kind, name).await?;
        self.root.child(&folder(kind)).delete_dir(name).await
    }

    /// The content `kind` `name` holds for every replica (None: not
    /// registered).
    pub async fn registered(&self, kind: &str, name: &str) -> Result<Option<String>> {
        self.store.registration(kind, name).await
    }

    /// Every registration of `kind`, by name.
    pub async fn registrations(&self, kind: &str) -> Result<Vec<Registration>> {
        self.store.registrations(kind).await
    }

    /// Copies entry `name` of `kind` from the store into a staging folder
    /// of `catalog`'s uploads root, ready to be checked and installed.
    pub async fn fetch<T: Entry>(
        &self,
        catalog: &Catalog<T>,
        kind: &'static str,
        name: &str,
    ) -> Result<Staging> {
        let staging = Staging::begin(catalog.uploads(), name, u64::MAX, kind).await?;
        let bytes = self
            .root
            .child(&folder(kind))
            .fetch_dir(name, staging.dir())
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::Unavailable(format!(
                    "{kind} {name} is registered but its files are not in {}/{} (removed while \
                     being fetched?); retry",
                    self.root.url(),
                    folder(kind)
                )),
                other => other,
            })?;
        tracing::info!(kind, name, bytes, store = %self.root.url(), "fetched: registered through another replica");
        Ok(staging)
    }
}
