/* A client of a Confluent-compatible schema registry (hs/schema_registry.h). */
#include "hs/schema_registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs/wire.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_REPLY_BYTES    (1 << 20)
#define MAX_FILES          32

/* A registered file: the reference other schemas give to it. */
typedef struct registered {
    const hs_proto_source *file;
    int version;
} registered;

typedef struct client {
    const hs_schema_registry_options *options;
    CURL *easy;
    struct curl_slist *headers;
    char base[1024]; /* the URL without a trailing '/' */
    registered files[MAX_FILES];
    size_t file_cnt;
} client;

typedef struct reply {
    char *data;
    size_t len;
    bool too_large;
} reply;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    reply *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n > MAX_REPLY_BYTES) {
        r->too_large = true;
        return 0;
    }
    char *grown = realloc(r->data, r->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, ptr, n);
    r->len += n;
    grown[r->len] = '\0';
    r->data = grown;
    return n;
}

/* The registry's message in an error reply ({"error_code":40901,"message":"..."}), else the body. */
static void reply_message(const reply *r, char *out, size_t size)
{
    json_t *doc = r->data ? json_loads(r->data, 0, NULL) : NULL;
    const char *message = doc ? json_string_value(json_object_get(doc, "message")) : NULL;
    snprintf(out, size, "%.300s", message ? message : r->data ? r->data : "(empty reply)");
    json_decref(doc);
}

/* POSTs `body` to base + `path`; *out receives the JSON reply of a 2xx (new reference). */
static hs_err post(client *c, const char *path, json_t *body, json_t **out, const char *subject,
                   hs_error *error)
{
    *out = NULL;
    char url[2048];
    if (snprintf(url, sizeof url, "%s%s", c->base, path) >= (int)sizeof url)
        return hs_error_set(error, HS_ERR_CONFIG, "schema registry URL too long");
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    reply r = {0};
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &r);
    CURLcode code = curl_easy_perform(c->easy);
    free(text);
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    hs_err err = HS_OK;
    if (code != CURLE_OK) {
        err = hs_error_set(error,
                           code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL ? HS_ERR_CONFIG
                                                                                             : HS_ERR_IO,
                           "schema registry %s unreachable (%s): %s", c->base, subject,
                           r.too_large ? "reply too large" : curl_easy_strerror(code));
    } else if (status < 200 || status > 299) {
        char message[320];
        reply_message(&r, message, sizeof message);
        bool retriable = status >= 500 || status == 408 || status == 429;
        err = hs_error_set(error, retriable ? HS_ERR_IO : HS_ERR_CONFIG,
                           "schema registry %s refused %s with HTTP %ld: %s", c->base, subject, status,
                           message);
    } else if (!(*out = r.data ? json_loads(r.data, 0, NULL) : NULL) || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        err = hs_error_set(error, HS_ERR_CONFIG, "schema registry %s answered %s with no JSON object: %.200s",
                           c->base, subject, r.data ? r.data : "");
    }
    free(r.data);
    return err;
}

static hs_err register_file(client *c, const hs_proto_source *file, const char *subject, int depth,
                            int *id_out, int *version_out, hs_error *error);

typedef struct import_ctx {
    client *c;
    json_t *references;
    int depth;
} import_ctx;

static hs_err on_import(void *ctx, const char *path, size_t len, hs_error *error)
{
    import_ctx *ic = ctx;
    char name[256];
    if (len >= sizeof name)
        return hs_error_set(error, HS_ERR_INTERNAL, "import path too long");
    memcpy(name, path, len);
    name[len] = '\0';
    const hs_proto_source *file = hs_proto_source_find(name);
    if (!file) {
        if (strncmp(name, "google/protobuf/", 16) == 0)
            return HS_OK; /* well-known types: every registry knows them */
        return hs_error_set(error, HS_ERR_INTERNAL, "import %s is not one of the embedded .proto files",
                            name);
    }
    int id, version;
    hs_err err = register_file(ic->c, file, name, ic->depth + 1, &id, &version, error);
    if (err)
        return err;
    json_t *ref = json_pack("{s:s, s:s, s:i}", "name", name, "subject", name, "version", version);
    if (!ref || json_array_append_new(ic->references, ref) != 0)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    return HS_OK;
}

/* Registers `file` under `subject`, its imports first; *id_out and *version_out receive what the registry
 * gave it (the version only when asked: version_out not NULL). */
