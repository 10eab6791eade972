"""moto-harness plugin: makes moto's ECS behave like ECS where moto does not.

Loaded into moto's own process by `MotoServer::start_with_plugin`; the Rust
tests call `handle(operation, body)` through `MotoServer::control`. Every
operation says in its docstring what part of ECS it simulates. Nothing here
runs unless a test asks for it, except the two patches applied at load time:

* `UpdateService` creates a new PRIMARY deployment (new id, the new task
  definition, rollout IN_PROGRESS) and demotes the old PRIMARY to ACTIVE, as
  ECS does. Plain moto keeps one deployment and never changes it.
* `ListTaskDefinitions` and `ListTasks` honour `maxResults`/`nextToken`, and
  `ListTasks` honours `serviceName` (tasks started by the service's
  deployments), as ECS does. Plain moto returns everything in one page.
* `ListServiceDeployments`, `DescribeServiceDeployments` and
  `DescribeServiceRevisions` (which moto lacks) answer from the service's
  deployments: one service revision per deployment, status from the rollout
  state (IN_PROGRESS, SUCCESSFUL, and ROLLBACK_* after `ecs_rollback`).
* `StopServiceDeployment` (which moto lacks) with `stopType` ROLLBACK rolls
  the service back as ECS does: a new PRIMARY deployment runs the task
  definition of the deployment before (the last COMPLETED one), the stopped
  deployment becomes ACTIVE/FAILED, its service deployment
  ROLLBACK_IN_PROGRESS (ROLLBACK_SUCCESSFUL once `complete` settles it);
  ABORT makes it STOPPED. Requests are recorded (`stops`).
* A test may set a service deployment's status outright (`sd_status`).
* The ECS handlers answer with a queued fault first, if a test queued one
  (`faults`): throttling and server errors as ECS sends them.
* `DescribeServices` answers from before the last `UpdateService` for a
  number of calls, if a test asked for it (`stale_reads`): ECS reads are
  eventually consistent.
"""

import copy

import uuid

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs.models import Task, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

REGION = "us-east-1"

# Deployment ids ever created per (account, cluster, service), so that
# ListTasks can filter by service like ECS does.
_SERVICE_DEPLOYMENTS = {}


def _backend(account):
    return ecs_backends[account][REGION]


def _service(body):
    backend = _backend(body["account"])
    return backend, backend._get_service(body["cluster"], body["service"])


def _new_deployment(service, task_definition_arn, status="PRIMARY"):
    now = utcnow()
    deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
    deployment = {
        "id": deployment_id,
        "status": status,
        "taskDefinition": task_definition_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment " + deployment_id + " in progress.",
    }
    _remember(service, deployment_id)
    return deployment


def _remember(service, deployment_id):
    key = (service._account_id, service.cluster_name, service.name)
    _SERVICE_DEPLOYMENTS.setdefault(key, set()).add(deployment_id)


# Every deployment dict ever seen per service (newest first), and the
# service-deployment status the ECS rollback simulation gave some of them.
_HISTORY = {}
_SD_STATUS = {}


def _history(service):
    key = (service._account_id, service.cluster_name, service.name)
    known = _HISTORY.setdefault(key, [])
    for deployment in reversed(service.deployments):
        if all(d is not deployment for d in known):
            known.insert(0, deployment)
    return known


def _primary(service):
    return next(d for d in service.deployments if d["status"] == "PRIMARY")


# ---------------------------------------------------------------- patches

_original_update_service = ecs_models.EC2ContainerServiceBackend.update_service


def _update_service(self, service_properties):
    """UpdateService as ECS does it: a new task definition (or a forced
    deployment) starts a new PRIMARY deployment; the old PRIMARY becomes
    ACTIVE. The deployment configuration sent is kept on the service."""
    properties = dict(service_properties)
    task_definition = properties.get("task_definition")
    force = properties.get("force_new_deployment", False)
    before = self._get_service(properties.get("cluster", "default"),
                               properties["service"].split("/")[-1])
    old_arn = before.task_definition
    stale = _STALE_ARMED.pop(before._account_id, 0)
    if stale:
        _STALE[before._account_id] = [before.cluster_name, before.name, stale,
                                   copy.deepcopy(before.deployments)]
    service = _original_update_service(self, service_properties)
    if task_definition:
        service.task_definition = self.describe_task_definition(task_definition).arn
    if service.deployments and (force or service.task_definition != old_arn):
        for deployment in service.deployments:
            if deployment["status"] == "PRIMARY":
                deployment["status"] = "ACTIVE"
                deployment["updatedAt"] = utcnow()
        _history(service)
        service.deployments.insert(0, _new_deployment(service, service.task_definition))
        _history(service)
    return service


