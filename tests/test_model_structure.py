"""read_structure on tiny Hugging Face models and torch models: the numbers it reads (roles, head
counts and layouts, mixer kinds, causality, parameter counts) against counts made by hand."""

import pytest
import torch

from nni_zerocost.models.structure import is_causal, read_structure

transformers = pytest.importorskip("transformers")

V, E, L, H = 100, 32, 2, 4  # vocabulary, width, layers, heads of the hand-built models
D = E // H


def built(model):
    torch.manual_seed(0)
    return model.eval()


def roles_of(s, module):
    return {n.rsplit(".", 1)[-1]: r for n, r in s.roles.items() if n.rsplit(".", 1)[0] == module}


def blocks_of(n, width=D):
    """Per head, ``width`` consecutive columns: the plain concatenation of heads."""
    return tuple(tuple(range(h * width, (h + 1) * width)) for h in range(n))


# -- GPT-2: fused Conv1D query/key/value, learned positions, tied output --------------------------
def test_gpt2():
    s = read_structure(built(transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=V, n_positions=16, n_embd=E, n_layer=L, n_head=H))))
    per_layer = 2 * E + (E * 3 * E + 3 * E) + (E * E + E) + 2 * E + (E * 4 * E + 4 * E) + (4 * E * E + E)
    assert s.params == V * E + 16 * E + L * per_layer + 2 * E
    assert s.nonembedding_params == L * per_layer + 2 * E
    assert s.tied_output and s.input_embedding == "transformer.wte.weight"
    assert s.position_embeddings == ("transformer.wpe.weight",)
    assert s.causal is True and s.maps_to_logits and not s.missing
    for i, b in enumerate(s.blocks):
        assert b.kinds == ("attention",) and b.module == f"transformer.h.{i}"
        (a,) = b.mixers[0].attention
        fused = f"transformer.h.{i}.attn.c_attn"
        assert a.query == a.key == a.value == (fused,) and a.output == f"transformer.h.{i}.attn.c_proj"
        assert a.heads == a.kv_heads == H and a.head_columns == blocks_of(H)
        proj = s.projections[fused]  # Conv1D stores (in, out): read as (out, in)
        assert proj.transposed and (proj.out_features, proj.in_features) == (3 * E, E)
        assert proj.parts == {"query": tuple(range(E)), "key": tuple(range(E, 2 * E)),
                              "value": tuple(range(2 * E, 3 * E))}
        (f,) = b.feed_forwards
        assert f.up == (f"transformer.h.{i}.mlp.c_fc",) and f.gate == () and f.down == f"transformer.h.{i}.mlp.c_proj"
        assert b.mixers[0].sees_future is False
    assert roles_of(s, "transformer.h.0.attn.c_attn") == {"weight": "query_key_value", "bias": "query_key_value"}
    assert roles_of(s, "transformer.h.0.ln_1") == {"weight": "norm", "bias": "norm"}


# -- LLaMA: separate projections, grouped keys/values, gated feed-forward, untied head -----------
def test_llama_grouped_heads_and_gated_ffn():
    I = 48
    s = read_structure(built(transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=V, hidden_size=E, intermediate_size=I, num_hidden_layers=L, num_attention_heads=H,
        num_key_value_heads=2, max_position_embeddings=32))))
    kv = 2 * D
    per_layer = E * E + 2 * E * kv + E * E + 3 * E * I + 2 * E
    assert s.params == 2 * V * E + L * per_layer + E
    assert s.nonembedding_params == L * per_layer + E
    assert s.output_embedding == "lm_head.weight" and not s.tied_output
    assert s.causal is True
    b = s.blocks[1]
    (a,) = b.mixers[0].attention
    assert a.heads == H and a.kv_heads == 2 and a.config_heads == H
    assert a.head_rows["query"] == blocks_of(H) and set(a.head_rows["key"]) == set(blocks_of(2))
    assert a.head_columns == blocks_of(H)
    (f,) = b.feed_forwards
    assert f.gate == ("model.layers.1.mlp.gate_proj",) and f.up == ("model.layers.1.mlp.up_proj",)
    assert s.roles["model.layers.1.self_attn.k_proj.weight"] == "key"
    assert s.roles["model.layers.1.mlp.gate_proj.weight"] == "ffn_gate"
    assert s.roles["model.norm.weight"] == "norm"


