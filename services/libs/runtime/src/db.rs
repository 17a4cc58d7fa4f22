//! PostgreSQL pools confined to one schema per service: a service never reads another's tables.

use std::{str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection, Executor, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::DatabaseConfig;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database url is not valid: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {host}: {message}")]
    Connect { host: String, message: String },
    #[error("cannot create schema {schema}: {message}")]
    Schema { schema: String, message: String },
    #[error("migrations for schema {schema} failed: {message}")]
    Migrate { schema: String, message: String },
}

/// Connects, creates `schema` if needed, and returns a pool whose connections use only that schema.
pub async fn connect(config: &DatabaseConfig, schema: &'static str) -> Result<PgPool, DbError> {
    let options =
        PgConnectOptions::from_str(config.url.expose()).map_err(|e| DbError::Url(e.to_string()))?;
    let host = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let connect_error = |e: sqlx::Error| DbError::Connect {
        host: host.clone(),
        message: e.to_string(),
    };

    let mut admin = options.connect().await.map_err(connect_error)?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .await
        .or_else(|e| {
            // Replicas starting together race to create it; losing the race is fine.
            if e.to_string().contains("already exists") {
                Ok(Default::default())
            } else {
                Err(DbError::Schema {
                    schema: schema.to_string(),
                    message: e.to_string(),
                })
            }
        })?;
    admin.close().await.ok();

    let options = options
        .options([("search_path", schema)])
        .application_name(&format!("herald-{schema}"));
    PgPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(connect_error)
}

/// Applies a service's embedded migrations inside its schema.
pub async fn migrate(
    pool: &PgPool,
    schema: &'static str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), DbError> {
    migrator.run(pool).await.map_err(|e| DbError::Migrate {
        schema: schema.to_string(),
        message: e.to_string(),
    })
}
