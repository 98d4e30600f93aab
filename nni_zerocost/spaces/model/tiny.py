"""Small language models of each kind the generic contexts read: what the conformance checks of
the ``model`` space score (:meth:`ModelSpace.smoke_architectures`), and a starting point for your
own factories (``score --model nni_zerocost.spaces.model.tiny:recurrent_lm``).  Each is a
factory of plain JSON arguments returning a ``torch.nn.Module`` from token ids ``(B, T)`` to
logits ``(B, T, vocab)``; weights follow ``torch.manual_seed``, which the space sets."""
from __future__ import annotations

import torch


class RecurrentLM(torch.nn.Module):
    """Embedding -> ``nn.LSTM``/``nn.GRU``/``nn.RNN`` -> linear decoder."""

    def __init__(self, vocab: int, emsize: int, nhid: int, layers: int, kind: str):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, emsize)
        self.rnn = getattr(torch.nn, kind)(emsize, nhid, num_layers=layers, batch_first=True)
        self.decoder = torch.nn.Linear(nhid, vocab)

    def forward(self, ids):
        return self.decoder(self.rnn(self.embedding(ids))[0])


class TransformerLM(torch.nn.Module):
    """A causal LM over ``nn.TransformerEncoder`` with learned positions."""

    def __init__(self, vocab: int, d: int, heads: int, layers: int, positions: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, d)
        self.positions = torch.nn.Embedding(positions, d)
        layer = torch.nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = torch.nn.Linear(d, vocab)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embedding(ids) + self.positions(torch.arange(T, device=ids.device))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(T, device=ids.device)
        return self.decoder(self.encoder(x, mask=mask, is_causal=True))


def recurrent_lm(kind: str = "LSTM", vocab: int = 100, emsize: int = 16, nhid: int = 24, layers: int = 2):
    return RecurrentLM(vocab, emsize, nhid, layers, kind)


def transformer_lm(vocab: int = 100, d: int = 16, heads: int = 4, layers: int = 2, positions: int = 128):
    return TransformerLM(vocab, d, heads, layers, positions)


def huggingface_lm(model_type: str = "gpt2", vocab: int = 100, hidden: int = 32, layers: int = 2, heads: int = 4,
                   positions: int = 128):
    """A Hugging Face causal LM built from its config (needs ``transformers``; nothing downloads)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, vocab_size=vocab, hidden_size=hidden, n_embd=hidden,
                                  num_hidden_layers=layers, n_layer=layers, num_attention_heads=heads, n_head=heads,
                                  intermediate_size=2 * hidden, max_position_embeddings=positions,
                                  n_positions=positions)
    return AutoModelForCausalLM.from_config(config)
