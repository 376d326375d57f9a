"""The model registry: durable versions, configuration revisions, deployments, audit trail."""

from .catalogue import CatalogueEntry, builtin_models, catalogue_entry
from .config import ModelConfig, TuningSpec, validate_model_name
from .store import ENVIRONMENTS, Registry

__all__ = [
    "ENVIRONMENTS",
    "CatalogueEntry",
    "ModelConfig",
    "Registry",
    "TuningSpec",
    "builtin_models",
    "catalogue_entry",
    "validate_model_name",
]
