#include "lb/discovery.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <async.h>
#include <hiredis.h>
#include <adapters/libev.h>

#include "common/log.h"
#include "common/redis_sync.h"

enum {
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 5000,
    DEFAULT_CONNECT_TIMEOUT_MS = 2000,
    DEFAULT_RESYNC_MS = 5000,
    STATE_TEXT_MAX = 32,
    PENDING_BUCKETS = 256,
    BAD_FIELDS_LOGGED = 10, /* per read; the rest are counted in one more line */
    SHOWN_MAX = 64,         /* bytes of a Redis value quoted in a message */
};

static const char CHANNEL_TARGETS[] = "gantry:targets";

/* --- validation, shared with `gantry targets` --- */

const char *lb_escape_text(const char *s, size_t len, size_t max, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == max) {
            o += (size_t)snprintf(out + o, size - o, "...");
            break;
        }
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

/* A Redis value quoted in a log line: at most SHOWN_MAX bytes of it. */
static const char *shown(const char *s, size_t len, char *out, size_t size)
{
    return lb_escape_text(s, len, SHOWN_MAX, out, size);
}

bool lb_group_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > LB_GROUP_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

int lb_member_parse(const char *field, const char *value, struct lb_member *out, char *err,
                    size_t errlen)
{
    char q[SHOWN_MAX * 4 + 8];
    memset(out, 0, sizeof *out);
    size_t n = strlen(field);
    shown(field, n, q, sizeof q);
    char why[160];
    if (n == 0 || n >= NET_ADDR_TEXT_MAX) {
        snprintf(err, errlen, "invalid address '%s' (1 to %d characters)", q,
                 NET_ADDR_TEXT_MAX - 1);
        return -1;
    }
    if (strncmp(field, "unix:", 5) == 0 || field[0] == '*') {
        snprintf(err, errlen, "invalid address '%s' (a target is HOST:PORT, e.g. 127.0.0.1:9001)",
                 q);
        return -1;
    }
    if (net_addr_parse(field, &out->addr, why, sizeof why) < 0) {
        if (strstr(why, "unix:")) /* net.h's syntax message names what targets cannot be */
            snprintf(why, sizeof why, "expected HOST:PORT, e.g. 127.0.0.1:9001 or [::1]:9001");
        else if (strstr(why, "port"))
            snprintf(why, sizeof why, "port must be a number from 1 to 65535");
        char w[sizeof why * 4 + 8];
        snprintf(err, errlen, "invalid address '%s': %s", q,
                 lb_escape_text(why, strlen(why), sizeof why, w, sizeof w));
        return -1;
    }
    if (net_addr_port(&out->addr) == 0) {
        snprintf(err, errlen, "invalid address '%s': port must be a number from 1 to 65535", q);
        return -1;
    }
    size_t vn = strlen(value);
    bool digits = vn >= 1 && vn <= 3;
    for (size_t i = 0; digits && i < vn; i++)
        digits = value[i] >= '0' && value[i] <= '9';
    if (!digits) {
        char w[SHOWN_MAX * 4 + 8];
        snprintf(err, errlen, "invalid weight '%s' for %s (expected a number from 0 to %d)",
                 shown(value, vn, w, sizeof w), q, LB_WEIGHT_MAX);
        return -1;
    }
    out->weight = atoi(value);
    memcpy(out->text, field, n + 1);
    return 0;
}

static int addr_compare(const struct net_addr *a, const struct net_addr *b)
{
    int fa = net_addr_family(a), fb = net_addr_family(b);
    if (fa != fb)
        return fa == AF_INET ? -1 : fb == AF_INET ? 1 : fa - fb;
    int c = 0;
    if (fa == AF_INET)
        c = memcmp(&((const struct sockaddr_in *)&a->ss)->sin_addr,
                   &((const struct sockaddr_in *)&b->ss)->sin_addr, sizeof(struct in_addr));
    else if (fa == AF_INET6)
        c = memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                   &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, sizeof(struct in6_addr));
    if (c)
        return c;
    return net_addr_port(a) - net_addr_port(b);
}

