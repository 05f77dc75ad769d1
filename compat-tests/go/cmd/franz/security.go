package main

// The security scenarios (sec-*) with kgo/kadm: the broker's SSL, MTLS, SASL_PLAINTEXT and
// SASL_SSL listeners from COMPAT_SECURITY (TLS via kgo.DialTLSConfig, SASL via the plain and
// scram mechanisms of franz-go's pkg/sasl); topics and SCRAM credentials are made through the
// PLAINTEXT listener (the bootstrap argument).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	h "strom.compat/go/internal/harness"
)

// tlsOpt verifies the broker against ca.pem (kgo sets ServerName to the dialed host, so the
// certificate's IP:127.0.0.1 SAN is checked); withCert adds the client certificate.
func tlsOpt(s h.Security, withCert bool) kgo.Opt {
	pem, err := os.ReadFile(s.CA)
	h.Must(err, "read ca.pem")
	pool := x509.NewCertPool()
	h.Check(pool.AppendCertsFromPEM(pem), "no certificate in %s", s.CA)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withCert {
		kp, err := tls.LoadX509KeyPair(s.ClientCert, s.ClientKey)
		h.Must(err, "load the client certificate")
		cfg.Certificates = []tls.Certificate{kp}
	}
	return kgo.DialTLSConfig(cfg)
}

func mechanism(name, user, pass string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	default:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
}

func seeds(addr string) kgo.Opt { return kgo.SeedBrokers(addr) }

// secRoundTrip produces 5 records and reads them back from offset 0 with these connection options.
func secRoundTrip(t string, obs h.Obs, opts ...kgo.Opt) {
	want := h.Vals(5, "sec-")
	offs := produce(t, want, opts...)
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[len(offs)-1])
	rs := readFromStart(t, 5, opts...)
	obs["count"] = len(rs)
	checkExact(rs, want, 0)
}

// probe asks for the cluster's metadata over a fresh client with these options, bounded to
// 5 s: "" when answered, else what the client reported (Kafka's error name for a broker error).
func probe(opts ...kgo.Opt) string {
	cl := client(append([]kgo.Opt{kgo.RetryTimeout(4 * time.Second)}, opts...)...)
	defer cl.Close()
	_, err := kadm.NewClient(cl).BrokerMetadata(ctx(5))
	if err == nil {
		return ""
	}
	fmt.Fprintf(os.Stderr, "[sec] probe: %v\n", err)
	lastMessage = err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "remote error: "); i >= 0 { // the TLS alert the broker sent
		return msg[i:]
	}
	if strings.Contains(msg, "deadline exceeded") {
		return "context deadline exceeded"
	}
	return "client error: " + msg
}

// lastMessage is the full text of what the last failed probe reported (the broker's words for a SASL failure).
var lastMessage string

// brokerWords is the broker's own message in a SASL failure ("<CODE>: <description>.: <broker message>").
func brokerWords() string {
	if i := strings.LastIndex(lastMessage, ".: "); i >= 0 {
		return lastMessage[i+3:]
	}
	return lastMessage
}

func probeUntil(ok bool, sec int, opts ...kgo.Opt) string {
	end := time.Now().Add(time.Duration(sec) * time.Second)
	for {
		r := probe(opts...)
		if (r == "") == ok || time.Now().After(end) {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func scramMech(name string) kadm.ScramMechanism {
	if name == "SCRAM-SHA-256" {
		return kadm.ScramSha256
	}
	return kadm.ScramSha512
}

// describeSCRAM renders what DescribeUserScramCredentials says of user ("SCRAM-SHA-256:8192", or the error).
func describeSCRAM(a *kadm.Client, user string) string {
	d, err := a.DescribeUserSCRAMs(ctx(10), user)
	if err != nil {
		return errName(err)
	}
	u := d[user]
	if u.Err != nil {
		return errName(u.Err)
	}
	var parts []string
	for _, ci := range u.CredInfos {
		parts = append(parts, fmt.Sprintf("%s:%d", ci.Mechanism, ci.Iterations))
	}
	return strings.Join(parts, ",")
}

// upsertSCRAM makes user's credential (8192 iterations) and waits until it is described.
func upsertSCRAM(a *kadm.Client, user, mech, pass string) string {
	r, err := a.AlterUserSCRAMs(ctx(15), nil, []kadm.UpsertSCRAM{{User: user, Mechanism: scramMech(mech), Iterations: 8192, Password: pass}})
	h.Must(err, "AlterUserScramCredentials upsert")
	h.Must(r[user].Err, "AlterUserScramCredentials upsert "+user)
	shown := ""
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if shown = describeSCRAM(a, user); shown == mech+":8192" {
			break
		}
	}
	return shown
}

func deleteSCRAM(a *kadm.Client, user, mech string) {
	r, err := a.AlterUserSCRAMs(ctx(15), []kadm.DeleteSCRAM{{User: user, Mechanism: scramMech(mech)}}, nil)
	h.Must(err, "AlterUserScramCredentials delete")
	h.Must(r[user].Err, "AlterUserScramCredentials delete "+user)
}

func secTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	secRoundTrip(t, obs, seeds(s.SSL), tlsOpt(s, false))
}

func secMTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	secRoundTrip(t, obs, seeds(s.MTLS), tlsOpt(s, true))
	obs["ok"] = true
	r := probe(seeds(s.MTLS), tlsOpt(s, false))
	obs["no_cert_error"] = r
	h.Check(r != "", "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)")
	h.Check(strings.HasPrefix(r, "remote error: tls:"), "without a client certificate: %s, expected a TLS alert", r)
}

