package reductosim

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is how a simulated job ends.
type Outcome int

const (
	// OutcomeComplete ends "Completed" with the result inline.
	OutcomeComplete Outcome = iota
	// OutcomeCompleteURL ends "Completed" with a URL result ({"type":"url",...}); the full
	// result is served without auth at GET /results/{result_id}. Only a ParseResponse can
	// carry a URL result (reference §3.1), so for any other type it means [OutcomeComplete].
	OutcomeCompleteURL
	// OutcomeFail ends "Failed" with an error object and a reason.
	OutcomeFail
	// OutcomeNever never ends on its own (only a cancel ends it).
	OutcomeNever
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case OutcomeComplete:
		return "complete"
	case OutcomeCompleteURL:
		return "complete-url"
	case OutcomeFail:
		return "fail"
	case OutcomeNever:
		return "never"
	}
	return "unknown"
}

// Progress is how a running job reports progress.
type Progress int

const (
	// ProgressLinear reports 0 while queued, 100*elapsed/duration while running and 100 when
	// completed (null once failed or cancelled).
	ProgressLinear Progress = iota
	// ProgressNone always reports null.
	ProgressNone
)

// Job types, as reported in the "type" field.
const (
	TypeParse    = "Parse"
	TypeExtract  = "Extract"
	TypeSplit    = "Split"
	TypeEdit     = "Edit"
	TypePipeline = "Pipeline"
)

// Statuses the simulator reports. By default GET /job only reports the four of its documented
// enum: Idle (queued), Pending (running), Completed and Failed. InProgress and Completing need
// [Options.Lifecycle], Cancelled needs [CancelAsCancelled].
const (
	StatusIdle       = "Idle"
	StatusPending    = "Pending"
	StatusInProgress = "InProgress"
	StatusCompleting = "Completing"
	StatusCompleted  = "Completed"
	StatusFailed     = "Failed"
	StatusCancelled  = "Cancelled"
)

// Default failure and cancellation details.
const (
	DefaultErrorName = "DOCUMENT_CORRUPT"
	DefaultErrorCode = 400
	DefaultReason    = "The document appears to be corrupt and could not be processed"
	CancelErrorName  = "JOB_CANCELLED"
	CancelReason     = "Job was cancelled by the user"
	// CancelErrorCode is the error.code of a cancelled job. Reducto documents no value; 400
	// matches the other user-caused errors.
	CancelErrorCode = 400
)

// JobSpec decides how one simulated job behaves over simulator time.
type JobSpec struct {
	// Type is the job type reported in "type"; empty means Parse (or, for HTTP submissions,
	// the type of the endpoint).
	Type string
	// Queue is the time spent queued before running: reported "Idle" (or "Pending" with
	// [Options.Lifecycle], as the async-overview docs describe a queued job).
	Queue time.Duration
	// Duration is the running time after Queue.
	Duration time.Duration
	// Outcome is how the job ends.
	Outcome Outcome
	// ResultSize is the approximate size in bytes of the result JSON (parse, extract and
	// pipeline results are padded to it; split and edit results have their natural size).
	// 0 means 2048.
	ResultSize int
	// ErrorName, Reason and ErrorCode describe an OutcomeFail job; defaults
	// [DefaultErrorName], [DefaultReason], [DefaultErrorCode].
	ErrorName string
	Reason    string
	ErrorCode int
	// Progress selects the progress model.
	Progress Progress
	// NumPages is the document's page count. 0 means 3.
	NumPages int
	// Flap makes GET /job answer, while the job is not terminal, 404 Job not found and the
	// real status in strict alternation (404 first); once terminal every answer is the real
	// one. [Faults.Flap] sets it on a fraction of new jobs.
	Flap bool
	// OddTypes makes every 200 GET /job answer for this job carry optional fields of
	// unexpected JSON types, as [Faults.OddTypes] does for a fraction of answers.
	OddTypes bool
}

