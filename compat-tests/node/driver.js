'use strict'
// KafkaJS column of Strom's compat-tests: `node driver.js <scenario> <bootstrap> <topic>` runs one
// scenario and prints `@@RESULT {json}` as its last line. Semantics match the other drivers.
const {
  Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel,
  AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes,
} = require('kafkajs')
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')

const [scenario, bootstrap, topic] = process.argv.slice(2)
const BASE_TS = (Math.floor(Date.now() / 1000) - 3600) * 1000
const kafka = new Kafka({
  clientId: 'compat-kafkajs', brokers: bootstrap.split(','), logLevel: logLevel.WARN,
  requestTimeout: 15000, connectionTimeout: 10000, retry: { retries: 3, initialRetryTime: 200 },
})

class Fail extends Error {}
class NotApplicable extends Error {}
const check = (ok, msg) => { if (!ok) throw new Fail(msg) }
const vals = (n, p) => Array.from({ length: n }, (_, i) => `${p}${i}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b)

function errName (e) {
  const inner = (e && e.errors && e.errors.length ? e.errors[0] : null) ||
    (e && e.originalError) || (e && e.cause) || e
  if (inner && inner.type) return inner.type
  if (e && e.type) return e.type
  return `client error: ${e && e.message}`
}

async function withAdmin (fn) {
  const a = kafka.admin()
  await a.connect()
  try { return await fn(a) } finally { await a.disconnect() }
}

const create = (t, numPartitions = 1, configs = {}) => withAdmin(async (a) => {
  await a.createTopics({
    waitForLeaders: true, timeout: 15000,
    topics: [{ topic: t, numPartitions, replicationFactor: 1, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
  })
})

async function produce (t, values, opts = {}, producerOpts = {}) {
  const p = kafka.producer({ allowAutoTopicCreation: false, ...producerOpts })
  await p.connect()
  try {
    const res = await p.send({ topic: t, acks: -1, ...opts, messages: values.map((v, i) => ({ key: `k-${i}`, value: v, partition: 0 })) })
    return res.map((r) => Number(r.baseOffset))
  } finally { await p.disconnect() }
}

// Reads n messages with a fresh group (KafkaJS has no assign()), from the beginning.
async function readGroup (t, n, consumerOpts = {}, fromBeginning = true, groupId = `${t}-r${Math.random().toString(36).slice(2, 8)}`, seconds = 12) {
  const c = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200, ...consumerOpts })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topics: [t], fromBeginning })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message) } })
    const end = Date.now() + seconds * 1000
    while (got.length < n && Date.now() < end) await sleep(50)
    return got.slice()
  } finally { await c.disconnect() }
}

function checkExact (msgs, want, first) {
  const got = msgs.map((m) => (m.value === null ? null : m.value.toString()))
  check(eq(got, want), `read ${got.length} of ${want.length} records, values differ: got ${JSON.stringify(got)} expected ${JSON.stringify(want)}`)
  const offs = msgs.map((m) => Number(m.offset))
  check(eq(offs, want.map((_, i) => first + i)), `offsets ${offs}`)
}

const S = {}

S.metadata = async (obs) => withAdmin(async (a) => {
  const d = await a.describeCluster()
  obs.brokers = d.brokers.length
  const expected = Number(process.env.COMPAT_BROKERS || '1')
  const addrs = d.brokers.map((br) => `${br.host}:${br.port}`)
  const want = bootstrap.split(',')
  obs.broker_is_bootstrap = addrs.length === want.length && want.every((a) => addrs.includes(a))
  obs.has_cluster_id = !!d.clusterId
  obs.has_controller = d.controller !== null && d.controller >= 0
  check(d.brokers.length === expected, `expected ${expected} broker(s): ${JSON.stringify(d.brokers)}`)
  check(obs.broker_is_bootstrap, `brokers advertised as ${addrs}, bootstrap ${bootstrap}`)
  check(obs.has_cluster_id, 'no cluster id')
})

async function retention (a, t) {
  const r = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ['retention.ms'] }] })
  const e = r.resources[0].configEntries.find((x) => x.configName === 'retention.ms')
  return e ? e.configValue : '<missing>'
}

async function topicError (a, t) {
  try {
    await a.fetchTopicMetadata({ topics: [t] })
    return 'still present'
  } catch (e) { return errName(e) }
}

S['topic-admin'] = async (obs) => {
  await create(topic, 3, { 'retention.ms': '3600000' })
  await withAdmin(async (a) => {
    const md = await a.fetchTopicMetadata({ topics: [topic] })
    obs.partitions = md.topics[0].partitions.length
    check(obs.partitions === 3, `describe: ${obs.partitions} partitions`)
    obs.retention_at_create = await retention(a, topic)
    check(obs.retention_at_create === '3600000', `retention.ms after create ${obs.retention_at_create}`)
    // KafkaJS has only the legacy AlterConfigs (full replace)
    await a.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }] })
    const end = Date.now() + 5000 // KRaft applies it through the metadata log: read until it shows
    do { obs.retention_after_alter = await retention(a, topic) } while (obs.retention_after_alter !== '7200000' && Date.now() < end && await sleep(100) === undefined)
    check(obs.retention_after_alter === '7200000', `retention.ms after alter ${obs.retention_after_alter}`)
    await a.deleteTopics({ topics: [topic], timeout: 15000 })
    let last = 'still present'
    for (const end2 = Date.now() + 15000; Date.now() < end2; await sleep(200)) {
      last = await topicError(a, topic)
      if (last === 'UNKNOWN_TOPIC_OR_PARTITION') break
    }
    obs.after_delete = last
    check(last === 'UNKNOWN_TOPIC_OR_PARTITION', `after delete: ${last}`)
  })
}

const codec = (name, type) => async (obs) => {
  if (type === undefined) throw new NotApplicable(`KafkaJS ships no ${name} codec (the plugin packages need a native build)`)
  await create(topic)
  const values = vals(20, `v-${name}-`)
  const offs = await produce(topic, values, { compression: type })
  obs.produced_offsets = `${Math.min(...offs)}..${Math.min(...offs) + 19}`
  const msgs = await readGroup(topic, 20)
  checkExact(msgs, values, 0)
  obs.consumed = msgs.length
}
S['codec-none'] = codec('none', CompressionTypes.None)
S['codec-gzip'] = codec('gzip', CompressionTypes.GZIP)
S['codec-snappy'] = codec('snappy', CompressionTypes.Snappy)
S['codec-lz4'] = codec('lz4', undefined)
S['codec-zstd'] = codec('zstd', undefined)

S['record-fields'] = async (obs) => {
  await create(topic)
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  await p.send({
    topic, acks: -1, messages: [
      { key: 'k0', value: 'v0', partition: 0, timestamp: String(BASE_TS + 1000), headers: { h1: ['a', 'b'], h2: 'c' } },
      { key: null, value: 'v1', partition: 0, timestamp: String(BASE_TS + 2000) },
      { key: 'k2', value: null, partition: 0, timestamp: String(BASE_TS + 3000), headers: { h3: '' } },
    ],
  })
  await p.disconnect()
  const desc = (await readGroup(topic, 3)).map((m) => {
    let hs = ''
    for (const [k, v] of Object.entries(m.headers || {})) for (const x of [].concat(v)) hs += `${k}=${x === null ? '<null>' : x.toString()};`
    const key = m.key === null ? '<null>' : m.key.toString()
    const val = m.value === null ? '<null>' : m.value.toString()
    return `key=${key} value=${val} ts=+${Number(m.timestamp) - BASE_TS} CreateTime headers=${hs}`
  })
  obs.records = desc
  const want = ['key=k0 value=v0 ts=+1000 CreateTime headers=h1=a;h1=b;h2=c;',
    'key=<null> value=v1 ts=+2000 CreateTime headers=',
    'key=k2 value=<null> ts=+3000 CreateTime headers=h3=;']
  check(eq(desc, want), `round-trip differs: expected ${JSON.stringify(want)} got ${JSON.stringify(desc)}`)
}

S['offset-earliest'] = async (obs) => {
  await create(topic)
  await produce(topic, vals(5, 'e-'))
  const msgs = await readGroup(topic, 5, {}, true, `${topic}-g`, 15)
  checkExact(msgs, vals(5, 'e-'), 0)
  obs.first_offset = Number(msgs[0].offset)
  obs.count = msgs.length
}

S['offset-latest'] = async (obs) => {
  await create(topic)
  await produce(topic, vals(5, 'old-'))
  const c = kafka.consumer({ groupId: `${topic}-g`, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await c.connect()
  const got = []
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  try {
    await c.subscribe({ topics: [topic], fromBeginning: false })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message) } })
    const end = Date.now() + 15000
    for (let i = 0; got.length === 0 && Date.now() < end; i++) {
      await p.send({ topic, acks: -1, messages: [{ value: `new-${i}`, partition: 0 }] })
      for (const e2 = Date.now() + 1000; got.length === 0 && Date.now() < e2;) await sleep(50)
    }
    await sleep(500)
    check(got.length > 0, 'nothing consumed')
    obs.saw_old = got.some((m) => Number(m.offset) < 5)
    obs.got_new = true
    check(!obs.saw_old, `latest consumer saw old records: ${got.map((m) => m.value.toString())}`)
  } finally {
    await c.disconnect()
    await p.disconnect()
  }
}

async function produceTs (t, deltas) {
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  await p.send({ topic: t, acks: -1, messages: deltas.map((d, i) => ({ key: `k${i}`, value: `t-${i}`, partition: 0, timestamp: String(BASE_TS + d) })) })
  await p.disconnect()
}

S['offsets-for-times'] = async (obs) => {
  await create(topic)
  await produceTs(topic, [0, 1000, 2000, 3000, 4000])
  await withAdmin(async (a) => {
    for (const d of [2500, 0, 10000]) {
      const r = await a.fetchTopicOffsetsByTimestamp(topic, BASE_TS + d)
      obs[`ts+${d}`] = Number(r.find((x) => x.partition === 0).offset)
    }
  })
  check(obs['ts+2500'] === 3, `offset for +2500 = ${obs['ts+2500']}`)
  check(obs['ts+0'] === 0, `offset for +0 = ${obs['ts+0']}`)
  // KafkaJS documents that when Kafka answers -1 (no such record) it returns the high watermark
  check(obs['ts+10000'] === 5, `offset for future = ${obs['ts+10000']}, expected the end offset 5`)
}

S['group-rebalance-848'] = S['commit-resume-848'] = S['static-member-848'] = async () => {
  throw new NotApplicable('KafkaJS 2.2.4 has only the classic group protocol (JoinGroup/SyncGroup), no KIP-848 consumer protocol')
}

S['group-rebalance'] = async (obs) => {
  await create(topic, 3)
  const members = []
  try {
    for (let i = 0; i < 3; i++) {
      const c = kafka.consumer({ groupId: `${topic}-g`, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200, rebalanceTimeout: 20000 })
      const m = { c, parts: [] }
      c.on(c.events.GROUP_JOIN, (e) => { m.parts = (e.payload.memberAssignment[topic] || []).slice() })
      await c.connect()
      await c.subscribe({ topics: [topic] })
      await c.run({ autoCommit: false, eachMessage: async () => {} })
      members.push(m)
    }
    const covered = async (ms, seconds) => {
      let sizes = ''
      for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(100)) {
        const ns = ms.map((m) => m.parts.length).sort()
        sizes = ns.join(',')
        const union = new Set(ms.flatMap((m) => m.parts))
        if (union.size === 3 && ns.reduce((x, y) => x + y, 0) === 3 && !ns.includes(0)) return sizes
      }
      return `${sizes} (timed out)`
    }
    obs.phase1 = await covered(members, 25)
    check(obs.phase1 === '1,1,1', `three members: ${obs.phase1}`)
    await members.pop().c.disconnect()
    obs.phase2 = await covered(members, 20)
    check(obs.phase2 === '1,2', `after one left: ${obs.phase2}`)
  } finally {
    for (const m of members) await m.c.disconnect()
  }
}

S['commit-resume'] = async (obs) => {
  await create(topic)
  await produce(topic, vals(10, 'c-'))
  const g = `${topic}-g`
  const c = kafka.consumer({ groupId: g, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topics: [topic], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message) } })
    for (const end = Date.now() + 15000; got.length < 4 && Date.now() < end;) await sleep(50)
    check(got.length >= 4, `first member read ${got.length}`)
    await c.commitOffsets([{ topic, partition: 0, offset: '4' }])
  } finally { await c.disconnect() }
  await withAdmin(async (a) => {
    const r = await a.fetchOffsets({ groupId: g, topics: [topic] })
    obs.committed = Number(r[0].partitions.find((p) => p.partition === 0).offset)
  })
  check(obs.committed === 4, `committed offset ${obs.committed}`)
  const rs = await readGroup(topic, 6, {}, false, g, 15)
  obs.resumed_first = rs.length ? Number(rs[0].offset) : -1
  obs.resumed_count = rs.length
  checkExact(rs, vals(10, 'c-').slice(4), 4)
}

S['idempotent-produce'] = async (obs) => {
  await create(topic)
  const offs = await produce(topic, vals(10, 'i-'), {}, { idempotent: true, maxInFlightRequests: 1 })
  obs.produced_offsets = `${offs[0]}..${offs[0] + 9}`
  checkExact(await readGroup(topic, 10), vals(10, 'i-'), 0)
}

S.transactions = async (obs) => {
  await create(topic)
  const p = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await p.connect()
  try {
    const txn = async (values, commit) => {
      const tx = await p.transaction()
      await tx.send({ topic, acks: -1, messages: values.map((v) => ({ value: v, partition: 0 })) })
      if (commit) await tx.commit(); else await tx.abort()
    }
    await txn(['a0', 'a1', 'a2'], true)
    await txn(['b0', 'b1'], false)
    await txn(['c0'], true)
  } finally { await p.disconnect() }
  const rc = (await readGroup(topic, 4, { readUncommitted: false })).map((m) => m.value.toString())
  const ru = (await readGroup(topic, 6, { readUncommitted: true })).map((m) => m.value.toString())
  obs.read_committed = rc
  obs.read_uncommitted_count = ru.length
  check(eq(rc, ['a0', 'a1', 'a2', 'c0']), `read_committed saw ${rc}`)
  check(eq(ru, ['a0', 'a1', 'a2', 'b0', 'b1', 'c0']), `read_uncommitted saw ${ru}`)
  await withAdmin(async (a) => {
    const o = await a.fetchTopicOffsets(topic)
    obs.end_offset = Number(o.find((x) => x.partition === 0).high)
  })
  check(obs.end_offset === 9, `end offset ${obs.end_offset}, expected 9`)
}

// Reads partition 0 of t from the beginning (fresh group) until n messages arrived, then 1.5 s
// more to catch extras (duplicates, aborted records that leak).
async function drainValues (t, n, readUncommitted) {
  const c = kafka.consumer({ groupId: `${t}-d${Math.random().toString(36).slice(2, 8)}`, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200, readUncommitted })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topics: [t], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
    const end = Date.now() + 15000
    while (got.length < n && Date.now() < end) await sleep(50)
    if (got.length >= n) await sleep(1500)
    return got.slice()
  } finally { await c.disconnect() }
}

const groupCommitted = (g, t) => withAdmin(async (a) => {
  const r = await a.fetchOffsets({ groupId: g, topics: [t] })
  const p = r.find((x) => x.topic === t).partitions.find((x) => x.partition === 0)
  return Number(p.offset)
})

// eos-pipeline: consume-transform-produce in a group. Every 10 messages (eachMessage is awaited in
// order) are one transaction: send the uppercased values to <t>-out, transaction.sendOffsets for
// the consumed position, commit. After the first commit one extra transaction writes ABORTED-0..4
// plus offsets +5 and aborts.
S['eos-pipeline'] = async (obs) => {
  const out = `${topic}-out`
  const g = `${topic}-g`
  await create(topic)
  await create(out)
  await produce(topic, vals(20, 'v'))
  const p = kafka.producer({ transactionalId: `${topic}-eos`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await p.connect()
  const c = kafka.consumer({ groupId: g, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200, readUncommitted: false })
  await c.connect()
  const txns = []
  let done = 0
  let aborted = false
  let failure = null
  let tx = null
  let n = 0
  const offsets = (o) => ({ consumerGroupId: g, topics: [{ topic, partitions: [{ partition: 0, offset: String(o) }] }] })
  try {
    await c.subscribe({ topics: [topic], fromBeginning: true })
    await c.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (failure || done >= 20) return
        try {
          if (n === 0) tx = await p.transaction()
          await tx.send({ topic: out, acks: -1, messages: [{ key: message.key, value: message.value.toString().toUpperCase(), partition: 0 }] })
          n++
          if (n < 10) return
          const next = Number(message.offset) + 1
          await tx.sendOffsets(offsets(next))
          await tx.commit()
          txns.push(n)
          done += n
          n = 0
          if (!aborted) {
            aborted = true
            const ab = await p.transaction()
            await ab.send({ topic: out, acks: -1, messages: vals(5, 'ABORTED-').map((v) => ({ value: v, partition: 0 })) })
            await ab.sendOffsets(offsets(next + 5))
            await ab.abort()
            obs.committed_after_abort = await groupCommitted(g, topic)
            check(obs.committed_after_abort === next, `committed offset after the aborted transaction: ${obs.committed_after_abort}, expected ${next}`)
          }
        } catch (e) { failure = failure || e }
      },
    })
    const end = Date.now() + 30000
    while (done < 20 && !failure && Date.now() < end) await sleep(50)
  } finally {
    await c.disconnect()
    await p.disconnect()
  }
  if (failure) throw failure
  obs.transactions = txns
  check(done === 20 && txns.length >= 2, `committed transactions (records each): ${JSON.stringify(txns)}`)
  const want = vals(20, 'V')
  const rc = await drainValues(out, 20, false)
  const ru = await drainValues(out, 25, true)
  obs.read_committed = rc
  obs.read_uncommitted_count = ru.length
  obs.committed = await groupCommitted(g, topic)
  check(eq(rc, want), `read_committed output ${JSON.stringify(rc)}, expected V0..V19 once each`)
  check(ru.length === 25, `read_uncommitted saw ${ru.length} records, expected 25 (20 + 5 aborted)`)
  check(obs.committed === 20, `group's committed input offset ${obs.committed}, expected 20`)
}

