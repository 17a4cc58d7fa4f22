//! A service's database on each backend, migrated, for store conformance tests.

use herald_runtime::{
    Secret,
    config::DatabaseConfig,
    db::{self, Backend, Database, Migrations},
};

/// A migrated database that lives as long as this value.
pub struct TestStore {
    pub db: Database,
    config: DatabaseConfig,
    schema: &'static str,
    _postgres: Option<crate::TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// The service's schema in a fresh PostgreSQL database, migrated up to `version` (or fully).
    async fn postgres(
        schema: &'static str,
        migrations: &Migrations,
        version: Option<i64>,
    ) -> anyhow::Result<Self> {
        let database = crate::TestDatabase::create().await?;
        let config = DatabaseConfig {
            url: Secret::new(database.url()),
            max_connections: 4,
        };
        let db = db::connect(&config, schema).await?;
        migrate_to(&db, schema, migrations, version).await?;
        Ok(Self {
            db,
            config,
            schema,
            _postgres: Some(database),
            _dir: None,
        })
    }

    /// The service's file in a fresh SQLite data directory, migrated up to `version` (or fully).
    async fn sqlite(
        schema: &'static str,
        migrations: &Migrations,
        version: Option<i64>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = DatabaseConfig {
            url: Secret::new(format!("sqlite://{}", dir.path().display())),
            max_connections: 4,
        };
        let db = db::connect(&config, schema).await?;
        migrate_to(&db, schema, migrations, version).await?;
        Ok(Self {
            db,
            config,
            schema,
            _postgres: None,
            _dir: Some(dir),
        })
    }

    /// A new connection pool on the same database, as a restarted (or upgraded) process opens it.
    /// SQLite connections that read the schema before a migration may keep the old one until their
    /// next transaction, so an upgrade is tested the way it happens: by a new process.
    pub async fn reopen(&self) -> anyhow::Result<Database> {
        Ok(db::connect(&self.config, self.schema).await?)
    }

    pub async fn on(
        backend: Backend,
        schema: &'static str,
        migrations: &Migrations,
    ) -> anyhow::Result<Self> {
        Self::at(backend, schema, migrations, None).await
    }

    /// The service's database migrated only up to `version`, as an earlier release left it: an
    /// upgrade test writes what that release wrote, then [`TestStore::upgrade`]s it.
    pub async fn before_upgrade(
        backend: Backend,
        schema: &'static str,
        migrations: &Migrations,
        version: i64,
    ) -> anyhow::Result<Self> {
        Self::at(backend, schema, migrations, Some(version)).await
    }

    async fn at(
        backend: Backend,
        schema: &'static str,
        migrations: &Migrations,
        version: Option<i64>,
    ) -> anyhow::Result<Self> {
        match backend {
            Backend::Postgres => Self::postgres(schema, migrations, version).await,
            Backend::Sqlite => Self::sqlite(schema, migrations, version).await,
        }
    }

    /// Checks that a release from before migration `version` (every migration before it, none
    /// from it on) refuses this store, which a later release migrated, at start: its migrations
    /// must fail with `VersionMissing(version)` rather than run on a store they do not know.
    pub async fn refuses_a_release_before(
        &self,
        migrations: &Migrations,
        version: i64,
    ) -> anyhow::Result<()> {
        let current = migrations.of(self.db.backend);
        anyhow::ensure!(
            current.version_exists(version),
            "migration {version} is not among the service's migrations"
        );
        let older = sqlx::migrate::Migrator::with_migrations(
            current
                .iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect(),
        );
        match older.run(&self.db.pool).await {
            Err(sqlx::migrate::MigrateError::VersionMissing(v)) if v == version => Ok(()),
            Err(other) => anyhow::bail!("refused for another reason: {other}"),
            Ok(()) => anyhow::bail!("a release before migration {version} started on this store"),
        }
    }

    /// PostgreSQL only: notes, for each row inserted into `table` from now on, the
    /// `synchronous_commit` its transaction had at the end of the statement, which is the one it
    /// commits with ([`TestStore::commit_settings`] reads them). The database is set to commit
    /// synchronously, as a production server does and the test cluster does not; the pool
    /// returned is new, so its connections start with that setting.
    pub async fn noting_commit_settings(&self, table: &str) -> anyhow::Result<Database> {
        anyhow::ensure!(
            self.db.backend == Backend::Postgres,
            "commit settings are PostgreSQL's"
        );
        let pool = &self.db.pool;
        let name: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(pool)
            .await?;
        let schema = self.schema;
        for statement in [
            format!("ALTER DATABASE {name} SET synchronous_commit = on"),
            format!("CREATE TABLE {schema}.commit_settings (n bigserial, setting text NOT NULL)"),
            format!(
                "CREATE FUNCTION {schema}.note_commit_setting() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN
                     INSERT INTO {schema}.commit_settings (setting)
                     VALUES (current_setting('synchronous_commit'));
                     RETURN NULL;
                 END $$"
            ),
            format!(
                "CREATE TRIGGER note_commit_setting AFTER INSERT ON {schema}.{table}
                 FOR EACH ROW EXECUTE FUNCTION {schema}.note_commit_setting()"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await?;
        }
        self.reopen().await
    }

    /// The settings [`TestStore::noting_commit_settings`] noted since the last call, in order.
    pub async fn commit_settings(&self) -> anyhow::Result<Vec<String>> {
        let schema = self.schema;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH noted AS (DELETE FROM {schema}.commit_settings RETURNING n, setting)
             SELECT setting FROM noted ORDER BY n"
        )))
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// PostgreSQL only: checks that `sync` leaves the log on the disk up to where it had been
    /// written when it was called.
    pub async fn check_flushed_by<E>(
        &self,
        sync: impl std::future::Future<Output = Result<(), E>>,
    ) -> anyhow::Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&self.db.pool)
            .await?;
        sync.await?;
        let flushed: bool =
            sqlx::query_scalar("SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(&self.db.pool)
                .await?;
        anyhow::ensure!(flushed, "the log is not on the disk up to {written}");
        Ok(())
    }

    /// Applies every migration, on a new connection pool as the upgraded process opens it.
    pub async fn upgrade(&self, migrations: &Migrations) -> anyhow::Result<Database> {
        let db = self.reopen().await?;
        db::migrate(&db, self.schema, migrations).await?;
        Ok(db)
    }
}

/// Every migration, or those up to `version`.
async fn migrate_to(
    db: &Database,
    schema: &'static str,
    migrations: &Migrations,
    version: Option<i64>,
) -> anyhow::Result<()> {
    let Some(version) = version else {
        return Ok(db::migrate(db, schema, migrations).await?);
    };
    migrations.of(db.backend).run_to(version, &db.pool).await?;
    Ok(())
}

/// Runs one store case on both backends, as two tests: `<case>::postgres` and `<case>::sqlite`.
#[macro_export]
macro_rules! store_cases {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() -> anyhow::Result<()> {
                    herald_testkit::init_tracing();
                    super::$case(herald_runtime::db::Backend::Postgres).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() -> anyhow::Result<()> {
                    herald_testkit::init_tracing();
                    super::$case(herald_runtime::db::Backend::Sqlite).await
                }
            }
        )+
    };
}
