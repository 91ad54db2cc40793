package sfu

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The egress is a subscriber connection's own SRTP sender (docs/media.md,
// "Our own SRTP on the way out"). Through Pion, every forwarded copy runs
// the interceptor chain, the SRTP session (marshalled into a pooled buffer,
// encrypted under the session's lock, an SSRC map lookup), the DTLS/SRTP
// mux and only then the ICE connection. The copies of one subscriber are
// written by one rtpOut each, under that rtpOut's lock already, so each
// rtpOut keeps an SRTP context of its own, marshals and encrypts in one
// buffer of its own, and hands the packet to the SFU's UDP socket (its
// send batch) addressed to the selected candidate pair's remote end; only
// over ICE-TCP does it go through Pion's ICE connection.
//
// Pion does not hand out the SRTP keys. They are exported from the DTLS
// connection, which the DTLS transport keeps in an unexported field, as the
// ICE transport keeps its connection: both are read by reflection, against
// the Pion versions go.mod pins. If a Pion upgrade renames them, srtpKeysOf
// fails, the participant logs why, and its media takes Pion's path as
// before (egress_test.go turns that red).
type egress struct {
	profile   srtp.ProtectionProfile
	key, salt []byte // the local master key and salt
	// cryptex is whether header extensions are encrypted too (RFC 9335),
	// as negotiated when the connection came up. Plain Pion peers (the
	// SFU's test clients) negotiate it; Chromium and the load tool do not.
	cryptex srtp.CryptexMode
	conn    io.Writer // the ICE connection: writes to the selected pair
	// sock is the SFU's UDP socket, and dst the selected pair's remote
	// address while that pair runs over it (nil: over ICE-TCP, through
	// conn). Pion's path for a UDP pair ends at the same socket, through
	// four more layers (ice.Conn, the candidate, the UDP mux's conn, the
	// mux).
	sock addrPortWriter
	dst  atomic.Pointer[netip.AddrPort]
}

type addrPortWriter interface {
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

func (e *egress) write(b []byte) (int, error) {
	if d := e.dst.Load(); d != nil {
		return e.sock.WriteToAddrPort(b, *d)
	}
	return e.conn.Write(b)
}

// setPair follows the ICE agent's choice of candidate pair.
func (e *egress) setPair(p *webrtc.ICECandidatePair) {
	if ap, ok := udpPairRemote(p); ok && e.sock != nil {
		e.dst.Store(&ap)
		return
	}
	e.dst.Store(nil)
}

// udpPairRemote is the remote end of a candidate pair that runs over the
// SFU's UDP socket. A local UDP host candidate is always on that socket:
// the UDP mux is the only UDP gatherer (no STUN or TURN servers are
// configured server-side).
func udpPairRemote(p *webrtc.ICECandidatePair) (netip.AddrPort, bool) {
	if p == nil || p.Local == nil || p.Remote == nil ||
		p.Local.Protocol != webrtc.ICEProtocolUDP || p.Local.Typ != webrtc.ICECandidateTypeHost {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(p.Remote.Address)
	if err != nil { // an unresolved name: let Pion's path resolve it
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, p.Remote.Port), true
}

// errNoOwnSRTP: the connection cannot take the own egress or ingress; its
// media goes through Pion's path.
var errNoOwnSRTP = errors.New("sfu: no own SRTP")

// srtpKeys is what the own egress and ingress read from a connected
// PeerConnection: the SRTP profile and both directions' keys, the cryptex
// modes, and the ICE transport and connection.
type srtpKeys struct {
	cfg                         srtp.Config
	localCryptex, remoteCryptex srtp.CryptexMode
	ice                         *webrtc.ICETransport
	iceConn                     *ice.Conn
}

func srtpKeysOf(pc *webrtc.PeerConnection) (*srtpKeys, error) {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil, fmt.Errorf("%w: no transport", errNoOwnSRTP)
	}
	dt := sctp.Transport()
	conn, local, remote, err := dtlsConnOf(dt)
	if err != nil {
		return nil, err
	}
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, fmt.Errorf("%w: no SRTP profile negotiated", errNoOwnSRTP)
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, fmt.Errorf("%w: DTLS handshake not complete", errNoOwnSRTP)
	}
	rd := pc.CurrentRemoteDescription()
	if rd == nil {
		return nil, fmt.Errorf("%w: no remote description", errNoOwnSRTP)
	}
	// Parsed apart: SessionDescription.Unmarshal would replace the parsed
	// form Pion itself reads (empty for a moment: a track whose packets
	// arrived then went unrecognised).
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(rd.SDP); err != nil {
		return nil, fmt.Errorf("%w: remote description: %w", errNoOwnSRTP, err)
	}
	k := &srtpKeys{cfg: srtp.Config{Profile: srtp.ProtectionProfile(prof)}, localCryptex: local,
		remoteCryptex: remote, ice: dt.ICETransport()}
	if err := k.cfg.ExtractSessionKeysFromDTLS(&state, weAreDTLSClient(parsed)); err != nil {
		return nil, fmt.Errorf("%w: keys: %w", errNoOwnSRTP, err)
	}
	if k.iceConn, err = iceConnOf(k.ice); err != nil {
		return nil, err
	}
	return k, nil
}

