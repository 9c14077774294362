//! PostgreSQL with standbys: `--database-url` may list several hosts the way
//! libpq does (`postgres://user@primary:5432,standby:5432/db`). The store
//! writes to the first host that accepts writes (`pg_is_in_recovery()` is
//! false). When a connection to it fails, or it answers as a read-only
//! standby, the store looks again, every half second for up to two minutes
//! (the next failure starts another search), until one accepts writes:
//! after a failover (the primary gone, a standby promoted) every replica
//! follows without a restart. One connection pool per host, each opened
//! lazily; a single host (and SQLite) is one pool, as before.
//!
//! As with libpq, the first host not in recovery wins: an old primary that
//! comes back without being turned into a standby would be chosen by a
//! replica that starts then. Fence it (stop it, or rebuild it as a standby)
//! before it returns.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// How long a search for the writable host goes on before it gives up
/// (the next failure starts another).
const SEARCH: Duration = Duration::from_secs(120);
/// Between two rounds of a search.
const ROUND: Duration = Duration::from_millis(500);
/// How long one host may take to say whether it is in recovery.
const ASK: Duration = Duration::from_secs(2);
/// How long a request waits for a connection, with several hosts.
const ACQUIRE: Duration = Duration::from_secs(2);

/// The single-host URLs of `url`: one per host of a libpq multi-host URL
/// (`postgres://u:p@h1:5432,h2:5433/db?x=y` gives `postgres://u:p@h1:5432/db?x=y`
/// and `postgres://u:p@h2:5433/db?x=y`), `url` itself otherwise. Only hosts
/// listed before the path are split (not libpq's `?host=h1,h2` form), and
/// libpq's `target_session_attrs` is dropped: the store itself finds the
/// writable host. An empty host in the list is an error.
pub fn split(url: &str) -> Result<Vec<String>, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(vec![url.to_string()]);
    };
    // The authority ends at the path, the query or the fragment; the user
    // part is what precedes its last `@` (a password may hold a raw `@`).
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("target_session_attrs="))
                .collect();
            if kept.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_string(),
    };
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.len() > 1 && hosts.iter().any(|h| h.is_empty()) {
        return Err(format!(
            "its host list {:?} has an empty entry",
            hosts.join(",")
        ));
    }
    Ok(hosts
        .iter()
        .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
        .collect())
}

/// The database's hosts, their pools, and which one the store writes to.
pub struct Hosts {
    urls: Vec<String>,
    pools: Vec<AnyPool>,
    current: AtomicUsize,
    searching: AtomicBool,
}

impl Hosts {
    /// One lazily connected pool per host of `url`, made with `options`.
    /// A request waits at most [`ACQUIRE`] for a connection, so that one
    /// caught on a host that died answers UNAVAILABLE (and is retried) soon.
    pub fn lazy(url: &str, options: AnyPoolOptions) -> Result<Self, String> {
        let options = options.acquire_timeout(ACQUIRE);
        let urls = split(url)?;
        let pools = urls
            .iter()
            .map(|u| options.clone().connect_lazy(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            urls,
            pools,
            current: AtomicUsize::new(0),
            searching: AtomicBool::new(false),
        })
    }

    /// The single pool `pool`, of `url`.
    pub fn one(url: &str, pool: AnyPool) -> Self {
        Self {
            urls: vec![url.to_string()],
            pools: vec![pool],
            current: AtomicUsize::new(0),
            searching: AtomicBool::new(false),
        }
    }

    /// Whether there is more than one host.
    pub fn several(&self) -> bool {
        self.pools.len() > 1
    }

    /// The pool of the host written to.
    pub fn pool(&self) -> &AnyPool {
        &self.pools[self.current.load(Ordering::Relaxed)]
    }