int lb_member_compare(const struct lb_member *a, const struct lb_member *b)
{
    int c = addr_compare(&a->addr, &b->addr);
    return c ? c : strcmp(a->text, b->text);
}

const char *lb_redis_url_text(const struct redis_url *url, char *out, size_t size)
{
    return redis_url_text(url, out, size);
}

/* --- the module's state --- */

struct dgroup {
    struct dgroup *next_zombie; /* released during a hook: freed once it returns */
    uint64_t id;                /* privdata of its HGETALL: a removed group is never touched */
    char name[LB_GROUP_NAME_MAX + 1];
    bool known;                /* read and reported at least once */
    bool inflight;             /* an HGETALL is on its way */
    bool again;                /* read once more when it answers */
    bool error_logged;         /* the last read was an error reply, already logged */
    struct lb_member *members; /* as last reported */
    size_t n;
    uint64_t *bad; /* hashes of the invalid fields of the last read, sorted */
    size_t n_bad;
    size_t overflow; /* valid members past LB_MEMBERS_MAX at the last read */
};

/* A target's health and drained mark, waiting for the connection. */
struct pending {
    struct pending *next;
    bool has_state, drained;
    char state[STATE_TEXT_MAX];
    char *reason;
    int64_t since_ms, drained_ms;
    char group[LB_GROUP_NAME_MAX + 1];
    char addr[NET_ADDR_TEXT_MAX];
};

enum session { WAITING, CONNECTING, UP };

struct lb_discovery {
    struct ev_loop *loop;
    struct lb_discovery_hooks hooks;
    struct redis_url url;
    char url_text[NET_ADDR_TEXT_MAX + 32];
    int64_t connect_timeout_ms, resync_ms;

    enum session session;
    redisAsyncContext *cmd, *sub;
    bool cmd_ready;  /* PING or SELECT answered */
    bool subscribed; /* SUBSCRIBE confirmed */
    bool failing;    /* a failure was logged since the last "connected" */
    int64_t backoff_ms;
    ev_timer retry; /* WAITING: the next attempt; CONNECTING: the connect timeout */
    ev_timer resync;
    size_t outstanding;    /* commands sent on cmd and not answered */
    ev_tstamp progress_at; /* the last answer, or when outstanding left 0 */

    struct dgroup **groups;
    size_t n_groups;
    uint64_t next_id;
    struct dgroup *zombies;
    int hook_depth;
    bool free_pending;

    struct pending *pending[PENDING_BUCKETS];
    size_t n_pending;
    bool pending_full_logged;
};

static void session_fail(struct lb_discovery *d, const char *why);
static void fetch(struct lb_discovery *d, struct dgroup *g);

static void group_free(struct dgroup *g)
{
    free(g->members);
    free(g->bad);
    free(g);
}

static void group_release(struct lb_discovery *d, struct dgroup *g)
{
    if (d->hook_depth) {
        g->next_zombie = d->zombies;
        d->zombies = g;
    } else {
        group_free(g);
    }
}

static struct dgroup *group_by_id(const struct lb_discovery *d, uint64_t id)
{
    for (size_t i = 0; i < d->n_groups; i++)
        if (d->groups[i]->id == id)
            return d->groups[i];
    return NULL;
}

static struct dgroup *group_by_name(const struct lb_discovery *d, const char *name, size_t len)
{
    for (size_t i = 0; i < d->n_groups; i++)
        if (strlen(d->groups[i]->name) == len && memcmp(d->groups[i]->name, name, len) == 0)
            return d->groups[i];
    return NULL;
}

