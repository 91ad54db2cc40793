package httpapi

import (
	"bytes"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// qrModulePx is the drawn size of one module; the console may scale the
// SVG freely.
const qrModulePx = 4

// qrSVG draws content as a QR code (medium error correction, quiet zone of
// four modules) in one SVG path: one rectangle per horizontal run of dark
// modules keeps a 400-character link to a few kilobytes.
func qrSVG(content string) ([]byte, error) {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("httpapi: qr code: %w", err)
	}
	return svgFromBitmap(q.Bitmap()), nil
}

func svgFromBitmap(bm [][]bool) []byte {
	n := len(bm)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`,
		n, n, n*qrModulePx, n*qrModulePx)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes()
}
