#include "config/schema.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/net.h"
#include "config/values.h"

static void add_error(struct cfg_errors *errors, const char *prefix, const char *fmt, va_list ap)
{
    errors->total++;
    if (errors->count == CFG_MAX_ERRORS) {
        errors->dropped++;
        return;
    }
    char *msg = errors->messages[errors->count++];
    int n = snprintf(msg, CFG_ERROR_LEN, "%s", prefix);
    if (n >= 0 && n < CFG_ERROR_LEN)
        vsnprintf(msg + n, CFG_ERROR_LEN - (size_t)n, fmt, ap);
}

static void add_error_text(struct cfg_errors *errors, const char *prefix, const char *text)
{
    errors->total++;
    if (errors->count == CFG_MAX_ERRORS) {
        errors->dropped++;
        return;
    }
    char *msg = errors->messages[errors->count++];
    if (snprintf(msg, CFG_ERROR_LEN, "%s%s", prefix, text) >= CFG_ERROR_LEN)
        msg[CFG_ERROR_LEN - 2] = '~'; /* marks a cut message */
}

void cfg_error(struct cfg_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
    char prefix[300];
    if (at)
        snprintf(prefix, sizeof prefix, "%s:%d:%d: ", ctx->file, at->line, at->col);
    else
        snprintf(prefix, sizeof prefix, "%s: ", ctx->file);
    va_list ap;
    va_start(ap, fmt);
    add_error(ctx->errors, prefix, fmt, ap);
    va_end(ap);
}

void cfg_error_at(struct cfg_ctx *ctx, const struct cfg_origin *at, const char *fmt, ...)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", at->file, at->line, at->col);
    va_list ap;
    va_start(ap, fmt);
    add_error(ctx->errors, prefix, fmt, ap);
    va_end(ap);
}

static const struct ynode *const *find_pair(const struct ynode *map, const char *key)
{
    for (size_t i = 0; map && map->kind == YNODE_MAP && i + 1 < map->n_items; i += 2)
        if (map->items[i]->kind == YNODE_SCALAR && strcmp(map->items[i]->value, key) == 0)
            return (const struct ynode *const *)&map->items[i];
    return NULL;
}

const struct ynode *cfg_find_key(const struct ynode *map, const char *key)
{
    const struct ynode *const *pair = find_pair(map, key);
    return pair ? pair[0] : NULL;
}

const struct ynode *cfg_find_value(const struct ynode *map, const char *key)
{
    const struct ynode *const *pair = find_pair(map, key);
    return pair ? pair[1] : NULL;
}

void cfg_error_at_key(struct cfg_ctx *ctx, const struct ynode *map, const char *key,
                      const char *fmt, ...)
{
    const struct ynode *at = cfg_find_key(map, key);
    if (!at)
        at = map;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", ctx->file, at ? at->line : 1, at ? at->col : 1);
    va_list ap;
    va_start(ap, fmt);
    add_error(ctx->errors, prefix, fmt, ap);
    va_end(ap);
}

const char *cfg_type_name(const struct cfg_key *key)
{
    static const char *const names[] = {
        [CFG_BOOL] = "bool",         [CFG_INT] = "integer",         [CFG_STRING] = "string",
        [CFG_DURATION] = "duration", [CFG_SIZE] = "size",           [CFG_ENUM] = "enum",
        [CFG_ADDR] = "address",      [CFG_REDIS_URL] = "Redis URL", [CFG_SECTION] = "section",
        [CFG_LIST] = "list",         [CFG_JSON] = "mapping",
    };
    return names[key->type];
}

static bool has_bounds(const struct cfg_key *key)
{
    return key->min != 0 || key->max != 0;
}

static const char *format_bound(const struct cfg_key *key, int64_t v, char *out, size_t size)
{
    if (key->type == CFG_DURATION)
        return value_format_duration(v, out, size);
    if (key->type == CFG_SIZE)
        return value_format_size(v, out, size);
    snprintf(out, size, "%lld", (long long)v);
    return out;
}

