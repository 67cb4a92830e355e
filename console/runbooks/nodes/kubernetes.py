"""The Kubernetes node manager: nodes as the pods of one StatefulSet, through the official
`kubernetes` client.

How the interface maps onto a StatefulSet:
- a release maps to an image by a naming rule: release R runs `<Cluster.kube_image>:R`
  (the image repository is on the Cluster row; `deploy/images` tags builds that way), and a
  pod's release is read back from its container's image tag;
- the StatefulSet must use `updateStrategy: OnDelete`, so the controller never replaces a
  pod by itself when the template changes: the console chooses the order (leader last).
  `run_on(pod, R)` sets the template's image to R's and deletes that one pod; the
  controller recreates it from the template, so it alone comes back on R. `restart` is the
  same with the pod's current image, so restarting a not-yet-upgraded pod in the middle of
  a rollout keeps its release. Between two calls the template holds the last image written
  (the rollout's target): a pod the cluster evicts by itself comes back on the target;
- stop/start use the StatefulSet's scale, so only the highest ordinal can be stopped (and
  then started again): Kubernetes has no "stopped pod", and a per-pod trick (a node
  selector nothing matches, say) would leave a Pending pod the PodDisruptionBudget counts;
- add_node/remove_node grow or shrink the scale by one at the top; the Raft membership
  change around them is the scale action's (the daemon's admin API), never the manager's.
  add_node first lists the new pod in the ConfigMap's `peers` (the image's entrypoint
  refuses a pod that is not there: deploy/README.md "Scaling"); remove_node unlists it
  after the scale-down.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from console.runbooks.nodes import kube_partition
from console.runbooks.nodes.base import NodeManagerError, NodeState, StartResult

STOPPED_ANNOTATION = "console.unrdf.io/stopped"  # pods an operator stopped (JSON list)
CONFIG_MAP = "daemon-config"  # deploy/kubernetes/base/03-config.yaml
CONFIG_KEY = "daemon-config.json"
CONTAINER = "daemon"
POLL_S = 0.2
T = TypeVar("T")


def _escape(key: str) -> str:
    """A JSON-pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


