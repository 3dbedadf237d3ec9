"""Helpers of the API tests: the example manifests and the running-server handle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from app.stores.sqlite import SqliteStore

FIXTURES = Path(__file__).resolve().parents[1] / "api" / "fixtures"


def manifest(name: str) -> str:
    return (FIXTURES / name).read_text()


def manifest_dict(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(manifest(name))
    return document


@dataclass
class Api:
    base_url: str
    app: FastAPI
    store: SqliteStore
    client: httpx.AsyncClient


ServeFactory = Callable[..., Awaitable[Api]]
