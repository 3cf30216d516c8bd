"""The controller's /docs works offline: every asset it loads is served by the controller."""

from __future__ import annotations

import re


def test_docs_load_swagger_ui_from_the_controller_not_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404