ecs_models.EC2ContainerServiceBackend.update_service = _update_service


def _page(self, items, key):
    max_results = self._get_param("maxResults") or 100
    start = int(self._get_param("nextToken") or 0)
    page = items[start : start + max_results]
    result = {key: page}
    if start + max_results < len(items):
        result["nextToken"] = str(start + max_results)
    return ActionResult(result)


def _list_task_definitions(self):
    """ListTaskDefinitions with a real `familyPrefix` (prefix match),
    `sort` and pagination."""
    prefix = self._get_param("familyPrefix")
    status = self._get_param("status", "ACTIVE")
    definitions = [
        td
        for family in self.ecs_backend.task_definitions.values()
        for td in family.values()
        if td.status == status and (prefix is None or td.family.startswith(prefix))
    ]
    definitions.sort(key=lambda td: (td.family, td.revision))
    if self._get_param("sort") == "DESC":
        definitions.reverse()
    return _page(self, [td.arn for td in definitions], "taskDefinitionArns")


def _list_tasks(self):
    """ListTasks filtered by cluster, desired status and service (tasks
    whose startedBy is one of the service's deployments), or by startedBy
    alone, with pagination. Fixed against moto: the desired status defaults
    to RUNNING, as in ECS (moto lists every task), and startedBy must be
    the only filter, as in ECS (moto combines it with the others)."""
    cluster = self._get_param("cluster", "default")
    service_name = self._get_param("serviceName")
    desired = self._get_param("desiredStatus")
    started_by = self._get_param("startedBy")
    if started_by and (service_name or desired):
        raise JsonRESTError(
            "InvalidParameterException",
            "startedBy must be the only filter of ListTasks")
    tasks = self.ecs_backend.list_tasks(cluster, None, None, started_by, None,
                                        desired or "RUNNING")
    if service_name:
        key = (self.current_account, self.ecs_backend._get_cluster(cluster).name, service_name)
        ids = _SERVICE_DEPLOYMENTS.get(key, set())
        tasks = [t for t in tasks if t.started_by in ids]
    tasks.sort(key=lambda t: t.id)
    return _page(self, [t.task_arn for t in tasks], "taskArns")


def _arn(service, kind, deployment):
    suffix = deployment["id"].split("/")[-1]
    return (f"arn:aws:ecs:{REGION}:{service._account_id}:{kind}/"
            f"{service.cluster_name}/{service.name}/{suffix}")


def _sd_status(deployment):
    if deployment["id"] in _SD_STATUS:
        return _SD_STATUS[deployment["id"]]
    return {"COMPLETED": "SUCCESSFUL", "FAILED": "STOPPED"}.get(
        deployment.get("rolloutState"), "IN_PROGRESS")


def _all_services(backend):
    return list(backend.services.values())


def _list_service_deployments(self):
    """ListServiceDeployments from the service's deployment history."""
    service = self.ecs_backend._get_service(self._get_param("cluster", "default"),
                                            self._get_param("service").split("/")[-1])
    items = [{"serviceDeploymentArn": _arn(service, "service-deployment", d),
              "serviceArn": service.arn, "clusterArn": service.cluster_arn,
              "startedAt": d["createdAt"], "createdAt": d["createdAt"],
              "targetServiceRevisionArn": _arn(service, "service-revision", d),
              "status": _sd_status(d)} for d in _history(service)]
    return _page(self, items, "serviceDeployments")


