"""NNI labels of the BERT space: configurations <-> flat samples of categorical labels.

BERT (FlexiBERT-style space of Serianni & Kalita): ``hidden_size``, ``num_layers`` and, for each
of the ``max(NUM_LAYERS)`` layer slots, ``layer_{i}_operation`` (``"SA:SDP"``, ``"LT:DCT"``,
``"DSC:5"``, ...: type and parameter in one label, so no label depends on another),
``layer_{i}_heads``, ``layer_{i}_ff_dim``, ``layer_{i}_ff_layers``.  Layers beyond
``num_layers`` are unused genes.  Every sample is valid; nothing is repaired.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from ...errors import InvalidArchitectureError
from ..base import check_sample as _check_sample


class BertCodec:
    """Encoding of FlexiBERT-style configurations as ``2 + 4 * max(num_layers)`` labels.

    The values of every label are the BERT space's own :meth:`~nni_zerocost.spaces.SearchSpace.choices`
    (read on first use).  Decoding builds the dict format
    ``{"hidden_size", "nas_config": {"encoder_layers": [...]}}`` and hands it to the BERT space's
    ``parse``, so validation stays in one place.
    """

    space = "bert"

    def choices(self) -> Dict[str, list]:
        c = _bert_space().choices()
        ops = [f"{t}:{p}" for t, ps in c["operation"].items() for p in ps]
        out: Dict[str, list] = {"hidden_size": list(c["hidden_size"]), "num_layers": list(c["num_layers"])}
        for i in range(self.max_layers):
            out[f"layer_{i}_operation"] = list(ops)
            out[f"layer_{i}_heads"] = list(c["num_operation_heads"])
            out[f"layer_{i}_ff_dim"] = list(c["feed_forward_dimension"])
            out[f"layer_{i}_ff_layers"] = list(c["num_feed_forward"])
        return out

    @property
    def max_layers(self) -> int:
        return max(_bert_space().choices()["num_layers"])

    def decode_dict(self, sample: Mapping[str, Any]) -> Dict[str, Any]:
        """The BERT space's dict format for a sample (needs no BERT space installed)."""
        _check_sample(sample, self.choices())
        layers = []
        for i in range(int(sample["num_layers"])):
            op_type, _, param = str(sample[f"layer_{i}_operation"]).partition(":")
            layers.append({
                "operation_type": op_type,
                "operation_parameter": int(param) if param.isdigit() else param,
                "num_operation_heads": sample[f"layer_{i}_heads"],
                "feed_forward_dimension": sample[f"layer_{i}_ff_dim"],
                "num_feed_forward": sample[f"layer_{i}_ff_layers"],
            })
        return {"hidden_size": sample["hidden_size"], "nas_config": {"encoder_layers": layers}}

    def decode(self, sample: Mapping[str, Any]):
        return _bert_space().parse(self.decode_dict(sample))

    def encode(self, config: Any) -> Dict[str, Any]:
        """Sample of a BertConfig (or its dict form); InvalidArchitectureError when a value is
        outside the NNI space."""
        d = dict(_bert_space().to_dict(_bert_space().parse(config)))
        layers = list(d["nas_config"]["encoder_layers"])
        choices = self.choices()
        sample: Dict[str, Any] = {"hidden_size": d["hidden_size"], "num_layers": len(layers)}
        for i in range(self.max_layers):
            layer = layers[i] if i < len(layers) else None
            unused = {key: values[0] for key, values in choices.items() if key.startswith(f"layer_{i}_")}
            sample[f"layer_{i}_operation"] = (
                f"{layer['operation_type']}:{layer['operation_parameter']}" if layer else unused[f"layer_{i}_operation"]
            )
            sample[f"layer_{i}_heads"] = layer["num_operation_heads"] if layer else unused[f"layer_{i}_heads"]
            sample[f"layer_{i}_ff_dim"] = layer["feed_forward_dimension"] if layer else unused[f"layer_{i}_ff_dim"]
            sample[f"layer_{i}_ff_layers"] = layer["num_feed_forward"] if layer else unused[f"layer_{i}_ff_layers"]
        for label, value in sample.items():
            if value not in choices[label]:
                where = label.partition("_")[2].partition("_")[0] if label.startswith("layer_") else None
                raise InvalidArchitectureError(
                    f"{label} = {value!r} is outside the NNI space (valid: {choices[label]})",
                    node=f"layer {where}" if where else None,
                )
        return sample


def _bert_space():
    from .. import get_space

    return get_space("bert")
