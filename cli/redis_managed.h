/* The private redis-server `gantry up` runs when redis.url is not set.
 * Its data lives in <run_dir>/redis (append-only file on, so the cluster's state survives a
 * restart); it listens on <run_dir>/redis.sock only (port 0: no TCP, and the socket is mode 700, so
 * nothing else on the machine reaches it); it is ready when it answers PING there. A lock on
 * <run_dir>/gantry.lock keeps a second `gantry up` from starting a second server over the same
 * socket and data. */
#ifndef GANTRY_CLI_REDIS_MANAGED_H
#define GANTRY_CLI_REDIS_MANAGED_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "cli/supervise.h"
#include "config/values.h"

struct redis_managed {
    char run_dir[PATH_MAX]; /* absolute */
    char data_dir[PATH_MAX];
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char url[sizeof(((struct sockaddr_un *)0)->sun_path) + 5]; /* "unix:/..." for --redis */
    int lock_fd;
};

/* Creates the directories, takes the lock and checks nothing answers on the socket yet. Returns 0,
 * or -1 with a one-line reason in err. run_dir is relative to the working directory. */
int redis_managed_prepare(struct redis_managed *r, const char *run_dir, char *err, size_t errlen);
/* Appends the command line of `program` (a path or a name in PATH) and the readiness probe. */
void redis_managed_spec(struct redis_managed *r, const char *program, struct child_spec *spec);
/* The probe: connects to the socket and expects +PONG (a server loading its data answers -LOADING).
 */
bool redis_managed_ping(void *r, char *addr, size_t addrlen);
/* Drops the lock; call once the server has exited. */
void redis_managed_release(struct redis_managed *r);

/* The Redis a command (gantry status, gantry targets) uses when neither --redis nor redis.url
 * names one: the one `gantry up` runs when its socket is there (up.run_dir/redis.sock, relative
 * to the working directory), else redis://127.0.0.1:6379. */
void redis_managed_default_url(const char *run_dir, struct redis_url *out);

#endif
