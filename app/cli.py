"""`gslb`: run the controller, or talk to a running one the way kubectl talks to an API server.

Secrets are read from the environment or files only (GSLB_API_TOKEN, GSLB_API_TOKEN_FILE), never from
arguments, so they cannot leak through `ps` or shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.domain.gslb import GROUP, GROUPS, NAME_RE, NAMESPACE_RE, VERSION


def _settings(args: argparse.Namespace) -> Any:
    from app.settings import load_settings

    overrides: dict[str, Any] = {}
    for flag, name in (
        ("api_address", "api_address"),
        ("dns_address", "dns_address"),
        ("data_dir", "gslb_data_dir"),
        ("services", "gslb_services_file"),
        ("geo_tag", "cluster_geo_tag"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "insecure", False):
        overrides["gslb_insecure"] = True
    return load_settings(**overrides)


#: A rule checked across settings whose message starts with one environment name: it is about that one.
_ONE_SETTING = re.compile(r"^[A-Z][A-Z0-9_]*: ")


def _settings_errors(exc: Any) -> list[str]:
    """A pydantic ValidationError of Settings, one message per setting, named as the environment names it."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            lines.append(f"invalid setting {str(error['loc'][0]).upper()}: {message}")
        elif _ONE_SETTING.match(message):  # checked with the others (OTLP endpoints, secret files)
            lines.append(f"invalid setting {message}")
        else:  # a rule across settings; the message names them
            lines.append(f"invalid settings: {message}")
    return lines


def _json_logs() -> bool:
    """LOG_FORMAT=json, read from the environment as it is: the settings may be what did not load."""
    return any(name.upper() == "LOG_FORMAT" and value == "json" for name, value in os.environ.items())


def _serve_errors(messages: list[str]) -> None:
    """Why `gslb serve` cannot go on: `error: ...` lines on stderr, or with LOG_FORMAT=json one error
    object per line in the log, as k8gb's main logs them through its logger."""
    if not _json_logs():
        for message in messages:
            print(f"error: {message}", file=sys.stderr)
        return
    from app.logformat import install

    install(logging.INFO, "json")
    for message in messages:
        logging.getLogger("pygslb").error("%s", message)


