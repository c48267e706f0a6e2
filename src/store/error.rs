//! Store errors, with constraint violations turned into the field they concern.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique or check constraint refused the row; `field` names the input at fault.
    #[error("{field}: {reason}")]
    Conflict { field: &'static str, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Maps a violated constraint, by the name the migration gave it, to the
/// request field and a reason a user can act on.
pub(crate) fn on_constraint(error: sqlx::Error) -> StoreError {
    let Some(name) = error.as_database_error().and_then(|db| db.constraint()) else {
        return StoreError::Database(error);
    };
    let (field, reason) = match name {
        "buses_name_key" => ("name", "a bus with this name already exists"),
        "devices_bus_address_key" => ("address", "another device on this bus already has this address"),
        "devices_bus_iec_address_key" => (
            "iec_address",
            "another device on this bus already has this device address",
        ),
        "devices_bus_id_fkey" => ("bus_id", "no such bus"),
        "buses_site_id_fkey" => ("site_id", "no such site"),
        "users_name_key" => ("name", "a user with this name already exists"),
        _ => return StoreError::Database(error),
    };
    StoreError::Conflict {
        field,
        reason: reason.to_owned(),
    }
}
