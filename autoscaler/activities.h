/* Scaling activities, recorded in Redis the way DescribeScalingActivities reports them:
 * gantry:autoscaling:activities:RESOURCE_ID, a list of JSON documents newest first, at most
 * ACTIVITIES_KEPT (ActivityId, ServiceNamespace, ResourceId, ScalableDimension, Description,
 * Cause, StartTime, EndTime, StatusCode Successful | Failed, StatusMessage). Read by
 * `gantry scaling activities` and `gantry status`. */
#ifndef GANTRY_AUTOSCALER_ACTIVITIES_H
#define GANTRY_AUTOSCALER_ACTIVITIES_H

#include <stdbool.h>

#include "common/redis_sync.h"

enum { ACTIVITIES_KEPT = 100 };

#define ACTIVITIES_KEY_PREFIX "gantry:autoscaling:activities:"

struct activity {
    const char *resource_id;
    const char *description; /* "Setting desired count to 4." */
    const char *cause;
    double start, end; /* epoch seconds */
    bool successful;
    const char *status_message; /* the failure, or "" */
};

/* 0, or -1 (logged; an activity that cannot be written never stops the scaling). */
int activity_record(struct redis_sync *r, const struct activity *a);

#endif
