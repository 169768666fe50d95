"""A job's work-flow (chain, group, chord) as a tree, for the job's admin page.

The links are in the rows: ``parent_id`` (the job, or the chord's group, that enqueued a job),
``group_id`` (the members of a group or chord header) and the ``Group`` row (its members in
order; for a chord, the body's signature and how many members finished). The tree is found by
walking up to the top, then down one level at a time; every step is one query on an indexed
column (``id``, ``parent_id``, ``group_id``), and the tree is capped at ``MAX_NODES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from djq import store
from djq.models import Group, Job
from djq.states import ALL_STATES, READY_STATES

MAX_NODES = 200
MAX_DEPTH = 50
FIELDS = ("id", "name", "state", "custom_state", "parent_id", "group_id", "created_at")


@dataclass
class Node:
    kind: str  # "job", "group" or "chord"
    id: str
    name: str = ""
    state: str = ""
    children: list[Node] = field(default_factory=list)
    current: bool = False
    done: int | None = None  # a group's finished members (chords count them)
    size: int | None = None
    role: str = ""  # "body" for a chord's body

    @property
    def css(self) -> str:
        return self.state if self.state in ALL_STATES else "CUSTOM"

    @property
    def is_job(self) -> bool:
        return self.kind == "job"


def _job_node(row: dict, current: str) -> Node:
    state = row["state"]
    if row["custom_state"] and state not in READY_STATES:  # a finished state wins
        state = row["custom_state"]
    return Node("job", str(row["id"]), row["name"], state, current=str(row["id"]) == current)


def tree(job: Job, using: str | None = None) -> Node | None:
    """The work-flow ``job`` is part of, from its top; None for a job on its own."""
    db = store.alias(using)
    row = {f: getattr(job, f) for f in FIELDS}
    top = _top(row, db)
    root = _job_node(top[2], str(job.id)) if top[0] == "job" else Node("group", top[1])
    _grow(root, db, str(job.id))
    return root if root.children else None


def _top(row: dict, db: str) -> tuple[str, str, dict]:
    """(kind, id, row) of the highest node above ``row``: follow group membership and parents."""
    node = ("job", str(row["id"]), row)
    for _ in range(MAX_DEPTH):
        parent = _parent(*node, db)
        if parent is None:
            return node
        node = parent
    return node


def _parent(kind: str, ref: str, row: dict, db: str) -> tuple[str, str, dict] | None:
    if kind == "job" and row.get("group_id"):
        return "group", str(row["group_id"]), {"parent_id": row["parent_id"]}
    parent_id = row.get("parent_id")
    if not parent_id:
        return None
    found = Job.objects.using(db).filter(id=parent_id).values(*FIELDS).first()
    if found is not None:
        return "job", str(parent_id), found
    # a chord body's parent is its chord: a group id, whose members carry the chord's parent
    member = Job.objects.using(db).filter(group_id=parent_id).values("parent_id").first()
    if member is None and not Group.objects.using(db).filter(id=parent_id).exists():
        return None
    return "group", str(parent_id), {"parent_id": member and member["parent_id"]}


def _grow(root: Node, db: str, current: str) -> None:
    """Attach children level by level: jobs by ``parent_id``, group members by ``group_id``."""
    jobs, groups = _frontier(root)
    seen, count = set(jobs), 1
    while (jobs or groups) and count < MAX_NODES:
        next_jobs: dict[str, Node] = {}
        next_groups: dict[str, Node] = {}
        count += _add_members(groups, db, current, seen, next_jobs)
        parents = {**jobs, **groups}
        kids = Job.objects.using(db).filter(parent_id__in=list(parents)).values(*FIELDS)
        for kid in kids.order_by("created_at")[:MAX_NODES]:
            kid_id, parent = str(kid["id"]), parents[str(kid["parent_id"])]
            gid = str(kid["group_id"]) if kid["group_id"] else None
            if kid_id in seen or (gid and gid in groups):
                continue
            if gid:  # a group or chord started by this parent: its members come next round
                if gid not in next_groups:
                    next_groups[gid] = Node("group", gid)
                    parent.children.append(next_groups[gid])
                continue
            seen.add(kid_id)
            node = _job_node(kid, current)
            node.role = "body" if parent.kind == "chord" else ""
            parent.children.append(node)
            next_jobs[kid_id] = node
            count += 1
        jobs, groups = next_jobs, next_groups


def _frontier(root: Node) -> tuple[dict[str, Node], dict[str, Node]]:
    if root.is_job:
        return {root.id: root}, {}
    return {}, {root.id: root}


def _add_members(groups: dict[str, Node], db: str, current: str, seen: set, next_jobs: dict) -> int:
    """Members of ``groups`` in their order, and each chord's body (by its frozen id)."""
    if not groups:
        return 0
    rows = {str(g.id): g for g in Group.objects.using(db).filter(id__in=list(groups))}
    members = Job.objects.using(db).filter(group_id__in=list(groups)).values(*FIELDS)
    by_group: dict[str, list[dict]] = {}
    for member in members.order_by("created_at")[:MAX_NODES]:
        by_group.setdefault(str(member["group_id"]), []).append(member)
    added = 0
    for gid, node in groups.items():
        group = rows.get(gid)
        order = {str(c): i for i, c in enumerate(group.children)} if group else {}
        listed = sorted(by_group.get(gid, []), key=lambda m: order.get(str(m["id"]), len(order)))
        if group is not None:
            node.kind = "chord" if group.body else "group"
            node.done, node.size = group.completed, group.size
        for member in listed:
            seen.add(str(member["id"]))
            child = _job_node(member, current)
            node.children.append(child)
            next_jobs[child.id] = child
            added += 1
        added += _add_body(node, group, db, current, seen, next_jobs)
    return added


def _add_body(
    node: Node, group: Group | None, db: str, current: str, seen: set, next_jobs: dict
) -> int:
    """A chord's body, when it exists and is not linked to the chord by ``parent_id``."""
    body_id = ((group.body or {}).get("options") or {}).get("task_id") if group else None
    if not body_id or str(body_id) in seen:
        return 0
    row = Job.objects.using(db).filter(id=body_id).values(*FIELDS).first()
    if row is None or (row["parent_id"] and str(row["parent_id"]) == node.id):
        return 0  # not enqueued yet, or found by parent_id with the chord's other children
    seen.add(str(body_id))
    child = _job_node(row, current)
    child.role = "body"
    node.children.append(child)
    next_jobs[child.id] = child
    return 1
