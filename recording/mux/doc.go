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
// Audio holes. With Opus DTX a browser sends one packet every 400 ms in
// silence instead of one every 20 ms, and lost audio packets are not
// resent: both leave holes between the audio blocks. Players disagree on
// holes; Chromium plays audio blocks back to back, so everything after a
// hole is heard early and lip sync is lost for the rest of the file. The
// recorder therefore fills each hole of 20 ms or more inside a segment
// with 20 ms filler frames: a one-byte Opus packet (the previous packet's
// TOC set to a 20 ms frame of the same mode, no frame data, as libopus
// emits in DTX) that decoders conceal, fading to silence. Fillers are
// interleaved with the video in time order when the frame ending the hole
// is already queued, and counted in Segment.AudioFramesFilled, apart from
// AudioFrames, so a report can tell concealment from speech. A hole across
// a segment boundary is not filled. An audio frame's length comes from
// its Opus TOC byte, not from the step between RTP timestamps.
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
