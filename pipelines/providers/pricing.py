"""Cost accounting from a price table (USD per million tokens, per provider and model).

The table ships as ``prices.yaml`` beside this module; a deployment may point at
its own file. Model names match exactly, then by the longest known prefix, so a
dated snapshot (``claude-sonnet-4-5-20250929``) costs what its family costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.errors import ConfigError
from pipelines.providers.base import Usage

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable"]

DEFAULT_PRICES = Path(__file__).with_name("prices.yaml")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


class PriceTable:
    """Prices by provider and model; unknown models cost 0.0 (see :meth:`known`)."""

    def __init__(self, prices: Mapping[str, Mapping[str, Price]]) -> None:
        self._prices = {p: dict(models) for p, models in prices.items()}

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PRICES) -> PriceTable:
        """Read a YAML price file; raises ``ConfigError`` naming the file and entry."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"price table {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"price table {path}: expected provider -> model -> prices")
        table: dict[str, dict[str, Price]] = {}
        for provider, models in raw.items():
            if not isinstance(models, dict):
                raise ConfigError(f"price table {path}: {provider!r} must map models to prices")
            for model, price in models.items():
                try:
                    table.setdefault(str(provider), {})[str(model)] = Price(
                        float(price["input"]), float(price["output"])
                    )
                except (TypeError, KeyError, ValueError):
                    raise ConfigError(
                        f"price table {path}: {provider}.{model} needs numeric 'input' and 'output'"
                    ) from None
        return cls(table)

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model``: exact match, else the longest known prefix."""
        models = self._prices.get(provider, {})
        if model in models:
            return models[model]
        best = max((m for m in models if model.startswith(m)), key=len, default=None)
        return models[best] if best else None

    def known(self, provider: str, model: str) -> bool:
        return self.price(provider, model) is not None

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        """USD for ``usage`` on ``model`` (0.0 when the model is not in the table)."""
        price = self.price(provider, model)
        return round(price.cost(usage), 10) if price else 0.0
