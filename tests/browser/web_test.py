#!/usr/bin/python3
"""End-to-end test of the auditor's web page in headless Chromium (Debian's chromium and
chromium-driver), driven through the W3C WebDriver protocol with nothing but urllib.

    web_test.py URL APPLICANT_ID PAYMENT_ID [--public-token T --auditor-token T]

Loads the page served by `g60ledger serve` at URL, checks the ledger status and the
programme charts, searches APPLICANT_ID through the search box, checks the history shows
PAYMENT_ID and the applicant's yearly totals and caps, opens its trace by clicking it, and
checks that every link of the chain is shown as verified (by the server and by the
browser's own WebCrypto checks); then asks each question of the Questions view (#/q/...)
and checks it shows a table and the ledger position it was computed at. Exit 0 when
all holds; 1 naming the first thing that did not.

With tokens (a server started with --tokens and no anonymous role): the page must first
ask for a token; with the public token it must show the status and the programmes, and in
place of the reports and of an applicant's history the server's reason (the auditor role
is needed); then, the token changed to the auditor's, everything above.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Failed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise Failed(f"WebDriver {method} {path}: {e.read().decode(errors='replace')[:300]}")

    def start(self, profile):
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1300,1000"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return f"/session/{self.session}{path}"

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def find_all(self, css):
        return [e[ELEMENT] for e in self.call("POST", self.s("/elements"),
                                              {"using": "css selector", "value": css})]

    def find(self, css):
        found = self.find_all(css)
        if not found:
            raise Failed(f"no element {css}")
        return found[0]

    def text(self, ref):
        return self.call("GET", self.s(f"/element/{ref}/text"))

    def attr(self, ref, name):
        return self.call("GET", self.s(f"/element/{ref}/attribute/{name}"))

    def click(self, ref):
        self.call("POST", self.s(f"/element/{ref}/click"), {})

    def type(self, ref, text):
        self.call("POST", self.s(f"/element/{ref}/value"), {"text": text})

    def script(self, js):
        return self.call("POST", self.s("/execute/sync"), {"script": js, "args": []})

    def wait_ready(self, want, timeout=30):
        """Waits for the page to finish rendering route `want` (body[data-ready])."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            ready = self.script("return document.body.dataset.ready || '';")
            if ready == "error":
                raise Failed("the page shows an error: " + self.text(self.find("#error")))
            if ready and (want is None or ready == want):
                return
            time.sleep(0.1)
        raise Failed(f"the page did not finish rendering {want!r}")

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", f"/session/{self.session}")
            except Exception:
                pass


def enter_token(wd, token, then):
    """Types `token` into the page's token form and waits for route `then` to render."""
    form = wd.find("#token-form")
    if wd.script("return document.querySelector('#token-form').hidden;"):
        raise Failed("the page does not ask for a token")
    wd.type(wd.find("#token-input"), token)
    wd.click(wd.find("#token-button"))
    wd.wait_ready(then)
    if not wd.script("return document.querySelector('#token-form').hidden;"):
        raise Failed(f"the token form is still shown: {wd.text(form)!r}")


def check_public(wd, url, token, applicant):
    """The public role: status and programmes shown, reports and histories refused."""
    wd.go(url + "/")
    wd.wait_ready("token")
    reason = wd.text(wd.find("#token-reason"))
    if "bearer token" not in reason:
        raise Failed(f"the token prompt gives no reason: {reason!r}")
    enter_token(wd, token, "home")
    if wd.text(wd.find("#status-verdict")) != "Checkpoints verified":
        raise Failed("the public role does not see the status")
    if len(wd.find_all("#programmes .programme")) < 20:
        raise Failed("the public role does not see the programme charts")
    for name in ("overlaps", "clawbacks", "rejections"):
        if wd.find_all(f"#report-{name} table.rows tbody tr"):
            raise Failed(f"the public role sees the {name} report")
        refused = wd.text(wd.find(f"#report-{name} .forbidden"))
        if "auditor" not in refused:
            raise Failed(f"the {name} report does not say why it is not shown: {refused!r}")
    wd.type(wd.find("#applicant-input"), applicant)
    wd.click(wd.find("#search-button"))
    deadline = time.time() + 30
    while time.time() < deadline and wd.script("return document.body.dataset.ready || '';") != "error":
        time.sleep(0.1)
    message = wd.text(wd.find("#error"))
    if "auditor" not in message:
        raise Failed(f"an applicant's history under the public role: {message!r}")
    print("web_test: public role ok: status and programmes shown, reports and history refused")
    wd.click(wd.find("#token-change"))


