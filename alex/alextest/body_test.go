package alextest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCaptureReader(t *testing.T) {
	t.Parallel()
	big := make([]byte, 100_003) // spans several 32 KB flushes, odd length
	_, _ = rand.Read(big)
	b64 := base64.StdEncoding.EncodeToString(big)
	cases := []struct {
		name      string
		in        string
		wantJSON  string
		wantData  [][]byte // per placeholder
		wantValid []bool
	}{
		{"one", `{"content":{"data":"QUJD","title":"data"}}`, `{"content":{"data":"@@alextest:blob:0@@","title":"data"}}`, [][]byte{[]byte("ABC")}, []bool{true}},
		{"two and spaced", `[{"data" : "QQ=="},{"x":"data","data":"QkI="}]`, `[{"data" : "@@alextest:blob:0@@"},{"x":"data","data":"@@alextest:blob:1@@"}]`, [][]byte{[]byte("A"), []byte("BB")}, []bool{true, true}},
		{"escaped slash and newline", `{"data":"\/\/\/\/\n"}`, `{"data":"@@alextest:blob:0@@"}`, [][]byte{{0xff, 0xff, 0xff}}, []bool{true}},
		{"non-string data kept", `{"data":42}`, `{"data":42}`, nil, nil},
		{"longer key kept", `{"database":"QUJD"}`, `{"database":"QUJD"}`, nil, nil},
		{"invalid", `{"data":"QUJ"}`, `{"data":"@@alextest:blob:0@@"}`, [][]byte{nil}, []bool{false}},
		{"unicode escape refused", `{"data":"\u0051UJD"}`, `{"data":"@@alextest:blob:0@@"}`, [][]byte{nil}, []bool{false}},
		{"big", `{"data":"` + b64 + `"}`, `{"data":"@@alextest:blob:0@@"}`, [][]byte{big}, []bool{true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, chunk := range []int{1, 7, 64 << 10} {
				cr := newCaptureReader(strings.NewReader(tc.in), int64(len(tc.in)))
				var out bytes.Buffer
				buf := make([]byte, chunk)
				for {
					n, err := cr.Read(buf)
					out.Write(buf[:n])
					if err == io.EOF {
						break
					}
					require.NoError(t, err)
				}
				require.Equal(t, tc.wantJSON, out.String(), "chunk %d", chunk)
				require.Len(t, cr.blobs, len(tc.wantData))
				for i := range tc.wantData {
					ph := placeholder(string(rune('0' + i)))
					data, present, valid := cr.capturedData(&ph)
					assert.True(t, present)
					assert.Equal(t, tc.wantValid[i], valid, "blob %d", i)
					if valid {
						assert.True(t, bytes.Equal(tc.wantData[i], data), "blob %d", i)
					}
				}
			}
		})
	}
}

func TestWriteWithBlobs(t *testing.T) {
	t.Parallel()
	big := make([]byte, 1<<20+1)
	_, _ = rand.Read(big)
	body, err := json.Marshal(map[string]any{"a": placeholder("x"), "b": []string{placeholder("y"), placeholder("unknown")}})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, writeWithBlobs(&out, body, map[string][]byte{"x": big, "y": {}}))
	var got struct {
		A string
		B []string
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, base64.StdEncoding.EncodeToString(big), got.A)
	assert.Equal(t, []string{"", placeholder("unknown")}, got.B)
}

func FuzzCaptureReader(f *testing.F) {
	f.Add(`{"content":{"data":"QUJD","title":"x"}}`)
	f.Add(`{"a":{"data":"\\\"","b":[1,"data",{"data":null}]}}`)
	f.Add(`[{"data" : "x"}, {"dat":"y","data":"QQ=="}]`)
	f.Add(`{"n":2` + strings.Repeat("0", 400) + `,"data":"QQ=="}`)
	f.Fuzz(func(t *testing.T, in string) {
		cr := newCaptureReader(strings.NewReader(in), -1)
		out, err := io.ReadAll(cr)
		require.NoError(t, err)
		if !json.Valid([]byte(in)) || strings.Contains(in, `\u`) {
			return
		}
		// Valid JSON in gives valid JSON out, and each captured "data"
		// string agrees with encoding/base64 (line breaks ignored).
		require.True(t, json.Valid(out), "filtered output is not JSON: %q", out)
		var want []string
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber() // a valid number may overflow float64 (2e300...0)
		require.NoError(t, collectData(dec, false, &want))
		require.Len(t, cr.blobs, len(want))
		for i, v := range want {
			ph := placeholder(strconv.Itoa(i))
			got, present, valid := cr.capturedData(&ph)
			if v == "" {
				assert.False(t, present)
				continue
			}
			ref, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\n", "", "\r", "").Replace(v))
			if err != nil {
				assert.False(t, valid, "blob %d %q", i, v)
				continue
			}
			if strings.ContainsAny(in, "\"\\") && !valid {
				continue // escapes other than \/ \n \r are refused, a documented narrowing
			}
			require.True(t, valid, "blob %d %q", i, v)
			assert.True(t, bytes.Equal(ref, got), "blob %d", i)
		}
	})
}

// collectData walks one JSON value in document order and appends the value
// of every string member named "data".
func collectData(dec *json.Decoder, isData bool, out *[]string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if err := collectData(dec, k == "data", out); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := collectData(dec, false, out); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // closing delimiter
		return err
	case string:
		if isData {
			*out = append(*out, v)
		}
	}
	return nil
}
