package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/reducto-bridge/reducto-bridge/internal/bridgeproc"
	"github.com/reducto-bridge/reducto-bridge/reducto/reductosim"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
)

const (
	benchAPIKey = "bench-key"
	benchPrefix = subject.DefaultPrefix
	// docsInterval is the ticker of the loop in Reducto's docs (simulator time).
	docsInterval = 2 * time.Second
	// clockTolerance is how far a converted simulator time may stray from the real readings
	// taken around it before the run is declared broken.
	clockTolerance = time.Millisecond
)

// rig is what one contender runs against: a fresh simulator on a fresh compressed clock and,
// for the bridge, a fresh NATS server and a bridge child process.
type rig struct {
	cfg    *benchConfig
	dir    string
	sim    *reductosim.Server
	simSrv *http.Server
	simURL string
	clock  reductosim.Clock
	tm     timeMap
	hooks  *hookRecorder

	ns       *server.Server
	natsProc *natsProcess // nats-server as its own process (rigOptions.natsProcess)
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	child    *childBridge
	replicas []*childBridge // more bridges on the key (the scheduler scenario's -replicas)
}

// rigOptions are what a scenario changes in its rig.
type rigOptions struct {
	withNATS    bool                            // start a NATS server
	natsProcess bool                            // ... as its own process ('bridge nats-server'), not in this one
	wrapSim     func(http.Handler) http.Handler // wraps the simulator's handler (nil: none)
}

// newRig starts the simulator (and NATS, in this process, when withNATS).
func newRig(cfg *benchConfig, wl *workload, withNATS bool) (*rig, error) {
	return newRigWith(cfg, wl, rigOptions{withNATS: withNATS})
}

