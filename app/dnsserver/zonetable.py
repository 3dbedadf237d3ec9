"""The in-memory record store the built-in DNS server answers from.

It is a provider (the ExternalDNS-shaped contract of app/providers/base.py, structurally): the
reconciler plans against `records()` and hands whole change sets to `apply()`, which validates every
change before touching anything. All the work is done on write: each record set is compiled into
dnspython rdata plus its answer RRs already in wire form (owner compressed to the question at offset
12, so the chunks can be concatenated in any order after any spelling of the question), and its
ordering policy from the labels. A query then costs dict lookups only, never I/O.
"""

from __future__ import annotations

import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

from app.dnsserver.geo import GeoLocator
from app.dnsserver.ordering import Mode, OrderPolicy
from app.domain.endpoint import Changes, Endpoint
from app.domain.zones import ZoneConfig

SUPPORTED_TYPES = frozenset({"A", "AAAA", "TXT", "CNAME"})
_REORDERABLE = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT})
_NAME_FREE = _REORDERABLE
_MAX_TTL = 2**31 - 1
_SERIAL_MOD = 2**32
_LOCATE_CACHE_MAX = 65536
_HEADER = 12
_WILDCARD = (b"*",)
_MAX_ANSWER_BYTES = 60_000
"""A record set must fit one TCP response (64 KiB) with room for the question and OPT."""

type NameKey = tuple[bytes, ...]
"""A name as its lowercased labels, root label last: what the table and its listeners key names by.

dnspython hashes a Name in a Python loop over every character (about 4 us for a typical host) on
every dict lookup; a tuple of bytes hashes in C and each label caches its hash.
"""


def name_key(name: dns.name.Name) -> NameKey:
    """The key of `name`: equal for names equal in DNS (ASCII case-insensitive, as Name.__eq__)."""
    return tuple(map(bytes.lower, name.labels))


class ZoneTableError(Exception):
    """A change set or query the table refuses; fatal (retrying the same input fails the same way).

    Same shape as providers.base.ProviderError, which this layer may not import (the adapter layers are
    independent): callers that treat the table as a provider map it by its `transient` attribute.
    """

    transient = False


@dataclass(frozen=True, slots=True)
class ServedRRset:
    """One record set ready to serve."""

    rrset: dns.rrset.RRset
    chunks: tuple[bytes, ...]
    """One wire-format answer RR per rdata, in rrset order, owner = pointer to the question."""
    policy: OrderPolicy


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the table knows about one (name, type) inside one of its zones."""

    zone: ZoneConfig
    rcode: dns.rcode.Rcode
    answer: ServedRRset | None = None
    soa: dns.rrset.RRset | None = None
    """The zone's SOA for the authority section of a negative answer (TTL = negTTL)."""


@dataclass(frozen=True, slots=True)
class ZoneWrite:
    """One accepted write as a replica replays it: the change set or the new NS names, and the serial
    the zone had after it (so every replica's SOA shows the same serial)."""

    zone: str
    serial: int
    changes: Changes | None = None
    ns_names: tuple[str, ...] | None = None
    loaded: bool = False
    """The table's first content is complete: stop answering SERVFAIL (see `ZoneTable.mark_loaded`)."""


@dataclass(frozen=True, slots=True)
class ZoneState:
    """Everything one zone serves: enough to rebuild it elsewhere."""

    zone: str
    serial: int
    ns_names: tuple[str, ...]
    records: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """A whole table in plain data (picklable): what a replica starts from. The geo locator is not part
    of it: it reads files, so each process builds its own."""

    zones: tuple[ZoneConfig, ...]
    states: tuple[ZoneState, ...]
    soa_mname: str | None
    soa_rname: str | None
    ns_ttl: int
    loading: bool = False


@dataclass(slots=True)
class _Zone:
    config: ZoneConfig
    origin: dns.name.Name
    key: NameKey
    serial: int
    ns_names: list[dns.name.Name]
    records: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    apex: dict[int, ServedRRset] = field(default_factory=dict)


_PLAIN_HOST = re.compile(r"[a-z0-9_*-]+(?:\.[a-z0-9_*-]+)*\.")
"""A lowercase absolute name with nothing for dns.name.from_text to interpret (escapes, IDNA, @)."""


