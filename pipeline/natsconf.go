package pipeline

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// NATSUser is one user of a secured NATS server (NATSConfig): a name
// and password, or a public nkey, and what it may publish and subscribe to.
type NATSUser struct {
	// Name is the principal (a stage, PrincipalSource or PrincipalAdmin):
	// the user name with a password, a comment with an nkey.
	Name string
	// Password is the user's password: a literal, or "$VAR" to have the
	// server read it from its environment variable VAR when it starts (so
	// that no secret is written to the file). Empty with NKey.
	Password string
	// NKey is the user's public nkey ("U..."), for nkey authentication
	// instead of a password: the client proves it holds the seed, and the
	// server keeps no secret.
	NKey string
	// Permissions are the user's allow lists.
	Permissions Permissions
}

// NATSTLS is the TLS block of a NATSConfig: PEM files as the server sees
// them (paths inside its container or host).
type NATSTLS struct {
	// Cert and Key are the server's certificate (chain) and private key.
	Cert, Key string
	// CA verifies client certificates; with Verify, every client must
	// present one signed by it (mutual TLS).
	CA     string
	Verify bool
}

// NATSConfig is the configuration file of a nats-server for a shared
// cluster: JetStream, TLS, and one user per principal whose permissions
// come from Topology.Permissions. Render writes it.
type NATSConfig struct {
	// Comment heads the file (each line prefixed with "# ").
	Comment string
	// Listen is the client address, host:port (default 0.0.0.0:4222).
	Listen string
	// HTTPPort serves the monitoring endpoints (0: off).
	HTTPPort int
	// StoreDir is JetStream's file storage (required).
	StoreDir string
	// MaxPayload is the largest message (default DefaultMaxPayload).
	MaxPayload int
	// TLS requires TLS on the client port; nil leaves it plaintext, which
	// a shared cluster should not use.
	TLS *NATSTLS
	// Users are the accounts' users; none leaves the server open to all.
	Users []NATSUser
}

// envRef matches a password that names an environment variable.
var envRef = regexp.MustCompile(`^\$[A-Za-z_][A-Za-z0-9_]*$`)

// Render writes c in nats-server's configuration syntax, or returns
// ErrInvalidConfig for a configuration the server would reject or that
// would leave a user without credentials.
func (c NATSConfig) Render() ([]byte, error) {
	if c.StoreDir == "" {
		return nil, fmt.Errorf("%w: NATSConfig.StoreDir is required", ErrInvalidConfig)
	}
	if c.Listen == "" {
		c.Listen = "0.0.0.0:4222"
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	var b bytes.Buffer
	for line := range strings.SplitSeq(strings.TrimSpace(c.Comment), "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	fmt.Fprintf(&b, "listen: %s\n", quote(c.Listen))
	if c.HTTPPort > 0 {
		fmt.Fprintf(&b, "http_port: %d\n", c.HTTPPort)
	}
	fmt.Fprintf(&b, "max_payload: %d\n", c.MaxPayload)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n}\n", quote(c.StoreDir))
	if t := c.TLS; t != nil {
		if t.Cert == "" || t.Key == "" || (t.Verify && t.CA == "") {
			return nil, fmt.Errorf("%w: TLS needs a certificate and a key, and a CA to verify clients", ErrInvalidConfig)
		}
		fmt.Fprintf(&b, "tls {\n  cert_file: %s\n  key_file: %s\n", quote(t.Cert), quote(t.Key))
		if t.CA != "" {
			fmt.Fprintf(&b, "  ca_file: %s\n", quote(t.CA))
		}
		if t.Verify {
			b.WriteString("  verify: true\n")
		}
		b.WriteString("  timeout: 5\n}\n")
	}
	if len(c.Users) == 0 {
		return b.Bytes(), nil
	}
	b.WriteString("authorization {\n  users: [\n")
	for _, u := range c.Users {
		if err := writeUser(&b, u); err != nil {
			return nil, err
		}
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes(), nil
}

// writeUser writes one entry of the users list.
func writeUser(b *bytes.Buffer, u NATSUser) error {
	switch {
	case u.NKey != "" && u.Password != "":
		return fmt.Errorf("%w: user %s has both a password and an nkey", ErrInvalidConfig, u.Name)
	case u.NKey != "":
		if !strings.HasPrefix(u.NKey, "U") {
			return fmt.Errorf("%w: user %s: %q is not a public user nkey", ErrInvalidConfig, u.Name, u.NKey)
		}
		fmt.Fprintf(b, "    # %s\n    {\n      nkey: %s\n", u.Name, quote(u.NKey))
	case u.Password != "" && u.Name != "":
		pw := quote(u.Password)
		if envRef.MatchString(u.Password) {
			pw = u.Password // the server reads the variable
		}
		fmt.Fprintf(b, "    {\n      user: %s\n      password: %s\n", quote(u.Name), pw)
	default:
		return fmt.Errorf("%w: user %q needs a name and a password, or an nkey", ErrInvalidConfig, u.Name)
	}
	b.WriteString("      permissions: {\n")
	for _, l := range []struct {
		what     string
		subjects []string
	}{{"publish", u.Permissions.Publish}, {"subscribe", u.Permissions.Subscribe}} {
		fmt.Fprintf(b, "        %s: { allow: [\n", l.what)
		for _, s := range l.subjects {
			fmt.Fprintf(b, "          %s\n", quote(s))
		}
		b.WriteString("        ] }\n")
	}
	b.WriteString("      }\n    }\n")
	return nil
}

// quote writes s as a quoted string: subjects start with "$", which the
// server would take for a variable unquoted.
func quote(s string) string { return strconv.Quote(s) }

// Users returns one NATSUser per principal of the run's layout
// (Principals, less the labeler and learner of a NoLabeler run), with the
// credentials auth gives it (a password or "$VAR", or a public nkey) and
// its Permissions.
func (t Topology) Users(auth func(principal string) (password, nkey string)) ([]NATSUser, error) {
	var out []NATSUser
	for _, p := range Principals() {
		perm, err := t.Permissions(p)
		if err != nil {
			if t.NoLabeler && (p == StageLabeler || p == StageLearner) {
				continue
			}
			return nil, err
		}
		pw, nk := auth(p)
		out = append(out, NATSUser{Name: p, Password: pw, NKey: nk, Permissions: perm})
	}
	return out, nil
}

// MergeUsers unites lists of users (one list per run, from Users): users
// of the same name keep the first list's credentials and get the union of
// their permissions, so one server can host several runs with one user
// per principal.
func MergeUsers(lists ...[]NATSUser) []NATSUser {
	var out []NATSUser
	at := map[string]int{}
	for _, l := range lists {
		for _, u := range l {
			i, ok := at[u.Name]
			if !ok {
				at[u.Name] = len(out)
				u.Permissions = Permissions{Publish: slices.Clone(u.Permissions.Publish), Subscribe: slices.Clone(u.Permissions.Subscribe)}
				out = append(out, u)
				continue
			}
			p := &out[i].Permissions
			for _, s := range u.Permissions.Publish {
				if !slices.Contains(p.Publish, s) {
					p.Publish = append(p.Publish, s)
				}
			}
			for _, s := range u.Permissions.Subscribe {
				if !slices.Contains(p.Subscribe, s) {
					p.Subscribe = append(p.Subscribe, s)
				}
			}
		}
	}
	return out
}
