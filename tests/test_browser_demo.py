"""The search demo (notebook 06) in a real browser: JupyterLab in headless Chromium.

tests/test_widgets.py drives the widget's callbacks in Python; this test drives the widget the
way a student does, through JupyterLab's front end and ipywidgets' JavaScript: a small notebook
built from notebook 06's own cells (the release models, the same ``SearchDemo`` and ``widget``
call) runs in a JupyterLab server of its own, and Playwright drives Debian's Chromium at it.
It types and presses Enter, clicks Search, picks from the examples and grounding menus, and
counts what each step leaves in the page: one results image per search, one grounding map per
pick, none left over from an earlier search, errors in red, nothing in the Log Console (where
JupyterLab puts what a widget callback displays outside any output area).

Skipped when /usr/bin/chromium or the ``playwright`` package is missing (``.ci/run`` installs
Chromium; Playwright's own browser download is never used).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
NOTEBOOK = "demo_browser.ipynb"
# The cells of notebook 06 that build the demo, found by what they call: the setup (preset,
# world, tokenizer, device), the release models, the SearchDemo, and the widget.
CELL_MARKERS = ("load_world(", "release_model(", "SearchDemo(", ".widget(")
ERROR_RED = "rgb(176, 0, 32)"  # #b00020, the status line's colour for errors
STARTUP_S = 600  # JupyterLab, the kernel and notebook 06's setup, on a busy 2-core machine
STEP_S = 180  # one search or grounding pick
START_S = 60  # from Enter or a click to the status line's "searching ..."

if not CHROMIUM.is_file():
    pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium (Debian; .ci/run "
                "installs it) to run the browser test of the search demo",
                allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is missing: pip install -r requirements.txt (it drives "
           f"{CHROMIUM}; never `playwright install`)")


# ------------------------------------------------------------------------------ the notebook


def demo_cells() -> list[str]:
    """The code cells of notebook 06 that build the search demo and show its widget, in order."""
    [path] = sorted((ROOT / "notebooks").glob("06_*.ipynb"))
    code = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"]
    cells: list[str] = []
    for marker in CELL_MARKERS:
        found = [src for src in code if marker in src]
        assert found, f"{path.name} has no code cell calling {marker!r}: update {__file__}"
        if found[0] not in cells:
            cells.append(found[0])
    return cells


def write_notebook(folder: Path) -> Path:
    """The test's notebook: a cell that moves into the repository (fastslow finds its release
    models and data from the working directory), then notebook 06's demo cells."""
    import nbformat

    chdir = f"import os\n\nos.chdir({str(ROOT)!r})  # the repository: release models, data"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src) for src in [chdir, *demo_cells()]],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    path = folder / NOTEBOOK
    nbformat.write(nb, path)
    return path


# ------------------------------------------------------------------------------ the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


