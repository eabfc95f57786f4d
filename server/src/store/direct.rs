//! Postgres connections for statements that run on their own, outside any transaction.
//!
//! sqlx's pool pings every connection given back to it: a `Sync` message and the database's
//! answer, one more round trip and one more wake-up of both sides per statement (measured: a
//! twelfth of the server's CPU per get, and the database's share of it besides). A statement on
//! its own needs no such check. sqlx sends it with its own `Sync`, so the database runs and
//! commits it whatever the caller does next, and before its next statement a connection reads
//! whatever answer is still unread. So single statements take their connection from
//! [`Direct`], which hands it back as it is. Transactions keep sqlx's pool: a transaction dropped
//! halfway leaves its `ROLLBACK` to send, and the ping sends it at once (its locks go with it).
//!
//! A connection is dropped when a statement on it finds it broken or the database going away,
//! and pinged before it serves again after [`IDLE_TEST`] of rest: a connection the database
//! closed fails at most the one statement that finds it.

use deadpool::managed::{Metrics, Object, Pool, PoolError, RecycleError, RecycleResult};
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgQueryResult, PgRow, PgStatement, PgTypeInfo,
};
use sqlx::{Connection, Describe, Either, Execute, Executor, Postgres};
use std::time::Duration;

use super::unreachable;

/// Rest after which a connection is pinged before it serves again.
pub const IDLE_TEST: Duration = Duration::from_secs(10);

/// A pool of connections for single statements, used as a sqlx [`Executor`] (`&direct` where
/// `&pool` was).
#[derive(Clone)]
pub struct Direct {
    pool: Pool<Connect>,
    wait: Duration,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("status", &self.pool.status())
            .finish()
    }
}

/// Opens and recycles the connections.
struct Connect {
    options: PgConnectOptions,
}

impl deadpool::managed::Manager for Connect {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    async fn recycle(
        &self,
        conn: &mut PgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        // A statement cut off halfway left bytes unsent; a long rest may have outlived the
        // connection. Either way, one round trip settles it (or the connection is replaced).
        if conn.should_flush() || metrics.last_used() >= IDLE_TEST {
            conn.ping().await.map_err(RecycleError::Backend)?;
        }
        Ok(())
    }
}

impl Direct {
    /// A pool of up to `size` connections; a caller waits at most `wait` for one (then
    /// [`sqlx::Error::PoolTimedOut`], which the store answers `UNAVAILABLE`).
    ///
    /// # Errors
    /// None in practice (deadpool refuses only a pool built without a size).
    pub fn new(options: PgConnectOptions, size: u32, wait: Duration) -> Result<Self, sqlx::Error> {
        let pool = Pool::builder(Connect { options })
            .max_size(size.max(1) as usize)
            .build()
            .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
        Ok(Direct { pool, wait })
    }

    /// A connection within `wait` in all (a free slot, then a ping or a new connection if one is
    /// needed), or [`sqlx::Error::PoolTimedOut`].
    async fn acquire(&self) -> Result<Object<Connect>, sqlx::Error> {
        match tokio::time::timeout(self.wait, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(PoolError::Backend(e))) => Err(e),
            Ok(Err(PoolError::Closed)) => Err(sqlx::Error::PoolClosed),
            Ok(Err(_)) | Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }
}

/// Gives a connection back, or drops it when its statement found it broken or the database
/// going away (an I/O or protocol error, SQLSTATE 08 or 57P: see [`unreachable`]).
fn settle<T>(conn: Object<Connect>, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    if let Err(e) = &result {
        if unreachable(e) || matches!(e, sqlx::Error::Protocol(_)) {
            drop(Object::take(conn));
        }
    }
    result
}

/// The future of one call on a connection of `$direct`: `$call` made on it (`$conn`), then the
/// connection settled.
macro_rules! on_a_connection {
    ($direct:expr, |$conn:ident| $call:expr) => {
        async move {
            let mut held = $direct.acquire().await?;
            let $conn = &mut *held;
            let result = $call.await;
            settle(held, result)
        }
    };
}

impl<'p> Executor<'p> for &'p Direct {
    type Database = Postgres;

    /// Every row is read before the first is passed on (the store's statements read one row or
    /// one page), so the connection goes back before the caller looks at them.
    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        on_a_connection!(self, |conn| conn.fetch_many(query).try_collect::<Vec<_>>())
            .map_ok(|rows| futures_util::stream::iter(rows.into_iter().map(Ok)))
            .try_flatten_stream()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::future::BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        on_a_connection!(self, |conn| conn.fetch_optional(query)).boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> futures_util::future::BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        on_a_connection!(self, |conn| conn.prepare_with(sql, parameters)).boxed()
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> futures_util::future::BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'p: 'e,
    {
        on_a_connection!(self, |conn| conn.describe(sql)).boxed()
    }
}
