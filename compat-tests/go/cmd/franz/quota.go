package main

// sec-quota with kadm (AlterClientQuotas / DescribeClientQuotas) and kgo's OnBrokerThrottle hook:
// the quota entity is the cell's own client id q-<topic>, never a default entity.

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	h "strom.compat/go/internal/harness"
)

const (
	quotaRate        = 20000.0
	quotaRecords     = 26
	quotaRecordBytes = 10000
)

// throttleHook keeps the largest broker throttle a client was told about.
type throttleHook struct {
	mu  sync.Mutex
	max time.Duration
	n   int
}

func (t *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	if d > t.max {
		t.max = d
	}
}

func (t *throttleHook) get() (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.max, t.n
}

// describeQuotas: DescribeClientQuotas with an exact client-id filter, as sorted
// "{client-id=<client>} key=value" lines.
func describeQuotas(a *kadm.Client, cid string) []string {
	name := cid
	qs, err := a.DescribeClientQuotas(ctx(15), false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &name, MatchType: 0}})
	h.Must(err, "DescribeClientQuotas")
	out := []string{}
	for _, q := range qs {
		parts := []string{}
		for _, c := range q.Entity {
			n := "<default>"
			if c.Name != nil {
				n = strings.ReplaceAll(*c.Name, cid, "<client>")
			}
			parts = append(parts, c.Type+"="+n)
		}
		sort.Strings(parts)
		for _, v := range q.Values {
			out = append(out, fmt.Sprintf("{%s} %s=%v", strings.Join(parts, ", "), v.Key, v.Value))
		}
	}
	sort.Strings(out)
	return out
}

func describeQuotasUntil(a *kadm.Client, cid string, want []string) []string {
	end := time.Now().Add(10 * time.Second)
	for {
		got := describeQuotas(a, cid)
		if h.Equal(got, want) || time.Now().After(end) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func quotaValue(i int) string {
	b := []byte(fmt.Sprintf("q%d-", i))
	for len(b) < quotaRecordBytes {
		b = append(b, byte('a'+len(b)%26))
	}
	return string(b)
}

func alterQuotas(a *kadm.Client, cid string, remove bool) {
	name := cid
	ops := []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: quotaRate, Remove: remove}, {Key: "consumer_byte_rate", Value: quotaRate, Remove: remove}}
	rs, err := a.AlterClientQuotas(ctx(15), []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &name}}, Ops: ops}})
	h.Must(err, "AlterClientQuotas")
	for _, r := range rs {
		h.Check(r.Err == nil, "AlterClientQuotas (remove=%v): %v %s", remove, r.Err, r.ErrMessage)
	}
}

func secQuota(b, t string, obs h.Obs) {
	h.Sec()
	create(t, 1, nil)
	cid := "q-" + t
	a := admin()
	alterQuotas(a, cid, false)
	want := []string{"{client-id=<client>} consumer_byte_rate=20000", "{client-id=<client>} producer_byte_rate=20000"}
	described := describeQuotasUntil(a, cid, want)
	obs["described"] = described
	h.Check(h.Equal(described, want), "DescribeClientQuotas (exact client-id): %v, expected %v", described, want)

	// 260 kB uncompressed (franz-go compresses by default) in two produce requests of 130 kB: Kafka
	// measures over at least 10 s, so the second takes the rate to 26 kB/s and its response
	// carries the throttle.
	values := make([]string, quotaRecords)
	recs := make([]*kgo.Record, quotaRecords)
	for i := range recs {
		values[i] = quotaValue(i)
		recs[i] = &kgo.Record{Topic: t, Partition: 0, Key: []byte(fmt.Sprintf("k-%d", i)), Value: []byte(values[i])}
	}
	ph := &throttleHook{}
	t0 := time.Now()
	pcl := client(kgo.ClientID(cid), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(50*time.Millisecond), kgo.WithHooks(ph))
	half := quotaRecords / 2
	res := pcl.ProduceSync(ctx(30), recs[:half]...)
	h.Must(res.FirstErr(), "produce")
	res2 := pcl.ProduceSync(ctx(30), recs[half:]...)
	pcl.Close()
	h.Must(res2.FirstErr(), "produce")
	res = append(res, res2...)
	pmax, pn := ph.get()
	fmt.Fprintf(os.Stderr, "[sec-quota] produced %d in %v, %d throttles, max %v\n", len(res), time.Since(t0), pn, pmax)
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", res[0].Record.Offset, res[len(res)-1].Record.Offset)
	obs["produce_throttled"] = pmax > 0
	h.Check(res[len(res)-1].Record.Offset == quotaRecords-1, "produced offsets %v", obs["produced_offsets"])
	h.Check(pmax > 0, "the producer saw no broker throttle (OnBrokerThrottle) after %d bytes at producer_byte_rate=20000", quotaRecords*quotaRecordBytes)

	// 64 kB fetches: the one that crosses ~200 kB is throttled (answered without records) until
	// the rate's first second leaves its 11-sample window.
	fh := &throttleHook{}
	t0 = time.Now()
	ccl := client(kgo.ClientID(cid), kgo.FetchMaxBytes(65536), kgo.FetchMaxPartitionBytes(65536), kgo.WithHooks(fh),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AtStart()}}))
	rs := readPolls(ccl, quotaRecords, 25)
	ccl.Close()
	fmax, fn := fh.get()
	fmt.Fprintf(os.Stderr, "[sec-quota] consumed %d in %v, %d throttles, max %v\n", len(rs), time.Since(t0), fn, fmax)
	obs["consumed"] = len(rs)
	obs["fetch_throttled"] = fmax > 0
	same := len(rs) == quotaRecords
	for i := 0; same && i < quotaRecords; i++ {
		same = rs[i].Offset == int64(i) && string(rs[i].Value) == values[i]
	}
	h.Check(same, "the consumer read %d of %d records (or not the ones produced, in order) in %v", len(rs), quotaRecords, time.Since(t0))
	h.Check(fmax > 0, "the consumer saw no broker throttle (OnBrokerThrottle) reading %d bytes at consumer_byte_rate=20000", quotaRecords*quotaRecordBytes)

	alterQuotas(a, cid, true)
	after := describeQuotasUntil(a, cid, []string{})
	obs["described_after_remove"] = after
	h.Check(len(after) == 0, "DescribeClientQuotas after removing both: %v, expected nothing", after)
}
