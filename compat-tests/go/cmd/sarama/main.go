// sarama column of Strom's compat-tests: `sarama-driver <scenario> <bootstrap> <topic>` runs one
// scenario with IBM/sarama (configured as a Kafka 4.1 client) and prints `@@RESULT {json}`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	h "strom.compat/go/internal/harness"
)

var seed string

func cfg() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V4_1_0_0
	c.ClientID = "compat-sarama"
	c.Net.DialTimeout, c.Net.ReadTimeout, c.Net.WriteTimeout = 10*time.Second, 15*time.Second, 15*time.Second
	c.Admin.Timeout = 15 * time.Second
	c.Metadata.Retry.Max = 5
	c.Producer.Return.Successes = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Timeout = 15 * time.Second
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.AutoCommit.Enable = false
	return c
}

func errName(err error) string {
	var ke sarama.KError
	if errors.As(err, &ke) {
		return h.ErrName(int16(ke))
	}
	var te *sarama.TopicError
	if errors.As(err, &te) {
		return h.ErrName(int16(te.Err))
	}
	var pe *sarama.ProducerError
	if errors.As(err, &pe) {
		return errName(pe.Err)
	}
	if err == nil {
		return ""
	}
	return "client error: " + err.Error()
}

func admin() sarama.ClusterAdmin {
	a, err := sarama.NewClusterAdmin(strings.Split(seed, ","), cfg())
	h.Must(err, "admin")
	return a
}

func create(t string, parts int32, configs map[string]*string) {
	a := admin()
	defer a.Close()
	h.Must(a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: configs}, false), "create topic")
}

func producer(mod func(*sarama.Config)) sarama.SyncProducer {
	c := cfg()
	if mod != nil {
		mod(c)
	}
	p, err := sarama.NewSyncProducer(strings.Split(seed, ","), c)
	h.Must(err, "producer")
	return p
}

func produce(t string, values []string, mod func(*sarama.Config)) []int64 {
	p := producer(mod)
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i, v := range values {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k-%d", i)), Value: sarama.StringEncoder(v)})
	}
	h.Must(p.SendMessages(msgs), "produce")
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = m.Offset
	}
	return offs
}

func readFromStart(t string, n int, mod func(*sarama.Config)) []*sarama.ConsumerMessage {
	c := cfg()
	if mod != nil {
		mod(c)
	}
	cons, err := sarama.NewConsumer(strings.Split(seed, ","), c)
	h.Must(err, "consumer")
	defer cons.Close()
	pc, err := cons.ConsumePartition(t, 0, sarama.OffsetOldest)
	h.Must(err, "consume partition")
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case e := <-pc.Errors():
			h.Check(false, "consume error: %v", e)
		case <-timeout:
			return out
		}
	}
	return out
}

func values(ms []*sarama.ConsumerMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Value)
	}
	return out
}

func checkExact(ms []*sarama.ConsumerMessage, want []string, first int64) {
	got := values(ms)
	h.Check(h.Equal(got, want), "read %d of %d records, values differ: got %v expected %v", len(got), len(want), got, want)
	for i, m := range ms {
		h.Check(m.Offset == first+int64(i), "record %d at offset %d", i, m.Offset)
	}
}

func metadata(b, t string, obs h.Obs) {
	a := admin()
	defer a.Close()
	brokers, ctl, err := a.DescribeCluster()
	h.Must(err, "describe cluster")
	obs["brokers"] = len(brokers)
	h.Check(len(brokers) == h.ExpectedBrokers(), "expected %d broker(s), got %d", h.ExpectedBrokers(), len(brokers))
	var addrs []string
	for _, br := range brokers {
		addrs = append(addrs, br.Addr())
	}
	obs["broker_is_bootstrap"] = h.SameAddrs(addrs, b)
	obs["has_controller"] = ctl >= 0
	h.Check(obs["broker_is_bootstrap"] == true, "brokers advertised as %v, bootstrap %s", addrs, b)
}

func retention(a sarama.ClusterAdmin, t string) string {
	es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t, ConfigNames: []string{"retention.ms"}})
	h.Must(err, "describe config")
	for _, e := range es {
		if e.Name == "retention.ms" {
			return e.Value
		}
	}
	return "<missing>"
}

