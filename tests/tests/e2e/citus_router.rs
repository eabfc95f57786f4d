//! Every statement the store sends stays a single-tenant router query on Citus (DESIGN § "Scale
//! past one machine"): the server runs on a cluster of the test's own with
//! `pg_stat_statements`, a workload covers every operation of every surface (the conformance
//! corpus through REST and the runner, the change feed, snapshots, admin, export, the
//! sweeper), and then every statement in `pg_stat_statements` that touches a table distributed
//! by `tenant_id` must name one tenant: `tenant_id = $n` (or insert rows of the tenant `$n`).
//! The few statements that span tenants by design are listed, each with why.

use alga_storage_server::config::{Backend, Secret};
use alga_storage_tests::cluster::Cluster;
use alga_storage_tests::conformance::{assert_corpus, Surface};
use alga_storage_tests::{Tenant, TestServer, Watch};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// The tables distributed by `tenant_id` (the others, installs and quota defaults, are
/// reference tables, on every node).
const DISTRIBUTED: [&str; 5] = [
    "ext_storage_records",
    "ext_storage_namespaces",
    "ext_storage_schemas",
    "ext_storage_audit",
    "ext_storage_tenants",
];

/// Statements that span tenants by design, recognised by a fragment of their text.
const ACROSS_TENANTS: [(&str, &str); 5] = [
    (
        "ORDER BY ttl_expires_at LIMIT",
        "the background sweeper: expired records of every tenant, oldest first (a multi-shard maintenance statement, bounded)",
    ),
    (
        "a.ns_seq <= n.version -",
        "the sweeper pruning the change log of every tenant past its retention (bounded)",
    ),
    (
        "FROM ext_storage_quota_defaults",
        "the quota defaults, a reference table read with a tenant's overrides",
    ),
    (
        "SET ttl_expires_at = now() -",
        "this test moving expiries into the past",
    ),
    (
        "DROP SCHEMA",
        "the test harness's own clean-up",
    ),
];

/// Whether a (normalised) statement names one tenant for the distributed tables it touches.
fn names_one_tenant(query: &str) -> bool {
    let q = query.replace(['\n', '\t'], " ");
    let compact: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    let filtered = compact.contains("tenant_id = $");
    // An insert of rows whose tenant is a parameter: `INSERT INTO t (tenant_id, …) VALUES ($n`
    // or `… SELECT $n, …`.
    let inserted = compact.contains("(tenant_id,")
        && (compact.contains("VALUES ($") || compact.contains("SELECT $"));
    filtered || inserted
}

#[test]
fn the_check_itself_tells_router_statements_from_others() {
    assert!(names_one_tenant(
        "SELECT value FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2"
    ));
    assert!(names_one_tenant(
        "INSERT INTO ext_storage_audit (tenant_id, principal) SELECT $1, $2 FROM w"
    ));
    assert!(!names_one_tenant(
        "SELECT count(*) FROM ext_storage_records WHERE namespace = $1"
    ));
    assert!(!names_one_tenant(
        "DELETE FROM ext_storage_audit WHERE seq < $1"
    ));
}

#[tokio::test]
async fn every_statement_on_a_distributed_table_names_one_tenant() {
    if alga_storage_tests::backend() != Backend::Postgres {
        println!("router queries are a Postgres (Citus) matter: nothing to check on SQLite");
        return;
    }
    let cluster = Cluster::start_with(
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=5000",
    );
    let admin = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&admin)
        .await
        .unwrap();
    let s = TestServer::start_with(|c| {
        c.database_url = Secret::new(cluster.url());
        c.sweep_interval_seconds = 1;
        c.change_retention.seconds = 0;
        c.change_retention.changes = 1;
    })
    .await;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&admin)
        .await
        .unwrap();

    // Every operation of the contract, through both HTTP surfaces.
    assert_corpus(&s, Surface::Rest).await;
    assert_corpus(&s, Surface::Runner).await;
    // The change feed, snapshots, schemas, quotas, usage, audit, export, revocation, expiry.
    let t: Tenant = s
        .tenant(json!([{"namespace": "app", "access": ["read", "write"]}]))
        .await;
    let put = |key: &'static str, body: serde_json::Value| {
        let (s, t) = (&s, &t);
        async move {
            s.rest(t, Method::PUT, &format!("/app/{key}"), &[], Some(body))
                .await
        }
    };
    let mut watch = Watch::open(&s.base, &t.token, "/app:watch?includeValues=true", None)
        .await
        .unwrap();
    assert_eq!(
        put("a", json!({"value": 1, "ttlSeconds": 60})).await.status,
        200
    );
    assert!(watch.next(Duration::from_secs(5)).await.is_some());
    sqlx::query("UPDATE ext_storage_records SET ttl_expires_at = now() - interval '1 second' WHERE ttl_expires_at IS NOT NULL")
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(put("b", json!({"value": 2})).await.status, 200);
    let page = s
        .rest(&t, Method::GET, "/app:changes?limit=5", &[], None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let patch = s
        .patch_current(&t, "app", json!([{"op": "set", "key": "c", "value": 3}]))
        .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    let tenant = t.tenant;
    for (method, path, body) in [
        (
            Method::PUT,
            format!("/tenants/{tenant}/namespaces/app/schema"),
            Some(json!({"type": "object"})),
        ),
        (
            Method::DELETE,
            format!("/tenants/{tenant}/namespaces/app/schema"),
            None,
        ),
        (
            Method::PUT,
            format!("/tenants/{tenant}/quotas"),
            Some(json!({"maxKeysPerNamespace": 100})),
        ),
        (Method::GET, format!("/tenants/{tenant}/usage"), None),
        (
            Method::GET,
            format!("/tenants/{tenant}/audit?limit=10"),
            None,
        ),
        (Method::GET, format!("/tenants/{tenant}/export"), None),
        (
            Method::DELETE,
            format!("/tenants/{tenant}/installs/{}", t.install),
            None,
        ),
    ] {
        let answer = s.admin(method.clone(), &path, body).await;
        assert!(
            answer.status.is_success(),
            "{method} {path}: {}",
            answer.body
        );
    }
    // One pass of the sweeper (expired records, change-log retention).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let statements: Vec<(String, i64)> = sqlx::query_as(
        "SELECT query, calls FROM pg_stat_statements WHERE query ILIKE '%ext_storage_%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(
        statements.len() > 30,
        "only {} statements seen",
        statements.len()
    );
    let mut across = Vec::new();
    let mut wrong = Vec::new();
    for (query, calls) in &statements {
        let touches = DISTRIBUTED.iter().any(|table| query.contains(table));
        if !touches
            || query.trim_start().to_uppercase().starts_with("CREATE")
            || query.contains("_sqlx_migrations")
        {
            continue;
        }
        if let Some((_, why)) = ACROSS_TENANTS.iter().find(|(text, _)| query.contains(text)) {
            across.push(format!("{calls:>5} × {why}"));
            continue;
        }
        if !names_one_tenant(query) {
            wrong.push(query.clone());
        }
    }
    println!(
        "{} statements on distributed tables; across tenants by design:\n{}",
        statements.len(),
        across.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "statements that do not name one tenant (multi-shard on Citus):\n{}",
        wrong.join("\n---\n")
    );
}
