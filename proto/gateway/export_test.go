package gateway

// WithEmptyTextForTest exposes withEmptyText to the external tests.
var WithEmptyTextForTest = withEmptyText

// WithEmptyListsForTest exposes withEmptyLists to the external tests.
var WithEmptyListsForTest = withEmptyLists
