package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"sync"
)

// stripCount is how many horizontal strips encodeStrips codes at once. It
// is fixed, not derived from the CPU count, so that the output bytes are the
// same on every machine.
const stripCount = 4

// encodeStrips writes the same baseline JPEG as image/jpeg would (same
// tables, same blocks, so the same decoded pixels), but codes stripCount
// horizontal strips in parallel and joins them with restart markers: a
// restart resets exactly the state (DC predictions, bit alignment) that a
// fresh encoder starts from. The bytes depend only on the image and the
// quality, not on workers, so every machine writes the same file. img must be an *image.YCbCr or *image.Gray with
// its origin at (0, 0).
func encodeStrips(w io.Writer, img image.Image, quality, workers int) error {
	b := img.Bounds()
	mcu := 16 // image/jpeg always writes 4:2:0 colour, 16x16 MCUs
	if _, ok := img.(*image.Gray); ok {
		mcu = 8
	}
	mcuRows := (b.Dy() + mcu - 1) / mcu
	mcuCols := (b.Dx() + mcu - 1) / mcu
	strips := min(stripCount, mcuRows)
	perStrip := (mcuRows + strips - 1) / strips
	strips = (mcuRows + perStrip - 1) / perStrip
	interval := perStrip * mcuCols
	type sub interface {
		SubImage(image.Rectangle) image.Image
	}
	si, ok := img.(sub)
	if strips < 2 || interval > 0xFFFF || !ok || b.Min != (image.Point{}) {
		return jpeg.Encode(w, img, &jpeg.Options{Quality: quality})
	}
	parts := make([]bytes.Buffer, strips)
	errs := make([]error, strips)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(workers, 1))
	for i := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := image.Rect(0, i*perStrip*mcu, b.Dx(), min(b.Dy(), (i+1)*perStrip*mcu))
			errs[i] = jpeg.Encode(&parts[i], si.SubImage(r), &jpeg.Options{Quality: quality})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	head, sos, scan, err := splitJPEG(parts[0].Bytes())
	if err != nil {
		return err
	}
	// The first strip's headers describe the whole image once its SOF
	// height is patched.
	head = bytes.Clone(head)
	sof := bytes.Index(head, []byte{0xFF, 0xC0})
	if sof < 0 || sof+7 > len(head) {
		return errors.New("compress: no SOF0 in encoder output")
	}
	binary.BigEndian.PutUint16(head[sof+5:], uint16(b.Dy()))
	out := make([]byte, 0, len(head)+6+len(sos)+func() int {
		n := 0
		for i := range parts {
			n += parts[i].Len()
		}
		return n
	}())
	out = append(out, head...)
	out = append(out, 0xFF, 0xDD, 0, 4, byte(interval>>8), byte(interval))
	out = append(out, sos...)
	out = append(out, scan...)
	for i := 1; i < strips; i++ {
		_, _, scan, err := splitJPEG(parts[i].Bytes())
		if err != nil {
			return err
		}
		out = append(out, 0xFF, 0xD0+byte((i-1)%8))
		out = append(out, scan...)
	}
	out = append(out, 0xFF, 0xD9)
	_, err = w.Write(out)
	return err
}

// splitJPEG splits image/jpeg's output into the headers before SOS, the SOS
// segment, and the entropy-coded data up to (not including) EOI.
func splitJPEG(d []byte) (head, sos, scan []byte, err error) {
	for i := 2; i+4 <= len(d); {
		if d[i] != 0xFF {
			break
		}
		l := int(binary.BigEndian.Uint16(d[i+2:]))
		if d[i+1] == 0xDA {
			end := i + 2 + l
			if end > len(d)-2 || !bytes.HasSuffix(d, []byte{0xFF, 0xD9}) {
				break
			}
			return d[:i], d[i:end], d[end : len(d)-2], nil
		}
		i += 2 + l
	}
	return nil, nil, nil, errors.New("compress: unexpected encoder output")
}
