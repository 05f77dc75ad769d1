package main

// The security scenarios (sec-*) with sarama: the broker's SSL, MTLS, SASL_PLAINTEXT and
// SASL_SSL listeners from COMPAT_SECURITY (Net.TLS with a crypto/tls config, Net.SASL PLAIN and
// SCRAM-SHA-256/512, SCRAM through github.com/xdg-go/scram as sarama's documentation suggests),
// the credentials with ClusterAdmin Upsert/Describe/DeleteUserScramCredentials through the
// PLAINTEXT listener (the bootstrap argument).

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	h "strom.compat/go/internal/harness"
)

// xdgSCRAM is sarama's SCRAMClient on xdg-go/scram.
type xdgSCRAM struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authz string) error {
	c, err := x.gen.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

type secConf func(*sarama.Config)

func tlsConf(s h.Security, withCert bool) secConf {
	pem, err := os.ReadFile(s.CA)
	h.Must(err, "read ca.pem")
	pool := x509.NewCertPool()
	h.Check(pool.AppendCertsFromPEM(pem), "no certificate in %s", s.CA)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if withCert {
		kp, err := tls.LoadX509KeyPair(s.ClientCert, s.ClientKey)
		h.Must(err, "load the client certificate")
		tc.Certificates = []tls.Certificate{kp}
	}
	return func(c *sarama.Config) {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = tc
	}
}

func saslConf(mech, user, pass string) secConf {
	return func(c *sarama.Config) {
		c.Net.SASL.Enable = true
		c.Net.SASL.User, c.Net.SASL.Password = user, pass
		switch mech {
		case "PLAIN":
			c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{gen: scram.SHA256} }
		default:
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{gen: scram.SHA512} }
		}
	}
}

func secCfg(mods ...secConf) *sarama.Config {
	c := cfg()
	for _, m := range mods {
		m(c)
	}
	return c
}

// secRoundTrip produces 5 records to addr and reads them back from offset 0.
func secRoundTrip(t, addr string, obs h.Obs, mods ...secConf) {
	want := h.Vals(5, "sec-")
	p, err := sarama.NewSyncProducer([]string{addr}, secCfg(mods...))
	h.Must(err, "producer")
	var msgs []*sarama.ProducerMessage
	for i, v := range want {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k-%d", i)), Value: sarama.StringEncoder(v)})
	}
	h.Must(p.SendMessages(msgs), "produce")
	p.Close()
	obs["produced_offsets"] = fmt.Sprintf("%d..%d", msgs[0].Offset, msgs[len(msgs)-1].Offset)
	cons, err := sarama.NewConsumer([]string{addr}, secCfg(mods...))
	h.Must(err, "consumer")
	defer cons.Close()
	pc, err := cons.ConsumePartition(t, 0, sarama.OffsetOldest)
	h.Must(err, "consume partition")
	defer pc.Close()
	var got []*sarama.ConsumerMessage
	timeout := time.After(10 * time.Second)
loop:
	for len(got) < 5 {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case e := <-pc.Errors():
			h.Check(false, "consume error: %v", e)
		case <-timeout:
			break loop
		}
	}
	obs["count"] = len(got)
	checkExact(got, want, 0)
}

var lastMessage string

