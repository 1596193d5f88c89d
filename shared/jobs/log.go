package jobs

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// MaxLogEntries bounds a job's log: appending beyond it drops the oldest
// line, so a job's memory does not grow with its length.
const MaxLogEntries = 200

// LogEntry is one line of a job's log.
type LogEntry struct {
	Time    time.Time
	Message string
}

// AppendLog appends a line formatted from format and args to log, dropping
// the oldest lines beyond MaxLogEntries. It reuses log's array, like append.
func AppendLog(log []LogEntry, now time.Time, format string, args ...any) []LogEntry {
	log = append(log, LogEntry{Time: now, Message: fmt.Sprintf(format, args...)})
	if over := len(log) - MaxLogEntries; over > 0 {
		log = append(log[:0], log[over:]...)
	}
	return log
}

// LogProto converts a log for the APIs (bitnet.model.v1.LogEntry).
func LogProto(log []LogEntry) []*modelv1.LogEntry {
	out := make([]*modelv1.LogEntry, len(log))
	for i, e := range log {
		out[i] = &modelv1.LogEntry{Time: timestamppb.New(e.Time), Message: e.Message}
	}
	return out
}
