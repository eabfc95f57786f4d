//! The wasmtime side: engine, linker, per-invocation stores, and the `alga:storage` imports.

use crate::bindings::alga::storage::storage as wit;
use crate::bindings::{Extension, ExtensionPre};
use crate::client::{HostMetrics, RunnerConfig, StorageClient};
use alga_storage_core::{
    AtomicResponse, BulkPutResponse, ChangeOp, ChangesResponse, ErrorKind, GetManyResponse,
    ListResponse, PutResponse, Record, StorageError,
};
use anyhow::Context as _;
use serde_json::{Map, Value};
use std::path::Path;
use timestamps::rfc3339;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Who a handler runs for: seed 002's `HostExecutionContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionContext {
    /// The tenant (only used, hashed, in logs: the service derives it from the install).
    pub tenant_id: String,
    /// The extension.
    pub extension_id: String,
    /// The install the handler serves; storage calls fail without one.
    pub install_id: Option<String>,
}

impl ExecutionContext {
    /// A context for one invocation.
    pub fn new(tenant: &str, extension: &str, install: Option<&str>) -> Self {
        ExecutionContext {
            tenant_id: tenant.to_owned(),
            extension_id: extension.to_owned(),
            install_id: install.map(str::to_owned),
        }
    }
}

/// A wasmtime engine and linker with WASI and `alga:storage`, and the shared storage client.
pub struct Runner {
    engine: Engine,
    linker: Linker<HostState>,
    client: StorageClient,
}

/// A compiled, pre-linked handler component; cheap to invoke many times and concurrently.
#[derive(Clone)]
pub struct Handler {
    pre: ExtensionPre<HostState>,
    client: StorageClient,
}

/// What one invocation's store holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    ctx: ExecutionContext,
    client: StorageClient,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Runner {
    /// An engine and linker ready to load handlers.
    pub fn new(config: RunnerConfig) -> anyhow::Result<Self> {
        let engine = Engine::new(&wasmtime::Config::new())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Extension::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut HostState| state)?;
        // A handler may import wasi:keyvalue instead (the `keyvalue-extension` world): its
        // `handle` export is the same, so one linker and one pre-instance type serve both.
        crate::keyvalue_bindings::KeyvalueExtension::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state: &mut HostState| state,
        )?;
        let client = StorageClient::new(config)?;
        Ok(Runner {
            engine,
            linker,
            client,
        })
    }

    /// Compiles and pre-links the component at `path`.
    pub fn load(&self, path: impl AsRef<Path>) -> anyhow::Result<Handler> {
        let path = path.as_ref();
        let component = Component::from_file(&self.engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading component {}", path.display()))?;
        self.prepare(component)
    }

    /// Compiles and pre-links a component from its bytes.
    pub fn load_bytes(&self, bytes: &[u8]) -> anyhow::Result<Handler> {
        self.prepare(Component::new(&self.engine, bytes)?)
    }

    fn prepare(&self, component: Component) -> anyhow::Result<Handler> {
        let pre = ExtensionPre::new(self.linker.instantiate_pre(&component)?)?;
        Ok(Handler {
            pre,
            client: self.client.clone(),
        })
    }

    /// The storage client shared by every handler of this runner.
    pub fn client(&self) -> &StorageClient {
        &self.client
    }

    /// The `storage_host_*` metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.client.metrics().text()
    }

    /// The host metrics, for reading single counters.
    pub fn metrics(&self) -> &HostMetrics {
        self.client.metrics()
    }
}

impl Handler {
    /// Runs the handler's `handle` export once, in a fresh instance, for `ctx`. The outer error
    /// is a trap or a host failure; the inner result is what the handler answered.
    pub async fn invoke(
        &self,
        ctx: &ExecutionContext,
        input: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let state = HostState {
            wasi: WasiCtxBuilder::new().inherit_stderr().build(),
            table: ResourceTable::new(),
            ctx: ctx.clone(),
            client: self.client.clone(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(instance.call_handle(&mut store, input).await?)
    }
}

impl HostState {
    /// The service call of one import. The future owns what it needs (the store's data is not
    /// `Sync`, so it must not be borrowed across the await).
    pub(crate) fn call(
        &self,
        operation: &'static str,
        body: Map<String, Value>,
    ) -> impl std::future::Future<Output = Result<Value, StorageError>> + Send + 'static {
        let client = self.client.clone();
        let tenant = self.ctx.tenant_id.clone();
        let install = self.ctx.install_id.clone();
        async move {
            client
                .call(&tenant, install.as_deref(), operation, body)
                .await
        }
    }
}

impl wit::Host for HostState {
    async fn put(&mut self, r: wit::PutRequest) -> Result<wit::PutResponse, wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("key".into(), r.key.into());
        body.insert("value".into(), json_text("value", &r.value)?);
        write_options(&mut body, r.metadata, r.ttl_seconds, r.if_revision, "")?;
        let a: PutResponse = answer(self.call("put", body).await)?;
        Ok(wit::PutResponse {
            namespace: a.namespace.into(),
            key: a.key.into(),
            revision: a.revision,
            ttl_expires_at: a.ttl_expires_at.map(rfc3339),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        })
    }

