package compress

import "fmt"

func fmtErr(format string, a ...any) error { return fmt.Errorf(format, a...) }
