//! `rungs publish OUT --to s3://BUCKET/PREFIX`: a packaged title to S3, served as a CDN origin.
//!
//! - Every file goes up with its `Content-Type` and a `Cache-Control`: long and immutable for
//!   segments, init segments, renditions, subtitles and thumbnails, short for manifests and
//!   JSON.
//! - Files go up in parts above the part size (multipart), each part and the whole object
//!   checksummed (CRC32); every upload is checked afterwards (size and checksum).
//! - An object that already holds the file's bytes and headers is skipped, so an interrupted
//!   publish resumes where it stopped, and a second one sends nothing.
//! - Manifests go last (media playlists, then the master playlist and the MPD), so a reader never
//!   sees a manifest whose segments are missing. When segments already published change, the
//!   old manifests are taken down first, so that no reader sees old manifests over new segments.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use store::{Key, ObjectHeaders, Store, StoreError, file_crc32};

/// `Cache-Control` of segments and other files that never change under their name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of manifests and JSON.
pub const SHORT: &str = "public, max-age=10";

/// What a publish did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PublishReport {
    /// Where to.
    pub to: String,
    /// Files in the title.
    pub files: usize,
    /// Uploaded now.
    pub uploaded: usize,
    /// Already there with the same bytes and headers.
    pub unchanged: usize,
    /// Bytes uploaded now.
    pub bytes_uploaded: u64,
    /// Bytes in the title.
    pub bytes: u64,
    /// The manifests, in the order they went up (last).
    pub manifests: Vec<String>,
    /// Published manifests taken down before changed segments went up.
    pub manifests_taken_down: usize,
    /// Things to know (changed segments under immutable caching, skipped links).
    pub warnings: Vec<String>,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The folder is not a packaged title, or cannot be read.
    #[error("{0}")]
    Input(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// An upload came back different.
    #[error("{key}: {reason}")]
    Verify {
        /// The object.
        key: String,
        /// What differs.
        reason: String,
    },
}

