"""The suite can fail: each deliberately broken variant of the fake flow is caught by the checks
written for its kind of bug (it may pass the others: a check proves one promise, not all)."""

from __future__ import annotations

import pytest

from .checks import (
    check_a_failed_page_read_leaves_the_checkpoint_on_what_was_written,
    check_a_response_lost_after_commit_never_doubles_a_row,
    check_a_run_cut_by_its_call_budget_resumes_exactly,
    check_a_worker_killed_mid_page_resumes_without_loss_or_doubles,
    check_repeated_runs_under_faults_converge_to_the_source,
)
from .fake import BROKEN_FLOWS
from .harnesses import fake_harness

pytestmark = pytest.mark.django_db

CAUGHT_BY = {
    "checkpoint stamped before commit": (
        check_a_run_cut_by_its_call_budget_resumes_exactly,
        check_a_failed_page_read_leaves_the_checkpoint_on_what_was_written,
    ),
    "no lookup after a lost answer": (
        check_a_response_lost_after_commit_never_doubles_a_row,
        check_a_worker_killed_mid_page_resumes_without_loss_or_doubles,
        check_repeated_runs_under_faults_converge_to_the_source,
    ),
    "success reported for an unanswered write": (
        check_a_response_lost_after_commit_never_doubles_a_row,
        check_repeated_runs_under_faults_converge_to_the_source,
    ),
}


def test_every_broken_variant_is_expected_to_be_caught():
    assert set(CAUGHT_BY) == set(BROKEN_FLOWS)


@pytest.mark.parametrize(("variant", "check"), [
    pytest.param(variant, check, id=f"{variant}-{check.__name__.removeprefix('check_')}")
    for variant, checks in CAUGHT_BY.items() for check in checks
])
def test_a_broken_flow_fails_the_check_for_its_bug(variant, check, monkeypatch):
    with fake_harness(BROKEN_FLOWS[variant])(monkeypatch).running() as harness, pytest.raises(AssertionError):
        check(harness)
