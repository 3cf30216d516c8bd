"""The controller at cluster scale: ingest, graph, one workload's policy, a page, a new edge, memory.

Starts a real `netguard controller --inventory` (SQLite) on 127.0.0.1 with bench/policy_scale.py's synthetic
cluster, posts its flows (100 per workload) from 4 agents in batches of 1,000, then measures:

- ingest: flows per second accepted (answered after the commit);
- graph: GET of the whole graph (seconds, MB) and of one namespace's graph, where the API has it;
- one workload's policy: p50/p99 of GET /api/v1/workloads/{ns}/{kind}/{name}/policy (on code without it,
  the only way is the whole GET /api/v1/policies: that is what is timed, and marked `whole`);
- a page of 100: p50/p99 of GET /api/v1/policies?limit=100 with its `continue` token (or the whole list);
- new edge: under steady background ingest (`--rate` flows/s), a batch with an edge never seen is
  posted; from its acknowledgement, seconds until the edge shows in the source's policy and in the graph;
- memory: the controller's peak RSS (VmHWM).

With `--monitor`, instead: after the ingest (learn mode), `--approve` policies are approved, and the controller
is started again on the same database with `--default-mode monitor`. From its start, /healthz is polled every
20 ms while one batch with a new edge is posted: its answer waits for the approved policies (the live review
built from the store). Printed: when that batch was answered, when /readyz said ready, and the longest
/healthz answer meanwhile (the event loop's longest stall).

Beside each latency, the controller's CPU time per request (`cpu`, summed over its threads from
/proc/PID/task/*/schedstat): on a shared machine the wall time mostly says how long the request waited
for a core; the CPU time is what the request cost.

    .venv/bin/python bench/controller_scale.py                    # 1,000 and 10,000 workloads
    .venv/bin/python bench/controller_scale.py --sizes 1000 --rate 20000
    .venv/bin/python bench/controller_scale.py --sizes 10000 --monitor   # the loop's longest stall in monitor mode

Run it from a checkout of any commit (it only speaks HTTP to the controller of the checkout it runs in).
Timings are noisy on a shared machine; traffic goes only to 127.0.0.1; the controller is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import TOKEN, cpu_seconds, start_controller  # noqa: E402
from policy_scale import PER_NAMESPACE, make_cluster  # noqa: E402

BATCH = 1000
AGENTS = 4


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def batches_of(flows: Path) -> list[bytes]:
    bodies, chunk = [], []
    with flows.open() as fh:
        for line in fh:
            chunk.append(line.strip())
            if len(chunk) == BATCH:
                bodies.append(b'{"agent":"node-%d","flows":[%s]}' % (len(bodies) % AGENTS, ",".join(chunk).encode()))
                chunk = []
    if chunk:
        bodies.append(b'{"agent":"node-0","flows":[%s]}' % ",".join(chunk).encode())
    return bodies


async def post_all(url: str, bodies: list[bytes], agents: int = AGENTS, rate: float = 0.0,
                   stop: asyncio.Event | None = None) -> float:
    """Post every body (or, with `stop`, cycle through them until it is set) from `agents` connections;
    with `rate`, at most that many flows per second. Returns the flows per second achieved."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    sent = 0
    started = time.perf_counter()
    index = 0

    async def agent(client: httpx.AsyncClient) -> None:
        nonlocal sent, index
        while (stop is not None and not stop.is_set()) or (stop is None and index < len(bodies)):
            body = bodies[index % len(bodies)]
            index += 1
            response = await client.post(url + "/api/v1/flows", content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"batch refused: {response.status_code} {response.text[:200]}")
            sent += response.json()["accepted"]
            if rate:
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(agent(client) for _ in range(agents)))
    return sent / (time.perf_counter() - started)


CPU: list[float] = []  # the controller's CPU seconds of each timed_get, in order (when PID is set)
PID = 0


