// The module of the Go subscriber example (docs/subscribers.md): franz-go, google.golang.org/protobuf and
// the package protoc-gen-go generates from proto/ into gen/ (replace, below). Versions as tools/devtools pins.
module healthsignals/examples/subscribers/go

go 1.19

require (
	github.com/twmb/franz-go v1.16.1
	github.com/twmb/franz-go/pkg/kmsg v1.7.0
	google.golang.org/protobuf v1.33.0
	healthsignals/contracts/go v0.0.0
)

require (
	github.com/klauspost/compress v1.17.4 // indirect
	github.com/pierrec/lz4/v4 v4.1.19 // indirect
)

// The code protoc-gen-go generates from proto/ (docs/subscribers.md, "Go").
replace healthsignals/contracts/go => ./gen/healthsignals/contracts/go
