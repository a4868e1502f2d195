"""Shared pieces of the Python client checks: the scenario's messages, the result lines that
run.sh turns into its table, and the exactly-once verification of what a consumer received.

Every check program runs the same scenario against the broker given on the command line:

  create-topic   create the topic with the client's admin API (3 partitions) and see it in metadata
  produce-10k    produce 10,000 keyed messages and check every one was acknowledged
  consume-group  consume them with a fresh consumer group: every key/value exactly once
  commit         commit the consumed offsets and read them back: they equal the log end offsets
  resume         close, produce 100 more, start a new consumer in the same group: it gets exactly
                 those 100 (auto.offset.reset=earliest, so anything but the commit would show up)
  sasl-ssl       on the broker's SASL_SSL listener (PLAIN, the suite's CA): produce 100 messages
                 to a new topic and read each back exactly once in a new group
  bad-password   the same listener refuses the same user with a wrong password
  scram          on the same listener, as the SCRAM user run.sh creates with
                 AlterUserScramCredentials: produce 100 messages to a new topic authenticated with
                 SCRAM-SHA-512, then read each back exactly once in a new group authenticated with
                 SCRAM-SHA-256
  oauthbearer    on the same listener with SASL/OAUTHBEARER and the RS256 token run.sh minted for
                 the suite's key set (mint_token.py): produce 100 messages to a new topic and read
                 each back exactly once in a new group; then a producer with a token signed by a
                 key not in the key set, and one with an expired token, must each be refused
                 sending one message to another topic, which the good token must then not find in
                 the topic list (a refused client's Metadata request would have auto-created it)
  ssl            on the broker's SSL listener, which requires client certificates: with the client
                 certificate the suite's CA signed, produce 100 messages to a new topic and read
                 each back exactly once in a new group; then a producer with a certificate a
                 foreign CA signed, and one with no certificate, must each be refused sending one
                 message to another topic, which the good certificate must then not find in the
                 topic list
  sasl-plaintext on the broker's SASL_PLAINTEXT listener (no TLS), as the SCRAM user with
                 SCRAM-SHA-256: produce 100 messages to a new topic and read each back exactly
                 once in a new group

Result lines go to stdout as "COMPAT <kind> ..." (see run.sh); everything else goes to stderr.
"""

import argparse
import sys
import time
import uuid

PARTITIONS = 3
FIRST_BATCH = 10_000
SECOND_BATCH = 100
SECURE_BATCH = 100
# How long a consumer keeps polling after it has everything, to catch duplicates or extras.
SETTLE_SECONDS = 3.0
STEPS = [
    "create-topic",
    "produce-10k",
    "consume-group",
    "commit",
    "resume",
    "sasl-ssl",
    "bad-password",
    "scram",
    "oauthbearer",
    "ssl",
    "sasl-plaintext",
]


def log(message):
    print(message, file=sys.stderr, flush=True)


def report_version(version):
    print(f"COMPAT version {version}", flush=True)


def report_step(step, ok, detail):
    verdict = "PASS" if ok else "FAIL"
    detail = " ".join(str(detail).split())
    print(f"COMPAT step {step} {verdict} {detail}", flush=True)


class CheckFailed(Exception):
    """A deviation from what Kafka documents; the message says what was expected and seen."""


def parse_args(client):
    parser = argparse.ArgumentParser(description=f"{client} compatibility check")
    parser.add_argument("--bootstrap", required=True, help="host:port of the broker")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per step")
    parser.add_argument("--secure-bootstrap", required=True, help="host:port of the SASL_SSL listener")
    parser.add_argument("--ca-file", required=True, help="PEM CA certificate of the broker")
    parser.add_argument("--sasl-user", required=True)
    parser.add_argument("--sasl-password", required=True)
    parser.add_argument("--scram-user", required=True)
    parser.add_argument("--scram-password", required=True)
    parser.add_argument("--ssl-bootstrap", required=True, help="host:port of the SSL listener")
    parser.add_argument(
        "--client-cert", required=True, help="PEM client certificate the CA of --ca-file signed"
    )
    parser.add_argument("--client-key", required=True, help="its PEM private key")
    parser.add_argument(
        "--foreign-cert", required=True, help="PEM client certificate a foreign CA signed"
    )
    parser.add_argument("--foreign-key", required=True, help="its PEM private key")
    parser.add_argument(
        "--sasl-plaintext-bootstrap", required=True, help="host:port of the SASL_PLAINTEXT listener"
    )
    parser.add_argument("--oauth-user", required=True, help="the sub claim of the tokens")
    parser.add_argument("--oauth-token", required=True, help="a token the broker accepts")
    parser.add_argument(
        "--oauth-expired-token", required=True, help="a correctly signed, expired token"
    )
    parser.add_argument(
        "--oauth-foreign-token", required=True, help="a token signed by a key not in the key set"
    )
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:8]
    args.topic = f"compat-{client}-{run_id}"
    args.group = f"compat-{client}-group-{run_id}"
    args.secure_topic = f"compat-{client}-secure-{run_id}"
    args.secure_group = f"compat-{client}-secure-group-{run_id}"
    args.scram_topic = f"{args.secure_topic}-scram"
    args.scram_group = f"{args.secure_group}-scram"
    args.oauth_topic = f"{args.secure_topic}-oauth"
    args.oauth_group = f"{args.secure_group}-oauth"
    args.oauth_refused_topic = f"{args.secure_topic}-oauth-refused"
    args.ssl_topic = f"{args.secure_topic}-ssl"
    args.ssl_group = f"{args.secure_group}-ssl"
    args.ssl_refused_topic = f"{args.secure_topic}-ssl-refused"
    args.sasl_plaintext_topic = f"{args.secure_topic}-sasl-plaintext"
    args.sasl_plaintext_group = f"{args.secure_group}-sasl-plaintext"
    return args