// newRigWith starts the simulator and what o asks for.
func newRigWith(cfg *benchConfig, wl *workload, o rigOptions) (_ *rig, err error) {
	r := &rig{cfg: cfg, hooks: newHookRecorder()}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.dir, err = os.MkdirTemp("", "bridge-bench-*"); err != nil {
		return nil, err
	}
	clock := reductosim.ScaledClock(cfg.Speed)
	r.clock, r.tm = clock, newTimeMap(clock, cfg.Speed)
	r.sim, err = reductosim.New(reductosim.Options{
		APIKey:          benchAPIKey,
		Clock:           clock,
		Seed:            cfg.Seed,
		Spec:            wl.specFunc(),
		Lifecycle:       true,
		JobRateLimit:    cfg.RateLimit * cfg.Speed,
		GlobalRateLimit: cfg.GlobalRate * cfg.Speed,
		// One simulator second of the GET /job limit; the default (one real second) would be
		// k simulator seconds of burst.
		RateBurst:     max(1, int(cfg.RateLimit)),
		WebhookClient: &http.Client{Transport: r.hooks, Timeout: 10 * time.Second},
		OffsetCursors: cfg.OffsetCursors,
		ListStaleness: cfg.ListStaleness,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.simURL = "http://" + ln.Addr().String()
	var h http.Handler = r.sim
	if o.wrapSim != nil {
		h = o.wrapSim(h)
	}
	r.simSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go r.simSrv.Serve(ln)
	if !o.withNATS {
		return r, nil
	}
	if o.natsProcess {
		r.natsProc, err = startNATSProcess(cfg.natsCmd, cfg.natsEnv, filepath.Join(r.dir, "jetstream"), filepath.Join(cfg.Out, "nats-server.log"))
		if err != nil {
			return nil, err
		}
		r.natsURL = r.natsProc.url
	} else {
		r.ns, err = server.NewServer(&server.Options{
			ServerName: "bridge-bench", Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(r.dir, "jetstream"), NoLog: true, NoSigs: true,
		})
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		r.ns.Start()
		if !r.ns.ReadyForConnections(10 * time.Second) {
			return nil, errors.New("nats server not ready within 10s")
		}
		r.natsURL = r.ns.ClientURL()
	}
	if r.nc, err = nats.Connect(r.natsURL, nats.Name("bridge-bench")); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	if r.js, err = jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, err
	}
	return r, nil
}

// bridgeEnv is the child's configuration: every schedule duration divided by k, every rate
// multiplied by k; timeouts (HTTP, ack wait, drain) stay real. BRIDGE_LIST_SWEEP is -list-sweep
// (the comparison's contenders set their own).
func (r *rig) bridgeEnv(addr string) map[string]string {
	c := r.cfg
	return map[string]string{
		"NATS_URL":                     r.natsURL,
		"REDUCTO_BASE_URL":             r.simURL,
		"REDUCTO_API_KEY":              benchAPIKey,
		"BRIDGE_HTTP_ADDR":             addr,
		"BRIDGE_POLL_INITIAL_INTERVAL": c.real(2 * time.Second).String(),
		"BRIDGE_POLL_MAX_INTERVAL":     c.real(30 * time.Second).String(),
		"BRIDGE_JOB_TTL":               c.real(12 * time.Hour).String(),
		"BRIDGE_WEBHOOK_POLL_INTERVAL": c.real(5 * time.Minute).String(),
		"BRIDGE_RETRY_AFTER_MAX":       c.real(time.Minute).String(),
		"BRIDGE_RATE_LIMIT":            strconv.FormatFloat(c.BridgeRate*c.Speed, 'g', -1, 64),
		"BRIDGE_RATE_LIMIT_ALL":        strconv.FormatFloat(c.BridgeRateAll*c.Speed, 'g', -1, 64),
		"BRIDGE_LOG_LEVEL":             "warn",
		"BRIDGE_PPROF":                 "true",
		"BRIDGE_LIST_SWEEP":            strconv.FormatBool(c.ListSweep),
		// The sweep's schedule at its defaults, in simulator time like the poll schedule.
		"BRIDGE_LIST_INTERVAL":        c.real(sweep.DefaultInterval).String(),
		"BRIDGE_LIST_SAFETY_INTERVAL": c.real(sweep.DefaultSafetyInterval).String(),
		"BRIDGE_LIST_MAX_RATE":        strconv.FormatFloat(sweep.DefaultMaxRate*c.Speed, 'g', -1, 64),
		"BRIDGE_LIST_DEEP_AGE":        c.real(sweep.DefaultDeepAge).String(),
		"BRIDGE_LIST_TRACK_SLACK":     c.real(sweep.DefaultTrackSlack).String(),
	}
}

// startScenario starts a scenario's bridge on a free address, with the rig's environment
// changed by tune (nil: as is), and waits until it is ready.
func (r *rig) startScenario(ctx context.Context, name string, tune func(env map[string]string)) error {
	addr, err := bridgeproc.FreeAddr()
	if err != nil {
		return err
	}
	env := r.bridgeEnv(addr)
	if tune != nil {
		tune(env)
	}
	return r.startBridge(ctx, env, name)
}

// startBridge starts the child with env and waits until it is ready.
func (r *rig) startBridge(ctx context.Context, env map[string]string, name string) error {
	var err error
	r.child, err = startChild(r.cfg.bridgeCmd, env["BRIDGE_HTTP_ADDR"], env, r.cfg.bridgeEnv, filepath.Join(r.cfg.Out, name+"-bridge.log"))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return r.child.waitReady(rctx)
}

// close stops everything the rig started; the child is stopped by the caller (to check its
// exit), or here as a last resort.
func (r *rig) close() {
	for _, c := range append(r.replicas, r.child) {
		if c == nil {
			continue
		}
		select {
		case <-c.Exited():
		default:
			_ = c.stop(30 * time.Second)
		}
	}
	if r.nc != nil {
		r.nc.Close()
	}
	if r.ns != nil {
		r.ns.Shutdown()
		r.ns.WaitForShutdown()
	}
	if r.natsProc != nil {
		_ = r.natsProc.stop(30 * time.Second)
	}
	if r.sim != nil {
		r.sim.Close()
	}
	if r.simSrv != nil {
		r.simSrv.Close()
	}
	r.hooks.close()
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// saveMetrics keeps the child's /metrics, for looking into a run afterwards.
func (r *rig) saveMetrics(ctx context.Context, name string) {
	body, err := r.child.get(ctx, "/metrics")
	if err == nil {
		_ = os.WriteFile(filepath.Join(r.cfg.Out, name+"-metrics.txt"), body, 0o644)
	}
}

// tally is one contender's bookkeeping.
type tally struct {
	ids      []string    // job i's id
	lo, hi   []time.Time // real readings around job i's creation, for the clock check
	det      *detector
	mu       sync.Mutex
	firstErr error
}

func (u *tally) fail(err error) {
	u.mu.Lock()
	if u.firstErr == nil {
		u.firstErr = err
	}
	u.mu.Unlock()
}

func (u *tally) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.firstErr
}

// runContender runs the workload for one contender and measures it.
func runContender(ctx context.Context, cfg *benchConfig, wl *workload, mode string, stderr io.Writer) (*contenderResult, error) {
	r, err := newRig(cfg, wl, mode != modeDocsLoop)
	if err != nil {
		return nil, err
	}
	defer r.close()
	n := len(wl.durations)
	u := &tally{ids: make([]string, n), lo: make([]time.Time, n), hi: make([]time.Time, n), det: newDetector(n)}

	if mode != modeDocsLoop {
		addr, err := bridgeproc.FreeAddr()
		if err != nil {
			return nil, err
		}
		env := r.bridgeEnv(addr)
		// Only bridge-sweep sweeps the list; a bridge that does not know the variable logs
		// it as unknown and ignores it (then bridge-sweep is bridge-poll).
		env["BRIDGE_LIST_SWEEP"] = strconv.FormatBool(mode == modeSweep)
		if mode == modeWebhook {
			env["BRIDGE_PUBLIC_URL"] = "http://" + addr
			env["BRIDGE_WEBHOOK_TOKEN"] = rand.Text()
		}
		if err := r.startBridge(ctx, env, mode); err != nil {
			return nil, err
		}
		sub, err := r.nc.Subscribe(subject.EventsAll(benchPrefix), func(m *nats.Msg) {
			at := time.Now()
			if id, ok := eventJobID(m.Subject); ok {
				u.det.record(id, at)
			}
		})
		if err != nil {
			return nil, err
		}
		_ = sub.SetPendingLimits(-1, -1)
		defer sub.Unsubscribe()
		if err := r.nc.Flush(); err != nil {
			return nil, err
		}
	}

	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var heap *heapSampler
	if mode == modeDocsLoop {
		heap = startHeapSampler()
	}
	start := time.Now()
	r.sim.SetBackground(backgroundTraffic(cfg))
	var feeders sync.WaitGroup // docs loops and submits
	var futures []jetstream.PubAckFuture
	switch mode {
	case modeDocsLoop:
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second}, Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		err = r.feed(cctx, wl, start, func(i int) error {
			id := r.create(u, wl, i)
			feeders.Go(func() {
				if at, ok := docsLoop(cctx, hc, r.simURL, id, cfg.real(docsInterval)); ok {
					u.det.record(id, at)
				}
			})
			return nil
		})
	case modePoll, modeSweep:
		err = r.feed(cctx, wl, start, func(i int) error {
			id := r.create(u, wl, i)
			f, err := r.js.PublishAsync(subject.Track(benchPrefix, id), nil, jetstream.WithStallWait(30*time.Second))
			if err != nil {
				return fmt.Errorf("track %s: %w", id, err)
			}
			futures = append(futures, f)
			return nil
		})
	case modeWebhook:
		err = r.feed(cctx, wl, start, func(i int) error {
			feeders.Go(func() {
				if err := r.submit(cctx, u, i); err != nil {
					u.fail(err)
				}
			})
			return u.err()
		})
	}
	if err == nil {
		err = waitFutures(cctx, futures)
	}
	if mode == modeWebhook {
		feeders.Wait()
		if err == nil {
			err = u.err()
		}
	}
	if err != nil {
		cancel()
		feeders.Wait()
		return nil, err
	}

	var childDone <-chan struct{}
	if r.child != nil {
		childDone = r.child.Exited()
	}
	timedOut := false
	select {
	case <-u.det.done:
	case <-cctx.Done():
		timedOut = true
		fmt.Fprintf(stderr, "bench: %s: %d of %d jobs detected before the timeout (%s)\n", mode, u.det.len(), n, cfg.Timeout)
	case <-childDone:
		return nil, fmt.Errorf("bridge exited during the run: %v (see %s)", r.child.Err(), r.child.LogPath())
	}
	end := time.Now()
	if mode == modeDocsLoop {
		cancel() // loops of undetected jobs, after a timeout
		feeders.Wait()
	}

	res := &contenderResult{Name: mode, Jobs: n, WallSeconds: end.Sub(start).Seconds(), TimedOut: timedOut}
	res.SimSeconds = end.Sub(start).Seconds() * cfg.Speed
	if err := r.measure(ctx, res, u, mode); err != nil {
		return nil, err
	}
	if heap != nil {
		res.PeakMemoryBytes = heap.finish()
		res.MemoryKind = "Go heap + stacks, in-process"
	} else {
		r.saveMetrics(ctx, mode)
		if err := r.child.stop(30 * time.Second); err != nil {
			return nil, err
		}
		res.PeakMemoryBytes, res.EndRSSBytes = r.child.memory()
		res.MemoryKind = "bridge process RSS (VmHWM)"
		res.BridgeLog = r.child.LogPath()
	}
	return res, nil
}