def task_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid` so far (schedstat: nanoseconds on a CPU)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            pass
    return total / 1e9


def timed_get(client: httpx.Client, url: str, **params: str) -> tuple[float, httpx.Response]:
    cpu = task_cpu_seconds(PID) if PID else 0.0
    started = time.perf_counter()
    response = client.get(url, params=params)
    took = time.perf_counter() - started
    if PID:
        CPU.append(task_cpu_seconds(PID) - cpu)
    return took, response


def cpu_percentiles(n: int) -> tuple[float, float]:
    """p50/p99 of the controller's CPU time over the last `n` timed_get calls."""
    return percentiles(CPU[-n:])


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def new_edge_body(n: int, t: float) -> tuple[bytes, str, str]:
    """A call between two workloads of different namespaces that the synthetic cluster never makes."""
    src, dst = 0, n - 1
    src_ip = "10.64.0.0"
    dst_ip = f"10.{64 + (2 * dst) // 65536}.{((2 * dst) // 256) % 256}.{(2 * dst) % 256}"
    port = 8000 + dst % 100
    record = {"time": t, "src_ip": src_ip, "src_port": 41000, "dst_ip": dst_ip, "dst_port": port, "protocol": "TCP",
              "bytes": 100, "packets": 2}
    body = json.dumps({"agent": "node-new", "flows": [record]}).encode()
    src_ns, dst_ns = f"team-{src // PER_NAMESPACE:03d}", f"team-{dst // PER_NAMESPACE:03d}"
    return body, f"{src_ns}/Deployment/svc-{src:05d}", f"{dst_ns}/Deployment/svc-{dst:05d}"


def workload_of(i: int, n: int) -> str:
    """The i-th sampled workload: spread over the namespaces."""
    ns = (i * 7) % (n // PER_NAMESPACE)
    return f"team-{ns:03d}/Deployment/svc-{ns * PER_NAMESPACE + i % PER_NAMESPACE:05d}"


def has_api(client: httpx.Client, url: str) -> bool:
    return client.get(url + "/api/v1/namespaces").status_code == 200


def workload_policy(client: httpx.Client, url: str, workload: str, paged: bool) -> tuple[float, str]:
    """One workload's policy YAML and the seconds it took."""
    if paged:
        took, response = timed_get(client, f"{url}/api/v1/workloads/{workload}/policy")
        return took, response.json()["yaml"] if response.status_code == 200 else ""
    took, response = timed_get(client, url + "/api/v1/policies")
    return took, next((p["yaml"] for p in response.json()["policies"] if p["workload"] == workload), "")


def graph_has(client: httpx.Client, url: str, src: str, dst: str, paged: bool) -> bool:
    ns, kind, name = src.split("/")
    dns, _, dname = dst.split("/")
    doc = client.get(f"{url}/api/v1/workloads/{src}/graph" if paged else url + "/api/v1/graph").json()
    return any(e["source"] == f"{ns}/{name}" and e["target"] == f"{dns}/{dname}" for e in doc["edges"])


async def new_edge_latency(url: str, n: int, bodies: list[bytes], rate: float, paged: bool) -> dict:
    """Steady ingest in the background; one new edge; seconds from its ack until policy and graph show it."""
    stop = asyncio.Event()
    background = asyncio.create_task(post_all(url, bodies, agents=AGENTS, rate=rate, stop=stop))
    await asyncio.sleep(5)  # let the steady state settle
    body, src, dst = new_edge_body(n, time.time())
    dst_name = dst.split("/")[2]
    client = httpx.Client(timeout=300)
    async with httpx.AsyncClient(timeout=120) as poster:
        response = await poster.post(url + "/api/v1/flows", content=body,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
    acked = time.perf_counter()
    policy_at = graph_at = 0.0
    while not (policy_at and graph_at) and time.perf_counter() - acked < 600:
        try:
            if not policy_at:
                _, yaml = await asyncio.to_thread(workload_policy, client, url, src, paged)
                if dst_name in yaml:
                    policy_at = time.perf_counter() - acked
            if not graph_at and await asyncio.to_thread(graph_has, client, url, src, dst, paged):
                graph_at = time.perf_counter() - acked
        except httpx.TimeoutException:  # on code that rebuilds everything, one answer may take minutes
            pass
        await asyncio.sleep(0.02)
    policy_at, graph_at = policy_at or float("inf"), graph_at or float("inf")
    stop.set()
    achieved = await background
    client.close()
    return {"edge_policy_s": policy_at, "edge_graph_s": graph_at, "steady_rate": achieved}


def stop_controller(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_size(root: Path, n: int, rate: float, samples: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="netguard-bench-") as tmp:
        workdir = Path(tmp)
        inventory, flows = make_cluster(n, workdir)
        bodies = batches_of(flows)
        proc, url = start_controller(workdir, "--db", str(workdir / "store.db"), "--inventory", str(inventory),
                                     tries=1200, cwd=root)
        out: dict = {"workloads": n, "flows": sum(b.count(b'"src_ip"') for b in bodies)}
        global PID
        PID = proc.pid
        try:
            cpu = cpu_seconds(proc.pid)
            out["ingest"] = asyncio.run(post_all(url, bodies))
            out["ingest_per_cpu_s"] = out["flows"] / (cpu_seconds(proc.pid) - cpu)  # the controller's own CPU
            client = httpx.Client(timeout=600)
            paged = has_api(client, url)
            out["paged"] = paged
            took, response = timed_get(client, url + "/api/v1/graph")
            out["graph_s"], out["graph_mb"] = took, len(response.content) / 1e6
            out["edges"] = response.json()["stats"]["edges"]
            if paged:
                times = [timed_get(client, f"{url}/api/v1/namespaces/team-{i % (n // PER_NAMESPACE):03d}/graph")[0]
                         for i in range(samples)]
                out["ns_graph_p50"], out["ns_graph_p99"] = percentiles(times)
            times = [workload_policy(client, url, workload_of(i, n), paged)[0] for i in range(samples if paged else 3)]
            out["policy_p50"], out["policy_p99"] = percentiles(times)
            out["policy_cpu"] = cpu_percentiles(len(times))
            if paged:
                for walk in ("page", "again"):  # the first walk renders each policy; the second finds it kept
                    times, token = [], ""
                    for _ in range(samples):
                        took, response = timed_get(client, url + "/api/v1/policies", limit="100",
                                                   **({"continue": token} if token else {}))
                        times.append(took)
                        token = response.json()["metadata"].get("continue", "")
                    out[f"{walk}_p50"], out[f"{walk}_p99"] = percentiles(times)
                    out[f"{walk}_cpu"] = cpu_percentiles(len(times))
            else:
                out["page_p50"], out["page_p99"] = out["policy_p50"], out["policy_p99"]
                out["again_p50"], out["again_p99"] = out["policy_p50"], out["policy_p99"]
            client.close()
            PID = 0  # the new edge's polls run in threads: not timed per request
            out.update(asyncio.run(new_edge_latency(url, n, bodies, rate, paged)))
            out["load"] = os.getloadavg()[0]
            out["rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            stop_controller(proc)
        return out


async def healthz_times(url: str, stop: asyncio.Event, every: float = 0.02) -> list[float]:
    """GET /healthz until `stop`: the seconds of each answer (a stalled event loop shows as one long answer)."""
    times = []
    async with httpx.AsyncClient(timeout=600) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get(url + "/healthz")
            times.append(time.perf_counter() - started)
            await asyncio.sleep(every)
    return times


async def first_monitored_batch(url: str, n: int) -> dict:
    """From a start in monitor mode: one batch with a new edge posted while /healthz is polled; seconds until
    it is answered and until /readyz says ready, and the longest /healthz answer meanwhile."""
    stop = asyncio.Event()
    prober = asyncio.create_task(healthz_times(url, stop))
    started = time.perf_counter()
    body, _, _ = new_edge_body(n, time.time())
    answered = ready = float("inf")
    async with httpx.AsyncClient(timeout=600) as client:
        response = await client.post(url + "/api/v1/flows", content=body,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        if response.status_code != 200:
            raise SystemExit(f"batch refused: {response.status_code} {response.text[:200]}")
        answered = time.perf_counter() - started
        while time.perf_counter() - started < 600:
            if (await client.get(url + "/readyz")).status_code == 200:
                ready = time.perf_counter() - started
                break
            await asyncio.sleep(0.1)
        alerts = (await client.get(url + "/api/v1/alerts")).json()["alerts"]
    stop.set()
    times = await prober
    return {"answered_s": answered, "ready_s": ready, "stall_s": max(times), "probes": len(times),
            "probe_p50_s": statistics.median(times), "alerts": len(alerts)}


def approve_first(url: str, count: int) -> int:
    """Approve the first `count` generated policies on the text shown (their digests). Returns how many."""
    with httpx.Client(timeout=600, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        policies = client.get(url + "/api/v1/policies", params={"limit": str(count)}).json()["policies"]
        for p in policies:
            response = client.post(url + "/api/v1/policies/approve",
                                   json={"workload": p["workload"], "decision": "approved", "digest": p["digest"]})
            response.raise_for_status()
    return len(policies)


def run_monitor(root: Path, n: int, approve: int) -> dict:
    """Learn, approve, start again in monitor mode: the first monitored batch and the loop's longest stall."""
    with tempfile.TemporaryDirectory(prefix="netguard-bench-") as tmp:
        workdir = Path(tmp)
        inventory, flows = make_cluster(n, workdir)
        db = str(workdir / "store.db")
        proc, url = start_controller(workdir, "--db", db, "--inventory", str(inventory), tries=1200, cwd=root)
        try:
            asyncio.run(post_all(url, batches_of(flows)))
            approved = approve_first(url, approve)
        finally:
            stop_controller(proc)
        proc, url = start_controller(workdir, "--db", db, "--inventory", str(inventory), "--default-mode", "monitor",
                                     tries=1200, cwd=root, probe="/healthz")
        try:
            out = asyncio.run(first_monitored_batch(url, n))
            out.update(workloads=n, approved=approved, load=os.getloadavg()[0], rss_mb=peak_rss_mb(proc.pid))
        finally:
            stop_controller(proc)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rate", type=float, default=50_000, help="steady background ingest, flows/s (default 50,000)")
    parser.add_argument("--samples", type=int, default=100, help="requests per latency figure (default 100)")
    parser.add_argument("--monitor", action="store_true",
                        help="only the first batch after a start in monitor mode, and the event loop's longest stall")
    parser.add_argument("--approve", type=int, default=100, help="with --monitor: policies approved first (100)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    git = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=root, capture_output=True, text=True).stdout.strip()
    if args.monitor:
        print(f"netguard controller, first batch after a start in monitor mode ({git[:60]}), {os.cpu_count()} cores")
        print(f"{'workloads':>9} {'approved':>8} | {'batch answered s':>16} {'ready s':>7} | "
              f"{'/healthz longest s':>18} {'p50 ms':>6} {'probes':>6} | {'alerts':>6} {'RSS MB':>6} {'load':>4}")
        for n in args.sizes:
            r = run_monitor(root, n, args.approve)
            print(f"{r['workloads']:>9,} {r['approved']:>8} | {r['answered_s']:>16.2f} {r['ready_s']:>7.2f} | "
                  f"{r['stall_s']:>18.2f} {r['probe_p50_s'] * 1000:>6.1f} {r['probes']:>6} | {r['alerts']:>6} "
                  f"{r['rss_mb']:>6.0f} {r['load']:>4.1f}", flush=True)
        return 0
    print(f"netguard controller at scale ({git[:60]}), {os.cpu_count()} cores, SQLite, {AGENTS} agents x {BATCH} flows")
    print(f"{'workloads':>9} {'edges':>7} {'flows':>9} | {'ingest/s':>8} | {'graph s':>7} {'MB':>6} {'ns p50/99':>9} | "
          f"{'policy p50/p99 ms':>17} | {'page p50/p99 ms':>15} {'again':>9} | {'new edge: policy/graph s':>24} "
          f"{'at flows/s':>10} | {'RSS MB':>6} | {'ingest flows/CPU-s':>18} | {'load':>4}")
    for n in args.sizes:
        r = run_size(root, n, args.rate, args.samples)
        whole = "" if r["paged"] else " whole"
        ns = f"{r['ns_graph_p50'] * 1000:>4.0f}/{r['ns_graph_p99'] * 1000:<4.0f}" if "ns_graph_p99" in r else f"{'-':>9}"
        print(f"{r['workloads']:>9,} {r['edges']:>7,} {r['flows']:>9,} | {r['ingest']:>8,.0f} | {r['graph_s']:>7.2f} "
              f"{r['graph_mb']:>6.1f} {ns} | {r['policy_p50'] * 1000:>7.0f}/{r['policy_p99'] * 1000:<7.0f}{whole:>2} | "
              f"{r['page_p50'] * 1000:>7.0f}/{r['page_p99'] * 1000:<7.0f} "
              f"{r['again_p50'] * 1000:>4.0f}/{r['again_p99'] * 1000:<4.0f} | "
              f"{r['edge_policy_s']:>11.2f}/{r['edge_graph_s']:<12.2f} "
              f"{r['steady_rate']:>10,.0f} | {r['rss_mb']:>6.0f} | {r['ingest_per_cpu_s']:>18,.0f} | {r['load']:>4.1f}",
              flush=True)
        if "policy_cpu" in r and "page_cpu" in r:
            print(f"{'':>9} controller CPU per request p50/p99 ms: one workload's policy "
                  + "/".join(f"{x * 1000:.1f}" for x in r["policy_cpu"]) + ", page of 100 "
                  + "/".join(f"{x * 1000:.1f}" for x in r["page_cpu"]) + " (again "
                  + "/".join(f"{x * 1000:.1f}" for x in r["again_cpu"]) + ")", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
