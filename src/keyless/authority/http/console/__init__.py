"""The admin console, served by the authority at ``/console``: sign in with the admin key, see the
directory, the trust graph, the refusals with their explanation, and explain a token, in a browser.

Server-rendered pages (Jinja2, autoescaped) and SVG pictures drawn on the server: no script on the
console's pages, every asset served from the package, a strict Content-Security-Policy. See
docs/console.md.
"""