# -- BERT family: an encoder, positions and token types, the MLM head's bias -----------------------
def test_bert_masked_lm():
    s = read_structure(built(transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=V, hidden_size=E, num_hidden_layers=L, num_attention_heads=H, intermediate_size=64,
        max_position_embeddings=16))))
    assert s.causal is False and s.maps_to_logits
    assert s.roles["bert.embeddings.position_embeddings.weight"] == "position_embedding"
    assert s.roles["bert.embeddings.token_type_embeddings.weight"] == "token_type_embedding"
    assert s.roles["cls.predictions.bias"] == "output_embedding"
    embedding = V * E + 16 * E + 2 * E + V  # words, positions, types, the output bias
    assert s.nonembedding_params == s.params - embedding
    for b in s.blocks:
        (m,) = b.mixers
        assert m.kind == "attention" and m.sees_future is True
        (a,) = m.attention
        assert a.output == b.module + ".attention.output.dense" and a.heads == H


def test_distilbert():
    s = read_structure(built(transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(
        vocab_size=V, dim=E, n_layers=L, n_heads=H, hidden_dim=64, max_position_embeddings=16))))
    assert s.causal is False
    assert [b.kinds for b in s.blocks] == [("attention",)] * L
    (a,) = s.blocks[0].mixers[0].attention
    assert (a.query, a.output) == (("distilbert.transformer.layer.0.attention.q_lin",),
                                   "distilbert.transformer.layer.0.attention.out_lin")
    assert a.heads == H and a.head_columns == blocks_of(H)


def test_modernbert_fused_projections_and_glu():
    s = read_structure(built(transformers.ModernBertForMaskedLM(transformers.ModernBertConfig(
        vocab_size=V, hidden_size=E, intermediate_size=48, num_hidden_layers=L, num_attention_heads=H,
        max_position_embeddings=32, global_attn_every_n_layers=2, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        cls_token_id=1, sep_token_id=2))))
    assert s.causal is False
    b = s.blocks[0]
    (a,) = b.mixers[0].attention
    assert a.query == a.key == a.value == ("model.layers.0.attn.Wqkv",) and a.output == "model.layers.0.attn.Wo"
    assert s.projections["model.layers.0.attn.Wqkv"].parts["query"] == tuple(range(E))
    (f,) = b.feed_forwards
    assert f.up == ("model.layers.0.mlp.Wi",) and f.fused_gate and f.down == "model.layers.0.mlp.Wo"


# -- OPT and GPT-NeoX: an offset position table, heads interleaved in a fused projection ----------
def test_opt_learned_positions_with_offset():
    s = read_structure(built(transformers.OPTForCausalLM(transformers.OPTConfig(
        vocab_size=V, hidden_size=E, num_hidden_layers=L, ffn_dim=64, num_attention_heads=H,
        max_position_embeddings=16, word_embed_proj_dim=E))))
    assert s.position_embeddings == ("model.decoder.embed_positions.weight",)
    assert s.nonembedding_params == s.params - V * E - (16 + 2) * E  # OPT's table has 2 extra rows
    assert s.causal is True
    (a,) = s.blocks[0].mixers[0].attention
    assert a.output == "model.decoder.layers.0.self_attn.out_proj"
    (f,) = s.blocks[0].feed_forwards
    assert (f.up, f.down) == (("model.decoder.layers.0.fc1",), "model.decoder.layers.0.fc2")


def test_gpt_neox_interleaved_fused_heads():
    s = read_structure(built(transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        vocab_size=V, hidden_size=E, num_hidden_layers=L, num_attention_heads=H, intermediate_size=64,
        max_position_embeddings=32))))
    (a,) = s.blocks[0].mixers[0].attention
    fused = "gpt_neox.layers.0.attention.query_key_value"
    assert a.query == a.key == a.value == (fused,)
    # the fused output is (heads, 3, head_dim): head h's query rows are [3hD, 3hD + D)
    assert a.head_rows["query"] == tuple(tuple(range(3 * h * D, 3 * h * D + D)) for h in range(H))
    assert a.head_rows["value"] == tuple(tuple(range(3 * h * D + 2 * D, 3 * h * D + 3 * D)) for h in range(H))
    assert s.causal is True


# -- an encoder-decoder: two stacks, cross-attention measured ---------------------------------------
def test_bart_two_stacks_and_cross_attention():
    s = read_structure(built(transformers.BartForConditionalGeneration(transformers.BartConfig(
        vocab_size=V, d_model=E, encoder_layers=L, decoder_layers=L, encoder_attention_heads=H,
        decoder_attention_heads=H, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=16))))
    assert [b.stack for b in s.blocks] == ["model.encoder.layers"] * L + ["model.decoder.layers"] * L
    encoder, decoder = s.blocks[0], s.blocks[L]
    assert [m.sees_future for m in encoder.mixers] == [True]
    self_attention, cross = decoder.mixers
    assert self_attention.sees_future is False and not self_attention.attention[0].cross
    assert cross.attention[0].cross and cross.attention[0].key == ("model.decoder.layers.0.encoder_attn.k_proj",)
    assert s.causal is False  # the decoder reads the whole (shifted) input through the encoder


