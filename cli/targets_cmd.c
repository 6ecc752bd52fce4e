#include "cli/targets_cmd.h"

#include <arpa/inet.h>
#include <ev.h>
#include <hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "cli/redis_managed.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/redis_sync.h"
#include "config/config.h"
#include "lb/discovery.h"

enum {
    EXIT_DONE = 0,
    EXIT_REDIS = 1,
    EXIT_USAGE = 2,
    QUOTED_MAX = 64 * 4 + 8,
    TIME_TEXT_MAX = 40,
    WATCH_LINE_MAX = 1 << 20,
    SCAN_COUNT = 1000,
};

static const char TARGETS_PREFIX[] = "gantry:targets:";
static const char NAME_RULE[] = "letters, digits, '-' and '_', 1 to 32 characters";

static const char USAGE_EXTRA[] =
    "\ncommands:\n"
    "  gantry targets register GROUP HOST:PORT [--weight N]\n"
    "      add a target to GROUP, or change its weight (0 to 999, default 1; 0 sends it\n"
    "      nothing); clears a drained mark an earlier deregistration left\n"
    "  gantry targets deregister GROUP HOST:PORT\n"
    "      remove a target: gantry-lb stops sending it requests and drains it (exit 1 if it\n"
    "      was not registered)\n"
    "  gantry targets list [GROUP]\n"
    "      GROUP's targets, sorted by address, with weight, health (state, reason, since) and\n"
    "      drained mark; without GROUP, every group with its number of targets\n"
    "  gantry targets watch GROUP... [--resync DURATION]\n"
    "      follow groups as gantry-lb does (pub/sub, a full read every --resync, default 5s,\n"
    "      and after every reconnection): one line per change, until SIGINT or SIGTERM\n"
    "\n"
    "GROUP: letters, digits, '-' and '_', 1 to 32 characters (lb.target_groups[].name).\n"
    "HOST:PORT: 127.0.0.1:9001, [::1]:9001 or localhost:9001, stored as 127.0.0.1:9001.\n"
    "Redis: --redis, else redis.url of the -c files, else the one `gantry up` runs (its socket\n"
    "up.run_dir/redis.sock, when there), else redis://127.0.0.1:6379; the keys and\n"
    "channels are those of docs/redis.md. Exit status: 0 done, 1 Redis unreachable or\n"
    "refusing (or nothing to deregister), 2 usage error.\n";

/* --- small helpers --- */

static const char *quoted(const char *s, char *out, size_t size)
{
    return lb_escape_text(s, strlen(s), 64, out, size);
}

/* Unix milliseconds as "2026-11-21T08:10:25.123Z"; the raw text when it is not a plausible time. */
static const char *time_text(const char *ms_text, int64_t ms, char *out, size_t size)
{
    if (ms < 0 || ms > 253402300799999LL) { /* 9999-12-31 */
        quoted(ms_text, out, size);
        return out;
    }
    clock_format_iso8601(ms, out, size);
    return out;
}

/* --- the synchronous connection --- */

struct redis {
    struct redis_sync sync;
    redisContext *c; /* sync.c, for the pipelines below */
    char url[NET_ADDR_TEXT_MAX + 32];
};

static int redis_open(struct redis *r, const struct redis_url *url, int64_t timeout_ms)
{
    redis_sync_init(&r->sync, url, timeout_ms);
    lb_redis_url_text(url, r->url, sizeof r->url);
    if (redis_sync_connect(&r->sync) < 0) {
        fprintf(stderr, "gantry: %s\n", r->sync.error);
        return -1;
    }
    r->c = r->sync.c;
    return 0;
}

static void redis_close(struct redis *r)
{
    redis_sync_close(&r->sync);
    r->c = NULL;
}

