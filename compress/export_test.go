package compress

import (
	"bytes"
	"context"
)

// DecodeCost reads data as Normalize does and returns the decode budget it
// would take.
func (n *Normalizer) DecodeCost(data []byte) (int64, error) {
	src, _, err := n.read(context.Background(), bytes.NewReader(data), new(bytes.Buffer))
	if err != nil {
		return 0, err
	}
	return n.decodeCost(src), nil
}
