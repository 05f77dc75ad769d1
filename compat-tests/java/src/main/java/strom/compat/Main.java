package strom.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Java column of Strom's compat-tests: `Main <scenario> <bootstrap> <topic>` runs one scenario
 * with kafka-clients (compiled against 4.4.0, run on the 4.4.0, 4.1.1 or 3.9.1 classpath: only APIs
 * present in all three are used here; the share-group scenarios, written against the 4.4 share
 * consumer API, live in ShareScenarios and are n/a on the older clients) and prints
 * `@@RESULT {json}` as its last line. Every check compares real observed values; every wait has a
 * deadline. Scenario semantics are shared with the other drivers (see compat-tests/README.md).
 */
public final class Main {
    static String bootstrap;
    static String topic;
    static final Map<String, Object> obs = new LinkedHashMap<>();
    static final long BASE_TS = (System.currentTimeMillis() / 1000 - 3600) * 1000;

    static final class Fail extends RuntimeException {
        Fail(String m) { super(m); }
    }

    static final class NotApplicable extends RuntimeException {
        NotApplicable(String m) { super(m); }
    }

    static final class NotYet extends RuntimeException {
        NotYet(String m) { super(m); }
    }

    public static void main(String[] args) {
        String scenario = args[0];
        bootstrap = args[1];
        topic = args[2];
        String status = "pass", detail = "";
        try {
            run(scenario);
        } catch (Fail f) {
            status = "fail";
            detail = f.getMessage();
        } catch (NotApplicable n) {
            status = "n/a";
            detail = n.getMessage();
        } catch (NotYet n) {
            status = "not_yet";
            detail = n.getMessage();
        } catch (Throwable t) {
            status = "fail";
            Throwable c = unwrap(t);
            detail = c.getClass().getSimpleName() + ": " + c.getMessage();
        }
        System.out.println("@@RESULT {\"status\":" + q(status) + ",\"detail\":" + q(detail) + ",\"obs\":" + json(obs) + "}");
        System.out.flush();
        // Client threads (e.g. a producer stuck on a dead broker) must not keep the JVM alive.
        Runtime.getRuntime().halt(0);
    }

    static void run(String s) throws Exception {
        switch (s) {
            case "metadata": metadata(); break;
            case "topic-admin": topicAdmin(); break;
            case "codec-none": codec("none"); break;
            case "codec-gzip": codec("gzip"); break;
            case "codec-snappy": codec("snappy"); break;
            case "codec-lz4": codec("lz4"); break;
            case "codec-zstd": codec("zstd"); break;
            case "record-fields": recordFields(); break;
            case "offset-earliest": offsetEarliest(); break;
            case "offset-latest": offsetLatest(); break;
            case "offsets-for-times": offsetsForTimes(); break;
            case "group-rebalance": groupRebalance(); break;
            case "commit-resume": commitResume(); break;
            case "group-rebalance-848": groupRebalance848(); break;
            case "commit-resume-848": commitResume848(); break;
            case "idempotent-produce": idempotent(); break;
            case "transactions": transactions(); break;
            case "eos-pipeline": eosPipeline(); break;
            case "delete-records": deleteRecords(); break;
            case "list-offsets": listOffsets(); break;
            case "err-unknown-topic": errUnknownTopic(); break;
            case "err-record-too-large": errTooLarge(); break;
            case "err-invalid-config": errInvalidConfig(); break;
            case "err-keyless-compacted": errKeylessCompacted(); break;
            case "static-member-848": staticMember848(); break;
            case "authorized-ops": authorizedOps(); break;
            case "share-consume": case "share-release": case "share-lock-timeout": case "share-dlq": case "share-cli":
                shareScenario(s); break;
            case "sec-tls": case "sec-mtls": case "sec-plain": case "sec-scram-256": case "sec-scram-512":
            case "sec-sasl-ssl": case "sec-plaintext-to-tls": case "sec-acl": case "sec-oauth":
                SecurityScenarios.run(s); break;
            case "sec-quota": QuotaScenarios.run(s); break;
            default: throw new NotApplicable("no such scenario in the Java driver: " + s);
        }
    }

