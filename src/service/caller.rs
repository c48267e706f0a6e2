//! Who asks for a use case: a user name (for the audit log and "changed
//! by") and a role, whose rights the use case checks first.

use super::ServiceError;
use crate::domain::role::{Right, Role};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

impl Caller {
    /// Refuses a use case outside the caller's role, before it changes anything.
    pub fn require(&self, right: Right) -> Result<(), ServiceError> {
        if self.role.permits(right) {
            return Ok(());
        }
        let needs = match right {
            Right::Read => "any role",
            Right::Operate => "operator or engineer",
            Right::Configure => "engineer",
            Right::ManageSecurity => "secadm",
            Right::Audit => "secaud",
        };
        Err(ServiceError::Forbidden { role: self.role, needs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_gets_only_its_rights() {
        let viewer = Caller {
            user: "v".to_owned(),
            role: Role::Viewer,
        };
        assert!(viewer.require(Right::Read).is_ok());
        let refused = viewer.require(Right::Configure).unwrap_err();
        assert_eq!(refused.to_string(), "role viewer may not do this; it needs engineer");
    }
}
