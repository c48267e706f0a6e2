//! Typed identifiers, so a bus id is never passed where a device id is meant.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("Identifier of a ", $what, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(SiteId, "site");
id_type!(BusId, "bus");
id_type!(DeviceId, "device");
id_type!(EventId, "event");
id_type!(CalendarId, "tariff calendar");
id_type!(VirtualMeterId, "virtual meter");
