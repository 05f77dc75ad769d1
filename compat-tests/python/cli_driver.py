"""Kafka CLI tools columns of Strom's compat-tests: runs Kafka's tool classes from the cached
Maven Central jars (what kafka-topics.sh & co. run) and checks their printed output.
COMPAT_CLI_KAFKA picks the tools: 4.4 (column kafka-cli-4.4, .cache/lib44) or 4.1 (column
kafka-cli, .cache/lib41; the default). Usage: <scenario> <bootstrap> <topic>."""

import json
import os
import re
import subprocess
import tempfile
import time

from common import Fail, check, deadline, expected_brokers, main, security

CACHE = os.environ.get("COMPAT_CACHE", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache"))
LOG4J = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib", "log4j2.properties")
KAFKA = os.environ.get("COMPAT_CLI_KAFKA", "4.1")
LIB = {"4.1": "lib41", "4.4": "lib44"}[KAFKA]
JAVA = ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp", os.path.join(CACHE, LIB, "*")]
TOOL = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    # 4.1 ships the Scala kafka.admin.ConfigCommand; 4.4 has only org.apache.kafka.tools.ConfigCommand
    "kafka-configs": "kafka.admin.ConfigCommand" if KAFKA == "4.1" else "org.apache.kafka.tools.ConfigCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",  # kafka-tools in both 4.1 and 4.4
}
B = {}
# Options 4.4 renamed (the old names still work there but print a deprecation line on stdout,
# into the output the cells parse); 4.1 has only the old names.
NEW = KAFKA != "4.1"
READER_PROP = "--reader-property" if NEW else "--property"        # console producer
FORMATTER_PROP = "--formatter-property" if NEW else "--property"  # console consumer
PERF_PROPS = "--command-property" if NEW else "--producer-props"  # producer perf test
PERF_RECORDS = "--num-records" if NEW else "--messages"           # consumer perf test


def tool(name, *args, stdin=None, timeout=40, ok=True):
    cmd = JAVA + [TOOL[name]] + list(args)
    print("$", name, " ".join(args), flush=True)
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"{name} {' '.join(args)[:80]} timed out after {timeout}s")
    print(r.stdout[-3000:], r.stderr[-3000:], sep="\n--stderr--\n", flush=True)
    if ok and r.returncode != 0:
        err = [l for l in (r.stderr + r.stdout).splitlines() if "Error" in l or "Exception" in l]
        raise Fail(f"{name} exited {r.returncode}: {(err or [r.stderr.strip()[-200:]])[0][:300]}")
    # ok=False: a refusal is expected, and tools print it on either stream.
    return r.stdout if ok else r.stdout + r.stderr


def topics(*args, **kw):
    return tool("kafka-topics", "--bootstrap-server", B["b"], *args, **kw)


def create(t, partitions=1):
    topics("--create", "--topic", t, "--partitions", str(partitions), "--replication-factor", "1")


def produce_lines(t, lines, *extra):
    tool("kafka-console-producer", "--bootstrap-server", B["b"], "--topic", t, *extra, stdin="".join(l + "\n" for l in lines))


def offsets(t, time_spec):
    out = tool("kafka-get-offsets", "--bootstrap-server", B["b"], "--topic", t, "--time", time_spec)
    return sorted(l.strip() for l in out.splitlines() if l.strip().startswith(t + ":"))


def s_topics(b, t, obs):
    out = create(t, 2)
    listed = topics("--list")
    obs["listed"] = t in listed.split()
    check(obs["listed"], "--list does not show the new topic")
    d = topics("--describe", "--topic", t)
    m = re.search(r"PartitionCount:\s*(\d+)", d)
    obs["partition_count"] = int(m.group(1)) if m else None
    leaders = re.findall(r"Partition:\s*(\d+)\s+Leader:\s*(\S+)", d)
    obs["partitions_with_leader"] = sum(1 for _, l in leaders if l not in ("-1", "none"))
    check(obs["partition_count"] == 2, f"--describe PartitionCount {obs['partition_count']}")
    check(obs["partitions_with_leader"] == 2, f"--describe leaders {leaders}")
    topics("--delete", "--topic", t)
    more = deadline(20)
    while more():
        if t not in topics("--list").split():
            obs["deleted"] = True
            return
        time.sleep(0.5)
    raise Fail("topic still listed 20s after --delete")


