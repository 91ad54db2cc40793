package mux

import (
	"fmt"
	"strings"
)

// Kind says whether a track carries audio or video.
type Kind uint8

// Track kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	default:
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
}

// Codec names a codec the recorder re-muxes as is.
type Codec string

// Supported codecs.
const (
	CodecOpus Codec = "opus"
	CodecVP8  Codec = "vp8"
	CodecVP9  Codec = "vp9"
	CodecH264 Codec = "h264"
)

// Kind returns the kind of track the codec belongs to.
func (c Codec) Kind() Kind {
	if c == CodecOpus {
		return KindAudio
	}
	return KindVideo
}

// clockRate is the RTP clock rate WebRTC uses for the codec.
func (c Codec) clockRate() int64 {
	if c == CodecOpus {
		return 48000
	}
	return 90000
}

// matroskaID is the Matroska CodecID of the codec.
func (c Codec) matroskaID() string {
	switch c {
	case CodecOpus:
		return "A_OPUS"
	case CodecVP8:
		return "V_VP8"
	case CodecVP9:
		return "V_VP9"
	case CodecH264:
		return "V_MPEG4/ISO/AVC"
	}
	return ""
}

// ParseMimeType maps a WebRTC MIME type ("audio/opus", "video/VP8",
// "video/VP9", "video/H264", any case) to a codec.
func ParseMimeType(mime string) (Codec, error) {
	switch strings.ToLower(mime) {
	case "audio/opus":
		return CodecOpus, nil
	case "video/vp8":
		return CodecVP8, nil
	case "video/vp9":
		return CodecVP9, nil
	case "video/h264":
		return CodecH264, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedCodec, mime)
}
