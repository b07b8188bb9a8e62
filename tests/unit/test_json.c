/* The JSON text form of events (common/io/src/json.c): the canonical proto3 JSON mapping, written for every
 * message type by one descriptor-driven mapper. Examples use docs/domain.md §10's figures; a hand-written
 * descriptor, Everything, covers the field types our contracts do not use yet (bytes, sint/fixed, float,
 * integer and bool map keys, a proto2 optional, a oneof of three and a recursive message); seeded random
 * messages of every type must come back byte for byte through text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/common.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/json.h"
#include "hs/topic.h"
#include "records.h"

/* ---- Everything: a test message with every kind of field ---------------------------------------------- */

typedef struct Everything Everything;

typedef struct ScopeByIdEntry { /* map<int64, healthsignals.v1.Scope> */
    ProtobufCMessage base;
    int64_t key;
    Healthsignals__V1__Scope *value;
} ScopeByIdEntry;

typedef struct BlobByFlagEntry { /* map<bool, bytes> */
    ProtobufCMessage base;
    protobuf_c_boolean key;
    ProtobufCBinaryData value;
} BlobByFlagEntry;

/* message Everything, as protoc-c would lay it out; the field numbers run 1..28 in member order. */
struct Everything {
    ProtobufCMessage base;
    int32_t i32;              /* 1 int32 */
    int64_t i64;              /* 2 int64 */
    uint32_t u32;             /* 3 uint32 */
    uint64_t u64;             /* 4 uint64 */
    int32_t s32;              /* 5 sint32 */
    int64_t s64;              /* 6 sint64 */
    uint32_t fx32;            /* 7 fixed32 */
    uint64_t fx64;            /* 8 fixed64 */
    int32_t sfx32;            /* 9 sfixed32 */
    int64_t sfx64;            /* 10 sfixed64 */
    float ratio;              /* 11 float */
    double amount;            /* 12 double */
    protobuf_c_boolean flag;  /* 13 bool */
    char *text;               /* 14 string */
    ProtobufCBinaryData blob; /* 15 bytes */
    int unit;                 /* 16 healthsignals.v1.Unit */
    Everything *child;        /* 17 Everything */
    /* 18 repeated int64, 19 repeated bytes, 20 repeated float [packed], 21 repeated Unit,
     * 22 repeated Everything, 23 map<int64, Scope>, 24 map<bool, bytes> */
    size_t n_big_numbers;
    int64_t *big_numbers;
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    size_t n_ratios;
    float *ratios;
    size_t n_units;
    int *units;
    size_t n_children;
    Everything **children;
    size_t n_scope_by_id;
    ScopeByIdEntry **scope_by_id;
    size_t n_blob_by_flag;
    BlobByFlagEntry **blob_by_flag;
    /* 25 optional int32 opt_count: a proto2 label, presence by has_ */
    protobuf_c_boolean has_opt_count;
    int32_t opt_count;
    /* oneof choice { string choice_name = 26; uint64 choice_number = 27; bytes choice_blob = 28; } */
    uint32_t choice_case;
    union {
        char *choice_name;
        uint64_t choice_number;
        ProtobufCBinaryData choice_blob;
    };
};

static void everything_init(ProtobufCMessage *msg);
static void scope_by_id_entry_init(ProtobufCMessage *msg);
static void blob_by_flag_entry_init(ProtobufCMessage *msg);

static const ProtobufCIntRange key_value_ranges[] = {{1, 0}, {0, 2}};
static const unsigned key_value_by_name[] = {0, 1};

static const ProtobufCFieldDescriptor scope_by_id_entry_fields[] = {
    {.name = "key",
     .id = 1,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_INT64,
     .offset = offsetof(ScopeByIdEntry, key)},
    {.name = "value",
     .id = 2,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(ScopeByIdEntry, value),
     .descriptor = &healthsignals__v1__scope__descriptor},
};
static const ProtobufCMessageDescriptor scope_by_id_entry_descriptor = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "hs.test.Everything.ScopeByIdEntry",
    .short_name = "ScopeByIdEntry",
    .c_name = "ScopeByIdEntry",
    .package_name = "hs.test",
    .sizeof_message = sizeof(ScopeByIdEntry),
    .n_fields = 2,
    .fields = scope_by_id_entry_fields,
    .fields_sorted_by_name = key_value_by_name,
    .n_field_ranges = 1,
    .field_ranges = key_value_ranges,
    .message_init = scope_by_id_entry_init,
};

static const ProtobufCFieldDescriptor blob_by_flag_entry_fields[] = {
    {.name = "key",
     .id = 1,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_BOOL,
     .offset = offsetof(BlobByFlagEntry, key)},
    {.name = "value",
     .id = 2,
     .label = PROTOBUF_C_LABEL_NONE,
     .type = PROTOBUF_C_TYPE_BYTES,
     .offset = offsetof(BlobByFlagEntry, value)},
};
static const ProtobufCMessageDescriptor blob_by_flag_entry_descriptor = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "hs.test.Everything.BlobByFlagEntry",
    .short_name = "BlobByFlagEntry",
    .c_name = "BlobByFlagEntry",
    .package_name = "hs.test",
    .sizeof_message = sizeof(BlobByFlagEntry),
    .n_fields = 2,
    .fields = blob_by_flag_entry_fields,
    .fields_sorted_by_name = key_value_by_name,
    .n_field_ranges = 1,
    .field_ranges = key_value_ranges,
    .message_init = blob_by_flag_entry_init,
};

static const ProtobufCMessageDescriptor everything_descriptor;

/* Field descriptors of Everything. The zero label is REQUIRED, so every descriptor here names its label. */
#define SCALAR(name_, id_, type_)                                                                            \
    {                                                                                                        \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_NONE, .type = PROTOBUF_C_TYPE_##type_,          \
        .offset = offsetof(Everything, name_)                                                                \
    }
#define TYPED(name_, id_, type_, desc_, default_)                                                            \
    {                                                                                                        \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_NONE, .type = PROTOBUF_C_TYPE_##type_,          \
        .offset = offsetof(Everything, name_), .descriptor = desc_, .default_value = default_                \
    }
