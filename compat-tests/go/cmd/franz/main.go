// franz-go column of Strom's compat-tests: `franz-driver <scenario> <bootstrap> <topic>` runs one
// scenario with kgo/kadm and prints `@@RESULT {json}`. Semantics match the other drivers.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	h "strom.compat/go/internal/harness"
)

var (
	seed    string
	cancels []context.CancelFunc
)

func ctx(sec int) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Duration(sec)*time.Second)
	cancels = append(cancels, cancel) // released when the process exits after one scenario
	return c
}

func client(opts ...kgo.Opt) *kgo.Client {
	base := []kgo.Opt{kgo.SeedBrokers(strings.Split(seed, ",")...), kgo.ClientID("compat-franz"), kgo.RequestTimeoutOverhead(10 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5 * time.Millisecond)}
	if os.Getenv("COMPAT_FRANZ_DEBUG") != "" { // the client's own log on stderr, for a cell's log
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	h.Must(err, "new client")
	return cl
}

func admin() *kadm.Client { return kadm.NewClient(client()) }

func errName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	if err == nil {
		return ""
	}
	return "client error: " + err.Error()
}

func create(t string, parts int32, configs map[string]*string) {
	r, err := admin().CreateTopics(ctx(20), parts, 1, configs, t)
	h.Must(err, "create topic")
	h.Must(r[t].Err, "create topic "+t)
}

func produce(t string, values []string, opts ...kgo.Opt) []int64 {
	cl := client(opts...)
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: t, Partition: 0, Key: []byte(fmt.Sprintf("k-%d", i)), Value: []byte(v)}
	}
	res := cl.ProduceSync(ctx(20), recs...)
	h.Must(res.FirstErr(), "produce")
	offs := make([]int64, len(res))
	for i, r := range res {
		offs[i] = r.Record.Offset
	}
	return offs
}

func readPolls(cl *kgo.Client, n int, sec int) []*kgo.Record {
	var out []*kgo.Record
	end := time.Now().Add(time.Duration(sec) * time.Second)
	for len(out) < n && time.Now().Before(end) {
		c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(c)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				h.Check(false, "fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func readFromStart(t string, n int, opts ...kgo.Opt) []*kgo.Record {
	cl := client(append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AtStart()}})}, opts...)...)
	defer cl.Close()
	return readPolls(cl, n, 10)
}

func values(rs []*kgo.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.Value)
	}
	return out
}

func checkExact(rs []*kgo.Record, want []string, first int64) {
	got := values(rs)
	h.Check(h.Equal(got, want), "read %d of %d records, values differ: got %v expected %v", len(got), len(want), got, want)
	for i, r := range rs {
		h.Check(r.Offset == first+int64(i), "record %d at offset %d", i, r.Offset)
	}
}

func metadata(b, t string, obs h.Obs) {
	md, err := admin().BrokerMetadata(ctx(15))
	h.Must(err, "metadata")
	obs["brokers"] = len(md.Brokers)
	h.Check(len(md.Brokers) == h.ExpectedBrokers(), "expected %d broker(s), got %v", h.ExpectedBrokers(), md.Brokers)
	var addrs []string
	for _, br := range md.Brokers {
		addrs = append(addrs, fmt.Sprintf("%s:%d", br.Host, br.Port))
	}
	obs["broker_is_bootstrap"] = h.SameAddrs(addrs, b)
	obs["has_cluster_id"] = md.Cluster != ""
	obs["has_controller"] = md.Controller >= 0
	h.Check(obs["broker_is_bootstrap"] == true, "brokers advertised as %v, bootstrap %s", addrs, b)
	h.Check(md.Cluster != "", "no cluster id")
}

