#!/usr/bin/env bash
# The rstream walkthrough, end to end on loopback, with the real binary:
#   local engine → doctor → device agent (webtty server, labelled role=codex, with a filesystem sidecar)
#   → operator list/exec/fs → forward a local web service (public URL + private dial) → codex setup --print.
# Everything lives in a temp dir and is stopped on exit. Usage: scripts/demo.sh [path/to/rstream]
set -euo pipefail

bin=$(realpath "${1:-target/release/rstream}")
source "$(dirname "$0")/lib.sh"
start_work demo

export RSTREAM_CONFIG="$work/config.yaml"
unset RSTREAM_CONTEXT RSTREAM_ENGINE RSTREAM_AUTHENTICATION_TOKEN

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A local engine (embedded default: generated CA, certificate, secret and an operator context)"
"$bin" engine serve --listen 127.0.0.1:0 --state-dir "$work/engine" >"$work/engine.log" 2>&1 &
pids+=($!)
wait_for 30 "the engine's context" grep -q 'engine: localhost:' "$RSTREAM_CONFIG"
cat "$work/engine.log"
port=$(sed -n 's/.*engine: localhost:\([0-9]*\).*/\1/p' "$RSTREAM_CONFIG" | head -1)
ca="$work/engine/ca.pem"

step "2. Is this machine ready? (doctor -o json)"
show "$bin" doctor -o json

step "3. A device opts in: webtty server labelled role=codex, with a filesystem sidecar"
mkdir -p "$work/device-files"
printf '# Demo device\nThis file lives under the server'"'"'s --fs-root.\n' >"$work/device-files/README.md"
"$bin" webtty server --rstream --name demo-pi --no-publish --label role=codex --fs-root "$work/device-files" \
  >"$work/webtty.log" 2>&1 &
pids+=($!)
wait_for 30 "the WebTTY server to register" sh -c "'$bin' webtty list --filter demo-pi -o json | grep -q demo-pi"

step "4. The operator (or Codex) finds it by label"
show "$bin" webtty list --filter 'labels.rstream.webtty.label.role=codex' -o json

step "5. Run a command on it through the private tunnel"
show "$bin" webtty exec --url rstrm://demo-pi -o text -- uname -a
show "$bin" webtty exec --url rstrm://demo-pi -- sh -c 'echo out; echo err >&2; exit 3' || echo "(exit code $? — the remote exit code)"

step "6. Files through the WebDAV sidecar"
show "$bin" webtty fs --url rstrm://demo-pi ls /
show "$bin" webtty fs --url rstrm://demo-pi read /README.md
show "$bin" webtty fs --url rstrm://demo-pi mkdir /notes
echo "written by the operator" | show "$bin" webtty fs --url rstrm://demo-pi write /notes/hello.txt
show "$bin" webtty fs --url rstrm://demo-pi ls /notes -o json
show cat "$work/device-files/notes/hello.txt"

step "7. Forward a local web service: a public URL, and a private one"
mkdir -p "$work/www" && echo "hello from the origin behind the tunnel" >"$work/www/index.html"
origin_port=$(free_port)
(cd "$work/www" && exec python3 -m http.server "$origin_port" --bind 127.0.0.1) >/dev/null 2>&1 &
pids+=($!)
wait_for 30 "the origin web server" curl -sf "http://127.0.0.1:$origin_port/"
"$bin" forward "127.0.0.1:$origin_port" --name web --label role=demo -o json >"$work/forward.log" 2>&1 &
pids+=($!)
"$bin" forward "127.0.0.1:$origin_port" --name web-private --no-publish -o json >"$work/forward-private.log" 2>&1 &
pids+=($!)
wait_for 30 "the public tunnel" grep -q '"status":"online"' "$work/forward.log"
wait_for 30 "the private tunnel" grep -q '"status":"online"' "$work/forward-private.log"
grep '"online"' "$work/forward.log" "$work/forward-private.log"
show curl -sS --cacert "$ca" "https://web.t.localhost:$port/"
printf '$ curl … https://web-private.t.localhost:%s/   # private: not routed publicly\n' "$port"
curl -sS -o /dev/null -w 'HTTP %{http_code}\n' --cacert "$ca" "https://web-private.t.localhost:$port/" || true
printf '$ printf "GET / HTTP/1.0\\r\\n\\r\\n" | %s dial rstrm://web-private\n' "$bin"
printf 'GET / HTTP/1.0\r\n\r\n' | "$bin" dial rstrm://web-private | tail -n 1
show "$bin" tunnels list

step "8. Hand it to an agent: the Codex MCP entry (printed, not written)"
show "$bin" codex setup --print

step "Done: every step above ran against the real binary on loopback."
