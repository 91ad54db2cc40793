package replay

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
)

// Detail is everything the replay page needs about one recording. Offsets
// (…Ms) are milliseconds from Timeline.Start on the server clock, which all
// participants share.
type Detail struct {
	Recording    Entry             `json:"recording"`
	Timeline     Timeline          `json:"timeline"`
	Participants []ParticipantView `json:"participants"`
	Events       []EventView       `json:"events"`
	Gaps         []GapView         `json:"gaps"`
	Storage      Storage           `json:"storage"`
}

// Timeline is the recorded span.
type Timeline struct {
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationMs int64     `json:"durationMs"`
}

// ParticipantView is one participant with when they were present and what
// was recorded of them.
type ParticipantView struct {
	Attendee
	UnitName string `json:"unitName,omitempty"`
	// Presence is when the participant was in the call (from the event
	// log's joins and leaves, else the attendance times, widened to cover
	// every recorded segment).
	Presence []Span      `json:"presence"`
	Tracks   []TrackView `json:"tracks"`
}

// Span is a stretch of the timeline.
type Span struct {
	StartMs int64 `json:"startMs"`
	EndMs   int64 `json:"endMs"`
}

// TrackView is one recorded source of a participant ("camera" holds the
// camera and microphone together; "screen" a screen share).
type TrackView struct {
	Source    string        `json:"source"`
	Container string        `json:"container"`
	Codecs    []string      `json:"codecs"`
	Segments  []SegmentView `json:"segments"`
}

// SegmentView is one segment on the timeline. Index is its place in the
// hash chain and names it in segment URLs.
type SegmentView struct {
	Index      uint64    `json:"index"`
	Seq        uint64    `json:"seq"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	StartMs    int64     `json:"startMs"`
	EndMs      int64     `json:"endMs"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	State      string    `json:"state"`
	Key        string    `json:"key,omitempty"`
	LostReason string    `json:"lostReason,omitempty"`
	// AudioFrames and AudioFramesFilled are the manifest's audio counts
	// (frames received; concealment frames the recorder wrote into silence or
	// loss); absent when the manifest does not know them.
	AudioFrames       *int `json:"audioFrames,omitempty"`
	AudioFramesFilled *int `json:"audioFramesFilled,omitempty"`
}

// EventView is one entry of the session's event log, placed on the timeline.
// Outside is true for events before or after the recorded span (OffsetMs is
// then clamped to it).
type EventView struct {
	Seq         int64             `json:"seq"`
	Time        time.Time         `json:"time"`
	OffsetMs    int64             `json:"offsetMs"`
	Outside     bool              `json:"outside,omitempty"`
	Type        string            `json:"type"`
	Actor       string            `json:"actor,omitempty"`
	ActorName   string            `json:"actorName,omitempty"`
	Subject     string            `json:"subject,omitempty"`
	SubjectName string            `json:"subjectName,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
}

// GapView is a declared gap on the timeline.
type GapView struct {
	Participant string    `json:"participant"`
	Source      string    `json:"source"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	StartMs     int64     `json:"startMs"`
	EndMs       int64     `json:"endMs"`
	Reason      string    `json:"reason"`
}

// Detail reads the recording's manifest from the archive and lays it out on
// its timeline, with what the archive says about retention and holds.
func (s *Service) Detail(ctx context.Context, id string) (*Detail, error) {
	e, err := s.Entry(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := s.manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	d := layout(m, s.names(ctx, m))
	d.Recording = e
	d.Storage = s.storage(ctx, m)
	return d, nil
}

// names resolves account ids (supervisors act under their account id) to
// display names, once per id.
func (s *Service) names(ctx context.Context, m *evidence.Manifest) func(string) string {
	cache := map[string]string{}
	return func(id string) string {
		if id == "" || id == "system" || s.cfg.Directory == nil {
			return ""
		}
		if n, ok := cache[id]; ok {
			return n
		}
		n := ""
		if a, err := s.cfg.Directory.GetAccountByID(ctx, id); err == nil {
			n = a.DisplayName
		}
		cache[id] = n
		return n
	}
}

// manifestEvent is the part of a rooms.Event the replay shows. The manifest
// keeps the log as opaque JSON, so anything else is tolerated and skipped.
type manifestEvent struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

func parseEvents(raw json.RawMessage) []manifestEvent {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]manifestEvent, 0, len(items))
	for _, it := range items {
		var ev manifestEvent
		if json.Unmarshal(it, &ev) != nil || ev.Time.IsZero() || ev.Type == "" {
			continue
		}
		out = append(out, ev)
	}
	slices.SortStableFunc(out, func(a, b manifestEvent) int { return a.Time.Compare(b.Time) })
	return out
}

// outsideSlack: events this close to the recorded span count as inside it.
// Recording starts at a participant's first keyframe, a moment after the
// join that caused it; calling that join "outside the recording" would
// only confuse.
const outsideSlack = 2 * time.Second

