//! Grants and the capability check shared by the server and the runner host.

use crate::error::{quoted, ErrorCode, StorageError};
use crate::limits::MAX_NAMESPACES_PER_PRINCIPAL;
use crate::names::Namespace;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What an operation needs on a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// `get`, `list`, snapshot `GET`.
    Read,
    /// `put`, `delete`, `bulkPut`, snapshot `PATCH`.
    Write,
}

impl Access {
    /// The wire name (`read` / `write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One grant: a namespace and the access allowed on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    /// The granted namespace.
    pub namespace: Namespace,
    /// Allowed access (`read`, `write`).
    pub access: Vec<Access>,
}

/// Checks a principal's grant list: at most [`MAX_NAMESPACES_PER_PRINCIPAL`] namespaces, each
/// named once.
pub fn validate_grants(grants: &[Grant]) -> Result<(), StorageError> {
    if grants.len() > MAX_NAMESPACES_PER_PRINCIPAL {
        return Err(StorageError::validation(
            "grants",
            format!(
                "at most {MAX_NAMESPACES_PER_PRINCIPAL} namespaces may be granted, got {}",
                grants.len()
            ),
        ));
    }
    for (i, grant) in grants.iter().enumerate() {
        if grant.access.is_empty() {
            return Err(StorageError::validation(
                format!("grants[{i}].access"),
                "must name read, write or both (to grant nothing, leave the namespace out)",
            ));
        }
        // At most 32 grants: a scan of the ones before is cheaper than a set.
        if grants[..i].iter().any(|g| g.namespace == grant.namespace) {
            return Err(StorageError::validation(
                format!("grants[{i}].namespace"),
                format!(
                    "namespace {} is granted twice",
                    quoted(grant.namespace.as_str())
                ),
            ));
        }
    }
    Ok(())
}

/// Succeeds when `grants` allow `access` on `namespace`; otherwise `UNAUTHORIZED` (403) whose
/// details say why: `noGrants`, `namespaceNotGranted` or `accessNotGranted`.
///
/// ```
/// use alga_storage_core::{ensure_capability, Access, Grant, Namespace};
/// let ns = Namespace::new("settings").unwrap();
/// let grants = vec![Grant { namespace: ns.clone(), access: vec![Access::Read] }];
/// assert!(ensure_capability(&grants, &ns, Access::Read).is_ok());
/// assert_eq!(ensure_capability(&grants, &ns, Access::Write).unwrap_err().status(), 403);
/// ```
pub fn ensure_capability(
    grants: &[Grant],
    namespace: &Namespace,
    access: Access,
) -> Result<(), StorageError> {
    let deny = |reason: &str, message: String| {
        Err(
            StorageError::new(ErrorCode::Unauthorized, message).with_details(json!({
                "namespace": namespace.as_str(),
                "access": access.as_str(),
                "reason": reason,
            })),
        )
    };
    if grants.is_empty() {
        return deny("noGrants", "this install holds no storage grant".to_owned());
    }
    match grants.iter().find(|g| &g.namespace == namespace) {
        None => deny(
            "namespaceNotGranted",
            format!("namespace \"{namespace}\" is not granted to this install"),
        ),
        Some(g) if !g.access.contains(&access) => deny(
            "accessNotGranted",
            format!(
                "{} access to namespace \"{namespace}\" is not granted",
                access.as_str()
            ),
        ),
        Some(_) => Ok(()),
    }
}
