package main

// sec-quota with sarama's ClusterAdmin AlterClientQuotas / DescribeClientQuotas; the broker's
// throttle is read from the client's own metric (go-metrics histogram
// throttle-time-in-ms-for-broker-<id>, updated for every response with throttle_time_ms > 0).
// The quota entity is the cell's own client id q-<topic>, never a default entity.

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"

	h "strom.compat/go/internal/harness"
)

const (
	quotaRate        = 20000.0
	quotaRecords     = 26
	quotaRecordBytes = 10000
)

// throttleMax is the largest throttle-time-in-ms any broker's histogram in r saw (while the
// client is open: a closed broker's metrics are unregistered).
func throttleMax(r metrics.Registry) int64 {
	var max int64
	r.Each(func(name string, m interface{}) {
		if hist, ok := m.(metrics.Histogram); ok && strings.HasPrefix(name, "throttle-time-in-ms") {
			if v := hist.Max(); v > max {
				max = v
			}
		}
	})
	return max
}

func describeQuotas(a sarama.ClusterAdmin, cid string) []string {
	es, err := a.DescribeClientQuotas([]sarama.QuotaFilterComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Match: cid}}, false)
	h.Must(err, "DescribeClientQuotas")
	out := []string{}
	for _, e := range es {
		parts := []string{}
		for _, c := range e.Entity {
			n := strings.ReplaceAll(c.Name, cid, "<client>")
			if c.MatchType == sarama.QuotaMatchDefault {
				n = "<default>"
			}
			parts = append(parts, string(c.EntityType)+"="+n)
		}
		sort.Strings(parts)
		for k, v := range e.Values {
			out = append(out, fmt.Sprintf("{%s} %s=%v", strings.Join(parts, ", "), k, v))
		}
	}
	sort.Strings(out)
	return out
}

func describeQuotasUntil(a sarama.ClusterAdmin, cid string, want []string) []string {
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

func secQuota(b, t string, obs h.Obs) {
	h.Sec()
	if os.Getenv("COMPAT_SARAMA_DEBUG") != "" { // sarama's debug log (throttles, requests) in the cell's log
		sarama.DebugLogger = sarama.Logger
	}
	create(t, 1, nil)
	cid := "q-" + t
	a := admin()
	defer a.Close()
	entity := []sarama.QuotaEntityComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Name: cid}}
	// sarama's AlterClientQuotas takes one op per call.
	for _, k := range []string{"producer_byte_rate", "consumer_byte_rate"} {
		h.Must(a.AlterClientQuotas(entity, sarama.ClientQuotasOp{Key: k, Value: quotaRate}, false), "AlterClientQuotas "+k)
	}
	want := []string{"{client-id=<client>} consumer_byte_rate=20000", "{client-id=<client>} producer_byte_rate=20000"}
	described := describeQuotasUntil(a, cid, want)
	obs["described"] = described
	h.Check(h.Equal(described, want), "DescribeClientQuotas (exact client-id): %v, expected %v", described, want)

	// 260 kB in two produce requests of 130 kB (Flush.Messages 13, no compression): Kafka measures
	// over at least 10 s, so the second takes the rate to 26 kB/s and its response carries the throttle.
	values := make([]string, quotaRecords)
	msgs := make([]*sarama.ProducerMessage, quotaRecords)
	for i := range values {
		values[i] = quotaValue(i)
		msgs[i] = &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k-%d", i)), Value: sarama.StringEncoder(values[i])}
	}
	preg := metrics.NewRegistry()
	t0 := time.Now()
	half := quotaRecords / 2
	p := producer(func(c *sarama.Config) {
		c.ClientID = cid
		c.MetricRegistry = preg
		c.Producer.RequiredAcks = sarama.WaitForLocal
		c.Producer.Compression = sarama.CompressionNone
		c.Producer.Flush.Messages = half
		c.Producer.Flush.Frequency = 200 * time.Millisecond
	})
	h.Must(p.SendMessages(msgs[:half]), "produce")
	h.Must(p.SendMessages(msgs[half:]), "produce")
	// Read before Close: a closed broker's metrics leave the registry (sarama's cleanupRegistry).
	pmax := throttleMax(preg)
	for end := time.Now().Add(time.Second); pmax == 0 && time.Now().Before(end); pmax = throttleMax(preg) {
		time.Sleep(50 * time.Millisecond)
	}
	p.Close()
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = m.Offset
	}
	fmt.Fprintf(os.Stderr, "[sec-quota] produced %d in %v, max throttle %d ms\n", len(offs), time.Since(t0), pmax)
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[len(offs)-1])
	obs["produce_throttled"] = pmax > 0
	h.Check(offs[len(offs)-1] == quotaRecords-1, "produced offsets %v", obs["produced_offsets"])
	h.Check(pmax > 0, "the producer saw no broker throttle (throttle-time-in-ms) after %d bytes at producer_byte_rate=20000", quotaRecords*quotaRecordBytes)

	// 64 kB fetches: the one that crosses ~200 kB is throttled (answered without records) until the
	// rate's first second leaves its 11-sample window.
	creg := metrics.NewRegistry()
	t0 = time.Now()
	c := cfg()
	c.ClientID = cid
	c.MetricRegistry = creg
	c.Consumer.Fetch.Default = 65536
	c.Consumer.Fetch.Max = 65536
	cons, err := sarama.NewConsumer(strings.Split(seed, ","), c)
	h.Must(err, "consumer")
	pc, err := cons.ConsumePartition(t, 0, sarama.OffsetOldest)
	h.Must(err, "consume partition")
	var ms []*sarama.ConsumerMessage
	timeout := time.After(25 * time.Second)
loop:
	for len(ms) < quotaRecords {
		select {
		case m := <-pc.Messages():
			ms = append(ms, m)
		case e := <-pc.Errors():
			h.Check(false, "consume error: %v", e)
		case <-timeout:
			break loop
		}
	}
	fmax := throttleMax(creg)
	pc.Close()
	cons.Close()
	fmt.Fprintf(os.Stderr, "[sec-quota] consumed %d in %v, max throttle %d ms\n", len(ms), time.Since(t0), fmax)
	obs["consumed"] = len(ms)
	obs["fetch_throttled"] = fmax > 0
	same := len(ms) == quotaRecords
	for i := 0; same && i < quotaRecords; i++ {
		same = ms[i].Offset == int64(i) && string(ms[i].Value) == values[i]
	}
	h.Check(same, "the consumer read %d of %d records (or not the ones produced, in order) in %v", len(ms), quotaRecords, time.Since(t0))
	h.Check(fmax > 0, "the consumer saw no broker throttle (throttle-time-in-ms) reading %d bytes at consumer_byte_rate=20000", quotaRecords*quotaRecordBytes)

	for _, k := range []string{"producer_byte_rate", "consumer_byte_rate"} {
		h.Must(a.AlterClientQuotas(entity, sarama.ClientQuotasOp{Key: k, Remove: true}, false), "AlterClientQuotas remove "+k)
	}
	after := describeQuotasUntil(a, cid, []string{})
	obs["described_after_remove"] = after
	h.Check(len(after) == 0, "DescribeClientQuotas after removing both: %v, expected nothing", after)
}