    async fn get(&mut self, r: wit::GetRequest) -> Result<wit::StoredRecord, wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("key".into(), r.key.into());
        if let Some(rev) = r.if_revision {
            body.insert("ifRevision".into(), rev.into());
        }
        let a: Record = answer(self.call("get", body).await)?;
        Ok(stored(a))
    }

    async fn list(&mut self, r: wit::ListRequest) -> Result<wit::ListResponse, wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        if let Some(c) = r.cursor {
            body.insert("cursor".into(), c.into());
        }
        if let Some(l) = r.limit {
            body.insert("limit".into(), l.into());
        }
        if let Some(p) = r.key_prefix {
            body.insert("keyPrefix".into(), p.into());
        }
        if let Some(m) = r.metadata {
            body.insert("metadata".into(), json_text("metadata", &m)?);
        }
        if r.include_values {
            body.insert("includeValues".into(), true.into());
        }
        if r.include_metadata {
            body.insert("includeMetadata".into(), true.into());
        }
        let a: ListResponse = answer(self.call("list", body).await)?;
        Ok(wit::ListResponse {
            items: a
                .items
                .into_iter()
                .map(|i| wit::ListItem {
                    namespace: i.namespace.into(),
                    key: i.key.into(),
                    revision: i.revision,
                    value: i.value.map(|v| v.to_string()),
                    metadata: i.metadata.map(|m| Value::Object(m).to_string()),
                    ttl_expires_at: i.ttl_expires_at.map(rfc3339),
                    created_at: i.created_at.map(rfc3339),
                    updated_at: i.updated_at.map(rfc3339),
                })
                .collect(),
            next_cursor: a.next_cursor.map(|c| c.0),
        })
    }

    async fn delete(&mut self, r: wit::DeleteRequest) -> Result<(), wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("key".into(), r.key.into());
        if let Some(rev) = r.if_revision {
            body.insert("ifRevision".into(), rev.into());
        }
        self.call("delete", body).await.map(drop).map_err(to_wit)
    }

    async fn bulk_put(
        &mut self,
        r: wit::BulkPutRequest,
    ) -> Result<wit::BulkPutResponse, wit::StorageError> {
        let mut items = Vec::with_capacity(r.items.len());
        for (i, item) in r.items.into_iter().enumerate() {
            let at = format!("items[{i}].");
            let mut fields = Map::new();
            fields.insert("key".into(), item.key.into());
            fields.insert(
                "value".into(),
                json_text(&format!("{at}value"), &item.value)?,
            );
            write_options(
                &mut fields,
                item.metadata,
                item.ttl_seconds,
                item.if_revision,
                &at,
            )?;
            items.push(Value::Object(fields));
        }
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("items".into(), Value::Array(items));
        let a: BulkPutResponse = answer(self.call("bulkPut", body).await)?;
        Ok(wit::BulkPutResponse {
            items: a
                .items
                .into_iter()
                .map(|i| wit::BulkPutResultItem {
                    key: i.key.into(),
                    revision: i.revision,
                    ttl_expires_at: i.ttl_expires_at.map(rfc3339),
                    created_at: i.created_at.map(rfc3339),
                    updated_at: i.updated_at.map(rfc3339),
                })
                .collect(),
        })
    }
    async fn get_many(
        &mut self,
        r: wit::GetManyRequest,
    ) -> Result<wit::GetManyResponse, wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("keys".into(), r.keys.into());
        let a: GetManyResponse = answer(self.call("getMany", body).await)?;
        Ok(wit::GetManyResponse {
            items: a.items.into_iter().map(|i| i.map(stored)).collect(),
        })
    }

    async fn changes(
        &mut self,
        r: wit::ChangesRequest,
    ) -> Result<wit::ChangesResponse, wit::StorageError> {
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        body.insert("after".into(), r.after.into());
        if let Some(limit) = r.limit {
            body.insert("limit".into(), limit.into());
        }
        if let Some(prefix) = r.key_prefix {
            body.insert("keyPrefix".into(), prefix.into());
        }
        let a: ChangesResponse = answer(self.call("changes", body).await)?;
        Ok(wit::ChangesResponse {
            changes: a
                .changes
                .into_iter()
                .map(|c| wit::Change {
                    seq: c.seq,
                    key: c.key.into(),
                    op: match c.op {
                        ChangeOp::Put => wit::ChangeOp::Put,
                        ChangeOp::Delete => wit::ChangeOp::Delete,
                    },
                    revision: c.revision,
                    expired: c.expired,
                })
                .collect(),
            next_after: a.next_after,
            reset: a.reset,
        })
    }

    async fn atomic(
        &mut self,
        r: wit::AtomicRequest,
    ) -> Result<wit::AtomicResponse, wit::StorageError> {
        let checks: Vec<Value> = r
            .checks
            .into_iter()
            .map(|c| serde_json::json!({"key": c.key, "revision": c.revision}))
            .collect();
        let mut operations = Vec::with_capacity(r.operations.len());
        for (i, op) in r.operations.into_iter().enumerate() {
            let at = format!("operations[{i}].");
            let mut fields = Map::new();
            match op {
                wit::AtomicOperation::Put(p) => {
                    fields.insert("op".into(), "put".into());
                    fields.insert("key".into(), p.key.into());
                    fields.insert("value".into(), json_text(&format!("{at}value"), &p.value)?);
                    write_options(&mut fields, p.metadata, p.ttl_seconds, None, &at)?;
                }
                wit::AtomicOperation::Delete(key) => {
                    fields.insert("op".into(), "delete".into());
                    fields.insert("key".into(), key.into());
                }
                wit::AtomicOperation::Increment(inc) => {
                    fields.insert("op".into(), "increment".into());
                    fields.insert("key".into(), inc.key.into());
                    fields.insert("delta".into(), inc.delta.into());
                    write_options(&mut fields, None, inc.ttl_seconds, None, &at)?;
                }
            }
            operations.push(Value::Object(fields));
        }
        let mut body = Map::new();
        body.insert("namespace".into(), r.namespace.into());
        if !checks.is_empty() {
            body.insert("checks".into(), Value::Array(checks));
        }
        body.insert("operations".into(), Value::Array(operations));
        let a: AtomicResponse = answer(self.call("atomic", body).await)?;
        Ok(wit::AtomicResponse {
            results: a
                .results
                .into_iter()
                .map(|r| wit::AtomicResult {
                    key: r.key.into(),
                    revision: r.revision,
                    value: r.value,
                })
                .collect(),
        })
    }
}

