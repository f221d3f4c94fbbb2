from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Sequence

LEAF = -1


@dataclass(frozen=True)
class Tree:
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def leaf_value(self, row: Sequence[float]) -> float:
        node = 0
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        while left[node] != LEAF:
            node = left[node] if row[feature[node]] <= threshold[node] else right[node]
        return self.value[node]


@dataclass
class Ensemble:
    features: list[str]
    classes: list[str]
    learning_rate: float
    base_score: float
    trees: list[Tree] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> "Ensemble":
        raw = json.loads(text)
        if raw.get("format") != "treescore/1":
            raise ValueError(f"unknown model format {raw.get('format')!r}")
        trees = [
            Tree(*(tuple(t[k]) for k in ("feature", "threshold", "left", "right", "value")))
            for t in raw["trees"]
        ]
        return cls(raw["features"], raw["classes"], raw["learning_rate"], raw["base_score"], trees)

    def margin(self, row: Sequence[float]) -> float:
        return self.base_score + self.learning_rate * math.fsum(t.leaf_value(row) for t in self.trees)

    def proba(self, row: Sequence[float]) -> list[float]:
        positive = 1.0 / (1.0 + math.exp(-self.margin(row)))
        return [1.0 - positive, positive]


@lru_cache(maxsize=1)
def load_default() -> Ensemble:
    text = resources.files(__package__).joinpath("model.json").read_text(encoding="utf-8")
    return Ensemble.from_json(text)