class KubernetesNodeManager:
    def __init__(
        self,
        api_url: str,
        namespace: str,
        statefulset: str,
        image_repository: str,
        token: str = "",
        ca_file: str = "",
        request_timeout_s: float = 10.0,
    ) -> None:
        if not (api_url and namespace and statefulset and image_repository):
            raise NodeManagerError(
                "a Kubernetes cluster needs its API URL, namespace, StatefulSet and image "
                "repository on the cluster row"
            )
        config = k8s.Configuration(host=api_url.rstrip("/"))
        if token:
            config.api_key = {"authorization": token}
            config.api_key_prefix = {"authorization": "Bearer"}
        if ca_file:
            config.ssl_ca_cert = ca_file
        self._api = k8s.ApiClient(config)
        self.apps = k8s.AppsV1Api(self._api)
        self.core = k8s.CoreV1Api(self._api)
        self.namespace = namespace
        self.statefulset = statefulset
        self.image_repository = image_repository
        self.timeout = request_timeout_s

    # ---- the API, with one-line errors ----------------------------------------------
    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            reason = exc.reason or ""
            with contextlib.suppress(ValueError, AttributeError):  # a v1 Status, or not
                reason = json.loads(exc.body or "{}").get("message") or reason
            raise NodeManagerError(f"Kubernetes refused to {what}: {exc.status} {reason}") from None
        except (HTTPError, OSError) as exc:
            raise NodeManagerError(f"cannot reach the Kubernetes API to {what}: {exc}") from None

    def _sts(self) -> Any:
        sts = self._call(
            f"read statefulset {self.statefulset}",
            self.apps.read_namespaced_stateful_set,
            self.statefulset,
            self.namespace,
        )
        strategy = sts.spec.update_strategy.type if sts.spec.update_strategy else "RollingUpdate"
        if strategy != "OnDelete":
            raise NodeManagerError(
                f"statefulset {self.statefulset} uses updateStrategy {strategy}; the console "
                "needs OnDelete so that it, not the controller, chooses which pod moves when"
            )
        return sts

    def _patch_sts(self, what: str, ops: list[dict[str, Any]]) -> None:
        # A JSON patch (a list body): exact, and needs no strategic-merge knowledge.
        self._call(
            what, self.apps.patch_namespaced_stateful_set, self.statefulset, self.namespace, ops
        )

    def _pod(self, name: str) -> Any | None:
        try:
            return self.core.read_namespaced_pod(
                name, self.namespace, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise NodeManagerError(f"Kubernetes refused to read pod {name}: {exc.status}") from None
        except (HTTPError, OSError) as exc:
            raise NodeManagerError(
                f"cannot reach the Kubernetes API to read {name}: {exc}"
            ) from None

    # ---- naming ---------------------------------------------------------------------
    def ordinal(self, name: str) -> int:
        prefix = f"{self.statefulset}-"
        tail = name[len(prefix) :] if name.startswith(prefix) else ""
        if not tail.isdigit():
            raise NodeManagerError(f"{name} is not a pod of statefulset {self.statefulset}")
        return int(tail)

    def image_of(self, release: str) -> str:
        return f"{self.image_repository}:{release}"

    def release_of_image(self, image: str) -> str:
        prefix = f"{self.image_repository}:"
        return image[len(prefix) :] if image.startswith(prefix) else ""

    @staticmethod
    def _container(spec: Any) -> tuple[int, Any]:
        for index, container in enumerate(spec.containers or []):
            if container.name == CONTAINER:
                return index, container
        raise NodeManagerError(f"the pod template has no container named {CONTAINER!r}")

    def _stopped(self, sts: Any) -> list[str]:
        raw = (sts.metadata.annotations or {}).get(STOPPED_ANNOTATION, "[]")
        try:
            value = json.loads(raw)
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []

    def _set_stopped(self, sts: Any, stopped: list[str]) -> list[dict[str, Any]]:
        # "add" on an object member replaces it when present (RFC 6902).
        annotations = {**(sts.metadata.annotations or {}), STOPPED_ANNOTATION: json.dumps(stopped)}
        return [{"op": "add", "path": "/metadata/annotations", "value": annotations}]

    # ---- one node -------------------------------------------------------------------
    def names(self) -> list[str]:
        replicas = self._sts().spec.replicas or 0
        return [f"{self.statefulset}-{i}" for i in range(replicas)]

    def status(self, name: str) -> NodeState:
        ordinal = self.ordinal(name)
        sts = self._sts()
        _, template = self._container(sts.spec.template.spec)
        ports = {p.name: p.container_port for p in template.ports or []}
        # The ConfigMap's peers form (the console runs in the daemons' namespace), so the
        # member a scale adds has the same addresses its peers list gives it.
        host = f"{name}.{sts.spec.service_name}"
        pod = self._pod(name) if ordinal < (sts.spec.replicas or 0) else None
        release, running, tail = "", False, []
        if pod is not None and pod.metadata.deletion_timestamp is None:
            _, container = self._container(pod.spec)
            release = self.release_of_image(container.image)
            conditions = {c.type: c.status for c in (pod.status.conditions or [])}
            running = pod.status.phase == "Running"
            if conditions.get("Ready") != "True":
                tail = [f"pod {name}: phase {pod.status.phase}, not Ready"]
        return NodeState(
            name=name,
            running=running,
            pid=None,
            release=release,
            stopped_by_operator=name in self._stopped(sts),
            url=f"http://{host}:{ports.get('http', 8080)}",
            raft_address=f"{host}:{ports.get('raft', 8081)}",
            log_tail=tail,
        )

    def _wait(self, name: str, image: str, old_uid: str | None, timeout_s: float) -> StartResult:
        """Until pod `name` is a new pod (not `old_uid`) on `image` and Ready."""
        deadline = time.monotonic() + timeout_s
        while True:
            pod = self._pod(name)
            if pod is not None and pod.metadata.uid != old_uid:
                _, container = self._container(pod.spec)
                ready = any(
                    c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
                )
                if container.image == image and ready:
                    return StartResult(name, True, None, [])
            if time.monotonic() >= deadline:
                phase = pod.status.phase if pod is not None else "absent"
                return StartResult(name, False, None, [f"pod {name}: {phase}, not Ready"])
            time.sleep(POLL_S)

    def _recreate(self, name: str, image: str, timeout_s: float) -> StartResult:
        sts = self._sts()
        if self.ordinal(name) >= (sts.spec.replicas or 0):
            raise NodeManagerError(f"{name} is above the statefulset's scale; start it first")
        index, container = self._container(sts.spec.template.spec)
        if container.image != image:
            path = f"/spec/template/spec/containers/{index}/image"
            self._patch_sts(
                f"set the image of {self.statefulset}",
                [{"op": "replace", "path": path, "value": image}],
            )
        pod = self._pod(name)
        if pod is not None:
            self._call(f"delete pod {name}", self.core.delete_namespaced_pod, name, self.namespace)
        return self._wait(name, image, pod.metadata.uid if pod else None, timeout_s)

    def restart(self, name: str, timeout_s: float = 60.0) -> StartResult:
        self.ordinal(name)
        pod = self._pod(name)
        if pod is None:
            raise NodeManagerError(f"pod {name} does not exist")
        _, container = self._container(pod.spec)
        return self._recreate(name, container.image, timeout_s)

    def run_on(self, name: str, release: str | None, timeout_s: float = 60.0) -> StartResult:
        if not release:
            raise NodeManagerError(
                "a Kubernetes node runs a release's image; name the release to run it on"
            )
        return self._recreate(name, self.image_of(release), timeout_s)

    def stop(self, name: str) -> None:
        ordinal = self.ordinal(name)
        sts = self._sts()
        replicas = sts.spec.replicas or 0
        if ordinal >= replicas:
            return  # already stopped
        if ordinal != replicas - 1:
            raise NodeManagerError(
                f"only the highest pod ({self.statefulset}-{replicas - 1}) can be stopped on "
                "Kubernetes (a StatefulSet scales down from the top); restart this one instead"
            )
        stopped = sorted(set(self._stopped(sts)) | {name})
        ops = self._set_stopped(sts, stopped)
        ops.append({"op": "replace", "path": "/spec/replicas", "value": ordinal})
        self._patch_sts(f"scale {self.statefulset} to {ordinal}", ops)
        self._wait_pod(name, present=False)

    def _wait_pod(self, name: str, present: bool, timeout_s: float = 60.0) -> None:
        """The controller creates or deletes the pod after the scale, not with it: like a
        local start or stop, return once it is there (or gone)."""
        deadline = time.monotonic() + timeout_s
        while (self._pod(name) is not None) != present:
            if time.monotonic() >= deadline:
                what = "still absent" if present else "still there"
                raise NodeManagerError(f"pod {name} is {what} {timeout_s:.0f} s after the scale")
            time.sleep(POLL_S)

    def start(self, name: str, timeout_s: float = 60.0) -> StartResult:
        ordinal = self.ordinal(name)
        sts = self._sts()
        replicas = sts.spec.replicas or 0
        if ordinal > replicas:
            raise NodeManagerError(
                f"{name} cannot start before {self.statefulset}-{replicas}: a StatefulSet "
                "scales up from the top"
            )
        ops = self._set_stopped(sts, [n for n in self._stopped(sts) if n != name])
        if ordinal == replicas:
            ops.append({"op": "replace", "path": "/spec/replicas", "value": replicas + 1})
        self._patch_sts(f"start {name}", ops)
        self._wait_pod(name, present=True)
        if timeout_s <= 0:
            return StartResult(name, False, None, [])
        pod = self._pod(name)
        image = self._container(pod.spec)[1].image if pod is not None else ""
        return self._wait(name, image, None, timeout_s)

    # ---- Raft partitions (drills, split brain): NetworkPolicies, see kube_partition ---
    def cut_raft(self, name: str) -> int:
        """Cut `name`'s Raft links to its peers; any pod can be cut. The Raft port."""
        return kube_partition.cut(self, name)

    def heal_raft(self, name: str) -> int:
        return kube_partition.heal(self, name)

    def is_raft_cut(self, name: str) -> bool:
        return bool(kube_partition.listed(self, name))

    # ---- the set of nodes -----------------------------------------------------------
    def add_node(self, release: str | None = None) -> NodeState:
        """The next ordinal. Unlike a local node it starts at once (the scale makes the pod);
        it is not a Raft member until the scale action adds it."""
        sts = self._sts()
        replicas = sts.spec.replicas or 0
        name = f"{self.statefulset}-{replicas}"
        self._set_peer(sts, name, listed=True)
        ops: list[dict[str, Any]] = []
        if release:
            index, _ = self._container(sts.spec.template.spec)
            path = f"/spec/template/spec/containers/{index}/image"
            ops.append({"op": "replace", "path": path, "value": self.image_of(release)})
        ops.append({"op": "replace", "path": "/spec/replicas", "value": replicas + 1})
        self._patch_sts(f"scale {self.statefulset} to {replicas + 1}", ops)
        self._wait_pod(name, present=True)
        return self.status(name)

    def remove_node(self, name: str) -> None:
        """Scale down past `name`, which must be the highest ordinal: it has left the
        membership. Its volume claim stays (Kubernetes keeps StatefulSet PVCs)."""
        ordinal = self.ordinal(name)
        sts = self._sts()
        replicas = sts.spec.replicas or 0
        if ordinal >= replicas:
            return
        if ordinal != replicas - 1:
            raise NodeManagerError(
                f"only the highest pod ({self.statefulset}-{replicas - 1}) can be removed on "
                "Kubernetes; remove the members from the top"
            )
        ops = self._set_stopped(sts, [n for n in self._stopped(sts) if n != name])
        ops.append({"op": "replace", "path": "/spec/replicas", "value": ordinal})
        self._patch_sts(f"scale {self.statefulset} to {ordinal}", ops)
        self._wait_pod(name, present=False)
        self._set_peer(sts, name, listed=False)

    def _set_peer(self, sts: Any, name: str, listed: bool) -> None:
        """List or unlist `name` in the ConfigMap's `peers`, in the manifest's own form."""
        what = f"update configmap {CONFIG_MAP}"
        cm = self._call(what, self.core.read_namespaced_config_map, CONFIG_MAP, self.namespace)
        try:
            config = json.loads((cm.data or {})[CONFIG_KEY])
            peers = [p for p in config["peers"] if p.get("name") != name]
        except (KeyError, ValueError, TypeError, AttributeError):
            raise NodeManagerError(
                f"configmap {CONFIG_MAP} has no {CONFIG_KEY} with a peers list"
            ) from None
        if listed:
            _, template = self._container(sts.spec.template.spec)
            ports = {p.name: p.container_port for p in template.ports or []}
            host = f"{name}.{sts.spec.service_name}"
            peers.append(
                {
                    "name": name,
                    "raftAddress": f"{host}:{ports.get('raft', 8081)}",
                    "httpUrl": f"http://{host}:{ports.get('http', 8080)}",
                }
            )
        config["peers"] = peers
        path = "/data/" + _escape(CONFIG_KEY)
        body = [{"op": "replace", "path": path, "value": json.dumps(config, indent=2)}]
        self._call(what, self.core.patch_namespaced_config_map, CONFIG_MAP, self.namespace, body)


def manager_from_cluster(cluster: Any) -> KubernetesNodeManager:
    var = cluster.kube_token_env
    return KubernetesNodeManager(
        api_url=cluster.kube_api_url,
        namespace=cluster.kube_namespace,
        statefulset=cluster.kube_statefulset,
        image_repository=cluster.kube_image,
        token=os.environ.get(var, "") if var else "",
        ca_file=cluster.kube_ca_file,
    )
