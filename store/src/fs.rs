//! The filesystem store: one file per object under a root folder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Key, ObjectHeaders, ObjectInfo, Store, StoreError, file_crc32};

/// Objects as files below a root folder. Writes go to a temporary file in the same folder,
/// are synced, then renamed over the destination, so a killed process never leaves a partial
/// object behind (at worst a `.tmp-*` file, which listings skip and the next write replaces).
#[derive(Debug)]
pub struct FsStore {
    root: PathBuf,
}

/// Distinguishes the temporary files of concurrent writers in one process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl FsStore {
    /// A store rooted at `root`, which is created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|error| StoreError::File {
            what: "creating the store folder",
            path: root.clone(),
            error,
        })?;
        Ok(Self { root })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &Key) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.segments());
        p
    }

    fn io(what: &'static str, key: &Key) -> impl FnOnce(std::io::Error) -> StoreError {
        let key = key.to_string();
        move |error| StoreError::Io { what, key, error }
    }

    /// Writes through `fill` into a temporary file next to the destination, then renames it.
    fn write_atomic(
        &self,
        key: &Key,
        fill: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let dest = self.path(key);
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(Self::io("creating the folder of", key))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed),
            key.name()
        ));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            fill(&mut f)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            crate::fsutil::sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(Self::io("writing", key))
    }
}

impl Store for FsStore {
    fn put(&self, key: &Key, data: &[u8]) -> Result<(), StoreError> {
        self.write_atomic(key, |f| f.write_all(data))
    }

