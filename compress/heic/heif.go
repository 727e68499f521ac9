//go:build (linux || darwin) && (amd64 || arm64) && !nodynamic

package heic

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file reads just enough of a HEIF container (ISO/IEC 23008-12) to hand
// the primary picture's HEVC data straight to libde265: the primary item, one
// HEVC picture (hvc1) or a grid of them, their decoder configuration (hvcC)
// and the rotation (irot). Anything else a file may ask for (mirroring,
// cropping, alpha, overlays, other codecs, item data in idat, more than one
// extent) makes parseHEIF return errUnsupported, and the caller decodes that
// file with libheif, which handles all of it: this is a fast path for the
// files cameras and phones write, not a second HEIF implementation.

// errUnsupported says the file needs libheif (it may still be valid).
var errUnsupported = errors.New("heic: layout left to libheif")

// maxGridTiles bounds a grid's tile count (a 12 MP iPhone photo has 48 tiles
// of 512x512; a 100 MP grid has under 400). Larger grids go to libheif.
const maxGridTiles = 1024

// heifPicture is the primary picture as parseHEIF found it.
type heifPicture struct {
	// width and height are the picture's size before rotation: the grid's
	// output size, or the single picture's ispe.
	width, height int
	// rotation is the number of quarter turns anticlockwise (irot), 0-3.
	rotation int
	// cols and rows are the grid's shape, 1x1 for a single picture.
	cols, rows int
	// tiles are the HEVC pictures in raster order (row by row), each as
	// its NAL units: the parameter sets from hvcC, then the picture's
	// (length-prefixed in the file), all slices of the file's bytes.
	tiles [][][]byte
	// tileWidth and tileHeight are each tile's ispe (all tiles must agree).
	tileWidth, tileHeight int
}

type box struct {
	typ  string
	body []byte
}

// boxes splits b into its top-level boxes.
func boxes(b []byte) ([]box, error) {
	var out []box
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("truncated box header")
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, errors.New("truncated box header")
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return nil, fmt.Errorf("box %q of %d bytes in %d", typ, size, len(b))
		}
		out = append(out, box{typ, b[hdr:size]})
		b = b[size:]
	}
	return out, nil
}

// reader reads big-endian fields and remembers the first overrun.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) n(size int) uint64 {
	if size == 0 {
		return 0
	}
	if len(r.b) < size {
		r.bad, r.b = true, nil
		return 0
	}
	var v uint64
	for _, c := range r.b[:size] {
		v = v<<8 | uint64(c)
	}
	r.b = r.b[size:]
	return v
}

func (r *reader) u8() int     { return int(r.n(1)) }
func (r *reader) u16() int    { return int(r.n(2)) }
func (r *reader) u32() uint64 { return r.n(4) }
func (r *reader) id(wide bool) uint32 {
	if wide {
		return uint32(r.n(4))
	}
	return uint32(r.n(2))
}

type itemInfo struct {
	typ    string
	extent []byte // the item's data: one extent in the file
	props  []int  // ipco indexes, 1-based, in ipma order
}

// heifMeta is what parseMeta reads from the meta box.
type heifMeta struct {
	primary uint32
	items   map[uint32]*itemInfo
	ipco    []box               // the item properties, ipco index - 1
	dimg    map[uint32][]uint32 // derived image references (a grid's tiles)
}

// parseHEIF finds the primary picture of a HEIF file. It returns
// errUnsupported, possibly wrapped, for a layout it leaves to libheif, and
// another error for a malformed file (libheif then gets the file too, and
// says what is wrong with it).
func parseHEIF(file []byte) (*heifPicture, error) {
	m, err := parseMeta(file)
	if err != nil {
		return nil, err
	}
	return m.picture()
}

