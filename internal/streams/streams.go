// Package streams creates the bridge's JetStream streams, or updates them while keeping what
// an operator set by hand (with `nats stream edit`, say): a limit the bridge leaves unset is
// the operator's, a limit both set is the tighter of the two, and a restart must not reset
// either to something looser.
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

// KeepOperatorSettings returns want adjusted to have, the stream as it exists, so that
// nothing an operator tightened by hand is loosened again:
//
//   - The size and count limits (MaxMsgs, MaxBytes, MaxMsgsPerSubject, MaxMsgSize,
//     MaxConsumers): a limit want leaves unlimited (zero or negative) takes have's value; when
//     both set one, the smaller wins. A limit the operator tightened by hand therefore
//     survives a restart, and one the operator loosened (or removed) by hand is put back to
//     want's. To loosen a limit the bridge sets, change the bridge's setting and lift the
//     stream's limit (or restart once it no longer exceeds the new setting): the smaller one
//     wins again at the next start.
//   - MaxAge: want's when it sets one (the events' retention is the bridge's setting, and
//     the dedup window must fit in it), have's otherwise.
//   - DenyDelete and DenyPurge stay on when have has them on (they cannot be switched off
//     again without deleting the stream).
func KeepOperatorSettings(want, have jetstream.StreamConfig) jetstream.StreamConfig {
	want.MaxMsgs = tighter(want.MaxMsgs, have.MaxMsgs)
	want.MaxBytes = tighter(want.MaxBytes, have.MaxBytes)
	want.MaxMsgsPerSubject = tighter(want.MaxMsgsPerSubject, have.MaxMsgsPerSubject)
	want.MaxMsgSize = int32(tighter(int64(want.MaxMsgSize), int64(have.MaxMsgSize)))
	want.MaxConsumers = int(tighter(int64(want.MaxConsumers), int64(have.MaxConsumers)))
	if want.MaxAge == 0 {
		want.MaxAge = have.MaxAge
	}
	want.DenyDelete = want.DenyDelete || have.DenyDelete
	want.DenyPurge = want.DenyPurge || have.DenyPurge
	return want
}

// tighter is the stricter of two JetStream limits, where zero and negative values (the
// server's -1) mean unlimited: the smaller positive one, the one that is set, or w when
// neither is.
func tighter(w, h int64) int64 {
	switch {
	case h <= 0:
		return w
	case w <= 0:
		return h
	default:
		return min(w, h)
	}
}
