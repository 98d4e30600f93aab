"""Imports every built-in proxy module so that their decorators register them."""
from . import bert_activation, bert_pruning, hidden_covariance, naswot, params, saliency  # noqa: F401
from . import bert_capacity, gradient_statistics, rnn_dynamics  # noqa: F401