// newEgress makes a connection's egress. sock is the SFU's UDP socket
// (nil: always through Pion's ICE connection). The caller follows the
// candidate pair (setPair).
func newEgress(k *srtpKeys, sock addrPortWriter) *egress {
	return &egress{profile: k.cfg.Profile, key: k.cfg.Keys.LocalMasterKey, salt: k.cfg.Keys.LocalMasterSalt,
		cryptex: k.localCryptex, conn: k.iceConn, sock: sock}
}

// weAreDTLSClient follows Pion's choice of DTLS role (DTLSTransport.role):
// the inverse of the role the remote description states, or, when it
// offered actpass, the server: the role ducha answers with
// (SetAnsweringDTLSRole in sfu.go).
func weAreDTLSClient(remote *sdp.SessionDescription) bool {
	setup := func(attrs []sdp.Attribute) string {
		for _, a := range attrs {
			if a.Key == "setup" {
				return strings.TrimSpace(a.Value)
			}
		}
		return ""
	}
	role := setup(remote.Attributes)
	for _, m := range remote.MediaDescriptions {
		if role != "" {
			break
		}
		role = setup(m.Attributes)
	}
	return role == sdp.ConnectionRolePassive.String()
}

// dtlsConnOf reads the DTLS connection and the outbound and inbound
// cryptex modes out of Pion's transport.
func dtlsConnOf(t *webrtc.DTLSTransport) (*dtls.Conn, srtp.CryptexMode, srtp.CryptexMode, error) {
	if t == nil {
		return nil, 0, 0, fmt.Errorf("%w: no DTLS transport", errNoOwnSRTP)
	}
	conn, err := lockedField[*dtls.Conn](t, "conn")
	if err != nil {
		return nil, 0, 0, err
	}
	if conn == nil {
		return nil, 0, 0, fmt.Errorf("%w: DTLS not connected", errNoOwnSRTP)
	}
	local, err := lockedField[srtp.CryptexMode](t, "localCryptexMode")
	if err != nil {
		return nil, 0, 0, err
	}
	remote, err := lockedField[srtp.CryptexMode](t, "remoteCryptexMode")
	return conn, local, remote, err
}

// iceConnOf reads the ICE connection out of Pion's ICE transport.
func iceConnOf(t *webrtc.ICETransport) (*ice.Conn, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: no ICE transport", errNoOwnSRTP)
	}
	conn, err := lockedField[*ice.Conn](t, "conn")
	if err == nil && conn == nil {
		err = fmt.Errorf("%w: ICE not connected", errNoOwnSRTP)
	}
	return conn, err
}

// lockedField reads the unexported field name of *v under *v's own lock,
// the sync.RWMutex both Pion transports keep in a field named lock.
func lockedField[T any](v any, name string) (T, error) {
	var zero T
	lock, err := field[sync.RWMutex](v, "lock")
	if err != nil {
		return zero, err
	}
	p, err := field[T](v, name)
	if err != nil {
		return zero, err
	}
	lock.RLock()
	defer lock.RUnlock()
	return *p, nil
}

