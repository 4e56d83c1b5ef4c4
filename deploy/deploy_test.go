// Package deploy_test checks the deployment files under deploy/ against the code and the
// documentation they must agree with: every bridge, NATS and Reducto variable they name is one
// the bridge reads, and the NATS users they configure have exactly the permissions printed in
// docs/security.md. The files themselves are YAML and nats-server configuration; this
// directory holds no Go package besides this test.
package deploy_test

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/natsconf"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// files are the deployment files; each must exist.
var files = []string{
	"compose.yaml",
	".env.example",
	"nats/nats-server.conf",
	"prometheus/prometheus.yml",
	"prometheus/alerts.yaml",
	"grafana/reducto-bridge.json",
	"grafana/provisioning/datasources/prometheus.yaml",
	"grafana/provisioning/dashboards/reducto-bridge.yaml",
	"kubernetes/kustomization.yaml",
	"kubernetes/nats-values.yaml",
	"kubernetes/nats-accounts.yaml",
	"kubernetes/bridge.yaml",
}

// setPasswords sets the variables the nats-server configurations read.
func setPasswords(t *testing.T) {
	for _, u := range []string{"BRIDGE", "PRODUCER", "READER", "OPERATOR"} {
		t.Setenv(u+"_NATS_PASSWORD", "pw-"+u)
	}
}

var (
	varName    = regexp.MustCompile(`\b(?:BRIDGE|NATS|REDUCTO)_[A-Z0-9_]*[A-Z0-9]\b`)
	confVarRef = regexp.MustCompile(`(?m):\s*\$([A-Z][A-Z0-9_]*)\s*$`) // an unquoted value: password: $X
)

// TestVariablesAreKnown: every BRIDGE_*, NATS_* and REDUCTO_* name in a deployment file is a
// variable of package config, or one nats-server.conf reads from the server's environment
// (the users' passwords), or the name of one of the bridge's streams and buckets.
func TestVariablesAreKnown(t *testing.T) {
	known := map[string]string{}
	for _, asset := range []string{subject.TrackStream, subject.EventsStream, subject.ResultsBucket, sweep.Bucket, track.OriginsBucket} {
		known[asset] = "stream or bucket"
	}
	for _, v := range config.Vars() {
		known[v] = "config"
	}
	conf, err := os.ReadFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range confVarRef.FindAllStringSubmatch(string(conf), -1) {
		if slices.Contains(config.Vars(), m[1]) {
			t.Errorf("nats-server.conf reads $%s, which is also a bridge variable", m[1])
		}
		known[m[1]] = "nats-server.conf"
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("deploy/%s: %v", f, err)
			continue
		}
		for _, name := range varName.FindAllString(string(data), -1) {
			seen[name] = true
			if _, ok := known[name]; !ok {
				t.Errorf("deploy/%s names %s, which neither the bridge (config.Vars) nor nats-server.conf reads", f, name)
			}
		}
	}
	for _, must := range []string{"REDUCTO_API_KEY", "NATS_URL", "NATS_USER", "NATS_PASSWORD", "BRIDGE_STREAM_REPLICAS"} {
		if !seen[must] {
			t.Errorf("no deployment file sets %s", must)
		}
	}
}

// configMapEntry returns the block literal of key in a ConfigMap manifest, dedented.
func configMapEntry(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n  "+key+": |\n")
	if !ok {
		t.Fatalf("%s: no %q block literal", path, key)
	}
	var out []string
	indent := ""
	for _, line := range strings.Split(rest, "\n") {
		if strings.TrimSpace(line) == "" {
			out = append(out, "")
			continue
		}
		if indent == "" {
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
		}
		if !strings.HasPrefix(line, indent) {
			break // the literal ends where the indentation does
		}
		out = append(out, strings.TrimPrefix(line, indent))
	}
	return strings.Join(out, "\n")
}

// TestNATSUsersMatchSecurityDoc: the users of deploy/nats/nats-server.conf (compose) and of
// the Kubernetes ConfigMap nats-accounts have exactly the accounts and permissions of
// docs/security.md's configuration, which TestLeastPrivilegePermissions runs the bridge under.
func TestNATSUsersMatchSecurityDoc(t *testing.T) {
	setPasswords(t)
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := natsconf.SecurityBlock(string(doc))
	if err != nil {
		t.Fatalf("docs/security.md: %v", err)
	}
	dir := t.TempDir()
	want, err := natsconf.UsersOf(dir, block)
	if err != nil {
		t.Fatalf("docs/security.md: %v", err)
	}
	if len(want) != 4 {
		t.Fatalf("docs/security.md: %d users, want bridge, producer, reader, operator", len(want))
	}
	compose, err := natsconf.Users("nats/nats-server.conf")
	if err != nil {
		t.Fatalf("deploy/nats/nats-server.conf: %v", err)
	}
	k8s, err := natsconf.UsersOf(dir, configMapEntry(t, "kubernetes/nats-accounts.yaml", "accounts.conf"))
	if err != nil {
		t.Fatalf("deploy/kubernetes/nats-accounts.yaml: %v", err)
	}
	for name, got := range map[string]map[string]natsconf.User{
		"deploy/nats/nats-server.conf":         compose,
		"deploy/kubernetes/nats-accounts.yaml": k8s,
	} {
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			t.Errorf("%s: users %v, docs/security.md has %v", name, g, w)
			continue
		}
		for user, w := range want {
			if !reflect.DeepEqual(got[user], w) {
				g, _ := json.Marshal(got[user])
				w, _ := json.Marshal(w)
				t.Errorf("%s: user %s is granted\n%s\ndocs/security.md grants\n%s", name, user, g, w)
			}
		}
	}

	// What compose relies on: JetStream, and the monitoring port of its health check.
	o, err := server.ProcessConfigFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !o.JetStream || o.HTTPPort != 8222 || o.Port != 4222 {
		t.Errorf("nats-server.conf: jetstream %v, port %d, monitoring port %d; compose.yaml expects JetStream on 4222 and monitoring on 8222",
			o.JetStream, o.Port, o.HTTPPort)
	}
}

// TestPrometheusConfig runs promtool check config on the compose Prometheus configuration
// (which also checks the alert rules it loads), where promtool is installed.
func TestPrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH")
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join("prometheus", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
