#!/usr/bin/env bash
# kcat (librdkafka) against the broker: the scenario in compat_common.py, then the README's
# round trip.
#
#   create-topic   kcat has no admin API: `kcat -L -t TOPIC` asks for the topic's metadata, which
#                  auto-creates it (auto.create.topics.enable, num.partitions partitions)
#   produce-10k    kcat -P -K: with acks=all; kcat exits non-zero if any delivery failed
#   consume-group  kcat's balanced consumer (-G) with a fresh group, -e to stop at the end:
#                  every key:value exactly once
#   commit         kcat commits through librdkafka's auto-commit and the final commit on close;
#                  librdkafka's cgrp debug log must show every OffsetCommit returned Success
#   resume         produce 100 more, run -G again in the same group: exactly those 100
#                  (auto.offset.reset=earliest, so anything but the commit would show up)
#   readme         the README's round trip, verbatim: `kcat -b ADDR -L` lists the broker,
#                  `echo "hello" | kcat -b ADDR -t readme-demo -P`, then
#                  `kcat -b ADDR -t readme-demo -C -e` prints hello
#   sasl-ssl       on the SASL_SSL listener (PLAIN, the suite's CA): produce 100 messages to a new
#                  topic and read them back (-C -e): each exactly once
#   bad-password   the same listener refuses a wrong password: kcat -L fails with an
#                  authentication error
#   scram          on the same listener, as the SCRAM user run.sh creates: produce 100 messages to
#                  a new topic with SCRAM-SHA-512, read them back with SCRAM-SHA-256 in a new group
#                  (-G, -e): each exactly once
#   ssl            on the SSL listener, which requires client certificates: with the client
#                  certificate the suite's CA signed (ssl.certificate.location, ssl.key.location),
#                  produce 100 messages to a new topic and read them back in a new group (-G, -e):
#                  each exactly once; then kcat -P with a certificate a foreign CA signed, and with
#                  no certificate, must each fail to deliver one message to another topic, which
#                  kcat -L with the good certificate must then not list
#   sasl-plaintext on the SASL_PLAINTEXT listener, as the SCRAM user with SCRAM-SHA-256: produce
#                  100 messages to a new topic, read them back in a new group (-G, -e): each
#                  exactly once
#   oauthbearer    not run: kcat cannot send a signed token of its own choosing, only unsigned
#                  (alg=none) ones, which the broker refuses (run.sh says why and reports n/a);
#                  the --oauth-* arguments run.sh passes every client are ignored
#
# Usage: kcat.sh --bootstrap host:port --secure-bootstrap host:port --ca-file ca.pem
#          --sasl-user user --sasl-password password --scram-user user
#          --scram-password password --ssl-bootstrap host:port --client-cert cert.pem
#          --client-key key.pem --foreign-cert cert.pem --foreign-key key.pem
#          --sasl-plaintext-bootstrap host:port [--oauth-user user --oauth-token token
#          --oauth-expired-token token --oauth-foreign-token token] [--timeout seconds]
# Result lines go to stdout as "COMPAT <kind> ..." (see run.sh); logs go to stderr.
set -euo pipefail

BOOTSTRAP=
SECURE_BOOTSTRAP=
CA_FILE=
SASL_USER=
SASL_PASSWORD=
SCRAM_USER=
SCRAM_PASSWORD=
SSL_BOOTSTRAP=
CLIENT_CERT=
CLIENT_KEY=
FOREIGN_CERT=
FOREIGN_KEY=
SASL_PLAINTEXT_BOOTSTRAP=
STEP_TIMEOUT=60
while (($#)); do
    case $1 in
        --bootstrap) BOOTSTRAP=$2; shift 2 ;;
        --timeout) STEP_TIMEOUT=$2; shift 2 ;;
        --secure-bootstrap) SECURE_BOOTSTRAP=$2; shift 2 ;;
        --ca-file) CA_FILE=$2; shift 2 ;;
        --sasl-user) SASL_USER=$2; shift 2 ;;
        --sasl-password) SASL_PASSWORD=$2; shift 2 ;;
        --scram-user) SCRAM_USER=$2; shift 2 ;;
        --scram-password) SCRAM_PASSWORD=$2; shift 2 ;;
        --ssl-bootstrap) SSL_BOOTSTRAP=$2; shift 2 ;;
        --client-cert) CLIENT_CERT=$2; shift 2 ;;
        --client-key) CLIENT_KEY=$2; shift 2 ;;
        --foreign-cert) FOREIGN_CERT=$2; shift 2 ;;
        --foreign-key) FOREIGN_KEY=$2; shift 2 ;;
        --sasl-plaintext-bootstrap) SASL_PLAINTEXT_BOOTSTRAP=$2; shift 2 ;;
        --oauth-user | --oauth-token | --oauth-expired-token | --oauth-foreign-token) shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n $BOOTSTRAP ]] || { echo "--bootstrap host:port is required" >&2; exit 2; }

