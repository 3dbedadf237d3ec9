"""Reading manifests as the Kubernetes YAML decoder does, for the API and the CLI alike.

Stricter than `yaml.safe_load` where it silently loses or changes data: duplicate keys are an error
(the last one would win unseen), timestamps stay strings (`2024-01-01` is text to the API server, not a
date that JSON cannot carry), and aliases are refused (a few hundred bytes of aliases can expand to
gigabytes).
"""

from __future__ import annotations

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


StrictYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str) -> list[Any]:
    """Every document of a YAML (or JSON) stream, empty ones left out; raises `yaml.YAMLError`."""
    return [doc for doc in yaml.load_all(text, Loader=StrictYamlLoader) if doc is not None]  # noqa: S506