func topicAdmin(b, t string, obs h.Obs) {
	a := admin()
	create(t, 3, map[string]*string{"retention.ms": kadm.StringPtr("3600000")})
	td, err := a.ListTopics(ctx(15), t)
	h.Must(err, "describe")
	obs["partitions"] = len(td[t].Partitions)
	h.Check(len(td[t].Partitions) == 3, "describe: %d partitions (%v)", len(td[t].Partitions), td[t].Err)
	cfg := func() string {
		rc, err := a.DescribeTopicConfigs(ctx(15), t)
		h.Must(err, "describe configs")
		for _, c := range rc[0].Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				return *c.Value
			}
		}
		return "<missing>"
	}
	obs["retention_at_create"] = cfg()
	h.Check(obs["retention_at_create"] == "3600000", "retention.ms after create %v", obs["retention_at_create"])
	ar, err := a.AlterTopicConfigs(ctx(15), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, t)
	h.Must(err, "alter configs")
	h.Must(ar[0].Err, "alter configs")
	// KRaft applies the change through the metadata log: read until it shows, bounded
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if obs["retention_after_alter"] = cfg(); obs["retention_after_alter"] == "7200000" {
			break
		}
	}
	h.Check(obs["retention_after_alter"] == "7200000", "retention.ms after alter %v", obs["retention_after_alter"])
	dr, err := a.DeleteTopics(ctx(20), t)
	h.Must(err, "delete")
	h.Must(dr[t].Err, "delete")
	last := "still present"
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		td, err := a.ListTopics(ctx(10), t)
		if err == nil && td[t].Err != nil {
			last = errName(td[t].Err)
			if last == "UNKNOWN_TOPIC_OR_PARTITION" {
				break
			}
		}
	}
	obs["after_delete"] = last
	h.Check(last == "UNKNOWN_TOPIC_OR_PARTITION", "after delete: %s", last)
}

func codec(name string, c kgo.CompressionCodec) h.Scenario {
	return func(b, t string, obs h.Obs) {
		create(t, 1, nil)
		vals := h.Vals(20, "v-"+name+"-")
		offs := produce(t, vals, kgo.ProducerBatchCompression(c), kgo.ProducerLinger(50*time.Millisecond))
		obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[len(offs)-1])
		rs := readFromStart(t, 20)
		checkExact(rs, vals, 0)
		obs["consumed"] = len(rs)
	}
}

func recordFields(b, t string, obs h.Obs) {
	create(t, 1, nil)
	cl := client()
	ts := func(d int64) time.Time { return time.UnixMilli(h.BaseTS + d) }
	res := cl.ProduceSync(ctx(20),
		&kgo.Record{Topic: t, Key: []byte("k0"), Value: []byte("v0"), Timestamp: ts(1000), Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("a")}, {Key: "h1", Value: []byte("b")}, {Key: "h2", Value: []byte("c")}}},
		&kgo.Record{Topic: t, Key: nil, Value: []byte("v1"), Timestamp: ts(2000)},
		&kgo.Record{Topic: t, Key: []byte("k2"), Value: nil, Timestamp: ts(3000), Headers: []kgo.RecordHeader{{Key: "h3", Value: []byte{}}}})
	h.Must(res.FirstErr(), "produce")
	cl.Close()
	rs := readFromStart(t, 3)
	var desc []string
	for _, r := range rs {
		var hs strings.Builder
		for _, x := range r.Headers {
			fmt.Fprintf(&hs, "%s=%s;", x.Key, x.Value)
		}
		tt := "CreateTime"
		if r.Attrs.TimestampType() != 0 {
			tt = "LogAppendTime"
		}
		desc = append(desc, fmt.Sprintf("key=%s value=%s ts=+%d %s headers=%s", h.Str(r.Key, r.Key == nil), h.Str(r.Value, r.Value == nil),
			r.Timestamp.UnixMilli()-h.BaseTS, tt, hs.String()))
	}
	obs["records"] = desc
	h.Check(h.Equal(desc, h.WantRecords), "round-trip differs: expected %v got %v", h.WantRecords, desc)
}

