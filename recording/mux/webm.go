package mux

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// Matroska element IDs written by hand on the per-frame path.
const (
	idSegment     = 0x18538067
	idSeekHead    = 0x114D9B74
	idSeek        = 0x4DBB
	idSeekID      = 0x53AB
	idSeekPos     = 0x53AC
	idInfo        = 0x1549A966
	idDuration    = 0x4489
	idTracks      = 0x1654AE6B
	idCluster     = 0x1F43B675
	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
	idCues        = 0x1C53BB6B
	idVoid        = 0xEC
)

const (
	// maxClusterMs bounds a cluster so its blocks' 16-bit relative times
	// never overflow and a crash-truncated file ends near a cluster edge.
	maxClusterMs = 1000
	// seekEntryLen is a Seek element with a 4-byte ID and an 8-byte position.
	seekEntryLen = 21
	// durationLen is a Duration element holding a float64.
	durationLen = 11
	// unknownSize is the 8-byte EBML size "unknown": what a reader sees
	// for the Segment of a file that was never closed.
	unknownSize = 0x01FFFFFFFFFFFFFF
)

// webmTrack describes one track of a segment file.
type webmTrack struct {
	number        uint8
	codec         Codec
	width, height int
	private       []byte
}

// webmWriter writes one Matroska/WebM file. Header elements are marshalled
// by ebml-go; clusters and SimpleBlocks are framed here so the per-frame
// path allocates nothing and runs on the caller's goroutine.
//
// Layout: EBML header, Segment (size patched on close), SeekHead (a Void
// reserved for the Cues entry), Info (Duration, rewritten at every flush),
// Tracks, Clusters with known sizes, Cues. A file that is never closed
// still parses: its Segment has unknown size, the reserved Void is a valid
// element and Duration covers what was synced; only Cues are missing.
//
// Bytes go to the file whenever buf is full, not only at a flush, so a
// recording holds a small buffer rather than a second of media. Each write
// leaves the open cluster's size field covering what was written (patched
// in place once the cluster's start is in the file), so the file ends with
// a complete cluster between writes too; what was written since the last
// flush is simply not synced yet.
type webmWriter struct {
	f      *os.File
	buf    []byte // bytes not yet written to f; never grown past its capacity by blocks
	off    int64  // file offset of buf[0]
	synced int64  // file size at the last flush

	segData    int64 // file offset of the Segment's data
	segSizeAt  int64 // file offset of the Segment's size field
	durationAt int64 // file offset of the Duration element (a Void until the first flush)
	cuesSeekAt int64 // file offset of the Void reserved for the Cues Seek

	inCluster bool
	clusterAt int64 // file offset of the open Cluster
	clusterTC int64

	cueTrack uint8 // keyframes of this track are indexed
	cutOnKey bool  // a keyframe of cueTrack starts a new cluster (video)
	cues     []webm.CuePoint

	scratch [durationLen]byte
	err     error // first write error; the file is abandoned after it
}

// webmBufSize is the capacity of a recording's write buffer: what is
// written goes to the file each time this much has gathered (a county's
// small video one to two times a second, a 1.5 Mbit/s camera about twelve
// times), and a frame that does not fit follows it straight from the frame
// queue. A province-wide session records 118 sources: a second of media
// per source, held until the flush, came to 3-7 MB of buffers. Smaller
// buffers would cost more system calls (a write, and a size patch while a
// cluster spans writes). The buffer passes on to the next segment.
const webmBufSize = 16 << 10

// blockHeaderRoom is room for a block header and a cluster header before it.
const blockHeaderRoom = 64

// createWebM creates path (never overwriting) and writes the header. buf is
// the write buffer to use (its contents are discarded); nil makes a new one.
func createWebM(path string, start time.Time, tracks []webmTrack, buf []byte) (*webmWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	if buf == nil {
		buf = make([]byte, 0, webmBufSize)
	}
	w := &webmWriter{f: f, buf: buf[:0]}
	if err := w.writeHeader(start, tracks); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return w, nil
}