    /**
     * KIP-932 share groups: the scenarios use the kafka-clients 4.4 share consumer API
     * (KafkaShareConsumer, AcknowledgeType, commitSync with per-partition results, the share-group
     * admin calls) and run only on the 4.4 classpath. ShareScenarios is loaded only after this check.
     */
    static void shareScenario(String s) throws Exception {
        // What AppInfoParser reads (that class moved to utils.internals in 4.4).
        Properties info = new Properties();
        try (var in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) info.load(in);
        }
        String v = info.getProperty("version", "0.0.0");
        String[] mm = v.split("[.-]");
        int major = Integer.parseInt(mm[0]), minor = mm.length > 1 ? Integer.parseInt(mm[1]) : 0;
        if (major < 4 || major == 4 && minor < 4) {
            throw new NotApplicable("share-group scenarios are written for the kafka-clients 4.4 share consumer API; this is kafka-clients " + v
                + (major < 4 ? " (its internal KafkaShareConsumer predates KIP-932's early access in 4.0)"
                              : " (KIP-932 share groups are early access in 4.0, preview in 4.1, production-ready from 4.2)"));
        }
        ShareScenarios.run(s);
    }

    // ---------------------------------------------------------------- clients

    static Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("client.id", "compat-java");
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        return p;
    }

    static Admin admin() {
        return Admin.create(common());
    }

    static KafkaProducer<String, String> producer(String... kv) {
        Properties p = common();
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("max.block.ms", "15000");
        p.put("delivery.timeout.ms", "20000");
        p.put("linger.ms", "5");
        for (int i = 0; i < kv.length; i += 2) p.put(kv[i], kv[i + 1]);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String... kv) {
        Properties p = common();
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        for (int i = 0; i < kv.length; i += 2) p.put(kv[i], kv[i + 1]);
        return new KafkaConsumer<>(p);
    }

    static void createTopic(Admin a, String name, int partitions, Map<String, String> configs) throws Exception {
        NewTopic nt = new NewTopic(name, partitions, (short) 1);
        if (configs != null) nt.configs(configs);
        a.createTopics(List.of(nt)).all().get();
    }

    static void createTopic(String name, int partitions, Map<String, String> configs) throws Exception {
        try (Admin a = admin()) {
            createTopic(a, name, partitions, configs);
        }
    }

    static List<ConsumerRecord<String, String>> readAssigned(KafkaConsumer<String, String> c, int n, long timeoutMs) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long end = System.currentTimeMillis() + timeoutMs;
        while (out.size() < n && System.currentTimeMillis() < end) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r);
        }
        return out;
    }

    static List<ConsumerRecord<String, String>> readFromStart(String t, int partition, int n, String... kv) {
        try (KafkaConsumer<String, String> c = consumer(kv)) {
            TopicPartition tp = new TopicPartition(t, partition);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            return readAssigned(c, n, 10000);
        }
    }

    static List<RecordMetadata> produceValues(KafkaProducer<String, String> p, String t, List<String> values) throws Exception {
        List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < values.size(); i++) fs.add(p.send(new ProducerRecord<>(t, 0, "k-" + i, values.get(i))));
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (var f : fs) out.add(f.get());
        return out;
    }

    static List<String> vals(int n, String prefix) {
        List<String> v = new ArrayList<>();
        for (int i = 0; i < n; i++) v.add(prefix + i);
        return v;
    }

    // ---------------------------------------------------------------- scenarios

    static void metadata() throws Exception {
        try (Admin a = admin()) {
            DescribeClusterResult d = a.describeCluster();
            Collection<Node> nodes = d.nodes().get();
            String cid = d.clusterId().get();
            Node ctl = d.controller().get();
            obs.put("brokers", nodes.size());
            Set<String> advertised = new HashSet<>();
            for (Node n : nodes) advertised.add(n.host() + ":" + n.port());
            boolean match = advertised.equals(new HashSet<>(Arrays.asList(bootstrap.split(","))));
            int expected = Integer.parseInt(System.getenv().getOrDefault("COMPAT_BROKERS", "1"));
            obs.put("broker_is_bootstrap", match);
            obs.put("has_cluster_id", cid != null && !cid.isEmpty());
            obs.put("has_controller", ctl != null && !ctl.isEmpty());
            check(nodes.size() == expected, "expected exactly " + expected + " broker(s), got " + nodes);
            check(match, "brokers advertised as " + advertised + ", bootstrap was " + bootstrap);
            check(cid != null && !cid.isEmpty(), "no cluster id");
        }
    }

    static void topicAdmin() throws Exception {
        try (Admin a = admin()) {
            createTopic(a, topic, 3, Map.of("retention.ms", "3600000"));
            // KRaft: the broker answering the describe may apply the new topic a moment after
            // the controller answered the create (seen once on Kafka 4.4 as the first cell after
            // start-up): ask again while it is unknown, bounded.
            TopicDescription td = null;
            for (long end = System.currentTimeMillis() + 5000; td == null; Thread.sleep(100)) {
                try {
                    td = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                } catch (ExecutionException e) {
                    if (!"UNKNOWN_TOPIC_OR_PARTITION".equals(errName(e)) || System.currentTimeMillis() >= end) throw e;
                }
            }
            obs.put("partitions", td.partitions().size());
            check(td.partitions().size() == 3, "describe: expected 3 partitions, got " + td.partitions().size());
            for (TopicPartitionInfo pi : td.partitions()) check(pi.leader() != null && pi.leader().id() >= 0, "partition without leader: " + pi);
            check(a.listTopics().names().get().contains(topic), "listTopics does not show the topic");
            ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            String before = a.describeConfigs(List.of(cr)).all().get().get(cr).get("retention.ms").value();
            obs.put("retention_at_create", before);
            check("3600000".equals(before), "retention.ms after create = " + before);
            a.incrementalAlterConfigs(Map.of(cr, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all().get();
            // KRaft applies the change through the metadata log, so the broker may serve the old
            // value for a moment after the response: read until it shows, bounded.
            String after = null;
            for (long end = System.currentTimeMillis() + 5000; System.currentTimeMillis() < end; Thread.sleep(100)) {
                after = a.describeConfigs(List.of(cr)).all().get().get(cr).get("retention.ms").value();
                if ("7200000".equals(after)) break;
            }
            obs.put("retention_after_alter", after);
            check("7200000".equals(after), "retention.ms after alter = " + after);
            a.deleteTopics(List.of(topic)).all().get();
            String err = waitTopicGone(a, topic);
            obs.put("after_delete", err);
            check("UNKNOWN_TOPIC_OR_PARTITION".equals(err), "after delete, describe gave " + err);
        }
    }

    static String waitTopicGone(Admin a, String t) throws InterruptedException {
        long end = System.currentTimeMillis() + 15000;
        String last = "still present";
        while (System.currentTimeMillis() < end) {
            try {
                a.describeTopics(List.of(t)).allTopicNames().get();
            } catch (ExecutionException e) {
                last = errName(e);
                if (last.equals("UNKNOWN_TOPIC_OR_PARTITION")) return last;
            }
            Thread.sleep(200);
        }
        return last;
    }

    static void codec(String codec) throws Exception {
        createTopic(topic, 1, null);
        List<String> values = vals(20, "v-" + codec + "-");
        List<RecordMetadata> md;
        try (KafkaProducer<String, String> p = producer("compression.type", codec, "linger.ms", "50")) {
            md = produceValues(p, topic, values);
        }
        obs.put("produced_offsets", md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
        List<ConsumerRecord<String, String>> got = readFromStart(topic, 0, 20);
        checkExact(got, values, 0);
        obs.put("consumed", got.size());
    }

    static void checkExact(List<ConsumerRecord<String, String>> got, List<String> values, long firstOffset) {
        List<String> gv = new ArrayList<>();
        for (var r : got) gv.add(r.value());
        check(gv.equals(values), "read " + gv.size() + " of " + values.size() + " records, values differ: got " + gv + " expected " + values);
        for (int i = 0; i < got.size(); i++) {
            check(got.get(i).offset() == firstOffset + i, "record " + i + " at offset " + got.get(i).offset());
        }
    }

    static void recordFields() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            ProducerRecord<String, String> r0 = new ProducerRecord<>(topic, 0, BASE_TS + 1000, "k0", "v0");
            r0.headers().add("h1", "a".getBytes(StandardCharsets.UTF_8));
            r0.headers().add("h1", "b".getBytes(StandardCharsets.UTF_8));
            r0.headers().add("h2", "c".getBytes(StandardCharsets.UTF_8));
            ProducerRecord<String, String> r1 = new ProducerRecord<>(topic, 0, BASE_TS + 2000, (String) null, "v1");
            ProducerRecord<String, String> r2 = new ProducerRecord<>(topic, 0, BASE_TS + 3000, "k2", (String) null);
            r2.headers().add("h3", new byte[0]);
            p.send(r0);
            p.send(r1);
            p.send(r2).get();
        }
        List<ConsumerRecord<String, String>> got = readFromStart(topic, 0, 3);
        check(got.size() == 3, "expected 3 records, got " + got.size());
        List<String> desc = new ArrayList<>();
        for (var r : got) {
            StringBuilder h = new StringBuilder();
            for (Header x : r.headers()) h.append(x.key()).append('=').append(x.value() == null ? "<null>" : new String(x.value(), StandardCharsets.UTF_8)).append(';');
            desc.add("key=" + r.key() + " value=" + r.value() + " ts=+" + (r.timestamp() - BASE_TS) + " " + r.timestampType() + " headers=" + h);
        }
        obs.put("records", desc);
        List<String> want = List.of(
            "key=k0 value=v0 ts=+1000 CreateTime headers=h1=a;h1=b;h2=c;",
            "key=null value=v1 ts=+2000 CreateTime headers=",
            "key=k2 value=null ts=+3000 CreateTime headers=h3=;");
        check(desc.equals(want), "round-trip differs: expected " + want + " got " + desc);
    }

    static void offsetEarliest() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, topic, vals(5, "e-"));
        }
        try (KafkaConsumer<String, String> c = consumer("group.id", topic + "-g", "auto.offset.reset", "earliest")) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = readAssigned(c, 5, 15000);
            checkExact(got, vals(5, "e-"), 0);
            obs.put("first_offset", got.get(0).offset());
            obs.put("count", got.size());
        }
    }

    static void offsetLatest() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, topic, vals(5, "old-"));
            try (KafkaConsumer<String, String> c = consumer("group.id", topic + "-g", "auto.offset.reset", "latest")) {
                c.subscribe(List.of(topic));
                long end = System.currentTimeMillis() + 15000;
                while (c.assignment().isEmpty() && System.currentTimeMillis() < end) c.poll(Duration.ofMillis(200));
                check(!c.assignment().isEmpty(), "no assignment within 15s");
                long pos = c.position(new TopicPartition(topic, 0));
                obs.put("position_after_join", pos);
                check(pos == 5, "position with auto.offset.reset=latest is " + pos + ", expected 5");
                produceValues(p, topic, vals(3, "new-"));
                List<ConsumerRecord<String, String>> got = readAssigned(c, 3, 15000);
                checkExact(got, vals(3, "new-"), 5);
                obs.put("saw_old", false);
                obs.put("new_count", got.size());
            }
        }
    }

    static void produceTimestamps(String t, long[] deltas) throws Exception {
        try (KafkaProducer<String, String> p = producer()) {
            for (int i = 0; i < deltas.length; i++) p.send(new ProducerRecord<>(t, 0, BASE_TS + deltas[i], "k" + i, "t-" + i));
            p.flush();
        }
    }

    static void offsetsForTimes() throws Exception {
        createTopic(topic, 1, null);
        produceTimestamps(topic, new long[]{0, 1000, 2000, 3000, 4000});
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = consumer()) {
            Map<String, Object> got = new LinkedHashMap<>();
            for (long d : new long[]{2500, 0, 10000}) {
                OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, BASE_TS + d)).get(tp);
                got.put("ts+" + d, o == null ? -1L : o.offset());
                if (o != null) got.put("ts+" + d + "_found_ts", o.timestamp() - BASE_TS);
            }
            obs.putAll(got);
            check(Long.valueOf(3).equals(got.get("ts+2500")), "offsetsForTimes(+2500) = " + got.get("ts+2500") + ", expected 3");
            check(Long.valueOf(0).equals(got.get("ts+0")), "offsetsForTimes(+0) = " + got.get("ts+0"));
            check(Long.valueOf(-1).equals(got.get("ts+10000")), "offsetsForTimes(future) = " + got.get("ts+10000") + ", expected none");
        }
    }

    static void groupRebalance() throws Exception {
        createTopic(topic, 3, null);
        String g = topic + "-g";
        List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                KafkaConsumer<String, String> c = consumer("group.id", g, "client.id", "compat-java-" + i,
                    "session.timeout.ms", "10000", "heartbeat.interval.ms", "500");
                c.subscribe(List.of(topic));
                cs.add(c);
            }
            String p1 = pollUntilCovered(cs, 3, 25000);
            obs.put("phase1", p1);
            check(p1.equals("1,1,1"), "three members: assignment sizes " + p1 + ", expected 1,1,1");
            cs.remove(2).close(Duration.ofSeconds(5));
            String p2 = pollUntilCovered(cs, 3, 20000);
            obs.put("phase2", p2);
            check(p2.equals("1,2"), "after one left: assignment sizes " + p2 + ", expected 1,2");
        } finally {
            for (var c : cs) c.close(Duration.ofSeconds(2));
        }
    }

    /**
     * KIP-848: the consumer protocol (ConsumerGroupHeartbeat; the broker assigns). GA in
     * kafka-clients 4.0; 3.9 has it as a preview, which works against Apache Kafka 4.1.1 too.
     */
    static String[] protocol848() {
        return new String[] {"group.protocol", "consumer"};
    }

    /** The broker must hold g as a consumer-protocol group (ConsumerGroupDescribe). */
    static void checkConsumerGroupType(String g) throws Exception {
        try (Admin a = admin()) {
            var d = a.describeConsumerGroups(List.of(g)).all().get().get(g);
            obs.put("group_type", String.valueOf(d.type()));
            check(d.type() == GroupType.CONSUMER, "describeConsumerGroups type " + d.type() + ", expected CONSUMER");
        }
    }

    static String[] concat(String[] a, String... b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    static void groupRebalance848() throws Exception {
        String[] proto = protocol848();
        createTopic(topic, 6, null);
        String g = topic + "-g";
        List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                // no session/heartbeat/assignor settings: with the consumer protocol those are the broker's
                KafkaConsumer<String, String> c = consumer(concat(proto, "group.id", g, "client.id", "compat-java-" + i));
                c.subscribe(List.of(topic));
                cs.add(c);
            }
            String p1 = pollUntilCovered(cs, 6, 25000);
            obs.put("phase1", p1);
            check(p1.equals("2,2,2"), "three members: assignment sizes " + p1 + ", expected 2,2,2");
            checkConsumerGroupType(g);
            cs.remove(2).close(Duration.ofSeconds(5));
            String p2 = pollUntilCovered(cs, 6, 20000);
            obs.put("phase2", p2);
            check(p2.equals("3,3"), "after one left: assignment sizes " + p2 + ", expected 3,3");
        } finally {
            for (var c : cs) c.close(Duration.ofSeconds(2));
        }
    }

    static void commitResume848() throws Exception {
        String[] proto = protocol848();
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, topic, vals(10, "c-"));
        }
        String g = topic + "-g";
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = consumer(concat(proto, "group.id", g))) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = readAssigned(c, 4, 15000);
            check(got.size() >= 4, "first member read " + got.size() + " records");
            c.commitSync(Map.of(tp, new OffsetAndMetadata(4, "compat")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            obs.put("committed", om == null ? -1 : om.offset());
            obs.put("committed_metadata", om == null ? null : om.metadata());
            check(om != null && om.offset() == 4, "committed() = " + om);
        }
        try (KafkaConsumer<String, String> c = consumer(concat(proto, "group.id", g, "auto.offset.reset", "none"))) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = readAssigned(c, 6, 15000);
            obs.put("resumed_first", got.isEmpty() ? -1 : got.get(0).offset());
            obs.put("resumed_count", got.size());
            checkExact(got, vals(10, "c-").subList(4, 10), 4);
        }
        checkConsumerGroupType(g);
    }

    /** Poll every member until their assignments are disjoint and cover `parts` partitions. */
    static String pollUntilCovered(List<KafkaConsumer<String, String>> cs, int parts, long timeoutMs) {
        long end = System.currentTimeMillis() + timeoutMs;
        String sizes = "";
        while (System.currentTimeMillis() < end) {
            for (var c : cs) c.poll(Duration.ofMillis(100));
            Set<TopicPartition> all = new HashSet<>();
            int total = 0;
            List<Integer> sz = new ArrayList<>();
            for (var c : cs) {
                all.addAll(c.assignment());
                total += c.assignment().size();
                sz.add(c.assignment().size());
            }
            Collections.sort(sz);
            sizes = sz.toString().replaceAll("[\\[\\] ]", "");
            if (all.size() == parts && total == parts && !sz.contains(0)) return sizes;
        }
        return sizes + " (timed out)";
    }

    static void commitResume() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, topic, vals(10, "c-"));
        }
        String g = topic + "-g";
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = consumer("group.id", g)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = readAssigned(c, 4, 15000);
            check(got.size() >= 4, "first member read " + got.size() + " records");
            c.commitSync(Map.of(tp, new OffsetAndMetadata(4, "compat")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            obs.put("committed", om == null ? -1 : om.offset());
            obs.put("committed_metadata", om == null ? null : om.metadata());
            check(om != null && om.offset() == 4, "committed() = " + om);
        }
        try (KafkaConsumer<String, String> c = consumer("group.id", g, "auto.offset.reset", "none")) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = readAssigned(c, 6, 15000);
            obs.put("resumed_first", got.isEmpty() ? -1 : got.get(0).offset());
            obs.put("resumed_count", got.size());
            checkExact(got, vals(10, "c-").subList(4, 10), 4);
        }
    }

    /** include_*_authorized_operations: without an authorizer, or as a super user (PLAINTEXT is User:ANONYMOUS), every operation of the resource. */
    static void authorizedOps() throws Exception {
        createTopic(topic, 1, null);
        String g = topic + "-g";
        try (KafkaConsumer<String, String> c = consumer("group.id", g)) {
            c.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(0)));
        }
        try (Admin a = admin()) {
            Set<org.apache.kafka.common.acl.AclOperation> cluster = a.describeCluster(
                new DescribeClusterOptions().includeAuthorizedOperations(true)).authorizedOperations().get();
            Set<org.apache.kafka.common.acl.AclOperation> none = a.describeCluster().authorizedOperations().get();
            TopicDescription td = a.describeTopics(List.of(topic), new DescribeTopicsOptions().includeAuthorizedOperations(true))
                .allTopicNames().get().get(topic);
            ConsumerGroupDescription gd = a.describeConsumerGroups(List.of(g),
                new DescribeConsumerGroupsOptions().includeAuthorizedOperations(true)).all().get().get(g);
            obs.put("cluster", sortedNames(cluster));
            obs.put("cluster_not_requested", none == null ? null : sortedNames(none));
            obs.put("topic", sortedNames(td.authorizedOperations()));
            obs.put("group", sortedNames(gd.authorizedOperations()));
            check(none == null, "authorized operations not requested, yet answered: " + none);
            requireOps("cluster", cluster, "ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE");
            requireOps("topic", td.authorizedOperations(), "ALTER", "ALTER_CONFIGS", "CREATE", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS", "READ", "WRITE");
            requireOps("group", gd.authorizedOperations(), "DELETE", "DESCRIBE", "READ");
        }
    }

    static List<String> sortedNames(Set<org.apache.kafka.common.acl.AclOperation> ops) {
        List<String> names = new ArrayList<>();
        if (ops != null) for (org.apache.kafka.common.acl.AclOperation o : ops) names.add(o.name());
        Collections.sort(names);
        return names;
    }

    static void requireOps(String what, Set<org.apache.kafka.common.acl.AclOperation> ops, String... want) {
        List<String> got = sortedNames(ops);
        for (String w : want) check(got.contains(w), what + " authorized operations " + got + " lack " + w);
    }

    static void idempotent() throws Exception {
        createTopic(topic, 1, null);
        List<RecordMetadata> md;
        try (KafkaProducer<String, String> p = producer("enable.idempotence", "true", "acks", "all", "max.in.flight.requests.per.connection", "5")) {
            md = produceValues(p, topic, vals(10, "i-"));
        }
        obs.put("produced_offsets", md.get(0).offset() + ".." + md.get(9).offset());
        checkExact(readFromStart(topic, 0, 10), vals(10, "i-"), 0);
        try (Admin a = admin()) {
            var st = a.describeProducers(List.of(new TopicPartition(topic, 0))).all().get().get(new TopicPartition(topic, 0));
            obs.put("active_producers", st.activeProducers().size());
            if (!st.activeProducers().isEmpty()) obs.put("last_sequence", st.activeProducers().get(0).lastSequence());
            check(st.activeProducers().size() == 1, "DescribeProducers: " + st.activeProducers());
            check(st.activeProducers().get(0).lastSequence() == 9, "last sequence " + st.activeProducers().get(0).lastSequence());
        }
    }

    static void transactions() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer("transactional.id", topic + "-tx", "enable.idempotence", "true")) {
            p.initTransactions();
            p.beginTransaction();
            for (String v : List.of("a0", "a1", "a2")) p.send(new ProducerRecord<>(topic, 0, null, v));
            p.commitTransaction();
            p.beginTransaction();
            for (String v : List.of("b0", "b1")) p.send(new ProducerRecord<>(topic, 0, null, v));
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 0, null, "c0"));
            p.commitTransaction();
        }
        List<String> rc = new ArrayList<>(), ru = new ArrayList<>();
        for (var r : readFromStart(topic, 0, 4, "isolation.level", "read_committed")) rc.add(r.value());
        for (var r : readFromStart(topic, 0, 6, "isolation.level", "read_uncommitted")) ru.add(r.value());
        obs.put("read_committed", rc);
        obs.put("read_uncommitted_count", ru.size());
        check(rc.equals(List.of("a0", "a1", "a2", "c0")), "read_committed saw " + rc);
        check(ru.equals(List.of("a0", "a1", "a2", "b0", "b1", "c0")), "read_uncommitted saw " + ru);
        try (KafkaConsumer<String, String> c = consumer("isolation.level", "read_committed")) {
            long end = c.endOffsets(List.of(new TopicPartition(topic, 0))).get(new TopicPartition(topic, 0));
            obs.put("end_offset", end);
            check(end == 9, "end offset (LSO) " + end + ", expected 9 (6 records + 3 markers)");
        }
    }

    /**
     * eos-pipeline: consume-transform-produce in a consumer group with transactions. 20 records
     * v0..v19 on the input; each poll (max.poll.records=10) is one transaction that writes the
     * uppercased values to `<topic>-out` and commits the consumed offsets through
     * sendOffsetsToTransaction(offsets, consumer.groupMetadata()). After the first commit one
     * extra transaction writes ABORTED-0..4 and offsets +5, then aborts.
     */
    static void eosPipeline() throws Exception {
        String in = topic, out = topic + "-out", group = topic + "-g";
        TopicPartition tin = new TopicPartition(in, 0);
        try (Admin a = admin()) {
            createTopic(a, in, 1, null);
            createTopic(a, out, 1, null);
        }
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, in, vals(20, "v"));
        }
        List<Integer> txns = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer("transactional.id", topic + "-eos");
             KafkaConsumer<String, String> c = consumer("group.id", group, "isolation.level", "read_committed",
                                                        "max.poll.records", "10")) {
            p.initTransactions();
            c.subscribe(List.of(in));
            int done = 0;
            boolean aborted = false;
            long deadline = System.currentTimeMillis() + 30000;
            while (done < 20 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                if (recs.isEmpty()) continue;
                p.beginTransaction();
                long next = -1;
                for (ConsumerRecord<String, String> r : recs) {
                    p.send(new ProducerRecord<>(out, 0, r.key(), r.value().toUpperCase()));
                    next = r.offset() + 1;
                }
                p.sendOffsetsToTransaction(Map.of(tin, new OffsetAndMetadata(next)), c.groupMetadata());
                p.commitTransaction();
                done += recs.count();
                txns.add(recs.count());
                if (!aborted) {
                    aborted = true;
                    p.beginTransaction();
                    for (int i = 0; i < 5; i++) p.send(new ProducerRecord<>(out, 0, null, "ABORTED-" + i));
                    p.sendOffsetsToTransaction(Map.of(tin, new OffsetAndMetadata(next + 5)), c.groupMetadata());
                    p.flush();
                    p.abortTransaction();
                    OffsetAndMetadata om = c.committed(Set.of(tin)).get(tin);
                    obs.put("committed_after_abort", om == null ? -1 : om.offset());
                    check(om != null && om.offset() == next, "committed offset after the aborted transaction: " + om + ", expected " + next);
                }
            }
        }
        obs.put("transactions", txns);
        check(txns.size() >= 2, "committed transactions (records each): " + txns);
        eosVerify(group);
    }

    static void eosVerify(String group) throws Exception {
        TopicPartition tin = new TopicPartition(topic, 0);
        List<String> want = new ArrayList<>();
        for (String v : vals(20, "v")) want.add(v.toUpperCase());
        List<String> rc = drainValues(topic + "-out", 20, "read_committed");
        List<String> ru = drainValues(topic + "-out", 25, "read_uncommitted");
        obs.put("read_committed", rc);
        obs.put("read_uncommitted_count", ru.size());
        try (Admin a = admin()) {
            var offs = a.listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec()),
                    new ListConsumerGroupOffsetsOptions().requireStable(true)).partitionsToOffsetAndMetadata(group).get();
            OffsetAndMetadata om = offs.get(tin);
            obs.put("committed", om == null ? -1 : om.offset());
        }
        check(rc.equals(want), "read_committed output " + rc + ", expected V0..V19 once each");
        check(ru.size() == 25, "read_uncommitted saw " + ru.size() + " records, expected 25 (20 + 5 aborted)");
        check(Long.valueOf(20).equals(obs.get("committed")), "group's committed input offset " + obs.get("committed") + ", expected 20");
    }

    /** Reads a partition from the start until n records arrived, then 1.5 s more to catch extras. */
    static List<String> drainValues(String t, int n, String isolation) {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("isolation.level", isolation)) {
            TopicPartition tp = new TopicPartition(t, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = System.currentTimeMillis() + 15000, quiet = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(end, quiet)) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) out.add(r.value());
                if (out.size() >= n && quiet == Long.MAX_VALUE) quiet = System.currentTimeMillis() + 1500;
            }
        }
        return out;
    }

    static void deleteRecords() throws Exception {
        createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = producer()) {
            produceValues(p, topic, vals(10, "d-"));
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = admin()) {
            DeletedRecords dr = a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp).get();
            obs.put("low_watermark", dr.lowWatermark());
            check(dr.lowWatermark() == 4, "low watermark " + dr.lowWatermark());
            long earliest = a.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get().offset();
            obs.put("earliest", earliest);
            check(earliest == 4, "earliest after delete " + earliest);
        }
        List<ConsumerRecord<String, String>> got = readFromStart(topic, 0, 6);
        obs.put("first_consumed", got.isEmpty() ? -1 : got.get(0).offset());
        checkExact(got, vals(10, "d-").subList(4, 10), 4);
    }

    static void listOffsets() throws Exception {
        createTopic(topic, 1, null);
        produceTimestamps(topic, new long[]{1000, 2000, 9000, 3000, 4000});
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = admin()) {
            long e = a.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp).get().offset();
            long l = a.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp).get().offset();
            var mx = a.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp).get();
            obs.put("earliest", e);
            obs.put("latest", l);
            obs.put("max_timestamp_offset", mx.offset());
            check(e == 0 && l == 5, "earliest/latest = " + e + "/" + l);
            check(mx.offset() == 2 && mx.timestamp() == BASE_TS + 9000, "max-timestamp gave offset " + mx.offset() + " ts+" + (mx.timestamp() - BASE_TS));
        }
    }

    static void errUnknownTopic() throws Exception {
        try (Admin a = admin()) {
            try {
                a.describeTopics(List.of(topic)).allTopicNames().get();
                throw new Fail("describeTopics of a missing topic succeeded");
            } catch (ExecutionException e) {
                obs.put("describe_error", errName(e));
            }
        }
        try (KafkaConsumer<String, String> c = consumer("allow.auto.create.topics", "false")) {
            Map<String, List<PartitionInfo>> topics = c.listTopics();
            obs.put("listed", topics.containsKey(topic));
        }
        check("UNKNOWN_TOPIC_OR_PARTITION".equals(obs.get("describe_error")), "describe error " + obs.get("describe_error"));
        check(Boolean.FALSE.equals(obs.get("listed")), "missing topic listed");
    }

    static void errTooLarge() throws Exception {
        createTopic(topic, 1, Map.of("max.message.bytes", "2048"));
        try (KafkaProducer<String, String> p = producer("retries", "0", "enable.idempotence", "false", "compression.type", "none")) {
            try {
                p.send(new ProducerRecord<>(topic, 0, "big", "x".repeat(10000))).get();
                throw new Fail("10 kB record accepted by a topic with max.message.bytes=2048");
            } catch (ExecutionException e) {
                obs.put("error", errName(e));
            }
            RecordMetadata ok = p.send(new ProducerRecord<>(topic, 0, "small", "ok")).get();
            obs.put("next_offset", ok.offset());
            check("MESSAGE_TOO_LARGE".equals(obs.get("error")), "error " + obs.get("error") + ", expected MESSAGE_TOO_LARGE");
            check(ok.offset() == 0, "small record after the rejected one landed at offset " + ok.offset());
        }
    }

    /** A compacted log keeps the latest value per key, so Kafka refuses records without one. */
    static void errKeylessCompacted() throws Exception {
        createTopic(topic, 1, Map.of("cleanup.policy", "compact"));
        try (KafkaProducer<String, String> p = producer("retries", "0", "enable.idempotence", "false", "compression.type", "none")) {
            try {
                p.send(new ProducerRecord<>(topic, 0, null, "no-key")).get();
                throw new Fail("a record without a key was accepted by a cleanup.policy=compact topic");
            } catch (ExecutionException e) {
                Throwable c = unwrap(e);
                obs.put("error", errName(e));
                obs.put("exception", c.getClass().getSimpleName());
            }
            RecordMetadata ok = p.send(new ProducerRecord<>(topic, 0, "k", "keyed")).get();
            obs.put("next_offset", ok.offset());
            check("INVALID_RECORD".equals(obs.get("error")), "error " + obs.get("error") + " (" + obs.get("exception") + "), expected INVALID_RECORD");
            check("InvalidRecordException".equals(obs.get("exception")), "exception " + obs.get("exception") + ", expected InvalidRecordException");
            check(ok.offset() == 0, "keyed record after the refused one landed at offset " + ok.offset());
        }
        List<ConsumerRecord<String, String>> got = readFromStart(topic, 0, 1);
        obs.put("read", got.stream().map(r -> r.offset() + ":" + r.key()).toList());
        check(got.size() == 1 && got.get(0).offset() == 0 && "k".equals(got.get(0).key()),
              "log holds " + obs.get("read") + ", expected only 0:k");
    }

    /**
     * KIP-848 static membership: the broker refuses a join with a group.instance.id a live member
     * owns (UNRELEASED_INSTANCE_ID, fatal to that consumer, surfaced by poll); once the owner
     * leaves with epoch -2 (close of a static member), a new incarnation takes the instance id and
     * its partitions.
     */
    static void staticMember848() throws Exception {
        String[] proto = protocol848();
        createTopic(topic, 2, null);
        String g = topic + "-g";
        String[] stat = concat(proto, "group.id", g, "group.instance.id", "compat-static");
        List<KafkaConsumer<String, String>> open = new ArrayList<>();
        try {
            KafkaConsumer<String, String> first = consumer(concat(stat, "client.id", "compat-java-first"));
            open.add(first);
            first.subscribe(List.of(topic));
            String p1 = pollUntilCovered(List.of(first), 2, 25000);
            obs.put("first", p1);
            check(p1.equals("2"), "static member: assignment sizes " + p1 + ", expected 2");

            KafkaConsumer<String, String> second = consumer(concat(stat, "client.id", "compat-java-second"));
            open.add(second);
            second.subscribe(List.of(topic));
            String secondSaw = "nothing within 15 s";
            long end = System.currentTimeMillis() + 15000;
            while (System.currentTimeMillis() < end) {
                try {
                    second.poll(Duration.ofMillis(200));
                    first.poll(Duration.ofMillis(50));
                    if (!second.assignment().isEmpty()) { secondSaw = "joined with " + second.assignment().size() + " partitions"; break; }
                } catch (KafkaException e) {
                    secondSaw = errName(e) + " (" + unwrap(e).getClass().getSimpleName() + ": " + unwrap(e).getMessage() + ")";
                    break;
                }
            }
            obs.put("second", secondSaw);
            obs.put("first_after_second", first.assignment().size());
            check(secondSaw.startsWith("UNRELEASED_INSTANCE_ID (UnreleasedInstanceIdException"),
                  "second consumer with the owner's instance id: " + secondSaw + ", expected UNRELEASED_INSTANCE_ID");
            check(first.assignment().size() == 2, "the owner lost its partitions to the refused member: " + first.assignment());
            open.remove(second);
            second.close(Duration.ofSeconds(2));

            open.remove(first);
            first.close(Duration.ofSeconds(5));  // a static member leaves with epoch -2
            KafkaConsumer<String, String> third = consumer(concat(stat, "client.id", "compat-java-third"));
            open.add(third);
            third.subscribe(List.of(topic));
            String p3 = pollUntilCovered(List.of(third), 2, 20000);
            obs.put("third", p3);
            check(p3.equals("2"), "new incarnation after the owner closed: assignment sizes " + p3 + ", expected 2");
        } finally {
            for (var c : open) c.close(Duration.ofSeconds(2));
        }
    }

    static void errInvalidConfig() throws Exception {
        try (Admin a = admin()) {
            try {
                createTopic(a, topic, 1, Map.of("cleanup.policy", "bogus"));
                throw new Fail("CreateTopics with cleanup.policy=bogus succeeded");
            } catch (ExecutionException e) {
                obs.put("error", errName(e));
            }
            boolean exists = a.listTopics().names().get().contains(topic);
            obs.put("created", exists);
            check("INVALID_CONFIG".equals(obs.get("error")), "error " + obs.get("error") + ", expected INVALID_CONFIG");
            check(!exists, "topic exists after a rejected create");
        }
    }

    // ---------------------------------------------------------------- helpers

    static void check(boolean ok, String msg) {
        if (!ok) throw new Fail(msg);
    }

    static Throwable unwrap(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof KafkaException && !(t instanceof ApiException)) && t.getCause() != null
               && t.getCause() != t) t = t.getCause();
        return t;
    }

    static String errName(Throwable e) {
        Throwable c = unwrap(e);
        Errors er = Errors.forException(c);
        return er == Errors.UNKNOWN_SERVER_ERROR ? "UNKNOWN_SERVER_ERROR(" + c.getClass().getSimpleName() + ")" : er.name();
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch)); else b.append(ch);
            }
        }
        return b.append('"').toString();
    }

    @SuppressWarnings("unchecked")
    static String json(Object o) {
        if (o == null) return "null";
        if (o instanceof String) return q((String) o);
        if (o instanceof Number || o instanceof Boolean) return o.toString();
        if (o instanceof Map) {
            StringJoiner j = new StringJoiner(",", "{", "}");
            for (var e : ((Map<String, Object>) o).entrySet()) j.add(q(e.getKey()) + ":" + json(e.getValue()));
            return j.toString();
        }
        if (o instanceof Collection) {
            StringJoiner j = new StringJoiner(",", "[", "]");
            for (Object x : (Collection<Object>) o) j.add(json(x));
            return j.toString();
        }
        return q(o.toString());
    }

}
