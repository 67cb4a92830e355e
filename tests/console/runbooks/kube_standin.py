"""A STAND-IN for a Kubernetes API server: a Kubernetes API server cannot run here.

It is small on purpose and answers only the calls the node manager makes, with the
objects' real JSON shapes (apps/v1 StatefulSet, v1 Pod, v1 Status for errors):
- GET and PATCH (JSON patch, RFC 6902: add/replace) one StatefulSet;
- GET, DELETE one Pod; GET the namespace's Pods (list);
- GET and PATCH (JSON patch) one ConfigMap (the daemons' config, for `peers`);
- POST, GET (list, with an `a=b` labelSelector) and DELETE NetworkPolicies (the raft
  cut); names in `refuse_policies` are refused with 403, as an RBAC rule would;
- a controller loop, run after every change and on a short tick, that does what the
  StatefulSet controller does for the parts the manager relies on: it creates the missing
  pods 0..replicas-1 from the StatefulSet's *current* template, deletes pods at or above
  `replicas`, and under `RollingUpdate` (not `OnDelete`) replaces pods whose image differs
  from the template, highest ordinal first. A new pod is Running and Ready at once: there
  is no kubelet and no container here, so readiness says nothing about a daemon.
Requests must carry the bearer token it was given (401 otherwise), like a real server.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def apply_json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        if op.get("op") not in ("add", "replace"):
            raise ValueError(f"op {op.get('op')!r} is not supported by the stand-in")
        *parents, last = _pointer(op["path"])
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = op["value"]
        else:
            if op["op"] == "replace" and last not in target:
                raise ValueError(f"replace of a missing member {op['path']}")
            target[last] = op["value"]
    return doc


class StandInApiServer:
    def __init__(
        self,
        namespace: str,
        statefulset: dict[str, Any],
        token: str,
        config_map: dict[str, Any] | None = None,
    ) -> None:
        self.namespace = namespace
        self.config_map = config_map or daemon_config(statefulset)
        self.token = token
        self.lock = threading.RLock()
        self.statefulset = statefulset
        self.pods: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path), for the tests
        self.created: list[tuple[str, str]] = []  # (pod, image) in creation order
        self.network_policies: dict[str, dict[str, Any]] = {}
        self.refuse_policies: set[str] = set()
        self._stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.reconcile()

    # ---- the controller ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.statefulset["metadata"]["name"]

    def _new_pod(self, ordinal: int) -> dict[str, Any]:
        template = copy.deepcopy(self.statefulset["spec"]["template"])
        name = f"{self.name}-{ordinal}"
        metadata = template.get("metadata", {})
        # The controller labels each pod with its name; each pod gets an IP of its own.
        labels = {**metadata.get("labels", {}), "statefulset.kubernetes.io/pod-name": name}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **metadata,
                "labels": labels,
                "name": name,
                "namespace": self.namespace,
                "uid": str(uuid.uuid4()),
            },
            "spec": {**template["spec"], "hostname": name},
            "status": {
                "phase": "Running",
                "podIP": f"10.244.0.{10 + ordinal}",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        self.created.append((name, self.image(pod)))
        return pod

    @staticmethod
    def image(obj: dict[str, Any]) -> str:
        spec = obj["spec"]["template"]["spec"] if obj.get("kind") == "StatefulSet" else obj["spec"]
        return next(c["image"] for c in spec["containers"] if c["name"] == "daemon")

    def reconcile(self) -> None:
        with self.lock:
            replicas = self.statefulset["spec"]["replicas"]
            for name in list(self.pods):
                if int(name.rsplit("-", 1)[1]) >= replicas:
                    del self.pods[name]
            for ordinal in range(replicas):
                if f"{self.name}-{ordinal}" not in self.pods:
                    self.pods[f"{self.name}-{ordinal}"] = self._new_pod(ordinal)
            strategy = self.statefulset["spec"].get("updateStrategy", {}).get("type")
            if strategy != "OnDelete":
                target = self.image(self.statefulset)
                for ordinal in reversed(range(replicas)):
                    name = f"{self.name}-{ordinal}"
                    if self.image(self.pods[name]) != target:
                        self.pods[name] = self._new_pod(ordinal)
                        break  # one at a time

    def _tick(self) -> None:
        while not self._stop.wait(0.05):
            self.reconcile()

    # ---- HTTP ------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        ns = re.escape(self.namespace)
        sts_path = re.compile(rf"^/apis/apps/v1/namespaces/{ns}/statefulsets/([a-z0-9-]+)$")
        pods_path = re.compile(rf"^/api/v1/namespaces/{ns}/pods$")
        pod_path = re.compile(rf"^/api/v1/namespaces/{ns}/pods/([a-z0-9-]+)$")
        cm_path = re.compile(rf"^/api/v1/namespaces/{ns}/configmaps/([a-z0-9-]+)$")
        netpols = rf"^/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
        netpols_path = re.compile(netpols + "$")
        netpol_path = re.compile(netpols + r"/([a-z0-9.-]+)$")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(
                    code,
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                     "message": message, "reason": reason, "code": code},
                )  # fmt: skip

            def _route(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append((method, path))
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    return self._status(401, "Unauthorized", "Unauthorized")
                with server.lock:
                    if m := sts_path.match(path):
                        if m.group(1) != server.name:
                            return self._status(
                                404, "NotFound", f'statefulsets.apps "{m.group(1)}" not found'
                            )
                        if method == "GET":
                            return self._send(200, server.statefulset)
                        if method == "PATCH":
                            return self._patch("statefulset")
                    elif m := cm_path.match(path):
                        if m.group(1) != server.config_map["metadata"]["name"]:
                            return self._status(
                                404, "NotFound", f'configmaps "{m.group(1)}" not found'
                            )
                        if method == "GET":
                            return self._send(200, server.config_map)
                        if method == "PATCH":
                            return self._patch("config_map")
                    elif netpols_path.match(path) and method in ("GET", "POST"):
                        return self._policies(method)
                    elif m := netpol_path.match(path):
                        policy = server.network_policies.get(m.group(1))
                        if policy is None:
                            return self._status(
                                404, "NotFound", f'networkpolicies "{m.group(1)}" not found'
                            )
                        if method == "GET":
                            return self._send(200, policy)
                        if method == "DELETE":
                            del server.network_policies[m.group(1)]
                            return self._send(200, policy)
                    elif pods_path.match(path) and method == "GET":
                        items = [server.pods[k] for k in sorted(server.pods)]
                        return self._send(200, {"kind": "PodList", "apiVersion": "v1",
                                                "metadata": {}, "items": items})  # fmt: skip
                    elif m := pod_path.match(path):
                        pod = server.pods.get(m.group(1))
                        if pod is None:
                            return self._status(404, "NotFound", f'pods "{m.group(1)}" not found')
                        if method == "GET":
                            return self._send(200, pod)
                        if method == "DELETE":
                            del server.pods[m.group(1)]
                            return self._send(200, pod)
                    return self._status(405, "MethodNotAllowed", f"{method} {path}")

            def _policies(self, method: str) -> None:
                if method == "GET":
                    query = parse_qs(self.path.partition("?")[2]).get("labelSelector", [""])[0]
                    key, _, value = query.partition("=")
                    items = [
                        p
                        for _, p in sorted(server.network_policies.items())
                        if not key or p["metadata"].get("labels", {}).get(key) == value
                    ]
                    return self._send(200, {"kind": "NetworkPolicyList", "metadata": {},
                                            "apiVersion": "networking.k8s.io/v1",
                                            "items": items})  # fmt: skip
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                name = body["metadata"]["name"]
                if name in server.refuse_policies:
                    return self._status(403, "Forbidden", f"cannot create {name}")
                if name in server.network_policies:
                    return self._status(409, "AlreadyExists", f'"{name}" already exists')
                body["metadata"]["uid"] = str(uuid.uuid4())
                server.network_policies[name] = body
                return self._send(201, body)

            def _patch(self, attribute: str) -> None:
                if self.headers.get("Content-Type") != "application/json-patch+json":
                    return self._status(
                        415, "UnsupportedMediaType", "the stand-in takes JSON patches only"
                    )
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    ops = json.loads(self.rfile.read(length))
                    patched = apply_json_patch(getattr(server, attribute), ops)
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    return self._status(422, "Invalid", str(exc))
                setattr(server, attribute, patched)
                return self._send(200, patched)

            def do_GET(self) -> None:
                self._route("GET")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler

    def __enter__(self) -> StandInApiServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self._tick, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def statefulset(name: str, image: str, replicas: int = 3, strategy: str = "OnDelete") -> dict:
    """The manifest's StatefulSet, as the API server would return it (trimmed)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "unrdf", "annotations": {}},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": strategy},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "daemon",
                            "image": image,
                            "ports": [
                                {"name": "http", "containerPort": 8080},
                                {"name": "raft", "containerPort": 8081},
                            ],
                        }
                    ]
                },
            },
        },
    }


def daemon_config(sts: dict[str, Any], members: int = 3) -> dict[str, Any]:
    """The manifest's ConfigMap (deploy/kubernetes/base/03-config.yaml), trimmed to peers."""
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    peers = [
        {
            "name": f"{name}-{i}",
            "raftAddress": f"{name}-{i}.{service}:8081",
            "httpUrl": f"http://{name}-{i}.{service}:8080",
        }
        for i in range(members)
    ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "daemon-config", "namespace": sts["metadata"]["namespace"]},
        "data": {"daemon-config.json": json.dumps({"httpPort": 8080, "peers": peers})},
    }


def peer_names(api: StandInApiServer) -> list[str]:
    config = json.loads(api.config_map["data"]["daemon-config.json"])
    return [p["name"] for p in config["peers"]]
