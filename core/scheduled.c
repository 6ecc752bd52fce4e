#include "core/scheduled.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/schedule.h"
#include "core/core.h"

struct core_scheduled {
    char name[CORE_NAME_MAX];
    char *text;  /* the entry's JSON, to tell an unchanged entry at reload */
    json_t *run; /* RunTask's input */
    bool enabled;
    struct schedule schedule;
    char timezone[64];
    int64_t origin; /* Unix seconds: rate() counts from here */
    int64_t next;   /* Unix seconds; -1: never again */
};

/* Keys that are the rule's; every other key is RunTask's. */
static const char *const rule_keys[] = {"name", "scheduleExpression", "timezone", "state", NULL};

static bool is_rule_key(const char *key)
{
    for (size_t i = 0; rule_keys[i]; i++)
        if (strcmp(key, rule_keys[i]) == 0)
            return true;
    return false;
}

static const char *check_entry(const json_t *in, struct schedule *schedule, char *why, size_t size)
{
    static const char *const run_keys[] = {"cluster",   "taskDefinition", "count",     "launchType",
                                           "overrides", "group",          "startedBy", NULL};
    if (!json_is_object(in))
        return "expected a mapping";
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        bool known = is_rule_key(key);
        for (size_t i = 0; !known && run_keys[i]; i++)
            known = strcmp(key, run_keys[i]) == 0;
        if (!known) {
            snprintf(why, size,
                     "unknown key '%.64s' (expected name, scheduleExpression, "
                     "timezone, state, cluster, taskDefinition, count, launchType, "
                     "overrides, group)",
                     key);
            return why;
        }
    }
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *expr = json_string_value(json_object_get(in, "scheduleExpression"));
    const char *tz = json_string_value(json_object_get(in, "timezone"));
    const char *state = json_string_value(json_object_get(in, "state"));
    if (!name || !taskdef_valid_name(name) || strlen(name) > 64)
        return "name is required: 1 to 64 letters, digits, '-' and '_'";
    if (!json_is_string(json_object_get(in, "taskDefinition")))
        return "taskDefinition is required (a family or family:rev)";
    if (!expr)
        return "scheduleExpression is required: rate(...), cron(...) or at(...)";
    char parse_why[200];
    if (schedule_parse(expr, schedule, parse_why, sizeof parse_why) < 0) {
        snprintf(why, size, "scheduleExpression: %s", parse_why);
        return why;
    }
    if (json_object_get(in, "timezone") &&
        (!tz || strlen(tz) >= 64 || !schedule_timezone_valid(tz)))
        return "timezone: not a time zone this machine knows (an IANA name such as "
               "Europe/Paris)";
    if (json_object_get(in, "state") &&
        (!state || (strcmp(state, "ENABLED") != 0 && strcmp(state, "DISABLED") != 0)))
        return "state must be ENABLED or DISABLED";
    json_t *count = json_object_get(in, "count");
    if (count && (!json_is_integer(count) || json_integer_value(count) < 1 ||
                  json_integer_value(count) > 10))
        return "count must be an integer from 1 to 10";
    return NULL;
}

int scheduled_validate(const struct config_core *cc, struct cfg_errors *errors)
{
    size_t before = errors->total;
    const struct cfg_json *items = cc->scheduled_tasks.items;
    for (size_t i = 0; i < cc->scheduled_tasks.count; i++) {
        json_t *in = json_loads(items[i].text, 0, NULL);
        struct schedule schedule;
        char why[256];
        const char *problem = check_entry(in, &schedule, why, sizeof why);
        for (size_t j = 0; !problem && j < i; j++) {
            json_t *other = json_loads(items[j].text, 0, NULL);
            if (strcmp(jstr(other, "name"), jstr(in, "name")) == 0)
                problem = "name: another scheduled task has this name";
            json_decref(other);
        }
        if (problem) {
            struct cfg_ctx ctx = {.file = items[i].origin.file, .errors = errors};
            cfg_error_at(&ctx, &items[i].origin, "'core.scheduled_tasks[%zu]': %s", i, problem);
        }
        json_decref(in);
    }
    return errors->total == before ? 0 : -1;
}

