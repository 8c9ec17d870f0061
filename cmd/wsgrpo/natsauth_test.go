package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/wsgrpo/wsgrpo/pipeline"
	"github.com/wsgrpo/wsgrpo/pipeline/pipetest/natsproc"
	"github.com/wsgrpo/wsgrpo/schemas"
)

// TestNATSAuthConfig loads nats_auth from flags, the environment and a
// file, and checks what Validate refuses, each error naming its key.
func TestNATSAuthConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("sources", func(t *testing.T) {
		t.Setenv("WSGRPO_NATS_AUTH_PASSWORD", "secret")
		yaml := writeYAML(t, "nats_auth:\n  tls_ca: "+file+"\n")
		c, err := loadWith(t, []string{"--config", yaml, "--nats-user", "sampler", "--nats-tls-cert", file, "--nats-tls-key", file})
		if err != nil {
			t.Fatal(err)
		}
		want := NATSAuthConfig{TLSCA: file, TLSCert: file, TLSKey: file, User: "sampler", Password: "secret"}
		if c.NATSAuth != want {
			t.Fatalf("nats_auth %+v, want %+v", c.NATSAuth, want)
		}
	})
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		env  string // WSGRPO_NATS_AUTH_PASSWORD
		key  string // named by the error
	}{
		{"missing CA", []string{"--nats-tls-ca", missing}, "", "nats_auth.tls_ca"},
		{"CA is a directory", []string{"--nats-tls-ca", dir}, "", "nats_auth.tls_ca"},
		{"missing client certificate", []string{"--nats-tls-cert", missing, "--nats-tls-key", file}, "", "nats_auth.tls_cert"},
		{"certificate without key", []string{"--nats-tls-cert", file}, "", "nats_auth.tls_key"},
		{"missing nkey seed", []string{"--nats-nkey", missing}, "", "nats_auth.nkey"},
		{"user without password", []string{"--nats-user", "sampler"}, "", "nats_auth.password"},
		{"password without user", nil, "secret", "nats_auth.user"},
		{"nkey and user", []string{"--nats-nkey", file, "--nats-user", "sampler"}, "secret", "nats_auth.nkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("WSGRPO_NATS_AUTH_PASSWORD", tc.env)
			}
			_, err := loadWith(t, tc.args)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tc.key)
			}
		})
	}
}

