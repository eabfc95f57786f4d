#!/usr/bin/env bash
# The load benchmark with its baselines, in one command:
#
#   ./scripts/bench.sh --records 100000 --seconds 5
#
# Installs what it compares against when missing (apt): pgbench (the database itself, driven
# with the same statements) and wrk (a light HTTP client, so the figures are the server's).
# Then runs alga-storage-bench from the release build; every argument is the benchmark's own
# (--help lists them). ALGA_BENCH_PROFILE picks another cargo profile (the docs test uses dev).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v pgbench >/dev/null || missing+=(postgresql-client)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec cargo run -q --profile "${ALGA_BENCH_PROFILE:-release}" -p alga-storage-server --bin alga-storage-bench -- "$@"
