"""Offline validation of Kubernetes objects against the API models of python3-kubernetes (Debian 12).

validate(obj) -> list of error strings (empty: valid). Every field must be a field of the kind's API model
(a typo such as `livenesProbe` is an error, unlike with kubectl's lenient decoding), every value must have
the model's type (str, int, bool, list, map, nested model; IntOrString and Quantity fields are `object`
and accept both), and every required field must be present (the model constructors refuse a missing one).
Kinds outside the core API (Prometheus Operator's ServiceMonitor) are checked with a JSON schema of the
fields fathom's manifests may use.

python3-kubernetes 22.6 predates the autoscaling/v2 models; autoscaling/v2 is field for field the
autoscaling/v2beta2 API it promoted, so autoscaling/v2 objects are checked with the V2beta2 models.
"""
import re

import jsonschema
from kubernetes import client

KINDS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2beta2HorizontalPodAutoscaler",
}

_DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                   "matchExpressions": {"type": "array"}},
}
# The fields of monitoring.coreos.com/v1 ServiceMonitor (prometheus-operator's CRD) that the manifests use.
SERVICE_MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object", "required": ["endpoints", "selector"], "additionalProperties": False,
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                   "scheme": {"enum": ["http", "https"]},
                                   "interval": {"type": "string", "pattern": _DURATION},
                                   "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                                   "honorLabels": {"type": "boolean"}}}},
            },
        },
    },
}
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA}

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+), (.+)\)$")


def _check(value, type_name, path, errors):
    """Validates value against a python-kubernetes openapi type name; returns a constructor argument."""
    m = _LIST.match(type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return None
        return [_check(v, m.group(1), f"{path}[{i}]", errors) for i, v in enumerate(value)]
    m = _DICT.match(type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return None
        return {k: _check(v, m.group(2), f"{path}.{k}", errors) for k, v in value.items()}
    if type_name == "object":
        return value
    if type_name in ("str", "datetime", "date"):
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if type_name == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
        return value
    if type_name == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {value!r}")
        return value
    klass = getattr(client, type_name, None)
    if klass is None:
        errors.append(f"{path}: no API model {type_name} in python3-kubernetes")
        return None
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {type_name} object, got {type(value).__name__}")
        return None
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    kwargs = {}
    for key, sub in value.items():
        attr = by_json.get(key)
        if attr is None:
            errors.append(f"{path}: unknown field '{key}' ({type_name} has {', '.join(sorted(by_json))})")
            continue
        kwargs[attr] = _check(sub, klass.openapi_types[attr], f"{path}.{key}", errors)
    try:
        klass(**kwargs)  # the generated constructor refuses a missing required field and invalid enums
    except (ValueError, TypeError) as e:
        errors.append(f"{path}: {type_name}: {e}")
    return value


def validate(obj):
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = f"{key[1]}/{(obj.get('metadata') or {}).get('name', '?')}"
    if key in CRD_SCHEMAS:
        validator = jsonschema.Draft7Validator(CRD_SCHEMAS[key])
        errors = [f"{name}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                  for e in validator.iter_errors(obj)]
        meta = []
        _check(obj.get("metadata", {}), "V1ObjectMeta", f"{name}.metadata", meta)
        return errors + meta
    if key not in KINDS:
        return [f"{name}: apiVersion/kind {key[0]}/{key[1]} is not one the checker knows ({sorted(KINDS)})"]
    errors = []
    _check(obj, KINDS[key], name, errors)
    return errors
