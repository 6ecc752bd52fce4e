#include "cli/status_cmd.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoscaler/activities.h"
#include "cli/redis_managed.h"
#include "cli/scaling_cmd.h"
#include "common/daemon.h"
#include "common/redis_sync.h"
#include "config/config.h"
#include "lb/discovery.h"

enum {
    EXIT_DONE = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    NAME_SHOWN = 64,     /* bytes of a name or a status shown before "..." */
    MESSAGE_SHOWN = 400, /* bytes of an event's message shown */
    NAME_ESCAPED = NAME_SHOWN * 4 + 8,
    MESSAGE_ESCAPED = MESSAGE_SHOWN * 4 + 8,
    CELL_MAX = 1024,
    KEY_MAX = 1024, /* a longer name is not looked up: its data shows as "?" */
    EVENTS_SHOWN = 5,
    SCALING_SHOWN = 3, /* the last scaling activities of a service */
    SHORT_ID = 8,      /* as docker shows container ids */
    TABLE_COLS_MAX = 8,
    DAY_SECONDS = 86400,
};

static const char USAGE_EXTRA[] =
    "\nWhat gantry-core keeps in Redis (docs/core.md), for a look at a running cluster:\n"
    "  - each cluster: status, ACTIVE services, running and pending tasks;\n"
    "  - each service: status, desired/running/pending tasks, task definition\n"
    "    (family:revision), load balancers (target group (container:port));\n"
    "  - its tasks that are not STOPPED: id (first 8 characters), lastStatus/desiredStatus,\n"
    "    host ports, and each target's state in gantry-lb (gantry:health:GROUP): healthy,\n"
    "    unhealthy (REASON), draining, ..., or - when gantry-lb has no record of it; then how\n"
    "    many are STOPPED;\n"
    "  - its last 5 events, newest first (local time);\n"
    "  - its last 3 scaling activities (gantry:autoscaling:activities:service/CLUSTER/NAME,\n"
    "    gantry scaling activities shows them all), newest first, when there are any.\n"
    "Tasks outside a service (RunTask) follow each cluster's services. A value that cannot be\n"
    "read shows as ?. Running counts tasks whose lastStatus is RUNNING, pending those still\n"
    "PROVISIONING, PENDING or ACTIVATING, as gantry-core does.\n"
    "Redis: --redis, else redis.url of the -c files, else the one `gantry up` runs (its socket\n"
    "up.run_dir/redis.sock, when there), else redis://127.0.0.1:6379.\n"
    "Exit status: 0 done, 1 Redis unreachable (or no such --cluster), 2 usage error.\n";

/* --- text --- */

/* A cell being written: bounded, always NUL-terminated; what does not fit is cut. */
struct text {
    char s[CELL_MAX];
    size_t len;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    if (t->len + 1 >= sizeof t->s)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s + t->len, sizeof t->s - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len = t->len + (size_t)n < sizeof t->s ? t->len + (size_t)n : sizeof t->s - 1;
}

/* Bytes from Redis made safe for a terminal: a value may hold escape sequences. */
static const char *esc(const char *s, size_t len, size_t max, char *out, size_t size)
{
    return lb_escape_text(s, len, max, out, size);
}

/* A string member of a JSON object, escaped; "?" when absent or not a string. out holds
 * NAME_ESCAPED bytes. */
static const char *member_text(const json_t *o, const char *key, char *out)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return "?";
    return esc(json_string_value(v), json_string_length(v), NAME_SHOWN, out, NAME_ESCAPED);
}

static const char *reply_text(const redisReply *r, char *out)
{
    return esc(r->str, r->len, NAME_SHOWN, out, NAME_ESCAPED);
}

static bool json_is_text(const json_t *v, const char *text)
{
    return json_is_string(v) && strcmp(json_string_value(v), text) == 0;
}

/* --- tables --- */

struct table {
    int cols;
    char **cells; /* row-major, row 0 the heads; a NULL cell (out of memory) prints empty */
    size_t rows, cap;
};

static void table_add(struct table *t, const char *const *row)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char **cells = realloc(t->cells, cap * (size_t)t->cols * sizeof *cells);
        if (!cells)
            return; /* a row less on the screen beats no screen at all */
        t->cells = cells;
        t->cap = cap;
    }
    for (int c = 0; c < t->cols; c++)
        t->cells[t->rows * (size_t)t->cols + (size_t)c] = strdup(row[c]);
    t->rows++;
}

static void table_init(struct table *t, int cols, const char *const *heads)
{
    assert(cols <= TABLE_COLS_MAX);
    memset(t, 0, sizeof *t);
    t->cols = cols;
    table_add(t, heads);
}

