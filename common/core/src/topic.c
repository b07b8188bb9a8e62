/* The topic registry: one row per topic. A row's key layout names the fields of its value type that make a
 * fact's identity; hs_topic_key reads them through the protobuf-c descriptor, so no topic has key code of its
 * own. It does not validate (hs/validate.h does), but it refuses a value that lacks an identity field,
 * because such a record could never be replaced or deleted. Admission (hs_topic_admit) uses the same keys and
 * partitioner to decide whether a consumed record is where its identity says it must be.
 */
#include "hs/topic.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/capacity_status.pb-c.h"
#include "healthsignals/v1/diagnostics.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/regional_variation.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "healthsignals/v1/target_status.pb-c.h"
#include "hs/partition.h"

#define DAY_MS (24LL * 3600 * 1000)

static int empty(const char *s)
{
    return !s || !*s;
}

void hs_topic_scope_component(const Healthsignals__V1__Scope *scope, char *out, size_t size)
{
    const char *kind = "unspecified";
    if (scope) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &healthsignals__v1__scope_kind__descriptor, (int)scope->kind);
        if (v)
            kind = v->name;
    }
    if (!size)
        return;
    size_t n = 0;
    for (; kind[n] && n + 1 < size; n++)
        out[n] = (char)(kind[n] >= 'A' && kind[n] <= 'Z' ? kind[n] - 'A' + 'a' : kind[n]);
    /* then ":code", truncated as snprintf would; a component is made for every key, so without printf */
    if (n + 1 < size)
        out[n++] = ':';
    for (const char *code = scope && scope->code ? scope->code : ""; *code && n + 1 < size; code++)
        out[n++] = *code;
    out[n] = '\0';
}

static hs_err copy_group(char group[HS_KEY_MAX], const char *text, hs_error *error)
{
    if (strlen(text) >= HS_KEY_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "grouping key longer than %d bytes", HS_KEY_MAX - 1);
    memcpy(group, text, strlen(text) + 1);
    return HS_OK;
}

/* --- Keys from the registry: a topic's key layout names fields of its value type, read through the
 * protobuf-c descriptor (as the JSON mapping reads every field), so a topic is one declarative row. */

/* The length of the first field name of a '/'-separated list. */
static size_t name_len(const char *p)
{
    size_t n = 0;
    while (p[n] && p[n] != '/')
        n++;
    return n;
}

/* True when the '/'-separated list `list` holds `name` (`len` bytes). */
static int list_has(const char *list, const char *name, size_t len)
{
    for (const char *p = list; p && *p;) {
        size_t n = name_len(p);
        if (n == len && strncmp(p, name, len) == 0)
            return 1;
        p += n + (p[n] == '/');
    }
    return 0;
}

/* The field `name` (`len` bytes) of `type` a key may hold: a singular string, Scope, 32-bit integer or enum.
 * HS_ERR_INTERNAL for a layout naming a field the type lacks or cannot key on. */
static hs_err key_field(const ProtobufCMessageDescriptor *type, const char *name, size_t len,
                        const ProtobufCFieldDescriptor **field, hs_error *error)
{
    const ProtobufCFieldDescriptor *f = NULL;
    for (unsigned i = 0; i < type->n_fields && !f; i++)
        if (strncmp(type->fields[i].name, name, len) == 0 && type->fields[i].name[len] == '\0')
            f = &type->fields[i];
    if (!f || f->label != PROTOBUF_C_LABEL_NONE || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return hs_error_set(error, HS_ERR_INTERNAL, "%s has no singular field '%.*s' for a record key",
                            type->name, (int)len, name);
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: *field = f; return HS_OK;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (f->descriptor == &healthsignals__v1__scope__descriptor) {
            *field = f;
            return HS_OK;
        }
        break;
    default: break;
    }
    return hs_error_set(error, HS_ERR_INTERNAL,
                        "%s.%s: a record key takes strings, scopes, 32-bit integers and enums", type->name,
                        f->name);
}

/* The text field `f` of `value` contributes to a key: in `buf`, or pointing into the value; *present says
 * whether it holds an identity (a non-empty string, a scope with a code; a number or an enum always does). */
static const char *field_text(const ProtobufCMessage *value, const ProtobufCFieldDescriptor *f,
                              char buf[HS_SCOPE_COMPONENT_MAX], int *present)
{
    const char *member = (const char *)value + f->offset;
    *present = 1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)(const void *)member;
        *present = !empty(s);
        return s ? s : "";
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const Healthsignals__V1__Scope *scope = *(Healthsignals__V1__Scope *const *)(const void *)member;
        hs_topic_scope_component(scope, buf, HS_SCOPE_COMPONENT_MAX);
        *present = scope && !empty(scope->code);
        return buf;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int n;
        memcpy(&n, member, sizeof n);
        const ProtobufCEnumDescriptor *e = f->descriptor;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(e, n);
        if (!v) /* a number this build does not know reads as the enum's zero value */
            v = protobuf_c_enum_descriptor_get_value(e, 0);
        return v ? v->name : "";
    }
    default: { /* a 32-bit integer (key_field) */
        int32_t n;
        memcpy(&n, member, sizeof n);
        snprintf(buf, HS_SCOPE_COMPONENT_MAX, "%d", (int)n);
        return buf;
    }
    }
}