#define REPEATED(name_, id_, type_, desc_, flags_)                                                           \
    {                                                                                                        \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_REPEATED, .type = PROTOBUF_C_TYPE_##type_,      \
        .quantifier_offset = offsetof(Everything, n_##name_), .offset = offsetof(Everything, name_),         \
        .descriptor = desc_, .flags = flags_                                                                 \
    }
#define ONEOF(name_, id_, type_)                                                                             \
    {                                                                                                        \
        .name = #name_, .id = id_, .label = PROTOBUF_C_LABEL_NONE, .type = PROTOBUF_C_TYPE_##type_,          \
        .quantifier_offset = offsetof(Everything, choice_case), .offset = offsetof(Everything, name_),       \
        .flags = PROTOBUF_C_FIELD_FLAG_ONEOF                                                                 \
    }

static const ProtobufCFieldDescriptor everything_fields[] = {
    SCALAR(i32, 1, INT32),
    SCALAR(i64, 2, INT64),
    SCALAR(u32, 3, UINT32),
    SCALAR(u64, 4, UINT64),
    SCALAR(s32, 5, SINT32),
    SCALAR(s64, 6, SINT64),
    SCALAR(fx32, 7, FIXED32),
    SCALAR(fx64, 8, FIXED64),
    SCALAR(sfx32, 9, SFIXED32),
    SCALAR(sfx64, 10, SFIXED64),
    SCALAR(ratio, 11, FLOAT),
    SCALAR(amount, 12, DOUBLE),
    SCALAR(flag, 13, BOOL),
    TYPED(text, 14, STRING, NULL, &protobuf_c_empty_string),
    SCALAR(blob, 15, BYTES),
    TYPED(unit, 16, ENUM, &healthsignals__v1__unit__descriptor, NULL),
    TYPED(child, 17, MESSAGE, &everything_descriptor, NULL),
    REPEATED(big_numbers, 18, INT64, NULL, 0),
    REPEATED(blobs, 19, BYTES, NULL, 0),
    REPEATED(ratios, 20, FLOAT, NULL, PROTOBUF_C_FIELD_FLAG_PACKED),
    REPEATED(units, 21, ENUM, &healthsignals__v1__unit__descriptor, 0),
    REPEATED(children, 22, MESSAGE, &everything_descriptor, 0),
    REPEATED(scope_by_id, 23, MESSAGE, &scope_by_id_entry_descriptor, 0),
    REPEATED(blob_by_flag, 24, MESSAGE, &blob_by_flag_entry_descriptor, 0),
    {.name = "opt_count",
     .id = 25,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_INT32,
     .quantifier_offset = offsetof(Everything, has_opt_count),
     .offset = offsetof(Everything, opt_count)},
    ONEOF(choice_name, 26, STRING),
    ONEOF(choice_number, 27, UINT64),
    ONEOF(choice_blob, 28, BYTES),
};
#define EVERYTHING_FIELDS (sizeof everything_fields / sizeof everything_fields[0])

/* Field indices in strcmp order of their names, as protobuf-c's name lookup expects. */
static const unsigned everything_by_name[] = {
    11 /* amount */,      17 /* big_numbers */,
    14 /* blob */,        23 /* blob_by_flag */,
    18 /* blobs */,       16 /* child */,
    21 /* children */,    27 /* choice_blob */,
    25 /* choice_name */, 26 /* choice_number */,
    12 /* flag */,        6 /* fx32 */,
    7 /* fx64 */,         0 /* i32 */,
    1 /* i64 */,          24 /* opt_count */,
    10 /* ratio */,       19 /* ratios */,
    4 /* s32 */,          5 /* s64 */,
    22 /* scope_by_id */, 8 /* sfx32 */,
    9 /* sfx64 */,        13 /* text */,
    2 /* u32 */,          3 /* u64 */,
    15 /* unit */,        20 /* units */,
};
static const ProtobufCIntRange everything_ranges[] = {{1, 0}, {0, EVERYTHING_FIELDS}};

static const ProtobufCMessageDescriptor everything_descriptor = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "hs.test.Everything",
    .short_name = "Everything",
    .c_name = "Everything",
    .package_name = "hs.test",
    .sizeof_message = sizeof(Everything),
    .n_fields = EVERYTHING_FIELDS,
    .fields = everything_fields,
    .fields_sorted_by_name = everything_by_name,
    .n_field_ranges = 1,
    .field_ranges = everything_ranges,
    .message_init = everything_init,
};

static void everything_init(ProtobufCMessage *msg)
{
    *(Everything *)msg = (Everything){.base = PROTOBUF_C_MESSAGE_INIT(&everything_descriptor),
                                      .text = (char *)protobuf_c_empty_string};
}

static void scope_by_id_entry_init(ProtobufCMessage *msg)
{
    *(ScopeByIdEntry *)msg = (ScopeByIdEntry){.base = PROTOBUF_C_MESSAGE_INIT(&scope_by_id_entry_descriptor)};
}

static void blob_by_flag_entry_init(ProtobufCMessage *msg)
{
    *(BlobByFlagEntry *)msg =
        (BlobByFlagEntry){.base = PROTOBUF_C_MESSAGE_INIT(&blob_by_flag_entry_descriptor)};
}

/* ---- helpers ------------------------------------------------------------------------------------------ */

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(*len ? *len : 1);
    assert_non_null(bytes);
    assert_int_equal(protobuf_c_message_pack(msg, bytes), *len);
    return bytes;
}

/* The wire encodings of `a` and `b` are the same bytes: the strictest equality protobuf offers. */
static void assert_same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t a_len, b_len;
    uint8_t *a_bytes = pack(a, &a_len), *b_bytes = pack(b, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a_bytes, b_bytes, a_len);
    free(a_bytes);
    free(b_bytes);
}

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *desc, const char *text)
{
    hs_error error = {0};
    ProtobufCMessage *msg = hs_json_decode_text(desc, text, strlen(text), &error);
    if (!msg)
        fail_msg("%s: %s", text, error.message);
    return msg;
}

static void assert_rejected(const ProtobufCMessageDescriptor *desc, const char *text, const char *reason)
{
    hs_error error = {0};
    ProtobufCMessage *msg = hs_json_decode_text(desc, text, strlen(text), &error);
    assert_null(msg);
    assert_int_equal(error.code, HS_ERR_PARSE);
    assert_string_equal(error.message, reason);
}

/* Encodes `msg` to text, decodes the text and checks that the result packs to the same bytes and encodes to
 * the same text. Returns the text (the caller frees it). */
static char *assert_round_trip(const ProtobufCMessage *msg)
{
    char *text = hs_json_encode_text(msg);
    assert_non_null(text);
    ProtobufCMessage *back = decode_ok(msg->descriptor, text);
    assert_same_wire(msg, back);
    char *again = hs_json_encode_text(back);
    assert_string_equal(again, text);
    free(again);
    protobuf_c_message_free_unpacked(back, NULL);
    return text;
}

static void assert_encodes_to(const ProtobufCMessage *msg, const char *expected)
{
    char *text = assert_round_trip(msg);
    assert_string_equal(text, expected);
    free(text);
}

/* ---- round trips of the event types, with docs/domain.md §10 figures ---------------------------------- */

static void test_indicator_observation_has_its_canonical_text(void **state)
{
    /* Tabel 8: udredningsret met in somatics, Hovedstaden (1084), 2023Q2: 83 %. */
    char *flags[] = {"epj-transition"};
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1084", "udredningsret.somatik.compliance",
                        "2023Q2", 83, HEALTHSIGNALS__V1__UNIT__PERCENT);
    r.obs._volume_case = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME;
    r.obs.volume = 12345;
    r.obs.provisional = 1;
    r.obs.n_quality_flags = 1;
    r.obs.quality_flags = flags;
    r.obs.revision = 2;
    r.obs.source = "Landspatientregistret via Danske Regioner dashboard 2023-09-04";
    assert_encodes_to(&r.obs.base,
                      "{\"indicator\":\"udredningsret.somatik.compliance\","
                      "\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q2\","
                      "\"value\":83,\"unit\":\"PERCENT\",\"volume\":\"12345\",\"provisional\":true,"
                      "\"qualityFlags\":[\"epj-transition\"],\"revision\":2,"
                      "\"source\":\"Landspatientregistret via Danske Regioner dashboard 2023-09-04\"}");
}

static void test_budget_line_amount_in_ore_is_a_decimal_string(void **state)
{
    /* Danske Regioner, Kontingent, budget 2023: -152.100.000 kr. = -15210000000 øre (income is negative). */
    Healthsignals__V1__BudgetLine line = HEALTHSIGNALS__V1__BUDGET_LINE__INIT;
    line.unit = "danske-regioner";
    line.line = "Kontingent";
    line.year = 2023;
    line.kind = HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET;
    line.amount_ore = -15210000000;
    line.source = "Forventet regnskab 2023";
    assert_encodes_to(&line.base, "{\"unit\":\"danske-regioner\",\"line\":\"Kontingent\",\"year\":2023,"
                                  "\"kind\":\"BUDGET\",\"amountOre\":\"-15210000000\","
                                  "\"source\":\"Forventet regnskab 2023\"}");
}

