/* The topic registry and the key functions of the core topics. A key function reads the fields that make a
 * fact's identity; it does not validate (hs/validate.h does), but it refuses a value that lacks an identity
 * field, because such a record could never be replaced or deleted. Admission (hs_topic_admit) uses the same
 * key functions and partitioner to decide whether a consumed record is where its identity says it must be.
 */
#include "hs/topic.h"

#include <assert.h>
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

static hs_err missing(hs_error *error, const char *field)
{
    return hs_error_set(error, HS_ERR_VALIDATION, "%s: required for the record key", field);
}

static hs_err copy_group(char group[HS_KEY_MAX], const char *text, hs_error *error)
{
    if (strlen(text) >= HS_KEY_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "grouping key longer than %d bytes", HS_KEY_MAX - 1);
    memcpy(group, text, strlen(text) + 1);
    return HS_OK;
}

static hs_err indicator_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                            hs_error *error)
{
    const Healthsignals__V1__IndicatorObservation *obs = (const void *)value;
    if (empty(obs->indicator))
        return missing(error, "indicator");
    if (!obs->scope || empty(obs->scope->code))
        return missing(error, "scope");
    if (empty(obs->period))
        return missing(error, "period");
    char scope[160];
    hs_topic_scope_component(obs->scope, scope, sizeof scope);
    const char *parts[] = {obs->indicator, scope, obs->period};
    hs_err err = hs_key_join(key, parts, 3, error);
    return err ? err : copy_group(group, obs->indicator, error);
}

static hs_err capacity_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                           hs_error *error)
{
    const Healthsignals__V1__CapacityObservation *obs = (const void *)value;
    if (empty(obs->resource))
        return missing(error, "resource");
    if (!obs->scope || empty(obs->scope->code))
        return missing(error, "scope");
    if (empty(obs->period))
        return missing(error, "period");
    char scope[160];
    hs_topic_scope_component(obs->scope, scope, sizeof scope);
    const char *parts[] = {obs->resource, scope, obs->period};
    hs_err err = hs_key_join(key, parts, 3, error);
    return err ? err : copy_group(group, obs->resource, error);
}

static hs_err budget_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                         hs_error *error)
{
    const Healthsignals__V1__BudgetLine *line = (const void *)value;
    if (empty(line->unit))
        return missing(error, "unit");
    if (empty(line->line))
        return missing(error, "line");
    char year[16];
    snprintf(year, sizeof year, "%d", (int)line->year);
    const ProtobufCEnumValue *kind =
        protobuf_c_enum_descriptor_get_value(&healthsignals__v1__budget_kind__descriptor, (int)line->kind);
    const char *parts[] = {line->unit, line->line, year, kind ? kind->name : "BUDGET_KIND_UNSPECIFIED"};
    hs_err err = hs_key_join(key, parts, 4, error);
    return err ? err : copy_group(group, line->unit, error);
}

static hs_err rule_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                       hs_error *error)
{
    const Healthsignals__V1__Rule *rule = (const void *)value;
    if (empty(rule->id))
        return missing(error, "id");
    const char *parts[] = {rule->id};
    hs_err err = hs_key_join(key, parts, 1, error);
    return err ? err : copy_group(group, empty(rule->service) ? "" : rule->service, error);
}

/* group/partition/rule: written by the services only (the runtime keys it), never published from a value. */
static hs_err applied_rule_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                               hs_error *error)
{
    (void)value;
    key[0] = group[0] = '\0';
    return hs_error_set(error, HS_ERR_VALIDATION,
                        "%s is written by the services only (its key names a consumer group and partition)",
                        HS_TOPIC_APPLIED_RULES);
}

static hs_err alert_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                        hs_error *error)
{
    const Healthsignals__V1__Alert *alert = (const void *)value;
    if (empty(alert->fingerprint))
        return missing(error, "fingerprint");
    const char *parts[] = {alert->fingerprint};
    hs_err err = hs_key_join(key, parts, 1, error);
    return err ? err : copy_group(group, alert->fingerprint, error);
}

static hs_err fact_count_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                             hs_error *error)
{
    const Healthsignals__V1__FactCount *count = (const void *)value;
    if (empty(count->topic))
        return missing(error, "topic");
    const char *parts[] = {count->group, count->topic};
    hs_err err = hs_key_join(key, parts, 2, error);
    return err ? err : copy_group(group, count->group, error);
}

/* subject/rule/scope/period: the subject indicator first, so that the grouping key is the key's first
 * component (hs_topic_group_of_key) and a status shares the partition number of its facts. */
static hs_err target_status_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                                hs_error *error)
{
    const Healthsignals__V1__TargetStatus *status = (const void *)value;
    if (empty(status->subject))
        return missing(error, "subject");
    if (empty(status->rule))
        return missing(error, "rule");
    if (!status->scope || empty(status->scope->code))
        return missing(error, "scope");
    if (empty(status->period))
        return missing(error, "period");
    char scope[160];
    hs_topic_scope_component(status->scope, scope, sizeof scope);
    const char *parts[] = {status->subject, status->rule, scope, status->period};
    hs_err err = hs_key_join(key, parts, 4, error);
    return err ? err : copy_group(group, status->subject, error);
}

