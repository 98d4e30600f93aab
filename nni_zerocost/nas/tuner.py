"""HPO route: one tuner block in an NNI YAML config names the search algorithm and the proxy.

:class:`ZeroCostTuner` delegates every decision to a built-in NNI tuner created by NNI's own
factory (``algorithm``: ``TPE``, ``Evolution``, ``Random``, ``GridSearch``, ``Anneal``, ...;
``optimize_mode: maximize`` is filled in for tuners that take it).  It only adds the scoring
request (:class:`~nni_zerocost.ScoringRequest` as JSON: space, proxies, seed, batch, device and
the space's context options) to each parameter set under the reserved key
:data:`SETTINGS_KEY`, which the trial entry point ``python -m nni_zerocost.nas.trial`` reads,
and strips it again before results reach the inner tuner.  It also checks that the
experiment's search space is the space's (labels from :func:`~.codec.search_space_json`).

Use it unregistered::

    tuner:
      className: nni_zerocost.nas.tuner.ZeroCostTuner
      codeDirectory: .
      classArgs: {space: rnn, proxy: hidden_covariance, algorithm: TPE}

or register it once (``nnictl algo register --meta examples/nni_zerocost_tuner_meta.yml``) and
write ``name: ZeroCost``.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence

from nni.tuner import Tuner

#: parameter key carrying the scoring settings from the tuner to the trial
SETTINGS_KEY = "_zerocost"


def builtin_tuner(algorithm: str, args: Optional[Dict[str, Any]] = None) -> Tuner:
    """A built-in NNI tuner by name, maximising unless ``args`` says otherwise."""
    from nni.tools.package_utils.tuner_factory import (
        create_builtin_class_instance,
        get_builtin_module_class_name,
    )
    import importlib

    args = dict(args or {})
    module, cls_name = get_builtin_module_class_name("tuners", algorithm)
    if module is None:
        from ..errors import BadInputError

        raise BadInputError("algorithm", "unknown NNI tuner (use a built-in name such as TPE, Evolution, Random)",
                            repr(algorithm))
    params = inspect.signature(getattr(importlib.import_module(module), cls_name)).parameters
    if "optimize_mode" in params:
        args.setdefault("optimize_mode", "maximize")
    return create_builtin_class_instance(algorithm, args, "tuners")


class ZeroCostTuner(Tuner):
    """Built-in NNI tuner ``algorithm`` + the zero-cost scoring settings for the trials."""

    def __init__(self, space: str, proxy: str = "hidden_covariance", algorithm: str = "TPE",
                 algorithm_args: Optional[Dict[str, Any]] = None, extra_proxies: Sequence[str] = (),
                 **request_fields: Any):
        # nothing here imports torch: NNI gives the tuner process 10 s to connect, so the
        # request is checked in update_search_space; device unset: each trial's --device decides
        self.space = space
        self.proxies = [proxy, *extra_proxies]
        self.request_fields = dict(request_fields)
        self.settings: Optional[Dict[str, Any]] = None
        self.inner = builtin_tuner(algorithm, algorithm_args)

    def _with(self, params):
        return {**params, SETTINGS_KEY: dict(self.settings or {})} if isinstance(params, dict) else params

    @staticmethod
    def _without(params):
        return {k: v for k, v in params.items() if k != SETTINGS_KEY} if isinstance(params, dict) else params

    def update_search_space(self, search_space) -> None:
        # checked here, not in __init__: NNI gives the tuner process 10 s to connect, and
        # loading the proxies imports torch
        from ..errors import BadInputError
        from ..job import ScoringJob, check_job
        from .codec import get_codec

        job = ScoringJob.of(self.proxies, self.space, store=None, **self.request_fields)
        check_job(job, need_architectures=False)
        request = job.request
        # fields left unset stay unset, so each trial's own flags (e.g. --device) decide them
        self.settings = {k: v for k, v in request.to_json().items()
                         if k in ("space", "proxies", "options") or k in self.request_fields}
        expected = get_codec(self.space).choices()
        missing = [label for label in expected if label not in (search_space or {})]
        if missing:
            raise BadInputError(
                "search_space", f"the experiment's search space is not the {self.space!r} space: it lacks "
                f"{len(missing)} label(s) ({', '.join(missing[:4])}...); export it with "
                f"nni_zerocost.nas.write_search_space({self.space!r}, path)"
            )
        self.inner.update_search_space(search_space)

    def generate_parameters(self, parameter_id: int, **kwargs):
        return self._with(self.inner.generate_parameters(parameter_id, **kwargs))

    def generate_multiple_parameters(self, parameter_id_list: List[int], **kwargs):
        callback = kwargs.get("st_callback")
        if callback is not None:  # tuners like Evolution send late trials through it
            kwargs["st_callback"] = lambda pid, params: callback(pid, self._with(params))
        return [self._with(p) for p in self.inner.generate_multiple_parameters(parameter_id_list, **kwargs)]

    def receive_trial_result(self, parameter_id: int, parameters, value, **kwargs) -> None:
        self.inner.receive_trial_result(parameter_id, self._without(parameters), value, **kwargs)

    def trial_end(self, parameter_id: int, success: bool, **kwargs) -> None:
        self.inner.trial_end(parameter_id, success, **kwargs)

    def import_data(self, data) -> None:
        self.inner.import_data([{**d, "parameter": self._without(d.get("parameter", {}))} for d in data])
