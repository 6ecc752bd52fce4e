/* What every Gantry daemon shares around its event loop:
 * - the command line: -c FILE (repeatable), --check, --help, --redis URL, --listen ADDR,
 *   --admin ADDR, --log-level LEVEL (each daemon says which of the overrides it takes);
 * - signals on libev: SIGTERM and SIGINT call on_stop, SIGHUP calls on_reload, SIGPIPE ignored;
 * - readiness: daemon_ready() is called once the listeners are bound. It logs "ready", writes
 *   "READY addr...\n" to the fd named by $GANTRY_READY_FD (how `gantry up` and the tests wait), and
 *   sends READY=1 to $NOTIFY_SOCKET for systemd. */
#ifndef GANTRY_COMMON_DAEMON_H
#define GANTRY_COMMON_DAEMON_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

enum { DAEMON_MAX_CONFIG_FILES = 16 };

enum daemon_flag {
    DAEMON_TAKES_REDIS = 1 << 0,
    DAEMON_TAKES_LISTEN = 1 << 1,
    DAEMON_TAKES_ADMIN = 1 << 2,
};

struct daemon_args {
    const char *config_files[DAEMON_MAX_CONFIG_FILES];
    size_t n_config_files;
    bool check;
    const char *redis_url;
    const char *listen;
    const char *admin;
    const char *log_level;
    int first_operand; /* argv index of the first non-option argument */
    /* Configuration text a daemon generates from its own options (gantry-lb's quick mode),
     * applied after the files under the name extra_config_name. */
    const char *extra_config;
    const char *extra_config_name;
};

/* An option of one daemon only (gantry-lb's --to, say): handled by the usage's on_option. */
struct daemon_option {
    const char *name; /* without the leading "--" */
    bool has_arg;
    const char *help; /* one line for --help, e.g. "--to ADDR   a target (repeatable)" */
};

struct daemon_usage {
    const char *name;                    /* "gantry-lb" */
    const char *summary;                 /* one line: what the program is */
    unsigned flags;                      /* enum daemon_flag */
    const char *extra;                   /* further usage lines, or NULL */
    const struct daemon_option *options; /* NULL-name terminated (at most 16), or NULL */
    /* Called for each of `options` in order; returns 0, or -1 after printing why it is refused. */
    int (*on_option)(void *ctx, const struct daemon_option *option, const char *arg);
    void *ctx;
};

enum { DAEMON_ARGS_GO_ON = -1 };
/* Returns DAEMON_ARGS_GO_ON, or the exit status the program should return now (0 after --help, 2
 * after a usage error, which it has printed). */
int daemon_args_parse(int argc, char **argv, const struct daemon_usage *usage,
                      struct daemon_args *out);

struct daemon_signals {
    ev_signal term, intr, hup;
    void (*on_stop)(void *ctx);
    void (*on_reload)(void *ctx);
    void *ctx;
};

void daemon_signals_start(struct ev_loop *loop, struct daemon_signals *s, void (*on_stop)(void *),
                          void (*on_reload)(void *), void *ctx);
/* For a daemon on its way out: the watchers stop and the three signals are ignored from then on. */
void daemon_signals_stop(struct ev_loop *loop, struct daemon_signals *s);

/* addrs: the bound addresses to announce, as text. */
void daemon_ready(const char *const *addrs, size_t n);

#endif
