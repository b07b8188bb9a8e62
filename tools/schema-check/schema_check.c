/* hs-schema-check: the schema-evolution gate of docs/design.md §9. It compares two
 * FileDescriptorSets, the last released one (proto/baseline/, see tools/schema-baseline) and the current
 * build of proto/, and prints one line for every change to a healthsignals.* message or enum that breaks
 * existing producers, consumers or JSON readers: a removed, renumbered, renamed or retyped field, a changed
 * oneof membership, a reused reserved number, a removed or renumbered enum value; and every change of a file
 * option that places other languages' generated code (go_package, java_package, ...). Additions pass.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

typedef Google__Protobuf__FileDescriptorSet descriptor_set;
typedef Google__Protobuf__FileDescriptorProto file_desc;
typedef Google__Protobuf__DescriptorProto message_desc;
typedef Google__Protobuf__FieldDescriptorProto field_desc;
typedef Google__Protobuf__EnumDescriptorProto enum_desc;
typedef Google__Protobuf__EnumValueDescriptorProto enum_value_desc;

enum { EXIT_COMPATIBLE = 0, EXIT_BREAKING = 1, EXIT_USAGE = 2 };

#define DESCRIPTION_MAX 512 /* longest type or oneof description printed; longer ones are cut */
#define OUR_PACKAGE     "healthsignals"

/* One named definition of a descriptor set: a message (nested ones included) or an enum. */
typedef struct schema_def {
    char *full_name;             /* "healthsignals.v1.Alert.LabelsEntry", no leading dot; owned */
    const char *package;         /* the defining file's package; borrowed from the set */
    const message_desc *message; /* exactly one of message and enumeration is set; borrowed from the set */
    const enum_desc *enumeration;
} schema_def;

/* A loaded descriptor set and its definitions, sorted by full name. schema_load() fills it and
 * schema_free() releases it; every pointer into it stays valid until then. */
typedef struct schema {
    descriptor_set *set;
    schema_def *defs;
    size_t n_defs;
    size_t cap_defs;
} schema;

/* One comparison of a baseline with the current schema: what was checked, and how many problems. */
typedef struct check_run {
    const schema *baseline;
    const schema *current;
    size_t problems;
    size_t messages;
    size_t fields;
    size_t enums;
    size_t values;
} check_run;

static void usage(void)
{
    printf("usage: hs-schema-check BASELINE.desc CURRENT.desc\n"
           "\n"
           "Checks that CURRENT (a FileDescriptorSet, protoc --descriptor_set_out --include_imports) is a\n"
           "compatible evolution of BASELINE for every message and enum of the " OUR_PACKAGE ".* packages\n"
           "in BASELINE: fields are only added; a field keeps its number, name, type, label, map-ness\n"
           "and oneof membership (a one-field oneof '_<field>' is the same as proto3 optional); reserved\n"
           "numbers and names stay unused; enum values keep their numbers; the file options that place\n"
           "generated code (go_package, java_package, ...) keep their values once set. New messages,\n"
           "fields, enum values, files and options pass. Prints one line per breaking change, then a\n"
           "summary.\n"
           "\n"
           "Options:\n"
           "  -h, --help   show this help\n"
           "\n"
           "Exit status: 0 compatible; 1 breaking changes found; 2 usage, I/O or parse error.\n");
}

/* protobuf-c leaves an absent proto2 string NULL; every name we print or compare goes through this. */
static const char *str(const char *s)
{
    return s != NULL ? s : "";
}

static bool is_our_package(const char *package)
{
    size_t len = strlen(OUR_PACKAGE);
    return strncmp(package, OUR_PACKAGE, len) == 0 && (package[len] == '\0' || package[len] == '.');
}

