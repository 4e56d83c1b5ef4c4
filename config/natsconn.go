package config

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// NATSAuthOptions are the nats.go options of the NATS credential and TLS variables (NATS_CREDS,
// NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_CA, NATS_CERT/NATS_KEY), as the bridge
// and the CLI verbs connect with them. An unreadable nkey seed file is an error naming
// NATS_NKEY; the other files are read when connecting.
func (c *Config) NATSAuthOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSNKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword.Reveal()))
	}
	if c.NATSToken.IsSet() {
		opts = append(opts, nats.Token(c.NATSToken.Reveal()))
	}
	if c.NATSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSCA))
	}
	if c.NATSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSCert, c.NATSKey))
	}
	return opts, nil
}
