package kernels

// maxTileColsForTest is the longest row the amd64 tile kernels take.
const maxTileColsForTest = maxTileCols
