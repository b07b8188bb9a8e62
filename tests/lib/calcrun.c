/* See calcrun.h. */
#include "calcrun.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

calcrun calcrun_run(const hs_calc *calc, const char *rules, const char *input, bool changes)
{
    calcrun r = {0};
    FILE *rules_in = rules ? fmemopen((void *)rules, strlen(rules), "r") : NULL;
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    size_t len = 0;
    FILE *out = open_memstream(&r.text, &len);
    assert_non_null(in);
    assert_non_null(out);
    hs_offline_options options = {.changes = changes};
    hs_error error;
    assert_int_equal(hs_offline_run(calc, rules_in, "rules", in, "test", out, &options, &r.stats, &error),
                     HS_OK);
    if (rules_in)
        fclose(rules_in);
    fclose(in);
    fclose(out);
    r.by_key = json_object();
    char *save = NULL;
    char *copy = strdup(r.text);
    assert_non_null(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *event = json_loads(line, 0, NULL);
        assert_non_null(event);
        json_object_set(r.by_key, json_string_value(json_object_get(event, "subject")),
                        json_object_get(event, "data"));
        json_decref(event);
    }
    free(copy);
    return r;
}

void calcrun_free(calcrun *run)
{
    json_decref(run->by_key);
    free(run->text);
    *run = (calcrun){0};
}