static void test_capacity_available_zero_is_kept_and_absent_is_left_out(void **state)
{
    /* Intensive care, national, 2021Q4: 307 patients in 415 beds. */
    test_capacity r;
    test_capacity_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK", "beds.intensive", "2021Q4");
    r.obs.occupied = 307;
    assert_encodes_to(&r.obs.base,
                      "{\"resource\":\"beds.intensive\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":"
                      "\"DK\"},\"period\":\"2021Q4\",\"occupied\":307}");
    r.obs._available_case = HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___AVAILABLE_AVAILABLE;
    r.obs.available = 0;
    assert_encodes_to(&r.obs.base,
                      "{\"resource\":\"beds.intensive\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":"
                      "\"DK\"},\"period\":\"2021Q4\",\"available\":0,\"occupied\":307}");
    r.obs.available = 415;
    char *text = assert_round_trip(&r.obs.base);
    assert_non_null(strstr(text, "\"available\":415"));
    free(text);
}

static void test_rule_round_trips_with_scopes_labels_and_thresholds(void **state)
{
    /* Escalation levels for intensive care (OPEL): levels 2, 3, 4 from 85, 92 and 97 % utilisation. */
    Healthsignals__V1__Scope nation = HEALTHSIGNALS__V1__SCOPE__INIT,
                             capital = HEALTHSIGNALS__V1__SCOPE__INIT;
    nation.kind = HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL;
    nation.code = "DK";
    capital.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    capital.code = "1084";
    Healthsignals__V1__Scope *scopes[] = {&nation, &capital};
    Healthsignals__V1__Rule__LabelsEntry team = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT;
    Healthsignals__V1__Rule__LabelsEntry plan = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT;
    team.key = "team";
    team.value = "capacity";
    plan.key = "plan";
    plan.value = "opel";
    Healthsignals__V1__Rule__LabelsEntry *labels[] = {&team, &plan};
    double levels[] = {85, 92, 97};
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.id = "capacity.intensive.opel";
    rule.service = "capacity";
    rule.subject = "beds.intensive";
    rule.kind = HEALTHSIGNALS__V1__RULE_KIND__ESCALATION_LEVELS;
    rule.direction = HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER;
    rule.n_scopes = 2;
    rule.scopes = scopes;
    rule.severity = HEALTHSIGNALS__V1__SEVERITY__CRITICAL;
    rule.n_level_thresholds_pct = 3;
    rule.level_thresholds_pct = levels;
    rule.alert_level = 3;
    rule.n_labels = 2;
    rule.labels = labels;
    assert_encodes_to(&rule.base,
                      "{\"id\":\"capacity.intensive.opel\",\"service\":\"capacity\","
                      "\"subject\":\"beds.intensive\",\"kind\":\"ESCALATION_LEVELS\","
                      "\"direction\":\"LOWER_IS_BETTER\",\"scopes\":[{\"kind\":\"NATIONAL\",\"code\":"
                      "\"DK\"},{\"kind\":\"REGION\",\"code\":\"1084\"}],\"severity\":\"CRITICAL\","
                      "\"levelThresholdsPct\":[85,92,97],\"alertLevel\":3,"
                      "\"labels\":{\"team\":\"capacity\",\"plan\":\"opel\"}}");
    /* Nursing-home doctors: coverage >= 80 % (a threshold). */
    rule.kind = HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD;
    rule._threshold_case = HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD;
    rule.threshold = 80;
    char *text = assert_round_trip(&rule.base);
    assert_non_null(strstr(text, "\"threshold\":80"));
    free(text);
}

static void test_alert_round_trips_with_labels_and_annotations(void **state)
{
    /* Udredningsret, Midtjylland 2023Q2: 61 % against the national target of 79 %. */
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope.code = "1082";
    Healthsignals__V1__Alert__LabelsEntry name = HEALTHSIGNALS__V1__ALERT__LABELS_ENTRY__INIT;
    name.key = "alertname";
    name.value = "akutplan.udredningsret.somatik";
    Healthsignals__V1__Alert__LabelsEntry *labels[] = {&name};
    Healthsignals__V1__Alert__AnnotationsEntry summary = HEALTHSIGNALS__V1__ALERT__ANNOTATIONS_ENTRY__INIT;
    Healthsignals__V1__Alert__AnnotationsEntry description =
        HEALTHSIGNALS__V1__ALERT__ANNOTATIONS_ENTRY__INIT;
    summary.key = "summary";
    summary.value = "Udredningsret Midtjylland 61 % < 79 %";
    description.key = "description";
    description.value = "Målet for udredningsret i somatikken er ikke nået i 2023Q2.";
    Healthsignals__V1__Alert__AnnotationsEntry *annotations[] = {&summary, &description};
    Healthsignals__V1__Alert alert = HEALTHSIGNALS__V1__ALERT__INIT;
    alert.fingerprint = "5f2b8c1d9e0a7b34";
    alert.state = HEALTHSIGNALS__V1__ALERT_STATE__FIRING;
    alert.severity = HEALTHSIGNALS__V1__SEVERITY__WARNING;
    alert.rule = "akutplan.udredningsret.somatik";
    alert.service = "targets";
    alert.scope = &scope;
    alert.subject = "udredningsret.somatik.compliance";
    alert.period = "2023Q2";
    alert.value = 61;
    alert.threshold = 79;
    alert.n_labels = 1;
    alert.labels = labels;
    alert.n_annotations = 2;
    alert.annotations = annotations;
    alert.starts_at = "2023-09-04T06:00:00Z";
    char *text = assert_round_trip(&alert.base);
    assert_non_null(strstr(text,
                           "\"labels\":{\"alertname\":\"akutplan.udredningsret.somatik\"},"
                           "\"annotations\":{\"summary\":\"Udredningsret Midtjylland 61 % < 79 %\","
                           "\"description\":\"Målet for udredningsret i somatikken er ikke nået i 2023Q2."
                           "\"},\"startsAt\":\"2023-09-04T06:00:00Z\"}"));
    free(text);
}

/* ---- presence and defaults ---------------------------------------------------------------------------- */

static void test_default_values_are_left_out(void **state)
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    assert_encodes_to(&obs.base, "{}");
    obs.scope = &scope; /* a present submessage is written even when all of it is default */
    assert_encodes_to(&obs.base, "{\"scope\":{}}");
}

static void test_presence_field_set_to_zero_is_written(void **state)
{
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs._volume_case = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME;
    obs.volume = 0;
    assert_encodes_to(&obs.base, "{\"volume\":\"0\"}");
    Healthsignals__V1__IndicatorObservation *back =
        (Healthsignals__V1__IndicatorObservation *)decode_ok(obs.base.descriptor, "{\"volume\":0}");
    assert_int_equal(back->_volume_case, HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME);
    protobuf_c_message_free_unpacked(&back->base, NULL);
}

static void test_null_means_default(void **state)
{
    Healthsignals__V1__IndicatorObservation *obs = (Healthsignals__V1__IndicatorObservation *)decode_ok(
        &healthsignals__v1__indicator_observation__descriptor,
        "{\"scope\":null,\"volume\":null,\"qualityFlags\":null,\"value\":null,\"unit\":null}");
    assert_null(obs->scope);
    assert_int_equal(obs->_volume_case, 0);
    assert_int_equal(obs->n_quality_flags, 0);
    protobuf_c_message_free_unpacked(&obs->base, NULL);
}