func offsetEarliest(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(5, "e-"))
	cl := client(kgo.ConsumerGroup(t+"-g"), kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	defer cl.Close()
	rs := readPolls(cl, 5, 15)
	checkExact(rs, h.Vals(5, "e-"), 0)
	obs["first_offset"], obs["count"] = rs[0].Offset, len(rs)
}

func offsetLatest(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(5, "old-"))
	cl := client(kgo.ConsumerGroup(t+"-g"), kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.DisableAutoCommit())
	defer cl.Close()
	p := client()
	defer p.Close()
	var got []*kgo.Record
	end := time.Now().Add(15 * time.Second)
	for i := 0; len(got) == 0 && time.Now().Before(end); i++ {
		h.Must(p.ProduceSync(ctx(10), &kgo.Record{Topic: t, Value: []byte(fmt.Sprintf("new-%d", i))}).FirstErr(), "produce")
		got = readPolls(cl, 1, 1)
	}
	got = append(got, readPolls(cl, 100, 1)...)
	h.Check(len(got) > 0, "nothing consumed")
	saw := false
	for _, r := range got {
		saw = saw || strings.HasPrefix(string(r.Value), "old-") || r.Offset < 5
	}
	obs["saw_old"], obs["got_new"] = saw, true
	h.Check(!saw, "latest consumer saw old records: %v", values(got))
}

func produceTS(t string, deltas []int64) {
	cl := client()
	defer cl.Close()
	var recs []*kgo.Record
	for i, d := range deltas {
		recs = append(recs, &kgo.Record{Topic: t, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("t-%d", i)), Timestamp: time.UnixMilli(h.BaseTS + d)})
	}
	h.Must(cl.ProduceSync(ctx(20), recs...).FirstErr(), "produce")
}

func offsetsForTimes(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produceTS(t, []int64{0, 1000, 2000, 3000, 4000})
	a := admin()
	for _, d := range []int64{2500, 0, 10000} {
		lo, err := a.ListOffsetsAfterMilli(ctx(15), h.BaseTS+d, t)
		h.Must(err, "list offsets after milli")
		o := lo[t][0]
		h.Must(o.Err, "list offsets after milli")
		obs[fmt.Sprintf("ts+%d", d)] = o.Offset
	}
	h.Check(obs["ts+2500"] == int64(3), "offsets after +2500 = %v", obs["ts+2500"])
	h.Check(obs["ts+0"] == int64(0), "offsets after +0 = %v", obs["ts+0"])
	// kadm documents that when no record is at or after the time (Kafka answers -1), it re-asks for
	// the end offset; so 5 here is Kafka's "none" as kadm presents it.
	h.Check(obs["ts+10000"] == int64(5), "offsets after future = %v, expected the end offset 5", obs["ts+10000"])
}

type member struct {
	cl  *kgo.Client
	mu  sync.Mutex
	set map[int32]bool
}

func newMember(t, g string, i int, groupOpts ...kgo.Opt) *member {
	m := &member{set: map[int32]bool{}}
	if len(groupOpts) == 0 { // classic protocol: client-side balancing, our session timing
		groupOpts = []kgo.Opt{kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}
	}
	m.cl = client(append(groupOpts, kgo.ConsumerGroup(g), kgo.ConsumeTopics(t),
		kgo.ClientID(fmt.Sprintf("compat-franz-%d", i)),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[t] {
				m.set[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[t] {
				delete(m.set, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[t] {
				delete(m.set, p)
			}
		}))...)
	return m
}

func covered(ms []*member, parts int, sec int) string {
	sizes := ""
	for end := time.Now().Add(time.Duration(sec) * time.Second); time.Now().Before(end); {
		for _, m := range ms {
			c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			m.cl.PollFetches(c)
			cancel()
		}
		union, total, ns := map[int32]bool{}, 0, []int{}
		for _, m := range ms {
			m.mu.Lock()
			for p := range m.set {
				union[p] = true
			}
			total += len(m.set)
			ns = append(ns, len(m.set))
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
	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, newMember(t, t+"-g", i))
	}
	defer closeMembers(ms[:2]) // rebalanceCheck closes the third
	rebalanceCheck(ms, 3, obs)
}

func closeMembers(ms []*member) {
	for _, m := range ms {
		m.cl.Close()
	}
}

// serverSide: KIP-848 consumer protocol (ConsumerGroupHeartbeat), the broker assigns partitions.
var serverSide = []kgo.Opt{kgo.ServerSideBalancer()}

func groupRebalance848(b, t string, obs h.Obs) {
	create(t, 6, nil)
	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, newMember(t, t+"-g", i, serverSide...))
	}
	defer closeMembers(ms[:2]) // rebalanceCheck closes the third
	rebalanceCheck(ms, 6, obs)
	checkConsumerGroup(t+"-g", 2, obs)
}

