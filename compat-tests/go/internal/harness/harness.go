// Package harness is the shared plumbing of the Go drivers of Strom's compat-tests: argument
// parsing, the @@RESULT line, checks and Kafka's error names.
package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// BaseTS is an hour ago in milliseconds: inside every timestamp bound, far from retention.
var BaseTS = (time.Now().Unix() - 3600) * 1000

// Obs holds the observables recorded for cross-target comparison.
type Obs map[string]any

type failure struct{ msg string }
type notApplicable struct{ msg string }
type notYet struct{ msg string }

// Check fails the scenario with msg when ok is false.
// ExpectedBrokers is how many brokers the target is (COMPAT_BROKERS: 1, or 3 for a cluster).
func ExpectedBrokers() int {
	n := 1
	fmt.Sscanf(os.Getenv("COMPAT_BROKERS"), "%d", &n)
	return n
}

// SameAddrs tells whether the advertised host:port list is exactly the bootstrap list.
func SameAddrs(addrs []string, bootstrap string) bool {
	want := strings.Split(bootstrap, ",")
	if len(addrs) != len(want) {
		return false
	}
	a := append([]string(nil), addrs...)
	sort.Strings(a)
	sort.Strings(want)
	for i := range a {
		if a[i] != want[i] {
			return false
		}
	}
	return true
}

func Check(ok bool, format string, args ...any) {
	if !ok {
		panic(failure{fmt.Sprintf(format, args...)})
	}
}

// Must fails the scenario on a non-nil error.
func Must(err error, what string) {
	if err != nil {
		panic(failure{fmt.Sprintf("%s: %v", what, err)})
	}
}

// NA marks the scenario as something this client library cannot do.
func NA(why string) { panic(notApplicable{why}) }

// NotYet marks the scenario as not runnable here yet (e.g. the broker has no security listeners).
func NotYet(why string) { panic(notYet{why}) }

// Security is COMPAT_SECURITY (compat-tests/lib/brokers.py security_env): the security listeners'
// host:port by name, the test CA and client certificate files, the PLAIN users.
type Security struct {
	Plaintext         string            `json:"plaintext"`
	SSL               string            `json:"ssl"`
	MTLS              string            `json:"mtls"`
	SaslPlaintext     string            `json:"sasl_plaintext"`
	SaslSSL           string            `json:"sasl_ssl"`
	CA                string            `json:"ca"`
	ClientCert        string            `json:"client_cert"`
	ClientKey         string            `json:"client_key"`
	ClientP12         string            `json:"client_p12"`
	ClientP12Password string            `json:"client_p12_password"`
	PlainUsers        map[string]string `json:"plain_users"`
	// The OAUTHBEARER listener (sec-oauth), the pre-minted JWT files by case and the principal
	// the valid token stands for; absent when the broker has no such listener.
	OAuth          string            `json:"oauth"`
	OAuthTokens    map[string]string `json:"oauth_tokens"`
	OAuthPrincipal string            `json:"oauth_principal"`
}

// Sec reads COMPAT_SECURITY; without it (no security listeners on this broker) the cell is not_yet.
func Sec() Security {
	raw := os.Getenv("COMPAT_SECURITY")
	if raw == "" {
		NotYet("no COMPAT_SECURITY: the broker has no security listeners")
	}
	var s Security
	Must(json.Unmarshal([]byte(raw), &s), "COMPAT_SECURITY")
	return s
}

// Vals returns prefix0..prefix(n-1).
func Vals(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// Scenario is one scenario body.
type Scenario func(bootstrap, topic string, obs Obs)

// Main runs os.Args[1] from scenarios and prints the @@RESULT line, then exits.
func Main(scenarios map[string]Scenario) {
	name, bootstrap, topic := os.Args[1], os.Args[2], os.Args[3]
	obs := Obs{}
	status, detail := "pass", ""
	func() {
		defer func() {
			if r := recover(); r != nil {
				switch v := r.(type) {
				case failure:
					status, detail = "fail", v.msg
				case notApplicable:
					status, detail = "n/a", v.msg
				case notYet:
					status, detail = "not_yet", v.msg
				default:
					status, detail = "fail", fmt.Sprintf("panic: %v", r)
				}
			}
		}()
		fn, ok := scenarios[name]
		if !ok {
			status, detail = "not_yet", "no driver for "+name+" yet"
			return
		}
		fn(bootstrap, topic, obs)
	}()
	b, _ := json.Marshal(map[string]any{"status": status, "detail": detail, "obs": obs})
	fmt.Println("@@RESULT " + string(b))
	os.Exit(0)
}

// Sizes renders sorted assignment sizes, e.g. "1,1,1".
func Sizes(ns []int) string {
	sort.Ints(ns)
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// Equal compares two string slices.
func Equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// WantRecords is the record-fields round-trip every driver expects.
var WantRecords = []string{
	"key=k0 value=v0 ts=+1000 CreateTime headers=h1=a;h1=b;h2=c;",
	"key=<null> value=v1 ts=+2000 CreateTime headers=",
	"key=k2 value=<null> ts=+3000 CreateTime headers=h3=;",
}

// Str renders a nullable byte slice.
func Str(b []byte, isNull bool) string {
	if isNull {
		return "<null>"
	}
	return string(b)
}

// KafkaErrors names Kafka's error codes, so every client's errors are reported in Kafka's words.
var KafkaErrors = map[int16]string{
	-1: "UNKNOWN_SERVER_ERROR", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE", 3: "UNKNOWN_TOPIC_OR_PARTITION",
	5: "LEADER_NOT_AVAILABLE", 6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 10: "MESSAGE_TOO_LARGE",
	15: "COORDINATOR_NOT_AVAILABLE", 16: "NOT_COORDINATOR", 17: "INVALID_TOPIC_EXCEPTION",
	18: "RECORD_LIST_TOO_LARGE", 22: "ILLEGAL_GENERATION", 25: "UNKNOWN_MEMBER_ID", 27: "REBALANCE_IN_PROGRESS",
	35: "UNSUPPORTED_VERSION", 36: "TOPIC_ALREADY_EXISTS", 37: "INVALID_PARTITIONS",
	38: "INVALID_REPLICATION_FACTOR", 40: "INVALID_CONFIG", 42: "INVALID_REQUEST", 45: "OUT_OF_ORDER_SEQUENCE_NUMBER",
	47: "INVALID_PRODUCER_EPOCH", 48: "INVALID_TXN_STATE", 49: "INVALID_PRODUCER_ID_MAPPING",
	51: "CONCURRENT_TRANSACTIONS", 87: "INVALID_RECORD",
	33: "UNSUPPORTED_SASL_MECHANISM", 34: "ILLEGAL_SASL_STATE", 58: "SASL_AUTHENTICATION_FAILED",
	91: "RESOURCE_NOT_FOUND",
	29: "TOPIC_AUTHORIZATION_FAILED", 30: "GROUP_AUTHORIZATION_FAILED", 31: "CLUSTER_AUTHORIZATION_FAILED",
	53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", 54: "SECURITY_DISABLED",
}

// ErrName names a Kafka error code.
func ErrName(code int16) string {
	if n, ok := KafkaErrors[code]; ok {
		return n
	}
	return fmt.Sprintf("code %d", code)
}
