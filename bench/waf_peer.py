# ruff: noqa: E501  (a bench script: long report lines read better unwrapped)
"""The peers the benches compare with: nginx + ModSecurity v3 + the OWASP Core Rule Set, on 127.0.0.1 only.

One nginx process (Debian's nginx and libnginx-mod-http-modsecurity, i.e. libmodsecurity3) serves, from a
private prefix directory:
  - the upstream application (a tiny static response that also accepts bodies);
  - one ModSecurity server per rule set, each proxying to that upstream:
      `crs4.28`: CRS 4.28.0 from ../shared/waf/crs-4.28.0 (the main peer), set up as its README says: the
                 folder copied, crs-setup.conf.example renamed crs-setup.conf, that file then rules/*.conf
                 included;
      `crs3.3.4`: Debian's own modsecurity-crs package (CRS 3.3.4), a second, older column.
    Both run CRS's defaults: paranoia 1, blocking, inbound anomaly threshold 5; PUT/PATCH/DELETE are
    allowed (rule 900200, as crs-setup.conf tells a REST API's operator to do).
The netguard sidecar is started by the benches themselves in front of the same upstream.

Every ModSecurity transaction is named by nginx's `$request_id`, which each response carries back in
`X-Request-Id`: `Peer.rules_of(request_id)` reads from nginx's error log which CRS rules matched.

`ensure_packages()` installs the Debian packages when they are missing (root and apt only; `make test` never
needs them). Ports are free ones picked at start; `Peer.close()` stops nginx by its pid.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("nginx", "libnginx-mod-http-modsecurity", "modsecurity-crs", "wrk")
MODSEC_MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
DEBIAN_CRS_SETUP = "/etc/modsecurity/crs/crs-setup.conf"
DEBIAN_CRS_RULES = "/usr/share/modsecurity-crs/rules"
CRS4 = "crs4.28"
CRS3 = "crs3.3.4"
PEER_LABELS = {CRS4: "ModSecurity + CRS 4.28", CRS3: "ModSecurity + CRS 3.3.4"}

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
SecAuditEngine Off
SecArgumentSeparator &
SecCookieFormat 0
SecStatusEngine Off
SecAction "id:900200,phase:1,nolog,pass,t:none,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
"""

NGINX_HEAD = """
load_module {module};
worker_processes 2;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  client_max_body_size 20m;
  large_client_header_buffers 8 64k;
  keepalive_requests 100000;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{upstream_port};
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
"""

NGINX_PEER = """
  server {{
    listen 127.0.0.1:{port};
    modsecurity on;
    modsecurity_rules_file {rules_file};
    modsecurity_transaction_id "$request_id";
    add_header X-Request-Id $request_id always;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
"""


