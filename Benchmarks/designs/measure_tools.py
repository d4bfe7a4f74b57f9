#!/usr/bin/env python3
"""Helpers for measure.sh: sample a server's whole process tree from /proc, and turn the
results TSV into a markdown table and an SVG plot. Standard library only.

  measure_tools.py sample PID           -> "procs threads pss_kib rss_kib cpu_us"
  measure_tools.py cpu PID              -> the same without memory (0 0), quicker
  measure_tools.py pids PID             -> PID and its descendants
  measure_tools.py report TSV MD SVG    -> writes the table and the plot
"""
import math
import os
import sys


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def stat(pid):
    text = read(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state) of proc(5): ppid 4, utime 14, stime 15, cutime 16,
    # cstime 17, num_threads 20
    return {"ppid": int(fields[1]), "utime": int(fields[11]), "stime": int(fields[12]),
            "cutime": int(fields[13]), "cstime": int(fields[14]), "threads": int(fields[17])}


def tree(root):
    """root and its descendants: {pid: stat}."""
    children = {}
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s is not None:
                stats[int(name)] = s
                children.setdefault(s["ppid"], []).append(int(name))
    result, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in stats:
            result[pid] = stats[pid]
            frontier.extend(children.get(pid, []))
    return result


def sample(root, memory=True):
    procs = tree(root)
    pss = rss = 0
    if memory:
        for pid in procs:
            text = read(f"/proc/{pid}/smaps_rollup") or ""
            for line in text.splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
    # CPU in microseconds. The root: utime+stime from stat, which covers all its threads, exited
    # ones included, plus cutime+cstime, which covers the children it reaped. Every other process
    # (a single-threaded child or worker): its exact run time in ns from schedstat, because stat
    # rounds each process down to whole ticks and would count 10,000 short-lived workers as 0.
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    for pid, s in procs.items():
        if pid == root:
            cpu += (s["utime"] + s["stime"] + s["cutime"] + s["cstime"]) * tick_us
        else:
            text = read(f"/proc/{pid}/schedstat")
            cpu += int(text.split()[0]) / 1000 if text else (s["utime"] + s["stime"]) * tick_us
    threads = sum(s["threads"] for s in procs.values())
    return len(procs), threads, pss, rss, int(cpu)


# ---- report ----

COLUMNS = ["design", "conns", "pipeline", "workers", "rt_per_s", "p99_us", "pss_kib", "rss_kib", "procs",
           "threads", "connected", "refused", "timeout", "other", "dropped", "connect_s", "cpu_us",
           "roundtrips", "cpu_us_per_rt", "note"]
ORDER = ["iterative", "fork-per-client", "thread-per-client", "prefork-fdpass", "multi-accept", "reactord",
         "c-epoll-reference"]
COLORS = {"iterative": "#7f7f7f", "fork-per-client": "#d62728", "thread-per-client": "#ff7f0e",
          "prefork-fdpass": "#9467bd", "multi-accept": "#8c564b", "reactord": "#1f77b4",
          "c-epoll-reference": "#2ca02c"}


def load(tsv):
    rows = []
    with open(tsv) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            values = line.rstrip("\n").split("\t")
            rows.append(dict(zip(header, values)))
    return rows


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return float("nan")


def fmt_int(x):
    return "–" if math.isnan(x) else f"{x:,.0f}"


def fmt_mem(kib):
    if math.isnan(kib):
        return "–"
    mib = kib / 1024
    return f"{mib:,.0f}" if mib >= 100 else f"{mib:,.1f}"


def report(tsv, md, svg):
    rows = load(tsv)
    rows.sort(key=lambda r: (int(r["pipeline"]), ORDER.index(r["design"]) if r["design"] in ORDER else 99,
                             int(r["conns"])))
    out = ["| design | conns | P | round trips/s | p99 µs | memory MiB (PSS) | procs / threads | "
           "connected | refused / timed out | CPU µs per round trip | note |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        out.append("| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} / {} | {} | {} |".format(
            r["design"], fmt_int(num(r, "conns")), r["pipeline"], fmt_int(num(r, "rt_per_s")),
            fmt_int(num(r, "p99_us")), fmt_mem(num(r, "pss_kib")), r["procs"], r["threads"],
            r["connected"], r["refused"], r["timeout"],
            "–" if math.isnan(num(r, "cpu_us_per_rt")) else f"{num(r, 'cpu_us_per_rt'):.2f}", r["note"]))
    with open(md, "w") as f:
        f.write("\n".join(summary(rows)) + "\n\nEvery cell:\n\n" + "\n".join(out) + "\n")
    plot(rows, svg)


