#!/usr/bin/env bash
# Kubernetes packaging check:
#   1. renders k8s/base and every k8s/overlays/* with kubectl kustomize;
#   2. validates every rendered object offline with kubernetes-validate --strict against the
#      Kubernetes 1.30 and 1.37 schemas (the KafkaTopic CRD included; KafkaTopic objects
#      themselves are checked by the API server below);
#   3. starts a real kube-apiserver 1.20 + etcd (tools/kube-apiserver.sh) in a private state dir
#      on free loopback ports, then
#        - kubectl apply --dry-run=server for every overlay and the examples,
#        - applies the base for real and checks the brokers' ServiceAccount with kubectl auth
#          can-i (what it may and may not do) and by acting as it: the reconciler's finalizer
#          and status patches on a KafkaTopic,
#        - checks the CRD schema rejects invalid KafkaTopics and the printer columns show status,
#        - runs the KafkaTopic reconciler for real: tests/k8s_reconciler.rs starts a three-broker
#          cluster whose brokers reach this API server as the rivulet ServiceAccount (with the
#          Role from k8s/base/rbac.yaml) and checks create / grow / re-configure / refuse /
#          adopt / drift repair / controller failover / both delete policies;
#   4. stops the API server and deletes its state (trap, also on failure).
#
# The API server is all there is: no scheduler, controller-manager or kubelet, so no pod ever
# runs. The brokers of step 3 are local processes (the test's cluster fixture), not pods.
#
# The 1.20 server predates two things the manifests use, so for it only (and said so in the
# log): the PodDisruptionBudget is sent as policy/v1beta1 (same fields) and topology spread
# minDomains (1.25+) is dropped. Both are covered by the 1.30/1.37 schema validation.
#
# Needs: kubectl with kustomize v5 (kubectl >= 1.27) or a kustomize v5 binary; python3 with
# venv; root (or sudo) for tools/kube-apiserver.sh install (cached after the first build);
# cargo (and what the workspace tests need to build librdkafka) for the reconciler test.
# Environment:
#   RIVULET_TOOLS_DIR     where kube-apiserver.sh lives (default: <repo>/tools, ../shared/tools)
#   RIVULET_K8S_VENV      venv for kubernetes-validate (default: <repo>/target/ci-tools/...)
#   RIVULET_CI_TIMEOUT    seconds for the whole run (default 2700: a first kube-apiserver
#                         build takes 6-12 minutes, building the reconciler test several more)
set -euo pipefail

if [[ -z "${RIVULET_CI_BOUNDED:-}" ]]; then
    export RIVULET_CI_BOUNDED=1
    exec timeout --kill-after=30 "${RIVULET_CI_TIMEOUT:-2700}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S="$ROOT/k8s"
