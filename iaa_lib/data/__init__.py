"""Data layer: label readers, robust image loading, transforms, splits, datasets, the embedded sample, synthetic data,
the data check of datasets in their original layouts and its manifests, the miniature AVA."""
from iaa_lib.data.check import CheckReport, check_dataset, format_report, labelled_from_manifest, read_manifest, write_manifest
from iaa_lib.data.datasets import AestheticDataset, split_loaders
from iaa_lib.data.images import ImageLoadError, content_hash, load_rgb
from iaa_lib.data.labels import (
    DIST_COLUMNS,
    VOTE_COLUMNS,
    add_binary_label,
    read_aadb,
    read_ava_votes,
    read_baid,
    read_ratings,
    read_tad66k,
    votes_to_frame,
)
from iaa_lib.data.mini_ava import MiniAva, build_mini_ava
from iaa_lib.data.sample import load_ava_sample, load_dpc_comments, load_sample_comments, sample_splits
from iaa_lib.data.splits import (
    SplitLeakError,
    apply_split,
    assert_disjoint,
    random_split,
    read_id_list,
    read_splits_csv,
    split_counts,
    split_from_id_lists,
    write_splits_csv,
)
from iaa_lib.data.synthetic import make_synthetic, measure_factors
from iaa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

__all__ = [
    "CheckReport", "check_dataset", "format_report", "labelled_from_manifest", "read_manifest", "write_manifest",
    "MiniAva", "build_mini_ava",
    "AestheticDataset", "split_loaders", "ImageLoadError", "content_hash", "load_rgb",
    "DIST_COLUMNS", "VOTE_COLUMNS", "add_binary_label", "read_aadb", "read_ava_votes", "read_baid",
    "read_ratings", "read_tad66k", "votes_to_frame",
    "load_ava_sample", "load_dpc_comments", "load_sample_comments", "sample_splits",
    "SplitLeakError", "apply_split", "assert_disjoint", "random_split", "read_id_list", "read_splits_csv",
    "split_counts", "split_from_id_lists", "write_splits_csv",
    "make_synthetic", "measure_factors",
    "IMAGENET_MEAN", "IMAGENET_STD", "eval_transform", "train_transform",
]
