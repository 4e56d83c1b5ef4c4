package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// Verbs are the NATS client verbs [Run] serves, each with its one-line summary for
// 'bridge help'.
var Verbs = []struct{ Name, Summary string }{
	{"track", "track a job: publish P.track.<id>, acknowledged once stored"},
	{"cancel", "cancel a job through P.cancel"},
	{"status", "what the bridge knows of a job (P.status)"},
	{"watch", "print events as they are stored (one line each, or --json)"},
	{"doctor", "check streams, consumer, dedup window, permissions and the API key"},
}

const connectHelp = `
NATS connection: NATS_URL (default: the embedded server's BRIDGE_EMBEDDED_NATS_ADDR, with
BRIDGE_EMBEDDED_NATS_TOKEN), NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN,
NATS_CA, NATS_CERT/NATS_KEY, and BRIDGE_SUBJECT_PREFIX, as the bridge reads them.
`

var verbHelp = map[string]string{
	"track":  "usage: bridge track <job_id> [--metadata JSON] [--webhook]\n\nPublishes a track message for the job to P.track.<job_id> (JetStream) and waits for the\nstream's acknowledgement. --metadata is echoed in the job's event.\n",
	"cancel": "usage: bridge cancel <job_id>\n\nSends P.cancel for the job; exit 1 with the bridge's error code and description when refused.\n",
	"status": "usage: bridge status <job_id> [--json]\n\nSends P.status: whether the job is tracked, since when, and its event (kind, sequence) if\nreported.\n",
	"watch":  "usage: bridge watch [kind] [--json] [--all] [--count N]\n\nTails REDUCTO_EVENTS (an ordered consumer, nothing left on the server): one line per event,\nor each event's JSON body with --json. kind: completed, failed, cancelled or expired.\n",
	"doctor": "usage: bridge doctor\n\nChecks JetStream, the streams REDUCTO_TRACK and REDUCTO_EVENTS (with its dedup window), the\nconsumer, the results bucket, a bridge answering P.status under this user's permissions, and\nthe API key (one GET /jobs?limit=1 with REDUCTO_API_KEY). Prints what is wrong and how to fix\nit; exit 1 when something is. It changes nothing.\n",
}

// IsVerb reports whether name is one of [Verbs].
func IsVerb(name string) bool {
	_, ok := verbHelp[name]
	return ok
}

// Run runs one verb with its command line, configured from the environment (config.Load: a bad
// variable stops it with a message naming it). -h prints the verb's help (flag.ErrHelp).
func Run(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	help, ok := verbHelp[verb]
	if !ok {
		return fmt.Errorf("unknown verb %q", verb)
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, help)
		var flags strings.Builder
		fs.SetOutput(&flags)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		if flags.Len() > 0 {
			fmt.Fprintf(stderr, "\nflags:\n%s", flags.String())
		}
		fmt.Fprint(stderr, connectHelp)
	}
	var (
		metadata     string
		webhook, all bool
		asJSON       bool
		count        int
	)
	switch verb {
	case "track":
		fs.StringVar(&metadata, "metadata", "", "JSON echoed in the job's event")
		fs.BoolVar(&webhook, "webhook", false, "Reducto will announce the job's end by webhook (polls are a safety net)")
	case "status":
		fs.BoolVar(&asJSON, "json", false, "print the reply's JSON")
	case "watch":
		fs.BoolVar(&asJSON, "json", false, "print each event's JSON body, one per line")
		fs.BoolVar(&all, "all", false, "replay every stored event first")
		fs.IntVar(&count, "count", 0, "stop after this many events; 0: until interrupted")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	want := map[string][2]int{"track": {1, 1}, "cancel": {1, 1}, "status": {1, 1}, "watch": {0, 1}, "doctor": {0, 0}}[verb]
	if len(pos) < want[0] || len(pos) > want[1] {
		fmt.Fprintf(stderr, "bridge %s: wrong number of arguments\n", verb)
		fs.Usage()
		return ErrUsage
	}
	var meta json.RawMessage
	if metadata != "" {
		if meta, err = parseMetadata(metadata); err != nil {
			fmt.Fprintf(stderr, "bridge %s: --metadata: %v\n", verb, err)
			return ErrUsage
		}
	}

	arg := ""
	if len(pos) > 0 {
		arg = pos[0]
	}
	// Checked before connecting: a bad argument sends nothing.
	switch {
	case verb == "watch" && arg != "" && !event.Kind(arg).Valid():
		return fmt.Errorf("watch: unknown kind %q (completed, failed, cancelled or expired)", arg)
	case verb == "track" || verb == "cancel" || verb == "status":
		if err := subject.ValidJobID(arg); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
	}

	cfg, err := config.Load()
	if err != nil {
		return err
	}
	nc, err := Connect(cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := NewClient(nc, cfg.SubjectPrefix, stdout)
	if err != nil {
		return err
	}
	c.Source = cfg.EventSource
	switch verb {
	case "track":
		return c.Track(ctx, arg, meta, webhook)
	case "cancel":
		return c.Cancel(ctx, arg)
	case "status":
		return c.Status(ctx, arg, asJSON)
	case "watch":
		return c.Watch(ctx, WatchOptions{Kind: event.Kind(arg), JSON: asJSON, All: all, Count: count})
	}
	var keys Lister
	if cfg.APIKey.IsSet() {
		client, err := reducto.New(cfg.BaseURL, cfg.APIKey.Reveal(), reducto.WithTimeout(cfg.HTTPTimeout))
		if err != nil {
			return fmt.Errorf("REDUCTO_BASE_URL: %w", err)
		}
		keys = client
	}
	return Report(stdout, Doctor(ctx, c, ExpectFrom(cfg), keys))
}

// parseInterleaved parses flags that may come after the positional arguments
// ('bridge track <id> --metadata {}') and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := ParseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// parseMetadata checks --metadata as the bridge will read it: JSON, valid UTF-8, at most
// track.DefaultMaxMetadata bytes (larger metadata would be dropped from the event).
func parseMetadata(s string) (json.RawMessage, error) {
	switch {
	case !utf8.ValidString(s):
		return nil, errors.New("not valid UTF-8")
	case len(s) > track.DefaultMaxMetadata:
		return nil, fmt.Errorf("%d bytes, at most %d", len(s), track.DefaultMaxMetadata)
	case !json.Valid([]byte(s)):
		return nil, errors.New("not valid JSON")
	}
	return json.RawMessage(s), nil
}

// Connect opens a NATS connection as the bridge would (config.NATSAuthOptions); with NATS_URL
// empty, to the embedded server's address with its token. The error names the servers without
// credentials.
func Connect(cfg *config.Config) (*nats.Conn, error) {
	url := cfg.NATSURL
	opts := []nats.Option{nats.Name("reducto-bridge-cli"), nats.Timeout(5 * time.Second)}
	if cfg.Embedded() {
		url = "nats://" + cfg.EmbeddedNATSAddr
		if cfg.EmbeddedNATSToken.IsSet() {
			opts = append(opts, nats.Token(cfg.EmbeddedNATSToken.Reveal()))
		}
	}
	auth, err := cfg.NATSAuthOptions()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts, auth...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", config.RedactURLs(url), err)
	}
	return nc, nil
}