def summary(rows):
    """One row per design: the figures README.md shows."""
    def cell(design, conns, pipeline):
        for r in rows:
            if r["design"] == design and r["conns"] == str(conns) and r["pipeline"] == str(pipeline):
                return r
        return None

    def get(design, conns, pipeline, key, f):
        r = cell(design, conns, pipeline)
        return "–" if r is None else f(r, key)

    rt = lambda r, k: fmt_int(num(r, k)) if num(r, "roundtrips") > 0 else "0"
    conns = [10, 100, 1000, 10000]
    out = ["| design | round trips/s, P=1, at 10 / 100 / 1k / 10k conns | round trips/s, P=16, same | "
           "memory MiB at 100 / 10k (P=1) | p99 ms at 1k (P=1) | CPU µs per round trip at 1k (P=1 / P=16) | "
           "connected at 10k |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in [d for d in ORDER if any(r["design"] == d for r in rows)]:
        out.append("| {} | {} | {} | {} / {} | {} | {} / {} | {} |".format(
            d, " / ".join(get(d, c, 1, "rt_per_s", rt) for c in conns),
            " / ".join(get(d, c, 16, "rt_per_s", rt) for c in conns),
            get(d, 100, 1, "pss_kib", lambda r, k: fmt_mem(num(r, k))),
            get(d, 10000, 1, "pss_kib", lambda r, k: fmt_mem(num(r, k))),
            get(d, 1000, 1, "p99_us", lambda r, k: "–" if num(r, "roundtrips") <= 0 else f"{num(r, k) / 1000:,.1f}"),
            get(d, 1000, 1, "cpu_us_per_rt", lambda r, k: "–" if math.isnan(num(r, k)) else f"{num(r, k):.1f}"),
            get(d, 1000, 16, "cpu_us_per_rt", lambda r, k: "–" if math.isnan(num(r, k)) else f"{num(r, k):.1f}"),
            get(d, 10000, 1, "connected", lambda r, k: r[k])))
    return out


def plot(rows, path):
    designs = [d for d in ORDER if any(r["design"] == d for r in rows)]
    panels = [("Round trips/s, pipeline 1", "rt_per_s", "1", 1.0),
              ("Round trips/s, pipeline 16", "rt_per_s", "16", 1.0),
              ("Server memory (PSS of all its processes)", "pss_kib", "1", 1 / 1024)]
    W, H, pw, ph, left, top = 1320, 490, 330, 300, 80, 60
    gap = 90
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16">Echo servers by design: throughput and '
         f'memory against concurrent connections (server on CPU 0, echoload on CPU 1)</text>']
    xs = [10, 100, 1000, 10000]
    for i, (title, key, pipeline, scale) in enumerate(panels):
        x0 = left + i * (pw + gap)
        vals = [num(r, key) * scale for r in rows if r["pipeline"] == pipeline and num(r, key) > 0]
        if not vals:
            continue
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = 10 ** math.ceil(math.log10(max(vals)))
        if hi <= lo:
            hi = lo * 10

        def px(c):
            return x0 + (math.log10(c) - 1) / 3 * pw

        def py(v):
            return top + ph - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph

        s.append(f'<text x="{x0 + pw / 2}" y="{top - 12}" text-anchor="middle" font-size="13">{title}</text>')
        s.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
        for c in xs:
            s.append(f'<line x1="{px(c):.1f}" y1="{top}" x2="{px(c):.1f}" y2="{top + ph}" stroke="#ddd"/>')
            s.append(f'<text x="{px(c):.1f}" y="{top + ph + 16}" text-anchor="middle">{c:,}</text>')
        s.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 34}" text-anchor="middle">concurrent connections (log)</text>')
        e = math.log10(lo)
        while e <= math.log10(hi) + 1e-9:
            v = 10 ** e
            label = f"{v:,.0f}" if v >= 1 else f"{v:g}"
            s.append(f'<line x1="{x0}" y1="{py(v):.1f}" x2="{x0 + pw}" y2="{py(v):.1f}" stroke="#ddd"/>')
            s.append(f'<text x="{x0 - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
            e += 1
        unit = "MiB (log)" if key == "pss_kib" else "round trips/s (log)"
        s.append(f'<text transform="translate({x0 - 62},{top + ph / 2}) rotate(-90)" text-anchor="middle">{unit}</text>')
        for d in designs:
            pts = sorted((int(r["conns"]), num(r, key) * scale) for r in rows
                         if r["design"] == d and r["pipeline"] == pipeline and num(r, key) > 0)
            if not pts:
                continue
            path_d = " ".join(f"{'M' if j == 0 else 'L'}{px(c):.1f},{py(v):.1f}" for j, (c, v) in enumerate(pts))
            s.append(f'<path d="{path_d}" fill="none" stroke="{COLORS.get(d, "#000")}" stroke-width="2"/>')
            for c, v in pts:
                s.append(f'<circle cx="{px(c):.1f}" cy="{py(v):.1f}" r="3" fill="{COLORS.get(d, "#000")}"/>')
    # legend
    lx, ly = left, top + ph + 58
    s.append(f'<text x="{lx}" y="{ly + 30}" fill="#555">A design with no point at a connection count completed '
             f'no round trip there in the run (0 cannot be drawn on a log scale); see the table.</text>')
    for j, d in enumerate(designs):
        x = lx + j * 170
        s.append(f'<line x1="{x}" y1="{ly}" x2="{x + 24}" y2="{ly}" stroke="{COLORS.get(d, "#000")}" stroke-width="3"/>')
        s.append(f'<text x="{x + 30}" y="{ly + 4}">{d}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "pids":
        print(*sorted(tree(int(sys.argv[2])), reverse=True))
    elif len(sys.argv) == 3 and sys.argv[1] in ("sample", "cpu"):
        print(*sample(int(sys.argv[2]), memory=sys.argv[1] == "sample"))
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
