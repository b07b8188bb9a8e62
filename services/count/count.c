/* The count calculation (see count.h). State: each live fact's key with its grouping key (so that a
 * tombstone, which carries no value, finds its group), and the count per topic and group.
 */
#include "count.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/diagnostics.pb-c.h"

typedef struct count_state {
    hs_table facts;  /* "<topic>/<fact key>" -> grouping key */
    hs_table counts; /* output key "<group>/<topic>" -> int64 count */
} count_state;

static void *count_create(void)
{
    count_state *s = calloc(1, sizeof *s);
    if (s) {
        hs_table_init(&s->facts);
        hs_table_init(&s->counts);
    }
    return s;
}

static void count_destroy(void *state)
{
    count_state *s = state;
    hs_table_free(&s->facts);
    hs_table_free(&s->counts);
    free(s);
}

/* Adds `delta` to the count of `group` in `topic` and emits the new count (a deletion at zero). */
static hs_err count_adjust(count_state *s, const hs_topic *topic, const char *group, int delta, hs_emit *emit,
                           hs_error *error)
{
    Healthsignals__V1__FactCount out = HEALTHSIGNALS__V1__FACT_COUNT__INIT;
    out.topic = (char *)topic->name;
    out.group = (char *)group;
    char key[HS_KEY_MAX], unused[HS_KEY_MAX];
    const hs_topic *output = hs_topic_find(HS_TOPIC_FACT_COUNTS);
    hs_err err = output->key_of(&out.base, key, unused, error);
    if (err)
        return err;

    const hs_table_entry *e = hs_table_get(&s->counts, key);
    int64_t facts = 0;
    if (e)
        memcpy(&facts, e->value, sizeof facts);
    facts += delta;
    if (facts <= 0) {
        hs_table_delete(&s->counts, key);
        return hs_emit_put(emit, output, key, NULL);
    }
    if (hs_table_put(&s->counts, key, &facts, sizeof facts) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory counting %s", key);
    out.facts = facts;
    return hs_emit_put(emit, output, key, &out.base);
}

static hs_err count_apply(void *state, const hs_topic *topic, const char *key, const ProtobufCMessage *value,
                          hs_emit *emit, hs_error *error)
{
    count_state *s = state;
    char fact[HS_KEY_MAX * 2];
    snprintf(fact, sizeof fact, "%s/%s", topic->name, key);
    const hs_table_entry *known = hs_table_get(&s->facts, fact);

    if (!value) { /* tombstone: forget the fact, if we knew it */
        if (!known)
            return HS_OK;
        char group[HS_KEY_MAX];
        snprintf(group, sizeof group, "%.*s", (int)known->value_len, (const char *)known->value);
        hs_table_delete(&s->facts, fact);
        return count_adjust(s, topic, group, -1, emit, error);
    }
    if (known)
        return HS_OK; /* a revision of a fact already counted */

    char record_key[HS_KEY_MAX], group[HS_KEY_MAX];
    hs_err err = topic->key_of(value, record_key, group, error);
    if (err)
        return err;
    if (hs_table_put(&s->facts, fact, group, strlen(group)) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", fact);
    err = count_adjust(s, topic, group, +1, emit, error);
    if (err)
        hs_table_delete(&s->facts, fact); /* leave the state as it was */
    return err;
}

static const char *const count_inputs[] = {HS_TOPIC_INDICATORS, HS_TOPIC_CAPACITY, NULL};
static const char *const count_outputs[] = {HS_TOPIC_FACT_COUNTS, NULL};

const hs_calc count_calc = {
    .name = "count",
    .description = "live facts per grouping key (diagnostic; the template of a service)",
    .inputs = count_inputs,
    .outputs = count_outputs,
    .uses_rules = false,
    .create = count_create,
    .destroy = count_destroy,
    .apply = count_apply,
};