static void test_proto_field_names_are_accepted_on_input(void **state)
{
    Healthsignals__V1__BudgetLine *line = (Healthsignals__V1__BudgetLine *)decode_ok(
        &healthsignals__v1__budget_line__descriptor, "{\"amount_ore\":\"-15210000000\",\"line\":\"Løn\"}");
    assert_int_equal(line->amount_ore, -15210000000);
    assert_string_equal(line->line, "Løn");
    protobuf_c_message_free_unpacked(&line->base, NULL);
}

static void test_optional_field_with_has_flag_keeps_zero(void **state)
{
    Everything *msg = (Everything *)decode_ok(&everything_descriptor, "{\"optCount\":0}");
    assert_true(msg->has_opt_count);
    char *text = assert_round_trip(&msg->base);
    assert_string_equal(text, "{\"optCount\":0}");
    free(text);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
}

/* ---- scalars ------------------------------------------------------------------------------------------ */

static void test_int64_string_keeps_full_precision(void **state)
{
    /* 2^53 + 1: the first integer a double cannot hold. */
    Healthsignals__V1__IndicatorObservation *obs = (Healthsignals__V1__IndicatorObservation *)decode_ok(
        &healthsignals__v1__indicator_observation__descriptor, "{\"volume\":\"9007199254740993\"}");
    assert_int_equal(obs->volume, 9007199254740993);
    char *text = assert_round_trip(&obs->base);
    assert_string_equal(text, "{\"volume\":\"9007199254740993\"}");
    free(text);
    protobuf_c_message_free_unpacked(&obs->base, NULL);
}

static void test_64bit_extremes_round_trip(void **state)
{
    Everything *msg = (Everything *)decode_ok(
        &everything_descriptor, "{\"i64\":\"-9223372036854775808\",\"u64\":\"18446744073709551615\","
                                "\"s64\":\"9223372036854775807\",\"fx64\":\"18446744073709551615\"}");
    assert_true(msg->i64 == INT64_MIN);
    assert_true(msg->u64 == UINT64_MAX);
    assert_true(msg->s64 == INT64_MAX);
    free(assert_round_trip(&msg->base));
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    assert_rejected(&everything_descriptor, "{\"i64\":\"9223372036854775808\"}",
                    "i64: \"9223372036854775808\" is out of range for int64");
    assert_rejected(&everything_descriptor, "{\"u64\":\"18446744073709551616\"}",
                    "u64: \"18446744073709551616\" is out of range for uint64");
}

static void test_whole_doubles_print_without_a_fraction(void **state)
{
    /* Published figures are mostly whole (Tabel 8: 83 %); they print as 83, fractions as they are, and
     * -0.0 keeps its sign; 2^53 and beyond stay reals, where an integer would no longer be exact. */
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.id = "r";
    double thresholds[] = {83, 74.5, -0.0, 9007199254740992.0};
    rule.n_level_thresholds_pct = 4;
    rule.level_thresholds_pct = thresholds;
    char *text = assert_round_trip(&rule.base);
    assert_non_null(strstr(text, "\"levelThresholdsPct\":[83,74.5,-0.0,9007199254740992.0]"));
    free(text);
}

static void test_integers_accept_numbers_decimal_strings_and_whole_exponents(void **state)
{
    Healthsignals__V1__BudgetLine *line = (Healthsignals__V1__BudgetLine *)decode_ok(
        &healthsignals__v1__budget_line__descriptor,
        "{\"year\":\"2023\",\"amountOre\":-15210000000,\"revision\":2.0e0}");
    assert_int_equal(line->year, 2023);
    assert_int_equal(line->amount_ore, -15210000000);
    assert_int_equal(line->revision, 2);
    protobuf_c_message_free_unpacked(&line->base, NULL);
    line = (Healthsignals__V1__BudgetLine *)decode_ok(&healthsignals__v1__budget_line__descriptor,
                                                      "{\"year\":\"2.023e3\",\"amountOre\":\"-1e2\"}");
    assert_int_equal(line->year, 2023);
    assert_int_equal(line->amount_ore, -100);
    protobuf_c_message_free_unpacked(&line->base, NULL);
}

static void test_int32_overflow_is_rejected(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__budget_line__descriptor;
    assert_rejected(desc, "{\"year\":2147483648}", "year: 2147483648 is out of range for int32");
    assert_rejected(desc, "{\"year\":\"-2147483649\"}", "year: \"-2147483649\" is out of range for int32");
    Healthsignals__V1__BudgetLine *line =
        (Healthsignals__V1__BudgetLine *)decode_ok(desc, "{\"year\":-2147483648}");
    assert_int_equal(line->year, INT32_MIN);
    protobuf_c_message_free_unpacked(&line->base, NULL);
}

static void test_non_integer_for_integer_field_is_rejected(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__budget_line__descriptor;
    assert_rejected(desc, "{\"year\":1.5}", "year: 1.5 is not an integer");
    assert_rejected(desc, "{\"amountOre\":\"12.5\"}", "amountOre: \"12.5\" is not an integer");
    assert_rejected(desc, "{\"amountOre\":\"12 kr\"}", "amountOre: \"12 kr\" is not a number");
    assert_rejected(desc, "{\"amountOre\":\"\"}", "amountOre: \"\" is not a number");
    assert_rejected(desc, "{\"year\":true}", "year: expected an integer, got boolean");
}

static void test_negative_value_for_unsigned_field_is_rejected(void **state)
{
    assert_rejected(&healthsignals__v1__budget_line__descriptor, "{\"revision\":-1}",
                    "revision: -1 is out of range for uint32");
    assert_rejected(&everything_descriptor, "{\"u64\":\"-1\"}", "u64: \"-1\" is out of range for uint64");
    assert_rejected(&everything_descriptor, "{\"fx32\":4294967296}",
                    "fx32: 4294967296 is out of range for fixed32");
}

static void test_non_finite_doubles_are_strings(void **state)
{
    Everything msg;
    everything_init(&msg.base);
    msg.amount = NAN;
    msg.ratio = -INFINITY;
    float ratios[] = {INFINITY, -0.0f};
    msg.n_ratios = 2;
    msg.ratios = ratios;
    char *text = hs_json_encode_text(&msg.base);
    assert_string_equal(text, "{\"ratio\":\"-Infinity\",\"amount\":\"NaN\",\"ratios\":[\"Infinity\",-0.0]}");
    Everything *back = (Everything *)decode_ok(&everything_descriptor, text);
    assert_true(isnan(back->amount));
    assert_true(isinf(back->ratio) && back->ratio < 0);
    assert_true(isinf(back->ratios[0]) && signbit(back->ratios[1]));
    free(text);
    protobuf_c_message_free_unpacked(&back->base, NULL);
}

static void test_doubles_accept_numeric_strings(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    Healthsignals__V1__IndicatorObservation *obs =
        (Healthsignals__V1__IndicatorObservation *)decode_ok(desc, "{\"value\":\"83.5\"}");
    assert_true(obs->value == 83.5);
    protobuf_c_message_free_unpacked(&obs->base, NULL);
    assert_rejected(desc, "{\"value\":\"83,5\"}", "value: \"83,5\" is not a number");
    assert_rejected(desc, "{\"value\":\"1e999\"}", "value: \"1e999\" is out of range for double");
    assert_rejected(desc, "{\"value\":[]}", "value: expected a number, got array");
}

