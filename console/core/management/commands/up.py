"""`manage.py up`: bring the whole local system up on embedded defaults (what `make run` runs)."""

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.core import local_daemons
from console.core.bootstrap import ADMIN_USERNAME, ensure_admin_user
from console.core.filemodes import make_private
from console.core.ports import PortClaim, first_taken, is_answering
from console.core.supervisor import ProcessSpec, Supervisor
from console.env import env_secret, persisted_secret
from daemon.localcluster import Layout, LayoutError

PIECES = ("daemon", "collector", "worker")

HELP = """\
Start the local system and supervise it until Ctrl-C: a 3-node daemon cluster (each node
its own process, logging to var/cluster/<node>/node.log), the collector, a Celery worker
and the console on daphne. Migrates the database and creates the `admin` user first.
Daemon nodes still running from an earlier run (whose `up` was killed) are adopted.

Environment:
  CONSOLE_HOST, CONSOLE_PORT   where the console listens (127.0.0.1, 8000)
  DAEMON_HTTP_PORT             node i serves HTTP on this+i, Raft on this+100+i (8080)
  DAEMON_TOKEN                 daemon admin token (default: generated once into var/)
  CONSOLE_ADMIN_PASSWORD       password for a newly created admin (default: generated)
  CONSOLE_VAR_DIR              where data lives (./var)
  DATABASE_URL, REDIS_URL, CELERY_BROKER_URL   leave unset for SQLite, in-memory, files
"""


class _Say:
    """A stdout for a called command that prints through the supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def write(self, text: str) -> None:
        if text.strip():
            self.supervisor.say(text.strip())

    def flush(self) -> None:
        pass


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: object) -> CommandParser:
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--skip",
            action="append",
            choices=PIECES,
            default=[],
            help="do not start this piece (repeatable)",
        )

    def handle(self, *args: object, skip: list[str], **options: object) -> None:
        base_dir: Path = settings.BASE_DIR
        var_dir: Path = settings.VAR_DIR
        run_daemon = "daemon" not in skip
        layout = local_daemons.local_layout(var_dir, settings.DAEMON_HTTP_PORT)
        try:
            adopted = local_daemons.still_running(layout) if run_daemon else {}
        except LayoutError as exc:
            raise CommandError(str(exc)) from None

        # Before touching anything: a taken port is a one-line error, not a half-started system.
        claims = [PortClaim(settings.CONSOLE_PORT, "the console", "CONSOLE_PORT", "the console")]
        if run_daemon:
            claims += local_daemons.port_claims(layout, adopted)
        taken = first_taken(claims)
        if taken:
            raise CommandError(taken.taken_message())

        supervisor = Supervisor(cwd=base_dir, log_dir=var_dir / "log")
        supervisor.reserve_width([spec.name for spec in layout.nodes] if run_daemon else [])
        supervisor.install_signal_handlers()
        # Owner-only from here on, for this process and everything it starts: the
        # SQLite database, sessions, the daemons' journals and the broker's files.
        make_private(var_dir)
        supervisor.say(f"data in {var_dir}; database {settings.DATABASES['default']['NAME']}")
        call_command("migrate", interactive=False, verbosity=0)
        password = ensure_admin_user(env_secret("CONSOLE_ADMIN_PASSWORD"))
        if password is None:
            supervisor.say(
                f"admin user exists; password was printed on first run "
                f"(reset: manage.py changepassword {ADMIN_USERNAME})"
            )

        daemon_token = env_secret("DAEMON_TOKEN") or persisted_secret(var_dir / "daemon_token")
        shared_env = {
            "DAEMON_TOKEN": daemon_token,
            "DAEMON_HTTP_PORT": str(settings.DAEMON_HTTP_PORT),
            "CONSOLE_VAR_DIR": str(var_dir),
        }
        url = f"http://{settings.CONSOLE_HOST}:{settings.CONSOLE_PORT}/"

        def announce_when_ready() -> bool:
            if not is_answering(settings.CONSOLE_HOST, settings.CONSOLE_PORT):
                return False
            self._announce(supervisor, url, password)
            return True

        try:
            if run_daemon:
                self._start_daemons(supervisor, layout, daemon_token, adopted)
            supervisor.start_all(self._process_specs(skip, shared_env))
            supervisor.supervise(announce_when_ready)
        finally:
            supervisor.stop_all()
        if supervisor.unexpected_exits:
            raise CommandError("; ".join(supervisor.unexpected_exits))

    def _start_daemons(
        self, supervisor: Supervisor, layout: Layout, token: str, adopted: dict[str, int]
    ) -> None:
        nodes = local_daemons.prepare(layout, token)
        if len(adopted) < len(nodes):
            # A fresh install registers the checkout as its first release and starts the
            # nodes from it (by name: the releases app sits above this one).
            try:
                call_command("first_release", cluster_dir=layout.root, stdout=_Say(supervisor))
            except CommandError as exc:
                supervisor.say(f"{exc}; the nodes run this checkout")
        for node in nodes:
            # NodeProcess.start, not the bare handle's: it starts the release the layout
            # records for the node (first_release just chose one), not this checkout.
            supervisor.watch(node.name, node.handle, None if node.name in adopted else node.start)
            where = f"{node.url}, raft {node.spec.raft_address}"
            if node.name in adopted:
                supervisor.say(f"adopted {node.name} (pid {node.pid}, still running): {where}")
            else:
                supervisor.say(f"started {node.name} (pid {node.pid}): {where}")
        supervisor.say(f"daemon logs: {layout.root}/<node>/node.log")

    def _process_specs(self, skip: list[str], env: dict[str, str]) -> list[ProcessSpec]:
        python = sys.executable
        specs: list[ProcessSpec] = []
        if "collector" not in skip:
            specs.append(ProcessSpec("collector", [python, "manage.py", "collect"], env))
        if "worker" not in skip:
            worker = [python, "-m", "celery", "-A", "console", "worker", "-B", "--loglevel", "INFO"]
            specs.append(ProcessSpec("worker", worker, env))
        daphne = [
            python, "-m", "console.core.serve",  # daphne with connection limits
            "-b", settings.CONSOLE_HOST, "-p", str(settings.CONSOLE_PORT),
            "console.asgi:application",
        ]  # fmt: skip
        specs.append(ProcessSpec("console", daphne, env))
        return specs

    def _announce(self, supervisor: Supervisor, url: str, password: str | None) -> None:
        supervisor.say("")
        supervisor.say(f"console ready: {url}", color="1;32")
        if password is not None:
            supervisor.say(
                f"log in as {ADMIN_USERNAME} / {password}  (printed once: only its hash is stored)",
                color="1;32",
            )
        else:
            supervisor.say(f"log in as {ADMIN_USERNAME}", color="1;32")
        supervisor.say("Ctrl-C stops everything")
        supervisor.say("")
        os.environ.pop("CONSOLE_ADMIN_PASSWORD", None)
