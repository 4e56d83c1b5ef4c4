package bridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/reducto-bridge/reducto-bridge/internal/natstest"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// runAuthServer starts a JetStream server (natstest's) with auth's credential and TLS options.
func runAuthServer(t *testing.T, auth *server.Options) *server.Server {
	t.Helper()
	return natstest.RunServer(t, natstest.Options{Configure: func(o *server.Options) {
		o.Username, o.Password, o.Authorization, o.Nkeys = auth.Username, auth.Password, auth.Authorization, auth.Nkeys
		o.TLS, o.TLSVerify, o.TLSConfig = auth.TLS, auth.TLSVerify, auth.TLSConfig
		o.TrustedOperators, o.AccountResolver, o.SystemAccount = auth.TrustedOperators, auth.AccountResolver, auth.SystemAccount
	}})
}

// TestNATSAuthAndTLS starts the bridge against servers that require each kind of credential
// the contract lists, and checks that a wrong credential keeps it from starting.
func TestNATSAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	seed, pub := nkeyPair(t)
	seedFile := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ca, serverTLS, clientCert, clientKey := tlsFiles(t, dir)

	tests := []struct {
		name   string
		server server.Options
		good   func(*config.Config)
		bad    func(*config.Config)
	}{
		{"user and password", server.Options{Username: "bridge", Password: "pa55"},
			func(c *config.Config) { c.NATSUser, c.NATSPassword = "bridge", "pa55" },
			func(c *config.Config) { c.NATSUser, c.NATSPassword = "bridge", "wrong" }},
		{"token", server.Options{Authorization: "t0ken"},
			func(c *config.Config) { c.NATSToken = "t0ken" },
			func(c *config.Config) { c.NATSToken = "guess" }},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
			func(c *config.Config) { c.NATSNKey = seedFile },
			func(c *config.Config) {}},
		{"mutual TLS", server.Options{TLS: true, TLSVerify: true, TLSConfig: serverTLS},
			func(c *config.Config) { c.NATSCA, c.NATSCert, c.NATSKey = ca, clientCert, clientKey },
			func(c *config.Config) { c.NATSCA = ca }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := runAuthServer(t, &tt.server)
			h := newHarness(t, natstest.Options{}, reductosim.Options{})
			url := s.ClientURL()
			if tt.server.TLS {
				url = strings.Replace(url, "nats://", "tls://", 1)
			}
			cfg := h.config()
			cfg.NATSURL = url
			tt.good(cfg)
			b := h.start(cfg)
			if err := b.Ready(t.Context()); err != nil {
				t.Fatalf("not ready with good credentials: %v", err)
			}
			for _, secret := range []string{"pa55", "t0ken", string(seed)} {
				if strings.Contains(h.logs.String(), secret) {
					t.Errorf("logs contain a NATS credential")
				}
			}

			cfg = h.config()
			cfg.NATSURL = url
			tt.bad(cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if b, err := Start(ctx, cfg, slog.New(slog.DiscardHandler)); err == nil {
				h.stop(b)
				t.Fatal("started with wrong credentials")
			}
		})
	}
}

func nkeyPair(t *testing.T) (seed []byte, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ = kp.Seed()
	pub, _ = kp.PublicKey()
	return seed, pub
}

// tlsFiles writes a CA and a client certificate and key to dir, and returns the CA's path, a
// server TLS config (certificate for 127.0.0.1, client certificates required), and the client
// certificate and key paths.
func tlsFiles(t *testing.T, dir string) (caFile string, srv *tls.Config, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage, ips []net.IP) (*ecdsa.PrivateKey, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return key, der
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvKey, srvDER := issue("127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliKey, cliDER := issue("bridge", x509.ExtKeyUsageClientAuth, nil)
	certFile = write("client.pem", "CERTIFICATE", cliDER)
	cliKeyDER, _ := x509.MarshalECPrivateKey(cliKey)
	keyFile = write("client-key.pem", "EC PRIVATE KEY", cliKeyDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	return caFile, srv, certFile, keyFile
}

// TestNATSCreds runs the bridge with a credentials file (user JWT + nkey seed) against a server
// in operator mode, as on Synadia Cloud or any decentralised-auth deployment.
func TestNATSCreds(t *testing.T) {
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(ojwt)
	if err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "bridge.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	// Operator mode with JetStream needs a system account.
	skp, _ := nkeys.CreateAccount()
	spub, _ := skp.PublicKey()
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for pub, claims := range map[string]string{apub: ajwt, spub: sjwt} {
		if err := resolver.Store(pub, claims); err != nil {
			t.Fatal(err)
		}
	}
	s := runAuthServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver, SystemAccount: spub})

	h := newHarness(t, natstest.Options{}, reductosim.Options{})
	cfg := h.config()
	cfg.NATSURL = s.ClientURL()
	cfg.NATSCreds = credsFile
	b := h.start(cfg)
	if err := b.Ready(t.Context()); err != nil {
		t.Fatalf("not ready with a credentials file: %v", err)
	}
	if strings.Contains(h.logs.String(), string(useed)) {
		t.Error("logs contain the credentials' seed")
	}
}
