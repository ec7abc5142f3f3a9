"""Checks of deploy/ that kubernetes-validate cannot make (run by deploy/checks/validate.sh).

- PodMonitor, PrometheusRule and kustomization.yaml against monitoring.schema.json;
- every PromQL expression of the PrometheusRule and of deploy/grafana/*.json parses;
- with --rendered FILE: the output of `kustomize build deploy/k8s` names every resource of the
  kustomization in its namespace, and its core resources pass kubernetes-validate.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import jsonschema
import promql_parser
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRD_KINDS = {"PodMonitor", "PrometheusRule"}


def documents(path):
    with open(path, encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc is not None]


def grafana_queries():
    """(origin, PromQL) of every dashboard target and query variable."""
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        stack = [dashboard]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key, item in value.items():
                    if key in ("expr", "definition") and isinstance(item, str):
                        yield f"{path.name}: {key}", item
                    elif key == "query" and isinstance(item, str) and "(" in item:
                        yield f"{path.name}: query", item
                    else:
                        stack.append(item)
            elif isinstance(value, list):
                stack.extend(value)


def as_promql(expr):
    """Grafana's additions made PromQL: `label_values(selector, label)` → the selector; range
    and template variables → a duration and a regex."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr, re.S)
    if match:
        expr = match.group(1)
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    return re.sub(r"\$\w+", ".*", expr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rendered")
    parser.add_argument("--kubernetes-validate")
    parser.add_argument("--kubernetes-version", default="1.33.0")
    args = parser.parse_args()
    problems = []

    schema = json.loads((ROOT / "deploy" / "checks" / "monitoring.schema.json").read_text())
    rule_exprs = []
    for name in ("podmonitor.yaml", "prometheusrule.yaml", "kustomization.yaml"):
        for doc in documents(K8S / name):
            # The definition of the document's kind, for errors that name the field.
            kind = doc.get("kind")
            if kind not in schema["$defs"]:
                problems.append(f"{name}: kind {kind} has no definition in monitoring.schema.json")
                continue
            by_kind = {key: value for key, value in schema.items() if key != "oneOf"}
            by_kind["$ref"] = f"#/$defs/{kind}"
            for error in jsonschema.Draft202012Validator(by_kind).iter_errors(doc):
                problems.append(f"{name}: {error.message} at {list(error.absolute_path)}")
            if doc.get("kind") == "PrometheusRule":
                for group in doc["spec"]["groups"]:
                    for rule in group["rules"]:
                        rule_exprs.append((f"alert {rule.get('alert')}", rule["expr"]))

    queries = rule_exprs + list(grafana_queries())
    for origin, expr in queries:
        try:
            promql_parser.parse(as_promql(expr))
        except Exception as error:  # the parser raises plain ValueError/RuntimeError
            problems.append(f"{origin}: `{expr}` is not valid PromQL: {error}")
    print(f"parsed {len(queries)} PromQL expressions ({len(rule_exprs)} alert rules)")

    if args.rendered:
        kustomization = documents(K8S / "kustomization.yaml")[0]
        rendered = documents(args.rendered)
        namespace = kustomization["namespace"]
        expected = set()
        for resource in kustomization["resources"]:
            for doc in documents(K8S / resource):
                expected.add((doc["kind"], doc["metadata"]["name"]))
        found = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered}
        if expected != found:
            problems.append(f"kustomize build: expected {sorted(expected)}, got {sorted(found)}")
        for doc in rendered:
            if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != namespace:
                problems.append(f"kustomize build: {doc['kind']} not in namespace {namespace}")
        core = [doc for doc in rendered if doc["kind"] not in CRD_KINDS]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
            yaml.safe_dump_all(core, file)
        result = subprocess.run(
            [args.kubernetes_validate, "--strict", "--quiet", "-k", args.kubernetes_version, file.name],
            check=False,
        )
        if result.returncode != 0:
            problems.append("kustomize build: kubernetes-validate refused the rendered resources")
        pathlib.Path(file.name).unlink()

    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
