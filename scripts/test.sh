#!/usr/bin/env bash
# One command: install whatever is missing, start what must run, and run every test.
#
#   ./scripts/test.sh
#
# Idempotent and quiet when everything is present. On a fresh Debian machine it installs the
# wasm targets (rustup); wasm-bindgen-cli at the exact Cargo.lock version and wasm-pack
# (crates.io); Chromium + chromedriver (apt); Node's packages of the seed client and the example,
# and Binaryen's wasm-opt (npm); schemathesis (PyPI, in target/tools/python); and Postgres (apt)
# when none answers on $DATABASE_URL or 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
lock_version() { # the version of a package in Cargo.lock, if it is there
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# 1. Rust targets for the wasm builds.
for target in wasm32-unknown-unknown wasm32-wasip2; do
  if ! rustup target list --installed | grep -qx "$target"; then
    say "adding rust target $target"
    rustup target add "$target" >/dev/null
  fi
done

# 2. Browser tooling: wasm-bindgen-cli at the exact Cargo.lock version and wasm-pack (crates.io,
#    built once per machine), Chromium + chromedriver (apt). wasm-pack finds wasm-bindgen on PATH
#    and runs no wasm-opt (see sdk-web/Cargo.toml), so it never downloads a binary.
want=$(lock_version wasm-bindgen)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (matches Cargo.lock; built once, a few minutes)"
  # --locked pins the CLI's own dependencies; if the registry lacks one of them, resolve anew.
  cargo install -q wasm-bindgen-cli --version "=$want" --locked 2>/dev/null ||
    cargo install -q wasm-bindgen-cli --version "=$want"
fi
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack (built once, a few minutes)"
  cargo install -q wasm-pack --locked 2>/dev/null || cargo install -q wasm-pack
fi
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  say "installing chromium and chromium-driver"
  apt_install chromium chromium-driver
fi

# 3. curl and Node (the seed-client tests run the seed's curl lines and its TypeScript client),
#    the pinned TypeScript compiler from package-lock.json, and the pinned Binaryen and esbuild
#    (npm) that scripts/web-package.sh runs.
command -v curl >/dev/null || { say "installing curl"; apt_install curl; }
command -v node >/dev/null && command -v npm >/dev/null || { say "installing nodejs and npm"; apt_install nodejs npm; }
if [ ! -x tests/snapshot/node_modules/.bin/tsc ]; then
  say "installing the seed client's TypeScript compiler (npm ci)"
  npm ci --prefix tests/snapshot --no-audit --no-fund --loglevel=error >/dev/null
fi
if [ ! -x sdk-web/tools/node_modules/.bin/wasm-opt ] || [ ! -x sdk-web/tools/node_modules/.bin/esbuild ] \
  || [ ! -f sdk-web/tools/node_modules/eventsource-parser/package.json ]; then
  say "installing Binaryen's wasm-opt and esbuild for the browser package (npm ci, sdk-web/tools)"
  npm ci --prefix sdk-web/tools --no-audit --no-fund --loglevel=error >/dev/null
fi

# 4. Postgres: use $DATABASE_URL if it names a Postgres that answers, else the local server,
#    else install one. (The embedded SQLite backend needs nothing.)
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) ;;
  *) export DATABASE_URL="postgres://postgres@127.0.0.1:5432/test" ;;
esac
pg_answers() { psql "$DATABASE_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! command -v psql >/dev/null; then
  say "installing postgresql-client"
  apt_install postgresql-client
fi
if ! pg_answers; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    say "installing postgresql"
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q '^# alga-storage tests' "$hba"; then
    say "allowing trusted local TCP connections for the tests ($hba)"
    as_root sh -c "printf '%s\n' '# alga-storage tests' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' | cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
  fi
  say "starting postgresql $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 30); do
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  db=${DATABASE_URL##*/}; db=${db%%\?*}
  if ! psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qc "CREATE DATABASE \"$db\""
  fi
  pg_answers || { echo "setup: Postgres still does not answer on $DATABASE_URL" >&2; exit 1; }
fi

# The fault test starts a throwaway cluster of its own with initdb and pg_ctl.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing postgresql (initdb and pg_ctl, for the fault test's own cluster)"
  apt_install postgresql
fi

# 5. cargo-nextest (on the machine image; built from crates.io where it is missing).
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest (built once, a few minutes)"
  cargo install -q cargo-nextest --locked
fi

# 6. schemathesis (PyPI, the version in tests/schemathesis/requirements.txt) in a virtualenv of
#    the project's own, for the OpenAPI test.
venv=target/tools/python
want=$(sed -n 's/^schemathesis==//p' tests/schemathesis/requirements.txt)
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$want" ]; then
  command -v python3 >/dev/null || { say "installing python3"; apt_install python3 python3-venv; }
  python3 -m venv --help >/dev/null 2>&1 || { say "installing python3-venv"; apt_install python3-venv; }
  say "installing schemathesis $want (PyPI) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/schemathesis/requirements.txt
fi

# 7. The contract crate builds for both wasm targets.
for target in wasm32-unknown-unknown wasm32-wasip2; do
  cargo build -q -p alga-storage-core --target "$target"
  echo "wasm: alga-storage-core builds for $target"
done

# 7b. What the docs' commands build (the server, the benchmark, the runner host, the example
#     components), built now with the whole machine: the docs test then runs those commands as
#     written, warm, instead of compiling them while the rest of the suite runs.
cargo build -q -p alga-storage-server --bins
cargo build -q -p alga-storage-runner
cargo build -q --profile guest --target wasm32-wasip2 \
  -p alga-storage-example-counter -p alga-storage-example-keyvalue
echo "build: what the docs' commands run is built"

# 8. Every test: unit, property, end-to-end, browser and doc tests. cargo-nextest runs each test
#    in its own process (so a nested cargo build of the wasm parts never waits on a lock). The
#    end-to-end binary runs twice, compiled once: on Postgres, then on embedded SQLite
#    (`ALGA_TEST_BACKEND` is read at run time). The last line sums them up.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
export NEXTEST_HIDE_PROGRESS_BAR=1 NEXTEST_STATUS_LEVEL=pass NEXTEST_FINAL_STATUS_LEVEL=fail
echo "== every test, end-to-end on postgres"
cargo nextest run --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
echo "== end-to-end on sqlite (the same binary)"
ALGA_TEST_BACKEND=sqlite cargo nextest run --workspace --all-targets --no-fail-fast \
  -E 'binary_id(alga-storage-tests::e2e)' 2>&1 | tee -a "$log"
echo "== doc tests"
cargo test --workspace --doc 2>&1 | tee -a "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     / Summary \[/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
