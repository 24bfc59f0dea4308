"""Validates Kubernetes manifests: core kinds against the schemas of one
Kubernetes version (kubernetes-validate, strict: unknown fields fail), KEDA's
kinds against keda-schema.json beside this file. A kind with no schema fails.

Usage: validate_manifests.py KUBERNETES_VERSION FILE...
Prints one line per resource: `ok FILE KIND/NAME` or `error FILE KIND/NAME: why`.
"""
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

KEDA_SCHEMA = json.loads((pathlib.Path(__file__).parent / "keda-schema.json").read_text())


def check(resource, version):
    """None when the resource is valid, else why not."""
    if str(resource.get("apiVersion", "")).startswith("keda.sh/"):
        errors = sorted(jsonschema.Draft202012Validator(KEDA_SCHEMA).iter_errors(resource), key=str)
        return "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors) or None
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{'.'.join(map(str, e.path))}: {e.message}"
    except kubernetes_validate.SchemaNotFoundError as e:
        return e.message
    return None


def main(version, files):
    failed = False
    for name in files:
        with open(name) as f:
            resources = [r for r in yaml.safe_load_all(f) if r]
        for resource in resources:
            what = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
            why = check(resource, version)
            failed |= why is not None
            print(f"ok {name} {what}" if why is None else f"error {name} {what}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
