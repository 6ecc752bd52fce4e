#include "cli/scaling_cmd.h"

#include "cli/args.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler/activities.h"
#include "cli/redis_managed.h"
#include "common/daemon.h"
#include "common/redis_sync.h"
#include "config/config.h"
#include "config/values.h"
#include "lb/discovery.h"

enum {
    EXIT_DONE = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    QUOTED_SHOWN = 64, /* bytes of a command-line value quoted in a message */
    QUOTED_MAX = SCALING_ESCAPED(QUOTED_SHOWN),
    RESOURCE_SHOWN = 200,
    MESSAGE_SHOWN = 100,  /* bytes of a StatusMessage in the STATUS cell */
    ECS_NAME_MAX = 255,   /* a cluster or service name */
    RESOURCES_MAX = 1000, /* scalable targets listed without --resource-id */
    /* the activities kept in memory, as Redis sent them: a Redis full of huge values costs a
     * bounded amount */
    BYTES_MAX = 64 << 20,
    SCAN_ROUNDS_MAX = 100000, /* SCAN calls of SCAN_COUNT keys: a bounded wait on any Redis */
    DAY_SECONDS = 86400,
    TABLE_COLS = 5,
};

#define SCAN_COUNT "1000"
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const int64_t MAX_ITEMS_MAX = 1000000;
static const double TIME_MAX = 253402300800.0; /* 10000-01-01: later is no time at all */

static const char USAGE_EXTRA[] =
    "\ncommands:\n"
    "  gantry scaling activities [--resource-id service/CLUSTER/SERVICE] [--max-items N] "
    "[--json]\n"
    "      the scaling activities gantry-autoscaler recorded (the last 100 of each scalable\n"
    "      target), newest first: START TIME (local time), RESOURCE, STATUS (with the\n"
    "      StatusMessage of one that did not succeed), DESCRIPTION and CAUSE. --json prints\n"
    "      {\"ScalingActivities\": [...]} as Application Auto Scaling's\n"
    "      DescribeScalingActivities answers (StartTime and EndTime in epoch seconds).\n"
    "      Without --resource-id: every scalable target's (at most 1000 of them).\n"
    "\n"
    "An activity that cannot be read (not JSON, a member of the wrong type) shows as ? in the\n"
    "table and is left out of the JSON, which says so on stderr.\n"
    "Redis: --redis, else redis.url of the -c files, else the one `gantry up` runs (its socket\n"
    "up.run_dir/redis.sock, when there), else redis://127.0.0.1:6379.\n"
    "Exit status: 0 done, 1 an invalid --resource-id or --max-items, or Redis unreachable,\n"
    "2 usage error.\n";

_Static_assert(ACTIVITIES_KEPT == 100, "update USAGE_EXTRA: the activities kept per target");

/* --- one activity --- */

enum member_kind { MEMBER_TEXT, MEMBER_TIME, MEMBER_STATUS };

/* The members of DescribeScalingActivities' activities, in its order; others are dropped. */
static const struct {
    const char *name;
    enum member_kind kind;
    bool required; /* by the API: an activity without it is not shown in the JSON */
} MEMBERS[] = {
    {"ActivityId", MEMBER_TEXT, true},   {"ServiceNamespace", MEMBER_TEXT, true},
    {"ResourceId", MEMBER_TEXT, true},   {"ScalableDimension", MEMBER_TEXT, true},
    {"Description", MEMBER_TEXT, true},  {"Cause", MEMBER_TEXT, true},
    {"StartTime", MEMBER_TIME, true},    {"EndTime", MEMBER_TIME, false},
    {"StatusCode", MEMBER_STATUS, true}, {"StatusMessage", MEMBER_TEXT, false},
    {"Details", MEMBER_TEXT, false},
};

static bool is_status_code(const char *s)
{
    static const char *const codes[] = {"Pending",    "InProgress",  "Successful",
                                        "Overridden", "Unfulfilled", "Failed"};
    for (size_t i = 0; i < COUNT_OF(codes); i++)
        if (strcmp(s, codes[i]) == 0)
            return true;
    return false;
}

static bool member_ok(const json_t *v, enum member_kind kind)
{
    if (kind == MEMBER_TIME)
        return json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < TIME_MAX;
    if (kind == MEMBER_STATUS)
        return json_is_string(v) && is_status_code(json_string_value(v));
    return json_is_string(v);
}

/* An element of an activities list as a document holding only the API's members, each of its
 * type: an empty object when the element is not a JSON object at all. NULL: out of memory. */
