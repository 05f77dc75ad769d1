"""aiokafka column of Strom's compat-tests. Usage: <scenario> <bootstrap> <topic>."""

import asyncio
import logging
import re
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import OffsetAndMetadata

from common import (BASE_TS, Fail, advertised_is_bootstrap, check, deadline, err_name, expected_brokers, main, na,
                    security, vals)

NO848 = "aiokafka 0.14.0 has only the classic group protocol (JoinGroup/SyncGroup), no KIP-848 consumer protocol"

B = {}
COMMON = dict(client_id="compat-aiokafka", request_timeout_ms=15000)


async def admin():
    a = AIOKafkaAdminClient(bootstrap_servers=B["b"], **COMMON)
    await a.start()
    return a


async def producer(**kw):
    p = AIOKafkaProducer(bootstrap_servers=B["b"], **{"linger_ms": 5, **COMMON, **kw})
    await p.start()
    return p


async def consumer(*topics, **kw):
    c = AIOKafkaConsumer(*topics, bootstrap_servers=B["b"],
                         **{"enable_auto_commit": False, "auto_offset_reset": "earliest", **COMMON, **kw})
    await c.start()
    return c


def kname(e):
    return err_name(e.errno) if getattr(e, "errno", None) is not None else f"{type(e).__name__}: {e}"


def topic_errors(resp):
    """(topic, error_code) pairs of a CreateTopics/DeleteTopics response, any version."""
    out = []
    for row in getattr(resp, "topic_errors", None) or getattr(resp, "topic_error_codes", None) or []:
        out.append((row[0], row[1]))
    return out


async def create_raw(t, partitions=1, configs=None):
    a = await admin()
    try:
        resp = await a.create_topics([NewTopic(t, partitions, 1, topic_configs=configs or {})], timeout_ms=15000)
    finally:
        await a.close()
    return dict(topic_errors(resp)).get(t, -999)


async def create(t, partitions=1, configs=None):
    code = await create_raw(t, partitions, configs)
    check(code == 0, f"create topic: {err_name(code)}")
    # wait until the topic is visible with a leader, as the other clients' create helpers do
    a = await admin()
    try:
        more = deadline(15)
        while more():
            d = await a.describe_topics([t])
            if d and d[0]["error_code"] == 0 and d[0]["partitions"] and all(p["leader"] >= 0 for p in d[0]["partitions"]):
                return
            await asyncio.sleep(0.1)
    finally:
        await a.close()
    raise Fail("topic not visible with leaders 15s after create")


async def produce(t, values, **kw):
    p = await producer(**kw)
    try:
        fs = [await p.send(t, value=v.encode(), key=f"k-{i}".encode(), partition=0) for i, v in enumerate(values)]
        return [(await asyncio.wait_for(f, 20)).offset for f in fs]
    finally:
        await p.stop()


async def read_polls(c, n, seconds=10):
    out = []
    more = deadline(seconds)
    while len(out) < n and more():
        for msgs in (await c.getmany(timeout_ms=200)).values():
            out.extend(msgs)
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


async def read_from_start(t, n, **kw):
    c = await consumer(**kw)
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        return await read_polls(c, n)
    finally:
        await c.stop()


def check_exact(recs, values, first):
    got = [r.value.decode() if r.value is not None else None for r in recs]
    check(got == values, f"read {len(got)} of {len(values)} records, values differ: got {got} expected {values}")
    check([r.offset for r in recs] == list(range(first, first + len(values))), f"offsets {[r.offset for r in recs]}")


async def s_metadata(b, t, obs):
    a = await admin()
    try:
        d = await a.describe_cluster()
    finally:
        await a.close()
    brokers = d["brokers"]
    obs["brokers"] = len(brokers)
    obs["broker_is_bootstrap"] = advertised_is_bootstrap([f"{br['host']}:{br['port']}" for br in brokers], b)
    obs["has_cluster_id"] = bool(d.get("cluster_id"))
    obs["has_controller"] = d.get("controller_id", -1) >= 0
    check(len(brokers) == expected_brokers(), f"expected {expected_brokers()} broker(s): {brokers}")
    check(obs["broker_is_bootstrap"], f"brokers advertised as {brokers}, bootstrap {b}")
    check(obs["has_cluster_id"], "no cluster id")