// parseMeta reads the items of a HEIF file's meta box.
func parseMeta(file []byte) (*heifMeta, error) {
	top, err := boxes(file)
	if err != nil {
		return nil, err
	}
	var meta []byte
	for _, b := range top {
		if b.typ == "meta" {
			meta = b.body
			break
		}
	}
	if len(meta) < 4 {
		return nil, errors.New("no meta box")
	}
	children, err := boxes(meta[4:])
	if err != nil {
		return nil, err
	}
	var (
		primary  uint32
		items    = map[uint32]*itemInfo{}
		ipco     []box
		dimg     = map[uint32][]uint32{}
		ilocBox  []byte
		idat     []byte
		havePitm bool
	)
	item := func(id uint32) *itemInfo {
		if items[id] == nil {
			items[id] = &itemInfo{}
		}
		return items[id]
	}
	for _, c := range children {
		r := &reader{b: c.body}
		switch c.typ {
		case "pitm":
			v := r.u8()
			r.n(3)
			primary, havePitm = r.id(v > 0), true
		case "iloc":
			ilocBox = c.body
		case "idat":
			idat = c.body
		case "iinf":
			v := r.u8()
			r.n(3)
			if v == 0 {
				r.n(2)
			} else {
				r.n(4)
			}
			entries, err := boxes(r.b)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if e.typ != "infe" {
					continue
				}
				er := &reader{b: e.body}
				ev := er.u8()
				er.n(3)
				if ev < 2 {
					return nil, fmt.Errorf("%w: infe version %d", errUnsupported, ev)
				}
				id := er.id(ev > 2)
				er.n(2) // item_protection_index
				typ := string(er.b[:min(4, len(er.b))])
				if er.bad || len(typ) < 4 {
					return nil, errors.New("truncated infe")
				}
				item(id).typ = typ
			}
		case "iref":
			v := r.u8()
			r.n(3)
			refs, err := boxes(r.b)
			if err != nil {
				return nil, err
			}
			for _, ref := range refs {
				rr := &reader{b: ref.body}
				from := rr.id(v > 0)
				n := rr.u16()
				to := make([]uint32, 0, min(n, maxGridTiles))
				for range n {
					to = append(to, rr.id(v > 0))
				}
				if rr.bad {
					return nil, errors.New("truncated iref")
				}
				if ref.typ == "dimg" {
					dimg[from] = to
				}
			}
		case "iprp":
			props, err := boxes(c.body)
			if err != nil {
				return nil, err
			}
			for _, p := range props {
				switch p.typ {
				case "ipco":
					if ipco, err = boxes(p.body); err != nil {
						return nil, err
					}
				case "ipma":
					pr := &reader{b: p.body}
					v := pr.u8()
					flags := pr.n(3)
					n := pr.u32()
					for i := uint64(0); i < n && !pr.bad; i++ {
						it := item(pr.id(v >= 1))
						for range pr.u8() {
							if flags&1 != 0 {
								it.props = append(it.props, pr.u16()&0x7fff)
							} else {
								it.props = append(it.props, pr.u8()&0x7f)
							}
						}
					}
					if pr.bad {
						return nil, errors.New("truncated ipma")
					}
				}
			}
		}
	}
	if !havePitm || ilocBox == nil {
		return nil, errors.New("no pitm or iloc")
	}
	if err := readIloc(ilocBox, file, idat, item); err != nil {
		return nil, err
	}
	return &heifMeta{primary: primary, items: items, ipco: ipco, dimg: dimg}, nil
}

