package media

import (
	"errors"
	"strings"
)

// ErrInvalid is the sentinel every validation failure matches with
// errors.Is: the resource (or the input it was built from) breaks FHIR's or
// ALEX's rules and must not be sent.
var ErrInvalid = errors.New("media: invalid resource")

// Problem is one broken rule, naming the field it concerns.
type Problem struct {
	// Field is the FHIR path of the element ("Media.content.size"), or
	// the Go input field ("Input.Facility") for input that does not land
	// in the resource.
	Field string `json:"field"`
	// Message says what is wrong, in words fit for an operator's log. It
	// never contains patient data: values are described, not quoted.
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// ValidationError lists every problem found at once, so a caller can fix
// them in one round. It matches [ErrInvalid] with errors.Is.
type ValidationError struct {
	// Resource is the FHIR resource type checked ("Media",
	// "DocumentReference").
	Resource string
	// Problems holds at least one problem, in field order of the check.
	Problems []Problem
}

// Error joins the problems; it holds field names and rule descriptions only.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("media: invalid ")
	b.WriteString(e.Resource)
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Fields returns the field of each problem, in order; handy for UIs that
// highlight inputs.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.Field
	}
	return out
}

// problems accumulates [Problem]s.
type problems struct {
	list []Problem
}

func (ps *problems) add(field, msg string) {
	ps.list = append(ps.list, Problem{Field: field, Message: msg})
}

// err returns nil when no problem was found, else a *ValidationError.
func (ps *problems) err(resource string) error {
	if len(ps.list) == 0 {
		return nil
	}
	return &ValidationError{Resource: resource, Problems: ps.list}
}