func topicErr(a sarama.ClusterAdmin, t string) string {
	md, err := a.DescribeTopics([]string{t})
	if err != nil {
		return errName(err)
	}
	if len(md) == 0 {
		return "no metadata"
	}
	if md[0].Err != sarama.ErrNoError {
		return h.ErrName(int16(md[0].Err))
	}
	return ""
}

func topicAdmin(b, t string, obs h.Obs) {
	create(t, 3, map[string]*string{"retention.ms": sp("3600000")})
	a := admin()
	defer a.Close()
	md, err := a.DescribeTopics([]string{t})
	h.Must(err, "describe topics")
	obs["partitions"] = len(md[0].Partitions)
	h.Check(len(md[0].Partitions) == 3, "describe: %d partitions", len(md[0].Partitions))
	obs["retention_at_create"] = retention(a, t)
	h.Check(obs["retention_at_create"] == "3600000", "retention.ms after create %v", obs["retention_at_create"])
	v := "7200000"
	h.Must(a.IncrementalAlterConfig(sarama.TopicResource, t, map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}}, false), "incremental alter")
	// KRaft applies the change through the metadata log: read until it shows, bounded
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if obs["retention_after_alter"] = retention(a, t); obs["retention_after_alter"] == "7200000" {
			break
		}
	}
	h.Check(obs["retention_after_alter"] == "7200000", "retention.ms after alter %v", obs["retention_after_alter"])
	h.Must(a.DeleteTopic(t), "delete topic")
	last := "still present"
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if last = topicErr(a, t); last == "UNKNOWN_TOPIC_OR_PARTITION" {
			break
		}
	}
	obs["after_delete"] = last
	h.Check(last == "UNKNOWN_TOPIC_OR_PARTITION", "after delete: %s", last)
}

func codec(name string, c sarama.CompressionCodec) h.Scenario {
	return func(b, t string, obs h.Obs) {
		create(t, 1, nil)
		vals := h.Vals(20, "v-"+name+"-")
		offs := produce(t, vals, func(cf *sarama.Config) { cf.Producer.Compression = c; cf.Producer.Flush.Frequency = 50 * time.Millisecond })
		obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[len(offs)-1])
		ms := readFromStart(t, 20, nil)
		checkExact(ms, vals, 0)
		obs["consumed"] = len(ms)
	}
}

func recordFields(b, t string, obs h.Obs) {
	create(t, 1, nil)
	p := producer(nil)
	ts := func(d int64) time.Time { return time.UnixMilli(h.BaseTS + d) }
	msgs := []*sarama.ProducerMessage{
		{Topic: t, Key: sarama.StringEncoder("k0"), Value: sarama.StringEncoder("v0"), Timestamp: ts(1000),
			Headers: []sarama.RecordHeader{{Key: []byte("h1"), Value: []byte("a")}, {Key: []byte("h1"), Value: []byte("b")}, {Key: []byte("h2"), Value: []byte("c")}}},
		{Topic: t, Value: sarama.StringEncoder("v1"), Timestamp: ts(2000)},
		{Topic: t, Key: sarama.StringEncoder("k2"), Timestamp: ts(3000), Headers: []sarama.RecordHeader{{Key: []byte("h3"), Value: []byte{}}}},
	}
	for _, m := range msgs { // one at a time: keeps the order without relying on batching
		_, _, err := p.SendMessage(m)
		h.Must(err, "produce")
	}
	p.Close()
	var desc []string
	for _, m := range readFromStart(t, 3, nil) {
		var hs strings.Builder
		for _, x := range m.Headers {
			fmt.Fprintf(&hs, "%s=%s;", x.Key, x.Value)
		}
		desc = append(desc, fmt.Sprintf("key=%s value=%s ts=+%d CreateTime headers=%s", h.Str(m.Key, m.Key == nil), h.Str(m.Value, m.Value == nil),
			m.Timestamp.UnixMilli()-h.BaseTS, hs.String()))
	}
	obs["records"] = desc
	h.Check(h.Equal(desc, h.WantRecords), "round-trip differs: expected %v got %v", h.WantRecords, desc)
}

