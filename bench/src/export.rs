//! The file a backfill benchmark feeds `herald backfill`: a ServiceNow incident list export as an
//! operator downloads it (`incident_list.do?CSV` with the columns Herald reads: references as
//! display values, UTC times, quotes where a field needs them) of N incidents resolved over the
//! past year, spread over the demo catalog's services, teams and people the way the webhook events
//! are. Every row restores its service inside the baseline with the SLA made, so every row is a
//! win: a row that does not become one was lost. Written row by row: a million rows never sit in
//! memory.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::events::{Cast, Ref, casts};

/// The export's columns, in the order ServiceNow writes the ones chosen.
const HEADER: [&str; 21] = [
    "sys_id",
    "sys_mod_count",
    "sys_class_name",
    "number",
    "short_description",
    "state",
    "priority",
    "opened_at",
    "resolved_at",
    "closed_at",
    "business_service",
    "assignment_group",
    "assigned_to",
    "resolved_by",
    "caller_id",
    "close_code",
    "close_notes",
    "made_sla",
    "sla_due",
    "reassignment_count",
    "reopen_count",
];

/// How far back the history goes, and how recent its newest row is (older than any hold-back).
const HISTORY_DAYS: i64 = 365;
const NEWEST_DAYS_AGO: i64 = 1;

/// SLA restore targets per priority (P1…P4) in minutes: the baseline where the catalog gives the
/// service no typical restore time.
const SLA_MINUTES: [f64; 4] = [240.0, 480.0, 1440.0, 4320.0];

/// Business users who raise incidents: not in the IT catalog, so nobody is excluded from credit
/// for having asked for the work.
const CALLERS: [&str; 6] = [
    "Pieter van Dijk",
    "Sanne de Vries",
    "Joost Bakker",
    "Lotte Visser",
    "Mehmet Yilmaz",
    "Anouk Peters",
];

/// Titles as service desks write them; some hold a comma, so the export quotes them.
const TITLES: [&str; 6] = [
    "{service} unavailable for all users at DC Venlo",
    "{service}: logins fail with a timeout, remote depots affected",
    "{service} slow since the morning, pages take over a minute",
    "Error 500 in {service} when saving",
    "{service} jobs stuck in the queue, nothing processed since 07:00",
    "Users cannot reach {service} from the Tilburg office",
];

const CLOSE_NOTES: [&str; 3] = [
    "Restarted the stuck worker and cleared the queue; monitoring added.",
    "Renewed the expired certificate, redeployed the chain, confirmed with the users.",
    "Rolled back the configuration change, then reapplied it with the missing setting.",
];

