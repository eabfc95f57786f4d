//! Harness shared by the end-to-end tests: starts the real server against real Postgres.