static void problem(check_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(check_run *run, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* clang-tidy 14 flags every va_list as uninitialized in all but the first file of a run. */
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    run->problems++;
}

/* --- loading -------------------------------------------------------------------------------------------- */

/* Reads all of PATH into a malloc'd buffer that the caller frees. Returns false with errno set on failure. */
static bool read_all(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    errno = 0;
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        used += fread(buf + used, 1, cap - used, f);
        if (used < cap)
            break;
        uint8_t *grown = realloc(buf, 2 * cap);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    int saved = errno;
    bool ok = buf != NULL && !ferror(f);
    fclose(f);
    if (!ok) {
        free(buf);
        errno = saved != 0 ? saved : EIO;
        return false;
    }
    *data = buf;
    *len = used;
    return true;
}

/* SCOPE.NAME, or NAME in the empty scope; malloc'd, NULL when out of memory. */
static char *join_name(const char *scope, const char *name)
{
    size_t size = strlen(scope) + 1 + strlen(name) + 1;
    char *full = malloc(size);
    if (full != NULL)
        snprintf(full, size, "%s%s%s", scope, scope[0] != '\0' ? "." : "", name);
    return full;
}

/* Takes ownership of def.full_name, also on failure. */
static bool schema_add(schema *s, schema_def def)
{
    if (def.full_name == NULL)
        return false;
    if (s->n_defs == s->cap_defs) {
        size_t cap = s->cap_defs != 0 ? 2 * s->cap_defs : 64;
        schema_def *defs = realloc(s->defs, cap * sizeof *defs);
        if (defs == NULL) {
            free(def.full_name);
            return false;
        }
        s->defs = defs;
        s->cap_defs = cap;
    }
    s->defs[s->n_defs++] = def;
    return true;
}

static bool schema_add_enum(schema *s, const char *scope, const char *package, const enum_desc *e)
{
    schema_def def = {.full_name = join_name(scope, str(e->name)), .package = package, .enumeration = e};
    return schema_add(s, def);
}

/* Adds M and, recursively, its nested messages and enums. */
static bool schema_add_message(schema *s, const char *scope, const char *package, const message_desc *m)
{
    schema_def def = {.full_name = join_name(scope, str(m->name)), .package = package, .message = m};
    const char *full_name = def.full_name; /* the string stays put when s->defs grows */
    if (!schema_add(s, def))
        return false;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!schema_add_message(s, full_name, package, m->nested_type[i]))
            return false;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (!schema_add_enum(s, full_name, package, m->enum_type[i]))
            return false;
    return true;
}

static int compare_defs(const void *a, const void *b)
{
    return strcmp(((const schema_def *)a)->full_name, ((const schema_def *)b)->full_name);
}

static void schema_free(schema *s)
{
    for (size_t i = 0; i < s->n_defs; i++)
        free(s->defs[i].full_name);
    free(s->defs);
    if (s->set != NULL)
        google__protobuf__file_descriptor_set__free_unpacked(s->set, NULL);
    memset(s, 0, sizeof *s);
}

/* Loads the FileDescriptorSet at PATH into S (zeroed first). Prints the reason and returns false on failure;
 * S is then empty but still to be released with schema_free(). */
static bool schema_load(schema *s, const char *path)
{
    memset(s, 0, sizeof *s);
    uint8_t *data;
    size_t len;
    if (!read_all(path, &data, &len)) {
        fprintf(stderr, "hs-schema-check: %s: %s\n", path, strerror(errno));
        return false;
    }
    s->set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
    free(data);
    if (s->set == NULL) {
        fprintf(stderr, "hs-schema-check: %s: not a FileDescriptorSet (protoc --descriptor_set_out)\n", path);
        return false;
    }
    for (size_t i = 0; i < s->set->n_file; i++) {
        const file_desc *file = s->set->file[i];
        const char *package = str(file->package);
        for (size_t j = 0; j < file->n_message_type; j++)
            if (!schema_add_message(s, package, package, file->message_type[j]))
                goto oom;
        for (size_t j = 0; j < file->n_enum_type; j++)
            if (!schema_add_enum(s, package, package, file->enum_type[j]))
                goto oom;
    }
    if (s->n_defs > 0)
        qsort(s->defs, s->n_defs, sizeof *s->defs, compare_defs);
    return true;
oom:
    fprintf(stderr, "hs-schema-check: %s: out of memory\n", path);
    return false;
}

static int compare_name_def(const void *name, const void *def)
{
    return strcmp(name, ((const schema_def *)def)->full_name);
}

/* The definition named FULL_NAME (with or without the leading dot of a type_name), or NULL. */
static const schema_def *schema_find(const schema *s, const char *full_name)
{
    if (full_name[0] == '.')
        full_name++;
    if (s->n_defs == 0)
        return NULL;
    return bsearch(full_name, s->defs, s->n_defs, sizeof *s->defs, compare_name_def);
}