def s_console(b, t, obs):
    create(t)
    produce_lines(t, ["k1:v1", "k2:v2", "k3:v3"], READER_PROP, "parse.key=true", READER_PROP, "key.separator=:")
    out = tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", t, "--from-beginning",
               "--max-messages", "3", "--timeout-ms", "20000", FORMATTER_PROP, "print.key=true",
               FORMATTER_PROP, "print.offset=true")
    got = [l for l in out.splitlines() if l.strip()]
    obs["consumed"] = got
    want = ["Offset:0\tk1\tv1", "Offset:1\tk2\tv2", "Offset:2\tk3\tv3"]
    check(got == want, f"console-consumer printed {got}, expected {want}")


def s_configs(b, t, obs):
    create(t)
    tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", t, "--alter",
         "--add-config", "retention.ms=7200000,cleanup.policy=compact")
    for _ in range(4):  # KRaft applies the change through the metadata log: describe until it shows
        out = tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", t, "--describe")
        obs["retention"] = "retention.ms=7200000" in out
        obs["cleanup"] = "cleanup.policy=compact" in out
        if obs["retention"] and obs["cleanup"]:
            break
        time.sleep(0.5)
    check(obs["retention"] and obs["cleanup"], f"--describe does not show both overrides: {out.strip()[:300]}")
    tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", t, "--alter",
         "--delete-config", "cleanup.policy")
    for _ in range(4):
        out = tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", t, "--describe")
        obs["cleanup_after_delete"] = "cleanup.policy=compact" in out
        if not obs["cleanup_after_delete"]:
            break
        time.sleep(0.5)
    check(not obs["cleanup_after_delete"], "cleanup.policy still set after --delete-config")


def configs(b, *args, ok=True):
    return tool("kafka-configs", "--bootstrap-server", b, *args, ok=ok)


def until_shown(describe, want, present=True, tries=6):
    """Describes until `want` is (or is no longer) in the output: the change is applied through
    the metadata log on both brokers."""
    out = ""
    for _ in range(tries):
        out = describe()
        if (want in out) == present:
            return out
        time.sleep(0.5)
    return out


def s_configs_brokers(b, t, obs):
    # Which broker: `--describe --entity-type brokers` lists each ("... for broker 1 are:").
    out = configs(b, "--entity-type", "brokers", "--describe")
    ids = re.findall(r"for broker (\d+) are", out)
    check(len(ids) == expected_brokers(), f"expected {expected_brokers()} broker(s) in --describe, got {out.strip()[:200]}")
    node = ids[0]
    obs["node"] = node
    # Broker configs are shared by every cell on the broker: each CLI column uses its own keys,
    # with values equal to the defaults, so cells running meanwhile see no change in behaviour.
    (bk, bv), (dk, dv) = ((("message.max.bytes", "1048588"), ("log.retention.ms", "604800000")) if NEW
                          else (("log.segment.bytes", "1073741824"), ("log.retention.bytes", "-1")))
    configs(b, "--entity-type", "brokers", "--entity-name", node, "--alter", "--add-config", f"{bk}={bv}")
    configs(b, "--entity-type", "brokers", "--entity-default", "--alter", "--add-config", f"{dk}={dv}")
    try:
        desc = until_shown(lambda: configs(b, "--entity-type", "brokers", "--entity-name", node, "--describe"),
                           f"DYNAMIC_BROKER_CONFIG:{bk}={bv}")
        obs["broker_source"] = f"DYNAMIC_BROKER_CONFIG:{bk}={bv}" in desc
        check(obs["broker_source"], f"per-broker value not shown with its source: {desc.strip()[:300]}")
        dflt = until_shown(lambda: configs(b, "--entity-type", "brokers", "--entity-default", "--describe"),
                           f"{dk}={dv}")
        obs["default_shown"] = f"DYNAMIC_DEFAULT_BROKER_CONFIG:{dk}={dv}" in dflt
        check(obs["default_shown"], f"cluster default not shown with its source: {dflt.strip()[:300]}")
        # A key Kafka cannot change at run time is refused.
        ro = tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", node,
                  "--alter", "--add-config", "log.dirs=/tmp/elsewhere", ok=False)
        obs["read_only_refused"] = "Cannot update these configs dynamically" in ro or "dynamically" in ro
        check(obs["read_only_refused"], f"changing log.dirs was not refused: {ro.strip()[:300]}")
    finally:
        configs(b, "--entity-type", "brokers", "--entity-name", node, "--alter", "--delete-config", bk, ok=False)
        configs(b, "--entity-type", "brokers", "--entity-default", "--alter", "--delete-config", dk, ok=False)
    gone = until_shown(lambda: configs(b, "--entity-type", "brokers", "--entity-name", node, "--describe"),
                       f"DYNAMIC_BROKER_CONFIG:{bk}", present=False)
    obs["deleted"] = f"DYNAMIC_BROKER_CONFIG:{bk}" not in gone
    check(obs["deleted"], f"--delete-config left the value: {gone.strip()[:300]}")