/// The `Content-Type` of a packaged file, by extension (and folder for audio).
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let audio = name.starts_with("audio/");
    match ext {
        "mpd" => "application/dash+xml",
        "m3u8" => "application/vnd.apple.mpegurl",
        "m4s" if audio => "audio/iso.segment",
        "m4s" => "video/iso.segment",
        "mp4" if audio => "audio/mp4",
        "mp4" => "video/mp4",
        "vtt" => "text/vtt; charset=utf-8",
        "jpg" | "jpeg" => "image/jpeg",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// True for manifests (they go up last, with short caching).
pub fn is_manifest(name: &str) -> bool {
    name.ends_with(".m3u8") || name.ends_with(".mpd")
}

/// The headers a packaged file is served with.
pub fn headers(name: &str) -> ObjectHeaders {
    let cache = if is_manifest(name) || name.ends_with(".json") {
        SHORT
    } else {
        IMMUTABLE
    };
    ObjectHeaders {
        content_type: Some(content_type(name).to_owned()),
        cache_control: Some(cache.to_owned()),
    }
}

/// The files of a packaged title under `dir`, relative, sorted; the work folder `.rungs` and
/// hidden files are left out, and symbolic links are refused.
pub fn title_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, PublishError> {
    let master = dir.join(crate::hls::MASTER);
    let mpd = dir.join(crate::dash::MPD);
    if !master.is_file() && !mpd.is_file() {
        return Err(PublishError::Input(format!(
            "{} is not a packaged title (no {} or {}; `rungs encode` writes them)",
            dir.display(),
            crate::hls::MASTER,
            crate::dash::MPD
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| PublishError::Input(format!("cannot read {}: {e}", d.display())))?;
        for e in entries {
            let e = e.map_err(|e| PublishError::Input(format!("{}: {e}", d.display())))?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let kind = e
                .file_type()
                .map_err(|e| PublishError::Input(format!("{}: {e}", path.display())))?;
            if kind.is_symlink() {
                return Err(PublishError::Input(format!(
                    "{} is a symbolic link; a title is published from its own files only",
                    path.display()
                )));
            }
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .map_err(|_| PublishError::Input(format!("{} escapes", path.display())))?
                .to_string_lossy()
                .replace('\\', "/");
            crate::sink::check_name(&rel).map_err(|e| PublishError::Input(e.to_string()))?;
            out.push((rel, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The order manifests go up: media playlists first, the master playlist and the MPD last.
fn manifest_rank(name: &str) -> u8 {
    if name == crate::hls::MASTER || name == crate::dash::MPD {
        1
    } else {
        0
    }
}

/// The encode report's name in a title.
const REPORT: &str = "report.json";

/// A copy of the report at `path`, in `scratch`, with every absolute path of this machine (the
/// master, the renditions' files) cut to its file name: an origin serves the report to anyone.
fn public_report(path: &Path, scratch: &Path) -> Result<PathBuf, PublishError> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.starts_with('/') => {
                let name = Path::new(s.as_str())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                *s = name;
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            serde_json::Value::Object(o) => o.values_mut().for_each(strip),
            _ => {}
        }
    }
    let bad = |e: String| PublishError::Input(format!("{}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut report: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    strip(&mut report);
    let out = scratch.join(REPORT);
    let text = serde_json::to_vec_pretty(&report).expect("JSON serialises");
    std::fs::write(&out, text).map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

/// One file of the title: what it is, and whether the store needs it.
struct Upload {
    name: String,
    path: PathBuf,
    key: Key,
    size: u64,
    crc: String,
    headers: ObjectHeaders,
    /// None: the same object is there; Some(true): it replaces a different one.
    upload: Option<bool>,
}

/// Publishes the packaged title in `dir` to `store` (its prefix), `threads` uploads at once.
/// `progress` hears each file's name once it is up (or found unchanged).
pub fn publish(
    dir: &Path,
    store: &dyn Store,
    to: &str,
    threads: usize,
    progress: &(dyn Fn(&str, bool) + Sync),
) -> Result<PublishReport, PublishError> {
    let mut files = title_files(dir)?;
    // The report goes up without the paths of this machine.
    let scratch = tempfile::tempdir()
        .map_err(|e| PublishError::Input(format!("cannot make a scratch folder: {e}")))?;
    for (name, path) in &mut files {
        if name == REPORT {
            *path = public_report(path, scratch.path())?;
        }
    }
    let mut report = PublishReport {
        to: to.to_owned(),
        files: files.len(),
        ..Default::default()
    };
    let uploads = files
        .into_iter()
        .map(|(name, path)| compare(store, name, path))
        .collect::<Result<Vec<_>, _>>()?;
    report.bytes = uploads.iter().map(|u| u.size).sum();
    take_down_manifests(store, &uploads, &mut report)?;
    let (manifests, others): (Vec<&Upload>, Vec<&Upload>) =
        uploads.iter().partition(|u| is_manifest(&u.name));
    upload_all(store, &others, threads, progress)?;
    let mut manifests = manifests;
    manifests.sort_by_key(|u| (manifest_rank(&u.name), u.name.clone()));
    for u in &manifests {
        if u.upload.is_some() || report.manifests_taken_down > 0 {
            upload_one(store, u)?;
        }
        progress(&u.name, u.upload.is_some());
        report.manifests.push(u.name.clone());
    }
    for u in &uploads {
        let sent = u.upload.is_some() || (is_manifest(&u.name) && report.manifests_taken_down > 0);
        if sent {
            report.uploaded += 1;
            report.bytes_uploaded += u.size;
        } else {
            report.unchanged += 1;
        }
    }
    Ok(report)
}

/// A file against what the store holds under its name.
fn compare(store: &dyn Store, name: String, path: PathBuf) -> Result<Upload, PublishError> {
    let key = Key::new(name.clone()).map_err(|e| PublishError::Input(e.to_string()))?;
    let (size, crc) = file_crc32(&path)
        .map_err(|e| PublishError::Input(format!("cannot read {}: {e}", path.display())))?;
    let crc = format!("{crc:08x}");
    let headers = headers(&name);
    let upload = match store.head(&key)? {
        Some(o) if o.size == size && o.crc32.as_deref() == Some(&crc) => {
            (o.headers != headers).then_some(false)
        }
        Some(_) => Some(true),
        None => Some(false),
    };
    Ok(Upload {
        name,
        path,
        key,
        size,
        crc,
        headers,
        upload,
    })
}

/// When segments already published change, takes the published manifests down first: old
/// manifests must not point at new segments.
fn take_down_manifests(
    store: &dyn Store,
    uploads: &[Upload],
    report: &mut PublishReport,
) -> Result<(), PublishError> {
    let changed: Vec<&str> = uploads
        .iter()
        .filter(|u| u.upload == Some(true) && !is_manifest(&u.name))
        .map(|u| u.name.as_str())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    for u in uploads.iter().filter(|u| is_manifest(&u.name)) {
        if store.head(&u.key)?.is_some() {
            store.delete(&u.key)?;
            report.manifests_taken_down += 1;
        }
    }
    report.warnings.push(format!(
        "{} file(s) changed under names already published (the first: {}); caches that \
         hold the old ones serve them until they expire: publish a new version of a title \
         under a new prefix",
        changed.len(),
        changed[0]
    ));
    Ok(())
}

/// Uploads one file and checks what the store then holds.
fn upload_one(store: &dyn Store, u: &Upload) -> Result<(), PublishError> {
    store.put_file_with(&u.key, &u.path, &u.headers)?;
    let got = store.head(&u.key)?.ok_or_else(|| PublishError::Verify {
        key: u.name.clone(),
        reason: "missing after its upload".into(),
    })?;
    if got.size != u.size || got.crc32.as_deref() != Some(&u.crc) || got.headers != u.headers {
        return Err(PublishError::Verify {
            key: u.name.clone(),
            reason: format!(
                "the store has {} bytes with CRC32 {:?}, the file {} bytes with {}",
                got.size, got.crc32, u.size, u.crc
            ),
        });
    }
    Ok(())
}

/// Uploads the files that need it, `threads` at once; the first failure stops the others.
fn upload_all(
    store: &dyn Store,
    uploads: &[&Upload],
    threads: usize,
    progress: &(dyn Fn(&str, bool) + Sync),
) -> Result<(), PublishError> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<PublishError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    if failure.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(u) = uploads.get(i) else { return };
                    if u.upload.is_some()
                        && let Err(e) = upload_one(store, u)
                    {
                        failure
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                    progress(&u.name, u.upload.is_some());
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_caching_by_name() {
        assert_eq!(content_type("manifest.mpd"), "application/dash+xml");
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(
            content_type("video/360p/seg-00001.m4s"),
            "video/iso.segment"
        );
        assert_eq!(content_type("audio/en/seg-00001.m4s"), "audio/iso.segment");
        assert_eq!(content_type("video/360p/init.mp4"), "video/mp4");
        assert_eq!(
            content_type("text/en/seg-00001.vtt"),
            "text/vtt; charset=utf-8"
        );
        assert_eq!(content_type("thumbs/sheet-00001.jpg"), "image/jpeg");
        assert_eq!(content_type("report.json"), "application/json");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(
            headers("video/360p/index.m3u8").cache_control.as_deref(),
            Some(SHORT)
        );
        assert_eq!(
            headers("video/360p/seg-00001.m4s").cache_control.as_deref(),
            Some(IMMUTABLE)
        );
        assert!(manifest_rank("master.m3u8") > manifest_rank("video/360p/index.m3u8"));
    }

    #[test]
    fn a_folder_without_manifests_or_with_links_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = title_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a packaged title"), "{e}");
        std::fs::write(dir.path().join("master.m3u8"), "#EXTM3U\n").unwrap();
        std::fs::create_dir(dir.path().join(".rungs")).unwrap();
        std::fs::write(dir.path().join(".rungs/job.json"), "{}").unwrap();
        let files = title_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1, "the work folder stays home: {files:?}");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("video.m4s")).unwrap();
        let e = title_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