static const char *table_cell(const struct table *t, size_t row, int col)
{
    const char *cell = t->cells[row * (size_t)t->cols + (size_t)col];
    return cell ? cell : "";
}

/* Columns padded to their widest cell, two spaces apart, no trailing blanks. */
static void table_print(const struct table *t, const char *indent)
{
    int width[TABLE_COLS_MAX] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            int n = (int)strlen(table_cell(t, r, c));
            width[c] = n > width[c] ? n : width[c];
        }
    for (size_t r = 0; r < t->rows; r++) {
        fputs(indent, stdout);
        for (int c = 0; c < t->cols - 1; c++)
            printf("%-*s  ", width[c], table_cell(t, r, c));
        printf("%s\n", table_cell(t, r, t->cols - 1));
    }
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
}

/* --- reading Redis --- */

struct piece {
    const char *s;
    size_t len;
};

static struct piece piece_of(const char *s)
{
    return (struct piece){s, strlen(s)};
}

/* A hash as HGETALL answered it (pairs of strings). unreadable: the key holds another type. */
struct hash {
    redisReply *reply;
    bool unreadable;
};

/* The lb's view of one target group's targets. */
struct health {
    char *group;
    size_t len;
    struct hash hash;
};

struct status {
    struct redis_sync redis;
    bool lost; /* the connection failed: nothing more is read, the command fails */
    struct health *health;
    size_t n_health, cap_health;
    time_t now;
};

/* VERB KEY [ARG1 [ARG2]] where KEY is made of pieces (names as stored, binary-safe). NULL when
 * Redis refused it (a key of another type), the key is absurdly long, or the connection failed
 * (st->lost). */
static redisReply *key_command(struct status *st, const char *verb, const struct piece *key,
                               size_t n, const char *arg1, const char *arg2)
{
    char text[KEY_MAX];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (key[i].len > sizeof text - len)
            return NULL;
        memcpy(text + len, key[i].s, key[i].len);
        len += key[i].len;
    }
    if (st->lost)
        return NULL;
    const char *argv[4] = {verb, text, arg1, arg2};
    size_t lens[4] = {strlen(verb), len, arg1 ? strlen(arg1) : 0, arg2 ? strlen(arg2) : 0};
    redisReply *r = redis_sync_argv(&st->redis, arg2 ? 4 : arg1 ? 3 : 2, argv, lens);
    if (!r && !st->redis.c) /* redis_sync drops the connection on I/O errors only */
        st->lost = true;
    return r;
}

static void hash_fetch(struct status *st, struct hash *h, const struct piece *key, size_t n)
{
    redisReply *r = key_command(st, "HGETALL", key, n, NULL, NULL);
    h->reply = r && r->type == REDIS_REPLY_ARRAY ? r : NULL;
    h->unreadable = !h->reply && !st->lost;
    if (!h->reply)
        freeReplyObject(r);
}

static size_t hash_pairs(const struct hash *h)
{
    return h->reply ? h->reply->elements / 2 : 0;
}

/* Pair i's field and value; false when either is not a string. */
static bool hash_pair(const struct hash *h, size_t i, const redisReply **field,
                      const redisReply **value)
{
    *field = h->reply->element[2 * i];
    *value = h->reply->element[2 * i + 1];
    return (*field)->type == REDIS_REPLY_STRING && (*value)->type == REDIS_REPLY_STRING;
}

static const redisReply *hash_get(const struct hash *h, const char *field, size_t len)
{
    const redisReply *f, *v;
    for (size_t i = 0; i < hash_pairs(h); i++)
        if (hash_pair(h, i, &f, &v) && f->len == len && memcmp(f->str, field, len) == 0)
            return v;
    return NULL;
}

static void hash_free(struct hash *h)
{
    freeReplyObject(h->reply);
    h->reply = NULL;
}

/* gantry:health:GROUP, read once per group; NULL when out of memory. */
static const struct hash *health_of(struct status *st, const char *group, size_t len)
{
    for (size_t i = 0; i < st->n_health; i++)
        if (st->health[i].len == len && memcmp(st->health[i].group, group, len) == 0)
            return &st->health[i].hash;
    if (st->n_health == st->cap_health) {
        size_t cap = st->cap_health ? st->cap_health * 2 : 8;
        struct health *v = realloc(st->health, cap * sizeof *v);
        if (!v)
            return NULL;
        st->health = v;
        st->cap_health = cap;
    }
    struct health *h = &st->health[st->n_health];
    if (!(h->group = malloc(len + 1)))
        return NULL;
    memcpy(h->group, group, len);
    h->group[len] = '\0';
    h->len = len;
    const struct piece key[] = {piece_of("gantry:health:"), {group, len}};
    hash_fetch(st, &h->hash, key, 2);
    st->n_health++;
    return &h->hash;
}