// field points at the unexported field name of type T in *v.
func field[T any](v any, name string) (*T, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %T is not a pointer to a struct", errNoOwnSRTP, v)
	}
	f := rv.Elem().FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return nil, fmt.Errorf("%w: %T has no field %s of type %v (Pion changed?)", errNoOwnSRTP, v, name, reflect.TypeFor[T]())
	}
	return (*T)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// fastOut is one rtpOut's end of the egress: its SRTP context (one SSRC)
// and its buffer. Used under the rtpOut's owner's lock.
type fastOut struct {
	ctx *srtp.Context
	eg  *egress
	buf []byte
	hdr rtp.Header // EncryptRTP parses the marshalled header into it
}

// fastOutBuf holds the largest packet the SFU forwards (slotSize, the
// cache's) plus SRTP's tag, and the header we write.
const fastOutBuf = slotSize + 128

func (e *egress) newOut() (*fastOut, error) {
	ctx, err := srtp.CreateContext(e.key, e.salt, e.profile, srtp.Cryptex(e.cryptex))
	if err != nil {
		return nil, fmt.Errorf("%w: SRTP context: %w", errNoOwnSRTP, err)
	}
	return &fastOut{ctx: ctx, eg: e, buf: make([]byte, fastOutBuf)}, nil
}

// write marshals, encrypts in place and sends one packet; it returns the
// bytes written to the connection.
func (f *fastOut) write(h *rtp.Header, payload []byte) (int, error) {
	if _, size := rtp.HeaderAndPacketMarshalSize(h, payload); size+32 > len(f.buf) { //nolint:staticcheck // as Pion's own writeRTP
		f.buf = make([]byte, size+64) // larger than the cache holds: not forwarded today
	}
	n, err := rtp.MarshalPacketTo(f.buf, h, payload) //nolint:staticcheck // as Pion's own writeRTP
	if err != nil {
		return 0, err
	}
	out, err := f.ctx.EncryptRTP(f.buf[:n], f.buf[:n], &f.hdr)
	if err != nil {
		return 0, err
	}
	return f.eg.write(out)
}

// egressSocket is the UDP socket the own egress writes to directly.
func (s *SFU) egressSocket() addrPortWriter {
	if w, ok := s.udp.(addrPortWriter); ok {
		return w
	}
	return nil
}

// srtcpOut is a connection's own SRTCP sender for the RTCP the SFU's
// receive side sends (inbound.go): NACKs, receiver reports and
// transport-wide feedback, a compound every 100 ms per publisher, which
// through Pion took its RTCP write path (interceptor chain, SRTCP session
// lock, DTLS/SRTP mux, ICE connection). Used by the connection's inbound
// loop alone.
//
// An SRTCP context numbers packets per SSRC, the SSRC of the compound's
// first packet, and reusing an index under the same key would reuse
// AES-GCM's nonce. So every compound this sender encrypts starts with a
// receiver report from an SSRC only it ever uses (the inbound loop's own,
// drawn apart from the one it used while its RTCP went through Pion).
type srtcpOut struct {
	ctx  *srtp.Context
	eg   *egress
	self uint32
	buf  []byte
}

func newSRTCPOut(k *srtpKeys, e *egress, self uint32) (*srtcpOut, error) {
	ctx, err := srtp.CreateContext(k.cfg.Keys.LocalMasterKey, k.cfg.Keys.LocalMasterSalt, k.cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("%w: SRTCP context: %w", errNoOwnSRTP, err)
	}
	return &srtcpOut{ctx: ctx, eg: e, self: self, buf: make([]byte, 1500)}, nil
}

// write sends one compound; its first packet must be a receiver report
// from o.self (the caller builds it so).
func (o *srtcpOut) write(pkts []rtcp.Packet) error {
	if rr, ok := pkts[0].(*rtcp.ReceiverReport); !ok || rr.SSRC != o.self {
		return fmt.Errorf("sfu: own SRTCP compound does not start with a report from %#x", o.self)
	}
	plain, err := rtcp.Marshal(pkts)
	if err != nil {
		return err
	}
	out, err := o.ctx.EncryptRTCP(o.buf[:0], plain, nil)
	if err != nil {
		return err
	}
	o.buf = out[:0] // keep a larger buffer EncryptRTCP had to grow
	_, err = o.eg.write(out)
	return err
}