func (sp JobSpec) withDefaults() JobSpec {
	if sp.Type == "" {
		sp.Type = TypeParse
	}
	if sp.ResultSize <= 0 {
		sp.ResultSize = 2048
	}
	if sp.ErrorName == "" {
		sp.ErrorName = DefaultErrorName
	}
	if sp.ErrorCode == 0 {
		sp.ErrorCode = DefaultErrorCode
	}
	if sp.Reason == "" {
		sp.Reason = DefaultReason
	}
	if sp.NumPages <= 0 {
		sp.NumPages = 3
	}
	if sp.Outcome == OutcomeCompleteURL && sp.Type != TypeParse {
		sp.Outcome = OutcomeComplete
	}
	sp.Queue = max(sp.Queue, 0)
	sp.Duration = max(sp.Duration, 0)
	return sp
}

// job is one simulated job. The fields above mu never change after creation; the quoted
// forms are encoded once so that GET /job only appends bytes.
type job struct {
	id         string
	seq        uint64
	spec       JobSpec
	created    time.Time
	naturalEnd time.Time       // created + Queue + Duration
	resultID   string          // for URL results and edited documents, else ""
	metadata   json.RawMessage // compact JSON, nil when none
	hook       *hookTarget
	background bool // created by the simulator itself ([Background]), tracked by nobody

	idJSON        []byte // quoted
	createdJSON   []byte // quoted RFC 3339
	rawConfigJSON []byte // quoted
	reasonJSON    []byte // quoted
	errNameJSON   []byte // quoted

	gets    atomic.Int64
	cancels atomic.Int64
	flapN   atomic.Int64           // non-terminal GET /job answers of a flapping job
	flaps   atomic.Int64           // flapping 404s answered
	odd     atomic.Int64           // odd-typed answers
	final   atomic.Pointer[body]   // terminal GET /job body, built on first need
	inner   atomic.Pointer[[]byte] // the result's "result" field when not cached server-wide

	mu          sync.Mutex
	cancelledAt time.Time
	deleted     bool
	deletedAt   time.Time
	deleteFirst int
	deleteFor   time.Duration
	hookFired   bool
}

// jobState is the mutable part of a job, copied under its lock.
type jobState struct {
	cancelledAt time.Time
	deleted     bool
	deletedAt   time.Time
	deleteFirst int
	deleteFor   time.Duration
}

func (j *job) state() jobState {
	j.mu.Lock()
	defer j.mu.Unlock()
	return jobState{
		cancelledAt: j.cancelledAt,
		deleted:     j.deleted,
		deletedAt:   j.deletedAt,
		deleteFirst: j.deleteFirst,
		deleteFor:   j.deleteFor,
	}
}

// deletionCode is the status GET /job answers for a deleted job at now.
func (st jobState) deletionCode(now time.Time) int {
	if now.Before(st.deletedAt.Add(st.deleteFor)) {
		return st.deleteFirst
	}
	return 410
}

// jobView is what a job looks like at one instant.
type jobView struct {
	status      string
	progress    float64
	hasProgress bool
	terminal    bool
	end         time.Time // terminal time, when terminal
	failed      bool      // Failed or cancelled: carries reason and error
	cancelled   bool
}

func (s *Server) view(j *job, cancelledAt, now time.Time) jobView {
	sp := &j.spec
	if !cancelledAt.IsZero() {
		v := jobView{status: StatusFailed, terminal: true, end: cancelledAt, failed: true, cancelled: true}
		if s.cancelStyle == CancelAsCancelled {
			v.status = StatusCancelled
		}
		return v
	}
	linear := sp.Progress == ProgressLinear
	elapsed := now.Sub(j.created)
	if elapsed < sp.Queue {
		v := jobView{status: StatusIdle, hasProgress: linear}
		if s.lifecycle {
			v.status = StatusPending
		}
		return v
	}
	running := elapsed - sp.Queue
	if sp.Outcome == OutcomeNever || running < sp.Duration {
		v := jobView{status: StatusPending, hasProgress: linear}
		if sp.Duration > 0 {
			v.progress = min(100*float64(running)/float64(sp.Duration), 99)
		}
		if s.lifecycle {
			v.status = StatusInProgress
			if sp.Outcome != OutcomeNever && running >= sp.Duration-sp.Duration/20 {
				v.status = StatusCompleting
			}
		}
		return v
	}
	if sp.Outcome == OutcomeFail {
		return jobView{status: StatusFailed, terminal: true, end: j.naturalEnd, failed: true}
	}
	return jobView{status: StatusCompleted, terminal: true, end: j.naturalEnd, progress: 100, hasProgress: linear}
}

