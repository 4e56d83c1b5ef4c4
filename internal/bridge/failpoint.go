package bridge

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
)

// CrashAfterPublishEnv is the fault-injection switch of the crash tests (e2e/): a probability
// in (0, 1]. After that fraction of event publishes, before the track message is acked, the
// process dies at once (os.Exit, from inside [Start]'s poller), as under kill -9 at the worst
// moment. Never set it in production.
const CrashAfterPublishEnv = "BRIDGE_TEST_CRASH_AFTER_PUBLISH"

// CrashExitCode is the exit status of an injected crash, so tests can tell it apart.
const CrashExitCode = 86

func crashAfterPublish(log *slog.Logger) func(jobID string) {
	p, err := strconv.ParseFloat(os.Getenv(CrashAfterPublishEnv), 64)
	if err != nil || p <= 0 {
		return nil
	}
	log.Warn("fault injection on: the process will crash after some event publishes", "variable", CrashAfterPublishEnv, "probability", p)
	return func(jobID string) {
		if rand.Float64() < p {
			log.Warn("injected crash after publish, before ack", "job_id", jobID)
			os.Exit(CrashExitCode)
		}
	}
}
