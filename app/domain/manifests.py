"""Reading manifests as the Kubernetes YAML decoder does, for the API and the CLI alike.

Stricter than `yaml.safe_load` where it silently loses or changes data: duplicate keys are an error
(the last one would win unseen), timestamps stay strings (`2024-01-01` is text to the API server, not a
date that JSON cannot carry), YAML 1.1's base-60 numbers stay strings (`12:30` is text to the API
server's decoder, and PyYAML builds `1:0:0:...` in quadratic time: a 1 MB body took 25 s), and aliases
are refused (a few hundred bytes of aliases can expand to gigabytes).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import yaml
from yaml.nodes import MappingNode


class StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader without timestamps, aliases or duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not supported", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate field {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_INT, _FLOAT, _TIMESTAMP = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "timestamp"))
# PyYAML's int and float patterns without their base-60 forms (`[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+...`).
_NUMBERS = {
    _INT: re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    _FLOAT: re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
}

StrictYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, _NUMBERS.get(tag, regexp)) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _no_base_60(kind: str, construct: Any) -> Any:
    """An explicit `!!int 1:30` is refused rather than built (quadratic in its length)."""

    def refuse_base_60(loader: StrictYamlLoader, node: yaml.ScalarNode) -> Any:
        if ":" in str(node.value):
            raise yaml.constructor.ConstructorError(
                None, None, f"base-60 {kind} {str(node.value)[:20]!r}... is not supported", node.start_mark
            )
        return construct(loader, node)

    return refuse_base_60


StrictYamlLoader.add_constructor(_INT, _no_base_60("integer", yaml.SafeLoader.construct_yaml_int))
StrictYamlLoader.add_constructor(_FLOAT, _no_base_60("number", yaml.SafeLoader.construct_yaml_float))


def load_documents(text: str) -> list[Any]:
    """Every document of a YAML (or JSON) stream, empty ones left out; raises `yaml.YAMLError`."""
    return [doc for doc in yaml.load_all(text, Loader=StrictYamlLoader) if doc is not None]  # noqa: S506