// CreateOption adjusts a job made by [Server.Create].
type CreateOption func(*createConfig)

type createConfig struct {
	metadata  json.RawMessage
	hook      *hookTarget
	rawConfig string
}

// WithMetadata sets the job's async.metadata (echoed in its webhook); v is encoded as JSON.
func WithMetadata(v any) CreateOption {
	return func(c *createConfig) {
		if b, err := json.Marshal(v); err == nil {
			c.metadata = b
		}
	}
}

// WithDirectWebhook makes the job send a direct-mode webhook to url when it ends.
func WithDirectWebhook(url string) CreateOption {
	return func(c *createConfig) { c.hook = &hookTarget{mode: hookDirect, url: url} }
}

// WithSvixWebhook makes the job send a Svix-mode webhook (to [Options.SvixURL]) when it ends.
func WithSvixWebhook(channels ...string) CreateOption {
	return func(c *createConfig) { c.hook = &hookTarget{mode: hookSvix, channels: channels} }
}

// WithRawConfig sets the job's raw_config; by default Create synthesizes a v3 request body.
func WithRawConfig(body string) CreateOption {
	return func(c *createConfig) { c.rawConfig = body }
}

// Create makes a job directly, as if it had been submitted now, and returns its id. It does
// not call [Options.Spec].
func (s *Server) Create(spec JobSpec, opts ...CreateOption) string {
	var c createConfig
	for _, o := range opts {
		o(&c)
	}
	if c.rawConfig == "" {
		c.rawConfig = synthesizeConfig(spec.Type, c)
	}
	return s.newJob(spec, c.rawConfig, c.metadata, c.hook).id
}

// synthesizeConfig builds the request body a job created through the control API would have
// been submitted with: the legacy edit shape for Edit, the v3 shape otherwise.
func synthesizeConfig(typ string, c createConfig) string {
	type webhook struct {
		Mode     string          `json:"mode"`
		URL      string          `json:"url,omitempty"`
		Metadata json.RawMessage `json:"metadata,omitempty"`
		Channels []string        `json:"channels,omitempty"`
	}
	if typ == TypeEdit {
		req := struct {
			DocumentURL      string   `json:"document_url"`
			EditInstructions string   `json:"edit_instructions"`
			Webhook          *webhook `json:"webhook,omitempty"`
		}{DocumentURL: "https://example.com/form.pdf", EditInstructions: "Fill in the form"}
		if c.hook != nil {
			req.Webhook = &webhook{Mode: c.hook.mode, URL: c.hook.url, Metadata: c.metadata, Channels: c.hook.channels}
		}
		b, _ := json.Marshal(req)
		return string(b)
	}
	type async struct {
		Metadata json.RawMessage `json:"metadata,omitempty"`
		Priority bool            `json:"priority"`
		Webhook  *webhook        `json:"webhook,omitempty"`
	}
	req := struct {
		Input string `json:"input"`
		Async async  `json:"async"`
	}{Input: "https://example.com/document.pdf", Async: async{Metadata: c.metadata}}
	if c.hook != nil {
		req.Async.Webhook = &webhook{Mode: c.hook.mode, URL: c.hook.url, Channels: c.hook.channels}
	}
	b, _ := json.Marshal(req)
	return string(b)
}

const createdLayout = "2006-01-02T15:04:05.000000Z07:00"

func (s *Server) newJob(spec JobSpec, rawConfig string, metadata json.RawMessage, hook *hookTarget) *job {
	return s.newJobAt(s.clock.Now(), spec, rawConfig, metadata, hook, false)
}

