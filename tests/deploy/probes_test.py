#!/usr/bin/env python3
"""The Deployment's probes and autoscaling metric against the real fathom (ctest e2e_deploy_probes).

  probes_test.py REPO_ROOT FATHOM_EXECUTABLE OVERLAY_DIR

Renders the overlay, takes its ConfigMap's fathom.toml with each model `path` replaced by the
bert-mean-norm fixture and the port by 0 (any free port; everything else as deployed, host 0.0.0.0
included), and runs `fathom serve --config` on it. Then, as the kubelet would:
  - every httpGet probe of the fathom container (startup, liveness, readiness) answers 200;
  - /metrics has the HorizontalPodAutoscaler's metric for the configured model, and the model embeds;
  - SIGTERM ends the server with exit code 0 within terminationGracePeriodSeconds - the preStop sleep;
and with a second model whose directory is broken: readiness answers 503 naming it while liveness stays
200 (a degraded pod leaves the Service but is not restarted).
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kustomize_render  # noqa: E402


def get(url, body=None):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start(fathom, toml_text, work, tag):
    cfg = os.path.join(work, f"{tag}.toml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(toml_text)
    log = open(os.path.join(work, f"{tag}.log"), "w+", encoding="utf-8")
    proc = subprocess.Popen([fathom, "serve", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on http://[0-9.]+:(\d+)", log.read())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}", log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log.seek(0)
    proc.kill()
    raise SystemExit(f"probes_test: fathom did not listen ({tag}):\n{log.read()[-3000:]}")


def main(root, fathom, overlay):
    objs = kustomize_render.render(overlay)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    hpa = next(o for o in objs if o["kind"] == "HorizontalPodAutoscaler")
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "fathom")
    fixture = os.path.join(os.path.abspath(root), "tests", "fixtures", "models", "bert-mean-norm")
    toml_text = re.sub(r'(?m)^path = ".*"$', f'path = "{fixture}"', cm["data"]["fathom.toml"])
    toml_text = re.sub(r"(?m)^port = \d+$", "port = 0", toml_text)
    model = re.search(r'(?m)^name = "(.*)"$', toml_text).group(1)
    probes = {p: c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in c}
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    budget = pod["terminationGracePeriodSeconds"] - sleep
    failures = []
    with tempfile.TemporaryDirectory() as work:
        proc, url, log = start(fathom, toml_text, work, "deployed")
        try:
            for probe, path in probes.items():
                status, body = get(url + path)
                if status != 200:
                    failures.append(f"{probe} GET {path} answered {status}: {body}")
            status, body = get(url + "/metrics")
            if not re.search(rf'(?m)^{metric}\{{model="{re.escape(model)}"\}} ', body):
                failures.append(f"/metrics has no {metric}{{model=\"{model}\"}} (the HPA's metric)")
            status, body = get(url + "/v1/embeddings", json.dumps({"model": model, "input": "hello"}).encode())
            if status != 200 or '"embedding"' not in body:
                failures.append(f"embeddings for {model} answered {status}: {body[:300]}")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=budget)
                if rc != 0:
                    failures.append(f"exit code {rc} after SIGTERM")
                print(f"probes_test: SIGTERM to exit in {time.monotonic() - t0:.2f} s (budget {budget} s)")
            except subprocess.TimeoutExpired:
                failures.append(f"fathom did not exit within {budget} s of SIGTERM")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        broken_dir = os.path.join(work, "broken")
        os.makedirs(broken_dir)
        with open(os.path.join(broken_dir, "config.json"), "w") as f:
            f.write('{"architectures": ["BertModel"], "model_type": "bert"}')
        degraded = toml_text + f'\n[[models]]\nname = "broken"\npath = "{broken_dir}"\n'
        proc, url, log = start(fathom, degraded, work, "degraded")
        try:
            status, body = get(url + probes["readinessProbe"])
            if status != 503 or "broken" not in body:
                failures.append(f"readiness with a broken model answered {status}: {body[:300]}")
            status, body = get(url + probes["livenessProbe"])
            if status != 200:
                failures.append(f"liveness with a broken model answered {status}: {body[:300]}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for f in failures:
        print(f"probes_test: {f}", file=sys.stderr)
    print(f"probes_test: {len(probes)} probes, metric {metric}, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
