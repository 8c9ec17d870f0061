package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// Authentication modes of `wsgrpo nats-config`.
const (
	// natsAuthNKey gives every user an nkey: the configuration holds
	// public keys only, each principal's seed goes to <principal>.nk.
	natsAuthNKey = "nkey"
	// natsAuthPassword gives every user a password the server reads from
	// its environment (nats.env holds generated ones).
	natsAuthPassword = "password"
)

// natsConfFile and natsEnvFile are what nats-config writes into --out.
const (
	natsConfFile = "nats.conf"
	natsEnvFile  = "nats.env"
)

// ErrNATSConfigExists is returned when --out already holds a
// configuration and --force is not given: new credentials would lock out
// the processes that use the old ones.
var ErrNATSConfigExists = errors.New("the output directory already holds a NATS configuration")

// natsConfigOptions are the flags of `wsgrpo nats-config`.
type natsConfigOptions struct {
	out, auth, listen, storeDir string
	httpPort                    int
	runs                        []string
	tlsCert, tlsKey, tlsCA      string
	tlsVerify, noTLS, force     bool
}

func newNATSConfigCmd() *cobra.Command {
	var o natsConfigOptions
	cmd := &cobra.Command{
		Use:   "nats-config --out DIR",
		Short: "Write a nats-server configuration for a shared cluster: TLS, and one user per stage allowed only its own output",
		Long: `Write DIR/nats.conf, a nats-server configuration with JetStream, TLS and one
user per principal: sampler, verifier, labeler, learner, logger, the prompt
source and an admin. Each user's permissions come from the run's topology
(the same names the stages use), so they cannot drift from the code: a stage
may publish only its own output hop and dead letters and read only its own
input; only the learner may write policy weights and announce versions; every
stage may create the run's streams but only the learner and the admin may
change them, and only the admin may delete them. Each user reads replies on
its own inbox. Give --runs to allow several runs on one server.

Credentials (--auth):
  nkey      each user gets an nkey; DIR/<user>.nk holds its seed (give it to
            the stage with --nats-nkey); nats.conf holds public keys only
  password  each user gets a password the server reads from its environment
            (WSGRPO_NATS_<USER>_PASSWORD); DIR/nats.env holds generated ones;
            a stage gets --nats-user and WSGRPO_NATS_AUTH_PASSWORD

TLS: --tls-cert and --tls-key are the server's certificate and key as the
server sees them (paths in its container); --tls-ca with --tls-verify requires
client certificates too. Stages then connect with --nats-tls-ca (and
--nats-tls-cert/--nats-tls-key). A configuration without TLS needs --no-tls.`,
		Example: `  wsgrpo nats-config --run grpo-1 --out /etc/nats --tls-cert /etc/nats/tls/server-cert.pem --tls-key /etc/nats/tls/server-key.pem
  nats-server -c /etc/nats/nats.conf
  wsgrpo stage sampler --run grpo-1 --nats nats://nats:4222 --nats-tls-ca ca.pem --nats-nkey /etc/nats/sampler.nk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := setup(cmd)
			if err != nil {
				return err
			}
			return writeNATSConfig(cmd, cfg, o)
		},
	}
	addConfigFlags(cmd.Flags())
	addLayoutFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "directory to write nats.conf and the credentials into (required)")
	f.StringVar(&o.auth, "auth", natsAuthNKey, "credentials: nkey or password")
	f.StringSliceVar(&o.runs, "runs", nil, "runs the users may work on (default: --run)")
	f.StringVar(&o.listen, "listen", "0.0.0.0:4222", "client address of the server")
	f.IntVar(&o.httpPort, "http-port", 8222, "monitoring port, which has no authentication (0: off)")
	f.StringVar(&o.storeDir, "store-dir", "/data", "JetStream storage directory of the server")
	f.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM), as the server sees it")
	f.StringVar(&o.tlsKey, "tls-key", "", "server key (PEM), as the server sees it")
	f.StringVar(&o.tlsCA, "tls-ca", "", "CA (PEM) of client certificates, as the server sees it")
	f.BoolVar(&o.tlsVerify, "tls-verify", false, "require client certificates signed by --tls-ca (mutual TLS)")
	f.BoolVar(&o.noTLS, "no-tls", false, "write a configuration without TLS (credentials and batches cross the network in clear)")
	f.BoolVar(&o.force, "force", false, "replace a configuration in --out (processes using its credentials are locked out)")
	return cmd
}

// natsPasswordVar is the server's environment variable of a principal's
// password in --auth password mode.
func natsPasswordVar(principal string) string {
	return "WSGRPO_NATS_" + strings.ToUpper(principal) + "_PASSWORD"
}

// natsServerConfig builds the configuration of o for cfg's run (or
// o.runs): the users with their credentials from auth.
func natsServerConfig(cfg Config, o natsConfigOptions, auth func(principal string) (password, nkey string)) (pipeline.NATSConfig, error) {
	runs := o.runs
	if len(runs) == 0 {
		runs = []string{cfg.Run}
	}
	var lists [][]pipeline.NATSUser
	for _, run := range runs {
		topo, err := pipeline.NewTopology(run)
		if err != nil {
			return pipeline.NATSConfig{}, fmt.Errorf("%w: --runs: %w", ErrConfig, err)
		}
		topo.NoLabeler = cfg.NoLabeler
		users, err := topo.Users(auth)
		if err != nil {
			return pipeline.NATSConfig{}, err
		}
		lists = append(lists, users)
	}
	c := pipeline.NATSConfig{
		Comment: fmt.Sprintf(`nats-server configuration for wsgrpo on a shared cluster, written by
wsgrpo nats-config for run(s) %s (credentials: %s). The permissions
derive from the runs' topology: regenerate instead of editing them.`, strings.Join(runs, ", "), o.auth),
		Listen: o.listen, HTTPPort: o.httpPort, StoreDir: o.storeDir,
		Users: pipeline.MergeUsers(lists...),
	}
	switch {
	case o.noTLS && (o.tlsCert != "" || o.tlsKey != "" || o.tlsCA != ""):
		return c, fmt.Errorf("%w: --no-tls and --tls-* exclude each other", ErrConfig)
	case o.noTLS:
	case o.tlsCert == "" || o.tlsKey == "":
		return c, fmt.Errorf("%w: give the server's --tls-cert and --tls-key (or --no-tls for a configuration without TLS)", ErrConfig)
	case o.tlsVerify && o.tlsCA == "":
		return c, fmt.Errorf("%w: --tls-verify needs --tls-ca, the CA of the client certificates", ErrConfig)
	default:
		c.TLS = &pipeline.NATSTLS{Cert: o.tlsCert, Key: o.tlsKey, CA: o.tlsCA, Verify: o.tlsVerify}
	}
	return c, nil
}

