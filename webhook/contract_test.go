package webhook

import (
	"errors"
	"testing"
)

func TestParseSecret(t *testing.T) {
	tests := []struct {
		secret string
		want   error
	}{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil},
		{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ErrSecretPrefix},
		{"whsec_", ErrSecretEncoding},
		{"whsec_not base64!", ErrSecretEncoding},
	}
	for _, tt := range tests {
		key, err := ParseSecret(tt.secret)
		if !errors.Is(err, tt.want) || (err == nil) != (len(key) > 0) {
			t.Errorf("ParseSecret(%q) = %d-byte key, %v; want %v", tt.secret, len(key), err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseSecret(%q): %v does not match ErrBadSecret", tt.secret, err)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		public, token, want string
		err                 bool
	}{
		{"https://bridge.example.com", "t0k", "https://bridge.example.com/webhooks/reducto?token=t0k", false},
		{"https://bridge.example.com/base/", "", "https://bridge.example.com/base/webhooks/reducto", false},
		{"http://127.0.0.1:8080", "a b&c", "http://127.0.0.1:8080/webhooks/reducto?token=a+b%26c", false},
		{"ftp://bridge.example.com", "t", "", true},
		{"bridge.example.com", "t", "", true},
	}
	for _, tt := range tests {
		got, err := URL(tt.public, tt.token)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("URL(%q, %q) = %q, %v; want %q (error %v)", tt.public, tt.token, got, err, tt.want, tt.err)
		}
	}
}