# -- Mixtral: experts, router, active parameters ---------------------------------------------------
def test_mixtral_active_parameters():
    I, X, K = 48, 4, 2
    s = read_structure(built(transformers.MixtralForCausalLM(transformers.MixtralConfig(
        vocab_size=V, hidden_size=E, intermediate_size=I, num_hidden_layers=L, num_attention_heads=H,
        num_key_value_heads=2, num_local_experts=X, num_experts_per_tok=K, max_position_embeddings=32))))
    per_expert = 3 * E * I  # gate and up (2I x E) and down (E x I)
    for b in s.blocks:
        e = b.experts
        assert (e.count, e.top_k, e.top_k_source) == (X, K, "topk")
        assert e.router == b.module + ".mlp.gate" and e.expert_params == X * per_expert
    kv = 2 * D
    per_layer = 2 * E * E + 2 * E * kv + X * E + X * per_expert + 2 * E  # attention, router, experts, norms
    assert s.params == 2 * V * E + L * per_layer + E and s.nonembedding_params == L * per_layer + E
    assert s.active_params == s.params - L * (X - K) * per_expert
    assert s.active_params < s.params
    assert s.roles["model.layers.0.mlp.experts.gate_up_proj"] == "expert"
    assert s.roles["model.layers.0.mlp.gate.weight"] == "router"


