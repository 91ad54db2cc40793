package sfu

import "strings"

// describe is the last step before a description the SFU made is sent:
// with DTX on (Config.NoDTX unset) it asks the other end to send Opus
// discontinuously. Only the copy sent is changed. Pion refuses a local
// description that differs from the one it created, and nothing it does
// depends on usedtx, which only tells the other end how to send.
func (s *SFU) describe(sdp string) string {
	if s.cfg.NoDTX {
		return sdp
	}
	return withDTX(sdp)
}

// withDTX adds usedtx=1 (RFC 7587 section 6.1) to every Opus format line of
// desc. A sender takes usedtx from the description it receives, and Pion
// copies the offerer's format parameters into its answer: the parameter in
// our MediaEngine reaches a browser only in offers the SFU makes, never in
// its answers to a browser that publishes. So every description we send
// carries it; a line that already says usedtx (either way) is kept as the
// browser offered it. Opus without a format line is left alone: browsers
// and Pion always write one.
func withDTX(desc string) string {
	lines := strings.Split(desc, "\r\n")
	changed := false
	for start := 0; start < len(lines); {
		end := start + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "m=") {
			end++
		}
		section := lines[start:end]
		for _, pt := range opusPayloadTypes(section) {
			prefix := "a=fmtp:" + pt + " "
			for i, l := range section {
				if strings.HasPrefix(l, prefix) && !strings.Contains(l, "usedtx=") {
					section[i] = l + ";usedtx=1"
					changed = true
				}
			}
		}
		start = end
	}
	if !changed {
		return desc
	}
	return strings.Join(lines, "\r\n")
}

// opusPayloadTypes returns the payload types a media section maps to Opus.
func opusPayloadTypes(section []string) []string {
	var pts []string
	for _, l := range section {
		rest, ok := strings.CutPrefix(l, "a=rtpmap:")
		if !ok {
			continue
		}
		pt, codec, ok := strings.Cut(rest, " ")
		if ok && len(codec) >= 5 && strings.EqualFold(codec[:5], "opus/") {
			pts = append(pts, pt)
		}
	}
	return pts
}
