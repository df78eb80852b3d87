#!/usr/bin/env python3
"""Checks fathom's Kubernetes manifests offline (ctest deploy_manifests).

  check_manifests.py REPO_ROOT OVERLAY_DIR...

Renders each kustomize overlay (kustomize_render.py), validates every object against the Kubernetes API
models (k8s_schema.py), then checks what ties the objects to each other and to fathom:
  - one Deployment, Service, ConfigMap, PersistentVolumeClaim, HorizontalPodAutoscaler, ServiceMonitor;
  - the Deployment's and the Service's selectors match the pod labels; the ServiceMonitor selects the Service
    and scrapes its port at /metrics;
  - the config: the container runs `serve --config F` with F inside the ConfigMap's mount and a key of the
    ConfigMap; [server] host is 0.0.0.0 and port is the container port the probes and the Service use;
  - probes: readiness GET /ready, liveness (and startup) GET /health, all routes fathom registers;
  - termination: terminationGracePeriodSeconds > preStop sleep + request_timeout_seconds + keep-alive;
  - the HPA scales this Deployment (which leaves spec.replicas to it) on a Pods metric that is a gauge fathom exports, that the
    prometheus-adapter rule serves, with a per-pod target below max_queued_requests;
  - the model cache: the PVC is the volume mounted at /models; HF_HOME lies on it;
  - GPUs: a config with cuda models asks nvidia.com/gpu for as many GPUs as its highest cuda:N needs, a
    config without them asks none;
  - the pod runs as the Dockerfile's non-root USER.
Prints every error and exits 1 when there is one. check_manifests_selftest.py breaks manifests on purpose.
"""
import os
import re
import sys
import tomllib

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_schema  # noqa: E402
import kustomize_render  # noqa: E402

KIND_COUNTS = ["Deployment", "Service", "ConfigMap", "PersistentVolumeClaim", "HorizontalPodAutoscaler",
               "ServiceMonitor"]
DEFAULT_REQUEST_TIMEOUT_S = 600   # docs/configuration.md: limits.request_timeout_seconds
DEFAULT_KEEP_ALIVE_S = 5          # server.keep_alive_timeout_seconds
DEFAULT_MAX_QUEUED = 1024         # limits.max_queued_requests