static uint64_t fnv1a(uint64_t h, const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* --- commands --- */

static bool cmd_send(struct lb_discovery *d, redisCallbackFn *fn, void *privdata, const char *fmt,
                     ...)
{
    if (!d->cmd)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(d->cmd, fn, privdata, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return false;
    if (d->outstanding++ == 0)
        d->progress_at = ev_now(d->loop);
    return true;
}

/* The start of every reply callback of the command connection: NULL when there is nothing to do
 * (the context is being freed, or belongs to a session or a module that is gone). */
static struct lb_discovery *cmd_reply(redisAsyncContext *ac, void *reply)
{
    struct lb_discovery *d = ac->data;
    if (!d || !reply || ac != d->cmd)
        return NULL;
    if (d->outstanding)
        d->outstanding--;
    d->progress_at = ev_now(d->loop);
    return d;
}

/* HSET and PUBLISH: only errors matter (privdata: the command, for the message). */
static void on_write(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    if (!cmd_reply(ac, r))
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        log_warn("redis: %s: %s", (const char *)privdata, reply->str);
}

static bool send_state(struct lb_discovery *d, const char *group, const char *addr,
                       const char *state, const char *reason, int64_t since_ms)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "state", state, "reason", reason, "since",
                          (json_int_t)since_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) { /* not UTF-8, or out of memory: nothing to keep either */
        log_warn("redis: cannot encode the state of %s %s", group, addr);
        return true;
    }
    /* One %s per argument: hiredis splits the format at its spaces, not the arguments. */
    char message[LB_GROUP_NAME_MAX + NET_ADDR_TEXT_MAX + STATE_TEXT_MAX + 4];
    snprintf(message, sizeof message, "%s %s %s", group, addr, state);
    bool ok = cmd_send(d, on_write, "HSET gantry:health", "HSET gantry:health:%s %s %s", group,
                       addr, text) &&
              cmd_send(d, on_write, "PUBLISH gantry:health", "PUBLISH gantry:health %s", message);
    free(text);
    return ok;
}

static bool send_drained(struct lb_discovery *d, const char *group, const char *addr,
                         int64_t when_ms)
{
    char ms[24], message[LB_GROUP_NAME_MAX + NET_ADDR_TEXT_MAX + 2];
    snprintf(ms, sizeof ms, "%lld", (long long)when_ms);
    snprintf(message, sizeof message, "%s %s", group, addr);
    return cmd_send(d, on_write, "HSET gantry:drained", "HSET gantry:drained:%s %s %s", group, addr,
                    ms) &&
           cmd_send(d, on_write, "PUBLISH gantry:drained", "PUBLISH gantry:drained %s", message);
}

/* --- writes kept while Redis is away --- */

static size_t pending_bucket(const char *group, const char *addr)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, group, strlen(group) + 1);
    return (size_t)(fnv1a(h, addr, strlen(addr)) % PENDING_BUCKETS);
}

static struct pending *pending_get(struct lb_discovery *d, const char *group, const char *addr)
{
    struct pending **head = &d->pending[pending_bucket(group, addr)];
    for (struct pending *p = *head; p; p = p->next)
        if (strcmp(p->group, group) == 0 && strcmp(p->addr, addr) == 0)
            return p;
    if (d->n_pending >= LB_PENDING_MAX) {
        if (!d->pending_full_logged)
            log_warn("redis: %d target states already wait for Redis; dropping the rest",
                     LB_PENDING_MAX);
        d->pending_full_logged = true;
        return NULL;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        log_error("redis: out of memory keeping the state of %s %s", group, addr);
        return NULL;
    }
    snprintf(p->group, sizeof p->group, "%s", group);
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    p->next = *head;
    *head = p;
    d->n_pending++;
    return p;
}

static void pending_clear(struct lb_discovery *d)
{
    for (size_t b = 0; b < PENDING_BUCKETS; b++) {
        struct pending *p = d->pending[b];
        d->pending[b] = NULL;
        while (p) {
            struct pending *next = p->next;
            free(p->reason);
            free(p);
            p = next;
        }
    }
    d->n_pending = 0;
    d->pending_full_logged = false;
}

static void pending_flush(struct lb_discovery *d)
{
    if (d->n_pending)
        log_info("redis: writing the %zu target states kept while disconnected", d->n_pending);
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        for (struct pending *p = d->pending[b]; p; p = p->next) {
            if (p->has_state)
                send_state(d, p->group, p->addr, p->state, p->reason ? p->reason : "", p->since_ms);
            if (p->drained)
                send_drained(d, p->group, p->addr, p->drained_ms);
        }
    pending_clear(d);
}

