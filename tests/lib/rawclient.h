/* A bare librdkafka client for the small test programs that speak to the broker directly (produce_raw,
 * read_raw): no hs_kafka defaults, only the properties the program names.
 */
#ifndef HS_TEST_RAWCLIENT_H
#define HS_TEST_RAWCLIENT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>

/* A client of `type` with the `count` property/value pairs of `props`; NULL after printing
 * "PROGRAM: reason" to stderr. The caller rd_kafka_destroy()s it. */
static inline rd_kafka_t *raw_client(const char *program, rd_kafka_type_t type, const char *const (*props)[2],
                                     size_t count)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < count; i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            fprintf(stderr, "%s: %s\n", program, errstr);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr); /* takes conf on success only */
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "%s: %s\n", program, errstr);
    }
    return rk;
}

#endif
