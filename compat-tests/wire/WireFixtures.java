// Writes byte-exact Kafka wire fixtures for Strom's codec tests.
//
// Each fixture is the body of one request or response (no size prefix, no request/response
// header) as serialized by Apache Kafka 4.4.0's own generated message classes
// (org.apache.kafka.common.message.*). Each is written as one lowercase hex line plus a newline
// to <outDir>/<name>.hex. Every fixture is read back with the generated class and must compare
// equal to the original and re-serialize to the same bytes; otherwise this program fails.
//
// It also writes the KEY and VALUE bytes of records the group coordinator stores in
// __consumer_offsets (<name>_key.hex, <name>_value.hex), serialized by Kafka's own
// GroupCoordinatorRecordSerde (kafka-group-coordinator-4.4.0.jar): key = int16 record type id +
// key message at version 0; value = int16 value version + value message at that version. Each is
// cross-checked against those bytes built by hand, read back with the serde and with the
// generated key/value classes, and must compare equal.
//
// Usage: java -cp <classes>:<compat-tests/.cache/lib44/*> WireFixtures <outDir>
//        (needs kafka-clients, kafka-server-common, kafka-coordinator-common and
//        kafka-group-coordinator 4.4.0)
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
import org.apache.kafka.common.message.ShareAcknowledgeRequestData;
import org.apache.kafka.common.message.ShareAcknowledgeResponseData;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.message.StreamsGroupDescribeRequestData;
import org.apache.kafka.common.message.StreamsGroupDescribeResponseData;
import org.apache.kafka.common.message.StreamsGroupHeartbeatRequestData;
import org.apache.kafka.common.message.StreamsGroupHeartbeatResponseData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.message.TxnOffsetCommitResponseData;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.protocol.Readable;
import org.apache.kafka.coordinator.common.runtime.CoordinatorRecord;
import org.apache.kafka.coordinator.group.GroupCoordinatorRecordSerde;
import org.apache.kafka.coordinator.share.generated.ShareSnapshotKey;
import org.apache.kafka.coordinator.share.generated.ShareSnapshotValue;
import org.apache.kafka.coordinator.share.generated.ShareUpdateKey;
import org.apache.kafka.coordinator.share.generated.ShareUpdateValue;
import org.apache.kafka.coordinator.group.generated.CoordinatorRecordType;
import org.apache.kafka.coordinator.group.generated.StreamsGroupCurrentMemberAssignmentKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupCurrentMemberAssignmentValue;
import org.apache.kafka.coordinator.group.generated.ShareGroupCurrentMemberAssignmentKey;
import org.apache.kafka.coordinator.group.generated.ShareGroupCurrentMemberAssignmentValue;
import org.apache.kafka.coordinator.group.generated.ShareGroupMemberMetadataKey;
import org.apache.kafka.coordinator.group.generated.ShareGroupMemberMetadataValue;
import org.apache.kafka.coordinator.group.generated.ShareGroupMetadataKey;
import org.apache.kafka.coordinator.group.generated.ShareGroupMetadataValue;
import org.apache.kafka.coordinator.group.generated.StreamsGroupMemberMetadataKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupMemberMetadataValue;
import org.apache.kafka.coordinator.group.generated.StreamsGroupMetadataKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupMetadataValue;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTargetAssignmentMemberKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTargetAssignmentMemberValue;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTargetAssignmentMetadataKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTargetAssignmentMetadataValue;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTopologyKey;
import org.apache.kafka.coordinator.group.generated.StreamsGroupTopologyValue;
import org.apache.kafka.server.common.ApiMessageAndVersion;

public final class WireFixtures {

    /** The one topic id every fixture uses. */
    static final Uuid U = new Uuid(0x0123456789abcdefL, 0x0fedcba987654321L);

    private record Fixture(String name, Message message, short version) {}

    private static final List<Fixture> FIXTURES = new ArrayList<>();

    private static void add(String name, int version, Message message) {
        FIXTURES.add(new Fixture(name, message, (short) version));
    }

    /** A __consumer_offsets record: written as <name>_key.hex and <name>_value.hex. */
    private record RecordFixture(String name, CoordinatorRecordType type, ApiMessage key, ApiMessage value,
                                 short valueVersion) {}

