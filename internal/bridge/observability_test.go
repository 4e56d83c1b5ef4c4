package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	dto "github.com/prometheus/client_model/go"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/internal/version"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// deployFiles are the files that name the bridge's metrics: the alert rules and the dashboard.
var deployFiles = []string{
	"../../deploy/prometheus/alerts.yaml",
	"../../deploy/grafana/reducto-bridge.json",
}

// busyBridge runs a bridge through every path that records a service-level metric: jobs
// reported by polls (completed, failed), jobs announced by webhook, a rejected webhook, a
// failed command. It returns the bridge, its /metrics text and the jobs of each path.
func busyBridge(t *testing.T) (b *Bridge, metricsText string, polled, hooked []string) {
	t.Helper()
	addr := natstest.FreeAddr(t)
	h := newHarness(t, natstest.Options{}, reductosim.Options{Clock: reductosim.RealClock()})
	cfg := h.config()
	cfg.HTTPAddr = addr
	cfg.PublicURL = "http://" + addr
	cfg.WebhookToken = "hook-token"
	b = h.start(cfg)

	for i := range 3 {
		id := h.sim.Create(reductosim.JobSpec{Duration: 150 * time.Millisecond, NumPages: 1})
		h.track(id, fmt.Sprintf(`{"metadata":{"i":%d}}`, i))
		polled = append(polled, id)
	}
	failed := h.sim.Create(reductosim.JobSpec{Duration: 100 * time.Millisecond, Outcome: reductosim.OutcomeFail, ErrorName: "DOCUMENT_CORRUPT"})
	h.track(failed, "")
	polled = append(polled, failed)
	for i := range 2 {
		req := fmt.Sprintf(`{"endpoint":"parse","body":{"input":"https://x/%d.pdf"}}`, i)
		resp, err := h.nc.Request(subject.Submit("reducto"), []byte(req), 10*time.Second)
		if err != nil || resp.Header.Get(micro.ErrorCodeHeader) != "" {
			t.Fatalf("submit: %v %v", err, resp.Header)
		}
		var r struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			t.Fatal(err)
		}
		hooked = append(hooked, r.JobID)
	}
	for _, id := range hooked {
		h.sim.Cancel(id) // the simulator sends the webhook
	}
	h.collect(append(append([]string{}, polled...), hooked...)...)
	natstest.WaitFor(t, func() bool { return h.sim.Stats().WebhooksDelivered == int64(len(hooked)) })

	resp, err := http.Post("http://"+addr+"/webhooks/reducto?token=wrong", "application/json", strings.NewReader(`{"job_id":"x","status":"Completed"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d, want 401", resp.StatusCode)
	}
	h.cancel(t, `not json`, "400")

	// The events reach the core subscription before the bridge has its PubAck and records.
	natstest.WaitFor(t, func() bool {
		return histogramCount(gather(t, b), "reducto_bridge_webhook_to_event_seconds", nil) == uint64(len(hooked)) &&
			histogramCount(gather(t, b), "reducto_bridge_track_to_event_seconds", nil) == uint64(len(polled)+len(hooked))
	})
	return b, scrape(t, b), polled, hooked
}

func gather(t *testing.T, b *Bridge) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := b.m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func scrape(t *testing.T, b *Bridge) string {
	t.Helper()
	resp, err := http.Get("http://" + b.httpAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// matches reports whether m has every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// histogramCount sums the observations of a histogram's series that have the labels of want.
func histogramCount(mfs map[string]*dto.MetricFamily, name string, want map[string]string) uint64 {
	var n uint64
	for _, m := range mfs[name].GetMetric() {
		if matches(m, want) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func histogramSum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var s float64
	for _, m := range mfs[name].GetMetric() {
		if matches(m, want) {
			s += m.GetHistogram().GetSampleSum()
		}
	}
	return s
}

func gaugeValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	ms := mfs[name].GetMetric()
	if len(ms) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(ms))
	}
	if g := ms[0].GetGauge(); g != nil {
		return g.GetValue()
	}
	return ms[0].GetCounter().GetValue()
}

// TestServiceLevelMetrics: on a busy bridge, every published event is in the service-level
// histograms, the webhook jobs in webhook_to_event, the NATS state and build_info are served,
// and every label value is snake case.
func TestServiceLevelMetrics(t *testing.T) {
	b, text, polled, hooked := busyBridge(t)
	mfs := gather(t, b)
	events := uint64(len(polled) + len(hooked))

	if n := histogramCount(mfs, "reducto_bridge_track_to_event_seconds", map[string]string{"kind": "completed"}); n != 3 {
		t.Errorf("track_to_event{kind=completed} count = %d, want 3", n)
	}
	if n := histogramCount(mfs, "reducto_bridge_track_to_event_seconds", map[string]string{"kind": "failed"}); n != 1 {
		t.Errorf("track_to_event{kind=failed} count = %d, want 1", n)
	}
	// Polled jobs ran 100-150 ms after their track message.
	if s := histogramSum(mfs, "reducto_bridge_track_to_event_seconds", map[string]string{"kind": "completed"}); s < 3*0.15 || s > 3*20 {
		t.Errorf("track_to_event{kind=completed} sum = %.3fs, want 3 jobs of at least 0.15s each", s)
	}
	// Every terminal answer carried created_at and duration: one lag each, bounded by the
	// time the test ran.
	if n := histogramCount(mfs, "reducto_bridge_detection_lag_seconds", nil); n != events {
		t.Errorf("detection_lag count = %d, want %d", n, events)
	}
	if s := histogramSum(mfs, "reducto_bridge_detection_lag_seconds", nil); s < 0 || s > float64(events)*20 {
		t.Errorf("detection_lag sum = %.3fs", s)
	}
	if n := histogramCount(mfs, "reducto_bridge_polls_per_job", nil); n != events {
		t.Errorf("polls_per_job count = %d, want %d", n, events)
	}
	// A webhook job costs one GET; a polled one at least one.
	if s := histogramSum(mfs, "reducto_bridge_polls_per_job", map[string]string{"kind": "cancelled"}); s != float64(len(hooked)) {
		t.Errorf("polls_per_job{kind=cancelled} sum = %v, want %d (one GET per webhook job)", s, len(hooked))
	}
	if s := histogramSum(mfs, "reducto_bridge_polls_per_job", map[string]string{"kind": "completed"}); s < 3 {
		t.Errorf("polls_per_job{kind=completed} sum = %v, want at least 3", s)
	}
	if n := histogramCount(mfs, "reducto_bridge_webhook_to_event_seconds", nil); n != uint64(len(hooked)) {
		t.Errorf("webhook_to_event count = %d, want %d", n, len(hooked))
	}
	if s := histogramSum(mfs, "reducto_bridge_webhook_to_event_seconds", nil); s <= 0 || s > float64(len(hooked))*10 {
		t.Errorf("webhook_to_event sum = %.6fs", s)
	}
	for _, name := range []string{"reducto_bridge_track_to_event_seconds", "reducto_bridge_detection_lag_seconds", "reducto_bridge_polls_per_job", "reducto_bridge_webhook_to_event_seconds"} {
		if n := histogramCount(mfs, name, nil); n > 0 {
			t.Logf("%s: %d observations, mean %.4g", name, n, histogramSum(mfs, name, nil)/float64(n))
		}
	}
	if v := gaugeValue(t, mfs, "reducto_bridge_nats_connected"); v != 1 {
		t.Errorf("nats_connected = %v, want 1", v)
	}
	if v := gaugeValue(t, mfs, "reducto_bridge_nats_reconnects_total"); v != 0 {
		t.Errorf("nats_reconnects_total = %v, want 0", v)
	}
	goVersion, _ := version.Build()
	want := fmt.Sprintf(`reducto_bridge_build_info{goversion=%q,revision=`, goVersion)
	if !strings.Contains(text, want) || !strings.Contains(text, fmt.Sprintf(`version=%q} 1`, version.Version)) || !strings.HasPrefix(goVersion, "go") {
		t.Errorf("/metrics lacks %s...,version=%q} 1 (go %s)", want, version.Version, runtime.Version())
	}
	if !strings.Contains(text, `reducto_bridge_reducto_requests_total{code="200",op="get_job"}`) ||
		!strings.Contains(text, `reducto_bridge_reducto_requests_total{code="200",op="submit_parse"}`) {
		t.Error(`/metrics lacks op="get_job" or op="submit_parse"`)
	}

	snake := regexp.MustCompile(`^[a-z0-9_]*$`)
	for name, mf := range mfs {
		if name == "reducto_bridge_build_info" || !strings.HasPrefix(name, "reducto_bridge_") {
			continue // build_info's values are versions; go_* and process_* are not ours
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !snake.MatchString(lp.GetValue()) {
					t.Errorf("%s{%s=%q}: label value not in snake case", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if strings.Contains(text, testKey) || strings.Contains(text, "hook-token") {
		t.Error("/metrics shows a secret")
	}
}

// metricName finds the bridge's metric names in a rule or dashboard file.
var metricName = regexp.MustCompile(`reducto_bridge_[a-z_]+`)

// TestDeployFilesNameRealMetrics: every metric the alert rules and the dashboard query exists
// on a busy bridge (a histogram's _bucket, _sum and _count series by its family).
func TestDeployFilesNameRealMetrics(t *testing.T) {
	b, _, _, _ := busyBridge(t)
	mfs := gather(t, b)
	for _, f := range deployFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := metricName.FindAllString(string(data), -1)
		if len(names) < 5 {
			t.Errorf("%s names %d metrics", f, len(names))
		}
		for _, n := range names {
			family := n
			if _, ok := mfs[n]; !ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, found := strings.CutSuffix(n, suffix); found && mfs[base].GetType() == dto.MetricType_HISTOGRAM {
						family = base
					}
				}
			}
			if _, ok := mfs[family]; !ok {
				t.Errorf("%s: metric %s does not exist", filepath.Base(f), n)
			}
		}
	}
	var dash map[string]any
	data, _ := os.ReadFile("../../deploy/grafana/reducto-bridge.json")
	if err := json.Unmarshal(data, &dash); err != nil || len(dash["panels"].([]any)) == 0 {
		t.Errorf("dashboard: %v", err)
	}
}

// TestPromtool runs `promtool check rules` on the alert rules and `promtool check metrics` on a
// busy bridge's /metrics, where promtool is on PATH.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (go install github.com/prometheus/prometheus/cmd/promtool@latest); TestDeployFilesNameRealMetrics checks the metric names meanwhile")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, promtool, "check", "rules", deployFiles[0]).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	// Every dashboard query parses as PromQL.
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile(deployFiles[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			queries++
			if out, err := exec.CommandContext(ctx, promtool, "--experimental", "promql", "format", q.Expr).CombinedOutput(); err != nil {
				t.Errorf("dashboard panel %q: %s: %v\n%s", p.Title, q.Expr, err, out)
			}
		}
	}
	if queries < 10 {
		t.Errorf("dashboard has %d queries", queries)
	}
	_, text, _, _ := busyBridge(t)
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(text))
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestNATSConnectionMetrics: nats_connected follows an outage of the server, and the
// reconnection counts in nats_reconnects_total.
func TestNATSConnectionMetrics(t *testing.T) {
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	dir := t.TempDir()
	s := natstest.RunServer(t, natstest.Options{StoreDir: dir})
	port := s.Addr().(*net.TCPAddr).Port
	cfg := h.config()
	cfg.NATSURL = s.ClientURL()
	b := h.start(cfg)
	value := func(name string) float64 { return gaugeValue(t, gather(t, b), name) }
	if c, r := value("reducto_bridge_nats_connected"), value("reducto_bridge_nats_reconnects_total"); c != 1 || r != 0 {
		t.Fatalf("before the outage: connected %v, reconnects %v; want 1, 0", c, r)
	}
	s.Shutdown()
	s.WaitForShutdown()
	natstest.WaitFor(t, func() bool { return value("reducto_bridge_nats_connected") == 0 })
	natstest.RunServer(t, natstest.Options{StoreDir: dir, Port: port})
	natstest.WaitFor(t, func() bool { return value("reducto_bridge_nats_connected") == 1 })
	if r := value("reducto_bridge_nats_reconnects_total"); r != 1 {
		t.Errorf("reconnects = %v after one outage, want 1", r)
	}
}