// groupMember runs one sarama consumer-group member in the background and tracks its claims.
type groupMember struct {
	g      sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	claims []int32
	msgs   []*sarama.ConsumerMessage
	sess   sarama.ConsumerGroupSession
}

func (m *groupMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sess = s
	m.claims = nil
	for _, ps := range s.Claims() {
		m.claims = append(m.claims, ps...)
	}
	return nil
}

func (m *groupMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims, m.sess = nil, nil
	return nil
}

func (m *groupMember) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.msgs = append(m.msgs, msg)
		m.mu.Unlock()
	}
	return nil
}

func join(t, group string, mod func(*sarama.Config)) *groupMember {
	c := cfg()
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	if mod != nil {
		mod(c)
	}
	g, err := sarama.NewConsumerGroup(strings.Split(seed, ","), group, c)
	h.Must(err, "consumer group")
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{g: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{t}, m); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "consume:", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return m
}

func (m *groupMember) leave() {
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
	}
	m.g.Close()
}

func (m *groupMember) waitMsgs(n int, sec int) []*sarama.ConsumerMessage {
	for end := time.Now().Add(time.Duration(sec) * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		m.mu.Lock()
		k := len(m.msgs)
		m.mu.Unlock()
		if k >= n {
			break
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*sarama.ConsumerMessage(nil), m.msgs...)
}

func offsetEarliest(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(5, "e-"), nil)
	m := join(t, t+"-g", nil)
	defer m.leave()
	ms := m.waitMsgs(5, 15)
	checkExact(ms, h.Vals(5, "e-"), 0)
	obs["first_offset"], obs["count"] = ms[0].Offset, len(ms)
}

func offsetLatest(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(5, "old-"), nil)
	m := join(t, t+"-g", func(c *sarama.Config) { c.Consumer.Offsets.Initial = sarama.OffsetNewest })
	defer m.leave()
	p := producer(nil)
	defer p.Close()
	var got []*sarama.ConsumerMessage
	end := time.Now().Add(15 * time.Second)
	for i := 0; len(got) == 0 && time.Now().Before(end); i++ {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Value: sarama.StringEncoder(fmt.Sprintf("new-%d", i))})
		h.Must(err, "produce")
		got = m.waitMsgs(1, 1)
	}
	h.Check(len(got) > 0, "nothing consumed")
	saw := false
	for _, r := range got {
		saw = saw || r.Offset < 5
	}
	obs["saw_old"], obs["got_new"] = saw, true
	h.Check(!saw, "latest consumer saw old records: %v", values(got))
}

func produceTS(t string, deltas []int64) {
	p := producer(nil)
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i, d := range deltas {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("t-%d", i)), Timestamp: time.UnixMilli(h.BaseTS + d)})
	}
	h.Must(p.SendMessages(msgs), "produce")
}

func client() sarama.Client {
	c, err := sarama.NewClient(strings.Split(seed, ","), cfg())
	h.Must(err, "client")
	return c
}

func offsetsForTimes(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produceTS(t, []int64{0, 1000, 2000, 3000, 4000})
	c := client()
	defer c.Close()
	for _, d := range []int64{2500, 0, 10000} {
		o, err := c.GetOffset(t, 0, h.BaseTS+d)
		h.Must(err, "get offset by time")
		obs[fmt.Sprintf("ts+%d", d)] = o
	}
	h.Check(obs["ts+2500"] == int64(3), "offset for +2500 = %v", obs["ts+2500"])
	h.Check(obs["ts+0"] == int64(0), "offset for +0 = %v", obs["ts+0"])
	h.Check(obs["ts+10000"] == int64(-1), "offset for future = %v", obs["ts+10000"])
}

func covered(ms []*groupMember, parts, sec int) string {
	sizes := ""
	for end := time.Now().Add(time.Duration(sec) * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		union, total, ns := map[int32]bool{}, 0, []int{}
		for _, m := range ms {
			m.mu.Lock()
			for _, p := range m.claims {
				union[p] = true
			}
			total += len(m.claims)
			ns = append(ns, len(m.claims))
			m.mu.Unlock()
		}
		sizes = h.Sizes(ns)
		zero := false
		for _, n := range ns {
			zero = zero || n == 0
		}
		if len(union) == parts && total == parts && !zero {
			return sizes
		}
	}
	return sizes + " (timed out)"
}

