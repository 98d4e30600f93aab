"""The gpt2 space on every config LTS released: the 200 WikiText-103 ones (their store keys must not
move) and the One Billion Words ones (200 random configs, 122 Pareto models), which have fewer
positions, d_embed -1, one vocabulary cluster and sizes outside the searched space."""
import gzip
import hashlib
import json

import numpy as np
import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.data import PACKAGE_DATA
from nni_zerocost.errors import InvalidArchitectureError
from nni_zerocost.spaces.gpt2 import DecoderConfig, DecoderModel, LMBatch, check_searched, flops_per_token, param_counts
from nni_zerocost.spaces.gpt2.benchmark import PARAM_KEYS, TABLE
from nni_zerocost.spaces.gpt2.config import VOCAB_SIZE
from nni_zerocost.spaces.gpt2.inputs import rows_within

LM1B, PARETO = "lts_gpt2_lm1b_configs.jsonl.gz", "lts_pareto_gpt2_lm1b_configs.jsonl.gz"


def _read(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _records(data_dir, name):
    path = data_dir / "lts" / name
    if not path.is_file():
        pytest.skip(f"LTS's One Billion Words configs not found at {path}")
    return _read(path)


@pytest.fixture(scope="module")
def lm1b(data_dir):
    return _records(data_dir, LM1B)


@pytest.fixture(scope="module")
def pareto(data_dir):
    return _records(data_dir, PARETO)


def _release_counts(rec):
    return {k: int(rec["params"][k]) for k in PARAM_KEYS}


def _by_id(records, arch_id):
    return next(DecoderConfig.parse(r["config"]) for r in records if r["arch_id"] == arch_id)


# -- WikiText-103: nothing moves ---------------------------------------------------------------
#: computed with the code before tgt_len, n_token and d_embed -1 were model fields
WT103_HASHES = {"config_0_j0": "a8b138fcf155ae5e", "config_0_j1": "8363414c627feeb6",
                "config_13_j7": "2f7cded24355b209", "config_2_j3": "b4b8a3ef68f04075",
                "config_9_j9": "5fa3fb76e533345d"}
#: sha256 of "<arch_id> <canonical_hash> <json.dumps(to_dict())>\n" over the 200, same code
WT103_KEYS_DIGEST = "8250c90fe006dd4248c9c7cdfb45a064ab9955b7bf95278bed307511db064b03"


def test_wt103_store_keys_and_samples_are_what_they_were():
    records = _read(PACKAGE_DATA / "lts" / TABLE)
    configs = {r["arch_id"]: DecoderConfig.parse(r["config"]) for r in records}
    assert {k: configs[k].canonical_hash() for k in WT103_HASHES} == WT103_HASHES
    space = nz.get_space("gpt2")
    assert all(space.arch_hash(c) == c.canonical_hash() for c in configs.values())
    text = "".join(f"{k} {c.canonical_hash()} {json.dumps(c.to_dict())}\n" for k, c in configs.items())
    assert hashlib.sha256(text.encode()).hexdigest() == WT103_KEYS_DIGEST
    rng = np.random.default_rng(0)
    assert [DecoderConfig.sample(rng).canonical_hash() for _ in range(3)] == [
        "78f102d89ad8d99c", "2ec052e33d0c2c67", "d223e7e28b5ba05c"]


# -- One Billion Words: parsing ------------------------------------------------------------------
def test_every_released_config_parses_as_written_and_round_trips(lm1b, pareto):
    assert (len(lm1b), len(pareto)) == (200, 122)
    for rec in lm1b + pareto:
        cfg = DecoderConfig.parse(rec["config"])
        assert cfg.to_dict() == rec["config"], rec["arch_id"]
        assert DecoderConfig.parse(cfg.to_dict()) == cfg and DecoderConfig.parse(rec) == cfg
        assert DecoderConfig.parse(json.dumps(cfg.to_dict())).canonical_hash() == cfg.canonical_hash()


def test_released_fields_are_honoured(lm1b, pareto):
    cfg = DecoderConfig.parse(lm1b[0]["config"])
    assert (cfg.tgt_len, cfg.d_embed, cfg.embedding_width, cfg.d_model, cfg.div_val) == (32, -1, 512, 512, 2)
    assert cfg.cluster_ends == (VOCAB_SIZE,) and cfg.cluster_tie_projs == (False,)  # 59997 > vocabulary: one cluster
    assert cfg.has_projections  # div_val 2 projects its one cluster, d_model -> d_model
    odd = _by_id(pareto, "pareto_titanxp_M18")
    assert (odd.n_token, odd.tgt_len, odd.use_cache, odd.d_model) == (50257, 192, True, 832)
    assert odd.cluster_ends == (19997, 39997, 50257) and odd.tie_projs == (False, True, True, True)  # written 0/1
    # what builds the same model hashes the same; what changes the model does not
    as_d_model = DecoderConfig.parse({**lm1b[0]["config"], "d_embed": 512})
    assert as_d_model.canonical_hash() == cfg.canonical_hash() and as_d_model != cfg
    assert DecoderConfig.parse({**odd.to_dict(), "use_cache": False}).canonical_hash() == odd.canonical_hash()
    for change in ({"tgt_len": 192}, {"n_token": 50272}):
        assert DecoderConfig.parse({**lm1b[0]["config"], **change}).canonical_hash() != cfg.canonical_hash()


def test_released_configs_lie_outside_the_searched_space(lm1b, pareto):
    """They parse, but the space does not sample them and the NNI codec has no encoding for them."""
    configs = [DecoderConfig.parse(r["config"]) for r in lm1b + pareto]
    assert 320 in {c.d_model for c in configs} and max(f for c in configs for f in c.d_inner) > 3700
    for cfg in configs:
        with pytest.raises(InvalidArchitectureError, match="searched space"):
            check_searched(cfg)
    with pytest.raises(InvalidArchitectureError, match="'d_embed': outside the NNI space"):
        nz.get_space("gpt2").codec().encode(configs[0])


# -- One Billion Words: parameter counts ---------------------------------------------------------
def test_pareto_counts_equal_the_release_for_all_122(pareto):
    for rec in pareto:
        assert param_counts(DecoderConfig.parse(rec["config"])) == _release_counts(rec), rec["arch_id"]


def test_lm1b_release_counts_are_transformer_xl_counts(lm1b):
    """The release's counts of the 200 random configs are not those of archai's GPT-2: to the
    parameter, they are those of archai's Transformer-XL (``mem_transformer``, attn_type 0) built
    from the same fields -- per layer query/key/value, output and relative-position projections
    without biases plus the two relative-position biases, 5 d^2 + 2 d where GPT-2 has 4 d (d + 1);
    no learned positions; no final LayerNorm.  The rest (the one-cluster adaptive embedding and
    softmax with d_embed -1 and untied projections, the feed-forward blocks, two LayerNorms per
    layer) is what our GPT-2 counts."""
    for rec in lm1b:
        cfg = DecoderConfig.parse(rec["config"])
        ours = param_counts(cfg)
        d, layers = cfg.d_model, cfg.n_layer
        attn = layers * (5 * d * d + 2 * d)
        positions, final_norm = cfg.tgt_len * d, 2 * d
        assert _release_counts(rec) == {
            "AdaEmb": ours["AdaEmb"] - positions, "Attn": attn, "FFN": ours["FFN"],
            "nonembedding": ours["nonembedding"] - ours["Attn"] - final_norm + attn,
            "total": ours["total"] - positions - ours["Attn"] - final_norm + attn}, rec["arch_id"]
        assert ours != _release_counts(rec)


def _layouts(records):
    """The smallest config of each (div_val, positions, vocabulary) of a release."""
    out = {}
    for rec in records:
        cfg = DecoderConfig.parse(rec["config"])
        key = (cfg.div_val, cfg.tgt_len, cfg.n_token)
        if key not in out or param_counts(cfg)["total"] < param_counts(out[key])["total"]:
            out[key] = cfg
    return list(out.values())


def test_built_models_count_what_the_config_counts(lm1b, pareto):
    widest = max((DecoderConfig.parse(r["config"]) for r in pareto), key=lambda c: (c.d_model, max(c.d_inner)))
    for cfg in _layouts(lm1b) + _layouts(pareto) + [widest]:  # shapes only: the meta device draws nothing
        with torch.device("meta"):
            model = DecoderModel(cfg)
        assert model.param_counts() == param_counts(cfg), cfg.to_dict()
    odd = _by_id(pareto, "pareto_titanxp_M18")
    small_odd = DecoderConfig.parse({**odd.to_dict(), "n_layer": 2, "d_model": 64, "n_head": [2, 4],
                                     "d_inner": [128, 96]})
    ids = nz.get_space("gpt2").default_batch().input_ids[:1, :32]
    for cfg in _layouts(lm1b) + [small_odd]:
        model = DecoderModel(cfg)
        assert model.param_counts() == param_counts(cfg)
        with torch.no_grad():
            logp, nll = model(ids), model.token_nll(ids)
        assert logp.shape == (1, 32, cfg.n_token)
        assert torch.allclose(torch.logsumexp(logp, dim=-1), torch.zeros(1, 32), atol=1e-4)
        assert torch.allclose(nll, -logp[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2), atol=1e-4)
    with pytest.raises(ValueError, match="exceeds the model's 32 learned positions"):
        DecoderModel(_layouts(lm1b)[0])(nz.get_space("gpt2").default_batch().input_ids[:1, :33])
    with pytest.raises(ValueError, match=r"must lie in \[0, 50257\)"):
        DecoderModel(small_odd)(torch.full((1, 4), 50257))


# -- the batch follows the model's positions -----------------------------------------------------
def test_rows_within_recuts_rows_into_equal_windows():
    ids = torch.arange(16 * 128).view(16, 128)
    assert rows_within(ids, 128) is ids and rows_within(ids, 192) is ids
    assert torch.equal(rows_within(ids, 32), ids.reshape(64, 32))  # the same 2,048 tokens
    assert torch.equal(rows_within(ids, 64), ids.reshape(32, 64))
    thirds = rows_within(ids, 48)  # three windows of 42 per row, the last 2 tokens of each row left out
    assert thirds.shape == (48, 42) and torch.equal(thirds[4], ids[1, 42:84])
    assert torch.equal(rows_within(torch.arange(3).view(1, 3), 2), torch.tensor([[0, 1]]))


def test_a_model_with_fewer_positions_scores_the_default_batch_recut():
    space = nz.get_space("gpt2")
    cfg = DecoderConfig.parse({"n_layer": 2, "d_model": 64, "n_head": [2, 4], "d_inner": [256, 128], "d_embed": -1,
                               "div_val": 2, "tgt_len": 32})
    batch = space.default_batch()
    ctx = space.context(cfg)
    assert ctx.input_ids.shape == (64, 32) and torch.equal(ctx.input_ids, batch.input_ids.reshape(64, 32))
    assert ctx.batch.fingerprint == batch.fingerprint  # the request's batch, as given
    specs = ["synaptic_saliency", "head_confidence", "activation_distance", "representation_rank"]
    given = nz.score("gpt2", cfg, specs)
    recut = nz.score("gpt2", cfg, specs, batch=LMBatch(batch.input_ids.reshape(64, 32)))
    assert {k: v.raw for k, v in given.items()} == {k: v.raw for k, v in recut.items()}
    assert all(np.isfinite(v.raw) for v in given.values())
    assert space.flops(cfg) == flops_per_token(cfg, 32)["total"]
    # a model with the batch's positions scores the batch's own tensor
    wt103 = DecoderConfig.parse(_read(PACKAGE_DATA / "lts" / TABLE)[0]["config"])
    assert space.context(wt103, batch).input_ids is batch.input_ids