/* --- describing a field -------------------------------------------------------------------------------- */

static const field_desc *field_by_number(const message_desc *m, int32_t number)
{
    for (size_t i = 0; i < m->n_field; i++)
        if (m->field[i]->number == number)
            return m->field[i];
    return NULL;
}

static const field_desc *field_by_name(const message_desc *m, const char *name)
{
    for (size_t i = 0; i < m->n_field; i++)
        if (strcmp(str(m->field[i]->name), name) == 0)
            return m->field[i];
    return NULL;
}

static bool is_map_entry(const message_desc *m)
{
    return m->options != NULL && m->options->has_map_entry && m->options->map_entry;
}

/* The synthesized entry message when F is a map field, else NULL. */
static const message_desc *map_entry_of(const schema *s, const field_desc *f)
{
    if (f->label != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ||
        f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
        return NULL;
    const schema_def *def = schema_find(s, str(f->type_name));
    return def != NULL && def->message != NULL && is_map_entry(def->message) ? def->message : NULL;
}

/* The .proto spelling of F's type, maps aside: "double", "healthsignals.v1.Scope". */
static const char *plain_type(const field_desc *f)
{
    switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE: return "double";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT: return "float";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64: return "int64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64: return "uint64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32: return "int32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64: return "fixed64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32: return "fixed32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL: return "bool";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING: return "string";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES: return "bytes";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32: return "uint32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32: return "sfixed32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64: return "sfixed64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32: return "sint32";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64: return "sint64";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
        if (f->type_name != NULL)
            return f->type_name[0] == '.' ? f->type_name + 1 : f->type_name;
        return f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM ? "enum" : "message";
    default: return "unknown type";
    }
}

/* F's type as written in the .proto file: "double", "healthsignals.v1.Scope", "map<string, string>". */
static void describe_type(const schema *s, const field_desc *f, char *buf, size_t size)
{
    const message_desc *entry = map_entry_of(s, f);
    if (entry == NULL) {
        snprintf(buf, size, "%s", plain_type(f));
        return;
    }
    const field_desc *key = field_by_number(entry, 1), *value = field_by_number(entry, 2);
    snprintf(buf, size, "map<%s, %s>", key != NULL ? plain_type(key) : "?",
             value != NULL ? plain_type(value) : "?");
}

/* The label of F, with map fields (repeated entries on the wire, objects in JSON) told apart. */
static const char *describe_label(const schema *s, const field_desc *f)
{
    if (map_entry_of(s, f) != NULL)
        return "map";
    switch (f->label) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REQUIRED: return "required";
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED: return "repeated";
    default: return "optional";
    }
}

/* Which oneof a field belongs to. A presence wrapper (`oneof _volume { int64 volume = 6; }`) and
 * proto3 `optional` (a synthetic oneof, also named "_volume") are one and the same. */
typedef enum { MEMBER_NONE, MEMBER_PRESENCE, MEMBER_ONEOF } member_kind;

typedef struct membership {
    member_kind kind;
    const char *oneof; /* the oneof's name unless MEMBER_NONE; borrowed from the set */
} membership;

static membership membership_of(const message_desc *m, const field_desc *f)
{
    membership none = {MEMBER_NONE, NULL};
    if (!f->has_oneof_index || f->oneof_index < 0 || (size_t)f->oneof_index >= m->n_oneof_decl)
        return none;
    const char *oneof = str(m->oneof_decl[f->oneof_index]->name);
    size_t members = 0;
    for (size_t i = 0; i < m->n_field; i++)
        members += m->field[i]->has_oneof_index && m->field[i]->oneof_index == f->oneof_index;
    bool wrapper = members == 1 && oneof[0] == '_' && strcmp(oneof + 1, str(f->name)) == 0;
    bool presence = wrapper || (f->has_proto3_optional && f->proto3_optional);
    membership in = {presence ? MEMBER_PRESENCE : MEMBER_ONEOF, oneof};
    return in;
}

static bool membership_equal(membership a, membership b)
{
    return a.kind == b.kind && (a.kind != MEMBER_ONEOF || strcmp(a.oneof, b.oneof) == 0);
}

