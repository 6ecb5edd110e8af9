# SPDX-License-Identifier: Apache-2.0
"""TTTv2's HF loading: a checkpoint folder's ``config.json`` → ``ModelDescription``; its safetensors → one
``LazyWeight`` per tensor, read when first used.

    config.json → check (family, rope scaling, sliding window, experts, activation, biases) → ModelDescription
    safetensors (single file or sharded index) → raw HF tensors, lazily → family split (phi3's fused qkv_proj /
    gate_up_proj) → canonical HF names (``model.`` dropped, tied LM head = the embedding) → LazyWeight each
    config.json only → the same, from seeded random tensors (``RANDOM_WEIGHT_SEED``, HF's initializer_range)

Families are data (``FAMILIES``): a model of a listed ``model_type`` needs no code. Canonical names are HF's unfused
ones: ``embed_tokens.weight``, ``norm.weight``, ``lm_head.weight`` and per layer ``input_layernorm.weight``,
``self_attn.{q,k,v,o}_proj.weight`` (+ ``{q,k,v}_proj.bias``, ``{q,k}_norm.weight``),
``post_attention_layernorm.weight``, ``mlp.{gate,up,down}_proj.weight``. Nothing here depends on
``models/tt_transformers``; TTTv1 reads its checkpoints and random weights through it.
"""

import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from safetensors import safe_open

from models.common.modules.lazy_weight import LazyWeight
from models.common.modules.rope.rope_1d import Llama3RopeScaling

SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "tt_transformers" / "model_params"  # data: config.json only
CONFIG_FILE = "config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
RANDOM_WEIGHT_SEED = 1234  # TTTv1 ModelArgs' seed for dummy weights, so both stacks draw the same random model
LAYER_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.")
SUPPORTED_ACTIVATION = "silu"  # MLP1D / MLP2D compute SwiGLU with SiLU
LLAMA3_ROPE = "llama3"
PLAIN_ROPE = "default"
LLAMA3_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
HF_DEFAULT_ROPE_THETA = 10000.0  # transformers' default rope_theta when a config omits it
HF_DEFAULT_INITIALIZER_RANGE = 0.02  # transformers' PretrainedConfig default
EXPERT_FIELDS = ("num_experts", "num_local_experts", "n_routed_experts")  # mixture-of-experts configs set one


@dataclass(frozen=True)
class Family:
    """What a ``model_type`` adds to the Llama layout: Q/K/V biases (Qwen2), per-head q/k norms (Qwen3), fused
    ``qkv_proj`` / ``gate_up_proj`` weights split at load (Phi-3 / phi-4), norms scaling by 1 + weight."""

    qkv_bias: bool = False
    qk_norm: bool = False
    fused_projections: bool = False
    norm_unit_offset: bool = False


FAMILIES = {
    "llama": Family(),
    "mistral": Family(),
    "qwen2": Family(qkv_bias=True),
    "qwen3": Family(qk_norm=True),
    "phi3": Family(fused_projections=True),
}


