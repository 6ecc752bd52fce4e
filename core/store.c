/* Write-through of the model to Redis (the key layout is in docs/core.md). The model in memory is
 * authoritative while gantry-core runs; every change marks what it touched dirty and the API call
 * or reconcile step ends with one MULTI/EXEC that writes it all, so what belongs together lands
 * together. A failed flush keeps the dirty marks and is retried by the next reconcile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/core.h"

struct batch {
    struct redis_cmd *cmds;
    size_t n, cap;
    char **owned; /* texts the commands point into */
    size_t n_owned, cap_owned;
};

static char *batch_keep(struct batch *b, char *text)
{
    if (!text)
        return NULL;
    if (b->n_owned == b->cap_owned) {
        size_t cap = b->cap_owned ? b->cap_owned * 2 : 64;
        char **owned = realloc(b->owned, cap * sizeof *owned);
        if (!owned) {
            free(text);
            return NULL;
        }
        b->owned = owned;
        b->cap_owned = cap;
    }
    b->owned[b->n_owned++] = text;
    return text;
}

static int batch_add(struct batch *b, int argc, const char *const *args)
{
    for (int i = 0; i < argc; i++)
        if (!args[i])
            return -1;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct redis_cmd *cmds = realloc(b->cmds, cap * sizeof *cmds);
        if (!cmds)
            return -1;
        b->cmds = cmds;
        b->cap = cap;
    }
    redis_cmd_set(&b->cmds[b->n++], argc, args);
    return 0;
}

/* prefix + name, kept until the batch is sent. */
static char *key_text(struct batch *b, const char *prefix, const char *name)
{
    char *text = NULL;
    if (asprintf(&text, "%s%s", prefix, name) < 0)
        return NULL;
    return batch_keep(b, text);
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->cmds);
}

static json_t *task_record(struct core_task *t)
{
    json_t *doc = json_deep_copy(t->doc);
    json_t *rt = json_object();
    json_t *pids = json_array(), *ports = json_array(), *targets = json_array();
    for (int i = 0; i < t->n_containers; i++)
        json_array_append_new(
            pids, json_pack("{s:s, s:I, s:I, s:b, s:s, s:I}", "name", t->containers[i].name, "pid",
                            (json_int_t)t->containers[i].pid, "startTicks",
                            (json_int_t)t->containers[i].start_ticks, "running",
                            t->containers[i].running, "dockerId", t->containers[i].docker_id,
                            "startedMs", (json_int_t)t->containers[i].health.started_ms));
    for (int i = 0; i < t->n_ports; i++)
        json_array_append_new(ports, json_integer(t->host_ports[i]));
    for (int i = 0; i < t->n_targets; i++)
        json_array_append_new(
            targets, json_pack("{s:s, s:s, s:s, s:b}", "group", t->targets[i].group, "groupArn",
                               t->targets[i].group_arn, "addr", t->targets[i].addr, "registered",
                               t->targets[i].registered));
    json_object_set_new(rt, "processes", pids);
    json_object_set_new(rt, "hostPorts", ports);
    json_object_set_new(rt, "targets", targets);
    json_object_set_new(rt, "service", json_string(t->service));
    json_object_set_new(rt, "placed", json_boolean(t->placed));
    /* wall-clock deadlines, so a restarted core keeps draining and stopping on time */
    json_object_set_new(rt, "drainDeadlineMs", json_integer(t->drain_deadline_ms));
    json_object_set_new(rt, "killAtMs", json_integer(t->kill_at_ms));
    json_object_set_new(rt, "noDrain", json_boolean(t->no_drain));
    json_object_set_new(doc, "_gantry", rt);
    return doc;
}

static int add_hset(struct batch *b, char *key, const char *field, json_t *doc)
{
    char *text = batch_keep(b, json_dumps(doc, JSON_COMPACT));
    if (!text) { /* one entity that cannot be written must not keep the others from Redis */
        log_error("state store: %s %s cannot be serialised; not written", key ? key : "?", field);
        return 0;
    }
    const char *args[] = {"HSET", key, field, text};
    return batch_add(b, 4, args);
}