// probe opens a fresh client (bootstrap + metadata) with these settings, bounded to ~5 s: ""
// when it works, else Kafka's error name (sarama's KError) or the client's own words.
func probe(addr string, mods ...secConf) string {
	c := secCfg(mods...)
	c.Net.DialTimeout, c.Net.ReadTimeout, c.Net.WriteTimeout = 3*time.Second, 4*time.Second, 4*time.Second
	c.Metadata.Retry.Max = 0
	done := make(chan error, 1)
	go func() {
		cl, err := sarama.NewClient([]string{addr}, c)
		if err == nil {
			cl.Close()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(6 * time.Second):
		err = errors.New("no answer within 6 s")
	}
	if err == nil {
		return ""
	}
	fmt.Fprintf(os.Stderr, "[sec] probe of %s: %v\n", addr, err)
	lastMessage = err.Error()
	var ke sarama.KError
	if errors.As(err, &ke) {
		return h.ErrName(int16(ke))
	}
	msg := err.Error()
	// sarama's "run out of available brokers" error carries the broker's error only as text.
	for code := range h.KafkaErrors {
		if e := sarama.KError(code).Error(); code > 0 && (strings.Contains(msg, e+":") || strings.HasSuffix(msg, e)) {
			return h.ErrName(code)
		}
	}
	if i := strings.LastIndex(msg, "remote error: "); i >= 0 {
		return msg[i:]
	}
	return "client error: " + msg
}

func probeUntil(ok bool, sec int, addr string, mods ...secConf) string {
	end := time.Now().Add(time.Duration(sec) * time.Second)
	for {
		r := probe(addr, mods...)
		if (r == "") == ok || time.Now().After(end) {
			return r
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func scramType(mech string) sarama.ScramMechanismType {
	if mech == "SCRAM-SHA-256" {
		return sarama.SCRAM_MECHANISM_SHA_256
	}
	return sarama.SCRAM_MECHANISM_SHA_512
}

func describeSCRAM(a sarama.ClusterAdmin, user string) string {
	rs, err := a.DescribeUserScramCredentials([]string{user})
	if err != nil {
		return errName(err)
	}
	for _, r := range rs {
		if r.User != user {
			continue
		}
		if r.ErrorCode != sarama.ErrNoError {
			return h.ErrName(int16(r.ErrorCode))
		}
		var parts []string
		for _, ci := range r.CredentialInfos {
			parts = append(parts, fmt.Sprintf("%s:%d", ci.Mechanism, ci.Iterations))
		}
		return strings.Join(parts, ",")
	}
	return "user not in the answer"
}

func upsertSCRAM(a sarama.ClusterAdmin, user, mech, pass string) string {
	salt := make([]byte, 24)
	_, err := rand.Read(salt)
	h.Must(err, "salt")
	rs, err := a.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{
		{Name: user, Mechanism: scramType(mech), Iterations: 8192, Salt: salt, Password: []byte(pass)}})
	h.Must(err, "AlterUserScramCredentials upsert")
	for _, r := range rs {
		h.Check(r.ErrorCode == sarama.ErrNoError, "AlterUserScramCredentials upsert %s: %s", r.User, h.ErrName(int16(r.ErrorCode)))
	}
	want, shown := scramType(mech).String()+":8192", ""
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if shown = describeSCRAM(a, user); shown == want {
			break
		}
	}
	return shown
}

func deleteSCRAM(a sarama.ClusterAdmin, user, mech string) {
	rs, err := a.DeleteUserScramCredentials([]sarama.AlterUserScramCredentialsDelete{{Name: user, Mechanism: scramType(mech)}})
	h.Must(err, "AlterUserScramCredentials delete")
	for _, r := range rs {
		h.Check(r.ErrorCode == sarama.ErrNoError, "AlterUserScramCredentials delete %s: %s", r.User, h.ErrName(int16(r.ErrorCode)))
	}
}

func brokerWords() string {
	if i := strings.LastIndex(lastMessage, "SASL Authentication failed: "); i >= 0 {
		return lastMessage[i+len("SASL Authentication failed: "):]
	}
	return lastMessage
}

func init() {
	// sarama's own log (connection and SASL steps) goes to the cell's log during the sec-* scenarios.
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "sec-") {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
}

func secTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	secRoundTrip(t, s.SSL, obs, tlsConf(s, false))
}

func secMTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	secRoundTrip(t, s.MTLS, obs, tlsConf(s, true))
	obs["ok"] = true
	r := probe(s.MTLS, tlsConf(s, false))
	obs["no_cert_error"] = r
	h.Check(r != "", "a client without a certificate was served on the MTLS listener (ssl.client.auth=required)")
}

