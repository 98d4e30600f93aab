"""nni-zerocost proxies as NASLib predictors and as NASLib zero-cost measures.

* :class:`ZeroCostProxyPredictor` -- a ``naslib.predictors.Predictor`` for any of our proxies.
* :func:`register_naslib_measures` (run on import) -- adds our proxies to NASLib's measure
  registry, so ``ZeroCost(method_type="hidden_covariance").query(graph, dataloader=...)`` works
  on the spaces of :mod:`naslib_ext.search_spaces`.

Both score through the core: one checked job (:func:`nni_zerocost.check_job`), many architectures
through the runner (:func:`nni_zerocost.runner.run`, with ``workers`` and a result store); nothing is
re-implemented here.

Data: a NASLib data loader's first ``(inputs, targets)`` pair becomes the batch through the
space's ``NASLibForm.batch_of_inputs`` (token ids ``(B, T)``, batch-first).  The loaders
:mod:`naslib_ext.routes` hands NASLib for our datasets yield :data:`NO_DATA` (token ids -1,
which no real loader yields): "no data needed", scored on the space's own default batch.

NaN policy: predictions are the proxy's normalised score (:attr:`ProxyResult.score`, higher is
better), flagged finite fallbacks included.  An architecture the proxy cannot score (a flagged
NaN, e.g. a cell whose hidden states explode) is predicted :data:`NO_SCORE` = -1e8, the value
NASLib's own ``ZeroCost`` gives a NaN measure, so both paths agree and such architectures rank
last.  :meth:`ZeroCostProxyPredictor.query_results` returns the full results, flags included,
for callers that want to exclude them instead.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch

from .compat import import_naslib

import_naslib()

from naslib.predictors.predictor import Predictor  # noqa: E402
from naslib.predictors.utils.pruners import measures as naslib_measures  # noqa: E402

import nni_zerocost  # noqa: E402
from nni_zerocost.errors import InvalidArchitectureError, ProxyNotApplicableError  # noqa: E402
from nni_zerocost.job import CheckedJob, ScoringJob, check_job  # noqa: E402
from nni_zerocost.plan import ScoringPlan, make_plan, plans_for_any_space  # noqa: E402
from nni_zerocost.proxies import ProxyResult  # noqa: E402
from nni_zerocost.runner import raise_for_error, run, score_one  # noqa: E402
from nni_zerocost.spaces import get_space  # noqa: E402
from nni_zerocost.store import ResultStore  # noqa: E402

NO_SCORE = -1e8
#: seed of the models scored through NASLib's ZeroCost (it has no seed argument)
MEASURE_SEED = 0
#: measure names NASLib's ``find_measures`` handles itself before consulting the registry
NASLIB_SPECIAL_MEASURES = ("flops", "params")
QUALIFIED_PREFIX = "nni_zerocost."
#: the inputs of a "no data needed" loader: token ids -1, which no real data loader yields
NO_DATA = torch.full((1, 2), -1, dtype=torch.long)


def is_no_data(inputs) -> bool:
    return isinstance(inputs, torch.Tensor) and inputs.numel() > 0 and bool((inputs < 0).all())


def batch_from_inputs(space: str, inputs) -> Any:
    """The core batch of a NASLib loader's inputs (None: :data:`NO_DATA`, the space's default)."""
    if is_no_data(inputs):
        return None
    convert = get_space(space).naslib_form().batch_of_inputs
    if convert is None:
        raise ProxyNotApplicableError(
            f"the {space!r} space takes no batch from a NASLib data loader; pass the loader naslib_ext "
            "gives for its dataset (no data needed: its default batch), or score with ZeroCostProxyPredictor"
        )
    return convert(inputs)


def token_loader(batch):
    """A one-batch NASLib data loader over a core token batch: ``[(inputs, targets)]``, batch-first."""
    inputs = batch.tokens.t().contiguous()
    return [(inputs, inputs[:, 1:])]


class ZeroCostProxyPredictor(Predictor):
    """Predict with one nni-zerocost proxy; nothing to fit.

    ``proxy`` is a name or spec (``"hidden_covariance:layer=2"``).  The input batch is, in order
    of precedence: ``dataloader`` given to :meth:`query` (its first ``(inputs, targets)`` pair),
    ``batch`` (any core batch object), ``corpus`` (e.g. a PTB-style folder), else the space's
    embedded default batch.  ``seed`` seeds the model initialisation; other keywords are the
    space's context options (``init=``, ``as_trained=``).  ``space`` names the core space for
    raw architectures; it defaults to the proxy's only space.  ``device``: ``"auto"`` (CUDA when
    available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.  ``workers``: processes scoring a list
    (the core's runner); ``store``: a result store path, so architectures scored before (by
    this predictor, the CLI or the core) are not scored again.

    ``query(xtest, info)`` follows both NASLib conventions: a list of architectures (as
    ``PredictorEvaluator`` passes) gives an ``np.ndarray``; one architecture (NASLib graph,
    ``torch.nn.Module`` with ``.arch``, or a core architecture) gives a float.
    """

    def __init__(self, proxy: str = "hidden_covariance", corpus=None, seed: int = 0, *, batch=None,
                 space: Optional[str] = None, ss_type=None, encoding_type=None, device="auto", workers: int = 1,
                 store=None, **options):
        super().__init__(ss_type=ss_type, encoding_type=encoding_type)
        self.proxy = proxy
        self.method_type = proxy  # NASLib's PredictorEvaluator prints this
        self.seed = int(seed) if isinstance(seed, (int, np.integer)) else seed
        self.corpus = corpus
        self.device = device
        self.workers = workers
        store_path = None if store is None else str(store.path if isinstance(store, ResultStore) else store)
        # one job, checked once per space here (BadInputError names what is wrong)
        self.job = ScoringJob.of([proxy], space, seed=self.seed, corpus=None if corpus is None else str(corpus),
                                 device=device, workers=workers, store=store_path, **options)
        self._batch = batch
        spaces = [space] if space is not None else list(plans_for_any_space(self.job.request))
        self._jobs: Dict[str, CheckedJob] = {s: self._checked(s, batch) for s in spaces}
        self._plans = {s: j.plan for s, j in self._jobs.items()}
        if space is None and len(self._plans) == 1:
            space = next(iter(self._plans))
        self.space = space

    def _checked(self, space: str, batch, items=()) -> CheckedJob:
        job = self.job.replace(request=self.job.request.replace(space=space), architectures=tuple(items))
        if batch is not None:
            job = job.replace(request=job.request.replace(corpus=None), workers=1)
        return check_job(job, need_architectures=False, batch=batch)

    # -- NASLib Predictor interface ------------------------------------------------------
    def fit(self, xtrain, ytrain, train_info=None, **kwargs):
        """Zero-cost: nothing is learned from labelled architectures."""
        return None

    def get_data_reqs(self):
        """Needs no learning curve, hyperparameters, unlabeled or training architectures."""
        return {"requires_partial_lc": False, "metric": None, "requires_hyperparameters": False,
                "hyperparams": {}, "unlabeled": False, "unlabeled_factor": 0}

    def query(self, xtest, info=None, dataloader=None):
        """Scores (higher = better; :data:`NO_SCORE` where the proxy has none)."""
        if _is_many(xtest):
            return np.array([_value(r) for r in self.query_results(xtest, dataloader)], dtype=np.float64)
        return _value(self.query_results([xtest], dataloader)[0])

    # -- details -------------------------------------------------------------------------
    def query_results(self, archs: Iterable[Any], dataloader=None) -> List[ProxyResult]:
        """Full :class:`ProxyResult` per architecture (raw value, flag, seconds), in order.

        One plan per space for the whole call, so every architecture is scored on the same
        batch (a shuffling ``dataloader`` gives a new first batch on each ``iter``)."""
        by_space: Dict[str, list] = {}
        for i, arch in enumerate(archs):
            space, core = self._resolve(arch)
            by_space.setdefault(space, []).append((i, core))
        out: Dict[int, ProxyResult] = {}
        inputs = None
        if dataloader is not None:
            inputs, _ = next(iter(dataloader))
        for space, items in by_space.items():
            self._plan(space, None, False)  # says why a space does not take the settings
            batch = batch_from_inputs(space, inputs) if dataloader is not None else None
            archs = [(i, get_space(space).to_dict(core)) for i, core in items]
            checked = self._checked(space, batch if batch is not None else self._batch, archs)
            for rec in run(checked, progress=False):
                if rec.status == "invalid":
                    raise InvalidArchitectureError(rec.error)
                raise_for_error(rec)
                out[rec.id] = rec.results[self.proxy]
        return [out[i] for i in range(len(out))]

    def _resolve(self, arch):
        graph = _graph_of(arch)
        if graph is not None:
            return graph.core_space, graph.core_arch()
        if self.space is None:
            raise ProxyNotApplicableError(
                f"proxy {self.proxy!r} applies to several spaces {sorted(self._plans)}; pass "
                "space= or query NASLib graphs from naslib_ext.search_spaces"
            )
        return self.space, arch

    def _plan(self, space: str, inputs, from_loader: bool) -> ScoringPlan:
        if space not in self._plans:
            raise ProxyNotApplicableError(f"proxy {self.proxy!r} with these settings does not apply to the "
                                          f"{space!r} space (it does to: {', '.join(sorted(self._plans))})")
        plan = self._plans[space]
        batch = batch_from_inputs(space, inputs) if from_loader else None
        if batch is None:
            return plan
        request = plan.scoring_request
        return make_plan(space, [self.proxy], seed=plan.seed, batch=batch, device=request.device, **request.options)

    @property
    def device_name(self) -> str:
        """Where this predictor scores (``"cpu"``, ``"cuda:0"``): its plans' resolved device."""
        return next(iter(self._plans.values())).device_name

    def __repr__(self):
        return f"ZeroCostProxyPredictor(proxy={self.proxy!r}, seed={self.seed}, device={self.device_name!r})"


