"""Who may call each route of the control plane and of the gateway: the permission matrix's
tables, written by hand from docs/security.md (never read from the routes' own
declarations). Each row is ``METHOD TEMPLATE NEED`` (:class:`tests.security.matrix.Need`).

A route added to an app without a row here, or a row whose route is gone, fails
``tests/security/test_permission_matrix.py`` (control plane) or
``tests/serving/test_gateway_auth.py`` (gateway); ``docs/permissions.md`` is rendered
from these tables (``python -m tests.security.render``).
"""

from __future__ import annotations

from slipway.security.resources import Role
from tests.security.matrix import CALLERS, Caller, Kind, Need, parse

# Reads (GET, and POSTs that only read) need a viewer; changes need the role that owns
# them: editor for data and training, approver for approvals, deployer for endpoints and
# aliases, auditor for the audit log, admin for tokens and settings.
CONTROL_PLANE = parse(
    """
    # Public: liveness and the API's own documents.
    GET     /api/v1/health/live                                   public
    GET     /api/v1/openapi.json                                  public
    HEAD    /api/v1/openapi.json                                  public
    GET     /api/v1/docs                                          public
    HEAD    /api/v1/docs                                          public
    GET     /api/v1/docs/oauth2-redirect                          public
    HEAD    /api/v1/docs/oauth2-redirect                          public
    GET     /api/v1/health                                        viewer

    # Tokens and settings: the admin's.
    POST    /api/v1/tokens                                        admin
    GET     /api/v1/tokens                                        admin
    PUT     /api/v1/tokens/{token_id}/invoke                      admin
    DELETE  /api/v1/tokens/{token_id}                             admin
    POST    /api/v1/tokens/{token_id}/rotate                      admin
    GET     /api/v1/settings                                      admin
    # Workspaces: an admin of every workspace creates them; any token lists its own.
    POST    /api/v1/workspaces                                    admin
    GET     /api/v1/workspaces                                    granted
    # Any role reads a workspace it holds one in; the matrix names one nobody was granted,
    # which only an admin of every workspace reaches (a 404).
    GET     /api/v1/workspaces/{name}                             admin
    # A workspace's model format policy is the platform admin's, like its creation.
    PUT     /api/v1/workspaces/{name}/model-formats               admin
    # The audit log names every caller: the auditor's (and the admin's).
    GET     /api/v1/audit                                         auditor

    # The work queue and the events outbox.
    GET     /api/v1/work                                          viewer
    GET     /api/v1/work/{item_id}                                viewer
    POST    /api/v1/work/{item_id}/cancel                         editor
    GET     /api/v1/events                                        viewer

    # Feature store: lookups, queries and training sets are reads, even as POSTs.
    POST    /api/v1/feature-groups/{name}/lookup                  viewer
    POST    /api/v1/online-features                               viewer
    POST    /api/v1/feature-groups/query                          viewer
    POST    /api/v1/feature-groups/query/arrow                    viewer
    POST    /api/v1/training-sets                                 viewer
    GET     /api/v1/feature-groups                                viewer
    GET     /api/v1/feature-groups/{name}                         viewer
    GET     /api/v1/feature-groups/{name}/ingests                 viewer
    GET     /api/v1/feature-groups/{name}/offline                 viewer
    POST    /api/v1/feature-groups                                editor
    PUT     /api/v1/feature-groups/{name}                         editor
    DELETE  /api/v1/feature-groups/{name}                         editor
    POST    /api/v1/feature-groups/{name}/records                 editor
    POST    /api/v1/feature-groups/{name}/records/arrow           editor
    POST    /api/v1/feature-groups/{name}/records/delete          editor
    POST    /api/v1/feature-groups/{name}/materialize             editor

    # Model registry: registering is the editor's, approving the approver's, aliases
    # (what `model@alias` deployments serve) the deployer's.
    GET     /api/v1/models                                        viewer
    GET     /api/v1/models/{name}/versions                        viewer
    GET     /api/v1/models/{name}/versions/{ref}                  viewer
    GET     /api/v1/models/{name}/versions/{ref}/deployable       viewer
    GET     /api/v1/models/{name}/versions/{ref}/card             viewer
    GET     /api/v1/models/{name}/versions/{version}/approvals    viewer
    GET     /api/v1/models/{name}/compare                         viewer
    GET     /api/v1/models/lineage/feature-groups/{group}         viewer
    # A version's archive, for another Slipway to import (promotion): a read.
    GET     /api/v1/models/{name}/versions/{ref}/export           viewer
    POST    /api/v1/models/{name}/versions                        editor
    # Importing a version promoted from another Slipway registers it.
    POST    /api/v1/models/{name}/imports                         editor
    POST    /api/v1/models/{name}/versions/{ref}/verify           editor
    POST    /api/v1/models/{name}/versions/{version}/approval     approver
    PUT     /api/v1/models/{name}/aliases/{alias}                 deployer
    DELETE  /api/v1/models/{name}/aliases/{alias}                 deployer
    GET     /api/v1/tracking                                      viewer

    # Pipelines, training and tuning jobs, schedules, triggers, code bundles.
    GET     /api/v1/pipelines                                     viewer
    GET     /api/v1/pipelines/{name}                              viewer
    GET     /api/v1/executions                                    viewer
    GET     /api/v1/executions/{execution_id}                     viewer
    GET     /api/v1/executions/{execution_id}/logs                viewer
    PUT     /api/v1/pipelines/{name}                              editor
    POST    /api/v1/pipelines/{name}/executions                   editor
    POST    /api/v1/executions/{execution_id}/cancel              editor
    POST    /api/v1/executions/{execution_id}/retry               editor
    GET     /api/v1/jobs                                          viewer
    GET     /api/v1/jobs/{name}                                   viewer
    GET     /api/v1/jobs/{name}/logs                              viewer
    POST    /api/v1/jobs                                          editor
    POST    /api/v1/jobs/{name}/stop                              editor
    GET     /api/v1/tuning-jobs                                   viewer
    GET     /api/v1/tuning-jobs/{name}                            viewer
    GET     /api/v1/tuning-jobs/{name}/trials                     viewer
    GET     /api/v1/tuning-jobs/{name}/logs                       viewer
    POST    /api/v1/tuning-jobs                                   editor
    POST    /api/v1/tuning-jobs/{name}/stop                       editor
    GET     /api/v1/schedules                                     viewer
    GET     /api/v1/schedules/{name}                              viewer
    GET     /api/v1/schedules/{name}/fires                        viewer
    POST    /api/v1/schedules                                     editor
    POST    /api/v1/schedules/{name}/{action}                     editor
    PUT     /api/v1/schedules/{name}                              editor
    DELETE  /api/v1/schedules/{name}                              editor
    GET     /api/v1/triggers                                      viewer
    GET     /api/v1/triggers/{name}                               viewer
    POST    /api/v1/triggers                                      editor
    POST    /api/v1/triggers/{name}/{action}                      editor
    PUT     /api/v1/triggers/{name}                               editor
    DELETE  /api/v1/triggers/{name}                               editor
    GET     /api/v1/code-bundles/{digest}                         viewer
    POST    /api/v1/code-bundles                                  editor

    # Endpoints put models in front of traffic: their changes are the deployer's.
    GET     /api/v1/endpoints                                     viewer
    GET     /api/v1/endpoints/{name}                              viewer
    GET     /api/v1/endpoints/{name}/history                      viewer
    GET     /api/v1/endpoints/{name}/stats                        viewer
    GET     /api/v1/endpoints/{name}/ab-test                      viewer
    GET     /api/v1/endpoints/{name}/configs/{version}            viewer
    POST    /api/v1/endpoints                                     deployer
    PUT     /api/v1/endpoints/{name}                              deployer
    DELETE  /api/v1/endpoints/{name}                              deployer
    POST    /api/v1/endpoints/{name}/rollback                     deployer

    # Batch transform.
    GET     /api/v1/batch-jobs                                    viewer
    GET     /api/v1/batch-jobs/{name}                             viewer
    GET     /api/v1/batch-jobs/{name}/chunks                      viewer
    POST    /api/v1/batch-jobs                                    editor
    POST    /api/v1/batch-jobs/{name}/stop                        editor
    POST    /api/v1/batch-jobs/{name}/resume                      editor

    # Monitoring: baselines, monitors, runs, ground truth (labels are data: the editor's).
    GET     /api/v1/baselines                                     viewer
    GET     /api/v1/baselines/{name}                              viewer
    GET     /api/v1/baselines/{name}/statistics                   viewer
    GET     /api/v1/baselines/{name}/constraints                  viewer
    POST    /api/v1/baselines                                     editor
    PUT     /api/v1/baselines/{name}/constraints                  editor
    DELETE  /api/v1/baselines/{name}                              editor
    GET     /api/v1/monitors                                      viewer
    GET     /api/v1/monitors/{name}                               viewer
    GET     /api/v1/monitors/{name}/runs                          viewer
    GET     /api/v1/monitor-runs/{run_id}                         viewer
    GET     /api/v1/monitor-runs/{run_id}/report                  viewer
    POST    /api/v1/monitors                                      editor
    POST    /api/v1/monitors/{name}/enable                        editor
    POST    /api/v1/monitors/{name}/disable                       editor
    PUT     /api/v1/monitors/{name}                               editor
    DELETE  /api/v1/monitors/{name}                               editor
    POST    /api/v1/monitors/{name}/runs                          editor
    POST    /api/v1/endpoints/{endpoint}/ground-truth             editor

    # Alerts: channels, rules, the fired history.
    GET     /api/v1/alerts/channels                               viewer
    GET     /api/v1/alerts/channels/{name}                        viewer
    GET     /api/v1/alerts/rules                                  viewer
    GET     /api/v1/alerts/rules/{name}                           viewer
    GET     /api/v1/alerts/fired                                  viewer
    GET     /api/v1/alerts/fired/{alert_id}                       viewer
    POST    /api/v1/alerts/channels                               editor
    PUT     /api/v1/alerts/channels/{name}                        editor
    DELETE  /api/v1/alerts/channels/{name}                        editor
    POST    /api/v1/alerts/channels/{name}/test                   editor
    POST    /api/v1/alerts/rules                                  editor
    PUT     /api/v1/alerts/rules/{name}                           editor
    POST    /api/v1/alerts/rules/{name}/enable                    editor
    POST    /api/v1/alerts/rules/{name}/disable                   editor
    DELETE  /api/v1/alerts/rules/{name}                           editor
    GET     /api/v1/feature-views                                 viewer
    PUT     /api/v1/feature-views/{name}                          editor
    GET     /api/v1/feature-views/{name}                          viewer
    GET     /api/v1/feature-views/{name}/versions                 viewer
    POST    /api/v1/feature-views/{name}/online                   viewer
    POST    /api/v1/feature-views/{name}/training-set             viewer
    DELETE  /api/v1/feature-views/{name}                          editor
    GET     /api/v1/applied                                       viewer
    PUT     /api/v1/applied/{kind}/{name}                         editor
    DELETE  /api/v1/applied/{kind}/{name}                         editor
    """
)