/* A group and an address that can go in a key, a field and a space-separated message. */
static bool target_args_ok(const char *what, const char *group, const char *addr)
{
    bool ok = lb_group_name_valid(group) && addr && *addr && strlen(addr) < NET_ADDR_TEXT_MAX;
    for (const char *p = addr; ok && *p; p++)
        ok = *p > ' ' && *p < 0x7f;
    if (!ok) {
        char g[SHOWN_MAX * 4 + 8], a[SHOWN_MAX * 4 + 8];
        log_warn("redis: not writing %s for group '%s' address '%s': invalid name", what,
                 group ? shown(group, strlen(group), g, sizeof g) : "(null)",
                 addr ? shown(addr, strlen(addr), a, sizeof a) : "(null)");
    }
    return ok;
}

void lb_discovery_publish_state(struct lb_discovery *d, const char *group, const char *addr_text,
                                const char *state, const char *reason, int64_t since_ms)
{
    if (!reason)
        reason = "";
    if (!target_args_ok("a state", group, addr_text))
        return;
    if (!state || !*state || strlen(state) >= STATE_TEXT_MAX || strchr(state, ' ')) {
        log_warn("redis: not writing an invalid state for %s %s", group, addr_text);
        return;
    }
    if (d->session == UP && send_state(d, group, addr_text, state, reason, since_ms))
        return;
    struct pending *p = pending_get(d, group, addr_text);
    char *copy = p ? strdup(reason) : NULL;
    if (!copy)
        return;
    free(p->reason);
    p->reason = copy;
    snprintf(p->state, sizeof p->state, "%s", state);
    p->since_ms = since_ms;
    p->has_state = true;
}

void lb_discovery_mark_drained(struct lb_discovery *d, const char *group, const char *addr_text,
                               int64_t when_ms)
{
    if (!target_args_ok("a drained mark", group, addr_text))
        return;
    if (d->session == UP && send_drained(d, group, addr_text, when_ms))
        return;
    struct pending *p = pending_get(d, group, addr_text);
    if (!p)
        return;
    p->drained = true;
    p->drained_ms = when_ms;
}

/* --- reading a group --- */

/* Calls the hook; false when the module was freed meanwhile: the caller returns at once. */
static bool report(struct lb_discovery *d, struct dgroup *g)
{
    if (d->hooks.members) {
        d->hook_depth++;
        d->hooks.members(d->hooks.ctx, g->name, g->members, g->n);
        d->hook_depth--;
    }
    if (d->hook_depth)
        return true;
    while (d->zombies) {
        struct dgroup *z = d->zombies;
        d->zombies = z->next_zombie;
        group_free(z);
    }
    if (d->free_pending) {
        d->free_pending = false;
        lb_discovery_free(d);
        return false;
    }
    return true;
}

struct candidate {
    struct net_addr addr;
    const char *text; /* in the reply */
    int weight;
};

static int candidate_compare(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    int c = addr_compare(&x->addr, &y->addr);
    return c ? c : strcmp(x->text, y->text);
}

static int u64_compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Invalid fields are logged when they appear, not on every read while they stay. */
struct bad_log {
    struct dgroup *g;
    uint64_t *hashes;
    size_t n, unlogged;
    int logged;
};

static void bad_field(struct bad_log *b, const char *field, size_t flen, const char *value,
                      size_t vlen, const char *why)
{
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, field, flen);
    h = fnv1a(h, "\xff", 1);
    h = fnv1a(h, value, vlen);
    h = fnv1a(h, why, strlen(why)); /* a duplicate is another problem than a bad weight */
    b->hashes[b->n++] = h;
    if (b->g->bad && bsearch(&h, b->g->bad, b->g->n_bad, sizeof h, u64_compare))
        return;
    if (b->logged++ < BAD_FIELDS_LOGGED)
        log_warn("redis: gantry:targets:%s: skipping %s", b->g->name, why);
    else
        b->unlogged++;
}

