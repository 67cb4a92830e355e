"""The shell handler, when an operator enables it, runs with a minimal environment and
its output is not readable anonymously (issue 14, point 4): replayed on a real cluster."""

from __future__ import annotations

from tests.cluster_harness import ADMIN_TOKEN, RAFT_PASSWORD, READ_TOKEN, Cluster

SHELL = {"handlers": {"shell": {"enabled": True, "allow": ["env"]}}}


CONSOLE_SECRET = "console-secret-key-that-must-not-leak"


def test_a_shell_command_sees_none_of_the_nodes_secrets(make_cluster) -> None:
    # Under `make run` the nodes inherit the console's environment, secrets included.
    cluster: Cluster = make_cluster(
        size=1, overrides=SHELL, env={"SECRET_KEY": CONSOLE_SECRET, "REDIS_URL": CONSOLE_SECRET}
    )
    node = cluster.nodes[0]
    op = {"id": "dump-env", "name": "env", "handler": {"kind": "shell", "argv": ["env"]}}
    assert cluster.define(node, op).status_code == 201
    response = cluster.post(node, "/execute/dump-env")
    assert response.status_code == 200, response.text
    stdout = response.json()["result"]["stdout"]
    assert "PATH=" in stdout
    for secret in (CONSOLE_SECRET, RAFT_PASSWORD, ADMIN_TOKEN, READ_TOKEN, "SECRETS", "TOKEN"):
        assert secret not in stdout


def test_handler_output_is_not_served_to_anonymous_callers(make_cluster) -> None:
    cluster: Cluster = make_cluster(size=1, overrides=SHELL)
    node = cluster.nodes[0]
    op = {"id": "dump-env", "name": "env", "handler": {"kind": "shell", "argv": ["env"]}}
    assert cluster.define(node, op).status_code == 201
    assert cluster.post(node, "/execute/dump-env").status_code == 200
    for path in ("/operations/dump-env/history", "/executions", "/operations"):
        assert cluster.get(node, path, token=None).status_code == 401, path
        authorised = cluster.get(node, path, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert authorised.status_code == 200, path