// newJobAt makes a job created at the simulator time at (now, or for background traffic the
// arrival instant, which may lie a little in the past).
func (s *Server) newJobAt(at time.Time, spec JobSpec, rawConfig string, metadata json.RawMessage, hook *hookTarget, background bool) *job {
	spec = spec.withDefaults()
	// Drawn only when the fault is on, so that the seeded sequence of ids is otherwise the
	// same as without it.
	if f := s.faults.Load(); !spec.Flap && f.Flap > 0 && s.random() < f.Flap {
		spec.Flap = true
	}
	// Without a monotonic reading, created orders and compares on the wall clock only, like
	// the listing cursor derived from it. The created_at shown is the real instant of the
	// creation: under a scaled clock the client's configured durations are divided by the
	// factor, so it compares created_at with its own clock (the list sweep's ages).
	now := at.Round(0)
	j := &job{
		id:         s.newID(),
		seq:        s.seq.Add(1),
		spec:       spec,
		created:    now,
		naturalEnd: now.Add(spec.Queue + spec.Duration),
		metadata:   metadata,
		hook:       hook,
		background: background,
	}
	j.idJSON = quote(j.id)
	j.createdJSON = quote(wallTime(s.clock, now).UTC().Format(createdLayout))
	j.rawConfigJSON = quote(rawConfig)
	j.reasonJSON = quote(spec.Reason)
	j.errNameJSON = quote(spec.ErrorName)
	if spec.Outcome == OutcomeCompleteURL || spec.Type == TypeEdit {
		j.resultID = s.newID()
		s.results.Store(j.resultID, j)
	}
	s.jobs.Store(j.id, j)

	s.orderMu.Lock()
	if n := len(s.order); n == 0 || !j.before(s.order[n-1]) {
		s.order = append(s.order, j)
	} else {
		i, _ := slices.BinarySearchFunc(s.order, j, compareJobs)
		s.order = slices.Insert(s.order, i, j)
	}
	s.orderMu.Unlock()

	if hook != nil && spec.Outcome != OutcomeNever {
		s.hooks.push(j.naturalEnd, j)
	}
	return j
}

// before orders jobs by creation time, then by submission order.
func (j *job) before(k *job) bool { return compareJobs(j, k) < 0 }

func compareJobs(a, b *job) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

func (s *Server) lookup(id string) *job {
	v, ok := s.jobs.Load(id)
	if !ok {
		return nil
	}
	return v.(*job)
}

// cancel ends a non-terminal job now. It reports whether the job was cancelled by this call.
func (s *Server) cancel(j *job) bool {
	now := s.clock.Now()
	j.mu.Lock()
	if j.deleted || !j.cancelledAt.IsZero() || s.view(j, time.Time{}, now).terminal {
		j.mu.Unlock()
		return false
	}
	j.cancelledAt = now
	j.mu.Unlock()
	if j.hook != nil {
		s.hooks.push(now, j)
	}
	return true
}

// Cancel cancels a job as POST /cancel would, without counting a request. It reports whether
// the job existed, was not terminal or deleted, and is now cancelled.
func (s *Server) Cancel(id string) bool {
	j := s.lookup(id)
	return j != nil && s.cancel(j)
}

// Delete marks a job deleted: GET /job answers first (409 JOB_DELETION_IN_PROGRESS or 404
// Job not found; anything else is taken as 409) for d of simulator time, then 410 JOB_DELETED.
// A deleted job leaves the GET /jobs listing, its URL result disappears and a webhook not yet
// sent is dropped. Unknown ids are ignored.
func (s *Server) Delete(id string, first int, d time.Duration) {
	j := s.lookup(id)
	if j == nil {
		return
	}
	if first != 404 {
		first = 409
	}
	s.markDeleted(j, first, d)
}

func (s *Server) markDeleted(j *job, first int, d time.Duration) {
	now := s.clock.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.deleted = true
	j.deletedAt = now
	j.deleteFirst = first
	j.deleteFor = d
}

// JobStats is the per-job part of [Stats].
type JobStats struct {
	// Type is the job type ("Parse", ...).
	Type string
	// Status is what GET /job would report now (ignoring deletion and flapping).
	Status string
	// Outcome is the spec's outcome.
	Outcome Outcome
	// Created is the creation time; Terminal the time it became terminal (zero if not yet),
	// both on the simulator clock.
	Created, Terminal time.Time
	// Gets counts GET /job/{id} requests answered for this job (including 404/409/410 for a
	// deleted job; not counting requests rejected by auth, rate limits or faults).
	Gets int64
	// Cancels counts POST /cancel/{id} requests answered for this job.
	Cancels int64
	// Flaps counts the 404s answered because the job flaps ([JobSpec.Flap]); they are
	// included in Gets.
	Flaps int64
	// OddTypes counts the GET /job answers with odd JSON types ([JobSpec.OddTypes],
	// [Faults.OddTypes]).
	OddTypes int64
	// Cancelled and Deleted tell whether the job was cancelled or deleted.
	Cancelled, Deleted bool
	// Background tells that the simulator created the job itself, as untracked account
	// traffic ([Background]).
	Background bool
}

