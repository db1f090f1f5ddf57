"""The web console: Slipway's Studio, served by the control plane at ``/``.

A face like :mod:`slipway.api` and :mod:`slipway.cli`: pages call the capability services
and render HTML on the server (Jinja2, autoescaped); charts are SVG drawn here
(:mod:`slipway.console.charts`); a small script of our own (``static/console.js``) refreshes
live regions and sends actions. Signing in keeps an API token in an HttpOnly, SameSite=Strict
cookie; every state-changing request carries a CSRF token (:mod:`slipway.console.session`).
"""
