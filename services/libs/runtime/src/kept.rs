//! PostgreSQL connections a busy path keeps between its uses instead of giving them back to the
//! pool.
//!
//! sqlx pings every connection given back to its pool, whatever the connection just did: a round
//! trip to the server, which wakes the connection's backend and then the service. At a low event
//! rate each event is a batch of one, and scoring, spotlight and notify each gave a connection back
//! two or three times an event: without those pings an event cost 14–25 % less of the machine's
//! CPU at 200 events a second, and the p99 was 30–50 % shorter (BENCHMARKS.md, forty-sixth
//! sitting). A path that used a connection and succeeded [`Kept::keep`]s it here for its next use
//! instead; a path that failed, or was cancelled, drops it, and the pool pings it (and rolls back
//! what it left open) as before.
//!
//! A connection kept here is outside the pool's care, so it is given back (and pinged there) at
//! the next take once it has sat unused for [`IDLE`] or been kept for [`LIFETIME`]: the pool's own
//! idle and lifetime limits then apply to it again. A task waiting on the pool never sees a kept
//! connection, so one is kept only while the pool could hand out another, and at most
//! [`MAX_KEPT`] (half the pool's limit at most) wait here. On SQLite nothing is kept: its pool
//! holds one connection a file, which a kept connection would hold from everyone else.

use std::{
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sqlx::{Any, AnyConnection, AnyPool, pool::PoolConnection};

/// How long a kept connection may sit unused before it goes back to the pool.
pub const IDLE: Duration = Duration::from_secs(5);
/// How long a connection may be kept, however busy, before it goes back to the pool.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// Connections kept at most (and never more than half of the pool's limit): enough for the lanes
/// a low rate keeps busy at once, few beside a pool of ten.
pub const MAX_KEPT: usize = 4;

/// A pool's connections kept between uses. Cheap to clone: the clones share what they keep.
#[derive(Clone)]
pub struct KeptConnections {
    pool: AnyPool,
    /// False on SQLite: nothing is kept.
    keeps: bool,
    idle_for: Duration,
    lifetime: Duration,
    idle: Arc<Mutex<Vec<Idle>>>,
}

impl std::fmt::Debug for KeptConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptConnections")
            .field("keeps", &self.keeps)
            .finish_non_exhaustive()
    }
}

struct Idle {
    conn: PoolConnection<Any>,
    /// When it was taken from the pool.
    since: Instant,
    /// When it was last kept.
    used: Instant,
}

impl KeptConnections {
    pub fn new(pool: AnyPool) -> Self {
        Self::with_limits(pool, IDLE, LIFETIME)
    }

    /// As [`KeptConnections::new`], a connection given back once unused for `idle_for` or kept
    /// for `lifetime`.
    pub fn with_limits(pool: AnyPool, idle_for: Duration, lifetime: Duration) -> Self {
        let kept = Self {
            keeps: !crate::db::is_sqlite(&pool),
            pool,
            idle_for,
            lifetime,
            idle: Arc::new(Mutex::new(Vec::new())),
        };
        kept.give_back_when_closed();
        kept
    }

    /// Gives every kept connection back once the pool is closed: closing waits for every
    /// connection out of the pool, and a kept one would otherwise be out until the next take, which
    /// at shutdown never comes (spotlight and notify each waited 20 s to stop). Needs a Tokio
    /// runtime; made outside one, the connections are given back when this value is dropped.
    fn give_back_when_closed(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let closed = self.pool.close_event();
        let idle = Arc::downgrade(&self.idle);
        runtime.spawn(async move {
            closed.await;
            if let Some(idle) = idle.upgrade() {
                give_back(&idle);
            }
        });
    }

    /// The connection kept last, if it is still fresh; else one from the pool.
    pub async fn take(&self) -> Result<Kept, sqlx::Error> {
        let (fresh, stale) = self.take_fresh(Instant::now());
        // Outside the lock: each goes back to the pool, which pings it.
        drop(stale);
        let (conn, since) = match fresh {
            Some(idle) => (idle.conn, idle.since),
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(Kept {
            owner: self.clone(),
            conn: Some(conn),
            since,
        })
    }

    /// The most recently kept connection that is still fresh, and every one that is not.
    fn take_fresh(&self, now: Instant) -> (Option<Idle>, Vec<Idle>) {
        let mut idle = lock(&self.idle);
        let stale = idle
            .extract_if(.., |i| {
                now.duration_since(i.used) >= self.idle_for
                    || now.duration_since(i.since) >= self.lifetime
            })
            .collect();
        (idle.pop(), stale)
    }

    fn keep(&self, conn: PoolConnection<Any>, since: Instant) {
        if !self.keeps || self.pool.is_closed() {
            return;
        }
        // A task waiting on the pool never sees a kept connection: keep one only while the pool
        // could still hand out another, and never more than half of what it may open, so a pool
        // busy to its limit gets its connections back at once.
        let max = usize::try_from(self.pool.options().get_max_connections()).unwrap_or(usize::MAX);
        let out = usize::try_from(self.pool.size()).unwrap_or(usize::MAX);
        let room = self.pool.num_idle() > 0 || out < max;
        let mut idle = lock(&self.idle);
        if room && idle.len() < MAX_KEPT.min(max / 2) {
            idle.push(Idle {
                conn,
                since,
                used: Instant::now(),
            });
        }
        // Else `conn` drops here and goes back to the pool.
    }

    /// Connections waiting here now.
    pub fn kept(&self) -> usize {
        lock(&self.idle).len()
    }
}

/// The kept connections. A poisoned lock only means a panic elsewhere while it was held; the list
/// is still whole.
fn lock(idle: &Mutex<Vec<Idle>>) -> MutexGuard<'_, Vec<Idle>> {
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

/// Gives every kept connection back to the pool, which pings each (and closes a broken one),
/// outside the lock.
fn give_back(idle: &Mutex<Vec<Idle>>) {
    let all = std::mem::take(&mut *lock(idle));
    drop(all);
}

/// A connection taken from [`KeptConnections`]. Dropped, it goes back to the pool as any would,
/// and so does every connection kept: a use that failed most often means the server went away,
/// which broke them all, and each would otherwise fail one more attempt of its own after the
/// server is back. [`Kept::keep`] keeps it for the next take instead.
pub struct Kept {
    owner: KeptConnections,
    /// `None` only inside `keep` and `drop`, which consume the value.
    conn: Option<PoolConnection<Any>>,
    since: Instant,
}

impl Kept {
    /// Keeps the connection for the next take. Call it only after the connection's last use
    /// succeeded and left no transaction open.
    pub fn keep(mut self) {
        if let Some(conn) = self.conn.take() {
            self.owner.keep(conn, self.since);
        }
    }

    /// Closes the connection when it is dropped instead of giving it back (see
    /// [`PoolConnection::close_on_drop`]).
    pub fn close_on_drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if self.conn.is_some() {
            give_back(&self.owner.idle);
        }
    }
}

impl Deref for Kept {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self.conn.as_deref() {
            Some(conn) => conn,
            None => unreachable!("a kept connection is used after it was given up"),
        }
    }
}

impl DerefMut for Kept {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self.conn.as_deref_mut() {
            Some(conn) => conn,
            None => unreachable!("a kept connection is used after it was given up"),
        }
    }
}
