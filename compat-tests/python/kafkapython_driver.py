"""kafka-python column of Strom's compat-tests. Usage: <scenario> <bootstrap> <topic>."""

import logging
import re
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ConfigResource,
                         ConfigResourceType, KafkaAdminClient, OffsetSpec, ResourcePattern, ResourcePatternFilter,
                         ResourceType, UserScramCredentialDeletion, UserScramCredentialUpsertion)
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from common import (BASE_TS, Fail, advertised_is_bootstrap, check, deadline, err_name, expected_brokers, main, na,
                    security, vals)

NO848 = "kafka-python 3.0.12 has only the classic group protocol (JoinGroup/SyncGroup), no KIP-848 consumer protocol"

B = {}
COMMON = dict(client_id="compat-kafka-python", request_timeout_ms=15000)


def admin():
    return KafkaAdminClient(bootstrap_servers=B["b"], **COMMON)


def producer(**kw):
    base = dict(linger_ms=5, max_block_ms=15000, **COMMON)
    base.update(kw)
    return KafkaProducer(bootstrap_servers=B["b"], **base)


def consumer(**kw):
    base = dict(enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=1000, **COMMON)
    base.update(kw)
    return KafkaConsumer(bootstrap_servers=B["b"], **base)


def kname(e):
    return err_name(e.errno) if getattr(e, "errno", None) is not None else f"{type(e).__name__}: {e}"


def create(t, partitions=1, configs=None):
    a = admin()
    try:
        a.create_topics({t: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
                        timeout_ms=15000, wait_for_metadata=True)
    finally:
        a.close()


def produce(t, values, **kw):
    p = producer(**kw)
    try:
        fs = [p.send(t, value=v.encode(), key=f"k-{i}".encode(), partition=0) for i, v in enumerate(values)]
        p.flush(20)
        return [f.get(timeout=20).offset for f in fs]
    finally:
        p.close(5)


def read_polls(c, n, seconds=10):
    out = []
    more = deadline(seconds)
    while len(out) < n and more():
        for recs in c.poll(timeout_ms=200).values():
            out.extend(recs)
    out.sort(key=lambda r: (r.partition, r.offset))
    return out


def read_from_start(t, n, **kw):
    c = consumer(**kw)
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        return read_polls(c, n)
    finally:
        c.close()


def check_exact(recs, values, first):
    got = [r.value.decode() if r.value is not None else None for r in recs]
    check(got == values, f"read {len(got)} of {len(values)} records, values differ: got {got} expected {values}")
    check([r.offset for r in recs] == list(range(first, first + len(values))), f"offsets {[r.offset for r in recs]}")


def s_metadata(b, t, obs):
    a = admin()
    try:
        d = a.describe_cluster()
    finally:
        a.close()
    brokers = d["brokers"]
    obs["brokers"] = len(brokers)
    obs["broker_is_bootstrap"] = advertised_is_bootstrap([f"{br['host']}:{br['port']}" for br in brokers], b)
    obs["has_cluster_id"] = bool(d.get("cluster_id"))
    obs["has_controller"] = d.get("controller_id", -1) >= 0
    check(len(brokers) == expected_brokers(), f"expected {expected_brokers()} broker(s): {brokers}")
    check(obs["broker_is_bootstrap"], f"brokers advertised as {brokers}, bootstrap {b}")
    check(obs["has_cluster_id"], "no cluster id")


def topic_error(a, t):
    d = a.describe_topics([t])
    return err_name(d[0]["error_code"]) if d and d[0]["error_code"] else None


def retention(a, t):
    r = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])
    return r["topic"][t].get("retention.ms", {}).get("value")


def s_topic_admin(b, t, obs):
    create(t, 3, {"retention.ms": "3600000"})
    a = admin()
    try:
        d = a.describe_topics([t])[0]
        obs["partitions"] = len(d["partitions"])
        check(len(d["partitions"]) == 3, f"describe: {len(d['partitions'])} partitions")
        obs["retention_at_create"] = retention(a, t)
        check(obs["retention_at_create"] == "3600000", f"retention.ms after create {obs['retention_at_create']}")
        a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "7200000"})])
        more = deadline(5)  # KRaft applies the change through the metadata log: read until it shows
        while True:
            obs["retention_after_alter"] = retention(a, t)
            if obs["retention_after_alter"] == "7200000" or not more():
                break
            time.sleep(0.1)
        check(obs["retention_after_alter"] == "7200000", f"retention.ms after alter {obs['retention_after_alter']}")
        a.delete_topics([t], timeout_ms=15000)
        more, last = deadline(15), "still present"
        while more():
            last = topic_error(a, t) or "still present"
            if last == "UNKNOWN_TOPIC_OR_PARTITION":
                break
            time.sleep(0.2)
        obs["after_delete"] = last
        check(last == "UNKNOWN_TOPIC_OR_PARTITION", f"after delete: {last}")
    finally:
        a.close()


