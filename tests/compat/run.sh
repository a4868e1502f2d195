#!/usr/bin/env bash
# Client compatibility suite: real Kafka clients against a real single-node broker.
#
#   1. installs the clients, idempotently: kcat from Debian's apt (librdkafka 2.0.2 — old
#      clients matter), confluent-kafka, kafka-python and aiokafka from PyPI into a venv
#      (pinned in requirements.txt), kafkajs from npm (pinned in package-lock.json);
#   2. builds the broker (cargo build -p rivulet; a no-op when it is up to date) and starts it
#      on free loopback ports with a temporary data directory, then waits for /readyz;
#   3. runs one scenario program per client (kcat.sh, *_check.py, kafkajs_check.js): create a
#      topic, produce 10k keyed messages, consume them all in a group, commit, then check a new
#      consumer in the group resumes from the commit — plus the README's kcat round trip; then,
#      on the broker's SASL_SSL listener (a CA and certificate made here with openssl, a PLAIN
#      user, and a SCRAM user that scram_user.py creates with AlterUserScramCredentials once the
#      broker is ready), a PLAIN produce/consume round trip, a refused wrong password, a
#      round trip produced with SCRAM-SHA-512 and consumed with SCRAM-SHA-256, and the oauthbearer
#      step: the broker trusts the JSON Web Key Set of an RSA key made here
#      (sasl.oauthbearer.jwks.endpoint.url, expected issuer and audience set), mint_token.py signs
#      RS256 tokens with openssl for each client — a good one, an expired one, and one signed by a
#      foreign key under the trusted key's kid — and the client authenticates with the good token
#      (SASL/OAUTHBEARER) to produce 100 messages and read each back exactly once, then sees both
#      bad tokens refused and no message produced with them. kcat's cell is n/a (see applies());
#      then the ssl step: on the broker's SSL listener, which requires client certificates
#      (listener.name.ssl.ssl.client.auth=required, the suite's CA as its truststore), the client
#      presents a certificate the suite's CA signed (CN=compat-client, made here with openssl) to
#      produce 100 messages and read each back exactly once, then a client with a certificate a
#      foreign CA signed (made here too), and one with no certificate, must each be refused
#      sending one message to another topic, which the good certificate must then not find in
#      the topic list (a Metadata request that got through would have auto-created it); and the
#      sasl-plaintext step: on the broker's SASL_PLAINTEXT listener (no TLS), as the SCRAM user,
#      a SCRAM-SHA-256 round trip of 100 messages, each read back exactly once in a new group;
#   4. prints a table (client x step, PASS/FAIL, client versions), keeps the logs under
#      target/compat-logs/ and exits non-zero if anything failed. The broker and the temporary
#      directories are removed on exit.
#
# Transactions are not supported by the broker and are not tested here.
#
# Environment:
#   RIVULET_BINARY             use this broker binary instead of building one
#   RIVULET_COMPAT_BOOTSTRAP   host:port of an already running broker (e.g. Apache Kafka, to
#                              check the checks): nothing is built or started; then also
#                              RIVULET_COMPAT_SECURE_BOOTSTRAP (its SASL_SSL listener with PLAIN,
#                              SCRAM-SHA-256 and SCRAM-SHA-512; the SCRAM user is created there
#                              as the PLAIN user), RIVULET_COMPAT_SSL_BOOTSTRAP (its SSL listener,
#                              with ssl.client.auth=required and RIVULET_COMPAT_CA_FILE as its
#                              truststore), RIVULET_COMPAT_CLIENT_CERT and RIVULET_COMPAT_CLIENT_KEY
#                              (a PEM certificate that CA signed and its unencrypted key),
#                              RIVULET_COMPAT_SASL_PLAINTEXT_BOOTSTRAP (its SASL_PLAINTEXT
#                              listener with SCRAM-SHA-256), RIVULET_COMPAT_CA_FILE,
#                              RIVULET_COMPAT_SASL_USER, RIVULET_COMPAT_SASL_PASSWORD and RIVULET_COMPAT_OAUTH_KEY (a PEM RSA
#                              private key whose key set, `mint_token.py jwks KEY`, that broker
#                              trusts for OAUTHBEARER on the same listener; the tokens' iss and aud
#                              are OAUTH_ISSUER and OAUTH_AUDIENCE below)
#   RIVULET_COMPAT_VENV        the Python venv (default: <target>/compat-venv)
#   RIVULET_COMPAT_LOGS        where logs are kept (default: <target>/compat-logs)
#   RIVULET_COMPAT_CLIENTS     space-separated subset of: kcat confluent-kafka kafka-python
#                              aiokafka kafkajs (default: all)
#   RIVULET_COMPAT_TIMEOUT     seconds for the whole run (default 1800, includes installs and
#                              a cargo build); each client gets at most 240 s
set -euo pipefail

