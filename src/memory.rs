//! Giving memory back to the system after large work. The allocator keeps
//! what a finished evaluation freed (per-thread arenas hold it for reuse),
//! so a server that ran one large evaluation would otherwise keep much of
//! its peak for good. Two measures, on glibc (elsewhere both are no-ops):
//! the server caps the number of malloc arenas at start (`--malloc-arenas`,
//! before any thread runs: fewer arenas, less memory stranded between
//! them), and after each job, and after a model is loaded, the free memory
//! of every arena is returned with `malloc_trim(0)`.
//!
//! Also what the machine has to give: the memory available to this process
//! ([`available_bytes`]) and the payload limit derived from it
//! ([`payload_limit`]).

/// Caps the allocator's arenas at `arenas` (0: the allocator's default of
/// eight per core). Call it before threads start.
pub fn limit_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if arenas > 0 {
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes
        // any positive count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas.min(i32::MAX as usize) as i32);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Returns free heap memory to the system where the allocator allows it.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // is thread-safe and has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// The resident set size of this process in bytes (Linux), for logs.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What an evaluation holds beyond its payload, as measured by
/// `bench/scale.py`: at most [`PAYLOAD_FACTOR`] × payload + [`PAYLOAD_SLACK`].
pub const PAYLOAD_FACTOR: f64 = 1.25;
/// The fixed part of an evaluation's memory beyond its payload.
pub const PAYLOAD_SLACK: u64 = 256 << 20;
/// The limit where the memory available cannot be read (not Linux).
pub const FALLBACK_PAYLOAD_LIMIT: u64 = 4 << 30;

/// The memory this process could still take, in bytes: `MemAvailable` of
/// /proc/meminfo, capped by its cgroup's limit less the cgroup's usage
/// (cgroup v2 memory.max and memory.current, or v1 limit_in_bytes and
/// usage_in_bytes). `None` where /proc/meminfo cannot be read.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .zip(read("/sys/fs/cgroup/memory.current"))
        .or_else(|| {
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .zip(read("/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        })
        .map(|(limit, used)| limit.saturating_sub(used));
    Some(cgroup.map_or(kib * 1024, |c| c.min(kib * 1024)))
}

/// The largest upload (dataset files, or EvaluateEmbeddings values) a
/// request may send, and where that number comes from (for the error that
/// refuses a larger one).
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where it comes from, in words.
    pub source: String,
}

/// The payload limit: `configured` (`--max-dataset-bytes`) when set, else
/// what the memory available now can hold, (available − [`PAYLOAD_SLACK`]) /
/// [`PAYLOAD_FACTOR`] (uploads running at the same time share it).
pub fn payload_limit(configured: Option<u64>) -> PayloadLimit {
    if let Some(bytes) = configured {
        return PayloadLimit {
            bytes,
            source: "set by --max-dataset-bytes".into(),
        };
    }
    match available_bytes() {
        Some(available) => PayloadLimit {
            bytes: (available.saturating_sub(PAYLOAD_SLACK) as f64 / PAYLOAD_FACTOR) as u64,
            source: format!(
                "derived from the {:.1} GiB of memory available when the upload began: \
                 (available - 256 MiB) / {PAYLOAD_FACTOR}; --max-dataset-bytes sets another",
                available as f64 / (1u64 << 30) as f64
            ),
        },
        None => PayloadLimit {
            bytes: FALLBACK_PAYLOAD_LIMIT,
            source: "the default where the memory available cannot be read; \
                     --max-dataset-bytes sets another"
                .into(),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_payload_limit_follows_the_memory_available_unless_set() {
        let available = super::available_bytes().unwrap();
        let derived = super::payload_limit(None);
        let want = available.saturating_sub(super::PAYLOAD_SLACK) as f64 / 1.25;
        // The memory available moves a little between the two readings.
        assert!(
            (derived.bytes as f64 - want).abs() < 0.05 * want + (64 << 20) as f64,
            "{derived:?} against {want}"
        );
        assert!(derived.source.contains("available"), "{}", derived.source);
        let set = super::payload_limit(Some(1 << 20));
        assert_eq!(set.bytes, 1 << 20);
        assert!(set.source.contains("--max-dataset-bytes"));
    }

    #[test]
    fn reads_its_own_resident_size_and_releases_without_harm() {
        super::release();
        let rss = super::resident_bytes().unwrap();
        assert!(rss > 1 << 20, "{rss}");
    }
}