async def retention(a, t):
    resps = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": None})])
    for r in resps:
        for res in r.resources:
            for entry in res[4]:
                if entry[0] == "retention.ms":
                    return entry[1]
    return "<missing>"


async def topic_error(a, t):
    d = await a.describe_topics([t])
    return err_name(d[0]["error_code"]) if d and d[0]["error_code"] else None


async def s_topic_admin(b, t, obs):
    await create(t, 3, {"retention.ms": "3600000"})
    a = await admin()
    try:
        d = (await a.describe_topics([t]))[0]
        obs["partitions"] = len(d["partitions"])
        check(len(d["partitions"]) == 3, f"describe: {len(d['partitions'])} partitions")
        obs["retention_at_create"] = await retention(a, t)
        check(obs["retention_at_create"] == "3600000", f"retention.ms after create {obs['retention_at_create']}")
        # aiokafka only has the legacy AlterConfigs (full replace), which is what it is tested with
        resps = await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": "7200000"})])
        for r in resps:
            for res in r.resources:
                check(res[0] == 0, f"alter_configs: {err_name(res[0])}")
        # KRaft applies the change through the metadata log: the broker may serve the old value
        # for a moment after the response, so read until it shows (bounded)
        more = deadline(5)
        while more():
            obs["retention_after_alter"] = await retention(a, t)
            if obs["retention_after_alter"] == "7200000":
                break
            await asyncio.sleep(0.1)
        check(obs["retention_after_alter"] == "7200000", f"retention.ms after alter {obs['retention_after_alter']}")
        resp = await a.delete_topics([t], timeout_ms=15000)
        check(dict(topic_errors(resp)).get(t) == 0, f"delete: {topic_errors(resp)}")
        more, last = deadline(15), "still present"
        while more():
            last = await topic_error(a, t) or "still present"
            if last == "UNKNOWN_TOPIC_OR_PARTITION":
                break
            await asyncio.sleep(0.2)
        obs["after_delete"] = last
        check(last == "UNKNOWN_TOPIC_OR_PARTITION", f"after delete: {last}")
    finally:
        await a.close()


def codec(name):
    async def f(b, t, obs):
        await create(t)
        values = vals(20, f"v-{name}-")
        offs = await produce(t, values, compression_type=None if name == "none" else name, linger_ms=50)
        obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
        recs = await read_from_start(t, 20)
        check_exact(recs, values, 0)
        obs["consumed"] = len(recs)
    return f


async def s_record_fields(b, t, obs):
    await create(t)
    p = await producer()
    try:
        await p.send(t, key=b"k0", value=b"v0", partition=0, timestamp_ms=BASE_TS + 1000, headers=[("h1", b"a"), ("h1", b"b"), ("h2", b"c")])
        await p.send(t, key=None, value=b"v1", partition=0, timestamp_ms=BASE_TS + 2000)
        f = await p.send(t, key=b"k2", value=None, partition=0, timestamp_ms=BASE_TS + 3000, headers=[("h3", b"")])
        await asyncio.wait_for(f, 20)
    finally:
        await p.stop()
    desc = []
    for r in await read_from_start(t, 3):
        hs = "".join(f"{k}={v.decode() if v is not None else '<null>'};" for k, v in (r.headers or []))
        key = r.key.decode() if r.key is not None else "<null>"
        val = r.value.decode() if r.value is not None else "<null>"
        tt = "CreateTime" if r.timestamp_type == 0 else "LogAppendTime"
        desc.append(f"key={key} value={val} ts=+{r.timestamp - BASE_TS} {tt} headers={hs}")
    obs["records"] = desc
    want = ["key=k0 value=v0 ts=+1000 CreateTime headers=h1=a;h1=b;h2=c;",
            "key=<null> value=v1 ts=+2000 CreateTime headers=",
            "key=k2 value=<null> ts=+3000 CreateTime headers=h3=;"]
    check(desc == want, f"round-trip differs: got {desc} expected {want}")


async def s_offset_earliest(b, t, obs):
    await create(t)
    await produce(t, vals(5, "e-"))
    c = await consumer(t, group_id=t + "-g")
    try:
        recs = await read_polls(c, 5, 15)
        check_exact(recs, vals(5, "e-"), 0)
        obs["first_offset"], obs["count"] = recs[0].offset, len(recs)
    finally:
        await c.stop()


