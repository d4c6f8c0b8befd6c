#!/usr/bin/env bash
# `make bench`: rstream side by side with its peers, on loopback only, every figure taken in the same run.
#
#   bench/run.sh [path/to/rstream]          BENCH_SECONDS=5 (per wrk run)  BENCH_RUNS=50 (exec round trips)
#   BENCH_EXTRA="LABEL=PATH …"              also runs the HTTP scenarios through each of those binaries'
#                                           `forward` (same engine), as "rstream (LABEL)": e.g. the gain of a
#                                           change (baseline=old/rstream) or of a build profile (fast=…)
#
# Scenarios (one nginx origin for everyone; peers from cross/install-deps.sh bench):
#   http      published HTTP tunnel (engine's plain listener, routed by Host) vs rathole (TLS transport) and bore,
#             wrk keep-alive and connection-per-request on a 1 KiB file, and a 10 MiB file
#   stream    one 100 MiB download through a private tunnel (`rstream dial`) vs the same through bore/rathole
#   exec      `webtty exec -- true` round trip (through the engine, and straight to a --listen server) vs
#             `ssh 127.0.0.1 true` (sshd on a loopback port, key auth), hyperfine median
#   webdav    GET/PUT of 100 MiB through the tunnel (`webtty fs download|upload`) vs a local disk read and vs
#             `rclone serve webdav` (curl), plus our sidecar straight over --listen (curl)
#   memory    VmRSS/VmHWM of each tunnel's device side and relay after the runs; binary sizes
# The table (ratios) goes to stdout and is appended to bench/results.md with the date, machine and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bin=$(realpath "${1:-target/release/rstream}")
seconds=${BENCH_SECONDS:-5}
runs=${BENCH_RUNS:-50}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

source "$repo/scripts/lib.sh"
start_work bench
chmod 755 "$work" # nginx workers (another user) read the origin's files
results="$work/results.tsv"
: >"$results"

export RSTREAM_CONFIG="$work/config.yaml"
unset RSTREAM_CONTEXT RSTREAM_ENGINE RSTREAM_AUTHENTICATION_TOKEN

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
# record SCENARIO SUBJECT METRIC VALUE: one measurement (rendered by bench/report.py).
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$results"; }
# spawn NAME COMMAND...: runs COMMAND in the background with its output in $work/NAME.log; sets $spawned.
spawn() {
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  spawned=$!
  pids+=("$spawned")
}
now_ns() { date +%s%N; }
# mb_per_s BYTES START_NS END_NS
mb_per_s() { python3 -c "import sys; b,s,e=map(int,sys.argv[1:]); print(f'{b/1e6/((e-s)/1e9):.1f}')" "$@"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

[ -x "$bin" ] || { log "no binary at $bin (make bench builds it)"; exit 1; }
for tool in nginx wrk hyperfine sshd ssh rclone bore rathole openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
    { log "missing $tool: run cross/install-deps.sh bench"; exit 1; }
done

# ---------------------------------------------------------------- origin: nginx, one worker, files in $work/www
mkdir -p "$work/www" "$work/nginx"
head -c 1024 /dev/urandom >"$work/www/1k.bin"
head -c $((10 << 20)) /dev/urandom >"$work/www/10m.bin"
head -c $((100 << 20)) /dev/urandom >"$work/www/100m.bin"
chmod -R a+rX "$work/www"
origin=$(free_port)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$origin; root $work/www; }
}
EOF
spawn nginx /usr/sbin/nginx -c "$work/nginx/nginx.conf"
wait_for 10 "nginx" curl -sf -o /dev/null "http://127.0.0.1:$origin/1k.bin"

# ---------------------------------------------------------------- rstream: engine + published + private forward
engine_port=$(free_port) engine_http=$(free_port)
spawn engine "$bin" engine serve --listen "127.0.0.1:$engine_port" --http-listen "127.0.0.1:$engine_http" \
  --state-dir "$work/engine"