static void entry_free(struct core_scheduled *e)
{
    free(e->text);
    json_decref(e->run);
}

void scheduled_free(struct core *core)
{
    for (size_t i = 0; i < core->n_scheduled; i++)
        entry_free(&core->scheduled[i]);
    free(core->scheduled);
    core->scheduled = NULL;
    core->n_scheduled = 0;
}

static const struct core_scheduled *previous(const struct core *core, const char *text)
{
    for (size_t i = 0; i < core->n_scheduled; i++)
        if (strcmp(core->scheduled[i].text, text) == 0)
            return &core->scheduled[i];
    return NULL;
}

static void plan_next(struct core_scheduled *e, int64_t after)
{
    char why[160];
    e->next = schedule_next(&e->schedule, e->origin, after, e->timezone, why, sizeof why);
}

static int build_entry(const struct cfg_json *item, struct core_scheduled *e, int64_t now)
{
    json_t *in = json_loads(item->text, 0, NULL);
    char why[256];
    if (!in || check_entry(in, &e->schedule, why, sizeof why)) {
        json_decref(in);
        return -1; /* validated at load: not reached */
    }
    snprintf(e->name, sizeof e->name, "%s", jstr(in, "name"));
    snprintf(e->timezone, sizeof e->timezone, "%s", jstr(in, "timezone"));
    const char *state = json_string_value(json_object_get(in, "state"));
    e->enabled = !state || strcmp(state, "ENABLED") == 0;
    e->text = strdup(item->text);
    e->run = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v)
    {
        if (!is_rule_key(key))
            json_object_set(e->run, key, v);
    }
    if (!json_object_get(e->run, "startedBy")) {
        char by[CORE_NAME_MAX + 16];
        snprintf(by, sizeof by, "events-rule/%s", e->name);
        json_object_set_new(e->run, "startedBy", json_string(by));
    }
    json_decref(in);
    e->origin = now;
    plan_next(e, now);
    return e->text ? 0 : -1;
}

void scheduled_apply(struct core *core)
{
    const struct config_core *cc = &core->cfg->core;
    size_t n = cc->scheduled_tasks.count;
    struct core_scheduled *list = calloc(n ? n : 1, sizeof *list);
    if (!list)
        return;
    const struct cfg_json *items = cc->scheduled_tasks.items;
    int64_t now = (int64_t)core_now();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (build_entry(&items[i], &list[k], now) < 0) {
            entry_free(&list[k]);
            memset(&list[k], 0, sizeof list[k]);
            continue;
        }
        const struct core_scheduled *old = previous(core, items[i].text);
        if (old) { /* unchanged by a reload: it keeps its rhythm */
            list[k].origin = old->origin;
            list[k].next = old->next;
        }
        log_info("scheduled task %s: %s, next at %lld", list[k].name,
                 list[k].enabled ? "enabled" : "disabled", (long long)list[k].next);
        k++;
    }
    scheduled_free(core);
    core->scheduled = list;
    core->n_scheduled = k;
}

static void fire(struct core *core, struct core_scheduled *e)
{
    json_t *in = json_deep_copy(e->run), *out = NULL;
    struct api_error err;
    if (act_run_task(core, in, &out, &err) < 0) {
        log_warn("scheduled task %s: RunTask refused: %s: %s", e->name, err.type, err.message);
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(out, "tasks"), i, t)
        {
            log_info("scheduled task %s: started %s", e->name, jstr(t, "taskArn"));
        }
    }
    json_decref(out);
    json_decref(in);
}

void scheduled_run_due(struct core *core, int64_t now_ms)
{
    int64_t now = now_ms / 1000;
    for (size_t i = 0; i < core->n_scheduled; i++) {
        struct core_scheduled *e = &core->scheduled[i];
        if (e->next < 0 || now < e->next)
            continue;
        if (e->enabled)
            fire(core, e);
        plan_next(e, now); /* several missed times (a stalled loop) run once */
    }
}
