//! Validated newtypes: once one exists, it is valid ("parse, don't validate").

use crate::error::quoted;
use crate::limits::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value could not become one of the validated types. Says which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    /// The field, as named in the contract's JSON (e.g. `namespace`, `ttlSeconds`).
    pub field: &'static str,
    /// Why the value is refused.
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidValue {
            field,
            reason: reason.into(),
        }
    }
}

impl From<InvalidValue> for crate::StorageError {
    fn from(e: InvalidValue) -> Self {
        crate::StorageError::validation(e.field, e.reason)
    }
}

/// A JSON integer as JSON Schema defines one: any JSON number whose value is whole (`3`, `3.0`,
/// `3e2`), so that every body the OpenAPI document calls valid is taken. A fraction, or a
/// float beyond 2^53 (where it no longer names one integer), is refused.
///
/// ```
/// use alga_storage_core::WholeNumber;
/// let n: WholeNumber = serde_json::from_str("3600.0").unwrap();
/// assert_eq!(i64::from(n), 3600);
/// assert!(serde_json::from_str::<WholeNumber>("1.5").is_err());
/// assert!(serde_json::from_str::<WholeNumber>("\"7\"").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "i64")]
pub struct WholeNumber(i64);

impl WholeNumber {
    /// A number as a JavaScript engine holds it, taken as the JSON it writes for it
    /// (`JSON.stringify`): a whole number of magnitude below 2^63 is written as digits, which
    /// the server reads as an integer; a fraction, `NaN`, an infinity or a larger number is
    /// not one (`None`).
    ///
    /// ```
    /// use alga_storage_core::WholeNumber;
    /// assert_eq!(WholeNumber::from_js_number(3600.0).map(i64::from), Some(3600));
    /// assert_eq!(WholeNumber::from_js_number(-(2f64.powi(63))).map(i64::from), Some(i64::MIN));
    /// assert!(WholeNumber::from_js_number(1.5).is_none());
    /// assert!(WholeNumber::from_js_number(2f64.powi(63)).is_none());
    /// assert!(WholeNumber::from_js_number(f64::NAN).is_none());
    /// ```
    pub fn from_js_number(n: f64) -> Option<WholeNumber> {
        const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
        (n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n)).then_some(WholeNumber(n as i64))
    }
}

impl From<WholeNumber> for i64 {
    fn from(value: WholeNumber) -> i64 {
        value.0
    }
}

impl From<i64> for WholeNumber {
    fn from(value: i64) -> WholeNumber {
        WholeNumber(value)
    }
}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
                if v.fract() == 0.0 && v.abs() <= EXACT {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Deserializes an optional integer field where `null` means absent, taking any whole JSON
/// number as [`WholeNumber`] does (use with
/// `#[serde(default, deserialize_with = "alga_storage_core::optional_whole_number")]`).
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    Ok(Option::<WholeNumber>::deserialize(deserializer)?.map(i64::from))
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a string.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                $check(&value)?;
                Ok($name(value))
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                $name::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(value: &str) -> Result<Self, InvalidValue> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A namespace: 1–64 characters, a lowercase slug `[a-z0-9][a-z0-9_-]*`.
    ///
    /// ```
    /// use alga_storage_core::Namespace;
    /// assert!(Namespace::new("settings").is_ok());
    /// assert!(Namespace::new("Settings").is_err());
    /// ```
    Namespace,
    check_namespace
);

string_newtype!(
    /// A record key: 1–128 Unicode characters, no `/`, no control characters.
    ///
    /// ```
    /// use alga_storage_core::Key;
    /// assert!(Key::new("invoice-defaults").is_ok());
    /// assert!(Key::new("a/b").is_err());
    /// ```
    Key,
    check_key
);

string_newtype!(
    /// An extension install id (the principal): 1–128 characters of `[A-Za-z0-9._-]`.
    InstallId,
    check_install_id
);