func secPlain(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	pw := s.PlainUsers["alice"]
	secRoundTrip(t, obs, seeds(s.SaslPlaintext), kgo.SASL(mechanism("PLAIN", "alice", pw)))
	r := probe(seeds(s.SaslPlaintext), kgo.SASL(mechanism("PLAIN", "alice", "wrong-"+pw)))
	obs["bad_password_error"] = r
	obs["bad_password_message"] = brokerWords()
	h.Check(r == "SASL_AUTHENTICATION_FAILED", "alice with a wrong password: %q, expected SASL_AUTHENTICATION_FAILED", r)
}

func secScram(mech string) h.Scenario {
	return func(b, t string, obs h.Obs) {
		s := h.Sec()
		create(t, 1, nil)
		user, pw := "u-"+t, "pw-"+t
		a := admin()
		obs["described"] = upsertSCRAM(a, user, mech, pw)
		h.Check(obs["described"] == mech+":8192", "DescribeUserScramCredentials after the upsert: %v", obs["described"])
		auth := func(pass string) []kgo.Opt {
			return []kgo.Opt{seeds(s.SaslPlaintext), kgo.SASL(mechanism(mech, user, pass))}
		}
		r := probeUntil(true, 10, auth(pw)...)
		h.Check(r == "", "the new %s credential was not accepted within 10 s: %s", mech, r)
		secRoundTrip(t, obs, auth(pw)...)
		r = probe(auth("wrong-" + pw)...)
		obs["bad_password_error"] = r
		obs["bad_password_message"] = brokerWords()
		h.Check(r == "SASL_AUTHENTICATION_FAILED", "a wrong password: %q, expected SASL_AUTHENTICATION_FAILED", r)
		deleteSCRAM(a, user, mech)
		gone := ""
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if gone = describeSCRAM(a, user); gone == "RESOURCE_NOT_FOUND" {
				break
			}
		}
		obs["described_after_delete"] = gone
		h.Check(gone == "RESOURCE_NOT_FOUND", "DescribeUserScramCredentials after the delete: %q, expected RESOURCE_NOT_FOUND", gone)
		r = probeUntil(false, 10, auth(pw)...)
		obs["after_delete_error"] = r
		h.Check(r == "SASL_AUTHENTICATION_FAILED", "the deleted credential's password: %q, expected SASL_AUTHENTICATION_FAILED", r)
	}
}

func secSaslSSL(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	user, pw := "u-"+t, "pw-"+t
	a := admin()
	shown := upsertSCRAM(a, user, "SCRAM-SHA-512", pw)
	h.Check(shown == "SCRAM-SHA-512:8192", "DescribeUserScramCredentials after the upsert: %s", shown)
	opts := []kgo.Opt{seeds(s.SaslSSL), tlsOpt(s, false), kgo.SASL(mechanism("SCRAM-SHA-512", user, pw))}
	r := probeUntil(true, 10, opts...)
	h.Check(r == "", "SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: %s", r)
	secRoundTrip(t, obs, opts...)
	deleteSCRAM(a, user, "SCRAM-SHA-512")
}

func secPlaintextToTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	r := probe(seeds(s.SSL))
	obs["plaintext_to_ssl"] = r
	h.Check(r != "", "a PLAINTEXT client was served by the SSL listener")
	r = probe(seeds(s.Plaintext), kgo.SASL(mechanism("PLAIN", "alice", s.PlainUsers["alice"])))
	obs["sasl_to_plaintext"] = r
	h.Check(r != "", "a SASL client was served by the PLAINTEXT listener")
}