def _describe_service_deployments(self):
    """DescribeServiceDeployments: source revisions are the deployments that
    were live when the deployment started (the older ones in the history)."""
    wanted = set(self._get_param("serviceDeploymentArns") or [])
    found = []
    for service in _all_services(self.ecs_backend):
        history = _history(service)
        for i, d in enumerate(history):
            arn = _arn(service, "service-deployment", d)
            if arn not in wanted:
                continue
            revision = lambda x: {"arn": _arn(service, "service-revision", x),
                                  "requestedTaskCount": x.get("desiredCount", 0),
                                  "runningTaskCount": x.get("runningCount", 0),
                                  "pendingTaskCount": x.get("pendingCount", 0)}
            item = {"serviceDeploymentArn": arn, "serviceArn": service.arn,
                    "clusterArn": service.cluster_arn, "createdAt": d["createdAt"],
                    "startedAt": d["createdAt"], "updatedAt": d["updatedAt"],
                    "targetServiceRevision": revision(d),
                    "sourceServiceRevisions": [revision(x) for x in history[i + 1:i + 2]],
                    "status": _sd_status(d),
                    "statusReason": d.get("rolloutStateReason")}
            if _sd_status(d) in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "STOPPED"):
                item["finishedAt"] = d["updatedAt"]
            if d["id"] in _ROLLED_BACK_TO:
                item["rollback"] = {"reason": "rollback",
                                    "serviceRevisionArn": _arn(service, "service-revision",
                                                               _ROLLED_BACK_TO[d["id"]])}
            found.append(item)
    # Real ECS reports each ARN it does not answer for as a failure (reason
    # MISSING); the plugin used to leave them out silently.
    answered = {item["serviceDeploymentArn"] for item in found}
    failures = [{"arn": arn, "reason": "MISSING"} for arn in sorted(wanted - answered)]
    return ActionResult({"serviceDeployments": found, "failures": failures})


def _describe_service_revisions(self):
    """DescribeServiceRevisions: a revision per deployment, with its task
    definition."""
    wanted = set(self._get_param("serviceRevisionArns") or [])
    found = []
    for service in _all_services(self.ecs_backend):
        for d in _history(service):
            arn = _arn(service, "service-revision", d)
            if arn in wanted:
                found.append({"serviceRevisionArn": arn, "serviceArn": service.arn,
                              "clusterArn": service.cluster_arn,
                              "taskDefinition": d["taskDefinition"],
                              "createdAt": d["createdAt"]})
    return ActionResult({"serviceRevisions": found, "failures": []})


# The deployment each rolled-back deployment went back to, by id; the
# StopServiceDeployment requests received.
_ROLLED_BACK_TO = {}
_STOPS = []


def _stop_service_deployment(self):
    """StopServiceDeployment: only the PRIMARY deployment's service
    deployment, while IN_PROGRESS, can be stopped (else a ClientException, as
    ECS refuses a finished one). ROLLBACK goes back to the deployment before
    (the ACTIVE one, last COMPLETED); ABORT stops it (STOPPED)."""
    arn = self._get_param("serviceDeploymentArn")
    stop_type = self._get_param("stopType", "ABORT")
    _STOPS.append({"arn": arn, "stopType": stop_type})
    for service in _all_services(self.ecs_backend):
        ours = _primary(service)
        if _arn(service, "service-deployment", ours) != arn:
            continue
        if _sd_status(ours) != "IN_PROGRESS":
            raise JsonRESTError("ClientException", "the service deployment is not in progress")
        ours.update(rolloutState="FAILED", updatedAt=utcnow(),
                    rolloutStateReason=f"stopped with StopServiceDeployment ({stop_type})")
        if stop_type != "ROLLBACK":
            _SD_STATUS[ours["id"]] = "STOPPED"
            return ActionResult({"serviceDeploymentArn": arn})
        previous = next(d for d in service.deployments if d["status"] == "ACTIVE")
        ours["status"] = "ACTIVE"
        _history(service)
        _SD_STATUS[ours["id"]] = "ROLLBACK_IN_PROGRESS"
        _ROLLED_BACK_TO[ours["id"]] = previous
        rollback = _new_deployment(service, previous["taskDefinition"])
        service.deployments = [rollback, ours] + [d for d in service.deployments
                                                  if d is not ours and d is not previous]
        service.task_definition = previous["taskDefinition"]
        return ActionResult({"serviceDeploymentArn": arn})
    raise JsonRESTError("ServiceDeploymentNotFoundException", f"{arn} not found")


