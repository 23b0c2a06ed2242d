"""Annotator quality: agreement statistics, Dawid–Skene, position bias (pure numpy functions)."""

from prefloop.annotators.aggregate import AGGREGATIONS, aggregate_labels
from prefloop.annotators.agreement import (
    agreement_report,
    cohen_kappa,
    cohen_kappa_matrix,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    leave_one_out_agreement,
    percent_agreement,
    vote_counts,
)
from prefloop.annotators.bias import binomial_test, position_bias
from prefloop.annotators.dawid_skene import CLASSES, DawidSkeneResult, dawid_skene, majority_vote
from prefloop.annotators.report import (
    Annotation,
    LabelMatrix,
    QualityThresholds,
    annotator_report,
    flagged_annotators,
    label_matrix,
    median_seconds,
)

__all__ = [
    "AGGREGATIONS",
    "CLASSES",
    "Annotation",
    "DawidSkeneResult",
    "LabelMatrix",
    "QualityThresholds",
    "aggregate_labels",
    "agreement_report",
    "annotator_report",
    "binomial_test",
    "cohen_kappa",
    "cohen_kappa_matrix",
    "dawid_skene",
    "flagged_annotators",
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "label_matrix",
    "leave_one_out_agreement",
    "majority_vote",
    "median_seconds",
    "percent_agreement",
    "position_bias",
    "vote_counts",
]