S['delete-records'] = async (obs) => {
  await create(topic)
  await produce(topic, vals(10, 'd-'))
  await withAdmin(async (a) => {
    await a.fetchTopicMetadata({ topics: [topic] }) // KafkaJS needs the topic's metadata loaded first
    await a.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] })
    const o = await a.fetchTopicOffsets(topic)
    obs.earliest = Number(o.find((x) => x.partition === 0).low)
  })
  check(obs.earliest === 4, `earliest after delete ${obs.earliest}`)
  const rs = await readGroup(topic, 6)
  obs.first_consumed = rs.length ? Number(rs[0].offset) : -1
  checkExact(rs, vals(10, 'd-').slice(4), 4)
}

S['list-offsets'] = async (obs) => {
  await create(topic)
  await produceTs(topic, [1000, 2000, 9000, 3000, 4000])
  await withAdmin(async (a) => {
    const o = (await a.fetchTopicOffsets(topic)).find((x) => x.partition === 0)
    obs.earliest = Number(o.low)
    obs.latest = Number(o.high)
  })
  // KafkaJS has no max-timestamp (KIP-734) lookup: only earliest/latest are checked
  check(obs.earliest === 0 && obs.latest === 5, `earliest/latest ${obs.earliest}/${obs.latest}`)
}

