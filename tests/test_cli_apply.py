"""`gslb apply` and `gslb get` as a user runs them, against a real `gslb serve`: what kubectl users expect
(directories, namespace checks, YAML read as the API server reads it) and one-line errors, never a
traceback, with nothing sent when a manifest is wrong."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.instance import ROOT, running

pytestmark = pytest.mark.e2e

GSLB = """\
apiVersion: {api_version}
kind: Gslb
metadata:
  name: {name}
{metadata}spec:
  strategy:
    type: roundRobin
{spec}"""


LIST = "apiVersion: v1\nkind: List\nitems:\n{items}"


def as_item(text: str) -> str:
    """A manifest indented as an item of a List's `items`."""
    lines = text.splitlines()
    return "\n".join(["- " + lines[0], *("  " + line for line in lines[1:])]) + "\n"


def manifest(name: str, *, api_version: str = "k8gb.io/v1beta1", metadata: str = "", spec: str = "") -> str:
    return GSLB.format(name=name, api_version=api_version, metadata=metadata, spec=spec)


async def gslb_cli(*args: str, stdin: str | None = None, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def reader_gone(*args: str) -> tuple[int, str]:
    """Run the CLI with its stdout a pipe whose reader has already closed it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err


async def names(api: str) -> list[str]:
    async with httpx.AsyncClient(base_url=api) as client:
        found = []
        for group in ("k8gb.io", "k8gb.absa.oss"):
            listed = (await client.get(f"/apis/{group}/v1beta1/gslbs")).json()["items"]
            found += [f"{group}:{i['metadata']['namespace']}/{i['metadata']['name']}" for i in listed]
        return sorted(found)


async def test_apply_a_directory_group_and_unicode_as_kubectl_users_expect(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "examples", manifests, ignore=shutil.ignore_patterns("services.yaml", "*.env"))
    # An unquoted date is text to the API server; the CLI must not turn it into a date it cannot send.
    (manifests / "dated.yml").write_text(
        manifest("dated", metadata="  annotations:\n    deployed: 2024-01-01\n    note: 🚀 ünïcödé\n")
    )
    (manifests / "README.txt").write_text("not a manifest")
    async with running(tmp_path) as gslb:
        code, out, err = await gslb_cli(
            "apply", "-f", str(manifests), "-n", "test-gslb", "--server", gslb.api
        )
        assert code == 0, err
        assert out.splitlines() == [
            "gslb.k8gb.io/dated created",
            "gslb.k8gb.io/failover-gslb created",
            "gslb.k8gb.io/test-gslb created",
        ], out
        # A manifest without apiVersion goes to the group --group names.
        code, out, err = await gslb_cli(
            "apply", "-f", "-", "--group", "k8gb.absa.oss", "--server", gslb.api,
            stdin="kind: Gslb\nmetadata:\n  name: legacy\nspec:\n  strategy:\n    type: roundRobin\n",
        )  # fmt: skip
        assert (code, out) == (0, "gslb.k8gb.absa.oss/legacy created\n"), err
        assert await names(gslb.api) == [
            "k8gb.absa.oss:default/legacy",
            "k8gb.io:test-gslb/dated",
            "k8gb.io:test-gslb/failover-gslb",
            "k8gb.io:test-gslb/test-gslb",
        ]
        code, out, err = await gslb_cli("get", "dated", "-n", "test-gslb", "-o", "yaml", "--server", gslb.api)
        assert code == 0, err
        assert "deployed: '2024-01-01'" in out and "note: 🚀 ünïcödé" in out, out


MISTAKES = {
    "missing file": ([], None, 'error: the path "{tmp}/nope.yaml" does not exist'),
    "not an object": (
        [],
        "- a\n- b\n",
        "error: <stdin> (document 1): a manifest must be an object, not list",
    ),
    "no metadata.name": ([], "kind: Gslb\nmetadata:\nspec: {}\n", "metadata.name is required"),
    "generateName": (
        [],
        "kind: Gslb\nmetadata:\n  generateName: web-\nspec: {}\n",
        "metadata.name is required (apply cannot use generateName)",
    ),
    "unknown apiVersion": ([], manifest("x", api_version="foo/v1"), "apiVersion 'foo/v1' is not served here"),
    "group mismatch": (["--group", "k8gb.absa.oss"], manifest("x"), "does not match --group k8gb.absa.oss"),
    "namespace mismatch": (
        ["-n", "other"],
        manifest("x", metadata="  namespace: prod\n"),
        'the namespace from the provided object "prod" does not match the namespace "other"',
    ),
    "bad YAML": ([], "kind: Gslb\nmetadata: {name: [\n", "error: error parsing <stdin>:"),
    "second document wrong": ([], manifest("first") + "---\n- not an object\n", "(document 2)"),
    # Checked with the server's own model: the document and the field are named, the first is not sent.
    "second document's name invalid": (
        [],
        manifest("first") + "---\n" + manifest("Pre_4"),
        'error: <stdin> (document 2): Gslb.k8gb.io "Pre_4" is invalid: metadata.name: must be a lowercase',
    ),
    "field invalid in a List's item": (
        [],
        LIST.format(
            items=as_item(manifest("first")) + as_item(manifest("ttl", spec="    dnsTtlSeconds: -5\n"))
        ),
        'error: <stdin> (document 1, item 2): Gslb.k8gb.io "ttl" is invalid: spec.strategy.dnsTtlSeconds: ',
    ),
    "List without items": (
        [],
        "kind: List\nitems: {}\n",
        "error: <stdin> (document 1): items of a List must be a list",
    ),
    "no objects": ([], "# nothing here\n---\n", "error: no objects passed to apply"),
}


async def test_apply_mistakes_are_one_line_errors_and_send_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as gslb:
        for case, (flags, stdin, expected) in MISTAKES.items():
            source = str(tmp_path / "nope.yaml") if stdin is None else "-"
            code, out, err = await gslb_cli("apply", "-f", source, *flags, "--server", gslb.api, stdin=stdin)
            assert code == 1, (case, out, err)
            assert expected.format(tmp=tmp_path) in err, (case, err)
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (case, err)
        assert await names(gslb.api) == []
        code, _, err = await gslb_cli("get", "x", "-A", "--server", gslb.api)
        assert (code, err) == (1, "error: a resource cannot be retrieved by name across all namespaces\n")
        # `gslb get | head`: the reader is gone before the output is written; a quiet exit, as Unix tools do.
        code, err = await asyncio.to_thread(reader_gone, "get", "-A", "--server", gslb.api)
        assert code == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
        missing = tmp_path / "none"
        code, _, err = await gslb_cli("get", "--server", gslb.api, GSLB_API_TOKEN_FILE=str(missing))
        assert code == 1 and err.startswith(f"error: GSLB_API_TOKEN_FILE: cannot read {missing}"), err


async def test_apply_sends_the_manifests_resource_version_so_a_stale_one_conflicts(tmp_path: Path) -> None:
    async with running(tmp_path) as gslb:
        code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=manifest("x"))
        assert (code, out) == (0, "gslb.k8gb.io/x created\n"), err
        url = f"{gslb.api}/apis/k8gb.io/v1beta1/namespaces/default/gslbs/x"
        async with httpx.AsyncClient() as client:
            stale = (await client.get(url)).json()
            newer = {**stale, "spec": {"strategy": {"type": "failover", "primaryGeoTag": "eu"}}}
            assert (await client.put(url, json=newer)).is_success
            code, out, err = await gslb_cli(
                "apply", "-f", "-", "--server", gslb.api, stdin=yaml.safe_dump(stale)
            )
            assert (code, out) == (1, ""), err
            assert err.startswith(
                'Error from server (Conflict): error when applying "<stdin> (document 1)": '
            ), err
            assert "the object has been modified" in err, err
            assert (await client.get(url)).json()["spec"]["strategy"]["type"] == "failover"  # not lost
        # Without a resourceVersion the manifest's fields win over the other writer's, as before.
        code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=manifest("x"))
        assert (code, out) == (0, "gslb.k8gb.io/x configured\n"), err


async def test_get_and_delete_refuse_a_name_that_is_not_an_object_name_and_send_nothing(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as gslb:
        for namespace in ("t1", "cli"):
            code, _, err = await gslb_cli(
                "apply", "-f", "-", "-n", namespace, "--server", gslb.api, stdin=manifest("x12")
            )
            assert code == 0, err
        for args in (
            ("delete", "../../t1/gslbs/x12", "-n", "cli"),
            ("get", "?labelSelector=x"),
            ("get", "Pre_4"),
            ("delete", "a" * 254),
        ):
            code, out, err = await gslb_cli(*args, "--server", gslb.api)
            assert (code, out) == (1, ""), (args, err)
            assert err.startswith(
                f"error: invalid resource name {args[1]!r}: must be a lowercase RFC 1123"
            ), err
        code, out, err = await gslb_cli("get", "-n", "../t1", "--server", gslb.api)
        assert (code, out) == (1, ""), err
        assert err.startswith("error: invalid namespace '../t1'"), err
        assert await names(gslb.api) == ["k8gb.io:cli/x12", "k8gb.io:t1/x12"]


async def test_apply_expands_lists_reports_unchanged_and_refuses_nothing_to_apply(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    listed = LIST.format(
        items=as_item(manifest("a")) + as_item(manifest("b", api_version="k8gb.absa.oss/v1beta1"))
    )
    async with running(tmp_path) as gslb:
        code, out, err = await gslb_cli("apply", "-f", str(empty), "--server", gslb.api)
        assert (code, out, err) == (1, "", "error: no objects passed to apply\n")
        code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=listed)
        assert (code, out) == (0, "gslb.k8gb.io/a created\ngslb.k8gb.absa.oss/b created\n"), err
        assert await names(gslb.api) == ["k8gb.absa.oss:default/b", "k8gb.io:default/a"]
        changed = listed.replace("roundRobin", "failover\n      primaryGeoTag: eu", 1)
        code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=changed)
        assert (code, out) == (0, "gslb.k8gb.io/a configured\ngslb.k8gb.absa.oss/b unchanged\n"), err


async def test_a_name_both_groups_hold_is_got_in_both_and_deleted_only_with_group(tmp_path: Path) -> None:
    both = manifest("c1") + "---\n" + manifest("c1", api_version="k8gb.absa.oss/v1beta1")
    async with running(tmp_path) as gslb:
        code, _, err = await gslb_cli("apply", "-f", "-", "-n", "t2", "--server", gslb.api, stdin=both)
        assert code == 0, err
        # Rows of both groups are told apart as kubectl tells several resources apart; one group's are not.
        code, out, err = await gslb_cli("get", "-n", "t2", "--server", gslb.api)
        assert code == 0, err
        assert [line.split()[1] for line in out.splitlines()] == [
            "NAME",
            "gslb.k8gb.io/c1",
            "gslb.k8gb.absa.oss/c1",
        ], out
        code, out, err = await gslb_cli("get", "-n", "t2", "--group", "k8gb.absa.oss", "--server", gslb.api)
        assert [line.split()[1] for line in out.splitlines()] == ["NAME", "c1"], err
        code, out, err = await gslb_cli("get", "c1", "-n", "t2", "-o", "json", "--server", gslb.api)
        assert code == 0, err
        listed = json.loads(out)
        assert listed["kind"] == "List", out
        assert [i["apiVersion"] for i in listed["items"]] == ["k8gb.io/v1beta1", "k8gb.absa.oss/v1beta1"]
        code, out, err = await gslb_cli("get", "c1", "-n", "t2", "-o", "yaml", "--server", gslb.api)
        assert (code, len(yaml.safe_load(out)["items"])) == (0, 2), err
        code, out, err = await gslb_cli(
            "get", "c1", "-n", "t2", "--group", "k8gb.io", "-o", "json", "--server", gslb.api
        )
        assert (code, json.loads(out)["kind"]) == (0, "Gslb"), err
        code, out, err = await gslb_cli("delete", "c1", "-n", "t2", "--server", gslb.api)
        assert (code, out) == (1, ""), err  # which one? deleting both would take the host out of DNS
        assert "exists in both k8gb.io and k8gb.absa.oss" in err and "--group" in err
        assert len(await names(gslb.api)) == 2
        code, out, err = await gslb_cli(
            "delete", "c1", "-n", "t2", "--group", "k8gb.absa.oss", "--server", gslb.api
        )
        assert (code, out) == (0, 'gslb.k8gb.absa.oss "c1" deleted\n'), err
        code, out, err = await gslb_cli("delete", "c1", "-n", "t2", "--server", gslb.api)
        assert (code, out) == (0, 'gslb.k8gb.io "c1" deleted\n'), err
        assert await names(gslb.api) == []
        code, out, err = await gslb_cli("delete", "c1", "-n", "t2", "--server", gslb.api)
        assert (code, out, err) == (1, "", 'Error from server (NotFound): gslbs.k8gb.io "c1" not found\n')
        # As kubectl names it: the resource with its group.
        for args, group in (((), "k8gb.io"), (("--group", "k8gb.absa.oss"), "k8gb.absa.oss")):
            for verb in ("get", "delete"):
                code, out, err = await gslb_cli(verb, "nope", *args, "--server", gslb.api)
                expected = f'Error from server (NotFound): gslbs.{group} "nope" not found\n'
                assert (code, out, err) == (1, "", expected), (verb, args)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROUND_ROBIN = ROOT / "examples" / "gslb-roundrobin.yaml"


def last_applied(manifest_text: str) -> str:
    """The record kubectl writes for a manifest: compact JSON, keys sorted, with its namespace."""
    doc = yaml.safe_load(manifest_text)
    doc["metadata"].setdefault("annotations", {})
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


async def test_apply_keeps_what_other_writers_set_and_deletes_what_it_applied_before(tmp_path: Path) -> None:
    """kubectl's client-side apply: labels and annotations added by `kubectl label`/`annotate` (merge
    patches), status and server-recorded annotations stay; what an earlier apply set and the manifest
    no longer has goes."""
    original = ROUND_ROBIN.read_text()
    changed = original.replace(
        "  namespace: test-gslb\n", "  namespace: test-gslb\n  labels:\n    app: web\n    owner: me\n"
    )
    changed = changed.replace("dnsTtlSeconds: 30", "dnsTtlSeconds: 60")
    trimmed = changed.replace("    dnsTtlSeconds: 60\n", "").replace("    app: web\n", "")
    url = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs/test-gslb"
    async with running(tmp_path) as gslb, httpx.AsyncClient(base_url=gslb.api) as client:

        async def apply(text: str) -> str:
            code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=text)
            assert code == 0, err
            return out

        assert await apply(original) == "gslb.k8gb.io/test-gslb created\n"
        created = (await client.get(url)).json()
        assert created["metadata"]["annotations"][LAST_APPLIED] == last_applied(original)

        # As `kubectl label` and `kubectl annotate` do, and a traced client setting a field of its own.
        merge = {"Content-Type": "application/merge-patch+json", "traceparent": f"00-{7:032x}-{7:016x}-01"}
        others = {
            "metadata": {"labels": {"tier": "web"}, "annotations": {"team": "blue"}},
            "spec": {"strategy": {"splitBrainThresholdSeconds": 300}},
        }
        labelled = await client.patch(url, content=json.dumps(others), headers=merge)
        assert labelled.is_success, labelled.text
        recorded = {k: v for k, v in labelled.json()["metadata"]["annotations"].items() if "trace" in k}
        assert recorded["k8gb.io/traceparent"] == merge["traceparent"]  # the server records its cause

        # Nothing the manifest says differs: nothing is sent, nothing is lost.
        assert await apply(original) == "gslb.k8gb.io/test-gslb unchanged\n"
        same = (await client.get(url)).json()
        assert same["metadata"]["labels"] == {"tier": "web"}
        assert same["metadata"]["annotations"] == {
            **recorded,
            "team": "blue",
            LAST_APPLIED: last_applied(original),
        }

        assert await apply(changed) == "gslb.k8gb.io/test-gslb configured\n"
        configured = (await client.get(url)).json()
        assert configured["metadata"]["labels"] == {"tier": "web", "app": "web", "owner": "me"}
        assert configured["metadata"]["annotations"]["team"] == "blue"
        assert configured["metadata"]["annotations"][LAST_APPLIED] == last_applied(changed)
        assert configured["spec"]["strategy"]["dnsTtlSeconds"] == 60
        assert configured["spec"]["strategy"]["splitBrainThresholdSeconds"] == 300
        assert configured["status"]["hosts"] == "roundrobin.cloud.example.com"  # status stays

        # The label and the TTL the last apply set and this manifest lacks are deleted; the others stay.
        assert await apply(trimmed) == "gslb.k8gb.io/test-gslb configured\n"
        trimmed_obj = (await client.get(url)).json()
        assert trimmed_obj["metadata"]["labels"] == {"tier": "web", "owner": "me"}
        assert trimmed_obj["metadata"]["annotations"]["team"] == "blue"
        assert trimmed_obj["spec"]["strategy"].get("dnsTtlSeconds", 30) == 30  # back to the default

        # A record that is not JSON is refused, naming it, and nothing is sent.
        broken = {"metadata": {"annotations": {LAST_APPLIED: "{"}}}
        assert (await client.patch(url, content=json.dumps(broken), headers=merge)).is_success
        code, out, err = await gslb_cli("apply", "-f", "-", "--server", gslb.api, stdin=changed)
        assert (code, out) == (1, ""), err
        assert err.startswith(
            f'error: cannot apply "<stdin> (document 1)" to the live object: its {LAST_APPLIED} '
            "annotation is not JSON"
        ), err


async def test_apply_of_a_directory_names_what_it_skips(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "examples", manifests, ignore=shutil.ignore_patterns("*.env"))
    (manifests / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n")
    async with running(tmp_path) as gslb:
        code, out, err = await gslb_cli("apply", "-f", str(manifests), "--server", gslb.api)
        assert code == 0, err
        assert err.splitlines() == [
            f"skipping {manifests}/services.yaml (document 1): no kind: only Gslb is served",
            f"skipping {manifests}/svc.yaml (document 1): kind 'Service': only Gslb is served",
        ], err