// writeNATSConfig writes nats.conf and the credentials into o.out.
func writeNATSConfig(cmd *cobra.Command, cfg Config, o natsConfigOptions) error {
	if o.out == "" {
		return fmt.Errorf("%w: --out DIR is required", ErrConfig)
	}
	if o.auth != natsAuthNKey && o.auth != natsAuthPassword {
		return fmt.Errorf("%w: --auth %q (want nkey or password)", ErrConfig, o.auth)
	}
	confPath := filepath.Join(o.out, natsConfFile)
	if _, err := os.Stat(confPath); err == nil && !o.force {
		return fmt.Errorf("%w: %s (give --force to replace it and its credentials)", ErrNATSConfigExists, confPath)
	}
	secrets := map[string]string{} // principal -> nkey seed or password
	var genErr error
	auth := func(p string) (string, string) {
		if o.auth == natsAuthPassword {
			var b [24]byte
			_, _ = rand.Read(b[:])
			secrets[p] = hex.EncodeToString(b[:])
			return "$" + natsPasswordVar(p), ""
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			genErr = err
			return "", ""
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		secrets[p] = string(seed)
		return "", pub
	}
	c, err := natsServerConfig(cfg, o, auth)
	if err != nil {
		return err
	}
	if genErr != nil {
		return fmt.Errorf("generate nkeys: %w", genErr)
	}
	text, err := c.Render()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(confPath, text, 0o644); err != nil {
		return err
	}
	out(cmd, "wrote %s: %d users\n", confPath, len(c.Users))
	if o.auth == natsAuthPassword {
		var env strings.Builder
		for _, u := range c.Users {
			fmt.Fprintf(&env, "%s=%s\n", natsPasswordVar(u.Name), secrets[u.Name])
		}
		p := filepath.Join(o.out, natsEnvFile)
		if err := os.WriteFile(p, []byte(env.String()), 0o600); err != nil {
			return err
		}
		out(cmd, "wrote %s: the users' passwords, for the server's environment (keep it secret)\n", p)
		out(cmd, "a stage connects with --nats-user NAME and WSGRPO_NATS_AUTH_PASSWORD set to its password, e.g.\n")
		out(cmd, "  WSGRPO_NATS_AUTH_PASSWORD=... wsgrpo stage sampler --nats URL --nats-user sampler --nats-tls-ca CA\n")
		return nil
	}
	for _, u := range c.Users {
		p := filepath.Join(o.out, u.Name+".nk")
		if err := os.WriteFile(p, []byte(secrets[u.Name]+"\n"), 0o600); err != nil {
			return err
		}
	}
	out(cmd, "wrote %s/<user>.nk: each user's nkey seed (keep them secret; give each process its own)\n", o.out)
	out(cmd, "a stage connects with its seed, e.g.\n  wsgrpo stage sampler --nats URL --nats-nkey %s --nats-tls-ca CA\n", filepath.Join(o.out, "sampler.nk"))
	return nil
}
