/* `gantry up`: runs the whole stack on one machine, in the foreground.
 * Starts, in the order of the program table in cli/up.c, each program the configuration needs (its
 * own redis-server when redis.url is empty, the demo workload, ...), waiting for each to be ready
 * before the next; then announces itself ready (common/daemon.h) and supervises: output re-emitted
 * with each program's name as prefix, crashed programs restarted with a backoff. On SIGINT or
 * SIGTERM it stops them in reverse order and exits 0 when all stopped cleanly. A program that fails
 * to start stops the others and makes it exit 1. */
#ifndef GANTRY_CLI_UP_H
#define GANTRY_CLI_UP_H

/* argv[0] is "up"; returns the exit status. */
int up_main(int argc, char **argv);

#endif