    fn put_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        let mut src = fs::File::open(path).map_err(|error| StoreError::File {
            what: "reading",
            path: path.to_owned(),
            error,
        })?;
        self.write_atomic(key, |f| std::io::copy(&mut src, f).map(drop))
    }

    fn get(&self, key: &Key) -> Result<Vec<u8>, StoreError> {
        fs::read(self.path(key)).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound { key: key.clone() },
            _ => Self::io("reading", key)(error),
        })
    }

    fn get_to_file(&self, key: &Key, path: &Path) -> Result<(), StoreError> {
        let src = self.path(key);
        if !src.is_file() {
            return Err(StoreError::NotFound { key: key.clone() });
        }
        crate::fsutil::write_file_atomic(path, |f| {
            let mut r = fs::File::open(&src)?;
            std::io::copy(&mut r, f).map(drop)
        })
        .map_err(|error| StoreError::File {
            what: "writing",
            path: path.to_owned(),
            error,
        })
    }

    fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        Ok(self.path(key).is_file())
    }

    fn list(&self, prefix: &Key) -> Result<Vec<Key>, StoreError> {
        let mut out = Vec::new();
        let base = self.path(prefix);
        if base.is_file() {
            out.push(prefix.clone());
        }
        if base.is_dir() {
            walk(&base, prefix.as_str(), &mut out).map_err(Self::io("listing", prefix))?;
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io("deleting", key)(e)),
            _ => Ok(()),
        }
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>, StoreError> {
        let dir = self.path(prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("listing", prefix)(e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let name = e
                .map_err(Self::io("listing", prefix))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !name.starts_with(".tmp-") && prefix.join(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn local_path(&self, key: &Key) -> Option<PathBuf> {
        let p = self.path(key);
        p.is_file().then_some(p)
    }

    /// Files carry no HTTP headers: only empty ones are accepted.
    fn put_file_with(
        &self,
        key: &Key,
        path: &Path,
        headers: &ObjectHeaders,
    ) -> Result<(), StoreError> {
        if *headers != ObjectHeaders::default() {
            return Err(StoreError::Unsupported {
                what: "HTTP headers",
                key: key.to_string(),
            });
        }
        self.put_file(key, path)
    }

    /// The size from the file system; the CRC32 is computed by reading the file.
    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>, StoreError> {
        let p = self.path(key);
        if !p.is_file() {
            return Ok(None);
        }
        let (size, crc) = file_crc32(&p).map_err(Self::io("reading", key))?;
        Ok(Some(ObjectInfo {
            size,
            crc32: Some(format!("{crc:08x}")),
            headers: ObjectHeaders::default(),
        }))
    }

    fn objects(&self) -> Result<Vec<(Key, u64)>, StoreError> {
        let mut keys = Vec::new();
        walk(&self.root, "", &mut keys).map_err(|error| StoreError::File {
            what: "listing",
            path: self.root.clone(),
            error,
        })?;
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let size = fs::metadata(self.path(&k))
                    .map_err(Self::io("listing", &k))?
                    .len();
                Ok((k, size))
            })
            .collect()
    }
}

/// Adds the keys of the files below `dir` (whose key is `prefix`, empty for the root), skipping
/// temporary files and names that are not valid keys (files someone else put there).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<Key>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with(".tmp-") {
            continue;
        }
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let Ok(key) = Key::new(name) else {
            continue;
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), key.as_str(), out)?;
        } else if kind.is_file() {
            out.push(key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[test]
    fn round_trips_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().join("s")).unwrap();
        store.put(&k("job/a/1.bin"), b"one").unwrap();
        store.put(&k("job/a/2.bin"), b"two").unwrap();
        store.put(&k("job/b.json"), b"{}").unwrap();
        store.put(&k("other"), b"x").unwrap();
        assert_eq!(store.get(&k("job/a/1.bin")).unwrap(), b"one");
        store.put(&k("job/a/1.bin"), b"uno").unwrap();
        assert_eq!(store.get(&k("job/a/1.bin")).unwrap(), b"uno");
        let listed: Vec<String> = store
            .list(&k("job"))
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(listed, ["job/a/1.bin", "job/a/2.bin", "job/b.json"]);
        assert!(store.list(&k("nothing")).unwrap().is_empty());
        assert!(store.exists(&k("other")).unwrap());
        store.delete(&k("other")).unwrap();
        store.delete(&k("other")).unwrap();
        assert!(!store.exists(&k("other")).unwrap());
        assert!(matches!(
            store.get(&k("other")),
            Err(StoreError::NotFound { .. })
        ));

        let src = dir.path().join("src.bin");
        fs::write(&src, vec![7u8; 100_000]).unwrap();
        store.put_file(&k("big"), &src).unwrap();
        let back = dir.path().join("back.bin");
        store.get_to_file(&k("big"), &back).unwrap();
        assert_eq!(fs::read(&back).unwrap(), vec![7u8; 100_000]);
        assert_eq!(store.local_path(&k("big")), Some(store.root().join("big")));
        assert!(store.get_to_file(&k("missing"), &back).is_err());
        assert_eq!(fs::read(&back).unwrap().len(), 100_000, "kept on failure");
    }

    #[test]
    fn leftover_temporary_files_are_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.put(&k("j/x"), b"1").unwrap();
        fs::write(dir.path().join("j/.tmp-1-2-y"), b"partial").unwrap();
        fs::write(dir.path().join("j/bad name"), b"?").unwrap();
        assert_eq!(store.list(&k("j")).unwrap(), vec![k("j/x")]);
    }

    #[test]
    fn heads_and_sized_listings_come_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().join("s")).unwrap();
        store.put(&k("t/a.m4s"), b"abc").unwrap();
        store.put(&k("top.json"), b"{}").unwrap();
        fs::write(store.root().join("t/.tmp-1-2-z"), b"partial").unwrap();
        assert_eq!(
            store.objects().unwrap(),
            vec![(k("t/a.m4s"), 3), (k("top.json"), 2)]
        );
        let info = store.head(&k("t/a.m4s")).unwrap().unwrap();
        assert_eq!(info.size, 3);
        assert_eq!(info.crc32.as_deref(), Some("352441c2"), "CRC32 of \"abc\"");
        assert_eq!(store.head(&k("t/none")).unwrap(), None);
        // Files keep no headers: empty ones pass, others are refused, and nothing is written.
        let src = dir.path().join("src");
        fs::write(&src, b"xyz").unwrap();
        store
            .put_file_with(&k("t/b"), &src, &ObjectHeaders::default())
            .unwrap();
        let typed = ObjectHeaders {
            content_type: Some("video/mp4".into()),
            cache_control: None,
        };
        let e = store.put_file_with(&k("t/c"), &src, &typed).unwrap_err();
        assert!(e.to_string().contains("cannot keep HTTP headers"), "{e}");
        assert!(!store.exists(&k("t/c")).unwrap());
    }
}
