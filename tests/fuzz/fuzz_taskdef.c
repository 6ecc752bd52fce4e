/* libFuzzer target for core/taskdef.c, the validation of RegisterTaskDefinition's input (what an
 * API client sends, after jansson parsed it). Invariants: validation never crashes; an input it
 * accepts builds into a definition that validates again (with the same size budget: the built one
 * may be larger, so the budget is the maximum), whose reservation is not negative and whose
 * launch type is one Gantry knows. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/taskdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, 0, NULL);
    if (!in)
        return 0;
    struct api_error err;
    if (taskdef_validate(in, size, &err) == 0) {
        json_t *td =
            taskdef_build(in, "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1", 1, 1.0);
        if (!td)
            abort();
        if (taskdef_validate(td, 0, &err) != 0)
            abort(); /* what we store must pass our own rules */
        int cpu = -1, memory = -1;
        taskdef_reservation(td, &cpu, &memory);
        if (cpu < 0 || memory < 0)
            abort();
        const char *lt = taskdef_default_launch_type(td);
        if (strcmp(lt, "PROCESS") != 0 && strcmp(lt, "DOCKER") != 0)
            abort();
        json_decref(td);
    } else if (!err.type || !err.message[0]) {
        abort();
    }
    json_decref(in);
    return 0;
}
