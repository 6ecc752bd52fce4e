/* `gantry targets`: target-group membership in Redis, by the contract of docs/redis.md.
 *   register GROUP HOST:PORT [--weight N]  HSET gantry:targets:GROUP, HDEL gantry:drained:GROUP
 *                                          and PUBLISH gantry:targets, in one MULTI
 *   deregister GROUP HOST:PORT             HDEL, then PUBLISH; exit 1 when it was not registered
 *   list [GROUP]                           GROUP's targets with weight, health and drained mark,
 *                                          sorted by address; without GROUP, every group (SCAN)
 *   watch GROUP...                         follows groups with lb/discovery, as gantry-lb does:
 *                                          one line per change until SIGINT or SIGTERM
 * Addresses are stored in their canonical spelling (localhost:9001 is 127.0.0.1:9001), so
 * deregistering and gantry-lb's health fields find the same one.
 * Redis: --redis, else redis.url of the -c files, else redis://127.0.0.1:6379; connecting and
 * each answer are bounded by redis.connect_timeout.
 * Exit status: 0 done, 1 Redis unreachable or refusing (or nothing to deregister), 2 usage. */
#ifndef GANTRY_CLI_TARGETS_CMD_H
#define GANTRY_CLI_TARGETS_CMD_H

/* argv[0] is "targets"; returns the exit status. */
int targets_cmd_main(int argc, char **argv);

#endif