fn check_namespace(s: &str) -> Result<(), InvalidValue> {
    let field = "namespace";
    let len = s.chars().count();
    if len == 0 || len > MAX_NAMESPACE_CHARS {
        return Err(InvalidValue::new(
            field,
            format!("must be 1-{MAX_NAMESPACE_CHARS} characters, got {len}"),
        ));
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or_default();
    let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !slug(first) || !chars.all(|c| slug(c) || c == '_' || c == '-') {
        return Err(InvalidValue::new(
            field,
            format!(
                "{} is not a lowercase slug matching [a-z0-9][a-z0-9_-]*",
                quoted(s)
            ),
        ));
    }
    Ok(())
}

fn check_key(s: &str) -> Result<(), InvalidValue> {
    let field = "key";
    let len = s.chars().count();
    if len == 0 || len > MAX_KEY_CHARS {
        return Err(InvalidValue::new(
            field,
            format!("must be 1-{MAX_KEY_CHARS} characters, got {len}"),
        ));
    }
    if s.contains('/') {
        return Err(InvalidValue::new(field, "must not contain '/'"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(InvalidValue::new(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn check_install_id(s: &str) -> Result<(), InvalidValue> {
    let field = "installId";
    let len = s.chars().count();
    if len == 0 || len > MAX_INSTALL_ID_CHARS {
        return Err(InvalidValue::new(
            field,
            format!("must be 1-{MAX_INSTALL_ID_CHARS} characters, got {len}"),
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(InvalidValue::new(field, "must contain only [A-Za-z0-9._-]"));
    }
    Ok(())
}

/// A time to live in seconds, between [`MIN_TTL_SECONDS`] and [`MAX_TTL_SECONDS`].
///
/// ```
/// use alga_storage_core::TtlSeconds;
/// assert!(TtlSeconds::new(60).is_ok());
/// assert!(TtlSeconds::new(59).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(try_from = "WholeNumber", into = "u32")]
pub struct TtlSeconds(u32);

impl TtlSeconds {
    /// Validates a number of seconds.
    pub fn new(seconds: i64) -> Result<Self, InvalidValue> {
        if (i64::from(MIN_TTL_SECONDS)..=i64::from(MAX_TTL_SECONDS)).contains(&seconds) {
            Ok(TtlSeconds(seconds as u32))
        } else {
            Err(InvalidValue::new(
                "ttlSeconds",
                format!("must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}, got {seconds}"),
            ))
        }
    }

    /// The number of seconds.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<WholeNumber> for TtlSeconds {
    type Error = InvalidValue;
    fn try_from(value: WholeNumber) -> Result<Self, InvalidValue> {
        TtlSeconds::try_from(value.0)
    }
}

impl TryFrom<i64> for TtlSeconds {
    type Error = InvalidValue;
    fn try_from(value: i64) -> Result<Self, InvalidValue> {
        TtlSeconds::new(value)
    }
}

impl From<TtlSeconds> for u32 {
    fn from(value: TtlSeconds) -> u32 {
        value.0
    }
}

/// A `list` page size between 1 and [`MAX_LIST_LIMIT`]; [`Limit::default`] is
/// [`DEFAULT_LIST_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(try_from = "WholeNumber", into = "u8")]
pub struct Limit(u8);

impl Limit {
    /// Validates a page size.
    pub fn new(limit: i64) -> Result<Self, InvalidValue> {
        if (1..=i64::from(MAX_LIST_LIMIT)).contains(&limit) {
            Ok(Limit(limit as u8))
        } else {
            Err(InvalidValue::new(
                "limit",
                format!("must be between 1 and {MAX_LIST_LIMIT}, got {limit}"),
            ))
        }
    }

    /// The page size.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(DEFAULT_LIST_LIMIT)
    }
}

impl TryFrom<WholeNumber> for Limit {
    type Error = InvalidValue;
    fn try_from(value: WholeNumber) -> Result<Self, InvalidValue> {
        Limit::try_from(value.0)
    }
}

impl TryFrom<i64> for Limit {
    type Error = InvalidValue;
    fn try_from(value: i64) -> Result<Self, InvalidValue> {
        Limit::new(value)
    }
}

impl From<Limit> for u8 {
    fn from(value: Limit) -> u8 {
        value.0
    }
}

/// A revision a guard names: `0` means "the record must not exist"; `n` means "the record's
/// current revision must be `n`". At most [`MAX_REVISION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct Revision(u64);

impl Revision {
    /// Validates a revision guard.
    pub fn new(revision: i64) -> Result<Self, InvalidValue> {
        u64::try_from(revision).map(Revision).map_err(|_| {
            InvalidValue::new(
                "ifRevision",
                format!("must be between 0 and {MAX_REVISION}, got {revision}"),
            )
        })
    }

    /// The revision number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<WholeNumber> for Revision {
    type Error = InvalidValue;
    fn try_from(value: WholeNumber) -> Result<Self, InvalidValue> {
        Revision::try_from(value.0)
    }
}

impl TryFrom<i64> for Revision {
    type Error = InvalidValue;
    fn try_from(value: i64) -> Result<Self, InvalidValue> {
        Revision::new(value)
    }
}

impl From<Revision> for u64 {
    fn from(value: Revision) -> u64 {
        value.0
    }
}

/// An opaque pagination cursor, as returned in `nextCursor`. Only the server can read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(transparent)]
pub struct Cursor(pub String);
