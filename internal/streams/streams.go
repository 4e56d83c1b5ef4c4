// Package streams creates the bridge's JetStream streams, or updates them while keeping what
// an operator set by hand (with `nats stream edit`, say): a limit the bridge leaves unset is
// the operator's, and a restart must not reset it to unlimited.
package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream is the part of jetstream.JetStream Ensure uses.
type JetStream interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
}

// Ensure creates the stream cfg describes, or updates the existing one to it, keeping the
// operator's settings (see [KeepOperatorSettings]).
func Ensure(ctx context.Context, js JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	switch st, err := js.Stream(ctx, cfg.Name); {
	case err == nil:
		if info := st.CachedInfo(); info != nil {
			cfg = KeepOperatorSettings(cfg, info.Config)
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
	default:
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// KeepOperatorSettings returns want with the settings the bridge does not own taken from
// have, the stream as it exists: every limit want leaves at zero (MaxMsgs, MaxBytes, MaxAge,
// MaxMsgSize, MaxConsumers, MaxMsgsPerSubject), and DenyDelete and DenyPurge when have has
// them on (they cannot be switched off again without deleting the stream). Limits want sets
// (the events' max age, the track stream's one message per subject) are the bridge's.
func KeepOperatorSettings(want, have jetstream.StreamConfig) jetstream.StreamConfig {
	keep := func(w *int64, h int64) {
		if *w == 0 {
			*w = h
		}
	}
	keep(&want.MaxMsgs, have.MaxMsgs)
	keep(&want.MaxBytes, have.MaxBytes)
	keep(&want.MaxMsgsPerSubject, have.MaxMsgsPerSubject)
	if want.MaxAge == 0 {
		want.MaxAge = have.MaxAge
	}
	if want.MaxMsgSize == 0 {
		want.MaxMsgSize = have.MaxMsgSize
	}
	if want.MaxConsumers == 0 {
		want.MaxConsumers = have.MaxConsumers
	}
	want.DenyDelete = want.DenyDelete || have.DenyDelete
	want.DenyPurge = want.DenyPurge || have.DenyPurge
	return want
}
