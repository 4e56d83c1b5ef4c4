package webhook

import (
	"encoding/json"
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

func TestStripToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, ``},
		{`null`, `null`},
		{`"webhook_token"`, `"webhook_token"`},
		{`[{"webhook_token":"tok"}]`, `[{"webhook_token":"tok"}]`},
		{`{"tenant":"a"}`, `{"tenant":"a"}`},
		{`{ "z": 1 , "a" : [1, 2] }`, `{ "z": 1 , "a" : [1, 2] }`},
		{`{"tenant":"a","webhook_token":"tok"}`, `{"tenant":"a"}`},
		{`{"webhook_token":"tok","tenant":"a"}`, `{"tenant":"a"}`},
		{`{"z":1,"webhook_token":"tok","a":2}`, `{"z":1,"a":2}`},
		{`{ "z" : "1" , "webhook_token" : "tok" , "a" : 2 }`, `{ "z" : "1", "a" : 2 }`},
		{`{"z":1 ,"webhook_token":"tok"}`, `{"z":1}`},
		{`{"webhook_token":"tok"}`, ``},
		{` { "webhook_token" : {"nested": "tok"} } `, ``},
		{`{"webhook_token":"a","k":{"webhook_token":"kept"},"webhook_token":"b"}`, `{"k":{"webhook_token":"kept"}}`},
		{`{"webhook\u005ftoken":"tok","k":1}`, `{"k":1}`},
		{`{"Webhook_Token":"x"}`, `{"Webhook_Token":"x"}`},
		{`{"webhook_token":"tok",`, `{"webhook_token":"tok",`}, // not JSON: left alone
	}
	for _, tt := range tests {
		got := string(StripToken(json.RawMessage(tt.in)))
		if got != tt.want {
			t.Errorf("StripToken(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
