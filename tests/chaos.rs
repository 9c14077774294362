//! Chaos under load, with an invariant checker. Three replicas share one
//! PostgreSQL and an S3-compatible store (moto behind the fault proxy of
//! tests/common/cluster.rs), all processes on this host. Three clients
//! submit detached evaluations and comparisons and register models through
//! replicas chosen at random, while faults are injected at random every
//! 5–12 s: a replica killed (SIGKILL) and started again, one time in three
//! with its wall clock a minute off (libfaketime, where installed); a
//! replica paused (SIGSTOP) past its lease, then resumed; the store cut off;
//! the store answering 503; PostgreSQL restarted.
//!
//! At the end every fault is healed and the checker reads the clients' logs,
//! the replicas' logs and the database through each replica:
//! - every accepted evaluation ended once: COMPLETED, or FAILED/CANCELLED
//!   with a reason; its report reads the same through every replica;
//! - no evaluation was recorded completed by two replicas' computations
//!   (counted in the logs of every replica that ever ran, killed ones too);
//! - every registration that was answered OK is listed and evaluates, and
//!   every model listed evaluates (nothing half-uploaded is visible);
//! - every replica is SERVING again.
//!
//! Ignored by a plain `cargo test`: `make chaos` runs it for 20 minutes
//! (`EMBEDEVAL_CHAOS_SECONDS`, default 180; `EMBEDEVAL_CHAOS_SEED` repeats
//! a run's choices).

mod common;
#[path = "../src/database/postgres_test.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{store_env, Fault, Moto, Proxy, Replica, BUCKET};
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluateRequest, EvaluationStatus, MetricSpec};
use prost::Message;
use tonic::transport::Channel;

const LEASE: &str = "4s";
const MODELS: [&str; 3] = ["infonce-t0.2", "infonce-t0.5", "infonce-t0.1"];
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A small deterministic generator (xorshift), seeded per run.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a client was told.
#[derive(Debug)]
enum Told {
    /// Evaluations accepted (their ids).
    Accepted(Vec<String>),
    /// A registration answered OK: the name and its sha256.
    Registered(String, String),
    /// A registration that failed: the name (it may or may not exist).
    NotRegistered(String),
    /// A request refused or cut: nothing was accepted.
    Refused,
}

/// The replicas' addresses by slot (None while a slot's replica is down).
type Addresses = Arc<Mutex<Vec<Option<String>>>>;

async fn channel_to(addr: &str) -> Option<Channel> {
    tokio::time::timeout(
        Duration::from_secs(3),
        Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect(),
    )
    .await
    .ok()?
    .ok()
}

fn quick() -> MetricSpec {
    MetricSpec {
        skip_linear: true,
        ..Default::default()
    }
}

