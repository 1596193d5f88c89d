package sdk

import "io"

// SetOpener replaces how Push opens local files (tests inject failing readers).
func (o *PushOptions) SetOpener(open func(string) (io.ReadSeekCloser, error)) { o.open = open }
