package natsconf

import (
	"strings"
	"testing"
)

func TestSecurityBlock(t *testing.T) {
	for _, tc := range []struct {
		doc, want, err string
	}{
		{doc: "text\n```conf\na: 1\n```\nmore\n", want: "a: 1"},
		{doc: "text\n```sh\nls\n```\n", err: "no ```conf block"},
		{doc: "text\n```conf\na: 1\n", err: "exactly one"},
		{doc: "\n```conf\na: 1\n```\n\n```conf\nb: 2\n```\n", err: "exactly one"},
	} {
		got, err := SecurityBlock(tc.doc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SecurityBlock(%q) = %q, %v; want an error with %q", tc.doc, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SecurityBlock(%q) = %q, %v; want %q", tc.doc, got, err, tc.want)
		}
	}
}

// TestUsers: users keep their account and permissions, and a variable that is not in the
// environment is an error naming it, not an empty password.
func TestUsers(t *testing.T) {
	conf := `accounts { A { users: [ {user: u, password: $NATSCONF_TEST_PW, permissions: {publish: {allow: ["x.>"]}}} ] } }`
	if _, err := UsersOf(t.TempDir(), conf); err == nil || !strings.Contains(err.Error(), "NATSCONF_TEST_PW") {
		t.Fatalf("unset variable: err %v, want one naming NATSCONF_TEST_PW", err)
	}
	t.Setenv("NATSCONF_TEST_PW", "secret")
	users, err := UsersOf(t.TempDir(), conf)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := users["u"]
	if !ok || u.Account != "A" || u.Permissions == nil || u.Permissions.Publish == nil ||
		len(u.Permissions.Publish.Allow) != 1 || u.Permissions.Publish.Allow[0] != "x.>" {
		t.Fatalf("users = %+v", users)
	}
}
