#!/usr/bin/env bash
# The curl sequence of seed 003, run against a live server: preflight (204), anonymous GET (200,
# with anonymous read configured), PATCH create (201), PATCH conflict (412). The commands are the
# seed's own, with its address replaced by $BASE. Needs BASE and JWT in the environment.
set -euo pipefail
: "${BASE:?}" "${JWT:?}"
cd "$(mktemp -d)"
# The seed's creation payload.
cat > ops.json <<'JSON'
[
  {"op":"set","key":"foo","value":"bar"}
]
JSON

expect() { # expect STATUS LABEL < response
  local want=$1 label=$2 response status
  response=$(cat)
  # (No `printf | head` here: head may exit before printf is done, and under pipefail the
  # SIGPIPE would end the script without a word.)
  status=$(awk 'NR == 1 { print $2; exit }' <<<"$response")
  if [ "$status" != "$want" ]; then
    printf 'seed 003 %s: expected %s, got %s\n%s\n' "$label" "$want" "$status" "$response" >&2
    exit 1
  fi
  printf 'seed 003 %s: %s\n' "$label" "$status"
  printf '%s\n' "$response" > "$label.txt"
}

curl -i -X OPTIONS "$BASE/api/storage?ns=smoke" \
  -H "Origin: http://localhost:3000" \
  -H "Access-Control-Request-Method: PATCH" \
  -H "Access-Control-Request-Headers: authorization, if-match, content-type, x-thesara-app-id" | expect 204 preflight

curl -i "$BASE/api/storage?ns=smoke" | expect 200 get

curl -i -X PATCH "$BASE/api/storage?ns=smoke" \
  -H "Authorization: Bearer $JWT" \
  -H "If-Match: 0" \
  -H "X-Thesara-App-Id: smoke" \
  -H "Content-Type: application/json" \
  --data-binary @ops.json | expect 201 patch-create

curl -i -X PATCH "$BASE/api/storage?ns=smoke" \
  -H "Authorization: Bearer $JWT" \
  -H "If-Match: 0" \
  -H "X-Thesara-App-Id: smoke" \
  -H "Content-Type: application/json" \
  --data-binary @ops.json | expect 412 patch-conflict

grep -qi '^etag: "0"' get.txt || { echo 'seed 003 get: expected ETag "0" on the empty namespace' >&2; exit 1; }
created=$(grep -i '^etag:' patch-create.txt | tr -d '\r' | awk '{print $2}')
current=$(grep -i '^etag:' patch-conflict.txt | tr -d '\r' | awk '{print $2}')
[ -n "$created" ] && [ "$created" = "$current" ] || { echo "seed 003: the 412 must carry the current ETag ($created), got $current" >&2; exit 1; }
grep -q '"foo":"bar"' patch-create.txt || { echo 'seed 003 patch-create: the body must be the new snapshot' >&2; exit 1; }
echo "seed 003 curl sequence: ok"
