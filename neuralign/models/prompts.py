"""Prompts and captions as inputs of an exported model (no torch: ``tokenizers`` only).

An LVLM's language-model graph takes ``input_ids``: the prompt with the image placeholder
tokens, built from the family's template when features are extracted, so one export serves
any number of prompts. A template is text with three markers: ``{prompt}`` (the prompt),
``<image>`` (replaced by the model's image token repeated once per image token, as the
model's own processor does) and ``<bos>`` (the tokenizer's begin-of-sequence token, when the
model has one). Captions are tokenized with the family's text template (``{text}``).

Qwen2-VL / Qwen2.5-VL also take ``position_ids``: their 3-D rotary positions (M-RoPE), computed
here from the ids exactly as the model's ``get_rope_index`` does for one still image.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .spec import ModelSpec


@dataclass(frozen=True)
class Prompt:
    """A prompt and the label its feature set is named by.

    Parameters
    ----------
    label : str
        Short name (file-name safe), e.g. ``describe``.
    text : str
        The prompt text inserted at ``{prompt}`` in the template.
    """

    label: str
    text: str


def slug(text: str, *, max_len: int = 32) -> str:
    """A file-name-safe label from a prompt: lower case words joined by ``-``."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    out = "-".join(words)[:max_len].strip("-")
    return out or "prompt"


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        if lab in seen:
            seen[lab] += 1
            lab = f"{lab}-{seen[lab]}"
        else:
            seen[lab] = 1
        out.append(lab)
    return out


