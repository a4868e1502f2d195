"""kafka-python against the broker: the scenario in compat_common.py, using KafkaAdminClient,
KafkaProducer (acks=all) and a group KafkaConsumer with manual commits. No api_version is set:
the client probes the broker as it does for its users. OAUTHBEARER tokens come from an
AbstractTokenProvider returning run.sh's token; the ssl step's client certificate is
ssl_certfile and ssl_keyfile.

kafka-python 3.0.12 answers the broker's OAUTHBEARER error challenge with 0x01 and then gets
SASL_AUTHENTICATION_FAILED, but often loses that answer: its transport drops the bytes of a read
that also finds the connection closed (KafkaSSLTransport._sock_recv returns them with the
error and _read_from_sock aborts without passing them on), and the broker closes right after the
answer, as Kafka does. Then the attempt ends in "socket disconnected" instead of
SaslAuthenticationFailedError (a wrong PLAIN password too). So a refused bad token is a producer
that cannot bootstrap, whichever way its attempts ended, and nothing produced with it."""

import logging
import sys

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.net.sasl.oauth import AbstractTokenProvider

import compat_common as common


class Check:
    def __init__(self, args):
        self.args = args
        self.topic = args.topic
        self.timeout_ms = int(args.timeout * 1000)
        self.partitions = []

    def create_topic(self):
        admin = KafkaAdminClient(bootstrap_servers=self.args.bootstrap)
        try:
            admin.create_topics(
                {self.topic: {"num_partitions": common.PARTITIONS, "replication_factor": 1}},
                timeout_ms=self.timeout_ms,
                wait_for_metadata=True,
            )
            described = admin.describe_topics([self.topic])
        finally:
            admin.close()
        if len(described) != 1 or described[0]["error_code"] != 0:
            raise common.CheckFailed(f"metadata for the new topic: {described}")
        partitions = described[0]["partitions"]
        if len(partitions) != common.PARTITIONS:
            raise common.CheckFailed(
                f"expected {common.PARTITIONS} partitions, metadata shows {len(partitions)}"
            )
        self.partitions = [
            TopicPartition(self.topic, p["partition_index"]) for p in partitions
        ]
        return f"{self.topic}: {len(partitions)} partitions in metadata"

    def produce(self, start, count):
        producer = KafkaProducer(
            bootstrap_servers=self.args.bootstrap,
            acks="all",
            linger_ms=5,
        )
        try:
            futures = [
                producer.send(self.topic, key=key.encode(), value=value.encode())
                for key, value in common.messages(self.topic, start, count)
            ]
            producer.flush(timeout=self.args.timeout)
            acked = set()
            failed = []
            for future in futures:
                if future.succeeded():
                    metadata = future.get()
                    acked.add((metadata.partition, metadata.offset))
                else:
                    failed.append(future.exception if future.is_done else "not done")
        finally:
            producer.close(timeout=self.args.timeout)
        if failed or len(acked) != count:
            raise common.CheckFailed(
                f"{len(acked)} distinct offsets acknowledged of {count}, "
                f"{len(failed)} failed (first {failed[:3]})"
            )
        return f"{count} acknowledged (acks=all)"

    def consumer(self):
        return KafkaConsumer(
            self.topic,
            bootstrap_servers=self.args.bootstrap,
            group_id=self.args.group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    def consume(self, consumer, start, count):
        received = common.Received(self.topic, start, count)
        deadline = common.Deadline(self.args.timeout)
        settle = None
        while not deadline.expired():
            if received.complete():
                settle = settle or common.Deadline(common.SETTLE_SECONDS)
                if settle.expired():
                    break
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    received.add(record.key, record.value)
        return received.verify()

    def consume_group(self):
        self.first = self.consumer()
        return self.consume(self.first, 0, common.FIRST_BATCH)

    def commit(self):
        self.first.commit()
        ends = self.first.end_offsets(self.partitions)
        total = 0
        for tp in self.partitions:
            committed = self.first.committed(tp)
            if committed != ends[tp]:
                raise common.CheckFailed(
                    f"partition {tp.partition}: committed {committed}, log end offset {ends[tp]}"
                )
            total += committed
        if total != common.FIRST_BATCH:
            raise common.CheckFailed(f"committed offsets sum to {total}")
        self.first.close()
        return f"committed offsets equal the log end offsets (sum {total}), consumer closed"

    def resume(self):
        self.produce(common.FIRST_BATCH, common.SECOND_BATCH)
        second = self.consumer()
        try:
            detail = self.consume(second, common.FIRST_BATCH, common.SECOND_BATCH)
        finally:
            second.close()
        return f"new consumer in the group got only the {detail}"


def secure(args, mechanism="PLAIN", user=None, password=None):
    return {
        "bootstrap_servers": args.secure_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user or args.sasl_user,
        "sasl_plain_password": password or args.sasl_password,
        "ssl_cafile": args.ca_file,
    }


def tls(args, cert, key):
    """SSL listener settings with client certificate cert and its key (None: no certificate)."""
    config = {
        "bootstrap_servers": args.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": args.ca_file,
    }
    if cert is not None:
        config.update({"ssl_certfile": cert, "ssl_keyfile": key})
    return config


def sasl_plaintext_config(args):
    return {
        "bootstrap_servers": args.sasl_plaintext_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": args.scram_user,
        "sasl_plain_password": args.scram_password,
    }


class StaticToken(AbstractTokenProvider):
    def __init__(self, token):
        super().__init__()
        self._token = token

    def token(self):
        return self._token


def oauth(args, token):
    return {
        "bootstrap_servers": args.secure_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": StaticToken(token),
        "ssl_cafile": args.ca_file,
    }


def secure_round_trip(args, topic, group, produce_with, consume_with):
    """Produces SECURE_BATCH messages to topic (auto-created) with the secure() settings
    produce_with, then reads them back in group with consume_with; returns the verify detail."""
    count = common.SECURE_BATCH
    producer = KafkaProducer(acks="all", **produce_with)
    try:
        futures = [
            producer.send(topic, key=key.encode(), value=value.encode())
            for key, value in common.messages(topic, 0, count)
        ]
        producer.flush(timeout=args.timeout)
        failed = [f for f in futures if not f.succeeded()]
    finally:
        producer.close()
    if failed:
        raise common.CheckFailed(f"{len(failed)} of {count} not acknowledged")
    consumer = KafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **consume_with,
    )
    received = common.Received(topic, 0, count)
    deadline = common.Deadline(args.timeout)
    try:
        while not received.complete() and not deadline.expired():
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    received.add(record.key, record.value)
    finally:
        consumer.close()
    return received.verify()


