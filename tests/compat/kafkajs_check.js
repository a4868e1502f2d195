// kafkajs against the broker: the scenario described in compat_common.py (create-topic,
// produce-10k, consume-group, commit, resume), using the kafkajs admin client, an idempotent
// producer (acks=-1) and a group consumer with manual commits.
//
// Then the sasl-ssl, bad-password, scram and oauthbearer steps on the broker's SASL_SSL listener.
// OAUTHBEARER tokens come from an oauthBearerProvider returning run.sh's token. kafkajs 2.2.4
// ignores the broker's RFC 7628 error challenge for a bad token ({"status":"invalid_token"}, an
// answer without an error code that waits for the client's 0x01 before failing): it takes the
// challenge for success and sends its next request, at which the broker closes the connection
// (a request before authenticating). So a bad token shows up as a closed or failing connection
// rather than as an authentication error; the step accepts either, as long as nothing is
// produced with it.
//
// Then the ssl step on the broker's SSL listener, which requires client certificates (the
// certificate and key go into kafkajs's ssl options, which are Node's tls.connect options), and
// the sasl-plaintext step on its SASL_PLAINTEXT listener with SCRAM-SHA-256 (ssl off).
//
// Usage: node kafkajs_check.js --bootstrap host:port --secure-bootstrap host:port --ca-file ca.pem
//          --sasl-user user --sasl-password password --scram-user user
//          --scram-password password --ssl-bootstrap host:port --client-cert cert.pem
//          --client-key key.pem --foreign-cert cert.pem --foreign-key key.pem
//          --sasl-plaintext-bootstrap host:port --oauth-user user --oauth-token token
//          --oauth-expired-token token --oauth-foreign-token token [--timeout seconds]
// Result lines go to stdout as "COMPAT <kind> ..." (see run.sh); logs go to stderr.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { Kafka, logLevel, Partitioners } = require('kafkajs');
const { version } = require('kafkajs/package.json');

const PARTITIONS = 3;
const FIRST_BATCH = 10000;
const SECOND_BATCH = 100;
const SECURE_BATCH = 100;
const SETTLE_MS = 3000;
const PRODUCE_CHUNK = 1000;

function parseArgs(argv) {
  const args = { timeoutMs: 60000 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--bootstrap') args.bootstrap = argv[i + 1];
    else if (argv[i] === '--timeout') args.timeoutMs = Number(argv[i + 1]) * 1000;
    else if (argv[i] === '--secure-bootstrap') args.secureBootstrap = argv[i + 1];
    else if (argv[i] === '--ca-file') args.caFile = argv[i + 1];
    else if (argv[i] === '--sasl-user') args.saslUser = argv[i + 1];
    else if (argv[i] === '--sasl-password') args.saslPassword = argv[i + 1];
    else if (argv[i] === '--scram-user') args.scramUser = argv[i + 1];
    else if (argv[i] === '--scram-password') args.scramPassword = argv[i + 1];
    else if (argv[i] === '--ssl-bootstrap') args.sslBootstrap = argv[i + 1];
    else if (argv[i] === '--client-cert') args.clientCert = argv[i + 1];
    else if (argv[i] === '--client-key') args.clientKey = argv[i + 1];
    else if (argv[i] === '--foreign-cert') args.foreignCert = argv[i + 1];
    else if (argv[i] === '--foreign-key') args.foreignKey = argv[i + 1];
    else if (argv[i] === '--sasl-plaintext-bootstrap') args.saslPlaintextBootstrap = argv[i + 1];
    else if (argv[i] === '--oauth-user') args.oauthUser = argv[i + 1];
    else if (argv[i] === '--oauth-token') args.oauthToken = argv[i + 1];
    else if (argv[i] === '--oauth-expired-token') args.oauthExpiredToken = argv[i + 1];
    else if (argv[i] === '--oauth-foreign-token') args.oauthForeignToken = argv[i + 1];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.bootstrap) throw new Error('--bootstrap host:port is required');
  const runId = crypto.randomBytes(4).toString('hex');
  args.topic = `compat-kafkajs-${runId}`;
  args.group = `compat-kafkajs-group-${runId}`;
  args.secureTopic = `compat-kafkajs-secure-${runId}`;
  args.secureGroup = `compat-kafkajs-secure-group-${runId}`;
  args.scramTopic = `${args.secureTopic}-scram`;
  args.scramGroup = `${args.secureGroup}-scram`;
  args.oauthTopic = `${args.secureTopic}-oauth`;
  args.oauthGroup = `${args.secureGroup}-oauth`;
  args.oauthRefusedTopic = `${args.secureTopic}-oauth-refused`;
  args.sslTopic = `${args.secureTopic}-ssl`;
  args.sslGroup = `${args.secureGroup}-ssl`;
  args.sslRefusedTopic = `${args.secureTopic}-ssl-refused`;
  args.saslPlaintextTopic = `${args.secureTopic}-sasl-plaintext`;
  args.saslPlaintextGroup = `${args.secureGroup}-sasl-plaintext`;
  return args;
}