static void describe_membership(membership mb, char *buf, size_t size)
{
    switch (mb.kind) {
    case MEMBER_NONE: snprintf(buf, size, "no oneof"); break;
    case MEMBER_PRESENCE: snprintf(buf, size, "presence oneof '%s' (optional)", mb.oneof); break;
    case MEMBER_ONEOF: snprintf(buf, size, "oneof '%s'", mb.oneof); break;
    }
}

/* --- the checks ---------------------------------------------------------------------------------------- */

/* BF, a field of the baseline message NAME, against the current message CM. */
static void check_field(check_run *run, const char *name, const message_desc *bm, const field_desc *bf,
                        const message_desc *cm)
{
    const char *field = str(bf->name);
    const int number = bf->number;
    const field_desc *cf = field_by_number(cm, number);
    const field_desc *same_name = field_by_name(cm, field);
    run->fields++;

    if (cf == NULL || strcmp(str(cf->name), field) != 0) {
        if (cf == NULL && same_name == NULL)
            problem(run, "%s.%s (%d): removed", name, field, number);
        else if (cf == NULL)
            problem(run, "%s.%s (%d): renumbered to %d", name, field, number, same_name->number);
        else if (same_name == NULL)
            problem(run, "%s.%s (%d): renamed to '%s'", name, field, number, str(cf->name));
        else
            problem(run, "%s.%s (%d): renumbered to %d, and number %d reused by '%s'", name, field, number,
                    same_name->number, number, str(cf->name));
        return;
    }

    char before[DESCRIPTION_MAX], after[DESCRIPTION_MAX];
    const char *blabel = describe_label(run->baseline, bf), *clabel = describe_label(run->current, cf);
    describe_type(run->baseline, bf, before, sizeof before);
    describe_type(run->current, cf, after, sizeof after);
    bool bmap = strcmp(blabel, "map") == 0, cmap = strcmp(clabel, "map") == 0;
    if (bmap != cmap) {
        /* One change, not two: "map<string, string>" to "repeated healthsignals.v1.Alert.LabelsEntry". */
        problem(run, "%s.%s (%d): changed from %s%s%s to %s%s%s", name, field, number, bmap ? "" : blabel,
                bmap ? "" : " ", before, cmap ? "" : clabel, cmap ? "" : " ", after);
    } else {
        if (strcmp(blabel, clabel) != 0)
            problem(run, "%s.%s (%d): label changed from %s to %s", name, field, number, blabel, clabel);
        if (strcmp(before, after) != 0)
            problem(run, "%s.%s (%d): type changed from %s to %s", name, field, number, before, after);
    }

    membership bmem = membership_of(bm, bf), cmem = membership_of(cm, cf);
    if (!membership_equal(bmem, cmem)) {
        describe_membership(bmem, before, sizeof before);
        describe_membership(cmem, after, sizeof after);
        if (bmem.kind == MEMBER_NONE)
            problem(run, "%s.%s (%d): moved into %s", name, field, number, after);
        else if (cmem.kind == MEMBER_NONE)
            problem(run, "%s.%s (%d): moved out of %s", name, field, number, before);
        else
            problem(run, "%s.%s (%d): moved from %s to %s", name, field, number, before, after);
    }

    if (bf->json_name != NULL && cf->json_name != NULL && strcmp(bf->json_name, cf->json_name) != 0)
        problem(run, "%s.%s (%d): JSON name changed from '%s' to '%s'", name, field, number, bf->json_name,
                cf->json_name);
}

/* Numbers and names the baseline reserved must stay unused (a field that was removed before the baseline). */
static void check_message_reserved(check_run *run, const char *name, const message_desc *bm,
                                   const message_desc *cm)
{
    for (size_t i = 0; i < cm->n_field; i++) {
        const field_desc *cf = cm->field[i];
        for (size_t r = 0; r < bm->n_reserved_range; r++) {
            const Google__Protobuf__DescriptorProto__ReservedRange *range = bm->reserved_range[r];
            if (cf->number >= range->start && cf->number < range->end) /* end is exclusive */
                problem(run, "%s.%s (%d): number %d is reserved in the baseline", name, str(cf->name),
                        cf->number, cf->number);
        }
        for (size_t r = 0; r < bm->n_reserved_name; r++)
            if (strcmp(str(bm->reserved_name[r]), str(cf->name)) == 0)
                problem(run, "%s.%s (%d): name '%s' is reserved in the baseline", name, str(cf->name),
                        cf->number, str(cf->name));
    }
}