// checkConsumerGroup: the broker holds g as a consumer-protocol group (ConsumerGroupDescribe) with n members.
func checkConsumerGroup(g string, n int, obs h.Obs) {
	ds, err := admin().DescribeConsumerGroups(ctx(15), g)
	h.Must(err, "describe consumer groups")
	d := ds[g]
	h.Must(d.Err, "ConsumerGroupDescribe "+g)
	obs["described_members"] = len(d.Members)
	obs["described_state"] = d.State
	h.Check(len(d.Members) == n, "ConsumerGroupDescribe: %d members, expected %d", len(d.Members), n)
}

// rebalanceCheck: three members split `parts` partitions evenly; after one leaves the other two
// cover them all, evenly.
func rebalanceCheck(ms []*member, parts int, obs h.Obs) {
	want1, want2 := "1,1,1", "1,2"
	if parts == 6 {
		want1, want2 = "2,2,2", "3,3"
	}
	obs["phase1"] = covered(ms, parts, 25)
	h.Check(obs["phase1"] == want1, "three members: %v, expected %s", obs["phase1"], want1)
	ms[2].cl.Close()
	ms = ms[:2]
	obs["phase2"] = covered(ms, parts, 20)
	h.Check(obs["phase2"] == want2, "after one left: %v, expected %s", obs["phase2"], want2)
}

func commitResume(b, t string, obs h.Obs) { commitResumeWith(t, obs) }

func commitResume848(b, t string, obs h.Obs) { commitResumeWith(t, obs, serverSide...) }

func commitResumeWith(t string, obs h.Obs, groupOpts ...kgo.Opt) {
	create(t, 1, nil)
	produce(t, h.Vals(10, "c-"))
	g := t + "-g"
	cl := client(append([]kgo.Opt{kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, groupOpts...)...)
	rs := readPolls(cl, 4, 15)
	h.Check(len(rs) >= 4, "first member read %d", len(rs))
	var cerr error
	cl.CommitOffsetsSync(ctx(15), map[string]map[int32]kgo.EpochOffset{t: {0: {Epoch: -1, Offset: 4}}},
		func(_ *kgo.Client, _ *kmsgCommitReq, resp *kmsgCommitResp, err error) {
			cerr = err
			if err == nil {
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						if e := kerr.ErrorForCode(rp.ErrorCode); e != nil {
							cerr = e
						}
					}
				}
			}
		})
	h.Must(cerr, "commit")
	fo, err := admin().FetchOffsets(ctx(15), g)
	h.Must(err, "fetch offsets")
	o, ok := fo.Lookup(t, 0)
	obs["committed"] = o.At
	h.Check(ok && o.At == 4, "committed offset %v (found %v)", o.At, ok)
	cl.Close()
	cl = client(append([]kgo.Opt{kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())}, groupOpts...)...)
	defer cl.Close()
	rs = readPolls(cl, 6, 15)
	if len(rs) > 0 {
		obs["resumed_first"] = rs[0].Offset
	}
	obs["resumed_count"] = len(rs)
	checkExact(rs, h.Vals(10, "c-")[4:], 4)
	if len(groupOpts) > 0 {
		checkConsumerGroup(g, 1, obs)
	}
}

