//! Whether the PostgreSQL a run measures commits to disk: a benchmark of a store that skips its
//! fsyncs measures less work than production does, and its figures must say so.

use sqlx::{Connection, postgres::PgConnection};

/// How `DATABASE_URL`'s server commits, in words for the report; `None` without a server.
pub async fn commits() -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let described = describe(&url).await;
    Some(
        described
            .unwrap_or_else(|e| format!("PostgreSQL: its commit settings could not be read ({e})")),
    )
}

async fn describe(url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::connect(url).await?;
    let mut setting = async |name: &str| -> anyhow::Result<String> {
        Ok(
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {name}")))
                .fetch_one(&mut conn)
                .await?,
        )
    };
    let fsync = setting("fsync").await?;
    let synchronous = setting("synchronous_commit").await?;
    conn.close().await?;
    Ok(if fsync == "on" && synchronous != "off" {
        format!(
            "PostgreSQL commits to disk before it answers (fsync {fsync}, synchronous_commit {synchronous}), as in production."
        )
    } else {
        format!(
            "**PostgreSQL does not commit to disk (fsync {fsync}, synchronous_commit {synchronous}): the distributed \
             figures are an upper bound. Run under `herald-testenv --durable` to measure what production does.**"
        )
    })
}
