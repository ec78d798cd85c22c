"""The data check: scan a dataset in its original layout once, report every problem, write a manifest chapters read.

``check_dataset(dataset, root)`` reads the label files (``iaa_lib.data.layouts``), looks for every image, hashes
(sha256) and decodes it, and returns a ``CheckResult``: a ``CheckReport`` (images found, missing, unreadable with
their file names, label rows that could not be read, duplicate ids, split sizes, train/test leaks by id and by
content hash) and the manifest, one row per label row with its status (ok / missing / unreadable / duplicate).
``write_manifest`` saves it as CSV plus a JSON summary beside it; ``read_manifest`` loads it back, so a 255k-image
folder is scanned once (a re-check re-reads only files whose size or modification time changed).
Nothing is dropped silently: a row a chapter does not get is a row the report lists.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from iaa_lib.data.images import ImageLoadError, content_hash, load_rgb
from iaa_lib.data.labels import VOTE_COLUMNS, votes_to_frame
from iaa_lib.data.layouts import AVA_TEST_LIST, DatasetRows, read_layout

VERIFY_MODES = ("decode", "header")  # decode: full decode with load_rgb; header: PIL open + verify (faster)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
STATUSES = ("ok", "missing", "unreadable", "duplicate")
SCAN_COLUMNS = ["status", "reason", "sha256", "bytes", "mtime_ns", "width", "height"]
MANIFEST_VERSION = 1


@dataclass
class CheckReport:
    """What the data check found; lists hold file names / ids, nothing is summarised away (see errors())."""

    dataset: str
    root: str
    image_dir: str
    label_files: dict[str, str]  # path -> sha256 of the file
    verify: str
    n_label_rows: int
    n_image_files: int  # image files present in image_dir
    n_found: int  # distinct labelled images whose file exists
    n_ok: int  # ... and decodes
    missing: list[str] = field(default_factory=list)  # file names of label rows without an image
    unreadable: list[list[str]] = field(default_factory=list)  # [file name, reason]
    bad_rows: list[list[str]] = field(default_factory=list)  # [file:line, reason]
    duplicate_ids: list[dict] = field(default_factory=list)  # {image_id, sources, identical}
    unlabelled_images: list[str] = field(default_factory=list)
    split_sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> {rows, ok}
    id_lists: dict[str, dict[str, int]] = field(default_factory=dict)  # AVA list -> {ids, labelled, ok}
    leaks_by_id: list[dict] = field(default_factory=list)  # {a, b, ids}
    leaks_by_hash: list[dict] = field(default_factory=list)  # {sha256, images: [[id, split], ...]}
    duplicate_images: list[dict] = field(default_factory=list)  # identical files inside one split
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    scanned: int = 0  # files hashed/decoded by this run
    reused: int = 0  # files taken unchanged from the previous manifest

    def error_counts(self) -> dict[str, int]:
        """Number of errors per kind (zero counts left out)."""
        counts = {
            "layout problems": len(self.problems),
            "unreadable label rows": len(self.bad_rows),
            "duplicate ids with different labels": sum(not d["identical"] for d in self.duplicate_ids),
            "label rows without an image": len(self.missing),
            "unreadable images": len(self.unreadable),
            "train/test leaks by id": sum(len(leak["ids"]) for leak in self.leaks_by_id),
            "train/test leaks by content hash": len(self.leaks_by_hash),
        }
        return {k: v for k, v in counts.items() if v}

    def warning_counts(self) -> dict[str, int]:
        """Number of warnings per kind (zero counts left out)."""
        counts = {
            "repeated identical label rows": sum(d["identical"] for d in self.duplicate_ids),
            "identical image files inside one split": len(self.duplicate_images),
            "image files without a label row": len(self.unlabelled_images),
            "list ids without a label row": sum(v["ids"] - v["labelled"] for v in self.id_lists.values()),
        }
        return {k: v for k, v in counts.items() if v}

    @property
    def ok(self) -> bool:
        """True when the check found no error."""
        return not self.error_counts()


@dataclass
class CheckResult:
    """A report and its manifest (one row per label row; columns image_id, split, file_name, status, reason,
    sha256, bytes, mtime_ns, width, height, source and the dataset's label columns)."""

    report: CheckReport
    manifest: pd.DataFrame


def _scan_file(path: Path, verify: str) -> dict:
    """Size, mtime, sha256 and decode status of one existing image file."""
    stat = path.stat()
    record = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": content_hash(path),
              "status": "ok", "reason": "", "width": 0, "height": 0}
    try:
        if verify == "decode":
            width, height = load_rgb(path).size
        else:
            with Image.open(path) as image:
                width, height = image.size
                image.verify()
        record.update(width=width, height=height)
    except ImageLoadError as error:
        record.update(status="unreadable", reason=error.reason)
    except Exception as error:  # PIL's verify raises assorted types on bad data
        record.update(status="unreadable", reason=f"{type(error).__name__}: {error}")
    return record