def _value(result: Optional[ProxyResult]) -> float:
    return float(result.score) if result is not None and result.ok else NO_SCORE


def _is_many(x) -> bool:
    if isinstance(x, (list, np.ndarray)):
        return True
    return isinstance(x, tuple) and len(x) > 0 and all(isinstance(a, torch.nn.Module) for a in x)


def _graph_of(obj):
    """Our NASLib graph inside ``obj`` (itself, or NASLib's ``module.arch`` wrapper), else None."""
    from .search_spaces import is_core_graph

    if is_core_graph(obj):
        return obj
    inner = getattr(obj, "arch", None) if isinstance(obj, torch.nn.Module) else None
    return inner if is_core_graph(inner) else None


# -- NASLib measure registry -----------------------------------------------------------------
def _naslib_measure(net, inputs, targets, split_data=1, loss_fn=None, proxy: str = ""):
    """NASLib measure body: score our graph's architecture on the loader's batch.

    Returns ``[tensor(score)]`` because NASLib's ``find_measures`` sums a list of tensors for
    every measure not on its own short list.
    """
    graph = _graph_of(net)
    if graph is None:
        raise ProxyNotApplicableError(
            f"measure {proxy!r} scores architectures of naslib_ext.search_spaces, got {type(net).__name__}"
        )
    # scored on the device NASLib put the batch on (ZeroCost moves it to its own device)
    device = getattr(inputs, "device", "cpu")
    job = ScoringJob.of([proxy], graph.core_space, seed=MEASURE_SEED, device=str(device), store=None, workers=1)
    checked = check_job(job, need_architectures=False, batch=batch_from_inputs(graph.core_space, inputs))
    rec = score_one(checked, graph.core_arch())
    raise_for_error(rec)
    return [torch.tensor(_value(rec.results[proxy]), dtype=torch.float64)]


def register_naslib_measures(names: Optional[Iterable[str]] = None) -> List[str]:
    """Register our proxies in NASLib's zero-cost measure registry; returns the names added.

    Each proxy is registered as ``nni_zerocost.<name>`` and, when NASLib does not already use
    the name, as ``<name>``; NASLib's own measures (``jacov``, ``synflow``, ``flops``, ...) are
    never replaced.  Idempotent.
    """
    if names is None:
        names = nni_zerocost.list_proxies()
    added = []
    for name in names:
        for key in (QUALIFIED_PREFIX + name, name):
            if key in naslib_measures._measure_impls or key in NASLIB_SPECIAL_MEASURES:
                continue
            naslib_measures.measure(key, copy_net=False, proxy=name)(_naslib_measure)
            added.append(key)
    return added


register_naslib_measures()