S['err-unknown-topic'] = async (obs) => withAdmin(async (a) => {
  obs.describe_error = await topicError(a, topic)
  check(obs.describe_error === 'UNKNOWN_TOPIC_OR_PARTITION', `describe error ${obs.describe_error}`)
})

S['err-record-too-large'] = async (obs) => {
  await create(topic, 1, { 'max.message.bytes': '2048' })
  const p = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
  await p.connect()
  try {
    try {
      await p.send({ topic, acks: -1, messages: [{ key: 'big', value: 'x'.repeat(10000), partition: 0 }] })
      throw new Fail('10 kB record accepted by a topic with max.message.bytes=2048')
    } catch (e) {
      if (e instanceof Fail) throw e
      obs.error = errName(e)
    }
    const r = await p.send({ topic, acks: -1, messages: [{ key: 'small', value: 'ok', partition: 0 }] })
    obs.next_offset = Number(r[0].baseOffset)
  } finally { await p.disconnect() }
  check(obs.error === 'MESSAGE_TOO_LARGE', `error ${obs.error}`)
  check(obs.next_offset === 0, `small record after the rejected one at ${obs.next_offset}`)
}

S['err-keyless-compacted'] = async (obs) => {
  await create(topic, 1, { 'cleanup.policy': 'compact' })
  const p = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
  await p.connect()
  try {
    try {
      await p.send({ topic, acks: -1, messages: [{ key: null, value: 'no-key', partition: 0 }] })
      throw new Fail('a record without a key was accepted by a cleanup.policy=compact topic')
    } catch (e) {
      if (e instanceof Fail) throw e
      obs.error = errName(e)
    }
    const r = await p.send({ topic, acks: -1, messages: [{ key: 'k', value: 'keyed', partition: 0 }] })
    obs.next_offset = Number(r[0].baseOffset)
  } finally { await p.disconnect() }
  check(obs.error === 'INVALID_RECORD', `error ${obs.error}, expected INVALID_RECORD`)
  check(obs.next_offset === 0, `keyed record after the refused one at ${obs.next_offset}`)
}

