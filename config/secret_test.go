package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSecretPrinting(t *testing.T) {
	const value = "hunter2"
	tests := []struct {
		name string
		got  func(s Secret) string
		want string // for a set secret; an unset one gives the same with "" for [redacted]
	}{
		{"String", Secret.String, "[redacted]"},
		{"GoString", Secret.GoString, `"[redacted]"`},
		{"%v", func(s Secret) string { return fmt.Sprintf("%v", s) }, "[redacted]"},
		{"%+v", func(s Secret) string { return fmt.Sprintf("%+v", s) }, "[redacted]"},
		{"%#v", func(s Secret) string { return fmt.Sprintf("%#v", s) }, `"[redacted]"`},
		{"%s", func(s Secret) string { return fmt.Sprintf("%s", s) }, "[redacted]"},
		{"%q", func(s Secret) string { return fmt.Sprintf("%q", s) }, `"[redacted]"`},
		{"%x", func(s Secret) string { return fmt.Sprintf("%x", s) }, fmt.Sprintf("%x", "[redacted]")},
		{"%12s", func(s Secret) string { return fmt.Sprintf("%12s", s) }, "  [redacted]"},
		{"pointer %v", func(s Secret) string { return fmt.Sprintf("%v", &s) }, "[redacted]"},
		{"Sprint", func(s Secret) string { return fmt.Sprint(s) }, "[redacted]"},
		{"LogValue", func(s Secret) string { return s.LogValue().String() }, "[redacted]"},
		{"MarshalText", func(s Secret) string { b, _ := s.MarshalText(); return string(b) }, "[redacted]"},
		{"json.Marshal", func(s Secret) string { b, _ := json.Marshal(s); return string(b) }, `"[redacted]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.got(Secret(value)); got != tt.want {
				t.Errorf("set: got %q, want %q", got, tt.want)
			}
			wantUnset := strings.ReplaceAll(tt.want, "[redacted]", "")
			if tt.name == "%x" {
				wantUnset = ""
			}
			if tt.name == "%12s" {
				wantUnset = strings.Repeat(" ", 12)
			}
			if got := tt.got(Secret("")); got != wantUnset {
				t.Errorf("unset: got %q, want %q", got, wantUnset)
			}
		})
	}
}

func TestSecretReveal(t *testing.T) {
	if got := Secret("hunter2").Reveal(); got != "hunter2" {
		t.Errorf("Reveal() = %q, want %q", got, "hunter2")
	}
	if Secret("").IsSet() || !Secret("x").IsSet() {
		t.Error(`IsSet() = wrong, want false for "" and true for "x"`)
	}
}

// TestSecretFields pins which variables are secrets: a new secret added as a plain string
// would print in the clear.
func TestSecretFields(t *testing.T) {
	var got []string
	for f := range reflect.TypeFor[Config]().Fields() {
		if f.Type == reflect.TypeFor[Secret]() {
			got = append(got, f.Tag.Get("envconfig"))
		}
	}
	want := []string{"REDUCTO_API_KEY", "NATS_PASSWORD", "NATS_TOKEN", "BRIDGE_EMBEDDED_NATS_TOKEN", "BRIDGE_WEBHOOK_SECRET", "BRIDGE_WEBHOOK_TOKEN"}
	if !slices.Equal(got, want) {
		t.Errorf("Secret fields = %v, want %v", got, want)
	}
}

func TestConfigNeverShowsSecrets(t *testing.T) {
	c := validConfig()
	secrets := []string{"api-7d1e", "pass-8c2f", "token-9b3a", "whsec_c2lnbmluZy1zZWNyZXQtMTA=", "hook-11ce"}
	c.APIKey, c.NATSPassword, c.NATSToken, c.WebhookSecret, c.WebhookToken =
		Secret(secrets[0]), Secret(secrets[1]), Secret(secrets[2]), Secret(secrets[3]), Secret(secrets[4])
	c.NATSUser = "bridge"
	c.NATSURL = "nats://127.0.0.1:4222" // the credentials are for an external server
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil (the fixture must be valid)", err)
	}

	slogOut := func(newHandler func(*bytes.Buffer) slog.Handler, v any) string {
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("config loaded", "config", v)
		return buf.String()
	}
	text := func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }
	jsonH := func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	outputs := []struct {
		name string
		out  string
	}{
		{"%v", fmt.Sprintf("%v", c)},
		{"%+v", fmt.Sprintf("%+v", c)},
		{"%#v", fmt.Sprintf("%#v", c)},
		{"pointer %+v", fmt.Sprintf("%+v", &c)},
		{"pointer %#v", fmt.Sprintf("%#v", &c)},
		{"json.Marshal", marshal(c)},
		{"json.Marshal pointer", marshal(&c)},
		{"slog text value", slogOut(text, c)},
		{"slog text pointer (LogValue)", slogOut(text, &c)},
		{"slog json value", slogOut(jsonH, c)},
		{"slog json pointer (LogValue)", slogOut(jsonH, &c)},
	}
	for _, o := range outputs {
		t.Run(o.name, func(t *testing.T) {
			for _, s := range secrets {
				if strings.Contains(o.out, s) {
					t.Errorf("output shows secret %q: %s", s, o.out)
				}
			}
			// All five are set, so all five must show as redacted (the output has the fields).
			if n := strings.Count(o.out, "[redacted]"); n != len(secrets) {
				t.Errorf("output has %d [redacted], want %d: %s", n, len(secrets), o.out)
			}
		})
	}
}

func TestConfigLogValue(t *testing.T) {
	c := validConfig()
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config loaded", "config", &c)
	for _, want := range []string{
		"config.REDUCTO_API_KEY=[redacted]",
		"config.BRIDGE_POLL_INITIAL_INTERVAL=2s",
		"config.BRIDGE_LOG_LEVEL=INFO",
		"config.BRIDGE_RATE_LIMIT=100",
		`config.NATS_URL=""`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line = %q, want it to contain %q", buf.String(), want)
		}
	}
}

// TestEmbeddedNATSTokenNeverShown: the embedded server's token, which may open a port to the
// network, is redacted in every printed form of the configuration.
func TestEmbeddedNATSTokenNeverShown(t *testing.T) {
	const token = "embedded-tok-6a0c"
	c := validConfig()
	c.EmbeddedNATSAddr, c.EmbeddedNATSToken = "0.0.0.0:4222", token
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config loaded", "config", &c)
	for _, out := range []string{fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", &c), buf.String()} {
		if strings.Contains(out, token) {
			t.Errorf("output shows the token: %s", out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("output does not show the token as set ([redacted]): %s", out)
		}
	}
	c.NATSURL = "nats://a:4222" // refused: the token would be ignored
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("Validate() = %v, want an error that does not show the token", err)
	}
}