// layout places a manifest on its timeline. accountName resolves actors
// that are accounts rather than participants.
func layout(m *evidence.Manifest, accountName func(string) string) *Detail {
	start, end := mediaSpan(m)
	if start.IsZero() {
		start, end = m.Session.Start.UTC(), m.Session.End.UTC()
	}
	if end.Before(start) {
		end = start
	}
	d := &Detail{Timeline: Timeline{Start: start, End: end, DurationMs: end.Sub(start).Milliseconds()},
		Participants: []ParticipantView{}, Events: []EventView{}, Gaps: []GapView{}}
	dur := d.Timeline.DurationMs
	off := func(t time.Time) int64 { return min(max(t.Sub(start).Milliseconds(), 0), dur) }

	byID := map[string]int{}
	add := func(a Attendee) *ParticipantView {
		if i, ok := byID[a.ID]; ok {
			return &d.Participants[i]
		}
		byID[a.ID] = len(d.Participants)
		d.Participants = append(d.Participants, ParticipantView{Attendee: a, Presence: []Span{}, Tracks: []TrackView{}})
		return &d.Participants[len(d.Participants)-1]
	}
	for _, p := range m.Participants {
		add(Attendee{ID: p.ID, Name: p.Name, Role: p.Role, Unit: p.Organization, Joined: p.Joined.UTC(), Left: p.Left.UTC()})
	}
	for _, seg := range m.Segments {
		pv := add(Attendee{ID: seg.Participant, Name: seg.Participant})
		ti := slices.IndexFunc(pv.Tracks, func(t TrackView) bool { return t.Source == seg.Source })
		if ti < 0 {
			pv.Tracks = append(pv.Tracks, TrackView{Source: seg.Source, Container: seg.Container, Codecs: []string{}})
			ti = len(pv.Tracks) - 1
		}
		t := &pv.Tracks[ti]
		for _, c := range seg.Codecs {
			if !slices.Contains(t.Codecs, c) {
				t.Codecs = append(t.Codecs, c)
			}
		}
		t.Segments = append(t.Segments, SegmentView{Index: seg.Index, Seq: seg.Seq, Start: seg.Start.UTC(), End: seg.End.UTC(),
			StartMs: off(seg.Start), EndMs: off(seg.End), Size: seg.Size, SHA256: seg.SHA256, State: string(seg.State),
			Key: seg.Key, LostReason: seg.LostReason, AudioFrames: seg.AudioFrames, AudioFramesFilled: seg.AudioFramesFilled})
	}
	for _, g := range m.Gaps {
		d.Gaps = append(d.Gaps, GapView{Participant: g.Participant, Source: g.Source, Start: g.Start.UTC(), End: g.End.UTC(),
			StartMs: off(g.Start), EndMs: off(g.End), Reason: g.Reason})
	}

	events := parseEvents(m.Events)
	name := func(id string) string {
		if i, ok := byID[id]; ok {
			return d.Participants[i].Name
		}
		return accountName(id)
	}
	for _, ev := range events {
		v := EventView{Seq: ev.Seq, Time: ev.Time.UTC(), OffsetMs: off(ev.Time),
			Outside: ev.Time.Before(start.Add(-outsideSlack)) || ev.Time.After(end.Add(outsideSlack)),
			Type:    ev.Type, Actor: ev.Actor, ActorName: name(ev.Actor), Subject: ev.Subject, SubjectName: name(ev.Subject)}
		var data map[string]string
		if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &data) == nil && len(data) > 0 {
			v.Data = data
		}
		if v.SubjectName == "" && v.Data["name"] != "" {
			v.SubjectName = v.Data["name"]
		}
		d.Events = append(d.Events, v)
	}

	for i := range d.Participants {
		p := &d.Participants[i]
		p.Presence = presence(p, events, start, end, off)
		for ti := range p.Tracks {
			slices.SortFunc(p.Tracks[ti].Segments, func(a, b SegmentView) int { return a.Start.Compare(b.Start) })
		}
		slices.SortFunc(p.Tracks, func(a, b TrackView) int { return strings.Compare(a.Source, b.Source) })
	}
	slices.SortStableFunc(d.Participants, func(a, b ParticipantView) int {
		if ra, rb := a.Role == "supervisor", b.Role == "supervisor"; ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return firstPresence(a) - firstPresence(b)
	})
	return d
}

func firstPresence(p ParticipantView) int {
	if len(p.Presence) == 0 {
		return 1 << 30
	}
	return int(min(p.Presence[0].StartMs, 1<<30))
}

// presence is when p was in the call: joins to leaves or removals in the
// event log; without any, the attendance times; in every case widened to
// cover what was recorded of p, since a recorded frame proves presence.
func presence(p *ParticipantView, events []manifestEvent, start, end time.Time, off func(time.Time) int64) []Span {
	var spans []Span
	var open *time.Time
	sawJoin := false
	for _, ev := range events {
		if ev.Subject != p.ID {
			continue
		}
		switch ev.Type {
		case "join":
			sawJoin = true
			if open == nil {
				t := ev.Time
				open = &t
			}
		case "leave", "remove":
			if open != nil {
				spans = append(spans, Span{off(*open), off(ev.Time)})
				open = nil
			}
		}
	}
	if open != nil {
		spans = append(spans, Span{off(*open), off(end)})
	}
	if !sawJoin && !p.Joined.IsZero() {
		left := p.Left
		if left.IsZero() || left.Before(p.Joined) {
			left = end
		}
		spans = append(spans, Span{off(p.Joined), off(left)})
	}
	for _, t := range p.Tracks {
		for _, s := range t.Segments {
			spans = append(spans, Span{s.StartMs, s.EndMs})
		}
	}
	return mergeSpans(spans)
}

// mergeSpans sorts spans and joins those that overlap or nearly touch
// (under a second apart: a reconnect is not an absence worth a flicker).
func mergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return cmp.Compare(a.StartMs, b.StartMs) })
	out := []Span{}
	for _, s := range spans {
		if s.EndMs < s.StartMs {
			continue
		}
		if n := len(out); n > 0 && s.StartMs <= out[n-1].EndMs+1000 {
			out[n-1].EndMs = max(out[n-1].EndMs, s.EndMs)
			continue
		}
		out = append(out, s)
	}
	return out
}
