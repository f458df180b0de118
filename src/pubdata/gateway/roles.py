"""The roles of the regulation (REQ-4), the scopes an API token may carry, and the caller holding them.

Roles say who a person is for the platform; scopes say what one token may be used for. They are
separate because a person hands a script a token for one job (say, an export) without handing it
everything the person may do.

Example:
    >>> Role.parse("审计员") is Role.AUDITOR
    True
    >>> Role.CONSUMER.label
    '公共数据使用单位'
    >>> Scope.parse("catalog:read").value
    'catalog:read'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pubdata.errors import PubdataError
from pubdata.messages import text
from pubdata.vocabulary import Labelled

if TYPE_CHECKING:  # the models import this module for `Role`
    from pubdata.db.models import Organisation, User


class Role(Labelled):
    """REQ-4: who a person is on the platform. A person may hold several roles."""

    COMPETENT_DEPARTMENT = "competent_department", "公共数据主管部门"
    PROVIDER = "provider", "公共数据提供单位"
    CONSUMER = "consumer", "公共数据使用单位"
    OPEN_DATA_USER = "open_data_user", "开放数据利用主体"
    SECURITY_OFFICER = "security_officer", "数据安全负责人"
    AUDITOR = "auditor", "审计员"
    PLATFORM_ADMIN = "platform_admin", "平台管理员"


class Scope(Labelled):
    """What an API token may be used for; the gateway checks the scope before the roles."""

    QUERY = "query", "查询"
    EXPORT = "export", "导出"
    CATALOG_READ = "catalog:read", "读取目录"
    AUDIT_READ = "audit:read", "读取审计日志"
    WORKFLOW = "workflow", "办理申请、异议与事件"
    ADMIN = "admin", "平台管理"


#: Scopes that only a holder of one of the given roles may put on a token.
SCOPE_NEEDS_ROLE: dict[Scope, frozenset[Role]] = {
    Scope.ADMIN: frozenset({Role.PLATFORM_ADMIN}),
    Scope.AUDIT_READ: frozenset({Role.AUDITOR, Role.SECURITY_OFFICER}),
}


class NotAuthorised(PubdataError):
    """The caller is known but holds neither the role nor the scope the action needs."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `token_id` is None for a password sign-in, which scopes do not limit."""

    user: User
    organisation: Organisation | None
    roles: frozenset[Role]
    scopes: frozenset[Scope]
    token_id: str | None = None

    def has_role(self, *roles: Role) -> bool:
        """Whether the caller holds any one of `roles`."""
        return not self.roles.isdisjoint(roles)

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, role: Role | None = None, scope: Scope | None = None) -> None:
        """Refuse with `NotAuthorised` unless the caller has `role` and the token carries `scope`."""
        if role is not None and not self.has_role(role):
            raise NotAuthorised(
                text(
                    "{login} does not hold the role {role} ({label})",
                    login=self.user.login,
                    role=role.value,
                    label=role.label,
                )
            )
        if scope is not None and not self.allows(scope):
            raise NotAuthorised(text("this token is not valid for {scope}", scope=scope.value))