static json_t *activity_parse(const char *text, size_t len)
{
    json_t *out = json_object();
    json_t *doc = out && len <= SCALING_DOC_MAX ? json_loadb(text, len, 0, NULL) : NULL;
    for (size_t i = 0; json_is_object(doc) && i < COUNT_OF(MEMBERS); i++) {
        json_t *v = json_object_get(doc, MEMBERS[i].name);
        if (member_ok(v, MEMBERS[i].kind) && json_object_set(out, MEMBERS[i].name, v) < 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    }
    json_decref(doc);
    return out;
}

/* Whether the document is one DescribeScalingActivities could answer. */
static bool activity_complete(const json_t *doc)
{
    for (size_t i = 0; i < COUNT_OF(MEMBERS); i++)
        if (MEMBERS[i].required && !json_object_get(doc, MEMBERS[i].name))
            return false;
    return true;
}

/* --- its cells --- */

static void text_cell(const json_t *doc, const char *name, size_t max, char *out, size_t size)
{
    const json_t *v = json_object_get(doc, name);
    if (json_is_string(v))
        lb_escape_text(json_string_value(v), json_string_length(v), max, out, size);
    else
        snprintf(out, size, "?");
}

static void time_cell(const json_t *when, time_t now, bool short_time, char *out, size_t size)
{
    snprintf(out, size, "?");
    if (!json_is_number(when))
        return;
    time_t t = (time_t)json_number_value(when);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return;
    if (short_time && now - t < DAY_SECONDS && t - now < DAY_SECONDS)
        strftime(out, size, "%H:%M:%S", &tm);
    else
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

/* "Successful", or "Failed (why)": the reason belongs next to the failure. */
static void status_cell(const json_t *doc, char *out, size_t size)
{
    const json_t *code = json_object_get(doc, "StatusCode");
    const json_t *message = json_object_get(doc, "StatusMessage");
    if (!code) {
        snprintf(out, size, "?");
        return;
    }
    if (json_string_length(message) == 0) {
        snprintf(out, size, "%s", json_string_value(code)); /* a known word: nothing to escape */
        return;
    }
    char why[SCALING_ESCAPED(MESSAGE_SHOWN)];
    lb_escape_text(json_string_value(message), json_string_length(message), MESSAGE_SHOWN, why,
                   sizeof why);
    snprintf(out, size, "%s (%s)", json_string_value(code), why);
}

static void row_from(const json_t *doc, time_t now, bool short_time, struct scaling_row *out)
{
    time_cell(json_object_get(doc, "StartTime"), now, short_time, out->time, sizeof out->time);
    status_cell(doc, out->status, sizeof out->status);
    text_cell(doc, "Description", SCALING_DESCRIPTION_SHOWN, out->description,
              sizeof out->description);
    text_cell(doc, "Cause", SCALING_CAUSE_SHOWN, out->cause, sizeof out->cause);
}

void scaling_row_of(const char *text, size_t len, time_t now, bool short_time,
                    struct scaling_row *out)
{
    json_t *doc = activity_parse(text, len); /* NULL (out of memory): every cell "?" */
    row_from(doc, now, short_time, out);
    json_decref(doc);
}

/* --- reading Redis --- */

/* A key of an activities list, as stored (binary-safe). */
struct resource {
    char *key;
    size_t len;
};

struct entry {
    json_t *doc;     /* activity_parse's */
    bool complete;   /* shown in the JSON */
    double order;    /* the merge key, newest first (see order_entries) */
    size_t resource; /* index in reading.resources */
    size_t pos;      /* in its list */
};

/* Everything is read before anything is printed: a connection lost on the way fails the command
 * without a half-printed table. */
struct reading {
    struct redis_sync redis;
    struct resource *resources;
    size_t n_resources;
    bool resources_cut; /* there were more than RESOURCES_MAX */
    bool scan_cut;      /* SCAN_ROUNDS_MAX rounds did not reach the end of the keys */
    size_t bytes;       /* of the elements parsed so far */
    bool bytes_cut;     /* past BYTES_MAX: the rest was not read */
    struct entry *entries;
    size_t n_entries, cap_entries;
    char error[600]; /* why reading failed */
};

static int fail(struct reading *rd, const char *why)
{
    snprintf(rd->error, sizeof rd->error, "%s", why);
    return -1;
}

static bool has_resource(const struct reading *rd, const char *key, size_t len)
{
    for (size_t i = 0; i < rd->n_resources; i++)
        if (rd->resources[i].len == len && memcmp(rd->resources[i].key, key, len) == 0)
            return true;
    return false;
}

static int add_resource(struct reading *rd, const char *key, size_t len)
{
    if (has_resource(rd, key, len)) /* SCAN may return a key twice */
        return 0;
    if (rd->n_resources == RESOURCES_MAX) {
        rd->resources_cut = true;
        return 0;
    }
    if (!rd->resources && !(rd->resources = calloc(RESOURCES_MAX, sizeof *rd->resources)))
        return fail(rd, "out of memory");
    struct resource *r = &rd->resources[rd->n_resources];
    if (!(r->key = malloc(len + 1)))
        return fail(rd, "out of memory");
    memcpy(r->key, key, len);
    r->key[len] = '\0';
    r->len = len;
    rd->n_resources++;
    return 0;
}

/* One SCAN answer: [cursor, [key...]]. 1: scan on from the cursor written to cursor; 0: done;
 * -1: failed. */
static int take_scan_reply(struct reading *rd, const redisReply *r, char *cursor, size_t size)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= size ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return fail(rd, "Redis answered SCAN with something else than a cursor and keys");
    const redisReply *keys = r->element[1];
    for (size_t i = 0; i < keys->elements && !rd->resources_cut; i++)
        if (keys->element[i]->type == REDIS_REPLY_STRING &&
            add_resource(rd, keys->element[i]->str, keys->element[i]->len) < 0)
            return -1;
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    return strcmp(cursor, "0") != 0 && !rd->resources_cut;
}

static int compare_resources(const void *a, const void *b)
{
    const struct resource *x = a, *y = b;
    int d = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

/* Every key with the activities prefix, in byte order. */
static int scan_resources(struct reading *rd)
{
    char cursor[32] = "0";
    int rc = 1;
    for (int round = 0; rc > 0 && round < SCAN_ROUNDS_MAX; round++) {
        const char *argv[] = {"SCAN",  cursor,    "MATCH", ACTIVITIES_KEY_PREFIX "*",
                              "COUNT", SCAN_COUNT};
        redisReply *r = redis_sync_argv(&rd->redis, 6, argv, NULL);
        rc = r ? take_scan_reply(rd, r, cursor, sizeof cursor) : fail(rd, rd->redis.error);
        freeReplyObject(r);
    }
    if (rc > 0)
        rd->scan_cut = true;
    if (rc >= 0 && rd->n_resources)
        qsort(rd->resources, rd->n_resources, sizeof *rd->resources, compare_resources);
    return rc < 0 ? -1 : 0;
}

static int add_entry(struct reading *rd, const struct entry *e)
{
    if (rd->n_entries == rd->cap_entries) {
        size_t cap = rd->cap_entries ? rd->cap_entries * 2 : 64;
        struct entry *v = realloc(rd->entries, cap * sizeof *v);
        if (!v)
            return fail(rd, "out of memory");
        rd->entries = v;
        rd->cap_entries = cap;
    }
    rd->entries[rd->n_entries++] = *e;
    return 0;
}

/* The merge key of one list's entries: the StartTime. One without a StartTime keeps its place in
 * its list (newest first) by taking its newer neighbour's, or, first in the list, its older
 * one's. */
static void order_entries(struct entry *e, size_t n)
{
    double newer = NAN;
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_object_get(e[i].doc, "StartTime");
        e[i].order = t ? json_number_value(t) : newer;
        newer = e[i].order;
    }
    double older = 0;
    for (size_t i = n; i-- > 0;) {
        if (isnan(e[i].order))
            e[i].order = older;
        older = e[i].order;
    }
}

static int add_entries(struct reading *rd, size_t resource, const redisReply *list)
{
    size_t first = rd->n_entries;
    for (size_t i = 0; i < list->elements && !rd->bytes_cut; i++) {
        const redisReply *v = list->element[i];
        /* what a document keeps in memory: a longer element is not parsed at all */
        rd->bytes += v->type == REDIS_REPLY_STRING && v->len <= SCALING_DOC_MAX ? v->len : 0;
        if (rd->bytes > BYTES_MAX) {
            rd->bytes_cut = true;
            break;
        }
        json_t *doc =
            v->type == REDIS_REPLY_STRING ? activity_parse(v->str, v->len) : json_object();
        struct entry e = {doc, activity_complete(doc), 0, resource, i};
        if (!doc || add_entry(rd, &e) < 0) {
            json_decref(doc);
            return fail(rd, "out of memory");
        }
    }
    order_entries(rd->entries + first, rd->n_entries - first);
    return 0;
}

static const char *key_text(const struct resource *r, char *out, size_t size)
{
    return lb_escape_text(r->key, r->len, RESOURCE_SHOWN, out, size);
}

/* The newest ACTIVITIES_KEPT of one list (a longer list is damage: the writer trims it). A key
 * of another type is left out, and said so. */
static int read_resource(struct reading *rd, size_t index)
{
    const struct resource *res = &rd->resources[index];
    char last[16];
    snprintf(last, sizeof last, "%d", ACTIVITIES_KEPT - 1);
    const char *argv[] = {"LRANGE", res->key, "0", last};
    const size_t lens[] = {6, res->len, 1, strlen(last)};
    redisReply *r = redis_sync_argv(&rd->redis, 4, argv, lens);
    if (!r && !rd->redis.c) /* redis_sync drops the connection on I/O errors only */
        return fail(rd, rd->redis.error);
    int rc = 0;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        rc = add_entries(rd, index, r);
    } else {
        char key[SCALING_ESCAPED(RESOURCE_SHOWN)];
        fprintf(stderr, "gantry scaling: %s is not a list of activities: left out\n",
                key_text(res, key, sizeof key));
    }
    freeReplyObject(r);
    return rc;
}

