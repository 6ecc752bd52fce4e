/* Task definitions as ECS defines them: RegisterTaskDefinition's input checked with ECS's rules,
 * the stored TaskDefinition shape DescribeTaskDefinition returns, and what a task of it reserves.
 * Pure functions over jansson values: no I/O, no global state (unit-tested in
 * tests/unit/test_taskdef.c). */
#ifndef GANTRY_CORE_TASKDEF_H
#define GANTRY_CORE_TASKDEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/api_error.h"

enum {
    TASKDEF_MAX_BYTES = 32 * 1024, /* ECS: a task definition's JSON is at most 32 KiB */
    TASKDEF_MAX_CONTAINERS = 10,
    TASKDEF_NAME_MAX = 255,
    TASKDEF_MAX_PORTS = 100, /* port mappings of all containers: each takes a host port */
};

/* ECS's names: family, container, cluster and service names are 1 to 255 letters, digits, '-'
 * and '_'. */
bool taskdef_valid_name(const char *s);

/* Checks RegisterTaskDefinition's input `in` (its JSON text was input_bytes long) as ECS does;
 * returns 0, or -1 with err set to ClientException or InvalidParameterException and a message
 * naming the field ("containerDefinitions[1].memory", ...). */
int taskdef_validate(const json_t *in, size_t input_bytes, struct api_error *err);

/* The TaskDefinition stored and returned for a validated input: the input's fields with ECS's
 * defaults filled in (essential true, protocol "tcp", ...), plus taskDefinitionArn, family,
 * revision, status "ACTIVE", compatibilities, requiresCompatibilities, registeredAt (epoch
 * seconds). A new reference. */
json_t *taskdef_build(const json_t *in, const char *arn, int revision, double registered_at);

/* What one task of td reserves on a container instance: the task-level cpu (units) and memory
 * (MiB) when set, else the sum over its containers (memoryReservation, else memory, as ECS). */
void taskdef_reservation(const json_t *td, int *cpu_units, int *memory_mib);

/* The launch type a task of td gets when RunTask/CreateService names none: "PROCESS" unless
 * requiresCompatibilities names only DOCKER (or EC2/FARGATE, which Gantry runs as DOCKER). */
const char *taskdef_default_launch_type(const json_t *td);

#endif