/// One client request of kind `what` through `channel`.
async fn request(channel: Channel, what: u64, name: String) -> Told {
    let accepted = |first: Option<proto::EvaluateEvent>| match first.and_then(|e| e.event) {
        Some(evaluate_event::Event::Accepted(a)) => Told::Accepted(a.evaluation_ids),
        _ => Told::Refused,
    };
    let deadline = Duration::from_secs(30);
    match what {
        0..=5 => {
            let call = async {
                let mut stream = EvaluationServiceClient::new(channel)
                    .evaluate(EvaluateRequest {
                        model: MODELS[(what % 3) as usize].into(),
                        dataset: "digits".into(),
                        spec: Some(quick()),
                        detach: true,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                stream.message().await
            };
            match tokio::time::timeout(deadline, call).await {
                Ok(Ok(first)) => accepted(first),
                _ => Told::Refused,
            }
        }
        6 | 7 => {
            let call = async {
                let mut stream = EvaluationServiceClient::new(channel)
                    .compare(proto::CompareRequest {
                        models: vec![MODELS[0].into(), MODELS[1].into()],
                        dataset: "digits".into(),
                        spec: Some(quick()),
                        detach: true,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                stream.message().await
            };
            match tokio::time::timeout(deadline, call).await {
                Ok(Ok(first)) => match first.and_then(|e| e.event) {
                    Some(proto::compare_event::Event::Accepted(a)) => {
                        Told::Accepted(a.evaluation_ids)
                    }
                    _ => Told::Refused,
                },
                _ => Told::Refused,
            }
        }
        _ => {
            let mut client = ModelServiceClient::new(channel);
            let upload = futures::stream::iter(common::zoo_upload("infonce-t0.07", &name));
            let call = client.register_model(upload);
            match tokio::time::timeout(deadline, call).await {
                Ok(Ok(info)) => Told::Registered(name, info.into_inner().sha256),
                _ => Told::NotRegistered(name),
            }
        }
    }
}

/// Evaluation `id` through any live replica (retrying while none answers).
async fn get(addresses: &Addresses, id: &str) -> proto::EvaluationReport {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let live: Vec<String> = addresses
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect();
        for addr in live {
            let Some(channel) = channel_to(&addr).await else {
                continue;
            };
            if let Ok(r) = EvaluationServiceClient::new(channel)
                .get_evaluation(proto::GetEvaluationRequest { id: id.into() })
                .await
            {
                return r.into_inner();
            }
        }
        assert!(Instant::now() < until, "no replica answers for {id}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn ended(r: &proto::EvaluationReport) -> bool {
    r.status != EvaluationStatus::Queued as i32 && r.status != EvaluationStatus::Running as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes of faults: run by `make chaos`"]
async fn chaos_under_load_every_accepted_job_ends_once_and_nothing_is_lost() {
    let seconds: u64 = std::env::var("EMBEDEVAL_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let seed: u64 = std::env::var("EMBEDEVAL_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("chaos: {seconds} s, seed {seed} (EMBEDEVAL_CHAOS_SEED repeats it)");
    let mut dice = Dice(seed);

    let pg = pg::TestPostgres::start();
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
    let args: Vec<String> = [
        "--database-url",
        &pg.url,
        "--data-url",
        &format!("s3://{BUCKET}/shared"),
        "--models-dir",
        common::zoo().to_str().unwrap(),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
        "--job-lease",
        LEASE,
        "--max-evaluations",
        "1",
        "--compute-threads",
        "1",
        "--shutdown-grace",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bin = Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let start = |name: &str, skew: Option<&str>| {
        let mut env = store_env(&proxy);
        if let Some(offset) = skew {
            env.push(("LD_PRELOAD", FAKETIME.to_string()));
            env.push(("FAKETIME", offset.to_string()));
            env.push(("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()));
        }
        Replica::start(bin, name, &args, &env)
    };
    let mut slots: Vec<Replica> = (0..3).map(|i| start(&format!("r{i}"), None)).collect();
    for r in &slots {
        r.wait_serving().await;
    }
    let addresses: Addresses = Arc::new(Mutex::new(
        slots.iter().map(|r| Some(r.addr.clone())).collect(),
    ));
    // Replicas replaced: kept for their logs.
    let mut graveyard: Vec<Replica> = Vec::new();

    // The clients.
    let stop = Arc::new(AtomicBool::new(false));
    let told: Arc<Mutex<Vec<Told>>> = Arc::default();
    let mut clients = Vec::new();
    for c in 0..3u64 {
        let (stop, told, addresses) = (stop.clone(), told.clone(), addresses.clone());
        let mut dice = Dice(seed.rotate_left(8 * (c as u32 + 1)) | 1);
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let live: Vec<String> = addresses
                    .lock()
                    .unwrap()
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                let pick = live
                    .get(dice.below(live.len().max(1) as u64) as usize)
                    .cloned();
                if let Some(channel) = match pick {
                    Some(addr) => channel_to(&addr).await,
                    None => None,
                } {
                    n += 1;
                    let name = format!("chaos-c{c}-{n}");
                    let outcome = request(channel, dice.below(10), name).await;
                    told.lock().unwrap().push(outcome);
                }
                // About what three replicas of one slot each keep up with.
                tokio::time::sleep(Duration::from_millis(1500 + dice.below(2000))).await;
            }
        }));
    }

    // The faults.
    let began = Instant::now();
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    let mut longest = Duration::ZERO;
    let mut restarts = 0;
    while began.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(5 + dice.below(8))).await;
        let slot = dice.below(3) as usize;
        let kind = dice.below(5);
        let fault_began = Instant::now();
        // When the fault was lifted (the replica started again, resumed,
        // the store or the database back).
        let healed;
        let name = match kind {
            0 => {
                addresses.lock().unwrap()[slot] = None;
                slots[slot].kill();
                tokio::time::sleep(Duration::from_secs(1 + dice.below(3))).await;
                restarts += 1;
                healed = Instant::now();
                let skew = match dice.below(3) {
                    0 if Path::new(FAKETIME).exists() => {
                        Some(if dice.below(2) == 0 { "+60s" } else { "-60s" })
                    }
                    _ => None,
                };
                let fresh = start(&format!("r{slot}-{restarts}"), skew);
                fresh.wait_serving().await;
                addresses.lock().unwrap()[slot] = Some(fresh.addr.clone());
                graveyard.push(std::mem::replace(&mut slots[slot], fresh));
                if skew.is_some() {
                    "replica killed, restarted with its clock a minute off"
                } else {
                    "replica killed and restarted"
                }
            }
            1 => {
                slots[slot].signal(true);
                tokio::time::sleep(Duration::from_secs(6)).await;
                slots[slot].signal(false);
                healed = Instant::now();
                "replica paused 6 s (past its lease)"
            }
            2 => {
                proxy.down().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                proxy.up().await;
                healed = Instant::now();
                "store cut off 5 s"
            }
            3 => {
                proxy.set(Fault::Unavailable).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                proxy.set(Fault::None).await;
                healed = Instant::now();
                "store answering 503 for 5 s"
            }
            _ => {
                pg.stop();
                tokio::time::sleep(Duration::from_secs(2)).await;
                pg.start_again();
                healed = Instant::now();
                "PostgreSQL restarted"
            }
        };
        // Recovered: every replica SERVING.
        for r in &slots {
            r.wait_serving().await;
        }
        let recovered = healed.elapsed();
        longest = longest.max(recovered);
        *faults.entry(name).or_default() += 1;
        eprintln!(
            "chaos: {:>5.0} s: {name} (replica slot {slot}), {:.1} s in all; all SERVING {:.1} s \
             after it was lifted",
            began.elapsed().as_secs_f64(),
            fault_began.elapsed().as_secs_f64(),
            recovered.as_secs_f64()
        );
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    // The checker.
    let told = std::mem::take(&mut *told.lock().unwrap());
    let accepted: Vec<String> = told
        .iter()
        .filter_map(|t| match t {
            Told::Accepted(ids) => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let refused = told.iter().filter(|t| matches!(t, Told::Refused)).count();
    let until = Instant::now() + Duration::from_secs(900);
    let mut reports = BTreeMap::new();
    for id in &accepted {
        loop {
            let r = get(&addresses, id).await;
            if ended(&r) {
                reports.insert(id.clone(), r);
                break;
            }
            assert!(Instant::now() < until, "{id} never ended");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let (mut completed, mut other) = (0, 0);
    for (id, r) in &reports {
        match r.status() {
            EvaluationStatus::Completed => completed += 1,
            EvaluationStatus::Failed | EvaluationStatus::Cancelled => {
                other += 1;
                assert!(
                    !r.error.is_empty(),
                    "{id} ended {:?} without a reason",
                    r.status()
                );
                eprintln!("chaos: {id} ended {:?}: {}", r.status(), r.error);
            }
            s => panic!("{id} ended {s:?}"),
        }
        // The same report through every replica.
        for r_slot in &slots {
            let channel = r_slot.channel().await;
            let seen = EvaluationServiceClient::new(channel)
                .get_evaluation(proto::GetEvaluationRequest { id: id.clone() })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(
                seen.encode_to_vec(),
                r.encode_to_vec(),
                "{id} through {}",
                r_slot.name
            );
        }
    }
    let mut completions: BTreeMap<String, usize> = BTreeMap::new();
    for r in slots.iter().chain(&graveyard) {
        for id in r.completed() {
            *completions.entry(id).or_default() += 1;
        }
    }
    let twice = completions.values().filter(|&&n| n > 1).count();

    // Uploads: what was answered OK is listed; everything listed evaluates.
    let channel = slots[0].channel().await;
    let listed: BTreeMap<String, String> = ModelServiceClient::new(channel.clone())
        .list_models(proto::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| (m.name, m.sha256))
        .collect();
    let mut registered = 0;
    for t in &told {
        if let Told::Registered(name, sha) = t {
            registered += 1;
            assert_eq!(
                listed.get(name),
                Some(sha),
                "{name} answered OK but not listed"
            );
        }
    }
    let uploads: Vec<&String> = listed.keys().filter(|n| n.starts_with("chaos-")).collect();
    for name in &uploads {
        let mut stream = EvaluationServiceClient::new(channel.clone())
            .evaluate(EvaluateRequest {
                model: name.to_string(),
                dataset: "digits".into(),
                spec: Some(quick()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{name}: {s}"))
            .into_inner();
        let mut last = None;
        while let Some(e) = stream.message().await.unwrap() {
            if let Some(evaluate_event::Event::Report(r)) = e.event {
                last = Some(r);
            }
        }
        let r = last.expect("a report");
        assert_eq!(
            r.status(),
            EvaluationStatus::Completed,
            "{name}: {}",
            r.error
        );
    }
    // A registration cut after the server committed it is listed, whole.
    let not_registered: Vec<&String> = told
        .iter()
        .filter_map(|t| match t {
            Told::NotRegistered(name) => Some(name),
            _ => None,
        })
        .collect();
    let listed_anyway = not_registered
        .iter()
        .filter(|n| listed.contains_key(n.as_str()))
        .count();
    for r in &slots {
        r.wait_serving().await;
    }
    let injected: usize = faults.values().sum();
    eprintln!(
        "chaos: {seconds} s, {injected} faults ({faults:?}); {} evaluations accepted ({} requests \
         refused or cut), {completed} COMPLETED, {other} FAILED or CANCELLED with a reason, \
         {twice} computed twice; {registered} registrations answered OK, {} not ({listed_anyway} of \
         them listed all the same), {} uploads listed, each evaluated; longest recovery {:.1} s",
        accepted.len(),
        refused,
        not_registered.len(),
        uploads.len(),
        longest.as_secs_f64()
    );
    assert_eq!(twice, 0, "computed twice: {completions:?}");
    assert_eq!(reports.len(), accepted.len());
}