def _name(text: str, what: str) -> dns.name.Name:
    normal = text.strip().rstrip(".").lower() + "."
    try:
        if _PLAIN_HOST.fullmatch(normal):  # its labels as they are: from_text's result, 2.5x faster
            return dns.name.Name(normal.split("."))
        return dns.name.from_text(normal)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ZoneTableError(f"{what} {text!r} is not a valid DNS name: {exc}") from None


def wire_length(name: dns.name.Name) -> int:
    """Uncompressed wire length of a name (each label plus its length byte, root included)."""
    return sum(len(label) + 1 for label in name.labels)


def _answer_chunks(rrset: dns.rrset.RRset) -> tuple[bytes, ...]:
    """Each rdata rendered by dnspython as an answer after a question for the owner name.

    Types without names in their rdata are rendered once, in rrset order, and cut at each RR's end
    (owner pointer, type, class, TTL, length: 12 bytes, then rdlength bytes): no RR points into another.
    Others are rendered one rdata at a time, so no compression pointer crosses chunks.
    """
    if rrset.rdtype in _NAME_FREE:
        out = io.BytesIO()  # the owner compresses to a pointer at the question (offset 12); no shuffle
        rrset.to_wire(out, _AT_QUESTION, want_shuffle=False)
        wire = out.getvalue()
        chunks, pos = [], 0
        while pos < len(wire):
            end = pos + 12 + int.from_bytes(wire[pos + 10 : pos + 12], "big")
            chunks.append(wire[pos:end])
            pos = end
        if len(chunks) == len(rrset) and all(chunk[:2] == _POINTER_TO_QUESTION for chunk in chunks):
            return tuple(chunks)
    return tuple(_render_answers(rrset, dns.rrset.from_rdata(rrset.name, rrset.ttl, r)) for r in rrset)


class _AtQuestion(dict[dns.name.Name, int]):
    """A compression table in which every name is already at the question (offset 12).

    The only name in an answer RR of a name-free type is its owner, the question's name: so it is
    the same pointer every time, without building and hashing the name (half the cost of rendering).
    """

    def get(self, key: dns.name.Name, default: int | None = None) -> int:  # type: ignore[override]
        return _HEADER


_AT_QUESTION = _AtQuestion()
_POINTER_TO_QUESTION = (0xC000 | _HEADER).to_bytes(2, "big")


def _render_answers(question: dns.rrset.RRset, answers: dns.rrset.RRset) -> bytes:
    """The answer section of a message asking for `question`'s name and type, answered by `answers`."""
    message = dns.message.Message(id=0)
    message.question = [dns.rrset.RRset(question.name, dns.rdataclass.IN, question.rdtype)]
    message.answer = [answers]
    return message.to_wire()[_HEADER + wire_length(question.name) + 4 :]


_ADDRESSES: dict[dns.rdatatype.RdataType, type[dns.rdata.Rdata]] = {
    dns.rdatatype.A: dns.rdtypes.IN.A.A,
    dns.rdatatype.AAAA: dns.rdtypes.IN.AAAA.AAAA,
}


def _rdata(rdtype: dns.rdatatype.RdataType, target: str) -> dns.rdata.Rdata:
    """`dns.rdata.from_text`, with addresses given straight to their class: what from_text does after
    its tokenizer for a plain address, in half the time. Anything else (or a bad address, so the error
    is from_text's) goes the long way. Names in rdata are fully qualified, with or without the final
    dot, as ExternalDNS writes DNSEndpoint targets: they are read relative to the root."""
    address_class = _ADDRESSES.get(rdtype)
    if address_class is not None:
        try:
            return address_class(dns.rdataclass.IN, rdtype, target)  # type: ignore[call-arg]
        except (dns.exception.DNSException, ValueError):
            pass
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, target, origin=dns.name.root, relativize=False)


def _weights(endpoint: Endpoint) -> dict[str, int]:
    """k8gb's `weight-<geo>-<index>-<weight>: <ip>` labels as ip → weight (geo tags may contain dashes)."""
    weights: dict[str, int] = {}
    for key, value in endpoint.labels:
        if not key.startswith("weight-"):
            continue
        parts = key[len("weight-") :].rsplit("-", 2)
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            raise ZoneTableError(f"{endpoint.dns_name}: label {key!r} is not weight-<geo>-<index>-<weight>")
        weights[value.strip()] = int(parts[2])
    return weights


