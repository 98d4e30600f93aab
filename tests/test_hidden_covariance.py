import math

import numpy as np
import pytest

import nni_zerocost as nz
from nni_zerocost.data import corpus_batch, zipf_batch
from nni_zerocost.proxies.base import Flagged
from nni_zerocost.proxies.linalg import correlation_eigen_score, eigen_score, spectral_score

from conftest import LSTM


def reference_score(x):
    """The paper's formula, computed the plain way (corrcoef + eigenvalues)."""
    v = np.linalg.eigvalsh(np.corrcoef(x.T))
    k = 1e-5
    return -np.sum(np.log(v + k) + 1.0 / (v + k))


def test_correlation_eigen_score_matches_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30)) @ rng.normal(size=(30, 30))
    assert correlation_eigen_score(x) == pytest.approx(reference_score(x), rel=1e-9)
    # identity correlation: every eigenvalue 1
    assert eigen_score(np.ones(5)) == pytest.approx(-5 * (math.log(1 + 1e-5) + 1 / (1 + 1e-5)))


@pytest.mark.parametrize("rank", [3, 40, 60])
def test_cholesky_spectral_score_equals_the_eigenvalue_formula(rank):
    """Full-rank, rank-deficient (eigenvalues ~0, where 1/(l+k) dominates) and a lower triangle only."""
    rng = np.random.default_rng(rank)
    a = rng.normal(size=(60, rank))
    c = np.corrcoef(a @ a.T + 1e-9 * np.eye(60))
    expect = eigen_score(np.linalg.eigvalsh(c))
    assert spectral_score(np.tril(c)) == pytest.approx(expect, rel=1e-9)


def test_spectral_score_falls_back_to_the_eigen_solver_when_not_positive_definite():
    c = np.array([[1.0, 0.0], [0.0, -0.5]])  # C + kI indefinite: Cholesky fails
    with np.errstate(invalid="ignore"):
        got, expect = spectral_score(c.copy()), eigen_score(np.linalg.eigvalsh(c))
    assert math.isnan(got) and math.isnan(expect)
    ok = np.array([[1.0, 0.3], [0.3, 1.0]])
    assert spectral_score(ok.copy()) == pytest.approx(eigen_score(np.linalg.eigvalsh(ok)), rel=1e-12)


def test_constant_units_count_as_zero_eigenvalues_and_are_flagged():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6))
    x[:, 2] = 3.0
    with pytest.raises(Flagged) as fi:
        correlation_eigen_score(x)
    assert "1 of 6 units are constant" in fi.value.reason
    rest = correlation_eigen_score(np.delete(x, 2, axis=1))
    zero_term = -(math.log(1e-5) + 1e5)
    assert fi.value.value == pytest.approx(rest + zero_term, rel=1e-9)


def test_non_finite_states_are_flagged_nan():
    x = np.ones((10, 3))
    x[0, 0] = np.inf
    with pytest.raises(Flagged) as fi:
        correlation_eigen_score(x)
    assert math.isnan(fi.value.value)


def test_proxy_uses_incoming_states_of_the_chosen_layer():
    batch = zipf_batch(batch_size=8, seq_len=12, seed=3)
    sp = nz.get_space("rnn")
    with sp.context(LSTM, batch, seed=2) as ctx:
        r1 = nz.get_proxy("hidden_covariance")(ctx)
        r2 = nz.get_proxy("hidden_covariance")(ctx, layer=2)
        h = ctx.incoming_states(2).reshape(-1, 600).numpy()
    assert r2.raw == pytest.approx(reference_score(h.astype(np.float64)), rel=1e-7)
    assert r1.raw != r2.raw and r1.ok and r1.flag is None and r1.higher_is_better
    again = nz.score("rnn", LSTM, "hidden_covariance", batch=batch, seed=2)["hidden_covariance"]
    # the same number through the front door (which also sets the BLAS pools' threads, so the
    # last digits may differ from the bare call), and bit for bit again under the same seed
    assert again.raw == pytest.approx(r1.raw, rel=1e-9)
    assert nz.score("rnn", LSTM, "hidden_covariance", batch=batch, seed=2)["hidden_covariance"].raw == again.raw


def test_dead_cell_is_flagged_not_crashing():
    # h_new = h_prev * gate: the zero initial state stays zero forever -> all units constant
    cell = {"a": {"op": "linear", "input": ["x"]}, "g": {"op": "activation_sigm", "input": ["a"]},
            "h_new_0": {"op": "elementwise_prod", "input": ["h_prev_0", "g"]}}
    r = nz.score("rnn", cell, "hidden_covariance", batch=zipf_batch(4, 10))["hidden_covariance"]
    assert r.flag == "600 of 600 units are constant (counted as zero eigenvalues)"
    assert r.raw == pytest.approx(-600 * (math.log(1e-5) + 1e5))


def test_reproduces_published_scores_with_compat_init(nlp_entries, ptb_dir):
    """Paper protocol (PTB test, 50 x 70, seed 0, official init stream) -> the paper's numbers."""
    batch = corpus_batch(ptb_dir, 50, 70)
    picked = [e for e in nlp_entries if e.extra["published"]][::600][:5]
    assert len(picked) == 5
    for e in picked:
        r = nz.score("rnn", e.arch, ["hidden_covariance"], batch=batch, seed=0, init="compat")["hidden_covariance"]
        assert r.raw == pytest.approx(e.extra["published"]["tfn_layer_1_hidden_covariance"], rel=2e-5), e.arch_id


def test_max_degree_flags_self_multiplying_cells_and_leaves_the_rest_unchanged():
    squaring = {"a": {"op": "linear", "input": ["x", "h_prev_0"]}, "b": {"op": "linear", "input": ["h_prev_0"]},
                "h_new_0": {"op": "elementwise_prod", "input": ["a", "b"]}}
    batch, small = zipf_batch(8, 12, seed=0), {"emsize": 16, "nhid": 32}
    guarded = nz.score("rnn", squaring, ["hidden_covariance:max_degree=1", "hidden_covariance"], batch=batch, **small)
    assert math.isnan(guarded["hidden_covariance:max_degree=1"].raw)
    assert guarded["hidden_covariance:max_degree=1"].flag == "divergence risk: recurrence degree 2 > max_degree 1"
    assert math.isfinite(guarded["hidden_covariance"].raw)
    plain = nz.score("rnn", LSTM, ["hidden_covariance:max_degree=1", "hidden_covariance"], batch=batch, **small)
    assert plain["hidden_covariance:max_degree=1"].raw == plain["hidden_covariance"].raw
    assert plain["hidden_covariance:max_degree=1"].flag is None
