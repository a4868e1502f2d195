"""confluent-kafka (librdkafka) against the broker: the scenario in compat_common.py, using
AdminClient, an idempotent Producer (acks=all) and a group Consumer with manual commits.
OAUTHBEARER tokens come from an oauth_cb returning run.sh's token; the ssl step's client
certificate is ssl.certificate.location and ssl.key.location."""

import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import compat_common as common


class Check:
    def __init__(self, args):
        self.args = args
        self.topic = args.topic
        self.partitions = []

    def create_topic(self):
        admin = AdminClient({"bootstrap.servers": self.args.bootstrap})
        futures = admin.create_topics(
            [NewTopic(self.topic, num_partitions=common.PARTITIONS, replication_factor=1)],
            operation_timeout=self.args.timeout,
        )
        futures[self.topic].result(timeout=self.args.timeout)
        metadata = admin.list_topics(topic=self.topic, timeout=self.args.timeout)
        topic = metadata.topics[self.topic]
        if topic.error is not None:
            raise common.CheckFailed(f"metadata for the new topic has error {topic.error}")
        if len(topic.partitions) != common.PARTITIONS:
            raise common.CheckFailed(
                f"expected {common.PARTITIONS} partitions, metadata shows {len(topic.partitions)}"
            )
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
        return f"{self.topic}: {len(topic.partitions)} partitions in metadata"

    def produce(self, start, count):
        producer = Producer(
            {
                "bootstrap.servers": self.args.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        acked = []
        failed = []

        def on_delivery(error, message):
            if error is not None:
                failed.append(error)
            else:
                acked.append((message.partition(), message.offset()))

        for key, value in common.messages(self.topic, start, count):
            producer.produce(self.topic, key=key, value=value, on_delivery=on_delivery)
            producer.poll(0)
        left = producer.flush(self.args.timeout)
        if left or failed or len(acked) != count:
            raise common.CheckFailed(
                f"{len(acked)} of {count} acknowledged, {len(failed)} failed "
                f"(first {failed[:3]}), {left} still in flight"
            )
        if len(set(acked)) != count:
            raise common.CheckFailed("two messages were acknowledged at the same offset")
        return f"{count} acknowledged (acks=all, idempotent)"

    def consumer(self):
        consumer = Consumer(
            {
                "bootstrap.servers": self.args.bootstrap,
                "group.id": self.args.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.topic])
        return consumer

    def consume(self, consumer, start, count):
        received = common.Received(self.topic, start, count)
        deadline = common.Deadline(self.args.timeout)
        settle = None
        while not deadline.expired():
            if received.complete():
                settle = settle or common.Deadline(common.SETTLE_SECONDS)
                if settle.expired():
                    break
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            received.add(message.key(), message.value())
        return received.verify()

    def consume_group(self):
        self.first = self.consumer()
        return self.consume(self.first, 0, common.FIRST_BATCH)

    def commit(self):
        committed = self.first.commit(asynchronous=False)
        errors = [tp for tp in committed if tp.error is not None]
        if errors:
            raise common.CheckFailed(f"commit failed for {errors}")
        stored = self.first.committed(self.partitions, timeout=self.args.timeout)
        total = 0
        for tp in stored:
            _low, high = self.first.get_watermark_offsets(tp, timeout=self.args.timeout)
            if tp.error is not None or tp.offset != high:
                raise common.CheckFailed(
                    f"partition {tp.partition}: committed {tp.offset} ({tp.error}), "
                    f"log end offset {high}"
                )
            total += high
        if total != common.FIRST_BATCH:
            raise common.CheckFailed(f"committed offsets sum to {total}")
        self.first.close()
        return f"committed offsets equal the log end offsets (sum {total}), consumer closed"

    def secure(self, mechanism="PLAIN", user=None, password=None):
        return {
            "bootstrap.servers": self.args.secure_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": user or self.args.sasl_user,
            "sasl.password": password or self.args.sasl_password,
            "ssl.ca.location": self.args.ca_file,
        }

    def tls(self, cert, key):
        """SSL listener settings with client certificate cert and its key (None: no certificate)."""
        config = {
            "bootstrap.servers": self.args.ssl_bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": self.args.ca_file,
        }
        if cert is not None:
            config.update({"ssl.certificate.location": cert, "ssl.key.location": key})
        return config

    def sasl_plaintext(self):
        return {
            "bootstrap.servers": self.args.sasl_plaintext_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": self.args.scram_user,
            "sasl.password": self.args.scram_password,
        }

    def oauth(self, token):
        """SASL_SSL/OAUTHBEARER settings whose oauth_cb hands librdkafka token. The expiry it
        reports is librdkafka's refresh schedule only, so it is in the future even for the
        expired token: librdkafka refuses to send a token it believes expired, and the point
        is that the broker refuses it."""
        return {
            "bootstrap.servers": self.args.secure_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": lambda _config: (token, time.time() + 3600),
            "ssl.ca.location": self.args.ca_file,
        }

    def secure_round_trip(self, topic, group, produce_with, consume_with):
        """Produces SECURE_BATCH messages to topic (auto-created) with the secure() settings
        produce_with, then reads them back in group with consume_with; returns the verify detail."""
        count = common.SECURE_BATCH
        producer = Producer({**produce_with, "acks": "all"})
        failed = []
        for key, value in common.messages(topic, 0, count):
            producer.produce(
                topic, key=key, value=value, on_delivery=lambda e, _m: e and failed.append(e)
            )
            producer.poll(0)
        left = producer.flush(self.args.timeout)
        if left or failed:
            raise common.CheckFailed(f"{left} unacknowledged, failures {failed[:3]}")
        consumer = Consumer(
            {
                **consume_with,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        received = common.Received(topic, 0, count)
        deadline = common.Deadline(self.args.timeout)
        try:
            while not received.complete() and not deadline.expired():
                message = consumer.poll(0.5)
                if message is None:
                    continue
                if message.error() is not None:
                    raise KafkaException(message.error())
                received.add(message.key(), message.value())
        finally:
            consumer.close()
        return received.verify()

    def sasl_ssl(self):
        detail = self.secure_round_trip(
            self.args.secure_topic, self.args.secure_group, self.secure(), self.secure()
        )
        return f"SASL_SSL/PLAIN as {self.args.sasl_user}: {detail}"

    def scram(self):
        user, password = self.args.scram_user, self.args.scram_password
        detail = self.secure_round_trip(
            self.args.scram_topic,
            self.args.scram_group,
            self.secure("SCRAM-SHA-512", user, password),
            self.secure("SCRAM-SHA-256", user, password),
        )
        return f"produced with SCRAM-SHA-512, consumed with SCRAM-SHA-256 as {user}: {detail}"

    def bad_password(self):
        errors = []
        admin = AdminClient({**self.secure(password="wrong-password"), "error_cb": errors.append})
        try:
            admin.list_topics(timeout=10)
        except KafkaException:
            pass
        else:
            raise common.CheckFailed("metadata was served to a wrong password")
        for _ in range(20):  # error_cb runs from poll
            admin.poll(0.1)
        refusals = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if not refusals:
            raise common.CheckFailed(f"no authentication error reported, saw {errors}")
        return f"refused: {refusals[0].str()}"

    def refused_token(self, token):
        """A producer with token must not deliver one message to the refused topic, and librdkafka
        must report the authentication failure; returns the error it reported."""
        errors = []
        failed = []
        producer = Producer({**self.oauth(token), "error_cb": errors.append, "acks": "all"})
        producer.produce(
            self.args.oauth_refused_topic,
            key="refused",
            value="refused",
            on_delivery=lambda e, _m: failed.append(e),
        )
        deadline = common.Deadline(10)
        while not deadline.expired() and not failed:
            producer.poll(0.2)
            if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
                break
        producer.purge()
        producer.flush(5)
        delivered = [e for e in failed if e is None]
        if delivered:
            raise common.CheckFailed("the message was delivered")
        refusals = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if not refusals:
            raise common.CheckFailed(f"no authentication error reported, saw {errors}")
        return refusals[0].str()

    def refused_certificate(self, config):
        """A producer with config must not deliver one message to the SSL step's refused topic,
        and librdkafka must report the failed connection; returns the error it reported.
        Seen with confluent-kafka 2.16.1 (librdkafka 2.16.0): given the foreign CA's certificate
        it presents none at all (the broker logs "peer sent no certificates" and librdkafka
        reports the "certificate required" alert), where kcat's librdkafka 2.0.2 presents it
        and the broker logs UnknownIssuer; either way the connection is refused."""
        errors = []
        failed = []
        producer = Producer({**config, "error_cb": errors.append, "acks": "all"})
        producer.produce(
            self.args.ssl_refused_topic,
            key="refused",
            value="refused",
            on_delivery=lambda e, _m: failed.append(e),
        )
        deadline = common.Deadline(10)
        while not deadline.expired() and not failed and not errors:
            producer.poll(0.2)
        producer.purge()
        producer.flush(5)
        if [e for e in failed if e is None]:
            raise common.CheckFailed("the message was delivered")
        if not errors:
            raise common.CheckFailed("no connection error reported")
        return errors[0].str()

    def ssl(self):
        good = self.tls(self.args.client_cert, self.args.client_key)
        detail = self.secure_round_trip(self.args.ssl_topic, self.args.ssl_group, good, good)
        refusals = []
        for what, cert, key in common.bad_certificates(self.args):
            try:
                refusals.append((what, self.refused_certificate(self.tls(cert, key))))
            except common.CheckFailed as error:
                raise common.CheckFailed(f"{what}: {error}") from None
        topics = AdminClient(good).list_topics(timeout=self.args.timeout).topics
        common.check_not_created(self.args, topics, self.args.ssl_refused_topic, "a bad certificate")
        return common.ssl_detail(self.args, detail, refusals)

    def sasl_plaintext_round_trip(self):
        config = self.sasl_plaintext()
        detail = self.secure_round_trip(
            self.args.sasl_plaintext_topic, self.args.sasl_plaintext_group, config, config
        )
        return f"SASL_PLAINTEXT/SCRAM-SHA-256 as {self.args.scram_user}: {detail}"

    def oauthbearer(self):
        good = self.oauth(self.args.oauth_token)
        detail = self.secure_round_trip(self.args.oauth_topic, self.args.oauth_group, good, good)
        refusals = []
        for what, token in common.bad_tokens(self.args):
            try:
                refusals.append((what, self.refused_token(token)))
            except common.CheckFailed as error:
                raise common.CheckFailed(f"{what}: {error}") from None
        topics = AdminClient(good).list_topics(timeout=self.args.timeout).topics
        common.check_not_created(self.args, topics)
        return common.oauth_detail(self.args, detail, refusals)

    def resume(self):
        self.produce(common.FIRST_BATCH, common.SECOND_BATCH)
        second = self.consumer()
        try:
            detail = self.consume(second, common.FIRST_BATCH, common.SECOND_BATCH)
        finally:
            second.close()
        return f"new consumer in the group got only the {detail}"


def main():
    args = common.parse_args("confluent-kafka")
    common.report_version(
        f"confluent-kafka {confluent_kafka.__version__} "
        f"(librdkafka {confluent_kafka.libversion()[0]})"
    )
    check = Check(args)
    return common.run_steps(
        [
            ("create-topic", check.create_topic),
            ("produce-10k", lambda: check.produce(0, common.FIRST_BATCH)),
            ("consume-group", check.consume_group),
            ("commit", check.commit),
            ("resume", check.resume),
            ("sasl-ssl", check.sasl_ssl),
            ("bad-password", check.bad_password),
            ("scram", check.scram),
            ("oauthbearer", check.oauthbearer),
            ("ssl", check.ssl),
            ("sasl-plaintext", check.sasl_plaintext_round_trip),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
