//! Writing files so that a reader never sees half of one.

use std::fs::File;
use std::path::Path;

/// Writes `path` through `fill` into a temporary file in the same folder, syncs it and renames
/// it into place. A reader never sees half a file, and an existing file survives a failed
/// write untouched.
pub fn write_file_atomic(
    path: &Path,
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
    // Temporary files are private (0600); a finished output is an ordinary file.
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