def load_context(root):
    """What the manifests are checked against: fathom's routes and gauges, the adapter rule, the image user."""
    routes, gauges = set(), set()
    server_dir = os.path.join(root, "src", "server")
    for name in os.listdir(server_dir):
        if name.endswith(".cpp"):
            text = open(os.path.join(server_dir, name), encoding="utf-8").read()
            routes |= set(re.findall(r'router\.get\("([^"]+)"', text))
            gauges |= set(re.findall(r'gauges\.push_back\(\{"(fathom_\w+)"', text))
    with open(os.path.join(root, "deploy", "kubernetes", "prometheus-adapter", "values.yaml"), encoding="utf-8") as f:
        adapter = yaml.safe_load(f)
    adapter_metrics = {}
    for rule in adapter["rules"]["custom"]:
        series = re.match(r"\s*'?(\w+)", rule["seriesQuery"]).group(1)
        adapter_metrics[rule["name"]["as"]] = series
    uid = None
    with open(os.path.join(root, "Dockerfile"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*USER\s+(\d+)", line)
            if m:
                uid = int(m.group(1))
    return {"routes": routes, "gauges": gauges, "adapter_metrics": adapter_metrics, "image_uid": uid}


def _one(objs, kind, errors):
    found = [o for o in objs if o.get("kind") == kind]
    if len(found) != 1:
        errors.append(f"expected exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def _selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _port_number(port, container):
    """A probe/Service port (number or container port name) as a number, or None."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def _sleep_seconds(container):
    cmd = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    if len(cmd) == 2 and cmd[0] == "sleep" and str(cmd[1]).isdigit():
        return int(cmd[1])
    return 0


def check_objects(objs, ctx, label="manifests"):
    errors = []
    for obj in objs:
        errors += k8s_schema.validate(obj)
    found = {kind: _one(objs, kind, errors) for kind in KIND_COUNTS}
    if any(v is None for v in found.values()):
        return [f"{label}: {e}" for e in errors]
    dep, svc, cm, pvc, hpa, mon = (found[k] for k in KIND_COUNTS)
    pod = dep["spec"]["template"]
    pod_labels = pod.get("metadata", {}).get("labels", {})
    spec = pod["spec"]
    if not _selects(dep["spec"]["selector"].get("matchLabels"), pod_labels):
        errors.append("Deployment selector does not match its pod template labels")
    if not _selects(svc["spec"].get("selector"), pod_labels):
        errors.append(f"Service selector {svc['spec'].get('selector')} does not match the pod labels {pod_labels}")
    containers = [c for c in spec["containers"] if c.get("name") == "fathom"]
    if len(containers) != 1:
        return [f"{label}: {e}" for e in errors + ["no container named fathom"]]
    c = containers[0]

    # The config file: serve --config PATH, PATH on the ConfigMap's mount.
    args = c.get("args", [])
    config = None
    if args[:1] != ["serve"] or "--config" not in args:
        errors.append(f"container args {args} do not run `serve --config FILE`")
    else:
        path = args[args.index("--config") + 1]
        cm_vols = {v["name"] for v in spec.get("volumes", []) if v.get("configMap", {}).get("name") == cm["metadata"]["name"]}
        mounts = [m for m in c.get("volumeMounts", []) if m["name"] in cm_vols]
        mount = next((m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        if mount is None:
            errors.append(f"--config {path} is not on a volume of ConfigMap {cm['metadata']['name']}")
        else:
            key = path[len(mount["mountPath"].rstrip("/")) + 1:]
            if key not in cm.get("data", {}):
                errors.append(f"ConfigMap {cm['metadata']['name']} has no key {key} (--config {path})")
            else:
                try:
                    config = tomllib.loads(cm["data"][key])
                except tomllib.TOMLDecodeError as e:
                    errors.append(f"ConfigMap key {key} is not valid TOML: {e}")
        for flag in ("--port", "--host"):
            if flag in args:
                errors.append(f"container args set {flag}; set it in the ConfigMap's [server] table only")
    if config is None:
        return [f"{label}: {e}" for e in errors]
    server = config.get("server", {})
    limits = config.get("limits", {})
    port = server.get("port", 8000)
    if server.get("host") != "0.0.0.0":
        errors.append(f"[server] host is {server.get('host', '127.0.0.1 (default)')}: probes and the Service "
                      "reach the pod IP, so fathom must listen on 0.0.0.0")
    if port not in [p.get("containerPort") for p in c.get("ports", [])]:
        errors.append(f"[server] port {port} is not a containerPort of the fathom container")

    # Probes.
    expect = {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}
    for probe, route in expect.items():
        p = c.get(probe)
        if p is None:
            if probe != "startupProbe":
                errors.append(f"no {probe}")
            continue
        get = p.get("httpGet")
        if get is None:
            errors.append(f"{probe} is not an httpGet probe")
            continue
        if get.get("path") != route:
            errors.append(f"{probe} path is {get.get('path')}, expected {route}")
        if route not in ctx["routes"]:
            errors.append(f"{probe}: fathom registers no GET {route} route")
        if _port_number(get.get("port"), c) != port:
            errors.append(f"{probe} port {get.get('port')} is not fathom's port {port}")

    # Service and ServiceMonitor.
    svc_ports = svc["spec"].get("ports", [])
    for sp in svc_ports:
        if _port_number(sp.get("targetPort", sp.get("port")), c) != port:
            errors.append(f"Service port {sp.get('name')} targets {sp.get('targetPort')}, not fathom's port {port}")
    if not _selects(mon["spec"]["selector"].get("matchLabels"), svc["metadata"].get("labels", {})):
        errors.append("ServiceMonitor selector does not match the Service's labels")
    for ep in mon["spec"]["endpoints"]:
        if ep.get("port") not in [sp.get("name") for sp in svc_ports]:
            errors.append(f"ServiceMonitor endpoint port {ep.get('port')} is not a named port of the Service")
        if ep.get("path", "/metrics") != "/metrics" or "/metrics" not in ctx["routes"]:
            errors.append(f"ServiceMonitor scrapes {ep.get('path')}, fathom serves /metrics")

    # Termination: the grace period covers the preStop sleep and fathom's drain.
    grace = spec.get("terminationGracePeriodSeconds", 30)
    drain = limits.get("request_timeout_seconds", DEFAULT_REQUEST_TIMEOUT_S) + \
        server.get("keep_alive_timeout_seconds", DEFAULT_KEEP_ALIVE_S)
    sleep = _sleep_seconds(c)
    if sleep == 0:
        errors.append("no preStop `sleep N`: fathom would stop accepting before the endpoints update")
    if grace <= sleep + drain:
        errors.append(f"terminationGracePeriodSeconds {grace} <= preStop sleep {sleep} + drain {drain} "
                      "(request_timeout_seconds + keep-alive timeout)")

    # Autoscaling.
    if "replicas" in dep["spec"]:
        errors.append("Deployment sets spec.replicas while the HPA scales it: every apply would reset the count")
    ref = hpa["spec"]["scaleTargetRef"]
    if (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) != ("apps/v1", "Deployment", dep["metadata"]["name"]):
        errors.append(f"HPA scaleTargetRef {ref} is not Deployment {dep['metadata']['name']}")
    for m in hpa["spec"].get("metrics", []):
        if m.get("type") != "Pods":
            errors.append(f"HPA metric of type {m.get('type')}: scale on a fathom gauge (type Pods)")
            continue
        name = m["pods"]["metric"]["name"]
        series = ctx["adapter_metrics"].get(name)
        if series is None:
            errors.append(f"HPA metric {name} is not served by the prometheus-adapter rules")
        elif series not in ctx["gauges"]:
            errors.append(f"HPA metric {name} reads {series}, which is not a gauge fathom exports")
        target = m["pods"]["target"]
        value = float(str(target.get("averageValue", "0")).rstrip("m") or 0)
        if target.get("type") != "AverageValue" or value <= 0:
            errors.append(f"HPA target for {name} must be a positive AverageValue")
        elif series == "fathom_queue_depth" and value >= limits.get("max_queued_requests", DEFAULT_MAX_QUEUED):
            errors.append(f"HPA target {value} inputs per pod is not below max_queued_requests: pods would "
                          "answer 429 before a replica is added")

    # Model cache.
    claim = pvc["metadata"]["name"]
    vols = {v["name"] for v in spec.get("volumes", []) if v.get("persistentVolumeClaim", {}).get("claimName") == claim}
    cache = [m for m in c.get("volumeMounts", []) if m["name"] in vols]
    if [m["mountPath"] for m in cache] != ["/models"]:
        errors.append(f"PVC {claim} is not mounted at /models (the image's model-cache volume)")
    for env in c.get("env", []):
        if env["name"] in ("HF_HOME", "HF_HUB_CACHE") and not str(env.get("value", "")).startswith("/models/"):
            errors.append(f"{env['name']}={env.get('value')} is not on the model cache /models")

    # GPUs.
    devices = [config.get("defaults", {}).get("device", "cpu")]
    devices += [mdl.get("device", devices[0]) for mdl in config.get("models", [])]
    cuda = [d for d in devices if d.startswith("cuda")]
    needed = max((int(d.split(":")[1]) + 1 if ":" in d else 1) for d in cuda) if cuda else 0
    res = c.get("resources", {})
    gpus = int(res.get("limits", {}).get("nvidia.com/gpu", 0))
    if needed and gpus < needed:
        errors.append(f"config runs models on {sorted(set(cuda))} but the pod limits nvidia.com/gpu to {gpus}")
    if not needed and gpus:
        errors.append(f"pod asks {gpus} nvidia.com/gpu but its config runs no model on cuda")
    if "nvidia.com/gpu" in res.get("requests", {}) and int(res["requests"]["nvidia.com/gpu"]) != gpus:
        errors.append("nvidia.com/gpu requests differ from limits")

    # User: the image's non-root uid.
    sec = spec.get("securityContext", {})
    if sec.get("runAsNonRoot") is not True:
        errors.append("pod securityContext.runAsNonRoot is not true")
    if ctx["image_uid"] is not None and sec.get("runAsUser") != ctx["image_uid"]:
        errors.append(f"runAsUser {sec.get('runAsUser')} is not the image's USER {ctx['image_uid']}")
    return [f"{label}: {e}" for e in errors]


def check_overlay(directory, ctx):
    try:
        objs = kustomize_render.render(directory)
    except (kustomize_render.RenderError, OSError, yaml.YAMLError) as e:
        return [f"{directory}: {e}"]
    return check_objects(objs, ctx, os.path.relpath(directory))


def main(argv):
    root, overlays = argv[1], argv[2:]
    ctx = load_context(root)
    errors = []
    for d in overlays:
        errors += check_overlay(d, ctx)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"check_manifests: {len(overlays)} overlays, {len(errors)} errors")
    return 1 if errors or not overlays else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
