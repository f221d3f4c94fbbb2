from __future__ import annotations

from collections.abc import Mapping

from .trees import load_default


class MissingFeature(KeyError):
    pass


def predict_proba(measurements: Mapping[str, float]) -> dict[str, float]:
    """Class probabilities for one row of measurements keyed by feature name."""
    model = load_default()
    try:
        row = [float(measurements[name]) for name in model.features]
    except KeyError as missing:
        raise MissingFeature(f"no value for feature {missing.args[0]!r}") from None
    return dict(zip(model.classes, model.proba(row)))
