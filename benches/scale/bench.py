"""opsguard's speed-at-scale benchmark. Run it with `scripts/bench`.

Seeds a large environment on ministack and the Elasticsearch double, then
measures `opsguard snapshot` (release build) against two boto3 snapshots of
the same content (baseline.py: sequential, and a thread pool), each through
the counting proxy (proxy.py) that adds a fixed delay to every request — the
stand-in for a real network; the emulator's own speed is not the model. It
prints one table, every figure of it measured in this run:

* wall time with the delay, and without (the local emulators);
* calls per snapshot, and calls / floor, where the floor is the fewest calls
  that read the same content within real AWS batch limits;
* requests over a real AWS batch limit that the emulator accepted;
* peak RSS of each tool's process;

then peak RSS and calls at growing sizes (the memory curve), a throttling
check (the proxy answers every Nth AWS request with ThrottlingException; the
snapshot must succeed and say so), and the overhead of `opsguard run` around a
no-op command on the 2021 incident replica.

Everything listens on 127.0.0.1 and is stopped (by PID) on exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
STARTED: list[subprocess.Popen] = []


# ---- processes ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    STARTED.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
    if p in STARTED:
        STARTED.remove(p)


def wait_http(url: str, p: subprocess.Popen, log: Path, auth: str | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
    while time.monotonic() < deadline:
        if p.poll() is not None:
            sys.exit(f"bench: {p.args[0]} exited early; log {log}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(req, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench: no healthy answer from {url} in {timeout:.0f} s; log {log}")


def measure(cmd: list[str], env: dict, stdout=None, timeout: float = 1800) -> dict:
    """Run cmd; wall seconds, peak RSS (MiB), exit code, stdout, stderr."""
    started = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.002)
    wall = time.perf_counter() - started
    p.returncode = os.waitstatus_to_exitcode(status)
    out = p.stdout.read() if p.stdout else b""
    err = p.stderr.read()
    return {"wall": wall, "rss_mib": ru.ru_maxrss / 1024, "cpu": ru.ru_utime + ru.ru_stime, "code": p.returncode,
            "stdout": out, "stderr": err.decode("utf-8", "replace")}


class Proxy:
    def __init__(self, tmp: Path, aws: str, es: str, delay_ms: float, throttle_every: int = 0,
                 replay: bool = False):
        ready = tmp / f"proxy-{time.monotonic_ns()}.ready"
        self.p = start([PY, str(HERE / "proxy.py"), "--listen-aws", "0", "--aws-upstream", aws,
                        "--listen-es", "0", "--es-upstream", es, "--delay-ms", str(delay_ms),
                        "--throttle-every", str(throttle_every), "--ready-file", str(ready)]
                       + (["--replay"] if replay else []),
                       tmp / "proxy.log")
        for _ in range(300):
            if ready.exists() and ready.read_text().strip():
                break
            time.sleep(0.02)
        ports = ready.read_text().split()
        self.aws = f"http://127.0.0.1:{ports[0]}"
        self.es = f"http://127.0.0.1:{ports[1]}"

    def stats(self, reset: bool = False) -> dict:
        req = urllib.request.Request(self.aws + ("/__bench/reset" if reset else "/__bench/stats"),
                                     method="POST" if reset else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        stop(self.p)


# ---- the floor ---------------------------------------------------------------

def floor(s: dict) -> dict:
    """The fewest calls that read a snapshot's content within real AWS limits."""
    c = s["clusters"]
    per = [s["services"] // c + (1 if i < s["services"] % c else 0) for i in range(c)]
    tasks = [n * s["tasks"] for n in per]
    pages = lambda n, size: max(1, math.ceil(n / size))  # noqa: E731
    calls = {
        "elasticsearch: GET /, health, users": 3,
        "elasticsearch: authenticate (one per credential; ES has no batch)": s["credentials"],
        "ecs:DescribeClusters (100 a call)": math.ceil(c / 100),
        "ecs:ListServices (100 a page)": sum(pages(n, 100) for n in per),
        "ecs:DescribeServices (10 a call)": sum(math.ceil(n / 10) for n in per),
        "ecs:ListTasks RUNNING + STOPPED (100 a page)": sum(pages(t, 100) + 1 for t in tasks),
        "ecs:DescribeTasks (100 a call)": sum(math.ceil(t / 100) for t in tasks),
        "ecs:DescribeTaskDefinition (one per definition)": s["services"],
        "secretsmanager:ListSecrets (100 a page)": pages(s["secrets"], 100),
        "secretsmanager:BatchGetSecretValue (20 a call)": math.ceil(2 * s["credentials"] / 20),
    }
    chain = max(pages(s["secrets"], 100),  # ListSecrets pages follow each other
                max(pages(t, 100) for t in tasks) + 4)  # ListTasks pages, DescribeTasks, TD, batch, probe
    return {"calls": calls, "total": sum(calls.values()), "chain": chain}


# ---- the tools ---------------------------------------------------------------

def write_config(src: Path, dst: Path, aws: str, es: str, extra: str = "") -> Path:
    text = src.read_text().replace("AWS_URL", aws).replace("ES_URL", es)
    if extra:
        text = text.replace("[aws]\n", f"[aws]\n{extra}\n", 1)
    dst.write_text(text)
    return dst


def run_opsguard(a, env, work: Path, proxy: Proxy, name: str) -> dict:
    cfg = write_config(work / "opsguard.toml", work / f"{name}.toml", proxy.aws, proxy.es)
    proxy.stats(reset=True)
    out = work / f"{name}.json"
    m = measure([a.opsguard, "snapshot", "--config", str(cfg), "-o", str(out)], env)
    if m["code"] != 0:
        sys.exit(f"bench: opsguard snapshot exited {m['code']}:\n{m['stderr']}")
    m["proxy"] = proxy.stats()
    snap = json.loads(out.read_text())
    m["content"] = {
        "users": len(snap["elasticsearch"]["users"]),
        "services": len(snap["services"]),
        "tasks": sum(len(s["tasks"]) for s in snap["services"]),
        "task_definitions": len(snap["task_definitions"]),
        "secrets": len(snap["secrets"]),
        "credentials": len(snap["credentials"]),
        "authenticated": sum(c["probe"]["result"] == "authenticated" for c in snap["credentials"]),
    }
    m["own_calls"] = sum(snap["collection"]["api_calls"].values())
    m["throttled"] = snap["collection"].get("throttled", {})
    return m


def run_baseline(env, work: Path, proxy: Proxy, threads: int) -> dict:
    manifest = json.loads((work / "manifest.json").read_text())
    manifest["es_url"] = proxy.es
    mpath = work / f"manifest-{threads}.json"
    mpath.write_text(json.dumps(manifest))
    e = dict(env, AWS_ENDPOINT_URL=proxy.aws)
    proxy.stats(reset=True)
    m = measure([PY, str(HERE / "baseline.py"), "--threads", str(threads), "--manifest", str(mpath)], e)
    if m["code"] != 0:
        sys.exit(f"bench: baseline ({threads} threads) exited {m['code']}:\n{m['stderr'][-3000:]}")
    m["proxy"] = proxy.stats()
    m["content"] = json.loads(m["stdout"])
    m["wall"] = m["content"].pop("elapsed")
    return m


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description="opsguard speed-at-scale benchmark")
    ap.add_argument("--opsguard", required=True)
    ap.add_argument("--es-double", required=True)
    ap.add_argument("--delay-ms", type=float, default=25.0, help="added to every request (the network model)")
    ap.add_argument("--threads", type=int, default=16, help="threads of the threaded boto3 baseline")
    ap.add_argument("--repeat", type=int, default=3, help="runs of opsguard and of the threaded baseline (median)")
    ap.add_argument("--memory-scales", default="1,3,10", help="sizes of the memory curve, as multiples")
    ap.add_argument("--skip", default="", help="comma list of: baselines,local,memory,throttle,run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    for k, v in (("users", 1000), ("secrets", 2000), ("credentials", 300), ("clusters", 3),
                 ("services", 300), ("tasks", 3)):
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="opsguard-bench."))
    work = tmp / "env"
    es_password = os.urandom(16).hex()
    base_env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp), "NO_COLOR": "1",
                "OPSGUARD_ES_PASSWORD": es_password, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "eu-west-1",
                "AWS_DEFAULT_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(tmp / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-creds")}
    (tmp / "aws-config").write_text("")
    (tmp / "aws-creds").write_text("")
    try:
        # 1. The emulator and the double.
        ms_port, es_port = free_port(), free_port()
        ms_env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp), "TMPDIR": str(tmp),
                  "PYTHONUNBUFFERED": "1", "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(ms_port),
                  "MINISTACK_REGION": "eu-west-1", "PERSIST_STATE": "0"}
        ms = start([str(Path(PY).parent / "ministack")], tmp / "ministack.log", ms_env)
        es = start([a.es_double, "--port", str(es_port)], tmp / "es-double.log",
                   dict(base_env, ES_DOUBLE_ELASTIC_PASSWORD=es_password))
        ms_url, es_url = f"http://127.0.0.1:{ms_port}", f"http://127.0.0.1:{es_port}"
        import base64
        admin = "Basic " + base64.b64encode(f"elastic:{es_password}".encode()).decode()
        wait_http(ms_url + "/_ministack/health", ms, tmp / "ministack.log")
        wait_http(es_url + "/_cluster/health", es, tmp / "es-double.log", admin)

        # 2. The run overhead on the incident replica, before the large seed
        # (its own ministack account and its own ES double).
        overhead = None
        if "run" not in skip:
            overhead = run_overhead(a, tmp, base_env, ms_url, es_password)

        # 3. Seed.
        sizes = ["--users", str(a.users), "--secrets", str(a.secrets), "--credentials", str(a.credentials),
                 "--clusters", str(a.clusters), "--services", str(a.services), "--tasks", str(a.tasks)]
        t = time.monotonic()
        subprocess.run([PY, str(HERE / "seed.py"), "--aws", ms_url, "--es", es_url, "--dir", str(work),
                        "--scale", "1"] + sizes, env=base_env, check=True)
        seeded_in = time.monotonic() - t
        manifest = json.loads((work / "manifest.json").read_text())
        s = manifest["sizes"]
        f = floor(s)
        print(f"\nseeded in {seeded_in:.0f} s: {s['users']} ES users, {s['secrets']} secrets "
              f"({2 * s['credentials']} referenced), {s['clusters']} clusters, {s['services']} services, "
              f"{s['services'] * s['tasks']} tasks, {s['credentials']} credentials", flush=True)

        # 4. The three tools. The network model: the proxy adds the delay to
        # every request and, after one warm-up run of each tool that records
        # the emulator's answers, serves repeated requests from memory, so
        # the emulator's own cost stays out of the measured runs. Then the
        # local emulators, answering every request, with no added delay.
        results: dict[str, dict] = {}
        d = a.delay_ms
        tools = [("opsguard", lambda p, n: run_opsguard(a, base_env, work, p, n), a.repeat)]
        if "baselines" not in skip:
            tools += [("threads", lambda p, n: run_baseline(base_env, work, p, a.threads), a.repeat),
                      ("seq", lambda p, n: run_baseline(base_env, work, p, 1), 1)]
        proxy = Proxy(tmp, ms_url, es_url, d, replay=True)
        try:
            for key, run, n in tools:
                warm = run(proxy, f"{key}-warm")
                runs = [run(proxy, f"{key}-{i}") for i in range(n)]
                results[f"{key}@{d}"] = median_run(runs)
                results[f"{key}@{d}"]["warm_wall"] = warm["wall"]
                print(f"{key}, +{d:g} ms: warm-up (emulator answering) {warm['wall']:.2f} s, "
                      f"replayed {[round(r['wall'], 2) for r in runs]} s, "
                      f"{runs[-1]['proxy']['replayed']}/{runs[-1]['proxy']['total']} answers replayed", flush=True)
        finally:
            proxy.close()
        if "local" not in skip:
            proxy = Proxy(tmp, ms_url, es_url, 0)
            try:
                for key, run, n in tools:
                    results[f"{key}@0"] = run(proxy, f"{key}-local")
                    print(f"{key}, local emulators: {results[f'{key}@0']['wall']:.2f} s", flush=True)
            finally:
                proxy.close()

        # 5. Same content?
        og = results[f"opsguard@{a.delay_ms}"]["content"]
        for k in ("seq", "threads"):
            r = results.get(f"{k}@{a.delay_ms}")
            if r:
                for field in ("users", "services", "tasks", "task_definitions", "secrets", "credentials",
                              "authenticated"):
                    if r["content"][field] != og[field]:
                        sys.exit(f"bench: the {k} baseline read {field} = {r['content'][field]}, "
                                 f"opsguard {og[field]}: not the same content")

        print_table(a, results, f, s)

        # 6. Throttling: every 10th AWS request is refused with ThrottlingException.
        if "throttle" not in skip:
            proxy = Proxy(tmp, ms_url, es_url, 0, throttle_every=10)
            try:
                m = run_opsguard(a, base_env, work, proxy, "throttled")
                said = "throttled" in m["stderr"]
                print(f"\nthrottling: every 10th AWS request answered ThrottlingException "
                      f"({m['proxy']['throttled']} times): snapshot exit {m['code']}, "
                      f"snapshot collection.throttled = {m['throttled']}, "
                      f"stderr says so: {'yes' if said else 'NO'}")
                if not said or not m["throttled"]:
                    sys.exit("bench: a throttled snapshot did not say so")
            finally:
                proxy.close()

        # 7. The memory curve.
        if "memory" not in skip:
            memory_curve(a, tmp, base_env, work, ms_url, es_url, sizes, og, results)
        if overhead:
            print_overhead(overhead)
    finally:
        for p in list(STARTED):
            stop(p)
        if a.keep:
            print(f"\nwork directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def median_run(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["wall"])
    m = dict(runs[len(runs) // 2])
    m["walls"] = [r["wall"] for r in runs]
    m["rss_mib"] = max(r["rss_mib"] for r in runs)
    return m


def print_table(a, results: dict, f: dict, s: dict) -> None:
    d = a.delay_ms
    og = results[f"opsguard@{d}"]
    cols = [("opsguard", "opsguard"), ("seq", "boto3 sequential"), ("threads", f"boto3, {a.threads} threads")]
    cols = [(k, n) for k, n in cols if f"{k}@{d}" in results]

    def cell(k: str, key: str, fmt) -> str:
        r = results.get(key.format(k=k))
        return fmt(r) if r else "—"

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.1f}×" if y else "—"

    rows = []
    rows.append((f"wall, +{d:g} ms a request",
                 [cell(k, f"{{k}}@{d}", lambda r: f"{fmt_s(r['wall'])}") for k, _ in cols],
                 f"{fmt_s(f['chain'] * d / 1000)} ({f['chain']} dependent calls × {d:g} ms)"))
    rows.append((f"  vs opsguard",
                 [cell(k, f"{{k}}@{d}", lambda r: ratio(r["wall"], og["wall"])) for k, _ in cols],
                 f"opsguard at {og['wall'] / (f['chain'] * d / 1000):.1f}× the floor" if d else ""))
    if "opsguard@0" in results:
        og0 = results["opsguard@0"]
        rows.append(("wall, local emulators (no added delay)",
                     [cell(k, "{k}@0", lambda r: fmt_s(r["wall"])) for k, _ in cols], ""))
        rows.append(("  vs opsguard",
                     [cell(k, "{k}@0", lambda r: ratio(r["wall"], og0["wall"])) for k, _ in cols], ""))
    rows.append(("calls per snapshot",
                 [cell(k, f"{{k}}@{d}", lambda r: f"{r['proxy']['total']:,}") for k, _ in cols],
                 f"{f['total']:,}"))
    rows.append(("calls / floor",
                 [cell(k, f"{{k}}@{d}", lambda r: f"{r['proxy']['total'] / f['total']:.2f}") for k, _ in cols],
                 "1.00"))
    rows.append(("requests over AWS batch limits",
                 [cell(k, f"{{k}}@{d}", lambda r: str(sum(r['proxy']['over_limit'].values()))) for k, _ in cols],
                 "0"))
    rows.append(("CPU time of the tool's process",
                 [cell(k, f"{{k}}@{d}", lambda r: fmt_s(r["cpu"])) for k, _ in cols], ""))
    rows.append(("peak RSS",
                 [cell(k, f"{{k}}@{d}", lambda r: f"{r['rss_mib']:.0f} MiB") for k, _ in cols], ""))
    rows.append(("  vs opsguard",
                 [cell(k, f"{{k}}@{d}", lambda r: ratio(r["rss_mib"], og["rss_mib"])) for k, _ in cols], ""))
    print(f"\n| | {' | '.join(n for _, n in cols)} | floor |")
    print(f"|---|{'---|' * len(cols)}---|")
    for label, cells, fl in rows:
        print(f"| {label} | {' | '.join(cells)} | {fl} |")
    print(f"\nopsguard runs (s): {[round(x, 2) for x in og['walls']]}; "
          f"calls by operation: {json.dumps(og['proxy']['calls'], sort_keys=True)}")
    if any(results[f"{k}@{d}"]["proxy"]["over_limit"] for k, _ in cols):
        for k, n in cols:
            if results[f"{k}@{d}"]["proxy"]["over_limit"]:
                print(f"over limits, {n}: {results[f'{k}@{d}']['proxy']['over_limit']}")
    print("floor: " + "; ".join(f"{k} {v}" for k, v in f["calls"].items()))
    print("baseline walls are timed inside the script (after `import boto3`); opsguard's is the whole process.")
    print(f"with +{d:g} ms the proxy replays the answers recorded in a warm-up run of each tool (the emulator's "
          "own time is not part of the network model); warm-up walls (emulator answering): "
          + ", ".join(f"{n} {fmt_s(results[f'{k}@{d}']['warm_wall'])}" for k, n in cols))


def memory_curve(a, tmp, env, work, ms_url, es_url, sizes, og, results) -> None:
    """Grow the environment to each size and take one snapshot (no added delay)."""
    rows = []
    prev = 1.0
    for sc in [float(x) for x in a.memory_scales.split(",")]:
        if sc > prev:
            t = time.monotonic()
            r = subprocess.run([PY, str(HERE / "seed.py"), "--aws", ms_url, "--es", es_url, "--dir", str(work),
                                "--scale", str(sc), "--from-scale", str(prev)] + sizes, env=env)
            if r.returncode != 0:
                print(f"memory curve: seeding {sc:g}x failed; stopping at {prev:g}x")
                break
            print(f"grew to {sc:g}x in {time.monotonic() - t:.0f} s", flush=True)
            prev = sc
        proxy = Proxy(tmp, ms_url, es_url, 0)
        try:
            m = run_opsguard(a, env, work, proxy, f"mem-{sc:g}")
        finally:
            proxy.close()
        s = json.loads((work / "manifest.json").read_text())["sizes"]
        rows.append((sc, s, m, floor(s)["total"]))
    print("\n| size | services (tasks) | secrets (referenced) | ES users | peak RSS | RSS / 1x | calls | calls / floor | wall, local |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = rows[0][2]["rss_mib"] if rows else 1
    for sc, s, m, fl in rows:
        c = m["content"]
        total = m["proxy"]["total"]
        print(f"| {sc:g}x | {c['services']:,} ({c['tasks']:,}) | {s['secrets']:,} ({c['secrets']:,}) | {c['users']:,} "
              f"| {m['rss_mib']:.1f} MiB | {m['rss_mib'] / base:.2f} | {total:,} | {total / fl:.2f} | {fmt_s(m['wall'])} |")


def run_overhead(a, tmp, env, ms_url, es_password) -> dict:
    """`opsguard run -- true` on the incident replica: before + after + verdict."""
    es_port = free_port()
    es_url = f"http://127.0.0.1:{es_port}"
    es = start([a.es_double, "--port", str(es_port)], tmp / "es-incident.log",
               dict(env, ES_DOUBLE_ELASTIC_PASSWORD=es_password))
    import base64
    wait_http(es_url + "/_cluster/health", es, tmp / "es-incident.log",
              "Basic " + base64.b64encode(f"elastic:{es_password}".encode()).decode())
    e = dict(env, AWS_ACCESS_KEY_ID="111111111111", AWS_ENDPOINT_URL=ms_url, ES_URL=es_url,
             ES_PASSWORD=es_password)
    subprocess.run([PY, str(ROOT / "examples/incident/seed.py")], env=e, check=True, stdout=subprocess.DEVNULL)
    d = tmp / "incident"
    d.mkdir()
    text = (ROOT / "examples/incident/opsguard.toml").read_text()
    proxy = Proxy(tmp, ms_url, es_url, 0)
    cfg = d / "opsguard.toml"
    cfg_proxy = d / "proxied.toml"
    cfg.write_text(text.replace("http://127.0.0.1:9200", es_url).replace("http://127.0.0.1:4566", ms_url))
    cfg_proxy.write_text(text.replace("http://127.0.0.1:9200", proxy.es).replace("http://127.0.0.1:4566", proxy.aws))
    try:
        n = 15
        true_bin = shutil.which("true") or "/bin/true"
        bare = [measure([true_bin], e)["wall"] for _ in range(n)]
        snap = [measure([a.opsguard, "snapshot", "--config", str(cfg), "-o", str(d / "s.json")], e) for _ in range(n)]
        runs = [measure([a.opsguard, "run", "--config", str(cfg), "--on-violation", "block", "--", true_bin], e)
                for _ in range(n)]
        for r in runs + snap:
            if r["code"] != 0:
                sys.exit(f"bench: opsguard on the incident replica exited {r['code']}:\n{r['stderr']}")
        # The calls of one run, and the emulators' own time per call.
        proxy.stats(reset=True)
        r = measure([a.opsguard, "run", "--config", str(cfg_proxy), "--on-violation", "block", "--", true_bin], e)
        st = proxy.stats()
    finally:
        proxy.close()
        stop(es)
    calls = st["total"]
    upstream_ms = sum(st["upstream_ms"].values())
    return {"bare": statistics.median(bare), "snapshot": statistics.median([x["wall"] for x in snap]),
            "run": statistics.median([x["wall"] for x in runs]), "runs": [x["wall"] for x in runs],
            "calls": calls, "per_call_ms": upstream_ms / calls if calls else 0, "by_op": st["calls"],
            "rss": max(x["rss_mib"] for x in runs)}


def print_overhead(o: dict) -> None:
    over = (o["run"] - o["bare"]) * 1000
    # Dependent round trips of a run: two snapshots of 5 each (clusters/services/tasks
    # lists → describes → task definitions → secrets → probes; the listing runs beside
    # them), then the probes of the before-values.
    chain = 2 * 5 + 1
    print(f"\nrun overhead on the incident replica (`opsguard run --on-violation block -- true`, median of "
          f"{len(o['runs'])}): {over:.0f} ms over `true` alone; one snapshot {o['snapshot'] * 1000:.0f} ms; "
          f"{o['calls']} calls per run; peak RSS {o['rss']:.0f} MiB.")
    print(f"floor: {chain} dependent round trips × {o['per_call_ms']:.1f} ms (the emulators' mean time per call, "
          f"measured by the proxy) = {chain * o['per_call_ms']:.0f} ms, plus starting the process.")


if __name__ == "__main__":
    main()
