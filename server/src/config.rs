//! Configuration from the environment.

use rand::distributions::Alphanumeric;
use rand::Rng;
use std::fmt;
use std::net::SocketAddr;

/// A secret whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// A fresh random secret of 48 alphanumeric characters.
    pub fn generate() -> Self {
        Secret(
            rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(48)
                .map(char::from)
                .collect(),
        )
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: `postgres://…` (Postgres), `sqlite://path` or `sqlite::memory:`
    /// (embedded); default [`DEFAULT_DATABASE_URL`]. Redacted in `Debug`: it may hold a password.
    pub database_url: Secret,
    /// `STORAGE_BIND` (default `127.0.0.1:8787`).
    pub bind: SocketAddr,
    /// `RUNNER_STORAGE_API_TOKEN`: the runner's `x-runner-auth`.
    pub runner_token: Secret,
    /// `STORAGE_JWT_SECRET`: HS256 key of browser tokens (also keys the cursor signatures).
    pub jwt_secret: Secret,
    /// `STORAGE_ADMIN_TOKEN`: bearer token of the admin API.
    pub admin_token: Secret,
    /// `STORAGE_CORS_ORIGINS`: comma-separated origins allowed to call from a browser; `*` = any.
    pub cors_origins: Vec<String>,
    /// `STORAGE_DB_MAX_CONNECTIONS` (default 20).
    pub max_connections: u32,
    /// `STORAGE_RATE_LIMIT_PER_SECOND`: requests per second per principal, per server instance
    /// (default 1000; 0 turns the limit off).
    pub rate_per_second: u32,
    /// `STORAGE_RATE_LIMIT_BURST`: the bucket size (default twice the rate).
    pub rate_burst: u32,
    /// `STORAGE_ANONYMOUS_READ_TENANT`: when set, snapshot `GET`s without a token read this
    /// tenant's namespaces (the seed's "anonymous read if configured"); off by default.
    pub anonymous_read_tenant: Option<uuid::Uuid>,
    /// Default quotas, written to the database at start (a tenant's overrides, set through the
    /// admin API, win): `STORAGE_QUOTA_MAX_NAMESPACES` (namespaces per install, default and
    /// most 32), `STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE` (default 10000) and
    /// `STORAGE_QUOTA_MAX_BYTES` (stored bytes per tenant, default 104857600 = 100 MiB); `0`
    /// means no limit for the last two.
    pub quota_defaults: crate::store::Quotas,
    /// `STORAGE_SWEEP_INTERVAL_SECONDS`: how often the background sweeper removes expired
    /// records (default 30; 0 turns it off, leaving expired records to the writes of their
    /// namespace). Expired records are invisible to reads at once either way.
    pub sweep_interval_seconds: u32,
    /// `STORAGE_SWEEP_BATCH`: most expired records one sweeper pass removes (default 500).
    pub sweep_batch: u32,
    /// How long the change log keeps a change: `STORAGE_CHANGE_RETENTION_SECONDS` (default
    /// 86400) and `STORAGE_CHANGE_RETENTION_CHANGES` (default 10000); a change is kept while
    /// either holds (younger, or among the last changes of its namespace).
    pub change_retention: crate::store::Retention,
    /// `STORAGE_MAX_WATCHES_PER_PRINCIPAL`: open `:watch` streams one install may hold on one
    /// server instance (default 100).
    pub max_watches_per_principal: u32,
    /// True when no secret was configured: the secrets were generated and a dev tenant and
    /// install are provisioned at start.
    pub dev_mode: bool,
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be used.
    #[error("{name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// Some secrets are set and others are not.
    #[error("set all of RUNNER_STORAGE_API_TOKEN, STORAGE_JWT_SECRET and STORAGE_ADMIN_TOKEN, or none of them for dev mode; missing: {0}")]
    PartialSecrets(String),
}

/// The default database when `DATABASE_URL` is unset: an embedded SQLite file in a local data
/// folder, so the server runs with nothing installed.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.alga-storage/storage.db";

/// The database kinds `DATABASE_URL` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `sqlite://path`, `sqlite:path`, `sqlite::memory:`.
    Sqlite,
}

impl Config {
    /// Which backend `database_url` names.
    pub fn backend(&self) -> Backend {
        backend_of(self.database_url.expose()).unwrap_or(Backend::Sqlite)
    }
}

fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bind = lookup("STORAGE_BIND").unwrap_or_else(|| "127.0.0.1:8787".into());
        let bind = bind.parse().map_err(|e| ConfigError::Invalid {
            name: "STORAGE_BIND",
            reason: format!("{bind:?} is not an address: {e}"),
        })?;
        let names = [
            "RUNNER_STORAGE_API_TOKEN",
            "STORAGE_JWT_SECRET",
            "STORAGE_ADMIN_TOKEN",
        ];
        let secrets: Vec<Option<String>> = names.iter().map(|n| lookup(n)).collect();
        let dev_mode = secrets.iter().all(Option::is_none);
        if !dev_mode && secrets.iter().any(Option::is_none) {
            let missing: Vec<&str> = names
                .iter()
                .zip(&secrets)
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            return Err(ConfigError::PartialSecrets(missing.join(", ")));
        }
        let secret = |i: usize| {
            secrets[i]
                .clone()
                .map_or_else(Secret::generate, Secret::new)
        };
        let cors_origins = match lookup("STORAGE_CORS_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            None if dev_mode => vec!["*".to_owned()],
            None => Vec::new(),
        };
        let max_connections = match lookup("STORAGE_DB_MAX_CONNECTIONS") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid {
                    name: "STORAGE_DB_MAX_CONNECTIONS",
                    reason: format!("{v:?} is not a positive integer"),
                })?,
            None => 20,
        };
        let number = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            lookup(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: format!("{v:?} is not a whole number"),
                })
            })
        };
        let rate_per_second = number("STORAGE_RATE_LIMIT_PER_SECOND", 1000)?;
        let rate_burst = number(
            "STORAGE_RATE_LIMIT_BURST",
            rate_per_second.saturating_mul(2),
        )?;
        let anonymous_read_tenant = match lookup("STORAGE_ANONYMOUS_READ_TENANT") {
            Some(v) => Some(uuid::Uuid::parse_str(&v).map_err(|_| ConfigError::Invalid {
                name: "STORAGE_ANONYMOUS_READ_TENANT",
                reason: format!("{v:?} is not a UUID"),
            })?),
            None => None,
        };
        let sweep_interval_seconds = number("STORAGE_SWEEP_INTERVAL_SECONDS", 30)?;
        let sweep_batch = number("STORAGE_SWEEP_BATCH", 500)?.max(1);
        let change_retention = crate::store::Retention {
            seconds: number("STORAGE_CHANGE_RETENTION_SECONDS", 24 * 3600)?,
            changes: number("STORAGE_CHANGE_RETENTION_CHANGES", 10_000)?,
        };
        let max_watches_per_principal = number("STORAGE_MAX_WATCHES_PER_PRINCIPAL", 100)?;
        let max_namespaces = number("STORAGE_QUOTA_MAX_NAMESPACES", 32)?;
        if !(1..=32).contains(&max_namespaces) {
            return Err(ConfigError::Invalid {
                name: "STORAGE_QUOTA_MAX_NAMESPACES",
                reason: format!("{max_namespaces} is not between 1 and 32"),
            });
        }
        let big = |name: &'static str, default: u64| -> Result<Option<i64>, ConfigError> {
            let n = lookup(name).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n <= i64::MAX as u64)
                    .ok_or(ConfigError::Invalid {
                        name,
                        reason: format!("{v:?} is not a whole number"),
                    })
            })?;
            Ok((n > 0).then_some(n as i64))
        };
        let quota_defaults = crate::store::Quotas {
            max_namespaces: Some(i64::from(max_namespaces)),
            max_keys_per_namespace: big("STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE", 10_000)?,
            max_bytes: big("STORAGE_QUOTA_MAX_BYTES", 100 * 1024 * 1024)?,
        };
        let database_url = lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if backend_of(&database_url).is_none() {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: "must start with postgres://, postgresql:// or sqlite:".into(),
            });
        }
        Ok(Config {
            database_url: Secret::new(database_url),
            bind,
            runner_token: secret(0),
            jwt_secret: secret(1),
            admin_token: secret(2),
            cors_origins,
            max_connections,
            rate_per_second,
            rate_burst,
            anonymous_read_tenant,
            quota_defaults,
            sweep_interval_seconds,
            sweep_batch,
            change_retention,
            max_watches_per_principal,
            dev_mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|n| map.get(n).cloned())
    }

    #[test]
    fn no_secrets_means_dev_mode_with_generated_secrets() {
        let c = config(&[]).unwrap();
        assert!(c.dev_mode);
        assert_eq!(c.jwt_secret.expose().len(), 48);
        assert_ne!(c.jwt_secret, c.admin_token);
        assert_eq!(c.cors_origins, vec!["*"]);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8787");
    }

    #[test]
    fn some_secrets_but_not_all_is_refused_naming_the_missing_ones() {
        let err = config(&[("STORAGE_JWT_SECRET", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RUNNER_STORAGE_API_TOKEN") && err.contains("STORAGE_ADMIN_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = config(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn database_url_selects_the_backend() {
        assert_eq!(config(&[]).unwrap().backend(), Backend::Sqlite);
        assert_eq!(
            config(&[("DATABASE_URL", "postgres://h/db")])
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert_eq!(
            config(&[("DATABASE_URL", "sqlite::memory:")])
                .unwrap()
                .backend(),
            Backend::Sqlite
        );
        let err = config(&[("DATABASE_URL", "mysql://h/db")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn quota_defaults_come_from_the_environment() {
        let q = config(&[]).unwrap().quota_defaults;
        assert_eq!(q.max_namespaces, Some(32));
        assert_eq!(q.max_keys_per_namespace, Some(10_000));
        assert_eq!(q.max_bytes, Some(100 * 1024 * 1024));
        let q = config(&[
            ("STORAGE_QUOTA_MAX_NAMESPACES", "4"),
            ("STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE", "0"),
            ("STORAGE_QUOTA_MAX_BYTES", "2048"),
        ])
        .unwrap()
        .quota_defaults;
        assert_eq!(q.max_namespaces, Some(4));
        assert_eq!(q.max_keys_per_namespace, None, "0 = no limit");
        assert_eq!(q.max_bytes, Some(2048));
        for (name, value) in [
            ("STORAGE_QUOTA_MAX_NAMESPACES", "33"),
            ("STORAGE_QUOTA_MAX_NAMESPACES", "0"),
            ("STORAGE_QUOTA_MAX_BYTES", "-1"),
            ("STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE", "lots"),
        ] {
            let err = config(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn bad_bind_address_is_refused() {
        assert!(config(&[("STORAGE_BIND", "nowhere")]).is_err());
    }
}
