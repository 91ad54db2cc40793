package signaling

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Envelope
		wantErr bool
	}{
		{"full", `{"type":"offer","id":"7","data":{"sdp":"x"}}`, Envelope{Type: "offer", ID: "7", Data: json.RawMessage(`{"sdp":"x"}`)}, false},
		{"no data", `{"type":"ping"}`, Envelope{Type: "ping"}, false},
		{"null data", `{"type":"ping","data":null}`, Envelope{Type: "ping"}, false},
		{"unknown top-level field ignored", `{"type":"ping","extra":[1,2]}`, Envelope{Type: "ping"}, false},
		{"unknown type is not a decode error", `{"type":"dance"}`, Envelope{Type: "dance"}, false},
		{"64-byte id", `{"type":"ping","id":"` + strings.Repeat("a", 64) + `"}`, Envelope{Type: "ping", ID: strings.Repeat("a", 64)}, false},
		{"65-byte id", `{"type":"ping","id":"` + strings.Repeat("a", 65) + `"}`, Envelope{}, true},
		{"not json", `hello`, Envelope{}, true},
		{"truncated", `{"type":"ping"`, Envelope{}, true},
		{"array", `[{"type":"ping"}]`, Envelope{}, true},
		{"null", `null`, Envelope{}, true},
		{"string", `"ping"`, Envelope{}, true},
		{"empty", ``, Envelope{}, true},
		{"missing type", `{"id":"1"}`, Envelope{ID: "1"}, true},
		{"empty type", `{"type":""}`, Envelope{}, true},
		{"type not string", `{"type":5}`, Envelope{}, true},
		{"id not string", `{"type":"ping","id":7}`, Envelope{}, true},
		{"data is array", `{"type":"ping","id":"3","data":[]}`, Envelope{Type: "ping", ID: "3"}, true},
		{"data is string", `{"type":"ping","data":"x"}`, Envelope{Type: "ping"}, true},
		{"invalid utf8", "{\"type\":\"ping\",\"id\":\"\xff\"}", Envelope{}, true},
		{"trailing garbage", `{"type":"ping"} x`, Envelope{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeEnvelope([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrBadMessage) {
					t.Fatalf("err %v, want ErrBadMessage", err)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got.Type != tc.want.Type || got.ID != tc.want.ID || string(got.Data) != string(tc.want.Data) {
				t.Fatalf("got %+v (data %s), want %+v", got, got.Data, tc.want)
			}
		})
	}
}

func TestDecodeData(t *testing.T) {
	mid, idx, uf := "0", uint16(0), "abcd"
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr error
	}{
		{"join", `{"type":"join","data":{"version":1,"room":"R","token":"JWT"}}`, Join{Version: 1, Room: "R", Token: "JWT"}, nil},
		{"join missing version decodes as 0", `{"type":"join","data":{"room":"R","token":"t"}}`, Join{Room: "R", Token: "t"}, nil},
		{"join missing token decodes empty", `{"type":"join","data":{"version":1,"room":"R"}}`, Join{Version: 1, Room: "R"}, nil},
		{"join unknown field ignored", `{"type":"join","data":{"version":1,"room":"R","token":"t","client":"web"}}`, Join{Version: 1, Room: "R", Token: "t"}, nil},
		{"join version string", `{"type":"join","data":{"version":"1","room":"R","token":"t"}}`, nil, ErrBadMessage},
		{"join version fraction", `{"type":"join","data":{"version":1.5,"room":"R","token":"t"}}`, nil, ErrBadMessage},
		{"join no room", `{"type":"join","data":{"version":1,"token":"t"}}`, nil, ErrBadMessage},
		{"join bad room", `{"type":"join","data":{"version":1,"room":"a/b","token":"t"}}`, nil, ErrBadMessage},
		{"join no data", `{"type":"join"}`, nil, ErrBadMessage},
		{"join token number", `{"type":"join","data":{"version":1,"room":"R","token":5}}`, nil, ErrBadMessage},
		{"offer", `{"type":"offer","id":"7","data":{"sdp":"v=0","sources":{"t1":"camera","t2":"microphone","t3":"screen"}}}`,
			Offer{SDP: "v=0", Sources: map[string]string{"t1": "camera", "t2": "microphone", "t3": "screen"}}, nil},
		{"offer without sources", `{"type":"offer","data":{"sdp":"v=0"}}`, Offer{SDP: "v=0"}, nil},
		{"offer bad source", `{"type":"offer","data":{"sdp":"v=0","sources":{"t1":"webcam"}}}`, nil, ErrBadMessage},
		{"offer null source", `{"type":"offer","data":{"sdp":"v=0","sources":{"t1":null}}}`, nil, ErrBadMessage},
		{"offer sources array", `{"type":"offer","data":{"sdp":"v=0","sources":["camera"]}}`, nil, ErrBadMessage},
		{"offer no sdp", `{"type":"offer","data":{}}`, nil, ErrBadMessage},
		{"offer empty sdp", `{"type":"offer","data":{"sdp":""}}`, nil, ErrBadMessage},
		{"offer sdp number", `{"type":"offer","data":{"sdp":1}}`, nil, ErrBadMessage},
		{"answer", `{"type":"answer","data":{"sdp":"v=0"}}`, Answer{SDP: "v=0"}, nil},
		{"answer null sdp", `{"type":"answer","data":{"sdp":null}}`, nil, ErrBadMessage},
		{"candidate", `{"type":"candidate","data":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
			webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid, SDPMLineIndex: &idx, UsernameFragment: &uf}, nil},
		{"end of candidates", `{"type":"candidate","data":{"candidate":""}}`, webrtc.ICECandidateInit{}, nil},
		{"candidate nulls", `{"type":"candidate","data":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null}}`, webrtc.ICECandidateInit{Candidate: "c"}, nil},
		{"candidate missing", `{"type":"candidate","data":{"sdpMid":"0"}}`, nil, ErrBadMessage},
		{"candidate negative index", `{"type":"candidate","data":{"candidate":"c","sdpMLineIndex":-1}}`, nil, ErrBadMessage},
		{"candidate index overflow", `{"type":"candidate","data":{"candidate":"c","sdpMLineIndex":70000}}`, nil, ErrBadMessage},
		{"mute", `{"type":"mute","data":{"kind":"audio","muted":true}}`, Mute{Kind: "audio", Muted: true}, nil},
		{"unmute video", `{"type":"mute","data":{"kind":"video","muted":false}}`, Mute{Kind: "video"}, nil},
		{"mute bad kind", `{"type":"mute","data":{"kind":"screen","muted":true}}`, nil, ErrBadMessage},
		{"mute missing muted", `{"type":"mute","data":{"kind":"audio"}}`, nil, ErrBadMessage},
		{"mute muted string", `{"type":"mute","data":{"kind":"audio","muted":"yes"}}`, nil, ErrBadMessage},
		{"ping", `{"type":"ping","data":{}}`, Empty{}, nil},
		{"ping no data", `{"type":"ping"}`, Empty{}, nil},
		{"leave", `{"type":"leave","data":{}}`, Empty{}, nil},
		{"unknown", `{"type":"subscribe","data":{}}`, nil, ErrUnknownType},
		{"server-only type from client", `{"type":"joined","data":{}}`, nil, ErrUnknownType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := Decode([]byte(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// Error text goes to clients: it must talk about the wire format, not Go.
func TestDecodeErrorsNameWireFields(t *testing.T) {
	_, _, err := Decode([]byte(`{"type":"join","data":{"version":"1","room":"R"}}`))
	if err == nil || strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "struct") {
		t.Fatalf("error %q leaks Go details", err)
	}
	if !strings.Contains(err.Error(), "version") {
		t.Fatalf("error %q does not name the field", err)
	}
}
