"""Render a kustomization (base + overlay) without kustomize: the subset this repo uses.

Real `kubectl kustomize` (or `kustomize build`) is what operators run; this exists
because neither ships as a Debian package recent enough (bookworm's kubectl is 1.20)
nor on PyPI, and the test suite must render and validate every overlay offline.
`tests/deploy/test_manifests.py` checks that it renders exactly what real kustomize
renders (up to list order) wherever kubectl is installed.

Supported, and nothing more (anything else is refused with one line):
- `resources`: YAML files (multi-document) and directories holding a kustomization;
- `images`: `name` with `newName` and/or `newTag`, applied to pod-template containers;
- `patches`: `path` to a strategic-merge patch matched by kind, name and namespace.
  Maps merge key by key, `$patch: delete` removes a key, lists of maps that all carry
  `name` (containers, env, volumes, ports) merge item by item on it (new items first,
  as kustomize puts them), and any other list is replaced whole.

Usage: python deploy/kubernetes/render.py deploy/kubernetes/overlays/local
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "images", "patches"}


class RenderError(ValueError):
    """One line saying what in which kustomization is not supported."""


def render(directory: Path) -> list[dict[str, Any]]:
    directory = Path(directory)
    kustomization_file = directory / "kustomization.yaml"
    spec = yaml.safe_load(kustomization_file.read_text()) or {}
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise RenderError(f"{kustomization_file}: unsupported key {sorted(unknown)[0]!r}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise RenderError(f"{kustomization_file}: only patches with a path are supported")
        patch = yaml.safe_load((directory / patch_entry["path"]).read_text())
        target = _find(objects, patch, patch_entry["path"])
        objects[objects.index(target)] = merge(target, patch)
    for image in spec.get("images", []):
        for obj in objects:
            _set_image(obj, image)
    return objects


def _find(objects: list[dict[str, Any]], patch: dict[str, Any], where: str) -> dict[str, Any]:
    meta = patch.get("metadata", {})
    for obj in objects:
        if (
            obj.get("kind") == patch.get("kind")
            and obj["metadata"].get("name") == meta.get("name")
            and obj["metadata"].get("namespace") == meta.get("namespace")
        ):
            return obj
    raise RenderError(f"patch {where}: no {patch.get('kind')} named {meta.get('name')!r}")


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge of `patch` onto `base` (the subset described above)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if patch.get("$patch") == "delete":
            return None
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if isinstance(value, dict) and value.get("$patch") == "delete":
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        by_name = {item["name"]: item for item in base}
        added = [copy.deepcopy(item) for item in patch if item["name"] not in by_name]
        patched = {item["name"]: item for item in patch}
        kept = [
            merge(item, patched[item["name"]]) if item["name"] in patched else item for item in base
        ]
        return added + [item for item in kept if item is not None]
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def _set_image(obj: dict[str, Any], image: dict[str, str]) -> None:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        tag = image.get("newTag", tag)
        container["image"] = f"{name}:{tag}" if tag else name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: render.py KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        objects = render(Path(argv[0]))
    except (RenderError, OSError, yaml.YAMLError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    print("---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
