package config

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestValidateRefusesSilentBreakage: each configuration that would start but not deliver
// (webhooks all refused, an unusable NATS_URL, half a NATS login, credentials the embedded
// server ignores) is refused, and the error names the variable(s) with an exact message.
func TestValidateRefusesSilentBreakage(t *testing.T) {
	const embeddedIgnores = ": is set, but NATS_URL is empty: the bridge runs its embedded server, which ignores it (set NATS_URL, or unset "
	tests := []struct {
		name     string
		mutate   func(c *Config)
		wantVars []string // nil: valid
		wantMsg  string   // the whole error, when given
	}{
		// BRIDGE_PUBLIC_URL
		{"public url without token or secret", func(c *Config) { c.PublicURL = "https://bridge.example.com" },
			[]string{"BRIDGE_PUBLIC_URL"},
			"BRIDGE_PUBLIC_URL: is set, but neither BRIDGE_WEBHOOK_TOKEN nor BRIDGE_WEBHOOK_SECRET is, so every webhook would be refused and each job would wait for the safety-net poll (BRIDGE_WEBHOOK_POLL_INTERVAL); set one of them, or unset BRIDGE_PUBLIC_URL to poll only"},
		{"public url with token", func(c *Config) { c.PublicURL, c.WebhookToken = "https://bridge.example.com", "tok" }, nil, ""},
		{"public url with secret", func(c *Config) {
			c.PublicURL, c.WebhookSecret = "http://10.0.0.1:8080", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		}, nil, ""},
		{"public url without host", func(c *Config) { c.PublicURL, c.WebhookToken = "https://", "tok" },
			[]string{"BRIDGE_PUBLIC_URL"}, `BRIDGE_PUBLIC_URL: "https:" is not an absolute http(s) URL`},
		{"public url not http", func(c *Config) { c.PublicURL, c.WebhookToken = "ftp://bridge.example.com", "tok" },
			[]string{"BRIDGE_PUBLIC_URL"}, `BRIDGE_PUBLIC_URL: "ftp://bridge.example.com" is not an absolute http(s) URL`},
		{"public url relative", func(c *Config) { c.PublicURL, c.WebhookToken = "bridge.example.com", "tok" },
			[]string{"BRIDGE_PUBLIC_URL"}, `BRIDGE_PUBLIC_URL: "bridge.example.com" is not an absolute http(s) URL`},

		// NATS_URL
		{"nats url http scheme", func(c *Config) { c.NATSURL = "http://nats.example.com:4222" },
			[]string{"NATS_URL"}, `NATS_URL: "http://nats.example.com:4222" has scheme "http" (want nats, tls, ws or wss)`},
		{"nats url no host", func(c *Config) { c.NATSURL = "nats://:4222" },
			[]string{"NATS_URL"}, `NATS_URL: "nats://:4222" has no host`},
		{"nats url port 0", func(c *Config) { c.NATSURL = "nats://a:0" },
			[]string{"NATS_URL"}, `NATS_URL: "nats://a:0" has an invalid port "0" (want 1-65535)`},
		{"nats url port too big", func(c *Config) { c.NATSURL = "nats://a:4222,nats://b:65536" },
			[]string{"NATS_URL"}, `NATS_URL: "nats://b:65536" has an invalid port "65536" (want 1-65535)`},
		{"nats url port not a number", func(c *Config) { c.NATSURL = "nats://a:http" },
			[]string{"NATS_URL"}, `NATS_URL: "nats://a:http" is not a valid URL: invalid port ":http" after host`},
		{"nats url bare host port too big", func(c *Config) { c.NATSURL = "127.0.0.1:99999" },
			[]string{"NATS_URL"}, `NATS_URL: "127.0.0.1:99999" has an invalid port "99999" (want 1-65535)`},
		{"nats url two bad entries", func(c *Config) { c.NATSURL = "http://a:1, nats://:2" },
			[]string{"NATS_URL", "NATS_URL"}, ""},
		{"nats url mixes websocket", func(c *Config) { c.NATSURL = "ws://a:8080,nats://b:4222" },
			[]string{"NATS_URL"}, `NATS_URL: mixes websocket (ws, wss) and non-websocket URLs, which nats.go refuses`},
		{"nats url bare host:port is nats://", func(c *Config) { c.NATSURL = "127.0.0.1:4222" }, nil, ""},
		{"nats url bare host", func(c *Config) { c.NATSURL = "nats.internal" }, nil, ""},
		{"nats url default port", func(c *Config) { c.NATSURL = "nats://nats.internal" }, nil, ""},
		{"nats url tls", func(c *Config) { c.NATSURL = "tls://a:4222, tls://b:4222" }, nil, ""},
		{"nats url websocket", func(c *Config) { c.NATSURL = "wss://a:443,ws://b" }, nil, ""},
		{"nats url ipv6", func(c *Config) { c.NATSURL = "nats://[::1]:4222" }, nil, ""},
		{"nats url upper-case scheme", func(c *Config) { c.NATSURL = "NATS://a:4222" }, nil, ""},
		{"nats url with user and password", func(c *Config) { c.NATSURL = "nats://u:pw@a:4222" }, nil, ""},
		{"nats url credentials not shown", func(c *Config) { c.NATSURL = "nats://u:pw-0d1e@a:99999,http://tok-5e2f@b" },
			[]string{"NATS_URL", "NATS_URL"},
			`NATS_URL: "nats://a:99999" has an invalid port "99999" (want 1-65535)` + "\n" +
				`NATS_URL: "http://b" has scheme "http" (want nats, tls, ws or wss)`},
		{"nats url unparsable credentials not shown", func(c *Config) { c.NATSURL = "nats://u:pw/0d1e@a:4222" },
			[]string{"NATS_URL"},
			`NATS_URL: "nats://a:4222" is not a valid URL (percent-encode any / ? # @ or : in its user name or password)`},

		// NATS_USER and NATS_PASSWORD
		{"nats user without password", func(c *Config) { c.NATSURL, c.NATSUser = "nats://a:4222", "bridge" },
			[]string{"NATS_USER"}, "NATS_USER: is set but NATS_PASSWORD is empty"},
		{"nats password without user", func(c *Config) { c.NATSURL, c.NATSPassword = "nats://a:4222", "pw" },
			[]string{"NATS_PASSWORD"}, "NATS_PASSWORD: is set but NATS_USER is empty"},

		// NATS client variables with the embedded server
		{"embedded with creds", func(c *Config) { c.NATSCreds = "bridge.creds" },
			[]string{"NATS_CREDS"}, "NATS_CREDS" + embeddedIgnores + "NATS_CREDS)"},
		{"embedded with nkey", func(c *Config) { c.NATSNKey = "user.nk" },
			[]string{"NATS_NKEY"}, "NATS_NKEY" + embeddedIgnores + "NATS_NKEY)"},
		{"embedded with user", func(c *Config) { c.NATSUser = "bridge" },
			[]string{"NATS_USER"}, "NATS_USER" + embeddedIgnores + "NATS_USER)"},
		{"embedded with password", func(c *Config) { c.NATSPassword = "pw" },
			[]string{"NATS_PASSWORD"}, "NATS_PASSWORD" + embeddedIgnores + "NATS_PASSWORD)"},
		{"embedded with token", func(c *Config) { c.NATSToken = "tok" },
			[]string{"NATS_TOKEN"}, "NATS_TOKEN" + embeddedIgnores + "NATS_TOKEN)"},
		{"embedded with ca", func(c *Config) { c.NATSCA = "ca.pem" },
			[]string{"NATS_CA"}, "NATS_CA" + embeddedIgnores + "NATS_CA)"},
		{"embedded with cert", func(c *Config) { c.NATSCert = "c.pem" },
			[]string{"NATS_CERT"}, "NATS_CERT" + embeddedIgnores + "NATS_CERT)"},
		{"embedded with key", func(c *Config) { c.NATSKey = "k.pem" },
			[]string{"NATS_KEY"}, "NATS_KEY" + embeddedIgnores + "NATS_KEY)"},
		{"embedded with a whole login", func(c *Config) {
			c.NATSUser, c.NATSPassword, c.NATSCA, c.NATSCert, c.NATSKey = "bridge", "pw", "ca.pem", "c.pem", "k.pem"
		}, []string{"NATS_USER", "NATS_PASSWORD", "NATS_CA", "NATS_CERT", "NATS_KEY"}, ""},
		{"embedded with a blank nats url", func(c *Config) { c.NATSURL, c.NATSToken = " ", "tok" },
			[]string{"NATS_TOKEN"}, "NATS_TOKEN" + embeddedIgnores + "NATS_TOKEN)"},

		// The embedded server off loopback, and its token
		{"embedded on 0.0.0.0 without a token", func(c *Config) { c.EmbeddedNATSAddr = "0.0.0.0:4222" },
			[]string{"BRIDGE_EMBEDDED_NATS_ADDR"},
			`BRIDGE_EMBEDDED_NATS_ADDR: "0.0.0.0:4222" is not loopback (127.0.0.0/8, ::1, localhost), and BRIDGE_EMBEDDED_NATS_TOKEN is empty: the embedded server would accept anyone who reaches the port (set BRIDGE_EMBEDDED_NATS_TOKEN, listen on 127.0.0.1, or set NATS_URL to a secured NATS server)`},
		{"embedded on 0.0.0.0 with a token", func(c *Config) { c.EmbeddedNATSAddr, c.EmbeddedNATSToken = "0.0.0.0:4222", "tok" }, nil, ""},
		{"embedded token with nats url", func(c *Config) { c.NATSURL, c.EmbeddedNATSToken = "nats://a:4222", "tok-4e1a" },
			[]string{"BRIDGE_EMBEDDED_NATS_TOKEN"},
			"BRIDGE_EMBEDDED_NATS_TOKEN: is set, but NATS_URL is not empty: there is no embedded server to protect (unset it, or use NATS_TOKEN for the server at NATS_URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantVars == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %v", tt.wantVars)
			}
			if got := errVars(err); !slices.Equal(got, tt.wantVars) {
				t.Errorf("Validate() names %v, want %v; error:\n%v", got, tt.wantVars, err)
			}
			for _, name := range tt.wantVars {
				if !strings.Contains(err.Error(), name+": ") {
					t.Errorf("Validate() = %q, does not name %s", err, name)
				}
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, tt.wantMsg)
			}
			for _, secret := range []string{"pw-0d1e", "0d1e", "tok-5e2f"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Validate() = %q, shows a credential of NATS_URL", err)
				}
			}
		})
	}
}

