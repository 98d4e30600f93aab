"""Scores of tiny seeded Hugging Face and torch transformers with every proxy that applies, saved
exactly, to check that a change to the generic model contexts leaves them bit-identical.

    python examples/score_model_identity.py save FILE      # before the change
    python examples/score_model_identity.py compare FILE   # after: exit 1 on any difference
"""
from __future__ import annotations

import json
import sys

import torch

import nni_zerocost as nz
from nni_zerocost.models import model_batch, model_context

V = 50


def models():
    import transformers as tf

    small = dict(vocab_size=V, num_hidden_layers=2, num_attention_heads=4, hidden_size=16, intermediate_size=32)
    yield "bert", lambda: tf.BertForMaskedLM(tf.BertConfig(**small))
    yield "bert-encoder", lambda: tf.BertModel(tf.BertConfig(**small))
    yield "roberta", lambda: tf.RobertaForMaskedLM(tf.RobertaConfig(max_position_embeddings=80, **small))
    yield "gpt2", lambda: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=V, n_embd=16, n_layer=2, n_head=4,
                                                           n_positions=64, bos_token_id=V - 1, eos_token_id=V - 1))
    yield "llama", lambda: tf.LlamaForCausalLM(tf.LlamaConfig(num_key_value_heads=2, max_position_embeddings=64,
                                                              **small))
    yield "mistral", lambda: tf.MistralForCausalLM(tf.MistralConfig(num_key_value_heads=2, **small))

    class TorchLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, 16)
            layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.decoder = torch.nn.Linear(16, V)

        def forward(self, ids):
            mask = torch.nn.Transformer.generate_square_subsequent_mask(ids.shape[1])
            return self.decoder(self.encoder(self.embedding(ids), mask=mask, is_causal=True))

    yield "torch-encoder", TorchLM


def scores():
    out = {}
    batch = torch.randint(0, V, (6, 10), generator=torch.Generator().manual_seed(0))
    for name, make in models():
        torch.manual_seed(4)
        model = make()
        with model_context(model, model_batch(model, batch)) as ctx:
            proxies = sorted(nz.list_proxies(ctx))
        res = nz.score_model(model, proxies, batch=batch, seed=0)
        out[name] = {p: [repr(r.raw), r.flag] for p, r in res.items()}
    return out


def main(argv):
    what, path = argv
    got = scores()
    if what == "save":
        with open(path, "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
        print(f"saved {sum(len(v) for v in got.values())} scores of {len(got)} models")
        return 0
    with open(path) as f:
        want = json.load(f)
    bad = [(m, p, want[m][p], got.get(m, {}).get(p)) for m in want for p in sorted(want[m])
           if want[m][p] != got.get(m, {}).get(p)]
    new = [(m, p) for m in got for p in sorted(got[m]) if p not in want.get(m, {})]
    for b in bad:
        print("DIFFERS", *b)
    print(f"{sum(len(v) for v in want.values())} scores compared, {len(bad)} differ; newly applicable: {new}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