@dataclass(frozen=True)
class ModelDescription:
    """What the modules need to know about a model, read once from its ``config.json``."""

    model_type: str
    dim: int  # hidden_size
    hidden_dim: int  # intermediate_size
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    rope_scaling: Llama3RopeScaling | None
    norm_eps: float
    norm_unit_offset: bool  # the norms scale by (1 + weight) (Gemma style); no family here does
    qkv_bias: bool
    qk_norm: bool
    fused_projections: bool
    tied_embeddings: bool
    activation: str
    initializer_range: float  # std of the seeded random weights
    eos_token_ids: tuple[int, ...]

    @classmethod
    def from_config(cls, config: dict, source: str = CONFIG_FILE) -> "ModelDescription":
        """From a parsed config.json; ValueError naming the field and value the modules cannot do."""
        model_type = config.get("model_type")
        if model_type not in FAMILIES:
            raise ValueError(f"{source}: model_type={model_type!r} is not supported; supported: {', '.join(FAMILIES)}")
        family = FAMILIES[model_type]
        rope_theta, rope_scaling = _rope(config, source)
        _refuse(config, source)
        n_heads = config["num_attention_heads"]
        eos = config.get("eos_token_id")
        return cls(
            model_type=model_type,
            dim=config["hidden_size"],
            hidden_dim=config["intermediate_size"],
            n_layers=config["num_hidden_layers"],
            n_heads=n_heads,
            n_kv_heads=config.get("num_key_value_heads") or n_heads,
            head_dim=config.get("head_dim") or config["hidden_size"] // n_heads,
            vocab_size=config["vocab_size"],
            max_position_embeddings=config["max_position_embeddings"],
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            norm_eps=config["rms_norm_eps"],
            norm_unit_offset=family.norm_unit_offset,
            qkv_bias=family.qkv_bias,
            qk_norm=family.qk_norm,
            fused_projections=family.fused_projections,
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            activation=config.get("hidden_act", SUPPORTED_ACTIVATION),
            initializer_range=config.get("initializer_range", HF_DEFAULT_INITIALIZER_RANGE),
            eos_token_ids=tuple(eos if isinstance(eos, list) else [] if eos is None else [eos]),
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ModelDescription":
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}; point at an HF checkpoint folder")
        return cls.from_config(json.loads(path.read_text()), str(path))

    def hf_shapes(self, n_layers: int) -> dict[str, tuple[int, ...]]:
        """Raw HF tensor names and shapes (as a checkpoint of this family stores them) of the first ``n_layers``."""
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        shapes = {"model.embed_tokens.weight": (self.vocab_size, self.dim), "model.norm.weight": (self.dim,)}
        if not self.tied_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, self.dim)
        for i in range(n_layers):
            p = f"model.layers.{i}."
            shapes[p + "input_layernorm.weight"] = (self.dim,)
            shapes[p + "post_attention_layernorm.weight"] = (self.dim,)
            shapes[p + "self_attn.o_proj.weight"] = (self.dim, q)
            shapes[p + "mlp.down_proj.weight"] = (self.dim, self.hidden_dim)
            if self.fused_projections:
                shapes[p + "self_attn.qkv_proj.weight"] = (q + 2 * kv, self.dim)
                shapes[p + "mlp.gate_up_proj.weight"] = (2 * self.hidden_dim, self.dim)
            else:
                for name, rows in (("q", q), ("k", kv), ("v", kv)):
                    shapes[p + f"self_attn.{name}_proj.weight"] = (rows, self.dim)
                    if self.qkv_bias:
                        shapes[p + f"self_attn.{name}_proj.bias"] = (rows,)
                shapes[p + "mlp.gate_proj.weight"] = (self.hidden_dim, self.dim)
                shapes[p + "mlp.up_proj.weight"] = (self.hidden_dim, self.dim)
            if self.qk_norm:
                shapes[p + "self_attn.q_norm.weight"] = (self.head_dim,)
                shapes[p + "self_attn.k_norm.weight"] = (self.head_dim,)
        return shapes


def _rope(config: dict, source: str) -> tuple[float, Llama3RopeScaling | None]:
    """rope_theta and llama3 scaling, from transformers 4's ``rope_theta`` + ``rope_scaling`` or 5's
    ``rope_parameters``; another scaling type or a partial rotary dimension is refused."""
    field = "rope_parameters" if config.get("rope_parameters") else "rope_scaling"
    params = dict(config.get(field) or {})
    theta = params.get("rope_theta", config.get("rope_theta", HF_DEFAULT_ROPE_THETA))
    rope_type = params.get("rope_type", params.get("type", PLAIN_ROPE))
    if rope_type not in (PLAIN_ROPE, LLAMA3_ROPE):
        raise ValueError(
            f"{source}: {field}.rope_type={rope_type!r} is not supported; Rope1D / Rope2D do {PLAIN_ROPE!r} "
            f"and {LLAMA3_ROPE!r} only"
        )
    if config.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError(
            f"{source}: partial_rotary_factor={config['partial_rotary_factor']} is not supported; the rotary "
            "embedding covers the whole head"
        )
    scaling = Llama3RopeScaling(*(params[k] for k in LLAMA3_SCALING_KEYS)) if rope_type == LLAMA3_ROPE else None
    return float(theta), scaling


def _refuse(config: dict, source: str) -> None:
    """ValueError for what the modules cannot do: a sliding window, experts, another activation, biases beyond
    Q/K/V."""
    window = config.get("sliding_window")
    if window is not None and config.get("use_sliding_window", True):
        raise ValueError(
            f"{source}: sliding_window={window} is not supported; the attention modules attend to the whole context"
        )
    for field in EXPERT_FIELDS:
        if config.get(field):
            raise ValueError(f"{source}: {field}={config[field]} (mixture of experts) is not supported")
    activation = config.get("hidden_act", SUPPORTED_ACTIVATION)
    if activation != SUPPORTED_ACTIVATION:
        raise ValueError(f"{source}: hidden_act={activation!r} is not supported; the MLPs compute SwiGLU with SiLU")
    for field in ("attention_bias", "mlp_bias"):
        if config.get(field):
            raise ValueError(
                f"{source}: {field}=True is not supported; the modules take Q/K/V biases only (qwen2 has them)"
            )


