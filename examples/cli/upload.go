package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
	"github.com/clinicpro/clinicalimages/media"
)

// runUpload is the SDK's main job from the command line: photos in, each
// normalised, built into a FHIR Media and POSTed to the patient's record.
type uploadFlags struct {
	alexFlags
	nhi, patientID, practitioner      string
	bodySite, laterality, view, title string
	progress                          string
}

func uploadCmd(std stdio) *cobra.Command {
	var uf uploadFlags
	cmd := &cobra.Command{
		Use:   "upload [--simulate] (--nhi NHI | --patient-id ID) --practitioner ID [flags] [FILE...]",
		Short: "normalise photos and commit each to a patient's record as a FHIR Media",
		Long: `Normalises each photo (upright, metadata stripped, under 1 MB) and commits it to the
patient's record as a FHIR Media. Re-running with the same files skips what is already
in the record. With --simulate and no files, a generated sample photo is sent.

--practitioner and one of --nhi or --patient-id are required (with --simulate they
default to the simulator's first practitioner and patient). Flags and files are
checked before anything is sent or normalised.

When ALEX's reply to a photo is lost (it may or may not have stored it), the photo is
looked up in ALEX by its identifier: if ALEX has it, it is reported committed and not
sent again; if not, it is sent once more with the same identifier. When that lookup
fails, or the second reply is lost too, the photo is reported "outcome unknown" and
the command exits 1: run the same upload again, it checks ALEX before sending.

Exit codes: 0 every photo committed or already in the record; 1 at least one photo
failed or its outcome is unknown; 2 usage error, nothing sent; 3 configuration
problem (run "cli doctor").` + goRunNote,
		RunE: func(cmd *cobra.Command, files []string) error { return exit(runUpload(cmd.Context(), std, &uf, files)) },
	}
	f := cmd.Flags()
	uf.register(f, std.Getenv)
	f.StringVar(&uf.nhi, "nhi", "", "the patient's NHI")
	f.StringVar(&uf.patientID, "patient-id", "", "the patient's ALEX id, instead of --nhi")
	f.StringVar(&uf.practitioner, "practitioner", "", "ALEX Practitioner id of the GP (Media.operator)")
	f.StringVar(&uf.bodySite, "body-site", "", "SNOMED CT body site code (see media.SearchBodySites)")
	f.StringVar(&uf.laterality, "laterality", "", "SNOMED CT laterality: 7771000 left, 24028007 right, 51440002 bilateral, 399488007 midline")
	f.StringVar(&uf.view, "view", "", "view code (see media.Views)")
	f.StringVar(&uf.title, "title", "", "title shown in the Evolution Inbox (default: generated from the metadata)")
	f.StringVar(&uf.progress, "progress", "auto", "progress bars on stderr: auto (when it is a terminal), always or never")
	return cmd
}

