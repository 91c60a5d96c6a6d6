//! Relational storage through sqlx's `Any` driver: a SQLite file in the data dir by default
//! (WAL, so a SIGKILLed service keeps every committed row), Postgres when `DATABASE_URL` says so.
//! Services write portable SQL (`$1` placeholders, `ON CONFLICT`, `RETURNING`); the few dialect
//! differences (auto-increment keys) are answered by [`Db::dialect`].

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{AnyPool, any::AnyPoolOptions};

use super::config::ServiceConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool and its dialect.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    dialect: Dialect,
}

impl Db {
    /// Connects to `DATABASE_URL`, or to `DATA_DIR/<service>.db`.
    pub async fn connect(config: &ServiceConfig) -> Result<Self> {
        let url = match &config.database_url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating DATA_DIR {}", config.data_dir.display()))?;
                let file = config.data_dir.join(format!("{}.db", config.name));
                format!("sqlite://{}?mode=rwc", file.display())
            }
        };
        Self::connect_url(&url).await
    }

    pub async fn connect_url(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let redacted = redact(url);
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL: readers don't block the writer; busy_timeout: writers queue instead of failing.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("connecting to database {redacted}"))?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Column type of an auto-incrementing 64-bit primary key.
    pub fn serial_key(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
        }
    }

    /// SQL for the text of top-level `key` in the JSON text `column` (NULL when absent).
    pub fn json_text(&self, column: &str, key: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_extract({column}, '$.{key}')"),
            Dialect::Postgres => format!("(({column})::jsonb ->> '{key}')"),
        }
    }

    /// Runs schema statements (each idempotent: `CREATE ... IF NOT EXISTS`).
    pub async fn migrate(&self, statements: &[String]) -> Result<()> {
        for statement in statements {
            sqlx::query(statement)
                .execute(&self.pool)
                .await
                .with_context(|| format!("schema statement failed: {statement}"))?;
        }
        Ok(())
    }

    /// Readiness check: the database answers.
    pub async fn ping(&self) -> Result<(), Unreachable> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(Unreachable)
    }
}

/// The database did not answer [`Db::ping`]. The message is the driver's own, as `/ready`
/// shows it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Unreachable(pub sqlx::Error);

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Maps a database error to a gRPC status without leaking SQL to clients.
pub fn db_status(err: sqlx::Error) -> tonic::Status {
    tracing::error!(error = %err, "database error");
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
            tonic::Status::unavailable("database unavailable")
        }
        _ => tonic::Status::internal("database error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(redact("sqlite://data/order.db"), "sqlite://data/order.db");
    }

    #[tokio::test]
    async fn sqlite_roundtrip_with_portable_sql() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let db = Db::connect_url(&url).await.unwrap();
        db.migrate(&[format!(
            "CREATE TABLE IF NOT EXISTS t (id {}, v TEXT NOT NULL UNIQUE)",
            db.serial_key()
        )])
        .await
        .unwrap();
        for _ in 0..2 {
            sqlx::query("INSERT INTO t (v) VALUES ($1) ON CONFLICT (v) DO NOTHING")
                .bind("a")
                .execute(&db.pool)
                .await
                .unwrap();
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        db.ping().await.unwrap();
        db.pool.close().await;
        let error = db.ping().await.unwrap_err();
        assert!(matches!(error.0, sqlx::Error::PoolClosed), "{error:?}");
    }
}
