"""Conformance results and their three renderings: a table for people, JSON and JUnit XML for CI."""

from __future__ import annotations

import enum
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Result:
    scenario: str
    rule: str
    outcome: Outcome
    evidence: str
    seconds: float


@dataclass
class Report:
    peer: str
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.outcome is not Outcome.FAIL for r in self.results)

    def outcome_of(self, scenario: str) -> Outcome:
        for r in self.results:
            if r.scenario == scenario:
                return r.outcome
        raise KeyError(scenario)

    def table(self) -> str:
        width = max([len(r.scenario) for r in self.results] + [8])
        lines = [f"rpmsg conformance against {self.peer}", ""]
        for r in self.results:
            lines.append(f"{r.outcome.value.upper():<5} {r.scenario:<{width}}  {r.evidence}")
        counts = {o: sum(r.outcome is o for r in self.results) for o in Outcome}
        lines += [
            "",
            f"{counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, "
            f"{counts[Outcome.NOT_APPLICABLE]} not applicable",
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "peer": self.peer,
                "passed": self.passed,
                "results": [
                    {
                        "scenario": r.scenario,
                        "rule": r.rule,
                        "outcome": r.outcome.value,
                        "evidence": r.evidence,
                        "seconds": round(r.seconds, 4),
                    }
                    for r in self.results
                ],
            },
            indent=2,
        )

    def to_junit(self) -> str:
        suite = ET.Element(
            "testsuite",
            name=f"rproc conformance: {self.peer}",
            tests=str(len(self.results)),
            failures=str(sum(r.outcome is Outcome.FAIL for r in self.results)),
            skipped=str(sum(r.outcome is Outcome.NOT_APPLICABLE for r in self.results)),
            time=f"{sum(r.seconds for r in self.results):.3f}",
        )
        for r in self.results:
            case = ET.SubElement(suite, "testcase", classname="rpmsg", name=r.scenario, time=f"{r.seconds:.3f}")
            if r.outcome is Outcome.FAIL:
                ET.SubElement(case, "failure", message=r.evidence).text = r.rule
            elif r.outcome is Outcome.NOT_APPLICABLE:
                ET.SubElement(case, "skipped", message=r.evidence)
            ET.SubElement(case, "system-out").text = f"{r.rule}\n{r.evidence}"
        return ET.tostring(suite, encoding="unicode", xml_declaration=True)
