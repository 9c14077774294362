//! Which content each uploaded model and dataset name holds, when replicas
//! share their uploads through an object store (`--data-url`): the
//! database is where a replica learns that another registered, replaced or
//! removed an entry ([`crate::registry::shared`]).

use sqlx::Row;

use super::{db, now_micros, ReportStore};
use crate::error::Result;

impl ReportStore {
    /// Records that `kind` `name` now holds `content_id`.
    pub async fn record_registration(
        &self,
        kind: &str,
        name: &str,
        content_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO registrations (kind, name, content_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, name) DO UPDATE SET content_id = excluded.content_id, \
             updated_at = excluded.updated_at",
        )
        .bind(kind.to_string())
        .bind(name.to_string())
        .bind(content_id.to_string())
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

    /// Every registration of `kind`: (name, content id), by name.
    pub async fn registrations(&self, kind: &str) -> Result<Vec<(String, String)>> {
        sqlx::query("SELECT name, content_id FROM registrations WHERE kind = $1 ORDER BY name")
            .bind(kind.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("name").map_err(db)?,
                    r.try_get("content_id").map_err(db)?,
                ))
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
        store
            .record_registration("model", "a", "111")
            .await
            .unwrap();
        store
            .record_registration("model", "b", "222")
            .await
            .unwrap();
        store
            .record_registration("dataset", "a", "333")
            .await
            .unwrap();
        store
            .record_registration("model", "a", "444")
            .await
            .unwrap();
        assert_eq!(
            store.registrations("model").await.unwrap(),
            [
                ("a".to_string(), "444".to_string()),
                ("b".to_string(), "222".to_string())
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
