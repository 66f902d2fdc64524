"""The admin API (FastAPI, mounted at ``/admin``), one module per resource: ``directory``
(tenants, applications, secrets, certificates), ``federation`` (federated credentials, roles,
assignments), ``trustfile`` (plan / apply / export), ``explain`` (the dry run), assembled by ``api``."""

from keyless.authority.http.admin.api import create_admin_api, graph_error

__all__ = ["create_admin_api", "graph_error"]
