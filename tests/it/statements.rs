//! Batch statements and PostgreSQL's prepared statements: a statement whose text was built for a
//! batch stays prepared on its connection while its text is small (a few rows, the shapes a low
//! rate repeats) and runs unprepared when it is large, so a busy stage's connections do not fill
//! with texts of hundreds of kilobytes that seldom come back.

use herald_runtime::{
    config::DatabaseConfig,
    db,
    secret::Secret,
    store::{batch_query, numbered_rows},
};
use herald_testkit::TestDatabase;
use sqlx::Executor as _;

/// Statements the pool's one connection holds prepared (the count itself runs unprepared).
async fn prepared(pool: &sqlx::AnyPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO t %'",
    )
    .persistent(false)
    .fetch_one(pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_small_batch_statements_stay_prepared_on_their_connection() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let config = DatabaseConfig {
        url: Secret::new(database.url()),
        max_connections: 1,
    };
    let pool = db::connect(&config, "statements").await?.pool;
    pool.execute("CREATE TABLE t (a BIGINT, b TEXT)").await?;
    let insert = |rows: usize| {
        let mut query = batch_query(format!(
            "INSERT INTO t (a, b) VALUES {}",
            numbered_rows(rows, 2)
        ));
        for i in 0..rows {
            query = query.bind(i as i64).bind(format!("row {i}"));
        }
        query
    };
    // A thousand rows is a text of about 14 KB.
    for rows in [1000, 1000, 1001] {
        insert(rows).execute(&pool).await?;
    }
    assert_eq!(prepared(&pool).await?, 0, "large batches run unprepared");
    for rows in [1, 2, 3, 1, 2, 3] {
        insert(rows).execute(&pool).await?;
    }
    assert_eq!(
        prepared(&pool).await?,
        3,
        "small batches: each shape prepared once, then reused"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&pool)
        .await?;
    assert_eq!(stored, 3001 + 12, "every batch stored");
    Ok(())
}
