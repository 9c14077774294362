//! Which content each uploaded model and dataset name holds, when replicas
//! share their uploads through an object store (`--data-url`): the
//! database is where a replica learns that another registered, replaced or
//! removed an entry (the registry's `shared` module), and what listings show of
//! entries it has not fetched. A removed name keeps its row, marked removed:
//! a replica can tell a local copy of an entry removed elsewhere (drop it)
//! from an upload that was never shared (share it, never drop it).

use sqlx::Row;

use super::{db, now_micros, ReportStore};
use crate::error::Result;

/// One registered (or removed) entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Registry name.
    pub name: String,
    /// What it holds: its files and its description (held, when removed).
    pub content_id: String,
    /// The store folder of its files (one per upload).
    pub folder: String,
    /// Its description as listings show it: a `domain::ModelInfo` or
    /// `domain::DatasetInfo` as [`super::encode_record`] writes it (one
    /// an earlier release wrote is converted when read).
    pub info: Vec<u8>,
    /// Whether the name was removed.
    pub removed: bool,
}

/// What recording a registration did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Recorded; with the store folder of the upload it replaced, when a
    /// replace did (its files can go).
    Done {
        /// The folder replaced.
        previous: Option<String>,
    },
    /// Not recorded: the name holds this content (registered meanwhile
    /// through another replica).
    Taken(String),
}

impl ReportStore {
    /// Records that `kind` `name` now holds `content_id`, in store folder
    /// `folder`, described by `info`. Without `replace` only a free name
    /// (never registered, or removed) is taken, in one statement: of two
    /// replicas registering one name at once, one gets
    /// [`Recorded::Taken`].
    pub async fn record_registration(
        &self,
        kind: &str,
        name: &str,
        content_id: &str,
        folder: &str,
        info: &[u8],
        replace: bool,
    ) -> Result<Recorded> {
        // What a replace replaces: read apart from the write (one statement
        // each, no transaction to upgrade on SQLite). Of two replaces at
        // once, the files of the one that lost are only garbage.
        let before = match replace {
            true => self.registration(kind, name).await?.filter(|r| !r.removed),
            false => None,
        };
        let only_free = if replace {
            ""
        } else {
            " WHERE registrations.removed = 1"
        };
        let done = sqlx::query(&format!(
            "INSERT INTO registrations \
             (kind, name, content_id, folder, info, updated_at, removed, format) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT (kind, name) DO UPDATE SET \
             content_id = excluded.content_id, folder = excluded.folder, info = excluded.info, \
             updated_at = excluded.updated_at, removed = 0, format = excluded.format{only_free}"
        ))
        .bind(kind.to_string())
        .bind(name.to_string())
        .bind(content_id.to_string())
        .bind(folder.to_string())
        .bind(info.to_vec())
        .bind(now_micros())
        .bind(super::records::FORMAT)
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        if done.rows_affected() == 0 {
            let held = self.registration(kind, name).await?;
            return Ok(Recorded::Taken(
                held.map(|r| r.content_id).unwrap_or_default(),
            ));
        }
        Ok(Recorded::Done {
            previous: before.map(|r| r.folder).filter(|f| f != folder),
        })
    }

    /// `kind` `name` as registered or removed (None: never registered).
    pub async fn registration(&self, kind: &str, name: &str) -> Result<Option<Registration>> {
        let row = sqlx::query(
            "SELECT kind, name, content_id, folder, info, removed, format FROM registrations \
             WHERE kind = $1 AND name = $2",
        )
        .bind(kind.to_string())
        .bind(name.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        row.as_ref().map(registration).transpose()
    }

    /// Every registration of `kind`, removed ones included, by name.
    pub async fn registrations(&self, kind: &str) -> Result<Vec<Registration>> {
        sqlx::query(
            "SELECT kind, name, content_id, folder, info, removed, format FROM registrations \
             WHERE kind = $1 ORDER BY name",
        )
        .bind(kind.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db(e))?
        .iter()
        .map(registration)
        .collect()
    }

    /// Marks `kind` `name` removed; the store folder of what it held (None
    /// when it was not registered).
    pub async fn remove_registration(&self, kind: &str, name: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE registrations SET removed = 1, updated_at = $3 \
             WHERE kind = $1 AND name = $2 AND removed = 0 RETURNING folder",
        )
        .bind(kind.to_string())
        .bind(name.to_string())
        .bind(now_micros())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        row.map(|r| r.try_get("folder").map_err(|e| self.db(e)))
            .transpose()
    }
}

