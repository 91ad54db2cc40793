// Package mux records one participant's source (camera with microphone, or
// a screen share) as a series of playable, seekable segment files, re-muxed
// from the publisher's RTP packets without transcoding.
//
// Per track, packets go through a jitter buffer (reordering, waiting
// JitterHold for NACK retransmissions, counting what comes too late or
// never), are joined into frames, placed on the server clock (RTCP sender
// reports keep audio and video of the participant in sync; the arrival of
// the first packet places them on the shared server timeline), and
// interleaved into a Matroska/WebM file.
//
// Segments. A segment with video starts on a keyframe; when MaxSegment is
// reached the next keyframe starts the next segment (one is requested
// KeyframeLead ahead). Audio-only segments are cut anywhere. Consecutive
// segments are contiguous: one ends where the next starts.
//
// Files. "<Name>-<index>.webm" in the spool directory, written as
// "<Name>-<index>.webm.part" and renamed when complete; an existing file is
// never overwritten. VP8 and VP9 are WebM (DocType webm); H.264 uses the
// same layout with DocType matroska (V_MPEG4/ISO/AVC, length-prefixed NAL
// units, parameter sets also in band), which Chromium plays and seeks in a
// <video> element served as video/webm. Layout: EBML header, Segment,
// SeekHead, Info (DateUTC = segment start on the server clock), Tracks,
// Clusters of at most a second, each video keyframe starting a cluster, and
// Cues (one per keyframe cluster) at the end.
//
// Durability. Frames go to the file as a small write buffer fills, each
// write leaving the last cluster complete, and the file is fsynced every
// FlushInterval (1 s). A file whose writer died ends with a complete
// cluster and reads in ffprobe, ffmpeg and browsers; only its Cues and
// Duration are missing (it keeps the .part suffix).
//
// Memory. Packets and frames in flight sit in buffers lent by a
// BufferPool, which all recorders of a server share (Config.Buffers).
//
// Concurrency. The Recorder owns one goroutine. Track.WriteRTP only copies
// the packet into the track's jitter buffer under a short lock, so the
// SFU's fan-out goroutine is never blocked by disk I/O. Callbacks
// (RequestKeyframe, OnSegment) run on the recorder's goroutine.
package mux
