"""Every causal-LM and masked-LM architecture of the installed transformers, built tiny
(:mod:`nni_zerocost.models.zoo`), scored through ``score_model``: each one is read (its
parameter counts and a gradient proxy, finite; a forward proxy where it applies) or refused with
a one-line BadInputError; nothing else is raised, and at least 90% of those that build are read.
``examples/hf_zoo.py`` is the full run (every proxy that applies)."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.errors import BadInputError
from nni_zerocost.models import model_batch, model_context
from nni_zerocost.models.structure import model_vocab

try:
    import transformers
    from nni_zerocost.models import zoo

    ENTRIES = zoo.architectures()
except ImportError:  # the optional dependency: every test skips
    transformers, ENTRIES = None, []

#: a small batch: the zoo's models are tiny, the test is about reading them, not about the values
ROWS, LENGTH = 4, 16
#: the gradient proxies scored on every model that maps ids to logits: the token mixers' weights
#: (attention, state-space, recurrent) and the feed-forwards'; one of them must be finite
GRADIENT_PROXIES = ("synaptic_diversity", "synaptic_saliency")
#: a forward proxy scored where the model offers layer spectra (hooks on every block and mixer)
FORWARD_PROXY = "representation_rank"

OUTCOMES = {}  # (model_type, head) -> "read", "parameters", "refused: ...", or "not built"


def outcome(model_type: str, class_name: str, head: str) -> str:
    key = (model_type, head)
    if key in OUTCOMES:
        return OUTCOMES[key]
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    try:
        model = zoo.build(model_type, class_name, head)
    except zoo.StepError:
        OUTCOMES[key] = "not built"
        return OUTCOMES[key]
    vocab = min(model_vocab(model) or zoo.VOCAB, zoo.VOCAB)
    batch = torch.randint(0, vocab - 8, (ROWS, LENGTH), generator=torch.Generator().manual_seed(0))
    sizes = ["params", "nonembedding_params"]
    try:
        scores = nz.score_model(model, sizes + list(GRADIENT_PROXIES), batch=batch, progress=False)
    except BadInputError as e:  # the gradient proxy does not apply: the parameters must
        assert "\n" not in str(e), str(e)
        try:
            scores = nz.score_model(model, sizes, batch=batch, progress=False)
        except BadInputError as e:
            assert "\n" not in str(e), str(e)
            OUTCOMES[key] = f"refused: {e}"
            return OUTCOMES[key]
        OUTCOMES[key] = f"parameters: {e}"
    assert all(scores[n].ok and scores[n].raw > 0 for n in sizes), scores
    if key in OUTCOMES:
        return OUTCOMES[key]
    with model_context(model, model_batch(model, batch)) as ctx:
        spectra = "layer_spectra" in ctx.offers
    if spectra:  # a value, a flagged NaN or a one-line refusal: never another exception
        try:
            r = nz.score_model(model, FORWARD_PROXY, batch=batch, progress=False)[FORWARD_PROXY]
            assert math.isfinite(r.raw) or r.flag, r
        except BadInputError as e:
            assert "\n" not in str(e), str(e)
    grads = [scores[n] for n in GRADIENT_PROXIES]
    assert all(math.isfinite(g.raw) or g.flag for g in grads), grads  # no NaN leaves without its reason
    assert any(math.isfinite(g.raw) for g in grads), grads
    OUTCOMES[key] = "read"
    return OUTCOMES[key]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster, and immune to oversubscribed shared machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.skipif(transformers is None, reason="needs transformers")
@pytest.mark.parametrize("model_type,class_name,head", ENTRIES, ids=[f"{e[0]}-{e[2]}" for e in ENTRIES])
def test_each_architecture_is_read_or_refused_in_one_line(model_type, class_name, head):
    if outcome(model_type, class_name, head) == "not built":
        pytest.skip("does not build tiny")


@pytest.mark.skipif(transformers is None, reason="needs transformers")
def test_nine_in_ten_of_the_architectures_that_build_are_read():
    results = [outcome(*e) for e in ENTRIES]
    built = [r for r in results if r != "not built"]
    read = [r for r in built if r == "read"]
    assert len(built) >= 200, len(built)
    assert len(read) >= 0.9 * len(built), sorted(r for r in built if r != "read")
