/* Kafka client plumbing: configuration from flags and environment, and the one way a typed record is
 * produced (key = identity, partition = murmur2 of the grouping key, CloudEvents headers).
 */
#include "hs/kafka.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs/config.h"
#include "hs/log.h"
#include "hs/wire.h"

extern char **environ;

const char *hs_kafka_bootstrap(const char *flag)
{
    if (flag && *flag)
        return flag;
    const char *env = getenv("HS_BOOTSTRAP_SERVERS");
    return env && *env ? env : HS_DEFAULT_BOOTSTRAP;
}

hs_err hs_kafka_txn_timeout_ms(long long commit_interval_ms, const char *configured, long long *timeout_ms,
                               hs_error *error)
{
    assert(commit_interval_ms > 0);
    long long minimum = HS_KAFKA_TXN_TIMEOUT_MIN_INTERVALS * commit_interval_ms;
    if (!configured || !*configured) {
        long long derived = HS_KAFKA_TXN_TIMEOUT_INTERVALS * commit_interval_ms;
        *timeout_ms = derived > HS_KAFKA_TXN_TIMEOUT_MIN_MS ? derived : HS_KAFKA_TXN_TIMEOUT_MIN_MS;
        return HS_OK;
    }
    char *end;
    errno = 0;
    long long value = strtoll(configured, &end, 10);
    if (!isdigit((unsigned char)configured[0]) || errno || *end || value <= 0)
        return hs_error_set(error, HS_ERR_CONFIG,
                            "HS_KAFKA_TRANSACTION_TIMEOUT_MS: '%.40s' is not a number of milliseconds",
                            configured);
    if (value < minimum)
        return hs_error_set(
            error, HS_ERR_CONFIG,
            "HS_KAFKA_TRANSACTION_TIMEOUT_MS=%lld is too short for a commit interval of %lld ms: "
            "the broker would abort transactions before they commit; set it to at least %lld "
            "(%d intervals), or unset it to get max(%lld, %d x the interval)",
            value, commit_interval_ms, minimum, HS_KAFKA_TXN_TIMEOUT_MIN_INTERVALS,
            HS_KAFKA_TXN_TIMEOUT_MIN_MS, HS_KAFKA_TXN_TIMEOUT_INTERVALS);
    *timeout_ms = value;
    return HS_OK;
}

bool hs_kafka_property_is_secret(const char *name)
{
    /* librdkafka's sensitive properties (those it shows as "[redacted]" in its own configuration dump):
     * sasl.password, ssl.key.password, ssl.keystore.password, ssl.key.pem, ssl_key,
     * sasl.oauthbearer.client.secret, sasl.oauthbearer.config; and any later one named like them. */
    return strstr(name, "password") || strstr(name, "secret") || strcmp(name, "ssl.key.pem") == 0 ||
           strcmp(name, "ssl_key") == 0 || strcmp(name, "sasl.oauthbearer.config") == 0;
}

hs_err hs_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, hs_error *error)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message may quote the value ("Invalid value \"...\" for ..."): not a secret's. */
        if (hs_kafka_property_is_secret(name))
            return hs_error_set(error, HS_ERR_CONFIG,
                                "Kafka property %s: librdkafka refused the value "
                                "(not shown: the property is a secret)",
                                name);
        return hs_error_set(error, HS_ERR_CONFIG, "Kafka property %s: %s", name, errstr);
    }
    return HS_OK;
}

/* Whether librdkafka knows property `name`: set on a scratch configuration, an unknown name is refused as
 * such, a known one at worst as an invalid value (rd_kafka_conf_get cannot tell: it calls an unset string
 * property unknown). */
static bool is_property(const char *name)
{
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    char errstr[256];
    bool known = rd_kafka_conf_set(scratch, name, "", errstr, sizeof errstr) != RD_KAFKA_CONF_UNKNOWN;
    rd_kafka_conf_destroy(scratch);
    return known;
}

/* Applies HS_KAFKA_<NAME>=<value> (`name` already lowercased with '.'): a property, or, for a name that
 * ends in ".file" and is no property itself, the property before it read from the file <value>. */
static hs_err apply_kafka_variable(rd_kafka_conf_t *conf, const char *variable, const char *name,
                                   const char *value, hs_error *error)
{
    static const char file_suffix[] = ".file";
    size_t len = strlen(name), suffix_len = sizeof file_suffix - 1;
    if (len > suffix_len && strcmp(name + len - suffix_len, file_suffix) == 0 && !is_property(name)) {
        char property[256];
        snprintf(property, sizeof property, "%.*s", (int)(len - suffix_len), name);
        if (!is_property(property))
            return hs_error_set(error, HS_ERR_CONFIG,
                                "%s: no Kafka property %s (the _FILE suffix reads a property's value from "
                                "a file)",
                                variable, property);
        /* Both the value and its file: which one wins would be a guess. */
        char direct[256];
        size_t vlen = strlen(variable) - suffix_len;
        snprintf(direct, sizeof direct, "%.*s", (int)vlen, variable);
        const char *both = getenv(direct);
        if (both && *both)
            return hs_error_set(error, HS_ERR_CONFIG, "both %s and %s are set: set one", direct, variable);
        char *secret;
        hs_err err = hs_config_read_file(variable, value, HS_KAFKA_SECRET_FILE_MAX, &secret, error);
        if (err != HS_OK || !secret)
            return err != HS_OK ? err : hs_error_set(error, HS_ERR_INTERNAL, "%s: no value read", variable);
        err = hs_kafka_conf_set(conf, property, secret, error);
        hs_secret_wipe(secret, strlen(secret));
        free(secret);
        if (err != HS_OK)
            hs_error_prefix(error, "%s", variable);
        return err;
    }
    hs_err err = hs_kafka_conf_set(conf, name, value, error);
    if (err != HS_OK)
        hs_error_prefix(error, "%s", variable);
    return err;
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    hs_log(level <= 3   ? HS_LOG_ERROR
           : level <= 4 ? HS_LOG_WARN
           : level <= 6 ? HS_LOG_INFO
                        : HS_LOG_DEBUG,
           buf, "{s:s, s:s}", "facility", fac, "client", rd_kafka_name(rk));
}

