#!/usr/bin/env bash
# Runs schemathesis (pinned in requirements.txt, installed in a venv under target/) against a
# live debug natter: a temp data dir, a free port, limits high enough for a fuzzer, and a
# registered user's token on every request. Checks: no 5xx, every status and content type
# documented, every body matching its schema. Bounded: --max-examples and a time budget.
# Operations that would end the run's own session (logout, sign out everywhere, delete the
# account, change the password) are left out. `/hooks/{secret}` is fuzzed first on its own,
# with the secret of a webhook the script adds (schemathesis.toml).
#   bash tests/api/schemathesis.sh            (builds target/debug/natter if missing)
# Env: NATTER_BIN (the binary), SCHEMATHESIS_MAX_EXAMPLES (20), SCHEMATHESIS_MAX_TIME (150 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${NATTER_BIN:-$TARGET/debug/natter}"
VENV="$TARGET/api-venv"

if [ ! -x "$VENV/bin/schemathesis" ] || ! cmp -s tests/api/requirements.txt "$VENV/requirements.txt"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/api/requirements.txt
  cp tests/api/requirements.txt "$VENV/requirements.txt"
fi
[ -x "$BIN" ] || cargo build -q -p natter-server --bin natter

DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --log warn \
  --allow-guests true --rate-per-sec 100000 --rate-burst 100000 \
  --login-per-minute-per-address 1000000 --login-per-minute-per-user 1000000 \
  --register-per-hour-per-address 1000000 --guest-per-hour-per-address 1000000 \
  --search-per-minute 1000000 --api-per-minute 1000000 --room-create-per-minute 100000 \
  --hash-waiting-per-address 100000 --max-bots-per-user 10000 >"$DATA/natter.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT"
# Ready when /healthz answers (the process must not have died); then a user's token, and the
# secret of a webhook into general (room 1) that the user, the server's admin, adds: with it
# schemathesis reaches `/hooks/{secret}` itself, not only its 404 (schemathesis.toml).
CREDS=$(python3 - "$BASE" "$PID" <<'PY'
import json, os, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/healthz", timeout=1).read()
        break
    except OSError:
        os.kill(pid, 0)  # raises if natter has exited
        time.sleep(0.1)
req = urllib.request.Request(base + "/api/register", method="POST",
    data=json.dumps({"username": "fuzzer", "password": "correct horse battery"}).encode(),
    headers={"Content-Type": "application/json"})
token = json.load(urllib.request.urlopen(req, timeout=10))["token"]
req = urllib.request.Request(base + "/api/rooms/1/webhooks", method="POST",
    data=json.dumps({"name": "fuzz"}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
url = json.load(urllib.request.urlopen(req, timeout=10))["url"]
print(token, url.rsplit("/", 1)[-1])
PY
) || { cat "$DATA/natter.log" >&2; exit 1; }
read -r TOKEN NATTER_HOOK_SECRET <<<"$CREDS"
export NATTER_HOOK_SECRET

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
SEED="${SCHEMATHESIS_SEED:-7}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-20}"

# First the webhook alone, with its real secret (the main run below may delete its bot: the
# user is an admin), then a positive signal that a post went through it: its last use is set.
"$VENV/bin/schemathesis" --config-file tests/api/schemathesis.toml run "$BASE/api/openapi.json" \
  --checks "$CHECKS" --include-path '/hooks/{secret}' \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" --no-color
python3 - "$BASE" "$TOKEN" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
req = urllib.request.Request(base + "/api/rooms/1/webhooks",
    headers={"Authorization": "Bearer " + token})
hooks = json.load(urllib.request.urlopen(req, timeout=10))["webhooks"]
if not any(h["name"] == "fuzz" and h.get("last_used_at") for h in hooks):
    sys.exit("schemathesis never posted through the webhook: /hooks/{secret} was not reached")
print("the webhook was posted through by schemathesis")
PY

# Then every operation (general now holds the webhook's messages for the reads to page).
"$VENV/bin/schemathesis" run "$BASE/api/openapi.json" \
  --checks "$CHECKS" \
  --header "Authorization: Bearer $TOKEN" \
  --exclude-operation-id logout --exclude-operation-id logout_all \
  --exclude-operation-id logout_all_sessions --exclude-operation-id revoke_session \
  --exclude-operation-id change_password --exclude-operation-id delete_account \
  --max-examples "$MAX_EXAMPLES" --max-time "${SCHEMATHESIS_MAX_TIME:-150}" \
  --seed "$SEED" --workers 2 --no-color
