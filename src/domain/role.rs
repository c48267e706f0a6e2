//! Roles after IEC 62351-8 role-based access control.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a token may do. Each role is a set of rights; a request outside them
/// gets 403 and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything operational.
    Viewer,
    /// Viewer + on-demand reads, acknowledging events.
    Operator,
    /// Operator + configuration of buses, devices, tariffs; commands to devices.
    Engineer,
    /// Security administrator: users and tokens.
    Secadm,
    /// Security auditor: reads the audit log.
    Secaud,
}

/// A right a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Read,
    Operate,
    Configure,
    ManageSecurity,
    Audit,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Viewer, Role::Operator, Role::Engineer, Role::Secadm, Role::Secaud];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Engineer => "engineer",
            Role::Secadm => "secadm",
            Role::Secaud => "secaud",
        }
    }

    pub fn permits(self, right: Right) -> bool {
        match right {
            Right::Read => matches!(
                self,
                Role::Viewer | Role::Operator | Role::Engineer | Role::Secadm | Role::Secaud
            ),
            Right::Operate => matches!(self, Role::Operator | Role::Engineer),
            Right::Configure => matches!(self, Role::Engineer),
            Right::ManageSecurity => matches!(self, Role::Secadm),
            Right::Audit => matches!(self, Role::Secaud),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, operator, engineer, secadm or secaud")]
pub struct RoleError(String);

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| RoleError(text.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_iec_62351_8() {
        assert!(!Role::Viewer.permits(Right::Configure));
        assert!(!Role::Viewer.permits(Right::Operate));
        assert!(Role::Operator.permits(Right::Operate));
        assert!(!Role::Operator.permits(Right::Configure));
        assert!(Role::Engineer.permits(Right::Configure));
        assert!(!Role::Engineer.permits(Right::ManageSecurity));
        assert!(Role::Secadm.permits(Right::ManageSecurity));
        assert!(Role::Secaud.permits(Right::Audit) && !Role::Secadm.permits(Right::Audit));
        assert_eq!("secaud".parse::<Role>().unwrap(), Role::Secaud);
        assert!("admin".parse::<Role>().is_err());
    }
}
