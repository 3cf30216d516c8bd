# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""The peer the benches compare with: nginx + ModSecurity v3 + OWASP CRS 3.3 (Debian's packages
nginx, libnginx-mod-http-modsecurity, modsecurity-crs), configured here on 127.0.0.1 only.

One nginx process serves three things from a private prefix directory:
  - the upstream application (a tiny static response that also accepts bodies) on UPSTREAM_PORT;
  - the WAF peer (ModSecurity on, CRS at paranoia 1, anomaly threshold 5, blocking) proxying to it on PEER_PORT;
  - nothing else: the netguard sidecar is started by the bench in front of the same upstream.

`ensure_packages()` installs the Debian packages when they are missing (needs root and apt).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

UPSTREAM_PORT = 18100
PEER_PORT = 18101
PACKAGES = ("nginx", "libnginx-mod-http-modsecurity", "modsecurity-crs", "wrk")
MODSEC_MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
CRS_SETUP = "/etc/modsecurity/crs/crs-setup.conf"
CRS_RULES = "/usr/share/modsecurity-crs/rules"

# The base ModSecurity settings of its recommended configuration that matter for detection: engine on,
# bodies read, XML and JSON body processors selected by Content-Type (rules 200000/200001).
MODSEC_BASE = """
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "(?:application(?:/soap\\+|/)|text/)xml" \\
  "id:'200000',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "application/json" \\
  "id:'200001',phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQBODY_ERROR "!@eq 0" \\
  "id:'200002', phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{{reqbody_error_msg}}',severity:2"
SecPcreMatchLimit 1000
SecPcreMatchLimitRecursion 1000
SecResponseBodyAccess Off
SecTmpDir {tmp}
SecDataDir {tmp}
SecAuditEngine RelevantOnly
SecAuditLogRelevantStatus "^(?:5|4(?!04))"
SecAuditLogParts ABIJDEFHZ
SecAuditLogType Serial
SecAuditLog {tmp}/modsec_audit.log
SecArgumentSeparator &
SecCookieFormat 0
SecStatusEngine Off
"""

NGINX_CONF = """
load_module {module};
worker_processes auto;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  client_max_body_size 20m;
  keepalive_requests 100000;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{upstream_port};
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
  server {{
    listen 127.0.0.1:{peer_port};
    modsecurity on;
    modsecurity_rules_file {prefix}/modsec.conf;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""


def ensure_packages() -> None:
    missing = [p for p in PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"missing Debian packages {missing}: install them (apt-get install {' '.join(missing)})"
        )
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def raw_status(port: int, method: str, uri: str, headers: dict | list, body: bytes | None) -> int:
    """Send one request as written (no client-side normalisation) and return the status code."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", "localhost"))
    if body is not None and "content-length" not in names:
        items.append(("Content-Length", str(len(body))))
    items = [(k, v) for k, v in items if k.lower() != "connection"] + [("Connection", "close")]
    head = f"{method} {uri} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    data = head.encode("utf-8", "surrogateescape") + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    try:
        return int(buf.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


class Peer:
    """Context manager: nginx (upstream + ModSecurity/CRS peer) running from a temporary prefix."""

    def __init__(self, upstream_port: int = UPSTREAM_PORT, peer_port: int = PEER_PORT) -> None:
        self.upstream_port, self.peer_port = upstream_port, peer_port
        self.prefix = Path(tempfile.mkdtemp(prefix="netguard-waf-peer-"))
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Peer:
        ensure_packages()
        # nginx workers run as an unprivileged user: they must be able to write body temp files
        self.prefix.chmod(0o755)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "tmp"):
            (self.prefix / d).mkdir()
            (self.prefix / d).chmod(0o777)
        modsec = MODSEC_BASE.format(tmp=self.prefix / "tmp")
        # REST APIs use PUT/PATCH/DELETE: allow them, as crs-setup.conf tells an API operator to (900200)
        modsec += (
            '\nSecAction "id:900200,phase:1,nolog,pass,t:none,'
            "setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'\"\n"
        )
        modsec += f"Include {CRS_SETUP}\nInclude {CRS_RULES}/*.conf\n"
        (self.prefix / "modsec.conf").write_text(modsec)
        conf = NGINX_CONF.format(module=MODSEC_MODULE, prefix=self.prefix, upstream_port=self.upstream_port,
                                 peer_port=self.peer_port)  # fmt: skip
        (self.prefix / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_port(self.upstream_port)
            wait_port(self.peer_port)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)

    def blocks(self, d: dict, form_default: bool = False) -> bool:
        """Does the peer answer 403 to this corpus request? (`form_default`: a body without a
        Content-Type is sent as a form, like CRS's own test runner does)."""
        headers = list(d.get("headers", {}).items())
        body = d.get("body")
        raw = None if body is None else body.encode(d.get("body_encoding", "utf-8"), "surrogateescape")
        if raw is not None and form_default and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        try:
            return raw_status(self.peer_port, d["method"], d["uri"], headers, raw) == 403
        except OSError:
            return False
