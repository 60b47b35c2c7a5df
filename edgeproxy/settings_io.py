"""Settings in and out of text: the JSON ``edgeproxy serve --workers N`` hands to each worker
process, and the TOML ``edgeproxy check-config`` prints. The schema is ``edgeproxy.settings``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import SecretStr

from edgeproxy.purge import PurgeHook
from edgeproxy.settings import Settings

#: Environment variable through which ``edgeproxy serve --workers N`` hands settings to workers.
SERIALIZED_ENV = "EDGEPROXY_SETTINGS_JSON"


def settings_from_serialized() -> Settings:
    """Settings handed to a uvicorn worker process by ``edgeproxy serve --workers N``."""
    return Settings.model_validate_json(os.environ[SERIALIZED_ENV])


def serialize(settings: Settings) -> str:
    """JSON for ``settings_from_serialized``, secrets included (it only travels to child processes)."""
    data = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
        elif isinstance(value, list) and any(isinstance(v, SecretStr) for v in value):
            data[name] = [v.get_secret_value() for v in value]
    return json.dumps(data)


#: What ``describe`` prints in place of a secret.
MASK = "********"


def _toml(value: Any) -> str:
    """``value`` (from ``model_dump(mode="json")``) as a TOML value: strings and numbers as JSON
    writes them (valid TOML for these), lists as arrays, dicts as inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def describe(settings: Settings, unset: frozenset[str] = frozenset()) -> str:
    """Every setting, one ``name = value`` line each in field order (TOML), secrets (``SecretStr``
    values: keys, tokens) shown as ``MASK`` and purge hooks as ``PurgeHook.shown`` (their
    credentials and tokens masked); a setting that is unset (None, or named in ``unset``) as
    the comment ``# name = (unset)``. What ``edgeproxy check-config`` prints."""
    data = settings.model_dump(mode="json")
    lines = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None or name in unset:
            lines.append(f"# {name} = (unset)")
            continue
        if isinstance(value, SecretStr):
            shown = json.dumps(MASK)
        elif name == "purge_hooks":  # webhook URLs may carry credentials or tokens
            shown = _toml([PurgeHook.parse(hook).shown for hook in value])
        elif isinstance(value, list) and any(isinstance(v, SecretStr) for v in value):
            shown = _toml([MASK] * len(value))
        else:
            shown = _toml(data[name])
        lines.append(f"{name} = {shown}")
    return "\n".join(lines)
