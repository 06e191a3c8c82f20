# GET /api/me (a token check per request) throughput against a natter binary: 2000 sequential
# keep-alive requests, then 8 clients x 500. Usage: python3 bench/token-check.py target/debug/natter
# (ADR 0018).
import http.client, json, subprocess, sys, tempfile, threading, time, re
binary = sys.argv[1]
data = tempfile.mkdtemp()
proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data, "--log", "warn"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line = proc.stdout.readline()
addr = re.search(r"http://([\d.]+):(\d+)", line)
host, port = addr.group(1), int(addr.group(2))
c = http.client.HTTPConnection(host, port)
c.request("POST", "/api/register", json.dumps({"username": "bench", "password": "correct horse"}),
          {"Content-Type": "application/json"})
token = json.loads(c.getresponse().read())["token"]
def run(n, out):
    conn = http.client.HTTPConnection(host, port)
    for _ in range(n):
        conn.request("GET", "/api/me", headers={"Authorization": "Bearer " + token})
        r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
    out.append(n)
for threads, per in [(1, 2000), (8, 500)]:
    out = []
    ts = [threading.Thread(target=run, args=(per, out)) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.perf_counter() - t0
    print(f"{threads} client(s): {sum(out)} GET /api/me in {dt:.2f} s = {sum(out)/dt:.0f}/s")
proc.terminate(); proc.wait()
