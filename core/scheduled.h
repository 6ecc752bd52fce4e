/* Scheduled tasks (core.scheduled_tasks), as EventBridge rules with an ECS target run them: each
 * entry has a name, a scheduleExpression (`rate(...)`, `cron(...)` or `at(...)`, see
 * docs/schedules.md), an optional timezone, a state (ENABLED or DISABLED) and RunTask's own
 * parameters (cluster, taskDefinition, count, launchType, overrides, group). When its time comes
 * the task is run through RunTask, startedBy "events-rule/NAME".
 *
 * Times missed while gantry-core was not running are not caught up (EventBridge does not either);
 * rate() counts from when gantry-core started or the entry was last changed. */
#ifndef GANTRY_CORE_SCHEDULED_H
#define GANTRY_CORE_SCHEDULED_H

#include "config/config.h"

struct core;

/* Checks every entry: "file:line:col: 'core.scheduled_tasks[0]': ...". 0 or -1. */
int scheduled_validate(const struct config_core *cc, struct cfg_errors *errors);
/* (Re)reads the configured entries; an entry unchanged by a reload keeps its next time. */
void scheduled_apply(struct core *core);
/* Runs what is due (each reconcile pass). */
void scheduled_run_due(struct core *core, int64_t now_ms);
void scheduled_free(struct core *core);

#endif