// TestLoadRefusesEmbeddedCredentials goes through the environment, as the bridge does.
func TestLoadRefusesEmbeddedCredentials(t *testing.T) {
	unsetEnv(t)
	t.Setenv("NATS_USER", "bridge")
	t.Setenv("NATS_PASSWORD", "pw-77ab")
	t.Setenv("NATS_URL", "") // set but empty: the embedded server
	_, err := Load()
	if got, want := errVars(err), []string{"NATS_USER", "NATS_PASSWORD"}; !slices.Equal(got, want) {
		t.Fatalf("Load() names %v, want %v; error: %v", got, want, err)
	}
	if strings.Contains(err.Error(), "pw-77ab") {
		t.Errorf("Load() error = %q, shows the password", err)
	}
	t.Setenv("NATS_URL", "nats://127.0.0.1:4222")
	if _, err := Load(); err != nil {
		t.Errorf("Load() with NATS_URL = %v, want nil", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pass@host:4222", "nats://host:4222"},
		{"nats://s3cr3t-token@host:4222", "nats://host:4222"},
		{"tls://u:p@ss@host", "tls://host"},
		{"u:pw@host:4222", "host:4222"},
		{"host:4222", "host:4222"},
		{"wss://u:pw@host/path", "wss://host/path"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := RedactURLs("nats://a:pw@x:1, ,tok@y:2"), "nats://x:1, y:2"; got != want {
		t.Errorf("RedactURLs() = %q, want %q", got, want)
	}
}

func TestConfigLogValueRedactsNATSURL(t *testing.T) {
	c := validConfig()
	c.NATSURL = "nats://usr-9f1b:pw-31c4@a:4222,nats://tok-6d2a@b:4222"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config loaded", "config", &c)
	if !strings.Contains(buf.String(), `config.NATS_URL="nats://a:4222, nats://b:4222"`) {
		t.Errorf("log line = %q, want NATS_URL without its user information", buf.String())
	}
	for _, secret := range []string{"pw-31c4", "tok-6d2a", "usr-9f1b"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log line = %q, shows %q", buf.String(), secret)
		}
	}
}

func TestUnknownVars(t *testing.T) {
	environ := []string{
		"BRIDGE_RATE_LIMT=v-secret-1",      // typo of BRIDGE_RATE_LIMIT
		"REDUCTO_APIKEY=v-secret-2",        // typo of REDUCTO_API_KEY
		"BRIDGE_SOMETHING_ELSE=v-secret-3", // nothing close
		"BRIDGE_RATE_LIMIT=100",            // known
		"REDUCTO_API_KEY=k",                // known
		"BRIDGE_TEST_SWITCH=1",             // read elsewhere (extra)
		"NATS_CONTEXT=prod",                // NATS_ is not checked
		"PATH=/bin",
		"BRIDGE_NO_VALUE",        // not KEY=value: the name still counts
		"BRIDGE_RATE_LIMT=again", // a repeat
	}
	got := UnknownVars(environ, "BRIDGE_TEST_SWITCH")
	want := []UnknownVar{
		{Name: "BRIDGE_NO_VALUE"},
		{Name: "BRIDGE_RATE_LIMT", Suggestion: "BRIDGE_RATE_LIMIT"},
		{Name: "BRIDGE_SOMETHING_ELSE"},
		{Name: "REDUCTO_APIKEY", Suggestion: "REDUCTO_API_KEY"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownVars() = %+v,\nwant %+v", got, want)
	}
	if got := UnknownVars(nil); got != nil {
		t.Errorf("UnknownVars(nil) = %v, want nil", got)
	}
	// Every Config variable is known.
	var env []string
	for _, name := range Vars() {
		env = append(env, name+"=x")
	}
	if got := UnknownVars(env); got != nil {
		t.Errorf("UnknownVars(every Config variable) = %v, want nil", got)
	}
	if n := len(Vars()); n != len(envNames(t)) {
		t.Errorf("Vars() has %d names, want %d", n, len(envNames(t)))
	}
}

// TestConfigLogValueRedactsHTTPURLs: REDUCTO_BASE_URL and BRIDGE_PUBLIC_URL are logged without
// their user information (user:password@ or a token in the user name).
func TestConfigLogValueRedactsHTTPURLs(t *testing.T) {
	c := validConfig()
	c.BaseURL = "https://usr-51aa:pw-secret-8b2e@platform.reducto.ai/v1"
	c.PublicURL = "https://tok-secret-c3d9@bridge.example"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config loaded", "config", &c)
	for _, want := range []string{"config.REDUCTO_BASE_URL=https://platform.reducto.ai/v1", "config.BRIDGE_PUBLIC_URL=https://bridge.example"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line = %q, want it to contain %q", buf.String(), want)
		}
	}
	for _, secret := range []string{"pw-secret-8b2e", "usr-51aa", "tok-secret-c3d9"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log line = %q, shows %q", buf.String(), secret)
		}
	}
}
