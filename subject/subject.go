// Package subject owns the bridge's NATS subject namespace (docs/contract.md sections 1-3): the
// subject prefix, the job-id token rules, and the subjects built from them. Every package that
// needs a subject builds it here, so the namespace is written down once.
package subject

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stream and bucket names from the contract.
const (
	TrackStream   = "REDUCTO_TRACK"
	EventsStream  = "REDUCTO_EVENTS"
	ResultsBucket = "REDUCTO_RESULTS"
)

// DefaultPrefix is the subject prefix when BRIDGE_SUBJECT_PREFIX is unset.
const DefaultPrefix = "reducto"

// MaxJobIDLen is the longest job id the bridge accepts (one NATS token).
const MaxJobIDLen = 256

// Errors returned by [ValidJobID] and [ValidPrefix], matched with errors.Is.
var (
	ErrInvalidJobID  = errors.New("invalid job id")
	ErrInvalidPrefix = errors.New("invalid subject prefix")
)

// ValidJobID reports whether id can be used as one subject token: 1-256 bytes of valid UTF-8,
// none of '.', '*', '>' or whitespace (or other control characters).
func ValidJobID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidJobID)
	}
	if len(id) > MaxJobIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidJobID, len(id), MaxJobIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidJobID)
	}
	for _, r := range id {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: contains %q", ErrInvalidJobID, r)
		}
	}
	return nil
}

// ValidPrefix reports whether p is usable as the subject prefix: valid UTF-8, one or more
// dot-separated tokens, each non-empty and free of wildcards and whitespace. (Stream configs
// travel as JSON, which turns invalid UTF-8 into U+FFFD: the streams would listen on other
// subjects than the bridge and its producers use.)
func ValidPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidPrefix, p)
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return fmt.Errorf("%w: %q has an empty token", ErrInvalidPrefix, p)
		}
		for _, r := range tok {
			if r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
				return fmt.Errorf("%w: %q contains %q", ErrInvalidPrefix, p, r)
			}
		}
	}
	return nil
}

// Track is the intake subject of one job: P.track.<id>.
func Track(prefix, id string) string { return prefix + ".track." + id }

// TrackAll is the subject filter of the track stream: P.track.>.
func TrackAll(prefix string) string { return prefix + ".track.>" }

// TrackJobID returns the job id of a track subject, or false when subj is not one.
func TrackJobID(prefix, subj string) (string, bool) {
	id, ok := strings.CutPrefix(subj, prefix+".track.")
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

// Event is the subject of a job's terminal event: P.job.<kind>.<id>.
func Event(prefix, kind, id string) string { return prefix + ".job." + kind + "." + id }

// JobEvents matches every terminal event of one job: P.job.*.<id>.
func JobEvents(prefix, id string) string { return prefix + ".job.*." + id }

// EventsAll matches every terminal event: P.job.>.
func EventsAll(prefix string) string { return prefix + ".job.>" }

// EventKinds are the events stream's subjects: P.job.<kind>.* for each kind, so that a message
// on P.job.<anything else>.<id> is not stored at all.
func EventKinds(prefix string, kinds ...string) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = prefix + ".job." + k + ".*"
	}
	return out
}

// Cancel is the cancel command's subject: P.cancel.
func Cancel(prefix string) string { return prefix + ".cancel" }

// Submit is the submit command's subject: P.submit.
func Submit(prefix string) string { return prefix + ".submit" }

// Status is the status command's subject: P.status.
func Status(prefix string) string { return prefix + ".status" }

// Replicas is the subject on which the replicas of one API key announce themselves,
// P.bridge.replicas.<key id>: the key id is the first 16 hex digits of the SHA-256 of the key,
// so replicas of one key find each other and the key itself is never on the wire.
func Replicas(prefix, apiKey string) string {
	return prefix + ".bridge.replicas." + keyID(apiKey)
}

// Polls is the subject on which the replicas of one API key ask each other what the last poll
// of a job saw (for P.status), P.bridge.polls.<key id>.
func Polls(prefix, apiKey string) string {
	return prefix + ".bridge.polls." + keyID(apiKey)
}

// keyID names an API key on the wire: the first 16 hex digits of its SHA-256.
func keyID(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return hex.EncodeToString(sum[:8])
}
