//! The activity log, `<root>/log`: one line per setup, teardown or failure (time, container,
//! stage, result, duration). Runtimes hide hook output in different ways (crun drops it, podman
//! shows poststop's only as a warning), so this is where users find what happened.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};
use crate::host::store;

const LOG_FILE: &str = "log";
/// Past this size the log is moved to `log.1` (one generation kept).
const ROTATE_BYTES: u64 = 4 << 20;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    pub time: String,
    pub id: String,
    pub stage: String,
    /// `ok` or `error: <the one-line message>`; a note's text.
    pub result: String,
    pub millis: f64,
}

impl Entry {
    pub fn new(
        id: &str,
        stage: &str,
        result: std::result::Result<(), String>,
        took: Duration,
    ) -> Entry {
        Entry {
            time: rfc3339(SystemTime::now()),
            id: id.to_string(),
            stage: stage.to_string(),
            result: match result {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            },
            millis: took.as_secs_f64() * 1000.0,
        }
    }

    /// A line that is neither a stage's success nor its failure: what ocinet did or could not do
    /// on the way (a host limit it raised, or a warning about one).
    pub(crate) fn note(id: &str, stage: &str, text: &str) -> Entry {
        Entry {
            time: rfc3339(SystemTime::now()),
            id: id.to_string(),
            stage: stage.to_string(),
            result: text.to_string(),
            millis: 0.0,
        }
    }

    fn line(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
        format!(
            "{}\t{}\t{}\t{:.2}ms\t{}\n",
            self.time,
            clean(&self.id),
            clean(&self.stage),
            self.millis,
            clean(&self.result)
        )
    }

    fn parse(line: &str) -> Option<Entry> {
        let mut f = line.splitn(5, '\t');
        Some(Entry {
            time: f.next()?.to_string(),
            id: f.next()?.to_string(),
            stage: f.next()?.to_string(),
            millis: f.next()?.strip_suffix("ms")?.parse().ok()?,
            result: f.next()?.to_string(),
        })
    }
}

fn path(root: &Path) -> PathBuf {
    root.join(LOG_FILE)
}

/// Appends one entry. One `write` of one line to an O_APPEND file: concurrent hooks never
/// interleave within a line.
pub fn append(root: &Path, entry: &Entry) -> Result<()> {
    let log = path(root);
    if fs::symlink_metadata(&log).is_ok_and(|m| m.len() > ROTATE_BYTES) {
        let _ = fs::rename(&log, root.join(format!("{LOG_FILE}.1")));
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&log)
        .context(|| format!("cannot open {}", log.display()))?;
    file.write_all(entry.line().as_bytes())
        .context(|| format!("cannot write {}", log.display()))
}

/// Runs one engine call and writes it to the log as `stage` of `id`, with its outcome and time
/// (the front ends' calls: the CNI plugin's, the Docker plugin's). The log is for people, so
/// failing to write it fails nothing.
pub fn logged<T>(root: &Path, id: &str, stage: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = std::time::Instant::now();
    let result = f();
    let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
    let _ = append(root, &Entry::new(id, stage, outcome, started.elapsed()));
    result
}

/// Every entry (of `id`, if given), oldest first, the rotated generation included.
pub fn read(root: &Path, id: Option<&str>) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for file in [root.join(format!("{LOG_FILE}.1")), path(root)] {
        let Some(bytes) = store::read_file_unbounded(&file)? else {
            continue;
        };
        out.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(Entry::parse)
                .filter(|e| id.is_none_or(|id| e.id == id)),
        );
    }
    Ok(out)
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {}  {}  {:.2} ms  {}",
            self.time, self.id, self.stage, self.millis, self.result
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, without a date crate.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_867_322_042);
        assert_eq!(rfc3339(t), "2026-11-28T12:02:02.042Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn append_and_read() {
        let dir = std::env::temp_dir().join(format!("ocinet-activity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let ok = Entry::new("c1", "setup", Ok(()), Duration::from_micros(4200));
        let bad = Entry::new(
            "c2",
            "setup",
            Err("no\tfree\naddress".into()),
            Duration::ZERO,
        );
        append(&dir, &ok).unwrap();
        append(&dir, &bad).unwrap();
        let all = read(&dir, None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].result, "ok");
        assert_eq!(all[0].millis, 4.2);
        assert_eq!(all[1].result, "error: no free address");
        assert_eq!(read(&dir, Some("c2")).unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