def cmd_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        settings = _settings(args)
    except ValidationError as exc:
        _serve_errors(_settings_errors(exc))
        return 2
    # Only now: importing the runtime imports OpenTelemetry's propagate module, which reads
    # OTEL_PROPAGATORS and raises on a name it cannot find; settings has checked it.
    from app.runtime import configure_logging, serve

    configure_logging(settings)
    for notice in settings.notices():
        logging.getLogger("pygslb.settings").warning("%s", notice)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop  # for this run only, not as the process-wide policy
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        pass
    from app.runtime import CannotStart, Stopped

    try:
        asyncio.run(serve(settings), loop_factory=loop_factory)
    except CannotStart as exc:  # a port taken, a file missing: the setup, not a crash
        _serve_errors([f"gslb serve cannot start: {exc}"])
        return 1
    except Stopped as exc:
        _serve_errors([f"gslb serve stopped: {exc}"])
        return 1
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    from app.domain.crds import crd_files, crds_yaml

    if args.split:
        target = Path(args.split)
        target.mkdir(parents=True, exist_ok=True)
        for name, text in crd_files().items():
            (target / name).write_text(text)
            print(target / name, file=sys.stderr)
    else:
        sys.stdout.write(crds_yaml())
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from app.api.openapi_doc import render_openapi
    from app.settings import load_settings

    sys.stdout.write(render_openapi(load_settings()))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the embedded store, safe while `gslb serve` runs (SQLite's online backup)."""
    from app.settings import Settings
    from app.stores.base import Unavailable
    from app.stores.sqlite import backup

    data_dir = Path(
        args.data_dir or os.environ.get("GSLB_DATA_DIR") or Settings.model_fields["gslb_data_dir"].default
    )
    try:
        copied = backup(data_dir, Path(args.destination))
    except (Unavailable, sqlite3.Error, OSError) as exc:
        raise CliError(f"backup failed: {exc}") from None
    print(f"{copied} Gslbs copied from {data_dir} to {args.destination}")
    return 0


def cmd_decommission(args: argparse.Namespace) -> int:
    """Withdraw a cluster from the edge delegation of the configured zones (app/decommission.py).
    Run with the same settings as `gslb serve`."""
    from pydantic import ValidationError

    from app.decommission import DecommissionError, chosen_zones, geo_tag, run
    from app.providers.edge import build_edge_provider

    try:
        settings = _settings(args)
    except ValidationError as exc:
        print("\n".join(f"error: {line}" for line in _settings_errors(exc)), file=sys.stderr)
        return 2
    if settings.edge_dns_type == "none":
        raise CliError("EDGE_DNS_TYPE is none: pygslb writes no edge delegation, so there is none to leave")
    try:
        tag = geo_tag(args.tag, settings)
        zones = chosen_zones(settings, args.zone)
        provider = build_edge_provider(settings)
    except (DecommissionError, ValueError) as exc:
        raise CliError(str(exc)) from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")  # retries show
    if tag == settings.cluster_geo_tag.lower() and not args.dry_run:
        interval = settings.zone_delegation_reconcile_requeue_seconds
        when = f"within {interval:g} s" if interval else "when it restarts"
        print(
            f"note: while this cluster's `gslb serve` runs it rejoins {when}; stop it first", file=sys.stderr
        )
    failures = run(settings, provider, tag, zones, args.dry_run)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


# --- client commands ---------------------------------------------------------------------------


def _server(args: argparse.Namespace) -> str:
    if args.server:
        return str(args.server).rstrip("/")
    address = os.environ.get("API_ADDRESS", "127.0.0.1:8080")
    return f"http://{address}"


class CliError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 1."""


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {"Accept": "application/json"}
    token = os.environ.get("GSLB_API_TOKEN")
    token_file = os.environ.get("GSLB_API_TOKEN_FILE")
    if not token and token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"GSLB_API_TOKEN_FILE: cannot read {token_file}: {exc.strerror}") from exc
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=_server(args), headers=headers, timeout=30)


def _segment(value: str) -> str:
    """One path segment, percent-encoded: a `/`, `..` or `?` in it cannot address another object."""
    return urllib.parse.quote(value, safe="")


def _collection(group: str, namespace: str | None) -> str:
    if namespace is None:
        return f"/apis/{group}/{VERSION}/gslbs"
    return f"/apis/{group}/{VERSION}/namespaces/{_segment(namespace)}/gslbs"


def _item(group: str, namespace: str, name: str) -> str:
    return f"{_collection(group, namespace)}/{_segment(name)}"


def _name(args: argparse.Namespace) -> str:
    """The NAME argument, refused unless it is a Kubernetes object name (RFC 1123 subdomain)."""
    name = str(args.name)
    if len(name) > 253 or not NAME_RE.fullmatch(name):
        raise CliError(
            f"invalid resource name {name!r}: must be a lowercase RFC 1123 subdomain of at most 253 "
            "characters (a-z, 0-9, '-' and '.', starting and ending with an alphanumeric)"
        )
    return name


def _namespace(args: argparse.Namespace) -> str:
    """--namespace (default 'default'), refused unless it is a Kubernetes namespace (RFC 1123 label)."""
    namespace = str(args.namespace or "default")
    if len(namespace) > 63 or not NAMESPACE_RE.fullmatch(namespace):
        raise CliError(
            f"invalid namespace {namespace!r}: must be a lowercase RFC 1123 label of at most 63 characters"
        )
    return namespace


def _status(response: httpx.Response) -> tuple[str, str]:
    """(reason, message) of the server's Status; the HTTP status and body when it sent none."""
    reason: Any = response.status_code
    try:
        body = response.json()
        message = body.get("message", response.text)
        reason = body.get("reason") or reason
    except (ValueError, AttributeError):
        message = response.text
    return str(reason), str(message)


def _fail(response: httpx.Response, doing: str = "") -> int:
    """Print the server's Status as kubectl does: `Error from server (Conflict): ...`, by its reason."""
    reason, message = _status(response)
    print(f"Error from server ({reason}): {doing}{message}", file=sys.stderr)
    return 1


def _not_found(group: str, name: str) -> int:
    print(f'Error from server (NotFound): gslbs.{group} "{name}" not found', file=sys.stderr)
    return 1


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _manifest_texts(filename: str) -> list[tuple[str, str]]:
    """(source, text) of `-f`: stdin, a file, or a directory's manifests as kubectl reads them (its
    .yaml, .yml and .json files, in name order, not recursive)."""
    if filename == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(filename)
    files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES) if path.is_dir() else [path]
    texts = []
    for file in files:
        try:
            texts.append((str(file), file.read_text()))
        except FileNotFoundError:
            raise CliError(f'the path "{file}" does not exist') from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f'cannot read "{file}": {exc}') from None
    return texts


