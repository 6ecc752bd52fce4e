/* gantry-lb's Redis client: target-group membership from Redis, target health and drained marks
 * to Redis, exactly as docs/redis.md says. It lives on one libev loop (gantry-lb's main thread)
 * and never blocks it: two hiredis async connections, one SUBSCRIBEd to `gantry:targets`, the
 * other for commands (PING or SELECT, HGETALL, HSET, PUBLISH). Every function is called on the
 * loop's thread; the hooks are called there too.
 *
 * Membership. For each followed group (lb_discovery_set_groups) the module reads
 * `gantry:targets:GROUP` (HGETALL) as soon as it follows it, on every `gantry:targets` message
 * naming it, every resync_ms, and after every (re)connection; the subscription is confirmed before
 * the reads of a connection start, so no change slips between the two. Reads of one group never
 * overlap: messages arriving during a read cause one more read after it, so a burst of
 * registrations costs two reads, not one per message.
 *   hooks.members is called when a read differs from what was last reported for the group (the
 * first read of a group is always reported, even when empty): the module de-duplicates, the
 * caller sees changes only. The members are sorted by lb_member_compare() (address, then port),
 * at most LB_MEMBERS_MAX of them (more: the first LB_MEMBERS_MAX in that order, with a warning);
 * they are valid during the call only (lb_discovery_members() keeps giving the last report).
 * A field that is not a valid target (lb_member_parse) is skipped with one warning line when it
 * appears, not on every read while it stays; a second spelling of an address already listed
 * ("localhost:9001" beside "127.0.0.1:9001") too. A member's text is its field as written in
 * Redis: the caller passes it back to publish_state/mark_drained, so the health, drained and
 * targets hashes use the same field.
 *
 * Redis down. The module keeps going and reports nothing (the caller keeps serving what it has).
 * It reconnects with exponential backoff, 100 ms doubling to 5 s (reset once connected), logging
 * one line per change of state: "redis: connected to URL", then "redis: connection lost: WHY,
 * retrying in 100ms" (or "redis: cannot connect to URL: WHY, retrying in ..." when it never was
 * up); the attempts in between log at debug level only. A connection that does not come up within
 * connect_timeout_ms, or that leaves commands unanswered for max(connect_timeout_ms, resync_ms),
 * counts as lost. Both connections live and die together.
 *
 * Health and draining. publish_state: HSET gantry:health:GROUP ADDR {"state":..,"reason":..,
 * "since":..} then PUBLISH gantry:health "GROUP ADDR STATE". mark_drained: HSET
 * gantry:drained:GROUP ADDR MS then PUBLISH gantry:drained "GROUP ADDR". Sent at once while
 * connected. While not, the latest state and the drained mark of each target are kept (at most
 * LB_PENDING_MAX targets; more are dropped with a warning) and sent, in that order, as soon as the
 * connection is back. A write handed to a connection that dies before Redis read it is lost, and
 * so is one not yet sent when lb_discovery_free() closes the connections.
 *
 * Re-entrancy. Hooks may call any function here, lb_discovery_set_groups() and
 * lb_discovery_free() included: the module finishes what it was doing before freeing anything.
 */
#ifndef GANTRY_LB_DISCOVERY_H
#define GANTRY_LB_DISCOVERY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"
#include "config/values.h"

enum {
    LB_MEMBERS_MAX = 1000,  /* targets per group, as ALB */
    LB_GROUP_NAME_MAX = 32, /* as lb.target_groups[].name */
    LB_WEIGHT_MAX = 999,    /* weights are 0 to 999; 0 sends nothing */
    LB_PENDING_MAX = 10000, /* targets whose health or drained mark waits for Redis */
    LB_FIELDS_MAX = 100000, /* a hash with more fields than this is not read at all */
};

struct lb_member {
    struct net_addr addr;
    char text[NET_ADDR_TEXT_MAX]; /* the hash field, e.g. "127.0.0.1:9001" or "[::1]:9001" */
    int weight;                   /* 0 to LB_WEIGHT_MAX */
};

