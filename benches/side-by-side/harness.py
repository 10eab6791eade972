"""Side-by-side driver: one tool, one scenario, against moto's ECS.

Usage (run.sh calls it; see benches/README.md):

    python3 harness.py run --tool TOOL --scenario {good,bad} --out RESULT.json \
        --workdir DIR [--ecs PATH] [--aws PATH] [--runner-updater PATH]
    python3 harness.py table RESULT.json... > table.md
    python3 harness.py idle --out RESULT.json --workdir DIR --secs N \
        [--runner-updater PATH]

`idle` runs the daemon, `runner-updater run`, with a check every second
against a service already on the offered release (nothing to do), for N
seconds, and samples its resident memory (VmRSS, VmHWM from
/proc/PID/status) every second; then stops it with SIGTERM. Sixty checks
are an hour of the shipped schedule's idle checks at a one-minute interval.

TOOL is one of:
  ecs-deploy            fabfuel's `ecs deploy CLUSTER SERVICE --image runner IMAGE --timeout 120`
  runner-updater        `runner-updater update` with the shipped rollout defaults
                        (polls 5 s growing to 30 s, 60 s bake time)
  runner-updater-1s     `runner-updater update` polling every second with no bake
                        time (ecs-deploy's cadence, for a like-for-like wall time)
  aws-wait              `aws ecs wait services-stable` after the harness itself
                        registered the new revision and called UpdateService

Each run is one fresh Python process: moto (5.2.x, in this process, on
127.0.0.1 and a free port) with the ECS plugin of ecs-rollout's tests
(crates/ecs-rollout/tests/moto_ecs_plugin.py, loaded as the moto-harness
launcher loads it, not copied), so the state of every run starts empty.

What is simulated (moto never runs a deployment): the ECS timeline below,
driven by this process on the wall clock, the same for every tool and
independent of how often a tool asks:

  * a new PRIMARY deployment whose runner image is the scenario's bad image:
    ECS_STEP_SECS (6.5 s, `--ecs-step`) after it appeared, ECS's circuit
    breaker trips and rolls it back (the plugin's `ecs_rollback`: our deployment ACTIVE/FAILED with 3
    stopped tasks, a new PRIMARY deployment of the previous task definition,
    service deployment ROLLBACK_IN_PROGRESS);
  * any other new PRIMARY deployment (the good image, ECS's rollback
    deployment, a tool's own rollback): ECS_STEP_SECS after it appeared, ECS
    completes it (the plugin's `complete`: its tasks RUNNING and HEALTHY,
    rollout COMPLETED, the older deployments' tasks stopped; a rollback's
    service deployment becomes ROLLBACK_SUCCESSFUL; then the plugin's
    `stop_replaced_tasks` stops the tasks of the deployment ECS rolled back
    to, which `ecs_rollback` leaves RUNNING, so the desired count runs).

So the good deployment is done at t0+6.5 s and the bad one is back on the
old revision at t0+13 s, t0 being the tool's UpdateService.

API calls are counted at moto's WSGI application (a counting middleware
wrapped around moto's own app in this process): every HTTP request the tool
sends to moto while it runs, by `X-Amz-Target` operation, retries included.
The harness's own set-up calls are made before counting starts and the
timeline edits moto in-process, so neither is counted.
"""

import argparse
import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PLUGIN = REPO / "crates" / "ecs-rollout" / "tests" / "moto_ecs_plugin.py"

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "sbs"
SERVICE = "runner"
CONTAINER = "runner"
LABEL = "org.opencontainers.image.version"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/runner"
CURRENT_VERSION = "20260101.1"
NEW_VERSION = "20260102.1"
CURRENT_IMAGE = f"{REPOSITORY}:{CURRENT_VERSION}@sha256:{'01' * 32}"
GOOD_IMAGE = f"{REPOSITORY}:{NEW_VERSION}@sha256:{'02' * 32}"
# The bad release: an image that crash-loops (exits at start).
BAD_IMAGE = f"{REPOSITORY}:{NEW_VERSION}@sha256:{'0b' * 32}"
DESIRED = 2

