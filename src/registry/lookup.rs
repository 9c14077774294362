//! Finding entries by name: a model or dataset this replica holds, or one
//! another replica registered (fetched from the store and loaded here
//! first), the listings, and "did you mean …?" on a miss.

use std::sync::Arc;

use super::sync::{is_shared_copy, mark_shared};
use super::{Kind, Registries};
use crate::data::LoadedDataset;
use crate::error::{Error, Result};
use crate::registry::LoadedModel;

impl Registries {
    /// The model registered as `name` (see [`Registries::entry`]).
    pub async fn model(&self, name: &str) -> Result<Arc<LoadedModel>> {
        self.entry(name).await
    }

    /// The dataset registered as `name` (see [`Registries::entry`]).
    pub async fn dataset(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        self.entry(name).await
    }

    /// The entry of kind `T` registered as `name`. With shared uploads, one
    /// that another replica registered or replaced is fetched and loaded
    /// here first, and the copy of one it removed is dropped here
    /// (NOT_FOUND); an upload of this replica's that was never shared is
    /// served as it is (FAILED_PRECONDITION when another replica registered
    /// other content under its name). Without shared uploads, one that
    /// appeared in the uploads root is loaded.
    pub async fn entry<T: Kind>(&self, name: &str) -> Result<Arc<T>> {
        let catalog = T::catalog(self);
        let Some(shared) = &self.shared else {
            return catalog.get_or_load(name, |dir| T::open(self, name, dir, dir.to_path_buf()));
        };
        self.touch(T::KIND, name);
        let local = catalog.get(name).ok();
        if let Some(e) = local
            .as_ref()
            .filter(|e| catalog.is_bundled(e) || self.is_uploading(T::KIND, name))
        {
            return Ok(e.clone());
        }
        let not_found = || Error::NotFound {
            kind: T::KIND,
            name: name.to_string(),
            hint: String::new(),
        };
        let own = local
            .as_ref()
            .filter(|e| !is_shared_copy(catalog, e.as_ref()));
        let registration = match shared.registration(T::KIND, name).await? {
            Some(r) if !r.removed => r,
            // Removed elsewhere, or never registered: this replica's own
            // upload is served; a copy of the removed one goes.
            _ if own.is_some() => return Ok(own.expect("checked").clone()),
            Some(_) => {
                if local.is_some() {
                    self.forget(catalog, name).await;
                }
                return Err(not_found());
            }
            None => return Err(not_found()),
        };
        if let Some(local) = local
            .as_ref()
            .filter(|e| e.share_id() == registration.content_id)
        {
            return Ok(local.clone());
        }
        if let Some(own) = own {
            return Err(Error::FailedPrecondition(format!(
                "{kind} {name} here is an upload never shared ({}) and another replica registered \
                 other content under its name ({}): remove or rename one of them",
                own.share_id(),
                registration.content_id,
                kind = T::KIND,
            )));
        }
        let staging = shared.fetch(catalog, &registration).await?;
        let (this, name, id) = (self.clone(), name.to_string(), registration.content_id);
        let fetched = tokio::task::spawn_blocking(move || -> Result<Arc<T>> {
            let catalog = T::catalog(&this);
            let at = catalog.uploads().join(&name);
            let entry = T::open(&this, &name, staging.dir(), at)?;
            if entry.share_id() != id {
                return Err(Error::unavailable(
                    crate::error::Unavailable::Changing,
                    format!(
                        "{} {name} in the store is not the registered one (being replaced?); retry",
                        T::KIND
                    ),
                ));
            }
            // Marked first: whatever stops the install, the copy here is
            // (still) a cache.
            mark_shared(catalog, &name)?;
            let uploading = || this.is_uploading(T::KIND, &name);
            catalog
                .install_fetched(staging, entry, uploading)?
                .ok_or_else(|| {
                    Error::unavailable(
                        crate::error::Unavailable::Changing,
                        format!(
                            "{} {name} is being uploaded through this replica; retry",
                            T::KIND
                        ),
                    )
                })
        })
        .await
        .map_err(|e| Error::join("fetch", e))??;
        self.trim().await;
        Ok(fetched)
    }

    /// Every entry of kind `T` as listings show it, by name. With shared
    /// uploads: the bundled ones, every registration's description (without
    /// fetching any: a listing costs one query, whatever `--uploads-bytes`
    /// keeps here) and this replica's uploads never shared; local copies of
    /// entries removed elsewhere are dropped on the way.
    pub async fn listing<T: Kind>(&self) -> Result<Vec<T::Info>> {
        let catalog = T::catalog(self);
        let Some(shared) = &self.shared else {
            return Ok(catalog.list().iter().map(|e| e.describe()).collect());
        };
        let registrations = shared.registrations(T::KIND).await?;
        let mut listed = std::collections::BTreeMap::new();
        for e in catalog.list() {
            let registered = registrations.iter().find(|r| r.name == e.name());
            let removed = registered.is_some_and(|r| r.removed);
            if catalog.is_bundled(&e) {
                listed.insert(e.name().to_string(), e.describe());
            } else if !is_shared_copy(catalog, e.as_ref()) && (registered.is_none() || removed) {
                // This replica's own upload, never shared.
                listed.insert(e.name().to_string(), e.describe());
            } else if removed {
                self.forget(catalog, e.name()).await;
            }
        }
        for r in registrations.into_iter().filter(|r| !r.removed) {
            if listed.contains_key(&r.name) {
                continue; // this replica's bundled entry of that name
            }
            match crate::database::decode_record::<T::Info>(&r.info) {
                Ok(mut info) => {
                    T::localize(self, &mut info);
                    listed.insert(r.name, info);
                }
                Err(err) => {
                    tracing::warn!(kind = T::KIND, name = %r.name, %err, "unreadable registration left out")
                }
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Model `name` as [`Self::model`] gives it, a NOT_FOUND naming the
    /// nearest registered names ("did you mean …?").
    pub async fn named_model(&self, name: &str) -> Result<Arc<LoadedModel>> {
        let found = self.model(name).await;
        self.suggest::<LoadedModel, _>(found).await
    }

    /// Dataset `name` as [`Self::dataset`] gives it, a NOT_FOUND naming the
    /// nearest registered names.
    pub async fn named_dataset(&self, name: &str) -> Result<Arc<LoadedDataset>> {
        let found = self.dataset(name).await;
        self.suggest::<LoadedDataset, _>(found).await
    }

    /// A NOT_FOUND of kind `T` with the nearest registered names added.
    pub(super) async fn suggest<T: Kind, V>(&self, found: Result<V>) -> Result<V> {
        match found {
            Err(Error::NotFound { kind, name, hint }) if hint.is_empty() => {
                let names: Vec<String> = self
                    .listing::<T>()
                    .await
                    .map(|infos| infos.iter().map(|i| T::info_name(i).to_string()).collect())
                    .unwrap_or_default();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let hint = crate::suggest::did_you_mean(&name, &names);
                Err(Error::NotFound { kind, name, hint })
            }
            other => other,
        }
    }

    /// Records that `kind` `name` was asked for now.
    pub(super) fn touch(&self, kind: &str, name: &str) {
        let mut used = self.last_use.lock().expect("last use lock");
        used.insert(format!("{kind}/{name}"), std::time::Instant::now());
    }
}