// ---------------------------------------------------------------- sec-oauth

// oauthOpts connects to the OAUTH listener with the pre-minted JWT of this case as a static
// token (pkg/sasl/oauth; franz-go sends it as is, checking nothing).
func oauthOpts(s h.Security, tokenCase string) []kgo.Opt {
	path, ok := s.OAuthTokens[tokenCase]
	h.Check(ok, "COMPAT_SECURITY oauth_tokens has no %s", tokenCase)
	tok, err := os.ReadFile(path)
	h.Must(err, "read the token file")
	return []kgo.Opt{seeds(s.OAuth), kgo.SASL(oauth.Auth{Token: strings.TrimSpace(string(tok))}.AsMechanism())}
}

func secOAuth(b, t string, obs h.Obs) {
	s := h.Sec()
	h.Check(s.OAuth != "", "COMPAT_SECURITY has no oauth listener")
	create(t, 1, nil)
	a := admin()
	// ACLs on the topic for the token's principal only: the round trip also shows it is User:alice.
	acls := kadm.NewACLs().Topics(t).Allow(s.OAuthPrincipal).AllowHosts("*").
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	rs, err := a.CreateACLs(ctx(15), acls)
	h.Must(err, "CreateAcls")
	for _, r := range rs {
		h.Must(r.Err, "CreateAcls result")
	}
	obs["described"] = describeTopicACLs(a, t, 2)
	r := probeUntil(true, 10, oauthOpts(s, "valid")...)
	h.Check(r == "", "the valid token was not accepted: %q %s", r, lastMessage)
	secRoundTrip(t, obs, oauthOpts(s, "valid")...)
	bad := map[string]string{}
	for _, c := range []string{"expired", "wrong-audience", "bad-signature", "unsigned"} {
		lastMessage = ""
		r := probe(oauthOpts(s, c)...)
		obs[c+"_error"] = r
		if r != oauthRefused {
			bad[c] = r
		}
	}
	h.Check(len(bad) == 0, "tokens not refused as Kafka 4.4 refuses them (%q): %v", oauthRefused, bad)
}

// oauthRefused is what franz-go v1.22.2 reports for a refused token against Kafka 4.4. Kafka
// answers the client's token with a SaslAuthenticate response without error whose auth bytes are
// the RFC 7628 error (`{"status":"invalid_token"}`), expecting the client's %x01 before it fails
// the exchange with SASL_AUTHENTICATION_FAILED; franz-go's oauth session accepts only an empty
// server message and stops there with its own error, never seeing the error code.
const oauthRefused = "client error: unexpected data in oauth response"

// ---------------------------------------------------------------- sec-acl

// aclStr renders "TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic t as <topic>,
// so the targets' observables compare).
func aclStr(t string, typ kmsg.ACLResourceType, pattern kadm.ACLPattern, name, principal, host string, op kadm.ACLOperation, perm kmsg.ACLPermissionType) string {
	if name == t {
		name = "<topic>"
	}
	return fmt.Sprintf("%s:%s:%s %s@%s %s %s", typ, pattern, name, principal, host, op, perm)
}

// describeTopicACLs is DescribeAcls of the topic's LITERAL pattern (any principal, host,
// operation, permission), sorted; retried (bounded) until it has `want` bindings.
func describeTopicACLs(a *kadm.Client, t string, want int) []string {
	b := kadm.NewACLs().Topics(t).Allow().AllowHosts().Deny().DenyHosts().Operations().ResourcePatternType(kadm.ACLPatternLiteral)
	var out []string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rs, err := a.DescribeACLs(ctx(10), b)
		h.Must(err, "DescribeAcls")
		out = []string{}
		for _, r := range rs {
			h.Must(r.Err, "DescribeAcls filter")
			for _, d := range r.Described {
				out = append(out, aclStr(t, d.Type, d.Pattern, d.Name, d.Principal, d.Host, d.Operation, d.Permission))
			}
		}
		sort.Strings(out)
		if len(out) == want || time.Now().After(end) {
			return out
		}
	}
}

// produceAs sends one record with these options and small timeouts: "" when acknowledged, else
// what the client reported (Kafka's error name for a broker error).
func produceAs(t, value string, opts ...kgo.Opt) string {
	cl := client(append([]kgo.Opt{kgo.RecordDeliveryTimeout(6 * time.Second), kgo.ProduceRequestTimeout(5 * time.Second)}, opts...)...)
	defer cl.Close()
	err := cl.ProduceSync(ctx(8), &kgo.Record{Topic: t, Partition: 0, Key: []byte("k"), Value: []byte(value)}).FirstErr()
	if err == nil {
		return ""
	}
	fmt.Fprintf(os.Stderr, "[sec-acl] produce: %v\n", err)
	return errName(err)
}

