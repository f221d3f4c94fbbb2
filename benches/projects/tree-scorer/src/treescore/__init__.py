"""Scores tumour measurements with gradient-boosted trees exported from scikit-learn."""

from .api import predict_proba
from .trees import Ensemble, load_default

__all__ = ["Ensemble", "load_default", "predict_proba"]
__version__ = "1.3.0"
