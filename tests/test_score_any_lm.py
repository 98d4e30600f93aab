"""Language models no layout list names, read by structure (``score_model`` on OPT, Mixtral,
Mamba, a hand-written attention LM), and the small front-door behaviours around them: what a
model offers, ZiCo's split gradients, head gates against an explicit gate, one-line refusals,
``list_proxies(model)``, a raw ``tokenizers.Tokenizer`` batch and Longformer's internal padding."""
from __future__ import annotations

import math

import pytest
import torch

import nni_zerocost as nz
from nni_zerocost.errors import BadInputError
from nni_zerocost.models import model_batch, model_context

transformers = pytest.importorskip("transformers")
from nni_zerocost.models import zoo  # noqa: E402

V = 50


def ids(rows=6, length=10, seed=0, vocab=V):
    return torch.randint(0, vocab, (rows, length), generator=torch.Generator().manual_seed(seed))


def tiny(model_type, head="causal-lm"):
    entry = next(e for e in zoo.architectures() if e[0] == model_type and e[2] == head)
    return zoo.build(*entry)


class Attention(torch.nn.Module):
    """Fused query/key/value, causal softmax attention, an output projection."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.o = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)

    def forward(self, h):
        B, T, D = h.shape
        q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in self.qkv(h).split(D, -1))
        causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        att = (q @ k.transpose(-1, -2) / math.sqrt(D // self.heads)).masked_fill(~causal, -1e9).softmax(-1)
        return self.o((att @ v).transpose(1, 2).reshape(B, T, D))


class Block(torch.nn.Module):
    """Attention, then a ReLU feed-forward, each with a residual."""

    def __init__(self, d, heads):
        super().__init__()
        self.attn = Attention(d, heads)
        self.up, self.down = torch.nn.Linear(d, 2 * d), torch.nn.Linear(2 * d, d)

    def forward(self, h):
        h = h + self.attn(h)
        return h + self.down(torch.relu(self.up(h)))


class AttentionLM(torch.nn.Module):
    """A causal LM written by hand (no layout any reader names)."""

    def __init__(self, d=16, heads=4):
        super().__init__()
        torch.manual_seed(1)
        self.emb = torch.nn.Embedding(V, d)
        self.layers = torch.nn.ModuleList(Block(d, heads) for _ in range(2))
        self.out = torch.nn.Linear(d, V)

    def forward(self, x):
        h = self.emb(x)
        for layer in self.layers:
            h = layer(h)
        return self.out(h)


def test_a_hand_written_attention_lm_is_read_by_structure():
    model = AttentionLM()
    with model_context(model, model_batch(model, ids())) as ctx:
        assert ctx.layout == "structure" and ctx.causal is True
        assert {"parameters", "weights", "weight_gradients", "split_gradients", "head_gates", "ffn_codes",
                "layer_spectra"} <= set(ctx.offers)
        assert "attention_confidence" not in ctx.offers  # a torch model returns no probabilities
        assert ctx.head_counts() == [4, 4]
        names = [n for n, _ in ctx.weights("attention_input")]
        assert names == [f"layers.{i}.attn.qkv.weight[{k}]" for i in range(2) for k in ("query", "key", "value")]
        # the fused projection's parts are its row blocks
        w = dict(ctx.weights("attention_input"))
        assert torch.equal(w["layers.0.attn.qkv.weight[key]"], model.layers[0].attn.qkv.weight[16:32])
        assert [n for n, _ in ctx.weights("feed_forward")] == [f"layers.{i}.{k}.weight" for i in range(2)
                                                                for k in ("up", "down")]
    scores = nz.score_model(model, ["params", "nonembedding_params", "synaptic_saliency", "zico", "head_importance"],
                            batch=ids(), progress=False)
    assert all(r.ok for r in scores.values()), scores
    assert scores["params"].raw == sum(p.numel() for p in model.parameters())
    assert scores["nonembedding_params"].raw == scores["params"].raw - V * 16 - (16 * V + V)


def test_structure_head_gates_equal_an_explicit_gate():
    """OPT (no layout list names it): dL/d(gate) on each head's output, from the gradient pass."""
    model = tiny("opt").eval()
    x = ids(vocab=900)
    ctx = model_context(model, model_batch(model, x))
    assert "head_gates" in ctx.offers and ctx.causal
    got = ctx.head_gate_gradients()
    layers = model.model.decoder.layers
    gates = [torch.ones(4, requires_grad=True) for _ in layers]
    handles = [layer.self_attn.out_proj.register_forward_pre_hook(
        lambda mod, args, gate=gate: (args[0] * gate.repeat_interleave(args[0].shape[-1] // 4),))
        for gate, layer in zip(gates, layers)]
    try:
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        want = torch.autograd.grad(loss, gates)
    finally:
        for h in handles:
            h.remove()
    for i, w in enumerate(want):
        torch.testing.assert_close(got[i].float(), w, atol=1e-6, rtol=1e-4)


def test_zico_splits_the_batch_and_sums_log_signal_to_noise():
    model = tiny("opt")
    ctx = model_context(model, model_batch(model, ids(vocab=900)))
    parts = ctx.split_gradients(2)
    names = [n for n, _ in ctx.weights("attention") + ctx.weights("feed_forward")]
    assert len(parts) == 2 and all(set(p) == set(names) for p in parts)
    want = 0.0
    for n in names:
        g = torch.stack([p[n].double() for p in parts])
        std = g.std(0)
        keep = std > 0
        want += math.log(float((g.abs().mean(0)[keep] / std[keep]).sum()))
    got = nz.score_model(model, "zico", batch=ids(vocab=900), progress=False)["zico"]
    assert got.ok and got.raw == pytest.approx(want, rel=1e-12)
    # the whole batch's gradient is the row-weighted mean of the parts' (causal: equal pairs per row)
    whole = ctx.gradients().weight_grads[names[0]]
    torch.testing.assert_close(whole, (parts[0][names[0]] + parts[1][names[0]]) / 2, atol=1e-6, rtol=1e-4)


def test_mixture_of_experts_and_state_space_models_offer_what_their_parts_support():
    mixtral = tiny("mixtral")
    with model_context(mixtral, model_batch(mixtral, ids(vocab=900))) as ctx:
        assert {"weights", "weight_gradients", "attention_confidence", "head_gates"} <= set(ctx.offers)
        assert "active_parameters" in ctx.offers
        experts = [b.experts for b in ctx.structure.blocks]
        assert all(e.count == 4 and e.top_k == 2 for e in experts)  # 2 of 4 experts per token
        assert ctx.active_param_count() == ctx.param_count() - sum(e.expert_params // 2 for e in experts)
        assert nz.score_model(mixtral, "active_params", batch=ids(vocab=900),
                              progress=False)["active_params"].raw == ctx.active_param_count()
        assert any(w.dim() == 3 for _, w in ctx.weights("feed_forward"))  # the experts' fused tensors
    mamba = tiny("mamba")
    with model_context(mamba, model_batch(mamba, ids(vocab=900))) as ctx:
        assert "active_parameters" not in ctx.offers  # no experts: active_params does not apply
        assert "attention_confidence" not in ctx.offers and "head_gates" not in ctx.offers
        assert ctx.head_counts() == [0, 0]
        assert {n.rsplit(".", 2)[-2] for n, _ in ctx.weights("attention")} >= {"in_proj", "out_proj"}
    scores = nz.score_model(mamba, ["synaptic_diversity", "synaptic_saliency"], batch=ids(vocab=900), progress=False)
    assert scores["synaptic_diversity"].ok
    # no feed-forward: a flagged NaN, never a silent zero
    assert math.isnan(scores["synaptic_saliency"].raw) and "feed forward" in scores["synaptic_saliency"].flag


def test_models_that_cannot_be_read_are_refused_in_one_line():
    class NoVocabulary(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(BadInputError) as e:
        nz.score_model(NoVocabulary(), "params", batch=ids())
    assert "\n" not in str(e.value)
    xmod = tiny("xmod", "masked-lm")  # its forward refuses ids without a language
    assert nz.score_model(xmod, "params", batch=ids(vocab=900), progress=False)["params"].ok
    with pytest.raises(BadInputError, match="forward failed on the batch: ValueError") as e:
        nz.score_model(xmod, "synaptic_saliency", batch=ids(vocab=900), progress=False)
    assert "\n" not in str(e.value)


def test_longformer_padding_to_its_window_is_cut_and_its_local_attention_refused_in_one_line():
    model = tiny("longformer", "masked-lm")
    x = ids(vocab=900, length=20)
    scores = nz.score_model(model, ["synaptic_saliency", "attention_rank", "activation_distance"], batch=x,
                            progress=False)
    assert all(math.isfinite(r.raw) or r.flag for r in scores.values()) and scores["attention_rank"].ok
    assert scores["activation_distance"].raw == scores["activation_distance"].raw or scores["activation_distance"].flag
    with pytest.raises(BadInputError, match="not \\(batch, heads, tokens, tokens\\)") as e:
        nz.score_model(model, "head_confidence", batch=x, progress=False)
    assert "\n" not in str(e.value)


def test_list_proxies_takes_a_model():
    model = tiny("opt")
    names = nz.list_proxies(model)
    assert {"params", "zico", "synaptic_saliency", "head_confidence"} <= set(names)
    assert "hidden_covariance" not in names
    with model_context(model, model_batch(model, None)) as ctx:
        assert names == nz.list_proxies(ctx)
    assert nz.list_proxies("rnn") == nz.list_proxies(nz.get_space("rnn").offers)


def test_a_raw_tokenizers_tokenizer_batches_like_its_wrapped_form():
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[MASK]", "the", "cat", "sat", "on", "mat"])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    wrapped = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, mask_token="[MASK]", pad_token="[PAD]")
    model = transformers.BertForMaskedLM(transformers.BertConfig(vocab_size=V, hidden_size=16, intermediate_size=32,
                                                                 num_hidden_layers=2, num_attention_heads=4))
    texts = ["the cat sat on the mat"] * 20
    raw, hf = model_batch(model, (texts, tok)), model_batch(model, (texts, wrapped))
    assert torch.equal(raw.input_ids, hf.input_ids) and raw.mask_token_id == hf.mask_token_id == 2
    assert nz.score_model(model, "head_importance", batch=(texts, tok), progress=False)["head_importance"].ok


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_the_structure_gives_the_layouts_blocks_matrix_for_matrix(kind):
    """The layouts read by name (kept for bit-identical scores) are what the structure finds:
    the same matrices under the same names, in the same order, and the same hooked modules."""
    from nni_zerocost.models.structure import read_structure
    from nni_zerocost.models.transformer import hf_blocks, structure_blocks

    small = dict(vocab_size=V, num_hidden_layers=2, num_attention_heads=4, hidden_size=16, intermediate_size=32)
    model = {"bert": lambda: transformers.BertForMaskedLM(transformers.BertConfig(**small)),
             "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
                 vocab_size=V, n_embd=16, n_layer=2, n_head=4, n_positions=64)),
             "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
                 num_key_value_heads=2, max_position_embeddings=64, **small))}[kind]()
    _, by_name = hf_blocks(model)
    by_structure = structure_blocks(model, read_structure(model))
    assert len(by_name) == len(by_structure) == 2
    for a, b in zip(by_name, by_structure):
        refs_a, refs_b = [*a.qkv, a.out, *a.ffn], [*b.qkv, b.out, *b.ffn]
        assert [r.name for r in refs_a] == [r.name for r in refs_b]
        assert all(torch.equal(x.matrix(), y.matrix()) for x, y in zip(refs_a, refs_b))
        assert (a.layer, a.mix, a.ffn_pre, a.ffn_down, a.heads) == (b.layer, b.mix, b.ffn_pre, b.ffn_down, b.heads)
        assert b.head_columns is None  # equal consecutive slices


def test_a_layout_reader_that_misses_layers_gives_way_to_the_structure():
    """GLM-4-MoE's first layer is LLaMA-like, its second routes to experts: the LLaMA layout
    would read one layer of two; the structure reads both."""
    model = tiny("glm4_moe")
    x = ids(vocab=900)
    with model_context(model, model_batch(model, x)) as ctx:
        assert ctx.layout == "structure" and ctx.head_counts() == [4, 4]
        assert sorted(ctx.attention_confidence()) == [0, 1]


@pytest.mark.parametrize("model_type,head", [("xlnet", "causal-lm"), ("gemma3n_text", "causal-lm"),
                                             ("prophetnet", "causal-lm")])
def test_hooked_tensors_of_any_layout_are_read_per_token(model_type, head):
    """XLNet runs time-major, Gemma 3n keeps 4 streams before the batch, ProphetNet an n-gram
    stream before the tokens: the codes and spectra are still per token of the batch."""
    model = tiny(model_type, head)
    x = ids(vocab=900, rows=8, length=12)
    with model_context(model, model_batch(model, x)) as ctx:
        if "ffn_codes" in ctx.offers:
            codes = ctx.ffn_codes().codes
            assert codes and all(c.shape[0] == 8 * 12 for c in codes.values())
        spectra = ctx.spectra()
        assert spectra.out and all(len(ev) > 0 for _, _, ev in spectra.out)


def test_scoring_a_model_shows_progress_on_a_terminal_only(capsys):
    model = tiny("opt")
    nz.score_model(model, ["params", "zico"], batch=ids(vocab=900))  # stderr captured: not a terminal
    assert "scoring" not in capsys.readouterr().err
    nz.score_model(model, ["params", "zico"], batch=ids(vocab=900), progress=True)
    assert "scoring OPTForCausalLM" in capsys.readouterr().err
