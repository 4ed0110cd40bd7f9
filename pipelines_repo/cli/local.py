"""`bt-dagster local serve|seed`: run and fill the Braintrust-compatible local data plane."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx

from ..settings import local_db_path


def register(commands: argparse._SubParsersAction) -> None:
    local = commands.add_parser("local", help="the embedded Braintrust-compatible data plane")
    sub = local.add_subparsers(dest="local_command", required=True, metavar="SUBCOMMAND")

    serve = sub.add_parser("serve", help="serve the local plane over HTTP (loopback by default)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--db", type=Path, help="SQLite file (default $BT_LOCAL_DB or $DAGSTER_HOME/braintrust-local.db)")
    serve.add_argument("--api-key", help="Bearer key clients must send (default $BT_LOCAL_API_KEY, else generated)")
    serve.add_argument("--faults", help="inject faults for resilience tests, e.g. 429=0.1,500=0.05,slow=0.1")
    serve.add_argument("--read-workers", type=int, default=1, metavar="N",
                       help="reader processes answering /btql beside the server's own (default 1; 0: answer "
                            "queries in the server's threads)")
    serve.add_argument("--latency-ms", type=float, default=0.0, metavar="N",
                       help="remote-like: delay every response (but /local/*) by N ms (default 0: none)")
    serve.add_argument("--btql-rate-limit", type=int, metavar="R",
                       help="remote-like: above R POST /btql a minute answer 429 with Retry-After "
                            "(Braintrust's lower plans allow about 20)")
    serve.add_argument("--btql-rate-window-s", type=float, default=60.0, help=argparse.SUPPRESS)  # tests
    serve.set_defaults(handler=_serve)

    seed = sub.add_parser("seed", help="write deterministic demo logs into a project")
    seed.add_argument("--project", default="Customer Support")
    seed.add_argument("--days", type=int, default=30)
    seed.add_argument("--spans-per-day", type=int, default=200)
    seed.add_argument("--seed", type=int, default=7)
    seed.add_argument("--db", type=Path, help="SQLite file (default $BT_LOCAL_DB or $DAGSTER_HOME/braintrust-local.db)")
    seed.add_argument("--otel-traces", type=int, default=3, metavar="N",
                      help="also send N traces as OTLP payloads through /otel/v1/traces (default 3; 0 for none)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when the project already has logs")
    seed.add_argument("--json", action="store_true", help="print the result as JSON")
    seed.set_defaults(handler=_seed)


def _serve(args: argparse.Namespace) -> int:
    from ..local.faults import Faults
    from ..local.remote_like import RemoteLike
    from ..local.server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding {args.host}, which is reachable beyond this machine", file=sys.stderr)
    faults = Faults.parse(args.faults) if args.faults else None
    try:
        remote = RemoteLike(args.latency_ms, args.btql_rate_limit, args.btql_rate_window_s)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.read_workers < 0:
        print("error: --read-workers must be 0 or more (0 answers queries in the server's own threads)", file=sys.stderr)
        return 2
    serve(args.db or local_db_path(), host=args.host, port=args.port, api_key=args.api_key, faults=faults,
          remote_like=remote, read_workers=args.read_workers)
    return 0


def _seed(args: argparse.Namespace) -> int:
    from ..local.seed import seed_demo_logs
    from ..local.transport import InProcessTransport

    db = args.db or local_db_path()
    transport = InProcessTransport(db)
    with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL, timeout=120) as http:
        if args.if_empty:
            existing = http.get("/v1/project", params={"project_name": args.project}).json()["objects"]
            if existing and transport.store.count_rows("project", existing[0]["id"]) > 0:
                print(f"Project {args.project!r} already has logs in {db}; not seeding.", file=sys.stderr)
                return 0
        result = seed_demo_logs(http, args.project, days=args.days, spans_per_day=args.spans_per_day, seed=args.seed,
                                otel_traces=args.otel_traces)
    if args.json:
        print(json.dumps(result.__dict__, sort_keys=True))
    else:
        print(
            f"Seeded {result.spans} spans in {result.traces} traces ({result.comments} comments) over {args.days} days "
            f"into project {result.project_name!r} ({result.project_id}) in {db}"
            + (f", and {result.otel_spans} spans in {result.otel_traces} traces through OTLP" if result.otel_traces else ""),
            file=sys.stderr,
        )
    return 0