// feed creates job i at its arrival time (simulator offset from start) through each.
func (r *rig) feed(ctx context.Context, wl *workload, start time.Time, each func(i int) error) error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i, at := range wl.arrivals {
		if d := time.Until(start.Add(r.cfg.real(at))); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return fmt.Errorf("feeding job %d: %w", i, context.Cause(ctx))
			case <-t.C:
			}
		}
		if err := each(i); err != nil {
			return err
		}
	}
	return nil
}

// create makes job i in the simulator directly, noting the real time around it.
func (r *rig) create(u *tally, wl *workload, i int) string {
	u.lo[i] = time.Now()
	id := r.sim.Create(wl.spec(i))
	u.hi[i] = time.Now()
	u.ids[i] = id
	return id
}

// submit sends job i through P.submit, the path that asks Reducto for a webhook.
func (r *rig) submit(ctx context.Context, u *tally, i int) error {
	body, _ := json.Marshal(map[string]any{"endpoint": "parse", "body": map[string]string{"input": inputURL(i)}})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u.lo[i] = time.Now()
	msg, err := r.nc.RequestWithContext(rctx, subject.Submit(benchPrefix), body)
	u.hi[i] = time.Now()
	if err != nil {
		return fmt.Errorf("submit job %d: %w", i, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return fmt.Errorf("submit job %d: error %s %q", i, code, msg.Header.Get(micro.ErrorHeader))
	}
	var rep struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.JobID == "" {
		return fmt.Errorf("submit job %d: reply %q", i, msg.Data)
	}
	u.ids[i] = rep.JobID
	return nil
}

func waitFutures(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("track %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for track acks: %w", context.Cause(ctx))
		}
	}
	return nil
}