func (w *webmWriter) writeHeader(start time.Time, tracks []webmTrack) error {
	docType := "webm"
	entries := make([]webm.TrackEntry, 0, len(tracks))
	for _, t := range tracks {
		e := webm.TrackEntry{
			TrackNumber:  uint64(t.number),
			TrackUID:     uint64(t.number),
			CodecID:      t.codec.matroskaID(),
			CodecPrivate: t.private,
		}
		if t.codec.Kind() == KindAudio {
			e.TrackType = 2
			e.SeekPreRoll = 80_000_000 // 80 ms, as RFC 7845 asks for Opus
			e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
		} else {
			e.TrackType = 1
			e.Video = &webm.Video{PixelWidth: uint64(t.width), PixelHeight: uint64(t.height)}
			w.cueTrack, w.cutOnKey = t.number, true
		}
		if t.codec == CodecH264 {
			// H.264 is not a WebM codec; the same layout is valid Matroska.
			docType = "matroska"
		}
		entries = append(entries, e)
	}
	if w.cueTrack == 0 && len(tracks) > 0 {
		w.cueTrack = tracks[0].number
	}

	hdr := *webm.DefaultEBMLHeader
	hdr.DocType = docType
	var b bytes.Buffer
	if err := ebml.Marshal(&struct {
		H webm.EBMLHeader `ebml:"EBML"`
	}{hdr}, &b); err != nil {
		return fmt.Errorf("%w: EBML header: %w", ErrWrite, err)
	}
	w.buf = append(w.buf, b.Bytes()...)
	w.buf = appendID(w.buf, idSegment)
	w.segSizeAt = int64(len(w.buf))
	w.buf = binary.BigEndian.AppendUint64(w.buf, unknownSize)
	w.segData = int64(len(w.buf))

	b.Reset()
	if err := ebml.Marshal(&struct {
		TimecodeScale uint64    `ebml:"TimecodeScale"`
		MuxingApp     string    `ebml:"MuxingApp"`
		WritingApp    string    `ebml:"WritingApp"`
		DateUTC       time.Time `ebml:"DateUTC"`
	}{1_000_000, "ducha recording/mux", "ducha", start}, &b); err != nil {
		return fmt.Errorf("%w: Info: %w", ErrWrite, err)
	}
	info := appendID(nil, idInfo)
	info = appendSize(info, uint64(b.Len()+durationLen))
	info = append(info, b.Bytes()...)
	info = appendVoid(info, durationLen)

	b.Reset()
	if err := ebml.Marshal(&struct {
		T webm.Tracks `ebml:"Tracks"`
	}{webm.Tracks{TrackEntry: entries}}, &b); err != nil {
		return fmt.Errorf("%w: Tracks: %w", ErrWrite, err)
	}
	tracksEl := b.Bytes()

	// SeekHead: Info, Tracks, then room for Cues. Its length does not depend
	// on the positions (8-byte fields), so positions follow from lengths.
	const seekHeadLen = 4 + 1 + 3*seekEntryLen
	infoPos := uint64(seekHeadLen)
	tracksPos := infoPos + uint64(len(info))
	w.buf = appendID(w.buf, idSeekHead)
	w.buf = appendSize(w.buf, 3*seekEntryLen)
	w.buf = appendSeek(w.buf, idInfo, infoPos)
	w.buf = appendSeek(w.buf, idTracks, tracksPos)
	w.cuesSeekAt = int64(len(w.buf))
	w.buf = appendVoid(w.buf, seekEntryLen)
	w.buf = append(w.buf, info...)
	w.durationAt = int64(len(w.buf)) - durationLen
	w.buf = append(w.buf, tracksEl...)
	return nil
}