def sasl_ssl(args):
    detail = secure_round_trip(
        args, args.secure_topic, args.secure_group, secure(args), secure(args)
    )
    return f"SASL_SSL/PLAIN as {args.sasl_user}: {detail}"


def scram(args):
    user, password = args.scram_user, args.scram_password
    detail = secure_round_trip(
        args,
        args.scram_topic,
        args.scram_group,
        secure(args, "SCRAM-SHA-512", user, password),
        secure(args, "SCRAM-SHA-256", user, password),
    )
    return f"produced with SCRAM-SHA-512, consumed with SCRAM-SHA-256 as {user}: {detail}"


def bad_password(args):
    try:
        producer = KafkaProducer(**secure(args, password="wrong-password"))
    except kafka.errors.KafkaError as error:
        return f"refused: {type(error).__name__}: {error}"
    producer.close()
    raise common.CheckFailed("a producer connected with a wrong password")


class FailedAttempts(logging.Handler):
    """How each bootstrap connection attempt ended, from kafka-python's "Bootstrap connection to
    %s failed: %s" log lines; the producer itself only says it could not bootstrap."""

    def __init__(self):
        super().__init__()
        self.errors = []

    def emit(self, record):
        if str(record.msg).startswith("Bootstrap connection to") and isinstance(record.args, tuple):
            self.errors += [a for a in record.args if isinstance(a, Exception)]

    def summary(self):
        counts = {}
        for error in self.errors:
            name = type(error).__name__
            if name not in counts:
                counts[name] = [0, str(error)]
            counts[name][0] += 1
        return ", ".join(f"{n} ended with {text}" for n, text in counts.values())


