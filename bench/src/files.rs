//! Where `herald up` keeps its files during a run, and on what: every commit on an event's path
//! waits for that filesystem's sync, so its latencies are the disk's as much as Herald's. The
//! same build's p99 at 200 events/s was 3.2 ms with its data directory on tmpfs and 7.9–8.9 ms on
//! this project's disk (BENCHMARKS.md, thirty-fourth sitting); a report must say which it measured.

use std::path::{Component, Path, PathBuf};

/// The filesystem a directory is on, as `/proc/mounts` names it.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    device: String,
    point: PathBuf,
    kind: String,
}

/// Where `herald up`'s data directories go in this run (the temporary directory: `TMPDIR`), in
/// words for the report.
pub fn described() -> String {
    let dir = std::env::temp_dir();
    let dir = dir.canonicalize().unwrap_or(dir);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    describe(&dir, mount_of(&dir, &mounts).as_ref())
}

fn describe(dir: &Path, mount: Option<&Mount>) -> String {
    match mount {
        Some(m) if m.kind == "tmpfs" || m.kind == "ramfs" => format!(
            "**`herald up` keeps its files in memory ({} at {}, under {}): its commits wait for no \
             disk, so its latencies are lower than a disk gives. Leave `TMPDIR` on a disk to \
             measure what a user's machine does.**",
            m.kind,
            m.point.display(),
            dir.display()
        ),
        Some(m) => format!(
            "`herald up` keeps its files under {} on {} ({}, mounted at {}): its commits wait for \
             that disk's syncs, as on a user's machine.",
            dir.display(),
            m.kind,
            m.device,
            m.point.display()
        ),
        None => format!(
            "`herald up` keeps its files under {}, on a filesystem this benchmark could not name \
             (no /proc/mounts).",
            dir.display()
        ),
    }
}

/// The mount holding `dir`: the one with the longest mount point that `dir` is inside, whole
/// components only (`/tmpfs` is not inside `/tmp`).
fn mount_of(dir: &Path, mounts: &str) -> Option<Mount> {
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            Some(Mount {
                device: unescape(device),
                point: PathBuf::from(unescape(point)),
                kind: kind.to_string(),
            })
        })
        .filter(|m| dir.starts_with(&m.point))
        .max_by_key(|m| {
            m.point
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .count()
        })
}

/// `/proc/mounts` writes a space, a tab, a newline and a backslash in a path as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
/dev/vdb /srv/my\\040data xfs rw 0 0
";

    #[test]
    fn the_deepest_mount_holding_the_directory_is_the_one() {
        let mount = |dir: &str| mount_of(Path::new(dir), MOUNTS).map(|m| m.kind);
        assert_eq!(mount("/tmp/.tmpAbc").as_deref(), Some("tmpfs"));
        assert_eq!(
            mount("/tmpfoo/x").as_deref(),
            Some("ext4"),
            "whole components only"
        );
        assert_eq!(mount("/work/main").as_deref(), Some("ext4"));
        assert_eq!(
            mount("/srv/my data/x").as_deref(),
            Some("xfs"),
            "escaped space"
        );
        assert_eq!(mount_of(Path::new("/x"), ""), None);
    }

    #[test]
    fn memory_is_called_out_and_a_disk_named() {
        let dir = Path::new("/tmp/run");
        let memory = mount_of(dir, MOUNTS);
        let said = describe(dir, memory.as_ref());
        assert!(said.contains("in memory (tmpfs at /tmp"), "{said}");
        assert!(said.starts_with("**"), "stands out: {said}");

        let disk = mount_of(Path::new("/var/tmp"), MOUNTS);
        let said = describe(Path::new("/var/tmp"), disk.as_ref());
        assert!(said.contains("on ext4 (/dev/vda, mounted at /)"), "{said}");
        assert!(!said.starts_with("**"), "{said}");

        let said = describe(dir, None);
        assert!(said.contains("could not name"), "{said}");
    }
}
