# SPDX-License-Identifier: Apache-2.0
"""Generation with a CausalLM: prompts (text with a tokenizer, or token ids) → new tokens.

    prompts → tokenizer (when given) → prefill each user (its own slot) → sample → decode the batch step by step
    (each user at its own position) → sample → until max_new_tokens or a stop token

Sampling is greedy (temperature 0) or seeded top-k / top-p on the host logits. Stop tokens come from the folder's
``generation_config.json`` (``eos_token_id``), else its ``config.json``. The tokenizer is read from the folder
offline (transformers) when the folder has one; without it prompts are token ids.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from models.common.models.hf_loading import ModelDescription

GENERATION_CONFIG = "generation_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")  # any one: transformers can load it
IDLE_TOKEN, IDLE_POSITION = 0, 0  # what a finished or absent user's row decodes (its output is ignored)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy (argmax)
    top_k: int = 0  # keep the k most likely tokens; 0: all
    top_p: float = 1.0  # keep the smallest set of most likely tokens whose probability reaches top_p
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"sampling needs temperature >= 0, top_k >= 0 and 0 < top_p <= 1, got {self}")


def sample(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> torch.Tensor:
    """One token per row of ``logits`` [rows, vocab]."""
    if sampling.temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / sampling.temperature
    if sampling.top_k:
        kth = logits.topk(min(sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(-1, descending=True)
        before = sorted_probs.cumsum(-1) - sorted_probs  # probability of the more likely tokens
        sorted_probs = sorted_probs.masked_fill(before >= sampling.top_p, 0)  # the most likely one always stays
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def stop_tokens(folder: str | Path, description: ModelDescription) -> frozenset[int]:
    """``eos_token_id`` of generation_config.json when the folder has one, else config.json's."""
    path = Path(folder) / GENERATION_CONFIG
    if path.is_file():
        eos = json.loads(path.read_text()).get("eos_token_id")
        if eos is not None:
            return frozenset(eos if isinstance(eos, list) else [eos])
    return frozenset(description.eos_token_ids)


def load_tokenizer(folder: str | Path):
    """The folder's tokenizer (transformers, offline), or None when it has none."""
    if not any((Path(folder) / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


@dataclass
class Generation:
    """One user's prompt and new tokens (and their text, with a tokenizer)."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    stopped: bool = False  # ended on a stop token
    text: str | None = None


@dataclass
class GenerationResult:
    generations: list[Generation]
    time_to_first_token_s: float  # every prompt prefilled and its first token sampled
    decode_step_s: list[float]  # host time of each decode step (the whole batch)


def generate(
    model,
    prompts: list[str] | list[list[int]],
    max_new_tokens: int,
    sampling: Sampling = Sampling(),
    *,
    tokenizer=None,
    stop: frozenset[int] = frozenset(),
    progress: bool = True,
) -> GenerationResult:
    """Up to ``max_new_tokens`` new tokens for each prompt (one user each) with ``model`` (a CausalLM)."""
    if any(isinstance(p, str) for p in prompts) and tokenizer is None:
        raise ValueError("text prompts need a tokenizer (the model folder has none): give token ids instead")
    if not 0 < len(prompts) <= model.max_batch_size:
        raise ValueError(f"{len(prompts)} prompts: give 1 to {model.max_batch_size} (one per user)")
    ids = [tokenizer(p).input_ids if isinstance(p, str) else list(p) for p in prompts]
    longest = max(len(p) for p in ids) + max_new_tokens
    if min(len(p) for p in ids) == 0 or longest > model.max_seq_len:
        raise ValueError(f"prompts must be non-empty and prompt + max_new_tokens ({longest}) <= {model.max_seq_len}")
    generator = torch.Generator().manual_seed(sampling.seed)
    generations = [Generation(p) for p in ids]
    start = time.perf_counter()
    first = torch.stack([model.prefill_forward(p, user) for user, p in enumerate(ids)])
    _append(generations, sample(first, sampling, generator), stop)
    time_to_first_token = time.perf_counter() - start
    steps = []
    for _ in tqdm(range(max_new_tokens - 1), desc="decoding", unit="step", disable=not progress, leave=False):
        if all(g.stopped for g in generations):
            break
        tokens, positions = [IDLE_TOKEN] * model.max_batch_size, [IDLE_POSITION] * model.max_batch_size
        for user, g in enumerate(generations):
            if not g.stopped:
                tokens[user], positions[user] = g.tokens[-1], len(g.prompt) + len(g.tokens) - 1
        step = time.perf_counter()
        logits = model.decode_forward(tokens, positions)
        steps.append(time.perf_counter() - step)
        _append(generations, sample(logits[: len(generations)], sampling, generator), stop)
    for user, g in enumerate(generations):
        model.release(user)
        if tokenizer is not None:
            g.text = tokenizer.decode(g.tokens)
    return GenerationResult(generations, time_to_first_token, steps)


def _append(generations: list[Generation], tokens: torch.Tensor, stop: frozenset[int]) -> None:
    for g, token in zip(generations, tokens.tolist(), strict=True):
        if not g.stopped:
            g.tokens.append(token)
            g.stopped = token in stop