S['err-invalid-config'] = async (obs) => withAdmin(async (a) => {
  try {
    await a.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'bogus' }] }] })
    throw new Fail('CreateTopics with cleanup.policy=bogus succeeded')
  } catch (e) {
    if (e instanceof Fail) throw e
    obs.error = errName(e)
  }
  obs.created = (await a.listTopics()).includes(topic)
  check(obs.error === 'INVALID_CONFIG', `error ${obs.error}`)
  check(!obs.created, 'topic exists after a rejected create')
})

// ---------------------------------------------------------------- security (sec-*)
//
// KafkaJS 2.2.4 connects with TLS (Node's tls: the CA from ca.pem, the client certificate from
// client.p12 for MTLS) and SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512. Its admin client has no
// SCRAM credential calls, so the SCRAM scenarios make, describe and delete the credential with
// kafka-python through python/scram_admin.py (a child process, PLAINTEXT listener).
const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')

function security () {
  const raw = process.env.COMPAT_SECURITY
  if (!raw) { const e = new NotApplicable('no COMPAT_SECURITY: the broker has no security listeners'); e.notYet = true; throw e }
  return JSON.parse(raw)
}

const tlsOpts = (sec, withCert) => withCert
  ? { ca: [fs.readFileSync(sec.ca)], pfx: fs.readFileSync(sec.client_p12), passphrase: sec.client_p12_password }
  : { ca: [fs.readFileSync(sec.ca)] }

