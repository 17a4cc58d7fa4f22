//! Sends the sample month to ingest over gRPC, each submission signed with its source's key in
//! that tool's own scheme, and says afterwards what a user will (or will not) see.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use anyhow::Context;
use chrono::{DateTime, Datelike, Utc};
use futures::StreamExt;
use herald_catalog::Catalog;
use herald_ingest::{
    config::SourceSettings,
    sign::{self, Credential},
};
use herald_proto::v1::{
    ExplainRequest, GetValueSummaryRequest, ListDeliveriesRequest, Period, PeriodKind, Source,
    SubmitRequest, WinStatus, ingest_client::IngestClient, notify_client::NotifyClient,
    scoring_client::ScoringClient, spotlight_client::SpotlightClient,
};

use serde::{Deserialize, Serialize};

use super::{CATALOG, Submission, month::month};

/// The key a source is configured with on Herald's side, which its tool signs with.
#[derive(Clone)]
enum Key {
    Secret(String),
    Token(String),
}

/// Every configured source's key (a secret wins over a token where both exist).
#[derive(Clone, Default)]
pub struct Keys(HashMap<Source, Key>);

impl Keys {
    pub fn from_sources(sources: &BTreeMap<String, SourceSettings>) -> Self {
        let keys = sources
            .iter()
            .filter_map(|(name, settings)| {
                let source = Source::from_token(name)?;
                let key = match (&settings.secret, &settings.token) {
                    (Some(secret), _) => Key::Secret(secret.expose().to_string()),
                    (None, Some(token)) => Key::Token(token.expose().to_string()),
                    (None, None) => return None,
                };
                Some((source, key))
            })
            .collect();
        Self(keys)
    }

    fn credential(&self, source: Source) -> Option<Credential<'_>> {
        self.0.get(&source).map(|key| match key {
            Key::Secret(secret) => Credential::Secret(secret),
            Key::Token(token) => Credential::Token(token),
        })
    }
}

/// What the replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub total: usize,
    /// New events published (outcomes to score).
    pub published: usize,
    /// Accepted before: a restart on the same data directory.
    pub duplicates: usize,
    /// Accepted but not published: events Herald does not use.
    pub unused: usize,
    /// Deliveries per tool, in the order of [`Source::ALL`].
    pub by_source: Vec<(Source, usize)>,
    /// The month was loaded by an earlier start on this data directory, so nothing was sent.
    pub already_loaded: bool,
    /// When the sample's 30 days end (the first start on this data directory).
    pub anchor: Option<DateTime<Utc>>,
}

/// What ingest answered for one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Published,
    Duplicate,
    Unused,
}

/// The headers `submission`'s tool sends with it, signed with its source's key.
fn signed_headers(keys: &Keys, submission: &Submission) -> anyhow::Result<HashMap<String, String>> {
    let source = submission.source;
    let mut headers: HashMap<String, String> = sign::headers(
        source,
        &submission.body,
        keys.credential(source),
        &sign::Context::default(),
    )?
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    headers.insert("content-type".into(), submission.content_type.to_string());
    Ok(headers)
}

