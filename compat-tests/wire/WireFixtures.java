// Writes byte-exact Kafka wire fixtures for Strom's codec tests.
//
// Each fixture is the body of one request or response (no size prefix, no request/response
// header) as serialized by Apache Kafka 4.4.0's own generated message classes
// (org.apache.kafka.common.message.*). Each is written as one lowercase hex line plus a newline
// to <outDir>/<name>.hex. Every fixture is read back with the generated class and must compare
// equal to the original and re-serialize to the same bytes; otherwise this program fails.
//
// Usage: java -cp <classes>:<kafka-clients-4.4.0.jar> WireFixtures <outDir>
// Normally run through compat-tests/wire/gen.sh.

import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.DeleteGroupsRequestData;
import org.apache.kafka.common.message.DeleteGroupsResponseData;
import org.apache.kafka.common.message.DescribeLogDirsRequestData;
import org.apache.kafka.common.message.DescribeLogDirsResponseData;
import org.apache.kafka.common.message.ListOffsetsRequestData;
import org.apache.kafka.common.message.ListOffsetsResponseData;
import org.apache.kafka.common.message.OffsetCommitRequestData;
import org.apache.kafka.common.message.OffsetCommitResponseData;
import org.apache.kafka.common.message.OffsetFetchRequestData;
import org.apache.kafka.common.message.OffsetFetchResponseData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.message.TxnOffsetCommitResponseData;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.protocol.Readable;

public final class WireFixtures {

    /** The one topic id every fixture uses. */
    static final Uuid U = new Uuid(0x0123456789abcdefL, 0x0fedcba987654321L);

    private record Fixture(String name, Message message, short version) {}

    private static final List<Fixture> FIXTURES = new ArrayList<>();

    private static void add(String name, int version, Message message) {
        FIXTURES.add(new Fixture(name, message, (short) version));
    }

