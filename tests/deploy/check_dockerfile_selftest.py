#!/usr/bin/env python3
"""The Dockerfile linter can fail (ctest deploy_dockerfile_lint_selftest).

  check_dockerfile_selftest.py REPO_ROOT

Checks that the real Dockerfile and .dockerignore pass, then applies one textual break at a time and
expects check_dockerfile.check() to report it. Exits 1 when a broken file passes or the real one fails.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_dockerfile  # noqa: E402

# (what breaks, old text, new text, expected words in an error); each old text must occur in the files.
DOCKERFILE_CASES = [
    ("unpinned base", "ARG DEBIAN_IMAGE=debian:12.11-slim", "ARG DEBIAN_IMAGE=debian:12-slim", "is not pinned"),
    ("latest base", "ARG DEBIAN_IMAGE=debian:12.11-slim", "ARG DEBIAN_IMAGE=debian:latest", "is not pinned"),
    ("root user", "USER 10001:10001\nENTRYPOINT", "USER root\nENTRYPOINT", "runs as root"),
    ("no user", "USER 10001:10001\nENTRYPOINT", "ENTRYPOINT", "runs as root"),
    ("no health check", "HEALTHCHECK --interval", "LABEL x=y --interval", "no HEALTHCHECK"),
    ("health check on another port", "\"http://127.0.0.1:8000/health\"", "\"http://127.0.0.1:9000/health\"", "HEALTHCHECK port 9000"),
    ("apt lists kept", "--build-only && rm -rf /var/lib/apt/lists/*", "--build-only", "rm -rf /var/lib/apt/lists"),
    ("apt-get with recommends", "RUN scripts/install-deps.sh --build-only &&",
     "RUN apt-get update && apt-get install -y git && scripts/install-deps.sh --build-only &&", "--no-install-recommends"),
    ("whole context", "COPY src src", "COPY . .", "copies the whole context"),
    ("ADD", "COPY src src", "ADD src src", "ADD; use COPY"),
    ("missing source", "COPY src src", "COPY sources sources", "no such file"),
    ("no cache volume", 'VOLUME ["/models"]', 'VOLUME ["/data"]', "no VOLUME /models"),
    ("HF_HOME off the volume", "ENV HF_HOME=/models/hf", "ENV HF_HOME=/home/fathom/.cache", "HF_HOME"),
    ("targets drift", 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]\n',
     'CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--log-level", "debug"]\n', "differ beyond"),
    ("runtime libraries by hand", "/tmp/install-deps.sh --runtime &&", "/tmp/install-deps.sh --build-only &&",
     "install-deps.sh --runtime"),
]
IGNORE_CASES = [
    ("context not excluded", "*\n!CMakeLists.txt", "!CMakeLists.txt", "does not start with `*`"),
    ("a COPY source excluded", "!src/\n", "", "does not let in src"),
    ("an unused allowance", "!src/\n", "!src/\n!tests/\n", "lets in tests"),
]


def main(root):
    text = open(os.path.join(root, "Dockerfile"), encoding="utf-8").read()
    ignore = open(os.path.join(root, ".dockerignore"), encoding="utf-8").read()
    failures = []
    real = check_dockerfile.check(text, ignore, root)
    if real:
        failures.append(f"the real Dockerfile fails: {real}")
    cases = [(w, o, n, e, True) for w, o, n, e in DOCKERFILE_CASES] + [(w, o, n, e, False) for w, o, n, e in IGNORE_CASES]
    for what, old, new, expected, in_dockerfile in cases:
        source = text if in_dockerfile else ignore
        if old not in source:
            failures.append(f"{what}: the text to break is not in the file: {old!r}")
            continue
        broken = source.replace(old, new, 1)  # the first occurrence: one target breaks
        errors = check_dockerfile.check(broken, ignore, root) if in_dockerfile else check_dockerfile.check(text, broken, root)
        if not any(expected in e for e in errors):
            failures.append(f"{what}: expected an error with '{expected}', got {errors}")
    for f in failures:
        print(f, file=sys.stderr)
    print(f"check_dockerfile_selftest: {len(cases)} broken files, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
