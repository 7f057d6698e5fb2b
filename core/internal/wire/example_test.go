package wire_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// The worked example of PROTOCOL.md: a client's Hello and a two-message
// frame with a State and a Sync.
func Example() {
	hello := wire.Append(nil, &wire.Hello{
		Major: wire.ProtocolMajor, Minor: wire.ProtocolMinor,
		Name:     "sensor-gw",
		Token:    []byte("s3cret"),
		Features: wire.FeatureZstd | wire.FeatureDelta,
		Limits:   wire.DefaultLimits(),
	})
	fmt.Print(hex.Dump(hello))

	frame := wire.AppendState(nil, &wire.State{
		Object:       5,
		Version:      []int64{1, 42},
		Format:       []string{"JSON"},
		Synchronized: true,
		Data:         []byte(`{"t":21.5}`),
	})
	frame = wire.AppendSync(frame, &wire.Sync{
		Object:  5,
		Version: []int64{1, 42},
		Age:     1500 * time.Millisecond,
	})
	fmt.Print(hex.Dump(frame))

	d, _ := wire.NewDecoder(wire.Limits{})
	d.Reset(frame)
	for {
		m, err := d.Next()
		if err == io.EOF {
			break
		}
		switch m := m.(type) {
		case *wire.State:
			fmt.Printf("State object %d version %v %v %s\n", m.Object, m.Version, m.Format, m.Data)
		case *wire.Sync:
			fmt.Printf("Sync object %d version %v synchronized %v age %v\n", m.Object, m.Version, m.Synchronized, m.Age)
		}
	}
	// Output:
	// 00000000  01 2b 01 01 09 73 65 6e  73 6f 72 2d 67 77 06 73  |.+...sensor-gw.s|
	// 00000010  33 63 72 65 74 03 0a 80  80 84 08 80 80 80 08 80  |3cret...........|
	// 00000020  80 04 40 40 10 40 80 80  04 80 80 01 40           |..@@.@......@|
	// 00000000  40 16 05 00 02 02 54 01  04 4a 53 4f 4e 0a 7b 22  |@.....T..JSON.{"|
	// 00000010  74 22 3a 32 31 2e 35 7d  41 08 05 01 02 02 54 e0  |t":21.5}A.....T.|
	// 00000020  c6 5b                                             |.[|
	// State object 5 version [1 42] [JSON] {"t":21.5}
	// Sync object 5 version [1 42] synchronized false age 1.5s
}
