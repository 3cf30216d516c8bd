"""`netguard webhook`: serve the injection over HTTPS; `netguard webhook certs`: make its TLS files."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import ssl
import sys
import threading
import time

from waf.injection.certs import make_serving_cert, service_names
from waf.injection.settings import DEFAULT_IMAGE, NativeSidecar, Settings

SERVE_EPILOG = """\
`netguard webhook certs --help`: make the TLS files and the caBundle.
The API server posts AdmissionReview v1 requests to https://HOST:PORT/mutate; GET /healthz answers ok.
Pods labelled netguard.io/waf: enabled get the WAF sidecar (see the README's sidecar-injection section).

examples:
  netguard webhook certs --out-dir /tmp/tls --ip 127.0.0.1
  netguard webhook --listen 127.0.0.1:8443 --tls-cert /tmp/tls/tls.crt --tls-key /tmp/tls/tls.key
"""

CERTS_EPILOG = """\
Writes ca.crt, tls.crt (mode from the umask) and tls.key (0600) to --out-dir and prints the base64
caBundle on stdout, for the MutatingWebhookConfiguration. The CA key is not kept: the CA signs this one
certificate only. Files already there are kept unless --force (a new CA needs a new caBundle).

examples:
  CA_BUNDLE=$(netguard webhook certs --out-dir tls)
  kubectl -n netguard-system create secret tls netguard-webhook-tls --cert tls/tls.crt --key tls/tls.key
  kubectl patch mutatingwebhookconfiguration netguard-waf-injector --type json -p "[
    {\\"op\\":\\"add\\",\\"path\\":\\"/webhooks/0/clientConfig/caBundle\\",\\"value\\":\\"$CA_BUNDLE\\"},
    {\\"op\\":\\"add\\",\\"path\\":\\"/webhooks/1/clientConfig/caBundle\\",\\"value\\":\\"$CA_BUNDLE\\"}]"
