package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling/token"
)

// replayFixture is an API harness with a real replay service over a real
// archive holding three recordings: one of each of two supervisors and an
// ad-hoc room.
type replayFixture struct {
	*harness
	arch      archive.Archive
	svc       *replay.Service
	supA      rooms.Account
	supB      rooms.Account
	manifests map[string]*evidence.Manifest
}

const (
	recA     = "REC-A"
	recB     = "REC-B"
	recAdhoc = "room9-20260302T010000Z"
)

// failingLog is a replay service whose access log cannot be written.
type failingLog struct{ *replay.Service }

func (failingLog) LogAccess(context.Context, replay.Access) (replay.Access, error) {
	return replay.Access{}, fmt.Errorf("%w: archive down (test)", replay.ErrAccessLog)
}

func newReplayFixture(t *testing.T, arch archive.Archive, wrap func(*replay.Service) Replay) *replayFixture {
	t.Helper()
	h := newMemHarness(t)
	f := &replayFixture{harness: h, arch: arch, manifests: map[string]*evidence.Manifest{}}
	f.supA = h.account("sup.a", "甲督查", rooms.RoleSupervisor)
	f.supB = h.account("sup.b", "乙督查", rooms.RoleSupervisor)
	h.account("audit", "审计员", rooms.RoleAuditor)
	h.account("admin", "管理员", rooms.RoleAdmin)

	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	files := t.TempDir()
	n := 0
	seg := func(p string, i int) string {
		n++
		return replaytest.Bytes(t, files, fmt.Sprintf("%s-%d.webm", p, i), 3000+n*11, byte(n))
	}
	for _, r := range []struct {
		id, sup, caseNo string
		start           time.Time
	}{{recA, f.supA.ID, "苏信2026-0117", t0}, {recB, f.supB.ID, "苏信2026-0200", t0.Add(24 * time.Hour)}, {recAdhoc, "", "", t0.Add(48 * time.Hour)}} {
		if r.sup != "" {
			s := rooms.NewSession("督查 "+r.id, r.caseNo, r.sup, r.start, r.start.Add(time.Hour),
				[]rooms.Unit{{Code: "320583", Name: "昆山市信访局"}}, t0.Add(-time.Hour))
			s.ID = r.id
			if _, err := h.store.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		rec := replaytest.Recording{
			Facts: evidence.SessionFacts{ID: r.id, Title: "督查 " + r.id, CaseNumber: r.caseNo, Supervisor: r.sup, Start: r.start},
			Participants: []evidence.Participant{{ID: "P1", Name: "督查员", Role: "supervisor", Joined: r.start},
				{ID: "P2", Name: "昆山市信访局", Role: "county", Organization: "320583", Joined: r.start}},
		}
		if r.sup == "" {
			rec.Participants[1] = evidence.Participant{ID: "P2", Name: "太仓市信访局", Role: "county", Organization: "320585", Joined: r.start}
		}
		rec.Events = []rooms.Event{{Seq: 1, ID: "e1", SessionID: r.id, Time: r.start.Add(time.Second), Actor: "P2", Type: rooms.EventChat,
			Data: map[string]string{"text": "收到"}}}
		for i := 0; i < 2; i++ {
			for _, p := range []string{"P1", "P2"} {
				st := r.start.Add(time.Duration(i) * 2 * time.Second)
				rec.Segments = append(rec.Segments, replaytest.Segment{Participant: p, Source: "camera", Start: st,
					End: st.Add(2 * time.Second), Path: seg(p, i)})
			}
		}
		f.manifests[r.id] = replaytest.Seal(t, arch, key, rec, archive.Policy{})
	}
	f.svc, err = replay.New(ctx, replay.Config{Archive: arch, Index: replay.NewMemStore(), PublicKey: key.Public().(ed25519.PublicKey),
		Directory: h.store})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Rebuild(ctx); err != nil || n != 3 {
		t.Fatalf("Rebuild = %d, %v", n, err)
	}
	var rp Replay = f.svc
	if wrap != nil {
		rp = wrap(f.svc)
	}
	ck := make([]byte, 32)
	_, _ = rand.Read(ck)
	api, err := New(Config{Store: h.store, Accounts: h.svc, Moderator: h.mod, Replay: rp, ErrBadAction: errTestBadAction,
		Tokens: token.NewIssuer(key, h.clk.Now), PublicURL: "https://ducha.example.cn/", CookieKey: ck, Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	// A server of its own: the harness's one serves an API without Replay.
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	h.srv, h.api = srv, api
	return f
}

func dirArch(t *testing.T) archive.Archive {
	t.Helper()
	d, err := archive.NewDir(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// accessLog reads the whole access log as an admin.
func (f *replayFixture) accessLog(t *testing.T) []replay.Access {
	t.Helper()
	var out struct {
		Entries  []replay.Access `json:"entries"`
		More     bool            `json:"more"`
		From, To time.Time
	}
	now := time.Now().UTC()
	f.login("admin").do("GET", "/api/v1/access-log?from="+now.Add(-time.Hour).Format(time.RFC3339)+
		"&to="+now.Add(time.Hour).Format(time.RFC3339), nil).want(http.StatusOK).decode(&out)
	return out.Entries
}

func countAccess(log []replay.Access, user, action, outcome, recording string) int {
	n := 0
	for _, a := range log {
		if a.Username == user && a.Action == action && a.Outcome == outcome && a.Recording == recording {
			n++
		}
	}
	return n
}

// Auditors see every recording, supervisors only their own, and nobody
// without a console sign-in sees anything; every access and refused
// attempt lands in the access log, which only admins read and nobody writes.
func TestReplayPermissions(t *testing.T) {
	f := newReplayFixture(t, dirArch(t), nil)
	paths := func(id string) []string {
		return []string{"/api/v1/recordings/" + id, "/api/v1/recordings/" + id + "/verify",
			"/api/v1/recordings/" + id + "/segments/0", "/api/v1/recordings/" + id + "/export"}
	}

	anon := f.client()
	anon.do("GET", "/api/v1/recordings", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	for _, p := range append(paths(recA), "/api/v1/access-log") {
		anon.do("GET", p, nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	}
	// A county official's join token is no way in, as a bearer or as the cookie.
	tok, err := f.api.cfg.Tokens.Issue(token.Claims{Room: recA, Identity: "320583", Name: "昆山市信访局", Role: "county",
		ExpiresAt: f.clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	anon.do("GET", "/api/v1/recordings/"+recA, nil, "Authorization", "Bearer "+tok).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	anon.do("GET", "/api/v1/recordings/"+recA, nil, "Cookie", CookieName+"="+tok).wantError(http.StatusUnauthorized, CodeUnauthenticated)

	// Supervisor A: only REC-A, in the list and by id.
	a := f.login("sup.a")
	var list struct {
		Recordings []replay.Entry `json:"recordings"`
		More       bool           `json:"more"`
	}
	a.do("GET", "/api/v1/recordings", nil).want(http.StatusOK).decode(&list)
	if len(list.Recordings) != 1 || list.Recordings[0].ID != recA {
		t.Fatalf("supervisor A lists %v", list.Recordings)
	}
	a.do("GET", "/api/v1/recordings?supervisor="+f.supB.ID, nil).want(http.StatusOK).decode(&list)
	if len(list.Recordings) != 0 {
		t.Fatalf("supervisor A widened the search to B: %v", list.Recordings)
	}
	for _, p := range paths(recA) {
		a.do("GET", p, nil).want(http.StatusOK)
	}
	for _, id := range []string{recB, recAdhoc} {
		for _, p := range paths(id) {
			a.do("GET", p, nil).wantError(http.StatusForbidden, CodeForbidden)
		}
	}
	a.do("GET", "/api/v1/recordings/NOPE", nil).wantError(http.StatusNotFound, CodeNotFound)
	a.do("GET", "/api/v1/access-log", nil).wantError(http.StatusForbidden, CodeForbidden)

	// The auditor: everything, found by case number, unit or date.
	aud := f.login("audit")
	aud.do("GET", "/api/v1/recordings", nil).want(http.StatusOK).decode(&list)
	if got := []string{list.Recordings[0].ID, list.Recordings[1].ID, list.Recordings[2].ID}; !slices.Equal(got, []string{recAdhoc, recB, recA}) {
		t.Fatalf("auditor lists %v, want all three, newest first", got)
	}
	for q, want := range map[string][]string{
		"case=0200":               {recB},
		"unit=昆山":                 {recB, recA},
		"unit=320583":             {recB, recA},
		"supervisor=" + f.supA.ID: {recA},
		"supervisor=乙":            {recB},
		"q=room9":                 {recAdhoc},
		"from=" + t0.Add(time.Hour).Format(time.RFC3339) + "&to=" + t0.Add(47*time.Hour).Format(time.RFC3339): {recB},
	} {
		aud.do("GET", "/api/v1/recordings?"+strings.ReplaceAll(q, "+", "%2B"), nil).want(http.StatusOK).decode(&list)
		var got []string
		for _, e := range list.Recordings {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %s: %v, want %v", q, got, want)
		}
	}
	aud.do("GET", "/api/v1/recordings?from=yesterday", nil).wantError(http.StatusUnprocessableEntity, CodeValidation)
	aud.do("GET", "/api/v1/recordings?limit=0", nil).wantError(http.StatusUnprocessableEntity, CodeValidation)
	for _, id := range []string{recA, recB, recAdhoc} {
		aud.do("GET", "/api/v1/recordings/"+id, nil).want(http.StatusOK)
	}
	aud.do("GET", "/api/v1/access-log", nil).wantError(http.StatusForbidden, CodeForbidden)

	// Nothing writes the log through the API.
	adm := f.login("admin")
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		res := adm.do(m, "/api/v1/access-log", map[string]string{"action": "search"})
		if res.resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /access-log: %d, want 405", m, res.resp.StatusCode)
		}
	}

	log := f.accessLog(t)
	for _, c := range []struct {
		user, action, outcome, rec string
		min                        int
	}{
		{"sup.a", replay.ActionSearch, replay.OutcomeGranted, "", 2},
		{"sup.a", replay.ActionReplay, replay.OutcomeGranted, recA, 1},
		{"sup.a", replay.ActionVerify, replay.OutcomeGranted, recA, 1},
		{"sup.a", replay.ActionSegment, replay.OutcomeGranted, recA, 1},
		{"sup.a", replay.ActionExport, replay.OutcomeGranted, recA, 1},
		{"sup.a", replay.ActionReplay, replay.OutcomeDenied, recB, 1},
		{"sup.a", replay.ActionExport, replay.OutcomeDenied, recAdhoc, 1},
		{"audit", replay.ActionSearch, replay.OutcomeGranted, "", 8},
		{"audit", replay.ActionReplay, replay.OutcomeGranted, recAdhoc, 1},
	} {
		if n := countAccess(log, c.user, c.action, c.outcome, c.rec); n < c.min {
			t.Errorf("access log has %d %s %s %s by %s, want at least %d", n, c.outcome, c.action, c.rec, c.user, c.min)
		}
	}
	for _, e := range log {
		if !strings.HasPrefix(e.Remote, "127.0.0.1:") || e.Account == "" || e.Time.IsZero() || e.Key == "" {
			t.Fatalf("access log entry without who/when/where: %+v", e)
		}
	}
	// Reading the log is itself logged (the read above).
	if n := countAccess(f.accessLog(t), "admin", replay.ActionAccessLog, replay.OutcomeGranted, ""); n < 1 {
		t.Error("reading the access log was not logged")
	}

	// An expired sign-in is no sign-in.
	f.clk.Advance(SessionLifetime + time.Minute)
	aud.do("GET", "/api/v1/recordings/"+recA, nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
}

// Segments come through the API with HTTP Range support, from the
// directory archive and from MinIO alike.
func TestReplaySegmentRanges(t *testing.T) {
	for _, c := range []struct {
		name string
		arch func(t *testing.T) archive.Archive
	}{
		{"dir", dirArch},
		{"minio", func(t *testing.T) archive.Archive {
			srv := miniotest.Start(t)
			s, err := archive.NewS3(archive.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.Secret,
				Bucket: "evidence"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			return s
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newReplayFixture(t, c.arch(t), nil)
			seg := f.manifests[recA].Segments[2]
			rc, _, err := f.arch.Get(context.Background(), seg.Key, seg.VersionID)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := io.ReadAll(rc)
			rc.Close()
			aud := f.login("audit")
			path := fmt.Sprintf("/api/v1/recordings/%s/segments/%d", recA, seg.Index)

			res := aud.do("GET", path, nil, "Range", "bytes=100-199")
			res.want(http.StatusPartialContent)
			if !bytes.Equal(res.body, want[100:200]) || res.resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(want)) {
				t.Fatalf("bytes=100-199: %d bytes, Content-Range %q", len(res.body), res.resp.Header.Get("Content-Range"))
			}
			if ct := res.resp.Header.Get("Content-Type"); ct != "video/webm" {
				t.Errorf("content type %q", ct)
			}
			res = aud.do("GET", path, nil, "Range", fmt.Sprintf("bytes=%d-", len(want)-10))
			res.want(http.StatusPartialContent)
			if !bytes.Equal(res.body, want[len(want)-10:]) {
				t.Fatal("open-ended range differs")
			}
			res = aud.do("GET", path, nil, "Range", "bytes=0-")
			res.want(http.StatusPartialContent)
			if !bytes.Equal(res.body, want) {
				t.Fatal("bytes=0- differs from the archived segment")
			}
			res = aud.do("GET", path, nil)
			res.want(http.StatusOK)
			if !bytes.Equal(res.body, want) || res.resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Fatal("the whole segment differs, or ranges are not advertised")
			}
			aud.do("GET", path, nil, "Range", fmt.Sprintf("bytes=%d-", len(want)+5)).want(http.StatusRequestedRangeNotSatisfiable)
			aud.do("GET", fmt.Sprintf("/api/v1/recordings/%s/segments/999", recA), nil).wantError(http.StatusNotFound, CodeNotFound)
			aud.do("GET", fmt.Sprintf("/api/v1/recordings/%s/segments/-1", recA), nil).wantError(http.StatusUnprocessableEntity, CodeValidation)

			// A fetch from the start is a replay of the segment; ranges into
			// it while seeking are not logged again.
			if n := countAccess(f.accessLog(t), "audit", replay.ActionSegment, replay.OutcomeGranted, recA); n != 2 {
				t.Errorf("segment fetches logged: %d, want 2 (bytes=0- and the plain GET)", n)
			}
		})
	}
}

// The detail, verification and export answers carry what the page shows.
func TestReplayDetailVerifyExport(t *testing.T) {
	f := newReplayFixture(t, dirArch(t), nil)
	aud := f.login("audit")
	var d replay.Detail
	aud.do("GET", "/api/v1/recordings/"+recA, nil).want(http.StatusOK).decode(&d)
	if d.Recording.ID != recA || d.Recording.SupervisorName != "甲督查" || d.Timeline.DurationMs != 4000 ||
		len(d.Participants) != 2 || len(d.Participants[0].Tracks[0].Segments) != 2 || len(d.Events) != 1 ||
		d.Events[0].OffsetMs != 1000 || d.Storage.Objects != 6 {
		t.Fatalf("detail %+v", d)
	}

	v := aud.do("GET", "/api/v1/recordings/"+recA+"/verify", nil).want(http.StatusOK).json()
	rep, _ := v["report"].(map[string]any)
	st, _ := v["storage"].(map[string]any)
	if v["result"] != "intact" || v["signatureValid"] != true || rep["segments_ok"] != 4.0 || !strings.Contains(v["text"].(string), "完好") ||
		st["objects"] != 6.0 || v["publicKey"] == "" {
		t.Fatalf("verify %v", v)
	}

	res := aud.do("GET", "/api/v1/recordings/"+recA+"/export", nil)
	res.want(http.StatusOK)
	if ct := res.resp.Header.Get("Content-Type"); ct != "application/zip" ||
		!strings.Contains(res.resp.Header.Get("Content-Disposition"), "ducha-evidence-REC-A.zip") {
		t.Fatalf("export headers %v", res.resp.Header)
	}
	zr, err := zip.NewReader(bytes.NewReader(res.body), int64(len(res.body)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
	}
	for _, want := range []string{"REC-A/manifest.json", "REC-A/manifest.sig", "REC-A/node-ed25519.pub.pem", "REC-A/SHA256SUMS",
		"REC-A/README.txt", "REC-A/verification.json", "REC-A/verification.txt"} {
		if !slices.Contains(names, want) {
			t.Errorf("export lacks %s (has %v)", want, names)
		}
	}
	segs := 0
	for _, n := range names {
		if strings.HasPrefix(n, "REC-A/segments/") {
			segs++
		}
	}
	if segs != 4 {
		t.Errorf("export has %d segments, want 4", segs)
	}
}

// When the access log cannot be written, access is refused: an unrecorded
// replay is what the log exists to prevent.
func TestReplayRefusedWithoutAccessLog(t *testing.T) {
	f := newReplayFixture(t, dirArch(t), func(s *replay.Service) Replay { return failingLog{s} })
	aud := f.login("audit")
	for _, p := range []string{"/api/v1/recordings", "/api/v1/recordings/" + recA, "/api/v1/recordings/" + recA + "/verify",
		"/api/v1/recordings/" + recA + "/segments/0", "/api/v1/recordings/" + recA + "/export"} {
		res := aud.do("GET", p, nil)
		res.wantError(http.StatusServiceUnavailable, CodeAccessLog)
		if res.resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", p)
		}
	}
	// Ranges into a segment are not logged, so they are served.
	aud.do("GET", "/api/v1/recordings/"+recA+"/segments/0", nil, "Range", "bytes=10-19").want(http.StatusPartialContent)
}

// Without a replay service the endpoints say so.
func TestReplayNotConfigured(t *testing.T) {
	h := newMemHarness(t)
	h.account("audit", "审计员", rooms.RoleAuditor)
	h.login("audit").do("GET", "/api/v1/recordings", nil).wantError(http.StatusNotFound, CodeNotFound)
}

func TestRangeFromStart(t *testing.T) {
	for h, want := range map[string]bool{"": true, "bytes=0-": true, "bytes=0-99": true, "bytes=100-": false,
		"bytes=-500": false, "bytes=50-60, 0-10": true, "items=0-1": true} {
		if got := rangeFromStart(h); got != want {
			t.Errorf("rangeFromStart(%q) = %v", h, got)
		}
	}
}
