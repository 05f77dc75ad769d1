package strom.compat;

import static strom.compat.Main.admin;
import static strom.compat.Main.check;
import static strom.compat.Main.consumer;
import static strom.compat.Main.createTopic;
import static strom.compat.Main.obs;
import static strom.compat.Main.producer;
import static strom.compat.Main.produceValues;
import static strom.compat.Main.topic;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;

/**
 * sec-quota: client quotas (KIP-13 / KIP-55 byte rates, KIP-546 AlterClientQuotas /
 * DescribeClientQuotas, KIP-219 throttling), all through the PLAINTEXT listener (the bootstrap
 * argument). The quota entity is the cell's own client id, q-<topic>, so cells running in
 * parallel never share it; no default entity is ever set. The APIs used exist in kafka-clients
 * 2.6+, so it runs on every Java column.
 */
final class QuotaScenarios {
    private QuotaScenarios() {}

    static void run(String s) throws Exception {
        if (System.getenv("COMPAT_SECURITY") == null) throw new Main.NotYet("no COMPAT_SECURITY: the broker has no security listeners");
        if (!s.equals("sec-quota")) throw new Main.NotApplicable("no such quota scenario in the Java driver: " + s);
        quota();
    }

    /** The quotas of the cell's client id (20 kB/s each way) and what the cell moves through them. */
    static final double QUOTA_BYTES_PER_S = 20000.0;
    static final int QUOTA_RECORDS = 26, QUOTA_RECORD_BYTES = 10000;

