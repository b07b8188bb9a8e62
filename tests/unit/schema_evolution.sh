#!/usr/bin/env bash
# unit.schema_evolution: the rules of hs-schema-check (docs/design.md §9), as a specification.
# Each case copies proto/ into a temporary tree, applies one mutation, builds that tree's descriptor set with
# protoc and checks it against the unmodified tree: a breaking change exits 1 and prints exactly the lines
# naming the field or value; an addition exits 0.
#   usage: schema_evolution.sh HS_SCHEMA_CHECK PROTOC PROTO_DIR
set -euo pipefail
check=${1:?usage: schema_evolution.sh HS_SCHEMA_CHECK PROTOC PROTO_DIR}
protoc=${2:?usage: schema_evolution.sh HS_SCHEMA_CHECK PROTOC PROTO_DIR}
src=${3:?usage: schema_evolution.sh HS_SCHEMA_CHECK PROTOC PROTO_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

descriptor_set() { # $1 = tree name; builds $work/$1.desc like the hs_descriptor_set target does
  "$protoc" --include_imports --descriptor_set_out="$work/$1.desc" -I "$work/$1" \
    "$work/$1"/healthsignals/v1/*.proto
}

# mutate NAME FROM COMMAND...: the tree NAME is a copy of the tree FROM with COMMAND run inside it. A command
# that changes nothing (the .proto files moved on) is a failure of the test, not a silent pass.
mutate() {
  local name=$1 from=$2
  shift 2
  cp -r "$work/$from" "$work/$name"
  (cd "$work/$name" && "$@") || { fail "$name: the mutation failed: $*"; return 1; }
  if diff -r -q "$work/$from" "$work/$name" >/dev/null; then
    fail "$name: the mutation changed nothing: $*"
    return 1
  fi
  descriptor_set "$name" || { fail "$name: protoc rejected the mutated tree"; return 1; }
}

# verdict NAME STATUS [LINES] [BASELINE]: hs-schema-check BASELINE.desc (default: pristine) NAME.desc exits
# STATUS and prints exactly LINES (newline-separated) before its summary line.
verdict() {
  local name=$1 want_status=$2 want_lines=${3:-} baseline=${4:-pristine}
  local out status=0
  out=$("$check" "$work/$baseline.desc" "$work/$name.desc" 2>&1) || status=$?
  local lines
  lines=$(printf '%s\n' "$out" | grep -v '^hs-schema-check: ' || true)
  if [ "$status" != "$want_status" ]; then
    fail "$name: exit $status, expected $want_status"
    printf '%s\n' "$out" | sed 's/^/    /'
  elif [ "$lines" != "$want_lines" ]; then
    fail "$name: unexpected report"
    diff <(printf '%s\n' "$want_lines") <(printf '%s\n' "$lines") | sed 's/^/    /' || true
  else
    echo "ok: $name -> exit $status${want_lines:+: ${want_lines//$'\n'/ | }}"
  fi
}

# case NAME STATUS LINES COMMAND...: mutate the pristine tree and expect the verdict.
case_() {
  local name=$1 status=$2 lines=$3
  shift 3
  if mutate "$name" pristine "$@"; then verdict "$name" "$status" "$lines"; fi
}

mkdir "$work/pristine"
cp -r "$src/healthsignals" "$work/pristine/"
descriptor_set pristine
indicator=healthsignals/v1/indicator.proto
common=healthsignals/v1/common.proto
alert=healthsignals/v1/alert.proto
obs=healthsignals.v1.IndicatorObservation

echo "--- breaking changes: exit 1, naming the field or value"
case_ remove_field 1 "$obs.volume (6): removed" \
  sed -i '/int64 volume = 6;/d' $indicator
case_ renumber_field 1 "$obs.revision (10): renumbered to 12" \
  sed -i 's/^  uint32 revision = 10;/  uint32 revision = 12;/' $indicator
case_ retype_field 1 "$obs.value (4): type changed from double to float" \
  sed -i 's/^  double value = 4;/  float value = 4;/' $indicator
case_ rename_field 1 "$obs.volume (6): renamed to 'count'" \
  sed -i 's/optional int64 volume = 6;/optional int64 count = 6;/' $indicator
case_ swap_numbers 1 "$obs.provisional (7): renumbered to 8, and number 7 reused by 'suspended'
$obs.suspended (8): renumbered to 7, and number 8 reused by 'provisional'" \
  sed -i -e 's/^  bool provisional = 7;/  bool provisional = 8;/' -e 's/^  bool suspended = 8;/  bool suspended = 7;/' \
  $indicator
case_ retype_message_field 1 "$obs.scope (2): type changed from healthsignals.v1.Scope to string" \
  sed -i 's/^  Scope scope = 2;/  string scope = 2;/' $indicator
case_ repeat_field 1 "$obs.source (11): label changed from optional to repeated" \
  sed -i 's/^  string source = 11;/  repeated string source = 11;/' $indicator
case_ retype_map 1 "healthsignals.v1.Alert.labels (11): type changed from map<string, string> to map<string, int32>" \
  sed -i 's/^  map<string, string> labels = 11;/  map<string, int32> labels = 11;/' $alert
case_ map_to_repeated 1 "healthsignals.v1.Alert.annotations (12): changed from map<string, string> to repeated string" \
  sed -i 's/^  map<string, string> annotations = 12;/  repeated string annotations = 12;/' $alert
case_ move_into_oneof 1 "$obs.provisional (7): moved into oneof 'status'
$obs.suspended (8): moved into oneof 'status'" \
  sed -i -e 's/^  bool provisional = 7;/  oneof status { bool provisional = 7;/' \
  -e 's/^  bool suspended = 8;/  bool suspended = 8; }/' $indicator
case_ add_presence_wrapper 1 "$obs.value (4): moved into presence oneof '_value' (optional)" \
  sed -i 's/^  double value = 4;/  oneof _value { double value = 4; }/' $indicator
case_ drop_presence_wrapper 1 "$obs.volume (6): moved out of presence oneof '_volume' (optional)" \
  sed -i 's/optional int64 volume = 6;/int64 volume = 6;/' $indicator
case_ remove_message 1 "healthsignals.v1.BudgetLine: message removed" \
  sed -i '/^message BudgetLine {/,/^}/d' healthsignals/v1/budget.proto
case_ remove_enum_value 1 "healthsignals.v1.Unit.WEEKS (3): removed" \
  sed -i '/^  WEEKS = 3;/d' $common
case_ renumber_enum_value 1 "healthsignals.v1.Unit.DAYS (2): renumbered to 10" \
  sed -i 's/^  DAYS = 2;/  DAYS = 10;/' $common
case_ rename_enum_value 1 "healthsignals.v1.Unit.FTE (5): renamed to 'FULL_TIME'" \
  sed -i 's/^  FTE = 5;/  FULL_TIME = 5;/' $common
# A baseline that reserved a number and a name (a field removed before the release); reusing either breaks.
if mutate reserved pristine sed -i 's/^  string source = 11;/&\n  reserved 12;\n  reserved "note";/' $indicator &&
  mutate reuse_reserved reserved sed -i -e 's/^  reserved 12;/  string note = 12;/' -e '/^  reserved "note";/d' \
    $indicator; then
  verdict reuse_reserved 1 "$obs.note (12): number 12 is reserved in the baseline
$obs.note (12): name 'note' is reserved in the baseline" reserved
fi

# The file options that place generated code: a change moves every generated type (Go import path, Java
# package); a baseline without an option lets it be added.
case_ change_go_package 1 "$indicator: option go_package changed from 'healthsignals/contracts/go/healthsignals/v1;healthsignalsv1' to 'example.org/hs;hs' (generated code moves)" \
  sed -i 's|^option go_package = .*|option go_package = "example.org/hs;hs";|' $indicator
case_ change_java_multiple_files 1 "$indicator: option java_multiple_files changed from 'true' to 'false' (generated code moves)" \
  sed -i 's/^option java_multiple_files = true;/option java_multiple_files = false;/' $indicator
case_ remove_java_package 1 "$indicator: option java_package changed from 'dk.healthsignals.v1' to '' (generated code moves)" \
  sed -i '/^option java_package = /d' $indicator
if mutate no_csharp_namespace pristine sed -i '/^option csharp_namespace = /d' $indicator; then
  verdict pristine 0 "" no_csharp_namespace
fi

echo "--- additions and equivalent spellings: exit 0"
case_ add_field 0 "" \
  sed -i 's/^  string source = 11;/&\n  string note = 12;/' $indicator
# shellcheck disable=SC2016 # "$a" is sed's "append after the last line"
case_ add_message 0 "" \
  sed -i '$a message IndicatorNote {\n  string text = 1;\n}' $indicator
case_ add_enum_value 0 "" \
  sed -i 's/^  RATE = 9;.*/&\n  PER_MILLE = 10;/' $common
case_ add_file 0 "" \
  sh -c 'printf "syntax = \"proto3\";\npackage healthsignals.v1;\nmessage Extra { string x = 1; }\n" \
    >healthsignals/v1/extra.proto'
# proto/ spells presence as proto3 `optional`; the released baselines before it, as the one-field oneof.
case_ proto3_optional_is_presence_wrapper 0 "" \
  sed -i 's/optional int64 volume = 6;/oneof _volume { int64 volume = 6; }/' $indicator

echo "--- usage, I/O and parse errors: exit 2"
expect_status() { # NAME STATUS ARGS...
  local name=$1 want=$2 status=0
  shift 2
  "$check" "$@" >"$work/out" 2>&1 || status=$?
  if [ "$status" = "$want" ]; then echo "ok: $name -> exit $status"; else
    fail "$name: exit $status, expected $want"
    sed 's/^/    /' "$work/out"
  fi
}
printf 'not a descriptor set\n' >"$work/garbage.desc"
: >"$work/empty.desc"
expect_status help 0 --help
expect_status no_arguments 2
expect_status missing_file 2 "$work/missing.desc" "$work/pristine.desc"
expect_status not_a_descriptor_set 2 "$work/garbage.desc" "$work/pristine.desc"
expect_status empty_baseline 2 "$work/empty.desc" "$work/pristine.desc"

[ "$failures" = 0 ] || { echo "schema_evolution: $failures failure(s)"; exit 1; }
echo "schema_evolution: all cases pass"
