"""Broken resource tables: Linux's remoteproc core (6.1 and 6.12, unmodified, in UML) and rproc give each the
same accept/refuse verdict, or the difference is recorded with its kernel source line
(remoteproc/conformance/linux/rsc_mutations.py; docs/linux-conformance.md, "Broken tables"). One boot per kernel
tries the whole corpus through sysfs; the C remote (host/uml_remote.c) serves the tables Linux accepts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remoteproc.conformance.linux import rsc_mutations as rm
from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module", params=KERNELS)
def corpus_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[rm.CorpusRun]:
    images: UmlImages = ensure_uml(kernel=request.param)
    with rm.boot_corpus(images, tmp_path_factory.mktemp("rsc-mutations")) as run:
        yield run


def test_the_kernel_went_through_the_corpus_cleanly(corpus_run: rm.CorpusRun) -> None:
    rm.check_console(corpus_run)


def test_linux_and_rproc_give_each_mutation_the_same_verdict(corpus_run: rm.CorpusRun) -> None:
    evidence = rm.check_mutations(corpus_run)
    assert f"{len(corpus_run.mutations)} mutations" in evidence


def test_the_good_table_runs_and_broken_ones_are_refused_for_their_reason(corpus_run: rm.CorpusRun) -> None:
    """The control: the good table boots and the remote's channel comes up; a refusal names the problem."""
    good = corpus_run.linux["good"]
    assert good.outcome == rm.ACCEPTED and good.channel, good.log
    ver = corpus_run.linux["ver-0"]
    assert ver.outcome == rm.REFUSED and "unsupported fw ver: 0" in ver.reason(), ver.log
    assert "Invalid argument" in ver.error


def test_another_boots_break_mode_leaves_the_comparison_alone(corpus_run: rm.CorpusRun) -> None:
    """The catalogue hands every scenario the run's break mode; one meant for another boot (here the sysfs
    boots' no-zero-fill) changes nothing here. Before, check_mutations raised ValueError for it, which judge does
    not catch (it turns AssertionError into a failed row): `--break no-zero-fill` without `--only` aborted the run."""
    from remoteproc.conformance.linux.remoteproc_peer import BREAKS

    assert "no-zero-fill" in BREAKS and "no-zero-fill" not in rm.BREAKS
    evidence = rm.check_mutations(corpus_run, "no-zero-fill")
    assert f"{len(corpus_run.mutations)} mutations" in evidence


def test_the_break_mode_makes_the_comparison_fail(corpus_run: rm.CorpusRun) -> None:
    """rproc's verdict on one mutation inverted: the comparison must name that mutation."""
    with pytest.raises(AssertionError, match=r"ver-0: Linux refused .* rproc accepts"):
        rm.check_mutations(corpus_run, "invert-rproc")
