#!/usr/bin/env bash
# `geoplan demo` of this checkout against earlier checkouts, alternating run by run, so that a host whose
# speed drifts within minutes affects every side alike (benchmarks/README.md, issue 15).
#
#   benchmarks/demo_ab.sh N PREVIOUS_CHECKOUT...
#
# Every round runs this checkout's `geoplan` command (the venv's console script), then each previous checkout
# through `python -c "…cli.main([...])"` with PYTHONPATH set to it (commits before the console script's fast exit
# have no `entry`); each run writes a fresh folder under /tmp and is timed by /usr/bin/time. Prints one line a run
# (wall s, user s, sys s, peak RSS KB, files written) and the median wall and CPU per side. Precompile every checkout
# first (`python -m compileall -q geoplan`) and keep the machine otherwise idle.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$here/.venv/bin/python"
n="${1:?number of rounds}"; shift
log="$(mktemp)"
for i in $(seq 1 "$n"); do
  for side in "$here" "$@"; do
    out="$(mktemp -d)/ausgabe"
    if [ "$side" = "$here" ]; then
      (cd "$here" && /usr/bin/time -f "now %e %U %S %M" "$here/.venv/bin/geoplan" demo --out "$out" >/dev/null 2>"$out.err")
    else
      (cd "$side" && PYTHONPATH="$side" /usr/bin/time -f "$(basename "$side") %e %U %S %M" "$py" -c \
        "import sys; from geoplan.cli import main; sys.exit(main(['demo', '--out', '$out']))" >/dev/null 2>"$out.err")
    fi
    echo "$(tail -1 "$out.err") $(ls "$out" | wc -l)" | tee -a "$log"
    rm -rf "$(dirname "$out")"
  done
done
echo "side median_wall_s median_cpu_s runs"
awk '{w[$1]=w[$1]" "$2; c[$1]=c[$1]" "($3+$4); k[$1]++}
     function med(s,   a, m, i, j, t) { m = split(s, a, " ")
       for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
       return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
     END { for (s in k) printf "%s %.2f %.2f %d\n", s, med(w[s]), med(c[s]), k[s] }' "$log"
rm -f "$log"
