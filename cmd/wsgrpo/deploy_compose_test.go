package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/pipeline"
)

// composeFile is the part of the Compose specification that
// docker-compose.yml and deploy/compose/*.yml use; decoding refuses any
// other key, so a misspelt one fails the test (extend these types for a
// new key).
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extensions are the top-level x-* keys (YAML anchors to merge).
	Extensions map[string]any `yaml:",inline"`
}

// composeService is one service of a compose file.
type composeService struct {
	Image           string                       `yaml:"image"`
	Build           string                       `yaml:"build"`
	Entrypoint      []string                     `yaml:"entrypoint"`
	Command         []string                     `yaml:"command"`
	Environment     map[string]string            `yaml:"environment"`
	Volumes         []string                     `yaml:"volumes"`
	Ports           []string                     `yaml:"ports"`
	Expose          []string                     `yaml:"expose"`
	Profiles        []string                     `yaml:"profiles"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Deploy          *composeDeploy               `yaml:"deploy"`
	Healthcheck     *composeHealthcheck          `yaml:"healthcheck"`
	Restart         string                       `yaml:"restart"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
	Ulimits         map[string]struct {
		Soft int `yaml:"soft"`
		Hard int `yaml:"hard"`
	} `yaml:"ulimits"`
}

// composeDependency is a long-form depends_on entry.
type composeDependency struct {
	Condition string `yaml:"condition"`
	Required  *bool  `yaml:"required"`
}

