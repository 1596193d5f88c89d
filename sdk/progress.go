package sdk

// Transfer operations reported in Progress.Op.
const (
	OpHash     = "hash"     // reading a local file to compute its sha256
	OpUpload   = "upload"   // sending a blob
	OpDownload = "download" // receiving a blob
)

// Progress is one report of a transfer: Done of Total bytes of one file.
// A file that needs no transfer (the registry or the destination has it
// already) is reported once with Skipped set and Done == Total.
type Progress struct {
	Op      string
	File    string // path inside the version
	Done    int64
	Total   int64
	Skipped bool
}

// ProgressFunc receives transfer progress; it is called from the goroutine
// of the transfer and should return quickly.
type ProgressFunc func(Progress)

func (f ProgressFunc) report(p Progress) {
	if f != nil {
		f(p)
	}
}
