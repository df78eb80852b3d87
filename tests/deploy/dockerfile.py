"""A small Dockerfile parser for the deployment checks (no Docker needed).

parse(text) -> (global_args, stages): global_args maps the ARGs before the first FROM to their defaults;
each stage is a dict {name, base, line, instructions: [(line, KEYWORD, argument text)]} with continuation
lines joined and comments dropped. Only the syntax the project's Dockerfile uses is understood (no
heredocs, no parser directives other than `# syntax=`).
"""
import re


def logical_lines(text):
    """(first line number, instruction text) with backslash continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comment lines inside a continued instruction are skipped, as Docker does
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, (buf + line).strip()))
        buf = ""
    if buf:
        out.append((start, buf.strip()))
    return out


def parse(text):
    global_args, stages = {}, []
    for number, line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
            base, name = (m.group(1), m.group(2)) if m else (rest, None)
            stages.append({"name": name or str(len(stages)), "base": base, "line": number, "instructions": []})
        elif not stages:
            if keyword == "ARG":
                key, _, default = rest.partition("=")
                global_args[key.strip()] = default.strip() or None
        else:
            stages[-1]["instructions"].append((number, keyword, rest))
    return global_args, stages


def expand(value, args):
    """Substitutes ${NAME} / $NAME from args (unknown names are left as they are)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2)) or m.group(0), value)


def chain(stages, stage):
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s["name"]: s for s in stages}
    out = [stage]
    while out[-1]["base"] in by_name:
        out.append(by_name[out[-1]["base"]])
    return out


def final_stages(stages):
    """Stages no other stage builds on or copies from: the image targets."""
    used = {s["base"] for s in stages}
    for s in stages:
        for _, keyword, rest in s["instructions"]:
            m = re.search(r"--from=(\S+)", rest) if keyword == "COPY" else None
            if m:
                used.add(m.group(1))
    return [s for s in stages if s["name"] not in used]
