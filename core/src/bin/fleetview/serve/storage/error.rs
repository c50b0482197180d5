//! The storage's errors: what failed, on which engine, and why.

use std::fmt;
use std::sync::Arc;

/// A storage failure. Cloneable: when a group commit fails, every job of the group gets it.
#[derive(Clone, Debug)]
pub(crate) enum Error {
    /// The database cannot be opened or prepared (`what`: which step, on which database).
    Open { what: String, cause: String },
    /// An SQLite statement failed.
    Sqlite(Arc<rusqlite::Error>),
    /// A PostgreSQL statement failed (or the connection to the server broke).
    Postgres(Arc<tokio_postgres::Error>),
    /// No PostgreSQL connection could be had from the pool.
    Pool(Arc<deadpool_postgres::PoolError>),
    /// The database was migrated by a newer fleetview: its schema version is unknown here.
    TooNew { found: i64, known: i64 },
    /// The writer has stopped (shutdown or a fatal error): nothing more is stored.
    WriterGone,
    /// A blocking database task could not run to its end.
    Task(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { what, cause } => write!(f, "{what}: {cause}"),
            Error::Sqlite(e) => write!(f, "SQLite: {e}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "PostgreSQL: {} ({})", db.message(), db.code().code()),
                None => write!(f, "PostgreSQL: {}", with_causes(&**e)),
            },
            Error::Pool(e) => write!(f, "PostgreSQL connection pool: {}", with_causes(&**e)),
            Error::TooNew { found, known } => write!(
                f,
                "the database schema is version {found}, this fleetview knows up to {known}: \
                 it was migrated by a newer fleetview"
            ),
            Error::WriterGone => f.write_str("the database writer has stopped"),
            Error::Task(e) => write!(f, "database task: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// An error and its causes (`error connecting to server: Connection refused (os error 111)`):
/// the driver's own message alone does not say why.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(Arc::new(e))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Postgres(Arc::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Pool(Arc::new(e))
    }
}

impl Error {
    /// An opening step that failed, with its cause.
    pub(crate) fn open(what: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::Open {
            what: what.into(),
            cause: cause.to_string(),
        }
    }
}