def resolve_model(name: str) -> Path:
    """A checkpoint folder, or the folder of a config shipped in ``SHIPPED_CONFIGS`` (with or without the HF
    organisation, e.g. ``meta-llama/Llama-3.2-1B-Instruct``)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    shipped = SHIPPED_CONFIGS / name.strip("/").split("/")[-1]
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    names = sorted(p.parent.name for p in SHIPPED_CONFIGS.glob(f"*/{CONFIG_FILE}"))
    raise ValueError(
        f"{name!r} is neither a folder nor a shipped config; use an HF checkpoint folder or one of: {', '.join(names)}"
    )


# --- raw tensors: read from safetensors or drawn at random, each when looked up ---------------------------------
class LazyStateDict(Mapping):
    """A read-only state dict whose tensors are made when looked up (read, drawn or split), afresh each time, so a
    caller holds only the tensors it reads. ``identities`` and ``shapes`` (optional) describe each tensor without
    making it: an identity changes when the tensor would (the file rewritten, another seed, std or shape), so a
    weight cache keys on it."""

    def __init__(
        self,
        makers: dict[str, Callable[[], torch.Tensor]],
        identities: dict[str, str] | None = None,
        shapes: dict[str, tuple[int, ...]] | None = None,
    ):
        self._makers = makers
        self._identities = identities or {}
        self._shapes = shapes or {}

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._makers[key]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def maker(self, key: str) -> Callable[[], torch.Tensor]:
        return self._makers[key]

    def identity(self, key: str) -> str:
        if key not in self._identities:
            raise KeyError(f"{key!r} has no identity: build the state dict with read_safetensors or random_weights")
        return self._identities[key]

    def shape(self, key: str) -> tuple[int, ...]:
        """The tensor's shape, without making it when it is known (a safetensors header, a random draw's shape)."""
        return self._shapes[key] if key in self._shapes else tuple(self[key].shape)


def layer_of(key: str) -> int | None:
    match = LAYER_KEY.search(key)
    return int(match.group(1)) if match else None


def read_safetensors(folder: Path, n_layers: int) -> LazyStateDict:
    """HF-named tensors of the first ``n_layers`` decoder layers plus the non-layer ones, read when looked up."""
    folder = Path(folder)
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / SAFETENSORS_SINGLE).is_file():
        files = [SAFETENSORS_SINGLE]
    else:
        raise FileNotFoundError(
            f"{folder} has neither {SAFETENSORS_INDEX} nor {SAFETENSORS_SINGLE}; save the checkpoint with "
            "save_pretrained (safetensors), or use a folder with config.json only for seeded random weights"
        )
    makers, identities, shapes = {}, {}, {}
    for file in files:
        path = (folder / file).resolve()
        stat = path.stat()
        with safe_open(path, framework="pt") as f:  # reads the header only
            for key in f.keys():  # noqa: SIM118 (safe_open handles are not iterable)
                layer = layer_of(key)
                if layer is None or layer < n_layers:
                    makers[key] = partial(_read_tensor, path, key)
                    identities[key] = f"{path}@{stat.st_size}:{stat.st_mtime_ns}:{key}"
                    shapes[key] = tuple(f.get_slice(key).get_shape())
    return LazyStateDict(makers, identities, shapes)


def _read_tensor(path: Path, key: str) -> torch.Tensor:
    with safe_open(path, framework="pt") as f:
        return f.get_tensor(key)


def random_weights(shapes: dict[str, tuple[int, ...]], std: float, seed: int = RANDOM_WEIGHT_SEED) -> LazyStateDict:
    """Seeded bf16 tensors for HF-named ``shapes``: N(0, std), norms 1 + N(0, std). Each tensor has its own
    generator seeded from ``seed`` and its name, so a weight does not depend on which others are drawn."""
    makers = {key: partial(_random_tensor, key, shape, std, seed) for key, shape in shapes.items()}
    identities = {key: f"random(seed={seed}, std={std}, shape={tuple(shape)}):{key}" for key, shape in shapes.items()}
    return LazyStateDict(makers, identities, {key: tuple(shape) for key, shape in shapes.items()})


def _random_tensor(key: str, shape: tuple[int, ...], std: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed ^ zlib.crc32(key.encode()))
    weight = torch.randn(shape, generator=generator) * std
    if "norm" in key:
        weight += 1
    return weight.to(torch.bfloat16)


# --- HF names → canonical (unfused) names -----------------------------------------------------------------------
def split_fused(key: str, head_dim: int, n_heads: int, n_kv_heads: int) -> list[tuple[str, Callable]]:
    """(unfused HF key, part selector) for each weight stored under ``key``: Phi-3's ``qkv_proj`` rows are q, k, v
    by head counts, ``gate_up_proj`` is gate then up in halves (HF Phi3MLP's chunk order)."""
    if "qkv_proj" in key:
        sizes = [n_heads * head_dim, n_kv_heads * head_dim, n_kv_heads * head_dim]
        names = ("q_proj", "k_proj", "v_proj")
        return [(key.replace("qkv_proj", name), partial(_part, sizes, i)) for i, name in enumerate(names)]
    if "gate_up_proj" in key:
        names = ("gate_proj", "up_proj")
        return [(key.replace("gate_up_proj", name), partial(_half, i)) for i, name in enumerate(names)]
    return [(key, _whole)]


def _part(sizes: list[int], index: int, tensor: torch.Tensor) -> torch.Tensor:
    return torch.split(tensor, sizes)[index]


def _half(index: int, tensor: torch.Tensor) -> torch.Tensor:
    return torch.chunk(tensor, 2)[index]


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _apply(select: Callable, maker: Callable) -> torch.Tensor:
    return select(maker())


@dataclass(frozen=True)
class HFModel:
    """A loaded model: its description, raw HF tensors (for an HF reference) and canonical LazyWeights."""

    folder: Path
    description: ModelDescription
    n_layers: int  # the layers loaded (the first n_layers of the model)
    raw: LazyStateDict  # HF names as stored (fused for phi3)
    random: bool  # seeded random weights (the folder has config.json only)

    @classmethod
    def load(cls, folder: str | Path, n_layers: int | None = None) -> "HFModel":
        """The folder's config and weights (its safetensors, or seeded random when it has none) of the first
        ``n_layers`` layers (all by default)."""
        folder = Path(folder)
        description = ModelDescription.from_folder(folder)
        n_layers = description.n_layers if n_layers is None else n_layers
        if not 1 <= n_layers <= description.n_layers:
            raise ValueError(f"n_layers={n_layers}: {folder} has {description.n_layers} layers")
        has_weights = (folder / SAFETENSORS_INDEX).is_file() or (folder / SAFETENSORS_SINGLE).is_file()
        if has_weights:
            raw = read_safetensors(folder, n_layers)
        else:
            raw = random_weights(description.hf_shapes(n_layers), description.initializer_range)
        return cls(folder, description, n_layers, raw, not has_weights)

    @property
    def weights_description(self) -> str:
        if self.random:
            return f"seeded random weights (seed {RANDOM_WEIGHT_SEED}): {self.folder} has config.json only"
        return f"checkpoint {self.folder}"

    def canonical(self) -> LazyStateDict:
        """Canonical (unfused, ``model.``-less) names → tensors, each made when looked up."""
        d = self.description
        heads = f"split by heads {d.n_heads}/{d.n_kv_heads} x {d.head_dim}"  # what a fused tensor's parts depend on
        makers, identities, shapes = {}, {}, {}
        for key in self.raw:
            stored = torch.empty(self.raw.shape(key), device="meta")  # a part's shape, without reading the tensor
            for name, select in split_fused(key, d.head_dim, d.n_heads, d.n_kv_heads):
                canonical = name.removeprefix("model.")
                makers[canonical] = partial(_apply, select, self.raw.maker(key))
                identities[canonical] = self.raw.identity(key) + ("" if name == key else f" > {name}, {heads}")
                shapes[canonical] = tuple(select(stored).shape)
        if "lm_head.weight" not in makers:  # tied embeddings
            for table in (makers, identities, shapes):
                table["lm_head.weight"] = table["embed_tokens.weight"]
        return LazyStateDict(makers, identities, shapes)

    def weights(self, prefix: str = "") -> dict[str, LazyWeight]:
        """One LazyWeight per canonical tensor under ``prefix`` (e.g. ``layers.0.``), prefix removed; nothing is
        read until a module converts it. ``source_key`` is the tensor's identity (file, size and modification
        time, or the random draw's seed, std and shape), so a disk cache never hashes the contents and a changed
        source never hits; ``source_shape`` lets the modules check shapes without reading the tensor."""
        canonical = self.canonical()
        return {
            key.removeprefix(prefix): LazyWeight(
                canonical.maker(key), source_key=canonical.identity(key), source_shape=canonical.shape(key)
            )
            for key in canonical
            if key.startswith(prefix)
        }
