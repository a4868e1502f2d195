#!/usr/bin/env bash
# Container packaging check, end to end on a real Docker engine:
#   1. builds the release binary on the host and packages it with docker/Dockerfile (--target
#      prebuilt), then checks the image (non-root user, volume, ports, stop signal);
#   2. starts docker/compose.yaml's three brokers and checks every published port binds
#      127.0.0.1 only;
#   3. waits for the brokers to be ready, then from the host with kcat: metadata shows three
#      brokers, a produce (acks=all) / consume round trip on a replicated topic;
#   4. kills (SIGKILL) the leader of partition 0 and checks the cluster keeps serving: new
#      leaders, produce with acks=all, everything readable;
#   5. restarts it, waits until it is back, stops another broker with SIGTERM and checks it
#      exits 0 after its controlled shutdown;
#   6. brings the secure variant up (compose.secure.yaml over compose.yaml, certificates from
#      docker/secure/make-certs.sh): a SASL_SSL/SCRAM round trip as admin with every replica in
#      sync over mutual TLS; a wrong password and a plaintext client are refused;
#   7. tears everything down (containers, volumes, network, image) and stops the Docker engine
#      if this script started it.
#
# Needs root (the engine) and Debian bookworm's apt. Tools: tools/dockerd.sh (RIVULET_TOOLS_DIR).
# Environment:
#   RIVULET_BINARY          use this binary instead of building one
#   CARGO_TARGET_DIR        cargo's target dir for the build (default: <repo>/target)
#   RIVULET_CI_TIMEOUT      seconds for the whole run (default 1800, includes the cargo build)
#   RIVULET_{A,B,C}_PORT, RIVULET_{A,B,C}_METRICS_PORT   host ports (default: free ones)
#   RIVULET_KEEP_DOCKER=1   leave the Docker engine running even if this script started it
set -euo pipefail

if [[ -z "${RIVULET_CI_BOUNDED:-}" ]]; then
    export RIVULET_CI_BOUNDED=1
    exec timeout --kill-after=30 "${RIVULET_CI_TIMEOUT:-1800}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '%s docker.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

