//! Full volumes: whether an I/O error means the volume is full (ENOSPC,
//! EDQUOT), which volume a path is on (the folder the operator configured,
//! its mount point, `statvfs` for what is free), and the message a full
//! volume gets: what was being written, on which volume, what it needed and
//! what is free. [`crate::error::Error::io`] and the results database turn
//! a full volume into RESOURCE_EXHAUSTED with it.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The folders the operator configured, by the flag that names them
/// (`--data-dir`): a full volume is named by the flag of the folder a path
/// is in (clients see messages without the server's paths).
static ROOTS: RwLock<Vec<(PathBuf, &'static str)>> = RwLock::new(Vec::new());

/// Names `root` (a configured folder) by `flag` in full-volume messages.
pub fn name_root(root: &Path, flag: &'static str) {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut roots = ROOTS.write().unwrap_or_else(|e| e.into_inner());
    if !roots.iter().any(|(r, f)| *r == root && *f == flag) {
        roots.push((root, flag));
    }
}

/// The flag of the configured folder holding `path`, if any (the deepest).
fn root_flag(path: &Path) -> Option<&'static str> {
    let existing = existing_ancestor(path)?;
    let canonical = std::fs::canonicalize(existing).ok()?;
    let full = canonical.join(path.strip_prefix(existing).unwrap_or(Path::new("")));
    let roots = ROOTS.read().unwrap_or_else(|e| e.into_inner());
    roots
        .iter()
        .filter(|(root, _)| full.starts_with(root))
        .max_by_key(|(root, _)| root.components().count())
        .map(|(_, flag)| *flag)
}

/// Whether `err` says the volume (or the user's quota on it) is full.
pub fn is_full(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || err.kind() == std::io::ErrorKind::StorageFull
        || err.kind() == std::io::ErrorKind::QuotaExceeded
}

/// What a volume has: bytes free to unprivileged writers and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged process may still write (`f_bavail`).
    pub free: u64,
    /// The volume's size in bytes.
    pub total: u64,
}

/// The space of the volume holding `path` (or its nearest existing
/// ancestor); `None` when no ancestor can be asked.
pub fn space(path: &Path) -> Option<Space> {
    let existing = existing_ancestor(path)?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path and `stat` a zeroed statvfs the
    // call fills in; nothing else is read or kept.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let unit = stat.f_frsize as u64;
    Some(Space {
        free: (stat.f_bavail as u64).saturating_mul(unit),
        total: (stat.f_blocks as u64).saturating_mul(unit),
    })
}

/// The mount point of the volume holding `path`: the highest ancestor on
/// the same device.
pub fn mount_point(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let start = std::fs::canonicalize(existing_ancestor(path)?).ok()?;
    let device = std::fs::metadata(&start).ok()?.dev();
    let mut top = start.clone();
    for dir in start.ancestors().skip(1) {
        match std::fs::metadata(dir) {
            Ok(m) if m.dev() == device => top = dir.to_path_buf(),
            _ => break,
        }
    }
    Some(top)
}

fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .or_else(|| Some(Path::new(".")))
}

/// Bytes as people read them: "812 B", "3.4 KiB", "29.7 MiB", "1.20 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The message of a full volume: `context` (what was being written), the
/// volume holding `path` (by the flag of its configured folder, and its
/// mount point) with what is free of its size, and `needed` (bytes still to
/// write) when known.
pub fn full_message(context: &str, path: Option<&Path>, needed: Option<u64>) -> String {
    let flag = path.and_then(root_flag);
    let mut out = format!("{context}: ");
    match flag {
        Some(flag) => out.push_str(&format!("the {flag} volume is full")),
        None => out.push_str("no space left on the volume"),
    }
    if let Some(path) = path {
        if let Some(mount) = mount_point(path) {
            out.push_str(&format!(" (mounted at {})", mount.display()));
        }
        if let Some(s) = space(path) {
            out.push_str(&format!(": {} free of {}", bytes(s.free), bytes(s.total)));
        }
    }
    if let Some(needed) = needed {
        out.push_str(&format!("; it needed {} more", bytes(needed)));
    }
    match flag {
        Some(flag) => out.push_str(&format!(
            "; free space on it (or give {flag} a larger volume) and try again"
        )),
        None => out.push_str("; free space on it and try again"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_volumes_are_recognised_and_described() {
        assert!(is_full(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_full(&std::io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_full(&std::io::Error::from_raw_os_error(libc::EACCES)));
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3 * 1024 + 512), "3.50 KiB");
        assert_eq!(bytes(30 * 1024 * 1024), "30.0 MiB");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-yet").join("model.onnx");
        let s = space(&file).unwrap();
        assert!(s.total > 0 && s.free <= s.total);
        let mount = mount_point(&file).unwrap();
        assert!(dir.path().canonicalize().unwrap().starts_with(&mount));
        let message = full_message("write the upload", Some(&file), Some(2048));
        assert!(message.starts_with("write the upload: no space left on the volume"));
        assert!(message.contains("free of") && message.contains("it needed 2.00 KiB more"));
        name_root(dir.path(), "--data-dir");
        let message = full_message("write the upload", Some(&file), None);
        assert!(
            message.starts_with("write the upload: the --data-dir volume is full (mounted at "),
            "{message}"
        );
        assert!(message.ends_with("(or give --data-dir a larger volume) and try again"));
    }
}
