package strom.compat;

import java.io.File;
import java.nio.file.Files;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.*;

/**
 * The kafka-streams column of compat-tests: a Kafka Streams 4.4 application with the Streams
 * rebalance protocol (KIP-1071, `group.protocol=streams`), exactly_once_v2, a repartition
 * (groupBy word) and a state store (count), killed with SIGKILL and restarted.
 *
 * `StreamsMain streams-wordcount-eos <bootstrap> <topic>`: the scenario (prints @@RESULT).
 * `StreamsMain app <bootstrap> <input> <output> <appId> <stateDir>`: the application itself,
 * run as a child process so it can be killed with SIGKILL; runs until killed or closed.
 *
 * The check is exact: record caching is off, so every input word produces one count update;
 * with exactly-once, read_committed output holds for each word the counts 1, 2, ..., n once
 * each and in order (n = the word's occurrences in the input), across the crash.
 */
public final class StreamsMain {
    static final String[] WORDS = {
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
        "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"};

    public static void main(String[] args) throws Exception {
        if (args[0].equals("app")) {
            app(args[1], args[2], args[3], args[4], args[5]);
            return;
        }
        Main.bootstrap = args[1];
        Main.topic = args[2];
        String status = "pass", detail = "";
        List<Process> children = new ArrayList<>();
        try {
            if (!args[0].equals("streams-wordcount-eos")) {
                throw new Main.NotApplicable("no such scenario in the Kafka Streams driver: " + args[0]);
            }
            wordCountEos(children);
        } catch (Main.Fail f) {
            status = "fail";
            detail = f.getMessage();
        } catch (Main.NotApplicable n) {
            status = "n/a";
            detail = n.getMessage();
        } catch (Throwable t) {
            status = "fail";
            Throwable c = Main.unwrap(t);
            detail = c.getClass().getSimpleName() + ": " + c.getMessage();
        } finally {
            for (Process p : children) p.destroyForcibly();
        }
        System.out.println("@@RESULT {\"status\":" + Main.q(status) + ",\"detail\":" + Main.q(detail)
            + ",\"obs\":" + Main.json(Main.obs) + "}");
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    // ------------------------------------------------------------------ the application

    static void app(String bootstrap, String input, String output, String appId, String stateDir) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.GROUP_PROTOCOL_CONFIG, "streams");
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "2");
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), "10000");

        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> lines = b.stream(input);
        lines.flatMapValues(v -> Arrays.asList(v.split(" ")))
            .groupBy((k, w) -> w)
            .count(Materialized.as("word-counts"))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setStateListener((now, before) -> {
            System.out.println("@@STATE " + now);
            System.out.flush();
        });
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(10))));
        streams.start();
    }

    static Process startApp(String input, String output, String appId, File stateDir, File log) throws Exception {
        String javaBin = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(javaBin, "-XX:+UseSerialGC", "-Xmx384m",
            "-Dlog4j2.configurationFile=" + System.getProperty("log4j2.configurationFile", ""),
            "-cp", System.getProperty("java.class.path"), StreamsMain.class.getName(),
            "app", Main.bootstrap, input, output, appId, stateDir.getAbsolutePath()));
        return new ProcessBuilder(cmd).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log)).start();
    }

    // ------------------------------------------------------------------ the scenario

    static void wordCountEos(List<Process> children) throws Exception {
        String input = Main.topic + "-in", output = Main.topic + "-out", appId = Main.topic + "-app";
        try (Admin a = Main.admin()) {
            a.createTopics(List.of(new NewTopic(input, 3, (short) 1), new NewTopic(output, 3, (short) 1)))
                .all().get(30, TimeUnit.SECONDS);
        }
        Map<String, Integer> expected = new TreeMap<>();
        Random rnd = new Random(42);
        produceLines(0, 300, rnd, expected, input);

        File stateDir = Files.createTempDirectory("strom-streams-").toFile();
        File log = new File(System.getProperty("compat.streams.log", stateDir + "/app.log"));
        long t0 = System.currentTimeMillis();
        Process first = startApp(input, output, appId, stateDir, log);
        children.add(first);
        // Wait for some committed output, so the kill lands in the middle of processing.
        Map<String, List<Long>> seen = new HashMap<>();
        long deadline = System.currentTimeMillis() + 90_000;
        try (KafkaConsumer<String, Long> c = outputConsumer()) {
            c.assign(partitions(c, output));
            c.seekToBeginning(c.assignment());
            int updates = 0;
            while (updates < 200 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(500))) updates++;
                if (!first.isAlive()) throw new Main.Fail("the Streams application exited: " + tail(log));
            }
            if (updates < 200) throw new Main.Fail("no output within 90 s (" + updates + " updates); app log: " + tail(log));
            Main.obs.put("first_output_s", (System.currentTimeMillis() - t0) / 1000.0);
        }
        try (Admin a = Main.admin()) {
            StreamsGroupDescription d = a.describeStreamsGroups(List.of(appId)).describedGroups().get(appId).get(15, TimeUnit.SECONDS);
            Main.obs.put("group_state_before_kill", String.valueOf(d.groupState()));
            Main.obs.put("members_before_kill", d.members().size());
            Main.obs.put("subtopologies", d.subtopologies().size());
            if (d.subtopologies().size() != 2) throw new Main.Fail("expected 2 subtopologies (repartition), got " + d.subtopologies());
        }
        first.destroyForcibly();  // SIGKILL
        first.waitFor(10, TimeUnit.SECONDS);
        produceLines(300, 600, rnd, expected, input);
        long t1 = System.currentTimeMillis();
        Process second = startApp(input, output, appId, stateDir, log);
        children.add(second);

        // Read until every word's latest count is what the input holds.
        int total = expected.values().stream().mapToInt(Integer::intValue).sum();
        deadline = System.currentTimeMillis() + 150_000;
        try (KafkaConsumer<String, Long> c = outputConsumer()) {
            c.assign(partitions(c, output));
            c.seekToBeginning(c.assignment());
            int updates = 0;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(500))) {
                    seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                    updates++;
                }
                if (updates >= total && done(seen, expected)) break;
                if (!second.isAlive()) throw new Main.Fail("the restarted application exited: " + tail(log));
            }
            Main.obs.put("updates", updates);
            Main.obs.put("expected_updates", total);
            Main.obs.put("recovered_s", (System.currentTimeMillis() - t1) / 1000.0);
        }
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            List<Long> got = seen.getOrDefault(e.getKey(), List.of());
            List<Long> want = new ArrayList<>();
            for (long i = 1; i <= e.getValue(); i++) want.add(i);
            if (!got.equals(want)) {
                throw new Main.Fail("word " + e.getKey() + ": counts " + abbreviate(got) + ", expected 1.." + e.getValue()
                    + " once each (" + seen.values().stream().mapToInt(List::size).sum() + " updates for " + total + " words)");
            }
        }
        if (seen.size() != expected.size()) throw new Main.Fail("unexpected words in the output: " + seen.keySet());
        try (Admin a = Main.admin()) {
            StreamsGroupDescription d = a.describeStreamsGroups(List.of(appId)).describedGroups().get(appId).get(15, TimeUnit.SECONDS);
            Main.obs.put("group_state_after", String.valueOf(d.groupState()));
            Main.obs.put("members_after", d.members().size());
            int active = 0;
            for (StreamsGroupMemberDescription m : d.members()) {
                for (StreamsGroupMemberAssignment.TaskIds t : m.assignment().activeTasks()) active += t.partitions().size();
            }
            Main.obs.put("active_tasks", active);
            // 2 subtopologies x 3 partitions, all on the live member once the dead one is gone.
            if (d.groupState() != GroupState.STABLE || active != 6) {
                throw new Main.Fail("group after recovery: " + d.groupState() + " with " + active + " active tasks: " + d);
            }
        }
        // kafka-streams-groups (StreamsGroupCommand) sees the group, its members and tasks.
        String list = tool("--list");
        if (!list.contains(appId)) throw new Main.Fail("kafka-streams-groups --list misses " + appId + ": " + list);
        String members = tool("--describe", "--members", "--group", appId);
        long memberRows = members.lines().filter(l -> l.startsWith(appId) && l.contains("ACTIVE:")).count();
        Main.obs.put("cli_member_rows", memberRows);
        if (memberRows != 2) {
            throw new Main.Fail("kafka-streams-groups --describe --members: " + members);
        }
        String offsets = tool("--describe", "--offsets", "--group", appId);
        if (!offsets.contains(input)) throw new Main.Fail("kafka-streams-groups --describe --offsets misses " + input + ": " + offsets);

        second.destroy();  // SIGTERM: a clean close leaves the group
        second.waitFor(20, TimeUnit.SECONDS);
        // An empty streams group can be deleted (its offsets with it).
        long until = System.currentTimeMillis() + 30_000;
        String deleted = "";
        boolean listed = true;
        try (Admin a = Main.admin()) {
            while (listed && System.currentTimeMillis() < until) {
                deleted = tool("--delete", "--group", appId);
                listed = a.listGroups().all().get(15, TimeUnit.SECONDS).stream().anyMatch(g -> g.groupId().equals(appId));
                if (listed) Thread.sleep(1000);
            }
        }
        Main.obs.put("cli_deleted", !listed);
        if (listed) throw new Main.Fail("the group is still listed after kafka-streams-groups --delete: " + deleted);
    }

    /** Runs Kafka's kafka-streams-groups tool class against the broker; its stdout and stderr. */
    static String tool(String... args) throws Exception {
        String javaBin = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(javaBin, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dlog4j2.configurationFile=" + System.getProperty("log4j2.configurationFile", ""),
            "-cp", System.getProperty("java.class.path"), "org.apache.kafka.tools.streams.StreamsGroupCommand",
            "--bootstrap-server", Main.bootstrap));
        cmd.addAll(Arrays.asList(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) p.destroyForcibly();
        return new String(out, java.nio.charset.StandardCharsets.UTF_8);
    }

    static void produceLines(int from, int to, Random rnd, Map<String, Integer> expected, String input) throws Exception {
        try (KafkaProducer<String, String> p = Main.producer("enable.idempotence", "true", "acks", "all")) {
            for (int i = from; i < to; i++) {
                StringBuilder line = new StringBuilder();
                for (int w = 0; w < 4; w++) {
                    String word = WORDS[rnd.nextInt(WORDS.length)];
                    expected.merge(word, 1, Integer::sum);
                    if (w > 0) line.append(' ');
                    line.append(word);
                }
                p.send(new ProducerRecord<>(input, "line-" + i, line.toString()));
            }
            p.flush();
        }
    }

    static KafkaConsumer<String, Long> outputConsumer() {
        Properties p = Main.common();
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", LongDeserializer.class.getName());
        p.put("isolation.level", "read_committed");
        p.put("enable.auto.commit", "false");
        return new KafkaConsumer<>(p);
    }

    static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
        List<TopicPartition> tps = new ArrayList<>();
        c.partitionsFor(topic, Duration.ofSeconds(15)).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
        return tps;
    }

    static boolean done(Map<String, List<Long>> seen, Map<String, Integer> expected) {
        for (Map.Entry<String, Integer> e : expected.entrySet()) {
            List<Long> got = seen.get(e.getKey());
            if (got == null || got.isEmpty() || got.get(got.size() - 1) != e.getValue().longValue()) return false;
        }
        return true;
    }

    static String abbreviate(List<Long> l) {
        return l.size() <= 12 ? l.toString() : l.subList(0, 6) + "..." + l.subList(l.size() - 6, l.size()) + " (" + l.size() + ")";
    }

    static String tail(File log) {
        try {
            List<String> lines = Files.readAllLines(log.toPath());
            StringBuilder sb = new StringBuilder();
            for (String l : lines.subList(Math.max(0, lines.size() - 8), lines.size())) sb.append(l).append(" | ");
            return sb.toString();
        } catch (Exception e) {
            return "(no log: " + e + ")";
        }
    }
}