# The ECS timeline: seconds after a new PRIMARY deployment appeared until
# the breaker trips (bad image) or ECS completes it (any other); `--ecs-step`.
# 6.5 s is a multiple of no tool's poll interval (1 s, 5 s, 15 s).
ECS_STEP_SECS = 6.5
# How often the timeline looks for new deployments.
TICK_SECS = 0.02

TOOL_TIMEOUT_SECS = 300
ECS_DEPLOY_TIMEOUT = 120

SIGNING_CONTEXT = b"runner-version/signed-release/v1\n"

TOOLS = ["ecs-deploy", "runner-updater", "runner-updater-1s", "aws-wait"]


# ------------------------------------------------------------------ moto


def load_plugin():
    spec = importlib.util.spec_from_file_location("moto_ecs_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Counter:
    """Counts the requests moto receives while `on`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.on = False
        self.calls = []  # (seconds since start, operation, HTTP status)
        self.started = None

    def start(self):
        with self.lock:
            self.calls = []
            self.started = time.monotonic()
            self.on = True

    def stop(self):
        with self.lock:
            self.on = False
            return list(self.calls)

    def middleware(self, app):
        def counted(environ, start_response):
            if not self.on:
                return app(environ, start_response)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target:
                operation = target.split(".", 1)[-1]
            else:
                operation = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
            status = []

            def recording_start_response(code, headers, exc_info=None):
                status.append(code.split(" ", 1)[0])
                return start_response(code, headers, exc_info)

            at = time.monotonic()
            try:
                return app(environ, recording_start_response)
            finally:
                with self.lock:
                    if self.on:
                        self.calls.append((round(at - self.started, 3), operation,
                                           status[0] if status else "?"))

        return counted


def start_moto(counter):
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
    from werkzeug.serving import make_server

    class CountingMotoServer(ThreadedMotoServer):
        def _server_entry(self):
            app = counter.middleware(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    server = CountingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server, server.get_host_and_port()[1]


# ------------------------------------------------------------- timeline


class Timeline:
    """Plays ECS on the wall clock (see the module docstring)."""

    def __init__(self, plugin, bad_image, step):
        self.step = step
        self.plugin = plugin
        self.bad_image = bad_image
        self.seen = set()
        self.due = []  # (monotonic time, kind, deployment id)
        self.events = []  # (monotonic time, text)
        self.stop_event = threading.Event()
        self.thread = None

    def _service(self):
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[ACCOUNT][REGION]
        return backend, backend._get_service(CLUSTER, SERVICE)

    def _image_of(self, backend, task_definition_arn):
        td = backend.describe_task_definition(task_definition_arn)
        return next(c.get("image") for c in td.container_definitions if c["name"] == CONTAINER)

    def start(self):
        _, service = self._service()
        self.seen = {d["id"] for d in service.deployments}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join()

    def _note(self, text):
        self.events.append((time.monotonic(), text))

    def _run(self):
        body = {"account": ACCOUNT, "cluster": CLUSTER, "service": SERVICE}
        while not self.stop_event.wait(TICK_SECS):
            try:
                backend, service = self._service()
                now = time.monotonic()
                for d in list(service.deployments):
                    if d["status"] != "PRIMARY" or d["id"] in self.seen:
                        continue
                    self.seen.add(d["id"])
                    image = self._image_of(backend, d["taskDefinition"])
                    if image == self.bad_image:
                        self.due.append((now + self.step, "ecs_rollback", d["id"]))
                        self._note(f"new deployment {d['id']} of the bad image")
                    else:
                        self.due.append((now + self.step, "complete", d["id"]))
                        self._note(f"new deployment {d['id']} of {image.split('@')[0]}")
                for item in sorted(self.due):
                    at, kind, deployment_id = item
                    if at > now:
                        continue
                    self.due.remove(item)
                    primary = self.plugin._primary(service)
                    if primary["id"] != deployment_id:
                        self._note(f"{kind} of {deployment_id} skipped: no longer PRIMARY")
                        continue
                    self.plugin.handle(kind, body)
                    if kind == "complete":
                        # The replaced deployments' tasks are scaled in.
                        self.plugin.handle("stop_replaced_tasks", body)
                    self._note(f"{kind} of {deployment_id}")
            except Exception as exc:  # keep playing; say what went wrong
                self._note(f"timeline error: {exc!r}")


# ---------------------------------------------------------------- set-up


def boto_client(port):
    import boto3

    return boto3.client("ecs", region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def task_definition(image, version):
    return dict(
        family=f"{CLUSTER}-runner",
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/runner-execution",
        containerDefinitions=[{
            "name": CONTAINER,
            "image": image,
            "essential": True,
            "memory": 512,
            "dockerLabels": {LABEL: version},
        }],
    )


def set_up(ecs, plugin):
    """Cluster `sbs`, service `runner` (2 tasks, EC2, circuit breaker with
    rollback, 100 %/200 %) running 20260101.1 by digest, its deployment
    COMPLETED with 2 healthy tasks. Returns the task definition's ARN."""
    arn = ecs.register_task_definition(**task_definition(CURRENT_IMAGE, CURRENT_VERSION))[
        "taskDefinition"]["taskDefinitionArn"]
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=arn,
                       desiredCount=DESIRED, launchType="EC2")
    # moto drops the deployment configuration at CreateService and keeps it
    # on UpdateService (which, without a new task definition, starts no
    # deployment).
    ecs.update_service(cluster=CLUSTER, service=SERVICE, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "minimumHealthyPercent": 100, "maximumPercent": 200})
    plugin.handle("complete", {"account": ACCOUNT, "cluster": CLUSTER, "service": SERVICE})
    return arn