@pytest.fixture
def jupyterlab(tmp_path: Path):
    """A JupyterLab server of this test's own (own port, token, settings and runtime folders)
    serving a folder holding the demo notebook: yields ``(url of the notebook, server log)``."""
    home = tmp_path / "lab"
    served = home / "notebooks"
    served.mkdir(parents=True)
    write_notebook(served)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no requests to the Jupyter news feed or for updates (and no toast asking about them)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTEST_"))}
    env.pop("MPLBACKEND", None)  # the kernel picks matplotlib's inline backend, as in the course
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), IPYTHONDIR=str(home / "ipython"),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={served}", "--ServerApp.log_level=WARN",
           "--LabApp.expose_app_in_browser=True"]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    log = home / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(cmd, env=env, cwd=served, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({server.returncode}):\n{tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not answer in 120 s:\n{tail(log)}") from None
                time.sleep(0.5)
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}", log
    finally:
        shut_down(server, base, token)


def shut_down(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server's kernels down, then the server (by its own process id)."""
    if server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
                kernels = json.load(r)
            for kernel in kernels:
                urllib.request.urlopen(urllib.request.Request(
                    f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"),
                    timeout=30).close()
        except (urllib.error.URLError, OSError, ValueError):
            pass  # the kernels notice their parent's exit and stop too
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


# ------------------------------------------------------------------------------ the page

# Records what the status line showed (every node put into it: the "searching ..." note, too
# brief to poll for) and each time the Search button was disabled, on window.__demo.
INSTRUMENT_JS = """() => {
  const root = document.querySelector('.jp-OutputArea-output .widget-vbox:has(.widget-text)');
  const status = root.querySelector('.widget-html-content');
  const button = root.querySelector('button.widget-button');
  window.__demo = {statuses: [], disabled: 0};
  new MutationObserver(records => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.textContent.trim()) window.__demo.statuses.push(n.textContent);
    }
  }).observe(status, {childList: true, subtree: true});
  new MutationObserver(records => {
    for (const r of records) if (r.oldValue === null) window.__demo.disabled += 1;
  }).observe(button, {attributes: true, attributeFilter: ['disabled'], attributeOldValue: true});
}"""

RESET_JS = "() => { window.__demo.statuses = []; window.__demo.disabled = 0; }"

# Everything a step is checked against, read from the page in one go.
STATE_JS = """() => {
  const visible = el => el.checkVisibility();
  const root = document.querySelector('.jp-OutputArea-output .widget-vbox:has(.widget-text)');
  const [lists, heat] = root.querySelectorAll('img');
  const image = img => ({visible: visible(img), loaded: img.complete && img.naturalWidth > 0,
                         width: img.naturalWidth, height: img.naturalHeight});
  const [examples, pick] = root.querySelectorAll('.widget-dropdown select');
  // a menu's labels, their spaces as typed (ipywidgets writes them as non-breaking spaces)
  const labels = select => [...select.options].map(o => o.textContent.replace(/\u00a0/g, ' '));
  const status = root.querySelector('.widget-html-content');
  const red = status.querySelector('span');
  let kernel = 'no notebook';
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.sessionContext) kernel = w.sessionContext.session?.kernel?.status ?? 'no kernel';
  }
  const panel = root.closest('.jp-NotebookPanel');
  const log = document.querySelector('.jp-LogConsolePanel');
  return {
    kernel, statuses: [...window.__demo.statuses], disabledCount: window.__demo.disabled,
    status: status.textContent, statusColor: red ? getComputedStyle(red).color : null,
    buttonDisabled: root.querySelector('button.widget-button').disabled,
    query: root.querySelector('.widget-text input').value,
    lists: image(lists), heat: image(heat),
    demoImages: [...root.querySelectorAll('img')].filter(visible).length,
    notebookImages: [...panel.querySelectorAll('img')].filter(visible).length,
    demoCellOutputs: root.closest('.jp-Cell').querySelectorAll('.jp-OutputArea-child').length,
    pickOptions: labels(pick), pickIndex: pick.selectedIndex, exampleOptions: labels(examples),
    logOpen: log !== null,
    logEntries: log ? log.querySelectorAll('.jp-OutputArea-child').length : -1,
    logImages: log ? log.querySelectorAll('img').length : -1,
  };
}"""

# SHA-256 of an image widget's PNG (0: the results, 1: the grounding maps): tells two
# figures apart.
IMAGE_HASH_JS = """async (which) => {
  const root = document.querySelector('.jp-OutputArea-output .widget-vbox:has(.widget-text)');
  const img = root.querySelectorAll('img')[which];
  const bytes = await (await fetch(img.src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}"""


class Demo:
    """The demo's widget in the page, and the checks each step ends with."""

    def __init__(self, page) -> None:
        self.page = page
        self.root = root = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-text)")
        self.query = root.locator(".widget-text input")
        self.button = root.locator("button.widget-button")
        self.examples = root.locator(".widget-dropdown select").nth(0)
        self.pick = root.locator(".widget-dropdown select").nth(1)

    def state(self) -> dict:
        return self.page.evaluate(STATE_JS)

    def image_hash(self, which: int) -> str:
        return self.page.evaluate(IMAGE_HASH_JS, which)

    def settle(self, done, what: str, timeout: float = STEP_S) -> dict:
        """The page's state once ``done(state)`` has held, unchanged, for a second (the kernel
        idle, every shown image loaded): later messages of the same step would change it."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            state = self.state()
            shown = [im for im in (state["lists"], state["heat"]) if im["visible"]]
            if state["kernel"] == "idle" and all(im["loaded"] for im in shown) and done(state):
                key = json.dumps(state, sort_keys=True)
                if key != last:
                    last, since = key, time.monotonic()
                elif time.monotonic() - since >= 1.0:
                    return state
            else:
                last = None
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not done after {timeout} s; the page: {state}")
            time.sleep(0.2)

    def search_done(self, what: str) -> dict:
        """After a search was asked for: its state once it has finished (a result or an error).
        A search says "searching ..." at once: a minute without it fails (Enter did nothing)."""
        deadline = time.monotonic() + START_S
        while not any(t.startswith("searching") for t in self.state()["statuses"]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no search started in {START_S} s (the status line "
                                     f"never said 'searching'); the page: {self.state()}")
            time.sleep(0.2)

        def finished(s: dict) -> bool:
            last = max(i for i, t in enumerate(s["statuses"]) if t.startswith("searching"))
            return (last < len(s["statuses"]) - 1 and not s["buttonDisabled"]
                    and not s["status"].startswith("searching"))
        return self.settle(finished, what)

    def reset(self) -> None:
        self.page.evaluate(RESET_JS)

    def enter(self, text: str, what: str) -> dict:
        """Type ``text`` into the box (nothing searches yet), then press Enter."""
        self.reset()
        self.query.fill(text)
        time.sleep(1.0)
        assert self.state()["statuses"] == [], f"{what}: typing alone searched"
        self.query.press("Enter")
        return self.search_done(what)

    def click_search(self, what: str) -> dict:
        self.reset()
        self.button.click()
        return self.search_done(what)

    def choose(self, select, index: int, done, what: str) -> dict:
        self.reset()
        select.select_option(index=index)
        return self.settle(done, what)


def searches(state: dict) -> int:
    return sum(t.startswith("searching") for t in state["statuses"])


def check_page(state: dict, images: int, what: str) -> None:
    """After every step: the demo shows ``images`` images and the page no other (no stray
    figure in the notebook), nothing in the Log Console, the widget still its cell's one output."""
    assert state["demoImages"] == images, f"{what}: {state['demoImages']} images in the demo"
    assert state["notebookImages"] == images, (
        f"{what}: {state['notebookImages'] - images} images in the notebook outside the demo")
    assert state["demoCellOutputs"] == 1, f"{what}: the demo's cell has other outputs too"
    assert state["logOpen"], "the Log Console is not open"
    assert (state["logEntries"], state["logImages"]) == (0, 0), (
        f"{what}: {state['logEntries']} entries ({state['logImages']} images) in the Log Console")


def check_results(state: dict, query: str, what: str) -> None:
    """A search for ``query`` ended with its results: the status line's times, one image of the
    two lists, five results to pick from, no grounding map, no error."""
    assert f"'{query}'" in state["status"] and "slow re-scoring" in state["status"], (
        f"{what}: status {state['status']!r}")
    assert "Cannot search" not in state["status"] and state["statusColor"] is None, what
    assert state["lists"]["visible"] and state["lists"]["loaded"], f"{what}: no results image"
    assert state["lists"]["width"] > 300, f"{what}: results image {state['lists']}"
    assert not state["heat"]["visible"], f"{what}: a grounding map from before the search"
    assert len(state["pickOptions"]) == 5 and state["pickIndex"] == -1, (
        f"{what}: grounding menu {state['pickOptions']} (index {state['pickIndex']})")
    assert all(o.startswith(f"Slow #{r + 1}: image ") for r, o in enumerate(state["pickOptions"]))
    assert not state["buttonDisabled"]
    check_page(state, 1, what)


def check_error(state: dict, words: list[str], what: str) -> None:
    """A search ended with an error in red naming ``words``, and no results or maps."""
    assert "Cannot search" in state["status"], f"{what}: status {state['status']!r}"
    assert all(w in state["status"] for w in words), f"{what}: status {state['status']!r}"
    assert state["statusColor"] == ERROR_RED, f"{what}: the error is {state['statusColor']}"
    assert not state["lists"]["visible"] and not state["heat"]["visible"], what
    assert state["pickOptions"] == [], f"{what}: grounding menu {state['pickOptions']}"
    assert not state["buttonDisabled"]
    check_page(state, 0, what)


def check_grounding(state: dict, what: str) -> None:
    """A grounding pick ended with the results and one map below them."""
    assert state["lists"]["visible"] and state["lists"]["loaded"], f"{what}: no results image"
    assert state["heat"]["visible"] and state["heat"]["loaded"], f"{what}: no grounding map"
    assert state["heat"]["width"] > 300, f"{what}: grounding image {state['heat']}"
    assert state["statuses"] == [], f"{what}: the pick changed the status line"
    check_page(state, 2, what)


def open_demo(page, url: str, log: Path) -> Demo:
    """Open the notebook, run all its cells, wait for the widget; open the Log Console."""
    page.goto(url)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.started; "
                  "await window.jupyterapp.restored; }")
    page.locator(".jp-NotebookPanel .jp-Notebook").wait_for(timeout=120_000)
    kernel_idle = """() => [...window.jupyterapp.shell.widgets('main')].some(
        w => w.sessionContext?.session?.kernel?.status === 'idle')"""
    page.wait_for_function(kernel_idle, timeout=120_000, polling=500)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    widget = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-text)")
    try:
        widget.wait_for(timeout=STARTUP_S * 1000)
    except sync_api.TimeoutError:
        errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']").all_inner_texts()
        raise AssertionError(f"no demo widget after {STARTUP_S} s; cell errors: {errors}; "
                             f"server log:\n{tail(log)}") from None
    page.evaluate("""source => window.jupyterapp.commands.execute(
        'logconsole:open', {source, insertMode: 'split-bottom'})""", NOTEBOOK)
    page.locator(".jp-LogConsolePanel").wait_for()
    page.evaluate(INSTRUMENT_JS)
    return Demo(page)


