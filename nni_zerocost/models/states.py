"""The one hook a user's own recurrent cell calls: :func:`report_state`.

A cell that is not ``nn.RNN``/``nn.LSTM``/``nn.GRU`` hands the hidden state entering each step
to :func:`report_state` and goes on with what it returns::

    for t in range(T):
        h = report_state(self.cell, h)      # the state entering step t
        h = self.cell(x[:, t], h)

Outside scoring it returns ``state`` unchanged and costs one lookup.  While nni-zerocost scores
the model it records the state, so ``hidden_covariance`` (the ``recurrent_states`` capability)
works on the cell.  ``module`` names the layer: each distinct module is one recurrent layer,
numbered in the order the forward first reports it.  ``state`` is a tensor ``(B, H)`` or a tuple
whose first element is (LSTM-style ``(h, c)``: ``h`` is recorded).
"""
from __future__ import annotations

import contextvars
from typing import Any

#: the recorder of the pass in progress, or None (outside scoring)
ACTIVE: contextvars.ContextVar = contextvars.ContextVar("nni_zerocost_state_recorder", default=None)


def report_state(module: Any, state: Any) -> Any:
    """Report the hidden state entering a step of ``module``'s recurrence; returns ``state``."""
    recorder = ACTIVE.get()
    if recorder is None:
        return state
    recorder.report(module, state)
    return state