func idempotent(b, t string, obs h.Obs) {
	create(t, 1, nil)
	offs := produce(t, h.Vals(10, "i-"), kgo.RequiredAcks(kgo.AllISRAcks())) // idempotence is franz-go's default
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[9])
	checkExact(readFromStart(t, 10), h.Vals(10, "i-"), 0)
	dp, err := admin().DescribeProducers(ctx(15), kadm.TopicsSet{t: {0: {}}})
	h.Must(err, "describe producers")
	n := 0
	var last int32 = -2
	dp.EachPartition(func(p kadm.DescribedProducersPartition) {
		for _, pr := range p.ActiveProducers {
			n++
			last = pr.LastSequence
		}
	})
	obs["active_producers"], obs["last_sequence"] = n, last
	h.Check(n == 1 && last == 9, "DescribeProducers: %d producers, last sequence %d", n, last)
}

func transactions(b, t string, obs h.Obs) {
	create(t, 1, nil)
	cl := client(kgo.TransactionalID(t + "-tx"))
	txn := func(vals []string, commit kgo.TransactionEndTry) {
		h.Must(cl.BeginTransaction(), "begin")
		var recs []*kgo.Record
		for _, v := range vals {
			recs = append(recs, &kgo.Record{Topic: t, Value: []byte(v)})
		}
		h.Must(cl.ProduceSync(ctx(20), recs...).FirstErr(), "produce in txn")
		h.Must(cl.EndTransaction(ctx(20), commit), "end txn")
	}
	txn([]string{"a0", "a1", "a2"}, kgo.TryCommit)
	txn([]string{"b0", "b1"}, kgo.TryAbort)
	txn([]string{"c0"}, kgo.TryCommit)
	cl.Close()
	rc := values(readFromStart(t, 4, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	ru := values(readFromStart(t, 6, kgo.FetchIsolationLevel(kgo.ReadUncommitted())))
	obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
	h.Check(h.Equal(rc, []string{"a0", "a1", "a2", "c0"}), "read_committed saw %v", rc)
	h.Check(h.Equal(ru, []string{"a0", "a1", "a2", "b0", "b1", "c0"}), "read_uncommitted saw %v", ru)
	eo, err := admin().ListEndOffsets(ctx(15), t)
	h.Must(err, "list end offsets")
	obs["end_offset"] = eo[t][0].Offset
	h.Check(eo[t][0].Offset == 9, "end offset %d, expected 9", eo[t][0].Offset)
}

func deleteRecords(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produce(t, h.Vals(10, "d-"))
	a := admin()
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: t, Partition: 0, At: 4})
	dr, err := a.DeleteRecords(ctx(20), os)
	h.Must(err, "delete records")
	r, _ := dr.Lookup(t, 0)
	h.Must(r.Err, "delete records")
	obs["low_watermark"] = r.LowWatermark
	h.Check(r.LowWatermark == 4, "low watermark %d", r.LowWatermark)
	so, err := a.ListStartOffsets(ctx(15), t)
	h.Must(err, "list start offsets")
	obs["earliest"] = so[t][0].Offset
	h.Check(so[t][0].Offset == 4, "earliest after delete %d", so[t][0].Offset)
	rs := readFromStart(t, 6)
	if len(rs) > 0 {
		obs["first_consumed"] = rs[0].Offset
	}
	checkExact(rs, h.Vals(10, "d-")[4:], 4)
}

func listOffsets(b, t string, obs h.Obs) {
	create(t, 1, nil)
	produceTS(t, []int64{1000, 2000, 9000, 3000, 4000})
	a := admin()
	so, err := a.ListStartOffsets(ctx(15), t)
	h.Must(err, "start offsets")
	eo, err := a.ListEndOffsets(ctx(15), t)
	h.Must(err, "end offsets")
	mo, err := a.ListMaxTimestampOffsets(ctx(15), t)
	h.Must(err, "max timestamp offsets")
	obs["earliest"], obs["latest"], obs["max_timestamp_offset"] = so[t][0].Offset, eo[t][0].Offset, mo[t][0].Offset
	h.Check(so[t][0].Offset == 0 && eo[t][0].Offset == 5, "earliest/latest %d/%d", so[t][0].Offset, eo[t][0].Offset)
	h.Check(mo[t][0].Offset == 2, "max-timestamp offset %d (%v)", mo[t][0].Offset, mo[t][0].Err)
}