def s_configs_groups(b, t, obs):
    g = t + "-group"
    configs(b, "--entity-type", "groups", "--entity-name", g, "--alter",
            "--add-config", "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000")
    desc = until_shown(lambda: configs(b, "--entity-type", "groups", "--entity-name", g, "--describe"),
                       "consumer.heartbeat.interval.ms=6000")
    obs["session"] = "consumer.session.timeout.ms=50000" in desc
    obs["heartbeat"] = "consumer.heartbeat.interval.ms=6000" in desc
    check(obs["session"] and obs["heartbeat"], f"--describe does not show both: {desc.strip()[:300]}")
    # Outside the broker's group.consumer.min/max.session.timeout.ms (45000..60000): refused.
    bad = tool("kafka-configs", "--bootstrap-server", b, "--entity-type", "groups", "--entity-name", g, "--alter",
               "--add-config", "consumer.session.timeout.ms=1000", ok=False)
    obs["out_of_range_refused"] = "InvalidConfigurationException" in bad or "must be in the range" in bad
    check(obs["out_of_range_refused"], f"an out-of-range session timeout was not refused: {bad.strip()[:300]}")
    configs(b, "--entity-type", "groups", "--entity-name", g, "--alter", "--delete-config", "consumer.session.timeout.ms")
    after = until_shown(lambda: configs(b, "--entity-type", "groups", "--entity-name", g, "--describe"),
                        "consumer.session.timeout.ms=50000", present=False)
    obs["session_after_delete"] = "consumer.session.timeout.ms=50000" in after
    check(not obs["session_after_delete"] and "consumer.heartbeat.interval.ms=6000" in after,
          f"after --delete-config: {after.strip()[:300]}")


def s_get_offsets(b, t, obs):
    create(t)
    produce_lines(t, [f"r{i}" for i in range(7)])
    obs["latest"] = offsets(t, "latest")
    obs["earliest"] = offsets(t, "earliest")
    check(obs["latest"] == [f"{t}:0:7"], f"latest {obs['latest']}")
    check(obs["earliest"] == [f"{t}:0:0"], f"earliest {obs['earliest']}")


def s_delete_records(b, t, obs):
    create(t)
    produce_lines(t, [f"r{i}" for i in range(7)])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"version": 1, "partitions": [{"topic": t, "partition": 0, "offset": 3}]}, f)
    try:
        out = tool("kafka-delete-records", "--bootstrap-server", b, "--offset-json-file", f.name)
    finally:
        os.unlink(f.name)
    m = re.search(r"low_watermark:\s*(\d+)", out)
    obs["low_watermark"] = int(m.group(1)) if m else out.strip()[-200:]
    check(obs["low_watermark"] == 3, f"delete-records printed {out.strip()[-200:]}")
    obs["earliest"] = offsets(t, "earliest")
    check(obs["earliest"] == [f"{t}:0:3"], f"earliest after delete {obs['earliest']}")


