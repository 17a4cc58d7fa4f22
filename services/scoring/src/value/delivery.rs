//! Deployments and merged pull requests are context, not wins: counted for delivery metrics
//! (deployment frequency, change failure rate) and linked to the change they carry out.

use chrono::{DateTime, Utc};
use herald_proto::{
    time::opt_from_timestamp,
    v1::{EventKind, ItsmEvent},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    Deployment,
    Merge,
}

/// One deployment or merge, for counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryMetric {
    pub kind: DeliveryKind,
    /// Catalog id of the business service, when the repository maps to one.
    pub service: Option<String>,
    /// `owner/repo`.
    pub repository: Option<String>,
    /// When it was deployed or merged.
    pub at: DateTime<Utc>,
    pub environment: Option<String>,
    /// A deployment to production (`production`, `prod`, `prod-…`, `live`). Merges: false.
    pub production: bool,
    /// The change record it carries out, when the payload names one.
    pub linked_change: Option<String>,
    /// Performed by a bot (CI deploys usually are): still a deployment, never anyone's credit.
    pub automated: bool,
}

/// The delivery metric an event is, or `None` for every other kind.
pub fn delivery_metric(event: &ItsmEvent) -> Option<DeliveryMetric> {
    let kind = match EventKind::try_from(event.kind).ok()? {
        EventKind::DeploymentSucceeded => DeliveryKind::Deployment,
        EventKind::PullRequestMerged => DeliveryKind::Merge,
        _ => return None,
    };
    let record = event.record.as_ref()?;
    let at = opt_from_timestamp(record.resolved_at.as_ref())
        .or_else(|| opt_from_timestamp(event.occurred_at.as_ref()))?;
    let repository = record
        .number
        .split_once("/deployments/")
        .map(|(repo, _)| repo)
        .or_else(|| record.number.split_once('#').map(|(repo, _)| repo))
        .map(String::from);
    let environment = record.environment.clone();
    let production = kind == DeliveryKind::Deployment
        && environment.as_deref().is_some_and(|env| {
            let env = env.trim().to_lowercase();
            env == "live" || env == "prod" || env.starts_with("prod-") || env == "production"
        });
    Some(DeliveryMetric {
        kind,
        service: record.business_service.clone(),
        repository,
        at,
        environment,
        production,
        linked_change: record.linked_change.clone(),
        automated: record.automated == Some(true),
    })
}