func unknownTopic(b, t string, obs h.Obs) {
	td, err := admin().ListTopics(ctx(15), t)
	h.Must(err, "metadata")
	obs["describe_error"] = errName(td[t].Err)
	h.Check(obs["describe_error"] == "UNKNOWN_TOPIC_OR_PARTITION", "describe error %v", obs["describe_error"])
}

func tooLarge(b, t string, obs h.Obs) {
	create(t, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2048")})
	cl := client(kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(0))
	defer cl.Close()
	err := cl.ProduceSync(ctx(20), &kgo.Record{Topic: t, Key: []byte("big"), Value: []byte(strings.Repeat("x", 10000))}).FirstErr()
	obs["error"] = errName(err)
	r, err2 := cl.ProduceSync(ctx(20), &kgo.Record{Topic: t, Key: []byte("small"), Value: []byte("ok")}).First()
	if err2 == nil {
		obs["next_offset"] = r.Offset
	}
	h.Check(obs["error"] == "MESSAGE_TOO_LARGE", "error %v, expected MESSAGE_TOO_LARGE", obs["error"])
	h.Check(err2 == nil && r.Offset == 0, "small record after the rejected one: offset %v err %v", obs["next_offset"], err2)
}

// keylessCompacted: a compacted log keeps the latest value per key, so Kafka refuses records
// without one (INVALID_RECORD) and appends nothing.
func keylessCompacted(b, t string, obs h.Obs) {
	create(t, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	cl := client(kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(0))
	defer cl.Close()
	err := cl.ProduceSync(ctx(20), &kgo.Record{Topic: t, Value: []byte("no-key")}).FirstErr()
	obs["error"] = errName(err)
	r, err2 := cl.ProduceSync(ctx(20), &kgo.Record{Topic: t, Key: []byte("k"), Value: []byte("keyed")}).First()
	if err2 == nil {
		obs["next_offset"] = r.Offset
	}
	h.Check(obs["error"] == "INVALID_RECORD", "error %v, expected INVALID_RECORD", obs["error"])
	h.Check(err2 == nil && r.Offset == 0, "keyed record after the refused one: offset %v err %v", obs["next_offset"], err2)
}

// staticMember848: a KIP-848 static member (InstanceID) owns its partitions; a second client with
// the same InstanceID is refused with UNRELEASED_INSTANCE_ID (franz-go retries it 3 times, then
// PollFetches returns ErrGroupSession) while the owner lives. franz-go v1.22.2 leaves a static
// 848 member with epoch -2 but without the instance id, which Kafka 4.4 refuses (INVALID_REQUEST:
// a -2 leave must name the instance id), so the owner keeps the instance id until its session
// times out and a third client with it is still refused: the cell checks exactly that.
func staticMember848(b, t string, obs h.Obs) {
	create(t, 2, nil)
	g := t + "-g"
	static := append([]kgo.Opt{kgo.InstanceID("compat-static")}, serverSide...)
	first := newMember(t, g, 0, static...)
	defer first.cl.Close()
	obs["first"] = covered([]*member{first}, 2, 25)
	h.Check(obs["first"] == "2", "static member: %v, expected 2", obs["first"])

	joinRefusal := func(i int) string {
		m := newMember(t, g, i, static...)
		defer m.cl.Close()
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
			c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			fs := m.cl.PollFetches(c)
			cancel()
			for _, fe := range fs.Errors() {
				if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
					return errName(fe.Err)
				}
			}
			m.mu.Lock()
			n := len(m.set)
			m.mu.Unlock()
			if n > 0 {
				return fmt.Sprintf("joined with %d partitions", n)
			}
		}
		return "nothing within 20 s"
	}
	obs["second"] = joinRefusal(1)
	first.mu.Lock()
	obs["first_after_second"] = len(first.set)
	first.mu.Unlock()
	h.Check(obs["second"] == "UNRELEASED_INSTANCE_ID", "second client with the owner's InstanceID: %v, expected UNRELEASED_INSTANCE_ID", obs["second"])
	h.Check(obs["first_after_second"] == 2, "the owner lost its partitions: %v", obs["first_after_second"])

	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	lerr := first.cl.LeaveGroupContext(lctx)
	lcancel()
	obs["leave"] = errName(lerr)
	if lerr != nil {
		obs["leave_message"] = lerr.Error()
	}
	obs["third"] = joinRefusal(2)
	h.Check(obs["leave"] == "INVALID_REQUEST", "static leave (epoch -2, no instance id): %q, expected INVALID_REQUEST as Kafka 4.4", obs["leave"])
	h.Check(obs["third"] == "UNRELEASED_INSTANCE_ID", "third client after the refused leave: %v, expected UNRELEASED_INSTANCE_ID (the owner's session has not expired)", obs["third"])
}