EC2ContainerServiceResponse.stop_service_deployment = _stop_service_deployment
EC2ContainerServiceResponse.list_service_deployments = _list_service_deployments
EC2ContainerServiceResponse.describe_service_deployments = _describe_service_deployments
EC2ContainerServiceResponse.describe_service_revisions = _describe_service_revisions
EC2ContainerServiceResponse.list_task_definitions = _list_task_definitions
EC2ContainerServiceResponse.list_tasks = _list_tasks


# Faults queued per (account, handler name): error codes to answer with.
_FAULTS = {}

# HTTP status ECS uses for each fault code.
_FAULT_STATUS = {
    "ThrottlingException": 400,
    "ServerException": 500,
    "ServiceUnavailableException": 503,
}


class _Fault(JsonRESTError):
    def __init__(self, error_type):
        super().__init__(error_type, f"{error_type} (injected by the test plugin)")
        self.code = _FAULT_STATUS.get(error_type, 400)


def _with_faults(name, handler):
    def wrapped(self):
        queue = _FAULTS.get((self.current_account, name))
        if queue:
            raise _Fault(queue.pop(0))
        return handler(self)

    return wrapped


# Stale DescribeServices answers: armed per account by `stale_reads`,
# taken by the next UpdateService: [cluster, service, calls left, deployments].
_STALE_ARMED = {}
_STALE = {}

_original_describe_services = ecs_models.EC2ContainerServiceBackend.describe_services


def _describe_services(self, *args, **kwargs):
    """The services as ECS answers them; a stale answer (a shallow copy
    with the deployments from before the last UpdateService) while one is
    due. The copy outlives this call: responses are serialized later."""
    services, failures = _original_describe_services(self, *args, **kwargs)
    entry = _STALE.get(self.account_id)
    if not entry or entry[2] <= 0:
        return services, failures
    cluster, name, _, deployments = entry
    answer = []
    for service in services:
        if service.cluster_name == cluster and service.name == name:
            entry[2] -= 1
            service = copy.copy(service)
            service.deployments = copy.deepcopy(deployments)
        answer.append(service)
    return answer, failures


ecs_models.EC2ContainerServiceBackend.describe_services = _describe_services

for _name in ["describe_services", "update_service", "list_tasks", "describe_tasks",
              "describe_task_definition", "register_task_definition",
              "list_task_definitions", "tag_resource", "deregister_task_definition"]:
    setattr(EC2ContainerServiceResponse, _name,
            _with_faults(_name, getattr(EC2ContainerServiceResponse, _name)))


# --------------------------------------------------------------- control


def _add_task(backend, service, deployment, body, index):
    """A task of `deployment`, in the state the body asks for."""
    _remember(service, deployment["id"])
    cluster = backend._get_cluster(service.cluster_name)
    task_definition = backend.describe_task_definition(deployment["taskDefinition"])
    task = Task(cluster, task_definition, None, None, backend, group="service:" + service.name,
                launch_type="EC2", started_by=deployment["id"])
    last_status = body.get("last_status", "RUNNING")
    task._transitions = [(last_status, last_status)]
    task._status = last_status
    task.desired_status = "STOPPED" if last_status == "STOPPED" else "RUNNING"
    task.health_status = body.get("health", "HEALTHY")
    task.started_at = utcnow()
    if last_status == "STOPPED":
        task.stopped_at = utcnow()
        task.stopped_reason = body.get("stopped_reason", "")
        task.stop_code = body.get("stop_code", "EssentialContainerExited")
    containers = []
    for definition in task_definition.container_definitions:
        container = {
            "containerArn": f"{task.task_arn}/{definition['name']}",
            "taskArn": task.task_arn,
            "name": definition["name"],
            "image": definition.get("image"),
            "lastStatus": last_status,
            "healthStatus": body.get("container_health", body.get("health", "HEALTHY")),
        }
        if last_status == "STOPPED":
            container["exitCode"] = body.get("exit_code", 1)
            if body.get("container_reason"):
                container["reason"] = body["container_reason"]
        containers.append(container)
    task.containers = containers
    backend.tasks.setdefault(cluster.name, {})[task.id] = task
    return task.task_arn