class CheckFailed extends Error {
  constructor(message) {
    super(message);
    this.name = 'CheckFailed';
  }
}

const keyOf = (i) => `key-${String(i).padStart(5, '0')}`;
const valueOf = (topic, i) => `value-${String(i).padStart(5, '0')}-${topic}`;

function messages(topic, start, count) {
  const out = [];
  for (let i = start; i < start + count; i++) out.push({ key: keyOf(i), value: valueOf(topic, i) });
  return out;
}

// What a consumer has seen, checked against the messages it should see exactly once.
class Received {
  constructor(topic, start, count) {
    this.expected = new Map(messages(topic, start, count).map((m) => [m.key, m.value]));
    this.seen = new Map();
    this.duplicates = [];
    this.unexpected = [];
    this.wrongValue = [];
  }

  add(key, value) {
    key = key === null ? null : key.toString();
    value = value === null ? null : value.toString();
    if (!this.expected.has(key)) this.unexpected.push(key);
    else if (this.seen.has(key)) this.duplicates.push(key);
    else if (this.expected.get(key) !== value) this.wrongValue.push([key, value]);
    if (!this.seen.has(key)) this.seen.set(key, value);
  }

  complete() {
    return this.seen.size >= this.expected.size;
  }

  verify() {
    const missing = [...this.expected.keys()].filter((k) => !this.seen.has(k)).length;
    const problems = [];
    if (missing) problems.push(`${missing} of ${this.expected.size} messages missing`);
    if (this.duplicates.length) problems.push(`${this.duplicates.length} duplicates (first ${this.duplicates.slice(0, 3)})`);
    if (this.unexpected.length) problems.push(`${this.unexpected.length} messages not expected here (first ${this.unexpected.slice(0, 3)})`);
    if (this.wrongValue.length) problems.push(`${this.wrongValue.length} wrong values (first ${JSON.stringify(this.wrongValue.slice(0, 2))})`);
    if (problems.length) throw new CheckFailed(problems.join('; '));
    return `${this.seen.size} messages, each exactly once`;
  }
}

