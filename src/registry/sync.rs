//! Keeping a replica's uploads in line with the other replicas' when they
//! share them (`--data-url`): sharing an upload once installed, dropping
//! local copies of entries removed elsewhere, reconciling at start, and
//! keeping the local copies within `--uploads-bytes`. A local copy fetched
//! from the store or shared from here is marked so (a cache); an upload
//! without the mark is this replica's own and never dropped.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Catalog, Entry, Kind, Registries};
use crate::data::LoadedDataset;
use crate::error::{Error, Result};
use crate::registry::LoadedModel;

impl Registries {
    /// Shares this replica's uploads that were never shared (made before
    /// `--data-url` was given, or whose sharing failed) and drops the local
    /// copies of entries removed through another replica while this one
    /// was away. At start, once the catalogs are scanned; what fails is
    /// logged and left as it is (an upload of this replica's is never
    /// dropped).
    pub async fn reconcile_at_start(&self) {
        self.reconcile_kind::<LoadedModel>().await;
        self.reconcile_kind::<LoadedDataset>().await;
    }

    async fn reconcile_kind<T: Kind>(&self) {
        let Some(shared) = &self.shared else { return };
        let catalog = T::catalog(self);
        // One query for every upload here.
        let registrations = match shared.registrations(T::KIND).await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(kind = T::KIND, %err, "cannot check the uploads' registrations");
                return;
            }
        };
        for e in catalog
            .list()
            .into_iter()
            .filter(|e| !catalog.is_bundled(e))
        {
            let (kind, name) = (T::KIND, e.name());
            let copy = is_shared_copy(catalog, e.as_ref());
            match registrations.iter().find(|r| r.name == name) {
                Some(r) if !r.removed && r.content_id == e.share_id() => {
                    if let Err(err) = mark_shared(catalog, name) {
                        tracing::warn!(kind, name, %err, "cannot mark a shared copy");
                    }
                }
                // Replaced elsewhere: the copy is fetched again at its next use.
                Some(r) if !r.removed && copy => {}
                Some(r) if !r.removed => tracing::warn!(
                    kind, name, here = %e.share_id(), registered = %r.content_id,
                    "an upload never shared and another replica's registration hold one name: \
                     neither is served here until one is removed or renamed"
                ),
                Some(_) if copy => {
                    let why =
                        "removed through another replica while this one was away; dropped here";
                    self.drop_local(catalog, name, why).await;
                }
                // Not through `publish`: an upload of this replica's that
                // the store does not take stays here.
                _ => match shared.publish(e.as_ref(), false).await {
                    Ok(()) => {
                        if let Err(err) = mark_shared(catalog, name) {
                            tracing::warn!(kind, name, %err, "cannot mark a shared copy");
                        }
                        tracing::info!(kind, name, "an upload never shared is shared now")
                    }
                    Err(err) => {
                        tracing::warn!(kind, name, %err, "cannot share an upload; this replica alone serves it")
                    }
                },
            }
        }
    }

    /// Shares an entry just installed in `catalog` with the other replicas
    /// (nothing to do without shared uploads); `replace` as the upload
    /// asked. When the store cannot take it, or another replica registered
    /// the name meanwhile (ALREADY_EXISTS), the entry is removed here too
    /// and the error returned: an upload is registered everywhere or
    /// nowhere.
    pub async fn publish<T: Entry>(
        &self,
        catalog: &Arc<Catalog<T>>,
        entry: &T,
        replace: bool,
    ) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let published = shared.publish(entry, replace).await;
        if let Err(err) = published {
            let why = "the store did not take the upload; undone here";
            self.drop_local(catalog, entry.name(), why).await;
            return Err(err);
        }
        // Not marked, it would pass for an upload never shared until the
        // next start (which marks what is registered as it is here).
        if let Err(err) = mark_shared(catalog, entry.name()) {
            tracing::warn!(kind = T::KIND, name = entry.name(), %err, "cannot mark a shared copy");
        }
        self.touch(T::KIND, entry.name());
        self.trim().await;
        Ok(())
    }

    /// Keeps the uploads under `--data-dir` within `keep_bytes`: the least
    /// recently used that nothing uses go first (the store keeps them).
    pub(super) async fn trim(&self) {
        if self.shared.is_none() || self.keep_bytes == 0 {
            return;
        }
        let this = self.clone();
        let trimmed = tokio::task::spawn_blocking(move || {
            let mut sizes: Vec<(String, String, u64)> = Vec::new();
            for (name, bytes) in this.models.upload_sizes() {
                sizes.push(("model".into(), name, bytes));
            }
            for (name, bytes) in this.datasets.upload_sizes() {
                sizes.push(("dataset".into(), name, bytes));
            }
            let mut total: u64 = sizes.iter().map(|s| s.2).sum();
            if total <= this.keep_bytes {
                return;
            }
            let used = this.last_use.lock().expect("last use lock").clone();
            sizes.sort_by_key(|(kind, name, _)| used.get(&format!("{kind}/{name}")).copied());
            for (kind, name, bytes) in sizes {
                if total <= this.keep_bytes {
                    break;
                }
                let evicted = if kind == "model" {
                    this.models.evict_if_idle(&name)
                } else {
                    this.datasets.evict_if_idle(&name)
                };
                match evicted {
                    Ok(true) => {
                        if kind == "model" {
                            unmark_shared(&this.models, &name);
                        } else {
                            unmark_shared(&this.datasets, &name);
                        }
                        total -= bytes;
                        tracing::info!(%kind, %name, bytes, "dropped from the local copies (the store keeps it)");
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%kind, %name, %err, "cannot drop a local copy"),
                }
            }
        })
        .await;
        if let Err(err) = trimmed {
            tracing::warn!(%err, "trimming the local copies did not run");
        }
    }

    /// Drops a local upload whose registration another replica removed
    /// (never one being uploaded here: it is not registered yet).
    pub(super) async fn forget<T: Entry>(&self, catalog: &Arc<Catalog<T>>, name: &str) {
        if !self.is_uploading(T::KIND, name) {
            self.drop_local(
                catalog,
                name,
                "removed through another replica; dropped here",
            )
            .await;
        }
    }

    /// Removes the local copy of `name`, logging `why` (or why it could
    /// not be removed).
    pub(super) async fn drop_local<T: Entry>(
        &self,
        catalog: &Arc<Catalog<T>>,
        name: &str,
        why: &str,
    ) {
        let (catalog, name) = (catalog.clone(), name.to_string());
        let removed = tokio::task::spawn_blocking(move || {
            unmark_shared(&catalog, &name);
            catalog.remove(&name).map(|()| name)
        })
        .await;
        match removed {
            Ok(Ok(name)) => tracing::info!(kind = T::KIND, %name, "{why}"),
            Ok(Err(err)) => tracing::warn!(kind = T::KIND, %err, "cannot drop a local copy"),
            Err(err) => tracing::warn!(%err, "entry removal did not run"),
        }
    }
}

/// Where the mark that the local copy of `name` is a shared upload
/// (fetched from the store, or shared from here) lives: an empty file under
/// `<uploads>/.shared/` (hidden: never scanned as an entry). A copy so
/// marked is a cache, dropped or replaced as the registrations say; an
/// upload without one is this replica's own and never dropped.
pub(super) fn shared_mark<T: Entry>(catalog: &Catalog<T>, name: &str) -> PathBuf {
    catalog.uploads().join(".shared").join(name)
}

/// Marks the local copy of `name` as a shared upload.
pub(super) fn mark_shared<T: Entry>(catalog: &Catalog<T>, name: &str) -> Result<()> {
    let path = shared_mark(catalog, name);
    std::fs::create_dir_all(path.parent().expect("under .shared"))
        .and_then(|()| std::fs::write(&path, b""))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Removes the mark of `name`'s local copy.
pub(super) fn unmark_shared<T: Entry>(catalog: &Catalog<T>, name: &str) {
    let _ = std::fs::remove_file(shared_mark(catalog, name));
}

/// Whether the local copy of `entry` is a shared upload.
pub(super) fn is_shared_copy<T: Entry>(catalog: &Catalog<T>, entry: &T) -> bool {
    shared_mark(catalog, entry.name()).is_file()
}
