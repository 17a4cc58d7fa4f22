//! The reads a run needs, each one statement for the whole run: the run's keys go in as a list
//! (`q`, numbered by `i`) joined to the table: a `VALUES` list, or on PostgreSQL, for the reads
//! every run makes (praise, the signals against its wins, the wins its signals withdraw), one
//! array a column ([`keys`]), so their text does not change with the run's size and PostgreSQL
//! plans each once. The reads only a daily cap or found praise brings keep their lists.
//! Where the single-event read took the first row of an ordering, a correlated subquery picks its
//! id per key (one index probe a key, one row per key, not every match), and the rows found are
//! read by id in a second statement only when there are any (signals, which have no id of their
//! own, in the same statement).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use herald_proto::v1::{RequesterPraise, Source, Win};
use herald_runtime::{
    db::{from_millis, millis},
    pg_arrays::{self, Column},
    store::{AnyQuery, batch_query, is_postgres, value_rows},
};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::super::{StoreError, source_token};
use crate::verification::{NEARBY_WITHDRAWN, Signal, SignalKind, Windows};

/// A signal's or a win's kinds, padded to a fixed width so one statement serves every key
/// (an unused slot never matches: no kind is empty).
fn kind_slots<const N: usize>(kinds: &[&'static str]) -> [&'static str; N] {
    let mut slots = [""; N];
    for (slot, kind) in slots.iter_mut().zip(kinds) {
        *slot = kind;
    }
    slots
}

/// Where `q` takes its rows from: `columns`' arrays on PostgreSQL, a `VALUES` list of `rows`
/// elsewhere. Bound by [`bind_keys`].
fn keys(tx: &Transaction<'_, Any>, rows: usize, columns: &[Column]) -> String {
    if is_postgres(tx) {
        format!("SELECT * FROM {}", pg_arrays::unnest(1, columns, "k"))
    } else {
        format!("VALUES {}", value_rows(tx, rows, columns.len()))
    }
}

/// Binds `rows` as [`keys`] takes them: column by column on PostgreSQL, or row by row with `bind`.
fn bind_keys<'q, T: Serialize>(
    tx: &Transaction<'_, Any>,
    query: AnyQuery<'q>,
    rows: &[T],
    columns: &[Column],
    bind: impl Fn(AnyQuery<'q>, &T) -> AnyQuery<'q>,
) -> Result<AnyQuery<'q>, StoreError> {
    if is_postgres(tx) {
        Ok(pg_arrays::bind(query, rows, columns)?)
    } else {
        Ok(rows.iter().fold(query, bind))
    }
}

const RECORD_KEY: &[Column] = &[
    ("i", "bigint"),
    ("source", "text"),
    ("record_number", "text"),
];

#[derive(Serialize)]
struct RecordKey<'a> {
    i: i64,
    source: &'static str,
    record_number: &'a str,
}

/// The newest praise of each win's ticket (praise that arrived before the win it rates).
pub(super) async fn praise(
    tx: &mut Transaction<'_, Any>,
    wins: &[&Win],
) -> Result<Vec<Option<RequesterPraise>>, StoreError> {
    let mut found = vec![None; wins.len()];
    if wins.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "WITH q(i, source, record_number) AS ({})
         SELECT i, event_id FROM (
             SELECT q.i, (SELECT p.event_id FROM praise p
                          WHERE p.source = q.source AND p.record_number = q.record_number
                          ORDER BY p.at DESC LIMIT 1) AS event_id
             FROM q) f
         WHERE event_id IS NOT NULL",
        keys(tx, wins.len(), RECORD_KEY)
    );
    let asked: Vec<RecordKey<'_>> = wins
        .iter()
        .enumerate()
        .map(|(i, win)| RecordKey {
            i: index(i),
            source: source_token(win.source),
            record_number: &win.record_number,
        })
        .collect();
    let query = bind_keys(tx, batch_query(sql), &asked, RECORD_KEY, |q, k| {
        q.bind(k.i).bind(k.source).bind(k.record_number.to_string())
    })?;
    let firsts = found_ids(query.fetch_all(&mut **tx).await?);
    let rows = rows_by_event_id(tx, "praise", "event_id, quote, requester, score", &firsts).await?;
    for (i, event_id) in firsts {
        if let (Some(slot), Some(row)) = (found.get_mut(i), rows.get(&event_id)) {
            *slot = Some(RequesterPraise {
                quote: row.get("quote"),
                requester: row.get("requester"),
                score: row.get("score"),
            });
        }
    }
    Ok(found)
}

