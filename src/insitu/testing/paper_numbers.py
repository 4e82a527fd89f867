"""The paper's Table S5 as a test checks a campaign summary against it."""

from __future__ import annotations

__all__ = ["PAPER", "assert_the_papers_numbers"]

#: anneal C -> (sigma at 30 C in S/cm, Ea in eV), Table S5 of the paper (reference/science.md).
PAPER = {650.0: (5.59e-9, 0.360), 750.0: (2.51e-6, 0.343)}


def assert_the_papers_numbers(summary) -> None:
    """Four films; sigma(30 C) within 15 % and Ea within 0.02 eV of the paper for 650 and 750 C,
    two cycles fitted apart, the paper's ordering, and 0.6-0.78 eV for the 500 and 600 C films.

    Parameters
    ----------
    summary : insitu.analysis.campaign.CampaignSummary
        What ``summarize`` read from the catalog.
    """
    by_anneal = {s.anneal_temperature_C: s for s in summary.samples}
    assert sorted(by_anneal) == [500.0, 600.0, 650.0, 750.0], sorted(by_anneal)
    for anneal_C, (sigma_30, activation) in PAPER.items():
        sample = by_anneal[anneal_C]
        assert abs(sample.Ea_eV - activation) <= 0.02, (anneal_C, sample.Ea_eV, activation)
        assert abs(sample.sigma_30C / sigma_30 - 1.0) <= 0.15, (anneal_C, sample.sigma_30C)
        assert len(sample.Ea_per_cycle()) == 2  # two heating/cooling cycles, fitted apart
    sigmas = [by_anneal[t].sigma_30C for t in (500.0, 600.0, 650.0, 750.0)]
    assert sigmas == sorted(sigmas), sigmas  # the paper's ordering of all four
    assert 0.6 <= by_anneal[500.0].Ea_eV <= 0.78 and 0.6 <= by_anneal[600.0].Ea_eV <= 0.78
