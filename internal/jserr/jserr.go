// Package jserr names the JetStream API error codes the bridge acts on and classifies them,
// in one file (as nats.go's jetstream/errors.go does for the codes it names). Both the events
// publisher and the track queue read these codes; neither may import the other, and subject
// is about names, not errors, so the knowledge lives in this small internal package.
package jserr

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes that nats.go does not name.
const (
	AccountResourcesExceeded jetstream.ErrorCode = 10002
	ClusterNotAvailable      jetstream.ErrorCode = 10008
	InsufficientResources    jetstream.ErrorCode = 10023
	StorageResourcesExceeded jetstream.ErrorCode = 10047
	// StreamStoreFailed carries the store's "maximum messages/bytes exceeded" when a
	// DiscardNew stream is full (and "message too large").
	StreamStoreFailed     jetstream.ErrorCode = 10077
	DuplicateMsgInProcess jetstream.ErrorCode = 10158
)

// Code returns the JetStream API error code in err's chain, or 0 when there is none.
func Code(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// The two refusals of an expected-last-sequence check (Nats-Expected-Last-Subject-Sequence
// and friends) mean different things, and the bridge's two conditional publishes treat them
// differently, so they have a predicate each:
//
//   - the publisher asks "is an event stored for this job?": only [WrongLastSequence] says
//     yes (then it looks the event up); [SubjectInFlight] is a reason to ask again;
//   - the track queue asks "is this job being tracked?": both say yes, since a message in
//     flight on the job's track subject is another track of the same job.

// WrongLastSequence reports the server's definite refusal of the check (10071, "wrong last
// sequence: <seq>"): the subject already holds a message, at the sequence named.
func WrongLastSequence(err error) bool {
	return Code(err) == jetstream.JSErrCodeStreamWrongLastSequence
}

// SubjectInFlight reports a clustered stream's refusal of the check (10164, "wrong last
// sequence" without a sequence) because another message on the same subject is being
// replicated: whether the subject ends up holding a message is not known yet.
func SubjectInFlight(err error) bool {
	return Code(err) == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// StreamFull reports a publish refused because a storage limit is reached: the stream's
// MaxMsgs or MaxBytes on a discard-new stream ("maximum messages/bytes exceeded"), or the
// account's or the server's storage.
func StreamFull(err error) bool {
	switch Code(err) {
	case StreamStoreFailed, InsufficientResources, AccountResourcesExceeded, StorageResourcesExceeded:
		return true
	}
	return false
}
