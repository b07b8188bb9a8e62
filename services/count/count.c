/* The count calculation (see count.h). State: per input topic, the key of each live fact (so that a revision
 * is not counted twice and a tombstone, which carries no value, finds its group), and the count per group.
 * A fact's group is the first component of its record key (hs_topic_group_of_key): both drivers admit only
 * records whose key is their value's identity (hs_topic_admit), so the key alone says the group.
 */
#include "count.h"

#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/diagnostics.pb-c.h"

static const char *const count_inputs[] = {HS_TOPIC_INDICATORS, HS_TOPIC_CAPACITY, NULL};
static const char *const count_outputs[] = {HS_TOPIC_FACT_COUNTS, NULL};

#define INPUT_CNT (sizeof count_inputs / sizeof count_inputs[0] - 1)

typedef struct count_state {
    hs_table facts[INPUT_CNT]; /* by input topic: live fact keys (-> "") */
    hs_table counts;           /* output key "<group>/<topic>" -> int64 count */
} count_state;

static void *count_create(void)
{
    count_state *s = calloc(1, sizeof *s);
    if (s) {
        for (size_t i = 0; i < INPUT_CNT; i++)
            hs_table_init(&s->facts[i]);
        hs_table_init(&s->counts);
    }
    return s;
}

static void count_destroy(void *state)
{
    count_state *s = state;
    for (size_t i = 0; i < INPUT_CNT; i++)
        hs_table_free(&s->facts[i]);
    hs_table_free(&s->counts);
    free(s);
}

/* The facts table of `topic`, or NULL for a topic that is not an input. */
static hs_table *facts_of(count_state *s, const hs_topic *topic)
{
    for (size_t i = 0; i < INPUT_CNT; i++)
        if (strcmp(topic->name, count_inputs[i]) == 0)
            return &s->facts[i];
    return NULL;
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
    hs_err err = hs_topic_key(output, &out.base, key, unused, error);
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
    hs_table *facts = facts_of(s, topic);
    if (!facts)
        return hs_error_set(error, HS_ERR_INTERNAL, "count does not read %s", topic->name);
    const hs_table_entry *known = hs_table_get(facts, key);

    if (!value) { /* tombstone: forget the fact, if we knew it */
        if (!known)
            return HS_OK;
        char group[HS_KEY_MAX];
        hs_err err = hs_topic_group_of_key(topic, key, group, error);
        if (err)
            return err; /* cannot happen: the key was split when the fact was stored */
        hs_table_delete(facts, key);
        return count_adjust(s, topic, group, -1, emit, error);
    }
    if (known)
        return HS_OK; /* a revision of a fact already counted */

    char group[HS_KEY_MAX];
    hs_err err = hs_topic_group_of_key(topic, key, group, error);
    if (err)
        return err;
    if (hs_table_put(facts, key, "", 0) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
    err = count_adjust(s, topic, group, +1, emit, error);
    if (err)
        hs_table_delete(facts, key); /* leave the state as it was */
    return err;
}

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
