"""A peer refresh round is one root trace, `refreshPeers`, through the real OTLP receiver: its peer
queries are under it, and so is the reconcile of a host whose peer answer changed."""

from __future__ import annotations

from pathlib import Path

from app.stores.sqlite import SqliteStore
from tests.controller.conftest import FixedPeer, controller_with_peers
from tests.support.gslb_factory import make_gslb
from tests.support.otlp import OtlpHttpReceiver, ReceivedSpan


async def test_a_refresh_round_is_the_root_of_the_reconcile_it_causes(
    tmp_path: Path, global_otlp_receiver: OtlpHttpReceiver
) -> None:
    store = SqliteStore(tmp_path / "data")
    await store.start()
    # The next refresh sees another answer than the reconcile did: the peer's answer changed since.
    controller = controller_with_peers(
        store, reconciled_by=FixedPeer("10.1.0.1"), refreshed_by=FixedPeer("10.1.0.2"), refresh_seconds=0.05
    )
    host = "refreshed.cloud.example.com"
    await controller.start()
    try:
        await store.create(make_gslb("refreshed", host=host))

        def caused_by_a_round(spans: list[ReceivedSpan]) -> list[tuple[ReceivedSpan, ReceivedSpan]]:
            rounds = {s.span_id: s for s in spans if s.name == "refreshPeers" and s.parent_span_id == ""}
            return [
                (rounds[s.parent_span_id], s)
                for s in spans
                if s.name == "Reconcile"
                and s.attributes.get("k8gb.gslb.name") == "refreshed"
                and s.parent_span_id in rounds
            ]

        spans = await global_otlp_receiver.wait_for(caused_by_a_round)
    finally:
        await controller.stop(grace=2)
        await store.close()
    refresh, reconcile = caused_by_a_round(spans)[0]
    assert reconcile.attributes["pygslb.reconcile.trigger"] == "peer-change"
    assert reconcile.trace_id == refresh.trace_id
    assert host in refresh.attributes["pygslb.peers.changed"]
    assert refresh.attributes["k8gb.hosts.count"] >= 1
