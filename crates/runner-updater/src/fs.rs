//! Durable file replacement shared by the file stores.

use std::{fs::File, io::Write, path::Path};

/// Replaces `path` with `bytes`: a temporary sibling, `fsync`, rename over,
/// then `fsync` of the directory so the rename survives a power loss.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