const oneLine = (text) => String(text).split(/\s+/).join(' ');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Check {
  constructor(args) {
    this.args = args;
    this.topic = args.topic;
    this.kafka = new Kafka({
      clientId: 'rivulet-compat',
      brokers: [args.bootstrap],
      logLevel: logLevel.ERROR,
    });
    this.admin = this.kafka.admin();
    this.consumers = [];
    this.nextOffset = new Map();
  }

  async createTopic() {
    await this.admin.connect();
    const created = await this.admin.createTopics({
      topics: [{ topic: this.topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: this.args.timeoutMs,
    });
    if (!created) throw new CheckFailed('createTopics answered that the topic already exists');
    const { topics } = await this.admin.fetchTopicMetadata({ topics: [this.topic] });
    const partitions = topics[0].partitions;
    this.partitionMetadata = partitions;
    if (partitions.length !== PARTITIONS) {
      throw new CheckFailed(`expected ${PARTITIONS} partitions, metadata shows ${partitions.length}`);
    }
    return `${this.topic}: ${partitions.length} partitions in metadata`;
  }

  // Every send must be answered with error code 0 for each partition it wrote to, at exactly
  // the base offset that follows what this check produced there before (the per-partition
  // counts come from the producer's own key partitioner).
  async produce(start, count) {
    const producer = this.kafka.producer({
      idempotent: true,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const partitioner = Partitioners.DefaultPartitioner();
    await producer.connect();
    try {
      const all = messages(this.topic, start, count);
      for (let i = 0; i < all.length; i += PRODUCE_CHUNK) {
        const chunk = all.slice(i, i + PRODUCE_CHUNK);
        const sent = new Map();
        for (const message of chunk) {
          const p = partitioner({ topic: this.topic, partitionMetadata: this.partitionMetadata, message });
          sent.set(p, (sent.get(p) || 0) + 1);
        }
        const results = await producer.send({ topic: this.topic, acks: -1, messages: chunk });
        if (results.length !== sent.size) {
          throw new CheckFailed(`sent to ${sent.size} partitions, ${results.length} answered`);
        }
        for (const r of results) {
          const expected = this.nextOffset.get(r.partition) || 0;
          if (r.errorCode !== 0 || Number(r.baseOffset) !== expected || !sent.has(r.partition)) {
            throw new CheckFailed(
              `partition ${r.partition}: error code ${r.errorCode}, base offset ${r.baseOffset}, expected ${expected}`,
            );
          }
          this.nextOffset.set(r.partition, expected + sent.get(r.partition));
        }
      }
    } finally {
      await producer.disconnect();
    }
    return `${count} acknowledged (acks=-1, idempotent) at contiguous offsets`;
  }

  async consume(start, count) {
    const consumer = this.kafka.consumer({ groupId: this.args.group });
    this.consumers.push(consumer);
    const received = new Received(this.topic, start, count);
    const positions = new Map();
    const crashes = [];
    consumer.on(consumer.events.CRASH, ({ payload }) => crashes.push(payload.error));
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        received.add(message.key, message.value);
        positions.set(partition, (BigInt(message.offset) + 1n).toString());
      },
    });
    const deadline = Date.now() + this.args.timeoutMs;
    while (!received.complete() && Date.now() < deadline) await sleep(100);
    await sleep(SETTLE_MS);
    const verify = () => {
      try {
        return received.verify();
      } catch (error) {
        if (crashes.length) error.message += `; the consumer crashed: ${crashes[0].name}: ${crashes[0].message}`;
        throw error;
      }
    };
    return { consumer, verify, positions };
  }

  async consumeGroup() {
    this.first = await this.consume(0, FIRST_BATCH);
    return this.first.verify();
  }

  async commit() {
    const { consumer, positions } = this.first;
    await consumer.commitOffsets(
      [...positions].map(([partition, offset]) => ({ topic: this.topic, partition, offset })),
    );
    const [committed] = await this.admin.fetchOffsets({ groupId: this.args.group, topics: [this.topic] });
    const ends = new Map((await this.admin.fetchTopicOffsets(this.topic)).map((p) => [p.partition, p.high]));
    let total = 0;
    for (const p of committed.partitions) {
      if (p.offset !== ends.get(p.partition)) {
        throw new CheckFailed(`partition ${p.partition}: committed ${p.offset}, log end offset ${ends.get(p.partition)}`);
      }
      total += Number(p.offset);
    }
    if (total !== FIRST_BATCH) throw new CheckFailed(`committed offsets sum to ${total}`);
    await consumer.disconnect();
    return `committed offsets equal the log end offsets (sum ${total}), consumer closed`;
  }

  async resume() {
    await this.produce(FIRST_BATCH, SECOND_BATCH);
    const second = await this.consume(FIRST_BATCH, SECOND_BATCH);
    await second.consumer.disconnect();
    return `new consumer in the group got only the ${second.verify()}`;
  }

  // A client of the SASL_SSL listener; the PLAIN user unless a mechanism and credentials are given.
  secureKafka({ mechanism = 'plain', username = this.args.saslUser, password = this.args.saslPassword } = {}) {
    return this.secureKafkaWith({ mechanism, username, password });
  }

  // A client of the SASL_SSL listener authenticating with OAUTHBEARER and token.
  oauthKafka(token) {
    return this.secureKafkaWith({ mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) });
  }

  secureKafkaWith(sasl) {
    return new Kafka({
      clientId: 'rivulet-compat-secure',
      brokers: [this.args.secureBootstrap],
      ssl: { ca: [fs.readFileSync(this.args.caFile, 'utf8')] },
      sasl,
      logLevel: logLevel.NOTHING,
      retry: { retries: 2 },
    });
  }

  // A client of the SSL listener presenting certificate cert with key (no certificate when null).
  tlsKafka(cert, key) {
    const ssl = { ca: [fs.readFileSync(this.args.caFile, 'utf8')] };
    if (cert) {
      ssl.cert = fs.readFileSync(cert, 'utf8');
      ssl.key = fs.readFileSync(key, 'utf8');
    }
    return new Kafka({
      clientId: 'rivulet-compat-ssl',
      brokers: [this.args.sslBootstrap],
      ssl,
      logLevel: logLevel.NOTHING,
      retry: { retries: 2 },
    });
  }

  // A client of the SASL_PLAINTEXT listener, as the SCRAM user with SCRAM-SHA-256.
  saslPlaintextKafka() {
    return new Kafka({
      clientId: 'rivulet-compat-sasl-plaintext',
      brokers: [this.args.saslPlaintextBootstrap],
      ssl: false,
      sasl: { mechanism: 'scram-sha-256', username: this.args.scramUser, password: this.args.scramPassword },
      logLevel: logLevel.NOTHING,
      retry: { retries: 2 },
    });
  }

  // Creates topic and produces SECURE_BATCH messages to it with the client produceWith, then reads
  // them back in group with the client consumeWith; returns the verify detail.
  async secureRoundTrip(topic, group, produceWith, consumeWith) {
    const admin = produceWith.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const producer = produceWith.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: messages(topic, 0, SECURE_BATCH) });
    } finally {
      await producer.disconnect();
    }
    const consumer = consumeWith.consumer({ groupId: group });
    this.consumers.push(consumer);
    const received = new Received(topic, 0, SECURE_BATCH);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => received.add(message.key, message.value) });
    const deadline = Date.now() + this.args.timeoutMs;
    while (!received.complete() && Date.now() < deadline) await sleep(100);
    await consumer.disconnect();
    return received.verify();
  }

  async saslSsl() {
    const kafka = this.secureKafka();
    const detail = await this.secureRoundTrip(this.args.secureTopic, this.args.secureGroup, kafka, kafka);
    return `SASL_SSL/PLAIN as ${this.args.saslUser}: ${detail}`;
  }

  async scram() {
    const { scramUser: username, scramPassword: password } = this.args;
    const detail = await this.secureRoundTrip(
      this.args.scramTopic,
      this.args.scramGroup,
      this.secureKafka({ mechanism: 'scram-sha-512', username, password }),
      this.secureKafka({ mechanism: 'scram-sha-256', username, password }),
    );
    return `produced with SCRAM-SHA-512, consumed with SCRAM-SHA-256 as ${username}: ${detail}`;
  }

  async badPassword() {
    const admin = this.secureKafka({ password: 'wrong-password' }).admin();
    try {
      await admin.connect();
    } catch (error) {
      if (error.name !== 'KafkaJSSASLAuthenticationError' && !/SASL|uthenticat/.test(error.message)) {
        throw new CheckFailed(`refused, but not by authentication: ${error.name}: ${error.message}`);
      }
      return `refused: ${error.name}: ${error.message}`;
    }
    await admin.disconnect();
    throw new CheckFailed('an admin client connected with a wrong password');
  }

  // A producer with token must not deliver one message to the refused topic; returns how it was
  // refused (see the top of this file for why that is not always an authentication error).
  async refusedToken(token) {
    const producer = this.oauthKafka(token).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await producer.connect();
      await producer.send({ topic: this.args.oauthRefusedTopic, acks: -1, messages: [{ key: 'refused', value: 'refused' }] });
    } catch (error) {
      const cause = error.originalError ? ` (${error.originalError.name}: ${error.originalError.message})` : '';
      return `${error.name}: ${error.message}${cause}`;
    } finally {
      await producer.disconnect().catch(() => {});
    }
    throw new CheckFailed('a message was delivered');
  }

  async oauthbearer() {
    const good = this.oauthKafka(this.args.oauthToken);
    const detail = await this.secureRoundTrip(this.args.oauthTopic, this.args.oauthGroup, good, good);
    const refusals = [];
    for (const [what, token] of [
      ['foreign-key token', this.args.oauthForeignToken],
      ['expired token', this.args.oauthExpiredToken],
    ]) {
      try {
        refusals.push([what, await this.refusedToken(token)]);
      } catch (error) {
        throw new CheckFailed(`${what}: ${error.message}`);
      }
    }
    const admin = good.admin();
    await admin.connect();
    try {
      if ((await admin.listTopics()).includes(this.args.oauthRefusedTopic)) {
        throw new CheckFailed(`${this.args.oauthRefusedTopic} exists: a producer with a bad token got a request through`);
      }
    } finally {
      await admin.disconnect();
    }
    return `SASL_SSL/OAUTHBEARER as ${this.args.oauthUser}: ${detail}; ` +
      `${refusals.map(([what]) => what).join(' and ')} refused, nothing produced with them; ` +
      refusals.map(([what, how]) => `${what}: ${how}`).join('; ');
  }

  // A producer of kafka must not deliver one message to topic; returns how it was refused.
  async refusedProducer(kafka, topic) {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'refused', value: 'refused' }] });
    } catch (error) {
      const cause = error.originalError ? ` (${error.originalError.name}: ${error.originalError.message})` : '';
      return `${error.name}: ${error.message}${cause}`;
    } finally {
      await producer.disconnect().catch(() => {});
    }
    throw new CheckFailed('a message was delivered');
  }

  async ssl() {
    const good = this.tlsKafka(this.args.clientCert, this.args.clientKey);
    const detail = await this.secureRoundTrip(this.args.sslTopic, this.args.sslGroup, good, good);
    const refusals = [];
    for (const [what, cert, key] of [
      ['foreign-CA certificate', this.args.foreignCert, this.args.foreignKey],
      ['no certificate', null, null],
    ]) {
      try {
        refusals.push([what, await this.refusedProducer(this.tlsKafka(cert, key), this.args.sslRefusedTopic)]);
      } catch (error) {
        throw new CheckFailed(`${what}: ${error.message}`);
      }
    }
    const admin = good.admin();
    await admin.connect();
    try {
      if ((await admin.listTopics()).includes(this.args.sslRefusedTopic)) {
        throw new CheckFailed(`${this.args.sslRefusedTopic} exists: a producer with a bad certificate got a request through`);
      }
    } finally {
      await admin.disconnect();
    }
    return `SSL with client certificate CN=compat-client: ${detail}; ` +
      `${refusals.map(([what]) => what).join(' and ')} refused, nothing produced with them; ` +
      refusals.map(([what, how]) => `${what}: ${how}`).join('; ');
  }

  async saslPlaintext() {
    const kafka = this.saslPlaintextKafka();
    const detail = await this.secureRoundTrip(this.args.saslPlaintextTopic, this.args.saslPlaintextGroup, kafka, kafka);
    return `SASL_PLAINTEXT/SCRAM-SHA-256 as ${this.args.scramUser}: ${detail}`;
  }

  async close() {
    for (const consumer of this.consumers) await consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  console.log(`COMPAT version kafkajs ${version}`);
  const check = new Check(args);
  const steps = [
    ['create-topic', () => check.createTopic()],
    ['produce-10k', () => check.produce(0, FIRST_BATCH)],
    ['consume-group', () => check.consumeGroup()],
    ['commit', () => check.commit()],
    ['resume', () => check.resume()],
    ['sasl-ssl', () => check.saslSsl()],
    ['bad-password', () => check.badPassword()],
    ['scram', () => check.scram()],
    ['oauthbearer', () => check.oauthbearer()],
    ['ssl', () => check.ssl()],
    ['sasl-plaintext', () => check.saslPlaintext()],
  ];
  let status = 0;
  for (const [name, step] of steps) {
    try {
      console.log(`COMPAT step ${name} PASS ${oneLine(await step())}`);
    } catch (error) {
      console.log(`COMPAT step ${name} FAIL ${oneLine(`${error.name}: ${error.message}`)}`);
      status = 1;
      break;
    }
  }
  await check.close();
  return status;
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
