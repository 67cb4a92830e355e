"""`manage.py first_release`: the checked-out tree as the first release (what `up` runs).

When no release exists: build a wheel of this checkout, register it, verify it (install,
scratch node), and record that the local cluster's nodes that are not running start from
it. With a release already registered, or nodes already running, it changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.clusters.models import Release
from console.releases import services, verify
from daemon.localcluster import Layout, LayoutError, NodeProcess


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cluster-dir", type=Path, default=None)

    def handle(self, *args: object, cluster_dir: Path | None, **options: object) -> None:
        if Release.objects.exists():
            return
        try:
            release = services.build_from_checkout(Path(settings.BASE_DIR), "system")
        except services.ReleaseError as exc:
            raise CommandError(f"could not register the checkout as a release: {exc}") from None
        release = verify.verify(release.id, actor="system")
        if not release.verification.get("ok"):
            raise CommandError(
                f"release {release.name} did not verify: {release.verification.get('error')}"
            )
        self.stdout.write(f"registered and verified release {release.name}")
        root = Path(cluster_dir or settings.LOCAL_CLUSTER_DIR)
        try:
            layout = Layout.load(root)
        except LayoutError:
            return  # no layout yet: `up` writes it, then calls this again
        for spec in layout.nodes:
            if NodeProcess(layout, spec.name).running() or layout.release_of(spec.name):
                continue
            layout.run_on(spec.name, release.name, services.envs_dir())
        self.stdout.write(f"the local nodes start from release {release.name}")