async def s_offset_latest(b, t, obs):
    await create(t)
    await produce(t, vals(5, "old-"))
    c = await consumer(t, group_id=t + "-g", auto_offset_reset="latest")
    p = await producer(linger_ms=0)
    try:
        more = deadline(15)
        while not c.assignment() and more():
            await c.getmany(timeout_ms=200)
        check(c.assignment(), "no assignment within 15s")
        got, i = [], 0
        while not got and more():
            await (await p.send(t, value=f"new-{i}".encode(), partition=0))
            i += 1
            got = await read_polls(c, 1, 1)
        got += await read_polls(c, 100, 1)
        check(got, "nothing consumed")
        obs["saw_old"] = any(r.offset < 5 for r in got)
        obs["got_new"] = True
        check(not obs["saw_old"], f"latest consumer saw old records: {[r.value for r in got]}")
    finally:
        await c.stop()
        await p.stop()


async def produce_ts(t, deltas):
    p = await producer()
    try:
        fs = [await p.send(t, key=f"k{i}".encode(), value=f"t-{i}".encode(), partition=0, timestamp_ms=BASE_TS + d)
              for i, d in enumerate(deltas)]
        for f in fs:
            await asyncio.wait_for(f, 20)
    finally:
        await p.stop()


async def s_offsets_for_times(b, t, obs):
    await create(t)
    await produce_ts(t, [0, 1000, 2000, 3000, 4000])
    c = await consumer()
    tp = TopicPartition(t, 0)
    try:
        for d in (2500, 0, 10000):
            r = (await c.offsets_for_times({tp: BASE_TS + d}))[tp]
            obs[f"ts+{d}"] = r.offset if r is not None else -1
    finally:
        await c.stop()
    check(obs["ts+2500"] == 3, f"offsets_for_times(+2500) = {obs['ts+2500']}")
    check(obs["ts+0"] == 0, f"offsets_for_times(+0) = {obs['ts+0']}")
    check(obs["ts+10000"] == -1, f"offsets_for_times(future) = {obs['ts+10000']}")


async def poll_until_covered(cs, parts, seconds):
    more, sizes = deadline(seconds), ""
    while more():
        await asyncio.gather(*(c.getmany(timeout_ms=100) for c in cs))
        assigned = [set(c.assignment()) for c in cs]
        sz = sorted(len(a) for a in assigned)
        sizes = ",".join(map(str, sz))
        if len(set().union(*assigned)) == parts and sum(sz) == parts and 0 not in sz:
            return sizes
    return sizes + " (timed out)"


async def s_group_rebalance(b, t, obs):
    await create(t, 3)
    cs = []
    try:
        for i in range(3):
            cs.append(await consumer(t, group_id=t + "-g", session_timeout_ms=10000, heartbeat_interval_ms=500,
                                     max_poll_interval_ms=30000, client_id=f"compat-aiokafka-{i}"))
        obs["phase1"] = await poll_until_covered(cs, 3, 25)
        check(obs["phase1"] == "1,1,1", f"three members: {obs['phase1']}")
        await cs.pop().stop()
        obs["phase2"] = await poll_until_covered(cs, 3, 20)
        check(obs["phase2"] == "1,2", f"after one left: {obs['phase2']}")
    finally:
        for c in cs:
            await c.stop()


async def s_commit_resume(b, t, obs):
    await create(t)
    await produce(t, vals(10, "c-"))
    g, tp = t + "-g", TopicPartition(t, 0)
    c = await consumer(t, group_id=g)
    try:
        got = await read_polls(c, 4, 15)
        check(len(got) >= 4, f"first member read {len(got)}")
        await c.commit({tp: OffsetAndMetadata(4, "compat")})
        obs["committed"] = await c.committed(tp)
        check(obs["committed"] == 4, f"committed() = {obs['committed']}")
    finally:
        await c.stop()
    c = await consumer(t, group_id=g, auto_offset_reset="latest")
    try:
        got = await read_polls(c, 6, 15)
        obs["resumed_first"] = got[0].offset if got else -1
        obs["resumed_count"] = len(got)
        check_exact(got, vals(10, "c-")[4:], 4)
    finally:
        await c.stop()


async def s_idempotent(b, t, obs):
    await create(t)
    offs = await produce(t, vals(10, "i-"), enable_idempotence=True, acks="all")
    obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
    check_exact(await read_from_start(t, 10), vals(10, "i-"), 0)


