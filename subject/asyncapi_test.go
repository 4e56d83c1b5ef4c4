package subject_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/event"
	"github.com/reducto-bridge/reducto-bridge/subject"
)

// TestAsyncAPIDocumentCoversSubjects keeps docs/asyncapi.yaml from drifting silently from the
// code: every subject this package builds (with the default prefix and the document's
// {job_id} and {key_id} parameters), every stream and bucket, every event kind, and every
// event header appear in it. A new exported function here fails the test until it is listed
// below, and so until someone has looked at the document.
func TestAsyncAPIDocumentCoversSubjects(t *testing.T) {
	data, err := os.ReadFile("../docs/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if !strings.HasPrefix(strings.TrimLeft(stripComments(doc), "\n"), "asyncapi: 3.") {
		t.Errorf("docs/asyncapi.yaml does not start with asyncapi: 3.x")
	}
	const p, id = subject.DefaultPrefix, "{job_id}"
	kinds := []event.Kind{event.Completed, event.Failed, event.Cancelled, event.Expired}
	var events, filters []string
	for _, k := range kinds {
		events = append(events, subject.Event(p, string(k), id))
		filters = append(filters, subject.EventKinds(p, string(k))...)
	}
	replicas := subject.Replicas(p, "any key")
	replicas = replicas[:strings.LastIndexByte(replicas, '.')] + ".{key_id}"
	polls := subject.Polls(p, "any key")
	polls = polls[:strings.LastIndexByte(polls, '.')] + ".{key_id}"
	covered := map[string][]string{
		"Track":     {"address: " + subject.Track(p, id)},
		"TrackAll":  {subject.TrackAll(p)},
		"Event":     prefixed("address: ", events),
		"JobEvents": {subject.JobEvents(p, id)},
		"EventsAll": {subject.EventsAll(p)},
		// EventKinds are the stream's subjects: the document names one kind's filter.
		"EventKinds": filters[:1],
		"Cancel":     {"address: " + subject.Cancel(p)},
		"Submit":     {"address: " + subject.Submit(p)},
		"Status":     {"address: " + subject.Status(p)},
		"Replicas":   {"address: " + replicas},
		"Polls":      {"address: " + polls},
	}
	notSubjects := map[string]bool{"ValidJobID": true, "ValidPrefix": true, "TrackJobID": true}
	for _, name := range exportedFuncs(t, "subject.go") {
		want, ok := covered[name]
		if !ok && !notSubjects[name] {
			t.Errorf("subject.%s is new: describe its subject in docs/asyncapi.yaml and list it in this test", name)
		}
		for _, w := range want {
			if !strings.Contains(doc, w) {
				t.Errorf("docs/asyncapi.yaml lacks %q (subject.%s)", w, name)
			}
		}
	}
	for _, w := range []string{subject.TrackStream, subject.EventsStream, event.DataSchema, "./event.schema.json"} {
		if !strings.Contains(doc, w) {
			t.Errorf("docs/asyncapi.yaml lacks %q", w)
		}
	}
	for _, k := range kinds {
		if !strings.Contains(doc, "  "+string(k)+":\n    address: ") || !strings.Contains(doc, event.TypePrefix+string(k)) {
			t.Errorf("docs/asyncapi.yaml lacks the channel or the ce-type of kind %s", k)
		}
	}
	for _, h := range event.TraceHeaders {
		if !strings.Contains(doc, "          "+h+":\n") {
			t.Errorf("docs/asyncapi.yaml lacks the trace header %s", h)
		}
	}
	for h := range event.Headers(&event.Event{JobID: "j", Kind: event.Completed}, "s") {
		if !strings.Contains(doc, "          "+h+":\n") {
			t.Errorf("docs/asyncapi.yaml lacks the event header %s", h)
		}
	}
	if !strings.Contains(doc, "Nats-Msg-Id:") {
		t.Errorf("docs/asyncapi.yaml lacks the Nats-Msg-Id header")
	}
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// exportedFuncs lists the exported functions declared in file.
func exportedFuncs(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.IsExported() {
			names = append(names, fn.Name.Name)
		}
	}
	if len(names) < 8 {
		t.Fatalf("only %d exported functions in %s: %v", len(names), file, names)
	}
	return names
}
