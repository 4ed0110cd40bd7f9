"""Environment resolution: which data plane, where ``$DAGSTER_HOME`` is, where the local SQLite file is.

The Braintrust variables are the ones the official SDK reads:

    BRAINTRUST_API_KEY    set    -> real Braintrust ("braintrust" plane)
                          unset  -> the embedded local data plane ("local" plane)
    BRAINTRUST_API_URL    data-plane URL; wins over the ``api_url`` returned by login
    BRAINTRUST_APP_URL    login / app URL, default https://www.braintrust.dev
    BRAINTRUST_ORG_NAME   which organization to pick at login (default: the first)

Reading settings never touches the network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Plane = Literal["braintrust", "local"]

DEFAULT_APP_URL = "https://www.braintrust.dev"
LOCAL_DB_FILENAME = "braintrust-local.db"

# <repo>/pipelines_repo/settings.py -> <repo>, the directory holding pyproject.toml.
REPO_ROOT = Path(__file__).resolve().parent.parent


def _clean(value: str | None) -> str | None:
    """Strip whitespace (the SDK strips a trailing newline from keys); empty means unset."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _clean_url(value: str | None) -> str | None:
    value = _clean(value)
    return value.rstrip("/") if value else None


@dataclass(frozen=True)
class ApiSettings:
    """Where and how to reach a Braintrust data plane.

    ``plane`` defaults to ``"braintrust"`` when an API key is present, else ``"local"``.
    The API key is excluded from ``repr`` and equality-irrelevant output; it is never printed.
    """

    api_key: str | None = field(default=None, repr=False)
    api_url: str | None = None
    app_url: str = DEFAULT_APP_URL
    org_name: str | None = None
    plane: Plane = None  # type: ignore[assignment]  # resolved in __post_init__

    def __post_init__(self) -> None:
        key = _clean(self.api_key)
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "api_url", _clean_url(self.api_url))
        object.__setattr__(self, "app_url", _clean_url(self.app_url) or DEFAULT_APP_URL)
        object.__setattr__(self, "org_name", _clean(self.org_name))
        plane = self.plane or ("braintrust" if key else "local")
        if plane not in ("braintrust", "local"):
            raise ValueError(f"plane must be 'braintrust' or 'local', not {plane!r}")
        object.__setattr__(self, "plane", plane)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Read the SDK's variables; no key means the local data plane."""
        env = os.environ if environ is None else environ
        return cls(
            api_key=env.get("BRAINTRUST_API_KEY"),
            api_url=env.get("BRAINTRUST_API_URL"),
            app_url=env.get("BRAINTRUST_APP_URL") or DEFAULT_APP_URL,
            org_name=env.get("BRAINTRUST_ORG_NAME"),
        )

    def describe(self) -> str:
        """One line for UIs and logs: which plane is in use (never the key)."""
        if self.plane == "local":
            return "local data plane (no BRAINTRUST_API_KEY set)"
        where = self.api_url or f"{self.app_url} (api_url from login)"
        org = f", org {self.org_name}" if self.org_name else ""
        return f"Braintrust at {where}{org}"

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else "None"
        return (
            f"ApiSettings(plane={self.plane!r}, api_key={key}, api_url={self.api_url!r}, "
            f"app_url={self.app_url!r}, org_name={self.org_name!r})"
        )


def dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$DAGSTER_HOME``, else ``<repo>/dagster_home`` (the checked-in dagster.yaml lives there)."""
    env = os.environ if environ is None else environ
    value = _clean(env.get("DAGSTER_HOME"))
    if value:
        return Path(value).expanduser()
    return REPO_ROOT / "dagster_home"


def local_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$BT_LOCAL_DB``, else ``dagster_home()/braintrust-local.db``."""
    env = os.environ if environ is None else environ
    value = _clean(env.get("BT_LOCAL_DB"))
    if value:
        return Path(value).expanduser()
    return dagster_home(env) / LOCAL_DB_FILENAME
