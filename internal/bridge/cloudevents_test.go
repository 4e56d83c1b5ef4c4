package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	cebinding "github.com/cloudevents/sdk-go/v2/binding"
	ceformat "github.com/cloudevents/sdk-go/v2/binding/format"
	cespec "github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/nats-io/nats.go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// realEvents runs a bridge against the simulator until it has published one event of every
// kind, and a completed one whose result went to the object store (result_ref); it returns the
// event messages as a subscriber received them, by name.
func realEvents(t *testing.T) (*harness, map[string]*nats.Msg) {
	t.Helper()
	h := newHarness(t, natstest.Options{MaxPayload: 256 << 10}, reductosim.Options{})
	cfg := h.config()
	cfg.JobTTL = 2 * time.Second
	h.start(cfg)
	ids := map[string]string{
		"completed":  h.sim.Create(reductosim.JobSpec{Duration: time.Second, NumPages: 3}),
		"failed":     h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeFail, ErrorName: "DOCUMENT_CORRUPT"}),
		"cancelled":  h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever}),
		"expired":    h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeNever}),
		"result_ref": h.sim.Create(reductosim.JobSpec{ResultSize: 300 << 10}),
		"url_result": h.sim.Create(reductosim.JobSpec{Outcome: reductosim.OutcomeCompleteURL, ResultSize: 300 << 10}),
		"not_found":  "never-existed",
	}
	h.sim.Cancel(ids["cancelled"])
	for name, id := range ids {
		h.track(id, fmt.Sprintf(`{"metadata":{"case":%q}}`, name))
	}
	h.clock.Advance(2 * time.Second)
	byID := h.collect(ids["completed"], ids["failed"], ids["cancelled"], ids["expired"], ids["result_ref"], ids["url_result"], ids["not_found"])
	out := map[string]*nats.Msg{}
	for name, id := range ids {
		out[name] = byID[id]
	}
	if ev := decode(t, out["result_ref"]); ev.ResultRef == nil {
		t.Fatalf("the large result was not moved to the object store: %s", out["result_ref"].Data[:200])
	}
	// BRIDGE_CAPTURE_URL_RESULTS is on by default: Reducto's url result, and its content.
	if ev := decode(t, out["url_result"]); ev.ResultRef == nil || !strings.Contains(string(ev.Result), `"type":"url"`) {
		t.Fatalf("the url result was not captured next to Reducto's result: %.300s", out["url_result"].Data)
	}
	return h, out
}

// natsJetStreamMessage is the message reader of the CloudEvents Go SDK's NATS JetStream
// protocol binding (github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2, message.go at
// sdk-go commit d6f4030, Apache-2.0), reproduced line for line because the Go module proxy
// here does not serve that module; sdk-go/v2's binding, spec and event packages, which do the
// decoding and validation, are the real dependency.
type natsJetStreamMessage struct {
	Msg      *nats.Msg
	encoding cebinding.Encoding
}

var ceSpecs = cespec.WithPrefix("ce-")

func newNATSJetStreamMessage(msg *nats.Msg) *natsJetStreamMessage {
	encoding := cebinding.EncodingStructured
	if msg.Header != nil && msg.Header.Get(ceSpecs.PrefixedSpecVersionName()) != "" {
		encoding = cebinding.EncodingBinary
	}
	return &natsJetStreamMessage{Msg: msg, encoding: encoding}
}

func (m *natsJetStreamMessage) ReadEncoding() cebinding.Encoding { return m.encoding }

func (m *natsJetStreamMessage) ReadStructured(ctx context.Context, encoder cebinding.StructuredWriter) error {
	if m.encoding != cebinding.EncodingStructured {
		return cebinding.ErrNotStructured
	}
	return encoder.SetStructuredEvent(ctx, ceformat.JSON, bytes.NewReader(m.Msg.Data))
}

func (m *natsJetStreamMessage) ReadBinary(ctx context.Context, encoder cebinding.BinaryWriter) error {
	if m.encoding != cebinding.EncodingBinary {
		return cebinding.ErrNotBinary
	}
	version := m.GetVersion()
	if version == nil {
		return cebinding.ErrNotBinary
	}
	var err error
	for k, v := range m.Msg.Header {
		headerValue := v[0]
		if strings.HasPrefix(k, "ce-") {
			if attr := version.Attribute(k); attr != nil {
				err = encoder.SetAttribute(attr, headerValue)
			} else {
				err = encoder.SetExtension(strings.TrimPrefix(k, "ce-"), headerValue)
			}
		} else if k == "content-type" { // sic: the binding matches only the lower-case name
			err = encoder.SetAttribute(version.AttributeFromKind(cespec.DataContentType), headerValue)
		}
		if err != nil {
			return err
		}
	}
	if m.Msg.Data != nil {
		err = encoder.SetData(bytes.NewBuffer(m.Msg.Data))
	}
	return err
}

func (m *natsJetStreamMessage) Finish(error) error { return nil }

func (m *natsJetStreamMessage) GetAttribute(kind cespec.Kind) (cespec.Attribute, any) {
	key := "ce-" + kind.String()
	if m.Msg.Header != nil {
		if v := m.Msg.Header.Get(key); v != "" {
			return m.GetVersion().Attribute(key), v
		}
	}
	return nil, nil
}

func (m *natsJetStreamMessage) GetExtension(name string) any {
	if m.Msg.Header != nil {
		if v := m.Msg.Header.Get("ce-" + name); v != "" {
			return v
		}
	}
	return nil
}