/// A win about to be recorded, as the signal lookup needs it.
pub(in crate::store) struct Candidate<'a> {
    pub win: &'a Win,
    pub configuration_item: Option<&'a str>,
    pub windows: Windows,
}

const SAME_RECORD_WINDOW: &[Column] = &[
    ("i", "bigint"),
    ("source", "text"),
    ("record_number", "text"),
    ("from_at", "bigint"),
    ("to_at", "bigint"),
    ("k1", "text"),
    ("k2", "text"),
    ("k3", "text"),
];

#[derive(Serialize)]
struct SameRecordWindow<'a> {
    i: i64,
    source: &'static str,
    record_number: &'a str,
    from_at: i64,
    to_at: i64,
    k1: &'a str,
    k2: &'a str,
    k3: &'a str,
}

const RELATED_WINDOW: &[Column] = &[
    ("i", "bigint"),
    ("from_at", "bigint"),
    ("to_at", "bigint"),
    ("business_service", "text"),
    ("configuration_item", "text"),
];

#[derive(Serialize)]
struct RelatedWindow<'a> {
    i: i64,
    from_at: i64,
    to_at: i64,
    business_service: Option<&'a str>,
    configuration_item: Option<&'a str>,
}

/// For each candidate, the earliest signal already seen that withdraws it (one that arrived
/// before the outcome did): a reopen, rollback or breach of the same record, or a related
/// incident on its service or configuration item.
pub(in crate::store) async fn signals_against(
    tx: &mut Transaction<'_, Any>,
    candidates: &[Candidate<'_>],
) -> Result<Vec<Option<Signal>>, StoreError> {
    let mut found: Vec<Option<Signal>> = vec![None; candidates.len()];
    let applicable = |c: &Candidate<'_>| -> Vec<SignalKind> {
        let kind = herald_proto::v1::EventKind::try_from(c.win.kind).unwrap_or_default();
        SignalKind::ALL
            .into_iter()
            .filter(|s| s.withdraws().contains(&kind))
            .collect()
    };
    let same: Vec<(usize, [&str; 3])> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let kinds: Vec<&'static str> = applicable(c)
                .into_iter()
                .filter(|s| s.same_record())
                .map(|s| s.token())
                .collect();
            (!kinds.is_empty()).then(|| (i, kind_slots(&kinds)))
        })
        .collect();
    let related: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            applicable(c).iter().any(|s| !s.same_record())
                && (c.win.business_service.is_some() || c.configuration_item.is_some())
        })
        .map(|(i, _)| i)
        .collect();

    // Each candidate's first signal, found by one index probe a candidate: joined to the table
    // instead, the lookup hashed every signal ever kept, once a batch.
    let mut rows = Vec::new();
    if !same.is_empty() {
        let sql = first_signals(
            tx,
            SAME_RECORD_WINDOW,
            same.len(),
            "s.source = q.source AND s.record_number = q.record_number
             AND s.at > q.from_at AND s.at <= q.to_at AND s.kind IN (q.k1, q.k2, q.k3)",
        );
        let asked: Vec<SameRecordWindow<'_>> = same
            .iter()
            .map(|(i, [k1, k2, k3])| {
                let c = &candidates[*i];
                SameRecordWindow {
                    i: index(*i),
                    source: source_token(c.win.source),
                    record_number: &c.win.record_number,
                    from_at: millis(c.windows.outcome_at),
                    to_at: millis(c.windows.revocable_until),
                    k1,
                    k2,
                    k3,
                }
            })
            .collect();
        let query = bind_keys(tx, batch_query(sql), &asked, SAME_RECORD_WINDOW, |q, k| {
            q.bind(k.i)
                .bind(k.source)
                .bind(k.record_number.to_string())
                .bind(k.from_at)
                .bind(k.to_at)
                .bind(k.k1)
                .bind(k.k2)
                .bind(k.k3)
        })?;
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    if !related.is_empty() {
        let sql = first_signals(
            tx,
            RELATED_WINDOW,
            related.len(),
            "s.kind = 'related_incident' AND s.at > q.from_at AND s.at <= q.to_at
             AND (s.business_service = q.business_service
                  OR s.configuration_item = q.configuration_item)",
        );
        let asked: Vec<RelatedWindow<'_>> = related
            .iter()
            .map(|i| {
                let c = &candidates[*i];
                RelatedWindow {
                    i: index(*i),
                    from_at: millis(c.windows.outcome_at),
                    to_at: millis(c.windows.revocable_until),
                    business_service: c.win.business_service.as_deref(),
                    configuration_item: c.configuration_item,
                }
            })
            .collect();
        let query = bind_keys(tx, batch_query(sql), &asked, RELATED_WINDOW, |q, k| {
            q.bind(k.i)
                .bind(k.from_at)
                .bind(k.to_at)
                .bind(k.business_service.map(str::to_string))
                .bind(k.configuration_item.map(str::to_string))
        })?;
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    for row in rows {
        let Ok(i) = usize::try_from(row.get::<i64, _>("i")) else {
            continue;
        };
        let Some(slot) = found.get_mut(i) else {
            continue;
        };
        let Some(kind) = SignalKind::from_token(&row.get::<String, _>("kind")) else {
            continue;
        };
        let at = from_millis(row.get::<i64, _>("at"));
        if slot.as_ref().is_some_and(|s| s.at <= at) {
            continue;
        }
        *slot = Some(Signal {
            event_id: row.get("event_id"),
            kind,
            // The lookup matched on the win's own source for a same-record signal; a related
            // incident is told as the single-event lookup told it, under the win's source.
            source: Source::Unspecified,
            record_number: row.get("record_number"),
            at,
            business_service: row.get("business_service"),
            configuration_item: row.get("configuration_item"),
        });
    }
    for (signal, c) in found.iter_mut().zip(candidates) {
        if let Some(signal) = signal.as_mut() {
            signal.source = Source::try_from(c.win.source).unwrap_or(Source::Unspecified);
        }
    }
    Ok(found)
}

/// A standing win a signal of the run falls inside the window of.
pub(super) struct Withdrawable {
    /// Which of the run's signals found it.
    pub signal: usize,
    pub id: String,
    pub payload: Vec<u8>,
    pub outcome_at: DateTime<Utc>,
}

const SAME_RECORD_KEY: &[Column] = &[
    ("i", "bigint"),
    ("source", "text"),
    ("record_number", "text"),
    ("at", "bigint"),
    ("k1", "text"),
    ("k2", "text"),
    ("k3", "text"),
    ("k4", "text"),
];

#[derive(Serialize)]
struct SameRecordKey<'a> {
    i: i64,
    source: &'static str,
    record_number: &'a str,
    at: i64,
    k1: &'static str,
    k2: &'static str,
    k3: &'static str,
    k4: &'static str,
}

