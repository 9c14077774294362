//! The job queue in the results database: one row per submitted job with
//! the request that rebuilds it, the replica that holds it (`owner`), the
//! attempt it is on and until when its lease holds. The holder renews the
//! lease by heartbeat and records its progress there. Another replica with
//! a free slot claims, with `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL;
//! SQLite has one writer and needs no lock), a job whose lease lapsed (its
//! replica died) or a detached job still waiting for a slot on its replica
//! (work stealing), and runs it. Every write of a job's reports is fenced by
//! (owner, attempt): a replica that lost the job records nothing more, so an
//! evaluation is recorded COMPLETED once.
//!
//! Leases are set and compared by the database's clock alone
//! ([`Backend::clock`]), never a replica's: a replica whose clock runs a
//! minute ahead would otherwise take live jobs as lapsed, and one a minute
//! behind would keep a dead replica's jobs waiting a minute longer. A
//! replica's own timers (heartbeats, the claim loop) are monotonic intervals.
//! With standbys the clock is the primary's, so a failover compares leases
//! written by the old primary's clock with the new one's: run the database
//! hosts with synchronised clocks (NTP), as PostgreSQL replication expects.

use std::time::Duration;

use sqlx::Row;

use super::{created_micros, Backend, ReportStore};
use crate::domain::Report;
use crate::error::Result;

/// Microseconds since the epoch, now, by this process's clock (for records'
/// creation times; never for leases).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

impl Backend {
    /// The database's clock, in microseconds since the epoch, as an SQL
    /// expression. PostgreSQL's `clock_timestamp()` is one clock for every
    /// replica; SQLite's `julianday('now')` is the host's, which is every
    /// replica's, since replicas share an SQLite file only on one host.
    pub fn clock(self) -> &'static str {
        match self {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
        }
    }
}

/// A replica's hold on a job: the writes it fences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job.
    pub job_id: String,
    /// The replica that holds it.
    pub owner: String,
    /// Which claim of the job this is (1 at submission, one more at each
    /// hand-over).
    pub attempt: i64,
}

/// A job to store at admission.
#[derive(Debug)]
pub struct NewJob<'a> {
    /// Its id (the first evaluation id).
    pub id: &'a str,
    /// "model", "embeddings" or "compare".
    pub kind: &'a str,
    /// The encoded request that rebuilds it elsewhere (None: cannot be).
    pub request: Option<Vec<u8>>,
    /// Whether it runs without its submitter.
    pub detached: bool,
    /// The replica admitting it.
    pub owner: &'a str,
    /// How long its lease holds without a heartbeat.
    pub lease: Duration,
}

/// A job taken over from a replica whose lease lapsed.
#[derive(Debug)]
pub struct ClaimedJob {
    /// The new hold on it.
    pub lease: Lease,
    /// "model", "embeddings" or "compare".
    pub kind: String,
    /// The request that rebuilds it (None: cannot be rebuilt).
    pub request: Option<Vec<u8>>,
    /// Whether it was submitted detached.
    pub detached: bool,
    /// Whether a CancelEvaluation asked it to stop.
    pub cancel_requested: bool,
    /// The replica that held it before.
    pub previous_owner: String,
    /// Its evaluations, in order.
    pub members: Vec<String>,
    /// The hold it had before, to give the job back with
    /// ([`ReportStore::unclaim`]).
    pub previous: Hold,
    /// Whether it was taken from a live replica that had it waiting (work
    /// stealing) rather than from one whose lease lapsed.
    pub stolen: bool,
}

/// A replica's hold on a job as the database had it.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The replica's lease.
    pub lease: Lease,
    /// When it ends (microseconds since the epoch).
    pub until: i64,
    /// Whether the replica had given the job a slot.
    pub started: bool,
}

/// What any replica can read of a job.
#[derive(Debug, Clone)]
pub struct JobState {
    /// The job.
    pub id: String,
    /// The replica that holds it.
    pub owner: String,
    /// Which claim of the job holds it (1: the admitting replica's).
    pub attempt: i64,
    /// Whether it has ended.
    pub done: bool,
    /// Its latest progress, encoded (see the engine's queue).
    pub progress: Option<Vec<u8>>,
}

/// A renewal's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease holds on; whether a cancellation was asked for.
    Held {
        /// CancelEvaluation reached the job through the database.
        cancel_requested: bool,
    },
    /// Another replica holds the job now.
    Lost,
}