def s_consumer_groups(b, t, obs):
    create(t)
    produce_lines(t, [f"r{i}" for i in range(5)])
    g = t + "-g"
    out = tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", t, "--group", g, "--from-beginning",
               "--max-messages", "5", "--timeout-ms", "20000")
    check(len([l for l in out.splitlines() if l.strip()]) == 5, f"console consumer read {out.strip()[:200]}")
    listed = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list")
    obs["listed"] = g in listed.split()
    check(obs["listed"], f"--list does not show {g}: {listed.strip()[:200]}")
    d = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g)
    rows = [l.split() for l in d.splitlines() if l.split()[:1] == [g]]
    obs["rows"] = [r[1:6] for r in rows]
    check(len(rows) == 1, f"--describe rows: {d.strip()[:300]}")
    _, topic, part, cur, end, lag = rows[0][:6]
    check((topic, part, cur, end, lag) == (t, "0", "5", "5", "0"), f"--describe row {rows[0]}")


def s_consumer_groups_reset(b, t, obs):
    """kafka-consumer-groups --reset-offsets (--to-earliest, --shift-by, --to-datetime),
    --delete-offsets and --delete on an inactive group."""
    create(t)
    produce_lines(t, [f"r{i}" for i in range(5)])
    time.sleep(1.5)
    # Records r5.. are newer than `mid`; --to-datetime mid resets to the first of them (5).
    mid = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 0.5)) + ".000Z"
    time.sleep(0.5)
    produce_lines(t, [f"r{i}" for i in range(5, 10)])
    g = t + "-g"
    out = tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", t, "--group", g, "--from-beginning",
               "--max-messages", "10", "--timeout-ms", "20000")
    check(len([l for l in out.splitlines() if l.strip()]) == 10, f"console consumer read {out.strip()[:200]}")

    def current():
        rows = table(tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g), g)
        return [r.get("CURRENT-OFFSET") for r in rows]

    obs["after_consume"] = current()
    check(obs["after_consume"] == ["10"], f"committed after consuming: {obs['after_consume']}")
    reset = ["kafka-consumer-groups", "--bootstrap-server", b, "--reset-offsets", "--group", g, "--topic", t, "--execute"]
    tool(*reset, "--to-earliest")
    obs["to_earliest"] = current()
    check(obs["to_earliest"] == ["0"], f"--to-earliest: {obs['to_earliest']}")
    tool(*reset, "--shift-by", "3")
    obs["shift_by_3"] = current()
    check(obs["shift_by_3"] == ["3"], f"--shift-by 3: {obs['shift_by_3']}")
    tool(*reset, "--to-datetime", mid)
    obs["to_datetime"] = current()
    check(obs["to_datetime"] == ["5"], f"--to-datetime {mid}: {obs['to_datetime']}")
    tool("kafka-consumer-groups", "--bootstrap-server", b, "--delete-offsets", "--group", g, "--topic", t)
    obs["after_delete_offsets"] = current()
    check(obs["after_delete_offsets"] in ([], ["-"]), f"--delete-offsets left {obs['after_delete_offsets']}")
    tool("kafka-consumer-groups", "--bootstrap-server", b, "--delete", "--group", g)
    listed = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list")
    obs["listed_after_delete"] = g in listed.split()
    check(not obs["listed_after_delete"], f"--delete left {g} listed: {listed.strip()[:200]}")


def table(out, g):
    """kafka-consumer-groups output -> list of {header: value} rows of group g (header-driven, so
    extra columns such as GROUP-EPOCH do not shift anything)."""
    rows, hdr = [], None
    for l in out.splitlines():
        f = l.split()
        if f[:1] == ["GROUP"]:
            hdr = f
        elif hdr and f[:1] == [g]:
            rows.append(dict(zip(hdr, f)))
    return rows


