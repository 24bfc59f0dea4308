//! The harness's own promises: a cut keeps what was synced and forgets the rest.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use powercut::PowerCutFs;

struct Fixture {
    // Dropped first: the mount goes before its directories.
    fs: PowerCutFs,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn mounted() -> Fixture {
    let (backing, mountpoint) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let fs = PowerCutFs::mount(backing.path(), mountpoint.path()).expect("mount (root and /dev/fuse needed)");
    Fixture { fs, _dirs: (backing, mountpoint) }
}

/// Creates `name` with `text` and makes both the file and its name durable.
fn durable_file(dir: &Path, name: &str, text: &[u8]) {
    let mut file = File::create(dir.join(name)).unwrap();
    file.write_all(text).unwrap();
    file.sync_all().unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

/// Makes a file durable holding `text`, lets `change` act on it opened for writing, cuts
/// the power and returns what the file holds afterwards.
fn after_a_cut(text: &[u8], change: impl FnOnce(&File) -> std::io::Result<()>) -> Vec<u8> {
    let mut f = mounted();
    let dir = f.fs.path().to_owned();
    durable_file(&dir, "a", text);
    let file = File::options().write(true).open(dir.join("a")).unwrap();
    change(&file).unwrap();
    drop(file);
    f.fs.cut().unwrap();
    std::fs::read(dir.join("a")).unwrap()
}

#[test]
fn a_write_that_was_fsynced_survives_a_cut() {
    let mut f = mounted();
    let dir = f.fs.path().to_owned();
    durable_file(&dir, "a", b"hello");
    let report = f.fs.cut().unwrap();
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"hello");
    assert_eq!(report.files_rolled_back + report.entries_removed, 0, "{report:?}");
}

#[test]
fn a_write_that_was_not_fsynced_is_gone_after_a_cut() {
    let mut f = mounted();
    let dir = f.fs.path().to_owned();
    durable_file(&dir, "a", b"hello world");
    let file = File::options().write(true).open(dir.join("a")).unwrap();
    file.write_all_at(b"HELLO", 0).unwrap();
    file.write_all_at(b" and more", 11).unwrap();
    drop(file);
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"HELLO world and more", "the mount shows the writes");
    let report = f.fs.cut().unwrap();
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"hello world", "contents and length as at the sync");
    assert_eq!(report.files_rolled_back, 1);
}

/// fdatasync makes writes durable too; a truncate is undone by a cut unless it was fsynced.
#[test]
fn a_cut_keeps_what_was_synced_of_writes_and_truncates() {
    type Change = fn(&File) -> std::io::Result<()>;
    let cases: [(&str, &[u8], Change, &[u8]); 3] = [
        ("fdatasync", b"one", |f| {
            f.write_all_at(b"two", 0)?;
            f.sync_data()?;
            f.write_all_at(b"six", 0)
        }, b"two"),
        ("unsynced truncate", b"0123456789", |f| {
            f.set_len(3)?;
            f.write_all_at(b"xyz", 5)
        }, b"0123456789"),
        ("fsynced truncate", b"0123456789", |f| {
            f.set_len(4)?;
            f.sync_all()
        }, b"0123"),
    ];
    for (case, text, change, kept) in cases {
        assert_eq!(after_a_cut(text, change), kept, "{case}");
    }
}

#[test]
fn a_new_name_is_gone_after_a_cut_unless_its_directory_was_fsynced() {
    let mut f = mounted();
    let dir = f.fs.path().to_owned();
    File::create(dir.join("early")).unwrap().sync_all().unwrap();
    durable_file(&dir, "synced", b"data");
    std::fs::hard_link(dir.join("synced"), dir.join("linked")).unwrap();
    f.fs.cut().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    // "early" was named before the directory's fsync, "linked" after it.
    assert_eq!(names, ["early", "synced"]);
}

#[test]
fn a_file_created_after_the_last_directory_fsync_disappears() {
    let mut f = mounted();
    let dir = f.fs.path().to_owned();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let mut file = File::create(dir.join("sub/new")).unwrap();
    file.write_all(b"data").unwrap();
    file.sync_all().unwrap();
    drop(file);
    let report = f.fs.cut().unwrap();
    assert!(!dir.join("sub").exists(), "the directory was never synced into its parent");
    assert!(report.entries_removed >= 1, "{report:?}");
}
