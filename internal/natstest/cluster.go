package natstest

import (
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// RunCluster starts n JetStream servers clustered on 127.0.0.1 (cluster "test", servers "s0",
// "s1"...), each with the options [RunServer] uses, and stops them when the test ends. It
// returns once every server accepts clients; the cluster elects its JetStream meta leader some
// time later, which sends no signal: retry the first JetStream request.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	// Every server needs the route addresses up front, so reserve the ports first.
	routes := make([]*url.URL, n)
	for i := range routes {
		routes[i] = &url.URL{Scheme: "nats", Host: FreeAddr(t)}
	}
	servers := make([]*server.Server, n)
	for i, r := range routes {
		port, err := strconv.Atoi(r.Port())
		if err != nil {
			t.Fatalf("route port: %v", err)
		}
		s, err := server.NewServer(ServerOptions(t, Options{Configure: func(o *server.Options) {
			o.ServerName = fmt.Sprintf("s%d", i)
			o.Cluster = server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: port}
			o.Routes = routes
		}}))
		if err != nil {
			t.Fatalf("new server %d: %v", i, err)
		}
		servers[i] = s
	}
	// A clustered server's Start returns only once JetStream has peers: start them concurrently.
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.Start)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
		wg.Wait()
	})
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("server %d not ready within 20s", i)
		}
	}
	return servers
}
