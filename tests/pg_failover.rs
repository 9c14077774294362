//! PostgreSQL failover: a primary and a streaming-replication standby
//! (Debian's PostgreSQL, `pg_basebackup -R`, the primary committing
//! synchronously so that nothing acknowledged is lost), two replicas given
//! both hosts in one URL (`postgres://…@primary,standby/…`). Detached
//! evaluations run; the primary is killed (immediate shutdown, as a crash)
//! and the standby promoted 2 s later. The replicas follow it without a
//! restart: every job accepted before or after ends COMPLETED (or FAILED
//! with its reason), none is lost, none is computed to completion twice,
//! and writes succeed again within seconds of the promotion.

mod common;
#[path = "../src/database/postgres_test.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{get_riding_out, submit_detached, Replica};
use embedeval::proto::{self, EvaluationStatus, MetricSpec};
use tonic::transport::Channel;
use tonic::Code;

/// A detached evaluation of `model` on digits without the probe: its id, or
/// the status that refused it.
async fn submit(channel: &Channel, model: &str) -> Result<String, tonic::Status> {
    let spec = MetricSpec {
        skip_linear: true,
        ..Default::default()
    };
    submit_detached(channel, model, spec).await
}

/// Evaluation `id`, riding out the failover (UNAVAILABLE meanwhile).
async fn get(channel: &Channel, id: &str) -> proto::EvaluationReport {
    get_riding_out(channel, id, Duration::from_secs(60)).await
}

/// `host:port` of a test server's URL.
fn host_of(url: &str) -> &str {
    let rest = url.split_once('@').unwrap().1;
    rest.split('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_a_promoted_standby_and_no_accepted_job_is_lost() {
    let primary = pg::TestPostgres::start_with("-c synchronous_standby_names='*'");
    let standby = primary.standby();
    let url = format!(
        "postgres://embedeval@{},{}/postgres?target_session_attrs=read-write",
        host_of(&primary.url),
        host_of(&standby.url)
    );
    let args: Vec<String> = [
        "--database-url",
        &url,
        "--models-dir",
        common::zoo().to_str().unwrap(),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
        // Longer than the failover takes: a replica keeps its running jobs.
        "--job-lease",
        "10s",
        "--max-evaluations",
        "1",
        "--compute-threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let replicas: Vec<Replica> = ["r0", "r1"]
        .iter()
        .map(|name| Replica::start(bin, name, &args, &[]))
        .collect();
    for r in &replicas {
        r.wait_serving().await;
    }
    let mut channels = Vec::new();
    for r in &replicas {
        channels.push(r.channel().await);
    }

    let models = ["infonce-t0.2", "infonce-t0.5", "infonce-t0.1"];
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            submit(&channels[i % 2], models[i % 3])
                .await
                .expect("accepted"),
        );
    }
    let until = Instant::now() + Duration::from_secs(60);
    while get(&channels[0], &ids[0]).await.status == EvaluationStatus::Queued as i32 {
        assert!(Instant::now() < until, "nothing ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The primary crashes; its standby is promoted 2 s later.
    primary.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    standby.promote();
    let promoted = Instant::now();

    // Writes succeed again through each replica.
    let mut refused = 0;
    for (i, channel) in channels.iter().enumerate() {
        loop {
            match submit(channel, models[i]).await {
                Ok(id) => {
                    ids.push(id);
                    break;
                }
                Err(s) => {
                    assert_eq!(s.code(), Code::Unavailable, "{}", s.message());
                    assert!(promoted.elapsed() < Duration::from_secs(60), "{s}");
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    let recovered = promoted.elapsed();

    // Every job accepted ends, none lost.
    let until = Instant::now() + Duration::from_secs(300);
    let mut ended = BTreeMap::new();
    for id in &ids {
        loop {
            let r = get(&channels[1], id).await;
            if r.status != EvaluationStatus::Queued as i32
                && r.status != EvaluationStatus::Running as i32
            {
                ended.insert(id.clone(), r);
                break;
            }
            assert!(
                Instant::now() < until,
                "{id} did not end:\nr0: {}\nr1: {}",
                replicas[0].tail(),
                replicas[1].tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut completions: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replicas {
        for id in r.completed() {
            *completions.entry(id).or_default() += 1;
        }
    }
    let (mut completed, mut failed) = (0, 0);
    for (id, r) in &ended {
        match r.status() {
            EvaluationStatus::Completed => {
                completed += 1;
                assert_eq!(completions.get(id), Some(&1), "{id} computed once");
            }
            EvaluationStatus::Failed => {
                failed += 1;
                eprintln!("failover: {id} FAILED: {}", r.error);
                assert!(!r.error.is_empty(), "{id} FAILED without a reason");
            }
            other => panic!("{id} ended {other:?}: {}", r.error),
        }
    }
    let twice = completions.values().filter(|&&n| n > 1).count();
    eprintln!(
        "failover: {} submitted, {completed} completed, {failed} failed, {twice} computed twice; \
         writes refused {refused} times, then accepted {:.1} s after the promotion \
         ({:.1} s after the primary died)",
        ids.len(),
        recovered.as_secs_f64(),
        killed.elapsed().as_secs_f64() - (promoted.elapsed() - recovered).as_secs_f64()
    );
    assert_eq!(twice, 0);
    // None failed either: a replica waits for the database (its report
    // kept in memory) rather than failing the evaluation for it.
    assert_eq!((completed, failed), (ids.len(), 0));
}
