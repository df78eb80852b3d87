#!/usr/bin/env python3
"""The image's build context is enough to build fathom (ctest deploy_docker_context), without Docker.

  docker_context_test.py REPO_ROOT

Copies what .dockerignore lets into the context (its `!` entries) to a temporary directory, runs the
cpu build stage's cmake configure command from the Dockerfile there, and asks Ninja for a dry run of the
fathom target: a source or CMake file the Dockerfile does not COPY fails the configure or the dry run.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402


def main(root):
    ignore = open(os.path.join(root, ".dockerignore"), encoding="utf-8").read().splitlines()
    allowed = [p.strip()[1:].rstrip("/") for p in ignore if p.strip().startswith("!")]
    _, stages = dockerfile.parse(open(os.path.join(root, "Dockerfile"), encoding="utf-8").read())
    build = next(s for s in stages if s["name"] == "build-cpu")
    configure = None
    for _, keyword, rest in build["instructions"]:
        m = re.match(r"(cmake -S .*?)\s*&&", rest) if keyword == "RUN" else None
        if m:
            configure = m.group(1).split()
    if configure is None:
        print("docker_context_test: no `cmake -S ... &&` RUN in the build-cpu stage", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as ctx:
        for entry in allowed:
            src, dst = os.path.join(root, entry), os.path.join(ctx, entry)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CMAKE_")}
        r = subprocess.run(configure, cwd=ctx, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"docker_context_test: {' '.join(configure)} failed in the build context "
                  f"({', '.join(allowed)}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}", file=sys.stderr)
            return 1
        r = subprocess.run(["ninja", "-C", "build", "-n", "fathom"], cwd=ctx, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"docker_context_test: ninja -n fathom failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}", file=sys.stderr)
            return 1
    print(f"docker_context_test: the context ({', '.join(allowed)}) configures and plans the fathom target")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