/* A topic's key layout resolved against its value type: its fields in order, which may be empty, and the
 * grouping field; or why the layout cannot be. */
typedef struct key_plan {
    size_t count;
    const ProtobufCFieldDescriptor *group;
    const ProtobufCFieldDescriptor *fields[HS_KEY_PARTS_MAX];
    unsigned may_be_empty; /* bit i: fields[i] */
    hs_error error;        /* code HS_OK when resolved */
} key_plan;

static void plan_resolve(const hs_topic *topic, key_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    hs_error *error = &plan->error;
    if (!topic->value_type) {
        hs_error_set(error, HS_ERR_INTERNAL, "%s carries no typed value and has no key layout", topic->name);
        return;
    }
    for (const char *p = topic->key_layout; *p;) {
        size_t n = name_len(p);
        if (plan->count == HS_KEY_PARTS_MAX) {
            hs_error_set(error, HS_ERR_INTERNAL, "%s: more than %d key fields", topic->name,
                         HS_KEY_PARTS_MAX);
            return;
        }
        if (key_field(topic->value_type, p, n, &plan->fields[plan->count], error))
            return;
        if (list_has(topic->key_may_be_empty, p, n))
            plan->may_be_empty |= 1u << plan->count;
        plan->count++;
        p += n + (p[n] == '/');
    }
    if (key_field(topic->value_type, topic->grouping, strlen(topic->grouping), &plan->group, error))
        return;
    error->code = HS_OK;
}

static hs_err key_with(const hs_topic *topic, const key_plan *plan, const ProtobufCMessage *value,
                       char key[HS_KEY_MAX], char group[HS_KEY_MAX], hs_error *error)
{
    if (plan->error.code)
        return hs_error_set(error, plan->error.code, "%s", plan->error.message);
    if (value->descriptor != topic->value_type)
        return hs_error_set(error, HS_ERR_INTERNAL, "%s: no record key for a %s", topic->name,
                            value->descriptor->name);
    char storage[HS_KEY_PARTS_MAX][HS_SCOPE_COMPONENT_MAX];
    const char *parts[HS_KEY_PARTS_MAX];
    for (size_t i = 0; i < plan->count; i++) {
        int present;
        parts[i] = field_text(value, plan->fields[i], storage[i], &present);
        if (!present && !(plan->may_be_empty & (1u << i)))
            return hs_error_set(error, HS_ERR_VALIDATION, "%s: required for the record key",
                                plan->fields[i]->name);
    }
    hs_err err = hs_key_join(key, parts, plan->count, error);
    if (err)
        return err;
    int present;
    return copy_group(group, field_text(value, plan->group, storage[0], &present), error);
}

static const hs_topic topics[] = {
    {.name = HS_TOPIC_INDICATORS,
     .value_type = &healthsignals__v1__indicator_observation__descriptor,
     .key_layout = "indicator/scope/period",
     .grouping = "indicator",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "IndicatorObservation: quarterly, monthly and yearly figures (facts)"},
    {.name = HS_TOPIC_BUDGET,
     .value_type = &healthsignals__v1__budget_line__descriptor,
     .key_layout = "unit/line/year/kind",
     .grouping = "unit",
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "BudgetLine: budget and accounts lines (facts)"},
    {.name = HS_TOPIC_CAPACITY,
     .value_type = &healthsignals__v1__capacity_observation__descriptor,
     .key_layout = "resource/scope/period",
     .grouping = "resource",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "CapacityObservation: beds, places and slots available and used (facts)"},
    {.name = HS_TOPIC_RULES,
     .value_type = &healthsignals__v1__rule__descriptor,
     .key_layout = "id",
     .grouping = "service",
     .partitions = 1,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 1,
     .description = "Rule: targets and thresholds as data; read in full by every instance"},
    {.name = HS_TOPIC_ALERTS,
     .value_type = &healthsignals__v1__alert__descriptor,
     .key_layout = "fingerprint",
     .grouping = "fingerprint",
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "Alert: FIRING / RESOLVED state per alert fingerprint"},
    {.name = HS_TOPIC_FACT_COUNTS,
     .value_type = &healthsignals__v1__fact_count__descriptor,
     .key_layout = "group/topic",
     .grouping = "group",
     .key_may_be_empty = "group",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "FactCount: facts per grouping key (the diagnostic count service)"},
    {.name = HS_TOPIC_TARGET_STATUS,
     .value_type = &healthsignals__v1__target_status__descriptor,
     .key_layout = "subject/rule/scope/period",
     .grouping = "subject",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "TargetStatus: a target rule evaluated per scope and period (targets)"},
    {.name = HS_TOPIC_CAPACITY_STATUS,
     .value_type = &healthsignals__v1__capacity_status__descriptor,
     .key_layout = "resource/scope/period",
     .grouping = "resource",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description =
         "CapacityStatus: utilisation and escalation level per resource, scope, period (capacity)"},
    {.name = HS_TOPIC_VARIATION,
     .value_type = &healthsignals__v1__regional_variation__descriptor,
     .key_layout = "indicator/period",
     .grouping = "indicator",
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "RegionalVariation: best and worst region, spread and national value per indicator and "
                    "period (variation)"},
    {.name = "hs.budget-status.v1",
     .value_type = &healthsignals__v1__budget_status__descriptor,
     .key_layout = "unit/line/year/kind",
     .grouping = "unit",
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "BudgetStatus: leaves and computed totals per unit, line, year and kind, printed totals "
                    "checked, variances (budget)"},
    {.name = HS_TOPIC_DLQ,
     .value_type = NULL,
     .key_layout = "original key",
     .grouping = "-",
     .partitions = 4,
     .cleanup_policy = "delete",
     .retention_ms = 30 * DAY_MS,
     .max_message_bytes = HS_DLQ_MAX_MESSAGE_BYTES,
     .global = 0,
     .description = "rejected records: original key and value bytes, error headers"},
};

