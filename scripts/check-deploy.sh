#!/usr/bin/env bash
# Checks that the files in deploy/ parse as YAML and have the shape their tools expect. Needs python3 with
# PyYAML (Debian: python3-yaml); without it, says so and succeeds, since no test depends on it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import yaml' >/dev/null 2>&1; then
	echo "check-deploy: skipped (python3 with PyYAML not found; apt-get install python3-yaml)"
	exit 0
fi

python3 - deploy/docker-compose.yml deploy/k8s/*.yaml <<'PY'
import sys
import yaml

errors = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        errors.append(f"{path}: {e}")
        continue
    if not docs:
        errors.append(f"{path}: no YAML document")
        continue
    for d in docs:
        if not isinstance(d, dict):
            errors.append(f"{path}: top level is {type(d).__name__}, want a mapping")
            continue
        if path.endswith("docker-compose.yml"):
            for svc in ("ducha", "redis", "minio"):
                if svc not in (d.get("services") or {}):
                    errors.append(f"{path}: service {svc} missing")
        else:
            for key in ("apiVersion", "kind"):
                if key not in d:
                    errors.append(f"{path}: {key} missing")
            if d.get("kind") not in ("Kustomization", "Namespace") and "namespace" not in (d.get("metadata") or {}):
                errors.append(f"{path}: metadata.namespace missing")
for e in errors:
    print("check-deploy:", e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-deploy: {len(sys.argv) - 1} files parse as YAML")
PY