async def s_transactions(b, t, obs):
    await create(t)
    p = await producer(transactional_id=t + "-tx", enable_idempotence=True)
    try:
        async with p.transaction():
            for v in ("a0", "a1", "a2"):
                await p.send(t, value=v.encode(), partition=0)
        await p.begin_transaction()
        for v in ("b0", "b1"):
            await (await p.send(t, value=v.encode(), partition=0))
        await p.abort_transaction()
        async with p.transaction():
            await p.send(t, value=b"c0", partition=0)
    finally:
        await p.stop()
    rc = [r.value.decode() for r in await read_from_start(t, 4, isolation_level="read_committed")]
    ru = [r.value.decode() for r in await read_from_start(t, 6, isolation_level="read_uncommitted")]
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    check(rc == ["a0", "a1", "a2", "c0"], f"read_committed saw {rc}")
    check(ru == ["a0", "a1", "a2", "b0", "b1", "c0"], f"read_uncommitted saw {ru}")
    c = await consumer(isolation_level="read_committed")
    try:
        end = (await c.end_offsets([TopicPartition(t, 0)]))[TopicPartition(t, 0)]
    finally:
        await c.stop()
    obs["end_offset"] = end
    check(end == 9, f"end offset {end}, expected 9")


async def drain_values(t, n, isolation):
    """Read partition 0 from the start until n records arrived, then 1.5 s more to catch extras."""
    c = await consumer(isolation_level=isolation)
    out = []
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        more, quiet = deadline(15), None
        loop = asyncio.get_running_loop()
        while more() and (quiet is None or loop.time() < quiet):
            for msgs in (await c.getmany(timeout_ms=200)).values():
                out.extend(m.value.decode() for m in msgs)
            if len(out) >= n and quiet is None:
                quiet = loop.time() + 1.5
    finally:
        await c.stop()
    return out


async def s_eos_pipeline(b, t, obs):
    """Consume-transform-produce in a group: each getmany (max_records=10) is one transaction that
    sends the uppercased values to <t>-out and commits the consumed offsets through
    send_offsets_to_transaction(offsets, group_id); after the first commit one extra transaction
    writes ABORTED-0..4 and offsets +5, then aborts."""
    out_t, g = t + "-out", t + "-g"
    tp = TopicPartition(t, 0)
    await create(t)
    await create(out_t)
    await produce(t, vals(20, "v"))
    p = await producer(transactional_id=t + "-eos", enable_idempotence=True)
    c = await consumer(t, group_id=g, isolation_level="read_committed")
    txns, done, aborted = [], 0, False
    try:
        more = deadline(30)
        while done < 20 and more():
            recs = [m for ms in (await c.getmany(timeout_ms=500, max_records=10)).values() for m in ms]
            if not recs:
                continue
            async with p.transaction():
                for m in recs:
                    await p.send(out_t, key=m.key, value=m.value.decode().upper().encode(), partition=0)
                nxt = recs[-1].offset + 1
                await p.send_offsets_to_transaction({tp: nxt}, g)
            done += len(recs)
            txns.append(len(recs))
            if not aborted:
                aborted = True
                await p.begin_transaction()
                for i in range(5):
                    await (await p.send(out_t, value=f"ABORTED-{i}".encode(), partition=0))
                await p.send_offsets_to_transaction({tp: nxt + 5}, g)
                await p.abort_transaction()
                cm = await c.committed(tp)
                obs["committed_after_abort"] = cm
                check(cm == nxt, f"committed offset after the aborted transaction: {cm}, expected {nxt}")
    finally:
        await c.stop()
        await p.stop()
    obs["transactions"] = txns
    check(len(txns) >= 2, f"committed transactions (records each): {txns}")
    want = [v.upper() for v in vals(20, "v")]
    rc = await drain_values(out_t, 20, "read_committed")
    ru = await drain_values(out_t, 25, "read_uncommitted")
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    c = await consumer(group_id=g, isolation_level="read_committed")
    try:
        obs["committed"] = await c.committed(tp)
    finally:
        await c.stop()
    check(rc == want, f"read_committed output {rc}, expected V0..V19 once each")
    check(len(ru) == 25, f"read_uncommitted saw {len(ru)} records, expected 25 (20 + 5 aborted)")
    check(obs["committed"] == 20, f"group's committed input offset {obs['committed']}, expected 20")