// picture describes the primary picture, or returns errUnsupported for one
// left to libheif.
func (m *heifMeta) picture() (*heifPicture, error) {
	primary, items, ipco, dimg := m.primary, m.items, m.ipco, m.dimg
	prim := items[primary]
	if prim == nil {
		return nil, errors.New("no primary item")
	}
	pic := &heifPicture{cols: 1, rows: 1}
	// The primary item's own properties: only ispe, irot and the
	// descriptive ones are understood; a transform we do not apply (imir,
	// clap) or anything marked essential that we do not know sends the file
	// to libheif.
	hvcC, err := pic.itemProps(prim, ipco, true)
	if err != nil {
		return nil, err
	}
	var tileIDs []uint32
	switch prim.typ {
	case "hvc1":
		tileIDs = []uint32{primary}
		pic.tileWidth, pic.tileHeight = pic.width, pic.height
	case "grid":
		if len(prim.extent) < 8 {
			return nil, errors.New("short grid description")
		}
		g := &reader{b: prim.extent}
		g.u8() // version
		flags := g.u8()
		pic.rows, pic.cols = g.u8()+1, g.u8()+1
		wide := flags&1 != 0
		w, h := int(g.id(wide)), int(g.id(wide))
		if g.bad {
			return nil, errors.New("short grid description")
		}
		// compress checked the pixel limit against the primary item's
		// ispe: the grid must be that size.
		if w != pic.width || h != pic.height {
			return nil, fmt.Errorf("%w: grid of %dx%d in an item of %dx%d", errUnsupported, w, h, pic.width, pic.height)
		}
		tileIDs = dimg[primary]
		if len(tileIDs) != pic.rows*pic.cols || len(tileIDs) > maxGridTiles {
			return nil, fmt.Errorf("%w: grid of %dx%d with %d tiles", errUnsupported, pic.cols, pic.rows, len(tileIDs))
		}
	default:
		return nil, fmt.Errorf("%w: primary item of type %q", errUnsupported, prim.typ)
	}
	for i, id := range tileIDs {
		it := items[id]
		if it == nil || it.typ != "hvc1" || len(it.extent) == 0 {
			return nil, fmt.Errorf("%w: tile %d is no HEVC picture", errUnsupported, i)
		}
		tp := &heifPicture{}
		cfg := hvcC
		if prim.typ == "grid" {
			if cfg, err = tp.itemProps(it, ipco, false); err != nil {
				return nil, err
			}
			if i == 0 {
				pic.tileWidth, pic.tileHeight = tp.width, tp.height
			} else if tp.width != pic.tileWidth || tp.height != pic.tileHeight {
				return nil, fmt.Errorf("%w: tiles of different sizes", errUnsupported)
			}
		}
		if cfg == nil {
			return nil, fmt.Errorf("%w: HEVC picture without hvcC", errUnsupported)
		}
		nals, err := nalUnits(cfg, it.extent)
		if err != nil {
			return nil, err
		}
		pic.tiles = append(pic.tiles, nals)
	}
	if pic.width <= 0 || pic.height <= 0 || pic.tileWidth <= 0 || pic.tileHeight <= 0 ||
		pic.tileWidth*pic.cols < pic.width || pic.tileHeight*pic.rows < pic.height ||
		pic.tileWidth*(pic.cols-1) >= pic.width || pic.tileHeight*(pic.rows-1) >= pic.height {
		return nil, fmt.Errorf("%w: picture of %dx%d from %dx%d tiles of %dx%d", errUnsupported,
			pic.width, pic.height, pic.cols, pic.rows, pic.tileWidth, pic.tileHeight)
	}
	if pic.rotation != 0 && (pic.width%2 != 0 || pic.height%2 != 0) {
		// Turning a 4:2:0 picture of odd size moves its chroma by half a
		// sample whichever way it is done; libheif's way is kept.
		return nil, fmt.Errorf("%w: turning a picture of odd size %dx%d", errUnsupported, pic.width, pic.height)
	}
	return pic, nil
}

