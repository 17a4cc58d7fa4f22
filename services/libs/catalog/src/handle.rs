//! The catalog a service reads now, and its reload without a restart.
//!
//! A service holds a [`CatalogHandle`] and asks it for the [`current`](CatalogHandle::current)
//! catalog once per message, so every message is handled under one catalog from start to end,
//! and the next one under whatever is current then.
//!
//! [`CatalogHandle::watch`] polls the catalog file's modification time and size every few seconds
//! (polling rather than SIGHUP: it works the same in a container, under `herald up` and on a
//! Kubernetes ConfigMap, where nobody can send the process a signal when the file changes). A
//! changed file is read and validated first; a catalog that does not parse or validate is refused
//! with a logged error and the previous one stays in force until the file is fixed.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Catalog, version_of};

/// How often [`CatalogHandle::watch`] looks at the file when no other interval is given.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// What the handle holds: the catalog in force and the last file content it refused.
#[derive(Debug, Clone)]
struct State {
    catalog: Arc<Catalog>,
    refused: Option<Refused>,
}

/// A catalog file that was read and refused; the previous catalog stayed in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The version the refused content would have had.
    pub version: String,
    /// Why, in the catalog's own words.
    pub error: String,
}

/// What one look at the catalog file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The catalog was not read from a file (inline in herald.toml, or built in code).
    NoFile,
    /// The file holds the catalog in force (or content refused before).
    Unchanged,
    /// A new catalog is in force.
    Reloaded { from: String, to: String },
    /// The file changed but is not a valid catalog; the previous one stays.
    Refused(Refused),
    /// The file could not be read; the previous catalog stays.
    Unreadable(String),
}

/// The catalog in force, shared by every part of a service; cloning shares it.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    state: Arc<watch::Sender<State>>,
}

impl CatalogHandle {
    pub fn new(catalog: Catalog) -> Self {
        let (state, _) = watch::channel(State {
            catalog: Arc::new(catalog),
            refused: None,
        });
        Self {
            state: Arc::new(state),
        }
    }

    /// The catalog in force now. Take it once per message and use that one throughout.
    pub fn current(&self) -> Arc<Catalog> {
        self.state.borrow().catalog.clone()
    }

    /// The version of the catalog in force: what a win records as its `catalog_version`.
    pub fn version(&self) -> String {
        self.state.borrow().catalog.version().to_string()
    }

    /// The last content of the file that was refused, while the file still holds it.
    pub fn refused(&self) -> Option<Refused> {
        self.state.borrow().refused.clone()
    }

    /// Told of every reload and every refusal from now on.
    pub fn subscribe(&self) -> Changes {
        Changes(self.state.subscribe())
    }

    /// Reads the catalog file now and puts a changed, valid catalog in force.
    pub fn reload(&self) -> Reload {
        let (path, current, refused) = {
            let state = self.state.borrow();
            let Some(path) = state.catalog.source().map(PathBuf::from) else {
                return Reload::NoFile;
            };
            let refused = state.refused.as_ref().map(|r| r.version.clone());
            (path, state.catalog.version().to_string(), refused)
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let error = format!("could not read catalog file {}: {e}", path.display());
                tracing::warn!(path = %path.display(), error = %e, "catalog file unreadable; the catalog in force stays");
                return Reload::Unreadable(error);
            }
        };
        let version = version_of(&bytes);
        if version == current || refused.as_deref() == Some(version.as_str()) {
            return Reload::Unchanged;
        }
        match Catalog::from_file_bytes(&path, &bytes) {
            Ok(catalog) => {
                tracing::info!(path = %path.display(), from = %current, to = %version, "catalog reloaded");
                self.state.send_replace(State {
                    catalog: Arc::new(catalog),
                    refused: None,
                });
                Reload::Reloaded {
                    from: current,
                    to: version,
                }
            }
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    version = %version,
                    in_force = %current,
                    error = %e,
                    "new catalog refused; the catalog in force stays"
                );
                let refused = Refused {
                    version,
                    error: e.to_string(),
                };
                self.state
                    .send_modify(|state| state.refused = Some(refused.clone()));
                Reload::Refused(refused)
            }
        }
    }

    /// Looks at the catalog file every `every` until `shutdown`, and reloads it when its
    /// modification time or size changed. Returns at once for a catalog without a file.
    pub async fn watch(self, every: Duration, shutdown: CancellationToken) {
        let Some(path) = self.current().source().map(PathBuf::from) else {
            return;
        };
        // The file may have changed since the catalog was read: look once now, by content.
        let mut seen = stamp(&path);
        self.reload();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            self.reload();
        }
    }
}

impl From<Catalog> for CatalogHandle {
    fn from(catalog: Catalog) -> Self {
        Self::new(catalog)
    }
}

/// A fixed catalog (tests, embedding): it reloads only if it came from a file.
impl From<Arc<Catalog>> for CatalogHandle {
    fn from(catalog: Arc<Catalog>) -> Self {
        Self::new(Arc::unwrap_or_clone(catalog))
    }
}

/// A subscription to a handle's reloads and refusals.
pub struct Changes(watch::Receiver<State>);

impl Changes {
    /// Waits for the next reload or refusal; false once the handle is gone.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// What tells a changed file from an unchanged one without reading it.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