async def s_delete_records(b, t, obs):
    await create(t)
    await produce(t, vals(10, "d-"))
    tp = TopicPartition(t, 0)
    a = await admin()
    try:
        r = await a.delete_records({tp: RecordsToDelete(4)}, timeout_ms=15000)
    finally:
        await a.close()
    obs["low_watermark"] = r[tp]
    check(r[tp] == 4, f"low watermark {r[tp]}")
    c = await consumer()
    try:
        obs["earliest"] = (await c.beginning_offsets([tp]))[tp]
    finally:
        await c.stop()
    check(obs["earliest"] == 4, f"earliest after delete {obs['earliest']}")
    got = await read_from_start(t, 6)
    obs["first_consumed"] = got[0].offset if got else -1
    check_exact(got, vals(10, "d-")[4:], 4)


async def s_list_offsets(b, t, obs):
    await create(t)
    await produce_ts(t, [1000, 2000, 9000, 3000, 4000])
    tp = TopicPartition(t, 0)
    c = await consumer()
    try:
        obs["earliest"] = (await c.beginning_offsets([tp]))[tp]
        obs["latest"] = (await c.end_offsets([tp]))[tp]
    finally:
        await c.stop()
    # aiokafka has no max-timestamp (KIP-734) lookup: only earliest/latest are checked
    check(obs["earliest"] == 0 and obs["latest"] == 5, f"earliest/latest {obs['earliest']}/{obs['latest']}")


async def s_unknown_topic(b, t, obs):
    a = await admin()
    try:
        obs["describe_error"] = await topic_error(a, t)
    finally:
        await a.close()
    check(obs["describe_error"] == "UNKNOWN_TOPIC_OR_PARTITION", f"describe error {obs['describe_error']}")


async def s_too_large(b, t, obs):
    await create(t, 1, {"max.message.bytes": "2048"})
    p = await producer(linger_ms=0)
    try:
        try:
            await (await p.send(t, key=b"big", value=b"x" * 10000, partition=0))
            raise Fail("10 kB record accepted by a topic with max.message.bytes=2048")
        except KafkaError as e:
            obs["error"] = kname(e)
        obs["next_offset"] = (await (await p.send(t, key=b"small", value=b"ok", partition=0))).offset
    finally:
        await p.stop()
    check(obs["error"] == "MESSAGE_TOO_LARGE", f"error {obs['error']}")
    check(obs["next_offset"] == 0, f"small record after the rejected one at {obs['next_offset']}")


async def s_keyless_compacted(b, t, obs):
    await create(t, 1, {"cleanup.policy": "compact"})
    p = await producer(linger_ms=0)
    try:
        try:
            await (await p.send(t, value=b"no-key", partition=0))
            raise Fail("a record without a key was accepted by a cleanup.policy=compact topic")
        except KafkaError as e:
            obs["error"] = kname(e)
        obs["next_offset"] = (await (await p.send(t, key=b"k", value=b"keyed", partition=0))).offset
    finally:
        await p.stop()
    # aiokafka 0.14.0 has no error class for code 87 (INVALID_RECORD): it raises UnknownError
    check(obs["error"] in ("INVALID_RECORD", "UNKNOWN_SERVER_ERROR"), f"error {obs['error']}, expected INVALID_RECORD (UnknownError in aiokafka 0.14.0)")
    check(obs["next_offset"] == 0, f"keyed record after the refused one at {obs['next_offset']}")


async def s_invalid_config(b, t, obs):
    code = await create_raw(t, 1, {"cleanup.policy": "bogus"})
    obs["error"] = err_name(code) if code else None
    a = await admin()
    try:
        obs["created"] = t in await a.list_topics()
    finally:
        await a.close()
    check(obs["error"] == "INVALID_CONFIG", f"error {obs['error']}")
    check(not obs["created"], "topic exists after a rejected create")


def sync(fn):
    return lambda b, t, obs: asyncio.run(asyncio.wait_for(fn(b, t, obs), 55))


