//! Several server processes on loopback ports (replicas), an S3-compatible
//! server (moto, from tests/cluster/.venv) and a proxy in front of it that
//! a test takes down and up: what the multi-replica test and the scaling
//! benchmark start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A TCP proxy in front of the store that a test takes down and up.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    upstream: u16,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    /// A proxy to `upstream`, accepting.
    pub async fn start(upstream: u16) -> Self {
        let proxy = Self {
            port: free_port(),
            upstream,
            tasks: Arc::default(),
        };
        proxy.up().await;
        proxy
    }

    /// Accepts connections and forwards them.
    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let (upstream, tasks) = (self.upstream, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Refuses connections and cuts the open ones.
    pub async fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
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
