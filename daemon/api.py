"""The node's HTTP API (Starlette): parse, authorise, call DaemonNode, map errors.

The contract is docs/daemon-api.md; the runbook's curl lines are the tests.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from daemon import backup as backups
from daemon import codeversion, exposition
from daemon.api_request import (
    MAX_PAGE,
    Handler,
    error,
    guarded,
    int_param,
    op_id_of,
    read_json,
)
from daemon.contract import METRICS_WINDOWS, valid_operation_id
from daemon.guards import HostCheck
from daemon.node import ApiError, DaemonNode
from daemon.operations import (
    DefinitionError,
    LimitError,
    check_definition_limits,
    check_params_limit,
    validate_definition,
)
from daemon.watch import watch_endpoint

log = logging.getLogger("daemon.api")


def build_app(node: DaemonNode) -> Starlette:
    hosts = HostCheck(node.config)
    read, operate, admin = (guarded(node, role, hosts) for role in ("read", "operate", "admin"))
    # The runbook's anonymous `curl | jq` reads; everything else needs a read token.
    health = guarded(node, "health", hosts)

    # ---- health ----
    async def startup(request: Request) -> Response:
        if node.raft.is_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive", "node": node.name})

    async def ready(request: Request) -> Response:
        ok, status, reason = node.reporting.readiness()
        body = {"status": status, "node": node.name}
        if not ok:
            body["reason"] = reason
        return JSONResponse(body, status_code=200 if ok else 503)

    @health
    async def health_node(request: Request) -> Response:
        return JSONResponse(node.reporting.node_view())

    @health
    async def health_cluster(request: Request) -> Response:
        return JSONResponse(await node.reporting.cluster_view())

    # ---- operations ----
    @read
    async def list_operations(request: Request) -> Response:
        # Paged by id: ?limit=N&after=<last id seen>; X-Next-After names the next page.
        limit = int_param(request, "limit", MAX_PAGE, 1, MAX_PAGE)
        after = request.query_params.get("after") or ""
        if after and not valid_operation_id(after):
            raise ApiError(400, "query parameter 'after' must be an operation id")
        ops = [op for op in node.state.list_operations() if op["id"] > after]
        page = ops[:limit]
        headers = {"X-Next-After": page[-1]["id"]} if len(ops) > limit else None
        return JSONResponse(page, headers=headers)

    def check_limits(body: Any) -> None:
        # Checked here, before Raft: a replicated body must never refuse anything.
        try:
            op = validate_definition(body, node.policy)
        except DefinitionError:
            return  # node.define_operation reports it as a 400
        state = node.state
        known = set(state.operations) | set(state.history)
        try:
            check_definition_limits(
                op,
                len(known),
                op["id"] not in state.operations,
                node.config.max_operations,
                node.config.max_definition_bytes,
            )
        except LimitError as exc:
            raise ApiError(exc.status, str(exc)) from None

    @operate
    async def define_operation(request: Request) -> Response:
        body = await read_json(request, node)
        check_limits(body)
        created, op = await node.define_operation(body)
        return JSONResponse(op, status_code=201 if created else 200)

    @read
    async def get_operation(request: Request) -> Response:
        return JSONResponse(await node.find_operation(op_id_of(request)))

    @operate
    async def delete_operation(request: Request) -> Response:
        op_id = op_id_of(request)
        await node.delete_operation(op_id)
        return JSONResponse({"deleted": op_id})

    @operate
    async def execute(request: Request) -> Response:
        op_id = op_id_of(request)
        body = await read_json(request, node, required=False)
        params = None
        if body is not None:
            if not isinstance(body, dict) or set(body) - {"params"}:
                raise ApiError(400, 'body must be {"params": {...}} or empty')
            params = body.get("params")
            if params is not None and not isinstance(params, dict):
                raise ApiError(400, "params must be a JSON object")
            try:
                check_params_limit(params, node.config.max_params_bytes)
            except LimitError as exc:
                raise ApiError(exc.status, str(exc)) from None
        return JSONResponse(await node.execute(op_id, params))

    @read
    async def history(request: Request) -> Response:
        op_id = op_id_of(request)
        limit = int_param(request, "limit", 100, 1, MAX_PAGE)
        before = int_param(request, "before", None, 0, 2**62)
        after = int_param(request, "after", None, 0, 2**62)
        records = node.state.operation_history(op_id, limit, before, after)
        if records is None and await node.catch_up():
            records = node.state.operation_history(op_id, limit, before, after)
        if records is None:
            raise ApiError(404, f"operation '{op_id}' not found")
        return JSONResponse(records)

    @read
    async def executions(request: Request) -> Response:
        after = int_param(request, "after", 0, 0, 2**62)
        limit = int_param(request, "limit", 500, 1, MAX_PAGE)
        return JSONResponse(node.state.executions_after(after, limit))

    # ---- metrics ----
    @health
    async def metrics_now(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if exposition.wants_prometheus(accept):
            body, content_type = exposition.render_prometheus(
                node.reporting.prometheus_snapshot(), accept
            )
            return Response(body, media_type=content_type)
        return JSONResponse(node.reporting.metrics_summary(None))

    @health
    async def metrics_window(request: Request) -> Response:
        window = request.path_params["window"]
        if window not in METRICS_WINDOWS:
            raise ApiError(
                404, f"unknown window '{window[:20]}'; use one of {', '.join(METRICS_WINDOWS)}"
            )
        return JSONResponse(await node.reporting.metrics_window(METRICS_WINDOWS[window]))

    # ---- queue and admin ----
    @health
    async def queue(request: Request) -> Response:
        return JSONResponse({**node.executor.queue_snapshot(), "node": node.name})

    @admin
    async def snapshot(request: Request) -> Response:
        return JSONResponse(await node.admin.snapshot())

    @admin
    async def take_backup(request: Request) -> Response:
        try:
            manifest, body, timings = await backups.take(node)
        except (backups.BackupError, TimeoutError) as exc:
            reason = str(exc) or "the tick thread did not answer"
            raise ApiError(503, f"backup failed: {reason}") from None
        headers = {
            "Content-Disposition": f'attachment; filename="backup-{manifest["appliedIndex"]}.bak"',
            "X-Backup-Applied-Index": str(manifest["appliedIndex"]),
            "X-Backup-Lock-Held-Ms": str(timings["tickThreadMs"]),
            "X-Backup-Timings": json.dumps(timings, separators=(",", ":")),
        }
        return Response(body, media_type="application/octet-stream", headers=headers)

    @admin
    async def backup_summary(request: Request) -> Response:
        try:
            return JSONResponse(await backups.live_summary(node))
        except TimeoutError:
            raise ApiError(503, "the tick thread did not answer in time") from None

    def drain_endpoint(draining: bool) -> Handler:
        @admin
        async def endpoint(request: Request) -> Response:
            body = await read_json(request, node, required=False) or {}
            if not isinstance(body, dict) or set(body) - {"node"}:
                raise ApiError(400, 'body must be {"node": "<node name>"} or empty')
            target = body.get("node")
            if target is not None and not isinstance(target, str):
                raise ApiError(400, "node must be a node name")
            if target and target != node.name:
                path = "/admin/drain" if draining else "/admin/undrain"
                forwarded = await node.peers.forward(
                    target, "POST", path, request.headers.get("authorization")
                )
                return JSONResponse(forwarded.json(), status_code=forwarded.status_code)
            return JSONResponse(await node.admin.set_draining(draining))

        return endpoint

    @admin
    async def transfer_leader(request: Request) -> Response:
        body = await read_json(request, node, required=False) or {}
        if not isinstance(body, dict) or set(body) - {"target"}:
            raise ApiError(400, 'body must be {"target": "<node name>"} or empty')
        target = body.get("target")
        if target is not None and not isinstance(target, str):
            raise ApiError(400, "target must be a node name")
        if not node.raft.is_leader:
            leader = node.directory.leader_name()
            if leader is None:
                raise ApiError(503, "no leader right now; retry in a moment")
            forwarded = await node.peers.forward(
                leader, "POST", "/admin/transfer-leader", request.headers.get("authorization"), body
            )
            return JSONResponse(forwarded.json(), status_code=forwarded.status_code)
        return JSONResponse(await node.admin.transfer_leader(target))

    @read
    async def list_members(request: Request) -> Response:
        view = await node.reporting.cluster_view()
        return JSONResponse(
            [
                {k: n[k] for k in ("name", "role", "reachable", "raftAddress", "httpUrl")}
                for n in view["nodes"]
            ]
        )

    @admin
    async def add_member(request: Request) -> Response:
        return JSONResponse(await node.admin.add_member(await read_json(request, node)))

    @admin
    async def remove_member(request: Request) -> Response:
        return JSONResponse(await node.admin.remove_member(request.path_params["name"]))

    @read
    async def get_code_version(request: Request) -> Response:
        return JSONResponse(codeversion.current(node.raft, node.name))

    @admin
    async def set_code_version(request: Request) -> Response:
        body = await read_json(request, node)
        return JSONResponse(await codeversion.switch(node.raft, node.reporting, body))

    @admin
    async def shutdown(request: Request) -> Response:
        node._spawn(node.graceful_shutdown())
        return JSONResponse({"status": "shutting down", "node": node.name}, status_code=202)

    routes = [
        Route("/health/startup", startup),
        Route("/health/live", live),
        Route("/health/ready", ready),
        Route("/health/node", health_node),
        Route("/health/cluster", health_cluster),
        Route("/watch", read(watch_endpoint(node)), methods=["GET"]),
        Route("/operations", list_operations, methods=["GET"]),
        Route("/operations", define_operation, methods=["POST"]),
        Route("/operations/{op_id}", get_operation, methods=["GET"]),
        Route("/operations/{op_id}", delete_operation, methods=["DELETE"]),
        Route("/operations/{op_id}/history", history, methods=["GET"]),
        Route("/execute/{op_id}", execute, methods=["POST"]),
        Route("/executions", executions, methods=["GET"]),
        Route("/metrics", metrics_now, methods=["GET"]),
        Route("/metrics/{window}", metrics_window, methods=["GET"]),
        Route("/queue", queue, methods=["GET"]),
        Route("/admin/snapshot", snapshot, methods=["POST"]),
        Route("/admin/backup", take_backup, methods=["POST"]),
        Route("/admin/backup/summary", backup_summary, methods=["GET"]),
        Route("/admin/drain", drain_endpoint(True), methods=["POST"]),
        Route("/admin/undrain", drain_endpoint(False), methods=["POST"]),
        Route("/admin/transfer-leader", transfer_leader, methods=["POST"]),
        Route("/admin/members", list_members, methods=["GET"]),
        Route("/admin/members", add_member, methods=["POST"]),
        Route("/admin/members/{name}", remove_member, methods=["DELETE"]),
        Route("/admin/code-version", get_code_version, methods=["GET"]),
        Route("/admin/code-version", set_code_version, methods=["POST"]),
        Route("/shutdown", shutdown, methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, exc.detail or "error")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        return error(500, "internal error; see the node's log")

    async def root(request: Request) -> Response:
        return JSONResponse({"node": node.name, "version": node.reporting.node_view()["version"]})

    routes.append(Route("/", root))
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
