package signaling

import (
	"encoding/json"
	"errors"
	"testing"
)

// protocolExamples are the client-to-server examples of PROTOCOL.md, plus
// near misses.
var protocolExamples = []string{
	`{"type": "offer", "id": "7", "data": {"sdp": "v=0\r\n", "sources": {"3f0c": "camera", "9a1d": "microphone"}}}`,
	`{"type": "join", "data": {"version": 1, "room": "R", "token": "JWT"}}`,
	`{"type": "answer", "data": {"sdp": "v=0\r\n"}}`,
	`{"type": "candidate", "data": {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}}`,
	`{"type": "candidate", "data": {"candidate": ""}}`,
	`{"type": "mute", "data": {"kind": "audio", "muted": true}}`,
	`{"type": "video-size", "data": {"track": "T1", "width": 640, "height": 360}}`,
	`{"type": "ping", "data": {}}`,
	`{"type": "leave", "data": {}}`,
	`{"type": "join", "data": {"version": 2, "room": "R", "token": ""}}`,
	`{"type": "offer", "data": {"sdp": 5}}`,
	`{"type": "x"}`,
	`[]`,
	`{"type":"ping","data":[1]}`,
	`{"type":"candidate","data":{"candidate":"c","sdpMLineIndex":65536}}`,
	"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}",
}

func FuzzDecode(f *testing.F) {
	for _, s := range protocolExamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, v, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			if v != nil {
				t.Fatalf("value %#v returned with error", v)
			}
			return
		}
		if !KnownType(env.Type) {
			t.Fatalf("decoded unknown type %q without error", env.Type)
		}
		if len(env.ID) > MaxIDBytes {
			t.Fatalf("id of %d bytes accepted", len(env.ID))
		}
		// Whatever decodes must re-encode: the server logs and echoes parts
		// of it.
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded value does not marshal: %v", err)
		}
	})
}