const char *cfg_expected(const struct cfg_key *key, char *out, size_t size)
{
    char lo[32], hi[32], range[80] = "";
    if (has_bounds(key) && key->type != CFG_STRING)
        snprintf(range, sizeof range, "%s from %s to %s", key->type == CFG_INT ? "" : ",",
                 format_bound(key, key->min, lo, sizeof lo),
                 format_bound(key, key->max, hi, sizeof hi));
    switch (key->type) {
    case CFG_BOOL:
        snprintf(out, size, "true or false");
        break;
    case CFG_INT:
        snprintf(out, size, "an integer%s", range);
        break;
    case CFG_STRING:
        if (key->max)
            snprintf(out, size, "a string of at most %lld characters", (long long)key->max);
        else
            snprintf(out, size, "a string");
        break;
    case CFG_DURATION:
        snprintf(out, size, "a duration such as 500ms, 30s or 5m%s", range);
        break;
    case CFG_SIZE:
        snprintf(out, size, "a size such as 512, 16k or 1m%s", range);
        break;
    case CFG_ENUM: {
        size_t used = (size_t)snprintf(out, size, "one of:");
        for (size_t i = 0; key->choices[i] && used < size; i++)
            used +=
                (size_t)snprintf(out + used, size - used, "%s %s", i ? "," : "", key->choices[i]);
        break;
    }
    case CFG_ADDR:
        snprintf(out, size, "an address such as 127.0.0.1:8080, [::1]:80 or unix:/path");
        break;
    case CFG_REDIS_URL:
        snprintf(out, size, "a Redis URL such as redis://127.0.0.1:6379 or unix:/path/redis.sock");
        break;
    case CFG_SECTION:
        snprintf(out, size, "a mapping of keys");
        break;
    case CFG_LIST:
        snprintf(out, size, "a list");
        break;
    case CFG_JSON:
        snprintf(out, size, "a mapping (YAML or JSON)");
        break;
    }
    return out;
}

static const char *section_keys(const struct cfg_section *section, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < section->n_keys && used < size; i++)
        used +=
            (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", section->keys[i].name);
    return out;
}

/* Parses one scalar of `type` into dst. Returns 0, or -1 with a detail (possibly empty) in why. */
static int parse_scalar(const struct cfg_key *key, enum cfg_type type, struct cfg_ctx *ctx,
                        const char *text, void *dst, char *why, size_t whylen)
{
    int64_t v;
    why[0] = '\0';
    switch (type) {
    case CFG_BOOL:
        return value_parse_bool(text, dst);
    case CFG_INT:
    case CFG_DURATION:
    case CFG_SIZE:
        if ((type == CFG_INT        ? value_parse_int(text, &v)
             : type == CFG_DURATION ? value_parse_duration_ms(text, &v)
                                    : value_parse_size(text, &v)) < 0)
            return -1;
        if (has_bounds(key) && (v < key->min || v > key->max)) {
            snprintf(why, whylen, "out of range");
            return -1;
        }
        *(int64_t *)dst = v;
        return 0;
    case CFG_STRING: {
        if (key->max && (int64_t)strlen(text) > key->max) {
            snprintf(why, whylen, "too long");
            return -1;
        }
        char *copy = arena_strdup(ctx->arena, text);
        if (!copy)
            return -1;
        *(const char **)dst = copy;
        return 0;
    }
    case CFG_ENUM:
        for (int i = 0; key->choices[i]; i++) {
            if (strcmp(text, key->choices[i]) == 0) {
                *(int *)dst = i;
                return 0;
            }
        }
        return -1;
    case CFG_ADDR:
        return net_addr_parse(text, dst, why, whylen);
    case CFG_REDIS_URL:
        if (!*text) { /* empty: no Redis configured */
            memset(dst, 0, sizeof(struct redis_url));
            return 0;
        }
        return value_parse_redis_url(text, dst, why, whylen);
    default:
        return -1;
    }
}

static const char *describe_kind(const struct ynode *n)
{
    return n->kind == YNODE_MAP ? "a mapping" : n->kind == YNODE_SEQ ? "a list" : "a single value";
}

static void bind_value(struct cfg_ctx *ctx, const struct cfg_key *key, enum cfg_type type,
                       void *dst, const struct ynode *node, const char *path);

static json_t *plain_scalar_json(const char *text)
{
    int64_t v;
    if (!*text || strcmp(text, "~") == 0 || strcmp(text, "null") == 0)
        return json_null();
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
        return json_boolean(text[0] == 't');
    if (value_parse_int(text, &v) == 0)
        return json_integer(v);
    char *end;
    errno = 0;
    double d = strtod(text, &end);
    if (*end == '\0' && errno == 0 && (isdigit((unsigned char)text[0]) || text[0] == '-'))
        return json_real(d);
    return json_string(text);
}

