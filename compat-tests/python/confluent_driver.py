"""confluent-kafka (librdkafka) column of Strom's compat-tests. Usage: <scenario> <bootstrap> <topic>."""

import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, ConsumerGroupType, KafkaError, KafkaException, Producer,
                             TopicCollection, TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, OffsetSpec,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from common import (BASE_TS, Fail, NotApplicable, advertised_is_bootstrap, check, deadline, err_name, expected_brokers,
                    main, na, security, vals)

BOOT = {}


def conf(**kv):
    c = {"bootstrap.servers": BOOT["b"], "client.id": "compat-confluent", "socket.timeout.ms": 10000}
    c.update({k if k.endswith("_cb") else k.replace("_", "."): v for k, v in kv.items()})  # oauth_cb etc. as is
    return c


def admin():
    return AdminClient(conf())


def kerr(e):
    """Kafka error name from a KafkaException / KafkaError."""
    if isinstance(e, KafkaException):
        e = e.args[0]
    if isinstance(e, KafkaError):
        return err_name(e.code()) if e.code() >= -1 else f"local {e.name()}"
    return f"{type(e).__name__}: {e}"


def create(t, partitions=1, config=None):
    a = admin()  # keep the handle alive until the future resolves
    fs = a.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {})],
                               operation_timeout=15, request_timeout=15)
    fs[t].result(timeout=20)


def produce(t, values, keys=True, **pconf):
    p = Producer(conf(**{"linger.ms": 5, "message.timeout.ms": 20000, **pconf}))
    results = []

    def cb(err, msg):
        results.append((err, msg.offset() if msg else None))
    for i, v in enumerate(values):
        p.produce(t, value=v, key=f"k-{i}" if keys else None, partition=0, on_delivery=cb)
    left = p.flush(20)
    check(left == 0, f"{left} messages not delivered within 20s")
    errs = [e for e, _ in results if e is not None]
    check(not errs, f"delivery errors: {[kerr(e) for e in errs][:3]}")
    return [o for _, o in results]


def read_assigned(c, n, seconds=10):
    out = []
    more = deadline(seconds)
    while len(out) < n and more():
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise Fail(f"consume error: {kerr(m.error())}")
        out.append(m)
    return out


def read_from_start(t, n, **cconf):
    c = Consumer(conf(**{"group.id": t + "-reader", "enable.auto.commit": False, **cconf}))
    try:
        c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
        return read_assigned(c, n)
    finally:
        c.close()


def check_exact(msgs, values, first):
    got = [m.value().decode() if m.value() is not None else None for m in msgs]
    check(got == values, f"read {len(got)} of {len(values)} records, values differ: got {got} expected {values}")
    offs = [m.offset() for m in msgs]
    check(offs == list(range(first, first + len(values))), f"offsets {offs}")


def s_metadata(b, t, obs):
    a = admin()
    md = a.list_topics(timeout=15)
    obs["brokers"] = len(md.brokers)
    addrs = [f"{br.host}:{br.port}" for br in md.brokers.values()]
    obs["broker_is_bootstrap"] = advertised_is_bootstrap(addrs, b)
    obs["has_cluster_id"] = bool(md.cluster_id)
    obs["has_controller"] = md.controller_id is not None and md.controller_id >= 0
    check(len(md.brokers) == expected_brokers(), f"expected {expected_brokers()} broker(s), got {md.brokers}")
    check(obs["broker_is_bootstrap"], f"brokers advertised as {addrs}, bootstrap {b}")
    check(obs["has_cluster_id"], "no cluster id")


def s_topic_admin(b, t, obs):
    a = admin()
    create(t, 3, {"retention.ms": "3600000"})
    d = a.describe_topics(TopicCollection([t]))[t].result(timeout=15)
    obs["partitions"] = len(d.partitions)
    check(len(d.partitions) == 3, f"describe: {len(d.partitions)} partitions")
    res = ConfigResource(ResourceType.TOPIC, t)
    v = a.describe_configs([res])[res].result(timeout=15)["retention.ms"].value
    obs["retention_at_create"] = v
    check(v == "3600000", f"retention.ms after create {v}")
    inc = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    list(a.incremental_alter_configs([inc]).values())[0].result(timeout=15)
    more = deadline(5)  # KRaft applies the change through the metadata log: read until it shows
    while True:
        v = a.describe_configs([res])[res].result(timeout=15)["retention.ms"].value
        if v == "7200000" or not more():
            break
        time.sleep(0.1)
    obs["retention_after_alter"] = v
    check(v == "7200000", f"retention.ms after alter {v}")
    a.delete_topics([t], operation_timeout=15)[t].result(timeout=20)
    more, last = deadline(15), "still present"
    while more():
        try:
            a.describe_topics(TopicCollection([t]))[t].result(timeout=10)
        except KafkaException as e:
            last = kerr(e)
            if last == "UNKNOWN_TOPIC_OR_PARTITION":
                break
        time.sleep(0.2)
    obs["after_delete"] = last
    check(last == "UNKNOWN_TOPIC_OR_PARTITION", f"after delete: {last}")


def codec(name):
    def f(b, t, obs):
        create(t)
        values = vals(20, f"v-{name}-")
        offs = produce(t, values, **{"compression.type": name, "linger.ms": 50})
        obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
        msgs = read_from_start(t, 20)
        check_exact(msgs, values, 0)
        obs["consumed"] = len(msgs)
    return f


