package pipeline

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
)

// parseNATSConfig renders c and has the server's own parser read it.
func parseNATSConfig(t testing.TB, c NATSConfig) *server.Options {
	t.Helper()
	b, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(p)
	if err != nil {
		t.Fatalf("the server cannot read the rendered configuration: %v\n%s", err, b)
	}
	return opts
}

// TestNATSConfigRender renders configurations with password users (a
// literal and one read from the environment), nkey users and TLS, and
// checks what the server's parser makes of them.
func TestNATSConfigRender(t *testing.T) {
	topo, err := NewTopology("conf")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WSGRPO_TEST_SAMPLER_PASSWORD", "from-env")
	users, err := topo.Users(func(p string) (string, string) {
		if p == StageSampler {
			return "$WSGRPO_TEST_SAMPLER_PASSWORD", ""
		}
		return "literal " + p, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := natsproc.NewCerts(t)
	opts := parseNATSConfig(t, NATSConfig{
		Listen: "127.0.0.1:14222", HTTPPort: 18222, StoreDir: "/data",
		TLS:   &NATSTLS{Cert: certs.ServerCert, Key: certs.ServerKey, CA: certs.CA, Verify: true},
		Users: users,
	})
	if opts.Port != 14222 || opts.HTTPPort != 18222 || opts.MaxPayload != DefaultMaxPayload || !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("options %+v", opts)
	}
	if opts.TLSConfig == nil || opts.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Error("TLS with client verification not configured")
	}
	if len(opts.Users) != len(Principals()) {
		t.Fatalf("%d users, want %d", len(opts.Users), len(Principals()))
	}
	for _, u := range opts.Users {
		want, err := topo.Permissions(u.Username)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(u.Permissions.Publish.Allow, want.Publish) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe) {
			t.Errorf("user %s: publish %q subscribe %q, want %q %q", u.Username,
				u.Permissions.Publish.Allow, u.Permissions.Subscribe.Allow, want.Publish, want.Subscribe)
		}
		wantPW := "literal " + u.Username
		if u.Username == StageSampler {
			wantPW = "from-env"
		}
		if u.Password != wantPW {
			t.Errorf("user %s password %q, want %q", u.Username, u.Password, wantPW)
		}
	}

	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	perm, err := topo.Permissions(StageLearner)
	if err != nil {
		t.Fatal(err)
	}
	opts = parseNATSConfig(t, NATSConfig{StoreDir: "/data", Users: []NATSUser{{Name: StageLearner, NKey: pub, Permissions: perm}}})
	if len(opts.Nkeys) != 1 || opts.Nkeys[0].Nkey != pub || !slices.Equal(opts.Nkeys[0].Permissions.Publish.Allow, perm.Publish) {
		t.Errorf("nkey users %+v", opts.Nkeys)
	}
	if opts.Port != 4222 || opts.Host != "0.0.0.0" {
		t.Errorf("default listen %s:%d", opts.Host, opts.Port)
	}
}