static void check_message(check_run *run, const schema_def *base)
{
    const schema_def *cur = schema_find(run->current, base->full_name);
    run->messages++;
    if (cur == NULL || cur->message == NULL) {
        problem(run, "%s: message removed", base->full_name);
        return;
    }
    for (size_t i = 0; i < base->message->n_field; i++)
        check_field(run, base->full_name, base->message, base->message->field[i], cur->message);
    check_message_reserved(run, base->full_name, base->message, cur->message);
}

static const enum_value_desc *value_by_name(const enum_desc *e, const char *name)
{
    for (size_t i = 0; i < e->n_value; i++)
        if (strcmp(str(e->value[i]->name), name) == 0)
            return e->value[i];
    return NULL;
}

static const enum_value_desc *value_by_number(const enum_desc *e, int32_t number)
{
    for (size_t i = 0; i < e->n_value; i++)
        if (e->value[i]->number == number)
            return e->value[i];
    return NULL;
}

/* Enum values are identified by name in JSON and by number on the wire: both must stay paired. */
static void check_enum(check_run *run, const schema_def *base)
{
    const schema_def *cur = schema_find(run->current, base->full_name);
    run->enums++;
    if (cur == NULL || cur->enumeration == NULL) {
        problem(run, "%s: enum removed", base->full_name);
        return;
    }
    const enum_desc *be = base->enumeration, *ce = cur->enumeration;
    for (size_t i = 0; i < be->n_value; i++) {
        const enum_value_desc *bv = be->value[i];
        const enum_value_desc *cv = value_by_name(ce, str(bv->name));
        run->values++;
        if (cv != NULL && cv->number != bv->number) {
            problem(run, "%s.%s (%d): renumbered to %d", base->full_name, str(bv->name), bv->number,
                    cv->number);
        } else if (cv == NULL) {
            const enum_value_desc *same_number = value_by_number(ce, bv->number);
            if (same_number != NULL)
                problem(run, "%s.%s (%d): renamed to '%s'", base->full_name, str(bv->name), bv->number,
                        str(same_number->name));
            else
                problem(run, "%s.%s (%d): removed", base->full_name, str(bv->name), bv->number);
        }
    }
    for (size_t i = 0; i < ce->n_value; i++) {
        const enum_value_desc *cv = ce->value[i];
        for (size_t r = 0; r < be->n_reserved_range; r++) {
            const Google__Protobuf__EnumDescriptorProto__EnumReservedRange *range = be->reserved_range[r];
            if (cv->number >= range->start && cv->number <= range->end) /* end is inclusive for enums */
                problem(run, "%s.%s (%d): number %d is reserved in the baseline", base->full_name,
                        str(cv->name), cv->number, cv->number);
        }
        for (size_t r = 0; r < be->n_reserved_name; r++)
            if (strcmp(str(be->reserved_name[r]), str(cv->name)) == 0)
                problem(run, "%s.%s (%d): name '%s' is reserved in the baseline", base->full_name,
                        str(cv->name), cv->number, str(cv->name));
    }
}

static const file_desc *file_by_name(const descriptor_set *set, const char *name)
{
    for (size_t i = 0; i < set->n_file; i++)
        if (strcmp(str(set->file[i]->name), name) == 0)
            return set->file[i];
    return NULL;
}

/* One file option that says where generated code goes, as text ("" when unset). */
typedef struct code_option {
    const char *name;
    const char *(*get)(const Google__Protobuf__FileOptions *o);
} code_option;

static const char *opt_go_package(const Google__Protobuf__FileOptions *o)
{
    return str(o->go_package);
}
static const char *opt_java_package(const Google__Protobuf__FileOptions *o)
{
    return str(o->java_package);
}
static const char *opt_java_outer_classname(const Google__Protobuf__FileOptions *o)
{
    return str(o->java_outer_classname);
}
static const char *opt_java_multiple_files(const Google__Protobuf__FileOptions *o)
{
    return !o->has_java_multiple_files ? "" : o->java_multiple_files ? "true" : "false";
}
static const char *opt_csharp_namespace(const Google__Protobuf__FileOptions *o)
{
    return str(o->csharp_namespace);
}
static const char *opt_objc_class_prefix(const Google__Protobuf__FileOptions *o)
{
    return str(o->objc_class_prefix);
}
static const char *opt_php_namespace(const Google__Protobuf__FileOptions *o)
{
    return str(o->php_namespace);
}
static const char *opt_ruby_package(const Google__Protobuf__FileOptions *o)
{
    return str(o->ruby_package);
}

