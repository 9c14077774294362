//! Files a manifest or a card names are resolved inside their own folder:
//! a relative path without `..`, and no link leading out of the folder.
//! Errors name the file as the manifest does, never a server path.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// `rel` resolved inside `dir`; `what` names the field in errors. The file
/// must exist and, links followed, stay inside `dir`.
pub fn inside(dir: &Path, rel: &str, what: &str) -> Result<PathBuf> {
    check_relative(rel, what)?;
    let path = dir.join(rel);
    let outside = || {
        Error::InvalidArgument(format!(
            "{what} {rel:?} leads outside its folder through a link"
        ))
    };
    let real = path
        .canonicalize()
        .map_err(|_| Error::InvalidArgument(format!("{what} {rel:?} does not exist")))?;
    let root = dir.canonicalize().map_err(|_| outside())?;
    if !real.starts_with(&root) {
        return Err(outside());
    }
    Ok(path)
}

/// Checks that `rel` is a plain relative path: not empty, not absolute,
/// no `..` or `.` parts.
pub fn check_relative(rel: &str, what: &str) -> Result<()> {
    let plain = !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} {rel:?} must be a relative path inside the folder (no absolute paths, no '..')"
        )))
    }
}

/// Whether `path` (links followed) stays inside `dir`.
pub fn stays_inside(dir: &Path, path: &Path) -> bool {
    match (dir.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(real)) => real.starts_with(root),
        _ => false,
    }
}

/// `path` relative to `dir`, for messages (the file name when it is not
/// under `dir`).
pub fn shown(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .ok()
        .or_else(|| path.file_name().map(Path::new))
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_inside_the_folder_resolve() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("ds");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.npy"), b"x").unwrap();
        std::fs::write(outer.path().join("secret.npy"), b"s").unwrap();
        assert_eq!(
            inside(&dir, "sub/a.npy", "images").unwrap(),
            dir.join("sub/a.npy")
        );
        for bad in [
            "/etc/passwd",
            "../secret.npy",
            "sub/../../secret.npy",
            "",
            "./a",
        ] {
            let err = inside(&dir, bad, "images").unwrap_err().to_string();
            assert!(err.contains("relative path"), "{bad}: {err}");
        }
        let err = inside(&dir, "missing.npy", "images")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist") && !err.contains(outer.path().to_str().unwrap()));
        std::os::unix::fs::symlink(outer.path().join("secret.npy"), dir.join("link.npy")).unwrap();
        let err = inside(&dir, "link.npy", "images").unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
        assert!(!stays_inside(&dir, &dir.join("link.npy")));
        assert!(stays_inside(&dir, &dir.join("sub/a.npy")));
        assert_eq!(shown(&dir, &dir.join("sub/a.npy")), "sub/a.npy");
    }
}