if [[ -z "${RIVULET_COMPAT_BOUNDED:-}" ]]; then
    export RIVULET_COMPAT_BOUNDED=1
    exec timeout --kill-after=30 "${RIVULET_COMPAT_TIMEOUT:-1800}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
COMPAT="$ROOT/tests/compat"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${RIVULET_COMPAT_VENV:-$TARGET/compat-venv}"
LOGS="${RIVULET_COMPAT_LOGS:-$TARGET/compat-logs}"
read -r -a CLIENTS <<<"${RIVULET_COMPAT_CLIENTS:-kcat confluent-kafka kafka-python aiokafka kafkajs}"
STEPS=(create-topic produce-10k consume-group commit resume readme sasl-ssl bad-password scram oauthbearer ssl sasl-plaintext)
SASL_USER=compat-user
SASL_PASSWORD=compat-$RANDOM$RANDOM
SCRAM_USER=compat-scram
SCRAM_PASSWORD=scram-$RANDOM$RANDOM
OAUTH_USER=compat-oauth
OAUTH_ISSUER=https://rivulet-compat.invalid
OAUTH_AUDIENCE=rivulet-compat
# Lifetime of the good tokens (exp - now) in seconds; each client gets fresh ones.
OAUTH_LIFETIME=3600
CLIENT_TIMEOUT=240
STEP_TIMEOUT=60

log() { printf '%s compat: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)

BROKER_PID=
TMP=$(mktemp -d)
cleanup() {
    if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- clients -----------------------------------------------------------------------------------
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    log "installing $* with apt-get"
    timeout 600 "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2 || {
        timeout 300 "${SUDO[@]}" apt-get update -qq >&2
        timeout 600 "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
    } || die "apt-get install $*"
}