// aclAdminConsumeError is what a franz-go group consumer of a user with no ACL reports against
// Kafka 4.4: the topic's TOPIC_AUTHORIZATION_FAILED from its Metadata, injected into PollFetches
// (partition -1), comes before anything about the group.
const aclAdminConsumeError = "TOPIC_AUTHORIZATION_FAILED"

func secACL(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	g := t + "-g"
	a := admin()
	for _, bl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Topics(t).Allow("User:alice").Operations(kadm.OpWrite, kadm.OpRead),
		kadm.NewACLs().Groups(g).Allow("User:alice").Operations(kadm.OpRead),
	} {
		rs, err := a.CreateACLs(ctx(15), bl)
		h.Must(err, "CreateAcls")
		for _, r := range rs {
			h.Must(r.Err, "CreateAcls "+r.Name)
		}
	}
	want := []string{"TOPIC:LITERAL:<topic> User:alice@* READ ALLOW", "TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW"}
	described := describeTopicACLs(a, t, 2)
	obs["described"] = described
	h.Check(h.Equal(described, want), "DescribeAcls of the topic: %v, expected %v", described, want)

	alice := []kgo.Opt{seeds(s.SaslPlaintext), kgo.SASL(mechanism("PLAIN", "alice", s.PlainUsers["alice"]))}
	adminUser := []kgo.Opt{seeds(s.SaslPlaintext), kgo.SASL(mechanism("PLAIN", "admin", s.PlainUsers["admin"]))}
	offs := produce(t, h.Vals(5, "acl-"), alice...)
	obs["alice_produced_offsets"] = fmt.Sprintf("%d..%d", offs[0], offs[len(offs)-1])
	cl := client(append([]kgo.Opt{kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, alice...)...)
	rs := readPolls(cl, 5, 15)
	got := []string{}
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	if len(rs) > 0 {
		h.Must(cl.CommitUncommittedOffsets(ctx(10)), "alice's commit")
	}
	cl.Close()
	obs["alice_consumed"] = got
	h.Check(h.Equal(got, []string{"0:acl-0", "1:acl-1", "2:acl-2", "3:acl-3", "4:acl-4"}), "alice consumed %v", got)

	r := produceAs(t, "refused", adminUser...)
	obs["admin_produce_error"] = r
	h.Check(r == "TOPIC_AUTHORIZATION_FAILED", "admin's produce: %q, expected TOPIC_AUTHORIZATION_FAILED", r)
	cl = client(append([]kgo.Opt{kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, adminUser...)...)
	consumeErr, n := "", 0
	for end := time.Now().Add(10 * time.Second); consumeErr == "" && time.Now().Before(end); {
		c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(c)
		cancel()
		for _, fe := range fs.Errors() {
			if consumeErr == "" && !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "[sec-acl] consume as admin: %s/%d: %v\n", fe.Topic, fe.Partition, fe.Err)
				consumeErr = errName(fe.Err)
			}
		}
		n += fs.NumRecords()
	}
	cl.Close()
	obs["admin_consumed"] = n
	obs["admin_consume_error"] = consumeErr
	h.Check(consumeErr == aclAdminConsumeError, "admin's group consume: %q, expected %s", consumeErr, aclAdminConsumeError)

	dr, err := a.DeleteACLs(ctx(15), kadm.NewACLs().Topics(t).Allow("User:alice").AllowHosts("*").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	h.Must(err, "DeleteAcls")
	deleted := []string{}
	for _, fr := range dr {
		h.Must(fr.Err, "DeleteAcls filter")
		for _, d := range fr.Deleted {
			deleted = append(deleted, aclStr(t, d.Type, d.Pattern, d.Name, d.Principal, d.Host, d.Operation, d.Permission))
		}
	}
	obs["deleted"] = deleted
	h.Check(h.Equal(deleted, want[1:]), "DeleteAcls of alice's WRITE removed %v", deleted)
	left := describeTopicACLs(a, t, 1)
	obs["described_after_delete"] = left
	h.Check(h.Equal(left, want[:1]), "DescribeAcls after the delete: %v", left)
	r = produceAs(t, "after-delete", alice...)
	obs["alice_produce_after_delete"] = r
	h.Check(r == "TOPIC_AUTHORIZATION_FAILED", "alice's produce without WRITE: %q, expected TOPIC_AUTHORIZATION_FAILED", r)
}