/* resource/scope/period, like the observations it comes from: the grouping key is the resource. */
static hs_err capacity_status_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                                  hs_error *error)
{
    const Healthsignals__V1__CapacityStatus *status = (const void *)value;
    if (empty(status->resource))
        return missing(error, "resource");
    if (!status->scope || empty(status->scope->code))
        return missing(error, "scope");
    if (empty(status->period))
        return missing(error, "period");
    char scope[160];
    hs_topic_scope_component(status->scope, scope, sizeof scope);
    const char *parts[] = {status->resource, scope, status->period};
    hs_err err = hs_key_join(key, parts, 3, error);
    return err ? err : copy_group(group, status->resource, error);
}

/* indicator/period: one variation per indicator and period, grouped by the indicator like its facts. */
static hs_err variation_key(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                            hs_error *error)
{
    const Healthsignals__V1__RegionalVariation *variation = (const void *)value;
    if (empty(variation->indicator))
        return missing(error, "indicator");
    if (empty(variation->period))
        return missing(error, "period");
    const char *parts[] = {variation->indicator, variation->period};
    hs_err err = hs_key_join(key, parts, 2, error);
    return err ? err : copy_group(group, variation->indicator, error);
}

static const hs_topic topics[] = {
    {.name = HS_TOPIC_INDICATORS,
     .value_type = &healthsignals__v1__indicator_observation__descriptor,
     .key_layout = "indicator/scope/period",
     .grouping = "indicator",
     .key_of = indicator_key,
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "IndicatorObservation: quarterly, monthly and yearly figures (facts)"},
    {.name = HS_TOPIC_BUDGET,
     .value_type = &healthsignals__v1__budget_line__descriptor,
     .key_layout = "unit/line/year/kind",
     .grouping = "unit",
     .key_of = budget_key,
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "BudgetLine: budget and accounts lines (facts)"},
    {.name = HS_TOPIC_CAPACITY,
     .value_type = &healthsignals__v1__capacity_observation__descriptor,
     .key_layout = "resource/scope/period",
     .grouping = "resource",
     .key_of = capacity_key,
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "CapacityObservation: beds, places and slots available and used (facts)"},
    {.name = HS_TOPIC_RULES,
     .value_type = &healthsignals__v1__rule__descriptor,
     .key_layout = "id",
     .grouping = "service",
     .key_of = rule_key,
     .partitions = 1,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 1,
     .description = "Rule: targets and thresholds as data; read in full by every instance"},
    {.name = HS_TOPIC_APPLIED_RULES,
     .value_type = &healthsignals__v1__rule__descriptor,
     .key_layout = "group/partition/id",
     .grouping = "group",
     .key_of = applied_rule_key,
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "Rule: the rules a consumer group's partition has applied to its outputs, written by the "
                    "services in the transactions of those outputs; read back when the partition is rebuilt"},
    {.name = HS_TOPIC_ALERTS,
     .value_type = &healthsignals__v1__alert__descriptor,
     .key_layout = "fingerprint",
     .grouping = "fingerprint",
     .key_of = alert_key,
     .partitions = 4,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "Alert: FIRING / RESOLVED state per alert fingerprint"},
    {.name = HS_TOPIC_FACT_COUNTS,
     .value_type = &healthsignals__v1__fact_count__descriptor,
     .key_layout = "group/topic",
     .grouping = "group",
     .key_of = fact_count_key,
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "FactCount: facts per grouping key (the diagnostic count service)"},
    {.name = HS_TOPIC_TARGET_STATUS,
     .value_type = &healthsignals__v1__target_status__descriptor,
     .key_layout = "subject/rule/scope/period",
     .grouping = "subject",
     .key_of = target_status_key,
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "TargetStatus: a target rule evaluated per scope and period (targets)"},
    {.name = HS_TOPIC_CAPACITY_STATUS,
     .value_type = &healthsignals__v1__capacity_status__descriptor,
     .key_layout = "resource/scope/period",
     .grouping = "resource",
     .key_of = capacity_status_key,
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
     .key_of = variation_key,
     .partitions = 8,
     .cleanup_policy = "compact",
     .retention_ms = -1,
     .global = 0,
     .description = "RegionalVariation: best and worst region, spread and national value per indicator and "
                    "period (variation)"},
    {.name = HS_TOPIC_DLQ,
     .value_type = NULL,
     .key_layout = "original key",
     .grouping = "-",
     .key_of = NULL,
     .partitions = 4,
     .cleanup_policy = "delete",
     .retention_ms = 30 * DAY_MS,
     .max_message_bytes = HS_DLQ_MAX_MESSAGE_BYTES,
     .global = 0,
     .description = "rejected records: original key and value bytes, error headers"},
};

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
    char *parts[8];
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
    assert(topic->key_of && value->descriptor == topic->value_type);
    char identity[HS_KEY_MAX];
    hs_err err = topic->key_of(value, identity, group, error);
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
