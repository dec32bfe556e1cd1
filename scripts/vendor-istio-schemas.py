#!/usr/bin/env python3
"""Re-vendors the CRD schemas deploy-checks validates k8s/ against:

- deploy-checks/fixtures/istio-v1-schemas.json from an Istio release's
  `manifests/charts/base/files/crd-all.gen.yaml`;
- deploy-checks/fixtures/gateway-api-v1-schemas.json (with --gateway-api)
  from the Gateway API standard channel vendored in
  k8s/gateway-api/standard-install.yaml.

Only the v1 schemas of the kinds the project uses are kept, without their
`description` fields, so the fixture stays small and diffs stay readable.

    python3 scripts/vendor-istio-schemas.py ISTIO_VERSION CRD_ALL_YAML
    python3 scripts/vendor-istio-schemas.py --gateway-api VERSION STANDARD_INSTALL_YAML
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

GATEWAY_API_KINDS = [
    "gateway.networking.k8s.io/v1/Gateway",
    "gateway.networking.k8s.io/v1/HTTPRoute",
]


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(version, path, kinds=None, source=None):
    kinds = kinds or KINDS
    schemas = {}
    with open(path) as crds:
        for doc in yaml.safe_load_all(crds):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for served in doc["spec"]["versions"]:
                key = f"{group}/{served['name']}/{kind}"
                if key in kinds:
                    schemas[key] = strip(served["schema"]["openAPIV3Schema"])
    missing = sorted(set(kinds) - set(schemas))
    if missing:
        sys.exit(f"{path} has no schema for {', '.join(missing)}")
    if source is None:
        fixture = {
            "_source": f"Istio {version} CRDs (manifests/charts/base/files/crd-all.gen.yaml), "
            "v1 versions of the kinds k8s/ uses, descriptions removed. Apache-2.0. "
            "Regenerate with scripts/vendor-istio-schemas.py.",
            "istio_version": version,
        }
    else:
        fixture = {"_source": source, "gateway_api_version": version}
    fixture["schemas"] = dict(sorted(schemas.items()))
    json.dump(fixture, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--gateway-api":
        main(
            sys.argv[2],
            sys.argv[3],
            GATEWAY_API_KINDS,
            f"Gateway API {sys.argv[2]} standard channel CRDs (k8s/gateway-api/standard-install.yaml), "
            "v1 versions of the kinds k8s/ uses, descriptions removed. Apache-2.0. "
            "Regenerate with scripts/vendor-istio-schemas.py --gateway-api.",
        )
    elif len(sys.argv) == 3:
        main(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