func groupRebalance(b, t string, obs h.Obs) {
	create(t, 3, nil)
	var ms []*groupMember
	for i := 0; i < 3; i++ {
		ms = append(ms, join(t, t+"-g", nil))
	}
	defer func() {
		for _, m := range ms {
			m.leave()
		}
	}()
	obs["phase1"] = covered(ms, 3, 25)
	h.Check(obs["phase1"] == "1,1,1", "three members: %v", obs["phase1"])
	ms[2].leave()
	ms = ms[:2]
	obs["phase2"] = covered(ms, 3, 20)
	h.Check(obs["phase2"] == "1,2", "after one left: %v", obs["phase2"])
}

func commitResume(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(10, "c-"), nil)
	g := t + "-g"
	m := join(t, g, nil)
	got := m.waitMsgs(4, 15)
	h.Check(len(got) >= 4, "first member read %d", len(got))
	m.mu.Lock()
	sess := m.sess
	m.mu.Unlock()
	h.Check(sess != nil, "no active session")
	sess.MarkOffset(t, 0, 4, "compat")
	sess.Commit()
	a := admin()
	resp, err := a.ListConsumerGroupOffsets(g, map[string][]int32{t: {0}})
	h.Must(err, "offset fetch")
	blk := resp.GetBlock(t, 0)
	h.Check(blk != nil, "no committed offset block")
	obs["committed"] = blk.Offset
	h.Check(blk.Offset == 4, "committed offset %d (%v)", blk.Offset, blk.Err)
	a.Close()
	m.leave()
	m = join(t, g, func(c *sarama.Config) { c.Consumer.Offsets.Initial = sarama.OffsetNewest })
	defer m.leave()
	rs := m.waitMsgs(6, 15)
	if len(rs) > 0 {
		obs["resumed_first"] = rs[0].Offset
	}
	obs["resumed_count"] = len(rs)
	checkExact(rs, h.Vals(10, "c-")[4:], 4)
}

func idempotent(b, t string, obs h.Obs) {
	create(t, 1, nil)
	offs := produce(t, h.Vals(10, "i-"), func(c *sarama.Config) {
		c.Producer.Idempotent = true
		c.Producer.RequiredAcks = sarama.WaitForAll
		c.Net.MaxOpenRequests = 1
	})
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[9])
	checkExact(readFromStart(t, 10, nil), h.Vals(10, "i-"), 0)
}

func transactions(b, t string, obs h.Obs) {
	create(t, 1, nil)
	p := producer(func(c *sarama.Config) {
		c.Producer.Idempotent = true
		c.Producer.RequiredAcks = sarama.WaitForAll
		c.Net.MaxOpenRequests = 1
		c.Producer.Transaction.ID = t + "-tx"
	})
	defer p.Close()
	txn := func(vals []string, commit bool) {
		h.Must(p.BeginTxn(), "begin")
		for _, v := range vals {
			_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Value: sarama.StringEncoder(v)})
			h.Must(err, "produce in txn")
		}
		if commit {
			h.Must(p.CommitTxn(), "commit")
		} else {
			h.Must(p.AbortTxn(), "abort")
		}
	}
	txn([]string{"a0", "a1", "a2"}, true)
	txn([]string{"b0", "b1"}, false)
	txn([]string{"c0"}, true)
	rc := values(readFromStart(t, 4, func(c *sarama.Config) { c.Consumer.IsolationLevel = sarama.ReadCommitted }))
	ru := values(readFromStart(t, 6, func(c *sarama.Config) { c.Consumer.IsolationLevel = sarama.ReadUncommitted }))
	obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
	h.Check(h.Equal(rc, []string{"a0", "a1", "a2", "c0"}), "read_committed saw %v", rc)
	h.Check(h.Equal(ru, []string{"a0", "a1", "a2", "b0", "b1", "c0"}), "read_uncommitted saw %v", ru)
	c := client()
	defer c.Close()
	end, err := c.GetOffset(t, 0, sarama.OffsetNewest)
	h.Must(err, "end offset")
	obs["end_offset"] = end
	h.Check(end == 9, "end offset %d, expected 9", end)
}

