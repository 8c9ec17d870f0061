package pipeline

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/schemas"
	"github.com/wsgrpo/wsgrpo/stages/passthrough"
	"github.com/wsgrpo/wsgrpo/stages/stage"
)

// secureServer is a nats-server process with TLS (client certificates
// required) and one password user per principal of a run, configured by
// NATSConfig from Topology.Users.
type secureServer struct {
	port      int
	certs     *natsproc.Certs
	topo      Topology
	passwords map[string]string
	proc      *natsproc.Server
}

// startSecureServer starts the server of run; the passwords reach it
// through environment variables the configuration file names.
func startSecureServer(t testing.TB, run string) *secureServer {
	t.Helper()
	topo, err := NewTopology(run)
	if err != nil {
		t.Fatal(err)
	}
	s := &secureServer{port: natsproc.FreePort(t), certs: natsproc.NewCerts(t), topo: topo, passwords: map[string]string{}}
	var env []string
	users, err := topo.Users(func(p string) (string, string) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		s.passwords[p] = hex.EncodeToString(b[:])
		v := "WSGRPO_TEST_NATS_" + strings.ToUpper(p) + "_PASSWORD"
		env = append(env, v+"="+s.passwords[p])
		return "$" + v, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	conf := NATSConfig{
		Comment:  "test server",
		Listen:   fmt.Sprintf("127.0.0.1:%d", s.port),
		StoreDir: t.TempDir(),
		TLS:      &NATSTLS{Cert: s.certs.ServerCert, Key: s.certs.ServerKey, CA: s.certs.CA, Verify: true},
		Users:    users,
	}
	b, err := conf.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.proc = natsproc.Start(t, path, s.port, env...)
	return s
}

func (s *secureServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// refusals records the permissions violations the server reports on one
// connection.
type refusals struct {
	mu   sync.Mutex
	errs []error
}

func (r *refusals) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// all returns what was recorded so far.
func (r *refusals) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// waitFor polls until a recorded refusal names subject.
func (r *refusals) waitFor(t testing.TB, subject string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, err := range r.all() {
			if strings.Contains(err.Error(), `"`+subject) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server reported no permissions violation for %s; it reported %v", subject, r.all())
}

// secureConn is one principal's connection.
type secureConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	refused *refusals
}

// connect connects as user with its password, the test CA and the client
// certificate, then opts; the connection is closed at cleanup.
func (s *secureServer) connect(t testing.TB, user string, opts ...nats.Option) (*secureConn, error) {
	t.Helper()
	c := &secureConn{refused: &refusals{}}
	all := []nats.Option{
		nats.UserInfo(user, s.passwords[user]),
		nats.RootCAs(s.certs.CA),
		nats.ClientCert(s.certs.ClientCert, s.certs.ClientKey),
		nats.CustomInboxPrefix(InboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				c.refused.add(err)
			}
		}),
	}
	nc, err := Connect(s.url(), append(all, opts...)...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = NewJetStream(nc); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// mustConnect is connect that fails the test on an error.
func (s *secureServer) mustConnect(t testing.TB, user string) *secureConn {
	t.Helper()
	c, err := s.connect(t, user)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	return c
}

// TestSecuredServer runs a run's stages against a nats-server process
// with TLS and the per-principal users of Topology.Users, each stage on a
// connection of its own user: everything a stage does is permitted, what
// belongs to another principal (the sampler publishing policy weights,
// among others) is refused by the server, and wrong credentials or a
// connection without TLS are turned away.
func TestSecuredServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server process")
	}
	s := startSecureServer(t, "sec")
	topo := s.topo
	conns := map[string]*secureConn{}
	for _, p := range Principals() {
		conns[p] = s.mustConnect(t, p)
	}
	blob := []byte("policy weights v1")
	const groups, size = 3, 2

	t.Run("stages work", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		// Any stage may join first: the sampler creates the run's streams,
		// the others find them as configured.
		for _, p := range []string{StageSampler, StageVerifier, StageLabeler, StageLearner, StageLogger, PrincipalSource} {
			if err := topo.Ensure(ctx, conns[p].js); err != nil {
				t.Fatalf("%s: Ensure: %v", p, WithRefusal(conns[p].nc, err))
			}
		}
		// The learner may change the run's configuration (and put it back).
		for _, age := range []time.Duration{24 * time.Hour, 0} {
			changed := topo
			changed.MaxAge = age
			if err := changed.Ensure(ctx, conns[StageLearner].js); err != nil {
				t.Fatalf("learner: Ensure with max age %s: %v", age, WithRefusal(conns[StageLearner].nc, err))
			}
		}
		learnerJS := conns[StageLearner].js
		lock, err := AcquireLock(ctx, learnerJS, topo, StageLearner, "test", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := OpenWeightStore(ctx, learnerJS, topo)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Put(ctx, 1, blob); err != nil {
			t.Fatal(WithRefusal(conns[StageLearner].nc, err))
		}
		learnerState, err := OpenRunState(ctx, learnerJS, topo)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := learnerState.Put(ctx, StateKeyLearnerStep, []byte("0")); err != nil {
			t.Fatal(err)
		}

		// The prompt source publishes, records its step and follows the
		// learner's.
		srcJS := conns[PrincipalSource].js
		srcState, err := OpenRunState(ctx, srcJS, topo)
		if err != nil {
			t.Fatal(err)
		}
		learned, err := srcState.Watch(ctx, StateKeyLearnerStep)
		if err != nil {
			t.Fatal(err)
		}
		if v := <-learned; string(v) != "0" {
			t.Fatalf("source sees learner step %q, want 0", v)
		}
		for g := range groups {
			rec := schemas.NewPromptBatch(memory.DefaultAllocator, promptRows(topo.Run, g, 1))
			_, err := PublishBatch(ctx, srcJS, mustHop(t, topo, schemas.KindPrompt).Subject, rec, fmt.Sprintf("sec-%d", g), 0)
			rec.Release()
			if err != nil {
				t.Fatalf("source publishes prompts: %v", WithRefusal(conns[PrincipalSource].nc, err))
			}
		}
		if _, err := srcState.Put(ctx, StateKeySourceStep, []byte("1")); err != nil {
			t.Fatal(err)
		}

		// The sampler follows and reads the policy.
		sws, err := OpenWeightStore(ctx, conns[StageSampler].js, topo)
		if err != nil {
			t.Fatal(err)
		}
		versions, err := sws.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v := <-versions; v != 1 {
			t.Fatalf("sampler sees version %d, want 1", v)
		}
		if got, err := sws.Get(ctx, 1); err != nil || string(got) != string(blob) {
			t.Fatalf("sampler reads weights %q, %v", got, err)
		}

		// The labeler keeps groups still arriving.
		gs, err := OpenGroupStore(ctx, conns[StageLabeler].js, topo, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rows := verifiedGroup(topo.Run, 0, size)
		if got, err := gs.Add(ctx, rows[0].GroupID, rows); err != nil || len(got) != size {
			t.Fatalf("labeler group store: %d rows, %v", len(got), err)
		}

		// The hops, each stage on its own connection, the learner and
		// the logger both reading every labeled row.
		sinks := map[string]*collector{StageLearner: newCollector(), StageLogger: newCollector()}
		var wg sync.WaitGroup
		rctx, stop := context.WithCancel(ctx)
		defer func() { stop(); wg.Wait() }()
		for _, p := range []string{StageSampler, StageVerifier, StageLabeler, StageLearner, StageLogger} {
			rc, err := topo.RunnerConfig(p)
			if err != nil {
				t.Fatal(err)
			}
			rc.Logger = slog.New(slog.DiscardHandler)
			var proc stage.Processor
			if rc.OutputKind != "" {
				pt, err := passthrough.New(rc.InputKind, rc.OutputKind, nil)
				if err != nil {
					t.Fatal(err)
				}
				proc = pt
			} else {
				proc = sinks[p]
			}
			g := NewGroup(conns[p].js, rc.Logger)
			if err := g.Add(rc, proc); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				if err := g.Run(rctx); err != nil && rctx.Err() == nil {
					t.Errorf("%s: %v", p, WithRefusal(conns[p].nc, err))
				}
			})
		}
		for name, sink := range sinks {
			waitFor(t, time.Minute, "rows at the "+name, func() bool { return sink.distinct() >= groups })
		}
		stop()
		wg.Wait()
		if err := lock.Release(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range Principals() {
			if errs := conns[p].refused.all(); len(errs) > 0 {
				t.Errorf("%s was refused: %v", p, errs)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		weights := "$O." + topo.WeightsBucket() + "."
		for _, tc := range []struct {
			name, as, subject string
			do                func(ctx context.Context, c *secureConn) error
		}{
			{"sampler publishes weights", StageSampler, weights + "C.", func(ctx context.Context, c *secureConn) error {
				ws, err := OpenWeightStore(ctx, c.js, topo)
				if err != nil {
					return err
				}
				return ws.Put(ctx, 2, []byte("forged weights"))
			}},
			{"sampler announces a policy version", StageSampler, "$KV." + topo.StateBucket() + "." + PolicyVersionKey, func(ctx context.Context, c *secureConn) error {
				st, err := OpenRunState(ctx, c.js, topo)
				if err != nil {
					return err
				}
				_, err = st.Put(ctx, PolicyVersionKey, []byte("2"))
				return err
			}},
			{"sampler publishes labeled rows", StageSampler, mustHop(t, topo, schemas.KindLabeled).Subject, func(ctx context.Context, c *secureConn) error {
				_, err := c.js.Publish(ctx, mustHop(t, topo, schemas.KindLabeled).Subject, []byte("forged"))
				return err
			}},
			{"sampler reconfigures the weights store", StageSampler, "$JS.API.STREAM.UPDATE." + objStream(topo.WeightsBucket()), func(ctx context.Context, c *secureConn) error {
				_, err := c.js.UpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: topo.WeightsBucket(), Description: "forged"})
				return err
			}},
			{"verifier deletes a stream", StageVerifier, "$JS.API.STREAM.DELETE.", func(ctx context.Context, c *secureConn) error {
				return c.js.DeleteStream(ctx, mustHop(t, topo, schemas.KindPrompt).Stream)
			}},
			{"logger reads the sampler's input", StageLogger, "$JS.API.CONSUMER.CREATE." + mustHop(t, topo, schemas.KindPrompt).Stream, func(ctx context.Context, c *secureConn) error {
				_, err := c.js.CreateOrUpdateConsumer(ctx, mustHop(t, topo, schemas.KindPrompt).Stream, consumerConfig(StageSampler, time.Minute, 1))
				return err
			}},
			{"labeler takes the learner's lock", StageLabeler, "$KV." + topo.StateBucket() + ".lock.", func(ctx context.Context, c *secureConn) error {
				_, err := AcquireLock(ctx, c.js, topo, StageLearner, "usurper", time.Second)
				return err
			}},
			{"sampler listens to the learner's replies", StageSampler, InboxPrefix(StageLearner), func(_ context.Context, c *secureConn) error {
				_, err := c.nc.SubscribeSync(InboxPrefix(StageLearner) + ".>")
				if err == nil {
					err = c.nc.Flush()
				}
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := conns[tc.as]
				// A refused call gets no reply: it would wait for its
				// timeout, so it is cancelled once the server said no.
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- tc.do(ctx, c) }()
				c.refused.waitFor(t, tc.subject)
				cancel()
				if err := <-done; err != nil {
					if err = WithRefusal(c.nc, err); !errors.Is(err, nats.ErrPermissionViolation) {
						t.Errorf("error %v does not say the server refused", err)
					}
				}
			})
		}
	})

	t.Run("nothing forged got through", func(t *testing.T) {
		ctx := t.Context()
		ws, err := OpenWeightStore(ctx, conns[PrincipalAdmin].js, topo)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := ws.Latest(ctx); err != nil || v != 1 {
			t.Errorf("announced version %d, %v; want 1", v, err)
		}
		if _, err := ws.Get(ctx, 2); !errors.Is(err, ErrNotFound) {
			t.Errorf("forged weights v2: %v, want ErrNotFound", err)
		}
		lab, err := conns[PrincipalAdmin].js.Stream(ctx, mustHop(t, topo, schemas.KindLabeled).Stream)
		if err != nil {
			t.Fatal(err)
		}
		if n := lab.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("labeled stream holds %d messages; the forged one got in", n)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		_, err := s.connect(t, StageLearner, nats.UserInfo(StageLearner, s.passwords[StageSampler]))
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("connect with the sampler's password as the learner: %v, want an authorization violation", err)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		_, err := Connect(s.url(), nats.UserInfo(StageSampler, s.passwords[StageSampler]), nats.RootCAs(s.certs.CA))
		if err == nil {
			t.Fatal("connected without a client certificate")
		}
	})

	t.Run("unknown server certificate", func(t *testing.T) {
		_, err := Connect(s.url(), nats.UserInfo(StageSampler, s.passwords[StageSampler]),
			nats.ClientCert(s.certs.ClientCert, s.certs.ClientKey))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("connected without the CA: %v", err)
		}
	})

	t.Run("plaintext", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		info, err := r.ReadString('\n')
		if err != nil || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("server greeting %q, %v; want tls_required", info, err)
		}
		fmt.Fprintf(c, "CONNECT {\"user\":%q,\"pass\":%q,\"verbose\":false}\r\nPING\r\n", StageSampler, s.passwords[StageSampler])
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "PONG") {
				t.Fatal("the server answered a plaintext client")
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server kept the plaintext connection open")
				}
				return // closed by the server
			}
		}
	})
}
