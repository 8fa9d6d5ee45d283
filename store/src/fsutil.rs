//! Writing files so that a reader never sees half of one.

use std::fs::File;
use std::path::Path;

/// Writes `path` through `fill` into a temporary file in the same folder (a name of its own, so
/// that two processes never share one), syncs it, renames it into place and syncs the folder.
/// A reader never sees half a file, an existing file survives a failed write untouched, and
/// after a power cut the file is either the old one or the whole new one.
pub fn write_file_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_atomic_with_mode(path, 0o644, fill)
}

/// [`write_file_atomic`] for a file only its owner may read (0600 from its first byte), such as
/// one holding keys.
pub fn write_private_file_atomic(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_atomic_with_mode(path, 0o600, fill)
}

fn write_atomic_with_mode(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".rungs-")
        .tempfile_in(dir)?;
    fill(tmp.as_file_mut())?;
    // Temporary files are private (0600); a finished output gets `mode`.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Flushes a folder's entries (a rename into it, a new file) to the disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A temporary name beside `path`, unique to this process and call: `.NAME.PID-N.partial.EXT`
/// (the extension last, so that a muxer still chooses the container by it).
pub fn partial_path(path: &Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.partial{ext}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_are_unique_and_keep_the_extension() {
        let a = partial_path(Path::new("/out/720p.mp4"));
        let b = partial_path(Path::new("/out/720p.mp4"));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".720p.mp4."), "{name}");
        assert!(name.contains(&std::process::id().to_string()), "{name}");
        assert!(name.ends_with(".partial.mp4"), "{name}");
        assert_eq!(a.parent(), Some(Path::new("/out")));
    }
}
