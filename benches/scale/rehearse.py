"""Wall time of `opsguard rehearse -- true`, by phase. Run it with
`scripts/bench --rehearse`.

Two live environments, each on its own ministack account and its own
Elasticsearch double: the 2021 incident replica (examples/incident/seed.py)
and the bench seeder's environment (seed.py; its 1× is 300 services, 900
tasks, 2,000 secrets of which 600 referenced, 1,007 ES users). For each,
`opsguard rehearse -- true` runs --repeat times (the shadow's emulator is the
venv's ministack, started by opsguard each time), and the table shows the
median of each phase the report's `rehearsal.timings_ms` gives:

* live_snapshot: the live snapshot;
* shadow_seeding: building the shadow, which is emulator_start (starting
  ministack until it answers), seed_elasticsearch (users, roles, API keys into
  the in-process double), seed_aws (secrets, clusters, task definitions,
  services into the emulator, with the live reads that needs), the wait for
  the next whole second (ECS `startedAt` resolution; see src/rehearse/mod.rs)
  and shadow_snapshot (the shadow's before snapshot and the fidelity check);
* command: the command itself;
* verdict: the shadow's after snapshot, probes, rules and the second live
  snapshot;

plus the process's wall time and peak RSS. No delay is added: every call is
answered by the local emulators, so this measures opsguard plus the emulators.
Everything listens on 127.0.0.1 and is stopped (by PID) on exit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import HERE, PY, ROOT, STARTED, free_port, measure, start, stop, wait_http  # noqa: E402

PHASES = ["live_snapshot", "shadow_seeding", "emulator_start", "seed_elasticsearch", "seed_aws",
          "shadow_snapshot", "command", "verdict"]


def rehearse(binary: str, env: dict, cfg: Path, out: Path, name: str) -> dict:
    report = out / f"{name}.json"
    true_bin = shutil.which("true") or "/bin/true"
    m = measure([binary, "rehearse", "--config", str(cfg), "--report", str(report), "--", true_bin], env,
                timeout=1800)
    if m["code"] != 0:
        sys.exit(f"bench: opsguard rehearse ({name}) exited {m['code']}:\n{m['stderr'][-4000:]}")
    r = json.loads(report.read_text())
    m["timings"] = r["rehearsal"]["timings_ms"]
    m["seeded"] = r["rehearsal"]["seeded"]
    return m


def alternate(binaries: list, repeat: int, env: dict, cfg: Path, out: Path) -> list:
    """`repeat` rehearsals with each binary, the binaries taking turns."""
    runs: dict[str, list] = {label: [] for label, _ in binaries}
    for i in range(repeat):
        for label, binary in binaries:
            runs[label].append(rehearse(binary, env, cfg, out, f"r{i}{label.strip(' ()')}"))
    return list(runs.items())


def with_rehearse(text: str, emulator: str) -> str:
    return text + f"\n[rehearse]\naws_emulator = [{json.dumps(emulator)}]\n"


def start_es(a, tmp: Path, env: dict, pw: str, name: str) -> str:
    port = free_port()
    log = tmp / f"es-{name}.log"
    p = start([a.es_double, "--port", str(port)], log, dict(env, ES_DOUBLE_ELASTIC_PASSWORD=pw))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/_cluster/health", p, log, "Basic " + base64.b64encode(f"elastic:{pw}".encode()).decode())
    return url


def main() -> None:
    ap = argparse.ArgumentParser(description="opsguard rehearse wall time, by phase")
    ap.add_argument("--opsguard", required=True)
    ap.add_argument("--es-double", required=True)
    ap.add_argument("--repeat", type=int, default=3, help="rehearsals of each environment (median)")
    ap.add_argument("--scale", type=float, default=1.0, help="the seeder's size, as a multiple of its 1x")
    ap.add_argument("--skip", default="", help="comma list of: replica,scale")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--before", metavar="BIN",
                    help="another opsguard binary (e.g. an earlier commit's) to compare: its runs and "
                         "this one's alternate on the same environments, so both see the same load")
    a = ap.parse_args()
    binaries = [("", a.opsguard)] + ([(" (before)", a.before)] if a.before else [])
    skip = set(filter(None, a.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="opsguard-bench-rehearse."))
    pw = os.urandom(16).hex()
    ministack = str(Path(PY).parent / "ministack")
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp), "TMPDIR": str(tmp), "NO_COLOR": "1",
           "OPSGUARD_ES_PASSWORD": pw, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-creds")}
    (tmp / "aws-config").write_text("")
    (tmp / "aws-creds").write_text("")
    rows = []
    try:
        port = free_port()
        ms_env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp), "TMPDIR": str(tmp),
                  "PYTHONUNBUFFERED": "1", "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
                  "MINISTACK_REGION": "eu-west-1", "PERSIST_STATE": "0"}
        ms = start([ministack], tmp / "ministack.log", ms_env)
        ms_url = f"http://127.0.0.1:{port}"
        wait_http(ms_url + "/_ministack/health", ms, tmp / "ministack.log")

        if "replica" not in skip:
            es_url = start_es(a, tmp, env, pw, "incident")
            e = dict(env, AWS_ACCESS_KEY_ID="111111111111", AWS_ENDPOINT_URL=ms_url, ES_URL=es_url,
                     ES_PASSWORD=pw)
            subprocess.run([PY, str(ROOT / "examples/incident/seed.py")], env=e, check=True,
                           stdout=subprocess.DEVNULL)
            d = tmp / "incident"
            d.mkdir()
            text = (ROOT / "examples/incident/opsguard.toml").read_text()
            text = text.replace("http://127.0.0.1:9200", es_url).replace("http://127.0.0.1:4566", ms_url)
            cfg = d / "opsguard.toml"
            cfg.write_text(with_rehearse(text, ministack))
            for label, runs in alternate(binaries, a.repeat, e, cfg, d):
                rows.append((f"incident replica{label}", runs))
                print(f"incident replica{label}: {[round(r['wall'], 2) for r in runs]} s", flush=True)

        if "scale" not in skip:
            es_url = start_es(a, tmp, env, pw, "scale")
            d = tmp / "scale"
            e = dict(env, AWS_ACCESS_KEY_ID="222222222222")
            t = time.monotonic()
            subprocess.run([PY, str(HERE / "seed.py"), "--aws", ms_url, "--es", es_url, "--dir", str(d),
                            "--scale", str(a.scale)], env=e, check=True)
            print(f"seeded {a.scale:g}x in {time.monotonic() - t:.0f} s", flush=True)
            text = (d / "opsguard.toml").read_text().replace("AWS_URL", ms_url).replace("ES_URL", es_url)
            cfg = d / "rehearse.toml"
            cfg.write_text(with_rehearse(text, ministack))
            for label, runs in alternate(binaries, a.repeat, e, cfg, d):
                rows.append((f"bench {a.scale:g}x{label}", runs))
                print(f"bench {a.scale:g}x{label}: {[round(r['wall'], 2) for r in runs]} s", flush=True)
    finally:
        for p in list(STARTED):
            stop(p)
        if a.keep:
            print(f"\nwork directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n`opsguard rehearse -- true`, median of {a.repeat} (ms; wall and RSS of the whole process)\n")
    print("| environment | seeded (users / secrets / services) | " + " | ".join(PHASES) + " | wall | peak RSS |")
    print("|---|---|" + "---|" * len(PHASES) + "---|---|")
    for name, runs in rows:
        med = {p: statistics.median(r["timings"].get(p, 0) for r in runs) for p in PHASES}
        s = runs[0]["seeded"]
        wall = statistics.median(r["wall"] for r in runs)
        rss = max(r["rss_mib"] for r in runs)
        cells = [f"{med[p]:,.0f}" if any(p in r["timings"] for r in runs) else "—" for p in PHASES]
        print(f"| {name} | {s['users']:,} / {s['secrets']:,} / {s['services']:,} | " + " | ".join(cells)
              + f" | {wall * 1000:,.0f} | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