func invalidConfig(b, t string, obs h.Obs) {
	a := admin()
	r, err := a.CreateTopics(ctx(20), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("bogus")}, t)
	h.Must(err, "create topics request")
	obs["error"] = errName(r[t].Err)
	td, err := a.ListTopics(ctx(15))
	h.Must(err, "list topics")
	obs["created"] = td.Has(t)
	h.Check(obs["error"] == "INVALID_CONFIG", "error %v", obs["error"])
	h.Check(!td.Has(t), "topic exists after a rejected create")
}

func main() {
	seed = "127.0.0.1:0"
	if len(osArgs()) > 2 {
		seed = osArgs()[2]
	}
	h.Main(map[string]h.Scenario{
		"metadata": metadata, "topic-admin": topicAdmin,
		"codec-none": codec("none", kgo.NoCompression()), "codec-gzip": codec("gzip", kgo.GzipCompression()),
		"codec-snappy": codec("snappy", kgo.SnappyCompression()), "codec-lz4": codec("lz4", kgo.Lz4Compression()),
		"codec-zstd": codec("zstd", kgo.ZstdCompression()),
		"record-fields": recordFields, "offset-earliest": offsetEarliest, "offset-latest": offsetLatest,
		"offsets-for-times": offsetsForTimes, "group-rebalance": groupRebalance, "commit-resume": commitResume,
		"group-rebalance-848": groupRebalance848, "commit-resume-848": commitResume848,
		"idempotent-produce": idempotent, "transactions": transactions, "eos-pipeline": eosPipeline, "delete-records": deleteRecords,
		"list-offsets": listOffsets, "err-unknown-topic": unknownTopic, "err-record-too-large": tooLarge,
		"err-invalid-config": invalidConfig, "err-keyless-compacted": keylessCompacted,
		"static-member-848": staticMember848,
		"sec-tls": secTLS, "sec-mtls": secMTLS, "sec-plain": secPlain,
		"sec-scram-256": secScram("SCRAM-SHA-256"), "sec-scram-512": secScram("SCRAM-SHA-512"),
		"sec-sasl-ssl": secSaslSSL, "sec-plaintext-to-tls": secPlaintextToTLS, "sec-acl": secACL,
		"sec-oauth": secOAuth,
		"sec-quota": secQuota,
	})
}

// drainValues reads partition 0 of t from the start until n records arrived, then 1.5 s more to
// catch extras (duplicates, aborted records that leak).
func drainValues(t string, n int, iso kgo.IsolationLevel) []string {
	cl := client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(iso))
	defer cl.Close()
	var out []string
	end := time.Now().Add(15 * time.Second)
	var quiet time.Time
	for time.Now().Before(end) && (quiet.IsZero() || time.Now().Before(quiet)) {
		c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(c)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		if len(out) >= n && quiet.IsZero() {
			quiet = time.Now().Add(1500 * time.Millisecond)
		}
	}
	return out
}

