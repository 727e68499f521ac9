package compress

// Collections is how many times n emptied its pools and collected garbage
// before a reservation (see acquire).
func (n *Normalizer) Collections() int64 { return n.rc.collections.Load() }
