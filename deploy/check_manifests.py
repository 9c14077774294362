"""Checks deploy/k8s: every manifest valid against Kubernetes' OpenAPI
schemas (strict: unknown fields are errors) for the oldest and newest
versions we support, the validator shown to reject a broken manifest, and
the manifests consistent with each other and with the server (probe port,
grace period, metric name, selectors, secret keys, environment variables
against those the server reads, the replica name, the Dockerfile's user)."""
from __future__ import annotations

import copy
import pathlib
import re
import sys

import kubernetes_validate
import yaml

VERSIONS = ["1.30", "1.37"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(message: str) -> None:
    print(f"deploy/check: {message}", file=sys.stderr)
    sys.exit(1)


def main(folder: pathlib.Path) -> None:
    # Every document of every file (an empty one, as after a trailing ---,
    # is skipped).
    docs = [
        (path.name, doc)
        for path in sorted(folder.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    resources = [(name, doc) for name, doc in docs if doc.get("kind") != "Kustomization"]
    for name, doc in resources:
        for version in VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{name}: {doc.get('kind')} is not valid for Kubernetes {version}: {e.message}")
    print(f"deploy/check: {len(resources)} manifests valid for Kubernetes {', '.join(VERSIONS)}")
    by_kind: dict = {}
    for _, doc in resources:
        by_kind.setdefault(doc["kind"], []).append(doc)
    for kind in ("Deployment", "Secret", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        if len(by_kind.get(kind, [])) != 1:
            fail(f"expected one {kind}, found {len(by_kind.get(kind, []))}")
    manifests = {kind: found[0] for kind, found in by_kind.items()}

    # The validator is not a no-op: a misspelt field is refused.
    broken = copy.deepcopy(manifests["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    try:
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
        fail("a Deployment with a misspelt field passed validation")
    except kubernetes_validate.ValidationError:
        pass

    kustomization = next(d for _, d in docs if d.get("kind") == "Kustomization")
    listed = set(kustomization["resources"])
    files = {name for name, _ in resources}
    if listed != files:
        fail(f"kustomization.yaml lists {sorted(listed)}, the folder has {sorted(files)}")

    dep = manifests["Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    addr_port = int(env["EMBEDEVAL_ADDR"]["value"].rsplit(":", 1)[1])
    metrics_port = int(env["EMBEDEVAL_METRICS_ADDR"]["value"].rsplit(":", 1)[1])
    if (ports["grpc"], ports["metrics"]) != (addr_port, metrics_port):
        fail(f"container ports {ports} differ from the server's addresses")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if container[probe].get("grpc", {}).get("port") != addr_port:
            fail(f"{probe} must be a gRPC probe (grpc.health.v1) on port {addr_port}")
    grace = int(re.fullmatch(r"(\d+)s", env["EMBEDEVAL_SHUTDOWN_GRACE"]["value"]).group(1))
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    if pod["spec"]["terminationGracePeriodSeconds"] < grace + pause + 5:
        fail("terminationGracePeriodSeconds must cover the shutdown grace and the preStop pause")

    secret = manifests["Secret"]
    secret_name = secret["metadata"]["name"]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    # Keys read as optional must be in the shipped Secret too: it is the
    # template operators fill in, so it names every key the pods can read.
    used = {r["key"] for r in refs}
    used |= {i["key"] for v in pod["spec"]["volumes"] if "secret" in v for i in v["secret"]["items"]}
    if not used <= keys:
        fail(f"the Deployment uses secret keys {sorted(used - keys)} the Secret lacks")
    names = {r["name"] for r in refs}
    names |= {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    names |= {f["secretRef"]["name"] for f in container.get("envFrom", []) if "secretRef" in f}
    if names - {secret_name}:
        fail(f"the Deployment reads Secrets {sorted(names - {secret_name})}; the manifests have {secret_name}")

    # Every variable the Deployment sets is one the server reads: the flags'
    # EMBEDEVAL_* (clap's env = "…" in src/) and the object store's
    # credentials (named in src/object_stores).
    source = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.rs"))
    server_env = set(re.findall(r'env = "(EMBEDEVAL_[A-Z0-9_]+)"', source))
    storage = "\n".join(p.read_text() for p in (ROOT / "src" / "object_stores").rglob("*.rs"))
    for name in env:
        if name.startswith("EMBEDEVAL_"):
            if name not in server_env:
                fail(f"the Deployment sets {name}, which the server does not read")
        elif re.match(r"(AWS|GOOGLE|AZURE)_", name):
            if f"`{name}`" not in storage:
                fail(f"the Deployment sets {name}, which src/object_stores does not name")
    # More than one replica: one database and one object store for all.
    for name in ("EMBEDEVAL_DATABASE_URL", "EMBEDEVAL_DATA_URL"):
        if "secretKeyRef" not in env.get(name, {}).get("valueFrom", {}):
            fail(f"{name} must come from the Secret")
    database = secret.get("stringData", {}).get(env["EMBEDEVAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"], "")
    if database and not database.startswith(("postgres://", "postgresql://")):
        fail("the replicas share their jobs through PostgreSQL: the database URL must be postgres://")
    # Each replica its own name, kept across a container's restart: the
    # pod's. A fixed value would have every replica take the others' jobs.
    field = env.get("EMBEDEVAL_REPLICA_ID", {}).get("valueFrom", {}).get("fieldRef", {})
    if field.get("fieldPath") != "metadata.name":
        fail("EMBEDEVAL_REPLICA_ID must be the pod's name (fieldRef metadata.name)")
    lease = env.get("EMBEDEVAL_JOB_LEASE", {}).get("value", "")
    if not re.fullmatch(r"\d+(\.\d+)?(ms|s)?", lease):
        fail(f"EMBEDEVAL_JOB_LEASE {lease!r} is not a duration (30, 30s, 500ms)")

    # The pods run as the image's user.
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.M)
    if not users:
        fail("the Dockerfile's USER must be numeric (uid:gid), for runAsNonRoot")
    uid, gid = users[-1]
    security = pod["spec"]["securityContext"]
    if str(security.get("runAsUser")) != uid or (gid and str(security.get("runAsGroup")) != gid):
        fail(f"the pods run as {security.get('runAsUser')}:{security.get('runAsGroup')}, the image as {uid}:{gid or uid}")

    svc = manifests["Service"]
    if svc["spec"].get("clusterIP") != "None":
        fail("the Service must be headless (clusterIP: None) for client-side load balancing")
    for name, selector in [
        ("Service", svc["spec"]["selector"]),
        ("PodDisruptionBudget", manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
        ("Deployment", dep["spec"]["selector"]["matchLabels"]),
    ]:
        if any(labels.get(k) != v for k, v in selector.items()):
            fail(f"the {name}'s selector {selector} does not select the pods {labels}")

    hpa = manifests["HorizontalPodAutoscaler"]
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    if f'"{metric}"' not in source:
        fail(f"the HPA scales on {metric}, which the server does not export")
    if hpa["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
        fail("the HPA does not scale the Deployment")
    print(
        "deploy/check: probes, grace period, ports, selectors, secret keys, environment, "
        "replica name, user and the HPA metric agree"
    )


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