install_clients() {
    local need=()
    command -v kcat >/dev/null || need+=(kcat)
    command -v curl >/dev/null || need+=(curl)
    command -v openssl >/dev/null || need+=(openssl)
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    ((${#need[@]} == 0)) || apt_install "${need[@]}"

    if [[ ! -x $VENV/bin/python ]]; then
        log "creating the Python venv $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv $VENV"
    fi
    timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check -r "$COMPAT/requirements.txt" >&2 ||
        die "pip install -r tests/compat/requirements.txt"

    if ! (cd "$COMPAT" && node -e '
        const want = require("./package-lock.json").packages["node_modules/kafkajs"].version;
        process.exit(require("kafkajs/package.json").version === want ? 0 : 1);' 2>/dev/null); then
        log "installing kafkajs with npm ci"
        (cd "$COMPAT" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci"
    fi
}

# --- broker ------------------------------------------------------------------------------------
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

# A CA, a broker certificate for 127.0.0.1 (PEM) for the SASL_SSL and SSL listeners, and a
# client certificate (CN=compat-client) the CA signed, for the SSL listener's mutual TLS.
make_certificates() {
    local dir=$TMP/tls
    mkdir -p "$dir"
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rivulet-compat-ca \
            -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout broker.key -out broker.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out broker.pem
        cat broker.key broker.pem >keystore.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=compat-client -keyout client.key -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile client.ext -out client.pem
    ) >"$LOGS/openssl.log" 2>&1 || die "making the test certificates: $(tail -3 "$LOGS/openssl.log")"
    CA_FILE=$dir/ca.pem
    KEYSTORE=$dir/keystore.pem
    CLIENT_CERT=$dir/client.pem
    CLIENT_KEY=$dir/client.key
}

# A foreign CA and a client certificate it signed, with the same subject as the good one
# (CN=compat-client): the SSL listener must refuse it, since no truststore holds that CA.
make_foreign_certificate() {
    local dir=$TMP/foreign-tls
    mkdir -p "$dir"
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rivulet-compat-foreign-ca \
            -keyout ca.key -out ca.pem
        openssl req -newkey rsa:2048 -nodes -subj /CN=compat-client -keyout client.key -out client.csr
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile client.ext -out client.pem
    ) >>"$LOGS/openssl.log" 2>&1 || die "making the foreign certificate: $(tail -3 "$LOGS/openssl.log")"
    FOREIGN_CERT=$dir/client.pem
    FOREIGN_KEY=$dir/client.key
}

# OAUTHBEARER: the trusted RSA key (made here, or RIVULET_COMPAT_OAUTH_KEY for an external
# broker), its key set for the broker, and a foreign key no key set holds.
make_oauth_keys() {
    local dir=$TMP/oauth
    mkdir -p "$dir"
    OAUTH_KEY=${RIVULET_COMPAT_OAUTH_KEY:-$dir/trusted.pem}
    OAUTH_FOREIGN_KEY=$dir/foreign.pem
    OAUTH_JWKS=$dir/jwks.json
    {
        if [[ -z ${RIVULET_COMPAT_OAUTH_KEY:-} ]]; then
            python3 "$COMPAT/mint_token.py" genkey "$OAUTH_KEY"
        fi
        python3 "$COMPAT/mint_token.py" genkey "$OAUTH_FOREIGN_KEY" &&
            python3 "$COMPAT/mint_token.py" jwks "$OAUTH_KEY" >"$OAUTH_JWKS"
    } >"$LOGS/mint_token.log" 2>&1 || die "making the OAUTHBEARER keys: $(tail -3 "$LOGS/mint_token.log")"
    OAUTH_KID=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"][0]["kid"])' "$OAUTH_JWKS")
}

# Prints a token for $OAUTH_USER signed by key $1, valid for $2 seconds (negative: expired),
# whose header names the trusted key's kid whichever key signed it.
mint_token() {
    python3 "$COMPAT/mint_token.py" token "$1" --subject "$OAUTH_USER" --lifetime "$2" \
        --issuer "$OAUTH_ISSUER" --audience "$OAUTH_AUDIENCE" --kid "$OAUTH_KID" 2>>"$LOGS/mint_token.log" ||
        die "minting an OAUTHBEARER token: $(tail -3 "$LOGS/mint_token.log")"
}

start_broker() {
    local binary=${RIVULET_BINARY:-}
    if [[ -z $binary ]]; then
        log "cargo build -p rivulet"
        (cd "$ROOT" && cargo build -p rivulet >&2) || die "cargo build -p rivulet"
        binary="$TARGET/debug/rivulet"
    fi
    [[ -x $binary ]] || die "broker binary $binary not found"
    BROKER_DESCRIPTION="$("$binary" --version) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "unknown commit"))"

    local client_port controller_port metrics_port secure_port ssl_port sasl_plaintext_port
    read -r client_port controller_port metrics_port secure_port ssl_port sasl_plaintext_port < <(free_ports 6)
    BOOTSTRAP="127.0.0.1:$client_port"
    SECURE_BOOTSTRAP="127.0.0.1:$secure_port"
    SSL_BOOTSTRAP="127.0.0.1:$ssl_port"
    SASL_PLAINTEXT_BOOTSTRAP="127.0.0.1:$sasl_plaintext_port"
    make_certificates
    make_oauth_keys
    local ready_url="http://127.0.0.1:$metrics_port/readyz"
    log "starting $binary on $BOOTSTRAP (log: $LOGS/broker.log)"
    NO_COLOR=1 "$binary" \
        --node-id 0 \
        --log-dirs "$TMP/data" \
        --listeners "PLAINTEXT://$BOOTSTRAP,SASL_SSL://$SECURE_BOOTSTRAP,SSL://$SSL_BOOTSTRAP,SASL_PLAINTEXT://$SASL_PLAINTEXT_BOOTSTRAP,CONTROLLER://127.0.0.1:$controller_port" \
        --override listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT \
        --controller-quorum-voters "0@127.0.0.1:$controller_port" \
        --metrics-listener "127.0.0.1:$metrics_port" \
        --override num.partitions=3 \
        --override offsets.topic.replication.factor=1 \
        --override group.initial.rebalance.delay.ms=0 \
        --override "ssl.keystore.location=$KEYSTORE" \
        --override listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER \
        --override "sasl.oauthbearer.jwks.endpoint.url=file://$OAUTH_JWKS" \
        --override "sasl.oauthbearer.expected.issuer=$OAUTH_ISSUER" \
        --override "sasl.oauthbearer.expected.audience=$OAUTH_AUDIENCE" \
        --override "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";" \
        --override listener.name.ssl.ssl.client.auth=required \
        --override "listener.name.ssl.ssl.truststore.location=$CA_FILE" \
        --override listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512 \
        >"$LOGS/broker.log" 2>&1 &
    BROKER_PID=$!
    local deadline=$((SECONDS + 60))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$ready_url" || true) == 200 ]]; do
        kill -0 "$BROKER_PID" 2>/dev/null || die "the broker exited: $(tail -5 "$LOGS/broker.log")"
        ((SECONDS < deadline)) || die "the broker was not ready within 60 s ($ready_url)"
        sleep 0.2
    done
    log "broker ready"
}

# The SCRAM user (SCRAM-SHA-256 and SCRAM-SHA-512), created over the SASL_SSL listener as the
# PLAIN user with AlterUserScramCredentials and checked with DescribeUserScramCredentials.
create_scram_user() {
    log "creating the SCRAM user $SCRAM_USER (log: $LOGS/scram_user.log)"
    timeout --kill-after=10 "$CLIENT_TIMEOUT" "$VENV/bin/python" "$COMPAT/scram_user.py" \
        --secure-bootstrap "$SECURE_BOOTSTRAP" --ca-file "$CA_FILE" --timeout "$STEP_TIMEOUT" \
        --sasl-user "$SASL_USER" --sasl-password "$SASL_PASSWORD" \
        --scram-user "$SCRAM_USER" --scram-password "$SCRAM_PASSWORD" >"$LOGS/scram_user.log" 2>&1 ||
        die "creating the SCRAM user $SCRAM_USER: $(tail -3 "$LOGS/scram_user.log")"
    log "$(tail -1 "$LOGS/scram_user.log")"
}

# --- scenarios ---------------------------------------------------------------------------------
client_command() {
    case $1 in
        kcat) echo bash "$COMPAT/kcat.sh" ;;
        confluent-kafka) echo "$VENV/bin/python" "$COMPAT/confluent_kafka_check.py" ;;
        kafka-python) echo "$VENV/bin/python" "$COMPAT/kafka_python_check.py" ;;
        aiokafka) echo "$VENV/bin/python" "$COMPAT/aiokafka_check.py" ;;
        kafkajs) echo node "$COMPAT/kafkajs_check.js" ;;
        *) die "unknown client $1" ;;
    esac
}

