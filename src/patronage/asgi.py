"""ASGI entry point for multi-process servers: ``uvicorn patronage.asgi:app --workers N``."""

from patronage.app import create_app
from patronage.config import get_settings
from patronage.kit.garbage import settle_for_serving
from patronage.kit.logging import configure_logging

configure_logging(get_settings().log_level, get_settings().log_json)
app = create_app()
settle_for_serving()  # each server process imports this module once, then serves until it stops
