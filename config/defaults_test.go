package config_test

import (
	"testing"

	"github.com/reducto-bridge/reducto-bridge/budget"
	"github.com/reducto-bridge/reducto-bridge/capture"
	"github.com/reducto-bridge/reducto-bridge/command"
	"github.com/reducto-bridge/reducto-bridge/config"
	"github.com/reducto-bridge/reducto-bridge/poller"
	"github.com/reducto-bridge/reducto-bridge/publisher"
	"github.com/reducto-bridge/reducto-bridge/reducto"
	"github.com/reducto-bridge/reducto-bridge/subject"
	"github.com/reducto-bridge/reducto-bridge/sweep"
	"github.com/reducto-bridge/reducto-bridge/track"
)

// TestDefaultsMatchPackages: each package exports the default it applies to a zero option,
// and config's default tags (what BRIDGE_* variables default to, what `bridge env` prints)
// must say the same, so that a library user and the bridge get one behaviour.
func TestDefaultsMatchPackages(t *testing.T) {
	c := config.Defaults()
	tests := []struct {
		name      string
		got, want any
	}{
		{"REDUCTO_BASE_URL / reducto.DefaultBaseURL", c.BaseURL, reducto.DefaultBaseURL},
		{"BRIDGE_HTTP_TIMEOUT / reducto.DefaultTimeout", c.HTTPTimeout, reducto.DefaultTimeout},
		{"BRIDGE_HTTP_TIMEOUT / command.DefaultTimeout", c.HTTPTimeout, command.DefaultTimeout},
		{"BRIDGE_RETRY_AFTER_MAX / reducto.DefaultRetryAfterMax", c.RetryAfterMax, reducto.DefaultRetryAfterMax},
		{"BRIDGE_SUBJECT_PREFIX / subject.DefaultPrefix", c.SubjectPrefix, subject.DefaultPrefix},
		{"BRIDGE_POLL_INITIAL_INTERVAL / poller.DefaultInitialInterval", c.PollInitialInterval, poller.DefaultInitialInterval},
		{"BRIDGE_POLL_MAX_INTERVAL / poller.DefaultMaxInterval", c.PollMaxInterval, poller.DefaultMaxInterval},
		{"BRIDGE_POLL_MULTIPLIER / poller.DefaultMultiplier", c.PollMultiplier, poller.DefaultMultiplier},
		{"BRIDGE_POLL_JITTER / poller.DefaultJitter", c.PollJitter, poller.DefaultJitter},
		{"BRIDGE_JOB_TTL / poller.DefaultJobTTL", c.JobTTL, poller.DefaultJobTTL},
		{"BRIDGE_CONCURRENCY / poller.DefaultConcurrency", c.Concurrency, poller.DefaultConcurrency},
		{"BRIDGE_DRAIN_TIMEOUT / poller.DefaultDrainTimeout", c.DrainTimeout, poller.DefaultDrainTimeout},
		{"BRIDGE_WEBHOOK_POLL_INTERVAL / poller.DefaultWebhookPollInterval", c.WebhookPollInterval, poller.DefaultWebhookPollInterval},
		{"BRIDGE_LIST_INTERVAL / sweep.DefaultInterval", c.ListInterval, sweep.DefaultInterval},
		{"BRIDGE_LIST_MAX_RATE / sweep.DefaultMaxRate", c.ListMaxRate, sweep.DefaultMaxRate},
		{"BRIDGE_LIST_SAFETY_INTERVAL / sweep.DefaultSafetyInterval", c.ListSafetyInterval, sweep.DefaultSafetyInterval},
		{"BRIDGE_LIST_DEEP_AGE / sweep.DefaultDeepAge", c.ListDeepAge, sweep.DefaultDeepAge},
		{"BRIDGE_LIST_TRACK_SLACK / sweep.DefaultTrackSlack", c.ListTrackSlack, sweep.DefaultTrackSlack},
		{"BRIDGE_LIST_SAFETY_INTERVAL / poller.DefaultSweptPollInterval", c.ListSafetyInterval, poller.DefaultSweptPollInterval},
		{"BRIDGE_EVENT_SOURCE / publisher.DefaultSource", c.EventSource, publisher.DefaultSource},
		{"BRIDGE_STREAM_REPLICAS / publisher.DefaultReplicas", c.StreamReplicas, publisher.DefaultReplicas},
		{"BRIDGE_STREAM_REPLICAS / track.DefaultReplicas", c.StreamReplicas, track.DefaultReplicas},
		{"BRIDGE_EVENTS_MAX_AGE / publisher.DefaultMaxAge", c.EventsMaxAge, publisher.DefaultMaxAge},
		{"BRIDGE_DUPLICATE_WINDOW / publisher.DefaultDuplicates", c.DuplicateWindow, publisher.DefaultDuplicates},
		{"BRIDGE_ACK_WAIT / track.DefaultAckWait", c.AckWait, track.DefaultAckWait},
		{"BRIDGE_TRACK_MAX_JOBS / track.DefaultMaxJobs", c.TrackMaxJobs, int64(track.DefaultMaxJobs)},
		{"BRIDGE_TRACK_MAX_BYTES / track.DefaultMaxBytes", c.TrackMaxBytes, int64(track.DefaultMaxBytes)},
		{"BRIDGE_EVENTS_MAX_BYTES / publisher.DefaultMaxBytes", c.EventsMaxBytes, int64(publisher.DefaultMaxBytes)},
		{"BRIDGE_RATE_LIMIT / budget.DefaultGetJobRate", c.RateLimit, budget.DefaultGetJobRate},
		{"BRIDGE_RATE_LIMIT_ALL / budget.DefaultAllRate", c.RateLimitAll, budget.DefaultAllRate},
		{"BRIDGE_REDUCTO_MAX_BODY / reducto.DefaultMaxBody", c.ReductoMaxBody, reducto.DefaultMaxBody},
		{"BRIDGE_CAPTURE_URL_RESULTS / capture.DefaultEnabled", c.CaptureURLResults, capture.DefaultEnabled},
		{"BRIDGE_CAPTURE_MAX_BYTES / capture.DefaultMaxBytes", c.CaptureMaxBytes, int64(capture.DefaultMaxBytes)},
		{"BRIDGE_CANCEL_TRACKED_ONLY / zero command.Options", c.CancelTrackedOnly, command.Options{}.CancelTrackedOnly},
		{"BRIDGE_SUBMIT_WEBHOOKS / zero command.Options", !c.SubmitWebhooks, command.Options{}.RefuseWebhooks},
		{"BRIDGE_RETRACK_KEEPS_SCHEDULE / zero poller.Options", c.RetrackKeepsSchedule, poller.Options{}.Origins != nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("config default %v (%T), package default %v (%T)", tt.got, tt.got, tt.want, tt.want)
			}
		})
	}
}
