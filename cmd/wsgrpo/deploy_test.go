package main

// Checks of the deployment files (docker-compose.yml, deploy/compose,
// deploy/k8s, deploy/grafana, deploy/clickhouse, the Dockerfile) that need
// neither Docker nor a cluster: every file parses, field names are the ones
// these tests know (a misspelt key fails), every wsgrpo command line parses
// with the real root command, every run configuration loads with the
// product's loader and passes Validate, and the pieces agree with each
// other (stages, the one learner, paths, users, ports, the dashboard's data
// source). deploy_compose_test.go and deploy_k8s_test.go hold the checks of
// each format; this file the parts they share.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wsgrpo/wsgrpo/model/checkpoint"
	"github.com/wsgrpo/wsgrpo/pipeline"
)

// repoPath is path (slash-separated, relative to the repository root) as
// seen from this package's directory, where go test runs.
func repoPath(path string) string {
	return filepath.Join("..", "..", filepath.FromSlash(path))
}

// decodeYAML decodes every document of the YAML text b into a new T,
// refusing keys T does not declare.
func decodeYAML[T any](b []byte) ([]T, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var docs []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

// readYAML is decodeYAML of the repository file path.
func readYAML[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(repoPath(path))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeYAML[T](b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return docs
}

// parseCommandLine parses args (a container's command without the
// program name) with the real root command, its flags and its argument
// rules, without running it. It returns the command and its positional
// arguments.
func parseCommandLine(args []string) (*cobra.Command, []string, error) {
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, nil, err
	}
	if cmd == root {
		return nil, nil, fmt.Errorf("%q names no wsgrpo command", args)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	pos := cmd.Flags().Args()
	if err := cmd.ValidateArgs(pos); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	return cmd, pos, nil
}

// commandStages returns the stages a parsed wsgrpo command runs: every
// stage for `train` (it runs them all in its process), the named one for
// `stage NAME`, the prompt source's principal for `source`, none for other
// commands.
func commandStages(cmd *cobra.Command, pos []string) ([]string, error) {
	switch cmd.Name() {
	case "train":
		if w, _ := cmd.Flags().GetBool("wiring"); w {
			return nil, fmt.Errorf("train --wiring is the wiring check, not a training run")
		}
		return stageNames, nil
	case "stage":
		def, err := lookupStage(pos[0])
		if err != nil {
			return nil, err
		}
		as, _ := cmd.Flags().GetString("as")
		position, err := def.position(as)
		if err != nil {
			return nil, err
		}
		if def.name == "passthrough" {
			return nil, fmt.Errorf("stage passthrough is a wiring stand-in, not the %s", position)
		}
		return []string{position}, nil
	case "source":
		return []string{pipeline.PrincipalSource}, nil
	}
	return nil, nil
}

// isolateEnv removes every WSGRPO_* variable from the test's environment
// (restored when t ends), so that only what a deployment file sets reaches
// the configuration loader.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "WSGRPO_") {
			t.Setenv(name, value)
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// loadDeployConfig loads the configuration of a parsed command as its
// container would: its flags, with --config read from the repository file
// configFile, and env as its environment. The result has passed Validate.
func loadDeployConfig(t *testing.T, cmd *cobra.Command, configFile string, env map[string]string) (Config, error) {
	t.Helper()
	isolateEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	if err := cmd.Flags().Set("config", configFile); err != nil {
		return Config{}, err
	}
	return loadConfig(cmd.Flags())
}

// dockerfile is what the tests read from the Dockerfile.
type dockerfile struct {
	// copies maps each directory or file the final image gets from the
	// build context (COPY without --from) to its repository path.
	copies map[string]string
	// user is the image's USER.
	user string
}

// readDockerfile parses the Dockerfile's final stage.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(repoPath("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "FROM":
			d = dockerfile{copies: map[string]string{}} // a new stage
		case f[0] == "COPY" && len(f) == 3 && !strings.HasPrefix(f[1], "--"):
			d.copies[f[2]] = f[1]
		case f[0] == "USER" && len(f) == 2:
			d.user = f[1]
		}
	}
	return d
}

