//! The catalog a plan is made for: the titles of a folder of packaged titles, or of a store
//! they were published to, each with its streamed files' sizes and CRC32s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::publish::PublishError;
use crate::sink::SinkError;

/// One streaming file of the catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogFile {
    /// `TITLE/PATH`.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// CRC32, 8 hex digits.
    pub crc32: String,
}

/// A title: its streaming files.
#[derive(Clone, Debug, PartialEq)]
pub struct Title {
    /// Its name (the folder or prefix it is published under).
    pub name: String,
    /// Its files, sorted.
    pub files: Vec<CatalogFile>,
}

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A folder or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The folder holds no packaged title.
    #[error(
        "{} holds no packaged title (folders with {} or {})",
        .dir.display(),
        crate::hls::MASTER,
        crate::dash::MPD
    )]
    NoTitle {
        /// The folder.
        dir: PathBuf,
    },
    /// The store holds no published title.
    #[error("the store holds no published title (folders with master.m3u8 or manifest.mpd)")]
    NoPublishedTitle,
    /// A title's name is not a plain name.
    #[error(transparent)]
    Name(#[from] SinkError),
    /// A title's files could not be listed.
    #[error(transparent)]
    Files(#[from] PublishError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// An object listed was gone when its record was read.
    #[error("{key} vanished while the catalog was read")]
    Vanished {
        /// The object.
        key: String,
    },
    /// An object without the CRC32 record `rungs publish` writes.
    #[error("{key} has no CRC32 record: publish titles with `rungs publish`")]
    NoCrc {
        /// The object.
        key: String,
    },
}

/// The rung a title's file belongs to (`video/RUNG/…`), if any.
pub fn rung_of(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    (parts.next() == Some("video"))
        .then(|| parts.next())
        .flatten()
}

/// True for the files a player streams: manifests at the top, and everything under `video/`,
/// `audio/`, `text/` and `thumbs/` (not the whole-file renditions or the report).
fn streamed(path: &str) -> bool {
    ["video/", "audio/", "text/", "thumbs/"]
        .iter()
        .any(|p| path.starts_with(p))
        || (!path.contains('/') && crate::publish::is_manifest(path))
}

/// The titles under `dir`: each folder holding a packaged title, or `dir` itself.
pub fn catalog_dir(dir: &Path) -> Result<Vec<Title>, CatalogError> {
    let is_title =
        |d: &Path| d.join(crate::hls::MASTER).is_file() || d.join(crate::dash::MPD).is_file();
    let mut folders = Vec::new();
    if is_title(dir) {
        folders.push(dir.to_owned());
    } else {
        let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::Read {
            path: dir.to_owned(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !e.file_name().to_string_lossy().starts_with('.') && is_title(&p) {
                folders.push(p);
            }
        }
    }
    if folders.is_empty() {
        return Err(CatalogError::NoTitle {
            dir: dir.to_owned(),
        });
    }
    folders.sort();
    folders.iter().map(|f| title_dir(f)).collect()
}

/// One packaged title's folder.
fn title_dir(folder: &Path) -> Result<Title, CatalogError> {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::sink::check_name(&name)?;
    let mut files = Vec::new();
    for (rel, path) in crate::publish::title_files(folder)? {
        if !streamed(&rel) {
            continue;
        }
        let (size, crc) =
            store::file_crc32(&path).map_err(|source| CatalogError::Read { path, source })?;
        files.push(CatalogFile {
            key: format!("{name}/{rel}"),
            size,
            crc32: format!("{crc:08x}"),
        });
    }
    Ok(Title { name, files })
}

/// The titles published under `store`'s prefix (by `rungs publish`): each first-level folder
/// holding a manifest, or the prefix itself (then named `root_name`). Sizes come from the
/// listing, CRC32s from each object's record, which `rungs publish` writes.
pub fn catalog_store(
    store: &dyn store::Store,
    root_name: &str,
) -> Result<Vec<Title>, CatalogError> {
    let objects = store.objects()?;
    let has = |k: &str| objects.iter().any(|(o, _)| o.as_str() == k);
    let is_title = |p: &str| {
        has(&format!("{p}{}", crate::hls::MASTER)) || has(&format!("{p}{}", crate::dash::MPD))
    };
    let mut groups: BTreeMap<String, Vec<(String, &store::Key, u64)>> = BTreeMap::new();
    if is_title("") {
        crate::sink::check_name(root_name)?;
        for (k, size) in &objects {
            groups
                .entry(root_name.to_owned())
                .or_default()
                .push((k.as_str().to_owned(), k, *size));
        }
    } else {
        for (k, size) in &objects {
            let Some((title, rel)) = k.as_str().split_once('/') else {
                continue;
            };
            if is_title(&format!("{title}/")) {
                groups
                    .entry(title.to_owned())
                    .or_default()
                    .push((rel.to_owned(), k, *size));
            }
        }
    }
    if groups.is_empty() {
        return Err(CatalogError::NoPublishedTitle);
    }
    groups
        .into_iter()
        .map(|(name, files)| title_store(store, name, files))
        .collect()
}

/// One published title: its streamed objects with the CRC32 of each one's record.
fn title_store(
    store: &dyn store::Store,
    name: String,
    files: Vec<(String, &store::Key, u64)>,
) -> Result<Title, CatalogError> {
    let mut out = Vec::new();
    for (rel, key, size) in files {
        if !streamed(&rel) {
            continue;
        }
        let info = store.head(key)?.ok_or_else(|| CatalogError::Vanished {
            key: key.as_str().to_owned(),
        })?;
        let crc32 = info.crc32.ok_or_else(|| CatalogError::NoCrc {
            key: key.as_str().to_owned(),
        })?;
        out.push(CatalogFile {
            key: format!("{name}/{rel}"),
            size,
            crc32,
        });
    }
    Ok(Title { name, files: out })
}
