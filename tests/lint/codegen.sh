#!/usr/bin/env bash
# lint.codegen: the .proto files generate usable code for Go, Java and Python with protoc and no options
# but the output directory: their file options (go_package, java_package, java_multiple_files, ...) say
# where the code goes. Each generator runs into a temporary directory, and then
#   Go      the generated package builds and passes go vet in a module named as go_package says, against
#           google.golang.org/protobuf (protoc-gen-go's own version, from the Go module proxy);
#   Java    javac compiles every generated class against protobuf-java 3.21.12 (Maven Central), the runtime
#           of Debian 12's protoc 3.21.12;
#   Python  every generated module imports with protobuf 4.21.12 (PyPI), and a message built in Python
#           survives the binary wire format and the JSON mapping as hsctl writes it.
# The tools come from tools/devtools (fetched once into ~/.cache/healthsignals/devtools).
#   usage: codegen.sh SOURCE_DIR [PROTOC]
set -euo pipefail
src=${1:?usage: codegen.sh SOURCE_DIR [PROTOC]}
protoc=${2:-protoc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$src"
protos=(proto/healthsignals/v1/*.proto)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
for tool in go javac python3; do
  command -v "$tool" >/dev/null || { echo "codegen: $tool not found (tools/setup installs it)"; exit 1; }
done
mapfile -t tools < <(tools/devtools protoc-gen-go go-modules protobuf-java protobuf-python)
[ ${#tools[@]} = 4 ] || { echo "codegen: tools/devtools failed"; exit 1; }
protoc_gen_go=${tools[0]} gomodcache=${tools[1]} protobuf_java=${tools[2]} protobuf_python=${tools[3]}

# --- Go --------------------------------------------------------------------------------------------------
mkdir -p "$work/go"
"$protoc" --plugin=protoc-gen-go="$protoc_gen_go" --go_out="$work/go" -I proto "${protos[@]}"
pkg=$(sed -n 's/^option go_package = "\([^;"]*\).*/\1/p' proto/healthsignals/v1/common.proto)
module=${pkg%/healthsignals/v1}
if [ ! -d "$work/go/$pkg" ]; then
  fail "go: protoc-gen-go wrote nothing under $pkg (go_package)"
else
  protobuf_go=$(basename "$(dirname "$protoc_gen_go")")
  protobuf_go=${protobuf_go#bin-}
  # The module's own minimum Go version, so that the oldest Go it supports (Debian 12's 1.19) builds it.
  go_version=$(sed -n 's/^go \([0-9.]*\)$/\1/p' \
    "$gomodcache/cache/download/google.golang.org/protobuf/@v/$protobuf_go.mod")
  cat >"$work/go/$module/go.mod" <<GOMOD
module $module

go ${go_version:-1.17}

require google.golang.org/protobuf $protobuf_go
GOMOD
  if (cd "$work/go/$module" && export GOMODCACHE="$gomodcache" GOPATH="$(dirname "$gomodcache")" \
        GOCACHE="$(dirname "$gomodcache")/build" GOTOOLCHAIN=local GOFLAGS=-modcacherw &&
      go mod tidy && go build ./... && go vet ./...) >"$work/go.log" 2>&1; then
    echo "ok: go: $(ls "$work/go/$pkg" | wc -l) files of package $(sed -n "s/^package //p" "$work/go/$pkg/common.pb.go") build and vet with google.golang.org/protobuf $protobuf_go"
  else
    cat "$work/go.log"
    fail "go: the generated code does not build"
  fi
fi

# --- Java ------------------------------------------------------------------------------------------------
mkdir -p "$work/java" "$work/classes"
"$protoc" --java_out="$work/java" -I proto "${protos[@]}"
mapfile -t java_files < <(find "$work/java" -name '*.java' | sort)
java_pkg=$(sed -n 's/^option java_package = "\(.*\)";$/\1/p' proto/healthsignals/v1/common.proto)
if [ "${#java_files[@]}" = 0 ] || [ ! -d "$work/java/${java_pkg//.//}" ]; then
  fail "java: protoc wrote nothing under ${java_pkg//.//} (java_package)"
elif javac -nowarn -encoding UTF-8 -cp "$protobuf_java" -d "$work/classes" "${java_files[@]}" >"$work/java.log" 2>&1; then
  echo "ok: java: ${#java_files[@]} files of package $java_pkg compile against $(basename "$protobuf_java")"
else
  cat "$work/java.log"
  fail "java: the generated code does not compile"
fi

# --- Python ----------------------------------------------------------------------------------------------
mkdir -p "$work/python"
"$protoc" --python_out="$work/python" -I proto "${protos[@]}"
if PYTHONPATH="$work/python:$protobuf_python" python3 - "${protos[@]}" <<'PY'; then
import importlib, json, os, sys
from google.protobuf import json_format
modules = [importlib.import_module("healthsignals.v1." + os.path.basename(p)[:-len(".proto")] + "_pb2")
           for p in sys.argv[1:]]
from healthsignals.v1 import indicator_pb2, common_pb2
obs = indicator_pb2.IndicatorObservation(
    indicator="udredningsret.somatik.compliance", period="2023Q2", value=72.0, unit=common_pb2.PERCENT,
    volume=0, quality_flags=["lpr3-transition"],
    scope=common_pb2.Scope(kind=common_pb2.REGION, code="1084"))
again = indicator_pb2.IndicatorObservation.FromString(obs.SerializeToString())
assert again == obs and again.HasField("volume"), again
text = json_format.MessageToDict(obs)
# The JSON mapping hsctl writes (docs/asyncapi.json): camelCase keys, 64-bit integers as strings, enums by
# name, a presence field written even when zero.
assert text == {"indicator": "udredningsret.somatik.compliance", "scope": {"kind": "REGION", "code": "1084"},
                "period": "2023Q2", "value": 72.0, "unit": "PERCENT", "volume": "0",
                "qualityFlags": ["lpr3-transition"]}, text
print(f"ok: python: {len(modules)} modules import with protobuf "
      f"{__import__('google.protobuf').protobuf.__version__}; a message round-trips")
PY
  :
else
  fail "python: the generated modules do not import or work"
fi

[ "$failures" = 0 ] || { echo "codegen: $failures failure(s)"; exit 1; }
echo "codegen: Go, Java and Python code generated and checked"
