//! herald-runtime's kept connections on a real PostgreSQL and SQLite: a connection whose work
//! succeeded is kept for the next take instead of going back to the pool (where sqlx pings it),
//! and everything else goes back to the pool as before.

use std::time::Duration;

use herald_runtime::{
    db::{Backend, Migrations},
    kept::{KeptConnections, MAX_KEPT},
};
use herald_testkit::stores::TestStore;
use sqlx::{AnyPool, Executor, Row};

async fn backend_pid(conn: &mut sqlx::AnyConnection) -> anyhow::Result<i32> {
    Ok(sqlx::query("SELECT pg_backend_pid() AS pid")
        .fetch_one(conn)
        .await?
        .try_get("pid")?)
}

/// Waits until the pool holds `idle` idle connections: a connection goes back to it in a task
/// of its own, after sqlx has pinged it.
async fn idle_in_pool(pool: &AnyPool, idle: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pool.num_idle() != idle {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the pool holds {} idle connections, not {idle}",
            pool.num_idle()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// No tables: the tests make what they need.
static NONE: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
const NO_MIGRATIONS: Migrations = Migrations {
    postgres: &NONE,
    sqlite: &NONE,
};

/// A database on `backend`, its pool, and connections kept from that pool.
async fn kept_on(backend: Backend) -> anyhow::Result<(TestStore, AnyPool, KeptConnections)> {
    let test = TestStore::on(backend, "kept", &NO_MIGRATIONS).await?;
    let pool = test.db.pool.clone();
    let kept = KeptConnections::new(pool.clone());
    Ok((test, pool, kept))
}

#[tokio::test]
async fn a_connection_that_did_its_work_is_kept_for_the_next_take() -> anyhow::Result<()> {
    let (_test, pool, kept) = kept_on(Backend::Postgres).await?;
    // The connection that ran the (empty) migrations.
    idle_in_pool(&pool, 1).await?;

    let mut conn = kept.take().await?;
    let first = backend_pid(&mut conn).await?;
    conn.keep();
    assert_eq!(kept.kept(), 1);
    // Kept, it is still out of the pool: nobody pinged it or handed it to anyone else.
    assert_eq!((pool.size(), pool.num_idle()), (1, 0));

    let mut conn = kept.take().await?;
    assert_eq!(backend_pid(&mut conn).await?, first, "the same connection");
    assert_eq!(kept.kept(), 0, "taken again");
    // Dropped without `keep` (its work failed, or was cancelled), it goes back to the pool.
    drop(conn);
    idle_in_pool(&pool, 1).await?;
    assert_eq!(kept.kept(), 0);
    Ok(())
}

#[tokio::test]
async fn a_connection_given_up_gives_every_kept_one_back() -> anyhow::Result<()> {
    let (_test, pool, kept) = kept_on(Backend::Postgres).await?;
    let (a, b) = (kept.take().await?, kept.take().await?);
    a.keep();
    b.keep();
    assert_eq!(kept.kept(), 2);
    // A use that failed (dropped without `keep`) most often means the server went away: the
    // others would fail too, each costing an attempt, so they all go back to the pool.
    drop(kept.take().await?);
    assert_eq!(kept.kept(), 0);
    idle_in_pool(&pool, 2).await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_transaction_is_never_kept_open() -> anyhow::Result<()> {
    let (_test, _pool, kept) = kept_on(Backend::Postgres).await?;
    let mut conn = kept.take().await?;
    conn.execute("CREATE TABLE t (id INT PRIMARY KEY)").await?;
    {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute("INSERT INTO t VALUES (1)").await?;
        assert!(tx.execute("INSERT INTO t VALUES (1)").await.is_err());
        // Dropped uncommitted: sqlx rolls it back on the connection's next use.
    }
    conn.keep();
    let mut conn = kept.take().await?;
    let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM t")
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    assert_eq!(rows, 0, "the insert was rolled back");
    // A savepoint is refused outside a transaction block.
    assert!(
        conn.execute("SAVEPOINT s").await.is_err(),
        "a transaction was left open on the kept connection"
    );
    Ok(())
}

#[tokio::test]
async fn at_most_a_few_are_kept_and_a_stale_one_goes_back_to_the_pool() -> anyhow::Result<()> {
    let (_test, pool, _) = kept_on(Backend::Postgres).await?;
    let kept = KeptConnections::with_limits(
        pool.clone(),
        Duration::from_millis(200),
        Duration::from_secs(300),
    );
    let max = usize::try_from(pool.options().get_max_connections())?;
    // With every connection the pool may open out, a task waiting on it would never see a kept
    // one: none is kept.
    let mut taken = Vec::new();
    for _ in 0..max {
        taken.push(kept.take().await?);
    }
    if let Some(conn) = taken.pop() {
        conn.keep();
    }
    assert_eq!(kept.kept(), 0, "the pool was busy to its limit");
    drop(taken);
    idle_in_pool(&pool, max).await?;

    // With room in the pool, half its limit at most.
    let taken = vec![kept.take().await?, kept.take().await?, kept.take().await?];
    for conn in taken {
        conn.keep();
    }
    assert_eq!(kept.kept(), MAX_KEPT.min(max / 2));
    // The pool has all `max` connections open: every one not kept is back in it.
    idle_in_pool(&pool, max - kept.kept()).await?;

    // Unused for longer than its idle time, every kept connection goes back at the next take.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let conn = kept.take().await?;
    assert_eq!(kept.kept(), 0);
    idle_in_pool(&pool, max - 1).await?;
    conn.keep();
    assert_eq!(kept.kept(), 1);
    Ok(())
}

#[tokio::test]
async fn on_sqlite_nothing_is_kept() -> anyhow::Result<()> {
    let (_test, pool, kept) = kept_on(Backend::Sqlite).await?;
    let conn = kept.take().await?;
    conn.keep();
    assert_eq!(kept.kept(), 0);
    // Its one connection is back in the pool for everyone else.
    idle_in_pool(&pool, 1).await?;
    Ok(())
}

#[tokio::test]
async fn closing_the_pool_does_not_wait_for_a_kept_connection() -> anyhow::Result<()> {
    let (_test, pool, kept) = kept_on(Backend::Postgres).await?;
    kept.take().await?.keep();
    assert_eq!(kept.kept(), 1);
    // Closing waits for every connection out of the pool: a kept one is given back at once (a
    // service's shutdown waited 20 s for one before).
    tokio::time::timeout(Duration::from_secs(5), pool.close())
        .await
        .map_err(|_| anyhow::anyhow!("the pool's close waited on the kept connection"))?;
    assert_eq!(kept.kept(), 0);
    Ok(())
}
