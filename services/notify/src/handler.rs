//! The notify stage: an announcement in, one delivery per matching route queued; a correction to
//! every route that carried what it corrects.

use std::sync::Arc;

use async_trait::async_trait;
use herald_events::{
    IncomingMessage,
    worker::{self, HandleError, Handler},
};
use herald_proto::v1::{Announcement, AnnouncementKind};
use tokio::sync::Notify;

use crate::{config::NotifySettings, routing, store::Store};

pub struct NotifyHandler {
    pub store: Store,
    pub settings: NotifySettings,
    pub wake: Arc<Notify>,
}

#[async_trait]
impl Handler for NotifyHandler {
    async fn handle(&self, delivery: &IncomingMessage) -> Result<(), HandleError> {
        let announcement: Announcement = worker::decode(delivery)?;
        if announcement.id.is_empty() {
            return Err(HandleError::reject("announcement has no id"));
        }
        if announcement.kind == AnnouncementKind::Correction as i32 {
            // A correction goes wherever the original went, whatever the routes say today.
            let created = self
                .store
                .enqueue_correction(&announcement)
                .await
                .map_err(HandleError::from)?;
            tracing::info!(announcement = %announcement.id, corrects = %announcement.corrects, new = created, "corrections queued");
            if created > 0 {
                self.wake.notify_one();
            }
            return Ok(());
        }
        let routes: Vec<(String, String)> = self
            .settings
            .routes
            .iter()
            .filter(|r| routing::matches(r, &announcement))
            .map(|r| (r.name.clone(), r.channel.clone()))
            .collect();
        if routes.is_empty() {
            tracing::info!(announcement = %announcement.id, "no route matches; nothing to deliver");
            return Ok(());
        }
        let created = self
            .store
            .enqueue(&announcement, &routes)
            .await
            .map_err(HandleError::from)?;
        tracing::info!(announcement = %announcement.id, routes = routes.len(), new = created, "deliveries queued");
        if created > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}