RUN_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
TOPIC=compat-kcat-$RUN_ID
GROUP=compat-kcat-group-$RUN_ID
PARTITIONS=3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

pass() { echo "COMPAT step $1 PASS $(tr '\n' ' ' <<<"$2")"; }
fail() { echo "COMPAT step $1 FAIL $(tr '\n' ' ' <<<"$2")"; }
kc() { timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" "$@"; }
# "exit status N" of the command that just failed, saying so when it was the step timeout.
status_of() { if (($1 == 124)); then echo "timed out after $STEP_TIMEOUT s"; else echo "exit status $1"; fi; }
# The last lines of a kcat log without librdkafka's debug lines, on one line.
tail_of() { grep -v '^%7' "$1" | tail -3 | tr '\n' ' '; }

# key-NNNNN:value-NNNNN-TOPIC lines for message indexes $1 .. $1+$2-1
messages() { seq "$1" $(($1 + $2 - 1)) | awk -v t="$TOPIC" '{ printf "key-%05d:value-%05d-%s\n", $1, $1, t }'; }

# Compares what a consumer printed ($1) with what it should have printed ($2), as multisets.
compare() {
    local got=$1 want=$2 missing extra
    missing=$(comm -23 <(sort "$want") <(sort "$got") | wc -l)
    extra=$(comm -13 <(sort "$want") <(sort "$got") | wc -l)
    if ((missing || extra)); then
        echo "$missing of $(wc -l <"$want") messages missing, $extra duplicate or unexpected" \
            "(first: $(comm -13 <(sort "$want") <(sort "$got") | head -3 | tr '\n' ' '))"
        return 1
    fi
    echo "$(wc -l <"$got") messages, each exactly once"
}

# Runs the balanced consumer to the end of every assigned partition; stdout to $1, log to $2.
group_consume() {
    kc -G "$GROUP" -X auto.offset.reset=earliest -d cgrp -e -K: -f '%k:%s\n' "$TOPIC" >"$1" 2>"$2"
}

create_topic() {
    kc -L -t "$TOPIC" >"$WORK/metadata" 2>&1 ||
        { echo "kcat -L -t failed ($(status_of $?)): $(tail_of "$WORK/metadata")"; return 1; }
    grep -q "topic \"$TOPIC\" with $PARTITIONS partitions" "$WORK/metadata" || {
        echo "metadata does not show $PARTITIONS partitions: $(tr '\n' ' ' <"$WORK/metadata")"
        return 1
    }
    echo "$TOPIC: auto-created by a metadata request, $PARTITIONS partitions"
}

produce() {
    messages "$1" "$2" >"$WORK/produce.in"
    kc -t "$TOPIC" -P -K: -X acks=all -l "$WORK/produce.in" 2>"$WORK/produce.log" ||
        { echo "kcat -P failed ($(status_of $?)): $(tail_of "$WORK/produce.log")"; return 1; }
    echo "$2 delivered (acks=all)"
}

consume_group() {
    messages 0 10000 >"$WORK/first.want"
    group_consume "$WORK/first.out" "$WORK/first.log" ||
        { echo "kcat -G failed ($(status_of $?)): $(tail_of "$WORK/first.log")"; return 1; }
    compare "$WORK/first.out" "$WORK/first.want"
}

commit() {
    local ok bad
    ok=$(grep -cE 'OffsetCommit for [0-9]+ partition\(s\).*returned: Success' "$WORK/first.log" || true)
    bad=$(grep -E 'OffsetCommit for [0-9]+ partition\(s\).*returned: ' "$WORK/first.log" |
        grep -v 'returned: Success' || true)
    if [[ -n $bad ]]; then
        echo "a commit failed: $(head -3 <<<"$bad" | tr '\n' ' ')"
        return 1
    fi
    if ((ok == 0)); then
        echo "the consumer never committed"
        return 1
    fi
    echo "$ok OffsetCommit request(s) returned Success, consumer closed"
}

resume() {
    local detail
    detail=$(produce 10000 100) || { echo "producing the next 100 failed: $detail"; return 1; }
    messages 10000 100 >"$WORK/second.want"
    group_consume "$WORK/second.out" "$WORK/second.log" ||
        { echo "kcat -G failed ($(status_of $?)): $(tail_of "$WORK/second.log")"; return 1; }
    detail=$(compare "$WORK/second.out" "$WORK/second.want") || { echo "$detail"; return 1; }
    echo "new consumer in the group got only the $detail"
}

readme() {
    local out
    out=$(timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" -L 2>&1) ||
        { echo "kcat -L failed ($(status_of $?)): $(head -3 <<<"$out")"; return 1; }
    grep -q "broker [0-9]* at $BOOTSTRAP" <<<"$out" ||
        { echo "kcat -L does not list $BOOTSTRAP: $(head -3 <<<"$out")"; return 1; }
    echo "hello" | timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" -t readme-demo -P 2>"$WORK/readme.log" ||
        { echo "kcat -P failed ($(status_of $?)): $(tail_of "$WORK/readme.log")"; return 1; }
    out=$(timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" -t readme-demo -C -e 2>"$WORK/readme.log") ||
        { echo "kcat -C -e failed ($(status_of $?)): $(tail_of "$WORK/readme.log")"; return 1; }
    [[ $out == hello ]] || { echo "kcat -C -e printed '$(head -3 <<<"$out")', not 'hello'"; return 1; }
    echo "-L lists the broker; -P then -C -e on readme-demo prints hello"
}

# kcat on the SASL_SSL listener with mechanism $1 as user $2 with password $3.
secure_kc() {
    local mechanism=$1 user=$2 password=$3
    shift 3
    timeout "$STEP_TIMEOUT" kcat -b "$SECURE_BOOTSTRAP" -X security.protocol=SASL_SSL \
        -X sasl.mechanisms="$mechanism" -X sasl.username="$user" -X sasl.password="$password" \
        -X ssl.ca.location="$CA_FILE" "$@"
}

# kcat on the SSL listener presenting the client certificate $1 with key $2 (none if $1 is empty).
ssl_kc() {
    local cert=$1 key=$2
    shift 2
    local certificate=()
    [[ -z $cert ]] || certificate=(-X ssl.certificate.location="$cert" -X ssl.key.location="$key")
    timeout "$STEP_TIMEOUT" kcat -b "$SSL_BOOTSTRAP" -X security.protocol=SSL \
        -X ssl.ca.location="$CA_FILE" "${certificate[@]}" "$@"
}

# kcat on the SASL_PLAINTEXT listener with mechanism $1 as user $2 with password $3.
sasl_plaintext_kc() {
    local mechanism=$1 user=$2 password=$3
    shift 3
    timeout "$STEP_TIMEOUT" kcat -b "$SASL_PLAINTEXT_BOOTSTRAP" -X security.protocol=SASL_PLAINTEXT \
        -X sasl.mechanisms="$mechanism" -X sasl.username="$user" -X sasl.password="$password" "$@"
}

# Produces 100 messages to topic $1 (auto-created) with the command in the array PRODUCE_WITH
# (secure_kc, ssl_kc or sasl_plaintext_kc and their arguments), described as $2, then reads them
# back with CONSUME_WITH, described as $3 — in group $4 if one is given (-G), otherwise with -C —
# both to the end (-e); prints how they compare.
secure_round_trip() {
    local topic=$1 produced_over=$2 consumed_over=$3 group=${4:-}
    local consume=(-C -t "$topic")
    [[ -z $group ]] || consume=(-G "$group" -X auto.offset.reset=earliest "$topic")
    seq 0 99 | awk -v t="$topic" '{ printf "key-%05d:value-%05d-%s\n", $1, $1, t }' >"$WORK/$topic.want"
    "${PRODUCE_WITH[@]}" -t "$topic" -P -K: -X acks=all -l "$WORK/$topic.want" 2>"$WORK/$topic.log" || {
        echo "kcat -P over $produced_over failed ($(status_of $?)): $(tail_of "$WORK/$topic.log")"
        return 1
    }
    "${CONSUME_WITH[@]}" -e -K: -f '%k:%s\n' "${consume[@]}" >"$WORK/$topic.out" 2>"$WORK/$topic.log" || {
        echo "kcat ${consume[0]} over $consumed_over failed ($(status_of $?)): $(tail_of "$WORK/$topic.log")"
        return 1
    }
    compare "$WORK/$topic.out" "$WORK/$topic.want"
}

sasl_ssl() {
    local detail
    PRODUCE_WITH=(secure_kc PLAIN "$SASL_USER" "$SASL_PASSWORD")
    CONSUME_WITH=("${PRODUCE_WITH[@]}")
    detail=$(secure_round_trip "$TOPIC-secure" SASL_SSL/PLAIN SASL_SSL/PLAIN) ||
        { echo "$detail"; return 1; }
    echo "SASL_SSL/PLAIN as $SASL_USER: $detail"
}

scram() {
    local detail
    PRODUCE_WITH=(secure_kc SCRAM-SHA-512 "$SCRAM_USER" "$SCRAM_PASSWORD")
    CONSUME_WITH=(secure_kc SCRAM-SHA-256 "$SCRAM_USER" "$SCRAM_PASSWORD")
    detail=$(secure_round_trip "$TOPIC-secure-scram" SASL_SSL/SCRAM-SHA-512 SASL_SSL/SCRAM-SHA-256 \
        "$GROUP-secure-scram") || { echo "$detail"; return 1; }
    echo "produced with SCRAM-SHA-512, consumed with SCRAM-SHA-256 as $SCRAM_USER: $detail"
}

# kcat -P with the client certificate $2 and key $3 (none if $2 is empty), described as $1, must
# fail to deliver one message to the ssl step's refused topic within 10 s; prints librdkafka's
# first error.
refused_certificate() {
    local what=$1 cert=$2 key=$3 log="$WORK/ssl-refused.log"
    if echo refused:refused | ssl_kc "$cert" "$key" -t "$TOPIC-secure-ssl-refused" -P -K: \
        -X acks=all -X message.timeout.ms=10000 >"$log" 2>&1; then
        echo "$what: kcat -P delivered the message"
        return 1
    fi
    echo "$what: kcat -P failed ($(grep -v '^%7' "$log" | grep -m1 -iE 'ssl|handshake|fail|disconnect' || tail_of "$log"))"
}

ssl() {
    local detail refusals out
    PRODUCE_WITH=(ssl_kc "$CLIENT_CERT" "$CLIENT_KEY")
    CONSUME_WITH=("${PRODUCE_WITH[@]}")
    detail=$(secure_round_trip "$TOPIC-secure-ssl" SSL SSL "$GROUP-secure-ssl") || { echo "$detail"; return 1; }
    refusals=$(refused_certificate "foreign-CA certificate" "$FOREIGN_CERT" "$FOREIGN_KEY") ||
        { echo "$refusals"; return 1; }
    refusals+="; $(refused_certificate "no certificate" "" "")" || { echo "$refusals"; return 1; }
    out=$(ssl_kc "$CLIENT_CERT" "$CLIENT_KEY" -L 2>&1) ||
        { echo "kcat -L with the good certificate failed ($(status_of $?)): $(head -3 <<<"$out")"; return 1; }
    if grep -q "\"$TOPIC-secure-ssl-refused\"" <<<"$out"; then
        echo "$TOPIC-secure-ssl-refused exists: kcat with a bad certificate got a request through"
        return 1
    fi
    echo "SSL with client certificate CN=compat-client: $detail; foreign-CA certificate and no" \
        "certificate refused, nothing produced with them; $refusals"
}

sasl_plaintext() {
    local detail
    PRODUCE_WITH=(sasl_plaintext_kc SCRAM-SHA-256 "$SCRAM_USER" "$SCRAM_PASSWORD")
    CONSUME_WITH=("${PRODUCE_WITH[@]}")
    detail=$(secure_round_trip "$TOPIC-secure-sasl-plaintext" SASL_PLAINTEXT/SCRAM-SHA-256 \
        SASL_PLAINTEXT/SCRAM-SHA-256 "$GROUP-secure-sasl-plaintext") || { echo "$detail"; return 1; }
    echo "SASL_PLAINTEXT/SCRAM-SHA-256 as $SCRAM_USER: $detail"
}

bad_password() {
    local out
    if out=$(secure_kc PLAIN "$SASL_USER" wrong-password -L -m 10 2>&1); then
        echo "kcat -L succeeded with a wrong password"
        return 1
    fi
    grep -qi 'authenticat' <<<"$out" || { echo "refused, but not by authentication: $(head -3 <<<"$out" | tr '\n' ' ')"; return 1; }
    echo "refused: $(grep -i -m1 'authenticat' <<<"$out")"
}

run_step() {
    local name=$1 detail
    shift
    if detail=$("$@" 2>&1); then
        pass "$name" "$detail"
    else
        fail "$name" "$detail"
        return 1
    fi
}

echo "COMPAT version $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\) .*/kcat \1 (librdkafka \2)/p')"
status=0
run_step create-topic create_topic &&
    run_step produce-10k produce 0 10000 &&
    run_step consume-group consume_group &&
    run_step commit commit &&
    run_step resume resume || status=1
# The README round trip and the secure listener do not depend on the scenario above.
run_step readme readme || status=1
run_step sasl-ssl sasl_ssl && run_step bad-password bad_password && run_step scram scram || status=1
run_step ssl ssl || status=1
run_step sasl-plaintext sasl_plaintext || status=1
exit $status
