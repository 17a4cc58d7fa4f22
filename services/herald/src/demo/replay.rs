//! Sends the sample month to ingest over gRPC, each submission signed with its source's key in
//! that tool's own scheme, and says afterwards what a user will (or will not) see.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use herald_catalog::Catalog;
use herald_ingest::{
    config::SourceSettings,
    sign::{self, Credential},
};
use herald_proto::v1::{
    GetValueSummaryRequest, Period, PeriodKind, Source, SubmitRequest, ingest_client::IngestClient,
    spotlight_client::SpotlightClient,
};

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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub total: usize,
    /// New events published (outcomes to score).
    pub published: usize,
    /// Accepted before: a restart on the same data directory.
    pub duplicates: usize,
}

async fn submit(
    mut client: IngestClient<tonic::transport::Channel>,
    keys: &Keys,
    submission: Submission,
) -> anyhow::Result<(bool, bool)> {
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
    let response = client
        .submit(SubmitRequest {
            source: source.token().to_string(),
            body: submission.body,
            headers,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", source.token(), s.message()))?
        .into_inner();
    Ok((
        response.published && !response.duplicate,
        response.duplicate,
    ))
}

/// Sends the month through ingest's gRPC API, eight at a time.
pub async fn replay(grpc_url: &str, keys: &Keys) -> anyhow::Result<Replayed> {
    let catalog = Catalog::from_toml_str(CATALOG)?;
    let submissions = month(&catalog, Utc::now());
    let client = IngestClient::connect(grpc_url.to_string())
        .await
        .with_context(|| format!("cannot reach ingest at {grpc_url}"))?;
    let total = submissions.len();
    let results: Vec<anyhow::Result<(bool, bool)>> = futures::stream::iter(submissions)
        .map(|s| submit(client.clone(), keys, s))
        .buffered(8)
        .collect()
        .await;
    let mut replayed = Replayed {
        total,
        ..Replayed::default()
    };
    let mut refused = Vec::new();
    for result in results {
        match result {
            Ok((published, duplicate)) => {
                replayed.published += usize::from(published);
                replayed.duplicates += usize::from(duplicate);
            }
            Err(e) => refused.push(e),
        }
    }
    if let Some(first) = refused.first() {
        anyhow::bail!(
            "{} of {total} demo deliveries were refused, the first: {first:#}",
            refused.len()
        );
    }
    Ok(replayed)
}

/// This month's wins so far, as spotlight counts them: `(wins, "EUR 123456")`.
async fn month_so_far(grpc_url: &str) -> anyhow::Result<(u32, String)> {
    let mut client = SpotlightClient::connect(grpc_url.to_string()).await?;
    let summary = client
        .get_value_summary(GetValueSummaryRequest {
            period: Some(Period {
                kind: PeriodKind::Month as i32,
                at: None,
            }),
        })
        .await?
        .into_inner();
    Ok((
        summary.wins,
        format!("{} {:.0}", summary.currency, summary.total_value),
    ))
}

/// What to tell the user once the replay is done: true whether this was the first start or a
/// restart (when everything was already stored, no headline will appear now).
pub async fn report(grpc_url: &str, replayed: Replayed) -> String {
    if replayed.total > 0 && replayed.duplicates == replayed.total {
        let so_far = match month_so_far(grpc_url).await {
            Ok((wins, value)) => format!("; this month so far: {wins} wins worth {value}"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this month's value from spotlight");
                String::new()
            }
        };
        return format!(
            "demo: already loaded: all {total} deliveries of the sample month were accepted before, \
             so no new headline wins will appear now{so_far}. See them with \
             `herald leaderboard --url {grpc_url}` and `herald value --url {grpc_url}`; \
             every announcement so far is in announcements.jsonl",
            total = replayed.total,
        );
    }
    format!(
        "demo: sent {} deliveries from the last 30 days, all accepted ({} new outcomes to score, {} \
         already there); headline wins appear above as they are scored, every announcement in \
         announcements.jsonl",
        replayed.total, replayed.published, replayed.duplicates
    )
}