/// A registrations row; a description that an earlier release's replica
/// wrote after this database was migrated (format 0) is converted.
fn registration(r: &sqlx::any::AnyRow) -> Result<Registration> {
    let info: Vec<u8> = r.try_get("info").map_err(db)?;
    let info = match r.try_get::<i64, _>("format").map_err(db)? {
        0 => super::legacy::registration_info(&r.try_get::<String, _>("kind").map_err(db)?, &info)?,
        _ => info,
    };
    Ok(Registration {
        name: r.try_get("name").map_err(db)?,
        content_id: r.try_get("content_id").map_err(db)?,
        folder: r.try_get("folder").map_err(db)?,
        info,
        removed: r.try_get::<i64, _>("removed").map_err(db)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registration tests on `store` (either backend).
    async fn registrations_behave(store: &ReportStore) {
        // Content `id` uploaded to folder `id`-f.
        let record = |name: &'static str, id: &'static str, replace| async move {
            store
                .record_registration(
                    "model",
                    name,
                    id,
                    &format!("{id}-f"),
                    id.as_bytes(),
                    replace,
                )
                .await
                .unwrap()
        };
        assert_eq!(store.registration("model", "a").await.unwrap(), None);
        assert_eq!(
            record("a", "111", false).await,
            Recorded::Done { previous: None }
        );
        assert_eq!(
            record("b", "222", false).await,
            Recorded::Done { previous: None }
        );
        store
            .record_registration("dataset", "a", "333", "333-f", b"d", false)
            .await
            .unwrap();
        // A taken name is refused without replace, and replaced with it.
        assert_eq!(
            record("a", "444", false).await,
            Recorded::Taken("111".into())
        );
        assert_eq!(
            record("a", "444", true).await,
            Recorded::Done {
                previous: Some("111-f".into())
            }
        );
        assert_eq!(
            record("a", "444", true).await,
            Recorded::Done { previous: None }
        );
        let row = |name: &str, id: &str, removed| Registration {
            name: name.into(),
            content_id: id.into(),
            folder: format!("{id}-f"),
            info: id.as_bytes().to_vec(),
            removed,
        };
        assert_eq!(
            store.registrations("model").await.unwrap(),
            [row("a", "444", false), row("b", "222", false)]
        );
        // Removed: kept, marked; the name is free again.
        assert_eq!(
            store
                .remove_registration("model", "a")
                .await
                .unwrap()
                .as_deref(),
            Some("444-f")
        );
        assert_eq!(store.remove_registration("model", "a").await.unwrap(), None);
        assert_eq!(
            store.registration("model", "a").await.unwrap(),
            Some(row("a", "444", true))
        );
        assert_eq!(
            record("a", "555", false).await,
            Recorded::Done { previous: None }
        );
        assert_eq!(
            store.registration("model", "a").await.unwrap(),
            Some(row("a", "555", false))
        );
        let dataset = store.registration("dataset", "a").await.unwrap().unwrap();
        assert_eq!(dataset.content_id, "333");
    }

    #[tokio::test]
    async fn registrations_are_recorded_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        registrations_behave(&store).await;
    }

    #[tokio::test]
    async fn postgres_registrations_are_recorded_replaced_and_removed() {
        let pg = super::super::postgres_test::TestPostgres::start();
        let store = ReportStore::open(&pg.url).await.unwrap();
        registrations_behave(&store).await;
        // Of concurrent registrations of one new name, one is recorded.
        let tries = (0..6).map(|i| {
            let store = &store;
            async move {
                let id = format!("c{i}");
                store
                    .record_registration("model", "race", &id, &id, b"", false)
                    .await
                    .unwrap()
            }
        });
        let outcomes = futures::future::join_all(tries).await;
        let recorded = outcomes
            .iter()
            .filter(|o| matches!(o, Recorded::Done { .. }))
            .count();
        assert_eq!(recorded, 1, "{outcomes:?}");
    }
}
