#!/usr/bin/env bash
# lint.asyncapi: docs/asyncapi.json is current and valid. Regenerates it with `hsctl contracts asyncapi` and
# compares (any difference fails: regenerate and commit), then validates it with the AsyncAPI project's own
# parser from npm (tools/devtools asyncapi-parser, fetched once), which must report no error or warning. A
# deliberately broken copy must be rejected, so that a parser that accepts everything cannot pass.
#   usage: asyncapi.sh HSCTL SOURCE_DIR
set -euo pipefail
hsctl=${1:?usage: asyncapi.sh HSCTL SOURCE_DIR}
src=${2:?usage: asyncapi.sh HSCTL SOURCE_DIR}
doc=$src/docs/asyncapi.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$hsctl" contracts asyncapi --output "$work/asyncapi.json"
if ! diff -u "$doc" "$work/asyncapi.json" >"$work/diff"; then
  head -n 60 "$work/diff"
  echo "asyncapi: docs/asyncapi.json is out of date; regenerate it and commit the result:"
  echo "  build/tools/hsctl/hsctl contracts asyncapi --output docs/asyncapi.json"
  exit 1
fi
echo "asyncapi: docs/asyncapi.json is what hsctl contracts asyncapi generates"

# The command's own errors: a wrong subcommand is a usage error (2), an unwritable output an I/O error (5)
# that names the file.
status=0
"$hsctl" contracts openapi >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || { echo "asyncapi: 'hsctl contracts openapi' exited $status, expected 2"; exit 1; }
status=0
"$hsctl" contracts asyncapi --output "$work/missing/asyncapi.json" 2>"$work/err" || status=$?
if [ "$status" != 5 ] || ! grep -q "$work/missing/asyncapi.json" "$work/err"; then
  echo "asyncapi: an unwritable --output exited $status ($(cat "$work/err")), expected 5 naming the file"
  exit 1
fi

command -v node >/dev/null || { echo "asyncapi: node not found (tools/setup installs nodejs)"; exit 1; }
parser=$("$src/tools/devtools" asyncapi-parser)
node "$src/tests/lint/asyncapi_validate.js" "$parser" "$doc"

sed 's/"action": "receive"/"action": "consume"/' "$doc" >"$work/broken.json"
if node "$src/tests/lint/asyncapi_validate.js" "$parser" "$work/broken.json" >"$work/broken.out" 2>&1; then
  cat "$work/broken.out"
  echo "asyncapi: the parser accepted a document with an invalid operation action; it checks nothing"
  exit 1
fi
echo "asyncapi: the parser rejects a broken copy ($(grep -c ': error: ' "$work/broken.out") errors)"
