#!/usr/bin/env python3
"""The container runtime stages install every shared library fathom links (ctest deploy_runtime_libs),
checked without building the image.

  check_runtime_libs.py REPO_ROOT FATHOM_EXECUTABLE

For each image target of the Dockerfile, finds the `install-deps.sh --runtime ...` call of its runtime
stage and asks the script for that package list (--print). For each library the executable needs directly
(readelf -d: NEEDED; its dependencies come with its package), finds the Debian package owning the file
the dynamic loader resolves (ldd, then dpkg -S), and fails when that package is not in the target's list.
CUDA libraries (not Debian packages) must map to a package of NVIDIA's repository in the gpu target's
list, and are not needed by the cpu target (built with FATHOM_WITH_CUDA=OFF; its other libraries are the
CUDA build's minus CUDA). Sanitizer runtimes (libasan, libubsan, ...) of an instrumented build are
ignored. A library no package owns is an error. Finally it shows the check can fail: the
same check with one owning package left out, and with an unknown library added, must report errors.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402

# CUDA 13 libraries and the NVIDIA Debian 12 packages providing them (install-deps.sh cuda_runtime_pkgs).
CUDA_LIBS = {"libcudart.so.13": "cuda-cudart-13-0", "libcublasLt.so.13": "libcublas-13-0",
             "libcublas.so.13": "libcublas-13-0"}


# Sanitizer runtimes (a gcc ASan/UBSan build links them dynamically): not part of a shipped executable.
SANITIZER_LIBS = re.compile(r"^lib(asan|ubsan|tsan|lsan|hwasan)\.so")


def needed_libraries(exe):
    out = subprocess.run(["readelf", "-d", exe], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def resolved_paths(exe):
    out = subprocess.run(["ldd", exe], check=True, capture_output=True, text=True).stdout
    paths = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            name = os.path.basename(m.group(1))
            paths[name] = m.group(2) if m.lastindex == 2 else m.group(1)
    return paths


def owning_package(path):
    """The Debian package owning path (usrmerge: tries /lib and /usr/lib spellings and the real path)."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/") or p.startswith("/usr/lib64/"):
            candidates.append(p[4:])
        elif p.startswith("/lib/") or p.startswith("/lib64/"):
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None


def target_package_lists(root):
    """{target: [packages]} from each image target's `install-deps.sh --runtime` call."""
    _, stages = dockerfile.parse(open(os.path.join(root, "Dockerfile"), encoding="utf-8").read())
    lists = {}
    for final in dockerfile.final_stages(stages):
        for stage in dockerfile.chain(stages, final):
            for _, keyword, rest in stage["instructions"]:
                m = re.search(r"install-deps\.sh((?:\s+--[\w-]+)+)", rest) if keyword == "RUN" else None
                if m and "--runtime" in m.group(1).split():
                    out = subprocess.run(["bash", os.path.join(root, "scripts", "install-deps.sh"),
                                          *m.group(1).split(), "--print"],
                                         check=True, capture_output=True, text=True).stdout
                    lists[final["name"]] = out.split()
    return lists


def check(libs, lists):
    """libs: {soname: owning package or None}; lists: {target: packages}. Returns errors."""
    errors = []
    for target, pkgs in sorted(lists.items()):
        cuda_target = any(p in pkgs for p in CUDA_LIBS.values())
        for soname, pkg in sorted(libs.items()):
            if soname in CUDA_LIBS:
                if cuda_target and CUDA_LIBS[soname] not in pkgs:
                    errors.append(f"{target}: fathom links {soname} but the image installs no {CUDA_LIBS[soname]}")
            elif pkg is None:
                errors.append(f"{target}: fathom links {soname}, which no Debian package owns here")
            elif pkg not in pkgs:
                errors.append(f"{target}: fathom links {soname} from package {pkg}, which "
                              f"`install-deps.sh --runtime` does not install")
    if not any(any(p in pkgs for p in CUDA_LIBS.values()) for pkgs in lists.values()):
        errors.append("no image target installs the CUDA runtime libraries")
    return errors


def main(root, exe):
    lists = target_package_lists(root)
    if set(lists) != {"cpu", "gpu"}:
        print(f"check_runtime_libs: expected the cpu and gpu targets to run install-deps.sh --runtime, "
              f"found {sorted(lists)}", file=sys.stderr)
        return 1
    paths = resolved_paths(exe)
    libs = {}
    for soname in needed_libraries(exe):
        if SANITIZER_LIBS.match(soname):
            print(f"check_runtime_libs: {soname} ignored (a sanitizer runtime: an instrumented build)")
            continue
        libs[soname] = None if soname in CUDA_LIBS else owning_package(paths.get(soname, soname))
    errors = check(libs, lists)
    for e in errors:
        print(e, file=sys.stderr)
    # The check can fail: drop an owning package from the lists, or link a library nobody owns.
    owned = sorted({p for p in libs.values() if p})
    if owned:
        drop = owned[0]
        broken = {t: [p for p in pkgs if p != drop] for t, pkgs in lists.items()}
        if not check(libs, broken):
            errors.append(f"self-check: leaving out {drop} was not reported")
    if not check({**libs, "libnot-a-package.so.1": None}, lists):
        errors.append("self-check: a library no package owns was not reported")
    print(f"check_runtime_libs: {len(libs)} libraries of {exe} against {sorted(lists)}: {len(errors)} errors")
    for soname, pkg in sorted(libs.items()):
        print(f"  {soname}: {pkg or CUDA_LIBS.get(soname, '?')}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
