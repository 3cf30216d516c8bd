# The one netguard image: agent, controller, webhook, UI and the WAF sidecar (and its iptables init
# container) all run it, each with its own `command:` in manifests/.
#   docker build -t ghcr.io/netguard/netguard:0.1.0 .
FROM python:3.11-slim-bookworm AS build
# gcc: the wheel compiles the WAF's per-request modules to C with mypyc (setup.py); the runtime stage
# installs the built wheel and needs no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY netguard netguard
COPY policygen policygen
COPY waf waf
COPY visualizer visualizer
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# iptables: the sidecar's opt-in redirect init container; conntrack: the agent's checks and debugging.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables conntrack \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 netguard \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin netguard
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels netguard && rm -rf /wheels
# The WAF's compiled rule databases, made once here: the injected sidecar runs on a read-only root file
# system with no home, and would otherwise compile them (seconds of CPU) at every pod start. A node whose
# CPU lacks the build machine's instruction set cannot load them and compiles, as before.
ENV NETGUARD_WAF_CACHE=/var/cache/netguard-waf
RUN netguard waf --precompile && chmod -R a+rX /var/cache/netguard-waf
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Non-root by default; the agent and the init container ask for root in their securityContext.
USER 65532:65532
ENTRYPOINT ["netguard"]
CMD ["--help"]
