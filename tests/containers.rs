//! The container suite: the image built by `make image`, three replicas,
//! PostgreSQL and the object store of deploy/compose.yaml, each its own
//! container and host on a private network, driven from this host through
//! TLS and the bearer token as deployed, with real faults across the network:
//! - `docker kill` of a replica mid-evaluation, and PostgreSQL's container
//!   stopped and started meanwhile (UNAVAILABLE while it is away);
//! - `docker network disconnect` of a replica holding a running job for
//!   longer than the lease, then reconnected;
//! - `docker pause` of a replica past its lease, then `unpause`;
//! - the store's container stopped and started (UNAVAILABLE naming it
//!   meanwhile; nothing it held is lost);
//! - a rolling update: each replica recreated in turn from a newly built
//!   image while 30 detached evaluations run;
//! - a replica alone in a container limited to 640 MiB of memory, sent more
//!   embeddings than that: refused with RESOURCE_EXHAUSTED by the limit its
//!   cgroup sets, never OOM-killed.
//!
//! The accounting is the cluster test's: each evaluation computed to
//! completion exactly once (counted in the replicas' logs, kept across
//! recreated containers), every job ends once, and a COMPLETED report reads
//! byte-identical from every replica. Each fault prints a line for the
//! book's table (docs/book/scaling-out.md, "Faults, measured"): submitted,
//! completed, computed twice, time to recover.
//!
//! Ignored by a plain `cargo test` (it needs the image); `make containers`,
//! part of `make test`, builds the images and runs it with `--ignored`, and
//! skips it with one loud line where no Docker daemon answers (as the test
//! itself does, or with EMBEDEVAL_CONTAINERS=0).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::model_service_client::ModelServiceClient;
use embedeval::proto::{
    self, evaluate_event, EvaluateRequest, EvaluationStatus, GetEvaluationRequest, MetricSpec,
};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The replicas' job lease in this suite: short, so that faults "longer than
/// the lease" stay seconds.
const LEASE: Duration = Duration::from_secs(4);
const REPLICAS: [&str; 3] = ["replica1", "replica2", "replica3"];
const TOKEN: &str = "container-suite-token";

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A docker (or docker-compose) command's output; panics when it cannot run.
fn run(program: &str, args: &[&str], envs: &[(String, String)]) -> Output {
    Command::new(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn ok(program: &str, args: &[&str], envs: &[(String, String)]) -> String {
    let out = run(program, args, envs);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> String {
    ok("docker", args, &[])
}

/// Why the suite cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if std::env::var("EMBEDEVAL_CONTAINERS").as_deref() == Ok("0") {
        return Some("EMBEDEVAL_CONTAINERS=0".into());
    }
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Err(e) => Some(format!("no docker command ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "no Docker daemon answers ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// The compose project: its secrets, ports, and the logs of containers
/// already replaced.
struct Stack {
    project: String,
    secrets: tempfile::TempDir,
    ports: [u16; 3],
    image: String,
    /// Logs of replica containers removed (recreated), by container id.
    saved: Mutex<BTreeMap<String, String>>,
}

impl Stack {
    fn compose_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose.yaml")
    }

    fn env(&self, image: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("EMBEDEVAL_DB_PASSWORD".into(), "suite-db-password".into()),
            (
                "EMBEDEVAL_SECRETS".into(),
                self.secrets.path().to_str().unwrap().into(),
            ),
            ("EMBEDEVAL_IMAGE".into(), image.into()),
            (
                "EMBEDEVAL_JOB_LEASE".into(),
                format!("{}s", LEASE.as_secs()),
            ),
            ("EMBEDEVAL_SHUTDOWN_GRACE".into(), "3s".into()),
            ("EMBEDEVAL_MAX_EVALUATIONS".into(), "1".into()),
            ("EMBEDEVAL_COMPUTE_THREADS".into(), "1".into()),
        ];
        for (i, port) in self.ports.iter().enumerate() {
            env.push((format!("EMBEDEVAL_PORT_{}", i + 1), port.to_string()));
        }
        env
    }

    fn compose_with(&self, image: &str, args: &[&str]) -> String {
        let file = Self::compose_file();
        let mut all = vec!["-p", &self.project, "-f", file.to_str().unwrap()];
        all.extend_from_slice(args);
        ok("docker-compose", &all, &self.env(image))
    }

    fn compose(&self, args: &[&str]) -> String {
        self.compose_with(&self.image, args)
    }

    /// The container id of a service.
    fn container(&self, service: &str) -> String {
        self.compose(&["ps", "-q", service])
    }

    fn network(&self) -> String {
        format!("{}_embedeval", self.project)
    }

    /// Makes the secrets (a CA and a certificate naming every replica,
    /// localhost and 127.0.0.1, and the token), then `up -d`.
    fn up(image: &str) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        make_certificates(secrets.path());
        std::fs::write(secrets.path().join("token"), TOKEN).unwrap();
        // The replicas run as uid 10001: the bind-mounted secret files must
        // be readable by it (a test key; deployed keys are chowned instead).
        for name in ["token", "tls.crt", "tls.key", "ca.crt"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                secrets.path().join(name),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        let stack = Self {
            project: format!("embedevalsuite{}", std::process::id()),
            secrets,
            ports: [0, 0, 0].map(|_| common::cluster::free_port()),
            image: image.into(),
            saved: Mutex::new(BTreeMap::new()),
        };
        stack.compose(&["up", "-d", "--no-build"]);
        stack
    }

    fn url(&self, i: usize) -> String {
        format!("https://localhost:{}", self.ports[i])
    }

    async fn channel(&self, i: usize) -> Channel {
        let ca = self.secrets.path().join("ca.crt");
        embedeval::cli::endpoint(&self.url(i), Some(&ca))
            .unwrap()
            .connect_lazy()
    }

    async fn authed(&self, i: usize) -> Authed {
        InterceptedService::new(
            self.channel(i).await,
            Bearer(Some(format!("Bearer {TOKEN}").parse().unwrap())),
        )
    }

    async fn evaluation(&self, i: usize) -> EvaluationServiceClient<Authed> {
        EvaluationServiceClient::new(self.authed(i).await)
    }

    async fn models(&self, i: usize) -> ModelServiceClient<Authed> {
        ModelServiceClient::new(self.authed(i).await)
    }

    /// grpc.health.v1 of replica `i`, if it answers.
    async fn health(&self, i: usize) -> Option<ServingStatus> {
        let mut client = HealthClient::new(self.channel(i).await);
        let call = client.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(Duration::from_secs(3), call).await {
            Ok(Ok(r)) => ServingStatus::try_from(r.into_inner().status).ok(),
            _ => None,
        }
    }

    /// Waits until replica `i` answers SERVING; how long it took.
    async fn wait_serving(&self, i: usize, within: Duration) -> Duration {
        let started = Instant::now();
        while self.health(i).await != Some(ServingStatus::Serving) {
            assert!(
                started.elapsed() < within,
                "{} not SERVING after {within:?}:\n{}",
                REPLICAS[i],
                self.tail(REPLICAS[i])
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        started.elapsed()
    }

    /// Docker's HEALTHCHECK verdict on a service's container.
    fn health_status(&self, service: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &self.container(service),
        ])
    }

    fn logs(&self, service: &str) -> String {
        let out = run("docker", &["logs", &self.container(service)], &[]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn tail(&self, service: &str) -> String {
        let logs = self.logs(service);
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops a replica's container (gracefully, as `docker stop` does) and
    /// keeps its logs, to the last line it wrote, before it is replaced.
    fn stop_and_save_logs(&self, service: &str) {
        let id = self.container(service);
        docker(&["stop", &id]);
        let out = run("docker", &["logs", &id], &[]);
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.saved.lock().unwrap().insert(id, logs);
    }

    /// Every log line of every replica container, past and present, parsed.
    fn log_records(&self) -> Vec<serde_json::Value> {
        let mut texts: BTreeMap<String, String> = self.saved.lock().unwrap().clone();
        for r in REPLICAS {
            texts.insert(self.container(r), self.logs(r));
        }
        texts
            .values()
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .collect()
    }

    /// How many times each evaluation was computed to completion.
    fn completions(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for v in self.log_records() {
            if v["fields"]["message"] == "evaluation completed" {
                if let Some(id) = v["fields"]["id"].as_str() {
                    *out.entry(id.to_string()).or_default() += 1;
                }
            }
        }
        out
    }

    /// SQL through psql in PostgreSQL's container; rows of `|`-separated
    /// fields.
    fn sql(&self, query: &str) -> Vec<Vec<String>> {
        let out = ok(
            "docker",
            &[
                "exec",
                &self.container("postgres"),
                "psql",
                "-U",
                "embedeval",
                "-d",
                "embedeval",
                "-At",
                "-c",
                query,
            ],
            &[],
        );
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect()
    }

    /// The replica holding the job of evaluation `id`, and its attempt.
    fn holder(&self, id: &str) -> Option<(String, i64)> {
        self.sql(&format!(
            "SELECT j.owner, j.attempt FROM jobs j JOIN job_members m ON m.job_id = j.id \
             WHERE m.evaluation_id = '{id}'"
        ))
        .into_iter()
        .next()
        .map(|row| (row[0].clone(), row[1].parse().unwrap()))
    }

    /// The evaluation, read through the first replica that answers.
    async fn get_any(&self, id: &str) -> proto::EvaluationReport {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            for i in 0..3 {
                let call = self.get(i, id);
                if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(5), call).await {
                    return r;
                }
            }
            assert!(Instant::now() < until, "no replica answers for {id}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn get(&self, i: usize, id: &str) -> Result<proto::EvaluationReport, Status> {
        self.evaluation(i)
            .await
            .get_evaluation(GetEvaluationRequest { id: id.into() })
            .await
            .map(|r| r.into_inner())
    }

    /// A detached evaluation of `model` on digits through replica `i`.
    async fn submit(&self, i: usize, model: &str) -> String {
        let mut stream = self
            .evaluation(i)
            .await
            .evaluate(EvaluateRequest {
                model: model.into(),
                dataset: "digits".into(),
                spec: Some(spec()),
                detach: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("submit to {}: {s}", REPLICAS[i]))
            .into_inner();
        let Some(evaluate_event::Event::Accepted(a)) =
            stream.message().await.unwrap().unwrap().event
        else {
            panic!("a detached evaluation answers Accepted")
        };
        a.evaluation_ids[0].clone()
    }

    /// Waits for every evaluation in `ids` to end; their reports.
    async fn wait_ended(
        &self,
        ids: &[String],
        within: Duration,
    ) -> BTreeMap<String, proto::EvaluationReport> {
        let until = Instant::now() + within;
        let mut out = BTreeMap::new();
        for id in ids {
            loop {
                let r = self.get_any(id).await;
                let ended = [
                    EvaluationStatus::Completed,
                    EvaluationStatus::Failed,
                    EvaluationStatus::Cancelled,
                ]
                .iter()
                .any(|s| *s as i32 == r.status);
                if ended {
                    out.insert(id.clone(), r);
                    break;
                }
                assert!(
                    Instant::now() < until,
                    "{id} did not end: {:?}\n{}",
                    self.holder(id),
                    REPLICAS
                        .iter()
                        .map(|r| format!("{r}:\n{}", self.tail(r)))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        out
    }

    /// Waits until one of `ids` runs on `replica` (by the jobs table, and
    /// RUNNING by the report); that id.
    async fn running_on(&self, replica: &str, ids: &[String]) -> String {
        let until = Instant::now() + Duration::from_secs(180);
        loop {
            for id in ids {
                if self.holder(id).is_some_and(|(owner, _)| owner == replica)
                    && self.get_any(id).await.status == EvaluationStatus::Running as i32
                {
                    return id.clone();
                }
            }
            assert!(Instant::now() < until, "{replica} ran none of {ids:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the job of `id` is held by a replica other than
    /// `replica`; how long that took.
    async fn taken_from(&self, replica: &str, id: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Some((owner, _)) = self.holder(id) {
                if owner != replica {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < within,
                "{id} stayed with {replica} for {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The suite's exactly-once accounting over `ids`: each COMPLETED and
    /// computed to completion once, and its report byte-identical through
    /// every replica. Prints the fault's line first.
    async fn account(&self, fault: &str, ids: &[String], recovery: Duration) {
        let reports = self.wait_ended(ids, Duration::from_secs(600)).await;
        let completions = self.completions();
        let count = |id: &String| completions.get(id).copied().unwrap_or(0);
        let twice = ids.iter().filter(|id| count(id) > 1).count();
        eprintln!(
            "FAULT | {fault} | submitted {} | completed {} | computed twice {twice} | recovered in {:.1} s",
            ids.len(),
            reports
                .values()
                .filter(|r| r.status == EvaluationStatus::Completed as i32)
                .count(),
            recovery.as_secs_f64()
        );
        for (id, r) in &reports {
            assert_eq!(
                r.status,
                EvaluationStatus::Completed as i32,
                "{fault}: {id} ended {:?}: {}",
                EvaluationStatus::try_from(r.status),
                r.error
            );
            assert_eq!(
                count(id),
                1,
                "{fault}: {id} computed to completion {} times",
                count(id)
            );
            let bytes = r.encode_to_vec();
            for (i, replica) in REPLICAS.iter().enumerate() {
                let again = self.get(i, id).await.unwrap();
                assert_eq!(
                    again.encode_to_vec(),
                    bytes,
                    "{fault}: {id} reads differently through {replica}"
                );
            }
        }
        let done: BTreeSet<String> = self
            .sql("SELECT m.evaluation_id FROM jobs j JOIN job_members m ON m.job_id = j.id WHERE j.done = 1")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        for id in ids {
            assert!(done.contains(id), "{fault}: the job of {id} is not ended");
        }
    }

    /// Whether a replica's logs say it gave up `id`'s job: it noticed the
    /// lease lost (or lapsed), or its write was fenced.
    fn noticed_lost(&self, replica: &str, id: &str) -> bool {
        let job = self.sql(&format!(
            "SELECT job_id FROM job_members WHERE evaluation_id = '{id}'"
        ))[0][0]
            .clone();
        self.logs(replica).lines().any(|l| {
            (l.contains("lease lost")
                || l.contains("lease lapsed")
                || l.contains("records nothing more"))
                && (l.contains(&job) || l.contains(id))
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::env::var_os("EMBEDEVAL_KEEP_STACK").is_some() {
            eprintln!("kept: docker-compose -p {}", self.project);
            return;
        }
        let file = Self::compose_file();
        let _ = run(
            "docker-compose",
            &[
                "-p",
                &self.project,
                "-f",
                file.to_str().unwrap(),
                "down",
                "-v",
                "--remove-orphans",
                "-t",
                "2",
            ],
            &self.env(&self.image),
        );
    }
}

/// A CA, and a certificate it signs for the replicas' names, localhost and
/// 127.0.0.1 (what the HEALTHCHECK dials): ca.crt, tls.crt, tls.key.
fn make_certificates(dir: &Path) {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=DNS:replica1,DNS:replica2,DNS:replica3,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [Vec<String>; 3] = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=embedeval suite CA",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([path("ca.key"), "-out".into(), path("ca.crt")])
        .collect(),
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=replica",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([path("tls.key"), "-out".into(), path("tls.csr")])
        .collect(),
        vec![
            "x509".into(),
            "-req".into(),
            "-in".into(),
            path("tls.csr"),
            "-CA".into(),
            path("ca.crt"),
            "-CAkey".into(),
            path("ca.key"),
            "-CAcreateserial".into(),
            "-days".into(),
            "1".into(),
            "-extfile".into(),
            path("ext.cnf"),
            "-out".into(),
            path("tls.crt"),
        ],
    ];
    for args in steps {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const MODELS: [&str; 3] = ["infonce-t0.1", "infonce-t0.2", "infonce-t0.5"];

/// Pairs of the sampled uniformity per evaluation: what makes an evaluation
/// of the digits last long enough (a few seconds on one compute thread) for
/// a fault to land while it runs.
const SAMPLES: u64 = 30_000_000;

/// Every metric, the uniformity sampled from [`SAMPLES`] pairs.
fn spec() -> MetricSpec {
    MetricSpec {
        uniformity_exact_max_rows: Some(100),
        uniformity_samples: Some(SAMPLES),
        ..Default::default()
    }
}

/// Submits `n` detached evaluations round-robin over the replicas in
/// `through` (and the models).
async fn submit_many(stack: &Stack, n: usize, through: &[usize]) -> Vec<String> {
    let mut ids = Vec::new();
    for k in 0..n {
        let i = through[k % through.len()];
        ids.push(
            stack
                .submit(i, MODELS[(k / through.len()) % MODELS.len()])
                .await,
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image: run by `make containers` (part of `make test`) after `make image`"]
async fn containers_ride_out_kills_cuts_pauses_store_and_database_restarts_and_a_rolling_update() {
    if let Some(reason) = skip_reason() {
        eprintln!("\n*** CONTAINER SUITE SKIPPED: {reason} ***\n");
        return;
    }
    let suite = Instant::now();
    let image = std::env::var("EMBEDEVAL_IMAGE")
        .unwrap_or_else(|_| format!("embedeval:{}", env!("CARGO_PKG_VERSION")));
    let inspected = run(
        "docker",
        &["image", "inspect", "--format", "{{.Size}}", &image],
        &[],
    );
    assert!(
        inspected.status.success(),
        "image {image} is missing: run `make image`"
    );
    let size: f64 = String::from_utf8_lossy(&inspected.stdout)
        .trim()
        .parse()
        .unwrap();

    // The image alone: --help, non-root.
    let help = docker(&["run", "--rm", &image, "--help"]);
    assert!(help.contains("serve"), "{help}");
    let user = docker(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user, "10001:10001");

    // Up: cold start of three replicas to SERVING.
    let started = Instant::now();
    let stack = Stack::up(&image);
    for i in 0..3 {
        stack.wait_serving(i, Duration::from_secs(240)).await;
    }
    let cold_start = started.elapsed();
    // One replica restarted alone: the image's own cold start.
    let r2 = stack.container("replica2");
    docker(&["stop", "-t", "10", &r2]);
    let restart = Instant::now();
    docker(&["start", &r2]);
    stack.wait_serving(1, Duration::from_secs(240)).await;
    eprintln!(
        "IMAGE | {image} | {:.0} MB | cold start to SERVING: {:.1} s for one container, {:.1} s for the stack from `up -d` (three replicas, PostgreSQL, store)",
        size / 1e6,
        restart.elapsed().as_secs_f64(),
        cold_start.as_secs_f64()
    );

    // Deployed as the image says: read-only root, non-root user, healthy.
    let r1 = stack.container("replica1");
    assert_eq!(docker(&["exec", &r1, "id", "-u"]), "10001");
    let touched = run("docker", &["exec", &r1, "touch", "/app/x"], &[]);
    assert!(!touched.status.success(), "the root filesystem is writable");
    let until = Instant::now() + Duration::from_secs(90);
    for r in REPLICAS {
        while stack.health_status(r) != "healthy" {
            assert!(
                Instant::now() < until,
                "{r}: HEALTHCHECK says {}",
                stack.health_status(r)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let health = docker(&[
        "exec",
        &r1,
        "/app/embedeval",
        "health",
        "--server",
        "https://127.0.0.1:50051",
        "--ca-cert",
        "/run/secrets/ca.crt",
    ]);
    eprintln!("health inside replica1: {health}");

    // TLS and the token, as deployed: no token, or plain text, is refused.
    let refused = EvaluationServiceClient::new(stack.channel(0).await)
        .get_evaluation(GetEvaluationRequest { id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused}");
    let plain = embedeval::cli::endpoint(&format!("http://localhost:{}", stack.ports[0]), None)
        .unwrap()
        .connect()
        .await;
    let plain_call = match plain {
        Err(_) => true,
        Ok(ch) => EvaluationServiceClient::new(ch)
            .get_evaluation(GetEvaluationRequest { id: "x".into() })
            .await
            .is_err(),
    };
    assert!(plain_call, "plain text was served");
    // The CLI from the host, through replica2.
    let cli = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args([
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--format",
            "json",
        ])
        .args(["--server", &stack.url(1), "--ca-cert"])
        .arg(stack.secrets.path().join("ca.crt"))
        .arg("--token-file")
        .arg(stack.secrets.path().join("token"))
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "the CLI through replica2: {}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // 1. A replica killed mid-evaluation, and PostgreSQL's container stopped
    //    and started meanwhile.
    let ids = submit_many(&stack, 12, &[0, 1, 2]).await;
    let victim = stack.running_on("replica3", &ids).await;
    let fault = Instant::now();
    docker(&["kill", &stack.container("replica3")]);
    let recovered = stack
        .taken_from("replica3", &victim, Duration::from_secs(60))
        .await;
    let pg = stack.container("postgres");
    docker(&["stop", &pg]);
    let meanwhile = stack
        .evaluation(0)
        .await
        .list_evaluations(proto::ListEvaluationsRequest {
            dataset: "digits".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(meanwhile.code(), Code::Unavailable, "{meanwhile}");
    eprintln!("while PostgreSQL is away: {}", meanwhile.message());
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["start", &pg]);
    docker(&["start", &stack.container("replica3")]);
    stack
        .account(
            "docker kill replica3 mid-evaluation + PostgreSQL stopped and started",
            &ids,
            recovered,
        )
        .await;
    eprintln!("(kill phase: {:.1} s)", fault.elapsed().as_secs_f64());
    stack.wait_serving(2, Duration::from_secs(120)).await;

    // 2. A replica cut off from the network for longer than the lease.
    for (service, i, how) in [("replica2", 1usize, "network"), ("replica1", 0, "pause")] {
        let others: Vec<usize> = (0..3).filter(|k| *k != i).collect();
        let ids = submit_many(&stack, 6, &[i, i, others[0]]).await;
        let held = stack.running_on(service, &ids).await;
        let container = stack.container(service);
        let net = stack.network();
        let fault = Instant::now();
        if how == "network" {
            docker(&["network", "disconnect", &net, &container]);
        } else {
            docker(&["pause", &container]);
        }
        let recovered = stack
            .taken_from(service, &held, Duration::from_secs(60))
            .await;
        // Cut off past the lease, whatever the takeover took.
        let past = (LEASE * 2).saturating_sub(fault.elapsed());
        tokio::time::sleep(past).await;
        if how == "network" {
            docker(&["network", "connect", "--alias", service, &net, &container]);
        } else {
            docker(&["unpause", &container]);
        }
        let label = if how == "network" {
            format!(
                "docker network disconnect {service} holding a job ({:.0} s)",
                fault.elapsed().as_secs_f64()
            )
        } else {
            format!(
                "docker pause {service} holding a job ({:.0} s)",
                fault.elapsed().as_secs_f64()
            )
        };
        stack.account(&label, &ids, recovered).await;
        // It noticed, wrote nothing for the job (its report is the other
        // replica's, computed once), and serves again.
        let until = Instant::now() + Duration::from_secs(60);
        while !stack.noticed_lost(service, &held) {
            assert!(
                Instant::now() < until,
                "{service} never noticed it lost {held}:\n{}",
                stack.tail(service)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (owner, attempt) = stack.holder(&held).unwrap();
        assert!(
            owner != service && attempt >= 2,
            "{held}: {owner} {attempt}"
        );
        stack.wait_serving(i, Duration::from_secs(60)).await;
        let again = stack.submit(i, MODELS[0]).await;
        stack
            .account(
                &format!("{service} serving again"),
                &[again],
                Duration::ZERO,
            )
            .await;
    }

    // 3. The store's container stopped and started: UNAVAILABLE naming it
    //    meanwhile, nothing it held lost.
    let registered = stack
        .models(0)
        .await
        .register_model(futures::stream::iter(common::zoo_upload(
            "infonce-t0.1",
            "uploaded-before",
        )))
        .await
        .unwrap()
        .into_inner();
    let store = stack.container("store");
    let fault = Instant::now();
    docker(&["stop", &store]);
    let meanwhile = stack
        .models(1)
        .await
        .register_model(futures::stream::iter(common::zoo_upload(
            "infonce-t0.1",
            "uploaded-during",
        )))
        .await
        .unwrap_err();
    assert_eq!(meanwhile.code(), Code::Unavailable, "{meanwhile}");
    eprintln!("while the store is away: {}", meanwhile.message());
    docker(&["start", &store]);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let again = stack
            .models(1)
            .await
            .register_model(futures::stream::iter(common::zoo_upload(
                "infonce-t0.1",
                "uploaded-during",
            )))
            .await;
        match again {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(s) => panic!("registering after the store came back: {s}"),
        }
    }
    let recovered = fault.elapsed();
    // The model uploaded before, evaluated through a replica that never
    // had it: fetched from the store, which kept it.
    let ids = vec![
        stack.submit(2, &registered.name).await,
        stack.submit(1, "uploaded-during").await,
    ];
    stack
        .account("store stopped and started", &ids, recovered)
        .await;

    // 4. A rolling update: each replica recreated in turn from a newly
    //    built image while 30 detached evaluations run.
    let next = format!("{image}-next");
    let build = Instant::now();
    ok(
        "docker",
        &[
            "build",
            "-q",
            "-t",
            &next,
            "--label",
            &format!("org.embedeval.rollout={}", std::process::id()),
            env!("CARGO_MANIFEST_DIR"),
        ],
        &[],
    );
    eprintln!(
        "(the next image built in {:.1} s)",
        build.elapsed().as_secs_f64()
    );
    let ids = submit_many(&stack, 30, &[0, 1, 2]).await;
    let fault = Instant::now();
    for (i, r) in REPLICAS.iter().enumerate() {
        // Stopped first, so that its logs are kept to its last line (a job
        // it completes while shutting down is counted).
        stack.stop_and_save_logs(r);
        stack.compose_with(&next, &["up", "-d", "--no-deps", "--no-build", r]);
        stack.wait_serving(i, Duration::from_secs(180)).await;
        let running = docker(&[
            "inspect",
            "--format",
            "{{.Config.Image}}",
            &stack.container(r),
        ]);
        assert_eq!(running, next);
    }
    let rolled = fault.elapsed();
    stack
        .account(
            "rolling update of three replicas, 30 detached evaluations",
            &ids,
            rolled,
        )
        .await;
    drop(stack);
    let _ = run("docker", &["rmi", &next], &[]);
    eprintln!("(container suite: {:.0} s)", suite.elapsed().as_secs_f64());
}

/// `make stack` and `make stack-down` (deploy/up, deploy/down) against the
/// Docker engine, in a compose project, secrets folder and ports of their own
/// (so a stack of deploy/secrets running here is left alone): the stack comes
/// up SERVING, the `eval` line deploy/up prints works as printed, a second
/// deploy/up keeps the secrets it made, and deploy/down removes the
/// containers and volumes but not the secrets.
#[test]
#[ignore = "needs the images: run by `make containers` (part of `make test`) after `make image`"]
fn make_stack_comes_up_prints_an_eval_line_that_works_and_stack_down_removes_it() {
    if let Some(reason) = skip_reason() {
        eprintln!("\n*** CONTAINER SUITE SKIPPED: {reason} ***\n");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let project = format!("embedevalstack{}", std::process::id());
    let image = std::env::var("EMBEDEVAL_IMAGE")
        .unwrap_or_else(|_| format!("embedeval:{}", env!("CARGO_PKG_VERSION")));
    let ports = [0, 0, 0].map(|_| common::cluster::free_port());
    let mut env = vec![
        ("COMPOSE_PROJECT_NAME".to_string(), project.clone()),
        ("EMBEDEVAL_SECRETS".into(), secrets.to_str().unwrap().into()),
        ("EMBEDEVAL_IMAGE".into(), image),
    ];
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("EMBEDEVAL_PORT_{}", i + 1), port.to_string()));
    }
    let script = |name: &str| {
        let out = Command::new(root.join("deploy").join(name))
            .current_dir(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            // The password deploy/up makes and keeps in the secrets.
            .env_remove("EMBEDEVAL_DB_PASSWORD")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "deploy/{name}:\n{text}");
        (String::from_utf8_lossy(&out.stdout).to_string(), text)
    };
    /// Takes the stack down however the test ends.
    struct Down<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _down = Down(|| {
        let _ = Command::new(root.join("deploy/down"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output();
    });

    let started = Instant::now();
    let (stdout, all) = script("up");
    eprintln!(
        "deploy/up, the images present: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for port in ports {
        assert!(
            stdout.contains(&format!("https://localhost:{port}")),
            "{all}"
        );
    }
    for f in ["ca.crt", "token"] {
        assert!(stdout.contains(secrets.join(f).to_str().unwrap()), "{all}");
    }
    // The eval line, run as printed from the repository's root.
    let line = stdout
        .lines()
        .find(|l| l.contains(" eval infonce-t0.5 --dataset digits "))
        .unwrap_or_else(|| panic!("no eval line:\n{all}"))
        .trim();
    let eval = Command::new("bash")
        .args(["-c", line])
        .current_dir(root)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success() && printed.contains("infonce-t0.5"),
        "{line}:\n{printed}{}",
        String::from_utf8_lossy(&eval.stderr)
    );

    // Again: nothing made anew, the same token.
    let token = std::fs::read(secrets.join("token")).unwrap();
    let (_, again) = script("up");
    assert!(!again.contains("made in"), "{again}");
    assert_eq!(std::fs::read(secrets.join("token")).unwrap(), token);

    script("down");
    let label = format!("label=com.docker.compose.project={project}");
    assert_eq!(docker(&["ps", "-aq", "--filter", &label]), "");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &label]), "");
    assert_eq!(std::fs::read(secrets.join("token")).unwrap(), token);
}

/// The memory limit a container runs under, for the memory test.
const CONTAINER_MEMORY: &str = "640m";

/// One replica of the image in a container limited to [`CONTAINER_MEMORY`]
/// (swap included) on a host with far more: the payload limit it derives
/// from the memory available follows the container's cgroup, so an upload
/// of embeddings more than the container could hold is refused with
/// RESOURCE_EXHAUSTED while it streams, naming the memory it saw, and the
/// container is never OOM-killed; an evaluation that fits completes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the image: run by `make containers` (part of `make test`) after `make image`"]
async fn a_memory_limited_container_refuses_what_its_limit_cannot_hold_and_lives() {
    if let Some(reason) = skip_reason() {
        eprintln!("\n*** CONTAINER SUITE SKIPPED: {reason} ***\n");
        return;
    }
    let image = std::env::var("EMBEDEVAL_IMAGE")
        .unwrap_or_else(|_| format!("embedeval:{}", env!("CARGO_PKG_VERSION")));
    let name = format!("embedeval-memory-{}", std::process::id());
    let port = common::cluster::free_port();
    /// Removes the container however the test ends.
    struct Removed(String);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _removed = Removed(name.clone());
    let published = format!("127.0.0.1:{port}:50051");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--memory",
        CONTAINER_MEMORY,
        "--memory-swap",
        CONTAINER_MEMORY,
        "-p",
        &published,
        &image,
    ]);
    let channel = common::connect(&format!("127.0.0.1:{port}")).await;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status());
        if matches!(status, Ok(ServingStatus::Serving)) {
            break;
        }
        assert!(
            Instant::now() < until,
            "never SERVING: {}",
            docker(&["logs", "--tail", "20", &name])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Up to 1.5 GiB of test rows, made as they stream (4 MiB a message):
    // more than the container's whole memory, far less than the host's.
    let (rows, dim) = (8192usize, 128usize);
    let header = proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Header(
            proto::EmbeddingsHeader {
                name: "too-large".into(),
                dataset: "memory".into(),
                ..Default::default()
            },
        )),
    };
    let chunk = move |i: usize| proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Chunk(
            proto::EmbeddingsChunk {
                split: if i.is_multiple_of(2) { "test" } else { "train" }.into(),
                embeddings: Some(proto::Tensor {
                    dtype: proto::DataType::Float32 as i32,
                    shape: vec![rows as i64, dim as i64],
                    data: vec![(i % 251) as u8; rows * dim * 4],
                }),
                labels: (0..rows as i64).map(|r| r % 10).collect(),
            },
        )),
    };
    let messages = futures::stream::iter(std::iter::once(header).chain((0..384).map(chunk)));
    let started = Instant::now();
    let err = EvaluationServiceClient::new(channel.clone())
        .evaluate_embeddings(messages)
        .await
        .expect_err("1.5 GiB of embeddings in a 640 MiB container is refused");
    eprintln!(
        "memory: refused after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        err.message()
    );
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    // "derived from the 0.4 GiB of memory available …": the container's.
    let seen: f64 = err
        .message()
        .split("derived from the ")
        .nth(1)
        .and_then(|rest| rest.split(" GiB").next())
        .and_then(|gib| gib.parse().ok())
        .unwrap_or_else(|| panic!("no memory figure in: {}", err.message()));
    assert!(seen <= 0.65, "saw {seen} GiB available: {}", err.message());

    let state = docker(&[
        "inspect",
        "--format",
        "{{.State.OOMKilled}} {{.State.Running}} {{.RestartCount}}",
        &name,
    ]);
    assert_eq!(
        state.trim(),
        "false true 0",
        "{}",
        docker(&["logs", "--tail", "20", &name])
    );

    // What fits is evaluated.
    let small = vec![
        proto::EvaluateEmbeddingsRequest {
            payload: Some(proto::evaluate_embeddings_request::Payload::Header(
                proto::EmbeddingsHeader {
                    name: "fits".into(),
                    dataset: "memory".into(),
                    spec: Some(MetricSpec {
                        skip_linear: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        },
        small_split("test", 500, 32),
        small_split("train", 2000, 32),
    ];
    let report = EvaluationServiceClient::new(channel.clone())
        .evaluate_embeddings(futures::stream::iter(small))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        report.status,
        EvaluationStatus::Completed as i32,
        "{}",
        report.error
    );
    assert!(report.knn.is_some() && report.uniformity.is_some());
}

/// `rows` embeddings of `dim` in ten clusters with their labels, a split of
/// an EvaluateEmbeddings upload.
fn small_split(split: &str, rows: usize, dim: usize) -> proto::EvaluateEmbeddingsRequest {
    let mut data = Vec::with_capacity(rows * dim * 4);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for r in 0..rows {
        for c in 0..dim {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let centre = if c == r % 10 { 3.0 } else { 0.0 };
            data.extend_from_slice(&(centre + noise).to_le_bytes());
        }
    }
    proto::EvaluateEmbeddingsRequest {
        payload: Some(proto::evaluate_embeddings_request::Payload::Chunk(
            proto::EmbeddingsChunk {
                split: split.into(),
                embeddings: Some(proto::Tensor {
                    dtype: proto::DataType::Float32 as i32,
                    shape: vec![rows as i64, dim as i64],
                    data,
                }),
                labels: (0..rows as i64).map(|r| r % 10).collect(),
            },
        )),
    }
}
