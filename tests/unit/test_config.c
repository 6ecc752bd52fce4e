/* The configuration system: the bad-config corpus (each file with the exact message it must
 * produce), defaults, merging of several files, JSON input and the example files. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "config/config.h"

#define BAD_DIR "tests/config/bad"
#define GOOD_DIR "tests/config/good"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char text[64 * 1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* The expectation is the first line "# expect: MESSAGE" of a YAML file, or the whole of
 * FILE.expect for formats without comments (JSON). "{file}" stands for the file's path. */
static void expected_message(const char *path, char *out, size_t size)
{
    char sidecar[600];
    snprintf(sidecar, sizeof sidecar, "%s.expect", path);
    const char *text = slurp(sidecar);
    const char *prefix = "";
    if (!text) {
        text = slurp(path);
        assert_non_null(text);
        prefix = "# expect: ";
        if (strncmp(text, prefix, strlen(prefix)) != 0)
            fail_msg("%s: first line must be '# expect: MESSAGE'", path);
    }
    const char *msg = text + strlen(prefix);
    size_t used = 0;
    for (const char *p = msg; *p && *p != '\n' && used + 1 < size; p++) {
        if (strncmp(p, "{file}", 6) == 0) {
            used += (size_t)snprintf(out + used, size - used, "%s", path);
            p += 5;
            continue;
        }
        out[used++] = *p;
    }
    out[used < size ? used : size - 1] = '\0';
}

static int is_corpus_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && !(n > 7 && strcmp(e->d_name + n - 7, ".expect") == 0);
}

static void test_bad_corpus_gives_exact_messages(void **state)
{
    (void)state;
    struct dirent **entries;
    int n = scandir(BAD_DIR, &entries, is_corpus_file, alphasort);
    assert_true(n >= 25);
    int mismatches = 0;
    for (int i = 0; i < n; i++) {
        char path[512], want[CFG_ERROR_LEN];
        snprintf(path, sizeof path, "%s/%s", BAD_DIR, entries[i]->d_name);
        free(entries[i]);
        expected_message(path, want, sizeof want);
        struct gantry_config cfg;
        struct cfg_errors errors;
        const char *files[] = {path};
        int rc = config_load(&cfg, files, 1, &errors);
        config_free(&cfg);
        if (rc == 0 || errors.count != 1 || strcmp(errors.messages[0], want) != 0) {
            print_error("%s:\n  want: %s\n  got:  %s (%zu errors)\n", path, want,
                        errors.count ? errors.messages[0] : "(accepted)", errors.count);
            mismatches++;
        }
    }
    free(entries);
    assert_int_equal(mismatches, 0);
}

static void test_defaults_without_files(void **state)
{
    (void)state;
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, NULL, 0, &errors), 0);
    char addr[NET_ADDR_TEXT_MAX];
    assert_string_equal(net_addr_format(&cfg.demo.listen, addr, sizeof addr), "127.0.0.1:8080");
    assert_true(net_addr_is_loopback(&cfg.demo.listen));
    assert_int_equal(cfg.log.level, LOG_LEVEL_INFO);
    assert_int_equal(cfg.redis.url.addr.len, 0);
    assert_int_equal(cfg.redis.connect_timeout_ms, 2000);
    assert_string_equal(cfg.up.run_dir, "run");
    assert_int_equal(cfg.up.restart_backoff_min_ms, 500);
    assert_int_equal(cfg.demo.body_size, 16);
    assert_true(cfg.demo.enabled);
    config_free(&cfg);
}

