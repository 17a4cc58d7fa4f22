//! The dashboard's figures made once for every screen: a wall screen refreshes every 30 seconds and
//! an office may have several, while making the figures reads weeks of wins (with millions stored,
//! tens of milliseconds or more). A view younger than [`ViewCache::FRESH_FOR`] is served as it is;
//! an older one, up to [`ViewCache::STALE_AT_MOST`], is served while one background task makes the next; past that, or
//! the first time, the caller waits for a new one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use super::{DashboardState, DashboardView, view};
use crate::store::StoreError;

/// A view and when it was made.
type Made = (Instant, Arc<DashboardView>);

#[derive(Clone, Default)]
pub struct ViewCache {
    current: Arc<Mutex<Option<Made>>>,
    refreshing: Arc<AtomicBool>,
}

impl ViewCache {
    /// How long a view is served without looking again.
    pub const FRESH_FOR: Duration = Duration::from_secs(5);
    /// The oldest view served while a newer one is made.
    pub const STALE_AT_MOST: Duration = Duration::from_secs(60);

    /// The figures to show now.
    pub async fn get(&self, state: &DashboardState) -> Result<Arc<DashboardView>, StoreError> {
        let cached = self.current.lock().await.clone();
        if let Some((made, view)) = cached {
            let age = made.elapsed();
            if age < Self::FRESH_FOR {
                return Ok(view);
            }
            if age < Self::STALE_AT_MOST {
                self.refresh_in_background(state);
                return Ok(view);
            }
        }
        // Nothing recent: make it now. The lock keeps screens that ask together from each making
        // their own; the second finds the first one's view.
        let mut current = self.current.lock().await;
        if let Some((made, view)) = current.as_ref()
            && made.elapsed() < Self::FRESH_FOR
        {
            return Ok(view.clone());
        }
        let view = Arc::new(timed_view(state).await?);
        *current = Some((Instant::now(), view.clone()));
        Ok(view)
    }

    fn refresh_in_background(&self, state: &DashboardState) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (cache, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            match timed_view(&state).await {
                Ok(view) => *cache.current.lock().await = Some((Instant::now(), Arc::new(view))),
                // The stale view stays until it is too old; then a caller waits and sees the error.
                Err(e) => tracing::warn!(error = %e, "cannot refresh the dashboard's figures"),
            }
            cache.refreshing.store(false, Ordering::Release);
        });
    }
}

/// Makes the figures and records how long that took (`herald_spotlight_dashboard_build_seconds`).
async fn timed_view(state: &DashboardState) -> Result<DashboardView, StoreError> {
    let started = Instant::now();
    let made = view(state).await;
    metrics::histogram!("herald_spotlight_dashboard_build_seconds")
        .record(started.elapsed().as_secs_f64());
    made
}