/* A value that should be a JSON object; NULL when it is anything else. */
static json_t *parse_object(const redisReply *v)
{
    if (!v || v->type != REDIS_REPLY_STRING)
        return NULL;
    json_t *doc = json_loadb(v->str, v->len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* --- the model as read --- */

enum task_kind { KIND_RUNNING, KIND_PENDING, KIND_STOPPED, KIND_OTHER };

struct task_view {
    const redisReply *id;
    json_t *doc;          /* NULL: not a JSON object */
    struct piece service; /* s NULL: not in a service */
    enum task_kind kind;
    double created;
    bool in_service; /* listed under one of its cluster's services */
};

struct service_view {
    const redisReply *name;
    json_t *doc;         /* NULL: not a JSON object */
    redisReply *events;  /* newest first; NULL: unreadable */
    redisReply *scaling; /* activities, newest first; NULL: unreadable */
    int running, pending;
};

struct cluster_view {
    const redisReply *name;
    json_t *doc;
    struct hash services, tasks;
    struct service_view *svcs;
    size_t n_svcs;
    struct task_view *tasks_v;
    size_t n_tasks;
    int running, pending, active_services;
};

struct model {
    struct hash clusters;
    struct cluster_view *c;
    size_t n;
};

static int compare_bytes(const redisReply *a, const redisReply *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int d = memcmp(a->str, b->str, n);
    return d ? d : (a->len > b->len) - (a->len < b->len);
}

static int compare_clusters(const void *a, const void *b)
{
    return compare_bytes(((const struct cluster_view *)a)->name,
                         ((const struct cluster_view *)b)->name);
}

static int compare_services(const void *a, const void *b)
{
    return compare_bytes(((const struct service_view *)a)->name,
                         ((const struct service_view *)b)->name);
}

/* Oldest first, as they were started. */
static int compare_tasks(const void *a, const void *b)
{
    const struct task_view *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return compare_bytes(x->id, y->id);
}

/* ECS's counts, as gantry-core computes them from lastStatus. */
static enum task_kind kind_of(const json_t *doc)
{
    const json_t *s = json_object_get(doc, "lastStatus");
    if (json_is_text(s, "RUNNING"))
        return KIND_RUNNING;
    if (json_is_text(s, "PROVISIONING") || json_is_text(s, "PENDING") ||
        json_is_text(s, "ACTIVATING"))
        return KIND_PENDING;
    return json_is_text(s, "STOPPED") ? KIND_STOPPED : KIND_OTHER;
}

/* gantry-core's own record of the service (_gantry.service), else ECS's group "service:NAME". */
static struct piece service_of(const json_t *doc)
{
    const json_t *svc = json_object_get(json_object_get(doc, "_gantry"), "service");
    if (json_is_string(svc))
        return json_string_length(svc)
                   ? (struct piece){json_string_value(svc), json_string_length(svc)}
                   : (struct piece){NULL, 0};
    const json_t *group = json_object_get(doc, "group");
    if (json_is_string(group) && strncmp(json_string_value(group), "service:", 8) == 0)
        return (struct piece){json_string_value(group) + 8, json_string_length(group) - 8};
    return (struct piece){NULL, 0};
}

/* The first n elements of a list; NULL when the key holds another type (or is unreadable). */
static redisReply *list_fetch(struct status *st, const struct piece *key, size_t n_pieces, int n)
{
    char last[16];
    snprintf(last, sizeof last, "%d", n - 1);
    redisReply *r = key_command(st, "LRANGE", key, n_pieces, "0", last);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static int load_services(struct status *st, struct cluster_view *c)
{
    c->svcs = calloc(hash_pairs(&c->services) + 1, sizeof *c->svcs);
    if (!c->svcs)
        return -1;
    const redisReply *field, *value;
    for (size_t i = 0; i < hash_pairs(&c->services); i++)
        if (hash_pair(&c->services, i, &field, &value))
            c->svcs[c->n_svcs++] = (struct service_view){.name = field, .doc = parse_object(value)};
    qsort(c->svcs, c->n_svcs, sizeof *c->svcs, compare_services);
    for (size_t i = 0; i < c->n_svcs; i++) {
        const struct piece cluster = {c->name->str, c->name->len},
                           service = {c->svcs[i].name->str, c->svcs[i].name->len};
        const struct piece events[] = {piece_of("gantry:ecs:events:"), cluster, piece_of(":"),
                                       service};
        const struct piece scaling[] = {piece_of(ACTIVITIES_KEY_PREFIX "service/"), cluster,
                                        piece_of("/"), service};
        c->svcs[i].events = list_fetch(st, events, 4, EVENTS_SHOWN);
        c->svcs[i].scaling = list_fetch(st, scaling, 4, SCALING_SHOWN);
    }
    return 0;
}

/* Reads every target group the tasks name now, so printing never waits on Redis. */
static int prefetch_health(struct status *st, const struct task_view *t)
{
    const json_t *targets = json_object_get(json_object_get(t->doc, "_gantry"), "targets");
    size_t i;
    json_t *target;
    json_array_foreach(targets, i, target)
    {
        const json_t *group = json_object_get(target, "group");
        if (json_is_string(group) &&
            !health_of(st, json_string_value(group), json_string_length(group)))
            return -1;
    }
    return 0;
}

static int load_tasks(struct status *st, struct cluster_view *c)
{
    c->tasks_v = calloc(hash_pairs(&c->tasks) + 1, sizeof *c->tasks_v);
    if (!c->tasks_v)
        return -1;
    const redisReply *field, *value;
    for (size_t i = 0; i < hash_pairs(&c->tasks); i++) {
        if (!hash_pair(&c->tasks, i, &field, &value))
            continue;
        json_t *doc = parse_object(value);
        c->tasks_v[c->n_tasks++] = (struct task_view){
            .id = field,
            .doc = doc,
            .service = service_of(doc),
            .kind = doc ? kind_of(doc) : KIND_OTHER,
            .created = json_number_value(json_object_get(doc, "createdAt")),
        };
    }
    qsort(c->tasks_v, c->n_tasks, sizeof *c->tasks_v, compare_tasks);
    for (size_t i = 0; i < c->n_tasks; i++)
        if (c->tasks_v[i].kind != KIND_STOPPED && prefetch_health(st, &c->tasks_v[i]) < 0)
            return -1;
    return 0;
}

static struct service_view *service_named(struct cluster_view *c, struct piece name)
{
    for (size_t i = 0; name.s && i < c->n_svcs; i++)
        if (c->svcs[i].name->len == name.len && memcmp(c->svcs[i].name->str, name.s, name.len) == 0)
            return &c->svcs[i];
    return NULL;
}

static void count(struct cluster_view *c)
{
    for (size_t i = 0; i < c->n_tasks; i++) {
        struct task_view *t = &c->tasks_v[i];
        struct service_view *svc = service_named(c, t->service);
        t->in_service = svc != NULL;
        c->running += t->kind == KIND_RUNNING;
        c->pending += t->kind == KIND_PENDING;
        if (svc) {
            svc->running += t->kind == KIND_RUNNING;
            svc->pending += t->kind == KIND_PENDING;
        }
    }
    for (size_t i = 0; i < c->n_svcs; i++)
        c->active_services += json_is_text(json_object_get(c->svcs[i].doc, "status"), "ACTIVE");
}

static int load_cluster(struct status *st, struct cluster_view *c)
{
    const struct piece name = {c->name->str, c->name->len};
    const struct piece services[] = {piece_of("gantry:ecs:services:"), name};
    const struct piece tasks[] = {piece_of("gantry:ecs:tasks:"), name};
    hash_fetch(st, &c->services, services, 2);
    hash_fetch(st, &c->tasks, tasks, 2);
    if (st->lost || load_services(st, c) < 0 || load_tasks(st, c) < 0 || st->lost)
        return -1;
    count(c);
    return 0;
}

/* "NAME" or "arn:...:cluster/NAME". */
static bool cluster_matches(const redisReply *name, const char *only)
{
    if (!only)
        return true;
    const char *slash = strncmp(only, "arn:", 4) == 0 ? strrchr(only, '/') : NULL;
    const char *want = slash ? slash + 1 : only;
    return strlen(want) == name->len && memcmp(want, name->str, name->len) == 0;
}

/* Everything is read before anything is printed: a lost connection fails the command without a
 * half-printed screen. */
static int load(struct status *st, const char *only, struct model *m)
{
    const struct piece key[] = {piece_of("gantry:ecs:clusters")};
    hash_fetch(st, &m->clusters, key, 1);
    if (st->lost || !(m->c = calloc(hash_pairs(&m->clusters) + 1, sizeof *m->c)))
        return -1;
    const redisReply *field, *value;
    for (size_t i = 0; i < hash_pairs(&m->clusters); i++)
        if (hash_pair(&m->clusters, i, &field, &value) && cluster_matches(field, only))
            m->c[m->n++] = (struct cluster_view){.name = field, .doc = parse_object(value)};
    qsort(m->c, m->n, sizeof *m->c, compare_clusters);
    for (size_t i = 0; i < m->n; i++)
        if (load_cluster(st, &m->c[i]) < 0)
            return -1;
    return 0;
}

static void model_free(struct model *m, struct status *st)
{
    for (size_t i = 0; m->c && i < m->n; i++) {
        struct cluster_view *c = &m->c[i];
        json_decref(c->doc);
        for (size_t j = 0; c->svcs && j < c->n_svcs; j++) {
            json_decref(c->svcs[j].doc);
            freeReplyObject(c->svcs[j].events);
            freeReplyObject(c->svcs[j].scaling);
        }
        for (size_t j = 0; c->tasks_v && j < c->n_tasks; j++)
            json_decref(c->tasks_v[j].doc);
        free(c->svcs);
        free(c->tasks_v);
        hash_free(&c->services);
        hash_free(&c->tasks);
    }
    free(m->c);
    hash_free(&m->clusters);
    for (size_t i = 0; i < st->n_health; i++) {
        free(st->health[i].group);
        hash_free(&st->health[i].hash);
    }
    free(st->health);
}

/* --- cells --- */

/* ECS timestamps are epoch seconds; an event of another day also shows its date. */
static const char *time_text(const json_t *when, time_t now, char *out, size_t size)
{
    double s = json_number_value(when);
    if (!json_is_number(when) || !(s >= 0 && s < 253402300800.0)) /* 10000-01-01 */
        return "?";
    time_t t = (time_t)s;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return "?";
    if (now - t < DAY_SECONDS && t - now < DAY_SECONDS)
        strftime(out, size, "%H:%M:%S", &tm);
    else
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
    return out;
}

/* "family:revision" of a task definition ARN. */
static const char *taskdef_text(const json_t *doc, char *out)
{
    const json_t *v = json_object_get(doc, "taskDefinition");
    if (!json_is_string(v))
        return "?";
    static const char mark[] = ":task-definition/";
    const char *p = strstr(json_string_value(v), mark);
    if (!p)
        return member_text(doc, "taskDefinition", out);
    p += sizeof mark - 1;
    return esc(p, strlen(p), NAME_SHOWN, out, NAME_ESCAPED);
}

/* The primary deployment's rolloutState, with the number of older deployments still running
 * down during a rolling update: "COMPLETED", "IN_PROGRESS +1", "FAILED +1". */
static const char *rollout_text(const json_t *doc, char *out)
{
    const json_t *deployments = json_object_get(doc, "deployments");
    const json_t *primary = json_array_get(deployments, 0);
    if (!primary)
        return "-";
    char state[NAME_ESCAPED];
    member_text(primary, "rolloutState", state);
    size_t older = json_array_size(deployments) - 1;
    if (older)
        snprintf(out, NAME_ESCAPED, "%.60s +%zu", state, older);
    else
        snprintf(out, NAME_ESCAPED, "%.60s", state);
    return out;
}

/* gantry-lb's group name in a target group ARN (arn:...:targetgroup/NAME/ID), as gantry-core
 * reads it, or the plain name. */
static const char *group_text(const json_t *arn, char *out)
{
    if (!json_is_string(arn))
        return "?";
    static const char mark[] = ":targetgroup/";
    const char *s = json_string_value(arn), *p = strstr(s, mark);
    if (strncmp(s, "arn:", 4) == 0 && p)
        s = p + sizeof mark - 1;
    return esc(s, strcspn(s, "/"), NAME_SHOWN, out, NAME_ESCAPED);
}

static void port_add(struct text *t, const json_t *port)
{
    json_int_t p = json_integer_value(port);
    if (json_is_integer(port) && p >= 0 && p <= 65535)
        text_add(t, "%lld", (long long)p);
    else
        text_add(t, "?");
}

static void load_balancers_text(const json_t *doc, struct text *t)
{
    const json_t *lbs = json_object_get(doc, "loadBalancers");
    if (!json_is_array(lbs) || json_array_size(lbs) == 0) {
        text_add(t, "%s", json_is_array(lbs) ? "-" : "?");
        return;
    }
    size_t i;
    json_t *lb;
    json_array_foreach(lbs, i, lb)
    {
        char group[NAME_ESCAPED], container[NAME_ESCAPED];
        text_add(t, "%s%s (%s:", i ? ", " : "",
                 group_text(json_object_get(lb, "targetGroupArn"), group),
                 member_text(lb, "containerName", container));
        port_add(t, json_object_get(lb, "containerPort"));
        text_add(t, ")");
    }
}

static void ports_text(const json_t *doc, struct text *t)
{
    const json_t *containers = json_object_get(doc, "containers");
    if (!json_is_array(containers)) {
        text_add(t, "?");
        return;
    }
    bool any = false;
    size_t i, j;
    json_t *c, *b;
    json_array_foreach(containers, i, c)
    {
        const json_t *bindings = json_object_get(c, "networkBindings");
        if (bindings && !json_is_array(bindings)) {
            text_add(t, "%s?", any ? "," : "");
            any = true;
        }
        json_array_foreach(bindings, j, b)
        {
            char ip[NAME_ESCAPED];
            const char *host = member_text(b, "bindIP", ip);
            text_add(t, strchr(host, ':') ? "%s[%s]:" : "%s%s:", any ? "," : "", host);
            port_add(t, json_object_get(b, "hostPort"));
            any = true;
        }
    }
    if (!any)
        text_add(t, "-");
}

/* A reason that only restates the state is left out: "draining", not "draining
 * (Target.DeregistrationInProgress)". */
static bool reason_implied(const char *state, const char *reason)
{
    static const char *const implied[][2] = {
        {"draining", "Target.DeregistrationInProgress"},
        {"initial", "Elb.InitialHealthChecking"},
    };
    for (size_t i = 0; i < sizeof implied / sizeof implied[0]; i++)
        if (strcmp(state, implied[i][0]) == 0 && strcmp(reason, implied[i][1]) == 0)
            return true;
    return false;
}

/* gantry-lb's record of one target: "healthy", "unhealthy (Target.Timeout)", "-" for none. */
static void target_state(struct status *st, const json_t *group, const json_t *addr, struct text *t)
{
    const struct hash *h = json_is_string(group) && json_is_string(addr)
                               ? health_of(st, json_string_value(group), json_string_length(group))
                               : NULL;
    if (!h || h->unreadable) {
        text_add(t, "?");
        return;
    }
    const redisReply *v = hash_get(h, json_string_value(addr), json_string_length(addr));
    json_t *record = parse_object(v);
    const json_t *state = json_object_get(record, "state"),
                 *reason = json_object_get(record, "reason");
    char s[NAME_ESCAPED], r[NAME_ESCAPED];
    if (!v)
        text_add(t, "-");
    else if (!json_is_string(state))
        text_add(t, "?");
    else if (!json_is_string(reason) || !json_string_length(reason) ||
             reason_implied(json_string_value(state), json_string_value(reason)))
        text_add(t, "%s", member_text(record, "state", s));
    else
        text_add(t, "%s (%s)", member_text(record, "state", s), member_text(record, "reason", r));
    json_decref(record);
}

static void targets_text(struct status *st, const json_t *doc, struct text *t)
{
    const json_t *targets = json_object_get(json_object_get(doc, "_gantry"), "targets");
    if (!json_is_array(targets) || json_array_size(targets) == 0) {
        text_add(t, "%s", json_is_array(targets) ? "-" : "?");
        return;
    }
    size_t i;
    json_t *target;
    json_array_foreach(targets, i, target)
    {
        char group[NAME_ESCAPED];
        text_add(t, "%s%s ", i ? ", " : "", member_text(target, "group", group));
        target_state(st, json_object_get(target, "group"), json_object_get(target, "addr"), t);
    }
}

/* --- printing --- */

static void task_row(struct status *st, const struct task_view *task, struct table *table)
{
    char id[NAME_ESCAPED], last[NAME_ESCAPED], desired[NAME_ESCAPED];
    struct text status = {.len = 0}, ports = {.len = 0}, targets = {.len = 0};
    if (task->id->len)
        esc(task->id->str, task->id->len < SHORT_ID ? task->id->len : SHORT_ID, SHORT_ID, id,
            sizeof id);
    else
        snprintf(id, sizeof id, "?");
    if (task->doc) {
        text_add(&status, "%s/%s", member_text(task->doc, "lastStatus", last),
                 member_text(task->doc, "desiredStatus", desired));
        ports_text(task->doc, &ports);
        targets_text(st, task->doc, &targets);
    } else {
        text_add(&status, "?");
        text_add(&ports, "?");
        text_add(&targets, "?");
    }
    const char *row[] = {id, status.s, ports.s, targets.s};
    table_add(table, row);
}

/* The tasks of svc, or with svc NULL those of no listed service; STOPPED ones only counted. */
static void print_tasks(struct status *st, const struct cluster_view *c,
                        const struct service_view *svc)
{
    static const char *const heads[] = {"TASK", "STATUS", "PORTS", "TARGETS"};
    struct table table;
    table_init(&table, 4, heads);
    int stopped = 0;
    for (size_t i = 0; i < c->n_tasks; i++) {
        const struct task_view *t = &c->tasks_v[i];
        bool mine = svc ? t->in_service && t->service.len == svc->name->len &&
                              memcmp(t->service.s, svc->name->str, svc->name->len) == 0
                        : !t->in_service;
        if (!mine)
            continue;
        if (t->kind == KIND_STOPPED)
            stopped++;
        else
            task_row(st, t, &table);
    }
    if (table.rows > 1)
        table_print(&table, "  ");
    if (stopped)
        printf("  %d stopped\n", stopped);
    if (table.rows <= 1 && !stopped)
        printf("  no tasks\n");
    table_free(&table);
}

/* An event's message without its "(service NAME) " lead: the block already names the service. */
static const char *event_message(const json_t *event, const redisReply *service, char *out)
{
    const json_t *m = json_object_get(event, "message");
    if (!json_is_string(m))
        return "?";
    const char *s = json_string_value(m);
    size_t len = json_string_length(m);
    if (len > service->len + 11 && strncmp(s, "(service ", 9) == 0 &&
        memcmp(s + 9, service->str, service->len) == 0 &&
        strncmp(s + 9 + service->len, ") ", 2) == 0) {
        s += service->len + 11;
        len -= service->len + 11;
    }
    return esc(s, len, MESSAGE_SHOWN, out, MESSAGE_ESCAPED);
}

static void print_events(const struct service_view *svc, time_t now)
{
    if (!svc->events) {
        printf("  events: ?\n");
        return;
    }
    static const char *const heads[] = {"TIME", "EVENT"};
    struct table table;
    table_init(&table, 2, heads);
    for (size_t i = 0; i < svc->events->elements && i < EVENTS_SHOWN; i++) {
        json_t *event = parse_object(svc->events->element[i]);
        char when[32], message[MESSAGE_ESCAPED];
        const char *row[] = {time_text(json_object_get(event, "createdAt"), now, when, sizeof when),
                             event_message(event, svc->name, message)};
        table_add(&table, row);
        json_decref(event);
    }
    if (table.rows > 1)
        table_print(&table, "  ");
    table_free(&table);
}

/* gantry-autoscaler's last activities, under a SCALING heading; nothing when there are none. */
static void print_scaling(const struct service_view *svc, time_t now)
{
    if (!svc->scaling) {
        printf("  scaling: ?\n");
        return;
    }
    static const char *const heads[] = {"SCALING", "STATUS", "DESCRIPTION", "CAUSE"};
    struct table table;
    table_init(&table, 4, heads);
    for (size_t i = 0; i < svc->scaling->elements && i < SCALING_SHOWN; i++) {
        const redisReply *v = svc->scaling->element[i];
        struct scaling_row row;
        if (v->type == REDIS_REPLY_STRING)
            scaling_row_of(v->str, v->len, now, true, &row);
        else
            scaling_row_of("", 0, now, true, &row); /* every cell "?" */
        const char *cells[] = {row.time, row.status, row.description, row.cause};
        table_add(&table, cells);
    }
    if (table.rows > 1)
        table_print(&table, "  ");
    table_free(&table);
}

static void print_service(struct status *st, const struct cluster_view *c,
                          const struct service_view *svc)
{
    static const char *const heads[] = {
        "SERVICE",         "CLUSTER", "STATUS",        "DESIRED/RUNNING/PENDING",
        "TASK DEFINITION", "ROLLOUT", "LOAD BALANCERS"};
    char name[NAME_ESCAPED], cluster[NAME_ESCAPED], status[NAME_ESCAPED], taskdef[NAME_ESCAPED],
        rollout[NAME_ESCAPED];
    struct text counts = {.len = 0}, lbs = {.len = 0};
    const json_t *desired = json_object_get(svc->doc, "desiredCount");
    if (json_is_integer(desired))
        text_add(&counts, "%lld", (long long)json_integer_value(desired));
    else
        text_add(&counts, "?");
    text_add(&counts, "/%d/%d", svc->running, svc->pending);
    if (svc->doc)
        load_balancers_text(svc->doc, &lbs);
    else
        text_add(&lbs, "?");
    const char *row[] = {reply_text(svc->name, name),
                         reply_text(c->name, cluster),
                         member_text(svc->doc, "status", status),
                         counts.s,
                         taskdef_text(svc->doc, taskdef),
                         svc->doc ? rollout_text(svc->doc, rollout) : "?",
                         lbs.s};
    struct table table;
    table_init(&table, 7, heads);
    table_add(&table, row);
    printf("\n");
    table_print(&table, "");
    table_free(&table);
    print_tasks(st, c, svc);
    print_events(svc, st->now);
    print_scaling(svc, st->now);
}

static void print_clusters(const struct model *m)
{
    static const char *const heads[] = {"CLUSTER", "STATUS", "SERVICES", "RUNNING", "PENDING"};
    struct table table;
    table_init(&table, 5, heads);
    for (size_t i = 0; i < m->n; i++) {
        const struct cluster_view *c = &m->c[i];
        char name[NAME_ESCAPED], status[NAME_ESCAPED], services[16], running[16], pending[16];
        snprintf(services, sizeof services, "%d", c->active_services);
        snprintf(running, sizeof running, "%d", c->running);
        snprintf(pending, sizeof pending, "%d", c->pending);
        const char *row[] = {reply_text(c->name, name), member_text(c->doc, "status", status),
                             services, running, pending};
        table_add(&table, row);
    }
    table_print(&table, "");
    table_free(&table);
}

static void print_cluster(struct status *st, const struct cluster_view *c)
{
    char name[NAME_ESCAPED];
    if (c->services.unreadable)
        printf("\ncluster %s: services ?\n", reply_text(c->name, name));
    for (size_t i = 0; i < c->n_svcs; i++)
        print_service(st, c, &c->svcs[i]);
    bool others = c->tasks.unreadable;
    for (size_t i = 0; i < c->n_tasks; i++)
        others |= !c->tasks_v[i].in_service;
    if (!others)
        return;
    printf("\nTASKS NOT IN A SERVICE (cluster %s)\n", reply_text(c->name, name));
    if (c->tasks.unreadable)
        printf("  tasks: ?\n");
    else
        print_tasks(st, c, NULL);
}

/* --- the command --- */

static void print_no_cluster(const struct status *st, const struct model *m, const char *only)
{
    if (m->clusters.unreadable) {
        printf("%s: clusters ? (gantry:ecs:clusters is not a hash)\n", st->redis.url_text);
    } else if (!only) {
        printf("%s: no cluster (is gantry-core running?)\n", st->redis.url_text);
    } else {
        fprintf(stderr, "gantry status: no cluster '%s' in Redis at %s (clusters:", only,
                st->redis.url_text);
        const redisReply *field, *value;
        char name[NAME_ESCAPED];
        for (size_t i = 0; i < hash_pairs(&m->clusters); i++)
            if (hash_pair(&m->clusters, i, &field, &value))
                fprintf(stderr, " %s", reply_text(field, name));
        fprintf(stderr, "%s)\n", hash_pairs(&m->clusters) ? "" : " none");
    }
}

static int show(struct status *st, const char *only)
{
    struct model m = {0};
    int status = EXIT_DONE;
    if (load(st, only, &m) < 0) {
        fprintf(stderr, "gantry status: %s\n", st->lost ? st->redis.error : "out of memory");
        status = EXIT_FAILED;
    } else if (m.n == 0) {
        print_no_cluster(st, &m, only);
        status = only && !m.clusters.unreadable ? EXIT_FAILED : EXIT_DONE;
    } else {
        print_clusters(&m);
        for (size_t i = 0; i < m.n; i++)
            print_cluster(st, &m.c[i]);
    }
    model_free(&m, st);
    if (fflush(stdout) != 0 && status == EXIT_DONE)
        status = EXIT_FAILED;
    return status;
}

static int run(const char *only, const struct daemon_args *args)
{
    struct redis_url url;
    char why[160];
    if (args->redis_url && value_parse_redis_url(args->redis_url, &url, why, sizeof why) < 0) {
        fprintf(stderr, "gantry status: --redis '%s': %s (see gantry status --help)\n",
                args->redis_url, why);
        return EXIT_USAGE;
    }
    struct gantry_config cfg;
    int status = config_daemon_start(&cfg, args, "gantry");
    if (status >= 0)
        return status;
    if (!cfg.redis.url.addr.len)
        redis_managed_default_url(cfg.up.run_dir, &cfg.redis.url);
    struct status st = {.now = time(NULL)};
    redis_sync_init(&st.redis, &cfg.redis.url, cfg.redis.connect_timeout_ms);
    if (redis_sync_connect(&st.redis) < 0) {
        fprintf(stderr, "gantry status: %s\n", st.redis.error);
        status = EXIT_FAILED;
    } else {
        status = show(&st, only);
    }
    redis_sync_close(&st.redis);
    config_free(&cfg);
    return status;
}

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    (void)option; /* --cluster is the only one */
    *(const char **)ctx = arg;
    return 0;
}

int status_cmd_main(int argc, char **argv)
{
    static const struct daemon_option extra[] = {
        {"cluster", true, "--cluster NAME        only this cluster (its name or ARN)"},
        {NULL, false, NULL},
    };
    const char *only = NULL;
    const struct daemon_usage usage = {
        .name = "gantry status",
        .summary = "clusters, services, tasks and their targets' health, from Redis",
        .flags = DAEMON_TAKES_REDIS,
        .extra = USAGE_EXTRA,
        .options = extra,
        .on_option = on_option,
        .ctx = &only,
    };
    struct daemon_args args;
    int status = daemon_args_parse(argc, argv, &usage, &args);
    if (status != DAEMON_ARGS_GO_ON)
        return status;
    if (args.first_operand < argc) {
        fprintf(stderr, "gantry status: unexpected argument '%s' (see gantry status --help)\n",
                argv[args.first_operand]);
        return EXIT_USAGE;
    }
    return run(only, &args);
}
