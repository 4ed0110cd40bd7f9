"""``BraintrustResource``: the Dagster resource over the engine's ``BraintrustClient``.

Fields left unset fall back to the variables the Braintrust SDK reads (``BRAINTRUST_API_KEY``,
``BRAINTRUST_API_URL``, ``BRAINTRUST_APP_URL``, ``BRAINTRUST_ORG_NAME``) at run time, so runs
launched by the daemon in another process see the same plane as the webserver. With an API key
the client talks to real Braintrust; without one it talks to the embedded local data plane
(SQLite in ``$DAGSTER_HOME``, or ``local_db`` / ``$BT_LOCAL_DB``) through an in-process httpx
transport. :meth:`plane_description` says which, for metadata and logs. Building the resource
makes no network call.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from ..backend import open_client
from ..client import BraintrustClient
from ..settings import DEFAULT_APP_URL, ApiSettings, local_db_path

__all__ = ["BraintrustResource", "resource_from_env"]


class BraintrustResource(dg.ConfigurableResource):
    """Braintrust API access for the pipeline assets and sensors."""

    api_key: str | None = Field(
        default=None, description="Braintrust API key; unset means BRAINTRUST_API_KEY, else the local plane."
    )
    api_url: str | None = Field(default=None, description="Data-plane URL (default BRAINTRUST_API_URL, else from login).")
    app_url: str | None = Field(default=None, description=f"Login/app URL (default BRAINTRUST_APP_URL, else {DEFAULT_APP_URL}).")
    org_name: str | None = Field(default=None, description="Organization (default BRAINTRUST_ORG_NAME, else the first).")
    local_db: str | None = Field(
        default=None, description="Local plane SQLite file (default $BT_LOCAL_DB, else $DAGSTER_HOME/braintrust-local.db)."
    )
    timeout: float = Field(default=60.0, description="HTTP timeout in seconds (real Braintrust).")

    _client: BraintrustClient | None = PrivateAttr(default=None)

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> ApiSettings:
        env = ApiSettings.from_env()
        return ApiSettings(
            api_key=self.api_key if self.api_key is not None else env.api_key,
            api_url=self.api_url if self.api_url is not None else env.api_url,
            app_url=self.app_url or env.app_url,
            org_name=self.org_name if self.org_name is not None else env.org_name,
        )

    def local_db_path(self) -> Path:
        return Path(self.local_db).expanduser() if self.local_db else local_db_path()

    def plane_description(self) -> str:
        """Which data plane runs use, e.g. ``local data plane (...) at /home/braintrust-local.db``."""
        settings = self.settings()
        if settings.plane == "local":
            return f"{settings.describe()} at {os.fspath(self.local_db_path())}"
        return settings.describe()

    @property
    def plane(self) -> str:
        return self.settings().plane

    # -- client ---------------------------------------------------------------------------
    def get_client(self) -> BraintrustClient:
        """The engine client for this resource's plane (one per resource instance)."""
        if self._client is None:
            self._client = open_client(self.settings(), local_db=self.local_db_path(), timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()


def resource_from_env() -> BraintrustResource:
    """The resource ``definitions.py`` binds: the API key as an ``EnvVar`` when it is set (so the UI
    shows it as env-sourced and never prints it), everything else read from the environment at
    run time."""
    if os.environ.get("BRAINTRUST_API_KEY", "").strip():
        return BraintrustResource(api_key=dg.EnvVar("BRAINTRUST_API_KEY"))
    return BraintrustResource()
