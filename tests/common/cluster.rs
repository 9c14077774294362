//! Several server processes on loopback ports (replicas), an S3-compatible
//! server (moto, from tests/cluster/.venv) and a proxy in front of it that
//! a test takes down and up: what the multi-replica test and the scaling
//! benchmark start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedeval::proto::evaluation_service_client::EvaluationServiceClient;
use embedeval::proto::{self, evaluate_event, EvaluateRequest, MetricSpec};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The bucket [`Moto::start`] creates.
pub const BUCKET: &str = "embedeval";

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// moto's S3 server on a loopback port, with the bucket [`BUCKET`].
pub struct Moto {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Moto {
    /// Starts it (from tests/cluster/.venv, made by scripts/bootstrap).
    pub fn start() -> Self {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/.venv/bin/moto_server");
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/bootstrap",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Self { child, port };
        let until = Instant::now() + Duration::from_secs(30);
        while http(moto.port, "PUT", &format!("/{BUCKET}")) != Some(200) {
            assert!(Instant::now() < until, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request; its status code, None when nothing answers.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

/// What [`Proxy`] does to each connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwards it.
    None,
    /// Holds it this long, then forwards it (a slow store).
    Delay(Duration),
    /// Closes it at once, before any answer (a store that resets).
    Reset,
    /// Answers its request `503 Service Unavailable` and closes it.
    Unavailable,
    /// Forwards the request, but cuts the answer after this many bytes.
    CutAfter(usize),
}

/// A TCP proxy in front of the store that a test takes down and up, or
/// makes misbehave ([`Fault`]).
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    upstream: u16,
    fault: Arc<Mutex<Fault>>,
    accept: Mutex<Option<tokio::task::AbortHandle>>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// A proxy to `upstream`, accepting.
    pub async fn start(upstream: u16) -> Self {
        let proxy = Self {
            port: free_port(),
            upstream,
            fault: Arc::new(Mutex::new(Fault::None)),
            accept: Mutex::new(None),
            conns: Arc::default(),
        };
        proxy.up().await;
        proxy
    }

    /// Accepts connections and treats them as [`Proxy::set`] said.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let (upstream, fault, conns) = (self.upstream, self.fault.clone(), self.conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let fault = *fault.lock().unwrap();
                let conn = tokio::spawn(serve(inbound, upstream, fault));
                conns.lock().unwrap().push(conn.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(accept.abort_handle());
    }

    /// Refuses connections and cuts the open ones.
    pub async fn down(&self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        self.cut_open();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Treats every connection from now on as `fault` says, and cuts the
    /// open ones (a client's pooled connection would otherwise escape it).
    pub async fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.cut_open();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn cut_open(&self) {
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

/// One connection through the proxy under `fault`.
async fn serve(mut inbound: tokio::net::TcpStream, upstream: u16, fault: Fault) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", upstream));
    match fault {
        Fault::None => {
            if let Ok(mut out) = connect().await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
            }
        }
        Fault::Delay(by) => {
            tokio::time::sleep(by).await;
            if let Ok(mut out) = connect().await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
            }
        }
        Fault::Reset => drop(inbound),
        Fault::Unavailable => {
            // The request's head, then the answer; what the client still
            // sends is read and dropped so that closing does not reset the
            // connection before the answer is read.
            let mut head = Vec::new();
            let mut buf = [0u8; 8192];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match inbound.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = "<Error><Code>SlowDown</Code><Message>unavailable</Message></Error>";
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = inbound.write_all(answer.as_bytes()).await;
            let _ = inbound.shutdown().await;
            let drain = async { while matches!(inbound.read(&mut buf).await, Ok(n) if n > 0) {} };
            let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        }
        Fault::CutAfter(limit) => {
            let Ok(out) = connect().await else { return };
            let (mut from_client, mut to_client) = inbound.into_split();
            let (mut from_store, mut to_store) = out.into_split();
            let forward = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_store).await;
            });
            let mut buf = [0u8; 8192];
            let mut sent = 0;
            while sent < limit {
                match from_store.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let n = n.min(limit - sent);
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                }
            }
            forward.abort();
        }
    }
}