static int collect(struct core *core, struct batch *b)
{
    int rc = 0;
    if (core->dirty_clusters) {
        const char *name;
        json_t *doc;
        json_object_foreach(core->clusters, name, doc)
        {
            rc |= add_hset(b, "gantry:ecs:clusters", name, doc);
            json_t *inst = json_object_get(core->instances, name);
            if (inst)
                rc |= add_hset(b, "gantry:ecs:instances", name, inst);
        }
    }
    const char *family;
    json_t *revs;
    json_object_foreach(core->taskdefs, family, revs)
    {
        size_t i;
        json_t *td;
        json_array_foreach(revs, i, td)
        {
            if (!json_is_true(json_object_get(td, "_dirty")))
                continue;
            json_t *copy = json_deep_copy(td);
            json_object_del(copy, "_dirty");
            char rev[24];
            snprintf(rev, sizeof rev, "%zu", i + 1);
            char *rev_text = batch_keep(b, strdup(rev));
            rc |= add_hset(b, key_text(b, "gantry:ecs:taskdefs:", family), rev_text, copy);
            const char *fam_args[] = {"HSET", "gantry:ecs:families", family, rev_text};
            rc |= batch_add(b, 4, fam_args);
            json_decref(copy);
        }
    }
    for (struct core_service *s = core->services; s; s = s->next)
        if (s->dirty)
            rc |= add_hset(b, key_text(b, "gantry:ecs:services:", s->cluster), s->name, s->doc);
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!t->dirty)
            continue;
        json_t *record = task_record(t);
        rc |= add_hset(b, key_text(b, "gantry:ecs:tasks:", t->cluster), t->id, record);
        json_decref(record);
    }
    size_t i;
    json_t *pair;
    json_array_foreach(core->pending_deletes, i, pair)
    {
        /* [key, field]: HDEL of the field; [key]: DEL of the key */
        const char *field = json_string_value(json_array_get(pair, 1));
        const char *args[] = {field ? "HDEL" : "DEL", json_string_value(json_array_get(pair, 0)),
                              field};
        rc |= batch_add(b, field ? 3 : 2, args);
    }
    json_array_foreach(core->pending_events, i, pair)
    {
        const char *key = json_string_value(json_array_get(pair, 0));
        const char *push[] = {"LPUSH", key, json_string_value(json_array_get(pair, 1))};
        const char *trim[] = {"LTRIM", key, "0", "99"};
        rc |= batch_add(b, 3, push);
        rc |= batch_add(b, 4, trim);
    }
    return rc ? -1 : 0;
}

static void mark_clean(struct core *core)
{
    core->dirty_clusters = false;
    const char *family;
    json_t *revs;
    json_object_foreach(core->taskdefs, family, revs)
    {
        size_t i;
        json_t *td;
        json_array_foreach(revs, i, td) json_object_del(td, "_dirty");
    }
    for (struct core_service *s = core->services; s; s = s->next)
        s->dirty = false;
    for (struct core_task *t = core->tasks; t; t = t->next)
        t->dirty = false;
    json_array_clear(core->pending_deletes);
    json_array_clear(core->pending_events);
}

int store_flush(struct core *core)
{
    struct batch b = {0};
    if (collect(core, &b) < 0) {
        batch_free(&b);
        snprintf(core->redis.error, sizeof core->redis.error, "out of memory");
        core->store_failed = true;
        return -1;
    }
    int rc = b.n ? redis_sync_multi(&core->redis, b.cmds, b.n) : 0;
    batch_free(&b);
    if (rc == 0)
        mark_clean(core);
    core->store_failed = rc < 0;
    return rc;
}

int store_check(struct core *core, struct api_error *err)
{
    redisReply *r = redis_sync_command(&core->redis, "PING");
    if (!r)
        return api_fail(err, "ServerException", "the state store is unreachable: %s",
                        core->redis.error);
    freeReplyObject(r);
    return 0;
}

/* --- loading --- */

static redisReply *hgetall(struct core *core, const char *key)
{
    redisReply *r = redis_sync_command(&core->redis, "HGETALL %s", key);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        snprintf(core->redis.error, sizeof core->redis.error, "%s is not a hash", key);
        return NULL;
    }
    return r;
}

static json_t *parse_value(const redisReply *v, const char *key)
{
    json_error_t jerr;
    json_t *doc = json_loadb(v->str, v->len, 0, &jerr);
    if (!json_is_object(doc)) {
        log_warn("state store: a value of %s is not a JSON object; ignored", key);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static int load_hash_into(struct core *core, const char *key, json_t *into)
{
    redisReply *r = hgetall(core, key);
    if (!r)
        return -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        json_t *doc = parse_value(r->element[i + 1], key);
        if (doc)
            json_object_set_new(into, r->element[i]->str, doc);
    }
    freeReplyObject(r);
    return 0;
}

static int load_taskdefs(struct core *core)
{
    redisReply *r = hgetall(core, "gantry:ecs:families");
    if (!r)
        return -1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        char key[CORE_NAME_MAX + 32];
        snprintf(key, sizeof key, "gantry:ecs:taskdefs:%s", r->element[i]->str);
        json_t *byrev = json_object();
        if (load_hash_into(core, key, byrev) < 0) {
            json_decref(byrev);
            freeReplyObject(r);
            return -1;
        }
        long latest = strtol(r->element[i + 1]->str, NULL, 10);
        if (latest > 1000000) /* ECS's limit; a larger number is a damaged record */
            latest = 0;
        json_t *revs = json_array();
        for (long rev = 1; rev <= latest; rev++) {
            char field[24];
            snprintf(field, sizeof field, "%ld", rev);
            json_t *td = json_object_get(byrev, field);
            struct api_error err;
            if (td && taskdef_validate(td, 0, &err) < 0) {
                /* what gantry-core stored passes its own rules: this one was damaged */
                log_warn("state store: %s revision %s is damaged (%s); ignored", key, field,
                         err.message);
                td = NULL;
            }
            /* a missing revision keeps its place so index = revision - 1 holds */
            if (td)
                json_array_append(revs, td);
            else
                json_array_append_new(revs, json_pack("{s:s}", "status", "MISSING"));
        }
        json_object_set_new(core->taskdefs, r->element[i]->str, revs);
        json_decref(byrev);
    }
    freeReplyObject(r);
    return 0;
}