def refused_token(args, token):
    """A producer with token must not bootstrap (its bootstrap includes a Metadata request), so
    cannot send to the refused topic; returns how its connection attempts ended."""
    failures = FailedAttempts()
    logging.getLogger("kafka.net.manager").addHandler(failures)
    try:
        producer = KafkaProducer(acks="all", bootstrap_timeout_ms=10_000, **oauth(args, token))
    except kafka.errors.KafkaError as error:
        outcome = f"{type(error).__name__}: {error}"
    else:
        producer.close(timeout=5)
        raise common.CheckFailed("a producer bootstrapped with it")
    finally:
        logging.getLogger("kafka.net.manager").removeHandler(failures)
    if not failures.errors:
        raise common.CheckFailed(f"no connection attempt failed ({outcome})")
    return f"{outcome}; of its {len(failures.errors)} connection attempts {failures.summary()}"


def refused_config(args, config, topic):
    """A producer with config must not bootstrap (its bootstrap includes a Metadata request), so
    cannot send to topic; returns how its connection attempts ended."""
    failures = FailedAttempts()
    logging.getLogger("kafka.net.manager").addHandler(failures)
    try:
        producer = KafkaProducer(acks="all", bootstrap_timeout_ms=10_000, **config)
    except kafka.errors.KafkaError as error:
        outcome = f"{type(error).__name__}: {error}"
    else:
        try:
            producer.send(topic, key=b"refused", value=b"refused").get(timeout=10)
        except kafka.errors.KafkaError:
            pass
        else:
            raise common.CheckFailed("a message was delivered")
        finally:
            producer.close(timeout=5)
        raise common.CheckFailed("a producer bootstrapped with it")
    finally:
        logging.getLogger("kafka.net.manager").removeHandler(failures)
    if not failures.errors:
        return outcome
    return f"{outcome}; of its {len(failures.errors)} connection attempts {failures.summary()}"


def ssl(args):
    good = tls(args, args.client_cert, args.client_key)
    detail = secure_round_trip(args, args.ssl_topic, args.ssl_group, good, good)
    refusals = []
    for what, cert, key in common.bad_certificates(args):
        try:
            refusals.append((what, refused_config(args, tls(args, cert, key), args.ssl_refused_topic)))
        except common.CheckFailed as error:
            raise common.CheckFailed(f"{what}: {error}") from None
    admin = KafkaAdminClient(**good)
    try:
        common.check_not_created(
            args, admin.list_topics(), args.ssl_refused_topic, "a bad certificate"
        )
    finally:
        admin.close()
    return common.ssl_detail(args, detail, refusals)


def sasl_plaintext(args):
    config = sasl_plaintext_config(args)
    detail = secure_round_trip(
        args, args.sasl_plaintext_topic, args.sasl_plaintext_group, config, config
    )
    return f"SASL_PLAINTEXT/SCRAM-SHA-256 as {args.scram_user}: {detail}"


def oauthbearer(args):
    good = oauth(args, args.oauth_token)
    detail = secure_round_trip(args, args.oauth_topic, args.oauth_group, good, good)
    refusals = []
    for what, token in common.bad_tokens(args):
        try:
            refusals.append((what, refused_token(args, token)))
        except common.CheckFailed as error:
            raise common.CheckFailed(f"{what}: {error}") from None
    admin = KafkaAdminClient(**good)
    try:
        common.check_not_created(args, admin.list_topics())
    finally:
        admin.close()
    return common.oauth_detail(args, detail, refusals)


def main():
    args = common.parse_args("kafka-python")
    common.report_version(f"kafka-python {kafka.__version__}")
    check = Check(args)
    return common.run_steps(
        [
            ("create-topic", check.create_topic),
            ("produce-10k", lambda: check.produce(0, common.FIRST_BATCH)),
            ("consume-group", check.consume_group),
            ("commit", check.commit),
            ("resume", check.resume),
            ("sasl-ssl", lambda: sasl_ssl(args)),
            ("bad-password", lambda: bad_password(args)),
            ("scram", lambda: scram(args)),
            ("oauthbearer", lambda: oauthbearer(args)),
            ("ssl", lambda: ssl(args)),
            ("sasl-plaintext", lambda: sasl_plaintext(args)),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
