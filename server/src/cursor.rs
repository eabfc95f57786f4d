//! Signed list cursors: opaque base64url, bound to tenant, namespace, prefix and filter.

use alga_storage_core::{Cursor, Key, Metadata, Namespace, StorageError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Signs and opens cursors with a server-side key.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

/// What a cursor is bound to: the listing it continues.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Tenant of the listing.
    pub tenant: Uuid,
    /// Namespace listed.
    pub namespace: &'a Namespace,
    /// Literal prefix, if any.
    pub prefix: Option<&'a str>,
    /// Metadata filter, if any.
    pub filter: Option<&'a Metadata>,
}

impl CursorKey {
    /// A cursor key derived from the server secret (domain-separated from its other uses).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"alga-storage list cursor v1");
        CursorKey(mac.finalize().into_bytes().to_vec())
    }

    fn tag(&self, scope: Scope<'_>, last_key: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        let filter = scope
            .filter
            .map(|f| serde_json::to_string(f).unwrap_or_default());
        for part in [
            scope.tenant.as_bytes().as_slice(),
            scope.namespace.as_str().as_bytes(),
            scope.prefix.map_or(b"\x00none".as_slice(), str::as_bytes),
            filter
                .as_deref()
                .map_or(b"\x00none".as_slice(), str::as_bytes),
            last_key.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A cursor that continues after `last_key`.
    pub fn seal(&self, scope: Scope<'_>, last_key: &Key) -> Cursor {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&self.tag(scope, last_key.as_str())[..TAG_LEN]);
        bytes.extend_from_slice(last_key.as_str().as_bytes());
        Cursor(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The key a cursor continues after, if it was made by this server for this very listing.
    pub fn open(&self, scope: Scope<'_>, cursor: &Cursor) -> Result<Key, StorageError> {
        let invalid =
            || StorageError::validation("cursor", "is not a valid cursor for this listing");
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.0.as_bytes())
            .map_err(|_| invalid())?;
        if bytes.len() <= 1 + TAG_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (tag, key) = bytes[1..].split_at(TAG_LEN);
        let key = std::str::from_utf8(key).map_err(|_| invalid())?;
        let expected = self.tag(scope, key);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag, &expected[..TAG_LEN])) {
            return Err(invalid());
        }
        Key::new(key).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_open_only_for_their_own_listing() {
        let key = CursorKey::derive(b"secret");
        let ns = Namespace::new("a").unwrap();
        let other_ns = Namespace::new("b").unwrap();
        let tenant = Uuid::new_v4();
        let scope = Scope {
            tenant,
            namespace: &ns,
            prefix: Some("p"),
            filter: None,
        };
        let last = Key::new("p-42").unwrap();
        let cursor = key.seal(scope, &last);
        assert_eq!(key.open(scope, &cursor).unwrap(), last);
        for wrong in [
            Scope {
                namespace: &other_ns,
                ..scope
            },
            Scope {
                tenant: Uuid::new_v4(),
                ..scope
            },
            Scope {
                prefix: None,
                ..scope
            },
            Scope {
                filter: Some(&Metadata::new()),
                ..scope
            },
        ] {
            assert!(key.open(wrong, &cursor).is_err());
        }
        assert!(CursorKey::derive(b"other").open(scope, &cursor).is_err());
        let mut forged = URL_SAFE_NO_PAD.decode(&cursor.0).unwrap();
        *forged.last_mut().unwrap() = b'3';
        assert!(key
            .open(scope, &Cursor(URL_SAFE_NO_PAD.encode(forged)))
            .is_err());
        assert!(key.open(scope, &Cursor("!!".into())).is_err());
    }
}
