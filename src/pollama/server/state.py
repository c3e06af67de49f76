"""What every route can reach: settings, the model store and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from pollama.config import Settings

if TYPE_CHECKING:
    from pollama.scheduler import Scheduler
    from pollama.store import Store


@dataclass
class AppState:
    settings: Settings
    store: Store
    scheduler: Scheduler


def app_state(request: Request) -> AppState:
    return request.app.state.pollama