def _reusable(previous: pd.DataFrame | None, image_dir: Path, verify: str) -> dict[str, dict]:
    """file name -> scan record of a previous manifest of the same folder, scanned at least as thoroughly."""
    if previous is None or previous.attrs.get("image_dir") != str(image_dir):
        return {}
    if VERIFY_MODES.index(previous.attrs.get("verify", "header")) > VERIFY_MODES.index(verify):
        return {}
    scanned = previous[previous["status"].isin(("ok", "unreadable"))]
    return dict(zip(scanned["file_name"], scanned[SCAN_COLUMNS].to_dict("records")))


def scan_images(image_dir: Path, file_names: list[str], verify: str = "decode", workers: int | None = None,
                progress: bool = True, previous: pd.DataFrame | None = None) -> tuple[dict[str, dict], int]:
    """file name -> {status, reason, sha256, bytes, mtime_ns, width, height} for every name; (records, n scanned).

    Missing files get status "missing". Files whose size and mtime equal the previous manifest's keep its record.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    reuse = _reusable(previous, image_dir, verify)
    records, todo = {}, []
    for name in file_names:
        path = image_dir / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            records[name] = {"status": "missing", "reason": "file not found", "sha256": "", "bytes": 0,
                             "mtime_ns": 0, "width": 0, "height": 0}
            continue
        known = reuse.get(name)
        if known is not None and int(known["bytes"]) == stat.st_size and int(known["mtime_ns"]) == stat.st_mtime_ns:
            records[name] = known
        else:
            todo.append(name)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # hashing and PIL decoding release the GIL
        scans = pool.map(lambda n: _scan_file(image_dir / n, verify), todo)
        for name, record in tqdm(zip(todo, scans), total=len(todo), desc=f"checking {image_dir.name}/",
                                 unit="img", disable=not progress or not todo):
            records[name] = record
    return records, len(todo)


def _duplicate_ids(rows: pd.DataFrame, label_columns: list[str]) -> tuple[list[dict], pd.Series]:
    """Ids repeated inside one split ({image_id, sources, identical}) and the mask of rows after the first."""
    key = rows["split"] + "\0" + rows["image_id"]
    repeated = key.duplicated(keep="first")
    found = []
    involved = key.isin(key[repeated])
    for _, group in rows[involved].groupby(key[involved], sort=False):
        identical = len(group[label_columns + ["file_name"]].drop_duplicates()) == 1
        found.append({"image_id": group["image_id"].iloc[0], "sources": group["source"].tolist(),
                      "identical": bool(identical)})
    return found, repeated


def _leaks_by_id(layout: DatasetRows) -> list[dict]:
    """Ids shared by two splits, and (AVA) ids of the official test list that a *train* list also holds."""
    members = {s: set(g["image_id"]) for s, g in layout.rows.groupby("split")}
    leaks = [{"a": a, "b": b, "ids": sorted(members[a] & members[b])}
             for a, b in combinations(sorted(members), 2) if members[a] & members[b]]
    test = set(layout.id_lists.get(AVA_TEST_LIST, []))
    for name, ids in layout.id_lists.items():
        shared = sorted(test & set(ids)) if "train" in name else []
        if shared:
            leaks.append({"a": name, "b": AVA_TEST_LIST, "ids": shared})
    return leaks


def _hash_groups(manifest: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Readable files with identical bytes under different ids: (across splits = leaks, inside one split)."""
    readable = manifest[(manifest["status"] == "ok") & (manifest["sha256"] != "")]
    leaks, inside = [], []
    for digest, group in readable.groupby("sha256"):
        if group["image_id"].nunique() < 2:
            continue
        entry = {"sha256": digest, "images": group[["image_id", "split"]].values.tolist()}
        (leaks if group["split"].nunique() > 1 else inside).append(entry)
    return leaks, inside