find_tools() {
    local dir
    for dir in "${RIVULET_TOOLS_DIR:-}" "$ROOT/tools" "$ROOT/../shared/tools"; do
        if [[ -n "$dir" && -x "$dir/dockerd.sh" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    fail "tools/dockerd.sh not found (set RIVULET_TOOLS_DIR)"
}
TOOLS=$(find_tools)

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

# --- tools -------------------------------------------------------------------------------------
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    timeout 600 "${SUDO[@]}" apt-get install -y --no-install-recommends "${need_apt[@]}" >&2 ||
        fail "apt-get install ${need_apt[*]}"
fi
timeout 900 "${SUDO[@]}" "$TOOLS/dockerd.sh" install >&2

started_engine=0
if ! "${SUDO[@]}" "$TOOLS/dockerd.sh" status >/dev/null 2>&1; then
    started_engine=1
fi
engine_env=$(timeout 180 "${SUDO[@]}" "$TOOLS/dockerd.sh" start) || fail "dockerd.sh start"
eval "$engine_env"
export DOCKER_HOST
timeout 600 "${SUDO[@]}" "$TOOLS/dockerd.sh" base-image >&2

# Debian's CLI and compose match the 20.10 engine the tools start.
DOCKER=/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)
COMPOSE=/usr/bin/docker-compose
[[ -x $COMPOSE ]] || COMPOSE=$(command -v docker-compose)

PROJECT="rivulet-ci-$$"
IMAGE="rivulet:ci-$$"
CONTEXT=$(mktemp -d)
WORK=$(mktemp -d)
export RIVULET_IMAGE=$IMAGE
compose() { timeout 180 "$COMPOSE" -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((rc != 0)); then
        log "exit $rc; broker logs follow"
        compose logs --no-color --tail 80 >&2 2>/dev/null || true
    fi
    compose down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
    timeout 60 "$DOCKER" image rm -f "$IMAGE" >/dev/null 2>&1 || true
    rm -rf "$CONTEXT" "$WORK"
    if ((started_engine)) && [[ -z "${RIVULET_KEEP_DOCKER:-}" ]]; then
        timeout 120 "${SUDO[@]}" "$TOOLS/dockerd.sh" stop >&2 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# --- 1. image ----------------------------------------------------------------------------------
BINARY=${RIVULET_BINARY:-}
if [[ -z "$BINARY" ]]; then
    log "cargo build --release --bin rivulet"
    (cd "$ROOT" && cargo build --release --locked --bin rivulet) >&2
    BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/release/rivulet"
fi
[[ -x "$BINARY" ]] || fail "no executable at $BINARY"
cp "$BINARY" "$CONTEXT/rivulet"

log "docker build --target prebuilt -t $IMAGE"
timeout 600 "$DOCKER" build -q -f "$ROOT/docker/Dockerfile" --target prebuilt -t "$IMAGE" "$CONTEXT" >&2

inspect() { "$DOCKER" image inspect -f "$1" "$IMAGE"; }
[[ $(inspect '{{.Config.User}}') == "10001:10001" ]] || fail "image user is $(inspect '{{.Config.User}}')"
[[ $(inspect '{{.Config.StopSignal}}') == "SIGTERM" ]] || fail "image stop signal"
inspect '{{json .Config.Volumes}}' | grep -q '"/var/lib/rivulet"' || fail "image has no data volume"
for port in 9092 9093 9404; do
    inspect '{{json .Config.ExposedPorts}}' | grep -q "\"$port/tcp\"" || fail "port $port not exposed"
done
[[ $(timeout 60 "$DOCKER" run --rm --entrypoint id "$IMAGE" -u) == 10001 ]] || fail "container runs as root"
# The default CMD reads the image's defaults file; variables override it, no shell involved.
timeout 60 "$DOCKER" run --rm -e KAFKA_BROKER_RACK=zone-x -e RIVULET_NUM_PARTITIONS=7 "$IMAGE" \
    --config /etc/rivulet/server.properties --print-config >"$WORK/config" 2>&1 ||
    fail "the packaged binary does not run: $(cat "$WORK/config")"
for expected in 'listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093 +# file' \
    'log.dirs=/var/lib/rivulet/data +# file' 'metrics.listener=0.0.0.0:9404 +# file' \
    'broker.rack=zone-x +# environment' 'num.partitions=7 +# environment'; do
    grep -Eq "^$expected" "$WORK/config" || fail "image configuration lacks: $expected"
done
log "image ok: $(inspect '{{.Size}}') bytes, user 10001, volume /var/lib/rivulet, STOPSIGNAL SIGTERM"

# --- 2. cluster --------------------------------------------------------------------------------
# Host ports: as given, else free ones picked now (other clusters may run on this machine).
read -r -a free_ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')
export RIVULET_A_PORT=${RIVULET_A_PORT:-${free_ports[0]}} RIVULET_B_PORT=${RIVULET_B_PORT:-${free_ports[1]}} \
    RIVULET_C_PORT=${RIVULET_C_PORT:-${free_ports[2]}} \
    RIVULET_A_METRICS_PORT=${RIVULET_A_METRICS_PORT:-${free_ports[3]}} \
    RIVULET_B_METRICS_PORT=${RIVULET_B_METRICS_PORT:-${free_ports[4]}} \
    RIVULET_C_METRICS_PORT=${RIVULET_C_METRICS_PORT:-${free_ports[5]}}
A_PORT=$RIVULET_A_PORT
B_PORT=$RIVULET_B_PORT
C_PORT=$RIVULET_C_PORT
declare -A CLIENT_PORT=([broker-a]=$A_PORT [broker-b]=$B_PORT [broker-c]=$C_PORT)
declare -A METRICS_PORT=(
    [broker-a]=$RIVULET_A_METRICS_PORT
    [broker-b]=$RIVULET_B_METRICS_PORT
    [broker-c]=$RIVULET_C_METRICS_PORT
)
declare -A NODE_ID=([broker-a]=0 [broker-b]=1 [broker-c]=2)
BOOTSTRAP="127.0.0.1:$A_PORT,127.0.0.1:$B_PORT,127.0.0.1:$C_PORT"

log "docker-compose up (project $PROJECT, clients on $BOOTSTRAP)"
compose up -d >&2

container() { compose ps -q "$1"; }
for svc in broker-a broker-b broker-c; do
    id=$(container "$svc")
    [[ -n "$id" ]] || fail "$svc has no container"
    "$DOCKER" port "$id" >"$WORK/ports"
    [[ -s "$WORK/ports" ]] || fail "$svc publishes nothing"
    if grep -v -- '-> 127\.0\.0\.1:' "$WORK/ports"; then
        fail "$svc publishes a port beyond 127.0.0.1"
    fi
done
log "published ports bind 127.0.0.1 only"

running() { [[ $("$DOCKER" inspect -f '{{.State.Running}}' "$(container "$1")") == true ]]; }

wait_ready() {
    local svc=$1 deadline=$((SECONDS + $2))
    until curl -fsS -m 2 "http://127.0.0.1:${METRICS_PORT[$svc]}/readyz" >/dev/null 2>&1; do
        if ! running "$svc"; then
            fail "$svc exited ($("$DOCKER" inspect -f '{{.State.ExitCode}}' "$(container "$svc")")) before it was ready"
        fi
        ((SECONDS < deadline)) || fail "$svc not ready after $2 s"
        sleep 1
    done
    curl -fsS -m 2 "http://127.0.0.1:${METRICS_PORT[$svc]}/livez" >/dev/null || fail "$svc /livez"
}
for svc in broker-a broker-b broker-c; do
    wait_ready "$svc" 180
done
log "three brokers ready"
# compose.yaml's own healthcheck (bash /dev/tcp to /readyz inside the container) agrees.
for svc in broker-a broker-b broker-c; do
    deadline=$((SECONDS + 60))
    until [[ $("$DOCKER" inspect -f '{{.State.Health.Status}}' "$(container "$svc")") == healthy ]]; do
        ((SECONDS < deadline)) || fail "$svc: compose healthcheck not healthy after 60 s"
        sleep 2
    done
done
curl -fsS -m 5 "http://127.0.0.1:${METRICS_PORT[broker-a]}/metrics" >"$WORK/metrics" || fail "/metrics"
grep -q '^# TYPE ' "$WORK/metrics" || fail "/metrics is not Prometheus text"

# --- 3. round trip -----------------------------------------------------------------------------
TOPIC="ci-roundtrip-$$"
KCAT=(kcat -b "$BOOTSTRAP" -X socket.timeout.ms=10000)

brokers_in_metadata() {
    timeout 30 "${KCAT[@]}" -L -m 10 | awk '/ broker [0-9]+ at /{print $2}' | sort -n | tr '\n' ' '
}
[[ $(brokers_in_metadata) == "0 1 2 " ]] || fail "metadata lists brokers: $(brokers_in_metadata)"
timeout 30 "${KCAT[@]}" -L -m 10 >"$WORK/metadata"
for svc in broker-a broker-b broker-c; do
    grep -q "broker ${NODE_ID[$svc]} at 127.0.0.1:${CLIENT_PORT[$svc]}" "$WORK/metadata" ||
        fail "$svc is not advertised as broker ${NODE_ID[$svc]} at 127.0.0.1:${CLIENT_PORT[$svc]}"
done

produce() { # first last
    seq "$1" "$2" | sed 's/.*/key-&:value-&/' >>"$WORK/sent"
    seq "$1" "$2" | sed 's/.*/key-&:value-&/' |
        timeout 180 "${KCAT[@]}" -P -t "$TOPIC" -K: -X acks=all -X message.timeout.ms=120000 ||
        fail "produce $1..$2"
}
# Reads the whole topic. Every acknowledged record must be there; a producer retry without
# idempotence may legitimately have written one twice (Kafka's at-least-once), so compare sets.
consume_all() {
    timeout 120 "${KCAT[@]}" -C -t "$TOPIC" -o beginning -e -q -f '%k:%s\n' >"$WORK/received" ||
        fail "consume"
    sort -u "$WORK/received" >"$WORK/received.set"
    if ! sort -u "$WORK/sent" | diff - "$WORK/received.set" >"$WORK/diff"; then
        fail "consumed $(wc -l <"$WORK/received.set") distinct records, produced $(wc -l <"$WORK/sent"): $(head -5 "$WORK/diff" | tr '\n' ' ')"
    fi
    log "read back $(wc -l <"$WORK/received") records ($(wc -l <"$WORK/received.set") distinct)"
}
partition_table() { # "partition leader replicas isrs" lines
    timeout 30 "${KCAT[@]}" -L -m 10 -t "$TOPIC" |
        sed -n 's/^ *partition \([0-9]*\), leader \(-\?[0-9]*\), replicas: \([0-9,]*\), isrs: \([0-9,]*\).*/\1 \2 \3 \4/p'
}

produce 1 200
consume_all
partition_table >"$WORK/partitions"
[[ $(wc -l <"$WORK/partitions") -eq 3 ]] || fail "$TOPIC has $(wc -l <"$WORK/partitions") partitions, not 3"
while read -r partition leader replicas isrs; do
    [[ $(tr ',' '\n' <<<"$replicas" | sort -u | wc -l) -eq 3 ]] ||
        fail "partition $partition has replicas $replicas (isrs $isrs, leader $leader)"
done <"$WORK/partitions"
log "round trip ok: 200 records through a 3-partition, 3-replica topic"

# --- 4. lose a broker --------------------------------------------------------------------------
victim_id=$(awk '$1 == 0 {print $2}' "$WORK/partitions")
victim=""
for svc in broker-a broker-b broker-c; do
    [[ ${NODE_ID[$svc]} == "$victim_id" ]] && victim=$svc
done
[[ -n "$victim" ]] || fail "partition 0 has no leader"
log "killing $victim (broker $victim_id, leader of partition 0)"
timeout 30 "$DOCKER" kill "$(container "$victim")" >/dev/null

deadline=$((SECONDS + 90))
# Loops while the table cannot be read or still shows the dead broker (or no one) leading.
while partition_table | awk -v dead="$victim_id" '$2 == dead || $2 < 0 {bad=1} END {exit !(bad || NR != 3)}'; do
    ((SECONDS < deadline)) || fail "partitions still led by broker $victim_id or leaderless after 90 s"
    sleep 2
done
log "leadership moved off broker $victim_id"
produce 201 400
consume_all
log "still serving with broker $victim_id down: 200 more records with acks=all, 400 read back"

# --- 5. rejoin, then a controlled shutdown --------------------------------------------------------
compose start "$victim" >&2
wait_ready "$victim" 180
log "$victim rejoined and is ready"
graceful=broker-a
[[ $victim == broker-a ]] && graceful=broker-c
log "docker stop $graceful (SIGTERM, controlled shutdown)"
timeout 90 "$DOCKER" stop -t 60 "$(container "$graceful")" >/dev/null
code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$(container "$graceful")")
[[ $code == 0 ]] || fail "$graceful exited $code after SIGTERM, not 0"
produce 401 500
consume_all
log "$graceful exited 0 after its controlled shutdown; 500 records readable"

# --- 6. the secure variant ------------------------------------------------------------------------
log "the secure variant: compose.yaml + compose.secure.yaml (SASL_SSL clients, mTLS between brokers)"
compose down -v --remove-orphans -t 10 >/dev/null 2>&1
SECURE_DIR="$WORK/secure"
"$ROOT/docker/secure/make-certs.sh" "$SECURE_DIR" >/dev/null || fail "docker/secure/make-certs.sh"
export RIVULET_SECURE_DIR=$SECURE_DIR
compose() {
    timeout 180 "$COMPOSE" -p "$PROJECT" -f "$ROOT/docker/compose.yaml" \
        -f "$ROOT/docker/compose.secure.yaml" "$@"
}
compose up -d >&2
for svc in broker-a broker-b broker-c; do
    wait_ready "$svc" 180
done
KCAT=(kcat -b "$BOOTSTRAP" -X socket.timeout.ms=10000 -X security.protocol=SASL_SSL
    -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin
    -X "sasl.password=$(cat "$SECURE_DIR/admin.password")" -X "ssl.ca.location=$SECURE_DIR/ca.crt")
[[ $(brokers_in_metadata) == "0 1 2 " ]] || fail "secure: metadata lists brokers: $(brokers_in_metadata)"
TOPIC="ci-secure-$$"
: >"$WORK/sent"
produce 1 300
consume_all
partition_table >"$WORK/partitions"
while read -r partition leader replicas isrs; do
    [[ $(tr ',' '\n' <<<"$isrs" | sort -u | wc -l) -eq 3 ]] ||
        fail "secure: partition $partition has isrs $isrs: followers do not fetch over mTLS"
done <"$WORK/partitions"
if timeout 30 kcat -b "$BOOTSTRAP" -X socket.timeout.ms=5000 -X security.protocol=SASL_SSL \
    -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password=wrong \
    -X "ssl.ca.location=$SECURE_DIR/ca.crt" -L -m 5 >/dev/null 2>&1; then
    fail "secure: a wrong password was accepted"
fi
if timeout 30 kcat -b "$BOOTSTRAP" -X socket.timeout.ms=5000 -L -m 5 >/dev/null 2>&1; then
    fail "secure: a plaintext client got metadata"
fi
log "secure variant ok: 300 records as admin over SASL_SSL, every replica in sync over mTLS; wrong password and plaintext refused"

log "all docker checks passed"
