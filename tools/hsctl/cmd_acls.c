/* hsctl acls: the Kafka ACLs of least privilege for each service, generated from what the code says each
 * one reads and writes — the calculations' inputs and outputs (calcs.h), the exporter's tables
 * (exporter_map.h), the alert sink's topic — and from how the runtime names its consumer group (hs-<service>)
 * and its transactional ids (hs-<service>-<instance>, common/io/src/runtime.c). One ACL per line:
 *
 *   PRINCIPAL  OPERATION  RESOURCE-TYPE  PATTERN-TYPE  NAME
 *   User:targets  READ  TOPIC  LITERAL  hs.indicators.v1
 *
 * deploy/kafka/acls turns these lines into kafka-acls commands (docs/security.md).
 */
#include <stdio.h>
#include <string.h>

#include "calcs.h"
#include "exporter_map.h"
#include "hs_cli.h"
#include "hsctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl acls [--principal SERVICE=PRINCIPAL]... [SERVICE...]\n"
            "\n"
            "Prints the Kafka ACLs each service needs and nothing more, one per line:\n"
            "  PRINCIPAL OPERATION RESOURCE-TYPE PATTERN-TYPE NAME\n"
            "(deploy/kafka/acls applies them with kafka-acls; docs/security.md).\n"
            "\n"
            "Services: a calculation (each of hsctl calc's services: READ on its inputs and on\n"
            "hs.rules.v1 if it has rules, READ and WRITE on hs.applied-rules.v1 then too, WRITE on\n"
            "its outputs, hs.alerts.v1 and hs.dlq.v1, READ on its group hs-SERVICE, WRITE on the\n"
            "transactional ids hs-SERVICE-*), exporter and alertmanager\n"
            "(READ on the topics they serve), reader (READ on every topic: hsctl tail, dlq list, export)\n"
            "and publisher (WRITE on the fact topics and hs.rules.v1: hsctl publish, rules apply).\n"
            "Default: every service.\n"
            "\n"
            "  --principal SERVICE=PRINCIPAL   the service's Kafka principal (default User:SERVICE)\n");
}

typedef struct acl_out {
    FILE *out;
    const char *principal;
} acl_out;

static void acl(const acl_out *o, const char *operation, const char *type, const char *pattern,
                const char *name)
{
    fprintf(o->out, "%s\t%s\t%s\t%s\t%s\n", o->principal, operation, type, pattern, name);
}

static void calc_acls(const acl_out *o, const hs_calc *calc)
{
    for (const char *const *t = calc->inputs; *t; t++)
        acl(o, "READ", "TOPIC", "LITERAL", *t);
    if (calc->uses_rules) {
        acl(o, "READ", "TOPIC", "LITERAL", HS_TOPIC_RULES);
        /* the rules its partitions have applied: written with the outputs, read back on a rebuild */
        acl(o, "READ", "TOPIC", "LITERAL", HS_TOPIC_APPLIED_RULES);
        acl(o, "WRITE", "TOPIC", "LITERAL", HS_TOPIC_APPLIED_RULES);
    }
    bool alerts = false, dlq = false;
    for (const char *const *t = calc->outputs; *t; t++) {
        acl(o, "WRITE", "TOPIC", "LITERAL", *t);
        alerts = alerts || strcmp(*t, HS_TOPIC_ALERTS) == 0;
        dlq = dlq || strcmp(*t, HS_TOPIC_DLQ) == 0;
    }
    if (!alerts) /* every service may raise an alert and dead-letter a record */
        acl(o, "WRITE", "TOPIC", "LITERAL", HS_TOPIC_ALERTS);
    if (!dlq)
        acl(o, "WRITE", "TOPIC", "LITERAL", HS_TOPIC_DLQ);
    char name[128];
    snprintf(name, sizeof name, "hs-%s", calc->name); /* the runtime's default --group-id */
    acl(o, "READ", "GROUP", "LITERAL", name);
    snprintf(name, sizeof name, "hs-%s-", calc->name); /* transactional.id = hs-<service>-<instance> */
    acl(o, "WRITE", "TRANSACTIONAL_ID", "PREFIXED", name);
}

/* Whether a calculation reads `topic`: a fact topic (what publishers write). */
static bool is_fact_topic(const char *topic)
{
    size_t count;
    const hs_calc *const *calcs = hsctl_calc_all(&count);
    for (size_t i = 0; i < count; i++)
        for (const char *const *t = calcs[i]->inputs; *t; t++)
            if (strcmp(*t, topic) == 0)
                return true;
    return false;
}

static const char *const other_services[] = {"exporter", "alertmanager", "reader", "publisher"};