func (m *natsJetStreamMessage) GetVersion() cespec.Version {
	if m.Msg.Header == nil {
		return nil
	}
	v := m.Msg.Header.Get(ceSpecs.PrefixedSpecVersionName())
	if v == "" {
		return nil
	}
	return ceSpecs.Version(v)
}

// TestCloudEventsSDKDecodesRealEvents decodes the events of a real run with the CloudEvents Go
// SDK, as a consumer using its NATS JetStream binding does, and checks every attribute.
func TestCloudEventsSDKDecodesRealEvents(t *testing.T) {
	h, msgs := realEvents(t)
	wantKind := map[string]string{"completed": "completed", "failed": "failed", "cancelled": "cancelled",
		"expired": "expired", "result_ref": "completed", "url_result": "completed", "not_found": "failed"}
	for name, m := range msgs {
		t.Run(name, func(t *testing.T) {
			ours := decode(t, m)
			msg := newNATSJetStreamMessage(m)
			if msg.ReadEncoding() != cebinding.EncodingBinary {
				t.Fatalf("encoding %v, want binary", msg.ReadEncoding())
			}
			ce, err := cebinding.ToEvent(t.Context(), msg)
			if err != nil {
				t.Fatalf("the SDK cannot decode the event: %v", err)
			}
			if err := ce.Validate(); err != nil {
				t.Errorf("the SDK finds the event invalid: %v", err)
			}
			kind := wantKind[name]
			checks := []struct{ attr, got, want string }{
				{"specversion", ce.SpecVersion(), "1.0"},
				{"id", ce.ID(), ours.JobID + ":" + kind},
				{"source", ce.Source(), "reducto-bridge"},
				{"type", ce.Type(), "ai.reducto.job." + kind},
				{"subject", ce.Subject(), ours.JobID},
				{"datacontenttype", ce.DataContentType(), "application/json"},
				{"dataschema", ce.DataSchema(), event.DataSchema},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.attr, c.got, c.want)
				}
			}
			if string(ours.Kind) != kind || m.Subject != subject.Event("reducto", kind, ours.JobID) {
				t.Errorf("kind %s on %s, want %s", ours.Kind, m.Subject, kind)
			}
			if !ce.Time().Equal(ours.ObservedAt) || ce.Time().IsZero() {
				t.Errorf("time = %v, want observed_at %v", ce.Time(), ours.ObservedAt)
			}
			if exts := ce.Extensions(); len(exts) != 0 {
				t.Errorf("unexpected extensions %v", exts)
			}
			if !bytes.Equal(ce.Data(), m.Data) {
				t.Errorf("data differs from the message body")
			}
			var body map[string]any
			if err := ce.DataAs(&body); err != nil || body["job_id"] != ours.JobID || body["kind"] != kind {
				t.Errorf("DataAs: %v, %v", body["job_id"], err)
			}
			var meta struct{ Case string }
			if err := json.Unmarshal(ours.Metadata, &meta); err != nil || meta.Case != name {
				t.Errorf("metadata %s, want case %q", ours.Metadata, name)
			}
		})
	}
	if ref := decode(t, msgs["result_ref"]).ResultRef; ref != nil {
		obs, err := h.js.ObjectStore(t.Context(), ref.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		if data, err := obs.GetBytes(t.Context(), ref.Name); err != nil || uint64(len(data)) != ref.Size {
			t.Errorf("result_ref object: %d bytes, %v; want %d", len(data), err, ref.Size)
		}
	}
}

// TestEventsMatchSchema validates the events of a real run against docs/event.schema.json.
func TestEventsMatchSchema(t *testing.T) {
	schema := compileEventSchema(t)
	_, msgs := realEvents(t)
	for name, m := range msgs {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("%s: the event does not match docs/event.schema.json: %v\n%.300s", name, err, m.Data)
		}
	}
	// The schema is not a rubber stamp: events the bridge must never publish fail it.
	bad := []string{
		`{"job_id":"j","kind":"archived","observed_at":"2026-11-29T14:00:13.456Z"}`,
		`{"job_id":"j","kind":"completed"}`,
		`{"job_id":"j","kind":"completed","observed_at":"2026-11-29T14:00:13.456Z","result":null}`,
		`{"job_id":"j","kind":"completed","observed_at":"2026-11-29 14:00"}`,
		`{"job_id":"j","kind":"completed","observed_at":"2026-11-29T14:00:13.456Z","extra":1}`,
		`{"job_id":"j","kind":"completed","observed_at":"2026-11-29T14:00:13.456Z","result_ref":{"bucket":"B","name":"j"}}`,
	}
	good := []string{
		`{"job_id":"j","kind":"completed","observed_at":"2026-11-29T14:00:13.456Z","result":{"result":{"type":"url","url":"https://s3.example/r"}},"capture_error":"url result exceeds BRIDGE_CAPTURE_MAX_BYTES: 300 bytes, limit 200"}`,
	}
	for _, g := range good {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(g))
		if err := schema.Validate(inst); err != nil {
			t.Errorf("the schema refuses %s: %v", g, err)
		}
	}
	bad = append(bad, `{"job_id":"j","kind":"completed","observed_at":"2026-11-29T14:00:13.456Z","capture_error":""}`)
	for _, b := range bad {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(b))
		if schema.Validate(inst) == nil {
			t.Errorf("the schema accepts %s", b)
		}
	}
}

func compileEventSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../../docs/event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(event.DataSchema, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(event.DataSchema)
	if err != nil {
		t.Fatalf("docs/event.schema.json: %v", err)
	}
	return s
}