    /// The URL of the host written to.
    pub fn url(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed)]
    }

    /// Every pool, to close them.
    pub fn pools(&self) -> &[AnyPool] {
        &self.pools
    }

    /// The host that accepts writes now, asking each in turn; the error of
    /// the last host asked when none does.
    pub async fn writable(&self) -> Result<usize, String> {
        let mut last = String::new();
        for (i, pool) in self.pools.iter().enumerate() {
            let asked = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(pool);
            match tokio::time::timeout(ASK, asked).await {
                Ok(Ok(false)) => return Ok(i),
                Ok(Ok(true)) => last = format!("host {} is a standby (in recovery)", i + 1),
                Ok(Err(e)) => last = format!("host {}: {e}", i + 1),
                Err(_) => last = format!("host {} did not answer within {ASK:?}", i + 1),
            }
        }
        Err(last)
    }

    /// Writes to host `i` from now on.
    pub fn write_to(&self, i: usize) {
        let before = self.current.swap(i, Ordering::Relaxed);
        if before != i {
            tracing::warn!(
                host = i + 1,
                of = self.pools.len(),
                "results database: writing to another host now (a failover)"
            );
        }
    }

    /// After a failure that may be a failover: searches for the writable
    /// host in the background (one search at a time; none with one host).
    pub fn follow(self: &Arc<Self>) {
        if !self.several() || self.searching.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.searching.store(false, Ordering::SeqCst);
            return;
        };
        /// Ends the search however its task ends (a runtime shutting down
        /// drops it), so that a later failure can start another.
        struct Searching(Arc<Hosts>);
        impl Drop for Searching {
            fn drop(&mut self) {
                self.0.searching.store(false, Ordering::SeqCst);
            }
        }
        let guard = Searching(self.clone());
        runtime.spawn(async move {
            let hosts = &guard.0;
            let until = Instant::now() + SEARCH;
            loop {
                match hosts.writable().await {
                    Ok(i) => {
                        hosts.write_to(i);
                        break;
                    }
                    Err(why) if Instant::now() < until => {
                        tracing::debug!(%why, "no writable results database host yet");
                        tokio::time::sleep(ROUND).await;
                    }
                    Err(why) => {
                        tracing::warn!(%why, "no results database host accepts writes");
                        break;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    fn split(url: &str) -> Vec<String> {
        super::split(url).unwrap()
    }

    #[test]
    fn a_multi_host_url_splits_into_one_url_per_host() {
        assert_eq!(
            split(
                "postgres://u:p@h1:5432,h2:5433/db?sslmode=disable&target_session_attrs=read-write"
            ),
            [
                "postgres://u:p@h1:5432/db?sslmode=disable",
                "postgres://u:p@h2:5433/db?sslmode=disable"
            ]
        );
        assert_eq!(
            split("postgresql://h1,h2/db?target_session_attrs=read-write"),
            ["postgresql://h1/db", "postgresql://h2/db"]
        );
        assert_eq!(split("postgres://u@h:5432/db"), ["postgres://u@h:5432/db"]);
        assert_eq!(
            split("postgres://h1,h2"),
            ["postgres://h1", "postgres://h2"]
        );
        // A raw `@` in the password; IPv6 hosts; an `@` in the query.
        assert_eq!(
            split("postgres://u:p@ss@h1,h2/db"),
            ["postgres://u:p@ss@h1/db", "postgres://u:p@ss@h2/db"]
        );
        assert_eq!(
            split("postgres://u@[::1]:5432,[::2]:5433/db"),
            ["postgres://u@[::1]:5432/db", "postgres://u@[::2]:5433/db"]
        );
        assert_eq!(
            split("postgres://h1,h2?application_name=a@b"),
            [
                "postgres://h1?application_name=a@b",
                "postgres://h2?application_name=a@b"
            ]
        );
        assert_eq!(
            split("sqlite:///tmp/a.db?mode=rwc"),
            ["sqlite:///tmp/a.db?mode=rwc"]
        );
        assert!(super::split("postgres://h1,,h2/db").is_err());
        assert!(super::split("postgres://h1,/db").is_err());
    }
}