func secPlain(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	pw := s.PlainUsers["alice"]
	secRoundTrip(t, s.SaslPlaintext, obs, saslConf("PLAIN", "alice", pw))
	r := probe(s.SaslPlaintext, saslConf("PLAIN", "alice", "wrong-"+pw))
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
		defer a.Close()
		want := scramType(mech).String() + ":8192"
		obs["described"] = upsertSCRAM(a, user, mech, pw)
		h.Check(obs["described"] == want, "DescribeUserScramCredentials after the upsert: %v, expected %s", obs["described"], want)
		r := probeUntil(true, 10, s.SaslPlaintext, saslConf(mech, user, pw))
		h.Check(r == "", "the new %s credential was not accepted within 10 s: %s", mech, r)
		secRoundTrip(t, s.SaslPlaintext, obs, saslConf(mech, user, pw))
		r = probe(s.SaslPlaintext, saslConf(mech, user, "wrong-"+pw))
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
		r = probeUntil(false, 10, s.SaslPlaintext, saslConf(mech, user, pw))
		obs["after_delete_error"] = r
		h.Check(r == "SASL_AUTHENTICATION_FAILED", "the deleted credential's password: %q, expected SASL_AUTHENTICATION_FAILED", r)
	}
}

func secSaslSSL(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	user, pw := "u-"+t, "pw-"+t
	a := admin()
	defer a.Close()
	shown := upsertSCRAM(a, user, "SCRAM-SHA-512", pw)
	h.Check(shown == "SCRAM-SHA-512:8192", "DescribeUserScramCredentials after the upsert: %s", shown)
	mods := []secConf{tlsConf(s, false), saslConf("SCRAM-SHA-512", user, pw)}
	r := probeUntil(true, 10, s.SaslSSL, mods...)
	h.Check(r == "", "SCRAM-SHA-512 over SASL_SSL not accepted within 10 s: %s", r)
	secRoundTrip(t, s.SaslSSL, obs, mods...)
	deleteSCRAM(a, user, "SCRAM-SHA-512")
}

func secPlaintextToTLS(b, t string, obs h.Obs) {
	s := h.Sec()
	r := probe(s.SSL)
	obs["plaintext_to_ssl"] = r
	h.Check(r != "", "a PLAINTEXT client was served by the SSL listener")
	r = probe(s.Plaintext, saslConf("PLAIN", "alice", s.PlainUsers["alice"]))
	obs["sasl_to_plaintext"] = r
	h.Check(r != "", "a SASL client was served by the PLAINTEXT listener")
}

// ---------------------------------------------------------------- sec-oauth

// staticToken is a sarama.AccessTokenProvider handing out one pre-minted JWT as is.
type staticToken string

func (t staticToken) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: string(t)}, nil
}

// oauthConf is SASL/OAUTHBEARER with the token file of this case (COMPAT_SECURITY oauth_tokens).
func oauthConf(s h.Security, tokenCase string) secConf {
	path, ok := s.OAuthTokens[tokenCase]
	h.Check(ok, "COMPAT_SECURITY oauth_tokens has no %s", tokenCase)
	tok, err := os.ReadFile(path)
	h.Must(err, "read the token file")
	return func(c *sarama.Config) {
		c.Net.SASL.Enable = true
		c.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		c.Net.SASL.TokenProvider = staticToken(strings.TrimSpace(string(tok)))
	}
}

func secOAuth(b, t string, obs h.Obs) {
	s := h.Sec()
	h.Check(s.OAuth != "", "COMPAT_SECURITY has no oauth listener")
	create(t, 1, nil)
	a := admin()
	defer a.Close()
	// ACLs on the topic for the token's principal only: the round trip also shows it is User:alice.
	acl := func(op sarama.AclOperation) *sarama.Acl {
		return &sarama.Acl{Principal: s.OAuthPrincipal, Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow}
	}
	h.Must(a.CreateACLs([]*sarama.ResourceAcls{
		{Resource: sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: t, ResourcePatternType: sarama.AclPatternLiteral},
			Acls: []*sarama.Acl{acl(sarama.AclOperationWrite), acl(sarama.AclOperationRead)}},
	}), "CreateAcls")
	obs["described"] = describeTopicACLs(a, t, 2)
	r := probeUntil(true, 10, s.OAuth, oauthConf(s, "valid"))
	h.Check(r == "", "the valid token was not accepted: %q %s", r, lastMessage)
	secRoundTrip(t, s.OAuth, obs, oauthConf(s, "valid"))
	bad := map[string]string{}
	for _, c := range []string{"expired", "wrong-audience", "bad-signature", "unsigned"} {
		lastMessage = ""
		r := probe(s.OAuth, oauthConf(s, c))
		obs[c+"_error"] = r
		obs[c+"_message"] = lastMessage
		if r != "SASL_AUTHENTICATION_FAILED" {
			bad[c] = r + " " + lastMessage
		}
	}
	h.Check(len(bad) == 0, "tokens not refused with SASL_AUTHENTICATION_FAILED: %v", bad)
}

