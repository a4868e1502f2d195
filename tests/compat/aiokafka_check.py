"""aiokafka against the broker: the scenario in compat_common.py, using AIOKafkaAdminClient, an
idempotent AIOKafkaProducer (acks=all) and a group AIOKafkaConsumer with manual commits, all on
one asyncio event loop. OAUTHBEARER tokens come from an AbstractTokenProvider returning run.sh's
token; the ssl step's client certificate goes into create_ssl_context(certfile=, keyfile=).

aiokafka 0.14 sends its OAUTHBEARER token and takes whatever SaslAuthenticate answers without an
error code as success: it ignores the broker's RFC 7628 error challenge for a bad token
({"status":"invalid_token"}, which waits for the client's 0x01 before failing) and sends its next
request, at which the broker closes the connection (a request before authenticating). So a bad
token shows up as a connection that cannot bootstrap rather than as an authentication error; the
oauthbearer step accepts either, as long as nothing is produced with it."""

import asyncio
import sys

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import AbstractTokenProvider
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

import compat_common as common


class Check:
    def __init__(self, args):
        self.args = args
        self.topic = args.topic
        self.partitions = []
        self.first = None

    async def close(self):
        """Stops the first consumer if a failed step left it running."""
        if self.first is not None:
            await self.first.stop()
            self.first = None

    async def create_topic(self):
        admin = AIOKafkaAdminClient(bootstrap_servers=self.args.bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(self.topic, num_partitions=common.PARTITIONS, replication_factor=1)],
                timeout_ms=int(self.args.timeout * 1000),
            )
            errors = [t for t in response.to_object()["topic_errors"] if t["error_code"] != 0]
            if errors:
                raise common.CheckFailed(f"CreateTopics answered {errors}")
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        if len(described) != 1 or described[0]["error_code"] != 0:
            raise common.CheckFailed(f"metadata for the new topic: {described}")
        partitions = described[0]["partitions"]
        if len(partitions) != common.PARTITIONS:
            raise common.CheckFailed(
                f"expected {common.PARTITIONS} partitions, metadata shows {len(partitions)}"
            )
        self.partitions = [TopicPartition(self.topic, p["partition"]) for p in partitions]
        return f"{self.topic}: {len(partitions)} partitions in metadata"

    async def produce(self, start, count):
        producer = AIOKafkaProducer(
            bootstrap_servers=self.args.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await producer.start()
        try:
            futures = [
                await producer.send(self.topic, key=key.encode(), value=value.encode())
                for key, value in common.messages(self.topic, start, count)
            ]
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self.args.timeout
            )
        finally:
            await producer.stop()
        failed = [r for r in results if isinstance(r, BaseException)]
        acked = {(r.partition, r.offset) for r in results if not isinstance(r, BaseException)}
        if failed or len(acked) != count:
            raise common.CheckFailed(
                f"{len(acked)} distinct offsets acknowledged of {count}, "
                f"{len(failed)} failed (first {failed[:3]})"
            )
        return f"{count} acknowledged (acks=all, idempotent)"

    async def consumer(self):
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.args.bootstrap,
            group_id=self.args.group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        return consumer

    async def consume(self, consumer, start, count):
        received = common.Received(self.topic, start, count)
        deadline = common.Deadline(self.args.timeout)
        settle = None
        while not deadline.expired():
            if received.complete():
                settle = settle or common.Deadline(common.SETTLE_SECONDS)
                if settle.expired():
                    break
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    received.add(record.key, record.value)
        return received.verify()

    async def consume_group(self):
        self.first = await self.consumer()
        return await self.consume(self.first, 0, common.FIRST_BATCH)

    async def commit(self):
        await self.first.commit()
        ends = await self.first.end_offsets(self.partitions)
        total = 0
        for tp in self.partitions:
            committed = await self.first.committed(tp)
            if committed != ends[tp]:
                raise common.CheckFailed(
                    f"partition {tp.partition}: committed {committed}, log end offset {ends[tp]}"
                )
            total += committed
        if total != common.FIRST_BATCH:
            raise common.CheckFailed(f"committed offsets sum to {total}")
        await self.close()
        return f"committed offsets equal the log end offsets (sum {total}), consumer closed"

    async def resume(self):
        await self.produce(common.FIRST_BATCH, common.SECOND_BATCH)
        second = await self.consumer()
        try:
            detail = await self.consume(second, common.FIRST_BATCH, common.SECOND_BATCH)
        finally:
            await second.stop()
        return f"new consumer in the group got only the {detail}"


def secure(args, mechanism="PLAIN", user=None, password=None):
    return {
        "bootstrap_servers": args.secure_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": user or args.sasl_user,
        "sasl_plain_password": password or args.sasl_password,
        "ssl_context": create_ssl_context(cafile=args.ca_file),
    }


def tls(args, cert, key):
    """SSL listener settings with client certificate cert and its key (None: no certificate)."""
    return {
        "bootstrap_servers": args.ssl_bootstrap,
        "security_protocol": "SSL",
        "ssl_context": create_ssl_context(cafile=args.ca_file, certfile=cert, keyfile=key),
    }


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
        self._token = token

    async def token(self):
        return self._token


def oauth(args, token):
    return {
        "bootstrap_servers": args.secure_bootstrap,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": StaticToken(token),
        "ssl_context": create_ssl_context(cafile=args.ca_file),
    }


