/* A service's deployments, as ECS runs them (the rolling update of the ECS deployment
 * controller): the PRIMARY deployment runs the service's current task definition, older ones
 * (ACTIVE) run down as the primary's tasks become healthy.
 *
 * A task belongs to the deployment whose id is its startedBy. Each pass, with D = desiredCount:
 * the primary starts tasks up to D, keeping every task of the service that is not STOPPED within
 * maximumPercent of D while older deployments still have tasks; older tasks are stopped while the
 * healthy tasks stay at or above minimumHealthyPercent of D (those not healthy can always go). A
 * task is healthy when it is RUNNING, its essential containers with a healthCheck are HEALTHY,
 * and, with load balancers, every target is healthy in gantry-lb. The primary is COMPLETED once
 * it alone runs D tasks that have settled; the older deployments are then dropped.
 *
 * The circuit breaker (deploymentCircuitBreaker.enable): tasks of the primary that fail to start,
 * exit while it is IN_PROGRESS or fail their health checks count as failedTasks; at ECS's
 * threshold (half the desired count, at least 3, at most 200) the deployment is FAILED and, with
 * rollback, a new primary returns the service to the last COMPLETED deployment's task definition
 * (the tasks still running it are kept: they belong to the new primary).
 *
 * Everything is computed from the tasks and the deployments in the service document, so a
 * gantry-core restarted in the middle of a deployment resumes it. */
#ifndef GANTRY_CORE_DEPLOY_H
#define GANTRY_CORE_DEPLOY_H

#include <stdbool.h>

#include "core/core.h"

/* Per service and pass: what happened, for ECS-style aggregated events. */
struct pass_events {
    char started[1024];
    int n_started;
    char stopped[1024];
    int n_stopped;
};

/* The deployment a task of the service belongs to (its startedBy). */
const char *deploy_task_deployment(const struct core_task *t);
bool deploy_task_healthy(const struct core_service *svc, const struct core_task *t);

/* Reads gantry-lb's health of the service's targets and replaces tasks whose targets stayed
 * unhealthy past healthCheckGracePeriodSeconds. */
void deploy_target_health(struct core *core, struct core_service *svc);
/* Starts and stops tasks of the service as described above. */
void deploy_scale(struct core *core, struct core_service *svc, struct pass_events *ev);
/* A task of the service failed (to start, by exiting young, or its health checks): counted to its
 * deployment, where the circuit breaker may trip. */
void deploy_task_failed(struct core *core, struct core_service *svc, const struct core_task *t,
                        const char *what);
/* The service has settled at desiredCount: the primary is COMPLETED when it alone runs them. */
void deploy_settled(struct core *core, struct core_service *svc);

/* A new PRIMARY deployment document. */
json_t *deploy_new_doc(const json_t *td, int64_t desired, const char *launch_type);
/* UpdateService's new task definition or forceNewDeployment: td becomes the primary's. */
void deploy_start(struct core *core, struct core_service *svc, json_t *td);
/* DescribeServices' deployments with their counts (in the copy `out` of the service doc). */
void deploy_describe(struct core *core, const struct core_service *svc, json_t *out);

#endif
