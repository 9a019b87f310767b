"""Many users at once: `python app.py` on loopback, driven by N concurrent client sessions.

    python benchmarks/loadtest.py [--sessions 6 12] [--rounds 3] [--size 512] [--tokens 8] [--checkpoint NAME]
                                  [--client page|gradio_client] [--browser]

Each session has its own image (a crop of an assets/ picture, its own size) and a script drawn
from its own seed: encode, then rounds of two slider steps, a move, a token switched off, an undo
and an export (tokens or strip). First every script runs alone, one session after the other, on a
fresh server: the single-user reference. Then, for each count in --sessions, a fresh server
(empty caches) takes that many sessions at once. Every answer is checked: no error, the pictures
at the session's own image size and close to the reference's, the captions and the edit log's
PSNR as in the reference, and an undo showing exactly what was shown before the undone edit.
Printed: p50 / p95 latency per kind of event (request to answer as a client sees it: queue and
work; the pictures are fetched after), the requests, the errors and the server's peak RSS.

With --browser, each load phase is followed by one in which a real browser's page steps the
slider while the other sessions repeat their scripts (`browser_phase`).

Each session speaks the page's own protocol, as the browser does (`PageClient`), or, with
--client gradio_client, goes through gradio_client, which polls for its answers every 50 ms and
so adds 50-100 ms to each (docs/performance.md, "Load, limits and bad input").

Bounded: --rounds per session and --time-limit seconds per phase (a session past it stops, and
that is reported). Loopback only.
"""

import argparse
import hashlib
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # the repository: app.py, assets/, explorer/, vle_core/
if str(ROOT) not in sys.path:  # run as a script, this folder is on the path, not the repository
    sys.path.insert(0, str(ROOT))