function secKafka (addr, extra = {}) {
  return new Kafka({
    clientId: 'compat-kafkajs', brokers: [addr], logLevel: logLevel.NOTHING,
    requestTimeout: 10000, connectionTimeout: 5000, retry: { retries: 3, initialRetryTime: 200 }, ...extra,
  })
}

async function secRoundTrip (k, obs) {
  const want = vals(5, 'sec-')
  const p = k.producer({ allowAutoTopicCreation: false })
  await p.connect()
  try {
    const res = await p.send({ topic, acks: -1, messages: want.map((v, i) => ({ key: `k-${i}`, value: v, partition: 0 })) })
    obs.produced_offsets = `${Number(res[0].baseOffset)}..${Number(res[0].baseOffset) + want.length - 1}`
  } finally { await p.disconnect() }
  const c = k.consumer({ groupId: `${topic}-r`, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topics: [topic], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message) } })
    for (const end = Date.now() + 12000; got.length < 5 && Date.now() < end;) await sleep(50)
  } finally { await c.disconnect() }
  obs.count = got.length
  checkExact(got, want, 0)
}

let lastMessage = null
// A fresh admin connects and describes the cluster, bounded to ~5 s: null when answered, else the
// class of what KafkaJS reported (the innermost cause's name).
async function probe (addr, extra = {}) {
  const k = secKafka(addr, { retry: { retries: 0 }, connectionTimeout: 3000, requestTimeout: 4000, ...extra })
  const a = k.admin()
  try {
    await Promise.race([
      (async () => { await a.connect(); await a.describeCluster() })(),
      sleep(6000).then(() => { throw new Error('no answer within 6 s') }),
    ])
    return null
  } catch (e) {
    let c = e
    while (c && c.originalError) c = c.originalError
    console.error(`[sec] probe of ${addr}: ${e.name}: ${e.message}` + (c !== e ? ` (cause ${c.name}: ${c.message})` : ''))
    lastMessage = c.message
    return c.name || e.name
  } finally { await a.disconnect().catch(() => {}) }
}

async function probeUntil (ok, seconds, addr, extra) {
  const end = Date.now() + seconds * 1000
  for (;;) {
    const r = await probe(addr, extra)
    if ((r === null) === ok || Date.now() > end) return r
    await sleep(250)
  }
}

function scramAdmin (...args) {
  const py = path.join(process.env.COMPAT_CACHE || path.join(__dirname, '..', '.cache'), 'venv', 'bin', 'python')
  const out = execFileSync(py, [path.join(__dirname, '..', 'python', 'scram_admin.py'), bootstrap, ...args],
    { encoding: 'utf8', timeout: 30000, stdio: ['ignore', 'pipe', 'inherit'] })
  const r = JSON.parse(out.trim().split('\n').pop())
  if (r.error) throw new Fail(`scram_admin.py ${args[0]}: ${r.error}`)
  return r
}