# ---------------------------------------------------------------- security (sec-*)
#
# aiokafka 0.14.0 connects with SSL (an ssl.SSLContext from aiokafka.helpers.create_ssl_context,
# hostname checked) and SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512, but its admin client has no
# SCRAM credential calls (AlterUserScramCredentials / DescribeUserScramCredentials): the SCRAM
# scenarios make, describe and delete the credential with kafka-python's KafkaAdminClient (same
# venv) through the PLAINTEXT listener; everything else is aiokafka. A failed bootstrap is a
# KafkaConnectionError("Unable to bootstrap ..."); the reason is what the client logs as
# 'Unable connect to "host:port": <error>', read from its log records.

class _ConnErrors(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.msgs = []

    def emit(self, record):
        m = record.getMessage()
        if m.startswith("Unable connect to"):
            self.msgs.append(m.split(": ", 1)[1] if ": " in m else m)


CONN_ERRORS = _ConnErrors()
logging.getLogger("aiokafka").addHandler(CONN_ERRORS)


def _reason(msgs):
    """The error class of the first failed connection ("[Error 58] SaslAuthenticationFailed: ..." -> SaslAuthenticationFailed)."""
    for m in msgs:
        n = re.match(r"(?:\[Error -?\d+\] )?(\w+)", m)
        if n:
            return n.group(1), m
    return None, None


def tls_kw(S, listener, cert=False):
    ctx = create_ssl_context(cafile=S["ca"], certfile=S["client_cert"] if cert else None,
                             keyfile=S["client_key"] if cert else None)
    return dict(bootstrap_servers=S[listener], security_protocol="SSL", ssl_context=ctx)


def sasl_kw(S, listener, mechanism, user, password):
    kw = dict(bootstrap_servers=S[listener], security_protocol=listener.upper(), sasl_mechanism=mechanism,
              sasl_plain_username=user, sasl_plain_password=password)
    if listener == "sasl_ssl":
        kw["ssl_context"] = create_ssl_context(cafile=S["ca"])
    return kw


async def sec_round_trip(t, obs, **kw):
    values = vals(5, "sec-")
    p = AIOKafkaProducer(**{"linger_ms": 5, **COMMON, **kw})
    await p.start()
    try:
        fs = [await p.send(t, value=v.encode(), key=f"k-{i}".encode(), partition=0) for i, v in enumerate(values)]
        offs = [(await asyncio.wait_for(f, 20)).offset for f in fs]
    finally:
        await p.stop()
    obs["produced_offsets"] = f"{offs[0]}..{offs[-1]}"
    c = AIOKafkaConsumer(**{"enable_auto_commit": False, "auto_offset_reset": "earliest", **COMMON, **kw})
    await c.start()
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        recs = await read_polls(c, 5)
    finally:
        await c.stop()
    obs["count"] = len(recs)
    check_exact(recs, values, 0)


async def probe(seconds=5, **kw):
    """DescribeCluster over a fresh client, bounded: (None, None) when answered, else the error
    class of the failed connection (as the client logged it) and its text."""
    CONN_ERRORS.msgs = []
    a = AIOKafkaAdminClient(**{**COMMON, "request_timeout_ms": seconds * 1000, **kw})
    try:
        await asyncio.wait_for(a.start(), seconds)
        await asyncio.wait_for(a.describe_cluster(), seconds)
        return None, None
    except Exception as e:  # noqa: BLE001 - what the client reports is the observation
        name, msg = _reason(CONN_ERRORS.msgs)
        return name or type(e).__name__, msg or str(e)
    finally:
        try:
            await a.close()
        except Exception:  # noqa: BLE001
            pass


async def probe_until(ok, seconds, **kw):
    more = deadline(seconds)
    while True:
        err, msg = await probe(**kw)
        if (err is None) == ok or not more():
            return err, msg
        await asyncio.sleep(0.25)


def broker_words(msg):
    return msg.split(": ", 1)[1] if msg and ": " in msg else msg


def kp_admin():
    """kafka-python's admin client (aiokafka has no SCRAM credential calls)."""
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=B["b"], client_id="compat-aiokafka-kp-admin", request_timeout_ms=15000)


def kp_described(a, user):
    d = a.describe_user_scram_credentials([user]).get(user) or {}
    if d.get("error"):
        return d["error"].replace(user, "<user>")
    return ",".join(f"{ci['mechanism'].name}:{ci['iterations']}" for ci in d.get("credential_infos", []))