static void test_float_out_of_range_is_rejected(void **state)
{
    assert_rejected(&everything_descriptor, "{\"ratio\":\"1e39\"}",
                    "ratio: \"1e39\" is out of range for float");
    assert_rejected(&everything_descriptor, "{\"ratios\":[1,-3.5e38]}",
                    "ratios[1]: -3.5e+38 is out of range for float");
    Everything *msg = (Everything *)decode_ok(&everything_descriptor, "{\"ratio\":3.4028234663852886e+38}");
    assert_true(msg->ratio == FLT_MAX);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
}

static void test_bool_is_true_or_false_only(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    assert_rejected(desc, "{\"provisional\":\"true\"}", "provisional: expected a boolean, got string");
    assert_rejected(desc, "{\"provisional\":1}", "provisional: expected a boolean, got number");
}

static void test_enum_is_read_by_name_or_number(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    Healthsignals__V1__IndicatorObservation *obs =
        (Healthsignals__V1__IndicatorObservation *)decode_ok(desc, "{\"unit\":1}");
    assert_int_equal(obs->unit, HEALTHSIGNALS__V1__UNIT__PERCENT);
    protobuf_c_message_free_unpacked(&obs->base, NULL);
    assert_rejected(desc, "{\"unit\":\"PERCNT\"}",
                    "unit: \"PERCNT\" is not a value of enum healthsignals.v1.Unit");
    assert_rejected(desc, "{\"unit\":\"percent\"}",
                    "unit: \"percent\" is not a value of enum healthsignals.v1.Unit");
    assert_rejected(desc, "{\"unit\":{}}", "unit: expected an enum name or number, got object");
}

static void test_unknown_enum_number_is_written_as_a_number(void **state)
{
    /* A value added to the enum by a newer producer must survive an older reader. */
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.unit = 42;
    assert_encodes_to(&obs.base, "{\"unit\":42}");
}

static void test_bytes_are_standard_base64_with_padding(void **state)
{
    Everything msg;
    everything_init(&msg.base);
    uint8_t data[] = {0xfb, 0xff, 'h', 'i'};
    msg.blob = (ProtobufCBinaryData){sizeof data, data};
    ProtobufCBinaryData blobs[] = {{1, data}, {2, data}, {3, data}, {0, NULL}};
    msg.n_blobs = 4;
    msg.blobs = blobs;
    assert_encodes_to(&msg.base, "{\"blob\":\"+/9oaQ==\",\"blobs\":[\"+w==\",\"+/8=\",\"+/9o\",\"\"]}");
}

static void test_bytes_accept_url_safe_and_unpadded_base64(void **state)
{
    Everything *msg =
        (Everything *)decode_ok(&everything_descriptor, "{\"blob\":\"-_9oaQ\",\"blobs\":[\"-w\"]}");
    assert_int_equal(msg->blob.len, 4);
    assert_memory_equal(msg->blob.data, "\xfb\xffhi", 4);
    assert_int_equal(msg->blobs[0].len, 1);
    assert_int_equal(msg->blobs[0].data[0], 0xfb);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
}

static void test_invalid_base64_is_rejected(void **state)
{
    assert_rejected(&everything_descriptor, "{\"blob\":\"aGk$\"}", "blob: not valid base64");
    assert_rejected(&everything_descriptor, "{\"blob\":\"aGVsb\"}", "blob: not valid base64");
    assert_rejected(&everything_descriptor, "{\"blob\":\"aG=k\"}", "blob: not valid base64");
    assert_rejected(&everything_descriptor, "{\"blob\":\"aGk=a\"}", "blob: not valid base64");
    assert_rejected(&everything_descriptor, "{\"blobs\":[\"\",\"a===\"]}", "blobs[1]: not valid base64");
    assert_rejected(&everything_descriptor, "{\"blob\":7}", "blob: expected a base64 string, got number");
}

static void test_invalid_utf8_is_written_as_replacement_characters(void **state)
{
    /* jansson holds only UTF-8; dropping the field would lose the rest of a good string. */
    Everything msg;
    everything_init(&msg.base);
    msg.text = "Sj\xe6lland \xc3";
    char *text = hs_json_encode_text(&msg.base);
    assert_string_equal(text, "{\"text\":\"Sj\xef\xbf\xbdlland \xef\xbf\xbd\"}");
    free(text);
    Healthsignals__V1__Rule__LabelsEntry label = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT;
    label.key = "regi\xf8n";
    label.value = "1085";
    Healthsignals__V1__Rule__LabelsEntry *labels[] = {&label};
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.n_labels = 1;
    rule.labels = labels;
    text = hs_json_encode_text(&rule.base);
    assert_string_equal(text, "{\"labels\":{\"regi\xef\xbf\xbdn\":\"1085\"}}");
    free(text);
}

static void test_string_with_nul_is_rejected(void **state)
{
    json_t *json = json_pack("{s:s%}", "text", "a\0b", (size_t)3);
    hs_error error;
    assert_null(hs_json_to_message(&everything_descriptor, json, &error));
    assert_string_equal(error.message, "text: a string must not contain a NUL character");
    json_decref(json);
}

/* ---- structure ---------------------------------------------------------------------------------------- */

static void test_maps_with_integer_and_bool_keys_use_string_keys(void **state)
{
    const char *text = "{\"scopeById\":{\"-9007199254740993\":{\"kind\":\"REGION\",\"code\":\"1085\"},"
                       "\"0\":{}},\"blobByFlag\":{\"true\":\"AQ==\",\"false\":\"\"}}";
    Everything *msg = (Everything *)decode_ok(&everything_descriptor, text);
    assert_int_equal(msg->n_scope_by_id, 2);
    assert_true(msg->scope_by_id[0]->key == -9007199254740993);
    assert_string_equal(msg->scope_by_id[0]->value->code, "1085");
    assert_int_equal(msg->n_blob_by_flag, 2);
    assert_true(msg->blob_by_flag[0]->key);
    char *again = assert_round_trip(&msg->base);
    assert_string_equal(again, text);
    free(again);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    assert_rejected(&everything_descriptor, "{\"scopeById\":{\"1.5\":{}}}",
                    "scopeById.1.5: map key is not an integer in plain decimal");
    assert_rejected(&everything_descriptor, "{\"scopeById\":{\"1\":{},\"01\":{}}}",
                    "scopeById.01: map key is not an integer in plain decimal");
    assert_rejected(&everything_descriptor, "{\"scopeById\":{\"9223372036854775808\":{}}}",
                    "scopeById.9223372036854775808: map key is out of range for int64");
    assert_rejected(&everything_descriptor, "{\"blobByFlag\":{\"yes\":\"\"}}",
                    "blobByFlag.yes: map key is not true or false");
}

static void test_oneof_takes_only_one_member(void **state)
{
    Everything *msg = (Everything *)decode_ok(&everything_descriptor, "{\"choiceNumber\":\"0\"}");
    assert_int_equal(msg->choice_case, 27);
    char *text = assert_round_trip(&msg->base);
    assert_string_equal(text, "{\"choiceNumber\":\"0\"}");
    free(text);
    protobuf_c_message_free_unpacked(&msg->base, NULL);
    assert_rejected(&everything_descriptor, "{\"choiceName\":\"a\",\"choiceBlob\":\"\"}",
                    "choiceBlob: only one field of a oneof may be set, and choice_name is set already");
}

/* ---- errors name the path ----------------------------------------------------------------------------- */

static void test_unknown_field_is_rejected_by_name(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    assert_rejected(desc, "{\"indicator\":\"x\",\"volum\":1}", "volum: unknown field");
    assert_rejected(desc, "{\"scope\":{\"kind\":\"REGION\",\"kode\":\"1084\"}}", "scope.kode: unknown field");
}

