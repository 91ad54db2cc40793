package udpbatch

import (
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Received addresses keep their family, port and, for link-local IPv6, the
// zone the reply must leave through.
func TestSockaddrToAddrPort(t *testing.T) {
	var sa unix.RawSockaddrInet6
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	sa4.Family = unix.AF_INET
	sa4.Addr = [4]byte{10, 1, 2, 3}
	putPort(&sa4.Port, 5004)
	if got, want := sockaddrToAddrPort(&sa), netip.MustParseAddrPort("10.1.2.3:5004"); got != want {
		t.Fatalf("IPv4: %v, want %v", got, want)
	}

	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface named lo")
	}
	sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: netip.MustParseAddr("fe80::1").As16(),
		Scope_id: uint32(lo.Index)}
	putPort(&sa.Port, 443)
	got := sockaddrToAddrPort(&sa)
	if got.Addr().Zone() != "lo" || got.Port() != 443 || got.Addr().WithZone("") != netip.MustParseAddr("fe80::1") {
		t.Fatalf("link-local IPv6: %v", got)
	}
	if scope(got.Addr()) != uint32(lo.Index) {
		t.Fatalf("the send side maps zone %q to scope %d, want %d", got.Addr().Zone(), scope(got.Addr()), lo.Index)
	}
}
