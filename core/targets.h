/* A task's (target group, HOST:PORT) registrations in gantry-lb, through Redis (docs/redis.md). */
#ifndef GANTRY_CORE_TARGETS_H
#define GANTRY_CORE_TARGETS_H

#include <jansson.h>
#include <stdint.h>

#include "core/core.h"

/* ALB's default, for a group the configuration does not describe. */
enum { TARGETS_DEFAULT_DEREGISTRATION_DELAY_MS = 300000 };

/* The group's deregistration_delay from the lb section of the configuration. */
int64_t targets_deregistration_delay_ms(const struct core *core, const char *group);
/* 0 (t->registered updated) or -1 (logged; the caller retries later). */
int targets_register(struct core *core, struct task_target *t);
int targets_deregister(struct core *core, struct task_target *t);
/* 1 when gantry-lb has marked the deregistered target drained, 0 not yet, -1 Redis failed. */
int targets_drained(struct core *core, const struct task_target *t);

#endif
