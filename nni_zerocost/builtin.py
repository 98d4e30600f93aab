"""The modules whose import registers the built-in entries of each registry, loaded by the
registry itself on first use (:class:`~nni_zerocost.registry.Registry`), as installed plugins are
loaded from their entry points.  Nothing imports these modules directly."""

#: search spaces (each package registers its space and its benchmarks)
SPACES = ("nni_zerocost.spaces.rnn", "nni_zerocost.spaces.bert", "nni_zerocost.spaces.gpt2", "nni_zerocost.spaces.model",
          "nni_zerocost.spaces.hf")
#: proxies (in this order: a name registered by two modules lists its first module's form first)
PROXIES = tuple(f"nni_zerocost.proxies.{name}" for name in (
    "bert_activation", "bert_pruning", "hidden_covariance", "naswot", "params", "saliency", "bert_capacity",
    "gradient_statistics", "rnn_dynamics"))
#: readers of a user's own model (tried latest first)
MODEL_ADAPTERS = ("nni_zerocost.models.recurrent", "nni_zerocost.models.transformer")