/* ---- JSON written against a newer schema (hsctl publish --ignore-unknown-fields) ----------------------- */

/* Collects the paths hs_json_drop_unknown_fields reports, comma-separated. */
static void collect_path(void *ctx, const char *path)
{
    char *paths = ctx;
    size_t len = strlen(paths);
    snprintf(paths + len, 256 - len, "%s%s", len ? "," : "", path);
}

static void test_unknown_fields_are_dropped_at_any_depth_when_asked(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    json_t *json =
        json_loads("{\"indicator\":\"x\",\"volum\":1,\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\","
                   "\"ward\":\"7\"},\"confidence\":{\"low\":1}}",
                   0, NULL);
    char paths[256] = "";
    assert_int_equal(hs_json_drop_unknown_fields(desc, json, collect_path, paths), 3);
    assert_string_equal(paths, "volum,scope.ward,confidence");
    hs_error error = {0};
    Healthsignals__V1__IndicatorObservation *obs =
        (Healthsignals__V1__IndicatorObservation *)hs_json_to_message(desc, json, &error);
    assert_non_null(obs);
    assert_string_equal(obs->scope->code, "1084");
    protobuf_c_message_free_unpacked(&obs->base, NULL);
    json_decref(json);
}

static void test_unknown_fields_are_dropped_in_lists_and_maps_of_messages(void **state)
{
    json_t *json = json_loads("{\"children\":[{\"i32\":1},{\"i32\":2,\"later\":true}],"
                              "\"scopeById\":{\"7\":{\"code\":\"DK\",\"region\":1}}}",
                              0, NULL);
    char paths[256] = "";
    assert_int_equal(hs_json_drop_unknown_fields(&everything_descriptor, json, collect_path, paths), 2);
    assert_string_equal(paths, "children[1].later,scopeById.7.region");
    hs_error error = {0};
    ProtobufCMessage *msg = hs_json_to_message(&everything_descriptor, json, &error);
    assert_non_null(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    json_decref(json);
}

static void test_dropping_unknown_fields_leaves_bad_values_of_known_ones(void **state)
{
    /* Only what a reader cannot know is ignored: a known field of the wrong type, or an enum name this
     * version lacks, is still refused. */
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    json_t *json = json_loads("{\"unit\":\"PER_MILLE\",\"volume\":\"many\"}", 0, NULL);
    assert_int_equal(hs_json_drop_unknown_fields(desc, json, NULL, NULL), 0);
    assert_int_equal(json_object_size(json), 2);
    hs_error error = {0};
    assert_null(hs_json_to_message(desc, json, &error));
    assert_string_equal(error.message, "unit: \"PER_MILLE\" is not a value of enum healthsignals.v1.Unit");
    json_decref(json);
}

static void test_unknown_enum_number_decodes_as_proto3_open_enums_do(void **state)
{
    /* `unit: 42` is valid proto3 JSON; what healthsignals does with the number is validation's decision
     * (test_validate.c: "unit: 42 is unknown to this version of healthsignals.v1.Unit"). */
    Healthsignals__V1__IndicatorObservation *obs = (Healthsignals__V1__IndicatorObservation *)decode_ok(
        &healthsignals__v1__indicator_observation__descriptor, "{\"unit\":42}");
    assert_int_equal(obs->unit, 42);
    protobuf_c_message_free_unpacked(&obs->base, NULL);
}

static void test_wrong_type_in_nested_message_names_the_path(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    assert_rejected(desc, "{\"scope\":{\"kind\":true}}",
                    "scope.kind: expected an enum name or number, got boolean");
    assert_rejected(desc, "{\"scope\":{\"code\":1084}}", "scope.code: expected a string, got number");
    assert_rejected(desc, "{\"scope\":\"1084\"}", "scope: expected an object, got string");
    assert_rejected(&everything_descriptor, "{\"children\":[{},{\"child\":{\"i32\":\"x\"}}]}",
                    "children[1].child.i32: \"x\" is not a number");
}

static void test_repeated_element_error_names_its_index(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    assert_rejected(desc, "{\"qualityFlags\":[\"epj-transition\",\"lpr3-transition\",3]}",
                    "qualityFlags[2]: expected a string, got number");
    assert_rejected(desc, "{\"qualityFlags\":[null]}", "qualityFlags[0]: expected a string, got null");
    assert_rejected(desc, "{\"qualityFlags\":\"epj-transition\"}",
                    "qualityFlags: expected an array, got string");
}

static void test_map_value_error_names_its_key(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__rule__descriptor;
    assert_rejected(desc, "{\"labels\":{\"plan\":\"akutplan\",\"team\":5}}",
                    "labels.team: expected a string, got number");
    assert_rejected(desc, "{\"labels\":[\"team\"]}", "labels: expected an object, got array");
}

static void test_field_given_under_both_names_is_rejected(void **state)
{
    assert_rejected(&healthsignals__v1__indicator_observation__descriptor,
                    "{\"qualityFlags\":[],\"quality_flags\":[]}",
                    "qualityFlags: given twice, also as \"quality_flags\"");
}

static void test_top_level_must_be_an_object(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    assert_rejected(desc, "[{\"indicator\":\"x\"}]", "expected an object, got array");
    assert_rejected(desc, "\"x\"", "expected an object, got string");
    hs_error error;
    assert_null(hs_json_to_message(desc, NULL, &error));
    assert_int_equal(error.code, HS_ERR_PARSE);
}

static void test_syntax_error_and_duplicate_key_report_line_and_column(void **state)
{
    const ProtobufCMessageDescriptor *desc = &healthsignals__v1__indicator_observation__descriptor;
    hs_error error;
    assert_null(hs_json_decode_text(desc, "{\"period\":", 10, &error));
    assert_int_equal(error.code, HS_ERR_PARSE);
    assert_memory_equal(error.message, "line 1 column ", 14);
    assert_null(hs_json_decode_text(desc, "{\"period\":\"2023\",\"period\":\"2024\"}", 33, &error));
    assert_int_equal(error.code, HS_ERR_PARSE);
    assert_non_null(strstr(error.message, "duplicate"));
    assert_null(hs_json_decode_text(desc, "[]", 2, NULL)); /* the error is optional */
}

static void test_deep_nesting_is_rejected(void **state)
{
    /* A recursive type lets hostile input recurse without bound; 64 levels is far beyond any event. */
    char text[1024] = "";
    for (int i = 0; i < 70; i++)
        strcat(text, "{\"child\":");
    strcat(text, "{}");
    for (int i = 0; i < 70; i++)
        strcat(text, "}");
    hs_error error;
    assert_null(hs_json_decode_text(&everything_descriptor, text, strlen(text), &error));
    assert_non_null(strstr(error.message, ": messages nested deeper than 64 levels"));
    assert_memory_equal(error.message, "child.child.child.", 18);
}

/* ---- property: random messages of every type come back byte for byte ---------------------------------- */

/* splitmix64: small, fast and fully determined by its seed. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *rng, size_t n)
{
    return (size_t)(rng_next(rng) % n);
}

/* Text pieces for random strings: ASCII, JSON escapes, control characters and 2-, 3- and 4-byte UTF-8. */
static const char *const text_pieces[] = {
    "a",    "Z", "7", " ", "\"", "\\",           "/", "\n",           "\t",       "\x01", "\x1f",
    "\x7f", "æ", "ø", "Å", "€",  "\xe2\x80\xa8", "𝄞", "\xef\xbf\xbd", "Sjælland", "1084", "",
};

static char *random_text(uint64_t *rng)
{
    size_t pieces = rng_below(rng, 8);
    char *text = calloc(pieces * 10 + 1, 1);
    assert_non_null(text);
    for (size_t i = 0; i < pieces; i++)
        strcat(text, text_pieces[rng_below(rng, sizeof text_pieces / sizeof text_pieces[0])]);
    return text;
}

static ProtobufCBinaryData random_bytes(uint64_t *rng)
{
    ProtobufCBinaryData bytes = {rng_below(rng, 9), NULL};
    if (bytes.len) {
        bytes.data = malloc(bytes.len);
        assert_non_null(bytes.data);
        for (size_t i = 0; i < bytes.len; i++)
            bytes.data[i] = (uint8_t)rng_next(rng);
    }
    return bytes;
}

static double random_double(uint64_t *rng)
{
    static const double special[] = {0.0,     -0.0,          DBL_MIN,  DBL_TRUE_MIN, -3 * DBL_TRUE_MIN,
                                     DBL_MAX, -DBL_MAX,      INFINITY, -INFINITY,    83.1,
                                     0.1,     -15210000000.0};
    if (rng_below(rng, 2))
        return special[rng_below(rng, sizeof special / sizeof special[0])];
    uint64_t bits = rng_next(rng);
    double value;
    memcpy(&value, &bits, sizeof value);
    return isnan(value) ? 1.5 : value; /* JSON has one NaN, the wire many payloads: NaN has its own test */
}

static float random_float(uint64_t *rng)
{
    static const float special[] = {0.0f,    -0.0f,    FLT_MIN,  FLT_TRUE_MIN, -FLT_TRUE_MIN,
                                    FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,    0.1f};
    if (rng_below(rng, 2))
        return special[rng_below(rng, sizeof special / sizeof special[0])];
    uint32_t bits = (uint32_t)rng_next(rng);
    float value;
    memcpy(&value, &bits, sizeof value);
    return isnan(value) ? 2.5f : value; /* as in random_double */
}

static uint64_t random_integer(uint64_t *rng)
{
    static const uint64_t special[] = {
        0,         1,          UINT64_MAX /* -1 */, (uint64_t)INT64_MIN, INT64_MAX, (uint64_t)INT32_MIN,
        INT32_MAX, UINT32_MAX, 9007199254740993u};
    return rng_below(rng, 2) ? special[rng_below(rng, sizeof special / sizeof special[0])] : rng_next(rng);
}

static int random_enum(uint64_t *rng, const ProtobufCEnumDescriptor *desc)
{
    if (rng_below(rng, 8) == 0)
        return rng_below(rng, 2) ? 77 : -3; /* not in the enum */
    return desc->values[rng_below(rng, desc->n_values)].value;
}

static ProtobufCMessage *random_message(uint64_t *rng, const ProtobufCMessageDescriptor *desc, int depth);

/* Writes a random value of `field`'s type to `slot` (everything malloc'd, as free_unpacked expects). */
static void random_value(uint64_t *rng, const ProtobufCFieldDescriptor *field, void *slot, int depth)
{
    uint64_t n = random_integer(rng);
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: *(uint32_t *)slot = (uint32_t)n; break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: *(uint64_t *)slot = n; break;
    case PROTOBUF_C_TYPE_FLOAT: *(float *)slot = random_float(rng); break;
    case PROTOBUF_C_TYPE_DOUBLE: *(double *)slot = random_double(rng); break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)slot = (protobuf_c_boolean)(n & 1); break;
    case PROTOBUF_C_TYPE_ENUM: *(int *)slot = random_enum(rng, field->descriptor); break;
    case PROTOBUF_C_TYPE_STRING: *(char **)slot = random_text(rng); break;
    case PROTOBUF_C_TYPE_BYTES: *(ProtobufCBinaryData *)slot = random_bytes(rng); break;
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)slot = random_message(rng, field->descriptor, depth + 1);
        break;
    }
}