# -- state-space models and a hybrid --------------------------------------------------------------
def test_mamba():
    s = read_structure(built(transformers.MambaForCausalLM(transformers.MambaConfig(
        vocab_size=V, hidden_size=E, state_size=8, num_hidden_layers=L, expand=2, conv_kernel=4))))
    I, N, R, K = 2 * E, 8, -(-E // 16), 4  # inner width, state, time-step rank ("auto": E / 16), kernel
    per_layer = E + 2 * I * E + (I * K + I) + (R + 2 * N) * I + (I * R + I) + I * N + I + E * I
    assert s.params == V * E + L * per_layer + E and s.tied_output
    assert s.nonembedding_params == L * per_layer + E
    assert [b.kinds for b in s.blocks] == [("state_space",)] * L
    assert s.causal is True and s.blocks[0].mixers[0].sees_future is False
    assert s.blocks[0].mixers[0].attention == ()
    assert s.roles["backbone.layers.0.mixer.conv1d.weight"] == "mixer_conv"
    assert s.roles["backbone.layers.0.mixer.out_proj.weight"] == "mixer_output"
    assert s.roles["backbone.layers.0.mixer.in_proj.weight"] == "mixer_input"
    assert s.roles["backbone.layers.0.mixer.A_log"] == "mixer_parameter"


def test_jamba_hybrid_per_layer():
    s = read_structure(built(transformers.JambaForCausalLM(transformers.JambaConfig(
        vocab_size=V, hidden_size=E, intermediate_size=48, num_hidden_layers=2, num_attention_heads=H,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, attn_layer_period=2, attn_layer_offset=1,
        expert_layer_period=2, expert_layer_offset=1, mamba_d_state=8, mamba_dt_rank=8, mamba_expand=2))))
    assert [b.kinds for b in s.blocks] == [("state_space",), ("attention",)]
    assert s.blocks[0].experts is None and len(s.blocks[0].feed_forwards) == 1
    assert (s.blocks[1].experts.count, s.blocks[1].experts.top_k) == (4, 2)
    assert s.causal is True


# -- torch models and models that cannot be mapped ----------------------------------------------------
class TorchLM(torch.nn.Module):
    def __init__(self, causal: bool):
        super().__init__()
        self.causal = causal
        self.emb = torch.nn.Embedding(V, E)
        layer = torch.nn.TransformerEncoderLayer(E, H, 64, dropout=0.0, batch_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, L, enable_nested_tensor=False)
        self.out = torch.nn.Linear(E, V)

    def forward(self, ids):
        mask = torch.nn.Transformer.generate_square_subsequent_mask(ids.shape[1]) if self.causal else None
        return self.out(self.enc(self.emb(ids), mask=mask, is_causal=self.causal))


@pytest.mark.parametrize("causal", [True, False])
def test_torch_transformer(causal):
    model = built(TorchLM(causal))
    s = read_structure(model)
    assert s.causal is causal and is_causal(model, V) is causal
    assert [b.kinds for b in s.blocks] == [("attention",)] * L
    assert s.output_embedding == "out.weight" and s.nonembedding_params == s.params - 2 * V * E - V
    (a,) = s.blocks[0].mixers[0].attention
    assert a.heads == H and a.output == "enc.layers.0.self_attn.out_proj"


class FFTMixer(torch.nn.Module):
    """FNet-like: tokens mixed by an FFT, no softmax."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(V, E)
        self.layers = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(E, E), torch.nn.GELU()) for _ in range(L))
        self.out = torch.nn.Linear(E, V)

    def forward(self, ids):
        x = self.emb(ids)
        for layer in self.layers:
            x = x + layer(torch.fft.fft(x, dim=1).real)
        return self.out(x)


def test_unmapped_parts_are_said_and_roles_override():
    model = built(FFTMixer())
    s = read_structure(model)
    assert s.maps_to_logits and s.causal is False and s.blocks
    assert any("no module of the block mixes tokens" in m for m in s.missing)
    given = read_structure(model, roles={"layers.0": "other", "layers.1": "other", "layers.0.0": "mixer_input"})
    assert [b.kinds for b in given.blocks] == [("other",), ("other",)] and not given.missing
    assert given.roles["layers.0.0.weight"] == "mixer_input"
    with pytest.raises(ValueError, match="expected one of"):
        read_structure(model, roles={"layers.0": "magic"})


def test_a_model_that_fails_gives_a_structure_not_an_exception():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, E)

        def forward(self, ids):
            raise RuntimeError("nope")

    s = read_structure(Broken())
    assert s.params == V * E and s.blocks == () and not s.maps_to_logits
    assert s.roles == {"emb.weight": "embedding"} and s.nonembedding_params == 0
    assert any(m.startswith("forward: RuntimeError: nope") for m in s.missing)


def test_the_model_is_left_as_it_was():
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=V, n_positions=16, n_embd=E,
                                                                 n_layer=L, n_head=H))
    model.train()
    model.transformer.h[0].mlp.c_proj.weight.data.zero_()  # an all-zero matrix gets noise for the read only
    model.transformer.wpe.weight.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    read_structure(model)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(m.training for m in model.modules())
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == hooks
    assert all(p.grad is None for p in model.parameters())


# -- the zoo: architectures built tiny from their own config classes ----------------------------------
def _zoo():
    from nni_zerocost.models import zoo

    return zoo


ZOO = [  # model_type, head, mixer kinds of each block, causal
    ("opt", "causal-lm", [("attention",)] * 2, True),
    ("bloom", "causal-lm", [("attention",)] * 2, True),
    ("falcon", "causal-lm", [("attention",)] * 2, True),
    ("phi", "causal-lm", [("attention",)] * 2, True),
    ("phi3", "causal-lm", [("attention",)] * 2, True),
    ("starcoder2", "causal-lm", [("attention",)] * 2, True),
    ("qwen2_moe", "causal-lm", [("attention",)] * 2, True),
    ("gpt_oss", "causal-lm", [("attention",)] * 4, True),
    ("deepseek_v3", "causal-lm", [("attention",)] * 2, True),
    ("rwkv", "causal-lm", [("recurrent", "other")] * 2, True),
    ("falcon_h1", "causal-lm", [("state_space", "attention")] * 2, True),
    ("nemotron_h", "causal-lm", [("state_space",), (), ("attention",), ()], True),
    ("xlnet", "causal-lm", [("attention",)] * 2, False),  # a permutation LM: every token sees every other
    ("deberta-v2", "masked-lm", [("attention",)] * 2, False),
    ("fnet", "masked-lm", [("other",)] * 2, False),
    ("albert", "masked-lm", [("attention",)], False),
]


@pytest.mark.parametrize("model_type,head,kinds,causal", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_architecture(model_type, head, kinds, causal):
    zoo = _zoo()
    entry = next(e for e in zoo.architectures() if e[0] == model_type and e[2] == head)
    s = read_structure(zoo.build(*entry))
    assert s.maps_to_logits and not s.missing, s.missing
    assert s.causal is causal
    if kinds is not None:
        assert [b.kinds for b in s.blocks] == kinds
    heads = [a.heads for b in s.blocks for m in b.mixers for a in m.attention]
    assert heads and all(h == zoo.HEADS for h in heads) or "attention" not in str(kinds)
    experts = [b.experts for b in s.blocks if b.experts]
    for e in experts:
        assert e.count == zoo.EXPERTS and e.top_k == zoo.TOP_K
    assert s.active_params == s.params - sum(e.inactive_params for e in experts)