engine_pid=$spawned
wait_for 30 "the engine's context" grep -q "engine: localhost:$engine_port" "$RSTREAM_CONFIG"
spawn forward "$bin" forward "127.0.0.1:$origin" --name bench -o json
forward_pid=$spawned
extras=()
for extra in ${BENCH_EXTRA:-}; do
  label=${extra%%=*}
  spawn "forward-$label" "$(realpath "${extra#*=}")" forward "127.0.0.1:$origin" --name "bench-$label" -o json
  wait_for 30 "the $label tunnel" curl -sf -o /dev/null -H "Host: bench-$label.t.localhost" \
    "http://127.0.0.1:$engine_http/1k.bin"
  extras+=("$label")
done
spawn forward-private "$bin" forward "127.0.0.1:$origin" --name bench-private --no-publish -o json
wait_for 30 "the published tunnel" curl -sf -o /dev/null -H 'Host: bench.t.localhost' \
  "http://127.0.0.1:$engine_http/1k.bin"
wait_for 30 "the private tunnel" grep -q '"status":"online"' "$work/forward-private.log"

# ---------------------------------------------------------------- bore (plain TCP)
bore_port=$(free_port)
spawn bore-server env RUST_LOG=warn bore server --bind-addr 127.0.0.1 --min-port "$bore_port" --max-port "$bore_port" \
  --secret bench
bore_server_pid=$spawned
wait_for 10 "bore server" bash -c 'exec 3<>/dev/tcp/127.0.0.1/7835'
spawn bore-local env RUST_LOG=warn bore local "$origin" --local-host 127.0.0.1 --to 127.0.0.1 --port "$bore_port" \
  --secret bench
bore_local_pid=$spawned
wait_for 20 "the bore tunnel" curl -sf -o /dev/null "http://127.0.0.1:$bore_port/1k.bin"

# ---------------------------------------------------------------- rathole (TLS transport)
mkdir -p "$work/rathole"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$work/rathole/key.pem" -out "$work/rathole/cert.pem" 2>/dev/null
openssl pkcs12 -export -out "$work/rathole/identity.pfx" -inkey "$work/rathole/key.pem" \
  -in "$work/rathole/cert.pem" -passout pass:bench
rathole_ctl=$(free_port) rathole_port=$(free_port)
cat >"$work/rathole/server.toml" <<EOF
[server]
bind_addr = "127.0.0.1:$rathole_ctl"
[server.transport]
type = "tls"
[server.transport.tls]
pkcs12 = "$work/rathole/identity.pfx"
pkcs12_password = "bench"
[server.services.web]
token = "bench"
bind_addr = "127.0.0.1:$rathole_port"
EOF
cat >"$work/rathole/client.toml" <<EOF
[client]
remote_addr = "localhost:$rathole_ctl"
[client.transport]
type = "tls"
[client.transport.tls]
trusted_root = "$work/rathole/cert.pem"
hostname = "localhost"
[client.services.web]
token = "bench"
local_addr = "127.0.0.1:$origin"
EOF
spawn rathole-server env RUST_LOG=warn rathole --server "$work/rathole/server.toml"
rathole_server_pid=$spawned
spawn rathole-client env RUST_LOG=warn rathole --client "$work/rathole/client.toml"
rathole_client_pid=$spawned
wait_for 20 "the rathole tunnel" curl -sf -o /dev/null "http://127.0.0.1:$rathole_port/1k.bin"

# ---------------------------------------------------------------- 1. published HTTP through each tunnel (wrk)
# wrk_run SCENARIO SUBJECT URL CONNS [wrk args...]: req/s, p50/p99 (ms), MB/s; errors make the run invalid.
wrk_run() {
  local scenario=$1 subject=$2 url=$3 conns=$4; shift 4
  local out="$work/wrk-$scenario-$subject.txt"
  wrk -t2 -c"$conns" -d"${seconds}s" --latency "$@" "$url" >"$out" 2>&1 || true
  python3 "$repo/bench/wrk_parse.py" "$out" | while IFS=$'\t' read -r metric value; do
    record "$scenario" "$subject" "$metric" "$value"
  done
}
# http_round SCENARIO PATH CONNS [wrk args...]: the same load against the origin and through every tunnel.
http_round() {
  local scenario=$1 path=$2 conns=$3; shift 3
  log "http: $scenario"
  wrk_run "$scenario" direct "http://127.0.0.1:$origin$path" "$conns" "$@"
  wrk_run "$scenario" rstream "http://127.0.0.1:$engine_http$path" "$conns" -H 'Host: bench.t.localhost' "$@"
  for label in ${extras[@]+"${extras[@]}"}; do
    wrk_run "$scenario" "rstream ($label)" "http://127.0.0.1:$engine_http$path" "$conns" \
      -H "Host: bench-$label.t.localhost" "$@"
  done
  wrk_run "$scenario" rathole "http://127.0.0.1:$rathole_port$path" "$conns" "$@"
  wrk_run "$scenario" bore "http://127.0.0.1:$bore_port$path" "$conns" "$@"
}
http_round "1 KiB keep-alive, 64 conns" /1k.bin 64
http_round "1 KiB new connection per request, 16 conns" /1k.bin 16 -H 'Connection: close'
http_round "10 MiB keep-alive, 4 conns" /10m.bin 4

# ---------------------------------------------------------------- 2. one 100 MiB stream through each tunnel
# best_of_3 SCENARIO SUBJECT EXPECTED_BYTES COMMAND...: MB/s of the fastest of three runs of COMMAND (its stdout
# is counted and must be at least EXPECTED_BYTES).
best_of_3() {
  local scenario=$1 subject=$2 expect=$3; shift 3
  local best=0 i start end bytes rate
  for i in 1 2 3; do
    start=$(now_ns)
    bytes=$("$@" | wc -c)
    end=$(now_ns)
    ((bytes >= expect)) || { log "$scenario/$subject: only $bytes bytes"; record "$scenario" "$subject" "MB/s" "error"; return; }
    rate=$(mb_per_s "$bytes" "$start" "$end")
    best=$(python3 -c "print(max(float('$best'), float('$rate')))")
  done
  record "$scenario" "$subject" "MB/s" "$best"
}
# dial_get: the 100 MiB file through `rstream dial`. Its stdin stays open (a FIFO this shell holds): nginx aborts a
# response when the client half-closes, which `dial` does at stdin EOF, as `nc -N` would.
mkfifo "$work/dial-request"
dial_get() {
  exec 9<>"$work/dial-request"
  printf 'GET /100m.bin HTTP/1.0\r\nHost: x\r\n\r\n' >&9
  "$bin" dial rstrm://bench-private <&9
  exec 9>&-
}
log "stream: 100 MiB"
stream="100 MiB download, one stream"
best_of_3 "$stream" direct $((100 << 20)) curl -s "http://127.0.0.1:$origin/100m.bin"
best_of_3 "$stream" rstream $((100 << 20)) dial_get
best_of_3 "$stream" rathole $((100 << 20)) curl -s "http://127.0.0.1:$rathole_port/100m.bin"
best_of_3 "$stream" bore $((100 << 20)) curl -s "http://127.0.0.1:$bore_port/100m.bin"

# ---------------------------------------------------------------- 3. exec round trip vs ssh
log "exec: webtty server (through the engine and --listen) and sshd"
mkdir -p "$work/fsroot"
cp "$work/www/100m.bin" "$work/fsroot/100m.bin"
spawn webtty "$bin" webtty server --rstream --name bench-tty --no-publish --fs-root "$work/fsroot" \
  --fs-max-upload-size $((256 << 20))
webtty_pid=$spawned
wait_for 30 "the webtty server" sh -c "'$bin' webtty list --filter name=bench-tty -o json | grep -q bench-tty"
webtty_idle_rss=$(rss_kib "$webtty_pid")
listen_port=$(free_port)
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/webtty.token"
spawn webtty-listen "$bin" webtty server --listen "127.0.0.1:$listen_port" --auth-token-file "$work/webtty.token" \
  --fs-root "$work/fsroot" --fs-max-upload-size $((256 << 20))
wait_for 10 "the --listen webtty server" curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$work/webtty.token")" \
  "http://127.0.0.1:$listen_port/fs/"

mkdir -p "$work/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/ssh/client_key"
cp "$work/ssh/client_key.pub" "$work/ssh/authorized_keys"
ssh_port=$(free_port)
cat >"$work/ssh/sshd_config" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $work/ssh/host_key
AuthorizedKeysFile $work/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile $work/ssh/sshd.pid
EOF
spawn sshd /usr/sbin/sshd -D -e -f "$work/ssh/sshd_config"
ssh_cmd="ssh -F none -p $ssh_port -i $work/ssh/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
-o BatchMode=yes -o LogLevel=ERROR $(id -un)@127.0.0.1 true"
wait_for 10 "sshd" $ssh_cmd
# hyper_median SCENARIO SUBJECT COMMAND: hyperfine's median in ms over $runs runs.
hyper_median() {
  local json="$work/hyperfine-$2.json"
  hyperfine -N --runs "$runs" --warmup 3 --export-json "$json" "$3" >/dev/null 2>&1 ||
    { record "$1" "$2" "median ms" "error"; return; }
  record "$1" "$2" "median ms" "$(python3 -c "import json,sys; print(f'{json.load(open(sys.argv[1]))[\"results\"][0][\"median\"]*1e3:.2f}')" "$json")"
}
exec_rt="exec round trip (true)"
hyper_median "$exec_rt" "rstream (--listen)" \
  "$bin webtty exec --url ws://127.0.0.1:$listen_port/ --auth-token-file $work/webtty.token -- true"
hyper_median "$exec_rt" rstream "$bin webtty exec --url rstrm://bench-tty -- true"
hyper_median "$exec_rt" ssh "$ssh_cmd"

# ---------------------------------------------------------------- 4. WebDAV 100 MiB
log "webdav: 100 MiB GET/PUT"
dav="WebDAV 100 MiB"
timed_mb() { # timed_mb SCENARIO SUBJECT METRIC BYTES COMMAND...
  local scenario=$1 subject=$2 metric=$3 bytes=$4 start end; shift 4
  start=$(now_ns)
  if "$@" >/dev/null 2>&1; then end=$(now_ns); record "$scenario" "$subject" "$metric" "$(mb_per_s "$bytes" "$start" "$end")"
  else record "$scenario" "$subject" "$metric" "error"; fi
}
size=$((100 << 20))
cat "$work/fsroot/100m.bin" >/dev/null # warm the page cache for everyone
timed_mb "$dav" "disk (cat)" "GET MB/s" "$size" cat "$work/fsroot/100m.bin"
timed_mb "$dav" rstream "GET MB/s" "$size" "$bin" webtty fs --url rstrm://bench-tty download /100m.bin "$work/dl.bin"
cmp -s "$work/dl.bin" "$work/fsroot/100m.bin" || { log "webdav download corrupt"; exit 1; }
timed_mb "$dav" rstream "PUT MB/s" "$size" "$bin" webtty fs --url rstrm://bench-tty upload "$work/dl.bin" /up.bin
cmp -s "$work/fsroot/up.bin" "$work/fsroot/100m.bin" || { log "webdav upload corrupt"; exit 1; }
auth=(-H "Authorization: Bearer $(cat "$work/webtty.token")")
timed_mb "$dav" "rstream (--listen)" "GET MB/s" "$size" curl -sf "${auth[@]}" -o /dev/null \
  "http://127.0.0.1:$listen_port/fs/100m.bin"
timed_mb "$dav" "rstream (--listen)" "PUT MB/s" "$size" curl -sf "${auth[@]}" -T "$work/dl.bin" \
  "http://127.0.0.1:$listen_port/fs/up2.bin"
mkdir -p "$work/rclone-root"
cp "$work/dl.bin" "$work/rclone-root/100m.bin"
rclone_port=$(free_port)
spawn rclone rclone serve webdav "$work/rclone-root" --addr "127.0.0.1:$rclone_port"
wait_for 20 "rclone serve webdav" curl -sf -o /dev/null "http://127.0.0.1:$rclone_port/"
timed_mb "$dav" rclone "GET MB/s" "$size" curl -sf -o /dev/null "http://127.0.0.1:$rclone_port/100m.bin"
timed_mb "$dav" rclone "PUT MB/s" "$size" curl -sf -T "$work/dl.bin" "http://127.0.0.1:$rclone_port/up.bin"

# ---------------------------------------------------------------- 5. memory and sizes
device="device side, peak RSS after the runs"
record "$device" "rstream forward" "peak KiB" "$(hwm_kib "$forward_pid")"
record "$device" "rathole client" "peak KiB" "$(hwm_kib "$rathole_client_pid")"
record "$device" "bore local" "peak KiB" "$(hwm_kib "$bore_local_pid")"
relay="relay, peak RSS after the runs"
record "$relay" "rstream engine" "peak KiB" "$(hwm_kib "$engine_pid")"
record "$relay" "rathole server" "peak KiB" "$(hwm_kib "$rathole_server_pid")"
record "$relay" "bore server" "peak KiB" "$(hwm_kib "$bore_server_pid")"
record "webtty server RSS" "rstream webtty server" "idle KiB" "$webtty_idle_rss"
record "webtty server RSS" "rstream webtty server" "peak KiB (exec + 100 MiB WebDAV)" "$(hwm_kib "$webtty_pid")"
sizes="binary size (KiB)"
record "$sizes" "rstream (all roles)" "KiB" $(($(stat -c %s "$bin") / 1024))
device_image=$(ls -t "$repo"/target/cross/*/x86_64-unknown-linux-musl/release/rstream 2>/dev/null | head -1 || true)
[ -n "$device_image" ] && record "$sizes" "rstream device image (x86_64 musl)" "KiB" $(($(stat -c %s "$device_image") / 1024))
record "$sizes" rathole "KiB" $(($(stat -c %s "$(command -v rathole)") / 1024))
record "$sizes" bore "KiB" $(($(stat -c %s "$(command -v bore)") / 1024))

python3 "$repo/bench/report.py" "$results" --commit "$(git -C "$repo" rev-parse --short HEAD)" \
  --append "$repo/bench/results.md"
