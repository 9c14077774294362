//! Which content each uploaded model and dataset name holds, when replicas
//! share their uploads through an object store (`--data-url`): the
//! database is where a replica learns that another registered, replaced or
//! removed an entry ([`crate::registry::shared`]), and what listings show of
//! entries it has not fetched.

use sqlx::Row;

use super::{db, now_micros, ReportStore};
use crate::error::Result;

/// One registered entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Registry name.
    pub name: String,
    /// sha256 of what it holds.
    pub content_id: String,
    /// Its description as listings show it (an encoded ModelInfo or
    /// DatasetInfo).
    pub info: Vec<u8>,
}

impl ReportStore {
    /// Records that `kind` `name` now holds `content_id`, described by
    /// `info`.
    pub async fn record_registration(
        &self,
        kind: &str,
        name: &str,
        content_id: &str,
        info: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO registrations (kind, name, content_id, info, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, name) DO UPDATE SET \
             content_id = excluded.content_id, info = excluded.info, \
             updated_at = excluded.updated_at",
        )
        .bind(kind.to_string())
        .bind(name.to_string())
        .bind(content_id.to_string())
        .bind(info.to_vec())
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// The content `kind` `name` holds (None: not registered).
    pub async fn registration(&self, kind: &str, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT content_id FROM registrations WHERE kind = $1 AND name = $2")
            .bind(kind.to_string())
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| r.try_get("content_id").map_err(db)).transpose()
    }

    /// Every registration of `kind`, by name.
    pub async fn registrations(&self, kind: &str) -> Result<Vec<Registration>> {
        sqlx::query(
            "SELECT name, content_id, info FROM registrations WHERE kind = $1 ORDER BY name",
        )
        .bind(kind.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(Registration {
                name: r.try_get("name").map_err(db)?,
                content_id: r.try_get("content_id").map_err(db)?,
                info: r.try_get("info").map_err(db)?,
            })
        })
        .collect()
    }

    /// Forgets `kind` `name`.
    pub async fn remove_registration(&self, kind: &str, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM registrations WHERE kind = $1 AND name = $2")
            .bind(kind.to_string())
            .bind(name.to_string())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registrations_are_recorded_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        assert_eq!(store.registration("model", "a").await.unwrap(), None);
        for (kind, name, id, info) in [
            ("model", "a", "111", &b"first"[..]),
            ("model", "b", "222", b"b"),
            ("dataset", "a", "333", b"d"),
            ("model", "a", "444", b"second"),
        ] {
            store
                .record_registration(kind, name, id, info)
                .await
                .unwrap();
        }
        let registration = |name: &str, id: &str, info: &[u8]| Registration {
            name: name.into(),
            content_id: id.into(),
            info: info.to_vec(),
        };
        assert_eq!(
            store.registrations("model").await.unwrap(),
            [
                registration("a", "444", b"second"),
                registration("b", "222", b"b")
            ]
        );
        store.remove_registration("model", "a").await.unwrap();
        assert_eq!(store.registration("model", "a").await.unwrap(), None);
        assert_eq!(
            store.registration("dataset", "a").await.unwrap().as_deref(),
            Some("333")
        );
    }
}
