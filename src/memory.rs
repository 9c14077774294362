//! Giving memory back to the system after large work. The allocator keeps
//! what a finished evaluation freed (per-thread arenas hold it for reuse),
//! so a server that ran one large evaluation would otherwise keep its peak
//! for good. After each job, and after a model is loaded, the free memory of
//! every arena is returned with glibc's `malloc_trim(0)`; elsewhere this is
//! a no-op.

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