/* The next reply of a pipeline; NULL after printing why (connection lost or an error reply). */
static redisReply *redis_reply(struct redis *r, const char *what)
{
    void *out = NULL;
    if (redisGetReply(r->c, &out) != REDIS_OK || !out) {
        fprintf(stderr, "gantry: Redis at %s did not answer %s: %s\n", r->url, what,
                r->c->errstr[0] ? r->c->errstr : "connection closed");
        return NULL;
    }
    redisReply *reply = out;
    if (reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "gantry: Redis at %s refused %s: %s\n", r->url, what, reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* One command and its reply (never an error reply). */
static redisReply *redis_run(struct redis *r, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(r->c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        fprintf(stderr, "gantry: cannot send %s to Redis at %s: %s\n", what, r->url, r->c->errstr);
        return NULL;
    }
    return redis_reply(r, what);
}

/* --- register / deregister --- */

static int cmd_register(struct redis *r, const char *group, const struct lb_member *m)
{
    char addr[NET_ADDR_TEXT_MAX], weight[8];
    net_addr_format(&m->addr, addr, sizeof addr);
    snprintf(weight, sizeof weight, "%d", m->weight);
    if (redisAppendCommand(r->c, "MULTI") != REDIS_OK ||
        redisAppendCommand(r->c, "HSET gantry:targets:%s %s %s", group, addr, weight) != REDIS_OK ||
        redisAppendCommand(r->c, "HDEL gantry:drained:%s %s", group, addr) != REDIS_OK ||
        redisAppendCommand(r->c, "PUBLISH gantry:targets %s", group) != REDIS_OK ||
        redisAppendCommand(r->c, "EXEC") != REDIS_OK) {
        fprintf(stderr, "gantry: out of memory\n");
        return EXIT_REDIS;
    }
    static const char *const steps[] = {"MULTI", "HSET gantry:targets", "HDEL gantry:drained",
                                        "PUBLISH gantry:targets", "EXEC"};
    redisReply *exec = NULL;
    bool ok = true;
    for (size_t i = 0; i < 5; i++) { /* read every reply even after an error */
        redisReply *reply = ok ? redis_reply(r, steps[i]) : NULL;
        if (!reply) {
            ok = false;
            continue;
        }
        if (i == 4)
            exec = reply;
        else
            freeReplyObject(reply);
    }
    if (!ok)
        return EXIT_REDIS;
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 3) {
        fprintf(stderr, "gantry: Redis at %s did not run the transaction (EXEC)\n", r->url);
        freeReplyObject(exec);
        return EXIT_REDIS;
    }
    for (size_t i = 0; i < 3; i++)
        if (exec->element[i]->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "gantry: Redis at %s refused %s: %s\n", r->url, steps[i + 1],
                    exec->element[i]->str);
            freeReplyObject(exec);
            return EXIT_REDIS;
        }
    bool existed = exec->element[0]->integer == 0, undrained = exec->element[1]->integer > 0;
    freeReplyObject(exec);
    printf("registered %s in %s (weight %d%s)%s\n", addr, group, m->weight,
           existed ? ", was already registered" : "",
           undrained ? "; its drained mark is cleared" : "");
    return EXIT_DONE;
}

static int cmd_deregister(struct redis *r, const char *group, const struct lb_member *m,
                          const char *given)
{
    char addr[NET_ADDR_TEXT_MAX];
    net_addr_format(&m->addr, addr, sizeof addr);
    /* The canonical spelling, and the one given if it differs (written by something else). */
    redisReply *reply =
        strcmp(addr, given) == 0
            ? redis_run(r, "HDEL gantry:targets", "HDEL gantry:targets:%s %s", group, addr)
            : redis_run(r, "HDEL gantry:targets", "HDEL gantry:targets:%s %s %s", group, addr,
                        given);
    if (!reply)
        return EXIT_REDIS;
    long long removed = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    freeReplyObject(reply);
    if (removed == 0) {
        fprintf(stderr, "gantry targets: %s is not registered in %s\n", addr, group);
        return EXIT_REDIS;
    }
    reply = redis_run(r, "PUBLISH gantry:targets", "PUBLISH gantry:targets %s", group);
    if (!reply)
        return EXIT_REDIS;
    freeReplyObject(reply);
    printf("deregistered %s from %s (gantry-lb drains it)\n", addr, group);
    return EXIT_DONE;
}

/* --- list GROUP --- */

struct row {
    const char *field;     /* in a reply */
    struct lb_member addr; /* the field parsed as an address, when it is one */
    bool is_addr;
    const char *weight;  /* gantry:targets value; NULL: not registered */
    const char *health;  /* gantry:health value */
    const char *drained; /* gantry:drained value */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static struct row *row_for(struct rows *rows, const char *field)
{
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->v[i].field, field) == 0)
            return &rows->v[i];
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        struct row *v = realloc(rows->v, cap * sizeof *v);
        if (!v)
            return NULL;
        rows->v = v;
        rows->cap = cap;
    }
    struct row *row = &rows->v[rows->n++];
    memset(row, 0, sizeof *row);
    row->field = field;
    char err[400];
    row->is_addr = lb_member_parse(field, "0", &row->addr, err, sizeof err) == 0;
    return row;
}