def kp_upsert(a, user, mechanism, password):
    from kafka.admin import UserScramCredentialUpsertion
    r = a.alter_user_scram_credentials([UserScramCredentialUpsertion(user, mechanism, password, iterations=8192)])
    check(r.get(user) is None, f"AlterUserScramCredentials upsert (kafka-python): {r}")
    want, shown, more = f"{mechanism.replace('-', '_')}:8192", "", deadline(10)
    while more():
        shown = kp_described(a, user)
        if shown == want:
            break
        time.sleep(0.2)
    return shown


def kp_delete(a, user, mechanism):
    from kafka.admin import UserScramCredentialDeletion
    r = a.alter_user_scram_credentials([UserScramCredentialDeletion(user, mechanism)])
    check(r.get(user) is None, f"AlterUserScramCredentials delete (kafka-python): {r}")


async def s_sec_tls(b, t, obs):
    S = security()
    await create(t)
    await sec_round_trip(t, obs, **tls_kw(S, "ssl"))


async def s_sec_mtls(b, t, obs):
    S = security()
    await create(t)
    await sec_round_trip(t, obs, **tls_kw(S, "mtls", cert=True))
    obs["ok"] = True
    err, msg = await probe(**tls_kw(S, "mtls"))
    obs["no_cert_error"] = err
    check(err is not None, "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)")


