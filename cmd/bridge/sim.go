package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/reducto-bridge/reducto-bridge/internal/cli"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
)

// runSim is 'bridge sim': the Reducto simulator over HTTP, so services can be developed and
// tested against REDUCTO_BASE_URL=http://127.0.0.1:8081 without spending credits.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	apiKey := fs.String("api-key", os.Getenv("REDUCTO_API_KEY"), "bearer token to require (default $REDUCTO_API_KEY; empty accepts any request)")
	median := fs.Duration("median", 20*time.Second, "median job duration (lognormal)")
	sigma := fs.Float64("sigma", 0.8, "lognormal sigma of job durations")
	failRate := fs.Float64("fail", 0.05, "fraction of jobs that fail")
	urlRate := fs.Float64("url-results", 0, "fraction of completed parse jobs whose result comes back as a URL (only ParseResponse has URL results)")
	queue := fs.Duration("queue", 0, "time each job waits queued before running, reported Idle (Pending with -lifecycle)")
	noProgress := fs.Bool("no-progress", false, "report progress as null")
	lifecycle := fs.Bool("lifecycle", false, "report Pending while queued and InProgress/Completing while running, as the async docs describe (default: only the GET /job enum, Idle while queued and Pending while running)")
	cancelStyle := fs.String("cancel-style", "failed", "how a cancelled job reports: failed (Failed + JOB_CANCELLED) or cancelled (status Cancelled)")
	jobLimit := fs.Float64("rate-limit", 200, "GET /job requests per second before 429 [CODE 2000] (0 = off)")
	globalLimit := fs.Float64("global-rate-limit", 1000, "requests per second on all endpoints before 429 [CODE 1000] (0 = off)")
	retryAfter := fs.Duration("retry-after", 0, "Retry-After sent with 429s (0 = none, as Reducto documents none)")
	speed := fs.Float64("speed", 1, "simulator clock speed (10 = jobs finish ten times sooner)")
	resultSize := fs.Int("result-size", 2048, "approximate result size in bytes")
	webhookSecret := fs.String("webhook-secret", "", "whsec_ secret for Svix-mode webhooks")
	svixURL := fs.String("svix-url", "", "where Svix-mode webhooks are delivered")
	err5xx := fs.Float64("errors", 0, "fraction of requests answered 500/502/503 (a third each)")
	err504 := fs.Float64("err504", 0, "fraction of requests answered 504 (drawn with -errors; the two should sum to <= 1)")
	oddTypes := fs.Float64("odd-types", 0, "fraction of GET /job answers whose optional fields have odd JSON types (num_pages 3.0, duration \"12.5\", ...)")
	flap := fs.Float64("flap", 0, "fraction of jobs whose GET /job answers alternate 404 and the real status until the job is done")
	seed := fs.Int64("seed", 0, "random seed (0 = random)")
	offsetCursors := fs.Bool("offset-cursors", false, "GET /jobs next_cursor is the numeric offset of the next page, so jobs created between two pages repeat entries (default: an opaque keyset cursor; Reducto's is undocumented)")
	listStaleness := fs.Duration("list-staleness", 0, "GET /jobs reports statuses as of this long ago (simulator time); GET /job stays current")
	background := fs.Float64("background", 0, "untracked jobs the simulator creates by itself per simulator second (Poisson, same durations as submitted jobs), listed by GET /jobs")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	var problems []error
	for name, v := range map[string]float64{"fail": *failRate, "url-results": *urlRate, "errors": *err5xx,
		"err504": *err504, "odd-types": *oddTypes, "flap": *flap} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			problems = append(problems, fmt.Errorf("-%s: %v is not a fraction in [0, 1]", name, v))
		}
	}
	if *err5xx+*err504 > 1 {
		problems = append(problems, fmt.Errorf("-errors + -err504: %v is more than 1", *err5xx+*err504))
	}
	if *median <= 0 || *sigma < 0 || *speed <= 0 || *jobLimit < 0 || *globalLimit < 0 || *queue < 0 || *listStaleness < 0 {
		problems = append(problems, errors.New("-median, -speed must be positive; -sigma, -queue, -rate-limit, -global-rate-limit, -list-staleness not negative"))
	}
	if !(*background >= 0) || math.IsInf(*background, 0) {
		problems = append(problems, fmt.Errorf("-background: %v is not a finite rate >= 0", *background))
	}
	style := reductosim.CancelAsFailed
	switch *cancelStyle {
	case "failed":
	case "cancelled":
		style = reductosim.CancelAsCancelled
	default:
		problems = append(problems, fmt.Errorf("-cancel-style: %q is neither failed nor cancelled", *cancelStyle))
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}

	rngSeed := uint64(*seed)
	if rngSeed == 0 {
		rngSeed = rand.Uint64()
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(rngSeed, rngSeed^0x9e3779b97f4a7c15))
	spec := func(string, []byte) reductosim.JobSpec {
		mu.Lock()
		defer mu.Unlock()
		s := reductosim.JobSpec{
			Duration:   time.Duration(float64(*median) * math.Exp(*sigma*rng.NormFloat64())),
			Queue:      *queue,
			ResultSize: *resultSize,
			NumPages:   1 + rng.IntN(40),
		}
		switch r := rng.Float64(); {
		case r < *failRate:
			s.Outcome = reductosim.OutcomeFail
		case rng.Float64() < *urlRate:
			s.Outcome = reductosim.OutcomeCompleteURL
		}
		if *noProgress {
			s.Progress = reductosim.ProgressNone
		}
		return s
	}
	clock := reductosim.RealClock()
	if *speed != 1 {
		clock = reductosim.ScaledClock(*speed)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	faults := reductosim.Faults{Err500: *err5xx / 3, Err502: *err5xx / 3, Err503: *err5xx / 3, Err504: *err504,
		OddTypes: *oddTypes, Flap: *flap}
	sim, err := reductosim.New(reductosim.Options{
		APIKey:          *apiKey,
		Clock:           clock,
		Seed:            *seed,
		Spec:            spec,
		Lifecycle:       *lifecycle,
		CancelStyle:     style,
		JobRateLimit:    *jobLimit,
		GlobalRateLimit: *globalLimit,
		RetryAfter:      *retryAfter,
		WebhookSecret:   *webhookSecret,
		SvixURL:         *svixURL,
		Faults:          faults,
		Logger:          log,
		OffsetCursors:   *offsetCursors,
		ListStaleness:   *listStaleness,
		Background:      reductosim.Background{Rate: *background},
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "reducto simulator listening on http://%s (REDUCTO_BASE_URL=http://%s)\n", ln.Addr(), ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
