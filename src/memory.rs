//! Giving memory back to the system after large work. The allocator keeps
//! what a finished evaluation freed (per-thread arenas hold it for reuse),
//! so a server that ran one large evaluation would otherwise keep much of
//! its peak for good. Two measures, on glibc (elsewhere both are no-ops):
//! the server caps the number of malloc arenas at start (`--malloc-arenas`,
//! before any thread runs: fewer arenas, less memory stranded between
//! them), and after each job, and after a model is loaded, the free memory
//! of every arena is returned with `malloc_trim(0)`.

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

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_resident_size_and_releases_without_harm() {
        super::release();
        let rss = super::resident_bytes().unwrap();
        assert!(rss > 1 << 20, "{rss}");
    }
}
