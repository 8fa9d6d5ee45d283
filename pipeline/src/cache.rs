//! Private caches of this machine: the fleet worker's fetched masters and the dashboard's
//! fetched reports.
//!
//! A cache lives in a folder of the user's own (`$XDG_CACHE_HOME/rungs/KIND`, or
//! `~/.cache/rungs/KIND`), never at a fixed path in `/tmp` that another user could create
//! first. The folder is made with mode 0700 and checked before use: it must be a real folder
//! (not a symlink), owned by this user, and closed to group and others. A cached file is
//! trusted only when it is a plain file whose size and CRC-32 match the record written when it
//! was fetched.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a cache folder or file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The folder is not private to this user.
    #[error("cache folder {}: {reason}", path.display())]
    NotPrivate {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The folder or a file could not be made or read.
    #[error("cache {}: {error}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

/// The default folder of the cache `kind`: `$XDG_CACHE_HOME/rungs/KIND`, else
/// `$HOME/.cache/rungs/KIND`, else a folder named after the user's id in the temporary
/// folder (checked like the others).
pub fn default_dir(kind: &str) -> PathBuf {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".cache"))
        });
    match base {
        Some(b) => b.join("rungs").join(kind),
        None => {
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            std::env::temp_dir().join(format!("rungs-{uid}")).join(kind)
        }
    }
}

/// Makes `dir` (and missing parents) with mode 0700 when missing, then checks it: a real
/// folder, this user's, closed to group and others.
pub fn ensure_private(dir: &Path) -> Result<(), CacheError> {
    let io = |error| CacheError::Io {
        path: dir.to_owned(),
        error,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let not_private = |reason: String| CacheError::NotPrivate {
        path: dir.to_owned(),
        reason,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if meta.file_type().is_symlink() {
        return Err(not_private("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(not_private("it is not a folder".into()));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(not_private(format!(
            "it belongs to user {}, not to this user ({me})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(not_private(format!(
            "its mode is {mode:03o}: group or others may enter it (chmod 700 it, or choose another folder)"
        )));
    }
    Ok(())
}

/// The record of a cached file, beside it.
fn record_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".sum");
    path.with_file_name(name)
}

/// Size and CRC-32 of a plain file (a symlink is refused).
fn sum(path: &Path) -> std::io::Result<(u64, u32)> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other("not a plain file"));
    }
    let mut f = std::fs::File::open(path)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize()))
}

/// True when `path` is a plain file that matches the record written when it was fetched.
pub fn verified(path: &Path) -> bool {
    let Ok(record) = std::fs::read_to_string(record_path(path)) else {
        return false;
    };
    let Some((size, crc)) = record.trim().split_once(' ') else {
        return false;
    };
    match sum(path) {
        Ok((n, c)) => size.parse() == Ok(n) && u32::from_str_radix(crc, 16) == Ok(c),
        Err(_) => false,
    }
}

/// Fetches `path` with `fetch` (which writes the whole file) unless it is already there and
/// verified, then records its size and checksum. A file that fails the check (cut short,
/// altered, a symlink) is removed and fetched again.
pub fn fetch_verified<E>(
    path: &Path,
    fetch: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), FetchError<E>> {
    if verified(path) {
        return Ok(());
    }
    let record = record_path(path);
    for p in [path, record.as_path()] {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(FetchError::Cache(CacheError::Io {
                    path: p.into(),
                    error,
                }));
            }
        }
    }
    fetch(path).map_err(FetchError::Fetch)?;
    let io = |error| {
        FetchError::Cache(CacheError::Io {
            path: path.to_owned(),
            error,
        })
    };
    let (n, crc) = sum(path).map_err(io)?;
    store::fsutil::write_file_atomic(&record, |f| {
        std::io::Write::write_all(f, format!("{n} {crc:08x}\n").as_bytes())
    })
    .map_err(io)
}

/// Why [`fetch_verified`] failed.
#[derive(Debug)]
pub enum FetchError<E> {
    /// The fetch itself.
    Fetch(E),
    /// The cache.
    Cache(CacheError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_folder_must_be_private_and_cached_files_must_match_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a/b");
        ensure_private(&cache).unwrap();
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Opened up by someone: refused, with the reason.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = ensure_private(&cache).unwrap_err().to_string();
        assert!(e.contains("mode is 755"), "{e}");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink in its place is refused too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        let e = ensure_private(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");

        let file = cache.join("master.mp4");
        let fetches = std::cell::Cell::new(0);
        let fetch = |p: &Path| -> Result<(), std::io::Error> {
            fetches.set(fetches.get() + 1);
            std::fs::write(p, b"the master's bytes")
        };
        fetch_verified(&file, fetch).map_err(|_| ()).unwrap();
        fetch_verified(&file, fetch).map_err(|_| ()).unwrap();
        assert_eq!(fetches.get(), 1, "a verified file is reused");
        // Altered, cut short, or replaced by a symlink: fetched again.
        std::fs::write(&file, b"the master's bytez").unwrap();
        assert!(!verified(&file));
        fetch_verified(&file, fetch).map_err(|_| ()).unwrap();
        assert_eq!(fetches.get(), 2);
        std::fs::write(&file, b"the master").unwrap();
        assert!(!verified(&file));
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
        assert!(!verified(&file));
        fetch_verified(&file, fetch).map_err(|_| ()).unwrap();
        assert_eq!(fetches.get(), 3);
        assert!(
            !std::fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"the master's bytes");
    }
}
