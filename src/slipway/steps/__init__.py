"""Built-in pipeline steps: evaluation, champion/challenger, registration, labelled
traffic, explanations, bias, and training, tuning and batch jobs.

    from slipway.steps import evaluate, register_model

They are ordinary steps (use them in a pipeline like your own). They compose several
capabilities and reach the whole platform from inside the step's process, so they live
here, above the capabilities, next to the one place the platform is assembled
(:mod:`slipway.services`), not inside any one capability. Pipelines stored with their old
names (``slipway.pipelines.steps:...``, ``slipway.explain.steps:...``) still resolve (see
:mod:`slipway.runtime.targets`).
"""

from slipway.monitoring.bias_steps import bias_report
from slipway.steps.evaluation import compare_models, evaluate
from slipway.steps.explain import explain_global
from slipway.steps.jobs import batch_transform, training_job, tuning_job
from slipway.steps.registration import register_model
from slipway.steps.traffic import labelled_traffic

__all__ = [
    "batch_transform",
    "bias_report",
    "compare_models",
    "evaluate",
    "explain_global",
    "labelled_traffic",
    "register_model",
    "training_job",
    "tuning_job",
]