#define TOPIC_COUNT (sizeof topics / sizeof topics[0])

/* The registry's key layouts, resolved once, on first use, for every thread. */
static key_plan plans[TOPIC_COUNT];
static pthread_once_t plans_once = PTHREAD_ONCE_INIT;

static void plans_resolve(void)
{
    for (size_t i = 0; i < TOPIC_COUNT; i++)
        plan_resolve(&topics[i], &plans[i]);
}

hs_err hs_topic_key(const hs_topic *topic, const ProtobufCMessage *value, char key[HS_KEY_MAX],
                    char group[HS_KEY_MAX], hs_error *error)
{
    uintptr_t at = (uintptr_t)topic, first = (uintptr_t)topics;
    if (at >= first && at < first + sizeof topics) {
        pthread_once(&plans_once, plans_resolve);
        return key_with(topic, &plans[topic - topics], value, key, group, error);
    }
    key_plan plan; /* a topic not from the registry: resolved for this call */
    plan_resolve(topic, &plan);
    return key_with(topic, &plan, value, key, group, error);
}

const hs_topic *hs_topic_all(size_t *count)
{
    *count = sizeof topics / sizeof topics[0];
    return topics;
}

const hs_topic *hs_topic_find(const char *name)
{
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        if (strcmp(topics[i].name, name) == 0)
            return &topics[i];
    return NULL;
}

const hs_topic *hs_topic_find_by_type(const char *type_name)
{
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        if (topics[i].value_type && strcmp(topics[i].value_type->name, type_name) == 0)
            return &topics[i];
    return NULL;
}

int32_t hs_topic_partition(const hs_topic *topic, const char *group)
{
    return hs_partition_for_key(group, strlen(group), topic->partitions);
}

hs_err hs_topic_group_of_key(const hs_topic *topic, const char *key, char group[HS_KEY_MAX], hs_error *error)
{
    char storage[HS_KEY_MAX];
    char *parts[HS_KEY_PARTS_MAX];
    if (hs_key_split(key, storage, parts, sizeof parts / sizeof parts[0]) < 1)
        return hs_error_set(error, HS_ERR_VALIDATION, "key '%.200s' is not a valid %s key (%s)", key,
                            topic->name, topic->key_layout);
    memcpy(group, parts[0], strlen(parts[0]) + 1); /* fits: a component is shorter than its key */
    return HS_OK;
}

hs_err hs_topic_check_key(const hs_topic *topic, const char *key, const ProtobufCMessage *value,
                          char group[HS_KEY_MAX], hs_error *error)
{
    if (!value)
        return hs_topic_group_of_key(topic, key, group, error);
    assert(value->descriptor == topic->value_type);
    char identity[HS_KEY_MAX];
    hs_err err = hs_topic_key(topic, value, identity, group, error);
    if (err)
        return err;
    if (strcmp(identity, key) != 0)
        return hs_error_set(error, HS_ERR_KEY_MISMATCH,
                            "record key '%.100s' is not its value's identity '%.100s' (%s)", key, identity,
                            topic->key_layout);
    return HS_OK;
}

hs_err hs_topic_check_partition(const hs_topic *topic, const char *group, int32_t partition, hs_error *error)
{
    if (topic->global)
        return HS_OK;
    int32_t expected = hs_topic_partition(topic, group);
    if (partition == expected)
        return HS_OK;
    return hs_error_set(error, HS_ERR_WRONG_PARTITION,
                        "record on partition %d, its grouping key '%.100s' belongs on partition %d of %d",
                        (int)partition, group, (int)expected, topic->partitions);
}

hs_err hs_topic_admit(const hs_topic *topic, int32_t partition, const char *key,
                      const ProtobufCMessage *value, hs_error *error)
{
    char group[HS_KEY_MAX];
    hs_err err = hs_topic_check_key(topic, key, value, group, error);
    return err ? err : hs_topic_check_partition(topic, group, partition, error);
}
