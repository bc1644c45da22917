//! Database errors classified by SQLSTATE, never by message text.
//!
//! Every operation of this crate that can fail for database reasons reports a [`DbError`] (on
//! its own or inside an operation-specific error), so callers can match on "unique violation"
//! or "serialization failure" and decide whether to retry.

use sqlx::error::ErrorKind;

/// A database failure, classified by its SQLSTATE.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint or index rejected the write (SQLSTATE 23505).
    #[error("unique constraint `{constraint}` rejected the write")]
    UniqueViolation {
        /// The constraint or index name.
        constraint: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// A foreign key rejected the write (23503): a referenced row is missing or still referenced.
    #[error("foreign key `{constraint}` rejected the write")]
    ForeignKeyViolation {
        /// The constraint name.
        constraint: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// A CHECK constraint rejected the write (23514): the row would break an invariant.
    #[error("check constraint `{constraint}` rejected the write")]
    CheckViolation {
        /// The constraint name.
        constraint: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// A NOT NULL column was given no value (23502).
    #[error("a required column was null")]
    NotNullViolation(#[source] sqlx::Error),
    /// The transaction lost a serialization conflict or a deadlock (40001, 40P01); retrying
    /// the whole transaction is safe.
    #[error("the transaction conflicted with a concurrent one; retry it")]
    SerializationFailure(#[source] sqlx::Error),
    /// The statement was cancelled, usually by `statement_timeout` (57014).
    #[error("the statement was cancelled (statement_timeout or a cancel request)")]
    QueryCanceled(#[source] sqlx::Error),
    /// No connection could be acquired from the pool in time.
    #[error("timed out waiting for a database connection from the pool")]
    PoolTimedOut(#[source] sqlx::Error),
    /// The database returned a value this crate cannot represent (e.g. a state label unknown
    /// to this build).
    #[error("the database returned a value this build cannot decode")]
    Decode(#[source] sqlx::Error),
    /// Any other database or connection failure.
    #[error("database operation failed")]
    Other(#[source] sqlx::Error),
}

impl DbError {
    /// True for failures where retrying the same transaction may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DbError::SerializationFailure(_) | DbError::PoolTimedOut(_)
        )
    }

    /// The violated constraint's name, for constraint violations.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::UniqueViolation { constraint, .. }
            | DbError::ForeignKeyViolation { constraint, .. }
            | DbError::CheckViolation { constraint, .. } => Some(constraint),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(source: sqlx::Error) -> Self {
        match &source {
            sqlx::Error::PoolTimedOut => return DbError::PoolTimedOut(source),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                return DbError::Decode(source);
            }
            _ => {}
        }
        let Some(db) = source.as_database_error() else {
            return DbError::Other(source);
        };
        let constraint = db.constraint().unwrap_or_default().to_owned();
        let code = db.code().map(|code| code.into_owned());
        match (db.kind(), code.as_deref()) {
            (ErrorKind::UniqueViolation, _) => DbError::UniqueViolation { constraint, source },
            (ErrorKind::ForeignKeyViolation, _) => {
                DbError::ForeignKeyViolation { constraint, source }
            }
            (ErrorKind::CheckViolation, _) => DbError::CheckViolation { constraint, source },
            (ErrorKind::NotNullViolation, _) => DbError::NotNullViolation(source),
            (_, Some("40001" | "40P01")) => DbError::SerializationFailure(source),
            (_, Some("57014")) => DbError::QueryCanceled(source),
            _ => DbError::Other(source),
        }
    }
}
