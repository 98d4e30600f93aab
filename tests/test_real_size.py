"""Real sizes within memory, on tiny models: the gradient pass in row chunks equals the whole
batch's, one chunk is the unchunked pass bit for bit, ``max_memory`` is read or refused in one
line, ``dtype`` gives the model back as it was, and the Gram route to singular values agrees
with the SVD."""
from __future__ import annotations

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.memory import parse_memory
from nni_zerocost.models import model_batch, model_context
from nni_zerocost.models.common import next_token_loss
from nni_zerocost.models.microbatches import chunk_rows, row_slices
from nni_zerocost.spectra import GRAM_MIN_ENTRIES, nuclear_norm, singular_values

transformers = pytest.importorskip("transformers")

#: chunked vs one-chunk gradients: max |difference| / max |gradient| of each matrix (float32
#: sums in another order; measured up to about 5e-7)
CHUNK_TOL = 1e-5


def _gpt2():
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=300,
                                                                n_positions=64, bos_token_id=0, eos_token_id=0))


def _bert():
    torch.manual_seed(0)
    return transformers.BertForMaskedLM(transformers.BertConfig(num_hidden_layers=2, hidden_size=32,
                                                                num_attention_heads=4, intermediate_size=64,
                                                                vocab_size=300))


def _llama():
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=300, max_position_embeddings=128, tie_word_embeddings=True))


def _torch_transformer():
    from nni_zerocost.spaces.model.tiny import transformer_lm

    torch.manual_seed(0)
    return transformer_lm()


def _gradients(model, max_memory=None):
    batch = model_batch(model, None)
    with model_context(model, batch) as ctx:
        ctx.max_memory = max_memory
        rows = ctx.gradient_chunk_rows([p for p in model.parameters()])
        return rows, ctx.gradients()


@pytest.mark.parametrize("make", [_gpt2, _bert, _llama, _torch_transformer],
                         ids=["gpt2", "bert-mlm", "llama", "torch-transformer"])
def test_row_chunks_add_up_to_the_whole_batch_gradient(make):
    model = make()
    rows, whole = _gradients(model)
    assert rows == whole.input_grad.shape[0]  # a tiny model: one chunk by default
    few, chunked = _gradients(model, max_memory=2 ** 20)  # 1 MiB: less than the weights, one row a chunk
    assert few == 1
    assert chunked.loss == pytest.approx(whole.loss, rel=1e-6)
    assert whole.weight_grads.keys() == chunked.weight_grads.keys()
    for name, g in whole.weight_grads.items():
        err = float((chunked.weight_grads[name] - g).abs().max() / g.abs().max())
        assert err < CHUNK_TOL, (name, err)
    err = float((chunked.input_grad - whole.input_grad).abs().max() / whole.input_grad.abs().max())
    assert err < CHUNK_TOL
    assert all(p.grad is None for p in model.parameters())  # no .grad left behind


def test_one_chunk_is_the_unchunked_pass_bit_for_bit():
    """The whole batch at once, as before chunking existed: the same forward, loss and
    autograd.grad, so every published score stays as it was."""
    model = _gpt2()
    batch = model_batch(model, None)
    with model_context(model, batch) as ctx:
        ctx.max_memory = 2 ** 40
        got = ctx.gradients()
        refs = ctx._refs("attention") + ctx._refs("feed_forward")
    params = list({id(r.param): r.param for r in refs}.values())
    model.eval()
    ids, mask = batch.input_ids, batch.mask
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, attention_mask=mask.long(), use_cache=False).logits
    loss = next_token_loss(logits, ids, mask)
    grads = dict(zip(map(id, params), torch.autograd.grad(loss, params)))
    assert got.loss == float(loss.detach())
    for r in refs:
        assert torch.equal(got.weight_grads[r.name], r.matrix(grads[id(r.param)])), r.name


def test_chunked_scores_agree_and_the_user_grad_is_put_back():
    model = _llama()
    marker = torch.full_like(model.model.layers[0].mlp.up_proj.weight, 3.0)
    model.model.layers[0].mlp.up_proj.weight.grad = marker
    proxies = ["synaptic_saliency", "head_importance", "jacobian_covariance"]
    whole = nz.score_model(model, proxies)
    chunked = nz.score_model(model, proxies, max_memory="1MiB")
    for p in proxies:
        assert chunked[p].score == pytest.approx(whole[p].score, rel=1e-5), p
    assert model.model.layers[0].mlp.up_proj.weight.grad is marker
    assert sum(p.grad is not None for p in model.parameters()) == 1