def codec(name):
    def f(b, t, obs):
        create(t)
        values = vals(20, f"v-{name}-")
        offs = produce(t, values, compression_type=None if name == "none" else name, linger_ms=50)
        obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
        recs = read_from_start(t, 20)
        check_exact(recs, values, 0)
        obs["consumed"] = len(recs)
    return f


def s_record_fields(b, t, obs):
    create(t)
    p = producer()
    p.send(t, key=b"k0", value=b"v0", partition=0, timestamp_ms=BASE_TS + 1000, headers=[("h1", b"a"), ("h1", b"b"), ("h2", b"c")])
    p.send(t, key=None, value=b"v1", partition=0, timestamp_ms=BASE_TS + 2000)
    p.send(t, key=b"k2", value=None, partition=0, timestamp_ms=BASE_TS + 3000, headers=[("h3", b"")]).get(timeout=20)
    p.close(5)
    desc = []
    for r in read_from_start(t, 3):
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


def s_offset_earliest(b, t, obs):
    create(t)
    produce(t, vals(5, "e-"))
    c = consumer(group_id=t + "-g")
    try:
        c.subscribe([t])
        recs = read_polls(c, 5, 15)
        check_exact(recs, vals(5, "e-"), 0)
        obs["first_offset"], obs["count"] = recs[0].offset, len(recs)
    finally:
        c.close()


def s_offset_latest(b, t, obs):
    create(t)
    produce(t, vals(5, "old-"))
    c = consumer(group_id=t + "-g", auto_offset_reset="latest")
    p = producer(linger_ms=0)
    try:
        c.subscribe([t])
        more = deadline(15)
        while not c.assignment() and more():
            c.poll(timeout_ms=200)
        check(c.assignment(), "no assignment within 15s")
        got, i = [], 0
        while not got and more():
            p.send(t, value=f"new-{i}".encode(), partition=0).get(timeout=10)
            i += 1
            got = read_polls(c, 1, 1)
        got += read_polls(c, 100, 1)
        check(got, "nothing consumed")
        obs["saw_old"] = any(r.offset < 5 for r in got)
        obs["got_new"] = True
        check(not obs["saw_old"], f"latest consumer saw old records: {[r.value for r in got]}")
    finally:
        c.close()
        p.close(5)


def produce_ts(t, deltas):
    p = producer()
    fs = [p.send(t, key=f"k{i}".encode(), value=f"t-{i}".encode(), partition=0, timestamp_ms=BASE_TS + d)
          for i, d in enumerate(deltas)]
    p.flush(20)
    for f in fs:
        f.get(timeout=20)
    p.close(5)


def s_offsets_for_times(b, t, obs):
    create(t)
    produce_ts(t, [0, 1000, 2000, 3000, 4000])
    c = consumer()
    tp = TopicPartition(t, 0)
    try:
        for d in (2500, 0, 10000):
            r = c.offsets_for_times({tp: BASE_TS + d})[tp]
            obs[f"ts+{d}"] = r.offset if r is not None else -1
    finally:
        c.close()
    check(obs["ts+2500"] == 3, f"offsets_for_times(+2500) = {obs['ts+2500']}")
    check(obs["ts+0"] == 0, f"offsets_for_times(+0) = {obs['ts+0']}")
    check(obs["ts+10000"] == -1, f"offsets_for_times(future) = {obs['ts+10000']}")


class Poller:
    """kafka-python's poll() blocks inside JoinGroup until every member has rejoined, so each
    group member polls on its own thread (as a real application's consumers would)."""

    def __init__(self, c):
        import threading
        self.c, self.stop, self.lock = c, threading.Event(), threading.Lock()
        self.assigned = set()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            self.c.poll(timeout_ms=100)
            with self.lock:
                self.assigned = set(self.c.assignment())

    def close(self):
        self.stop.set()
        self.t.join(10)
        self.c.close()


def poll_until_covered(ps, parts, seconds):
    more, sizes = deadline(seconds), ""
    while more():
        time.sleep(0.1)
        assigned = []
        for p in ps:
            with p.lock:
                assigned.append(set(p.assigned))
        sz = sorted(len(a) for a in assigned)
        sizes = ",".join(map(str, sz))
        if len(set().union(*assigned)) == parts and sum(sz) == parts and 0 not in sz:
            return sizes
    return sizes + " (timed out)"