// docsLoop is the loop from Reducto's docs: tick every 2 s, GET /job, stop at Completed or
// Failed. It reports when it saw the end.
func docsLoop(ctx context.Context, hc *http.Client, base, id string, every time.Duration) (time.Time, bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-t.C:
		}
		status, err := jobStatus(ctx, hc, base, id)
		if err != nil {
			continue // as in the docs: try again at the next tick
		}
		switch status {
		case "Completed", "Failed", "Cancelled":
			return time.Now(), true
		}
	}
}

func jobStatus(ctx context.Context, hc *http.Client, base, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/job/"+id, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("GET /job/%s: %s", id, resp.Status)
	}
	var j struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return "", err
	}
	return j.Status, nil
}

// eventJobID returns the job id of an event subject P.job.<kind>.<id>.
func eventJobID(subj string) (string, bool) {
	rest, ok := strings.CutPrefix(subj, benchPrefix+".job.")
	if !ok {
		return "", false
	}
	_, id, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}

// storedEvents counts the events REDUCTO_EVENTS holds per job. A core subscriber can see an
// event before the stream has stored it, so it reads the stream again (for up to
// storedWait) until every job the detector saw has its event there: the count is then final
// for every detected job.
func (r *rig) storedEvents(ctx context.Context, u *tally) (map[string]uint64, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := r.js.Stream(sctx, subject.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("events stream: %w", err)
	}
	deadline := time.Now().Add(storedWait)
	for {
		info, err := s.Info(sctx, jetstream.WithSubjectFilter(subject.EventsAll(benchPrefix)))
		if err != nil {
			return nil, fmt.Errorf("events stream info: %w", err)
		}
		stored := map[string]uint64{}
		for subj, c := range info.State.Subjects {
			if id, ok := eventJobID(subj); ok {
				stored[id] += c
			}
		}
		missing := false
		for _, id := range u.ids {
			if at, _ := u.det.seen(id); !at.IsZero() && stored[id] == 0 {
				missing = true
				break
			}
		}
		if !missing || time.Now().After(deadline) {
			return stored, nil
		}
		select {
		case <-sctx.Done():
			return stored, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// storedWait bounds how long [rig.storedEvents] waits for the stream to catch up with the
// events core subscribers saw.
const storedWait = 10 * time.Second

// measure fills res from the simulator's statistics, the detections and (for the bridge) the
// events stream.
func (r *rig) measure(ctx context.Context, res *contenderResult, u *tally, mode string) error {
	st := r.sim.Stats()
	res.RateLimited2000, res.RateLimited1000, res.Shed429 = st.RateLimited2000, st.RateLimited1000, st.Shed429
	res.GetRequestsAll = st.Requests[reductosim.EndpointGetJob]
	res.WebhooksDelivered, res.WebhooksFailed = st.WebhooksDelivered, st.WebhooksFailed
	res.AllRequests, res.BackgroundJobs = allRequests(st), st.BackgroundJobs

	stored := map[string]uint64{}
	if r.js != nil {
		var err error
		if stored, err = r.storedEvents(ctx, u); err != nil {
			return err
		}
	}

	res.UntrackedEvents = untrackedEvents(stored, u.ids)
	var lags, hookMs []float64
	var clockErr time.Duration
	for i, id := range u.ids {
		js, ok := st.Jobs[id]
		if !ok {
			continue
		}
		res.GetRequests += js.Gets
		clockErr = max(clockErr, outside(r.tm.toReal(js.Created), u.lo[i], u.hi[i]))
		at, sightings := u.det.seen(id)
		row := jobRow{Index: i, ID: id, Gets: js.Gets, Events: sightings, Lag: math.NaN(), HookMs: math.NaN()}
		if r.js != nil {
			row.Events = int(stored[id])
		}
		if d, ok := js.Elapsed(); ok {
			row.Duration = d.Seconds()
		}
		res.perJob = append(res.perJob, &row)
		if sightings > 1 {
			res.DuplicateSightings += sightings - 1
		}
		if at.IsZero() {
			continue
		}
		res.JobsDetected++
		switch {
		case r.js == nil && sightings == 1, stored[id] == 1:
			res.JobsOneEvent++
		}
		if js.Terminal.IsZero() {
			res.NotTerminal++
			continue
		}
		lag := r.tm.lag(at, js.Terminal)
		if lag < -clockTolerance.Seconds()*r.cfg.Speed {
			res.NegativeLags++
		}
		lags = append(lags, lag)
		row.Lag = lag
		if mode == modeWebhook {
			if hs, ok := r.hooks.started(id); ok {
				row.HookMs = float64(at.Sub(hs)) / float64(time.Millisecond)
				hookMs = append(hookMs, row.HookMs)
			}
		}
	}
	// The conversion must also hold now, after the whole run.
	lo := time.Now()
	simNow := r.clock.Now()
	clockErr = max(clockErr, outside(r.tm.toReal(simNow), lo, time.Now()))
	res.ClockCheckMicros = float64(clockErr) / float64(time.Microsecond)
	if clockErr > clockTolerance {
		return fmt.Errorf("time conversion check failed: a job's creation converts to a real time %s outside the readings around it", clockErr)
	}
	if res.NegativeLags > 0 {
		return fmt.Errorf("time conversion check failed: %d jobs detected before they ended", res.NegativeLags)
	}
	res.RequestsPerJob = float64(res.GetRequests) / float64(res.Jobs)
	res.AllRequestsPerJob = float64(res.AllRequests) / float64(res.Jobs)
	res.Lag = summarize(lags)
	if mode == modeWebhook {
		d := summarize(hookMs)
		res.WebhookLatency = &d
	}
	return nil
}
