//! Replicas whose wall clocks are a minute off share one PostgreSQL (started
//! here) with a replica whose clock is right. The skewed clocks come from
//! Debian's libfaketime (`LD_PRELOAD`, `FAKETIME=+60s` and `-60s`, the
//! monotonic clock left alone, as a host whose time synchronisation failed
//! would have it); scripts/bootstrap installs it, and where it is absent the
//! test says SKIPPED loudly.
//!
//! Leases are set and compared by the database's clock, so:
//! - a replica a minute ahead, idle, never takes the live jobs of the others
//!   (with leases by the replicas' clocks it took both at once: the one held
//!   by the replica a minute behind looked lapsed to everybody);
//! - the job of a replica a minute ahead that is killed is taken over within
//!   a few seconds of its lease lapsing (by the replicas' clocks, it would
//!   have waited a minute more, two for the replica behind);
//! - every evaluation is computed to completion exactly once.

mod common;
#[path = "../src/database/postgres_test.rs"]
mod pg;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cluster::{submit_detached, Replica};
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, EvaluationStatus, MetricSpec};
use tonic::transport::Channel;

/// Where Debian's libfaketime package puts the library.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The lease of every replica here.
const LEASE: Duration = Duration::from_secs(3);

/// The environment of a replica whose wall clock is `offset` off
/// (libfaketime's syntax: "+60s").
fn skewed(offset: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", FAKETIME.to_string()),
        ("FAKETIME", offset.to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
}

/// A detached evaluation of `model` on digits with every metric (the linear
/// probe to a tight tolerance makes it last seconds): its id.
async fn submit(channel: &Channel, model: &str) -> String {
    let spec = MetricSpec {
        linear_c: Some(1e4),
        linear_tol: Some(1e-12),
        ..Default::default()
    };
    submit_detached(channel, model, spec).await.unwrap()
}

async fn get(channel: &Channel, id: &str) -> proto::EvaluationReport {
    EvaluationServiceClient::new(channel.clone())
        .get_evaluation(proto::GetEvaluationRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Waits (up to `within`) until evaluation `id` has status `status`.
async fn wait_for(channel: &Channel, id: &str, status: EvaluationStatus, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let report = get(channel, id).await;
        if report.status == status as i32 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{id} is {:?}, not {status:?}, after {within:?}: {}",
            report.status(),
            report.error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The seconds by which `report`'s creation time (the wall clock of the
/// replica that admitted it) is ahead of this test's clock.
fn skew_of(report: &proto::EvaluationReport) -> f64 {
    let created = report.created_at.as_ref().expect("a creation time");
    let created = created.seconds as f64 + f64::from(created.nanos) * 1e-9;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    created - now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_a_minute_off_neither_take_live_jobs_nor_keep_dead_ones() {
    if !Path::new(FAKETIME).exists() {
        eprintln!(
            "\n*** SKIPPED replicas_a_minute_off_…: {FAKETIME} is missing (Debian's \
             libfaketime; scripts/bootstrap installs it) ***\n"
        );
        return;
    }
    let pg = pg::TestPostgres::start();
    let args: Vec<String> = [
        "--database-url",
        &pg.url,
        "--models-dir",
        common::zoo().to_str().unwrap(),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
        "--job-lease",
        &format!("{}s", LEASE.as_secs()),
        "--max-evaluations",
        "1",
        "--compute-threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let right = Replica::start(bin, "right", &args, &[]);
    let mut ahead = Replica::start(bin, "ahead", &args, &skewed("+60s"));
    let behind = Replica::start(bin, "behind", &args, &skewed("-60s"));
    for r in [&right, &ahead, &behind] {
        r.wait_serving().await;
    }
    let (c_right, c_ahead, c_behind) = (
        right.channel().await,
        ahead.channel().await,
        behind.channel().await,
    );

    // 1. The replica behind and the right one each run a job while the one
    // ahead is idle: nobody takes anything over.
    let of_behind = submit(&c_behind, "infonce-t0.2").await;
    let of_right = submit(&c_right, "infonce-t0.5").await;
    // The clocks really are off: each replica stamps what it admits.
    let skew = skew_of(&get(&c_behind, &of_behind).await);
    assert!((-70.0..-50.0).contains(&skew), "behind by {skew} s");
    let started = Instant::now();
    for id in [&of_behind, &of_right] {
        wait_for(
            &c_right,
            id,
            EvaluationStatus::Completed,
            Duration::from_secs(300),
        )
        .await;
    }
    let ran_for = started.elapsed();
    // Long enough for the idle replica's claim loop to have looked (it looks
    // every second) and for a lease to lapse had nobody renewed it.
    assert!(ran_for > LEASE, "{ran_for:?}");
    for r in [&right, &ahead, &behind] {
        assert_eq!(
            r.took_over(),
            Vec::<String>::new(),
            "{}: {}",
            r.name,
            r.tail()
        );
    }
    assert_eq!(behind.completed(), vec![of_behind.clone()]);
    assert_eq!(right.completed(), vec![of_right.clone()]);
    assert_eq!(ahead.completed(), Vec::<String>::new());

    // 2. The replica ahead dies mid-evaluation: another takes its job over
    // once the lease lapses, not a minute later.
    let of_ahead = submit(&c_ahead, "infonce-t0.1").await;
    let skew = skew_of(&get(&c_ahead, &of_ahead).await);
    assert!((50.0..70.0).contains(&skew), "ahead by {skew} s");
    wait_for(
        &c_ahead,
        &of_ahead,
        EvaluationStatus::Running,
        Duration::from_secs(60),
    )
    .await;
    ahead.kill();
    let killed = Instant::now();
    let taken = loop {
        if [&right, &behind]
            .iter()
            .any(|r| r.took_over().contains(&of_ahead))
        {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(150),
            "nobody took {of_ahead} over:\nright: {}\nbehind: {}",
            right.tail(),
            behind.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "clock skew: the first jobs ran {ran_for:?}; the dead replica's job was taken over \
         {taken:?} after the kill"
    );
    assert!(
        taken < LEASE + Duration::from_secs(5),
        "taken over {taken:?} after the kill, with a lease of {LEASE:?}"
    );
    wait_for(
        &c_right,
        &of_ahead,
        EvaluationStatus::Completed,
        Duration::from_secs(300),
    )
    .await;
    let completions = [&right, &behind]
        .iter()
        .flat_map(|r| r.completed())
        .filter(|id| *id == of_ahead)
        .count();
    assert_eq!(completions, 1, "computed once");
}