// itemProps reads an item's properties into p (ispe into width and height;
// irot into rotation when primary) and returns its hvcC. Transforms and
// unknown essential properties make it return errUnsupported.
func (p *heifPicture) itemProps(it *itemInfo, ipco []box, primary bool) ([]byte, error) {
	var hvcC []byte
	for _, idx := range it.props {
		if idx == 0 {
			continue
		}
		if idx > len(ipco) {
			return nil, fmt.Errorf("property %d of %d", idx, len(ipco))
		}
		pb := ipco[idx-1]
		switch pb.typ {
		case "hvcC":
			hvcC = pb.body
		case "ispe":
			r := &reader{b: pb.body}
			r.n(4)
			p.width, p.height = int(r.u32()), int(r.u32())
			if r.bad {
				return nil, errors.New("short ispe")
			}
		case "irot":
			if !primary || len(pb.body) < 1 {
				return nil, fmt.Errorf("%w: irot on a tile", errUnsupported)
			}
			p.rotation = int(pb.body[0] & 3)
		case "colr", "pixi", "pasp":
			// Descriptive. The libheif path reads the coded planes as they
			// are too (it asks for YCbCr 4:2:0 and gets them unconverted),
			// so ignoring colr here changes nothing; 8 bits are checked on
			// the decoded picture.
		default:
			// imir, clap, auxC and anything newer: libheif's job.
			return nil, fmt.Errorf("%w: property %q", errUnsupported, pb.typ)
		}
	}
	return hvcC, nil
}

// readIloc records each item's data, which must be one extent in the file
// (construction method 0) or in the idat box (method 1, where iPhones keep
// the grid description); items with several extents are left empty, so a
// picture that needs them goes to libheif.
func readIloc(body, file, idat []byte, item func(uint32) *itemInfo) error {
	r := &reader{b: body}
	v := r.u8()
	r.n(3)
	if v > 2 {
		return fmt.Errorf("%w: iloc version %d", errUnsupported, v)
	}
	sizes := r.u16()
	offSize, lenSize, baseSize, idxSize := sizes>>12, sizes>>8&15, sizes>>4&15, sizes&15
	if v == 0 {
		idxSize = 0
	}
	for _, s := range []int{offSize, lenSize, baseSize, idxSize} {
		if s != 0 && s != 4 && s != 8 {
			return fmt.Errorf("iloc field size %d", s)
		}
	}
	var count int
	if v < 2 {
		count = r.u16()
	} else {
		count = int(r.u32())
	}
	for i := 0; i < count && !r.bad; i++ {
		id := r.id(v == 2)
		method := 0
		if v > 0 {
			method = r.u16() & 15
		}
		r.n(2) // data_reference_index
		base := r.n(baseSize)
		extents := r.u16()
		var off, length uint64
		for range extents {
			r.n(idxSize)
			off, length = r.n(offSize), r.n(lenSize)
		}
		if r.bad {
			break
		}
		src := file
		if method == 1 {
			src = idat
		}
		if method > 1 || extents != 1 {
			continue
		}
		start := base + off
		if length == 0 || start > uint64(len(src)) || length > uint64(len(src))-start {
			return fmt.Errorf("item %d data at %d+%d outside %d bytes", id, start, length, len(src))
		}
		item(id).extent = src[start : start+length]
	}
	if r.bad {
		return errors.New("truncated iloc")
	}
	return nil
}

// nalUnits lists the NAL units libde265 is given for one picture: the
// parameter sets from the hvcC record, then the item's NAL units, which the
// file stores each behind a big-endian length.
func nalUnits(hvcC, data []byte) ([][]byte, error) {
	if len(hvcC) < 23 {
		return nil, errors.New("short hvcC")
	}
	lenSize := int(hvcC[21]&3) + 1
	if lenSize == 3 {
		return nil, errors.New("hvcC NAL length size 3")
	}
	var out [][]byte
	r := &reader{b: hvcC[22:]}
	for range r.u8() {
		r.u8() // completeness and type
		for range r.u16() {
			n := r.u16()
			if r.bad || n == 0 || n > len(r.b) {
				return nil, errors.New("truncated hvcC")
			}
			out = append(out, r.b[:n])
			r.b = r.b[n:]
		}
	}
	if r.bad {
		return nil, errors.New("truncated hvcC")
	}
	for d := (&reader{b: data}); len(d.b) > 0; {
		n := d.n(lenSize)
		if d.bad || n == 0 || n > uint64(len(d.b)) {
			return nil, errors.New("truncated HEVC data")
		}
		out = append(out, d.b[:n])
		d.b = d.b[n:]
	}
	return out, nil
}