def test_chunk_rows_follow_the_bound():
    assert chunk_rows(50, row_bytes=1e6, fixed_bytes=1e9, max_memory=10 ** 12) == 50  # fits: one chunk
    assert chunk_rows(50, row_bytes=1e6, fixed_bytes=1e9, max_memory=10 ** 9) == 1  # nothing left: one row
    rows = chunk_rows(50, row_bytes=1e6, fixed_bytes=1e9, max_memory=int(1e9 + 15e6))  # room for 10 rows
    assert rows == 10 and [s.stop - s.start for s in row_slices(50, rows)] == [10] * 5
    assert [s.stop - s.start for s in row_slices(50, chunk_rows(50, 1e6, 0, int(1.5e6 * 17)))] == [17, 17, 16]


@pytest.mark.parametrize("text,size", [("8GiB", 8 * 2 ** 30), ("512MiB", 512 * 2 ** 20), ("16GB", 16 * 10 ** 9),
                                       ("1.5 GiB", int(1.5 * 2 ** 30)), ("1e9", 10 ** 9), (2 ** 30, 2 ** 30)])
def test_max_memory_is_read(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["0", "-1GiB", "8 parsecs", "", "nan", True, None, 100, float("inf")])
def test_bad_max_memory_is_refused_in_one_line_naming_the_option(bad):
    with pytest.raises(nz.BadInputError) as e:
        nz.score_model(_gpt2(), "synaptic_saliency", max_memory=bad) if bad is not None else parse_memory(bad)
    assert str(e.value).startswith("max_memory: ") and "\n" not in str(e.value)


RECIPE = {"factory": "nni_zerocost.spaces.model.tiny:huggingface_lm", "kwargs": {"model_type": "gpt2"}}


def test_max_memory_and_dtype_are_options_of_the_job():
    job = nz.ScoringJob.of(["synaptic_saliency"], models=[RECIPE], max_memory="2GiB", dtype="bfloat16")
    assert nz.check_job(job).plan.context_options == {"max_memory": 2 * 2 ** 30, "dtype": "bfloat16"}
    assert nz.check_job(nz.ScoringJob.of(["synaptic_saliency"], models=[RECIPE], dtype="float32")
                        ).plan.context_options == {}  # the default stays out of store keys
    with pytest.raises(nz.BadInputError, match=r"^max_memory: must be a positive size"):
        nz.check_job(nz.ScoringJob.of(["synaptic_saliency"], models=[RECIPE], max_memory="0GiB"))
    with pytest.raises(nz.BadInputError, match=r"^dtype: float16 is for CUDA devices only"):
        nz.check_job(nz.ScoringJob.of(["synaptic_saliency"], models=[RECIPE], dtype="float16", device="cpu"))
    with pytest.raises(nz.BadInputError, match=r"^max_memory: the 'rnn' space takes no such option"):
        nz.check_job(nz.ScoringJob.of(["params"], "rnn", sample=1, max_memory="8GiB"))


def test_bfloat16_scoring_gives_the_model_back_as_it_was():
    model = _llama()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    tensors = {k: (id(p), p.data_ptr()) for k, p in model.named_parameters()}
    res = nz.score_model(model, ["synaptic_saliency", "zerolm", "head_confidence", "attention_rank"],
                         dtype="bfloat16")
    full = nz.score_model(model, ["synaptic_saliency", "zerolm", "head_confidence", "attention_rank"])
    for name, r in res.items():
        assert r.ok and r.score == pytest.approx(full[name].score, rel=0.05), name  # bfloat16 rounding only
        assert r.score != full[name].score, name  # and it was bfloat16
    for k, v in model.state_dict().items():
        assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k
    assert {k: (id(p), p.data_ptr()) for k, p in model.named_parameters()} == tensors
    assert model.training
    with pytest.raises(nz.BadInputError, match="^dtype: float16 is for CUDA devices only"):
        nz.score_model(model, "zerolm", dtype="float16")
    with pytest.raises(nz.BadInputError, match="^dtype: must be one of"):
        nz.score_model(model, "zerolm", dtype="float8")