func runUpload(ctx context.Context, std stdio, uf *uploadFlags, files []string) int {
	af := &uf.alexFlags
	nhi, patientID, practitioner := &uf.nhi, &uf.patientID, &uf.practitioner
	bodySite, laterality, view, title := &uf.bodySite, &uf.laterality, &uf.view, &uf.title
	showProgress, err := progressWanted(uf.progress, std.Err)
	if err != nil {
		fmt.Fprintln(std.Err, "cli upload:", err)
		return exitUsage
	}
	// Every usage error is found before any work: no call to ALEX, no
	// photo normalised.
	if err := uf.check(files); err != nil {
		fmt.Fprintln(std.Err, "cli upload:", err)
		return exitUsage
	}
	ctx, cancel := withTimeout(ctx, af.timeout)
	defer cancel()
	t, err := af.connect(std)
	if err != nil {
		fmt.Fprintln(std.Err, "cli upload:", err)
		return exitBadConfig
	}
	defer t.Close()
	c := t.client
	if t.sim != nil {
		if *nhi == "" && *patientID == "" {
			*nhi = t.sim.Patients()[0].NHI
		}
		if *practitioner == "" {
			*practitioner = t.sim.Practitioners()[0].ID
		}
	}

	// Resolve the patient both ways: the id for the subject, the NHI for
	// reconciling a commit whose reply is lost.
	var pid, pnhi string
	if *nhi != "" {
		p, err := c.FindPatientByNHI(ctx, *nhi)
		if err != nil {
			fmt.Fprintln(std.Err, "cli upload: patient:", explain(err))
			return exitFailed
		}
		pid, pnhi = deref(p.Id), mustNHI(*nhi) // checked by uf.check
	} else {
		p, err := c.ReadPatient(ctx, *patientID)
		if err != nil {
			fmt.Fprintln(std.Err, "cli upload: patient:", explain(err))
			return exitFailed
		}
		pid = deref(p.Id)
		for _, idf := range p.Identifier {
			if deref(idf.System) == alex.NHISystem {
				pnhi = deref(idf.Value)
			}
		}
	}

	norm, err := compress.New(heic.Option())
	if err != nil {
		fmt.Fprintln(std.Err, "cli upload:", err)
		return exitFailed
	}
	builder, err := media.New()
	if err != nil {
		fmt.Fprintln(std.Err, "cli upload:", err)
		return exitFailed
	}
	type source struct {
		name string
		open func() (*os.File, []byte, error)
	}
	var sources []source
	if len(files) == 0 {
		sample := samplePhoto()
		sources = append(sources, source{"generated-sample.jpg", func() (*os.File, []byte, error) { return nil, sample, nil }})
	}
	for _, f := range files {
		sources = append(sources, source{filepath.Base(f), func() (*os.File, []byte, error) {
			fh, err := os.Open(f)
			return fh, nil, err
		}})
	}

	// Re-running the same files for the same patient must not duplicate them:
	// each photo's identifier is derived from the patient and the file's
	// bytes, and identifiers already in the record are skipped.
	existing := map[string]string{}
	if pnhi != "" {
		for m, err := range c.SearchMediaByNHI(ctx, pnhi) {
			if err != nil {
				fmt.Fprintln(std.Err, "cli upload: cannot list the patient's Media to avoid duplicates:", explain(err))
				return exitFailed
			}
			for _, idf := range m.Identifier {
				if deref(idf.System) == media.DefaultIdentifierSystem && idf.Value != nil {
					existing[*idf.Value] = deref(m.Id)
				}
			}
		}
	}
	fmt.Fprintf(std.Out, "patient %s, facility %s, %d photo(s)\n", pid, c.Facility(), len(sources))
	bars := newProgress(ctx, std.Err, showProgress, len(sources))
	var rows []string
	failed := 0
	for _, s := range sources {
		fb := bars.file(s.name)
		row, err := uploadOne(ctx, c, norm, builder, s.name, s.open, fb, media.Input{
			Patient:  media.Patient{ID: pid, NHI: pnhi},
			Operator: *practitioner,
			Facility: c.Facility(),
			Metadata: media.Metadata{BodySite: *bodySite, Laterality: *laterality, View: *view, Title: *title},
		}, pnhi, existing)
		fb.done(err)
		if err != nil {
			failed++
			rows = append(rows, fmt.Sprintf("%s\t%s\t\t\t\t\t%s", s.name, row, describe(err)))
			continue
		}
		rows = append(rows, row)
	}
	bars.wait()
	tw := tabwriter.NewWriter(std.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tIN\tOUT\tSIZE\tQUALITY\tMEDIA ID\tRESULT")
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	_ = tw.Flush()
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// fhirIDRE is FHIR's id type, which ALEX's Practitioner ids follow (the
// rule media.Builder applies to Media.operator).
var fhirIDRE = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

// check finds usage errors before any work: conflicting or missing flags,
// values the SDK would refuse (NHI, codes, title), unreadable files. Its
// messages never repeat the NHI.
func (uf *uploadFlags) check(files []string) error {
	var problems []string
	if len(files) == 0 && !uf.simulate {
		problems = append(problems, "name at least one image file")
	}
	switch {
	case uf.nhi != "" && uf.patientID != "":
		problems = append(problems, "give --nhi or --patient-id, not both")
	case uf.nhi == "" && uf.patientID == "" && !uf.simulate:
		problems = append(problems, "--nhi or --patient-id is required")
	case uf.nhi != "":
		if _, err := alex.NormalizeNHI(uf.nhi); err != nil {
			problems = append(problems, "--nhi is not a valid NHI (format AAANNNC or AAANNAX with a correct check character)")
		}
	}
	switch {
	case uf.practitioner == "" && !uf.simulate:
		problems = append(problems, "--practitioner is required (the ALEX Practitioner id of the GP, Media.operator)")
	case uf.practitioner != "" && !fhirIDRE.MatchString(uf.practitioner):
		problems = append(problems, "--practitioner is not an ALEX id (1 to 64 of A-Z, a-z, 0-9, '-', '.')")
	}
	if uf.bodySite != "" {
		if _, ok := media.LookupBodySite(uf.bodySite); !ok {
			problems = append(problems, "--body-site is not a SNOMED CT code of the body-site value set (see media.SearchBodySites)")
		}
	}
	if uf.laterality != "" {
		if _, ok := media.LookupLaterality(uf.laterality); !ok {
			problems = append(problems, "--laterality must be 7771000 (left), 24028007 (right), 51440002 (bilateral) or 399488007 (midline)")
		} else if uf.bodySite == "" {
			problems = append(problems, "--laterality needs --body-site")
		}
	}
	if uf.view != "" {
		if _, ok := media.LookupView(uf.view); !ok {
			problems = append(problems, "--view is not a code of the view value set (see media.Views)")
		}
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(uf.title)); n > media.MaxTitleLength {
		problems = append(problems, fmt.Sprintf("--title is %d characters; at most %d", n, media.MaxTitleLength))
	}
	var ue *usageError
	if err := checkInputs(files); errors.As(err, &ue) {
		problems = append(problems, ue.problems...)
	}
	if len(problems) > 0 {
		return &usageError{what: "nothing was sent", problems: problems}
	}
	return nil
}

// describe is a failed photo's RESULT: the unresolved case says what the
// operator must do; the rest as explain says it.
func describe(err error) string {
	var ue *unresolvedError
	if errors.As(err, &ue) {
		return ue.Error()
	}
	return explain(err)
}

func mustNHI(s string) string {
	n, _ := alex.NormalizeNHI(s)
	return n
}

func uploadOne(ctx context.Context, c *alex.Client, norm *compress.Normalizer, b *media.Builder, name string,
	open func() (*os.File, []byte, error), fb *fileBar, in media.Input, nhi string, existing map[string]string) (string, error) {
	fb.stage("normalising")
	f, data, err := open()
	if err != nil {
		return "", err
	}
	var src io.Reader = bytes.NewReader(data)
	if f != nil {
		defer f.Close()
		src = f
	}
	fileHash := sha256.New()
	src = io.TeeReader(src, fileHash)
	var out bytes.Buffer
	res, err := norm.Normalize(ctx, src, &out)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(fileHash, src) // whatever the decoder left unread
	imageID := stableImageID(in.Patient.ID, fileHash.Sum(nil))
	dims := fmt.Sprintf("%s %dx%d", res.Format, res.InWidth, res.InHeight)
	if mediaID, ok := existing[imageID]; ok {
		fb.stage("skipped")
		return fmt.Sprintf("%s\t%s\t%dx%d\t%d KB\t%d\t%s\talready in the record (skipped)", name, dims, res.OutWidth, res.OutHeight, res.OutBytes>>10, res.Quality, mediaID), nil
	}
	sum := sha1.Sum(out.Bytes())
	in.Image = media.ImageFacts{
		ID:          imageID,
		ContentType: "image/jpeg",
		Size:        int64(out.Len()),
		SHA1:        sum[:],
		Width:       res.OutWidth,
		Height:      res.OutHeight,
		Created:     time.Now(),
	}
	m, err := b.Build(in)
	if err != nil {
		return "", err
	}
	if err := b.Validate(m); err != nil {
		return "", err
	}
	fb.stage("sending")
	mediaID, how, err := commitMedia(ctx, c, m, func() alex.Content { return fb.content(out.Bytes()) }, nhi, in.Patient.ID, imageID)
	if err != nil {
		return dims, err
	}
	existing[imageID] = mediaID // the same file twice in one run is sent once
	return fmt.Sprintf("%s\t%s\t%dx%d\t%d KB\t%d\t%s\t%s", name, dims, res.OutWidth, res.OutHeight, res.OutBytes>>10, res.Quality, mediaID, how), nil
}

// How a photo was committed, as the RESULT column says it.
const (
	resultCommitted  = "committed"
	resultReconciled = "committed (reply lost; found in ALEX by its identifier, not resent)"
	resultResent     = "committed (reply lost; not in ALEX, resent once)"
)

// unresolvedError is a photo whose fate the CLI could not learn: ALEX may or
// may not hold it. Its message names no patient data.
type unresolvedError struct {
	reason string
	err    error // the last error from ALEX, if any
}

func (e *unresolvedError) Error() string {
	msg := "outcome unknown: " + e.reason
	if e.err != nil {
		msg += " (" + explain(e.err) + ")"
	}
	return msg + "; ALEX may hold this photo: run the same upload again, it checks ALEX before sending"
}

func (e *unresolvedError) Unwrap() error { return e.err }

// commitMedia sends m the way the SDK's commit path does (claim, send,
// reconcile): when the reply to the POST is lost (alex.ErrOutcomeUnknown) it
// searches ALEX for the photo's identifier; found means committed and not
// resent, nothing found means resend once with the same identifier. A search
// that fails, or a resend whose reply is lost too, is an *unresolvedError.
func commitMedia(ctx context.Context, c *alex.Client, m *fhir.Media, content func() alex.Content, nhi, patientID, imageID string) (mediaID, how string, err error) {
	cr, err := c.CreateMedia(ctx, m, content())
	switch {
	case err == nil:
		return cr.ID, resultCommitted, nil
	case !errors.Is(err, alex.ErrOutcomeUnknown):
		return "", "", err
	case nhi == "":
		return "", "", &unresolvedError{reason: "no reply from ALEX, and the patient has no NHI in ALEX to search by", err: err}
	}
	found, ferr := c.FindMediaByIdentifier(ctx, nhi, media.DefaultIdentifierSystem, imageID)
	switch {
	case ferr == nil && (found.Id == nil || !refersToPatient(found.Subject, patientID)):
		// Never report another patient's Media as ours, nor resend over it.
		return "", "", &unresolvedError{reason: "no reply from ALEX, and the Media found with this photo's identifier is not this patient's"}
	case ferr == nil:
		return *found.Id, resultReconciled, nil
	case !errors.Is(ferr, alex.ErrNotFound):
		return "", "", &unresolvedError{reason: "no reply from ALEX, and the search for this photo failed", err: ferr}
	}
	cr, err = c.CreateMedia(ctx, m, content())
	switch {
	case err == nil:
		return cr.ID, resultResent, nil
	case errors.Is(err, alex.ErrOutcomeUnknown):
		return "", "", &unresolvedError{reason: "no reply from ALEX, not found there, and no reply to the one resend either"}
	}
	return "", "", fmt.Errorf("resent after a lost reply (the photo was not in ALEX): %w", err)
}

// refersToPatient reports whether a Media's subject is Patient/id, relative
// or absolute.
func refersToPatient(subject *fhir.Reference, id string) bool {
	if subject == nil || subject.Reference == nil || id == "" {
		return false
	}
	ref, want := *subject.Reference, "Patient/"+id
	return ref == want || strings.HasSuffix(ref, "/"+want)
}

// stableImageID is the photo's identifier.value: the same for the same file
// and patient on every run, so a re-run finds what an earlier one sent.
func stableImageID(patientID string, fileSHA256 []byte) string {
	h := sha256.New()
	h.Write([]byte(patientID))
	h.Write([]byte{0})
	h.Write(fileSHA256)
	return "cli-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// samplePhoto draws a 3000x2000 test photo with skin-like tones and fine
// detail, so the quick start shows resizing and the byte budget at work.
func samplePhoto() []byte {
	const w, h = 3000, 2000
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := uint8((x*7 ^ y*13) & 0x1f) // texture
			img.Set(x, y, color.RGBA{R: 180 + n, G: uint8(120 + y*60/h), B: uint8(100 + x*40/w), A: 255})
		}
	}
	// A darker lesion-like spot in the middle.
	for y := h/2 - 150; y < h/2+150; y++ {
		for x := w/2 - 200; x < w/2+200; x++ {
			dx, dy := x-w/2, y-h/2
			if dx*dx*9+dy*dy*16 < 200*200*9 {
				img.Set(x, y, color.RGBA{R: 110, G: 60, B: 50, A: 255})
			}
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	return buf.Bytes()
}