def _objects(source: str, label: str, doc: Any) -> list[tuple[str, Any]]:
    """A document's objects, each with where it is (`FILE (document 1, item 2)`): itself, or the items
    of a List (lists in it too), as kubectl expands them."""
    if not (isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and "items" in doc):
        return [(f"{source} ({label})", doc)]
    items = doc["items"]
    if not isinstance(items, list):
        raise CliError(f"{source} ({label}): items of a {doc['kind']} must be a list")
    return [
        found for i, item in enumerate(items, 1) for found in _objects(source, f"{label}, item {i}", item)
    ]


def _gslb_documents(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """Every Gslb to apply, each checked for what apply needs before anything is sent."""
    from app.domain.manifests import load_documents

    docs: list[tuple[str, dict[str, Any]]] = []
    found = 0
    for source, text in _manifest_texts(args.filename):
        try:
            loaded = load_documents(text)
        except yaml.YAMLError as exc:
            raise CliError(f"error parsing {source}: {' '.join(str(exc).split())}") from None
        for index, document in enumerate(loaded, start=1):
            for where, doc in _objects(source, f"document {index}", document):
                found += 1
                if not isinstance(doc, dict):
                    raise CliError(f"{where}: a manifest must be an object, not {type(doc).__name__}")
                if doc.get("kind") != "Gslb":
                    kind = "no kind" if doc.get("kind") is None else f"kind {doc['kind']!r}"
                    print(f"skipping {where}: {kind}: only Gslb is served", file=sys.stderr)
                    continue
                docs.append((where, doc))
    if not found:
        raise CliError("no objects passed to apply")
    return docs


def _target(args: argparse.Namespace, where: str, doc: dict[str, Any]) -> tuple[str, str, str]:
    """(group, namespace, name) of one manifest; its own apiVersion and namespace win, but may not
    contradict --group or --namespace (as kubectl refuses a namespace mismatch)."""
    api_version = doc.get("apiVersion")
    if api_version is None:
        group = args.group or GROUP
    else:
        group, _, version = str(api_version).partition("/")
        if group not in GROUPS or version != VERSION:
            served = " or ".join(f"{g}/{VERSION}" for g in GROUPS)
            raise CliError(f"{where}: apiVersion {api_version!r} is not served here (use {served})")
        if args.group and args.group != group:
            raise CliError(f"{where}: apiVersion {api_version!r} does not match --group {args.group}")
    meta = doc.get("metadata")
    if meta is None:
        meta = doc["metadata"] = {}
    if not isinstance(meta, dict):
        raise CliError(f"{where}: metadata must be an object")
    name = meta.get("name")
    if not name:
        hint = " (apply cannot use generateName)" if meta.get("generateName") else ""
        raise CliError(f"{where}: metadata.name is required{hint}")
    namespace = meta.get("namespace")
    if namespace and args.namespace and namespace != args.namespace:
        raise CliError(
            f'{where}: the namespace from the provided object "{namespace}" does not match the namespace '
            f'"{args.namespace}". You must pass --namespace={namespace} to perform this operation.'
        )
    meta["namespace"] = namespace = namespace or args.namespace or "default"
    return group, str(namespace), str(name)


def _validate(where: str, target: tuple[str, str, str], doc: dict[str, Any]) -> None:
    """Check a manifest with the model and rules the server writes with, so a bad one is named by file,
    document and field before anything is sent, not a 422 after the documents before it were applied."""
    from app.api.errors import ApiError
    from app.api.gslb_ops import to_gslb

    group, namespace, name = target
    try:
        to_gslb(doc, group=group, namespace=namespace, name=name)
    except ApiError as exc:
        raise CliError(f"{where}: {exc.status.message}") from None


def cmd_apply(args: argparse.Namespace) -> int:
    """kubectl's client-side apply (app/domain/lastapplied.py): a new object is created with the
    manifest recorded as last applied; an existing one gets the three-way merge patch, so fields other
    writers set and the manifest never named (labels, annotations, status) stay."""
    from app.domain.lastapplied import modified_configuration

    targets = []
    for where, doc in _gslb_documents(args):
        target = _target(args, where, doc)
        modified = modified_configuration(doc)
        _validate(where, target, modified)
        targets.append((target, where, doc, modified))
    rc = 0
    with _client(args) as client:
        for (group, namespace, name), where, doc, modified in targets:
            url = _item(group, namespace, name)
            current = client.get(url)
            if current.status_code == 404:
                response = client.post(_collection(group, namespace), json=modified)
                verb = "created"
            elif current.is_success:
                try:
                    patched = _patch(client, url, doc, modified, current.json())
                except ValueError as exc:
                    print(f'error: cannot apply "{where}" to the live object: {exc}', file=sys.stderr)
                    rc = 1
                    continue
                if patched is None:
                    print(f"gslb.{group}/{name} unchanged")
                    continue
                response, verb = patched
            else:
                rc = _fail(current)
                continue
            if response.is_success:
                print(f"gslb.{group}/{name} {verb}")
            else:
                doing = "creating" if verb == "created" else "applying"
                rc = _fail(response, f'error when {doing} "{where}": ')
    return rc


def _patch(
    client: httpx.Client, url: str, doc: dict[str, Any], modified: dict[str, Any], live: dict[str, Any]
) -> tuple[httpx.Response, str] | None:
    """PATCH the three-way merge patch (None, nothing sent, when it is empty). The manifest's own
    resourceVersion goes with it as a precondition. ValueError when the live object's last-applied
    record cannot be read."""
    from app.domain.lastapplied import original_configuration, three_way_merge_patch

    patch = three_way_merge_patch(original_configuration(live), modified, live)
    if not patch:
        return None
    pinned = doc["metadata"].get("resourceVersion")
    if pinned not in (None, ""):
        patch.setdefault("metadata", {})["resourceVersion"] = pinned
    response = client.patch(
        url, content=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"}
    )
    before = live["metadata"]["resourceVersion"]
    same = response.is_success and response.json()["metadata"]["resourceVersion"] == before
    return response, "unchanged" if same else "configured"


def _wide_row(item: dict[str, Any]) -> list[str]:
    status = item.get("status") or {}
    health = status.get("serviceHealth") or {}
    records = status.get("healthyRecords") or {}
    peers = status.get("peers") or []
    failing = [c for c in status.get("conditions") or [] if c.get("status") == "False"]
    error = "; ".join(f"{c['type']}: {c.get('message', '')}" for c in failing)
    return [
        ",".join(f"{h}={s}" for h, s in health.items()) or "-",
        ";".join(f"{h}={','.join(ips)}" for h, ips in records.items()) or "-",
        ";".join(f"{p['geoTag']}:{p.get('error') or ','.join(p.get('targets', [])) or '-'}" for p in peers)
        or "-",
        error or "-",
    ]


def cmd_get(args: argparse.Namespace) -> int:
    """Without --group, both groups; one the user may not read (403) or that is not served (404) is
    skipped with a warning, as long as the other answers."""
    if args.name and args.all_namespaces:
        raise CliError("a resource cannot be retrieved by name across all namespaces")
    groups = [args.group] if args.group else list(GROUPS)
    name = _name(args) if args.name else None
    namespace = None if args.all_namespaces else _namespace(args)
    items: list[dict[str, Any]] = []
    answered: list[str] = []
    skipped: list[tuple[str, httpx.Response]] = []
    with _client(args) as client:
        for group in groups:
            if name:
                assert namespace is not None  # a name across all namespaces is refused above
                response = client.get(_item(group, namespace, name))
            else:
                response = client.get(_collection(group, namespace))
            if response.is_success:
                answered.append(group)
                items.extend([response.json()] if name else response.json().get("items", []))
            elif name and response.status_code == 404:
                answered.append(group)  # it answered: it holds no such Gslb
            elif response.status_code in (403, 404) and len(groups) > 1:
                skipped.append((group, response))
            else:
                return _fail(response)
    if not answered:
        for _, response in skipped:
            _fail(response)
        return 1
    for group, response in skipped:
        reason, message = _status(response)
        print(f"Warning: skipped gslbs.{group} ({reason}): {message}", file=sys.stderr)
    if name and not items:
        return _not_found(answered[0], name)
    if args.output in ("json", "yaml"):
        # One object as itself; a name both API groups hold is a List of both, as kubectl prints several.
        one = args.name and len(items) == 1
        doc: Any = items[0] if one else {"apiVersion": "v1", "kind": "List", "items": items}
        print(
            json.dumps(doc, indent=2)
            if args.output == "json"
            else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
            end="",
        )
        return 0
    header = ["NAMESPACE", "NAME", "STRATEGY", "GEOTAG", "HOSTS"]
    if args.output == "wide":
        header += ["HEALTH", "RECORDS", "PEERS", "ERROR"]
    rows = [header]
    # Rows of both groups are named with their group, as kubectl names the rows of several resources.
    both = len({_group_of(item) for item in items}) > 1
    for item in items:
        meta, spec, status = item["metadata"], item["spec"], item.get("status") or {}
        row = [
            meta.get("namespace", ""),
            f"gslb.{_group_of(item)}/{meta['name']}" if both else meta["name"],
            spec["strategy"]["type"],
            status.get("geoTag", ""),
            status.get("hosts", ""),
        ]
        if args.output == "wide":
            row += _wide_row(item)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return 0


def _group_of(item: dict[str, Any]) -> str:
    return str(item.get("apiVersion", "")).partition("/")[0]


def cmd_delete(args: argparse.Namespace) -> int:
    """Without --group, the one group that holds NAME; a name both groups hold (the same Gslb while
    migrating from the legacy group, say) is refused until --group says which: deleting both would take
    the host out of DNS, which neither delete alone does."""
    name, namespace = _name(args), _namespace(args)
    with _client(args) as client:
        groups = [args.group] if args.group else _holders(client, namespace, name)
        for group in groups:
            response = client.delete(_item(group, namespace, name))
            if response.is_success:
                print(f'gslb.{group} "{name}" deleted')
                return 0
            if response.status_code != 404:
                return _fail(response)
    return _not_found(args.group or GROUP, name)


def _holders(client: httpx.Client, namespace: str, name: str) -> list[str]:
    """The groups to delete NAME from, in order: those known to hold it, then those that would not say
    (a reader without `get` rights is still allowed its delete, and the server's answer is shown)."""
    found, unknown = [], []
    for group in GROUPS:
        status = client.get(_item(group, namespace, name)).status_code
        if 200 <= status < 300:
            found.append(group)
        elif status != 404:
            unknown.append(group)
    if len(found) > 1:
        raise CliError(
            f'gslb "{name}" exists in both {" and ".join(found)} in namespace {namespace}: '
            "say which to delete with --group"
        )
    return found + unknown


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gslb", description="pygslb: a k8gb-compatible GSLB controller")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the controller, the REST API and the DNS server")
    serve.add_argument("--api-address", help="host:port for the API (env API_ADDRESS)")
    serve.add_argument("--dns-address", help="host:port for DNS; '' disables it (env DNS_ADDRESS)")
    serve.add_argument("--data-dir", help="embedded store directory (env GSLB_DATA_DIR)")
    serve.add_argument("--services", help="services file with probes (env GSLB_SERVICES_FILE)")
    serve.add_argument("--geo-tag", help="this cluster's geo tag (env CLUSTER_GEO_TAG)")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback API without a token")
    serve.set_defaults(func=cmd_serve)

    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("--split", metavar="DIR", help="write one file per CRD into DIR")
    crds.set_defaults(func=cmd_crds)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document of the REST API")
    openapi.set_defaults(func=cmd_openapi)

    backup = sub.add_parser(
        "backup",
        help="copy the embedded store to a new file, safely while gslb serve runs",
        description="Restore by stopping gslb serve and putting the copy in place of <data dir>/gslb.db "
        "(remove gslb.db-wal and gslb.db-shm beside it).",
    )
    backup.add_argument("destination", help="the new file to write")
    backup.add_argument("--data-dir", help="the data directory (default: $GSLB_DATA_DIR, else .gslb-data)")
    backup.set_defaults(func=cmd_backup)

    decommission = sub.add_parser(
        "decommission",
        help="withdraw a cluster from the edge delegation (same settings as serve)",
        description="Remove a cluster's NS name and glue A from the edge delegation of every zone in "
        "DNS_ZONES (k8gb: deleting the ZoneDelegation). Running clusters never drop a peer that still "
        "has glue, so a cluster leaving for good must be withdrawn: this one after stopping its `gslb "
        "serve`, or a dead one from any other cluster with --geo-tag.",
    )
    decommission.add_argument(
        "--geo-tag", dest="tag", help="the cluster to withdraw (default: this one, CLUSTER_GEO_TAG)"
    )
    decommission.add_argument(
        "--zone", action="append", help="only this load-balanced zone (repeatable; default: all)"
    )
    decommission.add_argument("--dry-run", action="store_true", help="show the changes, make none")
    decommission.set_defaults(func=cmd_decommission)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", "-s", help="API URL (default http://$API_ADDRESS)")
        p.add_argument("--namespace", "-n", help="namespace (default 'default')")
        p.add_argument("--group", choices=GROUPS, help="API group (default: both)")

    apply = sub.add_parser("apply", help="create or update Gslbs from YAML/JSON manifests")
    apply.add_argument(
        "-f",
        "--filename",
        required=True,
        help="file, directory (its .yaml, .yml, .json files), or - for stdin",
    )
    client_args(apply)
    apply.set_defaults(func=cmd_apply)

    get = sub.add_parser("get", help="list Gslbs or show one")
    get.add_argument("name", nargs="?")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=["wide", "yaml", "json"])
    client_args(get)
    get.set_defaults(func=cmd_get)

    delete = sub.add_parser("delete", help="delete a Gslb (--group when both API groups hold the name)")
    delete.add_argument("name")
    client_args(delete)
    delete.set_defaults(func=cmd_delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not cmd_serve:  # serve checks it with every other setting, in its own format
        from app.otlp import check_propagators

        try:  # before anything imports opentelemetry.propagate, which raises with a traceback
            check_propagators(os.environ)
        except ValueError as exc:
            print(f"error: invalid setting {exc}", file=sys.stderr)
            return 2
    try:
        return int(args.func(args))
    except httpx.HTTPError as exc:
        print(f"error: cannot reach the pygslb API: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `gslb get | head`: the reader left, as with any Unix tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
