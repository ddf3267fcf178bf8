"""The explicit, impure step after validation: check the config against the machine it will run on.

Resolving follows every path (symlinks included) and keeps it inside the station's allowed roots, checks that
golden folders hold images, that the GenTL producer loads, and that every secret reference can be read. It
returns the resolved paths and secrets; it never writes anything.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from edge.config.errors import ConfigError, Issue
from edge.config.loader import LineMap, read_document, validate_document
from edge.config.paths import PathEscapeError, confine
from edge.config.root import StationConfig
from edge.config.secrets import SecretError, SecretRef, resolve_secret

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
MIN_GOLDEN_IMAGES = 2
"""Leave-one-out calibration needs at least two golden images per SKU."""

ENV_ALLOWED_ROOTS = "EDGE_ALLOWED_ROOTS"
"""Extra data roots, ``os.pathsep``-separated (set by the appliance image, never by the config)."""


@dataclass(frozen=True)
class AllowedRoots:
    """Folders a config may point into; a property of the station, never of the config itself."""

    data: tuple[Path, ...]
    secrets: tuple[Path, ...]
    producers: tuple[Path, ...]


def default_allowed_roots(
    config_path: Path, station_root: Path | None = None, extra: Sequence[Path] = ()
) -> AllowedRoots:
    """Return the roots a station allows by default.

    Data: the config file's folder (a config travels with its golden images), the station root,
    ``/var/lib/edge``, ``$EDGE_ALLOWED_ROOTS`` and ``extra``. Secrets: the data roots plus ``/run/secrets``,
    ``/etc/edge/secrets`` and systemd's ``$CREDENTIALS_DIRECTORY``. GenTL producers: system library folders,
    ``/opt``, ``$GENICAM_GENTL64_PATH`` and the ``genicam`` package (which ships the simulated camera).
    """
    data = [config_path.resolve().parent, Path("/var/lib/edge"), *extra]
    if station_root is not None:
        data.append(station_root)
    data += [Path(p) for p in os.environ.get(ENV_ALLOWED_ROOTS, "").split(os.pathsep) if p]
    secrets = [*data, Path("/run/secrets"), Path("/etc/edge/secrets")]
    if os.environ.get("CREDENTIALS_DIRECTORY"):
        secrets.append(Path(os.environ["CREDENTIALS_DIRECTORY"]))
    producers = [Path("/opt"), Path("/usr/lib"), Path("/usr/local/lib"), *extra]
    producers += [Path(p) for p in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep) if p]
    try:
        import genicam

        producers.append(Path(genicam.__file__).parent)
    except ImportError:  # pragma: no cover - genicam is a dependency; a stripped image may lack it
        pass
    return AllowedRoots(tuple(data), tuple(secrets), tuple(producers))


@dataclass
class ResolvedConfig:
    """A validated config plus what it points to on this machine.

    Attributes:
        config: The validated config.
        source: The config file.
        paths: YAML path (``skus[0].golden_dir``) -> resolved absolute path.
        secrets: YAML path (``mqtt.password``) -> value; ``SecretStr`` so it never prints.
        golden_images: SKU id -> golden image files, in name order.
        validation_images: SKU id -> known-defective image files (only SKUs that list some).

    """

    config: StationConfig
    source: Path
    paths: dict[str, Path] = field(default_factory=dict)
    secrets: dict[str, SecretStr] = field(default_factory=dict)
    golden_images: dict[str, list[Path]] = field(default_factory=dict)
    validation_images: dict[str, list[Path]] = field(default_factory=dict)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class _Resolver:
    def __init__(
        self,
        config: StationConfig,
        source: Path,
        roots: AllowedRoots,
        env: Mapping[str, str] | None,
        base_dir: Path | None,
    ) -> None:
        self.out = ResolvedConfig(config, source)
        self.base = base_dir or source.resolve().parent
        self.roots = roots
        self.env = env
        self.issues: list[tuple[str, str]] = []

    def path(
        self, yaml_path: str, value: str | None, *, kind: str = "any", roots: Sequence[Path] = ()
    ) -> Path | None:
        if value is None:
            return None
        try:
            real = confine(value, base_dir=self.base, roots=roots or self.roots.data)
        except PathEscapeError as exc:
            self.issues.append((yaml_path, f"{value}: {exc}"))
            return None
        if kind == "dir" and not real.is_dir():
            self.issues.append((yaml_path, f"{value}: expected an existing folder ({real})"))
            return None
        if kind == "file" and not real.is_file():
            self.issues.append((yaml_path, f"{value}: expected an existing file ({real})"))
            return None
        self.out.paths[yaml_path] = real
        return real

    def images(self, yaml_path: str, folder: Path, minimum: int) -> list[Path]:
        images = list_images(folder)
        escaped = []
        for image in images:
            try:
                confine(image, base_dir=folder, roots=self.roots.data)
            except PathEscapeError:
                escaped.append(image.name)
        if escaped:
            self.issues.append((yaml_path, f"symlinked images lead outside the allowed roots: {escaped[:5]}"))
            return []
        if len(images) < minimum:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            self.issues.append(
                (yaml_path, f"expected at least {minimum} images ({suffixes}), found {len(images)}")
            )
        return images

    def producer(self, yaml_path: str, value: str | None) -> None:
        real = self.path(yaml_path, value, kind="file", roots=self.roots.producers)
        if real is None:
            return
        try:
            library = ctypes.CDLL(str(real))
        except OSError as exc:
            self.issues.append((yaml_path, f"{value}: GenTL producer does not load: {exc}"))
            return
        if not hasattr(library, "GCInitLib"):
            self.issues.append((yaml_path, f"{value}: not a GenTL producer (no GCInitLib symbol)"))

    def secret(self, yaml_path: str, ref: SecretRef | None) -> None:
        if ref is None:
            return
        try:
            self.out.secrets[yaml_path] = resolve_secret(
                ref, env=self.env, base_dir=self.base, allowed_roots=self.roots.secrets
            )
        except SecretError as exc:
            self.issues.append((yaml_path, str(exc)))


def resolve_config(
    config: StationConfig,
    *,
    source: Path,
    roots: AllowedRoots,
    env: Mapping[str, str] | None = None,
    lines: LineMap | None = None,
    load_producer: bool = True,
    base_dir: Path | None = None,
    check_golden: bool = True,
) -> ResolvedConfig:
    """Check ``config`` against this machine and return what it points to.

    Args:
        config: A validated config.
        source: The file it came from (relative paths are relative to its folder).
        roots: Folders the config may point into.
        env: Environment for ``{env: NAME}`` secrets (default ``os.environ``).
        lines: Line map of the document, so errors carry line numbers.
        load_producer: Load the ``.cti`` to prove it is a GenTL producer (it runs the library's initialisers).
        base_dir: Folder relative paths are resolved against (default: the folder of ``source``); an
            installed config keeps the folder it was flashed from.
        check_golden: Check golden and validation folders (only needed to build banks, not at boot).

    Raises:
        ConfigError: Every problem found, each naming its YAML path; secret values never appear.

    """
    r = _Resolver(config, source, roots, env, base_dir)
    cam = config.camera
    if cam.source == "genicam":
        if load_producer:
            r.producer("camera.cti", cam.cti)
        else:
            r.path("camera.cti", cam.cti, kind="file", roots=roots.producers)
    if cam.replay is not None:
        folder = r.path("camera.replay.dir", cam.replay.dir, kind="dir")
        if folder is not None and cam.source == "replay":
            r.images("camera.replay.dir", folder, 1)
    r.path("model.artifact_dir", config.model.artifact_dir, kind="dir")
    for i, sku in enumerate(config.skus if check_golden else ()):
        golden = r.path(f"skus[{i}].golden_dir", sku.golden_dir, kind="dir")
        if golden is not None:
            r.out.golden_images[sku.id] = r.images(f"skus[{i}].golden_dir", golden, MIN_GOLDEN_IMAGES)
        defects = r.path(f"skus[{i}].validation_defects_dir", sku.validation_defects_dir, kind="dir")
        if defects is not None:
            r.out.validation_images[sku.id] = r.images(f"skus[{i}].validation_defects_dir", defects, 1)
    if config.mqtt.tls is not None:
        for name in ("ca", "cert", "key"):
            r.path(f"mqtt.tls.{name}", getattr(config.mqtt.tls, name), kind="file", roots=roots.secrets)
    r.secret("mqtt.password", config.mqtt.password)
    r.path("storage.data_dir", config.storage.data_dir)
    r.path("storage.archive_dir", config.storage.archive_dir)
    if config.review.enabled and config.review.tls is not None:
        r.path("review.tls.cert", config.review.tls.cert, kind="file", roots=roots.secrets)
        r.path("review.tls.key", config.review.tls.key, kind="file", roots=roots.secrets)
    if config.opcua.enabled:
        r.path("opcua.certificate", config.opcua.certificate, kind="file", roots=roots.secrets)
        r.path("opcua.private_key", config.opcua.private_key, kind="file", roots=roots.secrets)
        r.path("opcua.trusted_clients", config.opcua.trusted_clients, kind="dir", roots=roots.secrets)
    if r.issues:
        line_map = lines or LineMap()
        raise ConfigError(
            str(source),
            [Issue(path, message, line_map.line_of(_loc(path))) for path, message in r.issues],
            summary="config does not resolve on this machine",
        )
    return r.out


def _loc(yaml_path: str) -> tuple[str | int, ...]:
    """``skus[1].golden_dir`` -> ``("skus", 1, "golden_dir")`` (inverse of ``format_path``)."""
    out: list[str | int] = []
    for part in yaml_path.replace("[", ".[").split("."):
        if part.startswith("["):
            out.append(int(part[1:-1]))
        elif part:
            out.append(part)
    return tuple(out)


def load_and_resolve(
    path: Path, *, roots: AllowedRoots, env: Mapping[str, str] | None = None, load_producer: bool = True
) -> ResolvedConfig:
    """Load, validate and resolve the config at ``path`` (errors carry line numbers throughout)."""
    document = read_document(path)
    config = validate_document(document, source=str(path))
    return resolve_config(
        config, source=path, roots=roots, env=env, lines=document.lines, load_producer=load_producer
    )
