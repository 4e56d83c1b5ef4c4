package config

import (
	"reflect"
	"slices"
	"strings"
)

// CheckedPrefixes are the families of environment variables the bridge owns: a variable with
// one of these prefixes that the bridge does not read is most likely a typo. NATS_ is not one
// of them: the nats CLI and other NATS tools read their own NATS_* variables (NATS_CONTEXT,
// NATS_TIMEOUT...), which may well be set in the same environment.
var CheckedPrefixes = []string{"BRIDGE_", "REDUCTO_"}

// Vars returns the name of every environment variable [Config] reads, in field order, from
// the envconfig tags themselves, so the list cannot drift from the struct.
func Vars() []string {
	var names []string
	for f := range reflect.TypeFor[Config]().Fields() {
		if name := f.Tag.Get("envconfig"); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// UnknownVar is a variable of the environment with a [CheckedPrefixes] prefix that nothing
// reads. It holds names only, never the value, which may be a secret.
type UnknownVar struct {
	Name string
	// Suggestion is the known variable the name is closest to (a typo of it, at most two
	// letters added, dropped or changed), or "".
	Suggestion string
}

// UnknownVars returns, sorted by name, the variables of environ (KEY=value entries, as
// [os.Environ] gives them) that start with one of [CheckedPrefixes] but are neither a
// [Config] variable ([Vars]) nor one of extra (variables read elsewhere, such as a test-only
// switch). Only the names are looked at.
func UnknownVars(environ []string, extra ...string) []UnknownVar {
	known := append(Vars(), extra...)
	var out []UnknownVar
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if seen[name] || slices.Contains(known, name) || !hasCheckedPrefix(name) {
			continue
		}
		seen[name] = true
		out = append(out, UnknownVar{Name: name, Suggestion: closest(name, known)})
	}
	slices.SortFunc(out, func(a, b UnknownVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func hasCheckedPrefix(name string) bool {
	for _, p := range CheckedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// closest returns the name of known within edit distance 2 of name (the first of the
// closest), or "".
func closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes; the names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