def read_prompts_file(path: str | Path) -> list[Prompt]:
    """Prompts from a file: a JSON object ``{label: prompt}``, or text with one prompt per
    line (``label<TAB>prompt`` or just the prompt; blank lines and ``#`` comments skipped).

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    list of Prompt
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NeuralignError("prompts file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NeuralignError(f"prompts file is not readable text ({type(e).__name__})",
                             path=path) from None
    prompts: list[Prompt] = []
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise NeuralignError(f"prompts file is not JSON ({e.msg}, line {e.lineno})",
                                 path=path) from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) and v.strip()
                                                for v in obj.values()):
            raise NeuralignError("a JSON prompts file must be an object {label: prompt text}",
                                 path=path)
        prompts = [Prompt(slug(k), v) for k, v in obj.items()]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            label, sep, rest = line.partition("\t")
            label = label.strip()
            if sep and not rest.strip():
                raise NeuralignError(f"line {n}: label {label!r} has no prompt text", path=path)
            prompts.append(Prompt(slug(label), rest.strip()) if sep
                           else Prompt(slug(line), line.strip()))
    if not prompts:
        raise NeuralignError("no prompts in the file", path=path)
    labels = [p.label for p in prompts]
    if len(set(labels)) != len(labels):
        raise NeuralignError(f"duplicate prompt labels {sorted({x for x in labels if labels.count(x) > 1})}",
                             path=path)
    return prompts


def gather_prompts(texts: list[str] | None, file: str | Path | None) -> list[Prompt]:
    """``--prompt`` values (repeatable) and ``--prompts FILE`` -> labelled prompts (may be
    empty: then the model's default prompt is used)."""
    prompts = [Prompt(slug(t), t) for t in (texts or []) if t.strip()]
    if texts and not prompts:
        raise NeuralignError("--prompt is empty")
    if file:
        prompts += read_prompts_file(file)
    labels = _unique([p.label for p in prompts])
    return [Prompt(lab, p.text) for lab, p in zip(labels, prompts)]


class PromptEncoder:
    """Tokenizes prompts and captions for an exported model (``tokenizer.json`` in the
    exported folder, read with the ``tokenizers`` library).

    Parameters
    ----------
    spec : ModelSpec
        An exported model whose ``info`` holds ``prompt`` (template, image token id, number of
        image tokens) and ``text`` (caption template) records.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.prompt_info = dict(spec.info.get("prompt") or {})
        self.text_info = dict(spec.info.get("text") or {})
        name = spec.info.get("tokenizer")
        root = Path(spec.root) if spec.root else Path(".")
        if not name or not (root / str(name)).is_file():
            why = spec.info.get("tokenizer_note") or "the Hugging Face folder had none"
            raise NeuralignError(
                f"no tokenizer (tokenizer.json) in the exported model folder ({why}): prompts "
                "and captions cannot be tokenized; export from a folder with the model's "
                "tokenizer, or extract only --stages that need no text", path=root)
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise NeuralignError("the 'tokenizers' package is needed for prompts and captions: "
                                 "pip install tokenizers") from None
        try:
            self.tok = Tokenizer.from_file(str(root / str(name)))
        except Exception as e:  # noqa: BLE001 - the library raises its own exception types
            raise NeuralignError(f"tokenizer is not readable ({str(e)[:120]})",
                                 path=root / str(name)) from None
        self.tok.no_padding()
        self.tok.no_truncation()

    def _special(self, token_id) -> str:
        if token_id is None:
            return ""
        s = self.tok.id_to_token(int(token_id))
        return s or ""

    def _encode(self, text: str, *, add_special_tokens: bool) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def image_prompt_ids(self, prompt: str | None, *, template: str | None = None) -> np.ndarray:
        """Token ids ``(1, T)`` int64 of ``prompt`` in the template, image tokens in place.

        Parameters
        ----------
        prompt : str, optional
            The prompt text (default: the model's default prompt).
        template : str, optional
            Overrides the family's template (``{prompt}``, ``<image>``, ``<bos>`` markers).
        """
        info = self.prompt_info
        template = template or info.get("template")
        if not template or "<image>" not in template:
            raise NeuralignError(f"prompt template {template!r} has no <image> marker",
                                 path=self.spec.root)
        image_id = int(info["image_token_id"])
        n = int(info["n_image_tokens"])
        image_str = self._special(image_id)
        if not image_str:
            raise NeuralignError(f"the tokenizer has no token for image id {image_id}",
                                 path=self.spec.root)
        text = template.replace("{prompt}", prompt if prompt is not None
                                else info.get("default", ""))
        text = text.replace("<bos>", self._special(info.get("bos_token_id")))
        text = text.replace("<image>", image_str * n)
        ids = self._encode(text, add_special_tokens=bool(info.get("add_special_tokens", False)))
        got = sum(1 for i in ids if i == image_id)
        if got != n:
            raise NeuralignError(
                f"tokenizing the prompt gave {got} image tokens, the model needs {n} (does the "
                f"tokenizer know {image_str!r} as one token?)", path=self.spec.root)
        return np.asarray([ids], dtype=np.int64)

    def text_ids(self, text: str, *, template: str | None = None) -> np.ndarray:
        """Token ids ``(1, T)`` int64 of a caption in the text template (padded where the
        model was trained padded, e.g. SigLIP to 64 tokens)."""
        info = self.text_info
        template = template or info.get("template") or "{text}"
        s = template.replace("{text}", text).replace("<bos>",
                                                     self._special(info.get("bos_token_id")))
        ids = self._encode(s, add_special_tokens=bool(info.get("add_special_tokens", False)))
        pad_to = info.get("pad_to")
        if pad_to:
            ids = ids[: int(pad_to)]
            ids += [int(info.get("pad_id") or 0)] * (int(pad_to) - len(ids))
        if not ids:
            raise NeuralignError(f"caption {text!r} gives no tokens")
        return np.asarray([ids], dtype=np.int64)


def mrope_positions(ids: np.ndarray, *, image_token_id: int, grid: tuple[int, int]) -> np.ndarray:
    """Qwen2-VL / Qwen2.5-VL 3-D positions ``(3, 1, T)`` for one sequence with (at most) one
    still image whose merged token grid is ``grid`` = (rows, cols): text tokens count up on all
    three axes; image tokens get (t0, t0 + row, t0 + col); text after the image continues from
    the largest position + 1 (as ``get_rope_index``).

    Parameters
    ----------
    ids : ndarray, shape (1, T)
        Token ids.
    image_token_id : int
        The image placeholder id.
    grid : (int, int)
        Merged grid of the image tokens (rows x cols = number of image tokens).
    """
    seq = np.asarray(ids).reshape(-1)
    pos = np.zeros((3, seq.size), dtype=np.int64)
    nxt = 0
    i = 0
    rows, cols = int(grid[0]), int(grid[1])
    while i < seq.size:
        if seq[i] == image_token_id:
            n = rows * cols
            if not np.all(seq[i:i + n] == image_token_id) or i + n > seq.size:
                raise NeuralignError(f"image tokens must come as one run of {n}")
            r, c = np.divmod(np.arange(n), cols)
            pos[0, i:i + n] = nxt
            pos[1, i:i + n] = nxt + r
            pos[2, i:i + n] = nxt + c
            nxt = int(pos[:, i:i + n].max()) + 1
            i += n
        else:
            pos[:, i] = nxt
            nxt += 1
            i += 1
    return pos[:, None, :]