// ---------------------------------------------------------------- sec-acl

// aclStr renders "TOPIC:LITERAL:<topic> User:alice@* READ ALLOW" (the cell's topic t as <topic>,
// so the targets' observables compare).
func aclStr(t string, r sarama.Resource, a sarama.Acl) string {
	name := r.ResourceName
	if name == t {
		name = "<topic>"
	}
	return fmt.Sprintf("%s:%s:%s %s@%s %s %s", strings.ToUpper(r.ResourceType.String()), strings.ToUpper(r.ResourcePatternType.String()),
		name, a.Principal, a.Host, strings.ToUpper(a.Operation.String()), strings.ToUpper(a.PermissionType.String()))
}

// describeTopicACLs is DescribeAcls of the topic's LITERAL pattern, sorted; retried (bounded)
// until it has `want` bindings.
func describeTopicACLs(a sarama.ClusterAdmin, t string, want int) []string {
	f := sarama.AclFilter{ResourceType: sarama.AclResourceTopic, ResourceName: &t, ResourcePatternTypeFilter: sarama.AclPatternLiteral,
		Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny}
	var out []string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rs, err := a.ListAcls(f)
		h.Must(err, "DescribeAcls")
		out = []string{}
		for _, r := range rs {
			for _, acl := range r.Acls {
				out = append(out, aclStr(t, r.Resource, *acl))
			}
		}
		sort.Strings(out)
		if len(out) == want || time.Now().After(end) {
			return out
		}
	}
}

// produceAs sends one record with small timeouts: "" when acknowledged, else Kafka's error name.
func produceAs(t, value string, mods ...secConf) string {
	c := secCfg(mods...)
	c.Metadata.Retry.Max, c.Producer.Retry.Max = 1, 0
	c.Producer.Timeout = 5 * time.Second
	c.Net.ReadTimeout = 6 * time.Second
	s := h.Sec()
	p, err := sarama.NewSyncProducer([]string{s.SaslPlaintext}, c)
	if err == nil {
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(value)})
		p.Close()
	}
	if err == nil {
		return ""
	}
	fmt.Fprintf(os.Stderr, "[sec-acl] produce: %v\n", err)
	return errName(err)
}

// aclAdminConsumeError is what a sarama consumer group of a user with no ACL reports against
// Kafka 4.4: Consume() refreshes the topic's metadata before it looks for the coordinator and
// returns its TOPIC_AUTHORIZATION_FAILED.
const aclAdminConsumeError = "TOPIC_AUTHORIZATION_FAILED"

type nopHandler struct{ n *int }

