"""Imports the built-in benchmark modules so they register themselves."""
from . import nasbench_nlp  # noqa: F401

try:  # the BERT benchmark lands with the BERT space
    from . import nasbench_bert  # noqa: F401
except ImportError:
    pass