def sign_manifest(path, image, version=NEW_VERSION):
    """A signed release manifest (the format runner-version verifies:
    Ed25519 over its signing context and the canonical JSON of `signed`),
    by a throwaway bench key. Returns the base64 public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes([0x5B]) * 32)
    public = key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    doc = {"version": version, "channel": "stable", "image": image,
           "infra_version": "7",
           "template_url": "https://s3.amazonaws.com/runner-templates/7/runner.json",
           "template_sha256": "cd" * 32, "expires": expires}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    signature = key.sign(SIGNING_CONTEXT + canonical)
    envelope = {"signed": doc,
                "signatures": [{"keyid": "bench", "sig": base64.b64encode(signature).decode()}]}
    path.write_text(json.dumps(envelope, indent=1))
    return base64.b64encode(public).decode()


def runner_updater_config(workdir, image, fast, version=NEW_VERSION, extra=""):
    manifest = workdir / "stable.json"
    public = sign_manifest(manifest, image, version)
    rollout = ("\n[rollout]\npoll_min_secs = 1\npoll_max_secs = 1\nbake_secs = 0\n"
               if fast else "")
    rollout += extra
    config = f"""runner = "{CLUSTER}/{SERVICE}"
owner = "side-by-side"

[[targets]]
name = "runner"
cluster = "{CLUSTER}"
service = "{SERVICE}"
container = "{CONTAINER}"
image = "runner"

[release]
manifest_file = {json.dumps(str(manifest))}
trusted_keys = {{ bench = "{public}" }}

[lock]
backend = "file"
dir = {json.dumps(str(workdir / "state"))}