// composeDeploy is a service's deploy section.
type composeDeploy struct {
	Replicas  *int `yaml:"replicas"`
	Resources struct {
		Reservations map[string]string `yaml:"reservations"`
		Limits       map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// composeHealthcheck is a service's healthcheck.
type composeHealthcheck struct {
	Test     []string `yaml:"test"`
	Interval string   `yaml:"interval"`
	Timeout  string   `yaml:"timeout"`
	Retries  int      `yaml:"retries"`
}

// readCompose reads and interpolates a compose file of the repository.
func readCompose(t *testing.T, file string) (composeFile, interpolation) {
	t.Helper()
	b, err := os.ReadFile(repoPath(file))
	if err != nil {
		t.Fatal(err)
	}
	var in interpolation
	docs, err := decodeYAML[composeFile]([]byte(interpolate(string(b), &in)))
	if err != nil || len(docs) != 1 {
		t.Fatalf("%s: %v (%d documents)", file, err, len(docs))
	}
	for k := range docs[0].Extensions {
		if !strings.HasPrefix(k, "x-") {
			t.Errorf("%s: unknown top-level key %q", file, k)
		}
	}
	return docs[0], in
}

// mount is a parsed service volume: a repository file or directory
// (bind) or a named volume.
type mount struct {
	source, target string
	bind, readOnly bool
}

// mounts parses a service's volumes.
func (s composeService) mounts() []mount {
	var ms []mount
	for _, v := range s.Volumes {
		f := strings.Split(v, ":")
		m := mount{source: f[0], target: f[len(f)-1]}
		if len(f) == 3 {
			m.target, m.readOnly = f[1], f[2] == "ro"
		}
		m.bind = strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/")
		ms = append(ms, m)
	}
	return ms
}

// source returns the mount whose target holds the container path p.
func (s composeService) source(p string) (mount, bool) {
	for _, m := range s.mounts() {
		if p == m.target || strings.HasPrefix(p, m.target+"/") {
			return m, true
		}
	}
	return mount{}, false
}

// replicas is the number of copies compose starts.
func (s composeService) replicas() int {
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

// wsgrpoArgs returns the wsgrpo command line of a service of the wsgrpo
// image: its command, run by the image's entrypoint directly or through a
// shell that waits for a file and then execs `wsgrpo "$@"` (returned as
// waitFor).
func (s composeService) wsgrpoArgs() (args []string, waitFor string, err error) {
	if len(s.Entrypoint) == 0 {
		return s.Command, "", nil
	}
	e := s.Entrypoint
	var m []string
	if len(e) == 4 && e[0] == "/bin/sh" && e[1] == "-c" {
		m = waitScript.FindStringSubmatch(e[2])
	}
	if m == nil || m[2] == "" {
		return nil, "", fmt.Errorf("entrypoint %q: want the image's (wsgrpo) or [/bin/sh -c 'until [ -f FILE ]; ...; exec wsgrpo \"$@\"' NAME]", e)
	}
	return s.Command, m[1], nil
}

// parsedService is a wsgrpo service with its parsed command and config.
type parsedService struct {
	name    string
	svc     composeService
	stages  []string
	cfg     Config
	waitFor string
}

// composeServices parses every service of the wsgrpo image: its command
// line with the root command and its configuration with the loader,
// mounted files read from the repository.
func composeServices(t *testing.T, c composeFile) []parsedService {
	t.Helper()
	var out []parsedService
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		s := c.Services[name]
		if !strings.HasPrefix(s.Image, "wsgrpo:") {
			continue
		}
		args, wait, err := s.wsgrpoArgs()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cmd, pos, err := parseCommandLine(args)
		if err != nil {
			t.Fatalf("%s: command %q: %v", name, args, err)
		}
		stages, err := commandStages(cmd, pos)
		if err != nil || len(stages) == 0 {
			t.Fatalf("%s: command %q runs no stage of a training run (%v)", name, args, err)
		}
		file, _ := cmd.Flags().GetString("config")
		m, ok := s.source(file)
		if file == "" || !ok || !m.bind || !m.readOnly {
			t.Fatalf("%s: --config %q is not a file mounted read-only from the repository", name, file)
		}
		cfg, err := loadDeployConfig(t, cmd, repoPath(m.source), s.Environment)
		if err != nil {
			t.Fatalf("%s: configuration %s with its environment: %v", name, m.source, err)
		}
		out = append(out, parsedService{name: name, svc: s, stages: stages, cfg: cfg, waitFor: wait})
	}
	return out
}

// TestDeployCompose checks docker-compose.yml: that every wsgrpo service's
// command parses and its configuration validates, that every stage runs
// and each scalable one has its own service, that one learner runs, and
// that names, paths, users and ports agree between the services and the
// files they mount.
func TestDeployCompose(t *testing.T) {
	c, in := readCompose(t, "docker-compose.yml")
	if len(in.required)+len(in.bare) > 0 {
		t.Errorf("docker-compose.yml needs variables set (%v, %v); a local try must start without any", in.required, in.bare)
	}
	services := composeServices(t, c)
	ch, nats := c.Services["clickhouse"], c.Services["nats"]

	t.Run("stages", func(t *testing.T) {
		// Every stage runs in the default set of services; each but the
		// learner also in a service of its own, which --scale copies.
		own := map[string]int{}
		learners := 0
		for _, s := range services {
			if len(s.stages) == 1 {
				own[s.stages[0]]++
			}
			if slices.Contains(s.stages, "learner") {
				if s.svc.replicas() != 1 {
					t.Errorf("%s runs the learner with %d replicas, want exactly 1", s.name, s.svc.replicas())
				}
				if len(s.svc.Profiles) == 0 {
					learners += s.svc.replicas()
				}
			}
		}
		for _, st := range stageNames {
			if st != "learner" && own[st] != 1 {
				t.Errorf("stage %s: %d services of its own, want 1 (scaled with --scale %s=N)", st, own[st], st)
			}
		}
		if learners != 1 {
			t.Errorf("the default services run %d learners, want 1", learners)
		}
	})

	t.Run("run", func(t *testing.T) {
		for _, s := range services {
			cfg := s.cfg
			if cfg.Run != composeRun(t) {
				t.Errorf("%s: run %q; deploy/nats/secure.conf is written for %q", s.name, cfg.Run, composeRun(t))
			}
			u, err := url.Parse(cfg.NATS)
			if err != nil || c.Services[u.Hostname()].Image != nats.Image || u.Port() != "4222" {
				t.Errorf("%s: nats %q is not the nats service", s.name, cfg.NATS)
			}
			if _, ok := s.svc.DependsOn["nats"]; !ok || s.svc.DependsOn["nats"].Condition != "service_healthy" {
				t.Errorf("%s: does not wait for a healthy nats", s.name)
			}
			writes := slices.Contains(s.stages, "logger") || slices.Contains(s.stages, "learner")
			if writes != (cfg.ClickHouseDSN != "") {
				t.Errorf("%s: clickhouse_dsn %q: want the writer's DSN exactly where the log is written (logger, learner)", s.name, cfg.ClickHouseDSN)
			}
			if writes {
				checkWriterDSN(t, s.name, cfg.ClickHouseDSN, ch)
				if s.svc.DependsOn["clickhouse"].Condition != "service_healthy" {
					t.Errorf("%s: writes the log but does not wait for a healthy clickhouse", s.name)
				}
			}
			if s.name == "trainer" {
				checkImageModel(t, cfg)
			}
		}
	})

	t.Run("run-directory", func(t *testing.T) {
		var trainer parsedService
		for _, s := range services {
			if s.name == "trainer" {
				trainer = s
			}
		}
		if trainer.name == "" {
			t.Fatal("no trainer service")
		}
		for _, s := range services {
			if slices.Contains(s.stages, "learner") {
				if m, ok := s.svc.source(s.cfg.RunDir()); !ok || m.bind || m.readOnly || !hasKey(c.Volumes, m.source) {
					t.Errorf("%s: run directory %s is not on a writable named volume", s.name, s.cfg.RunDir())
				}
			}
			if !slices.Contains(s.stages, "labeler") || len(s.stages) > 1 || !needsScorer(s.cfg.Shaping) {
				continue
			}
			// A labeler process needs the model the trainer fits into its run
			// directory, on a volume they share, and waits for its last file.
			want := path.Join(trainer.cfg.RunDir(), "labeler")
			if s.cfg.Labeler.Artifact != want {
				t.Errorf("%s: labeler.artifact %q, want the trainer's fit %s", s.name, s.cfg.Labeler.Artifact, want)
			}
			mt, _ := trainer.svc.source(want)
			ml, ok := s.svc.source(want)
			if !ok || ml.source != mt.source || ml.target != mt.target {
				t.Errorf("%s: %s is not on the trainer's volume", s.name, want)
			}
			if s.waitFor != path.Join(want, labeler.MetaFile) {
				t.Errorf("%s: waits for %q, want %s (written last by the fit)", s.name, s.waitFor, path.Join(want, labeler.MetaFile))
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, s := range services {
			if len(s.stages) != 1 {
				continue
			}
			_, port, err := net.SplitHostPort(s.cfg.Metrics)
			if err != nil || !slices.Contains(s.svc.Expose, port) {
				t.Errorf("%s: metrics %q not served on an exposed port (%v)", s.name, s.cfg.Metrics, s.svc.Expose)
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		for name, s := range c.Services {
			for dep, d := range s.DependsOn {
				target, ok := c.Services[dep]
				if !ok {
					t.Errorf("%s depends on unknown service %s", name, dep)
				}
				if d.Condition == "service_healthy" && target.Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			}
			for _, m := range s.mounts() {
				if m.bind {
					if _, err := os.Stat(repoPath(m.source)); err != nil {
						t.Errorf("%s mounts %s: %v", name, m.source, err)
					}
				} else if !hasKey(c.Volumes, m.source) {
					t.Errorf("%s mounts undeclared volume %s", name, m.source)
				}
			}
			if strings.HasPrefix(s.Image, "wsgrpo:") && (s.Build == "" || s.Deploy == nil || len(s.Deploy.Resources.Reservations) == 0 || len(s.Deploy.Resources.Limits) == 0) {
				t.Errorf("%s: want build, and deploy.resources reservations and limits", name)
			}
		}
	})

	t.Run("nats", func(t *testing.T) {
		checkNATSService(t, nats, "deploy/nats/nats.conf")
	})

	t.Run("clickhouse", func(t *testing.T) {
		reader := checkClickHouseUsers(t)
		want := map[string]string{
			"deploy/clickhouse/users.xml":   "/etc/clickhouse-server/users.d/",
			"deploy/clickhouse/grafana.xml": "/etc/clickhouse-server/users.d/",
			"deploy/clickhouse/access.xml":  "/etc/clickhouse-server/config.d/",
		}
		for _, m := range ch.mounts() {
			if dir, ok := want[strings.TrimPrefix(m.source, "./")]; ok && strings.HasPrefix(m.target, dir) {
				delete(want, strings.TrimPrefix(m.source, "./"))
			}
		}
		if len(want) > 0 {
			t.Errorf("clickhouse does not mount %v", want)
		}
		if ch.Environment[reader.hashVar] == "" || !slices.Contains(reader.databases, ch.Environment["CLICKHOUSE_DB"]) {
			t.Errorf("clickhouse: %s unset or CLICKHOUSE_DB %q not among the reader's databases %v", reader.hashVar, ch.Environment["CLICKHOUSE_DB"], reader.databases)
		}
	})

	t.Run("grafana", func(t *testing.T) {
		src := checkGrafana(t)
		reader := checkClickHouseUsers(t)
		g := c.Services["grafana"]
		if _, ok := c.Services[src.host]; !ok || src.host != "clickhouse" || src.port != 9000 {
			t.Errorf("data source %s:%d is not the clickhouse service's native port", src.host, src.port)
		}
		if src.user != reader.name || src.database != ch.Environment["CLICKHOUSE_DB"] {
			t.Errorf("data source reads as %s from %s, want the reader %s and %s", src.user, src.database, reader.name, ch.Environment["CLICKHOUSE_DB"])
		}
		if pw := g.Environment[src.passwordVar]; pw == "" || sha256Hex(pw) != ch.Environment[reader.hashVar] {
			t.Errorf("grafana's %s (default %q) is not the password whose SHA-256 clickhouse has in %s", src.passwordVar, pw, reader.hashVar)
		}
		if !strings.Contains(g.Environment["GF_INSTALL_PLUGINS"], src.plugin) {
			t.Errorf("grafana does not install %s", src.plugin)
		}
		mp, okp := g.source("/etc/grafana/provisioning/datasources")
		md, okd := g.source(src.dashboards)
		if !okp || mp.source != "./deploy/grafana/provisioning" || !okd || md.source != "./deploy/grafana/dashboards" {
			t.Errorf("grafana mounts %v; want deploy/grafana/provisioning and the dashboards at %s", g.Volumes, src.dashboards)
		}
		if g.DependsOn["clickhouse"].Condition != "service_healthy" {
			t.Error("grafana does not wait for clickhouse")
		}
	})
}

// hasKey reports whether m has key k.
func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// checkWriterDSN checks that dsn is the writing user the clickhouse
// service creates, on its native port, in its database.
func checkWriterDSN(t *testing.T, name, dsn string, ch composeService) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: clickhouse_dsn: %v", name, err)
	}
	pw, _ := u.User.Password()
	e := ch.Environment
	if u.Scheme != "clickhouse" || u.Hostname() != "clickhouse" || u.Port() != "9000" || u.User.Username() != e["CLICKHOUSE_USER"] ||
		pw != e["CLICKHOUSE_PASSWORD"] || strings.TrimPrefix(u.Path, "/") != e["CLICKHOUSE_DB"] {
		t.Errorf("%s: clickhouse_dsn %s is not the clickhouse service's user %s in database %s", name, redactDSN(dsn), e["CLICKHOUSE_USER"], e["CLICKHOUSE_DB"])
	}
}

// checkNATSService checks that the nats service runs the configuration
// conf with JetStream and 8 MB payloads, and that its healthcheck asks
// the monitoring port of that configuration.
func checkNATSService(t *testing.T, s composeService, conf string) {
	t.Helper()
	if len(s.Command) != 2 || s.Command[0] != "-c" {
		t.Fatalf("nats command %q, want -c FILE", s.Command)
	}
	m, ok := s.source(s.Command[1])
	if !ok || strings.TrimPrefix(m.source, "./") != conf {
		t.Fatalf("nats runs %s, which is not %s", s.Command[1], conf)
	}
	b, err := os.ReadFile(repoPath(conf))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, "jetstream") || !(strings.Contains(text, "max_payload: 8MB") || strings.Contains(text, "max_payload: 8388608")) {
		t.Errorf("%s: want JetStream and max_payload 8MB", conf)
	}
	if s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "), ":8222/healthz") || !strings.Contains(text, "http_port: 8222") {
		t.Errorf("nats healthcheck %v does not ask the monitoring port 8222 of %s", s.Healthcheck, conf)
	}
}

// TestDeployComposeSecure checks deploy/compose/secure.yml against
// docker-compose.yml and deploy/nats/secure.conf: the server runs
// secure.conf with every user's password, and every wsgrpo service
// connects over TLS as the user of what it runs (admin for the trainer).
func TestDeployComposeSecure(t *testing.T) {
	base, _ := readCompose(t, "docker-compose.yml")
	sec, in := readCompose(t, "deploy/compose/secure.yml")
	conf, err := os.ReadFile(repoPath("deploy/nats/secure.conf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("server", func(t *testing.T) {
		n := sec.Services["nats"]
		merged := base.Services["nats"]
		merged.Command, merged.Volumes = n.Command, append(slices.Clone(merged.Volumes), n.Volumes...)
		checkNATSService(t, merged, "deploy/nats/secure.conf")
		for _, p := range pipeline.Principals() {
			v := natsPasswordVar(p)
			if strings.Contains(string(conf), "$"+v) && n.Environment[v] == "" {
				t.Errorf("nats: secure.conf reads %s, which the override does not set", v)
			}
			if !slices.Contains(in.required, v) {
				t.Errorf("%s is not required (${%s:?...}): the server would start without it", v, v)
			}
		}
	})
	t.Run("clients", func(t *testing.T) {
		for _, s := range composeServices(t, base) {
			o, ok := sec.Services[s.name]
			if !ok {
				t.Errorf("%s connects without credentials", s.name)
				continue
			}
			user := pipeline.PrincipalAdmin
			if len(s.stages) == 1 {
				user = s.stages[0]
			}
			env := o.Environment
			if env["WSGRPO_NATS_AUTH_USER"] != user || env["WSGRPO_NATS_AUTH_PASSWORD"] != "<"+natsPasswordVar(user)+">" {
				t.Errorf("%s: connects as %q with %q, want %s with ${%s}", s.name, env["WSGRPO_NATS_AUTH_USER"], env["WSGRPO_NATS_AUTH_PASSWORD"], user, natsPasswordVar(user))
			}
			if !strings.Contains(string(conf), `user: "`+user+`"`) {
				t.Errorf("%s: user %s is not in secure.conf", s.name, user)
			}
			ca := env["WSGRPO_NATS_AUTH_TLS_CA"]
			if _, ok := o.source(ca); ca == "" || !ok {
				t.Errorf("%s: TLS CA %q is not in a mounted directory", s.name, ca)
			}
		}
	})
}