// TestNATSConfigCommandRefusals checks what nats-config refuses.
func TestNATSConfigCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"no out", []string{"--no-tls"}, ErrConfig},
		{"no TLS", []string{"--out", dir}, ErrConfig},
		{"no-tls and a certificate", []string{"--out", dir, "--no-tls", "--tls-cert", "c"}, ErrConfig},
		{"verify without CA", []string{"--out", dir, "--tls-cert", "c", "--tls-key", "k", "--tls-verify"}, ErrConfig},
		{"bad auth", []string{"--out", dir, "--no-tls", "--auth", "jwt"}, ErrConfig},
		{"bad run", []string{"--out", dir, "--no-tls", "--runs", "a.b"}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := execute(t, newRootCmd(), append([]string{"nats-config"}, tc.args...)...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := execute(t, newRootCmd(), "nats-config", "--out", dir, "--no-tls"); err != nil {
		t.Fatal(err)
	}
	if _, err := execute(t, newRootCmd(), "nats-config", "--out", dir, "--no-tls"); !errors.Is(err, ErrNATSConfigExists) {
		t.Fatalf("second run without --force: %v, want ErrNATSConfigExists", err)
	}
}

// TestSecureStage runs `wsgrpo nats-config` (nkeys, mutual TLS), starts a
// nats-server process with what it wrote, and runs stages the way
// `wsgrpo stage` does, each with its own seed: the sampler moves prompts
// on, the sampler's seed at the verifier's position is refused with an
// error that says so, and unknown keys or a client without the CA or its
// certificate are turned away.
func TestSecureStage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server process")
	}
	certs := natsproc.NewCerts(t)
	port := natsproc.FreePort(t)
	dir := t.TempDir()
	if _, err := execute(t, newRootCmd(), "nats-config", "--run", "secure", "--no-labeler", "--out", dir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--http-port", "0", "--store-dir", t.TempDir(),
		"--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey, "--tls-ca", certs.CA, "--tls-verify"); err != nil {
		t.Fatal(err)
	}
	natsproc.Start(t, filepath.Join(dir, natsConfFile), port)
	as := func(user string) Config {
		cfg := DefaultConfig()
		cfg.Run, cfg.NoLabeler, cfg.Dir = "secure", true, t.TempDir()
		cfg.NATS = fmt.Sprintf("nats://127.0.0.1:%d", port)
		cfg.NATSAuth = NATSAuthConfig{TLSCA: certs.CA, TLSCert: certs.ClientCert, TLSKey: certs.ClientKey, NKey: filepath.Join(dir, user+".nk")}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	log := slog.New(slog.DiscardHandler)
	ctx := testCtx(t)

	// The admin publishes prompts; a sampler process (pass-through) moves
	// them to the rollout stream.
	admin, err := openSession(ctx, as(pipeline.PrincipalAdmin), log, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.close()
	prompt, _ := admin.topo.Hop(schemas.KindPrompt)
	rollout, _ := admin.topo.Hop(schemas.KindRollout)
	const batches = 3
	for b := range batches {
		rec := schemas.NewPromptBatch(memory.DefaultAllocator, []schemas.Prompt{{RunID: "secure", Step: 1, PromptID: fmt.Sprint("p", b), Task: "wiring", Prompt: "1+1=", ReferenceAnswer: "2"}})
		_, err := pipeline.PublishBatch(ctx, admin.js, prompt.Subject, rec, fmt.Sprint("secure-", b), 0)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("stage with its own key", func(t *testing.T) {
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runStage(sctx, as(pipeline.StageSampler), log, "passthrough", pipeline.StageSampler) }()
		deadline := time.Now().Add(time.Minute)
		for {
			s, err := admin.js.Stream(ctx, rollout.Stream)
			if err == nil && s.CachedInfo().State.Msgs >= batches {
				break
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("the sampler moved no prompts (%v): %v", err, <-done)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("sampler stage: %v", err)
		}
	})
	t.Run("another stage's position", func(t *testing.T) {
		// As a command runs it: no deadline, so a request waits for the
		// client's own timeout, after which the refusal is reported.
		err := runStage(t.Context(), as(pipeline.StageSampler), log, "passthrough", pipeline.StageVerifier)
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "verifier") {
			t.Fatalf("the sampler's key at the verifier position: %v, want a permissions violation on the verifier's inbox or consumer", err)
		}
	})
	t.Run("sampler publishes weights", func(t *testing.T) {
		s, err := openStageSession(ctx, as(pipeline.StageSampler), log, pipeline.StageSampler)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		ws, err := pipeline.OpenWeightStore(ctx, s.js, s.topo)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err = pipeline.WithRefusal(s.nc, ws.Put(pctx, 1, []byte("forged")))
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "$O.wsgrpo_secure_weights") {
			t.Fatalf("sampler putting weights: %v, want a permissions violation on the weights bucket", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		cfg := as(pipeline.StageSampler)
		cfg.NATSAuth.NKey = filepath.Join(t.TempDir(), "stranger.nk")
		if err := os.WriteFile(cfg.NATSAuth.NKey, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := openStageSession(ctx, cfg, log, pipeline.StageSampler); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("unknown nkey: %v, want an authorization violation", err)
		}
	})
	for _, tc := range []struct {
		name   string
		change func(*NATSAuthConfig)
	}{
		{"without the CA", func(a *NATSAuthConfig) { a.TLSCA = "" }},
		{"without a client certificate", func(a *NATSAuthConfig) { a.TLSCert, a.TLSKey = "", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := as(pipeline.StageSampler)
			tc.change(&cfg.NATSAuth)
			if s, err := openStageSession(ctx, cfg, log, pipeline.StageSampler); err == nil {
				s.close()
				t.Fatal("connected")
			}
		})
	}
}

var updateDeploy = flag.Bool("update-deploy", false, "rewrite deploy/nats/secure.conf from `wsgrpo nats-config`")

// deployNATSArgs generate deploy/nats/secure.conf: the compose run, the
// passwords from the server's environment, TLS files mounted at
// /etc/nats/tls.
var deployNATSArgs = []string{"nats-config", "--run", "compose", "--auth", "password",
	"--tls-cert", "/etc/nats/tls/server-cert.pem", "--tls-key", "/etc/nats/tls/server-key.pem", "--tls-ca", "/etc/nats/tls/ca.pem"}

// TestDeployNATSConfig checks that deploy/nats/secure.conf is what
// `wsgrpo nats-config` writes today, so that the shipped permissions
// never drift from the topology; -update-deploy rewrites it.
func TestDeployNATSConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := execute(t, newRootCmd(), append(deployNATSArgs, "--out", dir)...); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, natsConfFile))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "deploy", "nats", "secure.conf")
	if *updateDeploy {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/wsgrpo -run TestDeployNATSConfig -update-deploy to write it)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is out of date with the topology's permissions; run go test ./cmd/wsgrpo -run TestDeployNATSConfig -update-deploy", path)
	}
}