def _policy(endpoint: Endpoint, rdtype: int, targets: list[str], geo: GeoLocator | None) -> OrderPolicy:
    weights = _weights(endpoint)
    if rdtype not in _REORDERABLE or len(targets) <= 1:
        return OrderPolicy(Mode.FIXED)
    if endpoint.label("strategy") == "geoip":
        return OrderPolicy(Mode.GEO, locations=tuple(geo.locate(t) if geo else None for t in targets))
    if weights:
        return OrderPolicy(Mode.WEIGHTED, weights=tuple(weights.get(t, 0) for t in targets))
    return OrderPolicy(Mode.SHUFFLE)


class ZoneTable:
    """Records of the load-balanced zones, served by `DnsServer`; a Provider named `builtin`."""

    name = "builtin"

    def __init__(
        self,
        zones: list[ZoneConfig],
        ns_names: Mapping[str, list[str]] | None = None,
        *,
        soa_mname: str | None = None,
        soa_rname: str | None = None,
        ns_ttl: int = 30,
        geo: GeoLocator | None = None,
        loading: bool = False,
    ) -> None:
        self._geo = geo
        self._loading = loading
        self._soa_mname = soa_mname
        self._soa_rname = soa_rname
        self._ns_ttl = ns_ttl
        self._zones: dict[NameKey, _Zone] = {}
        self._nodes: dict[NameKey, dict[int, ServedRRset]] = {}
        self._ents: Counter[NameKey] = Counter()
        self._listeners: list[Callable[[frozenset[NameKey] | None], None]] = []
        self._writers: list[Callable[[ZoneWrite], None]] = []
        self._located: dict[str, str | None] = {}
        serial = int(time.time()) % _SERIAL_MOD
        for config in zones:
            origin = _name(config.load_balanced_zone, "zone")
            self._zones[name_key(origin)] = _Zone(config, origin, name_key(origin), serial, [])
        for zone, names in (ns_names or {}).items():
            self._zone(zone).ns_names = [_name(n, "NS name") for n in names]
        for state in self._zones.values():
            self._build_apex(state)

    # --- provider contract -----------------------------------------------------------------------

    async def records(self, zone: str) -> list[Endpoint]:
        held = self._zone(zone).records
        return [held[key] for key in sorted(held)]

    async def apply(self, zone: str, changes: Changes) -> None:
        self.apply_now(zone, changes)

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return endpoints

    # --- writes ----------------------------------------------------------------------------------

    def apply_now(self, zone: str, changes: Changes) -> None:
        """Validate the whole change set, then apply it whole; synchronous, so no query sees half of it."""
        self._apply(zone, changes, None)

    def _apply(self, zone: str, changes: Changes, serial: int | None) -> None:
        target = self._zone(zone)
        current = target.records
        seen: dict[tuple[str, str], str] = {}
        for kind, endpoints in (
            ("create", changes.create),
            ("update", changes.update_new),
            ("delete", changes.delete),
        ):
            for endpoint in endpoints:
                key = endpoint.key
                if key in seen:
                    raise ZoneTableError(f"{key[0]} {key[1]} appears twice ({seen[key]} and {kind})")
                seen[key] = kind
                exists = key in current
                if kind == "create" and exists:
                    raise ZoneTableError(f"cannot create {key[0]} {key[1]}: it already exists")
                if kind != "create" and not exists:
                    raise ZoneTableError(f"cannot {kind} {key[0]} {key[1]}: it does not exist")
        for endpoint in changes.update_old:
            if endpoint.key not in current:
                raise ZoneTableError(
                    f"cannot update {endpoint.dns_name} {endpoint.record_type}: it does not exist"
                )
        compiled = [
            (endpoint, *self._compile(target, endpoint))
            for endpoint in (*changes.create, *changes.update_new)
        ]
        if not compiled and not changes.delete:
            return
        changed: set[NameKey] = set()
        for endpoint in changes.delete:
            del current[endpoint.key]
            owner = name_key(_name(endpoint.dns_name, "name"))
            self._drop(target, owner, dns.rdatatype.from_text(endpoint.record_type))
            changed.add(owner)
        for endpoint, owner, served in compiled:
            current[endpoint.key] = endpoint
            self._put(target, owner, served)
            changed.add(owner)
        self._bump(target, changed, serial)
        self._tell_writers(ZoneWrite(zone, target.serial, changes=changes))

    def set_ns_names(self, zone: str, names: Iterable[str]) -> None:
        """The NS targets served at the zone apex (k8gb's glue names, e.g. gslb-ns-eu-cloud.example.com)."""
        self._set_ns_names(zone, names, None)

    def _set_ns_names(self, zone: str, names: Iterable[str], serial: int | None) -> None:
        target = self._zone(zone)
        target.ns_names = [_name(n, "NS name") for n in names]
        self._bump(target, None, serial, ns=True)
        self._tell_writers(ZoneWrite(zone, target.serial, ns_names=self._ns_texts(target)))

    # --- replication -----------------------------------------------------------------------------

    def on_write(self, listener: Callable[[ZoneWrite], None]) -> Callable[[], None]:
        """Call `listener(write)` after every accepted write, in order, so a replica can replay it.

        Refused change sets are never reported (they changed nothing). Returns the unsubscriber.
        """
        self._writers.append(listener)
        return lambda: self._writers.remove(listener)

    def mark_loaded(self) -> None:
        """End `loading`: the records are complete (every Gslb reconciled once). Until then a query
        inside our zones gets SERVFAIL, not an authoritative NXDOMAIN that resolvers would cache for
        the negative TTL: a restarted instance must not deny hosts it is about to serve, and SERVFAIL
        sends resolvers to the zone's other servers (the other clusters) meanwhile."""
        if self._loading:
            self._loading = False
            self._tell_writers(ZoneWrite("", 0, loaded=True))
            for listener in list(self._listeners):
                listener(None)

    @property
    def loading(self) -> bool:
        return self._loading

    def replay(self, write: ZoneWrite) -> None:
        """Apply a write another table accepted, ending at its serial (replicas call this)."""
        if write.loaded:
            self.mark_loaded()
            return
        if write.changes is not None:
            self._apply(write.zone, write.changes, write.serial)
        if write.ns_names is not None:
            self._set_ns_names(write.zone, write.ns_names, write.serial)

    def snapshot(self) -> TableSnapshot:
        """The whole table as plain data, consistent as of now (writes are synchronous)."""
        states = tuple(
            ZoneState(
                zone.config.load_balanced_zone,
                zone.serial,
                self._ns_texts(zone),
                tuple(zone.records[key] for key in sorted(zone.records)),
            )
            for zone in self._zones.values()
        )
        return TableSnapshot(
            tuple(self.zones), states, self._soa_mname, self._soa_rname, self._ns_ttl, self._loading
        )

    @classmethod
    def from_snapshot(cls, snapshot: TableSnapshot, geo: GeoLocator | None = None) -> ZoneTable:
        """A replica of the table `snapshot` was taken from, serials included."""
        table = cls(
            list(snapshot.zones),
            {state.zone: list(state.ns_names) for state in snapshot.states},
            soa_mname=snapshot.soa_mname,
            soa_rname=snapshot.soa_rname,
            ns_ttl=snapshot.ns_ttl,
            geo=geo,
            loading=snapshot.loading,
        )
        for state in snapshot.states:
            table._apply(state.zone, Changes(create=state.records), state.serial)
            zone = table._zone(state.zone)
            if zone.serial != state.serial:  # no records: nothing was applied
                table._bump(zone, None, state.serial)
        return table

    @staticmethod
    def _ns_texts(zone: _Zone) -> tuple[str, ...]:
        return tuple(name.to_text(omit_final_dot=True) for name in zone.ns_names)

    def _tell_writers(self, write: ZoneWrite) -> None:
        for listener in list(self._writers):
            listener(write)

    def subscribe(self, listener: Callable[[frozenset[NameKey] | None], None]) -> Callable[[], None]:
        """Call `listener(changed)` after every write, so servers drop the cached answers it affects.

        `changed` holds the keys (`name_key`) of the names whose answers may differ now: the owners
        written, their ancestors up to the zone apex, and the apex itself (its SOA serial moved). Every
        other name answers as before, negative answers included (their SOA may show an older serial,
        which resolvers only use for its negative TTL). None means anything may have changed. Returns
        the unsubscriber.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- reads (hot path callers) ----------------------------------------------------------------

    @property
    def zones(self) -> list[ZoneConfig]:
        return [z.config for z in self._zones.values()]

    def serial(self, zone: str) -> int:
        return self._zone(zone).serial

    def zone_of(self, qname: dns.name.Name) -> ZoneConfig | None:
        found = self._zone_of(name_key(qname))
        return found.config if found else None

    def lookup(self, qname: dns.name.Name, rdtype: int) -> Lookup | None:
        """NOERROR with an answer, NODATA or NXDOMAIN (both with SOA), SERVFAIL while loading; None when
        outside every zone."""
        key = name_key(qname)
        zone = self._zone_of(key)
        if zone is None:
            return None
        if self._loading:
            return Lookup(zone.config, dns.rcode.SERVFAIL)
        node = self._nodes.get(key, {})
        if key == zone.key:
            node = {**node, **zone.apex}
        elif not node and not self._ents[key]:
            node = self._wildcard(zone, key)
            if not node:
                return Lookup(zone.config, dns.rcode.NXDOMAIN, soa=zone.apex[dns.rdatatype.SOA].rrset)
        served = node.get(rdtype)
        if served is None and rdtype == dns.rdatatype.ANY and node:
            served = node.get(dns.rdatatype.SOA) or next(iter(node.values()))
        if served is None and rdtype != dns.rdatatype.CNAME:
            served = node.get(dns.rdatatype.CNAME)
        if served is None:
            return Lookup(zone.config, dns.rcode.NOERROR, soa=zone.apex[dns.rdatatype.SOA].rrset)
        return Lookup(zone.config, dns.rcode.NOERROR, answer=served)

    def _wildcard(self, zone: _Zone, key: NameKey) -> dict[int, ServedRRset]:
        """RFC 4592: the records of `*.<closest encloser>` for a name that does not exist, if there is
        one (the closest encloser being the nearest ancestor that exists, records or not). The answers
        render with the question's name as owner, which is how answer chunks are compiled anyway."""
        for start in range(1, len(key) - len(zone.key) + 1):
            encloser = key[start:]
            if encloser == zone.key or encloser in self._nodes or self._ents[encloser]:
                return self._nodes.get(_WILDCARD + encloser, {})
        return {}

    def locate(self, ip: str) -> str | None:
        """The client's location for geoip, memoised (cleared on every write and when it grows large)."""
        try:
            return self._located[ip]
        except KeyError:
            pass
        if len(self._located) >= _LOCATE_CACHE_MAX:
            self._located.clear()
        location = self._geo.locate(ip) if self._geo is not None else None
        self._located[ip] = location
        return location

    # --- internals -------------------------------------------------------------------------------

    def _zone(self, zone: str) -> _Zone:
        try:
            return self._zones[name_key(_name(zone, "zone"))]
        except KeyError:
            raise ZoneTableError(f"zone {zone!r} is not served here") from None

    def _zone_of(self, key: NameKey) -> _Zone | None:
        """The deepest of our zones holding the name `key`."""
        zones = self._zones
        for start in range(len(key)):
            zone = zones.get(key[start:])
            if zone is not None:
                return zone
        return None

    def _compile(self, zone: _Zone, endpoint: Endpoint) -> tuple[NameKey, ServedRRset]:
        owner = _name(endpoint.dns_name, "record name")
        key = name_key(owner)
        if self._zone_of(key) is not zone:
            raise ZoneTableError(f"{endpoint.dns_name} is not inside zone {zone.config.load_balanced_zone}")
        if endpoint.record_type not in SUPPORTED_TYPES:
            raise ZoneTableError(
                f"{endpoint.dns_name}: record type {endpoint.record_type!r} "
                f"is not one of {sorted(SUPPORTED_TYPES)}"
            )
        if not 0 <= endpoint.ttl <= _MAX_TTL:
            raise ZoneTableError(f"{endpoint.dns_name}: TTL {endpoint.ttl} is out of range")
        targets = list(dict.fromkeys(t.strip() for t in endpoint.targets))
        if not targets:
            raise ZoneTableError(f"{endpoint.dns_name}: a record needs at least one target")
        rdtype = dns.rdatatype.from_text(endpoint.record_type)
        try:
            rdatas = [_rdata(rdtype, t) for t in targets]
        except (dns.exception.DNSException, ValueError) as exc:
            raise ZoneTableError(f"{endpoint.dns_name}: bad {endpoint.record_type} target: {exc}") from None
        rrset = dns.rrset.from_rdata_list(owner, endpoint.ttl, rdatas)
        policy = _policy(endpoint, rdtype, targets, self._geo)
        chunks = _answer_chunks(rrset)
        if sum(map(len, chunks)) > _MAX_ANSWER_BYTES:
            raise ZoneTableError(f"{endpoint.dns_name}: {len(targets)} targets do not fit one DNS response")
        return key, ServedRRset(rrset, chunks, policy)

    def _put(self, zone: _Zone, owner: NameKey, served: ServedRRset) -> None:
        node = self._nodes.get(owner)
        if node is None:
            node = self._nodes[owner] = {}
            for ancestor in _between(zone, owner):
                self._ents[ancestor] += 1
        node[served.rrset.rdtype] = served

    def _drop(self, zone: _Zone, owner: NameKey, rdtype: int) -> None:
        node = self._nodes.get(owner)
        if node is None:
            return
        node.pop(rdtype, None)
        if not node:
            del self._nodes[owner]
            for ancestor in _between(zone, owner):
                self._ents[ancestor] -= 1
                if self._ents[ancestor] <= 0:
                    del self._ents[ancestor]

    def _bump(
        self, zone: _Zone, changed: set[NameKey] | None, serial: int | None = None, *, ns: bool = False
    ) -> None:
        zone.serial = (zone.serial + 1) % _SERIAL_MOD if serial is None else serial
        if ns:
            self._build_apex(zone)
        else:
            self._renew_serial(zone)
        self._located.clear()
        scope = None
        if changed is not None and not any(self._below_wildcard(zone, name) for name in changed):
            # A write can turn an ancestor into (or out of) an empty non-terminal: its answers change too.
            # A wildcard's write, or a write of a name a wildcard covers, changes the answers of names
            # nobody listed (RFC 4592: a name that appears or goes is, or stops being, the closest
            # encloser of the names below it): everything goes. Wildcards are rare; other writes drop
            # only their own names' answers.
            scope = frozenset({zone.key, *changed, *(a for name in changed for a in _between(zone, name))})
        for listener in list(self._listeners):
            listener(scope)

    def _below_wildcard(self, zone: _Zone, name: NameKey) -> bool:
        """Whether `name` is a wildcard or a wildcard at it or above it (in its zone) may answer for
        names below it."""
        if name[:1] == _WILDCARD:
            return True
        return any(_WILDCARD + at in self._nodes for at in (name, *_between(zone, name), zone.key))

    def _renew_serial(self, zone: _Zone) -> None:
        """The apex SOA with the zone's new serial, the rest kept: every write does this, so it splices
        the serial into the rendered answer (RFC 1035: the last 20 bytes of SOA rdata are serial,
        refresh, retry, expire, minimum) instead of rendering the SOA and NS again."""
        old = zone.apex[dns.rdatatype.SOA]
        rrset = dns.rrset.from_rdata(zone.origin, old.rrset.ttl, old.rrset[0].replace(serial=zone.serial))
        (chunk,) = old.chunks
        spliced = chunk[:-20] + zone.serial.to_bytes(4, "big") + chunk[-16:]
        zone.apex = {**zone.apex, dns.rdatatype.SOA: ServedRRset(rrset, (spliced,), old.policy)}

    def _build_apex(self, zone: _Zone) -> None:
        origin_text = zone.origin.to_text()
        neg_ttl = zone.config.neg_ttl
        ns_names = zone.ns_names
        mname = self._soa_mname or (ns_names[0].to_text() if ns_names else f"ns.{origin_text}")
        rname = self._soa_rname or f"hostmaster.{origin_text}"
        soa_text = f"{mname.rstrip('.')}. {rname.rstrip('.')}. {zone.serial} 3600 600 86400 {neg_ttl}"
        soa = dns.rrset.from_text_list(zone.origin, neg_ttl, "IN", "SOA", [soa_text])
        ns = dns.rrset.from_rdata_list(
            zone.origin,
            self._ns_ttl,
            [dns.rdata.from_text("IN", "NS", n.to_text()) for n in ns_names or [dns.name.from_text(mname)]],
        )
        zone.apex = {
            dns.rdatatype.SOA: ServedRRset(soa, _answer_chunks(soa), OrderPolicy(Mode.FIXED)),
            dns.rdatatype.NS: ServedRRset(ns, _answer_chunks(ns), OrderPolicy(Mode.FIXED)),
        }


def _between(zone: _Zone, owner: NameKey) -> list[NameKey]:
    """Ancestors strictly between `owner` and the apex of `zone` (which holds it): the empty
    non-terminals while owner exists. The zone is known to every caller, so no lookup here."""
    return [owner[start:] for start in range(1, len(owner) - len(zone.key))]