KUBERNETES_VALIDATE_VERSION=1.37.0
SCHEMA_VERSIONS=(1.30 1.37)
log() { printf '%s k8s.sh: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

find_tools() {
    local dir
    for dir in "${RIVULET_TOOLS_DIR:-}" "$ROOT/tools" "$ROOT/../shared/tools"; do
        if [[ -n "$dir" && -x "$dir/kube-apiserver.sh" ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    fail "tools/kube-apiserver.sh not found (set RIVULET_TOOLS_DIR)"
}
TOOLS=$(find_tools)
# Runs a tool as root, keeping the RIVULET_KUBE_* settings across sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        sudo --preserve-env=RIVULET_KUBE_STATE_DIR,RIVULET_KUBE_APISERVER_PORT,RIVULET_ETCD_PORT,RIVULET_ETCD_PEER_PORT "$@"
    fi
}

WORK=$(mktemp -d)
KUBE_STATE=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$KUBE_STATE" ]]; then
        RIVULET_KUBE_STATE_DIR=$KUBE_STATE as_root timeout 60 "$TOOLS/kube-apiserver.sh" clean >&2 ||
            log "could not clean $KUBE_STATE"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# --- tools -------------------------------------------------------------------------------------
command -v python3 >/dev/null || fail "python3 is required"
command -v cargo >/dev/null || fail "cargo is required (the reconciler test)"

render() { # dir -> stdout
    if [[ $(kubectl version --client 2>/dev/null) == *"Kustomize Version: v5."* ]]; then
        timeout 60 kubectl kustomize "$1"
    elif command -v kustomize >/dev/null && [[ $(kustomize version 2>/dev/null) == *v5.* ]]; then
        timeout 60 kustomize build "$1"
    else
        fail "need kubectl >= 1.27 (bundling kustomize v5) or kustomize v5 to render $1"
    fi
}

VENV=${RIVULET_K8S_VENV:-$ROOT/target/ci-tools/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION}
if [[ $("$VENV/bin/kubernetes-validate" --version 2>/dev/null) != "$KUBERNETES_VALIDATE_VERSION" ]]; then
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV"
    rm -rf "$VENV"
    timeout 120 python3 -m venv "$VENV" || fail "python3 -m venv (Debian: apt-get install python3-venv)"
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2 || fail "pip install kubernetes-validate"
fi
PY="$VENV/bin/python"

# --- 1 + 2. render and validate offline ----------------------------------------------------------
versions=()
for v in "${SCHEMA_VERSIONS[@]}"; do versions+=(-k "$v"); done
TARGETS=(. base)
rendered() { # target -> the file its rendering is kept in
    if [[ $1 == . ]]; then echo "$WORK/k8s.yaml"; else echo "$WORK/${1//\//-}.yaml"; fi
}
for dir in "$K8S"/overlays/*/; do
    TARGETS+=("overlays/$(basename "$dir")")
done
for target in "${TARGETS[@]}"; do
    out=$(rendered "$target")
    render "$K8S/$target" >"$out" || fail "kustomize $target"
    count=$(grep -c '^kind: ' "$out" || true)
    ((count > 0)) || fail "$target renders nothing"
    if ! "$VENV/bin/kubernetes-validate" --strict --quiet "${versions[@]}" "$out" >"$WORK/validate.log" 2>&1; then
        cat "$WORK/validate.log" >&2
        fail "$target does not validate against Kubernetes ${SCHEMA_VERSIONS[*]}"
    fi
    if [[ -s "$WORK/validate.log" ]]; then
        cat "$WORK/validate.log" >&2
        fail "$target: kubernetes-validate warned (an object it has no schema for?)"
    fi
    log "$target: $count objects render and validate strictly against Kubernetes ${SCHEMA_VERSIONS[*]}"
done
"$VENV/bin/kubernetes-validate" --strict --quiet "${versions[@]}" "$K8S"/examples/*.yaml >"$WORK/validate.log" 2>&1 ||
    { cat "$WORK/validate.log" >&2; fail "examples do not parse"; }
if grep -v "Couldn't find schema for kind KafkaTopic with api version rivulet.io/v1alpha1" "$WORK/validate.log" >&2; then
    fail "examples: unexpected kubernetes-validate output"
fi

# Only for the 1.20 API server: policy/v1 -> v1beta1 PDB, no minDomains (see the header).
cat >"$WORK/compat120.py" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
for d in docs:
    name = "%s/%s" % (d["kind"], d["metadata"]["name"])
    if d["kind"] == "PodDisruptionBudget" and d["apiVersion"] == "policy/v1":
        d["apiVersion"] = "policy/v1beta1"
        print("1.20 compat: %s sent as policy/v1beta1" % name, file=sys.stderr)
    if d["kind"] == "StatefulSet":
        for c in d["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
            if c.pop("minDomains", None) is not None:
                print("1.20 compat: %s minDomains dropped" % name, file=sys.stderr)
only = sys.argv[1] if len(sys.argv) > 1 else None
if only:
    docs = [d for d in docs if d["kind"] in only.split(",")]
yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
EOF
compat() { "$PY" "$WORK/compat120.py" "$@"; }

# --- 3. a real API server ----------------------------------------------------------------------
log "kube-apiserver.sh install (cached after the first build)"
as_root timeout 1500 "$TOOLS/kube-apiserver.sh" install >&2 || fail "kube-apiserver.sh install"

read -r API_PORT ETCD_PORT PEER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')
KUBE_STATE=$(mktemp -d /tmp/rivulet-k8s-ci.XXXXXX)
export RIVULET_KUBE_STATE_DIR=$KUBE_STATE RIVULET_KUBE_APISERVER_PORT=$API_PORT \
    RIVULET_ETCD_PORT=$ETCD_PORT RIVULET_ETCD_PEER_PORT=$PEER_PORT
kube_env=$(as_root timeout 240 "$TOOLS/kube-apiserver.sh" start 2>"$WORK/apiserver-start.log") ||
    { cat "$WORK/apiserver-start.log" >&2; fail "kube-apiserver.sh start"; }
eval "$kube_env"
export KUBECONFIG
k() { timeout 60 kubectl --request-timeout=30s "$@"; }
log "API server $(k version -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') on 127.0.0.1:$API_PORT"

# Dry runs need the namespaces and the CRD to exist: create exactly those for real first.
for target in "${TARGETS[@]}"; do
    out=$(rendered "$target")
    compat Namespace,CustomResourceDefinition <"$out" 2>/dev/null | k apply -f - >/dev/null ||
        fail "$target: creating its namespace and CRD"
done
k wait --for=condition=Established --timeout=30s crd/kafkatopics.rivulet.io >/dev/null
for target in "${TARGETS[@]}"; do
    out=$(rendered "$target")
    compat <"$out" >"$WORK/server.yaml"
    k apply --dry-run=server -f "$WORK/server.yaml" >"$WORK/dry-run.log" 2>&1 ||
        { cat "$WORK/dry-run.log" >&2; fail "$target: kubectl apply --dry-run=server"; }
    log "$target: accepted by the API server (dry run, $(wc -l <"$WORK/dry-run.log") objects)"
done
NS=rivulet
k apply --dry-run=server -n "$NS" -f "$K8S/examples/" >/dev/null || fail "examples: dry run"

# The base for real, then the ServiceAccount's rights.
compat <"$WORK/base.yaml" 2>/dev/null | k apply -f - >/dev/null || fail "base: apply"
SA="system:serviceaccount:$NS:rivulet"
can() { # expected verb resource [args]
    local expected=$1 got
    shift
    got=$(k auth can-i --as="$SA" "$@" 2>/dev/null || true)
    [[ $got == "$expected" ]] || fail "$SA: can-i $* = ${got:-error}, want $expected"
}
can yes get nodes
can no list nodes
can no patch nodes
for verb in get list watch patch; do can yes "$verb" kafkatopics.rivulet.io -n "$NS"; done
can yes patch kafkatopics.rivulet.io --subresource=status -n "$NS"
can no create kafkatopics.rivulet.io -n "$NS"
can no delete kafkatopics.rivulet.io -n "$NS"
can no get kafkatopics.rivulet.io -n default
can no get secrets -n "$NS"
can no list pods -n "$NS"
can no update statefulsets.apps -n "$NS"
can no create events -n "$NS"
log "ServiceAccount rivulet: get nodes, get/list/watch/patch kafkatopics (+status) in $NS, nothing more"

# The CRD schema, for real: the example is stored, invalid topics are refused by the server.
k apply -n "$NS" -f "$K8S/examples/kafkatopic-orders.yaml" >/dev/null || fail "example KafkaTopic"
reject() { # description, json patch of .spec
    local doc
    doc=$("$PY" -c 'import json,sys,yaml
t = yaml.safe_load(open(sys.argv[1])); t["metadata"]["name"] = "invalid"; t["spec"].update(json.loads(sys.argv[2]))
for k in [k for k, v in t["spec"].items() if v is None]: del t["spec"][k]
print(json.dumps(t))' "$K8S/examples/kafkatopic-orders.yaml" "$2")
    if k apply --validate=false --dry-run=server -n "$NS" -f - <<<"$doc" >"$WORK/reject.log" 2>&1; then
        fail "the API server accepted a KafkaTopic with $1"
    fi
    grep -q "$3" "$WORK/reject.log" || { cat "$WORK/reject.log" >&2; fail "rejected $1 for another reason"; }
}
reject "0 partitions" '{"partitions": 0}' 'spec.partitions'
reject "0 replicas" '{"replicas": 0}' 'spec.replicas'
reject "no replicas" '{"replicas": null}' 'spec.replicas'
reject "a non-string config value" '{"config": {"retention.ms": 1000}}' 'spec.config'
reject "an illegal topic name" '{"topicName": "orders/v1"}' 'spec.topicName'
log "the CRD refuses invalid KafkaTopics"

# What the reconciler does, done as its ServiceAccount: finalizer on, status written, finalizer off.
k patch kafkatopic orders -n "$NS" --as="$SA" --type=merge \
    -p '{"metadata":{"finalizers":["rivulet.io/topic-deletion"]}}' >/dev/null || fail "finalizer patch as $SA"
k patch kafkatopic orders -n "$NS" --as="$SA" --subresource=status --type=merge -p '{"status":{
    "observedGeneration":1,"topicId":"y8kLD6m5QgqpG6xN0qfXvA",
    "conditions":[{"type":"Ready","status":"True","reason":"Created","message":"6 partitions, 3 replicas",
    "lastTransitionTime":"2024-01-01T00:00:00Z","observedGeneration":1}]}}' >/dev/null ||
    fail "status patch as $SA"
k get kafkatopics -n "$NS" orders >"$WORK/get.txt" || fail "kubectl get kafkatopics"
read -r -a header <"$WORK/get.txt"
read -r -a row < <(tail -n1 "$WORK/get.txt")
[[ "${header[*]:0:5}" == "NAME TOPIC PARTITIONS REPLICAS READY" ]] || fail "printer columns: ${header[*]}"
[[ "${row[*]:0:5}" == "orders orders.v1 6 3 True" ]] || fail "printer row: ${row[*]}"
k patch kafkatopic orders -n "$NS" --as="$SA" --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null ||
    fail "finalizer removal as $SA"
if k delete kafkatopic orders -n "$NS" --as="$SA" >/dev/null 2>&1; then
    fail "$SA could delete a KafkaTopic"
fi
k delete kafkatopic orders -n "$NS" --wait=true --timeout=30s >/dev/null || fail "delete KafkaTopic"
log "reconciler permissions work as its ServiceAccount; kubectl get kafkatopics shows status"

# The reconciler itself, in real brokers, against this API server. The test is built only with
# the kube-api-tests feature (so a plain `cargo test` never runs it without a server); it fails,
# never skips, when RIVULET_KUBE_TEST or the server is missing.
log "KafkaTopic reconciler: cargo test --features kube-api-tests --test k8s_reconciler"
(cd "$ROOT" && timeout 900 cargo clippy --quiet --locked --no-deps --features kube-api-tests --test k8s_reconciler -- -D warnings) ||
    fail "clippy on tests/k8s_reconciler.rs"
(cd "$ROOT" && RIVULET_KUBE_TEST=1 timeout 1200 cargo test --locked --features kube-api-tests --test k8s_reconciler) ||
    fail "the KafkaTopic reconciler test"
log "KafkaTopic reconciler: create, grow, re-configure, refuse, adopt, repair, fail over and delete work"

log "all Kubernetes checks passed"