/* What one HGETALL said; returns false when the module was freed by the hook. */
static bool read_group(struct lb_discovery *d, struct dgroup *g, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!g->error_logged)
            log_warn("redis: HGETALL gantry:targets:%s: %s", g->name, reply->str);
        g->error_logged = true;
        return true;
    }
    if (reply->type != REDIS_REPLY_ARRAY)
        return true;
    g->error_logged = false;
    size_t n_fields = reply->elements / 2;
    if (n_fields > LB_FIELDS_MAX) {
        if (g->overflow != n_fields)
            log_warn("redis: gantry:targets:%s has %zu fields, more than %d: not read", g->name,
                     n_fields, LB_FIELDS_MAX);
        g->overflow = n_fields;
        return true;
    }
    struct candidate *c = malloc((n_fields ? n_fields : 1) * sizeof *c);
    uint64_t *hashes = malloc((n_fields ? n_fields : 1) * sizeof *hashes);
    if (!c || !hashes) {
        free(c);
        free(hashes);
        log_error("redis: out of memory reading gantry:targets:%s", g->name);
        return true;
    }
    struct bad_log bad = {.g = g, .hashes = hashes};
    size_t k = 0;
    char why[400];
    for (size_t i = 0; i < n_fields; i++) {
        const redisReply *f = reply->element[2 * i], *v = reply->element[2 * i + 1];
        struct lb_member m;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            bad_field(&bad, "", 0, "", 0, "a field or value that is not a string");
        } else if (strlen(f->str) != f->len || strlen(v->str) != v->len) {
            char q[SHOWN_MAX * 4 + 8];
            snprintf(why, sizeof why, "invalid field '%s' (a NUL byte)",
                     shown(f->str, f->len, q, sizeof q));
            bad_field(&bad, f->str, f->len, v->str, v->len, why);
        } else if (lb_member_parse(f->str, v->str, &m, why, sizeof why) < 0) {
            bad_field(&bad, f->str, f->len, v->str, v->len, why);
        } else {
            c[k++] = (struct candidate){m.addr, f->str, m.weight};
        }
    }
    qsort(c, k, sizeof *c, candidate_compare);
    size_t kept = 0;
    for (size_t i = 0; i < k; i++) {
        if (kept && addr_compare(&c[kept - 1].addr, &c[i].addr) == 0) {
            snprintf(why, sizeof why, "'%s': the same target as '%s'", c[i].text, c[kept - 1].text);
            bad_field(&bad, c[i].text, strlen(c[i].text), "", 0, why);
            continue;
        }
        c[kept++] = c[i];
    }
    size_t overflow = kept > LB_MEMBERS_MAX ? kept - LB_MEMBERS_MAX : 0;
    if (overflow && overflow != g->overflow)
        log_warn("redis: gantry:targets:%s has %zu targets; using the first %d by address", g->name,
                 kept, LB_MEMBERS_MAX);
    g->overflow = overflow;
    kept -= overflow;
    if (bad.unlogged)
        log_warn("redis: gantry:targets:%s: skipping %zu more invalid fields", g->name,
                 bad.unlogged);
    qsort(hashes, bad.n, sizeof *hashes, u64_compare);
    free(g->bad);
    g->bad = hashes;
    g->n_bad = bad.n;

    bool changed = !g->known || kept != g->n;
    for (size_t i = 0; i < kept && !changed; i++)
        changed = strcmp(c[i].text, g->members[i].text) != 0 || c[i].weight != g->members[i].weight;
    if (!changed) {
        free(c);
        return true;
    }
    struct lb_member *members = malloc((kept ? kept : 1) * sizeof *members);
    if (!members) {
        free(c);
        log_error("redis: out of memory reading gantry:targets:%s", g->name);
        return true;
    }
    for (size_t i = 0; i < kept; i++) {
        members[i].addr = c[i].addr;
        members[i].weight = c[i].weight;
        snprintf(members[i].text, sizeof members[i].text, "%s", c[i].text);
    }
    free(c);
    free(g->members);
    g->members = members;
    g->n = kept;
    g->known = true;
    return report(d, g);
}

