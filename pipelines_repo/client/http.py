"""A small, explicit httpx client for Braintrust's REST API (real Braintrust or the local plane).

One ``BraintrustClient`` wraps one ``httpx.Client`` (connections are reused). Every request:

- goes to ``app_url`` (login only) or ``api_url`` (everything else);
- carries ``Authorization: Bearer <key>`` when there is a key, ``x-bt-org-name`` once the org is
  known, a ``User-Agent`` and a timeout;
- is retried per ``RetryPolicy`` on 408/429/5xx and network errors/timeouts (401/403 never);
- is counted in ``client.stats`` (per endpoint template, e.g. ``"POST /v1/dataset/{id}/fetch"``).

Login is lazy: the first call that needs the data plane logs in. Constructing a client makes no
network call.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

import httpx

from ..settings import ApiSettings
from .errors import (
    AuthError,
    BraintrustError,
    NotFoundError,
    PayloadTooLargeError,
    TransportError,
    error_from_response,
    redact,
)
from .retry import RetryPolicy

log = logging.getLogger(__name__)

LOCAL_BASE_URL = "http://braintrust.local"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_PAGE_SIZE = 1000  # /btql and /fetch never return more than 1000 rows per page
LOGS3_MAX_ROWS = 1000
LOGS3_MAX_BYTES = 3 * 1024 * 1024  # bt: half of the 6 MiB default request size
LOGS3_API_VERSION = 2
# Keys that route a /logs3 row to its object (braintrust/db_fields.py OBJECT_ID_KEYS).
OBJECT_ID_KEYS = ("dataset_id", "experiment_id", "project_id", "prompt_session_id")


def _default_user_agent() -> str:
    try:
        from importlib.metadata import version

        ours = version("bt-dagster")
    except Exception:
        ours = "0"
    return f"bt-dagster/{ours} httpx/{httpx.__version__}"


DEFAULT_USER_AGENT = _default_user_agent()


def _q(value: str) -> str:
    """Quote one path segment (ids are uuids, but never trust that)."""
    return quote(str(value), safe="")


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


@dataclass
class ClientStats:
    """Counters for one client. Every HTTP attempt counts as a request (retries included).

    - ``requests``: total HTTP requests sent
    - ``requests_by_endpoint``: ``{"POST /logs3": 3, "POST /btql": 5, ...}`` (ids templated as ``{id}``)
    - ``retries``: attempts that were a retry of a failed one
    - ``bytes_sent`` / ``bytes_received``: request / response body bytes
    - ``rows_sent``: rows accepted by /logs3 and /v1/dataset/{id}/insert
    - ``errors``: requests that ended in an exception raised to the caller
    """

    requests: int = 0
    requests_by_endpoint: Counter = field(default_factory=Counter)
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    rows_sent: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _count_request(self, endpoint: str, nbytes: int, *, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            self.requests_by_endpoint[endpoint] += 1
            self.bytes_sent += nbytes
            if retry:
                self.retries += 1

    def _add(self, name: str, amount: int) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, Any]:
        """A plain-JSON copy, e.g. for Dagster metadata."""
        with self._lock:
            return {
                "requests": self.requests,
                "requests_by_endpoint": dict(sorted(self.requests_by_endpoint.items())),
                "retries": self.retries,
                "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received,
                "rows_sent": self.rows_sent,
                "errors": self.errors,
            }

    def since(self, before: Mapping[str, Any]) -> dict[str, Any]:
        """Counters accumulated since an earlier ``snapshot()``."""
        now = self.snapshot()
        out: dict[str, Any] = {k: now[k] - before.get(k, 0) for k in now if k != "requests_by_endpoint"}
        prev = before.get("requests_by_endpoint", {})
        out["requests_by_endpoint"] = {
            k: v - prev.get(k, 0) for k, v in now["requests_by_endpoint"].items() if v - prev.get(k, 0)
        }
        return out

    def reset(self) -> None:
        with self._lock:
            self.requests = self.retries = self.bytes_sent = self.bytes_received = 0
            self.rows_sent = self.errors = 0
            self.requests_by_endpoint = Counter()


class BraintrustClient:
    """Braintrust REST client over one ``httpx.Client``.

    ``transport``/``base_url``: the local in-process plane passes an httpx transport and a base URL
    (e.g. ``http://braintrust.local``); with ``base_url`` both the app URL and the API URL are that
    URL. Without them, the app URL comes from settings and the API URL from ``BRAINTRUST_API_URL``,
    else from the org chosen at login.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        user_agent: str = DEFAULT_USER_AGENT,
        max_rows: int = LOGS3_MAX_ROWS,
        max_bytes: int = LOGS3_MAX_BYTES,
    ) -> None:
        if not 1 <= max_rows <= LOGS3_MAX_ROWS:
            raise ValueError(f"max_rows must be between 1 and {LOGS3_MAX_ROWS}")
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.settings = settings
        self.retry = retry
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.stats = ClientStats()

        if base_url is None and settings.plane == "local":
            base_url = settings.api_url or (LOCAL_BASE_URL if transport is not None else None)
            if base_url is None:
                raise ValueError(
                    "the local data plane needs an httpx transport or a base_url "
                    "(set BRAINTRUST_API_URL to a served local plane, or BRAINTRUST_API_KEY for real Braintrust)"
                )
        self._base_url = base_url.rstrip("/") if base_url else None
        self._app_url = self._base_url or settings.app_url
        self._api_url: str | None = self._base_url or settings.api_url
        self._org: dict[str, Any] | None = None
        self._org_name: str | None = settings.org_name
        self._login_lock = threading.Lock()

        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent},
            follow_redirects=False,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (and the transport, as httpx does)."""
        self._http.close()

    def __enter__(self) -> BraintrustClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BraintrustClient(plane={self.plane!r}, app_url={self._app_url!r}, "
            f"api_url={self._api_url!r}, org_name={self._org_name!r})"
        )

    # -- identity ----------------------------------------------------------------------------

    @property
    def plane(self) -> str:
        return self.settings.plane

    @property
    def app_url(self) -> str:
        return self._app_url

    @property
    def api_url(self) -> str:
        """The data-plane URL (logs in first if it is learned from login)."""
        self._ensure_login()
        assert self._api_url is not None
        return self._api_url

    @property
    def org_name(self) -> str | None:
        self._ensure_login()
        return self._org_name

    @property
    def org_id(self) -> str | None:
        self._ensure_login()
        return self._org.get("id") if self._org else None

    def describe(self) -> str:
        """Which plane this client talks to, for UIs and logs (no network call, never the key)."""
        if self.plane == "local":
            return f"local data plane at {self._app_url}"
        return self.settings.describe()

    # -- login -------------------------------------------------------------------------------

    def login(self) -> dict:
        """POST {app_url}/api/apikey/login; pick the org by name (or the first); learn api_url.

        Returns the chosen org (``{"id", "name", "api_url", ...}``).
        """
        with self._login_lock:
            return self._login()

    def _ensure_login(self) -> None:
        if self._org is None:
            with self._login_lock:
                if self._org is None:
                    self._login()

    def _login(self) -> dict:
        endpoint = "POST /api/apikey/login"
        try:
            response = self._send("POST", f"{self._app_url}/api/apikey/login", endpoint=endpoint)
        except NotFoundError:
            if self.plane != "local":
                raise
            # A local plane without a login route: one synthetic org.
            org = {"id": None, "name": self.settings.org_name or "local", "api_url": self._base_url}
        else:
            body = self._decode(response, endpoint)
            orgs = body.get("org_info") if isinstance(body, dict) else None
            if not isinstance(orgs, list):
                raise BraintrustError(
                    f"{endpoint} returned no org_info list; is {self._app_url} a Braintrust app URL? "
                    "(check BRAINTRUST_APP_URL)",
                    endpoint=endpoint,
                    status=response.status_code,
                )
            org = self._select_org([o for o in orgs if isinstance(o, dict)], endpoint)
        if self._base_url is None and self._api_url is None:
            api_url = org.get("api_url")
            if not isinstance(api_url, str) or not api_url:
                raise BraintrustError(
                    f"{endpoint}: organization {org.get('name')!r} has no api_url; set BRAINTRUST_API_URL",
                    endpoint=endpoint,
                )
            self._api_url = api_url.rstrip("/")
        self._org = org
        self._org_name = org.get("name") or self._org_name
        log.info("Logged in to %s as org %r (data plane %s)", self._app_url, self._org_name, self._api_url)
        return dict(org)

    def _select_org(self, orgs: list[dict], endpoint: str) -> dict:
        wanted = self.settings.org_name
        if not orgs:
            raise AuthError(
                f"{endpoint}: this API key is not part of any organization. "
                "Fix: use a key from an organization member, or unset BRAINTRUST_API_KEY for the local plane.",
                endpoint=endpoint,
            )
        if wanted is None:
            return orgs[0]
        for org in orgs:
            if org.get("name") == wanted:
                return org
        names = ", ".join(repr(o.get("name")) for o in orgs)
        raise AuthError(
            f"{endpoint}: organization {wanted!r} (BRAINTRUST_ORG_NAME) is not available to this API key; "
            f"it can use {names}. Fix: set BRAINTRUST_ORG_NAME to one of them.",
            endpoint=endpoint,
        )

    # -- projects ----------------------------------------------------------------------------

    def get_project(self, name: str | None = None, id: str | None = None) -> dict | None:
        """A project by id (``GET /v1/project/{id}``) or exact name (``GET /v1/project?project_name=``).

        None when it does not exist.
        """
        if id is not None:
            try:
                return self.get_project_by_id(id)
            except NotFoundError:
                return None
        if not name:
            raise ValueError("get_project needs a name or an id")
        params = {"project_name": name}
        if self.org_name:
            params["org_name"] = self.org_name
        body = self._get_json("/v1/project", endpoint="GET /v1/project", params=params)
        for project in body.get("objects") or []:
            if project.get("name") == name:
                return project
        return None

    def get_project_by_id(self, project_id: str) -> dict:
        """``GET /v1/project/{id}``; NotFoundError names the id."""
        return self._get_json(
            f"/v1/project/{_q(project_id)}", endpoint="GET /v1/project/{id}", what=f"project id {project_id!r}"
        )

    def ensure_project(self, name: str) -> dict:
        """Create-or-get by name (``POST /v1/project``; an existing project is returned unchanged)."""
        if not name:
            raise ValueError("project name must not be empty")
        payload: dict[str, Any] = {"name": name}
        if self.org_name:
            payload["org_name"] = self.org_name
        return self._post_json("/v1/project", payload, endpoint="POST /v1/project")

    def _list_all(self, path: str, params: dict[str, Any] | None = None, *, page_size: int = 100) -> list[dict]:
        """Every object of a ``/v1`` list route, paged with ``limit`` / ``starting_after`` (newest first).

        Stops on a short page, and on a page that repeats an id (a server that ignores the cursor)."""
        params = {**(params or {}), "limit": page_size}
        if self.org_name:
            params["org_name"] = self.org_name
        out: list[dict] = []
        seen: set[str] = set()
        while True:
            page = self._get_json(path, endpoint=f"GET {path}", params=params).get("objects") or []
            fresh = [obj for obj in page if obj.get("id") not in seen]
            out.extend(fresh)
            seen.update(obj.get("id") for obj in fresh)
            if len(page) != page_size or len(fresh) < len(page) or not page[-1].get("id"):
                return out
            params["starting_after"] = page[-1]["id"]

    def list_projects(self) -> list[dict]:
        """Every project of the org (``GET /v1/project``, paged)."""
        return self._list_all("/v1/project")

    # -- project automations -----------------------------------------------------------------

    def list_project_automations(self, project_id: str | None = None, name: str | None = None) -> list[dict]:
        """``GET /v1/project_automation`` (filtered by ``project_id`` / ``project_automation_name``)."""
        params: dict[str, Any] = {}
        if project_id:
            params["project_id"] = project_id
        if name:
            params["project_automation_name"] = name
        found = self._list_all("/v1/project_automation", params)
        # Filter again: a server that ignores a parameter must not hand us another project's automation.
        return [a for a in found if (not project_id or a.get("project_id") == project_id) and (not name or a.get("name") == name)]

    def create_project_automation(
        self, project_id: str, name: str, config: Mapping[str, Any], description: str | None = None
    ) -> dict:
        """``POST /v1/project_automation`` ``{project_id, name, description, config}``."""
        payload: dict[str, Any] = {"project_id": project_id, "name": name, "config": dict(config)}
        if description is not None:
            payload["description"] = description
        return self._post_json("/v1/project_automation", payload, endpoint="POST /v1/project_automation")

    def patch_project_automation(self, automation_id: str, patch: Mapping[str, Any]) -> dict:
        """``PATCH /v1/project_automation/{id}`` (e.g. ``{"config": ..., "description": ...}``)."""
        return self._request_json(
            "PATCH", f"/v1/project_automation/{_q(automation_id)}", dict(patch),
            endpoint="PATCH /v1/project_automation/{id}", what=f"project automation id {automation_id!r}",
        )

    def purge_deleted(self, object_type: str, object_id: str, *, before: str) -> dict:
        """The local plane's ``POST /local/{project_logs|dataset}/{id}/purge`` (not Braintrust's API:
        Braintrust purges deleted rows on its side): every stored version of the object's deleted
        rows created before ``before`` is removed and the file shrinks."""
        return self._post_json(
            f"/local/{_q(object_type)}/{_q(object_id)}/purge", {"before": before},
            endpoint="POST /local/{object_type}/{id}/purge",
        )

    def purge_experiment(self, experiment_id: str) -> dict:
        """The local plane's ``POST /local/experiment/{id}/purge``: every stored row of a deleted
        experiment is removed and the file shrinks (Braintrust purges deleted experiments itself)."""
        return self._post_json(
            f"/local/experiment/{_q(experiment_id)}/purge", {}, endpoint="POST /local/experiment/{id}/purge",
            what=f"experiment id {experiment_id!r}",
        )

    # -- experiments -------------------------------------------------------------------------

    def list_experiments(self, project_id: str, name: str | None = None) -> list[dict]:
        """The project's experiments, newest first (``GET /v1/experiment?project_id=``)."""
        params = {"project_id": project_id}
        if name is not None:
            params["experiment_name"] = name
        return [e for e in self._list_all("/v1/experiment", params) if e.get("project_id", project_id) == project_id]

    def find_experiment(self, project_id: str, name: str) -> dict | None:
        """The experiment named ``name`` in the project, or None."""
        return next((e for e in self.list_experiments(project_id, name) if e.get("name") == name), None)

    def get_experiment(self, experiment_id: str) -> dict:
        """``GET /v1/experiment/{id}``; NotFoundError names the id."""
        return self._get_json(
            f"/v1/experiment/{_q(experiment_id)}", endpoint="GET /v1/experiment/{id}", what=f"experiment id {experiment_id!r}"
        )

    def delete_experiment(self, experiment_id: str) -> dict:
        """``DELETE /v1/experiment/{id}``: the whole experiment (its metadata and rows)."""
        return self._request_json(
            "DELETE", f"/v1/experiment/{_q(experiment_id)}", None, endpoint="DELETE /v1/experiment/{id}",
            what=f"experiment id {experiment_id!r}",
        )

    # -- datasets ----------------------------------------------------------------------------

    def find_dataset(self, project_id: str, name: str) -> dict | None:
        """The dataset named ``name`` in the project, or None (``GET /v1/dataset``)."""
        params = {"project_id": project_id, "dataset_name": name}
        if self.org_name:
            params["org_name"] = self.org_name
        body = self._get_json("/v1/dataset", endpoint="GET /v1/dataset", params=params)
        for dataset in body.get("objects") or []:
            if dataset.get("name") == name and dataset.get("project_id", project_id) == project_id:
                return dataset
        return None

    def ensure_dataset(
        self,
        project_id: str,
        name: str,
        description: str | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """Create-or-get by (project, name) (``POST /v1/dataset``)."""
        if not name:
            raise ValueError("dataset name must not be empty")
        payload: dict[str, Any] = {"project_id": project_id, "name": name}
        if description is not None:
            payload["description"] = description
        if metadata is not None:
            payload["metadata"] = metadata
        return self._post_json("/v1/dataset", payload, endpoint="POST /v1/dataset", what=f"project id {project_id!r}")

    def get_dataset(self, dataset_id: str) -> dict:
        """``GET /v1/dataset/{id}``; NotFoundError names the id."""
        return self._get_json(
            f"/v1/dataset/{_q(dataset_id)}", endpoint="GET /v1/dataset/{id}", what=f"dataset id {dataset_id!r}"
        )

    def list_datasets(self, project_id: str) -> list[dict]:
        """Every dataset of the project (``GET /v1/dataset?project_id=``, paged), newest first."""
        return self._list_all("/v1/dataset", {"project_id": project_id})

    def replace_dataset_metadata(self, dataset_id: str, metadata: Mapping[str, Any]) -> dict:
        """``PATCH /v1/dataset/{id}`` with ``{"metadata": ...}``. Braintrust deep-merges object fields
        and cannot remove keys; the local plane does the same."""
        return self._request_json(
            "PATCH", f"/v1/dataset/{_q(dataset_id)}", {"metadata": dict(metadata)},
            endpoint="PATCH /v1/dataset/{id}", what=f"dataset id {dataset_id!r}",
        )

    def delete_dataset(self, dataset_id: str) -> dict:
        """``DELETE /v1/dataset/{id}``."""
        return self._request_json(
            "DELETE", f"/v1/dataset/{_q(dataset_id)}", None, endpoint="DELETE /v1/dataset/{id}", what=f"dataset id {dataset_id!r}"
        )

    def list_dataset_snapshots(self, dataset_id: str) -> list[dict]:
        """The dataset's snapshots, newest first (``GET /v1/dataset_snapshot?dataset_id=``)."""
        body = self._get_json("/v1/dataset_snapshot", endpoint="GET /v1/dataset_snapshot", params={"dataset_id": dataset_id})
        return body.get("objects") or []

    def create_dataset_snapshot(
        self, dataset_id: str, name: str, xact_id: str, description: str | None = None
    ) -> tuple[dict, bool]:
        """``POST /v1/dataset_snapshot``: (snapshot, found_existing), the latter from ``x-bt-found-existing``."""
        payload: dict[str, Any] = {"dataset_id": dataset_id, "name": name, "xact_id": str(xact_id)}
        if description is not None:
            payload["description"] = description
        self._ensure_login()
        response = self._send("POST", f"{self._api_url}/v1/dataset_snapshot", endpoint="POST /v1/dataset_snapshot",
                              json_body=payload, what=f"dataset id {dataset_id!r}")
        found = response.headers.get("x-bt-found-existing", "").lower() == "true"
        return self._decode(response, "POST /v1/dataset_snapshot"), found

    def delete_dataset_snapshot(self, snapshot_id: str) -> dict:
        return self._request_json(
            "DELETE", f"/v1/dataset_snapshot/{_q(snapshot_id)}", None,
            endpoint="DELETE /v1/dataset_snapshot/{id}", what=f"snapshot id {snapshot_id!r}",
        )

    def restore_dataset_preview(self, dataset_id: str, version: str) -> dict:
        """``POST /v1/dataset/{id}/restore/preview`` -> ``{rows_to_restore, rows_to_delete}``."""
        return self._post_json(f"/v1/dataset/{_q(dataset_id)}/restore/preview", {"version": str(version)},
                               endpoint="POST /v1/dataset/{id}/restore/preview", what=f"dataset id {dataset_id!r}")

    def restore_dataset(self, dataset_id: str, version: str) -> dict:
        """``POST /v1/dataset/{id}/restore`` -> ``{xact_id, rows_restored, rows_deleted}``."""
        return self._post_json(f"/v1/dataset/{_q(dataset_id)}/restore", {"version": str(version)},
                               endpoint="POST /v1/dataset/{id}/restore", what=f"dataset id {dataset_id!r}")

    def dataset_history(self, dataset_id: str) -> list[dict]:
        """Every version of the dataset with its counts: the local plane's ``GET /local/dataset/{id}/versions``.
        Braintrust's API has no such listing: there this raises NotFoundError."""
        body = self._get_json(f"/local/dataset/{_q(dataset_id)}/versions", endpoint="GET /local/dataset/{id}/versions",
                              what=f"dataset id {dataset_id!r}")
        return body.get("versions") or []

    def insert_dataset_events(self, dataset_id: str, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """``POST /v1/dataset/{id}/insert`` in batches of ``max_rows``; returns the row ids in order.

        Events without an ``id`` get a uuid4 here, so a retried request cannot duplicate rows.
        """
        row_ids: list[str] = []
        batch: list[dict] = []

        def flush() -> None:
            body = self._post_json(
                f"/v1/dataset/{_q(dataset_id)}/insert",
                {"events": batch},
                endpoint="POST /v1/dataset/{id}/insert",
                what=f"dataset id {dataset_id!r}",
            )
            row_ids.extend(body.get("row_ids") or [])
            self.stats._add("rows_sent", len(batch))
            batch.clear()

        for event in events:
            event = dict(event)
            if event.get("id") is None:
                event["id"] = str(uuid.uuid4())
            batch.append(event)
            if len(batch) >= self.max_rows:
                flush()
        if batch:
            flush()
        return row_ids

    def fetch_dataset(
        self, dataset_id: str, *, version: str | int | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict]:
        """Stream a dataset's rows (``POST /v1/dataset/{id}/fetch``), following ``cursor``.

        ``version`` pins a dataset version (an ``_xact_id``); None reads the head.
        """
        limit = _page_limit(page_size)
        payload: dict[str, Any] = {"limit": limit}
        if version is not None:
            payload["version"] = str(version)
        path = f"/v1/dataset/{_q(dataset_id)}/fetch"
        previous: str | None = None
        while True:
            body = self._post_json(
                path, payload, endpoint="POST /v1/dataset/{id}/fetch", what=f"dataset id {dataset_id!r}"
            )
            events = body.get("events") or []
            yield from events
            cursor = body.get("cursor")
            if not events or not cursor:
                return
            _check_cursor(cursor, previous, "POST /v1/dataset/{id}/fetch")
            previous = payload["cursor"] = cursor

    def dataset_url(self, project_name: str, dataset_name: str) -> str:
        """``{app_url}/app/{org}/p/{project}/datasets/{dataset}``, each segment URL-quoted."""
        org = self.org_name or ""
        return f"{self._app_url}/app/{_q(org)}/p/{_q(project_name)}/datasets/{_q(dataset_name)}"

    # -- BTQL --------------------------------------------------------------------------------

    def btql(self, query: dict | str, *, fmt: str = "json", **options: Any) -> dict:
        """One ``POST /btql`` page: ``{"data": [...], "cursor": ..., "schema": ...}``.

        ``options`` go into the body as is (``query_source``, ``version``, ``tz_offset``,
        ``use_columnstore``, ``brainstore_realtime``...). ``fmt`` is ``"json"`` or ``"jsonl"`` (jsonl
        lines are parsed into ``data``; the cursor then comes from the ``x-bt-cursor`` header).
        For parquet use ``btql_bytes``. A 400 raises BadRequestError carrying the server's message
        (e.g. the filter error).
        """
        if fmt not in ("json", "jsonl"):
            raise ValueError(f"btql() returns parsed rows for fmt 'json' or 'jsonl'; use btql_bytes() for {fmt!r}")
        content, header_cursor = self.btql_bytes(query, fmt=fmt, **options)
        endpoint = "POST /btql"
        if fmt == "jsonl":
            try:
                data = [json.loads(line) for line in content.splitlines() if line.strip()]
            except ValueError as exc:
                raise BraintrustError(f"{endpoint} returned invalid JSONL: {exc}", endpoint=endpoint) from None
            return {"data": data, "cursor": header_cursor}
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            raise BraintrustError(
                f"{endpoint} returned a non-JSON body ({len(content)} bytes)", endpoint=endpoint
            ) from None
        if not isinstance(body, dict):
            raise BraintrustError(f"{endpoint} returned {type(body).__name__}, expected an object", endpoint=endpoint)
        if not body.get("cursor") and header_cursor:
            body["cursor"] = header_cursor
        return body

    def btql_bytes(self, query: dict | str, *, fmt: str = "json", **options: Any) -> tuple[bytes, str | None]:
        """One raw ``POST /btql`` page (any fmt, e.g. parquet): ``(body bytes, x-bt-cursor header)``.

        Follows the hosted service's 303 redirect to a signed URL (fetched without credentials).
        """
        self._ensure_login()
        payload = {"query": query, "fmt": fmt, **options}
        response = self._send("POST", f"{self._api_url}/btql", endpoint="POST /btql", json_body=payload)
        cursor = response.headers.get("x-bt-cursor") or None
        if response.status_code in (301, 302, 303, 307, 308) and response.headers.get("location"):
            location = str(response.url.join(response.headers["location"]))
            redirected = self._send("GET", location, endpoint="GET <btql result url>", auth=False)
            return redirected.content, cursor or redirected.headers.get("x-bt-cursor") or None
        return response.content, cursor

    def iter_btql_pages(
        self,
        query: dict,
        *,
        page_size: int | Callable[[], int] = MAX_PAGE_SIZE,
        max_rows: int | None = None,
        on_page: Callable[[int], None] | None = None,
        **options: Any,
    ) -> Iterator[list[dict]]:
        """Yield the rows of each page of a JSON-AST query, following ``cursor``.

        Sets ``query["limit"]`` (``min(page_size, 1000)``, and no more than what is left of
        ``max_rows``) and ``query["cursor"]`` on a copy; the caller's dict is not modified.
        ``page_size`` may be a callable, asked before each page (bt's span-scope discovery shrinks
        the page to what its ``--limit`` leaves). ``on_page(rows)`` is called after every request,
        empty pages included, so a stage can count its own requests. Stops on an empty page, an
        absent/empty cursor, or once ``max_rows`` rows were yielded. Empty pages are not yielded.
        """
        if not isinstance(query, dict):
            raise TypeError("iter_btql_pages pages a JSON-AST query (a dict); SQL text cannot be paged here")
        if max_rows is not None and max_rows < 1:
            return
        q = dict(query)
        q.pop("cursor", None)
        remaining = max_rows
        previous: str | None = None
        while True:
            limit = _page_limit(page_size() if callable(page_size) else page_size)
            q["limit"] = limit if remaining is None else min(limit, remaining)
            body = self.btql(q, **options)
            rows = body.get("data") or []
            if remaining is not None:
                rows = rows[:remaining]
                remaining -= len(rows)
            if on_page is not None:
                on_page(len(rows))
            if rows:
                yield rows
            cursor = body.get("cursor")
            if not rows or not cursor or remaining == 0:
                return
            _check_cursor(cursor, previous, "POST /btql")
            previous = q["cursor"] = cursor

    # -- bulk write: /logs3 ------------------------------------------------------------------

    def insert_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write rows through ``POST /logs3`` ``{"rows": [...], "api_version": 2}``.

        Each row must carry its object id key: ``dataset_id`` (dataset rows), or ``project_id`` with
        ``log_id: "g"`` (project logs), or ``experiment_id``. Rows are sent in order, in batches of at
        most ``max_rows`` rows and ``max_bytes`` bytes; the iterable is consumed lazily (memory stays
        flat). A row without ``id`` gets a uuid4, so a retried request upserts instead of duplicating.
        On 413 the batch is halved recursively; a single row that is still too large raises
        PayloadTooLargeError naming the row id and its size.
        """
        self._ensure_login()
        parts: list[bytes] = []
        ids: list[str] = []
        size = 0
        for index, row in enumerate(rows):
            row_id, encoded = _encode_row(row, index)
            if parts and (len(parts) >= self.max_rows or size + len(encoded) + 1 > self._logs3_row_budget):
                self._send_logs3(parts, ids)
                parts, ids, size = [], [], 0
            parts.append(encoded)
            ids.append(row_id)
            size += len(encoded) + 1
        if parts:
            self._send_logs3(parts, ids)

    def insert_encoded_rows(self, parts: list[bytes], ids: list[str]) -> None:
        """One ``POST /logs3`` of rows the caller already encoded as compact JSON objects (each with
        its ``id`` and object id key), so a pusher that sized its batch by the bytes does not encode
        them twice. A 413 halves the batch, as in :meth:`insert_rows`."""
        self._ensure_login()
        self._send_logs3(parts, ids)

    @property
    def _logs3_row_budget(self) -> int:
        return self.max_bytes - len(_LOGS3_HEAD) - len(_LOGS3_TAIL)

    def _send_logs3(self, parts: list[bytes], ids: list[str]) -> None:
        body = _LOGS3_HEAD + b",".join(parts) + _LOGS3_TAIL
        try:
            self._send("POST", f"{self._api_url}/logs3", endpoint="POST /logs3", content=body)
        except PayloadTooLargeError as exc:
            if len(parts) == 1:
                raise PayloadTooLargeError(
                    f"POST /logs3: row {ids[0]!r} is too large to upload ({len(parts[0])} bytes as JSON; "
                    f"the server rejected it with 413). Shrink the row (large inputs belong in attachments).",
                    endpoint=exc.endpoint,
                    status=exc.status,
                    server_message=exc.server_message,
                ) from None
            half = len(parts) // 2
            log.info("POST /logs3 returned 413 for %d rows; splitting into %d + %d", len(parts), half, len(parts) - half)
            self._send_logs3(parts[:half], ids[:half])
            self._send_logs3(parts[half:], ids[half:])
            return
        self.stats._add("rows_sent", len(parts))

    # -- plumbing ----------------------------------------------------------------------------

    def _get_json(self, path: str, *, endpoint: str, params: dict | None = None, what: str | None = None) -> dict:
        self._ensure_login()
        response = self._send("GET", f"{self._api_url}{path}", endpoint=endpoint, params=params, what=what)
        return self._decode(response, endpoint)

    def _post_json(self, path: str, payload: Any, *, endpoint: str, what: str | None = None) -> dict:
        return self._request_json("POST", path, payload, endpoint=endpoint, what=what)

    def _request_json(self, method: str, path: str, payload: Any, *, endpoint: str, what: str | None = None) -> dict:
        self._ensure_login()
        response = self._send(method, f"{self._api_url}{path}", endpoint=endpoint, json_body=payload, what=what)
        return self._decode(response, endpoint)

    def _decode(self, response: httpx.Response, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise BraintrustError(
                f"{endpoint} returned a non-JSON body (status {response.status_code}, "
                f"{len(response.content)} bytes): {redact(response.text[:200], self.settings.api_key)!r}",
                endpoint=endpoint,
                status=response.status_code,
            ) from None

    def _headers(self, auth: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        if auth:
            if self.settings.api_key:
                headers["Authorization"] = f"Bearer {self.settings.api_key}"
            if self._org_name:
                headers["x-bt-org-name"] = self._org_name
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict | None = None,
        what: str | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request with retries; return a response with status < 400 or raise a BraintrustError.

        ``endpoint`` is the stats key / error label (``"POST /v1/dataset/{id}/fetch"``); error
        messages show the concrete method and path.
        """
        headers = self._headers(auth)
        if json_body is not None:
            content = _json_bytes(json_body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(method, url, content=content, params=params, headers=headers)
        label = f"{method} {request.url.path}"
        nbytes = len(content) if content is not None else 0
        policy = self.retry
        started = policy.clock()
        attempt = 0
        while True:
            attempt += 1
            self.stats._count_request(endpoint, nbytes, retry=attempt > 1)
            try:
                response = self._http.send(request)
            except httpx.HTTPError as exc:
                cause = f"{type(exc).__name__}: {redact(str(exc), self.settings.api_key) or 'no detail'}"
                retryable = policy.is_retryable_exception(exc)
                delay = policy.delay(attempt) if retryable else 0.0
                if retryable and policy.allows(attempt, started, delay):
                    log.warning(
                        "%s failed (%s); retrying in %.2f s (attempt %d/%d)",
                        label, cause, delay, attempt + 1, policy.max_attempts,
                    )
                    policy.sleep(delay)
                    continue
                self.stats._add("errors", 1)
                tries = f" after {attempt} attempt{'s' if attempt > 1 else ''}" if retryable else ""
                raise TransportError(
                    f"{label}: could not get a response from {request.url.scheme}://{request.url.netloc.decode()}"
                    f"{tries} ({cause})",
                    endpoint=label,
                ) from None

            self.stats._add("bytes_received", len(response.content))
            status = response.status_code
            if status < 400:
                return response
            retry_after = policy.parse_retry_after(response.headers.get("retry-after"))
            if policy.is_retryable_status(status):
                delay = policy.delay(attempt, retry_after)
                if policy.allows(attempt, started, delay):
                    log.warning(
                        "%s returned %d; retrying in %.2f s (attempt %d/%d)",
                        label, status, delay, attempt + 1, policy.max_attempts,
                    )
                    policy.sleep(delay)
                    continue
                note = f"gave up after {attempt} attempt{'s' if attempt > 1 else ''}"
                if retry_after is not None and attempt < policy.max_attempts:
                    note += f"; Retry-After {retry_after:g} s exceeds the retry budget"
            else:
                note = None
            self.stats._add("errors", 1)
            raise error_from_response(
                response, label, what=what, api_key=self.settings.api_key, retry_after=retry_after, note=note
            )


_LOGS3_HEAD = b'{"rows":['
_LOGS3_TAIL = b'],"api_version":%d}' % LOGS3_API_VERSION


def _encode_row(row: Mapping[str, Any], index: int) -> tuple[str, bytes]:
    """Validate one /logs3 row and encode it; returns (row id, JSON bytes)."""
    if not isinstance(row, Mapping):
        raise TypeError(f"row #{index} is a {type(row).__name__}, not a dict")
    row_id = row.get("id")
    if not any(row.get(key) for key in OBJECT_ID_KEYS):
        raise ValueError(
            f"row #{index} (id {row_id!r}) names no target object: set dataset_id, "
            f"or project_id with log_id 'g', or experiment_id"
        )
    if row.get("project_id") and not row.get("dataset_id") and not row.get("experiment_id") and not row.get("log_id"):
        raise ValueError(f"row #{index} (id {row_id!r}) has project_id but no log_id; project log rows need log_id 'g'")
    if row_id is None:
        row = {**row, "id": str(uuid.uuid4())}
        row_id = row["id"]
    elif not isinstance(row, dict):
        row = dict(row)
    try:
        encoded = _json_bytes(row)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"row #{index} (id {row_id!r}) is not valid JSON: {exc}") from None
    return str(row_id), encoded


def _page_limit(page_size: int) -> int:
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    return min(page_size, MAX_PAGE_SIZE)


def _check_cursor(cursor: str, previous: str | None, endpoint: str) -> None:
    if cursor == previous:
        raise BraintrustError(f"{endpoint} returned the same cursor twice ({cursor!r}); stopping to avoid a loop",
                              endpoint=endpoint)


__all__ = [
    "BraintrustClient",
    "ClientStats",
    "DEFAULT_TIMEOUT",
    "LOCAL_BASE_URL",
    "LOGS3_MAX_BYTES",
    "LOGS3_MAX_ROWS",
    "MAX_PAGE_SIZE",
]
