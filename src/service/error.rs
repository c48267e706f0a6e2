//! What a use case can answer instead of its result. The web layer turns
//! each variant into an API error (status and code) or an error page.

use crate::domain::role::Role;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing; the message names it, e.g. `no device 7`.
    #[error("{0}")]
    NotFound(String),
    /// The change collides with what is stored: a name or an address
    /// already taken. `field` names the input at fault.
    #[error("{field}: {reason}")]
    Conflict { field: &'static str, reason: String },
    /// An input with a value the use case refuses, named with the reason.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The caller's role does not allow the use case; nothing changed.
    #[error("role {role} may not do this; it needs {needs}")]
    Forbidden { role: Role, needs: &'static str },
    /// The server is not configured for the use case (a setting it needs
    /// is missing); the message names the setting.
    #[error("{0}")]
    NotConfigured(String),
    /// The database failed or could not be reached.
    #[error("storage failed: {0}")]
    Storage(sqlx::Error),
}

impl ServiceError {
    /// An input field with a bad value.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> ServiceError {
        ServiceError::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> ServiceError {
        ServiceError::NotFound(what.into())
    }
}

impl From<StoreError> for ServiceError {
    /// A constraint the store names becomes a conflict on that field.
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::Conflict { field, reason } => ServiceError::Conflict { field, reason },
            StoreError::Database(error) => ServiceError::Storage(error),
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> ServiceError {
        ServiceError::Storage(error)
    }
}