static int compare_entries(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order > b->order ? -1 : 1;
    if (a->resource != b->resource)
        return a->resource < b->resource ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static int read_all(struct reading *rd, const char *resource_id)
{
    if (resource_id) {
        char key[sizeof ACTIVITIES_KEY_PREFIX + ECS_NAME_MAX * 2 + 16];
        int n = snprintf(key, sizeof key, ACTIVITIES_KEY_PREFIX "%s", resource_id);
        if (add_resource(rd, key, (size_t)n) < 0)
            return -1;
    } else if (scan_resources(rd) < 0) {
        return -1;
    }
    for (size_t i = 0; i < rd->n_resources && !rd->bytes_cut; i++)
        if (read_resource(rd, i) < 0)
            return -1;
    if (rd->n_entries)
        qsort(rd->entries, rd->n_entries, sizeof *rd->entries, compare_entries);
    return 0;
}

static void reading_free(struct reading *rd)
{
    for (size_t i = 0; i < rd->n_entries; i++)
        json_decref(rd->entries[i].doc);
    free(rd->entries);
    for (size_t i = 0; i < rd->n_resources; i++)
        free(rd->resources[i].key);
    free(rd->resources);
    redis_sync_close(&rd->redis);
}

/* --- printing --- */

struct request {
    const char *resource_id; /* NULL: every resource */
    int64_t max_items;       /* 0: every activity read */
    bool json;
};

static size_t shown_count(const struct reading *rd, const struct request *q)
{
    return q->max_items && (size_t)q->max_items < rd->n_entries ? (size_t)q->max_items
                                                                : rd->n_entries;
}

/* The cells of entry i; the row's cells point into row and resource. */
static void table_row(const struct reading *rd, size_t i, time_t now, struct scaling_row *row,
                      char *resource, size_t size, const char *cells[TABLE_COLS])
{
    const struct entry *e = &rd->entries[i];
    const struct resource *res = &rd->resources[e->resource];
    size_t prefix = sizeof ACTIVITIES_KEY_PREFIX - 1;
    row_from(e->doc, now, false, row);
    lb_escape_text(res->key + prefix, res->len - prefix, RESOURCE_SHOWN, resource, size);
    cells[0] = row->time;
    cells[1] = resource;
    cells[2] = row->status;
    cells[3] = row->description;
    cells[4] = row->cause;
}

/* Two passes over the entries, the first for the columns' widths: no row is kept, so the memory
 * needed stays that of one row however many there are. */
static void print_table(const struct reading *rd, const struct request *q, time_t now)
{
    static const char *const heads[TABLE_COLS] = {"START TIME", "RESOURCE", "STATUS", "DESCRIPTION",
                                                  "CAUSE"};
    size_t n = shown_count(rd, q);
    int width[TABLE_COLS];
    for (int c = 0; c < TABLE_COLS; c++)
        width[c] = (int)strlen(heads[c]);
    struct scaling_row row;
    char resource[SCALING_ESCAPED(RESOURCE_SHOWN)];
    const char *cells[TABLE_COLS];
    for (size_t i = 0; i < n; i++) {
        table_row(rd, i, now, &row, resource, sizeof resource, cells);
        for (int c = 0; c < TABLE_COLS; c++)
            width[c] = (int)strlen(cells[c]) > width[c] ? (int)strlen(cells[c]) : width[c];
    }
    for (size_t i = 0; i <= n; i++) {
        if (i)
            table_row(rd, i - 1, now, &row, resource, sizeof resource, cells);
        const char *const *line = i ? cells : heads;
        for (int c = 0; c < TABLE_COLS - 1; c++)
            printf("%-*s  ", width[c], line[c]);
        printf("%s\n", line[TABLE_COLS - 1]);
    }
}

static void print_nothing(const struct reading *rd, const struct request *q)
{
    char id[QUOTED_MAX];
    if (q->resource_id)
        printf("no scaling activities of %s in Redis at %s\n",
               lb_escape_text(q->resource_id, strlen(q->resource_id), QUOTED_SHOWN, id, sizeof id),
               rd->redis.url_text);
    else
        printf("no scaling activities in Redis at %s (is gantry-autoscaler running?)\n",
               rd->redis.url_text);
}

/* {"ScalingActivities": [...]}, as DescribeScalingActivities answers, with the complete
 * activities only. */
static int print_json(const struct reading *rd, const struct request *q)
{
    json_t *list = json_array();
    size_t left_out = 0;
    for (size_t i = 0; list && i < rd->n_entries; i++) {
        const struct entry *e = &rd->entries[i];
        if (!e->complete)
            left_out++;
        else if ((!q->max_items || json_array_size(list) < (size_t)q->max_items) &&
                 json_array_append(list, e->doc) < 0)
            break;
    }
    json_t *out = list ? json_pack("{s:o}", "ScalingActivities", list) : NULL;
    /* \uXXXX for anything not ASCII: a bidi override or a C1 control never reaches a terminal */
    int rc = out ? json_dumpf(out, stdout, JSON_INDENT(4) | JSON_ENSURE_ASCII) : -1;
    json_decref(out);
    if (rc < 0) {
        fprintf(stderr, "gantry scaling: out of memory\n");
        return EXIT_FAILED;
    }
    printf("\n");
    if (left_out)
        fprintf(stderr,
                "gantry scaling: %zu damaged activit%s left out of the JSON (not "
                "DescribeScalingActivities documents; the table shows them with ?)\n",
                left_out, left_out == 1 ? "y" : "ies");
    return EXIT_DONE;
}

static int show(struct reading *rd, const struct request *q)
{
    if (read_all(rd, q->resource_id) < 0) {
        fprintf(stderr, "gantry scaling: %s\n", rd->error);
        return EXIT_FAILED;
    }
    if (rd->resources_cut)
        fprintf(stderr,
                "gantry scaling: more than %d scalable targets have activities: only %d of "
                "them are shown (see --resource-id)\n",
                RESOURCES_MAX, RESOURCES_MAX);
    if (rd->scan_cut)
        fprintf(stderr,
                "gantry scaling: Redis holds too many keys to look at them all: some scalable "
                "targets may be missing (see --resource-id)\n");
    if (rd->bytes_cut)
        fprintf(stderr,
                "gantry scaling: more than %d MiB of activities in Redis: the rest is left out "
                "(see --resource-id)\n",
                BYTES_MAX >> 20);
    if (q->json)
        return print_json(rd, q);
    if (rd->n_entries == 0)
        print_nothing(rd, q);
    else
        print_table(rd, q, time(NULL));
    return EXIT_DONE;
}

/* --- the command line --- */

static const char *quoted(const char *s, char *out, size_t size)
{
    return lb_escape_text(s, strlen(s), QUOTED_SHOWN, out, size);
}

static int message(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int message(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gantry scaling: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", status == EXIT_USAGE ? " (see gantry scaling --help)" : "");
    va_end(ap);
    return status;
}

struct options {
    const char *resource_id, *max_items;
    bool json;
};

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    struct options *o = ctx;
    if (strcmp(option->name, "json") == 0)
        o->json = true;
    else if (strcmp(option->name, "resource-id") == 0)
        o->resource_id = arg;
    else
        o->max_items = arg;
    return 0;
}

/* ECS's rule for cluster and service names: 1 to 255 letters, digits, '-' and '_'. */
static bool ecs_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > ECS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", s[i]))
            return false;
    return true;
}