# ------------------------------------------------------------------------------ the test


def test_search_demo_in_chromium(jupyterlab, tmp_path: Path):
    url, log = jupyterlab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 2200})
        page = browser.new_page()
        page.set_default_timeout(60_000)
        try:
            demo = open_demo(page, url, log)
            run_the_demo(demo)
            demo.query.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "search_demo.png"))
            demo.root.screenshot(path=str(tmp_path / "search_demo_widget.png"))
        except BaseException:
            with contextlib.suppress(Exception):  # the failure, not the screenshot's
                page.screenshot(path=str(tmp_path / "search_demo_failed.png"))
            raise
        finally:
            browser.close()


def run_the_demo(demo: Demo) -> None:
    start = demo.state()
    assert start["status"] == "" and not start["lists"]["visible"]
    assert not start["heat"]["visible"] and start["pickOptions"] == []
    check_page(start, 0, "the widget, before any search")
    captions = start["exampleOptions"][1:]  # the menu's first entry is its title, "examples"
    assert len(captions) == 8 and start["exampleOptions"][0] == "examples", captions

    # (a) a test caption and Enter: one search, busy while it runs, one results image
    s = demo.enter(captions[0], "Enter")
    assert searches(s) == 1 and s["statuses"][0] == "searching ...", s["statuses"]
    assert s["disabledCount"] >= 1, "the Search button was not disabled while searching"
    check_results(s, captions[0], "Enter")
    lists_a = demo.image_hash(0)

    # (b) a grounding pick: its map below the results, which stay as they were
    s = demo.choose(demo.pick, 1, lambda s: s["heat"]["visible"], "grounding pick")
    check_grounding(s, "grounding pick")
    assert s["pickIndex"] == 1 and demo.image_hash(0) == lists_a
    heat_b = demo.image_hash(1)

    # (c) after the pick, another caption and the button: the new results, no map left over.
    # (The click takes the focus from the box, and leaving the box commits its changed text,
    # which searches; the click itself then must not search the same caption a second time.)
    demo.query.fill(captions[1])
    s = demo.click_search("Search button, new caption")
    assert searches(s) == 1, s["statuses"]
    check_results(s, captions[1], "Search button, new caption")
    lists_c = demo.image_hash(0)
    assert lists_c != lists_a, "the results image did not change with the query"
    s = demo.choose(demo.pick, 1, lambda s: s["heat"]["visible"], "grounding, second caption")
    check_grounding(s, "grounding, second caption")
    assert demo.image_hash(1) != heat_b, "the grounding map is the first caption's"
    assert demo.image_hash(0) == lists_c
    # the button again, same caption: one search, the same results, the map cleared
    s = demo.click_search("Search button, same caption")
    assert searches(s) == 1, s["statuses"]
    check_results(s, captions[1], "Search button, same caption")
    assert demo.image_hash(0) == lists_c

    # (d) case and a trailing full stop are forgiven; a short query gets its note
    s = demo.enter("A red circle.", "trailing full stop")
    assert searches(s) == 1, s["statuses"]
    check_results(s, "a red circle", "trailing full stop")
    assert "short query" in s["status"]

    # (e) an unknown word, then an empty query: a red error, nothing else shown
    s = demo.enter("a red hexagon", "unknown word")
    assert searches(s) == 1, s["statuses"]
    check_error(s, ["does not know: hexagon ("], "unknown word")  # hexagon alone
    demo.query.fill("")
    s = demo.click_search("empty query")
    check_error(s, ["empty query"], "empty query")

    # (g) an example from the menu fills the box and searches; a pick after it still works
    s = demo.choose(demo.examples, 3, lambda s: "slow re-scoring" in s["status"], "example")
    assert s["query"] == captions[2] and searches(s) == 1, (s["query"], s["statuses"])
    check_results(s, captions[2], "example")
    s = demo.choose(demo.pick, 0, lambda s: s["heat"]["visible"], "grounding after the example")
    check_grounding(s, "grounding after the example")