def test_gram_singular_values_agree_with_the_svd():
    """Above GRAM_MIN_ENTRIES the Gram route: the nuclear norm to 1e-12 relative (measured ~3e-15)
    on full-rank matrices, each singular value to 1e-6 of the largest; below it the SVD itself,
    bit for bit."""
    gen = torch.Generator().manual_seed(0)
    for shape in [(4096, 512), (512, 4096), (1448, 1449)]:
        w = torch.randn(shape, generator=gen) * 0.02
        assert w.numel() >= GRAM_MIN_ENTRIES
        exact = torch.linalg.svdvals(w.double())
        got = singular_values(w)
        assert got.dtype == torch.float64 and got.shape == exact.shape
        assert abs(nuclear_norm(w) - float(exact.sum())) < 1e-12 * float(exact.sum())
        assert float((got - exact).abs().max()) < 1e-6 * float(exact[0])
    # rank 8 up to float32 rounding: the rounding's singular values (below sqrt(n eps) s_max) are
    # dropped as zeros, 5e-7 of the sum
    low_rank = torch.randn(1448, 8, generator=gen) @ torch.randn(8, 1449, generator=gen)
    exact = torch.linalg.svdvals(low_rank.double())
    assert abs(nuclear_norm(low_rank) - float(exact.sum())) < 1e-6 * float(exact.sum())
    assert int((singular_values(low_rank) > 0).sum()) == 8
    for shape in [(256, 128), (2048, 512)]:  # the largest of the benchmark spaces: the SVD itself
        small = torch.randn(shape, generator=gen)
        assert torch.equal(singular_values(small), torch.linalg.svdvals(small.double()))


@pytest.mark.parametrize("flags, message", [
    (["--max-memory", "0"], "--max-memory: must be a positive size, got '0'"),
    (["--max-memory", "8 parsecs"], "--max-memory: must be a size such as '8GiB'"),
    (["--dtype", "float16", "--device", "cpu"], "--dtype: float16 is for CUDA devices only"),
])
def test_the_cli_refuses_bad_sizes_and_precisions_in_one_line(flags, message, tmp_path, monkeypatch, capsys):
    from nni_zerocost.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["score", "--model", "nni_zerocost.spaces.model.tiny:huggingface_lm", "--model-arg", "model_type=gpt2",
                 "--proxy", "synaptic_saliency", "--out", "o.jsonl", "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and message in err, err
    assert not (tmp_path / "o.jsonl").exists()


def test_the_nuclear_norm_of_a_stack_of_experts_is_the_sum_of_its_matrices():
    # a mixture of experts' (E, out, in) weights, read by structure: the sum over the experts,
    # the SVD's batched value below the Gram threshold, each matrix's value above it
    g = torch.Generator().manual_seed(0)
    small = torch.randn(4, 16, 8, generator=g)
    assert nuclear_norm(small) == pytest.approx(float(torch.linalg.svdvals(small.double()).sum()), rel=1e-12)
    side = int(GRAM_MIN_ENTRIES ** 0.5) + 1
    big = torch.randn(2, side, side, generator=g)
    assert nuclear_norm(big) == pytest.approx(nuclear_norm(big[0]) + nuclear_norm(big[1]), rel=1e-12)


def test_a_state_space_block_counts_its_scan_state_in_the_memory_estimate():
    # Mamba's scan keeps a (d_inner x d_state) state per token and step: the chunk estimate reads
    # it from the mixer's own matrix (A), found by structure, so a state-space model chunks sooner
    transformers = pytest.importorskip("transformers")
    from nni_zerocost.models.transformer import SCAN_STATE_COPIES, _block_sizes

    model = transformers.MambaForCausalLM(transformers.MambaConfig(
        hidden_size=32, num_hidden_layers=2, vocab_size=100, state_size=8, intermediate_size=64))
    with model_context(model, model_batch(model, None)) as ctx:
        assert [b.scan_state for b in ctx.blocks] == [64 * 8, 64 * 8]
        hidden, inputs, heads = _block_sizes(ctx.blocks[0])
        projections = sum(r.matrix().shape[1] for r in (*ctx.blocks[0].mixer_in, *ctx.blocks[0].mixer_out))
        assert (hidden, heads) == (32, 0) and inputs == projections + SCAN_STATE_COPIES * 64 * 8
