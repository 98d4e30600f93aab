"""Random cells, faithful to NAS-Bench-NLP's ``RecepieGenerator``.

Re-implemented from the published description and verified against the benchmark: with
``intermediate_vertices=13`` and ``np.random.seed(seed)`` per recipe, the seeds listed in
``nasbench_nlp_recipe_ids.csv.gz`` regenerate exactly the benchmark's cells.  Two details make
that possible:

* the legacy ``RandomState`` stream and its ``choice`` semantics are used (a ``Generator``
  would draw different numbers); a private ``RandomState(seed)`` gives the same numbers as
  the official ``np.random.seed(seed)`` without touching the global state;
* the official code built the previous-state candidates for blend/product/sum nodes by
  iterating a Python ``set``; the order that iteration happened to give in the original run is
  fixed here (:data:`PREV_STATE_ORDER`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .cell import ACTIVATIONS, Cell

#: the three handcrafted cells at the head of the official recipe list (ids 1000000-1000002):
#: a plain RNN, an LSTM and a GRU, as NAS-Bench-NLP's code writes them
HANDCRAFTED = {
    "rnn": {"f": {"op": "linear", "input": ["x", "h_prev_0"]},
            "h_new_0": {"op": "activation_tanh", "input": ["f"]}},
    "lstm": {
        "i": {"op": "linear", "input": ["x", "h_prev_0"]}, "i_act": {"op": "activation_tanh", "input": ["i"]},
        "j": {"op": "linear", "input": ["x", "h_prev_0"]}, "j_act": {"op": "activation_sigm", "input": ["j"]},
        "f": {"op": "linear", "input": ["x", "h_prev_0"]}, "f_act": {"op": "activation_sigm", "input": ["f"]},
        "o": {"op": "linear", "input": ["x", "h_prev_0"]}, "o_act": {"op": "activation_tanh", "input": ["o"]},
        "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
        "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
        "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
        "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
        "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
    },
    "gru": {
        "r": {"op": "linear", "input": ["x", "h_prev_0"]}, "r_act": {"op": "activation_sigm", "input": ["r"]},
        "z": {"op": "linear", "input": ["x", "h_prev_0"]}, "z_act": {"op": "activation_sigm", "input": ["z"]},
        "rh": {"op": "elementwise_prod", "input": ["r_act", "h_prev_0"]},
        "h_tilde": {"op": "linear", "input": ["x", "rh"]}, "h_tilde_act": {"op": "activation_tanh", "input": ["h_tilde"]},
        "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "h_tilde_act"]},
    },
}

MAIN_OPS = ("linear", "blend", "elementwise_prod", "elementwise_sum")
MAIN_WEIGHTS = (3.0, 1.0, 1.0, 1.0)
LINEAR_FAN_IN = (2, 3)
LINEAR_FAN_IN_WEIGHTS = (4.0, 1.0)
#: order of ``set(h_prev_*)`` iteration in the original benchmark run, per hidden tuple size
PREV_STATE_ORDER = {
    1: ["h_prev_0"],
    2: ["h_prev_1", "h_prev_0"],
    3: ["h_prev_1", "h_prev_0", "h_prev_2"],
}


class CellGenerator:
    """Draw NAS-Bench-NLP-style random cells.

    ``generate(seed)`` returns ``(recipe, ok)`` exactly like the official generator, where
    ``ok`` is its sanity check (every input used; no h_prev feeding an h_new directly).
    """

    def __init__(self, hidden_tuple_size: int = 2, intermediate_vertices: int = 13):
        if hidden_tuple_size not in PREV_STATE_ORDER:
            raise ValueError(f"hidden_tuple_size must be 1, 2 or 3, got {hidden_tuple_size}")
        self.hidden_tuple_size = hidden_tuple_size
        self.intermediate_vertices = intermediate_vertices
        w = np.asarray(MAIN_WEIGHTS)
        self._p_main = w / w.sum()
        self._p_act = np.ones(len(ACTIVATIONS)) / len(ACTIVATIONS)
        f = np.asarray(LINEAR_FAN_IN_WEIGHTS)
        self._p_fan = f / f.sum()

    def generate(self, seed: Optional[int] = None) -> Tuple[Dict[str, dict], bool]:
        self._rs = np.random.RandomState(seed)
        k = self.hidden_tuple_size
        prev = [f"h_prev_{i}" for i in range(k)]
        base = ["x"] + prev
        recipe: Dict[str, dict] = {}
        self._grow(recipe, base)
        self._name_outputs(recipe)
        reached = self._prune(recipe)
        ok = all(n in reached for n in base) and not any(
            set(recipe[f"h_new_{i}"]["input"]) & set(prev) for i in range(k)
        )
        return recipe, ok

    def sample(self, seed: Optional[int] = None, max_tries: int = 10_000) -> Cell:
        """First valid cell from ``seed``, ``seed+1``, ... (how the benchmark was drawn)."""
        start = 0 if seed is None else int(seed)
        for s in range(start, start + max_tries):
            recipe, ok = self.generate(s)
            if ok:
                return Cell.parse(recipe)
        raise RuntimeError(f"no valid cell in {max_tries} seeds from {start}")

    # -- the three stages of the official generator --------------------------------------
    def _grow(self, recipe: Dict[str, dict], base: List[str]) -> None:
        budget = self.hidden_tuple_size + self.intermediate_vertices
        acts: List[str] = []
        i = 0
        while i < budget:
            op = self._rs.choice(MAIN_OPS, 1, p=self._p_main)[0]
            if op == "linear":
                fan = self._rs.choice(LINEAR_FAN_IN, 1, p=self._p_fan)[0]
                cands = base + acts
                fan = min(fan, len(cands))
                ins = self._rs.choice(cands, fan, replace=False)
                recipe[f"node_{i}"] = {"op": "linear", "input": [str(s) for s in ins]}
                i += 1
                act = self._rs.choice(ACTIVATIONS, 1, p=self._p_act)[0]
                recipe[f"node_{i}"] = {"op": str(act), "input": [f"node_{i - 1}"]}
                acts.append(f"node_{i}")
                i += 1
            else:
                fan = 3 if op == "blend" else 2
                cands = PREV_STATE_ORDER[self.hidden_tuple_size] + list(recipe)
                if fan <= len(cands):
                    ins = self._rs.choice(cands, fan, replace=False)
                    recipe[f"node_{i}"] = {"op": str(op), "input": [str(s) for s in ins]}
                    i += 1

    def _name_outputs(self, recipe: Dict[str, dict]) -> None:
        chosen = self._rs.choice(list(recipe), self.hidden_tuple_size, replace=False)
        rename = {str(old): f"h_new_{j}" for j, old in enumerate(chosen)}
        for old, new in rename.items():
            recipe[new] = recipe.pop(old)
        for spec in recipe.values():
            spec["input"] = [rename.get(s, s) for s in spec["input"]]

    def _prune(self, recipe: Dict[str, dict]) -> set:
        queue = [f"h_new_{i}" for i in range(self.hidden_tuple_size)]
        seen = set(queue)
        while queue:
            n = queue.pop(0)
            for s in recipe.get(n, {"input": []})["input"]:
                if s not in seen:
                    seen.add(s)
                    queue.append(s)
        for n in [n for n in recipe if n not in seen]:
            del recipe[n]
        return seen
