//! Where every byte of a job lives: sources, intermediate chunks, reports and outputs.
//!
//! A [`Store`] is a flat map from [`Key`]s to immutable objects, the shape of S3: whole-object
//! writes that are atomic (a reader sees the old object, the new one, or none, never part of
//! one), reads, existence checks and listings by prefix. [`FsStore`] keeps the objects as files
//! under a root folder; [`S3Store`] keeps them in an S3 bucket (or any S3-compatible server). Keys are validated before any I/O,
//! so a hostile name can never leave the store's root or the job's prefix.

mod fs;
mod key;
mod s3;

use std::path::{Path, PathBuf};

pub use fs::FsStore;
pub use key::{Key, KeyError};
pub use s3::{AwsOptions, DEFAULT_PART_BYTES, ObjectHeaders, ObjectInfo, S3Store, file_crc32};
pub(crate) use s3::{runtime as s3_runtime, sdk_config as s3_sdk_config, sdk_text};

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

    /// The object as a local file that can be read in place, when the store has one. Lets a
    /// worker on the same machine decode a master without copying it first.
    fn local_path(&self, _key: &Key) -> Option<PathBuf> {
        None
    }
}