def _stop_tasks_of(backend, service, deployment_ids):
    for task in backend.tasks.get(service.cluster_name, {}).values():
        if task.started_by in deployment_ids and task.desired_status == "RUNNING":
            task._transitions = [("STOPPED", "STOPPED")]
            task._status = "STOPPED"
            task.desired_status = "STOPPED"
            task.stopped_reason = "Scaling activity initiated by (deployment)"
            task.stop_code = "ServiceSchedulerInitiated"


def _complete(body):
    """ECS finishes the PRIMARY deployment: its tasks run healthy
    (`running` of them, default the desired count), rollout COMPLETED, the
    older deployments' tasks are stopped and the deployments drop out."""
    backend, service = _service(body)
    primary = _primary(service)
    _history(service)
    for d in service.deployments:
        if _SD_STATUS.get(d["id"]) == "ROLLBACK_IN_PROGRESS":
            _SD_STATUS[d["id"]] = "ROLLBACK_SUCCESSFUL"
    running = body.get("running", service.desired_count)
    for i in range(running):
        _add_task(backend, service, primary, {"health": body.get("health", "HEALTHY")}, i)
    _stop_tasks_of(backend, service, {d["id"] for d in service.deployments if d is not primary})
    primary.update(runningCount=running, pendingCount=0, rolloutState="COMPLETED",
                   rolloutStateReason=f"ECS deployment {primary['id']} completed.",
                   updatedAt=utcnow())
    service.deployments = [primary]
    service.running_count, service.pending_count = running, 0
    return {"deployments": service.deployments}


def _fail(body):
    """The circuit breaker fails the PRIMARY deployment WITHOUT rollback:
    `failed_tasks` tasks of it stopped (each with `stopped_reason`,
    `stop_code`, `container_reason`), rollout FAILED. The older deployment
    stays ACTIVE and keeps running."""
    backend, service = _service(body)
    primary = _primary(service)
    failed = body.get("failed_tasks", 3)
    stopped = {"last_status": "STOPPED", "health": "UNKNOWN",
               "stopped_reason": body.get("stopped_reason", "Essential container in task exited"),
               "stop_code": body.get("stop_code", "EssentialContainerExited"),
               "container_reason": body.get("container_reason")}
    arns = [_add_task(backend, service, primary, stopped, i) for i in range(failed)]
    primary.update(failedTasks=failed, rolloutState="FAILED",
                   rolloutStateReason=body.get(
                       "reason", "ECS deployment circuit breaker: tasks failed to start."),
                   updatedAt=utcnow())
    return {"deployments": service.deployments, "stopped_tasks": arns}


def _ecs_rollback(body):
    """The circuit breaker fails the PRIMARY deployment AND ECS rolls back:
    a new PRIMARY deployment runs the task definition of the deployment
    before ours (the ACTIVE one); ours becomes ACTIVE with rollout FAILED
    and `failed_tasks` stopped tasks. With `settle`, the rollback deployment
    completes and ours drops out, as ECS shows it minutes later."""
    backend, service = _service(body)
    ours = _primary(service)
    previous = next(d for d in service.deployments if d["status"] == "ACTIVE")
    failed = body.get("failed_tasks", 3)
    stopped = {"last_status": "STOPPED", "health": "UNKNOWN",
               "stopped_reason": body.get("stopped_reason", "Essential container in task exited"),
               "stop_code": body.get("stop_code", "EssentialContainerExited"),
               "container_reason": body.get("container_reason")}
    for i in range(failed):
        _add_task(backend, service, ours, stopped, i)
    ours.update(status="ACTIVE", failedTasks=failed, rolloutState="FAILED",
                rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.",
                updatedAt=utcnow())
    _history(service)
    _SD_STATUS[ours["id"]] = "ROLLBACK_SUCCESSFUL" if body.get("settle") else "ROLLBACK_IN_PROGRESS"
    _ROLLED_BACK_TO[ours["id"]] = previous
    rollback = _new_deployment(service, previous["taskDefinition"])
    rollback["rolloutStateReason"] = (
        f"ECS deployment circuit breaker: rolling back to deploymentId {previous['id']}.")
    service.deployments = [rollback, ours] + [d for d in service.deployments
                                              if d is not ours and d is not previous]
    service.task_definition = previous["taskDefinition"]
    now = utcnow()
    service.events[:0] = [
        {"id": str(uuid.uuid4()), "createdAt": now,
         "message": f"(service {service.name}) rolling back to deployment {previous['id']}."},
        {"id": str(uuid.uuid4()), "createdAt": now,
         "message": f"(service {service.name}) (deployment {ours['id']}) deployment failed: "
                    "tasks failed to start."},
    ]
    if body.get("settle"):
        _complete({**body, "running": service.desired_count})
    return {"deployments": service.deployments}


