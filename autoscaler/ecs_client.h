/* The autoscaler's ECS API client: DescribeServices and UpdateService over ECS's JSON 1.1
 * protocol with libcurl, against gantry-core or (with SigV4, CURLOPT_AWS_SIGV4) real Amazon ECS.
 * Calls are synchronous and bounded: 2.5 s for a call and its retries in all (a connect of at most
 * 1 s), retried after 100, 200, 400 ms while time is left when the answer says to try again (a
 * refused connection, a 5xx, ServerException or ThrottlingException); a timeout is not retried
 * (a hung API costs the loop one wait per call; the next period tries again). An ECS error
 * otherwise is returned as it is. */
#ifndef GANTRY_AUTOSCALER_ECS_CLIENT_H
#define GANTRY_AUTOSCALER_ECS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct ecs_client {
    void *curl; /* CURL *, reused between calls (keep-alive) */
    char endpoint[512];
    char region[64];
    bool sigv4;
    char error[1024]; /* the last failure: "ServiceNotFoundException: Service not found." */
};

struct ecs_service_state {
    int desired, running, pending;
    bool deployment_in_progress; /* more than one deployment, or the primary IN_PROGRESS */
    bool active;                 /* status ACTIVE */
};

/* 0, or -1 (curl could not be set up). Credentials for SigV4 come from the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) at each call. */
int ecs_client_init(struct ecs_client *c, const char *endpoint, const char *region, bool sigv4);
void ecs_client_free(struct ecs_client *c);

/* 0, or -1 with c->error. */
int ecs_describe_service(struct ecs_client *c, const char *cluster, const char *service,
                         struct ecs_service_state *out);
int ecs_update_desired(struct ecs_client *c, const char *cluster, const char *service, int desired);

#endif