struct lb_discovery_hooks {
    /* The whole membership of a followed group, when it differs from the last one reported. */
    void (*members)(void *ctx, const char *group, const struct lb_member *members, size_t n);
    void *ctx;
};

struct lb_discovery_options {
    struct redis_url url;       /* addr.len 0: redis://127.0.0.1:6379 */
    int64_t connect_timeout_ms; /* redis.connect_timeout; 0: 2 s */
    int64_t resync_ms;          /* how often every followed group is read again; 0: 5 s */
};

struct lb_discovery;

/* Starts connecting at once. NULL when out of memory. */
struct lb_discovery *lb_discovery_new(struct ev_loop *loop, const struct lb_discovery_options *opts,
                                      const struct lb_discovery_hooks *hooks);
/* The groups to follow: replaces the set. Groups already followed keep their state (no new
 * report); new ones are read at once when connected. Invalid names are skipped with a warning.
 * Returns 0, or -1 when out of memory (the previous set stays). */
int lb_discovery_set_groups(struct lb_discovery *d, const char *const *groups, size_t n);
/* The members last reported for a followed group (valid until the next report, set_groups or
 * free); false when the group is not followed or has not been read yet. */
bool lb_discovery_members(const struct lb_discovery *d, const char *group,
                          const struct lb_member **members, size_t *n);
/* state: initial, healthy, unhealthy, draining or unused; reason: ALB's code or "" (NULL: "");
 * since_ms: Unix milliseconds of the change. Any group, followed or not. */
void lb_discovery_publish_state(struct lb_discovery *d, const char *group, const char *addr_text,
                                const char *state, const char *reason, int64_t since_ms);
void lb_discovery_mark_drained(struct lb_discovery *d, const char *group, const char *addr_text,
                               int64_t when_ms);
/* Both connections up and subscribed. */
bool lb_discovery_connected(const struct lb_discovery *d);
/* Closes both connections (no callback runs afterwards) and frees everything. NULL is fine. */
void lb_discovery_free(struct lb_discovery *d);

/* --- shared with `gantry targets` --- */

/* Letters, digits, '-' and '_', 1 to LB_GROUP_NAME_MAX characters. */
bool lb_group_name_valid(const char *name);
/* One field and value of gantry:targets:GROUP: HOST:PORT as in common/net.h (IPv4, [IPv6] or
 * localhost; no unix socket, no '*', port 1 to 65535) and a weight of 0 to 999 in decimal digits.
 * Returns 0, or -1 with why in err, e.g. "invalid weight 'abc' for 127.0.0.1:9001 (expected a
 * number from 0 to 999)"; Redis bytes in it are printable (\xNN) and cut to 64. */
int lb_member_parse(const char *field, const char *value, struct lb_member *out, char *err,
                    size_t errlen);
/* IPv4 before IPv6, then address bytes, then port, then text: a stable, human order. */
int lb_member_compare(const struct lb_member *a, const struct lb_member *b);
/* "redis://127.0.0.1:6379", "redis://[::1]:6380/2" or "unix:/run/redis.sock" (for messages). */
/* Text from Redis made safe for a terminal or a log line: visible ASCII kept, other bytes as
 * \xNN, at most max bytes of it then "...". Returns out. */
const char *lb_escape_text(const char *s, size_t len, size_t max, char *out, size_t size);
const char *lb_redis_url_text(const struct redis_url *url, char *out, size_t size);

/* --- shared with lb/metrics_writer --- */

struct redisAsyncContext;
typedef void(lb_redis_status_fn)(const struct redisAsyncContext *ac, int status);
/* A hiredis async connection to url (TCP with keep-alive, or a unix socket), attached to loop,
 * with `data` in ac->data and both callbacks set; connecting has begun. NULL with why in err. */
struct redisAsyncContext *lb_redis_async_open(struct ev_loop *loop, const struct redis_url *url,
                                              void *data, lb_redis_status_fn *connected,
                                              lb_redis_status_fn *disconnected, char *err,
                                              size_t errlen);

#endif