def s_group_rebalance(b, t, obs):
    create(t, 3)
    ps = []
    try:
        for i in range(3):
            c = consumer(group_id=t + "-g", session_timeout_ms=10000, heartbeat_interval_ms=500,
                         max_poll_interval_ms=30000, client_id=f"compat-kafka-python-{i}")
            c.subscribe([t])
            ps.append(Poller(c))
        obs["phase1"] = poll_until_covered(ps, 3, 25)
        check(obs["phase1"] == "1,1,1", f"three members: {obs['phase1']}")
        ps.pop().close()
        obs["phase2"] = poll_until_covered(ps, 3, 20)
        check(obs["phase2"] == "1,2", f"after one left: {obs['phase2']}")
    finally:
        for p in ps:
            p.close()


def s_commit_resume(b, t, obs):
    create(t)
    produce(t, vals(10, "c-"))
    g, tp = t + "-g", TopicPartition(t, 0)
    c = consumer(group_id=g)
    try:
        c.subscribe([t])
        got = read_polls(c, 4, 15)
        check(len(got) >= 4, f"first member read {len(got)}")
        c.commit({tp: OffsetAndMetadata(4, "compat", -1)})
        obs["committed"] = c.committed(tp)
        check(obs["committed"] == 4, f"committed() = {obs['committed']}")
    finally:
        c.close()
    c = consumer(group_id=g, auto_offset_reset="latest")
    try:
        c.subscribe([t])
        got = read_polls(c, 6, 15)
        obs["resumed_first"] = got[0].offset if got else -1
        obs["resumed_count"] = len(got)
        check_exact(got, vals(10, "c-")[4:], 4)
    finally:
        c.close()


def s_idempotent(b, t, obs):
    create(t)
    offs = produce(t, vals(10, "i-"), enable_idempotence=True, acks="all")
    obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
    check_exact(read_from_start(t, 10), vals(10, "i-"), 0)