[infra]
version = "7"
{rollout}"""
    path = workdir / "runner-updater.toml"
    path.write_text(config)
    return path


# ------------------------------------------------------------------- run


def tool_env(port, workdir):
    # Empty AWS config and credentials files: nothing from this machine's
    # ~/.aws is read.
    for name in ("aws-config", "aws-credentials"):
        (workdir / name).write_text("")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(workdir / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-credentials"),
    }
    return env


def message_of(tool, code, stdout, stderr):
    """The tool's own words for its verdict, one line."""
    lines = [l.strip() for l in (stdout + "\n" + stderr).splitlines() if l.strip()]
    if tool.startswith("runner-updater"):
        # The report: a summary line, then "  outcome: ..." and a line per
        # target (output.rs, print_report).
        out = [l.strip() for l in stdout.splitlines() if l.strip()]
        picked = [l for i, l in enumerate(out)
                  if l.startswith("target ")
                  or (i + 1 < len(out) and out[i + 1].startswith("outcome:"))]
        return " | ".join(picked) if picked else " | ".join(lines[-2:])
    if tool == "ecs-deploy":
        wanted = [l for l in lines if re.search(
            r"successful|failed|error|timeout|deregistered|rolled back", l, re.I)]
        return " | ".join(wanted[-3:]) if wanted else (lines[-1] if lines else "(no output)")
    return " | ".join(lines[-2:]) if lines else "(no output)"


def peak_rss_kib(time_file):
    text = time_file.read_text() if time_file.exists() else ""
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return int(m.group(1)) if m else None


def after_state(ecs):
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
    td = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
    image = next(c["image"] for c in td["containerDefinitions"] if c["name"] == CONTAINER)
    return {
        "primary_task_definition": primary["taskDefinition"].split("/")[-1],
        "primary_task_definition_status": td["status"],
        "primary_image": ("bad" if image == BAD_IMAGE else "good" if image == GOOD_IMAGE
                          else "current" if image == CURRENT_IMAGE else image),
        "deployments": len(service["deployments"]),
        "running": service.get("runningCount"),
    }


def run(args):
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # A fresh lock, journal and quarantine (the file backend) for every run.
    shutil.rmtree(workdir / "state", ignore_errors=True)
    image = GOOD_IMAGE if args.scenario == "good" else BAD_IMAGE

    plugin = load_plugin()
    counter = Counter()
    server, port = start_moto(counter)
    ecs = boto_client(port)
    current_arn = set_up(ecs, plugin)
    timeline = Timeline(plugin, BAD_IMAGE, args.ecs_step)
    timeline.start()

    time_file = workdir / "time.txt"
    if args.tool == "ecs-deploy":
        command = [args.ecs, "deploy", CLUSTER, SERVICE, "--image", CONTAINER, image,
                   "--timeout", str(ECS_DEPLOY_TIMEOUT)]
    elif args.tool in ("runner-updater", "runner-updater-1s"):
        config = runner_updater_config(workdir, image, fast=args.tool == "runner-updater-1s")
        command = [args.runner_updater, "--config", str(config), "update"]
    elif args.tool == "aws-wait":
        # The deployment the waiter waits on: the harness registers the new
        # revision and updates the service (not counted), then starts the
        # waiter at once.
        new_arn = ecs.register_task_definition(**task_definition(image, NEW_VERSION))[
            "taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=new_arn)
        command = [args.aws, "ecs", "wait", "services-stable", "--cluster", CLUSTER,
                   "--services", SERVICE]
    else:
        raise SystemExit(f"unknown tool {args.tool}")

    timed = ["/usr/bin/time", "-v", "-o", str(time_file)] + command
    counter.start()
    started = time.monotonic()
    try:
        proc = subprocess.run(timed, env=tool_env(port, workdir), capture_output=True,
                              text=True, timeout=TOOL_TIMEOUT_SECS)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = "killed after %d s" % TOOL_TIMEOUT_SECS
        stdout = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        stderr = (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
    ended = time.monotonic()
    calls = counter.stop()
    timeline.stop()
    state = after_state(ecs)
    server.stop()

    (workdir / "stdout.txt").write_text(stdout)
    (workdir / "stderr.txt").write_text(stderr)
    by_operation = {}
    for _, operation, _ in calls:
        by_operation[operation] = by_operation.get(operation, 0) + 1
    settled = [t for t, text in timeline.events if text.startswith("complete")]
    result = {
        "tool": args.tool,
        "scenario": args.scenario,
        "ecs_step_secs": args.ecs_step,
        "command": " ".join(command).replace(str(REPO) + "/", ""),
        "exit_code": code,
        "message": message_of(args.tool, code, stdout, stderr),
        "wall_secs": round(ended - started, 2),
        # From ECS finishing (the last `complete` of the timeline: the good
        # deployment done, or ECS's rollback done) to the tool's exit.
        "after_ecs_settled_secs": round(ended - settled[-1], 2) if settled else None,
        "api_calls_total": len(calls),
        "api_calls": dict(sorted(by_operation.items())),
        "api_errors": [c for c in calls if not str(c[2]).startswith("2")],
        # Every request: seconds since the tool started, operation, status.
        "api_call_log": calls,
        "peak_rss_kib": peak_rss_kib(time_file),
        "timeline": [(round(t - started, 2), text) for t, text in timeline.events],
        "after": state,
        "initial_task_definition": current_arn.split("/")[-1],
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("tool", "scenario", "exit_code", "message",
                                               "wall_secs", "api_calls_total", "peak_rss_kib")}))


