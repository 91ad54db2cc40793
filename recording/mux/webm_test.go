package mux

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWebMWritesOutEarly: with a write buffer far smaller than a second of
// media, the file is written as it goes, ends with a complete cluster
// after every frame, and once closed is byte for byte the file a writer
// that kept everything until the flush makes.
func TestWebMWritesOutEarly(t *testing.T) {
	dir := t.TempDir()
	tracks := []webmTrack{
		{number: 1, codec: CodecVP8, width: 640, height: 480},
		{number: 2, codec: CodecOpus, private: opusHead()},
	}
	start := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	small, err := createWebM(filepath.Join(dir, "small.webm"), start, tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := createWebM(filepath.Join(dir, "whole.webm"), start, tracks, make([]byte, 0, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	frame := make([]byte, 40<<10)
	for i := range frame {
		frame[i] = byte(i)
	}
	writes := 0
	for ms := int64(0); ms < 5000; ms += 20 {
		for _, w := range []*webmWriter{small, whole} {
			w.writeBlock(2, ms, true, frame[:80])
		}
		if ms%60 == 0 {
			n := 500 + rng.IntN(2000)
			key := ms%2000 == 0
			if key {
				n = 20<<10 + rng.IntN(20<<10) // larger than the write buffer
			}
			for _, w := range []*webmWriter{small, whole} {
				w.writeBlock(1, ms, key, frame[:n])
			}
		}
		if small.off > 0 {
			writes++
			checkClusters(t, small.f.Name(), fmt.Sprintf("at %d ms", ms))
		}
		if ms%1000 == 980 {
			for _, w := range []*webmWriter{small, whole} {
				if err := w.flush(float64(ms + 20)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if cap(small.buf) != webmBufSize {
		t.Errorf("write buffer grew to %d bytes", cap(small.buf))
	}
	for _, w := range []*webmWriter{small, whole} {
		if err := w.close(5000); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(small.f.Name())
	b, _ := os.ReadFile(whole.f.Name())
	if !bytes.Equal(a, b) {
		t.Fatalf("files differ: %d and %d bytes, first difference at %d", len(a), len(b), firstByteDiff(a, b))
	}
	if writes < 100 {
		t.Fatalf("only %d frames found data in the file before a flush", writes)
	}
}

// checkClusters walks the top-level elements of the Segment in the file at
// path: each must be a Segment child of known size, ending inside the
// file, and the last one at its very end (no cut block, no block outside
// its cluster, no cluster of unknown size).
func checkClusters(t *testing.T, path, when string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := 0
	readVint := func(keepMarker bool) (uint64, bool) {
		if p >= len(b) || b[p] == 0 {
			return 0, false
		}
		l := 1
		for b[p]&(0x80>>(l-1)) == 0 {
			l++
		}
		if p+l > len(b) {
			return 0, false
		}
		v := uint64(b[p])
		if !keepMarker {
			v &= uint64(0xff >> l)
		}
		for i := 1; i < l; i++ {
			v = v<<8 | uint64(b[p+i])
		}
		p += l
		return v, true
	}
	// EBML header, then the Segment's ID and (unknown) size.
	if _, ok := readVint(true); !ok {
		t.Fatalf("%s: no EBML header", when)
	}
	n, _ := readVint(false)
	p += int(n)
	if id, _ := readVint(true); id != idSegment {
		t.Fatalf("%s: no Segment", when)
	}
	if binary.BigEndian.Uint64(b[p:]) != unknownSize {
		t.Fatalf("%s: Segment size set before close", when)
	}
	p += 8
	clusters := 0
	for p < len(b) {
		id, ok := readVint(true)
		if !ok {
			t.Fatalf("%s: element ID cut at %d of %d", when, p, len(b))
		}
		size, ok := readVint(false)
		if !ok || size == 1<<56-1 {
			t.Fatalf("%s: element %x at %d: size cut or unknown", when, id, p)
		}
		if p+int(size) > len(b) {
			t.Fatalf("%s: element %x at %d runs %d bytes past the end of the file", when, id, p, p+int(size)-len(b))
		}
		switch id {
		case idCluster:
			clusters++
		case idSeekHead, idInfo, idTracks, idCues:
		default:
			t.Fatalf("%s: element %x at %d is not a Segment child (a block outside its cluster)", when, id, p)
		}
		p += int(size)
	}
	if clusters == 0 && len(b) > 400 {
		t.Fatalf("%s: %d bytes and no cluster", when, len(b))
	}
}

func firstByteDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
