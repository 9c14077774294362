//! Notices between replicas through PostgreSQL's LISTEN/NOTIFY: a replica
//! that records progress or a report of a job, or gives a job up, says so
//! on one channel; the others wake at once (watchers of that job, replicas
//! looking for jobs to take over) rather than at their next poll. Notices
//! are a shortcut, never the truth: whoever wakes reads the database, and
//! polls it anyway (a notice sent while a listener reconnects is lost).
//! SQLite has no other process to tell: nothing is sent or heard there.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use super::{Backend, ReportStore};
use crate::error::Result;

/// The channel the replicas notify on.
const CHANNEL: &str = "embedeval_jobs";

/// The payload that says a job was given up and can be claimed now.
pub const RELEASED: &str = "released";

impl ReportStore {
    /// Tells the other replicas `payload` (a job id, or [`RELEASED`]).
    pub async fn notify(&self, payload: &str) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload.to_string())
            .execute(self.pool())
            .await
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Tells the other replicas `payload` if the database can be reached:
    /// a notice only wakes them sooner (they poll anyway), so one that
    /// cannot be sent is logged, not returned.
    pub async fn tell(&self, payload: &str) {
        if let Err(err) = self.notify(payload).await {
            tracing::debug!(%err, "cannot send a notice");
        }
    }

    /// The notices of every replica from now on, as long as the returned
    /// sender lives (None on SQLite). The listener reconnects by itself
    /// after the server restarts.
    pub fn listen(&self) -> Option<broadcast::Sender<String>> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let (tx, _) = broadcast::channel(1024);
        let weak = tx.downgrade();
        let hosts = self.hosts.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut l = PgListener::connect(hosts.url()).await?;
                    l.listen(CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                }
                .await;
                let mut listener = match listener {
                    Ok(l) => l,
                    Err(err) => {
                        if weak.upgrade().is_none() {
                            return;
                        }
                        tracing::debug!(%err, "cannot listen for notices yet");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    let Some(tx) = weak.upgrade() else { return };
                    // Bounded waits: a sender dropped meanwhile ends the task.
                    match tokio::time::timeout(Duration::from_secs(5), listener.recv()).await {
                        Ok(Ok(notice)) => {
                            let _ = tx.send(notice.payload().to_string());
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%err, "notice listener lost its connection");
                            break;
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        Some(tx)
    }
}
