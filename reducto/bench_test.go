package reducto

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// jobBody50KB is a Completed parse job whose result is about 50 KB, the typical size the
// benchmark is about.
func jobBody50KB() []byte {
	var chunks []string
	for i := 0; len(strings.Join(chunks, ",")) < 50<<10; i++ {
		chunks = append(chunks, fmt.Sprintf(`{"content":"Paragraph %d. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.","embed":"Paragraph %d.","blocks":[{"type":"Text","bbox":{"left":0.1,"top":0.2,"width":0.5,"height":0.05,"page":1},"content":"Lorem ipsum","confidence":"high"}]}`, i, i))
	}
	return []byte(`{"status":"Completed","progress":100,"type":"Parse","num_pages":7,"total_pages":7,"duration":12.4,"created_at":"2026-11-29T14:00:00Z","result":{"job_id":"j","duration":12.4,"usage":{"num_pages":7,"credits":7},"result":{"type":"full","chunks":[` + strings.Join(chunks, ",") + `],"ocr":null,"custom":null}}}`)
}

// BenchmarkGetJob50KB measures one GetJob of a 50 KB result over loopback HTTP; allocs/op and
// B/op are the client's cost plus net/http's.
func BenchmarkGetJob50KB(b *testing.B) {
	body := jobBody50KB()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	c, err := New(srv.URL, testKey)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		j, err := c.GetJob(b.Context(), "j")
		if err != nil || len(j.Result) < 50<<10 {
			b.Fatalf("GetJob: %v (result %d bytes)", err, len(j.Result))
		}
	}
}

// BenchmarkDecodeJob50KB isolates the decoding cost from HTTP.
func BenchmarkDecodeJob50KB(b *testing.B) {
	body := jobBody50KB()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeJob("j", body); err != nil {
			b.Fatal(err)
		}
	}
}