// TestNATSConfigRefused checks what Render refuses.
func TestNATSConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    NATSConfig
	}{
		{"no store dir", NATSConfig{}},
		{"tls without key", NATSConfig{StoreDir: "/d", TLS: &NATSTLS{Cert: "c"}}},
		{"verify without CA", NATSConfig{StoreDir: "/d", TLS: &NATSTLS{Cert: "c", Key: "k", Verify: true}}},
		{"user without credentials", NATSConfig{StoreDir: "/d", Users: []NATSUser{{Name: "sampler"}}}},
		{"password and nkey", NATSConfig{StoreDir: "/d", Users: []NATSUser{{Name: "sampler", Password: "p", NKey: "UABC"}}}},
		{"not a user nkey", NATSConfig{StoreDir: "/d", Users: []NATSUser{{Name: "sampler", NKey: "SUABC"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Render(); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Render: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// TestPermissionsLayout checks the permissions that follow from a run's
// layout and refuses what no layout has.
func TestPermissionsLayout(t *testing.T) {
	top, _ := NewTopology("perm")
	nolab := top
	nolab.NoLabeler = true
	has := func(p Permissions, subject string) bool { return slices.Contains(p.Publish, subject) }
	for _, tc := range []struct {
		name      string
		top       Topology
		principal string
		allowed   []string
		refused   []string
		err       error
	}{
		{"sampler", top, StageSampler,
			[]string{"wsgrpo.perm.rollout", "wsgrpo.perm.dlq.sampler", "$JS.API.CONSUMER.MSG.NEXT.WSGRPO_perm_PROMPT.sampler"},
			[]string{"wsgrpo.perm.verified", "$O.wsgrpo_perm_weights.>", "$KV.wsgrpo_perm_state.policy.version", "$JS.API.STREAM.UPDATE.WSGRPO_perm_PROMPT"}, nil},
		{"learner", top, StageLearner,
			[]string{"$O.wsgrpo_perm_weights.>", "$KV.wsgrpo_perm_state.policy.version", "$KV.wsgrpo_perm_state.lock.learner", "$JS.API.STREAM.UPDATE.WSGRPO_perm_PROMPT"},
			[]string{"wsgrpo.perm.labeled", "$JS.API.STREAM.DELETE.WSGRPO_perm_PROMPT"}, nil},
		{"logger without a labeler", nolab, StageLogger,
			[]string{"$JS.API.CONSUMER.MSG.NEXT.WSGRPO_perm_VERIFIED.logger"},
			[]string{"$JS.API.CONSUMER.MSG.NEXT.WSGRPO_perm_LABELED.logger"}, nil},
		{"source", top, PrincipalSource,
			[]string{"wsgrpo.perm.prompt", "$KV.wsgrpo_perm_state.source.step"},
			[]string{"wsgrpo.perm.rollout", "$KV.wsgrpo_perm_state.learner.step"}, nil},
		{"labeler without a labeler", nolab, StageLabeler, nil, nil, ErrNoLabeler},
		{"unknown", top, "intruder", nil, nil, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.top.Permissions(tc.principal)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Permissions: %v, want %v", err, tc.err)
			}
			for _, s := range tc.allowed {
				if !has(p, s) {
					t.Errorf("%s may not publish to %s", tc.principal, s)
				}
			}
			for _, s := range tc.refused {
				if has(p, s) {
					t.Errorf("%s may publish to %s", tc.principal, s)
				}
			}
			for _, s := range p.Subscribe {
				if strings.HasPrefix(s, "_INBOX") && s != InboxPrefix(tc.principal)+".>" {
					t.Errorf("%s may read the inbox %s", tc.principal, s)
				}
			}
		})
	}
	users, err := nolab.Users(func(string) (string, string) { return "pw", "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name == StageLabeler || u.Name == StageLearner {
			t.Errorf("a run without a labeler has user %s", u.Name)
		}
	}
}

// TestMergeUsers unites the users of two runs: one user per principal,
// with the first run's credentials and both runs' permissions.
func TestMergeUsers(t *testing.T) {
	var lists [][]NATSUser
	for _, run := range []string{"a", "b"} {
		top, _ := NewTopology(run)
		users, err := top.Users(func(p string) (string, string) { return "pw-" + run, "" })
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, users)
	}
	merged := MergeUsers(lists...)
	if len(merged) != len(Principals()) {
		t.Fatalf("%d users, want %d", len(merged), len(Principals()))
	}
	for _, u := range merged {
		if u.Password != "pw-a" {
			t.Errorf("user %s password %q, want the first run's", u.Name, u.Password)
		}
		if u.Name != StageSampler {
			continue
		}
		for _, s := range []string{"wsgrpo.a.rollout", "wsgrpo.b.rollout"} {
			if !slices.Contains(u.Permissions.Publish, s) {
				t.Errorf("merged sampler may not publish to %s", s)
			}
		}
		// The subscriptions (the stage's inbox) are the same for both
		// runs: merged, they appear once.
		if n := len(u.Permissions.Subscribe); n != len(lists[0][0].Permissions.Subscribe) {
			t.Errorf("merged sampler subscribes to %q", u.Permissions.Subscribe)
		}
	}
	if slices.Contains(lists[0][0].Permissions.Publish, "wsgrpo.b.rollout") {
		t.Error("MergeUsers changed its input")
	}
}