def bad_tokens(args):
    """(what, token) for each token the broker must refuse."""
    return [
        ("foreign-key token", args.oauth_foreign_token),
        ("expired token", args.oauth_expired_token),
    ]


def oauth_detail(args, round_trip, refusals):
    """The oauthbearer step's PASS detail: the round trip's, then the refusals, what the client
    said last (run.sh shows the first 600 characters)."""
    said = "; ".join(f"{what}: {how}" for what, how in refusals)
    return (
        f"SASL_SSL/OAUTHBEARER as {args.oauth_user}: {round_trip}; "
        f"{' and '.join(what for what, _ in refusals)} refused, nothing produced with them; {said}"
    )


def check_not_created(args, topics, topic=None, what="a bad token"):
    """Raises unless the refused producers' topic (the oauthbearer step's unless given) is missing
    from topics (a topic list the good credentials got): had a bad credential been let in, its
    Metadata request would have created it."""
    topic = topic or args.oauth_refused_topic
    if topic in topics:
        raise CheckFailed(f"{topic} exists: a producer with {what} got a request through")


def bad_certificates(args):
    """(what, certificate, key) for each client the SSL listener must refuse; None: no
    certificate."""
    return [
        ("foreign-CA certificate", args.foreign_cert, args.foreign_key),
        ("no certificate", None, None),
    ]


def ssl_detail(args, round_trip, refusals):
    """The ssl step's PASS detail, like oauth_detail's."""
    said = "; ".join(f"{what}: {how}" for what, how in refusals)
    return (
        f"SSL with client certificate CN=compat-client: {round_trip}; "
        f"{' and '.join(what for what, _ in refusals)} refused, nothing produced with them; {said}"
    )


def key_of(index):
    return f"key-{index:05d}"


def value_of(topic, index):
    return f"value-{index:05d}-{topic}"


def messages(topic, start, count):
    """(key, value) strings for message indexes start..start+count."""
    return [(key_of(i), value_of(topic, i)) for i in range(start, start + count)]


class Received:
    """What a consumer has seen so far, checked against the messages it should see."""

    def __init__(self, topic, start, count):
        self.topic = topic
        self.expected = dict(messages(topic, start, count))
        self.seen = {}
        self.duplicates = []
        self.unexpected = []
        self.wrong_value = []

    def add(self, key, value):
        key = key.decode() if isinstance(key, bytes) else key
        value = value.decode() if isinstance(value, bytes) else value
        if key not in self.expected:
            self.unexpected.append(key)
        elif key in self.seen:
            self.duplicates.append(key)
        elif self.expected[key] != value:
            self.wrong_value.append((key, value))
        self.seen.setdefault(key, value)

    def complete(self):
        return len(self.seen) >= len(self.expected)

    def verify(self):
        missing = len(self.expected) - len(self.seen.keys() & self.expected.keys())
        problems = []
        if missing:
            problems.append(f"{missing} of {len(self.expected)} messages missing")
        if self.duplicates:
            problems.append(f"{len(self.duplicates)} duplicates (first {self.duplicates[:3]})")
        if self.unexpected:
            problems.append(
                f"{len(self.unexpected)} messages not expected here (first {self.unexpected[:3]})"
            )
        if self.wrong_value:
            problems.append(f"{len(self.wrong_value)} wrong values (first {self.wrong_value[:2]})")
        if problems:
            raise CheckFailed("; ".join(problems))
        return f"{len(self.seen)} messages, each exactly once"


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return self.left() == 0.0


def run_steps(steps):
    """Runs (name, function) pairs in order; each function returns a detail string or raises.
    The first failure stops the run (later steps depend on it). Returns the exit status."""
    for name, step in steps:
        try:
            detail = step()
        except Exception as error:  # every failure becomes a FAIL line with its reason
            report_step(name, False, f"{type(error).__name__}: {error or '(no message)'}")
            return 1
        report_step(name, True, detail)
    return 0