"""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard webhook",
        description="Mutating admission webhook that injects the netguard WAF sidecar (HTTPS).",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--listen",
        type=_host_port,
        default=("0.0.0.0", 8443),
        metavar="HOST:PORT",
        help="address to serve HTTPS on (default 0.0.0.0:8443)",
    )
    p.add_argument(
        "--tls-cert",
        default="/etc/netguard/webhook-tls/tls.crt",
        metavar="FILE",
        help="serving certificate, PEM (default %(default)s)",
    )
    p.add_argument(
        "--tls-key",
        default="/etc/netguard/webhook-tls/tls.key",
        metavar="FILE",
        help="its private key, PEM (default %(default)s)",
    )
    p.add_argument(
        "--image",
        default=os.environ.get("NETGUARD_IMAGE", DEFAULT_IMAGE),
        help="sidecar image (default: $NETGUARD_IMAGE or %(default)s)",
    )
    p.add_argument(
        "--mode",
        choices=("block", "detect"),
        default="block",
        help="WAF mode for pods without a netguard.io/waf-mode annotation",
    )
    p.add_argument(
        "--native-sidecar",
        type=NativeSidecar,
        choices=list(NativeSidecar),
        default=NativeSidecar.AUTO,
        help="run the WAF as a native sidecar (init container, restartPolicy Always): auto asks the API "
        "server's version at start and again until it answers (default %(default)s)",
    )
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="for --native-sidecar auto outside a cluster (default: in-cluster, else ~/.kube/config)",
    )
    p.add_argument(
        "--version-retry-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="how soon to ask the API server again when it did not answer (default %(default)s)",
    )
    p.add_argument(
        "--tls-reload-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="how often to look for renewed TLS files and load them (default %(default)s)",
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    return p


def certs_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netguard webhook certs",
        description="Make a CA and the webhook's serving certificate; print the caBundle.",
        epilog=CERTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out-dir", required=True, metavar="DIR")
    p.add_argument(
        "--service", default="netguard-webhook", help="the webhook's Service (default %(default)s)"
    )
    p.add_argument("--namespace", default="netguard-system", help="its namespace (default %(default)s)")
    p.add_argument("--dns", action="append", default=[], metavar="NAME", help="another DNS name (repeatable)")
    p.add_argument("--ip", action="append", default=[], metavar="IP", help="an IP address (repeatable)")
    p.add_argument("--days", type=int, default=365, help="validity in days (default %(default)s)")
    p.add_argument("--force", action="store_true", help="replace ca.crt, tls.crt and tls.key if they exist")
    return p


def _fail(message: str) -> int:
    print(f"netguard webhook: error: {message}", file=sys.stderr)
    return 2


def certs_main(argv: list[str]) -> int:
    args = certs_parser().parse_args(argv)
    if args.days < 1:
        return _fail(f"--days {args.days}: want at least 1")
    existing = [n for n in ("ca.crt", "tls.crt", "tls.key") if os.path.exists(os.path.join(args.out_dir, n))]
    if existing and not args.force:
        return _fail(
            f"{os.path.join(args.out_dir, existing[0])}: exists; --force replaces it "
            f"(a new CA: update the webhook configuration's caBundle too)"
        )
    try:
        made = make_serving_cert(service_names(args.service, args.namespace) + args.dns, args.ip, args.days)
    except ValueError as exc:
        return _fail(f"--ip: {exc}")
    try:
        os.makedirs(args.out_dir, exist_ok=True)
        for name, data, mode in (
            ("ca.crt", made.ca_pem, 0o644),
            ("tls.crt", made.cert_pem, 0o644),
            ("tls.key", made.key_pem, 0o600),
        ):
            path = os.path.join(args.out_dir, name)
            tmp = path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
    except OSError as exc:
        return _fail(f"{exc.filename or args.out_dir}: {exc.strerror}")
    print(base64.b64encode(made.ca_pem).decode())
    print(
        f"netguard webhook certs: wrote {args.out_dir}/ca.crt, tls.crt, tls.key for "
        f"{args.service}.{args.namespace}.svc; the caBundle is on stdout",
        file=sys.stderr,
    )
    return 0


def serve_main(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    for path in (args.tls_cert, args.tls_key):
        if not os.path.isfile(path):
            return _fail(f"{path}: no such file (make them with `netguard webhook certs`)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        return _fail(f"{args.tls_cert} / {args.tls_key}: not a usable certificate and key ({exc})")
    import uvicorn  # the server only when serving: `webhook certs` and --help stay light

    from waf.injection.cluster import VersionWatch
    from waf.injection.webhook import app

    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", stream=sys.stderr)
    host, port = args.listen
    defaults = Settings(image=args.image, mode=args.mode, native_sidecar=args.native_sidecar)
    print(
        json.dumps(
            {
                "event": "start",
                "listen": f"{host}:{port}",
                "tls_cert": args.tls_cert,
                "image": defaults.image,
                "mode": defaults.mode,
                "native_sidecar": str(defaults.native_sidecar),
            }
        ),
        file=sys.stderr,
        flush=True,
    )
    version = None
    if args.native_sidecar is NativeSidecar.AUTO:
        watch = VersionWatch(args.kubeconfig, retry=args.version_retry_seconds).start()
        version = lambda: watch.version  # noqa: E731
    config = uvicorn.Config(
        app(defaults, version),
        host=host,
        port=port,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    reload = (config, args.tls_cert, args.tls_key, args.tls_reload_seconds)
    threading.Thread(target=_reload_tls, args=reload, name="tls-reload", daemon=True).start()
    uvicorn.Server(config).run()
    return 0


def _signature(*paths: str) -> tuple[tuple[int, int, int], ...] | None:
    try:
        return tuple((st.st_mtime_ns, st.st_ino, st.st_size) for st in (os.stat(p) for p in paths))
    except OSError:
        return None


def _reload_tls(config, cert: str, key: str, every: float) -> None:
    """Load renewed TLS files (cert-manager, or a Secret updated by hand) into the running server.

    New handshakes use the new pair; open connections keep theirs. A pair that does not load (say, the
    certificate written before its key) is tried again next time, and the old pair stays in use.
    """
    log = logging.getLogger("netguard.webhook")
    seen = _signature(cert, key)
    while True:
        time.sleep(every)
        now = _signature(cert, key)
        if now is None or now == seen or config.ssl is None:
            continue
        try:
            config.ssl.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            log.warning(json.dumps({"event": "tls-reload-failed", "error": str(exc)}))
            continue
        seen = now
        log.info(json.dumps({"event": "tls-reloaded", "cert": cert}))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "certs":
        return certs_main(argv[1:])
    return serve_main(argv)
