/* libFuzzer target for autoscaler/model.c: any bytes as one policy (PutScalingPolicy JSON) of a
 * fixed scalable target, then as one scheduled action. Invariants: loading never crashes; a model
 * that loads has its policy on the registered target; a refusal has at least one error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler/model.h"
#include "config/autoscaler_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TARGET[] =
    "{\"ServiceNamespace\":\"ecs\",\"ResourceId\":\"service/default/web\","
    "\"ScalableDimension\":\"ecs:service:DesiredCount\",\"MinCapacity\":1,\"MaxCapacity\":10}";

static void load(struct cfg_json *target, struct cfg_json *item, bool as_action)
{
    struct config_autoscaler cfg = {.period_ms = 5000,
                                    .scale_out_datapoints = 2,
                                    .scale_out_periods = 2,
                                    .scale_in_datapoints = 12,
                                    .scale_out_tolerance = 10,
                                    .scale_in_tolerance = 10};
    cfg.scalable_targets = (struct cfg_list){target, 1};
    if (as_action)
        cfg.scheduled_actions = (struct cfg_list){item, 1};
    else
        cfg.policies = (struct cfg_list){item, 1};
    struct as_model model;
    struct cfg_errors errors = {0};
    int rc = as_model_load(&cfg, &model, &errors);
    if (rc == 0 && !as_action &&
        (model.n_policies != 1 || strcmp(model.policies[0].resource_id, "service/default/web")))
        abort();
    if (rc < 0 && errors.total == 0)
        abort();
    as_model_free(&model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct cfg_json target = {.text = TARGET, .origin = {.file = "fuzz.yaml", .line = 1, .col = 1}};
    struct cfg_json item = {.text = text, .origin = {.file = "fuzz.yaml", .line = 2, .col = 1}};
    load(&target, &item, false);
    load(&target, &item, true);
    free(text);
    return 0;
}
