"""Imports the built-in benchmark modules so they register themselves."""
from . import lts_gpt2, nasbench_bert, nasbench_nlp  # noqa: F401