static json_t *ynode_to_json(const struct ynode *n)
{
    if (n->kind == YNODE_SCALAR)
        return n->plain ? plain_scalar_json(n->value) : json_string(n->value);
    json_t *out = n->kind == YNODE_MAP ? json_object() : json_array();
    for (size_t i = 0; out && i < n->n_items; i += n->kind == YNODE_MAP ? 2 : 1) {
        if (n->kind == YNODE_SEQ) {
            json_array_append_new(out, ynode_to_json(n->items[i]));
            continue;
        }
        if (i + 1 >= n->n_items || n->items[i]->kind != YNODE_SCALAR)
            continue; /* refused by the caller before it gets here */
        json_object_set_new(out, n->items[i]->value, ynode_to_json(n->items[i + 1]));
    }
    return out;
}

static bool has_complex_key(const struct ynode *n)
{
    if (n->kind == YNODE_SCALAR)
        return false;
    for (size_t i = 0; i < n->n_items; i++) {
        if (n->kind == YNODE_MAP && i % 2 == 0 && n->items[i]->kind != YNODE_SCALAR)
            return true;
        if (has_complex_key(n->items[i]))
            return true;
    }
    return false;
}

static void bind_json(struct cfg_ctx *ctx, struct cfg_json *dst, const struct ynode *node,
                      const char *path)
{
    if (node->kind != YNODE_MAP) {
        cfg_error(ctx, node, "'%s' must be a mapping, not %s", path, describe_kind(node));
        return;
    }
    if (has_complex_key(node)) {
        cfg_error(ctx, node, "'%s': keys must be plain names", path);
        return;
    }
    json_t *doc = ynode_to_json(node);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    dst->text = text ? arena_strdup(ctx->arena, text) : NULL;
    free(text);
    if (!dst->text) {
        cfg_error(ctx, node, "'%s': out of memory", path);
        return;
    }
    dst->origin.file = arena_strdup(ctx->arena, ctx->file);
    dst->origin.line = node->line;
    dst->origin.col = node->col;
}

size_t cfg_list_item_size(const struct cfg_key *key)
{
    switch (key->elem_type) {
    case CFG_SECTION:
        return key->section->size;
    case CFG_ADDR:
        return sizeof(struct net_addr);
    case CFG_STRING:
        return sizeof(const char *);
    case CFG_JSON:
        return sizeof(struct cfg_json);
    default:
        return sizeof(int64_t);
    }
}

static void bind_list(struct cfg_ctx *ctx, const struct cfg_key *key, struct cfg_list *list,
                      const struct ynode *node, const char *path)
{
    char expected[256];
    list->items = NULL;
    list->count = 0;
    if (ynode_is_null(node))
        return;
    if (node->kind != YNODE_SEQ) {
        cfg_error(ctx, node, "'%s' must be a list, not %s", path, describe_kind(node));
        return;
    }
    if (key->max_items && node->n_items > key->max_items) {
        cfg_error(ctx, node, "'%s' has %zu items (expected at most %zu)", path, node->n_items,
                  key->max_items);
        return;
    }
    size_t elem_size = cfg_list_item_size(key);
    if (key->elem_type == CFG_BOOL || key->elem_type == CFG_ENUM ||
        key->elem_type == CFG_REDIS_URL) {
        cfg_error(ctx, node, "'%s': lists of %s are not supported (expected %s)", path,
                  cfg_type_name(key), cfg_expected(key, expected, sizeof expected));
        return;
    }
    char *items = arena_alloc(ctx->arena, elem_size * (node->n_items ? node->n_items : 1));
    if (!items)
        return;
    for (size_t i = 0; i < node->n_items; i++) {
        char item_path[256];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        void *dst = items + i * elem_size;
        if (key->elem_type == CFG_SECTION)
            cfg_apply_defaults(ctx, key->section, dst);
        bind_value(ctx, key, key->elem_type, dst, node->items[i], item_path);
    }
    list->items = items;
    list->count = node->n_items;
}