declare -A VERSION RESULT DETAIL EXIT_CODE
run_client() {
    local client=$1 out="$LOGS/$1.out" err="$LOGS/$1.err" command code=0 kind step verdict detail
    local token expired_token foreign_token
    read -r -a command < <(client_command "$client")
    # Fresh tokens for each client: a good one, one that expired an hour ago (beyond the
    # broker's 30 s clock skew) and one the foreign key signed.
    token=$(mint_token "$OAUTH_KEY" "$OAUTH_LIFETIME")
    expired_token=$(mint_token "$OAUTH_KEY" -3600)
    foreign_token=$(mint_token "$OAUTH_FOREIGN_KEY" "$OAUTH_LIFETIME")
    log "running $client"
    local start=$SECONDS
    (cd "$COMPAT" && timeout --kill-after=10 "$CLIENT_TIMEOUT" "${command[@]}" \
        --bootstrap "$BOOTSTRAP" --timeout "$STEP_TIMEOUT" --secure-bootstrap "$SECURE_BOOTSTRAP" \
        --ca-file "$CA_FILE" --sasl-user "$SASL_USER" --sasl-password "$SASL_PASSWORD" \
        --scram-user "$SCRAM_USER" --scram-password "$SCRAM_PASSWORD" \
        --ssl-bootstrap "$SSL_BOOTSTRAP" --client-cert "$CLIENT_CERT" --client-key "$CLIENT_KEY" \
        --foreign-cert "$FOREIGN_CERT" --foreign-key "$FOREIGN_KEY" \
        --sasl-plaintext-bootstrap "$SASL_PLAINTEXT_BOOTSTRAP" \
        --oauth-user "$OAUTH_USER" --oauth-token "$token" --oauth-expired-token "$expired_token" \
        --oauth-foreign-token "$foreign_token" \
        >"$out" 2>"$err") || code=$?
    EXIT_CODE[$client]=$code
    while read -r _ kind rest; do
        case $kind in
            version) VERSION[$client]=$rest ;;
            step)
                read -r step verdict detail <<<"$rest"
                RESULT[$client/$step]=$verdict
                DETAIL[$client/$step]=$detail
                ;;
        esac
    done < <(grep '^COMPAT ' "$out" || true)
    log "$client finished in $((SECONDS - start)) s (exit status $code)"
}

