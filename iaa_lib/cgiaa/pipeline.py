"""CG-IAA stage runners: cached image features, VLAP and expert training (step-based runs of the engine's
`fit_steps`, checkpointed by the hash of their settings), critique generation, text embedding and MAP feature
datasets."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from iaa_lib.cgiaa.contrastive import info_nce
from iaa_lib.cgiaa.tokenizer import ClipBPETokenizer
from iaa_lib.data.images import load_rgb
from iaa_lib.data.transforms import eval_transform
from iaa_lib.cgiaa.model import AestheticCLIP, CritiqueExperts
from iaa_lib.data.labels import DIST_COLUMNS
from iaa_lib.files import atomic_pickle, atomic_torch_save, read_pickle_cache, read_torch_cache
from iaa_lib.training.fingerprint import fingerprint
from iaa_lib.training.engine import fit_steps


def load_image_batch(paths: Sequence[str | os.PathLike], size: int, mean: Sequence[float], std: Sequence[float]
                     ) -> torch.Tensor:
    """Images -> normalised float tensor (N, 3, size, size) (squash resize, as the released generator)."""
    transform = eval_transform(size, mean, std)
    return torch.stack([transform(load_rgb(p)) for p in paths])


@torch.no_grad()
def image_features(clip: AestheticCLIP, paths: Sequence[str | os.PathLike], batch_size: int = 64) -> torch.Tensor:
    """Visual features before the projection (N, Dv) of image files, in eval mode."""
    clip.eval()
    chunks = []
    for start in range(0, len(paths), batch_size):
        images = load_image_batch(paths[start:start + batch_size], clip.image_size, clip.mean, clip.std)
        chunks.append(clip.image_features(images).float())
    return torch.cat(chunks)


def cached_image_features(clip: AestheticCLIP, paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike,
                          tag: str) -> torch.Tensor:
    """image_features, stored in cache_dir/<tag>-<hash>.pt and reused when present (hash of the paths, the image
    size and the tower's first weight tensors, which change whenever the tower is trained)."""
    tower_state = [clip.image_tower.state_dict()[k] for k in list(clip.image_tower.state_dict())[:3]]
    path = Path(cache_dir) / f"{tag}-{fingerprint([str(p) for p in paths], clip.image_size, *tower_state)}.pt"
    cached = read_torch_cache(path)
    if cached is not None:
        return cached
    features = image_features(clip, paths)
    atomic_torch_save(features, path)
    return features


# ----------------------------------------------------------------------------------------------- VLAP
@dataclass(frozen=True)
class VLAPSchedule:
    """AesCLIP recipe (borrowed): AdamW(lr, betas, eps 1e-3, wd 0.01), lr x 0.5 every `halve_every` steps.

    With `epochs` set (full: 20 epochs, halving every 2), steps = epochs x ceil(images / batch_size) and
    halve_every = 2 epochs: one epoch shows every training image once (with one of its comments).
    """

    steps: int = 150
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 6e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-3
    weight_decay: float = 0.01
    halve_every: int = 50
    seed: int = 0
    max_steps: int = 0  # > 0 (a rehearsal): at most this many optimiser steps


def train_vlap(clip: AestheticCLIP, pairs: pd.DataFrame, visual_input: Callable[[torch.Tensor], torch.Tensor],
               schedule: VLAPSchedule, out_dir: str | os.PathLike | None = None, settings: dict | None = None
               ) -> dict:
    """Contrastive (image, comment) training; pairs has columns image_index (int) and text.

    Each batch holds distinct images; identical comment strings in a batch count as extra positives.
    `visual_input(indices)` returns the visual features (B, Dv) of those images (cached or from the tower).
    Runs through `fit_steps` (checkpoint in out_dir keyed by `settings`). Returns its history ("loss": per step).
    """
    if not {"image_index", "text"} <= set(pairs.columns):
        raise ValueError(f"pairs needs columns image_index and text, got {list(pairs.columns)}")
    generator = torch.Generator().manual_seed(schedule.seed)
    params = [p for p in clip.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, betas=schedule.betas, eps=schedule.eps,
                                  weight_decay=schedule.weight_decay)
    by_image = pairs.groupby("image_index")["text"].apply(list).to_dict()
    image_ids = torch.tensor(sorted(by_image))
    steps, halve_every = schedule.steps, schedule.halve_every
    if schedule.epochs is not None:
        steps_per_epoch = math.ceil(len(image_ids) / schedule.batch_size)
        steps, halve_every = schedule.epochs * steps_per_epoch, 2 * steps_per_epoch
    if schedule.max_steps:
        steps = min(steps, schedule.max_steps)
    tokens_of = {t: clip.tokenize([t])[0] for t in pairs["text"].unique()}
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=halve_every, gamma=0.5)

    def batch_loss() -> torch.Tensor:
        chosen = image_ids[torch.randperm(len(image_ids), generator=generator)[: schedule.batch_size]]
        texts = []
        for index in chosen.tolist():
            options = by_image[index]
            texts.append(options[int(torch.randint(len(options), (1,), generator=generator))])
        same_text = torch.tensor([[a == b for b in texts] for a in texts])
        image_emb = clip.embed_image_features(visual_input(chosen))
        text_emb = clip.encode_text(torch.stack([tokens_of[t] for t in texts]))
        return info_nce(image_emb, text_emb, clip.temperature, positives=same_text)

    return fit_steps(clip, batch_loss, optimizer, scheduler, steps, out_dir, settings)[1]