func deleteRecords(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(10, "d-"), nil)
	a := admin()
	h.Must(a.DeleteRecords(t, map[int32]int64{0: 4}), "delete records")
	a.Close()
	c := client()
	e, err := c.GetOffset(t, 0, sarama.OffsetOldest)
	c.Close()
	h.Must(err, "earliest")
	obs["earliest"] = e
	h.Check(e == 4, "earliest after delete %d", e)
	rs := readFromStart(t, 6, nil)
	if len(rs) > 0 {
		obs["first_consumed"] = rs[0].Offset
	}
	checkExact(rs, h.Vals(10, "d-")[4:], 4)
}

func listOffsets(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produceTS(t, []int64{1000, 2000, 9000, 3000, 4000})
	c := client()
	defer c.Close()
	e, err := c.GetOffset(t, 0, sarama.OffsetOldest)
	h.Must(err, "earliest")
	l, err := c.GetOffset(t, 0, sarama.OffsetNewest)
	h.Must(err, "latest")
	obs["earliest"], obs["latest"] = e, l
	// sarama has no max-timestamp (KIP-734) lookup: only earliest/latest are checked
	h.Check(e == 0 && l == 5, "earliest/latest %d/%d", e, l)
}

func unknownTopic(b, t string, obs h.Obs) {
	a := admin()
	defer a.Close()
	obs["describe_error"] = topicErr(a, t)
	h.Check(obs["describe_error"] == "UNKNOWN_TOPIC_OR_PARTITION", "describe error %v", obs["describe_error"])
}

func tooLarge(b, t string, obs h.Obs) {
	create(t, 1, map[string]*string{"max.message.bytes": sp("2048")})
	p := producer(func(c *sarama.Config) { c.Producer.Retry.Max = 0 })
	defer p.Close()
	_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Key: sarama.StringEncoder("big"), Value: sarama.StringEncoder(strings.Repeat("x", 10000))})
	obs["error"] = errName(err)
	_, off, err2 := p.SendMessage(&sarama.ProducerMessage{Topic: t, Key: sarama.StringEncoder("small"), Value: sarama.StringEncoder("ok")})
	if err2 == nil {
		obs["next_offset"] = off
	}
	h.Check(obs["error"] == "MESSAGE_TOO_LARGE", "error %v, expected MESSAGE_TOO_LARGE", obs["error"])
	h.Check(err2 == nil && off == 0, "small record after the rejected one: offset %d err %v", off, err2)
}

// keylessCompacted: a compacted log keeps the latest value per key, so Kafka refuses records
// without one (INVALID_RECORD) and appends nothing.
func keylessCompacted(b, t string, obs h.Obs) {
	create(t, 1, map[string]*string{"cleanup.policy": sp("compact")})
	p := producer(func(c *sarama.Config) { c.Producer.Retry.Max = 0 })
	defer p.Close()
	_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Value: sarama.StringEncoder("no-key")})
	obs["error"] = errName(err)
	_, off, err2 := p.SendMessage(&sarama.ProducerMessage{Topic: t, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("keyed")})
	if err2 == nil {
		obs["next_offset"] = off
	}
	h.Check(obs["error"] == "INVALID_RECORD", "error %v, expected INVALID_RECORD", obs["error"])
	h.Check(err2 == nil && off == 0, "keyed record after the refused one: offset %d err %v", off, err2)
}

func invalidConfig(b, t string, obs h.Obs) {
	a := admin()
	defer a.Close()
	err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{"cleanup.policy": sp("bogus")}}, false)
	obs["error"] = errName(err)
	ts, err2 := a.ListTopics()
	h.Must(err2, "list topics")
	_, exists := ts[t]
	obs["created"] = exists
	h.Check(obs["error"] == "INVALID_CONFIG", "error %v", obs["error"])
	h.Check(!exists, "topic exists after a rejected create")
}