static void on_hgetall(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lb_discovery *d = cmd_reply(ac, r);
    if (!d)
        return;
    uint64_t id = (uint64_t)(uintptr_t)privdata;
    struct dgroup *g = group_by_id(d, id);
    if (!g) /* no longer followed */
        return;
    g->inflight = false;
    if (!read_group(d, g, r))
        return;
    g = group_by_id(d, id); /* the hook may have changed the groups */
    if (g && g->again) {
        g->again = false;
        fetch(d, g);
    }
}

static void fetch(struct lb_discovery *d, struct dgroup *g)
{
    if (d->session != UP)
        return;
    if (g->inflight) {
        g->again = true;
        return;
    }
    if (cmd_send(d, on_hgetall, (void *)(uintptr_t)g->id, "HGETALL gantry:targets:%s", g->name))
        g->inflight = true;
}

static void fetch_all(struct lb_discovery *d)
{
    for (size_t i = 0; i < d->n_groups; i++)
        fetch(d, d->groups[i]);
}

/* --- the connections --- */

static void session_up(struct lb_discovery *d)
{
    if (d->session != CONNECTING || !d->cmd_ready || !d->subscribed)
        return;
    d->session = UP;
    d->failing = false;
    d->backoff_ms = BACKOFF_MIN_MS;
    ev_timer_stop(d->loop, &d->retry);
    log_info("redis: connected to %s", d->url_text);
    pending_flush(d);
    fetch_all(d);
}

static void on_ready(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    redisReply *reply = r;
    struct lb_discovery *d = cmd_reply(ac, r);
    if (!d)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "%s: %s", d->url.db ? "SELECT" : "PING", reply->str);
        session_fail(d, why);
        return;
    }
    d->cmd_ready = true;
    session_up(d);
}

static void on_subscription(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct lb_discovery *d = ac->data;
    redisReply *reply = r;
    if (!d || !reply || ac != d->sub || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcasecmp(kind, "subscribe") == 0) {
        d->subscribed = true;
        session_up(d);
    } else if (strcasecmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        struct dgroup *g = group_by_name(d, reply->element[2]->str, reply->element[2]->len);
        if (g)
            fetch(d, g);
    }
}

/* Stops using both connections. hiredis frees a context whose callback is running once the
 * callback returns; every callback first checks ac->data, which is cleared here. */
static void teardown(struct lb_discovery *d)
{
    redisAsyncContext *cmd = d->cmd, *sub = d->sub;
    d->cmd = d->sub = NULL;
    d->cmd_ready = d->subscribed = false;
    d->outstanding = 0;
    for (size_t i = 0; i < d->n_groups; i++)
        d->groups[i]->inflight = d->groups[i]->again = false;
    if (cmd) {
        cmd->data = NULL;
        redisAsyncFree(cmd);
    }
    if (sub) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
}

static void session_fail(struct lb_discovery *d, const char *why)
{
    char reason[300];
    snprintf(reason, sizeof reason, "%s", why && *why ? why : "connection closed");
    bool was_up = d->session == UP;
    teardown(d);
    d->session = WAITING;
    int64_t delay = d->backoff_ms;
    d->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    char in[32];
    value_format_duration(delay, in, sizeof in);
    if (was_up)
        log_warn("redis: connection lost: %s, retrying in %s", reason, in);
    else if (!d->failing)
        log_warn("redis: cannot connect to %s: %s, retrying in %s", d->url_text, reason, in);
    else
        log_debug("redis: still cannot connect to %s: %s, retrying in %s", d->url_text, reason, in);
    d->failing = true;
    ev_timer_stop(d->loop, &d->retry);
    ev_timer_set(&d->retry, (double)delay / 1000.0, 0.);
    ev_timer_start(d->loop, &d->retry);
}

/* A connection hiredis is about to free (after this callback returns): forget it, then end the
 * session. Nothing when it is not one of ours any more. */
