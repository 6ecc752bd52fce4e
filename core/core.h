/* gantry-core's context: the ECS model held in memory (authoritative while the process runs) and
 * written through to Redis (store.h), the service scheduler's state, the API server and the
 * PROCESS runner. Everything runs on one libev loop: API calls, child exits and the reconcile
 * timer never interleave, so the model needs no locks.
 *
 * Entities keep their ECS shape as jansson documents (what Describe* returns, minus the counts
 * computed on the fly); the C structs around them hold what the scheduler needs at run time. */
#ifndef GANTRY_CORE_CORE_H
#define GANTRY_CORE_CORE_H

#include <ev.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/redis_sync.h"
#include "config/config.h"
#include "common/http_server.h"
#include "core/health.h"
#include "core/runner.h"
#include "core/taskdef.h"

/* The string member `key` of obj, or "" when it is absent or not a string: documents come back
 * from Redis, where anyone may have damaged them, so no member is trusted to be there. */
static inline const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* CORE_MAX_TARGETS: ECS's limit of load balancers (target groups) per service.
 * CORE_STARTS_PER_PASS, CORE_START_BUDGET_MS: tasks one reconcile pass starts, and the time it
 * spends starting them, before it lets the loop serve the API (starting 1,000 tasks in one pass
 * kept the API silent for seconds; a DOCKER task takes ~130 ms of dockerd's time to start). */
enum {
    TASK_FAILURE_WINDOW_MS = 10000,
    SERVICE_FAILURES_BEFORE_BACKOFF = 3,
    SERVICE_BACKOFF_MAX_MS = 60000,
    CORE_NAME_MAX = 256,
    CORE_ID_LEN = 32,
    CORE_MAX_EVENTS = 100,
    CORE_MAX_PENDING_EVENTS = 2000,
    CORE_MAX_TARGETS = 5,
    CORE_STARTS_PER_PASS = 16,
    CORE_START_BUDGET_MS = 300,
};

/* ECS's task statuses, in lifecycle order. */
enum task_status {
    TASK_PROVISIONING,
    TASK_PENDING,
    TASK_ACTIVATING,
    TASK_RUNNING,
    TASK_DEACTIVATING,
    TASK_STOPPING,
    TASK_DEPROVISIONING,
    TASK_STOPPED,
};

struct core;

struct task_container {
    char name[CORE_NAME_MAX];
    bool essential;
    pid_t pid; /* PROCESS: the process (group); DOCKER: the container's init as dockerd says */
    uint64_t start_ticks;
    char docker_id[72]; /* DOCKER: the container's id ("" before it is created) */
    bool running;
    int exit_code; /* valid once !running and started */
    bool has_exit_code;
    int64_t stop_timeout_ms;
    ev_child child;
    bool watched; /* child is started */
    /* A process re-adopted after a restart is no child of ours: its exit is seen through a
     * pidfd (or, without pidfd_open, by polling its start time each reconcile pass). */
    int pidfd; /* -1: none */
    ev_io exit_io;
    bool adopted;
    struct container_health health;
    struct core_task *task;
};

/* A (target group, HOST:PORT) this task is or must be registered in. */
struct task_target {
    char group[CORE_NAME_MAX];
    char group_arn[512]; /* as the service names it, for events */
    char addr[64];
    bool registered;
    /* gantry-lb's view (gantry:health:GROUP), read each pass: "" (none yet), "initial",
     * "healthy", "unhealthy", ...; since: the lb's time of the last change (Unix ms) */
    char health[16];
    int64_t health_since_ms;
};

struct core_task {
    struct core_task *next;
    struct core *core;
    char id[CORE_ID_LEN + 1];
    char cluster[CORE_NAME_MAX];
    char service[CORE_NAME_MAX]; /* "" for RunTask's tasks */
    json_t *doc;                 /* ECS Task */
    json_t *td;                  /* its TaskDefinition (a reference) */
    enum task_status last, desired;
    bool placed; /* resources and ports reserved */
    int cpu, memory_mib;
    int n_containers;
    struct task_container containers[TASKDEF_MAX_CONTAINERS];
    int n_ports;
    int host_ports[TASKDEF_MAX_PORTS];
    int n_targets;
    struct task_target targets[CORE_MAX_TARGETS];
    int64_t drain_deadline_ms; /* DEACTIVATING: stop waiting for the lb's drained mark then */
    int64_t kill_at_ms;        /* STOPPING: SIGKILL then */
    int64_t stopped_at_ms;
    bool no_drain; /* its process died: deregister without waiting for a drain */
    bool dirty;    /* to be written to Redis */
};

struct core_service {
    struct core_service *next;
    char cluster[CORE_NAME_MAX];
    char name[CORE_NAME_MAX];
    json_t *doc;    /* ECS Service, without runningCount/pendingCount/deployments/events */
    json_t *events; /* newest first, at most CORE_MAX_EVENTS */
    json_t *td;     /* the task definition it runs (a reference) */
    bool active;    /* ACTIVE; false: DRAINING (deleted, tasks stopping) */
    bool steady;    /* the last "steady state" event still holds */
    char last_placement_failure[256];
    /* Tasks that failed to start or died within TASK_FAILURE_WINDOW_MS, in a row: past
     * SERVICE_FAILURES_BEFORE_BACKOFF, starts wait until next_start_ms (ECS throttles too). */
    int failures;
    int64_t next_start_ms;
    int64_t inactive_at_ms; /* DRAINING done: INACTIVE since */
    bool health_unknown;    /* gantry-lb's view could not be read this pass */
    bool dirty;
};

struct core_scheduled; /* core/scheduled.c: one configured scheduled task */
struct docker; /* common/docker.h: the Docker Engine client (NULL until a DOCKER task needs it) */

struct core {
    struct ev_loop *loop;
    struct gantry_config *cfg;
    struct redis_sync redis;
    struct runner runner;
    struct docker *docker;
    bool docker_swept; /* dockerd was listed once since start (orphan containers removed) */
    struct http_server api;
    ev_timer reconcile_timer;
    ev_idle kick; /* a reconcile soon after a change */
    char cwd[PATH_MAX];
    char run_dir[PATH_MAX];
    json_t *clusters;  /* name -> Cluster */
    json_t *instances; /* cluster name -> ContainerInstance */
    json_t *taskdefs;  /* family -> array of TaskDefinition, index revision-1 */
    struct core_service *services;
    struct core_task *tasks;
    struct core_scheduled *scheduled; /* array of n_scheduled */
    size_t n_scheduled;
    json_t *pending_deletes; /* [key, field] pairs to HDEL from Redis, [key] to DEL */
    json_t *pending_events;  /* [key, event JSON text] pairs to LPUSH */
    int instance_cpu;        /* units */
    int instance_memory_mib;
    int used_cpu, used_memory_mib;
    unsigned char ports_used[65536 / 8];
    int next_port_offset;
    bool dirty_clusters;
    bool store_failed; /* the last flush failed: retried every reconcile */
    bool store_failed_logged;
    bool shutting_down; /* every task is stopping: services start no replacement */
    bool scheduler_running;
    char epoch[CORE_ID_LEN + 1]; /* the marker this gantry-core wrote in gantry:ecs:epoch */
    bool dirty_epoch;            /* not written yet */
};

/* Whether the next reconcile should come at once (after an API change or a child's exit). */
void core_kick(struct core *core);

/* --- store.c: Redis write-through (key layout in docs/core.md) --- */
int store_load(struct core *core, char *why, size_t why_size);
/* Redis restarted empty (or was flushed) since gantry-core wrote its marker: everything is
 * written again and every target registered again. Called each reconcile pass. */
void store_check_epoch(struct core *core);
/* Writes every dirty entity, pending deletion and event in one MULTI/EXEC. 0 or -1. */
int store_flush(struct core *core);
/* For mutating API calls: -1 with a ServerException in err when Redis cannot be reached. */
int store_check(struct core *core, struct api_error *err);

/* --- arn.c --- */
void core_arn(const struct core *core, char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The last path element of an ARN of the given resource type ("cluster", "service", "task"...),
 * or the text itself when it is not an ARN. NULL when it is an ARN of another type, or when the
 * result does not fit in size (no name of ours is that long). */
const char *core_arn_name(const char *text, const char *resource, char *out, size_t size);
void core_new_id(char out[CORE_ID_LEN + 1]);
double core_now(void); /* epoch seconds, as ECS's timestamps */

/* --- clusters.c --- */
/* The cluster named (name or ARN, NULL: "default") if ACTIVE; else ClusterNotFoundException. */
json_t *cluster_find(struct core *core, const char *name_or_arn, char *name_out,
                     struct api_error *err);
json_t *cluster_ensure(struct core *core, const char *name); /* creates it when missing */
json_t *instance_describe(struct core *core, const char *cluster);
const char *instance_arn(struct core *core, const char *cluster);
/* This machine's CPU units and memory (or the configured ones). */
void instance_detect(struct core *core);

/* --- taskdefs.c --- */
/* "family", "family:rev" or an ARN; a family alone means its latest ACTIVE revision. */
json_t *taskdef_find(struct core *core, const char *ref, struct api_error *err);
/* RegisterTaskDefinition's logic, also for the declarative bootstrap; returns the new (or, with
 * reuse_same, the identical latest) TaskDefinition, borrowed. */
json_t *taskdef_register(struct core *core, const json_t *in, size_t input_bytes, bool reuse_same,
                         struct api_error *err);

/* --- tasks.c --- */
struct core_task *task_create(struct core *core, const char *cluster, json_t *td,
                              const char *service, const char *started_by, const char *group,
                              const json_t *overrides, const char *launch_type);
json_t *task_describe(struct core_task *task); /* a new reference */
struct core_task *task_find(struct core *core, const char *cluster, const char *id_or_arn);
const char *task_status_name(enum task_status s);
void task_set_status(struct core_task *task, enum task_status s);
/* Asks the task to stop (desiredStatus STOPPED); the scheduler drains and stops it. */
void task_request_stop(struct core_task *task, const char *reason, const char *stop_code);
void task_free(struct core_task *task);
/* A task record read back from Redis at start (doc is borrowed). */
void task_load(struct core *core, const char *cluster, const char *id, json_t *record);

/* The launchType member of `in` (RunTask, CreateService), else what td asks for. */
int launch_type_param(json_t *in, const json_t *td, const char **out, struct api_error *err);

/* --- services.c --- */
struct core_service *service_find(struct core *core, const char *cluster, const char *name_or_arn);
void service_free(struct core_service *svc);
json_t *service_describe(struct core *core, struct core_service *svc);
void service_event(struct core *core, struct core_service *svc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A service read back from Redis at start (doc and events are borrowed / stolen). */
void service_load(struct core *core, const char *cluster, const char *name, json_t *doc,
                  json_t *events);
/* The gantry-lb target group a loadBalancers[].targetGroupArn names: the NAME of
 * "arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID", or a plain NAME. */
int service_lb_group(const char *ref, char *out, size_t size);
int service_apply(struct core *core, const json_t *in, bool update_if_exists, json_t **out,
                  struct api_error *err);

/* --- scheduler.c --- */
void scheduler_start(struct core *core);
void scheduler_stop(struct core *core);
void scheduler_reconcile(struct core *core);
/* A container stopped: exit_code, or -1 when unknown (a re-adopted process, a container dockerd
 * lost), with an optional reason for the container's document. */
void scheduler_container_exited(struct core_task *task, struct task_container *c, int exit_code,
                                const char *reason);
/* A task of a service failed its health checks: counted by its deployment's circuit breaker
 * (`what` completes "tasks ...", e.g. "failed container health checks"). */
void scheduler_task_failed(struct core_task *task, const char *what);
/* Counts for Describe*: tasks of a service (or a cluster when svc is NULL) by lastStatus. */
void scheduler_counts(struct core *core, const char *cluster, const char *service, int *running,
                      int *pending);

/* --- api.c: the action table --- */
typedef int (*api_action_fn)(struct core *core, json_t *in, json_t **out, struct api_error *err);
struct api_action {
    const char *name;
    api_action_fn fn;
    bool mutates; /* needs Redis reachable first */
};
int api_start(struct core *core, char *why, size_t why_size);

/* Actions, one file per resource. */
int act_create_cluster(struct core *, json_t *, json_t **, struct api_error *);
int act_delete_cluster(struct core *, json_t *, json_t **, struct api_error *);
int act_list_clusters(struct core *, json_t *, json_t **, struct api_error *);
int act_describe_clusters(struct core *, json_t *, json_t **, struct api_error *);
int act_list_container_instances(struct core *, json_t *, json_t **, struct api_error *);
int act_describe_container_instances(struct core *, json_t *, json_t **, struct api_error *);
int act_register_task_definition(struct core *, json_t *, json_t **, struct api_error *);
int act_deregister_task_definition(struct core *, json_t *, json_t **, struct api_error *);
int act_describe_task_definition(struct core *, json_t *, json_t **, struct api_error *);
int act_list_task_definitions(struct core *, json_t *, json_t **, struct api_error *);
int act_list_task_definition_families(struct core *, json_t *, json_t **, struct api_error *);
int act_create_service(struct core *, json_t *, json_t **, struct api_error *);
int act_update_service(struct core *, json_t *, json_t **, struct api_error *);
int act_delete_service(struct core *, json_t *, json_t **, struct api_error *);
int act_list_services(struct core *, json_t *, json_t **, struct api_error *);
int act_describe_services(struct core *, json_t *, json_t **, struct api_error *);
int act_run_task(struct core *, json_t *, json_t **, struct api_error *);
int act_stop_task(struct core *, json_t *, json_t **, struct api_error *);
int act_list_tasks(struct core *, json_t *, json_t **, struct api_error *);
int act_describe_tasks(struct core *, json_t *, json_t **, struct api_error *);

#endif
