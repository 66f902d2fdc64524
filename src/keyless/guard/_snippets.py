"""Configuration snippets for the data planes in front of ``keyless guard authz``
(``keyless guard authz --print-config nginx|caddy|traefik|envoy``).

Each snippet asks ``/_keyless/authz`` (``/_keyless/envoy`` for Envoy), copies the ``X-Keyless-*``
identity headers of an allowed answer onto the request, and makes sure a client's own
``X-Keyless-*`` headers never reach the service. The nginx and Caddy ones are run by the test suite
against real nginx and Caddy (``tests/guard/test_forward_auth_dataplanes.py``).
"""

from __future__ import annotations

from keyless.guard._authz import AUTHZ_PATH, ENVOY_PREFIX, NGINX_AUTHZ_PATH
from keyless.guard._request_safety import IDENTITY_HEADERS

__all__ = ["KINDS", "snippet"]

KINDS = ("nginx", "caddy", "traefik", "envoy")


def _var(header: str) -> str:
    return "$keyless_" + header.removeprefix("X-Keyless-").lower().replace("-", "_")


def _nginx(authz: str, upstream: str, listen: int) -> str:
    sets = "\n".join(
        f"        auth_request_set {_var(h)} $upstream_http_{h.lower().replace('-', '_')};"
        for h in IDENTITY_HEADERS
    )
    passes = "\n".join(f"        proxy_set_header {h} {_var(h)};" for h in IDENTITY_HEADERS)
    return f"""# nginx: keyless guard authz at {authz} decides, nginx proxies to {upstream}.
server {{
    listen {listen};

    location = /_keyless_authz {{
        internal;
        proxy_pass http://{authz}{NGINX_AUTHZ_PATH};
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
    }}

    location / {{
        auth_request /_keyless_authz;
{sets}
        # The identity comes from keyless only: each header is set from its answer, which replaces
        # whatever the client sent (an empty value, on an anonymous path, removes it).
{passes}
        # The token was for this check: keep it from the service (remove these lines if it needs it).
        proxy_set_header Authorization "";
        proxy_set_header X-Serverless-Authorization "";
        # auth_request turns any answer but 2xx, 401 and 403 into a 500: keyless answers 503 when
        # an issuer's keys cannot be had, so say so to the client.
        error_page 500 = @keyless_unavailable;
        proxy_pass http://{upstream};
    }}

    location @keyless_unavailable {{
        add_header Retry-After 30 always;
        return 503;
    }}
}}
"""


def _caddy(authz: str, upstream: str, listen: int) -> str:
    names = " ".join(IDENTITY_HEADERS)
    removals = "\n".join(f"        request_header -{h}" for h in IDENTITY_HEADERS)
    return f"""# Caddy (Caddyfile): keyless guard authz at {authz} decides, Caddy proxies to {upstream}.
:{listen} {{
    # route: in the order written (Caddy's default order runs forward_auth before request_header).
    route {{
        # A client's own identity headers never reach the service.
{removals}
        forward_auth {authz} {{
            uri {AUTHZ_PATH}
            copy_headers {names}
        }}
        # The token was for this check: keep it from the service (remove these lines if it needs it).
        request_header -Authorization
        request_header -X-Serverless-Authorization
        reverse_proxy {upstream}
    }}
}}
"""


def _traefik(authz: str, upstream: str, listen: int) -> str:
    names = "\n".join(f"          - {h}" for h in IDENTITY_HEADERS)
    return f"""# Traefik (dynamic configuration, file provider): the middleware, on a router to {upstream}.
# Traefik deletes the authResponseHeaders a client sent and sets them from keyless's answer.
http:
  middlewares:
    keyless:
      forwardAuth:
        address: "http://{authz}{AUTHZ_PATH}"
        trustForwardHeader: false
        authResponseHeaders:
{names}
  routers:
    service:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]   # an entry point listening on :{listen}
      middlewares: [keyless]
      service: service
  services:
    service:
      loadBalancer:
        servers:
          - url: "http://{upstream}"
"""


def _envoy(authz: str, upstream: str, listen: int) -> str:
    host, _, port = authz.rpartition(":")
    return f"""# Envoy: the ext_authz HTTP filter asks keyless guard authz at {authz}.
# keyless answers every X-Keyless-* header (empty when the token lacks the claim), so those
# headers overwrite whatever the client sent.
http_filters:
  - name: envoy.filters.http.ext_authz
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
      transport_api_version: V3
      failure_mode_allow: false
      http_service:
        server_uri: {{uri: "http://{authz}", cluster: keyless_authz, timeout: 2s}}
        path_prefix: {ENVOY_PREFIX}
        authorization_request:
          allowed_headers:
            patterns: [{{exact: authorization}}, {{exact: x-serverless-authorization}}]
        authorization_response:
          allowed_upstream_headers:
            patterns: [{{prefix: x-keyless-}}]
          allowed_client_headers:
            patterns: [{{exact: www-authenticate}}, {{exact: retry-after}}]
  - name: envoy.filters.http.router
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
clusters:
  - name: keyless_authz
    type: STRICT_DNS
    load_assignment:
      cluster_name: keyless_authz
      endpoints:
        - lb_endpoints:
            - endpoint: {{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}
# (the listener on :{listen} routes to the service at {upstream})
"""


def snippet(kind: str, *, authz: str, upstream: str, listen: int = 8080) -> str:
    """The configuration for ``kind`` (one of :data:`KINDS`): ``authz`` and ``upstream`` are
    ``host:port`` addresses, ``listen`` the data plane's port."""
    makers = {"nginx": _nginx, "caddy": _caddy, "traefik": _traefik, "envoy": _envoy}
    if kind not in makers:
        raise ValueError(f"no snippet for {kind!r}; one of {', '.join(KINDS)}")
    return makers[kind](authz, upstream, listen)
