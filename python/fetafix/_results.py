"""The records in localize's and repair's results as dataclasses. Their fields are the keys of the
CLI's JSON (docs/localize-json.md, docs/repair.md), built from it, so both always say the same."""
from dataclasses import dataclass, fields


def _from_dict(cls, d):
    return cls(**{f.name: d.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Finding:
    """One difference localize found (an element of the JSON's "findings")."""
    id: str                 # stable: type and a hash of check, nodes and summary
    type: str               # "PP", "ID", "TSS", "WB", "LH", "CG"
    source_node: str
    target_node: str
    summary: str
    verdict: str            # "fault", "harmless", "equivalent", "note"
    is_fault: bool
    equivalence: str        # "divergent", "equivalent", "not_checked"
    layer_rank: int         # position in the layer order; -1 for input-level findings
    replay_rank: object     # int or None
    activation_rank: object  # int or None
    impact: dict
    evidence: dict          # the check's own record; evidence["check"] names the check

    @classmethod
    def from_dict(cls, d):
        return _from_dict(cls, d)


@dataclass(frozen=True)
class RepairStep:
    """One step the repair decided (an element of the repair log's "steps")."""
    round: int
    type: str               # "WB", "WB*" for a group, "JOINT", ...
    description: str
    source_node: str
    target_node: str
    kept: bool
    reason: str
    disagreeing_before: int
    disagreeing_after: int
    edits: int
    seconds: float
    screened_out: bool
    target_nodes: list
    finding_summaries: list
    reverts: bool
    finding_ids: list       # the Finding.id values the step was made for

    @classmethod
    def from_dict(cls, d):
        return _from_dict(cls, d)
