#!/usr/bin/env python3
"""Replays an image target's runtime stages of the Dockerfile in a Debian 12 chroot, without Docker, and
serves a fixture model in it as the image's user with the image's health check. A manual check (needs
root, debootstrap and a Debian mirror; not part of ctest):

  sudo tests/deploy/rootfs_replay.py REPO_ROOT FATHOM_EXECUTABLE ROOTFS [--target cpu] [--lib-dir DIR]

ROOTFS: a fresh `debootstrap --variant=minbase bookworm ROOTFS` (the stand-in for debian:12.x-slim; it is
modified). Replays the target's chain from its Debian base: COPY of repository files, RUN (chroot
/bin/sh -c), ENV and USER; `COPY --from=<build stage>` copies FATHOM_EXECUTABLE instead of building.
--lib-dir copies the libraries of DIR into /usr/local/lib (e.g. CUDA libraries for a CUDA-built
executable replayed in the cpu target; the gpu target's NVIDIA packages need NVIDIA's repository).
Then runs the target's CMD with a model directory (tests/fixtures/models/bert-mean-norm copied to
/models) as the USER, runs the HEALTHCHECK command inside the chroot, asks /ready, sends SIGTERM and
expects exit code 0. Port 8000 on this machine must be free.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402


def chroot(rootfs, cmd, env, user=None, **kw):
    spec = ["--userspec=" + user] if user else []
    return subprocess.run(["chroot", *spec, rootfs, "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
                           *cmd], **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("fathom")
    ap.add_argument("rootfs")
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--lib-dir")
    a = ap.parse_args()
    _, stages = dockerfile.parse(open(os.path.join(a.root, "Dockerfile"), encoding="utf-8").read())
    target = next(s for s in stages if s["name"] == a.target)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    user, cmd, health = None, None, None
    shutil.copy("/etc/resolv.conf", os.path.join(a.rootfs, "etc", "resolv.conf"))
    for stage in reversed(dockerfile.chain(stages, target)):
        for number, keyword, rest in stage["instructions"]:
            print(f"rootfs_replay: {stage['name']}:{number}: {keyword} {rest[:100]}", flush=True)
            if keyword == "COPY":
                parts = [p for p in rest.split() if not p.startswith("--")]
                dst = os.path.join(a.rootfs, parts[-1].lstrip("/"))
                srcs = [a.fathom] if "--from=" in rest else [os.path.join(a.root, p) for p in parts[:-1]]
                for src in srcs:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copy2(src, dst)
                if "--from=" in rest and a.lib_dir:
                    for name in os.listdir(a.lib_dir):
                        shutil.copy(os.path.join(a.lib_dir, name), os.path.join(a.rootfs, "usr/local/lib", name))
                    chroot(a.rootfs, ["ldconfig"], env, check=True)
            elif keyword == "RUN":
                chroot(a.rootfs, ["/bin/sh", "-c", rest], {**env, "DEBIAN_FRONTEND": "noninteractive"}, check=True)
            elif keyword == "ENV":
                env.update(kv.split("=", 1) for kv in rest.split())
            elif keyword == "USER":
                user = rest
            elif keyword == "CMD":
                cmd = json.loads(rest)
            elif keyword == "HEALTHCHECK":
                health = json.loads(rest[rest.index("CMD") + 3:].strip())
            elif keyword == "ENTRYPOINT":
                entry = json.loads(rest)
    model = os.path.join(a.rootfs, "models", "bert-mean-norm")
    shutil.copytree(os.path.join(a.root, "tests", "fixtures", "models", "bert-mean-norm"), model, dirs_exist_ok=True)
    chroot(a.rootfs, ["chown", "-R", user, "/models/bert-mean-norm"], env, check=True)
    env["HOME"] = "/home/fathom"
    server = subprocess.Popen(["chroot", "--userspec=" + user, a.rootfs, "/usr/bin/env", "-i",
                               *[f"{k}={v}" for k, v in env.items()], *entry, *cmd,
                               "--model", "bge=/models/bert-mean-norm"])
    failures = []
    try:
        ok = False
        for _ in range(100):
            time.sleep(0.2)
            if chroot(a.rootfs, health, env, user=user, capture_output=True).returncode == 0:
                ok = True
                break
        if not ok:
            failures.append(f"the HEALTHCHECK command {health} never succeeded")
        ready = chroot(a.rootfs, ["curl", "-s", "http://127.0.0.1:8000/ready"], env, capture_output=True, text=True)
        if '"status":"ready"' not in ready.stdout:
            failures.append(f"/ready: {ready.stdout}")
        who = subprocess.run(["ps", "-o", "uid=", "-p", str(server.pid)], capture_output=True, text=True).stdout.strip()
        if who != user.split(":")[0]:
            failures.append(f"fathom runs as uid {who}, not {user}")
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=60)
    if rc != 0:
        failures.append(f"exit code {rc} after SIGTERM")
    for f in failures:
        print(f"rootfs_replay: {f}", file=sys.stderr)
    print(f"rootfs_replay: target {a.target}: {'ok' if not failures else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
