#!/usr/bin/env python3
"""The manifest checker can fail (ctest deploy_manifests_selftest).

  check_manifests_selftest.py REPO_ROOT

Renders the real overlays, checks they pass, then breaks one thing at a time and expects check_objects()
to report it (an error containing the expected words). Also feeds the renderer a kustomization with an
unsupported key. Exits 1 when a broken manifest passes or the real ones fail.
"""
import copy
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_manifests  # noqa: E402
import kustomize_render  # noqa: E402


def _kind(objs, kind):
    return next(o for o in objs if o["kind"] == kind)


def _pod(objs):
    return _kind(objs, "Deployment")["spec"]["template"]["spec"]


def _container(objs):
    return _pod(objs)["containers"][0]


def _toml(objs, edit):
    cm = _kind(objs, "ConfigMap")
    cm["data"]["fathom.toml"] = edit(cm["data"]["fathom.toml"])


def _hpa_metric(objs):
    return _kind(objs, "HorizontalPodAutoscaler")["spec"]["metrics"][0]["pods"]


# (overlay, what breaks, expected words in an error, mutation)
CASES = [
    ("cpu", "typo in a container field", "unknown field 'livenesProbe'",
     lambda o: _container(o).update(livenesProbe=_container(o).pop("livenessProbe"))),
    ("cpu", "string containerPort", "expected an integer",
     lambda o: _container(o)["ports"][0].update(containerPort="8000")),
    ("cpu", "container without a name", "must not be `None`",
     lambda o: _container(o).update(name=None) or _container(o).pop("name")),
    ("cpu", "Service selector mismatch", "Service selector",
     lambda o: _kind(o, "Service")["spec"]["selector"].update({"app.kubernetes.io/name": "fathom-typo"})),
    ("cpu", "readiness on /health", "readinessProbe path is /health",
     lambda o: _container(o)["readinessProbe"]["httpGet"].update(path="/health")),
    ("cpu", "liveness on a wrong port", "livenessProbe port 8080",
     lambda o: _container(o)["livenessProbe"]["httpGet"].update(port=8080)),
    ("cpu", "config port differs from the container port", "is not a containerPort",
     lambda o: _toml(o, lambda t: t.replace("port = 8000", "port = 9000"))),
    ("cpu", "fathom on loopback", "must listen on 0.0.0.0",
     lambda o: _toml(o, lambda t: t.replace('host = "0.0.0.0"', 'host = "127.0.0.1"'))),
    ("cpu", "grace period shorter than the drain", "terminationGracePeriodSeconds 30",
     lambda o: _pod(o).update(terminationGracePeriodSeconds=30)),
    ("cpu", "drain longer than the grace period", "drain 605",
     lambda o: _toml(o, lambda t: t.replace("request_timeout_seconds = 60", "request_timeout_seconds = 600"))),
    ("cpu", "no preStop sleep", "no preStop",
     lambda o: _container(o).pop("lifecycle")),
    ("cpu", "HPA targets another Deployment", "scaleTargetRef",
     lambda o: _kind(o, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="other")),
    ("cpu", "replicas fixed under an HPA", "sets spec.replicas",
     lambda o: _kind(o, "Deployment")["spec"].update(replicas=2)),
    ("cpu", "HPA on a metric fathom does not export", "not served by the prometheus-adapter",
     lambda o: _hpa_metric(o)["metric"].update(name="fathom_queue_length")),
    ("cpu", "HPA target above the 429 limit", "not below max_queued_requests",
     lambda o: _hpa_metric(o)["target"].update(averageValue="2048")),
    ("cpu", "ServiceMonitor on an unnamed port", "ServiceMonitor endpoint port",
     lambda o: _kind(o, "ServiceMonitor")["spec"]["endpoints"][0].update(port="metrics")),
    ("cpu", "ServiceMonitor schema", "Additional properties",
     lambda o: _kind(o, "ServiceMonitor")["spec"]["endpoints"][0].update(intervall="15s")),
    ("cpu", "model cache not mounted", "not mounted at /models",
     lambda o: _container(o)["volumeMounts"][1].update(mountPath="/cache")),
    ("cpu", "config path off the ConfigMap", "is not on a volume",
     lambda o: _container(o).update(args=["serve", "--config", "/etc/other/fathom.toml"])),
    ("cpu", "pod as another user", "runAsUser 0",
     lambda o: _pod(o)["securityContext"].update(runAsUser=0)),
    ("cpu", "cuda models without a GPU", "limits nvidia.com/gpu to 0",
     lambda o: _toml(o, lambda t: t.replace('device = "cpu"', 'device = "cuda:1"'))),
    ("gpu", "GPU overlay without its GPU", "limits nvidia.com/gpu to 0",
     lambda o: _container(o)["resources"]["limits"].pop("nvidia.com/gpu")),
    ("gpu", "a GPU for a CPU config", "runs no model on cuda",
     lambda o: _toml(o, lambda t: t.replace('device = "cuda"', 'device = "cpu"'))),
]


def main(root):
    ctx = check_manifests.load_context(root)
    overlays = {name: os.path.join(root, "deploy", "kubernetes", "overlays", name) for name in ("cpu", "gpu")}
    rendered = {name: kustomize_render.render(path) for name, path in overlays.items()}
    failures = []
    for name, objs in rendered.items():
        errors = check_manifests.check_objects(objs, ctx, name)
        if errors:
            failures.append(f"the real {name} overlay fails: {errors}")
    for overlay, what, expected, mutate in CASES:
        objs = copy.deepcopy(rendered[overlay])
        mutate(objs)
        errors = check_manifests.check_objects(objs, ctx, overlay)
        if not any(expected in e for e in errors):
            failures.append(f"{overlay}: {what}: expected an error with '{expected}', got {errors}")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kustomization.yaml"), "w") as f:
            f.write("resources: []\nnamePrefix: x-\n")
        try:
            kustomize_render.render(tmp)
            failures.append("the renderer accepted an unsupported kustomization key (namePrefix)")
        except kustomize_render.RenderError:
            pass
    for f in failures:
        print(f, file=sys.stderr)
    print(f"check_manifests_selftest: {len(CASES)} broken manifests, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