static void bind_value(struct cfg_ctx *ctx, const struct cfg_key *key, enum cfg_type type,
                       void *dst, const struct ynode *node, const char *path)
{
    char expected[256], why[160];
    if (type == CFG_SECTION) {
        cfg_bind_section(ctx, key->section, dst, node, path);
        return;
    }
    if (type == CFG_LIST) {
        bind_list(ctx, key, dst, node, path);
        return;
    }
    if (type == CFG_JSON) {
        bind_json(ctx, dst, node, path);
        return;
    }
    struct cfg_key scalar = *key;
    scalar.type = type;
    cfg_expected(&scalar, expected, sizeof expected);
    if (node->kind != YNODE_SCALAR) {
        cfg_error(ctx, node, "'%s' must be a single value, not %s (expected %s)", path,
                  describe_kind(node), expected);
        return;
    }
    if (ynode_is_null(node) && type != CFG_STRING && type != CFG_REDIS_URL) {
        cfg_error(ctx, node, "missing value for '%s' (expected %s)", path, expected);
        return;
    }
    const char *text = ynode_is_null(node) ? "" : node->value;
    if (parse_scalar(&scalar, type, ctx, text, dst, why, sizeof why) == 0)
        return;
    char shown[64]; /* a long value is cut so that the message stays one readable line */
    if (snprintf(shown, sizeof shown, "%s", text) >= (int)sizeof shown)
        memcpy(shown + sizeof shown - 4, "...", 4);
    text = shown;
    if (strcmp(why, "out of range") == 0)
        cfg_error(ctx, node, "value '%s' for '%s' is out of range (expected %s)", text, path,
                  expected);
    else if (why[0])
        cfg_error(ctx, node, "invalid value '%s' for '%s': %s (expected %s)", text, path, why,
                  expected);
    else
        cfg_error(ctx, node, "invalid value '%s' for '%s' (expected %s)", text, path, expected);
}

int cfg_apply_defaults(struct cfg_ctx *ctx, const struct cfg_section *section, void *obj)
{
    size_t before = ctx->errors->total;
    memset(obj, 0, section->size);
    for (size_t i = 0; i < section->n_keys; i++) {
        const struct cfg_key *key = &section->keys[i];
        void *dst = (char *)obj + key->offset;
        char why[160];
        if (key->type == CFG_SECTION) {
            cfg_apply_defaults(ctx, key->section, dst);
        } else if (key->def && key->type != CFG_LIST &&
                   parse_scalar(key, key->type, ctx, key->def, dst, why, sizeof why) < 0) {
            cfg_error(ctx, NULL, "built-in default '%s' of '%s.%s' does not parse", key->def,
                      section->name, key->name);
        }
    }
    return ctx->errors->total == before ? 0 : -1;
}

static const struct cfg_key *lookup_key(const struct cfg_section *section, const char *name)
{
    for (size_t i = 0; i < section->n_keys; i++)
        if (strcmp(section->keys[i].name, name) == 0)
            return &section->keys[i];
    return NULL;
}

static bool is_duplicate(struct cfg_ctx *ctx, const struct ynode *map, size_t i, const char *path)
{
    for (size_t j = 0; j < i; j += 2) {
        if (map->items[j]->kind != YNODE_SCALAR ||
            strcmp(map->items[j]->value, map->items[i]->value) != 0)
            continue;
        if (*path)
            cfg_error(ctx, map->items[i], "duplicate key '%s' in '%s' (first set at line %d)",
                      map->items[i]->value, path, map->items[j]->line);
        else
            cfg_error(ctx, map->items[i], "duplicate section '%s' (first set at line %d)",
                      map->items[i]->value, map->items[j]->line);
        return true;
    }
    return false;
}