    /** DescribeClientQuotas with an exact filter on client-id `cid`: "entity key=value" lines, sorted. */
    static List<String> describeClientQuotas(Admin a, String cid) throws Exception {
        ClientQuotaFilter f = ClientQuotaFilter.containsOnly(List.of(ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, cid)));
        Map<ClientQuotaEntity, Map<String, Double>> got = a.describeClientQuotas(f).entities().get(15, TimeUnit.SECONDS);
        List<String> out = new ArrayList<>();
        for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : got.entrySet()) {
            String ent = new TreeMap<>(e.getKey().entries()).toString().replace(cid, "<client>");
            for (Map.Entry<String, Double> kv : new TreeMap<>(e.getValue()).entrySet()) out.add(ent + " " + kv.getKey() + "=" + kv.getValue());
        }
        Collections.sort(out);
        return out;
    }

    /** Describes until the answer equals `want` (the quota reaches the broker through the metadata log), up to 10 s. */
    static List<String> describeUntil(Admin a, String cid, List<String> want) throws Exception {
        long end = System.currentTimeMillis() + 10000;
        List<String> got;
        while (true) {
            got = describeClientQuotas(a, cid);
            if (got.equals(want) || System.currentTimeMillis() > end) return got;
            Thread.sleep(200);
        }
    }

    /** The largest value of the client metric `name` (any group), NaN when it has none. */
    static double metricMax(Map<MetricName, ? extends Metric> metrics, String name) {
        double max = Double.NaN;
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (!e.getKey().name().equals(name)) continue;
            Object v = e.getValue().metricValue();
            if (v instanceof Double && !((Double) v).isNaN() && !((Double) v).isInfinite()) {
                max = Double.isNaN(max) ? (Double) v : Math.max(max, (Double) v);
            }
        }
        return max;
    }

    static String quotaValue(int i) {
        StringBuilder b = new StringBuilder("q" + i + "-");
        while (b.length() < QUOTA_RECORD_BYTES) b.append((char) ('a' + (b.length() % 26)));
        return b.toString();
    }

    /**
     * Client quotas: producer_byte_rate and consumer_byte_rate of 20 kB/s for the client-id entity
     * of this cell only (never a default entity: that would throttle every other cell), described
     * with an exact filter; a producer with that client id sends 26 x 10 kB and is throttled
     * (produce-throttle-time-max > 0), a consumer with it reads them all back and is throttled
     * (fetch-throttle-time-max > 0); after both quotas are removed the entity is described as nothing.
     */
    static void quota() throws Exception {
        createTopic(topic, 1, null);
        String cid = "q-" + topic;
        ClientQuotaEntity entity = new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, cid));
        try (Admin a = admin()) {
            a.alterClientQuotas(List.of(new ClientQuotaAlteration(entity, List.of(
                new ClientQuotaAlteration.Op("producer_byte_rate", QUOTA_BYTES_PER_S),
                new ClientQuotaAlteration.Op("consumer_byte_rate", QUOTA_BYTES_PER_S))))).all().get(15, TimeUnit.SECONDS);
            List<String> want = List.of("{client-id=<client>} consumer_byte_rate=20000.0", "{client-id=<client>} producer_byte_rate=20000.0");
            List<String> described = describeUntil(a, cid, want);
            obs.put("described", described);
            check(described.equals(want), "DescribeClientQuotas (exact client-id): " + described + ", expected " + want);

            // 260 kB at 20 kB/s: Kafka measures over at least 10 s, so ~200 kB pass before the throttle.
            // Large batches (a produce request holds one batch per partition) keep the producer's own
            // waits between requests short; its last response carries the throttle.
            List<String> values = new ArrayList<>();
            for (int i = 0; i < QUOTA_RECORDS; i++) values.add(quotaValue(i));
            long t0 = System.currentTimeMillis();
            List<RecordMetadata> md;
            double produceThrottle;
            try (KafkaProducer<String, String> p = producer("client.id", cid, "acks", "1", "batch.size", "131072",
                                                            "linger.ms", "50", "delivery.timeout.ms", "30000")) {
                md = produceValues(p, topic, values);
                produceThrottle = metricMax(p.metrics(), "produce-throttle-time-max");
            }
            long produceMs = System.currentTimeMillis() - t0;
            System.err.println("[sec-quota] produced " + md.size() + " in " + produceMs + " ms, produce-throttle-time-max " + produceThrottle);
            obs.put("produced_offsets", md.get(0).offset() + ".." + md.get(md.size() - 1).offset());
            obs.put("produce_throttled", produceThrottle > 0);
            check(md.size() == QUOTA_RECORDS && md.get(QUOTA_RECORDS - 1).offset() == QUOTA_RECORDS - 1, "produced offsets " + obs.get("produced_offsets"));
            check(produceThrottle > 0, "the producer saw no broker throttle (produce-throttle-time-max " + produceThrottle + ") after " + (QUOTA_RECORDS * QUOTA_RECORD_BYTES) + " bytes at producer_byte_rate=20000");

            // The consumer: 64 kB fetches; the fetch that crosses ~200 kB is throttled (answered without
            // records) until the rate's first second leaves its 11-sample window.
            t0 = System.currentTimeMillis();
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            double fetchThrottle;
            try (KafkaConsumer<String, String> c = consumer("client.id", cid, "fetch.max.bytes", "65536",
                                                                 "max.partition.fetch.bytes", "65536")) {
                TopicPartition tp = new TopicPartition(topic, 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long end = System.currentTimeMillis() + 25000;
                while (got.size() < QUOTA_RECORDS && System.currentTimeMillis() < end) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) got.add(r);
                }
                fetchThrottle = metricMax(c.metrics(), "fetch-throttle-time-max");
            }
            long consumeMs = System.currentTimeMillis() - t0;
            System.err.println("[sec-quota] consumed " + got.size() + " in " + consumeMs + " ms, fetch-throttle-time-max " + fetchThrottle);
            obs.put("consumed", got.size());
            obs.put("fetch_throttled", fetchThrottle > 0);
            boolean same = got.size() == QUOTA_RECORDS;
            for (int i = 0; same && i < QUOTA_RECORDS; i++) same = got.get(i).offset() == i && got.get(i).value().equals(values.get(i));
            check(same, "the consumer read " + got.size() + " of " + QUOTA_RECORDS + " records (or not the ones produced, in order) in " + consumeMs + " ms");
            check(fetchThrottle > 0, "the consumer saw no broker throttle (fetch-throttle-time-max " + fetchThrottle + ") reading " + (QUOTA_RECORDS * QUOTA_RECORD_BYTES) + " bytes at consumer_byte_rate=20000");

            // Remove both: the entity is described as nothing.
            a.alterClientQuotas(List.of(new ClientQuotaAlteration(entity, List.of(
                new ClientQuotaAlteration.Op("producer_byte_rate", null),
                new ClientQuotaAlteration.Op("consumer_byte_rate", null))))).all().get(15, TimeUnit.SECONDS);
            List<String> after = describeUntil(a, cid, List.of());
            obs.put("described_after_remove", after);
            check(after.isEmpty(), "DescribeClientQuotas after removing both: " + after + ", expected nothing");
        }
    }
}
