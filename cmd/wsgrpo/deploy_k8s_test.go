package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgrpo/wsgrpo/model/labeler"
	"github.com/wsgrpo/wsgrpo/pipeline"
)

// k8sObject is the part of the Kubernetes API (and of kustomize's
// Kustomization) that deploy/k8s uses; decoding refuses any other key, so
// a misspelt field fails the test (extend these types for a new one).
type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	Spec       k8sSpec           `yaml:"spec"`
	// Kustomization.
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
}

// k8sMeta is an object's or a pod template's metadata.
type k8sMeta struct {
	Name string `yaml:"name"`
	// Namespace is set by the kustomization, not in the files.
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// k8sSpec holds the spec fields of the kinds deploy/k8s uses: Deployment,
// Job and PersistentVolumeClaim.
type k8sSpec struct {
	Replicas *int `yaml:"replicas"`
	Strategy *struct {
		Type string `yaml:"type"`
	} `yaml:"strategy"`
	Selector *struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template                *k8sPodTemplate `yaml:"template"`
	Parallelism             *int            `yaml:"parallelism"`
	Completions             *int            `yaml:"completions"`
	BackoffLimit            *int            `yaml:"backoffLimit"`
	TTLSecondsAfterFinished *int            `yaml:"ttlSecondsAfterFinished"`
	AccessModes             []string        `yaml:"accessModes"`
	StorageClassName        *string         `yaml:"storageClassName"`
	Resources               *k8sResources   `yaml:"resources"`
}

// k8sPodTemplate is a workload's pod template.
type k8sPodTemplate struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		RestartPolicy                 string `yaml:"restartPolicy"`
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
		SecurityContext               *struct {
			RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
			RunAsUser      *int  `yaml:"runAsUser"`
			RunAsGroup     *int  `yaml:"runAsGroup"`
			FSGroup        *int  `yaml:"fsGroup"`
			SeccompProfile *struct {
				Type string `yaml:"type"`
			} `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		NodeSelector   map[string]string `yaml:"nodeSelector"`
		Tolerations    []k8sToleration   `yaml:"tolerations"`
		InitContainers []k8sContainer    `yaml:"initContainers"`
		Containers     []k8sContainer    `yaml:"containers"`
		Volumes        []k8sVolume       `yaml:"volumes"`
	} `yaml:"spec"`
}

// k8sContainer is a container or init container.
type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports          []k8sPort `yaml:"ports"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	Resources       k8sResources `yaml:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

// k8sToleration is a pod's toleration of a node taint.
type k8sToleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Value    string `yaml:"value"`
	Effect   string `yaml:"effect"`
}

// k8sPort is a container port.
type k8sPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

// k8sProbe is a readiness or liveness probe.
type k8sProbe struct {
	TCPSocket *struct {
		Port string `yaml:"port"`
	} `yaml:"tcpSocket"`
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
}

// k8sResources are requests and limits (quantities as written).
type k8sResources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

// k8sItem is one key of a ConfigMap or Secret projected into a volume.
type k8sItem struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

// k8sVolume is a pod volume.
type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string    `yaml:"name"`
		Items []k8sItem `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string    `yaml:"secretName"`
		DefaultMode *int      `yaml:"defaultMode"`
		Items       []k8sItem `yaml:"items"`
	} `yaml:"secret"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"persistentVolumeClaim"`
}

// k8sDoc is a decoded document with the file it came from.
type k8sDoc struct {
	file string
	k8sObject
}

// k8sAPIVersions are the kinds deploy/k8s may hold, with their API group.
var k8sAPIVersions = map[string]string{
	"Kustomization": "kustomize.config.k8s.io/v1beta1", "Namespace": "v1", "ConfigMap": "v1",
	"PersistentVolumeClaim": "v1", "Deployment": "apps/v1", "Job": "batch/v1",
}

