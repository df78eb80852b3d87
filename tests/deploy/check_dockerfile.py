#!/usr/bin/env python3
"""Lints fathom's Dockerfile and .dockerignore offline (ctest deploy_dockerfile_lint). Debian 12 packages
no Dockerfile linter (no hadolint), so this enforces the rules the project cares about:

  - base images are pinned: a point-release tag (debian:12.11-slim) or a digest; never `latest` or no tag;
  - every image target (a stage nothing else builds on) runs as a non-root USER, has a HEALTHCHECK that
    asks /health on the port it EXPOSEs and its CMD serves (--port), an ENTRYPOINT, HF_HOME under the
    VOLUME /models, and its runtime libraries from `install-deps.sh --runtime`;
  - the image targets' own instructions are identical apart from the stage they copy fathom from;
  - apt: every RUN that installs packages (apt-get install or install-deps.sh) also removes
    /var/lib/apt/lists/*; apt-get install uses --no-install-recommends; no apt-get upgrade;
  - build context: no ADD, no `COPY .`; every COPY source exists, and .dockerignore excludes everything
    (`*`) except exactly the COPY sources.

  check_dockerfile.py REPO_ROOT [DOCKERFILE [DOCKERIGNORE]]   prints each error, exits 1 on any
check_dockerfile_selftest.py feeds it broken Dockerfiles.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402



def _pinned(image):
    tag = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return re.search(r"@sha256:[0-9a-f]{64}$", image) is not None
    if ":" not in tag:
        return False
    version = tag.split(":", 1)[1]
    return version != "latest" and re.search(r"\d+\.\d+", version) is not None


def _copy_sources(rest):
    """Source paths of a COPY (flags and the destination dropped; JSON form supported)."""
    parts = [p for p in rest.split() if not p.startswith("--")]
    if rest.lstrip().startswith("["):
        parts = re.findall(r'"([^"]*)"', rest)
    return parts[:-1]


def check(text, ignore_text, root):
    errors = []
    args, stages = dockerfile.parse(text)
    if not stages:
        return ["no FROM"]
    names = {s["name"] for s in stages}
    for s in stages:
        if s["base"] in names:
            continue
        image = dockerfile.expand(s["base"], args)
        if "$" in image:
            errors.append(f"line {s['line']}: FROM {s['base']}: an ARG without a default")
        elif not _pinned(image):
            errors.append(f"line {s['line']}: FROM {image} is not pinned (use a point-release tag or a digest)")

    copied = set()
    for s in stages:
        for number, keyword, rest in s["instructions"]:
            where = f"line {number}"
            if keyword == "ADD":
                errors.append(f"{where}: ADD; use COPY")
            if keyword == "COPY" and "--from=" not in rest:
                for src in _copy_sources(rest):
                    if src in (".", "./", "*"):
                        errors.append(f"{where}: COPY {src} copies the whole context; copy what the build needs")
                    elif not os.path.exists(os.path.join(root, src)):
                        errors.append(f"{where}: COPY {src}: no such file in the repository")
                    copied.add(src.rstrip("/"))
            if keyword == "RUN":
                installs = re.search(r"apt-get\s+(-\S+\s+)*install", rest) or \
                    (re.search(r"install-deps\.sh", rest) and "--print" not in rest)
                if installs and "rm -rf /var/lib/apt/lists/*" not in rest:
                    errors.append(f"{where}: installs packages without `rm -rf /var/lib/apt/lists/*` in the same RUN")
                if re.search(r"apt-get\s+(-\S+\s+)*install", rest) and "--no-install-recommends" not in rest:
                    errors.append(f"{where}: apt-get install without --no-install-recommends")
                if re.search(r"apt-get\s+(-\S+\s+)*(dist-)?upgrade", rest):
                    errors.append(f"{where}: apt-get upgrade (pin the base image instead)")

    finals = dockerfile.final_stages(stages)
    tails = {}
    for s in finals:
        label = f"target {s['name']}"
        found = {}
        for st in dockerfile.chain(stages, s):  # nearest stage first: its instructions win
            for number, keyword, rest in reversed(st["instructions"]):
                found.setdefault(keyword, rest)
                if keyword == "RUN" and re.search(r"install-deps\.sh\s.*--runtime", rest):
                    found.setdefault("RUNTIME", rest)
                if keyword == "ENV":
                    for k, v in re.findall(r"(\w+)=(\S+)", rest):
                        found.setdefault("ENV " + k, v)
        user = found.get("USER", "")
        if not user or user.split(":")[0] in ("root", "0"):
            errors.append(f"{label}: runs as root (add a non-root USER)")
        health = found.get("HEALTHCHECK", "")
        m = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)/health\b", health)
        if not m:
            errors.append(f"{label}: no HEALTHCHECK asking http://127.0.0.1:PORT/health")
        expose = found.get("EXPOSE", "").split("/")[0]
        cmd_port = re.search(r'"--port",\s*"(\d+)"', found.get("CMD", ""))
        if m and (m.group(1) != expose or not cmd_port or cmd_port.group(1) != expose):
            errors.append(f"{label}: HEALTHCHECK port {m.group(1)}, EXPOSE {expose} and CMD --port "
                          f"{cmd_port.group(1) if cmd_port else '(none)'} differ")
        if "ENTRYPOINT" not in found:
            errors.append(f"{label}: no ENTRYPOINT")
        if "/models" not in found.get("VOLUME", ""):
            errors.append(f"{label}: no VOLUME /models (the model cache)")
        if not found.get("ENV HF_HOME", "").startswith("/models/"):
            errors.append(f"{label}: HF_HOME is not under the /models volume")
        if "RUNTIME" not in found:
            errors.append(f"{label}: runtime libraries not installed by `install-deps.sh --runtime`")
        tails[s["name"]] = [(k, re.sub(r"--from=\S+", "--from=BUILD", r)) for _, k, r in s["instructions"]]
    if len({tuple(t) for t in tails.values()}) > 1:
        errors.append(f"the image targets {sorted(tails)} differ beyond the stage they copy from")

    patterns = [p.strip() for p in ignore_text.splitlines() if p.strip() and not p.strip().startswith("#")]
    if not patterns or patterns[0] != "*":
        errors.append(".dockerignore does not start with `*` (exclude everything, then let in what COPY needs)")
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for src in sorted(copied - allowed):
        errors.append(f".dockerignore does not let in {src}, which a COPY needs")
    for extra in sorted(allowed - copied):
        errors.append(f".dockerignore lets in {extra}, which no COPY uses")
    return errors


def main(argv):
    root = argv[1]
    path = argv[2] if len(argv) > 2 else os.path.join(root, "Dockerfile")
    ignore = argv[3] if len(argv) > 3 else os.path.join(root, ".dockerignore")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(ignore, encoding="utf-8") as f:
        ignore_text = f.read()
    errors = check(text, ignore_text, root)
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    print(f"check_dockerfile: {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