/// What was written, and the span of time its rows cover.
#[derive(Debug, Clone)]
pub struct Export {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

/// Writes `rows` resolved incidents to `path`, the oldest first (as a list sorted by number is),
/// their times counted back from `now`.
pub fn write(path: &Path, rows: u64, now: DateTime<Utc>) -> anyhow::Result<Export> {
    let casts = casts()?;
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
    out.write_record(HEADER)?;
    // Whole seconds, as the export writes times: the span it reports is the span it holds.
    let newest = now.trunc_subsecs(0) - Duration::days(NEWEST_DAYS_AGO);
    let oldest = newest - Duration::days(HISTORY_DAYS - NEWEST_DAYS_AGO);
    let span_seconds = (newest - oldest).num_seconds();
    for index in 0..rows {
        // Evenly over the span, so every period of the year gets its share.
        let offset = i64::try_from(u128::from(index) * span_seconds as u128 / u128::from(rows))?;
        let row = Incident::new(index, &casts, oldest + Duration::seconds(offset));
        out.write_record(row.fields())?;
    }
    let mut buffered = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    buffered.flush()?;
    let bytes = std::fs::metadata(path)?.len();
    Ok(Export {
        path: path.to_path_buf(),
        rows,
        bytes,
        oldest,
        newest,
    })
}

/// SplitMix64: a fixed, well-spread number per row, so the same row count gives the same file.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One of `list`, chosen by `noise`.
fn pick(list: &[&'static str], noise: u64) -> &'static str {
    list[(noise % list.len() as u64) as usize]
}

/// One row of the export.
struct Incident<'a> {
    index: u64,
    noise: u64,
    cast: &'a Cast,
    person: &'a Ref,
    priority: u32,
    opened: DateTime<Utc>,
    resolved: DateTime<Utc>,
    sla_minutes: f64,
}

impl<'a> Incident<'a> {
    fn new(index: u64, casts: &'a [Cast], resolved: DateTime<Utc>) -> Self {
        let noise = mix(index);
        // The same spread as the webhook events: every service in turn, then each of its people.
        let n = casts.len() as u64;
        let cast = &casts[(index % n) as usize];
        let person = &cast.people[((index / n) % cast.people.len() as u64) as usize];
        // Few P1s and P2s, mostly P3s and P4s, as a service desk sees them.
        let priority = match noise % 100 {
            0..2 => 1,
            2..10 => 2,
            10..50 => 3,
            _ => 4,
        };
        let sla_minutes = SLA_MINUTES[(priority - 1) as usize];
        let baseline = cast
            .typical_restore
            .as_ref()
            .and_then(|t| t.minutes(priority))
            .unwrap_or(sla_minutes)
            .min(sla_minutes);
        // Restored in 15–85 % of the baseline: time saved, SLA made.
        let share = 0.15 + 0.70 * ((noise >> 8) % 1000) as f64 / 1000.0;
        let restore = Duration::seconds((baseline * share * 60.0) as i64);
        Self {
            index,
            noise,
            cast,
            person,
            priority,
            opened: resolved - restore,
            resolved,
            sla_minutes,
        }
    }

    fn fields(&self) -> [String; HEADER.len()] {
        let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let choose = |list: &[&'static str], salt: u32| pick(list, self.noise >> salt);
        let sla_due = self.opened + Duration::seconds((self.sla_minutes * 60.0) as i64);
        [
            format!("{:016x}{:016x}", mix(self.index ^ 0x5EED), self.noise),
            (3 + self.noise % 20).to_string(),
            "incident".into(),
            format!("INC{:07}", self.index + 1),
            choose(&TITLES, 16).replace("{service}", &self.cast.service.name),
            // Resolved.
            "6".into(),
            self.priority.to_string(),
            at(self.opened),
            at(self.resolved),
            String::new(),
            self.cast.service.name.clone(),
            self.cast.team.name.clone(),
            self.person.name.clone(),
            self.person.name.clone(),
            choose(&CALLERS, 24).into(),
            choose(&["Solution provided", "Workaround provided"], 32).into(),
            choose(&CLOSE_NOTES, 40).into(),
            "true".into(),
            at(sla_due),
            ((self.noise >> 48) % 3).to_string(),
            "0".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_a_resolved_incident_inside_its_sla() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("incidents.csv");
        let now = Utc::now();
        let export = write(&path, 500, now)?;
        let mut reader = csv::Reader::from_path(&path)?;
        let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
        assert_eq!(header, HEADER);
        let column = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
        let time = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S");
        let mut numbers = std::collections::HashSet::new();
        let mut rows = 0;
        for record in reader.records() {
            let record = record?;
            rows += 1;
            assert_eq!(&record[column("state")], "6");
            assert_eq!(record[column("sys_id")].len(), 32);
            let opened = time(&record[column("opened_at")])?;
            let resolved = time(&record[column("resolved_at")])?;
            let due = time(&record[column("sla_due")])?;
            assert!(opened < resolved && resolved < due, "{record:?}");
            assert!(resolved.and_utc() <= export.newest && resolved.and_utc() >= export.oldest);
            assert!(numbers.insert(record[column("number")].to_string()));
        }
        assert_eq!(rows, 500);
        assert_eq!(export.rows, 500);
        Ok(())
    }
}
