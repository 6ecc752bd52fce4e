#include "metrics/task_list.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ECS's task documents are far smaller: anything this large is not one. */
enum { RECORD_MAX = 1024 * 1024, UNITS_MAX = 1 << 24 };

bool ecs_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ECS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

static bool task_id_valid(const char *id)
{
    if (strlen(id) != ECS_TASK_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    return true;
}

struct unit_word {
    const char *word;
    double factor;
};

/* "N", or "N WORD" / "NWORD" with one of units (case-insensitive): N times its factor. */
static int parse_units(const char *text, const struct unit_word *units)
{
    char *end;
    if (!text || !isdigit((unsigned char)text[0]))
        return -1;
    double v = strtod(text, &end);
    while (*end == ' ')
        end++;
    double factor = 1;
    if (*end) {
        const struct unit_word *u = units;
        while (u->word && strcasecmp(end, u->word) != 0)
            u++;
        if (!u->word)
            return -1;
        factor = u->factor;
    }
    v *= factor;
    if (!(v >= 0 && v <= UNITS_MAX))
        return -1;
    return (int)(v + 0.5);
}

int ecs_parse_cpu(const char *text)
{
    static const struct unit_word units[] = {{"vCPU", 1024}, {NULL, 0}};
    return parse_units(text, units);
}

int ecs_parse_memory(const char *text)
{
    static const struct unit_word units[] = {
        {"GB", 1024}, {"GiB", 1024}, {"MB", 1}, {"MiB", 1}, {NULL, 0}};
    return parse_units(text, units);
}

static bool copy_name(char *out, size_t size, const char *text)
{
    size_t n = strlen(text);
    if (n >= size)
        return false;
    memcpy(out, text, n + 1);
    return true;
}

/* A PROCESS container: its pid and start time (looked at only while it runs). */
static bool parse_pid(const json_t *p, bool running, struct ecs_process *out)
{
    const json_t *pid = json_object_get(p, "pid"), *ticks = json_object_get(p, "startTicks");
    if (!json_is_integer(pid) || !json_is_integer(ticks))
        return false;
    if (!running)
        return true;
    json_int_t pv = json_integer_value(pid), tv = json_integer_value(ticks);
    /* pid 1 and below never: signalling or reading them would reach far beyond a task. */
    if (pv <= 1 || pv > INT_MAX || tv <= 0)
        return false;
    out->pid = (pid_t)pv;
    out->start_ticks = (uint64_t)tv;
    return true;
}

/* A DOCKER container: its id. A running one whose id is not known yet ("") is left out:
 * gantry-core finds it again by its labels. */
static bool parse_docker_id(const json_t *p, bool *running, struct ecs_process *out)
{
    const char *id = json_string_value(json_object_get(p, "dockerId"));
    if (!id || (id[0] && !docker_stats_id_valid(id)))
        return false;
    *running = *running && id[0];
    snprintf(out->docker_id, sizeof out->docker_id, "%s", id);
    return true;
}

/* One entry of _gantry.processes; false when damaged. A container that is not running is left
 * out. */
static bool parse_process(const json_t *p, struct ecs_task *out)
{
    const json_t *running_value = json_object_get(p, "running");
    if (!json_is_object(p) || !json_is_boolean(running_value))
        return false;
    bool running = json_is_true(running_value);
    struct ecs_process *proc = &out->procs[out->n_procs];
    memset(proc, 0, sizeof *proc);
    bool sound = out->launch == ECS_LAUNCH_DOCKER ? parse_docker_id(p, &running, proc)
                                                  : parse_pid(p, running, proc);
    out->n_procs += sound && running;
    return sound;
}

static enum task_parse_result parse_runtime(const json_t *rt, struct ecs_task *out)
{
    const json_t *service = json_object_get(rt, "service");
    const json_t *procs = json_object_get(rt, "processes");
    if (!json_is_object(rt) || (service && !json_is_string(service)) || !json_is_array(procs) ||
        json_array_size(procs) > ECS_TASK_MAX_CONTAINERS)
        return TASK_PARSE_DAMAGED;
    const char *name = service ? json_string_value(service) : "";
    if (name[0] && (!ecs_name_valid(name) || !copy_name(out->service, sizeof out->service, name)))
        return TASK_PARSE_DAMAGED;
    size_t i;
    const json_t *p;
    json_array_foreach(procs, i, p)
    {
        if (!parse_process(p, out))
            return TASK_PARSE_DAMAGED;
    }
    return TASK_PARSE_OK;
}

static enum task_parse_result parse_doc(const json_t *doc, struct ecs_task *out)
{
    const char *status = json_string_value(json_object_get(doc, "lastStatus"));
    const char *launch = json_string_value(json_object_get(doc, "launchType"));
    const char *cpu = json_string_value(json_object_get(doc, "cpu"));
    const char *memory = json_string_value(json_object_get(doc, "memory"));
    if (!json_is_object(doc) || !status || !launch)
        return TASK_PARSE_DAMAGED;
    if (strcmp(status, "RUNNING") != 0)
        return TASK_PARSE_NOT_SAMPLED;
    if (strcmp(launch, "PROCESS") == 0)
        out->launch = ECS_LAUNCH_PROCESS;
    else if (strcmp(launch, "DOCKER") == 0)
        out->launch = ECS_LAUNCH_DOCKER;
    else
        return TASK_PARSE_NOT_SAMPLED;
    out->cpu_units = ecs_parse_cpu(cpu);
    out->memory_mib = ecs_parse_memory(memory);
    if (out->cpu_units < 0 || out->memory_mib < 0)
        return TASK_PARSE_DAMAGED;
    return parse_runtime(json_object_get(doc, "_gantry"), out);
}

enum task_parse_result task_record_parse(const char *cluster, const char *id, const char *json,
                                         size_t len, struct ecs_task *out)
{
    memset(out, 0, sizeof *out);
    if (!ecs_name_valid(cluster) || !task_id_valid(id) || len > RECORD_MAX)
        return TASK_PARSE_DAMAGED;
    copy_name(out->cluster, sizeof out->cluster, cluster);
    copy_name(out->id, sizeof out->id, id);
    json_error_t err;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        return TASK_PARSE_DAMAGED;
    enum task_parse_result rc = parse_doc(doc, out);
    json_decref(doc);
    return rc;
}

/* --- the list --- */

void task_list_init(struct task_list *l)
{
    memset(l, 0, sizeof *l);
}

void task_list_free(struct task_list *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}

void task_list_swap(struct task_list *a, struct task_list *b)
{
    struct task_list t = *a;
    *a = *b;
    *b = t;
}

/* A slot at the end of the list for the next task; NULL when out of memory. */
static struct ecs_task *next_slot(struct task_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct ecs_task *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return NULL;
        l->items = items;
        l->cap = cap;
    }
    return &l->items[l->n];
}

