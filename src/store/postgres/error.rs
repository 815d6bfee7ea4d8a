//! What can go wrong on PostgreSQL, kept apart from the redb store's errors
//! and carried in [`StoreError::Postgres`](crate::store::StoreError).
//! Every URL in these messages is masked (see [`masked_url`](super::masked_url)).

use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("{url} is not a PostgreSQL URL hookwatch can use: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot set up the connection pool for {url}: {source}")]
    Pool {
        url: String,
        #[source]
        source: deadpool_postgres::BuildError,
    },
    #[error("cannot connect to PostgreSQL at {url}: {}", pool_reason(.source))]
    Connect {
        url: String,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    #[error("the PostgreSQL database at {url} holds a hookwatch schema of version {found}, this build knows versions up to {known}; it was left untouched")]
    SchemaNewer { url: String, found: i32, known: i32 },
    #[error("migration {version} ({name}) of the PostgreSQL schema failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection to be had while running (the server went away): a
    /// write is refused, nothing in it stored.
    #[error("no PostgreSQL connection: {}", pool_reason(.0))]
    Unreachable(#[source] deadpool_postgres::PoolError),
    #[error("PostgreSQL query failed: {}", query_reason(.0))]
    Query(#[source] tokio_postgres::Error),
    /// Another hookwatch holds the database: one node per database until
    /// nodes share the work (leases on owed events, cluster-wide limits).
    #[error("another hookwatch already runs on the PostgreSQL database at {url}; several hookwatch nodes on one database are not supported yet. Operate that one through its API (`hookwatch --url http://HOST:PORT`), or stop it first")]
    HeldByAnother { url: String },
    /// A stored id that is not 16 bytes: the row was not written by hookwatch.
    #[error("a stored {what} id is {len} bytes long, not 16")]
    BadId { what: &'static str, len: usize },
    /// The database answered what its own guarantees rule out.
    #[error("the database answered inconsistently: {0}")]
    Inconsistent(&'static str),
}

impl PgError {
    /// The server refused the statement because of a conflict with another
    /// transaction (deadlock, serialization): running it again may succeed.
    pub(super) fn is_conflict(&self) -> bool {
        self.sql_state().is_some_and(|state| {
            *state == SqlState::T_R_DEADLOCK_DETECTED
                || *state == SqlState::T_R_SERIALIZATION_FAILURE
        })
    }

    /// The statement failed on its own data (a constraint, a value out of
    /// range), not because the database or the connection failed: the rest
    /// of its group commit can go on without it.
    pub(super) fn is_own_failure(&self) -> bool {
        match self {
            PgError::BadId { .. } => true,
            _ => self.sql_state().is_some_and(|state| {
                let class = &state.code()[..2];
                // 22: data exception, 23: integrity constraint violation.
                class == "22" || class == "23"
            }),
        }
    }

    /// The database cannot be reached (or the connection broke): the API
    /// answers 503 and the write can be tried again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PgError::Connect { .. } | PgError::Unreachable(_) => true,
            // No answer from the server at all (an I/O error, a closed
            // connection), as opposed to the server refusing a statement.
            PgError::Query(e) => e.is_closed() || e.as_db_error().is_none(),
            _ => false,
        }
    }

    fn sql_state(&self) -> Option<&SqlState> {
        match self {
            PgError::Query(e) | PgError::Migration { source: e, .. } => e.code(),
            _ => None,
        }
    }
}

pub(super) fn query_err(e: tokio_postgres::Error) -> crate::store::StoreError {
    crate::store::StoreError::Postgres(PgError::Query(e))
}

/// What went wrong in a pool's attempt to hand out a connection, with the
/// server's own words when it answered (a wrong password, a database that
/// does not exist) rather than the client's "db error".
fn pool_reason(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => query_reason(error),
        other => other.to_string(),
    }
}

/// A client error with what caused it: the server's message for an error
/// the server reported, else the whole chain of causes ("error connecting to
/// server: Connection refused (os error 111)").
fn query_reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}