KINDS = ("encode", "slider", "edit", "export")
PSNR = re.compile(r"PSNR against the source ([0-9.]+|inf) dB")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` in a subprocess on a free loopback port, with its own cache and temp folders."""

    def __init__(
        self,
        work: Path,
        checkpoints: str | None,
        app: Path = ROOT / "app.py",
        extra_env: dict | None = None,
        timeout: float = 180,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(
            os.environ,
            GRADIO_SERVER_NAME="127.0.0.1",
            GRADIO_SERVER_PORT=str(self.port),
            GRADIO_ANALYTICS_ENABLED="False",
        )
        env |= dict(VLE_CACHE_DIR=str(work / "cache"), GRADIO_TEMP_DIR=str(work / "gradio"), PYTHONUNBUFFERED="1")
        if checkpoints:
            env["VLE_CHECKPOINTS"] = checkpoints
        env |= extra_env or {}
        self.log = open(work / "server.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, str(app)], cwd=app.parent, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}; see {work / 'server.log'}")
            try:
                urllib.request.urlopen(self.url + "gradio_api/info", timeout=5).read()
                return
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s") from None
                time.sleep(0.5)

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory so far (VmHWM, Linux), its child processes' (the
        encode worker, explorer/worker.py) added."""
        total = 0.0
        for pid in [self.process.pid, *children(self.process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue  # a child that has just gone
            total += int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
        return total or float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class PageClient:
    """A session as the page's JavaScript client holds one: a request joins the queue (POST
    gradio_api/queue/join) and its answer comes on the session's event stream (GET
    gradio_api/queue/data, server-sent events) as soon as the server sends it. gradio_client speaks
    the same protocol but reads the stream's messages in a loop that sleeps 50 ms whenever none is
    waiting, 2-3 times per request: a slider step answered in 11 ms reaches it after 78 ms.
    `predict` takes and returns what gradio_client's does (State components left out)."""

    def __init__(self, url: str):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=600)
        self.session = uuid.uuid4().hex
        config = self.http.get("config").json()
        state = {c["id"]: c["type"] == "state" for c in config["components"]}
        self.endpoints = {
            d["api_name"]: (d["id"], [state[i] for i in d["inputs"]], [state[o] for o in d["outputs"]])
            for d in config["dependencies"]
            if d.get("api_name")
        }

    def upload(self, path: Path) -> dict:
        """A file for an input, as the page uploads it before the request that uses it."""
        with open(path, "rb") as f:
            response = self.http.post("gradio_api/upload", files=[("files", (path.name, f))])
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def predict(self, *args, api_name: str):
        fn, state_in, state_out = self.endpoints[api_name.lstrip("/")]
        values = iter(args)
        data = [None if is_state else next(values) for is_state in state_in]  # the server holds State per session
        joined = self.http.post(
            "gradio_api/queue/join",
            json={"data": data, "fn_index": fn, "session_hash": self.session, "event_data": None, "trigger_id": None},
        )
        if joined.status_code != 200:
            raise RuntimeError(f"HTTP {joined.status_code}: {joined.text}")
        event = joined.json()["event_id"]
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("event_id") != event or message.get("msg") != "process_completed":
                    continue
                if not message.get("success"):
                    raise RuntimeError((message.get("output") or {}).get("error") or "the event failed")
                outputs = [value for value, is_state in zip(message["output"]["data"], state_out) if not is_state]
                return outputs[0] if len(outputs) == 1 else outputs
        raise RuntimeError(f"the event stream closed before {api_name} answered")


def children(pid: int) -> list[int]:
    """The processes pid started (Linux: /proc/PID/task/*/children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def session_images(count: int, size: int, folder: Path) -> list[Path]:
    """One PNG per session, each its own content and its own size (size wide, size - 8 i high,
    never below half), so an answer that belongs to another session shows by its shape alone."""
    sources = sorted((ROOT / "assets").glob("*.png"))
    paths = []
    for i in range(count):
        photo = Image.open(sources[i % len(sources)]).convert("RGB")
        height = max(size // 2, size - 8 * i)
        scale = max(size / photo.width, height / photo.height)
        photo = photo.resize(
            (max(size, round(photo.width * scale)), max(height, round(photo.height * scale))), Image.Resampling.LANCZOS
        )
        x0 = (i // len(sources)) * 17 % max(1, photo.width - size + 1)
        picture = np.asarray(photo.crop((x0, 0, x0 + size, height)))
        if (i // len(sources)) % 2:
            picture = picture[:, ::-1]
        paths.append(folder / f"session-{i:02d}.png")
        Image.fromarray(np.ascontiguousarray(picture)).save(paths[-1])
    return paths


def script(i: int, rounds: int, n: int, size: int) -> list[tuple]:
    """Session i's requests, drawn from its own seed: the same in the reference and under load."""
    rng = np.random.default_rng(1000 + i)
    steps = [("encode",)]
    for _ in range(rounds):
        k1, k2 = (int(k) for k in rng.integers(1, n + 1, 2))
        token, off = (int(t) for t in rng.choice(np.arange(1, n + 1), 2, replace=False))
        dx, dy = (int(v) for v in rng.integers(-size // 4, size // 4 + 1, 2))
        export = "export_tokens" if rng.random() < 0.5 else "export_strip"
        steps += [
            ("token", k1),
            ("token", k2),
            ("move", token, dx, dy),
            ("switch", off, token),
            ("undo", token),
            (export,),
        ]
    return steps


def fetch(url: str, value) -> bytes:
    """A file answer's bytes (the client leaves files on the server, as a browser does until it
    shows them), fetched now, outside the timed part."""
    if isinstance(value, dict) and "value" in value and "path" not in value:
        value = value["value"]  # an update holding a file
    if isinstance(value, str):
        return Path(value).read_bytes()
    return urllib.request.urlopen(
        value["url"] if value.get("url") else url + "gradio_api/file=" + value["path"], timeout=60
    ).read()


def picture(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def thumbnail(array: np.ndarray) -> np.ndarray:
    """8x8 block means: compared with a tolerance, as two runs may round a float differently."""
    h, w = array.shape[:2]
    return np.array(
        [
            [array[y * h // 8 : (y + 1) * h // 8, x * w // 8 : (x + 1) * w // 8].mean((0, 1)) for x in range(8)]
            for y in range(8)
        ]
    )


@dataclass
class Answer:
    """What one request answered, reduced to what is compared with the reference."""

    step: tuple
    shape: tuple = ()
    thumb: np.ndarray | None = None
    text: str = ""
    psnr: float | None = None
    digest: str = ""


@dataclass
class Run:
    """One session's answers, latencies per kind, errors and mismatches."""

    answers: list = field(default_factory=list)
    times: dict = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    stopped_early: bool = False


def kind_of(step: tuple) -> str:
    return {"encode": "encode", "token": "slider", "move": "edit", "switch": "edit", "undo": "edit"}.get(
        step[0], "export"
    )


def run_session(
    url: str,
    i: int,
    image: Path,
    steps: list,
    args,
    deadline: float,
    start: threading.Barrier | None,
    stop: threading.Event | None = None,
) -> Run:
    from gradio_client import Client, handle_file

    from explorer import settings
    from explorer.images import display_scale

    run = Run()
    if args.client == "page":
        client = PageClient(url)
        image_arg = client.upload(image)
    else:
        # timed: request to answer; the pictures are fetched after
        client = Client(url, verbose=False, download_files=False)
        image_arg = handle_file(str(image))
    h, w, _ = picture(image.read_bytes()).shape
    s = display_scale((h, w))
    expected = (h * s, w * s, 3)  # the views of a small image are enlarged by a whole factor
    if start is not None:
        start.wait()
    edits = []  # the edited picture's digest after each edit not undone, for the undo check
    for step in steps:
        if time.time() > deadline or (stop is not None and stop.is_set()):
            run.stopped_early = True
            break
        t0 = time.perf_counter()
        try:
            if step[0] == "encode":
                length = (settings.LENGTH_MODES[0], settings.TARGET_PSNR)  # N tokens: the page client sends every input
                out = client.predict(image_arg, args.tokens, args.size, args.checkpoint, *length, api_name="/encode")
            elif step[0] == "token":
                out = client.predict(step[1], api_name="/token")
            elif step[0] == "move":
                out = client.predict(step[1], step[2], step[3], api_name="/move")
            elif step[0] == "switch":
                out = client.predict(
                    [t for t in range(1, args.tokens + 1) if t != step[1]], step[2], api_name="/switch"
                )
            elif step[0] == "undo":
                out = client.predict(step[1], api_name="/undo")
            else:
                out = client.predict(api_name=f"/{step[0]}")
            run.times[kind_of(step)].append(time.perf_counter() - t0)
            if step[0] == "encode":
                answer, pic = Answer(step, text=out[7]), picture(fetch(url, out[2]))
            elif step[0] == "token":
                answer, pic = Answer(step, text=out[5]), picture(fetch(url, out[0]))
            elif step[0] in ("move", "switch", "undo"):
                found = PSNR.search(out[-1])
                answer, pic = Answer(step, psnr=float(found.group(1)) if found else None), picture(fetch(url, out[0]))
            else:
                data = fetch(url, out)
                if step[0] == "export_strip":
                    answer, pic = Answer(step), picture(data)
                else:
                    from vle_core import Tokens

                    with tempfile.NamedTemporaryFile(suffix=".safetensors") as file:
                        file.write(data)
                        file.flush()
                        tokens = Tokens.load(file.name)
                    answer, pic = Answer(step, text=f"{len(tokens)} tokens for {tokens.image_size}"), None
        except Exception as e:  # every failure is counted and named, and the session goes on
            run.errors.append(f"session {i} {step}: {type(e).__name__}: {e}")
            continue
        if pic is not None:
            answer.shape, answer.thumb = pic.shape, thumbnail(pic)
            answer.digest = hashlib.sha1(pic.tobytes()).hexdigest()
            if step[0] != "export_strip" and pic.shape != expected:
                run.problems.append(
                    f"session {i} {step}: a {pic.shape} picture for a {expected} image (another session's?)"
                )
        if step[0] in ("move", "switch", "undo"):
            if step[0] == "undo" and len(edits) >= 2 and answer.digest != edits[-2]:
                run.problems.append(f"session {i}: undo did not return exactly to the picture before the undone edit")
            edits = edits[:-1] if step[0] == "undo" else edits + [answer.digest]
        run.answers.append(answer)
    if isinstance(client, PageClient):
        client.http.close()
    return run


def compare(i: int, run: Run, reference: Run) -> list[str]:
    """Where session i's answers under load differ from the same script run alone."""
    problems = []
    for got, want in zip(run.answers, reference.answers):
        if got.step != want.step:
            problems.append(f"session {i}: answers out of step ({got.step} against {want.step})")
            break
        where = f"session {i} {got.step}"
        if got.shape != want.shape:
            problems.append(f"{where}: shape {got.shape}, alone {want.shape}")
        elif got.thumb is not None and np.abs(got.thumb - want.thumb).max() > 2:
            problems.append(
                f"{where}: picture differs from the single-user run by {np.abs(got.thumb - want.thumb).max():.1f} "
                "levels"
            )
        if got.text != want.text:
            problems.append(f"{where}: {got.text!r}, alone {want.text!r}")
        if (got.psnr is None) != (want.psnr is None) or (got.psnr is not None and abs(got.psnr - want.psnr) > 0.15):
            problems.append(f"{where}: PSNR {got.psnr}, alone {want.psnr}")
    return problems


def percentiles(values: list) -> str:
    if not values:
        return "      -"
    ms = sorted(1000 * v for v in values)
    p95 = ms[min(len(ms) - 1, int(np.ceil(0.95 * len(ms))) - 1)]
    return f"p50 {statistics.median(ms):7.0f} ms  p95 {p95:7.0f} ms  (n={len(ms)})"


def phase(
    name: str, sessions: int, images, scripts, args, work: Path, concurrent: bool, references=None
) -> tuple[list, bool]:
    """One fresh server, `sessions` sessions (all at once, or one after the other); prints and
    returns (the runs, whether everything was right)."""
    folder = work / name
    folder.mkdir()
    server = Server(folder, args.checkpoints, Path(args.app).resolve())
    deadline = time.time() + args.time_limit
    runs = [None] * sessions
    try:
        if concurrent:
            barrier = threading.Barrier(sessions)

            def go(i):
                runs[i] = run_session(server.url, i, images[i], scripts[i], args, deadline, barrier)

            threads = [threading.Thread(target=go, args=(i,)) for i in range(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for i in range(sessions):
                runs[i] = run_session(server.url, i, images[i], scripts[i], args, deadline, None)
        peak = server.peak_rss_mb()
    finally:
        server.stop()
    errors = [e for r in runs for e in r.errors]
    problems = [p for r in runs for p in r.problems]
    if references is not None:
        problems += [p for i, r in enumerate(runs) for p in compare(i, r, references[i])]
    stopped = sum(r.stopped_early for r in runs)
    requests = sum(len(r.answers) for r in runs) + len(errors)
    print(
        f"\n{name}: {sessions} session{'s' * (sessions > 1)} {'at once' if concurrent else 'one after the other'}, "
        f"{requests} requests"
    )
    for kind in KINDS:
        print(f"  {kind:7s} {percentiles([t for r in runs for t in r.times[kind]])}")
    print(
        f"  server peak RSS (with its encode worker, if on) {peak:.0f} MB; errors {len(errors)}; wrong answers "
        f"{len(problems)}; sessions stopped by the time limit {stopped}"
    )
    for line in (errors + problems)[:20]:
        print("   ", line)
    return runs, not errors and not problems and not stopped


def browser_phase(sessions: int, images, args, work: Path) -> bool:
    """What a user sees: one page in a real headless browser (Debian's chromium, driven by
    playwright) encodes its image and steps the slider, each step timed from the key press to the
    new reconstruction loaded in the page (answer, picture fetched, decoded), while sessions - 1
    PageClient sessions repeat their scripts against the same server. The browser shares this
    machine's cores with the server, as a user's would not: a pessimistic figure."""
    from playwright.sync_api import sync_playwright

    folder = work / f"browser-{sessions}"
    folder.mkdir()
    server = Server(
        folder, args.checkpoints, Path(args.app).resolve(), extra_env={"VLE_DEFAULT_CHECKPOINT": args.checkpoint}
    )
    done = threading.Event()
    times, errors = [], []

    def busy(i):
        while not done.is_set():
            run = run_session(
                server.url,
                i,
                images[i],
                script(i, args.rounds, args.tokens, args.size),
                args,
                time.time() + args.time_limit,
                None,
                done,
            )
            errors.extend(run.errors)

    threads = [threading.Thread(target=busy, args=(i,), daemon=True) for i in range(sessions - 1)]
    try:
        for t in threads:
            t.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.browser, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("pageerror", lambda e: errors.append(f"browser: {e}"))
                page.goto(server.url)
                page.wait_for_selector(".gradio-container", timeout=1000 * args.time_limit)
                page.locator("#image input[type=file]").set_input_files(str(images[sessions - 1]))
                page.wait_for_function(
                    "() => { const i = document.querySelector('#strip img'); return i && i.src; }",
                    timeout=1000 * args.time_limit,
                )
                slider = page.locator("#tokens input[type=range]")
                # the page's own token count for the checkpoint, at its own working size
                n = int(slider.get_attribute("max"))
                slider.focus()
                for i in range(args.browser_steps):
                    shown = page.locator("#recon img").get_attribute("src")
                    t0 = time.perf_counter()
                    # from k = n down to 1 and back
                    page.keyboard.press("ArrowLeft" if (i // max(n - 1, 1)) % 2 == 0 else "ArrowRight")
                    page.wait_for_function(
                        "(old) => { const i = document.querySelector('#recon img'); return i && i.src !== old && "
                        "i.complete && i.naturalWidth > 0; }",
                        arg=shown,
                        timeout=1000 * args.time_limit,
                    )
                    times.append(time.perf_counter() - t0)
                    time.sleep(0.3)  # a user's pace, and the other sessions' turn
            finally:
                browser.close()
    except Exception as e:  # the browser failed: said, and the phase fails
        errors.append(f"browser: {type(e).__name__}: {e}")
    finally:
        done.set()
        for t in threads:
            t.join()
        server.stop()
    print(
        f"\nbrowser-{sessions}: a browser page ({args.checkpoint} at the page's defaults) and {sessions - 1} sessions "
        "at once"
    )
    print(f"  slider, key press to the new picture shown in the browser: {percentiles(times)}")
    print(f"  errors {len(errors)}")
    for line in errors[:20]:
        print("   ", line)
    return not errors and len(times) == args.browser_steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[6, 12], help="session counts, one phase each")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of slider, slider, move, switch, undo, export per session"
    )
    parser.add_argument(
        "--size", type=int, default=512, help="working size and image width, px (default: the app's, 512)"
    )
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--checkpoint", default="vanilla-natural")
    parser.add_argument(
        "--checkpoints",
        default=None,
        help="folder of checkpoints (default: the app's, VLE_CHECKPOINTS or checkpoints/)",
    )
    parser.add_argument(
        "--app", default=str(ROOT / "app.py"), help="the app to serve (another checkout's, to compare before and after)"
    )
    parser.add_argument(
        "--client",
        choices=["page", "gradio_client"],
        default="page",
        help="how sessions talk to the app: as the page does (default), or through gradio_client",
    )
    parser.add_argument(
        "--browser",
        nargs="?",
        const="/usr/bin/chromium",
        default=None,
        help="also step the slider in a real browser (chromium at this path) beside the other sessions",
    )
    parser.add_argument("--browser-steps", type=int, default=30, help="slider steps the browser times")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds per phase; sessions past it stop")
    args = parser.parse_args(argv)

    most = max(args.sessions)
    with tempfile.TemporaryDirectory(prefix="vle-loadtest-") as tmp:
        work = Path(tmp)
        images = session_images(most, args.size, work)
        scripts = [script(i, args.rounds, args.tokens, args.size) for i in range(most)]
        print(
            f"checkpoint {args.checkpoint}, {args.tokens} tokens at {args.size} px, {args.rounds} rounds per session, "
            f"{args.client} clients; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
        )
        references, ok = phase("reference", most, images, scripts, args, work, concurrent=False)
        for count in args.sessions:
            _, good = phase(f"load-{count}", count, images, scripts, args, work, concurrent=True, references=references)
            ok = ok and good
            if args.browser:
                ok = browser_phase(count, images, args, work) and ok
        print(f"\nload average after: {os.getloadavg()[0]:.2f}; {'all answers right' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
