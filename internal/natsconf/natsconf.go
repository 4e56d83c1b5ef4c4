// Package natsconf reads the nats-server configurations the project ships: the least-privilege
// block printed in docs/security.md, and the files under deploy/ that must grant exactly the
// same permissions. Tests use it to run a server under the documented configuration and to
// check that the deployment files have not drifted from it.
package natsconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// SecurityBlock returns the nats-server configuration printed in docs/security.md (doc is the
// file's text): the one block fenced as ```conf. It is an error for the document to hold no
// such block, an unclosed one, or more than one.
func SecurityBlock(doc string) (string, error) {
	_, rest, ok := strings.Cut(doc, "\n```conf\n")
	if !ok {
		return "", errors.New("no ```conf block")
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok || strings.Contains(rest[len(block):], "\n```conf\n") {
		return "", errors.New("want exactly one closed ```conf block")
	}
	return block, nil
}

// User is what a configuration grants one user: its account and its permissions.
type User struct {
	Account     string
	Permissions *server.Permissions
}

// Users parses the nats-server configuration file at path (variables such as
// $BRIDGE_NATS_PASSWORD are read from the environment, includes relative to the file) and
// returns its users by name. Only username/password users are returned; passwords are not.
func Users(path string) (map[string]User, error) {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, err
	}
	users := make(map[string]User, len(opts.Users))
	for _, u := range opts.Users {
		acc := ""
		if u.Account != nil {
			acc = u.Account.Name
		}
		users[u.Username] = User{Account: acc, Permissions: u.Permissions}
	}
	return users, nil
}

// UsersOf parses configuration text as [Users] does, through a temporary file in dir.
func UsersOf(dir, text string) (map[string]User, error) {
	f, err := os.CreateTemp(dir, "nats-*.conf")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	users, err := Users(f.Name())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(f.Name()), err)
	}
	return users, nil
}

// Apply sets o's accounts and users to those of the configuration file at path, leaving its
// host, port, JetStream and store directory alone: a test runs a server of its own under a
// shipped configuration's users and permissions.
func Apply(o *server.Options, path string) error {
	fo, err := server.ProcessConfigFile(path)
	if err != nil {
		return err
	}
	if !fo.JetStream {
		return fmt.Errorf("%s does not enable JetStream", path)
	}
	o.Accounts, o.Users = fo.Accounts, fo.Users
	return nil
}