static bool resource_id_ok(const char *id)
{
    if (strncmp(id, "service/", 8) != 0)
        return false;
    const char *cluster = id + 8, *slash = strchr(cluster, '/');
    return slash && ecs_name_ok(cluster, (size_t)(slash - cluster)) &&
           ecs_name_ok(slash + 1, strlen(slash + 1));
}

static int parse_request(const struct options *o, char **operands, int n_ops, struct request *q)
{
    char text[QUOTED_MAX];
    if (n_ops == 0)
        return message(EXIT_USAGE, "expected a command: gantry scaling activities");
    if (strcmp(operands[0], "activities") != 0)
        return message(EXIT_USAGE, "unknown command '%s' (expected activities)",
                       quoted(operands[0], text, sizeof text));
    if (n_ops > 1)
        return message(EXIT_USAGE, "unexpected argument '%s'",
                       quoted(operands[1], text, sizeof text));
    *q = (struct request){.resource_id = o->resource_id, .json = o->json};
    if (o->resource_id && !resource_id_ok(o->resource_id))
        return message(EXIT_FAILED,
                       "--resource-id '%s': expected service/CLUSTER/SERVICE (names of 1 to 255 "
                       "letters, digits, '-' and '_'), e.g. service/default/demo",
                       quoted(o->resource_id, text, sizeof text));
    if (o->max_items && (value_parse_int(o->max_items, &q->max_items) < 0 || q->max_items < 1 ||
                         q->max_items > MAX_ITEMS_MAX))
        return message(EXIT_FAILED, "--max-items '%s': expected a whole number from 1 to %lld",
                       quoted(o->max_items, text, sizeof text), (long long)MAX_ITEMS_MAX);
    return EXIT_DONE;
}

