//! `herald migrate`, the step a deployment runs before the services (deploy/k8s/migrate-job.yaml):
//! every stream, consumer and schema made ready, twice without harm, and a clear failure when NATS
//! is not there.

use herald_events::StreamFamily;

use crate::support::{describe, herald_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_prepares_streams_consumers_and_schemas_once() -> anyhow::Result<()> {
    let nats = herald_testkit::NatsServer::start().await?;
    let db = herald_testkit::TestDatabase::create().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\n[database]\nurl = \"{}\"\n",
            nats.url(),
            db.url()
        ),
    )?;
    let config = config.display().to_string();
    for round in 0..2 {
        let migrated = herald_cli(&["migrate", "--config", &config]).await?;
        assert!(
            migrated.status.success(),
            "round {round}: {}",
            describe(&migrated)
        );
        let said = String::from_utf8_lossy(&migrated.stdout);
        for service in ["ingest", "scoring", "spotlight", "notify"] {
            assert!(
                said.contains(&format!("{service}: streams ready")),
                "{said}"
            );
        }
    }
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client.clone());
    for family in StreamFamily::ALL {
        herald_testkit::nats::stream_len(&client, family.stream_name()).await?;
    }
    for (stream, consumer) in [
        ("HERALD_EVENTS", "scoring"),
        ("HERALD_WINS", "spotlight"),
        ("HERALD_ANNOUNCEMENTS", "notify"),
    ] {
        js.get_stream(stream)
            .await?
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(consumer)
            .await
            .map_err(|e| anyhow::anyhow!("no consumer {consumer} on {stream}: {e}"))?;
    }
    let pool = db.pool().await?;
    for schema in ["ingest", "scoring", "spotlight", "notify"] {
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_one(&pool)
        .await?;
        assert!(tables > 0, "schema {schema} has no tables");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_without_nats_fails_saying_where_it_looked() -> anyhow::Result<()> {
    let closed = herald_testkit::free_port()?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!("[nats]\nurl = \"nats://127.0.0.1:{closed}\"\n"),
    )?;
    let output = herald_cli(&[
        "migrate",
        "--config",
        &config.display().to_string(),
        "--wait-seconds",
        "2",
    ])
    .await?;
    assert!(!output.status.success(), "{}", describe(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("127.0.0.1:{closed}")) && said.contains("did not answer"),
        "{}",
        describe(&output)
    );
    Ok(())
}