static void connection_lost(const redisAsyncContext *ac, const char *why)
{
    struct lb_discovery *d = ac->data;
    if (!d)
        return;
    if (ac == d->cmd)
        d->cmd = NULL;
    else if (ac == d->sub)
        d->sub = NULL;
    else
        return;
    ((redisAsyncContext *)ac)->data = NULL;
    session_fail(d, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) /* up once PING (or SELECT) and SUBSCRIBE answer */
        connection_lost(ac, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    connection_lost(ac, status == REDIS_OK ? "connection closed" : ac->errstr);
}

redisAsyncContext *lb_redis_async_open(struct ev_loop *loop, const struct redis_url *url,
                                       void *data, lb_redis_status_fn *connected,
                                       lb_redis_status_fn *disconnected, char *err, size_t errlen)
{
    redisAsyncContext *ac;
    int family = net_addr_family(&url->addr);
    if (family == AF_UNIX) {
        ac = redisAsyncConnectUnix(((const struct sockaddr_un *)&url->addr.ss)->sun_path);
    } else {
        char host[INET6_ADDRSTRLEN];
        const void *a =
            family == AF_INET
                ? (const void *)&((const struct sockaddr_in *)&url->addr.ss)->sin_addr
                : (const void *)&((const struct sockaddr_in6 *)&url->addr.ss)->sin6_addr;
        inet_ntop(family, a, host, sizeof host);
        ac = redisAsyncConnect(host, net_addr_port(&url->addr));
    }
    if (!ac) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (family != AF_UNIX)
        redisEnableKeepAlive(&ac->c); /* notices a peer that vanished without a word */
    ac->data = data;
    if (redisLibevAttach(loop, ac) != REDIS_OK) {
        snprintf(err, errlen, "cannot attach to the event loop");
        ac->data = NULL;
        redisAsyncFree(ac);
        return NULL;
    }
    /* After attaching: hiredis 0.14 starts the write watcher here to see the connect finish. */
    redisAsyncSetConnectCallback(ac, connected);
    redisAsyncSetDisconnectCallback(ac, disconnected);
    return ac;
}

static redisAsyncContext *open_connection(struct lb_discovery *d, char *err, size_t errlen)
{
    return lb_redis_async_open(d->loop, &d->url, d, on_connect, on_disconnect, err, errlen);
}

static void session_start(struct lb_discovery *d)
{
    d->session = CONNECTING;
    log_debug("redis: connecting to %s", d->url_text);
    ev_timer_stop(d->loop, &d->retry);
    ev_timer_set(&d->retry, (double)d->connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(d->loop, &d->retry);
    char err[300];
    if (!(d->cmd = open_connection(d, err, sizeof err)) ||
        !(d->sub = open_connection(d, err, sizeof err))) {
        session_fail(d, err);
        return;
    }
    char db[16];
    snprintf(db, sizeof db, "%d", d->url.db);
    bool ok = d->url.db ? cmd_send(d, on_ready, NULL, "SELECT %s", db)
                        : cmd_send(d, on_ready, NULL, "PING");
    /* Pub/sub ignores the database: the subscriber needs no SELECT. */
    if (!ok || redisAsyncCommand(d->sub, on_subscription, NULL, "SUBSCRIBE %s", CHANNEL_TARGETS) !=
                   REDIS_OK)
        session_fail(d, "cannot send the first commands");
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_discovery *d = w->data;
    if (d->session == WAITING) {
        session_start(d);
    } else if (d->session == CONNECTING) {
        char why[64], in[32];
        snprintf(why, sizeof why, "no answer within %s",
                 value_format_duration(d->connect_timeout_ms, in, sizeof in));
        session_fail(d, why);
    }
}

static void on_resync(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct lb_discovery *d = w->data;
    if (d->session != UP)
        return;
    int64_t stall_ms = d->connect_timeout_ms > d->resync_ms ? d->connect_timeout_ms : d->resync_ms;
    if (d->outstanding && (ev_now(loop) - d->progress_at) * 1000.0 > (double)stall_ms) {
        char why[96], in[32];
        snprintf(why, sizeof why, "no answer for %s (%zu commands waiting)",
                 value_format_duration(stall_ms, in, sizeof in), d->outstanding);
        session_fail(d, why);
        return;
    }
    log_debug("redis: reading the %zu followed groups again", d->n_groups);
    fetch_all(d);
}

/* --- the API --- */

struct lb_discovery *lb_discovery_new(struct ev_loop *loop, const struct lb_discovery_options *opts,
                                      const struct lb_discovery_hooks *hooks)
{
    struct lb_discovery *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    if (hooks)
        d->hooks = *hooks;
    d->url = opts->url;
    if (!d->url.addr.len) {
        char err[64];
        net_addr_parse("127.0.0.1:6379", &d->url.addr, err, sizeof err);
        d->url.db = 0;
    }
    lb_redis_url_text(&d->url, d->url_text, sizeof d->url_text);
    d->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    d->resync_ms = opts->resync_ms > 0 ? opts->resync_ms : DEFAULT_RESYNC_MS;
    d->backoff_ms = BACKOFF_MIN_MS;
    ev_init(&d->retry, on_retry);
    d->retry.data = d;
    ev_timer_init(&d->resync, on_resync, (double)d->resync_ms / 1000.0,
                  (double)d->resync_ms / 1000.0);
    d->resync.data = d;
    ev_timer_start(loop, &d->resync);
    session_start(d);
    return d;
}

int lb_discovery_set_groups(struct lb_discovery *d, const char *const *names, size_t n)
{
    struct dgroup **next = calloc(n ? n : 1, sizeof *next);
    bool *fresh = calloc(n ? n : 1, sizeof *fresh);
    bool *kept = calloc(d->n_groups ? d->n_groups : 1, sizeof *kept);
    if (!next || !fresh || !kept)
        goto oom;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lb_group_name_valid(names[i])) {
            char q[SHOWN_MAX * 4 + 8];
            log_warn("redis: not following the invalid group name '%s'",
                     names[i] ? shown(names[i], strlen(names[i]), q, sizeof q) : "(null)");
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(next[j]->name, names[i]) == 0;
        if (dup)
            continue;
        struct dgroup *g = NULL;
        for (size_t j = 0; j < d->n_groups && !g; j++)
            if (strcmp(d->groups[j]->name, names[i]) == 0) {
                g = d->groups[j];
                kept[j] = true;
            }
        if (!g) {
            if (!(g = calloc(1, sizeof *g)))
                goto oom;
            g->id = ++d->next_id;
            snprintf(g->name, sizeof g->name, "%s", names[i]);
            fresh[m] = true;
        }
        next[m++] = g;
    }
    for (size_t j = 0; j < d->n_groups; j++)
        if (!kept[j])
            group_release(d, d->groups[j]);
    free(d->groups);
    d->groups = next;
    d->n_groups = m;
    for (size_t i = 0; i < m; i++)
        if (fresh[i])
            fetch(d, next[i]);
    free(fresh);
    free(kept);
    return 0;
oom:
    for (size_t i = 0; next && i < n; i++)
        if (fresh && fresh[i])
            group_free(next[i]);
    free(next);
    free(fresh);
    free(kept);
    log_error("redis: out of memory following %zu groups", n);
    return -1;
}

bool lb_discovery_members(const struct lb_discovery *d, const char *group,
                          const struct lb_member **members, size_t *n)
{
    const struct dgroup *g = group ? group_by_name(d, group, strlen(group)) : NULL;
    if (!g || !g->known)
        return false;
    *members = g->members;
    *n = g->n;
    return true;
}

bool lb_discovery_connected(const struct lb_discovery *d)
{
    return d->session == UP;
}

void lb_discovery_free(struct lb_discovery *d)
{
    if (!d)
        return;
    if (d->hook_depth) { /* report() finishes the job once the hook returns */
        d->free_pending = true;
        return;
    }
    ev_timer_stop(d->loop, &d->retry);
    ev_timer_stop(d->loop, &d->resync);
    teardown(d);
    for (size_t i = 0; i < d->n_groups; i++)
        group_free(d->groups[i]);
    free(d->groups);
    while (d->zombies) {
        struct dgroup *z = d->zombies;
        d->zombies = z->next_zombie;
        group_free(z);
    }
    pending_clear(d);
    free(d);
}