/* The file options other systems' generated code depends on: changing one moves the generated types to
 * another package, class or namespace, which breaks every program that imports them although the wire
 * format is unchanged. An option the baseline does not set may be added. */
static void check_file_options(check_run *run)
{
    static const code_option options[] = {
        {"go_package", opt_go_package},
        {"java_package", opt_java_package},
        {"java_outer_classname", opt_java_outer_classname},
        {"java_multiple_files", opt_java_multiple_files},
        {"csharp_namespace", opt_csharp_namespace},
        {"objc_class_prefix", opt_objc_class_prefix},
        {"php_namespace", opt_php_namespace},
        {"ruby_package", opt_ruby_package},
    };
    /* The initialiser sets every field, deprecated ones (java_generate_equals_and_hash) included, which
     * clang reports; nothing here reads them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    static const Google__Protobuf__FileOptions none = GOOGLE__PROTOBUF__FILE_OPTIONS__INIT;
#pragma GCC diagnostic pop
    for (size_t i = 0; i < run->baseline->set->n_file; i++) {
        const file_desc *bf = run->baseline->set->file[i];
        const file_desc *cf = file_by_name(run->current->set, str(bf->name));
        if (!is_our_package(str(bf->package)) || cf == NULL)
            continue; /* a removed file shows as its removed messages and enums */
        const Google__Protobuf__FileOptions *bo = bf->options ? bf->options : &none;
        const Google__Protobuf__FileOptions *co = cf->options ? cf->options : &none;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++) {
            const char *was = options[k].get(bo), *now = options[k].get(co);
            if (*was && strcmp(was, now) != 0)
                problem(run, "%s: option %s changed from '%s' to '%s' (generated code moves)", str(bf->name),
                        options[k].name, was, now);
        }
    }
}

/* Every healthsignals.* message and enum of the baseline, in order of full name. Map entries are checked as
 * part of their map field's type. */
static void check_schema(check_run *run)
{
    for (size_t i = 0; i < run->baseline->n_defs; i++) {
        const schema_def *def = &run->baseline->defs[i];
        if (!is_our_package(def->package))
            continue;
        if (def->message != NULL && !is_map_entry(def->message))
            check_message(run, def);
        else if (def->enumeration != NULL)
            check_enum(run, def);
    }
}

int main(int argc, char **argv)
{
    static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            usage();
            return EXIT_COMPATIBLE;
        }
        fprintf(stderr, "usage: hs-schema-check BASELINE.desc CURRENT.desc (see --help)\n");
        return EXIT_USAGE;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: hs-schema-check BASELINE.desc CURRENT.desc (see --help)\n");
        return EXIT_USAGE;
    }
    const char *baseline_path = argv[optind], *current_path = argv[optind + 1];

    schema baseline, current;
    bool loaded = schema_load(&baseline, baseline_path);
    loaded = schema_load(&current, current_path) && loaded;
    int status = EXIT_USAGE;
    if (loaded) {
        check_run run = {.baseline = &baseline, .current = &current};
        check_schema(&run);
        check_file_options(&run);
        if (run.messages + run.enums == 0) {
            /* An empty baseline would pass everything: that is a broken baseline, not a compatible schema. */
            fprintf(stderr, "hs-schema-check: %s: no " OUR_PACKAGE ".* messages or enums\n", baseline_path);
        } else {
            printf("hs-schema-check: %zu breaking change%s against %s (%zu messages, %zu fields, %zu enums, "
                   "%zu values checked)\n",
                   run.problems, run.problems == 1 ? "" : "s", baseline_path, run.messages, run.fields,
                   run.enums, run.values);
            status = run.problems == 0 ? EXIT_COMPATIBLE : EXIT_BREAKING;
        }
    }
    schema_free(&baseline);
    schema_free(&current);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "hs-schema-check: writing the report: %s\n", strerror(errno));
        status = EXIT_USAGE;
    }
    return status;
}