async fn submit(
    mut client: IngestClient<tonic::transport::Channel>,
    keys: &Keys,
    submission: Submission,
) -> anyhow::Result<Answer> {
    let source = submission.source;
    let headers = signed_headers(keys, &submission)?;
    let response = client
        .submit(SubmitRequest {
            historical: false,
            source: source.token().to_string(),
            body: submission.body,
            headers,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", source.token(), s.message()))?
        .into_inner();
    Ok(match (response.published, response.duplicate) {
        (_, true) => Answer::Duplicate,
        (true, false) => Answer::Published,
        (false, false) => Answer::Unused,
    })
}

fn by_source(submissions: &[Submission]) -> Vec<(Source, usize)> {
    Source::ALL
        .iter()
        .map(|&source| {
            let count = submissions.iter().filter(|s| s.source == source).count();
            (source, count)
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// Sends the month through ingest's gRPC API, eight at a time, unless an earlier start on this
/// data directory already did. The month is anchored at the first start, so a restart (even days
/// later) generates the same deliveries with the same identities.
pub async fn replay(grpc_url: &str, keys: &Keys, data_dir: &Path) -> anyhow::Result<Replayed> {
    let catalog = Catalog::from_toml_str(CATALOG)?;
    let mut state = State::load_or_start(data_dir)?;
    let submissions = month(&catalog, state.anchor);
    let total = submissions.len();
    let mut replayed = Replayed {
        total,
        by_source: by_source(&submissions),
        anchor: Some(state.anchor),
        ..Replayed::default()
    };
    if state.loaded && state.deliveries == total {
        replayed.already_loaded = true;
        return Ok(replayed);
    }
    let client = IngestClient::connect(grpc_url.to_string())
        .await
        .with_context(|| format!("cannot reach ingest at {grpc_url}"))?;
    // Sent in order, eight at a time; a delivery that must find an earlier headline out (a reopen
    // the next morning) waits for it, as it would have live.
    let mut results: Vec<anyhow::Result<Answer>> = Vec::with_capacity(total);
    let mut batch = Vec::new();
    for submission in submissions {
        if let Some(record) = &submission.wait_for {
            results.extend(send_all(&client, keys, std::mem::take(&mut batch)).await);
            wait_for_headline(grpc_url, record).await;
        }
        batch.push(submission);
    }
    results.extend(send_all(&client, keys, batch).await);
    let mut refused = Vec::new();
    for result in results {
        match result {
            Ok(Answer::Published) => replayed.published += 1,
            Ok(Answer::Duplicate) => replayed.duplicates += 1,
            Ok(Answer::Unused) => replayed.unused += 1,
            Err(e) => refused.push(e),
        }
    }
    if let Some(first) = refused.first() {
        anyhow::bail!(
            "{} of {total} demo deliveries were refused, the first: {first:#}",
            refused.len()
        );
    }
    state.loaded = true;
    state.deliveries = total;
    state.save(data_dir)?;
    Ok(replayed)
}

async fn send_all(
    client: &IngestClient<tonic::transport::Channel>,
    keys: &Keys,
    submissions: Vec<Submission>,
) -> Vec<anyhow::Result<Answer>> {
    futures::stream::iter(submissions)
        .map(|s| submit(client.clone(), keys, s))
        .buffered(8)
        .collect()
        .await
}

/// How long the replay waits for a headline before sending what follows it anyway.
const HEADLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until `record`'s win has been confirmed and its headline handed to the channels, or
/// withdrawn already (a restart resending the month); gives up after [`HEADLINE_WAIT`].
async fn wait_for_headline(grpc_url: &str, record: &str) {
    let deadline = tokio::time::Instant::now() + HEADLINE_WAIT;
    loop {
        match headline_out(grpc_url, record).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, record, "waiting for the headline"),
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                record,
                "no headline for {record} after {HEADLINE_WAIT:?}; sending the rest of the month"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Whether `record`'s win is past its headline: announced (notify holds a delivery of it), or
/// withdrawn.
async fn headline_out(grpc_url: &str, record: &str) -> anyhow::Result<bool> {
    let mut scoring = ScoringClient::connect(grpc_url.to_string()).await?;
    let win = match scoring
        .explain(ExplainRequest {
            id: record.to_string(),
        })
        .await
    {
        Ok(explanation) => explanation.into_inner().win,
        Err(status) if status.code() == tonic::Code::NotFound => None,
        Err(status) => anyhow::bail!("{}", status.message()),
    };
    let Some(win) = win else {
        return Ok(false);
    };
    match WinStatus::try_from(win.status) {
        Ok(WinStatus::Revoked) => Ok(true),
        Ok(WinStatus::Confirmed) => {
            let mut notify = NotifyClient::connect(grpc_url.to_string()).await?;
            let deliveries = notify
                .list_deliveries(ListDeliveriesRequest {
                    announcement_id: herald_spotlight::handler::announcement_id(&win.id),
                    status: 0,
                    limit: 0,
                })
                .await?
                .into_inner()
                .deliveries;
            Ok(!deliveries.is_empty())
        }
        _ => Ok(false),
    }
}

/// `demo-month.json` in the data directory: when the month is anchored, and whether all of it was
/// accepted.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    anchor: DateTime<Utc>,
    deliveries: usize,
    loaded: bool,
}

impl State {
    const FILE: &str = "demo-month.json";

    /// The saved state, or a month anchored now (saved before anything is sent, so a start that
    /// is interrupted mid-way resumes the same month).
    fn load_or_start(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(Self::FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not the demo's state; remove it to start the month again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = Self {
                    anchor: Utc::now(),
                    deliveries: 0,
                    loaded: false,
                };
                state.save(data_dir)?;
                Ok(state)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(Self::FILE);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The month holding the middle of the sample's 30 days: the one it fills most, so a restart on
/// the first of a month still points at a month with wins in it.
fn sample_month(anchor: DateTime<Utc>) -> DateTime<Utc> {
    anchor - chrono::Duration::days(15)
}

/// The wins of the month holding `at` and the working hours they gave back, as spotlight counts
/// them (money is per label, so `herald value` shows it, not this one line).
async fn month_value(grpc_url: &str, at: DateTime<Utc>) -> anyhow::Result<(u32, f64)> {
    let mut client = SpotlightClient::connect(grpc_url.to_string()).await?;
    let summary = client
        .get_value_summary(GetValueSummaryRequest {
            period: Some(Period {
                kind: PeriodKind::Month as i32,
                at: Some(herald_proto::time::to_timestamp(at)),
            }),
        })
        .await?
        .into_inner();
    Ok((summary.wins, summary.hours_given_back))
}

/// What to tell the user once the replay is done: true whether this was the first start or a
/// restart (when everything was already stored, no headline will appear now).
pub async fn report(grpc_url: &str, replayed: &Replayed) -> String {
    let tools = replayed
        .by_source
        .iter()
        .map(|(source, count)| format!("{} {count}", source.token()))
        .collect::<Vec<_>>()
        .join(", ");
    if replayed.already_loaded || (replayed.total > 0 && replayed.duplicates == replayed.total) {
        let at = sample_month(replayed.anchor.unwrap_or_else(Utc::now));
        let so_far = match month_value(grpc_url, at).await {
            // In the demo organisation's locale; its catalog is built in, so it always parses.
            Ok((wins, hours)) => match Catalog::from_toml_str(CATALOG) {
                Ok(catalog) => {
                    let organisation = catalog.organisation();
                    format!(
                        "; {}: {wins} wins, {} working hours given back",
                        organisation.month_name(at.year(), at.month()),
                        organisation.number(hours, 0)
                    )
                }
                Err(_) => format!(
                    "; {}: {wins} wins, {hours:.0} working hours given back",
                    at.format("%B %Y")
                ),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this month's value from spotlight");
                String::new()
            }
        };
        return format!(
            "demo: already loaded: all {total} deliveries of the sample month ({tools}) were \
             accepted before, so nothing was sent again and no new headline wins will appear \
             now{so_far}. See them with `herald leaderboard --url {grpc_url}` and \
             `herald value --url {grpc_url}`; every announcement so far is in announcements.jsonl",
            total = replayed.total,
        );
    }
    let unused = match replayed.unused {
        0 => String::new(),
        n => format!(", {n} not used"),
    };
    format!(
        "demo: sent {} deliveries from the last 30 days ({tools}), all accepted ({} new outcomes \
         to score, {} already there{unused}); headline wins appear above as they are scored, every \
         announcement in announcements.jsonl",
        replayed.total, replayed.published, replayed.duplicates
    )
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use herald_ingest::{
        IngestConfig,
        sources::{self, Normalised},
    };
    use herald_proto::v1::EventKind;
    use tonic::codegen::http::{HeaderMap, HeaderName, HeaderValue};

    use super::*;
    use crate::demo::config_loader;

    /// Every delivery of the month, signed as the replay signs it, passes its source's own check
    /// under the demo's configuration and normalises to an event (none is refused or unused), and
    /// each tool's deliveries cover the kinds that tool reports.
    #[test]
    fn every_delivery_is_accepted_and_each_tool_sends_every_kind_it_reports() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = IngestConfig::load(
            &config_loader(dir.path(), &Default::default()).expect("demo config"),
        )
        .expect("the demo config loads");
        let keys = Keys::from_sources(&config.sources);
        let catalog = Catalog::from_toml_str(CATALOG).expect("catalog");
        let handlers = sources::handlers(&config.sources);
        let now = Utc::now();
        let mut kinds: BTreeMap<Source, BTreeSet<EventKind>> = BTreeMap::new();
        for submission in month(&catalog, now) {
            let source = submission.source;
            let headers: HeaderMap = signed_headers(&keys, &submission)
                .expect("signed")
                .into_iter()
                .map(|(name, value)| {
                    (
                        HeaderName::try_from(name).expect("header name"),
                        HeaderValue::try_from(value).expect("header value"),
                    )
                })
                .collect();
            let handler = handlers
                .iter()
                .find(|h| h.source() == source)
                .expect("a handler per source");
            let settings = &config.sources[source.token()];
            let body = String::from_utf8_lossy(&submission.body).into_owned();
            handler
                .verify(&headers, &submission.body, &settings.keys(), now)
                .unwrap_or_else(|e| panic!("{source:?} refused by verify: {e:?}\n{body}"));
            let context = sources::Context {
                catalog: &catalog,
                received_at: now,
            };
            let normalised = handler
                .normalise(&context, &headers, &submission.body)
                .unwrap_or_else(|e| panic!("{source:?} refused by normalise: {e:?}\n{body}"));
            let Normalised::Event { event, .. } = normalised else {
                panic!("{source:?} delivery accepted but not published:\n{body}");
            };
            kinds
                .entry(source)
                .or_default()
                .insert(EventKind::try_from(event.kind).expect("a known kind"));
        }
        use EventKind::*;
        let expected: [(Source, &[EventKind]); 7] = [
            (
                Source::Servicenow,
                &[
                    IncidentResolved,
                    IncidentReopened,
                    ChangeImplemented,
                    ChangeFailed,
                    ProblemClosed,
                    RequestFulfilled,
                ],
            ),
            (Source::Jira, &[IncidentResolved, RequestFulfilled]),
            (
                Source::Pagerduty,
                &[PageTriggered, PageAcknowledged, PageResolved],
            ),
            (
                Source::Opsgenie,
                &[PageTriggered, PageAcknowledged, PageResolved],
            ),
            (
                Source::Zendesk,
                &[
                    IncidentOpened,
                    RequestOpened,
                    IncidentResolved,
                    RequestFulfilled,
                    SurveySubmitted,
                ],
            ),
            (Source::Github, &[PullRequestMerged, DeploymentSucceeded]),
            (Source::Cloudevents, &[AutomationRun]),
        ];
        for (source, wanted) in expected {
            let got = kinds.get(&source).cloned().unwrap_or_default();
            let wanted: BTreeSet<EventKind> = wanted.iter().copied().collect();
            assert_eq!(got, wanted, "{source:?}");
        }
    }
}