static void test_later_files_override_earlier(void **state)
{
    (void)state;
    const char *files[] = {GOOD_DIR "/base.yaml", GOOD_DIR "/override.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 2, &errors), 0);
    assert_int_equal(cfg.demo.body_size, 4096);       /* base.yaml, untouched */
    assert_int_equal(cfg.demo.latency_ms, 250);       /* override.yaml */
    assert_int_equal(cfg.log.level, LOG_LEVEL_DEBUG); /* override.yaml */
    assert_int_equal(cfg.up.stop_timeout_ms, 3000);   /* base.yaml */
    assert_int_equal(cfg.up.ready_timeout_ms, 10000); /* default */
    config_free(&cfg);
}

static void test_json_reads_like_yaml(void **state)
{
    (void)state;
    const char *yaml[] = {GOOD_DIR "/base.yaml"};
    const char *json[] = {GOOD_DIR "/base.json"};
    struct gantry_config a, b;
    struct cfg_errors errors;
    assert_int_equal(config_load(&a, yaml, 1, &errors), 0);
    assert_int_equal(config_load(&b, json, 1, &errors), 0);
    assert_int_equal(a.demo.body_size, b.demo.body_size);
    assert_int_equal(a.up.stop_timeout_ms, b.up.stop_timeout_ms);
    assert_int_equal(a.redis.url.db, b.redis.url.db);
    assert_memory_equal(&a.redis.url.addr, &b.redis.url.addr, sizeof a.redis.url.addr);
    assert_string_equal(a.up.run_dir, b.up.run_dir);
    config_free(&a);
    config_free(&b);
}

static void test_every_example_file_is_valid(void **state)
{
    (void)state;
    struct dirent **entries;
    int n = scandir("config/examples", &entries, is_corpus_file, alphasort);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "config/examples/%s", entries[i]->d_name);
        free(entries[i]);
        const char *files[] = {path};
        struct gantry_config cfg;
        struct cfg_errors errors;
        int rc = config_load(&cfg, files, 1, &errors);
        if (rc != 0)
            print_error("%s: %s\n", path, errors.messages[0]);
        assert_int_equal(rc, 0);
        config_free(&cfg);
    }
    free(entries);
}

