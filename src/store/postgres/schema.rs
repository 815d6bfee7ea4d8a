//! The schema's numbered migrations, embedded in the binary and applied at
//! open: all of them in one transaction, under an advisory lock, so that two
//! nodes starting at once do not both apply them (the second waits for the
//! lock, then finds them applied). A database whose schema is newer than this
//! build knows is refused, untouched.

use super::error::PgError;
use crate::store::StoreError;

/// One migration: its number (from 1, in order, never reused), a name for
/// messages, and its SQL.
pub(super) struct Migration {
    pub(super) version: i32,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("migrations/0001_initial.sql"),
}];

/// The schema version this build writes: its last migration's.
pub const PG_SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The advisory lock migrations hold: "hookwatc" in ASCII, so that it is
/// recognisable in `pg_locks` and unlikely to be another program's.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7761_7463;

/// Where the applied migrations are recorded. Created before any migration
/// (with the schema), so it is the one thing every version has in common.
const BOOTSTRAP: &str = "
    -- 'already exists, skipping' on every start but the first says nothing.
    SET LOCAL client_min_messages = warning;
    CREATE SCHEMA IF NOT EXISTS hookwatch;
    CREATE TABLE IF NOT EXISTS hookwatch.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    );";

/// Applies the migrations of `migrations` the database lacks, in one
/// transaction; answers the versions applied (none when it was up to date).
/// `url` (masked) names the database in messages.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    url: &str,
    migrations: &[Migration],
) -> Result<Vec<i32>, StoreError> {
    let query = |e| StoreError::Postgres(PgError::Query(e));
    let txn = client.transaction().await.map_err(query)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(query)?;
    txn.batch_execute(BOOTSTRAP).await.map_err(query)?;
    let current: i32 = txn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM hookwatch.schema_migrations",
            &[],
        )
        .await
        .map_err(query)?
        .get(0);
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::Postgres(PgError::SchemaNewer {
            url: url.to_string(),
            found: current,
            known,
        }));
    }
    let mut applied = Vec::new();
    for migration in migrations.iter().filter(|m| m.version > current) {
        let failed = |source| {
            StoreError::Postgres(PgError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            })
        };
        txn.batch_execute(migration.sql).await.map_err(failed)?;
        txn.execute(
            "INSERT INTO hookwatch.schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(failed)?;
        applied.push(migration.version);
    }
    txn.commit().await.map_err(query)?;
    if !applied.is_empty() {
        tracing::info!(store = %url, versions = ?applied, "applied the PostgreSQL schema's migrations");
    }
    Ok(applied)
}
