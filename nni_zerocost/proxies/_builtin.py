"""Imports every built-in proxy module so that their decorators register them."""
from . import hidden_covariance, naswot, params, saliency  # noqa: F401