void cfg_bind_section(struct cfg_ctx *ctx, const struct cfg_section *section, void *obj,
                      const struct ynode *map, const char *path)
{
    char keys[512];
    if (ynode_is_null(map))
        return;
    if (map->kind != YNODE_MAP) {
        cfg_error(ctx, map, "'%s' must be a mapping of keys, not %s (expected keys: %s)", path,
                  describe_kind(map), section_keys(section, keys, sizeof keys));
        return;
    }
    if (section->has_origin) {
        struct cfg_origin *origin = obj;
        origin->file = arena_strdup(ctx->arena, ctx->file);
        origin->line = map->line;
        origin->col = map->col;
    }
    size_t before = ctx->errors->total;
    for (size_t i = 0; i + 1 < map->n_items; i += 2) {
        const struct ynode *k = map->items[i];
        if (k->kind != YNODE_SCALAR) {
            if (*path)
                cfg_error(ctx, k, "keys in '%s' must be plain names, not %s", path,
                          describe_kind(k));
            else
                cfg_error(ctx, k, "section names must be plain names, not %s", describe_kind(k));
            continue;
        }
        if (is_duplicate(ctx, map, i, path))
            continue;
        const struct cfg_key *key = lookup_key(section, k->value);
        if (!key) {
            if (*path)
                cfg_error(ctx, k, "unknown key '%s' in '%s' (expected one of: %s)", k->value, path,
                          section_keys(section, keys, sizeof keys));
            else
                cfg_error(ctx, k, "unknown section '%s' (expected one of: %s)", k->value,
                          section_keys(section, keys, sizeof keys));
            continue;
        }
        char key_path[256];
        snprintf(key_path, sizeof key_path, "%s%s%s", path, *path ? "." : "", key->name);
        bind_value(ctx, key, key->type, (char *)obj + key->offset, map->items[i + 1], key_path);
    }
    if (section->check && ctx->errors->total == before)
        section->check(ctx, obj, map, path);
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read the file: %s", strerror(errno));
        return NULL;
    }
    char *text = malloc(YAML_MAX_FILE_SIZE + 1);
    errno = 0;
    size_t n = text ? fread(text, 1, YAML_MAX_FILE_SIZE + 1, f) : 0;
    int read_errno = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (!text || read_errno) {
        snprintf(err, errlen, "cannot read the file: %s",
                 text ? strerror(read_errno) : "out of memory");
        free(text);
        return NULL;
    }
    if (n > YAML_MAX_FILE_SIZE) {
        snprintf(err, errlen, "file larger than %d bytes", YAML_MAX_FILE_SIZE);
        free(text);
        return NULL;
    }
    *len = n;
    return text;
}

int cfg_bind_file(struct cfg_ctx *ctx, const struct cfg_section *root, void *obj)
{
    char err[CFG_ERROR_LEN];
    size_t len;
    char *text = read_file(ctx->file, &len, err, sizeof err);
    if (!text) {
        cfg_error(ctx, NULL, "%s", err);
        return -1;
    }
    int rc = cfg_bind_text(ctx, root, obj, text, len);
    free(text);
    return rc;
}

int cfg_bind_text(struct cfg_ctx *ctx, const struct cfg_section *root, void *obj, const char *text,
                  size_t len)
{
    size_t before = ctx->errors->total;
    char err[CFG_ERROR_LEN];
    struct ynode *tree = yaml_tree_parse(ctx->arena, text, len, err, sizeof err);
    if (!tree) {
        char prefix[300]; /* err starts with "line:col: " */
        snprintf(prefix, sizeof prefix, "%s:", ctx->file);
        add_error_text(ctx->errors, prefix, err);
        return -1;
    }
    if (tree->kind != YNODE_MAP && !ynode_is_null(tree)) {
        char keys[512];
        cfg_error(ctx, tree, "the file must be a mapping of sections, not %s (expected: %s)",
                  describe_kind(tree), section_keys(root, keys, sizeof keys));
        return -1;
    }
    cfg_bind_section(ctx, root, obj, tree, "");
    return ctx->errors->total == before ? 0 : -1;
}

const char *cfg_format_value(const struct cfg_key *key, const void *obj, char *out, size_t size)
{
    const void *src = (const char *)obj + key->offset;
    char addr[NET_ADDR_TEXT_MAX];
    switch (key->type) {
    case CFG_BOOL:
        snprintf(out, size, "%s", *(const bool *)src ? "true" : "false");
        break;
    case CFG_INT:
        snprintf(out, size, "%lld", (long long)*(const int64_t *)src);
        break;
    case CFG_STRING:
        snprintf(out, size, "%s", *(const char *const *)src ? *(const char *const *)src : "");
        break;
    case CFG_DURATION:
        value_format_duration(*(const int64_t *)src, out, size);
        break;
    case CFG_SIZE:
        value_format_size(*(const int64_t *)src, out, size);
        break;
    case CFG_ENUM:
        snprintf(out, size, "%s", key->choices[*(const int *)src]);
        break;
    case CFG_ADDR:
        snprintf(out, size, "%s",
                 ((const struct net_addr *)src)->len ? net_addr_format(src, addr, sizeof addr)
                                                     : "");
        break;
    case CFG_REDIS_URL:
        value_format_redis_url(src, out, size);
        break;
    case CFG_SECTION:
    case CFG_LIST:
        snprintf(out, size, "%s", "");
        break;
    case CFG_JSON:
        snprintf(out, size, "%s",
                 ((const struct cfg_json *)src)->text ? ((const struct cfg_json *)src)->text
                                                      : "{}");
        break;
    }
    return out;
}
