"""Explanations: per-row feature attributions (SHAP values) and global importance.

SageMaker Clarify's explainability, for models served and scored here: the gateway's
``POST /endpoints/{name}/explain``, batch jobs with ``explain: true`` and the
:func:`~slipway.steps.explain_global` pipeline step all go through
:func:`~slipway.explain.build.explainer_of` / :func:`~slipway.explain.build.tree_explainer`
(which explainer a model gets) and the :class:`~slipway.explain.base.Explanation` contract
(what it returns, in which output space).
"""