# The gateway: liveness and discovery are public; calling an endpoint needs a grant of
# invoke on it (admins may call any); the metrics and online features need any token.
GATEWAY = parse(
    """
    GET     /ping                                                 public
    GET     /openapi.json                                         public
    GET     /v2                                                   public
    GET     /v2/health/live                                       public
    GET     /v2/health/ready                                      public
    POST    /endpoints/{endpoint}/invocations                     invoke
    POST    /endpoints/{endpoint}/explain                         invoke
    GET     /v2/models/{model}                                    invoke
    GET     /v2/models/{model}/ready                              invoke
    POST    /v2/models/{model}/infer                              invoke
    GET     /v2/models/{model}/versions/{version}                 invoke
    GET     /v2/models/{model}/versions/{version}/ready           invoke
    POST    /v2/models/{model}/versions/{version}/infer           invoke
    POST    /online-features                                      token
    GET     /metrics                                              token
    """
)

# The gateway's callers: the planes' own, and its second axis, a token granted invoke on
# the endpoint the route names.
GATEWAY_CALLERS = (*CALLERS, Caller(Kind.ROLE, Role.VIEWER, invoke=True))

# Values for the control plane's path parameters: names of nothing that exists (an allowed call
# is then a 404, never a change), so the matrix can call every route of a live platform.
CONTROL_PLANE_PARAMS = {
    "name": "matrix-none",
    "group": "matrix-none",
    "endpoint": "matrix-none",
    "alias": "champion",
    "action": "pause",
    "ref": "987654",
    "version": "987654",
    "item_id": "987654",
    "alert_id": "987654",
    "run_id": "987654",
    "execution_id": "matrix-none",
    "token_id": "matrix-none",
    "digest": "0" * 64,
    "kind": "Monitor",
}


def audited_denial(method: str, need: Need) -> bool:
    """Whether the control plane writes an audit entry when it refuses ``method`` on a
    route needing ``need``: every refusal is recorded, reads included."""
    return need is not Need.PUBLIC
