//! Where every byte of a job lives: sources, intermediate chunks, reports and outputs.
//!
//! A [`Store`] is a flat map from [`Key`]s to immutable objects, the shape of S3: whole-object
//! writes that are atomic (a reader sees the old object, the new one, or none, never part of
//! one), reads, existence checks and listings by prefix. [`FsStore`] keeps the objects as files
//! under a root folder; the `cloud` crate's `S3Store` keeps them in an S3 bucket (or any
//! S3-compatible server). Keys are validated before any I/O, so a hostile name can never leave
//! the store's root or the job's prefix.
//!
//! This crate is the seam between what writes bytes (workers, the packager, publishing) and
//! where they go: it depends on no media library and no cloud SDK.

mod fs;
pub mod fsutil;
mod key;

use std::path::{Path, PathBuf};

pub use fs::FsStore;
pub use key::{Key, KeyError};

/// How an object is served over HTTP (publishing sets these).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
}

/// What the store knows of an object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// The CRC32 recorded when it was written (8 hex digits), when it was written by rungs.
    pub crc32: Option<String>,
    /// Its headers.
    pub headers: ObjectHeaders,
}

/// The size and CRC32 of a file, read in 1 MiB blocks.
pub fn file_crc32(path: &Path) -> std::io::Result<(u64, u32)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            return Ok((size, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object has this key.
    #[error("no object {key} in the store")]
    NotFound {
        /// The key.
        key: Key,
    },
    /// The key is not acceptable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Reading or writing the backing storage failed.
    #[error("{what} {key}: {error}")]
    Io {
        /// What was being done ("writing", "reading", ...).
        what: &'static str,
        /// The key involved.
        key: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A remote store refused or failed the request (after its retries).
    #[error("{what} {key}: {reason}")]
    Remote {
        /// What was being done.
        what: &'static str,
        /// The key (or bucket, or URL) involved.
        key: String,
        /// The service's code and message, or the transport's error.
        reason: String,
    },
    /// The store cannot do what was asked.
    #[error("{key}: this store cannot keep {what}")]
    Unsupported {
        /// What it cannot keep.
        what: &'static str,
        /// The key involved.
        key: String,
    },
    /// A local file given to or asked of the store could not be used.
    #[error("{what} {path}: {error}")]
    File {
        /// What was being done.
        what: &'static str,
        /// The local file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
}

/// A store of immutable objects by key. Implementations are shared between worker threads.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Writes `data` under `key`, replacing any object there, atomically.
    fn put(&self, key: &Key, data: &[u8]) -> Result<(), StoreError>;

    /// Writes the contents of the local file `path` under `key`, atomically.
    fn put_file(&self, key: &Key, path: &Path) -> Result<(), StoreError>;

    /// Reads the whole object.
    fn get(&self, key: &Key) -> Result<Vec<u8>, StoreError>;

    /// Copies the object into the local file `path`, which appears whole or not at all.
    fn get_to_file(&self, key: &Key, path: &Path) -> Result<(), StoreError>;

    /// True when an object has this key.
    fn exists(&self, key: &Key) -> Result<bool, StoreError>;

    /// Every key that starts with `prefix` followed by `/` (or equals it), sorted.
    fn list(&self, prefix: &Key) -> Result<Vec<Key>, StoreError>;

    /// Removes the object; removing a missing object is not an error.
    fn delete(&self, key: &Key) -> Result<(), StoreError>;

    /// The names of the direct children of `prefix` (the next segment of every key under it),
    /// sorted, each once: what a listing of one level costs, not of everything below it.
    fn children(&self, prefix: &Key) -> Result<Vec<String>, StoreError> {
        let base = prefix.as_str().len() + 1;
        let mut names: Vec<String> = self
            .list(prefix)?
            .iter()
            .filter_map(|k| k.as_str().get(base..))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .collect();
        names.dedup();
        Ok(names)
    }

    /// The object as a local file that can be read in place, when the store has one. Lets a
    /// worker on the same machine decode a master without copying it first.
    fn local_path(&self, _key: &Key) -> Option<PathBuf> {
        None
    }

    /// Writes the local file `path` under `key` to be served with `headers`, atomically. A
    /// store that cannot keep headers refuses any it is given.
    fn put_file_with(
        &self,
        key: &Key,
        path: &Path,
        headers: &ObjectHeaders,
    ) -> Result<(), StoreError>;

    /// What the store has under `key` (its size, recorded CRC32 and headers), without reading
    /// it; `None` when there is no object.
    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError>;

    /// Every object in the store, with its size, sorted by key.
    fn objects(&self) -> Result<Vec<(Key, u64)>, StoreError>;
}