def _run_tasks(body):
    """`count` tasks of the PRIMARY deployment in the state asked for
    (`last_status`, `health`, …): what the ECS scheduler would start."""
    backend, service = _service(body)
    primary = _primary(service)
    return {"task_arns": [_add_task(backend, service, primary, body, i)
                          for i in range(body.get("count", 1))]}


def _faults(body):
    """Queues error answers for the next calls of one ECS operation
    (`operation` as the handler name, e.g. `describe_services`), as ECS
    answers under throttling or a server-side failure."""
    queue = _FAULTS.setdefault((body["account"], body["operation"]), [])
    queue.extend(body["faults"])
    return {"queued": len(queue)}


def _clear_faults(body):
    """Drops every queued fault of the account (the outage is over)."""
    for key in [k for k in _FAULTS if k[0] == body["account"]]:
        del _FAULTS[key]
    return {}


def _stale_reads(body):
    """ECS reads are eventually consistent: after the account's next
    UpdateService, the next `count` DescribeServices calls still list the
    service's deployments as they were before that update."""
    _STALE_ARMED[body["account"]] = body.get("count", 1)
    return {}


def _sd_status_op(body):
    """Sets the service-deployment status of the PRIMARY deployment (or of
    deployment `id`) to `status`, as ECS would report it (e.g. STOPPED after
    an operator stopped it)."""
    _, service = _service(body)
    deployment_id = body.get("id") or _primary(service)["id"]
    _SD_STATUS[deployment_id] = body["status"]
    return {"id": deployment_id}


def _stops(body):
    """The StopServiceDeployment requests received so far."""
    return {"stops": list(_STOPS)}


def _deployments(body):
    """Reads the service's deployments as moto holds them (for debugging)."""
    _, service = _service(body)
    return {"deployments": service.deployments}


OPERATIONS = {
    "complete": _complete,
    "fail": _fail,
    "ecs_rollback": _ecs_rollback,
    "run_tasks": _run_tasks,
    "deployments": _deployments,
    "faults": _faults,
    "clear_faults": _clear_faults,
    "stale_reads": _stale_reads,
    "sd_status": _sd_status_op,
    "stops": _stops,
}


def handle(operation, body):
    return OPERATIONS[operation](body)


# ------------------------------------------------- benches/side-by-side
# Added for benches/side-by-side (not used by the Rust tests; nothing above
# changes): `ecs_rollback` drops the deployment it rolled back to from the
# service's list without stopping that deployment's tasks, so after the
# rollback settles ListTasks shows twice the desired count RUNNING, which a
# tool counting tasks (fabfuel's ecs-deploy) never accepts as done. Real ECS
# ends with the desired count running.


def _stop_replaced_tasks(body):
    """ECS scales in the tasks of every earlier deployment of the service
    once the PRIMARY one is done: every still-RUNNING task started by a
    deployment of this service other than the PRIMARY is stopped (as
    `complete` does for the deployments it still lists)."""
    backend, service = _service(body)
    primary = _primary(service)
    key = (service._account_id, service.cluster_name, service.name)
    others = _SERVICE_DEPLOYMENTS.get(key, set()) - {primary["id"]}
    before = [t.task_arn for t in backend.tasks.get(service.cluster_name, {}).values()
              if t.started_by in others and t.desired_status == "RUNNING"]
    _stop_tasks_of(backend, service, others)
    return {"stopped_tasks": before}


OPERATIONS["stop_replaced_tasks"] = _stop_replaced_tasks