# ------------------------------------------------------------------ idle


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return fields


def idle(args):
    import signal

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "state", ignore_errors=True)
    plugin = load_plugin()
    counter = Counter()
    server, port = start_moto(counter)
    ecs = boto_client(port)
    set_up(ecs, plugin)
    metrics_port = free_port()
    extra = (f"\n[schedule]\ninterval_secs = 1\njitter_secs = 0\n"
             f"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n")
    config = runner_updater_config(workdir, CURRENT_IMAGE, fast=False,
                                   version=CURRENT_VERSION, extra=extra)
    command = [args.runner_updater, "--config", str(config), "run"]
    stdout = open(workdir / "stdout.txt", "w")
    stderr = open(workdir / "stderr.txt", "w")
    counter.start()
    started = time.monotonic()
    env = tool_env(port, workdir)
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
    samples = []
    while time.monotonic() - started < args.secs and proc.poll() is None:
        time.sleep(1)
        status = proc_status(proc.pid)
        if status:
            samples.append({"t": round(time.monotonic() - started, 1), **status})
    alive = proc.poll() is None
    rollup = {}
    try:
        for line in Path(f"/proc/{proc.pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                rollup[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    if alive:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "killed"
    calls = counter.stop()
    server.stop()
    stdout.close()
    stderr.close()
    logs = (workdir / "stdout.txt").read_text().splitlines()
    outcomes = {}
    for line in logs:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        outcome = (entry.get("fields") or {}).get("outcome")
        if outcome:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    by_operation = {}
    for _, operation, _ in calls:
        by_operation[operation] = by_operation.get(operation, 0) + 1
    cycles = sum(outcomes.values())
    result = {
        "command": " ".join(command).replace(str(REPO) + "/", ""),
        "extra_env": args.env,
        "ran_secs": round(time.monotonic() - started, 1),
        "alive_until_stopped": alive,
        "exit_code": code,
        "cycles_logged": outcomes,
        "api_calls_total": len(calls),
        "api_calls": dict(sorted(by_operation.items())),
        "api_calls_per_cycle": round(len(calls) / cycles, 2) if cycles else None,
        "rss_kib_first": samples[0]["VmRSS"] if samples else None,
        "rss_kib_last": samples[-1]["VmRSS"] if samples else None,
        "hwm_kib_last": samples[-1]["VmHWM"] if samples else None,
        "threads": samples[-1].get("Threads") if samples else None,
        # At the end, before SIGTERM: resident KiB by kind (file-backed =
        # the binary's and libraries' pages; anonymous = heap and stacks).
        "smaps_rollup_kib": {k: rollup[k] for k in ("Rss", "Anonymous", "Shared_Clean",
                                                    "Private_Clean", "Private_Dirty")
                             if k in rollup},
        "samples": samples,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}))


