"""Rule sets and their versions: create, edit drafts, publish (atomically replacing the live version),
unpublish, archive; and the live rules of a workspace. Never commits."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from patronage.earning.models import RuleSet, RuleSetVersion, VersionStatus
from patronage.earning.repository import RuleSetRepository
from patronage.earning.rules_format import RuleSetDoc, merge, parse_document
from patronage.kit.audit import audit
from patronage.kit.clock import utcnow
from patronage.kit.errors import Conflict, NotFound

_LIVE_CACHE = "earning.live"
# Published versions never change: their parsed documents are shared by every session of the process.
_PARSED: dict[tuple[int, str], RuleSetDoc] = {}
_PARSED_MAX = 1024


class VersionNotDraft(Conflict):
    code = "rule_set_version_not_draft"
    title = "Only a draft version can change"


def _forget(session: Session, workspace_id: int) -> None:
    session.info.get(_LIVE_CACHE, {}).pop(workspace_id, None)


def get_rule_set(session: Session, workspace_id: int, rule_set_id: int, *, for_update: bool = False) -> RuleSet:
    return RuleSetRepository(session, workspace_id).get_or_404(rule_set_id, for_update=for_update)


def get_version(session: Session, workspace_id: int, rule_set_id: int, version: int,
                *, for_update: bool = False) -> RuleSetVersion:
    get_rule_set(session, workspace_id, rule_set_id)
    found = RuleSetRepository(session, workspace_id).version(rule_set_id, version, for_update=for_update)
    if found is None:
        raise NotFound(f"rule set {rule_set_id} has no version {version}")
    return found


def list_rule_sets(session: Session, workspace_id: int, *, include_archived: bool = False) -> list[RuleSet]:
    return RuleSetRepository(session, workspace_id).all(include_archived=include_archived)


def create_rule_set(
    session: Session, workspace_id: int, *, name: str, description: str, document: dict[str, Any] | None,
    actor: str,
) -> RuleSet:
    repo = RuleSetRepository(session, workspace_id)
    if repo.by_name(name) is not None:
        raise Conflict(f"a rule set named {name!r} exists", reason="name_taken")
    rule_set = repo.new(name=name, description=description, published_version=None, archived=False)
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.rule_set_created",
          subject_type="earning_rule_set", subject_id=rule_set.id, data={"name": name})
    if document is not None:
        create_version(session, workspace_id, rule_set.id, document=document, notes="", actor=actor)
    return rule_set


def update_rule_set(session: Session, workspace_id: int, rule_set_id: int, changes: dict[str, Any],
                    *, actor: str) -> RuleSet:
    rule_set = get_rule_set(session, workspace_id, rule_set_id, for_update=True)
    renamed = "name" in changes and changes["name"] != rule_set.name
    if renamed and RuleSetRepository(session, workspace_id).by_name(changes["name"]) is not None:
        raise Conflict(f"a rule set named {changes['name']!r} exists", reason="name_taken")
    for key, value in changes.items():
        setattr(rule_set, key, value)
    if changes.get("archived"):
        _unpublish(session, workspace_id, rule_set)
    session.flush()
    _forget(session, workspace_id)
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.rule_set_updated",
          subject_type="earning_rule_set", subject_id=rule_set.id, data=changes)
    return rule_set


def create_version(session: Session, workspace_id: int, rule_set_id: int, *, document: dict[str, Any], notes: str,
                   actor: str) -> RuleSetVersion:
    """A new draft (the document is validated now: a draft is always publishable)."""
    rule_set = get_rule_set(session, workspace_id, rule_set_id, for_update=True)  # serialises numbering
    parse_document(document, prefix=str(rule_set.id))
    repo = RuleSetRepository(session, workspace_id)
    version = repo.add_version(RuleSetVersion(
        workspace_id=workspace_id, rule_set_id=rule_set.id, version=repo.next_version(rule_set.id),
        status=VersionStatus.DRAFT, document=document, digest=digest(document), notes=notes, created_by=actor,
    ))
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.version_created",
          subject_type="earning_rule_set", subject_id=rule_set.id, data={"version": version.version})
    return version


def update_version(session: Session, workspace_id: int, rule_set_id: int, version: int, *,
                   document: dict[str, Any] | None, notes: str | None, actor: str) -> RuleSetVersion:
    found = get_version(session, workspace_id, rule_set_id, version, for_update=True)
    if found.status != VersionStatus.DRAFT:
        raise VersionNotDraft(f"version {version} is {found.status}; create a new version instead")
    if document is not None:
        parse_document(document, prefix=str(rule_set_id))
        found.document, found.digest = document, digest(document)
    if notes is not None:
        found.notes = notes
    session.flush()
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.version_updated",
          subject_type="earning_rule_set", subject_id=rule_set_id, data={"version": version})
    return found


def publish(session: Session, workspace_id: int, rule_set_id: int, version: int, *, actor: str) -> RuleSetVersion:
    """Make ``version`` the live one; the previously live version is retired. A retired version may be
    published again (a rollback)."""
    rule_set = get_rule_set(session, workspace_id, rule_set_id, for_update=True)
    if rule_set.archived:
        raise Conflict("the rule set is archived; unarchive it first", reason="archived")
    target = get_version(session, workspace_id, rule_set_id, version, for_update=True)
    if target.status == VersionStatus.PUBLISHED:
        return target
    parse_document(target.document, prefix=str(rule_set_id))
    _unpublish(session, workspace_id, rule_set)
    now = utcnow()
    target.status, target.published_at, target.published_by = VersionStatus.PUBLISHED, now, actor
    rule_set.published_version = target.version
    session.flush()
    _forget(session, workspace_id)
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.version_published",
          subject_type="earning_rule_set", subject_id=rule_set_id, data={"version": version})
    return target


def unpublish(session: Session, workspace_id: int, rule_set_id: int, *, actor: str) -> RuleSet:
    rule_set = get_rule_set(session, workspace_id, rule_set_id, for_update=True)
    _unpublish(session, workspace_id, rule_set)
    session.flush()
    _forget(session, workspace_id)
    audit(session, workspace_id=workspace_id, actor=actor, action="earning.rule_set_unpublished",
          subject_type="earning_rule_set", subject_id=rule_set_id, data={})
    return rule_set


def _unpublish(session: Session, workspace_id: int, rule_set: RuleSet) -> None:
    if rule_set.published_version is None:
        return
    live = RuleSetRepository(session, workspace_id).version(rule_set.id, rule_set.published_version, for_update=True)
    if live is not None:
        live.status = VersionStatus.RETIRED
    rule_set.published_version = None


# ---- the live rules --------------------------------------------------------------------------------------
def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _published_doc(session: Session, workspace_id: int, rule_set_id: int, number: int, sha: str) -> RuleSetDoc:
    """Parsed once per process: the key is the rule set (its id prefixes rule uids) and the content."""
    key = (rule_set_id, sha)
    doc = _PARSED.get(key) if sha else None
    if doc is None:
        version = get_version(session, workspace_id, rule_set_id, number)
        doc = parse_document(version.document, prefix=str(rule_set_id))
        if sha and sha == digest(version.document):
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = doc
    return doc


def live_rules(
    session: Session, workspace_id: int, *, replace: tuple[int, int] | None = None
) -> tuple[RuleSetDoc, list[str]]:
    """Every published rule set merged into one document, and their "set:version" labels.

    ``replace=(rule_set_id, version)`` evaluates that version in place of its set's live one (previews
    and backtests of a draft)."""
    cache: dict[int, tuple[RuleSetDoc, list[str]]] = session.info.setdefault(_LIVE_CACHE, {})
    if replace is None and workspace_id in cache:
        return cache[workspace_id]
    docs: list[RuleSetDoc] = []
    labels: list[str] = []
    for rule_set_id, number, sha in RuleSetRepository(session, workspace_id).published():
        if replace is not None and rule_set_id == replace[0]:
            continue
        docs.append(_published_doc(session, workspace_id, rule_set_id, number, sha))
        labels.append(f"{rule_set_id}:{number}")
    if replace is not None:
        version = get_version(session, workspace_id, replace[0], replace[1])
        docs.insert(0, parse_document(version.document, prefix=str(replace[0])))
        labels.insert(0, f"{replace[0]}:{replace[1]}")
    result = (merge(*docs), labels)
    if replace is None:
        cache[workspace_id] = result
    return result
