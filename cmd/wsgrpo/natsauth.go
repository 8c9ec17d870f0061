package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/wsgrpo/wsgrpo/pipeline"
)

// NATSAuthConfig is how a process proves who it is to an external NATS
// server (Config.NATS) and checks the server's identity: TLS with a CA and
// optionally a client certificate, and one of a user and password or an
// nkey seed. A shared cluster gives each stage its own user, whose
// permissions let it publish only its own output (`wsgrpo nats-config`
// writes such a server configuration). The embedded server ignores it.
type NATSAuthConfig struct {
	// TLSCA is a PEM file of the CA that signed the server's certificate;
	// with it the client requires TLS and verifies the server.
	TLSCA string `koanf:"tls_ca"`
	// TLSCert and TLSKey are the client's certificate and key (PEM), for
	// a server that requires client certificates (mutual TLS). Both or
	// neither.
	TLSCert string `koanf:"tls_cert"`
	TLSKey  string `koanf:"tls_key"`
	// User and Password authenticate with a password. Give the password
	// in the environment (WSGRPO_NATS_AUTH_PASSWORD) or the config file,
	// not on a command line.
	User     string `koanf:"user"`
	Password string `koanf:"password"`
	// NKey is a file holding the user's nkey seed ("SU..."): the client
	// signs the server's challenge with it, and no secret crosses the
	// wire. Excludes User and Password.
	NKey string `koanf:"nkey"`
}

// validate reports every problem with a, each naming its key; every one
// wraps ErrConfig.
func (a NATSAuthConfig) validate() error {
	var errs []error
	file := func(key, path string) {
		if path == "" {
			return
		}
		if st, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%w: nats_auth.%s: %w", ErrConfig, key, err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("%w: nats_auth.%s: %s is a directory, not a file", ErrConfig, key, path))
		}
	}
	file("tls_ca", a.TLSCA)
	file("tls_cert", a.TLSCert)
	file("tls_key", a.TLSKey)
	file("nkey", a.NKey)
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%w: nats_auth.tls_cert and nats_auth.tls_key go together (the client certificate and its key)", ErrConfig))
	}
	if (a.User == "") != (a.Password == "") {
		errs = append(errs, fmt.Errorf("%w: nats_auth.user and nats_auth.password go together (set the password in WSGRPO_NATS_AUTH_PASSWORD)", ErrConfig))
	}
	if a.NKey != "" && a.User != "" {
		errs = append(errs, fmt.Errorf("%w: nats_auth.nkey and nats_auth.user exclude each other (an nkey user has no name or password)", ErrConfig))
	}
	return errors.Join(errs...)
}

// natsOptions returns the client options of cfg.NATSAuth for a
// connection to the external server, with asynchronous errors (the
// server refusing what this user may not do) logged to log. principal is
// the stage this process runs (its replies then come back on the stage
// user's own inbox, pipeline.InboxPrefix), or "" for a tool.
func natsOptions(a NATSAuthConfig, log *slog.Logger, principal string) ([]nats.Option, error) {
	opts := []nats.Option{pipeline.LogAsyncErrors(log)}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if a.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKey)
		if err != nil {
			return nil, fmt.Errorf("%w: nats_auth.nkey %s: %w", ErrConfig, a.NKey, err)
		}
		opts = append(opts, o)
	}
	if principal != "" {
		opts = append(opts, nats.CustomInboxPrefix(pipeline.InboxPrefix(principal)))
	}
	return opts, nil
}

// connectExternal connects to cfg.NATS with cfg.NATSAuth.
func connectExternal(cfg Config, log *slog.Logger, principal string) (*nats.Conn, error) {
	opts, err := natsOptions(cfg.NATSAuth, log, principal)
	if err != nil {
		return nil, err
	}
	return pipeline.Connect(cfg.NATS, opts...)
}

// addNATSAuthFlags registers the flags of nats_auth (the password has
// none: a command line is visible to every user of the host).
func addNATSAuthFlags(fs *pflag.FlagSet) {
	fs.String("nats-tls-ca", "", "CA (PEM) that signed the NATS server's certificate; requires TLS (config key nats_auth.tls_ca)")
	fs.String("nats-tls-cert", "", "client certificate (PEM) for a NATS server that requires one (nats_auth.tls_cert)")
	fs.String("nats-tls-key", "", "key (PEM) of --nats-tls-cert (nats_auth.tls_key)")
	fs.String("nats-user", "", "NATS user; the password comes from WSGRPO_NATS_AUTH_PASSWORD or the config file (nats_auth.user)")
	fs.String("nats-nkey", "", "file holding the NATS user's nkey seed, e.g. one that wsgrpo nats-config wrote (nats_auth.nkey)")
}

// natsAuthFlagKeys maps the flags of addNATSAuthFlags to config keys.
var natsAuthFlagKeys = map[string]string{
	"nats-tls-ca":   "nats_auth.tls_ca",
	"nats-tls-cert": "nats_auth.tls_cert",
	"nats-tls-key":  "nats_auth.tls_key",
	"nats-user":     "nats_auth.user",
	"nats-nkey":     "nats_auth.nkey",
}
