package media

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"image/jpeg"
	"io"
	"strconv"
	"strings"
	"time"
)

// The PDF is written by hand: one page per JPEG, the JPEG bytes embedded
// unchanged with /DCTDecode (no decode, no re-encode, no quality loss), and
// a caption in the standard Helvetica font, which every PDF reader has, so
// nothing is embedded but the photos. Images stream through; memory does
// not grow with them.

// ErrNotJPEG is returned when a document page is not a baseline or
// progressive JPEG that can be embedded in a PDF as it is.
var ErrNotJPEG = errors.New("media: page is not a JPEG")

// A4 in points, and the layout on it.
const (
	a4Short     = 595.28
	a4Long      = 841.89
	pageMargin  = 36.0
	captionSize = 10.0
	captionLead = 13.0
	captionGap  = 10.0
	maxCaption  = 6 // lines
)

// pdfPage is one image with its caption lines.
type pdfPage struct {
	jpeg        io.Reader
	orientation int // EXIF 1-8, 0 meaning 1
	caption     []string
}

type pdfInfo struct {
	title   string
	created time.Time
}

// pdfWriter writes PDF objects and remembers where each starts for the
// cross-reference table.
type pdfWriter struct {
	w       io.Writer
	n       int64
	offsets []int64
	err     error
}

func (p *pdfWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.err = err
}

func (p *pdfWriter) str(s string) { p.write([]byte(s)) }

func (p *pdfWriter) obj(num int, body string) {
	p.begin(num)
	p.str(body)
	p.str("\nendobj\n")
}

func (p *pdfWriter) begin(num int) {
	p.offsets[num] = p.n
	p.str(strconv.Itoa(num) + " 0 obj\n")
}

// writePDF writes an A4 PDF with one page per image to w and returns the
// bytes written. Each page is portrait or landscape to suit its image,
// which is drawn as large as fits above its caption, upright according to
// its EXIF orientation and with its aspect ratio kept.
func writePDF(w io.Writer, pages []pdfPage, info pdfInfo) (int64, error) {
	// Objects: 1 catalog, 2 page tree, 3 font, 4 info; then four per page:
	// page, content stream, image, image length.
	const perPage, first = 4, 5
	p := &pdfWriter{w: w, offsets: make([]int64, first+perPage*len(pages))}
	p.str("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	p.obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
	var kids strings.Builder
	for i := range pages {
		if i > 0 {
			kids.WriteByte(' ')
		}
		kids.WriteString(strconv.Itoa(first+perPage*i) + " 0 R")
	}
	p.obj(2, "<< /Type /Pages /Kids ["+kids.String()+"] /Count "+strconv.Itoa(len(pages))+" >>")
	p.obj(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	p.obj(4, "<< /Title "+pdfString(info.title)+" /Producer (clinicalimages) /CreationDate "+pdfString(pdfDate(info.created))+" >>")

	for i, pg := range pages {
		if p.err != nil {
			break
		}
		num := first + perPage*i
		if err := p.page(num, pg); err != nil {
			return p.n, fmt.Errorf("page %d: %w", i+1, err)
		}
	}

	xref := p.n
	p.str("xref\n0 " + strconv.Itoa(len(p.offsets)) + "\n0000000000 65535 f\r\n")
	for _, off := range p.offsets[1:] {
		p.str(fmt.Sprintf("%010d 00000 n\r\n", off))
	}
	p.str("trailer\n<< /Size " + strconv.Itoa(len(p.offsets)) + " /Root 1 0 R /Info 4 0 R >>\nstartxref\n" +
		strconv.FormatInt(xref, 10) + "\n%%EOF\n")
	return p.n, p.err
}

func (p *pdfWriter) page(num int, pg pdfPage) error {
	// Read the JPEG's header to learn its size and colour space; the bytes
	// read are kept and written before the rest of the stream.
	var head bytes.Buffer
	cfg, err := jpeg.DecodeConfig(io.TeeReader(pg.jpeg, &head))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotJPEG, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("%w: zero size", ErrNotJPEG)
	}
	colorSpace, decode := "/DeviceRGB", ""
	switch cfg.ColorModel {
	case color.GrayModel:
		colorSpace = "/DeviceGray"
	case color.CMYKModel:
		// Go reads Adobe CMYK JPEGs, which store inverted values.
		colorSpace, decode = "/DeviceCMYK", " /Decode [1 0 1 0 1 0 1 0]"
	}

	// Displayed size: orientations 5-8 turn the image a quarter.
	dw, dh := float64(cfg.Width), float64(cfg.Height)
	if pg.orientation >= 5 {
		dw, dh = dh, dw
	}
	pw, ph := a4Short, a4Long
	if dw > dh {
		pw, ph = a4Long, a4Short
	}
	lines := pg.caption
	if len(lines) > maxCaption {
		lines = lines[:maxCaption]
	}
	captionTop := pageMargin + captionLead*float64(len(lines))
	boxX, boxY := pageMargin, captionTop+captionGap
	boxW, boxH := pw-2*pageMargin, ph-pageMargin-boxY
	scale := min(boxW/dw, boxH/dh)
	iw, ih := dw*scale, dh*scale
	ix, iy := boxX+(boxW-iw)/2, boxY+(boxH-ih)/2

	var cs strings.Builder
	a, b, c, d, e, f := orientationMatrix(pg.orientation, ix, iy, iw, ih)
	fmt.Fprintf(&cs, "q %s %s %s %s %s %s cm /Im1 Do Q\n", num2(a), num2(b), num2(c), num2(d), num2(e), num2(f))
	if len(lines) > 0 {
		fmt.Fprintf(&cs, "BT /F1 %s Tf %s TL %s %s Td\n", num2(captionSize), num2(captionLead), num2(pageMargin), num2(captionTop-captionSize))
		for i, l := range lines {
			if i > 0 {
				cs.WriteString("T* ")
			}
			cs.WriteString(pdfString(l) + " Tj\n")
		}
		cs.WriteString("ET\n")
	}

	p.obj(num, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] "+
		"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>",
		num2(pw), num2(ph), num+2, num+1))
	p.obj(num+1, "<< /Length "+strconv.Itoa(cs.Len())+" >>\nstream\n"+cs.String()+"endstream")

	p.begin(num + 2)
	p.str(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s /BitsPerComponent 8%s /Filter /DCTDecode /Length %d 0 R >>\nstream\n",
		cfg.Width, cfg.Height, colorSpace, decode, num+3))
	start := p.n
	if p.err == nil {
		var n int64
		n, err = io.Copy(p.w, io.MultiReader(&head, pg.jpeg))
		p.n += n
		if err != nil {
			p.err = err
		}
	}
	length := p.n - start
	p.str("\nendstream\nendobj\n")
	p.obj(num+3, strconv.FormatInt(length, 10))
	return p.err
}