impl ReportStore {
    /// Stores a job, its QUEUED (or SKIPPED) reports and which evaluations
    /// it has, in one transaction; the lease of the replica admitting it.
    pub async fn create_job(&self, job: &NewJob<'_>, reports: &[Report]) -> Result<Lease> {
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        for report in reports {
            sqlx::query(
                "INSERT INTO evaluations (id, model, dataset, status, created_at, format, report) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(report.id.clone())
            .bind(report.model.clone())
            .bind(report.dataset.clone())
            .bind(i64::from(report.status.code()))
            .bind(created_micros(report))
            .bind(super::records::FORMAT)
            .bind(super::records::encode(report)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        }
        for (position, report) in reports.iter().enumerate() {
            sqlx::query(
                "INSERT INTO job_members (evaluation_id, job_id, position) VALUES ($1, $2, $3)",
            )
            .bind(report.id.clone())
            .bind(job.id.to_string())
            .bind(position as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        }
        let clock = self.backend.clock();
        sqlx::query(&format!(
            "INSERT INTO jobs (id, kind, request, detached, owner, attempt, lease_until, \
             cancel_requested, done, progress, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, {clock} + $6, 0, 0, NULL, {clock})"
        ))
        .bind(job.id.to_string())
        .bind(job.kind.to_string())
        .bind(job.request.clone())
        .bind(i64::from(job.detached))
        .bind(job.owner.to_string())
        .bind(micros(job.lease))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(Lease {
            job_id: job.id.to_string(),
            owner: job.owner.to_string(),
            attempt: 1,
        })
    }

    /// Stores `report` if `lease` still holds its job; `Ok(false)` when
    /// another replica holds it now (nothing is written).
    pub async fn save_fenced(&self, report: &Report, lease: &Lease) -> Result<bool> {
        self.write_report(report, Some(lease)).await
    }

    /// Extends `lease` by `length` from now and records `progress` (when
    /// given); whether it still holds and whether a cancellation was asked.
    pub async fn renew(
        &self,
        lease: &Lease,
        length: Duration,
        progress: Option<Vec<u8>>,
    ) -> Result<Renewal> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET lease_until = {} + $1, progress = COALESCE($2, progress) \
             WHERE id = $3 AND owner = $4 AND attempt = $5 RETURNING cancel_requested",
            self.backend.clock()
        ))
        .bind(micros(length))
        .bind(progress)
        .bind(lease.job_id.clone())
        .bind(lease.owner.clone())
        .bind(lease.attempt)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(match row {
            None => Renewal::Lost,
            Some(row) => Renewal::Held {
                cancel_requested: row
                    .try_get::<i64, _>("cancel_requested")
                    .map_err(|e| self.db(e))?
                    != 0,
            },
        })
    }

    /// Marks the job of `lease` ended (if the lease still holds it).
    pub async fn finish_job(&self, lease: &Lease) -> Result<()> {
        self.update_held(lease, "done = 1").await.map(|_| ())
    }