static int load_services_and_tasks(struct core *core, const char *cluster)
{
    char key[CORE_NAME_MAX + 32];
    snprintf(key, sizeof key, "gantry:ecs:services:%s", cluster);
    json_t *services = json_object();
    int rc = load_hash_into(core, key, services);
    const char *name;
    json_t *doc;
    json_object_foreach(services, name, doc)
    {
        if (rc < 0)
            break;
        char events_key[2 * CORE_NAME_MAX + 32];
        snprintf(events_key, sizeof events_key, "gantry:ecs:events:%s:%s", cluster, name);
        redisReply *r = redis_sync_command(&core->redis, "LRANGE %s 0 99", events_key);
        if (!r) {
            rc = -1;
            break;
        }
        json_t *events = json_array();
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            json_t *event = parse_value(r->element[i], events_key);
            if (event)
                json_array_append_new(events, event);
        }
        freeReplyObject(r);
        service_load(core, cluster, name, doc, events);
    }
    json_decref(services);
    if (rc < 0)
        return -1;
    snprintf(key, sizeof key, "gantry:ecs:tasks:%s", cluster);
    json_t *tasks = json_object();
    rc = load_hash_into(core, key, tasks);
    json_object_foreach(tasks, name, doc) task_load(core, cluster, name, doc);
    json_decref(tasks);
    return rc;
}

int store_load(struct core *core, char *why, size_t why_size)
{
    if (load_hash_into(core, "gantry:ecs:clusters", core->clusters) < 0 ||
        load_hash_into(core, "gantry:ecs:instances", core->instances) < 0 ||
        load_taskdefs(core) < 0) {
        snprintf(why, why_size, "%s", core->redis.error);
        return -1;
    }
    const char *name;
    json_t *doc;
    json_object_foreach(core->clusters, name, doc)
    {
        if (load_services_and_tasks(core, name) < 0) {
            snprintf(why, why_size, "%s", core->redis.error);
            return -1;
        }
    }
    return 0;
}

/* Everything in memory is written again at the next flush. */
static void mark_all_dirty(struct core *core)
{
    core->dirty_clusters = true;
    const char *family;
    json_t *revs;
    json_object_foreach(core->taskdefs, family, revs)
    {
        size_t i;
        json_t *td;
        json_array_foreach(revs, i, td)
        {
            if (strcmp(jstr(td, "status"), "MISSING") != 0)
                json_object_set_new(td, "_dirty", json_true());
        }
    }
    for (struct core_service *s = core->services; s; s = s->next) {
        s->dirty = true;
        /* events go back oldest first, so LPUSH leaves them newest first */
        for (size_t i = json_array_size(s->events); i > 0; i--) {
            char *text = json_dumps(json_array_get(s->events, i - 1), JSON_COMPACT);
            if (text)
                json_array_append_new(
                    core->pending_events,
                    json_pack("[s+++, s]", "gantry:ecs:events:", s->cluster, ":", s->name, text));
            free(text);
        }
    }
    for (struct core_task *t = core->tasks; t; t = t->next) {
        t->dirty = true;
        for (int k = 0; k < t->n_targets; k++)
            t->targets[k].registered = false; /* the scheduler's pass registers them again */
    }
}

void store_check_epoch(struct core *core)
{
    if (!core->epoch[0]) {
        core_new_id(core->epoch);
        core->dirty_epoch = true;
    }
    if (!core->dirty_epoch) {
        redisReply *r = redis_sync_command(&core->redis, "GET gantry:ecs:epoch");
        if (!r)
            return; /* unreachable: the flush retries later */
        bool same = r->type == REDIS_REPLY_STRING && strcmp(r->str, core->epoch) == 0;
        freeReplyObject(r);
        if (same)
            return;
        log_warn("state store: Redis lost gantry-core's state (restarted empty or flushed): "
                 "writing everything again and registering every target again");
        mark_all_dirty(core);
    }
    redisReply *r = redis_sync_command(&core->redis, "SET gantry:ecs:epoch %s", core->epoch);
    core->dirty_epoch = r == NULL;
    freeReplyObject(r);
}