// checkImageModel checks that the image holds the run's starting policy,
// train.model, copied from a repository checkpoint that loads.
func checkImageModel(t *testing.T, cfg Config) {
	t.Helper()
	src, ok := readDockerfile(t).copies[cfg.Train.Model]
	if !ok {
		t.Fatalf("train.model %s is not a directory the Dockerfile copies into the image", cfg.Train.Model)
	}
	if _, err := checkpoint.Load(repoPath(src)); err != nil {
		t.Fatalf("train.model %s (the image's copy of %s): %v", cfg.Train.Model, src, err)
	}
}

// composeRun is the run id of deploy/compose/run.yaml: deploy/nats/
// secure.conf's permissions are written for it (deployNATSArgs).
func composeRun(t *testing.T) string {
	t.Helper()
	i := slices.Index(deployNATSArgs, "--run")
	if i < 0 || i+1 >= len(deployNATSArgs) {
		t.Fatal("deployNATSArgs has no --run")
	}
	return deployNATSArgs[i+1]
}

// waitScript is a shell script that waits for a file (group 1) and, in a
// compose entrypoint, then runs wsgrpo with the service's command (group 2).
var waitScript = regexp.MustCompile(`^until \[ -f (\S+) \]; do sleep \d+; done(; exec wsgrpo "\$@")?$`)

// varRef matches compose's variable references: $$, ${NAME}, ${NAME:-x},
// ${NAME-x}, ${NAME:?x}, ${NAME?x} and $NAME.
var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolation is what interpolate met: the variables that must be set
// (${NAME:?...}) and those used without a default (${NAME}, $NAME).
type interpolation struct {
	required, bare []string
}

// interpolate resolves compose variable references in s as `docker
// compose` does with no variable set: a default where one is given, "$"
// for "$$", and for required or bare ones a placeholder, recorded in in.
func interpolate(s string, in *interpolation) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := varRef.FindStringSubmatch(m)
		name, op, arg := g[1], g[2], g[3]
		switch {
		case g[4] != "":
			in.bare = append(in.bare, g[4])
			return "<" + g[4] + ">"
		case op == ":-" || op == "-":
			return arg
		case op == ":?" || op == "?":
			in.required = append(in.required, name)
		default:
			in.bare = append(in.bare, name)
		}
		return "<" + name + ">"
	})
}

// grafanaDatasources is deploy/grafana/provisioning/datasources/*.yaml.
type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string `yaml:"name"`
		UID       string `yaml:"uid"`
		Type      string `yaml:"type"`
		Access    string `yaml:"access"`
		IsDefault bool   `yaml:"isDefault"`
		Editable  bool   `yaml:"editable"`
		JSONData  struct {
			Host            string `yaml:"host"`
			Port            int    `yaml:"port"`
			Protocol        string `yaml:"protocol"`
			Secure          bool   `yaml:"secure"`
			Username        string `yaml:"username"`
			DefaultDatabase string `yaml:"defaultDatabase"`
			DialTimeout     string `yaml:"dialTimeout"`
			QueryTimeout    string `yaml:"queryTimeout"`
		} `yaml:"jsonData"`
		SecureJSONData struct {
			Password string `yaml:"password"`
		} `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// grafanaProviders is deploy/grafana/provisioning/dashboards/*.yaml.
type grafanaProviders struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// dashboardDatasource is a panel's or variable's data source reference.
type dashboardDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaDashboard is the part of a dashboard JSON the tests read.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string               `json:"name"`
			Type       string               `json:"type"`
			Query      json.RawMessage      `json:"query"`
			Datasource *dashboardDatasource `json:"datasource"`
			Current    struct {
				Value json.RawMessage `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string               `json:"title"`
		Datasource *dashboardDatasource `json:"datasource"`
		Targets    []struct {
			Datasource *dashboardDatasource `json:"datasource"`
			RawSQL     string               `json:"rawSql"`
		} `json:"targets"`
	} `json:"panels"`
}

// grafanaSource is the provisioned ClickHouse data source, checked
// against every dashboard.
type grafanaSource struct {
	uid, plugin, host, user, database, passwordVar string
	port                                           int
	// dashboards is the container directory the dashboard provider reads.
	dashboards string
}