func main() {
	seed = os.Args[2]
	h.Main(map[string]h.Scenario{
		"metadata": metadata, "topic-admin": topicAdmin,
		"codec-none": codec("none", sarama.CompressionNone), "codec-gzip": codec("gzip", sarama.CompressionGZIP),
		"codec-snappy": codec("snappy", sarama.CompressionSnappy), "codec-lz4": codec("lz4", sarama.CompressionLZ4),
		"codec-zstd": codec("zstd", sarama.CompressionZSTD),
		"record-fields": recordFields, "offset-earliest": offsetEarliest, "offset-latest": offsetLatest,
		"offsets-for-times": offsetsForTimes, "group-rebalance": groupRebalance, "commit-resume": commitResume,
		"group-rebalance-848": no848, "commit-resume-848": no848,
		"idempotent-produce": idempotent, "transactions": transactions, "eos-pipeline": eosPipeline, "delete-records": deleteRecords,
		"list-offsets": listOffsets, "err-unknown-topic": unknownTopic, "err-record-too-large": tooLarge,
		"err-invalid-config": invalidConfig, "err-keyless-compacted": keylessCompacted,
		"static-member-848": no848,
		"sec-tls": secTLS, "sec-mtls": secMTLS, "sec-plain": secPlain,
		"sec-scram-256": secScram("SCRAM-SHA-256"), "sec-scram-512": secScram("SCRAM-SHA-512"),
		"sec-sasl-ssl": secSaslSSL, "sec-plaintext-to-tls": secPlaintextToTLS, "sec-acl": secACL,
		"sec-oauth": secOAuth,
		"sec-quota": secQuota,
	})
}

func sp(s string) *string { return &s }

// drainValues reads partition 0 of t from the start until n records arrived, then 1.5 s more to
// catch extras (duplicates, aborted records that leak).
func drainValues(t string, n int, iso sarama.IsolationLevel) []string {
	c := cfg()
	c.Consumer.IsolationLevel = iso
	cons, err := sarama.NewConsumer(strings.Split(seed, ","), c)
	h.Must(err, "consumer")
	defer cons.Close()
	pc, err := cons.ConsumePartition(t, 0, sarama.OffsetOldest)
	h.Must(err, "consume partition")
	defer pc.Close()
	var out []string
	timeout := time.After(15 * time.Second)
	var quiet <-chan time.Time
	for {
		select {
		case m := <-pc.Messages():
			out = append(out, string(m.Value))
			if len(out) >= n && quiet == nil {
				quiet = time.After(1500 * time.Millisecond)
			}
		case e := <-pc.Errors():
			h.Check(false, "consume error: %v", e)
		case <-timeout:
			return out
		case <-quiet:
			return out
		}
	}
}

func groupCommitted(g, t string) int64 {
	a := admin()
	defer a.Close()
	resp, err := a.ListConsumerGroupOffsets(g, map[string][]int32{t: {0}})
	h.Must(err, "offset fetch")
	blk := resp.GetBlock(t, 0)
	if blk == nil {
		return -2
	}
	return blk.Offset
}

// eosHandler is the consume-transform-produce loop: every 10 claimed messages are one
// transaction (BeginTxn, SendMessage the uppercased value to out, AddMessageToTxn, CommitTxn);
// after the first commit one extra transaction writes ABORTED-0..4 plus AddOffsetsToTxn(+5) and
// aborts.
type eosHandler struct {
	p       sarama.SyncProducer
	in, out string
	group   string
	obs     h.Obs
	mu      sync.Mutex
	txns    []int
	done    int
	aborted bool
	err     error
	finish  context.CancelFunc
}

