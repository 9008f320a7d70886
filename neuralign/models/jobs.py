"""What one extraction call writes: one :class:`Job` per feature set (per prompt, or the
captions), with its cache path, settings, key and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from ..io.feature_cache import FORMAT, IDS, IMAGE_HASHES, is_cache_dir, read_manifest
from ..io.hashing import file_sha256, json_key
from .prompts import Prompt, PromptEncoder, mrope_positions
from .spec import ModelSpec, graph_sha256, layer_stage, model_files
from .stimuli import StimulusSet


def stimulus_record(stim: StimulusSet, *, mode: str = "image") -> dict:
    """Where the stimuli come from, with every image's path relative to the source folder
    (what loading re-hashes to detect changed images)."""
    kind = "builtin" if stim.source == "builtin" else (
        "things" if stim.test_ids is not None else "folder")
    files = None
    if stim.source != "builtin":
        files = {s.id: Path(s.path).relative_to(stim.source).as_posix() for s in stim.stimuli}
    return {"kind": kind if mode == "image" else "captions", "name": stim.name,
            "source": stim.source, "files": files}


def model_record(spec: ModelSpec) -> tuple[dict, dict]:
    """(the model as recorded in provenance, the input files re-checked when loading)."""
    hashes: dict[str, str] = {}
    graphs = []
    for g in spec.graphs:
        if g.get("runtime", "onnx") != "onnx":
            graphs.append({"part": g.get("part"), "runtime": "torch", "reason": g.get("reason")})
            continue
        p = Path(spec.root) / g["file"]
        if not p.is_file():
            raise NeuralignError("model graph file is missing", path=p)
        digest = graph_sha256(p, hashes=hashes)
        if g.get("sha256") and g["sha256"] != digest:
            raise NeuralignError("model file does not match the hash recorded when it was "
                                 "exported (modified? export it again)", path=p)
        graphs.append({"file": g["file"], "path": str(p.resolve()), "sha256": digest})
    files = []
    for f in model_files(spec):
        if f.is_file():
            digest = hashes.get(str(f)) or file_sha256(f)
            files.append({"path": str(f.resolve()), "sha256": digest})
    record = {"name": spec.name, "family": spec.family, "graphs": graphs, "notes": spec.notes,
              "verification": spec.verification}
    return record, {"files": files}


def default_cache_name(spec: ModelSpec, stim: StimulusSet, pooling: str, pca: int | None, *,
                       stages: list[str] | None = None, label: str | None = None) -> str:
    """``<model>_<pooling>_<stimuli>[_pcaN][_stages][_p-label | _text]``."""
    name = f"{spec.name}_{pooling}_{stim.name}"
    if pca:
        name += f"_pca{pca}"
    if stages:
        name += "_" + "+".join(stages)
    if label == "text":
        name += "_text"
    elif label:
        name += f"_p-{label}"
    return name


@dataclass
class Job:
    """One feature set to write."""

    spec: ModelSpec
    stim: StimulusSet
    path: Path
    mode: str
    label: str | None
    pooling_per_layer: dict
    layer_records: list[dict]
    settings: dict
    key: str
    raw_key: str
    inputs: dict
    base: dict
    context: dict = field(default_factory=dict)
    captions: dict | None = None
    encoder: PromptEncoder | None = None
    raw_path: Path | None = None
    stale: str | None = None

    def provenance(self, *, raw: bool = False) -> dict:
        """Provenance written into the cache (the raw cache of a PCA job has no PCA)."""
        prov = {**self.settings, **self.base, "key": self.raw_key if raw else self.key}
        if raw:
            prov["pca"] = None
        return prov

    def text_context(self, caption: str) -> dict:
        """Token ids (and Qwen positions) of a caption."""
        ids = self.encoder.text_ids(caption, template=self.settings["text"]["template"])
        return {"input_ids": ids, "position_ids": prompt_positions(self.spec, ids)}

    def stale_reason(self) -> str | None:
        """Why the cache at :attr:`path` (or the raw cache) cannot be reused, if one is there
        with another key; None when there is none, or it is a partial one to resume."""
        path = self.raw_path if (self.raw_path is not None and
                                 not is_cache_dir(self.path)) else self.path
        if path is None or not is_cache_dir(path):
            return None
        m = read_manifest(path)
        key = self.raw_key if path == self.raw_path else self.key
        if m.get("key") == key:
            return None
        old = m.get("provenance", {})
        if [g.get("sha256") for g in old.get("model", {}).get("graphs", [])] != [
                g.get("sha256") for g in self.settings["model"]["graphs"]] or \
                old.get("inputs_sha256") != self.settings.get("inputs_sha256"):
            return "the model file changed"
        if old.get("prompt") != self.settings.get("prompt"):
            return "the prompt changed"
        try:
            ids = np.load(path / IDS, allow_pickle=False).tolist()
            hashes = np.load(path / IMAGE_HASHES, allow_pickle=False).tolist()
        except (OSError, ValueError):
            return "the old cache is unreadable"
        old_h, new_h = dict(zip(ids, hashes)), self.stim.hashes()
        changed = [s for s in new_h if s in old_h and old_h[s] != new_h[s]]
        if changed:
            return f"{len(changed)} image(s) changed (e.g. {changed[0]!r})"
        if set(old_h) != set(new_h):
            return "the stimulus set changed"
        return "settings changed (preprocessing, pooling, stages or PCA)"


def prompt_positions(spec: ModelSpec, ids: np.ndarray) -> np.ndarray | None:
    """Qwen-VL 3-D positions ``(3, 1, T)`` of token ids for models that take them, else None."""
    if not any(src == "@position_ids" for g in spec.graphs for src in g["inputs"].values()):
        return None
    grid = (spec.info.get("geometry") or {}).get("grid") or (1, 1)
    return mrope_positions(ids, image_token_id=int(spec.info["prompt"]["image_token_id"]),
                           grid=tuple(grid))


def _check_stages(spec: ModelSpec, stages: list[str] | None, mode: str) -> None:
    if not stages:
        return
    have = spec.stages(mode)
    bad = [s for s in stages if s not in have]
    if bad:
        raise NeuralignError(f"model {spec.name!r} has the stages {', '.join(have)} for {mode} "
                             f"inputs, not {', '.join(bad)}", path=spec.root)


def _out_path(out: Path, name: str, multi: bool) -> Path:
    if out.suffix.lower() == ".npz":
        raise NeuralignError("feature caches are folders (one memory-mappable .npy per layer): "
                             "give --out without .npz (a new folder, or a folder to write "
                             "caches into)", path=out)
    if out.exists() and not out.is_dir():
        raise NeuralignError("exists and is not a folder", path=out)
    if not multi and (is_cache_dir(out) or not out.exists()):
        return out
    if is_cache_dir(out):
        raise NeuralignError("several prompts give several caches: --out must be a folder to "
                             "write them into, not a cache", path=out)
    return out / name


def make_jobs(spec: ModelSpec, stim: StimulusSet, out: Path, *, pca: int | None,
              pooling: str | None, prompts: list[Prompt] | None, template: str | None,
              stages: list[str] | None, text: str | None,
              text_template: str | None) -> list[Job]:
    """The feature sets one call writes (see :func:`~neuralign.models.extract.extract_features`
    for the parameters)."""
    from .captions import stimulus_captions
    from .runtime import needs_prompt

    mode = "text" if text else "image"
    _check_stages(spec, stages, mode)
    per_layer = spec.resolve_pooling(pooling, mode=mode, stages=stages)
    layers = spec.layers_for(mode, stages)
    if not layers:
        raise NeuralignError(f"model {spec.name!r} has no layers for {mode} inputs",
                             path=spec.root)
    reads_text = needs_prompt(spec, mode=mode, stages=stages)
    if prompts and mode == "text":
        raise NeuralignError("--prompt does not apply to caption features (--text): the "
                             "captions are the text")
    if prompts and not reads_text:
        raise NeuralignError(f"--prompt: no layer of model {spec.name!r}"
                             f"{' (in these --stages)' if stages else ''} reads a prompt")
    if pca is not None and pca < 1:
        raise NeuralignError(f"--pca must be >= 1, got {pca}")
    encoder = PromptEncoder(spec) if reads_text else None
    rec, inputs = model_record(spec)
    pool_name = pooling or (spec.default_pooling if mode == "image" else "last")
    settings = {"format": FORMAT, "mode": mode, "model": rec,
                "inputs_sha256": [f["sha256"] for f in inputs["files"]],
                "preprocessing": spec.preprocessing, "pooling": pool_name,
                "pooling_per_layer": per_layer, "pca": pca,
                "layers": [lay["name"] for lay in layers], "stages": stages,
                "prompt": None, "text": None}
    base = {"stimuli": stimulus_record(stim, mode=mode), "n_stimuli": len(stim.stimuli),
            "test_ids": list(stim.test_ids) if stim.test_ids else None}
    captions = None
    variants: list[tuple[str | None, dict, dict]] = []  # (label, settings part, context)
    if mode == "text":
        captions, cap_rec = stimulus_captions(stim, text)
        settings["text"] = {**cap_rec, "template": text_template or
                            (spec.info.get("text") or {}).get("template") or "{text}"}
        variants.append(("text", {}, {}))
    elif reads_text:
        for p in prompts or [Prompt("default", (spec.info.get("prompt") or {}).get(
                "default", "Describe the image."))]:
            ids = encoder.image_prompt_ids(p.text, template=template)
            tmpl = template or spec.info["prompt"]["template"]
            variants.append((p.label, {"prompt": {"label": p.label, "text": p.text,
                                                  "template": tmpl, "ids": ids[0].tolist()}},
                             {"input_ids": ids, "position_ids": prompt_positions(spec, ids)}))
    else:
        variants.append((None, {}, {}))
    pairs = captions if mode == "text" else stim.hashes()
    multi = len(variants) > 1
    jobs = []
    for label, part, ctx in variants:
        s = {**settings, **part}
        keyed = {k: v for k, v in s.items() if k != "model"}
        keyed["model_sha256"] = [g.get("sha256") or g.get("part") for g in rec["graphs"]]
        name = default_cache_name(spec, stim, pool_name, pca, stages=stages,
                                  label=label if (prompts or mode == "text") else None)
        path = _out_path(out, name, multi)
        jobs.append(Job(spec, stim, path, mode, label, per_layer,
                        [{"name": lay["name"], "stage": layer_stage(lay)} for lay in layers],
                        s, json_key(keyed, pairs), json_key({**keyed, "pca": None}, pairs),
                        inputs, base, ctx, captions, encoder,
                        raw_path=path.with_name(path.name + ".raw") if pca else None))
    return jobs