static int row_compare(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->is_addr != y->is_addr)
        return x->is_addr ? -1 : 1;
    return x->is_addr ? lb_member_compare(&x->addr, &y->addr) : strcmp(x->field, y->field);
}

enum { COL_ADDRESS, COL_WEIGHT, COL_STATE, COL_REASON, COL_SINCE, COL_DRAINED, N_COLS };

struct cells {
    char text[N_COLS][QUOTED_MAX];
};

static void health_cells(const char *json, struct cells *c)
{
    snprintf(c->text[COL_STATE], QUOTED_MAX, "-");
    snprintf(c->text[COL_REASON], QUOTED_MAX, "-");
    snprintf(c->text[COL_SINCE], QUOTED_MAX, "-");
    if (!json)
        return;
    json_error_t jerr;
    json_t *o = json_loads(json, 0, &jerr);
    json_t *state = json_object_get(o, "state"), *reason = json_object_get(o, "reason"),
           *since = json_object_get(o, "since");
    if (!json_is_object(o) || !json_is_string(state)) {
        snprintf(c->text[COL_STATE], QUOTED_MAX, "?");
        json_decref(o);
        return;
    }
    quoted(json_string_value(state), c->text[COL_STATE], QUOTED_MAX);
    if (json_is_string(reason) && *json_string_value(reason))
        quoted(json_string_value(reason), c->text[COL_REASON], QUOTED_MAX);
    if (json_is_integer(since)) {
        char raw[32];
        snprintf(raw, sizeof raw, "%lld", (long long)json_integer_value(since));
        time_text(raw, json_integer_value(since), c->text[COL_SINCE], QUOTED_MAX);
    }
    json_decref(o);
}

static void row_cells(const struct row *row, struct cells *c, char *note, size_t notelen)
{
    note[0] = '\0';
    quoted(row->field, c->text[COL_ADDRESS], QUOTED_MAX);
    if (!row->weight) {
        snprintf(c->text[COL_WEIGHT], QUOTED_MAX, "-");
    } else {
        struct lb_member m;
        char why[400];
        if (lb_member_parse(row->field, row->weight, &m, why, sizeof why) == 0) {
            snprintf(c->text[COL_WEIGHT], QUOTED_MAX, "%d", m.weight);
        } else {
            snprintf(c->text[COL_WEIGHT], QUOTED_MAX, "invalid");
            snprintf(note, notelen, "gantry-lb skips %s: %s", c->text[COL_ADDRESS], why);
        }
    }
    health_cells(row->health, c);
    int64_t ms;
    if (!row->drained)
        snprintf(c->text[COL_DRAINED], QUOTED_MAX, "-");
    else if (value_parse_int(row->drained, &ms) == 0)
        time_text(row->drained, ms, c->text[COL_DRAINED], QUOTED_MAX);
    else
        quoted(row->drained, c->text[COL_DRAINED], QUOTED_MAX);
}

/* One table line: columns padded to their width, two spaces apart, no trailing blanks. */
static void print_line(const int *width, const char *const *cols)
{
    for (int k = 0; k < N_COLS - 1; k++)
        printf("%-*s  ", width[k], cols[k]);
    printf("%s\n", cols[N_COLS - 1]);
}

/* Adds a hash's fields to the rows; the value goes to the member at `offset` of struct row. */
static int add_fields(struct rows *rows, const redisReply *reply, size_t offset)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        struct row *row = row_for(rows, f->str);
        if (!row) {
            fprintf(stderr, "gantry: out of memory\n");
            return -1;
        }
        *(const char **)((char *)row + offset) = v->str;
    }
    return 0;
}