static bool reply_text(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING && r->str && strlen(r->str) == r->len;
}

static void add_cluster_tasks(struct task_list *l, const char *cluster, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *field = reply->element[i], *value = reply->element[i + 1];
        struct ecs_task *slot = next_slot(l);
        if (!slot)
            return;
        enum task_parse_result rc =
            reply_text(field) && value->type == REDIS_REPLY_STRING
                ? task_record_parse(cluster, field->str, value->str, value->len, slot)
                : TASK_PARSE_DAMAGED;
        if (rc == TASK_PARSE_OK)
            l->n++;
        else if (rc == TASK_PARSE_DAMAGED)
            l->skipped++;
    }
}

int task_list_fetch(struct redis_sync *r, struct task_list *l)
{
    l->n = 0;
    l->skipped = 0;
    redisReply *clusters = redis_sync_command(r, "HKEYS gantry:ecs:clusters");
    if (!clusters && r->c) { /* Redis answered with an error (a key of the wrong type) */
        l->skipped++;
        return 0;
    }
    if (!clusters)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && clusters->type == REDIS_REPLY_ARRAY && i < clusters->elements;
         i++) {
        const redisReply *name = clusters->element[i];
        if (!reply_text(name) || !ecs_name_valid(name->str)) {
            l->skipped++;
            continue;
        }
        redisReply *tasks = redis_sync_command(r, "HGETALL gantry:ecs:tasks:%s", name->str);
        if (!tasks) {
            rc = r->c ? 0 : -1; /* an error reply is a damaged key; a lost connection a failure */
            l->skipped += rc == 0;
            continue;
        }
        add_cluster_tasks(l, name->str, tasks);
        freeReplyObject(tasks);
    }
    freeReplyObject(clusters);
    return rc;
}