/// The standing wins each signal withdraws, in the order of the signals.
pub(super) async fn withdrawable(
    tx: &mut Transaction<'_, Any>,
    signals: &[&Signal],
) -> Result<Vec<Withdrawable>, StoreError> {
    let of = |same_record: bool| -> Vec<(usize, &Signal)> {
        signals
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| s.kind.same_record() == same_record)
            .collect()
    };
    let (same, related) = (of(true), of(false));
    const WIN: &str = "w.id, w.payload, w.outcome_at";
    let mut rows = Vec::new();
    if !same.is_empty() {
        let sql = format!(
            "WITH q(i, source, record_number, at, k1, k2, k3, k4) AS ({})
             SELECT q.i, {WIN} FROM q JOIN wins w
               ON w.source = q.source AND w.record_number = q.record_number AND w.status <> 'revoked'
              AND w.outcome_at < q.at AND w.revocable_until >= q.at AND w.kind IN (q.k1, q.k2, q.k3, q.k4)",
            keys(tx, same.len(), SAME_RECORD_KEY)
        );
        let asked: Vec<SameRecordKey<'_>> = same
            .iter()
            .map(|(i, signal)| {
                let [k1, k2, k3, k4] = kind_slots::<4>(&withdrawn_kinds(signal.kind));
                SameRecordKey {
                    i: index(*i),
                    source: signal.source.token(),
                    record_number: &signal.record_number,
                    at: millis(signal.at),
                    k1,
                    k2,
                    k3,
                    k4,
                }
            })
            .collect();
        let query = bind_keys(tx, batch_query(sql), &asked, SAME_RECORD_KEY, |q, k| {
            q.bind(k.i)
                .bind(k.source)
                .bind(k.record_number.to_string())
                .bind(k.at)
                .bind(k.k1)
                .bind(k.k2)
                .bind(k.k3)
                .bind(k.k4)
        })?;
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    let mut found: Vec<Withdrawable> = rows
        .into_iter()
        .filter_map(|row| {
            Some(Withdrawable {
                signal: usize::try_from(row.get::<i64, _>("i")).ok()?,
                id: row.get("id"),
                payload: row.get("payload"),
                outcome_at: from_millis(row.get::<i64, _>("outcome_at")),
            })
        })
        .collect();
    found.extend(withdrawable_nearby(tx, &related).await?);
    // Signals withdraw in the order they came; a win two signals fall on goes to the first.
    found.sort_by(|a, b| a.signal.cmp(&b.signal).then_with(|| a.id.cmp(&b.id)));
    found.dedup_by(|a, b| a.signal == b.signal && a.id == b.id);
    Ok(found)
}