static int cmd_list_group(struct redis *r, const char *group)
{
    static const char *const hashes[] = {"gantry:targets", "gantry:health", "gantry:drained"};
    static const size_t offsets[] = {offsetof(struct row, weight), offsetof(struct row, health),
                                     offsetof(struct row, drained)};
    for (size_t i = 0; i < 3; i++)
        if (redisAppendCommand(r->c, "HGETALL %s:%s", hashes[i], group) != REDIS_OK) {
            fprintf(stderr, "gantry: out of memory\n");
            return EXIT_REDIS;
        }
    redisReply *replies[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (size_t i = 0; i < 3; i++) {
        char what[64];
        snprintf(what, sizeof what, "HGETALL %s:%s", hashes[i], group);
        replies[i] = ok ? redis_reply(r, what) : NULL;
        ok = ok && replies[i];
    }
    struct rows rows = {0};
    int status = ok ? EXIT_DONE : EXIT_REDIS;
    for (size_t i = 0; ok && i < 3; i++)
        if (add_fields(&rows, replies[i], offsets[i]) < 0)
            ok = false, status = EXIT_REDIS;
    if (ok && rows.n == 0)
        printf("no targets in %s\n", group);
    if (ok && rows.n) {
        qsort(rows.v, rows.n, sizeof *rows.v, row_compare);
        struct cells *cells = calloc(rows.n, sizeof *cells);
        char(*notes)[512] = calloc(rows.n, sizeof *notes);
        if (!cells || !notes) {
            fprintf(stderr, "gantry: out of memory\n");
            status = EXIT_REDIS;
        } else {
            static const char *const heads[N_COLS] = {"ADDRESS", "WEIGHT", "STATE",
                                                      "REASON",  "SINCE",  "DRAINED"};
            int width[N_COLS];
            for (int k = 0; k < N_COLS; k++)
                width[k] = (int)strlen(heads[k]);
            for (size_t i = 0; i < rows.n; i++) {
                row_cells(&rows.v[i], &cells[i], notes[i], sizeof notes[i]);
                for (int k = 0; k < N_COLS; k++)
                    if ((int)strlen(cells[i].text[k]) > width[k])
                        width[k] = (int)strlen(cells[i].text[k]);
            }
            print_line(width, heads);
            for (size_t i = 0; i < rows.n; i++) {
                const char *line[N_COLS];
                for (int k = 0; k < N_COLS; k++)
                    line[k] = cells[i].text[k];
                print_line(width, line);
            }
            for (size_t i = 0; i < rows.n; i++)
                if (notes[i][0])
                    printf("note: %s\n", notes[i]);
        }
        free(cells);
        free(notes);
    }
    free(rows.v);
    for (size_t i = 0; i < 3; i++)
        freeReplyObject(replies[i]);
    return status;
}

/* --- list: every group --- */

static int name_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_list_groups(struct redis *r)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    char cursor[32] = "0";
    int status = EXIT_DONE;
    do { /* SCAN, not KEYS: a large keyspace does not stall Redis */
        char count[16];
        snprintf(count, sizeof count, "%d", SCAN_COUNT);
        redisReply *reply =
            redis_run(r, "SCAN", "SCAN %s MATCH gantry:targets:* COUNT %s", cursor, count);
        if (!reply) {
            status = EXIT_REDIS;
            break;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "gantry: Redis at %s answered SCAN strangely\n", r->url);
            freeReplyObject(reply);
            status = EXIT_REDIS;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        for (size_t i = 0; i < reply->element[1]->elements; i++) {
            const redisReply *key = reply->element[1]->element[i];
            if (key->type != REDIS_REPLY_STRING ||
                strncmp(key->str, TARGETS_PREFIX, sizeof TARGETS_PREFIX - 1) != 0)
                continue;
            const char *name = key->str + sizeof TARGETS_PREFIX - 1;
            bool seen = !lb_group_name_valid(name); /* not a group of ours */
            for (size_t j = 0; j < n && !seen; j++) /* SCAN may return a key twice */
                seen = strcmp(names[j], name) == 0;
            if (seen)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                char **v = realloc(names, ncap * sizeof *v);
                if (!v)
                    break;
                names = v;
                cap = ncap;
            }
            if ((names[n] = strdup(name)))
                n++;
        }
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);

    if (status == EXIT_DONE && n == 0)
        printf("no target groups in Redis at %s\n", r->url);
    if (status == EXIT_DONE && n) {
        qsort(names, n, sizeof *names, name_compare);
        for (size_t i = 0; i < n && status == EXIT_DONE; i++)
            if (redisAppendCommand(r->c, "HLEN gantry:targets:%s", names[i]) != REDIS_OK) {
                fprintf(stderr, "gantry: out of memory\n");
                status = EXIT_REDIS;
            }
        int width = (int)strlen("GROUP");
        for (size_t i = 0; i < n; i++)
            if ((int)strlen(names[i]) > width)
                width = (int)strlen(names[i]);
        if (status == EXIT_DONE)
            printf("%-*s  TARGETS\n", width, "GROUP");
        for (size_t i = 0; i < n && status == EXIT_DONE; i++) {
            void *out = NULL;
            if (redisGetReply(r->c, &out) != REDIS_OK || !out) {
                fprintf(stderr, "gantry: Redis at %s did not answer HLEN: %s\n", r->url,
                        r->c->errstr);
                status = EXIT_REDIS;
                break;
            }
            redisReply *reply = out;
            if (reply->type == REDIS_REPLY_INTEGER)
                printf("%-*s  %lld\n", width, names[i], reply->integer);
            else /* not a hash: gantry-lb cannot read it either */
                printf("%-*s  ? (%s)\n", width, names[i],
                       reply->type == REDIS_REPLY_ERROR ? reply->str : "not a hash");
            freeReplyObject(reply);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return status;
}

/* --- watch --- */

struct watch {
    struct ev_loop *loop;
    struct buf line;
    bool output_failed;
};

static void on_members(void *ctx, const char *group, const struct lb_member *members, size_t n)
{
    struct watch *w = ctx;
    buf_reset(&w->line);
    buf_printf(&w->line, "%s: ", group);
    if (n == 0)
        buf_append_str(&w->line, "no targets");
    for (size_t i = 0; i < n; i++)
        buf_printf(&w->line, "%s%s weight %d", i ? ", " : "", members[i].text, members[i].weight);
    buf_append_str(&w->line, "\n");
    if (fwrite(buf_head(&w->line), 1, buf_unread(&w->line), stdout) != buf_unread(&w->line) ||
        fflush(stdout) != 0) { /* nobody reads any more (a closed pipe): stop */
        w->output_failed = true;
        ev_break(w->loop, EVBREAK_ALL);
    }
}

static void on_stop(void *ctx)
{
    ev_break(((struct watch *)ctx)->loop, EVBREAK_ALL);
}

static int cmd_watch(const struct gantry_config *cfg, char **groups, size_t n, int64_t resync_ms)
{
    struct watch w = {.loop = ev_default_loop(0)};
    if (!w.loop) {
        fprintf(stderr, "gantry: cannot start an event loop\n");
        return EXIT_REDIS;
    }
    buf_init(&w.line, WATCH_LINE_MAX);
    const struct lb_discovery_options opts = {cfg->redis.url, cfg->redis.connect_timeout_ms,
                                              resync_ms};
    const struct lb_discovery_hooks hooks = {on_members, &w};
    struct daemon_signals signals;
    daemon_signals_start(w.loop, &signals, on_stop, NULL, &w);
    struct lb_discovery *d = lb_discovery_new(w.loop, &opts, &hooks);
    if (!d || lb_discovery_set_groups(d, (const char *const *)groups, n) < 0) {
        fprintf(stderr, "gantry: out of memory\n");
        lb_discovery_free(d);
        daemon_signals_stop(w.loop, &signals);
        buf_free(&w.line);
        return EXIT_REDIS;
    }
    ev_run(w.loop, 0);
    lb_discovery_free(d);
    daemon_signals_stop(w.loop, &signals);
    buf_free(&w.line);
    return w.output_failed ? EXIT_REDIS : EXIT_DONE;
}

/* --- the command line --- */

struct options {
    const char *weight;
    const char *resync;
};

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    struct options *o = ctx;
    if (strcmp(option->name, "weight") == 0)
        o->weight = arg;
    else
        o->resync = arg;
    return 0;
}

