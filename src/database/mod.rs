//! The results store: evaluation reports in a database, SQLite in a file
//! under --data-dir by default (embedded, nothing to start), PostgreSQL when
//! --database-url postgres://… is given (several replicas can share it).
//! Migrations live in migrations/<backend>/ and are embedded in the binary.
//! Reports survive restarts. Jobs are rows too ([`jobs`]): every replica
//! sharing the database takes over the jobs of a replica that died. Which
//! jobs run, and their cancellation, belong to the engine (`jobs`);
//! the store keeps what it records.

use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use crate::domain::{ExcludedModel, Report, Status};
use crate::error::{Error, Result};
use records::decode;

pub use jobs::{now_micros, ClaimedJob, Hold, JobState, Lease, NewJob, Renewal};

/// Default page size of [`ReportStore::list`].
pub const DEFAULT_PAGE: usize = 50;

/// Largest page of [`ReportStore::list`].
pub const MAX_PAGE: usize = 1000;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new evaluation id: 32 hex characters, unique per process and time.
pub fn new_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = Sha256::digest(format!("{nanos}-{n}-{}", std::process::id()));
    hex::encode(&digest[..16])
}

/// A database error: UNAVAILABLE when the server cannot be reached (it
/// restarts, the network fails: a retry may succeed), RESOURCE_EXHAUSTED
/// when its volume is full (SQLite's SQLITE_FULL, PostgreSQL's disk_full,
/// 53100), else a store error. `file` is the SQLite file, whose volume the
/// message names.
fn db_error(err: sqlx::Error, file: Option<&std::path::Path>) -> Error {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => Error::unavailable(
            crate::error::Unavailable::Unreachable,
            format!("the results database cannot be reached ({err}); retry shortly"),
        ),
        sqlx::Error::Database(e)
            if e.code().is_some_and(|c| {
                // PostgreSQL: admin shutdown, crash shutdown, cannot connect
                // now, and a read-only transaction (a standby, before or
                // without its promotion).
                c == "57P01" || c == "57P02" || c == "57P03" || c == "25006"
            }) =>
        {
            Error::unavailable(
                crate::error::Unavailable::Unreachable,
                format!("the results database is restarting or failing over ({e}); retry shortly"),
            )
        }
        sqlx::Error::Database(e) if e.code().is_some_and(|c| volume_full(&c, file)) => {
            Error::ResourceExhausted(crate::volume::full_message(
                &format!("results database: {e}"),
                file,
                None,
            ))
        }
        other => Error::Store {
            message: other.to_string(),
            source: Some(Box::new(other)),
        },
    }
}

/// Whether a database error code says its volume is full: SQLite's
/// SQLITE_FULL (13), PostgreSQL's disk_full (53100), and SQLite's I/O
/// errors of a write (SQLITE_IOERR_WRITE 778, _FSYNC 1034, _TRUNCATE 1546,
/// _SHMSIZE 4874) where the file's volume has less than 1 MiB free.
fn volume_full(code: &str, file: Option<&std::path::Path>) -> bool {
    match code {
        "13" | "53100" => true,
        "778" | "1034" | "1546" | "4874" => file
            .and_then(crate::volume::space)
            .is_some_and(|s| s.free < 1 << 20),
        _ => false,
    }
}

/// [`db_error`] where no file is known.
fn db(err: sqlx::Error) -> Error {
    db_error(err, None)
}

/// The database behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Evaluation reports in a database.
pub struct ReportStore {
    /// The database's hosts (one, but for PostgreSQL with standbys) and
    /// the one written to.
    hosts: std::sync::Arc<hosts::Hosts>,
    backend: Backend,
    /// The SQLite file (`None` for PostgreSQL): its volume is named when full.
    file: Option<std::path::PathBuf>,
    /// When a connection last saw its file fail ([`Faults`]).
    faults: std::sync::Arc<Faults>,
}