func (nopHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (nopHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (x nopHandler) ConsumeClaim(_ sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() {
		*x.n++
	}
	return nil
}

func secACL(b, t string, obs h.Obs) {
	s := h.Sec()
	create(t, 1, nil)
	g := t + "-g"
	a := admin()
	defer a.Close()
	alice := func(op sarama.AclOperation) *sarama.Acl {
		return &sarama.Acl{Principal: "User:alice", Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow}
	}
	h.Must(a.CreateACLs([]*sarama.ResourceAcls{
		{Resource: sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: t, ResourcePatternType: sarama.AclPatternLiteral},
			Acls: []*sarama.Acl{alice(sarama.AclOperationWrite), alice(sarama.AclOperationRead)}},
		{Resource: sarama.Resource{ResourceType: sarama.AclResourceGroup, ResourceName: g, ResourcePatternType: sarama.AclPatternLiteral},
			Acls: []*sarama.Acl{alice(sarama.AclOperationRead)}},
	}), "CreateAcls")
	want := []string{"TOPIC:LITERAL:<topic> User:alice@* READ ALLOW", "TOPIC:LITERAL:<topic> User:alice@* WRITE ALLOW"}
	described := describeTopicACLs(a, t, 2)
	obs["described"] = described
	h.Check(h.Equal(described, want), "DescribeAcls of the topic: %v, expected %v", described, want)

	aliceConf := saslConf("PLAIN", "alice", s.PlainUsers["alice"])
	adminConf := saslConf("PLAIN", "admin", s.PlainUsers["admin"])
	p, err := sarama.NewSyncProducer([]string{s.SaslPlaintext}, secCfg(aliceConf))
	h.Must(err, "alice's producer")
	var msgs []*sarama.ProducerMessage
	for i, v := range h.Vals(5, "acl-") {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: t, Partition: 0, Key: sarama.StringEncoder(fmt.Sprintf("k-%d", i)), Value: sarama.StringEncoder(v)})
	}
	h.Must(p.SendMessages(msgs), "alice's produce")
	p.Close()
	obs["alice_produced_offsets"] = fmt.Sprintf("%d..%d", msgs[0].Offset, msgs[len(msgs)-1].Offset)
	seedSave := seed
	seed = s.SaslPlaintext // join() dials the package seed
	m := join(t, g, func(c *sarama.Config) { aliceConf(c) })
	ms := m.waitMsgs(5, 15)
	got := []string{}
	for _, x := range ms {
		got = append(got, fmt.Sprintf("%d:%s", x.Offset, x.Value))
	}
	m.mu.Lock()
	if m.sess != nil && len(ms) > 0 {
		m.sess.MarkMessage(ms[len(ms)-1], "")
		m.sess.Commit()
	}
	m.mu.Unlock()
	m.leave()
	seed = seedSave
	obs["alice_consumed"] = got
	h.Check(h.Equal(got, []string{"0:acl-0", "1:acl-1", "2:acl-2", "3:acl-3", "4:acl-4"}), "alice consumed %v", got)

	r := produceAs(t, "refused", adminConf)
	obs["admin_produce_error"] = r
	h.Check(r == "TOPIC_AUTHORIZATION_FAILED", "admin's produce: %q, expected TOPIC_AUTHORIZATION_FAILED", r)
	c := secCfg(adminConf)
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Metadata.Retry.Max = 1
	cg, err := sarama.NewConsumerGroup([]string{s.SaslPlaintext}, g, c)
	h.Must(err, "admin's consumer group")
	n, consumeErr := 0, ""
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	errs := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{t}, nopHandler{&n}); err != nil {
				errs <- err
				return
			}
		}
	}()
	select {
	case err := <-errs:
		fmt.Fprintf(os.Stderr, "[sec-acl] consume as admin: %v\n", err)
		consumeErr = errName(err)
	case err := <-cg.Errors():
		fmt.Fprintf(os.Stderr, "[sec-acl] consume as admin (Errors): %v\n", err)
		consumeErr = errName(err)
	case <-cctx.Done():
	}
	cancel()
	cg.Close()
	obs["admin_consumed"] = n
	obs["admin_consume_error"] = consumeErr
	h.Check(consumeErr == aclAdminConsumeError, "admin's group consume: %q, expected %s", consumeErr, aclAdminConsumeError)

	user, host := "User:alice", "*"
	deleted, err := a.DeleteACL(sarama.AclFilter{ResourceType: sarama.AclResourceTopic, ResourceName: &t, ResourcePatternTypeFilter: sarama.AclPatternLiteral,
		Principal: &user, Host: &host, Operation: sarama.AclOperationWrite, PermissionType: sarama.AclPermissionAllow}, false)
	h.Must(err, "DeleteAcls")
	del := []string{}
	for _, d := range deleted {
		del = append(del, aclStr(t, d.Resource, d.Acl))
	}
	obs["deleted"] = del
	h.Check(h.Equal(del, want[1:]), "DeleteAcls of alice's WRITE removed %v", del)
	left := describeTopicACLs(a, t, 1)
	obs["described_after_delete"] = left
	h.Check(h.Equal(left, want[:1]), "DescribeAcls after the delete: %v", left)
	r = produceAs(t, "after-delete", aliceConf)
	obs["alice_produce_after_delete"] = r
	h.Check(r == "TOPIC_AUTHORIZATION_FAILED", "alice's produce without WRITE: %q, expected TOPIC_AUTHORIZATION_FAILED", r)
}
