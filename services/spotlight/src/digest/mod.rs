//! Digests: weekly and monthly summaries, each built once by one replica and announced as a
//! `digest` for notify to route like any announcement.
//!
//! Every few seconds each replica looks at the schedules; a digest whose time has come (and not
//! passed by more than `digest_grace`) is claimed in the database under its id,
//! `digest-<name>-<period start>`. Only the claimer builds and publishes it; a claimer that dies
//! before publishing loses its lease to another replica; a published digest is never built again,
//! after a restart or on another replica. The id is the JetStream message id and the announcement
//! id, so even a publish repeated after a lost acknowledgement is one delivery per channel.

pub mod card;
pub mod schedule;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use herald_catalog::CatalogHandle;
use herald_events::{Bus, OutgoingMessage, subjects};
use herald_proto::{
    time::to_timestamp,
    v1::{Announcement, AnnouncementKind},
};
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::{
    config::SpotlightSettings,
    periods::{Period, PeriodKind},
    store::{Store, digests::Claim},
};

use schedule::Schedule;

const TOP_TEAMS: i64 = 3;

pub struct Digests {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub catalog: CatalogHandle,
    pub settings: SpotlightSettings,
    /// Who holds a claim: this process, for the log and the lease.
    pub owner: String,
}

/// A digest's id: the same for every replica and every restart.
pub fn digest_id(name: &str, period: &Period) -> String {
    format!("digest-{name}-{}", period.start)
}

impl Digests {
    fn schedules(&self) -> Vec<Schedule> {
        let tz = self.catalog.current().organisation().tz();
        self.settings
            .digests
            .iter()
            // Validated at load; a schedule that still fails is left out, not fatal.
            .filter_map(|d| d.schedule(tz).ok())
            .collect()
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let now = Utc::now();
        for s in self.schedules() {
            if let Some(next) = s.next(now) {
                tracing::info!(digest = %s.name, next = %next, "digest scheduled");
            }
        }
        loop {
            self.tick(Utc::now()).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.digest_check_every) => {}
            }
        }
    }

    /// Sends every digest due at `now` that nobody has sent.
    pub async fn tick(&self, now: DateTime<Utc>) {
        for schedule in self.schedules() {
            let Some(sent) = schedule.latest(now) else {
                continue;
            };
            let late = (now - sent).to_std().unwrap_or(Duration::ZERO);
            if late > self.settings.digest_grace {
                continue;
            }
            let period = schedule.covers(sent);
            let id = digest_id(&schedule.name, &period);
            if let Err(e) = self.send(&schedule, &period, &id).await {
                tracing::warn!(digest = %id, error = %format!("{e:#}"), "digest not sent yet; will try again");
            }
        }
    }

    /// With the weekly digest, each team lead hears privately who in their team has gone
    /// `unrecognised_weeks` weeks (up to the digest's week) without a credited win.
    async fn nudge_leads(&self, at: DateTime<Utc>) -> anyhow::Result<()> {
        let catalog = self.catalog.current();
        let prompts = crate::recognition::prompts(
            &self.store,
            &catalog,
            self.settings.recognition.unrecognised_weeks,
            at,
        )
        .await?;
        for prompt in &prompts {
            let message = OutgoingMessage::new(
                subjects::announcement(AnnouncementKind::Prompt),
                prompt.id.clone(),
                prompt.encode_to_vec(),
            )
            .with_ordering_key(prompt.id.clone())
            .with_trace_context();
            self.bus.publish(message).await?;
            metrics::counter!("herald_spotlight_announcements_total", "kind" => "prompt")
                .increment(1);
        }
        if !prompts.is_empty() {
            tracing::info!(
                teams = prompts.len(),
                "team leads nudged about unrecognised members"
            );
        }
        Ok(())
    }

    async fn send(&self, schedule: &Schedule, period: &Period, id: &str) -> anyhow::Result<()> {
        let claim = self
            .store
            .claim_digest(
                id,
                &schedule.name,
                &period.start.to_string(),
                &self.owner,
                self.settings.digest_lease,
            )
            .await?;
        if claim != Claim::Ours {
            return Ok(());
        }
        let catalog = self.catalog.current();
        let (from, to) = period.instants(schedule.tz);
        let data = card::DigestData {
            totals: self.store.totals(period).await?,
            wins: self.store.wins_between(from, to).await?,
            lessons: self.store.lessons_between(from, to).await?,
            people: crate::selection::spotlight(
                &self.store,
                &catalog,
                &self.settings.recognition,
                period,
            )
            .await?,
            teams: self.store.leaderboard(period, "team", TOP_TEAMS).await?,
        };
        if data.wins.is_empty() && data.lessons.is_empty() {
            // An empty digest is noise (a new install, a period before Herald was connected).
            self.store.digest_empty(id).await?;
            tracing::info!(digest = %id, "nothing to tell for this period: no digest sent");
            return Ok(());
        }
        let announcement = Announcement {
            id: id.to_string(),
            kind: AnnouncementKind::Digest as i32,
            created_at: Some(to_timestamp(Utc::now())),
            card: Some(card::digest_card(period, &data, &catalog)),
            currency: catalog.organisation().currency.clone(),
            digest: schedule.name.clone(),
            ..Default::default()
        };
        let message = OutgoingMessage::new(
            subjects::announcement(AnnouncementKind::Digest),
            id.to_string(),
            announcement.encode_to_vec(),
        )
        .with_ordering_key(id.to_string())
        .with_trace_context();
        self.bus.publish(message).await?;
        if schedule.period == PeriodKind::Week {
            self.nudge_leads(to - chrono::Duration::seconds(1)).await?;
        }
        self.store.digest_published(id, &announcement).await?;
        tracing::info!(digest = %id, wins = data.wins.len(), "digest announced");
        metrics::counter!("herald_spotlight_announcements_total", "kind" => "digest").increment(1);
        Ok(())
    }
}
