//! The end-to-end suite: one test binary, so the server, sqlx, wasmtime and axum are linked once.
//! Every test starts the real server on the backend `ALGA_TEST_BACKEND` names (read at run time:
//! `postgres`, the default, or `sqlite`), so the same compiled binary runs on both backends.

mod atomic;
mod audit;
mod auth_and_errors;
mod browser;
mod changes;
mod citus_router;
mod concurrency;
mod conformance;
mod docs;
mod embedded;
mod example_app;
mod faults;
mod governance;
mod guest;
mod instances;
mod isolation;
mod keyvalue;
mod migrations;
mod openapi;
mod quotas;
mod schema;
mod schemathesis;
mod seed_003;
mod slow_clients;
mod snapshot;
mod strict_input;
mod transfer;
mod ttl;
