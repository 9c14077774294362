//! The reports of this server's evaluations, in memory, newest last, with
//! the cancel flags of the running ones. (A database behind the same
//! interface keeps them across restarts; see the README's status.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::proto::{EvaluationReport, EvaluationStatus};

/// Default page size of [`ReportStore::list`].
pub const DEFAULT_PAGE: usize = 50;

/// Reports and running evaluations.
#[derive(Debug, Default)]
pub struct ReportStore {
    reports: RwLock<Vec<EvaluationReport>>,
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

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

impl ReportStore {
    /// Records a running evaluation; returns its cancel flag.
    pub fn start(&self, report: EvaluationReport) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running
            .lock()
            .expect("store lock")
            .insert(report.id.clone(), flag.clone());
        self.reports.write().expect("store lock").push(report);
        flag
    }

    /// Replaces the report with its id and forgets its cancel flag when it
    /// has ended.
    pub fn finish(&self, report: EvaluationReport) {
        let ended = report.status != EvaluationStatus::Running as i32
            && report.status != EvaluationStatus::Queued as i32;
        if ended {
            self.running.lock().expect("store lock").remove(&report.id);
        }
        let mut reports = self.reports.write().expect("store lock");
        match reports.iter_mut().find(|r| r.id == report.id) {
            Some(slot) => *slot = report,
            None => reports.push(report),
        }
    }

    /// One report by id.
    pub fn get(&self, id: &str) -> Result<EvaluationReport> {
        self.reports
            .read()
            .expect("store lock")
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                kind: "evaluation",
                name: id.to_string(),
            })
    }

    /// Reports newest first, filtered by model and dataset (empty: any);
    /// `page_token` is the offset the previous page returned.
    pub fn list(
        &self,
        model: &str,
        dataset: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<EvaluationReport>, String)> {
        let offset: usize = if page_token.is_empty() {
            0
        } else {
            page_token
                .parse()
                .map_err(|_| Error::InvalidArgument(format!("bad page_token {page_token:?}")))?
        };
        let size = if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size
        };
        let reports = self.reports.read().expect("store lock");
        let matching: Vec<&EvaluationReport> = reports
            .iter()
            .rev()
            .filter(|r| model.is_empty() || r.model == model)
            .filter(|r| dataset.is_empty() || r.dataset == dataset)
            .collect();
        let page: Vec<EvaluationReport> = matching
            .iter()
            .skip(offset)
            .take(size)
            .map(|r| (*r).clone())
            .collect();
        let next = if offset + page.len() < matching.len() {
            (offset + page.len()).to_string()
        } else {
            String::new()
        };
        Ok((page, next))
    }

    /// Asks a running evaluation to stop; returns its status now.
    pub fn cancel(&self, id: &str) -> Result<EvaluationStatus> {
        let report = self.get(id)?;
        if let Some(flag) = self.running.lock().expect("store lock").get(id) {
            flag.store(true, Ordering::Relaxed);
            return Ok(EvaluationStatus::Cancelled);
        }
        Ok(EvaluationStatus::try_from(report.status).unwrap_or(EvaluationStatus::Unspecified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, model: &str) -> EvaluationReport {
        EvaluationReport {
            id: id.into(),
            model: model.into(),
            dataset: "d".into(),
            status: EvaluationStatus::Running as i32,
            ..Default::default()
        }
    }

    #[test]
    fn lists_newest_first_with_paging_and_filters() {
        let store = ReportStore::default();
        for i in 0..5 {
            store.start(report(&format!("r{i}"), if i % 2 == 0 { "a" } else { "b" }));
        }
        let (page, next) = store.list("", "", 2, "").unwrap();
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["r4", "r3"]
        );
        let (page, next) = store.list("", "", 2, &next).unwrap();
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["r2", "r1"]
        );
        let (page, next) = store.list("", "", 2, &next).unwrap();
        assert_eq!((page.len(), next.as_str()), (1, ""));
        let (page, _) = store.list("a", "", 0, "").unwrap();
        assert_eq!(page.len(), 3);
        assert!(store.list("", "", 0, "x").is_err());
    }

    #[test]
    fn cancel_sets_the_flag_of_a_running_evaluation() {
        let store = ReportStore::default();
        let flag = store.start(report("r", "a"));
        assert_eq!(store.cancel("r").unwrap(), EvaluationStatus::Cancelled);
        assert!(flag.load(Ordering::Relaxed));
        let mut done = report("r", "a");
        done.status = EvaluationStatus::Completed as i32;
        store.finish(done);
        assert_eq!(store.cancel("r").unwrap(), EvaluationStatus::Completed);
        assert!(matches!(store.cancel("nope"), Err(Error::NotFound { .. })));
        assert_ne!(new_id(), new_id());
    }
}