/* Prints the ACLs of `service`; false if there is no such service. */
static bool service_acls(const acl_out *o, const char *service)
{
    const hs_calc *calc = hsctl_calc_find(service);
    if (calc) {
        calc_acls(o, calc);
        return true;
    }
    size_t count;
    const hs_topic *topics = hs_topic_all(&count);
    /* The readers below assign their partitions and commit nothing, but librdkafka's consumer still looks
     * up the coordinator of the group id that names it (common/io/src/reader.c, hsctl_reader): READ on that
     * group keeps the lookup from failing into the log. */
    if (strcmp(service, "exporter") == 0) {
        for (int t = 0; t < XM_TABLE_COUNT; t++)
            acl(o, "READ", "TOPIC", "LITERAL", xm_table_topic((xm_table)t));
        acl(o, "READ", "GROUP", "LITERAL", "hs-exporter");
    } else if (strcmp(service, "alertmanager") == 0) {
        acl(o, "READ", "TOPIC", "LITERAL", HS_TOPIC_ALERTS);
        acl(o, "READ", "GROUP", "LITERAL", "hs-alertmanager-sink");
    } else if (strcmp(service, "reader") == 0) {
        for (size_t i = 0; i < count; i++)
            acl(o, "READ", "TOPIC", "LITERAL", topics[i].name);
        acl(o, "READ", "GROUP", "PREFIXED", "hsctl-reader-"); /* hsctl-reader-<pid> */
    } else if (strcmp(service, "publisher") == 0) {
        for (size_t i = 0; i < count; i++)
            if (is_fact_topic(topics[i].name))
                acl(o, "WRITE", "TOPIC", "LITERAL", topics[i].name);
        acl(o, "WRITE", "TOPIC", "LITERAL", HS_TOPIC_RULES);
    } else {
        return false;
    }
    return true;
}

hs_err hsctl_acls(int argc, char **argv, const hsctl_globals *g)
{
    (void)g;
    enum { MAX_PRINCIPALS = 16 };
    const char *override_items[MAX_PRINCIPALS];
    hs_cli_texts principals = {.items = override_items, .capacity = MAX_PRINCIPALS};
    const hs_cli_option options[] = {
        {"principal", 'p', HS_CLI_TEXTS, &principals},
        {0},
    };
    hs_cli_parse("hsctl acls", argc, argv, options, false, usage);
    const char *const *overrides = principals.items;
    int override_count = (int)principals.count;
    for (int i = 0; i < override_count; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i] || !eq[1])
            return hsctl_fail(HS_ERR_USAGE, "--principal: '%s' is not SERVICE=PRINCIPAL", overrides[i]);
    }

    /* The services asked for, or all of them. */
    const char *all[32];
    int service_count = 0;
    if (optind < argc) {
        for (int i = optind; i < argc && service_count < 32; i++)
            all[service_count++] = argv[i];
    } else {
        size_t count;
        const hs_calc *const *calcs = hsctl_calc_all(&count);
        for (size_t i = 0; i < count && service_count < 32; i++)
            all[service_count++] = calcs[i]->name;
        for (size_t i = 0; i < sizeof other_services / sizeof other_services[0]; i++)
            all[service_count++] = other_services[i];
    }

    for (int s = 0; s < service_count; s++) {
        char principal[256];
        snprintf(principal, sizeof principal, "User:%s", all[s]);
        for (int i = 0; i < override_count; i++) {
            size_t len = (size_t)(strchr(overrides[i], '=') - overrides[i]);
            if (strlen(all[s]) == len && strncmp(overrides[i], all[s], len) == 0)
                snprintf(principal, sizeof principal, "%s", overrides[i] + len + 1);
        }
        if (strchr(principal, '\t') || strchr(principal, '\n') || !strchr(principal, ':'))
            return hsctl_fail(HS_ERR_USAGE, "principal '%s' of %s is not TYPE:NAME (e.g. User:%s)", principal,
                              all[s], all[s]);
        acl_out o = {.out = stdout, .principal = principal};
        if (!service_acls(&o, all[s])) {
            size_t count;
            const hs_calc *const *calcs = hsctl_calc_all(&count);
            fprintf(stderr, "hsctl: unknown service '%s'; known:", all[s]);
            for (size_t i = 0; i < count; i++)
                fprintf(stderr, " %s", calcs[i]->name);
            for (size_t i = 0; i < sizeof other_services / sizeof other_services[0]; i++)
                fprintf(stderr, " %s", other_services[i]);
            fputc('\n', stderr);
            return HS_ERR_USAGE;
        }
    }
    for (int i = 0; i < override_count; i++) {
        size_t len = (size_t)(strchr(overrides[i], '=') - overrides[i]);
        bool used = false;
        for (int s = 0; s < service_count; s++)
            used = used || (strlen(all[s]) == len && strncmp(overrides[i], all[s], len) == 0);
        if (!used)
            return hsctl_fail(HS_ERR_USAGE, "--principal %s: no such service among those printed",
                              overrides[i]);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return hsctl_fail(HS_ERR_IO, "writing the ACLs failed");
    return HS_OK;
}