def _image_files(image_dir: Path) -> set[str]:
    """Names of the image files directly inside image_dir."""
    with os.scandir(image_dir) as entries:
        return {e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)}


def _list_coverage(layout: DatasetRows, manifest: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per id list: ids listed, ids with a label row, ids with a readable image."""
    labelled = set(layout.rows["image_id"])
    ok = set(manifest.loc[manifest["status"] == "ok", "image_id"])
    return {name: {"ids": len(set(ids)), "labelled": len(set(ids) & labelled), "ok": len(set(ids) & ok)}
            for name, ids in layout.id_lists.items()}


def check_dataset(dataset: str, root: str | os.PathLike, *, verify: str = "decode", workers: int | None = None,
                  progress: bool = True, previous: pd.DataFrame | None = None) -> CheckResult:
    """Check `dataset` ("ava", "tad66k", "baid", "aadb") laid out as its authors distribute it under `root`.

    previous: a manifest from read_manifest(...).frame of the same folder; unchanged files are not re-read.
    """
    layout = read_layout(dataset, root)
    rows = layout.rows.reset_index(drop=True)
    duplicates, repeated = _duplicate_ids(rows, layout.label_columns)
    first = rows[~repeated]
    records, scanned = scan_images(layout.image_dir, sorted(set(first["file_name"])), verify, workers, progress,
                                   previous)
    scan = pd.DataFrame([records[name] for name in rows["file_name"]], columns=SCAN_COLUMNS)
    manifest = pd.concat([rows[["image_id", "split", "file_name"]], scan, rows.drop(columns=["image_id", "split",
                          "file_name"])], axis=1)
    manifest.loc[repeated.to_numpy(), ["status", "reason"]] = ["duplicate", "repeats an earlier row of this split"]
    manifest.attrs.update(image_dir=str(layout.image_dir), verify=verify, dataset=dataset)

    kept = manifest[~repeated.to_numpy()].drop_duplicates("file_name")
    leaks_by_hash, duplicate_images = _hash_groups(manifest)
    present = _image_files(layout.image_dir)
    report = CheckReport(
        dataset=dataset, root=str(layout.root), image_dir=str(layout.image_dir),
        label_files={str(p): content_hash(p) for p in layout.label_files}, verify=verify,
        n_label_rows=len(rows) + len(layout.bad_rows), n_image_files=len(present),
        n_found=int((kept["status"] != "missing").sum()), n_ok=int((kept["status"] == "ok").sum()),
        missing=sorted(kept.loc[kept["status"] == "missing", "file_name"]),
        unreadable=sorted(kept.loc[kept["status"] == "unreadable", ["file_name", "reason"]].values.tolist()),
        bad_rows=[[p.source, p.reason] for p in layout.bad_rows], duplicate_ids=duplicates,
        unlabelled_images=sorted(present - set(rows["file_name"])),
        split_sizes={s: {"rows": int(len(g)), "ok": int((g["status"] == "ok").sum())}
                     for s, g in manifest[~repeated.to_numpy()].groupby("split")},
        id_lists=_list_coverage(layout, manifest), leaks_by_id=_leaks_by_id(layout), leaks_by_hash=leaks_by_hash,
        duplicate_images=duplicate_images, notes=list(layout.notes), problems=list(layout.problems),
        scanned=scanned, reused=len(kept) - int((kept["status"] == "missing").sum()) - scanned,
    )
    return CheckResult(report, manifest)


def _listing(items: list, limit: int) -> list[str]:
    """Indented report lines for up to `limit` items, with a count of the rest."""
    lines = [f"    {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"    ... and {len(items) - limit} more (all of them are in the manifest's JSON summary)")
    return lines


def format_report(report: CheckReport, limit: int = 10) -> str:
    """The report as text: counts, split sizes, then every error and warning kind with up to `limit` examples."""
    lines = [f"data check of {report.dataset} at {report.root}",
             f"  images in {report.image_dir} ({report.n_image_files} image files), verify={report.verify}; "
             f"scanned {report.scanned}, reused {report.reused} from the previous manifest",
             *(f"  labels: {path}" for path in report.label_files),
             f"  label rows: {report.n_label_rows}; images found {report.n_found}, readable {report.n_ok}, "
             f"missing {len(report.missing)}, unreadable {len(report.unreadable)}",
             "  splits: " + ", ".join(f"{s} {v['ok']} readable of {v['rows']} rows" for s, v in report.split_sizes.items())]
    lines += [f"  list {name}: {v['ids']} ids, {v['labelled']} with a label row, {v['ok']} with a readable image"
              for name, v in report.id_lists.items()]
    lines += [f"  note: {note}" for note in report.notes]
    details = {
        "layout problems": report.problems,
        "unreadable label rows": [f"{s}: {r}" for s, r in report.bad_rows],
        "duplicate ids with different labels": [f"{d['image_id']} at {', '.join(d['sources'])}"
                                                for d in report.duplicate_ids if not d["identical"]],
        "label rows without an image": report.missing,
        "unreadable images": [f"{n}: {r}" for n, r in report.unreadable],
        "train/test leaks by id": [f"{leak['a']} and {leak['b']} share {', '.join(leak['ids'])}"
                                   for leak in report.leaks_by_id],
        "train/test leaks by content hash": [f"sha256 {g['sha256'][:12]}: " + ", ".join(f"{i} ({s})" for i, s in g["images"])
                                             for g in report.leaks_by_hash],
        "repeated identical label rows": [f"{d['image_id']} at {', '.join(d['sources'])}"
                                          for d in report.duplicate_ids if d["identical"]],
        "identical image files inside one split": [", ".join(f"{i} ({s})" for i, s in g["images"])
                                                   for g in report.duplicate_images],
        "image files without a label row": report.unlabelled_images,
        "list ids without a label row": [f"{name}: {v['ids'] - v['labelled']}" for name, v in report.id_lists.items()
                                         if v["ids"] > v["labelled"]],
    }
    for heading, counts in (("ERROR", report.error_counts()), ("warning", report.warning_counts())):
        for kind, count in counts.items():
            lines.append(f"  {heading}: {count} {kind}")
            lines += _listing(details[kind], limit)
    lines.append("  result: " + ("no errors" if report.ok else f"{sum(report.error_counts().values())} error(s)"))
    return "\n".join(lines)


def summary_path(manifest_path: str | os.PathLike) -> Path:
    """The JSON summary written beside a manifest CSV (same name, .json)."""
    return Path(manifest_path).with_suffix(".json")


def write_manifest(result: CheckResult, path: str | os.PathLike) -> Path:
    """Write the manifest CSV at path and the report (with the folder and verify level) as JSON beside it."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    result.manifest.to_csv(path, index=False)
    summary = {"manifest_version": MANIFEST_VERSION, "manifest": path.name, "manifest_sha256": content_hash(path),
               **asdict(result.report)}
    summary_path(path).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return path


@dataclass
class Manifest:
    """A written manifest: every row (``frame``) and the report it came with (``summary``)."""

    frame: pd.DataFrame
    summary: dict
    image_dir: Path

    def splits(self) -> dict[str, list[str]]:
        """{split: ids of its readable images} in manifest order."""
        ok = self.frame[self.frame["status"] == "ok"]
        return {name: group["image_id"].tolist() for name, group in ok.groupby("split", sort=False)}

    def labels(self) -> pd.DataFrame:
        """Label frame of the readable images with an absolute `path` (AVA: mos, dist_1..10, std, n_votes, tags)."""
        ok = self.frame[self.frame["status"] == "ok"].reset_index(drop=True)
        if self.summary["dataset"] == "ava":
            frame = votes_to_frame(ok[["image_id", *VOTE_COLUMNS, "semantic_tag_1", "semantic_tag_2", "challenge_id"]],
                                   source="manifest")
        else:
            extra = [c for c in ok.columns if c not in {"image_id", "split", "file_name", "source", "score", *SCAN_COLUMNS}]
            frame = pd.concat([pd.DataFrame({"image_id": ok["image_id"], "mos": ok["score"].astype(float)}), ok[extra]],
                              axis=1)
        frame["split"] = ok["split"].to_numpy()
        frame["path"] = [str(self.image_dir / name) for name in ok["file_name"]]
        return frame


def read_manifest_summary(path: str | os.PathLike) -> dict:
    """The JSON report written beside a manifest (dataset, folder, counts); FileNotFoundError naming the fix."""
    summary_file = summary_path(Path(path).expanduser())
    if not summary_file.is_file():
        raise FileNotFoundError(f"manifest summary {summary_file} not found; write the manifest with "
                                f"`python -m iaa_lib data check --dataset NAME --root DIR --manifest {path}`")
    return json.loads(summary_file.read_text(encoding="utf-8"))


def read_manifest(path: str | os.PathLike, image_dir: str | os.PathLike | None = None) -> Manifest:
    """A manifest written by write_manifest; ValueError when the CSV or a label file changed since the check.

    image_dir: where the images are now, when the folder moved since the check (default: the checked folder).
    """
    path = Path(path).expanduser()
    summary_file = summary_path(path)
    for needed in (path, summary_file):
        if not needed.is_file():
            raise FileNotFoundError(f"manifest file {needed} not found; write it with "
                                    "`python -m iaa_lib data check --dataset NAME --root DIR --manifest "
                                    f"{path}`")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if content_hash(path) != summary.get("manifest_sha256"):
        raise ValueError(f"{path} differs from the manifest the data check wrote (sha256 in {summary_file}); re-run "
                         "the data check instead of editing it")
    for label_file, digest in summary["label_files"].items():
        if Path(label_file).is_file() and content_hash(label_file) != digest:
            raise ValueError(f"label file {label_file} changed since the data check wrote {path}; re-run the check")
    frame = pd.read_csv(path, dtype={"image_id": str, "split": str, "file_name": str, "sha256": str, "reason": str},
                        keep_default_na=False)
    folder = Path(image_dir).expanduser() if image_dir is not None else Path(summary["image_dir"])
    frame.attrs.update(image_dir=str(folder), verify=summary["verify"], dataset=summary["dataset"])
    return Manifest(frame, summary, folder)


def labelled_from_manifest(path: str | os.PathLike, image_dir: str | os.PathLike | None = None
                           ) -> tuple[pd.DataFrame, None, dict[str, list[str]]]:
    """(label frame with paths, None, splits) of a checked dataset, the shape iaa_lib.data.labelled_sets returns."""
    manifest = read_manifest(path, image_dir)
    return manifest.labels(), None, manifest.splits()

