/* Supervised child processes, on libev's default loop (ev_child needs it).
 * A child runs in its own process group, with PR_SET_PDEATHSIG so that it dies with gantry, stdin
 * on /dev/null, default signal dispositions and an empty signal mask, and its stdout and stderr on
 * one pipe re-emitted line by line with its name as prefix (cli/output.h). It is ready when it
 * writes "READY addr...\n" to $GANTRY_READY_FD (common/daemon.h), or, for a program that cannot
 * (redis-server), when the spec's probe first succeeds; a probe is polled every SUPERVISE_PROBE_MS.
 * The child only reports: whoever owns it decides in the hooks what an exit means (a failed start,
 * a crash to restart with child_restart_later(), the end of a stop). */
#ifndef GANTRY_CLI_SUPERVISE_H
#define GANTRY_CLI_SUPERVISE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum {
    CHILD_MAX_ARGS = 64,
    CHILD_MAX_ENV = 16,
    CHILD_MAX_ADDRS = 8,
    SUPERVISE_PROBE_MS = 20,
    /* A child that ran this long without crashing is stable: its backoff starts over. */
    SUPERVISE_STABLE_MAX_MS = 30000,
};

/* Returns true once the program serves; writes what it serves on to addr. */
typedef bool (*child_probe_fn)(void *arg, char *addr, size_t addrlen);

/* What to run. Every string must outlive the child (the caller's arena holds them). */
struct child_spec {
    const char *name;                     /* prefix of its output and name in messages */
    const char *argv[CHILD_MAX_ARGS + 1]; /* argv[0]: a path, or a name looked up in PATH */
    size_t argc;
    const char *env[CHILD_MAX_ENV + 1]; /* "NAME=value", over gantry's own environment */
    size_t envc;
    child_probe_fn probe; /* NULL: readiness through $GANTRY_READY_FD */
    void *probe_arg;
    const char *hint; /* appended when the program cannot be run */
    bool overflow;    /* an argument did not fit: the spec is unusable */
};

/* The builders used to fill a spec; they set spec->overflow instead of overrunning. */
void child_spec_arg(struct child_spec *s, const char *arg);
void child_spec_env(struct child_spec *s, const char *assignment);

struct child_policy {
    int64_t ready_timeout_ms;
    int64_t stop_timeout_ms;
    int64_t backoff_min_ms, backoff_max_ms;
    int prefix_width; /* names are padded to this width in output prefixes */
};

struct child;
struct child_hooks {
    void (*on_ready)(struct child *c, void *ctx);
    void (*on_exit)(struct child *c, void *ctx);          /* child_exit_text() says how */
    void (*on_ready_timeout)(struct child *c, void *ctx); /* still running, never said ready */
};

/* Once, before the first child: makes sure fds 0 to 2 are open (see supervise.c). */
void supervise_init(void);

struct child *child_new(struct ev_loop *loop, const struct child_spec *spec,
                        const struct child_policy *policy, const struct child_hooks *hooks,
                        void *ctx);
/* Stops watching and frees; the process, if any, must be gone (child_pid() is 0). */
void child_free(struct child *c);

/* Forks and execs. -1 with the reason in err when the program cannot be run (not found, not
 * executable): nothing is left running then. */
int child_start(struct child *c, char *err, size_t errlen);
/* After an exit the owner did not ask for: logs why it exited and starts it again after the
 * backoff (doubling per crash, reset once it had run stably). */
void child_restart_later(struct child *c);
/* Cancels a restart child_restart_later() scheduled, if any. */
void child_cancel_restart(struct child *c);
/* SIGTERM to its process group, then SIGKILL after the stop timeout (at once when hurry). Cancels
 * a pending restart. Returns false when on_exit will follow, true when nothing was running. */
bool child_stop(struct child *c, bool hurry);

const char *child_name(const struct child *c);
pid_t child_pid(const struct child *c);       /* 0 when not running */
bool child_ever_ready(const struct child *c); /* some process of it said it was ready */
/* The addresses of its last READY line (or of the probe). */
size_t child_addrs(const struct child *c, const char *const **addrs);
/* How the last process ended: "exited with status 1", "was killed by signal 9 (Killed)". */
const char *child_exit_text(const struct child *c, char *out, size_t size);
/* Whether the last process ended as a stop asks: status 0, or killed by the SIGTERM sent. */
bool child_exit_clean(const struct child *c);
/* Its last output lines after a header line, for a failure report; nothing if it printed nothing.
 * Returns how many. */
size_t child_print_tail(const struct child *c, const char *header, FILE *out);

#endif
