/* The schema binder: turns a YAML tree into typed C structs described by tables of keys, so that
 * every section of every component is validated the same way and every error names
 * file:line:col, what is wrong and what was expected. Defaults are written as they would be in a
 * file (`"30s"`, `"16k"`) and parsed by the same code, so docs, defaults and parsing agree.
 *
 * A section is a struct; each key names a field by offset and type. Storage per type:
 *   CFG_BOOL bool, CFG_INT / CFG_DURATION (ms) / CFG_SIZE (bytes) int64_t, CFG_STRING const char *,
 *   CFG_ENUM int (index into choices), CFG_ADDR struct net_addr, CFG_REDIS_URL struct redis_url,
 *   CFG_SECTION the nested struct, CFG_LIST struct cfg_list of elem_type items,
 *   CFG_JSON struct cfg_json: a mapping kept whole as JSON text, for a component that validates it
 *   itself (gantry-core's task definitions in ECS's own format). */
#ifndef GANTRY_CONFIG_SCHEMA_H
#define GANTRY_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "config/yaml_tree.h"

enum cfg_type {
    CFG_BOOL,
    CFG_INT,
    CFG_STRING,
    CFG_DURATION,
    CFG_SIZE,
    CFG_ENUM,
    CFG_ADDR,
    CFG_REDIS_URL,
    CFG_SECTION,
    CFG_LIST,
    CFG_JSON,
};

struct cfg_list {
    void *items;
    size_t count;
};

struct cfg_ctx;
struct cfg_section;

/* Where a section was written, for errors found after all files are merged (a reference to a
 * target group defined in another file, say). A section with `has_origin` keeps one as its first
 * member. */
struct cfg_origin {
    const char *file;
    int line, col;
};

/* A CFG_JSON value: YAML plain scalars become JSON numbers, booleans and null where they read as
 * such, every other scalar a string. */
struct cfg_json {
    const char *text; /* compact JSON, NUL-terminated */
    struct cfg_origin origin;
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *def;  /* default as written in a file; NULL: zero, empty or none */
    int64_t min, max; /* CFG_INT, CFG_DURATION, CFG_SIZE; CFG_STRING: max length; 0,0: no bound */
    const char *const *choices;        /* CFG_ENUM, NULL-terminated */
    const struct cfg_section *section; /* CFG_SECTION; CFG_LIST of sections */
    enum cfg_type elem_type;           /* CFG_LIST */
    size_t max_items;                  /* CFG_LIST; 0: no bound */
    const char *help;
};

struct cfg_section {
    const char *name;
    const struct cfg_key *keys;
    size_t n_keys;
    size_t size;
    /* Cross-key rules, after the keys are bound; report with cfg_error_at_key(). path names the
     * section in messages ("lb.listeners[0]"). */
    void (*check)(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path);
    bool has_origin;
};

#define CFG_KEYS(keys) (keys), (sizeof(keys) / sizeof((keys)[0]))

enum { CFG_MAX_ERRORS = 20, CFG_ERROR_LEN = 512 };

struct cfg_errors {
    char messages[CFG_MAX_ERRORS][CFG_ERROR_LEN];
    size_t count;   /* in messages */
    size_t dropped; /* past CFG_MAX_ERRORS */
    size_t total;   /* count + dropped: what "did this part add an error?" compares */
};

struct cfg_ctx {
    struct arena *arena;
    const char *file;
    struct cfg_errors *errors;
};

/* Fills obj with the section's defaults; returns -1 (with errors) when a default does not parse,
 * which is a bug caught by the unit tests. */
int cfg_apply_defaults(struct cfg_ctx *ctx, const struct cfg_section *section, void *obj);
/* Binds a map node onto obj, over what is already there (defaults or an earlier file). */
void cfg_bind_section(struct cfg_ctx *ctx, const struct cfg_section *section, void *obj,
                      const struct ynode *map, const char *path);
/* Reads and binds a whole file; errors say "file:line:col: ...". */
int cfg_bind_file(struct cfg_ctx *ctx, const struct cfg_section *root, void *obj);
/* The same for text in memory; ctx->file names it in the errors. */
int cfg_bind_text(struct cfg_ctx *ctx, const struct cfg_section *root, void *obj, const char *text,
                  size_t len);

void cfg_error(struct cfg_ctx *ctx, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_error_at_key(struct cfg_ctx *ctx, const struct ynode *map, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The key node, or its value node, of `key` in a map node; NULL when absent. */
const struct ynode *cfg_find_key(const struct ynode *map, const char *key);
const struct ynode *cfg_find_value(const struct ynode *map, const char *key);
void cfg_error_at(struct cfg_ctx *ctx, const struct cfg_origin *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* What a value of the key must look like: "a duration such as 500ms, 30s or 5m, from 1s to 1h". */
const char *cfg_expected(const struct cfg_key *key, char *out, size_t size);
/* The value of a key in obj, formatted as in a file (for docs and `gantry config`). */
const char *cfg_format_value(const struct cfg_key *key, const void *obj, char *out, size_t size);
const char *cfg_type_name(const struct cfg_key *key);
/* The size of one item of a CFG_LIST key's items array. */
size_t cfg_list_item_size(const struct cfg_key *key);

#endif