/// The environment that points a replica at the store behind `proxy`.
pub fn store_env(proxy: &Proxy) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", proxy.port)),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

/// A replica process, its log in its data folder.
pub struct Replica {
    /// Its --replica-id.
    pub name: String,
    /// Its gRPC address.
    pub addr: String,
    child: Child,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl Replica {
    /// `bin serve` as replica `name` on a free port with its own data
    /// folder, JSON logs, and `args` and `envs` added.
    pub fn start(bin: &Path, name: &str, args: &[String], envs: &[(&str, String)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let addr = super::free_addr();
        let log = data.path().join("server.log");
        let child = Command::new(bin)
            .args(["serve", "--addr", &addr, "--replica-id", name, "--log-json"])
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("EMBEDEVAL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            name: name.into(),
            addr,
            child,
            log,
            _data: data,
        }
    }

    /// Its --data-dir.
    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        super::connect(&self.addr).await
    }

    /// Waits (up to 120 s) until its health says SERVING.
    pub async fn wait_serving(&self) {
        let channel = self.channel().await;
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let status = HealthClient::new(channel.clone())
                .check(HealthCheckRequest::default())
                .await
                .map(|r| r.into_inner().status());
            if matches!(status, Ok(ServingStatus::Serving)) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{} never became SERVING: {}",
                self.name,
                self.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of its log.
    pub fn tail(&self) -> String {
        tail_of(&self.log)
    }

    /// The evaluation ids this replica's log says it completed.
    pub fn completed(&self) -> Vec<String> {
        self.logged("evaluation completed", "id")
    }

    /// The job ids this replica's log says it took over from another.
    pub fn took_over(&self) -> Vec<String> {
        self.logged("taking a job over", "job")
    }

    /// Field `field` of each line of its JSON log whose message is `message`.
    fn logged(&self, message: &str, field: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .filter_map(|v| v["fields"][field].as_str().map(str::to_string))
            .collect()
    }

    /// SIGTERM, then waits (up to `within`) for the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        super::sigterm(&self.child);
        let (name, log) = (self.name.clone(), self.log.clone());
        super::exit_within(&mut self.child, within, &name, || tail_of(&log))
    }

    /// SIGSTOP (`pause`) or SIGCONT: the process stops answering, holding
    /// its connections, as a paused container does.
    pub fn signal(&self, pause: bool) {
        let sig = if pause { "-STOP" } else { "-CONT" };
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

/// A detached evaluation of `model` on digits with `spec` through
/// `channel`: its first evaluation id, or the status that refused it.
pub async fn submit_detached(
    channel: &Channel,
    model: &str,
    spec: MetricSpec,
) -> Result<String, tonic::Status> {
    let mut stream = EvaluationServiceClient::new(channel.clone())
        .evaluate(EvaluateRequest {
            model: model.into(),
            dataset: "digits".into(),
            spec: Some(spec),
            detach: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    match stream.message().await?.and_then(|m| m.event) {
        Some(evaluate_event::Event::Accepted(a)) => Ok(a.evaluation_ids[0].clone()),
        other => panic!("a detached evaluation answers Accepted, not {other:?}"),
    }
}

/// Evaluation `id` through `channel`, riding out a database that restarts
/// or fails over (UNAVAILABLE, retried for up to `within`).
pub async fn get_riding_out(
    channel: &Channel,
    id: &str,
    within: Duration,
) -> proto::EvaluationReport {
    let until = Instant::now() + within;
    loop {
        match EvaluationServiceClient::new(channel.clone())
            .get_evaluation(proto::GetEvaluationRequest { id: id.into() })
            .await
        {
            Ok(r) => return r.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("GetEvaluation {id}: {s}"),
        }
    }
}

/// The last 20 lines of the log at `path`.
fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
