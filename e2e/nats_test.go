package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"
)

// natsNode is one in-process nats-server with JetStream. It keeps its port and store
// directory, so it can be shut down and started again on the same address and state.
type natsNode struct {
	t           testing.TB
	name        string
	storeDir    string
	port        int
	clusterPort int        // 0 for a single server
	routes      []*url.URL // the cluster's route URLs, this node's included

	mu   sync.Mutex
	srv  *server.Server
	wg   sync.WaitGroup // Start goroutines
	runs int
}

// freePort reserves a port on 127.0.0.1 by listening on port 0, and releases it.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := strconv.Atoi(natstest.FreeAddr(t)[len("127.0.0.1:"):])
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// startNATS starts a single JetStream server on 127.0.0.1 with its own store directory.
func startNATS(t testing.TB) *natsNode {
	t.Helper()
	n := &natsNode{t: t, name: "n0", storeDir: t.TempDir(), port: freePort(t)}
	t.Cleanup(n.shutdown)
	n.begin()
	n.waitReady()
	return n
}

func (n *natsNode) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *natsNode) options() *server.Options {
	return natstest.ServerOptions(n.t, natstest.Options{StoreDir: n.storeDir, Port: n.port, Configure: func(o *server.Options) {
		o.ServerName = n.name
		if n.clusterPort != 0 {
			o.Cluster = server.ClusterOpts{Name: "e2e", Host: "127.0.0.1", Port: n.clusterPort}
			o.Routes = n.routes
		}
	}})
}

// begin starts the server without waiting: a clustered server's Start returns only once
// JetStream has found its peers, so the nodes of a cluster must start concurrently.
func (n *natsNode) begin() {
	s, err := server.NewServer(n.options())
	if err != nil {
		n.t.Fatalf("nats %s: new server: %v", n.name, err)
	}
	n.mu.Lock()
	n.srv = s
	n.runs++
	n.mu.Unlock()
	n.wg.Go(s.Start)
}

func (n *natsNode) waitReady() {
	n.mu.Lock()
	s := n.srv
	n.mu.Unlock()
	if !s.ReadyForConnections(30 * time.Second) {
		n.t.Fatalf("nats %s on port %d not ready within 30s", n.name, n.port)
	}
}

// restart starts the server again on the same port and store directory.
func (n *natsNode) restart() {
	n.begin()
	n.waitReady()
}

// shutdown stops the server (a no-op when it is down).
func (n *natsNode) shutdown() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
	n.wg.Wait()
}

// cluster is a JetStream cluster of in-process servers on 127.0.0.1.
type cluster struct {
	nodes []*natsNode
}

// startCluster starts n clustered JetStream servers, each with its own store directory, with
// routes between all of them.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{}
	var routes []*url.URL
	for i := range n {
		node := &natsNode{t: t, name: fmt.Sprintf("c%d", i), storeDir: t.TempDir(), port: freePort(t), clusterPort: freePort(t)}
		routes = append(routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(node.clusterPort)})
		c.nodes = append(c.nodes, node)
	}
	for _, node := range c.nodes {
		node.routes = routes
		t.Cleanup(node.shutdown)
		node.begin()
	}
	for _, node := range c.nodes {
		node.waitReady()
	}
	return c
}

// urls is the comma-separated list of every node's client URL.
func (c *cluster) urls() string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, n.url())
	}
	return strings.Join(us, ",")
}

func (c *cluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// connect opens the test's own client connection (producers, audit), which reconnects
// forever, and closes it at the end of the test.
func connect(t testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls,
		nats.Name("e2e"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		t.Fatalf("connect to nats %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// streamMsgs returns the number of messages in a stream.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	return st.CachedInfo().State.Msgs, nil
}

// streamLeader returns the server name of a clustered stream's leader ("" while there is none).
func streamLeader(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return "", err
	}
	info := st.CachedInfo()
	if info.Cluster == nil {
		return "", nil
	}
	return info.Cluster.Leader, nil
}
