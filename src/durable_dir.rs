//! Directories whose existence must survive a power cut.
//!
//! A new directory is an entry in its parent, and an entry is on disk only once
//! the parent is fsynced; without that, a power cut can take the data dir or the
//! mail dir away with everything synced inside them.

use std::path::Path;

/// `create_dir_all`, then fsyncs the parent of every level it made.
pub fn create_durable_dir(dir: &Path) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for made in missing.iter().rev() {
        let parent = match made.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_every_missing_level_and_leaves_an_existing_one_alone() {
        let dir = tempfile::tempdir().unwrap();
        create_durable_dir(&dir.path().join("a/b/c")).unwrap();
        assert!(dir.path().join("a/b/c").is_dir());
        create_durable_dir(&dir.path().join("a/b/c")).unwrap();
    }
}