// SASL PLAIN's words in KafkaJS's message: "SASL PLAIN authentication failed: <broker's message>".
const brokerWords = (m) => (m && m.includes('authentication failed: ') ? m.split('authentication failed: ').pop() : m)

S['sec-tls'] = async (obs) => {
  const sec = security()
  await create(topic)
  await secRoundTrip(secKafka(sec.ssl, { ssl: tlsOpts(sec, false) }), obs)
}

S['sec-mtls'] = async (obs) => {
  const sec = security()
  await create(topic)
  await secRoundTrip(secKafka(sec.mtls, { ssl: tlsOpts(sec, true) }), obs)
  obs.ok = true
  const r = await probe(sec.mtls, { ssl: tlsOpts(sec, false) })
  obs.no_cert_error = r
  check(r !== null, 'a client without a certificate was served on the MTLS listener (ssl.client.auth=required)')
}

S['sec-plain'] = async (obs) => {
  const sec = security()
  await create(topic)
  const pw = sec.plain_users.alice
  await secRoundTrip(secKafka(sec.sasl_plaintext, { sasl: { mechanism: 'plain', username: 'alice', password: pw } }), obs)
  const r = await probe(sec.sasl_plaintext, { sasl: { mechanism: 'plain', username: 'alice', password: 'wrong-' + pw } })
  obs.bad_password_error = r
  obs.bad_password_message = brokerWords(lastMessage)
  check(r === 'KafkaJSSASLAuthenticationError', `alice with a wrong password: ${r}, expected KafkaJSSASLAuthenticationError`)
}

const secScram = (mech) => async (obs) => {
  const sec = security()
  await create(topic)
  const user = `u-${topic}`
  const pw = `pw-${topic}`
  const sasl = (password) => ({ sasl: { mechanism: mech.toLowerCase(), username: user, password } })
  obs.admin_client = 'kafka-python (python/scram_admin.py)'
  obs.described = scramAdmin('upsert', user, mech, pw).described
  check(obs.described === `${mech.replace(/-/g, '_')}:8192`, `DescribeUserScramCredentials after the upsert: ${obs.described}`)
  let r = await probeUntil(true, 10, sec.sasl_plaintext, sasl(pw))
  check(r === null, `the new ${mech} credential was not accepted within 10 s: ${r}`)
  await secRoundTrip(secKafka(sec.sasl_plaintext, sasl(pw)), obs)
  r = await probe(sec.sasl_plaintext, sasl('wrong-' + pw))
  obs.bad_password_error = r
  obs.bad_password_message = brokerWords(lastMessage)
  check(r === 'KafkaJSSASLAuthenticationError', `a wrong password: ${r}, expected KafkaJSSASLAuthenticationError`)
  obs.described_after_delete = scramAdmin('delete', user, mech).described_after_delete
  check(obs.described_after_delete === 'RESOURCE_NOT_FOUND', `DescribeUserScramCredentials after the delete: ${obs.described_after_delete}`)
  r = await probeUntil(false, 10, sec.sasl_plaintext, sasl(pw))
  obs.after_delete_error = r
  check(r === 'KafkaJSSASLAuthenticationError', `the deleted credential's password: ${r}, expected KafkaJSSASLAuthenticationError`)
}
S['sec-scram-256'] = secScram('SCRAM-SHA-256')
S['sec-scram-512'] = secScram('SCRAM-SHA-512')

S['sec-sasl-ssl'] = async (obs) => {
  const sec = security()
  await create(topic)
  const user = `u-${topic}`
  const pw = `pw-${topic}`
  obs.admin_client = 'kafka-python (python/scram_admin.py)'
  const shown = scramAdmin('upsert', user, 'SCRAM-SHA-512', pw).described
  check(shown === 'SCRAM_SHA_512:8192', `DescribeUserScramCredentials after the upsert: ${shown}`)
  const opts = { ssl: tlsOpts(sec, false), sasl: { mechanism: 'scram-sha-512', username: user, password: pw } }
  const r = await probeUntil(true, 10, sec.sasl_ssl, opts)
  check(r === null, `SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: ${r}`)
  await secRoundTrip(secKafka(sec.sasl_ssl, opts), obs)
  scramAdmin('delete', user, 'SCRAM-SHA-512')
}

S['sec-plaintext-to-tls'] = async (obs) => {
  const sec = security()
  let r = await probe(sec.ssl)
  obs.plaintext_to_ssl = r
  check(r !== null, 'a PLAINTEXT client was served by the SSL listener')
  r = await probe(sec.plaintext, { sasl: { mechanism: 'plain', username: 'alice', password: sec.plain_users.alice } })
  obs.sasl_to_plaintext = r
  check(r !== null, 'a SASL client was served by the PLAINTEXT listener')
}

// sec-quota: KafkaJS 2.2.4's admin client has no client quota calls.
S['sec-quota'] = async () => { throw new NotApplicable('KafkaJS 2.2.4 has no client quota admin calls (AlterClientQuotas/DescribeClientQuotas)') }