    /// Sets `set` on the open job of `lease` if the lease still holds it;
    /// whether it did.
    async fn update_held(&self, lease: &Lease, set: &str) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET {set} WHERE id = $1 AND owner = $2 AND attempt = $3 AND done = 0"
        ))
        .bind(lease.job_id.clone())
        .bind(lease.owner.clone())
        .bind(lease.attempt)
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes, for `owner` with a lease of `length`, the oldest open job
    /// whose lease lapsed or, failing one and with `steal`, the oldest
    /// detached job another replica holds but has not started; None when
    /// there is none. Two
    /// replicas never take the same claim: PostgreSQL skips the rows
    /// another transaction locked, SQLite has one writer at a time; and a
    /// holder that starts the job at the same moment finds it gone
    /// ([`ReportStore::mark_started`]).
    ///
    /// Jobs in `skip` are left alone (ones this replica could not rebuild).
    pub async fn claim(
        &self,
        owner: &str,
        length: Duration,
        steal: bool,
        skip: &[String],
    ) -> Result<Option<ClaimedJob>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.pool().begin().await.map_err(|e| self.db(e))?;
        let now: i64 = sqlx::query_scalar(&format!("SELECT {}", self.backend.clock()))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        // $1 now, $2 the claiming replica, $3 1 when it may steal.
        let claimable = "done = 0 AND (lease_until < $1 \
             OR ($3 = 1 AND started = 0 AND detached = 1 AND owner <> $2))";
        let skipped: String = (0..skip.len())
            .map(|i| format!(" AND id <> ${}", i + 4))
            .collect();
        let sql = format!(
            "SELECT id, owner, attempt, lease_until, started FROM jobs WHERE {claimable}{skipped} \
             ORDER BY CASE WHEN lease_until < $1 THEN 0 ELSE 1 END, created_at, id \
             LIMIT 1{lock}"
        );
        let mut select = sqlx::query(&sql)
            .bind(now)
            .bind(owner.to_string())
            .bind(i64::from(steal));
        for id in skip {
            select = select.bind(id.clone());
        }
        let found = select
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.db(e))?;
        let Some(found) = found else {
            return Ok(None);
        };
        let id: String = found.try_get("id").map_err(|e| self.db(e))?;
        let previous_owner: String = found.try_get("owner").map_err(|e| self.db(e))?;
        let previous_until: i64 = found.try_get("lease_until").map_err(|e| self.db(e))?;
        let previous = Hold {
            lease: Lease {
                job_id: id.clone(),
                owner: previous_owner.clone(),
                attempt: found.try_get("attempt").map_err(|e| self.db(e))?,
            },
            until: previous_until,
            started: found.try_get::<i64, _>("started").map_err(|e| self.db(e))? != 0,
        };
        let row = sqlx::query(&format!(
            "UPDATE jobs SET owner = $2, attempt = attempt + 1, lease_until = $4, started = 0 \
             WHERE id = $5 AND {claimable} \
             RETURNING kind, request, detached, attempt, cancel_requested"
        ))
        .bind(now)
        .bind(owner.to_string())
        .bind(i64::from(steal))
        .bind(now + micros(length))
        .bind(id.clone())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.db(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let members = sqlx::query(
            "SELECT evaluation_id FROM job_members WHERE job_id = $1 ORDER BY position",
        )
        .bind(id.clone())
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.db(e))?
        .iter()
        .map(|r| {
            r.try_get::<String, _>("evaluation_id")
                .map_err(|e| self.db(e))
        })
        .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(|e| self.db(e))?;
        Ok(Some(ClaimedJob {
            lease: Lease {
                job_id: id,
                owner: owner.to_string(),
                attempt: row.try_get("attempt").map_err(|e| self.db(e))?,
            },
            kind: row.try_get("kind").map_err(|e| self.db(e))?,
            request: row.try_get("request").map_err(|e| self.db(e))?,
            detached: row.try_get::<i64, _>("detached").map_err(|e| self.db(e))? != 0,
            cancel_requested: row
                .try_get::<i64, _>("cancel_requested")
                .map_err(|e| self.db(e))?
                != 0,
            previous_owner,
            members,
            previous,
            stolen: previous_until >= now,
        }))
    }

    /// Gives a job this replica claimed (`lease`) back as it was before
    /// (`from`), as if it had never been claimed: to the replica it was
    /// stolen from, or claimable again (a lapsed lease) without an attempt
    /// spent.
    pub async fn unclaim(&self, lease: &Lease, from: &Hold) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET owner = $1, attempt = $2, lease_until = $3, started = $7 \
             WHERE id = $4 AND owner = $5 AND attempt = $6 AND done = 0",
        )
        .bind(from.lease.owner.clone())
        .bind(from.lease.attempt)
        .bind(from.until)
        .bind(lease.job_id.clone())
        .bind(lease.owner.clone())
        .bind(lease.attempt)
        .bind(i64::from(from.started))
        .execute(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Records that the holder of `lease` gave its job a slot (from now on
    /// only a lapsed lease moves it); false when another replica took the
    /// job while it waited.
    pub async fn mark_started(&self, lease: &Lease) -> Result<bool> {
        self.update_held(lease, "started = 1").await
    }

    /// Gives the job of `lease` up: any replica may claim it at once.
    pub async fn release(&self, lease: &Lease) -> Result<()> {
        self.update_held(lease, "lease_until = 0").await.map(|_| ())
    }

    /// Lets the open jobs `owner` held before it restarted be claimed at
    /// once (rather than when their leases lapse); how many there were.
    /// Only `owner`'s own: the other replicas' jobs are theirs.
    pub async fn release_own(&self, owner: &str) -> Result<u64> {
        let done = sqlx::query("UPDATE jobs SET lease_until = 0 WHERE owner = $1 AND done = 0")
            .bind(owner.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(done.rows_affected())
    }

    /// The job evaluation `id` belongs to (None for an evaluation stored
    /// without one).
    pub async fn job_of(&self, evaluation_id: &str) -> Result<Option<JobState>> {
        let row = sqlx::query(
            "SELECT j.id, j.owner, j.attempt, j.done, j.progress FROM jobs j \
             JOIN job_members m ON m.job_id = j.id WHERE m.evaluation_id = $1",
        )
        .bind(evaluation_id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(|e| self.db(e))?;
        row.map(|row| {
            Ok(JobState {
                id: row.try_get("id").map_err(|e| self.db(e))?,
                owner: row.try_get("owner").map_err(|e| self.db(e))?,
                attempt: row.try_get("attempt").map_err(|e| self.db(e))?,
                done: row.try_get::<i64, _>("done").map_err(|e| self.db(e))? != 0,
                progress: row.try_get("progress").map_err(|e| self.db(e))?,
            })
        })
        .transpose()
    }

    /// Asks the replica holding job `job_id` to stop it (it reads the
    /// request at its next heartbeat, or the replica that claims it does).
    pub async fn request_cancel(&self, job_id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND done = 0")
            .bind(job_id.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Open jobs (not ended), for the queue-depth figures of every replica.
    pub async fn open_jobs(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE done = 0")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        row.try_get("n").map_err(|e| self.db(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    fn queued(id: &str) -> Report {
        Report {
            id: id.into(),
            model: "m".into(),
            dataset: "d".into(),
            status: Status::Queued,
            created_at: Some(crate::domain::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    fn job<'a>(id: &'a str, owner: &'a str, lease: Duration) -> NewJob<'a> {
        NewJob {
            id,
            kind: "compare",
            request: Some(vec![1, 2, 3]),
            detached: true,
            owner,
            lease,
        }
    }

    /// What every backend must do with jobs.
    async fn exercise(store: &ReportStore) {
        let long = Duration::from_secs(60);
        let a = store
            .create_job(&job("j1", "a", long), &[queued("e1"), queued("e2")])
            .await
            .unwrap();
        assert_eq!(a.attempt, 1);
        assert!(store.mark_started(&a).await.unwrap());
        assert_eq!(store.job_of("e2").await.unwrap().unwrap().id, "j1");
        assert!(store.job_of("nope").await.unwrap().is_none());
        // A held lease is not claimed.
        assert!(store.claim("b", long, true, &[]).await.unwrap().is_none());
        let mut running = queued("e1");
        running.status = Status::Running;
        assert!(store.save_fenced(&running, &a).await.unwrap());
        let progress = Some(vec![9u8]);
        assert_eq!(
            store.renew(&a, long, progress).await.unwrap(),
            Renewal::Held {
                cancel_requested: false
            }
        );
        assert_eq!(
            store.job_of("e1").await.unwrap().unwrap().progress,
            Some(vec![9u8])
        );
        assert_eq!(store.open_jobs().await.unwrap(), 1);

        // Replica a restarts under its name: its job is claimable at once,
        // and b takes it (one claim only).
        assert_eq!(store.release_own("a").await.unwrap(), 1);
        let b = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        assert!(store.mark_started(&b.lease).await.unwrap());
        assert!(store.claim("c", long, true, &[]).await.unwrap().is_none());
        assert_eq!(
            (
                b.lease.attempt,
                b.previous_owner.as_str(),
                b.members.clone()
            ),
            (2, "a", vec!["e1".to_string(), "e2".to_string()])
        );
        assert_eq!(b.request, Some(vec![1, 2, 3]));
        assert!(b.detached && !b.cancel_requested);

        // a lost it: its writes and renewals are refused.
        let mut done = queued("e1");
        done.status = Status::Completed;
        assert!(!store.save_fenced(&done, &a).await.unwrap());
        assert_eq!(store.renew(&a, long, None).await.unwrap(), Renewal::Lost);
        assert_eq!(store.get("e1").await.unwrap().status, Status::Running);
        // b's are not; the progress stays when none is given.
        assert!(store.save_fenced(&done, &b.lease).await.unwrap());
        store.request_cancel("j1").await.unwrap();
        assert_eq!(
            store.renew(&b.lease, long, None).await.unwrap(),
            Renewal::Held {
                cancel_requested: true
            }
        );
        assert_eq!(
            store.job_of("e1").await.unwrap().unwrap().progress,
            Some(vec![9u8])
        );
        let mut stopped = store.get("e2").await.unwrap();
        stopped.status = Status::Cancelled;
        assert!(store.save_fenced(&stopped, &b.lease).await.unwrap());
        store.finish_job(&b.lease).await.unwrap();
        assert_eq!(store.get("e1").await.unwrap().status, Status::Completed);
        assert_eq!(store.get("e2").await.unwrap().status, Status::Cancelled);
        assert!(store.job_of("e2").await.unwrap().unwrap().done);
        assert_eq!(store.open_jobs().await.unwrap(), 0);

        // A lease that lapses on its own is claimed; the oldest job first.
        let short = Duration::from_millis(1);
        store
            .create_job(&job("j2", "a", short), &[queued("e3")])
            .await
            .unwrap();
        store
            .create_job(&job("j3", "a", short), &[queued("e4")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        let second = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        for claimed in [&first, &second] {
            assert!(store.mark_started(&claimed.lease).await.unwrap());
        }
        assert_eq!(
            (first.lease.job_id.as_str(), second.lease.job_id.as_str()),
            ("j2", "j3")
        );
        assert!(!first.stolen, "its holder died");
        // Given back unrun, it is claimable again without an attempt spent,
        // started as it was.
        let attempt = first.lease.attempt;
        store.unclaim(&first.lease, &first.previous).await.unwrap();
        let again = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        assert_eq!(
            (again.lease.job_id.as_str(), again.lease.attempt),
            ("j2", attempt)
        );
        assert!(store.mark_started(&again.lease).await.unwrap());
        // A detached job waiting on its replica goes to an idle one; once
        // started it stays, and its holder learns it lost one it had not.
        let waiting = store
            .create_job(&job("j6", "a", long), &[queued("e6")])
            .await
            .unwrap();
        assert!(
            store.claim("b", long, false, &[]).await.unwrap().is_none(),
            "no stealing asked"
        );
        assert!(
            store.claim("a", long, true, &[]).await.unwrap().is_none(),
            "not from itself"
        );
        // One it cannot rebuild goes back to its holder as it was, and is
        // not taken again while skipped.
        let stolen = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        assert_eq!(stolen.lease.job_id, "j6");
        assert!(stolen.stolen);
        assert_eq!(stolen.previous.lease, waiting);
        assert!(!stolen.previous.started);
        store
            .unclaim(&stolen.lease, &stolen.previous)
            .await
            .unwrap();
        assert!(matches!(
            store.renew(&waiting, long, None).await.unwrap(),
            Renewal::Held { .. }
        ));
        let skip = ["j6".to_string()];
        assert!(store.claim("b", long, true, &skip).await.unwrap().is_none());
        let stolen = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        assert_eq!(stolen.lease.job_id, "j6");
        assert!(!store.mark_started(&waiting).await.unwrap());
        assert!(store.mark_started(&stolen.lease).await.unwrap());
        assert!(store.claim("c", long, true, &[]).await.unwrap().is_none());
        store.finish_job(&stolen.lease).await.unwrap();
        // A job given up is claimable at once.
        let given = store
            .create_job(&job("j5", "a", long), &[queued("e5")])
            .await
            .unwrap();
        assert!(store.mark_started(&given).await.unwrap());
        assert!(store.claim("b", long, true, &[]).await.unwrap().is_none());
        store.release(&given).await.unwrap();
        let j5 = store.claim("b", long, true, &[]).await.unwrap().unwrap();
        assert_eq!(j5.lease.job_id, "j5");
        assert!(store.mark_started(&j5.lease).await.unwrap());
        // A duplicate id leaves nothing behind.
        assert!(store
            .create_job(&job("j4", "a", long), &[queued("e4")])
            .await
            .is_err());
        assert!(store.job_of("e4").await.unwrap().unwrap().id == "j3");
    }

    #[tokio::test]
    async fn sqlite_jobs_are_claimed_once_and_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        exercise(&store).await;
        // Reopening leaves the rows of jobs to their replicas.
        drop(store);
        let store = ReportStore::open(&ReportStore::default_url(dir.path()))
            .await
            .unwrap();
        assert_eq!(store.get("e3").await.unwrap().status, Status::Queued);
    }

    #[tokio::test]
    async fn postgres_jobs_are_claimed_once_and_fenced() {
        let pg = super::super::postgres_test::TestPostgres::start();
        let store = ReportStore::open(&pg.url).await.unwrap();
        exercise(&store).await;
        // Concurrent claimers never take the same job twice.
        let long = Duration::from_secs(60);
        for i in 0..20 {
            let id = format!("c{i}");
            store
                .create_job(
                    &job(&id, "dead", Duration::ZERO),
                    &[queued(&format!("ce{i}"))],
                )
                .await
                .unwrap();
        }
        let store = std::sync::Arc::new(store);
        let claimers = (0..4).map(|k| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                // Each starts what it claims (as a replica with a free slot
                // does): a job started is nobody else's.
                while let Some(j) = store
                    .claim(&format!("r{k}"), long, true, &[])
                    .await
                    .unwrap()
                {
                    if store.mark_started(&j.lease).await.unwrap() {
                        got.push(j.lease.job_id);
                    }
                }
                got
            })
        });
        let mut all: Vec<String> = Vec::new();
        for c in claimers {
            all.extend(c.await.unwrap());
        }
        all.sort();
        let mut want: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        want.sort();
        assert_eq!(all, want, "each job claimed exactly once");
    }
}
