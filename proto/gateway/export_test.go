package gateway

// WithEmptyTextForTest exposes withEmptyText to the external tests.
var WithEmptyTextForTest = withEmptyText