// JobSnapshot is everything known about one job at one instant.
type JobSnapshot struct {
	ID string
	JobStats
	// Progress is the reported progress, nil for null.
	Progress *float64
	// Spec is the job's spec with defaults applied.
	Spec JobSpec
	// RawConfig is the submitted body (raw_config).
	RawConfig string
	// Metadata is async.metadata (or the legacy webhook.metadata), nil when absent.
	Metadata json.RawMessage
	// WebhookMode is "direct", "svix" or "" and WebhookURL the direct-mode URL.
	WebhookMode, WebhookURL string
	// ResultID is the id of the URL result or edited document, if any.
	ResultID string
}

func (s *Server) jobStats(j *job, now time.Time) (JobStats, jobView) {
	st := j.state()
	v := s.view(j, st.cancelledAt, now)
	js := JobStats{
		Type:       j.spec.Type,
		Status:     v.status,
		Outcome:    j.spec.Outcome,
		Created:    j.created,
		Gets:       j.gets.Load(),
		Cancels:    j.cancels.Load(),
		Flaps:      j.flaps.Load(),
		OddTypes:   j.odd.Load(),
		Cancelled:  v.cancelled,
		Deleted:    st.deleted,
		Background: j.background,
	}
	if v.terminal {
		js.Terminal = v.end
	}
	return js, v
}

// Job returns a snapshot of the job with the given id.
func (s *Server) Job(id string) (JobSnapshot, bool) {
	j := s.lookup(id)
	if j == nil {
		return JobSnapshot{}, false
	}
	js, v := s.jobStats(j, s.clock.Now())
	snap := JobSnapshot{
		ID:        j.id,
		JobStats:  js,
		Spec:      j.spec,
		RawConfig: unquote(j.rawConfigJSON),
		Metadata:  j.metadata,
		ResultID:  j.resultID,
	}
	if v.hasProgress {
		p := roundTo(v.progress, 2)
		snap.Progress = &p
	}
	if j.hook != nil {
		snap.WebhookMode, snap.WebhookURL = j.hook.mode, j.hook.url
	}
	return snap, true
}

// typeForEndpoint maps a submission path to the job type it creates.
func typeForEndpoint(path string) string {
	switch strings.TrimSuffix(strings.TrimPrefix(path, "/"), "_async") {
	case "extract":
		return TypeExtract
	case "split":
		return TypeSplit
	case "edit":
		return TypeEdit
	case "pipeline":
		return TypePipeline
	}
	return TypeParse
}

// defaultSpec is the job behaviour used when Options.Spec is nil. force_url_result only gives a
// URL result on /parse_async: only a ParseResponse has one.
func (s *Server) defaultSpec(endpoint string, body []byte) JobSpec {
	d := time.Duration(float64(20*time.Second) * math.Exp(0.8*s.normal()))
	spec := JobSpec{Duration: d.Round(time.Millisecond), Outcome: OutcomeComplete}
	var req struct {
		Settings struct {
			ForceURLResult bool `json:"force_url_result"`
		} `json:"settings"`
	}
	if typeForEndpoint(endpoint) == TypeParse && json.Unmarshal(body, &req) == nil && req.Settings.ForceURLResult {
		spec.Outcome = OutcomeCompleteURL
	}
	return spec
}

// quote encodes s as a JSON string without escaping <, > and & (as Python's json does).
// Most strings need no escaping at all, so that case skips the encoder.
func quote(s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		b := make([]byte, 0, len(s)+2)
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func unquote(b []byte) string {
	var s string
	_ = json.Unmarshal(b, &s)
	return s
}

func roundTo(f float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(f*p) / p
}