/// The standing wins related incidents fall on: changes on the same service or configuration item
/// whose revocation window holds the incident's time.
///
/// One query over the run's services and configuration items, each with the earliest and latest
/// incident time seen there, matched to each signal in memory: joined to a list of the signals,
/// PostgreSQL hashed the whole wins table for every batch (it cannot tell that few changes are
/// still revocable), which grew with history; a condition per service is an index range each.
async fn withdrawable_nearby(
    tx: &mut Transaction<'_, Any>,
    related: &[(usize, &Signal)],
) -> Result<Vec<Withdrawable>, StoreError> {
    if related.is_empty() {
        return Ok(Vec::new());
    }
    let mut scopes: std::collections::BTreeMap<(&str, &str), (i64, i64)> = Default::default();
    for (_, signal) in related {
        let at = millis(signal.at);
        let places = [
            ("business_service", signal.business_service.as_deref()),
            ("configuration_item", signal.configuration_item.as_deref()),
        ];
        for (column, value) in places {
            if let Some(value) = value {
                let span = scopes.entry((column, value)).or_insert((at, at));
                *span = (span.0.min(at), span.1.max(at));
            }
        }
    }
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    // The kind is written out in every arm, not bound: the lookups by service and by
    // configuration item hold only this kind, and a planner uses a partial index only where the
    // query names its predicate (PostgreSQL's generic plan and SQLite's OR both read the whole
    // table for a bound kind).
    let kind = NEARBY_WITHDRAWN.token();
    let mut arms = Vec::with_capacity(scopes.len());
    for (n, (column, _)) in scopes.keys().enumerate() {
        // `column` is one of the two names above and `kind` a constant; every value is bound.
        arms.push(format!(
            "({column} = ${} AND kind = '{kind}' AND revocable_until >= ${} AND outcome_at < ${})",
            3 * n + 1,
            3 * n + 2,
            3 * n + 3
        ));
    }
    let sql = format!(
        "SELECT id, payload, outcome_at, revocable_until, business_service, configuration_item
         FROM wins WHERE status <> 'revoked' AND ({})",
        arms.join(" OR ")
    );
    let mut query = batch_query(sql);
    for ((_, value), (earliest, latest)) in &scopes {
        query = query.bind(*value).bind(*earliest).bind(*latest);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    // Every row is of the one kind every nearby signal withdraws (a unit test in `verification`
    // keeps that so): what is left to match is the place and the window.
    let mut found = Vec::new();
    for (i, signal) in related {
        let at = millis(signal.at);
        for row in &rows {
            let service: Option<String> = row.get("business_service");
            let item: Option<String> = row.get("configuration_item");
            let near = (service.is_some() && service == signal.business_service)
                || (item.is_some() && item == signal.configuration_item);
            let open =
                row.get::<i64, _>("outcome_at") < at && row.get::<i64, _>("revocable_until") >= at;
            if near && open {
                found.push(Withdrawable {
                    signal: *i,
                    id: row.get("id"),
                    payload: row.get("payload"),
                    outcome_at: from_millis(row.get::<i64, _>("outcome_at")),
                });
            }
        }
    }
    Ok(found)
}

fn withdrawn_kinds(kind: SignalKind) -> Vec<&'static str> {
    kind.withdraws().iter().map(|k| k.token()).collect()
}