@torch.no_grad()
def embed_texts(clip: AestheticCLIP, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Unit-norm text embeddings (N, E) from the VLAP text tower."""
    clip.eval()
    chunks = [clip.encode_text(clip.tokenize(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0, clip.embed_dim)


def retrieval_hits(image_emb: torch.Tensor, text_emb: torch.Tensor, texts: Sequence[str],
                   own_texts: Sequence[set[str]], k: int = 1) -> float:
    """Share of images whose top-k retrieved comments (by cosine) contain one of the image's own comment strings."""
    top = (image_emb @ text_emb.t()).topk(k, dim=1).indices
    return float(np.mean([any(texts[j] in own for j in row) for row, own in zip(top.tolist(), own_texts)]))


# ----------------------------------------------------------------------------------------------- experts
@dataclass(frozen=True)
class ExpertSchedule:
    """Caption training: AdamW, linear warm-up then linear decay to 0 (ClipCap/CG-IAA: lr 2e-5, 5,000 warm-up)."""

    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    seed: int = 0
    max_steps: int = 0  # > 0 (a rehearsal): at most this many optimiser steps (the lr schedule keeps `steps`)


def train_experts(experts: CritiqueExperts, tokenizer: ClipBPETokenizer, embeddings: torch.Tensor,
                  captions: pd.DataFrame, max_tokens: int, schedule: ExpertSchedule,
                  out_dir: str | os.PathLike | None = None, settings: dict | None = None) -> dict:
    """Train the attribute mappers (and an unfrozen LM) on captions: columns image_index, attribute, sentence.

    embeddings (N_images, E) are the (VLAP) image embeddings indexed by image_index. Runs through `fit_steps`
    (checkpoint in out_dir keyed by `settings`). Returns its history ("loss": per step).
    """
    unknown = set(captions["attribute"]) - set(experts.attributes)
    if unknown:
        raise ValueError(f"captions have attributes without an expert: {sorted(unknown)}")
    ids, mask = tokenizer.encode_captions(list(captions["sentence"]), max_tokens)
    attribute_index = torch.tensor([experts.attributes.index(a) for a in captions["attribute"]])
    image_index = torch.tensor(captions["image_index"].to_numpy())
    generator = torch.Generator().manual_seed(schedule.seed)
    params = [p for p in experts.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)

    def factor(step: int) -> float:
        if step < schedule.warmup:
            return (step + 1) / schedule.warmup
        return max(0.0, (schedule.steps - step) / max(1, schedule.steps - schedule.warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def batch_loss() -> torch.Tensor:
        rows = torch.randint(len(captions), (schedule.batch_size,), generator=generator)
        return experts.loss(embeddings[image_index[rows]], attribute_index[rows], ids[rows], mask[rows])

    steps = min(schedule.steps, schedule.max_steps) if schedule.max_steps else schedule.steps
    return fit_steps(experts, batch_loss, optimizer, scheduler, steps, out_dir, settings)[1]


@torch.no_grad()
def caption_nll(experts: CritiqueExperts, tokenizer: ClipBPETokenizer, embeddings: torch.Tensor,
                captions: pd.DataFrame, max_tokens: int) -> float:
    """Mean per-token negative log-likelihood of held-out captions (same columns as for train_experts)."""
    experts.eval()
    ids, mask = tokenizer.encode_captions(list(captions["sentence"]), max_tokens)
    attribute_index = torch.tensor([experts.attributes.index(a) for a in captions["attribute"]])
    emb = embeddings[torch.tensor(captions["image_index"].to_numpy())]
    return float(experts.loss(emb, attribute_index, ids, mask))


@torch.no_grad()
def generate_critiques(experts: CritiqueExperts, tokenizer: ClipBPETokenizer, embeddings: torch.Tensor,
                       max_tokens: int, beam_width: int = 5, batch_size: int = 256) -> pd.DataFrame:
    """One critique per image and attribute: columns image_index, attribute, critique, score (mean log-prob)."""
    experts.eval()
    rows = []
    for attribute in experts.attributes:
        for start in range(0, len(embeddings), batch_size):
            result = experts.generate(attribute, embeddings[start:start + batch_size], tokenizer.stop_ids,
                                      max_tokens, beam_width)
            for offset, (tokens, score) in enumerate(zip(result.tokens, result.scores.tolist())):
                rows.append((start + offset, attribute, tokenizer.decode(tokens), score))
    return pd.DataFrame(rows, columns=["image_index", "attribute", "critique", "score"])


def critique_matrix(critiques: pd.DataFrame, attributes: Sequence[str], n_images: int) -> list[list[str]]:
    """Long critique frame -> [image][attribute] texts (every image must have one critique per attribute)."""
    table = critiques.pivot(index="image_index", columns="attribute", values="critique")
    if len(table) != n_images or table[list(attributes)].isna().any().any():
        raise ValueError("critique frame must hold one critique per image and attribute")
    return table.sort_index()[list(attributes)].values.tolist()


# ----------------------------------------------------------------------------------------------- MAP data
class FeatureDataset(Dataset):
    """MAP training items: visual_feature (Dv), critique_embeddings (C, E), mos, dist (10), image_id."""

    def __init__(self, visual: torch.Tensor, critiques: torch.Tensor, frame: pd.DataFrame) -> None:
        if not (len(visual) == len(critiques) == len(frame)):
            raise ValueError(f"visual ({len(visual)}), critiques ({len(critiques)}) and frame ({len(frame)}) "
                             "must have the same length")
        self.visual, self.critiques = visual.float(), critiques.float()
        self.mos = torch.tensor(frame["mos"].to_numpy(), dtype=torch.float32)
        self.dist = torch.tensor(frame[DIST_COLUMNS].to_numpy(), dtype=torch.float32)
        self.ids = list(frame["image_id"].astype(str))

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """Hash of ids, labels, visual features and critique embeddings."""
        return fingerprint("FeatureDataset", self.ids, self.mos, self.dist, self.visual, self.critiques)

    def __getitem__(self, index: int) -> dict:
        return {"visual_feature": self.visual[index], "critique_embeddings": self.critiques[index],
                "mos": self.mos[index], "dist": self.dist[index], "image_id": self.ids[index]}


def first_last_mean(values: Sequence[float], k: int = 10) -> tuple[float, float]:
    """Mean of the first k and of the last k values of a curve."""
    k = max(1, min(k, len(values) // 2 or 1))
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))




# ----------------------------------------------------------------------------------------------- sentences
def catalogue_sentences(catalogue: pd.DataFrame, splits: Sequence[str] = ("train",)) -> pd.DataFrame:
    """One row per comment sentence of the catalogue rows in `splits`: image_index, source, text, true_attribute
    (the synthetic comment's attribute; None for real comments)."""
    from iaa_lib.blocks.text import split_sentences

    rows = []
    for index, row in catalogue[catalogue["split"].isin(splits)].iterrows():
        attributes = row["comment_attributes"] or [None] * len(row["comments"])
        rows += [(index, row["source"], sentence, attribute)
                 for text, attribute in zip(row["comments"], attributes)
                 for sentence in split_sentences(text, "punctuated")]
    return pd.DataFrame(rows, columns=["image_index", "source", "text", "true_attribute"])


# ----------------------------------------------------------------------------------------------- stages
def vlap_stage(cfg, catalogue: pd.DataFrame, run_dir: str | os.PathLike, schedule: VLAPSchedule,
               train_image_tower: bool = False) -> tuple[AestheticCLIP, torch.Tensor, dict]:
    """Build the aesthetic CLIP, cache the visual features of every catalogue image and run VLAP on the train
    comments (checkpoint in run_dir/vlap). With a frozen image tower (smoke) VLAP trains proj + text tower on
    cached features. Returns (clip, visual features (N, Dv) after VLAP, history)."""
    from iaa_lib.cgiaa.model import build_clip

    clip = build_clip(cfg)
    paths = list(catalogue["path"])
    features = cached_image_features(clip, paths, Path(run_dir) / "features", "visual")
    pairs = catalogue_sentences(catalogue, ("train",))
    if train_image_tower:
        def visual_input(indices: torch.Tensor) -> torch.Tensor:
            images = load_image_batch([paths[i] for i in indices.tolist()], clip.image_size, clip.mean, clip.std)
            return clip.image_features(images)
    else:
        clip.image_tower.requires_grad_(False)
        def visual_input(indices: torch.Tensor) -> torch.Tensor:
            return features[indices]
    settings = {"stage": "vlap", "config": cfg.as_dict(), "schedule": asdict(schedule), "tower": train_image_tower,
                "pairs": fingerprint(pairs[["image_index", "text"]].values.tolist()),
                "features": fingerprint(features)}
    history = train_vlap(clip, pairs, visual_input, schedule, Path(run_dir) / "vlap", settings)
    if train_image_tower:
        features = cached_image_features(clip, paths, Path(run_dir) / "features", "visual-vlap")
    return clip, features, history


@torch.no_grad()
def image_embeddings(clip: AestheticCLIP, features: torch.Tensor) -> torch.Tensor:
    """Unit-norm VLAP image embeddings (N, E) from cached visual features."""
    clip.eval()
    return clip.embed_image_features(features)


def attribute_splitter(zero_shot: bool = False):
    """The attribute labeller of the experts' captions: keyword lexicon, refined by zero-shot similarity with the
    offline all-MiniLM-L6-v2 sentence encoder when zero_shot."""
    from iaa_lib.cgiaa.attributes import AttributeSplitter

    if not zero_shot:
        return AttributeSplitter()
    from iaa_lib.blocks.backbones import create_text_encoder

    minilm = create_text_encoder("minilm")
    return AttributeSplitter(encoder=lambda texts: minilm.encode(list(texts), batch_size=128))


def expert_captions(catalogue: pd.DataFrame, splitter, splits: Sequence[str] = ("train",),
                    sources: Sequence[str] = ("synthetic",)) -> pd.DataFrame:
    """Attribute-labelled caption sentences for the experts: image_index, sentence, attribute, method, true_attribute."""
    sentences = catalogue_sentences(catalogue[catalogue["source"].isin(sources)], splits)
    labelled = splitter.classify(list(sentences["text"]))
    return pd.DataFrame({"image_index": sentences["image_index"].to_numpy(), "sentence": sentences["text"].to_numpy(),
                         "attribute": [a.attribute for a in labelled], "method": [a.method for a in labelled],
                         "true_attribute": sentences["true_attribute"].to_numpy()})


def experts_stage(cfg, embeddings: torch.Tensor, captions: pd.DataFrame, run_dir: str | os.PathLike,
                  schedule: ExpertSchedule, vlap_key: str, name: str = "experts"):
    """Tokenizer (compact BPE fitted on the captions, or GPT-2's for loaded weights), experts trained on the
    captions (checkpoint in run_dir/<name>; vlap_key: the VLAP run's config_hash). Returns (experts, tokenizer,
    history)."""
    from iaa_lib.cgiaa.tokenizer import LocalGPT2Tokenizer
    from iaa_lib.cgiaa.model import build_experts

    if cfg.gpt2_path is not None:
        tokenizer = LocalGPT2Tokenizer(cfg.gpt2_path)
    elif cfg.lm_weights == "random":
        tokenizer = ClipBPETokenizer()  # a GPT-2-size vocabulary (49,408 ids) that ships offline
    else:
        tokenizer = ClipBPETokenizer.fit(captions["sentence"])
    torch.manual_seed(schedule.seed)
    experts = build_experts(cfg, tokenizer.vocab_size)
    settings = {"stage": "experts", "config": cfg.as_dict(), "schedule": asdict(schedule), "vlap": vlap_key,
                "captions": fingerprint(captions[["image_index", "sentence", "attribute"]].values.tolist())}
    history = train_experts(experts, tokenizer, embeddings, captions, cfg.caption_tokens, schedule,
                            Path(run_dir) / name, settings)
    return experts, tokenizer, history


def critiques_stage(experts: CritiqueExperts, tokenizer, embeddings: torch.Tensor, cfg, run_dir: str | os.PathLike,
                    experts_key: str) -> pd.DataFrame:
    """Critique cache: generate one critique per image and attribute once, store it as a pickle, reuse it."""
    path = Path(run_dir) / f"critiques-{fingerprint(experts_key, fingerprint(embeddings), cfg.beam_width, cfg.max_generate)}.pkl"
    cached = read_pickle_cache(path)
    if cached is not None:
        return cached
    critiques = generate_critiques(experts, tokenizer, embeddings, cfg.max_generate, cfg.beam_width)
    atomic_pickle(critiques, path)
    return critiques


# ----------------------------------------------------------------------------------------------- MAP stage
@torch.no_grad()
def critique_embeddings(clip: AestheticCLIP, texts: Sequence[Sequence[str]]) -> torch.Tensor:
    """[image][critique] texts (each image the same number C) -> unit-norm embeddings (N, C, E)."""
    n_critiques = len(texts[0]) if len(texts) else 0
    flat = [t for row in texts for t in row]
    if any(len(row) != n_critiques for row in texts):
        raise ValueError("every image needs the same number of critiques")
    return embed_texts(clip, flat).view(len(texts), n_critiques, -1)


def map_stage(name: str, visual: torch.Tensor | None, critiques: torch.Tensor | None, catalogue: pd.DataFrame,
              rows: dict[str, Sequence[int]], run_dir: str | os.PathLike, epochs: int = 40, lr: float = 1e-3,
              batch_size: int = 32, hidden: int = 128, dropout: float = 0.1, seed: int = 0, max_steps: int = 0):
    """Train (or load) a MAPHead on cached features with the engine (EMD r=2 per sample, AdamW, cosine) and
    evaluate it on rows["test"]. visual or critiques may be None (text-only / image-only); max_steps > 0 (a
    rehearsal): one epoch of at most max_steps optimiser steps.
    Returns (head, history, test metrics, test predictions frame)."""
    from torch.utils.data import DataLoader

    from iaa_lib.losses import EMDLoss
    from iaa_lib.cgiaa.model import MAPHead
    from iaa_lib.training import FitConfig, evaluate, fit_or_load

    n = len(catalogue)
    visual_all = visual if visual is not None else torch.zeros(n, 0)
    critiques_all = critiques if critiques is not None else torch.zeros(n, 0, 1)
    torch.manual_seed(seed)  # the head's initial weights follow the seed, not whatever ran before
    head = MAPHead(visual_all.shape[1], critiques_all.shape[2] if critiques is not None else 0,
                   critiques_all.shape[1], hidden=hidden, dropout=dropout)

    def dataset(split: str) -> FeatureDataset:
        index = torch.tensor(list(rows[split]))
        return FeatureDataset(visual_all[index], critiques_all[index], catalogue.iloc[index.numpy()])

    loaders = {s: DataLoader(dataset(s), batch_size=batch_size, shuffle=(s == "train"),
                             generator=torch.Generator().manual_seed(seed)) for s in ("train", "val", "test")}
    labels = catalogue[["image_id", "mos", *DIST_COLUMNS]].astype({"image_id": str}).values.tolist()
    data_key = fingerprint(visual_all, critiques_all, {s: list(map(int, r)) for s, r in rows.items()}, labels)
    cfg = FitConfig(epochs=1 if max_steps else epochs, lr=lr, weight_decay=0.01, schedule="cosine", seed=seed,
                    progress=False, out_dir=str(Path(run_dir) / "map" / f"{name}-seed{seed}-{data_key}"),
                    extra={"data": data_key}, max_steps_per_epoch=max_steps or None)
    head, history = fit_or_load(head, EMDLoss(r=2, reduction="sample"), loaders["train"], loaders["val"], cfg)
    metrics, predictions = evaluate(head, loaders["test"], return_predictions=True)
    return head, history, metrics, predictions


@dataclass
class Stages:
    """Everything notebooks 3-4 reuse from stages 1-2: models, features, embeddings, critiques."""

    clip: AestheticCLIP
    features: torch.Tensor
    embeddings: torch.Tensor
    experts: CritiqueExperts
    tokenizer: object
    critiques: pd.DataFrame
    critique_texts: list[list[str]]
    generated: torch.Tensor  # (N, 4, E) embeddings of the generated critiques (experts saw the training images)
    captions: pd.DataFrame  # the experts' training captions (expert_captions)
    vlap_key: str  # the VLAP run's config_hash


def load_stages(cfg, catalogue: pd.DataFrame, run_dir: str | os.PathLike, vlap_schedule: VLAPSchedule,
                train_image_tower: bool, expert_schedule: ExpertSchedule, zero_shot: bool) -> Stages:
    """Run (or load, when notebooks 1-2 already did) VLAP, the experts and the critique cache."""
    from iaa_lib.cgiaa.attributes import ATTRIBUTES

    clip, features, vlap_history = vlap_stage(cfg, catalogue, run_dir, vlap_schedule, train_image_tower)
    embeddings = image_embeddings(clip, features)
    sources = ("synthetic",) if (catalogue["source"] == "synthetic").any() else ("ava_sample",)
    captions = expert_captions(catalogue, attribute_splitter(zero_shot), ("train",), sources)
    experts, tokenizer, expert_history = experts_stage(cfg, embeddings, captions, run_dir, expert_schedule,
                                                       vlap_history["config_hash"])
    critiques = critiques_stage(experts, tokenizer, embeddings, cfg, run_dir, expert_history["config_hash"])
    texts = critique_matrix(critiques, ATTRIBUTES, len(catalogue))
    return Stages(clip, features, embeddings, experts, tokenizer, critiques, texts, critique_embeddings(clip, texts),
                  captions, vlap_history["config_hash"])


# ----------------------------------------------------------------------------------------------- protocols
CRITIQUE_PROTOCOLS = ("cross_fitted", "as_published")


def caption_folds(captions: pd.DataFrame, n_folds: int = 2, seed: int = 0) -> list[np.ndarray]:
    """The captioned images' image_index split into n_folds disjoint folds of (nearly) equal size, seeded."""
    images = np.array(sorted(set(captions["image_index"].tolist())))
    order = np.random.default_rng(seed).permutation(len(images))
    return [np.sort(images[order[k::n_folds]]) for k in range(n_folds)]


def critique_writers(n_images: int, folds: Sequence[np.ndarray]) -> np.ndarray:
    """Which fold's experts write each image's critiques (N,): a fold-k training image the next fold's
    ((k + 1) mod n_folds), every other image (val, test, uncaptioned) fold image_index mod n_folds, alternating."""
    writer = np.arange(n_images) % len(folds)
    for k, fold in enumerate(folds):
        writer[fold] = (k + 1) % len(folds)
    return writer


def cross_fitted_critiques(cfg, embeddings: torch.Tensor, captions: pd.DataFrame, run_dir: str | os.PathLike,
                           schedule: ExpertSchedule, vlap_key: str, n_folds: int = 2) -> pd.DataFrame:
    """Critiques written by experts that never saw the image: one expert set per fold of the captioned images
    (checkpoints run_dir/experts-fold<k>), each writing for the images critique_writers gives it. Each set runs
    the schedule's epochs over its fold (steps and warm-up / n_folds), so all folds together cost one training.
    Columns as generate_critiques plus writer (the fold whose experts wrote the row)."""
    folds = caption_folds(captions, n_folds, schedule.seed)
    schedule = replace(schedule, steps=max(1, schedule.steps // n_folds), warmup=max(1, schedule.warmup // n_folds))
    writer = critique_writers(len(embeddings), folds)
    parts = []
    for k, fold in enumerate(folds):
        experts, tokenizer, history = experts_stage(cfg, embeddings, captions[captions["image_index"].isin(fold)],
                                                    run_dir, schedule, vlap_key, name=f"experts-fold{k}")
        rows = np.flatnonzero(writer == k)
        written = critiques_stage(experts, tokenizer, embeddings[torch.from_numpy(rows)], cfg, run_dir,
                                  history["config_hash"])
        parts.append(written.assign(image_index=rows[written["image_index"].to_numpy()], writer=k))
        del experts  # one fold's expert set in memory at a time (a GPT-2-size decoder each in full)
    return pd.concat(parts, ignore_index=True).sort_values(["image_index", "attribute"], ignore_index=True)


def protocol_critiques(stages: Stages, cfg, run_dir: str | os.PathLike, schedule: ExpertSchedule,
                       protocol: str) -> tuple[list[list[str]], torch.Tensor]:
    """The generated critiques of every image under a protocol: texts [image][attribute] and embeddings (N, 4, E).

    "as_published": the experts trained on every training image write every image's critiques (so a training
    image's critiques come from experts that saw it); "cross_fitted": cross_fitted_critiques (two folds)."""
    from iaa_lib.cgiaa.attributes import ATTRIBUTES

    if protocol not in CRITIQUE_PROTOCOLS:
        raise ValueError(f"critique_protocol must be one of {CRITIQUE_PROTOCOLS}, got {protocol!r}")
    if protocol == "as_published":
        return stages.critique_texts, stages.generated
    critiques = cross_fitted_critiques(cfg, stages.embeddings, stages.captions, run_dir, schedule, stages.vlap_key)
    texts = critique_matrix(critiques, ATTRIBUTES, len(stages.embeddings))
    return texts, critique_embeddings(stages.clip, texts)
