//! How a report is kept in its row: the CBOR of [`domain::Report`] (row
//! format 1), with the row format in the `format` column so that a later
//! change of encoding can tell old rows from new ones. Rows of format 0,
//! which earlier releases wrote, are read through [`super::legacy`] and
//! rewritten once when the database is opened ([`migrate`]).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{db, legacy, ReportStore};
use crate::domain;
use crate::error::{Error, Result};

/// The format of the rows this release writes.
pub(super) const FORMAT: i64 = 1;

/// How many old rows one migration statement batch rewrites.
const BATCH: i64 = 200;

/// The bytes of `report`'s row.
pub(super) fn encode(report: &domain::Report) -> Result<Vec<u8>> {
    encode_record(report)
}

/// A domain record as the database keeps it (row format [`FORMAT`]): the
/// reports, and the descriptions of shared registrations.
pub fn encode_record<T: serde::Serialize>(record: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(record, &mut out)
        .map_err(|e| Error::store(format!("a record does not encode: {e}")))?;
    Ok(out)
}

/// A domain record [`encode_record`] wrote.
pub fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    ciborium::from_reader(bytes).map_err(|e| Error::store(format!("a record does not decode: {e}")))
}

/// The report of bytes of row format `format`.
pub(super) fn decode_bytes(format: i64, bytes: &[u8]) -> Result<domain::Report> {
    match format {
        0 => legacy::decode(bytes),
        FORMAT => decode_record(bytes),
        other => Err(Error::store(format!(
            "a report is stored in row format {other}, which a later release wrote: \
             run that release (or later) against this database"
        ))),
    }
}

/// The report of a row selected with its `format` and `report` columns.
pub(super) fn decode(row: &AnyRow) -> Result<domain::Report> {
    let format: i64 = row.try_get("format").map_err(db)?;
    let bytes: Vec<u8> = row.try_get("report").map_err(db)?;
    decode_bytes(format, &bytes)
}

/// Rewrites every row of format 0 in this release's format, a batch at a
/// time; how many it rewrote. A row a newer write replaced meanwhile (its
/// format no longer 0) is left as that write made it.
pub(super) async fn migrate(store: &ReportStore) -> Result<u64> {
    let mut done = 0;
    // Keyset order, so that a row that does not decode is passed, not
    // selected again.
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT id, format, report FROM evaluations WHERE format = 0 AND id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after.clone())
        .bind(BATCH)
        .fetch_all(store.pool())
        .await
        .map_err(db)?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id").map_err(db)?;
        for row in &rows {
            let id: String = row.try_get("id").map_err(db)?;
            let report = match decode(row) {
                Ok(report) => report,
                Err(err) => {
                    // Left as it is: reading it names the error again.
                    tracing::error!(%id, %err, "a report of an earlier release does not decode; left in its row");
                    continue;
                }
            };
            sqlx::query(
                "UPDATE evaluations SET report = $1, format = $2 WHERE id = $3 AND format = 0",
            )
            .bind(encode(&report)?)
            .bind(FORMAT)
            .bind(id)
            .execute(store.pool())
            .await
            .map_err(db)?;
            done += 1;
        }
    }
    if done > 0 {
        tracing::info!(
            rows = done,
            "reports of an earlier release rewritten as domain records"
        );
    }
    Ok(done + migrate_registrations(store).await?)
}

/// Rewrites every registration of format 0 (an earlier release's protobuf
/// description) as this release's record, as [`migrate`] does reports.
async fn migrate_registrations(store: &ReportStore) -> Result<u64> {
    let mut done = 0;
    let (mut kind, mut name) = (String::new(), String::new());
    loop {
        let rows = sqlx::query(
            "SELECT kind, name, info FROM registrations WHERE format = 0 \
             AND (kind > $1 OR (kind = $1 AND name > $2)) ORDER BY kind, name LIMIT $3",
        )
        .bind(kind.clone())
        .bind(name.clone())
        .bind(BATCH)
        .fetch_all(store.pool())
        .await
        .map_err(db)?;
        let Some(last) = rows.last() else { break };
        (kind, name) = (
            last.try_get("kind").map_err(db)?,
            last.try_get("name").map_err(db)?,
        );
        for row in &rows {
            let (k, n): (String, String) = (
                row.try_get("kind").map_err(db)?,
                row.try_get("name").map_err(db)?,
            );
            let info: Vec<u8> = row.try_get("info").map_err(db)?;
            let info = match super::legacy::registration_info(&k, &info) {
                Ok(info) => info,
                Err(err) => {
                    tracing::error!(kind = %k, name = %n, %err, "a registration of an earlier release does not decode; left in its row");
                    continue;
                }
            };
            sqlx::query(
                "UPDATE registrations SET info = $1, format = $2 \
                 WHERE kind = $3 AND name = $4 AND format = 0",
            )
            .bind(info)
            .bind(FORMAT)
            .bind(k)
            .bind(n)
            .execute(store.pool())
            .await
            .map_err(db)?;
            done += 1;
        }
    }
    if done > 0 {
        tracing::info!(
            rows = done,
            "registrations of an earlier release rewritten as domain records"
        );
    }
    Ok(done)
}