// checkGrafana checks the provisioned data source and dashboard provider
// and that every dashboard in deploy/grafana/dashboards parses and finds
// that data source: its datasource variable defaults to the provisioned
// uid and every panel and query uses the provisioned plugin through it.
func checkGrafana(t *testing.T) grafanaSource {
	t.Helper()
	ds := readYAML[grafanaDatasources](t, "deploy/grafana/provisioning/datasources/clickhouse.yaml")
	if len(ds) != 1 || len(ds[0].Datasources) != 1 {
		t.Fatalf("want one provisioned data source, got %+v", ds)
	}
	d := ds[0].Datasources[0]
	src := grafanaSource{uid: d.UID, plugin: d.Type, host: d.JSONData.Host, port: d.JSONData.Port,
		user: d.JSONData.Username, database: d.JSONData.DefaultDatabase}
	if d.Type != "grafana-clickhouse-datasource" || d.JSONData.Protocol != "native" || d.JSONData.Host == "" || d.JSONData.Port == 0 {
		t.Errorf("data source %+v: want the grafana-clickhouse-datasource plugin (v4 keys host, port, protocol native)", d)
	}
	if m := regexp.MustCompile(`^\$\{?([A-Z_][A-Z0-9_]*)\}?$`).FindStringSubmatch(d.SecureJSONData.Password); m != nil {
		src.passwordVar = m[1]
	} else {
		t.Errorf("data source password %q: want it from Grafana's environment ($NAME), not in the file", d.SecureJSONData.Password)
	}
	pr := readYAML[grafanaProviders](t, "deploy/grafana/provisioning/dashboards/wsgrpo.yaml")
	if len(pr) != 1 || len(pr[0].Providers) != 1 || pr[0].Providers[0].Type != "file" {
		t.Fatalf("want one file dashboard provider, got %+v", pr)
	}
	src.dashboards = pr[0].Providers[0].Options.Path
	files, err := filepath.Glob(repoPath("deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var db grafanaDashboard
		if err := json.Unmarshal(b, &db); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		checkDashboard(t, filepath.Base(f), db, src)
	}
	return src
}

// checkDashboard checks that db's panels reach the data source src.
func checkDashboard(t *testing.T, name string, db grafanaDashboard, src grafanaSource) {
	t.Helper()
	variable := ""
	for _, v := range db.Templating.List {
		if v.Type != "datasource" {
			continue
		}
		var plugin, current string
		if json.Unmarshal(v.Query, &plugin) != nil || json.Unmarshal(v.Current.Value, &current) != nil {
			t.Errorf("%s: datasource variable %s: query %s, current %s are not strings", name, v.Name, v.Query, v.Current.Value)
		}
		if plugin != src.plugin || current != src.uid {
			t.Errorf("%s: datasource variable %s is plugin %q defaulting to uid %q; provisioned: %q, uid %q", name, v.Name, plugin, current, src.plugin, src.uid)
		}
		variable = "${" + v.Name + "}"
	}
	if variable == "" {
		t.Fatalf("%s: no datasource variable", name)
	}
	refs := 0
	check := func(where string, ref *dashboardDatasource) {
		refs++
		if ref == nil || ref.Type != src.plugin || (ref.UID != variable && ref.UID != src.uid) {
			t.Errorf("%s: %s uses data source %+v, want type %q with uid %s or %s", name, where, ref, src.plugin, variable, src.uid)
		}
	}
	for _, v := range db.Templating.List {
		if v.Type == "query" {
			check("variable "+v.Name, v.Datasource)
		}
	}
	for _, p := range db.Panels {
		check("panel "+p.Title, p.Datasource)
		for _, q := range p.Targets {
			check("a query of panel "+p.Title, q.Datasource)
			if q.RawSQL == "" {
				t.Errorf("%s: panel %s has a query without SQL", name, p.Title)
			}
		}
	}
	if refs < 2 {
		t.Errorf("%s: %d data source references; the dashboard shows nothing", name, refs)
	}
}

// clickHouseUsers is the part of a ClickHouse users file the tests read.
type clickHouseUsers struct {
	Profiles struct {
		List []struct {
			XMLName     xml.Name
			Readonly    string `xml:"readonly"`
			Constraints struct {
				List []struct {
					XMLName              xml.Name
					ChangeableInReadonly *struct{} `xml:"changeable_in_readonly"`
				} `xml:",any"`
			} `xml:"constraints"`
		} `xml:",any"`
	} `xml:"profiles"`
	Users struct {
		List []struct {
			XMLName  xml.Name
			Profile  string `xml:"profile"`
			Password struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"password_sha256_hex"`
			Databases []string `xml:"allow_databases>database"`
		} `xml:",any"`
	} `xml:"users"`
	Access struct {
		ReplacePrevious string `xml:"settings_constraints_replace_previous"`
	} `xml:"access_control_improvements"`
}

// readClickHouseXML parses a ClickHouse configuration file of deploy/.
func readClickHouseXML(t *testing.T, path string) clickHouseUsers {
	t.Helper()
	b, err := os.ReadFile(repoPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var u clickHouseUsers
	if err := xml.Unmarshal(b, &u); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

// clickHouseReader is the read-only user of deploy/clickhouse/users.xml.
type clickHouseReader struct {
	name, hashVar string
	databases     []string
}

// checkClickHouseUsers checks deploy/clickhouse: the reader's profile is
// read-only, grafana.xml lets that profile (and only it) change the query
// timeout the Grafana plugin sends, and access.xml turns on what that
// constraint needs. It returns the reader.
func checkClickHouseUsers(t *testing.T) clickHouseReader {
	t.Helper()
	users := readClickHouseXML(t, "deploy/clickhouse/users.xml")
	if len(users.Users.List) != 1 {
		t.Fatalf("users.xml: want one user (the reader), got %d", len(users.Users.List))
	}
	u := users.Users.List[0]
	r := clickHouseReader{name: u.XMLName.Local, hashVar: u.Password.FromEnv, databases: u.Databases}
	readonly := false
	for _, p := range users.Profiles.List {
		if p.XMLName.Local == u.Profile {
			readonly = p.Readonly == "1"
		}
	}
	if !readonly || r.hashVar == "" {
		t.Errorf("users.xml: reader %s: want a readonly = 1 profile (got profile %q) and a password hash from the environment", r.name, u.Profile)
	}
	g := readClickHouseXML(t, "deploy/clickhouse/grafana.xml")
	if len(g.Users.List) != 0 || len(g.Profiles.List) != 1 || g.Profiles.List[0].XMLName.Local != u.Profile || g.Profiles.List[0].Readonly != "" {
		t.Fatalf("grafana.xml: want only constraints on the reader's profile %s, got %+v", u.Profile, g)
	}
	cs := g.Profiles.List[0].Constraints.List
	if len(cs) != 1 || cs[0].XMLName.Local != "max_execution_time" || cs[0].ChangeableInReadonly == nil {
		t.Errorf("grafana.xml: want max_execution_time changeable_in_readonly and nothing else, got %+v", cs)
	}
	if a := readClickHouseXML(t, "deploy/clickhouse/access.xml"); a.Access.ReplacePrevious != "true" {
		t.Errorf("access.xml: settings_constraints_replace_previous %q, want true (changeable_in_readonly needs it)", a.Access.ReplacePrevious)
	}
	return r
}

// sha256Hex is the hex SHA-256 of s, as ClickHouse's password_sha256_hex.
func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestDeployShared checks what both deployments use: the Dockerfile's
// starting policy and user, the Grafana provisioning and dashboards, and
// the ClickHouse users.
func TestDeployShared(t *testing.T) {
	t.Run("dockerfile", func(t *testing.T) {
		d := readDockerfile(t)
		if d.user == "" || d.user == "root" || d.user == "0" {
			t.Errorf("the image runs as %q, want an unprivileged user", d.user)
		}
		for dst, src := range d.copies {
			if _, err := os.Stat(repoPath(src)); err != nil {
				t.Errorf("COPY %s %s: %v", src, dst, err)
			}
		}
	})
	t.Run("grafana", func(t *testing.T) { checkGrafana(t) })
	t.Run("clickhouse", func(t *testing.T) { checkClickHouseUsers(t) })
	t.Run("principals", func(t *testing.T) {
		// The trainer connects as admin, each stage as itself.
		for _, p := range append(slices.Clone(stageNames), pipeline.PrincipalAdmin) {
			if !slices.Contains(pipeline.Principals(), p) {
				t.Errorf("%s is not a NATS principal (%v)", p, pipeline.Principals())
			}
		}
	})
}