// writeBlock adds one frame at ts milliseconds from the segment start.
func (w *webmWriter) writeBlock(track uint8, ts int64, key bool, data []byte) {
	if w.err != nil {
		return
	}
	if w.inCluster {
		rel := ts - w.clusterTC
		if key && w.cutOnKey && track == w.cueTrack || rel >= maxClusterMs || rel < math.MinInt16 {
			w.closeCluster()
		}
	}
	if len(w.buf)+blockHeaderRoom+len(data) > cap(w.buf) {
		// buf holds whole blocks only: the file ends on a block boundary.
		w.writeOut(nil)
	}
	if !w.inCluster {
		w.openCluster(ts, key && track == w.cueTrack)
	}
	// Cluster cuts keep rel below maxClusterMs; frames far behind the
	// cluster start cannot happen with per-track clamping and bounded skew,
	// but a corrupt block must never be written if they did.
	rel := max(ts-w.clusterTC, math.MinInt16)
	w.buf = append(w.buf, idSimpleBlock)
	w.buf = appendSize(w.buf, uint64(4+len(data)))
	flags := byte(0)
	if key {
		flags = 0x80
	}
	w.buf = append(w.buf, 0x80|track, byte(rel>>8), byte(rel), flags)
	w.add(data)
}

// earliestExact is the earliest time a block can still be written at: a
// block's time is stored relative to its cluster's in 16 bits, and cluster
// times never go back.
func (w *webmWriter) earliestExact() int64 { return w.clusterTC + math.MinInt16 }

// add appends data to what is written; what does not fit in buf goes to the
// file straight away, after buf.
func (w *webmWriter) add(data []byte) {
	if len(w.buf)+len(data) <= cap(w.buf) {
		w.buf = append(w.buf, data...)
		return
	}
	w.writeOut(data)
}

// writeOut writes buf, then extra, to the file (without syncing), with the
// open cluster's size covering all of it: between writes the file ends
// with a complete cluster, as after a flush.
func (w *webmWriter) writeOut(extra []byte) {
	if !w.inCluster {
		w.write(w.buf)
		w.buf = w.buf[:0]
		w.write(extra)
		return
	}
	size := clusterSize(w.size() + int64(len(extra)) - w.clusterAt)
	headerInBuf := w.clusterAt >= w.off
	if headerInBuf {
		binary.BigEndian.PutUint64(w.buf[w.clusterAt+4-w.off:], size)
	}
	w.write(w.buf)
	w.buf = w.buf[:0]
	w.write(extra)
	if !headerInBuf {
		w.patchClusterSize(size)
	}
}

func (w *webmWriter) write(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	n, err := w.f.Write(b)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("%w: %w", ErrWrite, err)
	}
}

// clusterSize is the 8-byte size field of a cluster of n bytes, its
// 12-byte header included.
func clusterSize(n int64) uint64 { return uint64(n-12) | 0x01<<56 }

// patchClusterSize writes the open cluster's size field in the file (its
// header was written out already).
func (w *webmWriter) patchClusterSize(size uint64) {
	if w.err != nil {
		return
	}
	if _, err := w.f.WriteAt(binary.BigEndian.AppendUint64(w.scratch[:0], size), w.clusterAt+4); err != nil {
		w.err = fmt.Errorf("%w: %w", ErrWrite, err)
	}
}

func (w *webmWriter) openCluster(ts int64, cue bool) {
	// Cluster times never go back, even if a track's frame comes slightly
	// before the other track's last one: that block gets a negative offset.
	ts = max(ts, w.clusterTC)
	w.inCluster = true
	w.clusterAt = w.size()
	w.clusterTC = ts
	if cue {
		w.cues = append(w.cues, webm.CuePoint{
			CueTime: uint64(ts),
			CueTrackPositions: []webm.CueTrackPosition{{
				CueTrack:           uint64(w.cueTrack),
				CueClusterPosition: uint64(w.clusterAt - w.segData),
			}},
		})
	}
	w.buf = appendID(w.buf, idCluster)
	w.buf = binary.BigEndian.AppendUint64(w.buf, unknownSize)
	w.buf = append(w.buf, idTimecode)
	w.buf = appendUint(w.buf, uint64(ts))
}