def s_transactions(b, t, obs):
    create(t)
    p = producer(transactional_id=t + "-tx", enable_idempotence=True)
    p.init_transactions()
    p.begin_transaction()
    for v in ("a0", "a1", "a2"):
        p.send(t, value=v.encode(), partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for v in ("b0", "b1"):
        p.send(t, value=v.encode(), partition=0)
    p.flush(10)
    p.abort_transaction()
    p.begin_transaction()
    p.send(t, value=b"c0", partition=0)
    p.commit_transaction()
    p.close(5)
    rc = [r.value.decode() for r in read_from_start(t, 4, isolation_level="read_committed")]
    ru = [r.value.decode() for r in read_from_start(t, 6, isolation_level="read_uncommitted")]
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    check(rc == ["a0", "a1", "a2", "c0"], f"read_committed saw {rc}")
    check(ru == ["a0", "a1", "a2", "b0", "b1", "c0"], f"read_uncommitted saw {ru}")
    c = consumer(isolation_level="read_committed")
    try:
        end = c.end_offsets([TopicPartition(t, 0)])[TopicPartition(t, 0)]
    finally:
        c.close()
    obs["end_offset"] = end
    check(end == 9, f"end offset {end}, expected 9")


def list_offset(a, tp, spec):
    return a.list_partition_offsets({tp: spec})[tp].offset


def drain_values(t, n, isolation):
    """Read partition 0 from the start until n records arrived, then 1.5 s more to catch extras."""
    c = consumer(isolation_level=isolation)
    out = []
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        more, quiet = deadline(15), None
        while more() and (quiet is None or time.monotonic() < quiet):
            for recs in c.poll(timeout_ms=200).values():
                out.extend(r.value.decode() for r in recs)
            if len(out) >= n and quiet is None:
                quiet = time.monotonic() + 1.5
    finally:
        c.close()
    return out


def s_eos_pipeline(b, t, obs):
    """Consume-transform-produce in a group: each poll (max_records=10) is one transaction that
    sends the uppercased values to <t>-out and commits the consumed offsets through
    send_offsets_to_transaction(offsets, consumer.group_metadata()); after the first commit one
    extra transaction writes ABORTED-0..4 and offsets +5, then aborts."""
    out_t, g = t + "-out", t + "-g"
    tp = TopicPartition(t, 0)
    create(t)
    create(out_t)
    produce(t, vals(20, "v"))
    p = producer(transactional_id=t + "-eos", enable_idempotence=True)
    c = consumer(group_id=g, isolation_level="read_committed")
    c.subscribe([t])
    txns, done, aborted = [], 0, False
    try:
        p.init_transactions()
        more = deadline(30)
        while done < 20 and more():
            recs = [r for rs in c.poll(timeout_ms=500, max_records=10).values() for r in rs]
            if not recs:
                continue
            p.begin_transaction()
            for r in recs:
                p.send(out_t, key=r.key, value=r.value.decode().upper().encode(), partition=0)
            nxt = recs[-1].offset + 1
            p.send_offsets_to_transaction({tp: OffsetAndMetadata(nxt, "", -1)}, c.group_metadata())
            p.commit_transaction()
            done += len(recs)
            txns.append(len(recs))
            if not aborted:
                aborted = True
                p.begin_transaction()
                for i in range(5):
                    p.send(out_t, value=f"ABORTED-{i}".encode(), partition=0)
                p.send_offsets_to_transaction({tp: OffsetAndMetadata(nxt + 5, "", -1)}, c.group_metadata())
                p.flush(10)
                p.abort_transaction()
                cm = c.committed(tp)
                obs["committed_after_abort"] = cm
                check(cm == nxt, f"committed offset after the aborted transaction: {cm}, expected {nxt}")
    finally:
        c.close()
        p.close(5)
    obs["transactions"] = txns
    check(len(txns) >= 2, f"committed transactions (records each): {txns}")
    want = [v.upper() for v in vals(20, "v")]
    rc = drain_values(out_t, 20, "read_committed")
    ru = drain_values(out_t, 25, "read_uncommitted")
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    c = consumer(group_id=g, isolation_level="read_committed")
    try:
        obs["committed"] = c.committed(tp)
    finally:
        c.close()
    check(rc == want, f"read_committed output {rc}, expected V0..V19 once each")
    check(len(ru) == 25, f"read_uncommitted saw {len(ru)} records, expected 25 (20 + 5 aborted)")
    check(obs["committed"] == 20, f"group's committed input offset {obs['committed']}, expected 20")


def s_delete_records(b, t, obs):
    create(t)
    produce(t, vals(10, "d-"))
    tp = TopicPartition(t, 0)
    a = admin()
    try:
        r = a.delete_records({tp: 4}, timeout_ms=15000)[tp]
        obs["low_watermark"] = r["low_watermark"]
        check(r["low_watermark"] == 4 and not r["error_code"], f"delete_records: {r}")
        obs["earliest"] = list_offset(a, tp, OffsetSpec.EARLIEST)
        check(obs["earliest"] == 4, f"earliest after delete {obs['earliest']}")
    finally:
        a.close()
    got = read_from_start(t, 6)
    obs["first_consumed"] = got[0].offset if got else -1
    check_exact(got, vals(10, "d-")[4:], 4)


def s_list_offsets(b, t, obs):
    create(t)
    produce_ts(t, [1000, 2000, 9000, 3000, 4000])
    tp = TopicPartition(t, 0)
    a = admin()
    try:
        obs["earliest"] = list_offset(a, tp, OffsetSpec.EARLIEST)
        obs["latest"] = list_offset(a, tp, OffsetSpec.LATEST)
        obs["max_timestamp_offset"] = list_offset(a, tp, OffsetSpec.MAX_TIMESTAMP)
    finally:
        a.close()
    check(obs["earliest"] == 0 and obs["latest"] == 5, f"earliest/latest {obs['earliest']}/{obs['latest']}")
    check(obs["max_timestamp_offset"] == 2, f"max-timestamp offset {obs['max_timestamp_offset']}")


def s_unknown_topic(b, t, obs):
    a = admin()
    try:
        obs["describe_error"] = topic_error(a, t)
    except KafkaError as e:
        obs["describe_error"] = kname(e)
    finally:
        a.close()
    check(obs["describe_error"] == "UNKNOWN_TOPIC_OR_PARTITION", f"describe error {obs['describe_error']}")


def s_too_large(b, t, obs):
    create(t, 1, {"max.message.bytes": "2048"})
    p = producer(retries=0, linger_ms=0)
    try:
        try:
            p.send(t, key=b"big", value=b"x" * 10000, partition=0).get(timeout=20)
            raise Fail("10 kB record accepted by a topic with max.message.bytes=2048")
        except KafkaError as e:
            obs["error"] = kname(e)
        obs["next_offset"] = p.send(t, key=b"small", value=b"ok", partition=0).get(timeout=20).offset
    finally:
        p.close(5)
    check(obs["error"] == "MESSAGE_TOO_LARGE", f"error {obs['error']}")
    check(obs["next_offset"] == 0, f"small record after the rejected one at {obs['next_offset']}")


def s_keyless_compacted(b, t, obs):
    create(t, 1, {"cleanup.policy": "compact"})
    p = producer(retries=0, linger_ms=0)
    try:
        try:
            p.send(t, value=b"no-key", partition=0).get(timeout=20)
            raise Fail("a record without a key was accepted by a cleanup.policy=compact topic")
        except KafkaError as e:
            obs["error"] = kname(e)
        obs["next_offset"] = p.send(t, key=b"k", value=b"keyed", partition=0).get(timeout=20).offset
    finally:
        p.close(5)
    check(obs["error"] == "INVALID_RECORD", f"error {obs['error']}, expected INVALID_RECORD")
    check(obs["next_offset"] == 0, f"keyed record after the refused one at {obs['next_offset']}")


def s_invalid_config(b, t, obs):
    a = admin()
    try:
        try:
            a.create_topics({t: {"num_partitions": 1, "replication_factor": 1, "configs": {"cleanup.policy": "bogus"}}},
                            timeout_ms=15000)
            raise Fail("CreateTopics with cleanup.policy=bogus succeeded")
        except KafkaError as e:
            obs["error"] = kname(e)
        obs["created"] = t in a.list_topics()
    finally:
        a.close()
    check(obs["error"] == "INVALID_CONFIG", f"error {obs['error']}")
    check(not obs["created"], "topic exists after a rejected create")


# ---------------------------------------------------------------- security (sec-*)
#
# kafka-python 3.0.12 does not hand a connection's failure to the caller: a client that cannot
# authenticate logs "Connection lost: <error>" per attempt and its call ends with
# KafkaTimeoutError("Unable to bootstrap ..."). The probes bound that to 3 s and read the errors
# from the client's own log records.

class _ConnErrors(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.msgs = []

    def emit(self, record):
        m = record.getMessage()
        if "Connection lost: " in m:
            self.msgs.append(m.split("Connection lost: ", 1)[1])
            print(f"[sec] {record.name}: {m[:300]}", file=sys.stderr, flush=True)  # into the cell's log


CONN_ERRORS = _ConnErrors()
logging.getLogger("kafka").addHandler(CONN_ERRORS)


def _reasons(msgs):
    """Distinct error class names of the lost connections, with OpenSSL's reason where there is one."""
    out = []
    for r in msgs:
        n = re.search(r"\b([A-Z]\w*(?:Error|Exception))\b", r)
        ssl = re.search(r"\[SSL: (\w+)\]", r)
        name = (n.group(1) if n else r[:60]) + (f" [SSL: {ssl.group(1)}]" if ssl else "")
        if name not in out:
            out.append(name)
    return out


def main_reason(why):
    """The telling one of the connection errors (the SASL or TLS failure, not the disconnects around it)."""
    for w in why:
        if "Sasl" in w or "[SSL:" in w:
            return w
    return sorted(why)[0] if why else None


def tls_kw(S, listener):
    return dict(bootstrap_servers=S[listener], security_protocol="SSL", ssl_cafile=S["ca"], ssl_check_hostname=True)


def cert_kw(S):
    return dict(ssl_certfile=S["client_cert"], ssl_keyfile=S["client_key"])


def sasl_kw(S, listener, mechanism, user, password):
    kw = dict(bootstrap_servers=S[listener], security_protocol=listener.upper(), sasl_mechanism=mechanism,
              sasl_plain_username=user, sasl_plain_password=password)
    if listener == "sasl_ssl":
        kw.update(ssl_cafile=S["ca"], ssl_check_hostname=True)
    return kw


def sec_round_trip(t, obs, **kw):
    """5 records produced and read back from offset 0 over the given connection settings."""
    values = vals(5, "sec-")
    p = KafkaProducer(**{**COMMON, "linger_ms": 5, "max_block_ms": 15000, **kw})
    try:
        fs = [p.send(t, value=v.encode(), key=f"k-{i}".encode(), partition=0) for i, v in enumerate(values)]
        p.flush(20)
        offs = [f.get(timeout=20).offset for f in fs]
    finally:
        p.close(5)
    obs["produced_offsets"] = f"{offs[0]}..{offs[-1]}"
    c = KafkaConsumer(**{**COMMON, "enable_auto_commit": False, "auto_offset_reset": "earliest",
                         "consumer_timeout_ms": 1000, **kw})
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        recs = read_polls(c, 5)
    finally:
        c.close()
    obs["count"] = len(recs)
    check_exact(recs, values, 0)


def probe(seconds=3, **kw):
    """One DescribeCluster over fresh connections, bounded: (None, []) when answered, else the
    error the call ended with and the connection errors logged meanwhile."""
    CONN_ERRORS.msgs = []
    try:
        a = KafkaAdminClient(**{**COMMON, "request_timeout_ms": seconds * 1000, "bootstrap_timeout_ms": seconds * 1000,
                                "reconnect_backoff_max_ms": 100, **kw})
        try:
            a.describe_cluster()
        finally:
            a.close()
        return None, []
    except Exception as e:  # noqa: BLE001 - what the client reports is the observation
        return type(e).__name__, _reasons(CONN_ERRORS.msgs)


def sasl_refused(err, why):
    """Whether a probe was refused the way a failed SASL authentication is. kafka-python 3.0.12
    drops the bytes of a read that also reaches the end of the stream, and a broker answers a
    failed SaslAuthenticate and closes the connection together (Kafka after its 100 ms
    connection.failed.authentication.delay.ms), so an attempt logs SaslAuthenticationFailedError
    or only "socket disconnected" depending on timing (against Kafka about a third of the
    attempts see the error). What the call reports, KafkaTimeoutError, is the observable; the
    check is that the bootstrap failed without any TLS or other error."""
    return err is not None and bool(why) and all(w in ("SaslAuthenticationFailedError", "KafkaConnectionError",
                                                       "RequestTimedOutError") for w in why)


def probe_until(ok, seconds, **kw):
    more = deadline(seconds)
    while True:
        err, why = probe(**kw)
        if (err is None) == ok or not more():
            return err, why
        time.sleep(0.25)


def upsert_scram(a, user, mechanism, password):
    """Upserts user's credential (8192 iterations); returns what DescribeUserScramCredentials shows."""
    r = a.alter_user_scram_credentials([UserScramCredentialUpsertion(user, mechanism, password, iterations=8192)])
    check(r.get(user) is None, f"AlterUserScramCredentials upsert: {r}")
    want, shown, more = f"{mechanism.replace('-', '_')}:8192", "", deadline(10)
    while more():
        d = a.describe_user_scram_credentials([user]).get(user) or {}
        shown = d.get("error") or ",".join(f"{ci['mechanism'].name}:{ci['iterations']}" for ci in d.get("credential_infos", []))
        if shown == want:
            break
        time.sleep(0.2)
    return shown


def s_sec_tls(b, t, obs):
    S = security()
    create(t)
    sec_round_trip(t, obs, **tls_kw(S, "ssl"))


def s_sec_mtls(b, t, obs):
    S = security()
    create(t)
    sec_round_trip(t, obs, **tls_kw(S, "mtls"), **cert_kw(S))
    obs["ok"] = True
    err, why = probe(**tls_kw(S, "mtls"))
    obs["no_cert_error"] = main_reason(why) or err
    check(err is not None, "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)")
    check(any("[SSL:" in w for w in why), f"without a client certificate: {err} {why}, expected a TLS alert")


def s_sec_plain(b, t, obs):
    S = security()
    create(t)
    pw = S["plain_users"]["alice"]
    sec_round_trip(t, obs, **sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", pw))
    err, why = probe(**sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", "wrong-" + pw))
    obs["bad_password_error"] = err
    check(sasl_refused(err, why), f"alice with a wrong password: {err} {why}, expected a refused SASL authentication")


def sec_scram(mechanism):
    def f(b, t, obs):
        S = security()
        create(t)
        user, pw = f"u-{t}", f"pw-{t}"
        a = admin()
        try:
            obs["described"] = upsert_scram(a, user, mechanism, pw)
            check(obs["described"] == f"{mechanism.replace('-', '_')}:8192", f"DescribeUserScramCredentials after the upsert: {obs['described']}")
            err, why = probe_until(True, 10, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
            check(err is None, f"the new {mechanism} credential was not accepted within 10 s: {err} {why}")
            sec_round_trip(t, obs, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
            err, why = probe(**sasl_kw(S, "sasl_plaintext", mechanism, user, "wrong-" + pw))
            obs["bad_password_error"] = err
            check(sasl_refused(err, why), f"a wrong password: {err} {why}, expected a refused SASL authentication")
            r = a.alter_user_scram_credentials([UserScramCredentialDeletion(user, mechanism)])
            check(r.get(user) is None, f"AlterUserScramCredentials delete: {r}")
            more, gone = deadline(10), None
            while more():
                d = a.describe_user_scram_credentials([user]).get(user) or {}
                gone = d.get("error") or ",".join(f"{ci['mechanism'].name}:{ci['iterations']}" for ci in d.get("credential_infos", []))
                if d.get("error"):
                    break
                time.sleep(0.2)
            obs["described_after_delete"] = (gone or "").replace(user, "<user>")
            check(gone and "does not exist" in gone, f"DescribeUserScramCredentials after the delete: {gone!r}, expected a user that does not exist")
        finally:
            a.close()
        err, why = probe_until(False, 10, **sasl_kw(S, "sasl_plaintext", mechanism, user, pw))
        obs["after_delete_error"] = err
        check(sasl_refused(err, why), f"the deleted credential's password: {err} {why}, expected a refused SASL authentication")
    return f


def s_sec_sasl_ssl(b, t, obs):
    S = security()
    create(t)
    user, pw = f"u-{t}", f"pw-{t}"
    a = admin()
    try:
        shown = upsert_scram(a, user, "SCRAM-SHA-512", pw)
        check(shown == "SCRAM_SHA_512:8192", f"DescribeUserScramCredentials after the upsert: {shown}")
        err, why = probe_until(True, 10, **sasl_kw(S, "sasl_ssl", "SCRAM-SHA-512", user, pw))
        check(err is None, f"SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: {err} {why}")
        sec_round_trip(t, obs, **sasl_kw(S, "sasl_ssl", "SCRAM-SHA-512", user, pw))
        a.alter_user_scram_credentials([UserScramCredentialDeletion(user, "SCRAM-SHA-512")])
    finally:
        a.close()


def s_sec_plaintext_to_tls(b, t, obs):
    S = security()
    err, why = probe(bootstrap_servers=S["ssl"])
    obs["plaintext_to_ssl"] = err
    check(err is not None, "a PLAINTEXT client was served by the SSL listener")
    err, why = probe(**sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", S["plain_users"]["alice"]) | {"bootstrap_servers": S["plaintext"]})
    obs["sasl_to_plaintext"] = main_reason(why) or err
    check(err is not None, "a SASL client was served by the PLAINTEXT listener")


# ---------------------------------------------------------------- sec-oauth

def oauth_kw(S, case):
    """SASL/OAUTHBEARER on the OAUTH listener with the pre-minted JWT of this case, as is."""
    from kafka.net.sasl.oauth import AbstractTokenProvider
    with open(S["oauth_tokens"][case]) as f:
        token = f.read().strip()

    class Static(AbstractTokenProvider):
        def token(self):
            return token
    return dict(bootstrap_servers=S["oauth"], security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=Static())


def s_sec_oauth(b, t, obs):
    S = security()
    create(t)
    a = admin()
    try:
        # ACLs on the topic for the token's principal only: the round trip also shows it is User:alice.
        r = a.create_acls([ACL(principal=S["oauth_principal"], host="*", operation=op, permission_type=ACLPermissionType.ALLOW,
                               resource_pattern=ResourcePattern(ResourceType.TOPIC, t, ACLResourcePatternType.LITERAL))
                           for op in (ACLOperation.WRITE, ACLOperation.READ)])
        check(not r["failed"] and len(r["succeeded"]) == 2, f"CreateAcls: {r}")
        obs["described"] = describe_topic_acls(a, t, 2)
    finally:
        a.close()
    err, why = probe_until(True, 10, **oauth_kw(S, "valid"))
    check(err is None, f"the valid token was not accepted: {err} {why}")
    sec_round_trip(t, obs, **oauth_kw(S, "valid"))
    bad = {}
    for case in ("expired", "wrong-audience", "bad-signature", "unsigned"):
        err, why = probe(**oauth_kw(S, case))
        obs[f"{case}_error"] = err
        if not sasl_refused(err, why):
            bad[case] = f"{err} {why}"
    check(not bad, f"tokens not refused as a failed SASL authentication: {bad}")


# ---------------------------------------------------------------- sec-acl

def acl_str(x, t):
    """"TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic as <topic>, so the targets' observables compare)."""
    r = x.resource_pattern
    name = "<topic>" if r.resource_name == t else r.resource_name
    return (f"{r.resource_type.name}:{r.pattern_type.name}:{name} {x.principal}@{x.host} "
            f"{x.operation.name} {x.permission_type.name}")


def describe_topic_acls(a, t, want):
    """DescribeAcls of the topic's LITERAL pattern, sorted; retried (bounded) until it has `want` bindings."""
    f = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                  resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, t, ACLResourcePatternType.LITERAL))
    more = deadline(10)
    while True:
        acls, err = a.describe_acls(f)
        got = sorted(acl_str(x, t) for x in acls)
        if len(got) == want or not more():
            return got
        time.sleep(0.2)


def produce_as(kw, t, value):
    """One record with these settings and small timeouts: None when acknowledged, else Kafka's error name."""
    try:
        p = KafkaProducer(**{**COMMON, "linger_ms": 0, "max_block_ms": 5000, "request_timeout_ms": 5000,
                             "retries": 0, "client_id": "compat-kafka-python-acl", **kw})
        try:
            p.send(t, value=value, key=b"k", partition=0).get(timeout=8)
            return None
        finally:
            p.close(2)
    except Exception as e:  # noqa: BLE001 - what the client reports is the observation
        print(f"[sec-acl] produce as {kw.get('sasl_plain_username')}: {e!r}", file=sys.stderr, flush=True)
        return kname(e)


# What kafka-python's consumer of a user with no ACL reports against Kafka 4.4: poll() raises the
# group's FindCoordinator refusal (GroupAuthorizationFailedError) first.
ADMIN_CONSUME_ERROR = "GROUP_AUTHORIZATION_FAILED"


def s_sec_acl(b, t, obs):
    S = security()
    create(t)
    g = t + "-g"
    a = admin()
    try:
        def allow(rt, name, op):
            return ACL(principal="User:alice", host="*", operation=op, permission_type=ACLPermissionType.ALLOW,
                       resource_pattern=ResourcePattern(rt, name, ACLResourcePatternType.LITERAL))
        write = allow(ResourceType.TOPIC, t, ACLOperation.WRITE)
        r = a.create_acls([write, allow(ResourceType.TOPIC, t, ACLOperation.READ), allow(ResourceType.GROUP, g, ACLOperation.READ)])
        check(not r["failed"] and len(r["succeeded"]) == 3, f"CreateAcls: {r}")
        want = ["TOPIC:LITERAL:<topic> User:alice@* READ ALLOW", "TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW"]
        obs["described"] = describe_topic_acls(a, t, 2)
        check(obs["described"] == want, f"DescribeAcls of the topic: {obs['described']}, expected {want}")

        alice = sasl_kw(S, "sasl_plaintext", "PLAIN", "alice", S["plain_users"]["alice"])
        admin_user = sasl_kw(S, "sasl_plaintext", "PLAIN", "admin", S["plain_users"]["admin"])
        p = KafkaProducer(**{**COMMON, "linger_ms": 5, "max_block_ms": 15000, **alice})
        try:
            fs = [p.send(t, value=v.encode(), key=f"k-{i}".encode(), partition=0) for i, v in enumerate(vals(5, "acl-"))]
            p.flush(20)
            offs = [f.get(timeout=20).offset for f in fs]
        finally:
            p.close(5)
        obs["alice_produced_offsets"] = f"{offs[0]}..{offs[-1]}"
        c = KafkaConsumer(**{**COMMON, "enable_auto_commit": False, "auto_offset_reset": "earliest", "group_id": g, **alice})
        try:
            c.subscribe([t])
            recs = read_polls(c, 5, 15)
            if recs:
                c.commit()
        finally:
            c.close()
        obs["alice_consumed"] = [f"{r.offset}:{r.value.decode()}" for r in recs]
        check(obs["alice_consumed"] == [f"{i}:acl-{i}" for i in range(5)], f"alice consumed {obs['alice_consumed']}")

        obs["admin_produce_error"] = produce_as(admin_user, t, b"refused")
        check(obs["admin_produce_error"] == "TOPIC_AUTHORIZATION_FAILED",
              f"admin's produce: {obs['admin_produce_error']}, expected TOPIC_AUTHORIZATION_FAILED")
        err, n = None, 0
        c = KafkaConsumer(**{**COMMON, "enable_auto_commit": False, "auto_offset_reset": "earliest", "group_id": g,
                             "client_id": "compat-kafka-python-acl", "request_timeout_ms": 5000, **admin_user})
        try:
            c.subscribe([t])
            more = deadline(10)
            while err is None and more():
                try:
                    n += sum(len(v) for v in c.poll(timeout_ms=200).values())
                except Exception as e:  # noqa: BLE001 - the refusal is the observation
                    print(f"[sec-acl] consume as admin: {e!r}", file=sys.stderr, flush=True)
                    err = kname(e)
        finally:
            c.close()
        obs["admin_consumed"] = n
        obs["admin_consume_error"] = err
        check(err == ADMIN_CONSUME_ERROR, f"admin's group consume: {err}, expected {ADMIN_CONSUME_ERROR}")

        wf = ACLFilter(principal="User:alice", host="*", operation=ACLOperation.WRITE, permission_type=ACLPermissionType.ALLOW,
                       resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, t, ACLResourcePatternType.LITERAL))
        (_, deleted, derr), = a.delete_acls([wf])
        obs["deleted"] = [acl_str(x, t) for x in deleted]
        check(obs["deleted"] == [want[1]], f"DeleteAcls of alice's WRITE removed {obs['deleted']} ({derr})")
        obs["described_after_delete"] = describe_topic_acls(a, t, 1)
        check(obs["described_after_delete"] == [want[0]], f"DescribeAcls after the delete: {obs['described_after_delete']}")
    finally:
        a.close()
    obs["alice_produce_after_delete"] = produce_as(alice, t, b"after-delete")
    check(obs["alice_produce_after_delete"] == "TOPIC_AUTHORIZATION_FAILED",
          f"alice's produce without WRITE: {obs['alice_produce_after_delete']}, expected TOPIC_AUTHORIZATION_FAILED")


SCENARIOS = {
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
    "sec-sasl-ssl": s_sec_sasl_ssl, "sec-plaintext-to-tls": s_sec_plaintext_to_tls, "sec-acl": s_sec_acl,
    "sec-quota": na("kafka-python 3.0.12's KafkaAdminClient has no client quota calls (only the AlterClientQuotas/DescribeClientQuotas protocol classes)"),
    "sec-oauth": s_sec_oauth,
}

if __name__ == "__main__":
    B["b"] = sys.argv[2]
    main(SCENARIOS)