static bool is_entry_type(const ProtobufCMessageDescriptor *desc)
{
    size_t len = strlen(desc->short_name);
    return len > 5 && strcmp(desc->short_name + len - 5, "Entry") == 0;
}

static bool is_map_entry(const ProtobufCFieldDescriptor *field)
{
    return field->type == PROTOBUF_C_TYPE_MESSAGE && is_entry_type(field->descriptor);
}

/* Whether the key of map entry `entry` equals that of one of the `n` entries before it: JSON objects hold a
 * key once, so a message with a repeated key cannot come back byte for byte (it means the same, though). */
static bool key_taken(ProtobufCMessage *const *entries, size_t n, const ProtobufCMessage *entry)
{
    const ProtobufCFieldDescriptor *key = &entry->descriptor->fields[0];
    const char *mine = (const char *)entry + key->offset;
    for (size_t i = 0; i < n; i++) {
        const char *theirs = (const char *)entries[i] + key->offset;
        bool same = key->type == PROTOBUF_C_TYPE_STRING
                        ? strcmp(*(char *const *)mine, *(char *const *)theirs) == 0
                        : memcmp(mine, theirs, hs_json_element_size(key->type)) == 0;
        if (same)
            return true;
    }
    return false;
}

static void random_repeated(uint64_t *rng, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
                            int depth)
{
    size_t n = field->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3 ? 0 : rng_below(rng, 5);
    if (n == 0)
        return;
    char *array = calloc(n, hs_json_element_size(field->type));
    assert_non_null(array);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        void *slot = array + kept * hs_json_element_size(field->type);
        random_value(rng, field, slot, depth);
        if (is_map_entry(field) && key_taken((ProtobufCMessage **)array, kept, *(ProtobufCMessage **)slot)) {
            protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
            continue;
        }
        kept++;
    }
    *(void **)((char *)msg + field->offset) = array;
    *(size_t *)((char *)msg + field->quantifier_offset) = kept;
}

/* A random message of type `desc`, walking its descriptor: every field is left out or filled, oneofs get at
 * most one member, and nesting stops at depth 3. Map values are always set (an absent message value reads
 * back as an empty one: the same map, different bytes). */
static ProtobufCMessage *random_message(uint64_t *rng, const ProtobufCMessageDescriptor *desc, int depth)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    assert_non_null(msg);
    protobuf_c_message_init(desc, msg);
    bool map_entry = is_entry_type(desc);
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        void *slot = (char *)msg + field->offset;
        uint32_t *quantifier = (uint32_t *)((char *)msg + field->quantifier_offset);
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            random_repeated(rng, msg, field, depth);
            continue;
        }
        bool fill = map_entry || rng_below(rng, 2) == 0;
        if (field->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 3 && !map_entry)
            fill = false;
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *quantifier != 0)
            fill = false;
        if (!fill)
            continue;
        random_value(rng, field, slot, depth);
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *quantifier = field->id;
        else if (field->label == PROTOBUF_C_LABEL_OPTIONAL)
            *(protobuf_c_boolean *)quantifier = 1;
    }
    return msg;
}

