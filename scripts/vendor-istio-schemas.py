#!/usr/bin/env python3
"""Re-vendors deploy-checks/fixtures/istio-v1-schemas.json from an Istio release's
`manifests/charts/base/files/crd-all.gen.yaml`.

Only the v1 schemas of the kinds the project uses are kept, without their
`description` fields, so the fixture stays small and diffs stay readable.

    python3 scripts/vendor-istio-schemas.py ISTIO_VERSION CRD_ALL_YAML
"""
import json
import sys

import yaml

KINDS = [
    "networking.istio.io/v1/DestinationRule",
    "networking.istio.io/v1/Gateway",
    "networking.istio.io/v1/VirtualService",
    "security.istio.io/v1/AuthorizationPolicy",
    "security.istio.io/v1/PeerAuthentication",
    "telemetry.istio.io/v1/Telemetry",
]


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(version, path):
    schemas = {}
    with open(path) as crds:
        for doc in yaml.safe_load_all(crds):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for served in doc["spec"]["versions"]:
                key = f"{group}/{served['name']}/{kind}"
                if key in KINDS:
                    schemas[key] = strip(served["schema"]["openAPIV3Schema"])
    missing = sorted(set(KINDS) - set(schemas))
    if missing:
        sys.exit(f"{path} has no schema for {', '.join(missing)}")
    fixture = {
        "_source": f"Istio {version} CRDs (manifests/charts/base/files/crd-all.gen.yaml), "
        "v1 versions of the kinds k8s/ uses, descriptions removed. Apache-2.0. "
        "Regenerate with scripts/vendor-istio-schemas.py.",
        "istio_version": version,
        "schemas": dict(sorted(schemas.items())),
    }
    json.dump(fixture, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
