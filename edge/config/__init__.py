"""Station config: pydantic models, YAML loading with located errors, resolution, safe-mode boot.

Public entry points::

    load_config(path) -> StationConfig           # pure: parse, migrate, validate
    resolve_config(config, source=..., roots=...) -> ResolvedConfig   # impure: paths, producer, secrets
    load_active_config(root) -> ActiveConfig | SafeMode               # runtime boot
"""

from edge.config.errors import ConfigError, Issue
from edge.config.loader import load_config, parse_config
from edge.config.render import config_hash
from edge.config.resolve import AllowedRoots, ResolvedConfig, default_allowed_roots, resolve_config
from edge.config.root import CURRENT_VERSION, StationConfig

__all__ = [
    "CURRENT_VERSION",
    "AllowedRoots",
    "ConfigError",
    "Issue",
    "ResolvedConfig",
    "StationConfig",
    "config_hash",
    "default_allowed_roots",
    "load_config",
    "parse_config",
    "resolve_config",
]
