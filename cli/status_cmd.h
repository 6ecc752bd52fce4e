/* `gantry status`: what gantry-core keeps in Redis (docs/core.md), for an operator: the clusters
 * (status, ACTIVE services, running and pending tasks), then per service its status,
 * desired/running/pending counts, task definition and load balancers, its tasks that are not
 * STOPPED (short id, lastStatus/desiredStatus, host ports, gantry-lb's state of each target from
 * gantry:health:GROUP) with a count of the STOPPED ones, and its last events; tasks outside a
 * service come last, per cluster. Read-only: nothing is written to Redis.
 * Every value is read as untrusted: what cannot be read shows as "?", never a crash, and text is
 * escaped for the terminal.
 * Redis: --redis, else redis.url of the -c files, else redis://127.0.0.1:6379.
 * Exit status: 0 done, 1 Redis unreachable (or no such --cluster), 2 usage. */
#ifndef GANTRY_CLI_STATUS_CMD_H
#define GANTRY_CLI_STATUS_CMD_H

/* argv[0] is "status"; returns the exit status. */
int status_cmd_main(int argc, char **argv);

#endif