def s_consumer_groups_848(b, t, obs):
    """A Java consumer (the column's console consumer) in a KIP-848 consumer-protocol group stays in the
    group while kafka-consumer-groups describes it."""
    create(t)
    produce_lines(t, [f"r{i}" for i in range(5)])
    g = t + "-g"
    cmd = JAVA + [TOOL["kafka-console-consumer"], "--bootstrap-server", b, "--topic", t, "--group", g,
                  "--from-beginning", "--consumer-property", "group.protocol=consumer",
                  "--consumer-property", "client.id=compat-cli-848",
                  "--consumer-property", "auto.commit.interval.ms=200"]
    print("$ kafka-console-consumer (background)", " ".join(cmd[-12:]), flush=True)
    out = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        more, lines = deadline(25), []
        while more() and p.poll() is None:
            out.seek(0)
            lines = [l for l in out.read().splitlines() if re.fullmatch(r"r\d", l.strip())]
            if len(lines) >= 5:
                break
            time.sleep(0.3)
        check(len(lines) == 5, f"console consumer (group.protocol=consumer) read {lines} (exit {p.poll()})")
        # auto-commit every 200 ms: wait until --describe shows the committed offset and an assigned member
        more, rows, d = deadline(20), [], ""
        while more():
            d = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g, ok=False)
            rows = table(d, g)
            if len(rows) == 1 and rows[0].get("CURRENT-OFFSET") == "5" and rows[0].get("CONSUMER-ID", "-") != "-":
                break
            time.sleep(0.5)
        # the topic name differs per run: recorded as T so that RESULTS.md compares the rest
        obs["rows"] = [[r.get(k, "").replace(t, "T") for k in ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG")] for r in rows]
        check(len(rows) == 1, f"--describe rows: {d.strip()[:400]}")
        r = rows[0]
        check((r.get("TOPIC"), r.get("PARTITION"), r.get("CURRENT-OFFSET"), r.get("LOG-END-OFFSET"), r.get("LAG"))
              == (t, "0", "5", "5", "0"), f"--describe row {r}")
        obs["row_client_id"] = r.get("CLIENT-ID")
        check(r.get("CLIENT-ID") == "compat-cli-848" and r.get("CONSUMER-ID", "-") != "-",
              f"--describe row has no assigned member: {r}")
        m = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g, "--members", "--verbose")
        members = table(m, g)
        obs["members"] = [{k: v.replace(t, "T") for k, v in x.items() if k not in ("GROUP", "CONSUMER-ID", "HOST")} for x in members]
        check(len(members) == 1, f"--members rows: {m.strip()[:400]}")
        x = members[0]
        check(x.get("CLIENT-ID") == "compat-cli-848" and x.get("CONSUMER-ID") == r.get("CONSUMER-ID")
              and x.get("#PARTITIONS") == "1", f"--members row {x}")
        # consumer-protocol groups: CURRENT-EPOCH / CURRENT-ASSIGNMENT / TARGET-EPOCH / TARGET-ASSIGNMENT
        check(x.get("CURRENT-ASSIGNMENT") == f"{t}:0" and x.get("TARGET-ASSIGNMENT") == f"{t}:0",
              f"--members --verbose assignment current {x.get('CURRENT-ASSIGNMENT')!r} target {x.get('TARGET-ASSIGNMENT')!r}, expected {t}:0: {m.strip()[:400]}")
        check(x.get("CURRENT-EPOCH", "").isdigit() and x.get("CURRENT-EPOCH") == x.get("TARGET-EPOCH") and int(x["CURRENT-EPOCH"]) >= 1,
              f"--members --verbose epochs current {x.get('CURRENT-EPOCH')!r} target {x.get('TARGET-EPOCH')!r}")
        st = tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", g, "--state")
        state = table(st, g)
        obs["state"] = [{k: v for k, v in x.items() if k in ("ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")} for x in state]
        check(len(state) == 1 and state[0].get("STATE") == "Stable" and state[0].get("#MEMBERS") == "1",
              f"--state: {st.strip()[:400]}")
        listed = tool("kafka-consumer-groups", "--bootstrap-server", b, "--list", "--type")
        row = [l.split() for l in listed.splitlines() if l.split()[:1] == [g]]
        obs["list_type"] = row[0][1:] if row else None
        check(row and "Consumer" in row[0][1:], f"--list --type: {listed.strip()[:300]}")
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def perf_produce(b, t, n, *extra):
    out = tool("kafka-producer-perf-test", "--topic", t, "--num-records", str(n), "--record-size", "100",
               "--throughput", "-1", *extra, PERF_PROPS, f"bootstrap.servers={b}", "acks=all",
               "linger.ms=5", timeout=55)
    m = re.search(r"(\d+) records sent", out.strip().splitlines()[-1] if out.strip() else "")
    return int(m.group(1)) if m else None, out


def s_producer_perf(b, t, obs):
    create(t)
    sent, out = perf_produce(b, t, 20000)
    obs["records_sent"] = sent
    check(sent == 20000, f"producer-perf-test summary: {out.strip()[-200:]}")
    obs["latest"] = offsets(t, "latest")
    check(obs["latest"] == [f"{t}:0:20000"], f"latest offset after perf test {obs['latest']}")


def s_consumer_perf(b, t, obs):
    create(t)
    sent, out = perf_produce(b, t, 20000)
    check(sent == 20000, f"setup: producer-perf-test {out.strip()[-200:]}")
    out = tool("kafka-consumer-perf-test", "--bootstrap-server", b, "--topic", t, PERF_RECORDS, "20000",
               "--timeout", "20000", "--group", t + "-g", timeout=55)
    lines = [l for l in out.splitlines() if l.strip()]
    hdr = [h.strip() for h in lines[0].split(",")] if lines else []
    vals_ = [v.strip() for v in lines[-1].split(",")] if len(lines) > 1 else []
    row = dict(zip(hdr, vals_))
    obs["nMsg"] = int(row.get("data.consumed.in.nMsg", "-1"))
    check(obs["nMsg"] == 20000, f"consumer-perf-test consumed {row or out.strip()[-200:]}")


def s_transactions(b, t, obs):
    create(t)
    txid = t + "-tx"
    sent, out = perf_produce(b, t, 200, "--transactional-id", txid, "--transaction-duration-ms", "100")
    check(sent == 200, f"transactional producer-perf-test: {out.strip()[-200:]}")
    out = tool("kafka-transactions", "--bootstrap-server", b, "list")
    row = [l.split() for l in out.splitlines() if l.split()[:1] == [txid]]
    obs["listed"] = bool(row)
    check(row, f"kafka-transactions list does not show {txid}: {out.strip()[:300]}")
    obs["list_state"] = row[0][-1]
    d = tool("kafka-transactions", "--bootstrap-server", b, "describe", "--transactional-id", txid)
    obs["describe_has_state"] = "CompleteCommit" in d or "Empty" in d
    check(obs["list_state"] in ("CompleteCommit", "Empty"), f"list state {row[0]}")
    check(obs["describe_has_state"], f"describe: {d.strip()[:300]}")


# ---------------------------------------------------------------- cli-acls

ACL_LINE = re.compile(r"\(principal=([^,]+), host=([^,]+), operation=(\w+), permissionType=(\w+)\)")


def acls(b, *args):
    return tool("kafka-acls", "--bootstrap-server", b, *args)


def acl_list(b, resource, name, want):
    """kafka-acls --list of one resource until it shows `want` (sorted "principal host OPERATION
    PERMISSION" lines), bounded: ACLs reach the broker's authorizer through the metadata log."""
    more, got = deadline(10), []
    while True:
        out = acls(b, "--list", resource, name)
        got = sorted(" ".join(m) for m in ACL_LINE.findall(out))
        if got == want or not more():
            return got
        time.sleep(0.5)


def s_acls(b, t, obs):
    S = security()
    g = t + "-g"
    create(t)
    out = acls(b, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write", "--topic", t)
    obs["add_topic_printed"] = f"ResourcePattern(resourceType=TOPIC, name={t}, patternType=LITERAL)" in out
    check(obs["add_topic_printed"], f"--add --topic printed {out.strip()[:300]}")
    out = acls(b, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--group", g)
    obs["add_group_printed"] = f"ResourcePattern(resourceType=GROUP, name={g}, patternType=LITERAL)" in out
    check(obs["add_group_printed"], f"--add --group printed {out.strip()[:300]}")
    both = ["User:alice * READ ALLOW", "User:alice * WRITE ALLOW"]
    obs["topic_acls"] = acl_list(b, "--topic", t, both)
    check(obs["topic_acls"] == both, f"--list --topic shows {obs['topic_acls']}, expected {both}")
    obs["group_acls"] = acl_list(b, "--group", g, both[:1])
    check(obs["group_acls"] == both[:1], f"--list --group shows {obs['group_acls']}, expected {both[:1]}")

    # the ACLs at work: alice over SASL_PLAINTEXT (PLAIN) with a client properties file
    fd, props = tempfile.mkstemp(prefix="compat-alice-", suffix=".properties")
    with os.fdopen(fd, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="alice" password="{S["plain_users"]["alice"]}";\n')
    conf = "--command-config" if NEW else "--producer.config"  # 4.4 deprecates --producer.config / --consumer.config
    sasl = S["sasl_plaintext"]
    try:
        out = tool("kafka-console-producer", "--bootstrap-server", sasl, "--topic", t, conf, props,
                   stdin="a0\na1\na2\n", ok=False)
        obs["alice_produce_refused"] = "Exception" in out
        check(not obs["alice_produce_refused"], f"alice's console producer: {out.strip()[-300:]}")
        out = tool("kafka-console-consumer", "--bootstrap-server", sasl, "--topic", t, "--group", g,
                   "--command-config" if NEW else "--consumer.config", props,
                   "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000")
        obs["alice_consumed"] = [l for l in out.splitlines() if l.strip()]
        check(obs["alice_consumed"] == ["a0", "a1", "a2"], f"alice's console consumer printed {obs['alice_consumed']}")

        acls(b, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write", "--topic", t)
        obs["topic_acls_after_remove"] = acl_list(b, "--topic", t, both[:1])
        check(obs["topic_acls_after_remove"] == both[:1],
              f"--list --topic after --remove shows {obs['topic_acls_after_remove']}, expected {both[:1]}")
        out = tool("kafka-console-producer", "--bootstrap-server", sasl, "--topic", t, conf, props,
                   stdin="refused\n", ok=False)
        m = re.search(r"(\w+Exception): ([^\n]*)", out)
        obs["alice_produce_after_remove"] = m.group(1) if m else None
        check(obs["alice_produce_after_remove"] == "TopicAuthorizationException",
              f"alice's console producer without WRITE: {out.strip()[-300:]}")
    finally:
        os.unlink(props)


def quota_lines(out, cid, user):
    """kafka-configs --describe of quota entities: the "Quota configs for ..." lines with the cell's
    names written <client> / <user> and each line's k=v list sorted (the tool prints a map)."""
    got = []
    for l in out.splitlines():
        l = l.strip()
        if not l.startswith("Quota configs for"):
            continue
        l = l.replace(cid, "<client>").replace(user, "<user>")
        m = re.match(r"(.* are )(.*)$", l)
        if m:
            l = m.group(1) + ", ".join(sorted(x.strip() for x in m.group(2).split(",") if x.strip()))
        got.append(l)
    return got


def quota_describe_until(b, entity, want, cid, user, tries=5):
    """Describes the quota entity until its lines are `want` (the change reaches the broker through
    the metadata log), a bounded number of times."""
    got = []
    for _ in range(tries):
        got = quota_lines(configs(b, *entity, "--describe"), cid, user)
        if got == want:
            break
        time.sleep(0.5)
    return got


def s_quotas(b, t, obs):
    """Client quotas with kafka-configs: the cell's own client id q-<t> and user u-<t> (never a
    default entity); values big enough that no cell is slowed."""
    cid, user = "q-" + t, "u-" + t
    clients = ["--entity-type", "clients", "--entity-name", cid]
    both = ["--entity-type", "users", "--entity-name", user] + clients
    out = configs(b, "--alter", *clients, "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    obs["alter_clients"] = out.strip().replace(cid, "<client>")
    want = QUOTA_WANT["clients"]
    got = quota_describe_until(b, clients, want, cid, user)
    obs["describe_clients"] = got
    check(got == want, f"--describe of the client-id entity: {got}, expected {want}")

    out = configs(b, "--alter", *both, "--add-config", "producer_byte_rate=524288")
    obs["alter_user_client"] = out.strip().replace(cid, "<client>").replace(user, "<user>")
    want = QUOTA_WANT["user_client"]
    got = quota_describe_until(b, both, want, cid, user)
    obs["describe_user_client"] = got
    check(got == want, f"--describe of the (user, client-id) entity: {got}, expected {want}")
    # The tool's filter is strict (ClientQuotaFilter.containsOnly): the client-id entity alone,
    # not the (user, client-id) one that also names the client.
    got = quota_lines(configs(b, *clients, "--describe"), cid, user)
    obs["describe_clients_strict"] = got
    check(got == QUOTA_WANT["clients"], f"--describe of the client-id entity with a (user, client-id) one present: {got}, expected {QUOTA_WANT['clients']}")

    configs(b, "--alter", *both, "--delete-config", "producer_byte_rate")
    want = QUOTA_WANT["user_client_deleted"]
    got = quota_describe_until(b, both, want, cid, user)
    obs["describe_user_client_after_delete"] = got
    check(got == want, f"--describe of the (user, client-id) entity after --delete-config: {got}, expected {want}")

    configs(b, "--alter", *clients, "--delete-config", "producer_byte_rate")
    want = QUOTA_WANT["clients_deleted"]
    got = quota_describe_until(b, clients, want, cid, user)
    obs["describe_clients_after_delete"] = got
    check(got == want, f"--describe of the client-id entity after --delete-config producer_byte_rate: {got}, expected {want}")
    configs(b, "--alter", *clients, "--delete-config", "consumer_byte_rate")
    got = quota_describe_until(b, clients, [], cid, user)
    obs["describe_clients_after_delete_all"] = got
    check(got == [], f"--describe of the client-id entity with no quota left: {got}, expected nothing")


# What kafka-configs prints for the quota entities (Apache Kafka 4.4 as the broker; the tool
# formats the values the broker returns).
QUOTA_WANT = {
    "clients": ["Quota configs for client-id '<client>' are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0"],
    "user_client": ["Quota configs for user-principal '<user>', client-id '<client>' are producer_byte_rate=524288.0"],
    "user_client_deleted": [],
    "clients_deleted": ["Quota configs for client-id '<client>' are consumer_byte_rate=2097152.0"],
}


SCENARIOS = {
    "cli-topics": s_topics, "cli-console": s_console, "cli-configs": s_configs,
    "cli-configs-brokers": s_configs_brokers, "cli-configs-groups": s_configs_groups, "cli-get-offsets": s_get_offsets,
    "cli-delete-records": s_delete_records, "cli-consumer-groups": s_consumer_groups,
    "cli-consumer-groups-848": s_consumer_groups_848,
    "cli-consumer-groups-reset": s_consumer_groups_reset,
    "cli-producer-perf": s_producer_perf, "cli-consumer-perf": s_consumer_perf, "cli-transactions": s_transactions,
    "cli-acls": s_acls, "cli-quotas": s_quotas,
}

if __name__ == "__main__":
    import sys
    B["b"] = sys.argv[2]
    main(SCENARIOS)
