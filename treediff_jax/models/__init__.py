"""The policy and value models, built from a `ModelConfig`.

`treediff_jax.model_configs` builds the config of a language and a size
(this package knows no languages).
"""

from treediff_jax.models.config import ModelConfig
from treediff_jax.models.decoder import TreeDecoder
from treediff_jax.models.kv_cache import EditCache, PrefixCache
from treediff_jax.models.policy import PolicyModel
from treediff_jax.models.value import ValueModel
from treediff_jax.models.vit import ViTEncoder

__all__ = [
  "EditCache",
  "ModelConfig",
  "PolicyModel",
  "PrefixCache",
  "TreeDecoder",
  "ValueModel",
  "ViTEncoder",
]
