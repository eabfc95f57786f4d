//! Credentials: browser JWTs (HS256), the runner's shared token and the admin token.

use crate::config::Secret;
use alga_storage_core::{InstallId, StorageError};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The claims of a browser token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The install id (the principal).
    pub sub: String,
    /// The tenant of the install.
    pub tenant: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The install's generation when the token was minted (see
    /// [`Principal::generation`](crate::store::Principal::generation)).
    #[serde(default)]
    pub generation: String,
}

/// What a verified browser token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Bearer {
    /// The install it was minted for.
    pub install: InstallId,
    /// That install's tenant.
    pub tenant: Uuid,
    /// That install's generation then.
    pub generation: String,
    /// When the token expires, seconds since the epoch (an open watch ends then).
    pub expires: i64,
}

/// Signs and verifies browser tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens already verified, until they expire: a page sends the same token with every
    /// call, and verifying it (base64, HMAC, two JSON documents) was a twelfth of the server's
    /// CPU per get. What a token names is still checked against the install on every request.
    verified: quick_cache::sync::Cache<Box<str>, Arc<Bearer>>,
}

/// Most verified tokens kept (the least used go first).
const VERIFIED_CAPACITY: usize = 10_000;

impl TokenKeys {
    /// Keys from the HS256 secret.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            verified: quick_cache::sync::Cache::new(VERIFIED_CAPACITY),
        }
    }

    /// Mints a token for an install (of its current generation), valid for `ttl_seconds`.
    pub fn mint(&self, principal: &crate::store::Principal, ttl_seconds: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: principal.install.to_string(),
            tenant: principal.tenant,
            exp: now + ttl_seconds,
            iat: now,
            generation: principal.generation.clone(),
        };
        // HS256 signing of a plain struct cannot fail.
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies a token's signature and expiry and says what it claims.
    pub fn verify(&self, token: &str) -> Result<Arc<Bearer>, StorageError> {
        if let Some(bearer) = self.verified.get(token) {
            // jsonwebtoken's rule with no leeway: expired once `exp` is before now.
            if bearer.expires >= jsonwebtoken::get_current_timestamp() as i64 {
                return Ok(bearer);
            }
            self.verified.remove(token);
        }
        let bearer = Arc::new(self.verify_signed(token)?);
        self.verified.insert(token.into(), bearer.clone());
        Ok(bearer)
    }

    fn verify_signed(&self, token: &str) -> Result<Bearer, StorageError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "token signature is invalid",
                ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                _ => "token is malformed",
            };
            StorageError::unauthenticated(why)
        })?;
        let install = InstallId::new(data.claims.sub)
            .map_err(|_| StorageError::unauthenticated("token subject is not an install id"))?;
        Ok(Bearer {
            install,
            tenant: data.claims.tenant,
            generation: data.claims.generation,
            expires: data.claims.exp,
        })
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, StorageError> {
    let header =
        header.ok_or_else(|| StorageError::unauthenticated("missing Authorization header"))?;
    match header.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(StorageError::unauthenticated(
            "Authorization must be 'Bearer <token>'",
        )),
    }
}

/// Compares a presented shared secret with the expected one in constant time (both are hashed
/// first, so not even the length leaks).
pub fn secret_matches(presented: Option<&str>, expected: &Secret) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> crate::store::Principal {
        crate::store::Principal {
            tenant: Uuid::new_v4(),
            install: InstallId::new("inst-1").unwrap(),
            grants: vec![],
            generation: "g1".into(),
        }
    }

    #[test]
    fn minted_tokens_verify_and_foreign_ones_do_not() {
        let keys = TokenKeys::new(&Secret::new("s1"));
        let principal = principal();
        let token = keys.mint(&principal, 60);
        let bearer = keys.verify(&token).unwrap();
        assert_eq!(
            (
                bearer.install.clone(),
                bearer.tenant,
                bearer.generation.as_str()
            ),
            (principal.install.clone(), principal.tenant, "g1")
        );
        let other = TokenKeys::new(&Secret::new("s2"));
        assert_eq!(
            other.verify(&token).unwrap_err().message(),
            "token signature is invalid"
        );
        let expired = keys.mint(&principal, -10);
        assert_eq!(
            keys.verify(&expired).unwrap_err().message(),
            "token expired"
        );
        assert_eq!(keys.verify("garbage").unwrap_err().status(), 401);
    }

    #[test]
    fn a_verified_token_is_refused_once_it_expires() {
        let keys = TokenKeys::new(&Secret::new("s1"));
        let principal = principal();
        // Valid through the next second, and remembered as verified.
        let token = keys.mint(&principal, 1);
        let bearer = keys.verify(&token).unwrap();
        assert!(Arc::ptr_eq(&bearer, &keys.verify(&token).unwrap()));
        while jsonwebtoken::get_current_timestamp() as i64 <= bearer.expires {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(keys.verify(&token).unwrap_err().message(), "token expired");
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
    }

    #[test]
    fn shared_secrets_compare_exactly() {
        let s = Secret::new("token");
        assert!(secret_matches(Some("token"), &s));
        assert!(!secret_matches(Some("token2"), &s));
        assert!(!secret_matches(Some(""), &s));
        assert!(!secret_matches(None, &s));
    }
}