static void test_lb_references_across_files(void **state)
{
    (void)state;
    const char *files[] = {GOOD_DIR "/lb-rules.yaml", GOOD_DIR "/lb-groups.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 2, &errors), 0);
    assert_int_equal(cfg.lb.listeners.count, 1);
    const struct lb_listener_cfg *web = cfg.lb.listeners.items;
    assert_int_equal(web->default_action.type, LB_ACTION_FORWARD);
    const struct lb_target_group_cfg *api = lb_config_find_group(&cfg.lb, "api");
    assert_non_null(api);
    assert_int_equal(api->targets.count, 2);
    assert_int_equal(((const struct lb_target_cfg *)api->targets.items)[1].weight, 5);
    config_free(&cfg);

    /* alone, the rules file refers to a group that does not exist */
    assert_int_equal(config_load(&cfg, files, 1, &errors), -1);
    assert_non_null(strstr(errors.messages[0], "forward to unknown target group 'api'"));
    config_free(&cfg);
}

static void test_health_check_matcher(void **state)
{
    (void)state;
    const char *files[] = {GOOD_DIR "/lb-health.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 1, &errors), 0);
    const struct lb_target_group_cfg *g = lb_config_find_group(&cfg.lb, "api");
    const struct lb_matcher *m = &g->health_check.codes;
    static const struct {
        int status;
        bool matches;
    } cases[] = {{200, true},  {204, true},  {299, true},  {302, true}, {301, false},
                 {199, false}, {300, false}, {404, false}, {500, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (lb_matcher_matches(m, cases[i].status) != cases[i].matches)
            fail_msg("status %d", cases[i].status);
    assert_int_equal(g->health_check.port_number, 8081);
    assert_int_equal(g->health_check.interval_ms, 2000);
    assert_int_equal(g->slow_start_ms, 30000);
    assert_int_equal(g->stickiness.type, LB_STICKY_APP_COOKIE);
    /* defaults are ALB's */
    const struct lb_target_group_cfg *d = lb_config_find_group(&cfg.lb, "defaults");
    assert_true(d->health_check.enabled);
    assert_int_equal(d->health_check.interval_ms, 30000);
    assert_int_equal(d->health_check.timeout_ms, 5000);
    assert_int_equal(d->health_check.healthy_threshold, 5);
    assert_int_equal(d->health_check.unhealthy_threshold, 2);
    assert_true(lb_matcher_matches(&d->health_check.codes, 200));
    assert_false(lb_matcher_matches(&d->health_check.codes, 201));
    assert_int_equal(d->health_check.port_number, 0);
    assert_int_equal(d->deregistration_delay_ms, 300000);
    config_free(&cfg);
}

static void test_lb_example_is_what_it_says(void **state)
{
    (void)state;
    const char *files[] = {"config/examples/lb.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 1, &errors), 0);
    const struct lb_listener_cfg *web = cfg.lb.listeners.items;
    assert_int_equal(web->rules.count, 5);
    const struct lb_rule_cfg *rules = web->rules.items;
    assert_int_equal(rules[0].conditions.count, 2);
    const struct lb_condition_cfg *beta =
        &((const struct lb_condition_cfg *)rules[0].conditions.items)[1];
    assert_int_equal(beta->field, LB_COND_HTTP_HEADER);
    assert_string_equal(beta->header_name, "X-Beta");
    assert_int_equal(rules[2].action.type, LB_ACTION_REDIRECT);
    assert_int_equal(rules[2].action.status, 301);
    assert_string_equal(rules[2].action.path, "/#{path}"); /* default kept */
    assert_int_equal(rules[4].action.status, 405);
    config_free(&cfg);

    /* no default action: a 404 */
    const char *bare[] = {GOOD_DIR "/lb-groups.yaml", GOOD_DIR "/lb-bare-listener.yaml"};
    assert_int_equal(config_load(&cfg, bare, 2, &errors), 0);
    web = cfg.lb.listeners.items;
    assert_int_equal(web->default_action.type, LB_ACTION_FIXED_RESPONSE);
    assert_int_equal(web->default_action.status, 404);
    config_free(&cfg);
}

static void test_missing_file_names_the_file(void **state)
{
    (void)state;
    const char *files[] = {"tests/config/does-not-exist.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 1, &errors), -1);
    assert_string_equal(errors.messages[0], "tests/config/does-not-exist.yaml: cannot read the "
                                            "file: No such file or directory");
    config_free(&cfg);
}

static void test_errors_in_several_keys_are_all_reported(void **state)
{
    (void)state;
    const char *files[] = {GOOD_DIR "/../multi-error.yaml"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 1, &errors), -1);
    assert_int_equal(errors.count, 3);
    assert_non_null(strstr(errors.messages[0], ":2:11: "));
    assert_non_null(strstr(errors.messages[1], ":3:14: "));
    assert_non_null(strstr(errors.messages[2], ":5:17: "));
    config_free(&cfg);
}

/* Past CFG_MAX_ERRORS errors are dropped but still count: a section with a failed item must not
 * have its checks run on the half-bound item (the fuzzer found a NULL read there). */
static void test_checks_skip_sections_with_errors_even_past_the_limit(void **state)
{
    (void)state;
    char path[] = "/tmp/gantry-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("demo:\n", f);
    for (int i = 0; i < 25; i++)
        fprintf(f, "  unknown%d: 1\n", i);
    fputs("lb:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules:\n"
          "        - priority: 1\n"
          "          conditions: [{field: path-pattern, values: [[nested]]}]\n"
          "          action: {type: fixed-response}\n",
          f);
    fclose(f);
    const char *files[] = {path};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, files, 1, &errors), -1);
    unlink(path);
    assert_int_equal(errors.count, CFG_MAX_ERRORS);
    assert_int_equal(errors.total, 26);
    assert_int_equal(errors.dropped, 6);
    config_free(&cfg);
}

static void test_command_line_overrides(void **state)
{
    (void)state;
    struct daemon_args args = {.redis_url = "unix:/tmp/r.sock", .log_level = "warn"};
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load_args(&cfg, &args, &errors), 0);
    assert_int_equal(net_addr_family(&cfg.redis.url.addr), AF_UNIX);
    assert_int_equal(cfg.log.level, LOG_LEVEL_WARN);
    config_free(&cfg);

    args.redis_url = "http://x";
    assert_int_equal(config_load_args(&cfg, &args, &errors), -1);
    assert_string_equal(errors.messages[0],
                        "command line: --redis 'http://x': a Redis URL starts with redis:// or "
                        "unix: (expected a Redis URL such as redis://127.0.0.1:6379 or "
                        "unix:/path/redis.sock)");
    config_free(&cfg);
}

/* Every key of the schema has a row "| `section.key` | type | `default` | ..." in config/README.md,
 * with the default the code really uses. */
static bool already_documented(const struct cfg_section *section)
{
    static const struct cfg_section *seen[64];
    static size_t n_seen;
    for (size_t i = 0; i < n_seen; i++)
        if (seen[i] == section)
            return true;
    if (n_seen < 64)
        seen[n_seen++] = section;
    return false;
}

static void check_documented(const char *doc, const struct cfg_section *section, const void *obj,
                             const char *prefix, int *missing)
{
    for (size_t i = 0; i < section->n_keys; i++) {
        const struct cfg_key *key = &section->keys[i];
        const void *field = (const char *)obj + key->offset;
        char path[160], row[256], value[128];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key->name);
        if (key->type == CFG_SECTION && !already_documented(key->section)) {
            check_documented(doc, key->section, field, path, missing);
            continue;
        }
        if (key->type == CFG_SECTION && already_documented(key->section)) {
            continue; /* a section used twice (an action) is documented once */
        }
        if (key->type == CFG_LIST && key->elem_type == CFG_SECTION) {
            /* keys of list items are documented as "lb.listeners[].name" */
            char item_path[200];
            snprintf(item_path, sizeof item_path, "%s[]", path);
            struct arena arena = {0};
            struct cfg_errors errors = {0};
            struct cfg_ctx ctx = {.arena = &arena, .file = "(defaults)", .errors = &errors};
            void *item = arena_alloc(&arena, key->section->size);
            cfg_apply_defaults(&ctx, key->section, item);
            check_documented(doc, key->section, item, item_path, missing);
            arena_free(&arena);
            snprintf(row, sizeof row, "| `%s` |", path);
            if (!strstr(doc, row)) {
                print_error("config/README.md: no row '%s'\n", row);
                (*missing)++;
            }
            continue;
        }
        snprintf(row, sizeof row, "| `%s` |", path);
        const char *at = strstr(doc, row);
        const char *end = at ? strchr(at, '\n') : NULL;
        cfg_format_value(key, obj, value, sizeof value);
        char want[160];
        snprintf(want, sizeof want, *value ? "| `%s` |" : "| (empty) |", value);
        /* a key without a built-in default may be documented as required instead */
        bool required_ok =
            !key->def && at && end && memmem(at, (size_t)(end - at), "| (required) |", 13);
        if (!required_ok && (!at || !end || !memmem(at, (size_t)(end - at), want, strlen(want)))) {
            print_error("config/README.md: no row '%s ... %s ...'\n", row, want);
            (*missing)++;
        }
    }
}

static void test_readme_documents_every_key_and_default(void **state)
{
    (void)state;
    const char *doc = slurp("config/README.md");
    assert_non_null(doc);
    struct gantry_config cfg;
    struct cfg_errors errors;
    assert_int_equal(config_load(&cfg, NULL, 0, &errors), 0);
    int missing = 0;
    check_documented(doc, config_schema(), &cfg, "", &missing);
    config_free(&cfg);
    assert_int_equal(missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_corpus_gives_exact_messages),
        cmocka_unit_test(test_defaults_without_files),
        cmocka_unit_test(test_later_files_override_earlier),
        cmocka_unit_test(test_json_reads_like_yaml),
        cmocka_unit_test(test_every_example_file_is_valid),
        cmocka_unit_test(test_missing_file_names_the_file),
        cmocka_unit_test(test_lb_references_across_files),
        cmocka_unit_test(test_lb_example_is_what_it_says),
        cmocka_unit_test(test_health_check_matcher),
        cmocka_unit_test(test_errors_in_several_keys_are_all_reported),
        cmocka_unit_test(test_checks_skip_sections_with_errors_even_past_the_limit),
        cmocka_unit_test(test_command_line_overrides),
        cmocka_unit_test(test_readme_documents_every_key_and_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