# --- report ------------------------------------------------------------------------------------
# Whether client $1 runs step $2; the table says n/a where it does not.
#   readme       only kcat: the README's round trip is a kcat one.
#   oauthbearer  not kcat: kcat has no way to hand librdkafka a token it did not make itself.
#                librdkafka takes a custom token only from an application's token refresh
#                callback (rd_kafka_oauthbearer_set_token), which kcat does not expose; Debian's
#                librdkafka 2.0.2 is built without libcurl, so sasl.oauthbearer.method=oidc (a
#                token endpoint) is "not supported in this build"; what remains is
#                enable.sasl.oauthbearer.unsecure.jwt, whose tokens are unsigned (alg=none),
#                and the broker never accepts those. So kcat is not run for it (not a FAIL).
applies() {
    case $2 in
        readme) [[ $1 == kcat ]] ;;
        oauthbearer) [[ $1 != kcat ]] ;;
        *) true ;;
    esac
}

report() {
    local failed=0 client step cell row
    printf '\n| client | version |'
    printf ' %s |' "${STEPS[@]}"
    printf '\n|---|---|'
    printf -- '---|%.0s' "${STEPS[@]}"
    printf '\n'
    for client in "${CLIENTS[@]}"; do
        row="| $client | ${VERSION[$client]:-unknown} |"
        for step in "${STEPS[@]}"; do
            if ! applies "$client" "$step"; then
                cell="n/a"
            else
                cell=${RESULT[$client/$step]:-not reached}
                [[ $cell == PASS ]] || failed=1
            fi
            row+=" $cell |"
        done
        [[ ${EXIT_CODE[$client]} -eq 0 ]] || failed=1
        printf '%s\n' "$row"
    done
    printf '\nBroker: %s. Python %s, Node.js %s. Transactions: not supported by the broker, not tested.\n' \
        "${BROKER_DESCRIPTION}" "$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')" \
        "$(node --version)"

    printf '\nDetails:\n'
    for client in "${CLIENTS[@]}"; do
        for step in "${STEPS[@]}"; do
            applies "$client" "$step" || continue
            [[ -n ${RESULT[$client/$step]:-} ]] || continue
            printf '  %-16s %-14s %s %.600s\n' "$client" "$step" "${RESULT[$client/$step]}" "${DETAIL[$client/$step]}"
        done
        if [[ ${EXIT_CODE[$client]} -ne 0 && -s $LOGS/$client.err ]]; then
            printf '  %-16s exited with status %s%s; last lines of %s:\n' "$client" "${EXIT_CODE[$client]}" \
                "$([[ ${EXIT_CODE[$client]} -eq 124 ]] && echo " (timed out after $CLIENT_TIMEOUT s)")" \
                "$LOGS/$client.err"
            tail -n 15 "$LOGS/$client.err" | sed 's/^/      /'
        fi
    done
    if ((failed)) && [[ -f $LOGS/broker.log ]]; then
        printf '\nBroker warnings and errors (%s):\n' "$LOGS/broker.log"
        sed 's/\x1b\[[0-9;]*m//g' "$LOGS/broker.log" | grep -E ' (WARN|ERROR) ' | tail -n 20 | sed 's/^/  /' || true
    fi
    return $failed
}