// readK8s decodes every YAML document under deploy/k8s.
func readK8s(t *testing.T) []k8sDoc {
	t.Helper()
	var docs []k8sDoc
	err := filepath.WalkDir(repoPath("deploy/k8s"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(p, ".yaml") {
			return fmt.Errorf("%s: not a .yaml manifest", p)
		}
		rel, _ := filepath.Rel(repoPath("deploy/k8s"), p)
		for _, o := range readYAML[k8sObject](t, "deploy/k8s/"+filepath.ToSlash(rel)) {
			docs = append(docs, k8sDoc{file: filepath.ToSlash(rel), k8sObject: o})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// k8sContainerRun is a wsgrpo container of a workload with what it runs.
type k8sContainerRun struct {
	workload k8sDoc
	c        k8sContainer
	stages   []string
	cfg      Config
	// secretEnv maps variables to the Secret and key they come from.
	secretEnv map[string]string
}

// mountOf returns the pod volume mounted at the directory holding p in c,
// and p's path inside that volume.
func mountOf(w k8sDoc, c k8sContainer, p string) (k8sVolume, string, bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(p, m.MountPath+"/")
		if m.SubPath != "" {
			rel, ok = m.SubPath, p == m.MountPath
		}
		if !ok {
			continue
		}
		for _, v := range w.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return v, rel, true
			}
		}
	}
	return k8sVolume{}, "", false
}

// k8sContainers parses every wsgrpo container of the workloads: command
// line, and configuration from the ConfigMap it mounts at --config and
// its environment. A file a variable names in a mounted Secret is a
// temporary stand-in (the loader checks that it exists); a value from a
// Secret is a stand-in DSN.
func k8sContainers(t *testing.T, docs []k8sDoc) []k8sContainerRun {
	t.Helper()
	configMaps := map[string]map[string]string{}
	for _, d := range docs {
		if d.Kind == "ConfigMap" {
			configMaps[d.Metadata.Name] = d.Data
		}
	}
	var out []k8sContainerRun
	for _, w := range docs {
		if w.Spec.Template == nil {
			continue
		}
		for _, c := range w.Spec.Template.Spec.Containers {
			if !strings.HasPrefix(c.Image, "wsgrpo:") || len(c.Command) > 0 {
				t.Fatalf("%s/%s: want the wsgrpo image with its entrypoint, got %s %q", w.file, c.Name, c.Image, c.Command)
			}
			cmd, pos, err := parseCommandLine(c.Args)
			if err != nil {
				t.Fatalf("%s/%s: args %q: %v", w.file, c.Name, c.Args, err)
			}
			stages, _ := commandStages(cmd, pos)
			// A stage reads the run's ConfigMap; a tool may do without.
			file, _ := cmd.Flags().GetString("config")
			cfgFile := ""
			if file != "" || len(stages) > 0 {
				vol, key, ok := mountOf(w, c, file)
				if !ok || vol.ConfigMap == nil || configMaps[vol.ConfigMap.Name][key] == "" {
					t.Fatalf("%s/%s: --config %q is not a key of a ConfigMap of deploy/k8s", w.file, c.Name, file)
				}
				cfgFile = filepath.Join(t.TempDir(), "run.yaml")
				if err := os.WriteFile(cfgFile, []byte(configMaps[vol.ConfigMap.Name][key]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env, secretEnv := map[string]string{}, map[string]string{}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					secretEnv[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
					env[e.Name] = "clickhouse://user:password@clickhouse:9000/wsgrpo"
				case strings.HasPrefix(e.Value, "/etc/"):
					v, rel, ok := mountOf(w, c, e.Value)
					if !ok || v.Secret == nil || !slices.ContainsFunc(v.Secret.Items, func(i k8sItem) bool { return i.Path == rel }) {
						t.Fatalf("%s/%s: %s=%s is not a file of a mounted Secret", w.file, c.Name, e.Name, e.Value)
					}
					stand := filepath.Join(t.TempDir(), path.Base(e.Value))
					if err := os.WriteFile(stand, nil, 0o600); err != nil {
						t.Fatal(err)
					}
					env[e.Name] = stand
				default:
					env[e.Name] = e.Value
				}
			}
			cfg, err := loadDeployConfig(t, cmd, cfgFile, env)
			if err != nil {
				t.Fatalf("%s/%s: configuration with its environment: %v", w.file, c.Name, err)
			}
			out = append(out, k8sContainerRun{workload: w, c: c, stages: stages, cfg: cfg, secretEnv: secretEnv})
		}
	}
	return out
}

// replicas is the number of pods a workload runs at once.
func (d k8sDoc) replicas() int {
	switch {
	case d.Kind == "Deployment" && d.Spec.Replicas != nil:
		return *d.Spec.Replicas
	case d.Kind == "Job" && d.Spec.Parallelism != nil:
		return *d.Spec.Parallelism
	}
	return 1
}

// TestDeployKubernetes checks deploy/k8s: every document against the
// fields these tests know, the kustomization, every wsgrpo container's
// command and configuration, a Deployment per stage with one learner, the
// sampler's GPU, resources, metrics annotations, credentials from Secrets
// and the run directory shared with the labelers.
func TestDeployKubernetes(t *testing.T) {
	docs := readK8s(t)
	runs := k8sContainers(t, docs)
	applied := map[string]bool{}
	var kust k8sDoc
	for _, d := range docs {
		if d.Kind == "Kustomization" {
			kust = d
		}
	}
	for _, r := range kust.Resources {
		applied[r] = true
	}

	t.Run("documents", func(t *testing.T) {
		names := map[string]string{}
		for _, d := range docs {
			if want, ok := k8sAPIVersions[d.Kind]; !ok || d.APIVersion != want {
				t.Errorf("%s: %s %s: want one of %v", d.file, d.APIVersion, d.Kind, k8sAPIVersions)
			}
			if d.Kind == "Kustomization" {
				continue
			}
			if d.Metadata.Namespace != "" {
				t.Errorf("%s: %s sets its namespace; the kustomization does", d.file, d.Metadata.Name)
			}
			key := d.Kind + "/" + d.Metadata.Name
			if d.Metadata.Name == "" || names[key] != "" {
				t.Errorf("%s: %s is unnamed or also in %s", d.file, key, names[key])
			}
			names[key] = d.file
			if d.Kind == "Deployment" {
				if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 || d.Spec.Template == nil {
					t.Fatalf("%s: a Deployment without selector or pod template", d.file)
				}
				for k, v := range d.Spec.Selector.MatchLabels {
					if d.Spec.Template.Metadata.Labels[k] != v {
						t.Errorf("%s: selector %s=%s does not match the pod template", d.file, k, v)
					}
				}
			}
		}
		for _, d := range docs {
			if d.Kind == "Namespace" && d.Metadata.Name != kust.Namespace {
				t.Errorf("namespace %s is not the kustomization's %s", d.Metadata.Name, kust.Namespace)
			}
			if d.file != "kustomization.yaml" && !applied[d.file] && !strings.HasPrefix(d.file, "ondemand/") {
				t.Errorf("%s is neither in kustomization.yaml nor under ondemand/", d.file)
			}
		}
	})

	t.Run("kustomize", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl not installed: kustomize build not checked")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, kubectl, "kustomize", repoPath("deploy/k8s")).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize deploy/k8s: %v", err)
		}
		built, err := decodeYAML[k8sObject](out)
		if err != nil || len(built) != len(kust.Resources) {
			t.Fatalf("kubectl kustomize gave %d objects (%v), want %d", len(built), err, len(kust.Resources))
		}
		for _, o := range built {
			if o.Kind != "Namespace" && o.Metadata.Namespace != kust.Namespace {
				t.Errorf("%s %s is in namespace %q, not %s", o.Kind, o.Metadata.Name, o.Metadata.Namespace, kust.Namespace)
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		for _, r := range runs {
			if r.cfg.ClickHouseDSN != "" && r.secretEnv["WSGRPO_CLICKHOUSE_DSN"] == "" {
				t.Errorf("%s: a ClickHouse DSN outside a Secret", r.workload.file)
			}
			if _, port, err := net.SplitHostPort(strings.TrimPrefix(r.cfg.NATS, "nats://")); len(r.stages) > 0 && (err != nil || port != "4222") {
				t.Errorf("%s: nats %q", r.workload.file, r.cfg.NATS)
			}
			if slices.Contains(r.stages, "learner") {
				checkImageModel(t, r.cfg)
			}
		}
	})

	t.Run("stages", func(t *testing.T) {
		own, learners := map[string]int{}, 0
		for _, r := range runs {
			w := r.workload
			if len(r.stages) == 1 && w.Kind == "Deployment" {
				own[r.stages[0]]++
			}
			if slices.Contains(r.stages, "learner") && applied[w.file] {
				learners += w.replicas()
				if w.replicas() > 1 || (w.Kind == "Deployment" && (w.Spec.Strategy == nil || w.Spec.Strategy.Type != "Recreate")) {
					t.Errorf("%s: the learner with %d replicas, strategy %v: want at most 1, Recreate", w.file, w.replicas(), w.Spec.Strategy)
				}
			}
			if w.Kind == "Job" && len(r.stages) > 0 && (w.Spec.Template.Spec.RestartPolicy != "OnFailure" || w.Spec.BackoffLimit == nil) {
				t.Errorf("%s: a training Job must restart failed pods (restartPolicy OnFailure, backoffLimit)", w.file)
			}
		}
		for _, st := range stageNames {
			if own[st] != 1 {
				t.Errorf("stage %s: %d Deployments, want 1", st, own[st])
			}
		}
		if learners != 1 {
			t.Errorf("the kustomization runs %d learners, want exactly 1", learners)
		}
	})

	t.Run("resources", func(t *testing.T) {
		user, _ := strconv.Atoi(readDockerfile(t).user)
		for _, w := range docs {
			if w.Spec.Template == nil {
				continue
			}
			ps := w.Spec.Template.Spec
			if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != user {
				t.Errorf("%s: want runAsNonRoot and runAsUser %d, the image's user", w.file, user)
			}
			for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
				r := c.Resources
				if r.Requests["cpu"] == "" || r.Requests["memory"] == "" || r.Limits["memory"] == "" {
					t.Errorf("%s/%s: resources %+v: want cpu and memory requests and a memory limit", w.file, c.Name, r)
				}
				if s := c.SecurityContext; s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
					t.Errorf("%s/%s: want allowPrivilegeEscalation false and every capability dropped", w.file, c.Name)
				}
				gpu := r.Limits["nvidia.com/gpu"]
				sampler := len(c.Args) > 1 && c.Args[0] == "stage" && c.Args[1] == "sampler"
				if sampler != (gpu == "1") || (r.Requests["nvidia.com/gpu"] != "" && r.Requests["nvidia.com/gpu"] != gpu) {
					t.Errorf("%s/%s: nvidia.com/gpu limit %q: want 1 for the sampler and none elsewhere", w.file, c.Name, gpu)
				}
			}
		}
	})

	t.Run("gpu", func(t *testing.T) {
		for _, r := range runs {
			if !slices.Equal(r.stages, []string{"sampler"}) {
				if r.cfg.ORT.Provider != "cpu" {
					t.Errorf("%s: ort.provider %q on a pod without a GPU", r.workload.file, r.cfg.ORT.Provider)
				}
				continue
			}
			if r.cfg.ORT.Provider != "cuda" || !r.cfg.ORT.RequireCUDA {
				t.Errorf("%s: ort %+v: want provider cuda with require_cuda", r.workload.file, r.cfg.ORT)
			}
			if !slices.ContainsFunc(r.workload.Spec.Template.Spec.Tolerations, func(tl k8sToleration) bool { return tl.Key == "nvidia.com/gpu" }) {
				t.Errorf("%s: no toleration of GPU nodes' nvidia.com/gpu taint", r.workload.file)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, r := range runs {
			w := r.workload
			if w.Kind != "Deployment" {
				continue
			}
			_, port, err := net.SplitHostPort(r.cfg.Metrics)
			a := w.Spec.Template.Metadata.Annotations
			if err != nil || a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
				t.Errorf("%s: metrics %q against annotations %v", w.file, r.cfg.Metrics, a)
			}
			if !slices.ContainsFunc(r.c.Ports, func(p k8sPort) bool { return p.Name == "metrics" && strconv.Itoa(p.ContainerPort) == port }) {
				t.Errorf("%s: no container port \"metrics\" %s", w.file, port)
			}
		}
	})

	t.Run("credentials", func(t *testing.T) {
		readme, err := os.ReadFile(repoPath("deploy/README.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			user := pipeline.PrincipalAdmin
			if len(r.stages) == 1 {
				user = r.stages[0]
			}
			if len(r.stages) == 0 {
				user = ""
			}
			nkey := r.cfg.NATSAuth.NKey
			if (user == "") != (nkey == "") || (user != "" && path.Base(nkey) != user+".nk") || (user != "" && r.cfg.NATSAuth.TLSCA == "") {
				t.Errorf("%s: NATS nkey %q and CA %q: want %s.nk over TLS", r.workload.file, nkey, r.cfg.NATSAuth.TLSCA, user)
			}
			for _, v := range r.workload.Spec.Template.Spec.Volumes {
				if s := v.Secret; s != nil && (len(s.Items) != 1 || (strings.HasSuffix(s.Items[0].Key, ".nk") && s.Items[0].Key != user+".nk")) {
					t.Errorf("%s: Secret %s projects %v: want the pod's own key only", r.workload.file, s.SecretName, s.Items)
				}
				if s := v.Secret; s != nil && !strings.Contains(string(readme), s.SecretName) {
					t.Errorf("%s: Secret %s is not in deploy/README.md", r.workload.file, s.SecretName)
				}
			}
			for name, ref := range r.secretEnv {
				secret, key, _ := strings.Cut(ref, "/")
				if !strings.Contains(string(readme), secret) || !strings.Contains(string(readme), key) {
					t.Errorf("%s: %s from Secret %s key %s, which deploy/README.md does not describe", r.workload.file, name, secret, key)
				}
			}
			writes := slices.Contains(r.stages, "logger") || slices.Contains(r.stages, "learner")
			want := map[bool]string{true: "wsgrpo-clickhouse/writer-dsn", false: ""}[writes]
			if len(r.stages) == 0 {
				want = "wsgrpo-clickhouse/reader-dsn" // a query tool
			}
			if r.secretEnv["WSGRPO_CLICKHOUSE_DSN"] != want {
				t.Errorf("%s: ClickHouse from %q, want %q", r.workload.file, r.secretEnv["WSGRPO_CLICKHOUSE_DSN"], want)
			}
		}
	})

	t.Run("run-directory", func(t *testing.T) {
		var runDir string
		var claim string
		for _, r := range runs {
			if !slices.Contains(r.stages, "learner") {
				continue
			}
			v, _, ok := mountOf(r.workload, r.c, path.Join(r.cfg.RunDir(), "x"))
			if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ReadOnly || (runDir != "" && runDir != r.cfg.RunDir()) {
				t.Errorf("%s: run directory %s is not on the shared writable claim", r.workload.file, r.cfg.RunDir())
				continue
			}
			runDir, claim = r.cfg.RunDir(), v.PersistentVolumeClaim.ClaimName
		}
		for _, r := range runs {
			if !slices.Equal(r.stages, []string{"labeler"}) || !needsScorer(r.cfg.Shaping) {
				continue
			}
			want := path.Join(runDir, "labeler")
			v, _, ok := mountOf(r.workload, r.c, path.Join(want, labeler.MetaFile))
			if r.cfg.Labeler.Artifact != want || !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim {
				t.Errorf("%s: labeler.artifact %q: want %s on claim %s", r.workload.file, r.cfg.Labeler.Artifact, want, claim)
			}
			waits := false
			for _, ic := range r.workload.Spec.Template.Spec.InitContainers {
				if len(ic.Command) == 3 && ic.Command[0] == "/bin/sh" && ic.Command[1] == "-c" {
					m := waitScript.FindStringSubmatch(ic.Command[2])
					waits = waits || (m != nil && m[1] == path.Join(want, labeler.MetaFile))
				}
			}
			if !waits {
				t.Errorf("%s: no init container waits for %s", r.workload.file, path.Join(want, labeler.MetaFile))
			}
		}
		found := false
		for _, d := range docs {
			if d.Kind == "PersistentVolumeClaim" && d.Metadata.Name == claim {
				found = applied[d.file]
				if !slices.Contains(d.Spec.AccessModes, "ReadWriteMany") {
					t.Errorf("claim %s: access modes %v: the labeler pods read it beside the trainer: want ReadWriteMany", claim, d.Spec.AccessModes)
				}
			}
		}
		if !found {
			t.Errorf("the run directory's claim %q is not a PersistentVolumeClaim of the kustomization", claim)
		}
	})
}