// ---------------------------------------------------------------- sec-acl

const nameOf = (enumObj, v) => Object.keys(enumObj).find((k) => enumObj[k] === v) || `?${v}`
// "TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic as <topic>, so the targets' observables compare)
const aclStr = (resourceType, pattern, name, a) =>
  `${nameOf(AclResourceTypes, resourceType)}:${pattern === undefined ? '?' : nameOf(ResourcePatternTypes, pattern)}:${name === topic ? '<topic>' : name} ` +
  `${a.principal}@${a.host} ${nameOf(AclOperationTypes, a.operation)} ${nameOf(AclPermissionTypes, a.permissionType)}`

// DescribeAcls of the topic's LITERAL pattern, sorted; retried (bounded) until it has `want` bindings.
async function describeTopicAcls (a, want) {
  let out = []
  for (const end = Date.now() + 10000; ; await sleep(200)) {
    const r = await a.describeAcls({
      resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL,
      operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY,
    })
    out = []
    for (const res of r.resources) for (const acl of res.acls) out.push(aclStr(res.resourceType, res.resourcePatternType, res.resourceName, acl))
    out.sort()
    if (out.length === want || Date.now() > end) return out
  }
}

// One record as `sasl` with small timeouts: null when acknowledged, else Kafka's error name.
async function produceAs (sec, sasl, value) {
  const k = secKafka(sec.sasl_plaintext, { sasl, retry: { retries: 0 }, requestTimeout: 5000 })
  const p = k.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
  try {
    await Promise.race([
      (async () => { await p.connect(); await p.send({ topic, acks: -1, timeout: 5000, messages: [{ key: 'k', value, partition: 0 }] }) })(),
      sleep(8000).then(() => { throw new Error('no answer within 8 s') }),
    ])
    return null
  } catch (e) {
    console.error(`[sec-acl] produce as ${sasl.username}: ${e.name}: ${e.message}`)
    return errName(e)
  } finally { await p.disconnect().catch(() => {}) }
}

// What a KafkaJS group consumer of a user with no ACL reports against Kafka 4.4: subscribe() fetches
// the topic's metadata first and throws its TOPIC_AUTHORIZATION_FAILED.
const ACL_ADMIN_CONSUME_ERROR = 'TOPIC_AUTHORIZATION_FAILED'

// sec-oauth: SASL/OAUTHBEARER on the OAUTH listener with the pre-minted JWTs (COMPAT_SECURITY
// oauth_tokens) handed to KafkaJS's oauthBearerProvider as is.
const oauthSasl = (sec, tokenCase) => {
  const value = fs.readFileSync(sec.oauth_tokens[tokenCase], 'utf8').trim()
  return { sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value }) } }
}

S['sec-oauth'] = async (obs) => {
  const sec = security()
  check(sec.oauth, 'COMPAT_SECURITY has no oauth listener')
  await create(topic)
  // ACLs on the topic for the token's principal only: the round trip also shows it is User:alice.
  await withAdmin(async (a) => {
    await a.createAcls({
      acl: [AclOperationTypes.WRITE, AclOperationTypes.READ].map((operation) => ({
        resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL,
        principal: sec.oauth_principal, host: '*', operation, permissionType: AclPermissionTypes.ALLOW,
      })),
    })
    obs.described = await describeTopicAcls(a, 2)
  })
  const first = await probeUntil(true, 10, sec.oauth, oauthSasl(sec, 'valid'))
  check(first === null, `the valid token was not accepted: ${first} ${lastMessage}`)
  await secRoundTrip(secKafka(sec.oauth, oauthSasl(sec, 'valid')), obs)
  const bad = {}
  for (const c of ['expired', 'wrong-audience', 'bad-signature', 'unsigned']) {
    lastMessage = null
    const r = await probe(sec.oauth, oauthSasl(sec, c))
    obs[`${c}_error`] = r
    obs[`${c}_message`] = lastMessage
    if (`${r}: ${lastMessage}` !== OAUTH_REFUSED) bad[c] = `${r}: ${lastMessage}`
  }
  check(Object.keys(bad).length === 0, `tokens not refused as Kafka 4.4 refuses them (${OAUTH_REFUSED}): ${JSON.stringify(bad)}`)
}

// What KafkaJS 2.2.4 reports for a refused token against Kafka 4.4. Kafka answers the token with a
// SaslAuthenticate response without error whose auth bytes are the RFC 7628 error
// ({"status":"invalid_token"}) and waits for the client's %x01; KafkaJS ignores the auth bytes,
// counts itself authenticated and sends Metadata, which Kafka does not serve (an answer KafkaJS
// reads as a Metadata response listing no broker) before closing the connection.
const OAUTH_REFUSED = 'KafkaJSNumberOfRetriesExceeded: No brokers in the broker pool'

