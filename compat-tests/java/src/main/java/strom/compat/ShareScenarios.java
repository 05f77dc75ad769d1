package strom.compat;

import static strom.compat.Main.admin;
import static strom.compat.Main.check;
import static strom.compat.Main.common;
import static strom.compat.Main.createTopic;
import static strom.compat.Main.obs;
import static strom.compat.Main.producer;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Share groups (KIP-932, "queues for Kafka") with the kafka-clients 4.4 API: KafkaShareConsumer
 * in explicit acknowledgement mode (acknowledge(record, AcknowledgeType) + commitSync returning a
 * result per partition), the share-group admin calls and the real kafka-share-groups /
 * kafka-configs tool classes. Kept out of Main so that Main still loads on the 4.1 and 3.9
 * classpaths: Main answers n/a for these scenarios there before this class is touched.
 *
 * Every scenario sets the group config share.auto.offset.reset=earliest first (the default,
 * latest, would skip records produced before the group's first fetch).
 */
final class ShareScenarios {
    private ShareScenarios() {}

    static void run(String s) throws Exception {
        switch (s) {
            case "share-consume": consume(); break;
            case "share-release": release(); break;
            case "share-lock-timeout": lockTimeout(); break;
            case "share-dlq": dlq(); break;
            case "share-cli": cli(); break;
            default: throw new Main.NotApplicable("no such share scenario in the Java driver: " + s);
        }
    }

    // ---------------------------------------------------------------- helpers

    static void log(String m) {
        System.err.println("[share " + String.format("%tT.%<tL", System.currentTimeMillis()) + "] " + m);
        System.err.flush();
    }

    static KafkaShareConsumer<String, String> shareConsumer(String group, String clientId) {
        Properties p = common();
        p.put("group.id", group);
        p.put("client.id", clientId);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("share.acknowledgement.mode", "explicit");
        return new KafkaShareConsumer<>(p);
    }

    /** Sets group configs with IncrementalAlterConfigs and describes until the broker shows them. */
    static void setGroupConfigs(String group, Map<String, String> cfg) throws Exception {
        ConfigResource cr = new ConfigResource(ConfigResource.Type.GROUP, group);
        List<AlterConfigOp> ops = new ArrayList<>();
        for (var e : cfg.entrySet()) ops.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET));
        try (Admin a = admin()) {
            a.incrementalAlterConfigs(Map.of(cr, ops)).all().get();
            Map<String, String> seen = new TreeMap<>();
            for (long end = System.currentTimeMillis() + 10000; System.currentTimeMillis() < end; Thread.sleep(100)) {
                Config c = a.describeConfigs(List.of(cr)).all().get().get(cr);
                seen.clear();
                for (String k : cfg.keySet()) {
                    ConfigEntry ce = c.get(k);
                    seen.put(k, ce == null ? null : ce.value());
                }
                if (seen.equals(new TreeMap<>(cfg))) return;
            }
            throw new Main.Fail("group configs set with IncrementalAlterConfigs but DescribeConfigs shows " + seen + ", expected " + new TreeMap<>(cfg));
        }
    }

    static void produceTo(String t, int partitions, int n, String prefix) throws Exception {
        try (KafkaProducer<String, String> p = producer()) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) fs.add(p.send(new ProducerRecord<>(t, i % partitions, "k-" + i, prefix + i)));
            p.flush();
            for (var f : fs) f.get();
        }
    }

    static String pos(ConsumerRecord<String, String> r) {
        return r.partition() + ":" + r.offset();
    }

    static int dc(ConsumerRecord<String, String> r) {
        return r.deliveryCount().map(Short::intValue).orElse(-1);
    }

    /** commitSync and the per-partition results: every partition must report success. */
    static void commit(KafkaShareConsumer<String, String> c, List<String> problems) {
        Map<TopicIdPartition, Optional<KafkaException>> res = c.commitSync(Duration.ofSeconds(10));
        for (var e : res.entrySet()) {
            if (e.getValue().isPresent()) {
                problems.add("commitSync " + e.getKey().topicPartition() + ": " + e.getValue().get());
            }
        }
    }

    static void closeQuietly(KafkaShareConsumer<String, String> c) {
        if (c == null) return;
        try {
            c.close(Duration.ofSeconds(5));
        } catch (Exception e) {
            log("close: " + e);
        }
    }

    static ShareGroupDescription describe(Admin a, String g) throws Exception {
        return a.describeShareGroups(List.of(g)).all().get().get(g);
    }

    /** Member -> sorted partitions of its assignment, as "client:t0,1". */
    static List<String> assignments(ShareGroupDescription d) {
        List<String> out = new ArrayList<>();
        for (ShareMemberDescription m : d.members()) {
            List<Integer> ps = new ArrayList<>();
            for (TopicPartition tp : m.assignment().topicPartitions()) ps.add(tp.partition());
            Collections.sort(ps);
            out.add(m.clientId() + ":" + ps);
        }
        Collections.sort(out);
        return out;
    }

    /**
     * Waits until the group has `members` members whose assignments together cover `parts`
     * partitions, with no partition in two assignments while there are enough partitions for
     * everyone. A member's assignment is what its last heartbeat was given (in Kafka and Strom
     * alike), so a member that joined early may still show, and fetch, partitions now meant for
     * another until its next heartbeat.
     */
    static String waitMembers(String g, int members, int parts, long timeoutMs) throws Exception {
        String last = "no description";
        try (Admin a = admin()) {
            for (long end = System.currentTimeMillis() + timeoutMs; System.currentTimeMillis() < end; Thread.sleep(250)) {
                try {
                    ShareGroupDescription d = describe(a, g);
                    Set<TopicPartition> all = new HashSet<>();
                    boolean everyone = true;
                    int assigned = 0;
                    for (ShareMemberDescription m : d.members()) {
                        all.addAll(m.assignment().topicPartitions());
                        everyone &= !m.assignment().topicPartitions().isEmpty();
                        assigned += m.assignment().topicPartitions().size();
                    }
                    last = d.groupState() + " " + assignments(d);
                    boolean settled = members > parts || assigned == parts;
                    if (d.members().size() == members && everyone && all.size() == parts && settled) return last;
                } catch (ExecutionException e) {
                    last = Main.errName(e);
                }
            }
        }
        return last + " (timed out)";
    }

    // ---------------------------------------------------------------- share-consume

    /**
     * Three KafkaShareConsumers of one share group, each polling in its own thread (explicit
     * mode, every record ACCEPTed, commitSync after each batch), 300 records over 3 partitions,
     * produced once all three members have an assignment: each record is delivered exactly once
     * (delivery count 1), every commit succeeds, and every consumer gets some records.
     */
    static void consume() throws Exception {
        final int n = 300, parts = 3, consumers = 3;
        String g = Main.topic + "-g";
        createTopic(Main.topic, parts, null);
        setGroupConfigs(g, Map.of("share.auto.offset.reset", "earliest"));
        Map<String, Integer> deliveries = new ConcurrentHashMap<>();
        Map<String, String> values = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        int[] perConsumer = new int[consumers];
        // consumer -> partition -> records, for the log and a failure's detail
        List<Map<Integer, Integer>> perPartition = new ArrayList<>();
        for (int i = 0; i < consumers; i++) perPartition.add(new ConcurrentSkipListMap<>());
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService pool = Executors.newFixedThreadPool(consumers);
        List<Future<?>> jobs = new ArrayList<>();
        long deadline = System.currentTimeMillis() + 40000;
        for (int i = 0; i < consumers; i++) {
            final int idx = i;
            jobs.add(pool.submit(() -> {
                KafkaShareConsumer<String, String> c = shareConsumer(g, "compat-share-" + idx);
                try {
                    c.subscribe(List.of(Main.topic));
                    while (!stop.get() && System.currentTimeMillis() < deadline) {
                        ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                        for (ConsumerRecord<String, String> r : recs) {
                            deliveries.merge(pos(r), 1, Integer::sum);
                            values.put(pos(r), r.value());
                            if (dc(r) != 1) problems.add("record " + pos(r) + " delivered with delivery count " + dc(r));
                            c.acknowledge(r, AcknowledgeType.ACCEPT);
                            synchronized (perConsumer) { perConsumer[idx]++; }
                            perPartition.get(idx).merge(r.partition(), 1, Integer::sum);
                        }
                        if (!recs.isEmpty()) commit(c, problems);
                    }
                } catch (Exception e) {
                    problems.add("consumer " + idx + ": " + Main.unwrap(e).getClass().getSimpleName() + ": " + Main.unwrap(e).getMessage());
                } finally {
                    closeQuietly(c);
                }
                return null;
            }));
        }
        String members = "?";
        try {
            members = waitMembers(g, consumers, parts, 20000);
            // Which member got which partition varies from run to run: the observable is the sizes.
            List<Integer> sizes = new ArrayList<>();
            java.util.regex.Matcher m = java.util.regex.Pattern.compile(":\\[([0-9, ]*)\\]").matcher(members);
            while (m.find()) sizes.add(m.group(1).isBlank() ? 0 : m.group(1).split(",").length);
            Collections.sort(sizes);
            obs.put("assignment_sizes_before_produce", sizes.toString() + (members.endsWith("(timed out)") ? " (timed out)" : ""));
            log("group before producing: " + members);
            // A ShareFetch a member sent before its latest assignment still names the partitions
            // it had then and waits up to fetch.max.wait.ms (500 ms) for records: let those end,
            // or a member that was alone at first may acquire records of every partition.
            Thread.sleep(1500);
            produceTo(Main.topic, parts, n, "s-");
            long end = Math.min(deadline, System.currentTimeMillis() + 25000);
            while (deliveries.size() < n && System.currentTimeMillis() < end && problems.isEmpty()) Thread.sleep(100);
            Thread.sleep(2000);  // duplicates would show up here
        } finally {
            stop.set(true);
            for (Future<?> f : jobs) {
                try { f.get(10, TimeUnit.SECONDS); } catch (Exception e) { problems.add("consumer thread: " + e); }
            }
            pool.shutdownNow();
        }
        List<String> twice = new ArrayList<>();
        for (var e : deliveries.entrySet()) if (e.getValue() != 1) twice.add(e.getKey() + "x" + e.getValue());
        Collections.sort(twice);
        Set<String> want = new HashSet<>();
        for (int i = 0; i < n; i++) want.add("s-" + i);
        List<Integer> counts = new ArrayList<>();
        for (int x : perConsumer) counts.add(x);
        obs.put("distinct_records", deliveries.size());
        obs.put("delivered_twice", twice.size());
        obs.put("per_consumer_nonzero", counts.stream().allMatch(x -> x > 0));
        log("per consumer " + counts + " (partition=records: " + perPartition + "), problems " + problems);
        check(problems.isEmpty(), "problems: " + String.join("; ", problems.subList(0, Math.min(5, problems.size()))));
        check(deliveries.size() == n, deliveries.size() + " of " + n + " records delivered (per consumer " + counts + ")");
        check(new HashSet<>(values.values()).equals(want), "delivered values differ from s-0..s-" + (n - 1));
        check(twice.isEmpty(), "records delivered more than once: " + twice.subList(0, Math.min(10, twice.size())));
        check(counts.stream().allMatch(x -> x > 0), "a consumer got no records: per consumer " + counts + " (partition=records " + perPartition + "; group before producing " + members + ")");
    }

    // ---------------------------------------------------------------- share-release

    /**
     * 5 records; offset 1 is RELEASEd on its first delivery, the rest ACCEPTed. It comes back with
     * delivery count 2; accepted then, nothing is delivered afterwards.
     */
    static void release() throws Exception {
        String g = Main.topic + "-g";
        createTopic(Main.topic, 1, null);
        setGroupConfigs(g, Map.of("share.auto.offset.reset", "earliest"));
        produceTo(Main.topic, 1, 5, "r-");
        List<String> problems = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(g, "compat-share-release");
        try {
            c.subscribe(List.of(Main.topic));
            Map<Long, Integer> first = new TreeMap<>();
            long end = System.currentTimeMillis() + 25000;
            while (first.size() < 5 && System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    if (first.containsKey(r.offset())) {
                        problems.add("offset " + r.offset() + " delivered again before the release (count " + dc(r) + ")");
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                        continue;
                    }
                    first.put(r.offset(), dc(r));
                    c.acknowledge(r, r.offset() == 1 ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) commit(c, problems);
            }
            obs.put("first_delivery_counts", first.toString());
            check(first.keySet().equals(Set.of(0L, 1L, 2L, 3L, 4L)), "first deliveries: offsets " + first.keySet() + ", expected 0..4");
            check(first.values().stream().allMatch(x -> x == 1), "first delivery counts " + first + ", expected 1 each");

            List<String> again = new ArrayList<>();
            end = System.currentTimeMillis() + 15000;
            while (again.isEmpty() && System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    again.add(r.offset() + ":" + r.value() + ":count" + dc(r));
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) commit(c, problems);
            }
            obs.put("redelivered", again);
            check(again.equals(List.of("1:r-1:count2")), "after RELEASE of offset 1: redelivered " + again + ", expected [1:r-1:count2]");

            List<String> after = new ArrayList<>();
            end = System.currentTimeMillis() + 3000;
            while (System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    after.add(r.offset() + ":count" + dc(r));
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) commit(c, problems);
            }
            obs.put("delivered_after_accept", after);
            check(after.isEmpty(), "delivered after the redelivered record was accepted: " + after);
            check(problems.isEmpty(), "problems: " + problems);
        } finally {
            closeQuietly(c);
        }
    }

    // ---------------------------------------------------------------- share-lock-timeout

    /**
     * share.record.lock.duration.ms=2000 (the broker's group.share.min.record.lock.duration.ms is
     * 1000 in this harness): consumer A takes a batch and neither acknowledges it nor closes; when
     * the acquisition lock ends, consumer B of the same group gets those records with delivery
     * count 2 (records A did not hold come to B with count 1).
     */
    static void lockTimeout() throws Exception {
        String g = Main.topic + "-g";
        createTopic(Main.topic, 1, null);
        setGroupConfigs(g, Map.of("share.auto.offset.reset", "earliest", "share.record.lock.duration.ms", "2000"));
        produceTo(Main.topic, 1, 5, "l-");
        List<String> problems = new ArrayList<>();
        KafkaShareConsumer<String, String> a = shareConsumer(g, "compat-share-a");
        KafkaShareConsumer<String, String> b = null;
        try {
            a.subscribe(List.of(Main.topic));
            Map<Long, Integer> held = new TreeMap<>();
            long end = System.currentTimeMillis() + 20000;
            // Explicit mode: polling again without acknowledging the batch is an error, so A
            // takes one batch and then does nothing at all (it stays a member: its heartbeats
            // run in the background).
            while (held.isEmpty() && System.currentTimeMillis() < end) {
                for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(200))) held.put(r.offset(), dc(r));
            }
            long heldAt = System.currentTimeMillis();
            obs.put("a_held", held.toString());
            obs.put("a_acquisition_lock_timeout_ms", a.acquisitionLockTimeoutMs().map(Object::toString).orElse("none"));
            log("A holds " + held + ", lock timeout " + obs.get("a_acquisition_lock_timeout_ms"));
            check(!held.isEmpty(), "consumer A got no records within 20 s");
            check(held.values().stream().allMatch(x -> x == 1), "A's delivery counts " + held + ", expected 1");

            b = shareConsumer(g, "compat-share-b");
            b.subscribe(List.of(Main.topic));
            Map<Long, Integer> got = new TreeMap<>();
            long heldBackAt = -1;
            end = System.currentTimeMillis() + 20000;
            while (got.size() < 5 && System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = b.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    if (got.containsKey(r.offset())) problems.add("B got offset " + r.offset() + " twice");
                    got.put(r.offset(), dc(r));
                    if (held.containsKey(r.offset()) && heldBackAt < 0) heldBackAt = System.currentTimeMillis();
                    b.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) commit(b, problems);
            }
            obs.put("b_got", got.toString());
            obs.put("b_got_held_after_ms_ge_1000", heldBackAt >= 0 && heldBackAt - heldAt >= 1000);
            log("B got " + got + ", A's records " + (heldBackAt < 0 ? "never" : (heldBackAt - heldAt) + " ms") + " after A took them");
            check(got.keySet().equals(Set.of(0L, 1L, 2L, 3L, 4L)), "consumer B received offsets " + got.keySet() + " (counts " + got + "), expected 0..4; A held " + held);
            for (var e : got.entrySet()) {
                int want = held.containsKey(e.getKey()) ? 2 : 1;
                check(e.getValue() == want, "B got offset " + e.getKey() + " with delivery count " + e.getValue() + ", expected " + want + " (A held " + held + ")");
            }
            check(problems.isEmpty(), "problems: " + problems);
        } finally {
            closeQuietly(b);
            closeQuietly(a);
        }
    }

    // ---------------------------------------------------------------- share-dlq

    /**
     * KIP-1191 dead-letter queue: dlq.<topic> created with errors.deadletterqueue.group.enable=true;
     * the group's errors.deadletterqueue.topic.name names it and share.delivery.count.limit=2.
     * Offset 0 is REJECTed, offset 1 RELEASEd twice (its second delivery reaches the limit),
     * offset 2 ACCEPTed: 0 and 1 land on the DLQ topic with the __dlq.errors.* headers (no key or
     * value: copy.record.enable is off) and neither is delivered again.
     */
    static void dlq() throws Exception {
        String g = Main.topic + "-g", dlqTopic = "dlq." + Main.topic;
        try (Admin a = admin()) {
            createTopic(a, Main.topic, 1, null);
            createTopic(a, dlqTopic, 1, Map.of("errors.deadletterqueue.group.enable", "true"));
            try {
                FeatureMetadata fm = a.describeFeatures().featureMetadata().get();
                FinalizedVersionRange sv = fm.finalizedFeatures().get("share.version");
                obs.put("share_version", sv == null ? "none" : String.valueOf(sv.maxVersionLevel()));
            } catch (ExecutionException e) {
                obs.put("share_version", "DescribeFeatures: " + Main.errName(e));
            }
        }
        log("finalized share.version " + obs.get("share_version"));
        setGroupConfigs(g, Map.of("share.auto.offset.reset", "earliest", "share.delivery.count.limit", "2",
                                  "errors.deadletterqueue.topic.name", dlqTopic));
        produceTo(Main.topic, 1, 3, "d-");
        List<String> problems = new ArrayList<>();
        List<String> deliveries = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(g, "compat-share-dlq");
        try {
            c.subscribe(List.of(Main.topic));
            int releases = 0;
            long end = System.currentTimeMillis() + 25000;
            // Until offset 1 has been released twice and the others acknowledged once.
            while (System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    deliveries.add(r.offset() + ":count" + dc(r));
                    AcknowledgeType t = r.offset() == 0 ? AcknowledgeType.REJECT
                        : r.offset() == 1 ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT;
                    if (r.offset() == 1) releases++;
                    c.acknowledge(r, t);
                }
                if (!recs.isEmpty()) commit(c, problems);
                if (releases >= 2 && deliveries.contains("0:count1") && deliveries.contains("2:count1")) break;
            }
            obs.put("deliveries", new ArrayList<>(deliveries));
            check(deliveries.equals(List.of("0:count1", "1:count1", "2:count1", "1:count2")),
                  "deliveries " + deliveries + ", expected 0:count1 1:count1 2:count1 then 1:count2");
            // Neither the rejected record nor the one past the delivery limit comes back.
            List<String> after = new ArrayList<>();
            end = System.currentTimeMillis() + 3000;
            while (System.currentTimeMillis() < end) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : recs) {
                    after.add(r.offset() + ":count" + dc(r));
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) commit(c, problems);
            }
            obs.put("delivered_after", after);
            check(after.isEmpty(), "delivered again after REJECT / the delivery limit: " + after);
            check(problems.isEmpty(), "problems: " + problems);
        } finally {
            closeQuietly(c);
        }
        // The DLQ topic, read with a plain consumer from the earliest offset.
        List<String> dl = new ArrayList<>();
        Map<Long, Map<String, String>> byOffset = new TreeMap<>();
        try (KafkaConsumer<String, String> k = Main.consumer()) {
            TopicPartition tp = new TopicPartition(dlqTopic, 0);
            k.assign(List.of(tp));
            k.seekToBeginning(List.of(tp));
            long end = System.currentTimeMillis() + 15000, quiet = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(end, quiet)) {
                for (ConsumerRecord<String, String> r : k.poll(Duration.ofMillis(200))) {
                    Map<String, String> h = new TreeMap<>();
                    for (Header x : r.headers()) h.put(x.key(), x.value() == null ? null : new String(x.value(), StandardCharsets.UTF_8));
                    dl.add("key=" + r.key() + " value=" + r.value() + " headers=" + h);
                    String off = h.get("__dlq.errors.offset");
                    try { byOffset.put(Long.parseLong(off), h); } catch (NumberFormatException e) { byOffset.put(-1L - byOffset.size(), h); }
                    if (r.key() != null || r.value() != null) problems.add("DLQ record with key/value although copy.record.enable is off: " + dl.get(dl.size() - 1));
                }
                if (dl.size() >= 2 && quiet == Long.MAX_VALUE) quiet = System.currentTimeMillis() + 1500;
            }
        }
        log("DLQ topic holds " + dl);
        obs.put("dlq_records", dl.size());
        obs.put("dlq_source_offsets", new ArrayList<>(byOffset.keySet()));
        List<String> hdrNames = new ArrayList<>();
        if (!byOffset.isEmpty()) hdrNames.addAll(byOffset.values().iterator().next().keySet());
        obs.put("dlq_header_names", hdrNames);
        check(dl.size() == 2 && byOffset.keySet().equals(Set.of(0L, 1L)),
              "DLQ topic " + dlqTopic + " holds " + dl.size() + " records " + dl + ", expected the records of offsets 0 and 1");
        for (var e : byOffset.entrySet()) {
            Map<String, String> h = e.getValue();
            check(Main.topic.equals(h.get("__dlq.errors.topic")), "offset " + e.getKey() + ": __dlq.errors.topic " + h.get("__dlq.errors.topic"));
            check("0".equals(h.get("__dlq.errors.partition")), "offset " + e.getKey() + ": __dlq.errors.partition " + h.get("__dlq.errors.partition"));
            check(g.equals(h.get("__dlq.errors.group")), "offset " + e.getKey() + ": __dlq.errors.group " + h.get("__dlq.errors.group"));
        }
        obs.put("dlq_delivery_counts", byOffset.values().stream().map(h -> String.valueOf(h.get("__dlq.errors.delivery.count"))).toList());
        check(problems.isEmpty(), "problems: " + problems);
    }

    // ---------------------------------------------------------------- share-cli

    record ToolRun(int exit, String out) {}

    /**
     * Runs a Kafka 4.4 tool class (what kafka-share-groups.sh / kafka-configs.sh run) in a child
     * JVM with this JVM's classpath and options; stdout and stderr together.
     */
    static ToolRun tool(String cls, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
        for (String o : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (o.startsWith("-X") || o.startsWith("-D")) cmd.add(o);
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(cls);
        cmd.addAll(Arrays.asList(args));
        String name = cls.substring(cls.lastIndexOf('.') + 1);
        long t0 = System.currentTimeMillis();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (InputStream in = p.getInputStream()) { in.transferTo(buf); } catch (Exception ignored) { }
        });
        reader.start();
        if (!p.waitFor(20, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new Main.Fail(name + " " + String.join(" ", args) + " timed out after 20 s");
        }
        reader.join(5000);
        String out = buf.toString(StandardCharsets.UTF_8);
        log("$ " + name + " " + String.join(" ", args) + "  (exit " + p.exitValue() + ", " + (System.currentTimeMillis() - t0) + " ms)\n" + out.stripTrailing());
        return new ToolRun(p.exitValue(), out);
    }

    static String shareGroups(String... args) throws Exception {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = Main.bootstrap;
        System.arraycopy(args, 0, full, 2, args.length);
        ToolRun r = tool("org.apache.kafka.tools.consumer.group.ShareGroupCommand", full);
        check(r.exit() == 0, "kafka-share-groups " + String.join(" ", args) + " exited " + r.exit() + ": " + firstError(r.out()));
        return r.out();
    }

    static String configs(String... args) throws Exception {
        String[] full = new String[args.length + 2];
        full[0] = "--bootstrap-server";
        full[1] = Main.bootstrap;
        System.arraycopy(args, 0, full, 2, args.length);
        ToolRun r = tool("org.apache.kafka.tools.ConfigCommand", full);
        check(r.exit() == 0, "kafka-configs " + String.join(" ", args) + " exited " + r.exit() + ": " + firstError(r.out()));
        return r.out();
    }

    static String firstError(String out) {
        for (String l : out.split("\n")) if (l.contains("Error") || l.contains("Exception")) return l.strip();
        String s = out.strip();
        return s.substring(Math.max(0, s.length() - 300));
    }

    /** Tool output -> rows of group g as {header: value} (header-driven, like cli_driver.table). */
    static List<Map<String, String>> table(String out, String g) {
        List<Map<String, String>> rows = new ArrayList<>();
        String[] hdr = null;
        for (String l : out.split("\n")) {
            String[] f = l.trim().split("\\s+");
            if (f.length == 0 || f[0].isEmpty()) continue;
            if (f[0].equals("GROUP")) hdr = f;
            else if (hdr != null && f[0].equals(g)) {
                Map<String, String> row = new LinkedHashMap<>();
                for (int i = 0; i < hdr.length && i < f.length; i++) row.put(hdr[i], f[i]);
                rows.add(row);
            }
        }
        return rows;
    }

    /** Polls until `n` records were delivered (each ACCEPTed and committed) or the time is up. */
    static List<String> consumeAll(KafkaShareConsumer<String, String> c, int n, long timeoutMs, List<String> problems) {
        List<String> got = new ArrayList<>();
        long end = System.currentTimeMillis() + timeoutMs;
        while (got.size() < n && System.currentTimeMillis() < end) {
            ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
            for (ConsumerRecord<String, String> r : recs) {
                got.add(pos(r) + ":" + r.value() + ":count" + dc(r));
                c.acknowledge(r, AcknowledgeType.ACCEPT);
            }
            if (!recs.isEmpty()) commit(c, problems);
        }
        Collections.sort(got);
        return got;
    }

    /**
     * kafka-configs sets share.auto.offset.reset=earliest on the group (and --describe shows it);
     * a share consumer reads 6 records of 2 partitions and stays; kafka-share-groups --list shows
     * the group, --describe its partitions with a START-OFFSET, --describe --members the running
     * consumer; after it closes, --reset-offsets --to-earliest --all-topics --execute lets a new
     * consumer read the 6 records again; --delete-offsets --topic and --delete --group succeed.
     */
    static void cli() throws Exception {
        String t = Main.topic, g = t + "-g";
        createTopic(t, 2, null);
        configs("--entity-type", "groups", "--entity-name", g, "--alter", "--add-config", "share.auto.offset.reset=earliest");
        String desc = "";
        for (int i = 0; i < 4; i++) {  // applied through the metadata log: describe until it shows
            desc = configs("--entity-type", "groups", "--entity-name", g, "--describe");
            if (desc.contains("share.auto.offset.reset=earliest")) break;
            Thread.sleep(500);
        }
        obs.put("configs_describe_shows", desc.contains("share.auto.offset.reset=earliest"));
        for (String l : desc.split("\n")) {
            int at = l.indexOf("synonyms=");
            if (l.contains("share.auto.offset.reset=") && at >= 0) obs.put("configs_describe_synonyms", l.substring(at).strip());
        }
        check(desc.contains("share.auto.offset.reset=earliest"), "kafka-configs --describe does not show share.auto.offset.reset=earliest: " + desc.strip());
        produceTo(t, 2, 6, "c-");
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 6; i++) want.add("c-" + i);

        List<String> problems = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(g, "compat-share-cli");
        // The consumer must keep polling to stay in the group while the tools run.
        ExecutorService bg = Executors.newSingleThreadExecutor();
        AtomicBoolean stop = new AtomicBoolean();
        Future<List<String>> first = null;
        try {
            c.subscribe(List.of(t));
            List<String> firstGot = consumeAll(c, 6, 20000, problems);
            obs.put("first_consumed", firstGot.size());
            check(firstGot.size() == 6 && values(firstGot).equals(want), "first consumer read " + firstGot + ", expected c-0..c-5");
            first = bg.submit(() -> {
                List<String> extra = new ArrayList<>();
                while (!stop.get()) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        extra.add(pos(r));
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                }
                return extra;
            });
            String members = waitMembers(g, 1, 2, 10000);
            log("group: " + members);

            String list = shareGroups("--list");
            obs.put("list_shows_group", Arrays.asList(list.split("\\s+")).contains(g));
            check((Boolean) obs.get("list_shows_group"), "--list does not show " + g + ": " + list.strip());

            // The start offset of a share-partition whose 3 records are all acknowledged is 0
            // (the acknowledged batch still held as state: Apache Kafka 4.4 shows that) or 3 (moved
            // past them); either way nothing is left to deliver, so LAG (KIP-1226) is 0.
            List<Map<String, String>> rows = List.of();
            for (int i = 0; i < 3; i++) {
                rows = table(shareGroups("--describe", "--group", g), g);
                if (rows.size() == 2 && rows.stream().allMatch(r -> r.getOrDefault("START-OFFSET", "-").matches("\\d+"))) break;
                Thread.sleep(1000);
            }
            List<String> offs = new ArrayList<>();
            for (var r : rows) offs.add(r.get("TOPIC").equals(t) ? r.get("PARTITION") + "=" + r.get("START-OFFSET") + "/lag " + r.get("LAG") : r.toString());
            Collections.sort(offs);
            obs.put("describe_offsets", offs);
            check(rows.size() == 2 && rows.stream().allMatch(r -> t.equals(r.get("TOPIC")) && r.getOrDefault("START-OFFSET", "-").matches("[0-3]")),
                  "--describe: rows " + rows + ", expected partitions 0 and 1 of " + t + " with a START-OFFSET (0..3)");
            check(offs.size() == 2 && offs.get(0).startsWith("0=") && offs.get(1).startsWith("1=") && offs.stream().allMatch(o -> o.endsWith("/lag 0")),
                  "--describe: " + offs + ", expected partitions 0 and 1 with LAG 0 (all 6 records accepted)");

            List<Map<String, String>> mrows = table(shareGroups("--describe", "--group", g, "--members"), g);
            List<String> ms = new ArrayList<>();
            for (var r : mrows) ms.add(r.get("CLIENT-ID") + " #" + r.get("#PARTITIONS") + " " + r.get("ASSIGNMENT"));
            obs.put("describe_members", ms);
            check(ms.equals(List.of("compat-share-cli #2 " + t + ":0,1")),
                  "--describe --members: " + ms + ", expected [compat-share-cli #2 " + t + ":0,1]");
        } finally {
            stop.set(true);
            bg.shutdown();
            bg.awaitTermination(5, TimeUnit.SECONDS);
            closeQuietly(c);
        }
        check(problems.isEmpty(), "problems: " + problems);
        List<String> extra = first == null ? List.of() : first.get();
        obs.put("delivered_while_tools_ran", extra);
        check(extra.isEmpty(), "records delivered again to the first consumer while the tools ran: " + extra);

        // Empty after the close (the member left): the group's offsets may be reset.
        String state = "?";
        try (Admin a = admin()) {
            for (long end = System.currentTimeMillis() + 10000; System.currentTimeMillis() < end; Thread.sleep(250)) {
                state = String.valueOf(describe(a, g).groupState());
                if (state.equals("Empty")) break;
            }
        }
        obs.put("state_after_close", state);
        String reset = shareGroups("--reset-offsets", "--group", g, "--to-earliest", "--all-topics", "--execute");
        List<String> newOffs = new ArrayList<>();
        for (var r : table(reset, g)) newOffs.add(r.get("TOPIC").equals(t) ? r.get("PARTITION") + "=" + r.get("NEW-OFFSET") : r.toString());
        Collections.sort(newOffs);
        obs.put("reset_new_offsets", newOffs);
        check(newOffs.equals(List.of("0=0", "1=0")), "--reset-offsets --to-earliest printed " + newOffs + ", expected NEW-OFFSET 0 on partitions 0 and 1: " + reset.strip());

        KafkaShareConsumer<String, String> c2 = shareConsumer(g, "compat-share-cli-2");
        try {
            c2.subscribe(List.of(t));
            List<String> again = consumeAll(c2, 6, 20000, problems);
            obs.put("consumed_after_reset", again.size());
            check(values(again).equals(want), "after the reset a new consumer read " + again + ", expected c-0..c-5 again");
        } finally {
            closeQuietly(c2);
        }
        check(problems.isEmpty(), "problems: " + problems);
        try (Admin a = admin()) {
            for (long end = System.currentTimeMillis() + 10000; System.currentTimeMillis() < end; Thread.sleep(250)) {
                if (String.valueOf(describe(a, g).groupState()).equals("Empty")) break;
            }
        }

        String delOffs = shareGroups("--delete-offsets", "--group", g, "--topic", t);
        boolean delOk = false;
        for (String l : delOffs.split("\n")) {
            String[] f = l.trim().split("\\s+");
            if (f.length >= 2 && f[0].equals(t) && f[1].equals("Successful")) delOk = true;
        }
        obs.put("delete_offsets_successful", delOk);
        check(delOk, "--delete-offsets --topic " + t + " did not report Successful: " + delOffs.strip());

        String del = shareGroups("--delete", "--group", g);
        obs.put("delete_successful", del.contains("Deletion of requested share groups ('" + g + "') was successful."));
        check((Boolean) obs.get("delete_successful"), "--delete --group: " + del.strip());
        String listAfter = shareGroups("--list");
        obs.put("listed_after_delete", Arrays.asList(listAfter.split("\\s+")).contains(g));
        check(!(Boolean) obs.get("listed_after_delete"), "--list still shows " + g + " after --delete: " + listAfter.strip());
    }

    static List<String> values(List<String> got) {
        List<String> v = new ArrayList<>();
        for (String s : got) v.add(s.split(":")[2]);
        Collections.sort(v);
        return v;
    }
}