def s_record_fields(b, t, obs):
    create(t)
    p = Producer(conf(**{"linger.ms": 5}))
    p.produce(t, key="k0", value="v0", partition=0, timestamp=BASE_TS + 1000, headers=[("h1", b"a"), ("h1", b"b"), ("h2", b"c")])
    p.produce(t, key=None, value="v1", partition=0, timestamp=BASE_TS + 2000)
    p.produce(t, key="k2", value=None, partition=0, timestamp=BASE_TS + 3000, headers=[("h3", b"")])
    check(p.flush(20) == 0, "not delivered")
    msgs = read_from_start(t, 3)
    desc = []
    for m in msgs:
        hs = "".join(f"{k}={v.decode() if v is not None else '<null>'};" for k, v in (m.headers() or []))
        tt, ts = m.timestamp()
        key = m.key().decode() if m.key() is not None else None
        val = m.value().decode() if m.value() is not None else None
        desc.append(f"key={key} value={val} ts=+{ts - BASE_TS} {'CreateTime' if tt == 1 else tt} headers={hs}")
    obs["records"] = desc
    want = ["key=k0 value=v0 ts=+1000 CreateTime headers=h1=a;h1=b;h2=c;",
            "key=None value=v1 ts=+2000 CreateTime headers=",
            "key=k2 value=None ts=+3000 CreateTime headers=h3=;"]
    check(desc == want, f"round-trip differs: got {desc} expected {want}")