def run(url, applicant, payment, public_token=None, auditor_token=None):
    port = free_port()
    profile = tempfile.mkdtemp(prefix="g60-chromium-")
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(f"http://127.0.0.1:{port}")
    try:
        for _ in range(100):
            try:
                if wd.call("GET", "/status").get("ready"):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        wd.start(profile)

        # The status page: every checkpoint verified, every partition listed, charts drawn.
        if public_token:
            check_public(wd, url, public_token, applicant)
        if auditor_token:
            wd.go(url + "/")
            wd.wait_ready("token")
            enter_token(wd, auditor_token, "home")
        wd.go(url + "/")
        wd.wait_ready("home")
        verdict = wd.text(wd.find("#status-verdict"))
        if verdict != "Checkpoints verified":
            raise Failed(f"status says {verdict!r}")
        partitions = wd.find_all("#status-table tbody tr")
        if len(partitions) < 1:
            raise Failed("no partition in the status table")
        for row in partitions:
            if "signature and root verified" not in wd.text(row):
                raise Failed(f"a partition's checkpoint is not verified: {wd.text(row)!r}")
        charts = wd.find_all("#programmes .programme")
        bars = wd.find_all("#programmes svg rect.approved")
        if len(charts) < 20 or len(bars) != len(charts):
            raise Failed(f"{len(charts)} programme charts, {len(bars)} bars")
        total = wd.text(wd.find("#programmes-total"))
        if "All programmes:" not in total:
            raise Failed(f"no totals row under the programmes: {total!r}")
        reports = {}
        for name in ("overlaps", "clawbacks", "rejections"):
            rows = wd.find_all(f"#report-{name} table.rows tbody tr")
            if not rows:
                raise Failed(f"the {name} report shows no row")
            reports[name] = len(rows)
        if "superseded" not in wd.text(wd.find("#report-overlaps")):
            raise Failed("the overlap report shows no superseded approval")
        summary = wd.text(wd.find("#report-rejections .summary"))
        if "reason" not in summary:
            raise Failed(f"the rejections report has no count by reason: {summary!r}")
        # Paging: "More" adds the next page of rejections.
        before = reports["rejections"]
        more = wd.find_all("#report-rejections button.more")
        if more:
            wd.click(more[0])
            for _ in range(100):
                if len(wd.find_all("#report-rejections table.rows tbody tr")) > before:
                    break
                time.sleep(0.1)
            else:
                raise Failed("More did not add rejections")
        print(f"web_test: status ok: {len(partitions)} partitions verified, {len(charts)} programme "
              f"charts, reports {reports}")

        # Search the applicant through the form.
        wd.type(wd.find("#applicant-input"), applicant)
        wd.click(wd.find("#search-button"))
        wd.wait_ready("applicant/" + applicant)
        title = wd.text(wd.find("#applicant-title"))
        if applicant not in title:
            raise Failed(f"applicant title is {title!r}")
        rows = wd.find_all("#history tbody tr")
        history = "\n".join(wd.text(r) for r in rows)
        if payment not in history:
            raise Failed(f"the history of {applicant} does not show {payment}")
        years = wd.find_all("#applicant-years table.rows tbody tr")
        if not years:
            raise Failed(f"no yearly totals for {applicant}")
        if "Computed at partition" not in wd.text(wd.find("#applicant-years .position")):
            raise Failed("the yearly totals do not say the ledger position they were computed at")
        wd.find("#applicant-headroom table.rows")
        print(f"web_test: applicant ok: {len(rows)} entries in the history, {len(years)} year(s)")


        # Open the payment's trace by clicking it.
        links = [r for r in wd.find_all("#history a.trace-link") if wd.text(r) == payment]
        if not links:
            raise Failed(f"{payment} is not a trace link")
        wd.click(links[0])
        # Event ids are unique per applicant: the link names the applicant too.
        wd.wait_ready(f"trace/{payment}/{applicant}")
        verdict = wd.find("#trace-verdict")
        if wd.attr(verdict, "class") != "ok":
            raise Failed(f"trace verdict: {wd.text(verdict)!r}")
        items = wd.find_all("#trace-links li.link")
        roles = [wd.attr(i, "data-role") for i in items]
        for need in ("application", "approval", "payment"):
            if need not in roles:
                raise Failed(f"the trace has no {need} link: {roles}")
        decided = [wd.text(i) for i in items if wd.attr(i, "data-role") in ("approval", "payment")]
        if not all("catalogue " in t for t in decided):
            raise Failed(f"links without the catalogue they were decided under: {decided}")
        bad = [wd.text(i) for i in items if "proof-ok" not in wd.attr(i, "class")]
        if bad:
            raise Failed(f"links not verified: {bad}")
        checks = [wd.text(wd.find_all("#trace-links li.link .check")[k]) for k in range(len(items))]
        if not all("inclusion proved" in c and "signature ok" in c for c in checks):
            raise Failed(f"the browser's own checks: {checks}")
        print(f"web_test: trace ok: {len(items)} links ({', '.join(roles)}), each proved in the browser")

        # Each question of the Questions view answers with a table and its position.
        for name, query in (("history", f"applicant={applicant}&programme=G60-07b"), ("catalogues", ""), ("pending", ""), ("unpaid", "level=DISTRICT"),
                            ("decisions", ""), ("near-caps", "within=100"), ("double-funding", ""),
                            ("payments", f"applicant={applicant}"),
                            ("rejections", "reason=EXCEEDS_CAP"), ("programmes", "year=2026")):
            route = f"q/{name}" + (f"?{query}" if query else "")
            wd.go(url + "/#/" + route)
            wd.wait_ready(route)
            box = wd.find("#question-result")
            wd.find("#question-result table.rows")
            if "Computed at partition" not in wd.text(box):
                raise Failed(f"question {name}: no ledger position shown")
            fields = [wd.attr(i, "name") for i in wd.find_all("#question-fields input")]
            for p in (q.split("=")[0] for q in query.split("&") if q):
                if p not in fields:
                    raise Failed(f"question {name}: the form has no field {p} ({fields})")
        # The form asks: near-caps within 100% through its field.
        wd.go(url + "/#/q/near-caps")
        wd.wait_ready("q/near-caps")
        wd.type(wd.find("#q-within"), "100")
        wd.click(wd.find("#question-button"))
        wd.wait_ready("q/near-caps?within=100")
        print("web_test: questions ok")

        # A fragment that is not percent-encoded text is named, not left half-rendered.
        wd.go(url + "/#/trace/50%")
        deadline = time.time() + 30
        while time.time() < deadline and wd.script("return document.body.dataset.ready || '';") != "error":
            time.sleep(0.1)
        message = wd.text(wd.find("#error"))
        if "not percent-encoded" not in message:
            raise Failed(f"a malformed fragment: the page says {message!r}")
        print("web_test: malformed fragment ok")
        return 0
    finally:
        wd.quit()
        driver.terminate()
        driver.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("url")
    parser.add_argument("applicant")
    parser.add_argument("payment")
    parser.add_argument("--public-token")
    parser.add_argument("--auditor-token")
    args = parser.parse_args()
    if args.public_token and not args.auditor_token:
        parser.error("--public-token needs --auditor-token (the full check runs as the auditor)")
    try:
        sys.exit(run(args.url.rstrip("/"), args.applicant, args.payment, args.public_token,
                     args.auditor_token))
    except Failed as e:
        print(f"web_test: FAILED: {e}")
        sys.exit(1)
