package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// TestSignedWebhookReplay: the same Svix-signed delivery posted twice costs one GET /job
// against the simulator; another svix-id for the same job costs one more.
func TestSignedWebhookReplay(t *testing.T) {
	key := []byte("webhook-signing-key-0123456789ab")
	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.WebhookSecret = config.Secret("whsec_" + base64.StdEncoding.EncodeToString(key))
	// No poll of the tracked job during the test: only webhooks cost GETs.
	cfg.PollInitialInterval, cfg.PollMaxInterval, cfg.WebhookPollInterval = time.Hour, time.Hour, time.Hour
	b := h.start(cfg)
	id := h.sim.Create(reductosim.JobSpec{Duration: time.Hour}) // pending on the simulator's clock
	h.track(id, "")

	body := `{"status":"Pending","job_id":"` + id + `"}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	post := func(svixID string) {
		t.Helper()
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(svixID + "." + ts + "." + body))
		req, err := http.NewRequest(http.MethodPost, "http://"+b.HTTPAddr().String()+"/webhooks/reducto", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("svix-id", svixID)
		req.Header.Set("svix-timestamp", ts)
		req.Header.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook %s: status %d, want 200", svixID, resp.StatusCode)
		}
	}
	gets := func() int64 { return h.sim.Stats().Jobs[id].Gets }

	post("msg_a")
	if n := gets(); n != 1 {
		t.Fatalf("first delivery: %d GETs, want 1", n)
	}
	post("msg_a")
	if n := gets(); n != 1 {
		t.Errorf("replayed delivery: %d GETs, want still 1", n)
	}
	post("msg_b")
	if n := gets(); n != 2 {
		t.Errorf("another svix-id for the job: %d GETs, want 2", n)
	}
	if !strings.Contains(h.logs.String(), "replayed delivery") {
		t.Errorf("the replay is not logged:\n%s", h.logs.String())
	}
}