def s_offset_earliest(b, t, obs):
    create(t)
    produce(t, vals(5, "e-"))
    c = Consumer(conf(**{"group.id": t + "-g", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    try:
        c.subscribe([t])
        msgs = read_assigned(c, 5, 15)
        check_exact(msgs, vals(5, "e-"), 0)
        obs["first_offset"], obs["count"] = msgs[0].offset(), len(msgs)
    finally:
        c.close()


def s_offset_latest(b, t, obs):
    create(t)
    produce(t, vals(5, "old-"))
    c = Consumer(conf(**{"group.id": t + "-g", "auto.offset.reset": "latest", "enable.auto.commit": False}))
    p = Producer(conf(**{"linger.ms": 0}))
    try:
        c.subscribe([t])
        more = deadline(15)
        while not c.assignment() and more():
            c.poll(0.2)
        check(c.assignment(), "no assignment within 15s")
        # the reset to latest happens asynchronously: keep producing until something arrives
        got, i = [], 0
        while not got and more():
            p.produce(t, value=f"new-{i}", partition=0)
            p.flush(5)
            i += 1
            got = read_assigned(c, 1, 1)
        got += read_assigned(c, 100, 1)
        check(got, "nothing consumed")
        values = [m.value().decode() for m in got]
        obs["saw_old"] = any(v.startswith("old-") for v in values)
        obs["got_new"] = True
        check(not obs["saw_old"], f"latest consumer saw old records: {values}")
        check(all(m.offset() >= 5 for m in got), f"offsets {[m.offset() for m in got]}")
    finally:
        c.close()


def produce_ts(t, deltas):
    p = Producer(conf(**{"linger.ms": 5}))
    for i, d in enumerate(deltas):
        p.produce(t, key=f"k{i}", value=f"t-{i}", partition=0, timestamp=BASE_TS + d)
    check(p.flush(20) == 0, "not delivered")


def s_offsets_for_times(b, t, obs):
    create(t)
    produce_ts(t, [0, 1000, 2000, 3000, 4000])
    c = Consumer(conf(**{"group.id": t + "-g"}))
    try:
        for d in (2500, 0, 10000):
            r = c.offsets_for_times([TopicPartition(t, 0, BASE_TS + d)], timeout=15)[0]
            check(r.error is None, f"offsets_for_times error {r.error}")
            obs[f"ts+{d}"] = r.offset if r.offset >= 0 else -1
    finally:
        c.close()
    check(obs["ts+2500"] == 3, f"offsets_for_times(+2500) = {obs['ts+2500']}")
    check(obs["ts+0"] == 0, f"offsets_for_times(+0) = {obs['ts+0']}")
    check(obs["ts+10000"] == -1, f"offsets_for_times(future) = {obs['ts+10000']}")


def poll_until_covered(cs, parts, seconds, want):
    """Poll until the members hold `want` partitions each (sorted sizes such as "2,2,2"), disjoint
    and covering all `parts`. A KIP-848 group passes through uneven states while partitions move
    one by one (e.g. 1,2,3 with a revocation pending), so a covered-but-uneven moment is not the
    answer; on timeout the last sizes are returned."""
    more, sizes = deadline(seconds), ""
    while more():
        for c in cs:
            m = c.poll(0.1)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                raise Fail(f"consumer error: {kerr(m.error())}")
        assigned = [{(tp.topic, tp.partition) for tp in c.assignment()} for c in cs]
        sz = sorted(len(a) for a in assigned)
        sizes = ",".join(map(str, sz))
        union = set().union(*assigned)
        if len(union) == parts and sum(sz) == parts and sizes == want:
            return sizes
    return sizes + " (timed out)"


def s_group_rebalance(b, t, obs):
    create(t, 3)
    cs = [Consumer(conf(**{"group.id": t + "-g", "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                           "client.id": f"compat-confluent-{i}"})) for i in range(3)]
    try:
        for c in cs:
            c.subscribe([t])
        obs["phase1"] = poll_until_covered(cs, 3, 25, "1,1,1")
        check(obs["phase1"] == "1,1,1", f"three members: {obs['phase1']}")
        cs.pop().close()
        obs["phase2"] = poll_until_covered(cs, 3, 20, "1,2")
        check(obs["phase2"] == "1,2", f"after one left: {obs['phase2']}")
    finally:
        for c in cs:
            c.close()


# KIP-848 consumer protocol (ConsumerGroupHeartbeat, the broker assigns): librdkafka 2.12+ has it GA.
# session.timeout.ms / heartbeat.interval.ms / partition.assignment.strategy are the broker's then.
P848 = {"group.protocol": "consumer"}


def s_group_rebalance_848(b, t, obs):
    create(t, 6)
    cs = [Consumer(conf(**{"group.id": t + "-g", "client.id": f"compat-confluent-{i}", **P848})) for i in range(3)]
    try:
        for c in cs:
            c.subscribe([t])
        obs["phase1"] = poll_until_covered(cs, 6, 25, "2,2,2")
        check(obs["phase1"] == "2,2,2", f"three members: {obs['phase1']}, expected 2,2,2")
        check_consumer_type(t + "-g", obs)
        cs.pop().close()
        obs["phase2"] = poll_until_covered(cs, 6, 20, "3,3")
        check(obs["phase2"] == "3,3", f"after one left: {obs['phase2']}, expected 3,3")
    finally:
        for c in cs:
            c.close()


def check_consumer_type(g, obs):
    """The broker must hold g as a consumer-protocol group (ConsumerGroupDescribe)."""
    a = admin()  # keep the handle alive until the future resolves
    d = a.describe_consumer_groups([g], request_timeout=15)[g].result(timeout=20)
    obs["group_type"] = str(d.type)
    check(d.type == ConsumerGroupType.CONSUMER, f"describe_consumer_groups type {d.type}, expected CONSUMER")


def s_commit_resume_848(b, t, obs):
    s_commit_resume(b, t, obs, P848)
    check_consumer_type(t + "-g", obs)


def s_commit_resume(b, t, obs, extra=None):
    extra = extra or {}
    create(t)
    produce(t, vals(10, "c-"))
    g = t + "-g"
    c = Consumer(conf(**{"group.id": g, "auto.offset.reset": "earliest", "enable.auto.commit": False, **extra}))
    try:
        c.subscribe([t])
        got = read_assigned(c, 4, 15)
        check(len(got) >= 4, f"first member read {len(got)}")
        c.commit(offsets=[TopicPartition(t, 0, 4)], asynchronous=False)
        cm = c.committed([TopicPartition(t, 0)], timeout=15)[0]
        obs["committed"] = cm.offset
        check(cm.offset == 4, f"committed() = {cm.offset}")
    finally:
        c.close()
    c = Consumer(conf(**{"group.id": g, "auto.offset.reset": "error", "enable.auto.commit": False, **extra}))
    try:
        c.subscribe([t])
        got = read_assigned(c, 6, 15)
        obs["resumed_first"] = got[0].offset() if got else -1
        obs["resumed_count"] = len(got)
        check_exact(got, vals(10, "c-")[4:], 4)
    finally:
        c.close()


def s_idempotent(b, t, obs):
    create(t)
    offs = produce(t, vals(10, "i-"), **{"enable.idempotence": True, "acks": "all"})
    obs["produced_offsets"] = f"{min(offs)}..{max(offs)}"
    check_exact(read_from_start(t, 10), vals(10, "i-"), 0)


def s_transactions(b, t, obs):
    create(t)
    p = Producer(conf(**{"transactional.id": t + "-tx", "linger.ms": 5}))
    p.init_transactions(20)
    p.begin_transaction()
    for v in ("a0", "a1", "a2"):
        p.produce(t, value=v, partition=0)
    p.commit_transaction(20)
    p.begin_transaction()
    for v in ("b0", "b1"):
        p.produce(t, value=v, partition=0)
    p.flush(10)
    p.abort_transaction(20)
    p.begin_transaction()
    p.produce(t, value="c0", partition=0)
    p.commit_transaction(20)
    rc = [m.value().decode() for m in read_from_start(t, 4, **{"isolation.level": "read_committed"})]
    ru = [m.value().decode() for m in read_from_start(t, 6, **{"isolation.level": "read_uncommitted"})]
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    check(rc == ["a0", "a1", "a2", "c0"], f"read_committed saw {rc}")
    check(ru == ["a0", "a1", "a2", "b0", "b1", "c0"], f"read_uncommitted saw {ru}")
    c = Consumer(conf(**{"group.id": t + "-g", "isolation.level": "read_committed"}))
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=15)
    finally:
        c.close()
    obs["end_offset"] = hi
    check(hi == 9, f"end offset {hi}, expected 9")


def drain_values(t, n, isolation):
    """Read partition 0 from the start until n records arrived, then 1.5 s more to catch extras."""
    c = Consumer(conf(**{"group.id": t + "-reader", "enable.auto.commit": False, "isolation.level": isolation}))
    out = []
    try:
        c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
        more, quiet = deadline(15), None
        while more() and (quiet is None or time.monotonic() < quiet):
            m = c.poll(0.2)
            if m is not None:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise Fail(f"consume error: {kerr(m.error())}")
                else:
                    out.append(m.value().decode())
            if len(out) >= n and quiet is None:
                quiet = time.monotonic() + 1.5
    finally:
        c.close()
    return out


def s_eos_pipeline(b, t, obs):
    """Consume-transform-produce in a group: each consume() batch (<= 10) is one transaction that
    produces the uppercased values to <t>-out and commits consumer.position() through
    send_offsets_to_transaction(..., consumer_group_metadata()); after the first commit one extra
    transaction writes ABORTED-0..4 and offsets +5, then aborts."""
    out_t, g = t + "-out", t + "-g"
    create(t)
    create(out_t)
    produce(t, vals(20, "v"))
    p = Producer(conf(**{"transactional.id": t + "-eos", "linger.ms": 5}))
    c = Consumer(conf(**{"group.id": g, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"}))
    txns, done, aborted = [], 0, False
    try:
        p.init_transactions(20)
        c.subscribe([t])
        more = deadline(30)
        while done < 20 and more():
            msgs = [m for m in c.consume(num_messages=10, timeout=0.5) if not m.error()]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce(out_t, key=m.key(), value=m.value().decode().upper(), partition=0)
            pos = c.position(c.assignment())
            p.send_offsets_to_transaction(pos, c.consumer_group_metadata(), 20)
            p.commit_transaction(20)
            done += len(msgs)
            txns.append(len(msgs))
            if not aborted:
                aborted = True
                nxt = msgs[-1].offset() + 1
                p.begin_transaction()
                for i in range(5):
                    p.produce(out_t, value=f"ABORTED-{i}", partition=0)
                p.send_offsets_to_transaction([TopicPartition(t, 0, nxt + 5)], c.consumer_group_metadata(), 20)
                p.flush(10)
                p.abort_transaction(20)
                cm = c.committed([TopicPartition(t, 0)], timeout=15)[0].offset
                obs["committed_after_abort"] = cm
                check(cm == nxt, f"committed offset after the aborted transaction: {cm}, expected {nxt}")
    finally:
        c.close()
    obs["transactions"] = txns
    check(len(txns) >= 2, f"committed transactions (records each): {txns}")
    want = [v.upper() for v in vals(20, "v")]
    rc = drain_values(out_t, 20, "read_committed")
    ru = drain_values(out_t, 25, "read_uncommitted")
    obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
    c = Consumer(conf(**{"group.id": g, "enable.auto.commit": False, "isolation.level": "read_committed"}))
    try:
        obs["committed"] = c.committed([TopicPartition(t, 0)], timeout=15)[0].offset
    finally:
        c.close()
    check(rc == want, f"read_committed output {rc}, expected V0..V19 once each")
    check(len(ru) == 25, f"read_uncommitted saw {len(ru)} records, expected 25 (20 + 5 aborted)")
    check(obs["committed"] == 20, f"group's committed input offset {obs['committed']}, expected 20")


def s_delete_records(b, t, obs):
    create(t)
    produce(t, vals(10, "d-"))
    a = admin()
    tp = TopicPartition(t, 0, 4)
    dr = a.delete_records([tp], operation_timeout=15, request_timeout=15)
    r = list(dr.values())[0].result(timeout=20)
    obs["low_watermark"] = r.low_watermark
    check(r.low_watermark == 4, f"low watermark {r.low_watermark}")
    e = list(a.list_offsets({TopicPartition(t, 0): OffsetSpec.earliest()}).values())[0].result(timeout=15)
    obs["earliest"] = e.offset
    check(e.offset == 4, f"earliest after delete {e.offset}")
    got = read_from_start(t, 6)
    obs["first_consumed"] = got[0].offset() if got else -1
    check_exact(got, vals(10, "d-")[4:], 4)


def s_list_offsets(b, t, obs):
    create(t)
    produce_ts(t, [1000, 2000, 9000, 3000, 4000])
    a = admin()
    tp = TopicPartition(t, 0)
    r = {}
    for name, spec in (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest()),
                       ("max_timestamp_offset", OffsetSpec.max_timestamp())):
        r[name] = list(a.list_offsets({tp: spec}).values())[0].result(timeout=15)
        obs[name] = r[name].offset
    check(obs["earliest"] == 0 and obs["latest"] == 5, f"earliest/latest {obs['earliest']}/{obs['latest']}")
    check(obs["max_timestamp_offset"] == 2, f"max-timestamp offset {obs['max_timestamp_offset']}")


def s_unknown_topic(b, t, obs):
    # librdkafka lets a producer-type handle (the admin client is one) auto-create topics on
    # Metadata; with that on, the answer depends on whether the broker finished creating the
    # topic between two pipelined requests (Kafka and Strom both create it). Off, the lookup
    # is deterministic and nothing may be created.
    a = AdminClient(conf(**{"allow.auto.create.topics": False}))
    try:
        a.describe_topics(TopicCollection([t]))[t].result(timeout=15)
        raise Fail("describe of a missing topic succeeded")
    except KafkaException as e:
        obs["describe_error"] = kerr(e)
    md = a.list_topics(topic=t, timeout=15)
    te = md.topics.get(t)
    obs["metadata_error"] = kerr(te.error) if te is not None and te.error is not None else None
    check(obs["describe_error"] == "UNKNOWN_TOPIC_OR_PARTITION", f"describe error {obs['describe_error']}")
    check(obs["metadata_error"] == "UNKNOWN_TOPIC_OR_PARTITION", f"metadata error {obs['metadata_error']}")
    obs["created"] = t in a.list_topics(timeout=15).topics
    check(not obs["created"], "the lookup created the topic")


def s_too_large(b, t, obs):
    create(t, 1, {"max.message.bytes": "2048"})
    p = Producer(conf(**{"compression.type": "none", "message.send.max.retries": 0, "linger.ms": 0}))
    res = []
    p.produce(t, key="big", value="x" * 10000, partition=0, on_delivery=lambda e, m: res.append((e, m.offset())))
    p.flush(20)
    check(res, "no delivery report")
    obs["error"] = kerr(res[0][0]) if res[0][0] else None
    res.clear()
    p.produce(t, key="small", value="ok", partition=0, on_delivery=lambda e, m: res.append((e, m.offset())))
    p.flush(20)
    obs["next_offset"] = res[0][1] if res and not res[0][0] else None
    check(obs["error"] == "MESSAGE_TOO_LARGE", f"error {obs['error']}, expected MESSAGE_TOO_LARGE")
    check(obs["next_offset"] == 0, f"small record after the rejected one at {obs['next_offset']}")


def s_keyless_compacted(b, t, obs):
    create(t, 1, {"cleanup.policy": "compact"})
    p = Producer(conf(**{"compression.type": "none", "message.send.max.retries": 0, "linger.ms": 0}))
    res = []
    p.produce(t, value="no-key", partition=0, on_delivery=lambda e, m: res.append((e, m.offset())))
    p.flush(20)
    check(res, "no delivery report")
    obs["error"] = kerr(res[0][0]) if res[0][0] else None
    res.clear()
    p.produce(t, key="k", value="keyed", partition=0, on_delivery=lambda e, m: res.append((e, m.offset())))
    p.flush(20)
    obs["next_offset"] = res[0][1] if res and not res[0][0] else None
    check(obs["error"] == "INVALID_RECORD", f"error {obs['error']}, expected INVALID_RECORD")
    check(obs["next_offset"] == 0, f"keyed record after the refused one at {obs['next_offset']}")


def s_static_member_848(b, t, obs):
    """KIP-848 static member: a second consumer with a live member's group.instance.id is refused
    (UNRELEASED_INSTANCE_ID); after the owner closes (epoch -2) a new one takes its partitions."""
    create(t, 2)
    stat = {"group.id": t + "-g", "group.instance.id": "compat-static", **P848}
    first = Consumer(conf(**stat, **{"client.id": "compat-confluent-first"}))
    open_ = [first]
    try:
        first.subscribe([t])
        obs["first"] = poll_until_covered([first], 2, 25, "2")
        check(obs["first"] == "2", f"static member: {obs['first']}, expected 2")
        errs = []
        second = Consumer({**conf(**stat, **{"client.id": "compat-confluent-second"}), "error_cb": errs.append})
        open_.append(second)
        second.subscribe([t])
        more, saw = deadline(15), "nothing within 15 s"
        while more():
            m = second.poll(0.2)
            first.poll(0.05)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                errs.append(m.error())
            if errs:
                # librdkafka makes UNRELEASED_INSTANCE_ID fatal: the error is _FATAL carrying the
                # broker error's text ("Broker: The instance ID is still used by another member ...")
                e = errs[0]
                name = kerr(e)
                if e.code() == KafkaError._FATAL and "The instance ID is still used by another member" in e.str():
                    name = "UNRELEASED_INSTANCE_ID"
                saw = f"{name} ({e.str()})"
                break
            if second.assignment():
                saw = f"joined with {len(second.assignment())} partitions"
                break
        obs["second"] = saw
        obs["first_after_second"] = len(first.assignment())
        check(saw.startswith("UNRELEASED_INSTANCE_ID"), f"second consumer with the owner's instance id: {saw}, expected UNRELEASED_INSTANCE_ID")
        check(len(first.assignment()) == 2, f"the owner lost its partitions: {first.assignment()}")
        open_.remove(second)
        second.close()
        open_.remove(first)
        first.close()  # a static member leaves with epoch -2
        third = Consumer(conf(**stat, **{"client.id": "compat-confluent-third"}))
        open_.append(third)
        third.subscribe([t])
        obs["third"] = poll_until_covered([third], 2, 20, "2")
        check(obs["third"] == "2", f"new incarnation after the owner closed: {obs['third']}, expected 2")
    finally:
        for c in open_:
            c.close()


def s_authorized_ops(b, t, obs):
    create(t)
    g = t + "-g"
    c = Consumer(conf(**{"group.id": g, "enable.auto.commit": False}))
    try:
        more = deadline(15)
        while True:  # a coordinator still loading answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS
            try:
                c.commit(offsets=[TopicPartition(t, 0, 0)], asynchronous=False)
                break
            except KafkaException as e:
                busy = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                        KafkaError.COORDINATOR_NOT_AVAILABLE)
                if not (e.args[0].code() in busy and more()):
                    raise
                time.sleep(0.2)
    finally:
        c.close()
    a = admin()
    names = lambda ops: sorted(o.name for o in (ops or []))  # noqa: E731
    cluster = a.describe_cluster(include_authorized_operations=True).result(timeout=15)
    plain = a.describe_cluster().result(timeout=15)
    topic = a.describe_topics(TopicCollection([t]), include_authorized_operations=True)[t].result(timeout=15)
    group = a.describe_consumer_groups([g], include_authorized_operations=True)[g].result(timeout=15)
    obs["cluster"], obs["topic"], obs["group"] = (names(cluster.authorized_operations),
                                                  names(topic.authorized_operations),
                                                  names(group.authorized_operations))
    obs["cluster_not_requested"] = plain.authorized_operations
    check(not plain.authorized_operations, f"not requested, yet answered: {plain.authorized_operations}")
    for what, want in (("cluster", ["ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE",
                                    "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"]),
                       ("topic", ["ALTER", "ALTER_CONFIGS", "CREATE", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS",
                                  "READ", "WRITE"]),
                       ("group", ["DELETE", "DESCRIBE", "READ"])):
        missing = [w for w in want if w not in obs[what]]
        check(not missing, f"{what} authorized operations {obs[what]} lack {missing}")


def s_invalid_config(b, t, obs):
    a = admin()
    try:
        create(t, 1, {"cleanup.policy": "bogus"})
        raise Fail("CreateTopics with cleanup.policy=bogus succeeded")
    except KafkaException as e:
        obs["error"] = kerr(e)
    obs["created"] = t in a.list_topics(timeout=15).topics
    check(obs["error"] == "INVALID_CONFIG", f"error {obs['error']}")
    check(not obs["created"], "topic exists after a rejected create")


# ---------------------------------------------------------------- security (sec-*)
#
# librdkafka retries a connection that fails to authenticate and reports each failure to the
# error callback (served by poll), not to the call: the probes poll while a DescribeCluster runs
# (bounded to 5 s) and take the first such error (_AUTHENTICATION, _TRANSPORT ...).

def tls_conf(S, listener):
    return {"bootstrap.servers": S[listener], "security.protocol": "ssl", "ssl.ca.location": S["ca"],
            "ssl.endpoint.identification.algorithm": "https"}


def cert_conf(S):
    return {"ssl.certificate.location": S["client_cert"], "ssl.key.location": S["client_key"]}


def sasl_conf(S, listener, mechanism, user, password):
    c = {"bootstrap.servers": S[listener], "security.protocol": listener, "sasl.mechanisms": mechanism,
         "sasl.username": user, "sasl.password": password}
    if listener == "sasl_ssl":
        c.update({"ssl.ca.location": S["ca"], "ssl.endpoint.identification.algorithm": "https"})
    return c


def sec_round_trip(t, obs, c):
    values = vals(5, "sec-")
    offs = produce(t, values, **c)
    obs["produced_offsets"] = f"{offs[0]}..{offs[-1]}"
    got = read_from_start(t, 5, **c)
    obs["count"] = len(got)
    check_exact(got, values, 0)


def probe(c, seconds=5):
    """(None, None) when a DescribeCluster with these settings is answered, else the first error
    the client reported (its code name) and its text."""
    errs = []
    a = AdminClient({"client.id": "compat-confluent-probe", "socket.timeout.ms": seconds * 1000,
                     "reconnect.backoff.max.ms": 500, "error_cb": errs.append, **c})
    fut = a.describe_cluster(request_timeout=seconds)
    more = deadline(seconds + 1)
    while not fut.done() and more() and not [e for e in errs if e.code() != KafkaError._ALL_BROKERS_DOWN]:
        a.poll(0.1)
    a.poll(0.1)
    if fut.done() and fut.exception() is None:
        return None, None
    real = [e for e in errs if e.code() != KafkaError._ALL_BROKERS_DOWN] or errs
    if real:
        print(f"[sec] probe of {c['bootstrap.servers']}: {real[0].name()} {real[0].str()}", file=sys.stderr, flush=True)
        return real[0].name(), real[0].str()
    e = fut.exception() if fut.done() else None
    return (kerr(e), str(e)) if e else ("no answer", f"no answer within {seconds}s")


def probe_until(ok, seconds, c):
    more = deadline(seconds)
    while True:
        err, msg = probe(c)
        if (err is None) == ok or not more():
            return err, msg
        time.sleep(0.25)


def broker_words(msg):
    """The broker's message inside librdkafka's text ("...: SASL authentication error: <words> (after ...)")."""
    if msg and "authentication error: " in msg:
        return msg.split("authentication error: ", 1)[1].rsplit(" (after ", 1)[0]
    return msg


MECH = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}


def describe_scram(a, user):
    try:
        d = a.describe_user_scram_credentials([user])[user].result(timeout=15)
        return ",".join(f"{ci.mechanism.name}:{ci.iterations}" for ci in d.scram_credential_infos)
    except KafkaException as e:
        return kerr(e)


def upsert_scram(a, user, mechanism, password):
    a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        user, ScramCredentialInfo(MECH[mechanism], 8192), password.encode())])[user].result(timeout=15)
    want, shown, more = f"{MECH[mechanism].name}:8192", "", deadline(10)
    while more():
        shown = describe_scram(a, user)
        if shown == want:
            break
        time.sleep(0.2)
    return shown


def s_sec_tls(b, t, obs):
    S = security()
    create(t)
    sec_round_trip(t, obs, tls_conf(S, "ssl"))


def s_sec_mtls(b, t, obs):
    S = security()
    create(t)
    sec_round_trip(t, obs, {**tls_conf(S, "mtls"), **cert_conf(S)})
    obs["ok"] = True
    err, msg = probe(tls_conf(S, "mtls"))
    obs["no_cert_error"] = err
    check(err is not None, "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)")
    check("ssl" in (msg or "").lower(), f"without a client certificate: {err} {msg}, expected a TLS failure")


def s_sec_plain(b, t, obs):
    S = security()
    create(t)
    pw = S["plain_users"]["alice"]
    sec_round_trip(t, obs, sasl_conf(S, "sasl_plaintext", "PLAIN", "alice", pw))
    err, msg = probe(sasl_conf(S, "sasl_plaintext", "PLAIN", "alice", "wrong-" + pw))
    obs["bad_password_error"] = err
    obs["bad_password_message"] = broker_words(msg)
    check(err == "_AUTHENTICATION", f"alice with a wrong password: {err} {msg}, expected _AUTHENTICATION")


def sec_scram(mechanism):
    def f(b, t, obs):
        S = security()
        create(t)
        user, pw = f"u-{t}", f"pw-{t}"
        a = admin()
        obs["described"] = upsert_scram(a, user, mechanism, pw)
        check(obs["described"] == f"{MECH[mechanism].name}:8192", f"DescribeUserScramCredentials after the upsert: {obs['described']}")
        err, msg = probe_until(True, 10, sasl_conf(S, "sasl_plaintext", mechanism, user, pw))
        check(err is None, f"the new {mechanism} credential was not accepted within 10 s: {err} {msg}")
        sec_round_trip(t, obs, sasl_conf(S, "sasl_plaintext", mechanism, user, pw))
        err, msg = probe(sasl_conf(S, "sasl_plaintext", mechanism, user, "wrong-" + pw))
        obs["bad_password_error"] = err
        obs["bad_password_message"] = broker_words(msg)
        check(err == "_AUTHENTICATION", f"a wrong password: {err} {msg}, expected _AUTHENTICATION")
        a.alter_user_scram_credentials([UserScramCredentialDeletion(user, MECH[mechanism])])[user].result(timeout=15)
        more, gone = deadline(10), ""
        while more():
            gone = describe_scram(a, user)
            if gone == "RESOURCE_NOT_FOUND":
                break
            time.sleep(0.2)
        obs["described_after_delete"] = gone
        check(gone == "RESOURCE_NOT_FOUND", f"DescribeUserScramCredentials after the delete: {gone}, expected RESOURCE_NOT_FOUND")
        err, msg = probe_until(False, 10, sasl_conf(S, "sasl_plaintext", mechanism, user, pw))
        obs["after_delete_error"] = err
        check(err == "_AUTHENTICATION", f"the deleted credential's password: {err} {msg}, expected _AUTHENTICATION")
    return f


def s_sec_sasl_ssl(b, t, obs):
    S = security()
    create(t)
    user, pw = f"u-{t}", f"pw-{t}"
    a = admin()
    shown = upsert_scram(a, user, "SCRAM-SHA-512", pw)
    check(shown == "SCRAM_SHA_512:8192", f"DescribeUserScramCredentials after the upsert: {shown}")
    c = sasl_conf(S, "sasl_ssl", "SCRAM-SHA-512", user, pw)
    err, msg = probe_until(True, 10, c)
    check(err is None, f"SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: {err} {msg}")
    sec_round_trip(t, obs, c)
    a.alter_user_scram_credentials([UserScramCredentialDeletion(user, MECH["SCRAM-SHA-512"])])[user].result(timeout=15)


def s_sec_plaintext_to_tls(b, t, obs):
    S = security()
    err, msg = probe({"bootstrap.servers": S["ssl"]})
    obs["plaintext_to_ssl"] = err
    check(err is not None, "a PLAINTEXT client was served by the SSL listener")
    err, msg = probe({**sasl_conf(S, "sasl_plaintext", "PLAIN", "alice", S["plain_users"]["alice"]), "bootstrap.servers": S["plaintext"]})
    obs["sasl_to_plaintext"] = err
    check(err is not None, "a SASL client was served by the PLAINTEXT listener")


# ---------------------------------------------------------------- sec-oauth
#
# SASL/OAUTHBEARER on the OAUTH listener with pre-minted JWTs (COMPAT_SECURITY oauth_tokens,
# lib/jwt_tokens.py). librdkafka asks oauth_cb for (token, expiry in epoch seconds, principal);
# it refuses locally a token whose expiry is already past, so the callback gives the client an
# expiry an hour ahead for every case: whether the token is expired is for the broker to say.

OAUTH_REFUSED = ("expired", "wrong-audience", "bad-signature", "unsigned")


def oauth_conf(S, case):
    with open(S["oauth_tokens"][case]) as f:
        token = f.read().strip()

    def cb(_config):
        return token, time.time() + 3600, "alice"
    return {"bootstrap.servers": S["oauth"], "security.protocol": "sasl_plaintext", "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": cb}


def s_sec_oauth(b, t, obs):
    S = security()
    create(t)
    a = admin()
    # ACLs on the topic for User:alice only: the round trip also shows the broker's principal is User:alice.
    fs = a.create_acls([AclBinding(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, S["oauth_principal"], "*", op,
                                   AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)],
                       request_timeout=15)
    for f in fs.values():
        f.result(timeout=20)
    obs["described"] = describe_topic_acls(a, t, 2)
    check(len(obs["described"]) == 2, f"DescribeAcls of the topic: {obs['described']}")
    err, msg = probe_until(True, 10, oauth_conf(S, "valid"))
    check(err is None, f"the valid token was not accepted: {err} {msg}")
    sec_round_trip(t, obs, oauth_conf(S, "valid"))
    for case in OAUTH_REFUSED:
        err, msg = probe(oauth_conf(S, case))
        obs[f"{case}_error"] = err
        obs[f"{case}_message"] = broker_words(msg)
    bad = {c: obs[f"{c}_error"] for c in OAUTH_REFUSED if obs[f"{c}_error"] != "_AUTHENTICATION"}
    check(not bad, f"tokens not refused with _AUTHENTICATION (SASL_AUTHENTICATION_FAILED): {bad}")


# ---------------------------------------------------------------- sec-acl

def acl_str(x, t):
    """"TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic as <topic>, so the targets' observables compare)."""
    return (f"{x.restype.name}:{x.resource_pattern_type.name}:{'<topic>' if x.name == t else x.name} {x.principal}@{x.host} "
            f"{x.operation.name} {x.permission_type.name}")


def describe_topic_acls(a, t, want):
    """DescribeAcls of the topic's LITERAL pattern, sorted; retried (bounded) until it has `want` bindings."""
    f = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
                         AclPermissionType.ANY)
    more = deadline(10)
    while True:
        got = sorted(acl_str(x, t) for x in a.describe_acls(f, request_timeout=10).result(timeout=15))
        if len(got) == want or not more():
            return got
        time.sleep(0.2)


def produce_as(c, t, value):
    """One record with these settings and small timeouts: None when acknowledged, else Kafka's error name."""
    p = Producer(conf(**{**c, "linger.ms": 0, "message.timeout.ms": 6000, "client.id": "compat-confluent-acl"}))
    res = []
    p.produce(t, value=value, key=b"k", partition=0, on_delivery=lambda err, msg: res.append(err))
    p.flush(10)
    if not res:
        return "no delivery report within 10 s"
    if res[0] is not None:
        print(f"[sec-acl] produce as {c.get('sasl.username')}: {res[0]}", file=sys.stderr, flush=True)
        return kerr(res[0])
    return None


# What librdkafka's consumer of a user with no ACL reports first against Kafka 4.4: FindCoordinator
# of the group is refused (GROUP_AUTHORIZATION_FAILED) is the first error its poll() returns.
ADMIN_CONSUME_ERROR = "GROUP_AUTHORIZATION_FAILED"


def s_sec_acl(b, t, obs):
    S = security()
    create(t)
    g = t + "-g"
    a = admin()

    def allow(rt, name, op):
        return AclBinding(rt, name, ResourcePatternType.LITERAL, "User:alice", "*", op, AclPermissionType.ALLOW)
    write = allow(ResourceType.TOPIC, t, AclOperation.WRITE)
    fs = a.create_acls([write, allow(ResourceType.TOPIC, t, AclOperation.READ),
                        allow(ResourceType.GROUP, g, AclOperation.READ)], request_timeout=15)
    for f in fs.values():
        f.result(timeout=20)
    want = ["TOPIC:LITERAL:<topic> User:alice@* READ ALLOW", "TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW"]
    obs["described"] = describe_topic_acls(a, t, 2)
    check(obs["described"] == want, f"DescribeAcls of the topic: {obs['described']}, expected {want}")

    alice = sasl_conf(S, "sasl_plaintext", "PLAIN", "alice", S["plain_users"]["alice"])
    admin_user = sasl_conf(S, "sasl_plaintext", "PLAIN", "admin", S["plain_users"]["admin"])
    offs = produce(t, vals(5, "acl-"), **alice)
    obs["alice_produced_offsets"] = f"{offs[0]}..{offs[-1]}"
    c = Consumer(conf(**{**alice, "group.id": g, "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    got = []
    try:
        c.subscribe([t])
        more = deadline(15)
        while len(got) < 5 and more():
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise Fail(f"alice's consumer: {kerr(m.error())}")
            got.append(f"{m.offset()}:{m.value().decode()}")
        if got:
            c.commit(asynchronous=False)
    finally:
        c.close()
    obs["alice_consumed"] = got
    check(got == [f"{i}:acl-{i}" for i in range(5)], f"alice consumed {got}")

    obs["admin_produce_error"] = produce_as(admin_user, t, b"refused")
    check(obs["admin_produce_error"] == "TOPIC_AUTHORIZATION_FAILED",
          f"admin's produce: {obs['admin_produce_error']}, expected TOPIC_AUTHORIZATION_FAILED")
    c = Consumer(conf(**{**admin_user, "group.id": g, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "client.id": "compat-confluent-acl"}))
    errs, n = [], 0
    try:
        c.subscribe([t])
        more = deadline(10)
        while not errs and more():
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    print(f"[sec-acl] consume as admin: {m.error()}", file=sys.stderr, flush=True)
                    errs.append(kerr(m.error()))
            else:
                n += 1
    finally:
        c.close()
    obs["admin_consumed"] = n
    obs["admin_consume_error"] = errs[0] if errs else None
    check(obs["admin_consume_error"] == ADMIN_CONSUME_ERROR,
          f"admin's group consume: {obs['admin_consume_error']}, expected {ADMIN_CONSUME_ERROR}")

    wf = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.WRITE,
                          AclPermissionType.ALLOW)
    deleted = a.delete_acls([wf], request_timeout=15)[wf].result(timeout=20)
    obs["deleted"] = [acl_str(x, t) for x in deleted]
    check(obs["deleted"] == [want[1]], f"DeleteAcls of alice's WRITE removed {obs['deleted']}")
    obs["described_after_delete"] = describe_topic_acls(a, t, 1)
    check(obs["described_after_delete"] == [want[0]], f"DescribeAcls after the delete: {obs['described_after_delete']}")
    obs["alice_produce_after_delete"] = produce_as(alice, t, b"after-delete")
    check(obs["alice_produce_after_delete"] == "TOPIC_AUTHORIZATION_FAILED",
          f"alice's produce without WRITE: {obs['alice_produce_after_delete']}, expected TOPIC_AUTHORIZATION_FAILED")


SCENARIOS = {
    "metadata": s_metadata, "topic-admin": s_topic_admin,
    "codec-none": codec("none"), "codec-gzip": codec("gzip"), "codec-snappy": codec("snappy"),
    "codec-lz4": codec("lz4"), "codec-zstd": codec("zstd"),
    "record-fields": s_record_fields, "offset-earliest": s_offset_earliest, "offset-latest": s_offset_latest,
    "offsets-for-times": s_offsets_for_times, "group-rebalance": s_group_rebalance,
    "commit-resume": s_commit_resume, "group-rebalance-848": s_group_rebalance_848,
    "commit-resume-848": s_commit_resume_848, "idempotent-produce": s_idempotent, "transactions": s_transactions, "eos-pipeline": s_eos_pipeline,
    "delete-records": s_delete_records, "list-offsets": s_list_offsets, "err-unknown-topic": s_unknown_topic,
    "err-record-too-large": s_too_large, "err-invalid-config": s_invalid_config,
    "err-keyless-compacted": s_keyless_compacted, "static-member-848": s_static_member_848,
    "authorized-ops": s_authorized_ops,
    "sec-tls": s_sec_tls, "sec-mtls": s_sec_mtls, "sec-plain": s_sec_plain,
    "sec-scram-256": sec_scram("SCRAM-SHA-256"), "sec-scram-512": sec_scram("SCRAM-SHA-512"),
    "sec-sasl-ssl": s_sec_sasl_ssl, "sec-plaintext-to-tls": s_sec_plaintext_to_tls, "sec-acl": s_sec_acl,
    "sec-quota": na("confluent-kafka 2.16.1 (librdkafka) has no client quota admin calls (AlterClientQuotas/DescribeClientQuotas)"),
    "sec-oauth": s_sec_oauth,
}

if __name__ == "__main__":
    import sys
    BOOT["b"] = sys.argv[2]
    main(SCENARIOS)