    private static final List<RecordFixture> RECORDS = new ArrayList<>();

    private static void addRecord(String name, CoordinatorRecordType type, ApiMessage key, int valueVersion,
                                  ApiMessage value) {
        RECORDS.add(new RecordFixture(name, type, key, value, (short) valueVersion));
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

        // ---- ShareFetch (key 78) v2 and ShareAcknowledge (key 79) v2 (KIP-1206, KIP-1222) ----
        ShareFetchRequestData.FetchTopicCollection fetchTopics = new ShareFetchRequestData.FetchTopicCollection();
        ShareFetchRequestData.FetchPartitionCollection fetchParts = new ShareFetchRequestData.FetchPartitionCollection();
        fetchParts.add(new ShareFetchRequestData.FetchPartition().setPartitionIndex(0)
            .setAcknowledgementBatches(List.of(
                new ShareFetchRequestData.AcknowledgementBatch().setFirstOffset(10L).setLastOffset(12L)
                    .setAcknowledgeTypes(List.of((byte) 1)),
                new ShareFetchRequestData.AcknowledgementBatch().setFirstOffset(13L).setLastOffset(15L)
                    .setAcknowledgeTypes(List.of((byte) 2, (byte) 0, (byte) 3)))));
        fetchParts.add(new ShareFetchRequestData.FetchPartition().setPartitionIndex(3));
        fetchTopics.add(new ShareFetchRequestData.FetchTopic().setTopicId(U).setPartitions(fetchParts));
        add("share_fetch_v2_request", 2, new ShareFetchRequestData()
            .setGroupId("sg").setMemberId("AAAAAAAAAAAAAAAAAAAAAA").setShareSessionEpoch(4)
            .setMaxWaitMs(500).setMinBytes(1).setMaxBytes(52428800).setMaxRecords(500).setBatchSize(500)
            .setShareAcquireMode((byte) 1).setIsRenewAck(true)
            .setTopics(fetchTopics)
            .setForgottenTopicsData(List.of(new ShareFetchRequestData.ForgottenTopic()
                .setTopicId(U).setPartitions(List.of(1, 2)))));

        ShareFetchResponseData.PartitionData withRecords = new ShareFetchResponseData.PartitionData()
            .setPartitionIndex(0).setErrorCode((short) 0).setAcknowledgeErrorCode((short) 121)
            .setAcknowledgeErrorMessage("bad state")
            .setCurrentLeader(new ShareFetchResponseData.LeaderIdAndEpoch().setLeaderId(1).setLeaderEpoch(7))
            .setRecords(MemoryRecords.readableRecords(java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5})))
            .setAcquiredRecords(List.of(
                new ShareFetchResponseData.AcquiredRecords().setFirstOffset(20L).setLastOffset(24L).setDeliveryCount((short) 1),
                new ShareFetchResponseData.AcquiredRecords().setFirstOffset(26L).setLastOffset(26L).setDeliveryCount((short) 3)));
        ShareFetchResponseData.PartitionData errored = new ShareFetchResponseData.PartitionData()
            .setPartitionIndex(3).setErrorCode((short) 6).setErrorMessage("not leader")
            .setCurrentLeader(new ShareFetchResponseData.LeaderIdAndEpoch().setLeaderId(2).setLeaderEpoch(9))
            .setRecords(MemoryRecords.EMPTY);
        ShareFetchResponseData.ShareFetchableTopicResponseCollection fetched =
            new ShareFetchResponseData.ShareFetchableTopicResponseCollection();
        fetched.add(new ShareFetchResponseData.ShareFetchableTopicResponse().setTopicId(U)
            .setPartitions(List.of(withRecords, errored)));
        ShareFetchResponseData.NodeEndpointCollection fetchNodes = new ShareFetchResponseData.NodeEndpointCollection();
        fetchNodes.add(new ShareFetchResponseData.NodeEndpoint().setNodeId(2).setHost("h2").setPort(9093).setRack("r2"));
        add("share_fetch_v2_response", 2, new ShareFetchResponseData()
            .setThrottleTimeMs(0).setErrorCode((short) 0).setErrorMessage(null)
            .setAcquisitionLockTimeoutMs(30000).setResponses(fetched).setNodeEndpoints(fetchNodes));

        ShareAcknowledgeRequestData.AcknowledgeTopicCollection ackTopics =
            new ShareAcknowledgeRequestData.AcknowledgeTopicCollection();
        ShareAcknowledgeRequestData.AcknowledgePartitionCollection ackParts =
            new ShareAcknowledgeRequestData.AcknowledgePartitionCollection();
        ackParts.add(new ShareAcknowledgeRequestData.AcknowledgePartition().setPartitionIndex(2)
            .setAcknowledgementBatches(List.of(
                new ShareAcknowledgeRequestData.AcknowledgementBatch().setFirstOffset(0L).setLastOffset(1L)
                    .setAcknowledgeTypes(List.of((byte) 4, (byte) 1)))));
        ackTopics.add(new ShareAcknowledgeRequestData.AcknowledgeTopic().setTopicId(U).setPartitions(ackParts));
        add("share_acknowledge_v2_request", 2, new ShareAcknowledgeRequestData()
            .setGroupId("sg").setMemberId("AAAAAAAAAAAAAAAAAAAAAA").setShareSessionEpoch(5)
            .setIsRenewAck(true).setTopics(ackTopics));

        ShareAcknowledgeResponseData.ShareAcknowledgeTopicResponseCollection acked =
            new ShareAcknowledgeResponseData.ShareAcknowledgeTopicResponseCollection();
        acked.add(new ShareAcknowledgeResponseData.ShareAcknowledgeTopicResponse().setTopicId(U)
            .setPartitions(List.of(new ShareAcknowledgeResponseData.PartitionData().setPartitionIndex(2)
                .setErrorCode((short) 121).setErrorMessage("bad")
                .setCurrentLeader(new ShareAcknowledgeResponseData.LeaderIdAndEpoch().setLeaderId(1).setLeaderEpoch(3)))));
        add("share_acknowledge_v2_response", 2, new ShareAcknowledgeResponseData()
            .setThrottleTimeMs(0).setErrorCode((short) 0).setAcquisitionLockTimeoutMs(15000)
            .setResponses(acked).setNodeEndpoints(new ShareAcknowledgeResponseData.NodeEndpointCollection()));

        // ---- __share_group_state records (bodies; the int16 type id / value version prefix is
        // added by the share coordinator's serde as for __consumer_offsets) ----
        add("share_snapshot_key", 0, new ShareSnapshotKey().setGroupId("sg").setTopicId(U).setPartition(3));
        add("share_snapshot_value", 0, new ShareSnapshotValue()
            .setSnapshotEpoch(2).setStateEpoch(1).setLeaderEpoch(5).setStartOffset(100L)
            .setCreateTimestamp(1700000000000L).setWriteTimestamp(1700000001000L)
            .setStateBatches(List.of(
                new ShareSnapshotValue.StateBatch().setFirstOffset(100L).setLastOffset(104L)
                    .setDeliveryState((byte) 0).setDeliveryCount((short) 2),
                new ShareSnapshotValue.StateBatch().setFirstOffset(105L).setLastOffset(105L)
                    .setDeliveryState((byte) 4).setDeliveryCount((short) 5))));
        add("share_update_key", 0, new ShareUpdateKey().setGroupId("sg").setTopicId(U).setPartition(3));
        add("share_update_value", 0, new ShareUpdateValue()
            .setSnapshotEpoch(2).setLeaderEpoch(5).setStartOffset(103L)
            .setStateBatches(List.of(new ShareUpdateValue.StateBatch().setFirstOffset(103L).setLastOffset(110L)
                .setDeliveryState((byte) 2).setDeliveryCount((short) 1))));

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

        // ---- StreamsGroupHeartbeat (key 88) ----
        add("streams_group_heartbeat_v1_request", 1, new StreamsGroupHeartbeatRequestData()
            .setGroupId("app")
            .setMemberId("m1")
            .setMemberEpoch(0)
            .setEndpointInformationEpoch(0)
            .setInstanceId(null)
            .setRackId("r1")
            .setRebalanceTimeoutMs(30000)
            .setTopology(new StreamsGroupHeartbeatRequestData.Topology()
                .setEpoch(1)
                .setSubtopologies(List.of(
                    new StreamsGroupHeartbeatRequestData.Subtopology()
                        .setSubtopologyId("0")
                        .setSourceTopics(List.of("input"))
                        .setSourceTopicRegex(Collections.emptyList())
                        .setStateChangelogTopics(List.of(new StreamsGroupHeartbeatRequestData.TopicInfo()
                            .setName("app-store-changelog").setPartitions(0).setReplicationFactor((short) 0)
                            .setTopicConfigs(List.of(new StreamsGroupHeartbeatRequestData.KeyValue()
                                .setKey("cleanup.policy").setValue("compact")))))
                        .setRepartitionSinkTopics(List.of("app-rep-repartition"))
                        .setRepartitionSourceTopics(Collections.emptyList())
                        .setCopartitionGroups(Collections.emptyList()),
                    new StreamsGroupHeartbeatRequestData.Subtopology()
                        .setSubtopologyId("1")
                        .setSourceTopics(Collections.emptyList())
                        .setSourceTopicRegex(Collections.emptyList())
                        .setStateChangelogTopics(Collections.emptyList())
                        .setRepartitionSinkTopics(Collections.emptyList())
                        .setRepartitionSourceTopics(List.of(new StreamsGroupHeartbeatRequestData.TopicInfo()
                            .setName("app-rep-repartition").setPartitions(4).setReplicationFactor((short) -1)
                            .setTopicConfigs(Collections.emptyList())))
                        .setCopartitionGroups(List.of(new StreamsGroupHeartbeatRequestData.CopartitionGroup()
                            .setSourceTopics(List.of((short) 0))
                            .setSourceTopicRegex(Collections.emptyList())
                            .setRepartitionSourceTopics(List.of((short) 0)))))))
            .setActiveTasks(Collections.emptyList())
            .setStandbyTasks(Collections.emptyList())
            .setWarmupTasks(Collections.emptyList())
            .setProcessId("p-1")
            .setUserEndpoint(new StreamsGroupHeartbeatRequestData.Endpoint()
                .setHost("localhost").setPort(8080))
            .setClientTags(List.of(new StreamsGroupHeartbeatRequestData.KeyValue()
                .setKey("zone").setValue("a")))
            .setTaskOffsets(List.of(new StreamsGroupHeartbeatRequestData.TaskOffset()
                .setSubtopologyId("0").setPartition(1).setOffset(10L)))
            .setTaskEndOffsets(List.of(new StreamsGroupHeartbeatRequestData.TaskOffset()
                .setSubtopologyId("0").setPartition(1).setOffset(12L)))
            .setShutdownApplication(false));

        add("streams_group_heartbeat_v0_request_minimal", 0, new StreamsGroupHeartbeatRequestData()
            .setGroupId("app")
            .setMemberId("m1")
            .setMemberEpoch(5)
            .setEndpointInformationEpoch(1)
            .setInstanceId(null)
            .setRackId(null)
            .setRebalanceTimeoutMs(-1)
            .setTopology(null)
            .setActiveTasks(null)
            .setStandbyTasks(null)
            .setWarmupTasks(null)
            .setProcessId(null)
            .setUserEndpoint(null)
            .setClientTags(null)
            .setTaskOffsets(null)
            .setTaskEndOffsets(null)
            .setShutdownApplication(true));

        // Fields common to the v0 and v1 responses; each version adds its own fields to a copy.
        StreamsGroupHeartbeatResponseData heartbeat = new StreamsGroupHeartbeatResponseData()
            .setThrottleTimeMs(0)
            .setErrorCode((short) 0)
            .setErrorMessage(null)
            .setMemberId("m1")
            .setMemberEpoch(2)
            .setHeartbeatIntervalMs(5000)
            .setTaskOffsetIntervalMs(60000)
            .setStatus(List.of(new StreamsGroupHeartbeatResponseData.Status()
                .setStatusCode((byte) 1)
                .setStatusDetail("Internal topics are missing: [app-rep-repartition]")))
            .setActiveTasks(List.of(new StreamsGroupHeartbeatResponseData.TaskIds()
                .setSubtopologyId("0").setPartitions(List.of(0, 1))))
            .setStandbyTasks(Collections.emptyList())
            .setWarmupTasks(Collections.emptyList())
            .setEndpointInformationEpoch(1)
            .setPartitionsByUserEndpoint(List.of(new StreamsGroupHeartbeatResponseData.EndpointToPartitions()
                .setUserEndpoint(new StreamsGroupHeartbeatResponseData.Endpoint()
                    .setHost("localhost").setPort(8080))
                .setActivePartitions(List.of(new StreamsGroupHeartbeatResponseData.TopicPartition()
                    .setTopic("input").setPartitions(List.of(0, 1))))
                .setStandbyPartitions(Collections.emptyList())));
        add("streams_group_heartbeat_v1_response", 1, heartbeat.duplicate()
            .setAcceptableRecoveryLag(10000L)
            .setTopologyDescriptionRequired(true));
        add("streams_group_heartbeat_v0_response", 0, heartbeat.duplicate()
            .setAcceptableRecoveryLagLegacy(10000));

        add("streams_group_heartbeat_v0_response_error", 0, new StreamsGroupHeartbeatResponseData()
            .setThrottleTimeMs(0)
            .setErrorCode((short) 42)
            .setErrorMessage("MemberEpoch is invalid.")
            .setMemberId("")
            .setMemberEpoch(0)
            .setHeartbeatIntervalMs(0)
            .setAcceptableRecoveryLagLegacy(0)
            .setTaskOffsetIntervalMs(0)
            .setStatus(null)
            .setActiveTasks(null)
            .setStandbyTasks(null)
            .setWarmupTasks(null)
            .setEndpointInformationEpoch(0)
            .setPartitionsByUserEndpoint(null));

        // ---- StreamsGroupDescribe (key 89) ----
        add("streams_group_describe_v1_request", 1, new StreamsGroupDescribeRequestData()
            .setGroupIds(List.of("app", "nope"))
            .setIncludeAuthorizedOperations(true)
            .setIncludeTopologyDescription(true));

        add("streams_group_describe_v0_request", 0, new StreamsGroupDescribeRequestData()
            .setGroupIds(List.of("app"))
            .setIncludeAuthorizedOperations(false));

        StreamsGroupDescribeResponseData.Assignment assignment = new StreamsGroupDescribeResponseData.Assignment()
            .setActiveTasks(List.of(new StreamsGroupDescribeResponseData.TaskIds()
                .setSubtopologyId("0").setPartitions(List.of(0, 1))))
            .setStandbyTasks(Collections.emptyList())
            .setWarmupTasks(Collections.emptyList());
        StreamsGroupDescribeResponseData describe = new StreamsGroupDescribeResponseData()
            .setThrottleTimeMs(0)
            .setGroups(List.of(
                new StreamsGroupDescribeResponseData.DescribedGroup()
                    .setErrorCode((short) 0)
                    .setErrorMessage(null)
                    .setGroupId("app")
                    .setGroupState("Stable")
                    .setGroupEpoch(3)
                    .setAssignmentEpoch(3)
                    .setTopology(new StreamsGroupDescribeResponseData.Topology()
                        .setEpoch(1)
                        .setSubtopologies(List.of(new StreamsGroupDescribeResponseData.Subtopology()
                            .setSubtopologyId("0")
                            .setSourceTopics(List.of("input"))
                            .setRepartitionSinkTopics(Collections.emptyList())
                            .setStateChangelogTopics(List.of(new StreamsGroupDescribeResponseData.TopicInfo()
                                .setName("app-store-changelog").setPartitions(2).setReplicationFactor((short) 1)
                                .setTopicConfigs(Collections.emptyList())))
                            .setRepartitionSourceTopics(Collections.emptyList()))))
                    .setMembers(List.of(new StreamsGroupDescribeResponseData.Member()
                        .setMemberId("m1")
                        .setMemberEpoch(3)
                        .setInstanceId(null)
                        .setRackId(null)
                        .setClientId("app-client")
                        .setClientHost("/127.0.0.1")
                        .setTopologyEpoch(1)
                        .setProcessId("p-1")
                        .setUserEndpoint(new StreamsGroupDescribeResponseData.Endpoint()
                            .setHost("localhost").setPort(8080))
                        .setClientTags(List.of(new StreamsGroupDescribeResponseData.KeyValue()
                            .setKey("zone").setValue("a")))
                        .setTaskOffsets(Collections.emptyList())
                        .setTaskEndOffsets(Collections.emptyList())
                        .setAssignment(assignment.duplicate())
                        .setTargetAssignment(assignment.duplicate())
                        .setIsClassic(false)))
                    .setAuthorizedOperations(2147483647),
                new StreamsGroupDescribeResponseData.DescribedGroup()
                    .setErrorCode((short) 69)
                    .setErrorMessage("Group nope not found.")
                    .setGroupId("nope")
                    .setGroupState("Dead")
                    .setGroupEpoch(-1)
                    .setAssignmentEpoch(-1)
                    .setTopology(null)
                    .setMembers(Collections.emptyList())
                    .setAuthorizedOperations(-2147483648)));
        add("streams_group_describe_v0_response", 0, describe);

        StreamsGroupDescribeResponseData describeV1 = describe.duplicate();
        describeV1.groups().get(0)
            .setTopologyDescription(null).setTopologyDescriptionStatus((byte) 0).setAssignorName("sticky");
        describeV1.groups().get(1)
            .setTopologyDescription(null).setTopologyDescriptionStatus((byte) 0).setAssignorName(null);
        add("streams_group_describe_v1_response", 1, describeV1);

        // ---- __consumer_offsets records of STREAMS groups (KIP-1071) ----
        addRecord("streams_record_metadata", CoordinatorRecordType.STREAMS_GROUP_METADATA,
            new StreamsGroupMetadataKey().setGroupId("app"),
            0, new StreamsGroupMetadataValue()
                .setEpoch(5)
                .setMetadataHash(1234567890123L)
                .setValidatedTopologyEpoch(1)
                .setLastAssignmentConfigs(List.of(new StreamsGroupMetadataValue.LastAssignmentConfig()
                    .setKey("num.standby.replicas").setValue("1"))));

        addRecord("streams_record_topology", CoordinatorRecordType.STREAMS_GROUP_TOPOLOGY,
            new StreamsGroupTopologyKey().setGroupId("app"),
            0, new StreamsGroupTopologyValue()
                .setEpoch(1)
                .setSubtopologies(List.of(
                    new StreamsGroupTopologyValue.Subtopology()
                        .setSubtopologyId("0")
                        .setSourceTopics(List.of("input"))
                        .setSourceTopicRegex(Collections.emptyList())
                        .setStateChangelogTopics(Collections.emptyList())
                        .setRepartitionSinkTopics(List.of("app-rep-repartition"))
                        .setRepartitionSourceTopics(Collections.emptyList())
                        .setCopartitionGroups(Collections.emptyList()),
                    new StreamsGroupTopologyValue.Subtopology()
                        .setSubtopologyId("1")
                        .setSourceTopics(Collections.emptyList())
                        .setSourceTopicRegex(Collections.emptyList())
                        .setStateChangelogTopics(List.of(new StreamsGroupTopologyValue.TopicInfo()
                            .setName("app-store-changelog").setPartitions(0).setReplicationFactor((short) 0)
                            .setTopicConfigs(List.of(new StreamsGroupTopologyValue.TopicConfig()
                                .setKey("cleanup.policy").setValue("compact")))))
                        .setRepartitionSinkTopics(Collections.emptyList())
                        .setRepartitionSourceTopics(List.of(new StreamsGroupTopologyValue.TopicInfo()
                            .setName("app-rep-repartition").setPartitions(4).setReplicationFactor((short) -1)
                            .setTopicConfigs(Collections.emptyList())))
                        .setCopartitionGroups(List.of(new StreamsGroupTopologyValue.CopartitionGroup()
                            .setSourceTopics(Collections.emptyList())
                            .setSourceTopicRegex(Collections.emptyList())
                            .setRepartitionSourceTopics(List.of((short) 0)))))));

        addRecord("share_record_member", CoordinatorRecordType.SHARE_GROUP_MEMBER_METADATA,
            new ShareGroupMemberMetadataKey().setGroupId("sg").setMemberId("m1"),
            0, new ShareGroupMemberMetadataValue().setRackId("r1").setClientId("c1")
                .setClientHost("/127.0.0.1").setSubscribedTopicNames(List.of("a", "b")));
        addRecord("share_record_metadata", CoordinatorRecordType.SHARE_GROUP_METADATA,
            new ShareGroupMetadataKey().setGroupId("sg"),
            0, new ShareGroupMetadataValue().setEpoch(7).setMetadataHash(12345L));
        addRecord("share_record_current", CoordinatorRecordType.SHARE_GROUP_CURRENT_MEMBER_ASSIGNMENT,
            new ShareGroupCurrentMemberAssignmentKey().setGroupId("sg").setMemberId("m1"),
            0, new ShareGroupCurrentMemberAssignmentValue().setMemberEpoch(7).setPreviousMemberEpoch(6)
                .setState((byte) 0).setAssignedPartitions(List.of(
                    new ShareGroupCurrentMemberAssignmentValue.TopicPartitions().setTopicId(U).setPartitions(List.of(0, 2)))));

        addRecord("streams_record_member", CoordinatorRecordType.STREAMS_GROUP_MEMBER_METADATA,
            new StreamsGroupMemberMetadataKey().setGroupId("app").setMemberId("m1"),
            0, new StreamsGroupMemberMetadataValue()
                .setInstanceId(null)
                .setRackId("r1")
                .setClientId("app-client")
                .setClientHost("/127.0.0.1")
                .setRebalanceTimeoutMs(30000)
                .setTopologyEpoch(1)
                .setProcessId("p-1")
                .setUserEndpoint(new StreamsGroupMemberMetadataValue.Endpoint()
                    .setHost("localhost").setPort(8080))
                .setClientTags(List.of(new StreamsGroupMemberMetadataValue.KeyValue()
                    .setKey("zone").setValue("a"))));

        addRecord("streams_record_target_epoch", CoordinatorRecordType.STREAMS_GROUP_TARGET_ASSIGNMENT_METADATA,
            new StreamsGroupTargetAssignmentMetadataKey().setGroupId("app"),
            0, new StreamsGroupTargetAssignmentMetadataValue()
                .setAssignmentEpoch(5));

        addRecord("streams_record_target_member", CoordinatorRecordType.STREAMS_GROUP_TARGET_ASSIGNMENT_MEMBER,
            new StreamsGroupTargetAssignmentMemberKey().setGroupId("app").setMemberId("m1"),
            0, new StreamsGroupTargetAssignmentMemberValue()
                .setActiveTasks(List.of(
                    new StreamsGroupTargetAssignmentMemberValue.TaskIds()
                        .setSubtopologyId("0").setPartitions(List.of(0, 1)),
                    new StreamsGroupTargetAssignmentMemberValue.TaskIds()
                        .setSubtopologyId("1").setPartitions(List.of(2))))
                .setStandbyTasks(List.of(new StreamsGroupTargetAssignmentMemberValue.TaskIds()
                    .setSubtopologyId("1").setPartitions(List.of(3))))
                .setWarmupTasks(Collections.emptyList()));

        addRecord("streams_record_current", CoordinatorRecordType.STREAMS_GROUP_CURRENT_MEMBER_ASSIGNMENT,
            new StreamsGroupCurrentMemberAssignmentKey().setGroupId("app").setMemberId("m1"),
            0, new StreamsGroupCurrentMemberAssignmentValue()
                .setMemberEpoch(5)
                .setPreviousMemberEpoch(4)
                .setState((byte) 1) // org.apache.kafka.coordinator.group.streams.MemberState.STABLE
                .setActiveTasks(List.of(new StreamsGroupCurrentMemberAssignmentValue.TaskIds()
                    .setSubtopologyId("0").setPartitions(List.of(0))))
                .setStandbyTasks(Collections.emptyList())
                .setWarmupTasks(Collections.emptyList())
                .setActiveTasksPendingRevocation(List.of(new StreamsGroupCurrentMemberAssignmentValue.TaskIds()
                    .setSubtopologyId("0").setPartitions(List.of(1))))
                .setStandbyTasksPendingRevocation(Collections.emptyList())
                .setWarmupTasksPendingRevocation(Collections.emptyList()));
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

    /** Prefixes the bytes with an int16, as the coordinator record serde does. */
    static byte[] int16Prefixed(short prefix, byte[] bytes) {
        return ByteBuffer.allocate(2 + bytes.length).putShort(prefix).put(bytes).array();
    }

    /**
     * Serializes one __consumer_offsets record with GroupCoordinatorRecordSerde, checks it against
     * the bytes built by hand and reads it back; returns null (after adding to failures) on a mismatch.
     */
    static byte[][] serializeRecord(RecordFixture f, List<String> failures) throws Exception {
        String n = f.name();
        if (f.key().apiKey() != f.type().id() || f.value().apiKey() != f.type().id()) {
            failures.add(n + ": key/value apiKey " + f.key().apiKey() + "/" + f.value().apiKey()
                + " != record type id " + f.type().id());
            return null;
        }
        if (f.type().newRecordKey().getClass() != f.key().getClass()
            || f.type().newRecordValue().getClass() != f.value().getClass()) {
            failures.add(n + ": key/value classes do not match record type " + f.type());
            return null;
        }
        if (f.valueVersion() < f.type().lowestSupportedVersion() || f.valueVersion() > f.type().highestSupportedVersion()) {
            failures.add(n + ": value version " + f.valueVersion() + " outside " + f.type().lowestSupportedVersion()
                + "-" + f.type().highestSupportedVersion());
            return null;
        }
        GroupCoordinatorRecordSerde serde = new GroupCoordinatorRecordSerde();
        CoordinatorRecord record = CoordinatorRecord.record(f.key(), new ApiMessageAndVersion(f.value(), f.valueVersion()));
        byte[] key = serde.serializeKey(record);
        byte[] value = serde.serializeValue(record);

        // The same bytes by hand: int16 type id + key at v0; int16 value version + value at that version.
        byte[] keyBody = serialize(f.key(), (short) 0);
        byte[] valueBody = serialize(f.value(), f.valueVersion());
        if (!Arrays.equals(key, int16Prefixed(f.type().id(), keyBody))) {
            failures.add(n + ": serde key bytes differ from int16 type id + key v0\n  serde: " + hex(key)
                + "\n  hand:  " + hex(int16Prefixed(f.type().id(), keyBody)));
            return null;
        }
        if (!Arrays.equals(value, int16Prefixed(f.valueVersion(), valueBody))) {
            failures.add(n + ": serde value bytes differ from int16 version + value\n  serde: " + hex(value)
                + "\n  hand:  " + hex(int16Prefixed(f.valueVersion(), valueBody)));
            return null;
        }

        // Read back through the serde ...
        CoordinatorRecord back = serde.deserialize(ByteBuffer.wrap(key), ByteBuffer.wrap(value));
        if (!back.equals(record)) {
            failures.add(n + ": serde read-back differs\n  wrote: " + record + "\n  read:  " + back);
            return null;
        }
        // ... and with the generated classes directly.
        Message keyBack = deserialize(f.key().getClass(), keyBody, (short) 0);
        Message valueBack = deserialize(f.value().getClass(), valueBody, f.valueVersion());
        if (!keyBack.equals(f.key()) || !valueBack.equals(f.value())) {
            failures.add(n + ": read-back differs\n  wrote: " + f.key() + " / " + f.value()
                + "\n  read:  " + keyBack + " / " + valueBack);
            return null;
        }
        if (!Arrays.equals(valueBody, serialize(valueBack, f.valueVersion()))) {
            failures.add(n + ": re-serializing the read-back value gives different bytes");
            return null;
        }
        return new byte[][] {key, value};
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
        for (RecordFixture f : RECORDS) {
            for (String suffix : List.of("_key", "_value")) {
                if (out.containsKey(f.name() + suffix)) throw new IllegalStateException("duplicate fixture " + f.name() + suffix);
            }
            byte[][] kv = serializeRecord(f, failures);
            if (kv == null) continue;
            System.out.println("record type " + f.type().name() + " = " + f.type().id() + " (" + f.name() + ")");
            out.put(f.name() + "_key", hex(kv[0]));
            out.put(f.name() + "_value", hex(kv[1]));
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
