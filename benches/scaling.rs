//! Throughput of 1, 2 and 3 replicas sharing one PostgreSQL: evaluations
//! per minute of the bundled zoo on the digits, every metric and both
//! protocols (the default spec), submitted detached and round-robin, the
//! embedding cache off so that every evaluation encodes its images.
//!
//! Each replica runs one evaluation at a time on one compute thread and one
//! ONNX Runtime thread (a pod with a one-CPU limit): the figures show how
//! far adding replicas helps on this machine, and where its cores stop it.
//!
//!   cargo bench --bench scaling [-- --rounds N --replicas 1,2,3]
//!
//! It needs PostgreSQL (scripts/bootstrap installs it).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../src/database/postgres_test.rs"]
mod pg;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::Replica;
use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluationStatus};

/// The zoo's models (the checkpoints of the bundled run left out).
fn zoo_models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(common::zoo())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("model.onnx").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.contains("-e0"))
        .collect();
    names.sort();
    names
}

struct Run {
    replicas: usize,
    evaluations: usize,
    seconds: f64,
    /// Share of the machine's CPU time busy during the run (all processes).
    busy: f64,
}

/// The machine's (busy, total) CPU time so far, in clock ticks (/proc/stat).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

async fn run(replicas: usize, rounds: usize) -> Run {
    let pg = pg::TestPostgres::start();
    let bin = Path::new(env!("CARGO_BIN_EXE_embedeval"));
    let args: Vec<String> = [
        "--database-url",
        &pg.url,
        "--models-dir",
        common::zoo().to_str().unwrap(),
        "--datasets-dir",
        common::zoo().join("../datasets").to_str().unwrap(),
        "--cache-bytes",
        "0",
        "--max-evaluations",
        "1",
        "--evaluation-queue",
        "1000",
        "--compute-threads",
        "1",
        "--intra-threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let servers: Vec<Replica> = (0..replicas)
        .map(|i| Replica::start(bin, &format!("bench{i}"), &args, &[]))
        .collect();
    let mut channels = Vec::new();
    for s in &servers {
        s.wait_serving().await;
        channels.push(s.channel().await);
    }
    let models = zoo_models();
    let started = Instant::now();
    let ticks = cpu_ticks();
    let mut ids = Vec::new();
    for (i, model) in models
        .iter()
        .cycle()
        .take(models.len() * rounds)
        .enumerate()
    {
        let mut stream = EvaluationServiceClient::new(channels[i % replicas].clone())
            .evaluate(proto::EvaluateRequest {
                model: model.clone(),
                dataset: "digits".into(),
                detach: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let Some(evaluate_event::Event::Accepted(a)) =
            stream.message().await.unwrap().unwrap().event
        else {
            panic!("Accepted")
        };
        ids.push(a.evaluation_ids[0].clone());
    }
    let mut client = EvaluationServiceClient::new(channels[0].clone());
    for id in &ids {
        loop {
            let r = client
                .get_evaluation(proto::GetEvaluationRequest { id: id.clone() })
                .await
                .unwrap()
                .into_inner();
            if r.status == EvaluationStatus::Completed as i32 {
                break;
            }
            assert!(
                r.status == EvaluationStatus::Queued as i32
                    || r.status == EvaluationStatus::Running as i32,
                "{id}: {}",
                r.error
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (busy, total) = cpu_ticks();
    let busy = (busy - ticks.0) as f64 / (total - ticks.1).max(1) as f64;
    for mut s in servers {
        s.terminate(Duration::from_secs(60));
    }
    Run {
        replicas,
        evaluations: ids.len(),
        seconds,
        busy,
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let rounds: usize = arg("--rounds").map_or(6, |v| v.parse().expect("--rounds N"));
    let counts: Vec<usize> = arg("--replicas").map_or(vec![1, 2, 3], |v| {
        v.split(',')
            .map(|n| n.parse().expect("--replicas 1,2,3"))
            .collect()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "scaling: {} zoo models x {rounds} rounds on digits, default spec, cache off, \
         1 evaluation / 1 compute thread / 1 ONNX Runtime thread per replica, {cores} cores",
        zoo_models().len()
    );
    println!(
        "| replicas | evaluations | seconds | evaluations per minute | vs 1 replica | CPU busy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut base = None;
    for n in counts {
        let r = runtime.block_on(run(n, rounds));
        let per_minute = r.evaluations as f64 / r.seconds * 60.0;
        let base = *base.get_or_insert(per_minute);
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.2}x | {:.0}% of {cores} cores |",
            r.replicas,
            r.evaluations,
            r.seconds,
            per_minute,
            per_minute / base,
            100.0 * r.busy
        );
    }
}