static int run(const struct request *q, const struct daemon_args *args)
{
    struct redis_url url;
    char why[160], text[QUOTED_MAX];
    if (args->redis_url && value_parse_redis_url(args->redis_url, &url, why, sizeof why) < 0)
        return message(EXIT_USAGE, "--redis '%s': %s", quoted(args->redis_url, text, sizeof text),
                       why);
    struct gantry_config cfg;
    int status = config_daemon_start(&cfg, args, "gantry");
    if (status >= 0)
        return status;
    if (!cfg.redis.url.addr.len)
        redis_managed_default_url(cfg.up.run_dir, &cfg.redis.url);
    struct reading rd = {.n_resources = 0};
    redis_sync_init(&rd.redis, &cfg.redis.url, cfg.redis.connect_timeout_ms);
    if (redis_sync_connect(&rd.redis) < 0) {
        fprintf(stderr, "gantry scaling: %s\n", rd.redis.error);
        status = EXIT_FAILED;
    } else {
        status = show(&rd, q);
    }
    reading_free(&rd);
    config_free(&cfg);
    if (fflush(stdout) != 0 && status == EXIT_DONE)
        status = EXIT_FAILED;
    return status;
}

/* Options may follow the command (`scaling activities --json`). */
static const char *const VALUE_OPTIONS[] = {"-c",       "--config", "--redis",       "--log-level",
                                            "--listen", "--admin",  "--resource-id", "--max-items",
                                            NULL};