async def s_sec_plain(b, t, obs):
    S = security()
    await create(t)
    pw = S["plain_users"]["alice"]
    await sec_round_trip(t, obs, **sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", pw))
    err, msg = await probe(**sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", "wrong-" + pw))
    obs["bad_password_error"] = err
    obs["bad_password_message"] = broker_words(msg)
    check(err == "SaslAuthenticationFailed", f"alice with a wrong password: {err} {msg}, expected SaslAuthenticationFailed")


def sec_scram(mechanism):
    async def f(b, t, obs):
        S = security()
        await create(t)
        user, pw = f"u-{t}", f"pw-{t}"
        a = kp_admin()
        try:
            obs["admin_client"] = "kafka-python"
            obs["described"] = kp_upsert(a, user, mechanism, pw)
            check(obs["described"] == f"{mechanism.replace('-', '_')}:8192", f"DescribeUserScramCredentials after the upsert: {obs['described']}")
            err, msg = await probe_until(True, 10, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
            check(err is None, f"the new {mechanism} credential was not accepted within 10 s: {err} {msg}")
            await sec_round_trip(t, obs, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
            err, msg = await probe(**sasl_kw(S, "sasl_plaintext", mechanism, user, "wrong-" + pw))
            obs["bad_password_error"] = err
            obs["bad_password_message"] = broker_words(msg)
            check(err == "SaslAuthenticationFailed", f"a wrong password: {err} {msg}, expected SaslAuthenticationFailed")
            kp_delete(a, user, mechanism)
            more, gone = deadline(10), ""
            while more():
                gone = kp_described(a, user)
                if "does not exist" in gone:
                    break
                await asyncio.sleep(0.2)
            obs["described_after_delete"] = gone
            check("does not exist" in gone, f"DescribeUserScramCredentials after the delete: {gone!r}, expected a user that does not exist")
        finally:
            a.close()
        err, msg = await probe_until(False, 10, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
        obs["after_delete_error"] = err
        check(err == "SaslAuthenticationFailed", f"the deleted credential's password: {err} {msg}, expected SaslAuthenticationFailed")
    return f


async def s_sec_sasl_ssl(b, t, obs):
    S = security()
    await create(t)
    user, pw = f"u-{t}", f"pw-{t}"
    a = kp_admin()
    try:
        obs["admin_client"] = "kafka-python"
        shown = kp_upsert(a, user, "SCRAM-SHA-512", pw)
        check(shown == "SCRAM_SHA_512:8192", f"DescribeUserScramCredentials after the upsert: {shown}")
        err, msg = await probe_until(True, 10, **sasl_kw(S, "sasl_ssl", "SCRAM-SHA-512", user, pw))
        check(err is None, f"SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: {err} {msg}")
        await sec_round_trip(t, obs, **sasl_kw(S, "sasl_ssl", "SCRAM-SHA-512", user, pw))
        kp_delete(a, user, "SCRAM-SHA-512")
    finally:
        a.close()


def oauth_kw(S, case):
    """SASL/OAUTHBEARER on the OAUTH listener with the pre-minted JWT of this case, as is."""
    from aiokafka.abc import AbstractTokenProvider
    with open(S["oauth_tokens"][case]) as f:
        token = f.read().strip()

    class Static(AbstractTokenProvider):
        async def token(self):
            return token
    return dict(bootstrap_servers=S["oauth"], security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=Static())


async def s_sec_oauth(b, t, obs):
    """No ACLs here (aiokafka's admin has no ACL calls): the round trip and the refusals."""
    S = security()
    await create(t)
    err, msg = await probe_until(True, 10, **oauth_kw(S, "valid"))
    check(err is None, f"the valid token was not accepted: {err} {msg}")
    await sec_round_trip(t, obs, **oauth_kw(S, "valid"))
    bad = {}
    for case in ("expired", "wrong-audience", "bad-signature", "unsigned"):
        err, msg = await probe(**oauth_kw(S, case))
        obs[f"{case}_error"] = err
        obs[f"{case}_message"] = broker_words(msg)
        if (err, broker_words(msg)) != OAUTH_REFUSED:
            bad[case] = f"{err} {msg}"
    check(not bad, f"tokens not refused as Kafka 4.4 refuses them ({OAUTH_REFUSED}): {bad}")


# What aiokafka 0.14.0 reports for a refused token against Kafka 4.4. Kafka answers the token with a
# SaslAuthenticate response without error whose auth bytes are the RFC 7628 error
# ({"status":"invalid_token"}) and waits for the client's %x01; aiokafka's OAuthAuthenticator
# ignores the server's message and counts itself authenticated, and the Metadata it sends next is
# not served (Kafka closes the connection; aiokafka is left without a broker).
OAUTH_REFUSED = ("StaleMetadata", "Broker id None not in current metadata")


async def s_sec_plaintext_to_tls(b, t, obs):
    S = security()
    err, msg = await probe(bootstrap_servers=S["ssl"])
    obs["plaintext_to_ssl"] = err
    check(err is not None, "a PLAINTEXT client was served by the SSL listener")
    err, msg = await probe(**{**sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", S["plain_users"]["alice"]),
                              "bootstrap_servers": S["plaintext"]})
    obs["sasl_to_plaintext"] = err
    check(err is not None, "a SASL client was served by the PLAINTEXT listener")


SCENARIOS = {k: sync(v) for k, v in {
    "metadata": s_metadata, "topic-admin": s_topic_admin,
    "codec-none": codec("none"), "codec-gzip": codec("gzip"), "codec-snappy": codec("snappy"),
    "codec-lz4": codec("lz4"), "codec-zstd": codec("zstd"),
    "record-fields": s_record_fields, "offset-earliest": s_offset_earliest, "offset-latest": s_offset_latest,
    "offsets-for-times": s_offsets_for_times, "group-rebalance": s_group_rebalance,
    "group-rebalance-848": na(NO848), "commit-resume-848": na(NO848),
    "commit-resume": s_commit_resume, "idempotent-produce": s_idempotent, "transactions": s_transactions, "eos-pipeline": s_eos_pipeline,
    "delete-records": s_delete_records, "list-offsets": s_list_offsets, "err-unknown-topic": s_unknown_topic,
    "err-record-too-large": s_too_large, "err-invalid-config": s_invalid_config,
    "err-keyless-compacted": s_keyless_compacted, "static-member-848": na(NO848),
    "sec-tls": s_sec_tls, "sec-mtls": s_sec_mtls, "sec-plain": s_sec_plain,
    "sec-scram-256": sec_scram("SCRAM-SHA-256"), "sec-scram-512": sec_scram("SCRAM-SHA-512"),
    "sec-sasl-ssl": s_sec_sasl_ssl, "sec-plaintext-to-tls": s_sec_plaintext_to_tls,
    "sec-acl": na("aiokafka 0.14.0's AIOKafkaAdminClient has no ACL calls (CreateAcls/DescribeAcls/DeleteAcls)"),
    "sec-quota": na("aiokafka 0.14.0's AIOKafkaAdminClient has no client quota calls (AlterClientQuotas/DescribeClientQuotas)"),
    "sec-oauth": s_sec_oauth,
}.items()}

if __name__ == "__main__":
    import sys
    B["b"] = sys.argv[2]
    main(SCENARIOS)