func (w *webmWriter) closeCluster() {
	if !w.inCluster {
		return
	}
	w.inCluster = false
	size := clusterSize(w.size() - w.clusterAt)
	if at := w.clusterAt + 4 - w.off; at >= 0 {
		binary.BigEndian.PutUint64(w.buf[at:], size)
		return
	}
	w.patchClusterSize(size)
}

// flush ends the open cluster, writes everything buffered, records
// durationMs (the length of what was written) in the Duration element and
// syncs, so that what is on disk ends with a complete cluster and states
// how long it is, even if the process dies next.
func (w *webmWriter) flush(durationMs float64) error {
	if w.err != nil {
		return w.err
	}
	w.closeCluster()
	if w.size() == w.synced {
		return w.err
	}
	w.writeOut(nil)
	err := w.err
	if err == nil {
		_, err = w.f.WriteAt(appendDuration(w.scratch[:0], durationMs), w.durationAt)
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("%w: %w", ErrWrite, err)
	}
	w.synced = w.off
	return w.err
}

// size is the number of bytes written so far, buffered ones included.
func (w *webmWriter) size() int64 { return w.off + int64(len(w.buf)) }

// close writes the Cues, patches Segment size, Duration and the Cues Seek,
// syncs and closes the file. durationMs is the segment's length.
func (w *webmWriter) close(durationMs float64) error {
	defer w.f.Close()
	w.closeCluster()
	var cuesPos int64 = -1
	if w.err == nil && len(w.cues) > 0 {
		cuesPos = w.size() - w.segData
		var b bytes.Buffer
		if err := ebml.Marshal(&struct {
			C webm.Cues `ebml:"Cues"`
		}{webm.Cues{CuePoint: w.cues}}, &b); err != nil {
			w.err = fmt.Errorf("%w: Cues: %w", ErrWrite, err)
		}
		w.add(b.Bytes())
	}
	if err := w.flush(durationMs); err != nil {
		return err
	}
	patch := make([]byte, 0, 64)
	patch = binary.BigEndian.AppendUint64(patch, uint64(w.off-w.segData)|0x01<<56)
	patch = appendDuration(patch, durationMs)
	if cuesPos >= 0 {
		patch = appendSeek(patch, idCues, uint64(cuesPos))
	}
	_, err := w.f.WriteAt(patch[:8], w.segSizeAt)
	if err == nil {
		_, err = w.f.WriteAt(patch[8:8+durationLen], w.durationAt)
	}
	if err == nil && cuesPos >= 0 {
		_, err = w.f.WriteAt(patch[8+durationLen:], w.cuesSeekAt)
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.err = fmt.Errorf("%w: %w", ErrWrite, err)
	}
	return w.err
}

// abandon closes the file without finishing it (after a write error).
func (w *webmWriter) abandon() { _ = w.f.Close() }

func appendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// appendSize appends n as an EBML variable-size integer of minimal length.
func appendSize(b []byte, n uint64) []byte {
	l := 1
	for l < 8 && n >= 1<<(7*l)-1 {
		l++
	}
	v := n | 1<<(7*l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendUint appends an unsigned-integer element body: size, then the value
// in as few bytes as it needs.
func appendUint(b []byte, v uint64) []byte {
	l := 1
	for l < 8 && v >= 1<<(8*l) {
		l++
	}
	b = append(b, 0x80|byte(l))
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendDuration appends a Duration element of exactly durationLen bytes.
func appendDuration(b []byte, ms float64) []byte {
	b = appendID(b, idDuration)
	b = append(b, 0x88)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(ms))
}

func appendVoid(b []byte, total int) []byte {
	b = append(b, idVoid, 0x80|byte(total-2))
	return append(b, make([]byte, total-2)...)
}

// appendSeek appends a Seek entry of exactly seekEntryLen bytes.
func appendSeek(b []byte, id uint32, pos uint64) []byte {
	b = appendID(b, idSeek)
	b = append(b, 0x80|(seekEntryLen-3))
	b = appendID(b, idSeekID)
	b = append(b, 0x84, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	b = appendID(b, idSeekPos)
	b = append(b, 0x88)
	return binary.BigEndian.AppendUint64(b, pos)
}
