package sync

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzSSEFraming: any event a publisher accepts is framed as exactly one
// id, one event and one data line, and the data line decodes back to the
// event. A newline smuggled through an id, a type or the data would let a
// client see an event nobody published.
func FuzzSSEFraming(f *testing.F) {
	f.Add("s1", "image.added", "img-1", `{"a":"b\nc"}`, uint64(7))
	f.Add("s\u2028", "image.failed", "", `"x\r\ny"`, uint64(1))
	f.Add("sess", "session.expired", "i\u0085", `[1,2,{"k":"\u0000"}]`, uint64(1<<60))
	f.Fuzz(func(t *testing.T, session, typ, image, data string, id uint64) {
		ev := Event{Session: session, Type: EventType(typ), Image: image, Data: json.RawMessage(data)}
		if ev.Validate() != nil {
			return
		}
		ev = ev.Stamp(id, time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
		var b strings.Builder
		if err := writeSSE(&b, ev); err != nil {
			t.Fatalf("encoding a valid event: %v", err)
		}
		out := b.String()
		if !strings.HasSuffix(out, "\n\n") || strings.Count(out, "\n\n") != 1 {
			t.Fatalf("not exactly one event block: %q", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "id: ") || !strings.HasPrefix(lines[1], "event: ") || !strings.HasPrefix(lines[2], "data: ") {
			t.Fatalf("unexpected framing: %q", out)
		}
		if strings.ContainsAny(out, "\r") {
			t.Fatalf("carriage return in the stream (a line break for SSE parsers): %q", out)
		}
		var back Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &back); err != nil {
			t.Fatalf("data line does not decode: %v", err)
		}
		if back.ID != ev.ID || back.Session != ev.Session || back.Type != ev.Type || back.Image != ev.Image {
			t.Fatalf("round trip changed the event: %+v != %+v", back, ev)
		}
	})
}