S['sec-acl'] = async (obs) => {
  const sec = security()
  await create(topic)
  const g = `${topic}-g`
  const alice = { mechanism: 'plain', username: 'alice', password: sec.plain_users.alice }
  const adminUser = { mechanism: 'plain', username: 'admin', password: sec.plain_users.admin }
  const allow = (resourceType, resourceName, operation) => ({
    resourceType, resourceName, resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: 'User:alice', host: '*', operation, permissionType: AclPermissionTypes.ALLOW,
  })
  const want = ['TOPIC:LITERAL:<topic> User:alice@* READ ALLOW', 'TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW']
  await withAdmin(async (a) => {
    await a.createAcls({
      acl: [allow(AclResourceTypes.TOPIC, topic, AclOperationTypes.WRITE), allow(AclResourceTypes.TOPIC, topic, AclOperationTypes.READ),
        allow(AclResourceTypes.GROUP, g, AclOperationTypes.READ)],
    })
    obs.described = await describeTopicAcls(a, 2)
  })
  check(eq(obs.described, want), `DescribeAcls of the topic: ${JSON.stringify(obs.described)}, expected ${JSON.stringify(want)}`)

  const k = secKafka(sec.sasl_plaintext, { sasl: alice })
  const p = k.producer({ allowAutoTopicCreation: false })
  await p.connect()
  try {
    const res = await p.send({ topic, acks: -1, messages: vals(5, 'acl-').map((v, i) => ({ key: `k-${i}`, value: v, partition: 0 })) })
    obs.alice_produced_offsets = `${Number(res[0].baseOffset)}..${Number(res[0].baseOffset) + 4}`
  } finally { await p.disconnect() }
  const c = k.consumer({ groupId: g, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topics: [topic], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(`${message.offset}:${message.value}`) } })
    for (const end = Date.now() + 15000; got.length < 5 && Date.now() < end;) await sleep(50)
    if (got.length) await c.commitOffsets([{ topic, partition: 0, offset: String(got.length) }])
  } finally { await c.disconnect() }
  obs.alice_consumed = got
  check(eq(got, vals(5, 'acl-').map((v, i) => `${i}:${v}`)), `alice consumed ${JSON.stringify(got)}`)

  obs.admin_produce_error = await produceAs(sec, adminUser, 'refused')
  check(obs.admin_produce_error === 'TOPIC_AUTHORIZATION_FAILED', `admin's produce: ${obs.admin_produce_error}, expected TOPIC_AUTHORIZATION_FAILED`)
  const ka = secKafka(sec.sasl_plaintext, { sasl: adminUser, retry: { retries: 0 }, requestTimeout: 5000 })
  const ca = ka.consumer({ groupId: g, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200, retry: { retries: 0 } })
  let consumeErr = null
  let n = 0
  ca.on(ca.events.CRASH, ({ payload }) => { if (!consumeErr) { console.error(`[sec-acl] consume as admin (crash): ${payload.error.name}: ${payload.error.message}`); consumeErr = errName(payload.error) } })
  try {
    await Promise.race([
      (async () => {
        await ca.connect()
        await ca.subscribe({ topics: [topic], fromBeginning: true })
        await ca.run({ autoCommit: false, eachMessage: async () => { n++ } })
        for (const end = Date.now() + 10000; !consumeErr && Date.now() < end;) await sleep(50)
      })(),
      sleep(12000),
    ])
  } catch (e) {
    console.error(`[sec-acl] consume as admin: ${e.name}: ${e.message}`)
    if (!consumeErr) consumeErr = errName(e)
  } finally { await ca.disconnect().catch(() => {}) }
  obs.admin_consumed = n
  obs.admin_consume_error = consumeErr
  check(consumeErr === ACL_ADMIN_CONSUME_ERROR, `admin's group consume: ${consumeErr}, expected ${ACL_ADMIN_CONSUME_ERROR}`)

  await withAdmin(async (a) => {
    const r = await a.deleteAcls({ filters: [allow(AclResourceTypes.TOPIC, topic, AclOperationTypes.WRITE)] })
    obs.deleted = []
    for (const fr of r.filterResponses) for (const m of fr.matchingAcls) obs.deleted.push(aclStr(m.resourceType, m.resourcePatternType, m.resourceName, m))
    obs.described_after_delete = await describeTopicAcls(a, 1)
  })
  check(eq(obs.deleted, want.slice(1)), `DeleteAcls of alice's WRITE removed ${JSON.stringify(obs.deleted)}`)
  check(eq(obs.described_after_delete, want.slice(0, 1)), `DescribeAcls after the delete: ${JSON.stringify(obs.described_after_delete)}`)
  obs.alice_produce_after_delete = await produceAs(sec, alice, 'after-delete')
  check(obs.alice_produce_after_delete === 'TOPIC_AUTHORIZATION_FAILED', `alice's produce without WRITE: ${obs.alice_produce_after_delete}, expected TOPIC_AUTHORIZATION_FAILED`)
}

async function main () {
  const obs = {}
  let status = 'pass'
  let detail = ''
  try {
    const fn = S[scenario]
    if (!fn) { status = 'not_yet'; detail = `no driver for ${scenario} yet` } else await fn(obs)
  } catch (e) {
    if (e instanceof NotApplicable) { status = e.notYet ? 'not_yet' : 'n/a'; detail = e.message } else {
      status = 'fail'
      detail = e instanceof Fail ? e.message : `${e.name}: ${e.message}`
      if (!(e instanceof Fail)) console.error(e)
    }
  }
  process.stdout.write(`@@RESULT ${JSON.stringify({ status, detail, obs })}\n`, () => process.exit(0))
}
main()
