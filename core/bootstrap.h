/* The configuration's declared clusters, task definitions and services (core.*). */
#ifndef GANTRY_CORE_BOOTSTRAP_H
#define GANTRY_CORE_BOOTSTRAP_H

#include "config/config.h"

struct core;

/* Checks the declared task definitions with RegisterTaskDefinition's rules and the services'
 * required members; errors are "file:line:col: 'core.task_definitions[0]': ...". 0 or -1. */
int bootstrap_validate(const struct config_core *core, struct cfg_errors *errors);
/* Applies them (valid by now); what the running state refuses is logged with its file:line. */
void bootstrap_apply(struct core *core);

#endif