async def secure_round_trip(args, topic, group, produce_with, consume_with):
    """Produces SECURE_BATCH messages to topic (auto-created) with the secure() settings
    produce_with, then reads them back in group with consume_with; returns the verify detail."""
    count = common.SECURE_BATCH
    producer = AIOKafkaProducer(acks="all", **produce_with)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key.encode(), value=value.encode())
            for key, value in common.messages(topic, 0, count)
        ]
        results = await asyncio.wait_for(
            asyncio.gather(*futures, return_exceptions=True), args.timeout
        )
    finally:
        await producer.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise common.CheckFailed(f"{len(failed)} of {count} failed (first {failed[:2]})")
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **consume_with,
    )
    await consumer.start()
    received = common.Received(topic, 0, count)
    deadline = common.Deadline(args.timeout)
    try:
        while not received.complete() and not deadline.expired():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    received.add(record.key, record.value)
    finally:
        await consumer.stop()
    return received.verify()


async def sasl_ssl(args):
    detail = await secure_round_trip(
        args, args.secure_topic, args.secure_group, secure(args), secure(args)
    )
    return f"SASL_SSL/PLAIN as {args.sasl_user}: {detail}"


async def scram(args):
    user, password = args.scram_user, args.scram_password
    detail = await secure_round_trip(
        args,
        args.scram_topic,
        args.scram_group,
        secure(args, "SCRAM-SHA-512", user, password),
        secure(args, "SCRAM-SHA-256", user, password),
    )
    return f"produced with SCRAM-SHA-512, consumed with SCRAM-SHA-256 as {user}: {detail}"


async def bad_password(args):
    producer = AIOKafkaProducer(**secure(args, password="wrong-password"))
    try:
        await asyncio.wait_for(producer.start(), args.timeout)
    except (KafkaError, asyncio.TimeoutError) as error:
        await producer.stop()
        return f"refused: {type(error).__name__}: {error}"
    await producer.stop()
    raise common.CheckFailed("a producer started with a wrong password")


async def refused_token(args, token):
    """A producer with token must not deliver one message to the refused topic; returns how it
    was refused (see the module's docstring for why that is not an authentication error)."""
    producer = AIOKafkaProducer(acks="all", request_timeout_ms=10_000, **oauth(args, token))
    try:
        await asyncio.wait_for(producer.start(), args.timeout)
        await asyncio.wait_for(
            producer.send_and_wait(args.oauth_refused_topic, key=b"refused", value=b"refused"), 15
        )
    except (KafkaError, asyncio.TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        await producer.stop()
    raise common.CheckFailed("a message was delivered")


async def refused_certificate(args, config):
    """A producer with config must not deliver one message to the ssl step's refused topic;
    returns how it was refused."""
    producer = AIOKafkaProducer(acks="all", request_timeout_ms=10_000, **config)
    try:
        await asyncio.wait_for(producer.start(), args.timeout)
        await asyncio.wait_for(
            producer.send_and_wait(args.ssl_refused_topic, key=b"refused", value=b"refused"), 15
        )
    except (KafkaError, asyncio.TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    finally:
        await producer.stop()
    raise common.CheckFailed("a message was delivered")


async def ssl(args):
    good = tls(args, args.client_cert, args.client_key)
    detail = await secure_round_trip(args, args.ssl_topic, args.ssl_group, good, good)
    refusals = []
    for what, cert, key in common.bad_certificates(args):
        try:
            refusals.append((what, await refused_certificate(args, tls(args, cert, key))))
        except common.CheckFailed as error:
            raise common.CheckFailed(f"{what}: {error}") from None
    admin = AIOKafkaAdminClient(**good)
    await admin.start()
    try:
        common.check_not_created(
            args, await admin.list_topics(), args.ssl_refused_topic, "a bad certificate"
        )
    finally:
        await admin.close()
    return common.ssl_detail(args, detail, refusals)


async def sasl_plaintext(args):
    config = sasl_plaintext_config(args)
    detail = await secure_round_trip(
        args, args.sasl_plaintext_topic, args.sasl_plaintext_group, config, config
    )
    return f"SASL_PLAINTEXT/SCRAM-SHA-256 as {args.scram_user}: {detail}"


async def oauthbearer(args):
    detail = await secure_round_trip(
        args,
        args.oauth_topic,
        args.oauth_group,
        oauth(args, args.oauth_token),
        oauth(args, args.oauth_token),
    )
    refusals = []
    for what, token in common.bad_tokens(args):
        try:
            refusals.append((what, await refused_token(args, token)))
        except common.CheckFailed as error:
            raise common.CheckFailed(f"{what}: {error}") from None
    admin = AIOKafkaAdminClient(**oauth(args, args.oauth_token))
    await admin.start()
    try:
        common.check_not_created(args, await admin.list_topics())
    finally:
        await admin.close()
    return common.oauth_detail(args, detail, refusals)


async def run(args):
    check = Check(args)
    steps = [
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
    for name, step in steps:
        try:
            detail = await step()
        except Exception as error:  # every failure becomes a FAIL line with its reason
            common.report_step(name, False, f"{type(error).__name__}: {error or '(no message)'}")
            await check.close()
            return 1
        common.report_step(name, True, detail)
    return 0


def main():
    args = common.parse_args("aiokafka")
    common.report_version(f"aiokafka {aiokafka.__version__}")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