/// The last time a database connection saw its file fail (a full volume,
/// an I/O error). SQLite may leave such a connection holding its lock (a
/// transaction it could neither commit nor roll back), so that every other
/// connection then finds the database locked until the process restarts.
/// Every connection that was open at that moment is closed instead of being
/// reused, as it is released or acquired; the pool opens fresh ones, so the
/// store works again as soon as there is room.
#[derive(Debug, Default)]
struct Faults {
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Faults {
    fn record(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// Whether a connection of this `age` was open at the last fault.
    fn saw(&self, age: std::time::Duration) -> bool {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|at| {
            std::time::Instant::now()
                .checked_sub(age)
                .is_none_or(|opened| opened <= at)
        })
    }
}

/// Whether an error means the database's file failed under a connection:
/// a full volume, or one of SQLite's I/O errors (SQLITE_IOERR, 10, and its
/// extended codes).
fn file_failed(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(e) => e.code().is_some_and(|c| {
            c == "53100" || c.parse::<i64>().is_ok_and(|n| n == 13 || n & 0xff == 10)
        }),
        _ => false,
    }
}

impl std::fmt::Debug for ReportStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("ReportStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Microseconds since the epoch of a report's creation (its sort key).
fn created_micros(report: &Report) -> i64 {
    report.created_at.map_or(0, |t| t.micros())
}

impl ReportStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or
    /// `postgres://…`), runs the migrations and marks evaluations left
    /// running by a previous process as failed.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Config(format!(
                "`database_url` must be sqlite://PATH or postgres://…, got {url:?}"
            )));
        };
        let faults = std::sync::Arc::new(Faults::default());
        let (on_release, on_acquire) = (faults.clone(), faults.clone());
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // A connection open when the file failed is not used again.
            .after_release(move |_, meta| {
                let keep = !on_release.saw(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .before_acquire(move |_, meta| {
                let keep = !on_acquire.saw(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            // A database that is down answers UNAVAILABLE within seconds.
            .acquire_timeout(std::time::Duration::from_secs(5));
        let cannot_open = |e: &dyn std::fmt::Display| {
            Error::Config(format!("cannot open the results database: {e}"))
        };
        let several = backend == Backend::Postgres
            && hosts::split(url).map_err(|e| cannot_open(&e))?.len() > 1;
        let hosts = if several {
            let hosts = hosts::Hosts::lazy(url, options).map_err(|e| cannot_open(&e))?;
            let writable = hosts
                .writable()
                .await
                .map_err(|why| cannot_open(&format!("none of its hosts accepts writes ({why})")))?;
            hosts.write_to(writable);
            hosts
        } else {
            let pool = options.connect(url).await.map_err(|e| cannot_open(&e))?;
            hosts::Hosts::one(url, pool)
        };
        let pool = hosts.pool().clone();
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| Error::Config(format!("results database migrations: {e}")))?;
        let file = (backend == Backend::Sqlite).then(|| {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            std::path::PathBuf::from(path.split('?').next().unwrap_or(path))
        });
        let store = Self {
            hosts: std::sync::Arc::new(hosts),
            backend,
            file,
            faults,
        };
        records::migrate(&store).await?;
        store.recover().await?;
        Ok(store)
    }

    /// The URL of the default store: an SQLite file in `data_dir`.
    pub fn default_url(data_dir: &std::path::Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("embedeval.db").display()
        )
    }

    /// Closes the connections (waiting for those in use).
    pub async fn close(&self) {
        for pool in self.hosts.pools() {
            pool.close().await
        }
    }

    /// The pool of the database (of the host written to, with standbys).
    fn pool(&self) -> &AnyPool {
        self.hosts.pool()
    }

    /// [`db_error`] with this store's file; a failure of the file is
    /// recorded ([`Faults`]).
    fn db(&self, err: sqlx::Error) -> Error {
        if file_failed(&err) {
            self.faults.record();
        }
        let closed = matches!(err, sqlx::Error::PoolClosed);
        let error = db_error(err, self.file.as_deref());
        if error.is_transient() && !closed {
            // With standbys: perhaps a failover; find the writable host.
            self.hosts.follow();
        }
        error
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Marks evaluations left queued or running by a process that stopped
    /// and that belong to no job as failed. Those of a job are the job's
    /// replica's, or the one that takes the job over ([`jobs`]): opening
    /// the database never touches another replica's work.
    async fn recover(&self) -> Result<()> {
        let rows = sqlx::query(
            "SELECT format, report FROM evaluations WHERE (status = $1 OR status = $2) \
             AND id NOT IN (SELECT evaluation_id FROM job_members)",
        )
        .bind(i64::from(Status::Running.code()))
        .bind(i64::from(Status::Queued.code()))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        for row in rows {
            let mut report = decode(&row)?;
            report.status = Status::Failed;
            report.error = "interrupted: the server stopped before the evaluation finished".into();
            tracing::warn!(id = %report.id, model = %report.model, "evaluation interrupted by a restart; marked failed");
            self.save(&report).await?;
        }
        Ok(())
    }

    /// Stores `report` as it is now (inserted, or replacing the stored one).
    pub async fn save(&self, report: &Report) -> Result<()> {
        self.write_report(report, None).await.map(|_| ())
    }

    /// Inserts or replaces `report`; with `fence`, only while that lease
    /// holds its job. Whether it was written.
    async fn write_report(&self, report: &Report, fence: Option<&Lease>) -> Result<bool> {
        // `WHERE EXISTS` also keeps SQLite from reading ON CONFLICT as a
        // join clause. On PostgreSQL the job row is share-locked: a claim
        // in flight (FOR UPDATE) makes the write wait for it and check the
        // holder again, so a job taken over is never written by its old
        // holder after the claim. SQLite has one writer at a time.
        let lock = match self.backend {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        let source = match fence {
            None => "VALUES ($1, $2, $3, $4, $5, $6, $7)".to_string(),
            Some(_) => format!(
                "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS \
                 (SELECT 1 FROM jobs WHERE id = $8 AND owner = $9 AND attempt = $10{lock})"
            ),
        };
        let sql = format!(
            "INSERT INTO evaluations (id, model, dataset, status, created_at, format, report) \
             {source} ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             format = excluded.format, report = excluded.report"
        );
        let mut query = sqlx::query(&sql)
            .bind(report.id.clone())
            .bind(report.model.clone())
            .bind(report.dataset.clone())
            .bind(i64::from(report.status.code()))
            .bind(created_micros(report))
            .bind(records::FORMAT)
            .bind(records::encode(report)?);
        if let Some(lease) = fence {
            query = query
                .bind(lease.job_id.clone())
                .bind(lease.owner.clone())
                .bind(lease.attempt);
        }
        let done = query.execute(self.pool()).await.map_err(|e| self.db(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// One report by id.
    pub async fn get(&self, id: &str) -> Result<Report> {
        let row = sqlx::query("SELECT format, report FROM evaluations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?
            .ok_or_else(|| Error::NotFound {
                kind: "evaluation",
                name: id.to_string(),
                hint: String::new(),
            })?;
        decode(&row)
    }

    /// Removes the report `id` once it has ended: NOT_FOUND when there is
    /// none, FAILED_PRECONDITION while it is queued or running (one
    /// statement, so that a job's write cannot slip between the check and
    /// the removal).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM evaluations WHERE id = $1 AND status NOT IN ($2, $3)")
            .bind(id.to_string())
            .bind(i64::from(Status::Queued.code()))
            .bind(i64::from(Status::Running.code()))
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let report = self.get(id).await?;
        Err(Error::FailedPrecondition(format!(
            "evaluation {id} is {}: cancel it first (evaluations cancel {id})",
            report.status.name()
        )))
    }

    /// Records that comparison `id` on `dataset` made the evaluations `ids`,
    /// in this order.
    pub async fn save_comparison(
        &self,
        id: &str,
        dataset: &str,
        created_micros: i64,
        ids: &[String],
        excluded: &[ExcludedModel],
    ) -> Result<()> {
        let excluded: Vec<[&str; 4]> = excluded
            .iter()
            .map(|e| [e.model.as_str(), &e.kind, &e.reason, &e.same_as])
            .collect();
        let excluded = serde_json::to_string(&excluded)
            .map_err(|e| Error::store(format!("encode a comparison's excluded models: {e}")))?;
        sqlx::query(
            "INSERT INTO comparisons (id, dataset, created_at, evaluation_ids, excluded) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(dataset.to_string())
        .bind(created_micros)
        .bind(ids.join(","))
        .bind(excluded)
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// The evaluation ids of comparison `id`, in the order of its request
    /// (None when no comparison has this id).
    pub async fn comparison(&self, id: &str) -> Result<Option<Vec<String>>> {
        let row = sqlx::query("SELECT evaluation_ids FROM comparisons WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(match row {
            None => None,
            Some(row) => Some(split_ids(
                &row.try_get::<String, _>("evaluation_ids")
                    .map_err(|e| self.db(e))?,
            )),
        })
    }

    /// The stored comparisons, newest first: (id, dataset, created at in
    /// microseconds, evaluation ids, number of models left out), a page of
    /// at most `page_size` (0: the default) from `page_token`, and the
    /// next page's token ("" on the last page).
    pub async fn comparisons(
        &self,
        dataset: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<StoredComparison>, String)> {
        let (offset, size) = page(page_size, page_token)?;
        let rows = sqlx::query(
            "SELECT id, dataset, created_at, evaluation_ids, excluded FROM comparisons \
             WHERE ($1 = '' OR dataset = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(dataset.to_string())
        .bind(size as i64 + 1)
        .bind(offset)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        let more = rows.len() > size;
        let page = rows
            .iter()
            .take(size)
            .map(|row| {
                let ids: String = row.try_get("evaluation_ids").map_err(|e| self.db(e))?;
                let excluded: String = row.try_get("excluded").map_err(|e| self.db(e))?;
                let excluded: Vec<serde_json::Value> =
                    serde_json::from_str(&excluded).unwrap_or_default();
                Ok(StoredComparison {
                    id: row.try_get("id").map_err(|e| self.db(e))?,
                    dataset: row.try_get("dataset").map_err(|e| self.db(e))?,
                    created_micros: row.try_get("created_at").map_err(|e| self.db(e))?,
                    evaluation_ids: split_ids(&ids),
                    num_excluded: excluded.len(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next = next_token(offset, page.len(), more);
        Ok((page, next))
    }

    /// Removes comparison `id` (its evaluations stay); NOT_FOUND when there
    /// is none.
    pub async fn delete_comparison(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM comparisons WHERE id = $1")
            .bind(id.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "comparison",
                name: id.to_string(),
                hint: String::new(),
            });
        }
        Ok(())
    }

    /// The models comparison `id` left out, with why (empty when none, or
    /// when there is no such comparison).
    pub async fn comparison_excluded(&self, id: &str) -> Result<Vec<ExcludedModel>> {
        let row = sqlx::query("SELECT excluded FROM comparisons WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let text: String = row.try_get("excluded").map_err(|e| self.db(e))?;
        let entries: Vec<[String; 4]> = serde_json::from_str(&text)
            .map_err(|e| Error::store(format!("a stored comparison's excluded models: {e}")))?;
        Ok(entries
            .into_iter()
            .map(|[model, kind, reason, same_as]| ExcludedModel {
                model,
                kind,
                reason,
                same_as,
            })
            .collect())
    }

    /// The reports an id stands for: a comparison's rows (in its order; a
    /// row no longer stored is left out), or the one report of an
    /// evaluation id. NOT_FOUND when it is neither.
    pub async fn reports_of(&self, id: &str) -> Result<Vec<Report>> {
        match self.comparison(id).await? {
            Some(ids) => self.reports(&ids).await,
            None => match self.get(id).await {
                Err(Error::NotFound { .. }) => Err(Error::NotFound {
                    kind: "comparison or evaluation",
                    name: id.to_string(),
                    hint: String::new(),
                }),
                other => other.map(|r| vec![r]),
            },
        }
    }

    /// The reports of evaluations `ids`, in that order, in one query; an id
    /// with no report (deleted since) is left out.
    pub async fn reports(&self, ids: &[String]) -> Result<Vec<Report>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, format, report FROM evaluations WHERE id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.clone());
        }
        let rows = query.fetch_all(self.pool()).await.map_err(|e| self.db(e))?;
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(|e| self.db(e))?;
            by_id.insert(id, decode(row)?);
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// Reports newest first, filtered by model and dataset (empty: any);
    /// `page_token` is the offset the previous page returned.
    pub async fn list(
        &self,
        model: &str,
        dataset: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<Report>, String)> {
        let (offset, size) = page(page_size, page_token)?;
        // One more row than asked tells whether another page follows.
        let rows = sqlx::query(
            "SELECT format, report FROM evaluations \
             WHERE ($1 = '' OR model = $1) AND ($2 = '' OR dataset = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(model.to_string())
        .bind(dataset.to_string())
        .bind(size as i64 + 1)
        .bind(offset)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        let more = rows.len() > size;
        let page = rows
            .iter()
            .take(size)
            .map(decode)
            .collect::<Result<Vec<_>>>()?;
        let next = next_token(offset, page.len(), more);
        Ok((page, next))
    }
}

/// A comparison's stored evaluation ids (comma-separated) as a list.
fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A listing's page: its offset from `page_token` ("" is the first page;
/// INVALID_ARGUMENT for one no response gave) and its size from
/// `page_size` (0: [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
fn page(page_size: usize, page_token: &str) -> Result<(i64, usize)> {
    let offset: i64 = if page_token.is_empty() {
        0
    } else {
        page_token
            .parse()
            .ok()
            .filter(|v: &i64| *v >= 0)
            .ok_or_else(|| Error::InvalidArgument(format!("bad page_token {page_token:?}")))?
    };
    let size = match page_size {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    Ok((offset, size))
}

/// The token of the page after one of `len` rows at `offset` ("" when no
/// `more` rows follow).
fn next_token(offset: i64, len: usize, more: bool) -> String {
    if more {
        (offset + len as i64).to_string()
    } else {
        String::new()
    }
}

/// A stored comparison as [`ReportStore::comparisons`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredComparison {
    /// Its id.
    pub id: String,
    /// The dataset it compared on.
    pub dataset: String,
    /// When it was made, in microseconds since the Unix epoch.
    pub created_micros: i64,
    /// The evaluations it made, in the order of its request.
    pub evaluation_ids: Vec<String>,
    /// How many models it left out.
    pub num_excluded: usize,
}

mod hosts;
pub mod jobs;
mod legacy;
pub use legacy::legacy_spec;
pub mod notices;
mod reads;
mod records;
pub use records::{decode_record, encode_record};

pub use reads::Reports;
mod registrations;
pub use registrations::{Recorded, Registration};

#[cfg(test)]
mod postgres_test;

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, model: &str, micros: i64) -> Report {
        Report {
            id: id.into(),
            model: model.into(),
            dataset: "d".into(),
            status: Status::Running,
            created_at: Some(crate::domain::Timestamp::from_micros(micros)),
            ..Default::default()
        }
    }

    /// The behaviour every backend must have.
    async fn exercise(store: &ReportStore) {
        for i in 0..5 {
            store
                .save(&report(
                    &format!("r{i}"),
                    if i % 2 == 0 { "a" } else { "b" },
                    1000 + i,
                ))
                .await
                .unwrap();
        }
        let ids = |page: &[Report]| page.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let (page, next) = store.list("", "", 2, "").await.unwrap();
        assert_eq!(ids(&page), ["r4", "r3"]);
        let (page, next) = store.list("", "", 2, &next).await.unwrap();
        assert_eq!(ids(&page), ["r2", "r1"]);
        let (page, next) = store.list("", "", 2, &next).await.unwrap();
        assert_eq!((ids(&page), next.as_str()), (vec!["r0".to_string()], ""));
        let (page, _) = store.list("a", "", 0, "").await.unwrap();
        assert_eq!(ids(&page), ["r4", "r2", "r0"]);
        assert!(store.list("", "", 0, "x").await.is_err());

        store.save(&report("c", "a", 2000)).await.unwrap();
        let mut done = report("c", "a", 2000);
        done.status = Status::Completed;
        done.uniformity = Some(3.5);
        store.save(&done).await.unwrap();
        assert_eq!(store.get("c").await.unwrap(), done);
        assert!(matches!(
            store.get("nope").await,
            Err(Error::NotFound { .. })
        ));
        assert_ne!(new_id(), new_id());

        let ids = ["r3".to_string(), "c".to_string()];
        let excluded = [crate::domain::ExcludedModel {
            model: "m".into(),
            kind: "duplicate".into(),
            reason: "the same ONNX file and preprocessing as n".into(),
            same_as: "n".into(),
        }];
        store
            .save_comparison("cmp", "d", 3000, &ids, &excluded)
            .await
            .unwrap();
        assert_eq!(store.comparison_excluded("cmp").await.unwrap(), excluded);
        assert_eq!(store.comparison("cmp").await.unwrap(), Some(ids.to_vec()));
        assert_eq!(store.comparison("r3").await.unwrap(), None);
        let rows = store.reports_of("cmp").await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["r3", "c"]
        );
        assert_eq!(store.reports_of("c").await.unwrap(), vec![done]);
        // In the order asked, one query; an id with no report left out.
        let asked = ["c".to_string(), "gone".into(), "r3".into()];
        let rows = store.reports(&asked).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["c", "r3"]
        );
        assert!(store.reports(&[]).await.unwrap().is_empty());
        assert!(matches!(
            store.reports_of("nope").await,
            Err(Error::NotFound { .. })
        ));

        // Listed newest first, page by page, filtered by dataset; removed
        // by id, its evaluations kept.
        store
            .save_comparison("cmp2", "e", 4000, &ids[..1], &[])
            .await
            .unwrap();
        let (all, next) = store.comparisons("", 0, "").await.unwrap();
        assert_eq!(next, "");
        let listed: Vec<(&str, &str, i64, usize, usize)> = all
            .iter()
            .map(|c| {
                (
                    c.id.as_str(),
                    c.dataset.as_str(),
                    c.created_micros,
                    c.evaluation_ids.len(),
                    c.num_excluded,
                )
            })
            .collect();
        assert_eq!(
            listed,
            [("cmp2", "e", 4000, 1, 0), ("cmp", "d", 3000, 2, 1)]
        );
        let (page, next) = store.comparisons("", 1, "").await.unwrap();
        assert_eq!((page[0].id.as_str(), next.as_str()), ("cmp2", "1"));
        let (page, next) = store.comparisons("", 1, &next).await.unwrap();
        assert_eq!((page[0].id.as_str(), next.as_str()), ("cmp", ""));
        let (on_d, _) = store.comparisons("d", 0, "").await.unwrap();
        assert_eq!(on_d.len(), 1);
        assert!(store.comparisons("", 0, "x").await.is_err());
        store.delete_comparison("cmp2").await.unwrap();
        assert!(matches!(
            store.delete_comparison("cmp2").await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(store.comparison("cmp2").await.unwrap(), None);
        assert!(store.get("r3").await.is_ok(), "its evaluations stay");
    }

    #[tokio::test]
    async fn sqlite_store_keeps_reports_across_reopening_and_fails_interrupted_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = ReportStore::default_url(dir.path());
        let store = ReportStore::open(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        exercise(&store).await;
        drop(store);
        // Reopen: the reports are there; the ones left running are failed.
        let store = ReportStore::open(&url).await.unwrap();
        let done = store.get("c").await.unwrap();
        assert_eq!(done.status, Status::Completed);
        let interrupted = store.get("r1").await.unwrap();
        assert_eq!(interrupted.status, Status::Failed);
        assert!(interrupted.error.contains("interrupted"));
        assert!(ReportStore::open("mysql://x").await.is_err());
    }

    #[tokio::test]
    async fn postgres_store_rides_out_a_server_restart() {
        let pg = super::postgres_test::TestPostgres::start();
        let store = ReportStore::open(&pg.url).await.unwrap();
        store.save(&report("a", "m", 1)).await.unwrap();
        pg.stop();
        let err = store.get("a").await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("retry"), "{err}");
        pg.start_again();
        // The pool replaces its closed connections.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let back = loop {
            match store.get("a").await {
                Ok(r) => break r,
                Err(Error::Unavailable { .. }) if std::time::Instant::now() < until => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(back.id, "a");
        store.pool().close().await;
    }

    #[tokio::test]
    async fn postgres_store_behaves_the_same_and_fails_interrupted_ones() {
        let pg = super::postgres_test::TestPostgres::start();
        let store = ReportStore::open(&pg.url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        exercise(&store).await;
        drop(store);
        let store = ReportStore::open(&pg.url).await.unwrap();
        assert_eq!(store.get("c").await.unwrap().status, Status::Completed);
        assert_eq!(store.get("r3").await.unwrap().status, Status::Failed);
        store.pool().close().await;
    }
}
