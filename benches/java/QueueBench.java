import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Share-group (KIP-932) load for benches/queue.sh, with the kafka-clients 4.4 KafkaShareConsumer.
 * Compiled by queue.sh with javac against the Kafka 4.4.0 jars; one JSON line on stdout per run,
 * progress on stderr.
 *
 *   produce  --bootstrap B --topic T --group G --partitions N --records R --size S
 *       creates T (N partitions, replication factor 1), sets the group config
 *       share.auto.offset.reset=earliest on G (IncrementalAlterConfigs, GROUP resource; waits
 *       until DescribeConfigs shows it), produces R records of S bytes, record i to partition i % N
 *       (producer defaults: acks=all, linger.ms=5, batch.size=16384), and waits for every ack.
 *   drain    --bootstrap B --topic T --group G --partitions N --records R --consumers C --broker-pid P
 *       C KafkaShareConsumer threads in G (explicit acknowledgement mode), each: poll, ACCEPT every
 *       record, commitSync, until every offset of T has been accepted (commitSync reported no error
 *       for its partition). Rate = R / (last successful commitSync return - first poll). Broker
 *       CPU (utime+stime of /proc/P/stat) over the same window.
 *   latency  --bootstrap B --topic T --group G --partitions N --consumers C --rate X --seconds D
 *            --warmup W --size S --broker-pid P
 *       creates T and the group config, starts C consumers as above, waits until the group has C
 *       members whose assignments cover all N partitions, then produces X records/s (fixed
 *       schedule, linger.ms=0, acks=all) for W s of warm-up and D s measured; each value carries
 *       System.nanoTime() at send. Latency of a record = the return of the commitSync that
 *       accepted it minus its send time (also reported: poll return minus send time). Only the
 *       D-second records count.
 */
public final class QueueBench {
    static final Map<String, String> A = new HashMap<>();

    static String arg(String k) {
        String v = A.get(k);
        if (v == null) throw new IllegalArgumentException("missing --" + k);
        return v;
    }

    static int iarg(String k) { return Integer.parseInt(arg(k)); }

    static void log(String m) {
        System.err.println("[queue " + String.format("%tT.%<tL", System.currentTimeMillis()) + "] " + m);
        System.err.flush();
    }

    public static void main(String[] argv) throws Exception {
        String mode = argv[0];
        for (int i = 1; i + 1 < argv.length; i += 2) A.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        switch (mode) {
            case "produce": produce(); break;
            case "drain": drain(); break;
            case "latency": latency(); break;
            default: throw new IllegalArgumentException("mode: produce | drain | latency");
        }
        System.exit(0);  // client threads must not keep the JVM up
    }

    // ------------------------------------------------------------------ clients

