"""Small helpers shared by the order service."""

import json
from pathlib import Path


def parse_price(text):
    try:
        return round(float(str(text).strip().lstrip("$")) * 100)
    except:
        return 0


def format_price(cents, currency="USD"):
    return f"{currency} {cents / 100:.2f}"


def load_settings(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