int scaling_cmd_main(int argc, char **argv)
{
    static const struct daemon_option extra[] = {
        {"resource-id", true, "--resource-id ID      only service/CLUSTER/SERVICE's"},
        {"max-items", true, "--max-items N         the newest N activities only"},
        {"json", false, "--json                DescribeScalingActivities' JSON"},
        {NULL, false, NULL},
    };
    struct options o = {NULL, NULL, false};
    const struct daemon_usage usage = {
        .name = "gantry scaling",
        .summary = "what gantry-autoscaler did and why: its scaling activities, from Redis",
        .flags = DAEMON_TAKES_REDIS,
        .extra = USAGE_EXTRA,
        .options = extra,
        .on_option = on_option,
        .ctx = &o,
    };
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    char **operands = calloc((size_t)argc + 1, sizeof *operands);
    int status = EXIT_FAILED;
    if (!opts || !operands) {
        fprintf(stderr, "gantry scaling: out of memory\n");
    } else {
        int n_opts, n_ops;
        cli_split_args(argc, argv, VALUE_OPTIONS, false, opts, &n_opts, operands, &n_ops);
        struct daemon_args args;
        struct request q;
        status = daemon_args_parse(n_opts, opts, &usage, &args);
        if (status == DAEMON_ARGS_GO_ON &&
            (status = parse_request(&o, operands, n_ops, &q)) == EXIT_DONE)
            status = run(&q, &args);
    }
    free(opts);
    free(operands);
    return status;
}