func (e *eosHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (e *eosHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (e *eosHandler) fail(err error, what string) error {
	e.mu.Lock()
	e.err = fmt.Errorf("%s: %w", what, err)
	e.mu.Unlock()
	e.finish()
	return err
}

func (e *eosHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	n := 0
	for m := range cl.Messages() {
		if n == 0 {
			if err := e.p.BeginTxn(); err != nil {
				return e.fail(err, "BeginTxn")
			}
		}
		_, _, err := e.p.SendMessage(&sarama.ProducerMessage{Topic: e.out, Partition: 0, Key: sarama.ByteEncoder(m.Key),
			Value: sarama.StringEncoder(strings.ToUpper(string(m.Value)))})
		if err != nil {
			return e.fail(err, "produce in txn")
		}
		if err := e.p.AddMessageToTxn(m, e.group, nil); err != nil {
			return e.fail(err, "AddMessageToTxn")
		}
		n++
		if n < 10 {
			continue
		}
		if err := e.p.CommitTxn(); err != nil {
			return e.fail(err, "CommitTxn")
		}
		e.mu.Lock()
		e.txns = append(e.txns, n)
		e.done += n
		first := !e.aborted
		e.aborted = true
		e.mu.Unlock()
		n = 0
		if first {
			if err := e.p.BeginTxn(); err != nil {
				return e.fail(err, "BeginTxn (to abort)")
			}
			for i := 0; i < 5; i++ {
				if _, _, err := e.p.SendMessage(&sarama.ProducerMessage{Topic: e.out, Partition: 0,
					Value: sarama.StringEncoder(fmt.Sprintf("ABORTED-%d", i))}); err != nil {
					return e.fail(err, "produce in the aborted txn")
				}
			}
			offs := map[string][]*sarama.PartitionOffsetMetadata{e.in: {{Partition: 0, Offset: m.Offset + 6, LeaderEpoch: -1}}}
			if err := e.p.AddOffsetsToTxn(offs, e.group); err != nil {
				return e.fail(err, "AddOffsetsToTxn")
			}
			if err := e.p.AbortTxn(); err != nil {
				return e.fail(err, "AbortTxn")
			}
			cm := groupCommitted(e.group, e.in)
			e.obs["committed_after_abort"] = cm
			if cm != m.Offset+1 {
				return e.fail(fmt.Errorf("committed offset after the aborted transaction: %d, expected %d", cm, m.Offset+1), "check")
			}
		}
		if m.Offset+1 >= 20 {
			e.finish()
			return nil
		}
	}
	return nil
}

func eosPipeline(b, t string, obs h.Obs) {
	out, g := t+"-out", t+"-g"
	create(t, 1, nil)
	create(out, 1, nil)
	produce(t, h.Vals(20, "v"), nil)
	p := producer(func(c *sarama.Config) {
		c.Producer.Idempotent = true
		c.Producer.RequiredAcks = sarama.WaitForAll
		c.Net.MaxOpenRequests = 1
		c.Producer.Transaction.ID = t + "-eos"
	})
	defer p.Close()
	c := cfg()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.IsolationLevel = sarama.ReadCommitted
	grp, err := sarama.NewConsumerGroup(strings.Split(seed, ","), g, c)
	h.Must(err, "consumer group")
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e := &eosHandler{p: p, in: t, out: out, group: g, obs: obs, finish: cancel}
	for cctx.Err() == nil {
		if err := grp.Consume(cctx, []string{t}, e); err != nil && cctx.Err() == nil {
			h.Must(err, "consume")
		}
	}
	grp.Close()
	cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	h.Must(e.err, "pipeline")
	obs["transactions"] = e.txns
	h.Check(e.done == 20 && len(e.txns) >= 2, "committed transactions (records each): %v", e.txns)
	want := h.Vals(20, "V")
	rc := drainValues(out, 20, sarama.ReadCommitted)
	ru := drainValues(out, 25, sarama.ReadUncommitted)
	obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
	obs["committed"] = groupCommitted(g, t)
	h.Check(h.Equal(rc, want), "read_committed output %v, expected V0..V19 once each", rc)
	h.Check(len(ru) == 25, "read_uncommitted saw %d records, expected 25 (20 + 5 aborted)", len(ru))
	h.Check(obs["committed"] == int64(20), "group's committed input offset %v, expected 20", obs["committed"])
}

// no848: sarama has only the classic group protocol (JoinGroup/SyncGroup); it defines no
// ConsumerGroupHeartbeat request, so the KIP-848 consumer protocol is not available.
func no848(b, t string, obs h.Obs) {
	h.NA("sarama v1.61.1 has only the classic group protocol, no KIP-848 consumer protocol (ConsumerGroupHeartbeat)")
}