// orientationMatrix maps the image's unit square onto the box (x, y, w, h)
// so that an image stored with EXIF orientation o appears upright.
func orientationMatrix(o int, x, y, w, h float64) (a, b, c, d, e, f float64) {
	switch o {
	case 2: // mirrored left-right
		return -w, 0, 0, h, x + w, y
	case 3: // turned 180°
		return -w, 0, 0, -h, x + w, y + h
	case 4: // mirrored top-bottom
		return w, 0, 0, -h, x, y + h
	case 5: // mirrored along the main diagonal
		return 0, -h, -w, 0, x + w, y + h
	case 6: // needs a quarter turn clockwise
		return 0, -h, w, 0, x, y + h
	case 7: // mirrored along the other diagonal
		return 0, h, w, 0, x, y
	case 8: // needs a quarter turn anticlockwise
		return 0, h, -w, 0, x + w, y
	}
	return w, 0, 0, h, x, y
}

func num2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// pdfDate renders t as a PDF date: D:YYYYMMDDHHmmSS+HH'mm'.
func pdfDate(t time.Time) string {
	s := t.Format("20060102150405-07:00")
	return "D:" + strings.Replace(s[:14]+s[14:17]+"'"+s[18:20]+"'", "+00'00'", "Z", 1)
}

// pdfString renders s as a PDF literal string in WinAnsiEncoding (the
// caption font's encoding): Latin-1 letters keep their accents, Māori
// macrons become the plain vowel, other characters outside WinAnsi become
// '?', and delimiters are escaped.
func pdfString(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		r = unMacron(r)
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0xa0 && r <= 0xff:
			fmt.Fprintf(&b, "\\%03o", r)
		default:
			if c := winAnsiExtra(r); c != 0 {
				fmt.Fprintf(&b, "\\%03o", c)
			} else {
				b.WriteByte('?')
			}
		}
	}
	b.WriteByte(')')
	return b.String()
}

// unMacron turns a Māori macron vowel into the plain vowel, which WinAnsi
// has; other runes are returned unchanged.
func unMacron(r rune) rune {
	switch r {
	case 'ā':
		return 'a'
	case 'ē':
		return 'e'
	case 'ī':
		return 'i'
	case 'ō':
		return 'o'
	case 'ū':
		return 'u'
	case 'Ā':
		return 'A'
	case 'Ē':
		return 'E'
	case 'Ī':
		return 'I'
	case 'Ō':
		return 'O'
	case 'Ū':
		return 'U'
	}
	return r
}

// winAnsiExtra returns the WinAnsi code of the characters outside Latin-1
// that captions are likely to contain, or 0.
func winAnsiExtra(r rune) byte {
	switch r {
	case '€':
		return 0x80
	case '…':
		return 0x85
	case '‘':
		return 0x91
	case '’':
		return 0x92
	case '“':
		return 0x93
	case '”':
		return 0x94
	case '•':
		return 0x95
	case '–':
		return 0x96
	case '—':
		return 0x97
	}
	return 0
}

// wrap breaks s into lines of at most width characters at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		w := []rune(word)
		for len(w) > width { // a word longer than a line is split
			if len(cur) > 0 {
				lines = append(lines, string(cur))
				cur = nil
			}
			lines = append(lines, string(w[:width]))
			w = w[width:]
		}
		switch {
		case len(cur) == 0:
			cur = w
		case len(cur)+1+len(w) <= width:
			cur = append(append(cur, ' '), w...)
		default:
			lines = append(lines, string(cur))
			cur = w
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}