func groupCommitted(g, t string) int64 {
	r, err := admin().FetchOffsets(ctx(15), g)
	h.Must(err, "fetch offsets")
	h.Must(r.Error(), "fetch offsets")
	o, ok := r.Lookup(t, 0)
	if !ok {
		return -1
	}
	return o.At
}

// eosPipeline: consume-transform-produce with kgo.GroupTransactSession. Each PollRecords(10) is
// one transaction (Begin, produce the uppercased values to <t>-out, End(ctx, TryCommit), which
// commits the consumed offsets in the transaction); after the first commit one extra transaction
// writes ABORTED-0..4 and ends with TryAbort.
func eosPipeline(b, t string, obs h.Obs) {
	out, g := t+"-out", t+"-g"
	create(t, 1, nil)
	create(out, 1, nil)
	produce(t, h.Vals(20, "v"))
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(strings.Split(seed, ",")...), kgo.ClientID("compat-franz"),
		kgo.RequestTimeoutOverhead(10*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID(t+"-eos"), kgo.ConsumerGroup(g), kgo.ConsumeTopics(t),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	h.Must(err, "new group transact session")
	var txns []int
	done, aborted := 0, false
	end := time.Now().Add(30 * time.Second)
	for done < 20 && time.Now().Before(end) {
		c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := sess.PollRecords(c, 10)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				h.Check(false, "fetch error on %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) == 0 {
			continue
		}
		h.Must(sess.Begin(), "begin")
		var outs []*kgo.Record
		for _, r := range recs {
			outs = append(outs, &kgo.Record{Topic: out, Partition: 0, Key: r.Key, Value: []byte(strings.ToUpper(string(r.Value)))})
		}
		h.Must(sess.ProduceSync(ctx(20), outs...).FirstErr(), "produce in txn")
		committed, err := sess.End(ctx(20), kgo.TryCommit)
		h.Must(err, "End(TryCommit)")
		h.Check(committed, "End(TryCommit) did not commit: the session aborted the transaction")
		done += len(recs)
		txns = append(txns, len(recs))
		if !aborted {
			aborted = true
			h.Must(sess.Begin(), "begin (to abort)")
			var junk []*kgo.Record
			for i := 0; i < 5; i++ {
				junk = append(junk, &kgo.Record{Topic: out, Partition: 0, Value: []byte(fmt.Sprintf("ABORTED-%d", i))})
			}
			h.Must(sess.ProduceSync(ctx(20), junk...).FirstErr(), "produce in the aborted txn")
			_, err := sess.End(ctx(20), kgo.TryAbort)
			h.Must(err, "End(TryAbort)")
			cm := groupCommitted(g, t)
			obs["committed_after_abort"] = cm
			nxt := recs[len(recs)-1].Offset + 1
			h.Check(cm == nxt, "committed offset after the aborted transaction: %d, expected %d", cm, nxt)
		}
	}
	sess.Close()
	obs["transactions"] = txns
	h.Check(len(txns) >= 2, "committed transactions (records each): %v", txns)
	want := h.Vals(20, "V")
	rc := drainValues(out, 20, kgo.ReadCommitted())
	ru := drainValues(out, 25, kgo.ReadUncommitted())
	obs["read_committed"], obs["read_uncommitted_count"] = rc, len(ru)
	obs["committed"] = groupCommitted(g, t)
	h.Check(h.Equal(rc, want), "read_committed output %v, expected V0..V19 once each", rc)
	h.Check(len(ru) == 25, "read_uncommitted saw %d records, expected 25 (20 + 5 aborted)", len(ru))
	h.Check(obs["committed"] == int64(20), "group's committed input offset %v, expected 20", obs["committed"])
}