    private static void define() {
        // ---- ApiVersions (key 18) ----
        add("api_versions_v5_request", 5, new ApiVersionsRequestData()
            .setClientSoftwareName("apache-kafka-java")
            .setClientSoftwareVersion("4.4.0")
            .setClusterId("AbCdEfGhIjKlMnOpQrStUw")
            .setNodeId(1));

        add("api_versions_v5_request_defaults", 5, new ApiVersionsRequestData()
            .setClientSoftwareName("apache-kafka-java")
            .setClientSoftwareVersion("4.4.0")
            .setClusterId(null)
            .setNodeId(-1));

        ApiVersionsResponseData.ApiVersionCollection apiKeys = new ApiVersionsResponseData.ApiVersionCollection();
        apiKeys.add(new ApiVersionsResponseData.ApiVersion()
            .setApiKey((short) 18).setMinVersion((short) 0).setMaxVersion((short) 5));
        apiKeys.add(new ApiVersionsResponseData.ApiVersion()
            .setApiKey((short) 3).setMinVersion((short) 0).setMaxVersion((short) 13));
        ApiVersionsResponseData.SupportedFeatureKeyCollection supported =
            new ApiVersionsResponseData.SupportedFeatureKeyCollection();
        supported.add(new ApiVersionsResponseData.SupportedFeatureKey()
            .setName("group.version").setMinVersion((short) 0).setMaxVersion((short) 1));
        ApiVersionsResponseData.FinalizedFeatureKeyCollection finalized =
            new ApiVersionsResponseData.FinalizedFeatureKeyCollection();
        finalized.add(new ApiVersionsResponseData.FinalizedFeatureKey()
            .setName("group.version").setMaxVersionLevel((short) 1).setMinVersionLevel((short) 1));
        add("api_versions_v5_response", 5, new ApiVersionsResponseData()
            .setErrorCode((short) 0)
            .setApiKeys(apiKeys)
            .setThrottleTimeMs(0)
            .setFinalizedFeaturesEpoch(7)
            .setSupportedFeatures(supported)
            .setFinalizedFeatures(finalized));

        // ---- ListOffsets (key 2) ----
        add("list_offsets_v11_request", 11, new ListOffsetsRequestData()
            .setReplicaId(-1)
            .setIsolationLevel((byte) 1)
            .setTimeoutMs(30000)
            .setTopics(List.of(new ListOffsetsRequestData.ListOffsetsTopic()
                .setName("t")
                .setPartitions(List.of(new ListOffsetsRequestData.ListOffsetsPartition()
                    .setPartitionIndex(0).setCurrentLeaderEpoch(5).setTimestamp(-6L))))));

        add("list_offsets_v11_response", 11, new ListOffsetsResponseData()
            .setThrottleTimeMs(0)
            .setTopics(List.of(new ListOffsetsResponseData.ListOffsetsTopicResponse()
                .setName("t")
                .setPartitions(List.of(new ListOffsetsResponseData.ListOffsetsPartitionResponse()
                    .setPartitionIndex(0).setErrorCode((short) 0).setTimestamp(-1L)
                    .setOffset(42L).setLeaderEpoch(0))))));

        // ---- DescribeLogDirs (key 35) ----
        add("describe_log_dirs_v5_request", 5, new DescribeLogDirsRequestData()
            .setTopics(null));

        add("describe_log_dirs_v5_response", 5, new DescribeLogDirsResponseData()
            .setThrottleTimeMs(0)
            .setErrorCode((short) 0)
            .setResults(List.of(new DescribeLogDirsResponseData.DescribeLogDirsResult()
                .setErrorCode((short) 0)
                .setLogDir("/data")
                .setTopics(List.of(new DescribeLogDirsResponseData.DescribeLogDirsTopic()
                    .setName("t")
                    .setPartitions(List.of(new DescribeLogDirsResponseData.DescribeLogDirsPartition()
                        .setPartitionIndex(0).setPartitionSize(1234L).setOffsetLag(0L)
                        .setIsFutureKey(false)))))
                .setTotalBytes(1000000L)
                .setUsableBytes(500000L)
                .setIsCordoned(true))));

        // ---- DeleteGroups (key 42) ----
        add("delete_groups_v3_request", 3, new DeleteGroupsRequestData()
            .setGroupsNames(List.of("g1", "g2")));

        DeleteGroupsResponseData.DeletableGroupResultCollection deleted =
            new DeleteGroupsResponseData.DeletableGroupResultCollection();
        deleted.add(new DeleteGroupsResponseData.DeletableGroupResult()
            .setGroupId("g1").setErrorCode((short) 0).setErrorMessage(null));
        deleted.add(new DeleteGroupsResponseData.DeletableGroupResult()
            .setGroupId("g2").setErrorCode((short) 69).setErrorMessage("The group id does not exist."));
        add("delete_groups_v3_response", 3, new DeleteGroupsResponseData()
            .setThrottleTimeMs(0)
            .setResults(deleted));

        // ---- OffsetCommit (key 8) ----
        add("offset_commit_v10_request", 10, new OffsetCommitRequestData()
            .setGroupId("g")
            .setGenerationIdOrMemberEpoch(3)
            .setMemberId("m")
            .setGroupInstanceId(null)
            .setTopics(List.of(new OffsetCommitRequestData.OffsetCommitRequestTopic()
                .setTopicId(U)
                .setPartitions(List.of(
                    new OffsetCommitRequestData.OffsetCommitRequestPartition()
                        .setPartitionIndex(0).setCommittedOffset(100L)
                        .setCommittedLeaderEpoch(2).setCommittedMetadata("meta"),
                    new OffsetCommitRequestData.OffsetCommitRequestPartition()
                        .setPartitionIndex(1).setCommittedOffset(200L)
                        .setCommittedLeaderEpoch(-1).setCommittedMetadata(null))))));

        add("offset_commit_v10_response", 10, new OffsetCommitResponseData()
            .setThrottleTimeMs(0)
            .setTopics(List.of(new OffsetCommitResponseData.OffsetCommitResponseTopic()
                .setTopicId(U)
                .setPartitions(List.of(
                    new OffsetCommitResponseData.OffsetCommitResponsePartition()
                        .setPartitionIndex(0).setErrorCode((short) 0),
                    new OffsetCommitResponseData.OffsetCommitResponsePartition()
                        .setPartitionIndex(1).setErrorCode((short) 0))))));

        // ---- OffsetFetch (key 9) ----
        add("offset_fetch_v10_request", 10, new OffsetFetchRequestData()
            .setRequireStable(true)
            .setGroups(List.of(
                new OffsetFetchRequestData.OffsetFetchRequestGroup()
                    .setGroupId("g").setMemberId("m").setMemberEpoch(3)
                    .setTopics(List.of(new OffsetFetchRequestData.OffsetFetchRequestTopics()
                        .setTopicId(U).setPartitionIndexes(List.of(0, 1)))),
                new OffsetFetchRequestData.OffsetFetchRequestGroup()
                    .setGroupId("h").setMemberId(null).setMemberEpoch(-1)
                    .setTopics(null))));

        add("offset_fetch_v10_response", 10, new OffsetFetchResponseData()
            .setThrottleTimeMs(0)
            .setGroups(List.of(
                new OffsetFetchResponseData.OffsetFetchResponseGroup()
                    .setGroupId("g").setErrorCode((short) 0)
                    .setTopics(List.of(new OffsetFetchResponseData.OffsetFetchResponseTopics()
                        .setTopicId(U)
                        .setPartitions(List.of(
                            new OffsetFetchResponseData.OffsetFetchResponsePartitions()
                                .setPartitionIndex(0).setCommittedOffset(100L)
                                .setCommittedLeaderEpoch(2).setMetadata("meta")
                                .setErrorCode((short) 0),
                            new OffsetFetchResponseData.OffsetFetchResponsePartitions()
                                .setPartitionIndex(1).setCommittedOffset(-1L)
                                .setCommittedLeaderEpoch(-1).setMetadata("")
                                .setErrorCode((short) 0))))),
                new OffsetFetchResponseData.OffsetFetchResponseGroup()
                    .setGroupId("h").setErrorCode((short) 0)
                    .setTopics(Collections.emptyList()))));

        // ---- TxnOffsetCommit (key 28) ----
        add("txn_offset_commit_v6_request", 6, new TxnOffsetCommitRequestData()
            .setTransactionalId("tx")
            .setGroupId("g")
            .setProducerId(7L)
            .setProducerEpoch((short) 1)
            .setGenerationIdOrMemberEpoch(3)
            .setMemberId("m")
            .setGroupInstanceId(null)
            .setTopics(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic()
                .setTopicId(U)
                .setPartitions(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                    .setPartitionIndex(0).setCommittedOffset(100L)
                    .setCommittedLeaderEpoch(2).setCommittedMetadata("meta"))))));

        add("txn_offset_commit_v6_response", 6, new TxnOffsetCommitResponseData()
            .setThrottleTimeMs(0)
            .setTopics(List.of(new TxnOffsetCommitResponseData.TxnOffsetCommitResponseTopic()
                .setTopicId(U)
                .setPartitions(List.of(new TxnOffsetCommitResponseData.TxnOffsetCommitResponsePartition()
                    .setPartitionIndex(0).setErrorCode((short) 0))))));
    }

    /** Serializes the message body at the given version, exactly as the Kafka client does. */
    static byte[] serialize(Message message, short version) {
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = message.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(size);
        message.write(new ByteBufferAccessor(buf), cache, version);
        if (buf.position() != size) {
            throw new IllegalStateException(message.getClass().getSimpleName() + " v" + version
                + ": size() said " + size + " but write() produced " + buf.position() + " bytes");
        }
        return buf.array();
    }

    /** Reads the bytes back with the generated class's (Readable, short) constructor. */
    static Message deserialize(Class<? extends Message> cls, byte[] bytes, short version) throws Exception {
        Constructor<? extends Message> ctor = cls.getConstructor(Readable.class, short.class);
        ByteBuffer buf = ByteBuffer.wrap(bytes);
        Message back = ctor.newInstance(new ByteBufferAccessor(buf), version);
        if (buf.hasRemaining()) {
            throw new IllegalStateException(cls.getSimpleName() + " v" + version + ": "
                + buf.remaining() + " trailing bytes left after reading back");
        }
        return back;
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: WireFixtures <outDir>");
            System.exit(2);
        }
        Path outDir = Paths.get(args[0]);
        Files.createDirectories(outDir);
        define();

        // Build and verify everything first; write only if every fixture round-trips.
        Map<String, String> out = new LinkedHashMap<>();
        List<String> failures = new ArrayList<>();
        for (Fixture f : FIXTURES) {
            if (out.containsKey(f.name())) throw new IllegalStateException("duplicate fixture " + f.name());
            short lo = ((org.apache.kafka.common.protocol.ApiMessage) f.message()).lowestSupportedVersion();
            short hi = ((org.apache.kafka.common.protocol.ApiMessage) f.message()).highestSupportedVersion();
            if (f.version() < lo || f.version() > hi) {
                failures.add(f.name() + ": version " + f.version() + " outside " + lo + "-" + hi);
                continue;
            }
            byte[] bytes = serialize(f.message(), f.version());
            Message back = deserialize(f.message().getClass(), bytes, f.version());
            if (!back.equals(f.message())) {
                failures.add(f.name() + ": read-back differs\n  wrote: " + f.message() + "\n  read:  " + back);
                continue;
            }
            byte[] again = serialize(back, f.version());
            if (!Arrays.equals(bytes, again)) {
                failures.add(f.name() + ": re-serializing the read-back message gives different bytes");
                continue;
            }
            out.put(f.name(), hex(bytes));
        }
        if (!failures.isEmpty()) {
            for (String s : failures) System.err.println("FAIL " + s);
            System.err.println(failures.size() + " fixture(s) failed; nothing written");
            System.exit(1);
        }
        for (Map.Entry<String, String> e : out.entrySet()) {
            Path p = outDir.resolve(e.getKey() + ".hex");
            Files.write(p, (e.getValue() + "\n").getBytes(StandardCharsets.US_ASCII));
            System.out.println("wrote " + p + " (" + e.getValue().length() / 2 + " bytes)");
        }
    }
}