/// A record from the service, for the guest.
fn stored(a: Record) -> wit::StoredRecord {
    wit::StoredRecord {
        namespace: a.namespace.into(),
        key: a.key.into(),
        revision: a.revision,
        value: a.value.to_string(),
        metadata: Value::Object(a.metadata).to_string(),
        ttl_expires_at: a.ttl_expires_at.map(rfc3339),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// The optional fields of a write, into the JSON body.
fn write_options(
    body: &mut Map<String, Value>,
    metadata: Option<String>,
    ttl_seconds: Option<u32>,
    if_revision: Option<u64>,
    at: &str,
) -> Result<(), wit::StorageError> {
    if let Some(m) = metadata {
        body.insert("metadata".into(), json_text(&format!("{at}metadata"), &m)?);
    }
    if let Some(t) = ttl_seconds {
        body.insert("ttlSeconds".into(), t.into());
    }
    if let Some(r) = if_revision {
        body.insert("ifRevision".into(), r.into());
    }
    Ok(())
}

/// JSON text from the guest, parsed; text that is not JSON is the guest's validation error.
fn json_text(field: &str, text: &str) -> Result<Value, wit::StorageError> {
    serde_json::from_str(text).map_err(|e| {
        to_wit(StorageError::validation(
            field,
            format!("must be JSON text: {e}"),
        ))
    })
}

/// The service's answer as the contract type `T`, or the error for the guest.
fn answer<T: serde::de::DeserializeOwned>(
    result: Result<Value, StorageError>,
) -> Result<T, wit::StorageError> {
    let value = result.map_err(to_wit)?;
    serde_json::from_value(value).map_err(|_| {
        to_wit(StorageError::new(
            alga_storage_core::ErrorCode::InternalError,
            "the storage service sent a malformed answer",
        ))
    })
}

/// A contract error as the WIT variant.
fn to_wit(e: StorageError) -> wit::StorageError {
    let info = wit::ErrorInfo {
        code: e.code().as_str().to_owned(),
        message: e.message().to_owned(),
        details: e.details().map(Value::to_string),
    };
    match e.kind() {
        ErrorKind::Unauthorized => wit::StorageError::Unauthorized(info),
        ErrorKind::NamespaceDenied => wit::StorageError::NamespaceDenied(info),
        ErrorKind::RevisionMismatch => wit::StorageError::RevisionMismatch(info),
        ErrorKind::QuotaExceeded => wit::StorageError::QuotaExceeded(info),
        ErrorKind::ValidationFailed => wit::StorageError::ValidationFailed(info),
        ErrorKind::NotFound => wit::StorageError::NotFound(info),
        ErrorKind::RateLimited => wit::StorageError::RateLimited(info),
        ErrorKind::Transport => wit::StorageError::Transport(info),
        ErrorKind::Internal => wit::StorageError::Internal(info),
    }
}

mod timestamps {
    /// A timestamp as the service writes it (RFC 3339, UTC, `Z`).
    pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}
