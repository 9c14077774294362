//! A throwaway PostgreSQL server for the store's tests: initdb into a
//! temporary folder, started on a free loopback port, stopped (and the
//! folder removed) on drop. It runs the Debian postgresql package that
//! scripts/bootstrap installs; as root it runs the server as the `postgres`
//! user, which initdb requires. Each test crate that includes it uses a
//! part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running test server.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    opts: String,
    port: u16,
    /// postgres://… URL of its `postgres` database.
    pub url: String,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/bootstrap")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn as_server_user(bin: &Path, tool: &str, args: &[&str]) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    cmd.args(args);
    cmd
}

/// A temporary folder owned by the server's user, and a free port.
fn place() -> (tempfile::TempDir, u16) {
    let dir = tempfile::Builder::new()
        .prefix("embedeval-pg")
        .tempdir()
        .unwrap();
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir.path())
        .status();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (dir, port)
}

impl TestPostgres {
    /// Starts a server; panics with the tools' output when it cannot.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Starts a server with `settings` (`-c name=value …`) added.
    pub fn start_with(settings: &str) -> Self {
        let bin = bin_dir();
        let (dir, port) = place();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&data)
            .status();
        let out = as_server_user(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "embedeval",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = Self::at(bin, dir, port, settings);
        server.start_again();
        server
    }

    fn at(bin: PathBuf, dir: tempfile::TempDir, port: u16, settings: &str) -> Self {
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 {settings}",
            dir.path().display()
        );
        Self {
            bin,
            url: format!("postgres://embedeval@127.0.0.1:{port}/postgres"),
            dir,
            opts,
            port,
        }
    }

    /// A streaming-replication standby of this server (`pg_basebackup -R`),
    /// started on a port of its own.
    pub fn standby(&self) -> Self {
        let (dir, port) = place();
        let data = dir.path().join("data");
        let out = as_server_user(
            &self.bin,
            "pg_basebackup",
            &[
                "-D",
                data.to_str().unwrap(),
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "embedeval",
                "-R",
                "-X",
                "stream",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let standby = Self::at(self.bin.clone(), dir, port, "");
        standby.start_again();
        standby
    }

    /// Stops the server at once, as a crash would (immediate shutdown).
    pub fn kill(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Promotes a standby: it accepts writes from now on.
    pub fn promote(&self) {
        self.pg_ctl(&["-w", "promote"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = as_server_user(&self.bin, "pg_ctl", &all).output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again, after [`TestPostgres::stop`]) on its port
    /// and data.
    pub fn start_again(&self) {
        let data = self.dir.path().join("data");
        let out = as_server_user(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &self.opts,
                "-l",
                self.dir.path().join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast shutdown: connections are closed).
    pub fn stop(&self) {
        let data = self.dir.path().join("data");
        let out = as_server_user(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_server_user(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        )
        .output();
    }
}