static hs_err register_file(client *c, const hs_proto_source *file, const char *subject, int depth,
                            int *id_out, int *version_out, hs_error *error)
{
    if (version_out)
        for (size_t i = 0; i < c->file_cnt; i++)
            if (c->files[i].file == file && strcmp(file->path, subject) == 0) {
                *version_out = c->files[i].version;
                return HS_OK;
            }
    if (depth > 16)
        return hs_error_set(error, HS_ERR_INTERNAL, "imports of %s nest deeper than 16", file->path);
    import_ctx ic = {c, json_array(), depth};
    hs_err err = hs_wire_imports(file->text, on_import, &ic, error);
    if (err) {
        json_decref(ic.references);
        return err;
    }
    json_t *body = json_pack("{s:s, s:s, s:O}", "schemaType", "PROTOBUF", "schema", file->text, "references",
                             ic.references);
    json_decref(ic.references);
    if (!body)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    char *escaped = curl_easy_escape(c->easy, subject, 0);
    if (!escaped) {
        json_decref(body);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    }
    char path[512];
    snprintf(path, sizeof path, "/subjects/%s/versions", escaped);
    json_t *answer = NULL;
    err = post(c, path, body, &answer, subject, error);
    if (!err) {
        json_int_t id = json_integer_value(json_object_get(answer, "id"));
        if (!json_is_integer(json_object_get(answer, "id")) || id < 0 || id >= INT32_MAX)
            err = hs_error_set(error, HS_ERR_CONFIG, "schema registry %s gave %s no schema id", c->base,
                               subject);
        *id_out = (int)id;
    }
    json_decref(answer);
    if (!err && version_out) {
        /* The version, for the references to this file: looked up with the same schema. */
        snprintf(path, sizeof path, "/subjects/%s", escaped);
        err = post(c, path, body, &answer, subject, error);
        if (!err) {
            json_int_t version = json_integer_value(json_object_get(answer, "version"));
            if (version < 1 || version >= INT32_MAX)
                err = hs_error_set(error, HS_ERR_CONFIG, "schema registry %s gave %s no version", c->base,
                                   subject);
            *version_out = (int)version;
            if (!err && c->file_cnt < MAX_FILES)
                c->files[c->file_cnt++] = (registered){file, (int)version};
        }
        json_decref(answer);
    }
    curl_free(escaped);
    json_decref(body);
    return err;
}

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

hs_err hs_schema_registry_register(const hs_schema_registry_options *options, const hs_topic *const *topics,
                                   size_t count, hs_error *error)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_curl);
    if (!options->url || !*options->url)
        return hs_error_set(error, HS_ERR_CONFIG, "no schema registry URL");
    client c = {.options = options};
    size_t n = strlen(options->url);
    while (n > 0 && options->url[n - 1] == '/')
        n--;
    if (n >= sizeof c.base)
        return hs_error_set(error, HS_ERR_CONFIG, "schema registry URL too long");
    memcpy(c.base, options->url, n);
    c.base[n] = '\0';
    if (strncmp(c.base, "http://", 7) != 0 && strncmp(c.base, "https://", 8) != 0)
        return hs_error_set(error, HS_ERR_CONFIG, "schema registry URL '%s' is not http:// or https://",
                            c.base);
    c.easy = curl_easy_init();
    if (!c.easy)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    c.headers = curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    c.headers =
        curl_slist_append(c.headers, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    char bearer[4096];
    if (options->bearer_token && *options->bearer_token) {
        snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", options->bearer_token);
        c.headers = curl_slist_append(c.headers, bearer);
    }
    curl_easy_setopt(c.easy, CURLOPT_HTTPHEADER, c.headers);
    curl_easy_setopt(c.easy, CURLOPT_TIMEOUT_MS,
                     options->timeout_ms > 0 ? options->timeout_ms : DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(c.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c.easy, CURLOPT_USERAGENT, "healthsignals/" HS_VERSION);
    if (options->user_info && *options->user_info) {
        curl_easy_setopt(c.easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c.easy, CURLOPT_USERPWD, options->user_info);
    }
    if (options->ca_location && *options->ca_location)
        curl_easy_setopt(c.easy, CURLOPT_CAINFO, options->ca_location);

    hs_err err = HS_OK;
    for (size_t i = 0; i < count && !err; i++) {
        const hs_proto_source *file = NULL;
        hs_wire_path path;
        if (!topics[i]
                 ->value_type) /* a raw topic of the runtime's own (hs.applied-rules.v1): values stay bare */
            continue;
        if (hs_wire_locate(topics[i]->value_type, &file, &path, error) != HS_OK) {
            err = hs_error_set(error, HS_ERR_INTERNAL,
                               "%s has no message type in the contracts' .proto files", topics[i]->name);
            break;
        }
        char subject[256];
        snprintf(subject, sizeof subject, "%s-value", topics[i]->name);
        int id = -1;
        err = register_file(&c, file, subject, 0, &id, NULL, error);
        if (!err)
            err = hs_wire_enable(topics[i], id, error);
    }
    curl_slist_free_all(c.headers);
    curl_easy_cleanup(c.easy);
    return err;
}