# ----------------------------------------------------------------- table


def verdict_of(result):
    tool, scenario, code = result["tool"], result["scenario"], result["exit_code"]
    truth = "deployed" if scenario == "good" else "rolled back by ECS"
    if tool.startswith("runner-updater"):
        said = {0: "success", 1: "rolled back", 2: "failed"}.get(code, f"exit {code}")
    else:
        said = "success" if code == 0 else f"failure (exit {code})"
    right = (scenario == "good") == (code == 0)
    return f"{said} ({'right' if right else '**wrong**'}: {truth})"


def table(paths):
    """One row per tool and scenario: the run of median wall time (its
    verdict, message, calls, RSS and the service afterwards), with the
    range of wall times and call totals over all runs."""
    runs = {}
    for p in paths:
        r = json.loads(Path(p).read_text())
        runs.setdefault((r["tool"], r["scenario"]), []).append(r)
    order = {t: i for i, t in enumerate(TOOLS)}
    out = ["| tool | scenario | exit | verdict | its message | wall s to verdict | "
           "s after ECS settled | API calls | calls by operation | peak RSS MiB | "
           "service afterwards |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(runs, key=lambda k: (order.get(k[0], 99), k[1] != "good")):
        group = sorted(runs[key], key=lambda r: r["wall_secs"])
        r = group[len(group) // 2]
        n = len(group)
        exits = sorted({str(g["exit_code"]) for g in group})
        walls = f"{r['wall_secs']:.1f}"
        totals = sorted(g["api_calls_total"] for g in group)
        calls = str(r["api_calls_total"])
        if n > 1:
            walls += f" ({group[0]['wall_secs']:.1f}–{group[-1]['wall_secs']:.1f}, n={n})"
            if totals[0] != totals[-1]:
                calls += f" ({totals[0]}–{totals[-1]})"
        ops = ", ".join(f"{op} {c}" for op, c in r["api_calls"].items())
        after = r["after"]
        state = (f"{after['primary_image']} image, {after['primary_task_definition']} "
                 f"{after['primary_task_definition_status']}")
        rss = max((g["peak_rss_kib"] or 0) for g in group)
        message = r["message"].replace("|", "/")
        if len(message) > 200:
            message = message[:197] + "..."
        settled = r["after_ecs_settled_secs"]
        out.append(f"| {r['tool']} | {r['scenario']} | {'/'.join(exits)} | {verdict_of(r)} | "
                   f"{message} | {walls} | {settled if settled is not None else '–'} | "
                   f"{calls} | {ops} | {rss / 1024:.0f} | {state} |")
    print("\n".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--tool", required=True, choices=TOOLS)
    r.add_argument("--scenario", required=True, choices=["good", "bad"])
    r.add_argument("--out", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--ecs", default="ecs")
    r.add_argument("--aws", default="aws")
    r.add_argument("--runner-updater", default="runner-updater")
    r.add_argument("--ecs-step", type=float, default=ECS_STEP_SECS,
                   help="seconds from a new deployment to the breaker tripping or ECS "
                        "completing it (default %(default)s)")
    t = sub.add_parser("table")
    t.add_argument("results", nargs="+")
    i = sub.add_parser("idle")
    i.add_argument("--out", required=True)
    i.add_argument("--workdir", required=True)
    i.add_argument("--secs", type=float, default=120)
    i.add_argument("--runner-updater", default="runner-updater")
    i.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra environment variable for the daemon")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    elif args.command == "idle":
        idle(args)
    else:
        table(args.results)


if __name__ == "__main__":
    main()