    static Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", arg("bootstrap"));
        p.put("request.timeout.ms", "30000");
        p.put("default.api.timeout.ms", "60000");
        return p;
    }

    static KafkaProducer<byte[], byte[]> producer(String... kv) {
        Properties p = common();
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("acks", "all");
        for (int i = 0; i < kv.length; i += 2) p.put(kv[i], kv[i + 1]);
        return new KafkaProducer<>(p);
    }

    static KafkaShareConsumer<byte[], byte[]> shareConsumer(String group, String clientId) {
        Properties p = common();
        p.put("group.id", group);
        p.put("client.id", clientId);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("share.acknowledgement.mode", "explicit");
        return new KafkaShareConsumer<>(p);
    }

    static String shareVersion(Admin a) {
        try {
            FeatureMetadata fm = a.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS);
            FinalizedVersionRange r = fm.finalizedFeatures().get("share.version");
            return r == null ? "absent" : String.valueOf(r.maxVersionLevel());
        } catch (Exception e) {
            return "error: " + e;
        }
    }

    /** Creates the topic, sets share.auto.offset.reset=earliest on the group; returns share.version. */
    static String setup(String topic, String group, int parts) throws Exception {
        try (Admin a = Admin.create(common())) {
            String sv = shareVersion(a);
            log("share.version finalized: " + sv);
            a.createTopics(List.of(new NewTopic(topic, parts, (short) 1))).all().get(60, TimeUnit.SECONDS);
            for (long end = System.currentTimeMillis() + 30000; ; Thread.sleep(100)) {
                try {
                    TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                    if (d.partitions().size() == parts && d.partitions().stream().allMatch(p -> p.leader() != null)) break;
                } catch (ExecutionException e) {
                    if (System.currentTimeMillis() > end) throw e;
                }
                if (System.currentTimeMillis() > end) throw new IllegalStateException("topic " + topic + " not ready");
            }
            ConfigResource cr = new ConfigResource(ConfigResource.Type.GROUP, group);
            a.incrementalAlterConfigs(Map.of(cr, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET))))
                    .all().get(60, TimeUnit.SECONDS);
            String seen = null;
            for (long end = System.currentTimeMillis() + 30000; System.currentTimeMillis() < end; Thread.sleep(100)) {
                ConfigEntry e = a.describeConfigs(List.of(cr)).all().get().get(cr).get("share.auto.offset.reset");
                seen = e == null ? null : e.value();
                if ("earliest".equals(seen)) return sv;
            }
            throw new IllegalStateException("group config share.auto.offset.reset reads " + seen);
        }
    }

    static double[] cpuRss(String pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            double cpu = (Long.parseLong(f[11]) + Long.parseLong(f[12])) / Double.parseDouble(A.getOrDefault("hz", "100"));
            long rss = 0;
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmRSS:")) rss = Long.parseLong(line.split("\\s+")[1]);
            }
            return new double[] {cpu, rss / 1024.0};
        } catch (Exception e) {
            return new double[] {Double.NaN, Double.NaN};
        }
    }

    // ------------------------------------------------------------------ produce

    static void produce() throws Exception {
        String topic = arg("topic");
        int parts = iarg("partitions"), n = iarg("records"), size = iarg("size");
        String sv = setup(topic, arg("group"), parts);
        byte[] value = new byte[size];
        new Random(1).nextBytes(value);
        long t0 = System.nanoTime();
        AtomicReference<Exception> err = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, i % parts, null, value), (md, e) -> {
                    if (e != null) err.compareAndSet(null, e);
                });
            }
            p.flush();
        }
        if (err.get() != null) throw err.get();
        double s = (System.nanoTime() - t0) / 1e9;
        log("produced " + n + " records in " + String.format("%.2f", s) + " s");
        System.out.println("{\"produced\":" + n + ",\"produce_s\":" + s + ",\"share_version\":\"" + sv + "\"}");
    }

    // ------------------------------------------------------------------ consuming

    /** Which offsets have been accepted, per partition; every method under the object's lock. */
    static final class Accepted {
        final boolean[][] bits;
        final int total;
        int count;

        /** n records, record i on partition i % parts, offsets from 0. */
        Accepted(int parts, int n) {
            bits = new boolean[parts][];
            for (int p = 0; p < parts; p++) bits[p] = new boolean[n / parts + (p < n % parts ? 1 : 0)];
            total = n;
        }

        synchronized boolean has(int p, long off) {
            return off < bits[p].length && bits[p][(int) off];
        }

        /** Marks; returns true when newly accepted. */
        synchronized boolean mark(int p, long off) {
            if (off >= bits[p].length) return false;
            if (bits[p][(int) off]) return false;
            bits[p][(int) off] = true;
            count++;
            return true;
        }

        synchronized boolean done() { return count >= total; }
    }

    static final class Stats {
        final AtomicLong delivered = new AtomicLong(), redelivered = new AtomicLong(),
                afterAccept = new AtomicLong(), commitErrors = new AtomicLong(),
                missingResults = new AtomicLong(), polls = new AtomicLong(), emptyPolls = new AtomicLong(),
                outOfRange = new AtomicLong();
        final AtomicLong firstPoll = new AtomicLong(Long.MAX_VALUE), firstRecord = new AtomicLong(Long.MAX_VALUE),
                lastAck = new AtomicLong(0);
        final List<String> errors = Collections.synchronizedList(new ArrayList<>());
        final long[] perConsumer;
        volatile long maxCommitNanos;

        Stats(int consumers) { perConsumer = new long[consumers]; }

        static void min(AtomicLong a, long v) { a.accumulateAndGet(v, Math::min); }
        static void max(AtomicLong a, long v) { a.accumulateAndGet(v, Math::max); }
    }

    interface OnAccept { void accepted(ConsumerRecord<byte[], byte[]> r, long pollNanos, long ackNanos); }

    /**
     * One consumer's loop: poll, ACCEPT all, commitSync; marks accepted offsets whose partition's
     * commit result carries no error. Stops when everything is accepted, on `stop`, or at `deadline`.
     */
    static void consumeLoop(int idx, KafkaShareConsumer<byte[], byte[]> c, Accepted acc, Stats st,
                            CountDownLatch go, AtomicBoolean stop, long deadlineNanos, OnAccept onAccept) {
        try {
            go.await();
            while (!stop.get() && !acc.done() && System.nanoTime() < deadlineNanos) {
                Stats.min(st.firstPoll, System.nanoTime());
                ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(100));
                long tPoll = System.nanoTime();
                st.polls.incrementAndGet();
                if (recs.isEmpty()) {
                    st.emptyPolls.incrementAndGet();
                    continue;
                }
                Stats.min(st.firstRecord, tPoll);
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    st.delivered.incrementAndGet();
                    if (r.deliveryCount().map(d -> d > 1).orElse(false)) st.redelivered.incrementAndGet();
                    if (acc.has(r.partition(), r.offset())) st.afterAccept.incrementAndGet();
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                long tc = System.nanoTime();
                Map<TopicIdPartition, Optional<KafkaException>> res = c.commitSync(Duration.ofSeconds(30));
                long tAck = System.nanoTime();
                if (tAck - tc > st.maxCommitNanos) st.maxCommitNanos = tAck - tc;
                Map<Integer, Optional<KafkaException>> byPart = new HashMap<>();
                for (var e : res.entrySet()) byPart.put(e.getKey().partition(), e.getValue());
                for (var e : byPart.entrySet()) {
                    if (e.getValue().isPresent()) {
                        st.commitErrors.incrementAndGet();
                        if (st.errors.size() < 20) st.errors.add("commitSync p" + e.getKey() + ": " + e.getValue().get());
                    }
                }
                long mine = 0;
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    Optional<KafkaException> e = byPart.get(r.partition());
                    if (e == null) st.missingResults.incrementAndGet();  // counted as accepted
                    if (e != null && e.isPresent()) continue;
                    if (r.offset() >= acc.bits[r.partition()].length) {
                        st.outOfRange.incrementAndGet();
                        continue;
                    }
                    if (acc.mark(r.partition(), r.offset())) {
                        mine++;
                        if (onAccept != null) onAccept.accepted(r, tPoll, tAck);
                    }
                }
                if (mine > 0) Stats.max(st.lastAck, tAck);
                synchronized (st.perConsumer) { st.perConsumer[idx] += mine; }
            }
        } catch (Exception e) {
            st.errors.add("consumer " + idx + ": " + e);
            log("consumer " + idx + " failed: " + e);
        } finally {
            try {
                c.close(Duration.ofSeconds(5));
            } catch (Exception e) {
                log("close " + idx + ": " + e);
            }
        }
    }

    static String statsJson(Stats st) {
        StringBuilder b = new StringBuilder();
        b.append("\"delivered\":").append(st.delivered.get())
         .append(",\"redelivered\":").append(st.redelivered.get())
         .append(",\"delivered_after_accept\":").append(st.afterAccept.get())
         .append(",\"commit_errors\":").append(st.commitErrors.get())
         .append(",\"commit_results_missing\":").append(st.missingResults.get())
         .append(",\"out_of_range\":").append(st.outOfRange.get())
         .append(",\"polls\":").append(st.polls.get())
         .append(",\"empty_polls\":").append(st.emptyPolls.get())
         .append(",\"max_commit_ms\":").append(st.maxCommitNanos / 1e6)
         .append(",\"per_consumer\":").append(Arrays.toString(st.perConsumer))
         .append(",\"errors\":[");
        synchronized (st.errors) {
            for (int i = 0; i < st.errors.size(); i++) {
                if (i > 0) b.append(',');
                b.append('"').append(st.errors.get(i).replace("\\", "\\\\").replace("\"", "'").replace("\n", " ")).append('"');
            }
        }
        return b.append(']').toString();
    }

    static List<KafkaShareConsumer<byte[], byte[]>> consumers(String topic, String group, int n) {
        List<KafkaShareConsumer<byte[], byte[]>> cs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            KafkaShareConsumer<byte[], byte[]> c = shareConsumer(group, "queue-bench-" + i);
            c.subscribe(List.of(topic));
            cs.add(c);
        }
        return cs;
    }

    // ------------------------------------------------------------------ drain

    static void drain() throws Exception {
        String topic = arg("topic"), group = arg("group"), pid = arg("broker-pid");
        int parts = iarg("partitions"), n = iarg("records"), nc = iarg("consumers");
        long timeoutS = Long.parseLong(A.getOrDefault("timeout", "120"));
        Accepted acc = new Accepted(parts, n);
        Stats st = new Stats(nc);
        List<KafkaShareConsumer<byte[], byte[]>> cs = consumers(topic, group, nc);
        CountDownLatch go = new CountDownLatch(1);
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService pool = Executors.newFixedThreadPool(nc);
        long deadline = System.nanoTime() + timeoutS * 1_000_000_000L;
        List<Future<?>> jobs = new ArrayList<>();
        for (int i = 0; i < nc; i++) {
            final int idx = i;
            jobs.add(pool.submit(() -> consumeLoop(idx, cs.get(idx), acc, st, go, stop, deadline, null)));
        }
        double[] b0 = cpuRss(pid);
        go.countDown();
        // Broker CPU at the last acknowledgement: sampled as soon as everything is accepted.
        double[] b1 = null;
        long nextReport = System.nanoTime() + 1_000_000_000L;
        int lastCount = 0;
        double lastCpu = b0[0];
        while (System.nanoTime() < deadline + 1_000_000_000L) {
            if (acc.done()) {
                b1 = cpuRss(pid);
                break;
            }
            if (System.nanoTime() >= nextReport) {  // progress, once a second, to the log
                nextReport += 1_000_000_000L;
                int cnt;
                synchronized (acc) { cnt = acc.count; }
                double[] x = cpuRss(pid);
                log(String.format("  accepted %d (+%d/s), broker CPU +%.2f s/s, RSS %.0f MiB",
                        cnt, cnt - lastCount, x[0] - lastCpu, x[1]));
                lastCount = cnt;
                lastCpu = x[0];
            }
            Thread.sleep(2);
        }
        if (b1 == null) b1 = cpuRss(pid);
        stop.set(true);
        for (Future<?> f : jobs) f.get(60, TimeUnit.SECONDS);
        pool.shutdown();
        int accepted;
        synchronized (acc) { accepted = acc.count; }
        double wall = st.lastAck.get() > 0 ? (st.lastAck.get() - st.firstPoll.get()) / 1e9 : Double.NaN;
        double toFirst = st.firstRecord.get() != Long.MAX_VALUE ? (st.firstRecord.get() - st.firstPoll.get()) / 1e9 : Double.NaN;
        double cpu = b1[0] - b0[0];
        log(String.format("accepted %d/%d in %.2f s (%.0f records/s), first record after %.2f s, broker CPU %.2f s",
                accepted, n, wall, accepted / wall, toFirst, cpu));
        System.out.println("{\"records\":" + n + ",\"accepted\":" + accepted + ",\"complete\":" + (accepted == n)
                + ",\"wall_s\":" + wall + ",\"records_per_s\":" + (accepted == n ? n / wall : 0)
                + ",\"first_record_s\":" + toFirst
                + ",\"records_per_s_from_first_record\":" + (accepted == n ? n / (wall - toFirst) : 0) + ",\"broker_cpu_s\":" + cpu
                + ",\"broker_cpu_s_per_m\":" + (cpu / (n / 1e6)) + ",\"broker_rss_mib\":" + b1[1]
                + "," + statsJson(st) + "}");
    }

    // ------------------------------------------------------------------ latency

    static long pct(long[] sorted, double q) {
        if (sorted.length == 0) return -1;
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static void latency() throws Exception {
        String topic = arg("topic"), group = arg("group"), pid = arg("broker-pid");
        int parts = iarg("partitions"), nc = iarg("consumers"), rate = iarg("rate"), size = iarg("size");
        int seconds = iarg("seconds"), warm = iarg("warmup");
        int nWarm = rate * warm, nMeas = rate * seconds, n = nWarm + nMeas;
        String sv = setup(topic, group, parts);
        Accepted acc = new Accepted(parts, n);
        Stats st = new Stats(nc);
        long[] ackLat = new long[nMeas], pollLat = new long[nMeas];
        Arrays.fill(ackLat, -1);
        OnAccept on = (r, tPoll, tAck) -> {
            ByteBuffer v = ByteBuffer.wrap(r.value());
            long sent = v.getLong(0);
            int seq = v.getInt(8);
            if (seq >= nWarm) {
                ackLat[seq - nWarm] = tAck - sent;
                pollLat[seq - nWarm] = tPoll - sent;
            }
        };
        List<KafkaShareConsumer<byte[], byte[]>> cs = consumers(topic, group, nc);
        CountDownLatch go = new CountDownLatch(1);
        AtomicBoolean stop = new AtomicBoolean();
        ExecutorService pool = Executors.newFixedThreadPool(nc);
        long deadline = System.nanoTime() + (seconds + warm + 90) * 1_000_000_000L;
        List<Future<?>> jobs = new ArrayList<>();
        for (int i = 0; i < nc; i++) {
            final int idx = i;
            jobs.add(pool.submit(() -> consumeLoop(idx, cs.get(idx), acc, st, go, stop, deadline, on)));
        }
        go.countDown();
        // Wait until the group is formed: nc members, each assigned, all partitions covered.
        String groupState = "?";
        long tj = System.nanoTime();
        try (Admin a = Admin.create(common())) {
            for (long end = System.currentTimeMillis() + 40000; System.currentTimeMillis() < end; Thread.sleep(200)) {
                try {
                    ShareGroupDescription d = a.describeShareGroups(List.of(group)).all().get().get(group);
                    Set<TopicPartition> all = new HashSet<>();
                    boolean each = true;
                    for (ShareMemberDescription m : d.members()) {
                        all.addAll(m.assignment().topicPartitions());
                        each &= !m.assignment().topicPartitions().isEmpty();
                    }
                    groupState = d.groupState() + " members=" + d.members().size() + " partitions=" + all.size();
                    if (d.members().size() == nc && each && all.size() == parts) break;
                } catch (ExecutionException e) {
                    groupState = e.getCause().toString();
                }
            }
        }
        double joinS = (System.nanoTime() - tj) / 1e9;
        log("group: " + groupState + " after " + String.format("%.1f", joinS) + " s");
        Thread.sleep(1000);
        byte[] pad = new byte[size];
        AtomicReference<Exception> err = new AtomicReference<>();
        double[] c0 = null, c1;
        long late = 0;
        try (KafkaProducer<byte[], byte[]> p = producer("linger.ms", "0")) {
            long period = 1_000_000_000L / rate, start = System.nanoTime();
            for (int i = 0; i < n; i++) {
                if (i == nWarm) c0 = cpuRss(pid);
                long due = start + i * period;
                long now;
                while ((now = System.nanoTime()) < due) java.util.concurrent.locks.LockSupport.parkNanos(due - now);
                if (now - due > 5_000_000L) late++;
                byte[] v = pad.clone();
                ByteBuffer bb = ByteBuffer.wrap(v);
                bb.putLong(0, System.nanoTime());
                bb.putInt(8, i);
                p.send(new ProducerRecord<>(topic, i % parts, null, v), (md, e) -> {
                    if (e != null) err.compareAndSet(null, e);
                });
            }
            p.flush();
        }
        double[] cEnd = cpuRss(pid);
        long drainEnd = System.nanoTime() + 30_000_000_000L;
        while (!acc.done() && System.nanoTime() < drainEnd) Thread.sleep(5);
        c1 = cpuRss(pid);
        stop.set(true);
        for (Future<?> f : jobs) f.get(60, TimeUnit.SECONDS);
        pool.shutdown();
        if (err.get() != null) st.errors.add("producer: " + err.get());
        long[] a = Arrays.stream(ackLat).filter(x -> x >= 0).sorted().toArray();
        long[] pl = new long[a.length];
        int k = 0;
        for (int i = 0; i < nMeas; i++) if (ackLat[i] >= 0) pl[k++] = pollLat[i];
        Arrays.sort(pl);
        int accepted;
        synchronized (acc) { accepted = acc.count; }
        log(String.format("accepted %d/%d; ack latency p50 %.1f ms p99 %.1f ms max %.1f ms",
                accepted, n, pct(a, .5) / 1e6, pct(a, .99) / 1e6, pct(a, 1) / 1e6));
        System.out.println("{\"records\":" + n + ",\"measured\":" + nMeas + ",\"measured_accepted\":" + a.length
                + ",\"accepted\":" + accepted + ",\"complete\":" + (accepted == n)
                + ",\"ack_p50_ms\":" + pct(a, .5) / 1e6 + ",\"ack_p99_ms\":" + pct(a, .99) / 1e6
                + ",\"ack_p999_ms\":" + pct(a, .999) / 1e6 + ",\"ack_max_ms\":" + pct(a, 1) / 1e6
                + ",\"poll_p50_ms\":" + pct(pl, .5) / 1e6 + ",\"poll_p99_ms\":" + pct(pl, .99) / 1e6
                + ",\"poll_max_ms\":" + pct(pl, 1) / 1e6
                + ",\"join_s\":" + joinS + ",\"group\":\"" + groupState + "\",\"sends_late_5ms\":" + late
                + ",\"broker_cpu_cores\":" + ((cEnd[0] - c0[0]) / seconds)
                + ",\"broker_rss_mib\":" + c1[1] + ",\"share_version\":\"" + sv + "\","
                + statsJson(st) + "}");
    }
}
