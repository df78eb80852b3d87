"""Offline renderer for the subset of kustomize that deploy/kubernetes uses (no kustomize binary needed).

render(dir) -> list of objects (dicts), like `kubectl kustomize dir`, for kustomization.yaml files made of:
  resources          files (multi-document YAML) and directories holding a kustomization.yaml
  configMapGenerator name + files (+ behavior create | replace | merge); names get kustomize's content hash
                     suffix at the outermost level, and Deployment references to them are renamed
  patches            {path: FILE}: strategic-merge patches matched by kind + metadata.name
  images             name + newName / newTag / digest, applied to (init)containers of pod templates
Any other kustomization key is an error (RenderError), so an unsupported feature never renders silently
wrong. The hash follows kustomize's (sha256 of the JSON {"data","kind","name"}, first 10 hex digits with
0,1,3,a,e mapped to g,h,k,m,t); the checks do not depend on it matching kustomize byte for byte.
"""
import copy
import hashlib
import json
import os

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "configMapGenerator", "patches", "images"}
# Strategic-merge keys of the list fields the manifests patch (Kubernetes' patchMergeKey); other lists
# are replaced by the patch's list, as Kubernetes does for lists without a merge key.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
              "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name"}


class RenderError(Exception):
    pass


def _load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def strategic_merge(base, patch):
    """Returns base with patch merged: maps recursively, None deletes a key, MERGE_KEYS lists by key."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
            merge_key = MERGE_KEYS[key]
            merged = out[key]
            for item in value:
                match = next((i for i, b in enumerate(merged) if b.get(merge_key) == item.get(merge_key)), None)
                if match is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[match] = strategic_merge(merged[match], item)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = strategic_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def configmap_hash(cm):
    """kustomize's name suffix for a generated ConfigMap."""
    encoded = json.dumps({"data": cm.get("data", {}), "kind": "ConfigMap", "name": cm["metadata"]["name"]},
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _pod_specs(obj):
    spec = obj.get("spec", {})
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        yield spec.get("template", {}).get("spec", {})
    elif obj.get("kind") == "Pod":
        yield spec


def _rename_configmap_refs(objs, old, new):
    for obj in objs:
        for pod in _pod_specs(obj):
            for vol in pod.get("volumes", []) or []:
                if vol.get("configMap", {}).get("name") == old:
                    vol["configMap"]["name"] = new
            for c in (pod.get("containers", []) or []) + (pod.get("initContainers", []) or []):
                for src in c.get("envFrom", []) or []:
                    if src.get("configMapRef", {}).get("name") == old:
                        src["configMapRef"]["name"] = new
                for env in c.get("env", []) or []:
                    ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                    if ref and ref.get("name") == old:
                        ref["name"] = new


def _apply_images(objs, images):
    for img in images:
        for obj in objs:
            for pod in _pod_specs(obj):
                for c in (pod.get("containers", []) or []) + (pod.get("initContainers", []) or []):
                    ref = c.get("image", "")
                    name = ref.split("@")[0]
                    if ":" in name.rsplit("/", 1)[-1]:
                        name = name.rsplit(":", 1)[0]
                    if name != img["name"]:
                        continue
                    new = img.get("newName", name)
                    if "digest" in img:
                        new += "@" + img["digest"]
                    elif "newTag" in img:
                        new += ":" + str(img["newTag"])
                    c["image"] = new


def _render(directory, generated):
    kfile = os.path.join(directory, "kustomization.yaml")
    if not os.path.isfile(kfile):
        raise RenderError(f"{directory}: no kustomization.yaml")
    (k,) = _load_yaml_docs(kfile)
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{kfile}: unsupported kustomization keys {sorted(unknown)}")
    objs = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(path):
            objs += _render(path, generated)
        elif os.path.isfile(path):
            objs += _load_yaml_docs(path)
        else:
            raise RenderError(f"{kfile}: resource {res} does not exist")
    for gen in k.get("configMapGenerator", []):
        data = {}
        for f in gen.get("files", []):
            key, rel = f.split("=", 1) if "=" in f else (os.path.basename(f), f)
            with open(os.path.join(directory, rel), encoding="utf-8") as fh:
                data[key] = fh.read()
        behavior = gen.get("behavior", "create")
        existing = next((o for o in objs if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == gen["name"]), None)
        if behavior == "create":
            if existing is not None:
                raise RenderError(f"{kfile}: ConfigMap {gen['name']} exists already (use behavior: replace)")
            objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
            generated.add(gen["name"])
        elif behavior in ("replace", "merge"):
            if existing is None:
                raise RenderError(f"{kfile}: ConfigMap {gen['name']} to {behavior} does not exist")
            existing["data"] = data if behavior == "replace" else {**existing.get("data", {}), **data}
        else:
            raise RenderError(f"{kfile}: unknown configMapGenerator behavior {behavior}")
    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise RenderError(f"{kfile}: only patches of the form {{path: FILE}} are supported")
        for patch in _load_yaml_docs(os.path.join(directory, p["path"])):
            key = (patch.get("kind"), patch.get("metadata", {}).get("name"))
            idx = next((i for i, o in enumerate(objs) if (o.get("kind"), o["metadata"].get("name")) == key), None)
            if idx is None:
                raise RenderError(f"{kfile}: patch {p['path']} matches no {key[0]} named {key[1]}")
            objs[idx] = strategic_merge(objs[idx], patch)
    _apply_images(objs, k.get("images", []))
    return objs


def render(directory):
    generated = set()
    objs = _render(directory, generated)
    for obj in objs:
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] in generated:
            old = obj["metadata"]["name"]
            new = f"{old}-{configmap_hash(obj)}"
            obj["metadata"]["name"] = new
            _rename_configmap_refs(objs, old, new)
    return objs


if __name__ == "__main__":
    import sys
    print(yaml.safe_dump_all(render(sys.argv[1]), sort_keys=False), end="")
