package filestore

import (
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// BenchmarkAppendEvent measures one durable append: one writer pays one
// fsync per event; parallel writers share them (see syncs/op).
func BenchmarkAppendEvent(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustOpen(b, b.TempDir())
			defer mustClose(b, s)
			c := ctx(b)
			t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			sess, err := s.CreateSession(c, rooms.NewSession("bench", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
			if err != nil {
				b.Fatal(err)
			}
			ev := rooms.Event{SessionID: sess.ID, Actor: "sup", Type: rooms.EventChat,
				Data: map[string]string{rooms.DataText: "请于本周五前提交书面答复，并附处理结果。"}}
			start := s.j.syncs.Load()
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.AppendEvent(c, ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if _, err := s.AppendEvent(c, ev); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(s.j.syncs.Load()-start)/float64(b.N), "syncs/op")
		})
	}
}

// BenchmarkOpen measures startup over 20 sessions of 1000 events each, from
// a snapshot and from journals alone.
func BenchmarkOpen(b *testing.B) {
	build := func(b *testing.B, compact bool) string {
		dir := b.TempDir()
		s := mustOpen(b, dir, WithCompactBytes(1<<40))
		c := ctx(b)
		t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		for range 20 {
			sess, err := s.CreateSession(c, rooms.NewSession("bench", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
			if err != nil {
				b.Fatal(err)
			}
			// One record per event as AppendEvent writes it, with one fsync
			// per batch so building the fixture stays quick.
			for range 1000 {
				s.wmu.Lock()
				e, err := s.mem.AppendEvent(c, rooms.Event{SessionID: sess.ID, Actor: "sup", Type: rooms.EventChat,
					Data: map[string]string{rooms.DataText: "请于本周五前提交书面答复，并附处理结果。"}})
				if err == nil {
					_, err = s.j.append(&record{Op: opEvent, Event: &e})
				}
				s.wmu.Unlock()
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		if compact {
			if err := s.Compact(); err != nil {
				b.Fatal(err)
			}
		}
		mustClose(b, s)
		return dir
	}
	for _, bc := range []struct {
		name    string
		compact bool
	}{{"snapshot", true}, {"journal", false}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := build(b, bc.compact)
			for b.Loop() {
				s := mustOpen(b, dir, WithCompactBytes(1<<40))
				b.StopTimer()
				mustClose(b, s)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20000, "ns/event")
		})
	}
}