/* Options may follow the operands (`register api 127.0.0.1:9001 --weight 3`): they are moved in
 * front, with their values, before the common parser sees them. */
static bool takes_value(const char *arg)
{
    static const char *const names[] = {"-c",       "--config", "--redis",  "--log-level",
                                        "--weight", "--resync", "--listen", "--admin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(arg, names[i]) == 0)
            return true;
    return false;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gantry targets: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see gantry targets --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static bool check_group(const char *name)
{
    if (lb_group_name_valid(name))
        return true;
    char q[QUOTED_MAX];
    fprintf(stderr, "gantry targets: invalid group name '%s' (expected %s)\n",
            quoted(name, q, sizeof q), NAME_RULE);
    return false;
}

static int run(const char *sub, char **operands, int n_ops, const struct options *o,
               const struct daemon_args *args)
{
    bool reg = strcmp(sub, "register") == 0, dereg = strcmp(sub, "deregister") == 0,
         list = strcmp(sub, "list") == 0, watch = strcmp(sub, "watch") == 0;
    if (!reg && !dereg && !list && !watch)
        return usage_error("unknown command '%s': expected register, deregister, list or watch",
                           sub);
    if ((reg || dereg) && n_ops != 2)
        return usage_error("%s takes a group and an address: %s GROUP HOST:PORT", sub, sub);
    if (list && n_ops > 1)
        return usage_error("list takes at most one group");
    if (watch && n_ops < 1)
        return usage_error("watch takes one or more groups");
    if (o->weight && !reg)
        return usage_error("--weight is an option of register");
    if (o->resync && !watch)
        return usage_error("--resync is an option of watch");
    for (int i = 0; i < (reg || dereg ? 1 : n_ops); i++)
        if (!check_group(operands[i]))
            return EXIT_USAGE;
    struct lb_member member;
    if (reg || dereg) {
        char why[400];
        if (lb_member_parse(operands[1], o->weight ? o->weight : "1", &member, why, sizeof why) <
            0) {
            fprintf(stderr, "gantry targets: %s\n", why);
            return EXIT_USAGE;
        }
    }
    int64_t resync_ms = 0;
    if (o->resync && (value_parse_duration_ms(o->resync, &resync_ms) < 0 || resync_ms < 10))
        return usage_error("--resync '%s': expected a duration of 10ms or more, e.g. 5s",
                           o->resync);
    struct redis_url url;
    char why[160];
    if (args->redis_url && value_parse_redis_url(args->redis_url, &url, why, sizeof why) < 0)
        return usage_error("--redis '%s': %s", args->redis_url, why);

    struct gantry_config cfg;
    int status = config_daemon_start(&cfg, args, "gantry");
    if (status >= 0)
        return status;
    if (!cfg.redis.url.addr.len)
        redis_managed_default_url(cfg.up.run_dir, &cfg.redis.url);
    if (watch) {
        status = cmd_watch(&cfg, operands, (size_t)n_ops, resync_ms);
        config_free(&cfg);
        return status;
    }
    struct redis r;
    if (redis_open(&r, &cfg.redis.url, cfg.redis.connect_timeout_ms) < 0) {
        config_free(&cfg);
        return EXIT_REDIS;
    }
    if (reg)
        status = cmd_register(&r, operands[0], &member);
    else if (dereg)
        status = cmd_deregister(&r, operands[0], &member, operands[1]);
    else if (n_ops == 1)
        status = cmd_list_group(&r, operands[0]);
    else
        status = cmd_list_groups(&r);
    redis_close(&r);
    config_free(&cfg);
    if (fflush(stdout) != 0 && status == EXIT_DONE)
        status = EXIT_REDIS;
    return status;
}

int targets_cmd_main(int argc, char **argv)
{
    static const struct daemon_option extra[] = {
        {"weight", true, "--weight N            register: the target's weight, 0 to 999 (1)"},
        {"resync", true, "--resync DURATION     watch: how often to read every group again (5s)"},
        {NULL, false, NULL},
    };
    struct options o = {0};
    const struct daemon_usage usage = {
        .name = "gantry targets",
        .summary = "register, deregister, list and watch target-group members in Redis",
        .flags = DAEMON_TAKES_REDIS,
        .extra = USAGE_EXTRA,
        .options = extra,
        .on_option = on_option,
        .ctx = &o,
    };
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    char **operands = calloc((size_t)argc + 1, sizeof *operands);
    if (!opts || !operands) {
        free(opts);
        free(operands);
        fprintf(stderr, "gantry: out of memory\n");
        return EXIT_REDIS;
    }
    int n_opts = 0, n_ops = 0;
    opts[n_opts++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                operands[n_ops++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1]) {
            opts[n_opts++] = argv[i];
            if (takes_value(a) && i + 1 < argc)
                opts[n_opts++] = argv[++i];
        } else {
            operands[n_ops++] = argv[i];
        }
    }
    struct daemon_args args;
    int status = daemon_args_parse(n_opts, opts, &usage, &args);
    if (status == DAEMON_ARGS_GO_ON) {
        if (n_ops == 0)
            status = usage_error("which command? register, deregister, list or watch");
        else
            status = run(operands[0], operands + 1, n_ops - 1, &o, &args);
    }
    free(opts);
    free(operands);
    return status;
}
