#include "cli/config_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/daemon.h"
#include "config/config.h"

enum { VALUE_MAX = 512, PATH_MAX_LEN = 256 };

/* A key describing one item of a list, so cfg_format_value() can format it. */
static struct cfg_key item_key(const struct cfg_key *list)
{
    struct cfg_key k = *list;
    k.type = list->elem_type;
    k.offset = 0;
    return k;
}

/* --- gantry config: YAML --- */

static void print_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* Strings and addresses are quoted: "[::1]:80" or "*:8080" would not read back as plain YAML. */
static bool needs_quotes(enum cfg_type type)
{
    return type == CFG_STRING || type == CFG_ADDR || type == CFG_REDIS_URL;
}

static void print_scalar(FILE *out, const struct cfg_key *key, const void *obj)
{
    char value[VALUE_MAX];
    cfg_format_value(key, obj, value, sizeof value);
    if (needs_quotes(key->type))
        print_quoted(out, value);
    else
        fputs(value, out);
}

static void print_section(FILE *out, const struct cfg_section *s, const void *obj, int indent,
                          bool list_item);

/* The rest of the line "key:" (the caller wrote what precedes it), then the items, their dashes
 * two columns right of the key's column `col`. */
static void print_list(FILE *out, const struct cfg_key *key, const struct cfg_list *list, int col)
{
    if (list->count == 0) {
        fprintf(out, "%s: []\n", key->name);
        return;
    }
    fprintf(out, "%s:\n", key->name);
    struct cfg_key item = item_key(key);
    for (size_t i = 0; i < list->count; i++) {
        const char *obj = (const char *)list->items + i * cfg_list_item_size(key);
        if (key->elem_type == CFG_SECTION) {
            print_section(out, key->section, obj, col + 4, true);
            continue;
        }
        if (key->elem_type == CFG_JSON) { /* JSON is YAML's flow style: it reads back as is */
            fprintf(out, "%*s- %s\n", col + 2, "", ((const struct cfg_json *)obj)->text);
            continue;
        }
        fprintf(out, "%*s- ", col + 2, "");
        print_scalar(out, &item, obj);
        fputc('\n', out);
    }
}

/* Keys at column `col`; a list item's first key is preceded by "- " (YAML style). */
static void print_section(FILE *out, const struct cfg_section *s, const void *obj, int col,
                          bool list_item)
{
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct cfg_key *key = &s->keys[i];
        const void *field = (const char *)obj + key->offset;
        if (list_item)
            fprintf(out, "%*s%s", col - 2, "", i == 0 ? "- " : "  ");
        else
            fprintf(out, "%*s", col, "");
        if (key->type == CFG_SECTION) {
            fprintf(out, "%s:\n", key->name);
            print_section(out, key->section, field, col + 2, false);
        } else if (key->type == CFG_LIST) {
            print_list(out, key, field, col);
        } else if (key->type == CFG_ADDR && !((const struct net_addr *)field)->len) {
            /* No syntax means "no address": leaving the key out is how a file says it. */
            fprintf(out, "# %s: (not set)\n", key->name);
        } else {
            fprintf(out, "%s: ", key->name);
            print_scalar(out, key, obj);
            fputc('\n', out);
        }
    }
}

static void print_yaml(FILE *out, const struct gantry_config *cfg)
{
    const struct cfg_section *root = config_schema();
    for (size_t i = 0; i < root->n_keys; i++) {
        const struct cfg_key *key = &root->keys[i];
        fprintf(out, "%s# %s\n", i ? "\n" : "", key->help ? key->help : key->name);
        if (key->type != CFG_SECTION) { /* the root holds sections today; be ready for more */
            struct cfg_section one = {"", key, 1, sizeof *cfg};
            print_section(out, &one, cfg, 0, false);
            continue;
        }
        fprintf(out, "%s:\n", key->name);
        print_section(out, key->section, (const char *)cfg + key->offset, 2, false);
    }
}

/* --- gantry config --keys --- */

static void print_keys(FILE *out, const struct cfg_section *s, const void *obj, const char *prefix);

static void print_key_line(FILE *out, const struct cfg_key *key, const void *obj, const char *path)
{
    char value[VALUE_MAX];
    if (key->type == CFG_LIST)
        value[0] = '\0';
    else
        cfg_format_value(key, obj, value, sizeof value);
    fprintf(out, "%s\t%s\t%s\t%s\n", path, cfg_type_name(key), value, key->help ? key->help : "");
}

/* The keys of a list's items, as "path[].key", with the defaults an item starts from. */
static void print_item_keys(FILE *out, const struct cfg_key *key, const char *path)
{
    struct arena arena = {0};
    struct cfg_errors errors = {0};
    struct cfg_ctx ctx = {.arena = &arena, .file = "(defaults)", .errors = &errors};
    void *item = arena_alloc(&arena, key->section->size);
    if (item) {
        cfg_apply_defaults(&ctx, key->section, item);
        char item_path[PATH_MAX_LEN];
        snprintf(item_path, sizeof item_path, "%s[]", path);
        print_keys(out, key->section, item, item_path);
    }
    arena_free(&arena);
}

static void print_keys(FILE *out, const struct cfg_section *s, const void *obj, const char *prefix)
{
    for (size_t i = 0; i < s->n_keys; i++) {
        const struct cfg_key *key = &s->keys[i];
        const void *field = (const char *)obj + key->offset;
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key->name);
        if (key->type == CFG_SECTION) {
            print_keys(out, key->section, field, path);
            continue;
        }
        print_key_line(out, key, obj, path);
        if (key->type == CFG_LIST && key->elem_type == CFG_SECTION)
            print_item_keys(out, key, path);
    }
}

/* --- the command --- */

static int on_keys(void *ctx, const struct daemon_option *option, const char *arg)
{
    (void)option;
    (void)arg;
    *(bool *)ctx = true;
    return 0;
}

int config_cmd_main(int argc, char **argv)
{
    static const struct daemon_option options[] = {
        {"keys", false,
         "--keys                one line per key instead: "
         "section.key<TAB>type<TAB>default<TAB>help"},
        {NULL, false, NULL},
    };
    bool keys = false;
    const struct daemon_usage usage = {
        .name = "gantry config",
        .summary = "print the effective configuration as YAML",
        .flags = DAEMON_TAKES_REDIS,
        .extra = "\nEvery section and key, with its value once the files (-c) and overrides are\n"
                 "applied; the output loads back as a configuration file.\n",
        .options = options,
        .on_option = on_keys,
        .ctx = &keys,
    };
    struct daemon_args args;
    int status = daemon_args_parse(argc, argv, &usage, &args);
    if (status != DAEMON_ARGS_GO_ON)
        return status;
    if (args.first_operand < argc) {
        fprintf(stderr, "gantry config: unexpected argument '%s' (see gantry config --help)\n",
                argv[args.first_operand]);
        return 2;
    }
    if (keys) { /* the defaults are what loading no file gives */
        args.n_config_files = 0;
        args.redis_url = args.log_level = NULL;
    }
    struct gantry_config cfg;
    status = config_daemon_start(&cfg, &args, "gantry");
    if (status >= 0)
        return status;
    if (keys)
        print_keys(stdout, config_schema(), &cfg, "");
    else
        print_yaml(stdout, &cfg);
    config_free(&cfg);
    return fflush(stdout) == 0 ? 0 : 1;
}