# --- main --------------------------------------------------------------------------------------
suite_start=$SECONDS
for client in "${CLIENTS[@]}"; do
    client_command "$client" >/dev/null
done
mkdir -p "$LOGS"
rm -f "$LOGS"/*.out "$LOGS"/*.err "$LOGS"/broker.log "$LOGS"/scram_user.log "$LOGS"/mint_token.log \
    "$LOGS"/openssl.log
install_clients
if [[ -n ${RIVULET_COMPAT_BOOTSTRAP:-} ]]; then
    BOOTSTRAP=$RIVULET_COMPAT_BOOTSTRAP
    SECURE_BOOTSTRAP=${RIVULET_COMPAT_SECURE_BOOTSTRAP:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_SECURE_BOOTSTRAP too}
    CA_FILE=${RIVULET_COMPAT_CA_FILE:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_CA_FILE too}
    SASL_USER=${RIVULET_COMPAT_SASL_USER:-$SASL_USER}
    SASL_PASSWORD=${RIVULET_COMPAT_SASL_PASSWORD:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_SASL_PASSWORD too}
    : "${RIVULET_COMPAT_OAUTH_KEY:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_OAUTH_KEY too}"
    SSL_BOOTSTRAP=${RIVULET_COMPAT_SSL_BOOTSTRAP:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_SSL_BOOTSTRAP too}
    CLIENT_CERT=${RIVULET_COMPAT_CLIENT_CERT:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_CLIENT_CERT too}
    CLIENT_KEY=${RIVULET_COMPAT_CLIENT_KEY:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_CLIENT_KEY too}
    SASL_PLAINTEXT_BOOTSTRAP=${RIVULET_COMPAT_SASL_PLAINTEXT_BOOTSTRAP:?with RIVULET_COMPAT_BOOTSTRAP, set RIVULET_COMPAT_SASL_PLAINTEXT_BOOTSTRAP too}
    make_oauth_keys
    BROKER_DESCRIPTION="external broker at $BOOTSTRAP"
else
    start_broker
fi
make_foreign_certificate
create_scram_user
for client in "${CLIENTS[@]}"; do
    run_client "$client"
done
status=0
report || status=1
log "suite finished in $((SECONDS - suite_start)) s: $( ((status)) && echo FAILED || echo passed)"
exit $status