def free_port() -> int:
    """A port nothing listens on now (127.0.0.1): benches run beside other helpers' benches."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_packages() -> None:
    missing = [p for p in PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"missing Debian packages {missing}: install them (apt-get install {' '.join(missing)})")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass(frozen=True, slots=True)
class Reply:
    """What a WAF answered: the status and the request id it named (X-Request-Id), if any."""

    status: int
    request_id: str = ""


def send_raw(port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None,
             host: str | None = None, timeout: float = 30.0) -> Reply:  # fmt: skip
    """Send one request as written, on its own connection (no client-side normalisation), as BlazeHTTP
    and go-ftw do: `Host` is `host` when given, else the request's own, else the WAF's address;
    `Content-Length` is recomputed from the body (kept at 0 when the request had one, dropped when it had
    neither a body nor the header); `Connection: close`."""
    if host is None:
        host = next((v for k, v in headers if k.lower() == "host"), f"127.0.0.1:{port}")
    drop = {"host", "content-length", "connection", "transfer-encoding"}
    items = [("Host", host)] + [(k, v) for k, v in headers if k.lower() not in drop]
    if body or any(k.lower() == "content-length" for k, _ in headers):
        items.append(("Content-Length", str(len(body or b""))))
    items.append(("Connection", "close"))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    data = head.encode("utf-8", "surrogateescape") + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head_end = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head_end.split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        return Reply(0)
    rid = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-request-id":
            rid = value.strip()
    return Reply(status, rid)


def raw_status(port: int, method: str, uri: str, headers: dict | list, body: bytes | None) -> int:
    """The status only (the proxy bench's sanity checks)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return send_raw(port, method, uri, items, body).status


_RULE_ID = re.compile(r'\[id "(\d+)"\]')
_UNIQUE_ID = re.compile(r'\[unique_id "([^"]+)"\]')
_MSG = re.compile(r'\[msg "([^"]*)"\]')
# CRS's own bookkeeping rules (the blocking evaluation and the correlation): not causes.
_BOOKKEEPING = {949110, 949111, 959100, 980130, 980140, 980170, 980145}


class Peer:
    """Context manager: nginx with the upstream and one ModSecurity server per rule set, from a temporary
    prefix. `ports[name]` is where each peer listens; `upstream_port` the application."""

    def __init__(self, peers: tuple[str, ...] = (CRS4, CRS3), crs4_dir: Path | None = None) -> None:
        for name in peers:
            if name not in PEER_LABELS:
                raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_LABELS)}")
        self.peers = peers
        self.crs4_dir = crs4_dir
        self.upstream_port = free_port()
        self.ports = {name: free_port() for name in peers}
        self.prefix = Path(tempfile.mkdtemp(prefix="netguard-waf-peer-"))
        self.proc: subprocess.Popen | None = None
        self._log_pos = 0
        self._rules: dict[str, set[int]] = defaultdict(set)
        self.messages: dict[int, str] = {}  # rule id -> its msg, as logged

    @property
    def peer_port(self) -> int:
        """The main peer's port (CRS 4.28 when it runs)."""
        return self.ports[self.peers[0]]

    def _rules_file(self, name: str) -> Path:
        tmp = self.prefix / "tmp"
        conf = MODSEC_BASE.format(tmp=tmp)
        if name == CRS4:
            if self.crs4_dir is None or not (self.crs4_dir / "rules").is_dir():
                raise SystemExit(f"CRS 4.28 not found: {self.crs4_dir} (expected ../shared/waf/crs-4.28.0)")
            crs = self.prefix / "crs-4.28.0"
            shutil.copytree(self.crs4_dir, crs)
            crs.chmod(0o755)
            (crs / "crs-setup.conf.example").rename(crs / "crs-setup.conf")
            conf += f"Include {crs}/crs-setup.conf\nInclude {crs}/rules/*.conf\n"
        else:
            conf += f"Include {DEBIAN_CRS_SETUP}\nInclude {DEBIAN_CRS_RULES}/*.conf\n"
        path = self.prefix / f"modsec-{name}.conf"
        path.write_text(conf)
        return path

    def __enter__(self) -> Peer:
        ensure_packages()
        # nginx workers run as an unprivileged user: they must be able to write body temp files
        self.prefix.chmod(0o755)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "tmp"):
            (self.prefix / d).mkdir()
            (self.prefix / d).chmod(0o777)
        conf = NGINX_HEAD.format(module=MODSEC_MODULE, prefix=self.prefix, upstream_port=self.upstream_port)
        for name in self.peers:
            conf += NGINX_PEER.format(port=self.ports[name], rules_file=self._rules_file(name))
        (self.prefix / "nginx.conf").write_text(conf + "}\n")
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_port(self.upstream_port, timeout=60)
            for port in self.ports.values():
                wait_port(port, timeout=60)
        except RuntimeError:
            err = (self.prefix / "error.log").read_text(errors="replace")[-2000:] if (self.prefix / "error.log").exists() else ""
            self.close()
            raise RuntimeError(f"nginx + ModSecurity did not start: {err}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.prefix, ignore_errors=True)

    def rules_of(self, request_id: str) -> set[int]:
        """The CRS rules that matched in one transaction (read from nginx's error log, bookkeeping rules
        left out)."""
        self._read_log()
        return self._rules.get(request_id, set())

    def _read_log(self) -> None:
        path = self.prefix / "error.log"
        if not path.exists():
            return
        with path.open("rb") as fh:
            fh.seek(self._log_pos)
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        self._log_pos += cut
        for line in data[:cut].decode("utf-8", "replace").splitlines():
            if "ModSecurity" not in line:
                continue
            uid, rid = _UNIQUE_ID.search(line), _RULE_ID.search(line)
            if uid and rid and int(rid.group(1)) not in _BOOKKEEPING:
                self._rules[uid.group(1)].add(int(rid.group(1)))
                if (msg := _MSG.search(line)) and int(rid.group(1)) not in self.messages:
                    self.messages[int(rid.group(1))] = msg.group(1)

    def blocks(self, d: dict, form_default: bool = False, peer: str | None = None) -> bool:
        """Does the peer answer 403 to this CRS-corpus request? (`form_default`: a body without a
        Content-Type is sent as a form, like CRS's own test runner does)."""
        headers = list(d.get("headers", {}).items())
        body = d.get("body")
        raw = None if body is None else body.encode(d.get("body_encoding", "utf-8"), "surrogateescape")
        if raw is not None and form_default and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        try:
            return send_raw(self.ports[peer or self.peers[0]], d["method"], d["uri"], headers, raw).status == 403
        except OSError:
            return False
