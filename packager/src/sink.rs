//! Where packaged files go. The packager never opens files itself: it hands each finished
//! file to a [`Sink`] under a relative name (`video/720p/00001.m4s`). [`DirSink`] writes a
//! folder, [`MemorySink`] keeps the files for tests; S3 is one more implementation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The name is not a safe relative path.
    #[error("bad file name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Writing failed.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
}

/// A destination for packaged files.
pub trait Sink: Sync {
    /// Stores `bytes` as `name` (a relative path with `/` separators), replacing any file of
    /// that name. A reader never sees a partly written file.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError>;
}

/// Checks that `name` is a plain relative path: non-empty parts of letters, digits, `.`, `-`
/// and `_`, none of them `.` or `..`.
pub fn check_name(name: &str) -> Result<(), SinkError> {
    let bad = |reason| {
        Err(SinkError::Name {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 512 {
        return bad("empty or longer than 512 bytes");
    }
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("empty, `.` or `..` path component (absolute or escaping paths too)");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return bad("only letters, digits, `.`, `-` and `_` are allowed");
        }
    }
    Ok(())
}

/// Writes into a folder, each file through a temporary name and a rename.
#[derive(Clone, Debug)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing under `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Sink for DirSink {
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        check_name(name)?;
        let path = self.root.join(name);
        let io = |error| SinkError::Io {
            path: path.clone(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        store::fsutil::write_file_atomic(&path, |f| std::io::Write::write_all(f, bytes)).map_err(io)
    }
}

/// Keeps the files in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemorySink {
    /// The files stored so far, by name.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), SinkError> {
        check_name(name)?;
        if let Ok(mut f) = self.files.lock() {
            f.insert(name.to_owned(), bytes.to_vec());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_root() {
        for ok in ["master.m3u8", "video/720p/00001.m4s", "text/en-2/all.vtt"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "video/../../x",
            "a//b",
            "a/./b",
            "a b",
            "a\\b",
            "ü",
            "x\0",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink::new(dir.path().join("title"));
        sink.put("video/a/00001.m4s", b"abc").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("title/video/a/00001.m4s")).unwrap(),
            b"abc"
        );
        assert!(sink.put("../escape", b"x").is_err());
        assert!(!dir.path().join("escape").exists());
        let mem = MemorySink::default();
        mem.put("a/b", b"1").unwrap();
        assert_eq!(mem.files()["a/b"], b"1");
    }
}
