package e2e

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/reducto-bridge/reducto-bridge/internal/bridgeproc"
)

// bridgeBin is the bridge binary TestMain built for this run.
var bridgeBin string

// longForm is E2E_LONG=1: more jobs, more kills, more time.
var longForm = os.Getenv("E2E_LONG") == "1"

// TestMain builds the bridge once (with -race when E2E_RACE=1) and removes it at the end.
// E2E_BRIDGE_SRC builds from another checkout of the module (a scratch copy with a
// deliberate bug, to see the suite fail); by default the module this package belongs to.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short: the suite runs bridge subprocesses for minutes")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "reducto-bridge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	bridgeBin = filepath.Join(dir, "bridge")
	if err := build(bridgeBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the bridge:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out string) error {
	src := os.Getenv("E2E_BRIDGE_SRC")
	if src == "" {
		src = ".." // go test runs in the package directory; the module root is its parent
	}
	return bridgeproc.Build(out, src, os.Getenv("E2E_RACE") == "1", os.Stderr)
}

// testingSeed is E2E_SEED, 0 when unset.
func testingSeed() uint64 {
	s, _ := strconv.ParseUint(os.Getenv("E2E_SEED"), 10, 64)
	return s
}

// seeded returns a random source for a test and logs its seed.
func seeded(t testing.TB) *rand.Rand {
	seed := rand.Uint64()
	if s := testingSeed(); s != 0 {
		seed = s
	}
	t.Logf("seed %d (E2E_SEED=%d reproduces the workload, not the scheduling)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}