static void assert_random_messages_round_trip(const ProtobufCMessageDescriptor *desc, uint64_t seed)
{
    uint64_t rng = seed;
    for (int i = 0; i < 200; i++) {
        ProtobufCMessage *msg = random_message(&rng, desc, 0);
        char *text = assert_round_trip(msg);
        free(text);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

static void test_random_indicator_observations_round_trip(void **state)
{
    assert_random_messages_round_trip(&healthsignals__v1__indicator_observation__descriptor, 1);
}

static void test_random_budget_lines_round_trip(void **state)
{
    assert_random_messages_round_trip(&healthsignals__v1__budget_line__descriptor, 2);
}

static void test_random_capacity_observations_round_trip(void **state)
{
    assert_random_messages_round_trip(&healthsignals__v1__capacity_observation__descriptor, 3);
}

static void test_random_rules_round_trip(void **state)
{
    assert_random_messages_round_trip(&healthsignals__v1__rule__descriptor, 4);
}

static void test_random_alerts_round_trip(void **state)
{
    assert_random_messages_round_trip(&healthsignals__v1__alert__descriptor, 5);
}

static void test_random_everything_messages_round_trip(void **state)
{
    assert_random_messages_round_trip(&everything_descriptor, 6);
}

static void test_random_messages_of_every_registered_type_round_trip(void **state)
{
    /* Whatever type a later service adds to the topic registry is covered without a test of its own. */
    size_t count;
    const hs_topic *topics = hs_topic_all(&count);
    for (size_t i = 0; i < count; i++) {
        if (topics[i].value_type)
            assert_random_messages_round_trip(topics[i].value_type, 100 + i);
    }
}

static void test_everything_descriptor_is_well_formed(void **state)
{
    /* The hand-written test descriptor must be what protoc-c would generate, or the wire comparisons lie. */
    for (unsigned i = 0; i + 1 < EVERYTHING_FIELDS; i++) {
        assert_int_equal(everything_fields[i].id + 1, everything_fields[i + 1].id);
        assert_true(strcmp(everything_fields[everything_by_name[i]].name,
                           everything_fields[everything_by_name[i + 1]].name) < 0);
    }
    assert_ptr_equal(protobuf_c_message_descriptor_get_field_by_name(&everything_descriptor, "scope_by_id"),
                     &everything_fields[22]);
}

/* Diagnostics quote what they were given: bytes that are not UTF-8 show as \xNN, valid text is unchanged. */
static void test_string_escaped_shows_invalid_bytes(void **state)
{
    json_t *s = hs_json_string_escaped("region '\xff\xfe' \xc3\xa6 ok", 17);
    assert_non_null(s);
    assert_string_equal(json_string_value(s), "region '\\xff\\xfe' \xc3\xa6 ok");
    char *dumped = json_dumps(s, JSON_ENCODE_ANY);
    assert_non_null(dumped); /* valid JSON: jansson writes it */
    free(dumped);
    json_decref(s);
    s = hs_json_string_escaped("Sj\xc3\xa6lland", 9);
    assert_string_equal(json_string_value(s), "Sj\xc3\xa6lland");
    json_decref(s);
    s = hs_json_string_escaped("\xc3", 1); /* a sequence cut short */
    assert_string_equal(json_string_value(s), "\\xc3");
    json_decref(s);
}

static void test_base64_round_trip_and_rejects_garbage(void **state)
{
    const uint8_t bytes[] = {0x0a, 0x03, 'a', 'b', 'c', 0xff, 0x00};
    char *text = hs_json_base64_encode(bytes, sizeof bytes);
    assert_string_equal(text, "CgNhYmP/AA==");
    uint8_t *back;
    size_t len;
    hs_error error;
    assert_int_equal(hs_json_base64_decode(text, strlen(text), &back, &len, &error), HS_OK);
    assert_int_equal(len, sizeof bytes);
    assert_memory_equal(back, bytes, len);
    free(back);
    free(text);
    assert_int_equal(hs_json_base64_decode("not*base64", 10, &back, &len, &error), HS_ERR_PARSE);
    assert_null(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indicator_observation_has_its_canonical_text),
        cmocka_unit_test(test_budget_line_amount_in_ore_is_a_decimal_string),
        cmocka_unit_test(test_capacity_available_zero_is_kept_and_absent_is_left_out),
        cmocka_unit_test(test_rule_round_trips_with_scopes_labels_and_thresholds),
        cmocka_unit_test(test_alert_round_trips_with_labels_and_annotations),
        cmocka_unit_test(test_default_values_are_left_out),
        cmocka_unit_test(test_presence_field_set_to_zero_is_written),
        cmocka_unit_test(test_null_means_default),
        cmocka_unit_test(test_proto_field_names_are_accepted_on_input),
        cmocka_unit_test(test_optional_field_with_has_flag_keeps_zero),
        cmocka_unit_test(test_int64_string_keeps_full_precision),
        cmocka_unit_test(test_64bit_extremes_round_trip),
        cmocka_unit_test(test_whole_doubles_print_without_a_fraction),
        cmocka_unit_test(test_integers_accept_numbers_decimal_strings_and_whole_exponents),
        cmocka_unit_test(test_int32_overflow_is_rejected),
        cmocka_unit_test(test_non_integer_for_integer_field_is_rejected),
        cmocka_unit_test(test_negative_value_for_unsigned_field_is_rejected),
        cmocka_unit_test(test_non_finite_doubles_are_strings),
        cmocka_unit_test(test_doubles_accept_numeric_strings),
        cmocka_unit_test(test_float_out_of_range_is_rejected),
        cmocka_unit_test(test_bool_is_true_or_false_only),
        cmocka_unit_test(test_enum_is_read_by_name_or_number),
        cmocka_unit_test(test_unknown_enum_number_is_written_as_a_number),
        cmocka_unit_test(test_unknown_fields_are_dropped_at_any_depth_when_asked),
        cmocka_unit_test(test_unknown_fields_are_dropped_in_lists_and_maps_of_messages),
        cmocka_unit_test(test_dropping_unknown_fields_leaves_bad_values_of_known_ones),
        cmocka_unit_test(test_unknown_enum_number_decodes_as_proto3_open_enums_do),
        cmocka_unit_test(test_bytes_are_standard_base64_with_padding),
        cmocka_unit_test(test_bytes_accept_url_safe_and_unpadded_base64),
        cmocka_unit_test(test_invalid_base64_is_rejected),
        cmocka_unit_test(test_invalid_utf8_is_written_as_replacement_characters),
        cmocka_unit_test(test_string_with_nul_is_rejected),
        cmocka_unit_test(test_maps_with_integer_and_bool_keys_use_string_keys),
        cmocka_unit_test(test_oneof_takes_only_one_member),
        cmocka_unit_test(test_unknown_field_is_rejected_by_name),
        cmocka_unit_test(test_wrong_type_in_nested_message_names_the_path),
        cmocka_unit_test(test_repeated_element_error_names_its_index),
        cmocka_unit_test(test_map_value_error_names_its_key),
        cmocka_unit_test(test_field_given_under_both_names_is_rejected),
        cmocka_unit_test(test_top_level_must_be_an_object),
        cmocka_unit_test(test_syntax_error_and_duplicate_key_report_line_and_column),
        cmocka_unit_test(test_deep_nesting_is_rejected),
        cmocka_unit_test(test_everything_descriptor_is_well_formed),
        cmocka_unit_test(test_random_indicator_observations_round_trip),
        cmocka_unit_test(test_random_budget_lines_round_trip),
        cmocka_unit_test(test_random_capacity_observations_round_trip),
        cmocka_unit_test(test_random_rules_round_trip),
        cmocka_unit_test(test_random_alerts_round_trip),
        cmocka_unit_test(test_random_everything_messages_round_trip),
        cmocka_unit_test(test_random_messages_of_every_registered_type_round_trip),
        cmocka_unit_test(test_string_escaped_shows_invalid_bytes),
        cmocka_unit_test(test_base64_round_trip_and_rejects_garbage),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