rd_kafka_conf_t *hs_kafka_conf_new(const char *bootstrap, hs_error *error)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    if (hs_kafka_conf_set(conf, "bootstrap.servers", bootstrap, error) != HS_OK)
        goto fail;

    static const char prefix[] = "HS_KAFKA_";
    for (char **env = environ; *env; env++) {
        if (strncmp(*env, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *name_start = *env + sizeof prefix - 1;
        const char *eq = strchr(name_start, '=');
        if (!eq || eq == name_start || eq[1] == '\0')
            continue; /* an empty value counts as unset, as for every HS_* variable */
        char name[256];
        size_t len = (size_t)(eq - name_start);
        if (len >= sizeof name) {
            hs_error_set(error, HS_ERR_CONFIG, "environment variable %.40s...: name too long", *env);
            goto fail;
        }
        for (size_t i = 0; i < len; i++)
            name[i] = name_start[i] == '_' ? '.' : (char)tolower((unsigned char)name_start[i]);
        name[len] = '\0';
        char variable[sizeof prefix + sizeof name];
        snprintf(variable, sizeof variable, "%s%.*s", prefix, (int)len, name_start);
        if (apply_kafka_variable(conf, variable, name, eq + 1, error) != HS_OK)
            goto fail;
    }
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

hs_err hs_kafka_produce_packed(rd_kafka_t *producer, const hs_topic *topic, const char *key,
                               const char *group, const void *bytes, size_t len, hs_event_meta *meta,
                               hs_error *error)
{
    if (!key || !group)
        return hs_error_set(error, HS_ERR_INTERNAL, "a record for %s needs its key and grouping key",
                            topic->name);
    if (!meta->type[0] && topic->value_type)
        snprintf(meta->type, sizeof meta->type, "%s", topic->value_type->name);
    if (!meta->id[0])
        hs_event_id(meta->id, topic->name, key, bytes, bytes ? len : 0);
    if (!meta->time[0])
        hs_event_time_now(meta->time);
    if (!meta->dataschema[0] && topic->value_type)
        hs_event_dataschema(meta->dataschema, topic->value_type->name);

    /* Confluent's wire format when this process registered the topic's schema (hs/wire.h). */
    uint8_t framed_small[1024];
    size_t framed_len = 0;
    const uint8_t *framed =
        bytes ? hs_wire_frame_value(topic, bytes, len, framed_small, sizeof framed_small, &framed_len) : NULL;
    if (bytes && !framed)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory framing a %zu-byte record", len);

    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);
    hs_event_add_headers(headers, meta, key, bytes != NULL);
    /* RD_KAFKA_MSG_F_COPY: librdkafka allocates the record and a copy of its value together, one allocation
     * where handing over a buffer of ours would take two. */
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic->name), RD_KAFKA_V_PARTITION(hs_topic_partition(topic, group)),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)framed, framed ? framed_len : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (framed && framed != bytes && framed != framed_small)
        free((void *)framed);
    if (kerr) {
        rd_kafka_headers_destroy(headers); /* still ours when the record was refused */
        return hs_error_set(error, kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL ? HS_ERR_TIMEOUT : HS_ERR_KAFKA,
                            "produce to %s: %s", topic->name, rd_kafka_err2str(kerr));
    }
    return HS_OK;
}

hs_err hs_kafka_produce(rd_kafka_t *producer, const hs_topic *topic, const char *key, const char *group,
                        const ProtobufCMessage *value, hs_event_meta *meta, hs_error *error)
{
    if (!value) {
        if (!key || !group)
            return hs_error_set(error, HS_ERR_INTERNAL, "a tombstone needs its key and grouping key");
        return hs_kafka_produce_packed(producer, topic, key, group, NULL, 0, meta, error);
    }
    if (!topic->value_type || value->descriptor != topic->value_type)
        return hs_error_set(error, HS_ERR_INTERNAL, "%s does not carry %s", topic->name,
                            value->descriptor->name);
    char key_buf[HS_KEY_MAX], group_buf[HS_KEY_MAX];
    hs_err err = hs_topic_key(topic, value, key_buf, group_buf, error);
    if (err)
        return err;
    uint8_t small[1024];
    size_t len = protobuf_c_message_get_packed_size(value);
    uint8_t *bytes = len <= sizeof small ? small : malloc(len);
    if (!bytes)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory packing a %zu-byte record", len);
    protobuf_c_message_pack(value, bytes);
    err = hs_kafka_produce_packed(producer, topic, key ? key : key_buf, group ? group : group_buf, bytes, len,
                                  meta, error);
    if (bytes != small)
        free(bytes);
    return err;
}