/// Outcomes among `wins` (a win's id and its outcome key) that already have a win: read by the
/// id, which is made from the key, and the key compared.
pub(super) async fn existing_outcomes(
    tx: &mut Transaction<'_, Any>,
    wins: &[(&str, &str)],
) -> Result<HashSet<String>, StoreError> {
    if wins.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "WITH q(id, outcome_key) AS (VALUES {})
         SELECT w.outcome_key FROM q JOIN wins w ON w.id = q.id AND w.outcome_key = q.outcome_key",
        value_rows(tx, wins.len(), 2)
    );
    let mut query = batch_query(sql);
    for (id, key) in wins {
        query = query.bind(*id).bind(*key);
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| r.get("outcome_key"))
        .collect())
}

/// What each person has been credited for outcomes in `[from, to)`, in wins still standing: the
/// daily cap's starting point, per (person, day) asked.
pub(super) async fn credited(
    tx: &mut Transaction<'_, Any>,
    asks: &[(&str, DateTime<Utc>, DateTime<Utc>)],
) -> Result<HashMap<(String, i64), f64>, StoreError> {
    if asks.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "WITH q(person, from_at, to_at) AS (VALUES {})
         SELECT q.person, q.from_at, (
             SELECT COALESCE(SUM(c.amount), 0.0) FROM person_credits c JOIN wins w ON w.id = c.win_id
             WHERE c.person = q.person AND c.outcome_at >= q.from_at AND c.outcome_at < q.to_at
               AND w.status <> 'revoked') AS total
         FROM q",
        value_rows(tx, asks.len(), 3)
    );
    let mut query = batch_query(sql);
    for (person, from, to) in asks {
        query = query.bind(*person).bind(millis(*from)).bind(millis(*to));
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            (
                (r.get::<String, _>("person"), r.get::<i64, _>("from_at")),
                r.get::<f64, _>("total"),
            )
        })
        .collect())
}

/// The `(i, event_id)` pairs a "first row of each key" lookup found.
fn found_ids(rows: Vec<sqlx::any::AnyRow>) -> Vec<(usize, String)> {
    rows.into_iter()
        .filter_map(|row| {
            let i = usize::try_from(row.get::<i64, _>("i")).ok()?;
            Some((i, row.get::<String, _>("event_id")))
        })
        .collect()
}

/// The rows of `table` (`columns` of them, `event_id` among them) the lookup found, by event id.
async fn rows_by_event_id(
    tx: &mut Transaction<'_, Any>,
    table: &'static str,
    columns: &'static str,
    firsts: &[(usize, String)],
) -> Result<HashMap<String, sqlx::any::AnyRow>, StoreError> {
    let ids: HashSet<&str> = firsts.iter().map(|(_, id)| id.as_str()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE event_id IN (VALUES {})",
        value_rows(tx, ids.len(), 1)
    );
    let mut query = batch_query(sql);
    for id in &ids {
        query = query.bind(*id);
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|row| (row.get::<String, _>("event_id"), row))
        .collect())
}

/// The signal columns a lookup reads, each under the table's alias `s`.
const SIGNAL: &str =
    "s.event_id, s.kind, s.record_number, s.at, s.business_service, s.configuration_item";

/// For each of `keys_of` rows of `q` (its `columns`, bound by [`bind_keys`]), the earliest signal that meets
/// `condition`, with `i`: one index probe a key. Signals have no key of their own to be read by in
/// a second statement, so the row found is read in the same one: on PostgreSQL by a lateral
/// subquery, on SQLite (which has none) by the rowid a correlated subquery finds. (A join on
/// PostgreSQL's ctid instead let its planner hash every signal for it, once a batch.)
fn first_signals(
    tx: &Transaction<'_, Any>,
    columns: &[Column],
    keys_of: usize,
    condition: &str,
) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let (names, rows) = (names.join(", "), keys(tx, keys_of, columns));
    if is_postgres(tx) {
        format!(
            "WITH q({names}) AS ({rows})
             SELECT q.i, {SIGNAL} FROM q CROSS JOIN LATERAL (
                 SELECT * FROM signals s WHERE {condition} ORDER BY s.at LIMIT 1) s"
        )
    } else {
        format!(
            "WITH q({names}) AS ({rows})
             SELECT f.i, {SIGNAL} FROM (
                 SELECT q.i, (SELECT s.rowid FROM signals s WHERE {condition}
                              ORDER BY s.at LIMIT 1) AS address
                 FROM q) f
             JOIN signals s ON s.rowid = f.address"
        )
    }
}

/// A position in a run as a bound value (a run holds a few hundred events at most).
fn index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}
